//! `global_defs`: the settings carried to `[global]` and those the instances inherit
//! ([`Globals`]).

use super::super::parse::{Stmt, join};
use super::{Conv, GARP_REFRESH, GARP_REFRESH_REPEAT, Micros, NO_EQUIVALENT, NO_MAIL, Section};

/// `global_defs` settings that instances inherit.
#[derive(Debug, Default)]
pub(super) struct Globals {
    pub(super) version: Option<u8>,
    pub(super) garp_delay: Option<Micros>,
    pub(super) garp_repeat: Option<u64>,
    pub(super) garp_refresh: Option<Micros>,
    pub(super) garp_refresh_repeat: Option<u64>,
    pub(super) garp_interval: Option<Micros>,
    pub(super) gna_interval: Option<Micros>,
    pub(super) strict: bool,
    pub(super) lower_prio_no_advert: bool,
    pub(super) higher_prio_send_advert: bool,
}

impl Conv<'_> {
    pub(super) fn global_defs(&mut self, stmt: &Stmt, g: &mut Globals) {
        let h = Section::Header;
        for s in stmt.children() {
            let loc = s.loc();
            match s.keyword() {
                "router_id" => {
                    if let Some(w) = self.value(s) {
                        self.out.router_id = Some(w.text.clone());
                    }
                }
                "vrrp_version" => {
                    if let Some(v) = self.int(s, 2..=3) {
                        g.version = u8::try_from(v).ok();
                    }
                }
                "vrrp_garp_master_delay" => g.garp_delay = self.seconds(s, 1000),
                "vrrp_garp_master_repeat" => {
                    g.garp_repeat = self.int(s, 1..=255).and_then(|n| u64::try_from(n).ok());
                }
                "vrrp_garp_master_refresh" => {
                    g.garp_refresh = self.seconds(s, 86_400);
                    self.note(loc, h, s.text(), GARP_REFRESH);
                }
                "vrrp_garp_master_refresh_repeat" => {
                    g.garp_refresh_repeat =
                        self.int(s, 1..=255).and_then(|n| u64::try_from(n).ok());
                    self.note(loc, h, s.text(), GARP_REFRESH_REPEAT);
                }
                "vrrp_garp_interval" => g.garp_interval = self.seconds(s, 1),
                "vrrp_gna_interval" => g.gna_interval = self.seconds(s, 1),
                "vrrp_strict" => {
                    g.strict = true;
                    self.note(
                        loc,
                        h,
                        "vrrp_strict",
                        "accept = false on every instance (RFC 5798 accept mode); vipflip always applies the RFC's advert checks",
                    );
                }
                "vrrp_higher_prio_send_advert" => {
                    g.higher_prio_send_advert = self.flag(s).unwrap_or(false);
                }
                "vrrp_lower_priority_dont_send_advert" => {
                    g.lower_prio_no_advert = self.flag(s).unwrap_or(false);
                }
                "notify_fifo" | "vrrp_notify_fifo" => self.notify_fifo(s),
                "enable_script_security" => self.out.script_security = true,
                "script_user" => self.out.script_user = self.script_user(s, h),
                "notification_email"
                | "notification_email_from"
                | "smtp_server"
                | "smtp_helo_name"
                | "smtp_connect_timeout"
                | "smtp_alert"
                | "smtp_alert_vrrp" => {
                    self.lost(loc, h, s.keyword(), NO_MAIL);
                }
                _ => self.lost(loc, h, s.text(), NO_EQUIVALENT),
            }
        }
    }

    fn notify_fifo(&mut self, s: &Stmt) {
        let Some(path) = s.args().first() else {
            self.error(s.loc(), format!("`{}` needs a FIFO path", s.keyword()));
            return;
        };
        if !path.text.starts_with('/') {
            self.lost(
                s.loc(),
                Section::Header,
                s.text(),
                "vipflip needs an absolute path for notify_fifo",
            );
            return;
        }
        if self
            .out
            .notify_fifo
            .as_ref()
            .is_some_and(|p| *p != path.text)
        {
            self.lost(
                s.loc(),
                Section::Header,
                s.text(),
                "vipflip writes one notify FIFO; the first one is carried",
            );
            return;
        }
        self.out.notify_fifo = Some(path.text.clone());
        if s.args().len() > 1 {
            self.lost(
                s.loc(),
                Section::Header,
                join(&s.args()[1..]),
                "the FIFO's owner is not carried: create the FIFO with the owner you need",
            );
        }
    }
}
