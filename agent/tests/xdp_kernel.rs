//! The XDP program run in the kernel on crafted frames (`BPF_PROG_TEST_RUN`), no interface
//! needed: a table of {what, input frame, expected verdict, expected output frame, expected
//! counter deltas} (katran `testing/` style).
//!
//! Needs root (`CAP_BPF` + `CAP_NET_ADMIN`). Without it the tests say so and skip, except under
//! `CI=true`, where they fail: CI runs as root and must run them.

use std::net::IpAddr;

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, PerCpuArray},
    programs::{TestRun, TestRunOptions, Xdp},
};
use vipflip::dataplane::{self, Ownership};
use vipflip_common::{
    FAMILY_IPV4, FAMILY_IPV6, Outcome, PeerKey, Stats, VipEntry, VipKey, VridEntry, VridKey,
    VridStats, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX, vip_filter_bit, vrid_stats_index,
};

mod frames;
use frames::*;

/// Loopback: the ingress interface `BPF_PROG_TEST_RUN` gives an XDP program by default.
const LOOPBACK_IFINDEX: u32 = 1;
const OTHER_IFINDEX: u32 = 4242;
const OWNER_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x02];
const OUR_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x01];

fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: needs root for BPF_PROG_TEST_RUN, and CI must run it as root"
    );
    eprintln!("SKIPPED {test}: needs root (CAP_BPF, CAP_NET_ADMIN) for BPF_PROG_TEST_RUN");
    false
}

/// The program loaded (unattached) with maps filled as in a two-VRID lab.
struct Harness {
    ebpf: Ebpf,
}

impl Harness {
    fn new() -> Self {
        let ebpf = dataplane::load("test", None).expect("load the XDP program");
        let mut harness = Self { ebpf };
        harness.vips(|vips| {
            for (addr, entry) in [
                (V4_VIP_LOCAL, VipEntry::local(51)),
                (
                    V4_VIP_FORWARD_TX,
                    VipEntry::forward(51, LOOPBACK_IFINDEX, OWNER_MAC, OUR_MAC),
                ),
                (
                    V4_VIP_FORWARD_REDIRECT,
                    VipEntry::forward(51, OTHER_IFINDEX, OWNER_MAC, OUR_MAC),
                ),
                (V4_VIP_DROP, VipEntry::drop(51)),
            ] {
                vips.insert(VipKey::ipv4(addr), entry, 0).unwrap();
            }
            for (addr, entry) in [
                (V6_VIP_LOCAL, VipEntry::local(51)),
                (
                    V6_VIP_FORWARD_TX,
                    VipEntry::forward(51, LOOPBACK_IFINDEX, OWNER_MAC, OUR_MAC),
                ),
                (V6_VIP_DROP, VipEntry::drop(51)),
            ] {
                vips.insert(VipKey::ipv6(addr), entry, 0).unwrap();
            }
        });
        let keys: Vec<VipKey> =
            HashMap::<_, VipKey, VipEntry>::try_from(harness.ebpf.map("VIPS").unwrap())
                .unwrap()
                .keys()
                .map(Result::unwrap)
                .collect();
        for key in keys {
            harness.set_filter_bit(&key);
        }
        let mut vrids: HashMap<_, VridKey, VridEntry> =
            HashMap::try_from(harness.ebpf.map_mut("VRIDS").unwrap()).unwrap();
        let open = VridEntry {
            enforce_allow_list: 0,
            _pad: [0; 3],
        };
        let listed = VridEntry {
            enforce_allow_list: 1,
            _pad: [0; 3],
        };
        vrids
            .insert(VridKey::new(FAMILY_IPV4, 51), open, 0)
            .unwrap();
        vrids
            .insert(VridKey::new(FAMILY_IPV6, 51), open, 0)
            .unwrap();
        vrids
            .insert(VridKey::new(FAMILY_IPV4, ALLOW_LISTED_VRID), listed, 0)
            .unwrap();
        vrids
            .insert(VridKey::new(FAMILY_IPV6, ALLOW_LISTED_VRID), listed, 0)
            .unwrap();
        let mut peers: HashMap<_, PeerKey, u8> =
            HashMap::try_from(harness.ebpf.map_mut("PEERS").unwrap()).unwrap();
        let mut v4 = [0; 16];
        v4[..4].copy_from_slice(&V4_PEER);
        peers
            .insert(
                PeerKey {
                    family: FAMILY_IPV4,
                    vrid: ALLOW_LISTED_VRID,
                    _pad: [0; 2],
                    addr: v4,
                },
                1,
                0,
            )
            .unwrap();
        peers
            .insert(
                PeerKey {
                    family: FAMILY_IPV6,
                    vrid: ALLOW_LISTED_VRID,
                    _pad: [0; 2],
                    addr: V6_PEER,
                },
                1,
                0,
            )
            .unwrap();
        harness
    }

    fn vips(&mut self, f: impl FnOnce(&mut HashMap<&mut MapData, VipKey, VipEntry>)) {
        let mut vips = HashMap::try_from(self.ebpf.map_mut("VIPS").unwrap()).unwrap();
        f(&mut vips);
    }

    /// Sets `key`'s `VIP_FILTER` bit, as `Dataplane::set_vip` does for a new VIP.
    fn set_filter_bit(&mut self, key: &VipKey) {
        let mut filter: Array<_, u64> =
            Array::try_from(self.ebpf.map_mut("VIP_FILTER").unwrap()).unwrap();
        let bit = vip_filter_bit(key);
        let word = filter.get(&(bit / 64), 0).unwrap();
        filter.set(bit / 64, word | 1 << (bit % 64), 0).unwrap();
    }

    fn program(&mut self) -> &mut Xdp {
        dataplane::program_mut(&mut self.ebpf, "test").unwrap()
    }

    fn stats(&self) -> [u64; vipflip_common::STATS_COUNTERS as usize] {
        let stats: PerCpuArray<_, Stats> =
            PerCpuArray::try_from(self.ebpf.map("STATS").unwrap()).unwrap();
        let mut sum = [0; vipflip_common::STATS_COUNTERS as usize];
        for cpu in stats.get(&0, 0).unwrap().iter() {
            for (s, v) in sum.iter_mut().zip(cpu.as_array()) {
                *s += v;
            }
        }
        sum
    }

    fn vrid_stats(&self, family: u8, vrid: u8) -> VridStats {
        let stats: PerCpuArray<_, VridStats> =
            PerCpuArray::try_from(self.ebpf.map("VRID_STATS").unwrap()).unwrap();
        stats
            .get(&vrid_stats_index(family, vrid), 0)
            .unwrap()
            .iter()
            .fold(VridStats::default(), |a, v| VridStats {
                accepted: a.accepted + v.accepted,
                dropped: a.dropped + v.dropped,
            })
    }

    /// Runs one frame; returns (verdict, output frame).
    fn run(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>), aya::programs::ProgramError> {
        let mut out = vec![0u8; frame.len() + 256];
        let result = self.program().test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        })?;
        out.truncate(result.data_size_out as usize);
        Ok((result.return_value, out))
    }
}

/// One fixture.
struct Case {
    what: String,
    frame: Vec<u8>,
    verdict: u32,
    outcome: Outcome,
    /// `None`: the program must leave the frame untouched.
    out: Option<Vec<u8>>,
    /// (family, vrid, accepted, dropped) expected in `VRID_STATS`.
    vrid_delta: Option<(u8, u8, u64, u64)>,
}

fn check(harness: &mut Harness, case: &Case) {
    let before = harness.stats();
    let vrid_before = case.vrid_delta.map(|(f, v, ..)| harness.vrid_stats(f, v));
    let (verdict, out) = harness
        .run(&case.frame)
        .unwrap_or_else(|e| panic!("{}: BPF_PROG_TEST_RUN failed: {e}", case.what));
    let after = harness.stats();
    assert_eq!(verdict, case.verdict, "{}: verdict", case.what);
    let expected_out = case.out.as_ref().unwrap_or(&case.frame);
    assert_eq!(&out, expected_out, "{}: output frame", case.what);
    let mut expected = [0u64; vipflip_common::STATS_COUNTERS as usize];
    expected[case.outcome as usize] += 1;
    expected[(vipflip_common::VERDICT_BASE + case.verdict) as usize] += 1;
    let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(
        delta,
        expected,
        "{}: counter deltas (expected outcome {})",
        case.what,
        case.outcome.name()
    );
    if let (Some((family, vrid, accepted, dropped)), Some(before)) = (case.vrid_delta, vrid_before)
    {
        let now = harness.vrid_stats(family, vrid);
        assert_eq!(
            (now.accepted - before.accepted, now.dropped - before.dropped),
            (accepted, dropped),
            "{}: per-VRID counters",
            case.what
        );
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "a fixture table reads best as one list"
)]
fn vrrp_cases(vlan: Option<u16>) -> Vec<Case> {
    let tag = if vlan.is_some() { "tagged" } else { "untagged" };
    let mut cases = Vec::new();
    let mut push = |what: &str, frame: Vec<u8>, outcome: Outcome, vrid: Option<(u8, u8)>| {
        let verdict = if outcome == Outcome::VrrpAccepted {
            XDP_PASS
        } else {
            XDP_DROP
        };
        let vrid_delta = vrid.map(|(family, vrid)| {
            if outcome == Outcome::VrrpAccepted {
                (family, vrid, 1, 0)
            } else {
                (family, vrid, 0, 1)
            }
        });
        cases.push(Case {
            what: format!("{what} ({tag})"),
            frame,
            verdict,
            outcome,
            out: None,
            vrid_delta,
        });
    };
    let v4 = |advert: Vec<u8>, ttl: u8| {
        eth(
            vlan,
            0x0800,
            &ipv4(V4_PEER, V4_VRRP_GROUP, 112, ttl, &advert),
        )
    };
    let v6 = |advert: Vec<u8>, hop: u8| {
        eth(
            vlan,
            0x86dd,
            &ipv6(V6_PEER, V6_VRRP_GROUP, 112, hop, &advert),
        )
    };
    let a4 = V4_VIP_LOCAL.to_vec();
    let a6 = V6_VIP_LOCAL.to_vec();
    let (f4, f6) = (FAMILY_IPV4, FAMILY_IPV6);

    push(
        "v3/IPv4 valid advert",
        v4(vrrp_v3(51, 100, 1, 100, &a4), 255),
        Outcome::VrrpAccepted,
        Some((f4, 51)),
    );
    push(
        "v3/IPv6 valid advert",
        v6(vrrp_v3(51, 100, 1, 100, &a6), 255),
        Outcome::VrrpAccepted,
        Some((f6, 51)),
    );
    push(
        "v2/IPv4 valid advert",
        v4(vrrp_v2(51, 100, 1, 1, &a4), 255),
        Outcome::VrrpAccepted,
        Some((f4, 51)),
    );
    push(
        "v3/IPv4 two addresses",
        v4(
            vrrp_v3(51, 100, 2, 100, &[a4.clone(), a4.clone()].concat()),
            255,
        ),
        Outcome::VrrpAccepted,
        Some((f4, 51)),
    );
    push(
        "v3/IPv4 TTL 254",
        v4(vrrp_v3(51, 100, 1, 100, &a4), 254),
        Outcome::DropBadTtl,
        Some((f4, 51)),
    );
    push(
        "v3/IPv6 hop limit 1",
        v6(vrrp_v3(51, 100, 1, 100, &a6), 1),
        Outcome::DropBadTtl,
        Some((f6, 51)),
    );
    push(
        "v2/IPv4 TTL 64",
        v4(vrrp_v2(51, 100, 1, 1, &a4), 64),
        Outcome::DropBadTtl,
        Some((f4, 51)),
    );
    let mut v1 = vrrp_v3(51, 100, 1, 100, &a4);
    v1[0] = 0x11;
    push(
        "version 1",
        v4(v1, 255),
        Outcome::DropBadVersion,
        Some((f4, 51)),
    );
    let mut v4ver = vrrp_v3(51, 100, 1, 100, &a4);
    v4ver[0] = 0x41;
    push(
        "version 4",
        v4(v4ver, 255),
        Outcome::DropBadVersion,
        Some((f4, 51)),
    );
    push(
        "v2 over IPv6",
        v6(vrrp_v2(51, 100, 1, 1, &a6), 255),
        Outcome::DropBadVersion,
        Some((f6, 51)),
    );
    let mut t2 = vrrp_v3(51, 100, 1, 100, &a4);
    t2[0] = 0x32;
    push(
        "v3/IPv4 type 2",
        v4(t2.clone(), 255),
        Outcome::DropBadType,
        Some((f4, 51)),
    );
    push(
        "v3/IPv6 type 2",
        v6(
            {
                let mut a = vrrp_v3(51, 100, 1, 100, &a6);
                a[0] = 0x32;
                a
            },
            255,
        ),
        Outcome::DropBadType,
        Some((f6, 51)),
    );
    push(
        "v3/IPv4 count 2, one address",
        v4(vrrp_v3(51, 100, 2, 100, &a4), 255),
        Outcome::DropTruncated,
        Some((f4, 51)),
    );
    push(
        "v3/IPv6 count 1, 4 address bytes",
        v6(vrrp_v3(51, 100, 1, 100, &a4), 255),
        Outcome::DropTruncated,
        Some((f6, 51)),
    );
    let mut no_auth = vrrp_v2(51, 100, 1, 1, &a4);
    no_auth.truncate(no_auth.len() - 8);
    push(
        "v2/IPv4 without auth data",
        v4(no_auth, 255),
        Outcome::DropTruncated,
        Some((f4, 51)),
    );
    push(
        "VRRP header cut short",
        v4(vec![0x31, 51, 100], 255),
        Outcome::DropTruncated,
        None,
    );
    push(
        "v3/IPv4 count 0",
        v4(vrrp_v3(51, 100, 0, 100, &a4), 255),
        Outcome::DropZeroCount,
        Some((f4, 51)),
    );
    push(
        "v3/IPv6 count 0",
        v6(vrrp_v3(51, 100, 0, 100, &a6), 255),
        Outcome::DropZeroCount,
        Some((f6, 51)),
    );
    push(
        "v3/IPv4 interval 0",
        v4(vrrp_v3(51, 100, 1, 0, &a4), 255),
        Outcome::DropZeroInterval,
        Some((f4, 51)),
    );
    push(
        "v3/IPv6 interval 0",
        v6(vrrp_v3(51, 100, 1, 0, &a6), 255),
        Outcome::DropZeroInterval,
        Some((f6, 51)),
    );
    push(
        "v2/IPv4 interval 0",
        v4(vrrp_v2(51, 100, 1, 0, &a4), 255),
        Outcome::DropZeroInterval,
        Some((f4, 51)),
    );
    push(
        "v3/IPv4 unknown VRID",
        v4(vrrp_v3(77, 100, 1, 100, &a4), 255),
        Outcome::DropUnknownVrid,
        Some((f4, 77)),
    );
    push(
        "v3/IPv6 unknown VRID",
        v6(vrrp_v3(77, 100, 1, 100, &a6), 255),
        Outcome::DropUnknownVrid,
        Some((f6, 77)),
    );
    push(
        "v2/IPv4 unknown VRID",
        v4(vrrp_v2(200, 100, 1, 1, &a4), 255),
        Outcome::DropUnknownVrid,
        Some((f4, 200)),
    );
    push(
        "v3/IPv4 allowed peer",
        v4(vrrp_v3(ALLOW_LISTED_VRID, 100, 1, 100, &a4), 255),
        Outcome::VrrpAccepted,
        Some((f4, ALLOW_LISTED_VRID)),
    );
    push(
        "v3/IPv4 peer not allowed",
        eth(
            vlan,
            0x0800,
            &ipv4(
                V4_STRANGER,
                V4_VRRP_GROUP,
                112,
                255,
                &vrrp_v3(ALLOW_LISTED_VRID, 100, 1, 100, &a4),
            ),
        ),
        Outcome::DropPeerNotAllowed,
        Some((f4, ALLOW_LISTED_VRID)),
    );
    push(
        "v3/IPv6 allowed peer",
        v6(vrrp_v3(ALLOW_LISTED_VRID, 100, 1, 100, &a6), 255),
        Outcome::VrrpAccepted,
        Some((f6, ALLOW_LISTED_VRID)),
    );
    push(
        "v3/IPv6 peer not allowed",
        eth(
            vlan,
            0x86dd,
            &ipv6(
                V6_STRANGER,
                V6_VRRP_GROUP,
                112,
                255,
                &vrrp_v3(ALLOW_LISTED_VRID, 100, 1, 100, &a6),
            ),
        ),
        Outcome::DropPeerNotAllowed,
        Some((f6, ALLOW_LISTED_VRID)),
    );
    // Only the IP payload length counts: trailing Ethernet padding past it must not make a
    // short advert look long enough.
    let mut padded = v4(vrrp_v3(51, 100, 2, 100, &a4), 255);
    padded.extend_from_slice(&[0; 16]);
    push(
        "v3/IPv4 short advert with Ethernet padding",
        padded,
        Outcome::DropTruncated,
        Some((f4, 51)),
    );
    cases
}

#[expect(
    clippy::too_many_lines,
    reason = "a fixture table reads best as one list"
)]
fn vip_cases(vlan: Option<u16>) -> Vec<Case> {
    let tag = if vlan.is_some() { "tagged" } else { "untagged" };
    let mut cases = Vec::new();
    let udp = [
        0x30, 0x39, 0x00, 0x50, 0x00, 0x0c, 0x00, 0x00, b'p', b'i', b'n', b'g',
    ];
    let f4 = |dst: [u8; 4]| eth(vlan, 0x0800, &ipv4(V4_CLIENT, dst, 17, 64, &udp));
    let f6 = |dst: [u8; 16]| eth(vlan, 0x86dd, &ipv6(V6_CLIENT, dst, 17, 64, &udp));
    let simple = |what: &str, frame: Vec<u8>, verdict: u32, outcome: Outcome| Case {
        what: format!("{what} ({tag})"),
        frame,
        verdict,
        outcome,
        out: None,
        vrid_delta: None,
    };
    let rewritten = |frame: &[u8]| {
        let mut out = frame.to_vec();
        out[..6].copy_from_slice(&OWNER_MAC);
        out[6..12].copy_from_slice(&OUR_MAC);
        out
    };
    cases.push(simple(
        "IPv4 VIP local",
        f4(V4_VIP_LOCAL),
        XDP_PASS,
        Outcome::VipLocal,
    ));
    cases.push(simple(
        "IPv6 VIP local",
        f6(V6_VIP_LOCAL),
        XDP_PASS,
        Outcome::VipLocal,
    ));
    cases.push(simple(
        "IPv4 VIP drop",
        f4(V4_VIP_DROP),
        XDP_DROP,
        Outcome::VipDrop,
    ));
    cases.push(simple(
        "IPv6 VIP drop",
        f6(V6_VIP_DROP),
        XDP_DROP,
        Outcome::VipDrop,
    ));
    for (what, frame, verdict, outcome) in [
        (
            "IPv4 VIP forward on ingress (XDP_TX)",
            f4(V4_VIP_FORWARD_TX),
            XDP_TX,
            Outcome::VipForwardTx,
        ),
        (
            "IPv6 VIP forward on ingress (XDP_TX)",
            f6(V6_VIP_FORWARD_TX),
            XDP_TX,
            Outcome::VipForwardTx,
        ),
        (
            "IPv4 VIP forward elsewhere (redirect)",
            f4(V4_VIP_FORWARD_REDIRECT),
            XDP_REDIRECT,
            Outcome::VipForwardRedirect,
        ),
    ] {
        let out = Some(rewritten(&frame));
        cases.push(Case {
            what: format!("{what} ({tag})"),
            frame,
            verdict,
            outcome,
            out,
            vrid_delta: None,
        });
    }
    cases.push(simple(
        "IPv4 non-VIP",
        f4(V4_CLIENT),
        XDP_PASS,
        Outcome::PassOther,
    ));
    cases.push(simple(
        "IPv6 non-VIP",
        f6(V6_CLIENT),
        XDP_PASS,
        Outcome::PassOther,
    ));
    cases.push(simple(
        "ARP request for a dropped VIP",
        eth(vlan, 0x0806, &arp_request(V4_CLIENT, V4_VIP_DROP)),
        XDP_PASS,
        Outcome::PassArp,
    ));
    let ns = ipv6(V6_CLIENT, V6_VIP_DROP, 58, 255, &icmpv6(135, &V6_VIP_DROP));
    cases.push(simple(
        "IPv6 NS to a dropped VIP",
        eth(vlan, 0x86dd, &ns),
        XDP_PASS,
        Outcome::PassNeighbour,
    ));
    let na = ipv6(V6_CLIENT, V6_VIP_DROP, 58, 255, &icmpv6(136, &V6_VIP_DROP));
    cases.push(simple(
        "IPv6 NA to a dropped VIP",
        eth(vlan, 0x86dd, &na),
        XDP_PASS,
        Outcome::PassNeighbour,
    ));
    let echo = ipv6(V6_CLIENT, V6_VIP_DROP, 58, 64, &icmpv6(128, &[0; 4]));
    cases.push(simple(
        "IPv6 echo to a dropped VIP",
        eth(vlan, 0x86dd, &echo),
        XDP_DROP,
        Outcome::VipDrop,
    ));
    let hop_by_hop = ipv6(V6_CLIENT, V6_VIP_DROP, 0, 64, &[17, 0, 1, 4, 0, 0, 0, 0]);
    cases.push(simple(
        "IPv6 with extension header to a dropped VIP",
        eth(vlan, 0x86dd, &hop_by_hop),
        XDP_PASS,
        Outcome::PassIpv6ExtHeader,
    ));
    cases.push(simple(
        "other ethertype (LLDP)",
        eth(vlan, 0x88cc, &[0; 32]),
        XDP_PASS,
        Outcome::PassOther,
    ));
    let mut options = ipv4(V4_CLIENT, V4_VIP_DROP, 17, 64, &udp);
    insert_ipv4_options(&mut options, &[1, 1, 1, 0]);
    cases.push(simple(
        "IPv4 with options to a dropped VIP",
        eth(vlan, 0x0800, &options),
        XDP_DROP,
        Outcome::VipDrop,
    ));
    let mut bad_ihl = ipv4(V4_CLIENT, V4_VIP_DROP, 17, 64, &udp);
    bad_ihl[0] = 0x44;
    cases.push(simple(
        "IPv4 with IHL 4",
        eth(vlan, 0x0800, &bad_ihl),
        XDP_PASS,
        Outcome::PassMalformed,
    ));
    cases
}

#[test]
fn every_branch_in_the_kernel() {
    if !root_or_skip("every_branch_in_the_kernel") {
        return;
    }
    let mut harness = Harness::new();
    let mut count = 0;
    for vlan in [None, Some(100)] {
        for case in vrrp_cases(vlan).iter().chain(&vip_cases(vlan)) {
            check(&mut harness, case);
            count += 1;
        }
    }
    assert!(count > 80, "only {count} fixtures ran");
}

#[test]
fn truncated_frames_of_every_length() {
    if !root_or_skip("truncated_frames_of_every_length") {
        return;
    }
    let mut harness = Harness::new();
    let a4 = V4_VIP_LOCAL.to_vec();
    let a6 = V6_VIP_LOCAL.to_vec();
    for vlan in [None, Some(7)] {
        let l3 = if vlan.is_some() { 18 } else { 14 };
        let advert4 = eth(
            vlan,
            0x0800,
            &ipv4(
                V4_PEER,
                V4_VRRP_GROUP,
                112,
                255,
                &vrrp_v3(51, 100, 1, 100, &a4),
            ),
        );
        let advert6 = eth(
            vlan,
            0x86dd,
            &ipv6(
                V6_PEER,
                V6_VRRP_GROUP,
                112,
                255,
                &vrrp_v3(51, 100, 1, 100, &a6),
            ),
        );
        let vip4 = eth(vlan, 0x0800, &ipv4(V4_CLIENT, V4_VIP_DROP, 17, 64, &[0; 8]));
        for (name, full, ip_header) in [
            ("v3/IPv4 advert", &advert4, 20),
            ("v3/IPv6 advert", &advert6, 40),
            ("IPv4 to VIP", &vip4, 20),
        ] {
            for len in 0..full.len() {
                let frame = &full[..len];
                let what = format!(
                    "{name} cut to {len} of {} bytes (vlan {vlan:?})",
                    full.len()
                );
                if len < 14 {
                    // The kernel itself refuses XDP test frames shorter than an Ethernet header.
                    assert!(harness.run(frame).is_err(), "{what}: the kernel ran it");
                    continue;
                }
                let is_vrrp = name.contains("advert");
                let outcome = if len < l3 + ip_header {
                    Outcome::PassMalformed
                } else if is_vrrp {
                    Outcome::DropTruncated
                } else {
                    // The IPv4 header is whole: the VIP lookup needs nothing more.
                    Outcome::VipDrop
                };
                let verdict = if outcome == Outcome::PassMalformed {
                    XDP_PASS
                } else {
                    XDP_DROP
                };
                // A cut inside the VRRP header leaves no VRID to count against.
                let vrid_delta = (is_vrrp && len >= l3 + ip_header + 8).then(|| {
                    let family = if name.contains("IPv6") {
                        FAMILY_IPV6
                    } else {
                        FAMILY_IPV4
                    };
                    (family, 51, 0, 1)
                });
                check(
                    &mut harness,
                    &Case {
                        what,
                        frame: frame.to_vec(),
                        verdict,
                        outcome,
                        out: None,
                        vrid_delta,
                    },
                );
            }
        }
    }
}

#[test]
fn flipping_a_vip_is_one_map_update() {
    if !root_or_skip("flipping_a_vip_is_one_map_update") {
        return;
    }
    let mut harness = Harness::new();
    let frame = eth(None, 0x0800, &ipv4(V4_CLIENT, V4_VIP_DROP, 17, 64, &[0; 8]));
    assert_eq!(harness.run(&frame).unwrap().0, XDP_DROP);
    let vip = IpAddr::from(V4_VIP_DROP);
    let to_local = Ownership::Local { vrid: 51 };
    harness.vips(|vips| {
        vips.insert(VipKey::ipv4(V4_VIP_DROP), to_local.entry(), 0)
            .unwrap();
    });
    assert_eq!(
        harness.run(&frame).unwrap().0,
        XDP_PASS,
        "{vip} after flip to local"
    );
    let to_owner = Ownership::Forward {
        vrid: 51,
        ifindex: LOOPBACK_IFINDEX,
        dst_mac: OWNER_MAC,
        src_mac: OUR_MAC,
    };
    harness.vips(|vips| {
        vips.insert(VipKey::ipv4(V4_VIP_DROP), to_owner.entry(), 0)
            .unwrap();
    });
    let (verdict, out) = harness.run(&frame).unwrap();
    assert_eq!(
        (verdict, &out[..6], &out[6..12]),
        (XDP_TX, &OWNER_MAC[..], &OUR_MAC[..])
    );
    harness.vips(|vips| vips.remove(&VipKey::ipv4(V4_VIP_DROP)).unwrap());
    assert_eq!(
        harness.run(&frame).unwrap().0,
        XDP_PASS,
        "{vip} after removal"
    );
}

#[test]
fn the_vip_filter_gates_the_lookup() {
    if !root_or_skip("the_vip_filter_gates_the_lookup") {
        return;
    }
    let mut harness = Harness::new();
    // In VIPS but without its filter bit (written behind vipflip's back): not looked up.
    let hidden = [192, 0, 2, 200];
    harness.vips(|vips| {
        vips.insert(VipKey::ipv4(hidden), VipEntry::drop(51), 0)
            .unwrap();
    });
    let frame = eth(None, 0x0800, &ipv4(V4_CLIENT, hidden, 17, 64, &[0; 8]));
    check(
        &mut harness,
        &Case {
            what: "VIP without filter bit".into(),
            frame,
            verdict: XDP_PASS,
            outcome: Outcome::PassOther,
            out: None,
            vrid_delta: None,
        },
    );
    // Not a VIP, but sharing a filter bit with one: the lookup misses and it passes.
    // 2001:db8::1:102 folds like 2001:db8::103 (0x0001 ^ 0x0102 = 0x0103).
    let mut twin = V6_VIP_DROP;
    twin[12..].copy_from_slice(&[0, 1, 1, 2]);
    let vip_bit = vip_filter_bit(&VipKey::ipv6(V6_VIP_DROP));
    assert_eq!(
        vip_filter_bit(&VipKey::ipv6(twin)),
        vip_bit,
        "the twin must share the bit"
    );
    let frame = eth(None, 0x86dd, &ipv6(V6_CLIENT, twin, 17, 64, &[0; 8]));
    check(
        &mut harness,
        &Case {
            what: "non-VIP sharing a filter bit".into(),
            frame,
            verdict: XDP_PASS,
            outcome: Outcome::PassOther,
            out: None,
            vrid_delta: None,
        },
    );
}

/// Collects log records, for checking what the XDP program logs through aya-log.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }

    fn flush(&self) {}
}

#[test]
fn a_bad_vips_entry_is_passed_and_logged() {
    if !root_or_skip("a_bad_vips_entry_is_passed_and_logged") {
        return;
    }
    let mut harness = Harness::new();
    let capture = Capture::default();
    let mut logger = aya_log::EbpfLogger::init_with_logger(&mut harness.ebpf, capture.clone())
        .expect("the program has an aya-log buffer");
    let mut bad = VipEntry::local(51);
    bad.action = 9;
    harness.vips(|vips| vips.insert(VipKey::ipv4(V4_VIP_LOCAL), bad, 0).unwrap());
    let frame = eth(
        None,
        0x0800,
        &ipv4(V4_CLIENT, V4_VIP_LOCAL, 17, 64, &[0; 8]),
    );
    check(
        &mut harness,
        &Case {
            what: "bad VIPS entry".into(),
            frame,
            verdict: XDP_PASS,
            outcome: Outcome::VipBadEntry,
            out: None,
            vrid_delta: None,
        },
    );
    logger.flush();
    let records = capture.0.lock().unwrap().clone();
    assert_eq!(
        records,
        vec!["ERROR VIPS entry with action 9 ifindex 0 is invalid".to_owned()]
    );
}
