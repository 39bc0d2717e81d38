//! VRRP advertisements: v3 (RFC 5798 §5 as updated by RFC 9568) and v2 (RFC 3768 §5).
//!
//! ```text
//!  0                   1                   2                   3
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! v3: |(rsvd) |  Max Adver Int (12 bits, centiseconds)  |   Checksum    |
//! v2: |   Auth Type   | Adver Int (s) |           Checksum            |
//! |                     IPvX Address(es) ...                      |
//! v2 only: |              Authentication Data (8 bytes)            |
//! ```
//!
//! The header does not say which address family it carries: the IP layer around it does. So a
//! [`Packet`] is made with a [`Family`], and checksums need a [`ChecksumContext`] holding the
//! real IP source and destination (for a unicast advert, the unicast destination).
//!
//! # What is decided here
//! Everything that makes an advert *malformed* (RFC 9568 §7.1, RFC 3768 §7.1): truncation,
//! version, type, checksum, VRID 0, an address count of 0 (RFC 9568 erratum 8299), a max advert
//! interval of 0 (RFC 9568 erratum 8301; for v2 an interval of 0 s is equally meaningless), and
//! v2 authentication types other than 0 and 1. Whether a well-formed advert is *acceptable*
//! (VRID configured here, owner, interval mismatch in v2, auth data match) is the state
//! machine's call in the `vipflip-vrrp` crate.
//!
//! # Panics
//! These never panic, whatever the bytes and whatever the [`AdvertRepr`]:
//! [`Packet::new_checked`], [`Packet::check_len`], [`Packet::verify_checksum`],
//! [`AdvertRepr::parse`], [`AdvertRepr::parse_with_form`], [`AdvertRepr::validate`],
//! [`AdvertRepr::buffer_len`] and [`AdvertRepr::emit`] (a short buffer is an error, not a panic).
//! Getters and setters index the buffer directly, like smoltcp's: on a packet that passed
//! `check_len` every getter is in bounds (address getters for `index < addr_count()`); on a
//! [`Packet::new_unchecked`] packet they panic when the field lies past the end.

use core::fmt;
use core::time::Duration;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::Family;

mod checksum;

pub use checksum::{ChecksumContext, ChecksumForm, V3Ipv4Checksum};

/// IANA protocol number of VRRP, in the IPv4 protocol and IPv6 next-header fields
/// (RFC 9568 §5.1.1.4, §5.1.2.3).
pub const PROTOCOL: u8 = 112;
/// Length of the fixed header: version/type, VRID, priority, count, interval, checksum.
pub const HEADER_LEN: usize = field::ADDRS;
/// Length of the version 2 authentication data trailer (RFC 3768 §5.3.10).
pub const V2_AUTH_DATA_LEN: usize = 8;
/// Most addresses one advert can list: the count field is 8 bits (RFC 9568 §5.2.5). The link
/// MTU may allow fewer (90 IPv6 addresses in 1500 bytes); that is the sender's concern.
pub const MAX_ADDRS: usize = 255;
/// Largest v3 Max Adver Int, in centiseconds: the field is 12 bits (RFC 9568 §5.2.7).
pub const V3_MAX_INTERVAL_CS: u16 = 0x0fff;
/// The only message type VRRP defines (RFC 9568 §5.2.2, RFC 3768 §5.3.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;

/// Byte offsets of the header fields (RFC 9568 §5.1, RFC 3768 §5.1).
mod field {
    pub type Field = core::ops::Range<usize>;

    /// Version (high nibble) and type (low nibble).
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v3: 4 reserved bits, then Max Adver Int in centiseconds (12 bits).
    pub const V3_INTERVAL: Field = 4..6;
    /// v2: authentication type.
    pub const V2_AUTH_TYPE: usize = 4;
    /// v2: advertisement interval in whole seconds.
    pub const V2_INTERVAL: usize = 5;
    pub const CHECKSUM: Field = 6..8;
    /// First virtual address; the v2 authentication data follows the last one.
    pub const ADDRS: usize = 8;
}

/// A virtual router identifier, 1..=255 (RFC 5798 §5.2.3). 0 is never valid on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VrId(pub u8);

impl VrId {
    /// The VRID if `id` is a valid one (1..=255).
    pub const fn new(id: u8) -> Option<Self> {
        if id == 0 { None } else { Some(Self(id)) }
    }
}

impl fmt::Display for VrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A VRRP priority (RFC 5798 §5.2.4): 255 = address owner, 1..=254 backups, 0 = the master
/// is resigning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(pub u8);

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Protocol version of an advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpVersion {
    /// RFC 3768: IPv4 only, interval in whole seconds, 8-byte authentication trailer.
    V2,
    /// RFC 5798 / RFC 9568: IPv4 or IPv6, interval in centiseconds.
    V3,
}

impl VrrpVersion {
    /// The value of the 4-bit version field.
    pub const fn number(self) -> u8 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }
}

/// The virtual addresses an advert announces; one family per advert (RFC 5798 §5.2.9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VirtualAddrs {
    V4(Vec<Ipv4Addr>),
    /// For IPv6 the first address is the virtual router's link-local address.
    V6(Vec<Ipv6Addr>),
}

impl VirtualAddrs {
    /// The address family of the list.
    pub const fn family(&self) -> Family {
        match self {
            Self::V4(_) => Family::Ipv4,
            Self::V6(_) => Family::Ipv6,
        }
    }

    /// How many addresses the list holds.
    pub fn len(&self) -> usize {
        match self {
            Self::V4(a) => a.len(),
            Self::V6(a) => a.len(),
        }
    }

    /// Whether the list is empty (never true for a parsed advert).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// VRRP version 2 authentication (RFC 3768 §5.3.6). Accepted for interop only: none of these
/// give any security (RFC 3768 §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Type 0 (and every v3 advert).
    None,
    /// Type 1: 8 bytes of clear text, compared verbatim.
    SimpleText([u8; 8]),
}

/// Why bytes are not a well-formed advert. Every variant means "discard" (RFC 9568 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvertError {
    #[error("advert truncated: need {need} bytes, got {got}")]
    TooShort { need: usize, got: usize },
    #[error("VRRP version {0} is not supported (only 2 and 3)")]
    BadVersion(u8),
    #[error("VRRP type {0} is not an advertisement (1)")]
    BadType(u8),
    #[error("VRRPv2 advert carried over IPv6: RFC 3768 is IPv4 only")]
    Ipv6InV2,
    #[error("the packet view is {packet:?} but the checksum context is {context:?}")]
    FamilyMismatch { packet: Family, context: Family },
    #[error("bad checksum: computed {expected:#06x}, packet carries {got:#06x}")]
    BadChecksum { expected: u16, got: u16 },
    #[error("VRID 0 is not valid (RFC 9568 §5.2.3: 1-255)")]
    ZeroVrId,
    #[error("address count 0: the advert MUST be ignored (RFC 9568 §5.2.5, erratum 8299)")]
    ZeroCount,
    #[error("max advert interval 0 (RFC 9568 erratum 8301)")]
    ZeroInterval,
    #[error(
        "VRRPv2 auth type 2 (IP Authentication Header) is not supported: RFC 3768 §5.3.6 \
         deprecated it"
    )]
    AuthAh,
    #[error("unknown VRRPv2 auth type {0} (RFC 3768 §5.3.6: MUST discard)")]
    UnknownAuth(u8),
}

/// Why an [`AdvertRepr`] cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReprError {
    #[error("buffer too small for the advert: need {need} bytes, got {got}")]
    BufferTooSmall { need: usize, got: usize },
    #[error("VRID 0 is not valid (RFC 9568 §5.2.3: 1-255)")]
    ZeroVrId,
    #[error("an advert lists 1 to {MAX_ADDRS} addresses, not {got}")]
    AddrCount { got: usize },
    #[error(
        "interval {got:?} does not fit: v3 takes 10 ms to 40.95 s in whole centiseconds, \
         v2 1 to 255 whole seconds"
    )]
    Interval { got: Duration },
    #[error("VRRPv2 cannot carry IPv6 addresses (RFC 3768 is IPv4 only)")]
    Ipv6InV2,
    #[error("VRRPv3 has no authentication (RFC 5798 §9)")]
    AuthInV3,
    #[error("the advert lists {repr:?} addresses but the IP context is {context:?}")]
    FamilyMismatch { repr: Family, context: Family },
}

/// A read/write view of a VRRP message in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without looking at it. Getters may panic until [`Self::check_len`]
    /// has passed.
    pub const fn new_unchecked(buffer: T, family: Family) -> Self {
        Self { buffer, family }
    }

    /// Wraps a buffer after [`Self::check_len`].
    pub fn new_checked(buffer: T, family: Family) -> Result<Self, AdvertError> {
        let packet = Self::new_unchecked(buffer, family);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the header, `count` addresses of the packet's family and,
    /// when the version field says 2, the 8 bytes of authentication data (RFC 9568 §7.1: "the
    /// received packet contains the complete VRRP packet"). Trailing bytes are allowed: the
    /// checksum covers them, the fields ignore them. Never panics.
    pub fn check_len(&self) -> Result<(), AdvertError> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(AdvertError::TooShort {
                need: HEADER_LEN,
                got,
            });
        }
        let need = self.len_for(self.addr_count());
        if got < need {
            return Err(AdvertError::TooShort { need, got });
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Address family the view was made for.
    pub const fn family(&self) -> Family {
        self.family
    }

    /// The 4-bit version field.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// The 4-bit type field.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    /// Virtual router ID, raw.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// Priority, raw.
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// Count of virtual addresses.
    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v3: the 4 reserved bits above Max Adver Int (sent as zero, ignored on receipt:
    /// RFC 9568 §5.2.6).
    pub fn v3_reserved(&self) -> u8 {
        self.buffer.as_ref()[field::V3_INTERVAL.start] >> 4
    }

    /// v3: Max Adver Int in centiseconds (12 bits).
    pub fn v3_max_adver_int(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::V3_INTERVAL];
        u16::from_be_bytes([b[0], b[1]]) & V3_MAX_INTERVAL_CS
    }

    /// v2: authentication type.
    pub fn v2_auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::V2_AUTH_TYPE]
    }

    /// v2: advertisement interval in seconds.
    pub fn v2_adver_int(&self) -> u8 {
        self.buffer.as_ref()[field::V2_INTERVAL]
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The `index`th address of an IPv4 advert.
    pub fn ipv4_addr(&self, index: usize) -> Ipv4Addr {
        let at = field::ADDRS + index * 4;
        let b = &self.buffer.as_ref()[at..at + 4];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The `index`th address of an IPv6 advert.
    pub fn ipv6_addr(&self, index: usize) -> Ipv6Addr {
        let at = field::ADDRS + index * 16;
        let mut octets = [0; 16];
        octets.copy_from_slice(&self.buffer.as_ref()[at..at + 16]);
        Ipv6Addr::from(octets)
    }

    /// v2: the 8 bytes of authentication data after the addresses.
    pub fn v2_auth_data(&self) -> &[u8] {
        let at = self.auth_data_offset();
        &self.buffer.as_ref()[at..at + V2_AUTH_DATA_LEN]
    }

    /// Checks the checksum against `ctx`, trying the context's preferred v3/IPv4 form first,
    /// and says which form matched. The message is the whole buffer (the IP payload). Never
    /// panics; the version field decides v2 vs v3 (anything but 2 is treated as v3).
    pub fn verify_checksum(&self, ctx: &ChecksumContext) -> Result<ChecksumForm, AdvertError> {
        let msg = self.buffer.as_ref();
        if msg.len() < HEADER_LEN {
            return Err(AdvertError::TooShort {
                need: HEADER_LEN,
                got: msg.len(),
            });
        }
        let got = self.checksum();
        let [first, second] = ctx.forms(self.layout_version());
        let expected = ctx.compute(msg, first);
        if expected == got {
            return Ok(first);
        }
        if second != first && ctx.compute(msg, second) == got {
            return Ok(second);
        }
        Err(AdvertError::BadChecksum { expected, got })
    }

    fn layout_version(&self) -> VrrpVersion {
        if self.version() == 2 {
            VrrpVersion::V2
        } else {
            VrrpVersion::V3
        }
    }

    /// Bytes a message of this packet's version and family needs for `count` addresses.
    fn len_for(&self, count: u8) -> usize {
        let trailer = match self.layout_version() {
            VrrpVersion::V2 => V2_AUTH_DATA_LEN,
            VrrpVersion::V3 => 0,
        };
        HEADER_LEN + usize::from(count) * self.family.addr_len() + trailer
    }

    fn auth_data_offset(&self) -> usize {
        field::ADDRS + usize::from(self.addr_count()) * self.family.addr_len()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version field.
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_TYPE];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the type field.
    pub fn set_msg_type(&mut self, msg_type: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_TYPE];
        *b = (*b & 0xf0) | (msg_type & 0x0f);
    }

    /// Sets the virtual router ID.
    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    /// Sets the priority.
    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    /// Sets the address count.
    pub fn set_addr_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT] = count;
    }

    /// v3: sets Max Adver Int (centiseconds, low 12 bits kept) and zeroes the reserved bits
    /// (RFC 9568 §5.2.6: "MUST be set to zero on transmission").
    pub fn set_v3_max_adver_int(&mut self, centiseconds: u16) {
        let v = (centiseconds & V3_MAX_INTERVAL_CS).to_be_bytes();
        self.buffer.as_mut()[field::V3_INTERVAL].copy_from_slice(&v);
    }

    /// v2: sets the authentication type.
    pub fn set_v2_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::V2_AUTH_TYPE] = auth_type;
    }

    /// v2: sets the advertisement interval in seconds.
    pub fn set_v2_adver_int(&mut self, seconds: u8) {
        self.buffer.as_mut()[field::V2_INTERVAL] = seconds;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the `index`th address of an IPv4 advert.
    pub fn set_ipv4_addr(&mut self, index: usize, addr: Ipv4Addr) {
        let at = field::ADDRS + index * 4;
        self.buffer.as_mut()[at..at + 4].copy_from_slice(&addr.octets());
    }

    /// Sets the `index`th address of an IPv6 advert.
    pub fn set_ipv6_addr(&mut self, index: usize, addr: &Ipv6Addr) {
        let at = field::ADDRS + index * 16;
        self.buffer.as_mut()[at..at + 16].copy_from_slice(&addr.octets());
    }

    /// v2: the authentication data, writable. Placed after `addr_count()` addresses.
    pub fn v2_auth_data_mut(&mut self) -> &mut [u8] {
        let at = self.auth_data_offset();
        &mut self.buffer.as_mut()[at..at + V2_AUTH_DATA_LEN]
    }

    /// Computes and stores the checksum over the whole buffer in the form `ctx` sends for the
    /// packet's version field.
    pub fn fill_checksum(&mut self, ctx: &ChecksumContext) {
        let [form, _] = ctx.forms(self.layout_version());
        self.set_checksum(0);
        let value = ctx.compute(self.buffer.as_ref(), form);
        self.set_checksum(value);
    }
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

impl AdvertRepr {
    /// Parses and validates an advert; see the module docs for what counts as malformed.
    /// Never panics, even on a [`Packet::new_unchecked`] view.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        ctx: &ChecksumContext,
    ) -> Result<Self, AdvertError> {
        Self::parse_with_form(packet, ctx).map(|(repr, _)| repr)
    }

    /// Like [`Self::parse`], also saying which checksum form the sender used.
    pub fn parse_with_form<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        ctx: &ChecksumContext,
    ) -> Result<(Self, ChecksumForm), AdvertError> {
        let got = packet.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(AdvertError::TooShort {
                need: HEADER_LEN,
                got,
            });
        }
        // RFC 9568 §7.1 order: version, then completeness, then checksum; the type check is
        // RFC 9568 §5.2.2 ("packets with unknown type MUST be discarded").
        let version = match packet.version() {
            2 => VrrpVersion::V2,
            3 => VrrpVersion::V3,
            other => return Err(AdvertError::BadVersion(other)),
        };
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(AdvertError::BadType(packet.msg_type()));
        }
        if packet.family != ctx.family() {
            return Err(AdvertError::FamilyMismatch {
                packet: packet.family,
                context: ctx.family(),
            });
        }
        if version == VrrpVersion::V2 && packet.family == Family::Ipv6 {
            return Err(AdvertError::Ipv6InV2);
        }
        packet.check_len()?;
        let form = packet.verify_checksum(ctx)?;

        let vrid = VrId::new(packet.vrid()).ok_or(AdvertError::ZeroVrId)?;
        let count = usize::from(packet.addr_count());
        if count == 0 {
            return Err(AdvertError::ZeroCount);
        }
        let (max_adver_int, auth) = match version {
            VrrpVersion::V3 => {
                let cs = packet.v3_max_adver_int();
                (Duration::from_millis(u64::from(cs) * 10), Auth::None)
            }
            VrrpVersion::V2 => {
                let auth = match packet.v2_auth_type() {
                    0 => Auth::None,
                    1 => {
                        let mut text = [0; V2_AUTH_DATA_LEN];
                        text.copy_from_slice(packet.v2_auth_data());
                        Auth::SimpleText(text)
                    }
                    2 => return Err(AdvertError::AuthAh),
                    other => return Err(AdvertError::UnknownAuth(other)),
                };
                (Duration::from_secs(u64::from(packet.v2_adver_int())), auth)
            }
        };
        if max_adver_int.is_zero() {
            return Err(AdvertError::ZeroInterval);
        }
        let addrs = match packet.family {
            Family::Ipv4 => VirtualAddrs::V4((0..count).map(|i| packet.ipv4_addr(i)).collect()),
            Family::Ipv6 => VirtualAddrs::V6((0..count).map(|i| packet.ipv6_addr(i)).collect()),
        };
        let repr = Self {
            version,
            vrid,
            priority: Priority(packet.priority()),
            max_adver_int,
            addrs,
            auth,
        };
        Ok((repr, form))
    }

    /// Bytes [`Self::emit`] writes: header, addresses, and the v2 authentication data.
    pub fn buffer_len(&self) -> usize {
        let trailer = match self.version {
            VrrpVersion::V2 => V2_AUTH_DATA_LEN,
            VrrpVersion::V3 => 0,
        };
        HEADER_LEN + self.addrs.len() * self.addrs.family().addr_len() + trailer
    }

    /// The address family the advert is for.
    pub const fn family(&self) -> Family {
        self.addrs.family()
    }

    /// Checks that the advert can be put on the wire: what [`Self::emit`] would refuse,
    /// apart from the buffer and context. Lets configuration be checked before any sending.
    pub fn validate(&self) -> Result<(), ReprError> {
        if self.vrid.0 == 0 {
            return Err(ReprError::ZeroVrId);
        }
        let count = self.addrs.len();
        if count == 0 || count > MAX_ADDRS {
            return Err(ReprError::AddrCount { got: count });
        }
        match self.version {
            VrrpVersion::V3 if self.auth != Auth::None => return Err(ReprError::AuthInV3),
            VrrpVersion::V2 if self.family() == Family::Ipv6 => return Err(ReprError::Ipv6InV2),
            _ => {}
        }
        self.interval_field().map(|_| ())
    }

    /// Writes the advert into `packet` (which must have the advert's family and at least
    /// [`Self::buffer_len`] bytes; bytes past that are left alone) and fills the checksum in
    /// `ctx`'s form, computed over exactly `buffer_len()` bytes. Never panics.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        ctx: &ChecksumContext,
    ) -> Result<(), ReprError> {
        self.validate()?;
        if self.family() != ctx.family() {
            return Err(ReprError::FamilyMismatch {
                repr: self.family(),
                context: ctx.family(),
            });
        }
        if packet.family != self.family() {
            return Err(ReprError::FamilyMismatch {
                repr: self.family(),
                context: packet.family,
            });
        }
        let need = self.buffer_len();
        let got = packet.buffer.as_ref().len();
        if got < need {
            return Err(ReprError::BufferTooSmall { need, got });
        }
        let interval = self.interval_field()?;
        // `validate` bounded the count to 1..=MAX_ADDRS, so it fits the 8-bit field.
        let count = u8::try_from(self.addrs.len()).map_err(|_| ReprError::AddrCount {
            got: self.addrs.len(),
        })?;

        // Emit into exactly the message's bytes, so the checksum covers nothing more.
        let mut msg = Packet::new_unchecked(&mut packet.buffer.as_mut()[..need], self.family());
        msg.set_version(self.version.number());
        msg.set_msg_type(TYPE_ADVERTISEMENT);
        msg.set_vrid(self.vrid.0);
        msg.set_priority(self.priority.0);
        msg.set_addr_count(count);
        match self.version {
            VrrpVersion::V3 => msg.set_v3_max_adver_int(interval),
            VrrpVersion::V2 => {
                let (auth_type, data) = match self.auth {
                    Auth::None => (0, [0; V2_AUTH_DATA_LEN]),
                    Auth::SimpleText(text) => (1, text),
                };
                msg.set_v2_auth_type(auth_type);
                // `interval_field` bounded v2 intervals to 1..=255 s.
                msg.set_v2_adver_int(u8::try_from(interval).unwrap_or(u8::MAX));
                msg.v2_auth_data_mut().copy_from_slice(&data);
            }
        }
        match &self.addrs {
            VirtualAddrs::V4(addrs) => {
                for (i, a) in addrs.iter().enumerate() {
                    msg.set_ipv4_addr(i, *a);
                }
            }
            VirtualAddrs::V6(addrs) => {
                for (i, a) in addrs.iter().enumerate() {
                    msg.set_ipv6_addr(i, a);
                }
            }
        }
        msg.fill_checksum(ctx);
        Ok(())
    }

    /// The interval as it goes in the header: centiseconds (v3) or seconds (v2).
    fn interval_field(&self) -> Result<u16, ReprError> {
        let d = self.max_adver_int;
        let bad = ReprError::Interval { got: d };
        let (unit_ns, max) = match self.version {
            VrrpVersion::V3 => (10_000_000, u128::from(V3_MAX_INTERVAL_CS)),
            VrrpVersion::V2 => (1_000_000_000, u128::from(u8::MAX)),
        };
        let ns = d.as_nanos();
        if !ns.is_multiple_of(unit_ns) {
            return Err(bad);
        }
        match u16::try_from(ns / unit_ns) {
            Ok(units) if units != 0 && u128::from(units) <= max => Ok(units),
            _ => Err(bad),
        }
    }
}

#[cfg(test)]
mod tests;
