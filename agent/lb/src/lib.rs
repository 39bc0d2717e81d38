//! The load balancer's core (the LVS-DR and LVS-TUN half of vipflip), sans-IO.
//!
//! - [`table`]: the lookup tables (weighted Maglev, LVS-ordered weighted round robin), pure
//!   functions of the real servers' addresses and weights, so two directors with one
//!   configuration build the same ones.
//! - [`balancer`]: the [`Balancer`](balancer::Balancer): [`ServiceConfig`]s, health verdicts
//!   and MACs in; the map writes that bring an interface's data plane up to date, in the
//!   order to apply them, and quorum changes out.
//! - [`hold_down`]: health verdicts held back after a failure, so a flapping check cannot
//!   keep directors disagreeing.
//!
//! # Architecture invariant
//!
//! Nothing here touches a map, a socket or the clock: the daemon (`vipflip`'s `lb` and
//! `daemon::runtime::lb`) runs the health checks and the neighbour resolver, applies the
//! writes, and passes in anything that varies between runs (the generation base). The
//! `Cargo.toml` is the enforcement: `vipflip-common` (map types, without aya) and
//! `thiserror` only; the `clippy.toml` denies what std alone offers (the clock, files,
//! sockets, processes, threads).

pub mod balancer;
mod config;
pub mod hold_down;
mod slots;
pub mod table;

pub use config::{Forward, RealConfig, ServiceConfig, TunnelSource};
