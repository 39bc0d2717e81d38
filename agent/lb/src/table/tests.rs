//! The table builders: disruption on removal and addition (Maglev), shares that follow the
//! weights, independence from input order and `REALS` indices, LVS's WRR order, and the two
//! Maglev turn orders agreeing.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

const M: usize = LB_TABLE_SIZE as usize;

fn v4(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

/// Servers 10.0.0.1.. with the given weights, `real` = position.
fn servers(weights: &[u32]) -> Vec<Backend> {
    (0u16..)
        .zip(weights)
        .map(|(i, &weight)| Backend {
            address: v4(u32::from(i) + 1),
            real: i,
            weight,
        })
        .collect()
}

/// The address each slot of `table[..len]` names, by way of `backends`' `real`s.
fn addresses(backends: &[Backend], table: &LbTable, len: u32) -> Vec<IpAddr> {
    let by_real: HashMap<u16, IpAddr> = backends.iter().map(|b| (b.real, b.address)).collect();
    table.slots[..len as usize]
        .iter()
        .map(|real| by_real[real])
        .collect()
}

fn maglev_addresses(backends: &[Backend]) -> Vec<IpAddr> {
    let mut table = new_table();
    assert_eq!(maglev(backends, &mut table), LB_TABLE_SIZE);
    addresses(backends, &table, LB_TABLE_SIZE)
}

fn wrr_addresses(backends: &[Backend]) -> Vec<IpAddr> {
    let mut table = new_table();
    let len = wrr(backends, &mut table);
    addresses(backends, &table, len)
}

/// Fractions of the table whose slot names another address `after` than `before`: all
/// of them, and those whose change `expected` does not explain.
fn moved(
    before: &[IpAddr],
    after: &[IpAddr],
    expected: impl Fn(IpAddr, IpAddr) -> bool,
) -> (f64, f64) {
    let changed = before.iter().zip(after).filter(|(b, a)| b != a);
    let unexplained = changed.clone().filter(|&(&b, &a)| !expected(b, a)).count();
    let total = before.len();
    (
        fraction(changed.count(), total),
        fraction(unexplained, total),
    )
}

fn shares(addresses: &[IpAddr]) -> HashMap<IpAddr, f64> {
    let mut counts: HashMap<IpAddr, usize> = HashMap::new();
    for a in addresses {
        *counts.entry(*a).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(a, n)| (a, fraction(n, addresses.len())))
        .collect()
}

/// `part / whole` for counts of slots (at most `LB_TABLE_SIZE`, exact in an `f64`).
fn fraction(part: usize, whole: usize) -> f64 {
    let exact = |n: usize| f64::from(u32::try_from(n).expect("a count of slots"));
    exact(part) / exact(whole)
}

/// Each backend's share of `addresses` is within 1% (relative) of weight / sum.
fn assert_shares_follow_weights(backends: &[Backend], addresses: &[IpAddr]) {
    let sum: f64 = backends.iter().map(|b| f64::from(b.weight)).sum();
    let shares = shares(addresses);
    for b in backends {
        let want = f64::from(b.weight) / sum;
        let got = shares.get(&b.address).copied().unwrap_or(0.0);
        assert!(
            (got - want).abs() <= want * 0.01,
            "{}: weight {} share {got:.5}, want {want:.5}",
            b.address,
            b.weight
        );
    }
}

#[test]
fn new_table_is_zeroed() {
    let table = new_table();
    assert_eq!(table.slots.len(), M);
    assert!(table.slots.iter().all(|&s| s == 0));
}

// Maglev does not promise minimal disruption (NSDI 2016 §3.4: it trades a little of it
// for balance): when a server leaves, the others' lists meet new free slots earlier, so
// a few slots also change hands between servers that stayed. At M = 65537 and N = 10
// that is 0.2-0.3% of the table (for every choice of the server removed), on top of the
// leaving server's own tenth.
#[test]
fn maglev_removing_one_of_ten_moves_its_slots_and_little_else() {
    let ten = servers(&[1; 10]);
    let before = maglev_addresses(&ten);
    for gone in ten.iter().map(|b| b.address) {
        let nine: Vec<Backend> = ten.iter().copied().filter(|b| b.address != gone).collect();
        let (fraction, between_others) = moved(&before, &maglev_addresses(&nine), |b, _| b == gone);
        assert!((0.09..0.13).contains(&fraction), "{gone}: {fraction}");
        assert!(between_others < 0.005, "{gone}: {between_others}");
    }
}

#[test]
fn maglev_adding_an_eleventh_moves_about_an_eleventh() {
    let eleven = servers(&[1; 11]);
    let new = eleven[10].address;
    let (fraction, between_others) = moved(
        &maglev_addresses(&eleven[..10]),
        &maglev_addresses(&eleven),
        |_, a| a == new,
    );
    assert!((0.08..0.12).contains(&fraction), "{fraction}");
    assert!(between_others < 0.005, "{between_others}");
}

#[test]
fn maglev_shares_follow_weights_within_one_percent() {
    for weights in [
        &[1, 2, 3, 4][..],
        &[1, 1, 10],
        &[100, 100, 100, 300],
        &[1, 50],
        &[7; 13],
        // Skewed enough for the queue.
        &[
            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2000,
        ],
    ] {
        let backends = servers(weights);
        assert_shares_follow_weights(&backends, &maglev_addresses(&backends));
    }
}

#[test]
fn maglev_and_wrr_depend_only_on_addresses_and_weights() {
    let weights: Vec<u32> = (1..=25).map(|i| i % 4 + 1).collect();
    let mut backends = servers(&weights);
    backends.push(Backend {
        address: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
        real: 25,
        weight: 3,
    });
    // The other director: another order, other REALS indices.
    let mut other = backends.clone();
    other.reverse();
    other.rotate_left(7);
    for (i, b) in (0u16..).zip(&mut other) {
        b.real = 1000 + 3 * i;
    }
    assert_eq!(maglev_addresses(&backends), maglev_addresses(&other));
    assert_eq!(wrr_addresses(&backends), wrr_addresses(&other));
    // And the table is a function of them, not of what the buffer held.
    let mut dirty = new_table();
    dirty.slots.fill(9);
    maglev(&backends, &mut dirty);
    assert_eq!(
        addresses(&backends, &dirty, LB_TABLE_SIZE),
        maglev_addresses(&backends)
    );
}

#[test]
fn drained_servers_get_no_slot() {
    let mut backends = servers(&[2, 0, 1, 0]);
    assert!(!maglev_addresses(&backends).contains(&backends[1].address));
    assert!(!maglev_addresses(&backends).contains(&backends[3].address));
    assert_eq!(wrr_addresses(&backends), [v4(1), v4(1), v4(3)]);
    // Draining one is removing it.
    let without: Vec<Backend> = backends.iter().copied().filter(|b| b.weight > 0).collect();
    assert_eq!(maglev_addresses(&backends), maglev_addresses(&without));

    for b in &mut backends {
        b.weight = 0;
    }
    let mut table = new_table();
    table.slots.fill(7);
    assert_eq!(maglev(&backends, &mut table), 0);
    assert_eq!(wrr(&backends, &mut table), 0);
    assert_eq!(maglev(&[], &mut table), 0);
    assert_eq!(wrr(&[], &mut table), 0);
    assert!(table.slots.iter().all(|&s| s == 7), "left untouched");
}

#[test]
fn one_server_takes_every_slot() {
    let backends = servers(&[5]);
    assert!(maglev_addresses(&backends).iter().all(|&a| a == v4(1)));
    assert_eq!(wrr_addresses(&backends), [v4(1)]);
}

#[test]
fn wrr_follows_ip_vs_wrr_order() {
    let (a, b, c) = (v4(1), v4(2), v4(3));
    // ip_vs_wrr_schedule: cw from max down by gcd; each pass takes weight >= cw in order.
    assert_eq!(wrr_addresses(&servers(&[3, 1])), [a, a, a, b]);
    assert_eq!(wrr_addresses(&servers(&[1, 3])), [b, b, a, b]);
    assert_eq!(
        wrr_addresses(&servers(&[4, 3, 2])),
        [a, a, b, a, b, c, a, b, c]
    );
    // Divided by the gcd first: 40:20 is 2:1.
    assert_eq!(wrr_addresses(&servers(&[40, 20])), [a, a, b]);
    assert_eq!(wrr_addresses(&servers(&[5, 5, 5])), [a, b, c]);
}

#[test]
fn wrr_too_long_is_scaled_to_the_table_keeping_proportions() {
    let backends = servers(&[1_000_000, 2_000_000, 3_000_001, 1]);
    let mut table = new_table();
    let len = wrr(&backends, &mut table);
    assert!(len <= LB_TABLE_SIZE && len > LB_TABLE_SIZE - 4, "{len}");
    let seq = addresses(&backends, &table, len);
    // The weight-1 server keeps its single slot; the others their proportions.
    assert_eq!(seq.iter().filter(|&&a| a == v4(4)).count(), 1);
    assert_shares_follow_weights(&backends[..3], &seq);

    // Many servers lifted to weight 1 still fit.
    let mut many = servers(&[1; 3000]);
    many[0].weight = u32::MAX;
    let len = wrr(&many, &mut table);
    assert!(len <= LB_TABLE_SIZE, "{len}");
    let seq = addresses(&many, &table, len);
    assert_eq!(shares(&seq).len(), 3000, "every server keeps a slot");
}

/// Backends in the order `maglev` gives them turns, ready to populate.
fn turns(weights: &[u32]) -> Vec<Turn> {
    in_order(&servers(weights))
        .into_iter()
        .map(Turn::new)
        .collect()
}

#[test]
fn maglev_turns_by_queue_are_the_turns_in_rounds() {
    let patterns: [Vec<u32>; 4] = [
        vec![1; 50],
        (1..=60).map(|i| i % 7 + 1).collect(),
        (0..40).map(|i| if i == 0 { 1000 } else { 1 }).collect(),
        vec![3, 1_000_000, 5, 999_999],
    ];
    for weights in &patterns {
        let max = u64::from(*weights.iter().max().unwrap());
        let mut by_rounds = new_table();
        in_rounds(&mut turns(weights), max, &mut Claims::new(&mut by_rounds));
        let mut queued = new_table();
        by_queue(&mut turns(weights), max, &mut Claims::new(&mut queued));
        assert!(by_rounds.slots == queued.slots, "{weights:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_slot_names_a_server_with_weight(
        servers in prop::collection::vec((any::<bool>(), any::<u128>(), 0u32..2000), 0..40),
    ) {
        let backends: Vec<Backend> = (0u16..)
            .zip(&servers)
            .map(|(real, &(v6, bits, weight))| Backend {
                #[expect(clippy::cast_possible_truncation, reason = "any 32 bits")]
                address: if v6 { IpAddr::V6(bits.into()) } else { IpAddr::V4((bits as u32).into()) },
                real,
                weight,
            })
            .collect();
        let weighted: Vec<u16> =
            backends.iter().filter(|b| b.weight > 0).map(|b| b.real).collect();
        let mut table = new_table();
        let len = maglev(&backends, &mut table);
        prop_assert_eq!(len, if weighted.is_empty() { 0 } else { LB_TABLE_SIZE });
        prop_assert!(table.slots[..len as usize].iter().all(|r| weighted.contains(r)));
        let len = wrr(&backends, &mut table);
        prop_assert_eq!(len == 0, weighted.is_empty());
        prop_assert!(table.slots[..len as usize].iter().all(|r| weighted.contains(r)));
        // WRR never loses a server, even scaled down.
        prop_assert!(weighted.iter().all(|r| table.slots[..len as usize].contains(r)));
    }
}
