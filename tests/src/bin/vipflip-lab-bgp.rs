//! `vipflip-lab-bgp` (run through `cargo xtask lab --bgp`): active-active directors behind an
//! FRR edge router, live. Three directors on one segment (d1 on FRR, d2 and d3 on BIRD, each
//! configured by `vipflip routing-config`; d3 waits to be added), three real servers, and a
//! client sending a steady stream of new connections to the VIP. The screen shows the edge's
//! next hops for the VIP, what each director announces and forwards, and the client's
//! answers by real server; keys (or a `--script`) drain, cut, restore, kill or restart d1 and
//! add d3.
//!
//! Everything it makes is named `<prefix>-*` (default `vfbgp`) and lives under
//! `/run/<prefix>/`; Ctrl-C, `q` or `--down` remove it all, and every run first removes what a
//! crashed run left.

use std::{
    collections::BTreeMap,
    io::{IsTerminal as _, Write as _},
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use vipflip_integration_tests::{
    Lab, Naming,
    lb::HTTP_PORT,
    scaleout::{Options, ScaleOut, VIP},
};

const USAGE: &str =
    "usage: vipflip-lab-bgp [--script \"wait 10; drain; wait 5; quit\"] [--prefix vfbgp] [--down]";
const KEYS: &str = "keys: d drain d1 · c cut d1 · r restore d1's link · k kill d1's agent · \
                    s start d1's agent · a add d3 · q quit (then Enter)";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The client's answers so far: by real server, and failures.
#[derive(Default)]
struct Answers {
    by_server: BTreeMap<String, u64>,
    errors: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(unknown) = args
        .iter()
        .find(|a| a.starts_with("--") && !["--script", "--prefix", "--down"].contains(&a.as_str()))
    {
        eprintln!("vipflip-lab-bgp: unknown option {unknown}\n{USAGE}");
        std::process::exit(2);
    }
    let prefix: &'static str =
        Box::leak(value("--prefix").unwrap_or("vfbgp".into()).into_boxed_str());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "vipflip-lab-bgp: the lab makes network namespaces and loads XDP: run it as root"
        );
        std::process::exit(2);
    }
    let dir = PathBuf::from(format!("/run/{prefix}"));
    Lab::clean_up(prefix, &dir.join("bpffs"));
    if args.iter().any(|a| a == "--down") {
        let _ = std::fs::remove_dir_all(&dir);
        println!("lab {prefix} removed");
        return;
    }
    let _ = std::fs::remove_dir_all(&dir);
    // SAFETY: installing an async-signal-safe handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let lb_probe = std::env::current_exe()
        .expect("own path")
        .with_file_name("vipflip-lb-probe");
    println!("building the lab: an FRR edge, 3 directors, 3 real servers, a client ({prefix}-*) …");
    let mut world = ScaleOut::start(Options {
        directors: 3,
        running: 2,
        naming: Naming::Fixed(prefix),
        ..Options::two(lb_probe.to_str().expect("UTF-8 path"))
    });
    let answers = Arc::new(Mutex::new(Answers::default()));
    let load = client_load(&world, &lb_probe, Arc::clone(&answers));
    let commands = vipflip_integration_tests::scene::lab_commands(value("--script").as_deref());

    let tty = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut events: Vec<String> = Vec::new();
    let mut last_frame = String::new();
    let mut forwarded = [0u64; 3];
    let mut last_tick = Instant::now();
    loop {
        while let Ok(command) = commands.try_recv() {
            let at = started.elapsed().as_secs_f64();
            match act(&command, &mut world) {
                Some(Ok(what)) => events.push(format!("{at:6.1}s  {what}")),
                Some(Err(what)) => events.push(format!("{at:6.1}s  {command}: {what}")),
                None => STOP.store(true, Ordering::SeqCst),
            }
        }
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let now: Vec<u64> = (0..3).map(|d| world.forwarded(d)).collect();
        let secs = last_tick.elapsed().as_secs_f64().max(0.001);
        last_tick = Instant::now();
        #[expect(clippy::cast_precision_loss, reason = "frame counts far below 2^52")]
        let rates: Vec<f64> = (0..3)
            .map(|d| now[d].saturating_sub(forwarded[d]) as f64 / secs)
            .collect();
        forwarded.copy_from_slice(&now);
        let frame = render(&world, &rates, &answers, &events);
        if tty {
            print!("\x1b[2J\x1b[H{frame}");
        } else if frame != last_frame {
            println!("{frame}");
        }
        let _ = std::io::stdout().flush();
        last_frame = frame;
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = load.join();
    for event in &events {
        println!("{event}");
    }
    drop(world);
    let _ = std::fs::remove_dir_all(&dir);
    println!("lab {prefix} removed");
}

/// New connections to the VIP from the client for as long as the lab runs: one-second
/// batches of `http-load` (4 at a time, 10 ms apart), each answer tallied by real server.
fn client_load(
    world: &ScaleOut,
    lb_probe: &std::path::Path,
    answers: Arc<Mutex<Answers>>,
) -> std::thread::JoinHandle<()> {
    let mut batch = world
        .scene
        .client
        .command(lb_probe.to_str().expect("UTF-8 path"));
    batch
        .args([
            "http-load",
            "--target",
            VIP,
            "--port",
            &HTTP_PORT.to_string(),
        ])
        .args([
            "--duration-ms",
            "1000",
            "--parallel",
            "4",
            "--pause-ms",
            "10",
        ])
        .stderr(Stdio::null());
    std::thread::spawn(move || {
        while !STOP.load(Ordering::SeqCst) {
            let Ok(out) = batch.output() else {
                return;
            };
            let mut answers = answers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                // R START_US END_US PORT ok NAME | R … err REASON
                let words: Vec<&str> = line.splitn(6, ' ').collect();
                let ["R", _, _, _, kind, what] = words[..] else {
                    continue;
                };
                if kind == "ok" {
                    *answers.by_server.entry(what.to_owned()).or_default() += 1;
                } else {
                    answers.errors += 1;
                }
            }
        }
    })
}

/// Carries out one command; `None` means quit.
fn act(command: &str, world: &mut ScaleOut) -> Option<Result<String, String>> {
    let ok = |what: &str| Some(Ok(what.to_owned()));
    match command {
        "q" | "quit" => None,
        "d" | "drain" => {
            let out = world.agents[0].cli(&["drain"]);
            if out.status.success() {
                ok("d1 drains: routes withdrawn, it stops once its traffic has moved")
            } else {
                Some(Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
            }
        }
        "c" | "cut" => {
            world.scene.cut(0);
            ok("d1 cut off the segment (only BFD can tell)")
        }
        "r" | "restore" => {
            world.scene.restore(0);
            ok("d1 back on the segment")
        }
        "k" | "kill" => {
            world.agents[0].signal(libc::SIGKILL);
            ok("d1's agent killed: its route and pinned program stay")
        }
        "s" | "start" => {
            if world.agents[0].running() {
                return Some(Err("d1's agent is running".into()));
            }
            let ns = &world.scene.directors[0].ns;
            world.agents[0].restart(ns, &[]);
            ok("d1's agent started again")
        }
        "a" | "add" => {
            if world.agents.len() > 2 {
                return Some(Err("d3 is already there".into()));
            }
            world.start_director(2);
            ok("d3 added (BIRD: it announces once its session is up)")
        }
        "" => Some(Err(KEYS.into())),
        _ => Some(Err(format!("unknown command; {KEYS}"))),
    }
}

fn render(world: &ScaleOut, rates: &[f64], answers: &Mutex<Answers>, events: &[String]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let hops: Vec<String> = world
        .scene
        .edge_nexthops(VIP)
        .iter()
        .map(ToString::to_string)
        .collect();
    let _ = writeln!(
        out,
        "vipflip lab (BGP ECMP) · VIP {VIP} · edge next hops: {}",
        if hops.is_empty() {
            "none".to_owned()
        } else {
            hops.join(", ")
        }
    );
    for (d, director) in world.scene.directors.iter().enumerate() {
        let (agent, announce) = match world.agents.get(d) {
            None => ("not added", String::new()),
            Some(agent) => {
                let status = String::from_utf8_lossy(&agent.cli(&["status"]).stdout).into_owned();
                let announce = status
                    .lines()
                    .find(|l| l.starts_with("announce "))
                    .map_or(if status.is_empty() { "-" } else { "?" }, |l| {
                        if l.contains(": announced") {
                            "announced"
                        } else {
                            "withdrawn"
                        }
                    })
                    .to_owned();
                (
                    if status.is_empty() {
                        "agent down"
                    } else {
                        "agent up"
                    },
                    announce,
                )
            }
        };
        let _ = writeln!(
            out,
            "  d{} {} ({}) {agent:<10} {announce:<10} {:>8.0} frames/s to real servers",
            d + 1,
            director.address,
            if d == 0 { "FRR " } else { "BIRD" },
            rates.get(d).copied().unwrap_or(0.0),
        );
    }
    {
        let answers = answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let by: Vec<String> = answers
            .by_server
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  client: answered by {} · failed {}",
            if by.is_empty() {
                "nobody yet".to_owned()
            } else {
                by.join(", ")
            },
            answers.errors
        );
    }
    let _ = writeln!(out, "{KEYS}");
    for event in events.iter().rev().take(8).rev() {
        let _ = writeln!(out, "{event}");
    }
    out
}
