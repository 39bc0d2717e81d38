//! Active-active directors behind BGP ECMP, as a client sees them ([`ScaleOut`]: directors
//! with a virtual server on their interface, the first on FRR and the others on BIRD, each
//! configured by `vipflip routing-config`, behind an FRR edge router). New connections spread
//! over three; 200 long-lived streams carry on, each on its real server, through a drain, a
//! cut (BFD), an agent killed with SIGKILL and a joining director; a failed real server moves
//! only its own streams; the announcement follows the virtual server's quorum. Needs root.

use std::time::Duration;

use vipflip_integration_tests::{
    lb::{self, ECHO_PORT},
    scaleout::{Options, ScaleOut, VIP, broken},
    serial, wait_for,
};

const LB_PROBE: &str = env!("CARGO_BIN_EXE_vipflip-lb-probe");

fn start() -> ScaleOut {
    ScaleOut::start(Options::two(LB_PROBE))
}

/// `directors` on the segment, the first `running` running.
fn start_some(directors: usize, running: usize) -> ScaleOut {
    ScaleOut::start(Options {
        directors,
        running,
        ..Options::two(LB_PROBE)
    })
}

#[test]
#[ignore = "needs root"]
fn new_connections_spread_over_the_directors_and_real_servers() {
    let _serial = serial();
    // Three directors: d1 on FRR, d2 and d3 on BIRD.
    let world = start_some(3, 3);
    let before: Vec<u64> = (0..3).map(|d| world.forwarded(d)).collect();
    let run = lb::http_load(
        LB_PROBE,
        &world.scene.client,
        VIP,
        &["--requests", "600", "--parallel", "8"],
    );
    assert!(
        run.errors().is_empty(),
        "failed requests: {}\n{}",
        run.summary(),
        world.logs()
    );
    let forwarded: Vec<u64> = (0..3).map(|d| world.forwarded(d) - before[d]).collect();
    let total: u64 = forwarded.iter().sum();
    eprintln!(
        "600 connections: frames forwarded by d1/d2/d3 {forwarded:?}; {}",
        run.summary()
    );
    for (d, n) in forwarded.iter().enumerate() {
        #[expect(clippy::cast_precision_loss, reason = "frame counts far below 2^52")]
        let share = *n as f64 / total as f64;
        assert!(
            (0.25..=5.0 / 12.0).contains(&share),
            "director d{} took {:.0}% of the frames (want a third ± 25%): {forwarded:?}",
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
    assert!(
        fingerprints.iter().all(|f| *f == fingerprints[0]),
        "the directors' tables differ: {fingerprints:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_drained_director_hands_its_streams_over_without_a_reset() {
    let _serial = serial();
    let mut world = start();
    let streams = world.streams(200, 5000);
    let before = world.forwarded(0);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        world.forwarded(0) > before,
        "no stream went through d1: nothing to drain"
    );
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
    let before = world.forwarded(0);
    std::thread::sleep(Duration::from_secs(1));
    let carried = world.forwarded(0) - before;
    eprintln!("cut: d1 forwarded {carried} stream frames in the second before");
    assert!(carried > 0, "no stream went through d1: nothing to cut");
    // Its switch port stops forwarding: no carrier drops, only BFD can tell.
    world.scene.cut(0);
    let took = world
        .scene
        .wait_edge_nexthops(VIP, 1, Duration::from_secs(5));
    eprintln!("cut: the edge dropped d1 after {took:?} (BFD 50 ms x 3)");
    // BFD detects in 150 ms, the routers add their queueing: far below the 9 s hold time.
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(2)),
        "{took:?}\n{}",
        world.scene.describe()
    );
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
    let slow: Vec<_> = results.iter().filter(|r| r.max_gap_us >= 200_000).collect();
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
    let (on_rs2, others): (Vec<_>, Vec<_>) = results.iter().partition(|r| r.first == "rs2");
    assert!(!on_rs2.is_empty(), "no stream on rs2: {results:#?}");
    let moved: Vec<_> = others.iter().filter(|r| !r.unbroken()).collect();
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
