//! Running an external program under a timeout, for tracking scripts and notify scripts.
//!
//! The program runs without a shell, with stdin/stdout/stderr on `/dev/null` (as keepalived
//! runs its scripts), in a process group of its own: when it outlives its timeout, or the
//! task awaiting it is dropped, the whole group is killed with `SIGKILL`, so a shell script's
//! children (a `sleep`, a `curl`) die with it. The killed leader is then reaped.
//!
//! It runs as [`RunAs::user`] when one is set: the child sets its group, drops every
//! supplementary group and sets its user before `exec` (std's `CommandExt::uid`/`gid`,
//! keepalived's `setgid`/`setgroups`/`setuid`). With [`RunAs::script_security`] its path is
//! checked just before each run ([`security`](super::security)), so a script whose
//! permissions changed since the configuration was read is refused, not run.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use super::security::{Insecure, RealFs, RunAs, check_script};

/// How a run ended.
#[derive(Debug)]
pub(crate) enum RunOutcome {
    /// It exited (or was killed by a signal from elsewhere).
    Exited(ExitStatus),
    /// It outlived the timeout; its process group was killed.
    TimedOut,
    /// It could not be started (no such program, not executable, …).
    SpawnFailed(std::io::Error),
    /// Waiting for it failed.
    WaitFailed(std::io::Error),
    /// Not run: `script_security` found it insecure.
    Refused(Insecure),
}

impl RunOutcome {
    /// keepalived's meaning of success: exit status 0; everything else is a failure.
    pub(crate) fn success(&self) -> bool {
        matches!(self, Self::Exited(status) if status.success())
    }
}

/// Runs `program args…` as `run_as` says and waits at most `timeout` for it.
pub(crate) async fn run_with_timeout<I, S>(
    program: impl AsRef<OsStr>,
    args: I,
    timeout: Duration,
    run_as: &RunAs,
) -> RunOutcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    if run_as.script_security
        && let Err(insecure) = check_script(Path::new(program.as_ref()), run_as, &RealFs)
    {
        return RunOutcome::Refused(insecure);
    }
    let mut command = tokio::process::Command::new(program);
    if let Some(user) = &run_as.user {
        // std sets the group, clears the supplementary groups (as root), then the user.
        command.gid(user.gid).uid(user.uid);
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // A group of its own, so the kill below reaches its children too.
        .process_group(0)
        // If this future is dropped, tokio kills the leader and reaps it in the background;
        // `GroupGuard` kills the rest of the group.
        .kill_on_drop(true);
    let mut child = match spawn(&mut command).await {
        Ok(child) => child,
        Err(e) => return RunOutcome::SpawnFailed(e),
    };
    let mut guard = GroupGuard(child.id());
    let outcome = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => RunOutcome::Exited(status),
        Ok(Err(e)) => RunOutcome::WaitFailed(e),
        Err(_elapsed) => {
            guard.kill();
            // Reap the leader; SIGKILL cannot be caught, so this returns promptly.
            let _ = child.wait().await;
            RunOutcome::TimedOut
        }
    };
    guard.0 = None;
    outcome
}

/// Starts `command`, retrying briefly on `ETXTBSY`: a script that was just written may
/// still be open for writing in a process another thread forked and has not yet exec'd
/// (the close-on-exec race every multithreaded program that writes and runs scripts has).
async fn spawn(command: &mut tokio::process::Command) -> std::io::Result<tokio::process::Child> {
    const TRIES: u32 = 5;
    let mut tries = 1;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < TRIES => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

/// The process group of a child not yet reaped; killed on drop unless disarmed.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn kill(&mut self) {
        let Some(leader) = self.0.take() else { return };
        let Ok(pgid) = libc::pid_t::try_from(leader) else {
            return;
        };
        // SAFETY: kill(2) has no memory-safety preconditions. `pgid` is the group our child
        // leads (`process_group(0)`), and the child is not reaped yet (the caller still holds
        // its `Child` and has not seen it exit), so the id cannot have been reused.
        let _ = unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
