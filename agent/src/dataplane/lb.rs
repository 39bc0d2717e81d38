//! The load balancer's maps: `REALS` slots written shadow-then-flip, `SERVICES` with their
//! two `LB_TABLES` halves, and what `FLOWS` holds.

use aya::maps::PerCpuValues;
use vipflip_common::{
    FlowBudget, LB_TABLE_SIZE, LbTable, MAX_REALS, MAX_SERVICES, RealEntry, RealSlot, Scheduler,
    ServiceEntry, ServiceKey, TunnelSlot,
};

use super::{Dataplane, DataplaneError, MapName, absent, maps};

impl Dataplane {
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
    /// its [`RealSlot`]), its tunnel part into the same copy of `TUNNELS[index]` first. What
    /// packets see does not change: the updates rewrite the live copies and the `live` byte
    /// with the bytes they hold. Nothing to do when the live copies are `entry` already.
    pub fn write_real_shadow(
        &mut self,
        index: u16,
        entry: RealEntry,
    ) -> Result<(), DataplaneError> {
        let mut slot = self.real_slot(index)?;
        let mut tunnels = self.tunnel_slot(index)?;
        let live = usize::from(slot.live & 1);
        if RealEntry::from_parts(&slot.copies[live], &tunnels.copies[live]) == entry {
            return Ok(());
        }
        let spare = usize::from(spare(&slot));
        tunnels.copies[spare] = entry.tunnel();
        self.write_tunnel_slot(index, tunnels)?;
        slot.copies[spare] = entry.head();
        self.write_real_slot(index, slot)
    }

    /// Makes the copy of `REALS[index]` that holds `entry` the live one (after
    /// [`Dataplane::write_real_shadow`]): an update that changes the `live` byte alone, the
    /// atomic point of the change, since a byte is written whole; the `TUNNELS` copy of the
    /// same number goes live with it. Idempotent. Fails, changing nothing, when neither copy
    /// holds `entry` (its shadow write failed): a spare copy that is not the one intended
    /// never goes live.
    pub fn flip_real(&mut self, index: u16, entry: RealEntry) -> Result<(), DataplaneError> {
        let mut slot = self.real_slot(index)?;
        let tunnels = self.tunnel_slot(index)?;
        let live = usize::from(slot.live & 1);
        if RealEntry::from_parts(&slot.copies[live], &tunnels.copies[live]) == entry {
            return Ok(());
        }
        let spare = spare(&slot);
        let at = usize::from(spare);
        if RealEntry::from_parts(&slot.copies[at], &tunnels.copies[at]) != entry {
            return Err(self.invalid(format!(
                "{}: the spare copy does not hold the entry to make live",
                real_name(index)
            )));
        }
        slot.live = spare;
        self.write_real_slot(index, slot)
    }

    /// The live copy of real server slot `index` (`REALS` and `TUNNELS`): what packets read.
    pub fn real(&self, index: u16) -> Result<RealEntry, DataplaneError> {
        let slot = self.real_slot(index)?;
        let live = usize::from(slot.live & 1);
        let tunnels = self.tunnel_slot(index)?;
        Ok(RealEntry::from_parts(
            &slot.copies[live],
            &tunnels.copies[live],
        ))
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

    fn tunnel_slot(&self, index: u16) -> Result<TunnelSlot, DataplaneError> {
        self.tunnels.get(&u32::from(index), 0).map_err(|source| {
            self.entry_error(MapName::Tunnels, real_name(index), "lookup", source)
        })
    }

    fn write_tunnel_slot(&mut self, index: u16, slot: TunnelSlot) -> Result<(), DataplaneError> {
        self.tunnels
            .set(u32::from(index), slot, 0)
            .map_err(|source| {
                self.entry_error(MapName::Tunnels, real_name(index), "update", source)
            })
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

    /// How many new flows each CPU remembers in `FLOWS` per second (0: no limit). Past it a
    /// new flow is still sent where the table says, but not remembered (see `FlowBudget`).
    pub fn set_flow_insert_rate(&mut self, per_cpu_per_second: u32) -> Result<(), DataplaneError> {
        let current = self
            .flow_budget
            .get(&0, 0)
            .map_err(|source| self.map_error(MapName::FlowBudget, "lookup", source))?;
        if current.iter().all(|b| b.limit == per_cpu_per_second) {
            return Ok(());
        }
        let values: Vec<FlowBudget> = current
            .iter()
            .map(|b| FlowBudget {
                limit: per_cpu_per_second,
                ..*b
            })
            .collect();
        let values = PerCpuValues::try_from(values).map_err(|source| {
            self.map_error(MapName::FlowBudget, "build per-CPU values", source.into())
        })?;
        self.flow_budget
            .set(0, values, 0)
            .map_err(|source| self.map_error(MapName::FlowBudget, "update", source))
    }

    /// New flows not remembered because a CPU's budget was spent, over all CPUs.
    pub fn flows_not_remembered(&self) -> Result<u64, DataplaneError> {
        let per_cpu = self
            .flow_budget
            .get(&0, 0)
            .map_err(|source| self.map_error(MapName::FlowBudget, "lookup", source))?;
        Ok(per_cpu.iter().map(|b| b.refused).sum())
    }

    fn check_real_index(&self, index: u16) -> Result<(), DataplaneError> {
        if u32::from(index) < MAX_REALS {
            Ok(())
        } else {
            Err(self.invalid(format!("real {index} is out of range (< {MAX_REALS})")))
        }
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

fn real_name(index: u16) -> String {
    format!("real {index}")
}

/// The copy of `slot` that packets do not read.
fn spare(slot: &RealSlot) -> u8 {
    1 - (slot.live & 1)
}
