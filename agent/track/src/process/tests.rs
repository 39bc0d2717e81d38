//! keepalived's `vrrp_track_process` rules with exact values: matching by name, command
//! line and parameters; quorum ranges; fork and terminate delays in virtual time.

use core::time::Duration;
use std::time::Instant;

use super::{ParamMatch, ProcessPattern, ProcessQuorum, QuorumConfig};

fn pattern(name: &str, params: Option<&[&str]>, param_match: ParamMatch) -> ProcessPattern {
    ProcessPattern {
        name: name.into(),
        params: params.map(|p| p.iter().map(|s| (*s).to_owned()).collect()),
        param_match,
        full_command: false,
    }
}

#[test]
fn a_name_matches_the_process_name_exactly() {
    let haproxy = pattern("haproxy", None, ParamMatch::Exact);
    assert!(haproxy.matches("haproxy", &["/usr/sbin/haproxy", "-f", "/etc/haproxy.cfg"]));
    // Not a pattern: `pgrep haproxy` would match both of these, keepalived neither.
    assert!(!haproxy.matches("haproxy-exporter", &["haproxy-exporter"]));
    assert!(!haproxy.matches("haprox", &["haprox"]));
    assert!(!haproxy.needs_cmdline());
}

#[test]
fn a_long_name_is_compared_on_the_fifteen_bytes_the_kernel_keeps() {
    let long = pattern("prometheus-node-exporter", None, ParamMatch::Exact);
    assert!(long.matches("prometheus-node", &["/usr/bin/prometheus-node-exporter"]));
    assert!(!long.matches("prometheus-nod", &[]));
}

#[test]
fn full_command_matches_the_first_element_of_the_command_line() {
    let mut p = pattern("/usr/sbin/nginx", None, ParamMatch::Exact);
    p.full_command = true;
    assert!(p.needs_cmdline());
    assert!(p.matches("nginx", &["/usr/sbin/nginx", "-g", "daemon off;"]));
    assert!(!p.matches("nginx", &["nginx", "-g", "daemon off;"]));
}

#[test]
fn parameters_match_exactly_partially_or_initially() {
    let argv = ["/usr/bin/python3", "-m", "http.server", "8080"];
    let exact = pattern(
        "/usr/bin/python3",
        Some(&["-m", "http.server", "8080"]),
        ParamMatch::Exact,
    );
    assert!(exact.needs_cmdline());
    assert!(exact.matches("python3", &argv));
    assert!(!exact.matches("python3", &argv[..3]));
    let partial = pattern(
        "/usr/bin/python3",
        Some(&["-m", "http.server"]),
        ParamMatch::Partial,
    );
    assert!(partial.matches("python3", &argv));
    assert!(!partial.matches("python3", &["/usr/bin/python3", "-m"]));
    assert!(
        !pattern(
            "/usr/bin/python3",
            Some(&["-m", "http.server"]),
            ParamMatch::Exact
        )
        .matches("python3", &argv)
    );
    let initial = pattern(
        "/usr/bin/python3",
        Some(&["-m", "http"]),
        ParamMatch::Initial,
    );
    assert!(initial.matches("python3", &argv));
    assert!(!initial.matches("python3", &["/usr/bin/python3", "-c", "http"]));
    // `param_match` without parameters: the process must have none.
    let bare = pattern("/usr/bin/python3", Some(&[]), ParamMatch::Exact);
    assert!(bare.matches("python3", &["/usr/bin/python3"]));
    assert!(!bare.matches("python3", &argv));
}

/// The instant `ms` after an origin taken once: only differences matter.
#[expect(
    clippy::disallowed_methods,
    reason = "an origin for virtual time; the quorum itself never reads the clock"
)]
fn t(ms: u64) -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now) + Duration::from_millis(ms)
}

#[test]
fn the_first_count_is_reported_at_once_then_only_changes() {
    let mut q = ProcessQuorum::new(QuorumConfig::default());
    assert_eq!(q.set_count(t(0), 0), Some(false));
    assert_eq!(q.set_count(t(1), 0), None);
    assert_eq!(q.set_count(t(2), 1), Some(true));
    assert_eq!(q.set_count(t(3), 4), None);
    assert_eq!(q.set_count(t(4), 0), Some(false));
    assert_eq!(q.poll_timeout(), None);
}

#[test]
fn quorum_and_quorum_max_bound_the_range() {
    let mut q = ProcessQuorum::new(QuorumConfig {
        quorum: 2,
        quorum_max: 3,
        ..QuorumConfig::default()
    });
    assert_eq!(q.set_count(t(0), 1), Some(false));
    assert_eq!(q.set_count(t(1), 2), Some(true));
    assert_eq!(q.set_count(t(2), 3), None);
    assert_eq!(q.set_count(t(3), 4), Some(false));
    // quorum_max 0: up only while none runs.
    let mut none = ProcessQuorum::new(QuorumConfig {
        quorum: 0,
        quorum_max: 0,
        ..QuorumConfig::default()
    });
    assert_eq!(none.set_count(t(0), 0), Some(true));
    assert_eq!(none.set_count(t(1), 1), Some(false));
}

#[test]
fn fork_delay_holds_back_up_and_a_quick_exit_cancels_it() {
    let mut q = ProcessQuorum::new(QuorumConfig {
        fork_delay: Duration::from_millis(500),
        ..QuorumConfig::default()
    });
    assert_eq!(q.set_count(t(0), 0), Some(false));
    assert_eq!(q.set_count(t(100), 1), None);
    assert_eq!(q.poll_timeout(), Some(t(600)));
    assert_eq!(q.handle_timeout(t(599)), None, "early: a no-op");
    assert_eq!(q.handle_timeout(t(600)), Some(true));
    assert_eq!(q.poll_timeout(), None);
    // A process that exits within the delay never counted.
    assert_eq!(q.set_count(t(700), 0), Some(false));
    assert_eq!(q.set_count(t(800), 1), None);
    assert_eq!(q.set_count(t(900), 0), None);
    assert_eq!(q.poll_timeout(), None);
    assert_eq!(q.handle_timeout(t(1_300)), None);
}

#[test]
fn terminate_delay_holds_back_down_and_a_restart_cancels_it() {
    let mut q = ProcessQuorum::new(QuorumConfig {
        terminate_delay: Duration::from_secs(2),
        ..QuorumConfig::default()
    });
    assert_eq!(q.set_count(t(0), 1), Some(true));
    // A reload: stopped, started again within the delay; nothing is reported.
    assert_eq!(q.set_count(t(1_000), 0), None);
    assert_eq!(q.poll_timeout(), Some(t(3_000)));
    assert_eq!(q.set_count(t(1_500), 1), None);
    assert_eq!(q.poll_timeout(), None);
    // Stopped for good: down once the delay has passed.
    assert_eq!(q.set_count(t(4_000), 0), None);
    assert_eq!(q.handle_timeout(t(6_000)), Some(false));
}
