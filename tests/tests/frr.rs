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
//! - zebra must run (vrrpd asks it for interfaces and protodown). Both run as
//!   [`vipflip_integration_tests::frr::Daemons`] (their own path space, in the foreground,
//!   killed with their run directory removed on drop, panics included), zebra first; one
//!   config file serves both (`-f`): zebra logs "No such command" for the `vrrp` lines and
//!   ignores them.
//! - vrrpd reports a datagram it rejects (bad checksum, TTL, size, VRID, v2 interval)
//!   only with `debug vrrp packets` / `debug vrrp protocol` ("Datagram invalid: Bad VRRP
//!   checksum …", "Datagram has N addresses, but this VRRP instance has M"), so the config
//!   turns both on; its log then also decodes every advert it accepted ("Received VRRP
//!   Advertisement from …, checksum XXXX"). FRR 8.4.4 has no checksum knob: it sends and
//!   expects the RFC 5798 form (IPv4 pseudo-header included), vipflip's default.
//! - FRR's state: its log ("[IPv4] Backup -> Master"); `show vrrp` goes into failure
//!   messages.

use std::path::Path;

use vipflip_integration_tests::{
    Host,
    frr::Daemons,
    interop::{Case, Fam, Interop, Peer, VRID},
    scene::Prober,
};

const PROBE: Prober = Prober(env!("CARGO_BIN_EXE_vipflip-probe"));

/// zebra and vrrpd in one namespace.
struct Frr {
    daemons: Daemons,
    /// FRR's tag for the address family of the case in its log lines.
    tag: &'static str,
}

impl Peer for Frr {
    const NAME: &'static str = "FRR";
    const MASTER: &'static str = "Master";
    const BACKUP: &'static str = "Backup";

    fn installed() -> bool {
        Daemons::installed(&["zebra", "vrrpd"])
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
        Frr {
            daemons: Daemons::start(&host.ns, &["zebra", "vrrpd"], Some(&conf), dir),
            tag,
        }
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
        self.daemons.log("vrrpd")
    }

    fn describe(&self) -> String {
        format!(
            "vrrpd:\n{}\nshow vrrp:\n{}",
            self.log(),
            self.daemons.show("show vrrp")
        )
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
