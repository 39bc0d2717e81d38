//! `[[sync_group]]`: instances that change state together, and the checks on their members
//! (each a known instance, in one group at most, listed once) and on group names.

use core::ops::Range;
use std::collections::HashMap;

use super::super::reader::{Alias, Ctx, Table};
use super::super::{Global, Host, SyncGroupSpec};
use super::instance::Instance;
use super::{Listed, NOTIFY_KEYS, name, notify, unknown_name};

const SYNC_GROUP_KEYS: &[&str] = &["name", "instances", "notify"];
const SYNC_GROUP_ALIASES: &[Alias] = &[("group", "did you mean `instances`?")];

pub(super) struct SyncGroup {
    pub(super) spec: SyncGroupSpec,
    context: String,
    name_span: Option<Range<usize>>,
    members: Vec<Listed<String>>,
    span: Range<usize>,
}

pub(super) fn sync_group(
    ctx: &mut Ctx<'_>,
    mut t: Table<'_, '_>,
    index: usize,
    global: &Global,
    host: &impl Host,
) -> SyncGroup {
    let name = name(ctx, &mut t, "sync_group", index);
    t.check_keys(ctx, SYNC_GROUP_KEYS, SYNC_GROUP_ALIASES);
    if t.get("instances").is_none() {
        t.missing(
            ctx,
            "instances",
            "the names of the [[instance]]s that change state together",
        );
    }
    let members: Vec<_> = t
        .strings(ctx, "instances", "instance names")
        .into_iter()
        .map(|i| (i.text.to_owned(), i.span, i.label))
        .collect();
    let notify = notify(ctx, &t, NOTIFY_KEYS, &global.run_as(), host);
    SyncGroup {
        spec: SyncGroupSpec {
            name: name.as_ref().map(|(n, _)| n.clone()).unwrap_or_default(),
            instances: members.iter().map(|(n, _, _)| n.clone()).collect(),
            notify,
        },
        context: t.context.clone(),
        name_span: name.map(|(_, span)| span),
        members,
        span: t.span.clone(),
    }
}

/// Unknown members, an instance in two groups or twice in one, duplicate group names.
pub(super) fn check_sync_groups(ctx: &mut Ctx<'_>, groups: &[SyncGroup], instances: &[Instance]) {
    let mut names: HashMap<&str, &Range<usize>> = HashMap::new();
    let mut owner: HashMap<&str, (&SyncGroup, &Range<usize>)> = HashMap::new();
    for g in groups {
        if let Some(span) = &g.name_span {
            if let Some(first) = names.get(g.spec.name.as_str()) {
                let line = ctx.line(first);
                ctx.error(
                    span,
                    format!(
                        "{}name \"{}\" is already used by the sync_group at line {line}; sync_group names must be unique",
                        g.context, g.spec.name
                    ),
                );
            } else {
                names.insert(&g.spec.name, span);
            }
        }
        for (member, span, label) in &g.members {
            let snippet = ctx.snippet(span);
            if !instances.iter().any(|i| i.spec.name == *member) {
                let known = instances.iter().map(|i| i.spec.name.as_str());
                unknown_name(ctx, span, &g.context, label, "instance", member, known);
                continue;
            }
            match owner.get(member.as_str()) {
                Some((other, _)) if core::ptr::eq(*other, g) => ctx.error(
                    span,
                    format!(
                        "{}{label} = {snippet}: \"{member}\" is listed twice",
                        g.context
                    ),
                ),
                Some((other, first)) => {
                    let line = ctx.line(first);
                    ctx.error(
                        span,
                        format!(
                            "{}{label} = {snippet}: \"{member}\" is already in sync_group \"{}\" (line {line}); an instance belongs to at most one sync group",
                            g.context, other.spec.name
                        ),
                    );
                }
                None => {
                    owner.insert(member, (g, span));
                }
            }
        }
        if g.members.len() == 1 {
            ctx.warning(
                &g.span,
                format!(
                    "{}has one instance; a sync group only matters with two or more",
                    g.context
                ),
            );
        }
    }
}
