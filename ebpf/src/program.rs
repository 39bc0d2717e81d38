//! The decision for one frame: [`decide`] returns a [`Decision`]; the entry point counts it.

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_ktime_get_coarse_ns, bpf_redirect},
    macros::xdp,
    programs::XdpContext,
};
use aya_log_ebpf::error;
use vipflip_common::{
    FAMILY_IPV4, FAMILY_IPV6, FLOW_BUDGET_WINDOW_NS, FlowEntry, FlowKey, Forward,
    ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMPV6_PACKET_TOO_BIG, IPPROTO_TCP, IPPROTO_UDP,
    IPPROTO_VRRP, LB_TABLE_SIZE, Outcome, PeerKey, REAL_ALIVE, REAL_READ_COPY, RealHead, Scheduler,
    ServiceEntry, ServiceKey, VERDICT_BASE, VIP_SERVICES, VRRP_HEADER_LEN, VRRP_TTL,
    VRRP_TYPE_ADVERTISEMENT, VRRP_V2_AUTH_LEN, VipAction, VipEntry, VipKey, VridKey, addr_words,
    flow_hash, ipv4_words, vip_filter_bit, vrid_stats_index,
};

use crate::{
    maps::{
        FLOW_BUDGET, FLOWS, LB_CURSORS, LB_TABLES, PEERS, REALS, SERVICES, STATS, VIP_FILTER, VIPS,
        VRID_STATS, VRIDS,
    },
    parse::{
        ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, Frame, IPPROTO_ICMP, IPPROTO_ICMPV6, IPV4_MIN_HLEN,
        IPV6_HLEN, ethernet, is_ipv6_extension_header,
    },
    tunnel,
};

/// `Decision::vrid_stat` when the frame is not a VRRP advert with a readable VRID.
pub(crate) const NO_VRID: u32 = u32::MAX;

/// What happens to one frame, and why.
pub(crate) struct Decision {
    pub(crate) action: u32,
    pub(crate) outcome: Outcome,
    /// Index into `VRID_STATS`, or [`NO_VRID`].
    pub(crate) vrid_stat: u32,
}

impl Decision {
    #[inline(always)]
    pub(crate) const fn pass(outcome: Outcome) -> Self {
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
        let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        return vrrp(
            frame,
            l3 + header_len,
            total_len.saturating_sub(header_len),
            ttl,
            FAMILY_IPV4,
            ipv4_words(src),
        );
    }
    vip(ctx, frame, l3, VipKey::ipv4(dst))
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
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&header[24..40]);
    let l4 = l3 + IPV6_HLEN;
    if next_header == IPPROTO_VRRP {
        let mut src = [0u8; 16];
        src.copy_from_slice(&header[8..24]);
        return vrrp(
            frame,
            l4,
            payload_len,
            hop_limit,
            FAMILY_IPV6,
            addr_words(src),
        );
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
    vip(ctx, frame, l3, VipKey::ipv6(dst))
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
    src: [u32; 4],
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
        let peer = PeerKey::from_words(family, vrid, src);
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
fn vip(ctx: &XdpContext, frame: &Frame, l3: usize, key: VipKey) -> Decision {
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
        // Only the master balances: a backup's services wait in `SERVICES` for its turn.
        Some(VipAction::Local) if entry.flags & VIP_SERVICES != 0 => local(ctx, frame, l3, &key),
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
    let Some((action, tx)) = send(ctx, frame, entry.ifindex, &entry.dst_mac, &entry.src_mac) else {
        return Decision::pass(Outcome::PassMalformed);
    };
    Decision {
        action,
        outcome: if tx {
            Outcome::VipForwardTx
        } else {
            Outcome::VipForwardRedirect
        },
        vrid_stat: NO_VRID,
    }
}

/// Rewrites both MACs and sends the frame on `ifindex`: `XDP_TX` when that is the ingress
/// interface, `bpf_redirect` otherwise. Returns the verdict and whether it is `XDP_TX`, or
/// `None` when the frame has no Ethernet header to rewrite.
#[inline(always)]
fn send(
    ctx: &XdpContext,
    frame: &Frame,
    ifindex: u32,
    dst_mac: &[u8; 6],
    src_mac: &[u8; 6],
) -> Option<(u32, bool)> {
    let eth = frame.mut_ptr_at::<[u8; 12]>(0)?;
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(dst_mac);
    macs[6..].copy_from_slice(src_mac);
    // SAFETY: `mut_ptr_at` checked the 12 bytes are inside the frame.
    unsafe { eth.write_unaligned(macs) };
    if ifindex as usize == ctx.ingress_ifindex() {
        return Some((xdp_action::XDP_TX, true));
    }
    // SAFETY: a plain helper call; flags 0 = egress.
    let ret = unsafe { bpf_redirect(ifindex, 0) };
    // The helper returns XDP_REDIRECT, or XDP_ABORTED for flags it rejects (none here).
    Some((u32::try_from(ret).unwrap_or(xdp_action::XDP_ABORTED), false))
}

/// IPv4 flags/fragment offset word (RFC 791 §3.1): More Fragments, and the offset.
const IPV4_MORE_FRAGMENTS: u16 = 0x2000;
const IPV4_FRAGMENT_OFFSET: u16 = 0x1fff;

/// What the load balancer makes of a frame to a VIP this host owns.
enum Lb {
    /// No service covers it (or it is not TCP/UDP/PMTU ICMP): the local stack takes it.
    NotOurs,
    /// A service covers it, but the balancer cannot place it (IPv4 options or fragment,
    /// truncated L4 header): the local stack takes it.
    Unsupported,
    /// A flow of `service`; `icmp`: an ICMP error about that flow, sent where the flow goes;
    /// `syn`: a TCP SYN opening a connection.
    Flow {
        service: ServiceEntry,
        key: FlowKey,
        icmp: bool,
        syn: bool,
    },
}

/// TCP header flags (RFC 9293 §3.1), byte 13 of the header.
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// Whether the TCP header at `l4` opens a connection: SYN without ACK.
#[inline(always)]
fn is_syn(frame: &Frame, protocol: u8, l4: usize) -> bool {
    protocol == IPPROTO_TCP
        && frame
            .read::<[u8; 14]>(l4)
            .is_some_and(|t| t[13] & (TCP_SYN | TCP_ACK) == TCP_SYN)
}

/// Traffic to a VIP this host owns: balanced when a service covers it, else delivered.
///
/// Direct routing: the frame goes to the real server with only its Ethernet addresses
/// changed; the real server, which has the VIP on its loopback, answers the client itself.
#[inline(always)]
fn local(ctx: &XdpContext, frame: &Frame, l3: usize, vip: &VipKey) -> Decision {
    let lb = if vip.family == FAMILY_IPV4 {
        lb_ipv4(frame, l3, vip)
    } else {
        lb_ipv6(frame, l3, vip)
    };
    match lb {
        Lb::NotOurs => Decision::pass(Outcome::VipLocal),
        Lb::Unsupported => Decision::pass(Outcome::LbPassUnsupported),
        Lb::Flow {
            service,
            key,
            icmp,
            syn,
        } => balance(ctx, frame, l3, &service, &key, icmp, syn),
    }
}

/// IPv4 to an owned VIP: a TCP/UDP flow, or an ICMP "fragmentation needed" about one.
#[inline(always)]
fn lb_ipv4(frame: &Frame, l3: usize, vip: &VipKey) -> Lb {
    // Read again (not passed down from `ipv4`): only VIP traffic pays for keeping it.
    let Some(header) = frame.read::<[u8; IPV4_MIN_HLEN]>(l3) else {
        return Lb::NotOurs;
    };
    let ihl = header[0] & 0x0f;
    let protocol = header[9];
    let fragment = u16::from_be_bytes([header[6], header[7]]);
    // More Fragments set, or a non-zero offset: the rest of the datagram has no ports.
    let whole = fragment & (IPV4_MORE_FRAGMENTS | IPV4_FRAGMENT_OFFSET) == 0;
    let first = fragment & IPV4_FRAGMENT_OFFSET == 0;
    let l4 = l3 + IPV4_MIN_HLEN;
    if protocol == IPPROTO_TCP || protocol == IPPROTO_UDP {
        // The ports, to find the service, whenever the datagram carries them (even behind
        // options or in a first fragment, which are then passed).
        let ports = if first {
            frame.read::<[u8; 4]>(l3 + usize::from(ihl) * 4)
        } else {
            None
        };
        let Some(service) = find_service(vip, protocol, ports.map(|p| [p[2], p[3]])) else {
            return Lb::NotOurs;
        };
        let (Some(ports), true) = (ports, whole && ihl == 5) else {
            return Lb::Unsupported;
        };
        let src = ipv4_words([header[12], header[13], header[14], header[15]]);
        return Lb::Flow {
            service,
            key: FlowKey::from_words(FAMILY_IPV4, protocol, ports, src, vip.addr_words()),
            icmp: false,
            syn: is_syn(frame, protocol, l4),
        };
    }
    if protocol != IPPROTO_ICMP || ihl != 5 || !whole {
        return Lb::NotOurs;
    }
    // ICMP header (8), the original IPv4 header (20, no options), its ports (4): one block.
    let Some(m) = frame.read::<[u8; 8 + IPV4_MIN_HLEN + 4]>(l4) else {
        return Lb::NotOurs;
    };
    if m[0] != ICMP_DEST_UNREACH || m[1] != ICMP_FRAG_NEEDED || m[8] != 0x45 {
        return Lb::NotOurs;
    }
    let inner_protocol = m[8 + 9];
    // The original datagram went from the VIP (a real server answering) to the client.
    if (inner_protocol != IPPROTO_TCP && inner_protocol != IPPROTO_UDP)
        || m[8 + 12..8 + 16] != vip.addr[..4]
    {
        return Lb::NotOurs;
    }
    let client = ipv4_words([m[8 + 16], m[8 + 17], m[8 + 18], m[8 + 19]]);
    let p = 8 + IPV4_MIN_HLEN;
    icmp_flow(
        vip,
        inner_protocol,
        client,
        [m[p], m[p + 1], m[p + 2], m[p + 3]],
    )
}

/// IPv6 to an owned VIP: a TCP/UDP flow (no extension headers: `ipv6` passed those), or an
/// `ICMPv6` "packet too big" about one.
#[inline(always)]
fn lb_ipv6(frame: &Frame, l3: usize, vip: &VipKey) -> Lb {
    // Read again, as one block (see `lb_ipv4`).
    let Some(header) = frame.read::<[u8; IPV6_HLEN]>(l3) else {
        return Lb::NotOurs;
    };
    let next_header = header[6];
    let l4 = l3 + IPV6_HLEN;
    if next_header == IPPROTO_TCP || next_header == IPPROTO_UDP {
        let ports = frame.read::<[u8; 4]>(l4);
        let Some(service) = find_service(vip, next_header, ports.map(|p| [p[2], p[3]])) else {
            return Lb::NotOurs;
        };
        let Some(ports) = ports else {
            return Lb::Unsupported;
        };
        let mut src = [0u8; 16];
        src.copy_from_slice(&header[8..24]);
        return Lb::Flow {
            service,
            key: FlowKey::from_words(
                FAMILY_IPV6,
                next_header,
                ports,
                addr_words(src),
                vip.addr_words(),
            ),
            icmp: false,
            syn: is_syn(frame, next_header, l4),
        };
    }
    if next_header != IPPROTO_ICMPV6 {
        return Lb::NotOurs;
    }
    // ICMPv6 header (8), the original IPv6 header (40), its ports (4): one block.
    let Some(m) = frame.read::<[u8; 8 + IPV6_HLEN + 4]>(l4) else {
        return Lb::NotOurs;
    };
    let inner_protocol = m[8 + 6];
    if m[0] != ICMPV6_PACKET_TOO_BIG
        || m[8] >> 4 != 6
        || (inner_protocol != IPPROTO_TCP && inner_protocol != IPPROTO_UDP)
        || m[8 + 8..8 + 24] != vip.addr
    {
        return Lb::NotOurs;
    }
    let mut client = [0u8; 16];
    client.copy_from_slice(&m[8 + 24..8 + 40]);
    let client = addr_words(client);
    let p = 8 + IPV6_HLEN;
    icmp_flow(
        vip,
        inner_protocol,
        client,
        [m[p], m[p + 1], m[p + 2], m[p + 3]],
    )
}

/// The client's flow that an ICMP error is about. `inner_ports` are the original datagram's
/// (source = the service port, destination = the client's port), as a real server sent it.
#[inline(always)]
fn icmp_flow(vip: &VipKey, protocol: u8, client: [u32; 4], inner_ports: [u8; 4]) -> Lb {
    let service_port = [inner_ports[0], inner_ports[1]];
    let Some(service) = find_service(vip, protocol, Some(service_port)) else {
        return Lb::NotOurs;
    };
    let ports = [
        inner_ports[2],
        inner_ports[3],
        inner_ports[0],
        inner_ports[1],
    ];
    Lb::Flow {
        service,
        key: FlowKey::from_words(vip.family, protocol, ports, client, vip.addr_words()),
        icmp: true,
        syn: false,
    }
}

/// The service of (VIP, protocol, port): the exact port first, then the VIP's all-ports
/// service (port 0). Without a port (not readable), only the latter.
#[inline(always)]
fn find_service(vip: &VipKey, protocol: u8, port: Option<[u8; 2]>) -> Option<ServiceEntry> {
    // Two keys, not one whose port is rewritten: a key shared by both lookups lets LLVM
    // merge the port's bytes on the path where there is no port (an undefined register,
    // which the verifier rejects).
    if let Some(port) = port {
        let exact = ServiceKey {
            family: vip.family,
            protocol,
            port,
            addr: vip.addr,
        };
        // SAFETY: copied out at once; see `vrrp`.
        if let Some(entry) = unsafe { SERVICES.get(exact) } {
            return Some(*entry);
        }
    }
    let every_port = ServiceKey {
        family: vip.family,
        protocol,
        port: [0; 2],
        addr: vip.addr,
    };
    // SAFETY: as above.
    unsafe { SERVICES.get(every_port) }.copied()
}

/// Sends a flow's frame to its real server: the one `FLOWS` remembers while it is still the
/// same server (generation) and alive, else the scheduler's choice, remembered for the next
/// frames. ICMP errors follow the flow but never create one.
///
/// A TCP SYN always takes the scheduler's choice (and replaces what `FLOWS` held, as
/// katran does): an entry for its 5-tuple is left from an earlier connection whose client
/// port is now reused, and following it would place the new connection off the table, on
/// a server the other director would not pick after a failover (or on a drained one).
#[inline(always)]
fn balance(
    ctx: &XdpContext,
    frame: &Frame,
    l3: usize,
    service: &ServiceEntry,
    key: &FlowKey,
    icmp: bool,
    syn: bool,
) -> Decision {
    let known = if syn { None } else { remembered(key) };
    let Some((index, real)) = known.or_else(|| schedule(service, key, !icmp)) else {
        return Decision {
            action: xdp_action::XDP_DROP,
            outcome: Outcome::LbNoServer,
            vrid_stat: NO_VRID,
        };
    };
    if real.forward != Forward::Direct as u8 {
        return tunnel::encapsulate(ctx, l3, key, index, &real, icmp);
    }
    let Some((action, tx)) = send(ctx, frame, real.ifindex, &real.dst_mac, &real.src_mac) else {
        return Decision::pass(Outcome::PassMalformed);
    };
    let outcome = match (icmp, tx) {
        (true, _) => Outcome::LbIcmpForward,
        (false, true) => Outcome::LbForwardTx,
        (false, false) => Outcome::LbForwardRedirect,
    };
    Decision {
        action,
        outcome,
        vrid_stat: NO_VRID,
    }
}

/// The real server `FLOWS` holds for this flow, if it is still the same server and alive. A
/// drained server (weight 0: out of the table, still alive) keeps its flows this way.
#[inline(always)]
fn remembered(key: &FlowKey) -> Option<(u32, RealHead)> {
    // SAFETY: copied out at once; a concurrent update gives the old or the new entry.
    let flow = unsafe { FLOWS.get(key) }.copied()?;
    let real = live_real(flow.real)?;
    (real.generation == flow.generation && real.flags & REAL_ALIVE != 0)
        .then_some((flow.real, real))
}

/// The live copy of `REALS[index]`, whole: the one its `live` byte names (see `RealSlot`).
///
/// The agent changes a slot in two updates: the spare copy first (`live` and the live copy
/// rewritten with the bytes they hold), then `live` alone. So `live` is read once (volatile:
/// the compiler may neither read it twice nor fetch a copy before it), and the copy it names
/// is complete and stays unchanged while this packet reads it (the next write to that copy
/// comes two updates later). No extra map lookup: the selector sits in the element the packet
/// reads anyway, so the cost is a byte load and an offset.
#[inline(always)]
fn live_real(index: u32) -> Option<RealHead> {
    let slot = REALS.get_ptr(index)?;
    // SAFETY: `slot` points to an element of the array map, valid for the program's run.
    let live = unsafe { core::ptr::read_volatile(&raw const (*slot).live) } & 1;
    // SAFETY: as above; `live` is 0 or 1, and `get` checks it against the two copies anyway.
    let mut real = unsafe { (*slot).copies.get(usize::from(live)).copied() }?;
    // Which copy this was, for a tunnel's `TUNNELS` copy of the same number.
    real.flags |= live * REAL_READ_COPY;
    Some(real)
}

/// A new flow's real server, by the service's scheduler over its live table; `remember`
/// records the choice in `FLOWS`. `None`: no server to send to.
#[inline(always)]
fn schedule(service: &ServiceEntry, key: &FlowKey, remember: bool) -> Option<(u32, RealHead)> {
    if service.len == 0 {
        return None;
    }
    let slot = match Scheduler::from_u8(service.scheduler)? {
        Scheduler::Maglev => flow_hash(key) % LB_TABLE_SIZE,
        Scheduler::SourceHash => {
            let client = FlowKey::from_words(key.family, 0, [0; 4], addr_words(key.src), [0; 4]);
            flow_hash(&client) % LB_TABLE_SIZE
        }
        Scheduler::Wrr => {
            let cursor = LB_CURSORS.get_ptr_mut(u32::from(service.index))?;
            // SAFETY: this CPU's own slot, returned by the lookup; no other writer races.
            unsafe {
                let at = *cursor;
                *cursor = at.wrapping_add(1);
                at % service.len
            }
        }
    };
    let table = LB_TABLES.get(u32::from(service.index) * 2 + u32::from(service.table & 1))?;
    let index = u32::from(*table.slots.get(slot as usize)?);
    let real = live_real(index)?;
    if remember && within_flow_budget() {
        let flow = FlowEntry {
            real: index,
            generation: real.generation,
        };
        // A full LRU evicts its oldest flow; a failed insert only costs stickiness.
        let _ = FLOWS.insert(key, flow, 0);
    }
    Some((index, real))
}

/// Whether this CPU may remember one more new flow in the current second (`FlowBudget`);
/// counts the refusals.
#[inline(always)]
fn within_flow_budget() -> bool {
    let Some(budget) = FLOW_BUDGET.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: this CPU's own element of the array, valid for the program's run; no other
    // writer races with us (the agent writes `limit` only, a whole word).
    let budget = unsafe { &mut *budget };
    if budget.limit == 0 {
        return true;
    }
    // SAFETY: a plain helper call.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if now.wrapping_sub(budget.window_start_ns) >= FLOW_BUDGET_WINDOW_NS {
        budget.window_start_ns = now;
        budget.inserted = 0;
    }
    if budget.inserted >= budget.limit {
        budget.refused += 1;
        return false;
    }
    budget.inserted += 1;
    true
}

/// A program that passes every frame. Attached to the far end of a veth whose near end
/// forwards with `XDP_TX` / redirect (the kernel only delivers those on veth when the peer runs
/// XDP too), and the baseline the benchmark compares every path with.
#[xdp]
pub fn pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}
