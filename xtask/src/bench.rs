//! `cargo xtask bench …`: runs a benchmark binary and writes its table with the machine it ran
//! on to `bench/results/`.

use std::{fmt::Write as _, path::Path, process::Command};

use anyhow::{Context as _, bail};

pub fn xdp(root: &Path) -> anyhow::Result<()> {
    if !crate::setup::is_root() {
        bail!("bench xdp runs BPF_PROG_TEST_RUN: run it as root");
    }
    let args = ["bench", "--package", "vipflip", "--bench", "xdp"];
    println!("+ cargo {}", args.join(" "));
    let out = Command::new("cargo")
        .args(args)
        .current_dir(root)
        .output()
        .context("running cargo bench")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        bail!("the xdp benchmark failed ({})", out.status);
    }
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("xdp ") || l.starts_with("flip "))
        .collect();
    if lines.is_empty() {
        bail!("the xdp benchmark printed no results");
    }
    let mut md = String::from("# XDP benchmark\n\n");
    md.push_str("Per-packet cost of each path of the `vipflip` XDP program, measured with\n");
    md.push_str(
        "`BPF_PROG_TEST_RUN` (kernel-reported mean over the repeats; median of the rounds),\n",
    );
    md.push_str("next to the minimal `pass` program (`XDP_PASS` only) measured in the same run;\n");
    md.push_str("and the owner flip: one `VIPS` update from userspace (`Dataplane::set_vip`).\n\n");
    writeln!(md, "- command: `cargo xtask bench xdp`")?;
    writeln!(
        md,
        "- date: {}",
        capture("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])
    )?;
    writeln!(md, "- kernel: {}", capture("uname", &["-srm"]))?;
    writeln!(
        md,
        "- cpu: {} ({} cores)",
        cpu_model(),
        capture("nproc", &[])
    )?;
    writeln!(md, "- rustc: {}", capture("rustc", &["--version"]))?;
    md.push_str("\n```\n");
    for line in &lines {
        md.push_str(line);
        md.push('\n');
    }
    md.push_str("```\n");
    let dir = root.join("bench/results");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("xdp.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn capture(program: &str, args: &[&str]) -> String {
    Command::new(program).args(args).output().map_or_else(
        |e| format!("({program} failed: {e})"),
        |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `cargo xtask bench failover`: builds the agents and the lab tools, then runs the
/// side-by-side benchmark, which writes `bench/results/failover.md` itself.
pub fn failover(root: &Path) -> anyhow::Result<()> {
    if !crate::setup::is_root() {
        bail!("bench failover builds network namespaces: run it as root");
    }
    crate::run(
        root,
        "cargo",
        &[
            "build",
            "--release",
            "--package",
            "vipflip",
            "--package",
            "vipflip-integration-tests",
            "--bins",
        ],
        &[],
    )?;
    let bin = crate::target_dir(root).join("release");
    let vipflip = bin.join("vipflip");
    let out = root.join("bench/results/failover.md");
    crate::run(
        root,
        bin.join("vipflip-bench-failover")
            .to_str()
            .context("target path is not UTF-8")?,
        &["--out", out.to_str().context("path is not UTF-8")?],
        &[(
            "VIPFLIP_BIN",
            vipflip.to_str().context("target path is not UTF-8")?,
        )],
    )
}
