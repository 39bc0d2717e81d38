//! keepalived's `virtual_server` (LVS) blocks to `[[virtual_server]]`s. Direct Routing and
//! the IPIP and GUE tunnels are carried; the mapping decisions are in the module docs of
//! [`super::super`].

use std::net::IpAddr;

use ipnet::IpNet;

use super::super::parse::{Loc, Stmt, Word};
use super::real_server::{INHIBIT, RealServerOut, Timers};
use super::{Conv, NO_EQUIVALENT, NO_MAIL, Section};

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
    pub(in super::super) forward: ForwardOut,
    pub(in super::super) quorum: Option<u64>,
    pub(in super::super) sorry_server: Option<IpAddr>,
    pub(in super::super) real_servers: Vec<RealServerOut>,
}

/// `forward` (and `gue_port`) as written in the TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in super::super) enum ForwardOut {
    Dr,
    Ipip,
    Gue { port: u16 },
}

/// An `lvs_method` (`lb_kind`, `sorry_server_lvs_method`) as written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LvsMethod {
    pub(super) loc: Loc,
    /// The statement as written, for reports.
    pub(super) text: String,
    pub(super) kind: MethodKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MethodKind {
    /// DR, or TUN with `type ipip` (the default) or `type gue port N`.
    Carried(ForwardOut),
    Nat,
    /// TUN `type gre`.
    Gre,
}

impl LvsMethod {
    /// What vipflip forwards by for this method; `None` for NAT and GRE.
    pub(super) const fn forward(&self) -> Option<ForwardOut> {
        match self.kind {
            MethodKind::Carried(forward) => Some(forward),
            MethodKind::Nat | MethodKind::Gre => None,
        }
    }
}

impl ForwardOut {
    /// The configuration's word for it.
    pub(in super::super) const fn name(self) -> &'static str {
        match self {
            Self::Dr => "dr",
            Self::Ipip => "ipip",
            Self::Gue { .. } => "gue",
        }
    }
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

        let forward = r.forward();
        let mut real_servers: Vec<RealServerOut> = Vec::new();
        for rs in &r.reals {
            if let Some(out) = self.real_server(rs, vip_addr, port, forward, &r.timers, sec) {
                if real_servers.iter().any(|o| o.address == out.address) {
                    self.lost(
                        rs.loc(),
                        sec,
                        rs.text(),
                        "this address is already a real server of the service (the packet keeps its port, so servers cannot be told apart by port); carried once",
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
            .and_then(|s| self.sorry_server(s, vip_addr, port, forward, &r, sec));
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
            forward,
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
            "lb_kind" | "lvs_method" => r.method = self.lvs_method(s, sec),
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
            "sorry_server_lvs_method" => r.sorry_method = self.lvs_method(s, sec),
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
        forward: ForwardOut,
        r: &RawService<'_>,
        sec: Section,
    ) -> Option<IpAddr> {
        let Some(ip) = s.args().first() else {
            self.error(s.loc(), "`sorry_server` needs an address");
            return None;
        };
        let addr = self.server_address(ip, vip, "sorry_server")?;
        // keepalived's default is the service's own method, which is what vipflip does.
        if let Some(m) = r
            .sorry_method
            .as_ref()
            .filter(|m| m.forward() != Some(forward))
        {
            self.lost(
                m.loc,
                sec,
                m.text.clone(),
                format!(
                    "vipflip forwards to the sorry server as to the real servers (forward = \"{}\"); the sorry server is left out",
                    forward.name()
                ),
            );
            return None;
        }
        self.dr_port(s.args().get(1), port, sec, "sorry_server");
        Some(addr)
    }
}

impl Conv<'_> {
    /// `lvs_method NAT|DR|TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]]`
    /// (keepalived.conf(5); `lb_kind` is its old name, `sorry_server_lvs_method` takes the
    /// same words). What keepalived 2.2.7 refuses is an error here too: lower case, ipip
    /// with a checksum option, gre with `remcsum`, gue without a port.
    pub(super) fn lvs_method(&mut self, s: &Stmt, sec: Section) -> Option<LvsMethod> {
        let words: Vec<&str> = s.args().iter().map(|w| w.text.as_str()).collect();
        let (kind, checksum) = match words.as_slice() {
            ["DR"] => (MethodKind::Carried(ForwardOut::Dr), None),
            ["NAT"] => (MethodKind::Nat, None),
            ["TUN"] | ["TUN", "type", "ipip"] => (MethodKind::Carried(ForwardOut::Ipip), None),
            ["TUN", "type", "gue", "port", port, rest @ ..] if rest.len() <= 1 => {
                let Some(port) = port.parse::<u16>().ok().filter(|p| *p != 0) else {
                    self.error(
                        s.loc(),
                        format!("`{}`: gue port `{port}`: expected 1..=65535", s.text()),
                    );
                    return None;
                };
                (MethodKind::Carried(ForwardOut::Gue { port }), rest.first())
            }
            ["TUN", "type", "gre"] | ["TUN", "type", "gre", "nocsum" | "csum"] => {
                (MethodKind::Gre, None)
            }
            _ => {
                self.error(
                    s.loc(),
                    format!(
                        "`{}`: expected NAT, DR or TUN [type {{ipip|gue port NUM|gre}} [nocsum|csum|remcsum]] (ipip takes no checksum option, gre no remcsum)",
                        s.text()
                    ),
                );
                return None;
            }
        };
        match checksum.copied() {
            None | Some("nocsum") => {}
            Some("csum") => self.note(
                s.loc(),
                sec,
                "csum",
                "vipflip sends GUE with a zero UDP checksum (nocsum), as RFC 6935 allows for tunnels: the inner packet's own checksums protect it",
            ),
            Some("remcsum") => self.note(
                s.loc(),
                sec,
                "remcsum",
                "remote checksum offload needs a GUE header, and vipflip sends GUE variant 1 (the inner packet right after UDP) with a zero UDP checksum; the real servers' fou decapsulates both",
            ),
            Some(other) => {
                self.error(
                    s.loc(),
                    format!(
                        "`{}`: `{other}`: expected nocsum, csum or remcsum",
                        s.text()
                    ),
                );
                return None;
            }
        }
        Some(LvsMethod {
            loc: s.loc(),
            text: s.text(),
            kind,
        })
    }
}

/// The raw options of a `virtual_server` block.
#[derive(Default)]
struct RawService<'s> {
    method: Option<LvsMethod>,
    algo: Option<Word>,
    protocol: &'static str,
    persistence: Option<Loc>,
    quorum: Option<(u64, Loc)>,
    sorry: Option<&'s Stmt>,
    sorry_method: Option<LvsMethod>,
    timers: Timers,
    reals: Vec<&'s Stmt>,
}

impl RawService<'_> {
    /// The service's forwarding, once [`skip_reason`] has refused the methods not carried.
    fn forward(&self) -> ForwardOut {
        self.method
            .as_ref()
            .and_then(LvsMethod::forward)
            .unwrap_or(ForwardOut::Dr)
    }
}

/// Why a service is not carried at all: NAT or GRE, or SCTP.
fn skip_reason(r: &RawService<'_>, stmt: &Stmt) -> Option<(Loc, String)> {
    match &r.method {
        Some(m) => match m.kind {
            MethodKind::Carried(_) => {}
            MethodKind::Nat => {
                return Some((
                    m.loc,
                    format!(
                        "{}: vipflip forwards by Direct Routing, IPIP or GUE and never rewrites the destination address, as NAT does. Nothing in this block was carried",
                        m.text
                    ),
                ));
            }
            MethodKind::Gre => {
                return Some((
                    m.loc,
                    format!(
                        "{}: vipflip tunnels by IPIP and GUE, not GRE; real servers that decapsulate IPIP can take forward = \"ipip\" (on Linux: `vipflip real-server --forward ipip`). Nothing in this block was carried",
                        m.text
                    ),
                ));
            }
        },
        None => {
            return Some((
                stmt.loc(),
                "no lvs_method: keepalived's default is NAT, and vipflip forwards by Direct Routing, IPIP or GUE. Nothing in this block was carried".to_owned(),
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
