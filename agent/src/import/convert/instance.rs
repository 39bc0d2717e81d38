//! `vrrp_instance` to `[[instance]]`: the VRRP fields with keepalived's defaults and
//! inheritance from `global_defs`, virtual and peer addresses of one family, authentication.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::super::parse::{Loc, Stmt, Word, join};
use super::global_defs::Globals;
use super::notify::NOTIFY_ANY;
use super::tracking::{Track, TrackFileDef, TrackKind};
use super::values::seconds_text;
use super::{
    Conv, GARP_REFRESH, GARP_REFRESH_REPEAT, Garp, InstanceOut, Micros, NO_EQUIVALENT, NO_MAIL,
    Notify, SECOND, Section, TableOut,
};

/// The raw fields of a `vrrp_instance`, before defaults and cross-checks.
#[derive(Default)]
struct RawInstance<'s> {
    master: Option<Loc>,
    interface: Option<&'s Word>,
    vrid: Option<u8>,
    priority: Option<u8>,
    advert: Option<(Micros, Loc)>,
    version: Option<(u8, Loc)>,
    preempt: bool,
    nopreempt: Option<Loc>,
    preempt_delay: Micros,
    accept: Option<(bool, Loc)>,
    strict: Option<bool>,
    src: Option<(&'s Word, &'static str)>,
    peers: Vec<&'s Word>,
    check_unicast_src: bool,
    vips: Vec<&'s Stmt>,
    tracks: Vec<Track>,
    notify: Notify,
    garp_delay: Option<Micros>,
    garp_repeat: Option<u64>,
    garp_refresh: Option<Micros>,
    garp_refresh_repeat: Option<u64>,
    lower_prio_no_advert: Option<bool>,
    higher_prio_send_advert: Option<bool>,
    auth: Option<&'s Stmt>,
    routes: Vec<TableOut>,
    rules: Vec<TableOut>,
}

impl<'s> Conv<'s> {
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per keepalived keyword reads best as one match"
    )]
    pub(super) fn instance(
        &mut self,
        stmt: &'s Stmt,
        index: usize,
        g: &Globals,
        script_weights: &HashMap<&str, i64>,
        files: &HashMap<String, TrackFileDef>,
        group: Option<(&str, bool)>,
    ) -> Option<InstanceOut> {
        let sec = Section::Instance(index);
        let Some(name) = stmt.args().first() else {
            self.error(stmt.loc(), "`vrrp_instance` needs a name");
            return None;
        };
        let name = name.text.clone();
        let mut r = RawInstance {
            preempt: true,
            ..RawInstance::default()
        };
        let errors_before = self.errors.len();
        for s in stmt.children() {
            let loc = s.loc();
            match s.keyword() {
                "state" => match self.value(s).map(|w| w.text.as_str()) {
                    Some("MASTER") => r.master = Some(loc),
                    Some("BACKUP") | None => {}
                    Some(other) => self.error(loc, format!("`state {other}`: expected MASTER or BACKUP")),
                },
                "interface" => r.interface = self.value(s),
                "virtual_router_id" => r.vrid = self.int(s, 1..=255).and_then(|n| u8::try_from(n).ok()),
                "priority" => r.priority = self.int(s, 1..=255).and_then(|n| u8::try_from(n).ok()),
                "advert_int" => r.advert = self.seconds(s, 255).map(|us| (us, loc)),
                "version" => {
                    r.version = self.int(s, 2..=3).and_then(|n| u8::try_from(n).ok()).map(|v| (v, loc));
                }
                "nopreempt" | "no_preempt" => {
                    r.preempt = false;
                    r.nopreempt = Some(loc);
                }
                "preempt" => r.preempt = true,
                "preempt_delay" => r.preempt_delay = self.seconds(s, 1000).unwrap_or(0),
                "accept" => r.accept = Some((true, loc)),
                "no_accept" => r.accept = Some((false, loc)),
                "strict_mode" => r.strict = self.flag(s),
                "unicast_src_ip" => r.src = self.value(s).map(|w| (w, "unicast_src_ip")),
                "mcast_src_ip" => r.src = self.value(s).map(|w| (w, "mcast_src_ip")),
                "unicast_peer" => {
                    for p in s.children() {
                        r.peers.push(&p.words[0]);
                        if p.words.len() > 1 {
                            self.lost(
                                p.words[1].loc,
                                sec,
                                join(&p.words[1..]),
                                "vipflip checks TTL = 255 on every advert (RFC 5798 §5.1.1.3); other TTL ranges are not carried",
                            );
                        }
                    }
                }
                "check_unicast_src" => r.check_unicast_src = true,
                "virtual_ipaddress" => r.vips.extend(s.children()),
                "virtual_ipaddress_excluded" => {
                    for e in s.children() {
                        self.lost(
                            e.loc(),
                            sec,
                            format!("virtual_ipaddress_excluded {}", e.text()),
                            "vipflip advertises every virtual IP, and keepalived peers refuse adverts whose address count differs from their own; add it as a VIP on every router or to another instance",
                        );
                    }
                }
                "track_interface" => {
                    for t in s.children() {
                        if let Some(w) = self.track_weight(&t.words[1..], sec, "track_interface", 0) {
                            r.tracks.push(Track {
                                kind: TrackKind::Interface,
                                target: t.words[0].text.clone(),
                                weight: w,
                                loc: t.loc(),
                            });
                        }
                    }
                }
                "track_script" => {
                    for t in s.children() {
                        let script = &t.words[0];
                        let Some(&default) = script_weights.get(script.text.as_str()) else {
                            self.lost(
                                script.loc,
                                sec,
                                format!("track_script {}", script.text),
                                "no vrrp_script of this name; keepalived ignores it too, and so does the import",
                            );
                            continue;
                        };
                        if let Some(w) = self.track_weight(&t.words[1..], sec, "track_script", default) {
                            r.tracks.push(Track {
                                kind: TrackKind::Script,
                                target: script.text.clone(),
                                weight: w,
                                loc: t.loc(),
                            });
                        }
                    }
                }
                "track_file" => {
                    for t in s.children() {
                        let file = &t.words[0];
                        let Some(def) = files.get(file.text.as_str()) else {
                            self.lost(
                                file.loc,
                                sec,
                                format!("track_file {}", file.text),
                                "no track_file of this name; keepalived ignores it too, and so does the import",
                            );
                            continue;
                        };
                        if let Some(w) = self.track_weight(&t.words[1..], sec, "track_file", def.weight) {
                            r.tracks.push(Track {
                                kind: TrackKind::File,
                                target: def.path.clone(),
                                weight: w,
                                loc: t.loc(),
                            });
                        }
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop"
                | "notify_master_rx_lower_pri" => {
                    self.notify(s, sec, &mut r.notify);
                }
                "notify" => self.lost(loc, sec, s.text(), NOTIFY_ANY),
                "garp_master_delay" => r.garp_delay = self.seconds(s, 1000),
                "garp_master_repeat" => {
                    r.garp_repeat = self.int(s, 1..=255).and_then(|n| u64::try_from(n).ok());
                }
                "garp_master_refresh" => {
                    r.garp_refresh = self.seconds(s, 86_400);
                    self.note(loc, sec, s.text(), GARP_REFRESH);
                }
                "garp_master_refresh_repeat" => {
                    r.garp_refresh_repeat =
                        self.int(s, 1..=255).and_then(|n| u64::try_from(n).ok());
                    self.note(loc, sec, s.text(), GARP_REFRESH_REPEAT);
                }
                "lower_prio_no_advert" => r.lower_prio_no_advert = self.flag(s),
                "higher_prio_send_advert" => r.higher_prio_send_advert = self.flag(s),
                "authentication" => r.auth = Some(s),
                "virtual_routes" => r.routes.extend(self.routes(s, sec)),
                "virtual_rules" => r.rules.extend(self.rules(s, sec)),
                "use_vmac" | "vmac_xmit_base" | "use_vmac_addr" => self.lost(
                    loc,
                    sec,
                    s.text(),
                    "vipflip uses no virtual MAC: a VIP moves by GARP/NA, and an ex-master's XDP program forwards the traffic stale ARP caches still send it to the new master, which makes the macvlan unnecessary",
                ),
                "smtp_alert" => self.lost(loc, sec, s.text(), NO_MAIL),
                _ => self.lost(loc, sec, s.text(), NO_EQUIVALENT),
            }
        }

        let vips = self.vips(&r.vips, r.interface.map_or("", |w| w.text.as_str()), sec);
        let Some(interface) = r.interface else {
            self.error(
                stmt.loc(),
                format!("vrrp_instance {name}: no `interface`; vipflip needs the interface the virtual router runs on"),
            );
            return None;
        };
        let Some(vrid) = r.vrid else {
            self.error(
                stmt.loc(),
                format!("vrrp_instance {name}: no `virtual_router_id`"),
            );
            return None;
        };
        let Some(first) = vips.first() else {
            if self.errors.len() == errors_before {
                self.error(
                    stmt.loc(),
                    format!("vrrp_instance {name}: no `virtual_ipaddress`; vipflip needs at least one virtual IP per instance"),
                );
            }
            return None;
        };
        let v6 = first.addr().is_ipv6();
        if let Some(other) = vips.iter().find(|n| n.addr().is_ipv6() != v6) {
            self.error(
                stmt.loc(),
                format!("vrrp_instance {name}: virtual_ipaddress mixes IPv4 and IPv6 ({first} and {other}); keepalived refuses this too"),
            );
            return None;
        }

        // The version: keepalived's default is 2, and IPv6 is always 3.
        let version = match (r.version.map(|(v, _)| v).or(g.version), v6) {
            (Some(2), true) => {
                let loc = r.version.map_or(stmt.loc(), |(_, l)| l);
                self.note(loc, sec, "version 2", "VRRPv2 carries IPv4 only; keepalived runs IPv6 instances as VRRPv3, and so does vipflip");
                3
            }
            (Some(v), _) => v,
            (None, true) => 3,
            (None, false) => 2,
        };
        let advert_interval = self.advert_interval(r.advert, version, stmt, sec)?;

        let mut priority = r.priority.unwrap_or(100);
        if let Some(loc) = r.master {
            self.note(
                loc,
                sec,
                "state MASTER",
                "an initial state only, in keepalived too; vipflip starts as backup and the highest priority becomes master (255 at once)",
            );
        }
        let strict = r.strict.unwrap_or(g.strict);
        let accept = match (strict, r.accept) {
            (true, Some((true, loc))) => {
                self.note(
                    loc,
                    sec,
                    "accept",
                    "strict mode overrides it, in keepalived too: accept = false",
                );
                false
            }
            (true, _) => false,
            (false, a) => a.is_none_or(|(a, _)| a),
        };

        let peers = self.addresses(&r.peers, v6, "unicast_peer");
        let unicast_src = match r.src {
            Some((w, kw)) if peers.is_empty() => {
                self.lost(
                    w.loc,
                    sec,
                    format!("{kw} {}", w.text),
                    "vipflip sends multicast adverts from the interface's primary address; a different source is only carried for unicast_peer",
                );
                None
            }
            Some((w, kw)) => self.addresses(&[w], v6, kw).into_iter().next(),
            None => None,
        };
        let allowed_peers = if r.check_unicast_src {
            peers.clone()
        } else {
            Vec::new()
        };

        let tracks = self.weights(r.tracks, &mut priority, group, sec);
        let mut inst = InstanceOut {
            name,
            interface: interface.text.clone(),
            vrid,
            version,
            priority,
            advert_interval,
            preempt: r.preempt,
            preempt_delay: r.preempt_delay,
            accept,
            virtual_ips: vips.iter().map(ToString::to_string).collect(),
            unicast_peers: peers.iter().map(ToString::to_string).collect(),
            unicast_src: unicast_src.map(|a| a.to_string()),
            allowed_peers: allowed_peers.iter().map(ToString::to_string).collect(),
            garp: Garp {
                repeat: r.garp_repeat.or(g.garp_repeat).unwrap_or(5),
                interval: if v6 { g.gna_interval } else { g.garp_interval }.unwrap_or(0),
                delay: r.garp_delay.or(g.garp_delay).unwrap_or(5 * SECOND),
                refresh: r.garp_refresh.or(g.garp_refresh).unwrap_or(0),
                refresh_repeat: r.garp_refresh_repeat.or(g.garp_refresh_repeat).unwrap_or(1),
            },
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            notify: r.notify,
            lower_prio_no_advert: r.lower_prio_no_advert.unwrap_or(g.lower_prio_no_advert),
            // keepalived: vrrp_strict forbids it (an instance's own setting is refused, the
            // global default ignored).
            higher_prio_send_advert: !g.strict
                && r.higher_prio_send_advert
                    .unwrap_or(g.higher_prio_send_advert),
            auth_pass: None,
            virtual_routes: r.routes,
            virtual_rules: r.rules,
        };
        for t in tracks {
            let list = match t.kind {
                TrackKind::Interface => &mut inst.track_interfaces,
                TrackKind::Script => &mut inst.track_scripts,
                TrackKind::File => &mut inst.track_files,
            };
            list.push((t.target, t.weight));
        }
        if let (Some(loc), false) = (r.nopreempt, r.master.is_none()) {
            self.note(
                loc,
                sec,
                "nopreempt",
                "keepalived ignores nopreempt with state MASTER; vipflip has no initial state and honours it (preempt = false)",
            );
        }
        if let Some(auth) = r.auth {
            inst.auth_pass = self.auth(auth, version, strict, sec);
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(inst)
    }

    /// `advert_int` as vipflip's interval: v3 centiseconds, v2 whole seconds.
    fn advert_interval(
        &mut self,
        advert: Option<(Micros, Loc)>,
        version: u8,
        stmt: &Stmt,
        sec: Section,
    ) -> Option<Micros> {
        let Some((us, loc)) = advert else {
            return Some(SECOND);
        };
        let (unit, min, max) = if version == 3 {
            (10_000, 10_000, 40_950_000)
        } else {
            (SECOND, SECOND, 255 * SECOND)
        };
        let rounded = (us + unit / 2) / unit * unit;
        if !(min..=max).contains(&rounded) {
            self.error(
                loc,
                format!(
                    "vrrp_instance {}: `advert_int {}`: VRRPv{version} allows {}",
                    stmt.args().first().map_or("", |w| w.text.as_str()),
                    seconds_text(us),
                    if version == 3 {
                        "0.01..=40.95 seconds"
                    } else {
                        "1..=255 whole seconds"
                    }
                ),
            );
            return None;
        }
        if rounded != us {
            self.note(
                loc,
                sec,
                format!("advert_int {}", seconds_text(us)),
                format!(
                    "VRRPv{version} carries {}; rounded to {}",
                    if version == 3 {
                        "centiseconds"
                    } else {
                        "whole seconds"
                    },
                    seconds_text(rounded)
                ),
            );
        }
        Some(rounded)
    }

    /// `virtual_ipaddress` entries: the address and prefix are carried, options reported.
    fn vips(&mut self, entries: &[&Stmt], interface: &str, sec: Section) -> Vec<IpNet> {
        let mut out: Vec<IpNet> = Vec::new();
        for e in entries {
            let addr = &e.words[0];
            let net = if addr.text.contains('/') {
                addr.text.parse::<IpNet>().ok()
            } else {
                addr.text.parse::<IpAddr>().ok().map(IpNet::from)
            };
            let Some(net) = net else {
                self.error(
                    addr.loc,
                    format!(
                        "virtual_ipaddress `{}`: expected an address or address/prefix",
                        addr.text
                    ),
                );
                continue;
            };
            if out.iter().any(|n| n.addr() == net.addr()) {
                self.note(
                    addr.loc,
                    sec,
                    addr.text.clone(),
                    "listed twice; carried once",
                );
                continue;
            }
            out.push(net);
            let mut i = 1;
            let words = &e.words;
            while i < words.len() {
                let opt = &words[i];
                let arg = words.get(i + 1);
                let takes_arg = matches!(
                    opt.text.as_str(),
                    "dev" | "brd" | "scope" | "label" | "peer" | "preferred_lft" | "track_group"
                );
                let text = match (takes_arg, arg) {
                    (true, Some(a)) => format!("{} {}", opt.text, a.text),
                    _ => opt.text.clone(),
                };
                i += if takes_arg { 2 } else { 1 };
                let reason = match (opt.text.as_str(), arg.map(|a| a.text.as_str())) {
                    ("dev", Some(dev)) if dev == interface => continue,
                    ("scope", Some("global")) => continue,
                    ("dev", _) => {
                        "vipflip puts every VIP on the instance's interface; a VIP on another device needs an instance there"
                    }
                    ("label", _) => {
                        "vipflip adds addresses without a label (the ifconfig alias name)"
                    }
                    ("scope", _) => "vipflip adds addresses with scope global",
                    ("brd", _) => "vipflip adds IPv4 addresses without a broadcast address",
                    ("use_vmac", _) => {
                        "vipflip uses no virtual MAC (its XDP forward covers stale ARP caches)"
                    }
                    _ => "an `ip address` option vipflip does not set; not carried",
                };
                self.lost(opt.loc, sec, text, reason);
            }
        }
        out
    }

    /// Addresses of the instance's family.
    fn addresses(&mut self, words: &[&Word], v6: bool, what: &str) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for w in words {
            match w.text.parse::<IpAddr>() {
                Ok(a) if a.is_ipv6() == v6 => {
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
                Ok(_) => self.error(
                    w.loc,
                    format!(
                        "{what} {}: not an {} address like the instance's virtual_ipaddress",
                        w.text,
                        if v6 { "IPv6" } else { "IPv4" }
                    ),
                ),
                Err(_) => self.error(
                    w.loc,
                    format!("{what} `{}`: expected an IP address", w.text),
                ),
            }
        }
        out
    }

    /// `authentication { auth_type PASS|AH auth_pass X }`.
    fn auth(&mut self, stmt: &Stmt, version: u8, strict: bool, sec: Section) -> Option<String> {
        let mut kind = None;
        let mut pass = None;
        for s in stmt.children() {
            match s.keyword() {
                "auth_type" => kind = self.value(s).map(|w| (w.text.clone(), w.loc)),
                "auth_pass" => pass = self.value(s).map(|w| (w.text.clone(), w.loc)),
                _ => self.lost(s.loc(), sec, s.text(), NO_EQUIVALENT),
            }
        }
        match kind {
            Some((k, loc)) if k == "AH" => {
                self.lost(
                    loc,
                    sec,
                    "auth_type AH",
                    "IPsec AH authentication (RFC 2338) is not supported; adverts go without it, and peers using AH will refuse them",
                );
                return None;
            }
            Some((k, loc)) if k != "PASS" => {
                self.error(loc, format!("`auth_type {k}`: expected PASS or AH"));
                return None;
            }
            _ => {}
        }
        if version == 3 {
            self.note(
                stmt.loc(),
                sec,
                "authentication",
                "VRRPv3 has no authentication (RFC 5798 §9); keepalived ignores it for version 3, and so does vipflip",
            );
            return None;
        }
        if strict {
            self.note(
                stmt.loc(),
                sec,
                "authentication",
                "strict mode ignores authentication, in keepalived too",
            );
            return None;
        }
        let Some((pass, loc)) = pass else {
            self.error(stmt.loc(), "authentication: no `auth_pass`");
            return None;
        };
        if pass.is_empty() {
            self.error(loc, "`auth_pass`: must not be empty");
            return None;
        }
        let mut end = pass.len().min(8);
        while !pass.is_char_boundary(end) {
            end -= 1;
        }
        if end < pass.len() {
            self.note(
                loc,
                sec,
                "auth_pass",
                format!("only the first 8 bytes are used (RFC 3768 §5.3.6.1), by keepalived too: \"{}\"", &pass[..end]),
            );
        }
        Some(pass[..end].to_owned())
    }
}
