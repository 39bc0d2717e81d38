//! The Direct Routing load balancer as a client sees it: two directors running vipflip
//! (`VI_1`, VIP `192.0.2.100`), three real servers with the VIP on `lo` (`arp_ignore=1`,
//! `arp_announce=2`) answering clients directly, and a client on one bridge. Requests spread
//! by weight; a failed real server leaves within its check's interval × fall; long-lived
//! streams survive a director failover because both directors build the same Maglev table.
//! Needs root.

use std::time::Duration;

use vipflip_integration_tests::{
    lb::{self, HTTP_PORT, LbScene, Tools, now_us},
    root_serial,
};

const TOOLS: Tools = Tools {
    lb_probe: env!("CARGO_BIN_EXE_vipflip-lb-probe"),
    probe: env!("CARGO_BIN_EXE_vipflip-probe"),
};
/// The VIP of `VI_1` and of every virtual service.
const VIP: &str = "192.0.2.100";
/// Elections at start-up, checks to rise: generous, polled.
const SETTLE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// The topology without a director

/// The scene itself, before any load balancing: a client that sends VIP traffic straight to
/// a real server's MAC (a static neighbour entry) is answered by that real server, from the
/// VIP, and no real server answers ARP for the VIP.
#[test]
fn real_servers_accept_vip_traffic_but_never_answer_arp_for_it() {
    let Some(_serial) = root_serial("real_servers_accept_vip_traffic_but_never_answer_arp_for_it")
    else {
        return;
    };
    let scene = LbScene::new(TOOLS, 3, VIP);
    let client = &scene.lab.client;

    // Nobody answers ARP for the VIP: no director runs, and the real servers ignore it.
    assert!(
        !client.ns.ping_once(VIP),
        "something answered for {VIP} with no director running"
    );
    let neigh = client.ns.ip(&["neigh", "show", VIP]);
    let text = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        !text.contains("lladdr"),
        "a real server answered ARP for {VIP}: {text}"
    );

    // Frames for the VIP sent to rs2's MAC are rs2's.
    let mac = scene.real_host(1).ns.mac(&scene.real_host(1).iface);
    let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    client.ns.ip(&[
        "neigh",
        "replace",
        VIP,
        "lladdr",
        &mac.join(":"),
        "dev",
        &client.iface,
        "nud",
        "permanent",
    ]);
    let run = scene.http_load(VIP, &["--requests", "20", "--parallel", "2"]);
    assert_eq!(
        run.by_server().get("rs2").copied(),
        Some(20),
        "{}",
        run.summary()
    );
    let streams = scene.start_streams(VIP, 2, 200);
    assert!(
        streams.established.iter().all(|(_, s)| s == "rs2"),
        "{:?}",
        streams.established
    );
    let reports = streams.finish();
    assert!(
        reports.iter().all(|r| r.error == "-" && r.replies > 5),
        "{reports:?}"
    );
    // The health checks' path: each real server answers on its own address.
    for i in 0..3 {
        let run = scene.http_load(&scene.real_addr(i), &["--requests", "3"]);
        let name = format!("rs{}", i + 1);
        assert_eq!(
            run.by_server().get(&name).copied(),
            Some(3),
            "{}",
            run.summary()
        );
    }
    let _ = (HTTP_PORT, now_us(), lb::chi_square(&[1], &[1.0]));
}
