//! The map types' layouts (sizes, alignments, offsets the XDP program and the agent both
//! rely on), the casts between keys and words, and the index helpers.

use core::mem::{align_of, offset_of, size_of};

use super::*;

#[test]
fn vip_key_layout_has_no_padding() {
    assert_eq!(offset_of!(VipKey, family), 0);
    assert_eq!(offset_of!(VipKey, _pad), 1);
    assert_eq!(offset_of!(VipKey, addr), 4);
    assert_eq!(size_of::<VipKey>(), 1 + 3 + 16);
    assert_eq!(align_of::<VipKey>(), 4);
}

#[test]
fn vip_entry_layout_has_no_padding() {
    assert_eq!(offset_of!(VipEntry, action), 0);
    assert_eq!(offset_of!(VipEntry, vrid), 1);
    assert_eq!(offset_of!(VipEntry, ifindex), 4);
    assert_eq!(offset_of!(VipEntry, dst_mac), 8);
    assert_eq!(offset_of!(VipEntry, src_mac), 14);
    assert_eq!(size_of::<VipEntry>(), 1 + 1 + 2 + 4 + 6 + 6);
    assert_eq!(align_of::<VipEntry>(), 4);
}

#[test]
fn vrid_and_peer_layouts_have_no_padding() {
    assert_eq!(size_of::<VridKey>(), 4);
    assert_eq!(offset_of!(VridKey, vrid), 1);
    assert_eq!(size_of::<VridEntry>(), 4);
    assert_eq!(offset_of!(PeerKey, addr), 4);
    assert_eq!(size_of::<PeerKey>(), 20);
    assert_eq!(size_of::<VridStats>(), 16);
    assert_eq!(align_of::<VridStats>(), 8);
}

#[test]
fn stats_fields_follow_outcome_order() {
    let stats = Stats {
        peer_not_allowed: 7,
        vip_forward_tx: 3,
        verdict_redirect: 9,
        ..Stats::default()
    };
    assert_eq!(stats.outcome(Outcome::DropPeerNotAllowed), 7);
    assert!(Outcome::DropPeerNotAllowed.is_vrrp_drop());
    assert!(!Outcome::LbNoServer.is_vrrp_drop());
    assert_eq!(stats.outcome(Outcome::VipForwardTx), 3);
    assert_eq!(stats.verdict(XDP_REDIRECT), 9);
    assert_eq!(size_of::<Stats>(), STATS_COUNTERS as usize * 8);
    for (i, outcome) in Outcome::ALL.iter().enumerate() {
        assert_eq!(*outcome as usize, i, "{} out of order", outcome.name());
    }
}

#[test]
fn keys_built_from_words_equal_keys_built_from_fields() {
    let v4 = [192, 0, 2, 7];
    let mut v4_field = [0u8; 16];
    v4_field[..4].copy_from_slice(&v4);
    let v6 = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34,
    ];
    assert_eq!(ipv4_words(v4), addr_words(v4_field));
    assert_eq!(VipKey::ipv6(v6).addr_words(), addr_words(v6));
    assert_eq!(
        FlowKey::from_words(
            FAMILY_IPV6,
            IPPROTO_TCP,
            [0x9c, 0x40, 0, 80],
            addr_words(v6),
            ipv4_words(v4)
        ),
        FlowKey {
            family: FAMILY_IPV6,
            protocol: IPPROTO_TCP,
            src_port: [0x9c, 0x40],
            dst_port: [0, 80],
            _pad: [0; 2],
            src: v6,
            dst: v4_field,
        }
    );
    assert_eq!(
        PeerKey::from_words(FAMILY_IPV4, 51, ipv4_words(v4)),
        PeerKey {
            family: FAMILY_IPV4,
            vrid: 51,
            _pad: [0; 2],
            addr: v4_field,
        }
    );
}

#[test]
fn a_service_key_gives_back_its_vip() {
    for vip in [VipKey::ipv4([192, 0, 2, 100]), VipKey::ipv6([0x20; 16])] {
        assert_eq!(ServiceKey::new(vip, IPPROTO_TCP, 80).vip(), vip);
    }
}

#[test]
fn lb_layouts_have_no_padding() {
    assert_eq!(offset_of!(ServiceKey, port), 2);
    assert_eq!(offset_of!(ServiceKey, addr), 4);
    assert_eq!(offset_of!(ServiceEntry, len), 4);
    assert_eq!(offset_of!(RealEntry, dst_mac), 8);
    assert_eq!(offset_of!(RealEntry, src_mac), 14);
    assert_eq!(offset_of!(RealEntry, flags), 20);
    assert_eq!(offset_of!(RealEntry, gue_port), 24);
    assert_eq!(offset_of!(RealEntry, addr), 28);
    assert_eq!(offset_of!(RealEntry, source), 44);
    assert_eq!(core::mem::size_of::<RealEntry>(), 60);
    assert_eq!(offset_of!(RealHead, source_bits), 23);
    assert_eq!(offset_of!(TunnelEntry, addr), 4);
    let mut entry = RealEntry::direct(7, 9, [1; 6], [2; 6], REAL_ALIVE);
    entry.addr = [3; 16];
    entry.source = [4; 16];
    entry.gue_port = [5, 6];
    assert_eq!(
        RealEntry::from_parts(&entry.head(), &entry.tunnel()),
        entry,
        "an entry survives its split into the two maps"
    );
    assert_eq!(offset_of!(RealSlot, copies), 4);
    assert_eq!(offset_of!(FlowKey, src), 8);
    assert_eq!(offset_of!(FlowKey, dst), 24);
    assert_eq!(
        ServiceKey::new(VipKey::ipv4([192, 0, 2, 1]), IPPROTO_TCP, 80).port,
        [0, 80]
    );
}

#[test]
fn flow_hash_depends_on_every_field_and_spreads() {
    let base = FlowKey {
        family: FAMILY_IPV4,
        protocol: IPPROTO_TCP,
        src_port: 40000u16.to_be_bytes(),
        dst_port: 80u16.to_be_bytes(),
        _pad: [0; 2],
        src: VipKey::ipv4([198, 51, 100, 7]).addr,
        dst: VipKey::ipv4([192, 0, 2, 100]).addr,
    };
    let h = flow_hash(&base);
    assert_ne!(
        h,
        flow_hash(&FlowKey {
            protocol: IPPROTO_UDP,
            ..base
        })
    );
    assert_ne!(
        h,
        flow_hash(&FlowKey {
            src_port: [0x9c, 0x41],
            ..base
        })
    );
    assert_ne!(
        h,
        flow_hash(&FlowKey {
            dst_port: [0, 81],
            ..base
        })
    );
    assert_ne!(
        h,
        flow_hash(&FlowKey {
            src: VipKey::ipv4([198, 51, 100, 8]).addr,
            ..base
        })
    );
    assert_ne!(
        h,
        flow_hash(&FlowKey {
            dst: VipKey::ipv4([192, 0, 2, 101]).addr,
            ..base
        })
    );
    // Consecutive client ports spread evenly over a few buckets.
    let mut buckets = [0u32; 8];
    for port in 0..8000u16 {
        let key = FlowKey {
            src_port: (30000 + port).to_be_bytes(),
            ..base
        };
        buckets[(flow_hash(&key) % 8) as usize] += 1;
    }
    for n in buckets {
        assert!((900..1100).contains(&n), "{buckets:?}");
    }
}

#[test]
fn filter_bit_folds_the_address() {
    assert_eq!(
        vip_filter_bit(&VipKey::ipv4([192, 0, 2, 100])),
        0xc000 ^ 0x0264
    );
    // Same /16: the low halves differ, so the bits differ.
    assert_ne!(
        vip_filter_bit(&VipKey::ipv4([192, 0, 2, 100])),
        vip_filter_bit(&VipKey::ipv4([192, 0, 2, 101]))
    );
    let mut v6 = [0u8; 16];
    v6[0] = 0x20;
    v6[1] = 0x01;
    v6[15] = 0x01;
    assert_eq!(vip_filter_bit(&VipKey::ipv6(v6)), 0x2001 ^ 0x0001);
    assert!(vip_filter_bit(&VipKey::ipv6([0xff; 16])) < VIP_FILTER_WORDS * 64);
}

#[test]
fn constructors_zero_padding() {
    assert_eq!(VipKey::ipv4([192, 0, 2, 1]).addr[4..], [0; 12]);
    let local = VipEntry::local(5);
    assert_eq!(
        local,
        VipEntry {
            action: 1,
            vrid: 5,
            flags: 0,
            _pad: [0; 1],
            ifindex: 0,
            dst_mac: [0; 6],
            src_mac: [0; 6]
        }
    );
    assert_eq!(VipEntry::drop(5).action, VipAction::Drop as u8);
    let f = VipEntry::forward(9, 3, [1; 6], [2; 6]);
    assert_eq!(
        (f.action, f.ifindex, f.dst_mac, f.src_mac),
        (2, 3, [1; 6], [2; 6])
    );
    assert_eq!(vrid_stats_index(FAMILY_IPV6, 255), 511);
    assert_eq!(vrid_stats_index(FAMILY_IPV4, 1), 1);
}
