//! Tracking: everything that moves an instance's effective priority or holds it in Fault,
//! with keepalived's rules (`track_interface`, `track_script`, `track_file`).
//!
//! Two halves, as `vrrp` and `io/`:
//!
//! - [`TrackState`] (sans-IO, one per instance): the `vipflip-track` crate, re-exported here.
//!   Its [`TrackConfig`] ([`InstanceSpec::track_config`](crate::config::InstanceSpec::track_config))
//!   and [`Observation`]s in, the [`vrrp::Command`](crate::vrrp::Command)s that bring the
//!   state machine up to date out; that crate's docs give keepalived's rules. [`RiseFall`] is
//!   keepalived's rise/fall counter of a script, also pure.
//! - The drivers, started together by [`spawn_trackers`]: link state from rtnetlink events
//!   (`RTNLGRP_LINK`, no polling), `[[script]]`s run every `interval` under a `timeout` with a
//!   bound on how many run at once, and track files read on inotify events. Each driver is a
//!   tokio task that sends [`Observation`]s on one `mpsc` channel; none blocks the daemon.
//!
//! # Wiring (the daemon)
//!
//! ```text
//! let (mut observations, _trackers) = track::spawn_trackers(&config)?;
//! let mut tracks: Vec<TrackState> =
//!     config.instances.iter().map(|i| TrackState::new(i.track_config())).collect();
//! // in the select loop:
//! Some(obs) = observations.recv() => for (i, track) in tracks.iter_mut().enumerate() {
//!     for command in track.observe(&obs) { instances[i].vrrp.handle_command(now, command)?; }
//!     drain(i);
//! }
//! ```
//!
//! Every driver reports the first state it sees (links that do not exist are down, files
//! that cannot be read hold 0), then only changes.

mod file;
mod link;
mod process;
mod rise_fall;
mod script;
pub mod security;
#[cfg(test)]
pub(crate) mod testutil;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::config::{Config, ScriptSpec};

pub use file::parse_value;
pub(crate) use process::{RunOutcome, run_with_timeout};
pub use rise_fall::RiseFall;
pub use security::{RunAs, ScriptUser};
pub use vipflip_track::{
    Effect, Observation, TrackConfig, TrackState, Tracked, TrackerConfig, TrackerReport,
};

/// How many `[[script]]` runs may be in flight at once, across all scripts; a script whose
/// turn comes while all slots are busy waits for one (its `timeout` starts when it starts).
pub const MAX_CONCURRENT_SCRIPTS: usize = 8;

/// Capacity of the observation channel. Drivers wait (never drop) when it is full, so a slow
/// daemon delays observations but never loses a transition.
const CHANNEL_CAPACITY: usize = 256;

/// Why a tracker could not be started, naming it and the operation.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("link tracking: subscribing to rtnetlink link events: {0}")]
    LinkSubscribe(#[source] std::io::Error),
    #[error("track files: inotify_init: {0}")]
    InotifyInit(#[source] std::io::Error),
    #[error("track files: inotify event stream: {0}")]
    InotifyStream(#[source] std::io::Error),
}

/// The running driver tasks; dropping this stops them all (a script still running is killed
/// with its process group).
#[derive(Debug, Default)]
pub struct TrackerHandles {
    tasks: Vec<JoinHandle<()>>,
}

impl TrackerHandles {
    /// How many driver tasks run: one for links and one for files when anything needs them,
    /// one per tracked script.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl Drop for TrackerHandles {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Everything the drivers watch for a configuration: links for each instance's interface
/// and every tracked interface, each `[[script]]` some instance tracks (scripts nobody
/// tracks are not run, as in keepalived), and every tracked file. Equal for two
/// configurations exactly when their drivers would be the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub links: BTreeSet<String>,
    pub scripts: Vec<ScriptSpec>,
    pub files: BTreeSet<PathBuf>,
}

impl Watched {
    pub fn of(config: &Config) -> Self {
        let links = config
            .instances
            .iter()
            .flat_map(|i| {
                std::iter::once(i.interface.clone())
                    .chain(i.track_interfaces.iter().map(|t| t.name.clone()))
            })
            .collect();
        let tracked: BTreeSet<&str> = config
            .instances
            .iter()
            .flat_map(|i| i.track_scripts.iter().map(|t| t.name.as_str()))
            .collect();
        let scripts = config
            .scripts
            .iter()
            .filter(|s| tracked.contains(s.name.as_str()))
            .cloned()
            .collect();
        let files = config
            .instances
            .iter()
            .flat_map(|i| i.track_files.iter().map(|t| t.path.clone()))
            .collect();
        Self {
            links,
            scripts,
            files,
        }
    }
}

/// Starts a driver for everything [`Watched::of`] the configuration, on the current tokio
/// runtime and in the current network namespace.
pub fn spawn_trackers(
    config: &Config,
) -> Result<(mpsc::Receiver<Observation>, TrackerHandles), TrackError> {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let mut handles = TrackerHandles::default();
    let watched = Watched::of(config);
    if !watched.links.is_empty() {
        handles.tasks.push(link::spawn(watched.links, tx.clone())?);
    }
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_SCRIPTS));
    for spec in watched.scripts {
        handles
            .tasks
            .push(script::spawn(spec, slots.clone(), tx.clone()));
    }
    if !watched.files.is_empty() {
        handles.tasks.push(file::spawn(watched.files, tx)?);
    }
    Ok((rx, handles))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::{Observation, TrackState, Watched, spawn_trackers};
    use crate::config::Config;
    use crate::track::testutil::TempDir;
    use crate::vrrp::Command;
    use crate::wire::Priority;

    #[test]
    fn watched_objects_ignore_weights_and_instances_on_watched_links() {
        let parse = |extra: &str| {
            let text = format!(
                r#"
                [[instance]]
                name = "VI_1"
                interface = "lo"
                vrid = 51
                virtual_ips = ["192.0.2.100/24"]
                track_scripts = [{{ name = "chk", weight = -30 }}]
                {extra}
                [[script]]
                name = "chk"
                command = ["/bin/true"]
                [[script]]
                name = "unused"
                command = ["/bin/false"]
                "#
            );
            Config::parse(&text, "test.toml").expect("config").0
        };
        let base = Watched::of(&parse(""));
        assert_eq!(base.links, BTreeSet::from(["lo".to_owned()]));
        assert_eq!(
            base.scripts
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["chk"],
            "a script nobody tracks is not watched"
        );
        let mut reweighted = parse("");
        reweighted.instances[0].track_scripts[0].weight = crate::config::Weight(-10);
        assert_eq!(Watched::of(&reweighted), base);
        let mut second = parse("");
        let mut vi2 = second.instances[0].clone();
        vi2.name = "VI_2".into();
        second.instances.push(vi2);
        assert_eq!(Watched::of(&second), base, "another instance on lo");
        let filed = parse(r#"track_files = [{ path = "/run/prio", weight = 1 }]"#);
        assert_ne!(Watched::of(&filed), base);
    }

    /// All three drivers at once, in the test's own namespace: `lo` is up, the script fails,
    /// the file holds 4; a script nobody tracks is not run.
    #[tokio::test]
    async fn spawn_trackers_starts_what_the_config_needs() {
        let dir = TempDir::new("spawn");
        let check = dir.script("check", "exit 1");
        let prio = dir.path().join("prio");
        std::fs::write(&prio, "4\n").expect("write");
        let text = format!(
            r#"
            [[instance]]
            name = "VI_1"
            interface = "lo"
            vrid = 51
            priority = 100
            virtual_ips = ["192.0.2.100/24"]
            track_scripts = [{{ name = "chk", weight = -30 }}]
            track_files = [{{ path = "{prio}", weight = 5 }}]
            [[script]]
            name = "chk"
            command = ["/bin/sh", "{check}"]
            interval = "50ms"
            [[script]]
            name = "unused"
            command = ["/bin/false"]
            "#,
            prio = prio.display(),
            check = check.display(),
        );
        let (config, _) = Config::parse(&text, "test.toml").expect("config");
        let (mut rx, handles) = spawn_trackers(&config).expect("spawn_trackers");
        assert_eq!(handles.len(), 3, "links, chk and files; not `unused`");

        let mut seen = BTreeSet::new();
        let mut track = TrackState::new(config.instances[0].track_config());
        let mut commands = Vec::new();
        while seen.len() < 3 {
            let observation = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("only {seen:?} within 10 s"))
                .expect("channel open");
            commands.extend(track.observe(&observation));
            seen.insert(format!("{observation:?}"));
        }
        let want: BTreeSet<String> = [
            Observation::Link {
                name: "lo".into(),
                up: true,
            },
            Observation::Script {
                name: "chk".into(),
                ok: false,
            },
            Observation::File {
                path: prio.clone(),
                value: 4,
            },
        ]
        .iter()
        .map(|o| format!("{o:?}"))
        .collect();
        assert_eq!(seen, want);
        // 100 - 30 + 4 × 5, whatever order the three arrived in.
        assert_eq!(track.priority(), Priority(90));
        let last_priority = commands
            .iter()
            .rev()
            .find(|c| matches!(c, Command::SetPriority(_)));
        assert_eq!(last_priority, Some(&Command::SetPriority(Priority(90))));
        drop(handles);
    }
}
