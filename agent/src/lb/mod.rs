//! The Direct Routing load balancer (the LVS-DR half): virtual services spread over real
//! servers by the XDP program, while the service's VRRP instance is master, or whenever the
//! agent runs for a service on an interface of its own.
//!
//! - [`table`] and [`balancer`]: the `vipflip-lb` crate (sans-IO), re-exported: the lookup
//!   tables (Maglev, weighted round robin), pure functions of the healthy real servers and
//!   their weights, so both directors build the same ones; the [`Balancer`](balancer::Balancer)
//!   that turns verdicts, MACs and reloads into ordered map writes. It takes its own
//!   [`ServiceConfig`]s, which [`Config::balancer_config`](crate::config::Config::balancer_config)
//!   makes of the `[[virtual_server]]`s.
//! - `check`: health checks (TCP connect, HTTP GET, script) with rise/fall, as tokio tasks
//!   reporting to the daemon loop.

pub mod check;
#[cfg(test)]
mod tests;

pub use vipflip_lb::{
    Forward, RealConfig, ServiceConfig, TunnelSource, balancer, hold_down, table,
};
