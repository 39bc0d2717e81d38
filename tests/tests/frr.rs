//! Interop with FRR's vrrpd (Debian's FRR 8.4.4): vipflip and FRR in one VRRP group, v3 over
//! IPv4 and IPv6 and v2 over IPv4, each with vipflip as master and with FRR as master. One
//! master at a time, the higher priority wins, the backup takes over within
//! `Master_Down_Interval` when the master's link is cut, and neither side complains about
//! checksums or invalid adverts. Needs root and FRR (`cargo xtask setup` installs it).
//!
//! How FRR runs here (checked with FRR 8.4.4 on Debian 12; nothing in `/etc/frr` is used or
//! changed, and the `daemons` file does not matter because the daemons are started by hand):
//!
//! - FRR does not create the virtual MAC interface; it finds it by its MAC (and says "no
//!   interface found w/ MAC …" until it exists). So before FRR starts, its router gets a
//!   macvlan `vrrp4-51` (IPv4) or `vrrp6-51` (IPv6) on the lab interface, MAC
//!   `00:00:5e:00:01:33` / `00:00:5e:00:02:33` (VRID 51), mode `bridge` (so the parent still
//!   receives the peers' adverts while the macvlan is in protodown), `addrgenmode random` (FRR
//!   sends IPv6 adverts from the macvlan's link-local, which must not be the EUI-64 one every
//!   FRR router of the VRID would share), with the VIP on it and not on the parent.
//! - FRR's backup state is `protodown on` on the macvlan (zebra does it at vrrpd's request),
//!   but the VIP stays a local address; with the default `arp_ignore=0` the parent interface
//!   would answer ARP for the VIP with its own MAC while FRR is backup. The FRR router gets
//!   `arp_ignore=1` (answer only for addresses on the receiving interface), as any virtual-MAC
//!   deployment needs, so only the master answers.
//! - zebra must run (vrrpd asks it for interfaces and protodown). Each test gets its own path
//!   space `-N P`: `/var/run/frr/P` owned by `frr:frr` (the daemons drop to that user and put
//!   their vty sockets, pid files and `zserv.api` there). Both daemons run in the foreground
//!   inside the namespace with `-f frr.conf --log stdout --log-level debug -P 0` (no TCP vty),
//!   zebra first; vrrpd is started once `zserv.api` exists. One config file serves both: zebra
//!   logs "No such command" for the `vrrp` lines and ignores them.
//! - vrrpd reports a datagram it rejects (bad checksum, TTL, size, VRID, v2 interval)
//!   only with `debug vrrp packets` / `debug vrrp protocol` ("Datagram invalid: Bad VRRP
//!   checksum …", "Datagram has N addresses, but this VRRP instance has M"), so the config
//!   turns both on; its log then also decodes every advert it accepted ("Received VRRP
//!   Advertisement from …, checksum XXXX"). FRR 8.4.4 has no checksum knob: it sends and
//!   expects the RFC 5798 form (IPv4 pseudo-header included), vipflip's default.
//! - FRR's state: its log ("[IPv4] Backup -> Master"); `vtysh -N P -c 'show vrrp'` goes into
//!   failure messages.
//! - Clean-up: a guard kills vrrpd and zebra and removes `/var/run/frr/P` on drop, panics
//!   included (and removing the namespace kills anything left in it).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use vipflip_integration_tests::{
    Host, KillOnDrop as Proc,
    interop::{Case, Fam, Interop, Peer, VRID},
    scene::Prober,
    unique, wait_for,
};

const PROBE: Prober = Prober(env!("CARGO_BIN_EXE_vipflip-probe"));
const FRR_DIR: &str = "/usr/lib/frr";

/// zebra and vrrpd in one namespace under their own path space. Dropping it kills both and
/// removes the path space's run directory.
struct Frr {
    ns: String,
    path_space: String,
    run_dir: PathBuf,
    log: PathBuf,
    /// FRR's tag for the address family of the case in its log lines.
    tag: &'static str,
    daemons: Vec<Proc>,
}

impl Drop for Frr {
    fn drop(&mut self) {
        // vrrpd first: it talks to zebra while it shuts down.
        while let Some(daemon) = self.daemons.pop() {
            drop(daemon);
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

impl Frr {
    /// Starts zebra, then vrrpd, in `host`'s namespace with `conf`; logs go to `dir`.
    fn run(host: &Host, conf: &Path, dir: &Path, tag: &'static str) -> Self {
        let path_space = unique("vft");
        let run_dir = Path::new("/var/run/frr").join(&path_space);
        let mut frr = Self {
            ns: host.ns.name().to_owned(),
            path_space,
            run_dir,
            log: dir.join("vrrpd.log"),
            tag,
            daemons: Vec::new(),
        };
        std::fs::create_dir_all(&frr.run_dir).expect("create the FRR run directory");
        let chown = Command::new("chown")
            .arg("frr:frr")
            .arg(&frr.run_dir)
            .status()
            .expect("run chown");
        assert!(chown.success(), "chown frr:frr {}", frr.run_dir.display());
        let daemon = |name: &str, log: PathBuf| {
            let log = std::fs::File::create(log).expect("create an FRR log");
            host.ns
                .command(&format!("{FRR_DIR}/{name}"))
                .args(["-N", &frr.path_space, "-f"])
                .arg(conf)
                .arg("-i")
                .arg(frr.run_dir.join(format!("{name}.pid")))
                .args(["-P", "0", "--log", "stdout", "--log-level", "debug"])
                .stdin(Stdio::null())
                .stderr(log.try_clone().expect("clone a log handle"))
                .stdout(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
        };
        frr.daemons
            .push(Proc(daemon("zebra", dir.join("zebra.log"))));
        assert!(
            wait_for(Duration::from_secs(10), || frr
                .run_dir
                .join("zserv.api")
                .exists()),
            "zebra never opened its API socket:\n{}",
            std::fs::read_to_string(dir.join("zebra.log")).unwrap_or_default()
        );
        frr.daemons.push(Proc(daemon("vrrpd", frr.log.clone())));
        frr
    }

    /// `show vrrp` from vtysh, for failure messages.
    fn show(&self) -> String {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "vtysh", "-N", &self.path_space])
            .args(["-c", "show vrrp"])
            .output()
            .map_or_else(
                |e| format!("vtysh: {e}"),
                |o| String::from_utf8_lossy(&o.stdout).into_owned(),
            )
    }
}

impl Peer for Frr {
    const NAME: &'static str = "FRR";
    const MASTER: &'static str = "Master";
    const BACKUP: &'static str = "Backup";

    fn installed() -> bool {
        ["zebra", "vrrpd"]
            .iter()
            .all(|d| Path::new(FRR_DIR).join(d).exists())
            && Command::new("vtysh").arg("--version").output().is_ok()
    }

    fn start(case: &Case, host: &Host, priority: u8, dir: &Path) -> Self {
        frr_macvlan(host, case);
        let ip_keyword = match case.family {
            Fam::V4 => "ip",
            Fam::V6 => "ipv6",
        };
        let conf = dir.join("frr.conf");
        std::fs::write(
            &conf,
            format!(
                "debug vrrp protocol\ndebug vrrp packets\n!\ninterface {iface}\n\
                 \x20vrrp {VRID} version {version}\n vrrp {VRID} priority {priority}\n\
                 \x20vrrp {VRID} advertisement-interval {interval}\n vrrp {VRID} {ip_keyword} {vip}\n",
                iface = host.iface,
                version = case.version(),
                interval = case.interval_ms(),
                vip = case.vip(),
            ),
        )
        .unwrap();
        let tag = match case.family {
            Fam::V4 => "[IPv4]",
            Fam::V6 => "[IPv6]",
        };
        Frr::run(host, &conf, dir, tag)
    }

    /// The state of the case's router from vrrpd's last "X -> Y" line for its family.
    fn state(&self) -> Option<String> {
        let log = self.log();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains(self.tag) && l.contains(" -> "))?;
        Some(line.rsplit(" -> ").next()?.trim().to_owned())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn describe(&self) -> String {
        format!("vrrpd:\n{}\nshow vrrp:\n{}", self.log(), self.show())
    }
}

/// The macvlan FRR looks for: the virtual MAC of `case`'s family on `host`'s lab interface,
/// carrying the VIP.
fn frr_macvlan(host: &Host, case: &Case) {
    let (name, family_byte) = match case.family {
        Fam::V4 => (format!("vrrp4-{VRID}"), 1),
        Fam::V6 => (format!("vrrp6-{VRID}"), 2),
    };
    let mac = format!("00:00:5e:00:{family_byte:02x}:{VRID:02x}");
    host.ns.ip(&[
        "link",
        "add",
        &name,
        "link",
        &host.iface,
        "address",
        &mac,
        "type",
        "macvlan",
        "mode",
        "bridge",
    ]);
    // Set apart: iproute2 6.1 refuses `addrgenmode` within `ip link add` ("Address family not
    // supported by protocol").
    host.ns.ip(&["link", "set", &name, "addrgenmode", "random"]);
    let vip = format!("{}/{}", case.vip(), case.prefix());
    match case.family {
        Fam::V4 => host.ns.ip(&["addr", "add", &vip, "dev", &name]),
        Fam::V6 => host.ns.ip(&["addr", "add", &vip, "dev", &name, "nodad"]),
    };
    host.ns.ip(&["link", "set", &name, "up"]);
    // Only the interface holding an address answers ARP for it: the parent stays quiet about
    // the VIP while the macvlan is in protodown (FRR's backup state).
    host.ns.sysctl("net.ipv4.conf.all.arp_ignore", "1");
}

/// Router 0 runs FRR, router 1 vipflip.
fn check(case: Case) {
    // Debug for vipflip itself: it reports discarded adverts at that level.
    let run = Interop::<Frr>::start(case, PROBE, "info,vipflip=debug");
    let what = &run.what;
    run.await_roles();
    // Stable: one master at a time, for a few intervals, and no transition in between.
    let transitions = |log: String| log.lines().filter(|l| l.contains(" -> ")).count();
    let before = (transitions(run.vipflip.log()), transitions(run.peer.log()));
    run.hold();
    assert_eq!(
        before,
        (transitions(run.vipflip.log()), transitions(run.peer.log())),
        "{what}: a role changed while settled\n{}",
        run.logs()
    );
    run.assert_roles();
    if run.case.vipflip_master {
        assert!(
            run.peer.log().contains("Received VRRP Advertisement from"),
            "{what}: FRR never accepted one of vipflip's adverts\n{}",
            run.logs()
        );
    }

    // Cut the master's link: the backup takes over.
    run.cut_master();
    if run.case.vipflip_master {
        assert_eq!(
            run.peer.state().as_deref(),
            Some("Master"),
            "{what}: FRR did not take over\n{}",
            run.logs()
        );
    } else {
        assert_eq!(
            run.vipflip_state().as_deref(),
            Some("Master"),
            "{what}: vipflip did not take over\n{}",
            run.logs()
        );
    }
    quiet_logs(&run);
}

/// Neither side complained about the other's adverts: checksums, invalid datagrams, address
/// lists, discards.
fn quiet_logs(run: &Interop<Frr>) {
    let what = &run.what;
    // vrrpd's decode of each advert it accepted ends in "checksum XXXX": not a complaint.
    let frr_complaints = complaints(&run.peer.log(), Some("received vrrp advertisement from"));
    assert!(
        frr_complaints.is_empty(),
        "{what}: vrrpd complained:\n{}\n{}",
        frr_complaints.join("\n"),
        run.logs()
    );
    // Once its link is cut, a master vipflip cannot send its IPv6 adverts from the link-local
    // address that went with the link ("sendmsg: Invalid argument"): not about FRR.
    let vf_benign = run.case.vipflip_master.then_some("sendmsg");
    let vf_complaints = complaints(&run.vipflip.log(), vf_benign);
    assert!(
        vf_complaints.is_empty(),
        "{what}: vipflip complained:\n{}\n{}",
        vf_complaints.join("\n"),
        run.logs()
    );
    let frr_log = run.peer.log();
    assert!(
        !frr_log.contains("addresses, but this VRRP instance has"),
        "{what}: FRR and vipflip disagree on the address list:\n{frr_log}"
    );
    let vf_log = run.vipflip.log().to_lowercase();
    assert!(
        !vf_log.contains("discarded"),
        "{what}: vipflip discarded FRR's adverts:\n{vf_log}"
    );
}

/// The lines of `log` that mention "checksum" or "invalid", except those containing `benign`
/// (all compared in lower case).
fn complaints(log: &str, benign: Option<&str>) -> Vec<String> {
    log.to_lowercase()
        .lines()
        .filter(|l| l.contains("checksum") || l.contains("invalid"))
        .filter(|l| benign.is_none_or(|b| !l.contains(b)))
        .map(str::to_owned)
        .collect()
}

vipflip_integration_tests::interop_tests! {
    Frr, check;
    v3_ipv4_vipflip_master: V3 V4 true;
    v3_ipv4_frr_master: V3 V4 false;
    v3_ipv6_vipflip_master: V3 V6 true;
    v3_ipv6_frr_master: V3 V6 false;
    v2_ipv4_vipflip_master: V2 V4 true;
    v2_ipv4_frr_master: V2 V4 false;
}
