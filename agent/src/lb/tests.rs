//! The balancer as the daemon drives it: `[[virtual_server]]`s mapped to its configuration,
//! its services mirrored in the metrics.

use std::collections::BTreeMap;
use std::net::IpAddr;

use vipflip_common::{IPPROTO_TCP, IPPROTO_UDP, Scheduler, ServiceKey, VipKey};

use super::balancer::{Balancer, Link};
use super::{RealConfig, ServiceConfig};
use crate::config::Config;

/// `VI_1` on eth0 (IPv4) and `VI_6` on eth1 (IPv6), then `services`.
fn config(services: &str) -> Config {
    let text = format!(
        r#"
        [[instance]]
        name = "VI_1"
        interface = "eth0"
        vrid = 51
        virtual_ips = ["192.0.2.100/24"]
        [[instance]]
        name = "VI_6"
        interface = "eth1"
        vrid = 52
        virtual_ips = ["2001:db8::100/64"]
        {services}
        "#
    );
    Config::parse(&text, "test.toml").expect("config").0
}

const WEB: &str = r#"
    [[virtual_server]]
    name = "web"
    vip = "192.0.2.100"
    port = 80
    instance = "VI_1"
    quorum = 2
    quorum_weight = -50
    sorry_server = "192.0.2.30"
    [[virtual_server.real_server]]
    address = "192.0.2.21"
    check = { kind = "tcp" }
    [[virtual_server.real_server]]
    address = "192.0.2.22"
    weight = 0
    check = { kind = "tcp" }
    [[virtual_server.real_server]]
    address = "192.0.2.23"
    weight = 3
"#;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, last])
}

#[test]
fn a_virtual_server_maps_to_what_the_balancer_needs() {
    let dns = r#"
        [[virtual_server]]
        name = "dns6"
        vip = "2001:db8::100"
        port = 0
        protocol = "udp"
        scheduler = "sh"
        instance = "VI_6"
        real_server = [{ address = "2001:db8::21" }]
    "#;
    let config = config(&format!("{WEB}{dns}"));
    let services = config.balancer_config();
    assert_eq!(
        services[0],
        ServiceConfig {
            name: "web".into(),
            interface: "eth0".into(),
            key: ServiceKey::new(VipKey::ipv4([192, 0, 2, 100]), IPPROTO_TCP, 80),
            scheduler: Scheduler::Maglev,
            quorum: 2,
            reals: vec![
                RealConfig {
                    address: ip(21),
                    weight: 1,
                    checked: true
                },
                RealConfig {
                    address: ip(22),
                    weight: 0,
                    checked: true
                },
                RealConfig {
                    address: ip(23),
                    weight: 3,
                    checked: false
                },
            ],
            sorry_server: Some(ip(30)),
        }
    );
    let v6: IpAddr = "2001:db8::100".parse().unwrap();
    assert_eq!(
        (
            &services[1].interface[..],
            services[1].key,
            services[1].scheduler
        ),
        (
            "eth1",
            ServiceKey::new(VipKey::from_ip(v6), IPPROTO_UDP, 0),
            Scheduler::SourceHash
        )
    );
    // An instance the balancer is not told of: the service is left out, as before a table.
    assert_eq!(
        config.virtual_servers[0].balancer_config(&config.instances[1..]),
        None
    );
}

#[test]
fn metrics_mirror_health_shares_and_quorum() {
    let config = config(WEB);
    let mut lb = Balancer::new(1000);
    lb.configure(&config.balancer_config(), &BTreeMap::new())
        .expect("slots");
    lb.link(
        "eth0",
        Link {
            ifindex: 7,
            mac: [2, 0, 0, 0, 0, 1],
        },
    );
    for (iface, address) in lb.neighbours() {
        lb.neighbour(&iface, address, Some([2, 0, 0, 0, 1, 1]));
    }
    lb.health("web", ip(21), false, "refused");
    let mut metrics = crate::metrics::Metrics::new();
    metrics.set_virtual_servers(lb.services());
    let text = metrics.render();
    for line in [
        r#"vipflip_real_server_up{virtual_server="web",address="192.0.2.21"} 0"#,
        r#"vipflip_real_server_up{virtual_server="web",address="192.0.2.22"} 1"#,
        r#"vipflip_real_server_table_slots{virtual_server="web",address="192.0.2.21"} 0"#,
        r#"vipflip_real_server_table_slots{virtual_server="web",address="192.0.2.22"} 0"#,
        r#"vipflip_real_server_table_slots{virtual_server="web",address="192.0.2.23"} 65537"#,
        r#"vipflip_virtual_server_healthy{virtual_server="web"} 1"#,
        r#"vipflip_virtual_server_quorum_met{virtual_server="web"} 0"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
    // A reload that removes the service removes its series.
    lb.configure(&[], &BTreeMap::new()).expect("slots");
    metrics.set_virtual_servers(lb.services());
    assert!(!metrics.render().contains("virtual_server=\"web\""));
}
