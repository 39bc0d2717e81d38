//! The notifier against real FIFOs and real scripts under /tmp.

use std::fs::File;
use std::io::{ErrorKind, Read as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Notifier, NotifyError, NotifyKind, NotifyState, NotifyStats, fifo_line};
use crate::config::Config;
use crate::track::testutil::TempDir;
use crate::wire::Priority;

fn config(fifo: Option<PathBuf>) -> Config {
    let text = r#"
        [[instance]]
        name = "VI_1"
        interface = "eth0"
        vrid = 51
        virtual_ips = ["192.0.2.100/24"]
        [[instance]]
        name = "VI_2"
        interface = "eth0"
        vrid = 52
        virtual_ips = ["192.0.2.101/24"]
        [[sync_group]]
        name = "G1"
        instances = ["VI_1", "VI_2"]
    "#;
    let (mut config, _) = Config::parse(text, "test.toml").expect("config");
    config.global.notify_fifo = fifo;
    config
}

/// Opens the read end without waiting for a writer.
fn reader(path: &Path) -> File {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .expect("open FIFO for reading")
}

/// Everything in the pipe now.
fn drain(reader: &mut File) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("reading the FIFO: {e}"),
        }
    }
    String::from_utf8(out).expect("UTF-8 lines")
}

#[test]
fn the_fifo_line_is_keepalived_s() {
    assert_eq!(
        fifo_line(
            NotifyKind::Instance,
            "VI_1",
            NotifyState::Master,
            Priority(100)
        ),
        "INSTANCE \"VI_1\" MASTER 100\n"
    );
    assert_eq!(
        fifo_line(NotifyKind::Group, "G1", NotifyState::Fault, Priority(0)),
        "GROUP \"G1\" FAULT 0\n"
    );
    assert_eq!(NotifyState::Backup.to_string(), "BACKUP");
    assert_eq!(NotifyState::Stop.to_string(), "STOP");
}

#[test]
fn lines_arrive_in_order_with_a_reader() {
    let dir = TempDir::new("fifo-order");
    let path = dir.path().join("notify.fifo");
    let mut notifier = Notifier::new(&config(Some(path.clone()))).expect("notifier");
    let mut reader = reader(&path);
    let states = [
        NotifyState::Backup,
        NotifyState::Master,
        NotifyState::Fault,
        NotifyState::Stop,
    ];
    let mut want = String::new();
    for i in 0..200u8 {
        let state = states[usize::from(i) % states.len()];
        let name = if i % 2 == 0 { "VI_1" } else { "VI_2" };
        notifier.state_changed(NotifyKind::Instance, name, state, Priority(i));
        want.push_str(&fifo_line(NotifyKind::Instance, name, state, Priority(i)));
    }
    assert_eq!(drain(&mut reader), want);
    assert_eq!(
        notifier.stats(),
        NotifyStats {
            fifo_written: 200,
            ..NotifyStats::default()
        }
    );
}

#[test]
fn no_reader_drops_without_blocking_and_a_later_reader_gets_later_lines() {
    let dir = TempDir::new("fifo-noreader");
    let path = dir.path().join("notify.fifo");
    let mut notifier = Notifier::new(&config(Some(path.clone()))).expect("notifier");
    assert!(
        std::fs::metadata(&path)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type())),
        "the FIFO was created"
    );
    let started = Instant::now();
    for _ in 0..3 {
        notifier.state_changed(
            NotifyKind::Instance,
            "VI_1",
            NotifyState::Master,
            Priority(100),
        );
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(notifier.stats().fifo_dropped, 3);
    assert_eq!(notifier.stats().fifo_written, 0);

    let mut reader = reader(&path);
    notifier.state_changed(NotifyKind::Group, "G1", NotifyState::Backup, Priority(0));
    assert_eq!(drain(&mut reader), "GROUP \"G1\" BACKUP 0\n");

    // The reader goes away: the next line is dropped (EPIPE), then a new reader gets lines.
    drop(reader);
    notifier.state_changed(NotifyKind::Group, "G1", NotifyState::Fault, Priority(0));
    assert_eq!(notifier.stats().fifo_dropped, 4);
    let mut reader = self::reader(&path);
    notifier.state_changed(NotifyKind::Group, "G1", NotifyState::Master, Priority(0));
    assert_eq!(drain(&mut reader), "GROUP \"G1\" MASTER 0\n");

    drop(notifier);
    assert!(!path.exists(), "a FIFO the notifier created is removed");
}

#[test]
fn a_full_pipe_drops_whole_lines_and_keeps_order() {
    let dir = TempDir::new("fifo-full");
    let path = dir.path().join("notify.fifo");
    let mut notifier = Notifier::new(&config(Some(path.clone()))).expect("notifier");
    let mut reader = reader(&path);
    // 20 000 lines of ~30 bytes overflow a 64 KiB pipe many times over.
    let started = Instant::now();
    for i in 0..20_000u32 {
        let priority = Priority(u8::try_from(i % 250).expect("fits") + 1);
        let name = format!("VI_{i}");
        notifier.state_changed(NotifyKind::Instance, &name, NotifyState::Backup, priority);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let stats = notifier.stats();
    assert!(stats.fifo_dropped > 0, "{stats:?}");
    assert_eq!(stats.fifo_written + stats.fifo_dropped, 20_000);
    let text = drain(&mut reader);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(u64::try_from(lines.len()).ok(), Some(stats.fifo_written));
    // What got through is the first lines, whole and in order (nothing was read meanwhile).
    for (i, line) in lines.iter().enumerate() {
        let priority = u8::try_from(i % 250).expect("fits") + 1;
        assert_eq!(*line, format!("INSTANCE \"VI_{i}\" BACKUP {priority}"));
    }
}

#[test]
fn a_path_that_is_not_a_fifo_is_refused() {
    let dir = TempDir::new("fifo-notfifo");
    let path = dir.path().join("plain");
    std::fs::write(&path, "").expect("write");
    let err = Notifier::new(&config(Some(path.clone()))).expect_err("not a FIFO");
    assert!(matches!(&err, NotifyError::NotAFifo { path: p } if *p == path));
    assert!(err.to_string().contains("not a FIFO"), "{err}");
}

/// Waits until `path` exists with content, then returns it.
async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_state_s_script_runs_with_keepalived_s_arguments() {
    let dir = TempDir::new("notify-script");
    let out = dir.path().join("args");
    let group_out = dir.path().join("group-args");
    let master = dir.script("master.sh", &format!("echo \"$@\" > {}", out.display()));
    let group = dir.script(
        "group.sh",
        &format!("echo \"$@\" > {}", group_out.display()),
    );
    let mut config = config(None);
    config.instances[0].notify.master = Some(master);
    config.sync_groups[0].notify.fault = Some(group);
    let mut notifier = Notifier::new(&config).expect("notifier");

    // States without a script run nothing.
    notifier.state_changed(
        NotifyKind::Instance,
        "VI_1",
        NotifyState::Backup,
        Priority(90),
    );
    notifier.state_changed(
        NotifyKind::Instance,
        "VI_1",
        NotifyState::Master,
        Priority(100),
    );
    notifier.state_changed(NotifyKind::Group, "G1", NotifyState::Fault, Priority(0));
    assert_eq!(wait_for_file(&out).await, "INSTANCE VI_1 MASTER 100\n");
    assert_eq!(wait_for_file(&group_out).await, "GROUP G1 FAULT 0\n");
    assert_eq!(notifier.stats().scripts_started, 2);
}

#[tokio::test]
async fn a_hung_script_is_killed_at_the_timeout_and_the_caller_never_waits() {
    let dir = TempDir::new("notify-hung");
    let hung = dir.script("hung.sh", "exec sleep 30");
    let mut config = config(None);
    config.instances[0].notify.fault = Some(hung);
    let mut notifier = Notifier::new(&config)
        .expect("notifier")
        .with_script_timeout(Duration::from_millis(200));
    let started = Instant::now();
    notifier.state_changed(
        NotifyKind::Instance,
        "VI_1",
        NotifyState::Fault,
        Priority(100),
    );
    // The call returned before the script could finish: it is neither done nor killed yet.
    assert_eq!(notifier.stats().scripts_failed, 0, "state_changed waited");
    let deadline = Instant::now() + Duration::from_secs(10);
    while notifier.stats().scripts_timed_out == 0 {
        assert!(Instant::now() < deadline, "{:?}", notifier.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(notifier.stats().scripts_failed, 1);
}

#[tokio::test]
async fn at_exit_running_scripts_finish_and_kept_scripts_survive_a_reload() {
    let dir = TempDir::new("notify-exit");
    let out = dir.path().join("stopped");
    let stop = dir.script(
        "stop.sh",
        &format!("sleep 0.3; echo \"$@\" > {}", out.display()),
    );
    let mut config = config(None);
    config.instances[1].notify.stop = Some(stop);
    let mut notifier = Notifier::new(&config).expect("notifier");

    // A reload drops VI_2, still handing off: its scripts are kept.
    let mut reloaded = config.clone();
    reloaded.instances.truncate(1);
    reloaded.sync_groups.clear();
    notifier.set_scripts(&reloaded, &["VI_2".to_owned()]);
    notifier.state_changed(
        NotifyKind::Instance,
        "VI_2",
        NotifyState::Stop,
        Priority(100),
    );
    assert!(!out.exists(), "the script cannot have finished yet");
    notifier.wait_for_scripts(Duration::from_secs(5)).await;
    assert_eq!(
        std::fs::read_to_string(&out).expect("the STOP script ran to its end"),
        "INSTANCE VI_2 STOP 100\n"
    );

    // Not kept: gone with the reload.
    notifier.set_scripts(&reloaded, &[]);
    std::fs::remove_file(&out).expect("remove");
    notifier.state_changed(
        NotifyKind::Instance,
        "VI_2",
        NotifyState::Stop,
        Priority(100),
    );
    notifier.wait_for_scripts(Duration::from_secs(5)).await;
    assert!(!out.exists(), "a dropped instance's script ran");
}
