//! keepalived statements to the vipflip model ([`Output`]), with a [`Report`] for everything
//! not carried and a note for everything carried differently. The mapping decisions are in
//! the module docs of [`super`].

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::parse::{Loc, Source, Stmt, Word, join};
use super::{ImportError, Report, ReportKind};

mod virtual_server;

pub(super) use virtual_server::{CheckKindOut, CheckOut, VirtualServerOut};

/// A time in microseconds (keepalived's timer resolution).
pub(super) type Micros = u64;

const SECOND: Micros = 1_000_000;

/// What the TOML will say, with the reports.
#[derive(Debug, Default)]
pub(super) struct Output {
    pub(super) router_id: Option<String>,
    pub(super) notify_fifo: Option<String>,
    pub(super) instances: Vec<InstanceOut>,
    pub(super) scripts: Vec<ScriptOut>,
    pub(super) sync_groups: Vec<GroupOut>,
    pub(super) virtual_servers: Vec<VirtualServerOut>,
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
    pub(super) auth_pass: Option<String>,
}

/// vipflip's `garp` table; [`Garp::default`] is vipflip's (and keepalived's) default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Garp {
    pub(super) repeat: u64,
    pub(super) interval: Micros,
    pub(super) delay: Micros,
    pub(super) refresh: Micros,
}

impl Default for Garp {
    fn default() -> Self {
        Self {
            repeat: 5,
            interval: 0,
            delay: 5 * SECOND,
            refresh: 0,
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
}

impl Notify {
    pub(super) fn is_empty(&self) -> bool {
        self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ScriptOut {
    pub(super) name: String,
    pub(super) command: Vec<String>,
    pub(super) interval: Option<Micros>,
    pub(super) timeout: Option<Micros>,
    pub(super) rise: Option<u64>,
    pub(super) fall: Option<u64>,
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
}

/// `global_defs` settings that instances inherit.
#[derive(Debug, Default)]
struct Globals {
    version: Option<u8>,
    garp_delay: Option<Micros>,
    garp_repeat: Option<u64>,
    garp_refresh: Option<Micros>,
    garp_interval: Option<Micros>,
    gna_interval: Option<Micros>,
    strict: bool,
    lower_prio_no_advert: bool,
}

/// A `vrrp_script`, converted; its reports wait until it is known to be tracked.
struct ScriptDef {
    out: ScriptOut,
    loc: Loc,
    weight: i64,
    pending: Vec<(Loc, ReportKind, String, String)>,
}

/// A `track_file` definition.
struct TrackFileDef {
    path: String,
    weight: i64,
}

/// A `vrrp_sync_group`'s membership, read before the instances.
struct GroupDef<'s> {
    stmt: &'s Stmt,
    name: String,
    members: Vec<&'s Word>,
    tracking_weight: bool,
}

/// A tracked object of an instance before weights are settled.
struct Track {
    kind: TrackKind,
    target: String,
    weight: i64,
    loc: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackKind {
    Interface,
    Script,
    File,
}

const NO_EQUIVALENT: &str = "vipflip has no equivalent; not carried";
const NO_MAIL: &str = "vipflip sends no e-mail; use notify programs or global.notify_fifo";
const SERVER_GROUP: &str =
    "vipflip has no virtual_server_group: write one virtual_server per address and port";

impl<'s> Conv<'s> {
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

    // --- values ---

    /// The single argument of `stmt`; an error if it has none or more.
    fn value<'w>(&mut self, stmt: &'w Stmt) -> Option<&'w Word> {
        match stmt.args() {
            [w] => Some(w),
            [] => {
                self.error(stmt.loc(), format!("`{}` needs a value", stmt.keyword()));
                None
            }
            [_, extra, ..] => {
                self.error(
                    extra.loc,
                    format!(
                        "`{}`: expected one value, got `{}`",
                        stmt.keyword(),
                        join(stmt.args())
                    ),
                );
                None
            }
        }
    }

    fn int(&mut self, stmt: &Stmt, range: core::ops::RangeInclusive<i64>) -> Option<i64> {
        let w = self.value(stmt)?;
        match w.text.parse::<i64>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.error(
                    w.loc,
                    format!(
                        "`{} {}`: expected an integer in {}..={}",
                        stmt.keyword(),
                        w.text,
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    /// keepalived's `<TIMER>`: seconds with up to 6 decimals, at most `max` seconds.
    fn seconds(&mut self, stmt: &Stmt, max: u64) -> Option<Micros> {
        let w = self.value(stmt)?;
        match parse_seconds(&w.text) {
            Some(us) if us <= max * SECOND => Some(us),
            _ => {
                self.error(
                    w.loc,
                    format!(
                        "`{} {}`: expected seconds in 0..={max} (fractions allowed, e.g. 0.5)",
                        stmt.keyword(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    /// keepalived's optional `<BOOL>`: absent means true.
    fn flag(&mut self, stmt: &Stmt) -> Option<bool> {
        let Some(w) = stmt.args().first() else {
            return Some(true);
        };
        match w.text.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            _ => {
                self.error(
                    w.loc,
                    format!(
                        "`{} {}`: expected on|off|true|false|yes|no",
                        stmt.keyword(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    /// `weight N [reverse]` after a tracked name (`words[1..]`), `default` without a
    /// `weight`; `None` if invalid (reported) or reversed (reported as not carried).
    fn track_weight(
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

    // --- global_defs ---

    fn global_defs(&mut self, stmt: &Stmt, g: &mut Globals) {
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
                "vrrp_garp_master_refresh" => g.garp_refresh = self.seconds(s, 86_400),
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
                "vrrp_lower_priority_dont_send_advert" => {
                    g.lower_prio_no_advert = self.flag(s).unwrap_or(false);
                }
                "notify_fifo" | "vrrp_notify_fifo" => self.notify_fifo(s),
                "enable_script_security" => self.lost(
                    loc,
                    h,
                    s.text(),
                    "vipflip does not check who can write the scripts it runs (keepalived refuses scripts non-root users can modify); check their permissions yourself",
                ),
                "script_user" => self.lost(
                    loc,
                    h,
                    s.text(),
                    "vipflip runs scripts and notify programs as its own user; switch users in the script if it must not run as root",
                ),
                "notification_email" | "notification_email_from" | "smtp_server"
                | "smtp_helo_name" | "smtp_connect_timeout" | "smtp_alert" | "smtp_alert_vrrp" => {
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

    // --- vrrp_script, track_file ---

    fn script(&mut self, stmt: &Stmt) -> Option<(String, ScriptDef)> {
        let Some(name) = stmt.args().first() else {
            self.error(stmt.loc(), "`vrrp_script` needs a name");
            return None;
        };
        let mut def = ScriptDef {
            out: ScriptOut {
                name: name.text.clone(),
                command: Vec::new(),
                interval: None,
                timeout: None,
                rise: None,
                fall: None,
            },
            loc: stmt.loc(),
            weight: 0,
            pending: Vec::new(),
        };
        let mut script = None;
        for s in stmt.children() {
            match s.keyword() {
                "script" => {
                    if s.args().is_empty() {
                        self.error(s.loc(), "`script` needs a command");
                    } else {
                        script = Some(s);
                    }
                }
                "interval" => def.out.interval = self.positive_seconds(s),
                "timeout" => def.out.timeout = self.positive_seconds(s),
                "rise" => {
                    def.out.rise = self
                        .int(s, 1..=i64::from(u32::MAX))
                        .and_then(|n| u64::try_from(n).ok());
                }
                "fall" => {
                    def.out.fall = self
                        .int(s, 1..=i64::from(u32::MAX))
                        .and_then(|n| u64::try_from(n).ok());
                }
                "weight" => {
                    let words = &s.words;
                    match words.get(1).map(|w| w.text.parse::<i64>()) {
                        Some(Ok(w)) if (-254..=254).contains(&w) => def.weight = w,
                        _ => self.error(
                            s.loc(),
                            format!("`{}`: expected an integer in -254..=254", s.text()),
                        ),
                    }
                    if let Some(extra) = words.get(2).filter(|w| w.text == "reverse") {
                        def.pending.push((
                            extra.loc,
                            ReportKind::NotCarried,
                            s.text(),
                            "vipflip has no reversed tracking; the weight is carried as if not reversed".to_owned(),
                        ));
                    }
                }
                "user" => def.pending.push((
                    s.loc(),
                    ReportKind::NotCarried,
                    s.text(),
                    "vipflip runs scripts as its own user; switch users inside the script"
                        .to_owned(),
                )),
                "init_fail" => def.pending.push((
                    s.loc(),
                    ReportKind::NotCarried,
                    s.text(),
                    "vipflip starts every script as good until its first `fall` failures"
                        .to_owned(),
                )),
                _ => def.pending.push((
                    s.loc(),
                    ReportKind::NotCarried,
                    s.text(),
                    NO_EQUIVALENT.to_owned(),
                )),
            }
        }
        let Some(script) = script else {
            self.error(
                stmt.loc(),
                format!("vrrp_script {}: no `script`", name.text),
            );
            return None;
        };
        let (command, report) = command(script.args());
        def.out.command = command;
        if let Some((kind, reason)) = report {
            def.pending
                .push((script.loc(), kind, script.text(), reason));
        }
        Some((name.text.clone(), def))
    }

    fn positive_seconds(&mut self, s: &Stmt) -> Option<Micros> {
        let us = self.seconds(s, 86_400)?;
        if us == 0 {
            self.error(s.loc(), format!("`{}`: must be more than 0", s.text()));
            return None;
        }
        Some(us)
    }

    fn track_file(&mut self, stmt: &Stmt) -> Option<(String, TrackFileDef)> {
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

    // --- vrrp_sync_group ---

    fn group_def(&mut self, stmt: &'s Stmt) -> Option<GroupDef<'s>> {
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

    fn group(&mut self, g: &GroupDef<'_>) {
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

    /// `notify_master|backup|fault|stop PROGRAM [user [group]]`.
    fn notify(&mut self, s: &Stmt, section: Section, notify: &mut Notify) {
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
                "vipflip runs notify programs as its own user; the program is carried, the user is not",
            );
        }
        let slot = match s.keyword() {
            "notify_master" => &mut notify.master,
            "notify_backup" => &mut notify.backup,
            "notify_fault" => &mut notify.fault,
            _ => &mut notify.stop,
        };
        *slot = Some(text.to_owned());
    }
}

const NOTIFY_ANY: &str = "vipflip has no catch-all notify program called with the new state; use notify_master/backup/fault/stop, or global.notify_fifo (one line per state change)";

/// The raw fields of a `vrrp_instance`, before defaults and cross-checks.
#[derive(Default)]
struct RawInstance<'s> {
    master: Option<Loc>,
    interface: Option<&'s Word>,
    vrid: Option<u8>,
    priority: Option<u8>,
    advert: Option<(Micros, Loc)>,
    version: Option<(u8, Loc)>,
    preempt: bool,
    nopreempt: Option<Loc>,
    preempt_delay: Micros,
    accept: Option<(bool, Loc)>,
    strict: Option<bool>,
    src: Option<(&'s Word, &'static str)>,
    peers: Vec<&'s Word>,
    check_unicast_src: bool,
    vips: Vec<&'s Stmt>,
    tracks: Vec<Track>,
    notify: Notify,
    garp_delay: Option<Micros>,
    garp_repeat: Option<u64>,
    garp_refresh: Option<Micros>,
    lower_prio_no_advert: Option<bool>,
    auth: Option<&'s Stmt>,
}

impl<'s> Conv<'s> {
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per keepalived keyword reads best as one match"
    )]
    fn instance(
        &mut self,
        stmt: &'s Stmt,
        index: usize,
        g: &Globals,
        script_weights: &HashMap<&str, i64>,
        files: &HashMap<String, TrackFileDef>,
        group: Option<(&str, bool)>,
    ) -> Option<InstanceOut> {
        let sec = Section::Instance(index);
        let Some(name) = stmt.args().first() else {
            self.error(stmt.loc(), "`vrrp_instance` needs a name");
            return None;
        };
        let name = name.text.clone();
        let mut r = RawInstance {
            preempt: true,
            ..RawInstance::default()
        };
        let errors_before = self.errors.len();
        for s in stmt.children() {
            let loc = s.loc();
            match s.keyword() {
                "state" => match self.value(s).map(|w| w.text.as_str()) {
                    Some("MASTER") => r.master = Some(loc),
                    Some("BACKUP") | None => {}
                    Some(other) => self.error(loc, format!("`state {other}`: expected MASTER or BACKUP")),
                },
                "interface" => r.interface = self.value(s),
                "virtual_router_id" => r.vrid = self.int(s, 1..=255).and_then(|n| u8::try_from(n).ok()),
                "priority" => r.priority = self.int(s, 1..=255).and_then(|n| u8::try_from(n).ok()),
                "advert_int" => r.advert = self.seconds(s, 255).map(|us| (us, loc)),
                "version" => {
                    r.version = self.int(s, 2..=3).and_then(|n| u8::try_from(n).ok()).map(|v| (v, loc));
                }
                "nopreempt" | "no_preempt" => {
                    r.preempt = false;
                    r.nopreempt = Some(loc);
                }
                "preempt" => r.preempt = true,
                "preempt_delay" => r.preempt_delay = self.seconds(s, 1000).unwrap_or(0),
                "accept" => r.accept = Some((true, loc)),
                "no_accept" => r.accept = Some((false, loc)),
                "strict_mode" => r.strict = self.flag(s),
                "unicast_src_ip" => r.src = self.value(s).map(|w| (w, "unicast_src_ip")),
                "mcast_src_ip" => r.src = self.value(s).map(|w| (w, "mcast_src_ip")),
                "unicast_peer" => {
                    for p in s.children() {
                        r.peers.push(&p.words[0]);
                        if p.words.len() > 1 {
                            self.lost(
                                p.words[1].loc,
                                sec,
                                join(&p.words[1..]),
                                "vipflip checks TTL = 255 on every advert (RFC 5798 §5.1.1.3); other TTL ranges are not carried",
                            );
                        }
                    }
                }
                "check_unicast_src" => r.check_unicast_src = true,
                "virtual_ipaddress" => r.vips.extend(s.children()),
                "virtual_ipaddress_excluded" => {
                    for e in s.children() {
                        self.lost(
                            e.loc(),
                            sec,
                            format!("virtual_ipaddress_excluded {}", e.text()),
                            "vipflip advertises every virtual IP, and keepalived peers refuse adverts whose address count differs from their own; add it as a VIP on every router or to another instance",
                        );
                    }
                }
                "track_interface" => {
                    for t in s.children() {
                        if let Some(w) = self.track_weight(&t.words[1..], sec, "track_interface", 0) {
                            r.tracks.push(Track {
                                kind: TrackKind::Interface,
                                target: t.words[0].text.clone(),
                                weight: w,
                                loc: t.loc(),
                            });
                        }
                    }
                }
                "track_script" => {
                    for t in s.children() {
                        let script = &t.words[0];
                        let Some(&default) = script_weights.get(script.text.as_str()) else {
                            self.lost(
                                script.loc,
                                sec,
                                format!("track_script {}", script.text),
                                "no vrrp_script of this name; keepalived ignores it too, and so does the import",
                            );
                            continue;
                        };
                        if let Some(w) = self.track_weight(&t.words[1..], sec, "track_script", default) {
                            r.tracks.push(Track {
                                kind: TrackKind::Script,
                                target: script.text.clone(),
                                weight: w,
                                loc: t.loc(),
                            });
                        }
                    }
                }
                "track_file" => {
                    for t in s.children() {
                        let file = &t.words[0];
                        let Some(def) = files.get(file.text.as_str()) else {
                            self.lost(
                                file.loc,
                                sec,
                                format!("track_file {}", file.text),
                                "no track_file of this name; keepalived ignores it too, and so does the import",
                            );
                            continue;
                        };
                        if let Some(w) = self.track_weight(&t.words[1..], sec, "track_file", def.weight) {
                            r.tracks.push(Track {
                                kind: TrackKind::File,
                                target: def.path.clone(),
                                weight: w,
                                loc: t.loc(),
                            });
                        }
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                    self.notify(s, sec, &mut r.notify);
                }
                "notify" => self.lost(loc, sec, s.text(), NOTIFY_ANY),
                "garp_master_delay" => r.garp_delay = self.seconds(s, 1000),
                "garp_master_repeat" => {
                    r.garp_repeat = self.int(s, 1..=255).and_then(|n| u64::try_from(n).ok());
                }
                "garp_master_refresh" => r.garp_refresh = self.seconds(s, 86_400),
                "lower_prio_no_advert" => r.lower_prio_no_advert = self.flag(s),
                "authentication" => r.auth = Some(s),
                "use_vmac" | "vmac_xmit_base" | "use_vmac_addr" => self.lost(
                    loc,
                    sec,
                    s.text(),
                    "vipflip uses no virtual MAC: a VIP moves by GARP/NA, and an ex-master's XDP program forwards the traffic stale ARP caches still send it to the new master, which makes the macvlan unnecessary",
                ),
                "smtp_alert" => self.lost(loc, sec, s.text(), NO_MAIL),
                _ => self.lost(loc, sec, s.text(), NO_EQUIVALENT),
            }
        }

        let vips = self.vips(&r.vips, r.interface.map_or("", |w| w.text.as_str()), sec);
        let Some(interface) = r.interface else {
            self.error(
                stmt.loc(),
                format!("vrrp_instance {name}: no `interface`; vipflip needs the interface the virtual router runs on"),
            );
            return None;
        };
        let Some(vrid) = r.vrid else {
            self.error(
                stmt.loc(),
                format!("vrrp_instance {name}: no `virtual_router_id`"),
            );
            return None;
        };
        let Some(first) = vips.first() else {
            if self.errors.len() == errors_before {
                self.error(
                    stmt.loc(),
                    format!("vrrp_instance {name}: no `virtual_ipaddress`; vipflip needs at least one virtual IP per instance"),
                );
            }
            return None;
        };
        let v6 = first.addr().is_ipv6();
        if let Some(other) = vips.iter().find(|n| n.addr().is_ipv6() != v6) {
            self.error(
                stmt.loc(),
                format!("vrrp_instance {name}: virtual_ipaddress mixes IPv4 and IPv6 ({first} and {other}); keepalived refuses this too"),
            );
            return None;
        }

        // The version: keepalived's default is 2, and IPv6 is always 3.
        let version = match (r.version.map(|(v, _)| v).or(g.version), v6) {
            (Some(2), true) => {
                let loc = r.version.map_or(stmt.loc(), |(_, l)| l);
                self.note(loc, sec, "version 2", "VRRPv2 carries IPv4 only; keepalived runs IPv6 instances as VRRPv3, and so does vipflip");
                3
            }
            (Some(v), _) => v,
            (None, true) => 3,
            (None, false) => 2,
        };
        let advert_interval = self.advert_interval(r.advert, version, stmt, sec)?;

        let mut priority = r.priority.unwrap_or(100);
        if let Some(loc) = r.master {
            self.note(
                loc,
                sec,
                "state MASTER",
                "an initial state only, in keepalived too; vipflip starts as backup and the highest priority becomes master (255 at once)",
            );
        }
        let strict = r.strict.unwrap_or(g.strict);
        let accept = match (strict, r.accept) {
            (true, Some((true, loc))) => {
                self.note(
                    loc,
                    sec,
                    "accept",
                    "strict mode overrides it, in keepalived too: accept = false",
                );
                false
            }
            (true, _) => false,
            (false, a) => a.is_none_or(|(a, _)| a),
        };

        let peers = self.addresses(&r.peers, v6, "unicast_peer");
        let unicast_src = match r.src {
            Some((w, kw)) if peers.is_empty() => {
                self.lost(
                    w.loc,
                    sec,
                    format!("{kw} {}", w.text),
                    "vipflip sends multicast adverts from the interface's primary address; a different source is only carried for unicast_peer",
                );
                None
            }
            Some((w, kw)) => self.addresses(&[w], v6, kw).into_iter().next(),
            None => None,
        };
        let allowed_peers = if r.check_unicast_src {
            peers.clone()
        } else {
            Vec::new()
        };

        let tracks = self.weights(r.tracks, &mut priority, group, sec);
        let mut inst = InstanceOut {
            name,
            interface: interface.text.clone(),
            vrid,
            version,
            priority,
            advert_interval,
            preempt: r.preempt,
            preempt_delay: r.preempt_delay,
            accept,
            virtual_ips: vips.iter().map(ToString::to_string).collect(),
            unicast_peers: peers.iter().map(ToString::to_string).collect(),
            unicast_src: unicast_src.map(|a| a.to_string()),
            allowed_peers: allowed_peers.iter().map(ToString::to_string).collect(),
            garp: Garp {
                repeat: r.garp_repeat.or(g.garp_repeat).unwrap_or(5),
                interval: if v6 { g.gna_interval } else { g.garp_interval }.unwrap_or(0),
                delay: r.garp_delay.or(g.garp_delay).unwrap_or(5 * SECOND),
                refresh: r.garp_refresh.or(g.garp_refresh).unwrap_or(0),
            },
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            notify: r.notify,
            lower_prio_no_advert: r.lower_prio_no_advert.unwrap_or(g.lower_prio_no_advert),
            auth_pass: None,
        };
        for t in tracks {
            let list = match t.kind {
                TrackKind::Interface => &mut inst.track_interfaces,
                TrackKind::Script => &mut inst.track_scripts,
                TrackKind::File => &mut inst.track_files,
            };
            list.push((t.target, t.weight));
        }
        if let (Some(loc), false) = (r.nopreempt, r.master.is_none()) {
            self.note(
                loc,
                sec,
                "nopreempt",
                "keepalived ignores nopreempt with state MASTER; vipflip has no initial state and honours it (preempt = false)",
            );
        }
        if let Some(auth) = r.auth {
            inst.auth_pass = self.auth(auth, version, strict, sec);
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(inst)
    }

    /// `advert_int` as vipflip's interval: v3 centiseconds, v2 whole seconds.
    fn advert_interval(
        &mut self,
        advert: Option<(Micros, Loc)>,
        version: u8,
        stmt: &Stmt,
        sec: Section,
    ) -> Option<Micros> {
        let Some((us, loc)) = advert else {
            return Some(SECOND);
        };
        let (unit, min, max) = if version == 3 {
            (10_000, 10_000, 40_950_000)
        } else {
            (SECOND, SECOND, 255 * SECOND)
        };
        let rounded = (us + unit / 2) / unit * unit;
        if !(min..=max).contains(&rounded) {
            self.error(
                loc,
                format!(
                    "vrrp_instance {}: `advert_int {}`: VRRPv{version} allows {}",
                    stmt.args().first().map_or("", |w| w.text.as_str()),
                    seconds_text(us),
                    if version == 3 {
                        "0.01..=40.95 seconds"
                    } else {
                        "1..=255 whole seconds"
                    }
                ),
            );
            return None;
        }
        if rounded != us {
            self.note(
                loc,
                sec,
                format!("advert_int {}", seconds_text(us)),
                format!(
                    "VRRPv{version} carries {}; rounded to {}",
                    if version == 3 {
                        "centiseconds"
                    } else {
                        "whole seconds"
                    },
                    seconds_text(rounded)
                ),
            );
        }
        Some(rounded)
    }

    /// `virtual_ipaddress` entries: the address and prefix are carried, options reported.
    fn vips(&mut self, entries: &[&Stmt], interface: &str, sec: Section) -> Vec<IpNet> {
        let mut out: Vec<IpNet> = Vec::new();
        for e in entries {
            let addr = &e.words[0];
            let net = if addr.text.contains('/') {
                addr.text.parse::<IpNet>().ok()
            } else {
                addr.text.parse::<IpAddr>().ok().map(IpNet::from)
            };
            let Some(net) = net else {
                self.error(
                    addr.loc,
                    format!(
                        "virtual_ipaddress `{}`: expected an address or address/prefix",
                        addr.text
                    ),
                );
                continue;
            };
            if out.iter().any(|n| n.addr() == net.addr()) {
                self.note(
                    addr.loc,
                    sec,
                    addr.text.clone(),
                    "listed twice; carried once",
                );
                continue;
            }
            out.push(net);
            let mut i = 1;
            let words = &e.words;
            while i < words.len() {
                let opt = &words[i];
                let arg = words.get(i + 1);
                let takes_arg = matches!(
                    opt.text.as_str(),
                    "dev" | "brd" | "scope" | "label" | "peer" | "preferred_lft" | "track_group"
                );
                let text = match (takes_arg, arg) {
                    (true, Some(a)) => format!("{} {}", opt.text, a.text),
                    _ => opt.text.clone(),
                };
                i += if takes_arg { 2 } else { 1 };
                let reason = match (opt.text.as_str(), arg.map(|a| a.text.as_str())) {
                    ("dev", Some(dev)) if dev == interface => continue,
                    ("scope", Some("global")) => continue,
                    ("dev", _) => {
                        "vipflip puts every VIP on the instance's interface; a VIP on another device needs an instance there"
                    }
                    ("label", _) => {
                        "vipflip adds addresses without a label (the ifconfig alias name)"
                    }
                    ("scope", _) => "vipflip adds addresses with scope global",
                    ("brd", _) => "vipflip adds IPv4 addresses without a broadcast address",
                    ("use_vmac", _) => {
                        "vipflip uses no virtual MAC (its XDP forward covers stale ARP caches)"
                    }
                    _ => "an `ip address` option vipflip does not set; not carried",
                };
                self.lost(opt.loc, sec, text, reason);
            }
        }
        out
    }

    /// Addresses of the instance's family.
    fn addresses(&mut self, words: &[&Word], v6: bool, what: &str) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for w in words {
            match w.text.parse::<IpAddr>() {
                Ok(a) if a.is_ipv6() == v6 => {
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
                Ok(_) => self.error(
                    w.loc,
                    format!(
                        "{what} {}: not an {} address like the instance's virtual_ipaddress",
                        w.text,
                        if v6 { "IPv6" } else { "IPv4" }
                    ),
                ),
                Err(_) => self.error(
                    w.loc,
                    format!("{what} `{}`: expected an IP address", w.text),
                ),
            }
        }
        out
    }

    /// Settles tracking weights (see the module docs): sync group members get 0, positive
    /// weights become negative ones on a raised priority.
    fn weights(
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

    /// `authentication { auth_type PASS|AH auth_pass X }`.
    fn auth(&mut self, stmt: &Stmt, version: u8, strict: bool, sec: Section) -> Option<String> {
        let mut kind = None;
        let mut pass = None;
        for s in stmt.children() {
            match s.keyword() {
                "auth_type" => kind = self.value(s).map(|w| (w.text.clone(), w.loc)),
                "auth_pass" => pass = self.value(s).map(|w| (w.text.clone(), w.loc)),
                _ => self.lost(s.loc(), sec, s.text(), NO_EQUIVALENT),
            }
        }
        match kind {
            Some((k, loc)) if k == "AH" => {
                self.lost(
                    loc,
                    sec,
                    "auth_type AH",
                    "IPsec AH authentication (RFC 2338) is not supported; adverts go without it, and peers using AH will refuse them",
                );
                return None;
            }
            Some((k, loc)) if k != "PASS" => {
                self.error(loc, format!("`auth_type {k}`: expected PASS or AH"));
                return None;
            }
            _ => {}
        }
        if version == 3 {
            self.note(
                stmt.loc(),
                sec,
                "authentication",
                "VRRPv3 has no authentication (RFC 5798 §9); keepalived ignores it for version 3, and so does vipflip",
            );
            return None;
        }
        if strict {
            self.note(
                stmt.loc(),
                sec,
                "authentication",
                "strict mode ignores authentication, in keepalived too",
            );
            return None;
        }
        let Some((pass, loc)) = pass else {
            self.error(stmt.loc(), "authentication: no `auth_pass`");
            return None;
        };
        if pass.is_empty() {
            self.error(loc, "`auth_pass`: must not be empty");
            return None;
        }
        let mut end = pass.len().min(8);
        while !pass.is_char_boundary(end) {
            end -= 1;
        }
        if end < pass.len() {
            self.note(
                loc,
                sec,
                "auth_pass",
                format!("only the first 8 bytes are used (RFC 3768 §5.3.6.1), by keepalived too: \"{}\"", &pass[..end]),
            );
        }
        Some(pass[..end].to_owned())
    }
}

/// Characters that need a shell to mean what they say.
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[', ']', '~', '{', '}', '\n',
];

/// A `vrrp_script`'s `script` as a command array, and what to report about it.
fn command(args: &[Word]) -> (Vec<String>, Option<(ReportKind, String)>) {
    let text = join(args);
    let split = if args.len() == 1 {
        split_words(&args[0].text)
    } else {
        Some(args.iter().map(|w| w.text.clone()).collect())
    };
    let shell = text.contains(SHELL_SYNTAX) || text.trim_start().starts_with('!');
    match split {
        Some(words) if !shell && !words.is_empty() => {
            if words[0].starts_with('/') {
                return (words, None);
            }
            let program = words[0].clone();
            let mut command = vec!["/usr/bin/env".to_owned()];
            command.extend(words);
            (
                command,
                Some((
                    ReportKind::Note,
                    format!("`{program}` is not an absolute path: keepalived searched $PATH, so vipflip runs it through /usr/bin/env; better, name the program's absolute path"),
                )),
            )
        }
        _ => (
            vec!["/bin/sh".to_owned(), "-c".to_owned(), text],
            Some((
                ReportKind::NotCarried,
                "uses shell syntax; vipflip runs commands without a shell, so it became [\"/bin/sh\", \"-c\", …]: check it does what you mean".to_owned(),
            )),
        ),
    }
}

/// Splits like the shell (`'…'`, `"…"`, `\`), without expanding anything; `None` if a
/// quote is unbalanced.
fn split_words(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(core::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    Some(out)
}

/// `"1"`, `"0.5"`, `"2.71828"` → microseconds; more than 6 decimals is refused.
fn parse_seconds(text: &str) -> Option<Micros> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(frac) || frac.len() > 6 {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u64 = format!("{frac:0<6}").parse().ok()?;
    whole.checked_mul(SECOND)?.checked_add(frac)
}

/// Microseconds as keepalived writes them: `1`, `0.1`, `2.5`.
fn seconds_text(us: Micros) -> String {
    let whole = us / SECOND;
    let frac = us % SECOND;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::{parse_seconds, seconds_text, split_words};

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("1"), Some(1_000_000));
        assert_eq!(parse_seconds("0.1"), Some(100_000));
        assert_eq!(parse_seconds(".25"), Some(250_000));
        assert_eq!(parse_seconds("2.000001"), Some(2_000_001));
        assert_eq!(parse_seconds("2.0000001"), None);
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("."), None);
        assert_eq!(parse_seconds("1s"), None);
        assert_eq!(seconds_text(100_000), "0.1");
        assert_eq!(seconds_text(3_000_000), "3");
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            split_words(r#"/bin/check 'a b' "c \"d\"" e\ f"#),
            Some(vec![
                "/bin/check".to_owned(),
                "a b".to_owned(),
                "c \"d\"".to_owned(),
                "e f".to_owned()
            ])
        );
        assert_eq!(split_words("/bin/x 'open"), None);
    }
}
