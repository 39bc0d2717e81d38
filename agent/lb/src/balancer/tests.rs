//! The balancer's rules: write order, quorum, sorry server, reloads and slots, each as the
//! writes one input produces.

use vipflip_common::{IPPROTO_TCP, IPPROTO_UDP, VipKey};

use super::*;
use crate::{RealConfig, TunnelSource};

const IFACE: &str = "eth0";
const LINK: Link = Link {
    ifindex: 7,
    mac: [2, 0, 0, 0, 0, 1],
};

fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, last])
}

fn mac(last: u8) -> [u8; 6] {
    [2, 0, 0, 0, 1, last]
}

/// Service "web" (192.0.2.100:80/tcp, Maglev, quorum 2) on `IFACE`, its real servers
/// (address last byte, weight) all checked.
fn service(reals: &[(u8, u16)], sorry: Option<u8>) -> ServiceConfig {
    ServiceConfig {
        name: "web".into(),
        interface: IFACE.into(),
        key: ServiceKey::new(VipKey::from_ip(ip(100)), IPPROTO_TCP, 80),
        scheduler: Scheduler::Maglev,
        quorum: 2,
        sorry_server: sorry.map(ip),
        forward: Forward::Direct,
        reals: reals
            .iter()
            .map(|&(last, weight)| RealConfig {
                address: ip(last),
                weight,
                checked: true,
            })
            .collect(),
    }
}

/// A balancer running `spec` with every MAC resolved; returns it and the writes of the
/// last step.
fn running(spec: &ServiceConfig) -> Balancer {
    let mut lb = Balancer::new(1000);
    lb.configure(std::slice::from_ref(spec), &BTreeMap::new())
        .expect("slots");
    lb.link(IFACE, LINK);
    for (_, address) in lb.neighbours() {
        let IpAddr::V4(v4) = address else { panic!() };
        lb.neighbour(IFACE, address, Some(mac(v4.octets()[3])));
    }
    lb
}

/// The reals of the table written last, as (address last byte → slots).
fn table_shares(lb: &Balancer, changes: &Changes) -> BTreeMap<u8, usize> {
    let table = changes
        .writes
        .iter()
        .rev()
        .find_map(|w| match w {
            LbWrite::Service { table, len, .. } => Some((table, *len)),
            _ => None,
        })
        .expect("a table was written");
    let mut shares = BTreeMap::new();
    for slot in &table.0.slots[..table.1 as usize] {
        let real = lb.services()[0]
            .reals
            .iter()
            .chain(lb.services()[0].sorry.as_ref())
            .find(|r| r.slot == *slot)
            .expect("slot names a real of the service");
        let IpAddr::V4(v4) = real.address else {
            panic!()
        };
        *shares.entry(v4.octets()[3]).or_default() += 1;
    }
    shares
}

/// The order of the writes, as "real 21 alive" / "table" / "remove". A `REALS` write is
/// one item: its shadow write, which must come with the flip to it right after.
fn order(lb: &Balancer, changes: &Changes) -> Vec<String> {
    let mut writes = changes.writes.iter();
    let mut order = Vec::new();
    while let Some(write) = writes.next() {
        if let LbWrite::RealShadow { index, entry, .. } = write {
            assert!(
                matches!(
                    writes.next(),
                    Some(LbWrite::RealFlip { index: i, entry: e, .. }) if i == index && e == entry
                ),
                "the shadow write of real {index} is not followed by its flip: {:?}",
                changes.writes
            );
        }
        order.push(write);
    }
    order
        .into_iter()
        .map(|w| match w {
            LbWrite::RealFlip { .. } => unreachable!("taken with its shadow write"),
            LbWrite::RealShadow { index, entry, .. } => {
                let real = lb.services()[0]
                    .reals
                    .iter()
                    .chain(lb.services()[0].sorry.as_ref())
                    .find(|r| r.slot == *index)
                    .expect("known slot");
                format!(
                    "real {} {}",
                    real.address,
                    if entry.flags & REAL_ALIVE == 0 {
                        "dead"
                    } else {
                        "alive"
                    }
                )
            }
            LbWrite::Service { len, .. } => format!("table {len}"),
            LbWrite::RemoveService { .. } => "remove".into(),
        })
        .collect()
}

#[test]
fn nothing_is_sent_before_the_macs_are_known_then_all_share_the_table() {
    let spec = service(&[(21, 1), (22, 1), (23, 2)], None);
    let mut lb = Balancer::new(1000);
    let changes = lb
        .configure(std::slice::from_ref(&spec), &BTreeMap::new())
        .expect("slots");
    assert!(changes.writes.is_empty(), "no link yet: nothing to write");
    let changes = lb.link(IFACE, LINK);
    assert_eq!(
        order(&lb, &changes),
        [
            "table 0",
            "real 192.0.2.21 dead",
            "real 192.0.2.22 dead",
            "real 192.0.2.23 dead"
        ]
    );
    assert_eq!(
        changes.quorum,
        [QuorumChange {
            service: "web".into(),
            met: true
        }],
        "servers count as healthy until checked, resolved or not"
    );
    let changes = lb.neighbour(IFACE, ip(21), Some(mac(21)));
    assert_eq!(
        order(&lb, &changes),
        ["real 192.0.2.21 alive", "table 65537"]
    );
    let LbWrite::RealShadow { entry, .. } = &changes.writes[0] else {
        panic!()
    };
    assert_eq!(
        (entry.ifindex, entry.dst_mac, entry.src_mac),
        (LINK.ifindex, mac(21), LINK.mac)
    );
    lb.neighbour(IFACE, ip(22), Some(mac(22)));
    let changes = lb.neighbour(IFACE, ip(23), Some(mac(23)));
    let shares = table_shares(&lb, &changes);
    // Weights 1:1:2 of 65537 slots, within 1%.
    for (last, want) in [(21, 0.25), (22, 0.25), (23, 0.5)] {
        let got = f64::from(u32::try_from(shares[&last]).unwrap()) / 65537.0;
        assert!((got - want).abs() < 0.01, "{last}: {got}");
    }
    assert!(changes.quorum.is_empty());
}

#[test]
fn tunnelled_servers_need_no_mac_and_carry_their_address_and_source() {
    let source = TunnelSource {
        addr: IpAddr::from([198, 51, 100, 128]),
        prefix_len: 25,
    };
    let mut spec = service(&[(21, 1), (22, 1)], None);
    spec.forward = Forward::Gue {
        port: 6080,
        source: Some(source),
    };
    let mut lb = Balancer::new(1000);
    lb.configure(std::slice::from_ref(&spec), &BTreeMap::new())
        .expect("slots");
    assert!(lb.neighbours().is_empty(), "no MAC to resolve");
    let changes = lb.link(IFACE, LINK);
    assert_eq!(
        order(&lb, &changes),
        [
            "real 192.0.2.21 alive",
            "real 192.0.2.22 alive",
            "table 65537"
        ],
        "alive at once: the FIB finds the way per frame"
    );
    let LbWrite::RealShadow { entry, .. } = &changes.writes[0] else {
        panic!()
    };
    let mut addr = [0; 16];
    addr[..4].copy_from_slice(&[192, 0, 2, 21]);
    let mut prefix = [0; 16];
    prefix[..4].copy_from_slice(&[198, 51, 100, 128]);
    assert_eq!(
        (
            entry.forward,
            entry.family,
            entry.addr,
            entry.source,
            entry.source_bits,
            u16::from_be_bytes(entry.gue_port),
            entry.flags
        ),
        (
            vipflip_common::Forward::Gue as u8,
            vipflip_common::FAMILY_IPV4,
            addr,
            prefix,
            7,
            6080,
            REAL_ALIVE
        )
    );

    // The same servers by Direct Routing: now they wait for their MACs.
    spec.forward = Forward::Direct;
    let changes = lb
        .configure(std::slice::from_ref(&spec), &BTreeMap::new())
        .expect("slots");
    assert_eq!(lb.neighbours().len(), 2);
    assert_eq!(
        order(&lb, &changes),
        ["table 0", "real 192.0.2.21 dead", "real 192.0.2.22 dead"]
    );
}

#[test]
fn a_new_mac_goes_to_the_spare_copy_then_goes_live_without_a_new_table() {
    let mut lb = running(&service(&[(21, 1), (22, 1)], None));
    let slot = lb.services()[0].reals[0].slot;
    // Another host took 192.0.2.21.
    let changes = lb.neighbour(IFACE, ip(21), Some(mac(99)));
    let [
        LbWrite::RealShadow {
            index: shadow,
            entry: written,
            ..
        },
        LbWrite::RealFlip {
            index: flipped,
            entry: live,
            ..
        },
    ] = &changes.writes[..]
    else {
        panic!("want a shadow write then its flip: {:?}", changes.writes);
    };
    assert_eq!((*shadow, *flipped), (slot, slot));
    assert_eq!(
        written, live,
        "the flip makes live what the shadow write wrote"
    );
    assert_eq!(
        (written.dst_mac, written.flags, written.generation),
        (mac(99), REAL_ALIVE, lb.services()[0].reals[0].generation),
        "same server, same generation: its flows stay"
    );
    assert!(changes.quorum.is_empty());
}

#[test]
fn a_failed_server_leaves_the_table_before_it_is_marked_dead() {
    let mut lb = running(&service(&[(21, 1), (22, 1), (23, 1)], None));
    let changes = lb.health("web", ip(22), false, "connect: Connection refused");
    assert_eq!(
        order(&lb, &changes),
        ["table 65537", "real 192.0.2.22 dead"]
    );
    assert!(!table_shares(&lb, &changes).contains_key(&22));
    assert_eq!(
        lb.services()[0].reals[1].detail,
        "connect: Connection refused"
    );
    assert!(changes.quorum.is_empty(), "two of three still healthy");
    let changes = lb.health("web", ip(21), false, "timed out");
    assert_eq!(
        changes.quorum,
        [QuorumChange {
            service: "web".into(),
            met: false
        }]
    );
    let changes = lb.health("web", ip(22), true, "connected");
    assert_eq!(
        order(&lb, &changes),
        ["real 192.0.2.22 alive", "table 65537"]
    );
    assert_eq!(changes.quorum.len(), 1);
    assert!(changes.quorum[0].met);
    // The same verdict again changes nothing.
    let changes = lb.health("web", ip(22), true, "connected");
    assert!(changes.writes.is_empty() && changes.quorum.is_empty());
}

#[test]
fn a_drained_server_stays_alive_but_leaves_the_table() {
    let mut lb = running(&service(&[(21, 1), (22, 0)], None));
    let service = &lb.services()[0];
    assert_eq!(service.reals[1].table_slots, 0);
    assert_eq!(service.reals[0].table_slots, 65537);
    assert_eq!(service.healthy(), 1, "a drained server takes no new flows");
    assert_eq!(service.reals[1].written.map(|e| e.flags), Some(REAL_ALIVE));
    // Undrained by a reload: the table takes it in; nothing else is rewritten.
    let spec = super::super::balancer::tests::service(&[(21, 1), (22, 1)], None);
    let changes = lb
        .configure(std::slice::from_ref(&spec), &BTreeMap::new())
        .expect("slots");
    assert_eq!(order(&lb, &changes), ["table 65537"]);
    assert_eq!(table_shares(&lb, &changes).len(), 2);
}

#[test]
fn the_sorry_server_takes_everything_while_no_real_server_is_healthy() {
    let mut lb = running(&service(&[(21, 1), (22, 1)], Some(30)));
    assert!(!lb.services()[0].using_sorry);
    lb.health("web", ip(21), false, "refused");
    let changes = lb.health("web", ip(22), false, "refused");
    assert!(lb.services()[0].using_sorry);
    assert_eq!(table_shares(&lb, &changes), BTreeMap::from([(30, 65537)]));
    let changes = lb.health("web", ip(21), true, "connected");
    assert!(!lb.services()[0].using_sorry);
    assert_eq!(table_shares(&lb, &changes), BTreeMap::from([(21, 65537)]));
}

#[test]
fn no_server_and_no_sorry_server_means_an_empty_table() {
    let mut lb = running(&service(&[(21, 1)], None));
    let changes = lb.health("web", ip(21), false, "refused");
    assert_eq!(order(&lb, &changes), ["table 0", "real 192.0.2.21 dead"]);
    assert_eq!(lb.services()[0].table_len, 0);
}

#[test]
fn a_reload_keeps_slots_and_health_and_gives_new_servers_fresh_generations() {
    let mut lb = running(&service(&[(21, 1), (22, 1)], None));
    lb.health("web", ip(22), false, "refused");
    let before: Vec<(u16, u32)> = lb.services()[0]
        .reals
        .iter()
        .map(|r| (r.slot, r.generation))
        .collect();
    let spec = service(&[(22, 1), (21, 1), (24, 1)], None);
    let changes = lb
        .configure(std::slice::from_ref(&spec), &BTreeMap::new())
        .expect("slots");
    let service = &lb.services()[0];
    let of = |last| {
        service
            .reals
            .iter()
            .find(|r| r.address == ip(last))
            .unwrap()
    };
    assert_eq!((of(21).slot, of(21).generation), before[0]);
    assert_eq!((of(22).slot, of(22).generation), before[1]);
    assert!(!of(22).healthy, "health is kept");
    assert_eq!(of(21).mac, Some(mac(21)), "MACs are kept");
    assert!(of(24).generation > before[1].1);
    assert!(of(24).slot != of(21).slot && of(24).slot != of(22).slot);
    // The new server has no MAC yet: it is written dead and the table is unchanged.
    assert_eq!(order(&lb, &changes), ["real 192.0.2.24 dead"]);
    // A removed service's entry goes first.
    let changes = lb.configure(&[], &BTreeMap::new()).expect("slots");
    assert!(matches!(
        changes.writes[..],
        [LbWrite::RemoveService { .. }]
    ));
    assert!(lb.services().is_empty());
}

#[test]
fn a_slot_given_to_another_server_gets_a_new_generation() {
    let mut lb = running(&service(&[(21, 1), (22, 1)], None));
    let first = lb.services()[0].reals[0].clone();
    for reals in [&[(22, 1)][..], &[(22, 1), (25, 1)]] {
        lb.configure(&[service(reals, None)], &BTreeMap::new())
            .expect("slots");
    }
    let second = &lb.services()[0].reals[1];
    assert_eq!(second.address, ip(25));
    assert_eq!(second.slot, first.slot, "the freed slot is reused");
    assert_ne!(second.generation, first.generation);
}

#[test]
fn a_reopened_data_plane_keeps_each_service_in_its_slot() {
    let spec = service(&[(21, 1)], None);
    let key = spec.key;
    let other = ServiceKey::new(VipKey::ipv4([192, 0, 2, 100]), IPPROTO_UDP, 53);
    let existing = BTreeMap::from([(IFACE.to_owned(), vec![(other, 0), (key, 5)])]);
    let mut lb = Balancer::new(1);
    let changes = lb
        .configure(std::slice::from_ref(&spec), &existing)
        .expect("slots");
    assert_eq!(lb.services()[0].slot, 5);
    // The previous run's service this file no longer has is removed.
    assert!(matches!(
        &changes.writes[..],
        [LbWrite::RemoveService { key, .. }] if *key == other
    ));
}

#[test]
fn two_directors_with_one_configuration_show_one_fingerprint_whatever_their_slots() {
    let web = service(&[(21, 1), (22, 1), (23, 2)], None);
    let a = running(&web);
    // Director b also runs another service first, so web's servers hold other REALS slots.
    let mut other = service(&[(31, 1), (32, 1)], None);
    other.name = "other".into();
    other.key = ServiceKey::new(VipKey::from_ip(ip(101)), IPPROTO_TCP, 80);
    let mut b = Balancer::new(2000);
    b.configure(&[other, web.clone()], &BTreeMap::new())
        .expect("slots");
    b.link(IFACE, LINK);
    for (_, address) in b.neighbours() {
        let IpAddr::V4(v4) = address else { panic!() };
        b.neighbour(IFACE, address, Some(mac(v4.octets()[3])));
    }
    let web_of = |lb: &Balancer| {
        lb.services()
            .iter()
            .find(|s| s.spec.name == "web")
            .unwrap()
            .clone()
    };
    assert_ne!(
        web_of(&a).reals[0].slot,
        web_of(&b).reals[0].slot,
        "the test wants different slots"
    );
    assert_ne!(web_of(&a).fingerprint, 0);
    assert_eq!(web_of(&a).fingerprint, web_of(&b).fingerprint);
    // One director sees 192.0.2.22 fail: they now disagree, and say so.
    let mut a = a;
    a.health("web", ip(22), false, "refused");
    assert_ne!(web_of(&a).fingerprint, web_of(&b).fingerprint);
    b.health("web", ip(22), false, "refused");
    assert_eq!(web_of(&a).fingerprint, web_of(&b).fingerprint);
}
