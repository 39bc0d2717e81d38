//! The lab topology and the prober work on their own, before any VRRP runs on them.

use vipflip_integration_tests::{KillOnDrop, Lab, scene::Prober};

const PROBE: &str = env!("CARGO_BIN_EXE_vipflip-probe");

fn responder(lab: &Lab, router: usize, name: &str) -> KillOnDrop {
    Prober(PROBE).serve(&lab.routers[router].ns, name)
}

fn probe(lab: &Lab, target: &str, duration_ms: u32) -> String {
    let out: std::process::Output = lab
        .client
        .ns
        .command(PROBE)
        .args([
            "probe",
            "--target",
            target,
            "--port",
            "7777",
            "--interval-us",
            "1000",
        ])
        .args(["--duration-ms", &duration_ms.to_string()])
        .output()
        .expect("run vipflip-probe probe");
    assert!(
        out.status.success(),
        "probe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
#[ignore = "needs root"]
fn every_host_reaches_every_other_and_the_prober_counts_answers() {
    let lab = Lab::new(2);
    for router in &lab.routers {
        assert!(
            router.ns.ping_once(&lab.client.ipv4.to_string()),
            "{} cannot reach the client",
            router.iface
        );
        assert!(
            lab.client.ns.ping_once(&router.ipv6.to_string()),
            "the client cannot reach {} over IPv6",
            router.ipv6
        );
    }
    // Bound when this returns: it says so once its socket is.
    let _r1 = responder(&lab, 0, "r1");
    let summary = probe(&lab, &lab.routers[0].ipv4.to_string(), 300);
    assert_eq!(
        summary,
        r#"{"sent":300,"received":300,"lost":0,"longest_outage_us":0,"by_router":{"r1":300}}"#
    );
    // Nobody answers on router 2: every probe is lost, and the outage spans the whole run.
    let summary = probe(&lab, &lab.routers[1].ipv4.to_string(), 100);
    assert_eq!(
        summary,
        r#"{"sent":100,"received":0,"lost":100,"longest_outage_us":101000,"by_router":{}}"#
    );
}

const LAB: &str = env!("CARGO_BIN_EXE_vipflip-lab");

fn run_lab(args: &[&str]) -> String {
    let out = std::process::Command::new(LAB)
        .args(args)
        .output()
        .expect("run vipflip-lab");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "vipflip-lab failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn namespaces(prefix: &str) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "needs root"]
fn the_lab_runs_a_scripted_failover_and_handoff_then_cleans_up() {
    let _serial = vipflip_integration_tests::serial();
    let text = run_lab(&[
        "--prefix",
        "vflabt",
        "--interval",
        "100ms",
        "--script",
        "wait 3; cut; wait 2; restore; wait 2; handoff; wait 2; quit",
    ]);
    assert!(text.contains("cut r1's link"), "{text}");
    assert!(text.contains("r1's link up"), "{text}");
    assert!(text.contains("r1: instance VI_1: handing off"), "{text}");
    // r2 served while r1's link was cut, and r2 holds the VIP after the handoff.
    assert!(text.contains("r2     vipflip    Master"), "{text}");
    assert!(text.contains("lab vflabt removed"), "{text}");
    assert!(
        namespaces("vflabt").is_empty(),
        "namespaces left: {:?}",
        namespaces("vflabt")
    );
}

#[test]
#[ignore = "needs root"]
fn the_lab_mixes_keepalived_and_vipflip() {
    let _serial = vipflip_integration_tests::serial();
    let text = run_lab(&[
        "--prefix",
        "vflabk",
        "--keepalived",
        "--interval",
        "100ms",
        "--script",
        "wait 4; cut; wait 3; quit",
    ]);
    assert!(
        text.contains("r1     keepalived Master"),
        "keepalived never mastered: {text}"
    );
    assert!(text.contains("cut r1's link"), "{text}");
    assert!(
        text.contains("r2     vipflip    Master"),
        "vipflip never took over: {text}"
    );
    assert!(namespaces("vflabk").is_empty());
}

#[test]
#[ignore = "needs root"]
fn down_removes_what_a_crashed_lab_left() {
    // What a crash leaves: namespaces under the prefix.
    for name in ["vflabd-sw", "vflabd-r1"] {
        let status = std::process::Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let text = run_lab(&["--prefix", "vflabd", "--down"]);
    assert!(text.contains("lab vflabd removed"), "{text}");
    assert!(
        namespaces("vflabd").is_empty(),
        "left: {:?}",
        namespaces("vflabd")
    );
}

const LAB_BGP: &str = env!("CARGO_BIN_EXE_vipflip-lab-bgp");

/// The BGP lab (`cargo xtask lab --bgp`) scripted: the client is served through both
/// directors, then d3 joins, d1 drains and leaves the edge's next hops, and every namespace
/// goes at the end.
#[test]
#[ignore = "needs root"]
fn the_bgp_lab_adds_a_director_and_drains_one_then_cleans_up() {
    let _serial = vipflip_integration_tests::serial();
    let out = std::process::Command::new(LAB_BGP)
        .args([
            "--prefix",
            "vfbgpt",
            "--script",
            "wait 2; add; wait 9; drain; wait 4; quit",
        ])
        .output()
        .expect("run vipflip-lab-bgp");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "vipflip-lab-bgp failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("edge next hops: 192.0.2.11, 192.0.2.12, 192.0.2.13"),
        "d3 never joined the edge's next hops:\n{text}"
    );
    assert!(text.contains("d3 added"), "{text}");
    assert!(text.contains("d1 drains"), "{text}");
    assert!(
        text.contains("edge next hops: 192.0.2.12, 192.0.2.13"),
        "d1 never left the edge's next hops:\n{text}"
    );
    assert!(text.contains("client: answered by rs1"), "{text}");
    assert!(text.contains("lab vfbgpt removed"), "{text}");
    assert!(
        namespaces("vfbgpt").is_empty(),
        "namespaces left: {:?}",
        namespaces("vfbgpt")
    );
}
