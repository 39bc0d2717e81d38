//! The `[[script]]` driver: one tokio task per script, a run every `interval`.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::process::{RunOutcome, run_with_timeout};
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
            let ok = run_once(&spec, &slots).await;
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

/// One run: true when it exited 0 within its timeout.
async fn run_once(spec: &ScriptSpec, slots: &Semaphore) -> bool {
    let Some((program, args)) = spec.command.split_first() else {
        log::warn!("script {}: empty command", spec.name);
        return false;
    };
    // The semaphore is never closed, so acquiring only fails if that changes.
    let Ok(_slot) = slots.acquire().await else {
        return false;
    };
    let outcome = run_with_timeout(program, args, spec.timeout).await;
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
    }
    outcome.success()
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
        let outcome = run_with_timeout("/bin/sh", [&script], Duration::from_millis(300)).await;
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
        assert!(run_with_timeout("/bin/sh", [&ok], timeout).await.success());
        let outcome = run_with_timeout("/bin/sh", [&bad], timeout).await;
        assert!(
            matches!(&outcome, RunOutcome::Exited(s) if s.code() == Some(3)),
            "{outcome:?}"
        );
        let missing = run_with_timeout(dir.path().join("nope"), [] as [&str; 0], timeout).await;
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
}
