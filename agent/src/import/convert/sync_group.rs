//! `vrrp_sync_group`: its membership, read before the instances (their tracking weights
//! depend on it), and the `[[sync_group]]` written after them.

use super::super::parse::{Stmt, Word};
use super::notify::NOTIFY_ANY;
use super::{Conv, GroupOut, NO_EQUIVALENT, NO_MAIL, Notify, Section};

/// A `vrrp_sync_group`'s membership, read before the instances.
pub(super) struct GroupDef<'s> {
    stmt: &'s Stmt,
    pub(super) name: String,
    pub(super) members: Vec<&'s Word>,
    pub(super) tracking_weight: bool,
}

impl<'s> Conv<'s> {
    pub(super) fn group_def(&mut self, stmt: &'s Stmt) -> Option<GroupDef<'s>> {
        let Some(name) = stmt.args().first() else {
            self.error(stmt.loc(), "`vrrp_sync_group` needs a name");
            return None;
        };
        let mut members = Vec::new();
        let mut tracking_weight = false;
        for s in stmt.children() {
            match s.keyword() {
                "group" => members.extend(s.children().iter().flat_map(|m| m.words.iter())),
                "sync_group_tracking_weight" | "global_tracking" => tracking_weight = true,
                _ => {}
            }
        }
        Some(GroupDef {
            stmt,
            name: name.text.clone(),
            members,
            tracking_weight,
        })
    }

    pub(super) fn group(&mut self, g: &GroupDef<'_>) {
        let section = Section::SyncGroup(self.out.sync_groups.len());
        let mut out = GroupOut {
            name: g.name.clone(),
            instances: Vec::new(),
            notify: Notify::default(),
        };
        for m in &g.members {
            if self.out.instances.iter().any(|i| i.name == m.text) {
                if !out.instances.contains(&m.text) {
                    out.instances.push(m.text.clone());
                }
            } else {
                self.lost(
                    m.loc,
                    section,
                    m.text.clone(),
                    "no vrrp_instance of this name; keepalived ignores it too, and so does the import",
                );
            }
        }
        for s in g.stmt.children() {
            match s.keyword() {
                "group" => {}
                "sync_group_tracking_weight" | "global_tracking" => self.note(
                    s.loc(),
                    section,
                    s.keyword(),
                    "members keep their tracking weights",
                ),
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                    self.notify(s, section, &mut out.notify);
                }
                "notify" => self.lost(s.loc(), section, s.text(), NOTIFY_ANY),
                "smtp_alert" => self.lost(s.loc(), section, s.text(), NO_MAIL),
                "track_interface" | "track_script" | "track_file" => self.lost(
                    s.loc(),
                    section,
                    s.keyword(),
                    "vipflip tracks objects per instance: track them in each member instead",
                ),
                _ => self.lost(s.loc(), section, s.text(), NO_EQUIVALENT),
            }
        }
        self.out.sync_groups.push(out);
    }
}
