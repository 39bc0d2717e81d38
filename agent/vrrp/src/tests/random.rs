//! Seeded randomised runs on the simulated LAN: random priorities, intervals, deaths,
//! restarts, link losses, priority changes, shutdowns and handoffs. Once things had time to
//! settle, and while every link is up, at every step:
//!
//! - at most one master, and exactly one if any router is running;
//! - the master's priority is at least that of every running router that would preempt it.
//!
//! "Time to settle" after an event is `Master_Down_Interval` at the worst priority plus one
//! advert interval and a few propagation delays: every rule converges within that (a dead
//! master is replaced `Master_Down_Interval` after its last advert, a preempting backup fires
//! that long after its last obeyed advert, a healed partition resolves at the next advert).
//! A graceful handoff may wait its bound (one `Master_Down_Interval`) first, so it gets two.
//!
//! `VIPFLIP_SIM_RUNS` sets the number of runs (default 200) and `VIPFLIP_SIM_SEED` the first
//! seed; a failure prints the seed that reproduces it.

use core::time::Duration;

use super::config;
use super::sim::Sim;
use crate::{Command, StateKind, master_down_interval};
use vipflip_wire::{Priority, VrrpVersion};

/// `SplitMix64`: tiny, seedable, good enough to pick test events.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick(&mut self, from: &[usize]) -> Option<usize> {
        let len = u64::try_from(from.len()).ok()?;
        if len == 0 {
            return None;
        }
        let index = usize::try_from(self.below(len)).ok()?;
        from.get(index).copied()
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[test]
fn randomised_elections_keep_one_rightful_master() {
    let runs = env_u64("VIPFLIP_SIM_RUNS", 200);
    let first = env_u64("VIPFLIP_SIM_SEED", 0x5eed);
    let mut checks = 0;
    for seed in first..first + runs {
        match run(seed) {
            Ok(n) => checks += n,
            Err(why) => panic!(
                "randomised run failed; reproduce with VIPFLIP_SIM_SEED={seed} VIPFLIP_SIM_RUNS=1\n{why}"
            ),
        }
    }
    assert!(
        checks >= runs,
        "the invariants were checked only {checks} times"
    );
}

/// One run; `Ok(number of invariant checks)` or `Err(what went wrong, with the timeline)`.
fn run(seed: u64) -> Result<u64, String> {
    let mut rng = Rng::new(seed);
    let interval = [
        Duration::from_millis(10),
        Duration::from_millis(100),
        Duration::from_secs(1),
    ][usize::try_from(rng.below(3)).unwrap_or(0)];
    let mut sim = Sim::new();
    if rng.chance(30) {
        sim.delay = interval / 50;
    }
    let routers = 2 + rng.below(4);
    let mut setup = Vec::new();
    for n in 1..=u8::try_from(routers).unwrap_or(2) {
        let owner = n == 1 && rng.chance(10);
        let priority = if owner {
            255
        } else {
            u8::try_from(1 + rng.below(254)).unwrap_or(100)
        };
        let mut config = config(1, n, priority);
        config.advert_interval = interval;
        config.preempt = rng.chance(85);
        setup.push(format!(
            "192.0.2.{n}: priority {priority}, preempt {}",
            config.preempt
        ));
        sim.add(n, config);
    }
    let worst = master_down_interval(VrrpVersion::V3, Priority(1), interval);
    let settle = worst + interval + sim.delay * 4;
    let mut history = vec![format!(
        "seed {seed}, interval {interval:?}, delay {:?}",
        sim.delay
    )];
    history.extend(setup);

    sim.start_all();
    let mut settle_until = settle;
    let mut checks = 0;
    for _ in 0..25 {
        let gap =
            Duration::from_nanos(rng.below(u64::try_from(settle.as_nanos() * 2).unwrap_or(1)));
        let next = sim.elapsed() + gap;
        drive_checked(&mut sim, next, settle_until, &mut checks, &history)?;
        let extra = random_event(&mut sim, &mut rng, &mut history);
        // A later event never shortens what an earlier one (a handoff) still needs.
        settle_until = settle_until.max(sim.elapsed() + settle + extra);
    }
    // Heal every link and let it settle for good.
    for node in 0..sim.nodes.len() {
        if !sim.nodes[node].link_up {
            sim.set_link(node, true);
            history.push(format!("{:?}: link {node} up (final)", sim.elapsed()));
        }
    }
    settle_until = sim.elapsed() + settle;
    let end = settle_until + interval * 5;
    drive_checked(&mut sim, end, settle_until, &mut checks, &history)?;
    Ok(checks)
}

/// Applies one random event now; returns extra settling time it needs beyond the usual.
fn random_event(sim: &mut Sim, rng: &mut Rng, history: &mut Vec<String>) -> Duration {
    let now = sim.elapsed();
    let nodes = sim.nodes.len();
    let alive: Vec<usize> = (0..nodes).filter(|&n| sim.nodes[n].alive).collect();
    let dead: Vec<usize> = (0..nodes).filter(|&n| !sim.nodes[n].alive).collect();
    let running = |sim: &Sim, n: usize| {
        sim.nodes[n].alive
            && matches!(
                sim.nodes[n].members[0].state(),
                StateKind::Backup | StateKind::Master
            )
    };
    match rng.below(7) {
        0 => {
            if let Some(n) = rng.pick(&alive) {
                sim.kill(n);
                history.push(format!("{now:?}: kill {n}"));
            }
        }
        1 => {
            if let Some(n) = rng.pick(&dead) {
                sim.restart(n);
                history.push(format!("{now:?}: restart {n}"));
            }
        }
        2 => {
            let n = usize::try_from(rng.below(nodes as u64)).unwrap_or(0);
            let up = !sim.nodes[n].link_up;
            sim.set_link(n, up);
            history.push(format!(
                "{now:?}: link {n} {}",
                if up { "up" } else { "down" }
            ));
        }
        3 => {
            let candidates: Vec<usize> = alive
                .iter()
                .copied()
                .filter(|&n| running(sim, n) && !sim.nodes[n].members[0].config().is_owner())
                .collect();
            if let Some(n) = rng.pick(&candidates) {
                let priority = Priority(u8::try_from(1 + rng.below(254)).unwrap_or(100));
                sim.command(n, 0, Command::SetPriority(priority));
                history.push(format!("{now:?}: node {n} priority {}", priority.0));
            }
        }
        4 => {
            let candidates: Vec<usize> =
                alive.iter().copied().filter(|&n| running(sim, n)).collect();
            if let Some(n) = rng.pick(&candidates) {
                sim.command(n, 0, Command::Shutdown);
                history.push(format!("{now:?}: shutdown {n}"));
            }
        }
        5 => {
            // Hand off only when someone can take over, as an operator would.
            let masters = sim.masters(1);
            let takers = alive
                .iter()
                .filter(|&&n| running(sim, n) && !masters.contains(&n) && sim.nodes[n].link_up)
                .count();
            if let [master] = masters[..]
                && takers > 0
                && !sim.nodes[master].members[0].config().is_owner()
                && !sim.nodes[master].members[0].is_handing_off()
            {
                sim.command(master, 0, Command::GracefulHandoff);
                history.push(format!("{now:?}: handoff from {master}"));
                return sim.nodes[master].members[0]
                    .config()
                    .effective_handoff_bound();
            }
        }
        _ => {
            if let Some(n) = rng.pick(&dead) {
                sim.restart(n);
                history.push(format!("{now:?}: restart {n}"));
            } else if let Some(n) = rng.pick(&alive)
                && sim.nodes[n].members[0].state() == StateKind::Initialize
            {
                sim.start(n);
                history.push(format!("{now:?}: startup {n}"));
            }
        }
    }
    Duration::ZERO
}

fn drive_checked(
    sim: &mut Sim,
    until: Duration,
    settle_until: Duration,
    checks: &mut u64,
    history: &[String],
) -> Result<(), String> {
    let mut failure = None;
    let mut check = |s: &Sim| {
        if failure.is_some() || s.elapsed() < settle_until || s.nodes.iter().any(|n| !n.link_up) {
            return;
        }
        *checks += 1;
        if let Err(why) = invariant(s) {
            failure = Some(why);
        }
    };
    check(sim);
    sim.drive_checking(until, &mut check);
    // The state at `until` held since the last step; check it if the window opened since.
    check(sim);
    match failure {
        None => Ok(()),
        Some(why) => Err(format!("{why}\nhistory:\n  {}", history.join("\n  "))),
    }
}

fn invariant(sim: &Sim) -> Result<(), String> {
    let running: Vec<usize> = (0..sim.nodes.len())
        .filter(|&n| {
            sim.nodes[n].alive
                && matches!(
                    sim.nodes[n].members[0].state(),
                    StateKind::Backup | StateKind::Master
                )
        })
        .collect();
    let masters = sim.masters(1);
    let at = sim.elapsed();
    match (running.is_empty(), &masters[..]) {
        (true, []) => Ok(()),
        (false, [master]) => {
            let mine = sim.nodes[*master].members[0].priority();
            let better = running.iter().copied().find(|&n| {
                let instance = &sim.nodes[n].members[0];
                instance.would_preempt() && instance.priority() > mine
            });
            match better {
                None => Ok(()),
                Some(n) => Err(format!(
                    "at {at:?}: master {master} (priority {}) but {n} would preempt with {}",
                    mine.0,
                    sim.nodes[n].members[0].priority().0
                )),
            }
        }
        _ => Err(format!(
            "at {at:?}: masters {masters:?} among running {running:?}"
        )),
    }
}
