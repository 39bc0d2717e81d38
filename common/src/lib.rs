//! Types shared by the XDP program (`vipflip-ebpf`) and the agent (`vipflip`).
//!
//! Everything here is a BPF map key or value, so every type is `#[repr(C)]`, has no implicit
//! padding (explicit `_pad` fields instead, zeroed by the constructors) and no `bool`: the kernel
//! hashes keys byte for byte, and bpftool prints the BTF of these types as named fields.
//! Addresses are kept in network byte order as byte arrays (`addr: [u8; 16]`), so neither side
//! ever has to think about host endianness for them.
//!
//! Keys made of bytes are `align(4)` (their sizes are multiples of 4, so this adds no
//! padding): with byte alignment, LLVM zeroes and copies them on the BPF stack with calls to
//! a `memset` subprogram and byte-by-byte moves, which doubled the cost of the XDP
//! program's non-VIP path (measured: 13 → 26 ns per packet).
//!
//! Each map type derives `bytemuck::{Pod, Zeroable}`: the derive checks at compile time that
//! it is `repr(C)` without padding and that every bit pattern is valid, so the casts below
//! need no `unsafe`, and the agent's `aya::Pod` impls rest on that proof.
#![no_std]

use bytemuck::{Pod, Zeroable};

/// Address family tag used in map keys: IPv4.
pub const FAMILY_IPV4: u8 = 4;
/// Address family tag used in map keys: IPv6.
pub const FAMILY_IPV6: u8 = 6;

/// IP protocol / IPv6 next header number of VRRP (RFC 5798 §5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;
/// VRRP advertisements must arrive with TTL / hop limit 255 (RFC 5798 §5.1.1.3).
pub const VRRP_TTL: u8 = 255;
/// The VRRP message type "ADVERTISEMENT" (RFC 5798 §5.2.2); no other type is defined.
pub const VRRP_TYPE_ADVERTISEMENT: u8 = 1;
/// Length of the fixed VRRP header, before the addresses (RFC 5798 §5.1).
pub const VRRP_HEADER_LEN: usize = 8;
/// VRRP version 2 trails the addresses with 8 bytes of authentication data (RFC 3768 §5.1).
pub const VRRP_V2_AUTH_LEN: usize = 8;

/// Capacity of the `VIPS` map.
pub const MAX_VIPS: u32 = 4096;
/// Capacity of the `VRIDS` map: every VRID in both families.
pub const MAX_VRIDS: u32 = 512;
/// Capacity of the `PEERS` allow-list map.
pub const MAX_PEERS: u32 = 4096;
/// Entries of the `VRID_STATS` per-CPU array: index = `vrid_stats_index(family, vrid)`.
pub const VRID_STATS_ENTRIES: u32 = 512;

/// Words (`u64`) of the `VIP_FILTER` array: 2^16 bits, one per [`vip_filter_bit`] value.
pub const VIP_FILTER_WORDS: u32 = 1 << 10;

/// The `VIP_FILTER` bit of a VIP: its address folded to 16 bits (XOR of its 16-bit words).
///
/// The XDP program looks a destination up in `VIPS` (a hash lookup, the dearest step of the
/// non-VIP path) only when its bit is set, so ordinary traffic to addresses that are not VIPs
/// costs one inlined array read. VIPs in one /16 (IPv4) never share a bit.
pub const fn vip_filter_bit(key: &VipKey) -> u32 {
    let a = &key.addr;
    let mut folded = 0u16;
    let mut i = 0;
    while i < a.len() {
        folded ^= u16::from_be_bytes([a[i], a[i + 1]]);
        i += 2;
    }
    folded as u32
}

/// A 16-byte address field as the four native-order words it is in memory. Keys that hold
/// an address are built from words (see `VipKey::from_words`): an IPv4 address's zeroed
/// tail, written byte by byte, costs the XDP program a `memset` subprogram call.
pub const fn addr_words(addr: [u8; 16]) -> [u32; 4] {
    bytemuck::must_cast::<[u8; 16], [u32; 4]>(addr)
}

/// An IPv4 address as the words of a 16-byte address field (the tail zero).
pub const fn ipv4_words(addr: [u8; 4]) -> [u32; 4] {
    [u32::from_ne_bytes(addr), 0, 0, 0]
}

/// Key of the `VIPS` map: one virtual IP address.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct VipKey {
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    pub _pad: [u8; 3],
    /// Network byte order; an IPv4 address fills the first 4 bytes, the rest stay zero.
    pub addr: [u8; 16],
}

impl VipKey {
    /// The key of an address of either family.
    pub const fn from_ip(addr: core::net::IpAddr) -> Self {
        match addr {
            core::net::IpAddr::V4(a) => Self::ipv4(a.octets()),
            core::net::IpAddr::V6(a) => Self::ipv6(a.octets()),
        }
    }

    pub const fn ipv4(addr: [u8; 4]) -> Self {
        Self::from_words(FAMILY_IPV4, ipv4_words(addr))
    }

    pub const fn ipv6(addr: [u8; 16]) -> Self {
        Self::from_words(FAMILY_IPV6, addr_words(addr))
    }

    /// The address as the four words it is in memory (for keys built from words).
    pub const fn addr_words(&self) -> [u32; 4] {
        addr_words(self.addr)
    }

    /// Built as five whole words: the BPF backend zeroes a byte run at an odd offset (the
    /// `_pad`, a zeroed address tail) with a call to a `memset` subprogram, which on the XDP
    /// program's non-VIP path (this key is built for every IP packet) doubled its cost.
    const fn from_words(family: u8, addr: [u32; 4]) -> Self {
        let words = [
            u32::from_ne_bytes([family, 0, 0, 0]),
            addr[0],
            addr[1],
            addr[2],
            addr[3],
        ];
        // Five `u32`s in memory order are exactly its bytes: both are `Pod` of one size, which
        // `must_cast` checks at compile time.
        bytemuck::must_cast::<[u32; 5], Self>(words)
    }
}

/// What the XDP program does with a frame addressed to a VIP ([`VipEntry::action`]).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VipAction {
    /// This host owns the VIP: `XDP_PASS` to the local stack.
    Local = 1,
    /// Another host owns it: rewrite the Ethernet addresses and send the frame on
    /// (`XDP_TX` when [`VipEntry::ifindex`] is the ingress interface, `bpf_redirect` otherwise).
    Forward = 2,
    /// A backup that must not accept (RFC 5798 §6.4.2): `XDP_DROP`.
    Drop = 3,
}

impl VipAction {
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Local),
            2 => Some(Self::Forward),
            3 => Some(Self::Drop),
            _ => None,
        }
    }
}

/// [`VipEntry::flags`] bit: `SERVICES` has a service on this VIP. Only then does the program
/// look for one when the VIP is owned (`Local`): an owned VIP without services costs no
/// `SERVICES` lookups (two, exact port then port 0, when they miss).
pub const VIP_SERVICES: u8 = 1;

/// Value of the `VIPS` map. Flipping ownership of a VIP is one update of this value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct VipEntry {
    /// A [`VipAction`] as `u8`.
    pub action: u8,
    /// The VRID that owns this VIP (for operators reading the map; the program ignores it).
    pub vrid: u8,
    /// [`VIP_SERVICES`]: set by the agent's data plane, not by the election.
    pub flags: u8,
    pub _pad: [u8; 1],
    /// `Forward` only: the interface to send on.
    pub ifindex: u32,
    /// `Forward` only: the new destination MAC (the current owner's).
    pub dst_mac: [u8; 6],
    /// `Forward` only: the new source MAC (ours on `ifindex`).
    pub src_mac: [u8; 6],
}

impl VipEntry {
    pub const fn local(vrid: u8) -> Self {
        Self::simple(VipAction::Local, vrid)
    }

    pub const fn drop(vrid: u8) -> Self {
        Self::simple(VipAction::Drop, vrid)
    }

    pub const fn forward(vrid: u8, ifindex: u32, dst_mac: [u8; 6], src_mac: [u8; 6]) -> Self {
        Self {
            action: VipAction::Forward as u8,
            vrid,
            flags: 0,
            _pad: [0; 1],
            ifindex,
            dst_mac,
            src_mac,
        }
    }

    const fn simple(action: VipAction, vrid: u8) -> Self {
        Self {
            action: action as u8,
            vrid,
            flags: 0,
            _pad: [0; 1],
            ifindex: 0,
            dst_mac: [0; 6],
            src_mac: [0; 6],
        }
    }
}

/// Capacity of the `SERVICES` map: virtual services (vip, port, protocol) on one interface.
pub const MAX_SERVICES: u32 = 64;
/// Entries of the `REALS` array: real servers (and sorry servers) of all services on one
/// interface. A lookup-table slot holds an index into it, so it must fit a `u16`.
pub const MAX_REALS: u32 = 4096;
/// Slots of one service's lookup table: a prime (Maglev needs a prime table size; the
/// disruption when a real server leaves is about 1/N of the slots for N servers only while
/// the table is much larger than N).
pub const LB_TABLE_SIZE: u32 = 65_537;
/// Entries of the `LB_TABLES` array: two per service (the live one and the one being
/// written), index = `service.index * 2 + service.table`.
pub const LB_TABLES: u32 = MAX_SERVICES * 2;
/// Capacity of the `FLOWS` LRU (shared by all CPUs, each evicting from its own list).
pub const MAX_FLOWS: u32 = 65_536;

/// IP protocol numbers the load balancer serves.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
/// ICMP destination unreachable / fragmentation needed (RFC 792, RFC 1191).
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_FRAG_NEEDED: u8 = 4;
/// `ICMPv6` packet too big (RFC 4443 §3.2).
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;

/// Key of the `SERVICES` map: one virtual service. A service on port 0 takes every port of
/// its VIP and protocol; the program looks up the exact port first, then port 0.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct ServiceKey {
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    /// [`IPPROTO_TCP`] or [`IPPROTO_UDP`].
    pub protocol: u8,
    /// Network byte order; 0 = all ports.
    pub port: [u8; 2],
    /// The VIP, network byte order; IPv4 in the first 4 bytes.
    pub addr: [u8; 16],
}

impl ServiceKey {
    pub const fn new(vip: VipKey, protocol: u8, port: u16) -> Self {
        Self {
            family: vip.family,
            protocol,
            port: port.to_be_bytes(),
            addr: vip.addr,
        }
    }

    /// The `VIPS` key of this service's VIP.
    pub const fn vip(&self) -> VipKey {
        if self.family == FAMILY_IPV6 {
            VipKey::ipv6(self.addr)
        } else {
            let a = &self.addr;
            VipKey::ipv4([a[0], a[1], a[2], a[3]])
        }
    }
}

/// How a service picks the real server of a new flow ([`ServiceEntry::scheduler`]).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheduler {
    /// Maglev consistent hashing of the 5-tuple over the service's table (RFC-free; the
    /// Maglev paper, NSDI 2016): both directors pick the same server for a flow.
    Maglev = 1,
    /// Weighted round robin: a per-CPU cursor steps through a weighted, interleaved sequence
    /// in the first [`ServiceEntry::len`] slots.
    Wrr = 2,
    /// Source hashing: the client address alone, over the same consistent table as Maglev.
    SourceHash = 3,
}

impl Scheduler {
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Maglev),
            2 => Some(Self::Wrr),
            3 => Some(Self::SourceHash),
            _ => None,
        }
    }
}

/// Value of the `SERVICES` map. Swapping a service's table is one update of this value
/// (`table` flips once the other half of its `LB_TABLES` pair is fully written).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct ServiceEntry {
    /// The service's slot, `0..MAX_SERVICES`: its tables are `LB_TABLES[index * 2 + table]`.
    pub index: u16,
    /// Which of its two tables is live: 0 or 1.
    pub table: u8,
    /// A [`Scheduler`] as `u8`.
    pub scheduler: u8,
    /// Slots of the live table in use: `LB_TABLE_SIZE` for Maglev and source hashing, the
    /// length of the weighted sequence for WRR; 0 = no server to send to (drop).
    pub len: u32,
}

/// Value of the `LB_TABLES` array: slot → index into `REALS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct LbTable {
    pub slots: [u16; LB_TABLE_SIZE as usize],
}

/// [`RealEntry::flags`] bit: the real server may take flows (healthy, or the sorry server in
/// use). A flow remembered in `FLOWS` for a real without it is scheduled afresh; a drained
/// real (weight 0) keeps it and so keeps its flows.
pub const REAL_ALIVE: u8 = 1;

/// How frames reach a real server ([`RealEntry::forward`]).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    /// Direct Routing (LVS-DR): the frame unchanged but for its Ethernet addresses, on the
    /// real server's link.
    Direct = 0,
    /// IP-in-IP (LVS-TUN, katran's default): an outer IPv4 or IPv6 header to the real
    /// server's address (RFC 2003, RFC 2473), routed by the kernel's FIB.
    Ipip = 1,
    /// Generic UDP Encapsulation, variant 1 (draft-ietf-intarea-gue §3.1: the inner IP
    /// packet right after the UDP header), decapsulated by Linux `fou` in `gue` mode.
    Gue = 2,
}

impl Forward {
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Direct),
            1 => Some(Self::Ipip),
            2 => Some(Self::Gue),
            _ => None,
        }
    }

    /// Bytes the encapsulation adds in front of the inner IP packet, for an outer header of
    /// `family`.
    pub const fn overhead(self, family: u8) -> usize {
        let ip = if family == FAMILY_IPV6 { 40 } else { 20 };
        match self {
            Self::Direct => 0,
            Self::Ipip => ip,
            Self::Gue => ip + 8,
        }
    }
}

/// Where to send a flow's frames, as the agent writes it: the part every balanced frame
/// reads ([`RealHead`], in `REALS`) and a tunnel's addresses ([`TunnelEntry`], in `TUNNELS`,
/// read by tunnelled frames only). Kept apart in the maps so that Direct Routing copies 24
/// bytes per frame, not 60, and the program's 512-byte stack holds one more copy.
///
/// Direct Routing uses `ifindex` and the MACs; a tunnel uses `addr` (the outer destination)
/// and finds the interface and MACs with `bpf_fib_lookup`, so the kernel's routes and
/// neighbours decide the path.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct RealEntry {
    /// Interface to send on (Direct Routing): `XDP_TX` when it is the ingress one,
    /// `bpf_redirect` otherwise.
    pub ifindex: u32,
    /// Changes whenever this slot is given to another real server, so flows remembered for
    /// the previous one are not sent to the new one.
    pub generation: u32,
    /// The real server's MAC (from the neighbour table; Direct Routing).
    pub dst_mac: [u8; 6],
    /// Ours on `ifindex` (Direct Routing).
    pub src_mac: [u8; 6],
    /// [`REAL_ALIVE`].
    pub flags: u8,
    /// A [`Forward`] as `u8`.
    pub forward: u8,
    /// The family of `addr` and of the outer header (tunnels); it may differ from the VIP's
    /// (IPv4 in IPv6).
    pub family: u8,
    /// Tunnels: how many low bits of `source` each flow varies (katran's per-flow outer
    /// source, so the real server's NIC spreads flows over its queues by the outer header);
    /// 0 with `source` all zero: the address the FIB chooses for the egress interface.
    pub source_bits: u8,
    /// GUE: the real server's `fou` port, network byte order.
    pub gue_port: [u8; 2],
    pub _pad: [u8; 2],
    /// The real server's address (tunnels), network byte order; IPv4 in the first 4 bytes.
    pub addr: [u8; 16],
    /// The outer source, or the prefix whose low `source_bits` vary per flow (tunnels).
    pub source: [u8; 16],
}

impl RealEntry {
    /// A Direct Routing entry.
    pub const fn direct(
        ifindex: u32,
        generation: u32,
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
        flags: u8,
    ) -> Self {
        Self {
            ifindex,
            generation,
            dst_mac,
            src_mac,
            flags,
            forward: Forward::Direct as u8,
            family: 0,
            source_bits: 0,
            gue_port: [0; 2],
            _pad: [0; 2],
            addr: [0; 16],
            source: [0; 16],
        }
    }

    /// What goes into `REALS`.
    pub const fn head(&self) -> RealHead {
        RealHead {
            ifindex: self.ifindex,
            generation: self.generation,
            dst_mac: self.dst_mac,
            src_mac: self.src_mac,
            flags: self.flags,
            forward: self.forward,
            family: self.family,
            source_bits: self.source_bits,
        }
    }

    /// What goes into `TUNNELS`.
    pub const fn tunnel(&self) -> TunnelEntry {
        TunnelEntry {
            gue_port: self.gue_port,
            _pad: [0; 2],
            addr: self.addr,
            source: self.source,
        }
    }

    /// The entry made of its two parts.
    pub const fn from_parts(head: &RealHead, tunnel: &TunnelEntry) -> Self {
        Self {
            ifindex: head.ifindex,
            generation: head.generation,
            dst_mac: head.dst_mac,
            src_mac: head.src_mac,
            flags: head.flags,
            forward: head.forward,
            family: head.family,
            source_bits: head.source_bits,
            gue_port: tunnel.gue_port,
            _pad: [0; 2],
            addr: tunnel.addr,
            source: tunnel.source,
        }
    }
}

/// The part of a [`RealEntry`] in `REALS`: what every balanced frame reads. Its fields are
/// the [`RealEntry`]'s of the same names.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct RealHead {
    pub ifindex: u32,
    pub generation: u32,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// [`REAL_ALIVE`]; the program sets [`REAL_READ_COPY`] in its own copy.
    pub flags: u8,
    pub forward: u8,
    pub family: u8,
    pub source_bits: u8,
}

/// [`RealHead::flags`] bit the program sets in the copy it read (never in the map): which of
/// the slot's two copies that was, so a tunnelled frame reads the matching `TUNNELS` copy.
pub const REAL_READ_COPY: u8 = 0x80;

/// The part of a [`RealEntry`] in `TUNNELS`: a tunnel's addresses and port.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct TunnelEntry {
    pub gue_port: [u8; 2],
    pub _pad: [u8; 2],
    pub addr: [u8; 16],
    pub source: [u8; 16],
}

/// Value of the `TUNNELS` array: two copies, switched by the `live` byte of the same
/// index's [`RealSlot`] (the agent writes the spare one before it flips that byte).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct TunnelSlot {
    pub copies: [TunnelEntry; 2],
}

/// Value of the `REALS` array: two copies of a real server's [`RealHead`] and which one is
/// live, so no packet reads a half-written entry.
///
/// An array update from userspace is a `memcpy` into the element while the program may be
/// reading it on another CPU, and a `RealHead` is 24 bytes: rewritten in place, a packet
/// could take the new MAC with the old generation, or half of each MAC. So the agent writes
/// the copy that is not live (the update rewrites `live` and the live copy with the bytes
/// they already hold, so what packets read does not change), then flips `live` in a second
/// update that changes that one byte only: a byte is never torn, so each packet reads the
/// old copy, complete, or the new one, complete (`Dataplane::set_real`). The `TUNNELS` copy
/// of the same index and number goes with it.
///
/// The program reads `live` once, then the copy it names (an address that depends on the
/// value read, so no CPU fetches the copy first). That copy is written again only by the
/// shadow write that follows the flip retiring it: at least two updates (syscalls,
/// microseconds) after the packet read `live`, far longer than a packet takes to read its
/// copies; the `LB_TABLES` halves rely on the same.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct RealSlot {
    /// Which of `copies` packets read: 0 or 1 (only the low bit is used).
    pub live: u8,
    pub _pad: [u8; 3],
    pub copies: [RealHead; 2],
}

impl RealSlot {
    /// The copy packets read now.
    pub const fn live(&self) -> &RealHead {
        &self.copies[(self.live & 1) as usize]
    }
}

/// Key of the `FLOWS` LRU: a flow as the client sends it.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct FlowKey {
    pub family: u8,
    pub protocol: u8,
    /// Network byte order.
    pub src_port: [u8; 2],
    pub dst_port: [u8; 2],
    pub _pad: [u8; 2],
    /// Client address, network byte order; IPv4 in the first 4 bytes.
    pub src: [u8; 16],
    /// The VIP.
    pub dst: [u8; 16],
}

impl FlowKey {
    /// Built as ten whole words, for the reason `VipKey::from_words` gives: this key is built
    /// for every balanced packet. `ports` are the source port then the destination port,
    /// network byte order, as they sit in the TCP/UDP header.
    pub const fn from_words(
        family: u8,
        protocol: u8,
        ports: [u8; 4],
        src: [u32; 4],
        dst: [u32; 4],
    ) -> Self {
        let words = [
            u32::from_ne_bytes([family, protocol, ports[0], ports[1]]),
            u32::from_ne_bytes([ports[2], ports[3], 0, 0]),
            src[0],
            src[1],
            src[2],
            src[3],
            dst[0],
            dst[1],
            dst[2],
            dst[3],
        ];
        bytemuck::must_cast::<[u32; 10], Self>(words)
    }

    /// The key as the ten native-order words it is in memory.
    pub const fn as_words(&self) -> [u32; 10] {
        bytemuck::must_cast::<Self, [u32; 10]>(*self)
    }
}

/// Value of the `FLOWS` LRU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct FlowEntry {
    /// Index into `REALS`.
    pub real: u32,
    /// [`RealEntry::generation`] when the flow was scheduled.
    pub generation: u32,
}

/// The hash both directors compute for a flow: what Maglev and source hashing index their
/// table with (`hash % LB_TABLE_SIZE`). Defined here so the agent's tests can predict the
/// program's choice. Source hashing passes a key with only `family` and `src` set.
///
/// Jenkins' one-at-a-time mixing over the key's 40 bytes, taken a 32-bit word at a time
/// (fixed trip count: the verifier unrolls it), finished with murmur3's avalanche.
pub const fn flow_hash(key: &FlowKey) -> u32 {
    let words = flow_key_words(key);
    let mut h: u32 = 0x9e37_79b9;
    let mut i = 0;
    while i < words.len() {
        h = h.wrapping_add(words[i]);
        h = h.wrapping_add(h << 10);
        h ^= h >> 6;
        i += 1;
    }
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

const fn flow_key_words(key: &FlowKey) -> [u32; 10] {
    let head = u32::from_le_bytes([key.family, key.protocol, key.src_port[0], key.src_port[1]]);
    let ports = u32::from_le_bytes([key.dst_port[0], key.dst_port[1], 0, 0]);
    let s = &key.src;
    let d = &key.dst;
    [
        head,
        ports,
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        u32::from_le_bytes([s[4], s[5], s[6], s[7]]),
        u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
        u32::from_le_bytes([s[12], s[13], s[14], s[15]]),
        u32::from_le_bytes([d[0], d[1], d[2], d[3]]),
        u32::from_le_bytes([d[4], d[5], d[6], d[7]]),
        u32::from_le_bytes([d[8], d[9], d[10], d[11]]),
        u32::from_le_bytes([d[12], d[13], d[14], d[15]]),
    ]
}

/// The per-flow entropy a tunnel puts in its outer header (the varied low bits of the
/// outer source, GUE's UDP source port, the outer IPv6 flow label), so a real server's NIC
/// and the routers on the way spread tunnelled flows. Not [`flow_hash`]: it only needs to
/// differ between flows and runs on every tunnelled frame, so it mixes the ports and the
/// client's address once.
pub const fn tunnel_entropy(key: &FlowKey) -> u32 {
    let w = key.as_words();
    let mut h = (w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4] ^ w[5]).wrapping_mul(0x9e37_79b1);
    h ^= h >> 15;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^ (h >> 13)
}

/// The single value of the per-CPU `FLOW_BUDGET` array: how many new flows this CPU may
/// remember in `FLOWS` per second (katran's LRU insert limit). Past it, a new flow is still
/// sent where the table says, but not remembered, so a SYN flood from spoofed sources cannot
/// evict the established flows (which the table alone would move after a change).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FlowBudget {
    /// `bpf_ktime_get_coarse_ns` when the current one-second window began.
    pub window_start_ns: u64,
    /// Inserts allowed per window (written by the agent); 0: no limit.
    pub limit: u32,
    /// Inserts made in the current window.
    pub inserted: u32,
    /// New flows not remembered because the window's budget was spent.
    pub refused: u64,
}

/// The length of a `FlowBudget` window.
pub const FLOW_BUDGET_WINDOW_NS: u64 = 1_000_000_000;

/// How long a CPU reuses what `bpf_fib_lookup` said of a tunnel's real server (its
/// `FIB_CACHE` entry): a route or neighbour change reaches tunnelled traffic within this.
pub const FIB_CACHE_NS: u64 = 50_000_000;

/// Value of the per-CPU `FIB_CACHE` array, by `REALS` index: the path to a tunnel's real
/// server as the FIB gave it, so most frames cost an array read instead of a lookup.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FibCacheEntry {
    /// `bpf_ktime_get_coarse_ns` after which the entry is looked up again.
    pub expires_ns: u64,
    /// The `RealEntry::generation` it was looked up for: a slot given to another server
    /// misses.
    pub generation: u32,
    pub ifindex: u32,
    /// The path's MTU (the route's or the interface's).
    pub mtu: u32,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// The source the FIB picks towards the real server (IPv4 in the first 4 bytes).
    pub source: [u8; 16],
}

/// Entries of `DECAP_PORTS`: the GUE ports a real server's `decap` program takes.
pub const MAX_DECAP_PORTS: u32 = 16;

/// The single value of the per-CPU `DECAP_STATS` array: what the `decap` program (on a real
/// server) did with each frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DecapStats {
    /// IP-in-IP (outer protocol 4 or 41) unwrapped.
    pub ipip: u64,
    /// GUE (UDP to a port in `DECAP_PORTS`, an IP packet right behind) unwrapped.
    pub gue: u64,
    /// Anything else: passed untouched.
    pub passed: u64,
}

/// Key of the `VRIDS` map: a virtual router configured on this interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct VridKey {
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`]: the same VRID in two families is two routers
    /// (RFC 5798 §7.1 keeps IPv4 and IPv6 virtual routers apart).
    pub family: u8,
    pub vrid: u8,
    pub _pad: [u8; 2],
}

impl VridKey {
    pub const fn new(family: u8, vrid: u8) -> Self {
        Self {
            family,
            vrid,
            _pad: [0; 2],
        }
    }
}

/// Value of the `VRIDS` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct VridEntry {
    /// 1: only sources present in `PEERS` for this (family, VRID) are accepted; 0: any source.
    pub enforce_allow_list: u8,
    pub _pad: [u8; 3],
}

/// Key of the `PEERS` map: one allowed advert source for one virtual router.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct PeerKey {
    pub family: u8,
    pub vrid: u8,
    pub _pad: [u8; 2],
    /// Network byte order; IPv4 in the first 4 bytes.
    pub addr: [u8; 16],
}

impl PeerKey {
    /// Built as five whole words (see `VipKey::from_words`): built for every advert from a
    /// VRID that enforces its allow list.
    pub const fn from_words(family: u8, vrid: u8, addr: [u32; 4]) -> Self {
        let words = [
            u32::from_ne_bytes([family, vrid, 0, 0]),
            addr[0],
            addr[1],
            addr[2],
            addr[3],
        ];
        bytemuck::must_cast::<[u32; 5], Self>(words)
    }
}

/// Per-(family, VRID) advert counters, a per-CPU array value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct VridStats {
    /// Adverts passed to the agent.
    pub accepted: u64,
    /// Adverts dropped for any reason (the reason is counted in `STATS`).
    pub dropped: u64,
}

/// Index of a (family, VRID) pair in `VRID_STATS`: IPv4 at 0..=255, IPv6 at 256..=511.
pub const fn vrid_stats_index(family: u8, vrid: u8) -> u32 {
    let base = if family == FAMILY_IPV6 { 256 } else { 0 };
    base + vrid as u32
}

/// Why a frame got the verdict it got. The XDP program decides exactly one outcome per frame
/// and counts it, with its verdict, at its single exit point.
///
/// The discriminant is the index of the matching `u64` field in [`Stats`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not IPv4/IPv6/ARP, or IP traffic that is neither VRRP nor to a VIP.
    PassOther = 0,
    /// ARP: the agent and the kernel decide on it.
    PassArp,
    /// IPv6 neighbour solicitation / advertisement: always the kernel's business.
    PassNeighbour,
    /// IPv6 with an extension header: passed untouched.
    PassIpv6ExtHeader,
    /// A frame too short or malformed to parse (not VRRP): the kernel will judge it.
    PassMalformed,
    /// A valid VRRP advert for a configured VRID: passed to the agent's socket.
    VrrpAccepted,
    /// Traffic to a VIP this host owns.
    VipLocal,
    /// Traffic to a VIP forwarded on the ingress interface with `XDP_TX`.
    VipForwardTx,
    /// Traffic to a VIP redirected to another interface.
    VipForwardRedirect,
    /// Traffic to a VIP this host must not accept.
    VipDrop,
    /// A `VIPS` entry the program does not understand (an agent bug): passed.
    VipBadEntry,
    /// VRRP: TTL / hop limit ≠ 255 (RFC 5798 §5.1.1.3).
    DropBadTtl,
    /// VRRP: version neither 2 nor 3, or version 2 over IPv6.
    DropBadVersion,
    /// VRRP: type ≠ 1 (RFC 5798 §5.2.2).
    DropBadType,
    /// VRRP: the IP payload does not cover the header, the addresses (and v2 auth data).
    DropTruncated,
    /// VRRP: `Count IPvX Addr` = 0 (RFC 9568 §5.2.5).
    DropZeroCount,
    /// VRRP: Max Adver Int = 0 (RFC 9568 §5.2.7).
    DropZeroInterval,
    /// VRRP: no virtual router with this VRID and family is configured on this interface.
    DropUnknownVrid,
    /// VRRP: the source address is not in this VRID's allow-list.
    DropPeerNotAllowed,
    /// Traffic to a virtual service sent to its real server with `XDP_TX`.
    LbForwardTx,
    /// Traffic to a virtual service redirected to its real server's interface.
    LbForwardRedirect,
    /// Traffic to a virtual service with no real server to take it (none healthy, no sorry
    /// server): dropped.
    LbNoServer,
    /// ICMP fragmentation needed / `ICMPv6` packet too big about a service's flow, sent to the
    /// real server of that flow (its path MTU discovery needs it; RFC 1191, RFC 8201).
    LbIcmpForward,
    /// Traffic to a VIP with services that the balancer cannot place (an IPv4 fragment or
    /// header options, a truncated L4 header): passed to the local stack.
    LbPassUnsupported,
    /// Traffic to a virtual service encapsulated (IPIP or GUE) towards its real server and
    /// sent back out of the ingress interface (`XDP_TX`).
    LbTunnelTx,
    /// Encapsulated and redirected to the interface the FIB chose.
    LbTunnelRedirect,
    /// Too big once encapsulated for the path's MTU: answered with ICMP fragmentation needed
    /// / `ICMPv6` packet too big carrying the MTU that fits (RFC 1191, RFC 8201).
    LbTunnelTooBig,
    /// Too big once encapsulated, and no error can be sent (an IPv4 datagram without DF, or
    /// too short to quote): dropped.
    LbTunnelTooBigDropped,
    /// No route to the real server (`bpf_fib_lookup` failed, or forwarding is off on the
    /// ingress interface): dropped.
    LbTunnelNoRoute,
    /// The next hop to the real server has no neighbour entry yet: dropped (the kernel
    /// resolves it on the health checks' traffic).
    LbTunnelNoNeighbour,
}

/// Number of [`Outcome`]s, i.e. of outcome counters at the start of [`Stats`].
pub const OUTCOME_COUNT: u32 = Outcome::LbTunnelNoNeighbour as u32 + 1;

impl Outcome {
    /// Every outcome, in discriminant order.
    pub const ALL: [Outcome; OUTCOME_COUNT as usize] = [
        Outcome::PassOther,
        Outcome::PassArp,
        Outcome::PassNeighbour,
        Outcome::PassIpv6ExtHeader,
        Outcome::PassMalformed,
        Outcome::VrrpAccepted,
        Outcome::VipLocal,
        Outcome::VipForwardTx,
        Outcome::VipForwardRedirect,
        Outcome::VipDrop,
        Outcome::VipBadEntry,
        Outcome::DropBadTtl,
        Outcome::DropBadVersion,
        Outcome::DropBadType,
        Outcome::DropTruncated,
        Outcome::DropZeroCount,
        Outcome::DropZeroInterval,
        Outcome::DropUnknownVrid,
        Outcome::DropPeerNotAllowed,
        Outcome::LbForwardTx,
        Outcome::LbForwardRedirect,
        Outcome::LbNoServer,
        Outcome::LbIcmpForward,
        Outcome::LbPassUnsupported,
        Outcome::LbTunnelTx,
        Outcome::LbTunnelRedirect,
        Outcome::LbTunnelTooBig,
        Outcome::LbTunnelTooBigDropped,
        Outcome::LbTunnelNoRoute,
        Outcome::LbTunnelNoNeighbour,
    ];

    /// The counter's name, as in [`Stats`] and as printed by `vipflip maps`.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::PassOther => "pass_other",
            Outcome::PassArp => "pass_arp",
            Outcome::PassNeighbour => "pass_neighbour",
            Outcome::PassIpv6ExtHeader => "pass_ipv6_ext_header",
            Outcome::PassMalformed => "pass_malformed",
            Outcome::VrrpAccepted => "vrrp_accepted",
            Outcome::VipLocal => "vip_local",
            Outcome::VipForwardTx => "vip_forward_tx",
            Outcome::VipForwardRedirect => "vip_forward_redirect",
            Outcome::VipDrop => "vip_drop",
            Outcome::VipBadEntry => "vip_bad_entry",
            Outcome::DropBadTtl => "bad_ttl",
            Outcome::DropBadVersion => "bad_version",
            Outcome::DropBadType => "bad_type",
            Outcome::DropTruncated => "truncated",
            Outcome::DropZeroCount => "zero_count",
            Outcome::DropZeroInterval => "zero_interval",
            Outcome::DropUnknownVrid => "unknown_vrid",
            Outcome::DropPeerNotAllowed => "peer_not_allowed",
            Outcome::LbForwardTx => "lb_forward_tx",
            Outcome::LbForwardRedirect => "lb_forward_redirect",
            Outcome::LbNoServer => "lb_no_server",
            Outcome::LbIcmpForward => "lb_icmp_forward",
            Outcome::LbPassUnsupported => "lb_pass_unsupported",
            Outcome::LbTunnelTx => "lb_tunnel_tx",
            Outcome::LbTunnelRedirect => "lb_tunnel_redirect",
            Outcome::LbTunnelTooBig => "lb_tunnel_too_big",
            Outcome::LbTunnelTooBigDropped => "lb_tunnel_too_big_dropped",
            Outcome::LbTunnelNoRoute => "lb_tunnel_no_route",
            Outcome::LbTunnelNoNeighbour => "lb_tunnel_no_neighbour",
        }
    }

    /// True for the VRRP drop reasons.
    pub const fn is_vrrp_drop(self) -> bool {
        let n = self as u32;
        n >= Outcome::DropBadTtl as u32 && n <= Outcome::DropPeerNotAllowed as u32
    }
}

/// Index of a verdict counter in [`Stats`]: `VERDICT_BASE + xdp_action`.
pub const VERDICT_BASE: u32 = OUTCOME_COUNT;
/// XDP actions as the kernel numbers them (`enum xdp_action`).
pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;
/// Number of `u64` counters in [`Stats`].
pub const STATS_COUNTERS: u32 = OUTCOME_COUNT + 5;

/// The single value of the per-CPU `STATS` array: one `u64` per [`Outcome`] (in discriminant
/// order), then one per XDP verdict. Named fields so `bpftool map dump` explains itself; the
/// program addresses them by index (`Outcome as u32`, `VERDICT_BASE + action`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Stats {
    pub pass_other: u64,
    pub pass_arp: u64,
    pub pass_neighbour: u64,
    pub pass_ipv6_ext_header: u64,
    pub pass_malformed: u64,
    pub vrrp_accepted: u64,
    pub vip_local: u64,
    pub vip_forward_tx: u64,
    pub vip_forward_redirect: u64,
    pub vip_drop: u64,
    pub vip_bad_entry: u64,
    pub bad_ttl: u64,
    pub bad_version: u64,
    pub bad_type: u64,
    pub truncated: u64,
    pub zero_count: u64,
    pub zero_interval: u64,
    pub unknown_vrid: u64,
    pub peer_not_allowed: u64,
    pub lb_forward_tx: u64,
    pub lb_forward_redirect: u64,
    pub lb_no_server: u64,
    pub lb_icmp_forward: u64,
    pub lb_pass_unsupported: u64,
    pub lb_tunnel_tx: u64,
    pub lb_tunnel_redirect: u64,
    pub lb_tunnel_too_big: u64,
    pub lb_tunnel_too_big_dropped: u64,
    pub lb_tunnel_no_route: u64,
    pub lb_tunnel_no_neighbour: u64,
    pub verdict_aborted: u64,
    pub verdict_drop: u64,
    pub verdict_pass: u64,
    pub verdict_tx: u64,
    pub verdict_redirect: u64,
}

impl Stats {
    /// The counters as an array, indexed like the program indexes them.
    pub const fn as_array(&self) -> [u64; STATS_COUNTERS as usize] {
        // `Stats` is `repr(C)` and made only of `u64` fields, so it has the layout of
        // `[u64; STATS_COUNTERS]`; `must_cast` checks the sizes at compile time.
        bytemuck::must_cast::<Self, [u64; STATS_COUNTERS as usize]>(*self)
    }

    /// The counter of one outcome.
    pub const fn outcome(&self, outcome: Outcome) -> u64 {
        self.as_array()[outcome as usize]
    }

    /// The counter of one XDP verdict (`XDP_PASS`, …).
    pub const fn verdict(&self, action: u32) -> u64 {
        self.as_array()[(VERDICT_BASE + action) as usize]
    }
}

// Layout checks that hold on both sides (the BPF target and the host).
const _: () = {
    assert!(core::mem::size_of::<Stats>() == STATS_COUNTERS as usize * 8);
    assert!(core::mem::size_of::<VipKey>() == 20);
    assert!(core::mem::size_of::<VipEntry>() == 20);
    assert!(core::mem::size_of::<VridKey>() == 4);
    assert!(core::mem::size_of::<VridEntry>() == 4);
    assert!(core::mem::size_of::<PeerKey>() == 20);
    assert!(core::mem::size_of::<VridStats>() == 16);
    assert!(core::mem::size_of::<ServiceKey>() == 20);
    assert!(core::mem::size_of::<ServiceEntry>() == 8);
    assert!(core::mem::size_of::<LbTable>() == LB_TABLE_SIZE as usize * 2);
    assert!(core::mem::size_of::<RealEntry>() == 60);
    assert!(core::mem::size_of::<RealHead>() == 24);
    assert!(core::mem::size_of::<TunnelEntry>() == 36);
    assert!(core::mem::size_of::<RealSlot>() == 4 + 2 * 24);
    assert!(core::mem::size_of::<FlowKey>() == 40);
    assert!(core::mem::size_of::<FlowEntry>() == 8);
    assert!(core::mem::size_of::<DecapStats>() == 24);
    assert!(core::mem::size_of::<FibCacheEntry>() == 48);
    assert!(core::mem::size_of::<FlowBudget>() == 24);
    assert!(MAX_REALS <= u16::MAX as u32 + 1);
};

#[cfg(feature = "user")]
mod user {
    use super::{
        DecapStats, FibCacheEntry, FlowBudget, FlowEntry, FlowKey, LbTable, PeerKey, RealEntry,
        RealHead, RealSlot, ServiceEntry, ServiceKey, Stats, TunnelEntry, TunnelSlot, VipEntry,
        VipKey, VridEntry, VridKey, VridStats,
    };

    /// `aya::Pod` for types that are `bytemuck::Pod`, whose derive proved at compile time what
    /// aya asks (`repr(C)`, no padding, every bit pattern valid); the bound is checked here.
    macro_rules! aya_pod {
        ($($t:ty),* $(,)?) => {$(
            const _: fn() = || {
                fn proven<T: bytemuck::Pod>() {}
                proven::<$t>();
            };
            // SAFETY: `$t: bytemuck::Pod` (checked just above), a stronger promise than
            // `aya::Pod`'s.
            unsafe impl aya::Pod for $t {}
        )*};
    }

    aya_pod!(
        VipKey,
        VipEntry,
        VridKey,
        VridEntry,
        PeerKey,
        VridStats,
        Stats,
        ServiceKey,
        ServiceEntry,
        LbTable,
        RealEntry,
        RealHead,
        RealSlot,
        TunnelEntry,
        TunnelSlot,
        FlowKey,
        FlowEntry,
        DecapStats,
        FibCacheEntry,
        FlowBudget,
    );
}

#[cfg(test)]
mod tests;
