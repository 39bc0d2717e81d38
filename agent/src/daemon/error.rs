//! What can stop the daemon from starting, or an instance from starting under a running daemon
//! (a reload reports those per instance and keeps the rest running). Each variant names the
//! setting, interface or instance at fault, so the message alone tells an operator where to
//! look.

use std::{io, path::PathBuf};

use crate::{
    dataplane::DataplaneError,
    io::{IoError, netlink::NetlinkError},
    notify::NotifyError,
    track::TrackError,
    vrrp::ConfigError,
};

/// `vipflip run` could not start, or its loop could not run.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening rtnetlink: {0}")]
    Netlink(#[source] NetlinkError),
    #[error("global.pin_dir {}: {source}", path.display())]
    PinDir {
        path: PathBuf,
        #[source]
        source: vipflip_bpffs::Error,
    },
    #[error("notify: {0}")]
    Notify(#[source] NotifyError),
    #[error("starting the trackers: {0}")]
    Trackers(#[source] TrackError),
    #[error(transparent)]
    ControlSocket(#[from] ControlSocketError),
    #[error("routing table {table}: reading its routes: {source}")]
    Routes {
        table: u32,
        #[source]
        source: NetlinkError,
    },
    #[error("global.metrics_listen: {0}")]
    Metrics(#[source] io::Error),
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error("virtual servers on {iface}: {cause}")]
    ServiceInterface {
        iface: String,
        #[source]
        cause: Box<InstanceErrorCause>,
    },
    #[error("installing the {signal} handler: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
}

/// One `[[instance]]` could not be set up or started.
#[derive(Debug, thiserror::Error)]
#[error("instance {instance}: {cause}")]
pub struct InstanceError {
    pub instance: String,
    #[source]
    pub cause: Box<InstanceErrorCause>,
}

#[derive(Debug, thiserror::Error)]
pub enum InstanceErrorCause {
    #[error("attaching XDP to {iface}: {source}")]
    Attach {
        iface: String,
        #[source]
        source: DataplaneError,
    },
    #[error(transparent)]
    Socket(IoError),
    #[error("VRRP configuration: {0}")]
    Vrrp(#[source] ConfigError),
    #[error(transparent)]
    Dataplane(DataplaneError),
}

impl InstanceErrorCause {
    pub(crate) fn of(self, instance: &str) -> InstanceError {
        InstanceError {
            instance: instance.to_owned(),
            cause: Box::new(self),
        }
    }
}

/// The control socket could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ControlSocketError {
    #[error("another vipflip daemon answers on {}; give this one its own control_socket", .0.display())]
    InUse(PathBuf),
    #[error("{what}: {}: {source}", path.display())]
    Io {
        /// What was being done: "removing stale", "binding the control socket", ...
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{ControlSocketError, InstanceErrorCause, StartError};
    use crate::dataplane::DataplaneError;

    #[test]
    fn an_instance_error_names_the_instance_then_the_interface_then_the_cause() {
        let err: StartError = InstanceErrorCause::Attach {
            iface: "eth9".into(),
            source: DataplaneError::NoSuchInterface {
                iface: "eth9".into(),
            },
        }
        .of("web")
        .into();
        assert_eq!(
            err.to_string(),
            "instance web: attaching XDP to eth9: interface \"eth9\" does not exist"
        );
    }

    #[test]
    fn a_control_socket_error_names_the_path_and_what_to_do() {
        let in_use: StartError =
            ControlSocketError::InUse(PathBuf::from("/run/vipflip.sock")).into();
        assert_eq!(
            in_use.to_string(),
            "another vipflip daemon answers on /run/vipflip.sock; give this one its own \
             control_socket"
        );
        let io = ControlSocketError::Io {
            what: "binding the control socket",
            path: PathBuf::from("/run/x/vipflip.sock"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(
            io.to_string(),
            "binding the control socket: /run/x/vipflip.sock: permission denied"
        );
    }
}
