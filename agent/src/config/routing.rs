//! `[routing]` and `[[announce]]`: which VIPs this director announces through a routing
//! daemon (FRR, BIRD) and when. vipflip writes each announced VIP as a host route into a
//! kernel table of its own; the routing daemon redistributes that table over BGP, so the
//! upstream router spreads flows over every director announcing the VIP (ECMP).

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr};

pub use crate::announce::AnnounceGate;

/// `[routing]`: where announced routes go, and (for `vipflip routing-config`) the BGP side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingSpec {
    /// The kernel routing table vipflip owns: it adds and removes its routes there and
    /// nothing else. Default 200.
    pub table: u32,
    /// The routes' `rtm_protocol`. Default 250; FRR redistributes it, while it ignores
    /// `kernel` and its own numbers (186–198), and BIRD ignores `kernel` and `bird` (12).
    pub protocol: u8,
    /// `vipflip drain`: after withdrawing, serve what still arrives until no VIP packet has
    /// come for this long, then stop. Default 5 s.
    pub drain_quiet: Duration,
    /// The routing daemon's BGP session, for `vipflip routing-config` only (the daemon
    /// never speaks BGP itself).
    pub bgp: Option<BgpSpec>,
}

impl Default for RoutingSpec {
    fn default() -> Self {
        Self {
            table: 200,
            protocol: 250,
            drain_quiet: Duration::from_secs(5),
            bgp: None,
        }
    }
}

/// `[routing.bgp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSpec {
    /// This director's AS number.
    pub asn: u32,
    /// The BGP router id; `None`: the routing daemon picks one.
    pub router_id: Option<Ipv4Addr>,
    /// The upstream routers.
    pub neighbors: Vec<BgpNeighbor>,
    /// BFD on every session; `None`: no BFD.
    pub bfd: Option<BfdSpec>,
    /// BGP's hold time in seconds (keepalives every third of it); `None`: the routing
    /// daemon's default (FRR and BIRD: 180 s, 240 s). Without BFD it is how long a dead
    /// director stays in the upstream's ECMP set.
    pub hold_time: Option<u16>,
}

/// One upstream router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpNeighbor {
    pub address: IpAddr,
    pub asn: u32,
}

/// BFD timers: a session is down after `multiplier` intervals without a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdSpec {
    /// Transmit and receive interval, 10 ms..=60 s (FRR's range), whole milliseconds.
    pub interval: Duration,
    /// 2..=255.
    pub multiplier: u8,
}

/// One `[[announce]]`: a VIP announced as a host route while its gate is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceSpec {
    pub vip: IpAddr,
    pub gate: AnnounceGate,
}
