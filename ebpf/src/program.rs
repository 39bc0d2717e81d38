//! The decision for one frame: [`decide`] returns a [`Decision`]; the entry point counts it.

use aya_ebpf::{bindings::xdp_action, helpers::bpf_redirect, macros::xdp, programs::XdpContext};
use aya_log_ebpf::error;
use vipflip_common::{
    FAMILY_IPV4, FAMILY_IPV6, IPPROTO_VRRP, Outcome, PeerKey, VERDICT_BASE, VRRP_HEADER_LEN,
    VRRP_TTL, VRRP_TYPE_ADVERTISEMENT, VRRP_V2_AUTH_LEN, VipAction, VipEntry, VipKey, VridKey,
    vip_filter_bit, vrid_stats_index,
};

use crate::{
    maps::{PEERS, STATS, VIP_FILTER, VIPS, VRID_STATS, VRIDS},
    parse::{
        ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, Frame, IPPROTO_ICMPV6, IPV4_MIN_HLEN, IPV6_HLEN, ethernet,
        is_ipv6_extension_header,
    },
};

/// `Decision::vrid_stat` when the frame is not a VRRP advert with a readable VRID.
const NO_VRID: u32 = u32::MAX;

/// What happens to one frame, and why.
struct Decision {
    action: u32,
    outcome: Outcome,
    /// Index into `VRID_STATS`, or [`NO_VRID`].
    vrid_stat: u32,
}

impl Decision {
    #[inline(always)]
    const fn pass(outcome: Outcome) -> Self {
        Self {
            action: xdp_action::XDP_PASS,
            outcome,
            vrid_stat: NO_VRID,
        }
    }
}

/// The program's one exit point: every frame's outcome and verdict are counted here.
#[xdp]
#[expect(
    clippy::needless_pass_by_value,
    reason = "the #[xdp] entry signature is fixed"
)]
pub fn vipflip(ctx: XdpContext) -> u32 {
    let decision = decide(&ctx);
    if let Some(stats) = STATS.get_ptr_mut(0) {
        let counters = stats.cast::<u64>();
        // SAFETY: `Stats` is `repr(C)` of `STATS_COUNTERS` u64s (asserted in vipflip-common);
        // both indices are below that: an `Outcome` discriminant, and `VERDICT_BASE` plus an
        // XDP action (0..=4). The slot is this CPU's own, so no other writer races with us.
        unsafe {
            *counters.add(decision.outcome as usize) += 1;
            if decision.action <= xdp_action::XDP_REDIRECT {
                *counters.add((VERDICT_BASE + decision.action) as usize) += 1;
            }
        }
    }
    if decision.vrid_stat != NO_VRID
        && let Some(per_vrid) = VRID_STATS.get_ptr_mut(decision.vrid_stat)
    {
        // SAFETY: a valid pointer into this CPU's slot, returned by the map lookup.
        unsafe {
            if decision.outcome == Outcome::VrrpAccepted {
                (*per_vrid).accepted += 1;
            } else {
                (*per_vrid).dropped += 1;
            }
        }
    }
    decision.action
}

#[inline(always)]
fn decide(ctx: &XdpContext) -> Decision {
    let frame = Frame::new(ctx);
    let Some((ethertype, l3)) = ethernet(&frame) else {
        return Decision::pass(Outcome::PassMalformed);
    };
    match ethertype {
        ETH_P_IP => ipv4(ctx, &frame, l3),
        ETH_P_IPV6 => ipv6(ctx, &frame, l3),
        // ARP requests and replies: the kernel answers them (or not: the agent arranges
        // arp_ignore for VIPs it does not own); never ours to judge here.
        ETH_P_ARP => Decision::pass(Outcome::PassArp),
        _ => Decision::pass(Outcome::PassOther),
    }
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, frame: &Frame, l3: usize) -> Decision {
    // The fixed header is read as one block: one bounds check of constant size, which the
    // verifier can follow (separate reads after a variable-length check get merged by LLVM
    // into checks the verifier cannot prove).
    let Some(header) = frame.read::<[u8; IPV4_MIN_HLEN]>(l3) else {
        return Decision::pass(Outcome::PassMalformed);
    };
    let header_len = usize::from(header[0] & 0x0f) * 4;
    if header[0] >> 4 != 4 || header_len < IPV4_MIN_HLEN {
        return Decision::pass(Outcome::PassMalformed);
    }
    let (ttl, protocol) = (header[8], header[9]);
    let src = [header[12], header[13], header[14], header[15]];
    let dst = [header[16], header[17], header[18], header[19]];
    if protocol == IPPROTO_VRRP {
        let mut src16 = [0u8; 16];
        src16[..4].copy_from_slice(&src);
        let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        return vrrp(
            frame,
            l3 + header_len,
            total_len.saturating_sub(header_len),
            ttl,
            FAMILY_IPV4,
            src16,
        );
    }
    vip(ctx, frame, VipKey::ipv4(dst))
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, frame: &Frame, l3: usize) -> Decision {
    let Some(header) = frame.read::<[u8; IPV6_HLEN]>(l3) else {
        return Decision::pass(Outcome::PassMalformed);
    };
    if header[0] >> 4 != 6 {
        return Decision::pass(Outcome::PassMalformed);
    }
    let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let (next_header, hop_limit) = (header[6], header[7]);
    let mut src = [0u8; 16];
    src.copy_from_slice(&header[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&header[24..40]);
    let l4 = l3 + IPV6_HLEN;
    if next_header == IPPROTO_VRRP {
        return vrrp(frame, l4, payload_len, hop_limit, FAMILY_IPV6, src);
    }
    if is_ipv6_extension_header(next_header) {
        return Decision::pass(Outcome::PassIpv6ExtHeader);
    }
    if next_header == IPPROTO_ICMPV6 {
        // Router/neighbour solicitation and advertisement, and redirect (RFC 4861 §4):
        // ND must keep working even for VIPs we drop (RFC 5798 §6.4.2: a backup must not
        // accept packets for the VIPs, but the kernel still answers ND for its own addresses).
        if let Some(icmp_type) = frame.read::<u8>(l4)
            && (133..=137).contains(&icmp_type)
        {
            return Decision::pass(Outcome::PassNeighbour);
        }
    }
    vip(ctx, frame, VipKey::ipv6(dst))
}

/// Validates a VRRP advert (RFC 5798 §5, RFC 3768 §5) before the kernel stack sees it.
///
/// Checksum verification stays in userspace: it needs the pseudo-header form in use (RFC 5798
/// or RFC 9568 for v3/IPv4), costs a pass over the whole message, and a forged advert with a
/// good checksum is no harder to make than one without; the agent verifies it on receipt.
#[inline(always)]
fn vrrp(
    frame: &Frame,
    l4: usize,
    payload_len: usize,
    ttl: u8,
    family: u8,
    src: [u8; 16],
) -> Decision {
    let Some(header) = frame.read::<[u8; VRRP_HEADER_LEN]>(l4) else {
        return vrrp_verdict(Outcome::DropTruncated, NO_VRID);
    };
    if payload_len < VRRP_HEADER_LEN {
        return vrrp_verdict(Outcome::DropTruncated, NO_VRID);
    }
    let (version_type, vrid, count) = (header[0], header[1], header[3]);
    let interval = u16::from_be_bytes([header[4], header[5]]);
    let stat = vrid_stats_index(family, vrid);
    // RFC 5798 §5.1.1.3: a receiver MUST discard adverts whose TTL / hop limit is not 255,
    // so only on-link routers can take part in the election.
    if ttl != VRRP_TTL {
        return vrrp_verdict(Outcome::DropBadTtl, stat);
    }
    let version = version_type >> 4;
    // VRRPv2 is IPv4-only (RFC 3768); v3 runs on both families (RFC 5798 §5.2.1).
    if !(version == 3 || (version == 2 && family == FAMILY_IPV4)) {
        return vrrp_verdict(Outcome::DropBadVersion, stat);
    }
    if version_type & 0x0f != VRRP_TYPE_ADVERTISEMENT {
        return vrrp_verdict(Outcome::DropBadType, stat);
    }
    // RFC 9568 §5.2.5 / §5.2.7: count and interval of 0 are meaningless; discard. In v2 the
    // second byte of that word is Adver Int in seconds (RFC 3768 §5.3.7), in v3 the low 12
    // bits of the word are centiseconds.
    if count == 0 {
        return vrrp_verdict(Outcome::DropZeroCount, stat);
    }
    let interval = if version == 2 {
        interval & 0x00ff
    } else {
        interval & 0x0fff
    };
    if interval == 0 {
        return vrrp_verdict(Outcome::DropZeroInterval, stat);
    }
    let addr_len = if family == FAMILY_IPV4 { 4 } else { 16 };
    let auth_len = if version == 2 { VRRP_V2_AUTH_LEN } else { 0 };
    let needed = VRRP_HEADER_LEN + usize::from(count) * addr_len + auth_len;
    // Both the IP length field and the frame itself must cover every announced address.
    if payload_len < needed || !frame.covers(l4, needed) {
        return vrrp_verdict(Outcome::DropTruncated, stat);
    }
    let key = VridKey::new(family, vrid);
    // SAFETY: the value is read once, by copy, right away; a concurrent agent update can at
    // worst give us the old or the new (both valid) entry.
    let Some(entry) = (unsafe { VRIDS.get(key) }).copied() else {
        return vrrp_verdict(Outcome::DropUnknownVrid, stat);
    };
    if entry.enforce_allow_list != 0 {
        let peer = PeerKey {
            family,
            vrid,
            _pad: [0; 2],
            addr: src,
        };
        if PEERS.get_ptr(peer).is_none() {
            return vrrp_verdict(Outcome::DropPeerNotAllowed, stat);
        }
    }
    vrrp_verdict(Outcome::VrrpAccepted, stat)
}

#[inline(always)]
fn vrrp_verdict(outcome: Outcome, vrid_stat: u32) -> Decision {
    let action = if matches!(outcome, Outcome::VrrpAccepted) {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    };
    Decision {
        action,
        outcome,
        vrid_stat,
    }
}

/// Traffic to a (possible) virtual IP: what the agent wrote in `VIPS` decides.
#[inline(always)]
fn vip(ctx: &XdpContext, frame: &Frame, key: VipKey) -> Decision {
    // The prefilter: one inlined array read spares non-VIP traffic the hash lookup.
    let bit = vip_filter_bit(&key);
    let word = VIP_FILTER.get(bit / 64).copied().unwrap_or(0);
    if word & (1 << (bit % 64)) == 0 {
        return Decision::pass(Outcome::PassOther);
    }
    // SAFETY: copied out at once; see `vrrp`.
    let Some(entry) = (unsafe { VIPS.get(key) }).copied() else {
        return Decision::pass(Outcome::PassOther);
    };
    match VipAction::from_u8(entry.action) {
        Some(VipAction::Local) => Decision::pass(Outcome::VipLocal),
        Some(VipAction::Drop) => Decision {
            action: xdp_action::XDP_DROP,
            outcome: Outcome::VipDrop,
            vrid_stat: NO_VRID,
        },
        Some(VipAction::Forward) if entry.ifindex != 0 => forward(ctx, frame, &entry),
        Some(VipAction::Forward) | None => {
            // An entry the agent should never write: say so (rare by construction: it takes an
            // agent bug), and let the kernel have the frame.
            error!(
                ctx,
                "VIPS entry with action {} ifindex {} is invalid", entry.action, entry.ifindex
            );
            Decision::pass(Outcome::VipBadEntry)
        }
    }
}

/// The on-wire forward to the current owner: rewrite both MACs, then `XDP_TX` back out of the
/// ingress interface or `bpf_redirect` to another one. The IP header is left untouched.
#[inline(always)]
fn forward(ctx: &XdpContext, frame: &Frame, entry: &VipEntry) -> Decision {
    let Some(eth) = frame.mut_ptr_at::<[u8; 12]>(0) else {
        return Decision::pass(Outcome::PassMalformed);
    };
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&entry.dst_mac);
    macs[6..].copy_from_slice(&entry.src_mac);
    // SAFETY: `mut_ptr_at` checked the 12 bytes are inside the frame.
    unsafe { eth.write_unaligned(macs) };
    if entry.ifindex as usize == ctx.ingress_ifindex() {
        return Decision {
            action: xdp_action::XDP_TX,
            outcome: Outcome::VipForwardTx,
            vrid_stat: NO_VRID,
        };
    }
    // SAFETY: a plain helper call; flags 0 = egress.
    let ret = unsafe { bpf_redirect(entry.ifindex, 0) };
    // The helper returns XDP_REDIRECT, or XDP_ABORTED for flags it rejects (none here).
    let action = u32::try_from(ret).unwrap_or(xdp_action::XDP_ABORTED);
    Decision {
        action,
        outcome: Outcome::VipForwardRedirect,
        vrid_stat: NO_VRID,
    }
}

/// A program that passes every frame. Attached to the far end of a veth whose near end
/// forwards with `XDP_TX` / redirect (the kernel only delivers those on veth when the peer runs
/// XDP too), and the baseline the benchmark compares every path with.
#[xdp]
pub fn pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}
