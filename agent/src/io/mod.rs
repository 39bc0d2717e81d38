//! The I/O shell around the sans-IO core: sockets, netlink and timers live here, so that
//! [`crate::vrrp`] never touches them (ARCHITECTURE.md, invariants).
//!
//! - [`vrrp_socket`]: one raw IP socket (protocol 112) per interface and family that sends and
//!   receives adverts, with the ingress interface, the TTL / hop limit and the sender's MAC of
//!   every advert it receives.
//! - [`netlink`]: interface facts (index, MAC, up/down, IPv4 primary, IPv6 link-local),
//!   adding and removing addresses, and neighbour look-ups, over rtnetlink.
//! - [`garp`]: gratuitous ARP / unsolicited NA frames on an `AF_PACKET` socket, sent on
//!   keepalived's schedule by a small sans-IO timer ([`garp::GarpTimer`]) and a tokio task.
//!
//! Every error names the interface and the operation that failed ([`IoError`] and the
//! per-module enums that wrap it).
//!
//! Everything here is Linux-only and needs `CAP_NET_RAW` (sockets) and `CAP_NET_ADMIN`
//! (addresses).

mod cmsg;
pub mod garp;
pub mod netlink;
mod packet;
pub mod vrrp_socket;

pub use cmsg::{CmsgError, RxControl};

/// A system call on an interface failed: which interface, which operation, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{iface}: {op}: {source}")]
pub struct IoError {
    /// The interface the socket serves.
    pub iface: String,
    /// The operation, named after the call and option (`setsockopt(IP_MULTICAST_TTL)`).
    pub op: &'static str,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub(crate) fn new(iface: &str, op: &'static str, source: std::io::Error) -> Self {
        Self {
            iface: iface.to_owned(),
            op,
            source,
        }
    }
}

/// Adds the interface and operation to an `io::Result`.
pub(crate) trait Context<T> {
    fn on(self, iface: &str, op: &'static str) -> Result<T, IoError>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn on(self, iface: &str, op: &'static str) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(iface, op, e))
    }
}
