//! The configurations the cores take, as the file makes them: the tracking state's
//! `TrackConfig` and the balancer's `ServiceConfig`s (the VRRP core's `InstanceConfig` is
//! checked with the example file).

use std::net::IpAddr;

use vipflip_common::{IPPROTO_TCP, IPPROTO_UDP, Scheduler, ServiceKey, VipKey};

use super::{REAL, accepted, service};
use crate::config::{LbProtocol, LbScheduler, TrackFile, TrackInterface, TrackScript, Weight};
use crate::lb::{RealConfig, ServiceConfig};
use crate::track::{TrackConfig, Tracked, TrackerConfig};
use crate::wire::Priority;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, last])
}

/// The numbers of `FaultCause::Tracked` are the positions in `TrackConfig::trackers`:
/// interfaces, then scripts, files and quorums, whatever order they were written in.
#[test]
fn track_config_numbers_interfaces_then_scripts_files_and_quorums() {
    let mut config = accepted(&service("quorum_weight = -50\n", REAL));
    let spec = &mut config.instances[0];
    spec.track_files = vec![TrackFile {
        path: "/run/prio".into(),
        weight: Weight(2),
    }];
    spec.track_scripts = vec![TrackScript {
        name: "chk".into(),
        weight: Weight(0),
    }];
    spec.track_interfaces = ["eth1", "eth2"]
        .into_iter()
        .zip([-10, 5])
        .map(|(name, weight)| TrackInterface {
            name: name.into(),
            weight: Weight(weight),
        })
        .collect();
    let tracker = |what, weight| TrackerConfig { what, weight };
    assert_eq!(
        spec.track_config(),
        TrackConfig {
            instance: "VI_1".into(),
            interface: "eth0".into(),
            priority: Priority(100),
            trackers: vec![
                tracker(Tracked::Interface("eth1".into()), -10),
                tracker(Tracked::Interface("eth2".into()), 5),
                tracker(Tracked::Script("chk".into()), 0),
                tracker(Tracked::File("/run/prio".into()), 2),
                tracker(Tracked::Quorum("web".into()), -50),
            ],
        }
    );
}

#[test]
fn balancer_config_has_what_the_balancer_needs() {
    let reals = "[[virtual_server.real_server]]\naddress = \"192.0.2.21\"\ncheck = { kind = \"tcp\" }\n\
        [[virtual_server.real_server]]\naddress = \"192.0.2.22\"\nweight = 0\ncheck = { kind = \"tcp\" }\n\
        [[virtual_server.real_server]]\naddress = \"192.0.2.23\"\nweight = 3\n";
    let config = accepted(&service(
        "quorum = 2\nsorry_server = \"192.0.2.30\"\n",
        reals,
    ));
    let real = |last, weight, checked| RealConfig {
        address: ip(last),
        weight,
        checked,
    };
    assert_eq!(
        config.balancer_config(),
        [ServiceConfig {
            name: "web".into(),
            interface: "eth0".into(),
            key: ServiceKey::new(VipKey::ipv4([192, 0, 2, 100]), IPPROTO_TCP, 80),
            scheduler: Scheduler::Maglev,
            quorum: 2,
            reals: vec![real(21, 1, true), real(22, 0, true), real(23, 3, false)],
            sorry_server: Some(ip(30)),
            forward: crate::lb::Forward::Direct,
        }]
    );
    let mut dns = config.virtual_servers[0].clone();
    dns.vip = "2001:db8::100".parse().unwrap();
    (dns.port, dns.protocol) = (0, LbProtocol::Udp);
    for (scheduler, want) in [
        (LbScheduler::Sh, Scheduler::SourceHash),
        (LbScheduler::Wrr, Scheduler::Wrr),
    ] {
        dns.scheduler = scheduler;
        let mapped = dns
            .balancer_config(&config.instances)
            .expect("VI_1 is there");
        assert_eq!(
            (mapped.key, mapped.scheduler),
            (
                ServiceKey::new(VipKey::from_ip(dns.vip), IPPROTO_UDP, 0),
                want
            )
        );
    }
    // Its instance is not there: the balancer is not told of it.
    assert_eq!(dns.balancer_config(&[]), None);
}
