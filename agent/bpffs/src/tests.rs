//! Each root test runs in a mount namespace of its own thread ([`private_mount_namespace`]),
//! so it can unmount `/sys/fs/bpf` or mount tmpfs without the machine seeing any of it.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use super::{Error, Prepared, SYS_FS_BPF, ensure, fresh_bpffs_on_sys_fs_bpf, is_bpffs};
use super::{c_path, private_mount_namespace, unmount};

/// A tmpfs mounted on a new directory under the temp dir, in this thread's private mount
/// namespace; unmounted and removed on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn new(options: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "vipflip-bpffs-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).expect("create the tmpfs mount point");
        let target = c_path(&path).unwrap();
        let data = std::ffi::CString::new(options).unwrap();
        // SAFETY: valid NUL-terminated strings for the duration of the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        Self { path }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, so a bpffs a test mounted inside goes with it; a test may have stacked one
        // on top: peel until the directory underneath shows.
        while unmount(&self.path).is_ok() {}
        let _ = fs::remove_dir(&self.path);
    }
}

/// Whether the machine's own mount namespace (pid 1's, seen through `/proc/1/root`) has a
/// bpffs on /sys/fs/bpf.
fn machine_has_bpffs_on_sys_fs_bpf() -> bool {
    is_bpffs(Path::new("/proc/1/root/sys/fs/bpf")).unwrap_or(false)
}

/// Drops `CAP_SYS_ADMIN` from the calling thread's effective set, so its mounts fail as an
/// unprivileged user's would (capabilities are per thread).
fn drop_cap_sys_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_SYS_ADMIN: u32 = 21;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and a two-element data array, as _LINUX_CAPABILITY_VERSION_3 requires.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_SYS_ADMIN);
    // SAFETY: as above; pid 0 is the calling thread.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn a_relative_pin_dir_is_refused() {
    let error = ensure(Path::new("pins/vipflip")).unwrap_err();
    assert!(matches!(error, Error::NotAbsolute(_)), "{error}");
    assert_eq!(
        error.to_string(),
        "the pin directory pins/vipflip is not an absolute path"
    );
}

#[test]
fn a_pin_dir_below_a_file_is_refused_naming_the_file() {
    let file = std::env::temp_dir().join(format!("vipflip-bpffs-file-{}", std::process::id()));
    fs::write(&file, b"not a directory").unwrap();
    let error = ensure(&file.join("pins")).unwrap_err();
    fs::remove_file(&file).unwrap();
    let Error::NotADirectory { existing, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(existing, &file);
}

#[test]
#[ignore = "needs root"]
fn sys_fs_bpf_unmounted_gets_a_bpffs_then_the_directory() {
    let machine_before = machine_has_bpffs_on_sys_fs_bpf();
    let pin_dir = Path::new("/sys/fs/bpf/vipflip-bpffs-test/eth0");
    let prepared = fresh_bpffs_on_sys_fs_bpf(pin_dir).expect("ensure");
    assert_eq!(
        prepared,
        Prepared::Mounted {
            at: PathBuf::from(SYS_FS_BPF)
        }
    );
    assert!(pin_dir.is_dir());
    assert!(is_bpffs(pin_dir).unwrap());
    // Idempotent: the second call finds the bpffs and mounts nothing more.
    assert_eq!(ensure(pin_dir).expect("again"), Prepared::AlreadyOnBpffs);
    // The machine's own namespace saw none of it.
    assert_eq!(machine_has_bpffs_on_sys_fs_bpf(), machine_before);
}

#[test]
#[ignore = "needs root"]
fn a_missing_pin_dir_on_tmpfs_gets_a_bpffs_of_its_own() {
    private_mount_namespace().unwrap();
    let tmpfs = Tmpfs::new("size=1m");
    fs::write(tmpfs.path.join("keep"), b"other data").unwrap();
    let pin_dir = tmpfs.path.join("state/pins");
    let prepared = ensure(&pin_dir).expect("ensure");
    assert_eq!(
        prepared,
        Prepared::Mounted {
            at: pin_dir.clone()
        }
    );
    assert!(is_bpffs(&pin_dir).unwrap());
    // Mounted on the pin directory itself, never on an ancestor: nothing is hidden.
    assert!(!is_bpffs(&tmpfs.path.join("state")).unwrap());
    assert!(tmpfs.path.join("keep").exists());
    assert_eq!(ensure(&pin_dir).expect("again"), Prepared::AlreadyOnBpffs);
}

#[test]
#[ignore = "needs root"]
fn an_empty_pin_dir_on_tmpfs_is_mounted_over() {
    private_mount_namespace().unwrap();
    let tmpfs = Tmpfs::new("size=1m");
    let prepared = ensure(&tmpfs.path).expect("ensure");
    assert_eq!(
        prepared,
        Prepared::Mounted {
            at: tmpfs.path.clone()
        }
    );
    assert!(is_bpffs(&tmpfs.path).unwrap());
}

#[test]
#[ignore = "needs root"]
fn a_pin_dir_holding_files_is_refused_with_the_command() {
    private_mount_namespace().unwrap();
    let tmpfs = Tmpfs::new("size=1m");
    fs::write(tmpfs.path.join("keep"), b"other data").unwrap();
    let error = ensure(&tmpfs.path).unwrap_err();
    assert!(matches!(error, Error::Occupied { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("is on tmpfs, not a bpf filesystem"),
        "{message}"
    );
    assert!(
        message.contains(&format!("mount -t bpf bpf {}", tmpfs.path.display())),
        "{message}"
    );
    assert!(!is_bpffs(&tmpfs.path).unwrap());
}

#[test]
#[ignore = "needs root"]
fn a_failed_mount_leaves_no_directory_behind() {
    private_mount_namespace().unwrap();
    let tmpfs = Tmpfs::new("size=1m");
    let pin_dir = tmpfs.path.join("state/pins");
    // Without CAP_SYS_ADMIN in a thread of its own (it shares this thread's mount namespace),
    // so this one can still unmount the tmpfs afterwards.
    let error = std::thread::scope(|s| {
        s.spawn(|| {
            drop_cap_sys_admin();
            ensure(&pin_dir).unwrap_err()
        })
        .join()
        .unwrap()
    });
    let Error::Mount { source, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(source.raw_os_error(), Some(libc::EPERM), "{error}");
    let message = error.to_string();
    let command = format!(
        "as root run: mkdir -p {0} && mount -t bpf bpf {0}",
        pin_dir.display()
    );
    assert!(message.contains(&command), "{message}");
    assert!(
        !tmpfs.path.join("state").exists(),
        "the directories made for the mount are gone"
    );
}

#[test]
#[ignore = "needs root"]
fn a_read_only_parent_is_a_clear_error_and_nothing_is_made() {
    private_mount_namespace().unwrap();
    let tmpfs = Tmpfs::new("size=1m");
    fs::create_dir(tmpfs.path.join("ro")).unwrap();
    let read_only = Tmpfs {
        path: tmpfs.path.join("ro"),
    };
    let target = c_path(&read_only.path).unwrap();
    // SAFETY: valid NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_RDONLY,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    let pin_dir = read_only.path.join("state/pins");
    let error = ensure(&pin_dir).unwrap_err();
    let Error::Create { path, source, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(path, &read_only.path.join("state"));
    assert_eq!(source.raw_os_error(), Some(libc::EROFS));
    assert!(!read_only.path.join("state").exists());
}
