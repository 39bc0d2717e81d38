//! The migration path through the binary: `vipflip import-keepalived` output is accepted by
//! `vipflip check-config`, and the exit status says whether anything was lost; errors say what
//! failed once. No root needed.

use std::{path::Path, process::Command};

use vipflip_integration_tests::vipflip_bin;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agent/src/import/fixtures")
        .join(name)
}

fn import_then_check(name: &str) -> (i32, String) {
    let import = Command::new(vipflip_bin())
        .arg("import-keepalived")
        .arg(fixture(name))
        .output()
        .unwrap();
    let code = import.status.code().unwrap_or(-1);
    let toml = std::env::temp_dir().join(format!("vipflip-cli-{}-{name}.toml", std::process::id()));
    std::fs::write(&toml, &import.stdout).unwrap();
    let check = Command::new(vipflip_bin())
        .args(["check-config", "--config"])
        .arg(&toml)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&toml);
    assert!(
        check.status.success(),
        "{name}: check-config refused the imported configuration:\n{}\n{}",
        String::from_utf8_lossy(&check.stderr),
        String::from_utf8_lossy(&import.stdout)
    );
    (code, String::from_utf8_lossy(&import.stderr).into_owned())
}

#[test]
fn a_lossless_import_passes_check_config_and_exits_0() {
    let (code, stderr) = import_then_check("pair-master.conf");
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_lossy_import_lists_what_was_lost_and_exits_2() {
    let (code, stderr) = import_then_check("unsupported.conf");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("unsupported.conf:") && stderr.contains("warning: use_vmac"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_file_exits_1_with_its_name() {
    let out = Command::new(vipflip_bin())
        .args(["import-keepalived", "/nonexistent/keepalived.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/keepalived.conf"));
}

#[test]
fn a_command_without_a_daemon_says_so_and_names_the_cause_once() {
    let socket = std::env::temp_dir().join(format!("vipflip-cli-{}.sock", std::process::id()));
    let out = Command::new(vipflip_bin())
        .args(["handoff", "--control-socket"])
        .arg(&socket)
        .arg("web")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "no vipflip daemon answers on {}",
            socket.display()
        )),
        "{stderr}"
    );
    // The OS error is part of the message; the cause chain must not repeat it.
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

/// The director of the BGP scenarios: one VIP announced while its instance is master, BGP
/// to one upstream router with BFD.
const DIRECTOR: &str = r#"
[global]
router_id = "dir-1"
[routing]
bgp = { asn = 65001, router_id = "192.0.2.11", neighbors = [{ address = "192.0.2.1", asn = 65000 }, { address = "2001:db8::1", asn = 65000 }], bfd = { interval = "50ms", multiplier = 3 }, hold_time = "9s" }
[[instance]]
name = "VI_1"
interface = "lo"
vrid = 51
priority = 255
virtual_ips = ["198.51.100.10/32"]
[[instance]]
name = "VI_6"
interface = "lo"
vrid = 52
priority = 255
virtual_ips = ["2001:db8:100::10/128"]
[[announce]]
vip = "198.51.100.10"
when = "master"
[[announce]]
vip = "2001:db8:100::10"
when = "master"
"#;

fn routing_config(flag: &str, config: &str) -> std::process::Output {
    // Tests run in parallel: each call its own directory.
    let dir = std::env::temp_dir().join(vipflip_integration_tests::unique("vipflip-rc-"));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("vipflip.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = Command::new(vipflip_bin())
        .args(["routing-config", flag, "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn printed(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Checks `text` with the daemon's own parser (`vtysh --dryrun`, `bird -p`): the lines an
/// operator pastes are lines the daemon accepts.
fn accepted_by(program: &str, args: &[&str], text: &str, name: &str) {
    let file = std::env::temp_dir().join(format!(
        "{}-{name}",
        vipflip_integration_tests::unique("vipflip-")
    ));
    std::fs::write(&file, text).unwrap();
    let out = Command::new(program)
        .args(args)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{program} (installed by `cargo xtask setup`): {e}"));
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{program} refused the generated configuration:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn routing_config_for_frr_is_accepted_by_vtysh() {
    let v4_only = DIRECTOR
        .replace("vip = \"2001:db8:100::10\"", "vip = \"198.51.100.10\"")
        .replacen(
            "[[announce]]\nvip = \"198.51.100.10\"\nwhen = \"master\"\n",
            "",
            1,
        );
    let text = printed(&routing_config("--frr", &v4_only));
    for line in [
        "ip import-table 200",
        "  redistribute table 200",
        " neighbor 192.0.2.1 bfd profile vipflip",
        " neighbor 192.0.2.1 timers 3 9",
        "  neighbor 192.0.2.1 activate",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    accepted_by("vtysh", &["--dryrun", "-f"], &text, "frr.conf");
    assert!(!text.contains("2001:db8::1 activate"), "{text}");
}

#[test]
fn routing_config_for_frr_refuses_ipv6_and_points_to_bird() {
    let out = routing_config("--frr", DIRECTOR);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "vipflip: FRR imports a kernel table for IPv4 only (`ip import-table`; there is no \
         `ipv6 import-table`): announce 2001:db8:100::10 through BIRD (`--bird`)\n"
    );
}

#[test]
fn routing_config_for_bird_is_accepted_by_bird() {
    let text = printed(&routing_config("--bird", DIRECTOR));
    for line in [
        "protocol kernel vipflip_ipv4 {",
        "protocol kernel vipflip_ipv6 {",
        "    neighbor 2001:db8::1 as 65000;",
        "    hold time 9;",
        "            bgp_origin = ORIGIN_INCOMPLETE;",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    accepted_by("bird", &["-p", "-c"], &text, "bird.conf");
}
