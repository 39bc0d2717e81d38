//! The IP layer around VRRP adverts: what a raw socket hands the agent, and the header the
//! agent writes when it sends with `IP_HDRINCL` (IPv4) or builds whole frames.
//!
//! Receiving:
//! - IPv4 raw sockets (`socket(AF_INET, SOCK_RAW, 112)`) deliver the IP header with the
//!   payload; [`parse_ipv4`] checks it. Linux keeps `tot_len` in network order, as on the wire
//!   (BSDs do not; vipflip is Linux-only).
//! - IPv6 raw sockets never deliver the IPv6 header (RFC 3542 §3); the hop limit comes from
//!   the `IPV6_HOPLIMIT` control message and the destination from `IPV6_PKTINFO`, so
//!   [`from_ipv6_socket`] takes them as values. [`parse_ipv6`] takes a whole IPv6 packet, for
//!   packet sockets and tests.
//!
//! Only what makes an advert malformed at this layer is checked: TTL / hop limit 255
//! (RFC 9568 §7.1, RFC 3768 §7.1), protocol 112, truncation, the IPv4 header checksum, and
//! fragments (an advert is never fragmented, and a fragment is not a whole advert).
//!
//! # Panics
//! Every function here is total on its inputs: none panics, whatever the bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Family;
use super::checksum;
use super::vrrp::{
    self, AdvertError, AdvertRepr, ChecksumContext, ChecksumForm, Packet, ReprError, V3Ipv4Checksum,
};

/// TTL / hop limit of every advert; receivers discard anything else, proving the sender is
/// on the link (RFC 9568 §5.1.1.3, §5.1.2.2, §7.1).
pub const VRRP_TTL: u8 = 255;
/// The IPv4 multicast group of VRRP (RFC 9568 §5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group of VRRP (RFC 9568 §5.1.2.2).
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// IPv4 header length without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// IPv6 fixed header length.
pub const IPV6_HEADER_LEN: usize = 40;
/// DSCP CS6 ("network control", RFC 4594 §3.1) in the TOS / traffic-class byte of adverts:
/// what keepalived and FRR send, so switches that prioritise routing protocols treat vipflip's
/// adverts the same way.
pub const TOS_NETWORK_CONTROL: u8 = 0xc0;

mod ipv4 {
    pub type Field = core::ops::Range<usize>;

    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
}

mod ipv6 {
    pub type Field = core::ops::Range<usize>;

    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
}

/// Why an IP packet does not carry a well-formed advert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    #[error("IP packet truncated: need {need} bytes, got {got}")]
    TooShort { need: usize, got: usize },
    #[error("IP version {got} where {want} was expected")]
    BadVersion { want: u8, got: u8 },
    #[error("IPv4 header length {0} words is below the minimum of 5")]
    BadHeaderLen(u8),
    #[error("IPv4 total length {total} is shorter than its header ({header} bytes)")]
    BadTotalLen { total: u16, header: usize },
    #[error("bad IPv4 header checksum: computed {expected:#06x}, packet carries {got:#06x}")]
    BadHeaderChecksum { expected: u16, got: u16 },
    #[error(
        "IPv4 fragment (offset {offset} x 8 bytes, more fragments: {more}): adverts are never fragmented"
    )]
    Fragment { offset: u16, more: bool },
    #[error("IP protocol / next header {0} is not VRRP (112)")]
    BadProtocol(u8),
    #[error("TTL / hop limit {got}, not 255: the sender is not on this link (RFC 9568 §7.1)")]
    BadTtl { got: u8 },
}

/// An advert's IP envelope as received: addresses, TTL / hop limit, and the VRRP payload.
/// Only made by the functions below, after the checks they document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    ctx: ChecksumContext,
    hop_limit: u8,
    payload: &'a [u8],
}

impl<'a> Received<'a> {
    /// IP source: the sender's primary address (IPv4) or link-local address (IPv6); the
    /// tie-breaker between equal priorities (RFC 9568 §6.4.3).
    pub fn src(&self) -> IpAddr {
        self.ctx.src()
    }

    /// IP destination: the VRRP group, or this host for unicast adverts.
    pub fn dst(&self) -> IpAddr {
        self.ctx.dst()
    }

    /// TTL / hop limit (always 255 once accepted).
    pub const fn hop_limit(&self) -> u8 {
        self.hop_limit
    }

    /// The VRRP message: exactly the IP payload.
    pub const fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Address family.
    pub fn family(&self) -> Family {
        self.ctx.family()
    }

    /// The checksum context of this packet, trying `form` first for v3/IPv4.
    pub fn checksum_context(&self, form: V3Ipv4Checksum) -> ChecksumContext {
        self.ctx.with_v3_ipv4_form(form)
    }

    /// Parses the payload as an advert: [`AdvertRepr::parse_with_form`] with this packet's
    /// addresses. `form` only decides which v3/IPv4 form is tried first; both are accepted.
    pub fn advert(&self, form: V3Ipv4Checksum) -> Result<(AdvertRepr, ChecksumForm), AdvertError> {
        let packet = Packet::new_unchecked(self.payload, self.family());
        AdvertRepr::parse_with_form(&packet, &self.checksum_context(form))
    }
}

/// Checks an IPv4 packet (header included, as Linux raw sockets deliver it) and returns its
/// advert payload. Bytes past the total length (link padding) are ignored; IP options are
/// skipped. Checks run in this order: length, version, header length, header checksum, total
/// length, fragment, protocol, TTL.
pub fn parse_ipv4(packet: &[u8]) -> Result<Received<'_>, IpError> {
    let got = packet.len();
    if got < IPV4_HEADER_LEN {
        return Err(IpError::TooShort {
            need: IPV4_HEADER_LEN,
            got,
        });
    }
    let version = packet[ipv4::VER_IHL] >> 4;
    if version != 4 {
        return Err(IpError::BadVersion {
            want: 4,
            got: version,
        });
    }
    let ihl = packet[ipv4::VER_IHL] & 0x0f;
    if ihl < 5 {
        return Err(IpError::BadHeaderLen(ihl));
    }
    let header = usize::from(ihl) * 4;
    if got < header {
        return Err(IpError::TooShort { need: header, got });
    }
    let stored = be16(packet, ipv4::CHECKSUM);
    let expected = checksum::finish(checksum::sum_skipping(
        &packet[..header],
        ipv4::CHECKSUM.start,
    ));
    if expected != stored {
        return Err(IpError::BadHeaderChecksum {
            expected,
            got: stored,
        });
    }
    let total = be16(packet, ipv4::LENGTH);
    if usize::from(total) < header {
        return Err(IpError::BadTotalLen { total, header });
    }
    if got < usize::from(total) {
        return Err(IpError::TooShort {
            need: usize::from(total),
            got,
        });
    }
    let flg_off = be16(packet, ipv4::FLG_OFF);
    let (more, offset) = (flg_off & 0x2000 != 0, flg_off & 0x1fff);
    if more || offset != 0 {
        return Err(IpError::Fragment { offset, more });
    }
    let protocol = packet[ipv4::PROTOCOL];
    if protocol != vrrp::PROTOCOL {
        return Err(IpError::BadProtocol(protocol));
    }
    let ttl = packet[ipv4::TTL];
    if ttl != VRRP_TTL {
        return Err(IpError::BadTtl { got: ttl });
    }
    Ok(Received {
        ctx: ChecksumContext::ipv4(ipv4_at(packet, ipv4::SRC), ipv4_at(packet, ipv4::DST)),
        hop_limit: ttl,
        payload: &packet[header..usize::from(total)],
    })
}

/// Checks a whole IPv6 packet and returns its advert payload. Extension headers are not
/// followed: adverts carry none, so any next header but 112 is refused. Bytes past the
/// payload length are ignored.
pub fn parse_ipv6(packet: &[u8]) -> Result<Received<'_>, IpError> {
    let got = packet.len();
    if got < IPV6_HEADER_LEN {
        return Err(IpError::TooShort {
            need: IPV6_HEADER_LEN,
            got,
        });
    }
    let version = packet[0] >> 4;
    if version != 6 {
        return Err(IpError::BadVersion {
            want: 6,
            got: version,
        });
    }
    let need = IPV6_HEADER_LEN + usize::from(be16(packet, ipv6::LENGTH));
    if got < need {
        return Err(IpError::TooShort { need, got });
    }
    let next = packet[ipv6::NXT_HDR];
    if next != vrrp::PROTOCOL {
        return Err(IpError::BadProtocol(next));
    }
    from_ipv6_socket(
        ipv6_at(packet, ipv6::SRC),
        ipv6_at(packet, ipv6::DST),
        packet[ipv6::HOP_LIMIT],
        &packet[IPV6_HEADER_LEN..need],
    )
}

/// Checks what an IPv6 raw socket gave: the payload, with the source from `recvmsg`'s address,
/// the destination from `IPV6_PKTINFO` and the hop limit from `IPV6_HOPLIMIT`.
pub fn from_ipv6_socket(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    payload: &[u8],
) -> Result<Received<'_>, IpError> {
    if hop_limit != VRRP_TTL {
        return Err(IpError::BadTtl { got: hop_limit });
    }
    Ok(Received {
        ctx: ChecksumContext::ipv6(src, dst),
        hop_limit,
        payload,
    })
}

/// What an outgoing advert's IP header needs besides the advert: addresses and checksum form
/// (in `ctx`), the IPv4 identification and the IPv6 flow label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertIpRepr {
    /// Source and destination (the VRRP group, or a unicast peer) and the v3/IPv4 form.
    pub ctx: ChecksumContext,
    /// IPv4 identification. Unfragmented packets may carry any value (RFC 6864 §4.1); a
    /// counter, as keepalived keeps, helps reading captures.
    pub ident: u16,
    /// IPv6 flow label (low 20 bits used; RFC 6437 allows 0).
    pub flow_label: u32,
}

impl AdvertIpRepr {
    /// Multicast to the VRRP group from `src`, in `src`'s family, with identification 0 and
    /// flow label 0.
    pub fn multicast(src: IpAddr) -> Self {
        let ctx = match src {
            IpAddr::V4(src) => ChecksumContext::ipv4(src, VRRP_GROUP_V4),
            IpAddr::V6(src) => ChecksumContext::ipv6(src, VRRP_GROUP_V6),
        };
        Self {
            ctx,
            ident: 0,
            flow_label: 0,
        }
    }
}

/// Bytes of the whole IP packet [`emit_advert`] writes for `repr`.
pub fn advert_packet_len(repr: &AdvertRepr) -> usize {
    let header = match repr.family() {
        Family::Ipv4 => IPV4_HEADER_LEN,
        Family::Ipv6 => IPV6_HEADER_LEN,
    };
    header + repr.buffer_len()
}

/// Writes a whole advert IP packet (header with TTL / hop limit 255, protocol 112, TOS CS6,
/// no IPv4 options and no DF, then the advert) into the front of `buf`; returns its length.
/// For sockets with `IP_HDRINCL` or packet sockets. Never panics.
pub fn emit_advert(
    repr: &AdvertRepr,
    ip: &AdvertIpRepr,
    buf: &mut [u8],
) -> Result<usize, ReprError> {
    repr.validate()?;
    if repr.family() != ip.ctx.family() {
        return Err(ReprError::FamilyMismatch {
            repr: repr.family(),
            context: ip.ctx.family(),
        });
    }
    let need = advert_packet_len(repr);
    if buf.len() < need {
        return Err(ReprError::BufferTooSmall {
            need,
            got: buf.len(),
        });
    }
    let buf = &mut buf[..need];
    let header = need - repr.buffer_len();
    let mut packet = Packet::new_unchecked(&mut buf[header..], repr.family());
    repr.emit(&mut packet, &ip.ctx)?;
    // `validate` bounds an advert to 255 IPv6 addresses: 4 088 bytes, 4 128 with the header,
    // so both length fields fit; the error path only keeps this total.
    let too_long = |_| ReprError::AddrCount {
        got: repr.addrs.len(),
    };
    let total = u16::try_from(need).map_err(too_long)?;
    let payload = u16::try_from(repr.buffer_len()).map_err(too_long)?;
    match (ip.ctx.src(), ip.ctx.dst()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let h = Ipv4Header {
                src,
                dst,
                protocol: vrrp::PROTOCOL,
                ttl: VRRP_TTL,
                tos: TOS_NETWORK_CONTROL,
                ident: ip.ident,
                total_len: total,
            };
            h.emit(buf);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let h = Ipv6Header {
                src,
                dst,
                next_header: vrrp::PROTOCOL,
                hop_limit: VRRP_TTL,
                traffic_class: TOS_NETWORK_CONTROL,
                flow_label: ip.flow_label,
                payload_len: payload,
            };
            h.emit(buf);
        }
        // A `ChecksumContext` always holds two addresses of one family.
        _ => {}
    }
    Ok(need)
}

/// The IPv4 header fields vipflip sets; the rest are fixed (no options, no fragmentation).
pub(crate) struct Ipv4Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub tos: u8,
    pub ident: u16,
    pub total_len: u16,
}

impl Ipv4Header {
    /// Writes the header into `buf[..20]`, checksum included. `buf` must hold 20 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[ipv4::VER_IHL] = 0x45;
        buf[ipv4::TOS] = self.tos;
        buf[ipv4::LENGTH].copy_from_slice(&self.total_len.to_be_bytes());
        buf[ipv4::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        buf[ipv4::FLG_OFF].copy_from_slice(&[0, 0]);
        buf[ipv4::TTL] = self.ttl;
        buf[ipv4::PROTOCOL] = self.protocol;
        buf[ipv4::CHECKSUM].copy_from_slice(&[0, 0]);
        buf[ipv4::SRC].copy_from_slice(&self.src.octets());
        buf[ipv4::DST].copy_from_slice(&self.dst.octets());
        let sum = checksum::finish(checksum::sum(&buf[..IPV4_HEADER_LEN]));
        buf[ipv4::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    }
}

/// The IPv6 header fields vipflip sets (no extension headers).
pub(crate) struct Ipv6Header {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
    pub payload_len: u16,
}

impl Ipv6Header {
    /// Writes the header into `buf[..40]`. `buf` must hold 40 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        let word =
            (6 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff);
        buf[ipv6::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes());
        buf[ipv6::LENGTH].copy_from_slice(&self.payload_len.to_be_bytes());
        buf[ipv6::NXT_HDR] = self.next_header;
        buf[ipv6::HOP_LIMIT] = self.hop_limit;
        buf[ipv6::SRC].copy_from_slice(&self.src.octets());
        buf[ipv6::DST].copy_from_slice(&self.dst.octets());
    }
}

fn be16(buf: &[u8], range: core::ops::Range<usize>) -> u16 {
    let b = &buf[range];
    u16::from_be_bytes([b[0], b[1]])
}

fn ipv4_at(buf: &[u8], range: core::ops::Range<usize>) -> Ipv4Addr {
    let b = &buf[range];
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

pub(crate) fn ipv6_at(buf: &[u8], range: core::ops::Range<usize>) -> Ipv6Addr {
    let mut octets = [0; 16];
    octets.copy_from_slice(&buf[range]);
    Ipv6Addr::from(octets)
}

#[cfg(test)]
mod tests;
