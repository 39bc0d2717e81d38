//! vipflip and another VRRP implementation (keepalived, FRR's vrrpd: a [`Peer`]) in one group
//! on a two-router lab: router 0 runs the peer, router 1 vipflip (router id `vf`), each with a
//! probe responder. The steps every interop case takes: the roles settle by priority and hold,
//! then the master's link is cut and the backup takes over within `Master_Down_Interval`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    Host, KillOnDrop, Lab,
    agent::{self, Agent},
    answered_by,
    scene::{Prober, test_dir},
    serial, summary_number,
};

/// The VRID of every interop case.
pub const VRID: u8 = 51;

#[derive(Clone, Copy, Debug)]
pub enum Version {
    V2,
    V3,
}

#[derive(Clone, Copy, Debug)]
pub enum Fam {
    V4,
    V6,
}

pub struct Case {
    pub version: Version,
    pub family: Fam,
    /// Whether vipflip has the higher priority (and so becomes master).
    pub vipflip_master: bool,
}

impl Case {
    pub fn vip(&self) -> &'static str {
        match self.family {
            Fam::V4 => "192.0.2.100",
            Fam::V6 => "2001:db8::100",
        }
    }

    pub fn prefix(&self) -> u8 {
        match self.family {
            Fam::V4 => 24,
            Fam::V6 => 64,
        }
    }

    /// The VRRP version, as a number.
    pub fn version(&self) -> u8 {
        match self.version {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// Advert interval in ms: v2 carries whole seconds.
    pub fn interval_ms(&self) -> u64 {
        match self.version {
            Version::V2 => 1000,
            Version::V3 => 100,
        }
    }

    /// `Master_Down_Interval` of the backup (priority 100), in µs (RFC 5798 §6.1 / RFC 3768).
    /// FRR computes it in whole centiseconds, which only makes it shorter.
    pub fn mdi_us(&self) -> u64 {
        let interval = self.interval_ms() * 1000;
        match self.version {
            Version::V3 => 3 * interval + 156 * interval / 256,
            Version::V2 => 3 * interval + 156 * 1_000_000 / 256,
        }
    }

    /// The case in failure messages: `(V3, V4, true)`.
    pub fn what(&self) -> String {
        format!("{:?}", (self.version, self.family, self.vipflip_master))
    }
}

/// The other implementation, on router 0.
pub trait Peer: Sized {
    /// Its name in messages, and the name its responder answers as.
    const NAME: &'static str;
    /// How [`Peer::state`] reads when it is master, and when it is backup.
    const MASTER: &'static str;
    const BACKUP: &'static str;

    /// Whether it is installed here (`cargo xtask setup` installs it).
    fn installed() -> bool;

    /// Starts it on `host` at `priority` for `case`; its files go in `dir`.
    fn start(case: &Case, host: &Host, priority: u8, dir: &Path) -> Self;

    /// Its state now, as it says it; `None` before it says any.
    fn state(&self) -> Option<String>;

    fn log(&self) -> String;

    /// Its log and whatever else explains a failure, for messages.
    fn describe(&self) -> String {
        format!("{}:\n{}", Self::NAME, self.log())
    }
}

/// The interop test `test` of `case` (root only: `#[ignore = "needs root"]`): `check(case)`,
/// serialised with the other timing-sensitive tests of its binary. The peer must be installed
/// (`cargo xtask setup` installs it): a missing one fails the test, it never skips.
pub fn run<P: Peer>(test: &str, case: Case, check: fn(Case)) {
    assert!(
        P::installed(),
        "{test}: {} is missing; cargo xtask setup installs it",
        P::NAME
    );
    let _serial = serial();
    check(case);
}

/// One `#[test]` a case, run by `interop::run`: `interop_tests! { Peer, check; name: V3 V4 true; … }`
/// is `fn name()` with peer `Peer`, VRRP v3, IPv4, vipflip the master.
#[macro_export]
macro_rules! interop_tests {
    ($peer:ty, $check:path; $($name:ident: $version:ident $family:ident $vipflip_master:literal;)*) => {
        $(
            #[test]
            #[ignore = "needs root"]
            fn $name() {
                $crate::interop::run::<$peer>(
                    stringify!($name),
                    $crate::interop::Case {
                        version: $crate::interop::Version::$version,
                        family: $crate::interop::Fam::$family,
                        vipflip_master: $vipflip_master,
                    },
                    $check,
                );
            }
        )*
    };
}

/// One interop case running: the peer on router 0, vipflip on router 1.
pub struct Interop<P> {
    // Fields drop in order: the peer and the agents go before the namespaces.
    pub peer: P,
    pub vipflip: Agent,
    _responders: Vec<KillOnDrop>,
    pub lab: Lab,
    dir: PathBuf,
    prober: Prober,
    pub case: Case,
    /// The case in failure messages.
    pub what: String,
}

impl<P> Drop for Interop<P> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl<P: Peer> Interop<P> {
    /// Starts the peer, then vipflip with `RUST_LOG=rust_log`: the master at priority 200, the
    /// backup at 100, adverts every [`Case::interval_ms`], and a responder on both routers
    /// (`prober`'s, which also probes in [`Interop::cut_master`]).
    pub fn start(case: Case, prober: Prober, rust_log: &str) -> Self {
        let lab = Lab::new(2);
        let dir = test_dir(&format!("vipflip-{}-", P::NAME.to_lowercase()));
        let (peer_priority, vf_priority) = if case.vipflip_master {
            (100, 200)
        } else {
            (200, 100)
        };
        let (host, vf) = (&lab.routers[0], &lab.routers[1]);
        let peer = P::start(&case, host, peer_priority, &dir);
        let config = format!(
            "{}\n{}version = {}\n",
            agent::global("vf", lab.bpffs.path(), &dir),
            agent::instance(
                "VI_1",
                &vf.iface,
                VRID,
                vf_priority,
                &format!("{}ms", case.interval_ms()),
                &format!("{}/{}", case.vip(), case.prefix()),
            ),
            case.version(),
        );
        let vipflip = Agent::start(&vf.ns, &dir, "vf", &config, rust_log);
        let responders = vec![
            prober.serve(&host.ns, P::NAME),
            prober.serve(&vf.ns, "vipflip"),
        ];
        Self {
            peer,
            vipflip,
            _responders: responders,
            lab,
            dir,
            prober,
            what: case.what(),
            case,
        }
    }

    /// vipflip's state.
    pub fn vipflip_state(&self) -> Option<String> {
        self.vipflip.state("VI_1")
    }

    /// Both logs and whatever else the peer shows, for failure messages.
    pub fn logs(&self) -> String {
        format!("vipflip:\n{}\n{}", self.vipflip.log(), self.peer.describe())
    }

    /// The states the priorities give: (vipflip's, the peer's).
    fn roles(&self) -> (&'static str, &'static str) {
        if self.case.vipflip_master {
            ("Master", P::BACKUP)
        } else {
            ("Backup", P::MASTER)
        }
    }

    /// Waits (15 s at most) until vipflip and the peer take the roles their priorities give.
    pub fn await_roles(&self) {
        let (vf_role, peer_role) = self.roles();
        let settled = crate::wait_for(Duration::from_secs(15), || {
            self.vipflip_state().as_deref() == Some(vf_role)
                && self.peer.state().as_deref() == Some(peer_role)
        });
        assert!(
            settled,
            "{}: roles never settled (vipflip {:?}, {} {:?})\n{}",
            self.what,
            self.vipflip_state(),
            P::NAME,
            self.peer.state(),
            self.logs()
        );
    }

    /// Sleeps five advert intervals, for the roles to show they hold.
    pub fn hold(&self) {
        std::thread::sleep(Duration::from_millis(5 * self.case.interval_ms()));
    }

    /// vipflip and the peer still have the roles their priorities give.
    pub fn assert_roles(&self) {
        let (vf_role, peer_role) = self.roles();
        assert_eq!(
            self.vipflip_state().as_deref(),
            Some(vf_role),
            "{}: vipflip changed role\n{}",
            self.what,
            self.logs()
        );
        assert_eq!(
            self.peer.state().as_deref(),
            Some(peer_role),
            "{}: {} changed role\n{}",
            self.what,
            P::NAME,
            self.logs()
        );
    }

    /// Cuts the master's link a third into six `Master_Down_Interval`s of probing: the backup
    /// must answer the client, and the longest outage stay within `Master_Down_Interval` +
    /// 20 ms. Returns the client's summary.
    pub fn cut_master(&self) -> String {
        let what = &self.what;
        let mdi_us = self.case.mdi_us();
        let duration_ms = u32::try_from(6 * mdi_us / 1000).expect("a short probe");
        let probe = self
            .prober
            .start(&self.lab.client.ns, self.case.vip(), duration_ms);
        std::thread::sleep(Duration::from_millis(u64::from(duration_ms) / 3));
        let (master, new_master) = if self.case.vipflip_master {
            (&self.lab.routers[1], P::NAME)
        } else {
            (&self.lab.routers[0], "vipflip")
        };
        master.ns.ip(&["link", "set", &master.iface, "down"]);
        let summary = probe.finish();
        eprintln!(
            "{what}: master's link cut, seen by the client: {summary} (Master_Down_Interval \
             {mdi_us} µs)"
        );
        assert!(
            answered_by(&summary, new_master) > 0,
            "{what}: {new_master} never answered: {summary}\n{}",
            self.logs()
        );
        let outage = summary_number(&summary, "longest_outage_us");
        assert!(
            outage <= mdi_us + 20_000,
            "{what}: outage {outage} µs > Master_Down_Interval + 20 ms: {summary}\n{}",
            self.logs()
        );
        summary
    }
}
