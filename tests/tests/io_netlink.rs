//! `io::netlink` in a namespace: interface facts, idempotent address add/remove checked with
//! `ip addr`, carrier loss, neighbour look-ups, and the configuration's routes, rules and
//! static addresses checked with `ip route` / `ip rule`. Needs root.

use std::net::{IpAddr, Ipv4Addr};

use vipflip::{
    config::{RouteKind, RouteSpec, RuleAction, RuleSpec, StaticAddressSpec},
    io::netlink::{IfAddr, Netlink, NetlinkError},
    wire::{Family, MacAddr},
};
use vipflip_integration_tests::{Netns, unique, veth};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `f` with a `Netlink` opened inside `ns`.
fn with_netlink<R, F, Fut>(ns: &Netns, f: F) -> R
where
    F: FnOnce(Netlink) -> Fut + Send + 'static,
    Fut: Future<Output = R>,
    R: Send + 'static,
{
    ns.spawn(move || runtime().block_on(async move { f(Netlink::new().expect("netlink")).await }))
        .join()
        .expect("netlink thread")
}

fn addr_show(ns: &Netns, iface: &str) -> String {
    String::from_utf8_lossy(&ns.ip(&["addr", "show", "dev", iface]).stdout).into_owned()
}

#[test]
#[ignore = "needs root"]
fn link_facts_and_idempotent_address_changes() {
    let a = Netns::new("vfnl-a");
    let b = Netns::new("vfnl-b");
    let (a_if, b_if) = (unique("vfa"), unique("vfb"));
    veth(&a, &a_if, &b, &b_if);
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", &a_if]);
    // Same subnet: the kernel makes it secondary, so the primary stays 192.0.2.1.
    a.ip(&["addr", "add", "192.0.2.50/24", "dev", &a_if]);
    let (index, mac) = (a.ifindex(&a_if), MacAddr(a.mac(&a_if)));

    let iface = a_if.clone();
    let (info, missing) = with_netlink(&a, move |nl| async move {
        (nl.link(&iface).await, nl.link("vf-no-such").await)
    });
    let info = info.expect("link lookup");
    assert_eq!(info.name, a_if);
    assert_eq!(info.index, index);
    assert_eq!(info.mac, Some(mac));
    assert!(info.admin_up && info.carrier && info.is_up());
    assert_eq!(info.ipv4_primary, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert!(
        info.ipv6_link_local
            .is_some_and(|a| a.is_unicast_link_local()),
        "{info:?}"
    );
    assert!(
        matches!(missing, Err(NetlinkError::NoSuchLink { ref iface }) if iface == "vf-no-such"),
        "{missing:?}"
    );

    // Add twice, then remove twice: neither repeat is an error.
    let v4: IfAddr = "192.0.2.100/24".parse().unwrap();
    let v6: IfAddr = "2001:db8::100/64".parse().unwrap();
    let iface = a_if.clone();
    with_netlink(&a, move |nl| async move {
        for addr in [v4, v6, v4, v6] {
            nl.add_address(&iface, addr).await?;
        }
        Ok::<_, NetlinkError>(())
    })
    .expect("add addresses");
    let shown = addr_show(&a, &a_if);
    assert!(shown.contains("inet 192.0.2.100/24"), "{shown}");
    assert!(shown.contains("inet6 2001:db8::100/64"), "{shown}");
    let iface = a_if.clone();
    with_netlink(&a, move |nl| async move {
        for addr in [v4, v6, v4, v6] {
            nl.remove_address(&iface, addr).await?;
        }
        Ok::<_, NetlinkError>(())
    })
    .expect("remove addresses");
    let shown = addr_show(&a, &a_if);
    assert!(!shown.contains("192.0.2.100"), "{shown}");
    assert!(!shown.contains("2001:db8::100"), "{shown}");
    assert!(shown.contains("inet 192.0.2.1/24"), "{shown}");

    // The peer going down takes the carrier with it.
    b.ip(&["link", "set", &b_if, "down"]);
    let iface = a_if.clone();
    let info =
        with_netlink(&a, move |nl| async move { nl.link(&iface).await }).expect("link lookup");
    assert!(info.admin_up && !info.carrier && !info.is_up(), "{info:?}");
}

#[test]
#[ignore = "needs root"]
fn neighbour_mac_after_traffic_and_none_for_a_stranger() {
    let a = Netns::new("vfnl-a");
    let b = Netns::new("vfnl-b");
    let (a_if, b_if) = (unique("vfa"), unique("vfb"));
    veth(&a, &a_if, &b, &b_if);
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", &a_if]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", &b_if]);
    assert!(a.ping_once("192.0.2.2"), "ping the peer");
    let b_mac = MacAddr(b.mac(&b_if));
    let iface = a_if.clone();
    let (known, stranger) = with_netlink(&a, move |nl| async move {
        (
            nl.neighbour_mac(&iface, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)))
                .await,
            nl.neighbour_mac(&iface, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99)))
                .await,
        )
    });
    assert_eq!(known.expect("lookup"), Some(b_mac));
    assert_eq!(stranger.expect("lookup"), None);
}

/// `ip ARGS…` in `ns`, its output as text (empty when it fails: an empty table "does not
/// exist").
fn ip_text(ns: &Netns, args: &[&str]) -> String {
    let out = ns.command("ip").args(args).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A route to `to` with the defaults the configuration gives.
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
#[ignore = "needs root"]
fn configured_routes_rules_and_addresses_are_idempotent_in_both_families() {
    let a = Netns::new("vfnl-a");
    let b = Netns::new("vfnl-b");
    let (a_if, b_if) = (unique("vfa"), unique("vfb"));
    veth(&a, &a_if, &b, &b_if);
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", &a_if]);
    a.ip(&["addr", "add", "2001:db8::1/64", "dev", &a_if, "nodad"]);
    // Someone else's route to a prefix of ours: never taken away by our removal.
    a.ip(&[
        "route",
        "add",
        "198.51.101.0/24",
        "via",
        "192.0.2.2",
        "proto",
        "static",
    ]);
    let (routes, rules) = (written_routes(&a_if), written_rules(&a_if));
    let address = StaticAddressSpec {
        address: "10.99.0.1/32".parse().unwrap(),
        dev: a_if.clone(),
    };

    // Add everything twice; the last route (the foreign one's prefix) only gets removed.
    let (r, l, ad) = (routes[..3].to_vec(), rules.clone(), address.clone());
    with_netlink(&a, move |nl| async move {
        for _ in 0..2 {
            nl.add_static_address(&ad).await?;
            for route in &r {
                nl.add_configured_route(route).await?;
            }
            for rule in &l {
                nl.add_rule(rule).await?;
            }
        }
        Ok::<_, NetlinkError>(())
    })
    .expect("add routes, rules, address");
    assert_written(&a, &a_if);

    // A route through an interface that does not exist says which; removing it is fine.
    let missing = RouteSpec {
        dev: Some("vf-no-such".into()),
        ..route("198.51.102.0/24")
    };
    let (add, remove) = with_netlink(&a, move |nl| async move {
        (
            nl.add_configured_route(&missing).await,
            nl.remove_configured_route(&missing).await,
        )
    });
    assert!(
        matches!(add, Err(NetlinkError::NoSuchLink { ref iface }) if iface == "vf-no-such"),
        "{add:?}"
    );
    assert!(remove.is_ok(), "{remove:?}");

    // Remove everything twice, and ours only: the foreign route (protocol static) stays.
    let (r, l, ad) = (routes, rules, address);
    with_netlink(&a, move |nl| async move {
        for _ in 0..2 {
            for rule in &l {
                nl.remove_rule(rule).await?;
            }
            for route in &r {
                nl.remove_configured_route(route).await?;
            }
            nl.remove_static_address(&ad).await?;
        }
        Ok::<_, NetlinkError>(())
    })
    .expect("remove routes, rules, address");
    let main = ip_text(&a, &["route", "show"]);
    assert!(!main.contains("198.51.100.0/24"), "{main}");
    assert!(
        main.contains("198.51.101.0/24 via 192.0.2.2 dev") && main.contains("proto static"),
        "the foreign route must stay: {main}"
    );
    assert_eq!(ip_text(&a, &["route", "show", "table", "100"]), "");
    assert_eq!(ip_text(&a, &["-6", "route", "show", "table", "100"]), "");
    assert!(!ip_text(&a, &["rule", "show"]).contains("lookup 100"));
    assert!(!ip_text(&a, &["-6", "rule", "show"]).contains("lookup 100"));
    assert!(!addr_show(&a, &a_if).contains("10.99.0.1"));
}

/// Three routes to write (IPv4 with metric, IPv6 in table 100, a blackhole in table 100) and
/// one with the prefix of someone else's route, to remove only.
fn written_routes(a_if: &str) -> Vec<RouteSpec> {
    vec![
        RouteSpec {
            via: Some("192.0.2.2".parse().unwrap()),
            dev: Some(a_if.to_owned()),
            metric: Some(7),
            ..route("198.51.100.0/24")
        },
        RouteSpec {
            via: Some("2001:db8::2".parse().unwrap()),
            table: 100,
            ..route("2001:db8:5::/48")
        },
        RouteSpec {
            kind: RouteKind::Blackhole,
            table: 100,
            ..route("203.0.113.0/24")
        },
        RouteSpec {
            via: Some("192.0.2.2".parse().unwrap()),
            ..route("198.51.101.0/24")
        },
    ]
}

/// An IPv4 rule by source, an IPv6 rule by fwmark/mask and input interface.
fn written_rules(a_if: &str) -> Vec<RuleSpec> {
    vec![
        RuleSpec {
            family: Family::Ipv4,
            from: Some("192.0.2.100/32".parse().unwrap()),
            to: None,
            action: RuleAction::Table(100),
            priority: Some(1000),
            iif: None,
            oif: None,
            fwmark: None,
        },
        RuleSpec {
            family: Family::Ipv6,
            from: None,
            to: None,
            action: RuleAction::Table(100),
            priority: Some(1001),
            iif: Some(a_if.to_owned()),
            oif: None,
            fwmark: Some((0x10, Some(0xff))),
        },
    ]
}

/// What `written_routes` (the first three), `written_rules` and the static address look
/// like in the kernel.
fn assert_written(a: &Netns, a_if: &str) {
    let main = ip_text(a, &["route", "show"]);
    assert!(
        main.contains(&format!(
            "198.51.100.0/24 via 192.0.2.2 dev {a_if} proto keepalived metric 7"
        )),
        "{main}"
    );
    let table4 = ip_text(a, &["route", "show", "table", "100"]);
    assert!(
        table4.contains("blackhole 203.0.113.0/24 proto keepalived"),
        "{table4}"
    );
    let table6 = ip_text(a, &["-6", "route", "show", "table", "100"]);
    assert!(
        table6.contains(&format!(
            "2001:db8:5::/48 via 2001:db8::2 dev {a_if} proto keepalived"
        )),
        "{table6}"
    );
    let rules4 = ip_text(a, &["rule", "show"]);
    assert_eq!(
        rules4.matches("1000:\tfrom 192.0.2.100 lookup 100").count(),
        1,
        "added once: {rules4}"
    );
    let rules6 = ip_text(a, &["-6", "rule", "show"]);
    assert!(
        rules6.contains(&format!(
            "1001:\tfrom all fwmark 0x10/0xff iif {a_if} lookup 100"
        )),
        "{rules6}"
    );
    assert!(addr_show(a, a_if).contains("inet 10.99.0.1/32"));
}
