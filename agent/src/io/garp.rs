//! Gratuitous ARP and unsolicited neighbour advertisements for a new master (RFC 9568
//! §6.4.1, §6.4.2), on keepalived's schedule.
//!
//! - [`GarpSchedule`]: the settings (keepalived `garp_master_repeat`, `garp_interval`,
//!   `garp_master_delay`, `garp_master_refresh`, `garp_master_refresh_repeat`).
//! - [`GarpTimer`]: the schedule as a sans-IO timer: given `now`, how many rounds to send and
//!   when to ask again. A *round* is one frame per virtual address.
//! - [`GarpSocket`]: an `AF_PACKET`/`SOCK_RAW` socket bound to the interface that sends whole
//!   Ethernet frames; [`announcement_frames`] builds them with [`crate::wire`].
//! - [`spawn_announcer`]: the tokio task that drives a timer from the moment the instance
//!   becomes master; abort it when the instance leaves master.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use socket2::Type;
use tokio::task::JoinHandle;

use super::{Context, IoError, packet};
use crate::wire::{
    MacAddr,
    arp::{self, ArpError, GarpForm},
    ndisc::{self, NdiscError, NeighborAdvertRepr},
};

/// When a new master announces its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpSchedule {
    /// Rounds in each burst (keepalived `garp_master_repeat`, default 5). 0 sends no burst.
    pub repeat: u32,
    /// Spacing of the rounds inside a burst (keepalived `garp_interval`, default 0: all at
    /// once).
    pub interval: Duration,
    /// A second burst this long after becoming master (keepalived `garp_master_delay`,
    /// default 5 s; `None` for keepalived's 0).
    pub delay: Option<Duration>,
    /// `refresh_repeat` more rounds every `refresh` while master (keepalived
    /// `garp_master_refresh`, off by default).
    pub refresh: Option<Duration>,
    /// Rounds in each refresh, sent at once (keepalived `garp_master_refresh_repeat`,
    /// default 1).
    pub refresh_repeat: u32,
}

impl Default for GarpSchedule {
    /// keepalived's defaults: 5 at once, 5 more after 5 s, no refresh.
    fn default() -> Self {
        Self {
            repeat: 5,
            interval: Duration::ZERO,
            delay: Some(Duration::from_secs(5)),
            refresh: None,
            refresh_repeat: 1,
        }
    }
}

/// What [`GarpTimer::poll`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpPoll {
    /// Rounds to send now.
    pub rounds: u32,
    /// When to poll next; `None` when nothing more is scheduled.
    pub next: Option<Instant>,
}

/// [`GarpSchedule`] as a sans-IO timer. Idle until [`Self::start`]; call [`Self::poll`] at
/// (or after) each deadline it returns. Polling early is a harmless no-op.
///
/// Timing rules: the first burst starts at `start`; its rounds are spaced `interval`, each
/// measured from the `now` of the poll that sent the previous one (a late poll delays the
/// rest rather than bunching them). The second burst starts at `start + delay`, or `interval`
/// after the first burst's last round if that is later. Refreshes fall at `start + k × refresh`; a refresh due while a
/// burst round is sent in the same poll is merged into it, and refreshes missed by a late poll
/// collapse into one.
#[derive(Debug, Clone)]
pub struct GarpTimer {
    schedule: GarpSchedule,
    active: Option<Active>,
}

#[derive(Debug, Clone)]
struct Active {
    /// Rounds left in the burst under way.
    burst_left: u32,
    /// When its next round is due; after a burst, the earliest the next burst may start.
    burst_next: Instant,
    /// Start of the delayed burst, until it begins.
    second_burst: Option<Instant>,
    /// Next refresh.
    refresh_next: Option<Instant>,
}

impl GarpTimer {
    pub fn new(schedule: GarpSchedule) -> Self {
        Self {
            schedule,
            active: None,
        }
    }

    /// The instance became master at `now`: (re)start the schedule.
    pub fn start(&mut self, now: Instant) {
        let s = &self.schedule;
        self.active = Some(Active {
            burst_left: s.repeat,
            burst_next: now,
            second_burst: s.delay.filter(|_| s.repeat > 0).map(|d| now + d),
            refresh_next: s.refresh.filter(|r| !r.is_zero()).map(|r| now + r),
        });
    }

    /// The instance left master: nothing more is sent.
    pub fn stop(&mut self) {
        self.active = None;
    }

    /// Rounds due at `now`, and the next deadline.
    pub fn poll(&mut self, now: Instant) -> GarpPoll {
        let interval = self.schedule.interval;
        let repeat = self.schedule.repeat;
        let refresh = self.schedule.refresh;
        let refresh_repeat = self.schedule.refresh_repeat;
        let Some(a) = self.active.as_mut() else {
            return GarpPoll {
                rounds: 0,
                next: None,
            };
        };
        let mut rounds = 0;
        loop {
            if a.burst_left > 0 {
                if a.burst_next > now {
                    break;
                }
                if interval.is_zero() {
                    rounds += a.burst_left;
                    a.burst_left = 0;
                    a.burst_next = now;
                } else {
                    rounds += 1;
                    a.burst_left -= 1;
                    a.burst_next = now + interval;
                }
            } else if let Some(at) = a.second_burst.filter(|at| *at <= now) {
                a.second_burst = None;
                a.burst_left = repeat;
                // Never closer than `interval` to the first burst's last round.
                a.burst_next = at.max(a.burst_next);
            } else {
                break;
            }
        }
        if let (Some(due), Some(period)) = (a.refresh_next, refresh)
            && due <= now
        {
            rounds = rounds.max(refresh_repeat);
            // The first refresh instant after `now`, on the start + k × period grid.
            let behind = now.duration_since(due).as_nanos() / period.as_nanos();
            let steps = u32::try_from(behind + 1).unwrap_or(u32::MAX);
            a.refresh_next = Some(due + period * steps);
        }
        let burst = if a.burst_left > 0 {
            Some(a.burst_next)
        } else {
            a.second_burst
        };
        let next = [burst, a.refresh_next].into_iter().flatten().min();
        if next.is_none() {
            self.active = None;
        }
        GarpPoll { rounds, next }
    }
}

/// Why announcement frames could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("gratuitous ARP for {ip}: {source}")]
    Arp {
        ip: IpAddr,
        #[source]
        source: ArpError,
    },
    #[error("unsolicited NA for {ip}: {source}")]
    Na {
        ip: IpAddr,
        #[source]
        source: NdiscError,
    },
}

/// One announcement frame per address, from `mac` (the interface's, or the virtual MAC):
/// a gratuitous ARP of `form` for each IPv4 address, an unsolicited NA (S=0, O=1, R=`router`;
/// RFC 9568 §6.4.2 asks for R=1) from the address itself for each IPv6 address.
pub fn announcement_frames(
    mac: MacAddr,
    addrs: &[IpAddr],
    form: GarpForm,
    router: bool,
) -> Result<Vec<Vec<u8>>, FrameError> {
    addrs
        .iter()
        .map(|ip| match ip {
            IpAddr::V4(v4) => {
                let mut buf = vec![0; arp::FRAME_LEN];
                let len = arp::emit_gratuitous_frame(form, mac, *v4, &mut buf)
                    .map_err(|source| FrameError::Arp { ip: *ip, source })?;
                buf.truncate(len);
                Ok(buf)
            }
            IpAddr::V6(v6) => {
                let repr = NeighborAdvertRepr::unsolicited(*v6, mac, router);
                let mut buf = vec![0; 128];
                let len = ndisc::emit_unsolicited_na_frame(mac, v6, &repr, &mut buf)
                    .map_err(|source| FrameError::Na { ip: *ip, source })?;
                buf.truncate(len);
                Ok(buf)
            }
        })
        .collect()
}

/// A packet socket on one interface that sends complete Ethernet frames. It receives nothing
/// (bound with protocol 0).
#[derive(Debug)]
pub struct GarpSocket {
    iface: String,
    ifindex: u32,
    socket: socket2::Socket,
}

impl GarpSocket {
    pub fn open(iface: &str, ifindex: u32) -> Result<Self, IoError> {
        let socket = packet::open(Type::RAW, ifindex).on(iface, "socket(AF_PACKET, SOCK_RAW)")?;
        Ok(Self {
            iface: iface.to_owned(),
            ifindex,
            socket,
        })
    }

    /// Sends one whole frame (destination MAC first) out of the interface. Blocking: a
    /// packet socket only blocks while the device queue is full, for microseconds.
    pub fn send(&self, frame: &[u8]) -> Result<(), IoError> {
        // `sll_protocol` 0: for SOCK_RAW the kernel reads the EtherType from the frame.
        let to = packet::link_addr(self.ifindex, 0, None).on(&self.iface, "sockaddr_ll")?;
        self.socket
            .send_to(frame, &to)
            .on(&self.iface, "sendto(AF_PACKET)")?;
        Ok(())
    }

    pub fn iface(&self) -> &str {
        &self.iface
    }
}

/// Starts announcing at once (the instance has just become master): sends every frame in
/// each round [`GarpTimer`] calls for, until the schedule ends. Abort the task when the
/// instance leaves master. The first send error ends the task and is its result.
pub fn spawn_announcer(
    socket: GarpSocket,
    frames: Vec<Vec<u8>>,
    schedule: GarpSchedule,
) -> JoinHandle<Result<(), IoError>> {
    tokio::spawn(async move {
        let mut timer = GarpTimer::new(schedule);
        timer.start(Instant::now());
        loop {
            let poll = timer.poll(Instant::now());
            for _ in 0..poll.rounds {
                for frame in &frames {
                    socket.send(frame)?;
                }
            }
            let Some(next) = poll.next else {
                return Ok(());
            };
            tokio::time::sleep_until(next.into()).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn run(schedule: GarpSchedule, polls: &[u64]) -> (Vec<(u64, u32, Option<u64>)>, Instant) {
        let t0 = Instant::now();
        let mut timer = GarpTimer::new(schedule);
        timer.start(t0);
        let at = |ms: u64| t0 + MS * u32::try_from(ms).unwrap();
        let out = polls
            .iter()
            .map(|&ms| {
                let p = timer.poll(at(ms));
                let next = p
                    .next
                    .map(|n| u64::try_from(n.duration_since(t0).as_millis()).unwrap());
                (ms, p.rounds, next)
            })
            .collect();
        (out, t0)
    }

    /// Polls at every deadline the timer gives, from 0 until it says nothing is left or
    /// `until` ms pass; returns (ms, rounds) for the polls that sent something.
    fn follow(schedule: GarpSchedule, until: u64) -> Vec<(u64, u32)> {
        let t0 = Instant::now();
        let mut timer = GarpTimer::new(schedule);
        timer.start(t0);
        let mut now = t0;
        let mut sent = Vec::new();
        loop {
            let p = timer.poll(now);
            let ms = u64::try_from(now.duration_since(t0).as_millis()).unwrap();
            if p.rounds > 0 {
                sent.push((ms, p.rounds));
            }
            match p.next {
                Some(n) if n.duration_since(t0) <= MS * u32::try_from(until).unwrap() => {
                    assert!(n > now, "deadline {n:?} not after {now:?}");
                    now = n;
                }
                _ => return sent,
            }
        }
    }

    #[test]
    fn keepalived_default_is_five_now_and_five_after_five_seconds() {
        assert_eq!(
            follow(GarpSchedule::default(), 60_000),
            vec![(0, 5), (5_000, 5)]
        );
    }

    #[test]
    fn spaced_bursts() {
        let s = GarpSchedule {
            repeat: 3,
            interval: 100 * MS,
            delay: Some(Duration::from_secs(2)),
            refresh: None,
            refresh_repeat: 1,
        };
        assert_eq!(
            follow(s, 60_000),
            vec![
                (0, 1),
                (100, 1),
                (200, 1),
                (2_000, 1),
                (2_100, 1),
                (2_200, 1)
            ]
        );
    }

    #[test]
    fn refresh_repeats_forever_and_merges_with_a_burst() {
        let s = GarpSchedule {
            repeat: 2,
            interval: Duration::ZERO,
            delay: Some(Duration::from_secs(3)),
            refresh: Some(Duration::from_secs(1)),
            refresh_repeat: 1,
        };
        assert_eq!(
            follow(s, 5_000),
            vec![
                (0, 2),
                (1_000, 1),
                (2_000, 1),
                (3_000, 2),
                (4_000, 1),
                (5_000, 1)
            ]
        );
    }

    #[test]
    fn refresh_repeat_sends_that_many_rounds_per_refresh() {
        // keepalived `garp_master_refresh 1` with `garp_master_refresh_repeat 3`: 3 per VIP
        // each second; a refresh that falls on a burst of 2 lifts it to 3, one on a burst of
        // 5 adds nothing.
        let s = GarpSchedule {
            repeat: 2,
            interval: Duration::ZERO,
            delay: Some(Duration::from_secs(2)),
            refresh: Some(Duration::from_secs(1)),
            refresh_repeat: 3,
        };
        assert_eq!(
            follow(s, 3_000),
            vec![(0, 2), (1_000, 3), (2_000, 3), (3_000, 3)]
        );
        let s = GarpSchedule {
            repeat: 5,
            refresh_repeat: 3,
            ..s
        };
        assert_eq!(follow(s, 2_000), vec![(0, 5), (1_000, 3), (2_000, 5)]);
    }

    #[test]
    fn no_delay_no_refresh_ends_after_the_first_burst() {
        let s = GarpSchedule {
            delay: None,
            ..GarpSchedule::default()
        };
        let (polls, _) = run(s, &[0, 1]);
        assert_eq!(polls, vec![(0, 5, None), (1, 0, None)]);
    }

    #[test]
    fn early_polls_send_nothing_and_keep_the_deadline() {
        let s = GarpSchedule {
            repeat: 2,
            interval: 10 * MS,
            delay: None,
            refresh: None,
            refresh_repeat: 1,
        };
        let (polls, _) = run(s, &[0, 5, 9, 10, 11]);
        assert_eq!(
            polls,
            vec![
                (0, 1, Some(10)),
                (5, 0, Some(10)),
                (9, 0, Some(10)),
                (10, 1, None),
                (11, 0, None)
            ]
        );
    }

    #[test]
    fn a_late_poll_spaces_the_rest_from_itself_and_collapses_refreshes() {
        let s = GarpSchedule {
            repeat: 3,
            interval: 10 * MS,
            delay: None,
            refresh: Some(100 * MS),
            refresh_repeat: 1,
        };
        // Late by 15 ms for the second round: the third follows 10 ms after it. Refreshes at
        // 100, 200 and 300 are all missed by the poll at 350, which sends one and aims at 400.
        let (polls, _) = run(s, &[0, 25, 35, 350]);
        assert_eq!(
            polls,
            vec![
                (0, 1, Some(10)),
                (25, 1, Some(35)),
                (35, 1, Some(100)),
                (350, 1, Some(400))
            ]
        );
    }

    #[test]
    fn delay_shorter_than_the_first_burst_follows_it() {
        let s = GarpSchedule {
            repeat: 2,
            interval: 100 * MS,
            delay: Some(50 * MS),
            refresh: None,
            refresh_repeat: 1,
        };
        assert_eq!(
            follow(s, 10_000),
            vec![(0, 1), (100, 1), (200, 1), (300, 1)]
        );
    }

    #[test]
    fn stop_and_idle_send_nothing() {
        let mut timer = GarpTimer::new(GarpSchedule::default());
        let now = Instant::now();
        assert_eq!(
            timer.poll(now),
            GarpPoll {
                rounds: 0,
                next: None
            }
        );
        timer.start(now);
        timer.stop();
        assert_eq!(
            timer.poll(now),
            GarpPoll {
                rounds: 0,
                next: None
            }
        );
    }

    #[test]
    fn repeat_zero_sends_only_refreshes() {
        let s = GarpSchedule {
            repeat: 0,
            interval: Duration::ZERO,
            delay: Some(Duration::from_secs(1)),
            refresh: Some(Duration::from_secs(2)),
            refresh_repeat: 1,
        };
        assert_eq!(follow(s, 6_000), vec![(2_000, 1), (4_000, 1), (6_000, 1)]);
    }

    #[test]
    fn frames_parse_back() {
        use crate::wire::{
            arp::{ArpRepr, Operation, Packet as ArpPacket},
            ethernet::{EtherType, Frame},
        };
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let v4: IpAddr = "192.0.2.100".parse().unwrap();
        let v6: IpAddr = "2001:db8::100".parse().unwrap();
        let frames = announcement_frames(mac, &[v4, v6], GarpForm::Request, true).unwrap();
        assert_eq!(frames.len(), 2);
        let f = Frame::new_checked(&frames[0][..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.src_addr(), mac);
        let arp = ArpRepr::parse(&ArpPacket::new_checked(f.payload()).unwrap()).unwrap();
        assert_eq!(arp.operation, Operation::Request);
        assert_eq!(IpAddr::V4(arp.source_ip), v4);
        assert_eq!(IpAddr::V4(arp.target_ip), v4);
        let f = Frame::new_checked(&frames[1][..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::Ipv6);
        let IpAddr::V6(v6) = v6 else { unreachable!() };
        let na = NeighborAdvertRepr::parse(
            &ndisc::Packet::new_checked(&f.payload()[40..]).unwrap(),
            &v6,
            &ndisc::ALL_NODES,
        )
        .unwrap();
        assert_eq!(na, NeighborAdvertRepr::unsolicited(v6, mac, true));
    }
}
