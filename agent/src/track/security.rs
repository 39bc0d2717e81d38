//! Who scripts run as (keepalived `script_user`) and which ones may not run at all
//! (keepalived `enable_script_security`).
//!
//! keepalived's rule (2.2 `core/notify.c`, `check_script_secure` and `check_security`): a
//! script needs protecting when it would run with root's rights: as uid 0 or gid 0, or a
//! set-uid/set-gid root executable. Such a script is insecure when any component of its
//! path, from `/` down to the file (looked at without following symlinks, and again along the
//! resolved path when a symlink is involved), is
//!
//! - not owned by root, or
//! - a regular file, or a directory without the sticky bit, that is writable by a group
//!   other than root's or by everyone.
//!
//! A symlink counts by its owner alone (its own mode bits mean nothing); the path it
//! resolves to is walked as well.
//!
//! (A sticky root-owned directory such as `/tmp` is accepted: others may create files there
//! but not replace root's.) Every component but the last must be a directory; the last a
//! regular file or a symlink. With `script_security` an insecure script is refused: at load,
//! as an error at the script's line; at run time (its permissions changed since) it is not
//! run and is disabled, as keepalived disables it ("Disabling track script … due to
//! insecure"). Without it, an insecure script is only warned about, as keepalived logs
//! "Unsafe permissions found for script".
//!
//! A script run as an unprivileged user is not checked, as in keepalived: whoever can write
//! it gains that user's rights at most.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

/// The user (and group) a script runs as, resolved from names when the file is read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScriptUser {
    /// As configured, for logs and status.
    pub name: String,
    /// As configured; `None`: the user's primary group.
    pub group: Option<String>,
    pub uid: u32,
    pub gid: u32,
}

impl fmt::Display for ScriptUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(group) => write!(f, "{}:{group}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// How a script is run: as whom, and whether an insecure one is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RunAs {
    /// `None`: as the daemon's own user.
    pub user: Option<ScriptUser>,
    /// `[global] script_security`.
    pub script_security: bool,
}

/// What the rule reads of one path component (`lstat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathFacts {
    pub kind: FileKind,
    pub uid: u32,
    pub gid: u32,
    /// The permission bits with set-uid, set-gid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Regular,
    Symlink,
    Other,
}

/// What is wrong with one component of a script's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    NotOwnedByRoot { uid: u32 },
    WritableByGroup { gid: u32, mode: u32 },
    WritableByEveryone { mode: u32 },
    NotADirectory,
    NotAFile,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOwnedByRoot { uid } => write!(f, "is owned by uid {uid}, not root"),
            Self::WritableByGroup { gid, mode } => {
                write!(f, "is writable by group {gid} (mode {mode:04o})")
            }
            Self::WritableByEveryone { mode } => {
                write!(f, "is writable by everyone (mode {mode:04o})")
            }
            Self::NotADirectory => f.write_str("is not a directory"),
            Self::NotAFile => f.write_str("is neither a regular file nor a symlink"),
        }
    }
}

/// Why a script may not run with root's rights: the path component at fault and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {fault}", path.display())]
pub struct Insecure {
    pub path: PathBuf,
    pub fault: Fault,
}

/// The file system as the check sees it; [`RealFs`] on a host, a fake in tests.
pub trait ScriptFs {
    /// `lstat(2)`: the component itself, a symlink not followed.
    fn lstat(&self, path: &Path) -> io::Result<PathFacts>;
    /// `realpath(3)`.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// The daemon's effective uid and gid: who a script without a user runs as.
    fn daemon_ids(&self) -> (u32, u32);
}

/// This host's file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl ScriptFs for RealFs {
    fn lstat(&self, path: &Path) -> io::Result<PathFacts> {
        let meta = std::fs::symlink_metadata(path)?;
        let file_type = meta.file_type();
        let kind = if file_type.is_dir() {
            FileKind::Directory
        } else if file_type.is_file() {
            FileKind::Regular
        } else if file_type.is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::Other
        };
        Ok(PathFacts {
            kind,
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.permissions().mode() & 0o7777,
        })
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn daemon_ids(&self) -> (u32, u32) {
        // SAFETY: geteuid(2) and getegid(2) take nothing and cannot fail.
        unsafe { (libc::geteuid(), libc::getegid()) }
    }
}

/// keepalived's rule for one component (see the module docs); `last`: the script itself.
pub fn component_fault(facts: &PathFacts, last: bool) -> Option<Fault> {
    const STICKY: u32 = 0o1000;
    const GROUP_WRITE: u32 = 0o020;
    const OTHER_WRITE: u32 = 0o002;
    // A symlink on the way (`/bin` -> `usr/bin` on merged-/usr systems) is judged by its
    // owner; the resolved path is walked on its own (see `check_script`), as keepalived
    // also checks the `realpath` of a script.
    match (last, facts.kind) {
        (false, FileKind::Directory | FileKind::Symlink)
        | (true, FileKind::Regular | FileKind::Symlink) => {}
        (false, _) => return Some(Fault::NotADirectory),
        (true, _) => return Some(Fault::NotAFile),
    }
    if facts.uid != 0 {
        return Some(Fault::NotOwnedByRoot { uid: facts.uid });
    }
    // A symlink's own bits mean nothing (always 0777); its target is checked on its own path.
    let guarded = match facts.kind {
        FileKind::Regular => true,
        FileKind::Directory => facts.mode & STICKY == 0,
        FileKind::Symlink | FileKind::Other => false,
    };
    if !guarded {
        return None;
    }
    if facts.mode & OTHER_WRITE != 0 {
        return Some(Fault::WritableByEveryone { mode: facts.mode });
    }
    if facts.gid != 0 && facts.mode & GROUP_WRITE != 0 {
        return Some(Fault::WritableByGroup {
            gid: facts.gid,
            mode: facts.mode,
        });
    }
    None
}

/// Whether a script run as `ids` (uid, gid) from a file with `file`'s facts gets root's
/// rights, so that its path must be safe (keepalived's `need_script_protection`).
pub fn needs_protection(ids: (u32, u32), file: &PathFacts) -> bool {
    const SET_UID: u32 = 0o4000;
    const SET_GID: u32 = 0o2000;
    const USER_EXEC: u32 = 0o100;
    const GROUP_EXEC: u32 = 0o010;
    ids.0 == 0
        || ids.1 == 0
        || (file.uid == 0 && file.mode & SET_UID != 0 && file.mode & USER_EXEC != 0)
        || (file.gid == 0 && file.mode & SET_GID != 0 && file.mode & GROUP_EXEC != 0)
}

/// Checks every component of the absolute `path`, `/` first; the first fault found.
/// A component that cannot be looked at is left to the run, which fails on it.
pub fn check_path(path: &Path, fs: &impl ScriptFs) -> Result<(), Insecure> {
    let components: Vec<Component<'_>> = path.components().collect();
    let mut prefix = PathBuf::new();
    for (i, component) in components.iter().enumerate() {
        prefix.push(component);
        let Ok(facts) = fs.lstat(&prefix) else {
            return Ok(());
        };
        if let Some(fault) = component_fault(&facts, i + 1 == components.len()) {
            return Err(Insecure {
                path: prefix,
                fault,
            });
        }
    }
    Ok(())
}

/// Whether `program`, run as `run_as` says, would be insecure (see the module docs). A
/// program that cannot be found is not judged here: running it fails.
pub fn check_script(program: &Path, run_as: &RunAs, fs: &impl ScriptFs) -> Result<(), Insecure> {
    let Ok(real) = fs.canonicalize(program) else {
        return Ok(());
    };
    let Ok(file) = fs.lstat(&real) else {
        return Ok(());
    };
    let ids = run_as
        .user
        .as_ref()
        .map_or_else(|| fs.daemon_ids(), |u| (u.uid, u.gid));
    if !needs_protection(ids, &file) {
        return Ok(());
    }
    check_path(program, fs)?;
    if real != program {
        check_path(&real, fs)?;
    }
    Ok(())
}

/// The uid and primary gid of user `name` (`getpwnam_r(3)`, so NSS sources count).
pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: all-zero is a valid `passwd` (null pointers and zero ids); it is only read
    // after getpwnam_r filled it.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: `name` is NUL-terminated, `buf` is
    // writable for its length, `pwd` and `result` are live locals.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &raw mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &raw mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

/// The gid of group `name` (`getgrnam_r(3)`).
pub fn lookup_group(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: all-zero is a valid `group`; it is only read after getgrnam_r filled it.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `lookup_user`.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &raw mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &raw mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
}

#[cfg(test)]
mod tests;
