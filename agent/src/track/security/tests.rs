//! keepalived's script security rule, component by component, on a fake file system; and
//! the same rule on real files when run as root.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::{
    Fault, FileKind, Insecure, PathFacts, RunAs, ScriptFs, ScriptUser, check_script,
    component_fault, needs_protection,
};

const fn dir(uid: u32, gid: u32, mode: u32) -> PathFacts {
    PathFacts {
        kind: FileKind::Directory,
        uid,
        gid,
        mode,
    }
}

const fn file(uid: u32, gid: u32, mode: u32) -> PathFacts {
    PathFacts {
        kind: FileKind::Regular,
        uid,
        gid,
        mode,
    }
}

/// Paths with their facts and symlinks with their targets; the daemon runs as root.
#[derive(Default)]
struct FakeFs {
    facts: HashMap<PathBuf, PathFacts>,
    links: HashMap<PathBuf, PathBuf>,
}

impl FakeFs {
    /// `/`, `/etc`, `/etc/vipflip` root-owned 0755, and the script `/etc/vipflip/chk` 0755.
    fn standard() -> Self {
        let mut fs = Self::default();
        fs.set("/", dir(0, 0, 0o755));
        fs.set("/etc", dir(0, 0, 0o755));
        fs.set("/etc/vipflip", dir(0, 0, 0o755));
        fs.set("/etc/vipflip/chk", file(0, 0, 0o755));
        fs
    }

    fn set(&mut self, path: &str, facts: PathFacts) {
        self.facts.insert(PathBuf::from(path), facts);
    }
}

impl ScriptFs for FakeFs {
    fn lstat(&self, path: &Path) -> io::Result<PathFacts> {
        self.facts
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.lstat(path)?;
        Ok(self
            .links
            .get(path)
            .cloned()
            .unwrap_or_else(|| path.to_owned()))
    }

    fn daemon_ids(&self) -> (u32, u32) {
        (0, 0)
    }
}

fn as_root() -> RunAs {
    RunAs {
        user: None,
        script_security: true,
    }
}

fn nobody() -> RunAs {
    RunAs {
        user: Some(ScriptUser {
            name: "nobody".into(),
            group: None,
            uid: 65534,
            gid: 65534,
        }),
        script_security: true,
    }
}

fn insecure(path: &str, fault: Fault) -> Result<(), Insecure> {
    Err(Insecure {
        path: PathBuf::from(path),
        fault,
    })
}

#[test]
fn a_root_owned_path_without_foreign_write_bits_is_secure() {
    let fs = FakeFs::standard();
    assert_eq!(
        check_script(Path::new("/etc/vipflip/chk"), &as_root(), &fs),
        Ok(())
    );
}

#[test]
fn a_directory_writable_by_everyone_is_named() {
    let mut fs = FakeFs::standard();
    fs.set("/etc/vipflip", dir(0, 0, 0o777));
    let got = check_script(Path::new("/etc/vipflip/chk"), &as_root(), &fs);
    assert_eq!(
        got,
        insecure("/etc/vipflip", Fault::WritableByEveryone { mode: 0o777 })
    );
    assert_eq!(
        got.unwrap_err().to_string(),
        "/etc/vipflip is writable by everyone (mode 0777)"
    );
}

#[test]
fn group_write_counts_only_for_a_group_other_than_root() {
    let mut fs = FakeFs::standard();
    fs.set("/etc/vipflip", dir(0, 0, 0o775));
    assert_eq!(
        check_script(Path::new("/etc/vipflip/chk"), &as_root(), &fs),
        Ok(())
    );
    fs.set("/etc/vipflip", dir(0, 1000, 0o775));
    let got = check_script(Path::new("/etc/vipflip/chk"), &as_root(), &fs);
    assert_eq!(
        got,
        insecure(
            "/etc/vipflip",
            Fault::WritableByGroup {
                gid: 1000,
                mode: 0o775
            }
        )
    );
    assert_eq!(
        got.unwrap_err().to_string(),
        "/etc/vipflip is writable by group 1000 (mode 0775)"
    );
}

#[test]
fn a_script_owned_by_another_user_is_refused_whatever_its_mode() {
    let mut fs = FakeFs::standard();
    fs.set("/etc/vipflip/chk", file(1000, 0, 0o500));
    let got = check_script(Path::new("/etc/vipflip/chk"), &as_root(), &fs);
    assert_eq!(
        got,
        insecure("/etc/vipflip/chk", Fault::NotOwnedByRoot { uid: 1000 })
    );
    assert_eq!(
        got.unwrap_err().to_string(),
        "/etc/vipflip/chk is owned by uid 1000, not root"
    );
}

#[test]
fn the_first_component_at_fault_is_named_starting_from_the_root() {
    let mut fs = FakeFs::standard();
    fs.set("/", dir(0, 0, 0o777));
    fs.set("/etc/vipflip/chk", file(0, 0, 0o777));
    assert_eq!(
        check_script(Path::new("/etc/vipflip/chk"), &as_root(), &fs),
        insecure("/", Fault::WritableByEveryone { mode: 0o777 })
    );
}

#[test]
fn a_sticky_directory_like_tmp_is_accepted_but_a_writable_file_in_it_is_not() {
    let mut fs = FakeFs::standard();
    fs.set("/tmp", dir(0, 0, 0o1777));
    fs.set("/tmp/chk", file(0, 0, 0o755));
    assert_eq!(check_script(Path::new("/tmp/chk"), &as_root(), &fs), Ok(()));
    // The sticky bit protects directories only (keepalived: "|| S_ISREG").
    fs.set("/tmp/chk", file(0, 0, 0o1757));
    assert_eq!(
        check_script(Path::new("/tmp/chk"), &as_root(), &fs),
        insecure("/tmp/chk", Fault::WritableByEveryone { mode: 0o1757 })
    );
}

#[test]
fn a_symlink_is_judged_by_its_owner_and_its_target_by_its_own_path() {
    let mut fs = FakeFs::standard();
    fs.set(
        "/etc/vipflip/link",
        PathFacts {
            kind: FileKind::Symlink,
            uid: 0,
            gid: 0,
            mode: 0o777,
        },
    );
    fs.links
        .insert("/etc/vipflip/link".into(), "/opt/app/chk".into());
    fs.set("/opt", dir(0, 0, 0o755));
    fs.set("/opt/app", dir(1000, 1000, 0o755));
    fs.set("/opt/app/chk", file(0, 0, 0o755));
    assert_eq!(
        check_script(Path::new("/etc/vipflip/link"), &as_root(), &fs),
        insecure("/opt/app", Fault::NotOwnedByRoot { uid: 1000 })
    );
    fs.set("/opt/app", dir(0, 0, 0o755));
    assert_eq!(
        check_script(Path::new("/etc/vipflip/link"), &as_root(), &fs),
        Ok(())
    );
}

#[test]
fn a_symlinked_directory_on_the_way_is_followed_like_merged_usr() {
    let mut fs = FakeFs::default();
    fs.set("/", dir(0, 0, 0o755));
    fs.set(
        "/bin",
        PathFacts {
            kind: FileKind::Symlink,
            uid: 0,
            gid: 0,
            mode: 0o777,
        },
    );
    fs.set("/bin/sh", file(0, 0, 0o755));
    fs.links.insert("/bin/sh".into(), "/usr/bin/sh".into());
    fs.set("/usr", dir(0, 0, 0o755));
    fs.set("/usr/bin", dir(0, 0, 0o755));
    fs.set("/usr/bin/sh", file(0, 0, 0o755));
    assert_eq!(check_script(Path::new("/bin/sh"), &as_root(), &fs), Ok(()));
    fs.set("/usr/bin", dir(0, 50, 0o775));
    assert_eq!(
        check_script(Path::new("/bin/sh"), &as_root(), &fs),
        insecure(
            "/usr/bin",
            Fault::WritableByGroup {
                gid: 50,
                mode: 0o775
            }
        )
    );
}

#[test]
fn wrong_kinds_on_the_path_are_faults() {
    assert_eq!(
        component_fault(&file(0, 0, 0o755), false),
        Some(Fault::NotADirectory)
    );
    let fifo = PathFacts {
        kind: FileKind::Other,
        uid: 0,
        gid: 0,
        mode: 0o600,
    };
    assert_eq!(component_fault(&fifo, true), Some(Fault::NotAFile));
}

#[test]
fn an_unprivileged_script_user_is_not_checked_unless_the_file_is_set_uid_root() {
    let mut fs = FakeFs::standard();
    fs.set("/etc/vipflip", dir(1000, 1000, 0o777));
    assert_eq!(
        check_script(Path::new("/etc/vipflip/chk"), &nobody(), &fs),
        Ok(())
    );
    fs.set("/etc/vipflip/chk", file(0, 0, 0o4755));
    assert_eq!(
        check_script(Path::new("/etc/vipflip/chk"), &nobody(), &fs),
        insecure("/etc/vipflip", Fault::NotOwnedByRoot { uid: 1000 })
    );
}

#[test]
fn protection_is_needed_for_root_ids_and_set_id_root_executables() {
    let plain = file(0, 0, 0o755);
    assert!(needs_protection((0, 0), &plain));
    assert!(needs_protection((1000, 0), &plain));
    assert!(needs_protection((0, 1000), &plain));
    assert!(!needs_protection((1000, 1000), &plain));
    assert!(needs_protection((1000, 1000), &file(0, 0, 0o4755)));
    // Set-uid without the owner's execute bit does nothing.
    assert!(!needs_protection((1000, 1000), &file(0, 0, 0o4644)));
    assert!(needs_protection((1000, 1000), &file(5, 0, 0o2755)));
    assert!(!needs_protection((1000, 1000), &file(5, 7, 0o2755)));
}

#[test]
fn a_missing_script_is_left_to_the_run() {
    let fs = FakeFs::standard();
    assert_eq!(
        check_script(Path::new("/etc/vipflip/none"), &as_root(), &fs),
        Ok(())
    );
}

#[test]
#[ignore = "needs root"]
fn the_rule_on_real_files() {
    use std::os::unix::fs::PermissionsExt as _;

    use crate::track::security::RealFs;
    use crate::track::testutil::TempDir;

    let dir = TempDir::new("security");
    let script = dir.script("chk", "exit 0");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(check_script(&script, &as_root(), &RealFs), Ok(()));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o757)).expect("chmod");
    assert_eq!(
        check_script(&script, &as_root(), &RealFs),
        Err(Insecure {
            path: dir.path().to_owned(),
            fault: Fault::WritableByEveryone { mode: 0o757 },
        })
    );
}

#[test]
fn user_and_group_lookups_go_through_nss() {
    assert_eq!(super::lookup_user("root"), Some((0, 0)));
    assert_eq!(super::lookup_group("root"), Some(0));
    assert_eq!(super::lookup_user("no-such-user-vipflip"), None);
    assert_eq!(super::lookup_group("no-such-group-vipflip"), None);
}
