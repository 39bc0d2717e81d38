//! FRR daemons started by hand in a namespace: what the VRRP interop tests (zebra + vrrpd)
//! and the routing tests (zebra + bfdd + bgpd, see [`crate::routing`]) share.
//!
//! How they run (checked with Debian's FRR 8.4.4; nothing in `/etc/frr` is used or changed,
//! and the `daemons` file and the `frr` service do not matter: the daemons are started by
//! hand):
//!
//! - Each daemon set gets its own path space `-N P`: the run directory `/var/run/frr/P`,
//!   owned by `frr:frr` (the daemons drop to that user and put their vty sockets, pid files
//!   and `zserv.api` there), so that sets in other namespaces never meet.
//! - Each daemon runs in the foreground inside the namespace, `-F traditional` (the defaults
//!   `routing.md` was verified with), `-P 0` (no TCP vty), `--log stdout --log-level debug`
//!   into a log file of its own, one after the other, each once the previous one has opened
//!   its vty socket (and zebra `zserv.api`). bfdd gets its control socket in the run
//!   directory (`--bfdctl`).
//! - The configuration is either a file every daemon reads (`-f`: each ignores the lines of
//!   the others, logging "No such command"), or applied afterwards through vtysh
//!   (`vtysh --vty_socket /var/run/frr/P -f conf`), which sends each line to its daemon.
//! - Clean-up: dropping [`Daemons`] kills them (the last started first) and removes the run
//!   directory, panics included; removing the namespace kills anything left in it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use crate::{KillOnDrop, Netns, unique, wait_for};

/// Where Debian installs the daemons.
pub const FRR_DIR: &str = "/usr/lib/frr";

/// Some FRR daemons running in one namespace under their own path space.
pub struct Daemons {
    path_space: String,
    run_dir: PathBuf,
    log_dir: PathBuf,
    /// In start order, with their names.
    running: Vec<(String, KillOnDrop)>,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        // The last started first: they talk to zebra while they shut down.
        while let Some(daemon) = self.running.pop() {
            drop(daemon);
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

impl Daemons {
    /// Whether `daemons` and vtysh are installed (`cargo xtask setup` installs them).
    pub fn installed(daemons: &[&str]) -> bool {
        daemons.iter().all(|d| Path::new(FRR_DIR).join(d).exists())
            && Command::new("vtysh").arg("--version").output().is_ok()
    }

    /// Starts `daemons` in `ns`, in this order (zebra first: the others wait for its API
    /// socket), each reading `config` if given; daemon `d` logs to `log_dir/d.log`.
    pub fn start(ns: &Netns, daemons: &[&str], config: Option<&Path>, log_dir: &Path) -> Self {
        let path_space = unique("vft");
        let run_dir = Path::new("/var/run/frr").join(&path_space);
        let mut set = Self {
            path_space,
            run_dir,
            log_dir: log_dir.to_owned(),
            running: Vec::new(),
        };
        std::fs::create_dir_all(&set.run_dir).expect("create the FRR run directory");
        let chown = Command::new("chown")
            .arg("frr:frr")
            .arg(&set.run_dir)
            .status()
            .expect("run chown");
        assert!(chown.success(), "chown frr:frr {}", set.run_dir.display());
        for &name in daemons {
            let child = set.spawn(ns, name, config);
            set.running.push((name.to_owned(), KillOnDrop(child)));
            // Ready once its vty socket is there (vtysh skips a daemon without one, and
            // refuses its lines); zebra also once the others can reach it.
            let mut sockets = vec![format!("{name}.vty")];
            if name == "zebra" {
                sockets.push("zserv.api".to_owned());
            }
            for socket in sockets {
                assert!(
                    wait_for(Duration::from_secs(10), || set
                        .run_dir
                        .join(&socket)
                        .exists()),
                    "{name} never opened {socket}:\n{}",
                    set.log(name)
                );
            }
        }
        set
    }

    fn spawn(&self, ns: &Netns, name: &str, config: Option<&Path>) -> std::process::Child {
        let log = std::fs::File::create(self.log_path(name)).expect("create an FRR log");
        let mut cmd = ns.command(&format!("{FRR_DIR}/{name}"));
        cmd.args(["-N", &self.path_space, "-F", "traditional"])
            .arg("-i")
            .arg(self.run_dir.join(format!("{name}.pid")))
            .args(["-P", "0", "--log", "stdout", "--log-level", "debug"]);
        if let Some(config) = config {
            cmd.arg("-f").arg(config);
        }
        if name == "bfdd" {
            cmd.arg("--bfdctl").arg(self.run_dir.join("bfdd.sock"));
        }
        cmd.stdin(Stdio::null())
            .stderr(log.try_clone().expect("clone a log handle"))
            .stdout(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
    }

    /// vtysh on these daemons with `args` (`-c "show …"`, `-f conf`); it needs no namespace:
    /// it reaches them through their sockets.
    pub fn vtysh(&self, args: &[&str]) -> Output {
        Command::new("vtysh")
            .arg("--vty_socket")
            .arg(&self.run_dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run vtysh: {e}"))
    }

    /// vtysh's answer to one command (stdout, or what went wrong), for checks and messages.
    pub fn show(&self, command: &str) -> String {
        let out = self.vtysh(&["-c", command]);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            format!(
                "vtysh -c {command:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }
    }

    /// Applies the configuration in `file` through vtysh; panics with vtysh's complaints when
    /// a line is refused.
    pub fn apply(&self, file: &Path) {
        let file = file.to_str().expect("a UTF-8 path");
        let out = self.vtysh(&["-f", file]);
        assert!(
            out.status.success(),
            "vtysh -f {file} failed ({}): {}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(file).unwrap_or_default()
        );
    }

    /// Daemon `name`'s log so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// Every daemon's log, headed by its name, for failure messages.
    pub fn logs(&self) -> String {
        self.running
            .iter()
            .map(|(name, _)| format!("{name}:\n{}", self.log(name)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }
}
