//! [`TrackState`]: one instance's trackers and what they make of its priority and faults.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::Observation;
use crate::config::{InstanceSpec, Weight};
use crate::vrrp::{Command, FaultCause};
use crate::wire::Priority;

/// The address owner's priority, never moved by tracking (RFC 5798 §5.2.4).
const OWNER: u8 = 255;
/// The range tracking may move a non-owner to (keepalived `vrrp_set_effective_priority`).
const MIN_EFFECTIVE: i64 = 1;
const MAX_EFFECTIVE: i64 = 254;
/// A track file's contribution is clamped to `FILE_FAULT..=FILE_MAX`; reaching `FILE_FAULT`
/// means Fault (keepalived `process_update_vrrp_track_file_status`).
const FILE_FAULT: i64 = -254;
const FILE_MAX: i64 = 253;

/// What a tracker watches; its position in [`TrackState::trackers`] is the number in
/// [`FaultCause::Tracked`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tracked {
    Interface(String),
    Script(String),
    File(PathBuf),
    /// A `[[virtual_server]]`'s quorum of healthy real servers.
    Quorum(String),
}

impl fmt::Display for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Interface(name) => write!(f, "track_interface {name}"),
            Self::Script(name) => write!(f, "track_script {name}"),
            Self::File(path) => write!(f, "track_file {}", path.display()),
            Self::Quorum(service) => write!(f, "quorum of {service}"),
        }
    }
}

/// One tracker as [`TrackState::report`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerReport {
    pub what: Tracked,
    pub weight: i64,
    /// Interface up / script good as 1 / 0, or a file's value; `None` until first observed.
    pub seen: Option<i64>,
    /// What it does to the instance now; `None`: nothing (not observed yet, healthy with a
    /// weight that acts only on failure, or an owner's ignored weight).
    pub effect: Option<Effect>,
}

/// One instance's tracking, sans-IO: the configured trackers with what was last observed of
/// each, and the view of priority and faults last handed to the state machine.
///
/// Feed it every [`Observation`] ([`TrackState::observe`], or the three typed inputs); each
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
    /// The trackers of `spec`, nothing observed yet: the priority is the configured one and no
    /// fault is raised until a driver reports.
    pub fn new(spec: &InstanceSpec) -> Self {
        let weight = |w: Weight| i64::from(w.0);
        let trackers = spec
            .track_interfaces
            .iter()
            .map(|t| (Tracked::Interface(t.name.clone()), weight(t.weight)))
            .chain(
                spec.track_scripts
                    .iter()
                    .map(|t| (Tracked::Script(t.name.clone()), weight(t.weight))),
            )
            .chain(
                spec.track_files
                    .iter()
                    .map(|t| (Tracked::File(t.path.clone()), weight(t.weight))),
            )
            .chain(
                spec.track_quorums
                    .iter()
                    .map(|t| (Tracked::Quorum(t.service.clone()), weight(t.weight))),
            )
            .map(|(what, weight)| Tracker {
                what,
                weight,
                seen: None,
            })
            .collect();
        Self {
            instance: spec.name.clone(),
            interface: spec.interface.clone(),
            base: spec.priority,
            trackers,
            own_link: None,
            own_link_reported: false,
            sent_priority: spec.priority,
            sent_faults: BTreeSet::new(),
        }
    }

    /// A reload changed the instance's priority or trackers: takes `spec`'s, keeping what was
    /// already observed of every tracker that stays (and of the own interface), and returns
    /// the commands from the view last sent to the new one. A tracker that stays failing but
    /// moved in the list keeps the instance in Fault throughout: its new number is faulted
    /// before its old number is cleared (see the type docs' order).
    pub fn reconfigure(&mut self, spec: &InstanceSpec) -> Vec<Command> {
        let mut next = Self::new(spec);
        for tracker in &mut next.trackers {
            tracker.seen = self
                .trackers
                .iter()
                .find(|old| old.what == tracker.what)
                .and_then(|old| old.seen);
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

    /// `[[script]]` `name` is good (`ok`) or failing, after rise/fall ([`super::RiseFall`]).
    pub fn script_result(&mut self, name: &str, ok: bool) -> Vec<Command> {
        self.record(
            |t| matches!(&t, Tracked::Script(n) if n == name),
            i64::from(ok),
        );
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
        self.trackers
            .iter()
            .any(|t| matches!(t.what, Tracked::Script(_)) && t.weight == 0 && t.seen.is_none())
    }

    fn is_owner(&self) -> bool {
        self.base.0 == OWNER
    }

    fn record(&mut self, matches: impl Fn(&Tracked) -> bool, value: i64) {
        for tracker in self.trackers.iter_mut().filter(|t| matches(&t.what)) {
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

/// keepalived's rule for one tracker (see the module docs' table). `seen` is 1/0 for up/good
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
mod tests {
    use std::path::{Path, PathBuf};

    use super::{TrackState, Tracked};
    use crate::config::{InstanceSpec, TrackFile, TrackInterface, TrackScript, Weight};
    use crate::track::Observation;
    use crate::vrrp::{Command, FaultCause};
    use crate::wire::Priority;

    const FILE: &str = "/run/vipflip/prio";

    /// `VI_1` on eth0 at `priority`, tracking eth1, script chk, and FILE with these weights.
    fn spec(priority: u8, eth1: i16, chk: i16, file: i16) -> InstanceSpec {
        let text = format!(
            r#"
            [[instance]]
            name = "VI_1"
            interface = "eth0"
            vrid = 51
            priority = {priority}
            virtual_ips = ["192.0.2.100/24"]
            [[script]]
            name = "chk"
            command = ["/bin/true"]
            "#
        );
        let (config, _) = crate::config::Config::parse(&text, "test.toml").expect("config");
        let mut spec = config.instances[0].clone();
        spec.track_interfaces = vec![TrackInterface {
            name: "eth1".into(),
            weight: Weight(eth1),
        }];
        spec.track_scripts = vec![TrackScript {
            name: "chk".into(),
            weight: Weight(chk),
        }];
        spec.track_files = vec![TrackFile {
            path: FILE.into(),
            weight: Weight(file),
        }];
        spec
    }

    fn file(state: &mut TrackState, value: i64) -> Vec<Command> {
        state.file_value(Path::new(FILE), value)
    }

    const ETH1: FaultCause = FaultCause::Tracked(0);
    const CHK: FaultCause = FaultCause::Tracked(1);
    const FILE_CAUSE: FaultCause = FaultCause::Tracked(2);

    #[test]
    fn a_lost_quorum_lowers_the_priority_or_faults_with_weight_0() {
        let mut with_weight = spec(100, -10, -20, 1);
        with_weight.track_quorums = vec![crate::config::TrackQuorum {
            service: "web".into(),
            weight: Weight(-50),
        }];
        let mut state = TrackState::new(&with_weight);
        assert_eq!(state.quorum("web", true), vec![]);
        assert_eq!(
            state.quorum("web", false),
            vec![Command::SetPriority(Priority(50))]
        );
        assert_eq!(state.quorum("other", true), vec![]);
        assert_eq!(
            state.observe(&Observation::Quorum {
                service: "web".into(),
                met: true
            }),
            vec![Command::SetPriority(Priority(100))]
        );
        with_weight.track_quorums[0].weight = Weight(0);
        let mut state = TrackState::new(&with_weight);
        let quorum = FaultCause::Tracked(3);
        assert_eq!(state.quorum("web", false), vec![Command::Fault(quorum)]);
        assert_eq!(state.describe(quorum), "quorum of web failed");
        assert_eq!(state.quorum("web", true), vec![Command::Unfault(quorum)]);
    }

    #[test]
    fn numbering_is_interfaces_then_scripts_then_files() {
        let state = TrackState::new(&spec(100, -10, -20, 1));
        let trackers: Vec<&Tracked> = state.trackers().collect();
        assert_eq!(
            trackers,
            [
                &Tracked::Interface("eth1".into()),
                &Tracked::Script("chk".into()),
                &Tracked::File(PathBuf::from(FILE)),
            ]
        );
        assert_eq!(state.describe(CHK), "track_script chk failed");
        assert_eq!(state.describe(FaultCause::LinkDown), "interface eth0 down");
    }

    #[test]
    fn reconfigure_keeps_observations_and_moves_the_priority() {
        let mut s = TrackState::new(&spec(100, -10, -20, 1));
        let _ = s.script_result("chk", false);
        assert_eq!(s.priority(), Priority(80));
        // A reload raises the base and drops the eth1 tracker: chk is still failing.
        let mut next = spec(150, -10, -20, 1);
        next.track_interfaces.clear();
        assert_eq!(s.reconfigure(&next), [Command::SetPriority(Priority(130))]);
        assert_eq!(s.script_result("chk", false), []);
        assert_eq!(s.reconfigure(&next), []);
    }

    #[test]
    fn reconfigure_renumbers_a_failing_tracker_without_clearing_the_fault_first() {
        let mut s = TrackState::new(&spec(100, -10, 0, 1));
        assert_eq!(s.script_result("chk", false), [Command::Fault(CHK)]);
        // Without the eth1 tracker, chk is number 0 now.
        let mut next = spec(100, -10, 0, 1);
        next.track_interfaces.clear();
        assert_eq!(
            s.reconfigure(&next),
            [
                Command::Fault(FaultCause::Tracked(0)),
                Command::Unfault(CHK)
            ]
        );
        assert_eq!(
            s.faults().into_iter().collect::<Vec<_>>(),
            [FaultCause::Tracked(0)]
        );
    }

    #[test]
    fn report_shows_each_tracker_s_observation_and_effect() {
        let mut s = TrackState::new(&spec(100, -10, 0, 2));
        let _ = s.interface_up("eth1", false);
        let _ = s.script_result("chk", false);
        let report: Vec<(Tracked, Option<i64>, Option<super::Effect>)> = s
            .report()
            .into_iter()
            .map(|t| (t.what, t.seen, t.effect))
            .collect();
        assert_eq!(
            report,
            [
                (
                    Tracked::Interface("eth1".into()),
                    Some(0),
                    Some(super::Effect::Add(-10))
                ),
                (
                    Tracked::Script("chk".into()),
                    Some(0),
                    Some(super::Effect::Fault)
                ),
                (Tracked::File(PathBuf::from(FILE)), None, None),
            ]
        );
        assert_eq!(super::Effect::Add(-10).to_string(), "-10");
        assert_eq!(super::Effect::Add(4).to_string(), "+4");
    }

    #[test]
    fn nothing_observed_means_base_priority_and_no_fault() {
        let state = TrackState::new(&spec(100, 0, 0, 0));
        assert_eq!(state.priority(), Priority(100));
        assert!(state.faults().is_empty());
        assert!(state.awaiting_scripts());
    }

    #[test]
    fn negative_weights_subtract_while_failing() {
        let mut s = TrackState::new(&spec(100, -10, -20, 1));
        assert_eq!(s.interface_up("eth1", true), []);
        assert_eq!(s.script_result("chk", true), []);
        assert_eq!(
            s.interface_up("eth1", false),
            [Command::SetPriority(Priority(90))]
        );
        assert_eq!(
            s.script_result("chk", false),
            [Command::SetPriority(Priority(70))]
        );
        assert_eq!(
            s.interface_up("eth1", true),
            [Command::SetPriority(Priority(80))]
        );
        assert_eq!(
            s.script_result("chk", true),
            [Command::SetPriority(Priority(100))]
        );
        assert!(s.faults().is_empty());
    }

    #[test]
    fn positive_weights_add_while_ok() {
        let mut s = TrackState::new(&spec(100, 5, 30, 1));
        assert_eq!(
            s.interface_up("eth1", true),
            [Command::SetPriority(Priority(105))]
        );
        assert_eq!(
            s.script_result("chk", true),
            [Command::SetPriority(Priority(135))]
        );
        // A failing script with a positive weight only stops adding.
        assert_eq!(
            s.script_result("chk", false),
            [Command::SetPriority(Priority(105))]
        );
        assert_eq!(
            s.interface_up("eth1", false),
            [Command::SetPriority(Priority(100))]
        );
    }

    #[test]
    fn a_failing_positive_weight_script_at_start_changes_nothing() {
        let mut s = TrackState::new(&spec(100, 5, 30, 1));
        assert_eq!(s.script_result("chk", false), []);
        assert_eq!(s.priority(), Priority(100));
    }

    #[test]
    fn weight_zero_faults_while_failing() {
        let mut s = TrackState::new(&spec(100, 0, 0, 1));
        assert_eq!(s.interface_up("eth1", false), [Command::Fault(ETH1)]);
        assert_eq!(s.script_result("chk", false), [Command::Fault(CHK)]);
        assert_eq!(
            s.faults().into_iter().collect::<Vec<_>>(),
            [ETH1, CHK],
            "several causes at once"
        );
        assert_eq!(s.interface_up("eth1", true), [Command::Unfault(ETH1)]);
        assert_eq!(s.script_result("chk", true), [Command::Unfault(CHK)]);
        assert_eq!(s.script_result("chk", true), []);
        assert!(!s.awaiting_scripts());
    }

    #[test]
    fn effective_priority_is_clamped_to_1_and_254() {
        let mut s = TrackState::new(&spec(200, 50, 40, 1));
        s.interface_up("eth1", true);
        assert_eq!(s.priority(), Priority(250));
        assert_eq!(
            s.script_result("chk", true),
            [Command::SetPriority(Priority(254))],
            "200 + 50 + 40 = 290, clamped"
        );
        let mut s = TrackState::new(&spec(20, -15, -10, 1));
        s.interface_up("eth1", false);
        assert_eq!(s.priority(), Priority(5));
        assert_eq!(
            s.script_result("chk", false),
            [Command::SetPriority(Priority(1))],
            "20 - 15 - 10 = -5, clamped"
        );
        // Clamping uses the unclamped total: recovering one tracker gives 20 - 15 = 5.
        assert_eq!(
            s.script_result("chk", true),
            [Command::SetPriority(Priority(5))]
        );
    }

    #[test]
    fn track_file_multiplies_value_by_weight() {
        let mut s = TrackState::new(&spec(100, -10, -10, 3));
        assert_eq!(file(&mut s, 7), [Command::SetPriority(Priority(121))]);
        assert_eq!(file(&mut s, -30), [Command::SetPriority(Priority(10))]);
        assert_eq!(file(&mut s, 0), [Command::SetPriority(Priority(100))]);
        let mut s = TrackState::new(&spec(100, -10, -10, -2));
        assert_eq!(file(&mut s, 15), [Command::SetPriority(Priority(70))]);
    }

    #[test]
    fn track_file_product_is_clamped_and_minus_254_is_fault() {
        let mut s = TrackState::new(&spec(100, -10, -10, 1));
        // 1000 × 1 is clamped to +253: 100 + 253 → 254.
        assert_eq!(file(&mut s, 1000), [Command::SetPriority(Priority(254))]);
        // -253 is still a priority change: 100 - 253 → 1.
        assert_eq!(file(&mut s, -253), [Command::SetPriority(Priority(1))]);
        // -254 and below: fault, and the file no longer counts towards the priority.
        assert_eq!(
            file(&mut s, -254),
            [
                Command::Fault(FILE_CAUSE),
                Command::SetPriority(Priority(100))
            ]
        );
        assert_eq!(file(&mut s, i64::MIN), []);
        assert_eq!(
            file(&mut s, 4),
            [
                Command::SetPriority(Priority(104)),
                Command::Unfault(FILE_CAUSE)
            ]
        );
        // weight 2: 127 × 2 = 254 → +253; -127 × 2 = -254 → fault.
        let mut s = TrackState::new(&spec(100, -10, -10, 2));
        assert_eq!(file(&mut s, 127), [Command::SetPriority(Priority(254))]);
        assert_eq!(
            file(&mut s, -127),
            [
                Command::Fault(FILE_CAUSE),
                Command::SetPriority(Priority(100))
            ]
        );
    }

    #[test]
    fn track_file_weight_zero_faults_on_non_zero() {
        let mut s = TrackState::new(&spec(100, -10, -10, 0));
        assert_eq!(file(&mut s, 0), []);
        assert_eq!(file(&mut s, 1), [Command::Fault(FILE_CAUSE)]);
        assert_eq!(file(&mut s, -5), []);
        assert_eq!(file(&mut s, 0), [Command::Unfault(FILE_CAUSE)]);
        assert_eq!(s.priority(), Priority(100));
    }

    #[test]
    fn own_interface_down_is_link_down() {
        let mut s = TrackState::new(&spec(100, -10, -10, 1));
        assert_eq!(
            s.interface_up("eth0", false),
            [Command::Fault(FaultCause::LinkDown)]
        );
        assert_eq!(
            s.interface_up("eth0", true),
            [Command::Unfault(FaultCause::LinkDown)]
        );
        assert_eq!(s.interface_up("eth0", true), []);
    }

    #[test]
    fn first_own_link_up_clears_a_link_down_the_daemon_raised() {
        let mut s = TrackState::new(&spec(100, -10, -10, 1));
        assert_eq!(
            s.interface_up("eth0", true),
            [Command::Unfault(FaultCause::LinkDown)]
        );
        assert_eq!(s.interface_up("eth0", true), []);
    }

    #[test]
    fn faults_come_first_and_unfaults_last() {
        // The own interface, also tracked with a weight: one observation, two effects.
        let mut spec = spec(100, -30, -10, 1);
        spec.track_interfaces[0].name = "eth0".into();
        let mut s = TrackState::new(&spec);
        assert_eq!(
            s.interface_up("eth0", false),
            [
                Command::Fault(FaultCause::LinkDown),
                Command::SetPriority(Priority(70))
            ],
            "a master resigns before it would advertise the lower priority"
        );
        assert_eq!(
            s.interface_up("eth0", true),
            [
                Command::SetPriority(Priority(100)),
                Command::Unfault(FaultCause::LinkDown)
            ],
            "the instance restarts with its new priority"
        );
    }

    #[test]
    fn own_interface_also_tracked_raises_both_causes() {
        let mut spec = spec(100, 0, -10, 1);
        spec.track_interfaces[0].name = "eth0".into();
        let mut s = TrackState::new(&spec);
        assert_eq!(
            s.interface_up("eth0", false),
            [Command::Fault(FaultCause::LinkDown), Command::Fault(ETH1)]
        );
        assert_eq!(
            s.interface_up("eth0", true),
            [
                Command::Unfault(FaultCause::LinkDown),
                Command::Unfault(ETH1)
            ]
        );
    }

    #[test]
    fn owner_priority_never_moves_but_weight_zero_still_faults() {
        let mut s = TrackState::new(&spec(255, -50, 0, 10));
        assert_eq!(
            s.ignored().collect::<Vec<_>>(),
            [
                &Tracked::Interface("eth1".into()),
                &Tracked::File(PathBuf::from(FILE))
            ]
        );
        assert_eq!(s.interface_up("eth1", false), []);
        assert_eq!(file(&mut s, -100), []);
        assert_eq!(s.priority(), Priority(255));
        assert_eq!(s.script_result("chk", false), [Command::Fault(CHK)]);
        let s = TrackState::new(&spec(254, -50, 0, 10));
        assert_eq!(s.ignored().count(), 0);
    }

    #[test]
    fn observations_of_untracked_objects_are_ignored() {
        let mut s = TrackState::new(&spec(100, -10, -10, 1));
        assert_eq!(s.interface_up("eth9", false), []);
        assert_eq!(s.script_result("other", false), []);
        assert_eq!(s.file_value(Path::new("/elsewhere"), -300), []);
        assert_eq!(s.priority(), Priority(100));
    }

    #[test]
    fn observe_dispatches_each_kind() {
        let mut s = TrackState::new(&spec(100, -10, -20, 2));
        let commands: Vec<Command> = [
            Observation::Link {
                name: "eth1".into(),
                up: false,
            },
            Observation::Script {
                name: "chk".into(),
                ok: false,
            },
            Observation::File {
                path: FILE.into(),
                value: 5,
            },
        ]
        .iter()
        .flat_map(|o| s.observe(o))
        .collect();
        assert_eq!(
            commands,
            [
                Command::SetPriority(Priority(90)),
                Command::SetPriority(Priority(70)),
                Command::SetPriority(Priority(80)),
            ]
        );
    }
}
