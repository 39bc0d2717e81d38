//! Operating `vipflip run` on a lab of two routers and a client: tracking (scripts,
//! interfaces, files, the instance's own interface), sync groups, notify scripts and the
//! notify FIFO, reloading (SIGHUP and `vipflip reload`) and the metrics endpoint. Each test
//! asserts what the routers' `vipflip status` and the client see. Needs root.

use std::{
    cell::RefCell,
    fs::File,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
    sync::mpsc,
    time::{Duration, Instant},
};

use vipflip_integration_tests::{
    KillOnDrop as Proc, Lab, Netns,
    agent::{self, Agent, QUICK_GARP},
    answered_by,
    scene::{MDI_US, Prober, Scene, test_dir},
    serial, summary_number as field, unique, wait_for,
};

const PROBE: Prober = Prober(env!("CARGO_BIN_EXE_vipflip-probe"));
/// The VIP of instance `VI_1` (VRID 51).
const VIP: &str = "192.0.2.100";
/// The VIP of instance `VI_2` (VRID 52), where a test has one.
const VIP2: &str = "192.0.2.101";
/// `Master_Down_Interval` of a priority-100 backup with 100 ms adverts.
const MDI: Duration = Duration::from_micros(MDI_US);
/// Where r1 serves metrics in the metrics test (inside r1's namespace).
const METRICS: &str = "127.0.0.1:9477";
/// Elections at start-up and after a change: generous, polled.
const SETTLE: Duration = Duration::from_secs(10);
const CHANGE: Duration = Duration::from_secs(5);
/// The extra interface r1 tracks in the tracking and sync group tests.
const TRACKED: &str = "trk0";

// ---------------------------------------------------------------------------------------
// The scene

/// What router `i` runs besides the common `[global]` keys and instance `VI_1`.
#[derive(Default)]
struct Extra {
    /// More `[global]` lines.
    global: String,
    /// More lines for `VI_1`.
    instance: String,
    /// More tables after `VI_1`: `[[instance]]`, `[[script]]`, `[[sync_group]]`.
    tables: String,
}

/// An `[[instance]]` with 100 ms adverts and a quick GARP, no second burst.
fn instance(name: &str, iface: &str, vrid: u8, priority: u8, vip: &str) -> String {
    agent::instance(name, iface, vrid, priority, "100ms", &format!("{vip}/24")) + QUICK_GARP
}

type ExtraFn<'a> = &'a dyn Fn(&Lab, &Path, usize) -> Extra;

/// A fresh directory for one test's configurations, logs, FIFOs and scripts.
fn fresh_dir() -> PathBuf {
    test_dir("vipflip-operate-")
}

/// Runs vipflip on each router of `lab` at `priorities[i]`, with `extra(lab, dir, i)`, and a
/// probe responder on each.
fn start(lab: Lab, dir: PathBuf, priorities: &[u8], extra: ExtraFn<'_>) -> Scene {
    Scene::start(lab, dir, PROBE, |lab, dir, router| {
        let extra = extra(lab, dir, router);
        format!(
            "{}{global}\n\n{vi1}{instance}\n\n{tables}\n",
            agent::global(&format!("r{}", router + 1), lab.bpffs.path(), dir),
            global = extra.global,
            vi1 = instance(
                "VI_1",
                &lab.routers[router].iface,
                51,
                priorities[router],
                VIP
            ),
            instance = extra.instance,
            tables = extra.tables,
        )
    })
}

/// `priorities.len()` routers running vipflip with nothing but `VI_1`, once r1 is its master.
fn plain(priorities: &[u8]) -> Scene {
    let scene = start(
        Lab::new(priorities.len()),
        fresh_dir(),
        priorities,
        &|_, _, _| Extra::default(),
    );
    scene.await_master(0, SETTLE);
    scene
}

/// Whether `router` serves `vip`: (its XDP entry is `local`, the address is on its
/// interface).
fn serves(scene: &Scene, router: usize, vip: &str) -> (bool, bool) {
    let local = scene.agents[router]
        .status()
        .contains(&format!("\"{vip}: local "));
    let addrs = scene.ns(router).ip(&["-o", "addr", "show"]);
    let addr = String::from_utf8_lossy(&addrs.stdout).contains(&format!(" {vip}/"));
    (local, addr)
}

/// Waits until `router` serves `vip` (XDP `local` and the address), or serves it in
/// neither way.
fn await_serving(scene: &Scene, router: usize, vip: &str, serving: bool) {
    let what = if serving {
        "serves"
    } else {
        "neither serves in XDP nor holds"
    };
    scene.await_that(&format!("r{} {what} {vip}", router + 1), CHANGE, |s| {
        serves(s, router, vip) == (serving, serving)
    });
}

/// Probes `vip` for `duration_ms`: router `router` must answer every probe. `what` says
/// what failed.
fn assert_served_by(scene: &Scene, vip: &str, duration_ms: u32, router: usize, what: &str) {
    let summary = scene.probe(vip, duration_ms);
    let name = format!("r{}", router + 1);
    assert!(
        field(&summary, "lost") == 0 && answered_by(&summary, &name) == u64::from(duration_ms),
        "{what}: {summary}{}",
        scene.describe()
    );
}

/// The effective priority of r1's `VI_1`.
fn r1_priority(scene: &Scene) -> u64 {
    scene.inst(0, "VI_1").effective_priority
}

/// The transitions of `VI_1` on every router.
fn vi1_transitions(scene: &Scene) -> Vec<u64> {
    (0..scene.agents.len())
        .map(|r| scene.inst(r, "VI_1").transitions)
        .collect()
}

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write the script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// An interface `name` to track, up, in `ns`: one end of a veth pair whose other end
/// (`{name}p`) is in `ns` too (veth, not dummy: the dummy module may be missing).
fn add_tracked_link(ns: &Netns, name: &str) {
    let peer = format!("{name}p");
    ns.ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]);
    ns.ip(&["link", "set", &peer, "up"]);
    ns.ip(&["link", "set", name, "up"]);
}

// ---------------------------------------------------------------------------------------
// Tracking

#[test]
#[ignore = "needs root"]
fn failing_track_script_lowers_priority_and_backup_takes_over() {
    let _serial = serial();
    let dir = fresh_dir();
    let flag = dir.join("fail-flag");
    let extra = |_: &Lab, _: &Path, router: usize| {
        if router != 0 {
            return Extra::default();
        }
        Extra {
            instance: "track_scripts = [{ name = \"chk\", weight = -100 }]".into(),
            tables: format!(
                "[[script]]\nname = \"chk\"\ncommand = [\"/bin/sh\", \"-c\", \"test ! -e {}\"]\ninterval = \"100ms\"\nfall = 2\nrise = 2\n",
                flag.display()
            ),
            ..Extra::default()
        }
    };
    let scene = start(Lab::new(2), dir.clone(), &[150, 100], &extra);
    scene.await_master(0, SETTLE);
    scene.await_that("r1 VI_1 at effective priority 150", CHANGE, |s| {
        r1_priority(s) == 150
    });

    // The check starts failing: after `fall` runs r1 is at 50 and r2 (100) takes over.
    let probe = scene.start_probe(VIP, 3000);
    std::thread::sleep(Duration::from_millis(800));
    std::fs::write(&flag, b"").expect("create the flag file");
    let moved = Instant::now();
    scene.await_master(1, CHANGE);
    let took = moved.elapsed();
    scene.await_that("r1 VI_1 at effective priority 50", CHANGE, |s| {
        r1_priority(s) == 50
    });
    await_serving(&scene, 1, VIP, true);
    await_serving(&scene, 0, VIP, false);
    let summary = probe.finish();
    eprintln!(
        "failing track script: r2 master {took:?} after the flag file; the client saw {summary}"
    );
    // A priority-driven takeover: r2 waits out its Master_Down_Interval while r1 still
    // serves, then r1 forwards to r2 until the client's ARP entry moves. Some loss is
    // allowed, not more than an outage of one Master_Down_Interval.
    let lost = field(&summary, "lost");
    assert!(
        lost <= 400,
        "{lost} probes lost in a planned priority move (bound 400): {summary}{}",
        scene.describe()
    );
    assert_served_by(
        &scene,
        VIP,
        500,
        1,
        "after the move the VIP is not served by r2 alone",
    );

    // The check recovers: r1 is back at 150 after `rise` runs and preempts.
    std::fs::remove_file(&flag).expect("remove the flag file");
    scene.await_master(0, CHANGE);
    scene.await_that("r1 VI_1 back at effective priority 150", CHANGE, |s| {
        r1_priority(s) == 150
    });
    await_serving(&scene, 0, VIP, true);
    let back = scene.probe(VIP, 300);
    assert!(
        answered_by(&back, "r1") > 0,
        "r1 does not serve the VIP after preempting back: {back}{}",
        scene.describe()
    );
}

/// keepalived's `script_user` and `enable_script_security` in the daemon: r1 (150) tracks
/// `chk` (root's, weight -100, failing) and `whoami` (run as nobody, writing its uid). A
/// failing `chk` hands `VI_1` to r2; once `chk`'s directory becomes writable by everyone,
/// `script_security` disables it, as keepalived disables an insecure track script: it counts
/// no more, r1 is back at 150 and takes `VI_1` back, and its status and log say why.
#[test]
#[ignore = "needs root"]
fn script_security_disables_a_track_script_whose_directory_becomes_writable() {
    let _serial = serial();
    let dir = fresh_dir();
    let scripts = dir.join("scripts");
    let out = dir.join("out");
    for (path, mode) in [(&scripts, 0o755), (&out, 0o777)] {
        std::fs::create_dir_all(path).expect("create a directory");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    // The test directory itself must be root's alone for `chk` to pass at start.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let chk = scripts.join("chk");
    script(&chk, "exit 1");
    let whoami = scripts.join("whoami");
    let ids = out.join("ids");
    script(&whoami, &format!("id -u > {}", ids.display()));
    let extra = |_: &Lab, _: &Path, router: usize| {
        if router != 0 {
            return Extra::default();
        }
        Extra {
            global: "script_security = true".into(),
            instance: "track_scripts = [{ name = \"chk\", weight = -100 }, { name = \"whoami\", weight = -1 }]".into(),
            tables: format!(
                "[[script]]\nname = \"chk\"\ncommand = [\"{}\"]\ninterval = \"100ms\"\n\n[[script]]\nname = \"whoami\"\ncommand = [\"{}\"]\ninterval = \"100ms\"\nuser = \"nobody\"\n",
                chk.display(),
                whoami.display()
            ),
        }
    };
    let scene = start(Lab::new(2), dir.clone(), &[150, 100], &extra);
    scene.await_master(1, SETTLE);
    scene.await_that("r1 VI_1 at effective priority 50", CHANGE, |s| {
        r1_priority(s) == 50
    });
    let nobody = Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .expect("id -u nobody");
    let nobody = String::from_utf8_lossy(&nobody.stdout).trim().to_owned();
    assert!(
        wait_for(CHANGE, || std::fs::read_to_string(&ids)
            .is_ok_and(|t| t.trim() == nobody)),
        "whoami did not run as nobody ({nobody}): {:?}",
        std::fs::read_to_string(&ids)
    );

    std::fs::set_permissions(&scripts, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    scene.await_master(0, CHANGE);
    scene.await_that("r1 VI_1 back at effective priority 150", CHANGE, |s| {
        r1_priority(s) == 150
    });
    let status = scene.agents[0].status();
    assert!(
        status.contains("none (disabled by script_security)"),
        "status does not show chk disabled: {status}"
    );
    let log = scene.agents[0].log();
    let why = format!(
        "script chk: disabled, script_security refuses it: {} is writable by everyone (mode 0777)",
        scripts.display()
    );
    assert!(log.contains(&why), "no {why:?} in r1's log:\n{log}");
}

/// r1 (150) tracks an extra interface with `weight`; r2 is at 100.
fn tracked_link_scene(weight: i16) -> Scene {
    let lab = Lab::new(2);
    add_tracked_link(&lab.routers[0].ns, TRACKED);
    let extra = move |_: &Lab, _: &Path, router: usize| Extra {
        instance: if router == 0 {
            format!("track_interfaces = [{{ name = \"{TRACKED}\", weight = {weight} }}]")
        } else {
            String::new()
        },
        ..Extra::default()
    };
    start(lab, fresh_dir(), &[150, 100], &extra)
}

#[test]
#[ignore = "needs root"]
fn tracked_interface_down_lowers_priority() {
    let _serial = serial();
    let scene = tracked_link_scene(-100);
    scene.await_master(0, SETTLE);
    assert_eq!(r1_priority(&scene), 150);

    scene.link(0, TRACKED, false);
    scene.await_master(1, CHANGE);
    let r1 = scene.inst(0, "VI_1");
    assert_eq!(
        (r1.base_priority, r1.effective_priority),
        (150, 50),
        "r1 with {TRACKED} down{}",
        scene.describe()
    );

    scene.link(0, TRACKED, true);
    scene.await_master(0, CHANGE);
    assert_eq!(r1_priority(&scene), 150);
}

#[test]
#[ignore = "needs root"]
fn tracked_interface_weight_zero_faults() {
    let _serial = serial();
    let scene = tracked_link_scene(0);
    scene.await_master(0, SETTLE);

    // r1 resigns (priority 0) as it enters fault: r2 takes over after its Skew_Time (61 ms),
    // not after a Master_Down_Interval.
    let probe = scene.start_probe(VIP, 2000);
    std::thread::sleep(Duration::from_millis(800));
    scene.link(0, TRACKED, false);
    scene.await_states(&[(0, "VI_1", "Fault"), (1, "VI_1", "Master")], CHANGE);
    let summary = probe.finish();
    eprintln!("weight-0 tracked interface down on the master, seen by the client: {summary}");
    assert_quick_takeover(&scene, VIP, &summary);
    await_serving(&scene, 0, VIP, false);

    scene.link(0, TRACKED, true);
    scene.await_master(0, CHANGE);
    await_serving(&scene, 0, VIP, true);
}

/// The longest outage a resigning master's fault may cause: r2's `Skew_Time` (61 ms) and
/// the flip, with room for a loaded machine; well below a `Master_Down_Interval` (361 ms).
const RESIGN_OUTAGE_US: u64 = 200_000;

/// The client lost `vip` only briefly (r1 resigned) and r2 served it afterwards.
fn assert_quick_takeover(scene: &Scene, vip: &str, summary: &str) {
    let outage = field(summary, "longest_outage_us");
    assert!(
        outage <= RESIGN_OUTAGE_US,
        "{vip}: outage {outage} µs > {RESIGN_OUTAGE_US} µs when r1 went to fault (did it \
         resign with priority 0?): {summary}{}",
        scene.describe()
    );
    assert!(
        answered_by(summary, "r2") > 0,
        "{vip}: r2 never answered: {summary}{}",
        scene.describe()
    );
}

#[test]
#[ignore = "needs root"]
fn own_interface_down_is_fault() {
    let _serial = serial();
    let scene = plain(&[150, 100]);

    // As daemon.rs cuts a link: r1's own interface goes down.
    scene.link(0, scene.iface(0), false);
    scene.await_states(&[(0, "VI_1", "Fault"), (1, "VI_1", "Master")], CHANGE);
    await_serving(&scene, 0, VIP, false);
    let cut = scene.probe(VIP, 300);
    assert!(
        answered_by(&cut, "r2") > 0,
        "r2 does not serve the VIP while r1 is cut: {cut}{}",
        scene.describe()
    );

    scene.link(0, scene.iface(0), true);
    scene.await_master(0, CHANGE);
    await_serving(&scene, 0, VIP, true);
    // r1 preempted and announced itself: the client is served by r1 again, with nothing lost.
    assert_served_by(
        &scene,
        VIP,
        500,
        0,
        "the client is not served by r1 alone after it came back",
    );
}

#[test]
#[ignore = "needs root"]
fn track_file_changes_priority() {
    let _serial = serial();
    let dir = fresh_dir();
    let file = dir.join("prio");
    std::fs::write(&file, "0\n").expect("write the track file");
    let extra = |_: &Lab, _: &Path, router: usize| Extra {
        instance: if router == 0 {
            format!(
                "track_files = [{{ path = \"{}\", weight = 10 }}]",
                file.display()
            )
        } else {
            String::new()
        },
        ..Extra::default()
    };
    let scene = start(Lab::new(2), dir.clone(), &[100, 120], &extra);
    scene.await_master(1, SETTLE);
    assert_eq!(r1_priority(&scene), 100);

    // The file says `value`: router `master` becomes master, r1 is at `priority`.
    let set = |value: &str, master: usize, priority: u64| {
        std::fs::write(&file, value).expect("write the track file");
        scene.await_master(master, CHANGE);
        assert_eq!(r1_priority(&scene), priority, "{}", scene.describe());
    };
    // 100 + 3 × 10 = 130 > 120: r1 preempts.
    set("3\n", 0, 130);
    set("0\n", 1, 100);
}

// ---------------------------------------------------------------------------------------
// Sync groups

/// r1 and r2 each run `VI_1` and `VI_2` in sync group `G`; only `VI_1` on r1 tracks an extra
/// interface (weight 0), so `VI_2` has nothing of its own to fail.
fn sync_group_scene() -> Scene {
    let lab = Lab::new(2);
    add_tracked_link(&lab.routers[0].ns, TRACKED);
    let extra = |lab: &Lab, _: &Path, router: usize| {
        let priority = if router == 0 { 150 } else { 100 };
        Extra {
            instance: if router == 0 {
                format!("track_interfaces = [{{ name = \"{TRACKED}\", weight = 0 }}]")
            } else {
                String::new()
            },
            tables: format!(
                "{}{SYNC_GROUP}",
                instance("VI_2", &lab.routers[router].iface, 52, priority, VIP2)
            ),
            ..Extra::default()
        }
    };
    start(lab, fresh_dir(), &[150, 100], &extra)
}

/// The `[[sync_group]]` table of [`sync_group_scene`], as written in the files.
const SYNC_GROUP: &str = "\n[[sync_group]]\nname = \"G\"\ninstances = [\"VI_1\", \"VI_2\"]\n";

#[test]
#[ignore = "needs root"]
fn sync_group_moves_together() {
    let _serial = serial();
    let scene = sync_group_scene();
    let all_on = |master: usize| {
        let backup = 1 - master;
        [
            (master, "VI_1", "Master"),
            (master, "VI_2", "Master"),
            (backup, "VI_1", "Backup"),
            (backup, "VI_2", "Backup"),
        ]
    };
    scene.await_states(&all_on(0), SETTLE);

    // VI_1's tracked interface goes down: VI_1 faults, and the group puts VI_2 in fault too.
    // Both resign, so r2 takes both over quickly.
    let probes = [VIP, VIP2].map(|vip| scene.start_probe(vip, 2000));
    std::thread::sleep(Duration::from_millis(800));
    scene.link(0, TRACKED, false);
    scene.await_states(
        &[
            (0, "VI_1", "Fault"),
            (0, "VI_2", "Fault"),
            (1, "VI_1", "Master"),
            (1, "VI_2", "Master"),
        ],
        CHANGE,
    );
    for (vip, probe) in [VIP, VIP2].into_iter().zip(probes) {
        let summary = probe.finish();
        eprintln!("sync group in fault on r1, {vip} seen by the client: {summary}");
        assert_quick_takeover(&scene, vip, &summary);
        await_serving(&scene, 0, vip, false);
    }

    scene.link(0, TRACKED, true);
    scene.await_states(&all_on(0), CHANGE);
    for vip in [VIP, VIP2] {
        await_serving(&scene, 0, vip, true);
    }
}

// ---------------------------------------------------------------------------------------
// Notify scripts and the notify FIFO

/// Reads a FIFO continuously on a thread. The FIFO is created here and opened read-write,
/// so it always has a reader (the daemon drops lines nobody reads) and never reports EOF.
struct FifoReader {
    rx: mpsc::Receiver<String>,
    seen: RefCell<Vec<String>>,
    /// Another handle on the FIFO, to stop the thread with a sentinel line.
    writer: File,
}

const FIFO_END: &str = "__operate_test_end__";

impl FifoReader {
    fn new(path: &Path) -> Self {
        let out = Command::new("mkfifo")
            .arg("-m")
            .arg("0600")
            .arg(path)
            .output()
            .expect("run mkfifo");
        assert!(out.status.success(), "mkfifo {}: {out:?}", path.display());
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open the FIFO read-write");
        let writer = file.try_clone().expect("clone the FIFO handle");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                if line == FIFO_END || tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: RefCell::new(Vec::new()),
            writer,
        }
    }

    /// Every line read so far.
    fn lines(&self) -> Vec<String> {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.rx.try_iter());
        seen.clone()
    }
}

impl Drop for FifoReader {
    fn drop(&mut self) {
        let _ = writeln!(self.writer, "\n{FIFO_END}");
    }
}

/// The lines of `lines` that start with `prefix`, with the prefix removed.
fn lines_of(lines: &[String], prefix: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "needs root"]
fn notify_scripts_and_fifo_get_the_right_lines_in_order() {
    let _serial = serial();
    let dir = fresh_dir();
    let fifo_path = dir.join("r1.fifo");
    let fifo = FifoReader::new(&fifo_path);
    let notify_sh = dir.join("notify.sh");
    let notified = dir.join("notified.txt");
    script(
        &notify_sh,
        &format!("echo \"$@\" >> {}", notified.display()),
    );
    let extra = |lab: &Lab, dir: &Path, router: usize| {
        let priority = if router == 0 { 150 } else { 100 };
        let vi2 = instance("VI_2", &lab.routers[router].iface, 52, priority, VIP2);
        let group = "[[sync_group]]\nname = \"G\"\ninstances = [\"VI_1\", \"VI_2\"]\n";
        if router != 0 {
            return Extra {
                tables: format!("{vi2}\n{group}"),
                ..Extra::default()
            };
        }
        let notify = format!(
            "notify = {{ master = \"{s}\", backup = \"{s}\", fault = \"{s}\" }}",
            s = notify_sh.display()
        );
        Extra {
            global: format!("notify_fifo = \"{}\"", dir.join("r1.fifo").display()),
            instance: notify.clone(),
            tables: format!("{vi2}{notify}\n\n{group}{notify}\n"),
        }
    };
    let scene = start(Lab::new(2), dir.clone(), &[150, 100], &extra);
    scene.await_states(&[(0, "VI_1", "Master"), (0, "VI_2", "Master")], SETTLE);

    // Cut r1's link (fault), then restore it (back to master by preempting).
    scene.link(0, scene.iface(0), false);
    scene.await_states(&[(0, "VI_1", "Fault"), (1, "VI_1", "Master")], CHANGE);
    scene.link(0, scene.iface(0), true);
    scene.await_states(&[(0, "VI_1", "Master"), (0, "VI_2", "Master")], CHANGE);

    // Per object, the states in order: start-up, election, cut, link back, preempt.
    let want = ["BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"];
    let objects = ["INSTANCE \"VI_1\" ", "INSTANCE \"VI_2\" ", "GROUP \"G\" "];
    let states = |lines: &[String], object: &str| -> Vec<String> {
        lines_of(lines, object)
            .iter()
            .map(|rest| rest.split(' ').next().unwrap_or_default().to_owned())
            .collect()
    };
    // The state changes only: a master that hears the other's adverts while it preempts
    // also writes keepalived's MASTER_RX_LOWER_PRI event lines (no script is set for them).
    let transitions = || -> Vec<String> {
        fifo.lines()
            .into_iter()
            .filter(|l| !l.contains(" MASTER_RX_LOWER_PRI "))
            .collect()
    };
    let complete = |lines: &[String]| objects.iter().all(|o| states(lines, o) == want);
    let ok = wait_for(Duration::from_secs(3), || complete(&transitions()));
    let lines = transitions();
    eprintln!("notify FIFO of r1:\n{}", lines.join("\n"));
    assert!(
        ok,
        "notify FIFO: want each of {objects:?} to go exactly {want:?}; got:\n{}{}",
        lines.join("\n"),
        scene.describe()
    );
    // Every line has keepalived's form, TYPE "NAME" STATE PRIORITY; an instance that is not
    // in fault reports its priority (150).
    for line in &lines {
        let words: Vec<&str> = line.split(' ').collect();
        assert!(
            words.len() == 4
                && ["INSTANCE", "GROUP"].contains(&words[0])
                && words[1].len() > 2
                && words[1].starts_with('"')
                && words[1].ends_with('"')
                && ["MASTER", "BACKUP", "FAULT"].contains(&words[2])
                && words[3].parse::<u8>().is_ok(),
            "not a notify_fifo line: {line:?}"
        );
        if words[0] == "INSTANCE" && words[2] != "FAULT" {
            assert_eq!(words[3], "150", "priority in {line:?}");
        }
    }

    assert_script_calls(&notified, &lines, &scene);
}

/// The notify scripts of r1 (each appends its arguments to `notified`) were called once for
/// each FIFO line, with the same words (`INSTANCE VI_1 MASTER 150`). They run concurrently
/// and may finish in any order: compare them sorted.
fn assert_script_calls(notified: &Path, fifo_lines: &[String], scene: &Scene) {
    let mut want: Vec<String> = fifo_lines.iter().map(|l| l.replace('"', "")).collect();
    want.sort();
    let script_lines = || {
        let mut lines: Vec<String> = std::fs::read_to_string(notified)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let ok = wait_for(Duration::from_secs(3), || script_lines() == want);
    let got = script_lines();
    eprintln!(
        "notify scripts of r1 were called with (sorted):\n{}",
        got.join("\n")
    );
    assert!(
        ok,
        "notify script calls (sorted) differ from the FIFO lines:\nwant:\n{}\ngot:\n{}{}",
        want.join("\n"),
        got.join("\n"),
        scene.describe()
    );
}

/// Sends one forged advert for `VI_1` at `priority` from the client (192.0.2.200, TTL 255).
fn forge_advert(scene: &Scene, priority: u8) {
    let client = &scene.lab.client;
    let out = client
        .ns
        .command(PROBE.0)
        .args([
            "advert",
            "--src",
            "192.0.2.200",
            "--vrid",
            "51",
            "--priority",
            &priority.to_string(),
        ])
        .output()
        .expect("run the advert forger");
    assert!(
        out.status.success(),
        "forging an advert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// keepalived's `notify_master_rx_lower_pri` and `higher_prio_send_advert` on r1 (150): a
/// lower-priority advert (another router that believes it is master) runs the script and
/// writes the FIFO line, with r1 still master; a better advert makes r1 send one advert of
/// its own before it steps down.
#[test]
#[ignore = "needs root"]
fn a_master_reports_lower_priority_adverts_and_answers_a_better_one_before_stepping_down() {
    let _serial = serial();
    let dir = fresh_dir();
    let fifo = FifoReader::new(&dir.join("r1.fifo"));
    let reclaim = dir.join("reclaim.sh");
    let called = dir.join("reclaim-calls.txt");
    script(&reclaim, &format!("echo \"$@\" >> {}", called.display()));
    let extra = |_: &Lab, dir: &Path, router: usize| {
        if router != 0 {
            return Extra::default();
        }
        Extra {
            global: format!("notify_fifo = \"{}\"", dir.join("r1.fifo").display()),
            instance: format!(
                "higher_prio_send_advert = true\nnotify = {{ master_rx_lower_pri = \"{}\" }}",
                reclaim.display()
            ),
            ..Extra::default()
        }
    };
    let scene = start(Lab::new(2), dir.clone(), &[150, 100], &extra);
    scene.await_master(0, SETTLE);
    let client = &scene.lab.client;
    client
        .ns
        .ip(&["route", "add", "224.0.0.0/4", "dev", &client.iface]);

    forge_advert(&scene, 50);
    let calls = || std::fs::read_to_string(&called).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(5), || calls()
            .lines()
            .any(|l| l == "INSTANCE VI_1 MASTER_RX_LOWER_PRI 150")),
        "notify.master_rx_lower_pri was not run with keepalived's words: {:?}{}",
        calls(),
        scene.describe()
    );
    assert!(
        wait_for(Duration::from_secs(3), || fifo
            .lines()
            .iter()
            .any(|l| l == "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150")),
        "no MASTER_RX_LOWER_PRI line in the notify FIFO: {:?}",
        fifo.lines()
    );
    assert_eq!(
        scene.inst(0, "VI_1").state,
        "Master",
        "{}",
        scene.describe()
    );

    // A better advert: r1 answers with its own (priority 150) at once, then steps down. The
    // capture on r1's link shows the forged advert followed by r1's within a few ms (its
    // periodic adverts are 100 ms apart, and it sends none as a backup).
    let capture = Capture::start(scene.ns(0), scene.iface(0), &dir);
    std::thread::sleep(Duration::from_millis(300));
    forge_advert(&scene, 200);
    scene.await_that("r1 VI_1 steps down to backup", CHANGE, |s| {
        s.inst(0, "VI_1").state == "Backup"
    });
    // tcpdump hands packets over in batches: wait for the forged one and what follows.
    let answered = |text: &str| {
        text.split_once(" 192.0.2.200 > ")
            .is_some_and(|(_, after)| after.contains(" 192.0.2.1 > "))
    };
    wait_for(Duration::from_secs(3), || answered(&capture.text()));
    let lines = capture.lines();
    let forged = lines
        .iter()
        .position(|l| l.contains(" 192.0.2.200 > ") && l.contains("prio 200"))
        .unwrap_or_else(|| panic!("the forged advert was not captured:\n{}", lines.join("\n")));
    let time = |line: &str| -> f64 {
        line.split_whitespace()
            .next()
            .and_then(|t| t.parse().ok())
            .expect("a tcpdump time stamp")
    };
    let answer = lines[forged + 1..]
        .iter()
        .find(|l| l.contains(" 192.0.2.1 > ") && l.contains("prio 150"))
        .unwrap_or_else(|| {
            panic!(
                "r1 sent no advert after the better one:\n{}",
                lines.join("\n")
            )
        });
    let after_ms = (time(answer) - time(&lines[forged])) * 1000.0;
    eprintln!("r1 answered the better advert after {after_ms:.2} ms");
    assert!(
        after_ms < 30.0,
        "r1's advert came {after_ms:.1} ms after the better one, not at once:\n{}",
        lines.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Slow scripts must not slow the daemon

/// A `tcpdump` in a namespace (of VRRP adverts, unless told otherwise), written to a file.
struct Capture {
    proc: Proc,
    out: PathBuf,
}

impl Capture {
    fn start(ns: &Netns, iface: &str, dir: &Path) -> Self {
        Self::start_filtered(ns, iface, dir, "ip proto 112")
    }

    fn start_filtered(ns: &Netns, iface: &str, dir: &Path, filter: &str) -> Self {
        let name = unique("tcpdump-");
        let out = dir.join(format!("{name}.txt"));
        let err = dir.join(format!("{name}.err"));
        let proc = Proc(
            ns.command("tcpdump")
                .args(["-i", iface, "-n", "-tt", "-l", filter])
                .stdout(File::create(&out).expect("create the capture file"))
                .stderr(File::create(&err).expect("create the capture log"))
                .spawn()
                .expect("spawn tcpdump"),
        );
        let listening = wait_for(Duration::from_secs(5), || {
            std::fs::read_to_string(&err).is_ok_and(|t| t.contains("listening on"))
        });
        assert!(
            listening,
            "tcpdump did not start: {}",
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        Self { proc, out }
    }

    /// Stops the capture; the send times (s) of adverts from `src`.
    fn finish(self, src: &str) -> Vec<f64> {
        self.lines()
            .iter()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let time: f64 = words.next()?.parse().ok()?;
                (words.next()? == "IP" && words.next()? == src).then_some(time)
            })
            .collect()
    }

    /// Waits until `more` adverts from `src` have been captured beyond those already there,
    /// then stops; the send times (s) of every advert from `src`.
    fn finish_after_more(self, src: &str, more: usize) -> Vec<f64> {
        let count = |text: &str| {
            text.lines()
                .filter(|l| l.split_whitespace().nth(2) == Some(src))
                .count()
        };
        let now = count(&self.text());
        let arrived = wait_for(Duration::from_secs(5), || count(&self.text()) >= now + more);
        assert!(arrived, "fewer than {more} adverts from {src} in 5 s");
        self.finish(src)
    }

    /// Stops the capture; what it printed, a line a packet (`<epoch seconds> <packet>`).
    fn lines(mut self) -> Vec<String> {
        let _ = self.proc.0.kill();
        let _ = self.proc.0.wait();
        self.text().lines().map(str::to_owned).collect()
    }

    /// What it has printed so far (it writes line by line).
    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

/// The longest time between two consecutive `times`, in ms.
fn longest_gap_ms(times: &[f64]) -> f64 {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]) * 1000.0)
        .fold(0.0, f64::max)
}

#[test]
#[ignore = "needs root"]
fn hanging_track_script_does_not_delay_adverts() {
    let _serial = serial();
    let dir = fresh_dir();
    let hang = dir.join("hang.sh");
    let started = dir.join("notify-started");
    script(
        &hang,
        &format!("echo \"$@\" >> {}\nexec sleep 30", started.display()),
    );
    let extra = |_: &Lab, _: &Path, router: usize| {
        if router == 0 {
            // A check that never finishes: killed at 500 ms, failing; r1 stays master at 130.
            Extra {
                instance: "track_scripts = [{ name = \"hang\", weight = -20 }]".into(),
                tables: "[[script]]\nname = \"hang\"\ncommand = [\"/bin/sleep\", \"30\"]\ninterval = \"100ms\"\ntimeout = \"500ms\"\n".into(),
                ..Extra::default()
            }
        } else {
            // A notify script that hangs when r2 becomes master.
            Extra {
                instance: format!("notify = {{ master = \"{}\" }}", hang.display()),
                ..Extra::default()
            }
        }
    };
    let scene = start(Lab::new(2), dir.clone(), &[150, 100], &extra);
    scene.await_master(0, SETTLE);
    scene.await_that(
        "r1 VI_1 at effective priority 130 (the hanging check timed out)",
        CHANGE,
        |s| r1_priority(s) == 130,
    );

    // r1's adverts as the client's link sees them, for 3 s of hanging checks.
    let client = &scene.lab.client;
    let capture = Capture::start(&client.ns, &client.iface, &dir);
    std::thread::sleep(Duration::from_secs(3));
    let times = capture.finish("192.0.2.1");
    let gap = longest_gap_ms(&times);
    eprintln!(
        "hanging track script: {} adverts from r1 in 3 s, longest gap {gap:.1} ms",
        times.len()
    );
    assert!(
        times.len() >= 25,
        "only {} adverts from r1 in 3 s{}",
        times.len(),
        scene.describe()
    );
    assert!(
        gap <= 150.0,
        "r1's adverts were {gap:.1} ms apart (> 1.5 × 100 ms) while its check hung{}",
        scene.describe()
    );

    // r1 is cut: r2 takes over on time although its notify.master script hangs.
    let capture = Capture::start(&client.ns, &client.iface, &dir);
    let cut = Instant::now();
    scene.link(0, scene.iface(0), false);
    scene.await_states(&[(1, "VI_1", "Master")], CHANGE);
    let took = cut.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    let times = capture.finish("192.0.2.2");
    let gap = longest_gap_ms(&times);
    eprintln!(
        "hanging notify script: r2 master {took:?} after the cut; {} adverts from r2, longest gap {gap:.1} ms",
        times.len()
    );
    assert!(
        took <= MDI + Duration::from_millis(150),
        "r2 took {took:?} to become master (Master_Down_Interval {MDI:?}){}",
        scene.describe()
    );
    assert!(
        wait_for(Duration::from_secs(2), || started.exists()),
        "r2's notify.master script never started{}",
        scene.describe()
    );
    assert!(
        times.len() >= 10 && gap <= 150.0,
        "r2's adverts after the takeover: {} in 1.5 s, longest gap {gap:.1} ms{}",
        times.len(),
        scene.describe()
    );
    assert!(
        client.ns.ping_once(VIP),
        "the VIP does not answer after the takeover{}",
        scene.describe()
    );
}

// ---------------------------------------------------------------------------------------
// Reloading

#[test]
#[ignore = "needs root"]
fn sighup_with_unchanged_config_changes_nothing() {
    let _serial = serial();
    let mut scene = plain(&[150, 100]);
    let before = vi1_transitions(&scene);

    let probe = scene.start_probe(VIP, 2000);
    std::thread::sleep(Duration::from_millis(700));
    let logged = scene.agents[0].log().len();
    scene.agents[0].signal(libc::SIGHUP);
    let summary = probe.finish();
    eprintln!("SIGHUP with the same configuration, seen by the client: {summary}");
    let new_log = scene.agents[0].log_since(logged);
    eprintln!("r1 logged:\n{}", new_log.trim_end());
    assert!(
        new_log.to_lowercase().contains("reload"),
        "r1 logged nothing about a reload after SIGHUP:\n{new_log}"
    );
    assert!(
        scene.agents[0].running(),
        "r1 exited on SIGHUP:\n{}",
        scene.agents[0].log()
    );
    scene.await_master(0, CHANGE);
    let after = vi1_transitions(&scene);
    assert_eq!(
        before,
        after,
        "transitions of r1, r2 changed across a reload of the same file{}",
        scene.describe()
    );
    assert_eq!(
        field(&summary, "lost"),
        0,
        "probes lost across SIGHUP: {summary}{}",
        scene.describe()
    );
    assert_eq!(
        answered_by(&summary, "r1"),
        2000,
        "not every probe answered by r1: {summary}"
    );
}

#[test]
#[ignore = "needs root"]
fn sighup_with_invalid_config_keeps_the_old_one() {
    let _serial = serial();
    let mut scene = plain(&[150, 100]);
    let transitions = scene.inst(0, "VI_1").transitions;
    let good = scene.agents[0].config_text();
    let bad = good.replace("priority = 150", "priority = 300");
    assert_ne!(good, bad);

    for (what, text) in [
        ("an out-of-range priority", bad.as_str()),
        ("garbage", "this is [not toml\n"),
    ] {
        let logged = scene.agents[0].log().len();
        scene.agents[0].sighup_with(text);
        let said = wait_for(Duration::from_secs(3), || {
            scene.agents[0].log_since(logged).contains("r1.toml")
        });
        let new_log = scene.agents[0].log_since(logged);
        assert!(
            said,
            "after SIGHUP with {what}, the log does not name r1.toml:\n{new_log}{}",
            scene.describe()
        );
        eprintln!("SIGHUP with {what} logged:\n{}", new_log.trim_end());
        assert!(
            scene.agents[0].running(),
            "r1 exited on SIGHUP with {what}:\n{}",
            scene.agents[0].log()
        );
        let r1 = scene.inst(0, "VI_1");
        assert!(
            r1.state == "Master" && r1.transitions == transitions && r1.base_priority == 150,
            "r1 changed after SIGHUP with {what}: {r1:?}{}",
            scene.describe()
        );
    }

    // The good file again: a reload that changes nothing.
    let logged = scene.agents[0].log().len();
    scene.agents[0].sighup_with(&good);
    scene.await_that("r1's reload of the good file logged", CHANGE, |s| {
        s.agents[0].log_since(logged).contains("reloaded: ")
    });
    let reloaded = scene.agents[0].log_since(logged);
    assert!(
        !reloaded.contains("restarted: ") && !reloaded.contains("updated in place: "),
        "a reload of the same file changed something:\n{reloaded}"
    );
    assert!(scene.agents[0].running(), "{}", scene.agents[0].log());
    scene.await_master(0, CHANGE);
    assert_eq!(scene.inst(0, "VI_1").transitions, transitions);
}

#[test]
#[ignore = "needs root"]
fn sighup_adds_and_removes_instances() {
    let _serial = serial();
    let mut scene = plain(&[150, 100]);
    let before = vi1_transitions(&scene);
    let originals: Vec<String> = scene.agents.iter().map(Agent::config_text).collect();
    assert!(
        !scene.lab.client.ns.ping_once(VIP2),
        "{VIP2} answers before any instance has it"
    );

    // Add VI_2 (VRID 52) on both routers; r1 is the better one. A removed master forwards
    // to the new one for its forward_window before it goes: keep that short.
    for (router, priority) in [(0, 150), (1, 100)] {
        let vi2 =
            instance("VI_2", scene.iface(router), 52, priority, VIP2) + "forward_window = \"1s\"\n";
        scene.agents[router].sighup_with(&format!("{}\n{vi2}", originals[router]));
    }
    scene.await_states(&[(0, "VI_2", "Master"), (1, "VI_2", "Backup")], CHANGE);
    assert_served_by(
        &scene,
        VIP2,
        300,
        0,
        "the added instance's VIP is not served by r1",
    );

    // Remove it from r1, the master: it hands VI_2 off before it goes (no probe lost), and
    // r2 takes over.
    let probe = scene.start_probe(VIP2, 2000);
    std::thread::sleep(Duration::from_millis(700));
    scene.agents[0].sighup_with(&originals[0]);
    scene.await_that("VI_2 gone from r1's status", CHANGE, |s| {
        s.agents[0].inst("VI_2").is_none()
    });
    scene.await_states(&[(1, "VI_2", "Master")], CHANGE);
    let summary = probe.finish();
    eprintln!("VI_2 removed from its master r1 by SIGHUP, seen by the client: {summary}");
    assert!(
        field(&summary, "lost") == 0 && answered_by(&summary, "r2") > 0,
        "removing a master instance by reload lost probes or r2 never served {VIP2}: \
         {summary}{}",
        scene.describe()
    );
    await_serving(&scene, 0, VIP2, false);

    // And from r2: nobody serves VIP2 any more.
    scene.agents[1].sighup_with(&originals[1]);
    scene.await_that("VI_2 gone from both routers' status", CHANGE, |s| {
        s.agents.iter().all(|a| {
            let names: Vec<String> = a.instances().into_iter().map(|i| i.name).collect();
            names == ["VI_1"]
        })
    });
    await_serving(&scene, 1, VIP2, false);
    assert!(
        wait_for(Duration::from_secs(2), || !scene
            .lab
            .client
            .ns
            .ping_once(VIP2)),
        "{VIP2} still answers after its instance was removed{}",
        scene.describe()
    );
    for agent in &mut scene.agents {
        assert!(agent.running(), "{} exited:\n{}", agent.id, agent.log());
    }
    scene.await_master(0, CHANGE);
    let after = vi1_transitions(&scene);
    assert_eq!(
        before,
        after,
        "VI_1 transitioned while VI_2 came and went (r1, r2){}",
        scene.describe()
    );
    assert_served_by(
        &scene,
        VIP,
        300,
        0,
        "VI_1's VIP is not served by r1 after the reloads",
    );
}

#[test]
#[ignore = "needs root"]
fn an_instance_brought_back_while_it_hands_off_runs_once() {
    let _serial = serial();
    let scene = plain(&[150, 100]);
    let originals: Vec<String> = scene.agents.iter().map(Agent::config_text).collect();
    let with_vi2: Vec<String> = [(0, 150), (1, 100)]
        .iter()
        .map(|&(router, priority)| {
            format!(
                "{}\n{}",
                originals[router],
                instance("VI_2", scene.iface(router), 52, priority, VIP2)
            )
        })
        .collect();
    for (agent, text) in scene.agents.iter().zip(&with_vi2) {
        agent.sighup_with(text);
    }
    scene.await_states(&[(0, "VI_2", "Master"), (1, "VI_2", "Backup")], CHANGE);

    // Remove VI_2 from r1, its master: it hands off and then waits out its 5 s forward
    // window before it goes. Bring it back within that window.
    scene.agents[0].sighup_with(&originals[0]);
    scene.await_states(&[(1, "VI_2", "Master")], CHANGE);
    scene.agents[0].sighup_with(&with_vi2[0]);

    // One VI_2 on r1, which preempts r2 again and serves the VIP.
    scene.await_states(&[(0, "VI_2", "Master"), (1, "VI_2", "Backup")], CHANGE);
    let names: Vec<String> = scene.agents[0]
        .instances()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "VI_2").count(),
        1,
        "r1 runs VI_2 more than once: {names:?}{}",
        scene.describe()
    );
    assert_served_by(
        &scene,
        VIP2,
        300,
        0,
        "the instance brought back is not serving on r1",
    );
}

#[test]
#[ignore = "needs root"]
fn an_instance_restarted_by_reload_keeps_what_its_trackers_saw() {
    let _serial = serial();
    let scene = tracked_link_scene(-100);
    scene.await_master(0, SETTLE);
    scene.link(0, TRACKED, false);
    scene.await_master(1, CHANGE);
    scene.await_that("r1 VI_1 at effective priority 50", CHANGE, |s| {
        r1_priority(s) == 50
    });

    // A change the instance cannot take in place (preempt_delay): VI_1 restarts on r1. The
    // link is still down, so it must come back at 50 and leave r2 master.
    let text = scene.agents[0].config_text();
    scene.agents[0].sighup_with(&format!("{text}preempt_delay = \"10ms\"\n"));
    scene.await_that("r1's reload logged", CHANGE, |s| {
        s.agents[0].log().contains("restarted: VI_1")
    });
    scene.await_that("the restarted VI_1 at effective priority 50", CHANGE, |s| {
        r1_priority(s) == 50
    });
    // Then it must stay backup: wait until it has heard r2 for longer than its
    // Master_Down_Interval (a restarted instance that ignored r2 would have taken over by
    // then), and look.
    let heard = scene.inst(0, "VI_1").adverts_received;
    scene.await_that(
        "the restarted VI_1 hearing 5 adverts from r2",
        CHANGE,
        |s| s.inst(0, "VI_1").adverts_received >= heard + 5,
    );
    scene.await_states(&[(0, "VI_1", "Backup"), (1, "VI_1", "Master")], CHANGE);

    // And it still follows the link: up again, r1 preempts.
    scene.link(0, TRACKED, true);
    scene.await_master(0, CHANGE);
}

#[test]
#[ignore = "needs root"]
fn leaving_a_sync_group_by_reload_clears_the_group_fault() {
    let _serial = serial();
    let scene = sync_group_scene();
    scene.await_states(&[(0, "VI_1", "Master"), (0, "VI_2", "Master")], SETTLE);
    scene.link(0, TRACKED, false);
    scene.await_states(&[(0, "VI_1", "Fault"), (0, "VI_2", "Fault")], CHANGE);

    // r1 leaves the group: VI_2 has no fault of its own, so it must leave Fault (and, the
    // better router, take VI_2 back) while VI_1 stays in fault.
    let text = scene.agents[0].config_text();
    scene.agents[0].sighup_with(&text.replace(SYNC_GROUP, "\n"));
    scene.await_states(&[(0, "VI_1", "Fault"), (0, "VI_2", "Master")], CHANGE);
    await_serving(&scene, 0, VIP2, true);
}

#[test]
#[ignore = "needs root"]
fn sighup_priority_change_moves_the_master() {
    let _serial = serial();
    let mut scene = plain(&[150, 100]);
    let transitions = scene.inst(0, "VI_1").transitions;
    let good = scene.agents[0].config_text();

    // r1 down to 50: updated in place (no restart of the instance), r2 (100) preempts.
    scene.agents[0].sighup_with(&good.replace("priority = 150", "priority = 50"));
    scene.await_master(1, CHANGE);
    let r1 = scene.inst(0, "VI_1");
    assert!(
        r1.base_priority == 50 && r1.effective_priority == 50 && r1.transitions == transitions + 1,
        "r1 after lowering its priority by reload (want base 50, one transition to backup): \
         {r1:?}{}",
        scene.describe()
    );

    // Back to 150: r1 preempts.
    scene.agents[0].sighup_with(&good);
    scene.await_master(0, CHANGE);
    assert!(scene.agents[0].running(), "{}", scene.agents[0].log());
    let r1 = scene.inst(0, "VI_1");
    assert!(
        r1.base_priority == 150 && r1.transitions == transitions + 2,
        "r1 after restoring its priority by reload: {r1:?}{}",
        scene.describe()
    );
    assert_served_by(
        &scene,
        VIP,
        300,
        0,
        "the VIP is not served by r1 after it preempted back",
    );
}

#[test]
#[ignore = "needs root"]
fn reload_command_reports_the_result() {
    let _serial = serial();
    let mut scene = plain(&[150]);
    let config = scene.agents[0].config.clone();
    let good = scene.agents[0].config_text();

    std::fs::write(&config, good.replace("vrid = 51", "vrid = 256")).expect("write r1.toml");
    let out = scene.agents[0].cli(&["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "vipflip reload with an invalid file: {}\nstdout: {}stderr: {stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !out.status.success(),
        "vipflip reload succeeded with an invalid file{}",
        scene.describe()
    );
    assert!(
        stderr.contains("r1.toml") && stderr.contains("vrid"),
        "vipflip reload's error does not name the file and the key: {stderr}"
    );
    assert!(scene.agents[0].running(), "{}", scene.agents[0].log());
    assert_eq!(scene.inst(0, "VI_1").state, "Master");

    std::fs::write(&config, &good).expect("restore r1.toml");
    let out = scene.agents[0].cli(&["reload"]);
    eprintln!(
        "vipflip reload with a valid file: {}\nstdout: {}stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "vipflip reload failed with a valid file: {}{}",
        String::from_utf8_lossy(&out.stderr),
        scene.describe()
    );
    assert_eq!(scene.inst(0, "VI_1").state, "Master");
}

// ---------------------------------------------------------------------------------------
// Metrics

/// `GET /metrics` from `addr` inside `ns`: the body, or why not.
fn scrape(ns: &Netns, addr: &'static str) -> Result<String, String> {
    ns.spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .map_err(|e| format!("send: {e}"))?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|e| format!("read: {e}"))?;
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no HTTP answer: {answer:?}"))?;
        if !head.starts_with("HTTP/1.") || !head.lines().next().is_some_and(|l| l.contains(" 200"))
        {
            return Err(format!("HTTP answer: {head}"));
        }
        Ok(body.to_owned())
    })
    .join()
    .map_err(|_| "the scraping thread panicked".to_owned())?
}

/// The value of the sample of `name` whose labels contain every one of `labels`
/// (`state="master"`), summed when several match; `None` when none does.
fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if !labels.iter().all(|l| rest.contains(l)) {
            continue;
        }
        let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        found = Some(found.unwrap_or(0.0) + value);
    }
    found
}

#[test]
#[ignore = "needs root"]
fn metrics_scrape_during_failover() {
    let _serial = serial();
    let extra = |_: &Lab, _: &Path, router: usize| Extra {
        global: if router == 0 {
            format!("metrics_listen = \"{METRICS}\"")
        } else {
            String::new()
        },
        ..Extra::default()
    };
    let scene = start(Lab::new(2), fresh_dir(), &[150, 100], &extra);
    scene.await_master(0, SETTLE);
    let r1 = scene.ns(0);
    let get = || {
        scrape(r1, METRICS).unwrap_or_else(|e| {
            panic!(
                "scraping r1's metrics on {METRICS}: {e}{}",
                scene.describe()
            )
        })
    };
    let need = |text: &str, name: &str, labels: &[&str]| {
        metric(text, name, labels).unwrap_or_else(|| {
            panic!(
                "no sample {name}{{{}}} in r1's metrics:\n{text}",
                labels.join(",")
            )
        })
    };
    let vi1 = "instance=\"VI_1\"";
    // Traffic to the VIP is counted by r1's XDP program as delivered locally.
    let summary = scene.probe(VIP, 200);
    assert_eq!(field(&summary, "received"), 200, "{summary}");
    let before = get();
    let local = need(
        &before,
        "vipflip_xdp_packets_total",
        &["outcome=\"vip_local\""],
    );
    assert!(
        local >= 200.0,
        "vipflip_xdp_packets_total{{outcome=\"vip_local\"}} is {local} after 200 probes to the VIP"
    );
    // Let r1 advertise a while, then hand VI_1 over to r2.
    std::thread::sleep(Duration::from_millis(300));
    scene.agents[0].handoff("VI_1");
    scene.await_master(1, CHANGE);
    let after = get();
    eprintln!("r1's metrics after the handoff:\n{after}");

    // A sample that must have grown across the handoff; `what` says what did not.
    let grew = |name: &str, labels: &[&str], what: &str| {
        let (was, is) = (need(&before, name, labels), need(&after, name, labels));
        assert!(is > was, "{what}: {was} → {is}");
    };
    grew(
        "vipflip_transitions_total",
        &[vi1],
        "vipflip_transitions_total did not grow",
    );
    for (state, was, is) in [("master", 1.0, 0.0), ("backup", 0.0, 1.0)] {
        let label = format!("state=\"{state}\"");
        let value = |t: &str| need(t, "vipflip_instance_state", &[vi1, &label]);
        assert!(
            (value(&before) - was).abs() < f64::EPSILON
                && (value(&after) - is).abs() < f64::EPSILON,
            "vipflip_instance_state{{{vi1},{label}}}: {} → {}, want {was} → {is}",
            value(&before),
            value(&after)
        );
    }
    grew(
        "vipflip_adverts_sent_total",
        &[vi1],
        "vipflip_adverts_sent_total did not grow",
    );
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("vipflip_xdp_packets_total{")),
        "no vipflip_xdp_packets_total series:\n{after}"
    );
    grew(
        "vipflip_xdp_packets_total",
        &["outcome=\"vrrp_accepted\""],
        "r1's XDP program accepted no advert of r2's after the handoff",
    );
}

// Side effects in the order decided

/// The two VIPs of the owner test.
const OWNER_VIPS: [&str; 2] = ["192.0.2.100", "192.0.2.101"];

/// An address owner (priority 255) goes Fault → Master at once each time its link comes back,
/// so its address removals (on fault) and re-adds (on master) follow each other closely: its
/// link flapped 300 times, then 50 SIGHUPs in a row. Its effects queue applies them in the
/// order decided, so at the end it holds every VIP address, `VIPS` says `local`, and a
/// gratuitous ARP went out after its last transition.
#[test]
#[ignore = "needs root"]
fn an_owner_whose_link_flaps_ends_with_its_addresses_and_an_announcement() {
    let _serial = serial();
    let lab = Lab::new(1);
    let dir = fresh_dir();
    let mut scene = Scene::start(lab, dir.clone(), PROBE, |lab, dir, router| {
        format!(
            "{}\n[[instance]]\nname = \"VI_1\"\ninterface = \"{iface}\"\nvrid = 51\npriority = 255\n\
             advert_interval = \"100ms\"\nvirtual_ips = [\"{}/24\", \"{}/24\"]\n{QUICK_GARP}",
            agent::global(&format!("r{}", router + 1), lab.bpffs.path(), dir),
            OWNER_VIPS[0],
            OWNER_VIPS[1],
            iface = lab.routers[router].iface,
        )
    });
    scene.await_master(0, SETTLE);
    let client = &scene.lab.client;
    let capture = Capture::start_filtered(&client.ns, &client.iface, &dir, "arp");
    let iface = scene.iface(0).to_owned();
    let flaps = Instant::now();
    for _ in 0..300 {
        scene.link(0, &iface, false);
        scene.link(0, &iface, true);
    }
    eprintln!("300 flaps of r1's link in {:?}", flaps.elapsed());
    // 50 reloads in a row, each sent once the previous one is done (signals sent together
    // would coalesce into one).
    let reloads = |s: &Scene| s.agents[0].log().matches("reloaded: ").count();
    let before = reloads(&scene);
    for n in 1..=50 {
        scene.agents[0].signal(libc::SIGHUP);
        scene.await_that(&format!("r1's reload {n}"), CHANGE, |s| {
            reloads(s) >= before + n
        });
    }
    // Settled: master again, and every removal a fault queued has been carried out (each
    // says so in the log); the re-add after the last one was queued behind it.
    let faults = |s: &Scene| s.agents[0].log().matches("VI_1: -> Fault (").count();
    let removals = |s: &Scene| s.agents[0].log().matches(": addresses removed in ").count();
    scene.await_that("r1 master with every queued removal done", CHANGE, |s| {
        s.agents[0].state("VI_1").as_deref() == Some("Master") && removals(s) == faults(s)
    });
    assert!(scene.agents[0].running(), "{}", scene.agents[0].log());
    let log = scene.agents[0].log();
    eprintln!(
        "r1: {} faults, {} masters, {} removals, {} reloads",
        faults(&scene),
        log.matches("VI_1: -> MASTER (").count(),
        removals(&scene),
        reloads(&scene)
    );
    assert!(faults(&scene) > 0, "no flap was seen:\n{log}");
    for vip in OWNER_VIPS {
        assert_eq!(
            serves(&scene, 0, vip),
            (true, true),
            "r1 does not serve {vip} (XDP local, address) after the flaps{}",
            scene.describe()
        );
    }
    // A gratuitous ARP for each VIP after the last transition.
    let in_state = scene.inst(0, "VI_1").time_in_state_ms;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "milliseconds, far below 2^52")]
    let last_transition = now - in_state as f64 / 1000.0;
    // The status rounds to milliseconds: 2 ms of slack. Read as tcpdump writes (line-buffered).
    let after_last = |vip: &str| -> Vec<String> {
        // `who-has V (ff:ff:ff:ff:ff:ff) tell V`: a gratuitous request (the target MAC is
        // printed when it is not zero).
        let (asks, tells) = (format!("who-has {vip} "), format!("tell {vip},"));
        capture
            .text()
            .lines()
            .filter(|l| l.contains(&asks) && l.contains(&tells))
            .filter(|l| {
                l.split_whitespace()
                    .next()
                    .and_then(|t| t.parse::<f64>().ok())
                    .is_some_and(|t| t >= last_transition - 0.002)
            })
            .map(str::to_owned)
            .collect()
    };
    let announced = wait_for(Duration::from_secs(2), || {
        OWNER_VIPS.iter().all(|vip| !after_last(vip).is_empty())
    });
    let text = capture.text();
    assert!(
        announced,
        "no gratuitous ARP for every VIP after the last transition ({last_transition:.3}); \
         the last ARP lines seen: {:?}",
        text.lines().rev().take(4).collect::<Vec<_>>()
    );
}

/// A reload that adds an interface attaches the XDP program there (load and verifier: tens of
/// ms or more). That happens off the loop that sends adverts: r1's 10 ms adverts go on, no
/// two more than 15 ms apart on the wire, while it does.
#[test]
#[ignore = "needs root"]
fn a_reload_that_adds_an_interface_keeps_the_adverts_on_time() {
    let _serial = serial();
    let lab = Lab::new(1);
    let dir = fresh_dir();
    let vi1 = |lab: &Lab, dir: &Path, router: usize| {
        format!(
            "{}\n{}",
            agent::global(&format!("r{}", router + 1), lab.bpffs.path(), dir),
            agent::instance(
                "VI_1",
                &lab.routers[router].iface,
                51,
                150,
                "10ms",
                "192.0.2.100/24"
            ),
        )
    };
    let scene = Scene::start(lab, dir.clone(), PROBE, vi1);
    scene.await_master(0, SETTLE);
    // A second link on r1, not yet in its configuration.
    let far = Netns::new("vfre");
    let far_if = unique("vfrf");
    vipflip_integration_tests::veth(scene.ns(0), "eth1", &far, &far_if);
    scene
        .ns(0)
        .ip(&["addr", "add", "198.51.100.1/24", "dev", "eth1"]);

    let client = &scene.lab.client;
    let capture = Capture::start(&client.ns, &client.iface, &dir);
    let logged = scene.agents[0].log().len();
    let text = format!(
        "{}\n{}",
        scene.agents[0].config_text(),
        agent::instance("VI_2", "eth1", 52, 150, "1s", "198.51.100.100/24")
    );
    scene.agents[0].sighup_with(&text);
    scene.await_that("r1's reload adding eth1", CHANGE, |s| {
        let log = s.agents[0].log_since(logged);
        log.contains("reloaded: ") && log.contains("eth1: XDP attached")
    });
    // And 20 adverts more after it, as the capture sees them.
    let reloaded = capture.finish_after_more("192.0.2.1", 20);
    let gap = longest_gap_ms(&reloaded);
    eprintln!(
        "reload adding eth1: {} adverts from r1 around it, longest gap {gap:.1} ms\n{}",
        reloaded.len(),
        scene.agents[0].log_since(logged)
    );
    assert!(
        gap <= 15.0,
        "r1's 10 ms adverts were {gap:.1} ms apart while a reload attached XDP to eth1{}",
        scene.describe()
    );
}
