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

mod attach;
mod decap;
mod lb;
mod maps;

pub use attach::{attach_pass, load, pinned_program, program_logger, program_mut};
use attach::{attach_program, check_pins, ifindex, pin_error};
pub use decap::{DECAP_PROGRAM_NAME, attach_decap, decap_ports, decap_stats};
pub use lb::service_name;

use std::{
    collections::HashSet,
    fs, io,
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray},
    programs::ProgramError,
};
pub use maps::{Mac, MapName, Ownership};
use thiserror::Error;
use vipflip_common::{
    FlowBudget, FlowEntry, FlowKey, LbTable, PeerKey, RealSlot, ServiceEntry, ServiceKey, Stats,
    TunnelSlot, VIP_FILTER_WORDS, VIP_SERVICES, VipEntry, VipKey, VridEntry, VridKey, VridStats,
    vip_filter_bit,
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
    #[error(
        "{iface}: the pinned map {map} ({}) was made by another vipflip build (keys {} bytes, \
         values {}, {} entries; this build: {}, {}, {}): detach and unpin it with \
         `vipflip unload --iface {iface} --pin-dir {}` (VIP traffic stops until a daemon \
         attaches again), then start",
        path.display(), found.0, found.1, found.2, wanted.0, wanted.1, wanted.2, root.display()
    )]
    IncompatiblePin {
        iface: String,
        map: MapName,
        path: PathBuf,
        /// The root of the pins (`--pin-dir`, `global.pin_dir`).
        root: PathBuf,
        /// Key size, value size, max entries of the pinned map.
        found: (u32, u32, u32),
        /// The same of this build's definition.
        wanted: (u32, u32, u32),
    },
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
    tunnels: Array<MapData, TunnelSlot>,
    flow_budget: PerCpuArray<MapData, FlowBudget>,
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
        check_pins(iface, &dir)?;
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
            tunnels: maps::typed(iface, MapName::Tunnels, open(MapName::Tunnels)?)?,
            flow_budget: maps::typed(iface, MapName::FlowBudget, open(MapName::FlowBudget)?)?,
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
        Ok(maps::stats_from_array(&sum))
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

/// A delete of a key that is not there: aya reports the kernel's `ENOENT` as a syscall error
/// (its `KeyNotFound` is for lookups).
fn absent(error: &aya::maps::MapError) -> bool {
    match error {
        aya::maps::MapError::KeyNotFound => true,
        aya::maps::MapError::SyscallError(e) => e.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
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
