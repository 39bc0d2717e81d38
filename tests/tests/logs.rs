//! What the daemon's log looks like where it is written: a file or a pipe gets plain text (no
//! colour codes, whatever the terminal settings), and the journal (stderr being the stream
//! `JOURNAL_STREAM` names, as systemd sets it) gets one `<priority>` prefix per line and no
//! timestamp of ours, so `journalctl -p warning` selects by level.

use std::{
    os::unix::fs::MetadataExt as _,
    path::Path,
    process::{Child, Stdio},
    time::Duration,
};

use vipflip_integration_tests::{
    BpfFs, KillOnDrop, Netns, agent::vipflip, scene::test_dir, unique, veth, wait_for,
};

/// One instance that becomes master alone on `eth0`, and one on an interface that does not
/// exist (in fault from the start: a warning).
fn config(bpffs: &BpfFs, dir: &Path) -> String {
    format!(
        "[global]\nrouter_id = \"logs\"\npin_dir = \"{pins}/logs\"\ncontrol_socket = \"{dir}/logs.sock\"\n\n\
         [[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 100\n\
         advert_interval = \"100ms\"\nvirtual_ips = [\"192.0.2.100/24\"]\n\n\
         [[instance]]\nname = \"VI_GONE\"\ninterface = \"vfnothere0\"\nvrid = 52\n\
         virtual_ips = [\"192.0.2.150/24\"]\n",
        pins = bpffs.path().display(),
        dir = dir.display(),
    )
}

/// Where the daemon's stderr goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stderr {
    /// The log file itself.
    File,
    /// A terminal: a pty that `script` copies into the log file.
    Terminal,
}

/// `vipflip run` in `ns` with stderr on `log` (or on a terminal copied there) and exactly the
/// environment `envs` adds to a cleared one (no inherited `NO_COLOR`, `JOURNAL_STREAM` or `RUST_LOG`).
fn run(ns: &Netns, config: &Path, log: &Path, stderr: Stderr, envs: &[(&str, String)]) -> Child {
    let file = std::fs::File::create(log).expect("create the log");
    let vipflip = vipflip().to_str().expect("utf-8 path");
    let mut command = match stderr {
        Stderr::File => {
            let mut command = ns.command(vipflip);
            command.args(["run", "--config"]).arg(config);
            command.stdout(Stdio::null()).stderr(file);
            command
        }
        Stderr::Terminal => {
            let mut command = ns.command("script");
            command
                .args([
                    "-qfec",
                    &format!("{vipflip} run --config {}", config.display()),
                ])
                .arg("/dev/null");
            command
                .stdin(Stdio::null())
                .stdout(file)
                .stderr(Stdio::null());
            command
        }
    };
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .spawn()
        .expect("spawn vipflip run")
}

/// Runs the daemon until `VI_1` is master and `VI_GONE` has been reported, then stops it (and
/// waits until nothing runs in `ns`, so the next run has the control socket); what it wrote.
fn logged(
    ns: &Netns,
    config: &Path,
    log: &Path,
    stderr: Stderr,
    envs: &[(&str, String)],
) -> String {
    let agent = KillOnDrop(run(ns, config, log, stderr, envs));
    let read = || std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(10), || {
            let text = read();
            text.contains("-> MASTER") && text.contains("VI_GONE")
        }),
        "the daemon did not become master:\n{}",
        read()
    );
    drop(agent);
    ns.kill_all();
    read()
}

#[test]
#[ignore = "needs root"]
fn files_get_plain_text_the_journal_priorities_terminals_colour() {
    let bpffs = BpfFs::new();
    let dir = test_dir("vipflip-logs-");
    let ns = Netns::new("vflog");
    let peer = Netns::new("vflogp");
    veth(&ns, "eth0", &peer, &unique("vflp"));
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    let config_path = dir.join("logs.toml");
    std::fs::write(&config_path, config(&bpffs, &dir)).expect("write the configuration");

    // A file, and nothing in the environment about colour: no escape codes, timestamps kept.
    let file_log = dir.join("file.log");
    let text = logged(&ns, &config_path, &file_log, Stderr::File, &[]);
    assert!(!text.contains('\x1b'), "colour codes in a file:\n{text}");
    let first = text.lines().next().expect("a line");
    assert!(
        first.starts_with("20") && first.as_bytes().get(4) == Some(&b'-'),
        "no timestamp on a line to a file: {first:?}"
    );

    // The journal: JOURNAL_STREAM names stderr's device and inode. Pins and state are left
    // by the first run; the second re-opens them.
    let journal_log = dir.join("journal.log");
    std::fs::write(&journal_log, b"").unwrap();
    let meta = std::fs::metadata(&journal_log).unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    // `File::create` in `run` truncates the same inode, so the identity holds.
    let text = logged(
        &ns,
        &config_path,
        &journal_log,
        Stderr::File,
        &[("JOURNAL_STREAM", stream)],
    );
    assert!(
        !text.contains('\x1b'),
        "colour codes on the journal:\n{text}"
    );
    for line in text.lines() {
        let priority = line
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .map(|(p, _)| p);
        assert!(
            matches!(priority, Some("3" | "4" | "6" | "7")),
            "a journal line without a priority: {line:?}\n{text}"
        );
        assert!(
            !line[3..].starts_with("20"),
            "a timestamp of our own on the journal: {line:?}"
        );
    }
    let master = text
        .lines()
        .find(|l| l.contains("-> MASTER"))
        .expect("the transition line");
    assert!(master.starts_with("<6>vipflip"), "{master}");
    assert!(
        text.lines()
            .any(|l| l.contains("VI_GONE") && (l.starts_with("<4>") || l.starts_with("<3>"))),
        "the missing interface is not a warning or an error:\n{text}"
    );

    // A terminal gets colour, unless NO_COLOR says otherwise.
    let tty_log = dir.join("tty.log");
    let text = logged(&ns, &config_path, &tty_log, Stderr::Terminal, &[]);
    assert!(text.contains("\x1b["), "no colour on a terminal:\n{text}");
    let text = logged(
        &ns,
        &config_path,
        &tty_log,
        Stderr::Terminal,
        &[("NO_COLOR", "1".into())],
    );
    assert!(
        !text.contains('\x1b'),
        "colour on a terminal despite NO_COLOR:\n{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
