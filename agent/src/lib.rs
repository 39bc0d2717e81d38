//! vipflip: a VRRP high-availability agent whose data path is an XDP program.
//!
//! Layers, from the bytes up (see ARCHITECTURE.md):
//! - [`wire`]: packet formats (VRRP adverts, ARP, IPv6 NA, Ethernet) as typed `Repr`s;
//! - [`vrrp`]: the sans-IO VRRPv3/v2 state machine (no sockets, no clock, no aya);
//! - [`dataplane`]: loading, pinning and driving the XDP program and its maps;
//! - [`io`]: VRRP sockets, netlink, gratuitous ARP / NA (the shell around `vrrp`);
//! - [`config`]: the TOML configuration, validated with `file:line:column` diagnostics;
//! - [`daemon`]: `vipflip run`, which joins all of the above; [`control`]: its socket;
//!   [`metrics`]: its Prometheus metrics and their HTTP endpoint;
//! - [`realserver`]: `vipflip real-server`, what a real server needs for each forwarding mode.

pub mod announce;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod import;
pub mod io;
pub mod lb;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod realserver;
pub mod track;

/// The `vipflip-vrrp` crate: the state machine, apart so Cargo keeps I/O out of it.
pub use vipflip_vrrp as vrrp;
/// The `vipflip-wire` crate: the packet formats.
pub use vipflip_wire as wire;
