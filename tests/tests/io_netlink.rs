//! `io::netlink` in a namespace: interface facts, idempotent address add/remove checked with
//! `ip addr`, carrier loss, and neighbour look-ups. Needs root.

use std::net::{IpAddr, Ipv4Addr};

use vipflip::{
    io::netlink::{IfAddr, Netlink, NetlinkError},
    wire::MacAddr,
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
