//! The maps, each with its role. The agent creates, fills and pins them
//! (under `/sys/fs/bpf/vipflip/<ifname>/`); the program only reads config and bumps counters.

use aya_ebpf::{
    btf_maps::{Array, HashMap, LruHashMap, PerCpuArray},
    macros::btf_map,
};
use vipflip_common::{
    DecapStats, FibCacheEntry, FlowBudget, FlowEntry, FlowKey, LB_TABLES as LB_TABLE_COUNT,
    LbTable, MAX_DECAP_PORTS, MAX_FLOWS, MAX_PEERS, MAX_REALS, MAX_SERVICES, MAX_VIPS, MAX_VRIDS,
    PeerKey, RealSlot, ServiceEntry, ServiceKey, Stats, TunnelSlot, VIP_FILTER_WORDS,
    VRID_STATS_ENTRIES, VipEntry, VipKey, VridEntry, VridKey, VridStats,
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

/// Virtual services (VIP, protocol, port; port 0 = every port), consulted only for traffic to
/// a VIP this host owns (`Local`). Swapping a service's table is one update here.
#[btf_map]
pub static SERVICES: HashMap<ServiceKey, ServiceEntry, { MAX_SERVICES as usize }> = HashMap::new();

/// Two lookup tables per service (slot -> `REALS` index): `SERVICES` names the live one; the
/// agent writes the other and then flips the service entry.
#[btf_map]
pub static LB_TABLES: Array<LbTable, { LB_TABLE_COUNT as usize }> = Array::new();

/// Real servers (and sorry servers) of every service: where to send, and whether they may
/// take flows (`REAL_ALIVE`). Two copies each and which is live: the agent writes the other
/// one, then flips (`RealSlot`).
#[btf_map]
pub static REALS: Array<RealSlot, { MAX_REALS as usize }> = Array::new();

/// A tunnel's addresses and port per `REALS` index, two copies switched by the `live` byte
/// of the same `REALS` slot (`TunnelSlot`); read by tunnelled frames only.
#[btf_map]
pub static TUNNELS: Array<TunnelSlot, { MAX_REALS as usize }> = Array::new();

/// Established flows (client 5-tuple -> real server and its generation): a flow stays on its
/// real server while that one stays alive, whatever the table says now.
///
/// One table for all CPUs, with per-CPU LRU lists (`BPF_F_NO_COMMON_LRU`: each CPU evicts
/// from its own list, so inserts do not contend on one lock). Not a per-CPU map: where the
/// frames of one flow are not steered to one CPU (veth, RPS off, a NIC hashing on addresses
/// only), per-CPU tables disagree once a client port is reused, and a flow's SYN and its
/// data reach different real servers (seen in the namespace tests as resets).
#[btf_map]
pub static FLOWS: LruHashMap<FlowKey, FlowEntry, { MAX_FLOWS as usize }, BPF_F_NO_COMMON_LRU> =
    LruHashMap::new();

/// `BPF_F_NO_COMMON_LRU` (include/uapi/linux/bpf.h): an LRU list per CPU.
const BPF_F_NO_COMMON_LRU: usize = 1 << 1;

/// This CPU's budget of new flows to remember per second (`FlowBudget`); the agent writes
/// the limit.
#[btf_map]
pub static FLOW_BUDGET: PerCpuArray<FlowBudget, 1> = PerCpuArray::new();

/// Weighted round robin: the next position in each service's sequence, per CPU, by
/// `ServiceEntry::index`.
#[btf_map]
pub static LB_CURSORS: PerCpuArray<u32, { MAX_SERVICES as usize }> = PerCpuArray::new();

/// What `bpf_fib_lookup` said of each tunnel's real server, per CPU, by `REALS` index,
/// reused for `FIB_CACHE_NS` (see `tunnel::route`).
#[btf_map]
pub static FIB_CACHE: PerCpuArray<FibCacheEntry, { MAX_REALS as usize }> = PerCpuArray::new();

/// The UDP ports the `decap` program takes GUE on (network byte order), filled by
/// `vipflip load-decap` before it attaches the program.
#[btf_map]
pub static DECAP_PORTS: HashMap<[u8; 2], u8, { MAX_DECAP_PORTS as usize }> = HashMap::new();

/// What the `decap` program did, per CPU: `DecapStats`.
#[btf_map]
pub static DECAP_STATS: PerCpuArray<DecapStats, 1> = PerCpuArray::new();
