//! The load-balancer benchmark (`cargo xtask bench lb`), three parts in one run:
//!
//! 1. Per-packet cost of the service path through `BPF_PROG_TEST_RUN`, next to the minimal
//!    `pass` program measured in alternation with it: `lb path=<name> ns_per_packet=<x>
//!    ratio=<r>`.
//! 2. Packets per second forwarded through a director on veth (generator ns → director ns →
//!    real-server ns), the frames generated with `BPF_F_TEST_XDP_LIVE_FRAMES`: balanced by the
//!    `vipflip` program, and routed by the kernel (`ip_forward`) for comparison: `forward …`.
//! 3. Building a lookup table for 1,000 real servers (Maglev, WRR) and writing it to the map
//!    (`Dataplane::set_service`): `rebuild …`.
//!
//! Run by `cargo bench` (with `--bench`), it measures for real. Run by `cargo test
//! --all-targets` (no `--bench`), it runs every part with tiny counts, so the benchmark keeps
//! working. Needs root.

#[path = "../tests/frames/mod.rs"]
#[expect(
    dead_code,
    reason = "shared with the kernel tests, which use more of it"
)]
mod frames;

#[path = "../tests/cpu/mod.rs"]
mod cpu;

use cpu::stay_on_this_cpu;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use aya::{
    Ebpf, TestRunAttrs,
    programs::{TestRun, TestRunOptions, Xdp},
};
use frames::{V4_CLIENT, eth, ipv4, tcp, udp};
use vipflip::{
    dataplane::{self, Dataplane, Ownership, XdpModeChoice},
    lb::table::{self, Backend},
};
use vipflip_common::{
    FAMILY_IPV4, FAMILY_IPV6, Forward, IPPROTO_TCP, IPPROTO_UDP, LB_TABLE_SIZE, LbTable,
    REAL_ALIVE, RealEntry, Scheduler, ServiceKey, VipKey, XDP_PASS, XDP_REDIRECT, XDP_TX,
};

/// The service VIP (an owned VIP: `Local`).
const VIP: [u8; 4] = [192, 0, 2, 100];
/// The real server's own address (the kernel-forwarding baseline's destination).
const REAL_ADDR: [u8; 4] = [198, 51, 100, 21];
/// Real servers in the per-packet part's table, and in the rebuild part.
const SERVERS: u16 = 1000;
const UDP_PORT: u16 = 7777;
/// Frames per `BPF_F_TEST_XDP_LIVE_FRAMES` batch (the kernel's default).
const LIVE_BATCH: u32 = 64;
/// Frames per live-frames call. Each call sets up a fresh page pool (pages initialised from
/// `data_in`), but within a call pages are recycled with whatever was written into them:
/// the kernel's forwarding decrements the TTL in place. At most 8192 frames over at least
/// `LIVE_BATCH` pages keeps a TTL of 255 far from expiring (`ip_in_hdr_errors` checks it).
const LIVE_REPEAT: u32 = 8192;

struct Scale {
    /// Repeats per `BPF_PROG_TEST_RUN` (per-packet part).
    repeat: u32,
    rounds: usize,
    /// Single runs of distinct new flows.
    single_runs: u16,
    /// Generation time per path and round (forwarding part).
    forward_for: Duration,
    forward_rounds: usize,
    /// Frames per live-frames call.
    live_repeat: u32,
    rebuild_runs: usize,
    /// Established flows, and spoofed SYNs sent at them (SYN flood part).
    flood_established: u16,
    flood_syns: u32,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Never a silent pass: `cargo xtask test` leaves this target out without root, and
        // counts it as skipped.
        eprintln!("the lb benchmark needs root (BPF_PROG_TEST_RUN and namespaces): run it as root");
        std::process::exit(2);
    }
    let scale = if full {
        Scale {
            repeat: 1_000_000,
            rounds: 7,
            single_runs: 5001,
            forward_for: Duration::from_secs(3),
            forward_rounds: 5,
            live_repeat: std::env::var("LB_LIVE_REPEAT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(LIVE_REPEAT),
            rebuild_runs: 21,
            flood_established: 1000,
            flood_syns: 200_000,
        }
    } else {
        Scale {
            repeat: 1000,
            rounds: 3,
            single_runs: 51,
            forward_for: Duration::from_millis(200),
            forward_rounds: 1,
            live_repeat: 1000,
            rebuild_runs: 3,
            flood_established: 50,
            flood_syns: 2000,
        }
    };
    // FLOWS and LB_CURSORS are per-CPU, and BPF_PROG_TEST_RUN runs on the caller's CPU.
    stay_on_this_cpu();
    let pins = Pins::new();
    per_packet(&scale, &pins);
    tunnel_per_packet(&scale, &pins);
    syn_flood(&scale, &pins);
    forwarding(&scale, &pins);
    rebuild(&scale, &pins);
}

// Part 1: per-packet cost.

fn per_packet(scale: &Scale, pins: &Pins) {
    let iface = "bench";
    let mut ebpf = dataplane::load(iface, Some(&pins.root.join(iface))).expect("load the program");
    let mut plane = Dataplane::open_pinned(iface, &pins.root).expect("open the pinned maps");
    plane
        .set_vip(ip4(VIP), Ownership::Local { vrid: 51 })
        .unwrap();
    // Other VIPs, so `VIPS` and the filter are not trivially empty.
    for last in 1..100 {
        plane
            .set_vip(ip4([192, 0, 2, last]), Ownership::Drop { vrid: 52 })
            .unwrap();
    }
    // Every real on loopback, the ingress interface of BPF_PROG_TEST_RUN: XDP_TX.
    for n in 1..=SERVERS {
        plane.set_real(n, real(n, 1, REAL_ALIVE)).unwrap();
    }
    let backends = backends(SERVERS);
    let mut maglev = table::new_table();
    let len = table::maglev(&backends, &mut maglev);
    plane
        .set_service(service(IPPROTO_TCP, 80), 0, Scheduler::Maglev, &maglev, len)
        .unwrap();
    let mut wrr = table::new_table();
    let wrr_len = table::wrr(&backends, &mut wrr);
    plane
        .set_service(service(IPPROTO_TCP, 82), 1, Scheduler::Wrr, &wrr, wrr_len)
        .unwrap();

    let mut pass_ebpf = Ebpf::load(dataplane::EBPF_OBJECT).expect("load the object");
    let pass: &mut Xdp = pass_ebpf
        .program_mut(dataplane::PASS_PROGRAM_NAME)
        .unwrap()
        .try_into()
        .unwrap();
    pass.load().expect("load the pass program");
    let program = dataplane::program_mut(&mut ebpf, iface).unwrap();

    let paths: [(&str, Vec<u8>, u32); 4] = [
        (
            "non_vip_ipv4",
            udp4([198, 51, 100, 9], UDP_PORT, 40000),
            XDP_PASS,
        ),
        // A data segment (ACK) of one flow, remembered in FLOWS after the first run: every
        // later run is a FLOWS hit.
        ("service_established", segment(80, 40000, 0x10), XDP_TX),
        // The same SYN every run: a SYN is always placed by the table (a reused client port
        // must not follow an old connection's entry), so each run schedules (flow hash into
        // the Maglev table) and writes the flow's FLOWS entry: a new connection's work, the
        // insert replacing the key's entry rather than adding one.
        ("service_new_syn_maglev", segment(80, 40000, 0x02), XDP_TX),
        // The same through the WRR cursor (a per-CPU array) instead of the flow hash.
        ("service_new_syn_wrr", segment(82, 40000, 0x02), XDP_TX),
    ];
    for (name, frame, verdict) in &paths {
        let (ours, base) = alternate(program, pass, frame, *verdict, scale);
        print_path(name, ours, base);
    }
    // Genuinely new flows: a SYN from a distinct client port per run, one run each
    // (repeat 1), so each is a schedule and the insert of a new FLOWS key. The kernel times one run with two clock
    // reads around it, which both sides pay; compare the difference rather than the ratio.
    let mut ours = Vec::new();
    let mut base = Vec::new();
    for port in 0..scale.single_runs {
        let frame = segment(80, 10_000 + port, 0x02);
        base.push(run_ns(pass, &frame, 1, XDP_PASS));
        ours.push(run_ns(program, &frame, 1, XDP_TX));
    }
    let (ours, base) = (median(ours), median(base));
    println!(
        "lb path=service_new_flow_single_run ns_per_packet={ours:.1} ratio={:.2} \
         excess_ns={:.1}",
        ours / base,
        ours - base
    );
    println!("lb path=minimal_pass_single_run ns_per_packet={base:.1} ratio=1.00");
}

/// The tunnel paths (issue #14): the same service path, the real server wrapped in IPIP or
/// GUE and found by `bpf_fib_lookup`. The FIB must be known, so this runs on a thread in a
/// network namespace of its own: `t0` (a veth) with 198.51.100.1/24 and `2001:db8:1::1/64`,
/// the real server at .2 / `::2` as a permanent neighbour, forwarding on. The next hop is
/// `t0`, not the ingress loopback, so the verdict is `XDP_REDIRECT` (in `BPF_PROG_TEST_RUN`
/// without live frames that is a return code, as `XDP_TX` is).
fn tunnel_per_packet(scale: &Scale, pins: &Pins) {
    let (repeat, rounds) = (scale.repeat, scale.rounds);
    let singles = u32::from(scale.single_runs);
    let root = pins.root.clone();
    std::thread::spawn(move || {
        tunnel_namespace();
        let iface = "tunnel";
        let mut ebpf = dataplane::load(iface, Some(&root.join(iface))).expect("load");
        let mut plane = Dataplane::open_pinned(iface, &root).expect("open the pins");
        tunnel_services(&mut plane);
        let mut pass_ebpf = Ebpf::load(dataplane::EBPF_OBJECT).expect("load the object");
        let pass: &mut Xdp = pass_ebpf
            .program_mut(dataplane::PASS_PROGRAM_NAME)
            .unwrap()
            .try_into()
            .unwrap();
        pass.load().expect("load the pass program");
        let program = dataplane::program_mut(&mut ebpf, iface).unwrap();
        let mut segment6 = tcp(40000, 80, b"");
        segment6[13] = 0x10;
        let established6 = eth(
            None,
            0x86dd,
            &frames::ipv6(
                frames::V6_CLIENT,
                frames::V6_VIP_LOCAL,
                IPPROTO_TCP,
                64,
                &segment6,
            ),
        );
        // A wrapped frame cannot be re-run in place: `repeat` runs the program again on the
        // buffer the previous run left (the kernel does not restore it), which is the outer
        // packet by then. So each path is timed one run at a time, the frame copied in
        // afresh, next to `pass` timed the same way; the difference is the path's cost over
        // `pass` (the kernel's clock reads around a single run are in both and cancel), and
        // the ratio is that cost over `pass`'s own per-packet time from repeated runs.
        let paths: [(&str, Vec<u8>); 5] = [
            ("service_established", segment(82, 40000, 0x10)),
            ("tunnel_ipip_established", segment(80, 40000, 0x10)),
            ("tunnel_ipip_new_syn_maglev", segment(80, 40000, 0x02)),
            ("tunnel_gue_established", segment(81, 40000, 0x10)),
            ("tunnel_ipip6_established", established6),
        ];
        for (name, frame) in &paths {
            let verdict = if name.starts_with("tunnel") {
                XDP_REDIRECT
            } else {
                XDP_TX
            };
            let mut ours = Vec::new();
            let mut base = Vec::new();
            let mut pass_ns = Vec::new();
            for round in 0..rounds {
                pass_ns.push(run_ns(pass, frame, repeat, XDP_PASS));
                for _ in 0..singles / u32::try_from(rounds).unwrap_or(1) + u32::from(round == 0) {
                    base.push(run_ns(pass, frame, 1, XDP_PASS));
                    ours.push(run_ns(program, frame, 1, verdict));
                }
            }
            let (ours, base, pass_ns) = (median(ours), median(base), median(pass_ns));
            let excess = ours - base;
            println!(
                "lb single path={name} excess_ns={excess:.1} pass_ns={pass_ns:.1} ratio={:.2}",
                (pass_ns + excess) / pass_ns
            );
        }
    })
    .join()
    .expect("the tunnel paths");
}

/// Moves the calling thread into a new network namespace with the FIB the tunnel paths use.
fn tunnel_namespace() {
    // SAFETY: a plain syscall; it moves this thread alone into a new namespace.
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
    for args in [
        "link set lo up",
        "link add t0 type veth peer name t1",
        "link set t0 up",
        "link set t1 up",
        "addr add 198.51.100.1/24 dev t0",
        "-6 addr add 2001:db8:1::1/64 dev t0 nodad",
        "neigh replace 198.51.100.2 lladdr 02:77:00:00:00:02 dev t0 nud permanent",
        "-6 neigh replace 2001:db8:1::2 lladdr 02:77:00:00:00:02 dev t0 nud permanent",
    ] {
        sh("ip", &args.split(' ').collect::<Vec<_>>());
    }
    for sysctl in ["ipv4/conf/all/forwarding", "ipv6/conf/all/forwarding"] {
        std::fs::write(format!("/proc/sys/net/{sysctl}"), "1").expect(sysctl);
    }
}

/// The VIPs, tunnel real servers and services of the tunnel paths.
fn tunnel_services(plane: &mut Dataplane) {
    plane
        .set_vip(ip4(VIP), Ownership::Local { vrid: 51 })
        .unwrap();
    plane
        .set_vip(
            IpAddr::V6(Ipv6Addr::from(frames::V6_VIP_LOCAL)),
            Ownership::Local { vrid: 51 },
        )
        .unwrap();
    let v4 = |a: [u8; 4]| {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&a);
        b
    };
    let tunnel = |forward: Forward, family, addr, source, bits| RealEntry {
        forward: forward as u8,
        family,
        source_bits: bits,
        gue_port: 6080u16.to_be_bytes(),
        addr,
        source,
        ..RealEntry::direct(0, 1, [0; 6], [0; 6], REAL_ALIVE)
    };
    let six = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2).octets();
    // IPIP from 198.51.100.128/25 (katran's per-flow source), GUE and IPIP over IPv6
    // from the FIB's source.
    for (slot, entry) in [
        (
            1,
            tunnel(
                Forward::Ipip,
                FAMILY_IPV4,
                v4([198, 51, 100, 2]),
                v4([198, 51, 100, 128]),
                7,
            ),
        ),
        (
            2,
            tunnel(Forward::Gue, FAMILY_IPV4, v4([198, 51, 100, 2]), [0; 16], 0),
        ),
        (3, tunnel(Forward::Ipip, FAMILY_IPV6, six, [0; 16], 0)),
    ] {
        plane.set_real(slot, entry).unwrap();
    }
    // Direct Routing on loopback (the ingress interface: `XDP_TX`), for the same method.
    plane.set_real(4, real(4, 1, REAL_ALIVE)).unwrap();
    for (port, slot, index) in [(80, 1, 0), (81, 2, 1), (82, 4, 3)] {
        plane
            .set_service(
                service(IPPROTO_TCP, port),
                index,
                Scheduler::Maglev,
                &filled(slot),
                LB_TABLE_SIZE,
            )
            .unwrap();
    }
    plane
        .set_service(
            ServiceKey::new(VipKey::ipv6(frames::V6_VIP_LOCAL), IPPROTO_TCP, 80),
            2,
            Scheduler::Maglev,
            &filled(3),
            LB_TABLE_SIZE,
        )
        .unwrap();
}

/// A SYN flood from spoofed sources against established flows (issue #15): `established`
/// flows are set up on real server 1, the service's table then moves every slot to real
/// server 2 (as a reweight or a join can move some), and `flood_syns` SYNs from distinct
/// spoofed sources follow. A flow that `FLOWS` still remembers stays on real server 1; one
/// the flood evicted follows the table to 2, which for a TCP connection is a reset. Run
/// without a flow budget and with one (`flow_insert_rate`), each on a fresh program.
fn syn_flood(scale: &Scale, pins: &Pins) {
    for budget in [0, 20_000] {
        let iface = format!("flood{budget}");
        let mut ebpf = dataplane::load(&iface, Some(&pins.root.join(&iface))).expect("load");
        let mut plane = Dataplane::open_pinned(&iface, &pins.root).expect("open the pins");
        plane
            .set_vip(ip4(VIP), Ownership::Local { vrid: 51 })
            .unwrap();
        for n in 1..=2 {
            plane.set_real(n, real(n, 1, REAL_ALIVE)).unwrap();
        }
        plane.set_flow_insert_rate(budget).unwrap();
        let key = service(IPPROTO_TCP, 80);
        plane
            .set_service(key, 0, Scheduler::Maglev, &filled(1), LB_TABLE_SIZE)
            .unwrap();
        let program = dataplane::program_mut(&mut ebpf, &iface).unwrap();
        for port in 0..scale.flood_established {
            run_ns(program, &segment(80, 20_000 + port, 0x02), 1, XDP_TX);
        }
        plane
            .set_service(key, 0, Scheduler::Maglev, &filled(2), LB_TABLE_SIZE)
            .unwrap();
        let started = Instant::now();
        for i in 0..scale.flood_syns {
            let [a, b, c, d] = i.to_be_bytes();
            let mut syn = tcp(u16::from_be_bytes([c, d]), 80, b"");
            syn[13] = 0x02;
            let source = [198, 51, a.wrapping_add(100), b];
            let frame = eth(None, 0x0800, &ipv4(source, VIP, IPPROTO_TCP, 64, &syn));
            run_ns(program, &frame, 1, XDP_TX);
        }
        let flood_for = started.elapsed();
        let kept = (0..scale.flood_established)
            .filter(|port| {
                let mut out = vec![0u8; 128];
                let frame = segment(80, 20_000 + port, 0x10);
                let result = program
                    .test_run(TestRunOptions {
                        data_in: Some(&frame),
                        data_out: Some(&mut out),
                        ..TestRunOptions::default()
                    })
                    .expect("BPF_PROG_TEST_RUN");
                assert_eq!(result.return_value, XDP_TX);
                out[..6] == real(1, 1, REAL_ALIVE).dst_mac
            })
            .count();
        println!(
            "flood flow_insert_rate={budget} established={} spoofed_syns={} seconds={:.2} \
             established_kept={kept} not_remembered={} flows_now={}",
            scale.flood_established,
            scale.flood_syns,
            flood_for.as_secs_f64(),
            plane.flows_not_remembered().unwrap(),
            plane.flow_count().unwrap(),
        );
    }
}

/// Medians over the rounds of the kernel-reported mean per run, `program` and `pass`
/// measured in turn each round so that both see the same moment of a shared machine.
fn alternate(program: &Xdp, pass: &Xdp, frame: &[u8], verdict: u32, scale: &Scale) -> (f64, f64) {
    let mut ours = Vec::new();
    let mut base = Vec::new();
    for _ in 0..scale.rounds {
        base.push(run_ns(pass, frame, scale.repeat, XDP_PASS));
        ours.push(run_ns(program, frame, scale.repeat, verdict));
    }
    (median(ours), median(base))
}

fn print_path(name: &str, ours: f64, base: f64) {
    println!(
        "lb path={name} ns_per_packet={ours:.1} ratio={:.2}",
        ours / base
    );
    println!("lb path=minimal_pass_for_{name} ns_per_packet={base:.1} ratio=1.00");
}

/// The kernel-reported mean duration of one run, checking the verdict.
fn run_ns(program: &Xdp, frame: &[u8], repeat: u32, verdict: u32) -> f64 {
    let result = program
        .test_run(TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::default()
        })
        .expect("BPF_PROG_TEST_RUN");
    assert_eq!(
        result.return_value, verdict,
        "unexpected verdict while benchmarking"
    );
    // Whole nanoseconds, as the kernel reports them.
    result.duration.as_secs_f64() * 1e9
}

fn real(n: u16, generation: u32, flags: u8) -> RealEntry {
    let [hi, lo] = n.to_be_bytes();
    RealEntry::direct(
        1,
        generation,
        [0x02, 0x5e, 0, 0, hi, lo],
        [0x02, 0xaa, 0, 0, 0, 0x10],
        flags,
    )
}

/// A TCP segment with `flags` from the client to `VIP:port`.
fn segment(port: u16, client_port: u16, flags: u8) -> Vec<u8> {
    let mut segment = tcp(client_port, port, b"");
    segment[13] = flags;
    eth(
        None,
        0x0800,
        &ipv4(V4_CLIENT, VIP, IPPROTO_TCP, 64, &segment),
    )
}

/// A 60-byte UDP frame from the client to `dst:port`.
fn udp4(dst: [u8; 4], port: u16, client_port: u16) -> Vec<u8> {
    eth(
        None,
        0x0800,
        &ipv4(
            V4_CLIENT,
            dst,
            IPPROTO_UDP,
            255,
            &udp(client_port, port, &[0; 18]),
        ),
    )
}

fn service(protocol: u8, port: u16) -> ServiceKey {
    ServiceKey::new(VipKey::ipv4(VIP), protocol, port)
}

/// `count` real servers at REALS 1..=count, weights 1 to 4 in turn. Their addresses are
/// only hashed, never reached: `2001:db8::1:<n>`, documentation space with room for them all.
fn backends(count: u16) -> Vec<Backend> {
    (1..=count)
        .map(|n| Backend {
            address: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, n)),
            real: n,
            weight: u32::from(n % 4 + 1),
        })
        .collect()
}

/// A table with every slot on `real`.
fn filled(real: u16) -> Box<LbTable> {
    let mut table = table::new_table();
    table.slots.fill(real);
    table
}

// Part 2: forwarding through a director on veth.

/// The three namespaces: `gen` (g0) — (d0) `dir` (d1) — (r0) `rs`.
struct Topology {
    generator: Netns,
    director: Netns,
    server: Netns,
    g0: u32,
    d1: u32,
    g0_mac: [u8; 6],
    d0_mac: [u8; 6],
    d1_mac: [u8; 6],
    r0_mac: [u8; 6],
}

/// What one generation period delivered, in packets per second.
struct Delivered {
    /// Sent by the generator, per second of wall time.
    offered: f64,
    /// Counted at the real server, per second of wall time.
    received: f64,
    /// Counted at the real server, per second inside the live-frames loops (the time the
    /// kernel reports, which covers the softirq work each batch triggers on this CPU),
    /// without each call's set-up and tear-down.
    received_busy: f64,
}

fn forwarding(scale: &Scale, pins: &Pins) {
    let topo = Topology::new();
    let gen_root = pins.root.join("gen");
    let lb_root = pins.root.join("dir-lb");
    let pass_root = pins.root.join("dir-pass");
    let rs_root = pins.root.join("rs");

    // The generator: the vipflip program (never attached), whose `Forward` path turns each
    // frame into an XDP_TX out of g0 towards the director, run in live-frames mode.
    let mut gen_ebpf =
        dataplane::load("g0", Some(&gen_root.join("g0"))).expect("load the generator");
    let mut gen_plane = Dataplane::open_pinned("g0", &gen_root).expect("open generator maps");
    let towards_director = Ownership::Forward {
        vrid: 51,
        ifindex: topo.g0,
        dst_mac: topo.d0_mac,
        src_mac: topo.g0_mac,
    };
    for dst in [VIP, REAL_ADDR] {
        gen_plane.set_vip(ip4(dst), towards_director).unwrap();
    }
    let generator = dataplane::program_mut(&mut gen_ebpf, "g0").unwrap();

    // The real server: the vipflip program on r0 dropping (and counting) both destinations,
    // so the count is exact and the receiving stack costs nothing on either path.
    let mut rs_plane = topo.server.run(|| {
        Dataplane::attach("r0", &rs_root, XdpModeChoice::Driver)
            .expect("attach the counter on r0")
            .0
    });
    for dst in [VIP, REAL_ADDR] {
        rs_plane
            .set_vip(ip4(dst), Ownership::Drop { vrid: 51 })
            .unwrap();
    }

    let lb_frame = udp4(VIP, UDP_PORT, 40000);
    let kernel_frame = udp4(REAL_ADDR, UDP_PORT, 40000);
    let mut kernel = Vec::new();
    let mut balanced = Vec::new();
    for _ in 0..scale.forward_rounds {
        // The kernel routes: d0 runs only `pass` (veth delivers XDP frames only to a peer
        // in NAPI mode, which an XDP program turns on), ip_forward does the rest.
        topo.director.run(|| {
            dataplane::attach_pass("d0", &pass_root).expect("attach pass on d0");
        });
        let count = || rs_plane.stats().unwrap().vip_drop;
        kernel.push(generate(
            &topo,
            generator,
            &kernel_frame,
            scale,
            &gen_plane,
            count,
        ));
        remove(&pass_root.join("d0"));

        // vipflip balances: d0 runs the program with the service, redirecting to d1.
        let mut director = topo.director.run(|| {
            Dataplane::attach("d0", &lb_root, XdpModeChoice::Driver)
                .expect("attach vipflip on d0")
                .0
        });
        configure_director(&mut director, &topo);
        balanced.push(generate(
            &topo, generator, &lb_frame, scale, &gen_plane, count,
        ));
        assert!(
            director.stats().unwrap().lb_forward_redirect > 0,
            "the director balanced nothing"
        );
        drop(director);
        std::fs::remove_file(lb_root.join("d0/link")).expect("detach vipflip from d0");
    }
    assert!(
        rs_plane.stats().unwrap().vip_drop > 0,
        "nothing reached the real server"
    );
    let hdr_errors = ip_in_hdr_errors(&topo.director);
    let report = |name: &str, runs: &[Delivered]| -> (f64, f64) {
        let received = median(runs.iter().map(|d| d.received).collect());
        let offered = median(runs.iter().map(|d| d.offered).collect());
        let busy = median(runs.iter().map(|d| d.received_busy).collect());
        println!(
            "forward path={name} rounds={} seconds_per_round={:.1} offered_pps={offered:.0} \
             received_pps={received:.0} received_busy_pps={busy:.0}",
            runs.len(),
            scale.forward_for.as_secs_f64()
        );
        (received, busy)
    };
    let kernel = report("kernel_ip_forward", &kernel);
    // Frames the director refused as malformed or out of TTL over the whole run (0 expected).
    println!("forward director_ip_in_hdr_errors={hdr_errors}");
    let ours = report("vipflip_lb_redirect", &balanced);
    println!(
        "forward ratio_vipflip_to_kernel received={:.2} received_busy={:.2}",
        ours.0 / kernel.0,
        ours.1 / kernel.1
    );
}

/// `Ip: InHdrErrors` of `ns` (bad headers, and TTL expired on forwarding).
fn ip_in_hdr_errors(ns: &Netns) -> u64 {
    let snmp = ns.exec(&["cat", "/proc/net/snmp"]);
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (Some(names), Some(values)) = (ip.next(), ip.next()) else {
        panic!("no Ip lines in /proc/net/snmp: {snmp}");
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "InHdrErrors")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or_else(|| panic!("no InHdrErrors in /proc/net/snmp: {snmp}"))
}

/// The service on the director: UDP VIP:7777 on one real server, r0, reached through d1.
fn configure_director(plane: &mut Dataplane, topo: &Topology) {
    plane
        .set_vip(ip4(VIP), Ownership::Local { vrid: 51 })
        .unwrap();
    plane
        .set_real(
            1,
            RealEntry::direct(topo.d1, 1, topo.r0_mac, topo.d1_mac, REAL_ALIVE),
        )
        .unwrap();
    plane
        .set_service(
            ServiceKey::new(VipKey::ipv4(VIP), IPPROTO_UDP, UDP_PORT),
            0,
            Scheduler::Maglev,
            &filled(1),
            LB_TABLE_SIZE,
        )
        .unwrap();
}

/// Sends `frame` from the generator for `scale.forward_for` and counts what reached the
/// real server (`received`, read before and after, once the queues have drained).
fn generate(
    topo: &Topology,
    generator: &Xdp,
    frame: &[u8],
    scale: &Scale,
    gen_plane: &Dataplane,
    received: impl Fn() -> u64,
) -> Delivered {
    let frame_len = u32::try_from(frame.len()).unwrap();
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
    // egress_ifindex. XDP_TX in live-frames mode goes out of the ingress interface.
    let ctx: Vec<u8> = [0, frame_len, 0, topo.g0, 0, 0]
        .iter()
        .flat_map(|w: &u32| w.to_ne_bytes())
        .collect();
    let sent_before = gen_plane.stats().unwrap().vip_forward_tx;
    let received_before = received();
    let (elapsed, busy) = topo.generator.run(|| {
        stay_on_this_cpu();
        let start = Instant::now();
        let mut busy = Duration::ZERO;
        while start.elapsed() < scale.forward_for {
            let result = generator
                .test_run(TestRunOptions {
                    data_in: Some(frame),
                    ctx_in: Some(&ctx),
                    repeat: scale.live_repeat,
                    attrs: TestRunAttrs::new().xdp_live_frames(LIVE_BATCH),
                    ..TestRunOptions::default()
                })
                .expect("BPF_PROG_TEST_RUN with live frames");
            // The kernel reports the mean per frame.
            busy += result.duration * scale.live_repeat;
        }
        (start.elapsed(), busy)
    });
    // What is still in a veth ring gets through within a few NAPI polls.
    std::thread::sleep(Duration::from_millis(100));
    let sent = gen_plane.stats().unwrap().vip_forward_tx - sent_before;
    let got = received() - received_before;
    #[expect(clippy::cast_precision_loss, reason = "packet counts far below 2^52")]
    Delivered {
        offered: sent as f64 / elapsed.as_secs_f64(),
        received: got as f64 / elapsed.as_secs_f64(),
        received_busy: got as f64 / busy.as_secs_f64(),
    }
}

impl Topology {
    fn new() -> Self {
        let generator = Netns::new("lbb-gen");
        let director = Netns::new("lbb-dir");
        let server = Netns::new("lbb-rs");
        veth(&generator, "g0", &director, "d0");
        veth(&director, "d1", &server, "r0");
        generator.ip(&["addr", "add", "192.0.2.2/24", "dev", "g0"]);
        director.ip(&["addr", "add", "192.0.2.1/24", "dev", "d0"]);
        director.ip(&["addr", "add", "198.51.100.1/24", "dev", "d1"]);
        server.ip(&["addr", "add", "198.51.100.21/24", "dev", "r0"]);
        for key in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.d0.rp_filter=0",
        ] {
            director.exec(&["sysctl", "-qw", key]);
        }
        let r0_mac = server.mac("r0");
        let r0_mac_text = r0_mac.map(|b| format!("{b:02x}")).join(":");
        director.ip(&[
            "neigh",
            "replace",
            "198.51.100.21",
            "lladdr",
            &r0_mac_text,
            "nud",
            "permanent",
            "dev",
            "d1",
        ]);
        Self {
            g0: generator.ifindex("g0"),
            d1: director.ifindex("d1"),
            g0_mac: generator.mac("g0"),
            d0_mac: director.mac("d0"),
            d1_mac: director.mac("d1"),
            r0_mac,
            generator,
            director,
            server,
        }
    }
}

/// A network namespace of this run, deleted (with its interfaces) on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(prefix: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id());
        sh("ip", &["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    fn exec(&self, command: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.name.as_str()];
        all.extend_from_slice(command);
        sh("ip", &all)
    }

    fn mac(&self, iface: &str) -> [u8; 6] {
        let text = self.ip(&["-br", "link", "show", iface]);
        let bytes: Vec<u8> = text
            .split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no MAC in {text:?}"))
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).expect("hex MAC"))
            .collect();
        bytes.try_into().expect("6-byte MAC")
    }

    fn ifindex(&self, iface: &str) -> u32 {
        let text = self.ip(&["-o", "link", "show", iface]);
        text.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no ifindex in {text:?}"))
    }

    /// Runs `f` on a thread inside this namespace (interface names and indices resolve
    /// there; BPF objects do not belong to a namespace).
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let ns = std::fs::File::open(format!("/run/netns/{}", self.name))
                        .expect("open the namespace");
                    // SAFETY: a valid namespace fd; only this thread changes namespace.
                    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                    f()
                })
                .join()
                .expect("namespace thread panicked")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    sh(
        "ip",
        &[
            "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
            &b.name,
        ],
    );
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// Part 3: table rebuild.

/// A table builder of `vipflip::lb::table`.
type Build = fn(&[Backend], &mut LbTable) -> u32;

fn rebuild(scale: &Scale, pins: &Pins) {
    let iface = "rebuild";
    drop(dataplane::load(iface, Some(&pins.root.join(iface))).expect("load with pins"));
    let mut plane = Dataplane::open_pinned(iface, &pins.root).expect("open the pinned maps");
    let backends = backends(SERVERS);
    let mut table = table::new_table();
    let builders: [(&str, Scheduler, Build); 2] = [
        ("maglev", Scheduler::Maglev, table::maglev),
        ("wrr", Scheduler::Wrr, table::wrr),
    ];
    for (name, scheduler, build) in builders {
        let mut builds = Vec::new();
        let mut writes = Vec::new();
        let mut len = 0;
        for _ in 0..scale.rebuild_runs {
            let start = Instant::now();
            len = build(&backends, &mut table);
            builds.push(start.elapsed());
            let start = Instant::now();
            plane
                .set_service(service(IPPROTO_UDP, 53), 0, scheduler, &table, len)
                .expect("set_service");
            writes.push(start.elapsed());
        }
        println!(
            "rebuild scheduler={name} servers={SERVERS} slots_used={len} runs={} \
             build_median_us={:.0} build_min_us={:.0} write_median_us={:.0} \
             write_bytes={}",
            scale.rebuild_runs,
            median_us(&builds),
            builds.iter().min().unwrap().as_secs_f64() * 1e6,
            median_us(&writes),
            size_of::<LbTable>(),
        );
    }
}

fn median_us(samples: &[Duration]) -> f64 {
    median(samples.iter().map(|d| d.as_secs_f64() * 1e6).collect())
}

// Shared.

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn ip4(octets: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(octets))
}

/// This run's pins, on a bpffs of its own: the process gets a private mount namespace with a
/// fresh bpffs on /sys/fs/bpf, so what the machine has mounted is neither needed nor touched.
/// Removed on drop (removing a link pin detaches).
struct Pins {
    root: PathBuf,
}

impl Pins {
    fn new() -> Self {
        let root = PathBuf::from("/sys/fs/bpf/vipflip-lb-bench");
        vipflip_bpffs::fresh_bpffs_on_sys_fs_bpf(&root)
            .unwrap_or_else(|e| panic!("a bpffs for the pins: {e}"));
        Self { root }
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        remove(&self.root);
    }
}

fn remove(path: &Path) {
    let _ = std::fs::remove_dir_all(path);
}
