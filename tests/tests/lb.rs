//! The Direct Routing load balancer as a client sees it: two directors running vipflip
//! (`VI_1`, VIP `192.0.2.100`), three real servers with the VIP on `lo` (`arp_ignore=1`,
//! `arp_announce=2`) answering clients directly, and a client on one bridge. Requests spread
//! by weight; a failed real server leaves within its check's interval × fall, with no error
//! outside that window even when client ports are reused; losing a service's quorum lowers
//! the master's priority until the backup takes over; a reload to weight 0 drains a real
//! server, keeping its streams; long-lived streams survive a director failover because both
//! directors build the same Maglev table; an IPv6 service spreads and keeps its streams
//! through a failover the same way; a real server's host replaced at its address is sent to
//! at its new MAC within milliseconds. Needs root.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use aya::maps::{Array, Map, MapData};
use vipflip_common::{MAX_REALS, RealHead, RealSlot};
use vipflip_integration_tests::{
    lb::{self, ECHO_PORT, HTTP_PORT, LbScene, Tools, now_us},
    serial,
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
#[ignore = "needs root"]
fn real_servers_accept_vip_traffic_but_never_answer_arp_for_it() {
    let _serial = serial();
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
    start_each(scene, [services, services]);
}

/// [`start`] with `services[d]` on director `d`.
fn start_each(scene: &mut LbScene, services: [&str; 2]) {
    start_on(scene, VIP, services);
}

/// [`start_each`] with `vip` as `VI_1`'s address (IPv4 or IPv6).
fn start_on(scene: &mut LbScene, vip: &str, services: [&str; 2]) {
    scene.start_directors(|lab, dir, d| {
        lb::director_config(lab, dir, d, PRIORITIES[d], vip, services[d])
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
#[ignore = "needs root"]
fn requests_spread_by_weight() {
    let _serial = serial();
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
#[ignore = "needs root"]
fn a_failed_real_server_leaves_within_interval_times_fall_and_comes_back() {
    let _serial = serial();
    // About 3,500 requests: each on a client port not used before in the run (see the next
    // test for reused ones).
    removal_and_return(
        None,
        &[
            "--duration-ms",
            "10000",
            "--parallel",
            "2",
            "--pause-ms",
            "4",
        ],
    );
}

/// The removal and return above under heavy load (about 10,000 requests a second) from the
/// client ports 40000-40999 (`connect` takes the even ones), so that 5-tuples come back again
/// and again: some first served by rs1 or rs2 while rs3 was out and then, once it is back,
/// placed on rs3 by the table while the directors still remember them elsewhere.
/// A SYN follows the current table and `FLOWS` is one table for every CPU, so no reused
/// 5-tuple is split between two real servers: no error outside the removal window.
#[test]
#[ignore = "needs root"]
fn reused_client_ports_meet_no_reset_through_a_removal_and_return() {
    let _serial = serial();
    let run = removal_and_return(
        Some("40000 40999"),
        &["--duration-ms", "10000", "--parallel", "4"],
    );
    // For each request, the server of the previous one on its client port.
    let mut previous: BTreeMap<u16, &str> = BTreeMap::new();
    let (mut reused_ports, mut moved_to_rs3) = (0, 0);
    for r in run.requests.iter().filter(|r| r.port != 0) {
        let server = r.outcome.as_deref().unwrap_or("-");
        if let Some(before) = previous.insert(r.port, server) {
            reused_ports += 1;
            // Before rs3 stopped, a 5-tuple the table gives rs3 went to rs3 every time.
            if server == "rs3" && matches!(before, "rs1" | "rs2") {
                moved_to_rs3 += 1;
            }
        }
    }
    println!(
        "{} requests from client ports 40000-40999: {reused_ports} on a port used before, \
         {moved_to_rs3} of them on rs3 after its return, their port's previous request \
         answered by rs1 or rs2",
        run.requests.len()
    );
    assert!(
        moved_to_rs3 >= 100,
        "too few reused 5-tuples moved to rs3 to tell: {moved_to_rs3}"
    );
}

/// The removal test's timeline: three real servers of `web` with the HTTP check below;
/// `http-load` with `load` (and the client's ports limited to `port_range`) while rs3's HTTP
/// server stops for about two seconds and starts again. Asserts the removal's and return's
/// bounds, errors only in the removal window, rs3 out while it is and back afterwards.
fn removal_and_return(port_range: Option<&str>, load: &[&str]) -> lb::HttpRun {
    let mut scene = LbScene::new(TOOLS, 3, VIP);
    if let Some(range) = port_range {
        scene.client_port_range(range);
    }
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

    let load = scene.start_http_load(VIP, load);
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
        "{} errors outside the removal window (stopped at {stopped}, removed at {removed}, \
         back at {back}), {} of them on a client port used earlier in the run: {stray:?}{}",
        stray.len(),
        stray.iter().filter(|r| reused(&run, r)).count(),
        scene.describe()
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
    run
}

/// Whether `request`'s client port served an earlier request of `run`: the same 5-tuple
/// again, whose flow the directors may still remember from before a table change.
fn reused(run: &lb::HttpRun, request: &lb::Request) -> bool {
    run.requests
        .iter()
        .any(|r| r.port == request.port && r.start_us < request.start_us)
}

// ---------------------------------------------------------------------------------------
// Quorum

/// `VI_1`'s advert interval (`lb::director_config`).
const ADVERT_MS: u64 = 100;
/// What losing `web`'s quorum does to `VI_1` on d1 and d2: d1 falls from 200 to 50, below d2
/// even when d2 has lost it too (100 - 20 = 80). Each director has its own stake in the
/// service; one rule on both, as in keepalived, would move nothing.
const QUORUM_WEIGHTS: [i32; 2] = [-150, -20];

/// `web` over three real servers with a quorum of three: when rs3's HTTP server stops, d1 loses
/// the quorum within the check's interval × fall (+ timeout), and its effective priority
/// drops to 50; d2 (80 after its own loss) becomes master within one master-down interval
/// (3 adverts + skew) more and serves the clients from rs1 and rs2. When rs3 is back, the
/// quorum is met again and d1 (200) preempts d2.
#[test]
#[ignore = "needs root"]
#[expect(clippy::too_many_lines, reason = "one timeline, read top to bottom")]
fn losing_quorum_lowers_the_masters_priority_and_the_backup_takes_over() {
    let _serial = serial();
    let mut scene = LbScene::new(TOOLS, 3, VIP);
    let check = http_check(
        &format!("{INTERVAL_MS}ms"),
        &format!("{TIMEOUT_MS}ms"),
        u32::try_from(RISE).expect("small"),
        u32::try_from(FALL).expect("small"),
    );
    let web = QUORUM_WEIGHTS.map(|w| {
        service(
            &scene,
            "web",
            HTTP_PORT,
            "tcp",
            &format!("quorum = 3\nquorum_weight = {w}"),
            &[1, 1, 1],
            &check,
        )
    });
    start_each(&mut scene, [&web[0], &web[1]]);
    let priority =
        |s: &LbScene, d: usize| s.agents[d].inst("VI_1").map_or(0, |i| i.effective_priority);
    for (d, base) in PRIORITIES.into_iter().enumerate() {
        assert_eq!(
            scene.tracker_effect(d, "quorum of web").as_deref(),
            Some("none"),
            "d{}: quorum met, no effect{}",
            d + 1,
            scene.describe()
        );
        assert_eq!(priority(&scene, d), u64::from(base));
    }
    let before = scene.http_load(VIP, &["--requests", "300", "--parallel", "4"]);
    assert!(
        before.errors().is_empty() && before.by_server().len() == 3,
        "with quorum: {}",
        before.summary()
    );

    // rs3 stops: quorum lost on both, d1 below d2.
    let stopped = now_us();
    scene.stop_http(2);
    let fall_ms = INTERVAL_MS * FALL + TIMEOUT_MS;
    // RFC 5798 §6.1: Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time, the skew
    // below one interval.
    let master_down_ms = 4 * ADVERT_MS;
    scene.await_that(
        "d2 master of VI_1 once d1 lost the quorum",
        Duration::from_millis(fall_ms + master_down_ms + 5000),
        |s| s.agents[1].state("VI_1").as_deref() == Some("Master"),
    );
    let took_over_ms = (now_us() - stopped) / 1000;
    scene.await_master(1, Duration::from_secs(2));
    let lowered: Vec<u64> = (0..2).map(|d| priority(&scene, d)).collect();
    let effects: Vec<Option<String>> = (0..2)
        .map(|d| scene.tracker_effect(d, "quorum of web"))
        .collect();
    println!(
        "d2 master {took_over_ms} ms after rs3 stopped (bound {fall_ms} + {master_down_ms} + \
         {SLACK_MS} ms); effective priorities {lowered:?}, quorum effects {effects:?}"
    );
    assert_eq!(lowered, [50, 80], "{}", scene.describe());
    assert_eq!(
        effects,
        [Some("-150".to_owned()), Some("-20".to_owned())],
        "{}",
        scene.describe()
    );
    assert!(
        took_over_ms <= fall_ms + master_down_ms + SLACK_MS,
        "d2 took over {took_over_ms} ms after rs3 stopped"
    );

    // d2 serves the clients now: from rs1 and rs2, with d1's balancer idle.
    scene.await_that("web active on d2, not on d1", Duration::from_secs(2), |s| {
        s.vs(1, "web").is_some_and(|v| v.active && v.healthy == 2)
            && s.vs(0, "web").is_some_and(|v| !v.active)
    });
    let (d1_before, d2_before) = (scene.lb_forwarded(0), scene.lb_forwarded(1));
    let served = scene.http_load(VIP, &["--requests", "300", "--parallel", "4"]);
    let (d1_sent, d2_sent) = (
        scene.lb_forwarded(0) - d1_before,
        scene.lb_forwarded(1) - d2_before,
    );
    println!(
        "through d2: {}; frames balanced by d1 {d1_sent}, by d2 {d2_sent}",
        served.summary()
    );
    let by = served.by_server();
    assert!(
        served.errors().is_empty() && by.len() == 2 && !by.contains_key("rs3"),
        "through d2: {}",
        served.summary()
    );
    assert!(
        d1_sent == 0 && d2_sent >= 300,
        "d1 balanced {d1_sent} frames, d2 {d2_sent}{}",
        scene.describe()
    );

    // rs3 back: quorum met again, d1 preempts.
    let restarted = now_us();
    scene.start_http(2);
    let rise_ms = INTERVAL_MS * RISE + TIMEOUT_MS;
    scene.await_that(
        "d1 master of VI_1 again",
        Duration::from_millis(rise_ms + master_down_ms + 5000),
        |s| s.agents[0].state("VI_1").as_deref() == Some("Master"),
    );
    let back_ms = (now_us() - restarted) / 1000;
    scene.await_master(0, Duration::from_secs(2));
    let restored: Vec<u64> = (0..2).map(|d| priority(&scene, d)).collect();
    println!(
        "d1 master again {back_ms} ms after rs3 restarted (bound {rise_ms} + {master_down_ms} + \
         {SLACK_MS} ms); effective priorities {restored:?}"
    );
    assert_eq!(restored, [200, 100], "{}", scene.describe());
    assert_eq!(
        scene.tracker_effect(0, "quorum of web").as_deref(),
        Some("none")
    );
    assert!(
        back_ms <= rise_ms + master_down_ms + SLACK_MS,
        "d1 master again {back_ms} ms after rs3 restarted"
    );
    scene.await_that("web active on d1 again", Duration::from_secs(2), |s| {
        s.vs(0, "web").is_some_and(|v| v.active && v.healthy == 3)
    });
    let after = scene.http_load(VIP, &["--requests", "300", "--parallel", "4"]);
    assert!(
        after.errors().is_empty() && after.by_server().len() == 3,
        "d1 again: {}",
        after.summary()
    );
}

// ---------------------------------------------------------------------------------------
// Drain

/// `web` (HTTP) and `echo` (streams) over rs1..rs3; 20 streams run when a reload sets rs2's
/// weight to 0 on both directors. Drained, rs2 keeps its streams (they go on exchanging on
/// it, with no error), takes no new request (those go to rs1 and rs3, none failing), and
/// `vipflip status` shows it `drained` with no table slot.
#[test]
#[ignore = "needs root"]
fn a_reload_to_weight_zero_drains_a_real_server_keeping_its_streams() {
    let _serial = serial();
    let mut scene = LbScene::new(TOOLS, 3, VIP);
    let services = |weights: &[u16]| {
        service(
            &scene,
            "web",
            HTTP_PORT,
            "tcp",
            "",
            weights,
            &http_check("200ms", "100ms", 1, 2),
        ) + &service(&scene, "echo", ECHO_PORT, "tcp", "", weights, &tcp_check())
    };
    let (full, drained) = (services(&[1, 1, 1]), services(&[1, 0, 1]));
    start(&mut scene, &full);
    let rs2 = scene.real_addr(1);

    let streams = scene.start_streams(VIP, STREAMS, 6000);
    let established = streams.established.clone();
    assert!(
        established.iter().any(|(_, s)| s == "rs2") && established.iter().any(|(_, s)| s != "rs2"),
        "the streams do not tell rs2 apart: {established:?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let reloaded = now_us();
    for (d, priority) in PRIORITIES.into_iter().enumerate() {
        scene.agents[d].sighup_with(&lb::director_config(
            &scene.lab, &scene.dir, d, priority, VIP, &drained,
        ));
    }
    scene.await_that(
        "rs2 drained in web and echo on both directors",
        Duration::from_secs(5),
        |s| {
            (0..2).all(|d| {
                let vss = s.virtual_servers(d);
                vss.len() == 2
                    && vss.iter().all(|v| {
                        v.reals.iter().all(|r| {
                            (r.address == rs2) == (r.state == "drained" && r.table_slots == 0)
                                && (r.address == rs2 || r.state == "up")
                        })
                    })
            })
        },
    );
    let drained_ms = (now_us() - reloaded) / 1000;
    let run = scene.http_load(VIP, &["--requests", "600", "--parallel", "4"]);
    let reports = streams.finish();
    println!(
        "rs2 drained on both directors {drained_ms} ms after the SIGHUPs; new requests: {}",
        run.summary()
    );
    let by = run.by_server();
    assert!(
        run.errors().is_empty()
            && !by.contains_key("rs2")
            && by.get("rs1").is_some_and(|n| *n > 100)
            && by.get("rs3").is_some_and(|n| *n > 100),
        "after the drain: {}",
        run.summary()
    );
    assert_eq!(reports.len(), established.len(), "{reports:?}");
    let end = reloaded + 3_000_000;
    for (r, (port, server)) in reports.iter().zip(&established) {
        let fine = r.error == "-"
            && r.port == *port
            && r.first == *server
            && r.last == *server
            && r.changes == 0
            && r.last_reply_us > end;
        assert!(
            fine,
            "stream from port {port} on {server} did not carry on there: {r:?} (reloaded at \
             {reloaded}){}",
            scene.describe()
        );
    }
    let on_rs2 = established.iter().filter(|(_, s)| s == "rs2").count();
    println!(
        "{} streams ({on_rs2} on rs2) ran on to their end on their real server",
        reports.len()
    );
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
fn streams_survive(stop: Stop) {
    let _serial = serial();
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
#[ignore = "needs root"]
fn streams_survive_the_directors_link_going_down() {
    streams_survive(Stop::LinkDown);
}

#[test]
#[ignore = "needs root"]
fn streams_survive_the_directors_agent_killed() {
    streams_survive(Stop::Kill);
}

#[test]
#[ignore = "needs root"]
fn streams_survive_a_graceful_handoff() {
    streams_survive(Stop::Term);
}

// ---------------------------------------------------------------------------------------
// IPv6

/// The IPv6 VIP of `VI_1` (version 3) in the IPv6 test, on `lo` of every real server as a
/// /128.
const VIP6: &str = "2001:db8::100";

/// An IPv6 instance (`2001:db8::100/64`) with two services on its VIP, by Maglev over three
/// real servers of equal weight checked on their own IPv6 addresses (`2001:db8::3`…): HTTP
/// on port 80 (an HTTP check) and echo on port 7000 (a TCP check). 600 requests from the
/// client spread over all three, each at least 20 %, none failing; then 12 long-lived
/// streams survive d1's link going down, each on the real server it started on, d2
/// forwarding them.
#[test]
#[ignore = "needs root"]
fn an_ipv6_service_spreads_and_survives_a_director_failover() {
    let _serial = serial();
    let scene = ipv6_scene();
    // Spread: equal weights, each server at least 20 % of 600 requests, no error.
    let run = scene.http_load(VIP6, &["--requests", "600", "--parallel", "4"]);
    let by = run.by_server();
    let observed: Vec<u64> = ["rs1", "rs2", "rs3"]
        .iter()
        .map(|n| by.get(*n).copied().unwrap_or(0))
        .collect();
    println!(
        "IPv6: {} requests to [{VIP6}]:{HTTP_PORT} answered {observed:?}",
        run.requests.len()
    );
    assert!(
        run.errors().is_empty(),
        "errors: {}{}",
        run.summary(),
        scene.describe()
    );
    assert_eq!(observed.iter().sum::<u64>(), 600, "{}", run.summary());
    assert!(
        observed.iter().all(|&n| n >= 120),
        "uneven: {}{}",
        run.summary(),
        scene.describe()
    );
    // The checks still pass with d1 master for a while (they come from d1's own address).
    for vs in scene.virtual_servers(0) {
        assert!(
            vs.healthy == 3 && vs.active,
            "d1: {vs:?}{}",
            scene.describe()
        );
    }
    assert!(
        scene.lb_forwarded(0) >= 600,
        "d1 forwarded fewer frames than requests:\n{}",
        scene.maps(0)
    );

    ipv6_streams_survive_d1s_link_going_down(&scene);
}

/// The scene of the IPv6 test: its two services started, both directors showing every real
/// server up, d1 master.
fn ipv6_scene() -> LbScene {
    let mut scene = LbScene::new(TOOLS, 3, VIP6);
    let reals = |check: &str| -> Vec<(String, u16, String)> {
        (0..3)
            .map(|i| (scene.real_addr6(i), 1, check.to_owned()))
            .collect()
    };
    let services = lb::virtual_server(
        "web6",
        VIP6,
        HTTP_PORT,
        "tcp",
        "maglev",
        "",
        &reals(&http_check("500ms", "200ms", 1, 2)),
    ) + &lb::virtual_server(
        "echo6",
        VIP6,
        ECHO_PORT,
        "tcp",
        "maglev",
        "",
        &reals(&tcp_check()),
    );
    // The daemon adds an IPv6 VIP deprecated, so the health checks a master starts leave
    // from the director's own address: from the VIP (the newest of two equally long matches
    // for source selection), a real server holding the VIP on `lo` would answer itself and
    // every check would time out a moment after a director becomes master. The checks below
    // that every real server stays up through both phases would fail on that.
    start_on(&mut scene, VIP6, [&services, &services]);
    for d in 0..2 {
        for vs in scene.virtual_servers(d) {
            let addresses: Vec<&str> = vs.reals.iter().map(|r| r.address.as_str()).collect();
            println!(
                "d{}: {} active={} healthy={} table_len={} reals {addresses:?}",
                d + 1,
                vs.name,
                vs.active,
                vs.healthy,
                vs.table_len
            );
            assert_eq!(vs.healthy, 3, "d{}: {vs:?}", d + 1);
        }
    }

    scene
}

/// 12 long-lived streams to the IPv6 echo service survive d1's link going down, each on the
/// real server it started on, d2 forwarding them with every real server still up.
fn ipv6_streams_survive_d1s_link_going_down(scene: &LbScene) {
    let streams = scene.start_streams(VIP6, 12, RUN_MS);
    let established = streams.established.clone();
    let servers: BTreeSet<&str> = established.iter().map(|(_, s)| s.as_str()).collect();
    assert!(
        servers.len() >= 2,
        "all streams on {servers:?}: nothing to tell the directors' tables apart"
    );
    std::thread::sleep(Duration::from_secs(2));
    let before = scene.lb_forwarded(1);
    let stopped = now_us();
    let d1 = scene.director(0);
    d1.ns.ip(&["link", "set", &d1.iface, "down"]);
    scene.await_that("d2 master of VI_1", Duration::from_secs(5), |s| {
        s.agents[1].state("VI_1").as_deref() == Some("Master")
    });
    let took_ms = (now_us() - stopped) / 1000;
    let reports = streams.finish();
    let forwarded = scene.lb_forwarded(1) - before;
    let max_gap = reports.iter().map(|r| r.max_gap_us / 1000).max();
    println!(
        "IPv6 failover: d2 master {took_ms} ms after d1's link went down; {} streams on \
         {servers:?}; longest pause {max_gap:?} ms; d2 forwarded {forwarded} frames",
        reports.len()
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
            "IPv6: stream from port {port} on {server} did not carry on there: {r:?} \
             (stopped at {stopped}){}",
            scene.describe()
        );
    }
    for vs in scene.virtual_servers(1) {
        assert!(
            vs.healthy == 3 && vs.active,
            "d2: {vs:?}{}",
            scene.describe()
        );
    }
    assert!(
        forwarded > 0,
        "d2 forwarded nothing after the failover:\n{}{}",
        scene.maps(1),
        scene.describe()
    );
}

// ---------------------------------------------------------------------------------------
// Neighbours

/// How soon both directors' `REALS` must name a real server's new MAC once its host announced
/// it: the resolver follows neighbour events (it used to re-read the table every second).
const NEW_MAC_BOUND: Duration = Duration::from_millis(300);

/// rs1's host is replaced by another at its address: a new MAC, announced by gratuitous ARP
/// as a host coming up announces itself. Both directors' `REALS` entries for rs1 name the new
/// MAC within milliseconds (same slot, same generation: its flows stay), and requests reach
/// the new host (frames to the old MAC would reach nobody).
#[test]
#[ignore = "needs root"]
fn a_real_server_replaced_behind_its_address_is_sent_to_within_milliseconds() {
    let _serial = serial();
    let mut scene = LbScene::new(TOOLS, 1, VIP);
    let web = service(&scene, "web", HTTP_PORT, "tcp", "", &[1], &tcp_check());
    start(&mut scene, &web);
    let before = scene.http_load(VIP, &["--requests", "20"]);
    assert_eq!(
        before.by_server().get("rs1").copied(),
        Some(20),
        "{}",
        before.summary()
    );

    let old = scene.real_host(0).ns.mac(&scene.real_host(0).iface);
    let new = [0x02, 0x76, 0x66, 0, 0, 0x01];
    let reals: Vec<Array<MapData, RealSlot>> = (0..2).map(|d| reals_map(&scene, d)).collect();
    let slots: Vec<u32> = reals
        .iter()
        .map(|r| slot_sending_to(r, old).expect("a REALS slot sends to rs1"))
        .collect();
    let was: Vec<RealHead> = (0..2).map(|d| live(&reals[d], slots[d])).collect();

    let started = scene.replace_real_mac(0, new);
    let mut picked_up: [Option<Duration>; 2] = [None; 2];
    while picked_up.contains(&None) && started.elapsed() < Duration::from_secs(5) {
        for d in 0..2 {
            if picked_up[d].is_none() && live(&reals[d], slots[d]).dst_mac == new {
                picked_up[d] = Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("rs1's new MAC in REALS after {picked_up:?} on d1, d2 (from `ip link set address`)");
    for d in 0..2 {
        let took = picked_up[d].unwrap_or_else(|| {
            panic!(
                "d{}: REALS never named the new MAC{}",
                d + 1,
                scene.describe()
            )
        });
        assert!(took < NEW_MAC_BOUND, "d{}: {took:?}", d + 1);
        let now = live(&reals[d], slots[d]);
        assert_eq!(
            now,
            RealHead {
                dst_mac: new,
                ..was[d]
            },
            "d{}: only the MAC changes",
            d + 1
        );
    }

    let after = scene.http_load(VIP, &["--requests", "50", "--parallel", "2"]);
    assert_eq!(
        after.by_server().get("rs1").copied(),
        Some(50),
        "the new host takes the requests: {}{}",
        after.summary(),
        scene.describe()
    );
}

/// The `REALS` map director `d` pinned for `VI_1`'s interface (the test only reads it).
fn reals_map(scene: &LbScene, d: usize) -> Array<MapData, RealSlot> {
    let path = scene
        .lab
        .bpffs
        .path()
        .join(format!("d{}", d + 1))
        .join(&scene.director(d).iface)
        .join("REALS");
    let data = MapData::from_pin(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Array::try_from(Map::Array(data)).expect("REALS holds RealSlots")
}

/// The `REALS` slot whose live entry sends to `mac`.
fn slot_sending_to(reals: &Array<MapData, RealSlot>, mac: [u8; 6]) -> Option<u32> {
    (0..MAX_REALS).find(|&i| reals.get(&i, 0).is_ok_and(|s| s.live().dst_mac == mac))
}

/// The entry packets read in slot `i`.
fn live(reals: &Array<MapData, RealSlot>, i: u32) -> RealHead {
    *reals.get(&i, 0).expect("REALS lookup").live()
}

// ---------------------------------------------------------------------------------------
// UDP, and the sorry server

/// A UDP service: 60 flows (client ports), 20 datagrams each, every one answered, each flow
/// by one real server throughout, and the flows spread over all three.
#[test]
#[ignore = "needs root"]
fn udp_flows_stay_on_one_real_server_each() {
    let _serial = serial();
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
#[ignore = "needs root"]
fn the_sorry_server_takes_over_when_every_real_server_fails() {
    let _serial = serial();
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
