//! `vipflip-lb-probe`: the servers and clients of the load-balancer namespace tests.
//!
//! On each real server:
//! - `http-serve --port P --name NAME`: answers every HTTP request (any method, any path) with
//!   `200 OK` and the body `NAME\n`, then closes the connection (one request per connection).
//! - `echo-serve --port P --name NAME`: for every line a client sends, answers `NAME LINE\n`,
//!   so a long-lived stream shows which real server holds it.
//!
//! On the client (every timestamp is `CLOCK_MONOTONIC` in µs, the clock the tests read too,
//! so they can place each event on their own timeline):
//! - `http-load --target A --port P [--requests N | --duration-ms D] [--parallel C]
//!   [--timeout-ms T] [--pause-ms X]`: N requests (or as many as fit in D ms) of `GET /
//!   HTTP/1.0`, each on a fresh connection (a fresh source port), C at a time. One line per
//!   request: `R START_US END_US PORT ok NAME` or `R START_US END_US PORT err REASON` (PORT
//!   the client's, 0 if it never connected), then `S sent=N ok=N err=N`.
//! - `streams --target A --port P --count K [--interval-ms I] --duration-ms D
//!   [--timeout-ms T]`: opens K connections to an echo service (`E I LOCAL_PORT NAME` for
//!   each), prints `READY`, then on each exchanges one line every I ms for D ms. A reply
//!   slower than T ms, a reset or an end of stream ends that stream with an error. One line per
//!   stream at the end: `T I port=P first=NAME last=NAME changes=N replies=N max_gap_us=G
//!   gap_from_us=T last_reply_us=T error=REASON|-`.
//! - `udp-flows --target A --port P --flows F --per-flow M [--interval-ms I]`: F sockets
//!   (F source ports), each sending M probes to a `vipflip-probe serve` responder, I ms apart.
//!   One line per flow: `F I port=P answered=N by=NAME:N,NAME:N`.
//!
//! It only ever talks to the address it is given, which the tests take from their own
//! namespaces.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("http-serve") => http_serve(rest),
        Some("echo-serve") => echo_serve(rest),
        Some("http-load") => http_load(rest),
        Some("streams") => streams(rest),
        Some("udp-flows") => udp_flows(rest),
        Some("upload") => upload(rest),
        _ => Err(
            "usage: vipflip-lb-probe http-serve|echo-serve --port P --name NAME | \
                  http-load|streams|udp-flows|upload --target A --port P …"
                .to_owned(),
        ),
    };
    if let Err(message) = result {
        eprintln!("vipflip-lb-probe: {message}");
        std::process::exit(2);
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn number(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    flag(args, name).map_or(Ok(default), |v| {
        v.parse().map_err(|e| format!("{name} {v:?}: {e}"))
    })
}

fn port(args: &[String]) -> Result<u16, String> {
    let port = flag(args, "--port").ok_or("--port is required")?;
    port.parse().map_err(|e| format!("--port {port:?}: {e}"))
}

fn target(args: &[String]) -> Result<SocketAddr, String> {
    let addr: IpAddr = flag(args, "--target")
        .ok_or("--target is required")?
        .parse()
        .map_err(|e| format!("--target: {e}"))?;
    Ok(SocketAddr::new(addr, port(args)?))
}

fn millis(args: &[String], name: &str, default: u64) -> Result<Duration, String> {
    Ok(Duration::from_millis(number(args, name, default)?))
}

/// `CLOCK_MONOTONIC` in µs: the same clock in every namespace (there is no time namespace
/// here), so the tests compare these stamps with their own.
fn now_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000
        + u64::try_from(ts.tv_nsec).unwrap_or(0) / 1000
}

/// A listener on every address (the VIP lives on `lo`, the health checks come to the host's
/// own address), IPv6 and IPv4.
fn listen(port: u16) -> Result<TcpListener, String> {
    TcpListener::bind(("::", port)).map_err(|e| format!("bind port {port}: {e}"))
}

fn http_serve(args: &[String]) -> Result<(), String> {
    let name = flag(args, "--name")
        .ok_or("http-serve needs --name")?
        .to_owned();
    let listener = listen(port(args)?)?;
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let name = name.clone();
        std::thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = format!("{name}\n");
            let reply = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes());
            // Closing first, as HTTP/1.0 servers do (the TIME_WAIT is the server's).
            let _ = conn.shutdown(std::net::Shutdown::Write);
            let _ = conn.read(&mut buf);
        });
    }
    Ok(())
}

fn echo_serve(args: &[String]) -> Result<(), String> {
    let name = flag(args, "--name")
        .ok_or("echo-serve needs --name")?
        .to_owned();
    let listener = listen(port(args)?)?;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let name = name.clone();
        std::thread::spawn(move || {
            let _ = conn.set_nodelay(true);
            let Ok(mut out) = conn.try_clone() else {
                return;
            };
            for line in BufReader::new(conn).lines() {
                let Ok(line) = line else { return };
                if out
                    .write_all(format!("{name} {line}\n").as_bytes())
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    Ok(())
}

/// One HTTP request on a fresh connection: the server's name, or why not; and the client's
/// port (0 when the connection never came up).
fn request(to: SocketAddr, timeout: Duration, port: &mut u16) -> Result<String, String> {
    let mut conn = TcpStream::connect_timeout(&to, timeout).map_err(|e| short(&e, "connect"))?;
    *port = conn.local_addr().map_or(0, |a| a.port());
    conn.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    conn.write_all(format!("GET / HTTP/1.0\r\nHost: {}\r\n\r\n", to.ip()).as_bytes())
        .map_err(|e| short(&e, "write"))?;
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply)
        .map_err(|e| short(&e, "read"))?;
    let text = String::from_utf8_lossy(&reply);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("truncated-reply")?;
    if !head.starts_with("HTTP/1.0 200 ") {
        return Err("bad-status".to_owned());
    }
    let name = body.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err("bad-body".to_owned());
    }
    Ok(name.to_owned())
}

/// An I/O error as one word: `connect-refused`, `read-reset`, `connect-timeout`, ….
fn short(e: &std::io::Error, what: &str) -> String {
    use std::io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionRefused => "refused",
        K::ConnectionReset => "reset",
        K::ConnectionAborted => "aborted",
        K::TimedOut | K::WouldBlock => "timeout",
        K::BrokenPipe => "broken-pipe",
        K::UnexpectedEof => "eof",
        K::HostUnreachable => "host-unreachable",
        K::NetworkUnreachable => "net-unreachable",
        _ => "other",
    };
    format!("{what}-{kind}")
}

fn http_load(args: &[String]) -> Result<(), String> {
    let to = target(args)?;
    let requests = number(args, "--requests", 0)?;
    let duration = millis(args, "--duration-ms", 0)?;
    if (requests == 0) == duration.is_zero() {
        return Err("http-load needs one of --requests and --duration-ms".to_owned());
    }
    let parallel = number(args, "--parallel", 4)?.max(1);
    let timeout = millis(args, "--timeout-ms", 1000)?;
    let pause = millis(args, "--pause-ms", 0)?;
    let end = Instant::now() + duration;
    let next = Arc::new(AtomicU64::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..parallel)
        .map(|_| {
            let (next, results) = (Arc::clone(&next), Arc::clone(&results));
            std::thread::spawn(move || {
                loop {
                    if requests > 0 && next.fetch_add(1, Ordering::Relaxed) >= requests {
                        return;
                    }
                    if requests == 0 && Instant::now() >= end {
                        return;
                    }
                    let start = now_us();
                    let mut port = 0;
                    let outcome = request(to, timeout, &mut port);
                    let line = match outcome {
                        Ok(name) => format!("R {start} {} {port} ok {name}", now_us()),
                        Err(why) => format!("R {start} {} {port} err {why}", now_us()),
                    };
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((start, line));
                    std::thread::sleep(pause);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")?;
    }
    let mut results = std::mem::take(
        &mut *results
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    results.sort_by_key(|(start, _)| *start);
    let mut out = std::io::stdout().lock();
    let ok = results.iter().filter(|(_, l)| l.contains(" ok ")).count();
    for (_, line) in &results {
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    writeln!(
        out,
        "S sent={} ok={ok} err={}",
        results.len(),
        results.len() - ok
    )
    .map_err(|e| e.to_string())
}

/// What one long-lived stream saw.
#[derive(Default)]
struct StreamRecord {
    port: u16,
    first: String,
    last: String,
    changes: u64,
    replies: u64,
    max_gap_us: u64,
    gap_from_us: u64,
    last_reply_us: u64,
    error: Option<String>,
}

fn streams(args: &[String]) -> Result<(), String> {
    let to = target(args)?;
    let count = number(args, "--count", 1)?;
    let interval = millis(args, "--interval-ms", 10)?;
    let duration = millis(args, "--duration-ms", 0)?;
    let timeout = millis(args, "--timeout-ms", 5000)?;
    let mut out = std::io::stdout().lock();
    let mut conns = Vec::new();
    for i in 0..count {
        let conn = TcpStream::connect_timeout(&to, Duration::from_secs(2))
            .map_err(|e| format!("stream {i}: {}", short(&e, "connect")))?;
        conn.set_nodelay(true).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(conn.try_clone().map_err(|e| e.to_string())?);
        let mut record = StreamRecord {
            port: conn.local_addr().map_err(|e| e.to_string())?.port(),
            ..StreamRecord::default()
        };
        let name = exchange(&conn, &mut reader, "hello")
            .map_err(|e| format!("stream {i}: first exchange: {e}"))?;
        writeln!(out, "E {i} {} {name}", record.port).map_err(|e| e.to_string())?;
        record.first.clone_from(&name);
        record.last = name;
        record.last_reply_us = now_us();
        conns.push((conn, reader, record));
    }
    writeln!(out, "READY").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    let end = Instant::now() + duration;
    let threads: Vec<_> = conns
        .into_iter()
        .map(|(conn, mut reader, mut record)| {
            std::thread::spawn(move || {
                let mut seq = 0u64;
                while Instant::now() < end {
                    seq += 1;
                    match exchange(&conn, &mut reader, &seq.to_string()) {
                        Ok(name) => {
                            let now = now_us();
                            let gap = now - record.last_reply_us;
                            if gap > record.max_gap_us {
                                record.max_gap_us = gap;
                                record.gap_from_us = record.last_reply_us;
                            }
                            record.last_reply_us = now;
                            record.replies += 1;
                            if name != record.last {
                                record.changes += 1;
                                record.last = name;
                            }
                        }
                        Err(e) => {
                            record.error = Some(format!("{e}@{}", now_us()));
                            break;
                        }
                    }
                    std::thread::sleep(interval);
                }
                record
            })
        })
        .collect();
    for (i, thread) in threads.into_iter().enumerate() {
        let r = thread.join().map_err(|_| "a stream thread panicked")?;
        writeln!(
            out,
            "T {i} port={} first={} last={} changes={} replies={} max_gap_us={} gap_from_us={} last_reply_us={} error={}",
            r.port,
            r.first,
            r.last,
            r.changes,
            r.replies,
            r.max_gap_us,
            r.gap_from_us,
            r.last_reply_us,
            r.error.as_deref().unwrap_or("-")
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Sends `message` as one line and reads the echo: the answering server's name.
fn exchange(
    mut conn: &TcpStream,
    reader: &mut BufReader<TcpStream>,
    message: &str,
) -> Result<String, String> {
    conn.write_all(format!("{message}\n").as_bytes())
        .map_err(|e| short(&e, "write"))?;
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Err("read-eof".to_owned()),
        Ok(_) => {}
        Err(e) => return Err(short(&e, "read")),
    }
    let (name, echoed) = line.trim_end().split_once(' ').ok_or("bad-echo")?;
    if echoed != message {
        return Err("wrong-echo".to_owned());
    }
    Ok(name.to_owned())
}

fn udp_flows(args: &[String]) -> Result<(), String> {
    let to = target(args)?;
    let flows = number(args, "--flows", 1)?;
    let per_flow = number(args, "--per-flow", 10)?;
    let interval = millis(args, "--interval-ms", 10)?;
    let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .map_err(|_| "bind")?;
    let sockets = (0..flows)
        .map(|_| {
            let s = UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(s)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut by: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); sockets.len()];
    let mut buf = [0u8; 128];
    let mut drain = |by: &mut Vec<BTreeMap<String, u64>>| {
        for (socket, tally) in sockets.iter().zip(by.iter_mut()) {
            while let Ok(len) = socket.recv(&mut buf) {
                if len > 8 {
                    let name = String::from_utf8_lossy(&buf[8..len]).into_owned();
                    *tally.entry(name).or_default() += 1;
                }
            }
        }
    };
    for seq in 0..per_flow {
        for socket in &sockets {
            // A lost probe is counted by its missing answer.
            let _ = socket.send_to(&seq.to_be_bytes(), to);
        }
        let due = Instant::now() + interval;
        while Instant::now() < due {
            drain(&mut by);
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let tail = Instant::now() + Duration::from_millis(300);
    while Instant::now() < tail {
        drain(&mut by);
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut out = std::io::stdout().lock();
    for (i, (socket, tally)) in sockets.iter().zip(&by).enumerate() {
        let names: Vec<String> = tally.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        writeln!(
            out,
            "F {i} port={} answered={} by={}",
            socket.local_addr().map_err(|e| e.to_string())?.port(),
            tally.values().sum::<u64>(),
            if names.is_empty() {
                "-".to_owned()
            } else {
                names.join(",")
            }
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `upload --target A --port P --bytes N`: one connection to the echo service carrying a
/// line of `N` bytes, full-sized segments all the way (what path MTU discovery is for),
/// and the echo read back whole. Prints `U <server> <bytes> <ms>`; fails on a short or
/// wrong echo or after `--timeout-ms` (default 20 s).
fn upload(args: &[String]) -> Result<(), String> {
    let to = target(args)?;
    let bytes = usize::try_from(number(args, "--bytes", 1 << 20)?).map_err(|e| e.to_string())?;
    let timeout = millis(args, "--timeout-ms", 20_000)?;
    let started = Instant::now();
    let conn = TcpStream::connect_timeout(&to, timeout).map_err(|e| short(&e, "connect"))?;
    conn.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    conn.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut writer = conn.try_clone().map_err(|e| e.to_string())?;
    let sender = std::thread::spawn(move || {
        let mut line = vec![b'u'; bytes];
        line.push(b'\n');
        writer.write_all(&line).map_err(|e| short(&e, "write"))
    });
    let mut echo = Vec::with_capacity(bytes + 16);
    BufReader::new(conn)
        .read_until(b'\n', &mut echo)
        .map_err(|e| short(&e, "read"))?;
    sender.join().map_err(|_| "writer panicked")??;
    let text = String::from_utf8_lossy(&echo);
    let (name, body) = text.trim_end().split_once(' ').ok_or("bad-echo")?;
    if body.len() != bytes || body.bytes().any(|b| b != b'u') {
        return Err(format!(
            "short or wrong echo: {} of {bytes} bytes",
            body.len()
        ));
    }
    println!("U {name} {bytes} {}", started.elapsed().as_millis());
    Ok(())
}
