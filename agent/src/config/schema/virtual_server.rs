//! `[[virtual_server]]` with its home (`instance` or `interface`), its
//! `[[virtual_server.real_server]]`s and their `check`s. The checks across services are in
//! `services.rs`.

use core::ops::Range;
use core::time::Duration;
use std::net::IpAddr;

use ipnet::IpNet;
use toml::de::DeValue;

use super::super::reader::{Alias, Ctx, Table};
use super::super::{
    CheckKind, Forwarding, Global, HealthCheck, Host, HttpBodyMatch, LbProtocol, LbScheduler,
    RealServerSpec, ServiceHome, VirtualServerSpec,
};
use super::instance::{family_of, name_of};
use super::tracking::weight_at;
use super::{name, script_security, script_user};
use crate::track::RunAs;
use std::path::Path;

const VIRTUAL_SERVER_KEYS: &[&str] = &[
    "name",
    "vip",
    "port",
    "protocol",
    "scheduler",
    "instance",
    "interface",
    "quorum",
    "quorum_weight",
    "sorry_server",
    "real_server",
    "forward",
    "gue_port",
    "tunnel_source",
];
/// keepalived.conf words users bring, and what vipflip calls them.
const VIRTUAL_SERVER_ALIASES: &[Alias] = &[
    (
        "lb_algo",
        "did you mean `scheduler`? (\"maglev\", \"wrr\" or \"sh\")",
    ),
    (
        "lb_kind",
        "did you mean `forward`? (\"dr\", \"ipip\" or \"gue\")",
    ),
    (
        "lvs_method",
        "did you mean `forward`? (\"dr\", \"ipip\" or \"gue\")",
    ),
    (
        "delay_loop",
        "set `interval` in each real server's `check = { … }`",
    ),
    (
        "persistence_timeout",
        "for client affinity use `scheduler = \"sh\"` (source hashing); established flows keep their server anyway",
    ),
    ("ip", "did you mean `vip`?"),
];
const REAL_SERVER_KEYS: &[&str] = &["address", "weight", "check"];
const REAL_SERVER_ALIASES: &[Alias] = &[
    ("TCP_CHECK", "use `check = { kind = \"tcp\", … }`"),
    (
        "HTTP_GET",
        "use `check = { kind = \"http\", path = \"/\", … }`",
    ),
    (
        "MISC_CHECK",
        "use `check = { kind = \"script\", command = [\"/path/to/check\", …] }`",
    ),
    (
        "inhibit_on_failure",
        "a failing real server always leaves the table; `weight = 0` drains one by hand",
    ),
    ("ip", "did you mean `address`?"),
];
const CHECK_KEYS: &[&str] = &[
    "kind",
    "interval",
    "timeout",
    "rise",
    "fall",
    "hold_down",
    "port",
    "path",
    "expect_status",
    "body",
    "command",
    "user",
    "group",
];
const CHECK_ALIASES: &[Alias] = &[
    ("type", "did you mean `kind`?"),
    ("connect_timeout", "did you mean `timeout`?"),
    ("connect_port", "did you mean `port`?"),
    ("delay_loop", "did you mean `interval`?"),
    ("url", "did you mean `path`?"),
    ("status_code", "did you mean `expect_status`?"),
    (
        "misc_path",
        "did you mean `command`? (an array: program, then arguments)",
    ),
    (
        "retry",
        "did you mean `fall`? (failures in a row that take the server out)",
    ),
];
/// The keys each kind of check reads besides the common ones.
const CHECK_KIND_KEYS: &[(&str, &[&str])] = &[
    ("tcp", &["port"]),
    ("http", &["port", "path", "expect_status", "body"]),
    ("script", &["command", "user", "group"]),
];

/// What the checks across services need, kept even for a service with errors.
pub(super) struct VirtualServer {
    pub(super) spec: VirtualServerSpec,
    pub(super) context: String,
    pub(super) name: Option<(String, Range<usize>)>,
    /// The span of a valid `vip`.
    pub(super) vip: Option<Range<usize>>,
    /// The span of a valid `port`.
    pub(super) port: Option<Range<usize>>,
    /// The span of `instance` or `interface`, if it is a string.
    pub(super) home: Option<Range<usize>>,
    /// Where each real server and the sorry server are written, in file order, for the
    /// per-interface capacity.
    pub(super) servers: Vec<Range<usize>>,
    pub(super) span: Range<usize>,
}

pub(super) fn virtual_server(
    ctx: &mut Ctx<'_>,
    mut t: Table<'_, '_>,
    index: usize,
    global: &Global,
    host: &impl Host,
) -> VirtualServer {
    let name = name(ctx, &mut t, "virtual_server", index);
    t.check_keys(ctx, VIRTUAL_SERVER_KEYS, VIRTUAL_SERVER_ALIASES);

    let vip = vip(ctx, &t);
    let vip_addr = vip.as_ref().map(|(a, _)| *a);
    if t.get("port").is_none() {
        t.missing(
            ctx,
            "port",
            "the service's port, 1..=65535, or 0 for every port",
        );
    }
    let port = t
        .int(
            ctx,
            "port",
            0..=65535,
            "must be in 0..=65535 (0 = every port of the VIP)",
        )
        .and_then(|(p, span)| Some((u16::try_from(p).ok()?, span)));
    let protocol = match t.str(ctx, "protocol", "\"tcp\" or \"udp\"") {
        Some(("tcp", _)) | None => LbProtocol::Tcp,
        Some(("udp", _)) => LbProtocol::Udp,
        Some((_, span)) => {
            t.invalid_at(ctx, "protocol", &span, "expected \"tcp\" or \"udp\"");
            LbProtocol::Tcp
        }
    };
    let scheduler = match t.str(ctx, "scheduler", "\"maglev\", \"wrr\" or \"sh\"") {
        Some(("maglev", _)) | None => LbScheduler::Maglev,
        Some(("wrr", _)) => LbScheduler::Wrr,
        Some(("sh", _)) => LbScheduler::Sh,
        Some((_, span)) => {
            t.invalid_at(
                ctx,
                "scheduler",
                &span,
                "expected \"maglev\" (consistent hashing, the default), \"wrr\" (weighted round robin) or \"sh\" (source hashing)",
            );
            LbScheduler::Maglev
        }
    };
    let home = home(ctx, &t, host);
    let quorum_weight = weight_at(ctx, &t, "quorum_weight");
    if quorum_weight.is_some()
        && let Some((ServiceHome::Interface(_), _)) = &home
        && let Some(value) = t.get("quorum_weight")
    {
        t.invalid(
            ctx,
            "quorum_weight",
            value,
            "a virtual server on an interface has no instance whose priority quorum could move; gate its announcement on quorum instead ([[announce]] when = \"quorum\")",
        );
    }
    let forward = forwarding(ctx, &t);
    // A tunnel carries the client's packet inside one of the real server's family.
    let same_family = if forward.is_tunnel() { None } else { vip_addr };
    let sorry_server = t
        .str(ctx, "sorry_server", "an IP address")
        .and_then(|(text, span)| {
            let addr = server_address(ctx, &t, "sorry_server", &span, text, vip_addr)?;
            same_family_as(ctx, &t, "sorry_server", &span, addr, same_family)?;
            Some((addr, span))
        });

    let mut spec = VirtualServerSpec {
        name: name.as_ref().map(|(n, _)| n.clone()).unwrap_or_default(),
        vip: vip_addr.unwrap_or(IpAddr::from([0, 0, 0, 0])),
        port: port.as_ref().map_or(0, |(p, _)| *p),
        protocol,
        scheduler,
        home: home
            .as_ref()
            .map_or(ServiceHome::Instance(String::new()), |(h, _)| h.clone()),
        quorum: 1,
        quorum_weight,
        sorry_server: sorry_server.as_ref().map(|(a, _)| *a),
        real_servers: Vec::new(),
        forward,
    };
    let mut servers = real_servers(
        ctx,
        &t,
        vip_addr,
        same_family,
        port.as_ref().map(|(p, _)| *p),
        &mut spec,
        (global, host),
    );
    tunnel_source_family(ctx, &t, &spec);
    quorum(ctx, &t, servers.len(), &mut spec);
    servers.extend(sorry_server.map(|(_, span)| span));

    VirtualServer {
        spec,
        context: t.context.clone(),
        name,
        vip: vip.map(|(_, span)| span),
        port: port.map(|(_, span)| span),
        home: home.map(|(_, span)| span),
        servers,
        span: t.span.clone(),
    }
}

/// `instance` (live on its master) or `interface` (live whenever the agent runs): one of
/// the two.
fn home(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    host: &impl Host,
) -> Option<(ServiceHome, Range<usize>)> {
    let instance = t.str(ctx, "instance", "the name of an [[instance]]");
    let interface = t.str(ctx, "interface", "an interface name like \"eth0\"");
    match (instance, interface) {
        (Some((name, span)), None) => Some((ServiceHome::Instance(name.to_owned()), span)),
        (None, Some(("", span))) => {
            t.invalid_at(ctx, "interface", &span, "must not be empty");
            None
        }
        (None, Some((iface, span))) => {
            if !host.interface_exists(iface) {
                let snippet = ctx.snippet(&span);
                ctx.warning(
                    &span,
                    format!(
                        "{}interface = {snippet}: no such interface on this host; the service is not served until it exists and a reload or restart attaches to it",
                        t.context
                    ),
                );
            }
            Some((ServiceHome::Interface(iface.to_owned()), span))
        }
        (Some(_), Some((_, span))) => {
            t.invalid_at(
                ctx,
                "interface",
                &span,
                "set `instance` (live on its master) or `interface` (live whenever the agent runs), not both",
            );
            None
        }
        (None, None) => {
            if t.get("instance").is_none() && t.get("interface").is_none() {
                t.missing(
                    ctx,
                    "instance",
                    "the [[instance]] whose master serves it; or set `interface` to serve whenever the agent runs, active-active behind ECMP",
                );
            }
            None
        }
    }
}

/// `vip`: required, an address without prefix.
fn vip(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Option<(IpAddr, Range<usize>)> {
    if t.get("vip").is_none() {
        t.missing(
            ctx,
            "vip",
            "one of the instance's virtual IPs, e.g. \"192.0.2.100\"",
        );
        return None;
    }
    let (text, span) = t.str(ctx, "vip", "an IP address like \"192.0.2.100\"")?;
    match text.parse::<IpAddr>() {
        Ok(addr) => Some((addr, span)),
        Err(_) if text.contains('/') => {
            t.invalid_at(
                ctx,
                "vip",
                &span,
                "expected an address without prefix, like \"192.0.2.100\" (the prefix belongs to the instance's virtual_ips)",
            );
            None
        }
        Err(_) => {
            t.invalid_at(
                ctx,
                "vip",
                &span,
                "expected an IP address like \"192.0.2.100\" or \"2001:db8::100\"",
            );
            None
        }
    }
}

/// `forward`, `gue_port` and `tunnel_source`.
fn forwarding(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Forwarding {
    let forward = match t.str(ctx, "forward", "\"dr\", \"ipip\" or \"gue\"") {
        Some(("dr", _)) | None => Forwarding::Dr,
        Some(("ipip", _)) => Forwarding::Ipip { source: None },
        Some(("gue", _)) => Forwarding::Gue {
            port: 0,
            source: None,
        },
        Some((_, span)) => {
            t.invalid_at(
                ctx,
                "forward",
                &span,
                "expected \"dr\" (Direct Routing: real servers on this link, the default), \"ipip\" or \"gue\" (tunnels: real servers anywhere the routes reach)",
            );
            return Forwarding::Dr;
        }
    };
    let port = t
        .int(ctx, "gue_port", 1..=65535, "must be in 1..=65535")
        .and_then(|(p, _)| u16::try_from(p).ok());
    let gue = matches!(forward, Forwarding::Gue { .. });
    match t.get("gue_port") {
        None if gue => t.missing(
            ctx,
            "gue_port",
            "the UDP port the real servers' fou listens on, e.g. 6080 (`vipflip real-server` sets it up)",
        ),
        Some(value) if !gue => t.invalid(ctx, "gue_port", value, "only for forward = \"gue\""),
        _ => {}
    }
    let source = tunnel_source(ctx, t, forward.is_tunnel());
    match forward {
        Forwarding::Dr => Forwarding::Dr,
        Forwarding::Ipip { .. } => Forwarding::Ipip { source },
        Forwarding::Gue { .. } => Forwarding::Gue {
            port: port.unwrap_or(0),
            source,
        },
    }
}

/// `tunnel_source`: a prefix whose low bits vary per flow (katran's way, so a real server's
/// NIC spreads tunnelled flows over its queues), or one address.
fn tunnel_source(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, tunnel: bool) -> Option<IpNet> {
    let (text, span) = t.str(ctx, "tunnel_source", "a prefix like \"198.51.100.128/25\"")?;
    if !tunnel {
        t.invalid_at(
            ctx,
            "tunnel_source",
            &span,
            "only for a tunnel (forward = \"ipip\" or \"gue\"): Direct Routing sends the client's packet as it came",
        );
        return None;
    }
    let net = if text.contains('/') {
        text.parse::<IpNet>().ok()
    } else {
        text.parse::<IpAddr>().ok().map(IpNet::from)
    };
    let Some(net) = net else {
        t.invalid_at(
            ctx,
            "tunnel_source",
            &span,
            "expected a prefix like \"198.51.100.128/25\" (its low bits vary per flow) or one address",
        );
        return None;
    };
    if net.addr() != net.network() {
        t.invalid_at(
            ctx,
            "tunnel_source",
            &span,
            format_args!("has host bits set: did you mean \"{}\"?", net.trunc()),
        );
        return None;
    }
    if let IpNet::V6(v6) = net
        && v6.prefix_len() < 96
    {
        t.invalid_at(
            ctx,
            "tunnel_source",
            &span,
            "an IPv6 prefix must be /96 or longer: at most the last 32 bits vary per flow",
        );
        return None;
    }
    if net.addr().is_unspecified() || net.addr().is_loopback() || net.addr().is_multicast() {
        t.invalid_at(
            ctx,
            "tunnel_source",
            &span,
            "not usable as a source (unspecified, loopback or multicast)",
        );
        return None;
    }
    Some(net)
}

/// Each outer header takes a source of its real server's family.
fn tunnel_source_family(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, spec: &VirtualServerSpec) {
    let (Forwarding::Ipip { source: Some(net) }
    | Forwarding::Gue {
        source: Some(net), ..
    }) = spec.forward
    else {
        return;
    };
    let servers = spec
        .real_servers
        .iter()
        .map(|r| r.address)
        .chain(spec.sorry_server);
    for address in servers {
        if family_of(address) != family_of(net.addr()) {
            if let Some(value) = t.get("tunnel_source") {
                t.invalid(
                    ctx,
                    "tunnel_source",
                    value,
                    format_args!(
                        "an {} prefix, but server {address} is {}: each outer header takes a source of its real server's family",
                        name_of(family_of(net.addr())),
                        name_of(family_of(address))
                    ),
                );
            }
            return;
        }
    }
}

/// Direct Routing forwards the packet unchanged, so its servers are of the VIP's family
/// (`vip`; `None`: a tunnel, any family).
fn same_family_as(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    label: &str,
    span: &Range<usize>,
    addr: IpAddr,
    vip: Option<IpAddr>,
) -> Option<()> {
    let Some(vip) = vip else {
        return Some(());
    };
    if family_of(addr) != family_of(vip) {
        t.invalid_at(
            ctx,
            label,
            span,
            format_args!(
                "{} address for an {} VIP; Direct Routing forwards the packet unchanged, so servers must be of the VIP's family (a tunnel, forward = \"ipip\" or \"gue\", takes either)",
                name_of(family_of(addr)),
                name_of(family_of(vip))
            ),
        );
        return None;
    }
    Some(())
}

/// A real or sorry server's address: not the VIP, unicast.
fn server_address(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    label: &str,
    span: &Range<usize>,
    text: &str,
    vip: Option<IpAddr>,
) -> Option<IpAddr> {
    let Ok(addr) = text.parse::<IpAddr>() else {
        t.invalid_at(
            ctx,
            label,
            span,
            "expected an IP address like \"192.0.2.21\" or \"2001:db8::21\"",
        );
        return None;
    };
    if addr.is_unspecified()
        || addr.is_loopback()
        || addr.is_multicast()
        || addr == IpAddr::from([255, 255, 255, 255])
    {
        t.invalid_at(
            ctx,
            label,
            span,
            "not usable as a server (unspecified, loopback, multicast or broadcast)",
        );
        return None;
    }
    if vip == Some(addr) {
        t.invalid_at(
            ctx,
            label,
            span,
            "is the VIP itself; a server is another host, with the VIP on its loopback",
        );
        return None;
    }
    Some(addr)
}

/// `real_server`: at least one; returns where each is written.
fn real_servers(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    vip: Option<IpAddr>,
    same_family: Option<IpAddr>,
    port: Option<u16>,
    spec: &mut VirtualServerSpec,
    scripts: (&Global, &impl Host),
) -> Vec<Range<usize>> {
    let Some(value) = t.get("real_server") else {
        t.missing(
            ctx,
            "real_server",
            "at least one [[virtual_server.real_server]] with its address",
        );
        return Vec::new();
    };
    let tables = t.tables(
        ctx,
        "real_server",
        "tables: write each as [[virtual_server.real_server]]",
    );
    if matches!(value.get_ref(), DeValue::Array(a) if a.is_empty()) {
        t.invalid(
            ctx,
            "real_server",
            value,
            "a virtual server needs at least one real server",
        );
    }
    let mut seen: Vec<(IpAddr, String)> = Vec::new();
    let mut spans = Vec::new();
    for r in tables {
        r.check_keys(ctx, REAL_SERVER_KEYS, REAL_SERVER_ALIASES);
        spans.push(r.span.clone());
        let label = r.label("address");
        let address = if r.get("address").is_none() {
            r.missing(ctx, "address", "the real server's IP address");
            None
        } else {
            r.str(ctx, "address", "an IP address")
                .and_then(|(text, span)| {
                    let addr = server_address(ctx, &r, &label, &span, text, vip)?;
                    same_family_as(ctx, &r, &label, &span, addr, same_family)?;
                    if let Some((_, first)) = seen.iter().find(|(a, _)| *a == addr) {
                        r.invalid_at(
                            ctx,
                            &label,
                            &span,
                            format_args!("listed twice (also {first})"),
                        );
                        return None;
                    }
                    seen.push((addr, label.clone()));
                    Some(addr)
                })
        };
        let weight = r
            .int(
                ctx,
                "weight",
                0..=65535,
                "must be in 0..=65535 (0 drains: no new flows, existing ones kept)",
            )
            .and_then(|(w, _)| u16::try_from(w).ok())
            .unwrap_or(1);
        let check = health_check(ctx, &r, port, scripts);
        if let Some(address) = address {
            spec.real_servers.push(RealServerSpec {
                address,
                weight,
                check,
            });
        }
    }
    spans
}

/// `quorum`: 0..=the number of real servers, default 1.
fn quorum(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, servers: usize, spec: &mut VirtualServerSpec) {
    let Some((n, span)) = t.int(
        ctx,
        "quorum",
        0..=i64::from(u32::MAX),
        "must be an integer, 0 or more (healthy real servers needed)",
    ) else {
        return;
    };
    spec.quorum = u32::try_from(n).unwrap_or(1);
    let max = i64::try_from(servers).unwrap_or(i64::MAX);
    if servers > 0 && n > max {
        t.invalid_at(
            ctx,
            "quorum",
            &span,
            format_args!(
                "more than the {servers} real server{}: quorum could never be reached (0..={servers})",
                if servers == 1 { "" } else { "s" }
            ),
        );
    }
}

/// `check = { kind, … }` of a real server; `service_port` is `None` when invalid (reported).
fn health_check(
    ctx: &mut Ctx<'_>,
    r: &Table<'_, '_>,
    service_port: Option<u16>,
    (global, host): (&Global, &impl Host),
) -> Option<HealthCheck> {
    let c = r.table(
        ctx,
        "check",
        "{ kind = \"tcp\", interval = \"1s\", timeout = \"500ms\" }",
    )?;
    c.check_keys(ctx, CHECK_KEYS, CHECK_ALIASES);
    if c.get("kind").is_none() {
        c.missing(ctx, "kind", "\"tcp\", \"http\" or \"script\"");
    }
    let kind = c
        .str(ctx, "kind", "\"tcp\", \"http\" or \"script\"")
        .and_then(|(kind, span)| {
            if let Some((kind, _)) = CHECK_KIND_KEYS.iter().find(|(k, _)| *k == kind) {
                Some(*kind)
            } else {
                c.invalid_at(
                    ctx,
                    &c.label("kind"),
                    &span,
                    "expected \"tcp\" (connect), \"http\" (GET, status and optional body regex) or \"script\" (exit status)",
                );
                None
            }
        });
    if let Some(kind) = kind {
        keys_of_other_kinds(ctx, &c, kind);
    }

    let positive = |ctx: &mut Ctx<'_>, key: &str| -> Option<(Duration, Range<usize>)> {
        let (d, span) = c.duration(ctx, key)?;
        if d.is_zero() {
            c.invalid_at(ctx, &c.label(key), &span, "must be more than 0");
            return None;
        }
        Some((d, span))
    };
    let interval = positive(ctx, "interval").map_or(Duration::from_secs(1), |(d, _)| d);
    let timeout = match positive(ctx, "timeout") {
        Some((d, span)) if d > interval => {
            c.invalid_at(
                ctx,
                &c.label("timeout"),
                &span,
                format_args!(
                    "must not exceed the interval ({}): a check ends before the next one starts",
                    humantime::format_duration(interval)
                ),
            );
            interval
        }
        Some((d, _)) => d,
        None => interval.min(Duration::from_millis(500)),
    };
    let count = |ctx: &mut Ctx<'_>, key: &str| -> u32 {
        c.int(ctx, key, 1..=255, "must be in 1..=255 (results in a row)")
            .and_then(|(n, _)| u32::try_from(n).ok())
            .unwrap_or(1)
    };
    let rise = count(ctx, "rise");
    let fall = count(ctx, "fall");
    let hold_down = c
        .duration(ctx, "hold_down")
        .map_or(Duration::ZERO, |(d, _)| d);

    let kind = match kind? {
        "tcp" => CheckKind::Tcp {
            port: check_port(ctx, &c, service_port),
        },
        "http" => http(ctx, &c, service_port),
        _ => {
            // keepalived's MISC_CHECK `user USER [GROUP]`, else `script_user`.
            let run_as = RunAs {
                user: script_user(ctx, &c, "user", "group", host)
                    .or_else(|| global.script_user.clone()),
                script_security: global.script_security,
            };
            let command = command(ctx, &c, &run_as, host);
            CheckKind::Script { command, run_as }
        }
    };
    Some(HealthCheck {
        kind,
        interval,
        timeout,
        rise,
        fall,
        hold_down,
    })
}

/// Keys of a check that belong to another kind (`path` on a tcp check).
fn keys_of_other_kinds(ctx: &mut Ctx<'_>, c: &Table<'_, '_>, kind: &str) {
    for key in c.map.keys() {
        let key_name: &str = key.get_ref();
        let applies = ["kind", "interval", "timeout", "rise", "fall", "hold_down"]
            .contains(&key_name)
            || CHECK_KIND_KEYS
                .iter()
                .any(|(k, keys)| *k == kind && keys.contains(&key_name));
        let known = CHECK_KEYS.contains(&key_name);
        if known && !applies {
            let users: Vec<String> = CHECK_KIND_KEYS
                .iter()
                .filter(|(_, keys)| keys.contains(&key_name))
                .map(|(k, _)| format!("\"{k}\""))
                .collect();
            ctx.error(
                &key.span(),
                format!(
                    "{}`{}` does not apply to kind = \"{kind}\" (only to kind = {})",
                    c.context,
                    c.label(key_name),
                    users.join(" or ")
                ),
            );
        }
    }
}

/// `port` of a tcp or http check: the service's by default, required for a port-0 service.
fn check_port(ctx: &mut Ctx<'_>, c: &Table<'_, '_>, service_port: Option<u16>) -> u16 {
    if c.get("port").is_none() {
        if service_port == Some(0) {
            c.missing(
                ctx,
                "port",
                "the port to check: the service has port = 0 (every port)",
            );
        }
        return service_port.unwrap_or(0);
    }
    c.int(ctx, "port", 1..=65535, "must be in 1..=65535")
        .and_then(|(p, _)| u16::try_from(p).ok())
        .unwrap_or(0)
}

fn http(ctx: &mut Ctx<'_>, c: &Table<'_, '_>, service_port: Option<u16>) -> CheckKind {
    let port = check_port(ctx, c, service_port);
    let mut path = "/".to_owned();
    if let Some((p, span)) = c.str(ctx, "path", "a path like \"/health\"") {
        if p.starts_with('/') && !p.contains(char::is_whitespace) {
            p.clone_into(&mut path);
        } else {
            c.invalid_at(
                ctx,
                &c.label("path"),
                &span,
                "must start with \"/\" and hold no whitespace, like \"/health\"",
            );
        }
    }
    let expect_status = c
        .int(
            ctx,
            "expect_status",
            100..=599,
            "must be an HTTP status code in 100..=599",
        )
        .and_then(|(s, _)| u16::try_from(s).ok())
        .unwrap_or(200);
    let body = c
        .str(ctx, "body", "a regular expression the body must match")
        .and_then(|(re, span)| match regex::Regex::new(re) {
            Ok(re) => Some(HttpBodyMatch(re)),
            Err(e) => {
                c.invalid_at(
                    ctx,
                    &c.label("body"),
                    &span,
                    format_args!("not a valid regular expression: {}", regex_error(&e)),
                );
                None
            }
        });
    CheckKind::Http {
        port,
        path,
        expect_status,
        body,
    }
}

/// The regex crate's error on one line: its syntax errors draw the pattern over several.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim().trim_start_matches("error: ").to_owned()
}

/// `command` of a script check: an array, program first, absolute (no shell, no `$PATH`).
fn command(ctx: &mut Ctx<'_>, c: &Table<'_, '_>, run_as: &RunAs, host: &impl Host) -> Vec<String> {
    let Some(value) = c.get("command") else {
        c.missing(
            ctx,
            "command",
            "the program and its arguments, e.g. [\"/usr/lib/vipflip/check-db\", \"192.0.2.21\"]",
        );
        return Vec::new();
    };
    let items = c.strings(ctx, "command", "strings: the program, then its arguments");
    if items.is_empty() && matches!(value.get_ref(), DeValue::Array(_)) {
        c.invalid(
            ctx,
            "command",
            value,
            "must name a program, e.g. [\"/usr/lib/vipflip/check-db\", \"192.0.2.21\"]",
        );
    }
    if let Some(first) = items.first()
        && !first.text.starts_with('/')
    {
        c.invalid_at(
            ctx,
            &first.label,
            &first.span,
            "the program must be an absolute path (checks run without a shell or $PATH)",
        );
    } else if let Some(first) = items.first() {
        script_security(
            ctx,
            c,
            &first.label,
            &first.span,
            Path::new(first.text),
            run_as,
            host,
        );
    }
    items.into_iter().map(|i| i.text.to_owned()).collect()
}
