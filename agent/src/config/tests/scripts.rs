//! Who scripts run as (`script_user`, a script's `user`) and `script_security`, with the
//! exact messages. The fake host's files: `/srv/safe/*.sh` writable by root alone,
//! `/srv/shared/*.sh` in a directory group 1000 can write (see `FakeHost`).

use super::{accepted, instance, parse, refused};
use crate::config::CheckKind;
use crate::track::{RunAs, ScriptUser};

fn vipflip_user(group: Option<&str>, gid: u32) -> ScriptUser {
    ScriptUser {
        name: "vipflip".into(),
        group: group.map(Into::into),
        uid: 990,
        gid,
    }
}

/// `[global]` on lines 1..=3, the instance on 4..=8 tracking `chk`, whose `[[script]]`
/// starts at line 10 with `extra` at line 12.
fn with_script(global: &str, command: &str, extra: &str) -> String {
    format!(
        "[global]\n{global}\n\n{}[[script]]\nname = \"chk\"\ncommand = [\"{command}\"]\n{extra}",
        instance("track_scripts = [{ name = \"chk\" }]\n")
    )
}

#[test]
fn script_user_applies_to_every_script_unless_one_names_its_own() {
    let config = accepted(&with_script(
        "script_user = \"vipflip\"\nscript_group = \"checkers\"",
        "/srv/safe/chk.sh",
        "",
    ));
    let global_user = vipflip_user(Some("checkers"), 991);
    assert_eq!(config.global.script_user, Some(global_user.clone()));
    assert!(!config.global.script_security);
    assert_eq!(
        config.scripts[0].run_as,
        RunAs {
            user: Some(global_user),
            script_security: false
        }
    );
    let config = accepted(&with_script(
        "script_user = \"vipflip\"",
        "/srv/safe/chk.sh",
        "user = \"root\"\n",
    ));
    assert_eq!(config.global.script_user, Some(vipflip_user(None, 990)));
    assert_eq!(
        config.scripts[0].run_as.user,
        Some(ScriptUser {
            name: "root".into(),
            group: None,
            uid: 0,
            gid: 0
        })
    );
}

#[test]
fn unknown_users_and_groups_are_refused_where_written() {
    refused(
        &with_script("script_user = \"nobody-here\"", "/srv/safe/chk.sh", ""),
        &["t.toml:2:15: error: global.script_user = \"nobody-here\": no such user on this host"],
    );
    refused(
        &with_script(
            "script_user = \"vipflip\"\nscript_group = \"wheel\"",
            "/srv/safe/chk.sh",
            "",
        ),
        &["t.toml:3:16: error: global.script_group = \"wheel\": no such group on this host"],
    );
    refused(
        &with_script("script_group = \"checkers\"", "/srv/safe/chk.sh", ""),
        &[
            "t.toml:2:16: error: global.script_group = \"checkers\": needs `script_user`: the group replaces that user's primary group",
        ],
    );
    refused(
        &with_script("", "/srv/safe/chk.sh", "user = \"ghost\"\n"),
        &["t.toml:13:8: error: script \"chk\": user = \"ghost\": no such user on this host"],
    );
}

#[test]
fn script_security_refuses_a_script_others_can_replace_naming_the_directory() {
    refused(
        &with_script("script_security = true", "/srv/shared/chk.sh", ""),
        &[
            "t.toml:12:12: error: script \"chk\": command[0] = \"/srv/shared/chk.sh\": refused by script_security: /srv/shared is writable by group 1000 (mode 0775); a script that runs with root's rights must be writable by root alone, and so must every directory above it",
        ],
    );
    let config = accepted(&with_script(
        "script_security = true",
        "/srv/safe/chk.sh",
        "",
    ));
    assert!(config.scripts[0].run_as.script_security);
}

#[test]
fn without_script_security_an_insecure_script_is_a_warning() {
    let (config, warnings) = parse(&with_script("", "/srv/shared/chk.sh", "")).expect("accepted");
    assert_eq!(
        warnings,
        [
            "t.toml:12:12: warning: script \"chk\": command[0] = \"/srv/shared/chk.sh\": /srv/shared is writable by group 1000 (mode 0775), so others than root can change what runs with root's rights (`script_security = true` refuses such scripts)"
        ]
    );
    assert_eq!(config.scripts.len(), 1);
}

#[test]
fn a_script_run_as_an_unprivileged_user_is_not_judged() {
    // keepalived protects only what runs with root's rights.
    let config = accepted(&with_script(
        "script_security = true\nscript_user = \"vipflip\"",
        "/srv/shared/chk.sh",
        "",
    ));
    assert_eq!(config.scripts[0].run_as.user, Some(vipflip_user(None, 990)));
}

#[test]
fn notify_scripts_are_checked_too() {
    let text = format!(
        "[global]\nscript_security = true\n\n{}",
        instance("notify = { master = \"/srv/safe/up.sh\", backup = \"/srv/shared/down.sh\" }\n")
    );
    refused(
        &text,
        &[
            "t.toml:9:49: error: instance \"VI_1\": notify.backup = \"/srv/shared/down.sh\": refused by script_security: /srv/shared is writable by group 1000 (mode 0775); a script that runs with root's rights must be writable by root alone, and so must every directory above it",
        ],
    );
}

#[test]
fn a_script_check_has_its_own_user_and_is_checked() {
    let service = |check: &str| {
        format!(
            "[global]\nscript_security = true\n\n{}[[virtual_server]]\nname = \"web\"\nvip = \"192.0.2.100\"\nport = 80\ninstance = \"VI_1\"\n[[virtual_server.real_server]]\naddress = \"192.0.2.21\"\ncheck = {{ kind = \"script\", {check} }}\n",
            instance("")
        )
    };
    let config = accepted(&service(
        "command = [\"/srv/safe/chk.sh\"], user = \"vipflip\", group = \"checkers\"",
    ));
    let check = config.virtual_servers[0].real_servers[0].check.as_ref();
    assert_eq!(
        check.map(|c| &c.kind),
        Some(&CheckKind::Script {
            command: vec!["/srv/safe/chk.sh".into()],
            run_as: RunAs {
                user: Some(vipflip_user(Some("checkers"), 991)),
                script_security: true,
            },
        })
    );
    refused(
        &service("command = [\"/srv/shared/chk.sh\"]"),
        &[
            "t.toml:16:39: error: virtual_server \"web\": real_server[0].check.command[0] = \"/srv/shared/chk.sh\": refused by script_security: /srv/shared is writable by group 1000 (mode 0775); a script that runs with root's rights must be writable by root alone, and so must every directory above it",
        ],
    );
}

#[test]
fn keepalived_names_point_to_vipflip_names() {
    refused(
        &with_script("enable_script_security = true", "/srv/safe/chk.sh", ""),
        &[
            "t.toml:2:1: error: unknown key `global.enable_script_security`; did you mean `script_security = true`?",
        ],
    );
}
