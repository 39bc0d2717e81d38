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
    /// How frames reach its real servers (and its sorry server).
    pub forward: Forward,
}

/// How a service's frames reach its real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Direct Routing: the real servers share the interface's link; only the MACs change.
    Direct,
    /// IP-in-IP to each real server's address, routed by the FIB.
    Ipip { source: Option<TunnelSource> },
    /// GUE (variant 1, over UDP to `port`) to each real server's address.
    Gue {
        port: u16,
        source: Option<TunnelSource>,
    },
}

impl Forward {
    /// The `source` of a tunnel.
    pub const fn source(&self) -> Option<TunnelSource> {
        match self {
            Self::Direct => None,
            Self::Ipip { source } | Self::Gue { source, .. } => *source,
        }
    }

    /// Whether frames go through a tunnel (real servers need no MAC, only a route).
    pub const fn is_tunnel(&self) -> bool {
        !matches!(self, Self::Direct)
    }

    /// `dr`, `ipip` or `gue`, as the configuration and status say it.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Direct => "dr",
            Self::Ipip { .. } => "ipip",
            Self::Gue { .. } => "gue",
        }
    }
}

/// A tunnel's outer source: `addr` with its low `32 - prefix_len` (IPv4) or `128 -
/// prefix_len` (IPv6, at most 32) bits varied per flow; a full-length prefix is one fixed
/// source. Without one, the source is the one the FIB picks towards the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelSource {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl TunnelSource {
    /// The bits varied per flow.
    pub const fn varied_bits(&self) -> u8 {
        let len: u8 = match self.addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let bits = len.saturating_sub(self.prefix_len);
        if bits > 32 { 32 } else { bits }
    }
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
