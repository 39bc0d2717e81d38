//! Ethernet II headers (IEEE 802.3 §3.2.6 type interpretation) and the MAC addresses VRRP
//! uses. No 802.1Q tag: the agent sends on the untagged interface (or a VLAN device).
//!
//! # Panics
//! [`Frame::new_checked`], [`Frame::check_len`], [`EthernetRepr::parse`] and
//! [`EthernetRepr::emit`] never panic. Getters and setters on a [`Frame::new_unchecked`] view
//! panic if the buffer is shorter than [`HEADER_LEN`].

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::Family;
use super::vrrp::VrId;

/// Length of the Ethernet II header: destination, source, type.
pub const HEADER_LEN: usize = field::PAYLOAD;

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: Self = Self([0xff; 6]);

    /// Whether the group bit (the lowest bit of the first octet) is set.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The Ethernet group address an IPv4 multicast address maps to (RFC 1112 §6.4:
    /// 01-00-5E plus the low 23 bits). `224.0.0.18` gives `01:00:5e:00:00:12`.
    pub const fn ipv4_multicast(group: Ipv4Addr) -> Self {
        let o = group.octets();
        Self([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
    }

    /// The Ethernet group address an IPv6 multicast address maps to (RFC 2464 §7: 33-33 plus
    /// the low 32 bits). `ff02::12` gives `33:33:00:00:00:12`; `ff02::1` gives `33:33:00:00:00:01`.
    pub const fn ipv6_multicast(group: &Ipv6Addr) -> Self {
        let o = group.octets();
        Self([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let octets = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            octets[0], octets[1], octets[2], octets[3], octets[4], octets[5]
        )
    }
}

/// The virtual router MAC address: 00-00-5E-00-01-{VRID} for IPv4 and 00-00-5E-00-02-{VRID}
/// for IPv6 (RFC 9568 §7.3).
pub const fn virtual_mac(vrid: VrId, family: Family) -> MacAddr {
    let kind = match family {
        Family::Ipv4 => 0x01,
        Family::Ipv6 => 0x02,
    };
    MacAddr([0x00, 0x00, 0x5e, 0x00, kind, vrid.0])
}

/// The Ethernet type values the agent handles; anything else is kept as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Ipv6,
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(value: u16) -> Self {
        match value {
            0x0800 => Self::Ipv4,
            0x0806 => Self::Arp,
            0x86dd => Self::Ipv6,
            other => Self::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> Self {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(other) => other,
        }
    }
}

/// Why bytes are not an Ethernet II header, or a header cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EthernetError {
    #[error("Ethernet frame too short: need {need} bytes, got {got}")]
    TooShort { need: usize, got: usize },
}

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without looking at it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, EthernetError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks the buffer holds a whole header.
    pub fn check_len(&self) -> Result<(), EthernetError> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(EthernetError::TooShort {
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

    /// Destination MAC.
    pub fn dst_addr(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::DESTINATION)
    }

    /// Source MAC.
    pub fn src_addr(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SOURCE)
    }

    /// Ethernet type.
    pub fn ethertype(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        u16::from_be_bytes([b[0], b[1]]).into()
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC.
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC.
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the Ethernet type.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        let v = u16::from(ethertype).to_be_bytes();
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&v);
    }

    /// Everything after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// An Ethernet II header in host values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    pub src: MacAddr,
    pub dst: MacAddr,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header. Never panics.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &Frame<&T>) -> Result<Self, EthernetError> {
        frame.check_len()?;
        Ok(Self {
            src: frame.src_addr(),
            dst: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// Bytes the header takes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header; the payload is left alone. Never panics.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        frame: &mut Frame<T>,
    ) -> Result<(), EthernetError> {
        frame.check_len()?;
        frame.set_dst_addr(self.dst);
        frame.set_src_addr(self.src);
        frame.set_ethertype(self.ethertype);
        Ok(())
    }
}

fn mac_at(buf: &[u8], range: field::Field) -> MacAddr {
    let mut mac = [0; 6];
    mac.copy_from_slice(&buf[range]);
    MacAddr(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived 2.2.7's gratuitous ARP frame (fixtures/README.md); its header is tested here.
    static GARP: &[u8] = include_bytes!("fixtures/keepalived-garp.bin");
    const SRC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x0a, 0x01]);

    fn header() -> &'static [u8] {
        &GARP[..HEADER_LEN]
    }

    fn repr() -> EthernetRepr {
        EthernetRepr {
            src: SRC,
            dst: MacAddr::BROADCAST,
            ethertype: EtherType::Arp,
        }
    }

    #[test]
    fn deconstruct() {
        let frame = Frame::new_checked(GARP).unwrap();
        assert_eq!(frame.dst_addr(), MacAddr::BROADCAST);
        assert_eq!(frame.src_addr().to_string(), "02:00:00:00:0a:01");
        assert_eq!(frame.ethertype(), EtherType::Arp);
        assert_eq!(frame.payload().len(), 28);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5; HEADER_LEN];
        let mut frame = Frame::new_unchecked(&mut bytes[..]);
        frame.set_dst_addr(MacAddr::BROADCAST);
        frame.set_src_addr(SRC);
        frame.set_ethertype(EtherType::Arp);
        assert_eq!(bytes, header());
    }

    #[test]
    fn parse() {
        assert_eq!(
            EthernetRepr::parse(&Frame::new_unchecked(header())),
            Ok(repr())
        );
    }

    #[test]
    fn emit() {
        let mut bytes = [0xa5; HEADER_LEN];
        repr()
            .emit(&mut Frame::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes, header());
    }

    #[test]
    fn too_short() {
        let frame = Frame::new_unchecked(&GARP[..13]);
        let err = EthernetRepr::parse(&frame);
        assert_eq!(err, Err(EthernetError::TooShort { need: 14, got: 13 }));
        let mut small = [0; 13];
        let err = repr().emit(&mut Frame::new_unchecked(&mut small[..]));
        assert_eq!(err, Err(EthernetError::TooShort { need: 14, got: 13 }));
    }

    #[test]
    fn virtual_macs() {
        // RFC 9568 §7.3.
        let v4 = virtual_mac(VrId(51), Family::Ipv4);
        assert_eq!(v4.to_string(), "00:00:5e:00:01:33");
        assert_eq!(
            virtual_mac(VrId(255), Family::Ipv6).to_string(),
            "00:00:5e:00:02:ff"
        );
        assert!(!v4.is_multicast());
    }

    #[test]
    fn multicast_macs() {
        let v4 = MacAddr::ipv4_multicast(Ipv4Addr::new(224, 0, 0, 18));
        assert_eq!(v4.to_string(), "01:00:5e:00:00:12");
        // The high bit of the second octet is dropped (RFC 1112 §6.4).
        let high = MacAddr::ipv4_multicast(Ipv4Addr::new(239, 255, 1, 2));
        assert_eq!(high.to_string(), "01:00:5e:7f:01:02");
        let v6 = MacAddr::ipv6_multicast(&"ff02::12".parse().unwrap());
        assert_eq!(v6.to_string(), "33:33:00:00:00:12");
        assert!(v4.is_multicast() && v6.is_multicast());
    }

    #[test]
    fn ethertype_round_trip() {
        for v in [0x0800, 0x0806, 0x86dd, 0x88cc] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x88cc), EtherType::Unknown(0x88cc));
    }
}
