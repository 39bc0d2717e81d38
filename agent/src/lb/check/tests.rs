//! Checks against servers started here, on loopback only (`127.0.0.1` and `::1`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::{CheckError, CheckTarget, HealthReport, Passed, check_once, spawn_checks};
use crate::config::{CheckKind, HealthCheck, HttpBodyMatch};
use crate::track::RunAs;
use crate::track::testutil::TempDir;

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// What the test server does with its `n`th request (from 0).
#[derive(Clone)]
enum Reply {
    /// Writes these bytes and closes.
    Send(Vec<u8>),
    /// Waits this long, then writes and closes.
    After(Duration, Vec<u8>),
    /// Never answers; holds the connection until the server is dropped.
    Never,
}

/// An HTTP-ish server on loopback: it reads a request head, then replies as `respond` says.
/// It records each request head and how many connections were accepted but not yet
/// answered at the same time. Dropping it stops it and closes every connection.
struct Server {
    address: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    /// Connections accepted and not yet answered.
    waiting: Arc<AtomicUsize>,
    max_waiting: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(ip: IpAddr, respond: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind");
        let address = listener.local_addr().expect("local_addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let waiting = Arc::new(AtomicUsize::new(0));
        let max_waiting = Arc::new(AtomicUsize::new(0));
        let respond = Arc::new(respond);
        let task = tokio::spawn({
            let requests = Arc::clone(&requests);
            let waiting = Arc::clone(&waiting);
            let max_waiting = Arc::clone(&max_waiting);
            async move {
                // Owned by this task, so aborting it closes every connection too.
                let mut connections = JoinSet::new();
                loop {
                    let (stream, _) = listener.accept().await.expect("accept");
                    let now = waiting.fetch_add(1, Ordering::SeqCst) + 1;
                    max_waiting.fetch_max(now, Ordering::SeqCst);
                    let requests = Arc::clone(&requests);
                    let waiting = Arc::clone(&waiting);
                    let respond = Arc::clone(&respond);
                    connections.spawn(async move {
                        let mut stream = stream;
                        let head = read_head(&mut stream).await;
                        let n = {
                            let mut requests = requests.lock().expect("lock");
                            requests.push(head);
                            requests.len() - 1
                        };
                        let bytes = match respond(n) {
                            Reply::Send(bytes) => bytes,
                            Reply::After(delay, bytes) => {
                                tokio::time::sleep(delay).await;
                                bytes
                            }
                            Reply::Never => {
                                std::future::pending::<()>().await;
                                unreachable!()
                            }
                        };
                        // Before writing: once the client has its answer it may start the
                        // next check, and this one must no longer count.
                        waiting.fetch_sub(1, Ordering::SeqCst);
                        let _ = stream.write_all(&bytes).await;
                        let _ = stream.shutdown().await;
                    });
                }
            }
        });
        Self {
            address,
            requests,
            waiting,
            max_waiting,
            task,
        }
    }

    fn port(&self) -> u16 {
        self.address.port()
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads up to the blank line that ends a request head (or the end of the stream).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn response(status: &str, headers: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\n{headers}\r\n{body}").into_bytes()
}

/// A response with a `Content-Length` body.
fn ok(body: &str) -> Vec<u8> {
    response(
        "200 OK",
        &format!("Content-Length: {}\r\n", body.len()),
        body,
    )
}

fn check(kind: CheckKind, timeout_ms: u64) -> HealthCheck {
    HealthCheck {
        kind,
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(timeout_ms),
        rise: 1,
        fall: 1,
        hold_down: Duration::ZERO,
    }
}

fn http(port: u16, body: Option<&str>) -> CheckKind {
    CheckKind::Http {
        port,
        path: "/health".into(),
        expect_status: 200,
        body: body.map(|re| HttpBodyMatch(regex::Regex::new(re).expect("regex"))),
    }
}

/// The words of one check against `server` answering every request with `reply`.
async fn http_words(reply: Vec<u8>, body: Option<&str>) -> Result<String, String> {
    let server = Server::start(V4, move |_| Reply::Send(reply.clone())).await;
    let result = check_once(V4, &check(http(server.port(), body), 5_000)).await;
    words(result)
}

fn words(result: Result<Passed, CheckError>) -> Result<String, String> {
    result.map(|p| p.to_string()).map_err(|e| e.to_string())
}

/// A port on `ip` where nothing listens (bound, then closed again).
async fn closed_port(ip: IpAddr) -> u16 {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind");
    listener.local_addr().expect("local_addr").port()
}

async fn next(rx: &mut mpsc::Receiver<HealthReport>) -> HealthReport {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a report within 10 s")
        .expect("channel open")
}

fn report(service: &str, address: IpAddr, healthy: bool, detail: &str) -> HealthReport {
    HealthReport {
        service: service.into(),
        address,
        healthy,
        detail: detail.into(),
    }
}

#[tokio::test]
async fn tcp_passes_on_a_listener_and_fails_on_a_closed_port() {
    for ip in [V4, V6] {
        let server = Server::start(ip, |_| Reply::Never).await;
        let tcp = |port| check(CheckKind::Tcp { port }, 5_000);
        assert_eq!(
            words(check_once(ip, &tcp(server.port())).await),
            Ok("connected".into()),
            "{ip}"
        );
        let port = closed_port(ip).await;
        assert_eq!(
            words(check_once(ip, &tcp(port)).await),
            Err("connect: Connection refused".into()),
            "{ip}"
        );
    }
}

#[tokio::test]
async fn http_sends_one_get_with_host_and_close() {
    let server = Server::start(V4, |_| Reply::Send(ok("ok"))).await;
    let result = check_once(V4, &check(http(server.port(), None), 5_000)).await;
    assert_eq!(words(result), Ok("HTTP 200".into()));
    assert_eq!(
        server.requests(),
        [format!(
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: vipflip\r\n\
             Connection: close\r\n\r\n",
            server.port()
        )]
    );

    let server = Server::start(V6, |_| Reply::Send(ok("ok"))).await;
    let result = check_once(V6, &check(http(server.port(), Some("^ok$")), 5_000)).await;
    assert_eq!(words(result), Ok("HTTP 200".into()));
    let requests = server.requests();
    assert!(
        requests[0].contains(&format!("\r\nHost: [::1]:{}\r\n", server.port())),
        "{requests:?}"
    );
}

#[tokio::test]
async fn http_status_and_body_decide() {
    assert_eq!(
        http_words(ok("status: ok\n"), Some("ok")).await,
        Ok("HTTP 200".into())
    );
    assert_eq!(
        http_words(ok("status: degraded\n"), Some("^status: ok$")).await,
        Err("body does not match /^status: ok$/".into())
    );
    assert_eq!(
        http_words(
            response("503 Service Unavailable", "Content-Length: 2\r\n", "ok"),
            Some("ok")
        )
        .await,
        Err("HTTP 503, expected 200".into())
    );
    // Without a body regex the body is not read at all: a lying Content-Length passes.
    assert_eq!(
        http_words(response("200 OK", "Content-Length: 100\r\n", "short"), None).await,
        Ok("HTTP 200".into())
    );
}

#[tokio::test]
async fn http_bodies_are_framed_as_the_headers_say() {
    // Chunked: decoded, so an anchored regex sees "ok", not "1\r\no\r\n…".
    let chunked = response(
        "200 OK",
        "Transfer-Encoding: chunked\r\n",
        "1;ext=1\r\no\r\n1\r\nk\r\n0\r\n\r\n",
    );
    assert_eq!(
        http_words(chunked, Some("^ok$")).await,
        Ok("HTTP 200".into())
    );
    // No length: up to the close.
    assert_eq!(
        http_words(response("200 OK", "", "all of it"), Some("^all of it$")).await,
        Ok("HTTP 200".into())
    );
    // Content-Length shorter than what follows: only that much is the body.
    assert_eq!(
        http_words(
            response("200 OK", "Content-Length: 2\r\n", "okay"),
            Some("^ok$")
        )
        .await,
        Ok("HTTP 200".into())
    );
    // Cut short of its Content-Length.
    assert_eq!(
        http_words(
            response("200 OK", "Content-Length: 10\r\n", "ok"),
            Some("ok")
        )
        .await,
        Err("bad response: closed after 2 of 10 body bytes".into())
    );
    assert_eq!(
        http_words(
            response("200 OK", "Transfer-Encoding: chunked\r\n", "5\r\nok"),
            Some("ok")
        )
        .await,
        Err("bad response: closed inside a chunk".into())
    );
}

#[tokio::test]
async fn http_bodies_are_matched_on_their_first_64_kib() {
    let mut body = "x".repeat(super::http::MAX_BODY - 2);
    body.push_str("ok");
    body.push_str(&"y".repeat(100_000));
    assert_eq!(
        http_words(ok(&body), Some("xok$")).await,
        Ok("HTTP 200".into())
    );
    assert_eq!(
        http_words(ok(&body), Some("y")).await,
        Err("body does not match /y/".into())
    );
}

#[tokio::test]
async fn http_garbage_and_silence_fail() {
    assert_eq!(
        http_words(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec(), None).await,
        Err("bad response: invalid HTTP version".into())
    );
    assert_eq!(
        http_words(Vec::new(), None).await,
        Err("bad response: closed without a response".into())
    );
    let endless_header = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(40_000)).into_bytes();
    assert_eq!(
        http_words(endless_header, None).await,
        Err("bad response: headers longer than 16 KiB".into())
    );

    let server = Server::start(V4, |_| Reply::Never).await;
    let started = tokio::time::Instant::now();
    let result = check_once(V4, &check(http(server.port(), None), 300)).await;
    assert_eq!(words(result), Err("timed out after 300ms".into()));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(server.requests().len(), 1, "the request was sent");
}

#[tokio::test]
async fn script_exit_status_decides_and_a_timeout_kills() {
    let dir = TempDir::new("lbcheck");
    // Through /bin/sh, not exec: see track's script tests (ETXTBSY).
    let run = |name: &str, body: &str, timeout_ms| {
        let path = dir.script(name, body);
        let kind = CheckKind::Script {
            command: vec!["/bin/sh".into(), path.display().to_string()],
            run_as: RunAs::default(),
        };
        async move { words(check_once(V4, &check(kind, timeout_ms)).await) }
    };
    assert_eq!(run("ok", "exit 0", 5_000).await, Ok("exit status 0".into()));
    assert_eq!(
        run("bad", "exit 1", 5_000).await,
        Err("exit status 1".into())
    );
    // Killed at the timeout, so it never gets to leave its marker.
    let marker = dir.path().join("survived");
    let pidfile = dir.path().join("slow.pid");
    let slow = format!(
        "echo $$ > {}\nsleep 0.6\ntouch {}",
        pidfile.display(),
        marker.display()
    );
    assert_eq!(
        run("slow", &slow, 200).await,
        Err("timed out after 200ms, killed".into())
    );
    // The check has killed and reaped it: its shell is gone, so the marker can never come.
    let pid: libc::pid_t = std::fs::read_to_string(&pidfile)
        .expect("the slow script wrote its pid")
        .trim()
        .parse()
        .expect("a pid");
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "the slow script (pid {pid}) outlived its timeout");
    let empty = check(
        CheckKind::Script {
            command: vec![],
            run_as: RunAs::default(),
        },
        100,
    );
    assert_eq!(
        words(check_once(V4, &empty).await),
        Err("empty command".into())
    );
    let missing = check(
        CheckKind::Script {
            command: vec![dir.path().join("nope").display().to_string()],
            run_as: RunAs::default(),
        },
        100,
    );
    let words = words(check_once(V4, &missing).await).expect_err("no such program");
    assert!(
        words.ends_with("/nope: No such file or directory"),
        "{words}"
    );
    assert!(!marker.exists(), "the slow script ran on after its timeout");
}

/// The server answers by request number; with fall 2 a lone 503 is absorbed, two in a row
/// make the server unhealthy, and with rise 1 one 200 makes it healthy again.
#[tokio::test]
async fn rise_and_fall_through_spawn_checks() {
    const STATUSES: [u16; 8] = [200, 200, 503, 200, 503, 503, 503, 503];
    let server = Server::start(V4, |n| {
        Reply::Send(match STATUSES.get(n) {
            Some(503) => response("503 Service Unavailable", "Content-Length: 0\r\n", ""),
            _ => ok(""),
        })
    })
    .await;
    let mut hc = check(http(server.port(), None), 2_000);
    hc.interval = Duration::from_millis(50);
    hc.fall = 2;
    let (tx, mut rx) = mpsc::channel(1);
    let handles = spawn_checks(
        vec![CheckTarget {
            service: "web".into(),
            address: V4,
            check: hc,
        }],
        tx,
        4,
    );
    assert_eq!(handles.len(), 1);
    assert_eq!(next(&mut rx).await, report("web", V4, true, "HTTP 200"));
    assert_eq!(
        next(&mut rx).await,
        report("web", V4, false, "HTTP 503, expected 200")
    );
    let requests = server.requests().len();
    assert!(
        requests >= 6,
        "down after request {requests}, before the second 503 in a row"
    );
    assert_eq!(next(&mut rx).await, report("web", V4, true, "HTTP 200"));
    assert!(server.requests().len() > STATUSES.len());
    drop(handles);
}

/// A TCP server stopped and started again on the same port, fall 2 and rise 2.
#[tokio::test]
async fn a_stopped_server_goes_down_and_comes_back() {
    async fn listen(port: u16) -> JoinHandle<()> {
        let listener = TcpListener::bind((V4, port)).await.expect("bind");
        tokio::spawn(async move {
            loop {
                let _ = listener.accept().await;
            }
        })
    }
    let port = closed_port(V4).await;
    let server = listen(port).await;
    let mut hc = check(CheckKind::Tcp { port }, 1_000);
    hc.interval = Duration::from_millis(50);
    hc.rise = 2;
    hc.fall = 2;
    let target = CheckTarget {
        service: "db".into(),
        address: V4,
        check: hc,
    };
    let (tx, mut rx) = mpsc::channel(1);
    let _handles = spawn_checks(vec![target], tx, 1);
    assert_eq!(next(&mut rx).await, report("db", V4, true, "connected"));
    server.abort();
    let _ = server.await; // The listener is closed once the task is gone.
    assert_eq!(
        next(&mut rx).await,
        report("db", V4, false, "connect: Connection refused")
    );
    let _server = listen(port).await;
    assert_eq!(next(&mut rx).await, report("db", V4, true, "connected"));
}

/// 12 targets whose server holds each request 100 ms, two slots: never more than two at
/// once, and every check passes although the last ones wait ~500 ms for a slot with a
/// 450 ms timeout (it starts with the slot).
#[tokio::test]
async fn checks_in_flight_are_bounded() {
    let server = Server::start(V4, |_| Reply::After(Duration::from_millis(100), ok(""))).await;
    let targets: Vec<CheckTarget> = (0..12)
        .map(|i| {
            let mut hc = check(http(server.port(), None), 450);
            hc.interval = Duration::from_mins(1);
            CheckTarget {
                service: format!("s{i}"),
                address: V4,
                check: hc,
            }
        })
        .collect();
    let (tx, mut rx) = mpsc::channel(1);
    let _handles = spawn_checks(targets, tx, 2);
    let mut services = Vec::new();
    for _ in 0..12 {
        let report = next(&mut rx).await;
        assert!(report.healthy, "{report:?}");
        services.push(report.service);
    }
    services.sort();
    services.dedup();
    assert_eq!(services.len(), 12);
    assert_eq!(server.max_waiting.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn dropping_the_handles_stops_the_checks() {
    let server = Server::start(V4, |_| Reply::Send(ok(""))).await;
    let mut hc = check(http(server.port(), None), 1_000);
    hc.interval = Duration::from_millis(20);
    let (tx, mut rx) = mpsc::channel(16);
    let handles = spawn_checks(
        vec![CheckTarget {
            service: "web".into(),
            address: V4,
            check: hc,
        }],
        tx,
        1,
    );
    next(&mut rx).await;
    drop(handles);
    // The task held the only sender: the channel closes once the task is gone. Reports
    // already queued come first.
    let mut reports = 1;
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while rx.recv().await.is_some() {
            reports += 1;
        }
    })
    .await;
    assert!(drained.is_ok(), "the checks still run 10 s after the drop");
    // A request of our own behind whatever the checks sent: once it is answered and the
    // server holds no connection, every check's request has been counted.
    let mut barrier = TcpStream::connect(server.address).await.expect("connect");
    barrier
        .write_all(b"GET /barrier HTTP/1.1\r\n\r\n")
        .await
        .expect("send");
    let mut answer = Vec::new();
    barrier.read_to_end(&mut answer).await.expect("answer");
    while server.waiting.load(Ordering::SeqCst) > 0 {
        tokio::task::yield_now().await;
    }
    let checks = server.requests().len() - 1;
    // One request per report, and at most one more in flight when the task was dropped.
    assert!(
        (reports..=reports + 1).contains(&checks),
        "{checks} checks for {reports} reports: checks went on after the drop"
    );
}

/// A script check whose directory becomes writable by everyone is disabled: keepalived drops
/// such a `MISC_CHECK`, and a real server without checkers is up.
#[tokio::test]
#[ignore = "needs root"]
async fn a_script_check_made_insecure_is_disabled_and_the_server_counts_as_up() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = TempDir::new("lbsecurity");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let script = dir.script("failing", "exit 1");
    let mut hc = check(
        CheckKind::Script {
            command: vec![script.display().to_string()],
            run_as: RunAs {
                user: None,
                script_security: true,
            },
        },
        2_000,
    );
    hc.interval = Duration::from_millis(50);
    let (tx, mut rx) = mpsc::channel(4);
    let _handles = spawn_checks(
        vec![CheckTarget {
            service: "db".into(),
            address: V4,
            check: hc,
        }],
        tx,
        1,
    );
    assert_eq!(
        next(&mut rx).await,
        report("db", V4, false, "exit status 1")
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let disabled = next(&mut rx).await;
    assert_eq!(
        disabled,
        report(
            "db",
            V4,
            true,
            &format!(
                "check disabled by script_security: {} is writable by everyone (mode 0777)",
                dir.path().display()
            )
        )
    );
    // The task has ended: nothing more comes.
    let closed = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    assert_eq!(closed.expect("the task ends"), None);
}
