//! Keeps `cargo xtask bench failover` and `cargo xtask bench scaleout` working: one short
//! trial of each kind. Their figures mean nothing (the benchmarks proper run several trials
//! per cell); this only checks that every scenario runs and the results file comes out
//! whole. Needs root, keepalived, FRR and BIRD.

use std::time::Duration;

use vipflip_integration_tests::{serial, wait_for};

/// Runs benchmark binary `bin` with `--smoke` under a 10-minute deadline and returns its
/// results file, checked to contain every one of `needles`.
fn smoke_run(bin: &str, name: &str, needles: &[&str]) {
    let out = std::env::temp_dir().join(format!("vipflip-{name}-smoke-{}.md", std::process::id()));
    // Output goes to files and the run has a deadline: a pipe held open by a stray
    // grandchild, or a hung trial, must fail this test rather than hang `cargo xtask test`.
    let stdout_path = out.with_extension("stdout");
    let stderr_path = out.with_extension("stderr");
    let mut child = std::process::Command::new(bin)
        .args(["--smoke", "--out"])
        .arg(&out)
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    let mut status = None;
    if !wait_for(Duration::from_mins(10), || {
        status = child.try_wait().expect("wait");
        status.is_some()
    }) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stdout_path);
    let _ = std::fs::remove_file(&stderr_path);
    let status = status.unwrap_or_else(|| {
        panic!("benchmark still running after 600 s, killed:\n{stdout}\n{stderr}")
    });
    assert!(status.success(), "benchmark failed:\n{stdout}\n{stderr}");
    let md = std::fs::read_to_string(&out).expect("results file");
    let _ = std::fs::remove_file(&out);
    for needle in needles {
        assert!(md.contains(needle), "results file lacks {needle:?}:\n{md}");
    }
}

#[test]
#[ignore = "needs root"]
fn failover_benchmark_smoke_run() {
    let _serial = serial();
    smoke_run(
        env!("CARGO_BIN_EXE_vipflip-bench-failover"),
        "failover",
        &[
            "SMOKE RUN",
            "| 100ms | hard failure (link cut) |",
            "| 100ms | graceful (vipflip handoff / keepalived SIGTERM) |",
            "| 100ms | hard failure under load |",
            "| 100ms | graceful (vipflip SIGTERM) |",
            "| 1 instance(s) |",
            "## Raw trials",
        ],
    );
}

#[test]
#[ignore = "needs root"]
fn scaleout_benchmark_smoke_run() {
    let _serial = serial();
    smoke_run(
        env!("CARGO_BIN_EXE_vipflip-bench-scaleout"),
        "scaleout",
        &[
            "SMOKE RUN",
            "| BGP ECMP: a director cut off, BFD 50 ms × 3 |",
            "| BGP ECMP: a director cut off, no BFD (hold time 9 s) |",
            "| BGP ECMP: `vipflip drain` of a director |",
            "| BGP ECMP: a director's agent killed (SIGKILL) |",
            "| VRRP pair: the master's link cut (100 ms adverts) |",
            "## Raw trials",
        ],
    );
}
