//! ARP over Ethernet for IPv4 (RFC 826), for the gratuitous ARP a new master sends for each
//! virtual IPv4 address (RFC 9568 §6.4.1, §6.4.2) so switches and hosts learn where it now is.
//!
//! Two gratuitous forms exist and stacks differ in which they heed, so both can be built
//! ([`GarpForm`]): the *request* (what keepalived 2.2.7 sends, and what RFC 5227 §3 calls an
//! ARP announcement) and the *reply* (RFC 5944 §4.6).
//!
//! # Panics
//! [`Packet::new_checked`], [`Packet::check_len`], [`ArpRepr::parse`], [`ArpRepr::emit`] and
//! [`emit_gratuitous_frame`] never panic. Getters and setters on a [`Packet::new_unchecked`]
//! view panic if the buffer is shorter than [`PACKET_LEN`].

use std::net::Ipv4Addr;

use super::ethernet::{self, EtherType, EthernetRepr, Frame, MacAddr};

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;
/// Length of a whole gratuitous ARP frame (Ethernet header + ARP, before link padding).
pub const FRAME_LEN: usize = ethernet::HEADER_LEN + PACKET_LEN;

/// ARP hardware type for Ethernet (RFC 826; IANA "Hardware Types" 1).
const HTYPE_ETHERNET: u16 = 1;
/// ARP protocol type for IPv4: its Ethernet type value.
const PTYPE_IPV4: u16 = 0x0800;

/// Field offsets for Ethernet (6-byte) hardware and IPv4 (4-byte) protocol addresses.
mod field {
    pub type Field = core::ops::Range<usize>;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// ARP operation (RFC 826 `ar$op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(value: u16) -> Self {
        match value {
            1 => Self::Request,
            2 => Self::Reply,
            other => Self::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(value: Operation) -> Self {
        match value {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(other) => other,
        }
    }
}

/// Why bytes are not an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArpError {
    #[error("ARP packet too short: need {need} bytes, got {got}")]
    TooShort { need: usize, got: usize },
    #[error(
        "not Ethernet/IPv4 ARP: hardware type {htype}, protocol {ptype:#06x}, lengths {hlen}/{plen}"
    )]
    Unsupported {
        htype: u16,
        ptype: u16,
        hlen: u8,
        plen: u8,
    },
    #[error("ARP operation {0} is neither request (1) nor reply (2)")]
    UnknownOperation(u16),
}

/// A read/write view of an ARP packet.
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
    pub fn new_checked(buffer: T) -> Result<Self, ArpError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the buffer holds an Ethernet/IPv4 ARP packet's worth of bytes.
    pub fn check_len(&self) -> Result<(), ArpError> {
        let got = self.buffer.as_ref().len();
        if got < PACKET_LEN {
            return Err(ArpError::TooShort {
                need: PACKET_LEN,
                got,
            });
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type.
    pub fn htype(&self) -> u16 {
        self.be16(field::HTYPE)
    }

    /// Protocol type.
    pub fn ptype(&self) -> u16 {
        self.be16(field::PTYPE)
    }

    /// Hardware address length.
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn plen(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    pub fn operation(&self) -> Operation {
        self.be16(field::OPER).into()
    }

    /// Sender hardware address.
    pub fn source_mac(&self) -> MacAddr {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::SHA]);
        MacAddr(mac)
    }

    /// Sender protocol address.
    pub fn source_ip(&self) -> Ipv4Addr {
        self.ipv4(field::SPA)
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddr {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::THA]);
        MacAddr(mac)
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        self.ipv4(field::TPA)
    }

    fn be16(&self, range: field::Field) -> u16 {
        let b = &self.buffer.as_ref()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn ipv4(&self, range: field::Field) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[range];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hardware type.
    pub fn set_htype(&mut self, value: u16) {
        self.buffer.as_mut()[field::HTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the protocol type.
    pub fn set_ptype(&mut self, value: u16) {
        self.buffer.as_mut()[field::PTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the hardware address length.
    pub fn set_hlen(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    pub fn set_plen(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, value: Operation) {
        let v = u16::from(value).to_be_bytes();
        self.buffer.as_mut()[field::OPER].copy_from_slice(&v);
    }

    /// Sets the sender hardware address.
    pub fn set_source_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac.0);
    }

    /// Sets the sender protocol address.
    pub fn set_source_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&ip.octets());
    }
}

/// Which gratuitous ARP to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GarpForm {
    /// Request with sender = target = the address and target MAC ff:ff:ff:ff:ff:ff, exactly
    /// as keepalived 2.2.7 sends it (RFC 5227 §3 says the target MAC is ignored).
    #[default]
    Request,
    /// Reply with sender = target = the address and target MAC = sender MAC (RFC 5944 §4.6).
    Reply,
}

/// An Ethernet/IPv4 ARP packet in host values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    pub operation: Operation,
    pub source_mac: MacAddr,
    pub source_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// A gratuitous ARP announcing that `ip` is at `mac` (the virtual MAC when `use_vmac`,
    /// else the interface's).
    pub const fn gratuitous(form: GarpForm, mac: MacAddr, ip: Ipv4Addr) -> Self {
        let (operation, target_mac) = match form {
            GarpForm::Request => (Operation::Request, MacAddr::BROADCAST),
            GarpForm::Reply => (Operation::Reply, mac),
        };
        Self {
            operation,
            source_mac: mac,
            source_ip: ip,
            target_mac,
            target_ip: ip,
        }
    }

    /// Whether this is a gratuitous ARP (sender and target address equal, RFC 5227 §3).
    pub fn is_gratuitous(&self) -> bool {
        self.source_ip == self.target_ip
    }

    /// Parses an Ethernet/IPv4 ARP packet. Never panics.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Self, ArpError> {
        packet.check_len()?;
        let (htype, ptype, hlen, plen) =
            (packet.htype(), packet.ptype(), packet.hlen(), packet.plen());
        if htype != HTYPE_ETHERNET || ptype != PTYPE_IPV4 || hlen != 6 || plen != 4 {
            return Err(ArpError::Unsupported {
                htype,
                ptype,
                hlen,
                plen,
            });
        }
        let operation = match packet.operation() {
            Operation::Unknown(op) => return Err(ArpError::UnknownOperation(op)),
            op => op,
        };
        Ok(Self {
            operation,
            source_mac: packet.source_mac(),
            source_ip: packet.source_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        })
    }

    /// Bytes [`Self::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet. Never panics: a short buffer is an error.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
    ) -> Result<(), ArpError> {
        packet.check_len()?;
        packet.set_htype(HTYPE_ETHERNET);
        packet.set_ptype(PTYPE_IPV4);
        packet.set_hlen(6);
        packet.set_plen(4);
        packet.set_operation(self.operation);
        packet.set_source_mac(self.source_mac);
        packet.set_source_ip(self.source_ip);
        packet.set_target_mac(self.target_mac);
        packet.set_target_ip(self.target_ip);
        Ok(())
    }
}

/// Writes a whole gratuitous ARP frame (broadcast Ethernet header from `mac`, then the ARP
/// packet) into the front of `buf` and returns its length, [`FRAME_LEN`]. The NIC pads it to
/// the 60-byte minimum. Never panics.
pub fn emit_gratuitous_frame(
    form: GarpForm,
    mac: MacAddr,
    ip: Ipv4Addr,
    buf: &mut [u8],
) -> Result<usize, ArpError> {
    if buf.len() < FRAME_LEN {
        return Err(ArpError::TooShort {
            need: FRAME_LEN,
            got: buf.len(),
        });
    }
    let buf = &mut buf[..FRAME_LEN];
    let eth = EthernetRepr {
        src: mac,
        dst: MacAddr::BROADCAST,
        ethertype: EtherType::Arp,
    };
    let mut frame = Frame::new_unchecked(&mut *buf);
    // The length was checked above, so the header fits.
    eth.emit(&mut frame).map_err(|_| ArpError::TooShort {
        need: FRAME_LEN,
        got: FRAME_LEN,
    })?;
    ArpRepr::gratuitous(form, mac, ip).emit(&mut Packet::new_unchecked(frame.payload_mut()))?;
    Ok(FRAME_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived 2.2.7's gratuitous ARP for 192.0.2.104 (fixtures/README.md): a whole frame.
    static GOLDEN: &[u8] = include_bytes!("fixtures/keepalived-garp.bin");
    const MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x0a, 0x01]);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 104);

    fn golden_arp() -> &'static [u8] {
        &GOLDEN[ethernet::HEADER_LEN..]
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(golden_arp()).unwrap();
        assert_eq!(packet.htype(), 1);
        assert_eq!(packet.ptype(), 0x0800);
        assert_eq!((packet.hlen(), packet.plen()), (6, 4));
        assert_eq!(packet.operation(), Operation::Request);
        assert_eq!(packet.source_mac(), MAC);
        assert_eq!(packet.source_ip(), VIP);
        assert_eq!(packet.target_mac(), MacAddr::BROADCAST);
        assert_eq!(packet.target_ip(), VIP);
    }

    #[test]
    fn construct() {
        let mut bytes = vec![0xa5; PACKET_LEN];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_htype(1);
        packet.set_ptype(0x0800);
        packet.set_hlen(6);
        packet.set_plen(4);
        packet.set_operation(Operation::Request);
        packet.set_source_mac(MAC);
        packet.set_source_ip(VIP);
        packet.set_target_mac(MacAddr::BROADCAST);
        packet.set_target_ip(VIP);
        assert_eq!(bytes, golden_arp());
    }

    #[test]
    fn parse() {
        let repr = ArpRepr::parse(&Packet::new_unchecked(golden_arp())).unwrap();
        assert_eq!(repr, ArpRepr::gratuitous(GarpForm::Request, MAC, VIP));
        assert!(repr.is_gratuitous());
    }

    #[test]
    fn emit() {
        let mut bytes = vec![0xa5; PACKET_LEN];
        let repr = ArpRepr::gratuitous(GarpForm::Request, MAC, VIP);
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]))
            .unwrap();
        assert_eq!(bytes, golden_arp());
    }

    #[test]
    fn emit_frame_matches_keepalived() {
        let mut bytes = [0xa5; 64];
        let len = emit_gratuitous_frame(GarpForm::Request, MAC, VIP, &mut bytes).unwrap();
        assert_eq!(&bytes[..len], GOLDEN);
        assert!(
            bytes[len..].iter().all(|b| *b == 0xa5),
            "wrote past the frame"
        );
    }

    #[test]
    fn reply_form() {
        let mut bytes = [0xa5; FRAME_LEN];
        emit_gratuitous_frame(GarpForm::Reply, MAC, VIP, &mut bytes).unwrap();
        let frame = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(frame.dst_addr(), MacAddr::BROADCAST);
        let repr = ArpRepr::parse(&Packet::new_unchecked(frame.payload())).unwrap();
        // RFC 5944 §4.6: a gratuitous reply names the sender's MAC as the target's too.
        assert_eq!(repr.operation, Operation::Reply);
        assert_eq!((repr.source_mac, repr.target_mac), (MAC, MAC));
        assert_eq!((repr.source_ip, repr.target_ip), (VIP, VIP));
    }

    #[test]
    fn too_short() {
        let err = ArpRepr::parse(&Packet::new_unchecked(&golden_arp()[..27]));
        assert_eq!(err, Err(ArpError::TooShort { need: 28, got: 27 }));
        let mut small = [0; FRAME_LEN - 1];
        let err = emit_gratuitous_frame(GarpForm::Request, MAC, VIP, &mut small);
        assert_eq!(
            err,
            Err(ArpError::TooShort {
                need: FRAME_LEN,
                got: FRAME_LEN - 1
            })
        );
    }

    #[test]
    fn unsupported_hardware() {
        let mut bytes = golden_arp().to_vec();
        Packet::new_unchecked(&mut bytes[..]).set_htype(6); // IEEE 802 networks
        let err = ArpRepr::parse(&Packet::new_unchecked(&bytes[..]));
        assert_eq!(
            err,
            Err(ArpError::Unsupported {
                htype: 6,
                ptype: 0x0800,
                hlen: 6,
                plen: 4
            })
        );
    }

    #[test]
    fn unknown_operation() {
        let mut bytes = golden_arp().to_vec();
        Packet::new_unchecked(&mut bytes[..]).set_operation(Operation::Unknown(8)); // InARP
        let err = ArpRepr::parse(&Packet::new_unchecked(&bytes[..]));
        assert_eq!(err, Err(ArpError::UnknownOperation(8)));
    }
}
