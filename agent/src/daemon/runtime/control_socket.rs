//! The control socket: a thin adapter that reads one JSON request a connection, hands it to
//! the loop and writes back the answer; and the loop's side of it.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::UnixListener,
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use crate::{
    control::{self as control_protocol, Request, Response},
    vrrp::Command,
};

use super::Daemon;
use crate::daemon::ControlSocketError;

impl Daemon {
    /// A control request; `reply` gets the answer (a reload's once it is applied).
    pub(super) async fn control(&mut self, request: Request, reply: oneshot::Sender<Response>) {
        let response = match request {
            Request::Status => Response::Status(self.status()),
            Request::Reload => {
                self.request_reload(Some(reply)).await;
                return;
            }
            Request::Handoff { instance } => self.handoff(&instance).await,
            Request::Drain => self.begin_drain(),
        };
        let _ = reply.send(response);
    }

    /// `vipflip handoff INSTANCE`: a master hands over without a lost packet.
    async fn handoff(&mut self, instance: &str) -> Response {
        let Some(id) = self.instances.find(|r| r.spec.name == instance) else {
            let known: Vec<&str> = self
                .instances
                .iter()
                .map(|r| r.spec.name.as_str())
                .collect();
            return Response::Error {
                message: format!("no instance {instance:?} (instances: {})", known.join(", ")),
            };
        };
        match self.instances[id]
            .vrrp
            .handle_command(Instant::now(), Command::GracefulHandoff)
        {
            Ok(()) => {
                self.dispatch(id).await;
                Response::Ok {
                    message: format!(
                        "instance {instance}: handing off; still serving until the new master is heard"
                    ),
                }
            }
            Err(err) => Response::Error {
                message: format!("instance {instance}: {err}"),
            },
        }
    }
}

/// How long a daemon starting on an existing control socket waits for an answer from it
/// before it takes the socket for a dead daemon's.
const STALE_CHECK_LIMIT: Duration = Duration::from_secs(1);

/// Serves the control socket: one JSON request per connection, answered by the loop.
pub(super) fn spawn_control_server(
    path: &Path,
    requests: mpsc::Sender<(Request, oneshot::Sender<Response>)>,
) -> Result<JoinHandle<()>, ControlSocketError> {
    if path.exists() {
        // A live daemon answers; a stale file from a crash does not and is replaced. A
        // connection alone proves nothing: a daemon killed a moment ago may still have its
        // listening socket, which the kernel releases just after the process has left its
        // namespaces, so ask for a status and wait for the answer.
        if control_protocol::call_within(path, &Request::Status, STALE_CHECK_LIMIT).is_ok() {
            return Err(ControlSocketError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(io_error("removing stale", path))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
    }
    let listener =
        UnixListener::bind(path).map_err(io_error("binding the control socket", path))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error("restricting to root", path))?;
    }
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let requests = requests.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_err() {
                    return;
                }
                let response = match control_protocol::decode_request(&line) {
                    Ok(request) => {
                        let (reply, answer) = oneshot::channel();
                        if requests.send((request, reply)).await.is_err() {
                            return;
                        }
                        answer.await.unwrap_or(Response::Error {
                            message: "the daemon is stopping".into(),
                        })
                    }
                    Err(bad) => Response::Error {
                        message: bad.to_string(),
                    },
                };
                let _ = write
                    .write_all(control_protocol::encode_response(&response).as_bytes())
                    .await;
            });
        }
    }))
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ControlSocketError {
    let path = path.to_owned();
    move |source| ControlSocketError::Io { what, path, source }
}
