//! The XDP program run in the kernel on crafted frames (`BPF_PROG_TEST_RUN`), no interface
//! needed: a table of {what, input frame, expected verdict, expected output frame, expected
//! counter deltas} (katran `testing/` style).
//!
//! Needs root (`CAP_BPF` + `CAP_NET_ADMIN`). Without it the tests say so and skip, except under
//! `CI=true`, where they fail: CI runs as root and must run them.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, PerCpuArray},
    programs::{TestRun, TestRunOptions, Xdp},
};
use vipflip::dataplane::{self, Dataplane, Ownership};
use vipflip_common::{
    FAMILY_IPV4, FAMILY_IPV6, FlowKey, IPPROTO_TCP, IPPROTO_UDP, LB_TABLE_SIZE, LbTable, Outcome,
    PeerKey, REAL_ALIVE, RealEntry, Scheduler, ServiceEntry, ServiceKey, Stats, VIP_SERVICES,
    VipEntry, VipKey, VridEntry, VridKey, VridStats, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX,
    flow_hash, vip_filter_bit, vrid_stats_index,
};

mod frames;

mod cpu;

mod tunnel;

use cpu::stay_on_this_cpu;
use frames::*;

/// Loopback: the ingress interface `BPF_PROG_TEST_RUN` gives an XDP program by default.
const LOOPBACK_IFINDEX: u32 = 1;
const OTHER_IFINDEX: u32 = 4242;
const OWNER_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x02];
const OUR_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x01];

/// The program loaded (unattached) with maps filled as in a two-VRID lab.
struct Harness {
    ebpf: Ebpf,
}

impl Harness {
    fn new() -> Self {
        Self::load(None)
    }

    /// With `pin_dir`, the maps are pinned there, so a `Dataplane` can open them.
    fn load(pin_dir: Option<&Path>) -> Self {
        let ebpf = dataplane::load("test", pin_dir).expect("load the XDP program");
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
#[ignore = "needs root"]
fn every_branch_in_the_kernel() {
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
#[ignore = "needs root"]
fn truncated_frames_of_every_length() {
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
#[ignore = "needs root"]
fn flipping_a_vip_is_one_map_update() {
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
#[ignore = "needs root"]
fn the_vip_filter_gates_the_lookup() {
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
#[ignore = "needs root"]
fn a_bad_vips_entry_is_passed_and_logged() {
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

// Load balancing (Direct Routing): services on VIPs this host owns.

/// The source MAC the program writes towards real servers.
const LB_SRC_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x10];
/// The real whose interface is not the ingress one (`bpf_redirect`).
const REDIRECTED_REAL: u16 = 9;

/// Real server `n`'s MAC.
fn real_mac(n: u16) -> [u8; 6] {
    let [hi, lo] = n.to_be_bytes();
    [0x02, 0x5e, 0, 0, hi, lo]
}

fn real(n: u16, generation: u32) -> RealEntry {
    let ifindex = if n == REDIRECTED_REAL {
        OTHER_IFINDEX
    } else {
        LOOPBACK_IFINDEX
    };
    RealEntry::direct(ifindex, generation, real_mac(n), LB_SRC_MAC, REAL_ALIVE)
}

/// A lookup table with every slot on real `fill`, on the heap (131 KB).
fn table(fill: u16) -> Box<LbTable> {
    let slots: Box<[u16; LB_TABLE_SIZE as usize]> = vec![fill; LB_TABLE_SIZE as usize]
        .into_boxed_slice()
        .try_into()
        .unwrap();
    // SAFETY: `LbTable` is `repr(C)` with `slots` as its only field: the array's layout.
    unsafe { Box::from_raw(Box::into_raw(slots).cast::<LbTable>()) }
}

/// The Maglev / source-hash slot of a flow key, as the program computes it.
fn slot(key: &FlowKey) -> usize {
    (flow_hash(key) % LB_TABLE_SIZE) as usize
}

fn flow(
    family: u8,
    protocol: u8,
    client: &[u8],
    client_port: u16,
    vip: &[u8],
    port: u16,
) -> FlowKey {
    let mut src = [0; 16];
    src[..client.len()].copy_from_slice(client);
    let mut dst = [0; 16];
    dst[..vip.len()].copy_from_slice(vip);
    FlowKey {
        family,
        protocol,
        src_port: client_port.to_be_bytes(),
        dst_port: port.to_be_bytes(),
        _pad: [0; 2],
        src,
        dst,
    }
}

fn tcp4_key(client_port: u16) -> FlowKey {
    flow(
        FAMILY_IPV4,
        IPPROTO_TCP,
        &V4_CLIENT,
        client_port,
        &V4_VIP_LOCAL,
        80,
    )
}

fn tcp4(client_port: u16, vip: [u8; 4], port: u16) -> Vec<u8> {
    eth(
        None,
        0x0800,
        &ipv4(
            V4_CLIENT,
            vip,
            IPPROTO_TCP,
            64,
            &tcp(client_port, port, b"GET / HTTP/1.1"),
        ),
    )
}

fn udp4(client_port: u16, vip: [u8; 4], port: u16) -> Vec<u8> {
    eth(
        None,
        0x0800,
        &ipv4(
            V4_CLIENT,
            vip,
            IPPROTO_UDP,
            64,
            &udp(client_port, port, b"query"),
        ),
    )
}

fn tcp6(client_port: u16, vip: [u8; 16], port: u16) -> Vec<u8> {
    eth(
        None,
        0x86dd,
        &ipv6(
            V6_CLIENT,
            vip,
            IPPROTO_TCP,
            64,
            &tcp(client_port, port, b"GET / HTTP/1.1"),
        ),
    )
}

fn service4(protocol: u8, port: u16) -> ServiceKey {
    ServiceKey::new(VipKey::ipv4(V4_VIP_LOCAL), protocol, port)
}

/// A directory for one test's pins on a bpffs of the test's own: the test thread gets a
/// private mount namespace with a fresh bpffs on /sys/fs/bpf (what the machine has mounted
/// is neither needed nor touched), gone with the thread.
struct Pins {
    root: PathBuf,
}

impl Pins {
    fn new(test: &str) -> Self {
        let root = PathBuf::from(format!("/sys/fs/bpf/vipflip-kernel-test-{test}"));
        vipflip_bpffs::fresh_bpffs_on_sys_fs_bpf(&root)
            .unwrap_or_else(|e| panic!("{test}: a bpffs for the pins: {e}"));
        Self { root }
    }
}

/// The program with pinned maps, driven through `Dataplane` as the agent drives it: VIPs as
/// in [`Harness`], reals 1..=9 alive at generation 1 (9 on another interface).
struct Lb {
    harness: Harness,
    plane: Dataplane,
    pins: Pins,
}

impl Lb {
    fn new(test: &str) -> Self {
        stay_on_this_cpu();
        let pins = Pins::new(test);
        let harness = Harness::load(Some(&pins.root.join("test")));
        let mut plane = Dataplane::open_pinned("test", &pins.root).expect("open the pinned maps");
        for n in 1..=9 {
            plane.set_real(n, real(n, 1)).unwrap();
        }
        Self {
            harness,
            plane,
            pins,
        }
    }

    fn maglev(&mut self, key: ServiceKey, index: u16, table: &LbTable) -> ServiceEntry {
        self.plane
            .set_service(key, index, Scheduler::Maglev, table, LB_TABLE_SIZE)
            .unwrap()
    }

    /// Runs `frame`: it must go to real `to` (`XDP_TX`, or redirected for
    /// [`REDIRECTED_REAL`]) with only its MACs changed, counted as `outcome`.
    fn sent(&mut self, what: &str, frame: Vec<u8>, to: u16, outcome: Outcome) {
        let mut out = frame.clone();
        out[..6].copy_from_slice(&real_mac(to));
        out[6..12].copy_from_slice(&LB_SRC_MAC);
        let verdict = if to == REDIRECTED_REAL {
            XDP_REDIRECT
        } else {
            XDP_TX
        };
        check(
            &mut self.harness,
            &Case {
                what: what.to_owned(),
                frame,
                verdict,
                outcome,
                out: Some(out),
                vrid_delta: None,
            },
        );
    }

    /// `sent` for an ordinary flow frame.
    fn forwarded(&mut self, what: &str, frame: Vec<u8>, to: u16) {
        let outcome = if to == REDIRECTED_REAL {
            Outcome::LbForwardRedirect
        } else {
            Outcome::LbForwardTx
        };
        self.sent(what, frame, to, outcome);
    }

    /// Runs `frame`: it must come out untouched with `verdict`, counted as `outcome`.
    fn untouched(&mut self, what: &str, frame: Vec<u8>, verdict: u32, outcome: Outcome) {
        check(
            &mut self.harness,
            &Case {
                what: what.to_owned(),
                frame,
                verdict,
                outcome,
                out: None,
                vrid_delta: None,
            },
        );
    }
}

#[test]
#[ignore = "needs root"]
fn a_service_hit_goes_to_its_real_with_only_the_macs_changed() {
    let mut lb = Lb::new("hit");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(1));
    lb.maglev(service4(IPPROTO_UDP, 53), 1, &table(2));
    lb.maglev(
        ServiceKey::new(VipKey::ipv6(V6_VIP_LOCAL), IPPROTO_TCP, 443),
        2,
        &table(3),
    );
    lb.maglev(service4(IPPROTO_TCP, 8080), 3, &table(REDIRECTED_REAL));
    lb.forwarded("IPv4 TCP", tcp4(40000, V4_VIP_LOCAL, 80), 1);
    lb.forwarded("IPv4 UDP", udp4(40000, V4_VIP_LOCAL, 53), 2);
    lb.forwarded("IPv6 TCP", tcp6(40000, V6_VIP_LOCAL, 443), 3);
    lb.forwarded(
        "real on another interface",
        tcp4(40000, V4_VIP_LOCAL, 8080),
        REDIRECTED_REAL,
    );
    let tagged = eth(
        Some(100),
        0x0800,
        &ipv4(
            V4_CLIENT,
            V4_VIP_LOCAL,
            IPPROTO_TCP,
            64,
            &tcp(40001, 80, b"x"),
        ),
    );
    lb.forwarded("VLAN-tagged IPv4 TCP", tagged, 1);
    let services = lb.plane.services().unwrap();
    assert_eq!(services.len(), 4);
    assert!(
        services
            .iter()
            .all(|(_, e)| e.table == 0 && e.len == LB_TABLE_SIZE && e.scheduler == 1),
        "{services:?}"
    );
    assert_eq!(lb.plane.flow_count().unwrap(), 5, "one flow per 5-tuple");
    // The same flow again is a FLOWS hit, not a new flow.
    lb.forwarded("IPv4 TCP again", tcp4(40000, V4_VIP_LOCAL, 80), 1);
    assert_eq!(lb.plane.flow_count().unwrap(), 5);
}

/// The `VIPS` entry of `vip` as the program reads it.
fn vips_entry(lb: &Lb, vip: [u8; 4]) -> VipEntry {
    let data = MapData::from_pin(lb.pins.root.join("test").join("VIPS")).expect("VIPS pin");
    let vips: HashMap<MapData, VipKey, VipEntry> =
        HashMap::try_from(aya::maps::Map::HashMap(data)).expect("VIPS");
    vips.get(&VipKey::ipv4(vip), 0).expect("VIPS entry")
}

#[test]
#[ignore = "needs root"]
fn an_owned_vip_is_flagged_while_it_has_services_through_every_flip() {
    let mut lb = Lb::new("flag");
    let vip = IpAddr::from(V4_VIP_LOCAL);
    assert_eq!(vips_entry(&lb, V4_VIP_LOCAL).flags & VIP_SERVICES, 0);
    let (http, dns) = (service4(IPPROTO_TCP, 80), service4(IPPROTO_UDP, 53));
    lb.maglev(http, 0, &table(1));
    lb.maglev(dns, 1, &table(2));
    assert_eq!(
        vips_entry(&lb, V4_VIP_LOCAL).flags & VIP_SERVICES,
        VIP_SERVICES
    );
    // A flip to backup and back (what the election writes) keeps the flag, in one update each.
    lb.plane.set_vip(vip, Ownership::Drop { vrid: 51 }).unwrap();
    assert_eq!(
        vips_entry(&lb, V4_VIP_LOCAL).flags & VIP_SERVICES,
        VIP_SERVICES
    );
    lb.plane
        .set_vip(vip, Ownership::Local { vrid: 51 })
        .unwrap();
    lb.forwarded("balanced after the flips", tcp4(40000, V4_VIP_LOCAL, 80), 1);
    // The flag stays while one service is left, and goes with the last.
    lb.plane.remove_service(http).unwrap();
    assert_eq!(
        vips_entry(&lb, V4_VIP_LOCAL).flags & VIP_SERVICES,
        VIP_SERVICES
    );
    lb.plane.remove_service(dns).unwrap();
    assert_eq!(vips_entry(&lb, V4_VIP_LOCAL).flags & VIP_SERVICES, 0);
    lb.untouched(
        "no service left: delivered",
        tcp4(40000, V4_VIP_LOCAL, 80),
        XDP_PASS,
        Outcome::VipLocal,
    );
    // A re-opened data plane learns which VIPs have services from `SERVICES`.
    lb.maglev(http, 0, &table(1));
    let mut reopened = Dataplane::open_pinned("test", &lb.pins.root).expect("re-open");
    reopened
        .set_vip(vip, Ownership::Local { vrid: 51 })
        .unwrap();
    assert_eq!(
        vips_entry(&lb, V4_VIP_LOCAL).flags & VIP_SERVICES,
        VIP_SERVICES
    );
}

#[test]
#[ignore = "needs root"]
fn only_an_owned_vip_with_a_service_is_balanced() {
    let mut lb = Lb::new("owned");
    for (index, vip) in [V4_VIP_LOCAL, V4_VIP_DROP, V4_VIP_FORWARD_TX]
        .into_iter()
        .enumerate()
    {
        let key = ServiceKey::new(VipKey::ipv4(vip), IPPROTO_TCP, 80);
        lb.maglev(key, u16::try_from(index).unwrap(), &table(1));
    }
    lb.untouched(
        "owned VIP, port without a service",
        tcp4(40000, V4_VIP_LOCAL, 81),
        XDP_PASS,
        Outcome::VipLocal,
    );
    lb.untouched(
        "owned VIP, protocol without a service",
        udp4(40000, V4_VIP_LOCAL, 80),
        XDP_PASS,
        Outcome::VipLocal,
    );
    lb.untouched(
        "owned VIP, ICMP echo",
        eth(
            None,
            0x0800,
            &ipv4(V4_CLIENT, V4_VIP_LOCAL, 1, 64, &[8, 0, 0, 0, 0, 1, 0, 1]),
        ),
        XDP_PASS,
        Outcome::VipLocal,
    );
    lb.untouched(
        "backup dropping its VIP: the service is not used",
        tcp4(40000, V4_VIP_DROP, 80),
        XDP_DROP,
        Outcome::VipDrop,
    );
    let frame = tcp4(40000, V4_VIP_FORWARD_TX, 80);
    let mut to_owner = frame.clone();
    to_owner[..6].copy_from_slice(&OWNER_MAC);
    to_owner[6..12].copy_from_slice(&OUR_MAC);
    check(
        &mut lb.harness,
        &Case {
            what: "backup forwarding to the owner: the service is not used".into(),
            frame,
            verdict: XDP_TX,
            outcome: Outcome::VipForwardTx,
            out: Some(to_owner),
            vrid_delta: None,
        },
    );
    lb.untouched(
        "not a VIP",
        tcp4(40000, V4_STRANGER, 80),
        XDP_PASS,
        Outcome::PassOther,
    );
    assert_eq!(lb.plane.flow_count().unwrap(), 0);
    // Removing the service hands the VIP's traffic back to the local stack.
    lb.forwarded("with the service", tcp4(40000, V4_VIP_LOCAL, 80), 1);
    lb.plane.remove_service(service4(IPPROTO_TCP, 80)).unwrap();
    lb.plane.remove_service(service4(IPPROTO_TCP, 80)).unwrap();
    lb.untouched(
        "service removed",
        tcp4(40000, V4_VIP_LOCAL, 80),
        XDP_PASS,
        Outcome::VipLocal,
    );
}

#[test]
#[ignore = "needs root"]
fn port_zero_takes_the_ports_no_exact_service_has() {
    let mut lb = Lb::new("port0");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(1));
    lb.maglev(service4(IPPROTO_TCP, 0), 1, &table(2));
    lb.maglev(service4(IPPROTO_UDP, 0), 2, &table(3));
    lb.forwarded("exact port first", tcp4(40000, V4_VIP_LOCAL, 80), 1);
    lb.forwarded("TCP port 443: port 0", tcp4(40000, V4_VIP_LOCAL, 443), 2);
    lb.forwarded("TCP port 22: port 0", tcp4(40000, V4_VIP_LOCAL, 22), 2);
    lb.forwarded("UDP port 5353: port 0", udp4(40000, V4_VIP_LOCAL, 5353), 3);
    lb.untouched(
        "IPv6 VIP without services",
        tcp6(40000, V6_VIP_LOCAL, 80),
        XDP_PASS,
        Outcome::VipLocal,
    );
}

#[test]
#[ignore = "needs root"]
fn flows_stick_through_table_changes() {
    let mut lb = Lb::new("sticky");
    let key = service4(IPPROTO_TCP, 80);
    assert_eq!(
        lb.maglev(key, 0, &table(1)).table,
        0,
        "a new service: half 0"
    );
    lb.forwarded("flow A, first frame", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    // A's slot (every slot) now names real 2.
    assert_eq!(lb.maglev(key, 0, &table(2)).table, 1, "the other half");
    lb.forwarded("flow A after the swap", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    lb.forwarded("new flow B", tcp4(40002, V4_VIP_LOCAL, 80), 2);
    assert_eq!(lb.maglev(key, 0, &table(3)).table, 0, "back to half 0");
    lb.forwarded("flow A, second swap", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    lb.forwarded("flow B, second swap", tcp4(40002, V4_VIP_LOCAL, 80), 2);
    lb.forwarded("new flow C", tcp4(40003, V4_VIP_LOCAL, 80), 3);
    // Another service may not take this one's tables.
    let err = lb
        .plane
        .set_service(
            service4(IPPROTO_TCP, 81),
            0,
            Scheduler::Maglev,
            &table(4),
            1,
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("in use by service tcp 192.0.2.100:80"),
        "{err}"
    );
}

/// A TCP segment from the client with SYN set (and ACK clear): a connection opening.
fn syn4(client_port: u16) -> Vec<u8> {
    let mut frame = tcp4(client_port, V4_VIP_LOCAL, 80);
    // Ethernet (14) + IPv4 (20) + TCP flags at 13.
    frame[14 + 20 + 13] = 0x02;
    frame
}

#[test]
#[ignore = "needs root"]
fn a_syn_follows_the_table_not_a_remembered_flow() {
    let mut lb = Lb::new("syn");
    let key = service4(IPPROTO_TCP, 80);
    lb.maglev(key, 0, &table(1));
    lb.forwarded("an earlier connection from port 40001", syn4(40001), 1);
    lb.forwarded("its data", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    lb.maglev(key, 0, &table(2));
    lb.forwarded(
        "the earlier connection's data stays",
        tcp4(40001, V4_VIP_LOCAL, 80),
        1,
    );
    // The client reuses port 40001 for a new connection: the table decides, and the
    // remembered flow now names the new choice.
    lb.forwarded("a new connection on the reused port", syn4(40001), 2);
    lb.forwarded("its data follows it", tcp4(40001, V4_VIP_LOCAL, 80), 2);
}

/// A CPU remembers at most `flow_insert_rate` new flows a second: past it new flows are
/// still sent where the table says, but not remembered, and counted; the remembered ones
/// keep their server when the table changes, the others follow the table.
#[test]
#[ignore = "needs root"]
fn a_spent_flow_budget_sends_new_flows_without_remembering_them() {
    let mut lb = Lb::new("budget");
    let key = service4(IPPROTO_TCP, 80);
    lb.plane.set_flow_insert_rate(3).unwrap();
    lb.maglev(key, 0, &table(1));
    let before = lb.plane.flow_count().unwrap();
    for port in 41001..=41005 {
        lb.forwarded(&format!("new flow from {port}"), syn4(port), 1);
    }
    assert_eq!(
        lb.plane.flow_count().unwrap() - before,
        3,
        "three remembered"
    );
    assert_eq!(lb.plane.flows_not_remembered().unwrap(), 2, "two counted");
    lb.maglev(key, 0, &table(2));
    for port in 41001..=41003 {
        lb.forwarded(
            &format!("remembered flow from {port}: its server"),
            tcp4(port, V4_VIP_LOCAL, 80),
            1,
        );
    }
    // Their frames are new flows again, the budget spent: sent by the table.
    for port in 41004..=41005 {
        lb.forwarded(
            &format!("unremembered flow from {port}: the table's"),
            tcp4(port, V4_VIP_LOCAL, 80),
            2,
        );
    }
    lb.plane.set_flow_insert_rate(0).unwrap();
    lb.forwarded("no limit: remembered again", syn4(41006), 2);
    assert_eq!(lb.plane.flow_count().unwrap() - before, 4);
}

#[test]
#[ignore = "needs root"]
fn a_drained_server_keeps_its_flows_only() {
    let mut lb = Lb::new("drain");
    let key = service4(IPPROTO_TCP, 80);
    let (a, b) = (tcp4_key(40001), tcp4_key(40002));
    let mut both_on_1 = table(2);
    both_on_1.slots[slot(&a)] = 1;
    both_on_1.slots[slot(&b)] = 1;
    lb.maglev(key, 0, &both_on_1);
    lb.forwarded("flow A to real 1", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    lb.forwarded("flow C elsewhere", tcp4(40003, V4_VIP_LOCAL, 80), 2);
    // Weight 0: real 1 leaves the table but stays alive.
    lb.maglev(key, 0, &table(2));
    assert_eq!(lb.plane.real(1).unwrap().flags & REAL_ALIVE, REAL_ALIVE);
    lb.forwarded("drained: flow A stays", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    lb.forwarded(
        "drained: new flow B, whose slot named real 1, goes elsewhere",
        tcp4(40002, V4_VIP_LOCAL, 80),
        2,
    );
}

#[test]
#[ignore = "needs root"]
fn a_dead_server_loses_its_flows() {
    let mut lb = Lb::new("dead");
    let key = service4(IPPROTO_TCP, 80);
    lb.maglev(key, 0, &table(1));
    lb.forwarded("flow A to real 1", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    let dead = RealEntry {
        flags: 0,
        ..real(1, 1)
    };
    lb.plane.set_real(1, dead).unwrap();
    lb.maglev(key, 0, &table(2));
    lb.forwarded(
        "real 1 dead: flow A moves",
        tcp4(40001, V4_VIP_LOCAL, 80),
        2,
    );
    // Back to health and in the table again: A now lives on real 2 and stays there.
    lb.plane.set_real(1, real(1, 1)).unwrap();
    lb.maglev(key, 0, &table(1));
    lb.forwarded(
        "real 1 back: flow A stays moved",
        tcp4(40001, V4_VIP_LOCAL, 80),
        2,
    );
    lb.forwarded("real 1 back: new flow", tcp4(40002, V4_VIP_LOCAL, 80), 1);
}

#[test]
#[ignore = "needs root"]
fn a_new_generation_reschedules() {
    let mut lb = Lb::new("generation");
    let key = service4(IPPROTO_TCP, 80);
    lb.maglev(key, 0, &table(1));
    lb.forwarded("flow A to real 1", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    // Slot 1 of REALS now holds another server (real 7's MAC, generation 2); A's table slot
    // names real 2, every other slot the new server.
    let replaced = RealEntry {
        dst_mac: real_mac(7),
        ..real(1, 2)
    };
    lb.plane.set_real(1, replaced).unwrap();
    let mut moved = table(1);
    moved.slots[slot(&tcp4_key(40001))] = 2;
    lb.maglev(key, 0, &moved);
    lb.forwarded("flow A rescheduled", tcp4(40001, V4_VIP_LOCAL, 80), 2);
    lb.forwarded(
        "a new flow to the new server",
        tcp4(40002, V4_VIP_LOCAL, 80),
        7,
    );
}

/// A real server's host replaced behind its address (another MAC, same slot and generation):
/// the new entry goes into the spare copy of its `REALS` slot, which packets do not read, and
/// takes effect whole at the flip; the next change uses the other copy the same way.
#[test]
#[ignore = "needs root"]
fn a_new_mac_takes_effect_at_the_flip_and_not_before() {
    let mut lb = Lb::new("flip");
    let key = service4(IPPROTO_TCP, 80);
    lb.maglev(key, 0, &table(1));
    lb.forwarded("flow A to real 1", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    for (step, to) in [7, 8].into_iter().enumerate() {
        let from = if step == 0 { 1 } else { 7 };
        let replaced = RealEntry {
            dst_mac: real_mac(to),
            ..real(1, 1)
        };
        lb.plane.write_real_shadow(1, replaced).unwrap();
        lb.forwarded(
            &format!("MAC {to} in the spare copy: flow A still to {from}"),
            tcp4(40001, V4_VIP_LOCAL, 80),
            from,
        );
        lb.forwarded(
            &format!("MAC {to} in the spare copy: a new flow to {from}"),
            tcp4(40002 + u16::try_from(step).unwrap(), V4_VIP_LOCAL, 80),
            from,
        );
        assert_eq!(lb.plane.real(1).unwrap().dst_mac, real_mac(from));
        lb.plane.flip_real(1, replaced).unwrap();
        lb.forwarded(
            &format!("flipped: flow A (same generation) to {to}"),
            tcp4(40001, V4_VIP_LOCAL, 80),
            to,
        );
        assert_eq!(lb.plane.real(1).unwrap(), replaced);
    }
    // A flip to an entry neither copy holds (its shadow write failed) changes nothing.
    let unwritten = RealEntry {
        dst_mac: real_mac(3),
        ..real(1, 1)
    };
    assert!(lb.plane.flip_real(1, unwritten).is_err());
    lb.forwarded(
        "a flip without its shadow write: still 8",
        tcp4(40001, V4_VIP_LOCAL, 80),
        8,
    );
}

#[test]
#[ignore = "needs root"]
fn no_server_drops_new_flows() {
    let mut lb = Lb::new("noserver");
    let key = service4(IPPROTO_TCP, 80);
    lb.plane
        .set_service(key, 0, Scheduler::Maglev, &table(1), 0)
        .unwrap();
    lb.untouched(
        "len 0",
        tcp4(40001, V4_VIP_LOCAL, 80),
        XDP_DROP,
        Outcome::LbNoServer,
    );
    assert_eq!(lb.plane.flow_count().unwrap(), 0);
    lb.maglev(key, 0, &table(1));
    lb.forwarded("a server again", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    // Every server drained (alive, out of the table): new flows drop, A stays.
    lb.plane
        .set_service(key, 0, Scheduler::Maglev, &table(1), 0)
        .unwrap();
    lb.untouched(
        "len 0, new flow",
        tcp4(40002, V4_VIP_LOCAL, 80),
        XDP_DROP,
        Outcome::LbNoServer,
    );
    lb.forwarded("len 0, drained flow A", tcp4(40001, V4_VIP_LOCAL, 80), 1);
}

#[test]
#[ignore = "needs root"]
fn the_sorry_server_gets_everything() {
    let mut lb = Lb::new("sorry");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(REDIRECTED_REAL));
    for port in 40000..40010 {
        lb.forwarded(
            &format!("client port {port}"),
            tcp4(port, V4_VIP_LOCAL, 80),
            REDIRECTED_REAL,
        );
    }
    assert_eq!(lb.plane.flow_count().unwrap(), 10);
}

#[test]
#[ignore = "needs root"]
fn icmp_frag_needed_follows_the_flow() {
    let mut lb = Lb::new("icmp");
    let key = service4(IPPROTO_TCP, 80);
    let mut a_on_1 = table(2);
    a_on_1.slots[slot(&tcp4_key(40001))] = 1;
    lb.maglev(key, 0, &a_on_1);
    lb.forwarded("flow A to real 1", tcp4(40001, V4_VIP_LOCAL, 80), 1);
    lb.maglev(key, 0, &table(3));
    // What a real server sent (from VIP:80 to the client), as quoted by a router.
    let quoted = |client_port: u16, port: u16| {
        let original = ipv4(
            V4_VIP_LOCAL,
            V4_CLIENT,
            IPPROTO_TCP,
            64,
            &tcp(port, client_port, &[0xab; 64]),
        );
        icmp_frag_needed(1400, &original[..28])
    };
    let icmp = |message: &[u8]| eth(None, 0x0800, &ipv4(V4_PEER, V4_VIP_LOCAL, 1, 64, message));
    lb.sent(
        "frag needed about flow A: A's real",
        icmp(&quoted(40001, 80)),
        1,
        Outcome::LbIcmpForward,
    );
    let flows = lb.plane.flow_count().unwrap();
    lb.sent(
        "frag needed about an unknown flow: the table's choice",
        icmp(&quoted(40099, 80)),
        3,
        Outcome::LbIcmpForward,
    );
    assert_eq!(
        lb.plane.flow_count().unwrap(),
        flows,
        "ICMP creates no flow"
    );
    lb.untouched(
        "frag needed about a port without a service",
        icmp(&quoted(40001, 81)),
        XDP_PASS,
        Outcome::VipLocal,
    );
    let mut unreachable = quoted(40001, 80);
    unreachable[1] = 1;
    lb.untouched(
        "host unreachable",
        icmp(&unreachable),
        XDP_PASS,
        Outcome::VipLocal,
    );

    let key6 = ServiceKey::new(VipKey::ipv6(V6_VIP_LOCAL), IPPROTO_TCP, 80);
    lb.maglev(key6, 1, &table(4));
    lb.forwarded("IPv6 flow to real 4", tcp6(40001, V6_VIP_LOCAL, 80), 4);
    lb.maglev(key6, 1, &table(5));
    let original = ipv6(
        V6_VIP_LOCAL,
        V6_CLIENT,
        IPPROTO_TCP,
        64,
        &tcp(80, 40001, &[0xab; 64]),
    );
    let too_big = eth(
        None,
        0x86dd,
        &ipv6(V6_PEER, V6_VIP_LOCAL, 58, 64, &icmpv6(2, &original)),
    );
    lb.sent(
        "packet too big about the IPv6 flow: its real",
        too_big,
        4,
        Outcome::LbIcmpForward,
    );
}

#[test]
#[ignore = "needs root"]
fn what_the_balancer_cannot_place_is_passed() {
    let mut lb = Lb::new("unsupported");
    lb.maglev(service4(IPPROTO_TCP, 80), 0, &table(1));
    lb.maglev(service4(IPPROTO_UDP, 0), 1, &table(1));
    let mut first_fragment = tcp4(40001, V4_VIP_LOCAL, 80);
    set_ipv4_fragment(&mut first_fragment[14..], true, 0);
    lb.untouched(
        "first fragment",
        first_fragment,
        XDP_PASS,
        Outcome::LbPassUnsupported,
    );
    let mut later = udp4(40001, V4_VIP_LOCAL, 53);
    set_ipv4_fragment(&mut later[14..], false, 185);
    lb.untouched(
        "last fragment, all-ports service",
        later,
        XDP_PASS,
        Outcome::LbPassUnsupported,
    );
    let mut later_tcp = tcp4(40001, V4_VIP_LOCAL, 80);
    set_ipv4_fragment(&mut later_tcp[14..], true, 185);
    lb.untouched(
        "middle TCP fragment: no ports, no all-ports service",
        later_tcp,
        XDP_PASS,
        Outcome::VipLocal,
    );
    let mut packet = ipv4(
        V4_CLIENT,
        V4_VIP_LOCAL,
        IPPROTO_TCP,
        64,
        &tcp(40001, 80, b"x"),
    );
    insert_ipv4_options(&mut packet, &[1, 1, 1, 0]);
    lb.untouched(
        "IPv4 options",
        eth(None, 0x0800, &packet),
        XDP_PASS,
        Outcome::LbPassUnsupported,
    );
    let truncated = eth(
        None,
        0x0800,
        &ipv4(V4_CLIENT, V4_VIP_LOCAL, IPPROTO_UDP, 64, &[0x9c, 0x41]),
    );
    lb.untouched(
        "UDP header cut short",
        truncated,
        XDP_PASS,
        Outcome::LbPassUnsupported,
    );
    assert_eq!(lb.plane.flow_count().unwrap(), 0);
    lb.forwarded(
        "a whole datagram still goes",
        tcp4(40001, V4_VIP_LOCAL, 80),
        1,
    );
}

#[test]
#[ignore = "needs root"]
fn wrr_follows_the_weights() {
    let mut lb = Lb::new("wrr");
    // Weights 2:1, interleaved.
    let mut sequence = table(0);
    sequence.slots[..3].copy_from_slice(&[1, 2, 1]);
    lb.plane
        .set_service(service4(IPPROTO_TCP, 80), 5, Scheduler::Wrr, &sequence, 3)
        .unwrap();
    let mut to = Vec::new();
    for port in 40001..=40004 {
        let frame = tcp4(port, V4_VIP_LOCAL, 80);
        let before = lb.harness.stats();
        let (verdict, out) = lb.harness.run(&frame).unwrap();
        assert_eq!(verdict, XDP_TX);
        assert_eq!(
            lb.harness.stats()[Outcome::LbForwardTx as usize]
                - before[Outcome::LbForwardTx as usize],
            1
        );
        let real = (1..=2)
            .find(|n| out[..6] == real_mac(*n))
            .expect("sent to real 1 or 2");
        to.push(real);
    }
    assert_eq!(to[..3].iter().filter(|n| **n == 1).count(), 2, "{to:?}");
    assert_eq!(to, [1, 2, 1, 1], "the sequence, then from its start");
    // Established flows do not advance the cursor.
    lb.forwarded("flow 2 again", tcp4(40002, V4_VIP_LOCAL, 80), 2);
    lb.forwarded("next new flow", tcp4(40005, V4_VIP_LOCAL, 80), 2);
}

#[test]
#[ignore = "needs root"]
fn source_hashing_keeps_a_client_on_one_real() {
    let mut lb = Lb::new("sh");
    let client = |addr: &[u8]| flow(FAMILY_IPV4, 0, addr, 0, &[], 0);
    let mut sh = table(1);
    sh.slots[slot(&client(&V4_CLIENT))] = 4;
    assert_ne!(slot(&client(&V4_CLIENT)), slot(&client(&V4_PEER)));
    lb.plane
        .set_service(
            service4(IPPROTO_UDP, 0),
            0,
            Scheduler::SourceHash,
            &sh,
            LB_TABLE_SIZE,
        )
        .unwrap();
    for port in [1000, 2000, 3000] {
        lb.forwarded(
            &format!("client port {port}"),
            udp4(port, V4_VIP_LOCAL, 53 + port),
            4,
        );
    }
    let other = eth(
        None,
        0x0800,
        &ipv4(V4_PEER, V4_VIP_LOCAL, IPPROTO_UDP, 64, &udp(1000, 53, b"q")),
    );
    lb.forwarded("another client", other, 1);
}
