//! Prometheus metrics of the daemon, and the HTTP endpoint that serves them.
//!
//! [`Metrics`] keeps every metric family in one prometheus-client [`Registry`] of its own (no
//! global registry). It belongs to the daemon's loop like the rest of its state, so it is
//! updated through `&mut self` without locks of ours (the families' internal locks are never
//! contended). [`serve`] runs the endpoint in its own task and holds no metrics: for each
//! `GET /metrics` it hands a oneshot sender to the daemon over `scrapes`, and writes back the
//! text the daemon answers with, which is [`Metrics::render`] after refreshing what it mirrors
//! (the XDP stats maps, the notifier's counts).
//!
//! Every name starts with `vipflip_`; `OpenMetrics` text adds `_total` to counters.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `vipflip_instance_state` | gauge, one-hot | `instance`, `state` (`initialize`, `backup`, `master`, `fault`) |
//! | `vipflip_instance_effective_priority` | gauge | `instance` |
//! | `vipflip_transitions_total` | counter | `instance`, `to` (a state), `cause` |
//! | `vipflip_adverts_sent_total` | counter | `instance` |
//! | `vipflip_adverts_received_total` | counter | `instance` |
//! | `vipflip_adverts_rejected_total` | counter | `instance`, `reason` |
//! | `vipflip_flip_duration_seconds` | histogram, 1 µs to 16 ms | |
//! | `vipflip_tracker_up` | gauge, 0 or 1 | `instance`, `tracker` |
//! | `vipflip_tracker_priority_contribution` | gauge | `instance`, `tracker` |
//! | `vipflip_xdp_packets_total` | counter | `interface`, `outcome` ([`Outcome::name`]) |
//! | `vipflip_xdp_verdicts_total` | counter | `interface`, `verdict` (`aborted`, `drop`, `pass`, `tx`, `redirect`) |
//! | `vipflip_lb_flows_not_remembered_total` | counter: new flows sent but not remembered, over `flow_insert_rate` | `interface` |
//! | `vipflip_xdp_vrid_adverts_total` | counter | `interface`, `family`, `vrid`, `result` (`accepted`, `dropped`) |
//! | `vipflip_real_server_up` | gauge, 0 or 1 (healthy and resolved) | `virtual_server`, `address` |
//! | `vipflip_real_server_table_slots` | gauge: slots of the live table naming it | `virtual_server`, `address` |
//! | `vipflip_virtual_server_healthy` | gauge: real servers taking new flows | `virtual_server` |
//! | `vipflip_virtual_server_quorum_met` | gauge, 0 or 1 | `virtual_server` |
//! | `vipflip_virtual_server_forward` | gauge, 1 (an info series) | `virtual_server`, `forward` (`dr`, `ipip`, `gue`) |
//! | `vipflip_announce_up` | gauge, 0 or 1 (the host route is in vipflip's table) | `vip`, `gate` (`always`, `master`, `quorum`) |
//! | `vipflip_announce_route_writes_total` | counter: routes added or removed | |
//! | `vipflip_announce_route_write_errors_total` | counter: route writes netlink refused | |
//! | `vipflip_notify_fifo_lines_total` | counter | `result` (`written`, `dropped`) |
//! | `vipflip_notify_scripts_started_total` | counter | |
//! | `vipflip_notify_scripts_failed_total` | counter | |
//! | `vipflip_notify_scripts_timed_out_total` | counter | |
//!
//! The three script counters are apart rather than one family with a `result` label: timed-out
//! scripts are also failed ones, and failed ones also started ones, so a sum over such a label
//! would count a script up to three times.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry, Unit};
use vipflip_common::{
    Outcome, Stats, VridStats, XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX,
};

use crate::notify::NotifyStats;
use crate::vrrp::StateKind;

mod endpoint;

pub use endpoint::{CLIENT_TIMEOUT, DAEMON_TIMEOUT, MAX_REQUEST_HEAD, serve};

/// The `Content-Type` of [`Metrics::render`]'s output: prometheus-client encodes `OpenMetrics`
/// text (ending in `# EOF`), which Prometheus asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The daemon's metrics; see the module docs for the list.
///
/// Series appear when first set: the daemon calls [`Metrics::set_state`] and
/// [`Metrics::set_effective_priority`] for every instance when it starts one, so an instance
/// that never changes state is still visible.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    state: Tracked<StateLabels, Gauge>,
    effective_priority: Tracked<InstanceLabels, Gauge>,
    transitions: Tracked<TransitionLabels, Counter>,
    adverts_sent: Tracked<InstanceLabels, Counter>,
    adverts_received: Tracked<InstanceLabels, Counter>,
    adverts_rejected: Tracked<RejectLabels, Counter>,
    flip_duration: Histogram,
    tracker_up: Tracked<TrackerLabels, Gauge>,
    tracker_contribution: Tracked<TrackerLabels, Gauge>,
    xdp_packets: Tracked<OutcomeLabels, Counter>,
    xdp_verdicts: Tracked<VerdictLabels, Counter>,
    xdp_vrid_adverts: Tracked<VridLabels, Counter>,
    flows_not_remembered: Tracked<InterfaceLabels, Counter>,
    real_up: Tracked<RealLabels, Gauge>,
    real_table_slots: Tracked<RealLabels, Gauge>,
    service_healthy: Tracked<ServiceLabels, Gauge>,
    service_quorum_met: Tracked<ServiceLabels, Gauge>,
    service_forward: Tracked<ForwardLabels, Gauge>,
    announce_up: Tracked<AnnounceLabels, Gauge>,
    announce_route_writes: Counter,
    announce_route_write_errors: Counter,
    notify_fifo_lines: Tracked<ResultLabels, Counter>,
    notify_scripts_started: Counter,
    notify_scripts_failed: Counter,
    notify_scripts_timed_out: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Buckets of `vipflip_flip_duration_seconds`: 1 µs doubling up to 16.384 ms (15 bounds). A
    /// flip is one map update (µs); the upper buckets catch a loaded machine.
    const FLIP_BUCKETS: (f64, f64, u16) = (1e-6, 2.0, 15);

    #[expect(
        clippy::too_many_lines,
        reason = "one registration per family, in the module docs' order"
    )]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vipflip");
        let r = &mut registry;
        Self {
            state: Tracked::register(
                r,
                "instance_state",
                "Current VRRP state of the instance: 1 for its state, 0 for the others",
            ),
            effective_priority: Tracked::register(
                r,
                "instance_effective_priority",
                "Priority the instance advertises, after tracking",
            ),
            transitions: Tracked::register(
                r,
                "transitions",
                "VRRP state transitions, by new state and cause",
            ),
            adverts_sent: Tracked::register(r, "adverts_sent", "VRRP adverts sent"),
            adverts_received: Tracked::register(
                r,
                "adverts_received",
                "VRRP adverts handed to the instance, rejected ones included",
            ),
            adverts_rejected: Tracked::register(
                r,
                "adverts_rejected",
                "VRRP adverts the agent discarded, by reason",
            ),
            flip_duration: {
                let (start, factor, count) = Self::FLIP_BUCKETS;
                let histogram = Histogram::new(exponential_buckets(start, factor, count));
                r.register_with_unit(
                    "flip_duration",
                    "Time the daemon took to write an instance's new VIPS entries, from the \
                     state machine's decision to the last map update",
                    Unit::Seconds,
                    histogram.clone(),
                );
                histogram
            },
            tracker_up: Tracked::register(
                r,
                "tracker_up",
                "Whether a tracked object is up (1) or down (0); absent while unknown",
            ),
            tracker_contribution: Tracked::register(
                r,
                "tracker_priority_contribution",
                "What a tracked object adds to (or takes from) the instance's priority now",
            ),
            xdp_packets: Tracked::register(
                r,
                "xdp_packets",
                "Frames the XDP program decided on, by outcome (the STATS map)",
            ),
            xdp_verdicts: Tracked::register(
                r,
                "xdp_verdicts",
                "Frames the XDP program returned, by XDP verdict (the STATS map)",
            ),
            xdp_vrid_adverts: Tracked::register(
                r,
                "xdp_vrid_adverts",
                "VRRP adverts the XDP program accepted or dropped, per virtual router (the \
                 VRID_STATS map)",
            ),
            flows_not_remembered: Tracked::register(
                r,
                "lb_flows_not_remembered",
                "New flows sent where the table says but not remembered in FLOWS, because the \
                 CPU had remembered flow_insert_rate new flows in the second already",
            ),
            real_up: Tracked::register(
                r,
                "real_server_up",
                "Whether the real server takes flows: healthy and its MAC known",
            ),
            real_table_slots: Tracked::register(
                r,
                "real_server_table_slots",
                "Slots of the virtual server's live lookup table that name the real server",
            ),
            service_healthy: Tracked::register(
                r,
                "virtual_server_healthy",
                "Real servers of the virtual server that take new flows",
            ),
            service_quorum_met: Tracked::register(
                r,
                "virtual_server_quorum_met",
                "Whether the virtual server has its quorum of healthy real servers",
            ),
            service_forward: Tracked::register(
                r,
                "virtual_server_forward",
                "How the virtual server's frames reach its real servers (1 for its mode; \
                 tunnel outcomes are in xdp_packets: lb_tunnel_*)",
            ),
            announce_up: Tracked::register(
                r,
                "announce_up",
                "Whether the VIP's host route is in vipflip's routing table (announced through \
                 the routing daemon)",
            ),
            announce_route_writes: registered_counter(
                r,
                "announce_route_writes",
                "Host routes added to or removed from vipflip's routing table",
            ),
            announce_route_write_errors: registered_counter(
                r,
                "announce_route_write_errors",
                "Route writes the kernel refused",
            ),
            notify_fifo_lines: Tracked::register(
                r,
                "notify_fifo_lines",
                "Lines for the notify FIFO, written whole or dropped",
            ),
            notify_scripts_started: registered_counter(
                r,
                "notify_scripts_started",
                "Notify scripts started",
            ),
            notify_scripts_failed: registered_counter(
                r,
                "notify_scripts_failed",
                "Notify scripts that could not start, exited non-zero, or were killed at their \
                 timeout",
            ),
            notify_scripts_timed_out: registered_counter(
                r,
                "notify_scripts_timed_out",
                "Notify scripts killed at their timeout (also counted as failed)",
            ),
            registry,
        }
    }

    /// `instance` is in `state` now: its `vipflip_instance_state` series for `state` is 1, the
    /// three others 0.
    pub fn set_state(&mut self, instance: &str, state: StateKind) {
        for s in ALL_STATES {
            let labels = StateLabels {
                instance: instance.to_owned(),
                state: state_label(s),
            };
            self.state.get(labels).set(i64::from(s == state));
        }
    }

    pub fn set_effective_priority(&mut self, instance: &str, priority: u8) {
        self.effective_priority
            .get(InstanceLabels::new(instance))
            .set(i64::from(priority));
    }

    /// Counts one transition of `instance` to `to`; `cause` should be a stable `snake_case` word
    /// (it becomes a label value). Does not change `vipflip_instance_state`: call
    /// [`Self::set_state`] too.
    pub fn transition(&mut self, instance: &str, to: StateKind, cause: &str) {
        let labels = TransitionLabels {
            instance: instance.to_owned(),
            to: state_label(to),
            cause: cause.to_owned(),
        };
        self.transitions.get(labels).inc();
    }

    /// The advert counters of `instance`, as the daemon and the VRRP core count them:
    /// mirrored at each scrape rather than counted here as adverts come and go, which would
    /// put a label lookup on every advert. `rejected` pairs a stable `snake_case` reason
    /// ([`DiscardKind::label`](crate::vrrp::DiscardKind::label)) with its count; reasons
    /// with no advert yet get no series.
    pub fn set_adverts(
        &mut self,
        instance: &str,
        sent: u64,
        received: u64,
        rejected: impl IntoIterator<Item = (&'static str, u64)>,
    ) {
        mirror(&self.adverts_sent.get(InstanceLabels::new(instance)), sent);
        mirror(
            &self.adverts_received.get(InstanceLabels::new(instance)),
            received,
        );
        for (reason, count) in rejected.into_iter().filter(|(_, n)| *n > 0) {
            let labels = RejectLabels {
                instance: instance.to_owned(),
                reason: reason.to_owned(),
            };
            mirror(&self.adverts_rejected.get(labels), count);
        }
    }

    /// One flip (see the metric's help) took `took`.
    pub fn observe_flip(&mut self, took: Duration) {
        self.flip_duration.observe(took.as_secs_f64());
    }

    /// The state of one tracked object of `instance`. `up: None` (not known yet, e.g. a
    /// script that has not finished once) removes `vipflip_tracker_up` rather than invent a
    /// value.
    pub fn set_tracker(
        &mut self,
        instance: &str,
        tracker: &str,
        up: Option<bool>,
        priority_contribution: i64,
    ) {
        let labels = TrackerLabels {
            instance: instance.to_owned(),
            tracker: tracker.to_owned(),
        };
        match up {
            Some(up) => {
                self.tracker_up.get(labels.clone()).set(i64::from(up));
            }
            None => self.tracker_up.remove(&labels),
        }
        self.tracker_contribution
            .get(labels)
            .set(priority_contribution);
    }

    /// The `STATS` map of the program on `interface`, summed over CPUs.
    /// What a CPU's flow budget refused on `interface`, summed over the CPUs.
    pub fn set_flows_not_remembered(&mut self, interface: &str, refused: u64) {
        let labels = InterfaceLabels {
            interface: interface.to_owned(),
        };
        mirror(&self.flows_not_remembered.get(labels), refused);
    }

    pub fn set_xdp(&mut self, interface: &str, stats: &Stats) {
        for outcome in Outcome::ALL {
            let labels = OutcomeLabels {
                interface: interface.to_owned(),
                outcome: outcome.name(),
            };
            mirror(&self.xdp_packets.get(labels), stats.outcome(outcome));
        }
        for (action, verdict) in VERDICTS {
            let labels = VerdictLabels {
                interface: interface.to_owned(),
                verdict,
            };
            mirror(&self.xdp_verdicts.get(labels), stats.verdict(action));
        }
    }

    /// The `VRID_STATS` entry of (`family`, `vrid`) on `interface`, summed over CPUs. `family`
    /// is `ipv4` or `ipv6`.
    pub fn set_xdp_vrid(
        &mut self,
        interface: &str,
        family: &'static str,
        vrid: u8,
        stats: &VridStats,
    ) {
        for (result, value) in [("accepted", stats.accepted), ("dropped", stats.dropped)] {
            let labels = VridLabels {
                interface: interface.to_owned(),
                family,
                vrid,
                result,
            };
            mirror(&self.xdp_vrid_adverts.get(labels), value);
        }
    }

    /// The virtual servers as the balancer sees them now; series of servers no longer
    /// configured go.
    pub fn set_virtual_servers(&mut self, services: &[crate::lb::balancer::Service]) {
        self.real_up.retain(|_| false);
        self.real_table_slots.retain(|_| false);
        self.service_healthy.retain(|_| false);
        self.service_quorum_met.retain(|_| false);
        self.service_forward.retain(|_| false);
        for service in services {
            let name = &service.spec.name;
            for real in service.reals.iter().chain(service.sorry.as_ref()) {
                let labels = RealLabels {
                    virtual_server: name.clone(),
                    address: real.address.to_string(),
                };
                self.real_up
                    .get(labels.clone())
                    .set(i64::from(real.usable()));
                self.real_table_slots
                    .get(labels)
                    .set(i64::from(real.table_slots));
            }
            self.service_forward
                .get(ForwardLabels {
                    virtual_server: name.clone(),
                    forward: service.spec.forward.name(),
                })
                .set(1);
            let labels = ServiceLabels {
                virtual_server: name.clone(),
            };
            self.service_healthy
                .get(labels.clone())
                .set(i64::try_from(service.healthy()).unwrap_or(i64::MAX));
            if let Some(met) = service.quorum_met {
                self.service_quorum_met.get(labels).set(i64::from(met));
            }
        }
    }

    /// The announcements, `(vip, gate, announced)`: whether each route is in the table. An
    /// announcement a reload removed loses its series.
    pub fn set_announcements<'a>(
        &mut self,
        announcements: impl Iterator<Item = (String, &'static str, bool)> + 'a,
    ) {
        self.announce_up.retain(|_| false);
        for (vip, gate, announced) in announcements {
            self.announce_up
                .get(AnnounceLabels { vip, gate })
                .set(i64::from(announced));
        }
    }

    /// The route writer's counts.
    pub fn set_route_writes(&mut self, written: u64, failed: u64) {
        mirror(&self.announce_route_writes, written);
        mirror(&self.announce_route_write_errors, failed);
    }

    /// The notifier's counts ([`Notifier::stats`](crate::notify::Notifier::stats)).
    pub fn set_notify(&mut self, stats: NotifyStats) {
        for (result, value) in [
            ("written", stats.fifo_written),
            ("dropped", stats.fifo_dropped),
        ] {
            mirror(&self.notify_fifo_lines.get(ResultLabels { result }), value);
        }
        mirror(&self.notify_scripts_started, stats.scripts_started);
        mirror(&self.notify_scripts_failed, stats.scripts_failed);
        mirror(&self.notify_scripts_timed_out, stats.scripts_timed_out);
    }

    /// Removes every series of `instance` (after a reload removed it). A later series of the
    /// same name starts again from zero, which Prometheus reads as a counter reset.
    pub fn forget_instance(&mut self, instance: &str) {
        self.state.retain(|l| l.instance != instance);
        self.effective_priority.retain(|l| l.instance != instance);
        self.transitions.retain(|l| l.instance != instance);
        self.adverts_sent.retain(|l| l.instance != instance);
        self.adverts_received.retain(|l| l.instance != instance);
        self.adverts_rejected.retain(|l| l.instance != instance);
        self.tracker_up.retain(|l| l.instance != instance);
        self.tracker_contribution.retain(|l| l.instance != instance);
    }

    /// Removes one tracked object's series (a reload removed it from the instance).
    pub fn forget_tracker(&mut self, instance: &str, tracker: &str) {
        let labels = TrackerLabels {
            instance: instance.to_owned(),
            tracker: tracker.to_owned(),
        };
        self.tracker_up.remove(&labels);
        self.tracker_contribution.remove(&labels);
    }

    /// The `OpenMetrics` text of every series, ending in `# EOF`; serve it as [`CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("encoding into a String cannot fail: our label values are plain strings");
        text
    }
}

/// Label values of `vipflip_instance_state`, in [`StateKind`] order.
const ALL_STATES: [StateKind; 4] = [
    StateKind::Initialize,
    StateKind::Backup,
    StateKind::Master,
    StateKind::Fault,
];

/// XDP actions and their `verdict` label values.
const VERDICTS: [(u32, &str); 5] = [
    (XDP_ABORTED, "aborted"),
    (XDP_DROP, "drop"),
    (XDP_PASS, "pass"),
    (XDP_TX, "tx"),
    (XDP_REDIRECT, "redirect"),
];

fn state_label(state: StateKind) -> &'static str {
    match state {
        StateKind::Initialize => "initialize",
        StateKind::Backup => "backup",
        StateKind::Master => "master",
        StateKind::Fault => "fault",
    }
}

fn registered_counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    registry.register(name, help, counter.clone());
    counter
}

/// Sets a counter to an absolute value counted elsewhere (a BPF map, the notifier).
///
/// Those values are counters (they only grow, until the program is reloaded or the daemon
/// restarts, which Prometheus reads as a reset), so they are exposed as counters, not gauges.
/// Storing into the counter's atomic keeps them in the same registry as the rest and costs
/// nothing at scrape time; a custom `Collector` of `ConstCounter`s would need the values
/// shared with the registry behind a lock instead.
fn mirror(counter: &Counter, value: u64) {
    counter.inner().store(value, Ordering::Relaxed);
}

/// A family and the label sets it holds, so that series can be removed by predicate
/// (`Family` removes one known label set but cannot list them).
#[derive(Debug)]
struct Tracked<S, M> {
    family: Family<S, M>,
    present: HashSet<S>,
}

impl<S, M> Tracked<S, M>
where
    S: Clone + Hash + Eq,
    M: Clone + Default,
    Family<S, M>: Metric,
{
    fn register(registry: &mut Registry, name: &str, help: &str) -> Self {
        let family = Family::default();
        registry.register(name, help, family.clone());
        Self {
            family,
            present: HashSet::new(),
        }
    }

    /// The metric of `labels`, created at zero if new (metrics are shared handles).
    fn get(&mut self, labels: S) -> M {
        let metric = self.family.get_or_create_owned(&labels);
        self.present.insert(labels);
        metric
    }

    fn remove(&mut self, labels: &S) {
        self.family.remove(labels);
        self.present.remove(labels);
    }

    fn retain(&mut self, keep: impl Fn(&S) -> bool) {
        let family = &self.family;
        self.present.retain(|labels| {
            let kept = keep(labels);
            if !kept {
                family.remove(labels);
            }
            kept
        });
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InstanceLabels {
    instance: String,
}

impl InstanceLabels {
    fn new(instance: &str) -> Self {
        Self {
            instance: instance.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    instance: String,
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransitionLabels {
    instance: String,
    to: &'static str,
    cause: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RejectLabels {
    instance: String,
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TrackerLabels {
    instance: String,
    tracker: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    interface: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VerdictLabels {
    interface: String,
    verdict: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VridLabels {
    interface: String,
    family: &'static str,
    vrid: u8,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RealLabels {
    virtual_server: String,
    address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ServiceLabels {
    virtual_server: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct InterfaceLabels {
    interface: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ForwardLabels {
    virtual_server: String,
    forward: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AnnounceLabels {
    vip: String,
    gate: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[cfg(test)]
mod tests;
