//! Pins need a bpf filesystem under them. [`ensure`] makes sure the pin directory is on one,
//! mounting a bpffs where there is none, the way iproute2 and bpftool do:
//!
//! - a pin directory under `/sys/fs/bpf` gets a bpffs mounted on `/sys/fs/bpf` itself when
//!   that is not one yet (a host or container that never mounted it; inside `ip netns exec`,
//!   where `/sys` is a fresh sysfs and `/sys/fs/bpf` an empty sysfs directory), then the
//!   directory is created in it;
//! - any other pin directory that is not on a bpffs gets one mounted on the directory itself
//!   (created if missing), never on an ancestor: a bpffs on `/run` or `/var/lib` would hide
//!   what they hold. A pin directory that already holds files on another filesystem is refused
//!   for the same reason.
//!
//! Every failure names the path and the exact command an operator can run instead, and leaves
//! nothing half-made: directories created for a mount that then failed are removed again.
//!
//! One routine for every user (the daemon, `vipflip load`/`load-pass`, the kernel and
//! namespace tests, the lab), so what the tests exercise is what the daemon runs.
//! [`private_mount_namespace`] and [`fresh_bpffs_on_sys_fs_bpf`] let tests pin without
//! depending on, or changing, what the machine has mounted.

use std::{
    ffi::CString,
    fs, io,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

/// Where the kernel's bpf filesystem conventionally lives.
pub const SYS_FS_BPF: &str = "/sys/fs/bpf";

/// `BPF_FS_MAGIC` (linux/magic.h): `statfs` reports it for a path on a bpffs.
const BPF_FS_MAGIC: u32 = 0xcafe_4a11;

/// What [`ensure`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// The pin directory was already on a bpffs (it may have been created just now).
    AlreadyOnBpffs,
    /// A bpffs was mounted at `at` (`/sys/fs/bpf` or the pin directory itself).
    Mounted { at: PathBuf },
}

/// Why a pin directory could not be put on a bpffs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the pin directory {0} is not an absolute path")]
    NotAbsolute(PathBuf),
    #[error("the pin directory {pin_dir} cannot be made: {existing} is not a directory")]
    NotADirectory { pin_dir: PathBuf, existing: PathBuf },
    #[error("inspecting {path}: {source}")]
    Inspect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{mount_point} is on {filesystem}, not a bpf filesystem, and is not empty: a bpffs \
         mounted there would hide what it holds; choose an empty or missing pin directory, or \
         move its contents away and run: mount -t bpf bpf {mount_point}"
    )]
    Occupied {
        mount_point: PathBuf,
        filesystem: String,
    },
    #[error("creating {path} for the pin directory failed ({source}); run: {command}")]
    Create {
        path: PathBuf,
        command: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{pin_dir} is not on a bpf filesystem and mounting one on {mount_point} failed \
         ({source}); as root run: {command}"
    )]
    Mount {
        pin_dir: PathBuf,
        mount_point: PathBuf,
        command: String,
        #[source]
        source: io::Error,
    },
}

/// Makes sure `pin_dir` exists on a bpf filesystem (see the module doc for where a bpffs is
/// mounted when it is not). Idempotent: a second call finds the bpffs and does nothing.
pub fn ensure(pin_dir: &Path) -> Result<Prepared, Error> {
    if !pin_dir.is_absolute() {
        return Err(Error::NotAbsolute(pin_dir.to_owned()));
    }
    let existing = nearest_existing(pin_dir);
    if !existing.is_dir() {
        return Err(Error::NotADirectory {
            pin_dir: pin_dir.to_owned(),
            existing,
        });
    }
    if is_bpffs(&existing).map_err(|source| inspect(&existing, source))? {
        create_dir_all(pin_dir, pin_dir)?;
        return Ok(Prepared::AlreadyOnBpffs);
    }
    let mount_point = if pin_dir.starts_with(SYS_FS_BPF) {
        PathBuf::from(SYS_FS_BPF)
    } else {
        pin_dir.to_owned()
    };
    let mut made = Made::default();
    if mount_point.exists() {
        let empty = fs::read_dir(&mount_point)
            .map_err(|source| inspect(&mount_point, source))?
            .next()
            .is_none();
        if !empty {
            return Err(Error::Occupied {
                filesystem: filesystem_name(&mount_point),
                mount_point,
            });
        }
    } else {
        made.create_down_to(&mount_point)?;
    }
    if let Err(source) = mount_bpffs(&mount_point) {
        return Err(Error::Mount {
            pin_dir: pin_dir.to_owned(),
            command: mount_command(&mount_point, !made.dirs.is_empty()),
            mount_point,
            source,
        });
    }
    if let Err(error) = create_dir_all(pin_dir, &mount_point) {
        // Leave nothing half-made: the mount and the directories made for it go again.
        let _ = unmount(&mount_point);
        return Err(error);
    }
    made.keep();
    Ok(Prepared::Mounted { at: mount_point })
}

/// Whether `path` is on a bpf filesystem.
pub fn is_bpffs(path: &Path) -> io::Result<bool> {
    Ok(statfs_type(path)? == BPF_FS_MAGIC)
}

/// Unmounts the filesystem mounted at `path` (lazily: pins in use stay valid until closed).
pub fn unmount(path: &Path) -> io::Result<()> {
    let c_path = c_path(path)?;
    // SAFETY: `c_path` is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives the calling thread a mount namespace of its own, with every mount private, so mounts
/// made afterwards by this thread — and by the threads and processes it starts afterwards —
/// are seen by no one else and vanish with the last of them. For tests: they pin without
/// depending on, or changing, what the machine has mounted. Needs `CAP_SYS_ADMIN`.
pub fn private_mount_namespace() -> io::Result<()> {
    // SAFETY: unshare takes flags only. CLONE_NEWNS implies CLONE_FS: a thread that shares
    // its filesystem context with others gets a copy of its own, so this is per thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: valid NUL-terminated target; null source, type and data are allowed for a
    // propagation change.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// In a [`private_mount_namespace`] of the calling thread: removes whatever bpffs the machine
/// has on `/sys/fs/bpf` (from this namespace only), then [`ensure`]s `pin_dir`, which must be
/// under `/sys/fs/bpf`. The test then starts from what a fresh machine has and pins into a
/// bpffs of its own, gone when the thread ends.
pub fn fresh_bpffs_on_sys_fs_bpf(pin_dir: &Path) -> Result<Prepared, Error> {
    assert!(
        pin_dir.starts_with(SYS_FS_BPF),
        "{} is not under {SYS_FS_BPF}",
        pin_dir.display()
    );
    let sys_fs_bpf = Path::new(SYS_FS_BPF);
    private_mount_namespace().map_err(|source| inspect(Path::new("/"), source))?;
    // Mounts can be stacked: peel until the sysfs directory underneath shows.
    for _ in 0..16 {
        if !is_bpffs(sys_fs_bpf).unwrap_or(false) {
            break;
        }
        unmount(sys_fs_bpf).map_err(|source| inspect(sys_fs_bpf, source))?;
    }
    ensure(pin_dir)
}

/// The deepest of `path` and its ancestors that exists (`/` at worst).
fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.symlink_metadata().is_ok())
        .unwrap_or(Path::new("/"))
        .to_owned()
}

/// Directories created for a mount point, removed again (deepest first) on drop unless kept.
#[derive(Default)]
struct Made {
    dirs: Vec<PathBuf>,
}

impl Made {
    fn create_down_to(&mut self, mount_point: &Path) -> Result<(), Error> {
        let missing: Vec<&Path> = mount_point
            .ancestors()
            .take_while(|p| p.symlink_metadata().is_err())
            .collect();
        for dir in missing.into_iter().rev() {
            fs::create_dir(dir).map_err(|source| Error::Create {
                path: dir.to_owned(),
                command: mount_command(mount_point, true),
                source,
            })?;
            self.dirs.push(dir.to_owned());
        }
        Ok(())
    }

    fn keep(mut self) {
        self.dirs.clear();
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn create_dir_all(pin_dir: &Path, mount_point: &Path) -> Result<(), Error> {
    fs::create_dir_all(pin_dir).map_err(|source| Error::Create {
        path: pin_dir.to_owned(),
        command: mount_command(mount_point, true),
        source,
    })
}

fn mount_command(mount_point: &Path, mkdir: bool) -> String {
    let point = mount_point.display();
    if mkdir {
        format!("mkdir -p {point} && mount -t bpf bpf {point}")
    } else {
        format!("mount -t bpf bpf {point}")
    }
}

fn mount_bpffs(mount_point: &Path) -> io::Result<()> {
    let target = c_path(mount_point)?;
    let bpf = c"bpf";
    // SAFETY: every pointer is a valid NUL-terminated string for the duration of the call;
    // a bpffs takes no data argument.
    let rc = unsafe {
        libc::mount(
            bpf.as_ptr(),
            target.as_ptr(),
            bpf.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn statfs_type(path: &Path) -> io::Result<u32> {
    let c_path = c_path(path)?;
    // SAFETY: `statfs` is plain data; zeroed is a valid value to be overwritten.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated, `stat` a valid out-pointer.
    if unsafe { libc::statfs(c_path.as_ptr(), &raw mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // f_type is a signed word on some targets; the magic numbers are 32-bit patterns.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(stat.f_type as u32)
}

/// A filesystem's name for messages ("tmpfs", "sysfs", …), from its magic number.
fn filesystem_name(path: &Path) -> String {
    match statfs_type(path) {
        Ok(0x0102_1994) => "tmpfs".into(),
        Ok(0x6265_6572) => "sysfs".into(),
        Ok(0xef53) => "ext2/3/4".into(),
        Ok(0x5846_5342) => "xfs".into(),
        Ok(0x9123_683e) => "btrfs".into(),
        Ok(0x794c_7630) => "overlayfs".into(),
        Ok(0x9fa0) => "proc".into(),
        Ok(magic) => format!("a filesystem of type {magic:#x}"),
        Err(_) => "an unknown filesystem".into(),
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn inspect(path: &Path, source: io::Error) -> Error {
    Error::Inspect {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests;
