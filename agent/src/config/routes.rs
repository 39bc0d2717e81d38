//! Routes, policy rules and addresses written from the configuration, as keepalived's
//! `virtual_routes` and `virtual_rules` (per instance: present while it is master) and
//! `static_ipaddress`, `static_routes` and `static_rules` (present while the agent runs).
//!
//! Each renders in `ip route` / `ip rule` / `ip address` syntax, which is how logs and
//! `vipflip status` name them and how an operator checks them by hand.

use core::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::wire::Family;

/// `RT_TABLE_MAIN`: the table `ip route` writes when none is named.
pub const MAIN_TABLE: u32 = 254;

/// The `rtm_protocol` of configured routes when none is given: keepalived's
/// `RTPROT_KEEPALIVED` (18, `proto keepalived` in iproute2's `rt_protos`), so scripts that
/// look for the routes keepalived managed find ours. Removal matches it, so a route someone
/// else added with the same destination is never taken away.
pub const DEFAULT_ROUTE_PROTOCOL: u8 = 18;

/// The global routes, rules and addresses: `[[static_route]]`, `[[static_rule]]`,
/// `[[static_address]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statics {
    pub addresses: Vec<StaticAddressSpec>,
    pub routes: Vec<RouteSpec>,
    pub rules: Vec<RuleSpec>,
}

impl Statics {
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.routes.is_empty() && self.rules.is_empty()
    }
}

/// One route, as `ip route add` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteSpec {
    /// The destination prefix, host bits clear (`0.0.0.0/0` for `default`).
    pub to: IpNet,
    pub kind: RouteKind,
    /// The gateway, of the family of `to`; only for [`RouteKind::Unicast`].
    pub via: Option<IpAddr>,
    /// The output interface; only for [`RouteKind::Unicast`]. Looked up when the route is
    /// written, so it may appear after the agent starts.
    pub dev: Option<String>,
    /// The preferred source address (`src`), of the family of `to`.
    pub src: Option<IpAddr>,
    /// Default [`MAIN_TABLE`].
    pub table: u32,
    /// The route's priority (`metric`); `None`: the kernel's default (0 for IPv4, 1024 for
    /// IPv6).
    pub metric: Option<u32>,
    /// `None`: the kernel's choice (`link` for a route without gateway, `global` otherwise).
    pub scope: Option<RouteScope>,
    /// Default [`DEFAULT_ROUTE_PROTOCOL`].
    pub protocol: u8,
    /// `onlink`: the gateway is on the link even if no prefix of the interface covers it.
    pub onlink: bool,
}

impl RouteSpec {
    pub fn family(&self) -> Family {
        family_of_net(self.to)
    }
}

/// `type` of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RouteKind {
    /// Forwarded through `via` / `dev`.
    #[default]
    Unicast,
    /// Dropped silently.
    Blackhole,
    /// Dropped with ICMP "host unreachable".
    Unreachable,
    /// Dropped with ICMP "administratively prohibited".
    Prohibit,
}

impl RouteKind {
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Unicast => "unicast",
            Self::Blackhole => "blackhole",
            Self::Unreachable => "unreachable",
            Self::Prohibit => "prohibit",
        }
    }
}

/// `scope` of a route, with the kernel's numbers (`rtm_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteScope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
}

impl RouteScope {
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Site => "site",
            Self::Link => "link",
            Self::Host => "host",
            Self::Nowhere => "nowhere",
        }
    }

    /// `RT_SCOPE_*` (include/uapi/linux/rtnetlink.h).
    pub fn number(self) -> u8 {
        match self {
            Self::Global => 0,
            Self::Site => 200,
            Self::Link => 253,
            Self::Host => 254,
            Self::Nowhere => 255,
        }
    }
}

/// One policy rule, as `ip rule add` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleSpec {
    /// From `from` / `to` when given, else `family`, else IPv4.
    pub family: Family,
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub action: RuleAction,
    /// `priority` (`pref`); `None`: the kernel picks one below the last rule's.
    pub priority: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// `fwmark` with its mask (`None`: all bits).
    pub fwmark: Option<(u32, Option<u32>)>,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// `table N`: look the packet up in that table.
    Table(u32),
    Blackhole,
    Unreachable,
    Prohibit,
}

/// `[[static_address]]`: an address added to an interface while the agent runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StaticAddressSpec {
    /// With its prefix (a bare address is a host prefix).
    pub address: IpNet,
    pub dev: String,
}

/// The names `ip route` prints for the tables it knows.
fn table_name(table: u32) -> Option<&'static str> {
    match table {
        253 => Some("default"),
        MAIN_TABLE => Some("main"),
        255 => Some("local"),
        _ => None,
    }
}

fn family_of_net(net: IpNet) -> Family {
    match net {
        IpNet::V4(_) => Family::Ipv4,
        IpNet::V6(_) => Family::Ipv6,
    }
}

impl fmt::Display for RouteSpec {
    /// `ip route` syntax: `192.0.2.0/24 via 198.51.100.1 dev eth0 table 100 metric 5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != RouteKind::Unicast {
            write!(f, "{} ", self.kind.keyword())?;
        }
        if self.to.prefix_len() == 0 {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.to)?;
        }
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        if let Some(src) = self.src {
            write!(f, " src {src}")?;
        }
        if self.table != MAIN_TABLE {
            match table_name(self.table) {
                Some(name) => write!(f, " table {name}")?,
                None => write!(f, " table {}", self.table)?,
            }
        }
        if let Some(metric) = self.metric {
            write!(f, " metric {metric}")?;
        }
        if let Some(scope) = self.scope {
            write!(f, " scope {}", scope.keyword())?;
        }
        if self.protocol != DEFAULT_ROUTE_PROTOCOL {
            write!(f, " proto {}", self.protocol)?;
        }
        if self.onlink {
            f.write_str(" onlink")?;
        }
        Ok(())
    }
}

impl fmt::Display for RuleSpec {
    /// `ip rule` syntax: `from 192.0.2.1 lookup 100 pref 100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.from {
            Some(from) => write!(f, "from {from}")?,
            None => f.write_str("from all")?,
        }
        if let Some(to) = self.to {
            write!(f, " to {to}")?;
        }
        if let Some(iif) = &self.iif {
            write!(f, " iif {iif}")?;
        }
        if let Some(oif) = &self.oif {
            write!(f, " oif {oif}")?;
        }
        match self.fwmark {
            Some((mark, Some(bits))) => write!(f, " fwmark {mark:#x}/{bits:#x}")?,
            Some((mark, None)) => write!(f, " fwmark {mark:#x}")?,
            None => {}
        }
        match self.action {
            RuleAction::Table(table) => match table_name(table) {
                Some(name) => write!(f, " lookup {name}")?,
                None => write!(f, " lookup {table}")?,
            },
            RuleAction::Blackhole => f.write_str(" blackhole")?,
            RuleAction::Unreachable => f.write_str(" unreachable")?,
            RuleAction::Prohibit => f.write_str(" prohibit")?,
        }
        if let Some(priority) = self.priority {
            write!(f, " pref {priority}")?;
        }
        if self.family == Family::Ipv6 && self.from.is_none() && self.to.is_none() {
            f.write_str(" (ipv6)")?;
        }
        Ok(())
    }
}

impl fmt::Display for StaticAddressSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dev {}", self.address, self.dev)
    }
}
