//! [`Balancer`]: the virtual services at run time, sans-IO.
//!
//! It holds what is known of every real server (health from the checks, MAC from the
//! neighbour table) and turns each change into the map writes that bring the data plane up
//! to date ([`LbWrite`], applied by the daemon in order), plus the quorum changes the
//! instances' trackers must hear. It never touches a map, a socket or the clock.
//!
//! The `SERVICES` and `REALS` slots each service and real server holds, and the generations
//! of `REALS` slots, are kept by `slots.rs`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use vipflip_common::{
    FAMILY_IPV4, FAMILY_IPV6, LbTable, REAL_ALIVE, RealEntry, Scheduler, ServiceKey,
};

pub use crate::slots::SlotError;
use crate::slots::{RealOwner, Slots};
use crate::table::{self, Backend};
use crate::{Forward, ServiceConfig};

/// One write to an interface's maps, in the order given.
#[derive(Debug)]
pub enum LbWrite {
    /// Write `entry` into the copy of `REALS[index]` that packets do not read
    /// (`Dataplane::write_real_shadow`); always followed by its [`LbWrite::RealFlip`].
    RealShadow {
        iface: String,
        index: u16,
        entry: RealEntry,
    },
    /// Make the copy holding `entry` the one packets read (`Dataplane::flip_real`): the
    /// moment the new entry takes effect, whole.
    RealFlip {
        iface: String,
        index: u16,
        entry: RealEntry,
    },
    /// Fill the service's spare table half with `table`, then point its `SERVICES` entry at
    /// it (`Dataplane::set_service`).
    Service {
        iface: String,
        key: ServiceKey,
        index: u16,
        scheduler: Scheduler,
        table: Box<LbTable>,
        len: u32,
    },
    RemoveService {
        iface: String,
        key: ServiceKey,
    },
}

/// A service's quorum was met or lost: for its instance's trackers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumChange {
    pub service: String,
    pub met: bool,
}

/// What one input changed.
#[derive(Debug, Default)]
pub struct Changes {
    pub writes: Vec<LbWrite>,
    pub quorum: Vec<QuorumChange>,
}

impl Changes {
    fn extend(&mut self, other: Changes) {
        self.writes.extend(other.writes);
        self.quorum.extend(other.quorum);
    }
}

/// The interface a service's real servers are reached on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    /// Ours: the source MAC of forwarded frames.
    pub mac: [u8; 6],
}

/// A real server (or the sorry server) of a running service.
#[derive(Debug, Clone)]
pub struct Real {
    pub address: IpAddr,
    pub weight: u16,
    /// Its `REALS` slot on the service's interface.
    pub slot: u16,
    generation: u32,
    /// Whether a health check runs for it (otherwise it is always healthy).
    pub checked: bool,
    /// Healthy as last reported; a checked server counts as healthy until its first result
    /// says otherwise (keepalived's default, without `alpha`).
    pub healthy: bool,
    /// The last check's words ("connected", "HTTP 503, expected 200", …).
    pub detail: String,
    /// From the neighbour table; frames cannot be sent before it is known (Direct Routing).
    pub mac: Option<[u8; 6]>,
    /// Reached through a tunnel: the FIB finds the way per frame, no MAC is needed.
    pub tunnelled: bool,
    /// Slots of the live table naming it.
    pub table_slots: u32,
    /// The `REALS` entry last written, to write only changes.
    written: Option<RealEntry>,
}

impl Real {
    /// Can take flows: healthy and reachable (a tunnel's route is the FIB's business, per
    /// frame; Direct Routing needs the MAC).
    pub fn usable(&self) -> bool {
        self.healthy && (self.tunnelled || self.mac.is_some())
    }
}

/// A virtual service at run time.
#[derive(Debug, Clone)]
pub struct Service {
    pub spec: ServiceConfig,
    pub interface: String,
    pub key: ServiceKey,
    /// Its `SERVICES` slot on `interface`.
    pub slot: u16,
    pub reals: Vec<Real>,
    pub sorry: Option<Real>,
    /// Healthy real servers with weight against `spec.quorum`; `None` before any table.
    pub quorum_met: Option<bool>,
    /// The sorry server has the table (no real server usable).
    pub using_sorry: bool,
    /// The live table's length (0: nothing to send to, traffic dropped).
    pub table_len: u32,
    /// A hash of the live table as the real servers' addresses slot by slot: equal on two
    /// directors exactly when they send a new flow to the same real server (0 before any
    /// table). `vipflip status` shows it so an operator can compare directors.
    pub fingerprint: u64,
    /// What the live table was built from: (address, weight) per backend, to skip rebuilds
    /// that would write the same table.
    built_from: Option<Vec<(IpAddr, u32)>>,
}

impl Service {
    /// Healthy real servers with weight: what quorum counts. An unresolved MAC does not
    /// count against it (it is this director's view of the link, resolved in milliseconds,
    /// and must not cost the instance priority at every start).
    pub fn healthy(&self) -> usize {
        self.reals
            .iter()
            .filter(|r| r.healthy && r.weight > 0)
            .count()
    }
}

/// Every virtual service, and the slots of every interface.
#[derive(Debug)]
pub struct Balancer {
    services: Vec<Service>,
    links: BTreeMap<String, Link>,
    slots: Slots,
}

impl Balancer {
    /// No services yet. `generation_base` seeds the generations given to `REALS` slots: pass
    /// something that differs between runs (the wall clock's seconds), so a slot a previous
    /// run gave another server never keeps that server's remembered flows.
    pub fn new(generation_base: u32) -> Self {
        Self {
            services: Vec::new(),
            links: BTreeMap::new(),
            slots: Slots::new(generation_base),
        }
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Makes the services those of `config` (at start and on every reload), keeping what is
    /// known of servers that stay (health, MAC, slots). `existing` lists, per interface, the
    /// `SERVICES` entries already in its maps (a re-opened data plane): a service keeps the
    /// slot it had, so its live table is never the one being rewritten.
    ///
    /// Returns the writes: removed services' entries go first, then every service's reals and
    /// table (rebuilt only where something changed).
    pub fn configure(
        &mut self,
        services: &[ServiceConfig],
        existing: &BTreeMap<String, Vec<(ServiceKey, u16)>>,
    ) -> Result<Changes, SlotError> {
        let mut changes = Changes::default();
        let old = std::mem::take(&mut self.services);
        // Adopt the slots a previous run left in the maps, for keys this run does not hold.
        self.slots.adopt(existing);
        let wanted: Vec<(String, ServiceKey)> = services
            .iter()
            .map(|s| (s.interface.clone(), s.key))
            .collect();
        // Release the slots of services that go (their entries are removed first).
        for (iface, key) in self.slots.release_services(&wanted) {
            changes.writes.push(LbWrite::RemoveService { iface, key });
        }
        for spec in services {
            let iface = spec.interface.clone();
            let key = spec.key;
            let previous = old
                .iter()
                .find(|s| s.spec.name == spec.name && s.key == key);
            let slot = self.slots.service(&iface, key)?;
            let mut reals = Vec::with_capacity(spec.reals.len());
            for rs in &spec.reals {
                let known = previous.and_then(|p| p.reals.iter().find(|r| r.address == rs.address));
                let mut real = self.real(&iface, &spec.name, rs.address, false, known)?;
                real.tunnelled = spec.forward.is_tunnel();
                real.weight = rs.weight;
                real.checked = rs.checked;
                if !real.checked {
                    real.healthy = true;
                    "not checked".clone_into(&mut real.detail);
                }
                reals.push(real);
            }
            let sorry = match spec.sorry_server {
                Some(address) => {
                    let known = previous
                        .and_then(|p| p.sorry.as_ref())
                        .filter(|s| s.address == address);
                    let mut sorry = self.real(&iface, &spec.name, address, true, known)?;
                    sorry.tunnelled = spec.forward.is_tunnel();
                    sorry.healthy = true;
                    sorry.checked = false;
                    "sorry server".clone_into(&mut sorry.detail);
                    Some(sorry)
                }
                None => None,
            };
            let same_table_inputs = previous.is_some_and(|p| p.spec.scheduler == spec.scheduler);
            self.services.push(Service {
                spec: spec.clone(),
                interface: iface,
                key,
                slot,
                reals,
                sorry,
                quorum_met: previous.and_then(|p| p.quorum_met),
                using_sorry: previous.is_some_and(|p| p.using_sorry),
                table_len: previous.map_or(0, |p| p.table_len),
                fingerprint: previous.map_or(0, |p| p.fingerprint),
                built_from: previous
                    .filter(|_| same_table_inputs)
                    .and_then(|p| p.built_from.clone()),
            });
        }
        self.release_real_slots();
        for index in 0..self.services.len() {
            changes.extend(self.refresh(index));
        }
        Ok(changes)
    }

    /// The interface `iface` is known (its data plane is open): writes everything of its
    /// services.
    pub fn link(&mut self, iface: &str, link: Link) -> Changes {
        let mut changes = Changes::default();
        if self.links.insert(iface.to_owned(), link) == Some(link) {
            return changes;
        }
        for index in 0..self.services.len() {
            if self.services[index].interface == iface {
                let service = &mut self.services[index];
                service.built_from = None;
                for real in service.reals.iter_mut().chain(service.sorry.as_mut()) {
                    real.written = None;
                }
                changes.extend(self.refresh(index));
            }
        }
        changes
    }

    /// A health check's verdict on `address` in service `service` changed.
    pub fn health(
        &mut self,
        service: &str,
        address: IpAddr,
        healthy: bool,
        detail: &str,
    ) -> Changes {
        let Some(index) = self.services.iter().position(|s| s.spec.name == service) else {
            return Changes::default();
        };
        for real in &mut self.services[index].reals {
            if real.address == address {
                real.healthy = healthy;
                detail.clone_into(&mut real.detail);
            }
        }
        self.refresh(index)
    }

    /// The neighbour table holds `mac` for `address` on `iface` (`None`: not resolved).
    pub fn neighbour(&mut self, iface: &str, address: IpAddr, mac: Option<[u8; 6]>) -> Changes {
        let mut changes = Changes::default();
        for index in 0..self.services.len() {
            let service = &mut self.services[index];
            if service.interface != iface {
                continue;
            }
            let mut touched = false;
            for real in service.reals.iter_mut().chain(service.sorry.as_mut()) {
                if real.address == address && real.mac != mac {
                    real.mac = mac;
                    touched = true;
                }
            }
            if touched {
                changes.extend(self.refresh(index));
            }
        }
        changes
    }

    /// Every (interface, address) whose MAC the daemon must resolve.
    pub fn neighbours(&self) -> Vec<(String, IpAddr)> {
        let mut all: Vec<(String, IpAddr)> = self
            .services
            .iter()
            .flat_map(|s| {
                s.reals
                    .iter()
                    .chain(s.sorry.as_ref())
                    .filter(|r| !r.tunnelled)
                    .map(|r| (s.interface.clone(), r.address))
            })
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Brings service `index` up to date in the maps: `REALS` entries that changed, then
    /// the table if its inputs changed, then `REALS` entries of servers that left it (so no
    /// packet meets a table naming a server marked gone).
    fn refresh(&mut self, index: usize) -> Changes {
        let mut changes = Changes::default();
        let service = &mut self.services[index];
        let Some(link) = self.links.get(&service.interface).copied() else {
            return changes;
        };
        let iface = service.interface.clone();
        let usable: Vec<&Real> = service
            .reals
            .iter()
            .filter(|r| r.usable() && r.weight > 0)
            .collect();
        let (backends, using_sorry): (Vec<Backend>, bool) = if usable.is_empty() {
            match service.sorry.as_ref().filter(|s| s.usable()) {
                Some(sorry) => (
                    vec![Backend {
                        address: sorry.address,
                        real: sorry.slot,
                        weight: 1,
                    }],
                    true,
                ),
                None => (Vec::new(), false),
            }
        } else {
            (
                usable
                    .iter()
                    .map(|r| Backend {
                        address: r.address,
                        real: r.slot,
                        weight: u32::from(r.weight),
                    })
                    .collect(),
                false,
            )
        };
        service.using_sorry = using_sorry;
        // A real is alive in `REALS` while usable: a drained one (weight 0) keeps its flows.
        let mut late = Vec::new();
        for real in service.reals.iter_mut().chain(service.sorry.as_mut()) {
            let alive = real.usable();
            let flags = if alive { REAL_ALIVE } else { 0 };
            let entry = match service.spec.forward {
                Forward::Direct => RealEntry::direct(
                    link.ifindex,
                    real.generation,
                    real.mac.unwrap_or([0; 6]),
                    link.mac,
                    flags,
                ),
                forward => tunnel_entry(forward, real.address, real.generation, flags),
            };
            if real.written == Some(entry) {
                continue;
            }
            let writes = real_writes(&iface, real.slot, entry);
            // Marking a server dead waits until the new table no longer names it.
            if alive {
                changes.writes.extend(writes);
            } else {
                late.extend(writes);
            }
            real.written = Some(entry);
        }
        let inputs: Vec<(IpAddr, u32)> = backends.iter().map(|b| (b.address, b.weight)).collect();
        let quorum_met = service.healthy() >= service.spec.quorum as usize;
        if service.built_from.as_ref() != Some(&inputs) {
            let mut table = table::new_table();
            let scheduler = service.spec.scheduler;
            let len = match scheduler {
                Scheduler::Maglev | Scheduler::SourceHash => table::maglev(&backends, &mut table),
                Scheduler::Wrr => table::wrr(&backends, &mut table),
            };
            let used = &table.slots[..len as usize];
            for real in service.reals.iter_mut().chain(service.sorry.as_mut()) {
                real.table_slots = u32::try_from(used.iter().filter(|s| **s == real.slot).count())
                    .unwrap_or(u32::MAX);
            }
            service.table_len = len;
            service.fingerprint = fingerprint(scheduler, used, &backends);
            service.built_from = Some(inputs);
            changes.writes.push(LbWrite::Service {
                iface: iface.clone(),
                key: service.key,
                index: service.slot,
                scheduler,
                table,
                len,
            });
        }
        changes.writes.extend(late);
        if service.quorum_met != Some(quorum_met) {
            service.quorum_met = Some(quorum_met);
            changes.quorum.push(QuorumChange {
                service: service.spec.name.clone(),
                met: quorum_met,
            });
        }
        changes
    }

    /// A `REALS` slot for (service, address): the one it had, or a free one with a fresh
    /// generation.
    fn real(
        &mut self,
        iface: &str,
        service: &str,
        address: IpAddr,
        sorry: bool,
        known: Option<&Real>,
    ) -> Result<Real, SlotError> {
        let owner: RealOwner = (service.to_owned(), address, sorry);
        if let Some(known) = known
            && self.slots.holds_real(iface, known.slot, &owner)
        {
            return Ok(known.clone());
        }
        let (slot, generation) = self.slots.take_real(iface, owner)?;
        Ok(Real {
            address,
            weight: 1,
            slot,
            generation,
            checked: false,
            healthy: true,
            detail: String::new(),
            mac: known.and_then(|k| k.mac),
            tunnelled: false,
            table_slots: 0,
            written: None,
        })
    }

    /// Frees `REALS` slots no service holds any more (after `configure` rebuilt the list).
    fn release_real_slots(&mut self) {
        let services = &self.services;
        self.slots
            .release_reals(|iface, (service, address, sorry)| {
                services.iter().any(|s| {
                    s.interface == iface
                        && &s.spec.name == service
                        && if *sorry {
                            s.sorry.as_ref().is_some_and(|r| r.address == *address)
                        } else {
                            s.reals.iter().any(|r| r.address == *address)
                        }
                })
            });
    }
}

/// FNV-1a (64 bits) over the scheduler and, slot by slot, the address of the real server
/// the slot names: what the table does to new flows, whatever `REALS` slots the servers
/// happen to hold on this director.
fn fingerprint(scheduler: Scheduler, slots: &[u16], backends: &[Backend]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    let address: std::collections::BTreeMap<u16, IpAddr> =
        backends.iter().map(|b| (b.real, b.address)).collect();
    feed(&[scheduler as u8]);
    for slot in slots {
        match address.get(slot) {
            Some(IpAddr::V4(a)) => feed(&a.octets()),
            Some(IpAddr::V6(a)) => feed(&a.octets()),
            None => feed(&[0xff]),
        }
    }
    hash
}

/// The writes that put `entry` in `REALS[index]`: the spare copy first, then the flip to it,
/// so no packet reads a half-written entry (see `vipflip_common::RealSlot`).
/// The `REALS` entry of a real server behind a tunnel: its address, the outer source (or
/// none: the FIB's), GUE's port; no interface or MAC, the FIB finds those per frame.
fn tunnel_entry(forward: Forward, address: IpAddr, generation: u32, flags: u8) -> RealEntry {
    let (mode, port) = match forward {
        Forward::Gue { port, .. } => (vipflip_common::Forward::Gue, port),
        Forward::Direct | Forward::Ipip { .. } => (vipflip_common::Forward::Ipip, 0),
    };
    let (source, source_bits) = forward
        .source()
        .map_or(([0; 16], 0), |s| (address_bytes(s.addr), s.varied_bits()));
    RealEntry {
        forward: mode as u8,
        family: match address {
            IpAddr::V4(_) => FAMILY_IPV4,
            IpAddr::V6(_) => FAMILY_IPV6,
        },
        source_bits,
        gue_port: port.to_be_bytes(),
        addr: address_bytes(address),
        source,
        ..RealEntry::direct(0, generation, [0; 6], [0; 6], flags)
    }
}

/// An address as a 16-byte map field: IPv4 in the first 4 bytes.
fn address_bytes(address: IpAddr) -> [u8; 16] {
    match address {
        IpAddr::V4(a) => {
            let mut bytes = [0; 16];
            bytes[..4].copy_from_slice(&a.octets());
            bytes
        }
        IpAddr::V6(a) => a.octets(),
    }
}

fn real_writes(iface: &str, index: u16, entry: RealEntry) -> [LbWrite; 2] {
    [
        LbWrite::RealShadow {
            iface: iface.to_owned(),
            index,
            entry,
        },
        LbWrite::RealFlip {
            iface: iface.to_owned(),
            index,
            entry,
        },
    ]
}

#[cfg(test)]
mod tests;
