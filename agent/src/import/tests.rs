//! Each fixture (a keepalived.conf checked with `keepalived -t`) converted: the exact TOML
//! (`fixtures/NAME.toml`; `VIPFLIP_BLESS=1` rewrites them), the exact reports, and that
//! vipflip's own check accepts the result. Then the parser's errors, message by message.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use core::time::Duration;

use super::{Import, import_keepalived, import_keepalived_command};
use crate::config::{CheckKind, Config, Forwarding, HealthCheck, LbScheduler};

/// Fixture paths as the tests pass them: relative to the crate (cargo runs tests there), so
/// messages and goldens do not depend on the checkout's location.
fn fixture(name: &str) -> PathBuf {
    Path::new("src/import/fixtures").join(name)
}

#[track_caller]
fn import(name: &str) -> Import {
    match import_keepalived(&fixture(name)) {
        Ok(import) => import,
        Err(errors) => panic!(
            "{name}: refused:\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// Converts `name`, compares with its golden TOML and `reports`, and checks that
/// `Config::parse` accepts the TOML with no warning but missing interfaces.
#[track_caller]
fn check(name: &str, golden: &str, reports: &[&str]) {
    let import = import(name);
    let golden_path = fixture(golden);
    if std::env::var_os("VIPFLIP_BLESS").is_some() {
        std::fs::write(&golden_path, &import.toml).expect("write the golden file");
    }
    let expected = std::fs::read_to_string(&golden_path)
        .unwrap_or_else(|e| panic!("{}: {e} (VIPFLIP_BLESS=1 writes it)", golden_path.display()));
    assert_eq!(import.toml, expected, "{name}: TOML differs from {golden}");
    let got: Vec<String> = import.reports.iter().map(ToString::to_string).collect();
    assert_eq!(got, reports, "{name}: reports");
    assert_eq!(
        import.lossless(),
        !reports.iter().any(|r| r.contains(": warning: ")),
        "{name}: lossless"
    );
    match Config::parse(&import.toml, golden) {
        Ok((config, warnings)) => {
            let unexpected: Vec<String> = warnings
                .iter()
                .map(ToString::to_string)
                .filter(|w| !w.contains("no such interface on this host"))
                .collect();
            assert_eq!(
                unexpected,
                Vec::<String>::new(),
                "{name}: check-config warnings"
            );
            assert!(!config.instances.is_empty());
        }
        Err(diags) => panic!(
            "{name}: vipflip refuses the import:\n{}\n{}",
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            import.toml
        ),
    }
}

const F: &str = "src/import/fixtures";

fn at(file: &str, rest: &str) -> String {
    format!("{F}/{file}:{rest}")
}

// --- fixtures ---

#[test]
fn pair_master() {
    check(
        "pair-master.conf",
        "pair-master.toml",
        &[&at(
            "pair-master.conf",
            "7: note: state MASTER: an initial state only, in keepalived too; vipflip starts as backup and the highest priority becomes master (255 at once)",
        )],
    );
}

#[test]
fn pair_backup() {
    check("pair-backup.conf", "pair-backup.toml", &[]);
}

#[test]
fn ipv6() {
    check("ipv6.conf", "ipv6.toml", &[]);
}

#[test]
fn v2_auth() {
    check(
        "v2-auth.conf",
        "v2-auth.toml",
        &[&at(
            "v2-auth.conf",
            "15: note: auth_pass: only the first 8 bytes are used (RFC 3768 §5.3.6.1), by keepalived too: \"s3cret-a\"",
        )],
    );
}

#[test]
fn unicast() {
    check(
        "unicast.conf",
        "unicast.toml",
        &[&at(
            "unicast.conf",
            "18: note: garp_master_refresh 60: carried as garp.refresh, the same period: while master, vipflip sends garp.refresh_repeat (keepalived's garp_master_refresh_repeat, default 1) GARP/NA per VIP each time",
        )],
    );
}

#[test]
fn sync_group_scripts_track_files() {
    check(
        "sync-scripts.conf",
        "sync-scripts.toml",
        &[
            &at(
                "sync-scripts.conf",
                "17: note: script killall -0 haproxy: `killall` is not an absolute path: keepalived searched $PATH, so vipflip runs it through /usr/bin/env; better, name the program's absolute path",
            ),
            &at(
                "sync-scripts.conf",
                "21: note: vrrp_script chk_unused: tracked by no vrrp_instance, so keepalived does not run it; left out",
            ),
            &at(
                "sync-scripts.conf",
                "43: note: weight: keepalived adds positive weights while the object is up; vipflip subtracts while it fails: priority 100 + 10 = 110, and each positive weight becomes negative",
            ),
            &at(
                "sync-scripts.conf",
                "60: note: weight: in vrrp_sync_group DB, keepalived sets tracking weights to 0 (fault while failing) unless the group has sync_group_tracking_weight; so does the import",
            ),
            &at(
                "sync-scripts.conf",
                "72: note: weight: in vrrp_sync_group DB, keepalived sets tracking weights to 0 (fault while failing) unless the group has sync_group_tracking_weight; so does the import",
            ),
        ],
    );
}

#[test]
fn includes_with_a_glob() {
    check(
        "include/keepalived.conf",
        "include/keepalived.toml",
        &[&at(
            "include/keepalived.conf",
            "6: note: include more/*.conf: matches no file; nothing included",
        )],
    );
}

#[test]
fn strict() {
    check(
        "strict.conf",
        "strict.toml",
        &[
            &at(
                "strict.conf",
                "2: note: vrrp_strict: accept = false on every instance (RFC 5798 accept mode); vipflip always applies the RFC's advert checks",
            ),
            &at(
                "strict.conf",
                "10: note: state MASTER: an initial state only, in keepalived too; vipflip starts as backup and the highest priority becomes master (255 at once)",
            ),
            &at(
                "strict.conf",
                "22: note: accept: strict mode overrides it, in keepalived too: accept = false",
            ),
        ],
    );
}

#[test]
fn script_user_and_script_security() {
    check(
        "script-user.conf",
        "script-user.toml",
        &[&at(
            "script-user.conf",
            "26: warning: nobody: vipflip runs every notify program as global.script_user (script_user in global_defs); a user per program is not carried",
        )],
    );
}

#[test]
fn master_events() {
    check("master-events.conf", "master-events.toml", &[]);
}

#[test]
fn garp_refresh() {
    // The report says what each setting became (issue #16: "if garp.refresh is it, make the
    // import say so").
    const REFRESH: &str = "carried as garp.refresh, the same period: while master, vipflip sends garp.refresh_repeat (keepalived's garp_master_refresh_repeat, default 1) GARP/NA per VIP each time";
    check(
        "garp-refresh.conf",
        "garp-refresh.toml",
        &[
            &at(
                "garp-refresh.conf",
                &format!("4: note: vrrp_garp_master_refresh 60: {REFRESH}"),
            ),
            &at(
                "garp-refresh.conf",
                &format!("25: note: garp_master_refresh 10: {REFRESH}"),
            ),
            &at(
                "garp-refresh.conf",
                "26: note: garp_master_refresh_repeat 3: carried as garp.refresh_repeat: GARP/NA per VIP in each refresh, sent at once; without a refresh period neither sends any",
            ),
        ],
    );
}

#[test]
fn unsupported() {
    check(
        "unsupported.conf",
        "unsupported.toml",
        &[
            &at(
                "unsupported.conf",
                "3: warning: notification_email: vipflip sends no e-mail; use notify programs or global.notify_fifo",
            ),
            &at(
                "unsupported.conf",
                "11: warning: script pidof haproxy | grep -q .: uses shell syntax; vipflip runs commands without a shell, so it became [\"/bin/sh\", \"-c\", …]: check it does what you mean",
            ),
            &at(
                "unsupported.conf",
                "16: note: state MASTER: an initial state only, in keepalived too; vipflip starts as backup and the highest priority becomes master (255 at once)",
            ),
            &at(
                "unsupported.conf",
                "18: warning: use_vmac: vipflip uses no virtual MAC: a VIP moves by GARP/NA, and an ex-master's XDP program forwards the traffic stale ARP caches still send it to the new master, which makes the macvlan unnecessary",
            ),
            &at(
                "unsupported.conf",
                "23: warning: auth_type AH: IPsec AH authentication (RFC 2338) is not supported; adverts go without it, and peers using AH will refuse them",
            ),
            &at(
                "unsupported.conf",
                "27: warning: dev eth1: vipflip puts every VIP on the instance's interface; a VIP on another device needs an instance there",
            ),
            &at(
                "unsupported.conf",
                "27: warning: label eth1:vip: vipflip adds addresses without a label (the ifconfig alias name)",
            ),
            &at(
                "unsupported.conf",
                "28: warning: scope link: vipflip adds addresses with scope global",
            ),
            &at(
                "unsupported.conf",
                "31: warning: virtual_ipaddress_excluded 192.0.2.200/24: vipflip advertises every virtual IP, and keepalived peers refuse adverts whose address count differs from their own; add it as a VIP on every router or to another instance",
            ),
            &at(
                "unsupported.conf",
                "36: warning: notify /etc/keepalived/notify.sh: vipflip has no catch-all notify program called with the new state; use notify_master/backup/fault/stop, or global.notify_fifo (one line per state change)",
            ),
            &at(
                "unsupported.conf",
                "37: warning: notify_master /etc/keepalived/master.sh VI_1: vipflip runs notify programs without arguments: put the command in a script and name that",
            ),
            &at(
                "unsupported.conf",
                "38: warning: dont_track_primary: vipflip has no equivalent; not carried",
            ),
            &at(
                "unsupported.conf",
                "44: warning: virtual_server 192.0.2.95 80: lb_kind TUN type gre: vipflip tunnels by IPIP and GUE, not GRE; real servers that decapsulate IPIP can take forward = \"ipip\" (on Linux: `vipflip real-server --forward ipip`). Nothing in this block was carried",
            ),
        ],
    );
}

#[test]
fn syntax_corners() {
    check("syntax.conf", "syntax.toml", &[]);
    let source = super::parse::parse(&fixture("syntax.conf")).expect("parses");
    let mut lines = Vec::new();
    for stmt in &source.stmts {
        tree(stmt, 0, &mut lines);
    }
    assert_eq!(
        lines,
        [
            "2 global_defs",
            "  3 router_id|edge 1",
            "5 vrrp_instance|VI_1",
            "  7 interface|eth0",
            "  8 virtual_router_id|1",
            "  9 virtual_ipaddress",
            "    9 192.0.2.5/24|dev|eth0",
            "  10 notify_master|/etc/keepalived/master.sh",
            "  11 notify_backup|/etc/keepalived/backup.here.sh",
        ]
    );
}

/// `LINE word|word|…`, indented by depth.
fn tree(stmt: &super::parse::Stmt, depth: usize, out: &mut Vec<String>) {
    let words: Vec<&str> = stmt.words.iter().map(|w| w.text.as_str()).collect();
    out.push(format!(
        "{}{} {}",
        "  ".repeat(depth),
        stmt.loc().line,
        words.join("|")
    ));
    for child in stmt.children() {
        tree(child, depth + 1, out);
    }
}

// --- the command's exit status ---

#[test]
fn exit_status() {
    assert_eq!(
        import_keepalived_command(&fixture("pair-backup.conf")),
        ExitCode::SUCCESS
    );
    assert_eq!(
        import_keepalived_command(&fixture("unsupported.conf")),
        ExitCode::from(2)
    );
    assert_eq!(
        import_keepalived_command(&fixture("errors/unclosed.conf")),
        ExitCode::FAILURE
    );
}

// --- errors ---

#[track_caller]
fn refused(name: &str, expected: &[&str]) {
    match import_keepalived(&fixture(name)) {
        Ok(import) => panic!("{name}: accepted:\n{}", import.toml),
        Err(errors) => {
            let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let expected: Vec<String> = expected.iter().map(|e| format!("{F}/{e}")).collect();
            assert_eq!(got, expected);
        }
    }
}

#[test]
fn unclosed_brace() {
    refused(
        "errors/unclosed.conf",
        &["errors/unclosed.conf:1: error: unbalanced braces: this `{` is never closed"],
    );
}

#[test]
fn extra_closing_brace() {
    refused(
        "errors/extra-close.conf",
        &["errors/extra-close.conf:4: error: unbalanced braces: this `}` closes no block"],
    );
}

#[test]
fn unterminated_quote() {
    refused(
        "errors/unterminated-quote.conf",
        &[
            "errors/unterminated-quote.conf:2: error: unterminated quote: the \" is not closed on this line",
        ],
    );
}

#[test]
fn include_cycle() {
    refused(
        "errors/cycle-a.conf",
        &[&format!(
            "errors/cycle-b.conf:4: error: include cycle: {F}/errors/cycle-a.conf -> {F}/errors/cycle-b.conf -> {F}/errors/cycle-a.conf"
        )],
    );
}

#[test]
fn missing_include() {
    refused(
        "errors/missing-include.conf",
        &[&format!(
            "errors/missing-include.conf:4: error: include missing.conf: cannot read {F}/errors/missing.conf: no such file"
        )],
    );
}

#[test]
fn missing_file() {
    refused(
        "errors/no-such.conf",
        &["errors/no-such.conf: error: cannot read: No such file or directory (os error 2)"],
    );
}

#[test]
fn invalid_values_all_reported() {
    refused(
        "errors/invalid.conf",
        &[
            "errors/invalid.conf:3: error: `priority 300`: expected an integer in 1..=255",
            "errors/invalid.conf:5: error: virtual_ipaddress `192.0.2.1/33`: expected an address or address/prefix",
            "errors/invalid.conf:1: error: vrrp_instance VI_1: no `virtual_router_id`",
        ],
    );
}

#[test]
fn lvs_direct_routing() {
    check(
        "lvs-dr.conf",
        "lvs-dr.toml",
        &[
            &at(
                "lvs-dr.conf",
                "7: note: state MASTER: an initial state only, in keepalived too; vipflip starts as backup and the highest priority becomes master (255 at once)",
            ),
            &at(
                "lvs-dr.conf",
                "23: note: quorum 2: keepalived sums the weights of live servers, vipflip counts healthy servers: quorum = 1 of 3",
            ),
            &at(
                "lvs-dr.conf",
                "31: note: delay_before_retry: vipflip checks again after the interval, not sooner: a failing server goes down after fall × interval",
            ),
            &at(
                "lvs-dr.conf",
                "56: note: lb_algo rr: round robin ignores weights: wrr with weight 1 for every real server (0 still drains)",
            ),
            &at(
                "lvs-dr.conf",
                "59: note: persistence_timeout: vipflip has no persistence timeout; scheduler = \"sh\" (source hashing) keeps each client on one server instead of \"wrr\"",
            ),
            &at(
                "lvs-dr.conf",
                "63: note: TCP_CHECK: its timeout is longer than its delay_loop; vipflip ends a check before the next one: timeout = the interval",
            ),
            &at(
                "lvs-dr.conf",
                "75: warning: virtual_server 192.0.2.100 443: lb_kind NAT: vipflip forwards by Direct Routing, IPIP or GUE and never rewrites the destination address, as NAT does. Nothing in this block was carried",
            ),
            &at(
                "lvs-dr.conf",
                "88: note: lb_algo lc: the XDP data plane keeps no connection counts, so least-connection and the other kernel schedulers have no equivalent: maglev (consistent hashing by weight) instead",
            ),
            &at(
                "lvs-dr.conf",
                "91: note: inhibit_on_failure: keepalived keeps a failed server with weight 0; vipflip takes it out of the table (a drained server, weight = 0, keeps its established flows)",
            ),
            &at(
                "lvs-dr.conf",
                "100: warning: virtual_server_group WEB: vipflip has no virtual_server_group: write one virtual_server per address and port",
            ),
            &at(
                "lvs-dr.conf",
                "104: warning: virtual_server 198.51.100.7 80: no vrrp_instance has 198.51.100.7 in its virtual_ipaddress; a vipflip virtual_server follows the instance that owns its VIP. Nothing in this block was carried",
            ),
        ],
    );
    // What the data plane gets, as vipflip reads the TOML.
    let import = import("lvs-dr.conf");
    let (config, _) = Config::parse(&import.toml, "lvs-dr.toml").expect("accepted");
    let services: Vec<(&str, &str, LbScheduler, usize)> = config
        .virtual_servers
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.instance().unwrap(),
                v.scheduler,
                v.real_servers.len(),
            )
        })
        .collect();
    assert_eq!(
        services,
        [
            ("192.0.2.100:80/tcp", "VI_1", LbScheduler::Wrr, 3),
            ("192.0.2.101:53/udp", "VI_1", LbScheduler::Sh, 2),
            ("192.0.2.101:8080/tcp", "VI_1", LbScheduler::Maglev, 1),
        ]
    );
    let web = &config.virtual_servers[0];
    assert_eq!(web.quorum, 1);
    assert_eq!(web.sorry_server, Some("192.0.2.30".parse().unwrap()));
    assert_eq!(
        web.real_servers[0].check,
        Some(HealthCheck {
            kind: CheckKind::Tcp { port: 80 },
            interval: Duration::from_secs(6),
            timeout: Duration::from_secs(3),
            rise: 1,
            fall: 3,
            hold_down: Duration::ZERO,
        })
    );
    assert_eq!(
        web.real_servers[2].check.as_ref().map(|c| &c.kind),
        Some(&CheckKind::Script {
            command: vec![
                "/usr/local/bin/check_web".to_owned(),
                "192.0.2.23".to_owned()
            ],
            run_as: crate::track::RunAs::default(),
        })
    );
}

/// `virtual_routes`, `virtual_rules` and the statics, in keepalived's words (`gw`, `or`,
/// `src … to …`, types first, rules without preference).
#[test]
fn routes_rules_and_statics() {
    check(
        "routes.conf",
        "routes.toml",
        &[
            &at(
                "routes.conf",
                "3: warning: label eth1:mgmt: vipflip adds static addresses with the prefix only (kernel defaults for the rest)",
            ),
            &at(
                "routes.conf",
                "13: note: static_rules fwmark 7 lookup 101: no preference: keepalived gives it 16384, and so does the import",
            ),
            &at(
                "routes.conf",
                "28: note: no_track: vipflip does not watch its routes for removal by others (keepalived's tracking that no_track turns off); nothing to turn off",
            ),
            &at(
                "routes.conf",
                "29: warning: mtu 1400: vipflip does not set this route attribute; the route is carried without it",
            ),
            &at(
                "routes.conf",
                "30: warning: virtual_routes 198.51.105.0/24 via 192.0.2.1 or 192.0.2.2: vipflip writes single-path routes; a multipath route (`or`, `nexthop`) is not carried: write one route per gateway with its own metric",
            ),
            &at(
                "routes.conf",
                "31: warning: virtual_routes throw 198.51.106.0/24: vipflip writes unicast, blackhole, unreachable and prohibit routes, not throw",
            ),
            &at(
                "routes.conf",
                "35: note: virtual_rules to 198.51.101.0/24 iif eth0 fwmark 0x10/0xff prohibit: no preference: keepalived gives it 16383, and so does the import",
            ),
            &at(
                "routes.conf",
                "36: warning: virtual_rules from 192.0.2.101 tos 0x10 table 101: vipflip writes no rule with `tos`; without it the rule would match more, so it is not carried",
            ),
        ],
    );
}

#[test]
fn invalid_routes_rules_and_addresses_all_reported() {
    refused(
        "errors/routes.conf",
        &[
            "errors/routes.conf:2: error: `static_routes 198.51.100.0/24 via`: `via` needs a value",
            "errors/routes.conf:3: error: `198.51.100.0/33`: expected a prefix like 192.0.2.0/24",
            "errors/routes.conf:6: error: `priority high`: expected a number in 0..=4294967295",
            "errors/routes.conf:9: error: `static_ipaddress nonsense dev eth0`: expected an address or address/prefix",
        ],
    );
}

#[test]
fn lvs_tunnels() {
    check(
        "lvs-tun.conf",
        "lvs-tun.toml",
        &[
            &at(
                "lvs-tun.conf",
                "22: note: lb_algo mh: maglev: the same consistent hashing, over the whole connection rather than the client address alone (set scheduler = \"sh\" to keep a client on one server)",
            ),
            &at(
                "lvs-tun.conf",
                "40: warning: real_server 198.51.100.23 80 lvs_method DR: vipflip forwards to every real server of a service alike (forward = \"ipip\"); this real server is left out",
            ),
            &at(
                "lvs-tun.conf",
                "46: note: remcsum: remote checksum offload needs a GUE header, and vipflip sends GUE variant 1 (the inner packet right after UDP) with a zero UDP checksum; the real servers' fou decapsulates both",
            ),
            &at(
                "lvs-tun.conf",
                "49: warning: sorry_server_lvs_method DR: vipflip forwards to the sorry server as to the real servers (forward = \"gue\"); the sorry server is left out",
            ),
            &at(
                "lvs-tun.conf",
                "60: warning: real_server 198.51.100.24 443 lvs_method TUN type gue port 6081: vipflip forwards to every real server of a service alike (forward = \"gue\"); this real server is left out",
            ),
            &at(
                "lvs-tun.conf",
                "66: warning: virtual_server 192.0.2.102 80: lvs_method TUN type gre: vipflip tunnels by IPIP and GUE, not GRE; real servers that decapsulate IPIP can take forward = \"ipip\" (on Linux: `vipflip real-server --forward ipip`). Nothing in this block was carried",
            ),
            &at(
                "lvs-tun.conf",
                "75: warning: virtual_server 192.0.2.103 80: lvs_method NAT: vipflip forwards by Direct Routing, IPIP or GUE and never rewrites the destination address, as NAT does. Nothing in this block was carried",
            ),
        ],
    );
    // What the data plane gets, as vipflip reads the TOML: `lb_kind TUN` alone and
    // `type ipip` are IPIP, `type gue port N` is GUE to that port; the sorry server of the
    // IPIP service (`sorry_server_lvs_method TUN`) is kept, the GUE one's (DR) is not.
    let import = import("lvs-tun.conf");
    let (config, _) = Config::parse(&import.toml, "lvs-tun.toml").expect("accepted");
    let services: Vec<(&str, Forwarding, usize, bool)> = config
        .virtual_servers
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.forward,
                v.real_servers.len(),
                v.sorry_server.is_some(),
            )
        })
        .collect();
    assert_eq!(
        services,
        [
            (
                "192.0.2.100:80/tcp",
                Forwarding::Ipip { source: None },
                2,
                true
            ),
            (
                "192.0.2.101:443/tcp",
                Forwarding::Gue {
                    port: 6080,
                    source: None
                },
                2,
                false
            ),
        ]
    );
}

#[test]
fn lvs_method_syntax_keepalived_refuses_is_refused() {
    let dir = std::env::temp_dir().join(format!("vipflip-import-tun-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (method, message) in [
        (
            "TUN type ipip csum",
            "`lvs_method TUN type ipip csum`: expected NAT, DR or TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]] (ipip takes no checksum option, gre no remcsum)",
        ),
        (
            "TUN type gre remcsum",
            "`lvs_method TUN type gre remcsum`: expected NAT, DR or TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]] (ipip takes no checksum option, gre no remcsum)",
        ),
        (
            "TUN type gue",
            "`lvs_method TUN type gue`: expected NAT, DR or TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]] (ipip takes no checksum option, gre no remcsum)",
        ),
        (
            "TUN type gue port 0",
            "`lvs_method TUN type gue port 0`: gue port `0`: expected 1..=65535",
        ),
        (
            "TUN type gue port 6080 fastcsum",
            "`lvs_method TUN type gue port 6080 fastcsum`: `fastcsum`: expected nocsum, csum or remcsum",
        ),
        (
            "tun",
            "`lvs_method tun`: expected NAT, DR or TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]] (ipip takes no checksum option, gre no remcsum)",
        ),
    ] {
        let path = dir.join("keepalived.conf");
        std::fs::write(
            &path,
            format!(
                "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    virtual_ipaddress {{\n        192.0.2.100/24\n    }}\n}}\nvirtual_server 192.0.2.100 80 {{\n    protocol TCP\n    lvs_method {method}\n    real_server 198.51.100.21 80 {{\n    }}\n}}\n"
            ),
        )
        .expect("write the configuration");
        let errors: Vec<String> = match import_keepalived(&path) {
            Ok(import) => panic!("{method}: accepted:\n{}", import.toml),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(
            errors,
            [format!("{}:11: error: {message}", path.display())],
            "{method}"
        );
    }
    std::fs::remove_dir_all(&dir).expect("remove the temp dir");
}
