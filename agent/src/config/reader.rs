//! Reading the spanned TOML tree: typed getters that report, rather than stop at, what is
//! wrong, and the unknown-key check with its "did you mean" suggestion.
//!
//! Every message has the shape `{context}{path}{key} = {value as written}: {why and what is
//! valid}`, where `context` names the object (`instance "VI_1": `) and `path` the nested table
//! (`garp.`).

use core::fmt::Display;
use core::ops::Range;
use core::time::Duration;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::diagnostic::{Diagnostic, LineIndex, Severity};

/// A value as it sits in the tree.
pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// The diagnostics collected so far, and what is needed to place them.
pub(super) struct Ctx<'s> {
    pub(super) text: &'s str,
    source: &'s str,
    lines: LineIndex<'s>,
    diags: Vec<(usize, Diagnostic)>,
}

impl<'s> Ctx<'s> {
    pub(super) fn new(text: &'s str, source: &'s str) -> Self {
        Self {
            text,
            source,
            lines: LineIndex::new(text),
            diags: Vec::new(),
        }
    }

    pub(super) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.push(Severity::Error, span, message.into());
    }

    pub(super) fn warning(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.push(Severity::Warning, span, message.into());
    }

    fn push(&mut self, severity: Severity, span: &Range<usize>, message: String) {
        let diag = Diagnostic {
            severity,
            source: self.source.to_owned(),
            location: Some(self.lines.locate_span(span)),
            message,
        };
        self.diags.push((span.start, diag));
    }

    pub(super) fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// How many errors so far: an entry that added some is not turned into a spec.
    pub(super) fn error_count(&self) -> usize {
        self.diags.iter().filter(|(_, d)| d.is_error()).count()
    }

    /// The line a span starts on, for "defined at line N" hints.
    pub(super) fn line(&self, span: &Range<usize>) -> usize {
        self.lines.locate_span(span).line
    }

    /// Every diagnostic in file order (stable for one position).
    pub(super) fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|(offset, _)| *offset);
        self.diags.into_iter().map(|(_, d)| d).collect()
    }

    /// The value's text as written, on one line and at most 60 characters.
    pub(super) fn snippet(&self, span: &Range<usize>) -> String {
        let raw = self.text.get(span.clone()).unwrap_or("").trim();
        let first = raw.lines().next().unwrap_or("");
        let mut out: String = first.chars().take(60).collect();
        if out.len() < raw.len() {
            out.push('…');
        }
        out
    }
}

/// One TOML table being read, with the words that locate it in messages.
#[derive(Clone)]
pub(super) struct Table<'a, 'i> {
    pub(super) map: &'a DeTable<'i>,
    pub(super) span: Range<usize>,
    /// Names the object: `instance "VI_1": ` (empty at the top level).
    pub(super) context: String,
    /// Names the nested table inside the object: `garp.`, `track_files[0].`.
    pub(super) path: String,
}

/// A keepalived key (or a near miss) and what to say instead of a plain "did you mean".
pub(super) type Alias = (&'static str, &'static str);

impl<'a, 'i> Table<'a, 'i> {
    pub(super) fn new(map: &'a DeTable<'i>, span: Range<usize>, context: String) -> Self {
        Self {
            map,
            span,
            context,
            path: String::new(),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.map.get(key)
    }

    /// The label of `key` in messages: `garp.repeat`.
    pub(super) fn label(&self, key: &str) -> String {
        format!("{}{key}", self.path)
    }

    /// Reports every key not in `known`, suggesting the closest known one.
    pub(super) fn check_keys(&self, ctx: &mut Ctx<'_>, known: &[&str], aliases: &[Alias]) {
        for key in self.map.keys() {
            let name: &str = key.get_ref();
            if known.contains(&name) {
                continue;
            }
            let hint = if let Some((_, hint)) = aliases.iter().find(|(alias, _)| *alias == name) {
                (*hint).to_owned()
            } else if let Some(best) = suggest(name, known.iter().copied()) {
                format!("did you mean `{}{best}`?", self.path)
            } else {
                format!("valid keys here: {}", known.join(", "))
            };
            ctx.error(
                &key.span(),
                format!("{}unknown key `{}`; {hint}", self.context, self.label(name)),
            );
        }
    }

    /// `{context}{path}{key} = {value}: {why}` at the value.
    pub(super) fn invalid(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        value: &Value<'_>,
        why: impl Display,
    ) {
        self.invalid_at(ctx, &self.label(key), &value.span(), why);
    }

    /// Like [`Table::invalid`] for a label built by the caller (`virtual_ips[1]`).
    pub(super) fn invalid_at(
        &self,
        ctx: &mut Ctx<'_>,
        label: &str,
        span: &Range<usize>,
        why: impl Display,
    ) {
        let snippet = ctx.snippet(span);
        ctx.error(span, format!("{}{label} = {snippet}: {why}", self.context));
    }

    /// A required key is absent: reported at the table.
    pub(super) fn missing(&self, ctx: &mut Ctx<'_>, key: &str, what: &str) {
        ctx.error(
            &self.span,
            format!("{}missing `{}` ({what})", self.context, self.label(key)),
        );
    }

    /// A nested table of this one, or an error if `key` holds something else.
    pub(super) fn table(&self, ctx: &mut Ctx<'_>, key: &str, what: &str) -> Option<Self> {
        let value = self.get(key)?;
        let DeValue::Table(table) = value.get_ref() else {
            self.invalid(
                ctx,
                key,
                value,
                format_args!("expected a table like {what}"),
            );
            return None;
        };
        Some(Self {
            map: table,
            span: value.span(),
            context: self.context.clone(),
            path: format!("{}{key}.", self.path),
        })
    }

    pub(super) fn str(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        what: &str,
    ) -> Option<(&'a str, Range<usize>)> {
        let value = self.get(key)?;
        if let DeValue::String(s) = value.get_ref() {
            Some((s.as_ref(), value.span()))
        } else {
            self.invalid(ctx, key, value, format_args!("expected a string: {what}"));
            None
        }
    }

    pub(super) fn bool(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<bool> {
        let value = self.get(key)?;
        if let DeValue::Boolean(b) = value.get_ref() {
            Some(*b)
        } else {
            self.invalid(ctx, key, value, "expected true or false");
            None
        }
    }

    /// An integer in `range`, or an error saying `why` the range is what it is.
    pub(super) fn int(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        range: core::ops::RangeInclusive<i64>,
        why: &str,
    ) -> Option<(i64, Range<usize>)> {
        let value = self.get(key)?;
        let n = match value.get_ref() {
            DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix()).ok(),
            _ => None,
        };
        match n {
            Some(n) if range.contains(&n) => Some((n, value.span())),
            _ => {
                self.invalid(ctx, key, value, why);
                None
            }
        }
    }

    /// A duration string (`"1s"`, `"100ms"`, `"1m 30s"`).
    pub(super) fn duration(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
    ) -> Option<(Duration, Range<usize>)> {
        let value = self.get(key)?;
        if let DeValue::String(s) = value.get_ref() {
            match humantime::parse_duration(s) {
                Ok(d) => return Some((d, value.span())),
                Err(e) => {
                    self.invalid(
                        ctx,
                        key,
                        value,
                        format_args!(
                            "{e}; expected a duration like \"1s\", \"100ms\" or \"1m 30s\""
                        ),
                    );
                    return None;
                }
            }
        }
        self.invalid(
            ctx,
            key,
            value,
            "expected a duration string like \"1s\", \"100ms\" or \"1m 30s\"",
        );
        None
    }

    /// An absolute path.
    pub(super) fn abs_path(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<PathBuf> {
        let (s, span) = self.str(ctx, key, "an absolute path")?;
        if s.starts_with('/') {
            Some(PathBuf::from(s))
        } else {
            self.invalid_at(ctx, &self.label(key), &span, "must be an absolute path");
            None
        }
    }

    /// An array, or an error if `key` holds something else.
    pub(super) fn array(
        &self,
        ctx: &mut Ctx<'_>,
        key: &str,
        what: &str,
    ) -> Option<&'a DeArray<'i>> {
        let value = self.get(key)?;
        if let DeValue::Array(array) = value.get_ref() {
            Some(array)
        } else {
            self.invalid(ctx, key, value, format_args!("expected an array of {what}"));
            None
        }
    }

    /// The tables of an array of tables (`track_files = [{ … }]`), each with its path
    /// (`track_files[0].`); other elements are reported.
    pub(super) fn tables(&self, ctx: &mut Ctx<'_>, key: &str, what: &str) -> Vec<Self> {
        let Some(array) = self.array(ctx, key, what) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in array.iter().enumerate() {
            let label = format!("{}[{i}]", self.label(key));
            if let DeValue::Table(table) = item.get_ref() {
                out.push(Self {
                    map: table,
                    span: item.span(),
                    context: self.context.clone(),
                    path: format!("{label}."),
                });
            } else {
                self.invalid_at(ctx, &label, &item.span(), format_args!("expected {what}"));
            }
        }
        out
    }

    /// The strings of an array of strings, with their labels (`virtual_ips[1]`) and spans;
    /// other elements are reported.
    pub(super) fn strings(&self, ctx: &mut Ctx<'_>, key: &str, what: &str) -> Vec<Item<'a>> {
        let Some(array) = self.array(ctx, key, what) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in array.iter().enumerate() {
            let label = format!("{}[{i}]", self.label(key));
            if let DeValue::String(s) = item.get_ref() {
                out.push(Item {
                    text: s.as_ref(),
                    label,
                    span: item.span(),
                });
            } else {
                self.invalid_at(ctx, &label, &item.span(), format_args!("expected {what}"));
            }
        }
        out
    }
}

/// One string element of an array.
pub(super) struct Item<'a> {
    pub(super) text: &'a str,
    pub(super) label: String,
    pub(super) span: Range<usize>,
}

/// The candidate closest to `got`, if it is close enough to be what was meant.
pub(super) fn suggest<'c>(got: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    // The first of equally close candidates wins, so suggestions follow the file's order.
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(got, c);
        if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}
