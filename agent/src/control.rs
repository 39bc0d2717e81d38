//! The control socket: how `vipflip status` and `vipflip handoff` talk to a running daemon.
//!
//! One request per connection, one JSON document each way, newline-terminated, on a Unix
//! stream socket (`global.control_socket`). Only root can reach the default path
//! (`/run/vipflip.sock`, mode 0600).

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::IpAddr,
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// A planned zero-loss handoff of one master instance.
    Handoff {
        instance: String,
    },
    /// Re-read the configuration file and apply the difference (as SIGHUP does); answered
    /// once applied, with every error when the new file is invalid (the old one stays).
    Reload,
    /// Withdraw every announced route, serve what still arrives until it stops arriving,
    /// then stop.
    Drain,
}

/// What the daemon answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Status(StatusReport),
    /// The request was accepted; `message` says what happens next.
    Ok {
        message: String,
    },
    Error {
        message: String,
    },
}

/// The daemon's view of every instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub router_id: String,
    pub pid: u32,
    pub instances: Vec<InstanceStatus>,
    /// The load balancer's services.
    #[serde(default)]
    pub virtual_servers: Vec<VirtualServerStatus>,
    /// The VIPs announced to the routing daemon (`[[announce]]`).
    #[serde(default)]
    pub announcements: Vec<AnnouncementStatus>,
    /// `[[static_address]]`, `[[static_route]]`, `[[static_rule]]`.
    #[serde(default)]
    pub statics: Vec<RouteStatus>,
}

/// One `[[announce]]`, for `vipflip status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementStatus {
    /// `198.51.100.10/32`.
    pub route: String,
    /// `always`, `master` or `quorum`.
    pub gate: String,
    /// Whether the host route is (being) written into the table.
    pub announced: bool,
    /// Why, as the gate sees it.
    pub reason: String,
    /// The kernel table the route goes into.
    pub table: u32,
}

/// One `[[virtual_server]]`, for `vipflip status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualServerStatus {
    pub name: String,
    /// `192.0.2.100:80/tcp` (`:*` for every port).
    pub service: String,
    pub scheduler: String,
    /// How frames reach the real servers: `dr`, `ipip`, `gue port 6080`, with `from
    /// <prefix>` when a tunnel source is set.
    #[serde(default = "direct_routing")]
    pub forward: String,
    /// The instance whose master serves it (empty for a service on an interface).
    pub instance: String,
    /// The interface it lives on whenever the agent runs, if it has no instance.
    #[serde(default)]
    pub interface: Option<String>,
    /// Whether the instance is master, so the service is live on this director.
    pub active: bool,
    /// Healthy real servers with weight, and the quorum wanted.
    pub healthy: u32,
    pub quorum: u32,
    /// The live table's slots (0: nothing to send to).
    pub table_len: u32,
    /// The live table's fingerprint (16 hex digits): equal on directors that send a new flow
    /// to the same real server.
    #[serde(default)]
    pub fingerprint: String,
    pub using_sorry: bool,
    pub real_servers: Vec<RealServerStatus>,
}

fn direct_routing() -> String {
    "dr".to_owned()
}

/// One real server (or the sorry server) of a virtual server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerStatus {
    pub address: IpAddr,
    pub weight: u16,
    pub sorry: bool,
    /// `up`, `down`, `unresolved` (no MAC yet) or `drained` (weight 0).
    pub state: String,
    /// The last check's words.
    pub detail: String,
    pub mac: Option<String>,
    /// Slots of the live table that name it.
    pub table_slots: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    /// `Initialize`, `Backup`, `Master` or `Fault`.
    pub state: String,
    /// Set while a graceful handoff is under way.
    pub handing_off: bool,
    pub base_priority: u8,
    pub effective_priority: u8,
    /// The router this one believes is master (itself when master), and its priority.
    pub master: Option<IpAddr>,
    pub master_priority: Option<u8>,
    pub advert_interval_ms: u64,
    pub master_adver_interval_ms: u64,
    pub time_in_state_ms: u64,
    pub transitions: u64,
    pub last_cause: Option<String>,
    pub virtual_ips: Vec<String>,
    /// What the XDP program does with the VIPs now (`local`, `forward …`, `drop`).
    pub dataplane: Vec<String>,
    pub xdp_adverts_accepted: u64,
    pub xdp_adverts_dropped: u64,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// The instance's trackers and what each does to it now.
    #[serde(default)]
    pub trackers: Vec<TrackerStatus>,
    /// The `[[sync_group]]` the instance belongs to.
    #[serde(default)]
    pub sync_group: Option<String>,
    /// A reload removed it: it is handing off and waiting out its forward window, then goes.
    #[serde(default)]
    pub removing: bool,
    /// Its `virtual_routes` and `virtual_rules`, and how each was last written.
    #[serde(default)]
    pub routes: Vec<RouteStatus>,
}

/// A configured route, rule or address, for `vipflip status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStatus {
    /// `route 198.51.100.0/24 via 192.0.2.1 table 100`, `rule from all lookup 100`.
    pub entry: String,
    /// `installed`, `absent` (not written, or removed) or `failed`.
    pub state: String,
    /// Why the last write failed.
    pub error: Option<String>,
}

impl RouteStatus {
    fn line(&self) -> String {
        match &self.error {
            Some(why) => format!("{}: {} ({why})", self.entry, self.state),
            None => format!("{}: {}", self.entry, self.state),
        }
    }
}

/// One tracker of an instance, for `vipflip status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerStatus {
    /// `track_interface eth1`, `track_script chk_web`, `track_file /run/prio`.
    pub tracker: String,
    pub weight: i32,
    /// Interface up / script good (`1`/`0`), a file's value; `None` until first observed.
    pub observed: Option<i64>,
    /// What it does now: `+10`, `-20`, `fault`, `none`, or `none (disabled by
    /// script_security)`.
    pub effect: String,
}

/// Sends `request` to the daemon at `socket` and waits for its answer (at most 10 s).
pub fn call(socket: &Path, request: &Request) -> Result<Response, ControlError> {
    call_within(socket, request, Duration::from_secs(10))
}

/// [`call`], waiting at most `timeout` for the answer.
pub fn call_within(
    socket: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ControlError> {
    let not_running = |source| ControlError::NotRunning {
        socket: socket.display().to_string(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(not_running)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(ControlError::Io)?;
    let mut line = serde_json::to_string(request).map_err(ControlError::Encode)?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(ControlError::Io)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(ControlError::Io)?;
    serde_json::from_str(&answer).map_err(|source| ControlError::Decode { answer, source })
}

/// Reads one request line (server side).
pub fn decode_request(line: &str) -> Result<Request, BadRequest> {
    serde_json::from_str(line.trim()).map_err(BadRequest)
}

/// A line on the control socket that is not a request (answered with its message).
#[derive(Debug, thiserror::Error)]
#[error("not a vipflip control request: {0}")]
pub struct BadRequest(#[source] serde_json::Error);

/// Encodes one response line (server side).
pub fn encode_response(response: &Response) -> String {
    let mut line = serde_json::to_string(response).unwrap_or_else(|e| {
        format!("{{\"response\":\"error\",\"message\":\"encoding the answer: {e}\"}}")
    });
    line.push('\n');
    line
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no vipflip daemon answers on {socket}: {source}")]
    NotRunning {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("control socket: {0}")]
    Io(#[source] std::io::Error),
    #[error("encoding the request: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("the daemon's answer is not understood ({source}): {answer:?}")]
    Decode {
        answer: String,
        #[source]
        source: serde_json::Error,
    },
}

impl StatusReport {
    /// The human form printed by `vipflip status`.
    #[expect(
        clippy::too_many_lines,
        reason = "one writeln per status line, in display order"
    )]
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "vipflip {} (pid {})", self.router_id, self.pid);
        for i in &self.instances {
            let master = match (i.master, i.master_priority) {
                (Some(addr), Some(prio)) => format!("{addr} (priority {prio})"),
                (Some(addr), None) => addr.to_string(),
                _ => "unknown".to_owned(),
            };
            let handoff = match (i.handing_off, i.removing) {
                (_, true) => " (being removed)",
                (true, false) => " (handing off)",
                (false, false) => "",
            };
            let _ = writeln!(
                out,
                "instance {} on {} vrid {} v{}: {}{handoff} for {:.1}s",
                i.name,
                i.interface,
                i.vrid,
                i.version,
                i.state,
                Duration::from_millis(i.time_in_state_ms).as_secs_f64()
            );
            let _ = writeln!(
                out,
                "  priority      {} (base {})",
                i.effective_priority, i.base_priority
            );
            let _ = writeln!(out, "  master        {master}");
            let _ = writeln!(
                out,
                "  advert        every {} ms (master advertises every {} ms)",
                i.advert_interval_ms, i.master_adver_interval_ms
            );
            let cause = i.last_cause.as_deref().unwrap_or("none yet");
            let _ = writeln!(out, "  transitions   {} (last: {cause})", i.transitions);
            let _ = writeln!(out, "  virtual ips   {}", i.virtual_ips.join(", "));
            for line in &i.dataplane {
                let _ = writeln!(out, "  xdp           {line}");
            }
            let _ = writeln!(
                out,
                "  adverts       sent {} received {}; xdp accepted {} dropped {}",
                i.adverts_sent, i.adverts_received, i.xdp_adverts_accepted, i.xdp_adverts_dropped
            );
            if let Some(group) = &i.sync_group {
                let _ = writeln!(out, "  sync group    {group}");
            }
            for t in &i.trackers {
                let observed = match t.observed {
                    Some(v) => v.to_string(),
                    None => "not yet".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "  track         {} weight {}: observed {observed}, effect {}",
                    t.tracker, t.weight, t.effect
                );
            }
            for r in &i.routes {
                let _ = writeln!(out, "  virtual       {}", r.line());
            }
        }
        for r in &self.statics {
            let _ = writeln!(out, "static {}", r.line());
        }
        for a in &self.announcements {
            let _ = writeln!(
                out,
                "announce {} when {}: {} in table {} ({})",
                a.route,
                a.gate,
                if a.announced {
                    "announced"
                } else {
                    "withdrawn"
                },
                a.table,
                a.reason
            );
        }
        for v in &self.virtual_servers {
            let _ = writeln!(
                out,
                "virtual server {} {} {} {} ({}, {})",
                v.name,
                v.service,
                v.scheduler,
                v.forward,
                match &v.interface {
                    Some(iface) => format!("interface {iface}"),
                    None => format!("instance {}", v.instance),
                },
                if v.active { "active" } else { "standby" }
            );
            let sorry = if v.using_sorry {
                ", sorry server in use"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  healthy       {} (quorum {}){sorry}; table {} slots, fingerprint {}",
                v.healthy, v.quorum, v.table_len, v.fingerprint
            );
            for r in &v.real_servers {
                let share = if v.table_len == 0 {
                    0.0
                } else {
                    f64::from(r.table_slots) * 100.0 / f64::from(v.table_len)
                };
                // A tunnel's real servers have no MAC of ours to know: the FIB finds the
                // next hop per frame.
                let path = if v.forward == "dr" {
                    format!("mac {}", r.mac.as_deref().unwrap_or("unknown"))
                } else {
                    "routed".to_owned()
                };
                let _ = writeln!(
                    out,
                    "  {} {} weight {}: {} ({}), {path}, {share:.1}% of the table",
                    if r.sorry {
                        "sorry server "
                    } else {
                        "real server  "
                    },
                    r.address,
                    r.weight,
                    r.state,
                    r.detail,
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_json_lines() {
        for request in [
            Request::Status,
            Request::Handoff {
                instance: "VI_1".into(),
            },
        ] {
            let line = serde_json::to_string(&request).unwrap();
            assert_eq!(decode_request(&format!("{line}\n")).unwrap(), request);
        }
        assert_eq!(
            serde_json::to_string(&Request::Handoff {
                instance: "VI_1".into()
            })
            .unwrap(),
            r#"{"request":"handoff","instance":"VI_1"}"#
        );
        let err = decode_request("{\"request\":\"reboot\"}")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("not a vipflip control request: unknown variant `reboot`"),
            "{err}"
        );
    }

    #[test]
    fn status_renders_every_field_for_a_human() {
        let report = StatusReport {
            router_id: "edge-1".into(),
            pid: 42,
            instances: vec![InstanceStatus {
                name: "VI_1".into(),
                interface: "eth0".into(),
                vrid: 51,
                version: 3,
                state: "Backup".into(),
                handing_off: false,
                base_priority: 150,
                effective_priority: 120,
                master: Some("192.0.2.2".parse().unwrap()),
                master_priority: Some(200),
                advert_interval_ms: 100,
                master_adver_interval_ms: 1000,
                time_in_state_ms: 12_345,
                transitions: 3,
                last_cause: Some("higher-priority advert".into()),
                virtual_ips: vec!["192.0.2.100/24".into()],
                dataplane: vec!["192.0.2.100: drop (vrid 51)".into()],
                xdp_adverts_accepted: 10,
                xdp_adverts_dropped: 2,
                adverts_sent: 7,
                adverts_received: 9,
                trackers: vec![
                    TrackerStatus {
                        tracker: "track_script chk_web".into(),
                        weight: -30,
                        observed: Some(0),
                        effect: "-30".into(),
                    },
                    TrackerStatus {
                        tracker: "track_interface eth1".into(),
                        weight: 0,
                        observed: None,
                        effect: "none".into(),
                    },
                ],
                sync_group: Some("G1".into()),
                removing: false,
                routes: vec![
                    RouteStatus {
                        entry: "route 198.51.100.0/24 via 192.0.2.1 table 100".into(),
                        state: "absent".into(),
                        error: None,
                    },
                    RouteStatus {
                        entry: "rule from 192.0.2.100/32 lookup 100".into(),
                        state: "failed".into(),
                        error: Some("RTM_NEWRULE: Operation not permitted".into()),
                    },
                ],
            }],
            virtual_servers: Vec::new(),
            announcements: Vec::new(),
            statics: vec![RouteStatus {
                entry: "route blackhole 203.0.113.0/24".into(),
                state: "installed".into(),
                error: None,
            }],
        };
        assert_eq!(
            report.render(),
            "vipflip edge-1 (pid 42)\n\
             instance VI_1 on eth0 vrid 51 v3: Backup for 12.3s\n\
             \x20 priority      120 (base 150)\n\
             \x20 master        192.0.2.2 (priority 200)\n\
             \x20 advert        every 100 ms (master advertises every 1000 ms)\n\
             \x20 transitions   3 (last: higher-priority advert)\n\
             \x20 virtual ips   192.0.2.100/24\n\
             \x20 xdp           192.0.2.100: drop (vrid 51)\n\
             \x20 adverts       sent 7 received 9; xdp accepted 10 dropped 2\n\
             \x20 sync group    G1\n\
             \x20 track         track_script chk_web weight -30: observed 0, effect -30\n\
             \x20 track         track_interface eth1 weight 0: observed not yet, effect none\n\
             \x20 virtual       route 198.51.100.0/24 via 192.0.2.1 table 100: absent\n\
             \x20 virtual       rule from 192.0.2.100/32 lookup 100: failed (RTM_NEWRULE: Operation not permitted)\n\
             static route blackhole 203.0.113.0/24: installed\n"
        );
        let json = serde_json::to_string(&Response::Status(report.clone())).unwrap();
        assert_eq!(
            serde_json::from_str::<Response>(&json).unwrap(),
            Response::Status(report.clone())
        );
        let mut removing = report;
        removing.instances[0].removing = true;
        assert!(
            removing
                .render()
                .contains("instance VI_1 on eth0 vrid 51 v3: Backup (being removed) for 12.3s\n")
        );
    }

    #[test]
    fn status_shows_each_virtual_server_and_its_real_servers() {
        let real = |last: u8, weight, state: &str, detail: &str, slots| RealServerStatus {
            address: IpAddr::from([192, 0, 2, last]),
            weight,
            sorry: false,
            state: state.into(),
            detail: detail.into(),
            mac: Some(format!("02:00:00:00:01:{last:02x}")),
            table_slots: slots,
        };
        let report = StatusReport {
            router_id: "edge-1".into(),
            pid: 42,
            instances: Vec::new(),
            virtual_servers: vec![VirtualServerStatus {
                name: "web".into(),
                service: "192.0.2.100:80/tcp".into(),
                scheduler: "maglev".into(),
                forward: "dr".into(),
                instance: "VI_1".into(),
                interface: None,
                active: true,
                healthy: 1,
                quorum: 2,
                table_len: 65537,
                fingerprint: "a1b2c3d4e5f60718".into(),
                using_sorry: false,
                real_servers: vec![
                    real(21, 1, "up", "connected", 65537),
                    real(22, 1, "down", "HTTP 503, expected 200", 0),
                    RealServerStatus {
                        sorry: true,
                        mac: None,
                        ..real(30, 1, "unresolved", "sorry server", 0)
                    },
                ],
            }],
            announcements: vec![
                AnnouncementStatus {
                    route: "192.0.2.100/32".into(),
                    gate: "quorum".into(),
                    announced: true,
                    reason: "virtual server web has its quorum".into(),
                    table: 200,
                },
                AnnouncementStatus {
                    route: "2001:db8::100/128".into(),
                    gate: "master".into(),
                    announced: false,
                    reason: "instance VI_6 is not master".into(),
                    table: 200,
                },
            ],
            statics: Vec::new(),
        };
        assert_eq!(
            report.render(),
            "vipflip edge-1 (pid 42)\n\
             announce 192.0.2.100/32 when quorum: announced in table 200 (virtual server web has its quorum)\n\
             announce 2001:db8::100/128 when master: withdrawn in table 200 (instance VI_6 is not master)\n\
             virtual server web 192.0.2.100:80/tcp maglev dr (instance VI_1, active)\n\
             \x20 healthy       1 (quorum 2); table 65537 slots, fingerprint a1b2c3d4e5f60718\n\
             \x20 real server   192.0.2.21 weight 1: up (connected), mac 02:00:00:00:01:15, 100.0% of the table\n\
             \x20 real server   192.0.2.22 weight 1: down (HTTP 503, expected 200), mac 02:00:00:00:01:16, 0.0% of the table\n\
             \x20 sorry server  192.0.2.30 weight 1: unresolved (sorry server), mac unknown, 0.0% of the table\n"
        );
        let json = serde_json::to_string(&Response::Status(report.clone())).unwrap();
        assert_eq!(
            serde_json::from_str::<Response>(&json).unwrap(),
            Response::Status(report)
        );
    }

    #[test]
    fn calling_a_missing_socket_says_no_daemon_runs() {
        let err = call(Path::new("/nonexistent/vipflip.sock"), &Request::Status).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no vipflip daemon answers on /nonexistent/vipflip.sock"),
            "{err}"
        );
    }
}
