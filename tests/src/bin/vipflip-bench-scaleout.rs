//! `vipflip-bench-scaleout` (run through `cargo xtask bench scaleout`): active-active vipflip
//! directors behind an FRR edge router (`ScaleOut`: two directors, FRR and BIRD, a virtual
//! server on their interface over three real servers) next to the same service on a VRRP
//! pair (`LbScene`), as 200 long-lived client streams see each event:
//!
//! - BGP: a director cut off with BFD at 50 ms × 3; cut off without BFD (hold time 9 s);
//!   drained (`vipflip drain`); its agent killed (`SIGKILL`).
//! - VRRP: the master's link cut (100 ms adverts: `Master_Down_Interval` 360.9 ms).
//!
//! Per event: how long until the edge's FIB dropped the director (BGP), each stream's
//! longest pause (median and max over the streams, the worst trial), and the streams that
//! carried on, on their real server. Writes the table and every trial to `--out`.
//! `--trials N` (default 5); `--smoke`: one trial of each, figures meaning nothing.

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use vipflip_integration_tests::{
    lb::{self, ECHO_PORT, LbScene, StreamReport, StreamsArgs, Tools},
    routing::Bfd,
    scaleout::{Options, ScaleOut, VIP},
};

/// The VIP of the VRRP pair (on the lab's segment).
const VRRP_VIP: &str = "192.0.2.100";

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .expect("own path")
        .with_file_name(name)
}

fn lb_probe() -> String {
    sibling("vipflip-lb-probe")
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

/// 200 streams, a line every 100 ms each, broken by a reply later than 2 s.
fn stream_args(duration_ms: u32) -> StreamsArgs {
    StreamsArgs {
        count: 200,
        interval_ms: 100,
        duration_ms,
        timeout_ms: Some(2000),
    }
}

/// One trial's figures.
#[derive(Debug, Clone)]
struct Trial {
    /// Until the edge's FIB dropped the director (BGP), in ms.
    reroute_ms: Option<u64>,
    /// Each stream's longest pause, sorted, in ms.
    pauses_ms: Vec<u64>,
    /// Streams that ran to their end on their real server, of how many.
    unbroken: usize,
    streams: usize,
}

impl Trial {
    fn of(reroute: Option<Duration>, reports: &[StreamReport]) -> Self {
        let mut pauses_ms: Vec<u64> = reports.iter().map(|r| r.max_gap_us / 1000).collect();
        pauses_ms.sort_unstable();
        Self {
            reroute_ms: reroute.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            unbroken: reports.iter().filter(|r| r.unbroken()).count(),
            streams: reports.len(),
            pauses_ms,
        }
    }

    fn median_pause(&self) -> u64 {
        self.pauses_ms
            .get(self.pauses_ms.len() / 2)
            .copied()
            .unwrap_or(0)
    }

    fn max_pause(&self) -> u64 {
        self.pauses_ms.last().copied().unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    CutBfd,
    CutNoBfd,
    Drain,
    Kill,
    VrrpCut,
}

impl Event {
    const ALL: [Event; 5] = [
        Event::CutBfd,
        Event::CutNoBfd,
        Event::Drain,
        Event::Kill,
        Event::VrrpCut,
    ];

    fn label(self) -> &'static str {
        match self {
            Event::CutBfd => "BGP ECMP: a director cut off, BFD 50 ms × 3",
            Event::CutNoBfd => "BGP ECMP: a director cut off, no BFD (hold time 9 s)",
            Event::Drain => "BGP ECMP: `vipflip drain` of a director",
            Event::Kill => "BGP ECMP: a director's agent killed (SIGKILL)",
            Event::VrrpCut => "VRRP pair: the master's link cut (100 ms adverts)",
        }
    }
}

fn run(event: Event) -> Trial {
    if event == Event::VrrpCut {
        return vrrp_cut();
    }
    let options = Options {
        bfd: (event != Event::CutNoBfd).then_some(Bfd::FAST),
        hold_time: (event == Event::CutNoBfd).then_some(9),
        ..Options::two(&lb_probe())
    };
    let world = ScaleOut::start(options);
    let duration_ms = if event == Event::CutNoBfd {
        14_000
    } else {
        5_000
    };
    let streams = world.streams(200, duration_ms);
    std::thread::sleep(Duration::from_secs(1));
    let reroute = match event {
        Event::CutBfd | Event::CutNoBfd => {
            world.scene.cut(0);
            world
                .scene
                .wait_edge_nexthops(VIP, 1, Duration::from_secs(15))
        }
        Event::Drain => {
            let out = world.agents[0].cli(&["drain"]);
            assert!(out.status.success(), "drain failed");
            world
                .scene
                .wait_edge_nexthops(VIP, 1, Duration::from_secs(5))
        }
        Event::Kill => {
            world.agents[0].signal(libc::SIGKILL);
            None
        }
        Event::VrrpCut => unreachable!("above"),
    };
    Trial::of(reroute, &streams.finish())
}

/// The same service on a VRRP pair: d1 master (200), d2 backup (100), the three real
/// servers checked by TCP on the echo port; the master's link goes down.
fn vrrp_cut() -> Trial {
    let tools = Tools {
        lb_probe: Box::leak(lb_probe().into_boxed_str()),
        probe: Box::leak(
            sibling("vipflip-probe")
                .to_str()
                .expect("UTF-8 path")
                .to_owned()
                .into_boxed_str(),
        ),
    };
    let mut scene = LbScene::new(tools, 3, VRRP_VIP);
    let check = "{ kind = \"tcp\", interval = \"200ms\", timeout = \"150ms\", fall = 2 }";
    let reals: Vec<(String, u16, String)> = (0..3)
        .map(|i| (scene.real_addr(i), 1, check.to_owned()))
        .collect();
    let service = lb::virtual_server("echo", VRRP_VIP, ECHO_PORT, "tcp", "maglev", "", &reals);
    scene.start_directors(|lab, dir, d| {
        lb::director_config(lab, dir, d, [200, 100][d], VRRP_VIP, &service)
    });
    scene.await_master(0, Duration::from_secs(15));
    scene.await_that(
        "every real server up on both directors",
        Duration::from_secs(15),
        |s| {
            (0..2).all(|d| {
                let vss = s.virtual_servers(d);
                !vss.is_empty() && vss.iter().all(|v| v.reals.iter().all(|r| r.state == "up"))
            })
        },
    );
    let streams = lb::start_streams(tools.lb_probe, scene.client(), VRRP_VIP, &stream_args(5000));
    std::thread::sleep(Duration::from_secs(1));
    let d1 = scene.director(0);
    d1.ns.ip(&["link", "set", &d1.iface, "down"]);
    Trial::of(None, &streams.finish())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let trials: usize = match args.iter().position(|a| a == "--trials") {
        Some(i) => args[i + 1].parse().expect("--trials N"),
        None if smoke => 1,
        None => 5,
    };
    let out = args
        .iter()
        .position(|a| a == "--out")
        .map(|i| PathBuf::from(&args[i + 1]))
        .expect("--out FILE");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("vipflip-bench-scaleout builds network namespaces: run it as root");
        std::process::exit(2);
    }
    let mut results: Vec<(Event, Vec<Trial>)> = Vec::new();
    for event in Event::ALL {
        let mut done = Vec::new();
        for n in 0..trials {
            let trial = run(event);
            eprintln!(
                "{} #{}: reroute {:?} ms, longest pause median {} / max {} ms, {} of {} carried on",
                event.label(),
                n + 1,
                trial.reroute_ms,
                trial.median_pause(),
                trial.max_pause(),
                trial.unbroken,
                trial.streams
            );
            done.push(trial);
        }
        results.push((event, done));
    }
    let md = render(&results, trials, smoke);
    print!("{md}");
    std::fs::write(&out, md).expect("write the results");
}

fn render(results: &[(Event, Vec<Trial>)], trials: usize, smoke: bool) -> String {
    let mut md = String::new();
    if smoke {
        md.push_str("**SMOKE RUN: one short trial of each; the figures mean nothing.**\n\n");
    }
    let _ = writeln!(
        md,
        "200 long-lived TCP streams from the client (a line each way every 100 ms, a reply \
         later than 2 s breaks a stream), {trials} trial(s) per event. \"Longest pause\": each \
         stream's longest wait for a reply, median and max over the streams of the worst \
         trial. \"Carried on\": streams that ran to their end on the real server they started \
         on (all trials).\n"
    );
    md.push_str(
        "| event | edge FIB dropped the director, ms (median / max) | longest pause, ms (median / max) | carried on |\n|---|---|---|---|\n",
    );
    for (event, trials) in results {
        let mut reroutes: Vec<u64> = trials.iter().filter_map(|t| t.reroute_ms).collect();
        reroutes.sort_unstable();
        let reroute = match (reroutes.get(reroutes.len() / 2), reroutes.last()) {
            (Some(median), Some(max)) => format!("{median} / {max}"),
            _ => "— (the route stays)".to_owned(),
        };
        let worst = trials
            .iter()
            .max_by_key(|t| t.max_pause())
            .expect("at least one trial");
        let unbroken: usize = trials.iter().map(|t| t.unbroken).sum();
        let streams: usize = trials.iter().map(|t| t.streams).sum();
        let _ = writeln!(
            md,
            "| {} | {reroute} | {} / {} | {unbroken} of {streams} |",
            event.label(),
            worst.median_pause(),
            worst.max_pause(),
        );
    }
    md.push_str("\n## Raw trials\n\n```\n");
    for (event, trials) in results {
        for t in trials {
            let _ = writeln!(
                md,
                "{:?} reroute_ms={:?} pause_median_ms={} pause_max_ms={} unbroken={}/{}",
                event,
                t.reroute_ms,
                t.median_pause(),
                t.max_pause(),
                t.unbroken,
                t.streams
            );
        }
    }
    md.push_str("```\n");
    md
}
