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
    Host, KillOnDrop as Proc, Lab, root_or_skip, serial, summary_number as field, unique,
    vipflip_bin, wait_for,
};

const PROBE: &str = env!("CARGO_BIN_EXE_vipflip-probe");
const FRR_DIR: &str = "/usr/lib/frr";
const VRID: u8 = 51;

#[derive(Clone, Copy, Debug)]
enum Version {
    V2,
    V3,
}

#[derive(Clone, Copy, Debug)]
enum Fam {
    V4,
    V6,
}

struct Case {
    version: Version,
    family: Fam,
    /// Whether vipflip has the higher priority (and so becomes master).
    vipflip_master: bool,
}

impl Case {
    fn vip(&self) -> &'static str {
        match self.family {
            Fam::V4 => "192.0.2.100",
            Fam::V6 => "2001:db8::100",
        }
    }

    fn prefix(&self) -> u8 {
        match self.family {
            Fam::V4 => 24,
            Fam::V6 => 64,
        }
    }

    /// FRR's tag for the address family in its log lines.
    fn frr_tag(&self) -> &'static str {
        match self.family {
            Fam::V4 => "[IPv4]",
            Fam::V6 => "[IPv6]",
        }
    }

    /// Advert interval in ms: v2 carries whole seconds.
    fn interval_ms(&self) -> u64 {
        match self.version {
            Version::V2 => 1000,
            Version::V3 => 100,
        }
    }

    /// `Master_Down_Interval` of the backup (priority 100), in µs (RFC 5798 §6.1 / RFC 3768).
    /// FRR computes it in whole centiseconds, which only makes it shorter.
    fn mdi_us(&self) -> u64 {
        let interval = self.interval_ms() * 1000;
        match self.version {
            Version::V3 => 3 * interval + 156 * interval / 256,
            Version::V2 => 3 * interval + 156 * 1_000_000 / 256,
        }
    }
}

/// zebra and vrrpd in one namespace under their own path space. Dropping it kills both and
/// removes the path space's run directory.
struct Frr {
    ns: String,
    path_space: String,
    run_dir: PathBuf,
    log: PathBuf,
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
    fn start(host: &Host, conf: &Path, dir: &Path) -> Self {
        let path_space = unique("vft");
        let run_dir = Path::new("/var/run/frr").join(&path_space);
        let mut frr = Self {
            ns: host.ns.name().to_owned(),
            path_space,
            run_dir,
            log: dir.join("vrrpd.log"),
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

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The state of the `tag` (`[IPv4]`/`[IPv6]`) router from vrrpd's last "X -> Y" line.
    fn state(&self, tag: &str) -> Option<String> {
        let log = self.log();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains(tag) && l.contains(" -> "))?;
        Some(line.rsplit(" -> ").next()?.trim().to_owned())
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

struct Run {
    // Fields drop in order: FRR's daemons and run directory go before the namespaces.
    frr: Frr,
    _vipflip: Proc,
    _responders: Vec<Proc>,
    lab: Lab,
    dir: PathBuf,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Run {
    fn vipflip_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("vipflip.log")).unwrap_or_default()
    }

    fn vipflip_state(&self) -> Option<String> {
        let out = Command::new(vipflip_bin())
            .args(["status", "--json", "--control-socket"])
            .arg(self.dir.join("vipflip.sock"))
            .output()
            .ok()?;
        let status = String::from_utf8_lossy(&out.stdout).into_owned();
        let at = status.find("\"state\": \"")? + "\"state\": \"".len();
        Some(status[at..].split('"').next()?.to_owned())
    }

    /// Both logs and FRR's view, for failure messages.
    fn logs(&self) -> String {
        format!(
            "vipflip:\n{}\nvrrpd:\n{}\nshow vrrp:\n{}",
            self.vipflip_log(),
            self.frr.log(),
            self.frr.show()
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
fn start(case: &Case) -> Run {
    let lab = Lab::new(2);
    let dir = std::env::temp_dir().join(unique("vipflip-frr-"));
    std::fs::create_dir_all(&dir).unwrap();
    let (frr_prio, vf_prio) = if case.vipflip_master {
        (100, 200)
    } else {
        (200, 100)
    };
    let (fr, vf) = (&lab.routers[0], &lab.routers[1]);
    let version = match case.version {
        Version::V2 => 2,
        Version::V3 => 3,
    };
    frr_macvlan(fr, case);
    let ip_keyword = match case.family {
        Fam::V4 => "ip",
        Fam::V6 => "ipv6",
    };
    let frr_conf = dir.join("frr.conf");
    std::fs::write(
        &frr_conf,
        format!(
            "debug vrrp protocol\ndebug vrrp packets\n!\ninterface {iface}\n\
             \x20vrrp {VRID} version {version}\n vrrp {VRID} priority {frr_prio}\n\
             \x20vrrp {VRID} advertisement-interval {interval}\n vrrp {VRID} {ip_keyword} {vip}\n",
            iface = fr.iface,
            interval = case.interval_ms(),
            vip = case.vip(),
        ),
    )
    .unwrap();
    let frr = Frr::start(fr, &frr_conf, &dir);
    let vf_conf = dir.join("vipflip.toml");
    std::fs::write(
        &vf_conf,
        format!(
            "[global]\nrouter_id = \"vf\"\npin_dir = \"{pins}\"\ncontrol_socket = \"{dir}/vipflip.sock\"\n\n\
             [[instance]]\nname = \"VI_1\"\ninterface = \"{iface}\"\nvrid = {VRID}\nversion = {version}\n\
             priority = {vf_prio}\nadvert_interval = \"{interval}ms\"\nvirtual_ips = [\"{vip}/{prefix}\"]\n",
            pins = lab.bpffs.path().join("vf").display(),
            dir = dir.display(),
            iface = vf.iface,
            interval = case.interval_ms(),
            vip = case.vip(),
            prefix = case.prefix(),
        ),
    )
    .unwrap();
    let vipflip = vf
        .ns
        .command(vipflip_bin().to_str().unwrap())
        .args(["run", "--config"])
        .arg(&vf_conf)
        // Debug for vipflip itself: it reports discarded adverts at that level.
        .env("RUST_LOG", "info,vipflip=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("vipflip.log")).unwrap())
        .spawn()
        .expect("spawn vipflip run");
    let responders = [(fr, "frr"), (vf, "vipflip")]
        .into_iter()
        .map(|(host, name)| {
            Proc(
                host.ns
                    .command(PROBE)
                    .args(["serve", "--port", "7777", "--name", name])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("spawn vipflip-probe serve"),
            )
        })
        .collect();
    Run {
        frr,
        _vipflip: Proc(vipflip),
        _responders: responders,
        lab,
        dir,
    }
}

/// Roles settle by priority and stay put for a few intervals: one master.
fn settle(run: &Run, case: &Case, what: &str) {
    let tag = case.frr_tag();
    let (vf_role, frr_expected) = if case.vipflip_master {
        ("Master", "Backup")
    } else {
        ("Backup", "Master")
    };
    let settled = wait_for(Duration::from_secs(15), || {
        run.vipflip_state().as_deref() == Some(vf_role)
            && run.frr.state(tag).as_deref() == Some(frr_expected)
    });
    assert!(
        settled,
        "{what}: roles never settled (vipflip {:?}, FRR {:?})\n{}",
        run.vipflip_state(),
        run.frr.state(tag),
        run.logs()
    );
    // Stable: one master at a time, for a few intervals, and no transition in between.
    let transitions = |log: String| log.lines().filter(|l| l.contains(" -> ")).count();
    let before = (transitions(run.vipflip_log()), transitions(run.frr.log()));
    std::thread::sleep(Duration::from_millis(5 * case.interval_ms()));
    assert_eq!(
        before,
        (transitions(run.vipflip_log()), transitions(run.frr.log())),
        "{what}: a role changed while settled\n{}",
        run.logs()
    );
    assert_eq!(
        run.vipflip_state().as_deref(),
        Some(vf_role),
        "{what}: vipflip changed role\n{}",
        run.logs()
    );
    assert_eq!(
        run.frr.state(tag).as_deref(),
        Some(frr_expected),
        "{what}: FRR changed role\n{}",
        run.logs()
    );
    if case.vipflip_master {
        assert!(
            run.frr.log().contains("Received VRRP Advertisement from"),
            "{what}: FRR never accepted one of vipflip's adverts\n{}",
            run.logs()
        );
    }
}

fn check(case: &Case) {
    let run = start(case);
    let what = format!(
        "{case:?}",
        case = (case.version, case.family, case.vipflip_master)
    );
    settle(&run, case, &what);
    let tag = case.frr_tag();

    // Cut the master's link: the backup takes over.
    let duration_ms = u32::try_from(6 * case.mdi_us() / 1000).unwrap();
    let probe = run
        .lab
        .client
        .ns
        .command(PROBE)
        .args([
            "probe",
            "--target",
            case.vip(),
            "--port",
            "7777",
            "--interval-us",
            "1000",
        ])
        .args(["--duration-ms", &duration_ms.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(u64::from(duration_ms) / 3));
    let master = if case.vipflip_master {
        &run.lab.routers[1]
    } else {
        &run.lab.routers[0]
    };
    master.ns.ip(&["link", "set", &master.iface, "down"]);
    let out = probe.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    eprintln!(
        "{what}: master's link cut, seen by the client: {summary} (Master_Down_Interval {} µs)",
        case.mdi_us()
    );
    let new_master = if case.vipflip_master {
        "frr"
    } else {
        "vipflip"
    };
    assert!(
        summary.contains(&format!("\"{new_master}\":")),
        "{what}: {new_master} never answered: {summary}\n{}",
        run.logs()
    );
    let outage = field(&summary, "longest_outage_us");
    assert!(
        outage <= case.mdi_us() + 20_000,
        "{what}: outage {outage} µs > Master_Down_Interval + 20 ms: {summary}\n{}",
        run.logs()
    );
    if case.vipflip_master {
        assert_eq!(
            run.frr.state(tag).as_deref(),
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
    quiet_logs(&run, case, &what);
}

/// Neither side complained about the other's adverts: checksums, invalid datagrams, address
/// lists, discards.
fn quiet_logs(run: &Run, case: &Case, what: &str) {
    // vrrpd's decode of each advert it accepted ends in "checksum XXXX": not a complaint.
    let frr_complaints = complaints(&run.frr.log(), Some("received vrrp advertisement from"));
    assert!(
        frr_complaints.is_empty(),
        "{what}: vrrpd complained:\n{}\n{}",
        frr_complaints.join("\n"),
        run.logs()
    );
    // Once its link is cut, a master vipflip cannot send its IPv6 adverts from the link-local
    // address that went with the link ("sendmsg: Invalid argument"): not about FRR.
    let vf_benign = case.vipflip_master.then_some("sendmsg");
    let vf_complaints = complaints(&run.vipflip_log(), vf_benign);
    assert!(
        vf_complaints.is_empty(),
        "{what}: vipflip complained:\n{}\n{}",
        vf_complaints.join("\n"),
        run.logs()
    );
    let frr_log = run.frr.log();
    assert!(
        !frr_log.contains("addresses, but this VRRP instance has"),
        "{what}: FRR and vipflip disagree on the address list:\n{frr_log}"
    );
    let vf_log = run.vipflip_log().to_lowercase();
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

fn frr_installed(test: &str) -> bool {
    let present = ["zebra", "vrrpd"]
        .iter()
        .all(|d| Path::new(FRR_DIR).join(d).exists())
        && Command::new("vtysh").arg("--version").output().is_ok();
    if present {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: FRR is missing; cargo xtask setup installs it"
    );
    eprintln!("SKIPPED {test}: FRR is not installed (cargo xtask setup installs it)");
    false
}

macro_rules! interop {
    ($name:ident, $version:expr, $family:expr, $vipflip_master:expr) => {
        #[test]
        fn $name() {
            if !root_or_skip(stringify!($name)) || !frr_installed(stringify!($name)) {
                return;
            }
            let _serial = serial();
            check(&Case {
                version: $version,
                family: $family,
                vipflip_master: $vipflip_master,
            });
        }
    };
}

interop!(v3_ipv4_vipflip_master, Version::V3, Fam::V4, true);
interop!(v3_ipv4_frr_master, Version::V3, Fam::V4, false);
interop!(v3_ipv6_vipflip_master, Version::V3, Fam::V6, true);
interop!(v3_ipv6_frr_master, Version::V3, Fam::V6, false);
interop!(v2_ipv4_vipflip_master, Version::V2, Fam::V4, true);
interop!(v2_ipv4_frr_master, Version::V2, Fam::V4, false);
