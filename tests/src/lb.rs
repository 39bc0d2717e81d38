//! The Direct Routing load balancer as a namespace scene: a [`Lab`] whose first two hosts are
//! directors running vipflip and whose other hosts are real servers (the VIP on `lo`, ARP
//! for it ignored, an HTTP and an echo server each, from `vipflip-lb-probe`), and readers for
//! what the clients of `vipflip-lb-probe` print and for the virtual servers of
//! `vipflip status --json`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{
    KillOnDrop, Lab, Netns,
    agent::{self, Agent, QUICK_GARP},
    scene::{tail, test_dir},
    wait_for,
};

/// The port of the real servers' HTTP service.
pub const HTTP_PORT: u16 = 80;
/// The port of the real servers' echo service (long-lived streams).
pub const ECHO_PORT: u16 = 7000;
/// The port of the real servers' UDP responder (`vipflip-probe serve`).
pub const UDP_PORT: u16 = 7777;

/// `CLOCK_MONOTONIC` in µs, the clock `vipflip-lb-probe` stamps its events with.
pub fn now_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000
        + u64::try_from(ts.tv_nsec).unwrap_or(0) / 1000
}

/// The binaries the scene runs, at paths only this crate's test targets know
/// (`env!("CARGO_BIN_EXE_…")`): they hand them in.
#[derive(Debug, Clone, Copy)]
pub struct Tools {
    /// `vipflip-lb-probe`.
    pub lb_probe: &'static str,
    /// `vipflip-probe` (the UDP responder).
    pub probe: &'static str,
}

/// Makes `ns` a Direct Routing real server of `vip`: the VIP on `lo` (as a /32 or /128), and
/// ARP for it neither answered nor used as a source (`arp_ignore=1`, `arp_announce=2`), so
/// only the director answers for it while this host accepts what the director sends it.
pub fn make_real_server(ns: &Netns, vip: &str) {
    for scope in ["all", "lo"] {
        ns.sysctl(&format!("net.ipv4.conf.{scope}.arp_ignore"), "1");
        ns.sysctl(&format!("net.ipv4.conf.{scope}.arp_announce"), "2");
    }
    let prefix = if vip.contains(':') { 128 } else { 32 };
    ns.ip(&["addr", "add", &format!("{vip}/{prefix}"), "dev", "lo"]);
}

/// The router's address on the real servers' subnet of a [`LbScene::routed`].
pub const ROUTED_GATEWAY: &str = "198.51.100.254";
/// The UDP port the routed real servers' `fou` decapsulates GUE on.
pub const GUE_PORT: u16 = 6080;

/// Checksums computed in software on `iface`, as [`Lab`] does for its hosts (frames that an
/// XDP program forwards must carry finished checksums).
fn no_tx_offload(ns: &Netns, iface: &str) {
    let out = ns
        .command("ethtool")
        .args(["-K", iface, "tx", "off"])
        .output()
        .expect("run ethtool");
    assert!(
        out.status.success(),
        "ethtool -K {iface} tx off: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `ns` a real server that takes `vip`'s traffic through a tunnel on `iface`, as an
/// operator would: `vipflip real-server --forward gue --xdp-decap IFACE --apply`, which puts
/// the VIP on `lo` (`arp_ignore`, `arp_announce`) and attaches vipflip's decapsulating XDP
/// program (IPIP always, GUE on [`GUE_PORT`]). The stock kernel's `ipip` and `fou` would do
/// the same where it has them; the kernel these tests run on has neither.
pub fn make_tunnel_endpoint(ns: &Netns, iface: &str, vip: &str, pins: &std::path::Path) {
    let out = ns
        .command(agent::vipflip().to_str().expect("utf-8 path"))
        .args([
            "real-server",
            "--forward",
            "gue",
            "--gue-port",
            &GUE_PORT.to_string(),
            "--vip",
            vip,
            "--xdp-decap",
            iface,
            "--pin-dir",
            pins.to_str().expect("utf-8 path"),
            "--apply",
        ])
        .output()
        .expect("run vipflip real-server");
    assert!(
        out.status.success(),
        "vipflip real-server --apply on {iface}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `vipflip-lb-probe what --port port --name name` (`http-serve`, `echo-serve`) in `ns`,
/// where `lb_probe` is the tool's path; see [`listening`] for when it is ready.
pub fn serve(lb_probe: &str, ns: &Netns, what: &str, port: u16, name: &str) -> KillOnDrop {
    let child = ns
        .command(lb_probe)
        .args([what, "--port", &port.to_string(), "--name", name])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn vipflip-lb-probe {what}: {e}"));
    KillOnDrop(child)
}

/// Whether something listens on TCP `port` in `ns`.
pub fn listening(ns: &Netns, port: u16) -> bool {
    let out = ns
        .command("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output();
    out.is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

/// `vipflip-lb-probe http-load` (at `lb_probe`) from `client` to `vip` on [`HTTP_PORT`]:
/// `args` as the tool takes them after the target (`--requests 3000 --parallel 8`). Runs to
/// its end.
pub fn http_load(lb_probe: &str, client: &Netns, vip: &str, args: &[&str]) -> HttpRun {
    let out = http_load_command(lb_probe, client, vip, args)
        .output()
        .expect("run vipflip-lb-probe http-load");
    assert!(
        out.status.success(),
        "http-load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    HttpRun::parse(&String::from_utf8_lossy(&out.stdout))
}

/// The `http-load` command of [`http_load`], to run or spawn.
fn http_load_command(lb_probe: &str, client: &Netns, vip: &str, args: &[&str]) -> Command {
    let mut cmd = client.command(lb_probe);
    cmd.args([
        "http-load",
        "--target",
        vip,
        "--port",
        &HTTP_PORT.to_string(),
    ])
    .args(args);
    cmd
}

/// One real server of an [`LbScene`]: its host and the services it runs.
pub struct Real {
    /// `rs1`, `rs2`, …: the name its services answer with.
    pub name: String,
    http: Option<KillOnDrop>,
    echo: Option<KillOnDrop>,
    udp: Option<KillOnDrop>,
}

/// Two directors (lab hosts 1 and 2, `192.0.2.1` and `.2`, agents `d1` and `d2`) and
/// `reals` real servers (hosts 3…, `192.0.2.3`…, named `rs1`…), one client (`192.0.2.200`).
/// Dropping it stops every process, removes `dir`, then the lab.
pub struct LbScene {
    pub agents: Vec<Agent>,
    pub reals: Vec<Real>,
    pub lab: Lab,
    pub dir: PathBuf,
    tools: Tools,
    /// Where the real servers start in `lab.routers`.
    real_base: usize,
    /// The switch of the real servers' own subnet, behind a router (see [`LbScene::routed`]).
    far: Option<Netns>,
}

impl Drop for LbScene {
    fn drop(&mut self) {
        self.agents.clear();
        self.reals.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What director `d` (0-based) runs: `[global]`, instance `VI_1` (VRID 51, 100 ms adverts,
/// `vip/24`, or `vip/64` for an IPv6 `vip`, quick GARP) at `priority`, then `services`
/// (`[[virtual_server]]` tables).
pub fn director_config(
    lab: &Lab,
    dir: &std::path::Path,
    d: usize,
    priority: u8,
    vip: &str,
    services: &str,
) -> String {
    format!(
        "{}\n{}\n{services}\n",
        agent::global(&format!("d{}", d + 1), lab.bpffs.path(), dir),
        agent::instance(
            "VI_1",
            &lab.routers[d].iface,
            51,
            priority,
            "100ms",
            &format!("{vip}/{}", if vip.contains(':') { 64 } else { 24 })
        ) + QUICK_GARP,
    )
}

/// One `[[virtual_server]]` table on `VI_1`: `name` for `vip:port/protocol` by `scheduler`,
/// with `extra` lines (`quorum = 2`, `sorry_server = "…"`) and one real server per
/// `(address, weight, check)` (`check` an inline table, or empty for none).
pub fn virtual_server(
    name: &str,
    vip: &str,
    port: u16,
    protocol: &str,
    scheduler: &str,
    extra: &str,
    reals: &[(String, u16, String)],
) -> String {
    let mut out = format!(
        "[[virtual_server]]\nname = \"{name}\"\nvip = \"{vip}\"\nport = {port}\nprotocol = \"{protocol}\"\n\
         scheduler = \"{scheduler}\"\ninstance = \"VI_1\"\n{extra}\n"
    );
    for (address, weight, check) in reals {
        let _ = writeln!(
            out,
            "[[virtual_server.real_server]]\naddress = \"{address}\"\nweight = {weight}"
        );
        if !check.is_empty() {
            let _ = writeln!(out, "check = {check}");
        }
    }
    out
}

impl LbScene {
    /// A lab of two directors, `reals` real servers of `vip` and a client; every real server
    /// runs HTTP on [`HTTP_PORT`], echo on [`ECHO_PORT`] and the UDP responder on
    /// [`UDP_PORT`]. No agent runs yet: see [`LbScene::start_directors`].
    pub fn new(tools: Tools, reals: usize, vip: &str) -> Self {
        let lab = Lab::new(2 + reals);
        let mut scene = Self {
            agents: Vec::new(),
            reals: Vec::new(),
            lab,
            dir: test_dir("vipflip-lb-"),
            tools,
            real_base: 2,
            far: None,
        };
        for i in 0..reals {
            make_real_server(&scene.real_host(i).ns, vip);
        }
        scene.serve_on_every_real(reals);
        scene
    }

    /// Real servers behind a router, for tunnels: the lab's third host is the router
    /// (`192.0.2.3` on the directors' link, [`ROUTED_GATEWAY`] on the real servers' own
    /// subnet, 198.51.100.0/24), and `reals` real servers (`198.51.100.11`…) sit on a switch
    /// of their own behind it, each a [`make_tunnel_endpoint`]. The directors route the real
    /// servers' subnet through the router and forward (the XDP program's FIB lookup asks for
    /// it); the real servers answer the client through the router, not the directors.
    pub fn routed(tools: Tools, reals: usize, vip: &str) -> Self {
        let lab = Lab::new(3);
        let far = Netns::switch(crate::unique("vfl-far"));
        let router = &lab.routers[2];
        router.ns.sysctl("net.ipv4.ip_forward", "1");
        for scope in ["all", "default"] {
            router
                .ns
                .sysctl(&format!("net.ipv4.conf.{scope}.rp_filter"), "0");
        }
        let port = crate::unique("vfq");
        crate::veth(&router.ns, "far0", &far, &port);
        far.ip(&["link", "set", &port, "master", "br0"]);
        router.ns.ip(&[
            "addr",
            "add",
            &format!("{ROUTED_GATEWAY}/24"),
            "dev",
            "far0",
        ]);
        no_tx_offload(&router.ns, "far0");
        for d in 0..2 {
            let director = &lab.routers[d];
            director.ns.ip(&[
                "route",
                "add",
                "198.51.100.0/24",
                "via",
                &router.ipv4.to_string(),
            ]);
            director.ns.sysctl("net.ipv4.conf.all.forwarding", "1");
        }
        let mut scene = Self {
            agents: Vec::new(),
            reals: Vec::new(),
            lab,
            dir: test_dir("vipflip-tun-"),
            tools,
            real_base: 3,
            far: None,
        };
        for i in 0..reals {
            let ns = Netns::new("vfl-rs");
            let (iface, port) = (crate::unique("vfh"), crate::unique("vfp"));
            crate::veth(&ns, &iface, &far, &port);
            far.ip(&["link", "set", &port, "master", "br0"]);
            let ipv4 = std::net::Ipv4Addr::new(198, 51, 100, 11 + u8::try_from(i).expect("few"));
            ns.ip(&["addr", "add", &format!("{ipv4}/24"), "dev", &iface]);
            ns.ip(&["route", "add", "default", "via", ROUTED_GATEWAY]);
            no_tx_offload(&ns, &iface);
            make_tunnel_endpoint(&ns, &iface, vip, scene.lab.bpffs.path());
            scene.lab.routers.push(crate::Host {
                ns,
                iface,
                port,
                ipv4,
                ipv6: std::net::Ipv6Addr::UNSPECIFIED,
            });
        }
        scene.far = Some(far);
        scene.serve_on_every_real(reals);
        scene
    }

    /// The HTTP, echo and UDP servers of each real server, ready.
    fn serve_on_every_real(&mut self, reals: usize) {
        let tools = self.tools;
        let scene = self;
        for i in 0..reals {
            let mut real = Real {
                name: format!("rs{}", i + 1),
                http: None,
                echo: None,
                udp: None,
            };
            real.http = Some(scene.serve(i, "http-serve", HTTP_PORT, &real.name));
            real.echo = Some(scene.serve(i, "echo-serve", ECHO_PORT, &real.name));
            let udp = scene
                .real_host(i)
                .ns
                .command(tools.probe)
                .args([
                    "serve",
                    "--port",
                    &UDP_PORT.to_string(),
                    "--name",
                    &real.name,
                ])
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn vipflip-probe serve");
            real.udp = Some(KillOnDrop(udp));
            scene.reals.push(real);
        }
        for i in 0..reals {
            let addr = scene.real_addr(i);
            for port in [HTTP_PORT, ECHO_PORT] {
                assert!(
                    wait_for(Duration::from_secs(5), || scene.listening(i, port)),
                    "{}: nothing listens on {addr}:{port}",
                    scene.reals[i].name
                );
            }
        }
    }

    /// Starts vipflip on both directors, `config(lab, dir, d)` for director `d`.
    pub fn start_directors(&mut self, config: impl Fn(&Lab, &std::path::Path, usize) -> String) {
        for d in 0..2 {
            let text = config(&self.lab, &self.dir, d);
            let id = format!("d{}", d + 1);
            self.agents.push(Agent::start(
                &self.lab.routers[d].ns,
                &self.dir,
                &id,
                &text,
                "info",
            ));
        }
    }

    /// Director `d`'s host (0 or 1).
    pub fn director(&self, d: usize) -> &crate::Host {
        &self.lab.routers[d]
    }

    /// Real server `i`'s host (0-based).
    pub fn real_host(&self, i: usize) -> &crate::Host {
        &self.lab.routers[self.real_base + i]
    }

    /// The router between the directors and the real servers of a [`LbScene::routed`].
    pub fn router(&self) -> &crate::Host {
        assert!(self.far.is_some(), "only a routed scene has a router");
        &self.lab.routers[2]
    }

    /// Real server `i`'s own address.
    pub fn real_addr(&self, i: usize) -> String {
        self.real_host(i).ipv4.to_string()
    }

    /// Real server `i`'s own IPv6 address (`2001:db8::3`…).
    pub fn real_addr6(&self, i: usize) -> String {
        self.real_host(i).ipv6.to_string()
    }

    pub fn client(&self) -> &Netns {
        &self.lab.client.ns
    }

    fn serve(&self, i: usize, what: &str, port: u16, name: &str) -> KillOnDrop {
        serve(self.tools.lb_probe, &self.real_host(i).ns, what, port, name)
    }

    /// Whether something listens on TCP `port` on real server `i`.
    fn listening(&self, i: usize, port: u16) -> bool {
        listening(&self.real_host(i).ns, port)
    }

    /// Stops real server `i`'s HTTP server (SIGKILL: its listener is gone at once, and new
    /// connections are refused).
    pub fn stop_http(&mut self, i: usize) {
        self.reals[i].http = None;
        assert!(
            wait_for(Duration::from_secs(2), || !self.listening(i, HTTP_PORT)),
            "{}: the HTTP listener is still there",
            self.reals[i].name
        );
    }

    /// Starts real server `i`'s HTTP server again.
    pub fn start_http(&mut self, i: usize) {
        let name = self.reals[i].name.clone();
        self.reals[i].http = Some(self.serve(i, "http-serve", HTTP_PORT, &name));
        assert!(
            wait_for(Duration::from_secs(5), || self.listening(i, HTTP_PORT)),
            "{name}: the HTTP listener did not come back"
        );
    }

    /// Stops every service of real server `i` (HTTP, echo, UDP).
    pub fn stop_all(&mut self, i: usize) {
        let real = &mut self.reals[i];
        real.http = None;
        real.echo = None;
        real.udp = None;
    }

    /// Real server `i`'s host replaced by another at the same address, as the link sees it:
    /// its interface takes `mac` and announces it with a gratuitous ARP, as a host coming up
    /// does (`arp_notify`, which also sends one when the address changes). Returns the moment
    /// the change was started (the `ip link set address` command, after the sysctl).
    pub fn replace_real_mac(&self, i: usize, mac: [u8; 6]) -> std::time::Instant {
        let host = self.real_host(i);
        host.ns
            .sysctl(&format!("net.ipv4.conf.{}.arp_notify", host.iface), "1");
        let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
        let started = std::time::Instant::now();
        host.ns
            .ip(&["link", "set", "dev", &host.iface, "address", &mac.join(":")]);
        started
    }

    /// Limits the client's ephemeral ports to `range` (`"40000 40999"`), so that a few
    /// thousand connections reuse their 5-tuples.
    pub fn client_port_range(&self, range: &str) {
        self.client().sysctl("net.ipv4.ip_local_port_range", range);
    }

    /// The effect of tracker `tracker` (`quorum of web`) on `VI_1` on director `d` now
    /// (see [`tracker_effect`]).
    pub fn tracker_effect(&self, d: usize, tracker: &str) -> Option<String> {
        tracker_effect(&self.agents[d].status(), tracker)
    }

    /// `http-load` from the client to `vip`: `args` as the tool takes them after the target
    /// (`--requests 3000 --parallel 8`). Runs to its end.
    pub fn http_load(&self, vip: &str, args: &[&str]) -> HttpRun {
        http_load(self.tools.lb_probe, self.client(), vip, args)
    }

    /// Starts `http-load` in the background (see [`LbScene::http_load`]).
    pub fn start_http_load(&self, vip: &str, args: &[&str]) -> Running {
        let child = http_load_command(self.tools.lb_probe, self.client(), vip, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vipflip-lb-probe http-load");
        Running(child)
    }

    /// Opens `count` streams to the echo service on `vip` that exchange a line every 10 ms
    /// for `duration_ms`; returns once every stream is established, with the server of each.
    pub fn start_streams(&self, vip: &str, count: u32, duration_ms: u32) -> Streams {
        start_streams(
            self.tools.lb_probe,
            self.client(),
            vip,
            &StreamsArgs {
                count,
                interval_ms: 10,
                duration_ms,
                timeout_ms: None,
            },
        )
    }

    /// `udp-flows` from the client to the UDP responders behind `vip`.
    pub fn udp_flows(&self, vip: &str, flows: u32, per_flow: u32) -> Vec<UdpFlow> {
        let out = self
            .client()
            .command(self.tools.lb_probe)
            .args([
                "udp-flows",
                "--target",
                vip,
                "--port",
                &UDP_PORT.to_string(),
            ])
            .args([
                "--flows",
                &flows.to_string(),
                "--per-flow",
                &per_flow.to_string(),
            ])
            .output()
            .expect("run vipflip-lb-probe udp-flows");
        assert!(
            out.status.success(),
            "udp-flows failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(UdpFlow::parse)
            .collect()
    }

    /// The virtual servers director `d` shows in `vipflip status --json`.
    pub fn virtual_servers(&self, d: usize) -> Vec<VsStatus> {
        parse_virtual_servers(&self.agents[d].status())
    }

    /// Virtual server `name` on director `d`, if shown.
    pub fn vs(&self, d: usize, name: &str) -> Option<VsStatus> {
        self.virtual_servers(d).into_iter().find(|v| v.name == name)
    }

    /// The state of real server `address` in virtual server `name` on director `d`.
    pub fn real_state(&self, d: usize, name: &str, address: &str) -> Option<String> {
        self.vs(d, name)?
            .reals
            .into_iter()
            .find(|r| r.address == address && !r.sorry)
            .map(|r| r.state)
    }

    /// `vipflip maps` for director `d`'s pins (what its XDP program holds and counted).
    pub fn maps(&self, d: usize) -> String {
        let pins = self.lab.bpffs.path().join(format!("d{}", d + 1));
        let out = self
            .director(d)
            .ns
            .command(agent::vipflip().to_str().expect("utf-8 path"))
            .args(["maps", "--pin-dir", pins.to_str().expect("utf-8 path")])
            .output()
            .expect("run vipflip maps");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Frames director `d`'s XDP program sent to a real server (`lb_forward_tx` and
    /// `lb_forward_redirect`).
    pub fn lb_forwarded(&self, d: usize) -> u64 {
        self.maps(d)
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let name = words.next()?;
                name.starts_with("lb_forward_")
                    .then(|| words.next()?.parse::<u64>().ok())
                    .flatten()
            })
            .sum()
    }

    /// Every director's status, the end of its log, and its XDP counters, for failure
    /// messages.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (d, agent) in self.agents.iter().enumerate() {
            let _ = writeln!(out, "\n==== {} status:\n{}", agent.id, agent.status());
            let _ = writeln!(
                out,
                "==== {} log (tail):\n{}",
                agent.id,
                tail(&agent.log(), 40)
            );
            let link = self
                .director(d)
                .ns
                .ip(&["-d", "link", "show", &self.director(d).iface]);
            let _ = writeln!(
                out,
                "==== {} link:\n{}",
                agent.id,
                String::from_utf8_lossy(&link.stdout)
            );
        }
        let neigh = self.client().ip(&["neigh", "show"]);
        let _ = writeln!(
            out,
            "==== client neighbours:\n{}",
            String::from_utf8_lossy(&neigh.stdout)
        );
        out
    }

    /// Waits until `condition` holds; panics with `what` and [`LbScene::describe`] if it
    /// does not within `timeout`.
    pub fn await_that(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) {
        let ok = wait_for(timeout, || condition(self));
        assert!(ok, "{what}: not so after {timeout:?}{}", self.describe());
    }

    /// Waits until director `master` is `VI_1`'s master and the other its backup.
    pub fn await_master(&self, master: usize, timeout: Duration) {
        self.await_that(
            &format!("d{} master of VI_1, the other backup", master + 1),
            timeout,
            |s| {
                (0..2).all(|d| {
                    let want = if d == master { "Master" } else { "Backup" };
                    s.agents[d].state("VI_1").as_deref() == Some(want)
                })
            },
        );
    }
}

/// A client tool running in the background.
pub struct Running(Child);

impl Running {
    /// Waits for its end; its output read as an [`HttpRun`].
    pub fn finish_http(self) -> HttpRun {
        let out = self.0.wait_with_output().expect("wait for http-load");
        assert!(
            out.status.success(),
            "http-load failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        HttpRun::parse(&String::from_utf8_lossy(&out.stdout))
    }
}

/// One request of `http-load`.
#[derive(Debug, Clone)]
pub struct Request {
    pub start_us: u64,
    pub end_us: u64,
    /// The client's port (0 if it never connected).
    pub port: u16,
    /// The real server that answered, or why none did.
    pub outcome: Result<String, String>,
}

/// What `http-load` saw.
#[derive(Debug, Clone, Default)]
pub struct HttpRun {
    pub requests: Vec<Request>,
}

impl HttpRun {
    fn parse(text: &str) -> Self {
        let requests = text
            .lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.splitn(6, ' ').collect();
                let ["R", start, end, port, kind, what] = words[..] else {
                    return None;
                };
                Some(Request {
                    start_us: start.parse().ok()?,
                    end_us: end.parse().ok()?,
                    port: port.parse().ok()?,
                    outcome: if kind == "ok" {
                        Ok(what.to_owned())
                    } else {
                        Err(what.to_owned())
                    },
                })
            })
            .collect();
        Self { requests }
    }

    /// Answers per real server.
    pub fn by_server(&self) -> BTreeMap<String, u64> {
        let mut tally = BTreeMap::new();
        for r in &self.requests {
            if let Ok(name) = &r.outcome {
                *tally.entry(name.clone()).or_default() += 1;
            }
        }
        tally
    }

    pub fn errors(&self) -> Vec<&Request> {
        self.requests
            .iter()
            .filter(|r| r.outcome.is_err())
            .collect()
    }

    /// The requests that started at or after `from_us` (and before `to_us`).
    #[must_use]
    pub fn between(&self, from_us: u64, to_us: u64) -> Self {
        Self {
            requests: self
                .requests
                .iter()
                .filter(|r| r.start_us >= from_us && r.start_us < to_us)
                .cloned()
                .collect(),
        }
    }

    /// A short account: answers per server and errors by reason.
    pub fn summary(&self) -> String {
        let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
        for r in self.errors() {
            if let Err(why) = &r.outcome {
                *reasons.entry(why).or_default() += 1;
            }
        }
        format!(
            "{} requests, answered {:?}, errors {:?}",
            self.requests.len(),
            self.by_server(),
            reasons
        )
    }
}

/// How [`start_streams`] runs `vipflip-lb-probe streams`.
#[derive(Debug, Clone, Copy)]
pub struct StreamsArgs {
    pub count: u32,
    /// A line each way this often, per stream.
    pub interval_ms: u32,
    pub duration_ms: u32,
    /// A reply slower than this ends the stream with an error (`None`: the tool's 5 s).
    pub timeout_ms: Option<u32>,
}

/// `vipflip-lb-probe streams` (at `lb_probe`) from `client` to the echo service on `vip`:
/// returns once every stream is established, with the server of each.
pub fn start_streams(lb_probe: &str, client: &Netns, vip: &str, args: &StreamsArgs) -> Streams {
    let mut cmd = client.command(lb_probe);
    cmd.args(["streams", "--target", vip, "--port", &ECHO_PORT.to_string()])
        .args(["--count", &args.count.to_string()])
        .args(["--interval-ms", &args.interval_ms.to_string()])
        .args(["--duration-ms", &args.duration_ms.to_string()]);
    if let Some(timeout) = args.timeout_ms {
        cmd.args(["--timeout-ms", &timeout.to_string()]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vipflip-lb-probe streams");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut established = Vec::new();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let out = child.wait_with_output().expect("wait for streams");
            panic!(
                "streams ended before READY: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        if line == "READY" {
            break;
        }
        // E INDEX PORT NAME
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["E", _, port, name] = words[..] {
            established.push((port.parse().expect("port"), (*name).to_owned()));
        }
    }
    Streams {
        child: KillOnDrop(child),
        lines,
        established,
    }
}

/// Long-lived streams running on the client.
pub struct Streams {
    child: KillOnDrop,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    /// (client port, real server) of each stream, as established.
    pub established: Vec<(u16, String)>,
}

/// What one stream saw, from its `T` line.
#[derive(Debug, Clone, Default)]
pub struct StreamReport {
    pub port: u16,
    pub first: String,
    pub last: String,
    pub changes: u64,
    pub replies: u64,
    pub max_gap_us: u64,
    pub gap_from_us: u64,
    pub last_reply_us: u64,
    /// `-` when the stream ran to its end.
    pub error: String,
}

impl StreamReport {
    /// Ran to its end on the real server it started on.
    pub fn unbroken(&self) -> bool {
        self.error == "-" && self.changes == 0
    }
}

impl Streams {
    /// Waits for the streams to end; one report per stream.
    pub fn finish(mut self) -> Vec<StreamReport> {
        let mut reports = Vec::new();
        for line in self.lines.by_ref().map_while(Result::ok) {
            let mut words = line.split_whitespace();
            if words.next() != Some("T") {
                continue;
            }
            let fields: BTreeMap<&str, &str> =
                words.skip(1).filter_map(|w| w.split_once('=')).collect();
            let text = |k: &str| fields.get(k).copied().unwrap_or_default().to_owned();
            let num = |k: &str| fields.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
            reports.push(StreamReport {
                port: fields.get("port").and_then(|v| v.parse().ok()).unwrap_or(0),
                first: text("first"),
                last: text("last"),
                changes: num("changes"),
                replies: num("replies"),
                max_gap_us: num("max_gap_us"),
                gap_from_us: num("gap_from_us"),
                last_reply_us: num("last_reply_us"),
                error: text("error"),
            });
        }
        let status = self.child.0.wait().expect("wait for streams");
        let mut stderr = String::new();
        if let Some(mut e) = self.child.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        assert!(status.success(), "streams failed ({status}): {stderr}");
        reports
    }
}

/// One flow of `udp-flows`.
#[derive(Debug, Clone)]
pub struct UdpFlow {
    pub port: u16,
    pub answered: u64,
    /// Answers per real server.
    pub by: BTreeMap<String, u64>,
}

impl UdpFlow {
    fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        if words.next()? != "F" {
            return None;
        }
        let fields: BTreeMap<&str, &str> =
            words.skip(1).filter_map(|w| w.split_once('=')).collect();
        let by = match fields.get("by")? {
            &"-" => BTreeMap::new(),
            list => list
                .split(',')
                .filter_map(|p| {
                    let (k, v) = p.split_once(':')?;
                    Some((k.to_owned(), v.parse().ok()?))
                })
                .collect(),
        };
        Some(Self {
            port: fields.get("port")?.parse().ok()?,
            answered: fields.get("answered")?.parse().ok()?,
            by,
        })
    }
}

/// Pearson's chi-square statistic of `observed` counts against `expected` shares (which sum
/// to 1).
pub fn chi_square(observed: &[u64], expected: &[f64]) -> f64 {
    let total: u64 = observed.iter().sum();
    #[expect(clippy::cast_precision_loss, reason = "counts of a few thousand")]
    let total = total as f64;
    observed
        .iter()
        .zip(expected)
        .map(|(&o, &p)| {
            #[expect(clippy::cast_precision_loss, reason = "counts of a few thousand")]
            let o = o as f64;
            let e = total * p;
            (o - e) * (o - e) / e
        })
        .sum()
}

/// One virtual server of `vipflip status --json`.
#[derive(Debug, Clone, Default)]
pub struct VsStatus {
    pub name: String,
    /// `dr`, `ipip`, `gue port 6080`, … as status shows it.
    pub forward: String,
    pub active: bool,
    pub healthy: u64,
    pub table_len: u64,
    pub using_sorry: bool,
    pub reals: Vec<RealStatus>,
}

/// One real server (or the sorry server) of a [`VsStatus`].
#[derive(Debug, Clone, Default)]
pub struct RealStatus {
    pub address: String,
    pub sorry: bool,
    /// `up`, `down`, `unresolved` or `drained`.
    pub state: String,
    pub table_slots: u64,
}

/// The scalar after `"key": ` in a pretty-printed JSON object, without quotes.
fn json_value(chunk: &str, key: &str) -> Option<String> {
    let key = format!("\"{key}\": ");
    let at = chunk.find(&key)? + key.len();
    let value = chunk[at..].lines().next()?.trim().trim_end_matches(',');
    Some(value.trim_matches('"').to_owned())
}

/// What tracker `tracker` (`quorum of web`) does to its instance now (`-150`, `none`,
/// `fault`) in a `vipflip status --json` document: the first instance that shows it (the
/// scene runs one, `VI_1`).
pub fn tracker_effect(status: &str, tracker: &str) -> Option<String> {
    let at = status.find(&format!("\"tracker\": \"{tracker}\""))?;
    json_value(&status[at..], "effect")
}

/// The virtual servers of a `vipflip status --json` document, read by hand like the
/// instances (see `agent::parse_status`): after `"virtual_servers"`, each virtual server
/// starts with its `name` and each real server with its `address` (no other object there has
/// either).
fn parse_virtual_servers(status: &str) -> Vec<VsStatus> {
    let Some(at) = status.find("\"virtual_servers\"") else {
        return Vec::new();
    };
    status[at..]
        .split("\"name\": \"")
        .skip(1)
        .filter_map(|chunk| {
            let mut parts = chunk.split("\"address\": \"");
            let head = parts.next()?;
            let number = |c: &str, k| json_value(c, k).and_then(|v| v.parse().ok());
            let reals = parts
                .filter_map(|r| {
                    Some(RealStatus {
                        address: r.split('"').next()?.to_owned(),
                        sorry: json_value(r, "sorry")? == "true",
                        state: json_value(r, "state")?,
                        table_slots: number(r, "table_slots")?,
                    })
                })
                .collect();
            Some(VsStatus {
                name: head.split('"').next()?.to_owned(),
                forward: json_value(head, "forward").unwrap_or_default(),
                active: json_value(head, "active")? == "true",
                healthy: number(head, "healthy")?,
                table_len: number(head, "table_len")?,
                using_sorry: json_value(head, "using_sorry")? == "true",
                reals,
            })
        })
        .collect()
}
