//! Active-active directors behind BGP ECMP as a namespace scene ([`ScaleOut`]): a
//! [`BgpScene`] (an FRR edge router, directors on one bridge, a client behind the edge),
//! three Direct Routing real servers on the directors' segment, and on each director vipflip
//! with a virtual server on its interface, its FRR (the first director) or BIRD (the others)
//! configured by `vipflip routing-config`. Shared by `tests/scaleout.rs` and
//! `vipflip-bench-scaleout`.

use std::{
    fmt::Write as _,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::{
    BpfFs, KillOnDrop, Naming, Netns,
    agent::{self, Agent, vipflip},
    lb::{self, ECHO_PORT, HTTP_PORT, StreamReport, Streams, StreamsArgs},
    routing::{Bfd, BgpScene, Bird, Frr},
    scene::test_dir,
    veth, wait_for,
};

/// The VIP every director announces and serves.
pub const VIP: &str = "198.51.100.10";
/// The real servers' addresses (`rs1`, `rs2`, `rs3`).
pub const REALS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 21),
    Ipv4Addr::new(192, 0, 2, 22),
    Ipv4Addr::new(192, 0, 2, 23),
];

/// A real server on the directors' segment: the VIP on `lo`, HTTP and echo services, and its
/// replies straight to the client through the edge (Direct Routing).
pub struct RealServer {
    pub ns: Netns,
    /// Its HTTP and echo servers.
    pub services: Vec<KillOnDrop>,
}

/// A director's routing daemon.
enum Speaker {
    Frr(Frr),
    Bird(Bird),
}

impl Speaker {
    fn describe(&self) -> String {
        match self {
            Self::Frr(frr) => frr.describe(),
            Self::Bird(bird) => bird.describe(),
        }
    }
}

/// The scene, the real servers, and per director its agent and routing daemon. Dropped in
/// reverse: agents and routing daemons first, then the namespaces.
pub struct ScaleOut {
    speakers: Vec<Speaker>,
    pub agents: Vec<Agent>,
    pub reals: Vec<RealServer>,
    pub scene: BgpScene,
    dir: PathBuf,
    bpffs: BpfFs,
    options: Options,
}

/// What a [`ScaleOut`] is made of.
#[derive(Debug, Clone)]
pub struct Options {
    /// `vipflip-lb-probe`, whose path only the crate's test and binary targets know.
    pub lb_probe: PathBuf,
    /// Directors on the segment.
    pub directors: usize,
    /// Of those, how many run from the start (the others: [`ScaleOut::start_director`]).
    pub running: usize,
    /// BFD between the edge and each director; `None`: the BGP hold time alone.
    pub bfd: Option<Bfd>,
    /// The directors' BGP hold time in seconds (`[routing.bgp] hold_time`).
    pub hold_time: Option<u16>,
    /// Unique names (tests), or fixed ones under a prefix with the files and pins under
    /// `/run/<prefix>/` (the live lab, which a later run must find to clean up).
    pub naming: Naming,
}

impl Options {
    /// Two directors, both running, BFD at 50 ms × 3.
    pub fn two(lb_probe: &str) -> Self {
        Self {
            lb_probe: PathBuf::from(lb_probe),
            directors: 2,
            running: 2,
            bfd: Some(Bfd::FAST),
            hold_time: None,
            naming: Naming::Unique,
        }
    }
}

impl Drop for ScaleOut {
    fn drop(&mut self) {
        self.agents.clear();
        self.speakers.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Director `d`'s vipflip configuration: the web service on `eth0` over the three real
/// servers, announced while it has its quorum, BGP to the edge with the options' BFD and
/// hold time.
fn director_config(
    scene: &BgpScene,
    d: usize,
    pins: &Path,
    dir: &Path,
    options: &Options,
) -> String {
    let me = &scene.directors[d];
    let mut reals = String::new();
    for address in REALS {
        let _ = write!(
            reals,
            "[[virtual_server.real_server]]\naddress = \"{address}\"\n\
             check = {{ kind = \"tcp\", port = 7000, interval = \"200ms\", timeout = \"150ms\", fall = 2 }}\n"
        );
    }
    format!(
        "{}[routing]\ntable = 200\ndrain_quiet = \"700ms\"\n\
         bgp = {{ asn = {asn}, router_id = \"{id}\", neighbors = [{{ address = \"{edge}\", asn = 65000 }}]{bfd}{hold} }}\n\n\
         [[virtual_server]]\nname = \"web\"\nvip = \"{VIP}\"\nport = 0\ninterface = \"eth0\"\nquorum = 2\n{reals}\n\
         [[announce]]\nvip = \"{VIP}\"\nwhen = \"quorum\"\n",
        agent::global(&format!("d{}", d + 1), pins, dir),
        asn = me.asn,
        id = me.address,
        edge = BgpScene::EDGE,
        bfd = options.bfd.map_or(String::new(), |b| format!(
            ", bfd = {{ interval = \"{}ms\", multiplier = {} }}",
            b.interval.as_millis(),
            b.multiplier
        )),
        hold = options
            .hold_time
            .map_or(String::new(), |h| format!(", hold_time = \"{h}s\"")),
    )
}

/// `vipflip routing-config --frr` (or `--bird`) for a configuration file.
fn routing_config(config: &Path, daemon: &str) -> String {
    let out = Command::new(vipflip())
        .args(["routing-config", daemon, "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Turns transmit checksum offload off: veth hands TCP with a partial checksum, which a
/// frame sent on by `XDP_TX` would carry to the real server unfinished.
fn no_tx_offload(ns: &Netns, iface: &str) {
    let out = ns
        .command("ethtool")
        .args(["-K", iface, "tx", "off"])
        .output()
        .expect("run ethtool");
    assert!(out.status.success(), "ethtool -K {iface} tx off");
}

impl ScaleOut {
    /// The scene of `options`, once the edge has every running director for the VIP.
    pub fn start(options: Options) -> Self {
        let (bpffs, dir) = match options.naming {
            Naming::Unique => (BpfFs::new(), test_dir("vipflip-scaleout-")),
            Naming::Fixed(prefix) => {
                let dir = PathBuf::from(format!("/run/{prefix}"));
                std::fs::create_dir_all(&dir).expect("the scene's directory");
                (BpfFs::at(dir.join("bpffs")), dir)
            }
        };
        let scene = BgpScene::build(options.directors, options.bfd, options.naming);
        let lb_probe = options.lb_probe.to_str().expect("UTF-8 path").to_owned();
        no_tx_offload(&scene.client, "eth0");
        no_tx_offload(&scene.edge, "eth0");
        no_tx_offload(&scene.edge, "eth1");
        let reals = REALS
            .iter()
            .enumerate()
            .map(|(i, address)| {
                let name = format!("rs{}", i + 1);
                let ns = match options.naming {
                    Naming::Unique => Netns::new(&format!("vfr{}-", i + 1)),
                    Naming::Fixed(prefix) => Netns::named(format!("{prefix}-rs{}", i + 1)),
                };
                veth(&ns, "eth0", &scene.switch, &name);
                scene.switch.ip(&["link", "set", &name, "master", "br0"]);
                ns.ip(&["addr", "add", &format!("{address}/26"), "dev", "eth0"]);
                ns.ip(&[
                    "route",
                    "add",
                    "default",
                    "via",
                    &BgpScene::EDGE.to_string(),
                ]);
                no_tx_offload(&ns, "eth0");
                lb::make_real_server(&ns, VIP);
                let services = vec![
                    lb::serve(&lb_probe, &ns, "http-serve", HTTP_PORT, &name),
                    lb::serve(&lb_probe, &ns, "echo-serve", ECHO_PORT, &name),
                ];
                assert!(
                    wait_for(Duration::from_secs(5), || lb::listening(&ns, HTTP_PORT)
                        && lb::listening(&ns, ECHO_PORT)),
                    "{name} never listened"
                );
                RealServer { ns, services }
            })
            .collect();
        // XDP_TX on a director's veth is delivered only if the switch's end runs XDP too.
        for d in &scene.directors {
            let pass = scene
                .switch
                .command(vipflip().to_str().unwrap())
                .args(["load-pass", "--iface", &d.port, "--pin-dir"])
                .arg(bpffs.path())
                .output()
                .unwrap();
            assert!(
                pass.status.success(),
                "{}",
                String::from_utf8_lossy(&pass.stderr)
            );
            no_tx_offload(&d.ns, "eth0");
        }
        let running = options.running;
        let mut world = Self {
            speakers: Vec::new(),
            agents: Vec::new(),
            reals,
            scene,
            dir,
            bpffs,
            options,
        };
        for d in 0..running {
            world.start_director(d);
        }
        world.await_directors(running);
        world
    }

    /// Starts director `d`'s agent and routing daemon: FRR for the first, BIRD for the
    /// others, each configured by `vipflip routing-config`.
    pub fn start_director(&mut self, d: usize) {
        let text = director_config(&self.scene, d, self.bpffs.path(), &self.dir, &self.options);
        let id = format!("d{}", d + 1);
        let ns = &self.scene.directors[d].ns;
        self.agents
            .push(Agent::start(ns, &self.dir, &id, &text, "info"));
        let config = self.dir.join(format!("{id}.toml"));
        self.speakers.push(if d == 0 {
            Speaker::Frr(Frr::start(ns, &routing_config(&config, "--frr")))
        } else {
            Speaker::Bird(Bird::start(ns, &routing_config(&config, "--bird")))
        });
    }

    /// Waits until the edge has `n` directors for the VIP, and keeps them for a second (FRR
    /// resets a session once when BFD first comes up).
    pub fn await_directors(&self, n: usize) -> Duration {
        let took = self
            .scene
            .wait_edge_nexthops(VIP, n, Duration::from_secs(30));
        assert!(
            took.is_some(),
            "the edge never got {n} directors for {VIP}:\n{}\n{}",
            self.scene.describe(),
            self.logs()
        );
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            self.scene
                .wait_edge_nexthops(VIP, n, Duration::from_secs(15))
                .is_some(),
            "{}",
            self.scene.describe()
        );
        took.unwrap()
    }

    /// `count` long-lived streams from the client to the echo service for `duration_ms`, a
    /// line every 100 ms each (a reply later than 2 s breaks one), once they are all open.
    pub fn streams(&self, count: u32, duration_ms: u32) -> Streams {
        lb::start_streams(
            self.options.lb_probe.to_str().expect("UTF-8 path"),
            &self.scene.client,
            VIP,
            &StreamsArgs {
                count,
                interval_ms: 100,
                duration_ms,
                timeout_ms: Some(2000),
            },
        )
    }

    /// The agents' logs and the directors' routing daemons, for failure messages.
    pub fn logs(&self) -> String {
        self.agents
            .iter()
            .map(Agent::log)
            .chain(self.speakers.iter().map(Speaker::describe))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// The frames director `d`'s XDP program sent on to a real server.
    pub fn forwarded(&self, d: usize) -> u64 {
        let pins = self.bpffs.path().join(format!("d{}", d + 1));
        let out = self.scene.directors[d]
            .ns
            .command(vipflip().to_str().unwrap())
            .args(["maps", "--iface", "eth0", "--pin-dir"])
            .arg(&pins)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.trim().strip_prefix("lb_forward_tx"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// The streams that failed or left the real server they started on.
pub fn broken(reports: &[StreamReport]) -> Vec<&StreamReport> {
    reports.iter().filter(|r| !r.unbroken()).collect()
}
