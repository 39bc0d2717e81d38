//! keepalived's `vrrp_track_process`, sans-IO: which processes a tracker counts
//! ([`ProcessPattern`]) and when its count makes it up or down ([`ProcessQuorum`]), from
//! keepalived 2.2 `core/track_process.c`.
//!
//! A driver (an initial `/proc` scan, then the kernel's process events: fork, exec, comm
//! change, exit) tells each tracker's [`ProcessQuorum`] how many of its processes run; the
//! quorum says when the tracker's status changes, which becomes a tracking observation.
//! Time comes in as `now`; the quorum never reads the clock.

use core::time::Duration;
use std::time::Instant;

/// The kernel keeps a process name (`/proc/PID/comm`) to `TASK_COMM_LEN - 1` bytes.
pub const COMM_MAX: usize = 15;

/// How a process's parameters (its command line after the program) must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParamMatch {
    /// Exactly the configured parameters (none, if none are configured).
    #[default]
    Exact,
    /// The configured parameters first; more may follow (keepalived `param_match partial`).
    Partial,
    /// As `Partial`, and the last configured parameter may be the start of the process's
    /// (keepalived `param_match initial`).
    Initial,
}

/// Which processes a `[[track_process]]` counts (keepalived `process NAME [PARAMS…]`,
/// `param_match`, `full_command`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessPattern {
    /// The process name (`/proc/PID/comm`), or with `full_command` or parameters the
    /// program as the command line names it (its first element).
    pub name: String,
    /// `None`: the parameters are not looked at.
    pub params: Option<Vec<String>>,
    pub param_match: ParamMatch,
    /// Match the command line's first element instead of the process name.
    pub full_command: bool,
}

impl ProcessPattern {
    /// Whether the command line is needed (`/proc/PID/cmdline`), not the name alone.
    pub fn needs_cmdline(&self) -> bool {
        self.full_command || self.params.is_some()
    }

    /// Whether a process named `comm` running `argv` is one of ours. keepalived compares
    /// names exactly (`pgrep '^NAME$'`, not a pattern); a configured name longer than the
    /// kernel keeps is compared on the bytes kept.
    pub fn matches(&self, comm: &str, argv: &[&str]) -> bool {
        if self.needs_cmdline() {
            if argv.first() != Some(&self.name.as_str()) {
                return false;
            }
        } else if comm != truncate_comm(&self.name) {
            return false;
        }
        let Some(params) = &self.params else {
            return true;
        };
        let theirs = argv.get(1..).unwrap_or_default();
        match self.param_match {
            ParamMatch::Exact => theirs.iter().copied().eq(params.iter().map(String::as_str)),
            ParamMatch::Partial => {
                theirs.len() >= params.len()
                    && theirs.iter().zip(params).all(|(t, p)| *t == p.as_str())
            }
            ParamMatch::Initial => {
                let Some((last, first)) = params.split_last() else {
                    return true;
                };
                theirs.len() >= params.len()
                    && theirs.iter().zip(first).all(|(t, p)| *t == p.as_str())
                    && theirs[first.len()].starts_with(last.as_str())
            }
        }
    }
}

/// `name` cut to what the kernel keeps of a process name, on a character boundary.
fn truncate_comm(name: &str) -> &str {
    if name.len() <= COMM_MAX {
        return name;
    }
    let mut end = COMM_MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// When a tracker's process count makes it up (keepalived `quorum`, `quorum_max`,
/// `fork_delay`, `terminate_delay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumConfig {
    /// Fewest processes for up. Default 1.
    pub quorum: u32,
    /// Most processes for up (0: up only while none runs). Default unlimited.
    pub quorum_max: u32,
    /// Reaching the range counts only after this long (a fork that is about to exec, a
    /// restart); leaving it again in the meantime cancels it.
    pub fork_delay: Duration,
    /// Leaving the range counts only after this long (a reload that stops then starts the
    /// process); coming back in the meantime cancels it.
    pub terminate_delay: Duration,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        Self {
            quorum: 1,
            quorum_max: u32::MAX,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
        }
    }
}

/// One tracker's process count and status, sans-IO.
///
/// Call [`Self::set_count`] with every new count (the first after the initial scan is
/// reported at once, without delay), [`Self::handle_timeout`] at [`Self::poll_timeout`].
/// Each returns the status to report when it changes.
#[derive(Debug, Clone)]
pub struct ProcessQuorum {
    config: QuorumConfig,
    count: u32,
    /// What was last reported; `None` before the first count.
    reported: Option<bool>,
    /// A delayed change: when the count's verdict is reported unless cancelled.
    pending: Option<Instant>,
}

impl ProcessQuorum {
    pub fn new(config: QuorumConfig) -> Self {
        Self {
            config,
            count: 0,
            reported: None,
            pending: None,
        }
    }

    /// How many matching processes run now.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether `count` processes are within `quorum..=quorum_max`.
    pub fn in_range(&self, count: u32) -> bool {
        (self.config.quorum..=self.config.quorum_max).contains(&count)
    }

    /// `count` processes run now. Crossing into the range reports up at once, or after
    /// `fork_delay`; crossing out reports down at once, or after `terminate_delay`. A
    /// crossing back while a delay runs cancels it, and nothing is reported (keepalived
    /// cancels its timer the same way).
    pub fn set_count(&mut self, now: Instant, count: u32) -> Option<bool> {
        self.count = count;
        let up = self.in_range(count);
        let Some(reported) = self.reported else {
            self.reported = Some(up);
            return Some(up);
        };
        if up == reported {
            self.pending = None;
            return None;
        }
        if self.pending.is_some() {
            return None;
        }
        let delay = if up {
            self.config.fork_delay
        } else {
            self.config.terminate_delay
        };
        if delay.is_zero() {
            self.reported = Some(up);
            return Some(up);
        }
        self.pending = Some(now + delay);
        None
    }

    /// When [`Self::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending
    }

    /// A delay ran out: reports the count's verdict if it differs from the last report.
    /// Calling early is a harmless no-op.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<bool> {
        let due = self.pending?;
        if now < due {
            return None;
        }
        self.pending = None;
        let up = self.in_range(self.count);
        if self.reported == Some(up) {
            return None;
        }
        self.reported = Some(up);
        Some(up)
    }
}

#[cfg(test)]
mod tests;
