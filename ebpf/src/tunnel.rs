//! Tunnel forwarding (LVS-TUN, katran's mode): the flow's IP packet is wrapped in an outer
//! IPv4 or IPv6 header (IPIP, RFC 2003 / RFC 2473) or an outer header and UDP (GUE variant 1)
//! to the real server's address, and sent where `bpf_fib_lookup` says: the kernel's routes
//! and neighbours pick the interface and the next hop's MAC, so real servers can sit any
//! number of routed hops away.
//!
//! A packet that would not fit the path's MTU once wrapped is answered with ICMP
//! fragmentation needed / `ICMPv6` packet too big carrying the inner MTU that fits, so the
//! client's path MTU discovery (RFC 1191, RFC 8201) shrinks its segments.

#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "lengths and offsets here are bounded by the frame (under 64 KiB; `l3` is 14 or \
              18), and `try_from` would add branches the verifier must follow on every frame"
)]

use aya_ebpf::{
    bindings::{
        BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS,
        BPF_FIB_LOOKUP_SRC, bpf_fib_lookup as FibLookup, xdp_action,
    },
    helpers::generated::{
        bpf_csum_diff, bpf_fib_lookup, bpf_ktime_get_coarse_ns, bpf_redirect, bpf_xdp_adjust_head,
        bpf_xdp_adjust_tail,
    },
    programs::XdpContext,
};
use vipflip_common::{
    FAMILY_IPV6, FIB_CACHE_NS, FibCacheEntry, FlowKey, Forward, ICMP_DEST_UNREACH,
    ICMP_FRAG_NEEDED, ICMPV6_PACKET_TOO_BIG, Outcome, REAL_READ_COPY, RealHead, TunnelEntry,
    addr_words, tunnel_entropy,
};

use crate::{
    maps::{FIB_CACHE, TUNNELS},
    parse::{ETH_HLEN, ETH_P_IP, ETH_P_IPV6, Frame, IPPROTO_ICMP, IPPROTO_ICMPV6, IPV6_HLEN},
    program::{Decision, NO_VRID},
};

/// `AF_INET` / `AF_INET6`, as `bpf_fib_lookup` wants the family.
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// IP protocol numbers of the outer header: IPv4 in IP (RFC 2003), IPv6 in IP (RFC 2473),
/// UDP (GUE).
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_UDP: u8 = 17;
/// The outer header's TTL / hop limit: a fresh hop count for the tunnel's own path.
const OUTER_TTL: u8 = 64;
/// IPv4 Don't Fragment (RFC 791): set on every outer header, so a link too small for the
/// wrapped packet is reported instead of fragmenting the tunnel.
const IPV4_DONT_FRAGMENT: u16 = 0x4000;
/// GUE's UDP source ports: the ephemeral range (RFC 6335), 14 bits of the flow's hash, so
/// the real server's NIC spreads flows over its queues (as RFC 8086 asks of GRE-in-UDP).
const GUE_SOURCE_PORT_BASE: u16 = 0xc000;
const GUE_SOURCE_PORT_MASK: u32 = 0x3fff;

/// Bytes of the offending packet quoted in a "too big" error, from its IP header on: the
/// header and the transport ports the client needs to match its socket (RFC 792 asks for
/// the header and 64 bits; RFC 4443 for as much as fits, which no stack needs). A multiple
/// of 4 for `bpf_csum_diff`.
const QUOTE_V4: usize = 64;
const QUOTE_V6: usize = 96;
const IPV4_HLEN: usize = 20;
const ICMP_HLEN: usize = 8;

/// Sends a flow's frame at `l3` to `real` (`REALS[index]`) through its tunnel. `icmp`: the frame is an ICMP
/// error about the flow (never answered with another error, RFC 1122 §3.2.2).
#[inline(always)]
pub fn encapsulate(
    ctx: &XdpContext,
    l3: usize,
    key: &FlowKey,
    index: u32,
    real: &RealHead,
    icmp: bool,
) -> Decision {
    let frame = Frame::new(ctx);
    // What the outer header copies from the inner one: its length and its traffic class.
    let Some(inner) = frame.read::<[u8; 8]>(l3) else {
        return Decision::pass(Outcome::PassMalformed);
    };
    let (inner_len, tclass, dont_fragment) = if key.family == FAMILY_IPV6 {
        let payload = usize::from(u16::from_be_bytes([inner[4], inner[5]]));
        (payload + IPV6_HLEN, (inner[0] << 4) | (inner[1] >> 4), true)
    } else {
        let fragment = u16::from_be_bytes([inner[6], inner[7]]);
        (
            usize::from(u16::from_be_bytes([inner[2], inner[3]])),
            inner[1],
            fragment & IPV4_DONT_FRAGMENT != 0,
        )
    };
    let tunnel = Tunnel {
        forward: if real.forward == Forward::Gue as u8 {
            Forward::Gue
        } else {
            Forward::Ipip
        },
        outer_v6: real.family == FAMILY_IPV6,
        inner_v6: key.family == FAMILY_IPV6,
        inner_len,
        tclass,
        entropy: tunnel_entropy(key),
    };
    let overhead = tunnel.forward.overhead(real.family);
    // The tunnel's addresses: the `TUNNELS` copy matching the `REALS` copy read.
    let copy = usize::from(real.flags & REAL_READ_COPY != 0);
    // SAFETY: an element of the array map, valid for the program's run, read in place.
    let Some(addrs) = TUNNELS
        .get_ptr(index)
        .and_then(|slot| unsafe { (*slot).copies.get(copy) })
    else {
        return dropped(Outcome::LbTunnelNoRoute);
    };
    let path = match route(ctx, index, real, addrs, &tunnel, inner_len + overhead) {
        Ok(path) => path,
        Err(Unrouted::TooBig { mtu }) => {
            if icmp || !dont_fragment {
                return dropped(Outcome::LbTunnelTooBigDropped);
            }
            return too_big(ctx, l3, key.family, mtu.saturating_sub(overhead));
        }
        Err(Unrouted::NoNeighbour) => return dropped(Outcome::LbTunnelNoNeighbour),
        Err(Unrouted::NoRoute) => return dropped(Outcome::LbTunnelNoRoute),
    };
    // Room for the outer headers, and no more than an untagged Ethernet header in front: the
    // FIB's interface is the one that sends it, and it takes plain frames.
    let delta = l3 as i32 - (ETH_HLEN + overhead) as i32;
    // SAFETY: a plain helper call on this program's context.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return dropped(Outcome::LbTunnelNoRoute);
    }
    if !write_outer(&Frame::new(ctx), &tunnel, path, real, addrs) {
        return Decision::pass(Outcome::PassMalformed);
    }
    let (action, tx) = if path.ifindex as usize == ctx.ingress_ifindex() {
        (xdp_action::XDP_TX, true)
    } else {
        // SAFETY: a plain helper call; flags 0 = egress.
        let ret = unsafe { bpf_redirect(path.ifindex, 0) };
        (u32::try_from(ret).unwrap_or(xdp_action::XDP_ABORTED), false)
    };
    Decision {
        action,
        outcome: match (icmp, tx) {
            (true, _) => Outcome::LbIcmpForward,
            (false, true) => Outcome::LbTunnelTx,
            (false, false) => Outcome::LbTunnelRedirect,
        },
        vrid_stat: NO_VRID,
    }
}

/// What the outer headers are made from, besides the real server's entry.
struct Tunnel {
    forward: Forward,
    outer_v6: bool,
    inner_v6: bool,
    /// The inner IP packet's length, from its header.
    inner_len: usize,
    /// The inner traffic class (DSCP and ECN), copied out (RFC 2983, RFC 6040's normal mode).
    tclass: u8,
    /// [`tunnel_entropy`] of the flow.
    entropy: u32,
}

/// Why `route` found no way to the real server.
enum Unrouted {
    /// The path's MTU (`mtu`) is smaller than the wrapped packet.
    TooBig { mtu: usize },
    /// The next hop has no neighbour entry.
    NoNeighbour,
    /// No route, or forwarding off on the ingress interface.
    NoRoute,
}

/// The path to `real` (`REALS[index]`): this CPU's `FIB_CACHE` entry while it is fresh and
/// for this generation, else what `bpf_fib_lookup` says now, kept for `FIB_CACHE_NS`. A
/// wrapped packet of `outer_len` bytes must fit the path's MTU.
///
/// A lookup per frame would cost more than the rest of the balancer's path together (see
/// `bench/results/lb.md`); kept per CPU, an entry needs no lock, and a route or neighbour
/// change reaches tunnelled traffic within `FIB_CACHE_NS`. The entry is returned in place:
/// the program's stack (512 bytes) has no room for copies.
#[inline(always)]
fn route(
    ctx: &XdpContext,
    index: u32,
    real: &RealHead,
    addrs: &TunnelEntry,
    tunnel: &Tunnel,
    outer_len: usize,
) -> Result<&'static FibCacheEntry, Unrouted> {
    let cache = FIB_CACHE.get_ptr_mut(index).ok_or(Unrouted::NoRoute)?;
    // SAFETY: a plain helper call.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    // SAFETY: this CPU's own element of the array, valid for the program's run; no other
    // writer races with us.
    let cached = unsafe { &mut *cache };
    if cached.generation != real.generation || cached.expires_ns <= now {
        // Stale until the lookups succeed: a failed one leaves no entry behind.
        cached.expires_ns = 0;
        look_up(ctx, addrs, tunnel, cached)?;
        cached.generation = real.generation;
        cached.expires_ns = now + FIB_CACHE_NS;
    }
    if outer_len > cached.mtu as usize {
        return Err(Unrouted::TooBig {
            mtu: cached.mtu as usize,
        });
    }
    Ok(cached)
}

/// Asks the FIB for the path to `real` into `entry`: the egress interface, both MACs and
/// the source it would use, then the path's MTU (a second lookup with the largest length,
/// which the kernel answers with "fragmentation needed" and the MTU).
#[inline(always)]
fn look_up(
    ctx: &XdpContext,
    real: &TunnelEntry,
    tunnel: &Tunnel,
    entry: &mut FibCacheEntry,
) -> Result<(), Unrouted> {
    // SAFETY: a plain-old-data struct the helper fills; all-zero is a valid start.
    let mut fib: FibLookup = unsafe { core::mem::zeroed() };
    fib_query(ctx, real, tunnel, 0, &mut fib);
    // SAFETY: `fib` is a valid, exclusively borrowed `bpf_fib_lookup` of the size passed.
    let ret = unsafe {
        bpf_fib_lookup(
            ctx.ctx.cast(),
            &raw mut fib,
            core::mem::size_of::<FibLookup>() as i32,
            BPF_FIB_LOOKUP_SRC,
        )
    };
    match u32::try_from(ret) {
        Ok(BPF_FIB_LKUP_RET_SUCCESS) => {}
        Ok(BPF_FIB_LKUP_RET_NO_NEIGH) => return Err(Unrouted::NoNeighbour),
        _ => return Err(Unrouted::NoRoute),
    }
    entry.ifindex = fib.ifindex;
    entry.dst_mac = fib.dmac;
    entry.src_mac = fib.smac;
    // SAFETY: written by the successful lookup, which was asked for the source.
    entry.source = address_bytes(unsafe { fib.__bindgen_anon_3.ipv6_src });
    fib_query(ctx, real, tunnel, u16::MAX, &mut fib);
    // SAFETY: as above.
    let ret = unsafe {
        bpf_fib_lookup(
            ctx.ctx.cast(),
            &raw mut fib,
            core::mem::size_of::<FibLookup>() as i32,
            0,
        )
    };
    entry.mtu = if u32::try_from(ret) == Ok(BPF_FIB_LKUP_RET_FRAG_NEEDED) {
        // SAFETY: the helper wrote `mtu_result` for this return value.
        u32::from(unsafe { fib.__bindgen_anon_1.mtu_result })
    } else {
        u32::from(u16::MAX)
    };
    Ok(())
}

/// Sets `fib` up for a lookup towards `real` from the ingress interface, for a packet of
/// `tot_len` bytes (what a previous lookup wrote is overwritten: it may have put the
/// gateway in the destination).
#[inline(always)]
fn fib_query(
    ctx: &XdpContext,
    real: &TunnelEntry,
    tunnel: &Tunnel,
    tot_len: u16,
    fib: &mut FibLookup,
) {
    fib.family = if tunnel.outer_v6 { AF_INET6 } else { AF_INET };
    fib.l4_protocol = if tunnel.forward == Forward::Gue {
        IPPROTO_UDP
    } else {
        0
    };
    fib.__bindgen_anon_1.tot_len = tot_len;
    fib.ifindex = ctx.ingress_ifindex() as u32;
    let dest = words(&real.addr);
    fib.__bindgen_anon_3.ipv6_src = [0; 4];
    if tunnel.outer_v6 {
        fib.__bindgen_anon_4.ipv6_dst = dest;
    } else {
        fib.__bindgen_anon_4.ipv6_dst = [dest[0], 0, 0, 0];
    }
}

/// Four address words back as the 16 bytes they are in memory.
#[inline(always)]
fn address_bytes(words: [u32; 4]) -> [u8; 16] {
    let [a, b, c, d] = words;
    let (a, b, c, d) = (
        a.to_ne_bytes(),
        b.to_ne_bytes(),
        c.to_ne_bytes(),
        d.to_ne_bytes(),
    );
    [
        a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1], d[2],
        d[3],
    ]
}

/// The Ethernet header from the FIB's answer, the outer IP header, and GUE's UDP header, in
/// front of the inner packet (the frame's head already moved to make room).
#[inline(always)]
fn write_outer(
    frame: &Frame,
    tunnel: &Tunnel,
    path: &FibCacheEntry,
    real: &RealHead,
    addrs: &TunnelEntry,
) -> bool {
    let ethertype = if tunnel.outer_v6 {
        ETH_P_IPV6
    } else {
        ETH_P_IP
    };
    if !write_ethernet(frame, &path.dst_mac, &path.src_mac, ethertype) {
        return false;
    }
    let gue = tunnel.forward == Forward::Gue;
    let protocol = match (gue, tunnel.inner_v6) {
        (true, _) => IPPROTO_UDP,
        (false, true) => IPPROTO_IPV6,
        (false, false) => IPPROTO_IPIP,
    };
    let udp_len = if gue { 8 } else { 0 };
    // The configured source (varied per flow), or the FIB's.
    let mut source = addrs.source;
    if real.source_bits == 0 && source == [0; 16] {
        source = path.source;
    } else {
        vary_source(&mut source, real.family, real.source_bits, tunnel.entropy);
    }
    let source = words(&source);
    let dest = words(&addrs.addr);
    let written = if tunnel.outer_v6 {
        write_ipv6(
            frame,
            tunnel,
            (tunnel.inner_len + udp_len) as u16,
            protocol,
            source,
            dest,
        )
    } else {
        write_ipv4(
            frame,
            tunnel.tclass,
            (IPV4_HLEN + udp_len + tunnel.inner_len) as u16,
            protocol,
            source[0],
            dest[0],
        )
    };
    if !written || !gue {
        return written;
    }
    let udp_at = ETH_HLEN
        + if tunnel.outer_v6 {
            IPV6_HLEN
        } else {
            IPV4_HLEN
        };
    // GUE variant 1: the source port carries the flow's entropy; the checksum is zero
    // (allowed for tunnels over IPv4, RFC 768, and over IPv6 by RFC 6935 / RFC 6936, which
    // Linux `fou` sockets accept).
    let source_port = GUE_SOURCE_PORT_BASE | (tunnel.entropy & GUE_SOURCE_PORT_MASK) as u16;
    let [sp0, sp1] = source_port.to_be_bytes();
    let [l0, l1] = ((tunnel.inner_len + 8) as u16).to_be_bytes();
    let header = [
        u32::from_ne_bytes([sp0, sp1, addrs.gue_port[0], addrs.gue_port[1]]),
        u32::from_ne_bytes([l0, l1, 0, 0]),
    ];
    let Some(at) = frame.mut_ptr_at::<[u32; 2]>(udp_at) else {
        return false;
    };
    // SAFETY: `mut_ptr_at` checked the 8 bytes are inside the frame.
    unsafe { at.write_unaligned(header) };
    true
}

#[inline(always)]
const fn dropped(outcome: Outcome) -> Decision {
    Decision {
        action: xdp_action::XDP_DROP,
        outcome,
        vrid_stat: NO_VRID,
    }
}

/// Puts `spread`'s low `bits` into the low bits of the address (its last 32 bits at most).
#[inline(always)]
fn vary_source(source: &mut [u8; 16], family: u8, bits: u8, spread: u32) {
    if bits == 0 {
        return;
    }
    let mask = if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    };
    let at = if family == FAMILY_IPV6 { 12 } else { 0 };
    let Some(last) = source.get_mut(at..at + 4) else {
        return;
    };
    let word = u32::from_be_bytes([last[0], last[1], last[2], last[3]]);
    let varied = ((word & !mask) | (spread & mask)).to_be_bytes();
    last.copy_from_slice(&varied);
}

/// The 16 address bytes as the four network-order words the FIB lookup takes.
#[inline(always)]
fn words(addr: &[u8; 16]) -> [u32; 4] {
    addr_words(*addr)
}

#[inline(always)]
fn write_ethernet(frame: &Frame, dst: &[u8; 6], src: &[u8; 6], ethertype: u16) -> bool {
    let Some(at) = frame.mut_ptr_at::<[u8; ETH_HLEN]>(0) else {
        return false;
    };
    let [t0, t1] = ethertype.to_be_bytes();
    let header = [
        dst[0], dst[1], dst[2], dst[3], dst[4], dst[5], src[0], src[1], src[2], src[3], src[4],
        src[5], t0, t1,
    ];
    // SAFETY: `mut_ptr_at` checked the 14 bytes are inside the frame.
    unsafe { at.write_unaligned(header) };
    true
}

/// The RFC 1071 sum of 32-bit words taken as native 16-bit halves, folded and inverted: the
/// checksum's two bytes in native order (the sum is byte-order independent).
#[inline(always)]
fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

#[inline(always)]
fn sum_words(words: &[u32]) -> u64 {
    let mut sum = 0u64;
    for w in words {
        sum += u64::from(w & 0xffff) + u64::from(w >> 16);
    }
    sum
}

/// The outer IPv4 header at the end of the Ethernet header: DF set, checksum filled.
#[inline(always)]
fn write_ipv4(frame: &Frame, tos: u8, total_len: u16, protocol: u8, src: u32, dst: u32) -> bool {
    let [l0, l1] = total_len.to_be_bytes();
    let [f0, f1] = IPV4_DONT_FRAGMENT.to_be_bytes();
    let mut header = [
        u32::from_ne_bytes([0x45, tos, l0, l1]),
        u32::from_ne_bytes([0, 0, f0, f1]),
        u32::from_ne_bytes([OUTER_TTL, protocol, 0, 0]),
        src,
        dst,
    ];
    let [c0, c1] = fold(sum_words(&header)).to_ne_bytes();
    header[2] = u32::from_ne_bytes([OUTER_TTL, protocol, c0, c1]);
    let Some(at) = frame.mut_ptr_at::<[u32; 5]>(ETH_HLEN) else {
        return false;
    };
    // SAFETY: `mut_ptr_at` checked the 20 bytes are inside the frame.
    unsafe { at.write_unaligned(header) };
    true
}

/// The outer IPv6 header at the end of the Ethernet header; the flow label carries the
/// flow's entropy (RFC 6438), so ECMP and RSS on the way spread tunnelled flows.
#[inline(always)]
fn write_ipv6(
    frame: &Frame,
    tunnel: &Tunnel,
    payload_len: u16,
    next_header: u8,
    src: [u32; 4],
    dst: [u32; 4],
) -> bool {
    let first = (6u32 << 28) | (u32::from(tunnel.tclass) << 20) | (tunnel.entropy & 0x000f_ffff);
    let [p0, p1] = payload_len.to_be_bytes();
    let header = [
        first.to_be(),
        u32::from_ne_bytes([p0, p1, next_header, OUTER_TTL]),
        src[0],
        src[1],
        src[2],
        src[3],
        dst[0],
        dst[1],
        dst[2],
        dst[3],
    ];
    let Some(at) = frame.mut_ptr_at::<[u32; 10]>(ETH_HLEN) else {
        return false;
    };
    // SAFETY: `mut_ptr_at` checked the 40 bytes are inside the frame.
    unsafe { at.write_unaligned(header) };
    true
}

/// Answers the client with ICMP fragmentation needed (IPv4, RFC 1191) or `ICMPv6` packet too
/// big (RFC 4443 §3.2) carrying `mtu`, from the VIP, sent back where the frame came from.
///
/// The frame is turned into the reply in place (katran's way): room for the new IP and ICMP
/// headers in front of the offending packet's IP header, which becomes the quote, and the
/// tail cut after the quote.
#[inline(always)]
fn too_big(ctx: &XdpContext, l3: usize, family: u8, mtu: usize) -> Decision {
    let frame = Frame::new(ctx);
    let v6 = family == FAMILY_IPV6;
    let (header_len, quote) = if v6 {
        (IPV6_HLEN + ICMP_HLEN, QUOTE_V6)
    } else {
        (IPV4_HLEN + ICMP_HLEN, QUOTE_V4)
    };
    // What the reply needs from the frame before it is moved: both MACs and both addresses.
    let (Some(macs), Some(inner)) = (frame.read::<[u8; 12]>(0), frame.read::<[u8; IPV6_HLEN]>(l3))
    else {
        return dropped(Outcome::LbTunnelTooBigDropped);
    };
    if !frame.covers(l3, quote) {
        return dropped(Outcome::LbTunnelTooBigDropped);
    }
    let (client, vip) = if v6 {
        let mut client = [0u8; 16];
        client.copy_from_slice(&inner[8..24]);
        let mut vip = [0u8; 16];
        vip.copy_from_slice(&inner[24..40]);
        (words(&client), words(&vip))
    } else {
        let w = |a: &[u8]| u32::from_ne_bytes([a[0], a[1], a[2], a[3]]);
        ([w(&inner[12..16]), 0, 0, 0], [w(&inner[16..20]), 0, 0, 0])
    };
    let delta = l3 as i32 - ETH_HLEN as i32 - header_len as i32;
    // SAFETY: plain helper calls on this program's context.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) } != 0 {
        return dropped(Outcome::LbTunnelTooBigDropped);
    }
    let frame = Frame::new(ctx);
    let keep = ETH_HLEN + header_len + quote;
    let cut = keep as i32 - (frame.end - frame.start) as i32;
    // SAFETY: as above; `cut` is not positive since the frame covered the quote.
    if cut > 0 || unsafe { bpf_xdp_adjust_tail(ctx.ctx, cut) } != 0 {
        return dropped(Outcome::LbTunnelTooBigDropped);
    }
    let frame = Frame::new(ctx);
    let ours = [macs[0], macs[1], macs[2], macs[3], macs[4], macs[5]];
    let theirs = [macs[6], macs[7], macs[8], macs[9], macs[10], macs[11]];
    let ethertype = if v6 { ETH_P_IPV6 } else { ETH_P_IP };
    if !write_ethernet(&frame, &theirs, &ours, ethertype) {
        return dropped(Outcome::LbTunnelTooBigDropped);
    }
    let mtu = mtu as u32;
    let written = if v6 {
        too_big_v6(&frame, vip, client, mtu)
    } else {
        too_big_v4(&frame, vip[0], client[0], mtu)
    };
    if !written {
        return dropped(Outcome::LbTunnelTooBigDropped);
    }
    Decision {
        action: xdp_action::XDP_TX,
        outcome: Outcome::LbTunnelTooBig,
        vrid_stat: NO_VRID,
    }
}

/// The IPv4 and ICMP headers of a fragmentation-needed reply, the quote already behind them.
#[inline(always)]
fn too_big_v4(frame: &Frame, vip: u32, client: u32, mtu: u32) -> bool {
    let total = (IPV4_HLEN + ICMP_HLEN + QUOTE_V4) as u16;
    let [l0, l1] = total.to_be_bytes();
    let [f0, f1] = IPV4_DONT_FRAGMENT.to_be_bytes();
    let mut ip = [
        u32::from_ne_bytes([0x45, 0, l0, l1]),
        u32::from_ne_bytes([0, 0, f0, f1]),
        u32::from_ne_bytes([OUTER_TTL, IPPROTO_ICMP, 0, 0]),
        vip,
        client,
    ];
    let [c0, c1] = fold(sum_words(&ip)).to_ne_bytes();
    ip[2] = u32::from_ne_bytes([OUTER_TTL, IPPROTO_ICMP, c0, c1]);
    let [m0, m1] = (mtu.min(0xffff) as u16).to_be_bytes();
    let icmp_at = ETH_HLEN + IPV4_HLEN;
    let (Some(ip_at), Some(icmp)) = (
        frame.mut_ptr_at::<[u32; 5]>(ETH_HLEN),
        frame.mut_ptr_at::<[u32; 2]>(icmp_at),
    ) else {
        return false;
    };
    // SAFETY: both checked inside the frame by `mut_ptr_at`.
    unsafe {
        ip_at.write_unaligned(ip);
        icmp.write_unaligned([
            u32::from_ne_bytes([ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 0, 0]),
            u32::from_ne_bytes([0, 0, m0, m1]),
        ]);
    }
    let Some(message) = frame.mut_ptr_at::<[u8; ICMP_HLEN + QUOTE_V4]>(icmp_at) else {
        return false;
    };
    // SAFETY: the ICMP message and its quote, checked inside the frame just above.
    let sum = unsafe {
        bpf_csum_diff(
            core::ptr::null_mut(),
            0,
            message.cast(),
            (ICMP_HLEN + QUOTE_V4) as u32,
            0,
        )
    };
    let [c0, c1] = fold(u64::try_from(sum).unwrap_or(0)).to_ne_bytes();
    let Some(checksum) = frame.mut_ptr_at::<[u8; 2]>(icmp_at + 2) else {
        return false;
    };
    // SAFETY: checked inside the frame.
    unsafe { checksum.write_unaligned([c0, c1]) };
    true
}

/// The IPv6 and `ICMPv6` headers of a packet-too-big reply, the quote already behind them.
#[inline(always)]
fn too_big_v6(frame: &Frame, vip: [u32; 4], client: [u32; 4], mtu: u32) -> bool {
    let length = (ICMP_HLEN + QUOTE_V6) as u16;
    let [l0, l1] = length.to_be_bytes();
    let ip = [
        (6u32 << 28).to_be(),
        u32::from_ne_bytes([l0, l1, IPPROTO_ICMPV6, OUTER_TTL]),
        vip[0],
        vip[1],
        vip[2],
        vip[3],
        client[0],
        client[1],
        client[2],
        client[3],
    ];
    let icmp_at = ETH_HLEN + IPV6_HLEN;
    let (Some(ip_at), Some(icmp)) = (
        frame.mut_ptr_at::<[u32; 10]>(ETH_HLEN),
        frame.mut_ptr_at::<[u32; 2]>(icmp_at),
    ) else {
        return false;
    };
    // SAFETY: both checked inside the frame by `mut_ptr_at`.
    unsafe {
        ip_at.write_unaligned(ip);
        icmp.write_unaligned([
            u32::from_ne_bytes([ICMPV6_PACKET_TOO_BIG, 0, 0, 0]),
            mtu.to_be(),
        ]);
    }
    let Some(message) = frame.mut_ptr_at::<[u8; ICMP_HLEN + QUOTE_V6]>(icmp_at) else {
        return false;
    };
    // The pseudo-header (RFC 8200 §8.1): both addresses, the upper-layer length and the
    // next header, then the message.
    let pseudo = sum_words(&ip[2..10])
        + u64::from(u16::from_ne_bytes([l0, l1]))
        + u64::from(u16::from_ne_bytes([0, IPPROTO_ICMPV6]));
    // SAFETY: the message and its quote, checked inside the frame just above.
    let sum = unsafe {
        bpf_csum_diff(
            core::ptr::null_mut(),
            0,
            message.cast(),
            (ICMP_HLEN + QUOTE_V6) as u32,
            0,
        )
    };
    let [c0, c1] = fold(pseudo + u64::try_from(sum).unwrap_or(0)).to_ne_bytes();
    let Some(checksum) = frame.mut_ptr_at::<[u8; 2]>(icmp_at + 2) else {
        return false;
    };
    // SAFETY: checked inside the frame.
    unsafe { checksum.write_unaligned([c0, c1]) };
    true
}
