//! The XDP benchmark (`cargo xtask bench xdp`): per-packet cost of each path through
//! `BPF_PROG_TEST_RUN` next to the minimal `pass` program, and the cost of one owner flip
//! (a `VIPS` update) seen from userspace.
//!
//! Run by `cargo bench` (with `--bench`), it measures for real and prints one line per path:
//! `xdp path=<name> ns_per_packet=<x> ratio=<r>`. Run by `cargo test --all-targets` (no
//! `--bench`), it does a quick smoke run of every path, so the benchmark keeps working.
//! Needs root.

#[path = "../tests/frames/mod.rs"]
#[expect(
    dead_code,
    reason = "shared with the kernel tests, which use more of it"
)]
mod frames;

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use aya::{
    Ebpf,
    maps::{Array, HashMap},
    programs::{TestRun, TestRunOptions, Xdp},
};
use frames::{
    V4_CLIENT, V4_PEER, V4_VIP_FORWARD_TX, V4_VIP_LOCAL, V4_VRRP_GROUP, eth, ipv4, vrrp_v3,
};
use vipflip::dataplane::{self, Ownership};
use vipflip_common::{FAMILY_IPV4, VipEntry, VipKey, VridEntry, VridKey, vip_filter_bit};

const ROUNDS: usize = 7;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Never a silent pass: `cargo xtask test` leaves this target out without root, and
        // counts it as skipped.
        eprintln!("the xdp benchmark needs root (BPF_PROG_TEST_RUN): run it as root");
        std::process::exit(2);
    }
    let (repeat, flips) = if full {
        (1_000_000, 10_000)
    } else {
        (1_000, 100)
    };
    let mut ebpf = dataplane::load("bench", None).expect("load the XDP program");
    fill_maps(&mut ebpf);
    let mut pass_ebpf = Ebpf::load(dataplane::EBPF_OBJECT).expect("load the object");
    let pass: &mut Xdp = pass_ebpf
        .program_mut(dataplane::PASS_PROGRAM_NAME)
        .unwrap()
        .try_into()
        .unwrap();
    pass.load().expect("load the pass program");

    let a4 = V4_VIP_LOCAL.to_vec();
    let udp = [0u8; 26];
    let paths: [(&str, Vec<u8>, u32); 5] = [
        (
            "non_vip_ipv4",
            eth(
                None,
                0x0800,
                &ipv4(V4_CLIENT, [198, 51, 100, 9], 17, 64, &udp),
            ),
            2,
        ),
        (
            "vip_local",
            eth(None, 0x0800, &ipv4(V4_CLIENT, V4_VIP_LOCAL, 17, 64, &udp)),
            2,
        ),
        (
            "vip_forward",
            eth(
                None,
                0x0800,
                &ipv4(V4_CLIENT, V4_VIP_FORWARD_TX, 17, 64, &udp),
            ),
            3,
        ),
        (
            "valid_advert",
            eth(
                None,
                0x0800,
                &ipv4(
                    V4_PEER,
                    V4_VRRP_GROUP,
                    112,
                    255,
                    &vrrp_v3(51, 100, 1, 100, &a4),
                ),
            ),
            2,
        ),
        (
            "invalid_advert",
            eth(
                None,
                0x0800,
                &ipv4(
                    V4_PEER,
                    V4_VRRP_GROUP,
                    112,
                    64,
                    &vrrp_v3(51, 100, 1, 100, &a4),
                ),
            ),
            1,
        ),
    ];
    let program = dataplane::program_mut(&mut ebpf, "bench").unwrap();
    for (name, frame, verdict) in &paths {
        let base = median_ns(pass, frame, repeat, 2);
        let ours = median_ns(program, frame, repeat, *verdict);
        println!(
            "xdp path={name} ns_per_packet={ours:.1} ratio={:.2}",
            ours / base
        );
        println!("xdp path=minimal_pass_for_{name} ns_per_packet={base:.1} ratio=1.00");
    }
    flip(flips);
}

/// Median over `ROUNDS` of the kernel-reported mean time per run, checking the verdict.
fn median_ns(program: &Xdp, frame: &[u8], repeat: u32, verdict: u32) -> f64 {
    let mut samples: Vec<f64> = (0..ROUNDS)
        .map(|_| {
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
            // The kernel reports the mean duration of one run, in whole nanoseconds.
            result.duration.as_secs_f64() * 1e9
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[ROUNDS / 2]
}

/// Times `count` owner flips (alternating local / forward) through the pinned-map API.
fn flip(count: usize) {
    let root = tempdir_on_bpffs();
    let iface = "lo";
    // Load without attaching: pin the maps, then open them the way the agent does.
    let ebpf = dataplane::load(iface, Some(&root.join(iface))).expect("load with pins");
    drop(ebpf);
    let mut plane = dataplane::Dataplane::open_pinned(iface, &root).expect("open pins");
    let vip: IpAddr = "192.0.2.100".parse().unwrap();
    let states = [
        Ownership::Local { vrid: 51 },
        Ownership::Forward {
            vrid: 51,
            ifindex: 1,
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_mac: [2, 0, 0, 0, 0, 1],
        },
    ];
    let mut samples: Vec<Duration> = (0..count)
        .map(|i| {
            let start = Instant::now();
            plane.set_vip(vip, states[i % 2]).expect("flip");
            start.elapsed()
        })
        .collect();
    samples.sort();
    // The per-mille-th sample, nearest-rank.
    let p = |per_mille: usize| {
        let rank = (samples.len() * per_mille)
            .div_ceil(1000)
            .clamp(1, samples.len());
        samples[rank - 1].as_nanos()
    };
    println!(
        "flip updates={count} p50_ns={} p99_ns={} max_ns={}",
        p(500),
        p(990),
        p(1000)
    );
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::process::Command::new("umount").arg(&root).status();
    let _ = std::fs::remove_dir(&root);
}

fn fill_maps(ebpf: &mut Ebpf) {
    let mut vips: HashMap<_, VipKey, VipEntry> =
        HashMap::try_from(ebpf.map_mut("VIPS").unwrap()).unwrap();
    vips.insert(VipKey::ipv4(V4_VIP_LOCAL), VipEntry::local(51), 0)
        .unwrap();
    vips.insert(
        VipKey::ipv4(V4_VIP_FORWARD_TX),
        VipEntry::forward(51, 1, [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1]),
        0,
    )
    .unwrap();
    // A realistic table: many other VIPs present.
    for i in 0..1000u32 {
        let [_, _, a, b] = i.to_be_bytes();
        vips.insert(VipKey::ipv4([198, 51, a, b]), VipEntry::drop(52), 0)
            .unwrap();
    }
    let keys: Vec<VipKey> = vips.keys().map(Result::unwrap).collect();
    let mut filter: Array<_, u64> = Array::try_from(ebpf.map_mut("VIP_FILTER").unwrap()).unwrap();
    for key in keys {
        let bit = vip_filter_bit(&key);
        let word = filter.get(&(bit / 64), 0).unwrap();
        filter.set(bit / 64, word | 1 << (bit % 64), 0).unwrap();
    }
    let mut vrids: HashMap<_, VridKey, VridEntry> =
        HashMap::try_from(ebpf.map_mut("VRIDS").unwrap()).unwrap();
    vrids
        .insert(
            VridKey::new(FAMILY_IPV4, 51),
            VridEntry {
                enforce_allow_list: 0,
                _pad: [0; 3],
            },
            0,
        )
        .unwrap();
}

/// The flip measurement's pins, on a bpffs of its own: the process gets a private mount
/// namespace with a fresh bpffs on /sys/fs/bpf, gone when it exits.
fn tempdir_on_bpffs() -> std::path::PathBuf {
    let root = std::path::PathBuf::from("/sys/fs/bpf/vipflip-bench");
    vipflip_bpffs::fresh_bpffs_on_sys_fs_bpf(&root)
        .unwrap_or_else(|e| panic!("a bpffs for the pins: {e}"));
    root
}
