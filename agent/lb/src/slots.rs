//! [`Slots`]: which service and which real server hold each `SERVICES` and `REALS` slot of
//! every interface, and the generations given to `REALS` slots.
//!
//! Each interface's `SERVICES` entries name a service slot (`0..MAX_SERVICES`, its two
//! `LB_TABLES` halves) and its tables name `REALS` slots. Slots stay with their (service,
//! real server) for the daemon's life, across reloads; a slot given to another server gets a
//! new generation, so flows the XDP program remembered for the previous one are scheduled
//! afresh instead of reaching the wrong server.

use std::collections::BTreeMap;
use std::net::IpAddr;

use vipflip_common::{MAX_REALS, MAX_SERVICES, ServiceKey};

/// Why a configuration's services cannot all get slots.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SlotError {
    #[error("{iface}: more than {MAX_SERVICES} virtual services")]
    Services { iface: String },
    #[error("{iface}: more than {MAX_REALS} real and sorry servers")]
    Reals { iface: String },
}

/// Who holds a `REALS` slot: (service name, address, whether it is the sorry server).
pub(crate) type RealOwner = (String, IpAddr, bool);

/// The slots of every interface, and the next `REALS` generation.
#[derive(Debug)]
pub(crate) struct Slots {
    /// Per interface: the service key holding each `SERVICES` slot.
    services: BTreeMap<String, Vec<Option<ServiceKey>>>,
    /// Per interface: the (service name, address, sorry) holding each `REALS` slot.
    reals: BTreeMap<String, Vec<Option<RealOwner>>>,
    next_generation: u32,
}

impl Slots {
    /// Nothing held; the first `REALS` slot taken gets generation `generation_base` (never 0).
    pub(crate) fn new(generation_base: u32) -> Self {
        Self {
            services: BTreeMap::new(),
            reals: BTreeMap::new(),
            next_generation: generation_base.max(1),
        }
    }

    /// Adopts the `SERVICES` slots a previous run left in the maps (`existing`, per
    /// interface), for keys this run does not hold, where the slot is free.
    pub(crate) fn adopt(&mut self, existing: &BTreeMap<String, Vec<(ServiceKey, u16)>>) {
        for (iface, entries) in existing {
            let slots = self
                .services
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
    }

    /// Frees the `SERVICES` slot of every (interface, key) not in `wanted`, and returns
    /// those, in slot order per interface: their entries are to be removed.
    pub(crate) fn release_services(
        &mut self,
        wanted: &[(String, ServiceKey)],
    ) -> Vec<(String, ServiceKey)> {
        let mut released = Vec::new();
        for (iface, slots) in &mut self.services {
            for slot in slots.iter_mut() {
                if let Some(key) = *slot
                    && !wanted.contains(&(iface.clone(), key))
                {
                    released.push((iface.clone(), key));
                    *slot = None;
                }
            }
        }
        released
    }

    /// The `SERVICES` slot of `key` on `iface`: the one it holds, or the first free one.
    pub(crate) fn service(&mut self, iface: &str, key: ServiceKey) -> Result<u16, SlotError> {
        let slots = self
            .services
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

    /// Whether `owner` holds `REALS` slot `slot` on `iface`.
    pub(crate) fn holds_real(&self, iface: &str, slot: u16, owner: &RealOwner) -> bool {
        self.reals
            .get(iface)
            .and_then(|slots| slots.get(usize::from(slot)))
            .is_some_and(|held| held.as_ref() == Some(owner))
    }

    /// The first free `REALS` slot on `iface`, now `owner`'s, and its fresh generation.
    pub(crate) fn take_real(
        &mut self,
        iface: &str,
        owner: RealOwner,
    ) -> Result<(u16, u32), SlotError> {
        let slots = self
            .reals
            .entry(iface.to_owned())
            .or_insert_with(|| vec![None; MAX_REALS as usize]);
        let free = slots
            .iter()
            .position(Option::is_none)
            .ok_or_else(|| SlotError::Reals {
                iface: iface.to_owned(),
            })?;
        slots[free] = Some(owner);
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        Ok((u16::try_from(free).expect("MAX_REALS fits u16"), generation))
    }

    /// Frees the `REALS` slots of every owner that `held(iface, owner)` says is gone.
    pub(crate) fn release_reals(&mut self, held: impl Fn(&str, &RealOwner) -> bool) {
        for (iface, slots) in &mut self.reals {
            for slot in slots.iter_mut() {
                if let Some(owner) = slot
                    && !held(iface, owner)
                {
                    *slot = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use vipflip_common::{IPPROTO_TCP, VipKey};

    use super::*;

    fn key(port: u16) -> ServiceKey {
        ServiceKey::new(VipKey::ipv4([192, 0, 2, 100]), IPPROTO_TCP, port)
    }

    fn owner(last: u8) -> RealOwner {
        ("web".into(), IpAddr::from([192, 0, 2, last]), false)
    }

    #[test]
    fn a_service_keeps_its_slot_and_one_too_many_is_an_error() {
        let mut slots = Slots::new(1);
        for port in 0..u16::try_from(MAX_SERVICES).unwrap() {
            assert_eq!(slots.service("eth0", key(port)), Ok(port));
        }
        assert_eq!(slots.service("eth0", key(7)), Ok(7), "the slot it holds");
        let full = slots.service("eth0", key(1000)).unwrap_err();
        assert_eq!(full.to_string(), "eth0: more than 64 virtual services");
        assert_eq!(slots.service("eth1", key(1000)), Ok(0), "per interface");
        let released = slots.release_services(&[("eth0".into(), key(0))]);
        assert_eq!(released.len(), usize::try_from(MAX_SERVICES).unwrap());
        assert_eq!(released[0], ("eth0".into(), key(1)));
        assert_eq!(slots.service("eth0", key(1000)), Ok(1));
    }

    #[test]
    fn adopted_slots_yield_to_keys_already_held_and_to_taken_slots() {
        let mut slots = Slots::new(1);
        assert_eq!(slots.service("eth0", key(80)), Ok(0));
        let existing = BTreeMap::from([(
            "eth0".to_owned(),
            vec![(key(80), 3), (key(53), 0), (key(443), 5)],
        )]);
        slots.adopt(&existing);
        assert_eq!(slots.service("eth0", key(80)), Ok(0), "already held");
        assert_eq!(slots.service("eth0", key(443)), Ok(5), "adopted");
        assert_eq!(slots.service("eth0", key(53)), Ok(1), "its slot was taken");
    }

    #[test]
    fn real_slots_are_reused_with_a_new_generation_that_is_never_0() {
        let mut slots = Slots::new(u32::MAX);
        assert_eq!(slots.take_real("eth0", owner(21)), Ok((0, u32::MAX)));
        assert_eq!(
            slots.take_real("eth0", owner(22)),
            Ok((1, 1)),
            "wraps past 0"
        );
        assert!(slots.holds_real("eth0", 0, &owner(21)));
        assert!(!slots.holds_real("eth0", 0, &owner(22)));
        assert!(!slots.holds_real("eth1", 0, &owner(21)));
        slots.release_reals(|_, owner| owner.1 != IpAddr::from([192, 0, 2, 21]));
        assert!(!slots.holds_real("eth0", 0, &owner(21)));
        assert_eq!(slots.take_real("eth0", owner(25)), Ok((0, 2)));
    }

    #[test]
    fn one_real_server_too_many_is_an_error() {
        let mut slots = Slots::new(1);
        for last in 0..MAX_REALS {
            let address = IpAddr::from(last.to_be_bytes());
            slots
                .take_real("eth0", ("web".into(), address, false))
                .expect("a free slot");
        }
        assert_eq!(
            slots.take_real("eth0", owner(1)),
            Err(SlotError::Reals {
                iface: "eth0".into()
            })
        );
    }
}
