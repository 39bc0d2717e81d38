//! The neighbour resolver: the MAC of every real server, from rtnetlink neighbour events
//! (`RTNLGRP_NEIGH`), reported to the daemon's loop the moment it changes.
//!
//! It subscribes, dumps the neighbour tables, then applies each `RTM_NEWNEIGH` /
//! `RTM_DELNEIGH` for a wanted (interface, address) as it comes: a real server replaced by
//! another host is picked up when the director's kernel learns the new MAC (the new host's
//! gratuitous ARP, or a failed confirmation and a new resolution), not at the next poll. An
//! overrun (`ENOBUFS`: events were lost) dumps again; a subscription that ends is made anew.
//!
//! The kernel resolves an address only when something is sent to it, and the XDP program's
//! frames never go through its neighbour table. So while an address has no confirmed MAC,
//! the resolver sends it a datagram (a probe), again with a doubling wait while it stays
//! unresolved. Resolved addresses are never re-read: their changes come as events.
//!
//! [`Neighbours`] is the resolver's state, pure (time comes in as `now`); [`resolve`] is the
//! task that drives it, off the daemon's loop.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::{Duration, Instant},
};

use tokio::{net::UdpSocket, sync::mpsc};

use super::NeighbourReport;
use crate::io::netlink::{
    Neighbour, NeighbourEvent, NeighbourEvents, Netlink, NetlinkError, Resolution,
};

/// The wait before the second probe of an unresolved address; it doubles after each probe.
const PROBE_BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between probes of an address that stays unresolved (a down server whose
/// health check does not make the kernel ask for it anyway).
const PROBE_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The wait before subscribing again after the subscription failed or ended.
const RESUBSCRIBE: Duration = Duration::from_secs(1);
/// The port the probes go to (discard, RFC 863): sending any datagram makes the kernel
/// resolve the address; what happens to the datagram does not matter.
const DISCARD_PORT: u16 = 9;

/// What the resolver knows of the addresses it watches, and the probes it owes.
#[derive(Debug)]
pub(super) struct Neighbours {
    wanted: Vec<Wanted>,
}

#[derive(Debug)]
struct Wanted {
    iface: String,
    /// The interface's index at the last dump (`None`: no such interface then).
    ifindex: Option<u32>,
    address: IpAddr,
    reported: Reported,
    /// While the address has no confirmed MAC: when to probe it next.
    probe: Option<Probe>,
}

/// What was last reported of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reported {
    /// Nothing yet: no verdict since the resolver started.
    Nothing,
    /// This MAC, or `None`: unresolved.
    Mac(Option<[u8; 6]>),
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    at: Instant,
    /// The wait after that probe.
    backoff: Duration,
}

impl Neighbours {
    /// Watches `wanted` (interface, address) pairs. Nothing is reported until a verdict: the
    /// balancer starts with every MAC unknown, and keeps what it knew across a restart of the
    /// resolver until the kernel says otherwise.
    pub fn new(wanted: Vec<(String, IpAddr)>) -> Self {
        Self {
            wanted: wanted
                .into_iter()
                .map(|(iface, address)| Wanted {
                    iface,
                    ifindex: None,
                    address,
                    reported: Reported::Nothing,
                    probe: None,
                })
                .collect(),
        }
    }

    /// The interfaces whose index [`Neighbours::dumped`] needs.
    pub fn interfaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.wanted.iter().map(|w| w.iface.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Applies a dump of every neighbour entry (`entries`), with the index of each watched
    /// interface that exists (`ifindexes`). An address the dump does not hold is probed now.
    pub fn dumped(
        &mut self,
        now: Instant,
        ifindexes: &BTreeMap<String, u32>,
        entries: &[Neighbour],
    ) -> Vec<NeighbourReport> {
        let mut reports = Vec::new();
        for wanted in &mut self.wanted {
            wanted.ifindex = ifindexes.get(&wanted.iface).copied();
            let resolution = entries
                .iter()
                .find(|n| Some(n.ifindex) == wanted.ifindex && n.address == wanted.address)
                .map_or(Resolution::Unknown, |n| n.resolution);
            reports.extend(wanted.apply(now, resolution));
        }
        reports
    }

    /// Applies one `RTM_NEWNEIGH` / `RTM_DELNEIGH`.
    pub fn changed(&mut self, now: Instant, neighbour: &Neighbour) -> Vec<NeighbourReport> {
        self.wanted
            .iter_mut()
            .filter(|w| w.ifindex == Some(neighbour.ifindex) && w.address == neighbour.address)
            .filter_map(|w| w.apply(now, neighbour.resolution))
            .collect()
    }

    /// When the next probe is due, if any is owed.
    pub fn next_probe(&self) -> Option<Instant> {
        self.wanted
            .iter()
            .filter_map(|w| w.probe)
            .map(|p| p.at)
            .min()
    }

    /// The addresses to probe now; each one's next probe comes after twice the wait.
    pub fn due(&mut self, now: Instant) -> Vec<IpAddr> {
        let mut due = Vec::new();
        for wanted in &mut self.wanted {
            if let Some(probe) = wanted.probe.as_mut()
                && probe.at <= now
            {
                probe.at = now + probe.backoff;
                probe.backoff = (probe.backoff * 2).min(PROBE_BACKOFF_MAX);
                due.push(wanted.address);
            }
        }
        due
    }
}

impl Wanted {
    /// What the kernel now says of this address: a MAC is reported if new, and ends the
    /// probes; `FAILED` is reported as unresolved and probed again later; no verdict
    /// (`INCOMPLETE`, deleted, absent from a dump) keeps the MAC last reported, since an
    /// entry is also deleted when it was merely unused, and probes now, so the kernel
    /// confirms it or fails it within its own probe time.
    fn apply(&mut self, now: Instant, resolution: Resolution) -> Option<NeighbourReport> {
        let mac = match resolution {
            Resolution::Mac(mac) => {
                self.probe = None;
                Some(mac.0)
            }
            Resolution::Failed => {
                self.probe.get_or_insert(Probe {
                    at: now + PROBE_BACKOFF_FIRST,
                    backoff: PROBE_BACKOFF_FIRST,
                });
                None
            }
            Resolution::Unknown => {
                self.probe.get_or_insert(Probe {
                    at: now,
                    backoff: PROBE_BACKOFF_FIRST,
                });
                return None;
            }
        };
        if self.reported == Reported::Mac(mac) {
            return None;
        }
        self.reported = Reported::Mac(mac);
        Some(NeighbourReport {
            iface: self.iface.clone(),
            address: self.address,
            mac,
        })
    }
}

/// Keeps the MAC of every `wanted` (interface, address) known, reporting each change on
/// `tx`, until `tx` closes.
pub(super) async fn resolve(wanted: Vec<(String, IpAddr)>, tx: mpsc::Sender<NeighbourReport>) {
    let mut neighbours = Neighbours::new(wanted);
    let probes = Probes::bind().await;
    loop {
        match Netlink::subscribe_neighbours() {
            Ok((netlink, events)) => {
                if follow(&netlink, events, &mut neighbours, &probes, &tx)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(err) => log::error!("neighbour resolver: subscribing: {err}"),
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}

/// The daemon's loop stopped listening: the resolver ends.
#[derive(Debug)]
struct Closed;

/// Follows one subscription: a dump, then its events and the probes owed, until the
/// subscription fails (`Ok`: subscribe again) or the loop stops listening (`Closed`).
async fn follow(
    netlink: &Netlink,
    mut events: NeighbourEvents,
    neighbours: &mut Neighbours,
    probes: &Probes,
    tx: &mpsc::Sender<NeighbourReport>,
) -> Result<(), Closed> {
    let mut dump = true;
    loop {
        if dump {
            dump = false;
            match read_all(netlink, neighbours).await {
                Ok((ifindexes, entries)) => {
                    send(tx, neighbours.dumped(Instant::now(), &ifindexes, &entries)).await?;
                }
                Err(err) => {
                    log::error!("neighbour resolver: {err}");
                    return Ok(());
                }
            }
        }
        let next_probe = neighbours.next_probe();
        tokio::select! {
            event = events.next() => match event {
                Some(NeighbourEvent::Changed(neighbour)) => {
                    send(tx, neighbours.changed(Instant::now(), &neighbour)).await?;
                }
                Some(NeighbourEvent::Overrun) => {
                    log::warn!("neighbour resolver: netlink overrun, reading every neighbour again");
                    dump = true;
                }
                None => {
                    log::warn!("neighbour resolver: the subscription ended");
                    return Ok(());
                }
            },
            () = sleep_until(next_probe) => {
                for address in neighbours.due(Instant::now()) {
                    probes.send(address).await;
                }
            }
        }
    }
}

/// The index of each watched interface that exists, and every neighbour entry.
async fn read_all(
    netlink: &Netlink,
    neighbours: &Neighbours,
) -> Result<(BTreeMap<String, u32>, Vec<Neighbour>), NetlinkError> {
    let mut ifindexes = BTreeMap::new();
    for iface in neighbours.interfaces() {
        match netlink.ifindex(&iface).await {
            Ok(index) => {
                ifindexes.insert(iface, index);
            }
            Err(NetlinkError::NoSuchLink { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok((ifindexes, netlink.all_neighbours().await?))
}

async fn send(
    tx: &mpsc::Sender<NeighbourReport>,
    reports: Vec<NeighbourReport>,
) -> Result<(), Closed> {
    for report in reports {
        tx.send(report).await.map_err(|_| Closed)?;
    }
    Ok(())
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The sockets the probes are sent from, one per family (`None` where it cannot be opened:
/// that family's addresses resolve only by other traffic).
struct Probes {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
}

impl Probes {
    async fn bind() -> Self {
        Self {
            v4: UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
                .await
                .ok(),
            v6: UdpSocket::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)))
                .await
                .ok(),
        }
    }

    /// An empty datagram to `address`: the kernel resolves it to send it (or confirms the
    /// MAC it holds).
    async fn send(&self, address: IpAddr) {
        let socket = if address.is_ipv4() {
            &self.v4
        } else {
            &self.v6
        };
        if let Some(socket) = socket {
            let _ = socket
                .send_to(&[], SocketAddr::new(address, DISCARD_PORT))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MacAddr;

    const IFACE: &str = "eth0";
    const IFINDEX: u32 = 7;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn neighbour(last: u8, resolution: Resolution) -> Neighbour {
        Neighbour {
            ifindex: IFINDEX,
            address: ip(last),
            resolution,
        }
    }

    fn mac(last: u8) -> Resolution {
        Resolution::Mac(MacAddr([2, 0, 0, 0, 1, last]))
    }

    /// No report.
    const NONE: [NeighbourReport; 0] = [];

    fn report(last: u8, mac: Option<u8>) -> NeighbourReport {
        NeighbourReport {
            iface: IFACE.into(),
            address: ip(last),
            mac: mac.map(|m| [2, 0, 0, 0, 1, m]),
        }
    }

    /// Watching .21 and .22 on `eth0`, after a dump that holds only .21's MAC.
    fn watching(now: Instant) -> Neighbours {
        let mut n = Neighbours::new(vec![(IFACE.into(), ip(21)), (IFACE.into(), ip(22))]);
        let ifindexes = BTreeMap::from([(IFACE.to_owned(), IFINDEX)]);
        let reports = n.dumped(now, &ifindexes, &[neighbour(21, mac(21))]);
        assert_eq!(reports, [report(21, Some(21))], "no verdict on .22 yet");
        n
    }

    #[test]
    fn a_dump_reports_known_macs_and_probes_the_rest_at_once() {
        let t0 = Instant::now();
        let mut n = watching(t0);
        assert_eq!(n.next_probe(), Some(t0));
        assert_eq!(n.due(t0), [ip(22)]);
        assert!(n.due(t0).is_empty(), "one probe at a time");
    }

    #[test]
    fn a_new_mac_is_reported_at_once_and_other_changes_are_not() {
        let t0 = Instant::now();
        let mut n = watching(t0);
        // Another host took .21 (its gratuitous ARP updated the entry).
        assert_eq!(
            n.changed(t0, &neighbour(21, mac(99))),
            [report(21, Some(99))]
        );
        // The same MAC again (REACHABLE -> STALE), another interface, another address.
        assert_eq!(n.changed(t0, &neighbour(21, mac(99))), NONE);
        let elsewhere = Neighbour {
            ifindex: IFINDEX + 1,
            ..neighbour(21, mac(50))
        };
        assert_eq!(n.changed(t0, &elsewhere), NONE);
        assert_eq!(n.changed(t0, &neighbour(30, mac(30))), NONE);
        // .22 resolves: reported, and its probes end.
        assert_eq!(
            n.changed(t0, &neighbour(22, mac(22))),
            [report(22, Some(22))]
        );
        assert_eq!(n.next_probe(), None);
    }

    #[test]
    fn failed_is_reported_and_probed_with_a_doubling_wait_until_resolved() {
        let t0 = Instant::now();
        let mut n = watching(t0);
        n.changed(t0, &neighbour(22, mac(22)));
        assert_eq!(
            n.changed(t0, &neighbour(22, Resolution::Failed)),
            [report(22, None)]
        );
        assert_eq!(
            n.changed(t0, &neighbour(22, Resolution::Failed)),
            NONE,
            "said once"
        );
        let mut at = t0;
        let mut waits = Vec::new();
        while waits.len() < 8 {
            let next = n.next_probe().expect("a probe is owed");
            waits.push(next - at);
            at = next;
            assert_eq!(n.due(at), [ip(22)]);
        }
        let ms = |ms| Duration::from_millis(ms);
        assert_eq!(
            waits,
            [
                ms(100),
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(3200),
                PROBE_BACKOFF_MAX
            ]
        );
        assert_eq!(
            n.changed(at, &neighbour(22, mac(22))),
            [report(22, Some(22))]
        );
        assert_eq!(n.next_probe(), None);
    }

    #[test]
    fn a_deleted_or_incomplete_entry_keeps_its_mac_until_the_kernel_decides() {
        let t0 = Instant::now();
        let mut n = watching(t0);
        // Garbage-collected while unused: no report (the server may be fine), a probe now.
        assert_eq!(n.changed(t0, &neighbour(21, Resolution::Unknown)), NONE);
        assert!(n.due(t0).contains(&ip(21)));
        // The probe makes the kernel ask: INCOMPLETE, then an answer with the same MAC.
        assert_eq!(n.changed(t0, &neighbour(21, Resolution::Unknown)), NONE);
        assert_eq!(n.changed(t0, &neighbour(21, mac(21))), NONE);
        // Or no answer: FAILED is the verdict.
        n.changed(t0, &neighbour(21, Resolution::Unknown));
        assert_eq!(
            n.changed(t0, &neighbour(21, Resolution::Failed)),
            [report(21, None)]
        );
    }

    #[test]
    fn a_dump_after_an_overrun_applies_what_was_missed() {
        let t0 = Instant::now();
        let mut n = watching(t0);
        n.due(t0);
        let ifindexes = BTreeMap::from([(IFACE.to_owned(), IFINDEX)]);
        // Missed: .21 failed, .22 resolved.
        let reports = n.dumped(
            t0,
            &ifindexes,
            &[neighbour(21, Resolution::Failed), neighbour(22, mac(22))],
        );
        assert_eq!(reports, [report(21, None), report(22, Some(22))]);
        // An interface gone at the dump: its addresses are probed, nothing is reported.
        let reports = n.dumped(t0, &BTreeMap::new(), &[neighbour(22, mac(22))]);
        assert_eq!(reports, NONE);
        assert_eq!(n.due(t0), [ip(22)], ".21 waits for its backoff");
    }
}
