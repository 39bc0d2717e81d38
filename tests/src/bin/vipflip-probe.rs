//! `vipflip-probe`: the client-side view of a failover.
//!
//! - `vipflip-probe serve --port P --name NAME`: on each router, answers every UDP probe with
//!   the probe's sequence number and its own name, so the client sees which router served it.
//! - `vipflip-probe probe --target VIP --port P --interval-us 1000 --duration-ms D`: sends one
//!   probe per interval for D ms, then prints one JSON summary line: probes sent and answered,
//!   the longest outage (from the last answered probe before a loss to the first answered after
//!   it, by send time), and how many probes each router answered.
//!
//! - `vipflip-probe probe --target VIP --port P --live`: probes every millisecond until killed
//!   and prints a JSON line every 200 ms: probes sent, answered and lost so far (a probe counts
//!   as lost once 500 ms old and unanswered), the router that answered last, and the current
//!   outage. The lab's live view reads it.
//! - `vipflip-probe advert --src A --ttl T --vrid V --priority P [--count N]`: sends N forged
//!   VRRP version 3 adverts to 224.0.0.18 with any source address and TTL (`IP_HDRINCL`), to check
//!   that spoofed adverts are dropped in XDP.
//!
//! - `vipflip-probe flood --target A --port P [--pps N] [--seconds S]`: non-VIP background
//!   load for the failover benchmark: UDP at up to N packets/s (default 50,000) for S seconds
//!   (default 60), then it stops by itself.
//!
//! Used by the namespace tests and the lab; it only ever talks to the address it is given,
//! which the tests take from their own namespaces.

use std::{
    collections::BTreeMap,
    io::Write as _,
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("probe") if args.iter().any(|a| a == "--live") => live(&args[1..]),
        Some("probe") => probe(&args[1..]),
        Some("advert") => advert(&args[1..]),
        Some("flood") => flood(&args[1..]),
        _ => Err(
            "usage: vipflip-probe serve --port P --name NAME | probe --target ADDR --port P \
                  [--interval-us N] [--duration-ms N]"
                .to_owned(),
        ),
    };
    if let Err(message) = result {
        eprintln!("vipflip-probe: {message}");
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

fn serve(args: &[String]) -> Result<(), String> {
    let port = number(args, "--port", 7777)?;
    let name = flag(args, "--name").ok_or("serve needs --name")?;
    // Bound to the wildcard: the VIP comes and goes on this host while the server runs.
    let socket = UdpSocket::bind(("::", u16::try_from(port).map_err(|e| e.to_string())?))
        .map_err(|e| format!("bind port {port}: {e}"))?;
    // The readiness signal: whoever started us may probe from now on.
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "serving on port {port}")
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("stdout: {e}"))?;
    }
    let mut buf = [0u8; 64];
    loop {
        let (len, from) = socket
            .recv_from(&mut buf)
            .map_err(|e| format!("recv: {e}"))?;
        if len < 8 {
            continue;
        }
        let mut reply = buf[..8].to_vec();
        reply.extend_from_slice(name.as_bytes());
        // A lost reply is the client's business to count.
        let _ = socket.send_to(&reply, from);
    }
}

fn probe(args: &[String]) -> Result<(), String> {
    let target: std::net::IpAddr = flag(args, "--target")
        .ok_or("probe needs --target")?
        .parse()
        .map_err(|e| format!("--target: {e}"))?;
    let port = u16::try_from(number(args, "--port", 7777)?).map_err(|e| e.to_string())?;
    let interval = Duration::from_micros(number(args, "--interval-us", 1000)?);
    let duration = Duration::from_millis(number(args, "--duration-ms", 1000)?);
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| "bind")?;
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    let to = SocketAddr::new(target, port);

    let start = Instant::now();
    let count = usize::try_from(duration.as_micros() / interval.as_micros().max(1))
        .map_err(|e| e.to_string())?;
    // answered[seq] = the responder's name.
    let mut answered: Vec<Option<String>> = vec![None; count];
    let mut buf = [0u8; 128];
    let mut drain = |answered: &mut Vec<Option<String>>| {
        while let Ok(len) = socket.recv(&mut buf) {
            if len >= 8 {
                let seq = u64::from_be_bytes(buf[..8].try_into().unwrap_or([0; 8]));
                if let Some(slot) = usize::try_from(seq).ok().and_then(|s| answered.get_mut(s)) {
                    *slot = Some(String::from_utf8_lossy(&buf[8..len]).into_owned());
                }
            }
        }
    };
    for seq in 0..count {
        let due = start + interval * u32::try_from(seq).map_err(|e| e.to_string())?;
        while Instant::now() < due {
            drain(&mut answered);
            std::thread::sleep(Duration::from_micros(50));
        }
        // A send that fails (no route while the VIP moves) is a lost probe like any other.
        let _ = socket.send_to(&u64::try_from(seq).unwrap_or(u64::MAX).to_be_bytes(), to);
    }
    // Late answers: allow one more 200 ms for the tail.
    let tail = Instant::now() + Duration::from_millis(200);
    while Instant::now() < tail {
        drain(&mut answered);
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("{}", summary(&answered, interval));
    Ok(())
}

/// The JSON summary of one probing run.
fn summary(answered: &[Option<String>], interval: Duration) -> String {
    let sent = answered.len();
    let received = answered.iter().filter(|a| a.is_some()).count();
    let mut by_router: BTreeMap<&str, usize> = BTreeMap::new();
    for name in answered.iter().flatten() {
        *by_router.entry(name.as_str()).or_default() += 1;
    }
    // Longest run of unanswered probes, as time between the answered ones around it.
    let (mut longest, mut run) = (0usize, 0usize);
    for a in answered {
        if a.is_some() {
            run = 0;
        } else {
            run += 1;
            longest = longest.max(run);
        }
    }
    let outage_us = if longest == 0 {
        0
    } else {
        (u128::try_from(longest).unwrap_or(u128::MAX) + 1) * interval.as_micros()
    };
    let routers: Vec<String> = by_router
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    format!(
        "{{\"sent\":{sent},\"received\":{received},\"lost\":{},\"longest_outage_us\":{outage_us},\"by_router\":{{{}}}}}",
        sent - received,
        routers.join(",")
    )
}

/// Sends forged VRRP version 3 adverts (checksum right, RFC 5798 form) with a chosen source and TTL.
fn advert(args: &[String]) -> Result<(), String> {
    let src: std::net::Ipv4Addr = flag(args, "--src")
        .ok_or("advert needs --src")?
        .parse()
        .map_err(|e| format!("--src: {e}"))?;
    let ttl = u8::try_from(number(args, "--ttl", 255)?).map_err(|e| e.to_string())?;
    let vrid = u8::try_from(number(args, "--vrid", 51)?).map_err(|e| e.to_string())?;
    let priority = u8::try_from(number(args, "--priority", 255)?).map_err(|e| e.to_string())?;
    let count = number(args, "--count", 1)?;
    let group = std::net::Ipv4Addr::new(224, 0, 0, 18);
    // VRRPv3: version 3, type 1, one address (the VIP), 100 cs.
    let mut vrrp = vec![0x31, vrid, priority, 1, 0x00, 100, 0, 0, 192, 0, 2, 100];
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&group.octets());
    pseudo.extend_from_slice(&[
        0,
        112,
        0,
        u8::try_from(vrrp.len()).map_err(|e| e.to_string())?,
    ]);
    pseudo.extend_from_slice(&vrrp);
    vrrp[6..8].copy_from_slice(&checksum(&pseudo).to_be_bytes());
    let total = u16::try_from(20 + vrrp.len()).map_err(|e| e.to_string())?;
    let mut packet = vec![0x45, 0xc0];
    packet.extend_from_slice(&total.to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0, 0, ttl, 112, 0, 0]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&group.octets());
    let sum = checksum(&packet);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet.extend_from_slice(&vrrp);
    // SAFETY: plain socket calls on a descriptor we own; pointers are to live locals.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
        if fd < 0 {
            return Err(format!("raw socket: {}", std::io::Error::last_os_error()));
        }
        let to = libc::sockaddr_in {
            sin_family: libc::sa_family_t::try_from(libc::AF_INET).map_err(|e| e.to_string())?,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(group.octets()),
            },
            sin_zero: [0; 8],
        };
        for _ in 0..count {
            let sent = libc::sendto(
                fd,
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&raw const to).cast(),
                libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_in>())
                    .map_err(|e| e.to_string())?,
            );
            if sent < 0 {
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                return Err(format!("sendto: {err}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        libc::close(fd);
    }
    Ok(())
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0)
}

/// `probe --live`: unbounded, with a rolling window instead of a record of every probe.
fn live(args: &[String]) -> Result<(), String> {
    use std::collections::VecDeque;
    /// A probe unanswered after this many milliseconds counts as lost.
    const SETTLE: u64 = 500;
    let target: std::net::IpAddr = flag(args, "--target")
        .ok_or("probe needs --target")?
        .parse()
        .map_err(|e| format!("--target: {e}"))?;
    let port = u16::try_from(number(args, "--port", 7777)?).map_err(|e| e.to_string())?;
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| "bind")?;
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    let to = SocketAddr::new(target, port);
    // (seq, answered by) for the probes younger than SETTLE ms.
    let mut window: VecDeque<(u64, Option<String>)> = VecDeque::new();
    let (mut probes_sent, mut received, mut lost) = (0u64, 0u64, 0u64);
    let mut server = String::from("-");
    let mut outage_since: Option<Instant> = None;
    let start = Instant::now();
    let mut next_report = start;
    let mut buf = [0u8; 128];
    let mut out = std::io::stdout();
    for seq in 0u64.. {
        let due = start + Duration::from_millis(seq);
        while Instant::now() < due {
            while let Ok(len) = socket.recv(&mut buf) {
                if len < 8 {
                    continue;
                }
                let got = u64::from_be_bytes(buf[..8].try_into().unwrap_or([0; 8]));
                let name = String::from_utf8_lossy(&buf[8..len]).into_owned();
                if let Some(slot) = window.iter_mut().find(|(s, a)| *s == got && a.is_none()) {
                    slot.1 = Some(name.clone());
                    received += 1;
                    server = name;
                    outage_since = None;
                }
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let _ = socket.send_to(&seq.to_be_bytes(), to);
        probes_sent += 1;
        window.push_back((seq, None));
        while window.front().is_some_and(|(s, _)| seq - s > SETTLE) {
            if let Some((_, None)) = window.pop_front() {
                lost += 1;
                outage_since.get_or_insert_with(Instant::now);
            }
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_millis(200);
            let outage_ms =
                outage_since.map_or(0, |t| t.elapsed().as_millis() + u128::from(SETTLE));
            let line = format!(
                "{{\"sent\":{probes_sent},\"received\":{received},\"lost\":{lost},\"last\":\"{server}\",\"outage_ms\":{outage_ms}}}"
            );
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return Ok(()); // the reader has gone
            }
        }
    }
    Ok(())
}

/// Bounded UDP load towards one address.
fn flood(args: &[String]) -> Result<(), String> {
    let target: std::net::IpAddr = flag(args, "--target")
        .ok_or("flood needs --target")?
        .parse()
        .map_err(|e| format!("--target: {e}"))?;
    let port = u16::try_from(number(args, "--port", 9)?).map_err(|e| e.to_string())?;
    let pps = number(args, "--pps", 50_000)?.max(1);
    let seconds = number(args, "--seconds", 60)?;
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| "bind")?;
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
    let to = SocketAddr::new(target, port);
    let payload = [0x5au8; 64];
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    // Send in batches of 100, paced to the rate.
    let batch_gap =
        Duration::from_secs_f64(100.0 / f64::from(u32::try_from(pps).unwrap_or(u32::MAX)));
    let mut next = start;
    while Instant::now() < end {
        for _ in 0..100 {
            let _ = socket.send_to(&payload, to);
        }
        next += batch_gap;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}
