//! `notify_master|backup|fault|stop` of an instance or a sync group, an instance's
//! `notify_master_rx_lower_pri`, and why keepalived's catch-all `notify` is not carried.

use super::super::parse::{Stmt, join};
use super::{Conv, Notify, Section};

pub(super) const NOTIFY_ANY: &str = "vipflip has no catch-all notify program called with the new state; use notify_master/backup/fault/stop, or global.notify_fifo (one line per state change)";

impl Conv<'_> {
    /// `notify_master|backup|fault|stop|master_rx_lower_pri PROGRAM [user [group]]`.
    pub(super) fn notify(&mut self, s: &Stmt, section: Section, notify: &mut Notify) {
        let Some(program) = s.args().first() else {
            self.error(s.loc(), format!("`{}` needs a program", s.keyword()));
            return;
        };
        let text = program.text.trim();
        if text.contains(char::is_whitespace) {
            self.lost(
                s.loc(),
                section,
                s.text(),
                "vipflip runs notify programs without arguments: put the command in a script and name that",
            );
            return;
        }
        if !text.starts_with('/') {
            self.lost(
                s.loc(),
                section,
                s.text(),
                "vipflip runs notify programs by absolute path only (no $PATH search)",
            );
            return;
        }
        if s.args().len() > 1 {
            self.lost(
                s.args()[1].loc,
                section,
                join(&s.args()[1..]),
                "vipflip runs every notify program as global.script_user (script_user in global_defs); a user per program is not carried",
            );
        }
        let slot = match s.keyword() {
            "notify_master" => &mut notify.master,
            "notify_backup" => &mut notify.backup,
            "notify_fault" => &mut notify.fault,
            "notify_master_rx_lower_pri" => &mut notify.master_rx_lower_pri,
            _ => &mut notify.stop,
        };
        *slot = Some(text.to_owned());
    }
}
