//! The real server's side of a tunnel, for kernels without the `ipip` and `fou` modules
//! (katran ships the same for its real servers): frames that carry an IP packet in IP
//! (protocol 4 or 41) or in GUE variant 1 (UDP to a port in `DECAP_PORTS`) lose their outer
//! headers here and go up the stack as the inner packet, as if they had arrived so; the
//! inner packet is to a VIP on `lo`. Everything else passes untouched.
//!
//! The program trusts that frames reaching this interface are for this host (a real server
//! routes nothing): it does not check the outer destination.

use aya_ebpf::{
    bindings::xdp_action, helpers::generated::bpf_xdp_adjust_head, macros::xdp,
    programs::XdpContext,
};

use crate::{
    maps::{DECAP_PORTS, DECAP_STATS},
    parse::{ETH_HLEN, ETH_P_IP, ETH_P_IPV6, Frame, IPV4_MIN_HLEN, IPV6_HLEN},
};

const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_UDP: u8 = 17;
const UDP_HLEN: usize = 8;
/// IPv4 More Fragments and fragment offset: a fragment's payload is not a whole packet.
const IPV4_FRAGMENT: u16 = 0x3fff;

/// Which counter of `DecapStats` a frame adds to.
#[derive(Clone, Copy)]
enum Counted {
    Ipip = 0,
    Gue = 1,
    Passed = 2,
}

/// Unwraps a tunnelled frame, or passes it as it is.
#[xdp]
#[expect(
    clippy::needless_pass_by_value,
    reason = "the #[xdp] entry signature is fixed"
)]
pub fn decap(ctx: XdpContext) -> u32 {
    let counted = unwrap(&ctx);
    if let Some(stats) = DECAP_STATS.get_ptr_mut(0) {
        // SAFETY: `DecapStats` is `repr(C)` of three u64s; the index is below 3. The slot is
        // this CPU's own, so no other writer races with us.
        unsafe { *stats.cast::<u64>().add(counted as usize) += 1 };
    }
    xdp_action::XDP_PASS
}

#[inline(always)]
fn unwrap(ctx: &XdpContext) -> Counted {
    let Some((strip, inner_type, counted)) = outer(&Frame::new(ctx)) else {
        return Counted::Passed;
    };
    let Some(macs) = Frame::new(ctx).read::<[u8; 12]>(0) else {
        return Counted::Passed;
    };
    // SAFETY: a plain helper call on this program's context; `strip` is a small constant.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, strip) } != 0 {
        return Counted::Passed;
    }
    let frame = Frame::new(ctx);
    let Some(eth) = frame.mut_ptr_at::<[u8; ETH_HLEN]>(0) else {
        return Counted::Passed;
    };
    let [t0, t1] = inner_type.to_be_bytes();
    let header = [
        macs[0], macs[1], macs[2], macs[3], macs[4], macs[5], macs[6], macs[7], macs[8], macs[9],
        macs[10], macs[11], t0, t1,
    ];
    // SAFETY: `mut_ptr_at` checked the 14 bytes are inside the frame.
    unsafe { eth.write_unaligned(header) };
    counted
}

/// The outer headers of an untagged tunnelled frame: how many bytes to strip after the
/// Ethernet header, the inner packet's Ethernet type, and which tunnel it was.
#[inline(always)]
fn outer(frame: &Frame) -> Option<(i32, u16, Counted)> {
    let ethertype = u16::from_be(frame.read::<u16>(12)?);
    let (header_len, protocol) = match ethertype {
        ETH_P_IP => {
            let h = frame.read::<[u8; IPV4_MIN_HLEN]>(ETH_HLEN)?;
            let fragment = u16::from_be_bytes([h[6], h[7]]);
            if h[0] != 0x45 || fragment & IPV4_FRAGMENT != 0 {
                return None;
            }
            (IPV4_MIN_HLEN, h[9])
        }
        ETH_P_IPV6 => (IPV6_HLEN, frame.read::<[u8; 8]>(ETH_HLEN)?[6]),
        _ => return None,
    };
    let (strip, counted) = match protocol {
        IPPROTO_IPIP | IPPROTO_IPV6 => (header_len, Counted::Ipip),
        IPPROTO_UDP => {
            let udp = frame.read::<[u8; UDP_HLEN]>(ETH_HLEN + header_len)?;
            // SAFETY: the key is read by the helper only; the value is not used.
            unsafe { DECAP_PORTS.get([udp[2], udp[3]]) }?;
            (header_len + UDP_HLEN, Counted::Gue)
        }
        _ => return None,
    };
    let version = frame.read::<u8>(ETH_HLEN + strip)? >> 4;
    let inner_type = match (version, protocol) {
        (4, IPPROTO_IPIP | IPPROTO_UDP) => ETH_P_IP,
        (6, IPPROTO_IPV6 | IPPROTO_UDP) => ETH_P_IPV6,
        _ => return None,
    };
    Some((i32::try_from(strip).ok()?, inner_type, counted))
}
