//! keepalived's notifications: per-state scripts and the notify FIFO.
//!
//! On every state change of an instance or sync group the daemon calls
//! [`Notifier::state_changed`], which
//!
//! - writes one line to `global.notify_fifo`, keepalived's `notify_fifo` format
//!   (`INSTANCE "VI_1" MASTER 100\n`, `GROUP "G1" FAULT 0\n`): synchronously, with a
//!   non-blocking write that either puts the whole line in the pipe or nothing (a line of at
//!   most `PIPE_BUF` bytes is atomic), so lines arrive in the order of the calls and the
//!   caller never waits. No reader, a full pipe, or a reader gone: the line is dropped and
//!   counted ([`NotifyStats`]).
//! - starts the configured script for the new state (`notify.master`, `.backup`, `.fault`,
//!   `.stop`, and for keepalived's `MASTER_RX_LOWER_PRI` event `.master_rx_lower_pri`) as `SCRIPT TYPE NAME STATE PRIORITY` on the tokio runtime, never awaited by the
//!   caller; one that outlives [`Notifier::DEFAULT_SCRIPT_TIMEOUT`] is killed with its
//!   process group, and every one is reaped.
//!
//! keepalived passes those four arguments only to its generic `notify` script and runs
//! `notify_master` & co. with none; vipflip has only the per-state scripts, so it passes
//! them there (a script that ignores its arguments behaves as under keepalived). Like
//! keepalived, scripts of successive changes run concurrently and may finish in any order:
//! the FIFO is the ordered channel ("guarantees that they will be delivered in the correct
//! sequence", keepalived.conf(5)).
//!
//! Scripts run as `[global] script_user` (keepalived runs notify scripts as its
//! `script_user` too). With `script_security`, a script whose path others than root can
//! write is not run, each time it would be, and logged: keepalived disables it.

use std::collections::HashMap;
use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::{Config, Notify};
use crate::track::{RunAs, RunOutcome, run_with_timeout};
use crate::wire::Priority;

/// Which kind of object changed state (keepalived's `TYPE` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyKind {
    Instance,
    Group,
}

impl fmt::Display for NotifyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Instance => "INSTANCE",
            Self::Group => "GROUP",
        })
    }
}

/// The state entered (keepalived's `STATE` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyState {
    Master,
    Backup,
    Fault,
    /// The instance was stopped (shutdown); keepalived sends it for instances only.
    Stop,
    /// Not a state: as master, the instance heard an advert of lower priority (keepalived's
    /// `MASTER_RX_LOWER_PRI` event, instances only).
    MasterRxLowerPri,
}

impl fmt::Display for NotifyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Master => "MASTER",
            Self::Backup => "BACKUP",
            Self::Fault => "FAULT",
            Self::Stop => "STOP",
            Self::MasterRxLowerPri => "MASTER_RX_LOWER_PRI",
        })
    }
}

/// Why the notifier could not be set up, naming the FIFO and the operation.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notify_fifo {path}: exists and is not a FIFO")]
    NotAFifo { path: PathBuf },
    #[error("notify_fifo {path}: {op}: {source}")]
    Fifo {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// What the notifier did, for status output and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotifyStats {
    /// Lines written whole to the FIFO.
    pub fifo_written: u64,
    /// Lines dropped: no reader, pipe full, reader gone, or longer than `PIPE_BUF`.
    pub fifo_dropped: u64,
    /// Scripts started.
    pub scripts_started: u64,
    /// Scripts that could not start, exited non-zero, or were killed at the timeout.
    pub scripts_failed: u64,
    /// Of those, the ones killed at the timeout.
    pub scripts_timed_out: u64,
}

/// Runs notify scripts and writes the notify FIFO; see the module docs.
#[derive(Debug)]
pub struct Notifier {
    scripts: HashMap<(NotifyKind, String), Notify>,
    /// `[global] script_user` and `script_security`.
    run_as: RunAs,
    fifo: Option<Fifo>,
    script_timeout: Duration,
    counters: Arc<Counters>,
    /// Scripts started and not known to be finished (pruned at each start).
    running: Vec<tokio::task::JoinHandle<()>>,
}

impl Notifier {
    /// How long a notify script may run before it is killed. keepalived sets no limit; one is
    /// set so a hung script cannot pile up processes on every flap.
    pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

    /// The scripts of every instance and sync group, and the FIFO if configured: created
    /// (mode 0600) if missing, as keepalived does, and removed again on drop if created here.
    pub fn new(config: &Config) -> Result<Self, NotifyError> {
        let fifo = config
            .global
            .notify_fifo
            .as_deref()
            .map(Fifo::create)
            .transpose()?;
        Ok(Self {
            scripts: Self::scripts_of(config),
            run_as: config.global.run_as(),
            fifo,
            script_timeout: Self::DEFAULT_SCRIPT_TIMEOUT,
            counters: Arc::default(),
            running: Vec::new(),
        })
    }

    /// A reload: takes the notify scripts of `config`'s instances and groups, keeping those
    /// of the instances in `keep` that it no longer has (removed ones still handing off:
    /// their BACKUP and STOP scripts are still due). The FIFO stays as it is
    /// (`global.notify_fifo` changes at the next restart).
    pub fn set_scripts(&mut self, config: &Config, keep: &[String]) {
        let mut scripts = Self::scripts_of(config);
        for name in keep {
            let key = (NotifyKind::Instance, name.clone());
            if let Some(notify) = self.scripts.remove(&key) {
                scripts.entry(key).or_insert(notify);
            }
        }
        self.scripts = scripts;
        self.run_as = config.global.run_as();
    }

    /// Waits, at most `bound`, for the scripts still running (the daemon is exiting: its
    /// runtime going away would kill them, STOP scripts among them).
    pub async fn wait_for_scripts(&mut self, bound: Duration) {
        let running: Vec<_> = std::mem::take(&mut self.running);
        let all = async {
            for task in running {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(bound, all).await.is_err() {
            log::warn!("notify scripts still running after {bound:?} at exit; they are killed");
        }
    }

    fn scripts_of(config: &Config) -> HashMap<(NotifyKind, String), Notify> {
        let instances = config
            .instances
            .iter()
            .map(|i| ((NotifyKind::Instance, i.name.clone()), i.notify.clone()));
        let groups = config
            .sync_groups
            .iter()
            .map(|g| ((NotifyKind::Group, g.name.clone()), g.notify.clone()));
        instances.chain(groups).collect()
    }

    /// Replaces [`Self::DEFAULT_SCRIPT_TIMEOUT`].
    #[must_use]
    pub fn with_script_timeout(mut self, timeout: Duration) -> Self {
        self.script_timeout = timeout;
        self
    }

    /// `name` (an instance or a sync group, per `kind`) entered `state` with `priority`:
    /// writes the FIFO line now, starts the state's script (if configured) in the background.
    /// Never blocks. Must be called from within a tokio runtime for scripts to run.
    pub fn state_changed(
        &mut self,
        kind: NotifyKind,
        name: &str,
        state: NotifyState,
        priority: Priority,
    ) {
        if let Some(fifo) = &mut self.fifo {
            let line = fifo_line(kind, name, state, priority);
            let counter = if fifo.write_line(&line) {
                &self.counters.fifo_written
            } else {
                &self.counters.fifo_dropped
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        let Some(notify) = self.scripts.get(&(kind, name.to_owned())) else {
            return;
        };
        let script = match state {
            NotifyState::Master => &notify.master,
            NotifyState::Backup => &notify.backup,
            NotifyState::Fault => &notify.fault,
            NotifyState::Stop => &notify.stop,
            NotifyState::MasterRxLowerPri => &notify.master_rx_lower_pri,
        };
        let Some(script) = script.clone() else {
            return;
        };
        self.counters
            .scripts_started
            .fetch_add(1, Ordering::Relaxed);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            log::error!(
                "notify {kind} {name} {state}: {}: no tokio runtime to run it on",
                script.display()
            );
            self.counters.scripts_failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let args = [
            kind.to_string(),
            name.to_owned(),
            state.to_string(),
            priority.0.to_string(),
        ];
        let timeout = self.script_timeout;
        let run_as = self.run_as.clone();
        let counters = self.counters.clone();
        let what = format!("notify {kind} {name} {state}: {}", script.display());
        self.running.retain(|task| !task.is_finished());
        self.running.push(runtime.spawn(async move {
            let outcome = run_with_timeout(&script, &args, timeout, &run_as).await;
            if outcome.success() {
                log::debug!("{what}: done");
                return;
            }
            counters.scripts_failed.fetch_add(1, Ordering::Relaxed);
            match outcome {
                RunOutcome::TimedOut => {
                    counters.scripts_timed_out.fetch_add(1, Ordering::Relaxed);
                    log::warn!("{what}: still running after {timeout:?}, killed");
                }
                RunOutcome::Exited(status) => log::warn!("{what}: {status}"),
                RunOutcome::SpawnFailed(e) => log::warn!("{what}: cannot run it: {e}"),
                RunOutcome::WaitFailed(e) => log::warn!("{what}: waiting for it: {e}"),
                RunOutcome::Refused(insecure) => {
                    log::warn!("{what}: disabled, script_security refuses it: {insecure}");
                }
            }
        }));
    }

    /// Counts so far. Scripts are counted when they finish.
    pub fn stats(&self) -> NotifyStats {
        let c = &self.counters;
        NotifyStats {
            fifo_written: c.fifo_written.load(Ordering::Relaxed),
            fifo_dropped: c.fifo_dropped.load(Ordering::Relaxed),
            scripts_started: c.scripts_started.load(Ordering::Relaxed),
            scripts_failed: c.scripts_failed.load(Ordering::Relaxed),
            scripts_timed_out: c.scripts_timed_out.load(Ordering::Relaxed),
        }
    }
}

/// keepalived's FIFO line: `TYPE "NAME" STATE PRIORITY\n`.
pub fn fifo_line(kind: NotifyKind, name: &str, state: NotifyState, priority: Priority) -> String {
    format!("{kind} \"{name}\" {state} {}\n", priority.0)
}

#[derive(Debug, Default)]
struct Counters {
    fifo_written: AtomicU64,
    fifo_dropped: AtomicU64,
    scripts_started: AtomicU64,
    scripts_failed: AtomicU64,
    scripts_timed_out: AtomicU64,
}

/// The write end of the notify FIFO, opened lazily: opening a FIFO for writing without a
/// reader fails (`ENXIO` with `O_NONBLOCK`), so it is retried at each line until a reader
/// appears, and dropped when the reader goes (`EPIPE`).
#[derive(Debug)]
struct Fifo {
    path: PathBuf,
    file: Option<File>,
    created: bool,
}

impl Fifo {
    fn create(path: &Path) -> Result<Self, NotifyError> {
        let created = match std::fs::metadata(path) {
            Ok(meta) if meta.file_type().is_fifo() => false,
            Ok(_) => {
                return Err(NotifyError::NotAFifo {
                    path: path.to_owned(),
                });
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                mkfifo(path).map_err(|source| NotifyError::Fifo {
                    path: path.to_owned(),
                    op: "mkfifo",
                    source,
                })?;
                true
            }
            Err(source) => {
                return Err(NotifyError::Fifo {
                    path: path.to_owned(),
                    op: "stat",
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_owned(),
            file: None,
            created,
        })
    }

    /// Writes `line` whole or not at all; true if written.
    fn write_line(&mut self, line: &str) -> bool {
        // Only writes of at most PIPE_BUF bytes are atomic: a longer one could be cut.
        if line.len() > libc::PIPE_BUF {
            log::warn!(
                "notify_fifo {}: line of {} bytes exceeds PIPE_BUF, dropped",
                self.path.display(),
                line.len()
            );
            return false;
        }
        if self.file.is_none() {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path)
            {
                Ok(file) => self.file = Some(file),
                Err(e) => {
                    // ENXIO: nobody reads; a common, quiet case.
                    if e.raw_os_error() != Some(libc::ENXIO) {
                        log::warn!("notify_fifo {}: open: {e}", self.path.display());
                    }
                    return false;
                }
            }
        }
        let Some(file) = &mut self.file else {
            return false;
        };
        match file.write(line.as_bytes()) {
            Ok(n) if n == line.len() => true,
            Ok(n) => {
                log::warn!(
                    "notify_fifo {}: short write {n}/{}",
                    self.path.display(),
                    line.len()
                );
                false
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => {
                // EPIPE: the reader went away; reopen at the next line.
                if e.kind() != ErrorKind::BrokenPipe {
                    log::warn!("notify_fifo {}: write: {e}", self.path.display());
                }
                self.file = None;
                false
            }
        }
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests;
