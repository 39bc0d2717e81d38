//! The announcements' part of the daemon: the [`Announcer`] fed by instance transitions,
//! virtual servers' quorum verdicts and the daemon's leaving (drain, stop), and its route
//! changes written to vipflip's kernel table by one task, in the order decided. The loop
//! never awaits a route write: a netlink round trip never delays an advert.
//!
//! A drain (or a stop) withdraws every route and then waits for silence: the routers need
//! a moment to move their flows, and what still arrives meanwhile is served. The silence is
//! read from the XDP program's counters of VIP traffic.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot};
use vipflip_common::Outcome;

use crate::{
    announce::{AnnounceGate, Announcer, Leaving, RouteChange},
    config::Config,
    control::{AnnouncementStatus, Response},
    io::netlink::{Netlink, NetlinkError, RouteTable},
    vrrp::StateKind,
};

use super::Daemon;

/// How often a draining daemon reads the counters.
pub(super) const QUIET_POLL: Duration = Duration::from_millis(100);

/// The longest a drain waits for the silence before it stops anyway.
const DRAIN_LIMIT: Duration = Duration::from_mins(2);

/// The XDP outcomes of traffic to a VIP (served, forwarded, balanced or dropped).
const VIP_TRAFFIC: [Outcome; 9] = [
    Outcome::VipLocal,
    Outcome::VipForwardTx,
    Outcome::VipForwardRedirect,
    Outcome::VipDrop,
    Outcome::LbForwardTx,
    Outcome::LbForwardRedirect,
    Outcome::LbNoServer,
    Outcome::LbIcmpForward,
    Outcome::LbPassUnsupported,
];

enum Write {
    Change(RouteChange),
    /// Answer once everything queued before is written.
    Flush(oneshot::Sender<()>),
}

/// Silence since a drain began: the VIP packet count last read, and since when it holds.
struct Quiet {
    packets: u64,
    since: Instant,
    /// When the routes were withdrawn.
    began: Instant,
}

pub(super) struct Announcements {
    announcer: Announcer,
    table: RouteTable,
    quiet_time: Duration,
    queue: mpsc::UnboundedSender<Write>,
    /// Route writes that failed (metrics).
    failures: Arc<AtomicU64>,
    /// Routes added and removed (metrics).
    written: Arc<AtomicU64>,
    /// The changes decided while the daemon starts, held until it has started: a daemon
    /// that fails to start must not announce a VIP nothing here serves.
    held: Option<Vec<RouteChange>>,
    quiet: Option<Quiet>,
}

impl Announcements {
    /// Reads what the table holds (a previous run's routes stay announced until their gates
    /// decide; routes of VIPs no longer configured go) and starts the writer; the first
    /// changes wait for [`Daemon::announcements_started`]. A configuration without
    /// `[[announce]]` leaves the table untouched, and says so if it holds routes.
    pub(super) async fn start(
        config: &Config,
        netlink: Arc<Netlink>,
    ) -> Result<Self, NetlinkError> {
        let table = RouteTable {
            table: config.routing.table,
            protocol: config.routing.protocol,
        };
        let mut present = netlink.routes(table).await?;
        if config.announces.is_empty() && !present.is_empty() {
            // Without announcements the table is left alone: it may be someone else's.
            log::warn!(
                "routing table {}: routes with vipflip's protocol {} are left as found ({}); \
                 if a previous run announced them, remove them with `ip route flush table {} proto {}`",
                table.table,
                table.protocol,
                list(&present),
                table.table,
                table.protocol
            );
            present.clear();
        }
        if !present.is_empty() {
            log::info!(
                "routing table {}: found {} announced by a previous run",
                table.table,
                list(&present)
            );
        }
        let (queue, writes) = mpsc::unbounded_channel();
        let failures = Arc::new(AtomicU64::new(0));
        let written = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_routes(
            netlink,
            table,
            writes,
            Arc::clone(&failures),
            Arc::clone(&written),
        ));
        let (announcer, changes) = Announcer::new(&gates(config), &present);
        let announcements = Self {
            announcer,
            table,
            quiet_time: config.routing.drain_quiet,
            queue,
            failures,
            written,
            held: Some(changes),
            quiet: None,
        };
        Ok(announcements)
    }

    fn write(&mut self, changes: Vec<RouteChange>) {
        if let Some(held) = &mut self.held {
            held.extend(changes);
            return;
        }
        for change in changes {
            log::info!(
                "{} {} ({})",
                if change.announce {
                    "announcing"
                } else {
                    "withdrawing"
                },
                change.vip,
                change.reason
            );
            // The writer ends only once this sender is gone.
            let _ = self.queue.send(Write::Change(change));
        }
    }

    /// The table and protocol in force (a reload changes them only at the next start).
    pub(super) fn table(&self) -> RouteTable {
        self.table
    }

    /// Waits until every route change decided so far is written.
    pub(super) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Write::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }
}

/// The configuration's gates, in the announcer's terms.
fn gates(config: &Config) -> Vec<(IpAddr, AnnounceGate)> {
    config
        .announces
        .iter()
        .map(|a| (a.vip, a.gate.clone()))
        .collect()
}

fn list(vips: &[IpAddr]) -> String {
    vips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The task that writes route changes, one at a time, in queue order.
async fn write_routes(
    netlink: Arc<Netlink>,
    table: RouteTable,
    mut writes: mpsc::UnboundedReceiver<Write>,
    failures: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
) {
    while let Some(write) = writes.recv().await {
        match write {
            Write::Change(change) => {
                let result = if change.announce {
                    netlink.add_route(table, change.vip).await
                } else {
                    netlink.remove_route(table, change.vip).await
                };
                match result {
                    Ok(()) => {
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        log::error!("routing table {}: {}: {err}", table.table, change.vip);
                    }
                }
            }
            Write::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

impl Daemon {
    /// The daemon has started: the first route changes go out (see
    /// [`Announcements::start`]).
    pub(super) fn announcements_started(&mut self) {
        let held = self.announcements.held.take().unwrap_or_default();
        self.announcements.write(held);
        self.announce_quorums();
    }

    /// An instance changed state: the gates that follow it, and the quorum gates of its
    /// virtual servers (a virtual server is live only on its instance's master).
    pub(super) fn announce_instance(&mut self, instance: &str, state: StateKind) {
        let changes = self
            .announcements
            .announcer
            .instance(instance, state == StateKind::Master);
        self.announcements.write(changes);
        self.announce_quorums();
    }

    /// Brings the quorum gates up to date with the balancer (after any of its changes, and
    /// an instance's): a gate opens while its virtual server is live here with its quorum of
    /// real servers that can take flows (healthy, their MAC known). It gets no verdict until
    /// every checked real server has had a first result, so a starting director does not
    /// announce on the balancer's optimistic start and withdraw a check later.
    pub(super) fn announce_quorums(&mut self) {
        if self.announcements.held.is_some() {
            return;
        }
        let verdicts: Vec<(String, bool)> = self
            .config
            .virtual_servers
            .iter()
            .filter_map(|vs| {
                let service = self
                    .lb
                    .balancer
                    .services()
                    .iter()
                    .find(|s| s.spec.name == vs.name)?;
                if service
                    .reals
                    .iter()
                    .any(|r| r.checked && r.detail.is_empty())
                {
                    return None;
                }
                let usable = service
                    .reals
                    .iter()
                    .filter(|r| r.usable() && r.weight > 0)
                    .count();
                let met = usable >= service.spec.quorum as usize;
                Some((vs.name.clone(), met && self.service_live(vs)))
            })
            .collect();
        for (name, open) in verdicts {
            let changes = self.announcements.announcer.quorum(&name, open);
            self.announcements.write(changes);
        }
    }

    /// A reload: the new gates keep what is known of their inputs.
    pub(super) fn reconfigure_announcements(&mut self) {
        self.announcements.quiet_time = self.config.routing.drain_quiet;
        let changes = self
            .announcements
            .announcer
            .reconfigure(&gates(&self.config));
        self.announcements.write(changes);
        self.announce_quorums();
    }

    /// Drain or stop: every route goes; the silence is watched from now on.
    pub(super) fn withdraw_all(&mut self, why: Leaving) {
        let changes = self.announcements.announcer.leave(why);
        // Only a withdrawal moves traffic away, so only then is there a silence to wait for.
        if !changes.is_empty() && self.announcements.quiet.is_none() {
            self.announcements.quiet = Some(Quiet {
                packets: self.vip_packets(),
                since: Instant::now(),
                began: Instant::now(),
            });
        }
        self.announcements.write(changes);
    }

    /// `vipflip drain`: every route goes now; the daemon stops once the VIP traffic has
    /// been silent for `drain_quiet` (see [`Self::drained`]).
    pub(super) fn begin_drain(&mut self) -> Response {
        if self.config.announces.is_empty() {
            return Response::Error {
                message: "nothing to drain: the configuration announces no VIP ([[announce]])"
                    .into(),
            };
        }
        if self.stopping.is_some() {
            return Response::Error {
                message: "the daemon is already stopping".into(),
            };
        }
        let vips: Vec<IpAddr> = self.config.announces.iter().map(|a| a.vip).collect();
        log::info!("draining: withdrawing {}", list(&vips));
        self.withdraw_all(Leaving::Draining);
        Response::Ok {
            message: format!(
                "withdrawing {}; serving what still arrives, stopping once no VIP packet has come for {}",
                list(&vips),
                humantime::format_duration(self.announcements.quiet_time)
            ),
        }
    }

    /// A drain that has reached its quiet: time to stop.
    pub(super) fn drained(&mut self) -> bool {
        self.announcements.announcer.leaving() == Some(Leaving::Draining)
            && self.stopping.is_none()
            && self.quiet()
    }

    /// Whether no VIP packet has arrived for the quiet time since the routes were withdrawn
    /// (true when nothing was withdrawn: there is nothing to wait for). The count covers all
    /// VIP traffic (the XDP counters are not per VIP), so traffic to VIPs this director does
    /// not announce can hold the silence off: [`DRAIN_LIMIT`] bounds the wait.
    pub(super) fn quiet(&mut self) -> bool {
        let packets = self.vip_packets();
        let quiet_time = self.announcements.quiet_time;
        let Some(quiet) = &mut self.announcements.quiet else {
            return true;
        };
        if packets != quiet.packets {
            quiet.packets = packets;
            quiet.since = Instant::now();
        }
        if quiet.began.elapsed() >= DRAIN_LIMIT {
            log::warn!(
                "VIP traffic still arrives {} s after the withdrawal (to VIPs not announced \
                 here, or over the link); stopping anyway",
                DRAIN_LIMIT.as_secs()
            );
            return true;
        }
        quiet.since.elapsed() >= quiet_time
    }

    /// Whether the quiet is being watched (a deadline for the loop).
    pub(super) fn watching_quiet(&self) -> bool {
        self.announcements.quiet.is_some()
    }

    /// `vipflip status`: each announcement, its route and why it is (not) announced.
    pub(super) fn announcement_status(&self) -> Vec<AnnouncementStatus> {
        self.announcements
            .announcer
            .routes()
            .iter()
            .map(|r| AnnouncementStatus {
                route: format!("{}/{}", r.vip, if r.vip.is_ipv4() { 32 } else { 128 }),
                gate: r.gate.kind().to_owned(),
                announced: r.announced,
                reason: r.reason.to_string(),
                table: self.announcements.table.table,
            })
            .collect()
    }

    /// The metrics: each announcement's state, the route writes and their failures.
    pub(super) fn announcement_metrics(&mut self) {
        self.metrics.set_announcements(
            self.announcements
                .announcer
                .routes()
                .iter()
                .map(|r| (r.vip.to_string(), r.gate.kind(), r.announced)),
        );
        self.metrics.set_route_writes(
            self.announcements.written.load(Ordering::Relaxed),
            self.announcements.failures.load(Ordering::Relaxed),
        );
    }

    /// VIP packets the XDP programs have seen, on every interface.
    fn vip_packets(&self) -> u64 {
        self.planes
            .values()
            .filter_map(|plane| plane.stats().ok())
            .map(|stats| VIP_TRAFFIC.iter().map(|o| stats.outcome(*o)).sum::<u64>())
            .sum()
    }
}
