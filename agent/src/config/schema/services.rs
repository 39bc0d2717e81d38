//! The checks across `[[virtual_server]]`s: unique names and (vip, port, protocol), each
//! service's home (an instance that holds its VIP, or an interface whose VIP no instance
//! holds), and the data plane's capacity per interface.

use core::ops::Range;
use std::collections::HashMap;
use std::net::IpAddr;

use vipflip_common::{MAX_REALS, MAX_SERVICES};

use super::super::reader::Ctx;
use super::super::{LbProtocol, ServiceHome, VirtualServerSpec};
use super::instance::Instance;
use super::unknown_name;
use super::virtual_server::VirtualServer;

/// Duplicate names and (vip, port, protocol), the instance and its VIP, and the data
/// plane's capacity per interface (`MAX_SERVICES` services, `MAX_REALS` real and sorry
/// servers: the maps are per interface).
pub(super) fn check(ctx: &mut Ctx<'_>, services: &[VirtualServer], instances: &[Instance]) {
    let mut names: HashMap<&str, &Range<usize>> = HashMap::new();
    let mut keys: HashMap<(IpAddr, u16, LbProtocol), &VirtualServer> = HashMap::new();
    // Per interface: services and servers so far, and whether each limit was reported.
    let mut capacity: HashMap<&str, (u32, u32, bool, bool)> = HashMap::new();
    for vs in services {
        if let Some((name, span)) = &vs.name {
            if let Some(first) = names.get(name.as_str()) {
                let line = ctx.line(first);
                ctx.error(
                    span,
                    format!(
                        "{}name \"{name}\" is already used by the virtual_server at line {line}; virtual_server names must be unique",
                        vs.context
                    ),
                );
            } else {
                names.insert(name, span);
            }
        }
        if let (Some(_), Some(port_span)) = (&vs.vip, &vs.port) {
            let key = (vs.spec.vip, vs.spec.port, vs.spec.protocol);
            if let Some(first) = keys.get(&key) {
                let snippet = ctx.snippet(port_span);
                let line = ctx.line(&first.span);
                ctx.error(
                    port_span,
                    format!(
                        "{}port = {snippet}: {} is already served by virtual_server \"{}\" (line {line}); one virtual_server per (vip, port, protocol)",
                        vs.context,
                        service_text(&vs.spec),
                        first.spec.name
                    ),
                );
            } else {
                keys.insert(key, vs);
            }
        }
        let Some(iface) = interface_of(ctx, vs, instances) else {
            continue;
        };
        if iface.is_empty() {
            continue;
        }
        let (n_services, n_servers, services_full, servers_full) =
            capacity.entry(iface).or_default();
        *n_services += 1;
        if *n_services > MAX_SERVICES && !*services_full {
            *services_full = true;
            let span = vs.name.as_ref().map_or(&vs.span, |(_, s)| s);
            ctx.error(
                span,
                format!(
                    "{}one virtual_server too many on {}: the data plane holds at most {MAX_SERVICES} services per interface (MAX_SERVICES)",
                    vs.context, iface
                ),
            );
        }
        for span in &vs.servers {
            *n_servers += 1;
            if *n_servers > MAX_REALS && !*servers_full {
                *servers_full = true;
                ctx.error(
                    span,
                    format!(
                        "{}one server too many on {}: the data plane holds at most {MAX_REALS} real and sorry servers per interface, across its services (MAX_REALS)",
                        vs.context, iface
                    ),
                );
            }
        }
    }
}

/// `192.0.2.100:80/tcp`, `[2001:db8::1]:0/udp`.
fn service_text(spec: &VirtualServerSpec) -> String {
    let proto = match spec.protocol {
        LbProtocol::Tcp => "tcp",
        LbProtocol::Udp => "udp",
    };
    match spec.vip {
        IpAddr::V4(a) => format!("{a}:{}/{proto}", spec.port),
        IpAddr::V6(a) => format!("[{a}]:{}/{proto}", spec.port),
    }
}

/// The interface the service's real servers are reached over, after checking its home: an
/// instance that exists and holds the VIP, or an interface whose VIP no instance holds.
fn interface_of<'i>(
    ctx: &mut Ctx<'_>,
    vs: &'i VirtualServer,
    instances: &'i [Instance],
) -> Option<&'i str> {
    match &vs.spec.home {
        ServiceHome::Instance(_) => {
            let inst = instance_of(ctx, vs, instances)?;
            if let Some(vip_span) = &vs.vip
                && !inst
                    .spec
                    .virtual_ips
                    .iter()
                    .any(|n| n.addr() == vs.spec.vip)
            {
                not_a_vip(ctx, vs, vip_span, inst, instances);
            }
            Some(&inst.spec.interface)
        }
        ServiceHome::Interface(iface) => {
            if let Some(vip_span) = &vs.vip
                && let Some(owner) = instances
                    .iter()
                    .find(|i| i.spec.virtual_ips.iter().any(|n| n.addr() == vs.spec.vip))
            {
                let snippet = ctx.snippet(vip_span);
                ctx.error(
                    vip_span,
                    format!(
                        "{}vip = {snippet}: is a virtual IP of instance \"{}\", whose election decides where it is live; set instance = \"{}\" instead of `interface`, or give this service a VIP of its own",
                        vs.context, owner.spec.name, owner.spec.name
                    ),
                );
            }
            Some(iface)
        }
    }
}

/// The service's instance, or `None` after reporting an unknown name.
fn instance_of<'i>(
    ctx: &mut Ctx<'_>,
    vs: &VirtualServer,
    instances: &'i [Instance],
) -> Option<&'i Instance> {
    let span = vs.home.as_ref()?;
    let ServiceHome::Instance(name) = &vs.spec.home else {
        return None;
    };
    if let Some(inst) = instances.iter().find(|i| i.spec.name == *name) {
        return Some(inst);
    }
    let known = instances.iter().map(|i| i.spec.name.as_str());
    unknown_name(ctx, span, &vs.context, "instance", "instance", name, known);
    None
}

fn not_a_vip(
    ctx: &mut Ctx<'_>,
    vs: &VirtualServer,
    span: &Range<usize>,
    inst: &Instance,
    instances: &[Instance],
) {
    let vip = vs.spec.vip;
    let has: Vec<String> = inst
        .spec
        .virtual_ips
        .iter()
        .map(|n| n.addr().to_string())
        .collect();
    let owner = instances
        .iter()
        .find(|i| i.spec.virtual_ips.iter().any(|n| n.addr() == vip));
    let hint = match owner {
        Some(other) => format!(
            "{vip} belongs to instance \"{}\": set instance = \"{}\"",
            other.spec.name, other.spec.name
        ),
        None => format!("add {vip} to its virtual_ips, or use one of them"),
    };
    let snippet = ctx.snippet(span);
    ctx.error(
        span,
        format!(
            "{}vip = {snippet}: not a virtual IP of instance \"{}\" (it has {}); {hint}",
            vs.context,
            inst.spec.name,
            if has.is_empty() {
                "none".to_owned()
            } else {
                has.join(", ")
            }
        ),
    );
}
