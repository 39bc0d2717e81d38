//! The balancer's services as the daemon reports them: mirrored in the metrics.

use std::collections::BTreeMap;
use std::net::IpAddr;

use vipflip_common::{IPPROTO_TCP, Scheduler, ServiceKey, VipKey};

use super::balancer::{Balancer, Link};
use super::{RealConfig, ServiceConfig};

fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, last])
}

#[test]
fn metrics_mirror_health_shares_and_quorum() {
    let web = ServiceConfig {
        name: "web".into(),
        interface: "eth0".into(),
        key: ServiceKey::new(VipKey::from_ip(ip(100)), IPPROTO_TCP, 80),
        scheduler: Scheduler::Maglev,
        quorum: 2,
        reals: [21, 22]
            .into_iter()
            .map(|last| RealConfig {
                address: ip(last),
                weight: 1,
                checked: true,
            })
            .collect(),
        sorry_server: None,
        forward: crate::lb::Forward::Direct,
    };
    let mut lb = Balancer::new(1000);
    lb.configure(&[web], &BTreeMap::new()).expect("slots");
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
    lb.health("web", ip(22), false, "refused");
    let mut metrics = crate::metrics::Metrics::new();
    metrics.set_virtual_servers(lb.services());
    let text = metrics.render();
    for line in [
        r#"vipflip_real_server_up{virtual_server="web",address="192.0.2.21"} 1"#,
        r#"vipflip_real_server_up{virtual_server="web",address="192.0.2.22"} 0"#,
        r#"vipflip_real_server_table_slots{virtual_server="web",address="192.0.2.21"} 65537"#,
        r#"vipflip_real_server_table_slots{virtual_server="web",address="192.0.2.22"} 0"#,
        r#"vipflip_virtual_server_healthy{virtual_server="web"} 1"#,
        r#"vipflip_virtual_server_quorum_met{virtual_server="web"} 0"#,
        r#"vipflip_virtual_server_forward{virtual_server="web",forward="dr"} 1"#,
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
