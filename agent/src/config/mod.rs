//! The daemon's configuration file (TOML): parsed, validated, and turned into typed specs.
//!
//! [`Config::load`] reads a file and returns either the configuration with its warnings or
//! *every* problem found, each as a [`Diagnostic`] with the file, line and column of the
//! offending key or value and what would be valid:
//!
//! ```text
//! vipflip.toml:12:19: error: instance "VI_1": advert_interval = "15ms": VRRPv3 carries centiseconds, use a multiple of 10ms in 10ms..=40.95s
//! vipflip.toml:9:13: warning: instance "VI_1": interface = "eth9": no such interface on this host; the daemon holds the instance in fault until it appears
//! ```
//!
//! The file is parsed into `toml`'s spanned tree (`DeTable`) and read by hand rather than
//! deserialized with serde: serde stops at the first error, and the check must report them
//! all, each at its own value. A file with TOML syntax errors reports those only (the tree
//! is incomplete, so schema errors would be guesses).
//!
//! `examples/vipflip.toml` documents every key.
//!
//! # IPv6 and the link-local first address
//!
//! RFC 5798 §5.2.9 wants the first IPv6 address of an advert to be the virtual router's
//! link-local address. keepalived 2.2.7 sends the addresses as configured (it only warns when
//! the first is not link-local) and discards adverts whose address count differs from its
//! own ("received an unexpected ip number count"), which breaks a mixed group. So adverts
//! carry `virtual_ips` exactly as written ([`InstanceSpec::advertised_addrs`]), as keepalived
//! sends them. A link-local VIP, if listed, must come first. The advert's *source* is the interface's own link-local address
//! (the `primary_addr` passed to [`InstanceSpec::vrrp_config`]).

mod diagnostic;
mod reader;
mod routes;
mod routing;
mod schema;
#[cfg(test)]
mod tests;

use core::time::Duration;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ipnet::IpNet;
use vipflip_common::{IPPROTO_TCP, IPPROTO_UDP, Scheduler, ServiceKey, VipKey};

pub use diagnostic::{Diagnostic, Location, Severity};
pub use routes::{
    DEFAULT_ROUTE_PROTOCOL, MAIN_TABLE, RouteKind, RouteScope, RouteSpec, RuleAction, RuleSpec,
    StaticAddressSpec, Statics,
};
pub use routing::{AnnounceGate, AnnounceSpec, BfdSpec, BgpNeighbor, BgpSpec, RoutingSpec};

use crate::lb::{Forward, RealConfig, ServiceConfig, TunnelSource};
use crate::track::security::{PathFacts, RealFs, ScriptFs};
use crate::track::{RunAs, ScriptUser, TrackConfig, Tracked, TrackerConfig};
use crate::vrrp::InstanceConfig;
use crate::wire::{Auth, Family, Priority, V3Ipv4Checksum, VirtualAddrs, VrId, VrrpVersion};

/// The whole configuration, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub global: Global,
    pub instances: Vec<InstanceSpec>,
    pub scripts: Vec<ScriptSpec>,
    pub sync_groups: Vec<SyncGroupSpec>,
    /// `[[virtual_server]]`: the Direct Routing load balancer's services.
    pub virtual_servers: Vec<VirtualServerSpec>,
    /// `[routing]` (defaults when absent).
    pub routing: RoutingSpec,
    /// `[[announce]]`: the VIPs announced through the routing daemon, each with its gate.
    pub announces: Vec<AnnounceSpec>,
    /// `[[static_address]]`, `[[static_route]]`, `[[static_rule]]`: present while the agent
    /// runs, whatever the instances' states.
    pub statics: Statics,
}

/// `[global]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Names this router in logs, notifications and metrics. Default: the host name.
    pub router_id: String,
    /// Where the XDP program and its maps are pinned (`<pin_dir>/<ifname>/`).
    /// Default `/sys/fs/bpf/vipflip`.
    pub pin_dir: PathBuf,
    /// The control socket of `vipflip` commands. Default `/run/vipflip.sock`.
    pub control_socket: PathBuf,
    /// Where to serve Prometheus metrics; `None` = not served.
    pub metrics_listen: Option<SocketAddr>,
    /// How to attach the XDP program. Default [`XdpMode::Auto`].
    pub xdp_mode: XdpMode,
    /// A FIFO that receives one line per state change (keepalived `notify_fifo`).
    pub notify_fifo: Option<PathBuf>,
    /// Who scripts run as unless a script names its own `user` (keepalived `script_user`);
    /// `None`: the daemon's own user.
    pub script_user: Option<ScriptUser>,
    /// Refuse scripts that would run with root's rights from a path others than root can
    /// write (keepalived `enable_script_security`). Default false: such scripts are warned
    /// about.
    pub script_security: bool,
    /// New flows each CPU remembers in `FLOWS` per second; past it, new flows are sent where
    /// the table says without being remembered, so a SYN flood cannot evict established
    /// flows (katran's LRU insert limit). 0: no limit. Default 125,000.
    pub flow_insert_rate: u32,
}

impl Global {
    /// How notify scripts run, and scripts that name no `user` of their own.
    pub fn run_as(&self) -> RunAs {
        RunAs {
            user: self.script_user.clone(),
            script_security: self.script_security,
        }
    }
}

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum XdpMode {
    /// Native (driver) mode where the driver supports it, generic (skb) mode otherwise.
    #[default]
    Auto,
    /// Native mode only: attaching fails on a driver without XDP support.
    Driver,
    /// Generic mode: works on every interface, slower.
    Skb,
}

/// One `[[instance]]`: one virtual router, on one interface, for one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent RFC and keepalived switches, named as operators know them"
)]
pub struct InstanceSpec {
    /// Unique among instances; used by sync groups, logs and the control socket.
    pub name: String,
    /// The interface the virtual router lives on. May not exist yet: the daemon holds the
    /// instance in fault until it does.
    pub interface: String,
    pub vrid: VrId,
    /// Default [`VrrpVersion::V3`].
    pub version: VrrpVersion,
    /// 1..=255, 255 = address owner. Default 100.
    pub priority: Priority,
    /// v3: a multiple of 10 ms in 10 ms..=40.95 s; v2: whole seconds in 1..=255 s. Default 1 s.
    pub advert_interval: Duration,
    /// Default true.
    pub preempt: bool,
    /// Default 0.
    pub preempt_delay: Duration,
    /// Whether a non-owner master accepts traffic to the VIPs. Default true, as keepalived
    /// (RFC 5798 says false; set false for strict behaviour).
    pub accept: bool,
    /// The VIPs with their prefix, all of one family, as written (no link-local added; see
    /// [`InstanceSpec::advertised_addrs`]).
    pub virtual_ips: Vec<IpNet>,
    /// Unicast destinations of adverts; empty = multicast (`224.0.0.18` / `ff02::12`).
    pub unicast_peers: Vec<IpAddr>,
    /// The source of unicast adverts, if not the interface's primary address.
    pub unicast_src: Option<IpAddr>,
    /// If not empty, the only advert sources the XDP program lets through.
    pub allowed_peers: Vec<IpAddr>,
    /// The checksum form sent by a v3 IPv4 instance (both are accepted). Default
    /// [`V3Ipv4Checksum::Rfc5798`]; meaningless (and refused if set) for v2 and IPv6.
    pub checksum: V3Ipv4Checksum,
    pub garp: Garp,
    pub track_interfaces: Vec<TrackInterface>,
    pub track_scripts: Vec<TrackScript>,
    pub track_files: Vec<TrackFile>,
    /// The quorum of every `[[virtual_server]]` of this instance that has a
    /// `quorum_weight`, in file order (derived from those tables, not written here).
    pub track_quorums: Vec<TrackQuorum>,
    pub notify: Notify,
    /// keepalived `lower_prio_no_advert`. Default false.
    pub lower_prio_no_advert: bool,
    /// keepalived `higher_prio_send_advert`: a master stepping down for a better advert
    /// sends one advert of its own first. Default false.
    pub higher_prio_send_advert: bool,
    /// How long a graceful handoff waits for the new master; `None` = `Master_Down_Interval`.
    pub handoff_bound: Option<Duration>,
    /// How long an ex-master forwards VIP traffic on-wire to the new master before it drops
    /// it (stale ARP/ND caches). Default 5 s; 0 = drop at once.
    pub forward_window: Duration,
    /// `VRRPv2` simple-text authentication (RFC 3768 §5.3.6), at most 8 bytes. v2 only.
    pub auth_pass: Option<String>,
    /// Routes present while the instance is master (keepalived `virtual_routes`): added
    /// after its addresses, removed before them.
    pub virtual_routes: Vec<RouteSpec>,
    /// Policy rules present while the instance is master (keepalived `virtual_rules`).
    pub virtual_rules: Vec<RuleSpec>,
}

/// One `[[virtual_server]]`: a service (VIP, port, protocol) spread over real servers by
/// Direct Routing, while its instance is master or, on an interface of its own, whenever the
/// agent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServerSpec {
    /// Unique among virtual servers; used in logs, status and metrics.
    pub name: String,
    /// One of the instance's `virtual_ips` (without prefix).
    pub vip: IpAddr,
    /// 0 = every port.
    pub port: u16,
    pub protocol: LbProtocol,
    /// Default [`LbScheduler::Maglev`].
    pub scheduler: LbScheduler,
    /// Where the service is live.
    pub home: ServiceHome,
    /// Fewer healthy real servers than this lowers the instance's priority by
    /// `quorum_weight` (0 = fault, as a tracker's weight). Default 1.
    pub quorum: u32,
    /// What losing quorum does to the instance, as a tracker's weight (-254..=254, 0 =
    /// fault). `None` (unset): quorum is only reported, in status and metrics.
    pub quorum_weight: Option<Weight>,
    /// Takes every flow while no real server is healthy.
    pub sorry_server: Option<IpAddr>,
    pub real_servers: Vec<RealServerSpec>,
    /// `forward`: how frames reach the real servers. Default Direct Routing.
    pub forward: Forwarding,
}

/// `forward = "dr" | "ipip" | "gue"`, with `gue_port` and `tunnel_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Forwarding {
    /// Direct Routing: real servers on the interface's link, only the MACs rewritten.
    #[default]
    Dr,
    /// IP-in-IP to each real server's address, wherever the routes lead.
    Ipip { source: Option<IpNet> },
    /// GUE (UDP to `port`, where the real servers' `fou` listens).
    Gue { port: u16, source: Option<IpNet> },
}

impl Forwarding {
    pub const fn is_tunnel(&self) -> bool {
        !matches!(self, Self::Dr)
    }

    /// The configuration's word for it.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Dr => "dr",
            Self::Ipip { .. } => "ipip",
            Self::Gue { .. } => "gue",
        }
    }
}

/// Where a virtual server is live, and over which interface its real servers are reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceHome {
    /// `instance = "…"`: on that `[[instance]]`'s master, over its interface (VRRP
    /// active-standby).
    Instance(String),
    /// `interface = "…"`: on this interface whenever the agent runs (active-active
    /// directors behind ECMP); the agent holds the VIP as `Local` there.
    Interface(String),
}

/// `tcp` or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LbProtocol {
    Tcp,
    Udp,
}

/// How new flows are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LbScheduler {
    /// Consistent hashing of the 5-tuple: both directors choose alike.
    #[default]
    Maglev,
    /// Weighted round robin.
    Wrr,
    /// Source hashing: one client, one server.
    Sh,
}

/// `[[virtual_server.real_server]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerSpec {
    /// Direct Routing: of the VIP's family, on the service's link. A tunnel: any address
    /// the routes reach.
    pub address: IpAddr,
    /// 0..=65535; 0 drains (no new flows, existing ones kept). Default 1.
    pub weight: u16,
    /// `None`: always healthy.
    pub check: Option<HealthCheck>,
}

/// `check = { kind, interval, timeout, rise, fall, ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub kind: CheckKind,
    /// Default 1 s; > 0.
    pub interval: Duration,
    /// Default 500 ms (keepalived `connect_timeout`); > 0 and <= interval.
    pub timeout: Duration,
    /// Successes in a row to become healthy, 1..=255. Default 1.
    pub rise: u32,
    /// Failures in a row to become unhealthy, 1..=255. Default 1.
    pub fall: u32,
    /// A server that went down is reported up again only once it has passed its checks for
    /// this long since its last failure, so a flapping check cannot keep active-active
    /// directors disagreeing on the table. Default 0 (rise/fall alone).
    pub hold_down: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A TCP connect to the real server; `port` defaults to the service's (required for a
    /// port-0 service).
    Tcp { port: u16 },
    /// `GET path` over HTTP/1.1 to the real server; healthy when the status is
    /// `expect_status` (default 200) and, if set, the body matches `body` (a regex).
    Http {
        port: u16,
        path: String,
        expect_status: u16,
        body: Option<HttpBodyMatch>,
    },
    /// Runs `command` (argv, no shell) as `run_as` says; exit 0 = healthy (keepalived
    /// `MISC_CHECK`, whose `user USER [GROUP]` is `user`/`group`).
    Script { command: Vec<String>, run_as: RunAs },
}

/// A compiled body regex that compares by its source text.
#[derive(Debug, Clone)]
pub struct HttpBodyMatch(pub regex::Regex);

impl PartialEq for HttpBodyMatch {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for HttpBodyMatch {}

/// Gratuitous ARP / unsolicited NA on becoming master (keepalived `garp_master_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Garp {
    /// How many per VIP in each burst, 1..=255. Default 5.
    pub repeat: u8,
    /// Between the messages of one burst. Default 0.
    pub interval: Duration,
    /// When the second burst goes out, after the first; 0 = no second burst. Default 5 s.
    pub delay: Duration,
    /// Period of refresh bursts while master; 0 = none. Default 0 (keepalived
    /// `garp_master_refresh`).
    pub refresh: Duration,
    /// Messages per VIP in each refresh, 1..=255. Default 1 (keepalived
    /// `garp_master_refresh_repeat`).
    pub refresh_repeat: u8,
}

impl Default for Garp {
    fn default() -> Self {
        Self {
            repeat: 5,
            interval: Duration::ZERO,
            delay: Duration::from_secs(5),
            refresh: Duration::ZERO,
            refresh_repeat: 1,
        }
    }
}

/// How much a failing tracked object changes the priority: -254..=254, or 0 = the instance
/// goes to fault while it fails (keepalived's meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Weight(pub i16);

impl Weight {
    /// Whether a failure puts the instance in fault instead of changing its priority.
    pub const fn is_fault(self) -> bool {
        self.0 == 0
    }
}

/// `track_interfaces = [{ name, weight }]`: the interface being down is a failure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackInterface {
    pub name: String,
    pub weight: Weight,
}

/// `track_scripts = [{ name, weight }]`: names a `[[script]]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackScript {
    pub name: String,
    pub weight: Weight,
}

/// `track_files = [{ path, weight }]`: the file holds an integer; keepalived semantics
/// (priority += value × weight; with weight 0 a non-zero value is a fault).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackFile {
    pub path: PathBuf,
    pub weight: Weight,
}

/// A virtual server's quorum as one of its instance's trackers: fewer healthy real servers
/// than `quorum` is a failure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackQuorum {
    /// The `[[virtual_server]]`'s name.
    pub service: String,
    pub weight: Weight,
}

/// Programs run on state changes, each an absolute path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Notify {
    pub master: Option<PathBuf>,
    pub backup: Option<PathBuf>,
    pub fault: Option<PathBuf>,
    pub stop: Option<PathBuf>,
    /// Instances only: run when, as master, this router hears an advert of lower priority
    /// (keepalived `notify_master_rx_lower_pri`), with `MASTER_RX_LOWER_PRI` as the state.
    pub master_rx_lower_pri: Option<PathBuf>,
}

/// One `[[script]]`: a health check run every `interval`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScriptSpec {
    pub name: String,
    /// Program (absolute path) and arguments, run without a shell.
    pub command: Vec<String>,
    /// Default 1 s; more than 0.
    pub interval: Duration,
    /// Default = `interval`; more than 0, may exceed `interval` (as keepalived).
    pub timeout: Duration,
    /// Successes in a row that make a failing script good. Default 1.
    pub rise: u32,
    /// Failures in a row that make a good script failing. Default 1.
    pub fall: u32,
    /// Its `user`/`group`, else `[global] script_user`, and `script_security`.
    pub run_as: RunAs,
}

/// One `[[sync_group]]`: instances that change state together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyncGroupSpec {
    pub name: String,
    /// Names of `[[instance]]`s; each instance is in at most one group.
    pub instances: Vec<String>,
    pub notify: Notify,
}

/// Where the host-dependent facts come from: the real host in [`Config::parse`], a fake in
/// tests.
pub(crate) trait Host: ScriptFs {
    fn interface_exists(&self, name: &str) -> bool;
    fn hostname(&self) -> Option<String>;
    /// The uid and primary gid of user `name`.
    fn user(&self, name: &str) -> Option<(u32, u32)>;
    /// The gid of group `name`.
    fn group(&self, name: &str) -> Option<u32>;
}

/// This machine.
struct RealHost;

impl Host for RealHost {
    fn interface_exists(&self, name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }

    fn hostname(&self) -> Option<String> {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
        let name = name.trim();
        (!name.is_empty()).then(|| name.to_owned())
    }

    fn user(&self, name: &str) -> Option<(u32, u32)> {
        crate::track::security::lookup_user(name)
    }

    fn group(&self, name: &str) -> Option<u32> {
        crate::track::security::lookup_group(name)
    }
}

impl ScriptFs for RealHost {
    fn lstat(&self, path: &Path) -> std::io::Result<PathFacts> {
        RealFs.lstat(path)
    }

    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        RealFs.canonicalize(path)
    }

    fn daemon_ids(&self) -> (u32, u32) {
        RealFs.daemon_ids()
    }
}

impl Config {
    /// Reads and checks the file at `path`. `Ok` carries the warnings; `Err` every
    /// diagnostic, errors and warnings, in file order.
    pub fn load(path: &Path) -> Result<(Self, Vec<Diagnostic>), Vec<Diagnostic>> {
        let source = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &source),
            Err(e) => Err(vec![Diagnostic {
                severity: Severity::Error,
                source,
                location: None,
                message: format!("cannot read the configuration: {e}"),
            }]),
        }
    }

    /// Checks `text`; `source_name` is the file name diagnostics print. Interfaces are looked
    /// up on this host (a missing one is a warning).
    pub fn parse(
        text: &str,
        source_name: &str,
    ) -> Result<(Self, Vec<Diagnostic>), Vec<Diagnostic>> {
        Self::parse_on(text, source_name, &RealHost)
    }

    pub(crate) fn parse_on(
        text: &str,
        source_name: &str,
        host: &impl Host,
    ) -> Result<(Self, Vec<Diagnostic>), Vec<Diagnostic>> {
        let (mut config, warnings) = schema::parse(text, source_name, host)?;
        for vs in &config.virtual_servers {
            if let Some(weight) = vs.quorum_weight
                && let ServiceHome::Instance(name) = &vs.home
                && let Some(instance) = config.instances.iter_mut().find(|i| i.name == *name)
            {
                instance.track_quorums.push(TrackQuorum {
                    service: vs.name.clone(),
                    weight,
                });
            }
        }
        Ok((config, warnings))
    }

    /// `config OK: 2 instances, 1 script, 1 sync group`, then `, 1 virtual server` if any.
    pub fn summary(&self) -> String {
        fn count(n: usize, what: &str) -> String {
            if n == 1 {
                format!("1 {what}")
            } else {
                format!("{n} {what}s")
            }
        }
        let mut summary = format!(
            "config OK: {}, {}, {}",
            count(self.instances.len(), "instance"),
            count(self.scripts.len(), "script"),
            count(self.sync_groups.len(), "sync group")
        );
        // Only when there are some: VRRP-only configurations read as before.
        if !self.virtual_servers.is_empty() {
            let _ = write!(
                summary,
                ", {}",
                count(self.virtual_servers.len(), "virtual server")
            );
        }
        summary
    }

    /// The balancer's configuration: every virtual server whose instance exists
    /// ([`VirtualServerSpec::balancer_config`]), in file order.
    /// The interfaces of virtual servers that live on an interface of their own.
    pub fn service_interfaces(&self) -> Vec<&str> {
        let mut ifaces: Vec<&str> = self
            .virtual_servers
            .iter()
            .filter_map(|vs| match &vs.home {
                ServiceHome::Interface(iface) => Some(iface.as_str()),
                ServiceHome::Instance(_) => None,
            })
            .collect();
        ifaces.sort_unstable();
        ifaces.dedup();
        ifaces
    }

    pub fn balancer_config(&self) -> Vec<ServiceConfig> {
        self.virtual_servers
            .iter()
            .filter_map(|vs| vs.balancer_config(&self.instances))
            .collect()
    }
}

impl InstanceSpec {
    /// The address family of the VIPs (and so of everything else in the instance).
    pub fn family(&self) -> Family {
        match self.virtual_ips.first() {
            Some(IpNet::V6(_)) => Family::Ipv6,
            _ => Family::Ipv4,
        }
    }

    /// The addresses adverts carry: the VIPs as written (see the module docs on IPv6).
    pub fn advertised_addrs(&self) -> VirtualAddrs {
        match self.family() {
            Family::Ipv4 => VirtualAddrs::V4(
                self.virtual_ips
                    .iter()
                    .filter_map(|net| match net.addr() {
                        IpAddr::V4(a) => Some(a),
                        IpAddr::V6(_) => None,
                    })
                    .collect(),
            ),
            Family::Ipv6 => {
                let addrs: Vec<Ipv6Addr> = self
                    .virtual_ips
                    .iter()
                    .filter_map(|net| match net.addr() {
                        IpAddr::V6(a) => Some(a),
                        IpAddr::V4(_) => None,
                    })
                    .collect();
                VirtualAddrs::V6(addrs)
            }
        }
    }

    /// `VRRPv2` authentication as the wire carries it: the password padded with zeros.
    pub fn auth(&self) -> Auth {
        match &self.auth_pass {
            Some(pass) => {
                let mut data = [0u8; 8];
                for (d, s) in data.iter_mut().zip(pass.bytes()) {
                    *d = s;
                }
                Auth::SimpleText(data)
            }
            None => Auth::None,
        }
    }

    /// The state machine's configuration. `primary_addr` is the advert source: `unicast_src`
    /// if set, else the interface's primary IPv4 address or (IPv6) its link-local address.
    /// The result passes [`InstanceConfig::validate`] when `primary_addr` is of the
    /// instance's family.
    pub fn vrrp_config(&self, primary_addr: IpAddr) -> InstanceConfig {
        InstanceConfig {
            vrid: self.vrid,
            version: self.version,
            priority: self.priority,
            advert_interval: self.advert_interval,
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            accept: self.accept,
            virtual_addrs: self.advertised_addrs(),
            primary_addr,
            lower_prio_no_advert: self.lower_prio_no_advert,
            higher_prio_send_advert: self.higher_prio_send_advert,
            auth: self.auth(),
            handoff_bound: self.handoff_bound,
        }
    }

    /// The tracking state's configuration. The trackers are numbered (for
    /// [`FaultCause::Tracked`](crate::vrrp::FaultCause::Tracked)) interfaces first, then
    /// scripts, files and the quorums of its virtual servers, each in file order.
    pub fn track_config(&self) -> TrackConfig {
        let tracker = |what, weight: Weight| TrackerConfig {
            what,
            weight: i64::from(weight.0),
        };
        let trackers = self
            .track_interfaces
            .iter()
            .map(|t| tracker(Tracked::Interface(t.name.clone()), t.weight))
            .chain(
                self.track_scripts
                    .iter()
                    .map(|t| tracker(Tracked::Script(t.name.clone()), t.weight)),
            )
            .chain(
                self.track_files
                    .iter()
                    .map(|t| tracker(Tracked::File(t.path.clone()), t.weight)),
            )
            .chain(
                self.track_quorums
                    .iter()
                    .map(|t| tracker(Tracked::Quorum(t.service.clone()), t.weight)),
            )
            .collect();
        TrackConfig {
            instance: self.name.clone(),
            interface: self.interface.clone(),
            priority: self.priority,
            trackers,
        }
    }
}

impl VirtualServerSpec {
    /// The `[[instance]]` the service follows, if it has one.
    pub fn instance(&self) -> Option<&str> {
        match &self.home {
            ServiceHome::Instance(name) => Some(name),
            ServiceHome::Interface(_) => None,
        }
    }

    /// The interface its real servers are reached over: its own, or its instance's (looked
    /// up in `instances`; `None` when there is no such instance, which a validated file
    /// always has).
    pub fn interface<'a>(&'a self, instances: &'a [InstanceSpec]) -> Option<&'a str> {
        match &self.home {
            ServiceHome::Interface(iface) => Some(iface),
            ServiceHome::Instance(name) => instances
                .iter()
                .find(|i| i.name == *name)
                .map(|i| i.interface.as_str()),
        }
    }

    /// The balancer's configuration of this service (see [`Self::interface`]).
    pub fn balancer_config(&self, instances: &[InstanceSpec]) -> Option<ServiceConfig> {
        let interface = self.interface(instances)?;
        let protocol = match self.protocol {
            LbProtocol::Tcp => IPPROTO_TCP,
            LbProtocol::Udp => IPPROTO_UDP,
        };
        Some(ServiceConfig {
            name: self.name.clone(),
            interface: interface.to_owned(),
            key: ServiceKey::new(VipKey::from_ip(self.vip), protocol, self.port),
            scheduler: match self.scheduler {
                LbScheduler::Maglev => Scheduler::Maglev,
                LbScheduler::Wrr => Scheduler::Wrr,
                LbScheduler::Sh => Scheduler::SourceHash,
            },
            quorum: self.quorum,
            reals: self
                .real_servers
                .iter()
                .map(|rs| RealConfig {
                    address: rs.address,
                    weight: rs.weight,
                    checked: rs.check.is_some(),
                })
                .collect(),
            sorry_server: self.sorry_server,
            forward: match self.forward {
                Forwarding::Dr => Forward::Direct,
                Forwarding::Ipip { source } => Forward::Ipip {
                    source: source.map(tunnel_source),
                },
                Forwarding::Gue { port, source } => Forward::Gue {
                    port,
                    source: source.map(tunnel_source),
                },
            },
        })
    }
}

fn tunnel_source(net: IpNet) -> TunnelSource {
    TunnelSource {
        addr: net.addr(),
        prefix_len: net.prefix_len(),
    }
}

/// The outcome of `vipflip check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Every error and warning, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// `config OK: …` when the configuration is accepted.
    pub summary: Option<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.summary.is_some()
    }

    /// The diagnostics, one per line.
    pub fn render_diagnostics(&self) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            let _ = writeln!(out, "{d}");
        }
        out
    }
}

/// Checks the configuration at `path` without running anything.
pub fn check_config(path: &Path) -> CheckReport {
    match Config::load(path) {
        Ok((config, warnings)) => {
            let mut summary = config.summary();
            match warnings.len() {
                0 => {}
                1 => summary.push_str(" (1 warning)"),
                n => {
                    let _ = write!(summary, " ({n} warnings)");
                }
            }
            CheckReport {
                diagnostics: warnings,
                summary: Some(summary),
            }
        }
        Err(diagnostics) => CheckReport {
            diagnostics,
            summary: None,
        },
    }
}

/// `vipflip check-config --config PATH`: prints every diagnostic to stderr and, if the
/// configuration is accepted, `config OK: …` to stdout. Fails if any error was found.
pub fn check_config_command(path: &Path) -> ExitCode {
    let report = check_config(path);
    eprint!("{}", report.render_diagnostics());
    if let Some(summary) = &report.summary {
        println!("{summary}");
        return ExitCode::SUCCESS;
    }
    let errors = report.diagnostics.iter().filter(|d| d.is_error()).count();
    eprintln!(
        "{}: {errors} error{}, configuration refused",
        path.display(),
        if errors == 1 { "" } else { "s" }
    );
    ExitCode::FAILURE
}
