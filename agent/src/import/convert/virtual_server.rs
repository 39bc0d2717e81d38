//! keepalived's `virtual_server` (LVS) blocks to `[[virtual_server]]`s. Only Direct Routing
//! is carried; the mapping decisions are in the module docs of [`super::super`].

use std::net::IpAddr;

use ipnet::IpNet;

use super::super::parse::{Loc, Stmt, Word};
use super::{Conv, Micros, NO_EQUIVALENT, NO_MAIL, SECOND, Section, command};

/// keepalived's `delay_loop` when none is set.
const DEFAULT_DELAY_LOOP: Micros = 60 * SECOND;
const INHIBIT: &str = "keepalived keeps a failed server with weight 0; vipflip takes it out of the table (a drained server, weight = 0, keeps its established flows)";
/// keepalived's `connect_timeout` when none is set.
const DEFAULT_CONNECT_TIMEOUT: Micros = 5 * SECOND;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(in super::super) struct VirtualServerOut {
    pub(in super::super) name: String,
    pub(in super::super) vip: IpAddr,
    pub(in super::super) port: u16,
    /// `"tcp"` or `"udp"`.
    pub(in super::super) protocol: &'static str,
    /// `"maglev"`, `"wrr"` or `"sh"`.
    pub(in super::super) scheduler: &'static str,
    pub(in super::super) instance: String,
    pub(in super::super) quorum: Option<u64>,
    pub(in super::super) sorry_server: Option<IpAddr>,
    pub(in super::super) real_servers: Vec<RealServerOut>,
}

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
    Tcp {
        port: Option<u16>,
    },
    Http {
        port: Option<u16>,
        path: String,
        status: Option<u16>,
        body: Option<String>,
    },
    Script {
        command: Vec<String>,
    },
}

/// Checker settings a `virtual_server` passes to its `real_server`s and they to their
/// checkers (keepalived's inheritance).
#[derive(Debug, Clone, Copy, Default)]
struct Timers {
    delay_loop: Option<Micros>,
    connect_timeout: Option<Micros>,
    retry: Option<u64>,
    /// Where `delay_before_retry` was written, to say once that it is not carried.
    delay_before_retry: Option<Loc>,
}

impl<'s> Conv<'s> {
    /// `virtual_server IP [PORT] { … }`: converted if Direct Routing and its VIP belongs to a
    /// converted instance; otherwise reported and skipped.
    pub(super) fn virtual_server(&mut self, stmt: &'s Stmt) {
        let h = Section::Header;
        let head = stmt.text();
        let Some((vip_addr, port)) = self.service_head(stmt) else {
            return;
        };
        let Some(instance) = self.owner(vip_addr) else {
            self.lost(
                stmt.loc(),
                h,
                head,
                format!(
                    "no vrrp_instance has {vip_addr} in its virtual_ipaddress; a vipflip virtual_server follows the instance that owns its VIP. Nothing in this block was carried"
                ),
            );
            return;
        };
        let errors_before = self.errors.len();
        let reports_before = self.out.reports.len();
        let sec = Section::VirtualServer(self.out.virtual_servers.len());
        let mut r = RawService::default();
        for s in stmt.children() {
            self.service_option(s, sec, &mut r);
        }
        if let Some((loc, reason)) = skip_reason(&r, stmt) {
            // What the block's options said no longer applies: the block is skipped whole.
            self.out.reports.truncate(reports_before);
            self.lost(loc, h, head, reason);
            return;
        }
        let scheduler = self.scheduler(&r, stmt.loc(), sec);
        if r.protocol.is_empty() {
            self.note(
                stmt.loc(),
                sec,
                "protocol",
                "none set: keepalived 2.2.7 defaults to UDP (and warns), and so does the import",
            );
        }
        let protocol = if r.protocol == "tcp" { "tcp" } else { "udp" };

        let mut real_servers: Vec<RealServerOut> = Vec::new();
        for rs in &r.reals {
            if let Some(out) = self.real_server(rs, vip_addr, port, &r.timers, sec) {
                if real_servers.iter().any(|o| o.address == out.address) {
                    self.lost(
                        rs.loc(),
                        sec,
                        rs.text(),
                        "this address is already a real server of the service (Direct Routing cannot tell ports apart); carried once",
                    );
                    continue;
                }
                real_servers.push(out);
            }
        }
        if scheduler.1 {
            self.equal_weights(&mut real_servers, &r, sec);
        }
        if self.errors.len() > errors_before {
            return;
        }
        if real_servers.is_empty() {
            self.lost(
                stmt.loc(),
                h,
                head,
                "no real server could be carried; vipflip needs at least one. Nothing in this block was carried",
            );
            return;
        }
        let weights: Vec<u64> = real_servers.iter().map(|r| r.weight).collect();
        let quorum = self.quorum(r.quorum, &weights, sec);
        let sorry_server = r
            .sorry
            .as_ref()
            .and_then(|s| self.sorry_server(s, vip_addr, port, &r, sec));
        let mut name = format!(
            "{}:{port}/{protocol}",
            match vip_addr {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            }
        );
        if self.out.virtual_servers.iter().any(|v| v.name == name) {
            name = format!("{name}#{}", sec_index(sec) + 1);
        }
        self.out.virtual_servers.push(VirtualServerOut {
            name,
            vip: vip_addr,
            port,
            protocol,
            scheduler: scheduler.0,
            instance,
            quorum,
            sorry_server,
            real_servers,
        });
    }

    /// `IP [PORT]` of a `virtual_server`; `fwmark` and `group` services are reported.
    fn service_head(&mut self, stmt: &Stmt) -> Option<(IpAddr, u16)> {
        let h = Section::Header;
        let head = stmt.text();
        let (vip, port) = match stmt.args() {
            [kw, ..] if kw.text == "fwmark" => {
                self.lost(
                    stmt.loc(),
                    h,
                    head,
                    "firewall-mark services are not supported: vipflip matches (vip, port, protocol); write one virtual_server per address and port. Nothing in this block was carried",
                );
                return None;
            }
            [kw, ..] if kw.text == "group" => {
                self.lost(
                    stmt.loc(),
                    h,
                    head,
                    "virtual_server_group is not supported: write one virtual_server per address and port. Nothing in this block was carried",
                );
                return None;
            }
            [ip] => (ip, None),
            [ip, port] => (ip, Some(port)),
            _ => {
                self.error(
                    stmt.loc(),
                    format!("`{head}`: expected `virtual_server IP [PORT]`"),
                );
                return None;
            }
        };
        let Ok(vip_addr) = vip.text.parse::<IpAddr>() else {
            self.error(
                vip.loc,
                format!("`{head}`: `{}` is not an IP address", vip.text),
            );
            return None;
        };
        let port = self.port(port, &head)?;
        Some((vip_addr, port))
    }

    fn port(&mut self, word: Option<&Word>, head: &str) -> Option<u16> {
        let Some(w) = word else {
            return Some(0);
        };
        if let Ok(p) = w.text.parse::<u16>() {
            return Some(p);
        }
        self.error(
            w.loc,
            format!("`{head}`: port `{}`: expected 0..=65535", w.text),
        );
        None
    }

    /// The converted instance whose virtual IPs hold `vip`.
    fn owner(&self, vip: IpAddr) -> Option<String> {
        self.out
            .instances
            .iter()
            .find(|i| {
                i.virtual_ips
                    .iter()
                    .any(|n| n.parse::<IpNet>().is_ok_and(|n| n.addr() == vip))
            })
            .map(|i| i.name.clone())
    }

    fn service_option(&mut self, s: &'s Stmt, sec: Section, r: &mut RawService<'s>) {
        let loc = s.loc();
        match s.keyword() {
            "lb_kind" | "lvs_method" => r.method = self.value(s).cloned(),
            "lb_algo" | "lvs_sched" => r.algo = self.value(s).cloned(),
            "protocol" => match self.value(s).map(|w| w.text.to_ascii_uppercase()) {
                Some(p) if p == "TCP" => r.protocol = "tcp",
                Some(p) if p == "UDP" => r.protocol = "udp",
                Some(p) if p == "SCTP" => r.protocol = "sctp",
                Some(p) => self.error(loc, format!("`protocol {p}`: expected TCP, UDP or SCTP")),
                None => {}
            },
            "persistence_timeout" => r.persistence = Some(loc),
            "persistence_granularity" | "persistence_engine" => self.lost(
                loc,
                sec,
                s.text(),
                "vipflip's source hashing keys on the whole client address; not carried",
            ),
            "quorum" => {
                r.quorum = self
                    .int(s, 0..=i64::from(u32::MAX))
                    .and_then(|n| u64::try_from(n).ok())
                    .map(|n| (n, loc));
            }
            "quorum_up" | "quorum_down" => self.lost(
                loc,
                sec,
                s.text(),
                "vipflip runs no program on quorum changes: losing quorum changes the instance's priority by quorum_weight instead (set it by hand), and shows in status and metrics",
            ),
            "alpha" => self.note(
                loc,
                sec,
                "alpha",
                "keepalived starts real servers as down until a check passes; vipflip's checks decide from the first result, and servers without a check are always up",
            ),
            "omega" => self.note(
                loc,
                sec,
                "omega",
                "runs quorum_down and notify_down at shutdown in keepalived; vipflip runs neither",
            ),
            "inhibit_on_failure" => self.note(loc, sec, s.keyword(), INHIBIT),
            "sorry_server" => r.sorry = Some(s),
            "sorry_server_inhibit" => self.note(
                loc,
                sec,
                s.keyword(),
                "vipflip's sorry server is used while no real server is healthy; it has no check to inhibit",
            ),
            "sorry_server_lvs_method" => r.sorry_method = self.value(s).cloned(),
            "delay_loop" => r.timers.delay_loop = self.seconds(s, 86_400),
            "connect_timeout" => r.timers.connect_timeout = self.seconds(s, 86_400),
            "retry" | "nb_get_retry" => {
                r.timers.retry = self.int(s, 0..=254).and_then(|n| u64::try_from(n).ok());
            }
            "delay_before_retry" => r.timers.delay_before_retry = Some(loc),
            "warmup" => self.note(
                loc,
                sec,
                s.text(),
                "vipflip starts every check at once; not carried",
            ),
            "real_server" => r.reals.push(s),
            "smtp_alert" => self.lost(loc, sec, s.text(), NO_MAIL),
            "virtualhost" => self.lost(
                loc,
                sec,
                s.text(),
                "vipflip's HTTP check sends the real server's address as Host; not carried",
            ),
            _ => self.lost(loc, sec, s.text(), NO_EQUIVALENT),
        }
    }

    /// `lb_algo` (and `persistence_timeout`) to vipflip's scheduler; `.1` says whether
    /// weights must be made equal (LVS `rr` ignores them).
    fn scheduler(&mut self, r: &RawService<'_>, at: Loc, sec: Section) -> (&'static str, bool) {
        let algo = r.algo.as_ref();
        let (scheduler, equal) = match algo.map(|w| w.text.as_str()) {
            Some("rr") => ("wrr", true),
            Some("wrr") => ("wrr", false),
            Some("sh") => ("sh", false),
            Some("mh") => {
                if let Some(w) = algo {
                    self.note(
                        w.loc,
                        sec,
                        "lb_algo mh",
                        "maglev: the same consistent hashing, over the whole connection rather than the client address alone (set scheduler = \"sh\" to keep a client on one server)",
                    );
                }
                ("maglev", false)
            }
            Some(other) => {
                if let Some(w) = algo {
                    self.note(
                        w.loc,
                        sec,
                        format!("lb_algo {other}"),
                        "the XDP data plane keeps no connection counts, so least-connection and the other kernel schedulers have no equivalent: maglev (consistent hashing by weight) instead",
                    );
                }
                ("maglev", false)
            }
            None => {
                self.note(
                    at,
                    sec,
                    "lb_algo",
                    "none set (the kernel's default is wlc, which needs connection counts the XDP data plane does not keep): maglev",
                );
                ("maglev", false)
            }
        };
        let Some(loc) = r.persistence else {
            return (scheduler, equal);
        };
        if scheduler == "sh" {
            self.note(
                loc,
                sec,
                "persistence_timeout",
                "source hashing already keeps each client on one server, without a timeout",
            );
        } else {
            self.note(
                loc,
                sec,
                "persistence_timeout",
                format!(
                    "vipflip has no persistence timeout; scheduler = \"sh\" (source hashing) keeps each client on one server instead of \"{scheduler}\""
                ),
            );
        }
        ("sh", equal)
    }

    /// LVS `rr` ignores weights other than 0: vipflip's `wrr` gets 1 for each.
    fn equal_weights(&mut self, reals: &mut [RealServerOut], r: &RawService<'_>, sec: Section) {
        let mut changed = false;
        for rs in reals.iter_mut() {
            if rs.weight > 1 {
                rs.weight = 1;
                changed = true;
            }
        }
        if let (true, Some(w)) = (changed, &r.algo) {
            self.note(
                w.loc,
                sec,
                "lb_algo rr",
                "round robin ignores weights: wrr with weight 1 for every real server (0 still drains)",
            );
        }
    }

    /// keepalived's quorum is a sum of live weights; vipflip's counts healthy servers.
    fn quorum(&mut self, quorum: Option<(u64, Loc)>, weights: &[u64], sec: Section) -> Option<u64> {
        let (q, loc) = quorum?;
        let n = weights.len() as u64;
        let equal = weights.first().filter(|w| weights.iter().all(|x| x == *w));
        let count = match equal {
            Some(&w) if w > 0 => q.div_ceil(w),
            _ => q,
        };
        let carried = count.min(n);
        if carried != q || equal.is_none_or(|w| *w != 1) {
            self.note(
                loc,
                sec,
                format!("quorum {q}"),
                format!(
                    "keepalived sums the weights of live servers, vipflip counts healthy servers: quorum = {carried} of {n}{}",
                    if equal.is_some() {
                        ""
                    } else {
                        " (weights differ: check it means what you want)"
                    }
                ),
            );
        }
        Some(carried)
    }

    fn sorry_server(
        &mut self,
        s: &Stmt,
        vip: IpAddr,
        port: u16,
        r: &RawService<'_>,
        sec: Section,
    ) -> Option<IpAddr> {
        let Some(ip) = s.args().first() else {
            self.error(s.loc(), "`sorry_server` needs an address");
            return None;
        };
        let addr = self.server_address(ip, vip, "sorry_server")?;
        if let Some(m) = r.sorry_method.as_ref().filter(|m| m.text != "DR") {
            self.lost(
                m.loc,
                sec,
                format!("sorry_server_lvs_method {}", m.text),
                "vipflip forwards by Direct Routing only; the sorry server is left out",
            );
            return None;
        }
        self.dr_port(s.args().get(1), port, sec, "sorry_server");
        Some(addr)
    }

    /// A real or sorry server's address, of the VIP's family.
    fn server_address(&mut self, w: &Word, vip: IpAddr, what: &str) -> Option<IpAddr> {
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

    /// A server's port under Direct Routing: the packet keeps the service's port.
    fn dr_port(&mut self, word: Option<&Word>, port: u16, sec: Section, what: &str) {
        let Some(w) = word else { return };
        if port != 0 && w.text.parse::<u16>().is_ok_and(|p| p == port) {
            return;
        }
        self.note(
            w.loc,
            sec,
            format!("{what} port {}", w.text),
            "Direct Routing keeps the destination port of the packet, so LVS ignores this port, and so does vipflip",
        );
    }

    fn real_server(
        &mut self,
        rs: &Stmt,
        vip: IpAddr,
        port: u16,
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
                "lb_kind" | "lvs_method" => method = self.value(s).cloned(),
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
        if let Some(m) = method.filter(|m| m.text != "DR") {
            self.lost(
                m.loc,
                sec,
                format!("{} lb_kind {}", rs.text(), m.text),
                "vipflip forwards by Direct Routing only; this real server is left out",
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
                CheckKindOut::Script { command }
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

/// The raw options of a `virtual_server` block.
#[derive(Default)]
struct RawService<'s> {
    method: Option<Word>,
    algo: Option<Word>,
    protocol: &'static str,
    persistence: Option<Loc>,
    quorum: Option<(u64, Loc)>,
    sorry: Option<&'s Stmt>,
    sorry_method: Option<Word>,
    timers: Timers,
    reals: Vec<&'s Stmt>,
}

/// Why a service is not carried at all: not Direct Routing, or SCTP.
fn skip_reason(r: &RawService<'_>, stmt: &Stmt) -> Option<(Loc, String)> {
    match &r.method {
        Some(w) if w.text == "DR" => {}
        Some(w) => {
            return Some((
                w.loc,
                format!(
                    "lb_kind {}: vipflip balances by Direct Routing only (the packet is forwarded unchanged to the real server's MAC). Nothing in this block was carried",
                    w.text
                ),
            ));
        }
        None => {
            return Some((
                stmt.loc(),
                "no lb_kind: keepalived's default is NAT, and vipflip balances by Direct Routing only. Nothing in this block was carried".to_owned(),
            ));
        }
    }
    (r.protocol == "sctp").then(|| {
        (
            stmt.loc(),
            "protocol SCTP: vipflip balances TCP and UDP only. Nothing in this block was carried"
                .to_owned(),
        )
    })
}

fn sec_index(sec: Section) -> usize {
    match sec {
        Section::VirtualServer(i) => i,
        _ => 0,
    }
}
