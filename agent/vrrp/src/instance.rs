//! One virtual router: the RFC 5798 §6.4 state machine with the RFC 9568 changes.

use core::fmt;
use core::time::Duration;
use std::collections::{BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use vipflip_wire::{AdvertRepr, Auth, MacAddr, Priority, VirtualAddrs, VrrpVersion};

use super::config::{ConfigError, InstanceConfig, OWNER_PRIORITY};
use super::event::{Action, BackupTraffic, Cause, Command, CommandError, FaultCause, RxMeta};
use super::stats::{Discard, Stats};
use super::timer::{Timer, master_down_interval, skew_time};

/// Priority 0 in an advert: the master is resigning (RFC 5798 §5.2.4).
const RESIGN: Priority = Priority(0);

/// One VRRP virtual router (one VRID, one interface, one family), sans I/O.
///
/// See the [module documentation](super) for the call order. In short: feed
/// [`handle_advert`](Self::handle_advert), [`handle_timeout`](Self::handle_timeout) and
/// [`handle_command`](Self::handle_command); after each, drain
/// [`poll_action`](Self::poll_action) and re-read [`poll_timeout`](Self::poll_timeout).
///
/// A new instance sits in Initialize and does nothing until [`Command::Startup`].
#[derive(Debug)]
pub struct Instance {
    config: InstanceConfig,
    /// Effective priority: the configured one, moved by tracking ([`Command::SetPriority`]).
    priority: Priority,
    state: State,
    /// Active fault causes; the instance is in Fault while any is set (and it was started).
    faults: BTreeSet<FaultCause>,
    actions: VecDeque<Action>,
    stats: Stats,
    last_cause: Option<Cause>,
}

/// The state an instance is in, without its data (RFC 5798 §6.3, plus keepalived's Fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// Not started, or shut down (RFC 5798 §6.4.1).
    Initialize,
    /// Monitoring the master (RFC 5798 §6.4.2).
    Backup,
    /// Forwarding for the virtual router (RFC 5798 §6.4.3), including while handing off.
    Master,
    /// A tracked object failed; silent until every fault clears.
    Fault,
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Initialize => "Initialize",
            Self::Backup => "Backup",
            Self::Master => "Master",
            Self::Fault => "Fault",
        })
    }
}

/// Per-state data: a timer exists only in the state that runs it (rustls `hs.rs` style).
#[derive(Debug)]
enum State {
    Initialize,
    Backup(Backup),
    Master(Master),
    Fault,
}

#[derive(Debug)]
struct Backup {
    /// `Master_Adver_Interval` (RFC 5798 §6.1): learned from the master's adverts in v3; our
    /// own `Advertisement_Interval` in v2 (mismatching adverts are discarded).
    master_adver_int: Duration,
    /// `Master_Down_Timer` deadline.
    master_down_at: Instant,
    /// [`Timer::PreemptDelay`] deadline: until then lower-priority adverts are obeyed.
    preempt_hold_until: Option<Instant>,
    /// Set after a graceful handoff: the operator chose another master, so this backup does
    /// not preempt it. Cleared by leaving Backup (takeover, fault, shutdown).
    preempt_suppressed: bool,
    /// The last advert that moved the timer, to name the cause when it fires.
    last_heard: Heard,
    /// Where the data plane forwards after a graceful handoff.
    forwarding_to: Option<MacAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    Nothing,
    Master,
    Resignation,
    LowerPriority,
}

#[derive(Debug)]
struct Master {
    /// `Adver_Timer` deadline.
    adver_at: Instant,
    /// Set while handing off: the [`Timer::HandoffBound`] deadline.
    handoff_until: Option<Instant>,
}

impl Instance {
    /// An instance in Initialize, once `config` passes [`InstanceConfig::validate`].
    pub fn new(config: InstanceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            priority: config.priority,
            config,
            state: State::Initialize,
            faults: BTreeSet::new(),
            actions: VecDeque::new(),
            stats: Stats::default(),
            last_cause: None,
        })
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    pub fn state(&self) -> StateKind {
        match self.state {
            State::Initialize => StateKind::Initialize,
            State::Backup(_) => StateKind::Backup,
            State::Master(_) => StateKind::Master,
            State::Fault => StateKind::Fault,
        }
    }

    /// Whether the data plane should be answering for the virtual addresses: true in Master,
    /// including while a graceful handoff is under way.
    pub fn is_serving(&self) -> bool {
        matches!(self.state, State::Master(_))
    }

    /// Whether a graceful handoff is under way (still master, advertising priority 0).
    pub fn is_handing_off(&self) -> bool {
        matches!(&self.state, State::Master(m) if m.handoff_until.is_some())
    }

    /// Whether this instance would take over from a live lower-priority master right now:
    /// the owner always does; others need `Preempt_Mode` and no handoff suppression.
    /// (The post-startup `preempt_delay` only postpones preemption, so it does not count.)
    pub fn would_preempt(&self) -> bool {
        if self.config.is_owner() {
            return true;
        }
        match &self.state {
            State::Backup(b) => self.config.preempt && !b.preempt_suppressed,
            _ => self.config.preempt,
        }
    }

    /// The effective priority (configured, then moved by tracking).
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// `Master_Adver_Interval`: the learned one in Backup, our own otherwise.
    pub fn master_adver_interval(&self) -> Duration {
        match &self.state {
            State::Backup(b) => b.master_adver_int,
            _ => self.config.advert_interval,
        }
    }

    /// `Skew_Time` at the effective priority and current `Master_Adver_Interval`.
    pub fn skew_time(&self) -> Duration {
        skew_time(
            self.config.version,
            self.priority,
            self.master_adver_interval(),
        )
    }

    /// `Master_Down_Interval` at the effective priority and current `Master_Adver_Interval`.
    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(
            self.config.version,
            self.priority,
            self.master_adver_interval(),
        )
    }

    /// When `timer` fires, if it runs in the current state.
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        match (&self.state, timer) {
            (State::Master(m), Timer::Adver) => Some(m.adver_at),
            (State::Master(m), Timer::HandoffBound) => m.handoff_until,
            (State::Backup(b), Timer::MasterDown) => Some(b.master_down_at),
            (State::Backup(b), Timer::PreemptDelay) => b.preempt_hold_until,
            _ => None,
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The cause of the most recent state transition.
    pub fn last_cause(&self) -> Option<Cause> {
        self.last_cause
    }

    /// Active fault causes.
    pub fn faults(&self) -> impl Iterator<Item = FaultCause> + '_ {
        self.faults.iter().copied()
    }

    pub fn has_fault(&self, cause: FaultCause) -> bool {
        self.faults.contains(&cause)
    }

    /// The next thing the caller must do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(_, at)| at)
    }

    /// Fires every timer due at or before `now`, earliest first. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((timer, at)) = self.next_timer() {
            if at > now {
                break;
            }
            self.on_timer(now, timer);
        }
    }

    /// Processes a well-formed advert received at `now`.
    ///
    /// `Err` says why it was not acceptable (and it was counted); `Ok` means the RFC rules
    /// ran, whatever they decided (including the §6.4.2 discard of a lower priority by a
    /// preempting backup, counted in [`Stats::lower_priority_ignored`]).
    pub fn handle_advert(
        &mut self,
        now: Instant,
        rx: RxMeta,
        advert: &AdvertRepr,
    ) -> Result<(), Discard> {
        if let Err(discard) = self.check(rx, advert) {
            self.stats.count_discard(discard.kind());
            if let Discard::WeAreOwner { from_priority } = discard {
                log::warn!("vrid {}: {} from {}", self.config.vrid.0, discard, rx.src);
                self.owner_answers(rx, from_priority);
            } else {
                log::debug!(
                    "vrid {}: discarded advert from {}: {discard}",
                    self.config.vrid.0,
                    rx.src
                );
            }
            return Err(discard);
        }
        self.stats.adverts_accepted += 1;
        match self.state {
            State::Backup(_) => self.backup_receives(now, rx, advert),
            State::Master(_) => self.master_receives(now, rx, advert),
            // `check` refused adverts in these states.
            State::Initialize | State::Fault => {}
        }
        Ok(())
    }

    /// Applies a daemon decision at `now`. A command meaningless in the current state (a
    /// second `Startup`, `Shutdown` in Initialize) is a no-op; `Err` leaves the state as is.
    pub fn handle_command(&mut self, now: Instant, command: Command) -> Result<(), CommandError> {
        match command {
            Command::Startup => {
                if matches!(self.state, State::Initialize) {
                    self.start(now, Cause::Startup);
                }
            }
            Command::Resume => {
                if matches!(self.state, State::Initialize) {
                    self.start(now, Cause::Resumed);
                }
            }
            Command::Shutdown => self.shutdown(),
            Command::SetPriority(priority) => self.set_priority(priority)?,
            Command::Fault(cause) => self.fault(cause),
            Command::Unfault(cause) => {
                self.faults.remove(&cause);
                if matches!(self.state, State::Fault) && self.faults.is_empty() {
                    self.start(now, Cause::FaultCleared);
                }
            }
            Command::GracefulHandoff => self.begin_handoff(now)?,
            Command::SyncMaster => {
                if matches!(self.state, State::Backup(_)) {
                    self.become_master(now, Cause::SyncGroup);
                }
            }
        }
        Ok(())
    }

    // --- acceptance (RFC 5798 §7.1, RFC 3768 §7.1) -------------------------------------

    fn check(&mut self, rx: RxMeta, advert: &AdvertRepr) -> Result<(), Discard> {
        if !matches!(self.state, State::Backup(_) | State::Master(_)) {
            return Err(Discard::NotRunning);
        }
        let config = &self.config;
        if advert.version != config.version {
            return Err(Discard::WrongVersion {
                got: advert.version,
                want: config.version,
            });
        }
        if advert.vrid != config.vrid {
            return Err(Discard::WrongVrid {
                got: advert.vrid,
                want: config.vrid,
            });
        }
        let v4 = matches!(config.virtual_addrs, VirtualAddrs::V4(_));
        if matches!(advert.addrs, VirtualAddrs::V4(_)) != v4 || rx.src.is_ipv4() != v4 {
            return Err(Discard::WrongFamily);
        }
        if rx.src == config.primary_addr {
            return Err(Discard::FromSelf);
        }
        if config.version == VrrpVersion::V2 {
            // RFC 3768 §7.1: the interval must match ours, and so must the authentication.
            if advert.max_adver_int != config.advert_interval {
                return Err(Discard::IntervalMismatch {
                    got: advert.max_adver_int,
                    want: config.advert_interval,
                });
            }
            if advert.auth != config.auth {
                return Err(Discard::AuthMismatch);
            }
        }
        if !same_addrs(&advert.addrs, &config.virtual_addrs) {
            // RFC 3768 §7.1: a v2 mismatch MUST be dropped unless it comes from the owner;
            // RFC 5798 §7.1: v3 SHOULD log and carries on.
            if config.version == VrrpVersion::V2 && advert.priority != OWNER_PRIORITY {
                return Err(Discard::AddressMismatch);
            }
            self.stats.address_mismatch += 1;
            log::warn!(
                "vrid {}: advert from {} lists other virtual addresses than ours",
                config.vrid.0,
                rx.src
            );
        }
        if config.is_owner() {
            // RFC 5798 §7.1: the owner discards every advert for its VRID.
            return Err(Discard::WeAreOwner {
                from_priority: advert.priority,
            });
        }
        Ok(())
    }

    /// The owner discards adverts (§7.1) but, being master, still asserts itself at once to a
    /// lower-priority sender as RFC 9568 §6.4.3 asks of every master, so a router that wrongly
    /// believes it is master steps down without waiting for the next periodic advert. Another
    /// owner (255) is a misconfiguration: answering it would make two owners answer each other
    /// forever, so it is only logged.
    fn owner_answers(&mut self, rx: RxMeta, from: Priority) {
        if !matches!(self.state, State::Master(_)) || from == OWNER_PRIORITY {
            return;
        }
        if from == RESIGN || !self.config.lower_prio_no_advert {
            self.send_advert(self.priority);
        }
        if from != RESIGN {
            self.actions.push_back(Action::LowerPriorityHeard {
                src: rx.src,
                priority: from,
            });
        }
    }

    // --- RFC 5798 §6.4.2 Backup --------------------------------------------------------

    fn backup_receives(&mut self, now: Instant, rx: RxMeta, advert: &AdvertRepr) {
        let own = self.priority;
        let version = self.config.version;
        let preempt = self.config.preempt;
        let State::Backup(backup) = &mut self.state else {
            return;
        };
        if advert.priority == RESIGN {
            // §6.4.2: "Set the Master_Down_Timer to Skew_Time".
            backup.master_down_at = now + skew_time(version, own, backup.master_adver_int);
            backup.last_heard = Heard::Resignation;
            return;
        }
        let holding = backup.preempt_hold_until.is_some_and(|until| now < until);
        let preempting = preempt && !backup.preempt_suppressed && !holding;
        if preempting && advert.priority < own {
            // §6.4.2: "Discard the ADVERTISEMENT"; Master_Down_Timer runs out and we preempt.
            backup.last_heard = Heard::LowerPriority;
            self.stats.lower_priority_ignored += 1;
            return;
        }
        // §6.4.2: learn Master_Adver_Interval (v3 only; v2 already matched ours), recompute
        // Master_Down_Interval, reset Master_Down_Timer.
        if version == VrrpVersion::V3 {
            backup.master_adver_int = advert.max_adver_int;
        }
        backup.master_down_at = now + master_down_interval(version, own, backup.master_adver_int);
        backup.last_heard = Heard::Master;
        if backup.forwarding_to.is_some_and(|mac| mac != rx.src_mac) {
            // After a handoff, follow whichever router is master now.
            backup.forwarding_to = Some(rx.src_mac);
            self.actions
                .push_back(Action::ForwardTo { mac: rx.src_mac });
        }
    }

    // --- RFC 5798 §6.4.3 Master --------------------------------------------------------

    fn master_receives(&mut self, now: Instant, rx: RxMeta, advert: &AdvertRepr) {
        let interval = self.config.advert_interval;
        let State::Master(master) = &mut self.state else {
            return;
        };
        if master.handoff_until.is_some() {
            // Handing off: never fight. Any live master (priority > 0) completes the handoff,
            // whatever its priority; another resignation means nothing to us.
            if advert.priority != RESIGN {
                self.complete_handoff(now, rx, advert);
            }
            return;
        }
        if advert.priority == RESIGN {
            // §6.4.3: "Send an ADVERTISEMENT; Reset the Adver_Timer".
            master.adver_at = now + interval;
            self.send_advert(self.priority);
            return;
        }
        let own = self.priority;
        let higher = advert.priority > own;
        if higher || (advert.priority == own && addr_greater(rx.src, self.config.primary_addr)) {
            let cause = if higher {
                Cause::HigherPriorityAdvert
            } else {
                Cause::TieBreakLost
            };
            let learned = self.learned_interval(advert);
            // The sender is the new master: hosts whose ARP/ND caches still point here are
            // best served by forwarding to it on the wire until they learn (RFC 5798 leaves
            // the ex-master silent; dropping would lose what is already on its way).
            let traffic = BackupTraffic::Forward { mac: rx.src_mac };
            if self.config.higher_prio_send_advert {
                // keepalived `higher_prio_send_advert`: one advert of ours before stepping
                // down (packets before the state action, see `Action`).
                self.send_advert(own);
            }
            self.become_backup(now, cause, learned, traffic, false);
            return;
        }
        if !self.config.lower_prio_no_advert {
            // RFC 9568 §6.4.3: discard, and "send an ADVERTISEMENT immediately to assert the
            // Active state". The RFC does not reset the Adver_Timer here, so neither do we.
            self.send_advert(own);
        }
        // (Our own adverts looped back never get here: `check` discards them.)
        self.actions.push_back(Action::LowerPriorityHeard {
            src: rx.src,
            priority: advert.priority,
        });
    }

    fn complete_handoff(&mut self, now: Instant, rx: RxMeta, advert: &AdvertRepr) {
        let mac = rx.src_mac;
        log::info!(
            "vrid {}: new master {} ({mac}) heard, handing traffic over",
            self.config.vrid.0,
            rx.src
        );
        self.actions.push_back(Action::ForwardTo { mac });
        let learned = self.learned_interval(advert);
        self.become_backup(
            now,
            Cause::HandoffComplete,
            learned,
            BackupTraffic::Forward { mac },
            true,
        );
    }

    // --- timers ------------------------------------------------------------------------

    fn next_timer(&self) -> Option<(Timer, Instant)> {
        let mut next: Option<(Timer, Instant)> = None;
        for timer in Timer::ALL {
            if let Some(at) = self.timer(timer)
                && next.is_none_or(|(_, best)| at < best)
            {
                next = Some((timer, at));
            }
        }
        next
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Adver => {
                // §6.4.3: "Send an ADVERTISEMENT; Reset the Adver_Timer".
                let interval = self.config.advert_interval;
                let priority = if self.is_handing_off() {
                    RESIGN
                } else {
                    self.priority
                };
                if let State::Master(master) = &mut self.state {
                    master.adver_at = now + interval;
                }
                self.send_advert(priority);
            }
            Timer::MasterDown => {
                let cause = match &self.state {
                    State::Backup(b) => match b.last_heard {
                        Heard::Resignation => Cause::PriorityZeroReceived,
                        Heard::LowerPriority => Cause::Preempted,
                        Heard::Nothing | Heard::Master => Cause::MasterDownTimerExpired,
                    },
                    _ => return,
                };
                self.become_master(now, cause);
            }
            Timer::PreemptDelay => {
                if let State::Backup(backup) = &mut self.state {
                    backup.preempt_hold_until = None;
                    log::info!("vrid {}: preempt delay over", self.config.vrid.0);
                }
            }
            Timer::HandoffBound => {
                log::warn!(
                    "vrid {}: no new master within the handoff bound, stepping down anyway",
                    self.config.vrid.0
                );
                let interval = self.config.advert_interval;
                self.become_backup(
                    now,
                    Cause::HandoffBoundExpired,
                    interval,
                    BackupTraffic::Drop,
                    true,
                );
            }
        }
    }

    // --- commands ----------------------------------------------------------------------

    /// RFC 5798 §6.4.1 Startup, also used when the last fault clears.
    fn start(&mut self, now: Instant, cause: Cause) {
        if let Some(&fault) = self.faults.first() {
            let cause = Cause::Fault(fault);
            self.transition(State::Fault, cause);
            self.actions.push_back(Action::EnterFault { cause });
            return;
        }
        if self.config.is_owner() {
            let cause = if cause == Cause::Startup {
                Cause::OwnerStartup
            } else {
                cause
            };
            self.become_master(now, cause);
            return;
        }
        if cause == Cause::Resumed {
            self.become_master(now, cause);
            return;
        }
        let interval = self.config.advert_interval;
        self.become_backup(now, cause, interval, BackupTraffic::Drop, false);
        let delay = self.config.preempt_delay;
        if let State::Backup(backup) = &mut self.state
            && !delay.is_zero()
        {
            backup.preempt_hold_until = Some(now + delay);
        }
    }

    fn shutdown(&mut self) {
        if matches!(self.state, State::Initialize) {
            return;
        }
        if self.is_serving() {
            // §6.4.3 Shutdown: "Send an ADVERTISEMENT with Priority = 0".
            self.send_advert(RESIGN);
        }
        self.transition(State::Initialize, Cause::Shutdown);
        self.actions.push_back(Action::EnterInitialize {
            cause: Cause::Shutdown,
        });
    }

    fn set_priority(&mut self, priority: Priority) -> Result<(), CommandError> {
        if self.config.is_owner() {
            return Err(CommandError::OwnerPriorityFixed);
        }
        if priority == RESIGN || priority == OWNER_PRIORITY {
            return Err(CommandError::InvalidPriority { got: priority.0 });
        }
        if priority == self.priority {
            return Ok(());
        }
        log::info!(
            "vrid {}: effective priority {} -> {}",
            self.config.vrid.0,
            self.priority.0,
            priority.0
        );
        self.priority = priority;
        // A master announces the change at once so a backup that now outranks it starts
        // discarding (and so preempting) without waiting a whole interval. A backup's new
        // Skew_Time applies from the next timer reset (§6.4.2 recomputes it there).
        if self.is_serving() && !self.is_handing_off() {
            self.send_advert(priority);
        }
        Ok(())
    }

    fn fault(&mut self, cause: FaultCause) {
        self.faults.insert(cause);
        if !matches!(self.state, State::Backup(_) | State::Master(_)) {
            return;
        }
        if self.is_serving() {
            // Let the backups take over after Skew_Time instead of Master_Down_Interval.
            self.send_advert(RESIGN);
        }
        let cause = Cause::Fault(cause);
        self.transition(State::Fault, cause);
        self.actions.push_back(Action::EnterFault { cause });
    }

    fn begin_handoff(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.config.is_owner() {
            return Err(CommandError::OwnerCannotHandOff);
        }
        let bound = self.config.effective_handoff_bound();
        let interval = self.config.advert_interval;
        let State::Master(master) = &mut self.state else {
            return Err(CommandError::NotMaster);
        };
        if master.handoff_until.is_some() {
            return Ok(());
        }
        master.handoff_until = Some(now + bound);
        master.adver_at = now + interval;
        log::info!(
            "vrid {}: graceful handoff started, serving until a new master is heard (at most {bound:?})",
            self.config.vrid.0
        );
        self.send_advert(RESIGN);
        Ok(())
    }

    // --- transitions and output --------------------------------------------------------

    /// Becomes master: data plane first, then the advert and the GARP/NA (RFC 5798 §6.4.1,
    /// §6.4.2 when `Master_Down_Timer` fires).
    fn become_master(&mut self, now: Instant, cause: Cause) {
        let master = Master {
            adver_at: now + self.config.advert_interval,
            handoff_until: None,
        };
        self.transition(State::Master(master), cause);
        let accept = self.config.accept || self.config.is_owner();
        self.actions
            .push_back(Action::BecomeMaster { cause, accept });
        self.send_advert(self.priority);
        self.actions.push_back(Action::SendGratuitous {
            addrs: self.config.virtual_addrs.clone(),
        });
    }

    /// Becomes backup with `Master_Down_Timer = Master_Down_Interval` (RFC 5798 §6.4.1,
    /// §6.4.3) computed from `master_adver_int`.
    fn become_backup(
        &mut self,
        now: Instant,
        cause: Cause,
        master_adver_int: Duration,
        traffic: BackupTraffic,
        preempt_suppressed: bool,
    ) {
        let down = master_down_interval(self.config.version, self.priority, master_adver_int);
        let backup = Backup {
            master_adver_int,
            master_down_at: now + down,
            preempt_hold_until: None,
            preempt_suppressed,
            last_heard: Heard::Nothing,
            forwarding_to: match traffic {
                BackupTraffic::Drop => None,
                BackupTraffic::Forward { mac } => Some(mac),
            },
        };
        self.transition(State::Backup(backup), cause);
        self.actions
            .push_back(Action::BecomeBackup { cause, traffic });
    }

    fn transition(&mut self, to: State, cause: Cause) {
        let from = self.state();
        self.state = to;
        self.stats.transitions += 1;
        self.last_cause = Some(cause);
        log::info!(
            "vrid {}: {from} -> {} ({cause})",
            self.config.vrid.0,
            self.state()
        );
    }

    /// `Master_Adver_Interval` to adopt from an advert: its own in v3 (§6.4.3), ours in v2.
    fn learned_interval(&self, advert: &AdvertRepr) -> Duration {
        match self.config.version {
            VrrpVersion::V3 => advert.max_adver_int,
            VrrpVersion::V2 => self.config.advert_interval,
        }
    }

    fn send_advert(&mut self, priority: Priority) {
        let config = &self.config;
        let advert = AdvertRepr {
            version: config.version,
            vrid: config.vrid,
            priority,
            max_adver_int: config.advert_interval,
            addrs: config.virtual_addrs.clone(),
            auth: match config.version {
                VrrpVersion::V2 => config.auth,
                VrrpVersion::V3 => Auth::None,
            },
        };
        self.stats.adverts_sent += 1;
        self.actions.push_back(Action::SendAdvert(advert));
    }
}

/// RFC 5798 §6.4.3: addresses compare "as unsigned integers in network byte order", which is
/// lexicographic order of the octets. Different families never compare greater.
fn addr_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets() > b.octets(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets() > b.octets(),
        _ => false,
    }
}

/// Same set of addresses, in any order.
fn same_addrs(a: &VirtualAddrs, b: &VirtualAddrs) -> bool {
    fn same<T: PartialEq>(a: &[T], b: &[T]) -> bool {
        a.len() == b.len() && a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
    }
    match (a, b) {
        (VirtualAddrs::V4(a), VirtualAddrs::V4(b)) => same(a, b),
        (VirtualAddrs::V6(a), VirtualAddrs::V6(b)) => same(a, b),
        _ => false,
    }
}
