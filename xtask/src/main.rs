//! `cargo xtask <command>`: set-up, build, load, test, bench and fuzz vipflip.
//!
//! Every command but `setup` itself first runs the idempotent `setup`, so a fresh machine
//! needs nothing but `cargo xtask test` (or any other command).

mod bench;
mod setup;
mod tests;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// A live namespace lab: routers running vipflip, a client probing the VIP; kill, cut,
    /// restore and hand over from the keyboard (as root).
    Lab {
        /// 2 or 3 routers.
        #[arg(long, default_value_t = 2)]
        routers: u8,
        /// Run keepalived on r1 instead of vipflip: a mixed group.
        #[arg(long)]
        keepalived: bool,
        /// Active-active directors behind BGP ECMP instead: an FRR edge, three directors
        /// (FRR, BIRD, BIRD), real servers, a client making new connections.
        #[arg(long, conflicts_with_all = ["keepalived", "routers", "interval"])]
        bgp: bool,
        /// Advert interval of every router ("1s", "100ms", …).
        #[arg(long, default_value = "1s")]
        interval: String,
        /// Commands instead of the keyboard: "wait 3; cut; wait 5; restore; quit".
        #[arg(long)]
        script: Option<String>,
        /// Remove a lab (and whatever a crashed run left) and exit.
        #[arg(long)]
        down: bool,
    },
    /// Install what this machine lacks (Debian packages, bpf-linker, rust-src); idempotent.
    Setup,
    /// Build every crate, the XDP program included (release).
    Build,
    /// Build, then load, attach and pin the XDP program on an interface (as root).
    BuildAndLoad {
        /// The interface to attach to.
        #[arg(long)]
        iface: String,
        /// auto tries native (driver) XDP first, then generic (skb).
        #[arg(long, value_enum, default_value_t = XdpMode::Auto)]
        xdp_mode: XdpMode,
        /// Root of the pins (the interface's pins go in `<pin-dir>/<iface>/`).
        #[arg(long, default_value = "/sys/fs/bpf/vipflip")]
        pin_dir: PathBuf,
    },
    /// Every check and test: fmt, clippy (eBPF crate included), unit, kernel and namespace tests.
    /// As root every test runs and any skip fails the run; without root the tests that need it
    /// are counted first and the run stops unless `--allow-skips`.
    Test {
        /// Without root: run what can run and report the rest as skipped (exit 0 if it passes).
        #[arg(long)]
        allow_skips: bool,
    },
    /// Benchmarks; each writes its table to bench/results/.
    Bench {
        #[arg(value_enum)]
        which: BenchKind,
    },
    /// Run the fuzz target and the long randomised election simulation (not part of `test`).
    Fuzz {
        /// How long to fuzz the advert parser.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// How many seeded random simulations to run.
        #[arg(long, default_value_t = 20_000)]
        sim_runs: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum XdpMode {
    Auto,
    Driver,
    Skb,
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchKind {
    /// XDP per-packet cost of each path (`BPF_PROG_TEST_RUN`) and the userspace owner flip.
    Xdp,
    /// Failover as a client sees it, vipflip next to keepalived, on the lab topology.
    Failover,
    /// Active-active directors behind BGP ECMP (FRR edge, FRR and BIRD directors): a cut
    /// with and without BFD, a drain, a killed agent, next to a VRRP pair's failover.
    Scaleout,
    /// Load balancing: the service path per packet, forwarding through a director on veth
    /// next to the kernel's, and the table rebuild for 1,000 real servers.
    Lb,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Task::Setup => setup::run(),
        Task::Lab {
            routers,
            keepalived,
            bgp,
            interval,
            script,
            down,
        } => {
            setup::run()?;
            let mut args = if bgp {
                Vec::new()
            } else {
                vec![
                    "--routers".to_owned(),
                    routers.to_string(),
                    "--interval".to_owned(),
                    interval,
                ]
            };
            if keepalived {
                args.push("--keepalived".into());
            }
            if down {
                args.push("--down".into());
            }
            if let Some(script) = script {
                args.push("--script".into());
                args.push(script);
            }
            lab(
                &root,
                if bgp {
                    "vipflip-lab-bgp"
                } else {
                    "vipflip-lab"
                },
                &args,
            )
        }
        Task::Build => {
            setup::run()?;
            build(&root)
        }
        Task::BuildAndLoad {
            iface,
            xdp_mode,
            pin_dir,
        } => {
            setup::run()?;
            build_and_load(&root, &iface, xdp_mode, &pin_dir)
        }
        Task::Test { allow_skips } => {
            setup::run()?;
            test(&root, allow_skips)
        }
        Task::Bench {
            which: BenchKind::Xdp,
        } => {
            setup::run()?;
            bench::xdp(&root)
        }
        Task::Bench {
            which: BenchKind::Failover,
        } => {
            setup::run()?;
            bench::failover(&root)
        }
        Task::Bench {
            which: BenchKind::Scaleout,
        } => {
            setup::run()?;
            bench::scaleout(&root)
        }
        Task::Bench {
            which: BenchKind::Lb,
        } => {
            setup::run()?;
            bench::lb(&root)
        }
        Task::Fuzz { seconds, sim_runs } => {
            setup::run()?;
            setup::ensure_cargo_fuzz()?;
            fuzz(&root, seconds, sim_runs)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Runs a command in the workspace, echoing it, and fails with its exit status.
pub fn run(root: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<()> {
    println!("+ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Builds the binaries and runs the live lab `name` with `args`.
fn lab(root: &Path, name: &str, args: &[String]) -> anyhow::Result<()> {
    if !setup::is_root() {
        bail!("the lab makes network namespaces and loads XDP programs: run it as root");
    }
    run(
        root,
        "cargo",
        &[
            "build",
            "--package",
            "vipflip",
            "--package",
            "vipflip-integration-tests",
            "--bins",
        ],
        &[],
    )?;
    let bin = target_dir(root).join("debug");
    let vipflip = bin.join("vipflip");
    let vipflip = vipflip.to_str().context("target path is not UTF-8")?;
    let lab = bin.join(name);
    let status = Command::new(&lab)
        .args(args)
        .env("VIPFLIP_BIN", vipflip)
        .current_dir(root)
        .status()
        .with_context(|| format!("running {}", lab.display()))?;
    if !status.success() {
        bail!("the lab failed ({status})");
    }
    Ok(())
}

fn build(root: &Path) -> anyhow::Result<()> {
    run(root, "cargo", &["build", "--workspace", "--release"], &[])
}

fn build_and_load(root: &Path, iface: &str, mode: XdpMode, pin_dir: &Path) -> anyhow::Result<()> {
    if !setup::is_root() {
        bail!(
            "build-and-load attaches an XDP program: run it as root (sudo -E cargo xtask build-and-load …)"
        );
    }
    run(
        root,
        "cargo",
        &["build", "--package", "vipflip", "--release"],
        &[],
    )?;
    let mode = match mode {
        XdpMode::Auto => "auto",
        XdpMode::Driver => "driver",
        XdpMode::Skb => "skb",
    };
    let bin = target_dir(root).join("release").join("vipflip");
    let pin_dir = pin_dir
        .to_str()
        .context("the pin directory must be valid UTF-8")?;
    // `vipflip load` mounts a bpffs where the pins go when there is none (vipflip-bpffs).
    run(
        root,
        bin.to_str().context("target path is not UTF-8")?,
        &[
            "load",
            "--iface",
            iface,
            "--xdp-mode",
            mode,
            "--pin-dir",
            pin_dir,
        ],
        &[],
    )?;
    println!();
    println!("Inspect it with:");
    for map in [
        "VIPS",
        "VRIDS",
        "PEERS",
        "STATS",
        "VRID_STATS",
        "VIP_FILTER",
        "SERVICES",
        "REALS",
        "FLOWS",
    ] {
        println!("  bpftool map dump pinned {pin_dir}/{iface}/{map}");
    }
    println!("  bpftool prog show pinned {pin_dir}/{iface}/prog");
    println!(
        "  {} maps --iface {iface} --pin-dir {pin_dir}",
        bin.display()
    );
    println!("Remove it with:");
    println!(
        "  {} unload --iface {iface} --pin-dir {pin_dir}",
        bin.display()
    );
    Ok(())
}

fn test(root: &Path, allow_skips: bool) -> anyhow::Result<()> {
    let as_root = setup::is_root();
    let needs_root = if as_root {
        None
    } else {
        // Say it before anything runs: a skipped test must never read as a pass.
        let needs_root = tests::count_needing_root(root)?;
        println!(
            "{} tests and {} benchmark smoke runs need root (network namespaces, XDP, \
             BPF_PROG_TEST_RUN); as this user they would be skipped",
            needs_root.tests, needs_root.benches
        );
        if !allow_skips {
            bail!("run `cargo xtask test` as root, or pass --allow-skips to run only the rest");
        }
        Some(needs_root)
    };
    run(root, "cargo", &["fmt", "--all", "--check"], &[])?;
    run(
        root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    // On the host the eBPF crate compiles to an empty shell; lint it for the BPF target too.
    run(
        root,
        "cargo",
        &[
            "+nightly",
            "clippy",
            "--package",
            "vipflip-ebpf",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--target-dir",
            "target/bpf-clippy",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    let totals = match needs_root {
        // --all-targets also runs the benchmarks once in their quick smoke mode; the tests
        // that need root are `#[ignore = "needs root"]`, so root includes them.
        None => tests::run(
            root,
            &["--workspace", "--all-targets", "--", "--include-ignored"],
        )?,
        // Without root: everything but the benchmarks, which need root throughout.
        Some(needs_root) => {
            let mut totals = tests::run(root, &["--workspace", "--lib", "--bins", "--tests"])?;
            totals.skipped += needs_root.benches;
            totals
        }
    };
    println!("{totals}");
    if as_root && totals.skipped > 0 {
        bail!(
            "{} tests were skipped although this run has root: every test must run",
            totals.skipped
        );
    }
    Ok(())
}

fn fuzz(root: &Path, seconds: u64, sim_runs: u64) -> anyhow::Result<()> {
    let runs = sim_runs.to_string();
    run(
        root,
        "cargo",
        &[
            "test",
            "--package",
            "vipflip-vrrp",
            "--release",
            "--lib",
            "random",
            "--",
            "--nocapture",
        ],
        &[("VIPFLIP_SIM_RUNS", &runs)],
    )?;
    let time = format!("-max_total_time={seconds}");
    run(
        &root.join("agent/fuzz"),
        "cargo",
        &["+nightly", "fuzz", "run", "vrrp_advert", "--", &time],
        &[],
    )
}

pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}
