//! Announced VIPs as host routes in vipflip's own kernel table: `VIP/32` (`/128`) `dev lo
//! table N proto P scope link`, the shape FRR's `ip import-table` and BIRD's kernel protocol
//! redistribute (see `announce::routing_config`). vipflip touches only routes of its table
//! and protocol. Also the `local` routes that make an active-active director's VIPs its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt as _;
use rtnetlink::{
    RouteMessageBuilder,
    packet_route::route::{
        RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
    },
};

use super::{Netlink, NetlinkError, errno, request};

/// Where announced routes live: a table and the protocol number that marks them as ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteTable {
    pub table: u32,
    pub protocol: u8,
}

impl RouteTable {
    fn message(self, vip: IpAddr, lo: u32) -> RouteMessage {
        let protocol = RouteProtocol::from(self.protocol);
        match vip {
            IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(v4, 32)
                .output_interface(lo)
                .table_id(self.table)
                .protocol(protocol)
                .scope(RouteScope::Link)
                .build(),
            IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(v6, 128)
                .output_interface(lo)
                .table_id(self.table)
                .protocol(protocol)
                .scope(RouteScope::Link)
                .build(),
        }
    }

    /// Whether `msg` is one of ours: our table and protocol, a host route.
    fn holds(self, msg: &RouteMessage) -> Option<IpAddr> {
        let table = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or_else(|| u32::from(msg.header.table));
        if table != self.table || u8::from(msg.header.protocol) != self.protocol {
            return None;
        }
        let dst = msg.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
            RouteAttribute::Destination(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
            _ => None,
        })?;
        let host = if dst.is_ipv4() { 32 } else { 128 };
        (msg.header.destination_prefix_length == host).then_some(dst)
    }
}

/// How a route is written, and which refusal means it is already as wanted.
#[derive(Clone, Copy)]
enum Write {
    /// Add, or replace what is there.
    Replace,
    /// Add; one already there is left as it is (`EEXIST`).
    AddIfAbsent,
    /// Delete; one already gone is fine (`ESRCH`).
    Remove,
}

/// `RT_TABLE_LOCAL`: where the kernel looks first for addresses it delivers locally.
const LOCAL_TABLE: u32 = 255;

/// `local VIP dev lo table local`: the kernel accepts traffic to `vip` as its own without
/// the VIP being an interface address (which a routing daemon would see as a connected
/// route and prefer to the announced one; zebra ignores `local` routes).
fn local_route(vip: IpAddr, lo: u32, protocol: u8) -> RouteMessage {
    let protocol = RouteProtocol::from(protocol);
    match vip {
        IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(v4, 32)
            .output_interface(lo)
            .table_id(LOCAL_TABLE)
            .protocol(protocol)
            .scope(RouteScope::Host)
            .kind(RouteType::Local)
            .build(),
        IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(v6, 128)
            .output_interface(lo)
            .table_id(LOCAL_TABLE)
            .protocol(protocol)
            .scope(RouteScope::Host)
            .kind(RouteType::Local)
            .build(),
    }
}

impl Netlink {
    /// Makes `vip` local to this host (see [`local_route`]), marked with `protocol`. A local
    /// route already there (ours from a previous run, or the kernel's for an address of the
    /// host) is left as it is; [`Self::remove_local_route`] removes only ours, by protocol.
    pub async fn add_local_route(&self, vip: IpAddr, protocol: u8) -> Result<(), NetlinkError> {
        let lo = self.link_message("lo").await?.header.index;
        self.write_route(local_route(vip, lo, protocol), Write::AddIfAbsent)
            .await
    }

    /// Takes `vip`'s local route away; one already gone is not an error.
    pub async fn remove_local_route(&self, vip: IpAddr, protocol: u8) -> Result<(), NetlinkError> {
        let lo = self.link_message("lo").await?.header.index;
        self.write_route(local_route(vip, lo, protocol), Write::Remove)
            .await
    }

    /// Announces `vip`: adds (or replaces) its host route in `table`.
    pub async fn add_route(&self, table: RouteTable, vip: IpAddr) -> Result<(), NetlinkError> {
        let lo = self.link_message("lo").await?.header.index;
        self.write_route(table.message(vip, lo), Write::Replace)
            .await
    }

    /// Withdraws `vip`: deletes its host route from `table`; a route already gone is not an
    /// error.
    pub async fn remove_route(&self, table: RouteTable, vip: IpAddr) -> Result<(), NetlinkError> {
        let lo = self.link_message("lo").await?.header.index;
        self.write_route(table.message(vip, lo), Write::Remove)
            .await
    }

    async fn write_route(&self, route: RouteMessage, write: Write) -> Result<(), NetlinkError> {
        let routes = self.handle.route();
        let (result, op, fine) = match write {
            Write::Replace => (
                routes.add(route).replace().execute().await,
                "RTM_NEWROUTE",
                None,
            ),
            Write::AddIfAbsent => (
                routes.add(route).execute().await,
                "RTM_NEWROUTE",
                Some(libc::EEXIST),
            ),
            Write::Remove => (
                routes.del(route).execute().await,
                "RTM_DELROUTE",
                Some(libc::ESRCH),
            ),
        };
        match result {
            Err(e) if fine.is_some() && errno(&e) == fine => Ok(()),
            other => other.map_err(|source| request("lo", op, source)),
        }
    }

    /// The VIPs whose host routes are in `table` with its protocol (what a previous run
    /// left, or what is announced now).
    pub async fn routes(&self, table: RouteTable) -> Result<Vec<IpAddr>, NetlinkError> {
        let mut found = Vec::new();
        for query in [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ] {
            let mut dump = self.handle.route().get(query).execute();
            while let Some(msg) = dump
                .try_next()
                .await
                .map_err(|source| request("routes", "RTM_GETROUTE dump", source))?
            {
                found.extend(table.holds(&msg));
            }
        }
        Ok(found)
    }
}
