//! `packaging/vipflip.service` stays true to the binary and the daemon: its command lines are
//! ones `vipflip` accepts, it keeps the capabilities and writable paths the daemon needs, its
//! stop timeout covers a SIGTERM handoff, and `systemd-analyze verify` accepts it. No root
//! needed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vipflip::config::Config;
use vipflip::daemon::SHUTDOWN_HANDOFF_LIMIT;
use vipflip_integration_tests::agent::vipflip;

/// The capabilities the daemon needs (the unit's comments say what for).
const CAPABILITIES: [&str; 5] = [
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_BPF",
    "CAP_PERFMON",
    "CAP_SYS_ADMIN",
];

/// `forward_window`'s default (`examples/vipflip.toml`).
const DEFAULT_FORWARD_WINDOW: Duration = Duration::from_secs(5);

#[test]
fn exec_start_is_a_command_line_the_binary_accepts() {
    let unit = Unit::read();
    let exec_start = unit.words("Service", "ExecStart");
    let [program, subcommand, rest @ ..] = exec_start.as_slice() else {
        panic!("ExecStart is not `PROGRAM SUBCOMMAND ...`: {exec_start:?}");
    };
    assert!(
        Path::new(program).is_absolute() && program.ends_with("/vipflip"),
        "ExecStart runs {program}, not an absolute path to vipflip"
    );
    assert_eq!(*subcommand, "run", "ExecStart: {exec_start:?}");
    assert_eq!(
        option_value(rest, "--config"),
        Some("/etc/vipflip/vipflip.toml"),
        "ExecStart: {exec_start:?}"
    );

    let help = Command::new(vipflip())
        .args(["run", "--help"])
        .output()
        .expect("running vipflip run --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in rest.iter().filter(|w| w.starts_with("--")) {
        let flag = flag.split('=').next().unwrap_or(flag);
        assert!(
            help.contains(flag),
            "ExecStart passes {flag}, which `vipflip run --help` does not list:\n{help}"
        );
    }

    // The whole argument list parses: with a file that is not there, the binary gets as far as
    // reading it (a usage error would exit 2 and name no file).
    let missing =
        std::env::temp_dir().join(format!("vipflip-packaging-{}.toml", std::process::id()));
    let args: Vec<String> = rest
        .iter()
        .map(|w| {
            if *w == "/etc/vipflip/vipflip.toml" {
                missing.display().to_string()
            } else {
                (*w).to_owned()
            }
        })
        .collect();
    let out = Command::new(vipflip())
        .arg("run")
        .args(&args)
        .output()
        .expect("running vipflip run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && out.status.code() != Some(2),
        "vipflip run {args:?}: {:?}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(&missing.display().to_string()),
        "vipflip run {args:?} did not complain about the missing file:\n{stderr}"
    );
}

#[test]
fn exec_reload_sends_sighup_to_the_daemon() {
    let unit = Unit::read();
    assert_eq!(
        unit.words("Service", "ExecReload"),
        ["/bin/kill", "-HUP", "$MAINPID"]
    );
}

#[test]
fn capabilities_are_the_ones_the_daemon_needs() {
    let unit = Unit::read();
    let want: BTreeSet<&str> = CAPABILITIES.into_iter().collect();
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        let got: BTreeSet<&str> = unit.words("Service", key).into_iter().collect();
        assert_eq!(got, want, "{key}");
    }
    assert_eq!(unit.value("Service", "LimitMEMLOCK"), "infinity");
}

#[test]
fn stopping_leaves_time_for_the_handoff_and_the_forward_window() {
    let unit = Unit::read();
    assert_eq!(unit.value("Service", "KillSignal"), "SIGTERM");
    let timeout = unit.value("Service", "TimeoutStopSec");
    let seconds: u64 = timeout
        .strip_suffix('s')
        .unwrap_or(timeout)
        .parse()
        .unwrap_or_else(|e| panic!("TimeoutStopSec={timeout}: not a number of seconds: {e}"));
    let needed = SHUTDOWN_HANDOFF_LIMIT + DEFAULT_FORWARD_WINDOW;
    assert!(
        Duration::from_secs(seconds) >= needed + Duration::from_secs(5),
        "TimeoutStopSec={timeout} leaves no margin over the handoff limit and the forward \
         window ({needed:?})"
    );
    assert_eq!(unit.value("Service", "Restart"), "on-failure");
}

#[test]
fn the_read_only_system_still_lets_the_daemon_pin_and_listen() {
    let unit = Unit::read();
    assert_eq!(unit.value("Service", "ProtectSystem"), "strict");
    let writable: Vec<PathBuf> = unit
        .words("Service", "ReadWritePaths")
        .into_iter()
        .map(|p| PathBuf::from(p.trim_start_matches('-')))
        .collect();
    let (config, _warnings) = Config::parse(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"lo\"\nvrid = 51\n\
         virtual_ips = [\"192.0.2.100/24\"]\n",
        "defaults.toml",
    )
    .unwrap_or_else(|e| panic!("a minimal configuration is refused: {e:?}"));
    let socket_dir = config
        .global
        .control_socket
        .parent()
        .expect("the control socket has a directory")
        .to_owned();
    for (what, path) in [
        ("the default pin_dir", &config.global.pin_dir),
        ("the default control socket's directory", &socket_dir),
    ] {
        assert!(
            writable.iter().any(|w| path.starts_with(w)),
            "{what} {} is not under ReadWritePaths={writable:?}",
            path.display()
        );
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let Some(analyze) = find_in_path("systemd-analyze") else {
        println!("skipped: systemd-analyze is not installed");
        return;
    };
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let dir = std::env::temp_dir().join(format!("vipflip-packaging-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    let unit_path = dir.join("vipflip.service");
    let text = Unit::text().replace("/usr/local/bin/vipflip", &vipflip().display().to_string());
    std::fs::write(&unit_path, text).expect("writing the unit copy");
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&unit_path)
        // Unknown keys and unparsable values are logged at "info" and only on a console.
        .env("SYSTEMD_LOG_LEVEL", "info")
        .env("SYSTEMD_LOG_TARGET", "console")
        .output()
        .expect("running systemd-analyze verify");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_the_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("vipflip.service"))
        .collect();
    assert!(
        out.status.success() && about_the_unit.is_empty(),
        "systemd-analyze verify: {:?}\n{stderr}",
        out.status
    );
}

/// The unit file, as `KEY=VALUE` lines per `[Section]`.
struct Unit {
    entries: Vec<(String, String, String)>,
}

impl Unit {
    fn path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/vipflip.service")
    }

    fn text() -> String {
        std::fs::read_to_string(Self::path())
            .unwrap_or_else(|e| panic!("reading {}: {e}", Self::path().display()))
    }

    /// systemd.syntax(7): comments start with `#` or `;`; a trailing `\` continues a line.
    fn read() -> Self {
        let text = Self::text();
        let mut entries = Vec::new();
        let mut section = String::new();
        let mut pending = String::new();
        for line in text.lines() {
            let line = line.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            if let Some(continued) = line.strip_suffix('\\') {
                pending.push_str(continued);
                pending.push(' ');
                continue;
            }
            let line = std::mem::take(&mut pending) + line;
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                name.clone_into(&mut section);
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE in [{section}]: {line}"));
            entries.push((
                section.clone(),
                key.trim().to_owned(),
                value.trim().to_owned(),
            ));
        }
        Self { entries }
    }

    /// The value of a key set exactly once.
    fn value(&self, section: &str, key: &str) -> &str {
        let values: Vec<&str> = self
            .entries
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect();
        match values.as_slice() {
            [value] => value,
            _ => panic!("[{section}] {key} is set {} times", values.len()),
        }
    }

    /// The whitespace-separated words of a key set exactly once.
    fn words(&self, section: &str, key: &str) -> Vec<&str> {
        self.value(section, key).split_whitespace().collect()
    }
}

/// The value after `flag` (`--flag value` or `--flag=value`).
fn option_value<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, arg)| {
        if *arg == flag {
            return args.get(i + 1).copied();
        }
        arg.strip_prefix(flag)?.strip_prefix('=')
    })
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}
