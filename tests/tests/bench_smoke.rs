//! Keeps `cargo xtask bench failover` working: one short trial of each kind. Its figures mean
//! nothing (the benchmark proper runs ≥ 10 trials per cell); this only checks that every
//! scenario runs and the results file comes out whole. Needs root and keepalived.

use std::time::Duration;

use vipflip_integration_tests::{serial, wait_for};

#[test]
#[ignore = "needs root"]
fn failover_benchmark_smoke_run() {
    let _serial = serial();
    let out =
        std::env::temp_dir().join(format!("vipflip-failover-smoke-{}.md", std::process::id()));
    // Output goes to files and the run has a deadline: a pipe held open by a stray
    // grandchild, or a hung trial, must fail this test rather than hang `cargo xtask test`.
    let stdout_path = out.with_extension("stdout");
    let stderr_path = out.with_extension("stderr");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vipflip-bench-failover"))
        .args(["--smoke", "--out"])
        .arg(&out)
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("run vipflip-bench-failover");
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
    for needle in [
        "SMOKE RUN",
        "| 100ms | hard failure (link cut) |",
        "| 100ms | graceful (vipflip handoff / keepalived SIGTERM) |",
        "| 100ms | hard failure under load |",
        "| 100ms | graceful (vipflip SIGTERM) |",
        "| 1 instance(s) |",
        "## Raw trials",
    ] {
        assert!(md.contains(needle), "results file lacks {needle:?}:\n{md}");
    }
}
