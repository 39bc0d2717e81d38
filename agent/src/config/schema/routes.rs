//! Routes, rules and addresses: an instance's `virtual_routes` and `virtual_rules`, and the
//! top-level `[[static_route]]`, `[[static_rule]]` and `[[static_address]]`. Every value is
//! checked as `ip route` / `ip rule` would check it (a prefix without host bits, a gateway of
//! the destination's family…), so the kernel refuses nothing the file was allowed to say;
//! only an interface that does not exist is left to the moment the route is written.

use core::ops::Range;
use std::net::IpAddr;

use ipnet::IpNet;
use toml::de::DeValue;

use super::super::reader::{Ctx, Table};
use super::super::routes::{
    DEFAULT_ROUTE_PROTOCOL, MAIN_TABLE, RouteKind, RouteScope, RouteSpec, RuleAction, RuleSpec,
    StaticAddressSpec, Statics,
};
use super::super::{Host, InstanceSpec};
use super::instance::{Instance, family_of, name_of};
use super::top_tables;
use crate::wire::Family;

const ROUTE_KEYS: &[&str] = &[
    "to", "type", "via", "dev", "src", "table", "metric", "scope", "protocol", "onlink",
];
const RULE_KEYS: &[&str] = &[
    "from", "to", "table", "type", "priority", "iif", "oif", "fwmark", "family",
];
const ADDRESS_KEYS: &[&str] = &["address", "dev"];
/// keepalived's and iproute2's words for the same keys.
const ROUTE_ALIASES: &[(&str, &str)] = &[
    ("gw", "did you mean `via`?"),
    ("gateway", "did you mean `via`?"),
    ("prefsrc", "did you mean `src`?"),
    ("preference", "did you mean `metric`?"),
    ("priority", "routes call it `metric`"),
    ("proto", "did you mean `protocol`?"),
    ("dst", "did you mean `to`?"),
];
const RULE_ALIASES: &[(&str, &str)] = &[
    ("pref", "did you mean `priority`?"),
    ("preference", "did you mean `priority`?"),
    ("lookup", "did you mean `table`?"),
    ("iifname", "did you mean `iif`?"),
    ("oifname", "did you mean `oif`?"),
];
const TABLE_RULE: &str =
    "expected a table number in 1..=4294967295 or \"main\", \"local\" or \"default\"";
const PROTOCOL_RULE: &str =
    "expected a protocol number in 0..=255 or \"boot\", \"static\", \"kernel\" or \"keepalived\"";
const ROUTE_KINDS: &[(&str, RouteKind)] = &[
    ("unicast", RouteKind::Unicast),
    ("blackhole", RouteKind::Blackhole),
    ("unreachable", RouteKind::Unreachable),
    ("prohibit", RouteKind::Prohibit),
];
const ROUTE_SCOPES: &[(&str, RouteScope)] = &[
    ("global", RouteScope::Global),
    ("site", RouteScope::Site),
    ("link", RouteScope::Link),
    ("host", RouteScope::Host),
    ("nowhere", RouteScope::Nowhere),
];
const RULE_KINDS: &[(&str, RuleAction)] = &[
    ("blackhole", RuleAction::Blackhole),
    ("unreachable", RuleAction::Unreachable),
    ("prohibit", RuleAction::Prohibit),
];
const FAMILIES: &[(&str, Family)] = &[("ipv4", Family::Ipv4), ("ipv6", Family::Ipv6)];
const TABLE_NAMES: &[(&str, i64)] = &[("default", 253), ("main", 254), ("local", 255)];
const PROTOCOL_NAMES: &[(&str, i64)] = &[
    ("kernel", 2),
    ("boot", 3),
    ("static", 4),
    ("keepalived", 18),
];

/// A route, rule or address with where it was written, for the checks across objects.
pub(super) struct Placed<T> {
    pub(super) spec: T,
    /// The span of the whole entry.
    pub(super) span: Range<usize>,
    /// The entry as messages name it: `instance "VI_1": virtual_routes[1]`, `static_route #2`.
    pub(super) who: String,
}

/// An instance's `virtual_routes` and `virtual_rules` (rules without addresses take the
/// instance's family).
pub(super) fn instance_routes(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    family: Option<Family>,
    spec: &mut InstanceSpec,
    host: &impl Host,
) -> (Vec<Placed<RouteSpec>>, Vec<Placed<RuleSpec>>) {
    let mut routes = Vec::new();
    for e in t.tables(
        ctx,
        "virtual_routes",
        "tables like { to = \"198.51.100.0/24\", via = \"192.0.2.1\" }",
    ) {
        if let Some(route) = route(ctx, &e, host) {
            routes.push(placed(&e, route));
        }
    }
    let mut rules = Vec::new();
    for e in t.tables(
        ctx,
        "virtual_rules",
        "tables like { from = \"192.0.2.100\", table = 100 }",
    ) {
        if let Some(rule) = rule(ctx, &e, family) {
            rules.push(placed(&e, rule));
        }
    }
    spec.virtual_routes = routes.iter().map(|r| r.spec.clone()).collect();
    spec.virtual_rules = rules.iter().map(|r| r.spec.clone()).collect();
    (routes, rules)
}

/// `[[static_address]]`, `[[static_route]]`, `[[static_rule]]`.
pub(super) fn statics(ctx: &mut Ctx<'_>, root: &Table<'_, '_>, host: &impl Host) -> StaticTables {
    let mut addresses = Vec::new();
    for (i, mut t) in top_tables(ctx, root, "static_address")
        .into_iter()
        .enumerate()
    {
        t.context = format!("static_address #{}: ", i + 1);
        if let Some(address) = address(ctx, &t, host) {
            addresses.push(placed(&t, address));
        }
    }
    let mut routes = Vec::new();
    for (i, mut t) in top_tables(ctx, root, "static_route")
        .into_iter()
        .enumerate()
    {
        t.context = format!("static_route #{}: ", i + 1);
        if let Some(route) = route(ctx, &t, host) {
            routes.push(placed(&t, route));
        }
    }
    let mut rules = Vec::new();
    for (i, mut t) in top_tables(ctx, root, "static_rule").into_iter().enumerate() {
        t.context = format!("static_rule #{}: ", i + 1);
        if let Some(rule) = rule(ctx, &t, None) {
            rules.push(placed(&t, rule));
        }
    }
    StaticTables {
        addresses,
        routes,
        rules,
    }
}

/// The top-level statics with where each was written.
pub(super) struct StaticTables {
    pub(super) addresses: Vec<Placed<StaticAddressSpec>>,
    pub(super) routes: Vec<Placed<RouteSpec>>,
    pub(super) rules: Vec<Placed<RuleSpec>>,
}

fn placed<T>(t: &Table<'_, '_>, spec: T) -> Placed<T> {
    Placed {
        spec,
        span: t.span.clone(),
        who: who(t),
    }
}

/// The entry `t` as messages name it: its context and path (`instance "VI_1":
/// virtual_routes[1]`), or its context alone at the top level (`static_route #2`).
fn who(t: &Table<'_, '_>) -> String {
    let path = t.path.trim_end_matches('.');
    if path.is_empty() {
        t.context.trim_end_matches(": ").to_owned()
    } else {
        format!("{}{path}", t.context)
    }
}

/// The same route (table, destination, metric: what the kernel keys a route by) or the same
/// rule written twice, across instances and statics: whoever removes it first would take it
/// from the other. A static address that is also a VIP, likewise.
pub(super) fn check_across(ctx: &mut Ctx<'_>, instances: &[Instance], statics: &StaticTables) {
    let (static_addresses, static_routes, static_rules) =
        (&statics.addresses, &statics.routes, &statics.rules);
    let routes: Vec<&Placed<RouteSpec>> = instances
        .iter()
        .flat_map(|i| i.routes.iter())
        .chain(static_routes)
        .collect();
    for (n, route) in routes.iter().enumerate() {
        let key = |r: &RouteSpec| (r.table, r.to, r.metric);
        if let Some(first) = routes[..n]
            .iter()
            .find(|r| key(&r.spec) == key(&route.spec))
        {
            let line = ctx.line(&first.span);
            ctx.error(
                &route.span,
                format!(
                    "{}: the route to {} in table {} is also {} (line {line}); write each route once",
                    route.who, route.spec.to, route.spec.table, first.who
                ),
            );
        }
    }
    let rules: Vec<&Placed<RuleSpec>> = instances
        .iter()
        .flat_map(|i| i.rules.iter())
        .chain(static_rules)
        .collect();
    for (n, rule) in rules.iter().enumerate() {
        if let Some(first) = rules[..n].iter().find(|r| r.spec == rule.spec) {
            let line = ctx.line(&first.span);
            ctx.error(
                &rule.span,
                format!(
                    "{}: the rule `{}` is also {} (line {line}); write each rule once",
                    rule.who, rule.spec, first.who
                ),
            );
        }
    }
    for (n, address) in static_addresses.iter().enumerate() {
        let addr = address.spec.address.addr();
        if let Some(first) = static_addresses[..n]
            .iter()
            .find(|a| a.spec.address.addr() == addr)
        {
            let line = ctx.line(&first.span);
            ctx.error(
                &address.span,
                format!(
                    "{}: {addr} is also {} (line {line}); write each address once",
                    address.who, first.who
                ),
            );
        }
        if let Some(inst) = instances
            .iter()
            .find(|i| i.spec.virtual_ips.iter().any(|v| v.addr() == addr))
        {
            ctx.error(
                &address.span,
                format!(
                    "{}: {addr} is a virtual IP of instance \"{}\", which adds and removes it with mastership; a static address stays whatever the state",
                    address.who, inst.spec.name
                ),
            );
        }
    }
}

impl StaticTables {
    pub(super) fn into_statics(self) -> Statics {
        Statics {
            addresses: self.addresses.into_iter().map(|p| p.spec).collect(),
            routes: self.routes.into_iter().map(|p| p.spec).collect(),
            rules: self.rules.into_iter().map(|p| p.spec).collect(),
        }
    }
}

/// One route table (`{ to, via, dev, src, table, metric, scope, protocol, type, onlink }`).
fn route(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, host: &impl Host) -> Option<RouteSpec> {
    t.check_keys(ctx, ROUTE_KEYS, ROUTE_ALIASES);
    let errors_before = ctx.error_count();
    let kind = keyword(ctx, t, "type", ROUTE_KINDS).unwrap_or_default();
    let via = address_at(ctx, t, "via", "a gateway address like \"192.0.2.1\"");
    let src = address_at(ctx, t, "src", "a source address like \"192.0.2.100\"");
    // `default` is family-less: the gateway's or the source's family says which.
    let default_family = via.as_ref().or(src.as_ref()).map(|(a, _)| family_of(*a));
    if t.get("to").is_none() {
        t.missing(
            ctx,
            "to",
            "the destination prefix, e.g. \"198.51.100.0/24\" or \"default\"",
        );
    }
    let to = prefix_at(ctx, t, "to", default_family);
    let dev = interface_at(ctx, t, "dev");
    if let (Some((dev, span)), false) = (&dev, t.get("dev").is_none())
        && !host.interface_exists(dev)
    {
        let snippet = ctx.snippet(span);
        ctx.warning(
            span,
            format!(
                "{}{} = {snippet}: no such interface on this host; writing the route fails (and says so) until it exists",
                t.context,
                t.label("dev")
            ),
        );
    }
    let table = table_at(ctx, t, "table").unwrap_or(MAIN_TABLE);
    let metric = t
        .int(
            ctx,
            "metric",
            0..=i64::from(u32::MAX),
            "must be in 0..=4294967295",
        )
        .and_then(|(m, _)| u32::try_from(m).ok());
    let scope = keyword(ctx, t, "scope", ROUTE_SCOPES);
    let protocol = int_or_name(ctx, t, "protocol", PROTOCOL_NAMES, 0..=255, PROTOCOL_RULE)
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or(DEFAULT_ROUTE_PROTOCOL);
    let onlink = t.bool(ctx, "onlink").unwrap_or(false);

    if let Some((to, _)) = to {
        let family = family_of(to.addr());
        for (key, value) in [("via", &via), ("src", &src)] {
            if let Some((addr, span)) = value
                && family_of(*addr) != family
            {
                t.invalid_at(
                    ctx,
                    &t.label(key),
                    span,
                    format_args!(
                        "an {} address for a route to an {} prefix ({to}); use one family per route",
                        name_of(family_of(*addr)),
                        name_of(family)
                    ),
                );
            }
        }
    }
    check_route_shape(ctx, t, kind, onlink);
    if ctx.error_count() > errors_before {
        return None;
    }
    Some(RouteSpec {
        to: to?.0,
        kind,
        via: via.map(|(a, _)| a),
        dev: dev.map(|(d, _)| d),
        src: src.map(|(a, _)| a),
        table,
        metric,
        scope,
        protocol,
        onlink,
    })
}

/// What `kind` allows: a unicast route goes somewhere (`via` or `dev`), the others go
/// nowhere; `onlink` qualifies a gateway.
fn check_route_shape(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, kind: RouteKind, onlink: bool) {
    if kind == RouteKind::Unicast {
        if t.get("via").is_none() && t.get("dev").is_none() {
            ctx.error(
            &t.span,
            format!(
                "{}: a unicast route needs `via` (a gateway) or `dev` (an interface), or a `type` like \"blackhole\"",
                who(t)
            ),
        );
        }
    } else {
        for key in ["via", "dev", "onlink"] {
            if let Some(value) = t.get(key) {
                t.invalid(
                    ctx,
                    key,
                    value,
                    format_args!("a {} route goes nowhere: remove `{key}`", kind.keyword()),
                );
            }
        }
    }
    if onlink
        && t.get("via").is_none()
        && let Some(value) = t.get("onlink")
    {
        t.invalid(
            ctx,
            "onlink",
            value,
            "`onlink` says the gateway is on the link: it needs `via`",
        );
    }
}

/// One rule table (`{ from, to, table, type, priority, iif, oif, fwmark, family }`).
fn rule(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, default_family: Option<Family>) -> Option<RuleSpec> {
    t.check_keys(ctx, RULE_KEYS, RULE_ALIASES);
    let errors_before = ctx.error_count();
    let family_key = keyword(ctx, t, "family", FAMILIES);
    let from = prefix_at(ctx, t, "from", None);
    let to = prefix_at(ctx, t, "to", None);
    let family = from
        .as_ref()
        .or(to.as_ref())
        .map(|(n, _)| family_of(n.addr()))
        .or(family_key)
        .or(default_family)
        .unwrap_or(Family::Ipv4);
    for (key, value) in [("from", &from), ("to", &to)] {
        if let Some((net, span)) = value
            && family_of(net.addr()) != family
        {
            t.invalid_at(
                ctx,
                &t.label(key),
                span,
                format_args!(
                    "an {} prefix in an {} rule; `from`, `to` and `family` must agree",
                    name_of(family_of(net.addr())),
                    name_of(family)
                ),
            );
        }
    }
    let table = table_at(ctx, t, "table");
    let kind = keyword(ctx, t, "type", RULE_KINDS);
    let action = match (table, kind, t.get("table"), t.get("type")) {
        (Some(table), None, _, None) => Some(RuleAction::Table(table)),
        (None, Some(kind), None, _) => Some(kind),
        (_, _, Some(value), Some(_)) => {
            t.invalid(
                ctx,
                "table",
                value,
                "a rule either looks up a table or has a `type`, not both",
            );
            None
        }
        (_, _, None, None) => {
            t.missing(
                ctx,
                "table",
                "the table matching packets are looked up in, e.g. 100",
            );
            None
        }
        // Reported above.
        _ => None,
    };
    let priority = t
        .int(
            ctx,
            "priority",
            0..=i64::from(u32::MAX),
            "must be in 0..=4294967295 (lower is consulted first)",
        )
        .and_then(|(p, _)| u32::try_from(p).ok());
    let iif = interface_at(ctx, t, "iif").map(|(n, _)| n);
    let oif = interface_at(ctx, t, "oif").map(|(n, _)| n);
    let fwmark = fwmark(ctx, t);
    if ctx.error_count() > errors_before {
        return None;
    }
    Some(RuleSpec {
        family,
        from: from.map(|(n, _)| n),
        to: to.map(|(n, _)| n),
        action: action?,
        priority,
        iif,
        oif,
        fwmark,
    })
}

/// One `[[static_address]]` (`{ address, dev }`).
fn address(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, host: &impl Host) -> Option<StaticAddressSpec> {
    t.check_keys(ctx, ADDRESS_KEYS, &[]);
    if t.get("address").is_none() {
        t.missing(
            ctx,
            "address",
            "the address with its prefix, e.g. \"192.0.2.5/24\"",
        );
    }
    if t.get("dev").is_none() {
        t.missing(ctx, "dev", "the interface it is added to, e.g. \"eth0\"");
    }
    let address = t
        .str(ctx, "address", "an address like \"192.0.2.5/24\"")
        .and_then(|(s, span)| {
            let net = parse_net(s).or_else(|| {
                t.invalid_at(
                    ctx,
                    &t.label("address"),
                    &span,
                    "expected an address or address/prefix like \"192.0.2.5/24\" or \"2001:db8::5/64\"",
                );
                None
            })?;
            let addr = net.addr();
            if addr.is_unspecified() || addr.is_multicast() {
                t.invalid_at(
                    ctx,
                    &t.label("address"),
                    &span,
                    "must be a unicast address",
                );
                return None;
            }
            Some(net)
        });
    let dev = interface_at(ctx, t, "dev");
    if let Some((dev, span)) = &dev
        && !host.interface_exists(dev)
    {
        let snippet = ctx.snippet(span);
        ctx.warning(
            span,
            format!(
                "{}dev = {snippet}: no such interface on this host; adding the address fails (and says so) until it exists",
                t.context
            ),
        );
    }
    Some(StaticAddressSpec {
        address: address?,
        dev: dev?.0,
    })
}

/// An address (no prefix) under `key`.
fn address_at(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    key: &str,
    what: &str,
) -> Option<(IpAddr, Range<usize>)> {
    let (s, span) = t.str(ctx, key, what)?;
    match s.parse::<IpAddr>() {
        Ok(addr) if !addr.is_unspecified() && !addr.is_multicast() => Some((addr, span)),
        Ok(_) => {
            t.invalid_at(ctx, &t.label(key), &span, "must be a unicast address");
            None
        }
        Err(_) => {
            t.invalid_at(ctx, &t.label(key), &span, format_args!("expected {what}"));
            None
        }
    }
}

/// A prefix under `key`: `"198.51.100.0/24"`, a bare address (a host prefix), or (for a
/// route's `to`) `"default"`, of `default_family` or IPv4. Host bits must be clear: the
/// kernel refuses `192.0.2.1/24`.
fn prefix_at(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    key: &str,
    default_family: Option<Family>,
) -> Option<(IpNet, Range<usize>)> {
    let (s, span) = t.str(ctx, key, "a prefix like \"198.51.100.0/24\"")?;
    if s == "default" || s == "all" {
        let net = match default_family {
            Some(Family::Ipv6) => IpNet::V6(ipnet::Ipv6Net::default()),
            _ => IpNet::V4(ipnet::Ipv4Net::default()),
        };
        return Some((net, span));
    }
    let Some(net) = parse_net(s) else {
        t.invalid_at(
            ctx,
            &t.label(key),
            &span,
            "expected a prefix like \"198.51.100.0/24\" or \"2001:db8:1::/48\", an address, or \"default\"",
        );
        return None;
    };
    if net.trunc() != net {
        t.invalid_at(
            ctx,
            &t.label(key),
            &span,
            format_args!(
                "host bits are set after the /{} prefix; did you mean \"{}\"?",
                net.prefix_len(),
                net.trunc()
            ),
        );
        return None;
    }
    Some((net, span))
}

fn parse_net(s: &str) -> Option<IpNet> {
    if s.contains('/') {
        s.parse().ok()
    } else {
        s.parse::<IpAddr>().ok().map(IpNet::from)
    }
}

/// An interface name under `key`, as the kernel's `dev_valid_name` takes it.
fn interface_at(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, key: &str) -> Option<(String, Range<usize>)> {
    let (name, span) = t.str(ctx, key, "an interface name like \"eth0\"")?;
    let valid = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if !valid {
        t.invalid_at(
            ctx,
            &t.label(key),
            &span,
            "not a valid interface name (1..=15 bytes, no '/', ':' or whitespace)",
        );
        return None;
    }
    Some((name.to_owned(), span))
}

/// A routing table: a number other than 0 (`RT_TABLE_UNSPEC`) or a name `ip` knows.
fn table_at(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, key: &str) -> Option<u32> {
    int_or_name(
        ctx,
        t,
        key,
        TABLE_NAMES,
        1..=i64::from(u32::MAX),
        TABLE_RULE,
    )
    .and_then(|n| u32::try_from(n).ok())
}

/// One of the words of `choices` under `key`; anything else is reported with the list.
fn keyword<T: Copy>(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    key: &str,
    choices: &[(&str, T)],
) -> Option<T> {
    let words: Vec<String> = choices.iter().map(|(w, _)| format!("\"{w}\"")).collect();
    let expected = match words.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    let (s, span) = t.str(ctx, key, &expected)?;
    if let Some((_, value)) = choices.iter().find(|(w, _)| *w == s) {
        return Some(*value);
    }
    t.invalid_at(
        ctx,
        &t.label(key),
        &span,
        format_args!("expected {expected}"),
    );
    None
}

/// An integer in `range` or one of `names`, under `key`.
fn int_or_name(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    key: &str,
    names: &[(&str, i64)],
    range: core::ops::RangeInclusive<i64>,
    why: &str,
) -> Option<i64> {
    let value = t.get(key)?;
    if let DeValue::String(s) = value.get_ref() {
        if let Some((_, n)) = names.iter().find(|(name, _)| *name == s.as_ref()) {
            return Some(*n);
        }
        t.invalid(ctx, key, value, why);
        return None;
    }
    t.int(ctx, key, range, why).map(|(n, _)| n)
}

/// `fwmark = 16` or `fwmark = "0x10/0xff"` (mark/mask, as `ip rule` writes it).
fn fwmark(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<(u32, Option<u32>)> {
    const WHY: &str = "expected a mark in 0..=4294967295, or \"MARK/MASK\" like \"0x10/0xff\"";
    let value = t.get("fwmark")?;
    if let DeValue::String(s) = value.get_ref() {
        let number = |text: &str| match text.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => text.parse::<u32>().ok(),
        };
        let parsed = match s.split_once('/') {
            Some((value, bits)) => number(value).zip(number(bits)).map(|(a, m)| (a, Some(m))),
            None => number(s).map(|a| (a, None)),
        };
        if parsed.is_none() {
            t.invalid(ctx, "fwmark", value, WHY);
        }
        return parsed;
    }
    t.int(ctx, "fwmark", 0..=i64::from(u32::MAX), WHY)
        .and_then(|(n, _)| u32::try_from(n).ok())
        .map(|mark| (mark, None))
}
