//! The sans-IO VRRP state machine: RFC 5798 §6 as amended by RFC 9568, and
//! version 2 (RFC 3768).
//!
//! One [`Instance`] is one virtual router: one VRID, on one interface, for one address family.
//! It is a pure function of its inputs, in the style of quinn-proto's `Connection`:
//!
//! - inputs: [`Instance::handle_advert`] (a well-formed advert the `wire` layer parsed),
//!   [`Instance::handle_timeout`] (the clock reached [`Instance::poll_timeout`]) and
//!   [`Instance::handle_command`] (the daemon's decisions: startup, shutdown, tracking, …);
//! - outputs: [`Action`]s drained with [`Instance::poll_action`], and the next deadline from
//!   [`Instance::poll_timeout`].
//!
//! # Call order
//!
//! The caller owns the clock and the sockets. After *every* `handle_*` call, and before
//! sleeping:
//!
//! 1. drain [`Instance::poll_action`] until it returns `None`, and carry out each action in
//!    order (program the data plane, send the advert, send the GARP/NA);
//! 2. read [`Instance::poll_timeout`] and sleep until that instant or until an advert or a
//!    command arrives, whichever comes first;
//! 3. when the instant is reached, call [`Instance::handle_timeout`] with the current time.
//!
//! `now` must never go backwards between calls. Calling `handle_timeout` early, or any input
//! in a state where it means nothing (an advert before `Startup`, `Shutdown` twice), is a
//! harmless no-op: the state machine keeps its deadlines and reports nothing new.
//!
//! # Architecture invariant
//!
//! This crate does no I/O: it never opens a socket and never reads the clock (`Instant::now`
//! appears nowhere outside its tests). Time is what the caller passes in as `now`, which is
//! what lets the simulation tests run hours of virtual time in milliseconds. Its
//! `Cargo.toml` is the enforcement: it depends on `vipflip-wire`, `thiserror` and `log`
//! only, so tokio, aya and libc cannot be imported here; its `clippy.toml` denies what std
//! alone offers (the clock, files, sockets, processes, threads).
//!
//! # Choices the RFCs leave open
//!
//! - **Timer rounding**: `Skew_Time` and `Master_Down_Interval` are exact to the nanosecond
//!   (rounded down), not truncated to centiseconds; see [`skew_time`].
//! - **`preempt_delay`** (keepalived): the window starts when the instance starts (or leaves
//!   Fault). Inside it, lower-priority adverts reset the timer as if preemption were off;
//!   after it, they are discarded and the timer runs out `Master_Down_Interval` after the last
//!   obeyed one. A zero delay is exactly RFC behaviour.
//! - **Graceful handoff**: the master keeps serving and advertises priority 0 every interval;
//!   the first advert with a non-zero priority from anyone completes it
//!   ([`Action::ForwardTo`], then [`Action::BecomeBackup`] with
//!   [`BackupTraffic::Forward`]). If none is heard within the bound it steps down anyway.
//!   Afterwards it is an ordinary backup *except that it does not preempt*, for as long as it
//!   stays Backup: the operator asked for the other router, so winning it back needs a
//!   restart (`Shutdown` then `Startup`), a fault cycle, or the new master going silent.
//! - **Owner**: discards every advert for its VRID (RFC 5798 §7.1) but, being master,
//!   answers a lower-priority one at once like any RFC 9568 master.
//! - **Tracking**: a master whose effective priority changes advertises it at once; a master
//!   entering Fault resigns with priority 0 so backups take over after `Skew_Time`.
//! - **Version 2**: the RFC 9568 immediate answer to lower priorities (and the
//!   `lower_prio_no_advert` knob) applies to v2 instances too; RFC 3768 is silent there.
//!
//! # Layering
//!
//! Whether bytes are a *well-formed* advert (TTL, checksum, version, count, interval ≠ 0) is
//! decided in [`vipflip_wire`]; whether a well-formed advert is *acceptable now* (VRID, family,
//! v2 interval and authentication, address owner) is decided here and counted by
//! [`Discard`] reason.

mod config;
mod event;
mod instance;
mod stats;
mod sync_group;
mod timer;

pub use config::{ConfigError, InstanceConfig};
pub use event::{Action, BackupTraffic, Cause, Command, CommandError, FaultCause, RxMeta};
pub use instance::{Instance, StateKind};
pub use stats::{Discard, DiscardKind, Stats};
pub use sync_group::SyncGroup;
pub use timer::{Timer, master_down_interval, skew_time};
/// Re-exported for callers building [`RxMeta`] and reading [`Action::ForwardTo`].
pub use vipflip_wire::MacAddr;

#[cfg(test)]
mod tests;
