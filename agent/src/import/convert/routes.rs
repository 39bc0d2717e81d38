//! `virtual_routes`, `virtual_rules` (in a `vrrp_instance`) and the top-level
//! `static_ipaddress`, `static_routes`, `static_rules` blocks: each line, written in `ip
//! route` / `ip rule` / `ip address` words as keepalived takes them, becomes one inline table
//! (`{ to = "192.0.2.0/24", via = "198.51.100.1", table = 100 }`). An option vipflip cannot
//! express is reported and the rest of the line carried; a line whose meaning would change
//! without it (a multipath route, a route type vipflip does not write) is left out whole.

use std::net::IpAddr;

use ipnet::IpNet;

use super::super::emit::quote;
use super::super::parse::{Stmt, Word};
use super::{Conv, Section};

/// One converted line: its keys in vipflip's order, each with its TOML value as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(in super::super) struct TableOut(pub(in super::super) Vec<(&'static str, String)>);

impl TableOut {
    fn set(&mut self, key: &'static str, toml: String) {
        self.0.retain(|(k, _)| *k != key);
        self.0.push((key, toml));
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| *k == key)
    }

    /// `{ to = "192.0.2.0/24", via = "198.51.100.1" }`.
    pub(in super::super) fn inline(&self) -> String {
        let fields: Vec<String> = self.0.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        format!("{{ {} }}", fields.join(", "))
    }
}

/// The top-level static blocks as converted.
#[derive(Debug, Default)]
pub(in super::super) struct StaticsOut {
    pub(in super::super) addresses: Vec<TableOut>,
    pub(in super::super) routes: Vec<TableOut>,
    pub(in super::super) rules: Vec<TableOut>,
}

/// keepalived gives a rule without `preference` this priority, and one less to each next
/// such rule, in file order (`vrrp_iprule.c`; it warns "probably not what you want").
pub(super) const FIRST_RULE_PRIORITY: u32 = 16384;

/// Route types vipflip writes, as `type = …`.
const ROUTE_TYPES: &[&str] = &["blackhole", "unreachable", "prohibit"];
/// Route types `ip route` knows that vipflip does not write.
const OTHER_ROUTE_TYPES: &[&str] = &[
    "unicast",
    "local",
    "broadcast",
    "anycast",
    "multicast",
    "throw",
    "nat",
];
/// `ip route` options that take a value and that vipflip does not carry.
const ROUTE_OPTIONS_WITH_VALUE: &[&str] = &[
    "mtu",
    "advmss",
    "realm",
    "realms",
    "tos",
    "dsfield",
    "expires",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "pref",
    "hoplimit",
    "fastopen_no_cookie",
    "ttl-propagate",
    "encap",
    "from",
];
/// `ip rule` selectors (and `goto`) vipflip does not write: without them the rule would
/// match more packets, or do something else, so the whole rule is left out.
const RULE_SELECTORS_WITH_VALUE: &[&str] = &[
    "tos",
    "dsfield",
    "goto",
    "suppress_prefixlength",
    "suppress_ifgroup",
    "uidrange",
    "sport",
    "dport",
    "ipproto",
];
/// `ip rule` attributes that change nothing about which packets match: carried without.
const RULE_ATTRIBUTES_WITH_VALUE: &[&str] = &["realms", "protocol"];
const TABLE_NAMES: &[&str] = &["main", "local", "default"];
const SCOPES: &[&str] = &["global", "site", "link", "host", "nowhere"];
const PROTOCOLS: &[&str] = &["kernel", "boot", "static", "keepalived"];
const NO_TRACK: &str = "vipflip does not watch its routes for removal by others (keepalived's tracking that no_track turns off); nothing to turn off";

impl Conv<'_> {
    /// A `virtual_routes` or `static_routes` block: one table per line carried.
    pub(super) fn routes(&mut self, block: &Stmt, sec: Section) -> Vec<TableOut> {
        block
            .children()
            .iter()
            .filter_map(|line| self.route(line, sec, block.keyword()))
            .collect()
    }

    /// A `virtual_rules` or `static_rules` block.
    pub(super) fn rules(&mut self, block: &Stmt, sec: Section) -> Vec<TableOut> {
        block
            .children()
            .iter()
            .filter_map(|line| self.rule(line, sec, block.keyword()))
            .collect()
    }

    /// A `static_ipaddress` block.
    pub(super) fn static_addresses(&mut self, block: &Stmt) -> Vec<TableOut> {
        block
            .children()
            .iter()
            .filter_map(|line| self.static_address(line))
            .collect()
    }

    /// `[type] [to] PREFIX [via|gw ADDR] [dev IF] [src ADDR] [table N] [metric N] [scope S]
    /// [proto P] [onlink] …`
    fn route(&mut self, line: &Stmt, sec: Section, block: &str) -> Option<TableOut> {
        let whole = format!("{block} {}", line.text());
        let mut out = TableOut::default();
        let mut words = line.words.iter();
        while let Some(w) = words.next() {
            let word = w.text.as_str();
            match word {
                "to" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("to", self.prefix(value, sec)?);
                }
                "via" | "gw" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("via", self.address(value)?);
                }
                "src" | "prefsrc" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("src", self.address(value)?);
                }
                "dev" | "oif" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("dev", quote(&value.text));
                }
                "table" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("table", self.table(value, sec)?);
                }
                "metric" | "priority" | "preference" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("metric", self.number(value, "metric")?);
                }
                "scope" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("scope", self.named(value, SCOPES, "scope", sec)?);
                }
                "proto" | "protocol" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("protocol", self.protocol(value, sec)?);
                }
                "onlink" => out.set("onlink", "true".to_owned()),
                "no_track" => self.note(w.loc, sec, "no_track", NO_TRACK),
                t if ROUTE_TYPES.contains(&t) => out.set("type", quote(t)),
                "or" | "nexthop" => {
                    self.lost(
                        w.loc,
                        sec,
                        whole,
                        "vipflip writes single-path routes; a multipath route (`or`, `nexthop`) is not carried: write one route per gateway with its own metric",
                    );
                    return None;
                }
                t if OTHER_ROUTE_TYPES.contains(&t) && !out.has("to") => {
                    self.lost(
                        w.loc,
                        sec,
                        whole,
                        format!("vipflip writes unicast, blackhole, unreachable and prohibit routes, not {t}"),
                    );
                    return None;
                }
                t if ROUTE_OPTIONS_WITH_VALUE.contains(&t) => {
                    let value = words
                        .next()
                        .map_or(String::new(), |v| format!(" {}", v.text));
                    self.lost(w.loc, sec, format!("{t}{value}"), "vipflip does not set this route attribute; the route is carried without it");
                }
                // The destination needs no `to`.
                _ if !out.has("to") => out.set("to", self.prefix(w, sec)?),
                _ => self.lost(
                    w.loc,
                    sec,
                    word,
                    "not understood in a route; the route is carried without it",
                ),
            }
        }
        if !out.has("to") {
            self.error(line.loc(), format!("`{whole}`: no destination"));
            return None;
        }
        // vipflip's order: the destination first, as `ip route` prints it.
        out.0
            .sort_by_key(|(k, _)| ROUTE_ORDER.iter().position(|o| o == k));
        Some(out)
    }

    /// `[from PREFIX] [to PREFIX] [iif IF] [oif IF] [fwmark M[/MASK]] (table N | blackhole |
    /// unreachable | prohibit) [priority N] …`
    fn rule(&mut self, line: &Stmt, sec: Section, block: &str) -> Option<TableOut> {
        let whole = format!("{block} {}", line.text());
        let mut out = TableOut::default();
        let mut words = line.words.iter();
        while let Some(w) = words.next() {
            let word = w.text.as_str();
            match word {
                "from" | "to" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    let key = if word == "from" { "from" } else { "to" };
                    if value.text == "all" {
                        continue;
                    }
                    out.set(key, self.prefix(value, sec)?);
                }
                "table" | "lookup" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("table", self.table(value, sec)?);
                }
                "priority" | "preference" | "pref" | "prio" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("priority", self.number(value, "priority")?);
                }
                "iif" | "iifname" | "dev" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("iif", quote(&value.text));
                }
                "oif" | "oifname" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("oif", quote(&value.text));
                }
                "fwmark" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("fwmark", quote(&value.text));
                }
                "inet" | "inet6" => {
                    let family = if word == "inet" { "ipv4" } else { "ipv6" };
                    out.set("family", quote(family));
                }
                "no_track" => self.note(w.loc, sec, "no_track", NO_TRACK),
                t if ROUTE_TYPES.contains(&t) => out.set("type", quote(t)),
                "not" | "nop" | "l3mdev" => {
                    self.lost(
                        w.loc,
                        sec,
                        whole,
                        format!("vipflip writes no rule with `{word}`; not carried"),
                    );
                    return None;
                }
                t if RULE_SELECTORS_WITH_VALUE.contains(&t) => {
                    self.lost(
                        w.loc,
                        sec,
                        whole,
                        format!("vipflip writes no rule with `{t}`; without it the rule would match more, so it is not carried"),
                    );
                    return None;
                }
                t if RULE_ATTRIBUTES_WITH_VALUE.contains(&t) => {
                    let value = words
                        .next()
                        .map_or(String::new(), |v| format!(" {}", v.text));
                    self.lost(
                        w.loc,
                        sec,
                        format!("{t}{value}"),
                        "vipflip does not set this rule attribute; the rule is carried without it",
                    );
                }
                _ => {
                    self.lost(
                        w.loc,
                        sec,
                        whole,
                        format!("`{word}` is not understood in a rule, and a rule without one of its conditions matches more; not carried"),
                    );
                    return None;
                }
            }
        }
        if !out.has("table") && !out.has("type") {
            self.lost(
                line.loc(),
                sec,
                whole,
                "a rule without `table` or a type does nothing vipflip can write; not carried",
            );
            return None;
        }
        if !out.has("priority") {
            self.keepalived_rule_priority(line, sec, whole, &mut out);
        }
        out.0
            .sort_by_key(|(k, _)| RULE_ORDER.iter().position(|o| o == k));
        Some(out)
    }

    /// A rule written without `preference`: the kernel would pick another priority, so the
    /// import carries the one keepalived installs it with.
    fn keepalived_rule_priority(
        &mut self,
        line: &Stmt,
        sec: Section,
        whole: String,
        out: &mut TableOut,
    ) {
        let priority = self.next_rule_priority;
        self.next_rule_priority = priority.saturating_sub(1);
        self.note(
            line.loc(),
            sec,
            whole,
            format!("no preference: keepalived gives it {priority}, and so does the import"),
        );
        out.set("priority", priority.to_string());
    }

    /// `ADDRESS[/PREFIX] dev IF [brd …] [scope …] [label …] …`
    fn static_address(&mut self, line: &Stmt) -> Option<TableOut> {
        let sec = Section::Header;
        let whole = format!("static_ipaddress {}", line.text());
        let first = &line.words[0];
        let Some(net) = parse_net(&first.text) else {
            self.error(
                first.loc,
                format!("`{whole}`: expected an address or address/prefix"),
            );
            return None;
        };
        let mut out = TableOut::default();
        out.set("address", quote(&net.to_string()));
        let mut words = line.words[1..].iter();
        while let Some(w) = words.next() {
            let word = w.text.as_str();
            match word {
                "dev" => {
                    let value = self.operand(w, words.next(), &whole)?;
                    out.set("dev", quote(&value.text));
                }
                "no_track" => self.note(w.loc, sec, "no_track", NO_TRACK),
                "brd" | "broadcast" | "scope" | "label" | "peer" => {
                    let value = words.next().map_or(String::new(), |v| format!(" {}", v.text));
                    self.lost(
                        w.loc,
                        sec,
                        format!("{word}{value}"),
                        "vipflip adds static addresses with the prefix only (kernel defaults for the rest)",
                    );
                }
                _ => self.lost(w.loc, sec, word, "vipflip adds static addresses with the prefix only (kernel defaults for the rest)"),
            }
        }
        if !out.has("dev") {
            self.lost(
                line.loc(),
                sec,
                whole,
                "vipflip needs the interface of a static address (`dev`); not carried",
            );
            return None;
        }
        Some(out)
    }

    /// The word after `keyword`, or an error naming the line.
    fn operand<'w>(
        &mut self,
        keyword: &Word,
        value: Option<&'w Word>,
        whole: &str,
    ) -> Option<&'w Word> {
        if value.is_none() {
            self.error(
                keyword.loc,
                format!("`{whole}`: `{}` needs a value", keyword.text),
            );
        }
        value
    }

    /// A prefix (`default`/`all` kept), host bits cleared with a note.
    fn prefix(&mut self, w: &Word, sec: Section) -> Option<String> {
        if w.text == "default" {
            return Some(quote("default"));
        }
        let Some(net) = parse_net(&w.text) else {
            self.error(
                w.loc,
                format!("`{}`: expected a prefix like 192.0.2.0/24", w.text),
            );
            return None;
        };
        if net.trunc() != net {
            self.note(
                w.loc,
                sec,
                w.text.clone(),
                format!(
                    "host bits set; written {} (the prefix the kernel routes)",
                    net.trunc()
                ),
            );
        }
        Some(quote(&net.trunc().to_string()))
    }

    fn address(&mut self, w: &Word) -> Option<String> {
        if let Ok(addr) = w.text.parse::<IpAddr>() {
            return Some(quote(&addr.to_string()));
        }
        self.error(w.loc, format!("`{}`: expected an IP address", w.text));
        None
    }

    fn number(&mut self, w: &Word, what: &str) -> Option<String> {
        if let Ok(n) = w.text.parse::<u32>() {
            return Some(n.to_string());
        }
        self.error(
            w.loc,
            format!("`{what} {}`: expected a number in 0..=4294967295", w.text),
        );
        None
    }

    /// A table number, or one of the names vipflip knows; other names (from `rt_tables`)
    /// are not carried.
    fn table(&mut self, w: &Word, sec: Section) -> Option<String> {
        if let Ok(n) = w.text.parse::<u32>() {
            return Some(n.to_string());
        }
        if TABLE_NAMES.contains(&w.text.as_str()) {
            return Some(quote(&w.text));
        }
        self.lost(
            w.loc,
            sec,
            format!("table {}", w.text),
            "vipflip reads no rt_tables names: write the table's number; the line is not carried",
        );
        None
    }

    fn protocol(&mut self, w: &Word, sec: Section) -> Option<String> {
        if let Ok(n) = w.text.parse::<u8>() {
            return Some(n.to_string());
        }
        self.named(w, PROTOCOLS, "proto", sec)
    }

    /// One of `names`, quoted; anything else is reported and the line left out.
    fn named(&mut self, w: &Word, names: &[&str], what: &str, sec: Section) -> Option<String> {
        if names.contains(&w.text.as_str()) {
            return Some(quote(&w.text));
        }
        self.lost(
            w.loc,
            sec,
            format!("{what} {}", w.text),
            format!(
                "vipflip knows {}; the line is not carried",
                names.join(", ")
            ),
        );
        None
    }
}

/// The keys of a route in the order `ip route` prints them.
const ROUTE_ORDER: &[&str] = &[
    "type", "to", "via", "dev", "src", "table", "metric", "scope", "protocol", "onlink",
];
const RULE_ORDER: &[&str] = &[
    "family", "from", "to", "iif", "oif", "fwmark", "table", "type", "priority",
];

fn parse_net(text: &str) -> Option<IpNet> {
    if text.contains('/') {
        text.parse().ok()
    } else {
        text.parse::<IpAddr>().ok().map(IpNet::from)
    }
}
