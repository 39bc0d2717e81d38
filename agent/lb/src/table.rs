//! Lookup tables for the XDP program's services.
//!
//! A table ([`LbTable`]) maps a slot to an index into `REALS`. Both builders here are pure
//! functions of the servers' addresses and weights: the input order and the `REALS` indices
//! the servers happen to have do not change which *address* a slot names, so two directors
//! with the same configuration send a flow to the same server, and a failover keeps flows
//! where they were.
//!
//! - [`maglev`]: Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
//!   Software Network Load Balancer", NSDI 2016, §3.4), weighted as Katran does it. Used by
//!   `Scheduler::Maglev` (the program indexes it with the 5-tuple's `flow_hash`) and by
//!   `Scheduler::SourceHash` (the same table, indexed with a hash of the client address only).
//! - [`wrr`]: the weighted round robin sequence in LVS's order (`ip_vs_wrr.c`), which the
//!   program walks with a per-CPU cursor over the first `ServiceEntry::len` slots.
//!
//! The address hash that places a server in the Maglev table ([`address_hash`]) is defined
//! here rather than borrowed from `std` (whose `DefaultHasher` may change between Rust
//! releases): directors running different builds of vipflip must still agree on it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use vipflip_common::{LB_TABLE_SIZE, LbTable};

/// One real server as the table sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    /// What places the server in the table (its hash and its rank among the others).
    pub address: IpAddr,
    /// Its index in `REALS`: what the table's slots hold.
    pub real: u16,
    /// 0 = drained: it takes no new flows (it gets no slot).
    pub weight: u32,
}

/// A zeroed table, built on the heap (131 KB; never on the stack).
pub fn new_table() -> Box<LbTable> {
    // SAFETY: `LbTable` is a `repr(C)` array of `u16`; all-zero bytes are a valid value.
    unsafe { Box::<LbTable>::new_zeroed().assume_init() }
}

/// Fills `table` by Maglev's populate (NSDI 2016 §3.4, Pseudocode 1) from the backends with
/// a weight above 0; returns the slots in use: `LB_TABLE_SIZE`, or 0 (table untouched) when
/// no backend has weight.
///
/// Each backend's preference list is `(offset + j * skip) mod M` over `M = LB_TABLE_SIZE`
/// (prime, so every `skip` in `1..M` visits every slot), with `offset` and `skip` drawn from
/// two differently seeded hashes of its address. The backends take turns in address order
/// (ties, the same address twice, by weight then `real`), each claiming the next free slot
/// of its list, until the table is full.
///
/// Weights, as Katran's `MaglevV2`: every round, each backend adds its weight to a credit
/// and takes a turn each time the credit reaches the largest weight (which it then loses),
/// so a backend of weight `w` takes `w / max` turns per round and ends up with `w / sum` of
/// the slots, to within a slot or two. With equal weights this is the paper's algorithm
/// exactly (one turn each per round).
pub fn maglev(backends: &[Backend], table: &mut LbTable) -> u32 {
    let mut turns: Vec<Turn> = in_order(backends).into_iter().map(Turn::new).collect();
    let Some(max) = turns.iter().map(|t| t.weight).max() else {
        return 0;
    };
    let sum: u64 = turns.iter().map(|t| t.weight).sum();
    let mut claims = Claims::new(table);
    // Both give the same table. Walking the rounds costs `rounds * N`, about `M * max / mean`
    // steps of an add and a compare; the queue costs `M * log N` heap steps whatever the
    // weights. (1,000 backends: equal weights 1.4 ms by rounds, 4.3 ms by queue; one at
    // 1,000 and the rest at 1, 33 ms by rounds, 3 ms by queue.)
    if max * (turns.len() as u64) <= ROUNDS_MAX_SKEW * sum {
        in_rounds(&mut turns, max, &mut claims);
    } else {
        by_queue(&mut turns, max, &mut claims);
    }
    LB_TABLE_SIZE
}

/// Writes the weighted round robin sequence in the first slots of `table` and returns its
/// length; 0 (table untouched) when no backend has weight.
///
/// The order is LVS's (`ip_vs_wrr_schedule`): with the weights divided by their gcd and `m`
/// the largest, pass `j = m, m-1, …, 1` lists, in address order, every backend whose weight
/// is at least `j`. So weights 4:3:2 give `A A B A B C A B C` rather than four A in a row,
/// and the length is the sum of the reduced weights. (Two backends at 3:1 give `A A A B`:
/// in a cycle of four, three A are adjacent whatever the order.)
///
/// When that sum exceeds `LB_TABLE_SIZE`, the weights are first scaled down to fit (each to
/// `max(1, weight * M / sum)`, rounding down, or with `M` less the number of servers if the
/// ones lifted to 1 overflow), which keeps their proportions to within one slot each and
/// every server in the sequence.
pub fn wrr(backends: &[Backend], table: &mut LbTable) -> u32 {
    let servers = in_order(backends);
    if servers.is_empty() {
        return 0;
    }
    let weights = wrr_weights(&servers);
    let max = weights.iter().copied().max().unwrap_or(0);
    // Positions in address order, heaviest first: pass `j` lists the prefix with weight >= j.
    let mut heaviest: Vec<usize> = (0..servers.len()).collect();
    heaviest.sort_by_key(|&i| Reverse(weights[i]));
    let mut listed: Vec<usize> = Vec::with_capacity(servers.len());
    let mut joined = 0;
    let mut len = 0;
    for j in (1..=max).rev() {
        while let Some(&i) = heaviest.get(joined).filter(|&&i| weights[i] >= j) {
            let at = listed.partition_point(|&k| k < i);
            listed.insert(at, i);
            joined += 1;
        }
        for &i in &listed {
            if len == TABLE {
                break;
            }
            table.slots[len] = servers[i].real;
            len += 1;
        }
    }
    u32::try_from(len).expect("len <= LB_TABLE_SIZE")
}

/// The hash of a server's address that decides its Maglev permutation; `seed` picks one of
/// its two uses (offset, skip). Part of the contract between directors: changing it moves
/// flows on the next failover between old and new builds.
///
/// The address (family tag, then its octets as one big-endian integer) folded 64 bits at a
/// time through splitmix64's finaliser.
pub fn address_hash(address: &IpAddr, seed: u64) -> u64 {
    let (family, bits) = match address {
        IpAddr::V4(a) => (4u64, u128::from(u32::from(*a))),
        IpAddr::V6(a) => (6u64, u128::from(*a)),
    };
    #[expect(
        clippy::cast_possible_truncation,
        reason = "taking the low and high halves"
    )]
    let (low, high) = (bits as u64, (bits >> 64) as u64);
    let mut h = mix64(seed ^ family);
    h = mix64(h ^ low);
    mix64(h ^ high)
}

/// `LB_TABLE_SIZE` as an index.
const TABLE: usize = LB_TABLE_SIZE as usize;
/// Seeds of [`address_hash`] for a server's offset and skip.
const OFFSET_SEED: u64 = 0x6d61_676c_6576_6f66; // "maglevof"
const SKIP_SEED: u64 = 0x6d61_676c_6576_736b; // "maglevsk"

/// splitmix64's finaliser (Steele, Lea, Flood 2014): every input bit reaches every output bit.
const fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The backends with weight, in the order both directors agree on: by address, then (the
/// same address listed twice) by weight, then by `real`, which only decides which of two
/// equal entries gets a slot, not which address it names.
fn in_order(backends: &[Backend]) -> Vec<Backend> {
    let mut servers: Vec<Backend> = backends.iter().copied().filter(|b| b.weight > 0).collect();
    servers.sort_unstable_by_key(|b| (b.address, b.weight, b.real));
    servers
}

/// Above this ratio of the largest weight to the mean, [`maglev`] orders the turns with a
/// queue rather than by walking every backend every round.
const ROUNDS_MAX_SKEW: u64 = 32;

/// Katran's weighted turns, literally: every round, each backend (in order) adds its weight
/// to its credit and, once that reaches `max`, spends `max` on a turn.
fn in_rounds(turns: &mut [Turn], max: u64, claims: &mut Claims) {
    loop {
        for turn in turns.iter_mut() {
            turn.credit += turn.weight;
            if turn.credit < max {
                continue;
            }
            turn.credit -= max;
            if claims.claim(turn) {
                return;
            }
        }
    }
}

/// The same turns in the same order, without visiting idle backends: after `r` rounds a
/// backend of weight `w` has taken `floor(r * w / max)` turns, so its `k`-th turn falls in
/// round `ceil(k * max / w)`; within a round, turns go in backend order.
fn by_queue(turns: &mut [Turn], max: u64, claims: &mut Claims) {
    let round_of = |turn: &Turn| ((turn.claimed + 1) * max).div_ceil(turn.weight);
    let mut queue: BinaryHeap<Reverse<(u64, usize)>> = turns
        .iter()
        .enumerate()
        .map(|(i, turn)| Reverse((round_of(turn), i)))
        .collect();
    loop {
        let mut next = queue.peek_mut().expect("one entry per backend");
        let i = next.0.1;
        if claims.claim(&mut turns[i]) {
            return;
        }
        *next = Reverse((round_of(&turns[i]), i));
    }
}

/// The table being filled, and which of its slots are taken (a bitmap, 8 KB).
struct Claims<'a> {
    table: &'a mut LbTable,
    taken: Vec<u64>,
    filled: usize,
}

impl<'a> Claims<'a> {
    fn new(table: &'a mut LbTable) -> Self {
        Self {
            table,
            taken: vec![0; TABLE.div_ceil(64)],
            filled: 0,
        }
    }

    /// `turn` takes the next free slot of its preference list; true once the table is full.
    fn claim(&mut self, turn: &mut Turn) -> bool {
        let mut slot = turn.next;
        while self.taken[slot / 64] & (1 << (slot % 64)) != 0 {
            slot = turn.step(slot);
        }
        self.taken[slot / 64] |= 1 << (slot % 64);
        self.table.slots[slot] = turn.real;
        turn.next = turn.step(slot);
        turn.claimed += 1;
        self.filled += 1;
        self.filled == TABLE
    }
}

/// One backend's place in Maglev's populate loop: its permutation as offset/skip arithmetic
/// (never materialised) and its weighted turns.
struct Turn {
    real: u16,
    weight: u64,
    /// [`in_rounds`]: weight gathered towards the next turn.
    credit: u64,
    /// Slots it has claimed so far.
    claimed: u64,
    /// Where its preference list continues: the slot after the last one it claimed.
    next: usize,
    /// In `1..M`.
    skip: usize,
}

impl Turn {
    fn new(backend: Backend) -> Self {
        let m = u64::from(LB_TABLE_SIZE);
        let offset = address_hash(&backend.address, OFFSET_SEED) % m;
        let skip = address_hash(&backend.address, SKIP_SEED) % (m - 1) + 1;
        Self {
            real: backend.real,
            weight: u64::from(backend.weight),
            credit: 0,
            claimed: 0,
            #[expect(clippy::cast_possible_truncation, reason = "below LB_TABLE_SIZE")]
            next: offset as usize,
            #[expect(clippy::cast_possible_truncation, reason = "below LB_TABLE_SIZE")]
            skip: skip as usize,
        }
    }

    /// The next slot of the list: `(slot + skip) mod M` without a division.
    fn step(&self, slot: usize) -> usize {
        let next = slot + self.skip;
        if next >= TABLE { next - TABLE } else { next }
    }
}

/// The WRR weights of `servers` (all above 0): divided by their gcd, scaled down when they
/// add up to more than the table holds.
fn wrr_weights(servers: &[Backend]) -> Vec<u64> {
    let weights: Vec<u64> = servers.iter().map(|b| u64::from(b.weight)).collect();
    let reduced = divided_by_gcd(weights);
    let sum: u64 = reduced.iter().sum();
    let m = u64::from(LB_TABLE_SIZE);
    if sum <= m {
        return reduced;
    }
    let scale =
        |target: u64| -> Vec<u64> { reduced.iter().map(|&w| (w * target / sum).max(1)).collect() };
    let mut scaled = scale(m);
    if scaled.iter().sum::<u64>() > m {
        // Weights lifted to 1 overflowed the table: leave room for one slot each.
        scaled = scale(m.saturating_sub(reduced.len() as u64));
    }
    divided_by_gcd(scaled)
}

fn divided_by_gcd(weights: Vec<u64>) -> Vec<u64> {
    let g = weights.iter().copied().fold(0, gcd).max(1);
    weights.into_iter().map(|w| w / g).collect()
}

const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests;
