//! keepalived statements to the vipflip model ([`Output`]), with a [`Report`] for everything
//! not carried and a note for everything carried differently. The mapping decisions are in
//! the module docs of [`super`].
//!
//! This file holds the model, the walk over the top-level blocks and the reporting; each
//! keepalived section is converted in a module of its own.

use std::collections::{HashMap, HashSet};

use super::parse::{Loc, Source};
use super::{ImportError, Report, ReportKind};

mod global_defs;
mod instance;
mod notify;
mod real_server;
mod routes;
mod script;
mod sync_group;
mod tracking;
mod values;
mod virtual_server;

use global_defs::Globals;
pub(super) use real_server::{CheckKindOut, CheckOut};
pub(super) use routes::{StaticsOut, TableOut};
use script::ScriptDef;
use tracking::TrackFileDef;
pub(super) use virtual_server::{ForwardOut, VirtualServerOut};

/// A time in microseconds (keepalived's timer resolution).
pub(super) type Micros = u64;

const SECOND: Micros = 1_000_000;

/// What the TOML will say, with the reports.
#[derive(Debug, Default)]
pub(super) struct Output {
    pub(super) router_id: Option<String>,
    pub(super) notify_fifo: Option<String>,
    /// `script_user USER [GROUP]`.
    pub(super) script_user: Option<UserOut>,
    /// `enable_script_security`.
    pub(super) script_security: bool,
    pub(super) instances: Vec<InstanceOut>,
    pub(super) scripts: Vec<ScriptOut>,
    pub(super) sync_groups: Vec<GroupOut>,
    pub(super) virtual_servers: Vec<VirtualServerOut>,
    /// `static_ipaddress`, `static_routes`, `static_rules`.
    pub(super) statics: StaticsOut,
    pub(super) reports: Vec<Located>,
}

/// A report with where it sorts (file order) and which output section it is commented in.
#[derive(Debug, Clone)]
pub(super) struct Located {
    pub(super) loc: Loc,
    pub(super) section: Section,
    pub(super) report: Report,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    /// The header comment: `global_defs`, top-level blocks, includes.
    Header,
    Instance(usize),
    Script(usize),
    SyncGroup(usize),
    VirtualServer(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent RFC and keepalived switches, named as operators know them"
)]
pub(super) struct InstanceOut {
    pub(super) name: String,
    pub(super) interface: String,
    pub(super) vrid: u8,
    pub(super) version: u8,
    pub(super) priority: u8,
    pub(super) advert_interval: Micros,
    pub(super) preempt: bool,
    pub(super) preempt_delay: Micros,
    pub(super) accept: bool,
    pub(super) virtual_ips: Vec<String>,
    pub(super) unicast_peers: Vec<String>,
    pub(super) unicast_src: Option<String>,
    pub(super) allowed_peers: Vec<String>,
    pub(super) garp: Garp,
    pub(super) track_interfaces: Vec<(String, i64)>,
    pub(super) track_scripts: Vec<(String, i64)>,
    pub(super) track_files: Vec<(String, i64)>,
    pub(super) notify: Notify,
    pub(super) lower_prio_no_advert: bool,
    pub(super) higher_prio_send_advert: bool,
    pub(super) auth_pass: Option<String>,
    pub(super) virtual_routes: Vec<TableOut>,
    pub(super) virtual_rules: Vec<TableOut>,
}

/// vipflip's `garp` table; [`Garp::default`] is vipflip's (and keepalived's) default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Garp {
    pub(super) repeat: u64,
    pub(super) interval: Micros,
    pub(super) delay: Micros,
    pub(super) refresh: Micros,
    pub(super) refresh_repeat: u64,
}

impl Default for Garp {
    fn default() -> Self {
        Self {
            repeat: 5,
            interval: 0,
            delay: 5 * SECOND,
            refresh: 0,
            refresh_repeat: 1,
        }
    }
}

/// `notify = { master, backup, fault, stop }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Notify {
    pub(super) master: Option<String>,
    pub(super) backup: Option<String>,
    pub(super) fault: Option<String>,
    pub(super) stop: Option<String>,
    pub(super) master_rx_lower_pri: Option<String>,
}

impl Notify {
    pub(super) fn is_empty(&self) -> bool {
        self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
            && self.master_rx_lower_pri.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ScriptOut {
    pub(super) name: String,
    pub(super) command: Vec<String>,
    /// `user USER [GROUP]`.
    pub(super) user: Option<UserOut>,
    pub(super) interval: Option<Micros>,
    pub(super) timeout: Option<Micros>,
    pub(super) rise: Option<u64>,
    pub(super) fall: Option<u64>,
}

/// Who a script runs as: keepalived's `USER [GROUP]` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UserOut {
    pub(super) user: String,
    pub(super) group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GroupOut {
    pub(super) name: String,
    pub(super) instances: Vec<String>,
    pub(super) notify: Notify,
}

/// Converts the parsed configuration; `Err` lists every invalid value and missing key.
pub(super) fn convert(source: &Source) -> Result<Output, Vec<ImportError>> {
    let mut c = Conv {
        source,
        out: Output::default(),
        errors: Vec::new(),
        next_rule_priority: routes::FIRST_RULE_PRIORITY,
    };
    c.run();
    if c.errors.is_empty() {
        Ok(c.out)
    } else {
        Err(c.errors)
    }
}

struct Conv<'s> {
    source: &'s Source,
    out: Output,
    errors: Vec<ImportError>,
    /// The priority keepalived gives the next rule written without one.
    next_rule_priority: u32,
}

const NO_EQUIVALENT: &str = "vipflip has no equivalent; not carried";
/// What `garp_master_refresh` (and `vrrp_garp_master_refresh`) becomes.
const GARP_REFRESH: &str = "carried as garp.refresh, the same period: while master, vipflip sends garp.refresh_repeat (keepalived's garp_master_refresh_repeat, default 1) GARP/NA per VIP each time";
/// What `garp_master_refresh_repeat` (and `vrrp_garp_master_refresh_repeat`) becomes.
const GARP_REFRESH_REPEAT: &str = "carried as garp.refresh_repeat: GARP/NA per VIP in each refresh, sent at once; without a refresh period neither sends any";
const NO_MAIL: &str = "vipflip sends no e-mail; use notify programs or global.notify_fifo";
const SERVER_GROUP: &str =
    "vipflip has no virtual_server_group: write one virtual_server per address and port";

impl Conv<'_> {
    fn at(&self, loc: Loc) -> String {
        self.source.locate(loc)
    }

    fn error(&mut self, loc: Loc, message: impl Into<String>) {
        self.errors.push(ImportError::Invalid {
            at: self.at(loc),
            message: message.into(),
        });
    }

    fn report(
        &mut self,
        kind: ReportKind,
        loc: Loc,
        section: Section,
        option: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.out.reports.push(Located {
            loc,
            section,
            report: Report {
                kind,
                file: self.source.files[loc.file].clone(),
                line: loc.line,
                option: option.into(),
                reason: reason.into(),
            },
        });
    }

    fn lost(
        &mut self,
        loc: Loc,
        section: Section,
        option: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.report(ReportKind::NotCarried, loc, section, option, reason);
    }

    fn note(
        &mut self,
        loc: Loc,
        section: Section,
        option: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.report(ReportKind::Note, loc, section, option, reason);
    }

    fn run(&mut self) {
        let source = self.source;
        for (loc, pattern) in &source.empty_includes {
            self.note(
                *loc,
                Section::Header,
                format!("include {pattern}"),
                "matches no file; nothing included",
            );
        }
        let mut globals = Globals::default();
        let mut scripts: Vec<(String, ScriptDef)> = Vec::new();
        let mut files: HashMap<String, TrackFileDef> = HashMap::new();
        let mut instances = Vec::new();
        let mut groups = Vec::new();
        let mut services = Vec::new();
        for stmt in &source.stmts {
            match stmt.keyword() {
                "global_defs" => self.global_defs(stmt, &mut globals),
                "vrrp_script" => {
                    if let Some((name, def)) = self.script(stmt) {
                        scripts.retain(|(n, _)| *n != name);
                        scripts.push((name, def));
                    }
                }
                "track_file" | "vrrp_track_file" => {
                    if let Some((name, def)) = self.track_file(stmt) {
                        files.insert(name, def);
                    }
                }
                "vrrp_instance" => instances.push(stmt),
                "vrrp_sync_group" => {
                    if let Some(g) = self.group_def(stmt) {
                        groups.push(g);
                    }
                }
                "virtual_server" => services.push(stmt),
                "virtual_server_group" => {
                    self.lost(stmt.loc(), Section::Header, stmt.text(), SERVER_GROUP);
                }
                "static_ipaddress" => {
                    let addresses = self.static_addresses(stmt);
                    self.out.statics.addresses.extend(addresses);
                }
                "static_routes" => {
                    let routes = self.routes(stmt, Section::Header);
                    self.out.statics.routes.extend(routes);
                }
                "static_rules" => {
                    let rules = self.rules(stmt, Section::Header);
                    self.out.statics.rules.extend(rules);
                }
                _ => self.lost(stmt.loc(), Section::Header, stmt.text(), NO_EQUIVALENT),
            }
        }
        let script_weights: HashMap<&str, i64> = scripts
            .iter()
            .map(|(n, d)| (n.as_str(), d.weight))
            .collect();
        let mut used_scripts: HashSet<String> = HashSet::new();
        for stmt in instances {
            let index = self.out.instances.len();
            let group = groups.iter().find(|g| {
                stmt.args()
                    .first()
                    .is_some_and(|n| g.members.iter().any(|m| m.text == n.text))
            });
            if let Some(inst) = self.instance(
                stmt,
                index,
                &globals,
                &script_weights,
                &files,
                group.map(|g| (g.name.as_str(), g.tracking_weight)),
            ) {
                used_scripts.extend(inst.track_scripts.iter().map(|(n, _)| n.clone()));
                self.out.instances.push(inst);
            }
        }
        for (name, def) in scripts {
            if used_scripts.contains(&name) {
                let section = Section::Script(self.out.scripts.len());
                for (loc, kind, option, reason) in def.pending {
                    self.report(kind, loc, section, option, reason);
                }
                self.out.scripts.push(def.out);
            } else {
                self.note(
                    def.loc,
                    Section::Header,
                    format!("vrrp_script {name}"),
                    "tracked by no vrrp_instance, so keepalived does not run it; left out",
                );
            }
        }
        for g in groups {
            self.group(&g);
        }
        // After the instances: a service follows the instance that owns its VIP.
        for stmt in services {
            self.virtual_server(stmt);
        }
    }
}
