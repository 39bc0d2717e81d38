//! A simulated LAN in virtual time (quinn-proto `Pair` style, for N routers).
//!
//! Every router is a [`Node`] holding one or more [`Instance`]s (several for sync groups).
//! The medium delivers each `SendAdvert` to every instance of every other live node whose
//! link is up, `delay` after it was sent (zero by default: same virtual instant). Killing a
//! node freezes it and drops its outbox; a link down drops what it sends and receives.
//!
//! [`Sim::step`] advances to the next event (delivery or timer) and processes everything due
//! at that instant, in this order: deliveries, then timers, then the actions they caused.
//! Timers fire exactly at their deadline, so scenario tests can assert exact times.

use core::time::Duration;
use std::net::IpAddr;
use std::time::Instant;

use crate::{Action, Command, Instance, InstanceConfig, MacAddr, RxMeta, SyncGroup};
use vipflip_wire::AdvertRepr;

use super::{addr, base, mac};

pub struct Node {
    pub addr: IpAddr,
    pub mac: MacAddr,
    configs: Vec<InstanceConfig>,
    pub members: Vec<Instance>,
    group: Option<SyncGroup>,
    pub alive: bool,
    pub link_up: bool,
}

/// Something a node did, at a virtual time (offset from the origin).
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Duration,
    pub node: usize,
    pub member: usize,
    pub action: Action,
}

struct Flight {
    at: Instant,
    from: usize,
    rx: RxMeta,
    advert: AdvertRepr,
}

pub struct Sim {
    pub now: Instant,
    pub nodes: Vec<Node>,
    /// Propagation delay of the medium.
    pub delay: Duration,
    in_flight: Vec<Flight>,
    pub log: Vec<Event>,
}

impl Sim {
    pub fn new() -> Self {
        Self {
            now: base(),
            nodes: Vec::new(),
            delay: Duration::ZERO,
            in_flight: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Adds router `n` (address 192.0.2.n) running `configs` (their primary address is set to
    /// the router's), optionally as one sync group. Returns its node index.
    pub fn add_node(&mut self, n: u8, configs: Vec<InstanceConfig>, sync_group: bool) -> usize {
        let configs: Vec<InstanceConfig> = configs
            .into_iter()
            .map(|mut config| {
                config.primary_addr = addr(n);
                config
            })
            .collect();
        let members = configs
            .iter()
            .map(|config| Instance::new(config.clone()).expect("valid test config"))
            .collect();
        self.nodes.push(Node {
            addr: addr(n),
            mac: mac(n),
            configs,
            members,
            group: sync_group.then(SyncGroup::new),
            alive: true,
            link_up: true,
        });
        self.nodes.len() - 1
    }

    /// Adds router `n` with a single instance.
    pub fn add(&mut self, n: u8, config: InstanceConfig) -> usize {
        self.add_node(n, vec![config], false)
    }

    /// Virtual time elapsed since the origin.
    pub fn elapsed(&self) -> Duration {
        self.now - base()
    }

    /// Sends `Startup` to every instance of every live node.
    pub fn start_all(&mut self) {
        for node in 0..self.nodes.len() {
            self.start(node);
        }
    }

    pub fn start(&mut self, node: usize) {
        for member in 0..self.nodes[node].members.len() {
            self.command(node, member, Command::Startup);
        }
    }

    /// Applies `command` to one instance now, then carries out what it caused.
    pub fn command(&mut self, node: usize, member: usize, command: Command) {
        let now = self.now;
        let result = self.nodes[node].members[member].handle_command(now, command);
        assert_eq!(result, Ok(()), "command {command:?} to node {node}");
        self.drain(node);
    }

    /// The router dies: it stops, and whatever it had not sent is lost.
    pub fn kill(&mut self, node: usize) {
        self.nodes[node].alive = false;
        for instance in &mut self.nodes[node].members {
            while instance.poll_action().is_some() {}
        }
        self.in_flight.retain(|flight| flight.from != node);
    }

    /// The router reboots: fresh instances from its configuration, started now.
    pub fn restart(&mut self, node: usize) {
        let fresh = self.nodes[node]
            .configs
            .iter()
            .map(|config| Instance::new(config.clone()).expect("valid test config"))
            .collect();
        let n = &mut self.nodes[node];
        n.members = fresh;
        n.alive = true;
        n.link_up = true;
        self.start(node);
    }

    pub fn set_link(&mut self, node: usize, up: bool) {
        self.nodes[node].link_up = up;
        if !up {
            self.in_flight.retain(|flight| flight.from != node);
        }
    }

    /// Live nodes whose instance for `vrid` serves the virtual addresses.
    pub fn masters(&self, vrid: u8) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&node| self.serves(node, vrid))
            .collect()
    }

    pub fn serves(&self, node: usize, vrid: u8) -> bool {
        let n = &self.nodes[node];
        n.alive
            && n.members
                .iter()
                .any(|m| m.config().vrid.0 == vrid && m.is_serving())
    }

    /// The instance of `node` for `vrid`.
    pub fn instance(&self, node: usize, vrid: u8) -> &Instance {
        self.nodes[node]
            .members
            .iter()
            .find(|m| m.config().vrid.0 == vrid)
            .expect("node runs this VRID")
    }

    /// The next instant something happens, if anything ever does.
    pub fn next_event(&self) -> Option<Instant> {
        let flights = self.in_flight.iter().map(|flight| flight.at);
        let timers = self
            .nodes
            .iter()
            .filter(|node| node.alive)
            .flat_map(|node| node.members.iter().filter_map(Instance::poll_timeout));
        flights.chain(timers).min()
    }

    /// Advances to the next event and processes everything due then. False if nothing is
    /// scheduled.
    pub fn step(&mut self) -> bool {
        let Some(next) = self.next_event() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        let (due, later): (Vec<Flight>, Vec<Flight>) = self
            .in_flight
            .drain(..)
            .partition(|flight| flight.at <= now);
        self.in_flight = later;
        for flight in due {
            for (index, node) in self.nodes.iter_mut().enumerate() {
                if index == flight.from || !node.alive || !node.link_up {
                    continue;
                }
                for member in &mut node.members {
                    // Discards are the instance's business (and counted there).
                    let _ = member.handle_advert(now, flight.rx, &flight.advert);
                }
            }
        }
        for node in self.nodes.iter_mut().filter(|node| node.alive) {
            for member in &mut node.members {
                member.handle_timeout(now);
            }
        }
        for node in 0..self.nodes.len() {
            self.drain(node);
        }
        true
    }

    /// Steps until virtual time `until` (offset from the origin), calling `check` after each
    /// step; then sets the clock to `until`.
    pub fn drive_checking(&mut self, until: Duration, mut check: impl FnMut(&Sim)) {
        let until = base() + until;
        while self.next_event().is_some_and(|next| next <= until) {
            self.step();
            check(self);
        }
        self.now = self.now.max(until);
    }

    pub fn drive(&mut self, until: Duration) {
        self.drive_checking(until, |_| {});
    }

    /// State actions (not packets) of `node`, with their times.
    pub fn transitions(&self, node: usize) -> Vec<(Duration, Action)> {
        self.log
            .iter()
            .filter(|event| event.node == node && !is_packet(&event.action))
            .map(|event| (event.at, event.action.clone()))
            .collect()
    }

    /// When `node` last became master of `vrid`, if it ever did.
    pub fn last_became_master(&self, node: usize, vrid: u8) -> Option<Duration> {
        self.log
            .iter()
            .rev()
            .find(|event| {
                event.node == node
                    && self.nodes[node].members[event.member].config().vrid.0 == vrid
                    && matches!(event.action, Action::BecomeMaster { .. })
            })
            .map(|event| event.at)
    }

    /// Times at which `node` sent adverts for `vrid` with `priority`.
    pub fn adverts_sent(&self, node: usize, priority: u8) -> Vec<Duration> {
        self.log
            .iter()
            .filter(|event| {
                event.node == node
                    && matches!(&event.action, Action::SendAdvert(a) if a.priority.0 == priority)
            })
            .map(|event| event.at)
            .collect()
    }

    fn drain(&mut self, index: usize) {
        let now = self.now;
        let at = self.elapsed();
        let node = &mut self.nodes[index];
        if !node.alive {
            return;
        }
        let actions: Vec<(usize, Action)> = match &mut node.group {
            Some(group) => group.pump(now, &mut node.members),
            None => node
                .members
                .iter_mut()
                .enumerate()
                .flat_map(|(member, instance)| {
                    core::iter::from_fn(|| instance.poll_action()).map(move |a| (member, a))
                })
                .collect(),
        };
        for (member, action) in actions {
            if let Action::SendAdvert(advert) = &action
                && node.link_up
            {
                self.in_flight.push(Flight {
                    at: now + self.delay,
                    from: index,
                    rx: RxMeta {
                        src: node.addr,
                        src_mac: node.mac,
                    },
                    advert: advert.clone(),
                });
            }
            self.log.push(Event {
                at,
                node: index,
                member,
                action,
            });
        }
    }
}

fn is_packet(action: &Action) -> bool {
    matches!(
        action,
        Action::SendAdvert(_) | Action::SendGratuitous { .. }
    )
}
