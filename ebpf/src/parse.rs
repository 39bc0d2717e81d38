//! Bounds-checked reads from the frame. Every read goes through [`Frame::ptr_at`], which checks
//! the end of the packet first: the verifier demands it, and no length field is ever trusted
//! without re-checking `data_end`.

use aya_ebpf::programs::XdpContext;

/// The packet bounds of one frame.
#[derive(Clone, Copy)]
pub struct Frame {
    pub start: usize,
    pub end: usize,
}

impl Frame {
    #[inline(always)]
    pub fn new(ctx: &XdpContext) -> Self {
        Self {
            start: ctx.data(),
            end: ctx.data_end(),
        }
    }

    /// A pointer to a `T` at `offset`, or `None` when the frame is too short for it.
    #[inline(always)]
    pub fn ptr_at<T>(&self, offset: usize) -> Option<*const T> {
        let at = self.start + offset;
        if at + core::mem::size_of::<T>() > self.end {
            return None;
        }
        Some(at as *const T)
    }

    #[inline(always)]
    pub fn mut_ptr_at<T>(&self, offset: usize) -> Option<*mut T> {
        self.ptr_at::<T>(offset).map(<*const T>::cast_mut)
    }

    /// Reads a `T` at `offset` (unaligned: frames carry no alignment promise).
    #[inline(always)]
    pub fn read<T: Copy>(&self, offset: usize) -> Option<T> {
        // SAFETY: `ptr_at` checked that `size_of::<T>()` bytes at `offset` are in the frame.
        self.ptr_at::<T>(offset)
            .map(|p| unsafe { p.read_unaligned() })
    }

    /// True when the frame holds at least `offset + len` bytes.
    #[inline(always)]
    pub fn covers(&self, offset: usize, len: usize) -> bool {
        self.start + offset + len <= self.end
    }
}

/// Ethernet II header length.
pub const ETH_HLEN: usize = 14;
/// An 802.1Q / 802.1ad tag.
pub const VLAN_HLEN: usize = 4;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
/// IPv4 header without options.
pub const IPV4_MIN_HLEN: usize = 20;
/// IPv6 fixed header (RFC 8200 §3).
pub const IPV6_HLEN: usize = 40;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_ICMPV6: u8 = 58;

/// The Ethernet type after at most one VLAN tag, and where the L3 header starts.
#[inline(always)]
pub fn ethernet(frame: &Frame) -> Option<(u16, usize)> {
    let ethertype = u16::from_be(frame.read::<u16>(12)?);
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        let inner = u16::from_be(frame.read::<u16>(ETH_HLEN + 2)?);
        return Some((inner, ETH_HLEN + VLAN_HLEN));
    }
    Some((ethertype, ETH_HLEN))
}

/// IPv6 next-header values that are extension headers (RFC 8200 §4, IANA registry), which
/// the program does not walk: such packets are passed untouched.
#[inline(always)]
pub fn is_ipv6_extension_header(next_header: u8) -> bool {
    matches!(
        next_header,
        0 | 43 | 44 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}
