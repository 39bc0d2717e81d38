//! `vipflip-probe`: the client-side view of a failover.
//!
//! - `vipflip-probe serve --port P --name NAME`: on each router, answers every UDP probe with
//!   the probe's sequence number and its own name, so the client sees which router served it.
//! - `vipflip-probe probe --target VIP --port P --interval-us 1000 --duration-ms D`: sends one
//!   probe per interval for D ms, then prints one JSON summary line: probes sent and answered,
//!   the longest outage (from the last answered probe before a loss to the first answered after
//!   it, by send time), and how many probes each router answered.
//!
//! Used by the namespace tests and the lab; it only ever talks to the address it is given,
//! which the tests take from their own namespaces.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("probe") => probe(&args[1..]),
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
