//! [`TrackState`]: one instance's trackers and what they make of its priority and faults.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use vipflip_vrrp::{Command, FaultCause};
use vipflip_wire::Priority;

use crate::{Observation, TrackConfig, Tracked};

/// The address owner's priority, never moved by tracking (RFC 5798 §5.2.4).
const OWNER: u8 = 255;
/// The range tracking may move a non-owner to (keepalived `vrrp_set_effective_priority`).
const MIN_EFFECTIVE: i64 = 1;
const MAX_EFFECTIVE: i64 = 254;
/// A track file's contribution is clamped to `FILE_FAULT..=FILE_MAX`; reaching `FILE_FAULT`
/// means Fault (keepalived `process_update_vrrp_track_file_status`).
const FILE_FAULT: i64 = -254;
const FILE_MAX: i64 = 253;

/// One tracker as [`TrackState::report`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerReport {
    pub what: Tracked,
    pub weight: i64,
    /// Interface up / script good as 1 / 0, or a file's value; `None` until first observed.
    pub seen: Option<i64>,
    /// What it does to the instance now; `None`: nothing (not observed yet, healthy with a
    /// weight that acts only on failure, disabled, or an owner's ignored weight).
    pub effect: Option<Effect>,
    /// A script disabled by `script_security`: it counts neither way.
    pub disabled: bool,
}

/// One instance's tracking, sans-IO: the configured trackers with what was last observed of
/// each, and the view of priority and faults last handed to the state machine.
///
/// Feed it every [`Observation`] ([`TrackState::observe`], or the four typed inputs); each
/// returns the [`Command`]s that bring the instance up to date, in the order to apply them:
/// new faults first (a master resigns before anything else), then `SetPriority`, then cleared
/// faults (so an instance leaving Fault starts with its new priority). Nothing changed,
/// nothing returned. Observations of things this instance does not track are ignored.
#[derive(Debug, Clone)]
pub struct TrackState {
    instance: String,
    interface: String,
    base: Priority,
    trackers: Vec<Tracker>,
    /// The own interface: `None` until first observed.
    own_link: Option<bool>,
    /// Whether the first observation of the own interface has been turned into a command.
    own_link_reported: bool,
    sent_priority: Priority,
    sent_faults: BTreeSet<FaultCause>,
}

#[derive(Debug, Clone)]
struct Tracker {
    what: Tracked,
    weight: i64,
    /// Interface up / script good; for a file, its value. `None` until first observed.
    seen: Option<i64>,
    /// A script disabled by `script_security` (see [`Observation::ScriptDisabled`]).
    disabled: bool,
}

/// What one tracker does to the instance now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Moves the priority by this much (before clamping).
    Add(i64),
    /// Holds the instance in Fault.
    Fault,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Add(n) => write!(f, "{n:+}"),
            Self::Fault => f.write_str("fault"),
        }
    }
}

impl TrackState {
    /// The trackers of `config`, nothing observed yet: the priority is the configured one and
    /// no fault is raised until a driver reports.
    pub fn new(config: TrackConfig) -> Self {
        let trackers = config
            .trackers
            .into_iter()
            .map(|t| Tracker {
                what: t.what,
                weight: t.weight,
                seen: None,
                disabled: false,
            })
            .collect();
        Self {
            instance: config.instance,
            interface: config.interface,
            base: config.priority,
            trackers,
            own_link: None,
            own_link_reported: false,
            sent_priority: config.priority,
            sent_faults: BTreeSet::new(),
        }
    }

    /// A reload changed the instance's priority or trackers: takes `config`'s, keeping what was
    /// already observed of every tracker that stays (and of the own interface), and returns
    /// the commands from the view last sent to the new one. A tracker that stays failing but
    /// moved in the list keeps the instance in Fault throughout: its new number is faulted
    /// before its old number is cleared (see the type docs' order).
    pub fn reconfigure(&mut self, config: TrackConfig) -> Vec<Command> {
        let mut next = Self::new(config);
        for tracker in &mut next.trackers {
            if let Some(old) = self.trackers.iter().find(|old| old.what == tracker.what) {
                tracker.seen = old.seen;
                tracker.disabled = old.disabled;
            }
        }
        if next.interface == self.interface {
            next.own_link = self.own_link;
            next.own_link_reported = self.own_link_reported;
        }
        next.sent_priority = self.sent_priority;
        next.sent_faults = std::mem::take(&mut self.sent_faults);
        *self = next;
        self.commands()
    }

    /// Applies one observation; see the type docs for the commands returned.
    pub fn observe(&mut self, observation: &Observation) -> Vec<Command> {
        match observation {
            Observation::Link { name, up } => self.interface_up(name, *up),
            Observation::Script { name, ok } => self.script_result(name, *ok),
            Observation::ScriptDisabled { name } => self.script_disabled(name),
            Observation::File { path, value } => self.file_value(path, *value),
            Observation::Quorum { service, met } => self.quorum(service, *met),
        }
    }

    /// Interface `name` is up (`IFF_UP` with carrier) or not (down or absent).
    pub fn interface_up(&mut self, name: &str, up: bool) -> Vec<Command> {
        if name == self.interface {
            self.own_link = Some(up);
        }
        self.record(
            |t| matches!(&t, Tracked::Interface(n) if n == name),
            i64::from(up),
        );
        self.commands()
    }

    /// `[[script]]` `name` is good (`ok`) or failing, after rise/fall (the agent's `RiseFall`).
    pub fn script_result(&mut self, name: &str, ok: bool) -> Vec<Command> {
        self.record(
            |t| matches!(&t, Tracked::Script(n) if n == name),
            i64::from(ok),
        );
        self.commands()
    }

    /// `[[script]]` `name` was disabled by `script_security`: from now on it counts neither
    /// way (its fault cleared, its weight gone) until its driver, started again by a
    /// reload, reports a result.
    pub fn script_disabled(&mut self, name: &str) -> Vec<Command> {
        for tracker in self
            .trackers
            .iter_mut()
            .filter(|t| matches!(&t.what, Tracked::Script(n) if n == name))
        {
            tracker.disabled = true;
            tracker.seen = None;
        }
        self.commands()
    }

    /// Track file `path` (as configured) holds `value` (0 when missing or unreadable).
    pub fn file_value(&mut self, path: &Path, value: i64) -> Vec<Command> {
        self.record(|t| matches!(&t, Tracked::File(p) if p == path), value);
        self.commands()
    }

    /// Virtual server `service` has (`met`) or lacks its quorum of healthy real servers.
    pub fn quorum(&mut self, service: &str, met: bool) -> Vec<Command> {
        self.record(
            |t| matches!(&t, Tracked::Quorum(s) if s == service),
            i64::from(met),
        );
        self.commands()
    }

    /// The effective priority: the base moved by the trackers, in `1..=254`; an owner's 255.
    pub fn priority(&self) -> Priority {
        if self.is_owner() {
            return self.base;
        }
        let total = i64::from(self.base.0)
            + self
                .effects()
                .filter_map(|(_, e)| match e {
                    Effect::Add(n) => Some(n),
                    Effect::Fault => None,
                })
                .sum::<i64>();
        let clamped = total.clamp(MIN_EFFECTIVE, MAX_EFFECTIVE);
        Priority(u8::try_from(clamped).unwrap_or(u8::MAX))
    }

    /// The fault causes in force: [`FaultCause::LinkDown`] while the own interface is down,
    /// [`FaultCause::Tracked`]`(i)` while tracker `i` fails with weight 0 (or a track file's
    /// product reaches -254).
    pub fn faults(&self) -> BTreeSet<FaultCause> {
        let mut faults: BTreeSet<FaultCause> = self
            .effects()
            .filter(|(_, e)| *e == Effect::Fault)
            .map(|(id, _)| FaultCause::Tracked(id))
            .collect();
        if self.own_link == Some(false) {
            faults.insert(FaultCause::LinkDown);
        }
        faults
    }

    /// The trackers in [`FaultCause::Tracked`] numbering, for logs and status output.
    pub fn trackers(&self) -> impl Iterator<Item = &Tracked> {
        self.trackers.iter().map(|t| &t.what)
    }

    /// Every tracker with its weight, what was last observed of it (`None`: nothing yet) and
    /// its effect now, for `vipflip status` and the metrics.
    pub fn report(&self) -> Vec<TrackerReport> {
        let owner = self.is_owner();
        self.trackers
            .iter()
            .map(|t| TrackerReport {
                what: t.what.clone(),
                weight: t.weight,
                seen: t.seen,
                effect: t
                    .seen
                    .and_then(|seen| effect(&t.what, t.weight, seen, owner)),
                disabled: t.disabled,
            })
            .collect()
    }

    /// What fault `cause` refers to, for logs: `track_script chk_web`.
    pub fn describe(&self, cause: FaultCause) -> String {
        match cause {
            FaultCause::Tracked(id) => usize::try_from(id)
                .ok()
                .and_then(|i| self.trackers.get(i))
                .map_or_else(|| cause.to_string(), |t| format!("{} failed", t.what)),
            FaultCause::LinkDown => format!("interface {} down", self.interface),
            FaultCause::SyncGroup => cause.to_string(),
        }
    }

    /// Trackers configured with a weight that has no effect: an address owner's priority is
    /// fixed, so keepalived ignores its weighted trackers. The daemon warns about these once.
    pub fn ignored(&self) -> impl Iterator<Item = &Tracked> {
        let owner = self.is_owner();
        self.trackers
            .iter()
            .filter(move |t| owner && t.weight != 0)
            .map(|t| &t.what)
    }

    /// Whether a weight-0 script has no result yet. keepalived holds such an instance in
    /// Initialize until it has; a daemon that wants the same delays `Startup` while this is
    /// true (the script's first run takes one `interval` at most, plus its run time).
    pub fn awaiting_scripts(&self) -> bool {
        self.trackers.iter().any(|t| {
            matches!(t.what, Tracked::Script(_)) && t.weight == 0 && t.seen.is_none() && !t.disabled
        })
    }

    fn is_owner(&self) -> bool {
        self.base.0 == OWNER
    }

    fn record(&mut self, matches: impl Fn(&Tracked) -> bool, value: i64) {
        // A result of a disabled script comes from its driver started again (a reload that
        // passed the check again): it counts once more.
        for tracker in self.trackers.iter_mut().filter(|t| matches(&t.what)) {
            tracker.disabled = false;
            tracker.seen = Some(value);
        }
    }

    /// Each observed tracker's effect now, with its number.
    fn effects(&self) -> impl Iterator<Item = (u32, Effect)> + '_ {
        let owner = self.is_owner();
        self.trackers.iter().enumerate().filter_map(move |(i, t)| {
            let id = u32::try_from(i).ok()?;
            let effect = effect(&t.what, t.weight, t.seen?, owner)?;
            Some((id, effect))
        })
    }

    /// The commands from the last view sent to this one, and remember it.
    fn commands(&mut self) -> Vec<Command> {
        let faults = self.faults();
        let priority = self.priority();
        let mut commands: Vec<Command> = faults
            .difference(&self.sent_faults)
            .map(|c| Command::Fault(*c))
            .collect();
        if priority != self.sent_priority {
            log::info!(
                "{}: tracking moves the priority {} -> {}",
                self.instance,
                self.sent_priority.0,
                priority.0
            );
            commands.push(Command::SetPriority(priority));
        }
        commands.extend(
            self.sent_faults
                .difference(&faults)
                .map(|c| Command::Unfault(*c)),
        );
        // The daemon may have raised LinkDown itself before the first observation (an
        // interface missing at start): the first observation settles it either way.
        if !self.own_link_reported
            && let Some(up) = self.own_link
        {
            self.own_link_reported = true;
            if up && !self.sent_faults.contains(&FaultCause::LinkDown) {
                commands.push(Command::Unfault(FaultCause::LinkDown));
            }
        }
        for command in &commands {
            match command {
                Command::Fault(cause) | Command::Unfault(cause) => log::info!(
                    "{}: {} ({})",
                    self.instance,
                    if matches!(command, Command::Fault(_)) {
                        "fault"
                    } else {
                        "fault cleared"
                    },
                    self.describe(*cause)
                ),
                _ => {}
            }
        }
        self.sent_faults = faults;
        self.sent_priority = priority;
        commands
    }
}

/// keepalived's rule for one tracker (see the crate docs' table). `seen` is 1/0 for up/good
/// vs. down/failing, or a file's value. `None`: no effect.
fn effect(what: &Tracked, weight: i64, seen: i64, owner: bool) -> Option<Effect> {
    let failing = match what {
        Tracked::Interface(_) | Tracked::Script(_) | Tracked::Quorum(_) => seen == 0,
        Tracked::File(_) => seen != 0,
    };
    if weight == 0 {
        return failing.then_some(Effect::Fault);
    }
    if owner {
        return None;
    }
    match what {
        Tracked::Interface(_) | Tracked::Script(_) | Tracked::Quorum(_) => {
            let counts = if weight > 0 { !failing } else { failing };
            counts.then_some(Effect::Add(weight))
        }
        Tracked::File(_) => {
            let product = seen.saturating_mul(weight).clamp(FILE_FAULT, FILE_MAX);
            Some(if product == FILE_FAULT {
                Effect::Fault
            } else {
                Effect::Add(product)
            })
        }
    }
}

#[cfg(test)]
mod tests;
