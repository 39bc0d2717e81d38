//! What the balancer is told of each virtual service: types of its own, so the core does not
//! depend on the daemon's configuration file (the agent maps each `[[virtual_server]]` to a
//! [`ServiceConfig`], as it maps an `[[instance]]` to the VRRP core's `InstanceConfig`).

use std::net::IpAddr;

use vipflip_common::{Scheduler, ServiceKey};

/// One virtual service, with what the balancer needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Unique among services: health verdicts and quorum changes name the service by it.
    pub name: String,
    /// The interface its real servers are reached on (its VRRP instance's).
    pub interface: String,
    /// Its `SERVICES` key: VIP, protocol, port.
    pub key: ServiceKey,
    /// Which table it gets: Maglev and source hashing share the Maglev table, WRR has its own.
    pub scheduler: Scheduler,
    /// Healthy real servers with weight it needs for quorum.
    pub quorum: u32,
    pub reals: Vec<RealConfig>,
    /// Takes every flow while no real server is usable.
    pub sorry_server: Option<IpAddr>,
}

/// One real server of a [`ServiceConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealConfig {
    pub address: IpAddr,
    /// 0 drains it: no new flows, its remembered ones kept.
    pub weight: u16,
    /// Whether a health check reports on it; an unchecked server is always healthy.
    pub checked: bool,
}
