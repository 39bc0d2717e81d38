//! `[[instance]]`: the fields of one virtual router (interface, VRID, version, priority,
//! interval, virtual IPs, peers, checksum or authentication, GARP), and the checks across
//! instances: unique names, one (interface, VRID, family) each, a VIP in one instance only,
//! tracked scripts that exist, scripts that some instance tracks.

use core::ops::Range;
use core::time::Duration;
use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use toml::de::DeValue;

use super::super::reader::{Alias, Ctx, Table, suggest};
use super::super::{Garp, Global, Host, InstanceSpec, RouteSpec, RuleSpec};
use super::routes::{Placed, instance_routes};
use super::script::Script;
use super::tracking::tracking;
use super::{INSTANCE_NOTIFY_KEYS, Listed, name, notify};
use crate::wire::{Family, Priority, V3Ipv4Checksum, VrId, VrrpVersion};

const INSTANCE_KEYS: &[&str] = &[
    "name",
    "interface",
    "vrid",
    "version",
    "priority",
    "advert_interval",
    "preempt",
    "preempt_delay",
    "accept",
    "virtual_ips",
    "unicast_peers",
    "unicast_src",
    "allowed_peers",
    "checksum",
    "garp",
    "track_interfaces",
    "track_scripts",
    "track_files",
    "notify",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "handoff_bound",
    "forward_window",
    "auth_pass",
    "virtual_routes",
    "virtual_rules",
];
/// keepalived.conf words users bring, and what vipflip calls them.
const INSTANCE_ALIASES: &[Alias] = &[
    ("virtual_router_id", "did you mean `vrid`?"),
    ("advert_int", "did you mean `advert_interval`?"),
    ("virtual_ipaddress", "did you mean `virtual_ips`?"),
    ("unicast_peer", "did you mean `unicast_peers`?"),
    ("unicast_src_ip", "did you mean `unicast_src`?"),
    ("nopreempt", "use `preempt = false`"),
    ("no_accept", "use `accept = false`"),
    (
        "state",
        "vipflip has no initial state: the highest priority becomes master",
    ),
    ("authentication", "use `auth_pass` (VRRPv2 only)"),
    ("notify_master", "use `notify = { master = \"…\" }`"),
    ("notify_backup", "use `notify = { backup = \"…\" }`"),
    ("notify_fault", "use `notify = { fault = \"…\" }`"),
    ("notify_stop", "use `notify = { stop = \"…\" }`"),
    ("virtual_route", "did you mean `virtual_routes`?"),
    ("virtual_rule", "did you mean `virtual_rules`?"),
];
const GARP_KEYS: &[&str] = &["repeat", "interval", "delay", "refresh", "refresh_repeat"];
const V3_INTERVAL_RULE: &str =
    "VRRPv3 carries centiseconds, use a multiple of 10ms in 10ms..=40.95s";
const V2_INTERVAL_RULE: &str = "VRRPv2 carries whole seconds, use 1s..=255s";
/// A value that is absent (`default`), valid (`Some`) or invalid (already reported; the
/// default stands in so reading can go on).
fn or_default<T>(got: Option<T>, default: T) -> T {
    got.unwrap_or(default)
}

/// What the checks across instances need, kept even for an instance with errors.
pub(super) struct Instance {
    pub(super) spec: InstanceSpec,
    context: String,
    name: Option<(String, Range<usize>)>,
    vrid: Option<Range<usize>>,
    family: Option<Family>,
    vips: Vec<Listed<IpAddr>>,
    track_scripts: Vec<Listed<String>>,
    pub(super) routes: Vec<Placed<RouteSpec>>,
    pub(super) rules: Vec<Placed<RuleSpec>>,
}

pub(super) fn instance(
    ctx: &mut Ctx<'_>,
    mut t: Table<'_, '_>,
    index: usize,
    global: &Global,
    host: &impl Host,
) -> Instance {
    let name = name(ctx, &mut t, "instance", index);
    t.check_keys(ctx, INSTANCE_KEYS, INSTANCE_ALIASES);

    let interface = interface(ctx, &t, host);
    if t.get("vrid").is_none() {
        t.missing(
            ctx,
            "vrid",
            "the virtual router ID, 1..=255, the same on every router of the group",
        );
    }
    let vrid = t.int(ctx, "vrid", 1..=255, "must be in 1..=255 (RFC 5798 §5.2.3)");
    let version = match t.int(
        ctx,
        "version",
        2..=3,
        "must be 2 (RFC 3768) or 3 (RFC 5798)",
    ) {
        Some((2, _)) => Some(VrrpVersion::V2),
        Some(_) => Some(VrrpVersion::V3),
        None if t.get("version").is_none() => Some(VrrpVersion::V3),
        None => None,
    };
    let priority = t.int(
        ctx,
        "priority",
        1..=255,
        "must be in 1..=255 (255 = address owner; 0 is reserved for a resigning master, RFC 5798 §5.2.4)",
    );
    let advert_interval = advert_interval(ctx, &t, version);

    let mut spec = InstanceSpec {
        name: name.as_ref().map(|(n, _)| n.clone()).unwrap_or_default(),
        interface: interface.unwrap_or_default(),
        vrid: VrId(
            vrid.as_ref()
                .map_or(1, |(v, _)| u8::try_from(*v).unwrap_or(1)),
        ),
        version: or_default(version, VrrpVersion::V3),
        priority: Priority(priority.map_or(100, |(p, _)| u8::try_from(p).unwrap_or(100))),
        advert_interval,
        preempt: or_default(t.bool(ctx, "preempt"), true),
        preempt_delay: t
            .duration(ctx, "preempt_delay")
            .map_or(Duration::ZERO, |(d, _)| d),
        accept: or_default(t.bool(ctx, "accept"), true),
        virtual_ips: Vec::new(),
        unicast_peers: Vec::new(),
        unicast_src: None,
        allowed_peers: Vec::new(),
        checksum: V3Ipv4Checksum::default(),
        garp: garp(ctx, &t),
        track_interfaces: Vec::new(),
        track_scripts: Vec::new(),
        track_files: Vec::new(),
        track_quorums: Vec::new(),
        notify: notify(ctx, &t, INSTANCE_NOTIFY_KEYS, &global.run_as(), host),
        lower_prio_no_advert: or_default(t.bool(ctx, "lower_prio_no_advert"), false),
        higher_prio_send_advert: or_default(t.bool(ctx, "higher_prio_send_advert"), false),
        handoff_bound: None,
        forward_window: t
            .duration(ctx, "forward_window")
            .map_or(Duration::from_secs(5), |(d, _)| d),
        auth_pass: None,
        virtual_routes: Vec::new(),
        virtual_rules: Vec::new(),
    };
    spec.handoff_bound = handoff_bound(ctx, &t);

    let (family, vips) = virtual_ips(ctx, &t, &mut spec);
    if let (Some(Family::Ipv6), Some(VrrpVersion::V2), Some(v)) =
        (family, version, t.get("version"))
    {
        t.invalid(
            ctx,
            "version",
            v,
            "VRRPv2 (RFC 3768) carries IPv4 only; use version = 3 for IPv6 virtual_ips",
        );
    }
    if let Some(family) = family {
        peers(ctx, &t, family, &mut spec);
    }
    version_specific(ctx, &t, version, family, &mut spec);
    let track_scripts = tracking(ctx, &t, &mut spec);
    let (routes, rules) = instance_routes(ctx, &t, family, &mut spec, host);

    Instance {
        spec,
        context: t.context.clone(),
        name,
        vrid: vrid.map(|(_, span)| span),
        family,
        vips,
        track_scripts,
        routes,
        rules,
    }
}

/// `handoff_bound`: more than 0 when given.
fn handoff_bound(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<Duration> {
    let (d, span) = t.duration(ctx, "handoff_bound")?;
    if d.is_zero() {
        t.invalid_at(
            ctx,
            "handoff_bound",
            &span,
            "must be more than 0 (omit it for Master_Down_Interval)",
        );
    }
    Some(d)
}

fn interface(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, host: &impl Host) -> Option<String> {
    if t.get("interface").is_none() {
        t.missing(
            ctx,
            "interface",
            "the interface the virtual router runs on, e.g. \"eth0\"",
        );
        return None;
    }
    let (name, span) = t.str(ctx, "interface", "an interface name like \"eth0\"")?;
    // IFNAMSIZ is 16 with the NUL; the kernel's dev_valid_name.
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
            "interface",
            &span,
            "not a valid interface name (1..=15 bytes, no '/', ':' or whitespace)",
        );
        return None;
    }
    if !host.interface_exists(name) {
        let snippet = ctx.snippet(&span);
        ctx.warning(
            &span,
            format!(
                "{}interface = {snippet}: no such interface on this host; the daemon holds the instance in fault until it appears",
                t.context
            ),
        );
    }
    Some(name.to_owned())
}

fn advert_interval(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, version: Option<VrrpVersion>) -> Duration {
    let default = Duration::from_secs(1);
    let Some((d, span)) = t.duration(ctx, "advert_interval") else {
        return default;
    };
    let ok = match version {
        // RFC 5798 §5.2.7: 12 bits of centiseconds.
        Some(VrrpVersion::V3) => {
            d >= Duration::from_millis(10)
                && d <= Duration::from_millis(40_950)
                && d.as_nanos().is_multiple_of(10_000_000)
        }
        // RFC 3768 §5.3.7: 8 bits of seconds.
        Some(VrrpVersion::V2) => {
            d >= Duration::from_secs(1) && d <= Duration::from_secs(255) && d.subsec_nanos() == 0
        }
        // The version is invalid and reported; the interval cannot be judged.
        None => true,
    };
    if !ok {
        let rule = if version == Some(VrrpVersion::V2) {
            V2_INTERVAL_RULE
        } else {
            V3_INTERVAL_RULE
        };
        t.invalid_at(ctx, "advert_interval", &span, rule);
    }
    d
}

/// `virtual_ips`: required, non-empty, one family; a link-local one only first.
fn virtual_ips(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    spec: &mut InstanceSpec,
) -> (Option<Family>, Vec<Listed<IpAddr>>) {
    let Some(value) = t.get("virtual_ips") else {
        t.missing(
            ctx,
            "virtual_ips",
            "the virtual addresses, e.g. [\"192.0.2.100/24\"]",
        );
        return (None, Vec::new());
    };
    let items = t.strings(ctx, "virtual_ips", "addresses like \"192.0.2.100/24\"");
    if matches!(value.get_ref(), DeValue::Array(a) if a.is_empty()) {
        t.invalid(
            ctx,
            "virtual_ips",
            value,
            "an instance needs at least one virtual IP",
        );
    }
    if items.len() > 255 {
        t.invalid(
            ctx,
            "virtual_ips",
            value,
            format_args!(
                "{} addresses; an advert carries at most 255 (RFC 5798 §5.2.5)",
                items.len()
            ),
        );
    }
    let mut family: Option<(Family, String)> = None;
    let mut seen: Vec<Listed<IpAddr>> = Vec::new();
    for item in items {
        let Some(net) = parse_net(item.text) else {
            t.invalid_at(
                ctx,
                &item.label,
                &item.span,
                "expected an address or address/prefix like \"192.0.2.100/24\" or \"2001:db8::100/64\"",
            );
            continue;
        };
        let addr = net.addr();
        if !usable_vip(addr) {
            t.invalid_at(
                ctx,
                &item.label,
                &item.span,
                "not usable as a virtual IP (unspecified, loopback, multicast or broadcast)",
            );
            continue;
        }
        let this = family_of(addr);
        match &family {
            None => family = Some((this, item.label.clone())),
            Some((f, first)) if *f != this => {
                t.invalid_at(
                    ctx,
                    &item.label,
                    &item.span,
                    format_args!(
                        "{} address in an {} instance ({first} is {}); one family per instance: add another [[instance]] for {}",
                        name_of(this),
                        name_of(*f),
                        name_of(*f),
                        name_of(this)
                    ),
                );
                continue;
            }
            Some(_) => {}
        }
        if let IpAddr::V6(a) = addr
            && a.is_unicast_link_local()
            && !seen.is_empty()
        {
            t.invalid_at(
                ctx,
                &item.label,
                &item.span,
                "a link-local virtual IP must come first (RFC 5798 §5.2.9)",
            );
            continue;
        }
        if let Some((_, _, first)) = seen.iter().find(|(a, _, _)| *a == addr) {
            t.invalid_at(
                ctx,
                &item.label,
                &item.span,
                format_args!("listed twice (also {first})"),
            );
            continue;
        }
        seen.push((addr, item.span.clone(), item.label));
        spec.virtual_ips.push(net);
    }
    (family.map(|(f, _)| f), seen)
}

fn parse_net(s: &str) -> Option<IpNet> {
    if s.contains('/') {
        s.parse().ok()
    } else {
        s.parse::<IpAddr>().ok().map(IpNet::from)
    }
}

fn usable_vip(addr: IpAddr) -> bool {
    !addr.is_unspecified()
        && !addr.is_loopback()
        && !addr.is_multicast()
        && addr != IpAddr::V4(std::net::Ipv4Addr::BROADCAST)
}

pub(super) fn family_of(addr: IpAddr) -> Family {
    if addr.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    }
}

pub(super) fn name_of(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

/// `unicast_src`, `unicast_peers`, `allowed_peers`: addresses of the instance's family.
fn peers(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, family: Family, spec: &mut InstanceSpec) {
    let check = |ctx: &mut Ctx<'_>,
                 label: &str,
                 span: &Range<usize>,
                 text: &str|
     -> Option<IpAddr> {
        let Ok(addr) = text.parse::<IpAddr>() else {
            t.invalid_at(
                ctx,
                label,
                span,
                "expected an IP address like \"192.0.2.2\" or \"2001:db8::2\"",
            );
            return None;
        };
        if family_of(addr) != family {
            t.invalid_at(
                ctx,
                label,
                span,
                format_args!(
                    "{} address in an {} instance; unicast_src, unicast_peers and allowed_peers must be of the family of virtual_ips",
                    name_of(family_of(addr)),
                    name_of(family)
                ),
            );
            return None;
        }
        if addr.is_unspecified() || addr.is_multicast() {
            t.invalid_at(ctx, label, span, "must be a unicast address");
            return None;
        }
        Some(addr)
    };
    if let Some((s, span)) = t.str(ctx, "unicast_src", "an IP address") {
        spec.unicast_src = check(ctx, "unicast_src", &span, s);
    }
    for key in ["unicast_peers", "allowed_peers"] {
        let mut list = Vec::new();
        for item in t.strings(ctx, key, "IP addresses") {
            if let Some(addr) = check(ctx, &item.label, &item.span, item.text) {
                if list.contains(&addr) {
                    t.invalid_at(ctx, &item.label, &item.span, "listed twice");
                } else {
                    list.push(addr);
                }
            }
        }
        if key == "unicast_peers" {
            spec.unicast_peers = list;
        } else {
            spec.allowed_peers = list;
        }
    }
    if let (Some(src), true) = (t.get("unicast_src"), spec.unicast_peers.is_empty()) {
        let snippet = ctx.snippet(&src.span());
        ctx.warning(
            &src.span(),
            format!(
                "{}unicast_src = {snippet}: has no effect without unicast_peers (adverts are multicast)",
                t.context
            ),
        );
    }
}

/// `checksum` (v3 over IPv4 only) and `auth_pass` (v2 only).
fn version_specific(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    version: Option<VrrpVersion>,
    family: Option<Family>,
    spec: &mut InstanceSpec,
) {
    if let Some((s, span)) = t.str(ctx, "checksum", "\"rfc5798\" or \"rfc9568\"") {
        match s {
            "rfc5798" => spec.checksum = V3Ipv4Checksum::Rfc5798,
            "rfc9568" => spec.checksum = V3Ipv4Checksum::Rfc9568,
            _ => t.invalid_at(
                ctx,
                "checksum",
                &span,
                "expected \"rfc5798\" (message + pseudo-header: keepalived, FRR; the default) or \"rfc9568\" (message only: Cisco, Juniper)",
            ),
        }
        if version == Some(VrrpVersion::V2) {
            t.invalid_at(
                ctx,
                "checksum",
                &span,
                "only VRRPv3 over IPv4 has a choice of checksum; VRRPv2 checksums the message alone (RFC 3768 §5.3.8): remove it",
            );
        } else if family == Some(Family::Ipv6) {
            t.invalid_at(
                ctx,
                "checksum",
                &span,
                "only VRRPv3 over IPv4 has a choice of checksum; IPv6 always includes the pseudo-header (RFC 9568 §5.2.8): remove it",
            );
        }
    }
    if let Some((pass, span)) = t.str(ctx, "auth_pass", "at most 8 bytes of text") {
        if version == Some(VrrpVersion::V3) {
            t.invalid_at(
                ctx,
                "auth_pass",
                &span,
                "VRRPv3 has no authentication (RFC 5798 §9): remove it, or use version = 2",
            );
        } else if pass.is_empty() || pass.len() > 8 {
            t.invalid_at(
                ctx,
                "auth_pass",
                &span,
                format_args!(
                    "{} bytes; VRRPv2 simple-text authentication carries 1..=8 (RFC 3768 §5.3.6.1)",
                    pass.len()
                ),
            );
        } else {
            spec.auth_pass = Some(pass.to_owned());
        }
    }
}

fn garp(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Garp {
    let mut garp = Garp::default();
    let Some(g) = t.table(
        ctx,
        "garp",
        "{ repeat = 5, interval = \"0ms\", delay = \"5s\", refresh = \"0s\" }",
    ) else {
        return garp;
    };
    g.check_keys(ctx, GARP_KEYS, &[]);
    if let Some((n, _)) = g.int(
        ctx,
        "repeat",
        1..=255,
        "must be in 1..=255 (messages per VIP in each burst)",
    ) {
        garp.repeat = u8::try_from(n).unwrap_or(garp.repeat);
    }
    if let Some((d, _)) = g.duration(ctx, "interval") {
        garp.interval = d;
    }
    if let Some((d, _)) = g.duration(ctx, "delay") {
        garp.delay = d;
    }
    if let Some((d, _)) = g.duration(ctx, "refresh") {
        garp.refresh = d;
    }
    if let Some((n, _)) = g.int(
        ctx,
        "refresh_repeat",
        1..=255,
        "must be in 1..=255 (messages per VIP in each refresh)",
    ) {
        garp.refresh_repeat = u8::try_from(n).unwrap_or(garp.refresh_repeat);
    }
    garp
}

/// Duplicate names, duplicate (interface, VRID, family), VIPs claimed twice, unknown scripts.
pub(super) fn check_instances(ctx: &mut Ctx<'_>, instances: &[Instance], scripts: &[Script]) {
    let mut names: HashMap<&str, &Range<usize>> = HashMap::new();
    let mut vrids: HashMap<(&str, u8, Family), (&Instance, &Range<usize>)> = HashMap::new();
    let mut vips: HashMap<IpAddr, &Instance> = HashMap::new();
    for inst in instances {
        if let Some((name, span)) = &inst.name {
            if let Some(first) = names.get(name.as_str()) {
                let line = ctx.line(first);
                ctx.error(
                    span,
                    format!("{}name \"{name}\" is already used by the instance at line {line}; instance names must be unique", inst.context),
                );
            } else {
                names.insert(name, span);
            }
        }
        if let (Some(span), Some(family), false) =
            (&inst.vrid, inst.family, inst.spec.interface.is_empty())
        {
            let key = (inst.spec.interface.as_str(), inst.spec.vrid.0, family);
            if let Some((first, first_span)) = vrids.get(&key) {
                let snippet = ctx.snippet(span);
                let line = ctx.line(first_span);
                ctx.error(
                    span,
                    format!(
                        "{}vrid = {snippet}: instance \"{}\" (line {line}) already runs VRID {} for {} on {}; one virtual router per (interface, vrid, family)",
                        inst.context, first.spec.name, key.1, name_of(family), key.0
                    ),
                );
            } else {
                vrids.insert(key, (inst, span));
            }
        }
        for (addr, span, label) in &inst.vips {
            if let Some(first) = vips.get(addr) {
                let snippet = ctx.snippet(span);
                ctx.error(
                    span,
                    format!(
                        "{}{label} = {snippet}: {addr} is already a virtual IP of instance \"{}\"; a VIP belongs to one instance",
                        inst.context, first.spec.name
                    ),
                );
            } else {
                vips.insert(*addr, inst);
            }
        }
        for (name, span, label) in &inst.track_scripts {
            if scripts.iter().any(|s| s.spec.name == *name) {
                continue;
            }
            let known = scripts
                .iter()
                .map(|s| s.spec.name.as_str())
                .filter(|n| !n.is_empty());
            let hint = match suggest(name, known.clone()) {
                Some(best) => format!("did you mean \"{best}\"?"),
                None if scripts.is_empty() => "no [[script]] is defined".to_owned(),
                None => format!("defined scripts: {}", known.collect::<Vec<_>>().join(", ")),
            };
            let snippet = ctx.snippet(span);
            ctx.error(
                span,
                format!(
                    "{}{label} = {snippet}: no [[script]] named \"{name}\"; {hint}",
                    inst.context
                ),
            );
        }
    }
    for script in scripts {
        let used = instances.iter().any(|i| {
            i.track_scripts
                .iter()
                .any(|(n, _, _)| *n == script.spec.name)
        });
        if let (false, Some(span)) = (used, &script.name_span) {
            ctx.warning(
                span,
                format!(
                    "{}not tracked by any instance; it will not run",
                    script.context
                ),
            );
        }
    }
}
