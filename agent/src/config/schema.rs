//! The schema: which keys each table has, their defaults and rules, and the checks across
//! objects (duplicates, references). Reads the spanned tree with [`reader`](super::reader);
//! an invalid value is reported and replaced by its default so that reading goes on and
//! every problem is found. A configuration with any error is never returned.
//!
//! This file reads the root and holds what the tables share (`name`, `notify`); each
//! top-level table has a module of its own.

use core::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

mod global;
mod instance;
mod routes;
mod routing;
mod script;
mod services;
mod sync_group;
mod tracking;
mod virtual_server;

use super::reader::{Alias, Ctx, Table, suggest};
use super::{Config, Diagnostic, Host, Notify};
use crate::track::security::check_script;
use crate::track::{RunAs, ScriptUser};

const ROOT_KEYS: &[&str] = &[
    "global",
    "routing",
    "announce",
    "instance",
    "script",
    "sync_group",
    "virtual_server",
    "static_address",
    "static_route",
    "static_rule",
];
const ROOT_ALIASES: &[Alias] = &[
    ("global_defs", "vipflip calls it `[global]`"),
    ("vrrp_instance", "vipflip calls it `[[instance]]`"),
    ("vrrp_script", "vipflip calls it `[[script]]`"),
    ("vrrp_sync_group", "vipflip calls it `[[sync_group]]`"),
    (
        "static_ipaddress",
        "write one `[[static_address]]` per address",
    ),
    ("static_routes", "write one `[[static_route]]` per route"),
    ("static_rules", "write one `[[static_rule]]` per rule"),
    (
        "virtual_server_group",
        "vipflip has no server groups: write one `[[virtual_server]]` per (vip, port, protocol)",
    ),
];
pub(super) fn parse(
    text: &str,
    source: &str,
    host: &impl Host,
) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut ctx = Ctx::new(text, source);
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            ctx.error(&span, format!("invalid TOML: {}", e.message()));
        }
        return Err(ctx.finish());
    }
    let root = Table::new(root.get_ref(), root.span(), String::new());
    root.check_keys(&mut ctx, ROOT_KEYS, ROOT_ALIASES);

    let global = global::global(&mut ctx, &root, host);
    let scripts: Vec<_> = top_tables(&mut ctx, &root, "script")
        .into_iter()
        .enumerate()
        .map(|(i, t)| script::script(&mut ctx, t, i, &global, host))
        .collect();
    script::check_scripts(&mut ctx, &scripts);
    let instances: Vec<_> = top_tables(&mut ctx, &root, "instance")
        .into_iter()
        .enumerate()
        .map(|(i, t)| instance::instance(&mut ctx, t, i, &global, host))
        .collect();
    instance::check_instances(&mut ctx, &instances, &scripts);
    let statics = routes::statics(&mut ctx, &root, host);
    routes::check_across(&mut ctx, &instances, &statics);
    let sync_groups: Vec<_> = top_tables(&mut ctx, &root, "sync_group")
        .into_iter()
        .enumerate()
        .map(|(i, t)| sync_group::sync_group(&mut ctx, t, i, &global, host))
        .collect();
    sync_group::check_sync_groups(&mut ctx, &sync_groups, &instances);
    let virtual_servers: Vec<_> = top_tables(&mut ctx, &root, "virtual_server")
        .into_iter()
        .enumerate()
        .map(|(i, t)| virtual_server::virtual_server(&mut ctx, t, i, &global, host))
        .collect();
    services::check(&mut ctx, &virtual_servers, &instances);
    if instances.is_empty() && virtual_servers.is_empty() && !ctx.has_errors() {
        ctx.warning(
            &(0..0),
            "no [[instance]] or [[virtual_server]] is configured: the daemon would do nothing",
        );
    }
    let routing = routing::routing(&mut ctx, &root);
    let announces: Vec<_> = top_tables(&mut ctx, &root, "announce")
        .into_iter()
        .enumerate()
        .map(|(i, t)| routing::announce(&mut ctx, t, i))
        .collect();
    let announces = routing::check_announces(&mut ctx, &announces, &instances, &virtual_servers);

    if ctx.has_errors() {
        return Err(ctx.finish());
    }
    let config = Config {
        global,
        instances: instances.into_iter().map(|i| i.spec).collect(),
        scripts: scripts.into_iter().map(|s| s.spec).collect(),
        sync_groups: sync_groups.into_iter().map(|g| g.spec).collect(),
        virtual_servers: virtual_servers.into_iter().map(|v| v.spec).collect(),
        routing,
        announces,
        statics: statics.into_statics(),
    };
    Ok((config, ctx.finish()))
}

/// The `[[key]]` tables of the document, each with an empty context for now.
fn top_tables<'a, 'i>(ctx: &mut Ctx<'_>, root: &Table<'a, 'i>, key: &str) -> Vec<Table<'a, 'i>> {
    let Some(value) = root.get(key) else {
        return Vec::new();
    };
    let DeValue::Array(items) = value.get_ref() else {
        ctx.error(
            &value.span(),
            format!("`{key}` must be an array of tables: write each as `[[{key}]]`"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        if let DeValue::Table(table) = item.get_ref() {
            out.push(Table::new(table, item.span(), String::new()));
        } else {
            ctx.error(
                &item.span(),
                format!("`{key}` must be an array of tables: write each as `[[{key}]]`"),
            );
        }
    }
    out
}

/// The `name` of an object, required and non-empty; sets the table's context to
/// `{kind} "{name}": ` (or `{kind} #{n}: ` without a usable name).
fn name(
    ctx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    kind: &str,
    index: usize,
) -> Option<(String, Range<usize>)> {
    t.context = format!("{kind} #{}: ", index + 1);
    if t.get("name").is_none() {
        t.missing(ctx, "name", "a unique name");
        return None;
    }
    let (name, span) = t.str(ctx, "name", "a unique name")?;
    if name.trim().is_empty() {
        t.invalid_at(ctx, "name", &span, "must not be empty");
        return None;
    }
    t.context = format!("{kind} \"{name}\": ");
    Some((name.to_owned(), span))
}

/// A value read from an array, with its span and label (`virtual_ips[1]`).
type Listed<T> = (T, Range<usize>, String);

const NOTIFY_KEYS: &[&str] = &["master", "backup", "fault", "stop"];
/// An instance's: keepalived has `notify_master_rx_lower_pri` for instances only.
const INSTANCE_NOTIFY_KEYS: &[&str] = &["master", "backup", "fault", "stop", "master_rx_lower_pri"];

/// `notify = { … }` with `keys`; each script checked as `run_as` runs it
/// ([`script_security`]).
fn notify(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    keys: &[&str],
    run_as: &RunAs,
    host: &impl Host,
) -> Notify {
    let mut notify = Notify::default();
    let Some(n) = t.table(ctx, "notify", "{ master = \"/etc/vipflip/master.sh\" }") else {
        return notify;
    };
    let aliases: &[Alias] = if keys.contains(&"master_rx_lower_pri") {
        &[]
    } else {
        &[(
            "master_rx_lower_pri",
            "only an [[instance]] has it (keepalived's notify_master_rx_lower_pri is per vrrp_instance)",
        )]
    };
    n.check_keys(ctx, keys, aliases);
    let script = |ctx: &mut Ctx<'_>, key: &str| {
        let path = n.abs_path(ctx, key)?;
        if let Some(value) = n.get(key) {
            script_security(ctx, &n, &n.label(key), &value.span(), &path, run_as, host);
        }
        Some(path)
    };
    notify.master = script(ctx, "master");
    notify.backup = script(ctx, "backup");
    notify.fault = script(ctx, "fault");
    notify.stop = script(ctx, "stop");
    if keys.contains(&"master_rx_lower_pri") {
        notify.master_rx_lower_pri = script(ctx, "master_rx_lower_pri");
    }
    notify
}

/// `user_key` and `group_key` of `t` (keepalived `script_user USER [GROUP]`, and a script's
/// `user USER [GROUP]`): a user of this host and, if set, the group to run as instead of
/// its primary one. An unknown name is an error: running the script as the daemon's user
/// instead would give it more rights than asked for.
fn script_user(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    user_key: &str,
    group_key: &str,
    host: &impl Host,
) -> Option<ScriptUser> {
    let user = t.str(ctx, user_key, "a user name of this host");
    let group = t.str(ctx, group_key, "a group name of this host");
    let Some((name, span)) = user else {
        if let Some((_, group_span)) = group {
            t.invalid_at(
                ctx,
                &t.label(group_key),
                &group_span,
                format_args!("needs `{user_key}`: the group replaces that user's primary group"),
            );
        }
        return None;
    };
    let Some((uid, primary_gid)) = host.user(name) else {
        t.invalid_at(ctx, &t.label(user_key), &span, "no such user on this host");
        return None;
    };
    let gid = match &group {
        Some((group, group_span)) => {
            let Some(gid) = host.group(group) else {
                t.invalid_at(
                    ctx,
                    &t.label(group_key),
                    group_span,
                    "no such group on this host",
                );
                return None;
            };
            gid
        }
        None => primary_gid,
    };
    Some(ScriptUser {
        name: name.to_owned(),
        group: group.map(|(g, _)| g.to_owned()),
        uid,
        gid,
    })
}

/// keepalived's script security check of `program` (written at `span`, shown as `label`):
/// with `script_security` an insecure script is an error, else a warning (keepalived logs
/// "Unsafe permissions found for script" and runs it). See [`crate::track::security`].
fn script_security(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    label: &str,
    span: &Range<usize>,
    program: &Path,
    run_as: &RunAs,
    host: &impl Host,
) {
    let Err(insecure) = check_script(program, run_as, host) else {
        return;
    };
    let snippet = ctx.snippet(span);
    let context = &t.context;
    if run_as.script_security {
        ctx.error(
            span,
            format!(
                "{context}{label} = {snippet}: refused by script_security: {insecure}; a script that runs with root's rights must be writable by root alone, and so must every directory above it"
            ),
        );
    } else {
        ctx.warning(
            span,
            format!(
                "{context}{label} = {snippet}: {insecure}, so others than root can change what runs with root's rights (`script_security = true` refuses such scripts)"
            ),
        );
    }
}

/// `{context}{label} = "{name}": no [[{kind}]] named "{name}"`, with the closest name or
/// the ones defined.
fn unknown_name<'n>(
    ctx: &mut Ctx<'_>,
    span: &Range<usize>,
    context: &str,
    label: &str,
    kind: &str,
    name: &str,
    known: impl Iterator<Item = &'n str> + Clone,
) {
    let known = known.filter(|n| !n.is_empty());
    let hint = match suggest(name, known.clone()) {
        Some(best) => format!("did you mean \"{best}\"?"),
        None if known.clone().next().is_none() => format!("no [[{kind}]] is defined"),
        None => format!("defined {kind}s: {}", known.collect::<Vec<_>>().join(", ")),
    };
    let snippet = ctx.snippet(span);
    ctx.error(
        span,
        format!("{context}{label} = {snippet}: no [[{kind}]] named \"{name}\"; {hint}"),
    );
}
