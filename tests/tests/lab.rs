//! The lab topology and the prober work on their own, before any VRRP runs on them.

use std::process::{Child, Stdio};

use vipflip_integration_tests::{Lab, root_or_skip};

const PROBE: &str = env!("CARGO_BIN_EXE_vipflip-probe");

/// A probe responder in a router namespace, killed on drop.
struct Responder(Child);

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn responder(lab: &Lab, router: usize, name: &str) -> Responder {
    let child = lab.routers[router]
        .ns
        .command(PROBE)
        .args(["serve", "--port", "7777", "--name", name])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn vipflip-probe serve");
    Responder(child)
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
fn every_host_reaches_every_other_and_the_prober_counts_answers() {
    if !root_or_skip("every_host_reaches_every_other_and_the_prober_counts_answers") {
        return;
    }
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
    let _r1 = responder(&lab, 0, "r1");
    // Let the responder bind before the first probe.
    std::thread::sleep(std::time::Duration::from_millis(200));
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
