//! Directors announcing VIPs over BGP to an edge router, in namespaces (issue #13): the
//! routing daemons ([`Frr`], [`Bird`]), the edge router's configuration, the director
//! configurations the tests use (what `vipflip routing-config` must print the equivalent of),
//! readers of the kernel FIB ([`nexthops`], [`wait_nexthops`]) and the topology
//! ([`BgpScene`]).
//!
//! The mechanism (verified in `/work/shared/reference/routing.md`): a director puts each VIP
//! it announces as a host route (`proto 250`, `dev lo`) in kernel table [`VIP_TABLE`]; its
//! routing daemon exports that table over eBGP; the edge router, with `maximum-paths 8`, turns
//! the directors announcing a VIP into an ECMP route in its kernel FIB, and BFD takes a
//! director whose link dies out of it.
//!
//! IPv4 only for now: `routing.md` verified the IPv4 unicast family, and FRR 8.4 imports a
//! kernel table for IPv4 only (`ip import-table`); an IPv6 VIP through BIRD is still to be
//! tested here.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{KillOnDrop, Naming, Netns, frr::Daemons, scene::test_dir, unique, veth, wait_for};

/// The kernel table a director's VIP routes live in.
pub const VIP_TABLE: u32 = 200;
/// The protocol number of those routes (`ip route … proto 250`): FRR exports a table route
/// with it, and BIRD learns it (both ignore `proto kernel`).
pub const VIP_PROTO: u8 = 250;
/// The name of the BFD profile in the FRR configurations.
pub const BFD_PROFILE: &str = "vipflip";
/// The edge router's AS; director `d` (0-based) is in AS `65011 + d`.
pub const EDGE_ASN: u32 = 65000;

/// BFD timers: both transmit and receive interval, and how many missed packets declare the
/// peer down (detection time = interval × multiplier).
#[derive(Debug, Clone, Copy)]
pub struct Bfd {
    pub interval: Duration,
    pub multiplier: u8,
}

impl Bfd {
    /// 50 ms × 3: a dead link seen in 150 ms (`routing.md` measured 180–221 ms to the FIB).
    pub const FAST: Self = Self {
        interval: Duration::from_millis(50),
        multiplier: 3,
    };

    fn interval_ms(self) -> u128 {
        self.interval.as_millis()
    }
}

/// A BGP neighbour: its address and its AS.
#[derive(Debug, Clone, Copy)]
pub struct Neighbor {
    pub address: Ipv4Addr,
    pub asn: u32,
}

/// The edge router (the test side): its AS and router id, its neighbours (the directors),
/// and BFD with every neighbour when `bfd` is given.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub neighbors: Vec<Neighbor>,
    pub bfd: Option<Bfd>,
}

/// One director: its AS and router id (its address on the edge's segment), the edge as its
/// one neighbour, the kernel table it announces, and BFD with the edge when `bfd` is given.
#[derive(Debug, Clone, Copy)]
pub struct DirectorConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub edge: Neighbor,
    pub table: u32,
    pub bfd: Option<Bfd>,
}

/// The edge router's FRR configuration: eBGP to every director (connect retry 5 s instead of
/// the traditional profile's 120 s, no policy required), up to 8 equal paths even across
/// directors' different ASes, a 50 ms coalesce time (instead of 1 s) so a returning director
/// is back in the FIB in ~120 ms, BFD with each director when asked, and sessions going up
/// and down in bgpd's log (for failure messages).
///
/// Nothing is announced: the directors reach the client through their default route.
pub fn edge_frr_config(edge: &EdgeConfig) -> String {
    let mut out = frr_bfd_profile(edge.bfd);
    let _ = write!(
        out,
        "router bgp {asn}\n bgp router-id {id}\n bgp log-neighbor-changes\n \
         no bgp ebgp-requires-policy\n bgp bestpath as-path multipath-relax\n \
         coalesce-time 50\n",
        asn = edge.asn,
        id = edge.router_id,
    );
    for n in &edge.neighbors {
        frr_neighbor(&mut out, *n, edge.bfd);
    }
    out + " address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\nexit\n"
}

/// Test fixture: a director's FRR configuration, as `routing.md` verified it. What
/// `vipflip routing-config --frr` must print the equivalent of.
///
/// zebra copies the routes of `table` into its RIB (`ip import-table`, distance 15) and bgpd
/// announces them (`redistribute table`, origin incomplete) to the edge.
pub fn director_frr_config(director: &DirectorConfig) -> String {
    let mut out = format!("ip import-table {}\n", director.table);
    out += &frr_bfd_profile(director.bfd);
    let _ = write!(
        out,
        "router bgp {asn}\n bgp router-id {id}\n no bgp ebgp-requires-policy\n \
         coalesce-time 50\n",
        asn = director.asn,
        id = director.router_id,
    );
    frr_neighbor(&mut out, director.edge, director.bfd);
    let _ = write!(
        out,
        " address-family ipv4 unicast\n  redistribute table {}\n exit-address-family\nexit\n",
        director.table
    );
    out
}

/// Test fixture: a director's BIRD 2 configuration, as `routing.md` verified it. What
/// `vipflip routing-config --bird` must print the equivalent of.
///
/// A kernel protocol learns the routes of `table` (`learn`: they are not BIRD's own); the
/// BGP session exports only those, as origin incomplete like FRR's `redistribute` (with
/// BIRD's default, IGP, the edge would prefer it to an FRR director's and keep one path),
/// imports nothing, and retries 2 s after an error (not 60 s).
pub fn director_bird_config(director: &DirectorConfig) -> String {
    let table = director.table;
    let kernel = format!("kt{table}");
    let mut out = String::new();
    let _ = write!(
        out,
        "router id {id};\n\nprotocol device {{\n}}\n\n\
         protocol kernel {kernel} {{\n  kernel table {table};\n  learn;\n  \
         ipv4 {{\n    import all;\n    export none;\n  }};\n}}\n\n",
        id = director.router_id,
    );
    if let Some(bfd) = director.bfd {
        let _ = write!(
            out,
            "protocol bfd {{\n  interface \"*\" {{\n    interval {} ms;\n    multiplier {};\n  \
             }};\n}}\n\n",
            bfd.interval_ms(),
            bfd.multiplier
        );
    }
    let _ = write!(
        out,
        "filter vipflip_export {{\n  if proto = \"{kernel}\" then {{\n    \
         bgp_origin = ORIGIN_INCOMPLETE;\n    accept;\n  }}\n  reject;\n}}\n\n\
         protocol bgp edge {{\n  local as {asn};\n  neighbor {edge} as {edge_asn};\n{bfd}  \
         connect retry time 5;\n  error wait time 2, 30;\n  ipv4 {{\n    import none;\n    \
         export filter vipflip_export;\n  }};\n}}\n",
        asn = director.asn,
        edge = director.edge.address,
        edge_asn = director.edge.asn,
        bfd = if director.bfd.is_some() {
            "  bfd on;\n"
        } else {
            ""
        },
    );
    out
}

/// FRR's `bfd` block with the profile [`BFD_PROFILE`], or nothing without BFD.
fn frr_bfd_profile(bfd: Option<Bfd>) -> String {
    bfd.map_or_else(String::new, |bfd| {
        format!(
            "bfd\n profile {BFD_PROFILE}\n  transmit-interval {ms}\n  receive-interval {ms}\n  \
             detect-multiplier {mult}\n exit\nexit\n",
            ms = bfd.interval_ms(),
            mult = bfd.multiplier
        )
    })
}

/// One neighbour's lines under `router bgp`, appended to `out`.
fn frr_neighbor(out: &mut String, n: Neighbor, bfd: Option<Bfd>) {
    let a = n.address;
    let _ = write!(
        out,
        " neighbor {a} remote-as {asn}\n neighbor {a} timers connect 5\n",
        asn = n.asn
    );
    if bfd.is_some() {
        let _ = writeln!(out, " neighbor {a} bfd profile {BFD_PROFILE}");
    }
}

// ---------------------------------------------------------------------------------------
// The routing daemons

/// FRR's zebra, bfdd and bgpd in one namespace, configured through vtysh. Dropping it stops
/// them and removes their run directory and its own.
pub struct Frr {
    // Dropped first: the daemons stop before their directory goes.
    daemons: Daemons,
    _dir: Dir,
}

impl Frr {
    const DAEMONS: [&str; 3] = ["zebra", "bfdd", "bgpd"];

    /// Whether FRR's daemons and vtysh are installed (`cargo xtask setup` installs them).
    pub fn installed() -> bool {
        Daemons::installed(&Self::DAEMONS)
    }

    /// Starts zebra, bfdd and bgpd in `ns` and applies `config` (panics when vtysh refuses a
    /// line).
    pub fn start(ns: &Netns, config: &str) -> Self {
        let dir = Dir(test_dir("vipflip-frr-"));
        let daemons = Daemons::start(ns, &Self::DAEMONS, None, &dir.0);
        let conf = dir.0.join("frr.conf");
        std::fs::write(&conf, config).expect("write frr.conf");
        daemons.apply(&conf);
        Self { daemons, _dir: dir }
    }

    /// vtysh's answer to `command` (`show bgp summary json`, `show bfd peers json`).
    pub fn vtysh(&self, command: &str) -> String {
        self.daemons.show(command)
    }

    /// How many BGP neighbours are established now.
    pub fn established(&self) -> usize {
        let summary = json(&self.vtysh("show bgp summary json"));
        summary["ipv4Unicast"]["peers"]
            .as_object()
            .map_or(0, |peers| {
                peers
                    .values()
                    .filter(|p| p["state"] == "Established")
                    .count()
            })
    }

    /// Waits until `n_peers` BGP neighbours are established; false after `timeout`.
    pub fn wait_established(&self, n_peers: usize, timeout: Duration) -> bool {
        wait_for(timeout, || self.established() >= n_peers)
    }

    /// How many BFD sessions are up now.
    pub fn bfd_up(&self) -> usize {
        json(&self.vtysh("show bfd peers json"))
            .as_array()
            .map_or(0, |peers| {
                peers.iter().filter(|p| p["status"] == "up").count()
            })
    }

    /// The logs and the state of BGP and BFD, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "{}\nshow bgp summary:\n{}\nshow bfd peers brief:\n{}",
            self.daemons.logs(),
            self.vtysh("show bgp summary"),
            self.vtysh("show bfd peers brief"),
        )
    }
}

/// BIRD 2 in one namespace, in the foreground, with its control socket and its log in a
/// directory of its own. Dropping it stops it and removes the directory.
pub struct Bird {
    // Dropped first: BIRD stops before its directory goes.
    process: KillOnDrop,
    ctl: PathBuf,
    log: PathBuf,
    _dir: Dir,
}

impl Bird {
    /// Whether `bird` and `birdc` are installed (`cargo xtask setup` installs them).
    pub fn installed() -> bool {
        Command::new("bird")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
            // birdc has no `--version`: that it runs at all is enough.
            && Command::new("birdc").arg("--help").output().is_ok()
    }

    /// Starts BIRD in `ns` with `config`; returns once it answers on its control socket.
    /// Its log goes to `bird.log` whatever `config` says (`log stderr all;` is added).
    pub fn start(ns: &Netns, config: &str) -> Self {
        let dir = Dir(test_dir("vipflip-bird-"));
        let conf = dir.0.join("bird.conf");
        std::fs::write(&conf, format!("log stderr all;\n{config}")).expect("write bird.conf");
        let ctl = dir.0.join("bird.ctl");
        let log = dir.0.join("bird.log");
        let log_file = std::fs::File::create(&log).expect("create bird.log");
        let child = ns
            .command("bird")
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(&ctl)
            .arg("-P")
            .arg(dir.0.join("bird.pid"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone a log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn bird: {e}"));
        let mut bird = Self {
            process: KillOnDrop(child),
            ctl,
            log,
            _dir: dir,
        };
        let ready = wait_for(Duration::from_secs(10), || {
            bird.birdc("show status")
                .contains("Daemon is up and running")
                || bird.process.0.try_wait().is_ok_and(|s| s.is_some())
        });
        assert!(
            ready && bird.process.0.try_wait().is_ok_and(|s| s.is_none()),
            "bird did not start:\n{}\n{config}",
            bird.log()
        );
        bird
    }

    /// birdc's answer to `command` (`show protocols all edge`, `show route`).
    pub fn birdc(&self, command: &str) -> String {
        Command::new("birdc")
            .arg("-s")
            .arg(&self.ctl)
            .args(command.split_whitespace())
            .output()
            .map_or_else(
                |e| format!("birdc: {e}"),
                |o| String::from_utf8_lossy(&o.stdout).into_owned(),
            )
    }

    /// How many BGP sessions are established now.
    pub fn established(&self) -> usize {
        self.birdc("show protocols")
            .lines()
            .filter(|l| l.contains(" BGP ") && l.contains("Established"))
            .count()
    }

    /// Waits until `n_peers` BGP sessions are established; false after `timeout`.
    pub fn wait_established(&self, n_peers: usize, timeout: Duration) -> bool {
        wait_for(timeout, || self.established() >= n_peers)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log and the protocols' state, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "bird:\n{}\nshow protocols:\n{}",
            self.log(),
            self.birdc("show protocols")
        )
    }
}

/// A directory removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `text` as JSON, or `null` when it is not (vtysh said something else).
fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

// ---------------------------------------------------------------------------------------
// The kernel FIB

/// The next hops of `prefix` (`198.51.100.10/32`) in `ns`'s main table, sorted: one per path
/// of a multipath route, none when there is no route or it has no gateway (`dev lo`).
pub fn nexthops(ns: &Netns, prefix: &str) -> Vec<IpAddr> {
    let out = ns.ip(&["-j", "route", "show", prefix]);
    let routes = json(&String::from_utf8_lossy(&out.stdout));
    let mut hops: Vec<IpAddr> = routes
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|route| match route["nexthops"].as_array() {
            Some(paths) => paths.iter().map(|p| &p["gateway"]).collect(),
            None => vec![&route["gateway"]],
        })
        .filter_map(|gateway| gateway.as_str()?.parse().ok())
        .collect();
    hops.sort_unstable();
    hops
}

/// Polls [`nexthops`] (about every 2 ms) until `prefix` has `wanted` next hops: how long it
/// took from the call, or `None` after `timeout`.
pub fn wait_nexthops(
    ns: &Netns,
    prefix: &str,
    wanted: usize,
    timeout: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if nexthops(ns, prefix).len() == wanted {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `vip` as a host prefix: `/32`, or `/128` for IPv6.
pub fn host_prefix(vip: &str) -> String {
    format!("{vip}/{}", if vip.contains(':') { 128 } else { 32 })
}

// ---------------------------------------------------------------------------------------
// The scene

/// One director of a [`BgpScene`].
pub struct Director {
    pub ns: Netns,
    /// Its port on the switch's bridge (its own interface is `eth0`).
    pub port: String,
    /// `192.0.2.11` for the first, `.12`, …: its address, and its BGP router id.
    pub address: Ipv4Addr,
    /// `65011` for the first, `65012`, …
    pub asn: u32,
}

/// An edge router running FRR (zebra, bgpd, bfdd), `directors` directors on one bridge
/// segment with it, and a client behind it:
///
/// ```text
///   client 192.0.2.66-.69 ── eth1 edge 192.0.2.65   (192.0.2.64/26)
///                               edge eth0 192.0.2.1 ── switch br0 ── director d eth0 192.0.2.11+d
///                                                       (192.0.2.0/26)
/// ```
///
/// The bridge is there so that cutting a director ([`BgpScene::cut`]) is seen by no one's
/// carrier: only BFD or the hold timer can tell. The edge forwards (`ip_forward=1`) and
/// spreads flows over equal paths by their ports (`fib_multipath_hash_policy=1`); directors
/// and client route everything else through the edge. The directors' routing daemons are the
/// test's to start, with a configuration it chooses ([`BgpScene::director_config`] gives the
/// parameters). Dropping the scene stops the edge's FRR, then removes every namespace.
pub struct BgpScene {
    pub edge_frr: Frr,
    pub directors: Vec<Director>,
    pub edge: Netns,
    pub client: Netns,
    // Dropped last: removing the switch removes the bridge and every port.
    pub switch: Netns,
    bfd: Option<Bfd>,
}

impl BgpScene {
    /// The edge's address on the directors' segment, and its router id.
    pub const EDGE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    /// The edge's address on the client's link.
    pub const EDGE_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 65);
    /// The client's addresses: the first is its primary one, the others are extra sources.
    pub const CLIENT_SOURCES: [Ipv4Addr; 4] = [
        Ipv4Addr::new(192, 0, 2, 66),
        Ipv4Addr::new(192, 0, 2, 67),
        Ipv4Addr::new(192, 0, 2, 68),
        Ipv4Addr::new(192, 0, 2, 69),
    ];

    /// A scene with unique names (for tests), the edge's FRR started with BFD `bfd` to every
    /// director.
    pub fn new(directors: usize, bfd: Option<Bfd>) -> Self {
        Self::build(directors, bfd, Naming::Unique)
    }

    /// A scene named as `naming` says (`<prefix>-edge`, `<prefix>-d1`, …, `<prefix>-client`,
    /// `<prefix>-sw` for a fixed one).
    pub fn build(directors: usize, bfd: Option<Bfd>, naming: Naming) -> Self {
        assert!(
            (1..=50).contains(&directors),
            "1 to 50 directors fit the segment"
        );
        let ns_name = |role: &str| match naming {
            Naming::Unique => unique(&format!("vfb-{role}")),
            Naming::Fixed(prefix) => format!("{prefix}-{role}"),
        };
        let switch = Netns::switch(ns_name("sw"));
        // Interfaces are created inside their namespaces, so fixed names cannot collide.
        let on_bridge = |ns: &Netns, port: &str, address: Ipv4Addr| {
            veth(ns, "eth0", &switch, port);
            switch.ip(&["link", "set", port, "master", "br0"]);
            ns.ip(&["addr", "add", &format!("{address}/26"), "dev", "eth0"]);
        };

        let edge = Netns::named(ns_name("edge"));
        on_bridge(&edge, "edge", Self::EDGE);
        edge.sysctl("net.ipv4.ip_forward", "1");
        edge.sysctl("net.ipv4.fib_multipath_hash_policy", "1");

        let client = Netns::named(ns_name("client"));
        veth(&edge, "eth1", &client, "eth0");
        edge.ip(&[
            "addr",
            "add",
            &format!("{}/26", Self::EDGE_CLIENT_SIDE),
            "dev",
            "eth1",
        ]);
        for source in Self::CLIENT_SOURCES {
            client.ip(&["addr", "add", &format!("{source}/26"), "dev", "eth0"]);
        }
        client.ip(&[
            "route",
            "add",
            "default",
            "via",
            &Self::EDGE_CLIENT_SIDE.to_string(),
        ]);

        let directors: Vec<Director> = (0..directors)
            .map(|d| {
                let n = u8::try_from(d).expect("few directors");
                let ns = Netns::named(ns_name(&format!("d{}", d + 1)));
                let port = format!("d{}", d + 1);
                let address = Ipv4Addr::new(192, 0, 2, 11 + n);
                on_bridge(&ns, &port, address);
                ns.ip(&["route", "add", "default", "via", &Self::EDGE.to_string()]);
                Director {
                    ns,
                    port,
                    address,
                    asn: 65011 + u32::from(n),
                }
            })
            .collect();

        let edge_config = EdgeConfig {
            asn: EDGE_ASN,
            router_id: Self::EDGE,
            neighbors: directors
                .iter()
                .map(|d| Neighbor {
                    address: d.address,
                    asn: d.asn,
                })
                .collect(),
            bfd,
        };
        let edge_frr = Frr::start(&edge, &edge_frr_config(&edge_config));
        Self {
            edge_frr,
            directors,
            edge,
            client,
            switch,
            bfd,
        }
    }

    /// Director `d`'s parameters: its AS and address, the edge, [`VIP_TABLE`], and the
    /// scene's BFD timers.
    pub fn director_config(&self, d: usize) -> DirectorConfig {
        let director = &self.directors[d];
        DirectorConfig {
            asn: director.asn,
            router_id: director.address,
            edge: Neighbor {
                address: Self::EDGE,
                asn: EDGE_ASN,
            },
            table: VIP_TABLE,
            bfd: self.bfd,
        }
    }

    /// The directors' addresses, sorted (as [`nexthops`] returns them).
    pub fn director_addresses(&self) -> Vec<IpAddr> {
        let mut all: Vec<IpAddr> = self
            .directors
            .iter()
            .map(|d| IpAddr::V4(d.address))
            .collect();
        all.sort_unstable();
        all
    }

    /// Director `d` announces `vip`, by hand, as vipflip's route writer will: the host route
    /// `dev lo proto 250` in [`VIP_TABLE`].
    pub fn announce(&self, d: usize, vip: &str) {
        self.vip_route(d, "add", vip);
    }

    /// Director `d` withdraws `vip` (deletes the route of [`BgpScene::announce`]).
    pub fn withdraw(&self, d: usize, vip: &str) {
        self.vip_route(d, "del", vip);
    }

    fn vip_route(&self, d: usize, verb: &str, vip: &str) {
        self.directors[d].ns.ip(&[
            "route",
            verb,
            &host_prefix(vip),
            "dev",
            "lo",
            "table",
            &VIP_TABLE.to_string(),
            "proto",
            &VIP_PROTO.to_string(),
        ]);
    }

    /// Director `d` accepts traffic for `vip` as its own: a `local` route in the local table,
    /// which zebra does not see (an address on `lo` would be a connected route that beats
    /// the imported one, and the VIP would be withdrawn).
    pub fn accept(&self, d: usize, vip: &str) {
        self.directors[d].ns.ip(&[
            "route",
            "add",
            "local",
            &host_prefix(vip),
            "dev",
            "lo",
            "table",
            "local",
        ]);
    }

    /// The next hops of `vip` in the edge's FIB (see [`nexthops`]).
    pub fn edge_nexthops(&self, vip: &str) -> Vec<IpAddr> {
        nexthops(&self.edge, &host_prefix(vip))
    }

    /// Waits until the edge's FIB has `wanted` next hops for `vip`: how long it took, or
    /// `None` after `timeout` (see [`wait_nexthops`]).
    pub fn wait_edge_nexthops(
        &self,
        vip: &str,
        wanted: usize,
        timeout: Duration,
    ) -> Option<Duration> {
        wait_nexthops(&self.edge, &host_prefix(vip), wanted, timeout)
    }

    /// Cuts director `d` off the segment without anyone losing carrier, as a switch that
    /// stops forwarding to and from one port would: the port goes to the bridge's disabled
    /// state (both veth ends stay up). A static entry keeps the director's MAC on that port,
    /// so the bridge drops what is sent to the director instead of flooding it to the other
    /// directors (whose XDP programs would see it before the kernel discards it as not
    /// theirs, and serve it).
    pub fn cut(&self, d: usize) {
        let director = &self.directors[d];
        let mac = director.ns.mac("eth0");
        let mac = format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
        );
        let ns = self.switch.name();
        crate::sh(
            "bridge",
            &[
                "-n",
                ns,
                "fdb",
                "replace",
                &mac,
                "dev",
                &director.port,
                "master",
                "static",
            ],
        );
        crate::sh(
            "bridge",
            &["-n", ns, "link", "set", "dev", &director.port, "state", "0"],
        );
    }

    /// Puts director `d` back on the segment.
    pub fn restore(&self, d: usize) {
        let director = &self.directors[d];
        crate::sh(
            "bridge",
            &[
                "-n",
                self.switch.name(),
                "link",
                "set",
                "dev",
                &director.port,
                "state",
                "3",
            ],
        );
    }

    /// The edge's FRR and FIB, for failure messages.
    pub fn describe(&self) -> String {
        let fib = self.edge.ip(&["route", "show"]);
        format!(
            "edge:\n{}\nedge FIB:\n{}",
            self.edge_frr.describe(),
            String::from_utf8_lossy(&fib.stdout)
        )
    }
}
