//! Tests of the state machine: one module per concern, helpers here.
//!
//! - `rules`: one unit test per RFC rule, and a negative test per acceptance rule;
//! - `sim`: a virtual-time LAN of routers (quinn-proto `Pair` style);
//! - `scenarios`: timelines on that LAN asserting exact times;
//! - `random`: seeded randomised runs checking the election invariants.

mod random;
mod rules;
mod scenarios;
mod sim;
mod sync;

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::Instant;

use vipflip_wire::{AdvertRepr, Auth, Priority, VirtualAddrs, VrId, VrrpVersion};

use super::{Action, Instance, InstanceConfig, MacAddr, RxMeta};

/// The one reading of the real clock in the tests: an arbitrary origin for virtual time.
#[expect(
    clippy::disallowed_methods,
    reason = "an origin for virtual time; the state machine itself never reads the clock"
)]
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// The instant `offset` after the origin.
fn at(offset: Duration) -> Instant {
    base() + offset
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Router `n`'s primary address: 192.0.2.n.
fn addr(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
}

/// Router `n`'s MAC: 02:00:00:00:00:n.
fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

/// The virtual addresses of VRID `vrid`: 192.0.2.vrid.
fn vips(vrid: u8) -> VirtualAddrs {
    VirtualAddrs::V4(vec![Ipv4Addr::new(192, 0, 2, vrid)])
}

/// A v3 IPv4 configuration for router `n` in VRID `vrid` at `priority`, 1 s interval.
fn config(vrid: u8, n: u8, priority: u8) -> InstanceConfig {
    let mut config = InstanceConfig::new(VrId(vrid), addr(n), vips(vrid));
    config.priority = Priority(priority);
    config
}

/// An advert as router `n`'s peers would receive it.
fn advert(vrid: u8, priority: u8, interval: Duration) -> AdvertRepr {
    AdvertRepr {
        version: VrrpVersion::V3,
        vrid: VrId(vrid),
        priority: Priority(priority),
        max_adver_int: interval,
        addrs: vips(vrid),
        auth: Auth::None,
    }
}

fn rx(n: u8) -> RxMeta {
    RxMeta {
        src: addr(n),
        src_mac: mac(n),
    }
}

/// Every pending action, in order.
fn drain(instance: &mut Instance) -> Vec<Action> {
    core::iter::from_fn(|| instance.poll_action()).collect()
}

/// The priorities of the adverts among `actions`.
fn sent_priorities(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::SendAdvert(advert) => Some(advert.priority.0),
            _ => None,
        })
        .collect()
}
