//! Which VIPs this director announces to its routing daemon, and why: the [`Announcer`],
//! sans-IO. Instance states, virtual servers' quorums and the daemon's leaving come in; the
//! routes to add to or remove from vipflip's kernel table come out ([`RouteChange`]), in the
//! order decided. The daemon writes them (`io::netlink`), and the routing daemon (FRR, BIRD)
//! redistributes that table over BGP: see [`routing_config`] for its side.
//!
//! A gate whose input is not known yet (an instance that has not reported a state since the
//! agent started, a virtual server without a first quorum verdict) leaves its route as it
//! found it: a route a previous run left in the table stays announced through a restart
//! (the pinned XDP program kept serving meanwhile), and one that was absent stays absent.

pub mod routing_config;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, fmt, net::IpAddr};

/// When a VIP is announced (`[[announce]] when = …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnounceGate {
    /// While the agent runs (anycast).
    Always,
    /// While the instance is master (VRRP inside the rack, BGP beyond it).
    Master { instance: String },
    /// While the virtual server is live here and has its quorum of healthy real servers.
    Quorum { virtual_server: String },
}

impl AnnounceGate {
    /// The gate as written in the configuration (`"master"`), for status and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Master { .. } => "master",
            Self::Quorum { .. } => "quorum",
        }
    }
}

/// Why a route is announced or withdrawn, as status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `always`: the agent runs.
    Running,
    /// Instance `.0` is master (announced) or not (withdrawn).
    Master(String, bool),
    /// Virtual server `.0` is live with its quorum (announced) or not (withdrawn).
    Quorum(String, bool),
    /// Nothing reported yet for the gate's input: the route stays as the agent found it.
    Unknown,
    /// `vipflip drain`.
    Draining,
    /// SIGTERM / SIGINT.
    Stopping,
    /// A reload removed its `[[announce]]`.
    Removed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Running => f.write_str("the agent runs"),
            Self::Master(instance, true) => write!(f, "instance {instance} is master"),
            Self::Master(instance, false) => write!(f, "instance {instance} is not master"),
            Self::Quorum(vs, true) => write!(f, "virtual server {vs} has its quorum"),
            Self::Quorum(vs, false) => {
                write!(f, "virtual server {vs} is not live or lacks its quorum")
            }
            Self::Unknown => f.write_str("waiting for the gate's first verdict; left as found"),
            Self::Draining => f.write_str("draining"),
            Self::Stopping => f.write_str("stopping"),
            Self::Removed => f.write_str("no longer in the configuration"),
        }
    }
}

/// Why every route goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaving {
    Draining,
    Stopping,
}

/// One announced (or withdrawn) VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub vip: IpAddr,
    pub gate: AnnounceGate,
    /// Whether the host route is (to be) in the table.
    pub announced: bool,
    pub reason: Reason,
}

/// A write to vipflip's routing table, in the order decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChange {
    pub vip: IpAddr,
    /// Add (announce) or remove (withdraw) the host route.
    pub announce: bool,
    pub reason: Reason,
}

/// The announcements and what they follow.
#[derive(Debug, Default)]
pub struct Announcer {
    routes: Vec<Route>,
    /// Instances that reported a state: whether master.
    masters: BTreeMap<String, bool>,
    /// Virtual servers that reported: whether live with their quorum.
    quorums: BTreeMap<String, bool>,
    leaving: Option<Leaving>,
}

impl Announcer {
    /// The announcements of `gates`, starting from the routes found in the table (`present`):
    /// an `always` gate is open at once, the others wait for their first verdict; a route
    /// found for no gate is withdrawn.
    pub fn new(gates: &[(IpAddr, AnnounceGate)], present: &[IpAddr]) -> (Self, Vec<RouteChange>) {
        let mut announcer = Self::default();
        // What a previous run announced that this configuration does not: withdrawn now.
        let mut changes: Vec<RouteChange> = present
            .iter()
            .filter(|vip| !gates.iter().any(|(gated, _)| gated == *vip))
            .map(|vip| RouteChange {
                vip: *vip,
                announce: false,
                reason: Reason::Removed,
            })
            .collect();
        changes.extend(announcer.reconfigure_from(gates, |vip| present.contains(&vip)));
        (announcer, changes)
    }

    /// A reload: new gates keep what is known of their inputs; routes of VIPs no longer
    /// announced are withdrawn.
    pub fn reconfigure(&mut self, gates: &[(IpAddr, AnnounceGate)]) -> Vec<RouteChange> {
        let old = std::mem::take(&mut self.routes);
        let was = |vip: IpAddr| old.iter().any(|r| r.vip == vip && r.announced);
        let mut changes: Vec<RouteChange> = old
            .iter()
            .filter(|r| r.announced && !gates.iter().any(|(vip, _)| *vip == r.vip))
            .map(|r| RouteChange {
                vip: r.vip,
                announce: false,
                reason: Reason::Removed,
            })
            .collect();
        changes.extend(self.reconfigure_from(gates, was));
        changes
    }

    fn reconfigure_from(
        &mut self,
        gates: &[(IpAddr, AnnounceGate)],
        announced: impl Fn(IpAddr) -> bool,
    ) -> Vec<RouteChange> {
        self.routes = gates
            .iter()
            .map(|(vip, gate)| Route {
                vip: *vip,
                gate: gate.clone(),
                announced: announced(*vip),
                reason: Reason::Unknown,
            })
            .collect();
        self.evaluate()
    }

    /// An instance changed state.
    pub fn instance(&mut self, instance: &str, master: bool) -> Vec<RouteChange> {
        self.masters.insert(instance.to_owned(), master);
        self.evaluate()
    }

    /// A virtual server's verdict: live here (its instance master, if it has one) with its
    /// quorum of healthy real servers.
    pub fn quorum(&mut self, virtual_server: &str, live_with_quorum: bool) -> Vec<RouteChange> {
        self.quorums
            .insert(virtual_server.to_owned(), live_with_quorum);
        self.evaluate()
    }

    /// Drain or stop: every route goes, whatever the gates say, from now on.
    pub fn leave(&mut self, why: Leaving) -> Vec<RouteChange> {
        self.leaving = Some(why);
        self.evaluate()
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn leaving(&self) -> Option<Leaving> {
        self.leaving
    }

    /// Brings every route in line with its gate; what changed, in configuration order.
    fn evaluate(&mut self) -> Vec<RouteChange> {
        let mut changes = Vec::new();
        for route in &mut self.routes {
            let (open, reason) = match (self.leaving, &route.gate) {
                (Some(Leaving::Draining), _) => (Some(false), Reason::Draining),
                (Some(Leaving::Stopping), _) => (Some(false), Reason::Stopping),
                (None, AnnounceGate::Always) => (Some(true), Reason::Running),
                (None, AnnounceGate::Master { instance }) => {
                    match self.masters.get(instance).copied() {
                        Some(master) => (Some(master), Reason::Master(instance.clone(), master)),
                        None => (None, Reason::Unknown),
                    }
                }
                (None, AnnounceGate::Quorum { virtual_server }) => {
                    match self.quorums.get(virtual_server).copied() {
                        Some(met) => (Some(met), Reason::Quorum(virtual_server.clone(), met)),
                        None => (None, Reason::Unknown),
                    }
                }
            };
            route.reason = reason;
            if let Some(open) = open
                && open != route.announced
            {
                route.announced = open;
                changes.push(RouteChange {
                    vip: route.vip,
                    announce: open,
                    reason: route.reason.clone(),
                });
            }
        }
        changes
    }
}
