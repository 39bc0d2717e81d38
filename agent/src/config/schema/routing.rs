//! `[routing]` (the kernel table and route protocol vipflip writes, the drain's quiet time,
//! the BGP side `vipflip routing-config` prints) and `[[announce]]` (a VIP and its gate),
//! with the checks across objects: the VIP is held by an instance or a virtual server, the
//! gate names one that holds it, one gate per VIP.

use core::ops::Range;
use core::time::Duration;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::super::reader::{Ctx, Table};
use super::super::routing::{
    AnnounceGate, AnnounceSpec, BfdSpec, BgpNeighbor, BgpSpec, RoutingSpec,
};
use super::instance::Instance;
use super::unknown_name;
use super::virtual_server::VirtualServer;

const ROUTING_KEYS: &[&str] = &["table", "protocol", "drain_quiet", "bgp"];
const BGP_KEYS: &[&str] = &["asn", "router_id", "neighbors", "bfd", "hold_time"];
const NEIGHBOR_KEYS: &[&str] = &["address", "asn"];
const BFD_KEYS: &[&str] = &["interval", "multiplier"];
const ANNOUNCE_KEYS: &[&str] = &["vip", "when", "instance", "virtual_server"];

/// Kernel tables a routing daemon or the kernel itself owns (`/etc/iproute2/rt_tables`).
const RESERVED_TABLES: &[(i64, &str)] = &[
    (0, "unspec"),
    (253, "default"),
    (254, "main"),
    (255, "local"),
];
/// BFD intervals FRR's bfdd accepts.
const BFD_INTERVALS: core::ops::RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_mins(1);

pub(super) fn routing(ctx: &mut Ctx<'_>, root: &Table<'_, '_>) -> RoutingSpec {
    let mut spec = RoutingSpec::default();
    let Some(t) = root.table(ctx, "routing", "`[routing]`") else {
        return spec;
    };
    t.check_keys(ctx, ROUTING_KEYS, &[]);
    if let Some((table, span)) = t.int(
        ctx,
        "table",
        1..=i64::from(u32::MAX),
        "must be a kernel routing table number in 1..=4294967295",
    ) {
        if let Some((_, name)) = RESERVED_TABLES.iter().find(|(n, _)| *n == table) {
            t.invalid_at(
                ctx,
                &t.label("table"),
                &span,
                format_args!(
                    "is the kernel's `{name}` table; give vipflip a table of its own (200, say) for the routing daemon to redistribute"
                ),
            );
        } else {
            spec.table = u32::try_from(table).expect("checked range");
        }
    }
    if let Some((protocol, span)) = t.int(
        ctx,
        "protocol",
        0..=255,
        "must be a route protocol number in 0..=255 (default 250)",
    ) {
        let why = match protocol {
            0..=2 => Some(
                "is `unspec`, `redirect` or `kernel`: neither FRR nor BIRD redistributes such routes",
            ),
            12 => Some("is BIRD's own protocol number, which BIRD's kernel protocol ignores"),
            186..=198 => Some("is one of FRR's own protocol numbers, which zebra ignores"),
            _ => None,
        };
        match why {
            Some(why) => t.invalid_at(ctx, &t.label("protocol"), &span, why),
            None => spec.protocol = u8::try_from(protocol).expect("checked range"),
        }
    }
    if let Some((quiet, span)) = t.duration(ctx, "drain_quiet") {
        if quiet.is_zero() {
            t.invalid_at(
                ctx,
                &t.label("drain_quiet"),
                &span,
                "must be more than 0s: it is how long a drained director waits for silence",
            );
        } else {
            spec.drain_quiet = quiet;
        }
    }
    spec.bgp = t
        .table(ctx, "bgp", "{ asn = 65001, neighbors = [ … ] }")
        .and_then(|b| bgp(ctx, &b));
    spec
}

/// `[routing.bgp]`: read only by `vipflip routing-config`, checked like everything else.
fn bgp(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<BgpSpec> {
    t.check_keys(ctx, BGP_KEYS, &[]);
    if t.get("asn").is_none() {
        t.missing(ctx, "asn", "this director's AS number");
    }
    let own_asn = asn(ctx, t, "asn");
    let router_id = t
        .str(ctx, "router_id", "an IPv4 address")
        .and_then(|(text, span)| {
            let id = text.parse::<Ipv4Addr>().ok();
            if id.is_none() {
                t.invalid_at(
                    ctx,
                    &t.label("router_id"),
                    &span,
                    "expected an IPv4 address like \"192.0.2.11\" (BGP router ids are 32 bits)",
                );
            }
            id
        });
    if t.get("neighbors").is_none() {
        t.missing(
            ctx,
            "neighbors",
            "the upstream routers, e.g. [{ address = \"192.0.2.1\", asn = 65000 }]",
        );
    }
    let mut neighbors = Vec::new();
    for n in t.tables(
        ctx,
        "neighbors",
        "tables like { address = \"192.0.2.1\", asn = 65000 }",
    ) {
        n.check_keys(ctx, NEIGHBOR_KEYS, &[]);
        if n.get("address").is_none() {
            n.missing(ctx, "address", "the neighbour's address");
        }
        if n.get("asn").is_none() {
            n.missing(ctx, "asn", "the neighbour's AS number");
        }
        let address = n
            .str(ctx, "address", "an IP address")
            .and_then(|(text, span)| {
                text.parse::<IpAddr>().ok().or_else(|| {
                    n.invalid_at(
                        ctx,
                        &n.label("address"),
                        &span,
                        "expected an IP address like \"192.0.2.1\" or \"2001:db8::1\"",
                    );
                    None
                })
            });
        if let (Some(address), Some(asn)) = (address, asn(ctx, &n, "asn")) {
            neighbors.push(BgpNeighbor { address, asn });
        }
    }
    let bfd = t
        .table(ctx, "bfd", "{ interval = \"50ms\", multiplier = 3 }")
        .and_then(|b| bfd(ctx, &b));
    let hold_time = t.duration(ctx, "hold_time").and_then(|(hold, span)| {
        let secs = hold.as_secs();
        if hold.subsec_nanos() != 0 || !(3..=65535).contains(&secs) {
            t.invalid_at(
                ctx,
                &t.label("hold_time"),
                &span,
                "must be whole seconds in 3s..=65535s (BGP's hold timer; keepalives go at a third of it)",
            );
            return None;
        }
        Some(u16::try_from(secs).expect("checked range"))
    });
    Some(BgpSpec {
        asn: own_asn?,
        router_id,
        neighbors,
        bfd,
        hold_time,
    })
}

fn asn(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, key: &str) -> Option<u32> {
    t.int(
        ctx,
        key,
        1..=i64::from(u32::MAX),
        "must be an AS number in 1..=4294967295",
    )
    .map(|(asn, _)| u32::try_from(asn).expect("checked range"))
}

fn bfd(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<BfdSpec> {
    t.check_keys(ctx, BFD_KEYS, &[]);
    let interval = match t.duration(ctx, "interval") {
        Some((d, span)) if !BFD_INTERVALS.contains(&d) || d.subsec_nanos() % 1_000_000 != 0 => {
            t.invalid_at(
                ctx,
                &t.label("interval"),
                &span,
                "must be whole milliseconds in 10ms..=60s (FRR's bfdd range)",
            );
            None
        }
        Some((d, _)) => Some(d),
        None => Some(Duration::from_millis(300)),
    };
    let multiplier = match t.int(
        ctx,
        "multiplier",
        2..=255,
        "must be in 2..=255 (packets missed before the session is down)",
    ) {
        Some((m, _)) => Some(u8::try_from(m).expect("checked range")),
        None if t.get("multiplier").is_some() => None,
        None => Some(3),
    };
    Some(BfdSpec {
        interval: interval?,
        multiplier: multiplier?,
    })
}

/// One `[[announce]]` as written; its gate is settled by [`check_announces`], which knows
/// the instances and virtual servers.
pub(super) struct Announce {
    context: String,
    vip: Option<(IpAddr, Range<usize>)>,
    when: Option<(Gate, Range<usize>)>,
    instance: Option<(String, Range<usize>)>,
    virtual_server: Option<(String, Range<usize>)>,
    span: Range<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gate {
    Always,
    Master,
    Quorum,
}

pub(super) fn announce(ctx: &mut Ctx<'_>, mut t: Table<'_, '_>, index: usize) -> Announce {
    t.context = format!("announce #{}: ", index + 1);
    t.check_keys(
        ctx,
        ANNOUNCE_KEYS,
        &[("prefix", "did you mean `vip`? (announced as a /32 or /128)")],
    );
    if t.get("vip").is_none() {
        t.missing(ctx, "vip", "the VIP to announce, e.g. \"198.51.100.10\"");
    }
    let vip = t
        .str(ctx, "vip", "an IP address like \"198.51.100.10\"")
        .and_then(|(text, span)| {
            let Ok(vip) = text.parse::<IpAddr>() else {
                t.invalid_at(
                    ctx,
                    "vip",
                    &span,
                    "expected an address without prefix, like \"198.51.100.10\"; it is announced as a /32 (/128 for IPv6)",
                );
                return None;
            };
            t.context = format!("announce {vip}: ");
            Some((vip, span))
        });
    if t.get("when").is_none() {
        t.missing(
            ctx,
            "when",
            "\"always\", \"master\" (while an instance is master) or \"quorum\" (while a virtual server has its quorum)",
        );
    }
    let when = t
        .str(ctx, "when", "\"always\", \"master\" or \"quorum\"")
        .and_then(|(text, span)| {
            let gate = match text {
                "always" => Gate::Always,
                "master" => Gate::Master,
                "quorum" => Gate::Quorum,
                _ => {
                    t.invalid_at(
                        ctx,
                        "when",
                        &span,
                        "expected \"always\" (while the agent runs), \"master\" (while the instance is master) or \"quorum\" (while the virtual server has its quorum)",
                    );
                    return None;
                }
            };
            Some((gate, span))
        });
    let named = |ctx: &mut Ctx<'_>, key: &str, what: &str| {
        t.str(ctx, key, what)
            .map(|(name, span)| (name.to_owned(), span))
    };
    let instance = named(ctx, "instance", "the name of an [[instance]]");
    let virtual_server = named(ctx, "virtual_server", "the name of a [[virtual_server]]");
    Announce {
        context: t.context.clone(),
        vip,
        when,
        instance,
        virtual_server,
        span: t.span.clone(),
    }
}

/// Settles each announcement's gate and checks it: the VIP is held by the instance or
/// virtual server its gate names (by default the one that holds it), and each VIP has one
/// gate.
pub(super) fn check_announces(
    ctx: &mut Ctx<'_>,
    announces: &[Announce],
    instances: &[Instance],
    services: &[VirtualServer],
) -> Vec<AnnounceSpec> {
    let mut first: HashMap<IpAddr, &Range<usize>> = HashMap::new();
    let mut specs = Vec::new();
    for a in announces {
        let (Some((vip, vip_span)), Some((when, when_span))) = (&a.vip, &a.when) else {
            continue;
        };
        if let Some(line) = first.get(vip).map(|span| ctx.line(span)) {
            ctx.error(
                &a.span,
                format!(
                    "{}{vip} is already announced by the [[announce]] at line {line}; one [[announce]] (one gate) per VIP",
                    a.context
                ),
            );
            continue;
        }
        first.insert(*vip, &a.span);
        let holders: Vec<&Instance> = instances
            .iter()
            .filter(|i| i.spec.virtual_ips.iter().any(|n| n.addr() == *vip))
            .collect();
        let serving: Vec<&VirtualServer> = services.iter().filter(|s| s.spec.vip == *vip).collect();
        names_for_another_gate(ctx, a, *when);
        let gate = match when {
            Gate::Always => {
                if holders.is_empty() && serving.is_empty() {
                    ctx.error(
                        vip_span,
                        format!(
                            "{}vip = \"{vip}\": no [[instance]] or [[virtual_server]] holds this VIP, so nothing here would answer its traffic",
                            a.context
                        ),
                    );
                    continue;
                }
                if serving.is_empty() {
                    ctx.warning(
                        when_span,
                        format!(
                            "{}when = \"always\": a backup of instance \"{}\" attracts this VIP's traffic and can only forward or drop it; when = \"master\" announces it from the master alone",
                            a.context, holders[0].spec.name
                        ),
                    );
                }
                AnnounceGate::Always
            }
            Gate::Master => {
                let candidates: Vec<&str> = holders.iter().map(|i| i.spec.name.as_str()).collect();
                let all = instances.iter().map(|i| i.spec.name.as_str());
                let Some(instance) = holder(
                    ctx,
                    a,
                    *vip,
                    vip_span,
                    a.instance.as_ref(),
                    "instance",
                    &candidates,
                    all,
                ) else {
                    continue;
                };
                AnnounceGate::Master { instance }
            }
            Gate::Quorum => {
                let candidates: Vec<&str> = serving.iter().map(|s| s.spec.name.as_str()).collect();
                let all = services.iter().map(|s| s.spec.name.as_str());
                let Some(virtual_server) = holder(
                    ctx,
                    a,
                    *vip,
                    vip_span,
                    a.virtual_server.as_ref(),
                    "virtual_server",
                    &candidates,
                    all,
                ) else {
                    continue;
                };
                AnnounceGate::Quorum { virtual_server }
            }
        };
        specs.push(AnnounceSpec { vip: *vip, gate });
    }
    specs
}

/// `instance` with a gate other than `master`, `virtual_server` with one other than `quorum`.
fn names_for_another_gate(ctx: &mut Ctx<'_>, a: &Announce, when: Gate) {
    for (given, key, wanted) in [
        (&a.instance, "instance", Gate::Master),
        (&a.virtual_server, "virtual_server", Gate::Quorum),
    ] {
        if let Some((_, span)) = given
            && when != wanted
        {
            let snippet = ctx.snippet(span);
            ctx.error(
                span,
                format!(
                    "{}{key} = {snippet}: only read with when = \"{}\"",
                    a.context,
                    if wanted == Gate::Master {
                        "master"
                    } else {
                        "quorum"
                    }
                ),
            );
        }
    }
}

/// The instance (or virtual server) a gate follows: the one named, which must hold the VIP,
/// or the only one that holds it.
#[expect(
    clippy::too_many_arguments,
    reason = "one call per kind of holder; a struct would only rename them"
)]
fn holder<'n>(
    ctx: &mut Ctx<'_>,
    a: &Announce,
    vip: IpAddr,
    vip_span: &Range<usize>,
    given: Option<&(String, Range<usize>)>,
    key: &str,
    holding: &[&str],
    all: impl Iterator<Item = &'n str> + Clone,
) -> Option<String> {
    if let Some((name, span)) = given {
        if holding.contains(&name.as_str()) {
            return Some(name.clone());
        }
        if all.clone().any(|n| n == name) {
            let snippet = ctx.snippet(span);
            ctx.error(
                span,
                format!(
                    "{}{key} = {snippet}: [[{key}]] \"{name}\" does not hold {vip}{}",
                    a.context,
                    match holding {
                        [] => String::new(),
                        _ => format!("; {} does", holding.join(", ")),
                    }
                ),
            );
        } else {
            unknown_name(ctx, span, &a.context, key, key, name, all);
        }
        return None;
    }
    match holding {
        [one] => Some((*one).to_owned()),
        [] => {
            ctx.error(
                vip_span,
                format!(
                    "{}vip = \"{vip}\": no [[{key}]] holds this VIP, so its gate has nothing to follow",
                    a.context
                ),
            );
            None
        }
        several => {
            ctx.error(
                &a.span,
                format!(
                    "{}{} hold {vip}: name the one to follow with `{key} = \"…\"`",
                    a.context,
                    several.join(" and ")
                ),
            );
            None
        }
    }
}
