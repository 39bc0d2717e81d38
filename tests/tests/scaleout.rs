//! Active-active directors behind BGP ECMP, as a client sees them: two directors run vipflip
//! with a virtual server on their interface (live whenever the agent runs), the first with FRR
//! configured by `vipflip routing-config --frr`, the second with BIRD by `--bird`; an FRR edge
//! router spreads the client's connections over them. New connections spread over both; a drained director hands its long-lived streams
//! to the other without a reset, each stream kept on its real server (both directors choose
//! alike); the announcement follows the virtual server's quorum. Needs root.

use std::{
    fmt::Write as _,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use vipflip_integration_tests::{
    BpfFs, KillOnDrop, Netns,
    agent::{self, Agent, vipflip},
    lb::{self, ECHO_PORT, HTTP_PORT},
    routing::{Bfd, BgpScene, Bird, Frr},
    scene::test_dir,
    serial, veth, wait_for,
};

const LB_PROBE: &str = env!("CARGO_BIN_EXE_vipflip-lb-probe");
const VIP: &str = "198.51.100.10";
const REALS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 21),
    Ipv4Addr::new(192, 0, 2, 22),
    Ipv4Addr::new(192, 0, 2, 23),
];

/// A real server on the directors' segment: the VIP on `lo`, HTTP and echo services, and its
/// replies straight to the client through the edge (Direct Routing).
struct RealServer {
    ns: Netns,
    /// Its HTTP and echo servers.
    services: Vec<KillOnDrop>,
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
struct ScaleOut {
    speakers: Vec<Speaker>,
    agents: Vec<Agent>,
    reals: Vec<RealServer>,
    scene: BgpScene,
    dir: PathBuf,
    bpffs: BpfFs,
}

impl Drop for ScaleOut {
    fn drop(&mut self) {
        self.agents.clear();
        self.speakers.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Director `d`'s vipflip configuration: the web service on `eth0` over the three real
/// servers, announced while it has its quorum, BGP to the edge with BFD at 50 ms × 3.
fn director_config(scene: &BgpScene, d: usize, pins: &Path, dir: &Path) -> String {
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
         bgp = {{ asn = {asn}, router_id = \"{id}\", neighbors = [{{ address = \"{edge}\", asn = 65000 }}], \
         bfd = {{ interval = \"50ms\", multiplier = 3 }} }}\n\n\
         [[virtual_server]]\nname = \"web\"\nvip = \"{VIP}\"\nport = 0\ninterface = \"eth0\"\nquorum = 2\n{reals}\n\
         [[announce]]\nvip = \"{VIP}\"\nwhen = \"quorum\"\n",
        agent::global(&format!("d{}", d + 1), pins, dir),
        asn = me.asn,
        id = me.address,
        edge = BgpScene::EDGE,
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

/// Two directors running, once the edge has both for the VIP.
fn start() -> ScaleOut {
    start_some(2, 2)
}

/// `directors` directors on the segment, the first `running` of them running vipflip and
/// their routing daemon, once the edge has them all for the VIP.
fn start_some(directors: usize, running: usize) -> ScaleOut {
    let bpffs = BpfFs::new();
    let scene = BgpScene::new(directors, Some(Bfd::FAST));
    let dir = test_dir("vipflip-scaleout-");
    no_tx_offload(&scene.client, "eth0");
    no_tx_offload(&scene.edge, "eth0");
    no_tx_offload(&scene.edge, "eth1");
    let reals = REALS
        .iter()
        .enumerate()
        .map(|(i, address)| {
            let name = format!("rs{}", i + 1);
            let ns = Netns::new(&format!("vfr{}-", i + 1));
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
                lb::serve(LB_PROBE, &ns, "http-serve", HTTP_PORT, &name),
                lb::serve(LB_PROBE, &ns, "echo-serve", ECHO_PORT, &name),
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
    let mut world = ScaleOut {
        speakers: Vec::new(),
        agents: Vec::new(),
        reals,
        scene,
        dir,
        bpffs,
    };
    for d in 0..running {
        world.start_director(d);
    }
    world.await_directors(running);
    world
}

impl ScaleOut {
    /// Starts director `d`'s agent and routing daemon: FRR for the first, BIRD for the
    /// others, each configured by `vipflip routing-config`.
    fn start_director(&mut self, d: usize) {
        let text = director_config(&self.scene, d, self.bpffs.path(), &self.dir);
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
    fn await_directors(&self, n: usize) -> Duration {
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
    /// line every 100 ms each, once they are all open.
    fn streams(&self, count: usize, duration_ms: u64) -> Streams {
        let mut child = self
            .scene
            .client
            .command(LB_PROBE)
            .args(["streams", "--target", VIP, "--port", &ECHO_PORT.to_string()])
            .args(["--count", &count.to_string(), "--interval-ms", "100"])
            .args([
                "--duration-ms",
                &duration_ms.to_string(),
                "--timeout-ms",
                "2000",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut opened = String::new();
        loop {
            let mut line = String::new();
            let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
            assert!(n > 0, "the streams never opened:\n{opened}");
            if line.trim() == "READY" {
                break;
            }
            opened.push_str(&line);
        }
        Streams {
            child,
            stdout,
            count,
        }
    }

    /// The agents' logs and the directors' routing daemons, for failure messages.
    fn logs(&self) -> String {
        self.agents
            .iter()
            .map(Agent::log)
            .chain(self.speakers.iter().map(Speaker::describe))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// The frames director `d`'s XDP program sent on to a real server.
    fn forwarded(&self, d: usize) -> u64 {
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

/// Running streams (see [`ScaleOut::streams`]).
struct Streams {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    count: usize,
}

impl Streams {
    /// Each stream's closing line: `T I port=P first=NAME last=NAME changes=N … error=…`.
    fn finish(mut self) -> Vec<String> {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        let _ = self.child.wait();
        let results: Vec<String> = rest
            .lines()
            .filter(|l| l.starts_with("T "))
            .map(str::to_owned)
            .collect();
        assert_eq!(results.len(), self.count, "{rest}");
        results
    }
}

/// `field=value` of a stream's closing line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or("")
}

/// The streams that failed or changed real server, as lines.
fn broken(results: &[String]) -> Vec<&String> {
    results
        .iter()
        .filter(|l| field(l, "error") != "-" || field(l, "changes") != "0")
        .collect()
}

#[test]
#[ignore = "needs root"]
fn new_connections_spread_over_the_directors_and_real_servers() {
    let _serial = serial();
    let world = start();
    let before = [world.forwarded(0), world.forwarded(1)];
    let run = lb::http_load(
        LB_PROBE,
        &world.scene.client,
        VIP,
        &["--requests", "400", "--parallel", "8"],
    );
    assert!(
        run.errors().is_empty(),
        "failed requests: {}\n{}",
        run.summary(),
        world.logs()
    );
    let forwarded = [
        world.forwarded(0) - before[0],
        world.forwarded(1) - before[1],
    ];
    let total = forwarded[0] + forwarded[1];
    eprintln!(
        "400 connections: frames forwarded by d1/d2 {forwarded:?}; {}",
        run.summary()
    );
    for (d, n) in forwarded.iter().enumerate() {
        #[expect(clippy::cast_precision_loss, reason = "frame counts far below 2^52")]
        let share = *n as f64 / total as f64;
        assert!(
            (0.375..=0.625).contains(&share),
            "director d{} took {:.0}% of the frames (want half ± 25%): {forwarded:?}",
            d + 1,
            share * 100.0
        );
    }
    assert_eq!(
        run.by_server().len(),
        3,
        "every real server answers: {}",
        run.summary()
    );
    // The directors agree, and `vipflip status` lets an operator see it.
    let fingerprints: Vec<String> = world
        .agents
        .iter()
        .map(|a| {
            let status = String::from_utf8_lossy(&a.cli(&["status"]).stdout).into_owned();
            status
                .split("fingerprint ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_else(|| panic!("no fingerprint in:\n{status}"))
                .to_owned()
        })
        .collect();
    assert_eq!(
        fingerprints[0], fingerprints[1],
        "the directors' tables differ"
    );
}

#[test]
#[ignore = "needs root"]
fn a_drained_director_hands_its_streams_over_without_a_reset() {
    let _serial = serial();
    let mut world = start();
    let streams = world.streams(200, 5000);
    std::thread::sleep(Duration::from_secs(1));
    let drain = world.agents[0].cli(&["drain"]);
    assert!(
        drain.status.success(),
        "{}",
        String::from_utf8_lossy(&drain.stderr)
    );
    let took = world
        .scene
        .wait_edge_nexthops(VIP, 1, Duration::from_secs(5));
    eprintln!("drain: the edge dropped d1 after {took:?}");
    assert!(took.is_some(), "{}", world.scene.describe());
    assert!(
        world.agents[0].exited(Duration::from_secs(10)),
        "d1 never stopped after its traffic moved:\n{}",
        world.agents[0].log()
    );
    let results = streams.finish();
    let broken = broken(&results);
    assert!(
        broken.is_empty(),
        "streams reset or moved to another real server when d1 drained:\n{broken:#?}\n{}",
        world.logs()
    );
}

#[test]
#[ignore = "needs root"]
fn a_director_cut_off_leaves_within_the_bfd_time_and_its_streams_carry_on() {
    let _serial = serial();
    let world = start();
    let streams = world.streams(200, 5000);
    std::thread::sleep(Duration::from_secs(1));
    // Its switch port stops forwarding: no carrier drops, only BFD can tell.
    world.scene.cut(0);
    let took = world
        .scene
        .wait_edge_nexthops(VIP, 1, Duration::from_secs(5));
    eprintln!("cut: the edge dropped d1 after {took:?} (BFD 50 ms x 3)");
    assert!(took.is_some(), "{}", world.scene.describe());
    let results = streams.finish();
    let broken = broken(&results);
    eprintln!(
        "cut: {} of 200 streams carried on, on their real server",
        200 - broken.len()
    );
    assert!(
        broken.is_empty(),
        "streams reset or moved when d1 was cut:\n{broken:#?}\n{}",
        world.logs()
    );
}

#[test]
#[ignore = "needs root"]
fn a_killed_agent_leaves_its_director_serving_without_a_lost_packet() {
    let _serial = serial();
    let mut world = start();
    let streams = world.streams(200, 4000);
    std::thread::sleep(Duration::from_secs(1));
    world.agents[0].signal(libc::SIGKILL);
    assert!(world.agents[0].exited(Duration::from_secs(5)));
    let results = streams.finish();
    assert_eq!(
        world.scene.edge_nexthops(VIP).len(),
        2,
        "SIGKILL must leave the route: the pinned program still serves"
    );
    let broken = broken(&results);
    assert!(broken.is_empty(), "{broken:#?}\n{}", world.logs());
    // A lost segment would wait for a retransmission: 200 ms at least.
    let slow: Vec<&String> = results
        .iter()
        .filter(|l| field(l, "max_gap_us").parse::<u64>().unwrap_or(u64::MAX) >= 200_000)
        .collect();
    assert!(
        slow.is_empty(),
        "streams waited for a retransmission:\n{slow:#?}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_director_joining_takes_streams_without_moving_them() {
    let _serial = serial();
    let mut world = start_some(3, 2);
    // Long enough for the third director (BIRD, connect retry 5 s) to take some of them.
    let streams = world.streams(200, 12_000);
    std::thread::sleep(Duration::from_millis(500));
    world.start_director(2);
    let took = world.await_directors(3);
    eprintln!("join: the edge had the third director after {took:?}");
    let before = world.forwarded(2);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        world.forwarded(2) > before,
        "d3 took none of the streams while they ran"
    );
    let results = streams.finish();
    let broken = broken(&results);
    assert!(
        broken.is_empty(),
        "streams reset or moved when d3 joined:\n{broken:#?}\n{}",
        world.logs()
    );
}

#[test]
#[ignore = "needs root"]
fn a_failed_real_server_moves_only_its_own_streams_on_every_director() {
    let _serial = serial();
    let mut world = start();
    let streams = world.streams(200, 4000);
    std::thread::sleep(Duration::from_secs(1));
    // rs2's echo service dies (its checks fail on both directors).
    world.reals[1].services.pop();
    let results = streams.finish();
    let (on_rs2, others): (Vec<&String>, Vec<&String>) =
        results.iter().partition(|l| field(l, "first") == "rs2");
    assert!(!on_rs2.is_empty(), "no stream on rs2: {results:#?}");
    let moved: Vec<&&String> = others
        .iter()
        .filter(|l| field(l, "error") != "-" || field(l, "changes") != "0")
        .collect();
    assert!(
        moved.is_empty(),
        "streams of the healthy real servers were disturbed:\n{moved:#?}"
    );
    for d in 0..2 {
        assert!(
            wait_for(Duration::from_secs(5), || {
                let status =
                    String::from_utf8_lossy(&world.agents[d].cli(&["status"]).stdout).into_owned();
                status
                    .lines()
                    .any(|l| l.contains("real server   192.0.2.22") && l.contains(": down ("))
            }),
            "d{} never saw rs2 down",
            d + 1
        );
    }
}

#[test]
#[ignore = "needs root"]
fn the_announcement_follows_the_quorum() {
    let _serial = serial();
    let world = start();
    // Two of three real servers stop answering: quorum 2 is lost on both directors.
    for real in &world.reals[..2] {
        real.ns.kill_all();
    }
    let took = world
        .scene
        .wait_edge_nexthops(VIP, 0, Duration::from_secs(10));
    eprintln!("quorum lost: the edge dropped the VIP after {took:?}");
    assert!(
        took.is_some(),
        "still announced without quorum:\n{}\n{}",
        world.scene.describe(),
        world.logs()
    );
    let status = String::from_utf8_lossy(&world.agents[0].cli(&["status"]).stdout).into_owned();
    assert!(
        status.contains(&format!(
            "announce {VIP}/32 when quorum: withdrawn in table 200 (virtual server web is not live or lacks its quorum)"
        )),
        "{status}"
    );
    // One comes back: quorum is met again, both directors announce again.
    let _back = lb::serve(LB_PROBE, &world.reals[0].ns, "echo-serve", ECHO_PORT, "rs1");
    let took = world
        .scene
        .wait_edge_nexthops(VIP, 2, Duration::from_secs(15));
    eprintln!("quorum met again: both directors back after {took:?}");
    assert!(
        took.is_some(),
        "{}\n{}",
        world.scene.describe(),
        world.logs()
    );
}
