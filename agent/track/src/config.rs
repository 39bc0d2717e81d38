//! What a [`TrackState`](crate::TrackState) is told of its instance: types of its own, so the
//! core does not depend on the daemon's configuration file (the agent maps an `[[instance]]`
//! to a [`TrackConfig`], as it maps one to the VRRP core's `InstanceConfig`).

use std::fmt;
use std::path::PathBuf;

use vipflip_wire::Priority;

/// One instance's tracking configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackConfig {
    /// The instance's name, for logs.
    pub instance: String,
    /// Its own interface: down is [`FaultCause::LinkDown`](vipflip_vrrp::FaultCause::LinkDown).
    pub interface: String,
    /// The configured priority, which the trackers move; 255 (address owner) never moves.
    pub priority: Priority,
    /// The trackers; a tracker's position here is its number in
    /// [`FaultCause::Tracked`](vipflip_vrrp::FaultCause::Tracked).
    pub trackers: Vec<TrackerConfig>,
}

/// One tracker of a [`TrackConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    pub what: Tracked,
    /// -254..=254: how much it moves the priority (see the crate docs' table); 0: the
    /// instance goes to Fault while it fails.
    pub weight: i64,
}

/// What a tracker watches; its position in [`TrackState::trackers`](crate::TrackState::trackers)
/// is the number in [`FaultCause::Tracked`](vipflip_vrrp::FaultCause::Tracked).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tracked {
    Interface(String),
    Script(String),
    File(PathBuf),
    /// A `[[virtual_server]]`'s quorum of healthy real servers.
    Quorum(String),
}

impl fmt::Display for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Interface(name) => write!(f, "track_interface {name}"),
            Self::Script(name) => write!(f, "track_script {name}"),
            Self::File(path) => write!(f, "track_file {}", path.display()),
            Self::Quorum(service) => write!(f, "quorum of {service}"),
        }
    }
}
