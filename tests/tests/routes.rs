//! keepalived's `virtual_routes`, `virtual_rules` and `static_*` as the kernel holds them:
//! an instance's routes and rules are on its master only and move with a handoff, the
//! statics are on every router whatever its state, routes the kernel flushed with their
//! interface come back with it (and one through an interface that appears later is written
//! then), a reload rewrites a master's routes without a transition, and SIGTERM takes
//! everything away. Needs root.

use std::time::Duration;

use vipflip_integration_tests::{
    Lab, Netns,
    agent::{self, QUICK_GARP},
    scene::{Prober, Scene, test_dir},
    serial,
};

const PROBE: Prober = Prober(env!("CARGO_BIN_EXE_vipflip-probe"));
const SETTLE: Duration = Duration::from_secs(10);
const CHANGE: Duration = Duration::from_secs(5);
/// An interface that does not exist when the agents start; a route of `VI_1` goes through it.
const LATE: &str = "vfx0";

/// `VI_1`'s routes and rule. The first uses the VIP as its source, which the kernel accepts
/// only once the VIP is an address of the host: it checks that routes follow addresses.
fn virtual_routes(iface: &str) -> String {
    format!(
        "virtual_routes = [\n\
         \x20 {{ to = \"198.51.100.0/24\", via = \"192.0.2.200\", dev = \"{iface}\", src = \"192.0.2.100\", metric = 7 }},\n\
         \x20 {{ to = \"203.0.113.0/24\", type = \"blackhole\", table = 100 }},\n\
         \x20 {{ to = \"198.51.107.0/24\", dev = \"{LATE}\" }},\n\
         ]\n\
         virtual_rules = [{{ from = \"192.0.2.100\", table = 100, priority = 1000 }}]\n"
    )
}

/// Router `router`'s statics: an address of its own, a route through the client, a rule.
fn statics(iface: &str, router: usize) -> String {
    format!(
        "[[static_address]]\naddress = \"10.99.0.{n}/32\"\ndev = \"{iface}\"\n\n\
         [[static_route]]\nto = \"198.51.101.0/24\"\nvia = \"192.0.2.200\"\n\n\
         [[static_rule]]\nfwmark = 7\ntable = 101\npriority = 1001\n",
        n = router + 1
    )
}

fn config(lab: &Lab, dir: &std::path::Path, router: usize, instance_lines: &str) -> String {
    let iface = &lab.routers[router].iface;
    let priority = if router == 0 { 150 } else { 100 };
    format!(
        "{}\n{}{QUICK_GARP}{instance_lines}\n{}",
        agent::global(&format!("r{}", router + 1), lab.bpffs.path(), dir),
        agent::instance("VI_1", iface, 51, priority, "100ms", "192.0.2.100/24"),
        statics(iface, router)
    )
}

/// `ip ARGS…` in `ns`, its output as text; empty when `ip` fails (a table that holds
/// nothing does not exist).
fn ip(ns: &Netns, args: &[&str]) -> String {
    let out = ns.command("ip").args(args).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Which of `VI_1`'s routes and rule `router` holds: (the route through the client with the
/// VIP as source, the blackhole in table 100, the rule).
fn virtual_held(scene: &Scene, router: usize) -> (bool, bool, bool) {
    let ns = scene.ns(router);
    let main = ip(ns, &["route", "show", "198.51.100.0/24"]);
    let route = main.contains(&format!(
        "198.51.100.0/24 via 192.0.2.200 dev {} proto keepalived src 192.0.2.100 metric 7",
        scene.iface(router)
    ));
    let blackhole = ip(ns, &["route", "show", "table", "100"])
        .contains("blackhole 203.0.113.0/24 proto keepalived");
    let rule = ip(ns, &["rule", "show"]).contains("1000:\tfrom 192.0.2.100 lookup 100");
    (route, blackhole, rule)
}

/// Which statics `router` holds: (its address, the route, the rule).
fn statics_held(scene: &Scene, router: usize) -> (bool, bool, bool) {
    let ns = scene.ns(router);
    let address = ip(ns, &["-o", "addr", "show", "dev", scene.iface(router)])
        .contains(&format!(" 10.99.0.{}/32 ", router + 1));
    let route = ip(ns, &["route", "show", "198.51.101.0/24"])
        .contains("198.51.101.0/24 via 192.0.2.200 dev");
    let rule = ip(ns, &["rule", "show"]).contains("1001:\tfrom all fwmark 0x7 lookup 101");
    (address, route, rule)
}

fn await_virtual(scene: &Scene, router: usize, held: bool) {
    let what = if held { "holds" } else { "holds none of" };
    scene.await_that(
        &format!("r{} {what} VI_1's routes and rule", router + 1),
        CHANGE,
        |s| virtual_held(s, router) == (held, held, held),
    );
}

#[test]
#[ignore = "needs root"]
fn virtual_routes_follow_the_master_and_statics_stay_everywhere() {
    let _serial = serial();
    let scene = Scene::start(
        Lab::new(2),
        test_dir("vipflip-routes-"),
        PROBE,
        |lab, dir, router| {
            config(
                lab,
                dir,
                router,
                &virtual_routes(&lab.routers[router].iface),
            )
        },
    );
    scene.await_master(0, SETTLE);
    await_virtual(&scene, 0, true);
    await_virtual(&scene, 1, false);
    for router in 0..2 {
        scene.await_that(&format!("r{} holds its statics", router + 1), CHANGE, |s| {
            statics_held(s, router) == (true, true, true)
        });
    }
    assert_status_says_what_is_installed(&scene);

    late_interface_on_the_master(&scene);
    link_flap_on_the_backup(&scene);

    // A handoff moves them to r2; the statics stay on both.
    scene.agents[0].handoff("VI_1");
    scene.await_master(1, CHANGE);
    await_virtual(&scene, 1, true);
    await_virtual(&scene, 0, false);
    assert_eq!(statics_held(&scene, 0), (true, true, true));
    assert_eq!(statics_held(&scene, 1), (true, true, true));

    reload_rewrites_the_masters_routes_in_place(&scene);

    // SIGTERM: r2 hands off, and takes its routes, rule and statics away as it goes.
    let mut scene = scene;
    scene.agents[1].signal(libc::SIGTERM);
    assert!(
        scene.agents[1].exited(Duration::from_secs(15)),
        "r2 did not exit{}",
        scene.describe()
    );
    let ns = scene.ns(1);
    assert!(
        !ip(ns, &["route", "show", "198.51.102.0/24"]).contains("198.51.102.0/24"),
        "r2 left its virtual route behind"
    );
    assert_eq!(virtual_held(&scene, 1), (false, false, false));
    assert_eq!(statics_held(&scene, 1), (false, false, false));
    // r1 took VI_1 back and holds its routes again.
    scene.await_states(&[(0, "VI_1", "Master")], CHANGE);
    await_virtual(&scene, 0, true);
}

/// The directory the scene's agents keep their files in (where r2's configuration is).
fn test_dir_of(scene: &Scene) -> std::path::PathBuf {
    scene.agents[1]
        .config
        .parent()
        .expect("the configuration is in the scene's directory")
        .to_path_buf()
}

/// r1 (master) shows each entry installed, and the route through the missing interface
/// failed with the reason; r2 (backup) shows them absent.
fn assert_status_says_what_is_installed(scene: &Scene) {
    let status = String::from_utf8_lossy(&scene.agents[0].cli(&["status"]).stdout).into_owned();
    for line in [
        format!(
            "  virtual       route 198.51.100.0/24 via 192.0.2.200 dev {} src 192.0.2.100 metric 7: installed\n",
            scene.iface(0)
        ),
        "  virtual       route blackhole 203.0.113.0/24 table 100: installed\n".to_owned(),
        "  virtual       rule from 192.0.2.100/32 lookup 100 pref 1000: installed\n".to_owned(),
        "static address 10.99.0.1/32 dev ".to_owned(),
        "static route 198.51.101.0/24 via 192.0.2.200: installed\n".to_owned(),
        "static rule from all fwmark 0x7 lookup 101 pref 1001: installed\n".to_owned(),
    ] {
        assert!(
            status.contains(&line),
            "r1's status lacks {line:?}:\n{status}"
        );
    }
    assert!(
        status.contains(&format!(
            "  virtual       route 198.51.107.0/24 dev {LATE}: failed ({LATE}: no such interface)\n"
        )),
        "r1's status should say why the route through {LATE} is not there:\n{status}"
    );
    let backup_status =
        String::from_utf8_lossy(&scene.agents[1].cli(&["status"]).stdout).into_owned();
    assert!(
        backup_status.contains("rule from 192.0.2.100/32 lookup 100 pref 1000: absent\n"),
        "r2 (backup) should show VI_1's rule absent:\n{backup_status}"
    );
}

/// The interface appears: the master writes the route through it. Down, the kernel
/// flushes the route; up again, the master writes it again.
fn late_interface_on_the_master(scene: &Scene) {
    let r1 = scene.ns(0);
    r1.ip(&["link", "add", LATE, "type", "veth", "peer", "name", "vfx0p"]);
    r1.ip(&["link", "set", "vfx0p", "up"]);
    r1.ip(&["link", "set", LATE, "up"]);
    let late_route = |s: &Scene| {
        ip(s.ns(0), &["route", "show", "198.51.107.0/24"])
            .contains(&format!("198.51.107.0/24 dev {LATE} proto keepalived"))
    };
    scene.await_that(
        "r1 writes the route once its interface exists",
        CHANGE,
        late_route,
    );
    r1.ip(&["link", "set", LATE, "down"]);
    assert!(
        !late_route(scene),
        "the kernel keeps a route through a down link"
    );
    r1.ip(&["link", "set", LATE, "up"]);
    scene.await_that(
        "r1 writes the route again once its interface is back",
        CHANGE,
        late_route,
    );
}

/// r2's link goes down (fault) and up: the kernel flushed its static route, r2 writes it
/// again.
fn link_flap_on_the_backup(scene: &Scene) {
    let r2_iface = scene.iface(1).to_owned();
    scene.link(1, &r2_iface, false);
    scene.await_states(&[(1, "VI_1", "Fault")], CHANGE);
    assert!(
        !statics_held(scene, 1).1,
        "the kernel keeps a route through a down link"
    );
    scene.link(1, &r2_iface, true);
    scene.await_states(&[(1, "VI_1", "Backup")], SETTLE);
    scene.await_that("r2 holds its statics again", CHANGE, |s| {
        statics_held(s, 1) == (true, true, true)
    });
}

/// A reload that changes the master's (r2's) routes rewrites them in place: no
/// transition.
fn reload_rewrites_the_masters_routes_in_place(scene: &Scene) {
    let transitions = scene.inst(1, "VI_1").transitions;
    let iface = scene.iface(1).to_owned();
    let changed = format!(
        "virtual_routes = [{{ to = \"198.51.102.0/24\", dev = \"{iface}\" }}]\n\
         virtual_rules = [{{ from = \"192.0.2.100\", table = 100, priority = 1000 }}]\n"
    );
    let text = config(&scene.lab, &test_dir_of(scene), 1, &changed);
    scene.agents[1].sighup_with(&text);
    scene.await_that(
        "r2 holds the reloaded route and no longer the dropped ones",
        CHANGE,
        |s| {
            let ns = s.ns(1);
            ip(ns, &["route", "show", "198.51.102.0/24"]).contains("198.51.102.0/24 dev")
                && virtual_held(s, 1) == (false, false, true)
        },
    );
    assert_eq!(
        scene.inst(1, "VI_1").transitions,
        transitions,
        "the reload restarted VI_1{}",
        scene.describe()
    );
}
