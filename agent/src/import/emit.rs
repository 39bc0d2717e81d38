//! The vipflip TOML: a header naming the source, then `[global]`, one `[[instance]]` per
//! `vrrp_instance` in order, `[[script]]`s and `[[sync_group]]`s, `[[virtual_server]]`s,
//! then the statics, keys in the order of `examples/vipflip.toml`. Each report is a comment at the top of the section it concerns.

use core::fmt::Write as _;
use std::path::Path;

use super::ReportKind;
use super::convert::{
    CheckKindOut, CheckOut, ForwardOut, Garp, GroupOut, InstanceOut, Micros, Notify, Output,
    ScriptOut, Section, TableOut, VirtualServerOut,
};

pub(super) fn emit(out: &Output, source: &Path) -> String {
    let mut s = String::new();
    let lost = out.reports.iter().filter(|r| r.report.is_loss()).count();
    let _ = writeln!(
        s,
        "# vipflip configuration imported from {} by `vipflip import-keepalived`.",
        source.display()
    );
    s.push_str("# Check it before use: vipflip check-config --config FILE\n");
    match lost {
        0 => s.push_str(
            "# Every keepalived option was carried; notes say where it was written differently.\n",
        ),
        1 => s.push_str("# 1 keepalived option could not be carried: see \"not carried\" below.\n"),
        n => {
            let _ = writeln!(
                s,
                "# {n} keepalived options could not be carried: see \"not carried\" below."
            );
        }
    }
    comments(&mut s, out, Section::Header);

    if out.router_id.is_some()
        || out.notify_fifo.is_some()
        || out.script_user.is_some()
        || out.script_security
    {
        s.push_str("\n[global]\n");
        if let Some(id) = &out.router_id {
            let _ = writeln!(s, "router_id = {}", quote(id));
        }
        if let Some(fifo) = &out.notify_fifo {
            let _ = writeln!(s, "notify_fifo = {}", quote(fifo));
        }
        if let Some(u) = &out.script_user {
            let _ = writeln!(s, "script_user = {}", quote(&u.user));
            if let Some(group) = &u.group {
                let _ = writeln!(s, "script_group = {}", quote(group));
            }
        }
        if out.script_security {
            s.push_str("script_security = true\n");
        }
    }
    for (i, inst) in out.instances.iter().enumerate() {
        s.push_str("\n[[instance]]\n");
        comments(&mut s, out, Section::Instance(i));
        instance(&mut s, inst);
    }
    for (i, script) in out.scripts.iter().enumerate() {
        s.push_str("\n[[script]]\n");
        comments(&mut s, out, Section::Script(i));
        self::script(&mut s, script);
    }
    for (i, group) in out.sync_groups.iter().enumerate() {
        s.push_str("\n[[sync_group]]\n");
        comments(&mut s, out, Section::SyncGroup(i));
        sync_group(&mut s, group);
    }
    for (i, vs) in out.virtual_servers.iter().enumerate() {
        s.push_str("\n[[virtual_server]]\n");
        comments(&mut s, out, Section::VirtualServer(i));
        virtual_server(&mut s, vs);
    }
    for (header, tables) in [
        ("static_address", &out.statics.addresses),
        ("static_route", &out.statics.routes),
        ("static_rule", &out.statics.rules),
    ] {
        for t in tables {
            let _ = write!(s, "\n[[{header}]]\n");
            for (key, value) in &t.0 {
                let _ = writeln!(s, "{key} = {value}");
            }
        }
    }
    s
}

/// `key = [` one inline table a line `]`, or nothing for an empty list.
fn inline_tables(s: &mut String, key: &str, tables: &[TableOut]) {
    if tables.is_empty() {
        return;
    }
    let _ = writeln!(s, "{key} = [");
    for t in tables {
        let _ = writeln!(s, "  {},", t.inline());
    }
    s.push_str("]\n");
}

fn comments(s: &mut String, out: &Output, section: Section) {
    let mut reports: Vec<_> = out
        .reports
        .iter()
        .filter(|r| r.section == section)
        .collect();
    reports.sort_by_key(|r| r.loc);
    for r in reports {
        let kind = match r.report.kind {
            ReportKind::NotCarried => "not carried",
            ReportKind::Note => "note",
        };
        let _ = writeln!(
            s,
            "# {kind}: {}:{}: {}: {}",
            r.report.file.display(),
            r.report.line,
            one_line(&r.report.option),
            one_line(&r.report.reason)
        );
    }
}

fn instance(s: &mut String, i: &InstanceOut) {
    let _ = writeln!(s, "name = {}", quote(&i.name));
    let _ = writeln!(s, "interface = {}", quote(&i.interface));
    let _ = writeln!(s, "vrid = {}", i.vrid);
    let _ = writeln!(s, "version = {}", i.version);
    let _ = writeln!(s, "priority = {}", i.priority);
    let _ = writeln!(s, "advert_interval = {}", duration(i.advert_interval));
    if !i.preempt {
        s.push_str("preempt = false\n");
    }
    if i.preempt_delay > 0 {
        let _ = writeln!(s, "preempt_delay = {}", duration(i.preempt_delay));
    }
    if !i.accept {
        s.push_str("accept = false\n");
    }
    let _ = writeln!(s, "virtual_ips = {}", strings(&i.virtual_ips));
    if !i.unicast_peers.is_empty() {
        let _ = writeln!(s, "unicast_peers = {}", strings(&i.unicast_peers));
    }
    if let Some(src) = &i.unicast_src {
        let _ = writeln!(s, "unicast_src = {}", quote(src));
    }
    if !i.allowed_peers.is_empty() {
        let _ = writeln!(s, "allowed_peers = {}", strings(&i.allowed_peers));
    }
    if i.garp != Garp::default() {
        let d = Garp::default();
        let mut parts = Vec::new();
        if i.garp.repeat != d.repeat {
            parts.push(format!("repeat = {}", i.garp.repeat));
        }
        if i.garp.interval != d.interval {
            parts.push(format!("interval = {}", duration(i.garp.interval)));
        }
        if i.garp.delay != d.delay {
            parts.push(format!("delay = {}", duration(i.garp.delay)));
        }
        if i.garp.refresh != d.refresh {
            parts.push(format!("refresh = {}", duration(i.garp.refresh)));
        }
        if i.garp.refresh_repeat != d.refresh_repeat {
            parts.push(format!("refresh_repeat = {}", i.garp.refresh_repeat));
        }
        let _ = writeln!(s, "garp = {{ {} }}", parts.join(", "));
    }
    tracked(s, "track_interfaces", "name", &i.track_interfaces);
    tracked(s, "track_scripts", "name", &i.track_scripts);
    tracked(s, "track_files", "path", &i.track_files);
    notify(s, &i.notify);
    if i.lower_prio_no_advert {
        s.push_str("lower_prio_no_advert = true\n");
    }
    if i.higher_prio_send_advert {
        s.push_str("higher_prio_send_advert = true\n");
    }
    if let Some(pass) = &i.auth_pass {
        let _ = writeln!(s, "auth_pass = {}", quote(pass));
    }
    inline_tables(s, "virtual_routes", &i.virtual_routes);
    inline_tables(s, "virtual_rules", &i.virtual_rules);
}

fn tracked(s: &mut String, key: &str, field: &str, list: &[(String, i64)]) {
    if list.is_empty() {
        return;
    }
    let items: Vec<String> = list
        .iter()
        .map(|(name, weight)| format!("{{ {field} = {}, weight = {weight} }}", quote(name)))
        .collect();
    let _ = writeln!(s, "{key} = [{}]", items.join(", "));
}

fn notify(s: &mut String, n: &Notify) {
    if n.is_empty() {
        return;
    }
    let parts: Vec<String> = [
        ("master", &n.master),
        ("backup", &n.backup),
        ("fault", &n.fault),
        ("stop", &n.stop),
        ("master_rx_lower_pri", &n.master_rx_lower_pri),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} = {}", quote(v))))
    .collect();
    let _ = writeln!(s, "notify = {{ {} }}", parts.join(", "));
}

fn script(s: &mut String, sc: &ScriptOut) {
    let _ = writeln!(s, "name = {}", quote(&sc.name));
    let _ = writeln!(s, "command = {}", strings(&sc.command));
    if let Some(u) = &sc.user {
        let _ = writeln!(s, "user = {}", quote(&u.user));
        if let Some(group) = &u.group {
            let _ = writeln!(s, "group = {}", quote(group));
        }
    }
    if let Some(d) = sc.interval {
        let _ = writeln!(s, "interval = {}", duration(d));
    }
    if let Some(d) = sc.timeout {
        let _ = writeln!(s, "timeout = {}", duration(d));
    }
    if let Some(n) = sc.rise {
        let _ = writeln!(s, "rise = {n}");
    }
    if let Some(n) = sc.fall {
        let _ = writeln!(s, "fall = {n}");
    }
}

fn sync_group(s: &mut String, g: &GroupOut) {
    let _ = writeln!(s, "name = {}", quote(&g.name));
    let _ = writeln!(s, "instances = {}", strings(&g.instances));
    notify(s, &g.notify);
}

fn virtual_server(s: &mut String, vs: &VirtualServerOut) {
    let _ = writeln!(s, "name = {}", quote(&vs.name));
    let _ = writeln!(s, "vip = {}", quote(&vs.vip.to_string()));
    let _ = writeln!(s, "port = {}", vs.port);
    let _ = writeln!(s, "protocol = {}", quote(vs.protocol));
    let _ = writeln!(s, "scheduler = {}", quote(vs.scheduler));
    let _ = writeln!(s, "instance = {}", quote(&vs.instance));
    match vs.forward {
        ForwardOut::Dr => {}
        ForwardOut::Ipip => s.push_str("forward = \"ipip\"\n"),
        ForwardOut::Gue { port } => {
            let _ = writeln!(s, "forward = \"gue\"\ngue_port = {port}");
        }
    }
    if let Some(q) = vs.quorum {
        let _ = writeln!(s, "quorum = {q}");
    }
    if let Some(sorry) = vs.sorry_server {
        let _ = writeln!(s, "sorry_server = {}", quote(&sorry.to_string()));
    }
    for rs in &vs.real_servers {
        s.push_str("\n[[virtual_server.real_server]]\n");
        let _ = writeln!(s, "address = {}", quote(&rs.address.to_string()));
        let _ = writeln!(s, "weight = {}", rs.weight);
        if let Some(check) = &rs.check {
            let _ = writeln!(s, "check = {}", self::check(check));
        }
    }
}

/// `{ kind = "tcp", interval = "6s", timeout = "3s", fall = 2 }`.
fn check(c: &CheckOut) -> String {
    let mut parts = Vec::new();
    let port = match &c.kind {
        CheckKindOut::Tcp { port } => {
            parts.push("kind = \"tcp\"".to_owned());
            *port
        }
        CheckKindOut::Http { port, .. } => {
            parts.push("kind = \"http\"".to_owned());
            *port
        }
        CheckKindOut::Script { command, user } => {
            parts.push("kind = \"script\"".to_owned());
            parts.push(format!("command = {}", strings(command)));
            if let Some(u) = user {
                parts.push(format!("user = {}", quote(&u.user)));
                if let Some(group) = &u.group {
                    parts.push(format!("group = {}", quote(group)));
                }
            }
            None
        }
    };
    parts.push(format!("interval = {}", duration(c.interval)));
    parts.push(format!("timeout = {}", duration(c.timeout)));
    if c.fall != 1 {
        parts.push(format!("fall = {}", c.fall));
    }
    if let Some(port) = port {
        parts.push(format!("port = {port}"));
    }
    if let CheckKindOut::Http {
        path, status, body, ..
    } = &c.kind
    {
        parts.push(format!("path = {}", quote(path)));
        if let Some(status) = status {
            parts.push(format!("expect_status = {status}"));
        }
        if let Some(body) = body {
            parts.push(format!("body = {}", quote(body)));
        }
    }
    format!("{{ {} }}", parts.join(", "))
}

/// A duration string vipflip reads: `"1s"`, `"100ms"`, `"1500us"`.
fn duration(us: Micros) -> String {
    if us.is_multiple_of(1_000_000) {
        format!("\"{}s\"", us / 1_000_000)
    } else if us.is_multiple_of(1_000) {
        format!("\"{}ms\"", us / 1_000)
    } else {
        format!("\"{us}us\"")
    }
}

fn strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A TOML basic string.
pub(super) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Comments stay on one line whatever the option held.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}
