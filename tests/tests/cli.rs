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
