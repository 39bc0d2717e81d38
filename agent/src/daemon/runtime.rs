//! `vipflip run`: the daemon's state ([`Daemon`], one [`Running`] per instance) and its event
//! loop, which waits for the next event (an advert, a deadline, a tracker's observation, a
//! health report, a control request, a signal) and hands it to the room that owns it:
//!
//! - `start`: attaching or re-opening the data planes, sockets, state machines;
//! - `election`: adverts, deadlines and observations into the state machines, their actions
//!   dispatched in order;
//! - `effects`: what a transition does outside the process (the `VIPS` flip, addresses,
//!   virtual routes and rules, gratuitous ARP / NA);
//! - `routes`: configured routes, rules and static addresses, and how each was written;
//! - `reload`: diff the new configuration, then apply it;
//! - `report`: `vipflip status` and the metrics;
//! - `shutdown`: handoffs, route withdrawals, forward windows, detach;
//! - `control_socket`: the control socket's adapter; `lb`: the virtual servers;
//!   `announce`: the VIPs announced to the routing daemon (BGP), drain.

mod announce;
mod control_socket;
mod effects;
mod election;
mod instances;
mod lb;
mod reload;
mod report;
mod routes;
mod shutdown;
mod start;

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::future::select_all;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use self::instances::{InstanceId, Instances};
use super::{RunOptions, SHUTDOWN_HANDOFF_LIMIT, StartError};
use crate::{
    config::{Config, InstanceSpec},
    control::{Request, Response},
    dataplane::{Dataplane, XdpModeChoice},
    io::{
        netlink::Netlink,
        vrrp_socket::{ReceivedAdvert, VrrpSocket},
    },
    metrics::Metrics,
    notify::{Notifier, NotifyState},
    track::{Observation, TrackState, TrackerHandles},
    vrrp::{Instance, SyncGroup},
    wire::{MacAddr, V3Ipv4Checksum},
};

/// Runs the daemon until SIGTERM / SIGINT.
pub async fn run(config: Config, options: RunOptions) -> Result<(), StartError> {
    let mut daemon = Daemon::start(config, &options).await?;
    let result = daemon.run_loop(&options).await;
    daemon.stop(&options).await;
    result
}

/// One `[[instance]]` at run time.
struct Running {
    spec: InstanceSpec,
    vrrp: Instance,
    /// Index into `Daemon::sockets`; `None` while the interface is missing (fault).
    socket: Option<usize>,
    iface_index: u32,
    iface_mac: MacAddr,
    /// Where this instance's adverts go.
    destinations: Vec<IpAddr>,
    entered_state: Instant,
    /// The router believed master (from its adverts, or ourselves), with its priority.
    master: Option<(IpAddr, u8)>,
    adverts_received: u64,
    /// Adverts handed to the kernel, one per destination (the core counts one per advert).
    adverts_sent: u64,
    /// After a restart that re-opened a pinned data plane: the VIPs are left as the previous
    /// run left them until the election says otherwise (see `resume`).
    resumed: bool,
    /// While an ex-master forwards on-wire to the new master: until when, and to which MAC.
    forwarding_until: Option<(Instant, MacAddr)>,
    /// Its addresses and announcements, carried out in the order decided.
    effects: effects::Effects,
    /// The instance's trackers (`track_*`, its own interface) and what they make of it.
    track: TrackState,
    /// `Startup` is held back until every weight-0 script has a first result, as keepalived
    /// holds such an instance in Initialize.
    startup_pending: bool,
    /// Index into `Daemon::groups`.
    group: Option<usize>,
    /// Removed by a reload while master: hands off, waits out the forward window, then goes.
    retiring: bool,
}

/// One `[[sync_group]]` at run time; its members are the instances whose `group` points here.
struct Group {
    name: String,
    sync: SyncGroup,
    /// The group state last notified.
    notified: Option<NotifyState>,
}

struct Daemon {
    router_id: String,
    pin_dir: PathBuf,
    control_path: PathBuf,
    /// The configuration in force, and the file it came from (re-read on reload).
    config: Config,
    config_path: Option<PathBuf>,
    xdp_mode: XdpModeChoice,
    netlink: Arc<Netlink>,
    planes: BTreeMap<String, Dataplane>,
    sockets: Vec<VrrpSocket>,
    instances: Instances,
    groups: Vec<Group>,
    observations: mpsc::Receiver<Observation>,
    trackers: TrackerHandles,
    /// The last observation of every tracked object, replayed into the `TrackState` of an
    /// instance a reload starts (drivers report only changes after their first report).
    observed: Vec<Observation>,
    notifier: Notifier,
    metrics: Metrics,
    /// Scrapes of the metrics endpoint, answered by the loop (it owns every value).
    scrapes: mpsc::Receiver<oneshot::Sender<String>>,
    metrics_task: Option<JoinHandle<()>>,
    control_rx: mpsc::Receiver<(Request, oneshot::Sender<Response>)>,
    control_task: JoinHandle<()>,
    /// Set once SIGTERM / SIGINT arrived: hand off, then leave.
    stopping: Option<Instant>,
    /// A second signal: leave without waiting for handoffs.
    force_exit: bool,
    /// The virtual servers: balancer, health checks, neighbour resolver.
    lb: lb::LbRuntime,
    /// The VIPs announced to the routing daemon, and their gates.
    announcements: announce::Announcements,
    /// `[[static_address]]`, `[[static_route]]`, `[[static_rule]]`, held by a task of their own.
    statics: routes::StaticRoutes,
    /// Moves each time an interface comes up: the holders of routes write them again.
    link_ups: tokio::sync::watch::Receiver<u64>,
    /// The reload under way, if any (see `reload`).
    reloading: Option<reload::PendingReload>,
    /// Interfaces the reload under way re-opened from their pins.
    reopened_by_reload: Vec<String>,
    /// Reloads whose new interfaces are attached, from the blocking task that attached them.
    prepared_tx: mpsc::Sender<reload::PreparedReload>,
    prepared_rx: mpsc::Receiver<reload::PreparedReload>,
}

enum Event {
    Advert(
        usize,
        Result<ReceivedAdvert, crate::io::vrrp_socket::RecvError>,
    ),
    Control(Request, oneshot::Sender<Response>),
    Observation(Observation),
    Health(crate::lb::check::HealthReport),
    Neighbour(lb::NeighbourReport),
    Scrape(oneshot::Sender<String>),
    /// SIGHUP.
    Reload,
    /// A reload's new interfaces are attached: apply it.
    ReloadPrepared(reload::PreparedReload),
    Terminate,
    Deadline,
}

impl Daemon {
    async fn run_loop(&mut self, options: &RunOptions) -> Result<(), StartError> {
        let mut sigterm = install(SignalKind::terminate(), "SIGTERM")?;
        let mut sigint = install(SignalKind::interrupt(), "SIGINT")?;
        let mut sighup = install(SignalKind::hangup(), "SIGHUP")?;
        loop {
            self.reap_retired().await;
            if self.drained() {
                log::info!("drained: no VIP packet for the quiet time; stopping");
                self.begin_stop().await;
            }
            // With --keep-dataplane the pinned program serves whatever still arrives after
            // the daemon has gone: no silence to wait for.
            if let Some(since) = self.stopping
                && (self.force_exit
                    || (self.handoffs_done()
                        && self.forwarding_done(options)
                        && (options.keep_dataplane || self.quiet()))
                    || since.elapsed() > SHUTDOWN_HANDOFF_LIMIT)
            {
                return Ok(());
            }
            let deadline = self.next_deadline();
            let event = {
                let adverts = (!self.sockets.is_empty()).then(|| {
                    select_all(
                        self.sockets
                            .iter_mut()
                            .map(|s| Box::pin(s.recv(V3Ipv4Checksum::Rfc5798))),
                    )
                });
                tokio::select! {
                    _ = sigterm.recv() => Event::Terminate,
                    _ = sigint.recv() => Event::Terminate,
                    _ = sighup.recv() => Event::Reload,
                    Some((request, reply)) = self.control_rx.recv() => Event::Control(request, reply),
                    Some(observation) = self.observations.recv() => Event::Observation(observation),
                    Some(report) = self.lb.health.recv() => Event::Health(report),
                    Some(report) = self.lb.neighbours.recv() => Event::Neighbour(report),
                    Some(reply) = self.scrapes.recv() => Event::Scrape(reply),
                    Some(prepared) = self.prepared_rx.recv() => Event::ReloadPrepared(prepared),
                    (result, index, _) = async { adverts.expect("guarded").await }, if adverts.is_some() => {
                        Event::Advert(index, result)
                    }
                    () = sleep_until(deadline) => Event::Deadline,
                }
            };
            match event {
                Event::Terminate => self.begin_stop().await,
                Event::Control(request, reply) => self.control(request, reply).await,
                Event::Advert(socket, result) => self.advert(socket, result).await,
                Event::Observation(observation) => self.observe(&observation).await,
                Event::Health(report) => self.health_report(report).await,
                Event::Neighbour(report) => self.neighbour_report(report).await,
                Event::Scrape(reply) => {
                    let _ = reply.send(self.render_metrics());
                }
                Event::Reload => self.request_reload(None).await,
                Event::ReloadPrepared(prepared) => self.apply_reload(prepared).await,
                Event::Deadline => self.deadlines().await,
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for running in &self.instances {
            for at in [
                running.vrrp.poll_timeout(),
                running.forwarding_until.map(|(at, _)| at),
            ]
            .into_iter()
            .flatten()
            {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        if self.watching_quiet() {
            let poll = Instant::now() + announce::QUIET_POLL;
            next = Some(next.map_or(poll, |n| n.min(poll)));
        }
        if self.stopping.is_some() {
            // Re-check the handoffs regularly while stopping.
            let soon = Instant::now() + Duration::from_millis(20);
            next = Some(next.map_or(soon, |n| n.min(soon)));
        }
        next
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn install(kind: SignalKind, signal_name: &'static str) -> Result<Signal, StartError> {
    signal(kind).map_err(|source| StartError::Signal {
        signal: signal_name,
        source,
    })
}
