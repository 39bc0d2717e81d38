//! A [`Lab`] whose routers all run vipflip, with a probe responder on each, and the client's
//! prober that measures what the routers do.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::Duration,
};

use crate::{
    KillOnDrop, Lab, Netns,
    agent::{Agent, InstanceStatus},
    unique, wait_for,
};

/// `Master_Down_Interval` of a priority-100 backup with 100 ms adverts, in µs (RFC 5798
/// §6.1): 3 × 100 ms + (256 − 100) × 100 ms / 256.
pub const MDI_US: u64 = 300_000 + 156 * 100_000 / 256;

/// A fresh directory, named after `prefix`, for one test's files: configurations, logs,
/// sockets, scripts.
pub fn test_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `vipflip-probe`, at the path only this crate's test, bench and binary targets know
/// (`env!("CARGO_BIN_EXE_vipflip-probe")`): they hand it in.
#[derive(Debug, Clone, Copy)]
pub struct Prober(pub &'static str);

impl Prober {
    /// A responder on UDP port 7777 in `ns` that answers as `name`, bound when this returns
    /// (it says so on stdout once its socket is bound).
    pub fn serve(self, ns: &Netns, name: &str) -> KillOnDrop {
        let mut child = KillOnDrop(
            ns.command(self.0)
                .args(["serve", "--port", "7777", "--name", name])
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn vipflip-probe serve"),
        );
        let stdout = child.0.stdout.take().expect("the responder's stdout");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("read the responder's readiness line");
        assert!(
            line.starts_with("serving on port 7777"),
            "the responder {name} did not start: {line:?}"
        );
        child
    }

    /// Starts probing `target` port 7777 from `ns` every millisecond for `duration_ms`.
    pub fn start(self, ns: &Netns, target: &str, duration_ms: u32) -> Probe {
        let child = ns
            .command(self.0)
            .args(["probe", "--target", target, "--port", "7777"])
            .args(["--interval-us", "1000", "--duration-ms"])
            .arg(duration_ms.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn vipflip-probe probe");
        Probe(child)
    }
}

/// A running prober.
pub struct Probe(Child);

impl Probe {
    /// Waits for the prober to end; its JSON summary line.
    pub fn finish(self) -> String {
        let out = self.0.wait_with_output().expect("wait for the prober");
        assert!(out.status.success(), "prober failed");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// A lab whose router `i` runs agent `r{i+1}` and a responder answering as `r{i+1}`. Dropping
/// it stops them and removes `dir`, then the lab.
pub struct Scene {
    pub agents: Vec<Agent>,
    responders: Vec<KillOnDrop>,
    pub lab: Lab,
    /// The agents' files.
    dir: PathBuf,
    prober: Prober,
}

impl Drop for Scene {
    fn drop(&mut self) {
        // Agents and responders first (KillOnDrop), then the files; the lab (namespaces,
        // bpffs with the pins) goes with the fields.
        self.agents.clear();
        self.responders.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Scene {
    /// Runs vipflip on each router `i` of `lab` with the configuration `config(&lab, &dir, i)`
    /// (`RUST_LOG=info`), and a responder on each.
    pub fn start(
        lab: Lab,
        dir: PathBuf,
        prober: Prober,
        config: impl Fn(&Lab, &Path, usize) -> String,
    ) -> Self {
        let mut scene = Self {
            agents: Vec::new(),
            responders: Vec::new(),
            lab,
            dir,
            prober,
        };
        for router in 0..scene.lab.routers.len() {
            let id = format!("r{}", router + 1);
            let text = config(&scene.lab, &scene.dir, router);
            let ns = &scene.lab.routers[router].ns;
            scene
                .agents
                .push(Agent::start(ns, &scene.dir, &id, &text, "info"));
            scene.responders.push(prober.serve(ns, &id));
        }
        scene
    }

    pub fn ns(&self, router: usize) -> &Netns {
        &self.lab.routers[router].ns
    }

    /// `router`'s interface on the lab's bridge.
    pub fn iface(&self, router: usize) -> &str {
        &self.lab.routers[router].iface
    }

    /// Sets `iface` of `router` up or down.
    pub fn link(&self, router: usize, iface: &str, up: bool) {
        self.ns(router)
            .ip(&["link", "set", iface, if up { "up" } else { "down" }]);
    }

    /// Runs `router`'s agent again (see [`Agent::restart`]).
    pub fn restart(&mut self, router: usize, flags: &[&str]) {
        self.agents[router].restart(&self.lab.routers[router].ns, flags);
    }

    /// Starts the client's 1 ms prober towards `target` for `duration_ms`.
    pub fn start_probe(&self, target: &str, duration_ms: u32) -> Probe {
        self.prober.start(&self.lab.client.ns, target, duration_ms)
    }

    /// Probes `target` for `duration_ms` and returns the summary line.
    pub fn probe(&self, target: &str, duration_ms: u32) -> String {
        self.start_probe(target, duration_ms).finish()
    }

    /// Every agent's status and the end of its log, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for agent in &self.agents {
            let _ = writeln!(out, "\n==== {} status:", agent.id);
            for inst in agent.instances() {
                let _ = writeln!(out, "{inst:?}");
            }
            let _ = writeln!(
                out,
                "==== {} log (tail):\n{}",
                agent.id,
                tail(&agent.log(), 60)
            );
        }
        out
    }

    /// Waits until `condition` holds; panics with `what`, every status and every log if it
    /// does not within `timeout`.
    pub fn await_that(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) {
        let ok = wait_for(timeout, || condition(self));
        assert!(ok, "{what}: not so after {timeout:?}{}", self.describe());
    }

    /// Waits until each `(router, instance, state)` holds (routers 0-based).
    pub fn await_states(&self, want: &[(usize, &str, &str)], timeout: Duration) {
        let what: Vec<String> = want
            .iter()
            .map(|(r, i, s)| format!("r{} {i} {s}", r + 1))
            .collect();
        self.await_that(&format!("expected {}", what.join(", ")), timeout, |scene| {
            want.iter().all(|(router, name, state)| {
                scene.agents[*router]
                    .inst(name)
                    .is_some_and(|i| i.state == *state)
            })
        });
    }

    /// `VI_1` is master on `master` and backup on every other router.
    pub fn await_master(&self, master: usize, timeout: Duration) {
        let want: Vec<(usize, &str, &str)> = (0..self.agents.len())
            .map(|r| (r, "VI_1", if r == master { "Master" } else { "Backup" }))
            .collect();
        self.await_states(&want, timeout);
    }

    /// Instance `name` of `router`'s status, which must show it.
    pub fn inst(&self, router: usize, name: &str) -> InstanceStatus {
        self.agents[router]
            .inst(name)
            .unwrap_or_else(|| panic!("r{} shows no {name}{}", router + 1, self.describe()))
    }
}

/// The commands of a live lab: the steps of `script` (`;`-separated, `wait N` pauses N
/// seconds), or one per line on stdin.
pub fn lab_commands(script: Option<&str>) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    if let Some(script) = script {
        let steps: Vec<String> = script
            .split(';')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        std::thread::spawn(move || {
            for step in steps {
                if let Some(secs) = step.strip_prefix("wait ") {
                    std::thread::sleep(Duration::from_secs_f64(secs.trim().parse().unwrap_or(1.0)));
                } else if tx.send(step).is_err() {
                    return;
                }
            }
        });
    } else {
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if tx.send(line.trim().to_owned()).is_err() {
                    return;
                }
            }
        });
    }
    rx
}
