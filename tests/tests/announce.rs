//! Announcements as the routing daemon sees them: the host routes in each router's vipflip
//! table follow the gates (here: the VRRP master), survive a SIGKILL and a restart without
//! a flap, and go on SIGTERM and `vipflip drain`, which stops only once the VIP's traffic has
//! been quiet. No routing daemon runs here (`routing.rs` has FRR and BIRD); this is the
//! kernel table they read. Needs root.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use vipflip_integration_tests::{
    KillOnDrop, Lab, Netns,
    agent::{self, QUICK_GARP},
    scene::{Prober, Scene, test_dir},
    serial, wait_for,
};

const PROBE: Prober = Prober(env!("CARGO_BIN_EXE_vipflip-probe"));
const VIP: &str = "192.0.2.100";
const TABLE: &str = "200";

fn config(lab: &Lab, dir: &Path, router: usize, priority: u8) -> String {
    format!(
        "{}[routing]\ntable = {TABLE}\ndrain_quiet = \"500ms\"\n\n{}{QUICK_GARP}forward_window = \"1s\"\n\
         [[announce]]\nvip = \"{VIP}\"\nwhen = \"master\"\n",
        agent::global(&format!("r{}", router + 1), lab.bpffs.path(), dir),
        agent::instance(
            "VI_1",
            &lab.routers[router].iface,
            51,
            priority,
            "100ms",
            "192.0.2.100/24"
        ),
    )
}

/// Two routers (r1 at 200, r2 at 100) announcing the VIP while master; once r1 is master.
fn scene() -> Scene {
    let scene = Scene::start(
        Lab::new(2),
        test_dir("vipflip-announce-"),
        PROBE,
        |lab, dir, router| config(lab, dir, router, [200, 100][router]),
    );
    scene.await_master(0, Duration::from_secs(10));
    scene
}

/// The VIP's host route in the router's vipflip table, as `ip route` prints it.
fn route(ns: &Netns) -> Option<String> {
    // A table that never held a route does not exist yet: `ip` fails, and there is none.
    let out = ns
        .command("ip")
        .args(["route", "show", "table", TABLE, "proto", "250"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(&format!("{VIP} ")))
        .map(|l| l.trim_end().to_owned())
}

/// `vipflip status` as an operator reads it.
fn status_of(agent: &vipflip_integration_tests::agent::Agent) -> String {
    String::from_utf8_lossy(&agent.cli(&["status"]).stdout).into_owned()
}

fn await_route(scene: &Scene, router: usize, present: bool, what: &str) {
    assert!(
        wait_for(Duration::from_secs(5), || route(scene.ns(router)).is_some()
            == present),
        "{what}: r{}'s table {TABLE} {} the VIP's route\n{}",
        router + 1,
        if present { "never got" } else { "kept" },
        scene.agents[router].log()
    );
}

#[test]
#[ignore = "needs root"]
fn a_master_gate_announces_from_the_master_only_and_follows_a_failover() {
    let _serial = serial();
    let scene = scene();
    await_route(&scene, 0, true, "r1 master");
    assert_eq!(
        route(scene.ns(0)).unwrap(),
        format!("{VIP} dev lo scope link"),
        "the shape FRR's import-table and BIRD's kernel protocol read"
    );
    assert_eq!(route(scene.ns(1)), None, "r2 is backup: nothing announced");
    let status = status_of(&scene.agents[0]);
    assert!(
        status.contains(&format!(
            "announce {VIP}/32 when master: announced in table {TABLE} (instance VI_1 is master)"
        )),
        "{status}"
    );
    // r1's link goes down: r1 faults and withdraws, r2 takes over and announces.
    scene.link(0, scene.iface(0), false);
    await_route(&scene, 1, true, "r2 took over");
    await_route(&scene, 0, false, "r1 in fault");
    let status = status_of(&scene.agents[0]);
    assert!(
        status.contains(&format!(
            "announce {VIP}/32 when master: withdrawn in table {TABLE} (instance VI_1 is not master)"
        )),
        "{status}"
    );
}

/// `ip monitor route` in `ns` while it lives, once it is listening: it has reported a
/// route added to and removed from a table of no use to anyone.
fn monitor(ns: &Netns) -> (KillOnDrop, std::path::PathBuf) {
    let file = std::env::temp_dir().join(format!(
        "vipflip-monitor-{}",
        vipflip_integration_tests::unique("m")
    ));
    let out = std::fs::File::create(&file).unwrap();
    let child = ns
        .command("ip")
        .args(["monitor", "route"])
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let probe = ["192.0.2.250/32", "dev", "lo", "table", "4242"];
    assert!(
        wait_for(Duration::from_secs(5), || {
            let _ = ns.command("ip").args(["route", "add"]).args(probe).output();
            let _ = ns.command("ip").args(["route", "del"]).args(probe).output();
            std::fs::read_to_string(&file).is_ok_and(|seen| seen.contains("192.0.2.250"))
        }),
        "ip monitor never reported the probe route"
    );
    (KillOnDrop(child), file)
}

#[test]
#[ignore = "needs root"]
fn a_killed_agent_leaves_its_route_and_a_restart_does_not_flap_it() {
    let _serial = serial();
    let mut scene = scene();
    await_route(&scene, 0, true, "r1 master");
    scene.agents[0].signal(libc::SIGKILL);
    assert!(scene.agents[0].exited(Duration::from_secs(5)));
    assert!(
        route(scene.ns(0)).is_some(),
        "SIGKILL must leave the route: the pinned program still serves"
    );
    let (watch, file) = monitor(scene.ns(0));
    scene.restart(0, &[]);
    scene.await_master(0, Duration::from_secs(5));
    assert!(
        wait_for(Duration::from_secs(5), || status_of(&scene.agents[0])
            .contains("announced in table")),
        "{}",
        scene.agents[0].log()
    );
    drop(watch);
    let seen = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        !seen
            .lines()
            .any(|l| l.contains(VIP) && l.contains(&format!("table {TABLE}"))),
        "the restart touched the route:\n{seen}"
    );
    assert!(
        scene.agents[0].log().contains(&format!(
            "routing table {TABLE}: found {VIP} announced by a previous run"
        )),
        "{}",
        scene.agents[0].log()
    );
}

#[test]
#[ignore = "needs root"]
fn sigterm_withdraws_the_route() {
    let _serial = serial();
    let mut scene = scene();
    await_route(&scene, 0, true, "r1 master");
    scene.agents[0].signal(libc::SIGTERM);
    assert!(scene.agents[0].exited(Duration::from_secs(10)));
    assert_eq!(route(scene.ns(0)), None, "{}", scene.agents[0].log());
}

#[test]
#[ignore = "needs root"]
fn drain_withdraws_at_once_and_stops_only_when_the_traffic_is_quiet() {
    let _serial = serial();
    let mut scene = scene();
    await_route(&scene, 0, true, "r1 master");
    // The client keeps probing the VIP (r1 still holds it by VRRP): the traffic a router
    // would still send while it reroutes.
    let probe = scene.start_probe(VIP, 2500);
    std::thread::sleep(Duration::from_millis(300));
    let drain = scene.agents[0].cli(&["drain"]);
    assert!(
        drain.status.success(),
        "{}",
        String::from_utf8_lossy(&drain.stderr)
    );
    let said = String::from_utf8_lossy(&drain.stdout).into_owned();
    assert!(
        said.starts_with(&format!("withdrawing {VIP}; serving what still arrives")),
        "{said}"
    );
    await_route(&scene, 0, false, "drained");
    // Packets keep coming for ~2 s more, far longer than the 500 ms quiet time: it waits.
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        scene.agents[0].running(),
        "stopped while VIP traffic still arrived:\n{}",
        scene.agents[0].log()
    );
    let summary = probe.finish();
    let probe_ended = Instant::now();
    assert!(
        scene.agents[0].exited(Duration::from_secs(5)),
        "never stopped after the traffic ended:\n{}",
        scene.agents[0].log()
    );
    let stopped_after = probe_ended.elapsed();
    eprintln!("drain: stopped {stopped_after:?} after the last probe; probes: {summary}");
    // The silence it waits for is 500 ms (then a VRRP handoff and its 1 s forward window).
    assert!(
        stopped_after >= Duration::from_millis(450),
        "stopped {stopped_after:?} after the last packet, before the quiet time"
    );
    assert!(
        scene.agents[0]
            .log()
            .contains("drained: no VIP packet for the quiet time; stopping"),
        "{}",
        scene.agents[0].log()
    );
    assert_eq!(
        vipflip_integration_tests::summary_number(&summary, "lost"),
        0,
        "a drained director must serve what still arrives: {summary}"
    );
}
