//! `vipflip`: the command line.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use vipflip::dataplane::{self, AttachOutcome, DEFAULT_PIN_ROOT, Dataplane, XdpModeChoice};
use vipflip_common::{FAMILY_IPV4, FAMILY_IPV6, Outcome};

#[derive(Parser)]
#[command(
    name = "vipflip",
    version,
    about = "VRRP failover with an XDP data path"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (logs to stderr) until SIGTERM / SIGINT.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Log format on stderr. The filter comes from `RUST_LOG` (default `info`).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// On exit, leave the XDP program and its pins in place (default: detach, unpin).
        #[arg(long)]
        keep_dataplane: bool,
    },
    /// Check a configuration file: every error with `file:line:column`; exit non-zero on error.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// Show each instance of the running daemon; without a daemon, what the pinned maps hold.
    Status {
        #[command(flatten)]
        target: DaemonTarget,
        /// Print the daemon's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hand a master instance over to the next router without losing traffic.
    Handoff {
        /// The `[[instance]]` name.
        instance: String,
        #[command(flatten)]
        target: DaemonTarget,
    },
    /// Make the running daemon re-read its configuration file and apply the difference (as
    /// SIGHUP does). An invalid file is refused with every error, and the daemon keeps
    /// running what it runs.
    Reload {
        #[command(flatten)]
        target: DaemonTarget,
    },
    /// Load, attach and pin the XDP program on an interface (or re-open it if already pinned).
    Load {
        /// The interface to attach to.
        #[arg(long)]
        iface: String,
        /// auto tries native (driver) XDP first, then generic (skb).
        #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
        xdp_mode: XdpModeArg,
        /// Root of the pins; the interface's pins go in `<pin-dir>/<iface>/`.
        #[arg(long, default_value = DEFAULT_PIN_ROOT)]
        pin_dir: PathBuf,
        /// Stay in the foreground after loading, until killed (the program stays attached).
        #[arg(long)]
        hold: bool,
    },
    /// Attach the pass-everything XDP program to an interface: on veth, frames sent with
    /// `XDP_TX` or redirected towards an interface are only delivered if it runs XDP too.
    LoadPass {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value = DEFAULT_PIN_ROOT)]
        pin_dir: PathBuf,
    },
    /// On a real server whose kernel has no ipip or fou: attach vipflip's decapsulating XDP
    /// program, which unwraps IPIP (always) and GUE (on the given ports) before the stack.
    LoadDecap {
        #[arg(long)]
        iface: String,
        /// A UDP port GUE arrives on (the directors' `gue_port`); repeat for more.
        #[arg(long = "gue-port")]
        gue_ports: Vec<u16>,
        #[arg(long, default_value = DEFAULT_PIN_ROOT)]
        pin_dir: PathBuf,
    },
    /// Detach the XDP program from an interface and remove its pins.
    Unload {
        #[arg(long)]
        iface: String,
        #[arg(long, default_value = DEFAULT_PIN_ROOT)]
        pin_dir: PathBuf,
    },
    /// Convert a keepalived.conf (with its includes) to vipflip TOML on stdout; what cannot
    /// be carried is listed on stderr with file and line. Exit 0: lossless, 2: something was
    /// not carried, 1: the file could not be read or parsed.
    ImportKeepalived {
        /// The keepalived configuration file.
        path: PathBuf,
    },
    /// Withdraw every announced route, serve what still arrives until `[routing] drain_quiet`
    /// passes without a VIP packet, then stop the daemon (as SIGTERM does).
    Drain {
        #[command(flatten)]
        target: DaemonTarget,
    },
    /// Print the routing daemon's configuration that announces this configuration's VIPs
    /// over BGP: it redistributes the kernel table vipflip writes (`[routing]`,
    /// `[[announce]]`). Paste it into frr.conf or bird.conf.
    RoutingConfig {
        #[arg(long)]
        config: PathBuf,
        /// FRR's frr.conf (zebra's import-table, bgpd, bfdd): the tested default.
        #[arg(long, conflicts_with = "bird", required_unless_present = "bird")]
        frr: bool,
        /// BIRD 2's bird.conf (a kernel protocol that learns vipflip's table).
        #[arg(long)]
        bird: bool,
    },
    /// Print what a Linux real server needs to answer for VIPs a director forwards to it
    /// (the VIP on lo, ARP and reverse-path filter settings, tunnel devices, a fou port), as shell
    /// commands; with --apply, do it (idempotent); with --remove, take the VIPs and fou ports
    /// away again.
    RealServer(RealServerArgs),
    /// Print the pinned maps in human form: VIPs and their owners, VRIDs, counters.
    Maps {
        /// Only this interface (default: every interface under the pin directory).
        #[arg(long)]
        iface: Option<String>,
        #[arg(long, default_value = DEFAULT_PIN_ROOT)]
        pin_dir: PathBuf,
    },
}

/// `vipflip real-server`'s arguments.
#[derive(clap::Args)]
struct RealServerArgs {
    /// The virtual server's `forward`.
    #[arg(long, value_enum)]
    forward: ForwardArg,
    /// The virtual server's `gue_port` (with `--forward gue`).
    #[arg(long, required_if_eq("forward", "gue"))]
    gue_port: Option<u16>,
    /// A VIP this real server answers for; repeat for each.
    #[arg(long = "vip", required = true)]
    vips: Vec<IpAddr>,
    /// The family of this real server's own address, which the director puts in the
    /// outer header (repeat for both); default: each VIP's own.
    #[arg(long = "outer", value_enum)]
    outer: Vec<FamilyArg>,
    /// Apply the steps that are missing.
    #[arg(long, conflicts_with = "remove")]
    apply: bool,
    /// Remove the VIPs from lo and the fou ports; modules, devices and sysctls stay.
    #[arg(long)]
    remove: bool,
    /// Unwrap tunnels with vipflip's decap XDP program on this interface instead of the
    /// kernel's ipip and fou (for kernels built without them).
    #[arg(long, value_name = "IFACE", conflicts_with = "outer")]
    xdp_decap: Option<String>,
    /// Where the decap program's pins go (with `--xdp-decap`).
    #[arg(long, default_value = DEFAULT_PIN_ROOT)]
    pin_dir: PathBuf,
}

/// Which daemon `status`, `handoff` and `reload` talk to.
#[derive(clap::Args)]
struct DaemonTarget {
    /// The daemon's control socket.
    #[arg(long, conflicts_with = "config")]
    control_socket: Option<PathBuf>,
    /// Find the control socket (and pin directory) in this configuration.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// `--xdp-mode`: the CLI's own enum, mapped to the data plane's.
#[derive(Clone, Copy, clap::ValueEnum)]
enum XdpModeArg {
    Auto,
    Driver,
    Skb,
}

impl From<XdpModeArg> for XdpModeChoice {
    fn from(mode: XdpModeArg) -> Self {
        match mode {
            XdpModeArg::Auto => Self::Auto,
            XdpModeArg::Driver => Self::Driver,
            XdpModeArg::Skb => Self::Skb,
        }
    }
}

/// `--forward`: the configuration's `forward` words.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ForwardArg {
    Dr,
    Ipip,
    Gue,
}

/// `--outer`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum FamilyArg {
    Ipv4,
    Ipv6,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Run { log_format, .. } => *log_format,
        _ => LogFormat::Text,
    };
    init_logging(format);
    match &cli.command {
        Command::CheckConfig { config } => return vipflip::config::check_config_command(config),
        Command::ImportKeepalived { path } => {
            return vipflip::import::import_keepalived_command(path);
        }
        _ => {}
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vipflip: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// The configuration at `path`, or every problem in it.
fn load_config(
    path: &Path,
) -> anyhow::Result<(vipflip::config::Config, Vec<vipflip::config::Diagnostic>)> {
    vipflip::config::Config::load(path).map_err(|diagnostics| {
        let text: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{} is not a valid configuration:\n{}",
            path.display(),
            text.join("\n")
        )
    })
}

/// The error and its causes on one line, each said once: our error types already write their
/// cause into their message (so a log line of one error is whole), and anyhow's `{:#}` would
/// repeat it.
fn describe(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

fn init_logging(format: LogFormat) {
    vipflip::logging::init(match format {
        LogFormat::Text => vipflip::logging::LogFormat::Text,
        LogFormat::Json => vipflip::logging::LogFormat::Json,
    });
}

/// The control socket and pin directory a `status` / `handoff` means.
fn daemon_paths(target: &DaemonTarget) -> anyhow::Result<(PathBuf, PathBuf)> {
    if let Some(path) = &target.config {
        let (config, _) = load_config(path)?;
        return Ok((config.global.control_socket, config.global.pin_dir));
    }
    let socket = target
        .control_socket
        .clone()
        .unwrap_or_else(|| PathBuf::from("/run/vipflip.sock"));
    Ok((socket, PathBuf::from(DEFAULT_PIN_ROOT)))
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            config: config_path,
            keep_dataplane,
            ..
        } => {
            require_root("run")?;
            let (config, warnings) = load_config(&config_path)?;
            for warning in warnings {
                log::warn!("{warning}");
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            let options = vipflip::daemon::RunOptions {
                keep_dataplane,
                control_socket: None,
                config_path: Some(std::fs::canonicalize(&config_path).unwrap_or(config_path)),
            };
            Ok(runtime.block_on(vipflip::daemon::run(config, options))?)
        }
        Command::CheckConfig { .. } | Command::ImportKeepalived { .. } => {
            unreachable!("handled in main: these have their own exit codes")
        }
        Command::Status { target, json } => status(&target, json),
        Command::Handoff { instance, target } => ask(
            &target,
            &vipflip::control::Request::Handoff { instance },
            "",
        ),
        Command::Reload { target } => {
            ask(&target, &vipflip::control::Request::Reload, "reloaded: ")
        }
        Command::Drain { target } => ask(&target, &vipflip::control::Request::Drain, ""),
        Command::RoutingConfig { config, frr, .. } => {
            use vipflip::announce::routing_config::{Daemon, render};
            let (config, _) = load_config(&config)?;
            let daemon = if frr { Daemon::Frr } else { Daemon::Bird };
            print!("{}", render(&config, daemon)?);
            Ok(())
        }
        Command::Load {
            iface,
            xdp_mode,
            pin_dir,
            hold,
        } => {
            require_root("load")?;
            let (plane, outcome) = Dataplane::attach(&iface, &pin_dir, xdp_mode.into())
                .with_context(|| format!("loading vipflip on {iface}"))?;
            match outcome {
                AttachOutcome::Attached(mode) => {
                    println!(
                        "{iface}: attached in {mode} mode; pinned under {}",
                        plane.pin_dir().display()
                    );
                }
                AttachOutcome::Reopened => {
                    println!(
                        "{iface}: already loaded; re-opened the pins under {}",
                        plane.pin_dir().display()
                    );
                }
            }
            if hold {
                hold_and_log(&iface, &pin_dir)?;
            }
            Ok(())
        }
        Command::LoadPass { iface, pin_dir } => {
            require_root("load-pass")?;
            dataplane::attach_pass(&iface, &pin_dir)
                .with_context(|| format!("attaching the pass program on {iface}"))?;
            println!("{iface}: pass program attached");
            Ok(())
        }
        Command::LoadDecap {
            iface,
            gue_ports,
            pin_dir,
        } => load_decap(&iface, &gue_ports, &pin_dir),
        Command::Unload { iface, pin_dir } => {
            require_root("unload")?;
            Dataplane::detach(&iface, &pin_dir)
                .with_context(|| format!("unloading vipflip from {iface}"))?;
            println!("{iface}: detached; pins removed");
            Ok(())
        }
        Command::Maps { iface, pin_dir } => print_maps(iface.as_deref(), &pin_dir),
        Command::RealServer(args) => real_server(&args),
    }
}

/// `vipflip load-decap`: attaches the decapsulating program and says what it counted.
fn load_decap(iface: &str, gue_ports: &[u16], pin_dir: &Path) -> anyhow::Result<()> {
    require_root("load-decap")?;
    dataplane::attach_decap(iface, pin_dir, gue_ports)
        .with_context(|| format!("attaching the decap program on {iface}"))?;
    println!("{iface}: decap program attached (IPIP, GUE on {gue_ports:?})");
    Ok(())
}

/// `vipflip real-server`: the plan printed, applied or undone, a line per step.
fn real_server(args: &RealServerArgs) -> anyhow::Result<()> {
    use vipflip::realserver::{Family, Mode, Outcome, Plan};
    let (forward, gue_port, vips, outer) = (args.forward, args.gue_port, &args.vips, &args.outer);
    let (apply, remove) = (args.apply, args.remove);
    let xdp_decap = args
        .xdp_decap
        .as_deref()
        .map(|iface| (iface, args.pin_dir.as_path()));
    let mode = match (forward, gue_port) {
        (ForwardArg::Gue, Some(port)) => Mode::Gue { port },
        (ForwardArg::Gue, None) => bail!("--forward gue needs --gue-port"),
        (_, Some(_)) => bail!("--gue-port goes with --forward gue only"),
        (ForwardArg::Dr, None) => Mode::Dr,
        (ForwardArg::Ipip, None) => Mode::Ipip,
    };
    let outer: Vec<Family> = outer
        .iter()
        .map(|family| match family {
            FamilyArg::Ipv4 => Family::V4,
            FamilyArg::Ipv6 => Family::V6,
        })
        .collect();
    let plan = match xdp_decap {
        Some((iface, pin_dir)) => Plan::with_xdp_decap(mode, vips, iface, pin_dir)?,
        None => Plan::new(mode, vips, &outer)?,
    };
    if !apply && !remove {
        print!("{}", plan.render());
        return Ok(());
    }
    let mut changed = 0;
    let report = |step: &vipflip::realserver::Step, outcome: Outcome| {
        let (word, what) = match (outcome, remove) {
            (Outcome::Changed, false) => ("applied", step.command()),
            (Outcome::Unchanged, false) => ("already", step.command()),
            (Outcome::Changed, true) => ("removed", step.undo_command().unwrap_or_default()),
            (Outcome::Unchanged, true) => ("absent", step.undo_command().unwrap_or_default()),
            (Outcome::Left, _) => ("left", step.command()),
        };
        if outcome == Outcome::Changed {
            changed += 1;
        }
        println!("{word:<8} {what}");
    };
    if remove {
        vipflip::realserver::remove(&plan, report)?;
    } else {
        vipflip::realserver::apply(&plan, report)?;
        if let Some(advice) = plan.mss_advice() {
            println!("\n{advice}");
        }
    }
    println!(
        "{changed} step{} changed",
        if changed == 1 { "" } else { "s" }
    );
    Ok(())
}

/// Stays up until killed, passing the XDP program's (rare) log records to stderr.
fn hold_and_log(iface: &str, pin_dir: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd as _;
    let mut logger = dataplane::program_logger(iface, pin_dir)?;
    loop {
        let mut fd = libc::pollfd {
            fd: logger.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&raw mut fd, 1, -1) };
        if ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            bail!(
                "polling the XDP log buffer: {}",
                std::io::Error::last_os_error()
            );
        }
        logger.flush();
    }
}

/// `vipflip status`: the daemon's view, or the pinned maps when no daemon answers.
fn status(target: &DaemonTarget, json: bool) -> anyhow::Result<()> {
    let (socket, pin_dir) = daemon_paths(target)?;
    match vipflip::control::call(&socket, &vipflip::control::Request::Status) {
        Ok(vipflip::control::Response::Status(report)) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).context("encoding JSON")?
                );
            } else {
                print!("{}", report.render());
            }
            Ok(())
        }
        Ok(other) => bail!("unexpected answer from the daemon: {other:?}"),
        Err(err) => {
            println!("vipflip: {err}");
            println!("what the pinned maps under {} hold:", pin_dir.display());
            print_maps(None, &pin_dir)
        }
    }
}

/// `vipflip handoff INSTANCE`.
/// Sends `request` to the daemon and prints its answer, after `prefix`.
fn ask(
    target: &DaemonTarget,
    request: &vipflip::control::Request,
    prefix: &str,
) -> anyhow::Result<()> {
    let (socket, _) = daemon_paths(target)?;
    match vipflip::control::call(&socket, request)? {
        vipflip::control::Response::Ok { message } => {
            println!("{prefix}{message}");
            Ok(())
        }
        vipflip::control::Response::Error { message } => bail!("{message}"),
        vipflip::control::Response::Status(_) => bail!("unexpected status answer to {request:?}"),
    }
}

fn require_root(what: &str) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "`vipflip {what}` needs root (CAP_BPF, CAP_NET_ADMIN) to load and attach XDP programs"
        );
    }
    Ok(())
}

fn print_maps(only: Option<&str>, pin_root: &Path) -> anyhow::Result<()> {
    let ifaces: Vec<String> = if let Some(iface) = only {
        vec![iface.to_owned()]
    } else {
        let entries = std::fs::read_dir(pin_root).with_context(|| {
            format!(
                "reading {} (is vipflip loaded anywhere?)",
                pin_root.display()
            )
        })?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join("VIPS").exists() || e.path().join("DECAP_STATS").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        if names.is_empty() {
            bail!("no interface has vipflip maps under {}", pin_root.display());
        }
        names
    };
    for iface in ifaces {
        let dir = pin_root.join(&iface);
        if dir.join("DECAP_STATS").exists() {
            let stats = dataplane::decap_stats(&iface, pin_root)?;
            println!("interface {iface} (pins: {}): decap program", dir.display());
            println!("    decap_ipip             {}", stats.ipip);
            println!("    decap_gue              {}", stats.gue);
            println!("    decap_passed           {}", stats.passed);
        }
        if dir.join("VIPS").exists() || only.is_some() && !dir.join("DECAP_STATS").exists() {
            let plane = Dataplane::open_pinned(&iface, pin_root)?;
            print_interface(&plane)?;
        }
    }
    Ok(())
}

fn print_interface(plane: &Dataplane) -> anyhow::Result<()> {
    println!(
        "interface {} (pins: {})",
        plane.iface(),
        plane.pin_dir().display()
    );
    let vips = plane.vips()?;
    println!("  VIPs ({}):", vips.len());
    for (vip, ownership) in &vips {
        println!("    {vip:<40} {ownership}");
    }
    let vrids = plane.vrids()?;
    println!("  VRIDs ({}):", vrids.len());
    for filter in &vrids {
        let (family, vrid) = (filter.family, filter.vrid);
        let stats = plane.vrid_stats(family, vrid)?;
        let list = match &filter.allowed {
            None => "any source".to_owned(),
            Some(list) => {
                let list: Vec<String> = list.iter().map(IpAddr::to_string).collect();
                format!("only from {}", list.join(", "))
            }
        };
        let family = if family == FAMILY_IPV6 {
            "IPv6"
        } else {
            "IPv4"
        };
        println!(
            "    vrid {vrid:<3} {family}  accepted {:<10} dropped {:<10} {list}",
            stats.accepted, stats.dropped
        );
    }
    let services = plane.services()?;
    if !services.is_empty() {
        println!(
            "  services ({}, {} flows remembered, {} new flows not remembered over flow_insert_rate):",
            services.len(),
            plane.flow_count()?,
            plane.flows_not_remembered()?
        );
        for (key, entry) in &services {
            let scheduler = match vipflip_common::Scheduler::from_u8(entry.scheduler) {
                Some(vipflip_common::Scheduler::Maglev) => "maglev",
                Some(vipflip_common::Scheduler::Wrr) => "wrr",
                Some(vipflip_common::Scheduler::SourceHash) => "sh",
                None => "unknown",
            };
            println!(
                "    {:<40} {scheduler:<6} table {}/{} len {}",
                dataplane::service_name(key),
                entry.index,
                entry.table,
                entry.len
            );
        }
    }
    let stats = plane.stats()?;
    println!("  counters:");
    for outcome in Outcome::ALL {
        let value = stats.outcome(outcome);
        if value != 0 {
            println!("    {:<22} {value}", outcome.name());
        }
    }
    for (name, action) in [
        ("verdict_pass", vipflip_common::XDP_PASS),
        ("verdict_drop", vipflip_common::XDP_DROP),
        ("verdict_tx", vipflip_common::XDP_TX),
        ("verdict_redirect", vipflip_common::XDP_REDIRECT),
        ("verdict_aborted", vipflip_common::XDP_ABORTED),
    ] {
        println!("    {name:<22} {}", stats.verdict(action));
    }
    // Adverts that never reached a configured VRID are counted per VRID too: show those
    // with traffic that no configured VRID explains (spoofing, a misconfigured peer).
    for family in [FAMILY_IPV4, FAMILY_IPV6] {
        for vrid in 1..=255u8 {
            if vrids.iter().any(|f| f.family == family && f.vrid == vrid) {
                continue;
            }
            let stats = plane.vrid_stats(family, vrid)?;
            if stats.dropped != 0 {
                let name = if family == FAMILY_IPV6 {
                    "IPv6"
                } else {
                    "IPv4"
                };
                println!(
                    "  unconfigured vrid {vrid} {name}: dropped {}",
                    stats.dropped
                );
            }
        }
    }
    Ok(())
}
