//! What a new user meets first: the shipped example configuration, as it is (its default
//! `pin_dir` under /sys/fs/bpf included), run in a network namespace. Inside `ip netns exec`
//! /sys is a fresh sysfs whose /sys/fs/bpf holds no bpffs, whatever the machine has mounted:
//! the daemon must mount one for its pins, in its own mount namespace only.

use std::{path::Path, time::Duration};

use vipflip_integration_tests::{Netns, agent::Agent, scene::test_dir, veth, wait_for};

/// Whether the machine's own mount namespace (pid 1's, seen through `/proc/1/root`) has a
/// bpffs on /sys/fs/bpf.
fn machine_has_bpffs_on_sys_fs_bpf() -> bool {
    vipflip_bpffs::is_bpffs(Path::new("/proc/1/root/sys/fs/bpf")).unwrap_or(false)
}

#[test]
#[ignore = "needs root"]
fn the_shipped_example_runs_in_a_namespace_without_a_bpffs() {
    let machine_before = machine_has_bpffs_on_sys_fs_bpf();
    let dir = test_dir("vipflip-example-");
    let host = Netns::new("vfex-h");
    let peer = Netns::new("vfex-p");
    // The example's interfaces: eth0 carries both instances, eth1 is tracked.
    veth(&host, "eth0", &peer, "p0");
    veth(&host, "eth1", &peer, "p1");
    host.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    host.ip(&["addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad"]);
    peer.ip(&["addr", "add", "192.0.2.50/24", "dev", "p0"]);

    let example_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vipflip.toml");
    let example = std::fs::read_to_string(&example_path).expect("read the shipped example");
    assert!(
        example.contains("pin_dir = \"/sys/fs/bpf/vipflip\""),
        "the example no longer shows the default pin_dir"
    );
    // Only the control socket moves, so that parallel tests (and a real daemon) never share it.
    let socket_line = "control_socket = \"/run/vipflip.sock\"";
    assert!(
        example.contains(socket_line),
        "the example's control socket moved"
    );
    let config = example.replace(
        socket_line,
        &format!("control_socket = \"{}/ex.sock\"", dir.display()),
    );
    let agent = Agent::start(&host, &dir, "ex", &config, "info");

    let master = |name| agent.state(name).as_deref() == Some("Master");
    assert!(
        wait_for(Duration::from_secs(10), || master("VI_1") && master("VI_6")),
        "the example's instances did not become master alone; status: {}\nlog:\n{}",
        agent.status(),
        agent.log()
    );
    let log = agent.log();
    assert!(
        log.contains("mounted a bpffs on /sys/fs/bpf for the pins"),
        "no bpffs mount in the log:\n{log}"
    );
    // The pins, seen through the daemon's own mount namespace.
    let root = format!("/proc/{}/root", agent.pid());
    let sys_fs_bpf = Path::new(&root).join("sys/fs/bpf");
    assert!(
        vipflip_bpffs::is_bpffs(&sys_fs_bpf).expect("statfs the daemon's /sys/fs/bpf"),
        "the daemon's /sys/fs/bpf is not a bpffs"
    );
    for pin in ["VIPS", "link"] {
        let path = sys_fs_bpf.join("vipflip/eth0").join(pin);
        assert!(path.exists(), "{} is missing", path.display());
    }
    // The VIP answers on the wire.
    assert!(peer.ping_once("192.0.2.100"), "the VIP does not answer");
    // And the machine's own mounts are as they were.
    assert_eq!(machine_has_bpffs_on_sys_fs_bpf(), machine_before);
    let _ = std::fs::remove_dir_all(&dir);
}
