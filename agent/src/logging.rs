//! Where the daemon's log lines go and what they look like: the decision ([`LogStyle::choose`],
//! pure, from the environment and what stderr is) and the subscriber that carries it out.
//!
//! - On a terminal: tracing-subscriber's text with colour, unless `NO_COLOR` is set
//!   (<https://no-color.org>: any non-empty value).
//! - On a file or a pipe: the same text without colour codes.
//! - On the journal (`JOURNAL_STREAM` names the device and inode stderr is, as systemd sets it
//!   for `StandardError=journal`): no timestamp of our own (the journal stamps each entry) and
//!   each line prefixed with its syslog priority (`<3>` error … `<7>` debug), which journald
//!   reads as the entry's priority (sd-daemon(3)), so `journalctl -p warning -u vipflip` works.
//! - `--log-format json`: one JSON object a line, wherever it goes.

use std::{fmt, io::IsTerminal as _, os::fd::AsRawFd as _};

use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent as _;
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format},
    registry::LookupSpan,
};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// How the lines are written, chosen by [`LogStyle::choose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStyle {
    /// Timestamped text, coloured or not.
    Text {
        colour: bool,
    },
    /// `<priority>target: message`, for journald.
    Journal,
    Json,
}

/// What [`LogStyle::choose`] decides from: the environment and what stderr is.
#[derive(Debug, Clone, Default)]
pub struct Surroundings {
    /// `NO_COLOR`'s value, if set.
    pub no_color: Option<String>,
    /// `JOURNAL_STREAM`'s value (`"<device>:<inode>"`), if set.
    pub journal_stream: Option<String>,
    pub stderr_is_terminal: bool,
    /// stderr's device and inode numbers, when `fstat` could tell.
    pub stderr_identity: Option<(u64, u64)>,
}

impl Surroundings {
    /// This process's.
    pub fn current() -> Self {
        let stderr = std::io::stderr();
        Self {
            no_color: std::env::var("NO_COLOR").ok(),
            journal_stream: std::env::var("JOURNAL_STREAM").ok(),
            stderr_is_terminal: stderr.is_terminal(),
            stderr_identity: fd_identity(stderr.as_raw_fd()),
        }
    }

    /// Whether stderr is the stream `JOURNAL_STREAM` names: the variable is inherited by
    /// whatever the service starts, so its mere presence does not mean our stderr is still
    /// connected to the journal (a notify script redirected to a file, say).
    fn stderr_is_journal(&self) -> bool {
        let Some((device, inode)) = self
            .journal_stream
            .as_deref()
            .and_then(|v| v.split_once(':'))
        else {
            return false;
        };
        let (Ok(device), Ok(inode)) = (device.parse::<u64>(), inode.parse::<u64>()) else {
            return false;
        };
        self.stderr_identity == Some((device, inode))
    }
}

impl LogStyle {
    pub fn choose(format: LogFormat, surroundings: &Surroundings) -> Self {
        if format == LogFormat::Json {
            return Self::Json;
        }
        if surroundings.stderr_is_journal() {
            return Self::Journal;
        }
        let no_color = surroundings
            .no_color
            .as_deref()
            .is_some_and(|v| !v.is_empty());
        Self::Text {
            colour: surroundings.stderr_is_terminal && !no_color,
        }
    }
}

/// Installs the subscriber for `format` on stderr, as this process's surroundings call for;
/// `RUST_LOG` filters (default `info`). `log` records from the libraries and our modules reach
/// it through the tracing-log bridge that `init` installs.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match LogStyle::choose(format, &Surroundings::current()) {
        LogStyle::Text { colour } => builder.with_ansi(colour).init(),
        LogStyle::Journal => builder.with_ansi(false).event_format(JournalLine).init(),
        LogStyle::Json => builder.json().init(),
    }
}

/// The syslog priority journald gives a line (sd-daemon(3): `SD_ERR` … `SD_DEBUG`).
pub fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// One event as `<priority>target: message field=value…`: no timestamp, no colour.
struct JournalLine;

impl<S, N> FormatEvent<S, N> for JournalLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Records bridged from `log` carry their real level and target in normalised metadata.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        write!(
            writer,
            "<{}>{}: ",
            syslog_priority(*metadata.level()),
            metadata.target()
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn fd_identity(fd: i32) -> Option<(u64, u64)> {
    // SAFETY: `stat` is plain data; zeroed is a valid value to be overwritten.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a valid out-pointer; a bad fd is reported, not undefined.
    if unsafe { libc::fstat(fd, &raw mut stat) } != 0 {
        return None;
    }
    Some((stat.st_dev, stat.st_ino))
}

#[cfg(test)]
mod tests {
    use super::{LogFormat, LogStyle, Surroundings, syslog_priority};
    use tracing::Level;

    fn on_terminal() -> Surroundings {
        Surroundings {
            stderr_is_terminal: true,
            stderr_identity: Some((24, 1234)),
            ..Surroundings::default()
        }
    }

    #[test]
    fn colour_only_on_a_terminal() {
        assert_eq!(
            LogStyle::choose(LogFormat::Text, &on_terminal()),
            LogStyle::Text { colour: true }
        );
        let to_a_file = Surroundings {
            stderr_is_terminal: false,
            ..on_terminal()
        };
        assert_eq!(
            LogStyle::choose(LogFormat::Text, &to_a_file),
            LogStyle::Text { colour: false }
        );
    }

    #[test]
    fn no_color_set_to_anything_turns_colour_off_and_empty_does_not() {
        let with = |value: &str| Surroundings {
            no_color: Some(value.into()),
            ..on_terminal()
        };
        assert_eq!(
            LogStyle::choose(LogFormat::Text, &with("1")),
            LogStyle::Text { colour: false }
        );
        assert_eq!(
            LogStyle::choose(LogFormat::Text, &with("")),
            LogStyle::Text { colour: true }
        );
    }

    #[test]
    fn the_journal_only_when_stderr_is_the_stream_it_names() {
        let journal = Surroundings {
            journal_stream: Some("24:1234".into()),
            stderr_is_terminal: false,
            ..on_terminal()
        };
        assert_eq!(
            LogStyle::choose(LogFormat::Text, &journal),
            LogStyle::Journal
        );
        // Inherited by something whose stderr now goes elsewhere: not the journal.
        let elsewhere = Surroundings {
            journal_stream: Some("24:999".into()),
            ..journal.clone()
        };
        assert_eq!(
            LogStyle::choose(LogFormat::Text, &elsewhere),
            LogStyle::Text { colour: false }
        );
        let garbage = Surroundings {
            journal_stream: Some("journal".into()),
            ..journal.clone()
        };
        assert_eq!(
            LogStyle::choose(LogFormat::Text, &garbage),
            LogStyle::Text { colour: false }
        );
        // JSON was asked for: JSON it is.
        assert_eq!(LogStyle::choose(LogFormat::Json, &journal), LogStyle::Json);
    }

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(syslog_priority(Level::ERROR), 3);
        assert_eq!(syslog_priority(Level::WARN), 4);
        assert_eq!(syslog_priority(Level::INFO), 6);
        assert_eq!(syslog_priority(Level::DEBUG), 7);
        assert_eq!(syslog_priority(Level::TRACE), 7);
    }
}
