//! Tracking, sans-IO: everything that moves a VRRP instance's effective priority or holds it
//! in Fault, with keepalived's rules (`track_interface`, `track_script`, `track_file`, and a
//! virtual server's quorum).
//!
//! One [`TrackState`] per instance: its [`TrackConfig`] (base priority, own interface, the
//! trackers and their weights) and every [`Observation`] in; the [`Command`]s that bring
//! the state machine up to date out. The drivers that make the observations (rtnetlink link
//! events, scripts, inotify on track files) are the agent's (`vipflip::track`); the daemon's
//! balancer reports quorums.
//!
//! # keepalived semantics (keepalived.conf(5), keepalived 2.2 `vrrp_track.c`, `track_file.c`)
//!
//! | tracker | weight > 0 | weight < 0 | weight 0 |
//! |---|---|---|---|
//! | interface (up = `IFF_UP` and carrier) | `+w` while up | `+w` (lower) while down | Fault while down |
//! | script (after rise/fall) | `+w` while good | `+w` (lower) while failing | Fault while failing |
//! | file holding `v` | `v × w`, in `-254..=253`; `-254` is Fault | same | Fault while `v ≠ 0` |
//! | quorum of a virtual server | `+w` while met | `+w` (lower) while lost | Fault while lost |
//!
//! The effective priority is `base + Σ` clamped to `1..=254`. An address owner (255) keeps
//! 255: its weighted trackers are ignored (keepalived: "Cannot have weighted track script …
//! with priority 255") and only its weight-0 trackers act, through Fault. The instance's own
//! interface being down is [`FaultCause::LinkDown`](vipflip_vrrp::FaultCause::LinkDown).
//! A script that has not finished its first run counts neither way (keepalived's
//! `VRRP_SCRIPT_STATUS_INIT`), nor does a script that was disabled.
//!
//! # Architecture invariant
//!
//! No I/O and no clock: the `Cargo.toml` names the VRRP core, the wire types and the `log`
//! facade only; the `clippy.toml` denies what std alone offers (the clock, files, sockets,
//! processes, threads).
//!
//! [`Command`]: vipflip_vrrp::Command

mod config;
pub mod process;
mod state;

use std::path::PathBuf;

pub use config::{TrackConfig, Tracked, TrackerConfig};
pub use state::{Effect, TrackState, TrackerReport};

/// One fact from a driver, for every [`TrackState`] to [`TrackState::observe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Interface `name` is up (administratively up with carrier) or not (down, or absent).
    Link { name: String, up: bool },
    /// `[[script]]` `name` became good (`ok`) or failing, after rise/fall; the first result
    /// is reported at once.
    Script { name: String, ok: bool },
    /// `[[script]]` `name` was disabled because `script_security` refused it (its path
    /// became writable by others than root): it no longer counts either way, as keepalived
    /// removes an insecure `track_script` from the instances that track it.
    ScriptDisabled { name: String },
    /// Track file `path` (as configured) holds `value`; 0 when missing, empty or unreadable.
    File { path: PathBuf, value: i64 },
    /// `[[virtual_server]]` `service` has (`met`) or lacks its quorum of healthy real
    /// servers (reported by the daemon's balancer, not by a driver).
    Quorum { service: String, met: bool },
}
