//! Which bytes a VRRP checksum covers: the message alone (v2; v3 over IPv4 in the RFC 9568
//! form) or with the IPv4 or IPv6 pseudo-header, over the IP addresses of a
//! [`ChecksumContext`]. The arithmetic itself is [`crate::checksum`]'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{PROTOCOL, VrrpVersion, field};
use crate::Family;
use crate::checksum;

/// Which checksum a version 3 advert over IPv4 carries. RFC 5798 §5.2.8 asked for a pseudo-header
/// "as defined in Section 8.1 of RFC 2460", which implementers read differently for IPv4;
/// RFC 9568 §5.2.8 settled on the message alone. Both are in use, so receiving accepts either
/// and sending is a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum V3Ipv4Checksum {
    /// Message plus the IPv4 pseudo-header (src, dst, zero, protocol 112, length). keepalived
    /// (2.2.7 sends nothing else; 2.2.8+ unless `v3_checksum_as_v2`) and FRR (by default) send
    /// this, so it is the default: a group mixed with them works out of the box.
    #[default]
    Rfc5798,
    /// The VRRP message only, like v2 (RFC 9568 §5.2.8). Cisco and Juniper send this.
    Rfc9568,
}

/// The checksum form a received advert matched, so the agent can log a group whose members
/// disagree about the v3/IPv4 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumForm {
    /// Version 2: the message only (RFC 3768 §5.3.8).
    V2,
    /// Version 3 over IPv6: message plus the RFC 8200 §8.1 pseudo-header (RFC 9568 §5.2.8).
    V3Ipv6,
    /// Version 3 over IPv4, in the form that matched.
    V3Ipv4(V3Ipv4Checksum),
}

/// What a checksum depends on besides the VRRP message: the IP source and destination the
/// advert was (or will be) carried with, and for v3/IPv4 which form to send and to try first.
///
/// Both addresses are always of one family, so a pseudo-header can never mix them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChecksumContext {
    addrs: AddrPair,
    v3_ipv4_form: V3Ipv4Checksum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddrPair {
    V4 { src: Ipv4Addr, dst: Ipv4Addr },
    V6 { src: Ipv6Addr, dst: Ipv6Addr },
}

impl ChecksumContext {
    /// An IPv4 context with the default send form ([`V3Ipv4Checksum::Rfc5798`]).
    pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Self {
            addrs: AddrPair::V4 { src, dst },
            v3_ipv4_form: V3Ipv4Checksum::default(),
        }
    }

    /// An IPv6 context.
    pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Self {
            addrs: AddrPair::V6 { src, dst },
            v3_ipv4_form: V3Ipv4Checksum::default(),
        }
    }

    /// A context from two addresses, or `None` if their families differ.
    pub fn new(src: IpAddr, dst: IpAddr) -> Option<Self> {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Some(Self::ipv4(src, dst)),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Some(Self::ipv6(src, dst)),
            _ => None,
        }
    }

    /// The same context with another v3/IPv4 form: the one [`AdvertRepr::emit`] sends and
    /// [`AdvertRepr::parse`] tries first. It has no effect on v2 or IPv6.
    ///
    /// [`AdvertRepr::emit`]: super::AdvertRepr::emit
    /// [`AdvertRepr::parse`]: super::AdvertRepr::parse
    #[must_use]
    pub fn with_v3_ipv4_form(mut self, form: V3Ipv4Checksum) -> Self {
        self.v3_ipv4_form = form;
        self
    }

    /// IP source address.
    pub fn src(&self) -> IpAddr {
        match self.addrs {
            AddrPair::V4 { src, .. } => src.into(),
            AddrPair::V6 { src, .. } => src.into(),
        }
    }

    /// IP destination address.
    pub fn dst(&self) -> IpAddr {
        match self.addrs {
            AddrPair::V4 { dst, .. } => dst.into(),
            AddrPair::V6 { dst, .. } => dst.into(),
        }
    }

    /// Address family of the IP layer.
    pub fn family(&self) -> Family {
        match self.addrs {
            AddrPair::V4 { .. } => Family::Ipv4,
            AddrPair::V6 { .. } => Family::Ipv6,
        }
    }

    /// The v3/IPv4 send form.
    pub fn v3_ipv4_form(&self) -> V3Ipv4Checksum {
        self.v3_ipv4_form
    }

    /// The checksum of `msg` (checksum field read as zero) in the form `form`, which must be
    /// one this context's family allows.
    pub(super) fn compute(&self, msg: &[u8], form: ChecksumForm) -> u16 {
        let body = checksum::sum_skipping(msg, field::CHECKSUM.start);
        // An IP payload cannot exceed 2^32 bytes (IPv6 jumbograms, RFC 2675); saturating keeps
        // this total for any slice without changing any real checksum.
        let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
        let pseudo = match (form, self.addrs) {
            (ChecksumForm::V3Ipv4(V3Ipv4Checksum::Rfc5798), AddrPair::V4 { src, dst }) => {
                checksum::pseudo_ipv4(src, dst, PROTOCOL, len)
            }
            (ChecksumForm::V3Ipv6, AddrPair::V6 { src, dst }) => {
                checksum::pseudo_ipv6(&src, &dst, PROTOCOL, len)
            }
            _ => 0,
        };
        checksum::finish(body + pseudo)
    }

    /// The forms to try for `version` in this family, most preferred first.
    pub(super) fn forms(&self, version: VrrpVersion) -> [ChecksumForm; 2] {
        match (version, self.family()) {
            (VrrpVersion::V2, _) => [ChecksumForm::V2; 2],
            (VrrpVersion::V3, Family::Ipv6) => [ChecksumForm::V3Ipv6; 2],
            (VrrpVersion::V3, Family::Ipv4) => {
                let other = match self.v3_ipv4_form {
                    V3Ipv4Checksum::Rfc5798 => V3Ipv4Checksum::Rfc9568,
                    V3Ipv4Checksum::Rfc9568 => V3Ipv4Checksum::Rfc5798,
                };
                [
                    ChecksumForm::V3Ipv4(self.v3_ipv4_form),
                    ChecksumForm::V3Ipv4(other),
                ]
            }
        }
    }
}
