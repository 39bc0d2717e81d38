//! Building blocks for tests (and the lab) that run vipflip in network namespaces: a namespace
//! and a bpffs that clean up after themselves even when a test panics, and the way to find
//! the `vipflip` binary.
//!
//! Test traffic stays inside namespaces these helpers create, on `192.0.2.0/24`,
//! `198.51.100.0/24` and `2001:db8::/32`.
//!
//! [`agent`] runs and reads a vipflip agent on a lab router, [`scene`] a lab of them with the
//! client's prober, [`interop`] the cases vipflip shares a VRRP group with keepalived or
//! FRR, [`lb`] directors balancing a service over real servers, [`frr`] FRR daemons started
//! by hand in a namespace, and [`routing`] directors announcing VIPs over BGP (FRR, BIRD) to
//! an edge router.

pub mod agent;
pub mod frr;
pub mod interop;
pub mod lb;
pub mod routing;
pub mod scaleout;
pub mod scene;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

/// A name unique to this process and call: namespaces and interfaces of parallel tests (and
/// of parallel test runs) never collide. Interface names stay within 15 bytes.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:x}{n}", std::process::id() % 0xfffff)
}

/// Runs a command and panics with its output when it fails.
pub fn sh(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace, deleted on drop (with every interface and process-less state in it).
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Self {
        Self::named(unique(prefix))
    }

    /// A namespace with exactly this name.
    pub fn named(name: String) -> Self {
        sh("ip", &["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NS …`, which must succeed.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// A command prepared to run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// One ping from inside this namespace; true when answered within a second.
    pub fn ping_once(&self, target: &str) -> bool {
        self.command("ping")
            .args(["-c", "1", "-W", "1", "-q", target])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// The MAC address of `iface` in this namespace.
    pub fn mac(&self, iface: &str) -> [u8; 6] {
        let out = self.ip(&["-br", "link", "show", iface]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mac = text
            .split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no MAC in {text:?}"));
        let bytes: Vec<u8> = mac
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).expect("hex MAC"))
            .collect();
        bytes.try_into().expect("6-byte MAC")
    }

    /// The interface index of `iface` in this namespace.
    pub fn ifindex(&self, iface: &str) -> u32 {
        let out = self.ip(&["-o", "link", "show", iface]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no ifindex in {text:?}"))
    }
}

impl Netns {
    /// A namespace named `name` holding one Linux bridge, `br0`, up, that forwards on a
    /// port as soon as it joins (no STP, no forwarding delay): a lab's switch.
    pub fn switch(name: String) -> Self {
        let switch = Self::named(name);
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        switch.ip(&["link", "set", "br0", "up"]);
        switch
    }

    /// The processes running inside, by pid.
    pub fn pids(&self) -> Vec<String> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// SIGKILLs whatever runs inside and waits (up to 5 s) until it is gone.
    pub fn kill_all(&self) {
        self.kill_pids();
        wait_for(Duration::from_secs(5), || self.pids().is_empty());
    }

    fn kill_pids(&self) {
        for pid in self.pids() {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill what still runs inside, then remove the namespace (and its interfaces).
        self.kill_pids();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A veth pair from `a`/`a_if` to `b`/`b_if`, created directly inside the namespaces.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    sh(
        "ip",
        &[
            "link",
            "add",
            a_if,
            "netns",
            a.name(),
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            b.name(),
        ],
    );
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// A bpffs for one test's pins, mounted on a new temp directory (not under /sys, so pins
/// outlive each `ip netns exec`, which gives its command a fresh /sys). [`BpfFs::new`] mounts
/// it in a private mount namespace of the calling thread: the test, and the threads and
/// processes it starts afterwards (agents included), see it; the machine does not, and what
/// the machine has mounted does not matter. Unmounted and removed on drop.
pub struct BpfFs {
    path: PathBuf,
}

impl BpfFs {
    pub fn new() -> Self {
        vipflip_bpffs::private_mount_namespace()
            .unwrap_or_else(|e| panic!("a private mount namespace for the test: {e}"));
        Self::at(std::env::temp_dir().join(unique("vipflip-bpffs-")))
    }

    /// A bpffs mounted at `path` in the caller's mount namespace, through the routine the
    /// daemon uses (the lab: a later run must find it to clean up after a crash).
    pub fn at(path: PathBuf) -> Self {
        match vipflip_bpffs::ensure(&path) {
            Ok(vipflip_bpffs::Prepared::Mounted { .. }) => {}
            Ok(vipflip_bpffs::Prepared::AlreadyOnBpffs) => {
                panic!("{} is already on a bpffs: a stale lab?", path.display())
            }
            Err(e) => panic!("a bpffs for the pins: {e}"),
        }
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Default for BpfFs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = vipflip_bpffs::unmount(&self.path);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The `vipflip` binary: `$VIPFLIP_BIN` when set (xtask sets it), else built now with the
/// cargo that runs the tests.
///
/// Found once per process (a `cargo build` takes ~100 ms even when nothing changed, and a
/// benchmark that timed a restart would time that too).
pub fn vipflip_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(find_vipflip_bin).clone()
}

fn find_vipflip_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("VIPFLIP_BIN") {
        return PathBuf::from(path);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "build",
            "--package",
            "vipflip",
            "--bin",
            "vipflip",
            "--message-format=json-render-diagnostics",
        ])
        .output()
        .expect("running cargo build for the vipflip binary");
    assert!(
        out.status.success(),
        "building vipflip failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"executable\":\"") && l.contains("\"name\":\"vipflip\""))
        .find_map(|l| {
            let start = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let end = l[start..].find('"')? + start;
            Some(PathBuf::from(&l[start..end]))
        })
        .expect("cargo reported no vipflip executable")
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}

/// One host of a [`Lab`]: a namespace with one interface on the lab's bridge.
pub struct Host {
    pub ns: Netns,
    /// The interface inside `ns`.
    pub iface: String,
    /// The bridge port at the other end of `iface`.
    pub port: String,
    pub ipv4: std::net::Ipv4Addr,
    pub ipv6: std::net::Ipv6Addr,
}

/// The lab topology, shared by the namespace tests and `cargo xtask lab`: a switch namespace
/// holding a Linux bridge, `routers` routers and one client on it.
///
/// Router `i` (from 1) has `192.0.2.<i>/24` and `2001:db8::<i>/64`; the client has
/// `192.0.2.200` and `2001:db8::200`. Bridge ports run the pass-only XDP program, so frames a router forwards on
/// the wire with `XDP_TX` are delivered (veth needs XDP at both ends for that).
pub struct Lab {
    pub routers: Vec<Host>,
    pub client: Host,
    pub bpffs: BpfFs,
    // Dropped last: removing the switch removes the bridge and every port.
    pub switch: Netns,
}

/// How a [`Lab`] names its namespaces and interfaces.
#[derive(Debug, Clone, Copy)]
pub enum Naming {
    /// Unique per process and call: tests running side by side never collide.
    Unique,
    /// Fixed, under a prefix (`<prefix>-sw`, `<prefix>-r1`, …, `<prefix>-client`, interface
    /// `eth0` in each host): the interactive lab, which a later run must find to clean up.
    Fixed(&'static str),
}

impl Lab {
    /// A lab with unique names, for tests.
    pub fn new(routers: usize) -> Self {
        Self::build(routers, Naming::Unique, BpfFs::new())
    }

    /// Removes whatever a `Fixed(prefix)` lab left behind (a crashed run): its namespaces, the
    /// processes in them, and `bpffs` if it is mounted.
    pub fn clean_up(prefix: &str, bpffs: &Path) {
        let out = Command::new("ip").args(["netns", "list"]).output();
        let list = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if name.starts_with(&format!("{prefix}-")) {
                drop(Netns {
                    name: name.to_owned(),
                });
            }
        }
        let _ = Command::new("umount").arg(bpffs).status();
    }

    pub fn build(routers: usize, naming: Naming, bpffs: BpfFs) -> Self {
        let ns_name = |role: &str| match naming {
            Naming::Unique => unique(&format!("vfl-{}", &role[..1])),
            Naming::Fixed(prefix) => format!("{prefix}-{role}"),
        };
        let switch = Netns::switch(ns_name("sw"));
        let host = |role: &str, n: u8| {
            let ns = Netns::named(ns_name(role));
            // Addresses are usable at once: no duplicate address detection in a private lab.
            let _ = ns
                .command("sysctl")
                .args([
                    "-qw",
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                ])
                .status();
            let (iface, port) = match naming {
                Naming::Unique => (unique("vfh"), unique("vfp")),
                Naming::Fixed(_) => ("eth0".to_owned(), role.to_owned()),
            };
            veth(&ns, &iface, &switch, &port);
            switch.ip(&["link", "set", &port, "master", "br0"]);
            let ipv4 = std::net::Ipv4Addr::new(192, 0, 2, n);
            let ipv6 = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n));
            ns.ip(&["addr", "add", &format!("{ipv4}/24"), "dev", &iface]);
            ns.ip(&["addr", "add", &format!("{ipv6}/64"), "dev", &iface, "nodad"]);
            // Frames that cross a real wire carry finished checksums. Between veths the kernel
            // leaves UDP/TCP checksums to "offload" (CHECKSUM_PARTIAL), and that promise is
            // lost when XDP forwards the frame (XDP_TX): the receiver would see a bad checksum.
            // Computing them in software makes the lab behave like a wire.
            let offload = ns
                .command("ethtool")
                .args(["-K", &iface, "tx", "off"])
                .output()
                .expect("run ethtool");
            assert!(
                offload.status.success(),
                "ethtool -K {iface} tx off: {}",
                String::from_utf8_lossy(&offload.stderr)
            );
            let pass = switch
                .command(vipflip_bin().to_str().expect("utf-8 path"))
                .args([
                    "load-pass",
                    "--iface",
                    &port,
                    "--pin-dir",
                    bpffs.path().to_str().expect("utf-8 path"),
                ])
                .output()
                .expect("run vipflip load-pass");
            assert!(
                pass.status.success(),
                "load-pass on {port}: {}",
                String::from_utf8_lossy(&pass.stderr)
            );
            Host {
                ns,
                iface,
                port,
                ipv4,
                ipv6,
            }
        };
        let routers = (1..=routers)
            .map(|i| host(&format!("r{i}"), u8::try_from(i).expect("few routers")))
            .collect();
        let client = host("client", 200);
        Self {
            routers,
            client,
            bpffs,
            switch,
        }
    }
}

impl Netns {
    /// Runs `f` on a new thread that has entered this namespace (`setns(CLONE_NEWNET)`), so
    /// sockets it opens (netlink included) live here. Join the handle for `f`'s result; a
    /// panic in `f` comes back as the join error.
    pub fn spawn<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> std::thread::JoinHandle<R> {
        let path = PathBuf::from("/var/run/netns").join(&self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            // SAFETY: `file` is an open namespace file; setns only changes this thread's
            // network namespace, which this dedicated thread owns.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns into {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
            f()
        })
    }

    /// Sets a sysctl inside this namespace (`net.*` keys are per namespace).
    pub fn sysctl(&self, key: &str, value: &str) {
        let out = self
            .command("sysctl")
            .args(["-qw", &format!("{key}={value}")])
            .output()
            .expect("running sysctl");
        assert!(
            out.status.success(),
            "sysctl {key}={value} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Serialises the timing-sensitive tests of one test binary: failover times are asserted to
/// within milliseconds, and two labs failing over at once on a small machine would measure
/// each other. Hold the guard for the whole test.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that panicked while holding it poisons it; the next one may still run.
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child process, killed (SIGKILL) and reaped on drop: agents, probers and responders of a
/// test or the lab never outlive it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A number from a `vipflip-probe` JSON summary line (`"lost":12`); panics, naming the line,
/// when it is not there.
pub fn summary_number(summary: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    summary
        .find(&key)
        .and_then(|at| {
            summary[at + key.len()..]
                .split([',', '}'])
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no number {name:?} in the probe summary {summary}"))
}

/// How many probes of a `vipflip-probe` JSON summary line router `name` answered (0 when it
/// answered none: the summary then does not name it).
pub fn answered_by(summary: &str, name: &str) -> u64 {
    if summary.contains(&format!("\"{name}\":")) {
        summary_number(summary, name)
    } else {
        0
    }
}
