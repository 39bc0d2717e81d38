//! The metrics endpoint: a thin adapter serving `GET /metrics` over HTTP/1.1. Each scrape is
//! handed to the daemon's loop, which owns every value and renders them ([`super::Metrics`]);
//! this side only reads the request head, waits for the text and writes it back.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::CONTENT_TYPE;

/// Binds `listen` (a bind error names it) and serves it until the returned task is aborted.
///
/// A minimal HTTP/1.1 responder: one request per connection (`Connection: close`), a request
/// head of at most [`MAX_REQUEST_HEAD`] bytes that must arrive within [`CLIENT_TIMEOUT`], no
/// request body. `GET /metrics` (any query string) sends a oneshot into `scrapes` and answers
/// 200 with the daemon's text; 503 if the daemon is gone or does not answer within
/// [`DAEMON_TIMEOUT`]. Another method on `/metrics` gets 405, another path 404, a head that
/// is not HTTP 400, a head too large 431.
pub async fn serve(
    listen: SocketAddr,
    scrapes: mpsc::Sender<oneshot::Sender<String>>,
) -> io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("metrics endpoint on {listen}: {e}")))?;
    Ok(tokio::spawn(accept_loop(listener, scrapes)))
}

/// Longest request head read (request line and headers); a scraper sends a few hundred bytes.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head, and then to take the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a scrape waits for the daemon's loop to answer.
pub const DAEMON_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; further ones wait in the listen backlog.
const MAX_CONNECTIONS: usize = 16;

pub(super) async fn accept_loop(
    listener: TcpListener,
    scrapes: mpsc::Sender<oneshot::Sender<String>>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return; // never closed
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or memory: a tight retry loop would not help.
                log::warn!("metrics endpoint: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let scrapes = scrapes.clone();
        tokio::spawn(async move {
            if let Err(e) = handle_connection(stream, &scrapes).await {
                log::debug!("metrics endpoint: {peer}: {e}");
            }
            drop(slot);
        });
    }
}

async fn handle_connection(
    mut stream: TcpStream,
    scrapes: &mpsc::Sender<oneshot::Sender<String>>,
) -> io::Result<()> {
    let head = tokio::time::timeout(CLIENT_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| timed_out("request head"))??;
    let response = match head.as_deref().map(route) {
        Some(Route::Metrics) => scrape(scrapes).await,
        Some(Route::Status(code)) => Response::status(code),
        None => Response::status(StatusCode::HeaderTooLarge),
    };
    tokio::time::timeout(CLIENT_TIMEOUT, async {
        stream.write_all(&response.into_bytes()).await?;
        stream.shutdown().await
    })
    .await
    .map_err(|_| timed_out("response"))?
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} not done within {CLIENT_TIMEOUT:?}"),
    )
}

/// Reads up to the blank line that ends the request head; `None` if it is longer than
/// [`MAX_REQUEST_HEAD`].
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let limit = u64::try_from(MAX_REQUEST_HEAD).expect("8 KiB fits u64");
    let mut limited = stream.take(limit);
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0; 1024];
    loop {
        let n = limited.read(&mut chunk).await?;
        if n == 0 {
            if head.len() == MAX_REQUEST_HEAD {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside the request head",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(Some(head));
        }
    }
}

/// Where the head ends: after `\r\n\r\n`, or `\n\n` (RFC 9112 §2.2 lets a recipient take a
/// bare LF as a line terminator).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Metrics,
    Status(StatusCode),
}

/// The request line `METHOD SP TARGET SP HTTP/1.x` (RFC 9112 §3); headers are not needed.
pub(super) fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::Status(StatusCode::BadRequest);
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Status(StatusCode::BadRequest);
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() {
        return Route::Status(StatusCode::BadRequest);
    }
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    match (path, method) {
        ("/metrics", "GET") => Route::Metrics,
        ("/metrics", _) => Route::Status(StatusCode::MethodNotAllowed),
        _ => Route::Status(StatusCode::NotFound),
    }
}

/// Asks the daemon for the metrics text.
async fn scrape(scrapes: &mpsc::Sender<oneshot::Sender<String>>) -> Response {
    let scrape = async {
        let (answer, answered) = oneshot::channel();
        scrapes.send(answer).await.ok()?;
        answered.await.ok()
    };
    match tokio::time::timeout(DAEMON_TIMEOUT, scrape).await {
        Ok(Some(text)) => Response {
            code: StatusCode::Ok,
            content_type: CONTENT_TYPE,
            body: text,
        },
        Ok(None) | Err(_) => Response::status(StatusCode::Unavailable),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StatusCode {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    HeaderTooLarge,
    Unavailable,
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "200 OK",
            Self::BadRequest => "400 Bad Request",
            Self::NotFound => "404 Not Found",
            Self::MethodNotAllowed => "405 Method Not Allowed",
            Self::HeaderTooLarge => "431 Request Header Fields Too Large",
            Self::Unavailable => "503 Service Unavailable",
        })
    }
}

struct Response {
    code: StatusCode,
    content_type: &'static str,
    body: String,
}

impl Response {
    /// An error answer whose body repeats the status line.
    fn status(code: StatusCode) -> Self {
        Self {
            code,
            content_type: "text/plain; charset=utf-8",
            body: format!("{code}\n"),
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        let allow = if self.code == StatusCode::MethodNotAllowed {
            "Allow: GET\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
            self.code,
            self.content_type,
            self.body.len(),
        );
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}
