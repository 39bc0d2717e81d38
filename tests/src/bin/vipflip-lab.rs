//! `vipflip-lab` (run through `cargo xtask lab`): a namespace lab with routers running vipflip
//! (or keepalived on r1 with `--keepalived`), a client probing the VIP every millisecond, and
//! a live view of who is master, who serves the client and what XDP counted. Keys (or a
//! `--script`) kill the master's agent, cut its link, restore everything, or hand over.
//!
//! Everything it makes is named `<prefix>-*` (default `vflab`) and lives under
//! `/run/<prefix>/`; Ctrl-C, `q` or `--down` remove it all, and every run first removes what a
//! crashed run left.

use std::{
    io::{BufRead as _, IsTerminal as _, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use vipflip_integration_tests::{BpfFs, KillOnDrop as Proc, Lab, Naming, vipflip_bin};

const VIP: &str = "192.0.2.100";
const USAGE: &str = "usage: vipflip-lab [--routers 2|3] [--keepalived] [--interval 1s] \
                     [--script \"wait 3; cut; wait 5; restore; quit\"] [--prefix vflab] [--down]";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

struct Options {
    routers: usize,
    keepalived: bool,
    interval: String,
    script: Option<String>,
    prefix: &'static str,
    down: bool,
}

fn options() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    for arg in &args {
        if arg.starts_with("--")
            && ![
                "--routers",
                "--keepalived",
                "--interval",
                "--script",
                "--prefix",
                "--down",
            ]
            .contains(&arg.as_str())
        {
            return Err(format!("unknown option {arg}\n{USAGE}"));
        }
    }
    let routers = match value("--routers").as_deref() {
        None | Some("2") => 2,
        Some("3") => 3,
        Some(other) => return Err(format!("--routers {other}: the lab has 2 or 3 routers")),
    };
    let prefix: &'static str = Box::leak(
        value("--prefix")
            .unwrap_or_else(|| "vflab".into())
            .into_boxed_str(),
    );
    if prefix.is_empty() || prefix.len() > 8 || !prefix.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(format!("--prefix {prefix}: 1 to 8 lower-case letters"));
    }
    Ok(Options {
        routers,
        keepalived: args.iter().any(|a| a == "--keepalived"),
        interval: value("--interval").unwrap_or_else(|| "1s".into()),
        script: value("--script"),
        prefix,
        down: args.iter().any(|a| a == "--down"),
    })
}

/// One router of the lab and what runs on it.
struct Router {
    name: String,
    priority: u8,
    keepalived: bool,
    agent: Option<Proc>,
    config: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    link_up: bool,
}

struct RouterView {
    state: String,
    master: String,
    transitions: String,
    xdp: String,
    vip: String,
}

impl Router {
    fn start(&mut self, lab: &Lab, index: usize, dir: &Path) {
        let host = &lab.routers[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let child = if self.keepalived {
            host.ns
                .command("keepalived")
                .args(["-n", "-l", "-D", "-f"])
                .arg(&self.config)
                .arg("-p")
                .arg(dir.join(format!("{}-ka.pid", self.name)))
                .arg("-r")
                .arg(dir.join(format!("{}-vrrp.pid", self.name)))
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
        } else {
            host.ns
                .command(vipflip_bin().to_str().expect("utf-8 path"))
                .args(["run", "--config"])
                .arg(&self.config)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
        };
        self.agent = Some(Proc(child.expect("start the router's agent")));
    }

    fn view(&self) -> RouterView {
        let mut view = RouterView {
            state: "down".into(),
            master: "-".into(),
            transitions: "-".into(),
            xdp: "-".into(),
            vip: "-".into(),
        };
        if self.agent.is_none() {
            view.state = "killed".into();
            return view;
        }
        if self.keepalived {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(at) = log.rfind("Entering ") {
                let state = log[at + 9..].split(' ').next().unwrap_or("?");
                view.state = format!("{}{}", &state[..1], state[1..].to_lowercase());
            }
            view.transitions = log.matches("Entering ").count().to_string();
            return view;
        }
        let out = Command::new(vipflip_bin())
            .args(["status", "--json", "--control-socket"])
            .arg(&self.socket)
            .output();
        let Ok(out) = out else { return view };
        let json = String::from_utf8_lossy(&out.stdout);
        view.state = field(&json, "state").unwrap_or_else(|| "starting".into());
        view.master = field(&json, "master").unwrap_or_else(|| "-".into());
        view.transitions = field(&json, "transitions").unwrap_or_else(|| "-".into());
        if let (Some(ok), Some(dropped)) = (
            field(&json, "xdp_adverts_accepted"),
            field(&json, "xdp_adverts_dropped"),
        ) {
            view.xdp = format!("{ok}/{dropped}");
        }
        if let Some(at) = json.find("\"dataplane\": [") {
            let rest = &json[at..];
            if let Some(entry) = rest.split('"').nth(3) {
                entry
                    .split(": ")
                    .nth(1)
                    .unwrap_or(entry)
                    .split(" (")
                    .next()
                    .unwrap_or(entry)
                    .clone_into(&mut view.vip);
            }
        }
        view
    }
}

/// The value of `"name": …` in pretty JSON, unquoted.
fn field(json: &str, name: &str) -> Option<String> {
    let key = format!("\"{name}\": ");
    let at = json.find(&key)? + key.len();
    let value = json[at..]
        .split([',', '\n'])
        .next()?
        .trim()
        .trim_matches('"');
    (value != "null").then(|| value.to_owned())
}

#[expect(
    clippy::too_many_lines,
    reason = "the lab's life, from start to clean-up, in order"
)]
fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("vipflip-lab: {message}");
            std::process::exit(2);
        }
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("vipflip-lab: the lab makes network namespaces and loads XDP: run it as root");
        std::process::exit(2);
    }
    let dir = PathBuf::from(format!("/run/{}", options.prefix));
    let bpffs_path = dir.join("bpffs");
    Lab::clean_up(options.prefix, &bpffs_path);
    if options.down {
        let _ = std::fs::remove_dir_all(&dir);
        println!("lab {} removed", options.prefix);
        return;
    }
    // SAFETY: installing an async-signal-safe handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    std::fs::create_dir_all(&dir).expect("create the lab directory");
    println!(
        "building the lab: {} routers and a client in namespaces {}-* …",
        options.routers, options.prefix
    );
    let lab = Lab::build(
        options.routers,
        Naming::Fixed(options.prefix),
        BpfFs::at(bpffs_path),
    );
    let mut routers: Vec<Router> = (0..options.routers)
        .map(|i| {
            let name = format!("r{}", i + 1);
            let priority = u8::try_from(200 - 50 * i).expect("priority");
            let keepalived = options.keepalived && i == 0;
            let config = dir.join(if keepalived {
                format!("{name}-keepalived.conf")
            } else {
                format!("{name}.toml")
            });
            write_config(
                &config,
                &name,
                priority,
                keepalived,
                &options.interval,
                &dir,
            );
            Router {
                socket: dir.join(format!("{name}.sock")),
                log: dir.join(format!("{name}.log")),
                name,
                priority,
                keepalived,
                agent: None,
                config,
                link_up: true,
            }
        })
        .collect();
    for (i, router) in routers.iter_mut().enumerate() {
        router.start(&lab, i, &dir);
    }
    let probe_bin = std::env::current_exe()
        .expect("own path")
        .with_file_name("vipflip-probe");
    let _responders: Vec<Proc> = lab
        .routers
        .iter()
        .zip(&routers)
        .map(|(host, r)| {
            Proc(
                host.ns
                    .command(probe_bin.to_str().expect("utf-8 path"))
                    .args(["serve", "--port", "7777", "--name", &r.name])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("start a probe responder"),
            )
        })
        .collect();
    let mut prober = lab
        .client
        .ns
        .command(probe_bin.to_str().expect("utf-8 path"))
        .args(["probe", "--target", VIP, "--port", "7777", "--live"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the client's prober");
    let probe_line = Arc::new(Mutex::new(String::from("{}")));
    {
        let stdout = prober.stdout.take().expect("piped");
        let line = Arc::clone(&probe_line);
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                *line
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = l;
            }
        });
    }
    let _prober = Proc(prober);

    let commands = vipflip_integration_tests::scene::lab_commands(options.script.as_deref());

    let tty = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut events: Vec<String> = Vec::new();
    let mut last_frame = String::new();
    loop {
        while let Ok(command) = commands.try_recv() {
            let at = started.elapsed().as_secs_f64();
            match act(&command, &lab, &mut routers, &dir) {
                Some(Ok(what)) => events.push(format!("{at:6.1}s  {what}")),
                Some(Err(what)) => events.push(format!("{at:6.1}s  {command}: {what}")),
                None => STOP.store(true, Ordering::SeqCst),
            }
        }
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let frame = render(
            &options,
            &routers,
            &probe_line
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            &events,
        );
        if tty {
            print!("\x1b[2J\x1b[H{frame}");
        } else if frame != last_frame {
            println!("{frame}");
        }
        let _ = std::io::stdout().flush();
        last_frame = frame;
        std::thread::sleep(Duration::from_millis(if tty { 500 } else { 250 }));
    }
    let final_probe = probe_line
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    println!("\nclient probes: {final_probe}");
    for event in &events {
        println!("{event}");
    }
    drop(routers);
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    println!("lab {} removed", options.prefix);
}

/// Carries out one command; `None` means quit.
fn act(
    command: &str,
    lab: &Lab,
    routers: &mut [Router],
    dir: &Path,
) -> Option<Result<String, String>> {
    let master = routers.iter().position(|r| {
        r.agent.is_some() && r.link_up && r.view().state.eq_ignore_ascii_case("master")
    });
    Some(match command {
        "q" | "quit" => return None,
        "k" | "kill" => match master {
            Some(i) => {
                routers[i].agent = None;
                Ok(format!(
                    "killed {}'s agent (SIGKILL): its pinned XDP program keeps serving",
                    routers[i].name
                ))
            }
            None => Err("no master to kill".into()),
        },
        "c" | "cut" => match master {
            Some(i) => {
                let host = &lab.routers[i];
                host.ns.ip(&["link", "set", &host.iface, "down"]);
                routers[i].link_up = false;
                Ok(format!("cut {}'s link", routers[i].name))
            }
            None => Err("no master to cut".into()),
        },
        "r" | "restore" => {
            let mut done = Vec::new();
            for (i, router) in routers.iter_mut().enumerate() {
                if !router.link_up {
                    let host = &lab.routers[i];
                    host.ns.ip(&["link", "set", &host.iface, "up"]);
                    router.link_up = true;
                    done.push(format!("{}'s link up", router.name));
                }
                if router.agent.is_none() {
                    router.start(lab, i, dir);
                    done.push(format!("{}'s agent restarted", router.name));
                }
            }
            if done.is_empty() {
                Err("nothing to restore".into())
            } else {
                Ok(done.join(", "))
            }
        }
        "h" | "handoff" => match master {
            Some(i) if routers[i].keepalived => {
                Err("the master is keepalived: it has no planned handoff".into())
            }
            Some(i) => {
                let out = Command::new(vipflip_bin())
                    .args(["handoff", "VI_1", "--control-socket"])
                    .arg(&routers[i].socket)
                    .output()
                    .map_err(|e| e.to_string());
                match out {
                    Ok(out) if out.status.success() => Ok(format!(
                        "{}: {}",
                        routers[i].name,
                        String::from_utf8_lossy(&out.stdout).trim()
                    )),
                    Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
                    Err(e) => Err(e),
                }
            }
            None => Err("no master to hand off".into()),
        },
        "" => return Some(Err("empty command".into())),
        other => Err(format!(
            "unknown command {other:?}: k(ill), c(ut), r(estore), h(andoff), q(uit)"
        )),
    })
}

fn render(options: &Options, routers: &[Router], probe: &str, events: &[String]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vipflip lab: {} routers, VRID 51, VIP {VIP}, adverts every {} (namespaces {}-*)",
        routers.len(),
        options.interval,
        options.prefix
    );
    let _ = writeln!(
        out,
        "{:<6} {:<10} {:<8} {:>4}  {:<12} {:>11}  {:<15} vip in xdp",
        "router", "agent", "state", "prio", "master", "transitions", "adverts ok/drop"
    );
    for r in routers {
        let v = r.view();
        let agent = if r.keepalived {
            "keepalived"
        } else {
            "vipflip"
        };
        let link = if r.link_up { "" } else { " (link cut)" };
        let _ = writeln!(
            out,
            "{:<6} {:<10} {:<8} {:>4}  {:<12} {:>11}  {:<15} {}{link}",
            r.name, agent, v.state, r.priority, v.master, v.transitions, v.xdp, v.vip
        );
    }
    let num = |name: &str| {
        let key = format!("\"{name}\":");
        probe
            .find(&key)
            .map_or("0", |at| {
                probe[at + key.len()..]
                    .split([',', '}'])
                    .next()
                    .unwrap_or("0")
            })
            .trim_matches('"')
            .to_owned()
    };
    let _ = writeln!(
        out,
        "client: probes every 1 ms to {VIP}: sent {} answered {} lost {}; served by {}; outage now {} ms",
        num("sent"),
        num("received"),
        num("lost"),
        num("last"),
        num("outage_ms")
    );
    let _ = writeln!(
        out,
        "keys (then Enter): k kill master's agent | c cut master's link | r restore | h handoff | q quit"
    );
    for event in events.iter().rev().take(6).rev() {
        let _ = writeln!(out, "  {event}");
    }
    out
}

fn write_config(
    path: &Path,
    name: &str,
    priority: u8,
    keepalived: bool,
    interval: &str,
    dir: &Path,
) {
    let text = if keepalived {
        let seconds = humanish_seconds(interval);
        format!(
            "global_defs {{\n  router_id {name}\n  vrrp_version 3\n}}\nvrrp_instance VI_1 {{\n  state BACKUP\n  \
             interface eth0\n  virtual_router_id 51\n  priority {priority}\n  advert_int {seconds}\n  \
             virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
        )
    } else {
        format!(
            "# {name} of the vipflip lab: see examples/vipflip.toml for every key.\n[global]\n\
             router_id = \"{name}\"\npin_dir = \"{pins}/{name}\"\ncontrol_socket = \"{sock}\"\n\n\
             [[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {priority}\n\
             advert_interval = \"{interval}\"\nvirtual_ips = [\"{VIP}/24\"]\n",
            pins = dir.join("bpffs").display(),
            sock = dir.join(format!("{name}.sock")).display(),
        )
    };
    std::fs::write(path, text).expect("write a router's configuration");
}

/// keepalived wants seconds (`0.1`); the lab takes vipflip's `100ms` / `1s`.
fn humanish_seconds(interval: &str) -> String {
    if let Some(ms) = interval.strip_suffix("ms") {
        return format!("{}", ms.trim().parse::<f64>().unwrap_or(1000.0) / 1000.0);
    }
    interval.trim_end_matches('s').trim().to_owned()
}
