//! A vipflip agent (`vipflip run`) in a lab router's namespace, as the namespace tests drive
//! it: the configuration it starts with, its log, `vipflip status --json` read into
//! [`InstanceStatus`]es, and the CLI pointed at its control socket.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::OnceLock,
    time::Duration,
};

use crate::{KillOnDrop, Netns, vipflip_bin, wait_for};

/// The `vipflip` binary, found (or built) once per process: status is polled often.
pub fn vipflip() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(vipflip_bin)
}

/// The `[global]` table of agent `id` whose files are in `dir`: router id `id`, pins under
/// `{pins}/{id}`, control socket `{dir}/{id}.sock` (where [`Agent`] looks for it).
pub fn global(id: &str, pins: &Path, dir: &Path) -> String {
    format!(
        "[global]\nrouter_id = \"{id}\"\npin_dir = \"{pins}/{id}\"\ncontrol_socket = \"{dir}/{id}.sock\"\n",
        pins = pins.display(),
        dir = dir.display(),
    )
}

/// An `[[instance]]` table: VRID `vrid` on `iface` at `priority`, an advert every `interval`
/// (`"100ms"`), the VIP `vip` with its prefix (`"192.0.2.100/24"`); defaults for the rest.
pub fn instance(
    name: &str,
    iface: &str,
    vrid: u8,
    priority: u8,
    interval: &str,
    vip: &str,
) -> String {
    format!(
        "[[instance]]\nname = \"{name}\"\ninterface = \"{iface}\"\nvrid = {vrid}\n\
         priority = {priority}\nadvert_interval = \"{interval}\"\nvirtual_ips = [\"{vip}\"]\n"
    )
}

/// An `[[instance]]` line for a quick gratuitous ARP: two at once, no second burst, no
/// refresh.
pub const QUICK_GARP: &str =
    "garp = { repeat = 2, interval = \"0ms\", delay = \"0s\", refresh = \"0s\" }\n";

/// One instance as `vipflip status --json` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub state: String,
    pub base_priority: u64,
    pub effective_priority: u64,
    pub transitions: u64,
    pub xdp_adverts_dropped: u64,
    pub adverts_received: u64,
    pub time_in_state_ms: u64,
}

/// The scalar after `"key": ` in a pretty-printed JSON object, without quotes.
fn json_value(chunk: &str, key: &str) -> Option<String> {
    let key = format!("\"{key}\": ");
    let at = chunk.find(&key)? + key.len();
    let value = chunk[at..].lines().next()?.trim().trim_end_matches(',');
    Some(value.trim_matches('"').to_owned())
}

/// The instances of a `vipflip status --json` document (empty when there is none).
///
/// Read by hand, here only: this crate has no JSON parser, and one would change the
/// workspace's lock file for a format the CLI pretty-prints one key per line, each instance
/// starting with its `name` (no other object in it has a `name`).
fn parse_status(status: &str) -> Vec<InstanceStatus> {
    status
        .split("\"name\": \"")
        .skip(1)
        .filter_map(|chunk| {
            let number = |key| json_value(chunk, key)?.parse().ok();
            Some(InstanceStatus {
                name: chunk.split('"').next()?.to_owned(),
                state: json_value(chunk, "state")?,
                base_priority: number("base_priority")?,
                effective_priority: number("effective_priority")?,
                transitions: number("transitions")?,
                xdp_adverts_dropped: number("xdp_adverts_dropped")?,
                adverts_received: number("adverts_received")?,
                time_in_state_ms: number("time_in_state_ms")?,
            })
        })
        .collect()
}

/// A `vipflip run` in a router's namespace, killed on drop.
///
/// Its files share one directory and are named after its router id: `{id}.toml` (the
/// configuration), `{id}.log` (its stderr, appended to across restarts) and `{id}.sock` (its
/// control socket, where [`global`] puts it).
pub struct Agent {
    /// The router id (`r1`, `vf`), for messages.
    pub id: String,
    pub config: PathBuf,
    log: PathBuf,
    socket: PathBuf,
    rust_log: String,
    proc: KillOnDrop,
}

impl Agent {
    /// Writes `config` to `{dir}/{id}.toml` and runs `vipflip run` on it inside `ns`, with
    /// `RUST_LOG=rust_log`.
    pub fn start(ns: &Netns, dir: &Path, id: &str, config: &str, rust_log: &str) -> Self {
        let path = dir.join(format!("{id}.toml"));
        std::fs::write(&path, config).expect("write the configuration");
        let log = dir.join(format!("{id}.log"));
        let proc = KillOnDrop(spawn(ns, &[], &path, &log, rust_log));
        Self {
            id: id.to_owned(),
            config: path,
            log,
            socket: dir.join(format!("{id}.sock")),
            rust_log: rust_log.to_owned(),
            proc,
        }
    }

    /// Runs the agent again on its configuration (it was killed or stopped), with `flags`
    /// (`--keep-dataplane`) after `run`. Its log goes on in the same file.
    pub fn restart(&mut self, ns: &Netns, flags: &[&str]) {
        self.proc = KillOnDrop(spawn(ns, flags, &self.config, &self.log, &self.rust_log));
    }

    /// What the agent's configuration file holds now.
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).expect("read the configuration")
    }

    /// Writes `text` to the agent's configuration file and sends it SIGHUP to reload it.
    pub fn sighup_with(&self, text: &str) {
        std::fs::write(&self.config, text).expect("write the configuration");
        self.signal(libc::SIGHUP);
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the agent logged after its first `offset` bytes (`log().len()` at some point).
    pub fn log_since(&self, offset: usize) -> String {
        self.log().get(offset..).unwrap_or_default().to_owned()
    }

    /// `vipflip status --json` as text (empty when the daemon does not answer).
    pub fn status(&self) -> String {
        let out = self.cli(&["status", "--json"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn instances(&self) -> Vec<InstanceStatus> {
        parse_status(&self.status())
    }

    pub fn inst(&self, name: &str) -> Option<InstanceStatus> {
        self.instances().into_iter().find(|i| i.name == name)
    }

    /// The state of instance `name` (`Master`, `Backup`, …); `None` when the daemon does not
    /// answer or shows no such instance.
    pub fn state(&self, name: &str) -> Option<String> {
        self.inst(name).map(|i| i.state)
    }

    /// `vipflip ARGS… --control-socket SOCKET` (`status`, `reload`, `handoff`).
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(vipflip())
            .args(args)
            .arg("--control-socket")
            .arg(&self.socket)
            .output()
            .expect("run vipflip")
    }

    /// `vipflip handoff INSTANCE`, which must succeed.
    pub fn handoff(&self, instance: &str) {
        let out = self.cli(&["handoff", instance]);
        assert!(
            out.status.success(),
            "vipflip handoff: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The agent's process id (`ip netns exec` execs it: the pid is vipflip's own).
    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// Sends `signal` to the agent process.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.proc.0.id()).expect("pid fits");
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {pid}");
    }

    pub fn running(&mut self) -> bool {
        self.proc.0.try_wait().ok().flatten().is_none()
    }

    /// Waits for the agent to exit; true if it did within `timeout`.
    pub fn exited(&mut self, timeout: Duration) -> bool {
        wait_for(timeout, || !self.running())
    }
}

/// `vipflip run FLAGS… --config CONFIG` inside `ns`, its stderr appended to `log`.
fn spawn(ns: &Netns, flags: &[&str], config: &Path, log: &Path, rust_log: &str) -> Child {
    ns.command(vipflip().to_str().expect("utf-8 path"))
        .arg("run")
        .args(flags)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("open the agent log"),
        )
        .spawn()
        .expect("spawn vipflip run")
}
