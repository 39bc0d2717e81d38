//! Interop with keepalived (Debian's 2.2.7): vipflip and keepalived in one VRRP group, v2 and
//! v3, IPv4 and IPv6, each as master and as backup. One master at a time, the higher priority
//! wins, the backup takes over within `Master_Down_Interval` when the master's link is cut,
//! and neither side complains about checksums. Needs root and keepalived (`cargo xtask setup`
//! installs it).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use vipflip_integration_tests::{
    Host, KillOnDrop as Proc,
    interop::{Case, Interop, Peer, VRID, Version},
    scene::Prober,
};

const PROBE: Prober = Prober(env!("CARGO_BIN_EXE_vipflip-probe"));

/// keepalived in the foreground, its output in a log.
struct Keepalived {
    _proc: Proc,
    log: PathBuf,
}

impl Peer for Keepalived {
    const NAME: &'static str = "keepalived";
    const MASTER: &'static str = "MASTER";
    const BACKUP: &'static str = "BACKUP";

    fn installed() -> bool {
        Command::new("keepalived").arg("--version").output().is_ok()
    }

    fn start(case: &Case, host: &Host, priority: u8, dir: &Path) -> Self {
        let version = case.version();
        let advert_int = match case.version {
            Version::V2 => "1".to_owned(),
            Version::V3 => format!(
                "{:.1}",
                Duration::from_millis(case.interval_ms()).as_secs_f64()
            ),
        };
        let conf = dir.join("keepalived.conf");
        std::fs::write(
            &conf,
            format!(
                "global_defs {{\n  router_id ka\n  vrrp_version {version}\n}}\n\
                 vrrp_instance VI_1 {{\n  state BACKUP\n  interface {iface}\n  virtual_router_id {VRID}\n\
                 \x20 priority {priority}\n  advert_int {advert_int}\n\
                 \x20 virtual_ipaddress {{\n    {vip}/{prefix}\n  }}\n}}\n",
                iface = host.iface,
                vip = case.vip(),
                prefix = case.prefix(),
            ),
        )
        .unwrap();
        let log = dir.join("keepalived.log");
        let proc = host
            .ns
            .command("keepalived")
            .args(["-n", "-l", "-D", "-f"])
            .arg(&conf)
            .arg("-p")
            .arg(dir.join("ka.pid"))
            .arg("-r")
            .arg(dir.join("ka-vrrp.pid"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
            .spawn()
            .expect("spawn keepalived (is it installed? cargo xtask setup installs it)");
        Self {
            _proc: Proc(proc),
            log,
        }
    }

    /// keepalived's state from its log: the last "Entering X STATE".
    fn state(&self) -> Option<String> {
        let log = self.log();
        let at = log.rfind("Entering ")?;
        Some(log[at + "Entering ".len()..].split(' ').next()?.to_owned())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn check(case: Case) {
    let run = Interop::<Keepalived>::start(case, PROBE, "info");
    let what = &run.what;
    run.await_roles();
    // Stable: one master at a time, for a few intervals.
    run.hold();
    run.assert_roles();

    // Cut the master's link: the backup takes over.
    run.cut_master();
    let ka_log = run.peer.log().to_lowercase();
    let vf_log = run.vipflip.log().to_lowercase();
    assert!(
        !ka_log.contains("checksum"),
        "{what}: keepalived complained:\n{ka_log}"
    );
    assert!(
        !vf_log.contains("checksum"),
        "{what}: vipflip complained:\n{vf_log}"
    );
    assert!(
        !vf_log.contains("discarded"),
        "{what}: vipflip discarded keepalived's adverts:\n{vf_log}"
    );
}

vipflip_integration_tests::interop_tests! {
    Keepalived, check;
    v3_ipv4_vipflip_master: V3 V4 true;
    v3_ipv4_keepalived_master: V3 V4 false;
    v3_ipv6_vipflip_master: V3 V6 true;
    v3_ipv6_keepalived_master: V3 V6 false;
    v2_ipv4_vipflip_master: V2 V4 true;
    v2_ipv4_keepalived_master: V2 V4 false;
}
