//! `vipflip run` on a lab of routers and a client: election, hard failover, planned handoff,
//! as the client sees them through a 1 ms prober. Needs root.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use vipflip_integration_tests::{
    KillOnDrop as Proc, Lab, root_or_skip, serial, summary_number as field, unique, vipflip_bin,
    wait_for,
};

const PROBE: &str = env!("CARGO_BIN_EXE_vipflip-probe");
const VIP: &str = "192.0.2.100";

/// A vipflip agent on one lab router.
struct Agent {
    proc: Proc,
    socket: PathBuf,
    log: PathBuf,
}

impl Agent {
    /// The agent's log so far (for failure messages).
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `vipflip status --json` of this agent, as text.
    fn status(&self) -> String {
        let out = Command::new(vipflip_bin())
            .args(["status", "--json", "--control-socket"])
            .arg(&self.socket)
            .output()
            .expect("run vipflip status");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends `signal` to the agent process.
    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.proc.0.id()).expect("pid fits");
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {pid}");
    }

    /// Waits for the agent to exit; true if it did within `timeout`.
    fn exited(&mut self, timeout: Duration) -> bool {
        wait_for(timeout, || self.proc.0.try_wait().ok().flatten().is_some())
    }

    /// A counter from `vipflip status --json`.
    fn number(&self, name: &str) -> u64 {
        let status = self.status();
        let key = format!("\"{name}\": ");
        let at = status
            .find(&key)
            .unwrap_or_else(|| panic!("{name} in {status}"))
            + key.len();
        status[at..]
            .split([',', '\n'])
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn state(&self) -> Option<String> {
        let status = self.status();
        let at = status.find("\"state\": \"")? + "\"state\": \"".len();
        Some(status[at..].split('"').next()?.to_owned())
    }
}

struct Scene {
    lab: Lab,
    /// The VIP, without prefix.
    vip: String,
    dir: PathBuf,
    agents: Vec<Agent>,
    _responders: Vec<Proc>,
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What every router's `[[instance]]` gets besides its priority.
struct Setup<'a> {
    interval: &'a str,
    /// The VIP with its prefix, e.g. `192.0.2.100/24`.
    vip: &'a str,
    /// More lines for router `i`'s instance.
    extra: &'a dyn Fn(&Lab, usize) -> String,
}

const DEFAULT: Setup<'static> = Setup {
    interval: "100ms",
    vip: "192.0.2.100/24",
    extra: &|_, _| String::new(),
};

fn config(lab: &Lab, router: usize, priority: u8, setup: &Setup<'_>, dir: &Path) -> String {
    let host = &lab.routers[router];
    format!(
        r#"[global]
router_id = "r{n}"
pin_dir = "{pins}/r{n}"
control_socket = "{dir}/r{n}.sock"

[[instance]]
name = "VI_1"
interface = "{iface}"
vrid = 51
priority = {priority}
advert_interval = "{interval}"
virtual_ips = ["{vip}"]
garp = {{ repeat = 2, interval = "0ms", delay = "0s", refresh = "0s" }}
{extra}
"#,
        n = router + 1,
        pins = lab.bpffs.path().display(),
        dir = dir.display(),
        iface = host.iface,
        interval = setup.interval,
        vip = setup.vip,
        extra = (setup.extra)(lab, router),
    )
}

/// A lab with `priorities.len()` routers, each running vipflip at that priority with 100 ms
/// adverts for `192.0.2.100`, and a probe responder on each.
fn scene(priorities: &[u8]) -> Scene {
    scene_with(priorities, &DEFAULT)
}

fn scene_with(priorities: &[u8], setup: &Setup<'_>) -> Scene {
    let lab = Lab::new(priorities.len());
    let dir = std::env::temp_dir().join(unique("vipflip-daemon-"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut agents = Vec::new();
    let mut responders = Vec::new();
    for (router, priority) in priorities.iter().enumerate() {
        let path = dir.join(format!("r{}.toml", router + 1));
        std::fs::write(&path, config(&lab, router, *priority, setup, &dir)).unwrap();
        let log = dir.join(format!("r{}.log", router + 1));
        let child = spawn_agent(&lab, router, &path, &log);
        agents.push(Agent {
            proc: Proc(child),
            socket: dir.join(format!("r{}.sock", router + 1)),
            log,
        });
        let responder = lab.routers[router]
            .ns
            .command(PROBE)
            .args([
                "serve",
                "--port",
                "7777",
                "--name",
                &format!("r{}", router + 1),
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn vipflip-probe serve");
        responders.push(Proc(responder));
    }
    let vip = setup.vip.split('/').next().unwrap_or(setup.vip).to_owned();
    Scene {
        lab,
        dir,
        agents,
        vip,
        _responders: responders,
    }
}

fn spawn_agent(lab: &Lab, router: usize, config: &Path, log: &Path) -> Child {
    lab.routers[router]
        .ns
        .command(vipflip_bin().to_str().unwrap())
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .expect("spawn vipflip run")
}

/// Waits until router `master` is Master and every other is Backup.
fn await_roles(scene: &Scene, master: usize, timeout: Duration) {
    let ok = wait_for(timeout, || {
        scene.agents.iter().enumerate().all(|(i, a)| {
            a.state().as_deref() == Some(if i == master { "Master" } else { "Backup" })
        })
    });
    if !ok {
        let states: Vec<String> = scene
            .agents
            .iter()
            .map(|a| format!("{:?}", a.state()))
            .collect();
        let logs: Vec<String> = scene.agents.iter().map(Agent::log).collect();
        panic!(
            "router {} never became the only master: states {states:?}\nlogs:\n{}",
            master + 1,
            logs.join("\n----\n")
        );
    }
}

/// Starts the client's prober for `duration_ms` in the background.
fn start_probe(scene: &Scene, duration_ms: u32) -> Child {
    scene
        .lab
        .client
        .ns
        .command(PROBE)
        .args([
            "probe",
            "--target",
            &scene.vip,
            "--port",
            "7777",
            "--interval-us",
            "1000",
        ])
        .args(["--duration-ms", &duration_ms.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn vipflip-probe probe")
}

fn finish_probe(child: Child) -> String {
    let out = child.wait_with_output().expect("wait for the prober");
    assert!(out.status.success(), "prober failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn election_then_hard_failover_within_master_down_interval() {
    if !root_or_skip("election_then_hard_failover_within_master_down_interval") {
        return;
    }
    let _serial = serial();
    let scene = scene(&[200, 100]);
    await_roles(&scene, 0, Duration::from_secs(10));
    assert!(
        scene.lab.client.ns.ping_once(VIP),
        "the VIP does not answer after the election"
    );

    // Probe for 3 s; cut the master's link after 1.5 s (the client's ARP entry is then old
    // enough to be replaced by the new master's gratuitous ARP).
    let probe = start_probe(&scene, 3000);
    std::thread::sleep(Duration::from_millis(1500));
    let cut = Instant::now();
    scene.lab.routers[0]
        .ns
        .ip(&["link", "set", &scene.lab.routers[0].iface, "down"]);
    let summary = finish_probe(probe);
    eprintln!(
        "hard failover, 100 ms adverts, seen by the client: {summary} (cut {:?} ago)",
        cut.elapsed()
    );
    await_roles_partial(&scene, 1);
    // Master_Down_Interval at priority 100, 100 ms: 3 × 100 ms + (256 − 100) × 100 ms / 256.
    let mdi_us = 300_000 + 156 * 100_000 / 256;
    let outage = field(&summary, "longest_outage_us");
    assert!(
        outage <= mdi_us + 20_000,
        "outage {outage} µs > Master_Down_Interval {mdi_us} µs + 20 ms: {summary}\nr2 log:\n{}",
        scene.agents[1].log()
    );
    assert!(summary.contains("\"r2\":"), "r2 never answered: {summary}");

    // The link comes back: r1 (priority 200) preempts r2, and the client keeps being served.
    let probe = start_probe(&scene, 2000);
    std::thread::sleep(Duration::from_millis(300));
    scene.lab.routers[0]
        .ns
        .ip(&["link", "set", &scene.lab.routers[0].iface, "up"]);
    let summary = finish_probe(probe);
    eprintln!("r1 back and preempting, seen by the client: {summary}");
    await_roles(&scene, 0, Duration::from_secs(5));
    assert!(
        summary.contains("\"r1\":"),
        "r1 never answered again: {summary}"
    );
    assert_eq!(
        field(&summary, "lost"),
        0,
        "probes lost when r1 preempted: {summary}"
    );
}

#[test]
fn a_killed_master_agent_is_replaced_within_master_down_interval() {
    if !root_or_skip("a_killed_master_agent_is_replaced_within_master_down_interval") {
        return;
    }
    let _serial = serial();
    let mut scene = scene(&[200, 100]);
    await_roles(&scene, 0, Duration::from_secs(10));
    // SIGKILL: no priority 0, no cleanup. r1's host keeps its XDP entry and the VIP, so the
    // client is served throughout; r2 must still take over on time.
    let killed = Instant::now();
    scene.agents[0].signal(libc::SIGKILL);
    assert!(scene.agents[0].exited(Duration::from_secs(5)));
    await_roles_partial(&scene, 1);
    let took = killed.elapsed();
    let mdi = Duration::from_micros(300_000 + 156 * 100_000 / 256);
    // Polled through `vipflip status` every 10 ms: allow that and the process start-up.
    assert!(
        took <= mdi + Duration::from_millis(150),
        "r2 took {took:?} (Master_Down_Interval {mdi:?})"
    );
    assert!(
        scene.lab.client.ns.ping_once(&scene.vip),
        "the VIP does not answer after the takeover"
    );
}

#[test]
fn keep_dataplane_leaves_the_xdp_program_in_place() {
    if !root_or_skip("keep_dataplane_leaves_the_xdp_program_in_place") {
        return;
    }
    let _serial = serial();
    let mut scene = scene(&[200]);
    await_roles(&scene, 0, Duration::from_secs(10));
    scene.agents[0].signal(libc::SIGTERM);
    assert!(
        scene.agents[0].exited(Duration::from_secs(10)),
        "{}",
        scene.agents[0].log()
    );
    let r1 = &scene.lab.routers[0];
    let link = r1.ns.ip(&["link", "show", &r1.iface]);
    assert!(
        !String::from_utf8_lossy(&link.stdout).contains("prog/xdp"),
        "plain stop left XDP attached"
    );

    // Again, with --keep-dataplane.
    let config = scene.dir.join("r1.toml");
    let child = r1
        .ns
        .command(vipflip_bin().to_str().unwrap())
        .args(["run", "--keep-dataplane", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    scene.agents[0].proc = Proc(child);
    await_roles(&scene, 0, Duration::from_secs(10));
    scene.agents[0].signal(libc::SIGTERM);
    assert!(scene.agents[0].exited(Duration::from_secs(10)));
    let link = r1.ns.ip(&["link", "show", &r1.iface]);
    assert!(
        String::from_utf8_lossy(&link.stdout).contains("prog/xdp"),
        "--keep-dataplane detached XDP"
    );
    assert!(
        scene
            .lab
            .bpffs
            .path()
            .join("r1")
            .join(&r1.iface)
            .join("VIPS")
            .exists(),
        "pins removed"
    );
    // No daemon answers now: `status` says so and shows what the pins hold.
    let out = Command::new(vipflip_bin())
        .args(["status", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("no vipflip daemon answers on"), "{text}");
    // A lone master that stops hands off to nobody, so it ends dropping the VIP's traffic.
    assert!(
        text.contains("192.0.2.100") && text.contains("drop (vrid 51)"),
        "{text}"
    );
}

/// Only router `master`'s agent is checked (the other may be cut off).
fn await_roles_partial(scene: &Scene, master: usize) {
    let ok = wait_for(Duration::from_secs(5), || {
        scene.agents[master].state().as_deref() == Some("Master")
    });
    assert!(
        ok,
        "router {} is not master: {}",
        master + 1,
        scene.agents[master].log()
    );
}

#[test]
fn planned_handoff_loses_no_probe() {
    if !root_or_skip("planned_handoff_loses_no_probe") {
        return;
    }
    let _serial = serial();
    let scene = scene(&[200, 100]);
    await_roles(&scene, 0, Duration::from_secs(10));
    assert!(
        scene.lab.client.ns.ping_once(VIP),
        "the VIP does not answer after the election"
    );

    let probe = start_probe(&scene, 2500);
    std::thread::sleep(Duration::from_secs(1));
    let out = Command::new(vipflip_bin())
        .args(["handoff", "VI_1", "--control-socket"])
        .arg(&scene.agents[0].socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vipflip handoff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = finish_probe(probe);
    eprintln!("planned handoff, seen by the client: {summary}");
    await_roles(&scene, 1, Duration::from_secs(5));
    assert_eq!(
        field(&summary, "lost"),
        0,
        "probes lost during a planned handoff: {summary}\nr1 log:\n{}\nr2 log:\n{}",
        scene.agents[0].log(),
        scene.agents[1].log()
    );
    assert!(summary.contains("\"r2\":"), "r2 never answered: {summary}");
}

#[test]
fn sigterm_hands_off_without_losing_a_probe() {
    if !root_or_skip("sigterm_hands_off_without_losing_a_probe") {
        return;
    }
    let _serial = serial();
    let mut scene = scene_with(
        &[200, 100],
        &Setup {
            extra: &|_, _| "forward_window = \"1s\"".into(),
            ..DEFAULT
        },
    );
    await_roles(&scene, 0, Duration::from_secs(10));
    let probe = start_probe(&scene, 3000);
    std::thread::sleep(Duration::from_secs(1));
    scene.agents[0].signal(libc::SIGTERM);
    let summary = finish_probe(probe);
    eprintln!("SIGTERM on the master, seen by the client: {summary}");
    assert!(
        scene.agents[0].exited(Duration::from_secs(10)),
        "r1 did not exit: {}",
        scene.agents[0].log()
    );
    assert_eq!(
        scene.agents[1].state().as_deref(),
        Some("Master"),
        "{}",
        scene.agents[1].log()
    );
    assert_eq!(
        field(&summary, "lost"),
        0,
        "probes lost on SIGTERM: {summary}\nr1 log:\n{}",
        scene.agents[0].log()
    );
    // The data plane is gone with the daemon (no --keep-dataplane).
    let link = scene.lab.routers[0]
        .ns
        .ip(&["link", "show", &scene.lab.routers[0].iface]);
    assert!(
        !String::from_utf8_lossy(&link.stdout).contains("prog/xdp"),
        "XDP left attached"
    );
}

#[test]
fn spoofed_adverts_are_dropped_in_xdp_and_change_nothing() {
    if !root_or_skip("spoofed_adverts_are_dropped_in_xdp_and_change_nothing") {
        return;
    }
    let _serial = serial();
    let allowed = |_: &Lab, _| "allowed_peers = [\"192.0.2.1\", \"192.0.2.2\"]".to_owned();
    let scene = scene_with(
        &[200, 100],
        &Setup {
            extra: &allowed,
            ..DEFAULT
        },
    );
    await_roles(&scene, 0, Duration::from_secs(10));
    let client = &scene.lab.client;
    client
        .ns
        .ip(&["route", "add", "224.0.0.0/4", "dev", &client.iface]);
    let before: Vec<(u64, u64)> = scene
        .agents
        .iter()
        .map(|a| (a.number("transitions"), a.number("xdp_adverts_dropped")))
        .collect();
    for (src, ttl) in [("192.0.2.1", "64"), ("192.0.2.200", "255")] {
        let out = client
            .ns
            .command(PROBE)
            .args([
                "advert",
                "--src",
                src,
                "--ttl",
                ttl,
                "--vrid",
                "51",
                "--priority",
                "255",
                "--count",
                "20",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "forging adverts: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    await_roles(&scene, 0, Duration::from_secs(1));
    for (agent, (transitions, dropped)) in scene.agents.iter().zip(before) {
        assert_eq!(
            agent.number("transitions"),
            transitions,
            "a spoofed advert caused a transition"
        );
        assert!(
            agent.number("xdp_adverts_dropped") >= dropped + 40,
            "XDP did not drop the 40 forged adverts: {}",
            agent.status()
        );
    }
    let maps = Command::new(vipflip_bin())
        .args(["maps", "--pin-dir"])
        .arg(scene.lab.bpffs.path().join("r2"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&maps.stdout);
    assert!(
        text.contains("bad_ttl") && text.contains("peer_not_allowed"),
        "drop reasons not counted: {text}"
    );
}

#[test]
fn a_restarted_agent_keeps_the_traffic_flowing() {
    if !root_or_skip("a_restarted_agent_keeps_the_traffic_flowing") {
        return;
    }
    let _serial = serial();
    let mut scene = scene(&[200, 100]);
    await_roles(&scene, 0, Duration::from_secs(10));
    let probe = start_probe(&scene, 3000);
    std::thread::sleep(Duration::from_secs(1));
    // SIGKILL: nothing is cleaned up; the pinned XDP program and the VIP stay in place.
    scene.agents[0].signal(libc::SIGKILL);
    assert!(scene.agents[0].exited(Duration::from_secs(5)));
    let config = scene.dir.join("r1.toml");
    let child = spawn_agent(&scene.lab, 0, &config, &scene.agents[0].log);
    scene.agents[0].proc = Proc(child);
    let summary = finish_probe(probe);
    eprintln!("master restarted, seen by the client: {summary}");
    await_roles(&scene, 0, Duration::from_secs(5));
    assert!(
        scene.agents[0]
            .log()
            .contains("re-opened the pinned XDP data plane"),
        "{}",
        scene.agents[0].log()
    );
    assert_eq!(
        field(&summary, "lost"),
        0,
        "probes lost across a restart: {summary}\nr1 log:\n{}",
        scene.agents[0].log()
    );
}

/// The client's ARP entry for the VIP is pinned to the old master (as a host that ignores
/// gratuitous ARP would keep it): after a handoff the old master forwards on the wire.
#[test]
fn a_client_with_a_stale_arp_entry_is_served_through_the_old_master() {
    if !root_or_skip("a_client_with_a_stale_arp_entry_is_served_through_the_old_master") {
        return;
    }
    let _serial = serial();
    let scene = scene(&[200, 100]);
    await_roles(&scene, 0, Duration::from_secs(10));
    let client = &scene.lab.client;
    let r1 = &scene.lab.routers[0];
    let mac = r1
        .ns
        .mac(&r1.iface)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    client.ns.ip(&[
        "neigh",
        "replace",
        &scene.vip,
        "lladdr",
        &mac,
        "dev",
        &client.iface,
        "nud",
        "permanent",
    ]);
    let out = Command::new(vipflip_bin())
        .args(["handoff", "VI_1", "--control-socket"])
        .arg(&scene.agents[0].socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vipflip handoff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    await_roles(&scene, 1, Duration::from_secs(5));
    // Well inside the default 5 s forward window.
    let summary = finish_probe(start_probe(&scene, 1000));
    eprintln!("stale ARP entry after a handoff, seen by the client: {summary}");
    assert_eq!(
        field(&summary, "lost"),
        0,
        "{summary}\nr1 log:\n{}",
        scene.agents[0].log()
    );
    assert_eq!(field(&summary, "received"), 1000);
    assert!(
        summary.contains("\"r2\":1000"),
        "the new master did not answer every probe: {summary}"
    );
    let status = scene.agents[0].status();
    assert!(
        status.contains("forward (vrid 51)"),
        "r1's status does not show the forward: {status}"
    );
}

#[test]
fn ipv6_vip_fails_over() {
    if !root_or_skip("ipv6_vip_fails_over") {
        return;
    }
    let _serial = serial();
    let scene = scene_with(
        &[200, 100],
        &Setup {
            vip: "2001:db8::100/64",
            ..DEFAULT
        },
    );
    await_roles(&scene, 0, Duration::from_secs(10));
    assert!(
        scene.lab.client.ns.ping_once(&scene.vip),
        "the IPv6 VIP does not answer"
    );
    let probe = start_probe(&scene, 3000);
    std::thread::sleep(Duration::from_millis(1500));
    scene.lab.routers[0]
        .ns
        .ip(&["link", "set", &scene.lab.routers[0].iface, "down"]);
    let summary = finish_probe(probe);
    eprintln!("IPv6 hard failover, seen by the client: {summary}");
    await_roles_partial(&scene, 1);
    let mdi_us = 300_000 + 156 * 100_000 / 256;
    let outage = field(&summary, "longest_outage_us");
    assert!(
        outage <= mdi_us + 20_000,
        "outage {outage} µs: {summary}\nr2 log:\n{}",
        scene.agents[1].log()
    );
    assert!(summary.contains("\"r2\":"), "r2 never answered: {summary}");
}

#[test]
fn unicast_peers_elect_and_fail_over() {
    if !root_or_skip("unicast_peers_elect_and_fail_over") {
        return;
    }
    let _serial = serial();
    let peers = |lab: &Lab, router: usize| {
        let other = &lab.routers[1 - router];
        format!("unicast_peers = [\"{}\"]", other.ipv4)
    };
    let scene = scene_with(
        &[200, 100],
        &Setup {
            extra: &peers,
            ..DEFAULT
        },
    );
    await_roles(&scene, 0, Duration::from_secs(10));
    let probe = start_probe(&scene, 3000);
    std::thread::sleep(Duration::from_millis(1500));
    scene.lab.routers[0]
        .ns
        .ip(&["link", "set", &scene.lab.routers[0].iface, "down"]);
    let summary = finish_probe(probe);
    eprintln!("unicast hard failover, seen by the client: {summary}");
    await_roles_partial(&scene, 1);
    assert!(summary.contains("\"r2\":"), "r2 never answered: {summary}");
    let mdi_us = 300_000 + 156 * 100_000 / 256;
    assert!(
        field(&summary, "longest_outage_us") <= mdi_us + 20_000,
        "{summary}"
    );
}

#[test]
fn an_instance_on_a_missing_interface_is_in_fault_and_the_rest_runs() {
    if !root_or_skip("an_instance_on_a_missing_interface_is_in_fault_and_the_rest_runs") {
        return;
    }
    let _serial = serial();
    let missing = |_: &Lab, _| {
        "\n[[instance]]\nname = \"VI_GONE\"\ninterface = \"vfnothere0\"\nvrid = 52\nvirtual_ips = [\"192.0.2.150/24\"]\n".to_owned()
    };
    let scene = scene_with(
        &[200],
        &Setup {
            extra: &missing,
            ..DEFAULT
        },
    );
    let ok = wait_for(Duration::from_secs(10), || {
        let status = scene.agents[0].status();
        status.contains("\"name\": \"VI_1\"")
            && status.contains("\"state\": \"Master\"")
            && status.contains("\"state\": \"Fault\"")
    });
    assert!(
        ok,
        "status: {}\nlog:\n{}",
        scene.agents[0].status(),
        scene.agents[0].log()
    );
}
