//! An instance's `track_interfaces`, `track_scripts` and `track_files` entries, and the
//! tracker-style weight they (and a virtual server's `quorum_weight`) carry.

use core::ops::Range;

use super::super::reader::{Ctx, Table};
use super::super::{InstanceSpec, TrackFile, TrackInterface, TrackScript, Weight};
use super::Listed;

const TRACK_INTERFACE_KEYS: &[&str] = &["name", "weight"];
const TRACK_SCRIPT_KEYS: &[&str] = &["name", "weight"];
const TRACK_FILE_KEYS: &[&str] = &["path", "weight"];
const WEIGHT_RULE: &str = "must be an integer in -254..=254 (0 = fault while failing)";

fn weight(ctx: &mut Ctx<'_>, t: &Table<'_, '_>) -> Weight {
    weight_at(ctx, t, "weight").unwrap_or(Weight(0))
}

/// A tracker-style weight (-254..=254, 0 = fault) under `key`; `None` if absent or invalid.
pub(super) fn weight_at(ctx: &mut Ctx<'_>, t: &Table<'_, '_>, key: &str) -> Option<Weight> {
    t.int(ctx, key, -254..=254, WEIGHT_RULE)
        .and_then(|(w, _)| i16::try_from(w).ok())
        .map(Weight)
}

/// A required string field of a tracking entry.
fn required_str(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    key: &str,
    what: &str,
) -> Option<(String, Range<usize>)> {
    if t.get(key).is_none() {
        t.missing(ctx, key, what);
        return None;
    }
    let (s, span) = t.str(ctx, key, what)?;
    if s.is_empty() {
        t.invalid_at(ctx, &t.label(key), &span, "must not be empty");
        return None;
    }
    Some((s.to_owned(), span))
}

/// `track_interfaces`, `track_scripts`, `track_files`; returns the script references for
/// the check against `[[script]]` names.
pub(super) fn tracking(
    ctx: &mut Ctx<'_>,
    t: &Table<'_, '_>,
    spec: &mut InstanceSpec,
) -> Vec<Listed<String>> {
    for e in t.tables(
        ctx,
        "track_interfaces",
        "tables like { name = \"eth1\", weight = -50 }",
    ) {
        e.check_keys(ctx, TRACK_INTERFACE_KEYS, &[]);
        let name = required_str(ctx, &e, "name", "the tracked interface");
        let weight = weight(ctx, &e);
        if let Some((name, _)) = name {
            spec.track_interfaces.push(TrackInterface { name, weight });
        }
    }
    let mut refs = Vec::new();
    for e in t.tables(
        ctx,
        "track_scripts",
        "tables like { name = \"chk_web\", weight = -30 }",
    ) {
        e.check_keys(ctx, TRACK_SCRIPT_KEYS, &[]);
        let name = required_str(ctx, &e, "name", "the name of a [[script]]");
        let weight = weight(ctx, &e);
        if let Some((name, span)) = name {
            refs.push((name.clone(), span, e.label("name")));
            spec.track_scripts.push(TrackScript { name, weight });
        }
    }
    for e in t.tables(
        ctx,
        "track_files",
        "tables like { path = \"/run/vipflip/prio\", weight = 1 }",
    ) {
        e.check_keys(ctx, TRACK_FILE_KEYS, &[]);
        if e.get("path").is_none() {
            e.missing(ctx, "path", "the absolute path of the tracked file");
        }
        let path = e.abs_path(ctx, "path");
        let weight = weight(ctx, &e);
        if let Some(path) = path {
            spec.track_files.push(TrackFile { path, weight });
        }
    }
    refs
}
