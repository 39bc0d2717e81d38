//! The load balancer's part of the daemon: the [`Balancer`] fed by the health checks and
//! the neighbour resolver, its map writes carried out on the interfaces' data planes, and
//! its quorum changes handed to the instances' trackers.

mod resolver;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use tokio::{sync::mpsc, task::JoinHandle};

use super::Daemon;
use crate::{
    config::{Config, Forwarding, LbProtocol, LbScheduler, ServiceHome, VirtualServerSpec},
    control::{RealServerStatus, VirtualServerStatus},
    dataplane::Ownership,
    lb::{
        balancer::{Balancer, Changes, LbWrite, Link, Real},
        check::{self, CheckHandles, CheckTarget, HealthReport},
    },
    track::Observation,
    vrrp::StateKind,
};

/// The MAC of a real server's address changed: known, another one, or none (the kernel
/// failed to resolve it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NeighbourReport {
    pub iface: String,
    pub address: IpAddr,
    pub mac: Option<[u8; 6]>,
}

/// The balancer and the tasks that feed it.
pub(super) struct LbRuntime {
    pub balancer: Balancer,
    /// The `[[virtual_server]]`s the balancer was last configured with, as written: status
    /// shows their VIP, scheduler and instance.
    virtual_servers: Vec<VirtualServerSpec>,
    pub health: mpsc::Receiver<HealthReport>,
    pub neighbours: mpsc::Receiver<NeighbourReport>,
    checks: Option<CheckHandles>,
    targets: Vec<(String, IpAddr, String)>,
    resolver: Option<JoinHandle<()>>,
    resolving: Vec<(String, IpAddr)>,
    /// The VIPs of virtual servers on an interface of their own, held `Local` there (and
    /// made local to the host by a `local` route) for as long as they are configured.
    pub interface_vips: BTreeSet<(String, IpAddr)>,
}

impl LbRuntime {
    pub fn new() -> Self {
        let generation_base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| u32::try_from(d.as_secs() & 0x7fff_ffff).unwrap_or(1));
        let (_, health) = mpsc::channel(1);
        let (_, neighbours) = mpsc::channel(1);
        Self {
            balancer: Balancer::new(generation_base),
            virtual_servers: Vec::new(),
            health,
            neighbours,
            checks: None,
            targets: Vec::new(),
            resolver: None,
            resolving: Vec::new(),
            interface_vips: BTreeSet::new(),
        }
    }
}

impl Drop for LbRuntime {
    fn drop(&mut self) {
        if let Some(resolver) = &self.resolver {
            resolver.abort();
        }
    }
}

/// Every real server's check in `config`.
fn check_targets(config: &Config) -> Vec<CheckTarget> {
    config
        .virtual_servers
        .iter()
        .flat_map(|vs| {
            vs.real_servers.iter().filter_map(|rs| {
                Some(CheckTarget {
                    service: vs.name.clone(),
                    address: rs.address,
                    check: rs.check.clone()?,
                })
            })
        })
        .collect()
}

impl Daemon {
    /// Makes the balancer's services those of the configuration in force (at start, before
    /// any instance starts, and after each reload) and (re)starts the checks and the resolver
    /// when what they watch changed.
    pub(super) async fn configure_lb(&mut self) {
        let rate = self.config.global.flow_insert_rate;
        for (iface, plane) in &mut self.planes {
            if let Err(err) = plane.set_flow_insert_rate(rate) {
                log::warn!("{iface}: setting flow_insert_rate: {err}");
            }
        }
        let mut existing = BTreeMap::new();
        for (iface, plane) in &self.planes {
            match plane.services() {
                Ok(entries) => {
                    existing.insert(
                        iface.clone(),
                        entries.into_iter().map(|(k, e)| (k, e.index)).collect(),
                    );
                }
                Err(err) => log::warn!("{iface}: reading SERVICES: {err}"),
            }
        }
        let changes = match self
            .lb
            .balancer
            .configure(&self.config.balancer_config(), &existing)
        {
            Ok(changes) => {
                self.lb
                    .virtual_servers
                    .clone_from(&self.config.virtual_servers);
                changes
            }
            Err(err) => {
                log::error!("virtual servers: {err}; they keep their previous tables");
                return;
            }
        };
        self.apply_lb(changes).await;
        self.hold_interface_vips().await;
        warn_where_forwarding_is_off(self.lb.balancer.services());
        let ifaces: Vec<String> = self
            .lb
            .balancer
            .services()
            .iter()
            .map(|s| s.interface.clone())
            .filter(|iface| self.planes.contains_key(iface))
            .collect();
        for iface in ifaces {
            // What the neighbour table already knows goes in before the link, so the first
            // tables written (a restart re-opening live maps included) send to every server
            // already resolved instead of dropping until the resolver's first round.
            if let Ok(table) = self.netlink.neighbour_table(&iface).await {
                for (address, mac) in table {
                    let changes = self.lb.balancer.neighbour(&iface, address, Some(mac.0));
                    self.apply_lb(changes).await;
                }
            }
            match self.netlink.link(&iface).await {
                Ok(info) => {
                    let link = Link {
                        ifindex: info.index,
                        mac: info.mac.map_or([0; 6], |m| m.0),
                    };
                    let changes = self.lb.balancer.link(&iface, link);
                    self.apply_lb(changes).await;
                }
                Err(err) => log::error!("virtual servers on {iface}: {err}"),
            }
        }
        let targets = check_targets(&self.config);
        let described: Vec<(String, IpAddr, String)> = targets
            .iter()
            .map(|t| (t.service.clone(), t.address, format!("{:?}", t.check)))
            .collect();
        if described != self.lb.targets || self.lb.checks.is_none() {
            let (tx, rx) = mpsc::channel(256);
            // Dropping the old handles stops the old checks first.
            self.lb.checks = None;
            self.lb.checks = Some(check::spawn_checks(
                targets,
                tx,
                check::MAX_CONCURRENT_CHECKS,
            ));
            self.lb.health = rx;
            self.lb.targets = described;
        }
        let wanted = self.lb.balancer.neighbours();
        if wanted != self.lb.resolving || self.lb.resolver.is_none() {
            if let Some(old) = self.lb.resolver.take() {
                old.abort();
            }
            let (tx, rx) = mpsc::channel(256);
            self.lb.resolver = Some(tokio::spawn(resolver::resolve(wanted.clone(), tx)));
            self.lb.neighbours = rx;
            self.lb.resolving = wanted;
        }
    }

    /// Virtual servers on an interface of their own are live whenever the agent runs: their
    /// VIP is `Local` in that interface's `VIPS` (the balancer then takes its services) and
    /// local to the host (a `local` route, so what is not balanced is answered here). VIPs no
    /// longer configured so are let go, unless an instance now holds them.
    async fn hold_interface_vips(&mut self) {
        let wanted: BTreeSet<(String, IpAddr)> = self
            .config
            .virtual_servers
            .iter()
            .filter_map(|vs| match &vs.home {
                ServiceHome::Interface(iface) => Some((iface.clone(), vs.vip)),
                ServiceHome::Instance(_) => None,
            })
            .collect();
        let protocol = self.announcements.table().protocol;
        for (iface, vip) in &wanted {
            let Some(plane) = self.planes.get_mut(iface) else {
                continue;
            };
            if let Err(err) = plane.set_vip(*vip, Ownership::Local { vrid: 0 }) {
                log::error!("virtual servers on {iface}: {err}");
            }
            if let Err(err) = self.netlink.add_local_route(*vip, protocol).await {
                log::error!("virtual servers on {iface}: making {vip} local: {err}");
            }
        }
        let gone: Vec<(String, IpAddr)> = self
            .lb
            .interface_vips
            .difference(&wanted)
            .cloned()
            .collect();
        for (iface, vip) in gone {
            let held_by_instance = self.instances.iter().any(|r| {
                r.spec.interface == iface && r.spec.virtual_ips.iter().any(|n| n.addr() == vip)
            });
            if !held_by_instance
                && let Some(plane) = self.planes.get_mut(&iface)
                && let Err(err) = plane.remove_vip(vip)
            {
                log::warn!("virtual servers on {iface}: {err}");
            }
            // The `local` route is the host's, not the interface's: it stays while the VIP is
            // wanted on another interface.
            if !wanted.iter().any(|(_, other)| *other == vip)
                && let Err(err) = self.netlink.remove_local_route(vip, protocol).await
            {
                log::warn!("virtual servers on {iface}: {vip}: {err}");
            }
        }
        self.lb.interface_vips = wanted;
    }

    /// At exit (the data plane detached): the `local` routes of the interface VIPs go too.
    pub(super) async fn release_interface_vips(&mut self) {
        let protocol = self.announcements.table().protocol;
        for (iface, vip) in std::mem::take(&mut self.lb.interface_vips) {
            if let Err(err) = self.netlink.remove_local_route(vip, protocol).await {
                log::warn!("virtual servers on {iface}: {vip}: {err}");
            }
        }
    }

    pub(super) async fn health_report(&mut self, report: HealthReport) {
        log::info!(
            "virtual server {}: real server {} {} ({})",
            report.service,
            report.address,
            if report.healthy { "up" } else { "down" },
            report.detail
        );
        let changes = self.lb.balancer.health(
            &report.service,
            report.address,
            report.healthy,
            &report.detail,
        );
        self.apply_lb(changes).await;
    }

    pub(super) async fn neighbour_report(&mut self, report: NeighbourReport) {
        match report.mac {
            Some(mac) => log::info!(
                "{}: real server {} is at {}",
                report.iface,
                report.address,
                crate::wire::MacAddr(mac)
            ),
            None => log::warn!(
                "{}: real server {} does not resolve (neighbour entry FAILED)",
                report.iface,
                report.address
            ),
        }
        let changes = self
            .lb
            .balancer
            .neighbour(&report.iface, report.address, report.mac);
        self.apply_lb(changes).await;
    }

    /// Whether a virtual server is live here: its instance is master, or it lives on an
    /// interface (live whenever the agent runs).
    pub(super) fn service_live(&self, spec: &VirtualServerSpec) -> bool {
        match &spec.home {
            ServiceHome::Interface(_) => true,
            ServiceHome::Instance(name) => self
                .instances
                .iter()
                .any(|r| r.spec.name == *name && r.vrrp.state() == StateKind::Master),
        }
    }

    /// The virtual servers for `vipflip status`.
    pub(super) fn lb_status(&self) -> Vec<VirtualServerStatus> {
        self.lb
            .balancer
            .services()
            .iter()
            .filter_map(|s| {
                let spec = self
                    .lb
                    .virtual_servers
                    .iter()
                    .find(|vs| vs.name == s.spec.name)?;
                let port = if spec.port == 0 {
                    "*".to_owned()
                } else {
                    spec.port.to_string()
                };
                let vip = match spec.vip {
                    IpAddr::V4(a) => a.to_string(),
                    IpAddr::V6(a) => format!("[{a}]"),
                };
                let protocol = match spec.protocol {
                    LbProtocol::Tcp => "tcp",
                    LbProtocol::Udp => "udp",
                };
                let scheduler = match spec.scheduler {
                    LbScheduler::Maglev => "maglev",
                    LbScheduler::Wrr => "wrr",
                    LbScheduler::Sh => "sh",
                };
                let active = self.service_live(spec);
                let real = |r: &Real, sorry: bool| RealServerStatus {
                    address: r.address,
                    weight: r.weight,
                    sorry,
                    state: if r.mac.is_none() && !r.tunnelled {
                        "unresolved"
                    } else if !r.healthy {
                        "down"
                    } else if r.weight == 0 && !sorry {
                        "drained"
                    } else {
                        "up"
                    }
                    .to_owned(),
                    detail: r.detail.clone(),
                    mac: r.mac.map(|m| crate::wire::MacAddr(m).to_string()),
                    table_slots: r.table_slots,
                };
                Some(VirtualServerStatus {
                    name: spec.name.clone(),
                    service: format!("{vip}:{port}/{protocol}"),
                    scheduler: scheduler.to_owned(),
                    forward: forward_text(spec.forward),
                    instance: spec.instance().unwrap_or_default().to_owned(),
                    interface: match &spec.home {
                        ServiceHome::Interface(iface) => Some(iface.clone()),
                        ServiceHome::Instance(_) => None,
                    },
                    active,
                    healthy: u32::try_from(s.healthy()).unwrap_or(u32::MAX),
                    quorum: spec.quorum,
                    table_len: s.table_len,
                    fingerprint: format!("{:016x}", s.fingerprint),
                    using_sorry: s.using_sorry,
                    real_servers: s
                        .reals
                        .iter()
                        .map(|r| real(r, false))
                        .chain(s.sorry.iter().map(|r| real(r, true)))
                        .collect(),
                })
            })
            .collect()
    }

    /// Carries out the balancer's writes in order, then tells the trackers of quorum changes
    /// and brings the announcements' quorum gates up to date.
    async fn apply_lb(&mut self, changes: Changes) {
        for write in changes.writes {
            let iface = iface_of(&write);
            let Some(plane) = self.planes.get_mut(iface) else {
                continue;
            };
            let result = match &write {
                LbWrite::RealShadow { index, entry, .. } => plane.write_real_shadow(*index, *entry),
                LbWrite::RealFlip { index, entry, .. } => plane.flip_real(*index, *entry),
                LbWrite::Service {
                    key,
                    index,
                    scheduler,
                    table,
                    len,
                    ..
                } => plane
                    .set_service(*key, *index, *scheduler, table, *len)
                    .map(|_| ()),
                LbWrite::RemoveService { key, .. } => plane.remove_service(*key),
            };
            if let Err(err) = result {
                log::error!("{iface}: load balancer: {err}");
            }
        }
        for change in changes.quorum {
            log::info!(
                "virtual server {}: quorum {}",
                change.service,
                if change.met { "met" } else { "lost" }
            );
            self.observe(&Observation::Quorum {
                service: change.service,
                met: change.met,
            })
            .await;
        }
        // Health, MACs and tables all move the announcements' quorum gates.
        self.announce_quorums();
    }
}

/// The interface whose data plane a write is for.
fn iface_of(write: &LbWrite) -> &str {
    match write {
        LbWrite::RealShadow { iface, .. }
        | LbWrite::RealFlip { iface, .. }
        | LbWrite::Service { iface, .. }
        | LbWrite::RemoveService { iface, .. } => iface,
    }
}

/// How a service forwards, as `vipflip status` says it: `dr`, `ipip`, `gue port 6080`, with
/// the tunnel's source prefix when one is set.
fn forward_text(forward: Forwarding) -> String {
    match forward {
        Forwarding::Dr => "dr".to_owned(),
        Forwarding::Ipip { source: None } => "ipip".to_owned(),
        Forwarding::Ipip {
            source: Some(source),
        } => format!("ipip from {source}"),
        Forwarding::Gue { port, source: None } => format!("gue port {port}"),
        Forwarding::Gue {
            port,
            source: Some(source),
        } => format!("gue port {port} from {source}"),
    }
}

/// A tunnel needs the kernel's FIB lookup, which answers only for an ingress interface
/// that forwards (`bpf_fib_lookup` returns `BPF_FIB_LKUP_RET_FWD_DISABLED` otherwise): say
/// so at once, rather than leave the operator to find `lb_tunnel_no_route` counting.
fn warn_where_forwarding_is_off(services: &[crate::lb::balancer::Service]) {
    let mut seen = Vec::new();
    for service in services.iter().filter(|s| s.spec.forward.is_tunnel()) {
        for real in service.reals.iter().chain(service.sorry.as_ref()) {
            let family = match real.address {
                IpAddr::V4(_) => "ipv4",
                IpAddr::V6(_) => "ipv6",
            };
            let key = (service.interface.clone(), family);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let sysctl = format!("net/{family}/conf/{}/forwarding", service.interface);
            match std::fs::read_to_string(format!("/proc/sys/{sysctl}")) {
                Ok(value) if value.trim() != "0" => {}
                Ok(_) => log::warn!(
                    "virtual server {}: {} forwards {} through a tunnel, but {} is 0: the kernel's FIB lookup refuses, so tunnelled packets are dropped (lb_tunnel_no_route); set `sysctl -w {}=1`",
                    service.spec.name,
                    service.interface,
                    real.address,
                    sysctl.replace('/', "."),
                    sysctl.replace('/', "."),
                ),
                Err(err) => log::warn!(
                    "virtual server {}: cannot read {sysctl}: {err}",
                    service.spec.name
                ),
            }
        }
    }
}
