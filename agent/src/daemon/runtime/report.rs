//! What the daemon shows: `vipflip status` and the Prometheus metrics rendered at each scrape.

use std::time::{Duration, Instant};

use crate::{
    control::{InstanceStatus, StatusReport, TrackerStatus},
    track::{self},
    vrrp::{Cause, DiscardKind},
    wire::Family,
};

use super::{Daemon, reload::family_tag};

impl Daemon {
    /// Brings the values the metrics mirror (XDP maps, gauges, trackers, notify counts) up
    /// to date and renders them.
    pub(super) fn render_metrics(&mut self) -> String {
        self.announcement_metrics();
        for (iface, plane) in &self.planes {
            match plane.stats() {
                Ok(stats) => self.metrics.set_xdp(iface, &stats),
                Err(err) => log::warn!("metrics: {err}"),
            }
            match plane.flows_not_remembered() {
                Ok(refused) => self.metrics.set_flows_not_remembered(iface, refused),
                Err(err) => log::warn!("metrics: {err}"),
            }
        }
        for r in &self.instances {
            let name = &r.spec.name;
            self.metrics.set_state(name, r.vrrp.state());
            self.metrics
                .set_effective_priority(name, r.vrrp.priority().0);
            let stats = r.vrrp.stats();
            self.metrics.set_adverts(
                name,
                r.adverts_sent,
                r.adverts_received,
                DiscardKind::ALL
                    .iter()
                    .map(|kind| (kind.label(), stats.discarded(*kind))),
            );
            if let Some(plane) = self.planes.get(&r.spec.interface)
                && let Ok(stats) = plane.vrid_stats(family_tag(&r.spec), r.spec.vrid.0)
            {
                let family = if r.spec.family() == Family::Ipv4 {
                    "ipv4"
                } else {
                    "ipv6"
                };
                self.metrics
                    .set_xdp_vrid(&r.spec.interface, family, r.spec.vrid.0, &stats);
            }
            for t in r.track.report() {
                let up = match t.what {
                    track::Tracked::Interface(_)
                    | track::Tracked::Script(_)
                    | track::Tracked::Quorum(_) => t.seen.map(|v| v != 0),
                    track::Tracked::File(_) => None,
                };
                let contribution = match t.effect {
                    Some(track::Effect::Add(n)) => n,
                    Some(track::Effect::Fault) | None => 0,
                };
                self.metrics
                    .set_tracker(name, &t.what.to_string(), up, contribution);
            }
        }
        self.metrics
            .set_virtual_servers(self.lb.balancer.services());
        self.metrics.set_notify(self.notifier.stats());
        self.metrics.render()
    }

    pub(super) fn status(&self) -> StatusReport {
        let now = Instant::now();
        let instances = self
            .instances
            .iter()
            .map(|r| {
                let family = family_tag(&r.spec);
                let plane = self.planes.get(&r.spec.interface);
                let xdp = plane
                    .and_then(|p| p.vrid_stats(family, r.spec.vrid.0).ok())
                    .unwrap_or_default();
                let dataplane = plane
                    .and_then(|p| p.vips().ok())
                    .map(|vips| {
                        vips.into_iter()
                            .filter(|(addr, _)| {
                                r.spec.virtual_ips.iter().any(|n| n.addr() == *addr)
                            })
                            .map(|(addr, ownership)| format!("{addr}: {ownership}"))
                            .collect()
                    })
                    .unwrap_or_default();
                let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                let stats = r.vrrp.stats();
                InstanceStatus {
                    name: r.spec.name.clone(),
                    interface: r.spec.interface.clone(),
                    vrid: r.spec.vrid.0,
                    version: match r.spec.version {
                        crate::wire::VrrpVersion::V2 => 2,
                        crate::wire::VrrpVersion::V3 => 3,
                    },
                    state: format!("{:?}", r.vrrp.state()),
                    handing_off: r.vrrp.is_handing_off(),
                    base_priority: r.spec.priority.0,
                    effective_priority: r.vrrp.priority().0,
                    master: r.master.map(|(addr, _)| addr),
                    master_priority: r.master.map(|(_, prio)| prio),
                    advert_interval_ms: millis(r.spec.advert_interval),
                    master_adver_interval_ms: millis(r.vrrp.master_adver_interval()),
                    time_in_state_ms: millis(now.duration_since(r.entered_state)),
                    transitions: stats.transitions,
                    last_cause: r.vrrp.last_cause().map(|c| c.to_string()),
                    virtual_ips: r.spec.virtual_ips.iter().map(ToString::to_string).collect(),
                    dataplane,
                    xdp_adverts_accepted: xdp.accepted,
                    xdp_adverts_dropped: xdp.dropped,
                    adverts_sent: stats.adverts_sent,
                    adverts_received: r.adverts_received,
                    trackers: r
                        .track
                        .report()
                        .into_iter()
                        .map(|t| TrackerStatus {
                            tracker: t.what.to_string(),
                            weight: i32::try_from(t.weight).unwrap_or(0),
                            observed: t.seen,
                            effect: if t.disabled {
                                "none (disabled by script_security)".to_owned()
                            } else {
                                t.effect
                                    .map_or_else(|| "none".to_owned(), |e| e.to_string())
                            },
                        })
                        .collect(),
                    sync_group: r.group.map(|g| self.groups[g].name.clone()),
                    removing: r.retiring,
                    routes: r
                        .effects
                        .routes()
                        .status(&super::routes::instance_entries(&r.spec)),
                }
            })
            .collect();
        StatusReport {
            router_id: self.router_id.clone(),
            pid: std::process::id(),
            instances,
            virtual_servers: self.lb_status(),
            announcements: self.announcement_status(),
            statics: self.statics.status(),
        }
    }
}

/// A transition cause as a metrics label: `higher_priority_advert`, `fault_link_down`.
pub(super) fn cause_label(cause: Cause) -> String {
    let debug = format!("{cause:?}");
    let mut label = String::with_capacity(debug.len() + 4);
    for c in debug.chars() {
        if c.is_ascii_uppercase() {
            if !label.is_empty() && !label.ends_with('_') {
                label.push('_');
            }
            label.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            label.push(c);
        } else if !label.ends_with('_') {
            label.push('_');
        }
    }
    label.trim_end_matches('_').to_owned()
}
