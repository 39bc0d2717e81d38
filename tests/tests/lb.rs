//! The Direct Routing load balancer as a client sees it: two directors running vipflip
//! (`VI_1`, VIP `192.0.2.100`), three real servers with the VIP on `lo` (`arp_ignore=1`,
//! `arp_announce=2`) answering clients directly, and a client on one bridge. Requests spread
//! by weight; a failed real server leaves within its check's interval × fall; long-lived
//! streams survive a director failover because both directors build the same Maglev table.
//! Needs root.

use std::{collections::BTreeSet, time::Duration};

use vipflip_integration_tests::{
    lb::{self, ECHO_PORT, HTTP_PORT, LbScene, Tools, now_us},
    root_serial,
};

const TOOLS: Tools = Tools {
    lb_probe: env!("CARGO_BIN_EXE_vipflip-lb-probe"),
    probe: env!("CARGO_BIN_EXE_vipflip-probe"),
};
/// The VIP of `VI_1` and of every virtual service.
const VIP: &str = "192.0.2.100";
/// Elections at start-up, checks to rise: generous, polled.
const SETTLE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// The topology without a director

/// The scene itself, before any load balancing: a client that sends VIP traffic straight to
/// a real server's MAC (a static neighbour entry) is answered by that real server, from the
/// VIP, and no real server answers ARP for the VIP.
#[test]
fn real_servers_accept_vip_traffic_but_never_answer_arp_for_it() {
    let Some(_serial) = root_serial("real_servers_accept_vip_traffic_but_never_answer_arp_for_it")
    else {
        return;
    };
    let scene = LbScene::new(TOOLS, 3, VIP);
    let client = &scene.lab.client;

    // Nobody answers ARP for the VIP: no director runs, and the real servers ignore it.
    assert!(
        !client.ns.ping_once(VIP),
        "something answered for {VIP} with no director running"
    );
    let neigh = client.ns.ip(&["neigh", "show", VIP]);
    let text = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        !text.contains("lladdr"),
        "a real server answered ARP for {VIP}: {text}"
    );

    // Frames for the VIP sent to rs2's MAC are rs2's.
    let mac = scene.real_host(1).ns.mac(&scene.real_host(1).iface);
    let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    client.ns.ip(&[
        "neigh",
        "replace",
        VIP,
        "lladdr",
        &mac.join(":"),
        "dev",
        &client.iface,
        "nud",
        "permanent",
    ]);
    let run = scene.http_load(VIP, &["--requests", "20", "--parallel", "2"]);
    assert_eq!(
        run.by_server().get("rs2").copied(),
        Some(20),
        "{}",
        run.summary()
    );
    let streams = scene.start_streams(VIP, 2, 200);
    assert!(
        streams.established.iter().all(|(_, s)| s == "rs2"),
        "{:?}",
        streams.established
    );
    let reports = streams.finish();
    assert!(
        reports.iter().all(|r| r.error == "-" && r.replies > 5),
        "{reports:?}"
    );
    // The health checks' path: each real server answers on its own address.
    for i in 0..3 {
        let run = scene.http_load(&scene.real_addr(i), &["--requests", "3"]);
        let name = format!("rs{}", i + 1);
        assert_eq!(
            run.by_server().get(&name).copied(),
            Some(3),
            "{}",
            run.summary()
        );
    }
}

// ---------------------------------------------------------------------------------------
// The directors

/// `VI_1`'s priority on d1 and d2: d1 is master while it runs.
const PRIORITIES: [u8; 2] = [200, 100];

/// An HTTP check of `GET /` every `interval`.
fn http_check(interval: &str, timeout: &str, rise: u32, fall: u32) -> String {
    format!(
        "{{ kind = \"http\", interval = \"{interval}\", timeout = \"{timeout}\", rise = {rise}, \
         fall = {fall}, path = \"/\", expect_status = 200 }}"
    )
}

/// A TCP connect check every 500 ms.
fn tcp_check() -> String {
    "{ kind = \"tcp\", interval = \"500ms\", timeout = \"200ms\", rise = 1, fall = 2 }".to_owned()
}

/// `[[virtual_server]]` `name` on `VIP:port/protocol` by Maglev over the scene's first
/// `weights.len()` real servers, each with `check`.
fn service(
    scene: &LbScene,
    name: &str,
    port: u16,
    protocol: &str,
    extra: &str,
    weights: &[u16],
    check: &str,
) -> String {
    let reals: Vec<(String, u16, String)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| (scene.real_addr(i), *w, check.to_owned()))
        .collect();
    lb::virtual_server(name, VIP, port, protocol, "maglev", extra, &reals)
}

/// Runs vipflip on both directors with `services`, and waits until d1 is master, d2 backup,
/// and every real server of every service is up on both (so both hold the same tables).
fn start(scene: &mut LbScene, services: &str) {
    scene.start_directors(|lab, dir, d| {
        lb::director_config(lab, dir, d, PRIORITIES[d], VIP, services)
    });
    scene.await_master(0, SETTLE);
    scene.await_that(
        "every real server up on both directors, the services active on d1 only",
        SETTLE,
        |s| {
            (0..2).all(|d| {
                let vss = s.virtual_servers(d);
                !vss.is_empty()
                    && vss.iter().all(|v| {
                        v.active == (d == 0)
                            && v.reals.iter().filter(|r| !r.sorry).all(|r| r.state == "up")
                    })
            })
        },
    );
}

// ---------------------------------------------------------------------------------------
// Spread

/// Maglev with weights 1, 1, 2: 3000 requests from fresh source ports spread 25/25/50 %
/// (Pearson's chi-square below the 99.9 % critical value for 2 degrees of freedom), and none
/// fails.
#[test]
fn requests_spread_by_weight() {
    let Some(_serial) = root_serial("requests_spread_by_weight") else {
        return;
    };
    let mut scene = LbScene::new(TOOLS, 3, VIP);
    let web = service(
        &scene,
        "web",
        HTTP_PORT,
        "tcp",
        "",
        &[1, 1, 2],
        &http_check("500ms", "200ms", 1, 2),
    );
    start(&mut scene, &web);

    // The table itself: each server's share of the slots is its weight's, within 1 %.
    let vs = scene.vs(0, "web").expect("d1 shows web");
    let shares: Vec<f64> = vs
        .reals
        .iter()
        .map(|r| ratio(r.table_slots, vs.table_len))
        .collect();
    println!("table shares on d1: {shares:.4?} of {} slots", vs.table_len);
    for (share, want) in shares.iter().zip([0.25, 0.25, 0.5]) {
        assert!((share - want).abs() < 0.01, "table shares {shares:?}");
    }

    let run = scene.http_load(VIP, &["--requests", "3000", "--parallel", "8"]);
    let by = run.by_server();
    let observed: Vec<u64> = ["rs1", "rs2", "rs3"]
        .iter()
        .map(|n| by.get(*n).copied().unwrap_or(0))
        .collect();
    let chi2 = lb::chi_square(&observed, &[0.25, 0.25, 0.5]);
    println!(
        "spread of {} requests by weight 1:1:2: {observed:?}, chi-square {chi2:.2} (bound 13.82)",
        run.requests.len()
    );
    assert!(run.errors().is_empty(), "errors: {}", run.summary());
    assert_eq!(observed.iter().sum::<u64>(), 3000, "{}", run.summary());
    // χ²(2 dof) at 99.9 %: a correct balancer fails this once in a thousand runs.
    assert!(chi2 < 13.82, "chi-square {chi2:.2}: {}", run.summary());
}

#[expect(clippy::cast_precision_loss, reason = "slot counts below 2^20")]
fn ratio(part: u64, whole: u64) -> f64 {
    part as f64 / whole.max(1) as f64
}

// ---------------------------------------------------------------------------------------
// Health checks

/// The health check of the removal test: every 200 ms, 100 ms to answer, 2 to rise or fall.
const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 100;
const RISE: u64 = 2;
const FALL: u64 = 2;
/// On top of a check's bounds: status polling, the table write, a loaded machine.
const SLACK_MS: u64 = 300;
/// How long after the removal a request that started before it may still fail.
const LATE_MS: u64 = 100;

/// A real server whose HTTP server stops is taken out of the table within its check's
/// interval × fall (+ timeout): clients see errors only until then, and only the other two
/// servers afterwards. Started again, it is back within interval × rise and takes requests
/// again, with no error.
#[test]
#[expect(clippy::too_many_lines, reason = "one timeline, read top to bottom")]
fn a_failed_real_server_leaves_within_interval_times_fall_and_comes_back() {
    let Some(_serial) =
        root_serial("a_failed_real_server_leaves_within_interval_times_fall_and_comes_back")
    else {
        return;
    };
    let mut scene = LbScene::new(TOOLS, 3, VIP);
    let web = service(
        &scene,
        "web",
        HTTP_PORT,
        "tcp",
        "",
        &[1, 1, 1],
        &http_check(
            &format!("{INTERVAL_MS}ms"),
            &format!("{TIMEOUT_MS}ms"),
            u32::try_from(RISE).expect("small"),
            u32::try_from(FALL).expect("small"),
        ),
    );
    start(&mut scene, &web);
    let rs3 = scene.real_addr(2);
    let state = |s: &LbScene, d: usize| s.real_state(d, "web", &rs3).unwrap_or_default();

    // About 3,500 requests: each on a client port not used before in the run. A reused
    // 5-tuple can meet a flow the director still remembers from before a table change, which
    // is another matter than the removal measured here (see `reused`).
    let load = scene.start_http_load(
        VIP,
        &[
            "--duration-ms",
            "10000",
            "--parallel",
            "2",
            "--pause-ms",
            "4",
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    let stopped = now_us();
    scene.stop_http(2);
    scene.await_that("rs3 down on d1", Duration::from_secs(5), |s| {
        state(s, 0) == "down"
    });
    let removed = now_us();
    scene.await_that("rs3 down on d2 too", Duration::from_secs(5), |s| {
        state(s, 1) == "down"
    });
    std::thread::sleep(Duration::from_secs(2));
    let restarted = now_us();
    scene.start_http(2);
    scene.await_that("rs3 up again on d1", Duration::from_secs(5), |s| {
        state(s, 0) == "up"
    });
    let back = now_us();
    let run = load.finish_http();
    let last = run.requests.last().map_or(0, |r| r.start_us);
    assert!(
        last > back + 1_000_000,
        "the load ended too soon after rs3 came back to see it: the harness is too slow here"
    );

    let removal_ms = (removed - stopped) / 1000;
    let return_ms = (back - restarted) / 1000;
    let window = run.between(stopped, removed + LATE_MS * 1000);
    let during = run.between(removed + LATE_MS * 1000, restarted);
    let after = run.between(back + LATE_MS * 1000, u64::MAX);
    println!(
        "rs3 removed {removal_ms} ms after its HTTP server stopped (bound {} ms + {SLACK_MS} ms), \
         back {return_ms} ms after it restarted; {} client errors in between",
        INTERVAL_MS * FALL + TIMEOUT_MS,
        window.errors().len()
    );
    println!("  before the stop: {}", run.between(0, stopped).summary());
    println!("  until removal:   {}", window.summary());
    println!("  while removed:   {}", during.summary());
    println!("  after return:    {}", after.summary());
    assert!(
        removal_ms <= INTERVAL_MS * FALL + TIMEOUT_MS + SLACK_MS,
        "rs3 removed after {removal_ms} ms"
    );
    assert!(
        return_ms <= INTERVAL_MS * RISE + TIMEOUT_MS + SLACK_MS,
        "rs3 back after {return_ms} ms"
    );
    // Errors only between the stop and the removal: the requests that were sent to rs3.
    let stray: Vec<_> = run
        .errors()
        .into_iter()
        .filter(|r| r.start_us + 50_000 < stopped || r.start_us >= removed + LATE_MS * 1000)
        .collect();
    assert!(
        stray.is_empty(),
        "{} errors outside the removal window (stopped at {stopped}, removed at {removed}), \
         {} of them on a client port used earlier in the run: {stray:?}",
        stray.len(),
        stray.iter().filter(|r| reused(&run, r)).count()
    );
    assert!(
        !window.errors().is_empty(),
        "no request failed while rs3 was dead and in the table: did it get none?"
    );
    let by = during.by_server();
    assert!(
        !by.contains_key("rs3")
            && by.get("rs1").is_some_and(|n| *n > 10)
            && by.get("rs2").is_some_and(|n| *n > 10),
        "while rs3 is out: {}",
        during.summary()
    );
    assert!(
        after.by_server().get("rs3").is_some_and(|n| *n > 10),
        "after rs3 returned: {}",
        after.summary()
    );
}

/// Whether `request`'s client port served an earlier request of `run`: the same 5-tuple
/// again, whose flow the director may still remember (per CPU) from before a table change.
/// On veth a flow's frames reach XDP on whichever CPU sent them, so two CPUs can hold
/// different memories of one 5-tuple, or one none, and split a connection between two real
/// servers: the second one resets it.
fn reused(run: &lb::HttpRun, request: &lb::Request) -> bool {
    run.requests
        .iter()
        .any(|r| r.port == request.port && r.start_us < request.start_us)
}

// ---------------------------------------------------------------------------------------
// Director failover

/// How the master director goes away.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Its link goes down: the director is gone, its XDP program with it.
    LinkDown,
    /// Its agent is killed: no priority 0, no cleanup; its pinned XDP program keeps
    /// forwarding until the client follows the backup's gratuitous ARP.
    Kill,
    /// Its agent is stopped (SIGTERM): it hands off with a priority-0 advert.
    Term,
}

/// Long-lived streams in the failover tests, and how long they run.
const STREAMS: u32 = 20;
const RUN_MS: u32 = 8000;

/// 20 long-lived TCP streams through d1, each exchanging a line every 10 ms; d1 goes away
/// (`stop`) and d2 takes over: every stream survives (no reset, no error, exchanges go on
/// after the failover) on the real server it started on, since d2 builds the same Maglev
/// table and needs no state from d1. Prints the longest pause the streams saw.
fn streams_survive(test: &str, stop: Stop) {
    let Some(_serial) = root_serial(test) else {
        return;
    };
    let mut scene = LbScene::new(TOOLS, 3, VIP);
    let echo = service(
        &scene,
        "echo",
        ECHO_PORT,
        "tcp",
        "",
        &[1, 1, 1],
        &tcp_check(),
    );
    start(&mut scene, &echo);

    let streams = scene.start_streams(VIP, STREAMS, RUN_MS);
    let established = streams.established.clone();
    let servers: BTreeSet<&str> = established.iter().map(|(_, s)| s.as_str()).collect();
    assert!(
        servers.len() >= 2,
        "all {STREAMS} streams on {servers:?}: nothing to tell the directors' tables apart"
    );
    std::thread::sleep(Duration::from_secs(2));
    let before = scene.lb_forwarded(1);
    let stopped = now_us();
    match stop {
        Stop::LinkDown => {
            let d1 = scene.director(0);
            d1.ns.ip(&["link", "set", &d1.iface, "down"]);
        }
        Stop::Kill => scene.agents[0].signal(libc::SIGKILL),
        Stop::Term => scene.agents[0].signal(libc::SIGTERM),
    }
    scene.await_that("d2 master of VI_1", Duration::from_secs(5), |s| {
        s.agents[1].state("VI_1").as_deref() == Some("Master")
    });
    let took_ms = (now_us() - stopped) / 1000;
    let reports = streams.finish();
    let forwarded = scene.lb_forwarded(1) - before;

    let mut gaps: Vec<u64> = reports.iter().map(|r| r.max_gap_us / 1000).collect();
    gaps.sort_unstable();
    println!(
        "{stop:?}: d2 master {took_ms} ms after d1 stopped; {} streams on {:?}; longest pause \
         per stream: min {} ms, median {} ms, max {} ms; d2 forwarded {forwarded} frames",
        reports.len(),
        servers,
        gaps.first().copied().unwrap_or(0),
        gaps.get(gaps.len() / 2).copied().unwrap_or(0),
        gaps.last().copied().unwrap_or(0),
    );
    assert_eq!(reports.len(), established.len(), "{reports:?}");
    let end = stopped + 2_000_000;
    for (r, (port, server)) in reports.iter().zip(&established) {
        let fine = r.error == "-"
            && r.port == *port
            && r.first == *server
            && r.last == *server
            && r.changes == 0
            && r.last_reply_us > end;
        assert!(
            fine,
            "{stop:?}: stream from port {port} on {server} did not carry on there: {r:?} \
             (stopped at {stopped}){}",
            scene.describe()
        );
    }
    assert!(
        forwarded > 0,
        "d2 forwarded nothing after the failover: the client still goes through d1{}",
        scene.describe()
    );
}

#[test]
fn streams_survive_the_directors_link_going_down() {
    streams_survive(
        "streams_survive_the_directors_link_going_down",
        Stop::LinkDown,
    );
}

#[test]
fn streams_survive_the_directors_agent_killed() {
    streams_survive("streams_survive_the_directors_agent_killed", Stop::Kill);
}

#[test]
fn streams_survive_a_graceful_handoff() {
    streams_survive("streams_survive_a_graceful_handoff", Stop::Term);
}

// ---------------------------------------------------------------------------------------
// UDP, and the sorry server

/// A UDP service: 60 flows (client ports), 20 datagrams each, every one answered, each flow
/// by one real server throughout, and the flows spread over all three.
#[test]
fn udp_flows_stay_on_one_real_server_each() {
    let Some(_serial) = root_serial("udp_flows_stay_on_one_real_server_each") else {
        return;
    };
    let mut scene = LbScene::new(TOOLS, 3, VIP);
    // The responders have no TCP side: the check connects to the echo service next to them.
    let check = format!(
        "{{ kind = \"tcp\", port = {ECHO_PORT}, interval = \"500ms\", timeout = \"200ms\" }}"
    );
    let udp = service(&scene, "udp", lb::UDP_PORT, "udp", "", &[1, 1, 1], &check);
    start(&mut scene, &udp);
    let flows = scene.udp_flows(VIP, 60, 20);
    let mut spread: BTreeSet<&str> = BTreeSet::new();
    for flow in &flows {
        assert!(
            flow.answered == 20 && flow.by.len() == 1,
            "flow from port {}: {flow:?}{}",
            flow.port,
            scene.describe()
        );
        spread.extend(flow.by.keys().map(String::as_str));
    }
    assert_eq!(flows.len(), 60);
    println!("60 UDP flows, each on one real server, over {spread:?}");
    assert_eq!(spread.len(), 3, "{flows:?}");
}

/// When every real server has failed, the sorry server takes the requests; when one comes
/// back, it takes them again.
#[test]
fn the_sorry_server_takes_over_when_every_real_server_fails() {
    let Some(_serial) = root_serial("the_sorry_server_takes_over_when_every_real_server_fails")
    else {
        return;
    };
    // rs4 is the sorry server: a real server (the VIP on lo) outside the service's list.
    let mut scene = LbScene::new(TOOLS, 4, VIP);
    let sorry = format!("sorry_server = \"{}\"", scene.real_addr(3));
    let web = service(
        &scene,
        "web",
        HTTP_PORT,
        "tcp",
        &sorry,
        &[1, 1, 1],
        &http_check("200ms", "100ms", 1, 2),
    );
    start(&mut scene, &web);
    let before = scene.http_load(VIP, &["--requests", "300", "--parallel", "4"]);
    assert!(
        before.errors().is_empty() && !before.by_server().contains_key("rs4"),
        "with every real server up: {}",
        before.summary()
    );

    for i in 0..3 {
        scene.stop_http(i);
    }
    scene.await_that("d1 uses the sorry server", Duration::from_secs(5), |s| {
        s.vs(0, "web")
            .is_some_and(|v| v.using_sorry && v.healthy == 0)
    });
    let sorry_run = scene.http_load(VIP, &["--requests", "300", "--parallel", "4"]);
    println!("every real server down: {}", sorry_run.summary());
    assert_eq!(
        sorry_run.by_server().get("rs4").copied(),
        Some(300),
        "{}{}",
        sorry_run.summary(),
        scene.describe()
    );

    scene.start_http(0);
    scene.await_that("d1 back on rs1", Duration::from_secs(5), |s| {
        s.vs(0, "web")
            .is_some_and(|v| !v.using_sorry && v.healthy == 1)
    });
    let back = scene.http_load(VIP, &["--requests", "300", "--parallel", "4"]);
    println!("rs1 back: {}", back.summary());
    assert_eq!(
        back.by_server().get("rs1").copied(),
        Some(300),
        "{}{}",
        back.summary(),
        scene.describe()
    );
}
