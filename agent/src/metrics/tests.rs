//! The metrics as a scrape shows them: each series with its labels and values after the
//! events that move it, the `OpenMetrics` text, and the endpoint's answers to good and bad requests.

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
fn announcements_are_mirrored_and_a_removed_one_goes() {
    let mut m = Metrics::new();
    m.set_announcements(
        [
            ("198.51.100.10".to_owned(), "master", true),
            ("198.51.100.11".to_owned(), "quorum", false),
        ]
        .into_iter(),
    );
    m.set_route_writes(3, 1);
    for line in [
        r#"vipflip_announce_up{vip="198.51.100.10",gate="master"} 1"#,
        r#"vipflip_announce_up{vip="198.51.100.11",gate="quorum"} 0"#,
        "vipflip_announce_route_writes_total 3",
        "vipflip_announce_route_write_errors_total 1",
    ] {
        assert_line(&m, line);
    }
    m.set_announcements([("198.51.100.10".to_owned(), "master", false)].into_iter());
    assert_line(
        &m,
        r#"vipflip_announce_up{vip="198.51.100.10",gate="master"} 0"#,
    );
    assert_no_line_containing(&m, "198.51.100.11");
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
