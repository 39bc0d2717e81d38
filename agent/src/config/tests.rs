//! Every rule with the exact message it prints, the example file, and the mapping to the
//! state machine's configuration.

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::diagnostic::LineIndex;
use super::{
    CheckKind, Config, Forwarding, Garp, HealthCheck, Host, HttpBodyMatch, LbProtocol, LbScheduler,
    Location, RealServerSpec, TrackScript, Weight, XdpMode, check_config,
};
use crate::track::RunAs;
use crate::track::security::{FileKind, PathFacts, ScriptFs};
use crate::wire::{Auth, Family, Priority, V3Ipv4Checksum, VirtualAddrs, VrId, VrrpVersion};

mod cores;
mod routes;
mod routing;
mod scripts;

/// A host with eth0, eth1 and lo, named "testhost".
struct FakeHost;

impl Host for FakeHost {
    fn interface_exists(&self, name: &str) -> bool {
        matches!(name, "eth0" | "eth1" | "lo")
    }

    fn hostname(&self) -> Option<String> {
        Some("testhost".to_owned())
    }

    fn user(&self, name: &str) -> Option<(u32, u32)> {
        match name {
            "root" => Some((0, 0)),
            "vipflip" => Some((990, 990)),
            _ => None,
        }
    }

    fn group(&self, name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "vipflip" => Some(990),
            "checkers" => Some(991),
            _ => None,
        }
    }
}

/// Scripts under `/srv` exist: `/srv/safe/*.sh` root's alone, `/srv/shared/*.sh` in a
/// directory group 1000 can write. Anything else is missing (not judged, see
/// `track::security`). The daemon runs as root.
impl ScriptFs for FakeHost {
    fn lstat(&self, path: &Path) -> std::io::Result<PathFacts> {
        let dir = |gid, mode| PathFacts {
            kind: FileKind::Directory,
            uid: 0,
            gid,
            mode,
        };
        let text = path.to_str().unwrap_or_default();
        match text {
            "/" | "/srv" | "/srv/safe" => Ok(dir(0, 0o755)),
            "/srv/shared" => Ok(dir(1000, 0o775)),
            _ if path.extension().is_some_and(|e| e == "sh") => Ok(PathFacts {
                kind: FileKind::Regular,
                uid: 0,
                gid: 0,
                mode: 0o755,
            }),
            _ => Err(std::io::ErrorKind::NotFound.into()),
        }
    }

    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        if path.starts_with("/srv") {
            Ok(path.to_owned())
        } else {
            Err(std::io::ErrorKind::NotFound.into())
        }
    }

    fn daemon_ids(&self) -> (u32, u32) {
        (0, 0)
    }
}

fn parse(text: &str) -> Result<(Config, Vec<String>), Vec<String>> {
    let render = |ds: Vec<super::Diagnostic>| ds.iter().map(ToString::to_string).collect();
    match Config::parse_on(text, "t.toml", &FakeHost) {
        Ok((config, warnings)) => Ok((config, render(warnings))),
        Err(diags) => Err(render(diags)),
    }
}

#[track_caller]
fn accepted(text: &str) -> Config {
    match parse(text) {
        Ok((config, warnings)) => {
            assert_eq!(warnings, Vec::<String>::new());
            config
        }
        Err(diags) => panic!("refused:\n{}", diags.join("\n")),
    }
}

#[track_caller]
fn refused(text: &str, expected: &[&str]) {
    match parse(text) {
        Ok((config, _)) => panic!("accepted: {config:?}"),
        Err(diags) => assert_eq!(diags, expected),
    }
}

/// One IPv4 instance on line 1..=5; tests append keys at line 6.
fn instance(extra: &str) -> String {
    format!(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.100/24\"]\n{extra}"
    )
}

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vipflip.toml")
}

// --- the example and the defaults ---

#[test]
fn example_parses_without_diagnostics() {
    let text = std::fs::read_to_string(example_path()).expect("examples/vipflip.toml");
    let config = accepted(&text);
    assert_eq!(config.global.router_id, "edge-1");
    assert_eq!(
        config.global.metrics_listen,
        Some("127.0.0.1:9477".parse().unwrap())
    );
    assert_eq!(config.instances.len(), 2);
    assert_eq!(config.scripts.len(), 1);
    assert_eq!(config.sync_groups.len(), 1);
    assert_eq!(config.sync_groups[0].instances, ["VI_1", "VI_6"]);
    assert_eq!(
        config.summary(),
        "config OK: 2 instances, 1 script, 1 sync group"
    );

    let v4 = &config.instances[0];
    assert_eq!(v4.family(), Family::Ipv4);
    let vrrp = v4.vrrp_config(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(vrrp.validate(), Ok(()));
    assert_eq!(vrrp.priority, Priority(150));
    assert_eq!(vrrp.advert_interval, Duration::from_millis(100));
    assert!(vrrp.accept);

    let v6 = &config.instances[1];
    assert_eq!(v6.family(), Family::Ipv6);
    let vrrp = v6.vrrp_config(IpAddr::V6("fe80::1".parse().unwrap()));
    assert_eq!(vrrp.validate(), Ok(()));
    assert_eq!(
        vrrp.virtual_addrs,
        VirtualAddrs::V6(vec!["2001:db8::100".parse().unwrap()])
    );
}

#[test]
fn check_config_reports_the_example_ok() {
    // The real host: eth0/eth1 may be missing here, which only warns.
    let report = check_config(&example_path());
    assert!(report.ok(), "{}", report.render_diagnostics());
    assert!(report.diagnostics.iter().all(|d| !d.is_error()));
    assert!(
        report
            .summary
            .unwrap()
            .starts_with("config OK: 2 instances, 1 script, 1 sync group")
    );
}

#[test]
fn check_config_reports_an_unreadable_file() {
    let report = check_config(Path::new("/nonexistent/vipflip.toml"));
    assert!(!report.ok());
    assert_eq!(
        report.render_diagnostics(),
        "/nonexistent/vipflip.toml: error: cannot read the configuration: No such file or directory (os error 2)\n"
    );
}

#[test]
fn defaults() {
    let config = accepted(&instance(""));
    let g = &config.global;
    assert_eq!(g.router_id, "testhost");
    assert_eq!(g.pin_dir, Path::new("/sys/fs/bpf/vipflip"));
    assert_eq!(g.control_socket, Path::new("/run/vipflip.sock"));
    assert_eq!(g.metrics_listen, None);
    assert_eq!(g.xdp_mode, XdpMode::Auto);
    assert_eq!(g.notify_fifo, None);
    assert_eq!(g.flow_insert_rate, 125_000, "katran's default");
    let i = &config.instances[0];
    assert_eq!(i.vrid, VrId(51));
    assert_eq!(i.version, VrrpVersion::V3);
    assert_eq!(i.priority, Priority(100));
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert!(i.preempt);
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert!(i.accept);
    assert_eq!(i.virtual_ips, ["192.0.2.100/24".parse().unwrap()]);
    assert!(i.unicast_peers.is_empty() && i.allowed_peers.is_empty());
    assert_eq!(i.unicast_src, None);
    assert_eq!(i.checksum, V3Ipv4Checksum::Rfc5798);
    assert_eq!(
        i.garp,
        Garp {
            repeat: 5,
            interval: Duration::ZERO,
            delay: Duration::from_secs(5),
            refresh: Duration::ZERO,
            refresh_repeat: 1,
        }
    );
    assert!(!i.lower_prio_no_advert);
    assert!(!i.higher_prio_send_advert);
    assert_eq!(i.handoff_bound, None);
    assert_eq!(i.forward_window, Duration::from_secs(5));
    assert_eq!(i.auth_pass, None);
    assert_eq!(i.auth(), Auth::None);
}

#[test]
fn flow_insert_rate_is_a_count_or_zero() {
    let config = accepted(&format!("[global]\nflow_insert_rate = 0\n{}", instance("")));
    assert_eq!(config.global.flow_insert_rate, 0, "no limit");
    refused(
        &format!("[global]\nflow_insert_rate = -1\n{}", instance("")),
        &[
            "t.toml:2:20: error: global.flow_insert_rate = -1: must be in 0..=4294967295 (new flows each CPU remembers per second; 0 = no limit)",
        ],
    );
}

#[test]
fn an_address_without_prefix_is_a_host_route() {
    let config = accepted(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"192.0.2.7\", \"192.0.2.8/32\"]\n",
    );
    assert_eq!(
        config.instances[0].virtual_ips,
        [
            "192.0.2.7/32".parse().unwrap(),
            "192.0.2.8/32".parse().unwrap()
        ]
    );
}

#[test]
fn empty_file_warns_there_is_nothing_to_do() {
    let (config, warnings) = parse("").unwrap();
    assert!(config.instances.is_empty());
    assert_eq!(
        warnings,
        [
            "t.toml:1:1: warning: no [[instance]] or [[virtual_server]] is configured: the daemon would do nothing"
        ]
    );
}

// --- syntax and positions ---

#[test]
fn toml_syntax_errors_carry_line_and_column() {
    refused(
        "[global]\nrouter_id = \"edge-1\nxdp_mode = \"auto\"\n",
        &["t.toml:2:20: error: invalid TOML: invalid basic string, expected `\"`"],
    );
}

#[test]
fn duplicate_toml_keys_are_syntax_errors() {
    refused(
        &instance("vrid = 52\n"),
        &["t.toml:6:1: error: invalid TOML: duplicate key"],
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let index = LineIndex::new("a = \"é\"\nbé = 1\n");
    assert_eq!(index.locate(0), Location { line: 1, column: 1 });
    assert_eq!(index.locate(9), Location { line: 2, column: 1 });
    // `=` on line 2 is byte 13, character 4.
    assert_eq!(index.locate(13), Location { line: 2, column: 4 });
    // Past the end, and inside a character: clamped.
    assert_eq!(index.locate(100), Location { line: 3, column: 1 });
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    refused(
        "[[instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 0\npriority = 256\nvirtual_ips = [\"192.0.2.100/24\"]\nadvert_interval = \"15ms\"\n",
        &[
            "t.toml:4:8: error: instance \"VI_1\": vrid = 0: must be in 1..=255 (RFC 5798 §5.2.3)",
            "t.toml:5:12: error: instance \"VI_1\": priority = 256: must be in 1..=255 (255 = address owner; 0 is reserved for a resigning master, RFC 5798 §5.2.4)",
            "t.toml:7:19: error: instance \"VI_1\": advert_interval = \"15ms\": VRRPv3 carries centiseconds, use a multiple of 10ms in 10ms..=40.95s",
        ],
    );
}

// --- unknown keys ---

#[test]
fn unknown_key_suggests_the_closest() {
    refused(
        &instance("advert_intervl = \"1s\"\n"),
        &[
            "t.toml:6:1: error: instance \"VI_1\": unknown key `advert_intervl`; did you mean `advert_interval`?",
        ],
    );
}

#[test]
fn unknown_keepalived_key_names_the_vipflip_key() {
    refused(
        &instance("advert_int = 1\nnopreempt = true\n"),
        &[
            "t.toml:6:1: error: instance \"VI_1\": unknown key `advert_int`; did you mean `advert_interval`?",
            "t.toml:7:1: error: instance \"VI_1\": unknown key `nopreempt`; use `preempt = false`",
        ],
    );
}

#[test]
fn unknown_key_without_a_close_one_lists_the_valid_keys() {
    refused(
        "[global]\nzzz = 1\n",
        &[
            "t.toml:2:1: error: unknown key `global.zzz`; valid keys here: router_id, pin_dir, control_socket, metrics_listen, xdp_mode, notify_fifo, script_user, script_group, script_security, flow_insert_rate",
        ],
    );
}

#[test]
fn unknown_key_in_a_nested_table() {
    refused(
        &instance("garp = { repet = 3 }\n"),
        &[
            "t.toml:6:10: error: instance \"VI_1\": unknown key `garp.repet`; did you mean `garp.repeat`?",
        ],
    );
}

#[test]
fn unknown_top_level_table() {
    refused(
        "[[instances]]\nname = \"x\"\n",
        &["t.toml:1:3: error: unknown key `instances`; did you mean `instance`?"],
    );
}

#[test]
fn instance_must_be_an_array_of_tables() {
    refused(
        "[instance]\nname = \"x\"\n",
        &["t.toml:1:1: error: `instance` must be an array of tables: write each as `[[instance]]`"],
    );
}

// --- ranges ---

#[test]
fn vrid_out_of_range() {
    let text = "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 256\nvirtual_ips = [\"192.0.2.1\"]\n";
    refused(
        text,
        &["t.toml:4:8: error: instance \"a\": vrid = 256: must be in 1..=255 (RFC 5798 §5.2.3)"],
    );
}

#[test]
fn priority_zero() {
    refused(
        &instance("priority = 0\n"),
        &[
            "t.toml:6:12: error: instance \"VI_1\": priority = 0: must be in 1..=255 (255 = address owner; 0 is reserved for a resigning master, RFC 5798 §5.2.4)",
        ],
    );
}

#[test]
fn version_other_than_2_or_3() {
    refused(
        &instance("version = 4\n"),
        &[
            "t.toml:6:11: error: instance \"VI_1\": version = 4: must be 2 (RFC 3768) or 3 (RFC 5798)",
        ],
    );
}

#[test]
fn v3_interval_must_be_whole_centiseconds_in_range() {
    for bad in ["15ms", "5ms", "41s", "0s"] {
        refused(
            &instance(&format!("advert_interval = \"{bad}\"\n")),
            &[&format!(
                "t.toml:6:19: error: instance \"VI_1\": advert_interval = \"{bad}\": VRRPv3 carries centiseconds, use a multiple of 10ms in 10ms..=40.95s"
            )],
        );
    }
    for good in ["10ms", "40.95s", "1s 20ms"] {
        accepted(&instance(&format!("advert_interval = \"{good}\"\n")));
    }
}

#[test]
fn v2_interval_must_be_whole_seconds_in_range() {
    for bad in ["1500ms", "256s", "0s", "500ms"] {
        refused(
            &instance(&format!("version = 2\nadvert_interval = \"{bad}\"\n")),
            &[&format!(
                "t.toml:7:19: error: instance \"VI_1\": advert_interval = \"{bad}\": VRRPv2 carries whole seconds, use 1s..=255s"
            )],
        );
    }
    let config = accepted(&instance("version = 2\nadvert_interval = \"255s\"\n"));
    assert_eq!(
        config.instances[0].advert_interval,
        Duration::from_secs(255)
    );
}

#[test]
fn a_duration_must_be_a_duration_string() {
    refused(
        &instance("preempt_delay = 5\nforward_window = \"5 parsecs\"\n"),
        &[
            "t.toml:6:17: error: instance \"VI_1\": preempt_delay = 5: expected a duration string like \"1s\", \"100ms\" or \"1m 30s\"",
            "t.toml:7:18: error: instance \"VI_1\": forward_window = \"5 parsecs\": unknown time unit \"parsecs\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations); expected a duration like \"1s\", \"100ms\" or \"1m 30s\"",
        ],
    );
}

#[test]
fn type_errors_say_what_was_expected() {
    refused(
        &instance("preempt = \"yes\"\nvirtual_ips_ = 1\n"),
        &[
            "t.toml:6:11: error: instance \"VI_1\": preempt = \"yes\": expected true or false",
            "t.toml:7:1: error: instance \"VI_1\": unknown key `virtual_ips_`; did you mean `virtual_ips`?",
        ],
    );
}

#[test]
fn garp_repeat_zero() {
    refused(
        &instance("garp = { repeat = 0 }\n"),
        &[
            "t.toml:6:19: error: instance \"VI_1\": garp.repeat = 0: must be in 1..=255 (messages per VIP in each burst)",
        ],
    );
    let config = accepted(&instance("garp = { repeat = 2, refresh = \"60s\" }\n"));
    assert_eq!(config.instances[0].garp.repeat, 2);
    assert_eq!(config.instances[0].garp.delay, Duration::from_secs(5));
    assert_eq!(config.instances[0].garp.refresh, Duration::from_mins(1));
    assert_eq!(config.instances[0].garp.refresh_repeat, 1);
}

#[test]
fn garp_refresh_repeat() {
    refused(
        &instance("garp = { refresh = \"60s\", refresh_repeat = 0 }\n"),
        &[
            "t.toml:6:44: error: instance \"VI_1\": garp.refresh_repeat = 0: must be in 1..=255 (messages per VIP in each refresh)",
        ],
    );
    let config = accepted(&instance(
        "garp = { refresh = \"10s\", refresh_repeat = 3 }\n",
    ));
    assert_eq!(config.instances[0].garp.refresh_repeat, 3);
}

#[test]
fn weights_out_of_range() {
    refused(
        &instance(
            "track_interfaces = [{ name = \"eth1\", weight = -255 }]\ntrack_files = [{ path = \"/run/p\", weight = 255 }]\n",
        ),
        &[
            "t.toml:6:47: error: instance \"VI_1\": track_interfaces[0].weight = -255: must be an integer in -254..=254 (0 = fault while failing)",
            "t.toml:7:44: error: instance \"VI_1\": track_files[0].weight = 255: must be an integer in -254..=254 (0 = fault while failing)",
        ],
    );
    let config = accepted(&instance("track_interfaces = [{ name = \"eth1\" }]\n"));
    assert!(config.instances[0].track_interfaces[0].weight.is_fault());
}

const SCRIPT: &str = "track_scripts = [{ name = \"chk\", weight = -30 }]\n[[script]]\nname = \"chk\"\ncommand = [\"/bin/true\"]\n";

#[test]
fn script_rise_fall_zero_and_timeout_zero() {
    refused(
        &instance(&format!("{SCRIPT}rise = 0\nfall = 0\ntimeout = \"0s\"\n")),
        &[
            "t.toml:10:8: error: script \"chk\": rise = 0: must be at least 1 (results in a row)",
            "t.toml:11:8: error: script \"chk\": fall = 0: must be at least 1 (results in a row)",
            "t.toml:12:11: error: script \"chk\": timeout = \"0s\": must be more than 0",
        ],
    );
}

#[test]
fn script_timeout_longer_than_interval_is_allowed_as_keepalived() {
    let config = accepted(&instance(&format!(
        "{SCRIPT}interval = \"1s\"\ntimeout = \"3s\"\n"
    )));
    let s = &config.scripts[0];
    assert_eq!(
        (s.interval, s.timeout, s.rise, s.fall),
        (Duration::from_secs(1), Duration::from_secs(3), 1, 1)
    );
    assert_eq!(s.command, ["/bin/true"]);
    assert_eq!(
        config.instances[0].track_scripts,
        [TrackScript {
            name: "chk".to_owned(),
            weight: Weight(-30)
        }]
    );
}

#[test]
fn script_timeout_defaults_to_the_interval() {
    let config = accepted(&instance(&format!("{SCRIPT}interval = \"2s\"\n")));
    assert_eq!(config.scripts[0].timeout, Duration::from_secs(2));
}

#[test]
fn script_command_must_be_an_absolute_program() {
    refused(
        &instance(
            "track_scripts = [{ name = \"chk\" }]\n[[script]]\nname = \"chk\"\ncommand = [\"curl\", \"-f\"]\n",
        ),
        &[
            "t.toml:9:12: error: script \"chk\": command[0] = \"curl\": the program must be an absolute path (scripts run without a shell or $PATH)",
        ],
    );
    refused(
        &instance(
            "track_scripts = [{ name = \"chk\" }]\n[[script]]\nname = \"chk\"\ncommand = []\n",
        ),
        &[
            "t.toml:9:11: error: script \"chk\": command = []: must name a program, e.g. [\"/usr/bin/curl\", \"-fsS\", \"http://127.0.0.1/health\"]",
        ],
    );
}

// --- duplicates ---

#[test]
fn duplicate_instance_names() {
    let text = format!(
        "{}[[instance]]\nname = \"VI_1\"\ninterface = \"eth1\"\nvrid = 52\nvirtual_ips = [\"192.0.2.200/24\"]\n",
        instance("")
    );
    refused(
        &text,
        &[
            "t.toml:7:8: error: instance \"VI_1\": name \"VI_1\" is already used by the instance at line 2; instance names must be unique",
        ],
    );
}

#[test]
fn duplicate_interface_vrid_family() {
    let text = format!(
        "{}[[instance]]\nname = \"VI_2\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"192.0.2.200/24\"]\n",
        instance("")
    );
    refused(
        &text,
        &[
            "t.toml:9:8: error: instance \"VI_2\": vrid = 51: instance \"VI_1\" (line 4) already runs VRID 51 for IPv4 on eth0; one virtual router per (interface, vrid, family)",
        ],
    );
}

#[test]
fn same_vrid_for_the_other_family_or_interface_is_fine() {
    let text = format!(
        "{}[[instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvrid = 51\nvirtual_ips = [\"2001:db8::1/64\"]\n\
         [[instance]]\nname = \"VI_X\"\ninterface = \"eth1\"\nvrid = 51\nvirtual_ips = [\"192.0.2.9/24\"]\n",
        instance("")
    );
    assert_eq!(accepted(&text).instances.len(), 3);
}

#[test]
fn a_vip_belongs_to_one_instance() {
    let text = format!(
        "{}[[instance]]\nname = \"VI_2\"\ninterface = \"eth1\"\nvrid = 52\nvirtual_ips = [\"192.0.2.100/32\"]\n",
        instance("")
    );
    refused(
        &text,
        &[
            "t.toml:10:16: error: instance \"VI_2\": virtual_ips[0] = \"192.0.2.100/32\": 192.0.2.100 is already a virtual IP of instance \"VI_1\"; a VIP belongs to one instance",
        ],
    );
}

#[test]
fn duplicate_script_names() {
    refused(
        &instance(&format!(
            "{SCRIPT}[[script]]\nname = \"chk\"\ncommand = [\"/bin/false\"]\n"
        )),
        &[
            "t.toml:11:8: error: script \"chk\": name \"chk\" is already used by the script at line 8; script names must be unique",
        ],
    );
}

// --- families ---

#[test]
fn mixed_families_in_virtual_ips() {
    refused(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"192.0.2.1/24\", \"2001:db8::1/64\"]\n",
        &[
            "t.toml:5:32: error: instance \"a\": virtual_ips[1] = \"2001:db8::1/64\": IPv6 address in an IPv4 instance (virtual_ips[0] is IPv4); one family per instance: add another [[instance]] for IPv6",
        ],
    );
}

#[test]
fn peers_must_match_the_family() {
    refused(
        &instance(
            "unicast_src = \"2001:db8::1\"\nunicast_peers = [\"192.0.2.2\", \"2001:db8::2\"]\nallowed_peers = [\"fe80::1\"]\n",
        ),
        &[
            "t.toml:6:15: error: instance \"VI_1\": unicast_src = \"2001:db8::1\": IPv6 address in an IPv4 instance; unicast_src, unicast_peers and allowed_peers must be of the family of virtual_ips",
            "t.toml:7:31: error: instance \"VI_1\": unicast_peers[1] = \"2001:db8::2\": IPv6 address in an IPv4 instance; unicast_src, unicast_peers and allowed_peers must be of the family of virtual_ips",
            "t.toml:8:18: error: instance \"VI_1\": allowed_peers[0] = \"fe80::1\": IPv6 address in an IPv4 instance; unicast_src, unicast_peers and allowed_peers must be of the family of virtual_ips",
        ],
    );
}

#[test]
fn bad_addresses() {
    refused(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"192.0.2.300/24\", \"224.0.0.18\", \"192.0.2.1\", \"192.0.2.1/32\"]\n",
        &[
            "t.toml:5:16: error: instance \"a\": virtual_ips[0] = \"192.0.2.300/24\": expected an address or address/prefix like \"192.0.2.100/24\" or \"2001:db8::100/64\"",
            "t.toml:5:34: error: instance \"a\": virtual_ips[1] = \"224.0.0.18\": not usable as a virtual IP (unspecified, loopback, multicast or broadcast)",
            "t.toml:5:61: error: instance \"a\": virtual_ips[3] = \"192.0.2.1/32\": listed twice (also virtual_ips[2])",
        ],
    );
}

#[test]
fn unicast_src_without_peers_warns() {
    let (_, warnings) = parse(&instance("unicast_src = \"192.0.2.1\"\n")).unwrap();
    assert_eq!(
        warnings,
        [
            "t.toml:6:15: warning: instance \"VI_1\": unicast_src = \"192.0.2.1\": has no effect without unicast_peers (adverts are multicast)"
        ]
    );
}

#[test]
fn unicast_peers_are_kept() {
    let config = accepted(&instance(
        "unicast_src = \"192.0.2.1\"\nunicast_peers = [\"192.0.2.2\"]\n",
    ));
    let i = &config.instances[0];
    assert_eq!(i.unicast_src, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
    assert_eq!(i.unicast_peers, [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))]);
}

#[test]
fn v2_with_ipv6() {
    refused(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nversion = 2\nvirtual_ips = [\"2001:db8::1/64\"]\n",
        &[
            "t.toml:5:11: error: instance \"a\": version = 2: VRRPv2 (RFC 3768) carries IPv4 only; use version = 3 for IPv6 virtual_ips",
        ],
    );
}

#[test]
fn ipv6_global_only_is_advertised_as_written() {
    // As keepalived sends it: a keepalived peer refuses adverts whose address count differs.
    let config = accepted(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 255\nvirtual_ips = [\"2001:db8::1/64\", \"2001:db8::2/64\"]\n",
    );
    assert_eq!(
        config.instances[0].advertised_addrs(),
        VirtualAddrs::V6(vec![
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap()
        ])
    );
}

#[test]
fn ipv6_listed_link_local_is_kept_first() {
    let config = accepted(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"fe80::1/64\", \"2001:db8::1/64\"]\n",
    );
    assert_eq!(
        config.instances[0].advertised_addrs(),
        VirtualAddrs::V6(vec![
            "fe80::1".parse().unwrap(),
            "2001:db8::1".parse().unwrap()
        ])
    );
}

#[test]
fn ipv6_link_local_must_come_first() {
    refused(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"2001:db8::1/64\", \"fe80::1/64\"]\n",
        &[
            "t.toml:5:34: error: instance \"a\": virtual_ips[1] = \"fe80::1/64\": a link-local virtual IP must come first (RFC 5798 §5.2.9)",
        ],
    );
}

// --- checksum and authentication ---

#[test]
fn checksum_values() {
    refused(
        &instance("checksum = \"rfc1234\"\n"),
        &[
            "t.toml:6:12: error: instance \"VI_1\": checksum = \"rfc1234\": expected \"rfc5798\" (message + pseudo-header: keepalived, FRR; the default) or \"rfc9568\" (message only: Cisco, Juniper)",
        ],
    );
    let config = accepted(&instance("checksum = \"rfc9568\"\n"));
    assert_eq!(config.instances[0].checksum, V3Ipv4Checksum::Rfc9568);
}

#[test]
fn checksum_on_v2_is_refused() {
    refused(
        &instance("version = 2\nchecksum = \"rfc5798\"\n"),
        &[
            "t.toml:7:12: error: instance \"VI_1\": checksum = \"rfc5798\": only VRRPv3 over IPv4 has a choice of checksum; VRRPv2 checksums the message alone (RFC 3768 §5.3.8): remove it",
        ],
    );
}

#[test]
fn checksum_on_ipv6_is_refused() {
    refused(
        "[[instance]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvirtual_ips = [\"2001:db8::1/64\"]\nchecksum = \"rfc9568\"\n",
        &[
            "t.toml:6:12: error: instance \"a\": checksum = \"rfc9568\": only VRRPv3 over IPv4 has a choice of checksum; IPv6 always includes the pseudo-header (RFC 9568 §5.2.8): remove it",
        ],
    );
}

#[test]
fn auth_pass_is_v2_only_and_at_most_8_bytes() {
    refused(
        &instance("auth_pass = \"secret\"\n"),
        &[
            "t.toml:6:13: error: instance \"VI_1\": auth_pass = \"secret\": VRRPv3 has no authentication (RFC 5798 §9): remove it, or use version = 2",
        ],
    );
    refused(
        &instance("version = 2\nauth_pass = \"too-long-1\"\n"),
        &[
            "t.toml:7:13: error: instance \"VI_1\": auth_pass = \"too-long-1\": 10 bytes; VRRPv2 simple-text authentication carries 1..=8 (RFC 3768 §5.3.6.1)",
        ],
    );
    let config = accepted(&instance(
        "version = 2\nadvert_interval = \"2s\"\nauth_pass = \"pw\"\n",
    ));
    let i = &config.instances[0];
    assert_eq!(i.auth(), Auth::SimpleText(*b"pw\0\0\0\0\0\0"));
    let vrrp = i.vrrp_config(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(vrrp.validate(), Ok(()));
    assert_eq!(vrrp.version, VrrpVersion::V2);
}

// --- references ---

#[test]
fn unknown_track_script() {
    refused(
        &instance(
            "track_scripts = [{ name = \"chk_wbe\" }]\n[[script]]\nname = \"chk_web\"\ncommand = [\"/bin/true\"]\n",
        ),
        &[
            "t.toml:6:27: error: instance \"VI_1\": track_scripts[0].name = \"chk_wbe\": no [[script]] named \"chk_wbe\"; did you mean \"chk_web\"?",
            "t.toml:8:8: warning: script \"chk_web\": not tracked by any instance; it will not run",
        ],
    );
    refused(
        &instance("track_scripts = [{ name = \"chk\" }]\n"),
        &[
            "t.toml:6:27: error: instance \"VI_1\": track_scripts[0].name = \"chk\": no [[script]] named \"chk\"; no [[script]] is defined",
        ],
    );
}

const TWO: &str = "[[instance]]\nname = \"VI_2\"\ninterface = \"eth0\"\nvrid = 52\nvirtual_ips = [\"192.0.2.200/24\"]\n";

#[test]
fn unknown_instance_in_sync_group() {
    refused(
        &format!(
            "{}{TWO}[[sync_group]]\nname = \"G1\"\ninstances = [\"VI_1\", \"VI_3\"]\n",
            instance("")
        ),
        &[
            "t.toml:13:22: error: sync_group \"G1\": instances[1] = \"VI_3\": no [[instance]] named \"VI_3\"; did you mean \"VI_1\"?",
        ],
    );
}

#[test]
fn an_instance_in_two_sync_groups() {
    refused(
        &format!(
            "{}{TWO}[[sync_group]]\nname = \"G1\"\ninstances = [\"VI_1\", \"VI_2\"]\n[[sync_group]]\nname = \"G2\"\ninstances = [\"VI_2\", \"VI_1\"]\n",
            instance("")
        ),
        &[
            "t.toml:16:14: error: sync_group \"G2\": instances[0] = \"VI_2\": \"VI_2\" is already in sync_group \"G1\" (line 13); an instance belongs to at most one sync group",
            "t.toml:16:22: error: sync_group \"G2\": instances[1] = \"VI_1\": \"VI_1\" is already in sync_group \"G1\" (line 13); an instance belongs to at most one sync group",
        ],
    );
}

#[test]
fn sync_group_of_one_warns() {
    let (_, warnings) = parse(&format!(
        "{}[[sync_group]]\nname = \"G1\"\ninstances = [\"VI_1\"]\n",
        instance("")
    ))
    .unwrap();
    assert_eq!(
        warnings,
        [
            "t.toml:6:1: warning: sync_group \"G1\": has one instance; a sync group only matters with two or more"
        ]
    );
}

#[test]
fn keepalived_master_events_are_configured_per_instance() {
    let config = accepted(&instance(
        "higher_prio_send_advert = true\nnotify = { master_rx_lower_pri = \"/etc/vipflip/reclaim.sh\" }\n",
    ));
    let i = &config.instances[0];
    assert!(i.higher_prio_send_advert);
    assert!(
        i.vrrp_config(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
            .higher_prio_send_advert
    );
    assert_eq!(
        i.notify.master_rx_lower_pri.as_deref(),
        Some(Path::new("/etc/vipflip/reclaim.sh"))
    );
    // keepalived has the event for instances only.
    refused(
        &format!(
            "{}[[sync_group]]\nname = \"G1\"\ninstances = [\"VI_1\"]\nnotify = {{ master_rx_lower_pri = \"/x\" }}\n",
            instance("")
        ),
        &[
            "t.toml:6:1: warning: sync_group \"G1\": has one instance; a sync group only matters with two or more",
            "t.toml:9:12: error: sync_group \"G1\": unknown key `notify.master_rx_lower_pri`; only an [[instance]] has it (keepalived's notify_master_rx_lower_pri is per vrrp_instance)",
        ],
    );
}

// --- interfaces and required keys ---

#[test]
fn missing_interface_is_a_warning_not_an_error() {
    let (config, warnings) = parse(
        "[[instance]]\nname = \"a\"\ninterface = \"eth9\"\nvrid = 1\nvirtual_ips = [\"192.0.2.1\"]\n",
    )
    .unwrap();
    assert_eq!(config.instances[0].interface, "eth9");
    assert_eq!(
        warnings,
        [
            "t.toml:3:13: warning: instance \"a\": interface = \"eth9\": no such interface on this host; the daemon holds the instance in fault until it appears"
        ]
    );
}

#[test]
fn invalid_interface_name_is_an_error() {
    refused(
        "[[instance]]\nname = \"a\"\ninterface = \"a-name-much-too-long\"\nvrid = 1\nvirtual_ips = [\"192.0.2.1\"]\n",
        &[
            "t.toml:3:13: error: instance \"a\": interface = \"a-name-much-too-long\": not a valid interface name (1..=15 bytes, no '/', ':' or whitespace)",
        ],
    );
}

#[test]
fn missing_required_keys() {
    refused(
        "[[instance]]\npriority = 10\n",
        &[
            "t.toml:1:1: error: instance #1: missing `name` (a unique name)",
            "t.toml:1:1: error: instance #1: missing `interface` (the interface the virtual router runs on, e.g. \"eth0\")",
            "t.toml:1:1: error: instance #1: missing `vrid` (the virtual router ID, 1..=255, the same on every router of the group)",
            "t.toml:1:1: error: instance #1: missing `virtual_ips` (the virtual addresses, e.g. [\"192.0.2.100/24\"])",
        ],
    );
}

#[test]
fn global_values() {
    refused(
        "[global]\npin_dir = \"bpf\"\nmetrics_listen = \"localhost\"\nxdp_mode = \"native\"\n",
        &[
            "t.toml:2:11: error: global.pin_dir = \"bpf\": must be an absolute path",
            "t.toml:3:18: error: global.metrics_listen = \"localhost\": expected an address:port like \"127.0.0.1:9477\" or \"[::1]:9477\"",
            "t.toml:4:12: error: global.xdp_mode = \"native\": expected \"auto\", \"driver\" or \"skb\"",
        ],
    );
    let config = accepted(&format!(
        "[global]\nxdp_mode = \"skb\"\nnotify_fifo = \"/run/f\"\n{}",
        instance("")
    ));
    assert_eq!(config.global.xdp_mode, XdpMode::Skb);
    assert_eq!(
        config.global.notify_fifo.as_deref(),
        Some(Path::new("/run/f"))
    );
}

#[test]
fn handoff_bound_zero_is_refused() {
    refused(
        &instance("handoff_bound = \"0s\"\n"),
        &[
            "t.toml:6:17: error: instance \"VI_1\": handoff_bound = \"0s\": must be more than 0 (omit it for Master_Down_Interval)",
        ],
    );
}

#[test]
fn notify_paths_must_be_absolute() {
    refused(
        &instance("notify = { master = \"master.sh\", mastr = \"/x\" }\n"),
        &[
            "t.toml:6:21: error: instance \"VI_1\": notify.master = \"master.sh\": must be an absolute path",
            "t.toml:6:34: error: instance \"VI_1\": unknown key `notify.mastr`; did you mean `notify.master`?",
        ],
    );
}

// --- virtual servers ---

/// `instance("")`, then a service "web" on 192.0.2.100:80 of `VI_1` on lines 6..=10, then
/// `keys` from line 11, then `reals`.
fn service(keys: &str, reals: &str) -> String {
    instance(&format!(
        "[[virtual_server]]\nname = \"web\"\nvip = \"192.0.2.100\"\nport = 80\ninstance = \"VI_1\"\n{keys}{reals}"
    ))
}

const REAL: &str = "[[virtual_server.real_server]]\naddress = \"192.0.2.21\"\n";

/// `service(keys, …)` with one real server whose `check` is `check` (line 13).
fn checked(keys: &str, check: &str) -> String {
    service(keys, &format!("{REAL}check = {check}\n"))
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one accepted file and every field it yields, side by side"
)]
fn virtual_server_full() {
    let text = format!(
        "{}[[instance]]\nname = \"VI_6\"\ninterface = \"eth1\"\nvrid = 52\nvirtual_ips = [\"2001:db8::100/64\"]\n{}",
        instance(""),
        r#"
[[virtual_server]]
name = "web"
vip = "192.0.2.100"
port = 80
protocol = "tcp"
scheduler = "wrr"
instance = "VI_1"
quorum = 2
quorum_weight = -50
sorry_server = "192.0.2.30"

[[virtual_server.real_server]]
address = "192.0.2.21"
weight = 3
check = { kind = "http", interval = "2s", timeout = "1s", rise = 3, fall = 2, hold_down = "3s", port = 8080, path = "/health", expect_status = 204, body = "^ok$" }

[[virtual_server.real_server]]
address = "192.0.2.22"
weight = 0
check = { kind = "tcp" }

[[virtual_server.real_server]]
address = "192.0.2.23"
check = { kind = "script", command = ["/usr/lib/vipflip/check", "192.0.2.23"], interval = "5s", timeout = "3s" }

[[virtual_server]]
name = "dns6"
vip = "2001:db8::100"
port = 0
protocol = "udp"
scheduler = "sh"
instance = "VI_6"
real_server = [{ address = "2001:db8::21", check = { kind = "tcp", port = 53, interval = "200ms" } }]
"#
    );
    let config = accepted(&text);
    assert_eq!(
        config.summary(),
        "config OK: 2 instances, 0 scripts, 0 sync groups, 2 virtual servers"
    );
    let web = &config.virtual_servers[0];
    assert_eq!(
        (
            web.name.as_str(),
            web.vip,
            web.port,
            web.protocol,
            web.scheduler,
            web.instance().unwrap()
        ),
        (
            "web",
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)),
            80,
            LbProtocol::Tcp,
            LbScheduler::Wrr,
            "VI_1"
        )
    );
    assert_eq!(web.quorum, 2);
    assert_eq!(web.quorum_weight, Some(Weight(-50)));
    assert_eq!(
        web.sorry_server,
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 30)))
    );
    assert_eq!(
        web.real_servers,
        [
            RealServerSpec {
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 21)),
                weight: 3,
                check: Some(HealthCheck {
                    kind: CheckKind::Http {
                        port: 8080,
                        path: "/health".to_owned(),
                        expect_status: 204,
                        body: Some(HttpBodyMatch(regex::Regex::new("^ok$").unwrap())),
                    },
                    interval: Duration::from_secs(2),
                    timeout: Duration::from_secs(1),
                    rise: 3,
                    fall: 2,
                    hold_down: Duration::from_secs(3),
                }),
            },
            RealServerSpec {
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 22)),
                weight: 0,
                check: Some(HealthCheck {
                    kind: CheckKind::Tcp { port: 80 },
                    interval: Duration::from_secs(1),
                    timeout: Duration::from_millis(500),
                    rise: 1,
                    fall: 1,
                    hold_down: Duration::ZERO,
                }),
            },
            RealServerSpec {
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 23)),
                weight: 1,
                check: Some(HealthCheck {
                    kind: CheckKind::Script {
                        command: vec!["/usr/lib/vipflip/check".to_owned(), "192.0.2.23".to_owned()],
                        run_as: RunAs::default(),
                    },
                    interval: Duration::from_secs(5),
                    timeout: Duration::from_secs(3),
                    rise: 1,
                    fall: 1,
                    hold_down: Duration::ZERO,
                }),
            },
        ]
    );
    let dns = &config.virtual_servers[1];
    assert_eq!(
        (dns.vip, dns.port, dns.protocol, dns.scheduler),
        (
            "2001:db8::100".parse().unwrap(),
            0,
            LbProtocol::Udp,
            LbScheduler::Sh
        )
    );
    assert_eq!(
        dns.real_servers,
        [RealServerSpec {
            address: "2001:db8::21".parse().unwrap(),
            weight: 1,
            check: Some(HealthCheck {
                kind: CheckKind::Tcp { port: 53 },
                interval: Duration::from_millis(200),
                // The default 500ms would exceed the interval: it shrinks to it.
                timeout: Duration::from_millis(200),
                rise: 1,
                fall: 1,
                hold_down: Duration::ZERO,
            }),
        }]
    );
}

#[test]
fn virtual_server_defaults() {
    let config = accepted(&service("", REAL));
    assert_eq!(
        config.summary(),
        "config OK: 1 instance, 0 scripts, 0 sync groups, 1 virtual server"
    );
    let vs = &config.virtual_servers[0];
    assert_eq!(vs.protocol, LbProtocol::Tcp);
    assert_eq!(vs.scheduler, LbScheduler::Maglev);
    assert_eq!(vs.quorum, 1);
    assert_eq!(vs.quorum_weight, None);
    assert_eq!(vs.sorry_server, None);
    assert_eq!(
        vs.real_servers,
        [RealServerSpec {
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 21)),
            weight: 1,
            check: None,
        }]
    );
    let config = accepted(&checked("", "{ kind = \"http\" }"));
    assert_eq!(
        config.virtual_servers[0].real_servers[0].check,
        Some(HealthCheck {
            kind: CheckKind::Http {
                port: 80,
                path: "/".to_owned(),
                expect_status: 200,
                body: None,
            },
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise: 1,
            fall: 1,
            hold_down: Duration::ZERO,
        })
    );
}

#[test]
fn virtual_server_missing_keys() {
    refused(
        &instance("[[virtual_server]]\nscheduler = \"maglev\"\n"),
        &[
            "t.toml:6:1: error: virtual_server #1: missing `name` (a unique name)",
            "t.toml:6:1: error: virtual_server #1: missing `vip` (one of the instance's virtual IPs, e.g. \"192.0.2.100\")",
            "t.toml:6:1: error: virtual_server #1: missing `port` (the service's port, 1..=65535, or 0 for every port)",
            "t.toml:6:1: error: virtual_server #1: missing `instance` (the [[instance]] whose master serves it; or set `interface` to serve whenever the agent runs, active-active behind ECMP)",
            "t.toml:6:1: error: virtual_server #1: missing `real_server` (at least one [[virtual_server.real_server]] with its address)",
        ],
    );
    refused(
        &service("real_server = []\n", ""),
        &[
            "t.toml:11:15: error: virtual_server \"web\": real_server = []: a virtual server needs at least one real server",
        ],
    );
    refused(
        &service("", "[[virtual_server.real_server]]\nweight = 2\n"),
        &[
            "t.toml:11:1: error: virtual_server \"web\": missing `real_server[0].address` (the real server's IP address)",
        ],
    );
}

#[test]
fn virtual_server_values() {
    refused(
        &service(
            "protocol = \"sctp\"\nscheduler = \"lc\"\nquorum_weight = -255\n",
            "[[virtual_server.real_server]]\naddress = \"192.0.2.21\"\nweight = 65536\n",
        ),
        &[
            "t.toml:11:12: error: virtual_server \"web\": protocol = \"sctp\": expected \"tcp\" or \"udp\"",
            "t.toml:12:13: error: virtual_server \"web\": scheduler = \"lc\": expected \"maglev\" (consistent hashing, the default), \"wrr\" (weighted round robin) or \"sh\" (source hashing)",
            "t.toml:13:17: error: virtual_server \"web\": quorum_weight = -255: must be an integer in -254..=254 (0 = fault while failing)",
            "t.toml:16:10: error: virtual_server \"web\": real_server[0].weight = 65536: must be in 0..=65535 (0 drains: no new flows, existing ones kept)",
        ],
    );
    refused(
        &instance(
            "[[virtual_server]]\nname = \"web\"\nvip = \"192.0.2.100/24\"\nport = 65536\ninstance = \"VI_1\"\nreal_server = [{ address = \"192.0.2.21\" }]\n",
        ),
        &[
            "t.toml:8:7: error: virtual_server \"web\": vip = \"192.0.2.100/24\": expected an address without prefix, like \"192.0.2.100\" (the prefix belongs to the instance's virtual_ips)",
            "t.toml:9:8: error: virtual_server \"web\": port = 65536: must be in 0..=65535 (0 = every port of the VIP)",
        ],
    );
}

#[test]
fn virtual_server_keepalived_keys_name_the_vipflip_key() {
    refused(
        &service(
            "lb_algo = \"rr\"\nlb_kind = \"DR\"\npersistence_timeout = 300\n",
            "[[virtual_server.real_server]]\naddress = \"192.0.2.21\"\nTCP_CHECK = {}\n",
        ),
        &[
            "t.toml:11:1: error: virtual_server \"web\": unknown key `lb_algo`; did you mean `scheduler`? (\"maglev\", \"wrr\" or \"sh\")",
            "t.toml:12:1: error: virtual_server \"web\": unknown key `lb_kind`; did you mean `forward`? (\"dr\", \"ipip\" or \"gue\")",
            "t.toml:13:1: error: virtual_server \"web\": unknown key `persistence_timeout`; for client affinity use `scheduler = \"sh\"` (source hashing); established flows keep their server anyway",
            "t.toml:16:1: error: virtual_server \"web\": unknown key `real_server[0].TCP_CHECK`; use `check = { kind = \"tcp\", … }`",
        ],
    );
    refused(
        &checked(
            "",
            "{ kind = \"tcp\", connect_timeout = \"1s\", intervl = \"1s\" }",
        ),
        &[
            "t.toml:13:25: error: virtual_server \"web\": unknown key `real_server[0].check.connect_timeout`; did you mean `timeout`?",
            "t.toml:13:49: error: virtual_server \"web\": unknown key `real_server[0].check.intervl`; did you mean `real_server[0].check.interval`?",
        ],
    );
}

#[test]
fn virtual_server_names_are_unique() {
    let text = format!(
        "{}[[virtual_server]]\nname = \"web\"\nvip = \"192.0.2.100\"\nport = 443\ninstance = \"VI_1\"\n{REAL}",
        service("", REAL)
    );
    refused(
        &text,
        &[
            "t.toml:14:8: error: virtual_server \"web\": name \"web\" is already used by the virtual_server at line 7; virtual_server names must be unique",
        ],
    );
}

#[test]
fn virtual_server_vip_port_protocol_is_unique() {
    let other = |port: u16, protocol: &str| {
        format!(
            "{}[[virtual_server]]\nname = \"other\"\nvip = \"192.0.2.100\"\nport = {port}\nprotocol = \"{protocol}\"\ninstance = \"VI_1\"\n{REAL}",
            service("", REAL)
        )
    };
    refused(
        &other(80, "tcp"),
        &[
            "t.toml:16:8: error: virtual_server \"other\": port = 80: 192.0.2.100:80/tcp is already served by virtual_server \"web\" (line 6); one virtual_server per (vip, port, protocol)",
        ],
    );
    // The other protocol, and port 0 beside an exact port (the exact port wins).
    assert_eq!(accepted(&other(80, "udp")).virtual_servers.len(), 2);
    assert_eq!(accepted(&other(0, "tcp")).virtual_servers.len(), 2);
}

#[test]
fn virtual_server_instance_must_exist() {
    refused(
        &instance(
            "[[virtual_server]]\nname = \"web\"\nvip = \"192.0.2.100\"\nport = 80\ninstance = \"VI_2\"\nreal_server = [{ address = \"192.0.2.21\" }]\n",
        ),
        &[
            "t.toml:10:12: error: virtual_server \"web\": instance = \"VI_2\": no [[instance]] named \"VI_2\"; did you mean \"VI_1\"?",
        ],
    );
}

#[test]
fn virtual_server_vip_must_be_the_instances() {
    refused(
        &instance(
            "[[virtual_server]]\nname = \"web\"\nvip = \"192.0.2.99\"\nport = 80\ninstance = \"VI_1\"\nreal_server = [{ address = \"192.0.2.21\" }]\n",
        ),
        &[
            "t.toml:8:7: error: virtual_server \"web\": vip = \"192.0.2.99\": not a virtual IP of instance \"VI_1\" (it has 192.0.2.100); add 192.0.2.99 to its virtual_ips, or use one of them",
        ],
    );
    refused(
        &format!(
            "{}{TWO}[[virtual_server]]\nname = \"web\"\nvip = \"192.0.2.200\"\nport = 80\ninstance = \"VI_1\"\nreal_server = [{{ address = \"192.0.2.21\" }}]\n",
            instance("")
        ),
        &[
            "t.toml:13:7: error: virtual_server \"web\": vip = \"192.0.2.200\": not a virtual IP of instance \"VI_1\" (it has 192.0.2.100); 192.0.2.200 belongs to instance \"VI_2\": set instance = \"VI_2\"",
        ],
    );
}

#[test]
fn real_server_addresses() {
    refused(
        &service(
            "sorry_server = \"192.0.2.100\"\n",
            "real_server = [{ address = \"2001:db8::21\" }, { address = \"192.0.2.100\" }, { address = \"192.0.2.21\" }, { address = \"192.0.2.21\" }, { address = \"224.0.0.1\" }, { address = \"server1\" }]\n",
        ),
        &[
            "t.toml:11:16: error: virtual_server \"web\": sorry_server = \"192.0.2.100\": is the VIP itself; a server is another host, with the VIP on its loopback",
            "t.toml:12:28: error: virtual_server \"web\": real_server[0].address = \"2001:db8::21\": IPv6 address for an IPv4 VIP; Direct Routing forwards the packet unchanged, so servers must be of the VIP's family (a tunnel, forward = \"ipip\" or \"gue\", takes either)",
            "t.toml:12:58: error: virtual_server \"web\": real_server[1].address = \"192.0.2.100\": is the VIP itself; a server is another host, with the VIP on its loopback",
            "t.toml:12:115: error: virtual_server \"web\": real_server[3].address = \"192.0.2.21\": listed twice (also real_server[2].address)",
            "t.toml:12:143: error: virtual_server \"web\": real_server[4].address = \"224.0.0.1\": not usable as a server (unspecified, loopback, multicast or broadcast)",
            "t.toml:12:170: error: virtual_server \"web\": real_server[5].address = \"server1\": expected an IP address like \"192.0.2.21\" or \"2001:db8::21\"",
        ],
    );
}

#[test]
fn tunnels_reach_real_servers_of_either_family_from_a_source_prefix() {
    let config = accepted(&service(
        "forward = \"gue\"\ngue_port = 6080\ntunnel_source = \"198.51.100.128/25\"\n",
        "real_server = [{ address = \"198.51.100.21\" }, { address = \"203.0.113.0\" }]\n",
    ));
    let vs = &config.virtual_servers[0];
    assert_eq!(
        vs.forward,
        Forwarding::Gue {
            port: 6080,
            source: Some("198.51.100.128/25".parse().unwrap()),
        }
    );
    let lb = &config.balancer_config()[0];
    assert_eq!(
        lb.forward,
        crate::lb::Forward::Gue {
            port: 6080,
            source: Some(crate::lb::TunnelSource {
                addr: "198.51.100.128".parse().unwrap(),
                prefix_len: 25,
            }),
        }
    );
    let config = accepted(&service(
        "forward = \"ipip\"\n",
        "real_server = [{ address = \"2001:db8::21\" }]\n",
    ));
    assert_eq!(
        config.virtual_servers[0].forward,
        Forwarding::Ipip { source: None },
        "IPv4 in IPv6, the source the FIB picks"
    );
    assert_eq!(
        accepted(&service("", REAL)).virtual_servers[0].forward,
        Forwarding::Dr
    );
}

#[test]
fn tunnel_settings_are_checked() {
    refused(
        &service("forward = \"tun\"\n", REAL),
        &[
            "t.toml:11:11: error: virtual_server \"web\": forward = \"tun\": expected \"dr\" (Direct Routing: real servers on this link, the default), \"ipip\" or \"gue\" (tunnels: real servers anywhere the routes reach)",
        ],
    );
    refused(
        &service(
            "forward = \"dr\"\ngue_port = 6080\ntunnel_source = \"198.51.100.128/25\"\n",
            REAL,
        ),
        &[
            "t.toml:12:12: error: virtual_server \"web\": gue_port = 6080: only for forward = \"gue\"",
            "t.toml:13:17: error: virtual_server \"web\": tunnel_source = \"198.51.100.128/25\": only for a tunnel (forward = \"ipip\" or \"gue\"): Direct Routing sends the client's packet as it came",
        ],
    );
    refused(
        &service("forward = \"gue\"\n", REAL),
        &[
            "t.toml:6:1: error: virtual_server \"web\": missing `gue_port` (the UDP port the real servers' fou listens on, e.g. 6080 (`vipflip real-server` sets it up))",
        ],
    );
    refused(
        &service(
            "forward = \"gue\"\ngue_port = 0\ntunnel_source = \"198.51.100.129/25\"\n",
            REAL,
        ),
        &[
            "t.toml:12:12: error: virtual_server \"web\": gue_port = 0: must be in 1..=65535",
            "t.toml:13:17: error: virtual_server \"web\": tunnel_source = \"198.51.100.129/25\": has host bits set: did you mean \"198.51.100.128/25\"?",
        ],
    );
    refused(
        &service(
            "forward = \"ipip\"\ntunnel_source = \"2001:db8::/64\"\n",
            REAL,
        ),
        &[
            "t.toml:12:17: error: virtual_server \"web\": tunnel_source = \"2001:db8::/64\": an IPv6 prefix must be /96 or longer: at most the last 32 bits vary per flow",
        ],
    );
    refused(
        &service(
            "forward = \"ipip\"\ntunnel_source = \"198.51.100.128/25\"\n",
            "real_server = [{ address = \"2001:db8::21\" }]\n",
        ),
        &[
            "t.toml:12:17: error: virtual_server \"web\": tunnel_source = \"198.51.100.128/25\": an IPv4 prefix, but server 2001:db8::21 is IPv6: each outer header takes a source of its real server's family",
        ],
    );
}

#[test]
fn quorum_at_most_the_real_servers() {
    refused(
        &service("quorum = 2\n", REAL),
        &[
            "t.toml:11:10: error: virtual_server \"web\": quorum = 2: more than the 1 real server: quorum could never be reached (0..=1)",
        ],
    );
    let config = accepted(&service("quorum = 0\nquorum_weight = 0\n", REAL));
    assert_eq!(config.virtual_servers[0].quorum, 0);
    assert!(config.virtual_servers[0].quorum_weight.unwrap().is_fault());
}

#[test]
fn check_timings() {
    refused(
        &checked(
            "",
            "{ kind = \"tcp\", interval = \"0s\", timeout = \"0s\", rise = 0, fall = 256 }",
        ),
        &[
            "t.toml:13:36: error: virtual_server \"web\": real_server[0].check.interval = \"0s\": must be more than 0",
            "t.toml:13:52: error: virtual_server \"web\": real_server[0].check.timeout = \"0s\": must be more than 0",
            "t.toml:13:65: error: virtual_server \"web\": real_server[0].check.rise = 0: must be in 1..=255 (results in a row)",
            "t.toml:13:75: error: virtual_server \"web\": real_server[0].check.fall = 256: must be in 1..=255 (results in a row)",
        ],
    );
    refused(
        &checked(
            "",
            "{ kind = \"tcp\", interval = \"1s\", timeout = \"2s\" }",
        ),
        &[
            "t.toml:13:52: error: virtual_server \"web\": real_server[0].check.timeout = \"2s\": must not exceed the interval (1s): a check ends before the next one starts",
        ],
    );
}

#[test]
fn check_kind_and_its_keys() {
    refused(
        &checked("", "{ interval = \"1s\" }"),
        &[
            "t.toml:13:9: error: virtual_server \"web\": missing `real_server[0].check.kind` (\"tcp\", \"http\" or \"script\")",
        ],
    );
    refused(
        &checked("", "{ kind = \"icmp\" }"),
        &[
            "t.toml:13:18: error: virtual_server \"web\": real_server[0].check.kind = \"icmp\": expected \"tcp\" (connect), \"http\" (GET, status and optional body regex) or \"script\" (exit status)",
        ],
    );
    refused(
        &checked(
            "",
            "{ kind = \"tcp\", path = \"/\", command = [\"/bin/true\"] }",
        ),
        &[
            "t.toml:13:25: error: virtual_server \"web\": `real_server[0].check.path` does not apply to kind = \"tcp\" (only to kind = \"http\")",
            "t.toml:13:37: error: virtual_server \"web\": `real_server[0].check.command` does not apply to kind = \"tcp\" (only to kind = \"script\")",
        ],
    );
    refused(
        &checked(
            "",
            "{ kind = \"script\", command = [\"/bin/true\"], port = 80 }",
        ),
        &[
            "t.toml:13:53: error: virtual_server \"web\": `real_server[0].check.port` does not apply to kind = \"script\" (only to kind = \"tcp\" or \"http\")",
        ],
    );
}

#[test]
fn check_port_is_required_for_a_port_0_service() {
    let text = instance(
        "[[virtual_server]]\nname = \"all\"\nvip = \"192.0.2.100\"\nport = 0\ninstance = \"VI_1\"\nreal_server = [{ address = \"192.0.2.21\", check = { kind = \"tcp\" } }, { address = \"192.0.2.22\", check = { kind = \"http\", port = 0 } }]\n",
    );
    refused(
        &text,
        &[
            "t.toml:11:50: error: virtual_server \"all\": missing `real_server[0].check.port` (the port to check: the service has port = 0 (every port))",
            "t.toml:11:128: error: virtual_server \"all\": real_server[1].check.port = 0: must be in 1..=65535",
        ],
    );
}

#[test]
fn http_check_values() {
    refused(
        &checked(
            "",
            "{ kind = \"http\", path = \"health\", expect_status = 99, body = \"(ok\" }",
        ),
        &[
            "t.toml:13:33: error: virtual_server \"web\": real_server[0].check.path = \"health\": must start with \"/\" and hold no whitespace, like \"/health\"",
            "t.toml:13:59: error: virtual_server \"web\": real_server[0].check.expect_status = 99: must be an HTTP status code in 100..=599",
            "t.toml:13:70: error: virtual_server \"web\": real_server[0].check.body = \"(ok\": not a valid regular expression: unclosed group",
        ],
    );
    // UDP services may use HTTP checks: checks always connect over TCP.
    let config = accepted(&checked("protocol = \"udp\"\n", "{ kind = \"http\" }"));
    assert_eq!(config.virtual_servers[0].protocol, LbProtocol::Udp);
}

#[test]
fn script_check_command() {
    refused(
        &checked("", "{ kind = \"script\" }"),
        &[
            "t.toml:13:9: error: virtual_server \"web\": missing `real_server[0].check.command` (the program and its arguments, e.g. [\"/usr/lib/vipflip/check-db\", \"192.0.2.21\"])",
        ],
    );
    refused(
        &checked(
            "",
            "{ kind = \"script\", command = \"/bin/check 192.0.2.21\" }",
        ),
        &[
            "t.toml:13:38: error: virtual_server \"web\": real_server[0].check.command = \"/bin/check 192.0.2.21\": expected an array of strings: the program, then its arguments",
        ],
    );
    refused(
        &checked("", "{ kind = \"script\", command = [\"check\", \"x\"] }"),
        &[
            "t.toml:13:39: error: virtual_server \"web\": real_server[0].check.command[0] = \"check\": the program must be an absolute path (checks run without a shell or $PATH)",
        ],
    );
    refused(
        &checked("", "{ kind = \"script\", command = [] }"),
        &[
            "t.toml:13:38: error: virtual_server \"web\": real_server[0].check.command = []: must name a program, e.g. [\"/usr/lib/vipflip/check-db\", \"192.0.2.21\"]",
        ],
    );
}

#[test]
fn at_most_max_services_per_interface() {
    let on = |port: u32, vip: &str, instance: &str| {
        format!(
            "[[virtual_server]]\nname = \"s{port}\"\nvip = \"{vip}\"\nport = {port}\ninstance = \"{instance}\"\nreal_server = [{{ address = \"192.0.2.21\" }}]\n"
        )
    };
    let max = vipflip_common::MAX_SERVICES;
    let full: String = (1..=max)
        .map(|port| on(port, "192.0.2.100", "VI_1"))
        .collect();
    // The 65th service starts at line 6 + 64 × 6.
    refused(
        &instance(&format!("{full}{}", on(max + 1, "192.0.2.100", "VI_1"))),
        &[
            "t.toml:391:8: error: virtual_server \"s65\": one virtual_server too many on eth0: the data plane holds at most 64 services per interface (MAX_SERVICES)",
        ],
    );
    // Another interface has maps of its own.
    let text = format!(
        "{}{}{}",
        instance(&full),
        TWO.replace("eth0", "eth1"),
        on(max + 1, "192.0.2.200", "VI_2")
    );
    assert_eq!(accepted(&text).virtual_servers.len(), 65);
}

#[test]
fn at_most_max_reals_per_interface() {
    // 4096 real servers and one sorry server on eth0.
    let reals = |n: u32| -> String {
        let list: Vec<String> = (0..n)
            .map(|i| format!("{{ address = \"10.{}.{}.1\" }}", i / 256, i % 256))
            .collect();
        format!("real_server = [{}]\n", list.join(", "))
    };
    let max = vipflip_common::MAX_REALS;
    accepted(&service("", &reals(max)));
    refused(
        &service("sorry_server = \"192.0.2.30\"\n", &reals(max)),
        &[
            "t.toml:11:16: error: virtual_server \"web\": one server too many on eth0: the data plane holds at most 4096 real and sorry servers per interface, across its services (MAX_REALS)",
        ],
    );
}

#[test]
fn the_example_virtual_server_block_is_valid() {
    // The block (and the scaling-out block after it) is commented out so the example runs no
    // load balancer; uncommented (one `#` off every line), it must be accepted as written.
    let text = std::fs::read_to_string(example_path()).expect("examples/vipflip.toml");
    let (head, block) = text
        .split_once(EXAMPLE_LB_MARKER)
        .expect("the load balancer block in examples/vipflip.toml");
    let mut uncommented = head.to_owned();
    for line in block.lines().skip(1) {
        let line = line
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("an uncommented line in the load balancer block: {line:?}"));
        uncommented.push_str(line);
        uncommented.push('\n');
    }
    let config = accepted(&uncommented);
    assert_eq!(
        config.summary(),
        "config OK: 2 instances, 1 script, 1 sync group, 2 virtual servers"
    );
    let web = &config.virtual_servers[0];
    assert_eq!((web.name.as_str(), web.port), ("web", 80));
    assert_eq!(web.real_servers.len(), 3);
    assert_eq!(web.quorum_weight, Some(Weight(-50)));
    // The scaling-out block after it, uncommented the same way.
    assert_eq!(config.routing.table, 200);
    assert_eq!(config.routing.bgp.as_ref().map(|b| b.asn), Some(65011));
    assert_eq!(config.announces.len(), 1);
    // And the statics at the end.
    assert_eq!(
        (
            config.statics.addresses.len(),
            config.statics.routes.len(),
            config.statics.rules.len()
        ),
        (1, 1, 1)
    );
}

/// The line that starts the commented `[[virtual_server]]` block of the example.
const EXAMPLE_LB_MARKER: &str = "## Load balancing";
