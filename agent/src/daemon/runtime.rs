//! The event loop and the carrying-out of VRRP actions.

use std::{
    collections::BTreeMap,
    ffi::CString,
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
    control::{self, InstanceStatus, Request, Response, StatusReport},
    dataplane::{AttachOutcome, Dataplane, Ownership, XdpModeChoice},
    io::{
        garp::{self, GarpSchedule, GarpSocket},
        netlink::{IfAddr, LinkInfo, Netlink},
        vrrp_socket::{Delivery, ReceivedAdvert, SocketConfig, VrrpSocket},
    },
    vrrp::{Action, BackupTraffic, Cause, Command, FaultCause, Instance, RxMeta, StateKind},
    wire::{
        Family, MacAddr, V3Ipv4Checksum,
        arp::GarpForm,
        ip::{VRRP_GROUP_V4, VRRP_GROUP_V6},
    },
};

/// `statfs` magic of bpffs (`BPF_FS_MAGIC`, include/uapi/linux/magic.h).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Says which configured features this version parses and checks but does not act on yet.
fn warn_inactive(config: &Config) {
    let mut inactive = Vec::new();
    for i in &config.instances {
        if !i.track_interfaces.is_empty()
            || !i.track_scripts.is_empty()
            || !i.track_files.is_empty()
        {
            inactive.push(format!("instance {}: track_*", i.name));
        }
        let n = &i.notify;
        if n.master.is_some() || n.backup.is_some() || n.fault.is_some() || n.stop.is_some() {
            inactive.push(format!("instance {}: notify", i.name));
        }
    }
    if !config.sync_groups.is_empty() {
        inactive.push("[[sync_group]]".to_owned());
    }
    if config.global.metrics_listen.is_some() {
        inactive.push("global.metrics_listen".to_owned());
    }
    if config.global.notify_fifo.is_some() {
        inactive.push("global.notify_fifo".to_owned());
    }
    if !inactive.is_empty() {
        log::warn!(
            "configured but not acted on by this version (tracking, notify, sync groups and \
             metrics come later): {}",
            inactive.join(", ")
        );
    }
}

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
    /// After a restart that re-opened a pinned data plane: the VIPs are left as the previous
    /// run left them until the election says otherwise (see `resume`).
    resumed: bool,
    /// While an ex-master forwards on-wire to the new master: until when, and to which MAC.
    forwarding_until: Option<(Instant, MacAddr)>,
    announcer: Option<JoinHandle<()>>,
}

struct Daemon {
    router_id: String,
    pin_dir: PathBuf,
    control_path: PathBuf,
    netlink: Arc<Netlink>,
    planes: BTreeMap<String, Dataplane>,
    sockets: Vec<VrrpSocket>,
    instances: Vec<Running>,
    control_rx: mpsc::Receiver<(Request, oneshot::Sender<Response>)>,
    control_task: JoinHandle<()>,
    /// Set once SIGTERM / SIGINT arrived: hand off, then leave.
    stopping: Option<Instant>,
    /// A second signal: leave without waiting for handoffs.
    force_exit: bool,
}

enum Event {
    Advert(
        usize,
        Result<ReceivedAdvert, crate::io::vrrp_socket::RecvError>,
    ),
    Control(Request, oneshot::Sender<Response>),
    Terminate,
    Deadline,
}

impl Daemon {
    #[expect(
        clippy::too_many_lines,
        reason = "start-up reads best as one sequence of steps"
    )]
    async fn start(config: Config, options: &RunOptions) -> anyhow::Result<Self> {
        warn_inactive(&config);
        let netlink = Arc::new(Netlink::new().context("opening rtnetlink")?);
        let pin_dir = config.global.pin_dir.clone();
        ensure_bpffs(&pin_dir)?;
        let mode = match config.global.xdp_mode {
            XdpMode::Auto => XdpModeChoice::Auto,
            XdpMode::Driver => XdpModeChoice::Driver,
            XdpMode::Skb => XdpModeChoice::Skb,
        };
        let mut planes = BTreeMap::new();
        let mut links: BTreeMap<String, LinkInfo> = BTreeMap::new();
        let mut resumed_ifaces = Vec::new();
        for spec in &config.instances {
            if links.contains_key(&spec.interface) {
                continue;
            }
            let link = match netlink.link(&spec.interface).await {
                Ok(link) => link,
                Err(err) => {
                    log::error!("{}: {err}; its instances stay in fault", spec.interface);
                    continue;
                }
            };
            let (plane, outcome) = Dataplane::attach(&spec.interface, &pin_dir, mode)
                .with_context(|| format!("attaching XDP to {}", spec.interface))?;
            match outcome {
                AttachOutcome::Attached(mode) => {
                    log::info!("{}: XDP attached in {mode} mode", spec.interface);
                }
                AttachOutcome::Reopened => {
                    log::info!(
                        "{}: re-opened the pinned XDP data plane (traffic kept flowing)",
                        spec.interface
                    );
                    resumed_ifaces.push(spec.interface.clone());
                }
            }
            planes.insert(spec.interface.clone(), plane);
            links.insert(spec.interface.clone(), link);
        }

        let mut sockets: Vec<VrrpSocket> = Vec::new();
        let mut instances = Vec::new();
        let now = Instant::now();
        for spec in config.instances {
            let family = spec.family();
            let link = links.get(&spec.interface);
            let delivery = if spec.unicast_peers.is_empty() {
                Delivery::Multicast
            } else {
                Delivery::Unicast
            };
            let socket_config = link
                .and_then(|l| SocketConfig::for_link(l, family, delivery))
                .map(|mut c| {
                    if let Some(src) = spec.unicast_src {
                        c.src = src;
                    }
                    c
                });
            let socket = if let Some(wanted) = socket_config {
                Some(
                    shared_socket(&mut sockets, wanted)
                        .with_context(|| format!("instance {}", spec.name))?,
                )
            } else {
                {
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
                }
            };
            let primary = socket.map_or(
                if family == Family::Ipv4 {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                },
                |i| sockets[i].config().src,
            );
            let vrrp = Instance::new(spec.vrrp_config(primary))
                .with_context(|| format!("instance {}: VRRP configuration", spec.name))?;
            if let Some(plane) = planes.get_mut(&spec.interface) {
                let family_tag = if family == Family::Ipv4 {
                    vipflip_common::FAMILY_IPV4
                } else {
                    vipflip_common::FAMILY_IPV6
                };
                let allowed =
                    (!spec.allowed_peers.is_empty()).then_some(spec.allowed_peers.as_slice());
                plane.set_vrid_filter(family_tag, spec.vrid.0, allowed)?;
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
            let resumed = resumed_ifaces.contains(&spec.interface);
            let link = links.get(&spec.interface);
            instances.push(Running {
                iface_index: link.map_or(0, |l| l.index),
                iface_mac: link.and_then(|l| l.mac).unwrap_or(MacAddr([0; 6])),
                spec,
                vrrp,
                socket,
                destinations,
                entered_state: now,
                master: None,
                adverts_received: 0,
                resumed,
                forwarding_until: None,
                announcer: None,
            });
        }

        let control_path = options
            .control_socket
            .clone()
            .unwrap_or(config.global.control_socket.clone());
        let (control_tx, control_rx) = mpsc::channel(16);
        let control_task = spawn_control_server(&control_path, control_tx)?;
        let mut daemon = Self {
            router_id: config.global.router_id,
            pin_dir,
            control_path,
            netlink,
            planes,
            sockets,
            instances,
            control_rx,
            control_task,
            stopping: None,
            force_exit: false,
        };
        for index in 0..daemon.instances.len() {
            let running = &mut daemon.instances[index];
            if !running.resumed {
                // A fresh start: nothing is served until the election says so.
                for vip in running.spec.virtual_ips.clone() {
                    if let Some(plane) = daemon.planes.get_mut(&running.spec.interface) {
                        plane.set_vip(
                            vip.addr(),
                            Ownership::Drop {
                                vrid: running.spec.vrid.0,
                            },
                        )?;
                    }
                }
            }
            let now = Instant::now();
            let running = &mut daemon.instances[index];
            if running.socket.is_none() {
                let _ = running
                    .vrrp
                    .handle_command(now, Command::Fault(FaultCause::LinkDown));
            }
            let _ = running.vrrp.handle_command(now, Command::Startup);
            daemon.drain(index).await;
        }
        log::info!(
            "vipflip {} running {} instance(s); control socket {}",
            daemon.router_id,
            daemon.instances.len(),
            daemon.control_path.display()
        );
        Ok(daemon)
    }

    async fn run_loop(&mut self, options: &RunOptions) -> anyhow::Result<()> {
        let mut sigterm =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut sigint =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        loop {
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
                    Some((request, reply)) = self.control_rx.recv() => Event::Control(request, reply),
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

    /// Carries out every action the instance has queued, in order.
    async fn drain(&mut self, index: usize) {
        while let Some(action) = self.instances[index].vrrp.poll_action() {
            self.act(index, action).await;
        }
    }

    async fn act(&mut self, index: usize, action: Action) {
        let name = self.instances[index].spec.name.clone();
        match action {
            Action::SendAdvert(advert) => {
                let running = &self.instances[index];
                let Some(socket) = running.socket.map(|i| &self.sockets[i]) else {
                    return;
                };
                for dst in &running.destinations {
                    if let Err(err) = socket.send(&advert, *dst, running.spec.checksum).await {
                        log::warn!("instance {name}: {err}");
                    }
                }
            }
            Action::BecomeMaster { cause, accept } => {
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
                log::info!(
                    "instance {name}: -> MASTER ({cause}); VIPS flipped in {} µs",
                    flip.as_micros()
                );
                // Awaited, not spawned: the first advert (next action) makes the old master
                // step down and forward to us, so the addresses must be in place by then.
                self.add_addresses(index).await;
            }
            Action::SendGratuitous { .. } => self.announce(index),
            Action::BecomeBackup { cause, traffic } => {
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
                log::info!("instance {name}: -> {:?} ({cause})", running.vrrp.state());
                self.set_vips(index, Ownership::Drop { vrid });
                self.spawn_remove_addresses(index);
            }
        }
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

    fn status(&self) -> StatusReport {
        let now = Instant::now();
        let instances = self
            .instances
            .iter()
            .map(|r| {
                let family = if r.spec.family() == Family::Ipv4 {
                    vipflip_common::FAMILY_IPV4
                } else {
                    vipflip_common::FAMILY_IPV6
                };
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
                }
            })
            .collect();
        StatusReport {
            router_id: self.router_id.clone(),
            pid: std::process::id(),
            instances,
        }
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
        self.control_task.abort();
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

/// `f_type` is `i64` on `x86_64` but narrower elsewhere.
#[cfg_attr(
    target_arch = "x86_64",
    expect(clippy::useless_conversion, reason = "i64 on this target only")
)]
fn fs_type(stat: &libc::statfs) -> i64 {
    i64::from(stat.f_type)
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

/// Makes sure `pin_dir` is on a bpffs, mounting one there as bpftool does when it is not
/// (inside `ip netns exec`, /sys is fresh and /sys/fs/bpf is not mounted).
fn ensure_bpffs(pin_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(pin_dir)
        .with_context(|| format!("creating the pin directory {}", pin_dir.display()))?;
    let path = CString::new(pin_dir.as_os_str().as_encoded_bytes())
        .with_context(|| format!("pin directory {} contains a NUL byte", pin_dir.display()))?;
    // SAFETY: `path` is NUL-terminated and `stat` is a valid out-pointer for the call.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &raw mut stat) } != 0 {
        bail!(
            "statfs {}: {}",
            pin_dir.display(),
            std::io::Error::last_os_error()
        );
    }
    if fs_type(&stat) == BPF_FS_MAGIC {
        return Ok(());
    }
    let fstype = c"bpf";
    // SAFETY: every pointer is a valid NUL-terminated string; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            path.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        bail!(
            "{} is not on a bpf filesystem and mounting one there failed ({}); \
             mount it yourself: mount -t bpf bpf {}",
            pin_dir.display(),
            std::io::Error::last_os_error(),
            pin_dir.display()
        );
    }
    log::info!("mounted bpffs on {}", pin_dir.display());
    Ok(())
}
