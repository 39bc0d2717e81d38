//! `vipflip-bench-failover` (run through `cargo xtask bench failover`): vipflip and keepalived
//! on the same lab topology, same advert interval, same priorities, measured by the same 1 ms
//! client prober: hard failure (the master's link cut), graceful handover, the hard failure
//! under load, and the agents' memory and CPU. Prints a table and writes it, with every raw
//! trial, to the file given by `--out`.
//!
//! `--smoke` runs one short trial of each kind at 100 ms so the benchmark keeps working in
//! `cargo xtask test`; its figures mean nothing.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use vipflip_integration_tests::{
    KillOnDrop as Proc, Lab, summary_number as field, unique, vipflip_bin, wait_for,
};

const VIP: &str = "192.0.2.100";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Agent {
    Vipflip,
    Keepalived,
}

impl Agent {
    fn name(self) -> &'static str {
        match self {
            Agent::Vipflip => "vipflip",
            Agent::Keepalived => "keepalived",
        }
    }
}

/// A two-router lab running one kind of agent, and the client's prober.
struct Bench {
    agent: Agent,
    lab: Lab,
    dir: PathBuf,
    interval: Duration,
    agents: Vec<Option<Proc>>,
    _responders: Vec<Proc>,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.agents.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn probe_bin() -> PathBuf {
    std::env::current_exe()
        .expect("own path")
        .with_file_name("vipflip-probe")
}

impl Bench {
    fn new(agent: Agent, interval: Duration, instances: usize) -> Self {
        let lab = Lab::new(2);
        let dir = std::env::temp_dir().join(unique("vipflip-bench-"));
        std::fs::create_dir_all(&dir).expect("bench dir");
        let responders = lab
            .routers
            .iter()
            .enumerate()
            .map(|(i, host)| {
                Proc(
                    host.ns
                        .command(probe_bin().to_str().expect("utf-8"))
                        .args(["serve", "--port", "7777", "--name", &format!("r{}", i + 1)])
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("responder"),
                )
            })
            .collect();
        let mut bench = Self {
            agent,
            lab,
            dir,
            interval,
            agents: vec![None, None],
            _responders: responders,
        };
        for router in 0..2 {
            bench.write_config(router, instances);
            bench.start(router);
        }
        bench
    }

    fn priority(router: usize) -> u8 {
        if router == 0 { 200 } else { 100 }
    }

    fn write_config(&self, router: usize, instances: usize) {
        let host = &self.lab.routers[router];
        let priority = Self::priority(router);
        let ms = self.interval.as_millis();
        let text = match self.agent {
            Agent::Vipflip => {
                let mut t = format!(
                    "[global]\nrouter_id = \"r{n}\"\npin_dir = \"{pins}/r{n}\"\ncontrol_socket = \"{dir}/r{n}.sock\"\n",
                    n = router + 1,
                    pins = self.lab.bpffs.path().display(),
                    dir = self.dir.display()
                );
                for i in 0..instances {
                    let vip = if i == 0 {
                        VIP.to_owned()
                    } else {
                        format!("198.51.100.{i}")
                    };
                    let _ = write!(
                        t,
                        "\n[[instance]]\nname = \"VI_{i}\"\ninterface = \"{iface}\"\nvrid = {vrid}\npriority = {priority}\n\
                         advert_interval = \"{ms}ms\"\nvirtual_ips = [\"{vip}/24\"]\n\
                         garp = {{ repeat = 5, interval = \"0ms\", delay = \"5s\", refresh = \"0s\" }}\n",
                        iface = host.iface,
                        vrid = 51 + i
                    );
                }
                t
            }
            Agent::Keepalived => {
                let mut t = format!(
                    "global_defs {{\n  router_id r{}\n  vrrp_version 3\n}}\n",
                    router + 1
                );
                let seconds = self.interval.as_secs_f64();
                for i in 0..instances {
                    let vip = if i == 0 {
                        VIP.to_owned()
                    } else {
                        format!("198.51.100.{i}")
                    };
                    let _ = write!(
                        t,
                        "vrrp_instance VI_{i} {{\n  state BACKUP\n  interface {iface}\n  virtual_router_id {vrid}\n  \
                         priority {priority}\n  advert_int {seconds}\n  virtual_ipaddress {{\n    {vip}/24\n  }}\n}}\n",
                        iface = host.iface,
                        vrid = 51 + i
                    );
                }
                t
            }
        };
        std::fs::write(self.config(router), text).expect("write config");
    }

    fn config(&self, router: usize) -> PathBuf {
        self.dir.join(match self.agent {
            Agent::Vipflip => format!("r{}.toml", router + 1),
            Agent::Keepalived => format!("r{}.conf", router + 1),
        })
    }

    fn log(&self, router: usize) -> PathBuf {
        self.dir.join(format!("r{}.log", router + 1))
    }

    fn start(&mut self, router: usize) {
        let host = &self.lab.routers[router];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(router))
            .expect("log");
        let child = match self.agent {
            Agent::Vipflip => host
                .ns
                .command(vipflip_bin().to_str().expect("utf-8"))
                .args(["run", "--config"])
                .arg(self.config(router))
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn(),
            Agent::Keepalived => host
                .ns
                .command("keepalived")
                .args(["-n", "-l", "-D", "-f"])
                .arg(self.config(router))
                .arg("-p")
                .arg(self.dir.join(format!("r{}-ka.pid", router + 1)))
                .arg("-r")
                .arg(self.dir.join(format!("r{}-vrrp.pid", router + 1)))
                .stdout(log.try_clone().expect("dup"))
                .stderr(log)
                .spawn(),
        };
        self.agents[router] = Some(Proc(child.expect("start agent")));
    }

    /// The router currently answering the VIP, as the client sees it.
    fn serving(&self) -> Option<String> {
        let summary = self.probe(Duration::from_millis(60));
        let at = summary.find("\"by_router\":{\"")? + "\"by_router\":{\"".len();
        Some(summary[at..].split('"').next()?.to_owned())
    }

    fn wait_served_by(&self, router: usize, timeout: Duration) -> bool {
        let name = format!("r{}", router + 1);
        wait_for(timeout, || self.serving().as_deref() == Some(name.as_str()))
    }

    fn probe(&self, duration: Duration) -> String {
        let out = self
            .spawn_probe(duration)
            .wait_with_output()
            .expect("prober");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn spawn_probe(&self, duration: Duration) -> Child {
        self.lab
            .client
            .ns
            .command(probe_bin().to_str().expect("utf-8"))
            .args([
                "probe",
                "--target",
                VIP,
                "--port",
                "7777",
                "--interval-us",
                "1000",
            ])
            .args(["--duration-ms", &duration.as_millis().to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("prober")
    }

    fn mdi(&self) -> Duration {
        // Master_Down_Interval of the priority-100 backup (RFC 5798 §6.1).
        self.interval * 3 + self.interval * 156 / 256
    }

    fn set_link(&self, router: usize, up: bool) {
        let host = &self.lab.routers[router];
        host.ns
            .ip(&["link", "set", &host.iface, if up { "up" } else { "down" }]);
    }

    fn signal(&self, router: usize, signal: i32) {
        if let Some(p) = &self.agents[router] {
            let pid = i32::try_from(p.0.id()).expect("pid");
            // SAFETY: kill has no memory preconditions; the pid is our own child's.
            unsafe { libc::kill(pid, signal) };
        }
    }

    fn transitions(&self, router: usize) -> usize {
        let log = std::fs::read_to_string(self.log(router)).unwrap_or_default();
        match self.agent {
            Agent::Vipflip => log.matches(" -> MASTER").count() + log.matches(" -> BACKUP").count(),
            Agent::Keepalived => log.matches("Entering ").count(),
        }
    }
}

/// One measured trial: the client's view.
#[derive(Clone, Debug)]
struct Trial {
    outage_us: u64,
    lost: u64,
    false_failovers: usize,
}

/// Hard failure: the master's link is cut while the client probes; then restored, and the
/// lab waits until r1 serves again.
fn hard(bench: &Bench, load: bool) -> Trial {
    let _background = load.then(|| Load::start(bench));
    let before = bench.transitions(1);
    let warmup = bench.interval.max(Duration::from_millis(300));
    // Under load, watch a few intervals first: any transition there is a false failover.
    if load {
        std::thread::sleep(bench.interval * 5 + Duration::from_millis(500));
    }
    let false_failovers = bench.transitions(1) - before;
    let probe = bench.spawn_probe(warmup + bench.mdi() * 2 + Duration::from_millis(300));
    std::thread::sleep(warmup);
    bench.set_link(0, false);
    let out = probe.wait_with_output().expect("prober");
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    bench.set_link(0, true);
    let _ = bench.wait_served_by(0, bench.mdi() * 4 + Duration::from_secs(3));
    Trial {
        outage_us: field(&summary, "longest_outage_us"),
        lost: field(&summary, "lost"),
        false_failovers,
    }
}

/// Graceful: vipflip hands over (`vipflip handoff`), keepalived is stopped with SIGTERM (its
/// graceful path); then the lab is put back with r1 serving.
fn graceful(bench: &mut Bench, sigterm: bool) -> Trial {
    let warmup = bench.interval.max(Duration::from_millis(300));
    let probe = bench.spawn_probe(warmup + bench.mdi() + Duration::from_millis(500));
    std::thread::sleep(warmup);
    match (bench.agent, sigterm) {
        (Agent::Vipflip, false) => {
            let _ = Command::new(vipflip_bin())
                .args(["handoff", "VI_0", "--control-socket"])
                .arg(bench.dir.join("r1.sock"))
                .output();
        }
        _ => bench.signal(0, libc::SIGTERM),
    }
    let out = probe.wait_with_output().expect("prober");
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    // Put r1 back as master: restart a stopped agent; after a vipflip handoff r1 stays
    // backup, so hand back.
    if sigterm || bench.agent == Agent::Keepalived {
        if let Some(mut p) = bench.agents[0].take() {
            let _ = wait_for(Duration::from_secs(15), || {
                p.0.try_wait().ok().flatten().is_some()
            });
            let _ = p.0.kill();
        }
        bench.start(0);
    } else {
        let _ = Command::new(vipflip_bin())
            .args(["handoff", "VI_0", "--control-socket"])
            .arg(bench.dir.join("r2.sock"))
            .output();
    }
    let _ = bench.wait_served_by(0, bench.mdi() * 4 + Duration::from_secs(8));
    Trial {
        outage_us: field(&summary, "longest_outage_us"),
        lost: field(&summary, "lost"),
        false_failovers: 0,
    }
}

/// Adverts from one router, as the client hears them: the instant each arrives.
struct AdvertWatch {
    arrivals: std::sync::mpsc::Receiver<std::time::Instant>,
    stop: Arc<AtomicBool>,
}

impl AdvertWatch {
    /// Listens in the client's namespace for VRRP adverts (IP protocol 112) from `source`.
    fn start(bench: &Bench, source: std::net::Ipv4Addr) -> Self {
        let (tx, arrivals) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::clone(&stop);
        let iface = std::ffi::CString::new(bench.lab.client.iface.clone()).expect("no NUL");
        drop(bench.lab.client.ns.spawn(move || {
            // SAFETY: plain socket(2); the fd is owned below.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, 112) };
            assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
            // SAFETY: `fd` was just opened and is owned by nothing else.
            let socket =
                unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            // Adverts go to 224.0.0.18: the client must join it to be handed them.
            // SAFETY: `iface` is NUL-terminated.
            let ifindex = unsafe { libc::if_nametoindex(iface.as_ptr()) };
            let group = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_ne_bytes([224, 0, 0, 18]),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: i32::try_from(ifindex).expect("ifindex"),
            };
            // SAFETY: a valid ip_mreqn for IP_ADD_MEMBERSHIP, with its size.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_IP,
                    libc::IP_ADD_MEMBERSHIP,
                    (&raw const group).cast(),
                    u32::try_from(std::mem::size_of::<libc::ip_mreqn>()).expect("small"),
                )
            };
            assert_eq!(
                rc,
                0,
                "join 224.0.0.18: {}",
                std::io::Error::last_os_error()
            );
            let timeout = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            // SAFETY: a valid timeval for SO_RCVTIMEO, with its size.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const timeout).cast(),
                    u32::try_from(std::mem::size_of::<libc::timeval>()).expect("small"),
                );
            }
            let mut buf = [0u8; 256];
            while !running.load(Ordering::Relaxed) {
                // SAFETY: `buf` is valid for its length; the socket is open.
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                let at = std::time::Instant::now();
                // Raw IPv4 sockets hand over the IP header: the source is bytes 12..16.
                if n >= 20 && buf[12..16] == source.octets() && tx.send(at).is_err() {
                    break;
                }
            }
            drop(socket);
        }));
        Self { arrivals, stop }
    }

    /// Forgets what arrived so far.
    fn drain(&self) {
        while self.arrivals.try_recv().is_ok() {}
    }

    /// The first arrival from now on, within `timeout`.
    fn next(&self, timeout: Duration) -> Option<std::time::Instant> {
        self.arrivals.recv_timeout(timeout).ok()
    }
}

impl Drop for AdvertWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A restart of the master's agent: SIGKILL (its pinned XDP program keeps serving), then a new
/// `vipflip run`. `restart_ms` = from the new process's spawn (through `ip netns exec`) to its
/// first advert heard on the wire; the backup must not take over meanwhile.
struct Restart {
    restart_us: u64,
    backup_took_over: bool,
}

fn restart(bench: &mut Bench, watch: &AdvertWatch) -> Restart {
    let before = bench.transitions(1);
    if let Some(mut agent) = bench.agents[0].take() {
        let _ = agent.0.kill();
        let _ = agent.0.wait();
    }
    watch.drain();
    let spawned = std::time::Instant::now();
    bench.start(0);
    let first = watch
        .next(Duration::from_secs(10))
        .expect("the restarted agent never sent an advert");
    // Settle: r1 serving again, and a few intervals for a late takeover by r2 to show.
    std::thread::sleep(bench.interval * 5);
    let _ = bench.wait_served_by(0, Duration::from_secs(10));
    Restart {
        restart_us: u64::try_from(first.duration_since(spawned).as_micros()).unwrap_or(u64::MAX),
        backup_took_over: bench.transitions(1) > before,
    }
}

/// Background load on the routers: a UDP flood of non-VIP traffic from the client and a CPU
/// hog on every core.
struct Load {
    _floods: Vec<Proc>,
    hogs_stop: Arc<AtomicBool>,
    hogs: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(bench: &Bench) -> Self {
        let mut floods = Vec::new();
        for router in &bench.lab.routers {
            floods.push(Proc(
                bench
                    .lab
                    .client
                    .ns
                    .command(probe_bin().to_str().expect("utf-8"))
                    .args(["flood", "--target", &router.ipv4.to_string(), "--port", "9"])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("flood"),
            ));
        }
        // The hogs are threads of this process, not child processes: a child outlives a
        // benchmark that panics or is killed, keeps burning a core and holds the caller's
        // stdout open (a `cargo test` waiting on it then never ends).
        let hogs_stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let hogs = (0..cores)
            .map(|_| {
                let stop = Arc::clone(&hogs_stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Self {
            _floods: floods,
            hogs_stop,
            hogs,
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.hogs_stop.store(true, Ordering::Relaxed);
        for hog in self.hogs.drain(..) {
            let _ = hog.join();
        }
    }
}

/// RSS (kB) and CPU seconds per second of every process of the agent on router 0, over `span`.
fn resources(bench: &Bench, span: Duration) -> (u64, f64) {
    let pids: Vec<u32> = {
        let out = Command::new("ip")
            .args(["netns", "pids", bench.lab.routers[0].ns.name()])
            .output()
            .expect("pids");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|pid: &u32| {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                comm.trim() == bench.agent.name()
            })
            .collect()
    };
    let ticks = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime: fields 14 and 15 of /proc/PID/stat, 12 and 13 after the name.
        fields
            .get(11)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
    };
    let start: u64 = pids.iter().map(|p| ticks(*p)).sum();
    std::thread::sleep(span);
    let end: u64 = pids.iter().map(|p| ticks(*p)).sum();
    let rss: u64 = pids
        .iter()
        .map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("VmRSS:")
                        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
                })
                .unwrap_or(0)
        })
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = u32::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    let cpu = f64::from(u32::try_from(end - start).unwrap_or(u32::MAX))
        / f64::from(hz)
        / span.as_secs_f64();
    (rss, cpu)
}

struct Stats {
    median: u64,
    p95: u64,
    p99: u64,
    max: u64,
}

fn stats(values: &[u64]) -> Stats {
    let mut v = values.to_vec();
    v.sort_unstable();
    let at = |q: usize| v[((v.len() * q).div_ceil(100)).clamp(1, v.len()) - 1];
    Stats {
        median: at(50),
        p95: at(95),
        p99: at(99),
        max: *v.last().unwrap_or(&0),
    }
}

fn ratio(ours: f64, theirs: f64) -> String {
    if theirs == 0.0 {
        if ours == 0.0 {
            "1.00".into()
        } else {
            "inf".into()
        }
    } else {
        format!("{:.2}", ours / theirs)
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "the benchmark's table, cell by cell, in order"
)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let out_path = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let trials: usize = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1))
        .and_then(|t| t.parse().ok())
        .unwrap_or(if smoke { 1 } else { 10 });
    // `--only-restart`: just the restart measurement (a quick look while working on it).
    let only_restart = args.iter().any(|a| a == "--only-restart");
    let intervals: Vec<Duration> = if only_restart {
        vec![]
    } else if smoke {
        vec![Duration::from_millis(100)]
    } else {
        vec![
            Duration::from_millis(10),
            Duration::from_millis(100),
            Duration::from_secs(1),
        ]
    };
    let mut table = String::new();
    let mut raw = String::new();
    let _ = writeln!(
        table,
        "| advert interval | scenario | vipflip median / p95 / max | keepalived median / p95 / max | ratio (median) |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|");
    for interval in &intervals {
        let mut results: Vec<(Agent, &str, Vec<Trial>)> = Vec::new();
        for agent in [Agent::Vipflip, Agent::Keepalived] {
            let mut bench = Bench::new(agent, *interval, 1);
            let ready = bench.wait_served_by(0, bench.mdi() * 4 + Duration::from_secs(5));
            assert!(
                ready,
                "{}: r1 never served the VIP at {interval:?}",
                agent.name()
            );
            let hard_trials: Vec<Trial> = (0..trials).map(|_| hard(&bench, false)).collect();
            let graceful_trials: Vec<Trial> =
                (0..trials).map(|_| graceful(&mut bench, false)).collect();
            let load_trials: Vec<Trial> = (0..trials.min(if smoke { 1 } else { 5 }))
                .map(|_| hard(&bench, true))
                .collect();
            results.push((agent, "hard failure (link cut)", hard_trials));
            results.push((
                agent,
                "graceful (vipflip handoff / keepalived SIGTERM)",
                graceful_trials,
            ));
            results.push((agent, "hard failure under load", load_trials));
            if agent == Agent::Vipflip {
                let sigterm: Vec<Trial> = (0..trials.min(if smoke { 1 } else { 5 }))
                    .map(|_| graceful(&mut bench, true))
                    .collect();
                results.push((agent, "graceful (vipflip SIGTERM)", sigterm));
            }
        }
        for scenario in [
            "hard failure (link cut)",
            "graceful (vipflip handoff / keepalived SIGTERM)",
            "hard failure under load",
            "graceful (vipflip SIGTERM)",
        ] {
            let get = |agent: Agent| {
                results
                    .iter()
                    .find(|(a, s, _)| *a == agent && *s == scenario)
                    .map(|(_, _, t)| t.clone())
            };
            let (Some(ours), theirs) = (get(Agent::Vipflip), get(Agent::Keepalived)) else {
                continue;
            };
            let o = stats(&ours.iter().map(|t| t.outage_us / 1000).collect::<Vec<_>>());
            let lost_ours: u64 = ours.iter().map(|t| t.lost).sum();
            let theirs_cell = theirs.as_ref().map_or_else(
                || "—".to_owned(),
                |t| {
                    let s = stats(&t.iter().map(|t| t.outage_us / 1000).collect::<Vec<_>>());
                    format!(
                        "{} / {} / {} ms (lost {})",
                        s.median,
                        s.p95,
                        s.max,
                        t.iter().map(|t| t.lost).sum::<u64>()
                    )
                },
            );
            let r = theirs.as_ref().map_or_else(
                || "—".to_owned(),
                |t| {
                    let s = stats(&t.iter().map(|t| t.outage_us / 1000).collect::<Vec<_>>());
                    #[expect(clippy::cast_precision_loss, reason = "milliseconds, far below 2^52")]
                    let (a, b) = (o.median as f64, s.median as f64);
                    ratio(a, b)
                },
            );
            let _ = writeln!(
                table,
                "| {interval:?} | {scenario} | {} / {} / {} ms (lost {lost_ours}) | {theirs_cell} | {r} |",
                o.median, o.p95, o.max
            );
        }
        for (agent, scenario, trials) in &results {
            for (i, t) in trials.iter().enumerate() {
                let _ = writeln!(
                    raw,
                    "{interval:?}\t{}\t{scenario}\ttrial {i}\toutage_us {}\tlost {}\tfalse_failovers {}",
                    agent.name(),
                    t.outage_us,
                    t.lost,
                    t.false_failovers
                );
            }
        }
    }
    // Restarts of the master's agent at 100 ms adverts: hitless only if the new process
    // advertises before the backup's Master_Down_Interval (361 ms after the last advert).
    let restarts = if smoke { 3 } else { 20 };
    let mut bench = Bench::new(Agent::Vipflip, Duration::from_millis(100), 1);
    assert!(
        bench.wait_served_by(0, Duration::from_secs(10)),
        "r1 never served the VIP before the restarts"
    );
    let watch = AdvertWatch::start(&bench, bench.lab.routers[0].ipv4);
    let restart_trials: Vec<Restart> = (0..restarts).map(|_| restart(&mut bench, &watch)).collect();
    drop(watch);
    drop(bench);
    let ms: Vec<u64> = restart_trials.iter().map(|t| t.restart_us / 1000).collect();
    let r = stats(&ms);
    let takeovers = restart_trials.iter().filter(|t| t.backup_took_over).count();
    let _ = writeln!(
        table,
        "\n| restart (SIGKILL, start again; 100 ms adverts) | restart_ms median / p99 / max | backup took over |"
    );
    let _ = writeln!(table, "|---|---|---|");
    let _ = writeln!(
        table,
        "| vipflip, {restarts} restarts | {} / {} / {} ms | {takeovers} of {restarts} |",
        r.median, r.p99, r.max
    );
    for (i, t) in restart_trials.iter().enumerate() {
        let _ = writeln!(
            raw,
            "100ms\tvipflip\trestart\ttrial {i}\trestart_us {}\tbackup_took_over {}",
            t.restart_us, t.backup_took_over
        );
    }
    // Resources at 10 ms adverts, 1 and 50 instances, measured on the master (r1) for 10 s.
    let _ = writeln!(
        table,
        "\n| resources (10 ms adverts, master) | vipflip RSS / CPU | keepalived RSS / CPU | ratio (CPU) |"
    );
    let _ = writeln!(table, "|---|---|---|---|");
    let resource_rows = match (only_restart, smoke) {
        (true, _) => vec![],
        (false, true) => vec![1],
        (false, false) => vec![1, 50],
    };
    for instances in resource_rows {
        let mut row = Vec::new();
        for agent in [Agent::Vipflip, Agent::Keepalived] {
            let bench = Bench::new(agent, Duration::from_millis(10), instances);
            let _ = bench.wait_served_by(0, Duration::from_secs(10));
            std::thread::sleep(Duration::from_secs(1));
            row.push(resources(
                &bench,
                if smoke {
                    Duration::from_secs(1)
                } else {
                    Duration::from_secs(10)
                },
            ));
        }
        let _ = writeln!(
            table,
            "| {instances} instance(s) | {} kB / {:.3} s/s | {} kB / {:.3} s/s | {} |",
            row[0].0,
            row[0].1,
            row[1].0,
            row[1].1,
            ratio(row[0].1, row[1].1)
        );
    }
    println!("{table}");
    if let Some(path) = out_path {
        write_results(&path, &table, &raw, trials, smoke);
    }
}

fn write_results(path: &Path, table: &str, raw: &str, trials: usize, smoke: bool) {
    let mut md = String::from("# Failover: vipflip next to keepalived\n\n");
    let _ = writeln!(
        md,
        "Same lab topology for both (two routers and a client on a Linux bridge, veth, network \
         namespaces), same advert interval, priorities 200 and 100, VRRPv3, one VIP; the client \
         probes the VIP every 1 ms (`vipflip-probe`) and records which router answers. Outage = \
         the longest run of unanswered probes (+1 ms), as the client sees it. {trials} trial(s) \
         per cell{}.\n",
        if smoke {
            " (SMOKE RUN: figures mean nothing)"
        } else {
            ""
        }
    );
    let run = |p: &str, a: &[&str]| {
        Command::new(p)
            .args(a)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let _ = writeln!(md, "- command: `cargo xtask bench failover`");
    let _ = writeln!(
        md,
        "- date: {}",
        run("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])
    );
    let _ = writeln!(md, "- kernel: {}", run("uname", &["-srm"]));
    let _ = writeln!(md, "- cores: {}", run("nproc", &[]));
    let _ = writeln!(
        md,
        "- keepalived: {}",
        run("sh", &["-c", "keepalived --version 2>&1 | head -1"])
    );
    let _ = writeln!(
        md,
        "- vipflip: {}\n",
        run(vipflip_bin().to_str().unwrap_or("vipflip"), &["--version"])
    );
    md.push_str(table);
    md.push_str("\n## Raw trials\n\n```\n");
    md.push_str(raw);
    md.push_str("```\n");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(path, md).expect("write the results file");
    println!("wrote {}", path.display());
}
