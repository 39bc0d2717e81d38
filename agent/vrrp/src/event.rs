//! What goes into an [`Instance`](super::Instance) besides adverts, and what comes out.

use core::fmt;
use std::net::IpAddr;

use vipflip_wire::{AdvertRepr, MacAddr, Priority, VirtualAddrs};

/// What the receive path knows about an advert besides its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// IP source: the sender's primary address, compared for the equal-priority tie-break
    /// (RFC 5798 §6.4.3).
    pub src: IpAddr,
    /// Ethernet source: the sender's own MAC, where a graceful handoff forwards traffic to.
    pub src_mac: MacAddr,
}

/// A daemon decision fed to [`Instance::handle_command`](super::Instance::handle_command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// RFC 5798 §6.4.1 `Startup` event: leave Initialize.
    Startup,
    /// `Startup` for a restarted agent whose data plane still serves this instance's
    /// addresses (the previous run was master, and its pinned XDP program kept answering):
    /// leave Initialize as master at once, announcing with an advert, rather than as a backup
    /// that stays silent for `Master_Down_Interval` while the other routers' timers run out.
    /// Not in the RFC, whose routers lose their state with their process; the election then
    /// goes on as usual (a better master's advert sends this one back to backup, §6.4.3).
    /// A fault still wins: a faulty instance enters Fault, as on `Startup`.
    Resume,
    /// RFC 5798 §6.4.2/§6.4.3 `Shutdown` event: a master resigns with a priority-0 advert;
    /// every state goes to Initialize.
    Shutdown,
    /// Tracking changed the effective priority (1..=254; the owner's 255 is fixed).
    SetPriority(Priority),
    /// A tracked object failed: enter Fault until every cause is cleared.
    Fault(FaultCause),
    /// A tracked object recovered.
    Unfault(FaultCause),
    /// Planned handover to another router without a lost packet: keep serving, advertise
    /// priority 0, and step down once the new master is heard (or the bound expires). The
    /// instance then stays a backup that does not preempt until it next leaves Backup.
    GracefulHandoff,
    /// A sync-group peer became master; a backup follows it (keepalived `vrrp_sync_group`).
    SyncMaster,
}

/// Why a fault was raised; several can be active at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultCause {
    /// The interface the instance runs on is down.
    LinkDown,
    /// A tracked interface, script or file failed; the number is the daemon's handle for it.
    Tracked(u32),
    /// Another member of this instance's sync group is in fault.
    SyncGroup,
}

impl fmt::Display for FaultCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LinkDown => f.write_str("link down"),
            Self::Tracked(id) => write!(f, "tracked object {id} failed"),
            Self::SyncGroup => f.write_str("sync group peer in fault"),
        }
    }
}

/// Why a state transition happened; carried by every state [`Action`] and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Initialize → Backup on `Startup` (RFC 5798 §6.4.1).
    Startup,
    /// Initialize → Master on `Startup` because priority is 255 (RFC 5798 §6.4.1).
    OwnerStartup,
    /// Initialize → Master on `Resume`: the previous run was master and its data plane still
    /// serves the addresses.
    Resumed,
    /// Backup → Master: no advert for `Master_Down_Interval` (RFC 5798 §6.4.2).
    MasterDownTimerExpired,
    /// Backup → Master: `Skew_Time` after the master resigned with priority 0.
    PriorityZeroReceived,
    /// Backup → Master: the timer ran out while we discarded a lower-priority master's
    /// adverts, i.e. we preempted it (RFC 5798 §6.4.2, `Preempt_Mode`).
    Preempted,
    /// Master → Backup: an advert with a higher priority (RFC 5798 §6.4.3).
    HigherPriorityAdvert,
    /// Master → Backup: equal priority, higher sender address (RFC 5798 §6.4.3).
    TieBreakLost,
    /// Any → Initialize on `Shutdown`.
    Shutdown,
    /// Any running state → Fault.
    Fault(FaultCause),
    /// Fault → Backup (or Master for the owner): the last fault cause cleared.
    FaultCleared,
    /// Master (handing off) → Backup: the new master's advert was heard.
    HandoffComplete,
    /// Master (handing off) → Backup: no new master within the handoff bound.
    HandoffBoundExpired,
    /// Backup → Master because a sync-group peer became master.
    SyncGroup,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Startup => f.write_str("startup"),
            Self::OwnerStartup => f.write_str("startup as address owner"),
            Self::Resumed => f.write_str("resumed the previous run's mastership"),
            Self::MasterDownTimerExpired => f.write_str("master down timer expired"),
            Self::PriorityZeroReceived => f.write_str("master resigned with priority 0"),
            Self::Preempted => f.write_str("preempted a lower-priority master"),
            Self::HigherPriorityAdvert => f.write_str("higher-priority advert"),
            Self::TieBreakLost => f.write_str("equal priority, higher sender address"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::Fault(cause) => write!(f, "fault: {cause}"),
            Self::FaultCleared => f.write_str("fault cleared"),
            Self::HandoffComplete => f.write_str("graceful handoff complete"),
            Self::HandoffBoundExpired => f.write_str("graceful handoff bound expired"),
            Self::SyncGroup => f.write_str("sync group"),
        }
    }
}

/// What a backup's data plane does with traffic for the virtual router's MAC and addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupTraffic {
    /// RFC 5798 §6.4.2: a backup neither answers nor accepts; drop.
    Drop,
    /// Stepping down to a master whose MAC is known (a graceful handoff, or a higher-priority
    /// or tie-winning advert): forward stragglers (hosts whose caches still point here) to the
    /// new master, so the change loses nothing. The caller bounds how long.
    Forward { mac: MacAddr },
}

/// Something the caller must do, drained with [`Instance::poll_action`](super::Instance::poll_action).
///
/// Order: when an instance becomes master the state action comes before the packets (the
/// data plane must answer for the addresses before the GARP draws traffic); when it stops
/// being master the packets (the priority-0 advert) come before the state action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advert now; `advert.priority` is 0 when resigning or handing off.
    SendAdvert(AdvertRepr),
    /// Send a gratuitous ARP per IPv4 address / unsolicited NA per IPv6 address (RFC 5798
    /// §6.4.2). Emitted once on becoming master; repeats and refreshes are the daemon's.
    SendGratuitous { addrs: VirtualAddrs },
    /// Serve the virtual router: answer ARP/ND, forward for its MAC; `accept` says whether
    /// packets addressed to the virtual addresses are delivered locally (`Accept_Mode` or
    /// owner, RFC 5798 §6.4.3).
    BecomeMaster { cause: Cause, accept: bool },
    /// Stop serving; `traffic` says whether to drop or forward to a new master.
    BecomeBackup {
        cause: Cause,
        traffic: BackupTraffic,
    },
    /// Stop serving because of a fault.
    EnterFault { cause: Cause },
    /// Stop serving because the instance was shut down.
    EnterInitialize { cause: Cause },
    /// Graceful handoff: forward traffic that still reaches this router to the new master,
    /// whose MAC was learned from its advert's Ethernet source.
    ForwardTo { mac: MacAddr },
    /// As master, an advert of lower priority (or of equal priority from a lower address)
    /// was heard from `src`: another router believes it is master, presumably after a
    /// split brain. keepalived's `MASTER_RX_LOWER_PRI` event (its
    /// `notify_master_rx_lower_pri` script and FIFO line), for a master that must take back
    /// external state the other one grabbed (a cloud provider's secondary address). Not a
    /// transition: the instance stays master.
    LowerPriorityHeard { src: IpAddr, priority: Priority },
}

/// Why a [`Command`] was refused; the instance's state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("effective priority {got} is outside 1..=254")]
    InvalidPriority { got: u8 },
    #[error("the address owner's priority is fixed at 255 (RFC 5798 §5.2.4)")]
    OwnerPriorityFixed,
    #[error("only a master can hand off")]
    NotMaster,
    #[error("the address owner always reclaims mastership, so it cannot hand off")]
    OwnerCannotHandOff,
}
