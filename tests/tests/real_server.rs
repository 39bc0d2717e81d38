//! `vipflip real-server --apply/--remove` in a fresh namespace, as a real server's operator
//! runs it, with a client namespace on a veth that reaches the VIP the way a director
//! would send it: routed to the real server (Direct Routing keeps the IP header), or wrapped
//! in IPIP or GUE by a stock kernel tunnel. Needs root.

use std::process::Output;

use vipflip_integration_tests::{Netns, veth, vipflip_bin};

const VIP4: &str = "192.0.2.100";
const VIP6: &str = "2001:db8::100";
const CLIENT4: &str = "198.51.100.1";
const SERVER4: &str = "198.51.100.2";
const CLIENT6: &str = "2001:db8:1::1";
const SERVER6: &str = "2001:db8:1::2";
const GUE_PORT: &str = "6080";

/// A real server (`rs`, `r0`) and a client (`c0`) on one veth, IPv4 and IPv6.
struct Pair {
    rs: Netns,
    client: Netns,
}

impl Pair {
    fn new() -> Self {
        let rs = Netns::new("vfrs-s");
        let client = Netns::new("vfrs-c");
        veth(&client, "c0", &rs, "r0");
        client.ip(&["addr", "add", &format!("{CLIENT4}/24"), "dev", "c0"]);
        rs.ip(&["addr", "add", &format!("{SERVER4}/24"), "dev", "r0"]);
        client.ip(&[
            "addr",
            "add",
            &format!("{CLIENT6}/64"),
            "dev",
            "c0",
            "nodad",
        ]);
        rs.ip(&[
            "addr",
            "add",
            &format!("{SERVER6}/64"),
            "dev",
            "r0",
            "nodad",
        ]);
        Self { rs, client }
    }

    /// `vipflip real-server ARGS…` inside the real server's namespace.
    fn real_server(&self, args: &[&str]) -> Output {
        self.rs
            .command(vipflip_bin().to_str().expect("a UTF-8 path"))
            .arg("real-server")
            .args(args)
            .output()
            .expect("running vipflip real-server")
    }

    /// Like [`Self::real_server`], which must succeed; its stdout.
    fn real_server_ok(&self, args: &[&str]) -> String {
        let out = self.real_server(args);
        assert!(
            out.status.success(),
            "vipflip real-server {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn lo(&self) -> String {
        String::from_utf8_lossy(&self.rs.ip(&["addr", "show", "dev", "lo"]).stdout).into_owned()
    }

    fn sysctl(&self, key: &str) -> String {
        let out = self
            .rs
            .command("cat")
            .arg(format!("/proc/sys/{}", key.replace('.', "/")))
            .output()
            .expect("reading a sysctl");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

#[test]
#[ignore = "needs root"]
fn dr_apply_is_idempotent_repairs_drift_and_remove_takes_the_vips_away() {
    let pair = Pair::new();
    pair.client.ip(&["route", "add", VIP4, "via", SERVER4]);
    pair.client
        .ip(&["-6", "route", "add", VIP6, "via", SERVER6]);
    assert!(!pair.client.ping_once(VIP4), "answered before --apply");
    let args = ["--forward", "dr", "--vip", VIP4, "--vip", VIP6, "--apply"];

    let first = pair.real_server_ok(&args);
    assert!(first.ends_with("4 steps changed\n"), "{first}");
    let lo = pair.lo();
    assert!(lo.contains(&format!("inet {VIP4}/32 ")), "{lo}");
    assert!(lo.contains(&format!("inet6 {VIP6}/128 ")), "{lo}");
    assert_eq!(pair.sysctl("net.ipv4.conf.all.arp_ignore"), "1");
    assert_eq!(pair.sysctl("net.ipv4.conf.all.arp_announce"), "2");
    assert!(pair.client.ping_once(VIP4), "the VIP on lo answers");
    assert!(pair.client.ping_once(VIP6), "the IPv6 VIP on lo answers");

    let second = pair.real_server_ok(&args);
    assert_eq!(
        second,
        "already  sysctl -w net.ipv4.conf.all.arp_announce=2\n\
         already  sysctl -w net.ipv4.conf.all.arp_ignore=1\n\
         already  ip addr add 192.0.2.100/32 dev lo\n\
         already  ip -6 addr add 2001:db8::100/128 dev lo nodad preferred_lft 0\n\
         0 steps changed\n"
    );
    assert_eq!(pair.lo(), lo, "a second --apply changed lo");

    // arp_ignore is what keeps the real server from claiming the VIP on the link: undone
    // by hand, the client resolves the VIP on-link to the real server; --apply puts it back.
    pair.client.ip(&["route", "replace", VIP4, "dev", "c0"]);
    pair.rs.sysctl("net.ipv4.conf.all.arp_ignore", "0");
    assert!(
        pair.client.ping_once(VIP4),
        "ARP answered with arp_ignore=0"
    );
    let repaired = pair.real_server_ok(&args);
    assert!(
        repaired.contains("applied  sysctl -w net.ipv4.conf.all.arp_ignore=1\n")
            && repaired.ends_with("1 step changed\n"),
        "{repaired}"
    );
    pair.client.ip(&["neigh", "flush", "dev", "c0"]);
    assert!(
        !pair.client.ping_once(VIP4),
        "ARP answered with arp_ignore=1"
    );
    pair.client.ip(&["route", "replace", VIP4, "via", SERVER4]);

    let removed =
        pair.real_server_ok(&["--forward", "dr", "--vip", VIP4, "--vip", VIP6, "--remove"]);
    assert_eq!(
        removed,
        "removed  ip -6 addr del 2001:db8::100/128 dev lo\n\
         removed  ip addr del 192.0.2.100/32 dev lo\n\
         left     sysctl -w net.ipv4.conf.all.arp_ignore=1\n\
         left     sysctl -w net.ipv4.conf.all.arp_announce=2\n\
         2 steps changed\n"
    );
    let lo = pair.lo();
    assert!(!lo.contains(VIP4) && !lo.contains(VIP6), "{lo}");
    assert_eq!(pair.sysctl("net.ipv4.conf.all.arp_ignore"), "1", "left");
    assert!(!pair.client.ping_once(VIP4), "answered after --remove");
    let again = pair.real_server_ok(&["--forward", "dr", "--vip", VIP4, "--vip", VIP6, "--remove"]);
    assert!(again.ends_with("0 steps changed\n"), "{again}");
}

/// Whether `ip ARGS…` succeeds in a namespace of its own: what this kernel has (loading
/// its module if it can).
fn kernel_takes(args: &[&str]) -> bool {
    let probe = Netns::new("vfrs-p");
    probe
        .command("ip")
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

#[test]
#[ignore = "needs root"]
fn ipip_and_gue_decapsulate_with_the_stock_kernel_or_fail_naming_the_step() {
    let pair = Pair::new();
    let ipip = ["--forward", "ipip", "--vip", VIP4, "--apply"];
    if !kernel_takes(&["link", "add", "vfprobe", "type", "ipip"]) {
        // A kernel without IPIP (CONFIG_NET_IPIP unset, or no module to load): the first
        // step fails, names itself and the OS error, and nothing after it is applied.
        let out = pair.real_server(&ipip);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with("vipflip: `modprobe ipip`: "), "{stderr}");
        assert!(
            !pair.lo().contains(VIP4),
            "the VIP was added after a failed step"
        );
        return;
    }
    let first = pair.real_server_ok(&ipip);
    assert!(first.contains("applied  ip link set tunl0 up\n"), "{first}");
    let tunl0 =
        String::from_utf8_lossy(&pair.rs.ip(&["link", "show", "tunl0"]).stdout).into_owned();
    assert!(tunl0.contains(",UP"), "{tunl0}");
    assert!(pair.lo().contains(&format!("inet {VIP4}/32 ")));
    let second = pair.real_server_ok(&ipip);
    assert!(second.ends_with("0 steps changed\n"), "{second}");

    // The client wraps its ping to the VIP in IPIP to the real server, as the director
    // does; the answer comes straight back from the VIP (no tunnel on the way back).
    pair.client.ip(&[
        "link", "add", "vft", "type", "ipip", "local", CLIENT4, "remote", SERVER4,
    ]);
    pair.client.ip(&["link", "set", "vft", "up"]);
    pair.client
        .ip(&["route", "add", VIP4, "dev", "vft", "src", CLIENT4]);
    assert!(
        pair.client.ping_once(VIP4),
        "the IPIP-wrapped ping went unanswered"
    );

    let gue = [
        "--forward",
        "gue",
        "--gue-port",
        GUE_PORT,
        "--vip",
        VIP4,
        "--apply",
    ];
    if !kernel_takes(&["fou", "show"]) {
        // IPIP without fou (CONFIG_NET_FOU unset): GUE's first step fails and says so.
        let out = pair.real_server(&gue);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with("vipflip: `modprobe fou`: "), "{stderr}");
        return;
    }
    let applied = pair.real_server_ok(&gue);
    assert!(
        applied.contains("applied  ip fou add port 6080 gue\n"),
        "{applied}"
    );
    let listed = String::from_utf8_lossy(&pair.rs.ip(&["fou", "show"]).stdout).into_owned();
    assert!(listed.contains("port 6080 gue"), "{listed}");
    assert!(pair.real_server_ok(&gue).ends_with("0 steps changed\n"));
    // `encap fou` puts the inner IPv4 packet right after UDP: GUE variant 1, what the
    // director sends.
    pair.client.ip(&["route", "del", VIP4]);
    pair.client.ip(&[
        "link",
        "add",
        "vfg",
        "type",
        "ipip",
        "local",
        CLIENT4,
        "remote",
        SERVER4,
        "encap",
        "fou",
        "encap-sport",
        "auto",
        "encap-dport",
        GUE_PORT,
    ]);
    pair.client.ip(&["link", "set", "vfg", "up"]);
    pair.client
        .ip(&["route", "add", VIP4, "dev", "vfg", "src", CLIENT4]);
    pair.rs.ip(&["link", "set", "tunl0", "down"]);
    assert!(!pair.client.ping_once(VIP4), "decapsulated with tunl0 down");
    pair.real_server_ok(&gue);
    assert!(
        pair.client.ping_once(VIP4),
        "the GUE-wrapped ping went unanswered"
    );

    let removed = pair.real_server_ok(&[
        "--forward",
        "gue",
        "--gue-port",
        GUE_PORT,
        "--vip",
        VIP4,
        "--remove",
    ]);
    assert!(
        removed.contains("removed  ip fou del port 6080\n"),
        "{removed}"
    );
    let listed = String::from_utf8_lossy(&pair.rs.ip(&["fou", "show"]).stdout).into_owned();
    assert!(!listed.contains("port 6080"), "{listed}");
    assert!(!pair.lo().contains(VIP4));
    assert!(!pair.client.ping_once(VIP4), "answered after --remove");
}

#[test]
fn the_printed_plan_is_a_shell_script_and_bad_flags_are_refused() {
    let printed = std::process::Command::new(vipflip_bin())
        .args(["real-server", "--forward", "gue", "--gue-port", GUE_PORT])
        .args(["--vip", VIP4, "--vip", VIP6, "--outer", "ipv4"])
        .output()
        .expect("running vipflip real-server");
    assert!(printed.status.success());
    let script = String::from_utf8_lossy(&printed.stdout).into_owned();
    assert!(script.contains("\nip fou add port 6080 gue\n"), "{script}");
    let mut check = std::process::Command::new("sh")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("running sh -n");
    std::io::Write::write_all(&mut check.stdin.take().expect("stdin"), script.as_bytes())
        .expect("writing to sh");
    assert!(
        check.wait().expect("sh -n").success(),
        "sh -n refused:\n{script}"
    );

    for (args, error) in [
        (
            &["--forward", "dr", "--gue-port", "6080", "--vip", VIP4][..],
            "vipflip: --gue-port goes with --forward gue only\n",
        ),
        (
            &["--forward", "dr", "--outer", "ipv6", "--vip", VIP4][..],
            "vipflip: --outer is the family of the real server's own address, which only \
             tunnels use; with --forward dr the packet is not wrapped\n",
        ),
    ] {
        let out = std::process::Command::new(vipflip_bin())
            .arg("real-server")
            .args(args)
            .output()
            .expect("running vipflip real-server");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), error);
    }
}
