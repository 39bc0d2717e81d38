//! Tunnel forwarding (IPIP, GUE) run in the kernel on crafted frames.
//!
//! The program asks the FIB where a real server is (`bpf_fib_lookup`), so each test thread
//! gets a network namespace of its own with a known FIB: `t0` (a veth, MTU 1500 unless a
//! test lowers it) holding 198.51.100.1/24 and `2001:db8:1::1/64`, a permanent neighbour
//! `NEXT_HOP_MAC` at .2 and `::2`, a host route to `ROUTED_REAL` via .2, forwarding on.
//! `BPF_PROG_TEST_RUN` runs the program on that namespace's loopback, so a real server
//! reached through `t0` is a redirect, and the output frame is the encapsulated one.

use std::process::Command;

use vipflip_common::{
    FAMILY_IPV4, FAMILY_IPV6, Forward, IPPROTO_TCP, Outcome, REAL_ALIVE, RealEntry, ServiceKey,
    VipKey, XDP_DROP, XDP_REDIRECT, XDP_TX, tunnel_entropy,
};

use super::{Case, Lb, check, service4, table, tcp4_key};
use crate::frames::*;

/// `t0`'s MAC: the source of every encapsulated frame.
const T0_MAC: [u8; 6] = [0x02, 0x66, 0, 0, 0, 0x01];
/// The MAC of the neighbour at 198.51.100.2 and `2001:db8:1::2`.
const NEXT_HOP_MAC: [u8; 6] = [0x02, 0x77, 0, 0, 0, 0x02];
const T0_V4: [u8; 4] = [198, 51, 100, 1];
const ON_LINK_REAL: [u8; 4] = [198, 51, 100, 2];
/// A real server one routed hop away, via 198.51.100.2.
const ROUTED_REAL: [u8; 4] = [192, 0, 2, 200];
/// On `t0`'s subnet, but with no neighbour entry.
const UNRESOLVED_REAL: [u8; 4] = [198, 51, 100, 3];
/// No route covers it.
const UNROUTED_REAL: [u8; 4] = [192, 0, 2, 77];
const T0_V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_REAL: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// The prefix IPIP's outer sources come from: 198.51.100.128/25.
const SOURCE_PREFIX: [u8; 4] = [198, 51, 100, 128];
const SOURCE_BITS: u8 = 7;
const GUE_PORT: u16 = 6080;

/// `REALS` slots of the tunnel real servers (the DR ones of `Lb` hold 1..=9).
const IPIP_V4: u16 = 10;
const GUE_V4: u16 = 11;
const IPIP_V6: u16 = 12;
const UNRESOLVED: u16 = 13;
const UNROUTED: u16 = 14;
const GUE_V6: u16 = 15;

fn sh(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(status.success(), "{args:?}: {status}");
}

fn sysctl(path: &str, value: &str) {
    std::fs::write(format!("/proc/sys/net/{path}"), value)
        .unwrap_or_else(|e| panic!("sysctl net/{path}: {e}"));
}

/// Moves the calling thread into a new network namespace with the FIB described above.
fn fib_namespace() {
    // SAFETY: a plain syscall; it affects this thread only (the test's own).
    assert_eq!(
        unsafe { libc::unshare(libc::CLONE_NEWNET) },
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
    sh(&["ip", "link", "set", "lo", "up"]);
    sh(&[
        "ip",
        "link",
        "add",
        "t0",
        "address",
        "02:66:00:00:00:01",
        "type",
        "veth",
        "peer",
        "name",
        "t1",
    ]);
    sh(&["ip", "link", "set", "t0", "up"]);
    sh(&["ip", "link", "set", "t1", "up"]);
    sh(&["ip", "addr", "add", "198.51.100.1/24", "dev", "t0"]);
    sh(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "t0",
        "nodad",
    ]);
    for (family, addr) in [("-4", "198.51.100.2"), ("-6", "2001:db8:1::2")] {
        sh(&[
            "ip",
            family,
            "neigh",
            "replace",
            addr,
            "lladdr",
            "02:77:00:00:00:02",
            "dev",
            "t0",
            "nud",
            "permanent",
        ]);
    }
    sh(&[
        "ip",
        "route",
        "add",
        "192.0.2.200/32",
        "via",
        "198.51.100.2",
    ]);
    // `bpf_fib_lookup` answers only for interfaces that forward (the ingress one: lo here).
    sysctl("ipv4/conf/all/forwarding", "1");
    sysctl("ipv6/conf/all/forwarding", "1");
}

fn v4_16(addr: [u8; 4]) -> [u8; 16] {
    let mut a = [0; 16];
    a[..4].copy_from_slice(&addr);
    a
}

fn tunnel_real(
    forward: Forward,
    family: u8,
    addr: [u8; 16],
    source: [u8; 16],
    bits: u8,
) -> RealEntry {
    RealEntry {
        forward: forward as u8,
        family,
        source_bits: bits,
        gue_port: GUE_PORT.to_be_bytes(),
        addr,
        source,
        ..RealEntry::direct(0, 1, [0; 6], [0; 6], REAL_ALIVE)
    }
}

/// `Lb` with the tunnel real servers in their slots, in a namespace of its own.
fn tunnel_lb(test: &str) -> Lb {
    fib_namespace();
    let mut lb = Lb::new(test);
    let v4 =
        |forward, addr, source, bits| tunnel_real(forward, FAMILY_IPV4, v4_16(addr), source, bits);
    for (slot, entry) in [
        (
            IPIP_V4,
            v4(
                Forward::Ipip,
                ON_LINK_REAL,
                v4_16(SOURCE_PREFIX),
                SOURCE_BITS,
            ),
        ),
        (GUE_V4, v4(Forward::Gue, ROUTED_REAL, [0; 16], 0)),
        (
            IPIP_V6,
            tunnel_real(Forward::Ipip, FAMILY_IPV6, V6_REAL, [0; 16], 0),
        ),
        (UNRESOLVED, v4(Forward::Ipip, UNRESOLVED_REAL, [0; 16], 0)),
        (UNROUTED, v4(Forward::Ipip, UNROUTED_REAL, [0; 16], 0)),
        (
            GUE_V6,
            tunnel_real(Forward::Gue, FAMILY_IPV6, V6_REAL, [0; 16], 0),
        ),
    ] {
        lb.plane.set_real(slot, entry).unwrap();
    }
    lb
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The outer IPv4 source of IPIP with `SOURCE_PREFIX`: its low bits from the flow.
fn varied_source(entropy: u32) -> [u8; 4] {
    let mask = (1u32 << SOURCE_BITS) - 1;
    ((u32::from_be_bytes(SOURCE_PREFIX) & !mask) | (entropy & mask)).to_be_bytes()
}

fn gue_source_port(entropy: u32) -> u16 {
    0xc000 | u16::try_from(entropy & 0x3fff).unwrap()
}

/// An outer IPv6 header as the program writes it: the flow label from the flow.
fn outer_ipv6(
    src: [u8; 16],
    dst: [u8; 16],
    next_header: u8,
    entropy: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut packet = ipv6(src, dst, next_header, 64, payload);
    let first = (6u32 << 28) | (entropy & 0x000f_ffff);
    packet[..4].copy_from_slice(&first.to_be_bytes());
    packet
}

/// Runs `frame`, expecting it to come out as `out`, redirected to `t0`.
fn redirected(lb: &mut Lb, what: &str, frame: Vec<u8>, out: Vec<u8>) {
    check(
        &mut lb.harness,
        &Case {
            what: what.to_owned(),
            frame,
            verdict: XDP_REDIRECT,
            outcome: Outcome::LbTunnelRedirect,
            out: Some(out),
            vrid_delta: None,
        },
    );
}

fn tcp4_frame(client_port: u16, payload: &[u8]) -> Vec<u8> {
    eth(
        None,
        0x0800,
        &ipv4(
            V4_CLIENT,
            V4_VIP_LOCAL,
            IPPROTO_TCP,
            64,
            &tcp(client_port, 80, payload),
        ),
    )
}

fn tcp6_frame(client_port: u16, payload: &[u8]) -> Vec<u8> {
    eth(
        None,
        0x86dd,
        &ipv6(
            V6_CLIENT,
            V6_VIP_LOCAL,
            IPPROTO_TCP,
            64,
            &tcp(client_port, 80, payload),
        ),
    )
}

fn tcp6_key(client_port: u16) -> vipflip_common::FlowKey {
    vipflip_common::FlowKey::from_words(
        FAMILY_IPV6,
        IPPROTO_TCP,
        [
            client_port.to_be_bytes()[0],
            client_port.to_be_bytes()[1],
            0,
            80,
        ],
        vipflip_common::addr_words(V6_CLIENT),
        vipflip_common::addr_words(V6_VIP_LOCAL),
    )
}

fn service6() -> ServiceKey {
    ServiceKey::new(VipKey::ipv6(V6_VIP_LOCAL), IPPROTO_TCP, 80)
}

#[test]
#[ignore = "needs root"]
fn ipip_wraps_ipv4_in_ipv4_from_a_varied_source() {
    let mut lb = tunnel_lb("ipip4");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(IPIP_V4));
    let frame = tcp4_frame(40001, b"GET / HTTP/1.1");
    let inner = frame[14..].to_vec();
    let source = varied_source(tunnel_entropy(&tcp4_key(40001)));
    let out = ethernet(
        NEXT_HOP_MAC,
        T0_MAC,
        0x0800,
        &ipv4(source, ON_LINK_REAL, 4, 64, &inner),
    );
    redirected(&mut lb, "IPIP, IPv4 in IPv4", frame, out);
}

#[test]
#[ignore = "needs root"]
fn gue_wraps_in_udp_to_a_routed_real_from_the_fibs_source() {
    let mut lb = tunnel_lb("gue4");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(GUE_V4));
    let frame = tcp4_frame(40002, b"GET / HTTP/1.1");
    let inner = frame[14..].to_vec();
    let port = gue_source_port(tunnel_entropy(&tcp4_key(40002)));
    let out = ethernet(
        NEXT_HOP_MAC,
        T0_MAC,
        0x0800,
        &ipv4(T0_V4, ROUTED_REAL, 17, 64, &udp(port, GUE_PORT, &inner)),
    );
    redirected(&mut lb, "GUE, IPv4 in UDP/IPv4, one hop away", frame, out);
}

#[test]
#[ignore = "needs root"]
fn ipip_wraps_ipv6_in_ipv6_and_ipv4_in_ipv6() {
    let mut lb = tunnel_lb("ipip6");
    lb.maglev(service6(), 1, &table(IPIP_V6));
    let frame = tcp6_frame(40003, b"GET / HTTP/1.1");
    let inner = frame[14..].to_vec();
    let entropy = tunnel_entropy(&tcp6_key(40003));
    let out = ethernet(
        NEXT_HOP_MAC,
        T0_MAC,
        0x86dd,
        &outer_ipv6(T0_V6, V6_REAL, 41, entropy, &inner),
    );
    redirected(&mut lb, "IPIP, IPv6 in IPv6", frame, out);

    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(IPIP_V6));
    let frame = tcp4_frame(40004, b"GET / HTTP/1.1");
    let inner = frame[14..].to_vec();
    let entropy = tunnel_entropy(&tcp4_key(40004));
    let out = ethernet(
        NEXT_HOP_MAC,
        T0_MAC,
        0x86dd,
        &outer_ipv6(T0_V6, V6_REAL, 4, entropy, &inner),
    );
    redirected(&mut lb, "IPIP, IPv4 in IPv6", frame, out);

    lb.maglev(service6(), 1, &table(GUE_V6));
    let frame = tcp6_frame(40005, b"GET / HTTP/1.1");
    let inner = frame[14..].to_vec();
    let entropy = tunnel_entropy(&tcp6_key(40005));
    let out = ethernet(
        NEXT_HOP_MAC,
        T0_MAC,
        0x86dd,
        &outer_ipv6(
            T0_V6,
            V6_REAL,
            17,
            entropy,
            &udp(gue_source_port(entropy), GUE_PORT, &inner),
        ),
    );
    redirected(&mut lb, "GUE, IPv6 in UDP/IPv6", frame, out);
}

#[test]
#[ignore = "needs root"]
fn the_outer_header_spreads_flows() {
    const FLOWS: u16 = 10_000;
    let mut lb = tunnel_lb("spread");
    let mut sources = std::collections::HashMap::<[u8; 4], u32>::new();
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(IPIP_V4));
    for port in 0..FLOWS {
        let (_, out) = lb.harness.run(&tcp4_frame(20_000 + port, b"x")).unwrap();
        *sources
            .entry([out[26], out[27], out[28], out[29]])
            .or_default() += 1;
    }
    let mut ports = std::collections::HashSet::new();
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(GUE_V4));
    // Other flows: the first ones stay with their IPIP real server.
    for port in 0..FLOWS {
        let (_, out) = lb.harness.run(&tcp4_frame(40_000 + port, b"x")).unwrap();
        ports.insert(u16::from_be_bytes([out[34], out[35]]));
    }
    // 10,000 flows over the 128 addresses of a /25: about 78 each.
    assert_eq!(sources.len(), 128, "every address of the prefix is used");
    assert!(
        sources
            .keys()
            .all(|s| s[..3] == SOURCE_PREFIX[..3] && s[3] >= 128),
        "every source is in 198.51.100.128/25"
    );
    let (least, most) = (
        *sources.values().min().unwrap(),
        *sources.values().max().unwrap(),
    );
    assert!(
        least >= 39 && most <= 117,
        "within half of the mean: {least}..{most}"
    );
    // Over 16,384 ports, 10,000 random flows take about 7,500 distinct ones.
    assert!(
        ports.len() > 7_000,
        "GUE source ports: {} distinct",
        ports.len()
    );
    assert!(ports.iter().all(|p| *p >= 0xc000));
}

#[test]
#[ignore = "needs root"]
fn too_big_once_wrapped_is_answered_with_the_mtu_that_fits() {
    let mut lb = tunnel_lb("too-big");
    sh(&["ip", "link", "set", "t0", "mtu", "1400"]);
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(IPIP_V4));
    // 1,390 bytes of IPv4: 1,410 wrapped, over the 1,400 of t0.
    let frame = tcp4_frame(40010, &[0x5a; 1390 - 40]);
    let original = frame[14..].to_vec();
    let client_mac = frame[6..12].to_vec();
    let our_mac = frame[..6].to_vec();
    let reply = ethernet(
        client_mac.try_into().unwrap(),
        our_mac.try_into().unwrap(),
        0x0800,
        &ipv4(
            V4_VIP_LOCAL,
            V4_CLIENT,
            1,
            64,
            &icmp_frag_needed(1380, &original[..64]),
        ),
    );
    check(
        &mut lb.harness,
        &Case {
            what: "IPv4 with DF, too big wrapped: fragmentation needed, MTU 1380".to_owned(),
            frame: frame.clone(),
            verdict: XDP_TX,
            outcome: Outcome::LbTunnelTooBig,
            out: Some(reply),
            vrid_delta: None,
        },
    );
    let mut no_df = frame;
    no_df[14 + 6] = 0;
    let sum = checksum(&{
        let mut h = no_df[14..34].to_vec();
        h[10..12].copy_from_slice(&[0, 0]);
        h
    });
    no_df[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
    lb.untouched(
        "IPv4 without DF, too big wrapped: dropped",
        no_df,
        XDP_DROP,
        Outcome::LbTunnelTooBigDropped,
    );
    let fits = tcp4_frame(40011, &[0x5a; 1380 - 40]);
    let inner = fits[14..].to_vec();
    let source = varied_source(tunnel_entropy(&tcp4_key(40011)));
    redirected(
        &mut lb,
        "1,380 bytes: fits once wrapped",
        fits,
        ethernet(
            NEXT_HOP_MAC,
            T0_MAC,
            0x0800,
            &ipv4(source, ON_LINK_REAL, 4, 64, &inner),
        ),
    );

    lb.maglev(service6(), 1, &table(IPIP_V6));
    let frame = tcp6_frame(40012, &[0x5a; 1390 - 60]);
    let original = frame[14..].to_vec();
    let mut message = vec![2, 0, 0, 0];
    message.extend_from_slice(&1360u32.to_be_bytes());
    message.extend_from_slice(&original[..96]);
    let mut pseudo = V6_VIP_LOCAL.to_vec();
    pseudo.extend_from_slice(&V6_CLIENT);
    pseudo.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&message);
    let sum = checksum(&pseudo);
    message[2..4].copy_from_slice(&sum.to_be_bytes());
    let reply = ethernet(
        frame[6..12].try_into().unwrap(),
        frame[..6].try_into().unwrap(),
        0x86dd,
        &ipv6(V6_VIP_LOCAL, V6_CLIENT, 58, 64, &message),
    );
    check(
        &mut lb.harness,
        &Case {
            what: "IPv6, too big wrapped: packet too big, MTU 1360".to_owned(),
            frame,
            verdict: XDP_TX,
            outcome: Outcome::LbTunnelTooBig,
            out: Some(reply),
            vrid_delta: None,
        },
    );
}

#[test]
#[ignore = "needs root"]
fn no_route_and_no_neighbour_are_dropped_and_counted() {
    let mut lb = tunnel_lb("no-route");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(UNRESOLVED));
    lb.untouched(
        "next hop without a neighbour entry",
        tcp4_frame(40020, b"x"),
        XDP_DROP,
        Outcome::LbTunnelNoNeighbour,
    );
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(UNROUTED));
    lb.untouched(
        "no route to the real server",
        tcp4_frame(40021, b"x"),
        XDP_DROP,
        Outcome::LbTunnelNoRoute,
    );
    sysctl("ipv4/conf/all/forwarding", "0");
    sysctl("ipv4/conf/lo/forwarding", "0");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(IPIP_V4));
    lb.untouched(
        "forwarding off on the ingress interface",
        tcp4_frame(40022, b"x"),
        XDP_DROP,
        Outcome::LbTunnelNoRoute,
    );
}

#[test]
#[ignore = "needs root"]
fn tunnelled_flows_stick_through_table_changes() {
    let mut lb = tunnel_lb("stick");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(IPIP_V4));
    let frame = tcp4_frame(40030, b"first");
    let (verdict, first) = lb.harness.run(&frame).unwrap();
    assert_eq!(verdict, XDP_REDIRECT);
    assert_eq!(first[30..34], ON_LINK_REAL, "to the IPIP real server");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(GUE_V4));
    let (_, again) = lb.harness.run(&tcp4_frame(40030, b"first")).unwrap();
    assert_eq!(again, first, "the flow stays on its real server");
    let (_, new) = lb.harness.run(&tcp4_frame(40031, b"new")).unwrap();
    assert_eq!(new[30..34], ROUTED_REAL, "a new flow takes the new table");
    assert_eq!(new[23], 17, "by GUE");
}

/// The real server's `decap` program, loaded alone with GUE on [`GUE_PORT`].
struct Decap {
    ebpf: aya::Ebpf,
}

impl Decap {
    fn new() -> Self {
        let mut ebpf = aya::Ebpf::load(vipflip::dataplane::EBPF_OBJECT).expect("load the object");
        let mut ports: aya::maps::HashMap<_, [u8; 2], u8> =
            aya::maps::HashMap::try_from(ebpf.map_mut("DECAP_PORTS").unwrap()).unwrap();
        ports.insert(GUE_PORT.to_be_bytes(), 1, 0).unwrap();
        let program: &mut aya::programs::Xdp = ebpf
            .program_mut(vipflip::dataplane::DECAP_PROGRAM_NAME)
            .expect("the decap program")
            .try_into()
            .unwrap();
        program.load().expect("the decap program verifies");
        Self { ebpf }
    }

    /// Runs `frame`: the verdict is always `XDP_PASS`; returns the frame as passed.
    fn run(&mut self, frame: &[u8]) -> Vec<u8> {
        let program: &mut aya::programs::Xdp = self
            .ebpf
            .program_mut(vipflip::dataplane::DECAP_PROGRAM_NAME)
            .unwrap()
            .try_into()
            .unwrap();
        let mut out = vec![0u8; frame.len() + 64];
        let result = aya::programs::TestRun::test_run(
            program,
            aya::programs::TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..aya::programs::TestRunOptions::default()
            },
        )
        .expect("BPF_PROG_TEST_RUN");
        assert_eq!(result.return_value, vipflip_common::XDP_PASS);
        out.truncate(result.data_size_out as usize);
        out
    }
}

#[test]
#[ignore = "needs root"]
fn the_decap_program_unwraps_what_the_balancer_wraps() {
    let mut decap = Decap::new();
    let inner4 = tcp4_frame(40040, b"GET / HTTP/1.1")[14..].to_vec();
    let inner6 = tcp6_frame(40041, b"GET / HTTP/1.1")[14..].to_vec();
    // As the real server receives them: the next hop's MACs, the outer headers.
    let wrapped = [
        (
            "IPIP, IPv4 in IPv4",
            ethernet(
                NEXT_HOP_MAC,
                T0_MAC,
                0x0800,
                &ipv4(T0_V4, ON_LINK_REAL, 4, 64, &inner4),
            ),
            0x0800,
            &inner4,
        ),
        (
            "GUE, IPv4 in UDP/IPv4",
            ethernet(
                NEXT_HOP_MAC,
                T0_MAC,
                0x0800,
                &ipv4(T0_V4, ROUTED_REAL, 17, 64, &udp(50_000, GUE_PORT, &inner4)),
            ),
            0x0800,
            &inner4,
        ),
        (
            "IPIP, IPv6 in IPv6",
            ethernet(
                NEXT_HOP_MAC,
                T0_MAC,
                0x86dd,
                &outer_ipv6(T0_V6, V6_REAL, 41, 7, &inner6),
            ),
            0x86dd,
            &inner6,
        ),
        (
            "IPIP, IPv4 in IPv6",
            ethernet(
                NEXT_HOP_MAC,
                T0_MAC,
                0x86dd,
                &outer_ipv6(T0_V6, V6_REAL, 4, 7, &inner4),
            ),
            0x0800,
            &inner4,
        ),
        (
            "GUE, IPv6 in UDP/IPv6",
            ethernet(
                NEXT_HOP_MAC,
                T0_MAC,
                0x86dd,
                &outer_ipv6(T0_V6, V6_REAL, 17, 7, &udp(50_000, GUE_PORT, &inner6)),
            ),
            0x86dd,
            &inner6,
        ),
    ];
    for (what, frame, ethertype, inner) in wrapped {
        let out = decap.run(&frame);
        assert_eq!(
            out,
            ethernet(NEXT_HOP_MAC, T0_MAC, ethertype, inner),
            "{what}: the inner packet, as if it had arrived so"
        );
    }
    let untouched = [
        (
            "UDP to another port",
            ethernet(
                NEXT_HOP_MAC,
                T0_MAC,
                0x0800,
                &ipv4(T0_V4, ROUTED_REAL, 17, 64, &udp(50_000, 53, &inner4)),
            ),
        ),
        ("plain TCP", tcp4_frame(40042, b"x")),
        (
            "IPIP whose payload is not IPv4",
            ethernet(
                NEXT_HOP_MAC,
                T0_MAC,
                0x0800,
                &ipv4(T0_V4, ON_LINK_REAL, 4, 64, &inner6),
            ),
        ),
    ];
    for (what, frame) in untouched {
        assert_eq!(decap.run(&frame), frame, "{what}: passed untouched");
    }
}

/// Each CPU keeps what the FIB said of a real server for `FIB_CACHE_NS`: a neighbour change
/// reaches tunnelled frames within that, and a slot given a new generation is looked up
/// afresh at once.
#[test]
#[ignore = "needs root"]
fn the_path_follows_the_fib_within_the_cache_time() {
    let mut lb = tunnel_lb("fib-cache");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(IPIP_V4));
    let dmac = |lb: &mut Lb, port: u16| {
        let (verdict, out) = lb.harness.run(&tcp4_frame(port, b"x")).unwrap();
        assert_eq!(verdict, XDP_REDIRECT);
        <[u8; 6]>::try_from(&out[..6]).unwrap()
    };
    assert_eq!(dmac(&mut lb, 41000), NEXT_HOP_MAC);
    let moved = [0x02, 0x77, 0, 0, 0, 0x09];
    sh(&[
        "ip",
        "neigh",
        "replace",
        "198.51.100.2",
        "lladdr",
        "02:77:00:00:00:09",
        "dev",
        "t0",
        "nud",
        "permanent",
    ]);
    let changed = std::time::Instant::now();
    let mut port = 41001;
    while dmac(&mut lb, port) != moved {
        assert!(
            changed.elapsed() < std::time::Duration::from_secs(1),
            "the new neighbour is not used a second later (cache time {} ms)",
            vipflip_common::FIB_CACHE_NS / 1_000_000
        );
        port += 1;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    println!("new next-hop MAC in use after {:?}", changed.elapsed());

    sh(&[
        "ip",
        "neigh",
        "replace",
        "198.51.100.2",
        "lladdr",
        "02:77:00:00:00:0a",
        "dev",
        "t0",
        "nud",
        "permanent",
    ]);
    let entry = tunnel_real(
        Forward::Ipip,
        FAMILY_IPV4,
        v4_16(ON_LINK_REAL),
        v4_16(SOURCE_PREFIX),
        SOURCE_BITS,
    );
    lb.plane
        .set_real(
            IPIP_V4,
            RealEntry {
                generation: 2,
                ..entry
            },
        )
        .unwrap();
    assert_eq!(
        dmac(&mut lb, 42000),
        [0x02, 0x77, 0, 0, 0, 0x0a],
        "a new generation looks the path up at once"
    );
}
