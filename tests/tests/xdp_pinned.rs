//! The XDP data plane on real interfaces in network namespaces: attach and pin with the
//! `vipflip` binary, kill the loader, re-open the pins, flip a VIP and watch real traffic
//! (and `BPF_PROG_TEST_RUN` on the pinned program) follow; then the on-wire forward to the
//! current owner. Needs root.

use std::{
    net::IpAddr,
    process::{Command, Stdio},
    time::Duration,
};

use aya::programs::{TestRun, TestRunOptions};
use vipflip::dataplane::{self, Dataplane, Ownership};
use vipflip_common::{FAMILY_IPV4, Outcome, XDP_DROP, XDP_PASS};
use vipflip_integration_tests::{BpfFs, Netns, unique, veth, vipflip_bin, wait_for};

const VIP: &str = "192.0.2.100";

/// A frame to the VIP for `BPF_PROG_TEST_RUN`: Ethernet + IPv4/UDP.
fn frame_to_vip() -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 2, 192, 0, 2, 100,
    ]);
    f.extend_from_slice(&[0x30, 0x39, 0, 80, 0, 8, 0, 0]);
    f
}

#[test]
#[ignore = "needs root"]
#[expect(clippy::too_many_lines, reason = "one timeline, read top to bottom")]
fn pins_survive_the_loader_and_a_flip_changes_the_verdict() {
    let router = Netns::new("vft-r");
    let client = Netns::new("vft-c");
    let (r_if, c_if) = (unique("vfr"), unique("vfc"));
    veth(&router, &r_if, &client, &c_if);
    router.ip(&["addr", "add", "192.0.2.1/24", "dev", &r_if]);
    router.ip(&["addr", "add", &format!("{VIP}/32"), "dev", &r_if]);
    client.ip(&["addr", "add", "192.0.2.2/24", "dev", &c_if]);
    let bpffs = BpfFs::new();
    let pin_root = bpffs.path().to_str().unwrap().to_owned();
    let bin = vipflip_bin();

    // Load with a loader that stays up, then kill it hard: the pinned link must keep the
    // program attached.
    let mut loader = router
        .command(bin.to_str().unwrap())
        .args(["load", "--iface", &r_if, "--pin-dir", &pin_root, "--hold"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn vipflip load");
    let link = bpffs.path().join(&r_if).join("link");
    assert!(
        wait_for(Duration::from_secs(20), || link.exists()),
        "vipflip load never pinned {}",
        link.display()
    );
    loader.kill().expect("kill the loader");
    loader.wait().expect("reap the loader");
    let shown = router.ip(&["link", "show", &r_if]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("prog/xdp"),
        "XDP detached with the loader"
    );

    // The VIP is not in VIPS yet: its traffic passes.
    assert!(client.ping_once(VIP), "ping to the VIP before any flip");

    // Re-open from the pins, as a restarted agent does, and flip.
    let mut plane = Dataplane::open_pinned(&r_if, bpffs.path()).expect("re-open pins");
    let vip: IpAddr = VIP.parse().unwrap();
    plane.set_vip(vip, Ownership::Drop { vrid: 51 }).unwrap();
    let before = plane.stats().unwrap();
    assert!(
        !client.ping_once(VIP),
        "ping answered while the VIP is set to drop"
    );
    let after = plane.stats().unwrap();
    assert!(
        after.outcome(Outcome::VipDrop) > before.outcome(Outcome::VipDrop),
        "no vip_drop counted"
    );

    plane.set_vip(vip, Ownership::Local { vrid: 51 }).unwrap();
    assert!(
        client.ping_once(VIP),
        "ping unanswered after the flip to local"
    );
    assert!(
        plane.stats().unwrap().outcome(Outcome::VipLocal) > 0,
        "no vip_local counted"
    );

    // The pinned program itself, run on a crafted frame, sees the same map.
    let program = dataplane::pinned_program(&r_if, bpffs.path()).expect("open pinned program");
    let frame = frame_to_vip();
    let run = |program: &aya::programs::Xdp| {
        program
            .test_run(TestRunOptions {
                data_in: Some(&frame),
                ..TestRunOptions::default()
            })
            .unwrap()
            .return_value
    };
    assert_eq!(run(&program), XDP_PASS);
    plane.set_vip(vip, Ownership::Drop { vrid: 51 }).unwrap();
    assert_eq!(run(&program), XDP_DROP);

    // A second load re-opens instead of reloading: the VIP entry written above survives.
    let again = router
        .command(bin.to_str().unwrap())
        .args(["load", "--iface", &r_if, "--pin-dir", &pin_root])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "second load failed: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("re-opened"),
        "second load reloaded the program"
    );
    assert_eq!(
        plane.vips().unwrap(),
        vec![(vip, Ownership::Drop { vrid: 51 })]
    );

    // `vipflip maps` shows it to a human.
    let maps = Command::new(&bin)
        .args(["maps", "--iface", &r_if, "--pin-dir", &pin_root])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&maps.stdout);
    assert!(
        maps.status.success() && text.contains(VIP) && text.contains("drop (vrid 51)"),
        "vipflip maps: {text}"
    );

    // Unload detaches and removes the pins.
    drop(plane);
    drop(program);
    let unload = router
        .command(bin.to_str().unwrap())
        .args(["unload", "--iface", &r_if, "--pin-dir", &pin_root])
        .output()
        .unwrap();
    assert!(
        unload.status.success(),
        "unload: {}",
        String::from_utf8_lossy(&unload.stderr)
    );
    let shown = router.ip(&["link", "show", &r_if]);
    assert!(
        !String::from_utf8_lossy(&shown.stdout).contains("prog/xdp"),
        "still attached after unload"
    );
    assert!(!bpffs.path().join(&r_if).exists(), "pins left behind");
    assert!(client.ping_once(VIP), "ping after unload");
}

/// Client → r1 (holding a stale ARP entry for the VIP) → XDP forward on-wire → r2 (the owner),
/// which answers the client directly. Only the forward can make the ping succeed: r1 does
/// not hold the VIP at all.
#[test]
#[ignore = "needs root"]
fn forward_sends_vip_traffic_to_the_owner_on_the_wire() {
    let switch = Netns::new("vft-s");
    let (r1, r2, client) = (
        Netns::new("vft-1"),
        Netns::new("vft-2"),
        Netns::new("vft-c"),
    );
    let bridge = "br0";
    switch.ip(&["link", "add", bridge, "type", "bridge"]);
    switch.ip(&["link", "set", bridge, "up"]);
    let mut ports = Vec::new();
    for (host, addr) in [
        (&r1, "192.0.2.1/24"),
        (&r2, "192.0.2.2/24"),
        (&client, "192.0.2.9/24"),
    ] {
        let (inside, port) = (unique("vfh"), unique("vfp"));
        veth(host, &inside, &switch, &port);
        switch.ip(&["link", "set", &port, "master", bridge]);
        host.ip(&["addr", "add", addr, "dev", &inside]);
        ports.push((inside, port));
    }
    let (r1_if, r1_port) = (&ports[0].0, &ports[0].1);
    let r2_if = &ports[1].0;
    r2.ip(&["addr", "add", &format!("{VIP}/32"), "dev", r2_if]);
    // The client's ARP cache still points the VIP at r1, as after a failover.
    let r1_mac = r1.mac(r1_if);
    let r1_mac_text = r1_mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    client.ip(&[
        "neigh",
        "replace",
        VIP,
        "lladdr",
        &r1_mac_text,
        "dev",
        &ports[2].0,
        "nud",
        "permanent",
    ]);
    // r2 must not answer the client with the VIP from ARP confusion: it replies from the VIP.
    assert!(
        !client.ping_once(VIP),
        "r1 answered for a VIP it does not hold (test set-up is wrong)"
    );

    let bpffs = BpfFs::new();
    let pin_root = bpffs.path().to_str().unwrap().to_owned();
    let bin = vipflip_bin();
    // XDP_TX on r1's veth is delivered only if the bridge-side end runs XDP too.
    let load = r1
        .command(bin.to_str().unwrap())
        .args(["load", "--iface", r1_if, "--pin-dir", &pin_root])
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "load: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    let pass = switch
        .command(bin.to_str().unwrap())
        .args(["load-pass", "--iface", r1_port, "--pin-dir", &pin_root])
        .output()
        .unwrap();
    assert!(
        pass.status.success(),
        "load-pass: {}",
        String::from_utf8_lossy(&pass.stderr)
    );

    let mut plane = Dataplane::open_pinned(r1_if, bpffs.path()).expect("open pins");
    let vip: IpAddr = VIP.parse().unwrap();
    let owner = Ownership::Forward {
        vrid: 51,
        ifindex: r1.ifindex(r1_if),
        dst_mac: r2.mac(r2_if),
        src_mac: r1_mac,
    };
    plane.set_vip(vip, owner).unwrap();
    assert!(
        client.ping_once(VIP),
        "the forwarded ping was not answered by the owner"
    );
    let stats = plane.stats().unwrap();
    assert!(
        stats.outcome(Outcome::VipForwardTx) >= 1,
        "no vip_forward_tx counted: {stats:?}"
    );

    // Flip to drop: nothing reaches the owner any more.
    plane.set_vip(vip, Ownership::Drop { vrid: 51 }).unwrap();
    assert!(
        !client.ping_once(VIP),
        "ping answered while r1 drops the VIP"
    );
}

/// A v3/IPv4 advert for VRID 51 from `src`, as a frame for `BPF_PROG_TEST_RUN`.
fn advert_from(src: [u8; 4]) -> Vec<u8> {
    let mut f = vec![1, 0, 0x5e, 0, 0, 0x12, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 32, 0, 0, 0x40, 0, 255, 112, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[224, 0, 0, 18]);
    f.extend_from_slice(&[0x31, 51, 100, 1, 0, 100, 0, 0, 192, 0, 2, 100]);
    f
}

#[test]
#[ignore = "needs root"]
#[expect(clippy::too_many_lines, reason = "one timeline, read top to bottom")]
fn vrid_filters_and_allow_lists_follow_the_api() {
    let router = Netns::new("vft-r");
    let peer = Netns::new("vft-p");
    let (r_if, p_if) = (unique("vfr"), unique("vfp"));
    veth(&router, &r_if, &peer, &p_if);
    let bpffs = BpfFs::new();
    let pin_root = bpffs.path().to_str().unwrap().to_owned();
    let load = router
        .command(vipflip_bin().to_str().unwrap())
        .args(["load", "--iface", &r_if, "--pin-dir", &pin_root])
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "load: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    let mut plane = Dataplane::open_pinned(&r_if, bpffs.path()).expect("open pins");
    let program = dataplane::pinned_program(&r_if, bpffs.path()).unwrap();
    let verdict = |src: [u8; 4]| {
        let frame = advert_from(src);
        program
            .test_run(TestRunOptions {
                data_in: Some(&frame),
                ..TestRunOptions::default()
            })
            .unwrap()
            .return_value
    };
    let (one, two): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());

    assert_eq!(
        verdict([192, 0, 2, 1]),
        XDP_DROP,
        "VRID 51 not declared yet"
    );
    assert_eq!(plane.stats().unwrap().outcome(Outcome::DropUnknownVrid), 1);

    plane.set_vrid_filter(FAMILY_IPV4, 51, None).unwrap();
    assert_eq!(
        verdict([192, 0, 2, 1]),
        XDP_PASS,
        "any source while no allow-list is set"
    );

    plane
        .set_vrid_filter(FAMILY_IPV4, 51, Some(&[two]))
        .unwrap();
    assert_eq!(
        verdict([192, 0, 2, 1]),
        XDP_DROP,
        "192.0.2.1 is not on the list"
    );
    assert_eq!(
        verdict([192, 0, 2, 2]),
        XDP_PASS,
        "192.0.2.2 is on the list"
    );
    assert_eq!(
        plane.stats().unwrap().outcome(Outcome::DropPeerNotAllowed),
        1
    );
    let filters = plane.vrids().unwrap();
    assert_eq!(filters.len(), 1);
    assert_eq!(
        (
            filters[0].family,
            filters[0].vrid,
            filters[0].allowed.clone()
        ),
        (FAMILY_IPV4, 51, Some(vec![two]))
    );

    // Replacing the list drops the old entries.
    plane
        .set_vrid_filter(FAMILY_IPV4, 51, Some(&[one]))
        .unwrap();
    assert_eq!(
        verdict([192, 0, 2, 2]),
        XDP_DROP,
        "192.0.2.2 was taken off the list"
    );
    assert_eq!(verdict([192, 0, 2, 1]), XDP_PASS);

    let counted = plane.vrid_stats(FAMILY_IPV4, 51).unwrap();
    assert_eq!(
        (counted.accepted, counted.dropped),
        (3, 3),
        "per-VRID counters"
    );

    // Bad requests are refused with a reason and change nothing.
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let err = plane
        .set_vrid_filter(FAMILY_IPV4, 51, Some(&[v6]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("holds an IPv6 address"), "{err}");
    let err = plane
        .set_vrid_filter(FAMILY_IPV4, 0, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("VRID 0 is not valid"), "{err}");
    assert_eq!(
        verdict([192, 0, 2, 1]),
        XDP_PASS,
        "a refused request changed the filter"
    );

    plane.remove_vrid(FAMILY_IPV4, 51).unwrap();
    assert_eq!(verdict([192, 0, 2, 1]), XDP_DROP, "VRID 51 removed");
    assert!(plane.vrids().unwrap().is_empty());
}

/// Pins at `path` a `REALS` map as a build before the double-buffered slots made it (24-byte
/// values).
fn pin_old_reals(path: &std::path::Path) {
    let made = Command::new("bpftool")
        .args(["map", "create"])
        .arg(path)
        .args([
            "type", "array", "key", "4", "value", "24", "entries", "4096",
        ])
        .args(["name", "REALS"])
        .output()
        .expect("run bpftool (installed by `cargo xtask setup`)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// Pins another build left, whose `REALS` values had another size (as before a slot held two
/// copies): `vipflip load` refuses them, naming the map and the way out, instead of showing
/// the verifier's dump; `vipflip unload` clears them and a load then succeeds.
#[test]
#[ignore = "needs root"]
fn pins_of_another_build_are_refused_with_the_way_out() {
    let router = Netns::new("vft-p");
    let (r_if, c_if) = (unique("vfp"), unique("vfq"));
    let client = Netns::new("vft-q");
    veth(&router, &r_if, &client, &c_if);
    let bpffs = BpfFs::new();
    let pin_root = bpffs.path().to_str().unwrap().to_owned();
    let dir = bpffs.path().join(&r_if);
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("REALS");
    pin_old_reals(&old);
    let bin = vipflip_bin();
    let vipflip = |args: &[&str]| {
        router
            .command(bin.to_str().unwrap())
            .args(args)
            .args(["--iface", &r_if, "--pin-dir", &pin_root])
            .output()
            .expect("run vipflip")
    };
    let load = vipflip(&["load"]);
    assert!(!load.status.success(), "loaded over another build's pins");
    let said = String::from_utf8_lossy(&load.stderr);
    assert!(
        said.contains(&format!(
            "the pinned map REALS ({}) was made by another vipflip build (keys 4 bytes, values 24, 4096 entries;",
            old.display()
        )) && said.contains(&format!("`vipflip unload --iface {r_if} --pin-dir {pin_root}`")),
        "{said}"
    );
    assert!(!said.contains("Verifier output"), "{said}");
    let unload = vipflip(&["unload"]);
    assert!(
        unload.status.success(),
        "{}",
        String::from_utf8_lossy(&unload.stderr)
    );
    assert!(!old.exists(), "unload left the old pin");
    let load = vipflip(&["load"]);
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    // The upgrade proper: the program stays attached through its pinned link, and the agent
    // re-opens the pins instead of loading: an old map is refused there too.
    std::fs::remove_file(&old).unwrap();
    pin_old_reals(&old);
    let reopen = vipflip(&["load"]);
    assert!(!reopen.status.success(), "re-opened another build's pins");
    let said = String::from_utf8_lossy(&reopen.stderr);
    assert!(said.contains("the pinned map REALS"), "{said}");
    let unload = vipflip(&["unload"]);
    assert!(unload.status.success());
}
