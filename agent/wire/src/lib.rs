//! Wire formats: everything vipflip reads from or writes to the network by hand.
//!
//! Parsing decides only whether bytes are *well-formed* (length, TTL, version, type, checksum);
//! whether a well-formed advert is *acceptable now* (VRID, owner, interval) is the state
//! machine's business in the `vipflip-vrrp` crate.
//!
//! Each format follows smoltcp's shape: a `Packet<T: AsRef<[u8]>>` view with a private
//! `mod field` of byte ranges, `new_unchecked` / `new_checked`, getters, and setters when the
//! buffer is `AsMut`; a `Repr` of host values with `parse`, `buffer_len` and `emit`; and one
//! `thiserror` enum per layer whose variants carry the offending values.
//!
//! - [`vrrp`]: VRRP version 3 and version 2 adverts and their checksums.
//! - [`ip`]: the IPv4 / IPv6 header around an advert, received from a raw socket or built for
//!   one with `IP_HDRINCL`.
//! - [`ethernet`], [`arp`], [`ndisc`]: the frames a new master sends: gratuitous ARP and
//!   unsolicited neighbour advertisements, and the virtual MAC.
//!
//! Every `parse` in this module is total: it returns an error for any input and never panics.

mod checksum;

pub mod arp;
pub mod ethernet;
pub mod ip;
pub mod ndisc;
pub mod vrrp;

pub use ethernet::MacAddr;
pub use vrrp::{
    AdvertError, AdvertRepr, Auth, ChecksumContext, ChecksumForm, Priority, ReprError,
    V3Ipv4Checksum, VirtualAddrs, VrId, VrrpVersion,
};

/// An IP address family. VRRP runs one virtual router per family (RFC 9568 §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    /// Bytes in one address of this family.
    pub const fn addr_len(self) -> usize {
        match self {
            Self::Ipv4 => 4,
            Self::Ipv6 => 16,
        }
    }
}
