//! `[[script]]`: a tracked program, how often it runs and how many results in a row change
//! its state; script names are unique.

use core::ops::Range;
use core::time::Duration;
use std::collections::HashMap;
use std::path::Path;

use toml::de::DeValue;

use super::super::reader::{Alias, Ctx, Table};
use super::super::{Global, Host, ScriptSpec};
use super::{name, script_security, script_user};
use crate::track::RunAs;

const SCRIPT_KEYS: &[&str] = &[
    "name", "command", "interval", "timeout", "rise", "fall", "user", "group",
];
const SCRIPT_ALIASES: &[Alias] = &[
    (
        "script",
        "did you mean `command`? (an array: program, then arguments)",
    ),
    (
        "weight",
        "set the weight where the instance tracks it: `track_scripts = [{ name, weight }]`",
    ),
];
pub(super) struct Script {
    pub(super) spec: ScriptSpec,
    pub(super) context: String,
    pub(super) name_span: Option<Range<usize>>,
}

pub(super) fn script(
    ctx: &mut Ctx<'_>,
    mut t: Table<'_, '_>,
    index: usize,
    global: &Global,
    host: &impl Host,
) -> Script {
    let name = name(ctx, &mut t, "script", index);
    t.check_keys(ctx, SCRIPT_KEYS, SCRIPT_ALIASES);
    let run_as = RunAs {
        user: script_user(ctx, &t, "user", "group", host).or_else(|| global.script_user.clone()),
        script_security: global.script_security,
    };
    let mut command = Vec::new();
    if let Some(value) = t.get("command") {
        let items = t.strings(ctx, "command", "strings: the program, then its arguments");
        if items.is_empty() && matches!(value.get_ref(), DeValue::Array(_)) {
            t.invalid(
                ctx,
                "command",
                value,
                "must name a program, e.g. [\"/usr/bin/curl\", \"-fsS\", \"http://127.0.0.1/health\"]",
            );
        }
        if let Some(first) = items.first()
            && !first.text.starts_with('/')
        {
            t.invalid_at(
                ctx,
                &first.label,
                &first.span,
                "the program must be an absolute path (scripts run without a shell or $PATH)",
            );
        } else if let Some(first) = items.first() {
            script_security(
                ctx,
                &t,
                &first.label,
                &first.span,
                Path::new(first.text),
                &run_as,
                host,
            );
        }
        command = items.into_iter().map(|i| i.text.to_owned()).collect();
    } else {
        t.missing(ctx, "command", "the program and its arguments, e.g. [\"/usr/bin/curl\", \"-fsS\", \"http://127.0.0.1/health\"]");
    }
    let positive = |ctx: &mut Ctx<'_>, key: &str| -> Option<Duration> {
        let (d, span) = t.duration(ctx, key)?;
        if d.is_zero() {
            t.invalid_at(ctx, key, &span, "must be more than 0");
            return None;
        }
        Some(d)
    };
    let interval = positive(ctx, "interval").unwrap_or(Duration::from_secs(1));
    let timeout = positive(ctx, "timeout").unwrap_or(interval);
    let count = |ctx: &mut Ctx<'_>, key: &str| -> u32 {
        t.int(
            ctx,
            key,
            1..=i64::from(u32::MAX),
            "must be at least 1 (results in a row)",
        )
        .and_then(|(n, _)| u32::try_from(n).ok())
        .unwrap_or(1)
    };
    let rise = count(ctx, "rise");
    let fall = count(ctx, "fall");
    Script {
        spec: ScriptSpec {
            name: name.as_ref().map(|(n, _)| n.clone()).unwrap_or_default(),
            command,
            interval,
            timeout,
            rise,
            fall,
            run_as,
        },
        context: t.context.clone(),
        name_span: name.map(|(_, span)| span),
    }
}

pub(super) fn check_scripts(ctx: &mut Ctx<'_>, scripts: &[Script]) {
    let mut names: HashMap<&str, &Range<usize>> = HashMap::new();
    for s in scripts {
        let Some(span) = &s.name_span else { continue };
        if let Some(first) = names.get(s.spec.name.as_str()) {
            let line = ctx.line(first);
            ctx.error(
                span,
                format!(
                    "{}name \"{}\" is already used by the script at line {line}; script names must be unique",
                    s.context, s.spec.name
                ),
            );
        } else {
            names.insert(&s.spec.name, span);
        }
    }
}
