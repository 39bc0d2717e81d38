//! The maps, each with its role. The agent creates, fills and pins them
//! (under `/sys/fs/bpf/vipflip/<ifname>/`); the program only reads config and bumps counters.

use aya_ebpf::{
    btf_maps::{Array, HashMap, PerCpuArray},
    macros::btf_map,
};
use vipflip_common::{
    MAX_PEERS, MAX_VIPS, MAX_VRIDS, PeerKey, Stats, VIP_FILTER_WORDS, VRID_STATS_ENTRIES, VipEntry,
    VipKey, VridEntry, VridKey, VridStats,
};

/// Virtual IPs and what to do with traffic to each; flipping an owner is one update here.
#[btf_map]
pub static VIPS: HashMap<VipKey, VipEntry, { MAX_VIPS as usize }> = HashMap::new();

/// A bit per `vip_filter_bit` value, set while some VIP has that bit: `VIPS` is only looked
/// up for destinations whose bit is set.
#[btf_map]
pub static VIP_FILTER: Array<u64, { VIP_FILTER_WORDS as usize }> = Array::new();

/// The virtual routers configured on this interface; adverts for any other VRID are dropped.
#[btf_map]
pub static VRIDS: HashMap<VridKey, VridEntry, { MAX_VRIDS as usize }> = HashMap::new();

/// Allowed advert sources, per (family, VRID), consulted when the VRID enforces a list.
#[btf_map]
pub static PEERS: HashMap<PeerKey, u8, { MAX_PEERS as usize }> = HashMap::new();

/// Outcome and verdict counters (one `Stats` per CPU, index 0).
#[btf_map]
pub static STATS: PerCpuArray<Stats, 1> = PerCpuArray::new();

/// Accepted / dropped adverts per (family, VRID), index `vrid_stats_index(family, vrid)`.
#[btf_map]
pub static VRID_STATS: PerCpuArray<VridStats, { VRID_STATS_ENTRIES as usize }> = PerCpuArray::new();
