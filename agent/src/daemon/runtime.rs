//! The event loop and the carrying-out of VRRP actions.

mod lb;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use futures_util::future::select_all;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::UnixListener,
    signal::unix::{SignalKind, signal},
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::{RunOptions, SHUTDOWN_HANDOFF_LIMIT};
use crate::{
    config::{Config, InstanceSpec, XdpMode},
    control::{self, InstanceStatus, Request, Response, StatusReport, TrackerStatus},
    dataplane::{AttachOutcome, Dataplane, Ownership, XdpModeChoice},
    io::{
        garp::{self, GarpSchedule, GarpSocket},
        netlink::{IfAddr, LinkInfo, Netlink},
        vrrp_socket::{Delivery, ReceivedAdvert, SocketConfig, VrrpSocket},
    },
    metrics::{self, Metrics},
    notify::{Notifier, NotifyKind, NotifyState},
    track::{self, Observation, TrackState, TrackerHandles},
    vrrp::{
        Action, BackupTraffic, Cause, Command, DiscardKind, FaultCause, Instance, RxMeta,
        StateKind, SyncGroup,
    },
    wire::{
        Family, MacAddr, V3Ipv4Checksum,
        arp::GarpForm,
        ip::{VRRP_GROUP_V4, VRRP_GROUP_V6},
    },
};

/// How long an exiting daemon waits for notify scripts still running (STOP scripts).
const NOTIFY_AT_EXIT_LIMIT: Duration = Duration::from_secs(5);

/// The socket already open for `wanted` (instances on one interface and family share one),
/// or a new one.
fn shared_socket(sockets: &mut Vec<VrrpSocket>, wanted: SocketConfig) -> anyhow::Result<usize> {
    if let Some(index) = sockets.iter().position(|s| s.config() == &wanted) {
        return Ok(index);
    }
    sockets.push(VrrpSocket::open(wanted)?);
    Ok(sockets.len() - 1)
}

/// Runs the daemon until SIGTERM / SIGINT.
pub async fn run(config: Config, options: RunOptions) -> anyhow::Result<()> {
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
    announcer: Option<JoinHandle<()>>,
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
    instances: Vec<Running>,
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
    Terminate,
    Deadline,
}

impl Daemon {
    async fn start(config: Config, options: &RunOptions) -> anyhow::Result<Self> {
        let netlink = Arc::new(Netlink::new().context("opening rtnetlink")?);
        let pin_dir = config.global.pin_dir.clone();
        // Inside `ip netns exec` /sys is a fresh sysfs, and many hosts never mount a bpffs:
        // mount one first, as iproute2 and bpftool do.
        if let vipflip_bpffs::Prepared::Mounted { at } = vipflip_bpffs::ensure(&pin_dir)
            .with_context(|| format!("global.pin_dir {}", pin_dir.display()))?
        {
            log::info!("mounted a bpffs on {} for the pins", at.display());
        }
        let xdp_mode = match config.global.xdp_mode {
            XdpMode::Auto => XdpModeChoice::Auto,
            XdpMode::Driver => XdpModeChoice::Driver,
            XdpMode::Skb => XdpModeChoice::Skb,
        };
        let notifier = Notifier::new(&config)?;
        let (observations, trackers) =
            track::spawn_trackers(&config).context("starting the trackers")?;
        let control_path = options
            .control_socket
            .clone()
            .unwrap_or(config.global.control_socket.clone());
        let (control_tx, control_rx) = mpsc::channel(16);
        let control_task = spawn_control_server(&control_path, control_tx)?;
        let (scrape_tx, scrapes) = mpsc::channel(4);
        let metrics_task = match config.global.metrics_listen {
            Some(addr) => {
                let task = metrics::serve(addr, scrape_tx)
                    .await
                    .context("global.metrics_listen")?;
                log::info!("metrics on http://{addr}/metrics");
                Some(task)
            }
            None => None,
        };
        let specs = config.instances.clone();
        let mut daemon = Self {
            router_id: config.global.router_id.clone(),
            pin_dir,
            control_path,
            config,
            config_path: options.config_path.clone(),
            xdp_mode,
            netlink,
            planes: BTreeMap::new(),
            sockets: Vec::new(),
            instances: Vec::new(),
            groups: Vec::new(),
            observations,
            trackers,
            observed: Vec::new(),
            notifier,
            metrics: Metrics::new(),
            scrapes,
            metrics_task,
            control_rx,
            control_task,
            stopping: None,
            force_exit: false,
            lb: lb::LbRuntime::new(),
        };
        let mut reopened = Vec::new();
        for spec in specs {
            daemon.add_instance(spec, &mut reopened).await?;
        }
        daemon.regroup();
        // Tables first: a VIP that becomes Local finds its services ready.
        daemon.configure_lb().await;
        for index in 0..daemon.instances.len() {
            daemon.start_instance(index).await?;
        }
        log::info!(
            "vipflip {} running {} instance(s); control socket {}",
            daemon.router_id,
            daemon.instances.len(),
            daemon.control_path.display()
        );
        Ok(daemon)
    }

    /// The data plane of `iface`, attached (or re-opened from its pins, then `iface` is added
    /// to `reopened`) on first use.
    async fn plane_for(
        &mut self,
        iface: &str,
        reopened: &mut Vec<String>,
    ) -> anyhow::Result<Option<LinkInfo>> {
        let link = match self.netlink.link(iface).await {
            Ok(link) => link,
            Err(err) => {
                log::error!("{iface}: {err}; its instances stay in fault");
                return Ok(None);
            }
        };
        if !self.planes.contains_key(iface) {
            let (plane, outcome) = Dataplane::attach(iface, &self.pin_dir, self.xdp_mode)
                .with_context(|| format!("attaching XDP to {iface}"))?;
            match outcome {
                AttachOutcome::Attached(mode) => {
                    log::info!("{iface}: XDP attached in {mode} mode");
                }
                AttachOutcome::Reopened => {
                    log::info!(
                        "{iface}: re-opened the pinned XDP data plane (traffic kept flowing)"
                    );
                    reopened.push(iface.to_owned());
                }
            }
            self.planes.insert(iface.to_owned(), plane);
        }
        Ok(Some(link))
    }

    /// Sets up one `[[instance]]`: its interface's data plane, its VRRP socket (shared by the
    /// instances of one interface and family), the state machine and the VRID filter. It is
    /// not started: see [`Self::start_instance`]. It resumes what a previous run left (see
    /// `Running::resumed`) when its interface is in `reopened`: data planes re-opened from
    /// their pins by this round of additions (the daemon's start, or one reload).
    async fn add_instance(
        &mut self,
        spec: InstanceSpec,
        reopened: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let link = self.plane_for(&spec.interface, reopened).await?;
        let family = spec.family();
        let delivery = if spec.unicast_peers.is_empty() {
            Delivery::Multicast
        } else {
            Delivery::Unicast
        };
        let socket_config = link
            .as_ref()
            .and_then(|l| SocketConfig::for_link(l, family, delivery))
            .map(|mut c| {
                if let Some(src) = spec.unicast_src {
                    c.src = src;
                }
                c
            });
        let socket = if let Some(wanted) = socket_config {
            Some(
                shared_socket(&mut self.sockets, wanted)
                    .with_context(|| format!("instance {}", spec.name))?,
            )
        } else {
            if link.is_some() {
                log::error!(
                    "instance {}: {} has no {} source address yet; instance in fault",
                    spec.name,
                    spec.interface,
                    if family == Family::Ipv4 {
                        "IPv4 primary"
                    } else {
                        "IPv6 link-local"
                    }
                );
            }
            None
        };
        let primary = socket.map_or(
            if family == Family::Ipv4 {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            },
            |i| self.sockets[i].config().src,
        );
        let vrrp = Instance::new(spec.vrrp_config(primary))
            .with_context(|| format!("instance {}: VRRP configuration", spec.name))?;
        if let Some(plane) = self.planes.get_mut(&spec.interface) {
            let allowed = (!spec.allowed_peers.is_empty()).then_some(spec.allowed_peers.as_slice());
            plane.set_vrid_filter(family_tag(&spec), spec.vrid.0, allowed)?;
        }
        let destinations = if spec.unicast_peers.is_empty() {
            vec![if family == Family::Ipv4 {
                IpAddr::V4(VRRP_GROUP_V4)
            } else {
                IpAddr::V6(VRRP_GROUP_V6)
            }]
        } else {
            spec.unicast_peers.clone()
        };
        let mut track = TrackState::new(&spec);
        // What the drivers already reported (an instance a reload starts): its state machine
        // starts from it, as one started with the daemon starts from their first reports.
        let replayed: Vec<Command> = self
            .observed
            .iter()
            .flat_map(|observation| track.observe(observation))
            .collect();
        for ignored in track.ignored() {
            log::warn!(
                "instance {}: {ignored} has a weight, which an address owner (priority 255) \
                 ignores; only weight 0 acts (through fault)",
                spec.name
            );
        }
        self.instances.push(Running {
            iface_index: link.as_ref().map_or(0, |l| l.index),
            iface_mac: link.and_then(|l| l.mac).unwrap_or(MacAddr([0; 6])),
            resumed: reopened.contains(&spec.interface),
            spec,
            vrrp,
            socket,
            destinations,
            entered_state: Instant::now(),
            master: None,
            adverts_received: 0,
            adverts_sent: 0,
            forwarding_until: None,
            announcer: None,
            track,
            startup_pending: false,
            group: None,
            retiring: false,
        });
        self.apply_track_commands(self.instances.len() - 1, replayed);
        Ok(())
    }

    /// Puts the instance's VIPs in the data plane (dropped until the election says otherwise,
    /// unless resuming a previous run's) and starts its state machine: `Startup`, held back
    /// while a weight-0 script has no result yet.
    async fn start_instance(&mut self, index: usize) -> anyhow::Result<()> {
        let resume_as_master = self.instances[index].resumed && self.was_master(index);
        let running = &mut self.instances[index];
        if !running.resumed
            && let Some(plane) = self.planes.get_mut(&running.spec.interface)
        {
            for vip in &running.spec.virtual_ips {
                plane.set_vip(
                    vip.addr(),
                    Ownership::Drop {
                        vrid: running.spec.vrid.0,
                    },
                )?;
            }
        }
        let now = Instant::now();
        if running.socket.is_none() {
            let _ = running
                .vrrp
                .handle_command(now, Command::Fault(FaultCause::LinkDown));
        }
        if running.track.awaiting_scripts() {
            log::info!(
                "instance {}: waiting for the first result of its weight-0 scripts before starting",
                running.spec.name
            );
            running.startup_pending = true;
        } else if resume_as_master {
            // The hitless restart: the previous run was master and its pinned program still
            // serves every VIP. Advertise now; waiting Master_Down_Interval as a silent backup
            // would let the other routers' timers run out first.
            let _ = running.vrrp.handle_command(now, Command::Resume);
        } else {
            let _ = running.vrrp.handle_command(now, Command::Startup);
        }
        self.drain(index).await;
        Ok(())
    }

    /// Whether the re-opened data plane says the previous run was this instance's master:
    /// every VIP `Local` for its VRID. (A master in non-accept mode leaves `Drop` there, as a
    /// backup does, so it resumes as a backup.)
    fn was_master(&self, index: usize) -> bool {
        let running = &self.instances[index];
        let Some(plane) = self.planes.get(&running.spec.interface) else {
            return false;
        };
        let Ok(entries) = plane.vips() else {
            return false;
        };
        let vrid = running.spec.vrid.0;
        !running.spec.virtual_ips.is_empty()
            && running.spec.virtual_ips.iter().all(|vip| {
                entries.iter().any(|(addr, ownership)| {
                    *addr == vip.addr() && *ownership == Ownership::Local { vrid }
                })
            })
    }

    /// Points every instance at its `[[sync_group]]`, keeping what was notified of groups
    /// that stay.
    fn regroup(&mut self) {
        let old = std::mem::take(&mut self.groups);
        self.groups = self
            .config
            .sync_groups
            .iter()
            .map(|g| Group {
                name: g.name.clone(),
                sync: SyncGroup::new(),
                notified: old
                    .iter()
                    .find(|o| o.name == g.name)
                    .and_then(|o| o.notified),
            })
            .collect();
        for running in &mut self.instances {
            running.group = self
                .config
                .sync_groups
                .iter()
                .position(|g| g.instances.contains(&running.spec.name));
        }
    }

    async fn run_loop(&mut self, options: &RunOptions) -> anyhow::Result<()> {
        let mut sigterm =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut sigint =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        loop {
            self.reap_retired().await;
            if let Some(since) = self.stopping
                && (self.force_exit
                    || (self.handoffs_done() && self.forwarding_done(options))
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
                    (result, index, _) = async { adverts.expect("guarded").await }, if adverts.is_some() => {
                        Event::Advert(index, result)
                    }
                    () = sleep_until(deadline) => Event::Deadline,
                }
            };
            match event {
                Event::Terminate => self.begin_stop().await,
                Event::Control(request, reply) => {
                    let response = self.control(request).await;
                    let _ = reply.send(response);
                }
                Event::Advert(socket, result) => self.advert(socket, result).await,
                Event::Observation(observation) => self.observe(&observation).await,
                Event::Health(report) => self.health_report(report).await,
                Event::Neighbour(report) => self.neighbour_report(report).await,
                Event::Scrape(reply) => {
                    let _ = reply.send(self.render_metrics());
                }
                Event::Reload => {
                    if let Err(errors) = self.reload().await {
                        log::error!("{errors}");
                    }
                }
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
        if self.stopping.is_some() {
            // Re-check the handoffs regularly while stopping.
            let soon = Instant::now() + Duration::from_millis(20);
            next = Some(next.map_or(soon, |n| n.min(soon)));
        }
        next
    }

    async fn advert(
        &mut self,
        socket: usize,
        result: Result<ReceivedAdvert, crate::io::vrrp_socket::RecvError>,
    ) {
        let rx = match result {
            Ok(rx) => rx,
            Err(err) => {
                log::warn!("{err}");
                return;
            }
        };
        let now = Instant::now();
        let Some(index) = self
            .instances
            .iter()
            .position(|r| r.socket == Some(socket) && r.spec.vrid == rx.advert.vrid)
        else {
            log::debug!(
                "advert for VRID {} from {}: no instance here",
                rx.advert.vrid,
                rx.src
            );
            return;
        };
        let meta = rx.rx_meta().unwrap_or(RxMeta {
            src: rx.src,
            src_mac: MacAddr([0; 6]),
        });
        let running = &mut self.instances[index];
        running.adverts_received += 1;
        match running.vrrp.handle_advert(now, meta, &rx.advert) {
            Ok(()) => {
                if rx.advert.priority.0 > 0 && running.vrrp.state() != StateKind::Master {
                    running.master = Some((rx.src, rx.advert.priority.0));
                }
                if running.resumed
                    && running.vrrp.state() == StateKind::Backup
                    && rx.advert.priority.0 > 0
                {
                    // Another router is master: what the previous run left in the map is stale.
                    running.resumed = false;
                    let traffic = if meta.src_mac.0 == [0; 6] {
                        BackupTraffic::Drop
                    } else {
                        BackupTraffic::Forward { mac: meta.src_mac }
                    };
                    self.step_down(index, traffic);
                }
            }
            Err(discard) => log::debug!(
                "instance {}: advert from {} discarded: {discard}",
                running.spec.name,
                rx.src
            ),
        }
        self.drain(index).await;
    }

    async fn deadlines(&mut self) {
        let now = Instant::now();
        for index in 0..self.instances.len() {
            let running = &mut self.instances[index];
            if let Some((until, _)) = running.forwarding_until
                && until <= now
            {
                running.forwarding_until = None;
                let vrid = running.spec.vrid.0;
                self.set_vips(index, Ownership::Drop { vrid });
                log::info!(
                    "instance {}: forward window over; VIP traffic now dropped here",
                    self.instances[index].spec.name
                );
            }
            let running = &mut self.instances[index];
            if running.vrrp.poll_timeout().is_some_and(|at| at <= now) {
                running.vrrp.handle_timeout(now);
                self.drain(index).await;
            }
        }
    }

    /// Carries out every action the instance has queued, in order; for a sync-group member,
    /// every action of every member once the group has reacted ([`SyncGroup::pump`]).
    async fn drain(&mut self, index: usize) {
        let Some(group) = self.instances[index].group else {
            while let Some(action) = self.instances[index].vrrp.poll_action() {
                self.act(index, action).await;
            }
            return;
        };
        let members: Vec<usize> = (0..self.instances.len())
            .filter(|&i| self.instances[i].group == Some(group))
            .collect();
        let mut vrrps: Vec<&mut Instance> = self
            .instances
            .iter_mut()
            .filter(|r| r.group == Some(group))
            .map(|r| &mut r.vrrp)
            .collect();
        let actions = self.groups[group].sync.pump(Instant::now(), &mut vrrps);
        for (member, action) in actions {
            self.act(members[member], action).await;
        }
        self.notify_group(group);
    }

    /// keepalived's group states: fault when any member is, master when all are, backup
    /// otherwise; notified on change.
    fn notify_group(&mut self, group: usize) {
        // Called after every drain of a member (every advert it hears): one pass, no
        // allocation.
        let (mut any, mut initializing, mut fault, mut all_master) = (false, false, false, true);
        for r in self.instances.iter().filter(|r| r.group == Some(group)) {
            let s = r.vrrp.state();
            any = true;
            initializing |= s == StateKind::Initialize;
            fault |= s == StateKind::Fault;
            all_master &= s == StateKind::Master;
        }
        if !any || initializing {
            return;
        }
        let state = if fault {
            NotifyState::Fault
        } else if all_master {
            NotifyState::Master
        } else {
            NotifyState::Backup
        };
        let g = &mut self.groups[group];
        if g.notified != Some(state) {
            g.notified = Some(state);
            log::info!("sync group {}: {state}", g.name);
            self.notifier.state_changed(
                NotifyKind::Group,
                &g.name,
                state,
                crate::wire::Priority(0),
            );
        }
    }

    /// A tracker reported: every instance tracking it gets the commands that bring it up to
    /// date; one waiting for its first script results may start.
    async fn observe(&mut self, observation: &Observation) {
        remember(&mut self.observed, observation);
        for index in 0..self.instances.len() {
            let commands = self.instances[index].track.observe(observation);
            let starting = self.instances[index].startup_pending
                && !self.instances[index].track.awaiting_scripts();
            if commands.is_empty() && !starting {
                continue;
            }
            self.apply_track_commands(index, commands);
            if starting {
                let command = if self.instances[index].resumed && self.was_master(index) {
                    Command::Resume
                } else {
                    Command::Startup
                };
                let running = &mut self.instances[index];
                running.startup_pending = false;
                log::info!(
                    "instance {}: first script results in; starting",
                    running.spec.name
                );
                let _ = running.vrrp.handle_command(Instant::now(), command);
            }
            self.drain(index).await;
        }
    }

    fn apply_track_commands(&mut self, index: usize, commands: Vec<Command>) {
        let now = Instant::now();
        let running = &mut self.instances[index];
        for command in commands {
            if command == Command::Unfault(FaultCause::LinkDown) && running.socket.is_none() {
                // No VRRP socket could be opened at start (interface or address missing):
                // the instance cannot run until a reload or restart opens one.
                log::warn!(
                    "instance {}: {} is up, but the instance has no VRRP socket; \
                     reload (once it has its address) or restart to start it",
                    running.spec.name,
                    running.spec.interface
                );
                continue;
            }
            if let Err(err) = running.vrrp.handle_command(now, command) {
                log::debug!("instance {}: {command:?}: {err}", running.spec.name);
            }
        }
    }

    async fn act(&mut self, index: usize, action: Action) {
        let name = self.instances[index].spec.name.clone();
        let transition = match &action {
            Action::BecomeMaster { cause, .. } => Some((StateKind::Master, *cause)),
            Action::BecomeBackup { cause, .. } => Some((StateKind::Backup, *cause)),
            Action::EnterFault { cause } => Some((StateKind::Fault, *cause)),
            Action::EnterInitialize { cause } => Some((StateKind::Initialize, *cause)),
            _ => None,
        };
        if let Some((to, cause)) = transition {
            // The state gauge is refreshed at each scrape; the transition is an event.
            self.metrics.transition(&name, to, &cause_label(cause));
        }
        match action {
            Action::SendAdvert(advert) => {
                let running = &mut self.instances[index];
                let Some(socket) = running.socket.map(|i| &self.sockets[i]) else {
                    return;
                };
                for dst in &running.destinations {
                    match socket.send(&advert, *dst, running.spec.checksum).await {
                        Ok(_) => running.adverts_sent += 1,
                        Err(err) => log::warn!("instance {name}: {err}"),
                    }
                }
            }
            Action::BecomeMaster { cause, accept } => {
                self.become_master(index, cause, accept).await;
            }
            Action::SendGratuitous { .. } => self.announce(index),
            Action::BecomeBackup { cause, traffic } => {
                let priority = self.instances[index].vrrp.priority();
                self.notifier.state_changed(
                    NotifyKind::Instance,
                    &name,
                    NotifyState::Backup,
                    priority,
                );
                let running = &mut self.instances[index];
                running.entered_state = Instant::now();
                if running.resumed && cause == Cause::Startup {
                    // Hitless restart: whatever the previous run left in VIPS (and on the
                    // interface) keeps serving until an advert or the timer decides.
                    log::info!(
                        "instance {name}: -> BACKUP ({cause}); VIPs left as the previous run left them"
                    );
                    return;
                }
                running.resumed = false;
                log::info!("instance {name}: -> BACKUP ({cause})");
                self.step_down(index, traffic);
            }
            Action::ForwardTo { mac } => {
                let (ifindex, our_mac, vrid) = {
                    let r = &self.instances[index];
                    (r.iface_index, r.iface_mac, r.spec.vrid.0)
                };
                self.set_vips(
                    index,
                    Ownership::Forward {
                        vrid,
                        ifindex,
                        dst_mac: mac.0,
                        src_mac: our_mac.0,
                    },
                );
                log::info!("instance {name}: forwarding VIP traffic on-wire to {mac}");
            }
            Action::EnterFault { cause } | Action::EnterInitialize { cause } => {
                let running = &mut self.instances[index];
                running.entered_state = Instant::now();
                running.resumed = false;
                running.forwarding_until = None;
                if let Some(task) = running.announcer.take() {
                    task.abort();
                }
                let vrid = running.spec.vrid.0;
                let state = running.vrrp.state();
                let priority = running.vrrp.priority();
                log::info!("instance {name}: -> {state:?} ({cause})");
                self.set_vips(index, Ownership::Drop { vrid });
                self.spawn_remove_addresses(index);
                let notified = if state == StateKind::Fault {
                    NotifyState::Fault
                } else {
                    NotifyState::Stop
                };
                self.notifier
                    .state_changed(NotifyKind::Instance, &name, notified, priority);
            }
        }
    }

    /// The flip: `VIPS` first (traffic is accepted from that instant), then the addresses,
    /// then (as the next action) the announcements.
    async fn become_master(&mut self, index: usize, cause: Cause, accept: bool) {
        let name = self.instances[index].spec.name.clone();
        let started = Instant::now();
        let running = &mut self.instances[index];
        running.entered_state = started;
        running.resumed = false;
        running.forwarding_until = None;
        running.master = Some((
            running.vrrp.config().primary_addr,
            running.vrrp.priority().0,
        ));
        let vrid = running.spec.vrid.0;
        // RFC 5798 §6.4.3: a non-owner master in non-accept mode must not accept
        // packets addressed to the VIPs; the owner always does.
        let ownership = if accept || running.spec.priority.0 == 255 {
            Ownership::Local { vrid }
        } else {
            Ownership::Drop { vrid }
        };
        self.set_vips(index, ownership);
        let flip = started.elapsed();
        self.metrics.observe_flip(flip);
        log::info!(
            "instance {name}: -> MASTER ({cause}); VIPS flipped in {} µs",
            flip.as_micros()
        );
        // Awaited, not spawned: the first advert (next action) makes the old master
        // step down and forward to us, so the addresses must be in place by then.
        self.add_addresses(index).await;
        // After the addresses, as keepalived: a notify script may rely on them. Starting it
        // never waits for it.
        let priority = self.instances[index].vrrp.priority();
        self.notifier
            .state_changed(NotifyKind::Instance, &name, NotifyState::Master, priority);
    }

    /// Leaves master (or a stale resumed state) for backup: forward to the new master for the
    /// forward window when its MAC is known, drop otherwise; withdraw the addresses.
    fn step_down(&mut self, index: usize, traffic: BackupTraffic) {
        let running = &mut self.instances[index];
        if let Some(task) = running.announcer.take() {
            task.abort();
        }
        let vrid = running.spec.vrid.0;
        let window = running.spec.forward_window;
        let ownership = match traffic {
            BackupTraffic::Forward { mac } if mac.0 != [0; 6] && !window.is_zero() => {
                running.forwarding_until = Some((Instant::now() + window, mac));
                Ownership::Forward {
                    vrid,
                    ifindex: running.iface_index,
                    dst_mac: mac.0,
                    src_mac: running.iface_mac.0,
                }
            }
            _ => {
                running.forwarding_until = None;
                Ownership::Drop { vrid }
            }
        };
        self.set_vips(index, ownership);
        self.spawn_remove_addresses(index);
    }

    /// One `VIPS` update per VIP of the instance.
    fn set_vips(&mut self, index: usize, ownership: Ownership) {
        let running = &self.instances[index];
        let Some(plane) = self.planes.get_mut(&running.spec.interface) else {
            return;
        };
        for vip in &running.spec.virtual_ips {
            if let Err(err) = plane.set_vip(vip.addr(), ownership) {
                log::error!("instance {}: {err}", running.spec.name);
            }
        }
    }

    async fn add_addresses(&self, index: usize) {
        let running = &self.instances[index];
        let started = Instant::now();
        for net in &running.spec.virtual_ips {
            let addr = IfAddr {
                addr: net.addr(),
                prefix_len: net.prefix_len(),
            };
            if let Err(err) = self
                .netlink
                .add_address(&running.spec.interface, addr)
                .await
            {
                log::error!("instance {}: {err}", running.spec.name);
            }
        }
        log::info!(
            "instance {}: addresses added in {} µs",
            running.spec.name,
            started.elapsed().as_micros()
        );
    }

    /// Removes the instance's VIPs from its interface, in a task of its own.
    fn spawn_remove_addresses(&self, index: usize) {
        let running = &self.instances[index];
        let netlink = Arc::clone(&self.netlink);
        let iface = running.spec.interface.clone();
        let name = running.spec.name.clone();
        let addrs: Vec<IfAddr> = running
            .spec
            .virtual_ips
            .iter()
            .map(|net| IfAddr {
                addr: net.addr(),
                prefix_len: net.prefix_len(),
            })
            .collect();
        tokio::spawn(async move {
            let started = Instant::now();
            for addr in addrs {
                if let Err(err) = netlink.remove_address(&iface, addr).await {
                    log::error!("instance {name}: {err}");
                }
            }
            log::info!(
                "instance {name}: addresses removed in {} µs",
                started.elapsed().as_micros()
            );
        });
    }

    /// Gratuitous ARP / unsolicited NA for the VIPs, on the instance's `garp` schedule.
    fn announce(&mut self, index: usize) {
        let running = &mut self.instances[index];
        if let Some(task) = running.announcer.take() {
            task.abort();
        }
        let addrs: Vec<IpAddr> = running
            .spec
            .virtual_ips
            .iter()
            .map(ipnet::IpNet::addr)
            .collect();
        // RFC 9568 §6.4.2: a virtual router's NA sets the Router flag.
        let frames =
            match garp::announcement_frames(running.iface_mac, &addrs, GarpForm::Request, true) {
                Ok(frames) => frames,
                Err(err) => {
                    log::error!("instance {}: {err}", running.spec.name);
                    return;
                }
            };
        let socket = match GarpSocket::open(&running.spec.interface, running.iface_index) {
            Ok(socket) => socket,
            Err(err) => {
                log::error!("instance {}: {err}", running.spec.name);
                return;
            }
        };
        let g = running.spec.garp;
        let schedule = GarpSchedule {
            repeat: u32::from(g.repeat),
            interval: g.interval,
            delay: (!g.delay.is_zero()).then_some(g.delay),
            refresh: (!g.refresh.is_zero()).then_some(g.refresh),
        };
        let name = running.spec.name.clone();
        let task = garp::spawn_announcer(socket, frames, schedule);
        running.announcer = Some(tokio::spawn(async move {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => log::warn!("instance {name}: announcements stopped: {err}"),
                Err(err) if err.is_cancelled() => {}
                Err(err) => log::warn!("instance {name}: announcer failed: {err}"),
            }
        }));
    }

    async fn control(&mut self, request: Request) -> Response {
        match request {
            Request::Status => Response::Status(self.status()),
            Request::Reload => match self.reload().await {
                Ok(message) => Response::Ok { message },
                Err(message) => {
                    log::error!("{message}");
                    Response::Error { message }
                }
            },
            Request::Handoff { instance } => {
                let Some(index) = self.instances.iter().position(|r| r.spec.name == instance)
                else {
                    let known: Vec<&str> = self
                        .instances
                        .iter()
                        .map(|r| r.spec.name.as_str())
                        .collect();
                    return Response::Error {
                        message: format!(
                            "no instance {instance:?} (instances: {})",
                            known.join(", ")
                        ),
                    };
                };
                match self.instances[index]
                    .vrrp
                    .handle_command(Instant::now(), Command::GracefulHandoff)
                {
                    Ok(()) => {
                        self.drain(index).await;
                        Response::Ok {
                            message: format!(
                                "instance {instance}: handing off; still serving until the new master is heard"
                            ),
                        }
                    }
                    Err(err) => Response::Error {
                        message: format!("instance {instance}: {err}"),
                    },
                }
            }
        }
    }

    /// Brings the values the metrics mirror (XDP maps, gauges, trackers, notify counts) up
    /// to date and renders them.
    fn render_metrics(&mut self) -> String {
        for (iface, plane) in &self.planes {
            match plane.stats() {
                Ok(stats) => self.metrics.set_xdp(iface, &stats),
                Err(err) => log::warn!("metrics: {err}"),
            }
        }
        for r in &self.instances {
            let name = &r.spec.name;
            self.metrics.set_state(name, r.vrrp.state());
            self.metrics
                .set_effective_priority(name, r.vrrp.priority().0);
            let stats = r.vrrp.stats();
            self.metrics.set_adverts(
                name,
                r.adverts_sent,
                r.adverts_received,
                DiscardKind::ALL
                    .iter()
                    .map(|kind| (kind.label(), stats.discarded(*kind))),
            );
            if let Some(plane) = self.planes.get(&r.spec.interface)
                && let Ok(stats) = plane.vrid_stats(family_tag(&r.spec), r.spec.vrid.0)
            {
                let family = if r.spec.family() == Family::Ipv4 {
                    "ipv4"
                } else {
                    "ipv6"
                };
                self.metrics
                    .set_xdp_vrid(&r.spec.interface, family, r.spec.vrid.0, &stats);
            }
            for t in r.track.report() {
                let up = match t.what {
                    track::Tracked::Interface(_)
                    | track::Tracked::Script(_)
                    | track::Tracked::Quorum(_) => t.seen.map(|v| v != 0),
                    track::Tracked::File(_) => None,
                };
                let contribution = match t.effect {
                    Some(track::Effect::Add(n)) => n,
                    Some(track::Effect::Fault) | None => 0,
                };
                self.metrics
                    .set_tracker(name, &t.what.to_string(), up, contribution);
            }
        }
        self.metrics
            .set_virtual_servers(self.lb.balancer.services());
        self.metrics.set_notify(self.notifier.stats());
        self.metrics.render()
    }

    fn status(&self) -> StatusReport {
        let now = Instant::now();
        let instances = self
            .instances
            .iter()
            .map(|r| {
                let family = family_tag(&r.spec);
                let plane = self.planes.get(&r.spec.interface);
                let xdp = plane
                    .and_then(|p| p.vrid_stats(family, r.spec.vrid.0).ok())
                    .unwrap_or_default();
                let dataplane = plane
                    .and_then(|p| p.vips().ok())
                    .map(|vips| {
                        vips.into_iter()
                            .filter(|(addr, _)| {
                                r.spec.virtual_ips.iter().any(|n| n.addr() == *addr)
                            })
                            .map(|(addr, ownership)| format!("{addr}: {ownership}"))
                            .collect()
                    })
                    .unwrap_or_default();
                let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                let stats = r.vrrp.stats();
                InstanceStatus {
                    name: r.spec.name.clone(),
                    interface: r.spec.interface.clone(),
                    vrid: r.spec.vrid.0,
                    version: match r.spec.version {
                        crate::wire::VrrpVersion::V2 => 2,
                        crate::wire::VrrpVersion::V3 => 3,
                    },
                    state: format!("{:?}", r.vrrp.state()),
                    handing_off: r.vrrp.is_handing_off(),
                    base_priority: r.spec.priority.0,
                    effective_priority: r.vrrp.priority().0,
                    master: r.master.map(|(addr, _)| addr),
                    master_priority: r.master.map(|(_, prio)| prio),
                    advert_interval_ms: millis(r.spec.advert_interval),
                    master_adver_interval_ms: millis(r.vrrp.master_adver_interval()),
                    time_in_state_ms: millis(now.duration_since(r.entered_state)),
                    transitions: stats.transitions,
                    last_cause: r.vrrp.last_cause().map(|c| c.to_string()),
                    virtual_ips: r.spec.virtual_ips.iter().map(ToString::to_string).collect(),
                    dataplane,
                    xdp_adverts_accepted: xdp.accepted,
                    xdp_adverts_dropped: xdp.dropped,
                    adverts_sent: stats.adverts_sent,
                    adverts_received: r.adverts_received,
                    trackers: r
                        .track
                        .report()
                        .into_iter()
                        .map(|t| TrackerStatus {
                            tracker: t.what.to_string(),
                            weight: i32::try_from(t.weight).unwrap_or(0),
                            observed: t.seen,
                            effect: t
                                .effect
                                .map_or_else(|| "none".to_owned(), |e| e.to_string()),
                        })
                        .collect(),
                    sync_group: r.group.map(|g| self.groups[g].name.clone()),
                    removing: r.retiring,
                }
            })
            .collect();
        StatusReport {
            router_id: self.router_id.clone(),
            pid: std::process::id(),
            instances,
            virtual_servers: self.lb_status(),
        }
    }

    /// SIGHUP / `vipflip reload`: re-reads the configuration file. An invalid file changes
    /// nothing (every error is returned). Otherwise only the difference is applied: unchanged
    /// instances are not touched; removed ones resign (a master hands off first, without a lost
    /// packet); changed ones are updated in place when only priority, tracking, notify, GARP or
    /// the forward window changed, and restarted otherwise; new ones start.
    async fn reload(&mut self) -> Result<String, String> {
        if self.stopping.is_some() {
            return Err("reload refused: the daemon is stopping".into());
        }
        let Some(path) = self.config_path.clone() else {
            return Err(
                "reload refused: this daemon was not started from a configuration file".into(),
            );
        };
        let (new, warnings) = Config::load(&path).map_err(|diagnostics| {
            let errors: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            format!(
                "reload refused, the running configuration is kept:\n{}",
                errors.join("\n")
            )
        })?;
        for warning in warnings {
            log::warn!("{warning}");
        }
        log::info!("reloading {}", path.display());
        let changed_globals = changed_globals(&self.config.global, &new.global);
        if !changed_globals.is_empty() {
            log::warn!(
                "reload: [global] {} changed; that takes effect at the next restart",
                changed_globals.join(", ")
            );
        }
        let mut report = Reloaded::default();
        // Removed, or changed beyond what can be updated in place: out first, so a restarted
        // instance's VIPs and VRID filter are free for its new self.
        let mut index = 0;
        while index < self.instances.len() {
            let running = &self.instances[index];
            if running.retiring {
                index += 1;
                continue;
            }
            let name = running.spec.name.clone();
            match new.instances.iter().find(|s| s.name == name) {
                None => {
                    report.removed.push(name);
                    if self.retire(index).await {
                        index += 1;
                    }
                }
                // Unchanged, unless it could not open its VRRP socket (interface or address
                // missing at its start): a reload is the way to start it once they exist.
                Some(spec) if *spec == running.spec && running.socket.is_some() => {
                    report.unchanged += 1;
                    index += 1;
                }
                Some(spec) if updatable_in_place(&running.spec, spec) => {
                    self.update_in_place(index, spec.clone()).await;
                    report.updated.push(name);
                    index += 1;
                }
                Some(_) => {
                    report.restarted.push(name);
                    self.remove_instance(index).await;
                }
            }
        }
        let retiring: Vec<String> = self
            .instances
            .iter()
            .filter(|r| r.retiring)
            .map(|r| r.spec.name.clone())
            .collect();
        self.notifier.set_scripts(&new, &retiring);
        // Compared as sets of watched objects: adding an instance on an interface already
        // watched, or moving a weight, restarts nothing (a restarted script driver starts its
        // rise/fall count afresh).
        let respawn = track::Watched::of(&self.config) != track::Watched::of(&new);
        let old = std::mem::replace(&mut self.config, new);
        if respawn {
            match track::spawn_trackers(&self.config) {
                Ok((observations, trackers)) => {
                    self.observations = observations;
                    self.trackers = trackers;
                }
                Err(err) => log::error!("reload: restarting the trackers: {err}"),
            }
        }
        self.start_new_instances(&mut report).await;
        self.configure_lb().await;
        drop(old);
        let message = report.to_string();
        if report.failed.is_empty() {
            log::info!("reloaded: {message}");
            Ok(message)
        } else {
            Err(format!("reloaded with errors: {message}"))
        }
    }

    /// A reload changed only what can change under a running instance: the new priority and
    /// trackers go through [`TrackState::reconfigure`], the rest is read at its next use.
    async fn update_in_place(&mut self, index: usize, spec: InstanceSpec) {
        let running = &mut self.instances[index];
        let before: Vec<track::Tracked> = running.track.trackers().cloned().collect();
        let commands = running.track.reconfigure(&spec);
        for gone in before
            .iter()
            .filter(|t| !running.track.trackers().any(|n| n == *t))
        {
            self.metrics
                .forget_tracker(&running.spec.name, &gone.to_string());
        }
        running.spec = spec;
        self.apply_track_commands(index, commands);
        self.drain(index).await;
    }

    /// After a reload: starts every instance of the new file that is not running (new, or
    /// restarted because it changed), and points every instance at its sync group.
    async fn start_new_instances(&mut self, report: &mut Reloaded) {
        // An instance still handing off after an earlier reload removed it, which this file
        // brings back or whose VRID or VIPs a new instance takes: it goes now (two instances
        // sharing a VRID share its adverts; sharing a VIP, the retiring one's end would
        // withdraw it from under the new one).
        while let Some(index) = self
            .instances
            .iter()
            .position(|r| r.retiring && self.config.instances.iter().any(|s| overlaps(&r.spec, s)))
        {
            self.remove_instance(index).await;
        }
        let first_new = self.instances.len();
        let mut reopened = Vec::new();
        for spec in self.config.instances.clone() {
            if self
                .instances
                .iter()
                .any(|r| r.spec.name == spec.name && !r.retiring)
            {
                continue;
            }
            if !report.restarted.contains(&spec.name) {
                report.added.push(spec.name.clone());
            }
            if let Err(err) = self.add_instance(spec.clone(), &mut reopened).await {
                log::error!("reload: instance {}: {err:#}", spec.name);
                report.failed.push(format!("{}: {err:#}", spec.name));
            }
        }
        self.regroup();
        for index in first_new..self.instances.len() {
            if let Err(err) = self.start_instance(index).await {
                let name = &self.instances[index].spec.name;
                log::error!("reload: instance {name}: {err:#}");
                report.failed.push(format!("{name}: {err:#}"));
            }
        }
        self.settle_groups().await;
    }

    /// After group membership changed (a reload): an instance no longer in a group drops a
    /// fault it held only for its old group, and every group reconciles its members' faults
    /// (a member holding its own fault may have gone).
    async fn settle_groups(&mut self) {
        for index in 0..self.instances.len() {
            let running = &mut self.instances[index];
            if running.group.is_none() && running.vrrp.has_fault(FaultCause::SyncGroup) {
                let _ = running
                    .vrrp
                    .handle_command(Instant::now(), Command::Unfault(FaultCause::SyncGroup));
                self.drain(index).await;
            }
        }
        for group in 0..self.groups.len() {
            if let Some(index) = self.instances.iter().position(|r| r.group == Some(group)) {
                self.drain(index).await;
            }
        }
    }

    /// A reload removed the instance: a master hands off and stays (retiring) until the new
    /// master is heard and the forward window is over; anything else goes now. Returns
    /// whether the instance is still in `self.instances`.
    async fn retire(&mut self, index: usize) -> bool {
        let running = &mut self.instances[index];
        if running.vrrp.state() == StateKind::Master
            && running
                .vrrp
                .handle_command(Instant::now(), Command::GracefulHandoff)
                .is_ok()
        {
            log::info!(
                "instance {}: removed from the configuration; handing off first",
                running.spec.name
            );
            running.retiring = true;
            self.drain(index).await;
            return true;
        }
        self.remove_instance(index).await;
        false
    }

    /// Removes retiring instances whose handoff and forward window are over.
    async fn reap_retired(&mut self) {
        while let Some(index) = self
            .instances
            .iter()
            .position(|r| r.retiring && !r.vrrp.is_handing_off() && r.forwarding_until.is_none())
        {
            self.remove_instance(index).await;
        }
    }

    /// Stops the instance (a master resigns with priority 0, RFC 5798 §6.4.3), takes its
    /// VIPs out of the data plane and off the interface, and forgets it.
    async fn remove_instance(&mut self, index: usize) {
        let _ = self.instances[index]
            .vrrp
            .handle_command(Instant::now(), Command::Shutdown);
        // Out of its group first: the group must not react to this member's shutdown.
        self.instances[index].group = None;
        self.drain(index).await;
        let running = self.instances.remove(index);
        if let Some(task) = &running.announcer {
            task.abort();
        }
        let still_used = |vip: IpAddr| {
            self.instances.iter().any(|r| {
                r.spec.interface == running.spec.interface
                    && r.spec.virtual_ips.iter().any(|n| n.addr() == vip)
            })
        };
        let vrid_used = self.instances.iter().any(|r| {
            r.spec.interface == running.spec.interface
                && r.spec.vrid == running.spec.vrid
                && r.spec.family() == running.spec.family()
        });
        if let Some(plane) = self.planes.get_mut(&running.spec.interface) {
            for vip in running.spec.virtual_ips.iter().map(ipnet::IpNet::addr) {
                if !still_used(vip)
                    && let Err(err) = plane.remove_vip(vip)
                {
                    log::warn!("instance {}: {err}", running.spec.name);
                }
            }
            if !vrid_used
                && let Err(err) = plane.remove_vrid(family_tag(&running.spec), running.spec.vrid.0)
            {
                log::warn!("instance {}: {err}", running.spec.name);
            }
        }
        self.metrics.forget_instance(&running.spec.name);
        log::info!("instance {}: removed", running.spec.name);
    }

    /// SIGTERM / SIGINT: every master hands off (priority 0, still serving until the new
    /// master is heard); the loop ends once no instance is handing off, or after a bound.
    async fn begin_stop(&mut self) {
        if self.stopping.is_some() {
            log::warn!("second signal: leaving at once");
            self.force_exit = true;
            return;
        }
        log::info!("stopping: handing off every master instance");
        self.stopping = Some(Instant::now());
        for index in 0..self.instances.len() {
            let running = &mut self.instances[index];
            if running.vrrp.state() == StateKind::Master
                && let Err(err) = running
                    .vrrp
                    .handle_command(Instant::now(), Command::GracefulHandoff)
            {
                log::info!("instance {}: {err}; resigning instead", running.spec.name);
            }
            self.drain(index).await;
        }
    }

    /// Whether no ex-master still forwards on-wire. Detaching the data plane ends that
    /// forwarding, so without `--keep-dataplane` a stopping daemon waits for the forward
    /// window (hosts whose ARP caches still point here need it); with it, the pinned program
    /// goes on forwarding after the daemon has gone.
    fn forwarding_done(&self, options: &RunOptions) -> bool {
        options.keep_dataplane || self.instances.iter().all(|r| r.forwarding_until.is_none())
    }

    fn handoffs_done(&self) -> bool {
        self.instances.iter().all(|r| !r.vrrp.is_handing_off())
    }

    /// Resigns what is left (priority 0 from any remaining master), withdraws the addresses,
    /// and detaches the data plane unless asked to keep it.
    async fn stop(&mut self, options: &RunOptions) {
        let now = Instant::now();
        for index in 0..self.instances.len() {
            let _ = self.instances[index]
                .vrrp
                .handle_command(now, Command::Shutdown);
            self.drain(index).await;
        }
        // Let the address removals spawned above finish.
        for running in &self.instances {
            for vip in &running.spec.virtual_ips {
                let addr = IfAddr {
                    addr: vip.addr(),
                    prefix_len: vip.prefix_len(),
                };
                let _ = self
                    .netlink
                    .remove_address(&running.spec.interface, addr)
                    .await;
            }
        }
        // STOP (and last BACKUP) scripts: the runtime ends with this function.
        self.notifier.wait_for_scripts(NOTIFY_AT_EXIT_LIMIT).await;
        self.control_task.abort();
        if let Some(task) = &self.metrics_task {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.control_path);
        let ifaces: Vec<String> = self.planes.keys().cloned().collect();
        self.planes.clear();
        if options.keep_dataplane {
            log::info!(
                "leaving the XDP data plane pinned under {}",
                self.pin_dir.display()
            );
            return;
        }
        for iface in ifaces {
            match Dataplane::detach(&iface, &self.pin_dir) {
                Ok(()) => log::info!("{iface}: XDP detached, pins removed"),
                Err(err) => log::warn!("{err}"),
            }
        }
    }
}

/// A transition cause as a metrics label: `higher_priority_advert`, `fault_link_down`.
fn cause_label(cause: Cause) -> String {
    let debug = format!("{cause:?}");
    let mut label = String::with_capacity(debug.len() + 4);
    for c in debug.chars() {
        if c.is_ascii_uppercase() {
            if !label.is_empty() && !label.ends_with('_') {
                label.push('_');
            }
            label.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            label.push(c);
        } else if !label.ends_with('_') {
            label.push('_');
        }
    }
    label.trim_end_matches('_').to_owned()
}

/// Whether two instances would claim the same adverts or the same VIP: one name, one VRID
/// of one family on one interface, or a shared virtual IP.
fn overlaps(a: &InstanceSpec, b: &InstanceSpec) -> bool {
    a.name == b.name
        || (a.interface == b.interface && a.vrid == b.vrid && a.family() == b.family())
        || a.virtual_ips
            .iter()
            .any(|v| b.virtual_ips.iter().any(|w| v.addr() == w.addr()))
}

/// Keeps the latest observation of each tracked object in `observed`.
fn remember(observed: &mut Vec<Observation>, observation: &Observation) {
    let same_object = |o: &Observation| match (o, observation) {
        (Observation::Link { name: a, .. }, Observation::Link { name: b, .. })
        | (Observation::Script { name: a, .. }, Observation::Script { name: b, .. })
        | (Observation::Quorum { service: a, .. }, Observation::Quorum { service: b, .. }) => {
            a == b
        }
        (Observation::File { path: a, .. }, Observation::File { path: b, .. }) => a == b,
        _ => false,
    };
    match observed.iter_mut().find(|o| same_object(o)) {
        Some(slot) => slot.clone_from(observation),
        None => observed.push(observation.clone()),
    }
}

/// The data plane's family tag of an instance's adverts.
fn family_tag(spec: &InstanceSpec) -> u8 {
    if spec.family() == Family::Ipv4 {
        vipflip_common::FAMILY_IPV4
    } else {
        vipflip_common::FAMILY_IPV6
    }
}

/// Whether a reload can move `old` to `new` without restarting it: they differ only in
/// what tracking, notify and the I/O shell read at each use. The state machine's own
/// configuration (VRID, interval, VIPs, peers, preempt…) needs a new instance, as does
/// becoming or ceasing to be the address owner.
fn updatable_in_place(old: &InstanceSpec, new: &InstanceSpec) -> bool {
    const OWNER: u8 = 255;
    if (old.priority.0 == OWNER) != (new.priority.0 == OWNER) {
        return false;
    }
    let mut rest = new.clone();
    rest.priority = old.priority;
    rest.track_interfaces.clone_from(&old.track_interfaces);
    rest.track_scripts.clone_from(&old.track_scripts);
    rest.track_files.clone_from(&old.track_files);
    rest.track_quorums.clone_from(&old.track_quorums);
    rest.notify = old.notify.clone();
    rest.garp = old.garp;
    rest.forward_window = old.forward_window;
    rest == *old
}

/// The `[global]` keys that differ: a reload does not apply them.
fn changed_globals(old: &crate::config::Global, new: &crate::config::Global) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |key: &'static str, same: bool| {
        if !same {
            changed.push(key);
        }
    };
    check("router_id", old.router_id == new.router_id);
    check("pin_dir", old.pin_dir == new.pin_dir);
    check("control_socket", old.control_socket == new.control_socket);
    check("xdp_mode", old.xdp_mode == new.xdp_mode);
    check("metrics_listen", old.metrics_listen == new.metrics_listen);
    check("notify_fifo", old.notify_fifo == new.notify_fifo);
    if changed.is_empty() && old != new {
        changed.push("other settings");
    }
    changed
}

/// What a reload did, for its log line and the `vipflip reload` answer.
#[derive(Debug, Default)]
struct Reloaded {
    unchanged: usize,
    added: Vec<String>,
    removed: Vec<String>,
    updated: Vec<String>,
    restarted: Vec<String>,
    /// Instances of the new file that could not be started, with why.
    failed: Vec<String>,
}

impl std::fmt::Display for Reloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} unchanged", self.unchanged)?;
        for (what, names) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("updated in place", &self.updated),
            ("restarted", &self.restarted),
            ("failed to start", &self.failed),
        ] {
            if !names.is_empty() {
                write!(f, "; {what}: {}", names.join(", "))?;
            }
        }
        Ok(())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Serves the control socket: one JSON request per connection, answered by the loop.
fn spawn_control_server(
    path: &Path,
    requests: mpsc::Sender<(Request, oneshot::Sender<Response>)>,
) -> anyhow::Result<JoinHandle<()>> {
    if path.exists() {
        // A live daemon answers; a stale file from a crash does not and is replaced.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another vipflip daemon answers on {}; give this one its own control_socket",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding the control socket {}", path.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to root", path.display()))?;
    }
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let requests = requests.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_err() {
                    return;
                }
                let response = match control::decode_request(&line) {
                    Ok(request) => {
                        let (reply, answer) = oneshot::channel();
                        if requests.send((request, reply)).await.is_err() {
                            return;
                        }
                        answer.await.unwrap_or(Response::Error {
                            message: "the daemon is stopping".into(),
                        })
                    }
                    Err(message) => Response::Error { message },
                };
                let _ = write
                    .write_all(control::encode_response(&response).as_bytes())
                    .await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::{cause_label, changed_globals, overlaps, remember, updatable_in_place};
    use crate::config::Config;
    use crate::track::Observation;
    use crate::vrrp::{Cause, FaultCause};

    fn config(extra_instance: &str, extra_global: &str) -> Config {
        let text = format!(
            r#"
            [global]
            router_id = "r1"
            {extra_global}
            [[instance]]
            name = "VI_1"
            interface = "lo"
            vrid = 51
            priority = 100
            virtual_ips = ["192.0.2.100/24"]
            {extra_instance}
            "#
        );
        Config::parse(&text, "test.toml").expect("config").0
    }

    #[test]
    fn cause_labels_are_snake_case() {
        assert_eq!(
            cause_label(Cause::HigherPriorityAdvert),
            "higher_priority_advert"
        );
        assert_eq!(
            cause_label(Cause::Fault(FaultCause::LinkDown)),
            "fault_link_down"
        );
        assert_eq!(
            cause_label(Cause::Fault(FaultCause::Tracked(3))),
            "fault_tracked_3"
        );
    }

    #[test]
    fn priority_tracking_and_notify_update_in_place_the_rest_restarts() {
        let old = &config("", "").instances[0];
        let mut raised = old.clone();
        raised.priority = crate::wire::Priority(150);
        assert!(updatable_in_place(old, &raised));
        let tracked = &config(
            r#"track_interfaces = [{ name = "lo", weight = -10 }]
            notify = { master = "/bin/true" }
            forward_window = "1s""#,
            "",
        )
        .instances[0];
        assert!(updatable_in_place(old, tracked));
        let interval = &config(r#"advert_interval = "200ms""#, "").instances[0];
        assert!(!updatable_in_place(old, interval));
        let mut owner = old.clone();
        owner.priority = crate::wire::Priority(255);
        assert!(
            !updatable_in_place(old, &owner),
            "becoming the owner restarts"
        );
    }

    #[test]
    fn remember_keeps_the_last_observation_of_each_object() {
        let mut observed = Vec::new();
        let link = |name: &str, up| Observation::Link {
            name: name.into(),
            up,
        };
        remember(&mut observed, &link("eth0", true));
        remember(&mut observed, &link("eth1", true));
        remember(&mut observed, &link("eth0", false));
        remember(
            &mut observed,
            &Observation::Script {
                name: "eth0".into(),
                ok: true,
            },
        );
        assert_eq!(
            observed,
            [
                link("eth0", false),
                link("eth1", true),
                Observation::Script {
                    name: "eth0".into(),
                    ok: true
                }
            ]
        );
    }

    #[test]
    fn overlapping_instances_share_a_name_a_vrid_or_a_vip() {
        let a = config("", "").instances[0].clone();
        let mut b = a.clone();
        b.name = "VI_2".into();
        assert!(overlaps(&a, &b), "same VRID and VIP");
        b.vrid = crate::wire::VrId(52);
        assert!(overlaps(&a, &b), "same VIP");
        b.virtual_ips = vec!["192.0.2.101/24".parse().unwrap()];
        assert!(!overlaps(&a, &b));
        b.name = "VI_1".into();
        assert!(overlaps(&a, &b), "same name");
    }

    #[test]
    fn changed_globals_are_named() {
        let old = config("", "");
        let new = config("", r#"metrics_listen = "127.0.0.1:9100""#);
        assert_eq!(
            changed_globals(&old.global, &new.global),
            ["metrics_listen"]
        );
        assert!(changed_globals(&old.global, &old.global).is_empty());
    }
}
