//! `vipflip run` on a lab of routers and a client: election, hard failover, planned handoff,
//! as the client sees them through a 1 ms prober. Needs root.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use vipflip_integration_tests::{
    Lab,
    agent::{self, QUICK_GARP, vipflip},
    answered_by,
    scene::{MDI_US, Prober, Scene, test_dir},
    serial, summary_number as field, wait_for,
};

const PROBE: Prober = Prober(env!("CARGO_BIN_EXE_vipflip-probe"));
const VIP: &str = "192.0.2.100";

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

fn config(lab: &Lab, dir: &Path, router: usize, priority: u8, setup: &Setup<'_>) -> String {
    format!(
        "{}\n{}{QUICK_GARP}{}\n",
        agent::global(&format!("r{}", router + 1), lab.bpffs.path(), dir),
        agent::instance(
            "VI_1",
            &lab.routers[router].iface,
            51,
            priority,
            setup.interval,
            setup.vip
        ),
        (setup.extra)(lab, router),
    )
}

/// A lab with `priorities.len()` routers, each running vipflip at that priority with 100 ms
/// adverts for `192.0.2.100`, and a probe responder on each; once r1 is master.
fn scene(priorities: &[u8]) -> Scene {
    scene_with(priorities, &DEFAULT)
}

/// [`started`], once r1 is master.
fn scene_with(priorities: &[u8], setup: &Setup<'_>) -> Scene {
    let scene = started(priorities, setup);
    scene.await_master(0, Duration::from_secs(10));
    scene
}

/// A lab with `priorities.len()` routers, each running vipflip at that priority with `setup`,
/// and a probe responder on each.
fn started(priorities: &[u8], setup: &Setup<'_>) -> Scene {
    let lab = Lab::new(priorities.len());
    Scene::start(
        lab,
        test_dir("vipflip-daemon-"),
        PROBE,
        |lab, dir, router| config(lab, dir, router, priorities[router], setup),
    )
}

/// Only router `master`'s agent is checked (the other may be cut off).
fn await_master_alone(scene: &Scene, master: usize) {
    scene.await_states(&[(master, "VI_1", "Master")], Duration::from_secs(5));
}

/// Probes `vip` for 3 s and cuts r1's link after 1.5 s (the client's ARP entry is then old
/// enough to be replaced by the new master's gratuitous ARP): r2 must become master and answer
/// the client, the outage no longer than `Master_Down_Interval` + 20 ms.
fn hard_failover_to_r2(scene: &Scene, vip: &str, what: &str) {
    let probe = scene.start_probe(vip, 3000);
    std::thread::sleep(Duration::from_millis(1500));
    let cut = Instant::now();
    scene.link(0, scene.iface(0), false);
    let summary = probe.finish();
    eprintln!(
        "{what}, seen by the client: {summary} (cut {:?} ago)",
        cut.elapsed()
    );
    await_master_alone(scene, 1);
    let outage = field(&summary, "longest_outage_us");
    assert!(
        outage <= MDI_US + 20_000,
        "{what}: outage {outage} µs > Master_Down_Interval {MDI_US} µs + 20 ms: {summary}\n\
         r2 log:\n{}",
        scene.agents[1].log()
    );
    assert!(
        answered_by(&summary, "r2") > 0,
        "{what}: r2 never answered: {summary}"
    );
}

/// The XDP program is attached to r1's interface.
fn r1_has_xdp(scene: &Scene) -> bool {
    let link = scene.ns(0).ip(&["link", "show", scene.iface(0)]);
    String::from_utf8_lossy(&link.stdout).contains("prog/xdp")
}

#[test]
#[ignore = "needs root"]
fn election_then_hard_failover_within_master_down_interval() {
    let _serial = serial();
    let scene = scene(&[200, 100]);
    assert!(
        scene.lab.client.ns.ping_once(VIP),
        "the VIP does not answer after the election"
    );

    hard_failover_to_r2(&scene, VIP, "hard failover, 100 ms adverts");

    // The link comes back: r1 (priority 200) preempts r2, and the client keeps being served.
    let probe = scene.start_probe(VIP, 2000);
    std::thread::sleep(Duration::from_millis(300));
    scene.link(0, scene.iface(0), true);
    let summary = probe.finish();
    eprintln!("r1 back and preempting, seen by the client: {summary}");
    scene.await_master(0, Duration::from_secs(5));
    assert!(
        answered_by(&summary, "r1") > 0,
        "r1 never answered again: {summary}"
    );
    assert_eq!(
        field(&summary, "lost"),
        0,
        "probes lost when r1 preempted: {summary}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_killed_master_agent_is_replaced_within_master_down_interval() {
    let _serial = serial();
    let mut scene = scene(&[200, 100]);
    // SIGKILL: no priority 0, no cleanup. r1's host keeps its XDP entry and the VIP, so the
    // client is served throughout; r2 must still take over on time.
    let killed = Instant::now();
    scene.agents[0].signal(libc::SIGKILL);
    assert!(scene.agents[0].exited(Duration::from_secs(5)));
    await_master_alone(&scene, 1);
    let took = killed.elapsed();
    let mdi = Duration::from_micros(MDI_US);
    eprintln!("master's agent killed: r2 master alone after {took:?} (bound {mdi:?} + 150 ms)");
    // Polled through `vipflip status` every 10 ms: allow that and the process start-up.
    assert!(
        took <= mdi + Duration::from_millis(150),
        "r2 took {took:?} (Master_Down_Interval {mdi:?})"
    );
    assert!(
        scene.lab.client.ns.ping_once(VIP),
        "the VIP does not answer after the takeover"
    );
}

#[test]
#[ignore = "needs root"]
fn keep_dataplane_leaves_the_xdp_program_in_place() {
    let _serial = serial();
    let mut scene = scene(&[200]);
    scene.agents[0].signal(libc::SIGTERM);
    assert!(
        scene.agents[0].exited(Duration::from_secs(10)),
        "{}",
        scene.agents[0].log()
    );
    assert!(!r1_has_xdp(&scene), "plain stop left XDP attached");

    // Again, with --keep-dataplane.
    scene.restart(0, &["--keep-dataplane"]);
    scene.await_master(0, Duration::from_secs(10));
    scene.agents[0].signal(libc::SIGTERM);
    assert!(scene.agents[0].exited(Duration::from_secs(10)));
    assert!(r1_has_xdp(&scene), "--keep-dataplane detached XDP");
    assert!(
        scene
            .lab
            .bpffs
            .path()
            .join("r1")
            .join(scene.iface(0))
            .join("VIPS")
            .exists(),
        "pins removed"
    );
    // No daemon answers now: `status` says so and shows what the pins hold.
    let out = Command::new(vipflip())
        .args(["status", "--config"])
        .arg(&scene.agents[0].config)
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

#[test]
#[ignore = "needs root"]
fn planned_handoff_loses_no_probe() {
    let _serial = serial();
    let scene = scene(&[200, 100]);
    assert!(
        scene.lab.client.ns.ping_once(VIP),
        "the VIP does not answer after the election"
    );

    let probe = scene.start_probe(VIP, 2500);
    std::thread::sleep(Duration::from_secs(1));
    scene.agents[0].handoff("VI_1");
    let summary = probe.finish();
    eprintln!("planned handoff, seen by the client: {summary}");
    scene.await_master(1, Duration::from_secs(5));
    assert_eq!(
        field(&summary, "lost"),
        0,
        "probes lost during a planned handoff: {summary}\nr1 log:\n{}\nr2 log:\n{}",
        scene.agents[0].log(),
        scene.agents[1].log()
    );
    assert!(
        answered_by(&summary, "r2") > 0,
        "r2 never answered: {summary}"
    );
}

#[test]
#[ignore = "needs root"]
fn sigterm_hands_off_without_losing_a_probe() {
    let _serial = serial();
    let mut scene = scene_with(
        &[200, 100],
        &Setup {
            extra: &|_, _| "forward_window = \"1s\"".into(),
            ..DEFAULT
        },
    );
    let probe = scene.start_probe(VIP, 3000);
    std::thread::sleep(Duration::from_secs(1));
    scene.agents[0].signal(libc::SIGTERM);
    let summary = probe.finish();
    eprintln!("SIGTERM on the master, seen by the client: {summary}");
    assert!(
        scene.agents[0].exited(Duration::from_secs(10)),
        "r1 did not exit: {}",
        scene.agents[0].log()
    );
    assert_eq!(
        scene.agents[1].state("VI_1").as_deref(),
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
    assert!(!r1_has_xdp(&scene), "XDP left attached");
}

#[test]
#[ignore = "needs root"]
fn spoofed_adverts_are_dropped_in_xdp_and_change_nothing() {
    let _serial = serial();
    let allowed = |_: &Lab, _| "allowed_peers = [\"192.0.2.1\", \"192.0.2.2\"]".to_owned();
    let scene = scene_with(
        &[200, 100],
        &Setup {
            extra: &allowed,
            ..DEFAULT
        },
    );
    let client = &scene.lab.client;
    client
        .ns
        .ip(&["route", "add", "224.0.0.0/4", "dev", &client.iface]);
    let before: Vec<_> = (0..2).map(|r| scene.inst(r, "VI_1")).collect();
    for (src, ttl) in [("192.0.2.1", "64"), ("192.0.2.200", "255")] {
        let out = client
            .ns
            .command(PROBE.0)
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
    // The forger has sent them all: wait until XDP has counted every one as dropped (they
    // never reach the daemon), then nothing may have changed.
    for (router, was) in before.iter().enumerate() {
        assert!(
            wait_for(Duration::from_secs(2), || {
                scene.inst(router, "VI_1").xdp_adverts_dropped >= was.xdp_adverts_dropped + 40
            }),
            "XDP did not drop the 40 forged adverts: {}",
            scene.agents[router].status()
        );
    }
    scene.await_master(0, Duration::from_secs(1));
    for (router, was) in before.iter().enumerate() {
        let now = scene.inst(router, "VI_1");
        assert_eq!(
            now.transitions, was.transitions,
            "a spoofed advert caused a transition"
        );
        assert!(
            now.xdp_adverts_dropped >= was.xdp_adverts_dropped + 40,
            "XDP did not drop the 40 forged adverts: {}",
            scene.agents[router].status()
        );
    }
    let maps = Command::new(vipflip())
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
#[ignore = "needs root"]
fn a_restarted_agent_keeps_the_traffic_flowing() {
    let _serial = serial();
    let mut scene = scene(&[200, 100]);
    let probe = scene.start_probe(VIP, 3000);
    std::thread::sleep(Duration::from_secs(1));
    // SIGKILL: nothing is cleaned up; the pinned XDP program and the VIP stay in place.
    scene.agents[0].signal(libc::SIGKILL);
    assert!(scene.agents[0].exited(Duration::from_secs(5)));
    scene.restart(0, &[]);
    let summary = probe.finish();
    eprintln!("master restarted, seen by the client: {summary}");
    scene.await_master(0, Duration::from_secs(5));
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
#[ignore = "needs root"]
fn a_client_with_a_stale_arp_entry_is_served_through_the_old_master() {
    let _serial = serial();
    let scene = scene(&[200, 100]);
    let client = &scene.lab.client;
    let mac = scene
        .ns(0)
        .mac(scene.iface(0))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    client.ns.ip(&[
        "neigh",
        "replace",
        VIP,
        "lladdr",
        &mac,
        "dev",
        &client.iface,
        "nud",
        "permanent",
    ]);
    scene.agents[0].handoff("VI_1");
    scene.await_master(1, Duration::from_secs(5));
    // Well inside the default 5 s forward window.
    let summary = scene.probe(VIP, 1000);
    eprintln!("stale ARP entry after a handoff, seen by the client: {summary}");
    assert_eq!(
        field(&summary, "lost"),
        0,
        "{summary}\nr1 log:\n{}",
        scene.agents[0].log()
    );
    assert_eq!(field(&summary, "received"), 1000);
    assert_eq!(
        answered_by(&summary, "r2"),
        1000,
        "the new master did not answer every probe: {summary}"
    );
    let status = scene.agents[0].status();
    assert!(
        status.contains("forward (vrid 51)"),
        "r1's status does not show the forward: {status}"
    );
}

#[test]
#[ignore = "needs root"]
fn ipv6_vip_fails_over() {
    let _serial = serial();
    let vip = "2001:db8::100";
    let scene = scene_with(
        &[200, 100],
        &Setup {
            vip: &format!("{vip}/64"),
            ..DEFAULT
        },
    );
    assert!(
        scene.lab.client.ns.ping_once(vip),
        "the IPv6 VIP does not answer"
    );
    hard_failover_to_r2(&scene, vip, "IPv6 hard failover");
}

#[test]
#[ignore = "needs root"]
fn unicast_peers_elect_and_fail_over() {
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
    hard_failover_to_r2(&scene, VIP, "unicast hard failover");
}

#[test]
#[ignore = "needs root"]
fn an_instance_on_a_missing_interface_is_in_fault_and_the_rest_runs() {
    let _serial = serial();
    let missing = |_: &Lab, _| {
        "\n[[instance]]\nname = \"VI_GONE\"\ninterface = \"vfnothere0\"\nvrid = 52\nvirtual_ips = [\"192.0.2.150/24\"]\n".to_owned()
    };
    let scene = started(
        &[200],
        &Setup {
            extra: &missing,
            ..DEFAULT
        },
    );
    scene.await_states(
        &[(0, "VI_1", "Master"), (0, "VI_GONE", "Fault")],
        Duration::from_secs(10),
    );
}
