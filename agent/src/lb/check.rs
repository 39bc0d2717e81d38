//! Health checks of real servers: TCP connect, HTTP `GET`, script; each under its timeout,
//! turned into up/down with keepalived's rise/fall ([`RiseFall`]), as tokio tasks that report
//! changes to the daemon loop.
//!
//! - [`check_once`] runs one check and says why it passed or failed, in the words that
//!   `vipflip status` and the logs show ("connected", "HTTP 503, expected 200", …).
//! - [`spawn_checks`] runs every target's check every `interval` with at most `max_parallel`
//!   in flight across all targets, and sends a [`HealthReport`] when a real server's health
//!   changes (the first result at once, as the tracking scripts do).
//!
//! Nothing here blocks the runtime: sockets are tokio's, scripts run through
//! [`run_with_timeout`] (their own process group, killed at the timeout or when the task is
//! dropped), and an HTTP response is read with bounds (see `http`).

mod http;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::config::{CheckKind, HealthCheck};
use crate::lb::hold_down::HoldDown;
use crate::track::security::Insecure;
use crate::track::{RiseFall, RunAs, RunOutcome, run_with_timeout};

/// How many checks may be in flight at once across all real servers (what the daemon passes
/// to [`spawn_checks`]); a check whose turn comes while all are busy waits for a slot.
pub const MAX_CONCURRENT_CHECKS: usize = 64;

/// What to check: one real server of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTarget {
    pub service: String,
    pub address: IpAddr,
    pub check: HealthCheck,
}

/// A real server's health changed (after rise/fall; the first result is reported at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub service: String,
    pub address: IpAddr,
    pub healthy: bool,
    /// Why, for status and logs: the [`Passed`] or [`CheckError`] of the check that decided.
    pub detail: String,
}

/// How a check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passed {
    /// The TCP connection was established (and closed again).
    Connected,
    /// The HTTP status was the expected one (and the body matched, if asked).
    Http { status: u16 },
    /// The script exited 0.
    Exited,
}

impl std::fmt::Display for Passed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connected => f.write_str("connected"),
            Self::Http { status } => write!(f, "HTTP {status}"),
            Self::Exited => f.write_str("exit status 0"),
        }
    }
}

/// Why a check failed. The messages are short on purpose: they end up in `vipflip status`.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The whole check (connect, request, response) took longer than the check's `timeout`.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    #[error("connect: {}", io_words(.0))]
    Connect(#[source] std::io::Error),
    #[error("sending the request: {}", io_words(.0))]
    Send(#[source] std::io::Error),
    #[error("reading the response: {}", io_words(.0))]
    Receive(#[source] std::io::Error),
    /// Not an HTTP/1.x response we can read: bad syntax, headers over the bound, cut short.
    #[error("bad response: {0}")]
    BadResponse(String),
    #[error("HTTP {got}, expected {expected}")]
    Status { got: u16, expected: u16 },
    /// The body (its first 64 KiB) does not match the regex.
    #[error("body does not match /{pattern}/")]
    BodyMismatch { pattern: String },
    #[error("{}", exit_words(*.0))]
    Exit(ExitStatus),
    /// The script outlived the timeout; its process group was killed.
    #[error("timed out after {0:?}, killed")]
    ScriptTimedOut(Duration),
    #[error("running {program}: {}", io_words(.source))]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("waiting for the script: {}", io_words(.0))]
    Wait(#[source] std::io::Error),
    #[error("empty command")]
    EmptyCommand,
    /// `script_security` refused to run it: the check is disabled (see [`run_target`]).
    #[error("disabled: script_security refuses it: {0}")]
    Refused(#[source] Insecure),
}

/// The running check tasks; dropping this stops them all (a script still running is killed
/// with its process group).
#[derive(Debug, Default)]
pub struct CheckHandles {
    tasks: Vec<JoinHandle<()>>,
}

impl CheckHandles {
    /// How many targets are being checked (one task each).
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl Drop for CheckHandles {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts one task per target on the current runtime: its first check at once, then one
/// every `interval` (a check that takes longer delays the next; checks of one target never
/// overlap). At most `max_parallel` (at least 1) checks run at once across all targets; a
/// check's timeout starts when it gets its slot. Changes are sent on `tx`, waiting when it is
/// full (never dropped); a task ends when the receiver is gone.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the caller hands its sender over: the channel closes when the last task ends"
)]
pub fn spawn_checks(
    targets: Vec<CheckTarget>,
    tx: mpsc::Sender<HealthReport>,
    max_parallel: usize,
) -> CheckHandles {
    let slots = Arc::new(Semaphore::new(max_parallel.max(1)));
    let tasks = targets
        .into_iter()
        .map(|target| tokio::spawn(run_target(target, Arc::clone(&slots), tx.clone())))
        .collect();
    CheckHandles { tasks }
}

/// Runs `check` against `address` once, within its timeout.
pub async fn check_once(address: IpAddr, check: &HealthCheck) -> Result<Passed, CheckError> {
    match &check.kind {
        CheckKind::Tcp { port } => {
            within(check.timeout, tcp(SocketAddr::new(address, *port))).await
        }
        CheckKind::Http {
            port,
            path,
            expect_status,
            body,
        } => {
            let request = http::Request {
                address: SocketAddr::new(address, *port),
                path,
                expect_status: *expect_status,
                body: body.as_ref().map(|b| &b.0),
            };
            within(check.timeout, http::check(&request)).await
        }
        CheckKind::Script { command, run_as } => script(command, check.timeout, run_as).await,
    }
}

/// The task of one target: check, count, report changes.
///
/// A script check that `script_security` refuses (its path became writable by others than
/// root since the configuration was read) is disabled: keepalived removes such a
/// `MISC_CHECK`, and a real server without checkers is up. So the server is reported
/// healthy, with the reason, and the task ends.
async fn run_target(target: CheckTarget, slots: Arc<Semaphore>, tx: mpsc::Sender<HealthReport>) {
    let mut ticker = tokio::time::interval(target.check.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut status = RiseFall::new(target.check.rise, target.check.fall);
    let mut hold = HoldDown::new(target.check.hold_down);
    loop {
        ticker.tick().await;
        let result = {
            // The semaphore is never closed, so acquiring cannot fail while it is ours.
            let Ok(_slot) = slots.acquire().await else {
                return;
            };
            check_once(target.address, &target.check).await
        };
        if let Err(CheckError::Refused(insecure)) = &result {
            log::warn!(
                "check of {} in {}: disabled, script_security refuses it: {insecure}",
                target.address,
                target.service
            );
            let report = HealthReport {
                service: target.service.clone(),
                address: target.address,
                healthy: true,
                detail: format!("check disabled by script_security: {insecure}"),
            };
            let _ = tx.send(report).await;
            return;
        }
        let detail = match &result {
            Ok(passed) => passed.to_string(),
            Err(error) => error.to_string(),
        };
        log::debug!(
            "check of {} in {}: {detail}",
            target.address,
            target.service
        );
        status.record(result.is_ok());
        let Some(passing) = status.status() else {
            continue;
        };
        let Some(healthy) = hold.verdict(passing, Instant::now()) else {
            continue;
        };
        let report = HealthReport {
            service: target.service.clone(),
            address: target.address,
            healthy,
            detail,
        };
        if tx.send(report).await.is_err() {
            return; // The daemon is gone.
        }
    }
}

/// `future`, or [`CheckError::TimedOut`] once `timeout` has passed.
async fn within(
    timeout: Duration,
    future: impl Future<Output = Result<Passed, CheckError>>,
) -> Result<Passed, CheckError> {
    tokio::time::timeout(timeout, future)
        .await
        .unwrap_or(Err(CheckError::TimedOut(timeout)))
}

/// Connects and closes again (a FIN, as keepalived's `TCP_CHECK`).
async fn tcp(address: SocketAddr) -> Result<Passed, CheckError> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(CheckError::Connect)?;
    drop(stream);
    Ok(Passed::Connected)
}

/// Runs `command` (argv, no shell) under `timeout`; exit 0 passes.
async fn script(
    command: &[String],
    timeout: Duration,
    run_as: &RunAs,
) -> Result<Passed, CheckError> {
    let Some((program, args)) = command.split_first() else {
        return Err(CheckError::EmptyCommand);
    };
    match run_with_timeout(program, args, timeout, run_as).await {
        RunOutcome::Exited(status) if status.success() => Ok(Passed::Exited),
        RunOutcome::Exited(status) => Err(CheckError::Exit(status)),
        RunOutcome::TimedOut => Err(CheckError::ScriptTimedOut(timeout)),
        RunOutcome::SpawnFailed(source) => Err(CheckError::Spawn {
            program: program.clone(),
            source,
        }),
        RunOutcome::WaitFailed(e) => Err(CheckError::Wait(e)),
        RunOutcome::Refused(insecure) => Err(CheckError::Refused(insecure)),
    }
}

/// An I/O error in words, without std's " (os error N)" tail: "Connection refused".
fn io_words(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// "exit status 1", or "killed by signal 9".
fn exit_words(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests;
