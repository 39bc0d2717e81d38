//! `virtual_routes`, `virtual_rules` and the statics: what is read, and every refusal with
//! its message.

use std::net::IpAddr;

use super::{accepted, instance, parse, refused};
use crate::config::{
    RouteKind, RouteScope, RouteSpec, RuleAction, RuleSpec, StaticAddressSpec, Statics,
};
use crate::wire::Family;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A route to `to` with every optional field at its default.
fn route(to: &str) -> RouteSpec {
    RouteSpec {
        to: to.parse().unwrap(),
        kind: RouteKind::Unicast,
        via: None,
        dev: None,
        src: None,
        table: 254,
        metric: None,
        scope: None,
        protocol: 18,
        onlink: false,
    }
}

#[test]
fn virtual_routes_read_every_field_a_keepalived_user_writes() {
    let config = accepted(&instance(
        r#"virtual_routes = [
  { to = "198.51.100.0/24", via = "192.0.2.1", dev = "eth0", src = "192.0.2.100", table = 100, metric = 5, scope = "global", protocol = "static", onlink = true },
  { to = "default", via = "192.0.2.254", table = "main" },
  { to = "203.0.113.0/24", type = "blackhole" },
  { to = "203.0.113.7", dev = "eth1", scope = "link", protocol = 200 },
]
"#,
    ));
    let routes = &config.instances[0].virtual_routes;
    assert_eq!(
        routes[0],
        RouteSpec {
            via: Some(ip("192.0.2.1")),
            dev: Some("eth0".into()),
            src: Some(ip("192.0.2.100")),
            table: 100,
            metric: Some(5),
            scope: Some(RouteScope::Global),
            protocol: 4,
            onlink: true,
            ..route("198.51.100.0/24")
        }
    );
    assert_eq!(
        routes[1],
        RouteSpec {
            via: Some(ip("192.0.2.254")),
            ..route("0.0.0.0/0")
        }
    );
    assert_eq!(
        routes[2],
        RouteSpec {
            kind: RouteKind::Blackhole,
            ..route("203.0.113.0/24")
        }
    );
    assert_eq!(
        routes[3],
        RouteSpec {
            dev: Some("eth1".into()),
            scope: Some(RouteScope::Link),
            protocol: 200,
            ..route("203.0.113.7/32")
        }
    );
    assert_eq!(
        routes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "198.51.100.0/24 via 192.0.2.1 dev eth0 src 192.0.2.100 table 100 metric 5 scope global proto 4 onlink",
            "default via 192.0.2.254",
            "blackhole 203.0.113.0/24",
            "203.0.113.7/32 dev eth1 scope link proto 200",
        ]
    );
}

#[test]
fn a_default_route_takes_the_family_of_its_gateway() {
    let config = accepted(
        "[[instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvrid = 52\nvirtual_ips = [\"2001:db8::100/64\"]\n\
         virtual_routes = [{ to = \"default\", via = \"2001:db8::1\" }]\n",
    );
    assert_eq!(
        config.instances[0].virtual_routes[0].to,
        "::/0".parse::<ipnet::IpNet>().unwrap()
    );
}

#[test]
fn virtual_routes_as_an_array_of_tables_read_alike() {
    let config = accepted(&instance(
        "[[instance.virtual_routes]]\nto = \"198.51.100.0/24\"\nvia = \"192.0.2.1\"\n",
    ));
    assert_eq!(
        config.instances[0].virtual_routes,
        [RouteSpec {
            via: Some(ip("192.0.2.1")),
            ..route("198.51.100.0/24")
        }]
    );
}

#[test]
fn bad_routes_are_refused_at_their_value() {
    refused(
        &instance(
            r#"virtual_routes = [
  { to = "198.51.100.1/24", via = "192.0.2.1" },
  { to = "198.51.100.0/24", via = "2001:db8::1" },
  { to = "2001:db8:5::/48", via = "192.0.2.1" },
  { to = "198.51.102.0/24" },
  { to = "198.51.103.0/24", type = "blackhole", via = "192.0.2.1" },
  { to = "198.51.104.0/24", dev = "eth0", onlink = true },
  { to = "198.51.105.0/24", dev = "eth0", table = 0, scope = "planet", protocol = "bird" },
  { to = "nowhere", gw = "192.0.2.1" },
  { via = "192.0.2.1", type = "anycast" },
]
"#,
        ),
        &[
            "t.toml:7:10: error: instance \"VI_1\": virtual_routes[0].to = \"198.51.100.1/24\": host bits are set after the /24 prefix; did you mean \"198.51.100.0/24\"?",
            "t.toml:8:35: error: instance \"VI_1\": virtual_routes[1].via = \"2001:db8::1\": an IPv6 address for a route to an IPv4 prefix (198.51.100.0/24); use one family per route",
            "t.toml:9:35: error: instance \"VI_1\": virtual_routes[2].via = \"192.0.2.1\": an IPv4 address for a route to an IPv6 prefix (2001:db8:5::/48); use one family per route",
            "t.toml:10:3: error: instance \"VI_1\": virtual_routes[3]: a unicast route needs `via` (a gateway) or `dev` (an interface), or a `type` like \"blackhole\"",
            "t.toml:11:55: error: instance \"VI_1\": virtual_routes[4].via = \"192.0.2.1\": a blackhole route goes nowhere: remove `via`",
            "t.toml:12:52: error: instance \"VI_1\": virtual_routes[5].onlink = true: `onlink` says the gateway is on the link: it needs `via`",
            "t.toml:13:51: error: instance \"VI_1\": virtual_routes[6].table = 0: expected a table number in 1..=4294967295 or \"main\", \"local\" or \"default\"",
            "t.toml:13:62: error: instance \"VI_1\": virtual_routes[6].scope = \"planet\": expected \"global\", \"site\", \"link\", \"host\" or \"nowhere\"",
            "t.toml:13:83: error: instance \"VI_1\": virtual_routes[6].protocol = \"bird\": expected a protocol number in 0..=255 or \"boot\", \"static\", \"kernel\" or \"keepalived\"",
            "t.toml:14:3: error: instance \"VI_1\": virtual_routes[7]: a unicast route needs `via` (a gateway) or `dev` (an interface), or a `type` like \"blackhole\"",
            "t.toml:14:10: error: instance \"VI_1\": virtual_routes[7].to = \"nowhere\": expected a prefix like \"198.51.100.0/24\" or \"2001:db8:1::/48\", an address, or \"default\"",
            "t.toml:14:21: error: instance \"VI_1\": unknown key `virtual_routes[7].gw`; did you mean `via`?",
            "t.toml:15:3: error: instance \"VI_1\": missing `virtual_routes[8].to` (the destination prefix, e.g. \"198.51.100.0/24\" or \"default\")",
            "t.toml:15:31: error: instance \"VI_1\": virtual_routes[8].type = \"anycast\": expected \"unicast\", \"blackhole\", \"unreachable\" or \"prohibit\"",
        ],
    );
}

#[test]
fn a_route_on_a_missing_interface_is_a_warning_the_daemon_repeats_when_it_fails() {
    let (config, warnings) = parse(&instance(
        "virtual_routes = [{ to = \"198.51.100.0/24\", dev = \"eth9\" }]\n",
    ))
    .unwrap();
    assert_eq!(
        config.instances[0].virtual_routes[0].dev.as_deref(),
        Some("eth9")
    );
    assert_eq!(
        warnings,
        [
            "t.toml:6:51: warning: instance \"VI_1\": virtual_routes[0].dev = \"eth9\": no such interface on this host; writing the route fails (and says so) until it exists"
        ]
    );
}

#[test]
fn virtual_rules_read_selectors_and_actions() {
    let config = accepted(&instance(
        r#"virtual_rules = [
  { from = "192.0.2.100", table = 100, priority = 100 },
  { to = "198.51.100.0/24", iif = "eth0", oif = "eth1", fwmark = "0x10/0xff", type = "prohibit" },
  { fwmark = 7, table = "main" },
]
"#,
    ));
    let rule = |family| RuleSpec {
        family,
        from: None,
        to: None,
        action: RuleAction::Table(100),
        priority: None,
        iif: None,
        oif: None,
        fwmark: None,
    };
    assert_eq!(
        config.instances[0].virtual_rules,
        [
            RuleSpec {
                from: Some("192.0.2.100/32".parse().unwrap()),
                priority: Some(100),
                ..rule(Family::Ipv4)
            },
            RuleSpec {
                to: Some("198.51.100.0/24".parse().unwrap()),
                iif: Some("eth0".into()),
                oif: Some("eth1".into()),
                fwmark: Some((0x10, Some(0xff))),
                action: RuleAction::Prohibit,
                ..rule(Family::Ipv4)
            },
            RuleSpec {
                fwmark: Some((7, None)),
                action: RuleAction::Table(254),
                ..rule(Family::Ipv4)
            },
        ]
    );
    assert_eq!(
        config.instances[0].virtual_rules[0].to_string(),
        "from 192.0.2.100/32 lookup 100 pref 100"
    );
}

#[test]
fn a_rule_without_addresses_takes_its_instance_family() {
    let config = accepted(
        "[[instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvrid = 52\nvirtual_ips = [\"2001:db8::100/64\"]\n\
         virtual_rules = [{ fwmark = 1, table = 100 }]\n",
    );
    assert_eq!(config.instances[0].virtual_rules[0].family, Family::Ipv6);
}

#[test]
fn bad_rules_are_refused_at_their_value() {
    refused(
        &instance(
            r#"virtual_rules = [
  { from = "192.0.2.1" },
  { from = "192.0.2.1", to = "2001:db8::/32", table = 100 },
  { from = "192.0.2.0/16", table = 100, type = "blackhole" },
  { fwmark = "0xzz", table = 100, pref = 5 },
]
"#,
        ),
        &[
            "t.toml:7:3: error: instance \"VI_1\": missing `virtual_rules[0].table` (the table matching packets are looked up in, e.g. 100)",
            "t.toml:8:30: error: instance \"VI_1\": virtual_rules[1].to = \"2001:db8::/32\": an IPv6 prefix in an IPv4 rule; `from`, `to` and `family` must agree",
            "t.toml:9:12: error: instance \"VI_1\": virtual_rules[2].from = \"192.0.2.0/16\": host bits are set after the /16 prefix; did you mean \"192.0.0.0/16\"?",
            "t.toml:9:36: error: instance \"VI_1\": virtual_rules[2].table = 100: a rule either looks up a table or has a `type`, not both",
            "t.toml:10:14: error: instance \"VI_1\": virtual_rules[3].fwmark = \"0xzz\": expected a mark in 0..=4294967295, or \"MARK/MASK\" like \"0x10/0xff\"",
            "t.toml:10:35: error: instance \"VI_1\": unknown key `virtual_rules[3].pref`; did you mean `priority`?",
        ],
    );
}

#[test]
fn statics_are_read_from_their_own_tables() {
    let text = format!(
        "{}\n[[static_address]]\naddress = \"192.0.2.5/24\"\ndev = \"eth1\"\n\n\
         [[static_route]]\nto = \"198.51.100.0/24\"\nvia = \"192.0.2.1\"\ntable = 100\n\n\
         [[static_rule]]\nfrom = \"192.0.2.0/24\"\ntable = 100\n",
        instance("")
    );
    let config = accepted(&text);
    assert_eq!(
        config.statics,
        Statics {
            addresses: vec![StaticAddressSpec {
                address: "192.0.2.5/24".parse().unwrap(),
                dev: "eth1".into(),
            }],
            routes: vec![RouteSpec {
                via: Some(ip("192.0.2.1")),
                table: 100,
                ..route("198.51.100.0/24")
            }],
            rules: vec![RuleSpec {
                family: Family::Ipv4,
                from: Some("192.0.2.0/24".parse().unwrap()),
                to: None,
                action: RuleAction::Table(100),
                priority: None,
                iif: None,
                oif: None,
                fwmark: None,
            }],
        }
    );
}

#[test]
fn routes_rules_and_addresses_written_twice_are_refused() {
    let text = format!(
        "{}virtual_routes = [{{ to = \"198.51.100.0/24\", via = \"192.0.2.1\", table = 100 }}]\n\
         virtual_rules = [{{ from = \"192.0.2.100\", table = 100 }}]\n\n\
         [[static_route]]\nto = \"198.51.100.0/24\"\ndev = \"eth1\"\ntable = 100\n\n\
         [[static_rule]]\nfrom = \"192.0.2.100\"\ntable = 100\n\n\
         [[static_address]]\naddress = \"192.0.2.100/24\"\ndev = \"eth0\"\n\n\
         [[static_address]]\naddress = \"192.0.2.100/32\"\ndev = \"eth1\"\n",
        instance("")
    );
    refused(
        &text,
        &[
            "t.toml:9:1: error: static_route #1: the route to 198.51.100.0/24 in table 100 is also instance \"VI_1\": virtual_routes[0] (line 6); write each route once",
            "t.toml:14:1: error: static_rule #1: the rule `from 192.0.2.100/32 lookup 100` is also instance \"VI_1\": virtual_rules[0] (line 7); write each rule once",
            "t.toml:18:1: error: static_address #1: 192.0.2.100 is a virtual IP of instance \"VI_1\", which adds and removes it with mastership; a static address stays whatever the state",
            "t.toml:22:1: error: static_address #2: 192.0.2.100 is also static_address #1 (line 18); write each address once",
            "t.toml:22:1: error: static_address #2: 192.0.2.100 is a virtual IP of instance \"VI_1\", which adds and removes it with mastership; a static address stays whatever the state",
        ],
    );
}

#[test]
fn keepalived_block_names_point_to_the_tables() {
    refused(
        &format!("static_routes = []\n{}", instance("")),
        &["t.toml:1:1: error: unknown key `static_routes`; write one `[[static_route]]` per route"],
    );
    refused(
        &format!(
            "[[static_address]]\naddress = \"192.0.2.5/24\"\n{}",
            instance("")
        ),
        &[
            "t.toml:1:1: error: static_address #1: missing `dev` (the interface it is added to, e.g. \"eth0\")",
        ],
    );
}

#[test]
fn the_example_virtual_routes_lines_are_valid() {
    // Commented out in VI_1 so the example writes no route; uncommented they must pass.
    let text = std::fs::read_to_string(super::example_path()).expect("examples/vipflip.toml");
    let lines: String = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("# virtual_routes =")
                .map(|rest| format!("virtual_routes ={rest}\n"))
                .or_else(|| {
                    l.strip_prefix("# virtual_rules =")
                        .map(|rest| format!("virtual_rules ={rest}\n"))
                })
        })
        .collect();
    let config = accepted(&instance(&lines));
    assert_eq!(
        config.instances[0]
            .virtual_routes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["198.51.100.0/24 via 192.0.2.254 src 192.0.2.100"]
    );
    assert_eq!(
        config.instances[0].virtual_rules[0].to_string(),
        "from 192.0.2.100/32 lookup 100 pref 100"
    );
}
