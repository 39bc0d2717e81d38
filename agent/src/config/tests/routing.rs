//! `[routing]` and `[[announce]]`: what is read, and every refusal with its message.

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr};

use super::{accepted, instance, parse, refused, service};
use crate::config::{
    AnnounceGate, AnnounceSpec, BfdSpec, BgpNeighbor, BgpSpec, RoutingSpec, ServiceHome,
};

/// The instance of [`instance`] (VIP 192.0.2.100) with a virtual server "web" on its VIP,
/// then `rest` from line 12 on.
fn with_service(rest: &str) -> String {
    format!(
        "{}[[virtual_server.real_server]]\naddress = \"192.0.2.21\"\n{rest}",
        service("", "")
    )
}

#[test]
fn routing_defaults_when_absent() {
    let config = accepted(&instance(""));
    assert_eq!(config.routing, RoutingSpec::default());
    assert_eq!(config.routing.table, 200);
    assert_eq!(config.routing.protocol, 250);
    assert_eq!(config.routing.drain_quiet, Duration::from_secs(5));
    assert!(config.announces.is_empty());
}

#[test]
fn routing_and_every_gate_are_read() {
    let config = accepted(&with_service(
        r#"[routing]
table = 300
protocol = 251
drain_quiet = "2s"
bgp = { asn = 65001, router_id = "192.0.2.11", neighbors = [{ address = "192.0.2.1", asn = 65000 }], bfd = { interval = "50ms", multiplier = 3 }, hold_time = "9s" }

[[announce]]
vip = "192.0.2.100"
when = "quorum"
"#,
    ));
    assert_eq!(
        config.routing,
        RoutingSpec {
            table: 300,
            protocol: 251,
            drain_quiet: Duration::from_secs(2),
            bgp: Some(BgpSpec {
                asn: 65001,
                router_id: Some(Ipv4Addr::new(192, 0, 2, 11)),
                neighbors: vec![BgpNeighbor {
                    address: IpAddr::from([192, 0, 2, 1]),
                    asn: 65000,
                }],
                bfd: Some(BfdSpec {
                    interval: Duration::from_millis(50),
                    multiplier: 3,
                }),
                hold_time: Some(9),
            }),
        }
    );
    assert_eq!(
        config.announces,
        [AnnounceSpec {
            vip: IpAddr::from([192, 0, 2, 100]),
            gate: AnnounceGate::Quorum {
                virtual_server: "web".into()
            },
        }]
    );
    let master = accepted(&instance(
        "[[announce]]\nvip = \"192.0.2.100\"\nwhen = \"master\"\n",
    ));
    assert_eq!(
        master.announces[0].gate,
        AnnounceGate::Master {
            instance: "VI_1".into()
        }
    );
    let always = accepted(&with_service(
        "[[announce]]\nvip = \"192.0.2.100\"\nwhen = \"always\"\n",
    ));
    assert_eq!(always.announces[0].gate, AnnounceGate::Always);
}

#[test]
fn bfd_defaults_to_300ms_times_3() {
    let config = accepted(&instance(
        "[routing]\nbgp = { asn = 65001, neighbors = [], bfd = {} }\n",
    ));
    assert_eq!(
        config.routing.bgp.unwrap().bfd,
        Some(BfdSpec {
            interval: Duration::from_millis(300),
            multiplier: 3
        })
    );
}

#[test]
fn tables_and_protocols_another_owner_uses_are_refused() {
    refused(
        &instance("[routing]\ntable = 254\nprotocol = 188\ndrain_quiet = \"0s\"\n"),
        &[
            "t.toml:7:9: error: routing.table = 254: is the kernel's `main` table; give vipflip a table of its own (200, say) for the routing daemon to redistribute",
            "t.toml:8:12: error: routing.protocol = 188: is one of FRR's own protocol numbers, which zebra ignores",
            "t.toml:9:15: error: routing.drain_quiet = \"0s\": must be more than 0s: it is how long a drained director waits for silence",
        ],
    );
    refused(
        &instance("[routing]\nprotocol = 2\n"),
        &[
            "t.toml:7:12: error: routing.protocol = 2: is `unspec`, `redirect` or `kernel`: neither FRR nor BIRD redistributes such routes",
        ],
    );
}

#[test]
fn the_bgp_side_is_checked_too() {
    refused(
        &instance(
            "[routing]\nbgp = { router_id = \"2001:db8::1\", neighbors = [{ address = \"edge\" }], bfd = { interval = \"5ms\", multiplier = 1 }, hold_time = \"2500ms\" }\n",
        ),
        &[
            "t.toml:7:7: error: missing `routing.bgp.asn` (this director's AS number)",
            "t.toml:7:21: error: routing.bgp.router_id = \"2001:db8::1\": expected an IPv4 address like \"192.0.2.11\" (BGP router ids are 32 bits)",
            "t.toml:7:49: error: missing `routing.bgp.neighbors[0].asn` (the neighbour's AS number)",
            "t.toml:7:61: error: routing.bgp.neighbors[0].address = \"edge\": expected an IP address like \"192.0.2.1\" or \"2001:db8::1\"",
            "t.toml:7:91: error: routing.bgp.bfd.interval = \"5ms\": must be whole milliseconds in 10ms..=60s (FRR's bfdd range)",
            "t.toml:7:111: error: routing.bgp.bfd.multiplier = 1: must be in 2..=255 (packets missed before the session is down)",
            "t.toml:7:128: error: routing.bgp.hold_time = \"2500ms\": must be whole seconds in 3s..=65535s (BGP's hold timer; keepalives go at a third of it)",
        ],
    );
}

#[test]
fn an_announcement_needs_a_vip_and_a_gate() {
    refused(
        &instance("[[announce]]\nprefix = \"192.0.2.100/32\"\n"),
        &[
            "t.toml:6:1: error: announce #1: missing `vip` (the VIP to announce, e.g. \"198.51.100.10\")",
            "t.toml:6:1: error: announce #1: missing `when` (\"always\", \"master\" (while an instance is master) or \"quorum\" (while a virtual server has its quorum))",
            "t.toml:7:1: error: announce #1: unknown key `prefix`; did you mean `vip`? (announced as a /32 or /128)",
        ],
    );
    refused(
        &instance("[[announce]]\nvip = \"192.0.2.100/32\"\nwhen = \"sometimes\"\n"),
        &[
            "t.toml:7:7: error: announce #1: vip = \"192.0.2.100/32\": expected an address without prefix, like \"198.51.100.10\"; it is announced as a /32 (/128 for IPv6)",
            "t.toml:8:8: error: announce #1: when = \"sometimes\": expected \"always\" (while the agent runs), \"master\" (while the instance is master) or \"quorum\" (while the virtual server has its quorum)",
        ],
    );
}

#[test]
fn a_vip_nothing_here_holds_is_refused() {
    refused(
        &instance("[[announce]]\nvip = \"198.51.100.10\"\nwhen = \"always\"\n"),
        &[
            "t.toml:7:7: error: announce 198.51.100.10: vip = \"198.51.100.10\": no [[instance]] or [[virtual_server]] holds this VIP, so nothing here would answer its traffic",
        ],
    );
    refused(
        &instance("[[announce]]\nvip = \"198.51.100.10\"\nwhen = \"master\"\n"),
        &[
            "t.toml:7:7: error: announce 198.51.100.10: vip = \"198.51.100.10\": no [[instance]] holds this VIP, so its gate has nothing to follow",
        ],
    );
    refused(
        &instance("[[announce]]\nvip = \"192.0.2.100\"\nwhen = \"quorum\"\n"),
        &[
            "t.toml:7:7: error: announce 192.0.2.100: vip = \"192.0.2.100\": no [[virtual_server]] holds this VIP, so its gate has nothing to follow",
        ],
    );
}

#[test]
fn a_gate_names_one_that_holds_the_vip() {
    let two = "[[instance]]\nname = \"VI_2\"\ninterface = \"eth1\"\nvrid = 52\nvirtual_ips = [\"192.0.2.200/24\"]\n";
    refused(
        &instance(&format!(
            "{two}[[announce]]\nvip = \"192.0.2.100\"\nwhen = \"master\"\ninstance = \"VI_2\"\n"
        )),
        &[
            "t.toml:14:12: error: announce 192.0.2.100: instance = \"VI_2\": [[instance]] \"VI_2\" does not hold 192.0.2.100; VI_1 does",
        ],
    );
    refused(
        &instance("[[announce]]\nvip = \"192.0.2.100\"\nwhen = \"master\"\ninstance = \"VI_7\"\n"),
        &[
            "t.toml:9:12: error: announce 192.0.2.100: instance = \"VI_7\": no [[instance]] named \"VI_7\"; did you mean \"VI_1\"?",
        ],
    );
    refused(
        &with_service(
            "[[announce]]\nvip = \"192.0.2.100\"\nwhen = \"master\"\nvirtual_server = \"web\"\n",
        ),
        &[
            "t.toml:16:18: error: announce 192.0.2.100: virtual_server = \"web\": only read with when = \"quorum\"",
        ],
    );
}

#[test]
fn one_gate_per_vip() {
    refused(
        &instance(
            "[[announce]]\nvip = \"192.0.2.100\"\nwhen = \"master\"\n[[announce]]\nvip = \"192.0.2.100\"\nwhen = \"always\"\n",
        ),
        &[
            "t.toml:9:1: error: announce 192.0.2.100: 192.0.2.100 is already announced by the [[announce]] at line 6; one [[announce]] (one gate) per VIP",
        ],
    );
}

#[test]
fn always_on_a_vrrp_vip_warns_that_a_backup_attracts_traffic() {
    let (config, warnings) = parse(&instance(
        "[[announce]]\nvip = \"192.0.2.100\"\nwhen = \"always\"\n",
    ))
    .unwrap();
    assert_eq!(config.announces[0].gate, AnnounceGate::Always);
    assert_eq!(
        warnings,
        [
            "t.toml:8:8: warning: announce 192.0.2.100: when = \"always\": a backup of instance \"VI_1\" attracts this VIP's traffic and can only forward or drop it; when = \"master\" announces it from the master alone"
        ]
    );
}

/// An active-active service: on eth0 whenever the agent runs, its VIP no instance's.
const ON_ETH0: &str = "[[virtual_server]]\nname = \"anycast\"\nvip = \"198.51.100.10\"\nport = 80\ninterface = \"eth0\"\n[[virtual_server.real_server]]\naddress = \"198.51.100.21\"\n";

#[test]
fn a_virtual_server_on_an_interface_is_live_without_an_instance() {
    let config = accepted(&format!(
        "{ON_ETH0}[[announce]]\nvip = \"198.51.100.10\"\nwhen = \"quorum\"\n"
    ));
    let vs = &config.virtual_servers[0];
    assert_eq!(vs.home, ServiceHome::Interface("eth0".into()));
    assert_eq!(vs.instance(), None);
    assert_eq!(vs.interface(&config.instances), Some("eth0"));
    assert_eq!(config.service_interfaces(), ["eth0"]);
    assert_eq!(config.balancer_config()[0].interface, "eth0");
    assert_eq!(
        config.announces[0].gate,
        AnnounceGate::Quorum {
            virtual_server: "anycast".into()
        }
    );
}

#[test]
fn a_virtual_server_on_a_missing_interface_is_warned_about() {
    let (config, warnings) =
        parse(&ON_ETH0.replace("interface = \"eth0\"", "interface = \"eth9\"")).unwrap();
    assert_eq!(config.service_interfaces(), ["eth9"]);
    assert_eq!(
        warnings,
        [
            "t.toml:5:13: warning: virtual_server \"anycast\": interface = \"eth9\": no such interface on this host; the service is not served until it exists and a reload or restart attaches to it"
        ]
    );
}

#[test]
fn a_virtual_server_has_one_home() {
    refused(
        &instance(&ON_ETH0.replace(
            "interface = \"eth0\"\n",
            "interface = \"eth0\"\ninstance = \"VI_1\"\nquorum_weight = -10\n",
        )),
        &[
            "t.toml:10:13: error: virtual_server \"anycast\": interface = \"eth0\": set `instance` (live on its master) or `interface` (live whenever the agent runs), not both",
        ],
    );
    refused(
        &ON_ETH0.replace("port = 80\n", "port = 80\nquorum_weight = -10\n"),
        &[
            "t.toml:5:17: error: virtual_server \"anycast\": quorum_weight = -10: a virtual server on an interface has no instance whose priority quorum could move; gate its announcement on quorum instead ([[announce]] when = \"quorum\")",
        ],
    );
}

#[test]
fn an_instance_vip_cannot_be_served_from_an_interface() {
    refused(
        &instance(&ON_ETH0.replace("198.51.100.10", "192.0.2.100")),
        &[
            "t.toml:8:7: error: virtual_server \"anycast\": vip = \"192.0.2.100\": is a virtual IP of instance \"VI_1\", whose election decides where it is live; set instance = \"VI_1\" instead of `interface`, or give this service a VIP of its own",
        ],
    );
}
