//! Interop with keepalived (Debian's 2.2.7): vipflip and keepalived in one VRRP group, v2 and
//! v3, IPv4 and IPv6, each as master and as backup. One master at a time, the higher priority
//! wins, the backup takes over within `Master_Down_Interval` when the master's link is cut,
//! and neither side complains about checksums. Needs root and keepalived (`cargo xtask setup`
//! installs it).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use vipflip_integration_tests::{
    KillOnDrop as Proc, Lab, root_or_skip, serial, summary_number as field, unique, vipflip_bin,
    wait_for,
};

const PROBE: &str = env!("CARGO_BIN_EXE_vipflip-probe");

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
    /// Whether vipflip has the higher priority (and so starts as master).
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

    /// Advert interval in ms: v2 carries whole seconds.
    fn interval_ms(&self) -> u64 {
        match self.version {
            Version::V2 => 1000,
            Version::V3 => 100,
        }
    }

    /// `Master_Down_Interval` of the backup (priority 100), in µs (RFC 5798 §6.1 / RFC 3768).
    fn mdi_us(&self) -> u64 {
        let interval = self.interval_ms() * 1000;
        match self.version {
            Version::V3 => 3 * interval + 156 * interval / 256,
            Version::V2 => 3 * interval + 156 * 1_000_000 / 256,
        }
    }
}

struct Run {
    lab: Lab,
    dir: PathBuf,
    _keepalived: Proc,
    _vipflip: Proc,
    _responders: Vec<Proc>,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Run {
    fn keepalived_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("keepalived.log")).unwrap_or_default()
    }

    fn vipflip_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("vipflip.log")).unwrap_or_default()
    }

    /// keepalived's state from its log: the last "Entering X STATE".
    fn keepalived_state(&self) -> Option<String> {
        let log = self.keepalived_log();
        let at = log.rfind("Entering ")?;
        Some(log[at + "Entering ".len()..].split(' ').next()?.to_owned())
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
}

/// Router 0 runs keepalived, router 1 vipflip.
fn start(case: &Case) -> Run {
    let lab = Lab::new(2);
    let dir = std::env::temp_dir().join(unique("vipflip-ka-"));
    std::fs::create_dir_all(&dir).unwrap();
    let (ka_prio, vf_prio) = if case.vipflip_master {
        (100, 200)
    } else {
        (200, 100)
    };
    let (ka, vf) = (&lab.routers[0], &lab.routers[1]);
    let version = match case.version {
        Version::V2 => 2,
        Version::V3 => 3,
    };
    let advert_int = match case.version {
        Version::V2 => "1".to_owned(),
        Version::V3 => format!(
            "{:.1}",
            Duration::from_millis(case.interval_ms()).as_secs_f64()
        ),
    };
    let ka_conf = dir.join("keepalived.conf");
    std::fs::write(
        &ka_conf,
        format!(
            "global_defs {{\n  router_id ka\n  vrrp_version {version}\n}}\n\
             vrrp_instance VI_1 {{\n  state BACKUP\n  interface {iface}\n  virtual_router_id 51\n\
             \x20 priority {ka_prio}\n  advert_int {advert_int}\n\
             \x20 virtual_ipaddress {{\n    {vip}/{prefix}\n  }}\n}}\n",
            iface = ka.iface,
            vip = case.vip(),
            prefix = case.prefix(),
        ),
    )
    .unwrap();
    let keepalived = ka
        .ns
        .command("keepalived")
        .args(["-n", "-l", "-D", "-f"])
        .arg(&ka_conf)
        .arg("-p")
        .arg(dir.join("ka.pid"))
        .arg("-r")
        .arg(dir.join("ka-vrrp.pid"))
        .stdout(std::fs::File::create(dir.join("keepalived.log")).unwrap())
        .stderr(
            std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join("keepalived.log"))
                .unwrap(),
        )
        .spawn()
        .expect("spawn keepalived (is it installed? cargo xtask setup installs it)");
    let vf_conf = dir.join("vipflip.toml");
    std::fs::write(
        &vf_conf,
        format!(
            "[global]\nrouter_id = \"vf\"\npin_dir = \"{pins}\"\ncontrol_socket = \"{dir}/vipflip.sock\"\n\n\
             [[instance]]\nname = \"VI_1\"\ninterface = \"{iface}\"\nvrid = 51\nversion = {version}\n\
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
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("vipflip.log")).unwrap())
        .spawn()
        .expect("spawn vipflip run");
    let responders = [(ka, "keepalived"), (vf, "vipflip")]
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
        lab,
        dir,
        _keepalived: Proc(keepalived),
        _vipflip: Proc(vipflip),
        _responders: responders,
    }
}

fn check(case: &Case) {
    let run = start(case);
    let what = format!(
        "{case:?}",
        case = (case.version, case.family, case.vipflip_master)
    );
    let vf_role = if case.vipflip_master {
        "Master"
    } else {
        "Backup"
    };
    let ka_expected = if case.vipflip_master {
        "BACKUP"
    } else {
        "MASTER"
    };
    let settled = wait_for(Duration::from_secs(15), || {
        run.vipflip_state().as_deref() == Some(vf_role)
            && run.keepalived_state().as_deref() == Some(ka_expected)
    });
    assert!(
        settled,
        "{what}: roles never settled (vipflip {:?}, keepalived {:?})\nvipflip:\n{}\nkeepalived:\n{}",
        run.vipflip_state(),
        run.keepalived_state(),
        run.vipflip_log(),
        run.keepalived_log()
    );
    // Stable: one master at a time, for a few intervals.
    std::thread::sleep(Duration::from_millis(5 * case.interval_ms()));
    assert_eq!(
        run.vipflip_state().as_deref(),
        Some(vf_role),
        "{what}: vipflip changed role"
    );
    assert_eq!(
        run.keepalived_state().as_deref(),
        Some(ka_expected),
        "{what}: keepalived changed role"
    );

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
        "keepalived"
    } else {
        "vipflip"
    };
    assert!(
        summary.contains(&format!("\"{new_master}\":")),
        "{what}: {new_master} never answered: {summary}"
    );
    let outage = field(&summary, "longest_outage_us");
    assert!(
        outage <= case.mdi_us() + 20_000,
        "{what}: outage {outage} µs > Master_Down_Interval + 20 ms: {summary}\nvipflip:\n{}\nkeepalived:\n{}",
        run.vipflip_log(),
        run.keepalived_log()
    );
    let ka_log = run.keepalived_log().to_lowercase();
    let vf_log = run.vipflip_log().to_lowercase();
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

fn keepalived_installed(test: &str) -> bool {
    if Command::new("keepalived").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: keepalived is missing; cargo xtask setup installs it"
    );
    eprintln!("SKIPPED {test}: keepalived is not installed (cargo xtask setup installs it)");
    false
}

macro_rules! interop {
    ($name:ident, $version:expr, $family:expr, $vipflip_master:expr) => {
        #[test]
        fn $name() {
            if !root_or_skip(stringify!($name)) || !keepalived_installed(stringify!($name)) {
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
interop!(v3_ipv4_keepalived_master, Version::V3, Fam::V4, false);
interop!(v3_ipv6_vipflip_master, Version::V3, Fam::V6, true);
interop!(v3_ipv6_keepalived_master, Version::V3, Fam::V6, false);
interop!(v2_ipv4_vipflip_master, Version::V2, Fam::V4, true);
interop!(v2_ipv4_keepalived_master, Version::V2, Fam::V4, false);
