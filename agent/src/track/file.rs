//! The track-file driver: each file re-read when inotify says it changed, as keepalived
//! (`track_file.c`) does.
//!
//! The *directory* of each file is watched (`IN_CLOSE_WRITE | IN_DELETE | IN_MOVE`), not the
//! file: a file replaced by `rename(2)` (the atomic way to write one) or created later is
//! seen too. A file deleted or moved away holds 0. The value is read as keepalived reads it:
//! the first 127 bytes, `strtol(…, 0)` (see [`parse_value`]); a missing, empty or unreadable
//! file holds 0; a number out of range is logged and ignored (the last value stays).
//! A directory that does not exist cannot be watched: its files hold 0 and a warning says so.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Observation, TrackError};

/// keepalived reads `sizeof(buf) - 1` = 127 bytes.
const READ_LIMIT: u64 = 127;

/// Parses a track file's content as keepalived does with `strtol(buf, NULL, 0)`: leading
/// white space, an optional sign, then `0x`/`0X` hex, a leading `0` octal, or decimal, up to
/// the first character that is not a digit. No digits at all is 0 (so is an empty file).
/// `None` when the number does not fit an `i32` (keepalived: "Invalid number … ignoring").
pub fn parse_value(content: &[u8]) -> Option<i64> {
    let mut rest = content.trim_ascii_start();
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    let (radix, digits) = match rest {
        [b'0', b'x' | b'X', next, ..] if next.is_ascii_hexdigit() => (16, &rest[2..]),
        [b'0', ..] => (8, rest),
        _ => (10, rest),
    };
    let mut value: i64 = 0;
    for &byte in digits {
        let Some(digit) = char::from(byte).to_digit(radix) else {
            break;
        };
        value = value
            .checked_mul(i64::from(radix))?
            .checked_add(i64::from(digit))?;
        if value > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    let value = if negative { -value } else { value };
    i32::try_from(value).ok().map(i64::from)
}

/// Sets up the watches (in the calling thread, so errors come back here) and starts the task
/// that reports `paths` on `tx`: each one's value once at start, then changes.
pub(super) fn spawn(
    paths: BTreeSet<PathBuf>,
    tx: mpsc::Sender<Observation>,
) -> Result<JoinHandle<()>, TrackError> {
    let inotify = Inotify::init().map_err(TrackError::InotifyInit)?;
    let mut dirs: HashMap<WatchDescriptor, PathBuf> = HashMap::new();
    let mask = WatchMask::CLOSE_WRITE | WatchMask::DELETE | WatchMask::MOVE;
    for dir in paths
        .iter()
        .filter_map(|p| p.parent())
        .collect::<BTreeSet<_>>()
    {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        match inotify.watches().add(dir, mask) {
            Ok(wd) => {
                dirs.insert(wd, dir.to_owned());
            }
            Err(e) => log::warn!(
                "track_file: watching directory {}: {e}; its files hold 0 and are not re-read",
                dir.display()
            ),
        }
    }
    let mut events = inotify
        .into_event_stream([0u8; 4096])
        .map_err(TrackError::InotifyStream)?;
    Ok(tokio::spawn(async move {
        let mut files = Files {
            paths,
            reported: HashMap::new(),
        };
        let all: Vec<PathBuf> = files.paths.iter().cloned().collect();
        for path in all {
            let value = read_value(&path).await;
            if !files.report(&tx, &path, value).await {
                return;
            }
        }
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    log::error!("track_file: reading inotify events: {e}; files are not re-read");
                    return;
                }
            };
            let changed: Vec<(PathBuf, bool)> = if event.mask.contains(EventMask::Q_OVERFLOW) {
                // Events were lost: re-read every file.
                files.paths.iter().map(|p| (p.clone(), false)).collect()
            } else {
                let Some(dir) = dirs.get(&event.wd) else {
                    continue;
                };
                files
                    .matching(dir, event.name.as_ref())
                    .map(|p| {
                        let gone = event
                            .mask
                            .intersects(EventMask::DELETE | EventMask::MOVED_FROM);
                        (p, gone)
                    })
                    .collect()
            };
            for (path, gone) in changed {
                let value = if gone {
                    Some(0)
                } else {
                    read_value(&path).await
                };
                if !files.report(&tx, &path, value).await {
                    return;
                }
            }
        }
    }))
}

/// The tracked files and the value last reported for each.
struct Files {
    paths: BTreeSet<PathBuf>,
    reported: HashMap<PathBuf, i64>,
}

impl Files {
    /// The tracked files named `name` in `dir`.
    fn matching<'a>(
        &'a self,
        dir: &'a Path,
        name: Option<&'a OsString>,
    ) -> impl Iterator<Item = PathBuf> + 'a {
        self.paths
            .iter()
            .filter(move |p| {
                let parent = match p.parent() {
                    Some(d) if d.as_os_str().is_empty() => Path::new("."),
                    Some(d) => d,
                    None => return false,
                };
                parent == dir && p.file_name() == name.map(OsString::as_os_str)
            })
            .cloned()
    }

    /// Sends `value` for `path` if it is news; `None` (an invalid number) keeps the last one.
    /// False when the daemon is gone.
    async fn report(
        &mut self,
        tx: &mpsc::Sender<Observation>,
        path: &Path,
        value: Option<i64>,
    ) -> bool {
        let Some(value) = value else {
            return true;
        };
        if self.reported.get(path) == Some(&value) {
            return true;
        }
        log::info!("track_file {}: {value}", path.display());
        self.reported.insert(path.to_owned(), value);
        tx.send(Observation::File {
            path: path.to_owned(),
            value,
        })
        .await
        .is_ok()
    }
}

/// The value of the file at `path`: 0 when it cannot be opened or read, `None` when it holds
/// a number out of range. Opened non-blocking, so a FIFO put there cannot hang the task.
async fn read_value(path: &Path) -> Option<i64> {
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .await;
    let Ok(file) = file else {
        return Some(0);
    };
    let mut content = Vec::new();
    if file
        .take(READ_LIMIT)
        .read_to_end(&mut content)
        .await
        .is_err()
    {
        return Some(0);
    }
    let value = parse_value(&content);
    if value.is_none() {
        log::warn!(
            "track_file {}: invalid number {:?}, ignoring",
            path.display(),
            String::from_utf8_lossy(&content).trim()
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::{parse_value, spawn};
    use crate::track::Observation;
    use crate::track::testutil::TempDir;

    #[test]
    fn parses_like_strtol_base_0() {
        let cases: &[(&[u8], Option<i64>)] = &[
            (b"", Some(0)),
            (b"\n", Some(0)),
            (b"42\n", Some(42)),
            (b"  -17 trailing", Some(-17)),
            (b"+5", Some(5)),
            (b"0x1F", Some(31)),
            (b"0X10", Some(16)),
            (b"010", Some(8)),
            (b"09", Some(0)),
            (b"0x", Some(0)),
            (b"abc", Some(0)),
            (b"-", Some(0)),
            (b"2147483647", Some(2_147_483_647)),
            (b"-2147483648", Some(-2_147_483_648)),
            (b"2147483648", None),
            (b"99999999999999999999999", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_value(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    async fn next(rx: &mut mpsc::Receiver<Observation>) -> Observation {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an observation within 10 s")
            .expect("channel open")
    }

    fn file(path: &std::path::Path, value: i64) -> Observation {
        Observation::File {
            path: path.to_owned(),
            value,
        }
    }

    #[tokio::test]
    async fn changes_are_read_on_inotify_events() {
        let dir = TempDir::new("trackfile");
        let prio = dir.path().join("prio");
        let missing = dir.path().join("later");
        std::fs::write(&prio, "7\n").expect("write");
        let paths: BTreeSet<PathBuf> = [prio.clone(), missing.clone()].into();
        let (tx, mut rx) = mpsc::channel(16);
        let task = spawn(paths, tx).expect("inotify");
        // Initial values, in path order: "later" (missing → 0), then "prio".
        assert_eq!(next(&mut rx).await, file(&missing, 0));
        assert_eq!(next(&mut rx).await, file(&prio, 7));

        // Written in place (IN_CLOSE_WRITE).
        std::fs::write(&prio, "-20\n").expect("write");
        assert_eq!(next(&mut rx).await, file(&prio, -20));

        // Replaced atomically by rename (IN_MOVED_TO), and a file created later.
        let tmp = dir.path().join(".prio.tmp");
        std::fs::write(&tmp, "0x10").expect("write");
        std::fs::rename(&tmp, &prio).expect("rename");
        assert_eq!(next(&mut rx).await, file(&prio, 16));
        std::fs::write(&missing, "3").expect("write");
        assert_eq!(next(&mut rx).await, file(&missing, 3));

        // An invalid number is ignored; the next valid one is reported.
        std::fs::write(&prio, "99999999999").expect("write");
        std::fs::write(&prio, "5").expect("write");
        assert_eq!(next(&mut rx).await, file(&prio, 5));

        // Deleted: 0.
        std::fs::remove_file(&prio).expect("remove");
        assert_eq!(next(&mut rx).await, file(&prio, 0));
        task.abort();
    }
}
