//! The XDP data plane, seen from userspace: load, attach, pin, re-open and drive the maps of
//! the `vipflip` XDP program (crate `vipflip-ebpf`, embedded at build time).
//!
//! Per interface, everything lives under `<pin_root>/<ifname>/`:
//! `VIPS`, `VRIDS`, `PEERS`, `STATS`, `VRID_STATS`, `VIP_FILTER`, and for load balancing
//! `SERVICES`, `LB_TABLES`, `REALS`, `FLOWS`, `LB_CURSORS` (the maps), `prog` (the program) and `link`
//! (the XDP link). Because the link is pinned, the program stays attached when the agent exits
//! or restarts; a restarted agent re-opens the pins ([`Dataplane::attach`] does so by itself)
//! instead of reloading, so traffic never stops flowing (hitless restart). Only
//! [`Dataplane::detach`] takes the program off the interface.

mod maps;

use std::{
    collections::HashSet,
    ffi::CString,
    fs, io,
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray},
    programs::{
        ProgramError, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
    },
};
use aya_obj::programs::XdpAttachType;
pub use maps::{Mac, MapName, Ownership};
use thiserror::Error;
use vipflip_common::{
    FlowEntry, FlowKey, LB_TABLE_SIZE, LbTable, MAX_REALS, MAX_SERVICES, PeerKey, RealEntry,
    RealSlot, Scheduler, ServiceEntry, ServiceKey, Stats, VIP_FILTER_WORDS, VIP_SERVICES, VipEntry,
    VipKey, VridEntry, VridKey, VridStats, vip_filter_bit,
};

/// The compiled XDP object, built by `build.rs` through aya-build.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vipflip-xdp"));

/// The name of the XDP program inside [`EBPF_OBJECT`].
pub const PROGRAM_NAME: &str = "vipflip";
/// The pass-everything program inside [`EBPF_OBJECT`] (see [`attach_pass`]).
pub const PASS_PROGRAM_NAME: &str = "pass";

/// Default root of the pins: one directory per interface below it.
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf/vipflip";

/// How to attach: `auto` tries native (driver) XDP first, then generic (skb) XDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpModeChoice {
    #[default]
    Auto,
    Driver,
    Skb,
}

/// Everything that can go wrong in the data plane, naming the interface and map involved.
#[derive(Debug, Error)]
pub enum DataplaneError {
    #[error(
        "the XDP object is empty: vipflip was built with AYA_BUILD_SKIP=1; rebuild without it \
         (run `cargo xtask setup` first)"
    )]
    NoObject,
    #[error("interface {iface:?} does not exist")]
    NoSuchInterface { iface: String },
    #[error("{iface}: loading the XDP program failed: {source}")]
    Load {
        iface: String,
        #[source]
        source: Box<aya::EbpfError>,
    },
    #[error("{iface}: XDP program {what}: {source}")]
    Program {
        iface: String,
        what: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("{iface}: attaching XDP failed in {tried}: {source}")]
    Attach {
        iface: String,
        tried: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("{iface}: map {map}: {op} failed: {source}")]
    Map {
        iface: String,
        map: MapName,
        op: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("{iface}: {source}")]
    Bpffs {
        iface: String,
        #[source]
        source: vipflip_bpffs::Error,
    },
    #[error("{iface}: pin {path}: {source}")]
    Pin {
        iface: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{iface}: nothing is pinned at {dir} (is vipflip loaded on this interface?)")]
    NotLoaded { iface: String, dir: PathBuf },
    #[error("{iface}: {message}")]
    Invalid { iface: String, message: String },
    #[error("{iface}: map {map}, {key}: {op} failed: {source}")]
    MapEntry {
        iface: String,
        map: MapName,
        /// The entry, as an operator names it (`service tcp 192.0.2.100:80`, `real 7`).
        key: String,
        op: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

/// How [`Dataplane::attach`] got the program onto the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachOutcome {
    /// Loaded and attached now, in this XDP mode.
    Attached(AttachedMode),
    /// A previous agent's pinned link and maps were re-opened: nothing was reloaded.
    Reopened,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachedMode {
    Driver,
    Skb,
}

impl std::fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttachedMode::Driver => "driver (native)",
            AttachedMode::Skb => "skb (generic)",
        })
    }
}

/// One virtual router declared on the interface (a `VRIDS` entry and its `PEERS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VridFilter {
    pub family: u8,
    pub vrid: u8,
    /// `Some`: only these sources are accepted; `None`: any source.
    pub allowed: Option<Vec<IpAddr>>,
}

/// The maps of one interface's XDP program, opened from their pins.
pub struct Dataplane {
    iface: String,
    ifindex: u32,
    dir: PathBuf,
    vips: HashMap<MapData, VipKey, VipEntry>,
    vrids: HashMap<MapData, VridKey, VridEntry>,
    peers: HashMap<MapData, PeerKey, u8>,
    stats: PerCpuArray<MapData, Stats>,
    vrid_stats: PerCpuArray<MapData, VridStats>,
    vip_filter: Array<MapData, u64>,
    services: HashMap<MapData, ServiceKey, ServiceEntry>,
    lb_tables: Array<MapData, LbTable>,
    reals: Array<MapData, RealSlot>,
    flows: HashMap<MapData, FlowKey, FlowEntry>,
    /// The keys in `VIPS`, so that `set_vip` on a known VIP (the flip) is one map update and
    /// `remove_vip` can recompute the filter word it clears.
    known_vips: HashSet<VipKey>,
    /// How many `SERVICES` entries each VIP has: a VIP with any gets `VIP_SERVICES` in its
    /// `VIPS` entry, whoever writes it (the flip included, still one update).
    service_vips: std::collections::HashMap<VipKey, usize>,
}

impl Dataplane {
    /// Makes sure the vipflip XDP program runs on `iface`, with its maps pinned under
    /// `<pin_root>/<iface>/`, and opens the maps.
    ///
    /// When a pinned link already exists there (a previous agent, or `build-and-load`), it is
    /// re-opened and nothing is reloaded: this is the hitless restart.
    pub fn attach(
        iface: &str,
        pin_root: &Path,
        mode: XdpModeChoice,
    ) -> Result<(Self, AttachOutcome), DataplaneError> {
        let ifindex = ifindex(iface)?;
        let dir = pin_root.join(iface);
        if dir.join("link").exists() {
            let plane = Self::open_pinned(iface, pin_root)?;
            return Ok((plane, AttachOutcome::Reopened));
        }
        let mut ebpf = load(iface, Some(&dir))?;
        let attached = attach_program(&mut ebpf, iface, ifindex, &dir, mode)?;
        // The link and maps are pinned: dropping `ebpf` now leaves the program attached.
        drop(ebpf);
        let plane = Self::open_pinned(iface, pin_root)?;
        Ok((plane, AttachOutcome::Attached(attached)))
    }

    /// Opens the pinned maps of `iface` without touching the program.
    pub fn open_pinned(iface: &str, pin_root: &Path) -> Result<Self, DataplaneError> {
        let dir = pin_root.join(iface);
        if !dir.join(MapName::Vips.as_str()).exists() {
            return Err(DataplaneError::NotLoaded {
                iface: iface.to_owned(),
                dir,
            });
        }
        let ifindex = ifindex(iface).unwrap_or(0);
        let open = |map: MapName| maps::open(iface, &dir, map);
        let mut plane = Self {
            iface: iface.to_owned(),
            ifindex,
            vips: maps::typed(iface, MapName::Vips, open(MapName::Vips)?)?,
            vrids: maps::typed(iface, MapName::Vrids, open(MapName::Vrids)?)?,
            peers: maps::typed(iface, MapName::Peers, open(MapName::Peers)?)?,
            stats: maps::typed(iface, MapName::Stats, open(MapName::Stats)?)?,
            vrid_stats: maps::typed(iface, MapName::VridStats, open(MapName::VridStats)?)?,
            vip_filter: maps::typed(iface, MapName::VipFilter, open(MapName::VipFilter)?)?,
            services: maps::typed(iface, MapName::Services, open(MapName::Services)?)?,
            lb_tables: maps::typed(iface, MapName::LbTables, open(MapName::LbTables)?)?,
            reals: maps::typed(iface, MapName::Reals, open(MapName::Reals)?)?,
            flows: maps::typed(iface, MapName::Flows, open(MapName::Flows)?)?,
            known_vips: HashSet::new(),
            service_vips: std::collections::HashMap::new(),
            dir,
        };
        plane.rebuild_vip_filter()?;
        Ok(plane)
    }

    /// Makes `VIP_FILTER` exactly the bits of the VIPs in `VIPS` (whoever wrote them), and
    /// remembers those VIPs.
    fn rebuild_vip_filter(&mut self) -> Result<(), DataplaneError> {
        self.known_vips = self.vips.keys().filter_map(Result::ok).collect();
        self.service_vips.clear();
        for key in self.services.keys().filter_map(Result::ok) {
            *self.service_vips.entry(key.vip()).or_insert(0) += 1;
        }
        let mut words = vec![0u64; VIP_FILTER_WORDS as usize];
        for key in &self.known_vips {
            let bit = vip_filter_bit(key);
            words[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        for (index, want) in (0..VIP_FILTER_WORDS).zip(words) {
            let have = self
                .vip_filter
                .get(&index, 0)
                .map_err(|source| self.map_error(MapName::VipFilter, "lookup", source))?;
            if have != want {
                self.write_filter_word(index, want)?;
            }
        }
        Ok(())
    }

    fn write_filter_word(&mut self, index: u32, word: u64) -> Result<(), DataplaneError> {
        self.vip_filter
            .set(index, word, 0)
            .map_err(|source| DataplaneError::Map {
                iface: self.iface.clone(),
                map: MapName::VipFilter,
                op: "update",
                source,
            })
    }

    /// The filter word holding `key`'s bit, as the known VIPs want it.
    fn filter_word_for(&self, key: &VipKey) -> (u32, u64) {
        let index = vip_filter_bit(key) / 64;
        let word = self
            .known_vips
            .iter()
            .map(vip_filter_bit)
            .filter(|bit| bit / 64 == index)
            .fold(0u64, |word, bit| word | 1 << (bit % 64));
        (index, word)
    }

    /// Takes the program off `iface` and removes every pin under `<pin_root>/<iface>/`.
    /// Removing the link pin detaches the program once no agent holds the link open.
    pub fn detach(iface: &str, pin_root: &Path) -> Result<(), DataplaneError> {
        let dir = pin_root.join(iface);
        if !dir.exists() {
            return Err(DataplaneError::NotLoaded {
                iface: iface.to_owned(),
                dir,
            });
        }
        let entries = fs::read_dir(&dir).map_err(|source| pin_error(iface, &dir, source))?;
        for entry in entries {
            let path = entry
                .map_err(|source| pin_error(iface, &dir, source))?
                .path();
            fs::remove_file(&path).map_err(|source| pin_error(iface, &path, source))?;
        }
        fs::remove_dir(&dir).map_err(|source| pin_error(iface, &dir, source))
    }

    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The interface index at open time (0 if the interface has gone since).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The directory holding this interface's pins.
    pub fn pin_dir(&self) -> &Path {
        &self.dir
    }

    /// Sets what the XDP program does with traffic to `vip`.
    ///
    /// This is the ownership flip: **one** `BPF_MAP_UPDATE_ELEM` on `VIPS`, atomic for the
    /// XDP program (each packet sees the old entry or the new one, never a mix).
    ///
    /// A VIP not seen before first gets its `VIP_FILTER` bit (so the program looks it up at
    /// all); that is set-up, not the flip.
    pub fn set_vip(&mut self, vip: IpAddr, ownership: Ownership) -> Result<(), DataplaneError> {
        let key = VipKey::from_ip(vip);
        if !self.known_vips.contains(&key) {
            self.known_vips.insert(key);
            let (index, word) = self.filter_word_for(&key);
            self.write_filter_word(index, word)?;
        }
        let mut entry = ownership.entry();
        if self.service_vips.contains_key(&key) {
            entry.flags |= VIP_SERVICES;
        }
        self.vips
            .insert(key, entry, 0)
            .map_err(|source| self.map_error(MapName::Vips, "update", source))
    }

    /// Sets or clears `VIP_SERVICES` in the `VIPS` entry of `vip` (if it has one) as
    /// `service_vips` says.
    fn sync_vip_flag(&mut self, vip: VipKey) -> Result<(), DataplaneError> {
        let Ok(mut entry) = self.vips.get(&vip, 0) else {
            return Ok(()); // no entry yet: `set_vip` will set the flag
        };
        let flags = if self.service_vips.contains_key(&vip) {
            entry.flags | VIP_SERVICES
        } else {
            entry.flags & !VIP_SERVICES
        };
        if flags == entry.flags {
            return Ok(());
        }
        entry.flags = flags;
        self.vips
            .insert(vip, entry, 0)
            .map_err(|source| self.map_error(MapName::Vips, "update", source))
    }

    /// Forgets `vip`: its traffic is passed untouched again. Absent VIPs are not an error.
    pub fn remove_vip(&mut self, vip: IpAddr) -> Result<(), DataplaneError> {
        let key = VipKey::from_ip(vip);
        match self.vips.remove(&key) {
            Ok(()) => {}
            Err(source) if absent(&source) => {}
            Err(source) => return Err(self.map_error(MapName::Vips, "delete", source)),
        }
        // The filter bit goes after the entry, and only if no other VIP shares it.
        if self.known_vips.remove(&key) {
            let (index, word) = self.filter_word_for(&key);
            self.write_filter_word(index, word)?;
        }
        Ok(())
    }

    /// Every VIP and its ownership, as the program sees them.
    pub fn vips(&self) -> Result<Vec<(IpAddr, Ownership)>, DataplaneError> {
        let mut out = Vec::new();
        for item in &self.vips {
            let (key, entry) =
                item.map_err(|source| self.map_error(MapName::Vips, "iterate", source))?;
            let (Some(addr), Some(ownership)) = (
                maps::key_addr(key.family, key.addr),
                Ownership::from_entry(&entry),
            ) else {
                return Err(DataplaneError::Invalid {
                    iface: self.iface.clone(),
                    message: format!(
                        "VIPS holds an entry vipflip did not write: {key:?} -> {entry:?}"
                    ),
                });
            };
            out.push((addr, ownership));
        }
        out.sort_by_key(|(addr, _)| *addr);
        Ok(out)
    }

    /// Declares virtual router `vrid` of `family` on this interface, so its adverts pass XDP.
    /// With `allowed = Some(list)`, only adverts from those sources pass; `None` accepts any.
    ///
    /// The allow-list is written before the VRID is (re)declared, so a narrowed list never
    /// lets a moment of "accept anything" through.
    pub fn set_vrid_filter(
        &mut self,
        family: u8,
        vrid: u8,
        allowed: Option<&[IpAddr]>,
    ) -> Result<(), DataplaneError> {
        if vrid == 0 {
            return Err(DataplaneError::Invalid {
                iface: self.iface.clone(),
                message: "VRID 0 is not valid (RFC 5798 §5.2.3: 1..=255)".into(),
            });
        }
        let wanted: Vec<PeerKey> = allowed
            .unwrap_or_default()
            .iter()
            .map(|addr| maps::peer_key(vrid, *addr))
            .collect();
        if let Some(bad) = wanted.iter().find(|k| k.family != family) {
            return Err(DataplaneError::Invalid {
                iface: self.iface.clone(),
                message: format!(
                    "allow-list of VRID {vrid} (IPv{family}) holds an IPv{} address",
                    bad.family
                ),
            });
        }
        let stale: Vec<PeerKey> = self
            .peers
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.family == family && k.vrid == vrid && !wanted.contains(k))
            .collect();
        for key in &wanted {
            self.peers
                .insert(key, 1, 0)
                .map_err(|source| self.map_error(MapName::Peers, "update", source))?;
        }
        let entry = VridEntry {
            enforce_allow_list: u8::from(allowed.is_some()),
            _pad: [0; 3],
        };
        self.vrids
            .insert(VridKey::new(family, vrid), entry, 0)
            .map_err(|source| self.map_error(MapName::Vrids, "update", source))?;
        for key in &stale {
            match self.peers.remove(key) {
                Ok(()) => {}
                Err(source) if absent(&source) => {}
                Err(source) => return Err(self.map_error(MapName::Peers, "delete", source)),
            }
        }
        Ok(())
    }

    /// Removes virtual router `vrid` of `family`: its adverts are dropped as `unknown_vrid`.
    pub fn remove_vrid(&mut self, family: u8, vrid: u8) -> Result<(), DataplaneError> {
        match self.vrids.remove(&VridKey::new(family, vrid)) {
            Ok(()) => {}
            Err(source) if absent(&source) => {}
            Err(source) => return Err(self.map_error(MapName::Vrids, "delete", source)),
        }
        let stale: Vec<PeerKey> = self
            .peers
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.family == family && k.vrid == vrid)
            .collect();
        for key in &stale {
            let _ = self.peers.remove(key);
        }
        Ok(())
    }

    /// The configured virtual routers, sorted by family then VRID.
    pub fn vrids(&self) -> Result<Vec<VridFilter>, DataplaneError> {
        let peers: Vec<PeerKey> = self.peers.keys().filter_map(Result::ok).collect();
        let mut out = Vec::new();
        for item in &self.vrids {
            let (key, entry) =
                item.map_err(|source| self.map_error(MapName::Vrids, "iterate", source))?;
            let allowed = (entry.enforce_allow_list != 0).then(|| {
                let mut list: Vec<IpAddr> = peers
                    .iter()
                    .filter(|p| p.family == key.family && p.vrid == key.vrid)
                    .filter_map(|p| maps::key_addr(p.family, p.addr))
                    .collect();
                list.sort();
                list
            });
            out.push(VridFilter {
                family: key.family,
                vrid: key.vrid,
                allowed,
            });
        }
        out.sort_by_key(|f| (f.family, f.vrid));
        Ok(out)
    }

    /// The outcome and verdict counters, summed over CPUs.
    pub fn stats(&self) -> Result<Stats, DataplaneError> {
        let per_cpu = self
            .stats
            .get(&0, 0)
            .map_err(|source| self.map_error(MapName::Stats, "lookup", source))?;
        let mut sum = [0u64; vipflip_common::STATS_COUNTERS as usize];
        for cpu in per_cpu.iter() {
            for (total, value) in sum.iter_mut().zip(cpu.as_array()) {
                *total += value;
            }
        }
        Ok(maps::stats_from_array(sum))
    }

    /// Writes real server slot `index` of `REALS`: [`Dataplane::write_real_shadow`], then
    /// [`Dataplane::flip_real`], so a packet sees the old entry or the new one, each whole.
    /// Give a slot to another server with a new `generation`, so the flows remembered for the
    /// previous one are scheduled afresh; clear `REAL_ALIVE` to move a dead server's flows;
    /// keep it set (and take the server out of the tables) to drain.
    pub fn set_real(&mut self, index: u16, entry: RealEntry) -> Result<(), DataplaneError> {
        self.write_real_shadow(index, entry)?;
        self.flip_real(index, entry)
    }

    /// Writes `entry` into the copy of `REALS[index]` that packets do not read (the spare of
    /// its [`RealSlot`]). What packets see does not change: the update rewrites the live copy
    /// and the `live` byte with the bytes they hold. Nothing to do when the live copy is
    /// `entry` already.
    pub fn write_real_shadow(
        &mut self,
        index: u16,
        entry: RealEntry,
    ) -> Result<(), DataplaneError> {
        let mut slot = self.real_slot(index)?;
        if *slot.live() == entry {
            return Ok(());
        }
        slot.copies[usize::from(spare(&slot))] = entry;
        self.write_real_slot(index, slot)
    }

    /// Makes the copy of `REALS[index]` that holds `entry` the live one (after
    /// [`Dataplane::write_real_shadow`]): an update that changes the `live` byte alone, the
    /// atomic point of the change, since a byte is written whole. Idempotent. Fails, changing
    /// nothing, when neither copy holds `entry` (its shadow write failed): a spare copy that
    /// is not the one intended never goes live.
    pub fn flip_real(&mut self, index: u16, entry: RealEntry) -> Result<(), DataplaneError> {
        let mut slot = self.real_slot(index)?;
        if *slot.live() == entry {
            return Ok(());
        }
        let spare = spare(&slot);
        if slot.copies[usize::from(spare)] != entry {
            return Err(self.invalid(format!(
                "{}: the spare copy does not hold the entry to make live",
                real_name(index)
            )));
        }
        slot.live = spare;
        self.write_real_slot(index, slot)
    }

    /// The live copy of real server slot `index` of `REALS`: what packets read.
    pub fn real(&self, index: u16) -> Result<RealEntry, DataplaneError> {
        Ok(*self.real_slot(index)?.live())
    }

    fn real_slot(&self, index: u16) -> Result<RealSlot, DataplaneError> {
        self.check_real_index(index)?;
        self.reals
            .get(&u32::from(index), 0)
            .map_err(|source| self.entry_error(MapName::Reals, real_name(index), "lookup", source))
    }

    fn write_real_slot(&mut self, index: u16, slot: RealSlot) -> Result<(), DataplaneError> {
        self.reals
            .set(u32::from(index), slot, 0)
            .map_err(|source| self.entry_error(MapName::Reals, real_name(index), "update", source))
    }

    /// Installs or replaces virtual service `key` with `table` (slot -> `REALS` index), of
    /// which the first `len` slots are used (`LB_TABLE_SIZE` for Maglev and source hashing;
    /// 0 = no server, the service drops). `index` (`0..MAX_SERVICES`) names its pair of tables.
    ///
    /// No packet ever sees a half-built table: `table` goes into the half of the pair that is
    /// not live (half 0 for a new service, or one moved to another `index`), and only then is
    /// the `SERVICES` entry pointed at it, in one update. Returns the entry written.
    pub fn set_service(
        &mut self,
        key: ServiceKey,
        index: u16,
        scheduler: Scheduler,
        table: &LbTable,
        len: u32,
    ) -> Result<ServiceEntry, DataplaneError> {
        let name = service_name(&key);
        if u32::from(index) >= MAX_SERVICES || len > LB_TABLE_SIZE {
            return Err(self.invalid(format!(
                "{name}: table index {index} (< {MAX_SERVICES}) or length {len} \
                 (<= {LB_TABLE_SIZE}) out of range"
            )));
        }
        let mut current = None;
        for item in &self.services {
            let (other, entry) = item.map_err(|source| {
                self.entry_error(MapName::Services, name.clone(), "iterate", source)
            })?;
            if other == key {
                current = Some(entry);
            } else if entry.index == index {
                // Its live table is one of the two we would write.
                return Err(self.invalid(format!(
                    "{name}: table index {index} is in use by {}",
                    service_name(&other)
                )));
            }
        }
        let half = match current {
            Some(live) if live.index == index => 1 - (live.table & 1),
            _ => 0,
        };
        self.lb_tables
            .set(u32::from(index) * 2 + u32::from(half), table, 0)
            .map_err(|source| {
                self.entry_error(
                    MapName::LbTables,
                    format!("{name} table {index}/{half}"),
                    "update",
                    source,
                )
            })?;
        let entry = ServiceEntry {
            index,
            table: half,
            scheduler: scheduler as u8,
            len,
        };
        self.services
            .insert(key, entry, 0)
            .map_err(|source| self.entry_error(MapName::Services, name, "update", source))?;
        if current.is_none() {
            let vip = key.vip();
            *self.service_vips.entry(vip).or_insert(0) += 1;
            self.sync_vip_flag(vip)?;
        }
        Ok(entry)
    }

    /// Removes virtual service `key`: its traffic goes to the local stack again. Absent
    /// services are not an error. Its flows age out of the `FLOWS` LRU.
    pub fn remove_service(&mut self, key: ServiceKey) -> Result<(), DataplaneError> {
        match self.services.remove(&key) {
            Ok(()) => {}
            Err(source) if absent(&source) => return Ok(()),
            Err(source) => {
                return Err(self.entry_error(
                    MapName::Services,
                    service_name(&key),
                    "delete",
                    source,
                ));
            }
        }
        let vip = key.vip();
        if let Some(count) = self.service_vips.get_mut(&vip) {
            *count -= 1;
            if *count == 0 {
                self.service_vips.remove(&vip);
            }
        }
        self.sync_vip_flag(vip)
    }

    /// Every virtual service and its entry, sorted by key.
    pub fn services(&self) -> Result<Vec<(ServiceKey, ServiceEntry)>, DataplaneError> {
        let mut out = Vec::new();
        for item in &self.services {
            out.push(item.map_err(|source| self.map_error(MapName::Services, "iterate", source))?);
        }
        out.sort_by_key(|(key, _)| (key.family, key.addr, key.protocol, key.port));
        Ok(out)
    }

    /// Flows remembered in `FLOWS`. Walks the keys: one syscall per flow, for
    /// operators (`vipflip maps`), not for a loop.
    pub fn flow_count(&self) -> Result<usize, DataplaneError> {
        let mut count = 0;
        for key in self.flows.keys() {
            key.map_err(|source| self.map_error(MapName::Flows, "iterate", source))?;
            count += 1;
        }
        Ok(count)
    }

    fn check_real_index(&self, index: u16) -> Result<(), DataplaneError> {
        if u32::from(index) < MAX_REALS {
            Ok(())
        } else {
            Err(self.invalid(format!("real {index} is out of range (< {MAX_REALS})")))
        }
    }

    fn invalid(&self, message: String) -> DataplaneError {
        DataplaneError::Invalid {
            iface: self.iface.clone(),
            message,
        }
    }

    fn entry_error(
        &self,
        map: MapName,
        key: String,
        op: &'static str,
        source: aya::maps::MapError,
    ) -> DataplaneError {
        DataplaneError::MapEntry {
            iface: self.iface.clone(),
            map,
            key,
            op,
            source: Box::new(source),
        }
    }

    /// Accepted / dropped adverts of one (family, VRID), summed over CPUs.
    pub fn vrid_stats(&self, family: u8, vrid: u8) -> Result<VridStats, DataplaneError> {
        let index = vipflip_common::vrid_stats_index(family, vrid);
        let per_cpu = self
            .vrid_stats
            .get(&index, 0)
            .map_err(|source| self.map_error(MapName::VridStats, "lookup", source))?;
        Ok(per_cpu
            .iter()
            .fold(VridStats::default(), |acc, v| VridStats {
                accepted: acc.accepted + v.accepted,
                dropped: acc.dropped + v.dropped,
            }))
    }

    fn map_error(
        &self,
        map: MapName,
        op: &'static str,
        source: aya::maps::MapError,
    ) -> DataplaneError {
        DataplaneError::Map {
            iface: self.iface.clone(),
            map,
            op,
            source,
        }
    }
}

/// Makes sure `dir` exists on a bpffs, mounting one where there is none (see `vipflip_bpffs`).
fn on_bpffs(iface: &str, dir: &Path) -> Result<(), DataplaneError> {
    match vipflip_bpffs::ensure(dir) {
        Ok(vipflip_bpffs::Prepared::AlreadyOnBpffs) => Ok(()),
        Ok(vipflip_bpffs::Prepared::Mounted { at }) => {
            log::info!("mounted a bpffs on {} for the pins", at.display());
            Ok(())
        }
        Err(source) => Err(DataplaneError::Bpffs {
            iface: iface.to_owned(),
            source,
        }),
    }
}

/// Loads the embedded program (not attached). With `pin_dir`, every map is pinned there, or
/// re-used from there when a pin already exists.
///
/// Used by [`Dataplane::attach`], and by the kernel tests and benchmarks that run the program
/// through `BPF_PROG_TEST_RUN` without any interface.
pub fn load(iface: &str, pin_dir: Option<&Path>) -> Result<Ebpf, DataplaneError> {
    if EBPF_OBJECT.is_empty() {
        return Err(DataplaneError::NoObject);
    }
    let mut loader = EbpfLoader::new();
    let paths: Vec<(MapName, PathBuf)> = pin_dir
        .map(|dir| {
            MapName::ALL
                .iter()
                .map(|m| (*m, dir.join(m.as_str())))
                .collect()
        })
        .unwrap_or_default();
    if let Some(dir) = pin_dir {
        on_bpffs(iface, dir)?;
    }
    for (map, path) in &paths {
        loader.map_pin_path(map.as_str(), path.as_path());
    }
    let mut ebpf = loader
        .load(EBPF_OBJECT)
        .map_err(|source| DataplaneError::Load {
            iface: iface.to_owned(),
            source: Box::new(source),
        })?;
    let program = program_mut(&mut ebpf, iface)?;
    program.load().map_err(|source| DataplaneError::Program {
        iface: iface.to_owned(),
        what: "load",
        source,
    })?;
    Ok(ebpf)
}

/// The XDP program inside a loaded object.
pub fn program_mut<'a>(ebpf: &'a mut Ebpf, iface: &str) -> Result<&'a mut Xdp, DataplaneError> {
    ebpf.program_mut(PROGRAM_NAME)
        .ok_or_else(|| DataplaneError::Invalid {
            iface: iface.to_owned(),
            message: format!("the object has no program named {PROGRAM_NAME}"),
        })?
        .try_into()
        .map_err(|source| DataplaneError::Program {
            iface: iface.to_owned(),
            what: "type",
            source,
        })
}

/// Reads the log records of the program attached to `iface` (aya-log; only rare events, never
/// per packet: see ARCHITECTURE.md) into the `log` crate. Call `flush` when its fd is readable.
pub fn program_logger(
    iface: &str,
    pin_root: &Path,
) -> Result<aya_log::EbpfLogger<&'static dyn log::Log>, DataplaneError> {
    let program = pinned_program(iface, pin_root)?;
    let info = program.info().map_err(|source| DataplaneError::Program {
        iface: iface.to_owned(),
        what: "info",
        source,
    })?;
    aya_log::EbpfLogger::init_from_id(info.id()).map_err(|source| DataplaneError::Invalid {
        iface: iface.to_owned(),
        message: format!("opening the program's log buffer: {source}"),
    })
}

/// Opens the pinned program of `iface` (for `BPF_PROG_TEST_RUN` against what is attached).
pub fn pinned_program(iface: &str, pin_root: &Path) -> Result<Xdp, DataplaneError> {
    let path = pin_root.join(iface).join("prog");
    Xdp::from_pin(&path, XdpAttachType::Interface).map_err(|source| DataplaneError::Program {
        iface: iface.to_owned(),
        what: "open pinned",
        source,
    })
}

/// Attaches the pass-everything program `pass` to `iface` and pins its link as
/// `<pin_root>/<iface>/pass_link` ([`Dataplane::detach`] removes it).
///
/// On veth, frames sent with `XDP_TX` or redirected by XDP are only delivered when the
/// receiving end runs an XDP program in driver mode (that turns on the veth's NAPI receive
/// path); this one is enough. Driver mode is tried first for that reason.
pub fn attach_pass(iface: &str, pin_root: &Path) -> Result<(), DataplaneError> {
    if EBPF_OBJECT.is_empty() {
        return Err(DataplaneError::NoObject);
    }
    let ifindex = ifindex(iface)?;
    let dir = pin_root.join(iface);
    let link_path = dir.join("pass_link");
    if link_path.exists() {
        return Ok(());
    }
    on_bpffs(iface, &dir)?;
    let mut ebpf = Ebpf::load(EBPF_OBJECT).map_err(|source| DataplaneError::Load {
        iface: iface.to_owned(),
        source: Box::new(source),
    })?;
    let program: &mut Xdp = ebpf
        .program_mut(PASS_PROGRAM_NAME)
        .ok_or_else(|| DataplaneError::Invalid {
            iface: iface.to_owned(),
            message: format!("the object has no program named {PASS_PROGRAM_NAME}"),
        })?
        .try_into()
        .map_err(|source| DataplaneError::Program {
            iface: iface.to_owned(),
            what: "type",
            source,
        })?;
    program.load().map_err(|source| DataplaneError::Program {
        iface: iface.to_owned(),
        what: "load",
        source,
    })?;
    let link_id = program
        .attach_to_if_index(ifindex, XdpMode::Driver)
        .or_else(|_| program.attach_to_if_index(ifindex, XdpMode::Skb))
        .map_err(|source| DataplaneError::Attach {
            iface: iface.to_owned(),
            tried: "driver and skb mode",
            source,
        })?;
    pin_link(program, link_id, iface, &link_path)
}

fn attach_program(
    ebpf: &mut Ebpf,
    iface: &str,
    ifindex: u32,
    dir: &Path,
    mode: XdpModeChoice,
) -> Result<AttachedMode, DataplaneError> {
    let program = program_mut(ebpf, iface)?;
    let tries: &[(XdpMode, AttachedMode)] = match mode {
        XdpModeChoice::Auto => &[
            (XdpMode::Driver, AttachedMode::Driver),
            (XdpMode::Skb, AttachedMode::Skb),
        ],
        XdpModeChoice::Driver => &[(XdpMode::Driver, AttachedMode::Driver)],
        XdpModeChoice::Skb => &[(XdpMode::Skb, AttachedMode::Skb)],
    };
    let mut last_error = None;
    let mut success = None;
    for (xdp_mode, label) in tries {
        match program.attach_to_if_index(ifindex, *xdp_mode) {
            Ok(link_id) => {
                success = Some((link_id, *label));
                break;
            }
            Err(err) => {
                log::info!("{iface}: XDP {label} attach failed: {err}");
                last_error = Some(err);
            }
        }
    }
    let Some((link_id, attached_mode)) = success else {
        let modes = match mode {
            XdpModeChoice::Auto => "driver and skb mode",
            XdpModeChoice::Driver => "driver mode",
            XdpModeChoice::Skb => "skb mode",
        };
        return Err(DataplaneError::Attach {
            iface: iface.to_owned(),
            tried: modes,
            source: last_error.unwrap_or(ProgramError::NotLoaded),
        });
    };
    let prog_path = dir.join("prog");
    if !prog_path.exists() {
        program
            .pin(&prog_path)
            .map_err(|source| pin_error(iface, &prog_path, io::Error::other(source)))?;
    }
    pin_link(program, link_id, iface, &dir.join("link"))?;
    log::info!(
        "{iface}: XDP attached in {attached_mode} mode, pinned under {}",
        dir.display()
    );
    Ok(attached_mode)
}

/// Pins the link of an attached program, so it stays attached after this process.
fn pin_link(
    program: &mut Xdp,
    link_id: aya::programs::xdp::XdpLinkId,
    iface: &str,
    path: &Path,
) -> Result<(), DataplaneError> {
    let link = program
        .take_link(link_id)
        .map_err(|source| DataplaneError::Program {
            iface: iface.to_owned(),
            what: "take link",
            source,
        })?;
    let fd_link = FdLink::try_from(link).map_err(|source| DataplaneError::Invalid {
        iface: iface.to_owned(),
        message: format!(
            "the kernel attached XDP through netlink, which cannot be pinned ({source}); \
             vipflip needs bpf_link (Linux >= 5.9)"
        ),
    })?;
    let _pinned: PinnedLink = fd_link
        .pin(path)
        .map_err(|source| pin_error(iface, path, io::Error::other(source)))?;
    Ok(())
}

fn ifindex(iface: &str) -> Result<u32, DataplaneError> {
    let no_such = || DataplaneError::NoSuchInterface {
        iface: iface.to_owned(),
    };
    let name = CString::new(iface).map_err(|_| no_such())?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        Err(no_such())
    } else {
        Ok(index)
    }
}

/// A service as operators write it: `service tcp 192.0.2.100:80`, `service udp [2001:db8::1]:0`.
pub fn service_name(key: &ServiceKey) -> String {
    let protocol = match key.protocol {
        vipflip_common::IPPROTO_TCP => "tcp".to_owned(),
        vipflip_common::IPPROTO_UDP => "udp".to_owned(),
        other => format!("protocol {other}"),
    };
    let port = u16::from_be_bytes(key.port);
    match maps::key_addr(key.family, key.addr) {
        Some(addr) => format!(
            "service {protocol} {}",
            std::net::SocketAddr::new(addr, port)
        ),
        None => format!("service {protocol} family {} port {port}", key.family),
    }
}

/// A delete of a key that is not there: aya reports the kernel's `ENOENT` as a syscall error
/// (its `KeyNotFound` is for lookups).
fn absent(error: &aya::maps::MapError) -> bool {
    match error {
        aya::maps::MapError::KeyNotFound => true,
        aya::maps::MapError::SyscallError(e) => e.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

fn real_name(index: u16) -> String {
    format!("real {index}")
}

/// The copy of `slot` that packets do not read.
fn spare(slot: &RealSlot) -> u8 {
    1 - (slot.live & 1)
}

fn pin_error(iface: &str, path: &Path, source: io::Error) -> DataplaneError {
    DataplaneError::Pin {
        iface: iface.to_owned(),
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use vipflip_common::{IPPROTO_TCP, IPPROTO_UDP};

    use super::*;

    #[test]
    fn services_are_named_as_operators_write_them() {
        let v4 = ServiceKey::new(VipKey::ipv4([192, 0, 2, 100]), IPPROTO_TCP, 80);
        assert_eq!(service_name(&v4), "service tcp 192.0.2.100:80");
        let mut addr = [0; 16];
        addr[..2].copy_from_slice(&[0x20, 0x01]);
        addr[15] = 1;
        let v6 = ServiceKey::new(VipKey::ipv6(addr), IPPROTO_UDP, 0);
        assert_eq!(service_name(&v6), "service udp [2001::1]:0");
        let odd = ServiceKey {
            family: 9,
            protocol: 1,
            ..v4
        };
        assert_eq!(service_name(&odd), "service protocol 1 family 9 port 80");
    }
}
