//! IPv6 neighbour advertisements (RFC 4861 §4.4): the unsolicited NA a new master sends for
//! each virtual IPv6 address (RFC 9568 §6.4.1, §6.4.2; RFC 4861 §7.2.6), to `ff02::1` with hop
//! limit 255, Override set, Solicited clear, and the target link-layer address option.
//!
//! The Router flag: RFC 9568 §6.4.2 has a virtual router's NAs set it, so hosts keep the VIP
//! as a default router; keepalived 2.2.7 sends it clear. [`NeighborAdvertRepr::unsolicited`]
//! takes it as an argument.
//!
//! # Panics
//! [`Packet::new_checked`], [`Packet::check_len`], [`Packet::verify_checksum`],
//! [`NeighborAdvertRepr::parse`], [`NeighborAdvertRepr::emit`] and
//! [`emit_unsolicited_na_frame`] never panic. Getters and setters on a
//! [`Packet::new_unchecked`] view panic if the buffer is shorter than [`HEADER_LEN`].

use std::net::Ipv6Addr;

use super::checksum;
use super::ethernet::{self, EtherType, EthernetRepr, Frame, MacAddr};
use super::ip::{self, Ipv6Header};

/// ICMP type of a neighbour advertisement (RFC 4861 §4.4).
pub const TYPE_NEIGHBOR_ADVERT: u8 = 136;
/// IPv6 next header value of ICMP for IPv6 (RFC 4443).
pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// Hop limit of every ND message; receivers discard others (RFC 4861 §7.1.2).
pub const HOP_LIMIT: u8 = 255;
/// All-nodes link-local multicast, the destination of unsolicited NAs (RFC 4861 §7.2.6).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// NA header: type, code, checksum, flags, target address.
pub const HEADER_LEN: usize = field::OPTIONS;

/// Option type of the target link-layer address option (RFC 4861 §4.6.1).
const OPT_TARGET_LLADDR: u8 = 2;
/// Length of a link-layer address option for Ethernet: 8 bytes, length field 1.
const LLADDR_OPT_LEN: usize = 8;

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// R, S, O in the top three bits, then 29 reserved bits.
    pub const FLAGS: Field = 4..8;
    pub const TARGET: Field = 8..24;
    pub const OPTIONS: usize = 24;
}

const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// Why bytes are not a valid neighbour advertisement (RFC 4861 §7.1.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NdiscError {
    #[error("neighbour advertisement truncated: need {need} bytes, got {got}")]
    TooShort { need: usize, got: usize },
    #[error("ICMPv6 type {0} is not a neighbour advertisement (136)")]
    BadType(u8),
    #[error("ICMPv6 code {0} in a neighbour advertisement, must be 0 (RFC 4861 §7.1.2)")]
    BadCode(u8),
    #[error("bad ICMPv6 checksum: computed {expected:#06x}, packet carries {got:#06x}")]
    BadChecksum { expected: u16, got: u16 },
    #[error("target {0} is a multicast address (RFC 4861 §7.1.2)")]
    MulticastTarget(Ipv6Addr),
    #[error("solicited flag set on an advertisement to a multicast address (RFC 4861 §7.1.2)")]
    SolicitedToMulticast,
    #[error("ND option of length 0 (RFC 4861 §4.6: MUST discard)")]
    ZeroLengthOption,
    #[error("buffer too small for the advertisement: need {need} bytes, got {got}")]
    BufferTooSmall { need: usize, got: usize },
}

/// A read/write view of a neighbour advertisement (an ICMP for IPv6 message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without looking at it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, NdiscError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the buffer holds the 24-byte NA header (RFC 4861 §7.1.2: "ICMP length ... is 24
    /// or more octets"). Options are checked by [`NeighborAdvertRepr::parse`].
    pub fn check_len(&self) -> Result<(), NdiscError> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(NdiscError::TooShort {
                need: HEADER_LEN,
                got,
            });
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// ICMP type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// ICMP code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// ICMP checksum.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Router flag: the sender is a router.
    pub fn router_flag(&self) -> bool {
        self.flags() & FLAG_ROUTER != 0
    }

    /// Solicited flag: a reply to a solicitation.
    pub fn solicited_flag(&self) -> bool {
        self.flags() & FLAG_SOLICITED != 0
    }

    /// Override flag: replace cached link-layer addresses.
    pub fn override_flag(&self) -> bool {
        self.flags() & FLAG_OVERRIDE != 0
    }

    /// Target address.
    pub fn target_addr(&self) -> Ipv6Addr {
        ip::ipv6_at(self.buffer.as_ref(), field::TARGET)
    }

    /// The options area, everything after the header.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..]
    }

    /// Checks the ICMP checksum over the whole buffer with the RFC 8200 §8.1 pseudo-header
    /// (RFC 4443 §2.3). Never panics.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<(), NdiscError> {
        self.check_len()?;
        let expected = icmpv6_checksum(self.buffer.as_ref(), src, dst);
        let got = self.checksum();
        if expected != got {
            return Err(NdiscError::BadChecksum { expected, got });
        }
        Ok(())
    }

    fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS.start]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the ICMP type.
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the ICMP code.
    pub fn set_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets R, S and O and zeroes the reserved bits ("MUST be initialized to zero by the
    /// sender", RFC 4861 §4.4).
    pub fn set_flags(&mut self, router: bool, solicited: bool, override_: bool) {
        let mut first = 0;
        for (on, bit) in [
            (router, FLAG_ROUTER),
            (solicited, FLAG_SOLICITED),
            (override_, FLAG_OVERRIDE),
        ] {
            if on {
                first |= bit;
            }
        }
        self.buffer.as_mut()[field::FLAGS].copy_from_slice(&[first, 0, 0, 0]);
    }

    /// Sets the target address.
    pub fn set_target_addr(&mut self, addr: &Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&addr.octets());
    }

    /// The options area, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::OPTIONS..]
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let value = icmpv6_checksum(self.buffer.as_ref(), src, dst);
        self.set_checksum(value);
    }
}

/// A neighbour advertisement in host values. Options other than the target link-layer
/// address are skipped on parse and never emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighborAdvertRepr {
    pub router_flag: bool,
    pub solicited_flag: bool,
    pub override_flag: bool,
    pub target: Ipv6Addr,
    /// The target link-layer address option (RFC 4861 §4.6.1), if present.
    pub target_lladdr: Option<MacAddr>,
}

impl NeighborAdvertRepr {
    /// The unsolicited NA a new master sends for `target` at `mac`: S=0 (nobody asked), O=1
    /// (replace caches, RFC 4861 §7.2.6), R as given (RFC 9568 §6.4.2 says set it).
    pub const fn unsolicited(target: Ipv6Addr, mac: MacAddr, router: bool) -> Self {
        Self {
            router_flag: router,
            solicited_flag: false,
            override_flag: true,
            target,
            target_lladdr: Some(mac),
        }
    }

    /// Parses and validates an NA carried from `src` to `dst` (RFC 4861 §7.1.2, except the hop
    /// limit, which the IP layer has and must check). Never panics.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) -> Result<Self, NdiscError> {
        packet.check_len()?;
        if packet.msg_type() != TYPE_NEIGHBOR_ADVERT {
            return Err(NdiscError::BadType(packet.msg_type()));
        }
        if packet.code() != 0 {
            return Err(NdiscError::BadCode(packet.code()));
        }
        packet.verify_checksum(src, dst)?;
        let target = packet.target_addr();
        if target.is_multicast() {
            return Err(NdiscError::MulticastTarget(target));
        }
        if dst.is_multicast() && packet.solicited_flag() {
            return Err(NdiscError::SolicitedToMulticast);
        }
        let mut target_lladdr = None;
        let mut rest = packet.options();
        while !rest.is_empty() {
            // RFC 4861 §4.6: type (1 byte), length in units of 8 bytes (1 byte), value.
            let [kind, units, ..] = *rest else {
                return Err(NdiscError::TooShort {
                    need: 2,
                    got: rest.len(),
                });
            };
            if units == 0 {
                return Err(NdiscError::ZeroLengthOption);
            }
            let len = usize::from(units) * 8;
            let Some(opt) = rest.get(..len) else {
                return Err(NdiscError::TooShort {
                    need: len,
                    got: rest.len(),
                });
            };
            if kind == OPT_TARGET_LLADDR && len == LLADDR_OPT_LEN {
                let mut mac = [0; 6];
                mac.copy_from_slice(&opt[2..8]);
                target_lladdr = Some(MacAddr(mac));
            }
            rest = &rest[len..];
        }
        Ok(Self {
            router_flag: packet.router_flag(),
            solicited_flag: packet.solicited_flag(),
            override_flag: packet.override_flag(),
            target,
            target_lladdr,
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        match self.target_lladdr {
            Some(_) => HEADER_LEN + LLADDR_OPT_LEN,
            None => HEADER_LEN,
        }
    }

    /// Writes the NA into the front of `packet`'s buffer, with the checksum for `src` → `dst`
    /// computed over exactly [`Self::buffer_len`] bytes. Never panics.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) -> Result<(), NdiscError> {
        let need = self.buffer_len();
        let got = packet.buffer.as_ref().len();
        if got < need {
            return Err(NdiscError::BufferTooSmall { need, got });
        }
        let mut na = Packet::new_unchecked(&mut packet.buffer.as_mut()[..need]);
        na.set_msg_type(TYPE_NEIGHBOR_ADVERT);
        na.set_code(0);
        na.set_flags(self.router_flag, self.solicited_flag, self.override_flag);
        na.set_target_addr(&self.target);
        if let Some(mac) = self.target_lladdr {
            let opt = na.options_mut();
            opt[0] = OPT_TARGET_LLADDR;
            opt[1] = 1;
            opt[2..8].copy_from_slice(&mac.0);
        }
        na.set_checksum(0);
        na.fill_checksum(src, dst);
        Ok(())
    }
}

/// Writes a whole unsolicited NA frame into the front of `buf` and returns its length:
/// Ethernet from `src_mac` to `33:33:00:00:00:01`, IPv6 from `src_ip` to `ff02::1` with hop limit
/// 255 (traffic class and flow label 0), then `repr`. `src_ip` is the VIP itself or the
/// link-local address; both are "an address assigned to the interface" (RFC 4861 §7.2.2).
/// Never panics.
pub fn emit_unsolicited_na_frame(
    src_mac: MacAddr,
    src_ip: &Ipv6Addr,
    repr: &NeighborAdvertRepr,
    buf: &mut [u8],
) -> Result<usize, NdiscError> {
    let icmp_len = repr.buffer_len();
    let need = ethernet::HEADER_LEN + ip::IPV6_HEADER_LEN + icmp_len;
    if buf.len() < need {
        return Err(NdiscError::BufferTooSmall {
            need,
            got: buf.len(),
        });
    }
    let buf = &mut buf[..need];
    let eth = EthernetRepr {
        src: src_mac,
        dst: MacAddr::ipv6_multicast(&ALL_NODES),
        ethertype: EtherType::Ipv6,
    };
    let mut frame = Frame::new_unchecked(&mut *buf);
    eth.emit(&mut frame)
        .map_err(|_| NdiscError::BufferTooSmall { need, got: need })?;
    let (ip_header, icmp) = frame.payload_mut().split_at_mut(ip::IPV6_HEADER_LEN);
    let header = Ipv6Header {
        src: *src_ip,
        dst: ALL_NODES,
        next_header: NEXT_HEADER_ICMPV6,
        hop_limit: HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
        // An NA with one option is 32 bytes.
        payload_len: u16::try_from(icmp_len).unwrap_or(u16::MAX),
    };
    header.emit(ip_header);
    repr.emit(&mut Packet::new_unchecked(icmp), src_ip, &ALL_NODES)?;
    Ok(need)
}

/// The ICMP checksum of `msg` (its checksum field read as zero) from `src` to `dst`
/// (RFC 4443 §2.3).
fn icmpv6_checksum(msg: &[u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> u16 {
    // Saturating keeps this total for any slice; a real ICMPv6 message is far shorter.
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    let sum = checksum::sum_skipping(msg, field::CHECKSUM.start)
        + checksum::pseudo_ipv6(src, dst, NEXT_HEADER_ICMPV6, len);
    checksum::finish(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived 2.2.7's unsolicited NA for `2001:db8:1::104` (fixtures/README.md), whole frame.
    static GOLDEN: &[u8] = include_bytes!("fixtures/keepalived-na.bin");
    const MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x0a, 0x01]);
    const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x104);
    const ICMP_AT: usize = ethernet::HEADER_LEN + ip::IPV6_HEADER_LEN;

    fn golden_icmp() -> &'static [u8] {
        &GOLDEN[ICMP_AT..]
    }

    /// keepalived 2.2.7 leaves R clear (see the module docs).
    fn keepalived_repr() -> NeighborAdvertRepr {
        NeighborAdvertRepr::unsolicited(VIP, MAC, false)
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(golden_icmp()).unwrap();
        assert_eq!(packet.msg_type(), 136);
        assert_eq!(packet.code(), 0);
        assert_eq!(packet.checksum(), 0xed22);
        assert!(!packet.router_flag());
        assert!(!packet.solicited_flag());
        assert!(packet.override_flag());
        assert_eq!(packet.target_addr(), VIP);
        assert_eq!(
            packet.options(),
            &[2, 1, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x01]
        );
        assert_eq!(packet.verify_checksum(&VIP, &ALL_NODES), Ok(()));
    }

    #[test]
    fn construct() {
        let mut bytes = vec![0xa5; 32];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_msg_type(136);
        packet.set_code(0);
        packet.set_flags(false, false, true);
        packet.set_target_addr(&VIP);
        packet
            .options_mut()
            .copy_from_slice(&[2, 1, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x01]);
        packet.fill_checksum(&VIP, &ALL_NODES);
        assert_eq!(bytes, golden_icmp());
    }

    #[test]
    fn parse() {
        let packet = Packet::new_unchecked(golden_icmp());
        assert_eq!(
            NeighborAdvertRepr::parse(&packet, &VIP, &ALL_NODES),
            Ok(keepalived_repr())
        );
    }

    #[test]
    fn emit() {
        let mut bytes = vec![0xa5; 32];
        keepalived_repr()
            .emit(&mut Packet::new_unchecked(&mut bytes[..]), &VIP, &ALL_NODES)
            .unwrap();
        assert_eq!(bytes, golden_icmp());
    }

    #[test]
    fn emit_frame_matches_keepalived() {
        let mut bytes = [0xa5; 100];
        let len = emit_unsolicited_na_frame(MAC, &VIP, &keepalived_repr(), &mut bytes).unwrap();
        assert_eq!(&bytes[..len], GOLDEN);
        assert!(
            bytes[len..].iter().all(|b| *b == 0xa5),
            "wrote past the frame"
        );
    }

    #[test]
    fn router_flag_round_trips() {
        let repr = NeighborAdvertRepr::unsolicited(VIP, MAC, true);
        let mut bytes = [0xa5; 86];
        emit_unsolicited_na_frame(MAC, &VIP, &repr, &mut bytes).unwrap();
        assert_eq!(bytes[ICMP_AT + 4], 0xa0, "R and O set, S clear");
        let packet = Packet::new_unchecked(&bytes[ICMP_AT..]);
        assert_eq!(
            NeighborAdvertRepr::parse(&packet, &VIP, &ALL_NODES),
            Ok(repr)
        );
    }

    #[test]
    fn without_lladdr_option() {
        let repr = NeighborAdvertRepr {
            target_lladdr: None,
            ..keepalived_repr()
        };
        let mut bytes = [0xa5; HEADER_LEN];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), &VIP, &ALL_NODES)
            .unwrap();
        let packet = Packet::new_unchecked(&bytes[..]);
        assert_eq!(
            NeighborAdvertRepr::parse(&packet, &VIP, &ALL_NODES),
            Ok(repr)
        );
    }

    fn parse_modified(edit: impl FnOnce(&mut Vec<u8>)) -> Result<NeighborAdvertRepr, NdiscError> {
        let mut bytes = golden_icmp().to_vec();
        edit(&mut bytes);
        // Refill the checksum so each test hits only the rule it is about.
        Packet::new_unchecked(&mut bytes[..]).fill_checksum(&VIP, &ALL_NODES);
        NeighborAdvertRepr::parse(&Packet::new_unchecked(&bytes[..]), &VIP, &ALL_NODES)
    }

    #[test]
    fn too_short() {
        let packet = Packet::new_unchecked(&golden_icmp()[..23]);
        let err = NeighborAdvertRepr::parse(&packet, &VIP, &ALL_NODES);
        assert_eq!(err, Err(NdiscError::TooShort { need: 24, got: 23 }));
    }

    #[test]
    fn bad_type() {
        assert_eq!(
            parse_modified(|b| b[0] = 135),
            Err(NdiscError::BadType(135))
        );
    }

    #[test]
    fn bad_code() {
        assert_eq!(parse_modified(|b| b[1] = 1), Err(NdiscError::BadCode(1)));
    }

    #[test]
    fn bad_checksum() {
        let mut bytes = golden_icmp().to_vec();
        bytes[8] ^= 1; // flip a target bit
        let err = NeighborAdvertRepr::parse(&Packet::new_unchecked(&bytes[..]), &VIP, &ALL_NODES);
        assert_eq!(
            err,
            Err(NdiscError::BadChecksum {
                expected: 0xec22,
                got: 0xed22
            })
        );
    }

    #[test]
    fn multicast_target() {
        let err = parse_modified(|b| b[8] = 0xff);
        assert!(matches!(err, Err(NdiscError::MulticastTarget(t)) if t.is_multicast()));
    }

    #[test]
    fn solicited_to_multicast() {
        assert_eq!(
            parse_modified(|b| b[4] |= FLAG_SOLICITED),
            Err(NdiscError::SolicitedToMulticast)
        );
    }

    #[test]
    fn zero_length_option() {
        assert_eq!(
            parse_modified(|b| b[25] = 0),
            Err(NdiscError::ZeroLengthOption)
        );
    }

    #[test]
    fn truncated_option() {
        assert_eq!(
            parse_modified(|b| b[25] = 2),
            Err(NdiscError::TooShort { need: 16, got: 8 })
        );
        assert_eq!(
            parse_modified(|b| b.truncate(25)),
            Err(NdiscError::TooShort { need: 2, got: 1 })
        );
    }

    #[test]
    fn emit_buffer_too_small() {
        let mut bytes = [0; 31];
        let err =
            keepalived_repr().emit(&mut Packet::new_unchecked(&mut bytes[..]), &VIP, &ALL_NODES);
        assert_eq!(err, Err(NdiscError::BufferTooSmall { need: 32, got: 31 }));
    }
}
