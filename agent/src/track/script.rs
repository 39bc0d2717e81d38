//! The `[[script]]` driver: one tokio task per script, a run every `interval`.
//!
//! A run that `script_security` refuses (the script's path became writable by others than
//! root since the configuration was read) disables the script, as keepalived disables an
//! insecure track script and removes it from the instances that track it: the task reports
//! [`Observation::ScriptDisabled`] once, logs why, and ends.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::process::{RunOutcome, run_with_timeout};
use super::security::Insecure;
use super::{Observation, RiseFall};
use crate::config::ScriptSpec;

/// Starts the task that runs `spec` every `interval` and reports status changes on `tx`.
///
/// Runs of one script never overlap (keepalived neither): a run that takes longer than the
/// interval delays the next one. Each run holds one of the `slots` while it runs.
pub(super) fn spawn(
    spec: ScriptSpec,
    slots: Arc<Semaphore>,
    tx: mpsc::Sender<Observation>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(spec.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut status = RiseFall::new(spec.rise, spec.fall);
        loop {
            ticker.tick().await;
            let ok = match run_once(&spec, &slots).await {
                Ok(ok) => ok,
                Err(insecure) => {
                    log::warn!(
                        "script {}: disabled, script_security refuses it: {insecure}",
                        spec.name
                    );
                    let _ = tx
                        .send(Observation::ScriptDisabled {
                            name: spec.name.clone(),
                        })
                        .await;
                    return;
                }
            };
            if let Some(ok) = status.record(ok) {
                log::info!(
                    "script {}: {}",
                    spec.name,
                    if ok { "good" } else { "failing" }
                );
                let observation = Observation::Script {
                    name: spec.name.clone(),
                    ok,
                };
                if tx.send(observation).await.is_err() {
                    return; // The daemon is gone.
                }
            }
        }
    })
}

/// One run: true when it exited 0 within its timeout; `Err` when it was refused.
async fn run_once(spec: &ScriptSpec, slots: &Semaphore) -> Result<bool, Insecure> {
    let Some((program, args)) = spec.command.split_first() else {
        log::warn!("script {}: empty command", spec.name);
        return Ok(false);
    };
    // The semaphore is never closed, so acquiring only fails if that changes.
    let Ok(_slot) = slots.acquire().await else {
        return Ok(false);
    };
    let outcome = run_with_timeout(program, args, spec.timeout, &spec.run_as).await;
    match &outcome {
        RunOutcome::Exited(status) if !status.success() => {
            log::debug!("script {}: {status}", spec.name);
        }
        RunOutcome::Exited(_) => {}
        RunOutcome::TimedOut => log::warn!(
            "script {}: timed out after {:?}, killed",
            spec.name,
            spec.timeout
        ),
        RunOutcome::SpawnFailed(e) => log::warn!("script {}: running {program}: {e}", spec.name),
        RunOutcome::WaitFailed(e) => log::warn!("script {}: waiting for it: {e}", spec.name),
        RunOutcome::Refused(insecure) => return Err(insecure.clone()),
    }
    Ok(outcome.success())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::sync::{Semaphore, mpsc};

    use super::spawn;
    use crate::config::ScriptSpec;
    use crate::track::Observation;
    use crate::track::process::{RunOutcome, run_with_timeout};
    use crate::track::security::RunAs;
    use crate::track::testutil::TempDir;

    /// Whether `pid` still runs: a zombie waiting for its reaper counts as dead.
    fn pid_alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            // The state follows the parenthesised command name.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    }

    #[tokio::test]
    async fn a_sleeping_script_is_killed_at_its_timeout_with_its_children() {
        let dir = TempDir::new("timeout");
        let pidfile = dir.path().join("child.pid");
        // The script starts a grandchild (its own `sleep`) and records its pid, then waits.
        let script = dir.script(
            "sleeper",
            &format!("sleep 30 &\necho $! > {}\nwait", pidfile.display()),
        );
        let started = Instant::now();
        let outcome = run_with_timeout(
            "/bin/sh",
            [&script],
            Duration::from_millis(300),
            &RunAs::default(),
        )
        .await;
        let took = started.elapsed();
        assert!(matches!(outcome, RunOutcome::TimedOut), "{outcome:?}");
        assert!(!outcome.success());
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(10),
            "returned after {took:?}"
        );
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("grandchild pid")
            .trim()
            .parse()
            .expect("a pid");
        // The grandchild got SIGKILL with the group; once init reaps it, it is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!pid_alive(pid), "grandchild {pid} survived the timeout");
    }

    #[tokio::test]
    async fn exit_status_decides_success() {
        let dir = TempDir::new("status");
        let ok = dir.script("ok", "exit 0");
        let bad = dir.script("bad", "exit 3");
        let timeout = Duration::from_secs(10);
        assert!(
            run_with_timeout("/bin/sh", [&ok], timeout, &RunAs::default())
                .await
                .success()
        );
        let outcome = run_with_timeout("/bin/sh", [&bad], timeout, &RunAs::default()).await;
        assert!(
            matches!(&outcome, RunOutcome::Exited(s) if s.code() == Some(3)),
            "{outcome:?}"
        );
        let missing = run_with_timeout(
            dir.path().join("nope"),
            [] as [&str; 0],
            timeout,
            &RunAs::default(),
        )
        .await;
        assert!(matches!(missing, RunOutcome::SpawnFailed(_)), "{missing:?}");
    }

    fn script_spec(name: &str, path: &Path, timeout_ms: u64, rise: u32, fall: u32) -> ScriptSpec {
        ScriptSpec {
            name: name.into(),
            // Through /bin/sh, not exec: a script just written may still be open for writing in a
            // child another test forked (ETXTBSY).
            command: vec!["/bin/sh".into(), path.display().to_string()],
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(timeout_ms),
            rise,
            fall,
            run_as: RunAs::default(),
        }
    }

    async fn next(rx: &mut mpsc::Receiver<Observation>) -> Observation {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an observation within 10 s")
            .expect("channel open")
    }

    #[tokio::test]
    async fn the_driver_reports_timeouts_as_failures_and_recovery_after_rise() {
        let dir = TempDir::new("driver");
        // Sleeps (and times out) while `slow` exists, succeeds otherwise.
        let flag = dir.path().join("slow");
        std::fs::write(&flag, "").expect("flag");
        let script = dir.script(
            "check",
            &format!("[ -e {} ] && exec sleep 30\nexit 0", flag.display()),
        );
        let (tx, mut rx) = mpsc::channel(8);
        let task = spawn(
            script_spec("chk", &script, 100, 2, 1),
            Arc::new(Semaphore::new(1)),
            tx,
        );
        assert_eq!(
            next(&mut rx).await,
            Observation::Script {
                name: "chk".into(),
                ok: false
            }
        );
        std::fs::remove_file(&flag).expect("clear flag");
        assert_eq!(
            next(&mut rx).await,
            Observation::Script {
                name: "chk".into(),
                ok: true
            }
        );
        task.abort();
    }

    #[tokio::test]
    async fn concurrent_runs_are_bounded_by_the_slots() {
        let dir = TempDir::new("slots");
        let log = dir.path().join("log");
        // Each run appends "start", holds 150 ms, appends "end": with one slot the lines of
        // two scripts never interleave.
        let script = dir.script(
            "busy",
            &format!(
                "echo start >> {log}\nsleep 0.15\necho end >> {log}\nexit 0",
                log = log.display()
            ),
        );
        let slots = Arc::new(Semaphore::new(1));
        let (tx, mut rx) = mpsc::channel(8);
        let a = spawn(
            script_spec("a", &script, 5_000, 1, 1),
            slots.clone(),
            tx.clone(),
        );
        let b = spawn(script_spec("b", &script, 5_000, 1, 1), slots, tx);
        next(&mut rx).await;
        next(&mut rx).await;
        a.abort();
        b.abort();
        // Once an aborted task is gone its run's process group has had SIGKILL (dropping a
        // run kills its group): nothing writes to the log any more.
        assert!(a.await.expect_err("aborted").is_cancelled());
        assert!(b.await.expect_err("aborted").is_cancelled());
        let text = std::fs::read_to_string(&log).expect("log");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() >= 4, "{lines:?}");
        for pair in lines.chunks(2).filter(|c| c.len() == 2) {
            assert_eq!(pair, ["start", "end"], "runs overlapped: {lines:?}");
        }
    }

    fn nobody() -> crate::track::ScriptUser {
        let (uid, gid) = crate::track::security::lookup_user("nobody").expect("user nobody");
        crate::track::ScriptUser {
            name: "nobody".into(),
            group: None,
            uid,
            gid,
        }
    }

    #[tokio::test]
    #[ignore = "needs root"]
    async fn a_script_runs_as_its_user_with_no_other_group() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = TempDir::new("runas");
        // The script writes its ids where nobody may write.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let out = dir.path().join("ids.out");
        let script = dir.script(
            "ids",
            &format!("echo \"$(id -u) $(id -g) $(id -G)\" > {}", out.display()),
        );
        let user = nobody();
        let run_as = RunAs {
            user: Some(user.clone()),
            script_security: false,
        };
        let outcome =
            run_with_timeout("/bin/sh", [&script], Duration::from_secs(10), &run_as).await;
        assert!(outcome.success(), "{outcome:?}");
        let ids = std::fs::read_to_string(&out).expect("ids written");
        assert_eq!(
            ids.trim(),
            format!("{} {} {}", user.uid, user.gid, user.gid),
            "root's supplementary groups must be gone"
        );
    }

    #[tokio::test]
    #[ignore = "needs root"]
    async fn a_script_whose_directory_becomes_writable_is_disabled() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = TempDir::new("disable");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let script = dir.script("chk", "exit 0");
        let spec = ScriptSpec {
            // Run directly: the checked program is the script itself.
            command: vec![script.display().to_string()],
            run_as: RunAs {
                user: None,
                script_security: true,
            },
            ..script_spec("chk", &script, 5_000, 1, 1)
        };
        let (tx, mut rx) = mpsc::channel(8);
        let task = spawn(spec, Arc::new(Semaphore::new(1)), tx);
        assert_eq!(
            next(&mut rx).await,
            Observation::Script {
                name: "chk".into(),
                ok: true
            }
        );
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        assert_eq!(
            next(&mut rx).await,
            Observation::ScriptDisabled { name: "chk".into() }
        );
        // Disabled for good: the task has ended and closed its sender.
        let closed = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert_eq!(closed.expect("the task ends"), None);
        assert!(task.is_finished());
    }
}
