//! `cargo xtask setup`: installs only what is missing, saying what it does. Idempotent.

use std::process::Command;

use anyhow::{Context as _, bail};

/// Debian packages the build and the tests need.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    (
        "llvm-22-dev",
        "bpf-linker links against LLVM 22, the LLVM of the nightly used for eBPF",
    ),
    (
        "libpolly-22-dev",
        "LLVM 22's static libraries reference Polly",
    ),
    ("libzstd-dev", "needed to link bpf-linker against LLVM"),
    ("zlib1g-dev", "needed to link bpf-linker against LLVM"),
    ("bpftool", "inspecting the pinned maps"),
    (
        "iproute2",
        "network namespaces and veth for the integration tests",
    ),
    ("iputils-ping", "traffic in the namespace tests"),
    ("tcpdump", "captures in the lab and interop tests"),
    ("ethtool", "the lab turns checksum offload off on its veths"),
    ("keepalived", "the interop tests run it as a real VRRP peer"),
    (
        "frr",
        "the interop tests run FRR's vrrpd as a real VRRP peer; the routing tests run \
         zebra, bgpd and bfdd as the edge router and as directors announcing VIPs",
    ),
    (
        "bird2",
        "the routing tests run BIRD 2 as a director announcing VIPs over BGP (bird, birdc)",
    ),
    (
        "systemd",
        "systemd-analyze verify checks packaging/vipflip.service",
    ),
];

/// The nightly that aya-build compiles the eBPF crate with. Its LLVM must be the one
/// bpf-linker is built against (22): a nightly on LLVM 23 would emit bitcode it cannot read.
const NIGHTLY: &str = "nightly";
const LLVM_MAJOR: &str = "22";
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn run() -> anyhow::Result<()> {
    debian_packages()?;
    rust_components()?;
    bpf_linker()?;
    Ok(())
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn debian_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .filter(|(name, _)| !debian_installed(name))
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    for (name, why) in DEBIAN_PACKAGES.iter().filter(|(n, _)| missing.contains(n)) {
        println!("setup: installing {name} ({why})");
    }
    if !is_root() {
        bail!(
            "setup: these Debian packages are missing and installing them needs root: {}",
            missing.join(" ")
        );
    }
    let noninteractive = [("DEBIAN_FRONTEND", "noninteractive")];
    step("apt-get", &["update", "-qq"], &noninteractive)?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    step("apt-get", &args, &noninteractive)
}

fn debian_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.ends_with(b"install ok installed"))
}

fn rust_components() -> anyhow::Result<()> {
    let toolchains = output("rustup", &["toolchain", "list"])?;
    if !toolchains.lines().any(|l| l.starts_with(NIGHTLY)) {
        bail!(
            "setup: the `{NIGHTLY}` toolchain is missing; the eBPF crate needs a nightly whose \
             LLVM is {LLVM_MAJOR} (`rustup toolchain install nightly` when that is still true)"
        );
    }
    let version = output("rustc", &[&format!("+{NIGHTLY}"), "-vV"])?;
    let llvm = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .unwrap_or("unknown");
    if !llvm.starts_with(&format!("{LLVM_MAJOR}.")) {
        bail!("setup: `{NIGHTLY}` uses LLVM {llvm}, but bpf-linker is built for LLVM {LLVM_MAJOR}");
    }
    for (toolchain, component) in [
        (NIGHTLY, "rust-src"),
        ("stable", "clippy"),
        ("stable", "rustfmt"),
    ] {
        let installed = output(
            "rustup",
            &["component", "list", "--installed", "--toolchain", toolchain],
        )?;
        if !installed.lines().any(|l| l.starts_with(component)) {
            println!("setup: adding {component} to {toolchain}");
            step(
                "rustup",
                &["component", "add", component, "--toolchain", toolchain],
                &[],
            )?;
        }
    }
    Ok(())
}

fn bpf_linker() -> anyhow::Result<()> {
    if Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    println!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against /usr/lib/llvm-{LLVM_MAJOR} (a few minutes)"
    );
    let prefix = format!("/usr/lib/llvm-{LLVM_MAJOR}");
    let feature = format!("llvm-{LLVM_MAJOR}");
    step(
        "cargo",
        &[
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--no-default-features",
            "--features",
            &feature,
        ],
        &[("LLVM_PREFIX", &prefix)],
    )
}

/// `cargo fuzz` for `cargo xtask fuzz` only.
pub fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    if Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    println!("setup: installing cargo-fuzz (for `cargo xtask fuzz`)");
    step("cargo", &["install", "cargo-fuzz", "--locked"], &[])
}

fn step(program: &str, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<()> {
    println!("setup: + {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("setup: `{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn output(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
