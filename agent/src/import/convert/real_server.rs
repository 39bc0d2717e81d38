//! A `virtual_server`'s `real_server`s and their first checker (`TCP_CHECK`, `HTTP_GET` or
//! `MISC_CHECK`) with the checker settings inherited from the service ([`Timers`]); the
//! address and port rules every server of a service follows, the sorry server too.

use std::net::IpAddr;

use super::super::parse::{Loc, Stmt, Word};
use super::script::command;
use super::virtual_server::ForwardOut;
use super::{Conv, Micros, NO_EQUIVALENT, NO_MAIL, SECOND, Section, UserOut};

/// keepalived's `delay_loop` when none is set.
const DEFAULT_DELAY_LOOP: Micros = 60 * SECOND;
pub(super) const INHIBIT: &str = "keepalived keeps a failed server with weight 0; vipflip takes it out of the table (a drained server, weight = 0, keeps its established flows)";
/// keepalived's `connect_timeout` when none is set.
const DEFAULT_CONNECT_TIMEOUT: Micros = 5 * SECOND;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(in super::super) struct RealServerOut {
    pub(in super::super) address: IpAddr,
    pub(in super::super) weight: u64,
    pub(in super::super) check: Option<CheckOut>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(in super::super) struct CheckOut {
    pub(in super::super) kind: CheckKindOut,
    pub(in super::super) interval: Micros,
    pub(in super::super) timeout: Micros,
    pub(in super::super) fall: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(in super::super) enum CheckKindOut {
    /// `port`: written only when it is not the service's.
    Tcp { port: Option<u16> },
    Http {
        port: Option<u16>,
        path: String,
        status: Option<u16>,
        body: Option<String>,
    },
    Script {
        command: Vec<String>,
        user: Option<UserOut>,
    },
}

/// Checker settings a `virtual_server` passes to its `real_server`s and they to their
/// checkers (keepalived's inheritance).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timers {
    pub(super) delay_loop: Option<Micros>,
    pub(super) connect_timeout: Option<Micros>,
    pub(super) retry: Option<u64>,
    /// Where `delay_before_retry` was written, to say once that it is not carried.
    pub(super) delay_before_retry: Option<Loc>,
}

impl Conv<'_> {
    /// A real or sorry server's address, of the VIP's family.
    pub(super) fn server_address(&mut self, w: &Word, vip: IpAddr, what: &str) -> Option<IpAddr> {
        match w.text.parse::<IpAddr>() {
            Ok(a) if a.is_ipv6() == vip.is_ipv6() && a != vip => Some(a),
            Ok(_) => {
                self.error(
                    w.loc,
                    format!(
                        "{what} {}: must be another host of the family of the virtual server's {vip}",
                        w.text
                    ),
                );
                None
            }
            Err(_) => {
                self.error(
                    w.loc,
                    format!("{what} `{}`: expected an IP address", w.text),
                );
                None
            }
        }
    }

    /// A server's port under Direct Routing or a tunnel: the packet keeps the service's port.
    pub(super) fn dr_port(&mut self, word: Option<&Word>, port: u16, sec: Section, what: &str) {
        let Some(w) = word else { return };
        if port != 0 && w.text.parse::<u16>().is_ok_and(|p| p == port) {
            return;
        }
        self.note(
            w.loc,
            sec,
            format!("{what} port {}", w.text),
            "Direct Routing and tunnels keep the destination port of the packet, so LVS ignores this port, and so does vipflip",
        );
    }

    pub(super) fn real_server(
        &mut self,
        rs: &Stmt,
        vip: IpAddr,
        port: u16,
        forward: ForwardOut,
        inherited: &Timers,
        sec: Section,
    ) -> Option<RealServerOut> {
        let Some(ip) = rs.args().first() else {
            self.error(rs.loc(), "`real_server` needs an address");
            return None;
        };
        let address = self.server_address(ip, vip, "real_server")?;
        let rs_port = rs.args().get(1);
        let mut timers = *inherited;
        let mut weight = 1;
        let mut checkers: Vec<&Stmt> = Vec::new();
        let mut method = None;
        for s in rs.children() {
            let loc = s.loc();
            match s.keyword() {
                "weight" => {
                    weight = self
                        .int(s, 0..=65535)
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(1);
                }
                "lb_kind" | "lvs_method" => method = self.lvs_method(s, sec),
                "delay_loop" => timers.delay_loop = self.seconds(s, 86_400),
                "connect_timeout" => timers.connect_timeout = self.seconds(s, 86_400),
                "retry" | "nb_get_retry" => {
                    timers.retry = self.int(s, 0..=254).and_then(|n| u64::try_from(n).ok());
                }
                "delay_before_retry" => timers.delay_before_retry = Some(loc),
                "TCP_CHECK" | "HTTP_GET" | "MISC_CHECK" | "SSL_GET" | "SMTP_CHECK"
                | "DNS_CHECK" | "UDP_CHECK" | "PING_CHECK" | "FILE_CHECK" | "BFD_CHECK" => {
                    checkers.push(s);
                }
                "inhibit_on_failure" => self.note(loc, sec, s.keyword(), INHIBIT),
                "alpha" | "warmup" => self.note(
                    loc,
                    sec,
                    s.text(),
                    "vipflip's checks decide from the first result; not carried",
                ),
                "notify_up" | "notify_down" => self.lost(
                    loc,
                    sec,
                    s.text(),
                    "vipflip runs no program on a real server's state change; watch `vipflip status` or the metrics",
                ),
                "smtp_alert" => self.lost(loc, sec, s.text(), NO_MAIL),
                _ => self.lost(loc, sec, s.text(), NO_EQUIVALENT),
            }
        }
        // keepalived lets each real server override the service's method; vipflip's
        // `forward` is the service's, for every real server.
        if let Some(m) = method.filter(|m| m.forward() != Some(forward)) {
            self.lost(
                m.loc,
                sec,
                format!("{} {}", rs.text(), m.text),
                format!(
                    "vipflip forwards to every real server of a service alike (forward = \"{}\"); this real server is left out",
                    forward.name()
                ),
            );
            return None;
        }
        self.dr_port(rs_port, port, sec, "real_server");
        let check_port = rs_port
            .and_then(|w| w.text.parse::<u16>().ok())
            .unwrap_or(port);
        let mut check = None;
        for c in checkers {
            if check.is_some() {
                self.lost(
                    c.loc(),
                    sec,
                    c.keyword(),
                    "vipflip runs one check per real server; the first is carried",
                );
                continue;
            }
            check = self.check(c, check_port, port, &timers, sec);
        }
        Some(RealServerOut {
            address,
            weight,
            check,
        })
    }

    /// One `TCP_CHECK`, `HTTP_GET` or `MISC_CHECK`; the others are reported.
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per keepalived checker keyword reads best as one match"
    )]
    fn check(
        &mut self,
        c: &Stmt,
        default_port: u16,
        service_port: u16,
        inherited: &Timers,
        sec: Section,
    ) -> Option<CheckOut> {
        let kw = c.keyword();
        if !matches!(kw, "TCP_CHECK" | "HTTP_GET" | "MISC_CHECK") {
            let reason = match kw {
                "SSL_GET" => {
                    "vipflip's HTTP check speaks plain HTTP only (no TLS); use a MISC_CHECK-style script check (curl) by hand"
                }
                _ => "vipflip checks by TCP connect, HTTP GET or script; not carried",
            };
            self.lost(c.loc(), sec, kw, reason);
            return None;
        }
        let mut timers = *inherited;
        let mut port = default_port;
        let mut url: Option<&Stmt> = None;
        let mut misc_path: Option<&Stmt> = None;
        let mut misc_timeout = None;
        let mut misc_user = None;
        for s in c.children() {
            let loc = s.loc();
            match s.keyword() {
                "connect_port" => {
                    if let Some(p) = self.int(s, 1..=65535).and_then(|n| u16::try_from(n).ok()) {
                        port = p;
                    }
                }
                "delay_loop" => timers.delay_loop = self.seconds(s, 86_400),
                "connect_timeout" => timers.connect_timeout = self.seconds(s, 86_400),
                "retry" | "nb_get_retry" => {
                    timers.retry = self.int(s, 0..=254).and_then(|n| u64::try_from(n).ok());
                }
                "delay_before_retry" => timers.delay_before_retry = Some(loc),
                "url" if kw == "HTTP_GET" => {
                    if url.is_some() {
                        self.lost(
                            loc,
                            sec,
                            "url",
                            "vipflip's HTTP check fetches one path; the first url is carried",
                        );
                    } else {
                        url = Some(s);
                    }
                }
                "misc_path" if kw == "MISC_CHECK" => misc_path = Some(s),
                "misc_timeout" if kw == "MISC_CHECK" => misc_timeout = self.seconds(s, 86_400),
                "user" if kw == "MISC_CHECK" => misc_user = self.script_user(s, sec),
                "misc_dynamic" if kw == "MISC_CHECK" => self.lost(
                    loc,
                    sec,
                    "misc_dynamic",
                    "vipflip does not set weights from a check's exit status; exit 0 = healthy, anything else = failing",
                ),
                "warmup" | "alpha" | "log_all_failures" | "http_protocol" | "fast_recovery" => {
                    self.note(loc, sec, s.text(), "not needed by vipflip's checks; left out");
                }
                _ => self.lost(loc, sec, format!("{kw} {}", s.text()), NO_EQUIVALENT),
            }
        }
        let interval = timers.delay_loop.unwrap_or(DEFAULT_DELAY_LOOP).max(1);
        let wanted = if kw == "MISC_CHECK" {
            misc_timeout.unwrap_or(interval)
        } else {
            timers.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)
        }
        .max(1);
        let timeout = wanted.min(interval);
        if timeout < wanted {
            self.note(
                c.loc(),
                sec,
                kw,
                "its timeout is longer than its delay_loop; vipflip ends a check before the next one: timeout = the interval",
            );
        }
        // keepalived: `retry` more attempts after a failure before the server goes down.
        let retry = timers.retry.unwrap_or(match kw {
            "MISC_CHECK" => 0,
            _ => 1,
        });
        if let Some(loc) = timers.delay_before_retry.filter(|_| retry > 0) {
            self.note(
                loc,
                sec,
                "delay_before_retry",
                "vipflip checks again after the interval, not sooner: a failing server goes down after fall × interval",
            );
        }
        let fall = retry + 1;
        let written_port = (port != service_port || service_port == 0).then_some(port);
        let kind = match kw {
            "TCP_CHECK" => CheckKindOut::Tcp { port: written_port },
            "HTTP_GET" => self.http(c, url, written_port, sec)?,
            _ => {
                let Some(path) = misc_path.filter(|p| !p.args().is_empty()) else {
                    self.error(c.loc(), "MISC_CHECK: no `misc_path`");
                    return None;
                };
                let (command, report) = command(path.args());
                if let Some((kind, reason)) = report {
                    self.report(kind, path.loc(), sec, path.text(), reason);
                }
                CheckKindOut::Script {
                    command,
                    user: misc_user,
                }
            }
        };
        if written_port == Some(0) {
            self.lost(
                c.loc(),
                sec,
                kw,
                "no port to check: the virtual server is on every port; add connect_port. The real server is carried without a check",
            );
            return None;
        }
        Some(CheckOut {
            kind,
            interval,
            timeout,
            fall,
        })
    }

    fn http(
        &mut self,
        c: &Stmt,
        url: Option<&Stmt>,
        port: Option<u16>,
        sec: Section,
    ) -> Option<CheckKindOut> {
        let Some(url) = url else {
            self.error(c.loc(), "HTTP_GET: no `url { path … }`");
            return None;
        };
        let mut path = None;
        let mut status = None;
        let mut body = None;
        for s in url.children() {
            let loc = s.loc();
            match s.keyword() {
                "path" => path = self.value(s).cloned(),
                "status_code" => match s.args() {
                    [w] if w.text.parse::<u16>().is_ok_and(|n| (100..=599).contains(&n)) => {
                        status = w.text.parse::<u16>().ok();
                    }
                    _ => self.lost(
                        loc,
                        sec,
                        s.text(),
                        "vipflip's HTTP check expects one status code; 200 is checked",
                    ),
                },
                "regex" => match self.value(s) {
                    Some(w) if regex::Regex::new(&w.text).is_ok() => body = Some(w.text.clone()),
                    Some(_) => self.lost(
                        loc,
                        sec,
                        s.text(),
                        "not a regular expression vipflip's (Rust) regex engine accepts; the body is not checked",
                    ),
                    None => {}
                },
                "digest" => self.lost(
                    loc,
                    sec,
                    "digest",
                    "vipflip matches the body against a regular expression, not a digest; the body is not checked",
                ),
                "regex_no_match" => self.lost(
                    loc,
                    sec,
                    "regex_no_match",
                    "vipflip's body regex must match; the body is not checked",
                ),
                _ => self.lost(loc, sec, format!("url {}", s.text()), NO_EQUIVALENT),
            }
        }
        if body.is_some()
            && url
                .children()
                .iter()
                .any(|s| s.keyword() == "regex_no_match")
        {
            body = None;
        }
        let Some(path) = path else {
            self.error(url.loc(), "HTTP_GET url: no `path`");
            return None;
        };
        if !path.text.starts_with('/') || path.text.contains(char::is_whitespace) {
            self.lost(
                path.loc,
                sec,
                format!("path {}", path.text),
                "vipflip needs a path starting with \"/\"; the real server is carried without a check",
            );
            return None;
        }
        if status.is_none() && !url.children().iter().any(|s| s.keyword() == "status_code") {
            self.note(
                url.loc(),
                sec,
                "url",
                "no status_code: keepalived accepts 200-299, vipflip expects 200",
            );
        }
        Some(CheckKindOut::Http {
            port,
            path: path.text,
            status,
            body,
        })
    }
}
