//! The daemon (`vipflip run`): the I/O shell around the sans-IO VRRP core.
//!
//! One tokio task runs the loop: it waits for an advert on any VRRP socket, a control request,
//! a signal or the earliest deadline of any instance, feeds the VRRP core and carries out what
//! the core asks for, in the order that makes a flip fast:
//!
//! - becoming master: the `VIPS` map first (one update per VIP: traffic is accepted from that
//!   instant), then the addresses (netlink), then (queued, not awaited) the instance's
//!   `virtual_routes` and `virtual_rules`, then gratuitous ARP / unsolicited NA;
//! - becoming backup: the map to `Forward` to the new master's MAC for `forward_window` (hosts
//!   whose ARP caches still point here keep being served), then `Drop`; routes and rules
//!   removed, then addresses.
//!
//! Every step is logged with the time it took. Slow steps (netlink, announcements) run in
//! their own tasks, so they never delay an advert.

mod error;
mod runtime;

use std::{path::PathBuf, time::Duration};

pub use error::{ControlSocketError, InstanceError, InstanceErrorCause, StartError};
pub use runtime::run;

/// Options of `vipflip run` that are not in the configuration file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Leave the XDP program and its pins in place on exit (they keep forwarding to the new
    /// master); by default the daemon detaches and unpins on exit.
    pub keep_dataplane: bool,
    /// Overrides `global.control_socket`.
    pub control_socket: Option<PathBuf>,
    /// The configuration file, re-read on SIGHUP / `vipflip reload`; without one, reloads
    /// are refused.
    pub config_path: Option<PathBuf>,
}

/// How long a SIGTERM waits at most for the handoffs of master instances to complete.
pub const SHUTDOWN_HANDOFF_LIMIT: Duration = Duration::from_secs(10);
