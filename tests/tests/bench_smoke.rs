//! Keeps `cargo xtask bench failover` working: one short trial of each kind. Its figures mean
//! nothing (the benchmark proper runs ≥ 10 trials per cell); this only checks that every
//! scenario runs and the results file comes out whole. Needs root and keepalived.

use vipflip_integration_tests::{root_or_skip, serial};

#[test]
fn failover_benchmark_smoke_run() {
    if !root_or_skip("failover_benchmark_smoke_run") {
        return;
    }
    let _serial = serial();
    let out =
        std::env::temp_dir().join(format!("vipflip-failover-smoke-{}.md", std::process::id()));
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_vipflip-bench-failover"))
        .args(["--smoke", "--out"])
        .arg(&out)
        .output()
        .expect("run vipflip-bench-failover");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "benchmark failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
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
