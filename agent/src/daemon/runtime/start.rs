//! Starting the daemon and its instances: the data plane of each interface (attached, or
//! re-opened from its pins for a hitless restart), the VRRP sockets, the state machines, and
//! whether an instance resumes as master.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
    time::Instant,
};

use tokio::sync::mpsc;

use crate::{
    config::{Config, InstanceSpec, XdpMode},
    daemon::{InstanceError, InstanceErrorCause, RunOptions, StartError},
    dataplane::{AttachOutcome, Dataplane, Ownership, XdpModeChoice},
    io::{
        IoError,
        netlink::{LinkInfo, Netlink},
        vrrp_socket::{Delivery, SocketConfig, VrrpSocket},
    },
    metrics::{self, Metrics},
    notify::Notifier,
    track::{self, TrackState},
    vrrp::{Command, FaultCause, Instance, SyncGroup},
    wire::{
        Family, MacAddr,
        ip::{VRRP_GROUP_V4, VRRP_GROUP_V6},
    },
};

use super::{
    Daemon, Group, InstanceId, Instances, Running, control_socket::spawn_control_server, lb,
    reload::family_tag,
};

/// The socket already open for `wanted` (instances on one interface and family share one),
/// or a new one.
fn shared_socket(sockets: &mut Vec<VrrpSocket>, wanted: SocketConfig) -> Result<usize, IoError> {
    if let Some(index) = sockets.iter().position(|s| s.config() == &wanted) {
        return Ok(index);
    }
    sockets.push(VrrpSocket::open(wanted)?);
    Ok(sockets.len() - 1)
}
impl Daemon {
    pub(super) async fn start(config: Config, options: &RunOptions) -> Result<Self, StartError> {
        let netlink = Arc::new(Netlink::new().map_err(StartError::Netlink)?);
        let pin_dir = config.global.pin_dir.clone();
        // Inside `ip netns exec` /sys is a fresh sysfs, and many hosts never mount a bpffs:
        // mount one first, as iproute2 and bpftool do.
        if let vipflip_bpffs::Prepared::Mounted { at } =
            vipflip_bpffs::ensure(&pin_dir).map_err(|source| StartError::PinDir {
                path: pin_dir.clone(),
                source,
            })?
        {
            log::info!("mounted a bpffs on {} for the pins", at.display());
        }
        let xdp_mode = match config.global.xdp_mode {
            XdpMode::Auto => XdpModeChoice::Auto,
            XdpMode::Driver => XdpModeChoice::Driver,
            XdpMode::Skb => XdpModeChoice::Skb,
        };
        let notifier = Notifier::new(&config).map_err(StartError::Notify)?;
        let (observations, trackers) =
            track::spawn_trackers(&config).map_err(StartError::Trackers)?;
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
                    .map_err(StartError::Metrics)?;
                log::info!("metrics on http://{addr}/metrics");
                Some(task)
            }
            None => None,
        };
        let announcements = super::announce::Announcements::start(&config, Arc::clone(&netlink))
            .await
            .map_err(|source| StartError::Routes {
                table: config.routing.table,
                source,
            })?;
        // Before the instances: whatever their state, the statics are there from the start.
        let (statics, link_ups) =
            super::routes::StaticRoutes::start(&config.statics, Arc::clone(&netlink)).await;
        let specs = config.instances.clone();
        let (prepared_tx, prepared_rx) = mpsc::channel(1);
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
            instances: Instances::default(),
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
            announcements,
            statics,
            link_ups,
            reloading: None,
            reopened_by_reload: Vec::new(),
            prepared_tx,
            prepared_rx,
        };
        let mut reopened = Vec::new();
        for spec in specs {
            daemon.add_instance(spec, &mut reopened).await?;
        }
        daemon.attach_service_interfaces(&mut reopened).await?;
        daemon.regroup();
        // Tables first: a VIP that becomes Local finds its services ready.
        daemon.configure_lb().await;
        for id in daemon.instances.ids() {
            daemon.start_instance(id).await?;
        }
        daemon.announcements_started();
        log::info!(
            "vipflip {} running {} instance(s); control socket {}",
            daemon.router_id,
            daemon.instances.len(),
            daemon.control_path.display()
        );
        Ok(daemon)
    }

    /// Virtual servers on an interface of their own need its data plane too.
    async fn attach_service_interfaces(
        &mut self,
        reopened: &mut Vec<String>,
    ) -> Result<(), StartError> {
        let ifaces: Vec<String> = self
            .config
            .service_interfaces()
            .into_iter()
            .map(str::to_owned)
            .collect();
        for iface in ifaces {
            self.plane_for(&iface, reopened).await.map_err(|cause| {
                StartError::ServiceInterface {
                    iface: iface.clone(),
                    cause: Box::new(cause),
                }
            })?;
        }
        Ok(())
    }

    /// The data plane of `iface`, attached (or re-opened from its pins, then `iface` is added
    /// to `reopened`) on first use.
    pub(super) async fn plane_for(
        &mut self,
        iface: &str,
        reopened: &mut Vec<String>,
    ) -> Result<Option<LinkInfo>, InstanceErrorCause> {
        let link = match self.netlink.link(iface).await {
            Ok(link) => link,
            Err(err) => {
                log::error!(
                    "{iface}: {err}; its instances stay in fault and its virtual servers unserved"
                );
                return Ok(None);
            }
        };
        if !self.planes.contains_key(iface) {
            let (plane, outcome) =
                Dataplane::attach(iface, &self.pin_dir, self.xdp_mode).map_err(|source| {
                    InstanceErrorCause::Attach {
                        iface: iface.to_owned(),
                        source,
                    }
                })?;
            self.adopt_plane(iface.to_owned(), plane, outcome, reopened);
        }
        Ok(Some(link))
    }

    /// Takes `iface`'s data plane as attached or re-opened (the start, or a reload's blocking
    /// task), saying which; a re-opened one's interface goes into `reopened`.
    pub(super) fn adopt_plane(
        &mut self,
        iface: String,
        plane: Dataplane,
        outcome: AttachOutcome,
        reopened: &mut Vec<String>,
    ) {
        match outcome {
            AttachOutcome::Attached(mode) => log::info!("{iface}: XDP attached in {mode} mode"),
            AttachOutcome::Reopened => {
                log::info!("{iface}: re-opened the pinned XDP data plane (traffic kept flowing)");
                reopened.push(iface.clone());
            }
        }
        self.planes.insert(iface, plane);
    }

    /// Sets up one `[[instance]]`: its interface's data plane, its VRRP socket (shared by the
    /// instances of one interface and family), the state machine and the VRID filter. It is
    /// not started: see [`Self::start_instance`]. It resumes what a previous run left (see
    /// `Running::resumed`) when its interface is in `reopened`: data planes re-opened from
    /// their pins by this round of additions (the daemon's start, or one reload).
    pub(super) async fn add_instance(
        &mut self,
        spec: InstanceSpec,
        reopened: &mut Vec<String>,
    ) -> Result<InstanceId, InstanceError> {
        let link = self
            .plane_for(&spec.interface, reopened)
            .await
            .map_err(|cause| cause.of(&spec.name))?;
        let family = spec.family();
        let socket = self
            .socket_for(&spec, link.as_ref())
            .map_err(|e| InstanceErrorCause::Socket(e).of(&spec.name))?;
        let primary = socket.map_or(
            if family == Family::Ipv4 {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            },
            |i| self.sockets[i].config().src,
        );
        let vrrp = Instance::new(spec.vrrp_config(primary))
            .map_err(|e| InstanceErrorCause::Vrrp(e).of(&spec.name))?;
        if let Some(plane) = self.planes.get_mut(&spec.interface) {
            let allowed = (!spec.allowed_peers.is_empty()).then_some(spec.allowed_peers.as_slice());
            plane
                .set_vrid_filter(family_tag(&spec), spec.vrid.0, allowed)
                .map_err(|e| InstanceErrorCause::Dataplane(e).of(&spec.name))?;
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
        let mut track = TrackState::new(spec.track_config());
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
        let (spec_name, spec_iface) = (spec.name.clone(), spec.interface.clone());
        let id = self.instances.insert(Running {
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
            effects: super::effects::Effects::spawn(
                spec_name,
                spec_iface,
                Arc::clone(&self.netlink),
                self.link_ups.clone(),
            ),
            track,
            startup_pending: false,
            group: None,
            retiring: false,
        });
        self.apply_track_commands(id, replayed);
        Ok(id)
    }

    /// The VRRP socket for `spec` on `link` (shared by the instances of one interface and
    /// family), or `None` while the interface or its source address is missing (fault).
    fn socket_for(
        &mut self,
        spec: &InstanceSpec,
        link: Option<&LinkInfo>,
    ) -> Result<Option<usize>, IoError> {
        let family = spec.family();
        let delivery = if spec.unicast_peers.is_empty() {
            Delivery::Multicast
        } else {
            Delivery::Unicast
        };
        let wanted = link
            .and_then(|l| SocketConfig::for_link(l, family, delivery))
            .map(|mut c| {
                if let Some(src) = spec.unicast_src {
                    c.src = src;
                }
                c
            });
        if let Some(wanted) = wanted {
            return shared_socket(&mut self.sockets, wanted).map(Some);
        }
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
        Ok(None)
    }

    /// Puts the instance's VIPs in the data plane (dropped until the election says otherwise,
    /// unless resuming a previous run's) and starts its state machine: `Startup`, held back
    /// while a weight-0 script has no result yet.
    pub(super) async fn start_instance(&mut self, id: InstanceId) -> Result<(), InstanceError> {
        let resume_as_master = self.instances[id].resumed && self.was_master(id);
        let running = &mut self.instances[id];
        if !running.resumed
            && let Some(plane) = self.planes.get_mut(&running.spec.interface)
        {
            for vip in &running.spec.virtual_ips {
                let drop = Ownership::Drop {
                    vrid: running.spec.vrid.0,
                };
                plane
                    .set_vip(vip.addr(), drop)
                    .map_err(|e| InstanceErrorCause::Dataplane(e).of(&running.spec.name))?;
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
        self.dispatch(id).await;
        Ok(())
    }

    /// Whether the re-opened data plane says the previous run was this instance's master:
    /// every VIP `Local` for its VRID. (A master in non-accept mode leaves `Drop` there, as a
    /// backup does, so it resumes as a backup.)
    pub(super) fn was_master(&self, id: InstanceId) -> bool {
        let running = &self.instances[id];
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
    pub(super) fn regroup(&mut self) {
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
}
