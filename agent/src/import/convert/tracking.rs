//! What an instance tracks: `track_file` definitions, the `weight` after a tracked name, and
//! settling the weights (sync group members, positive weights on a raised priority).

use super::super::parse::{Loc, Stmt, Word};
use super::{Conv, NO_EQUIVALENT, Section};

/// A `track_file` definition.
pub(super) struct TrackFileDef {
    pub(super) path: String,
    pub(super) weight: i64,
}

/// A tracked object of an instance before weights are settled.
pub(super) struct Track {
    pub(super) kind: TrackKind,
    pub(super) target: String,
    pub(super) weight: i64,
    pub(super) loc: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TrackKind {
    Interface,
    Script,
    File,
}

impl Conv<'_> {
    pub(super) fn track_file(&mut self, stmt: &Stmt) -> Option<(String, TrackFileDef)> {
        let Some(name) = stmt.args().first() else {
            self.error(stmt.loc(), format!("`{}` needs a name", stmt.keyword()));
            return None;
        };
        let mut path = None;
        let mut weight = 1;
        for s in stmt.children() {
            match s.keyword() {
                "file" => path = self.value(s).map(|w| w.text.clone()),
                "weight" => {
                    if let Some(w) = self.track_weight(&s.words, Section::Header, "track_file", 1) {
                        weight = w;
                    }
                }
                _ => self.lost(
                    s.loc(),
                    Section::Header,
                    s.text(),
                    if s.keyword() == "init_file" {
                        "vipflip does not create or initialise tracked files; create it before starting vipflip"
                    } else {
                        NO_EQUIVALENT
                    },
                ),
            }
        }
        let Some(path) = path else {
            self.error(stmt.loc(), format!("track_file {}: no `file`", name.text));
            return None;
        };
        if !path.starts_with('/') {
            self.error(
                stmt.loc(),
                format!(
                    "track_file {}: `file {path}`: vipflip needs an absolute path",
                    name.text
                ),
            );
            return None;
        }
        Some((name.text.clone(), TrackFileDef { path, weight }))
    }

    /// `weight N [reverse]` after a tracked name (`words[1..]`), `default` without a
    /// `weight`; `None` if invalid (reported) or reversed (reported as not carried).
    pub(super) fn track_weight(
        &mut self,
        words: &[Word],
        section: Section,
        what: &str,
        default: i64,
    ) -> Option<i64> {
        let mut weight = default;
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            match w.text.as_str() {
                "weight" => {
                    let Some(n) = words.get(i + 1) else {
                        self.error(w.loc, format!("{what}: `weight` needs a value"));
                        return None;
                    };
                    match n.text.parse::<i64>() {
                        Ok(v) if (-254..=254).contains(&v) => weight = v,
                        _ => {
                            self.error(
                                n.loc,
                                format!(
                                    "{what}: `weight {}`: expected an integer in -254..=254",
                                    n.text
                                ),
                            );
                            return None;
                        }
                    }
                    i += 2;
                }
                "reverse" => {
                    self.lost(
                        w.loc,
                        section,
                        format!("{what} reverse"),
                        "vipflip has no reversed tracking (the weight applies while the object fails); the entry is left out",
                    );
                    return None;
                }
                "noreverse" | "no_reverse" => i += 1,
                _ => {
                    self.lost(w.loc, section, format!("{what} {}", w.text), NO_EQUIVALENT);
                    i += 1;
                }
            }
        }
        Some(weight)
    }

    /// Settles tracking weights (see the module docs): sync group members get 0, positive
    /// weights become negative ones on a raised priority.
    pub(super) fn weights(
        &mut self,
        mut tracks: Vec<Track>,
        priority: &mut u8,
        group: Option<(&str, bool)>,
        sec: Section,
    ) -> Vec<Track> {
        if let Some((group, false)) = group {
            if let Some(first) = tracks.iter().find(|t| t.weight != 0) {
                self.note(
                    first.loc,
                    sec,
                    "weight",
                    format!("in vrrp_sync_group {group}, keepalived sets tracking weights to 0 (fault while failing) unless the group has sync_group_tracking_weight; so does the import"),
                );
            }
            for t in &mut tracks {
                t.weight = 0;
            }
            return tracks;
        }
        if *priority == 255 {
            if let Some(first) = tracks
                .iter()
                .find(|t| t.weight != 0 && t.kind != TrackKind::File)
            {
                self.lost(
                    first.loc,
                    sec,
                    "weight",
                    "keepalived never changes an address owner's priority (255); vipflip applies the weights: remove them, or lower the priority",
                );
            }
            return tracks;
        }
        let raise: i64 = tracks
            .iter()
            .filter(|t| t.kind != TrackKind::File && t.weight > 0)
            .map(|t| t.weight)
            .sum();
        let Some(first) = tracks
            .iter()
            .find(|t| t.kind != TrackKind::File && t.weight > 0)
        else {
            return tracks;
        };
        let first = first.loc;
        let wanted = i64::from(*priority) + raise;
        let new = wanted.min(254);
        if wanted > 254 {
            self.lost(
                first,
                sec,
                "weight",
                format!("positive weights: priority {priority} + {raise} = {wanted}; keepalived caps the effective priority at 254 while vipflip starts from 254, so priorities differ while objects fail"),
            );
        } else {
            self.note(
                first,
                sec,
                "weight",
                format!("keepalived adds positive weights while the object is up; vipflip subtracts while it fails: priority {priority} + {raise} = {new}, and each positive weight becomes negative"),
            );
        }
        *priority = u8::try_from(new).unwrap_or(254);
        for t in &mut tracks {
            if t.kind != TrackKind::File && t.weight > 0 {
                t.weight = -t.weight;
            }
        }
        tracks
    }
}
