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
//! | `vipflip_xdp_vrid_adverts_total` | counter | `interface`, `family`, `vrid`, `result` (`accepted`, `dropped`) |
//! | `vipflip_real_server_up` | gauge, 0 or 1 (healthy and resolved) | `virtual_server`, `address` |
//! | `vipflip_real_server_table_slots` | gauge: slots of the live table naming it | `virtual_server`, `address` |
//! | `vipflip_virtual_server_healthy` | gauge: real servers taking new flows | `virtual_server` |
//! | `vipflip_virtual_server_quorum_met` | gauge, 0 or 1 | `virtual_server` |
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
    real_up: Tracked<RealLabels, Gauge>,
    real_table_slots: Tracked<RealLabels, Gauge>,
    service_healthy: Tracked<ServiceLabels, Gauge>,
    service_quorum_met: Tracked<ServiceLabels, Gauge>,
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
struct ResultLabels {
    result: &'static str,
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{mpsc, oneshot};
    use tokio::task::JoinHandle;

    use super::endpoint::{Route, StatusCode, accept_loop, route};
    use super::*;

    fn lines(metrics: &Metrics) -> Vec<String> {
        metrics.render().lines().map(str::to_owned).collect()
    }

    #[track_caller]
    fn assert_line(metrics: &Metrics, line: &str) {
        let text = metrics.render();
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }

    #[track_caller]
    fn assert_no_line_containing(metrics: &Metrics, part: &str) {
        let text = metrics.render();
        assert!(
            !text.lines().any(|l| l.contains(part)),
            "a line contains {part:?} in:\n{text}"
        );
    }

    #[test]
    fn render_of_a_new_registry_has_only_unlabelled_metrics() {
        let text = Metrics::new().render();
        assert!(text.ends_with("# EOF\n"), "{text}");
        for line in [
            "# TYPE vipflip_flip_duration_seconds histogram",
            "# UNIT vipflip_flip_duration_seconds seconds",
            "vipflip_flip_duration_seconds_count 0",
            "# TYPE vipflip_notify_scripts_started counter",
            "vipflip_notify_scripts_started_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        // A family shows up with its first series.
        assert!(!text.contains("vipflip_transitions"), "{text}");
    }

    #[test]
    fn transitions_and_adverts_are_counted_per_label_set() {
        let mut m = Metrics::new();
        m.transition("VI_1", StateKind::Backup, "startup");
        m.transition("VI_1", StateKind::Master, "master_down");
        m.transition("VI_1", StateKind::Backup, "higher_priority");
        m.transition("VI_1", StateKind::Master, "master_down");
        m.set_adverts("VI_1", 2, 1, [("wrong_vrid", 0)]);
        m.set_adverts("VI_2", 0, 1, [("wrong_vrid", 1)]);
        m.set_effective_priority("VI_1", 110);

        for line in [
            r#"vipflip_transitions_total{instance="VI_1",to="master",cause="master_down"} 2"#,
            r#"vipflip_transitions_total{instance="VI_1",to="backup",cause="startup"} 1"#,
            r#"vipflip_transitions_total{instance="VI_1",to="backup",cause="higher_priority"} 1"#,
            r#"vipflip_adverts_sent_total{instance="VI_1"} 2"#,
            r#"vipflip_adverts_received_total{instance="VI_1"} 1"#,
            r#"vipflip_adverts_received_total{instance="VI_2"} 1"#,
            r#"vipflip_adverts_rejected_total{instance="VI_2",reason="wrong_vrid"} 1"#,
            r#"vipflip_instance_effective_priority{instance="VI_1"} 110"#,
        ] {
            assert_line(&m, line);
        }
        assert_no_line_containing(&m, r#"reason="wrong_vrid"} 0"#);
    }

    #[test]
    fn state_is_one_hot_and_switches() {
        let mut m = Metrics::new();
        m.set_state("VI_1", StateKind::Backup);
        assert_line(
            &m,
            r#"vipflip_instance_state{instance="VI_1",state="backup"} 1"#,
        );
        for other in ["initialize", "master", "fault"] {
            assert_line(
                &m,
                &format!(r#"vipflip_instance_state{{instance="VI_1",state="{other}"}} 0"#),
            );
        }

        m.set_state("VI_1", StateKind::Master);
        for line in [
            r#"vipflip_instance_state{instance="VI_1",state="master"} 1"#,
            r#"vipflip_instance_state{instance="VI_1",state="backup"} 0"#,
        ] {
            assert_line(&m, line);
        }
        let ones = lines(&m)
            .into_iter()
            .filter(|l| l.starts_with("vipflip_instance_state{") && l.ends_with(" 1"))
            .count();
        assert_eq!(ones, 1);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut m = Metrics::new();
        m.set_adverts("a\"b\\c", 1, 0, []);
        assert_line(&m, r#"vipflip_adverts_sent_total{instance="a\"b\\c"} 1"#);
    }

    #[test]
    fn forget_instance_removes_its_series_only() {
        let mut m = Metrics::new();
        for instance in ["VI_1", "VI_2"] {
            m.set_state(instance, StateKind::Master);
            m.set_effective_priority(instance, 100);
            m.transition(instance, StateKind::Master, "master_down");
            m.set_adverts(instance, 1, 1, [("from_self", 1)]);
            m.set_tracker(instance, "eth1", Some(true), -20);
        }
        m.forget_instance("VI_1");
        assert_no_line_containing(&m, r#"instance="VI_1""#);
        for line in [
            r#"vipflip_instance_state{instance="VI_2",state="master"} 1"#,
            r#"vipflip_tracker_priority_contribution{instance="VI_2",tracker="eth1"} -20"#,
        ] {
            assert_line(&m, line);
        }

        // Back after a reload: from zero.
        m.set_adverts("VI_1", 1, 0, []);
        assert_line(&m, r#"vipflip_adverts_sent_total{instance="VI_1"} 1"#);
    }

    #[test]
    fn tracker_up_is_absent_while_unknown() {
        let mut m = Metrics::new();
        m.set_tracker("VI_1", "chk_nginx", None, 0);
        assert_no_line_containing(&m, "vipflip_tracker_up{");
        assert_line(
            &m,
            r#"vipflip_tracker_priority_contribution{instance="VI_1",tracker="chk_nginx"} 0"#,
        );

        m.set_tracker("VI_1", "chk_nginx", Some(false), -30);
        assert_line(
            &m,
            r#"vipflip_tracker_up{instance="VI_1",tracker="chk_nginx"} 0"#,
        );
        m.set_tracker("VI_1", "chk_nginx", Some(true), 0);
        assert_line(
            &m,
            r#"vipflip_tracker_up{instance="VI_1",tracker="chk_nginx"} 1"#,
        );
        m.set_tracker("VI_1", "chk_nginx", None, 0);
        assert_no_line_containing(&m, "vipflip_tracker_up{");

        m.forget_tracker("VI_1", "chk_nginx");
        assert_no_line_containing(&m, "chk_nginx");
    }

    #[test]
    fn flip_histogram_buckets_are_cumulative_from_one_microsecond() {
        let mut m = Metrics::new();
        m.observe_flip(Duration::from_nanos(500));
        m.observe_flip(Duration::from_micros(3));
        m.observe_flip(Duration::from_micros(3));
        m.observe_flip(Duration::from_millis(2));
        m.observe_flip(Duration::from_millis(50));

        assert_line(&m, "vipflip_flip_duration_seconds_count 5");
        let buckets: Vec<String> = lines(&m)
            .into_iter()
            .filter(|l| l.starts_with("vipflip_flip_duration_seconds_bucket"))
            .collect();
        assert_eq!(buckets.len(), 16, "15 bounds and +Inf: {buckets:#?}");
        let expect = [
            r#"vipflip_flip_duration_seconds_bucket{le="0.000001"} 1"#,
            r#"vipflip_flip_duration_seconds_bucket{le="0.000002"} 1"#,
            r#"vipflip_flip_duration_seconds_bucket{le="0.000004"} 3"#,
            r#"vipflip_flip_duration_seconds_bucket{le="0.001024"} 3"#,
            r#"vipflip_flip_duration_seconds_bucket{le="0.002048"} 4"#,
            r#"vipflip_flip_duration_seconds_bucket{le="0.016384"} 4"#,
            r#"vipflip_flip_duration_seconds_bucket{le="+Inf"} 5"#,
        ];
        for line in expect {
            assert!(
                buckets.iter().any(|b| b == line),
                "no {line} in {buckets:#?}"
            );
        }
    }

    #[test]
    fn xdp_counters_mirror_the_maps_as_counters() {
        let mut m = Metrics::new();
        let mut stats = Stats {
            vrrp_accepted: 7,
            bad_ttl: 2,
            verdict_pass: 9,
            verdict_drop: 2,
            ..Stats::default()
        };
        m.set_xdp("eth0", &stats);
        // The map is read again later: values are replaced, not added.
        stats.vrrp_accepted = 8;
        m.set_xdp("eth0", &stats);
        m.set_xdp_vrid(
            "eth0",
            "ipv4",
            51,
            &VridStats {
                accepted: 8,
                dropped: 2,
            },
        );

        let text = m.render();
        for family in ["xdp_packets", "xdp_verdicts", "xdp_vrid_adverts"] {
            assert!(
                text.contains(&format!("# TYPE vipflip_{family} counter\n")),
                "{text}"
            );
        }
        for line in [
            r#"vipflip_xdp_packets_total{interface="eth0",outcome="vrrp_accepted"} 8"#,
            r#"vipflip_xdp_packets_total{interface="eth0",outcome="bad_ttl"} 2"#,
            r#"vipflip_xdp_packets_total{interface="eth0",outcome="peer_not_allowed"} 0"#,
            r#"vipflip_xdp_verdicts_total{interface="eth0",verdict="pass"} 9"#,
            r#"vipflip_xdp_verdicts_total{interface="eth0",verdict="aborted"} 0"#,
            r#"vipflip_xdp_vrid_adverts_total{interface="eth0",family="ipv4",vrid="51",result="dropped"} 2"#,
        ] {
            assert_line(&m, line);
        }
        let outcomes = lines(&m)
            .into_iter()
            .filter(|l| l.starts_with("vipflip_xdp_packets_total{"))
            .count();
        assert_eq!(outcomes, Outcome::ALL.len());
    }

    #[test]
    fn notify_counts_are_mirrored() {
        let mut m = Metrics::new();
        m.set_notify(NotifyStats {
            fifo_written: 4,
            fifo_dropped: 1,
            scripts_started: 3,
            scripts_failed: 2,
            scripts_timed_out: 1,
        });
        for line in [
            r#"vipflip_notify_fifo_lines_total{result="written"} 4"#,
            r#"vipflip_notify_fifo_lines_total{result="dropped"} 1"#,
            "vipflip_notify_scripts_started_total 3",
            "vipflip_notify_scripts_failed_total 2",
            "vipflip_notify_scripts_timed_out_total 1",
        ] {
            assert_line(&m, line);
        }
    }

    #[test]
    fn routes() {
        let bad = Route::Status(StatusCode::BadRequest);
        let cases: [(&[u8], Route); 7] = [
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", Route::Metrics),
            (b"GET /metrics?x=1 HTTP/1.0\n\n", Route::Metrics),
            (
                b"POST /metrics HTTP/1.1\r\n\r\n",
                Route::Status(StatusCode::MethodNotAllowed),
            ),
            (
                b"GET / HTTP/1.1\r\n\r\n",
                Route::Status(StatusCode::NotFound),
            ),
            (b"GET /metrics\r\n\r\n", bad),
            (b"GET /metrics SPDY/3\r\n\r\n", bad),
            (b"\xff\r\n\r\n", bad),
        ];
        for (head, want) in cases {
            assert_eq!(route(head), want, "{}", head.escape_ascii());
        }
    }

    /// Sends `request` on a new connection and reads the whole answer.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send request");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .await
            .expect("read answer");
        answer
    }

    /// The endpoint with a daemon stand-in that answers every scrape with `Metrics::render`.
    async fn endpoint(metrics: Metrics) -> (SocketAddr, JoinHandle<()>, JoinHandle<()>) {
        let (scrapes, mut scrape_rx) = mpsc::channel::<oneshot::Sender<String>>(4);
        let daemon = tokio::spawn(async move {
            while let Some(answer) = scrape_rx.recv().await {
                let _ = answer.send(metrics.render());
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        (addr, tokio::spawn(accept_loop(listener, scrapes)), daemon)
    }

    #[tokio::test]
    async fn endpoint_serves_metrics_and_404s_the_rest() {
        let mut metrics = Metrics::new();
        metrics.transition("VI_1", StateKind::Master, "master_down");
        let (addr, server, _daemon) = endpoint(metrics).await;

        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\nContent-Type: {CONTENT_TYPE}")),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\nContent-Length: {}", body.len())),
            "{head}"
        );
        assert!(head.contains("\r\nConnection: close"), "{head}");
        assert!(
            body.contains(
                "vipflip_transitions_total{instance=\"VI_1\",to=\"master\",cause=\"master_down\"} 1\n"
            ),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");

        let answer = exchange(addr, b"GET /other HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");

        let answer = exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
        assert!(answer.contains("\r\nAllow: GET\r\n"), "{answer}");

        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        // Exactly the limit: bytes left unread would make the close a reset.
        huge.resize(MAX_REQUEST_HEAD, b'a');
        let answer = exchange(addr, &huge).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");

        server.abort();
    }

    #[tokio::test]
    async fn endpoint_answers_503_when_the_daemon_is_gone() {
        let (addr, server, daemon) = endpoint(Metrics::new()).await;
        daemon.abort();
        let _ = daemon.await;
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{answer}"
        );
        server.abort();
    }

    #[tokio::test]
    async fn serve_names_an_address_in_use() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("local_addr");
        let (scrapes, _rx) = mpsc::channel(1);
        let err = serve(addr, scrapes).await.expect_err("address in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
