//! Interfaces, addresses and neighbours over rtnetlink (the `rtnetlink` crate: maintained by
//! the rust-netlink project, tokio-native, typed messages; no hand-rolled netlink here).
//!
//! A [`Netlink`] is bound to the network namespace of the thread that creates it, like any
//! socket.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use rtnetlink::{
    AddressMessageBuilder, Handle, LinkUnspec, MulticastGroup,
    packet_core::{NetlinkMessage, NetlinkPayload},
    packet_route::{
        AddressFamily, RouteNetlinkMessage,
        address::{
            AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
            CacheInfo,
        },
        link::{LinkAttribute, LinkFlags, LinkMessage},
        neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
        },
    },
    sys::SocketAddr,
};
use tokio::task::JoinHandle;

use crate::wire::MacAddr;

mod configured;
mod routes;
pub use routes::RouteTable;

/// `INFINITY_LIFE_TIME` (include/net/addrconf.h): an address lifetime that never ends.
const INFINITY_LIFE_TIME: u32 = u32::MAX;

/// Why a netlink operation failed, naming the interface and the operation.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening a route netlink socket: {0}")]
    Connect(#[source] std::io::Error),
    #[error("{iface}: no such interface")]
    NoSuchLink { iface: String },
    #[error("{iface}: {op}: {source}")]
    Request {
        iface: String,
        op: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
    /// The configuration's route cannot be put in a message (a builder refusal; the
    /// configuration's checks make it unreachable).
    #[error("{route}: {why}")]
    InvalidRoute { route: String, why: String },
    /// A dump of every interface's entries failed.
    #[error("{op} dump: {source}")]
    Dump {
        op: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
}

/// What the daemon needs to know about an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub name: String,
    pub index: u32,
    /// Its hardware address (`None` for links without one, such as tunnels).
    pub mac: Option<MacAddr>,
    /// Administratively up (`IFF_UP`).
    pub admin_up: bool,
    /// Carrier present (`IFF_LOWER_UP`).
    pub carrier: bool,
    /// The first non-secondary IPv4 address: the source of IPv4 adverts (RFC 9568 §5.1.1.1).
    pub ipv4_primary: Option<Ipv4Addr>,
    /// A link-local IPv6 address: the source of IPv6 adverts (RFC 9568 §5.1.2.1).
    pub ipv6_link_local: Option<Ipv6Addr>,
}

impl LinkInfo {
    /// Up and with carrier: adverts can flow.
    pub fn is_up(&self) -> bool {
        self.admin_up && self.carrier
    }
}

/// An interface address with its prefix length, written `192.0.2.100/24` or
/// `2001:db8::100/64`. A bare address means a host prefix (/32, /128), as in keepalived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// Why a string is not an [`IfAddr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfAddrError {
    #[error("{input:?}: not an IP address")]
    Addr { input: String },
    #[error("{input:?}: prefix length must be 0-{max}")]
    Prefix { input: String, max: u8 },
}

impl FromStr for IfAddr {
    type Err = IfAddrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = input
            .split_once('/')
            .map_or((input, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = addr.parse().map_err(|_| IfAddrError::Addr {
            input: input.to_owned(),
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len =
            match prefix {
                None => max,
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                    IfAddrError::Prefix {
                        input: input.to_owned(),
                        max,
                    }
                })?,
            };
        Ok(Self { addr, prefix_len })
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// A neighbour entry as the kernel reports it: a line of a dump, an `RTM_NEWNEIGH` or an
/// `RTM_DELNEIGH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub ifindex: u32,
    pub address: IpAddr,
    pub resolution: Resolution,
}

/// What a neighbour entry says of its address's MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// A MAC to send to: `REACHABLE`, `STALE`, `DELAY` and `PROBE` (the last one known, while
    /// the kernel confirms it), `PERMANENT`, `NOARP`.
    Mac(MacAddr),
    /// `FAILED`: the kernel asked and nobody answered.
    Failed,
    /// No MAC and no verdict: `INCOMPLETE` (being resolved), `NONE`, or the entry was
    /// deleted (`RTM_DELNEIGH`: by hand, by a flush, or garbage-collected while unused).
    Unknown,
}

/// What [`NeighbourEvents::next`] yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighbourEvent {
    Changed(Neighbour),
    /// The kernel dropped events (`ENOBUFS`: the socket's buffer was full): dump again.
    Overrun,
}

/// The neighbour changes (`RTNLGRP_NEIGH`) of the namespace, from
/// [`Netlink::subscribe_neighbours`].
pub struct NeighbourEvents {
    messages: BoxStream<'static, (NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
}

impl fmt::Debug for NeighbourEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NeighbourEvents").finish_non_exhaustive()
    }
}

impl NeighbourEvents {
    /// The next change or overrun; `None` once the subscription's socket is gone (its
    /// [`Netlink`] dropped, or the socket failed). Cancel safe (a `select!` branch): a
    /// message taken from the socket's queue is returned before the next wait.
    pub async fn next(&mut self) -> Option<NeighbourEvent> {
        loop {
            let (message, _) = self.messages.next().await?;
            let event = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(msg)) => {
                    neighbour_of(&msg, true).map(NeighbourEvent::Changed)
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelNeighbour(msg)) => {
                    neighbour_of(&msg, false).map(NeighbourEvent::Changed)
                }
                NetlinkPayload::Overrun(_) => Some(NeighbourEvent::Overrun),
                _ => None,
            };
            if let Some(event) = event {
                return Some(event);
            }
        }
    }
}

/// What [`LinkUps::next`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkUp {
    /// This interface has just come up (administratively up with a carrier), or was seen up
    /// for the first time.
    Named(String),
    /// The kernel dropped events (`ENOBUFS`): any link may have come up.
    Overrun,
}

/// Interfaces coming up (`RTNLGRP_LINK`), from [`Netlink::subscribe_link_ups`]: what makes
/// routes the kernel flushed when a link went down writable again.
pub struct LinkUps {
    messages: BoxStream<'static, (NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    /// Whether each interface (by index) was last seen up.
    up: std::collections::HashMap<u32, bool>,
    _netlink: Netlink,
}

impl fmt::Debug for LinkUps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkUps").finish_non_exhaustive()
    }
}

impl LinkUps {
    /// The next interface to come up; `None` once the socket is gone. Link messages that do
    /// not change whether a link is up (an MTU, an XDP program) yield nothing.
    pub async fn next(&mut self) -> Option<LinkUp> {
        loop {
            let (message, _) = self.messages.next().await?;
            match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    let flags = link.header.flags;
                    let up = flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp);
                    let was = self.up.insert(link.header.index, up);
                    if up && was != Some(true) {
                        let name = link.attributes.iter().find_map(|a| match a {
                            LinkAttribute::IfName(name) => Some(name.clone()),
                            _ => None,
                        });
                        return Some(LinkUp::Named(name.unwrap_or_default()));
                    }
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                    self.up.remove(&link.header.index);
                }
                NetlinkPayload::Overrun(_) => return Some(LinkUp::Overrun),
                _ => {}
            }
        }
    }
}

/// A route netlink connection; its driver task stops when this is dropped.
#[derive(Debug)]
pub struct Netlink {
    handle: Handle,
    driver: JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Netlink {
    /// Opens a connection in the current namespace and spawns its driver on the current
    /// tokio runtime.
    pub fn new() -> Result<Self, NetlinkError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
        Ok(Self {
            handle,
            driver: tokio::spawn(connection),
        })
    }

    /// A connection subscribed to neighbour changes, and the changes. The socket joins the
    /// group before it sends any request, so a dump made with this connection misses no
    /// change: one that happens during the dump comes after it, and an event carries the
    /// whole entry, so applying it late ends in the same state.
    pub fn subscribe_neighbours() -> Result<(Self, NeighbourEvents), NetlinkError> {
        let (connection, handle, messages) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Neigh])
                .map_err(NetlinkError::Connect)?;
        let netlink = Self {
            handle,
            driver: tokio::spawn(connection),
        };
        let messages = messages.boxed();
        Ok((netlink, NeighbourEvents { messages }))
    }

    /// Interfaces coming up from now on (see [`LinkUps`]). The socket joins the group
    /// before the dump that says which links are up already, so none is missed and none
    /// already up counts as coming up.
    pub async fn subscribe_link_ups() -> Result<LinkUps, NetlinkError> {
        let (connection, handle, messages) =
            rtnetlink::new_multicast_connection(&[MulticastGroup::Link])
                .map_err(NetlinkError::Connect)?;
        let netlink = Self {
            handle,
            driver: tokio::spawn(connection),
        };
        let mut up = std::collections::HashMap::new();
        let mut links = netlink.handle.link().get().execute();
        while let Some(link) = links
            .try_next()
            .await
            .map_err(|source| NetlinkError::Dump {
                op: "RTM_GETLINK",
                source,
            })?
        {
            let flags = link.header.flags;
            up.insert(
                link.header.index,
                flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp),
            );
        }
        Ok(LinkUps {
            messages: messages.boxed(),
            up,
            _netlink: netlink,
        })
    }

    /// The index of `iface`.
    pub async fn ifindex(&self, iface: &str) -> Result<u32, NetlinkError> {
        Ok(self.link_message(iface).await?.header.index)
    }

    /// Looks up `iface`: index, MAC, state and the addresses adverts are sent from.
    pub async fn link(&self, iface: &str) -> Result<LinkInfo, NetlinkError> {
        let link = self.link_message(iface).await?;
        let index = link.header.index;
        let mut info = LinkInfo {
            name: iface.to_owned(),
            index,
            mac: None,
            admin_up: link.header.flags.contains(LinkFlags::Up),
            carrier: link.header.flags.contains(LinkFlags::LowerUp),
            ipv4_primary: None,
            ipv6_link_local: None,
        };
        for attr in &link.attributes {
            if let LinkAttribute::Address(bytes) = attr {
                info.mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddr);
            }
        }
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(msg) = addrs
            .try_next()
            .await
            .map_err(|source| request(iface, "RTM_GETADDR", source))?
        {
            if msg.header.index != index {
                continue;
            }
            match address_of(&msg) {
                Some(IpAddr::V4(a)) if info.ipv4_primary.is_none() && !is_secondary(&msg) => {
                    info.ipv4_primary = Some(a);
                }
                Some(IpAddr::V6(a))
                    if info.ipv6_link_local.is_none()
                        && msg.header.scope == AddressScope::Link
                        && a.is_unicast_link_local() =>
                {
                    info.ipv6_link_local = Some(a);
                }
                _ => {}
            }
        }
        Ok(info)
    }

    /// Adds `addr` to `iface`; an address already there is not an error. IPv6 addresses are
    /// added with `IFA_F_NODAD`, as keepalived adds its VIPs: a VIP moves between routers,
    /// and duplicate address detection would hold it tentative (unusable) for a second or
    /// more after every failover.
    ///
    /// They are also added deprecated (preferred lifetime 0, valid forever): still accepted
    /// as a destination and answered for in neighbour discovery, but never picked as the
    /// source of this host's own connections. Otherwise a VIP in the prefix of the
    /// interface's own address wins source selection (RFC 6724 rule 8 ties go to the newest
    /// address), and everything the master starts (health checks of real servers that hold
    /// the VIP on their loopback, whose answers then never leave them) comes from the VIP.
    /// IPv4 VIPs are secondary addresses, which source selection passes over already.
    pub async fn add_address(&self, iface: &str, addr: IfAddr) -> Result<(), NetlinkError> {
        let index = self.link_message(iface).await?.header.index;
        let mut req = self.handle.address().add(index, addr.addr, addr.prefix_len);
        if addr.addr.is_ipv6() {
            let attributes = &mut req.message_mut().attributes;
            attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
            let mut lifetimes = CacheInfo::default();
            lifetimes.ifa_preferred = 0;
            lifetimes.ifa_valid = INFINITY_LIFE_TIME;
            attributes.push(AddressAttribute::CacheInfo(lifetimes));
        }
        match req.execute().await {
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            other => other.map_err(|source| request(iface, "RTM_NEWADDR", source)),
        }
    }

    /// Removes `addr` from `iface`; an address already gone is not an error.
    pub async fn remove_address(&self, iface: &str, addr: IfAddr) -> Result<(), NetlinkError> {
        let index = self.link_message(iface).await?.header.index;
        let msg = match addr.addr {
            IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(index)
                .address(a, addr.prefix_len)
                .build(),
            IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(index)
                .address(a, addr.prefix_len)
                .build(),
        };
        match self.handle.address().del(msg).execute().await {
            Err(e) if errno(&e) == Some(libc::EADDRNOTAVAIL) => Ok(()),
            other => other.map_err(|source| request(iface, "RTM_DELADDR", source)),
        }
    }

    /// Whether `iface` holds `addr` with exactly its prefix length.
    pub async fn has_address(&self, iface: &str, addr: IfAddr) -> Result<bool, NetlinkError> {
        let index = self.link_message(iface).await?.header.index;
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(msg) = addrs
            .try_next()
            .await
            .map_err(|source| request(iface, "RTM_GETADDR", source))?
        {
            if msg.header.index == index
                && msg.header.prefix_len == addr.prefix_len
                && address_of(&msg) == Some(addr.addr)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Sets `iface` administratively up (`ip link set IFACE up`); one already up stays so.
    pub async fn set_link_up(&self, iface: &str) -> Result<(), NetlinkError> {
        let index = self.link_message(iface).await?.header.index;
        let message = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|source| request(iface, "RTM_SETLINK", source))
    }

    /// The MAC the neighbour table holds for `ip` on `iface`, if it holds a usable one
    /// ([`Resolution::Mac`]). Linux learns no neighbour from multicast adverts; see
    /// [`super::vrrp_socket`] for how the sender of an advert is known instead.
    pub async fn neighbour_mac(
        &self,
        iface: &str,
        ip: IpAddr,
    ) -> Result<Option<MacAddr>, NetlinkError> {
        let family = if ip.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let index = self.ifindex(iface).await?;
        Ok(self
            .neighbours(family)
            .await?
            .into_iter()
            .find_map(|n| match n.resolution {
                Resolution::Mac(mac) if n.ifindex == index && n.address == ip => Some(mac),
                _ => None,
            }))
    }

    /// Every usable neighbour entry ([`Resolution::Mac`]) of `iface` in both families: one
    /// dump per family, for callers that want many addresses at once.
    pub async fn neighbour_table(
        &self,
        iface: &str,
    ) -> Result<Vec<(IpAddr, MacAddr)>, NetlinkError> {
        let index = self.ifindex(iface).await?;
        Ok(self
            .all_neighbours()
            .await?
            .into_iter()
            .filter_map(|n| match n.resolution {
                Resolution::Mac(mac) if n.ifindex == index => Some((n.address, mac)),
                _ => None,
            })
            .collect())
    }

    /// Every neighbour entry of every interface, both families, whatever its state.
    pub async fn all_neighbours(&self) -> Result<Vec<Neighbour>, NetlinkError> {
        let mut all = self.neighbours(AddressFamily::Inet).await?;
        all.extend(self.neighbours(AddressFamily::Inet6).await?);
        Ok(all)
    }

    async fn neighbours(&self, family: AddressFamily) -> Result<Vec<Neighbour>, NetlinkError> {
        let mut neighbours = self
            .handle
            .neighbours()
            .get()
            .set_address_family(family)
            .execute();
        let mut found = Vec::new();
        while let Some(msg) = neighbours
            .try_next()
            .await
            .map_err(|source| NetlinkError::Dump {
                op: "RTM_GETNEIGH",
                source,
            })?
        {
            found.extend(neighbour_of(&msg, true));
        }
        Ok(found)
    }

    async fn link_message(&self, iface: &str) -> Result<LinkMessage, NetlinkError> {
        let mut links = self.handle.link().get().match_name(iface).execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(NetlinkError::NoSuchLink {
                iface: iface.to_owned(),
            }),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Err(NetlinkError::NoSuchLink {
                iface: iface.to_owned(),
            }),
            Err(source) => Err(request(iface, "RTM_GETLINK", source)),
        }
    }
}

/// The entry an `RTM_NEWNEIGH` (`present`) or `RTM_DELNEIGH` message is about; `None` for
/// messages without an IP address (bridge forwarding entries) and proxy entries (addresses
/// this host answers for, not hosts).
fn neighbour_of(msg: &NeighbourMessage, present: bool) -> Option<Neighbour> {
    if msg.header.flags.contains(NeighbourFlags::Proxy) {
        return None;
    }
    let mut address = None;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                address = Some(IpAddr::V4(*a));
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                address = Some(IpAddr::V6(*a));
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => {
                mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddr);
            }
            _ => {}
        }
    }
    let resolution = match (msg.header.state, mac) {
        _ if !present => Resolution::Unknown,
        (NeighbourState::Failed, _) => Resolution::Failed,
        (
            NeighbourState::Reachable
            | NeighbourState::Stale
            | NeighbourState::Delay
            | NeighbourState::Probe
            | NeighbourState::Permanent
            | NeighbourState::Noarp,
            Some(mac),
        ) => Resolution::Mac(mac),
        _ => Resolution::Unknown,
    };
    Some(Neighbour {
        ifindex: msg.header.ifindex,
        address: address?,
        resolution,
    })
}

fn request(iface: &str, op: &'static str, source: rtnetlink::Error) -> NetlinkError {
    NetlinkError::Request {
        iface: iface.to_owned(),
        op,
        source,
    }
}

/// The errno of a netlink NACK.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io().raw_os_error(),
        _ => None,
    }
}

/// The interface's own address: `IFA_LOCAL` when present (it differs from `IFA_ADDRESS`
/// only on point-to-point links), else `IFA_ADDRESS`.
fn address_of(msg: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => return Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            _ => {}
        }
    }
    address
}

fn is_secondary(msg: &AddressMessage) -> bool {
    msg.header.flags.contains(AddressHeaderFlags::Secondary)
        || msg
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Flags(f) if f.contains(AddressFlags::Secondary)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 7];

    fn message(state: NeighbourState, mac: Option<[u8; 6]>) -> NeighbourMessage {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.ifindex = 3;
        msg.header.state = state;
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                Ipv4Addr::new(192, 0, 2, 21),
            )));
        if let Some(mac) = mac {
            msg.attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        }
        msg
    }

    fn resolution(state: NeighbourState, mac: Option<[u8; 6]>) -> Resolution {
        let neighbour = neighbour_of(&message(state, mac), true).expect("an IP neighbour");
        assert_eq!(
            (neighbour.ifindex, neighbour.address),
            (3, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 21)))
        );
        neighbour.resolution
    }

    #[test]
    fn a_neighbour_has_a_mac_in_the_states_that_hold_one() {
        for state in [
            NeighbourState::Reachable,
            NeighbourState::Stale,
            NeighbourState::Delay,
            NeighbourState::Probe,
            NeighbourState::Permanent,
            NeighbourState::Noarp,
        ] {
            assert_eq!(
                resolution(state, Some(MAC)),
                Resolution::Mac(MacAddr(MAC)),
                "{state:?}"
            );
        }
    }

    #[test]
    fn failed_is_a_verdict_incomplete_and_deleted_are_not() {
        // FAILED may still carry the last MAC: it is not one to send to.
        assert_eq!(
            resolution(NeighbourState::Failed, Some(MAC)),
            Resolution::Failed
        );
        assert_eq!(resolution(NeighbourState::Failed, None), Resolution::Failed);
        assert_eq!(
            resolution(NeighbourState::Incomplete, None),
            Resolution::Unknown
        );
        assert_eq!(resolution(NeighbourState::None, None), Resolution::Unknown);
        assert_eq!(
            resolution(NeighbourState::Reachable, None),
            Resolution::Unknown,
            "no link-layer address"
        );
        let deleted = neighbour_of(&message(NeighbourState::Reachable, Some(MAC)), false);
        assert_eq!(deleted.map(|n| n.resolution), Some(Resolution::Unknown));
    }

    #[test]
    fn proxy_entries_and_entries_without_an_ip_are_not_neighbours() {
        let mut proxy = message(NeighbourState::Permanent, None);
        proxy.header.flags |= NeighbourFlags::Proxy;
        assert_eq!(neighbour_of(&proxy, true), None);
        let mut fdb = NeighbourMessage::default();
        fdb.header.family = AddressFamily::Bridge;
        fdb.attributes
            .push(NeighbourAttribute::LinkLayerAddress(MAC.to_vec()));
        assert_eq!(neighbour_of(&fdb, true), None);
    }

    #[test]
    fn if_addr_parses_and_prints() {
        let a: IfAddr = "192.0.2.100/24".parse().unwrap();
        assert_eq!(a.addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)));
        assert_eq!(a.prefix_len, 24);
        assert_eq!(a.to_string(), "192.0.2.100/24");
        let b: IfAddr = "2001:db8::100".parse().unwrap();
        assert_eq!(b.prefix_len, 128);
        assert_eq!(b.to_string(), "2001:db8::100/128");
        assert_eq!("192.0.2.1".parse::<IfAddr>().unwrap().prefix_len, 32);
    }

    #[test]
    fn if_addr_rejects_bad_input() {
        assert_eq!(
            "192.0.2.1/33".parse::<IfAddr>(),
            Err(IfAddrError::Prefix {
                input: "192.0.2.1/33".into(),
                max: 32
            })
        );
        assert!(matches!(
            "2001:db8::1/129".parse::<IfAddr>(),
            Err(IfAddrError::Prefix { max: 128, .. })
        ));
        assert!(matches!(
            "192.0.2/24".parse::<IfAddr>(),
            Err(IfAddrError::Addr { .. })
        ));
        assert!(matches!(
            "192.0.2.1/x".parse::<IfAddr>(),
            Err(IfAddrError::Prefix { .. })
        ));
    }
}
