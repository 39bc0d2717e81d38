//! VRRP advertisements: v3 (RFC 5798 §5, RFC 9568) and v2 (RFC 3768).

use core::time::Duration;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A virtual router identifier, 1..=255 (RFC 5798 §5.2.3). 0 is never valid on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VrId(pub u8);

/// A VRRP priority (RFC 5798 §5.2.4): 255 = address owner, 1..=254 backups, 0 = the master
/// is resigning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(pub u8);

/// Protocol version of an advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpVersion {
    /// RFC 3768: IPv4 only, interval in whole seconds, 8-byte authentication trailer.
    V2,
    /// RFC 5798 / RFC 9568: IPv4 or IPv6, interval in centiseconds.
    V3,
}

/// The virtual addresses an advert announces; one family per advert (RFC 5798 §5.2.9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VirtualAddrs {
    V4(Vec<Ipv4Addr>),
    /// For IPv6 the first address is the virtual router's link-local address.
    V6(Vec<Ipv6Addr>),
}

/// VRRPv2 authentication (RFC 3768 §5.3.6). Accepted for interop only: none of these
/// give any security (RFC 3768 §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Type 0 (and every v3 advert).
    None,
    /// Type 1: 8 bytes of clear text, compared verbatim.
    SimpleText([u8; 8]),
}

/// A well-formed VRRP advertisement, in host values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AdvertRepr {
    pub version: VrrpVersion,
    pub vrid: VrId,
    pub priority: Priority,
    /// Max Adver Int: v3 carries centiseconds (12 bits), v2 whole seconds (8 bits); converted
    /// to a `Duration` once, here.
    pub max_adver_int: Duration,
    pub addrs: VirtualAddrs,
    /// Always [`Auth::None`] for v3.
    pub auth: Auth,
}
