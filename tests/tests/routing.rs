//! Directors announcing a VIP over BGP to an edge router (issue #13), with the VIP's route put
//! in each director's table 200 by hand, as vipflip's route writer will: two directors give
//! the edge a two-way ECMP route that follows their tables; an FRR and a BIRD director do
//! too; BFD takes a cut director out of the edge's FIB within a fraction of a second; and
//! the client's connections to the VIP spread over the directors. Needs root, FRR and BIRD 2
//! (`cargo xtask setup` installs them): a missing daemon fails the test, it never skips.
//!
//! The times printed are those of the edge's FIB, polled every ~2 ms from the step that
//! causes them; the bounds asserted are generous (a loaded two-core machine), these are
//! behaviour tests, not benchmarks.

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use vipflip_integration_tests::{
    lb::{self, HTTP_PORT},
    routing::{Bfd, BgpScene, Bird, Frr, director_bird_config, director_frr_config},
    serial,
};

const LB_PROBE: &str = env!("CARGO_BIN_EXE_vipflip-lb-probe");
const VIP: &str = "198.51.100.10";
/// From the daemons' start to an ECMP route: sessions come up within seconds (connect
/// retry 5 s, and FRR resets a session once when BFD first comes up).
const CONVERGE: Duration = Duration::from_secs(30);
/// A withdrawal or a return reaching the edge's FIB (~120 ms measured).
const UPDATE: Duration = Duration::from_secs(5);
/// A cut seen by BFD 50 ms × 3 reaching the edge's FIB (180–221 ms measured).
const BFD_CUT: Duration = Duration::from_secs(2);
/// A restored director back in the FIB: up to a connect retry (5 s) and BIRD's error wait.
const RETURN: Duration = Duration::from_secs(20);

/// One director's routing daemon.
enum Daemon {
    Frr(Frr),
    Bird(Bird),
}

impl Daemon {
    fn describe(&self) -> String {
        match self {
            Daemon::Frr(frr) => frr.describe(),
            Daemon::Bird(bird) => bird.describe(),
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Frr,
    Bird,
}

/// The daemons must be there: the tests fail without them.
fn require_daemons() {
    assert!(
        Frr::installed(),
        "FRR (zebra, bfdd, bgpd, vtysh) is missing; cargo xtask setup installs it"
    );
    assert!(
        Bird::installed(),
        "BIRD 2 (bird, birdc) is missing; cargo xtask setup installs it"
    );
}

/// A scene whose director `d` runs `kinds[d]` with the test fixture's configuration and
/// announces [`VIP`]; returns once the edge holds one next hop per director (see [`holds`]),
/// printing how long they took to appear after the directors' daemons started.
fn converged(kinds: &[Kind], bfd: Option<Bfd>) -> (BgpScene, Vec<Daemon>) {
    require_daemons();
    let scene = BgpScene::new(kinds.len(), bfd);
    let start = Instant::now();
    let daemons: Vec<Daemon> = kinds
        .iter()
        .enumerate()
        .map(|(d, kind)| {
            let config = scene.director_config(d);
            let ns = &scene.directors[d].ns;
            match kind {
                Kind::Frr => Daemon::Frr(Frr::start(ns, &director_frr_config(&config))),
                Kind::Bird => Daemon::Bird(Bird::start(ns, &director_bird_config(&config))),
            }
        })
        .collect();
    for d in 0..kinds.len() {
        scene.announce(d, VIP);
    }
    let Some(appeared) = holds(&scene, kinds.len()) else {
        panic!(
            "the edge never held {} next hops for {VIP}: {:?}\n{}",
            kinds.len(),
            scene.edge_nexthops(VIP),
            describe(&scene, &daemons)
        );
    };
    assert!(
        scene.edge_frr.wait_established(kinds.len(), UPDATE),
        "not every session is established\n{}",
        describe(&scene, &daemons)
    );
    eprintln!(
        "ECMP over {} directors {:?} after their daemons started",
        kinds.len(),
        appeared - start
    );
    assert_eq!(scene.edge_nexthops(VIP), scene.director_addresses());
    (scene, daemons)
}

/// Waits (up to [`CONVERGE`]) until the edge has had `n` next hops for [`VIP`] for a whole
/// second, and returns when they appeared. FRR 8.4 resets a session once right after it
/// first comes up with BFD (`routing.md`), which can take a path away again just after it
/// appeared; a measurement must not start before that.
fn holds(scene: &BgpScene, n: usize) -> Option<Instant> {
    let deadline = Instant::now() + CONVERGE;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        scene.wait_edge_nexthops(VIP, n, left)?;
        let appeared = Instant::now();
        let changed = vipflip_integration_tests::wait_for(Duration::from_secs(1), || {
            scene.edge_nexthops(VIP).len() != n
        });
        if !changed {
            return Some(appeared);
        }
    }
    None
}

/// Everything that explains a failure: the edge, then each director.
fn describe(scene: &BgpScene, daemons: &[Daemon]) -> String {
    let mut out = scene.describe();
    for (d, daemon) in daemons.iter().enumerate() {
        let _ = write!(out, "\ndirector {}:\n{}", d + 1, daemon.describe());
    }
    out
}

/// Waits until the edge has `wanted` next hops for [`VIP`] (within `timeout`), and returns
/// how long that took; `what` names the step in messages.
fn edge_reaches(
    scene: &BgpScene,
    daemons: &[Daemon],
    wanted: usize,
    timeout: Duration,
    what: &str,
) -> Duration {
    let took = scene.wait_edge_nexthops(VIP, wanted, timeout);
    let Some(took) = took else {
        panic!(
            "{what}: the edge did not get {wanted} next hop(s) within {timeout:?}: {:?}\n{}",
            scene.edge_nexthops(VIP),
            describe(scene, daemons)
        );
    };
    eprintln!("{what}: {wanted} next hop(s) in the edge's FIB after {took:?}");
    took
}

/// Director `d` withdraws the VIP, then announces it again: the edge goes down to the other
/// director, then back to both.
fn withdraw_and_return(scene: &BgpScene, daemons: &[Daemon], d: usize, what: &str) {
    scene.withdraw(d, VIP);
    edge_reaches(scene, daemons, 1, UPDATE, &format!("{what}: withdrawn"));
    let others: Vec<_> = scene
        .director_addresses()
        .into_iter()
        .filter(|a| *a != scene.directors[d].address)
        .collect();
    assert_eq!(scene.edge_nexthops(VIP), others);
    scene.announce(d, VIP);
    edge_reaches(
        scene,
        daemons,
        2,
        UPDATE,
        &format!("{what}: announced again"),
    );
    assert_eq!(scene.edge_nexthops(VIP), scene.director_addresses());
}

#[test]
#[ignore = "needs root"]
fn two_frr_directors_give_the_edge_an_ecmp_route_that_follows_their_tables() {
    let _serial = serial();
    let (scene, daemons) = converged(&[Kind::Frr, Kind::Frr], None);
    withdraw_and_return(&scene, &daemons, 1, "FRR director");
}

#[test]
#[ignore = "needs root"]
fn an_frr_and_a_bird_director_give_the_edge_an_ecmp_route() {
    let _serial = serial();
    let (scene, daemons) = converged(&[Kind::Frr, Kind::Bird], None);
    withdraw_and_return(&scene, &daemons, 1, "BIRD director");
}

#[test]
#[ignore = "needs root"]
fn bfd_takes_a_cut_director_out_of_the_edge_fib() {
    let _serial = serial();
    let (scene, daemons) = converged(&[Kind::Frr, Kind::Bird], Some(Bfd::FAST));
    assert!(
        vipflip_integration_tests::wait_for(UPDATE, || scene.edge_frr.bfd_up() == 2),
        "the edge's BFD sessions are not both up\n{}",
        describe(&scene, &daemons)
    );
    for (d, what) in [(0, "FRR director"), (1, "BIRD director")] {
        scene.cut(d);
        let took = edge_reaches(&scene, &daemons, 1, BFD_CUT, &format!("{what}: cut"));
        assert!(took < BFD_CUT);
        let left: Vec<_> = scene
            .director_addresses()
            .into_iter()
            .filter(|a| *a != scene.directors[d].address)
            .collect();
        assert_eq!(scene.edge_nexthops(VIP), left);
        scene.restore(d);
        edge_reaches(&scene, &daemons, 2, RETURN, &format!("{what}: restored"));
    }
}

#[test]
#[ignore = "needs root"]
fn client_connections_to_the_vip_spread_over_the_directors() {
    let _serial = serial();
    let (scene, daemons) = converged(&[Kind::Frr, Kind::Frr], None);
    let servers: Vec<_> = (0..2)
        .map(|d| {
            scene.accept(d, VIP);
            let ns = &scene.directors[d].ns;
            let server = lb::serve(
                LB_PROBE,
                ns,
                "http-serve",
                HTTP_PORT,
                &format!("d{}", d + 1),
            );
            assert!(
                vipflip_integration_tests::wait_for(UPDATE, || lb::listening(ns, HTTP_PORT)),
                "director {}: nothing listens on port {HTTP_PORT}",
                d + 1
            );
            server
        })
        .collect();
    // Each request on a fresh connection, so a fresh source port: the edge hashes ports.
    let run = lb::http_load(
        LB_PROBE,
        &scene.client,
        VIP,
        &["--requests", "60", "--parallel", "4"],
    );
    eprintln!("60 connections to {VIP}: {}", run.summary());
    assert!(
        run.errors().is_empty(),
        "some connections failed: {}\n{}",
        run.summary(),
        describe(&scene, &daemons)
    );
    let by = run.by_server();
    for name in ["d1", "d2"] {
        assert!(
            by.get(name).copied().unwrap_or(0) > 0,
            "director {name} got no connection: {}",
            run.summary()
        );
    }
    drop(servers);
}
