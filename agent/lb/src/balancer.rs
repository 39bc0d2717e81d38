//! [`Balancer`]: the virtual services at run time, sans-IO.
//!
//! It holds what is known of every real server (health from the checks, MAC from the
//! neighbour table) and turns each change into the map writes that bring the data plane up
//! to date ([`LbWrite`], applied by the daemon in order), plus the quorum changes the
//! instances' trackers must hear. It never touches a map, a socket or the clock.
//!
//! Slots: each interface's `SERVICES` entries name a service slot (`0..MAX_SERVICES`, its
//! two `LB_TABLES` halves) and its tables name `REALS` slots. Slots stay with their
//! (service, real server) for the daemon's life, across reloads; a slot given to another
//! server gets a new generation, so flows the XDP program remembered for the previous one
//! are scheduled afresh instead of reaching the wrong server.

use std::collections::BTreeMap;
use std::net::IpAddr;

use vipflip_common::{
    LbTable, MAX_REALS, MAX_SERVICES, REAL_ALIVE, RealEntry, Scheduler, ServiceKey,
};

use crate::ServiceConfig;
use crate::table::{self, Backend};

/// One write to an interface's maps, in the order given.
#[derive(Debug)]
pub enum LbWrite {
    /// `REALS[index] = entry`.
    Real {
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
    /// From the neighbour table; frames cannot be sent before it is known.
    pub mac: Option<[u8; 6]>,
    /// Slots of the live table naming it.
    pub table_slots: u32,
    /// The `REALS` entry last written, to write only changes.
    written: Option<RealEntry>,
}

impl Real {
    /// Can take flows: healthy and reachable.
    pub fn usable(&self) -> bool {
        self.healthy && self.mac.is_some()
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

/// Why a configuration's services cannot all get slots.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SlotError {
    #[error("{iface}: more than {MAX_SERVICES} virtual services")]
    Services { iface: String },
    #[error("{iface}: more than {MAX_REALS} real and sorry servers")]
    Reals { iface: String },
}

/// Every virtual service, and the slots of every interface.
#[derive(Debug)]
pub struct Balancer {
    services: Vec<Service>,
    links: BTreeMap<String, Link>,
    /// Per interface: the service key holding each `SERVICES` slot.
    service_slots: BTreeMap<String, Vec<Option<ServiceKey>>>,
    /// Per interface: the (service name, address, sorry) holding each `REALS` slot.
    real_slots: BTreeMap<String, Vec<Option<RealOwner>>>,
    next_generation: u32,
}

type RealOwner = (String, IpAddr, bool);

impl Balancer {
    /// No services yet. `generation_base` seeds the generations given to `REALS` slots: pass
    /// something that differs between runs (the wall clock's seconds), so a slot a previous
    /// run gave another server never keeps that server's remembered flows.
    pub fn new(generation_base: u32) -> Self {
        Self {
            services: Vec::new(),
            links: BTreeMap::new(),
            service_slots: BTreeMap::new(),
            real_slots: BTreeMap::new(),
            next_generation: generation_base.max(1),
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
        for (iface, entries) in existing {
            let slots = self
                .service_slots
                .entry(iface.clone())
                .or_insert_with(|| vec![None; MAX_SERVICES as usize]);
            for (key, slot) in entries {
                if !slots.contains(&Some(*key))
                    && let Some(free @ None) = slots.get_mut(usize::from(*slot))
                {
                    *free = Some(*key);
                }
            }
        }
        let wanted: Vec<(String, ServiceKey)> = services
            .iter()
            .map(|s| (s.interface.clone(), s.key))
            .collect();
        // Release the slots of services that go (their entries are removed first).
        for (iface, slots) in &mut self.service_slots {
            for slot in slots.iter_mut() {
                if let Some(key) = *slot
                    && !wanted.contains(&(iface.clone(), key))
                {
                    changes.writes.push(LbWrite::RemoveService {
                        iface: iface.clone(),
                        key,
                    });
                    *slot = None;
                }
            }
        }
        for spec in services {
            let iface = spec.interface.clone();
            let key = spec.key;
            let previous = old
                .iter()
                .find(|s| s.spec.name == spec.name && s.key == key);
            let slot = self.service_slot(&iface, key)?;
            let mut reals = Vec::with_capacity(spec.reals.len());
            for rs in &spec.reals {
                let known = previous.and_then(|p| p.reals.iter().find(|r| r.address == rs.address));
                let mut real = self.real(&iface, &spec.name, rs.address, false, known)?;
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
            let entry = RealEntry {
                ifindex: link.ifindex,
                generation: real.generation,
                dst_mac: real.mac.unwrap_or([0; 6]),
                src_mac: link.mac,
                flags: if alive { REAL_ALIVE } else { 0 },
                _pad: [0; 3],
            };
            if real.written == Some(entry) {
                continue;
            }
            let write = LbWrite::Real {
                iface: iface.clone(),
                index: real.slot,
                entry,
            };
            // Marking a server dead waits until the new table no longer names it.
            if alive {
                changes.writes.push(write);
            } else {
                late.push(write);
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

    fn service_slot(&mut self, iface: &str, key: ServiceKey) -> Result<u16, SlotError> {
        let slots = self
            .service_slots
            .entry(iface.to_owned())
            .or_insert_with(|| vec![None; MAX_SERVICES as usize]);
        let at = if let Some(at) = slots.iter().position(|s| *s == Some(key)) {
            at
        } else {
            let free =
                slots
                    .iter()
                    .position(Option::is_none)
                    .ok_or_else(|| SlotError::Services {
                        iface: iface.to_owned(),
                    })?;
            slots[free] = Some(key);
            free
        };
        Ok(u16::try_from(at).expect("MAX_SERVICES fits u16"))
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
        let slots = self
            .real_slots
            .entry(iface.to_owned())
            .or_insert_with(|| vec![None; MAX_REALS as usize]);
        if let Some(known) = known
            && slots.get(usize::from(known.slot)) == Some(&Some(owner.clone()))
        {
            return Ok(known.clone());
        }
        let free = slots
            .iter()
            .position(Option::is_none)
            .ok_or_else(|| SlotError::Reals {
                iface: iface.to_owned(),
            })?;
        slots[free] = Some(owner);
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        Ok(Real {
            address,
            weight: 1,
            slot: u16::try_from(free).expect("MAX_REALS fits u16"),
            generation,
            checked: false,
            healthy: true,
            detail: String::new(),
            mac: known.and_then(|k| k.mac),
            table_slots: 0,
            written: None,
        })
    }

    /// Frees `REALS` slots no service holds any more (after `configure` rebuilt the list).
    fn release_real_slots(&mut self) {
        for (iface, slots) in &mut self.real_slots {
            for slot in slots.iter_mut() {
                if let Some((service, address, sorry)) = slot {
                    let held = self.services.iter().any(|s| {
                        &s.interface == iface
                            && &s.spec.name == service
                            && if *sorry {
                                s.sorry.as_ref().is_some_and(|r| r.address == *address)
                            } else {
                                s.reals.iter().any(|r| r.address == *address)
                            }
                    });
                    if !held {
                        *slot = None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use vipflip_common::{IPPROTO_TCP, IPPROTO_UDP, VipKey};

    use super::*;
    use crate::RealConfig;

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

    /// The order of the writes, as "real 21 alive" / "table" / "remove".
    fn order(lb: &Balancer, changes: &Changes) -> Vec<String> {
        changes
            .writes
            .iter()
            .map(|w| match w {
                LbWrite::Real { index, entry, .. } => {
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
        let LbWrite::Real { entry, .. } = &changes.writes[0] else {
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
}
