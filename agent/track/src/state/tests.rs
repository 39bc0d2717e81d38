//! keepalived's tracking rules with exact numbers: weights, clamping, track files, the
//! owner, faults and their order, reconfiguration.

use std::path::{Path, PathBuf};

use vipflip_vrrp::{Command, FaultCause};
use vipflip_wire::Priority;

use super::{TrackState, Tracked};
use crate::{Observation, TrackConfig, TrackerConfig};

const FILE: &str = "/run/vipflip/prio";

/// `VI_1` on eth0 at `priority`, tracking eth1, script chk, and FILE with these weights.
fn config(priority: u8, eth1: i64, chk: i64, file: i64) -> TrackConfig {
    TrackConfig {
        instance: "VI_1".into(),
        interface: "eth0".into(),
        priority: Priority(priority),
        trackers: vec![
            TrackerConfig {
                what: Tracked::Interface("eth1".into()),
                weight: eth1,
            },
            TrackerConfig {
                what: Tracked::Script("chk".into()),
                weight: chk,
            },
            TrackerConfig {
                what: Tracked::File(FILE.into()),
                weight: file,
            },
        ],
    }
}

fn file(state: &mut TrackState, value: i64) -> Vec<Command> {
    state.file_value(Path::new(FILE), value)
}

const ETH1: FaultCause = FaultCause::Tracked(0);
const CHK: FaultCause = FaultCause::Tracked(1);
const FILE_CAUSE: FaultCause = FaultCause::Tracked(2);

#[test]
fn a_lost_quorum_lowers_the_priority_or_faults_with_weight_0() {
    let mut with_weight = config(100, -10, -20, 1);
    with_weight.trackers.push(TrackerConfig {
        what: Tracked::Quorum("web".into()),
        weight: -50,
    });
    let mut state = TrackState::new(with_weight.clone());
    assert_eq!(state.quorum("web", true), vec![]);
    assert_eq!(
        state.quorum("web", false),
        vec![Command::SetPriority(Priority(50))]
    );
    assert_eq!(state.quorum("other", true), vec![]);
    assert_eq!(
        state.observe(&Observation::Quorum {
            service: "web".into(),
            met: true
        }),
        vec![Command::SetPriority(Priority(100))]
    );
    with_weight.trackers[3].weight = 0;
    let mut state = TrackState::new(with_weight);
    let quorum = FaultCause::Tracked(3);
    assert_eq!(state.quorum("web", false), vec![Command::Fault(quorum)]);
    assert_eq!(state.describe(quorum), "quorum of web failed");
    assert_eq!(state.quorum("web", true), vec![Command::Unfault(quorum)]);
}

#[test]
fn numbering_is_the_configured_order() {
    let state = TrackState::new(config(100, -10, -20, 1));
    let trackers: Vec<&Tracked> = state.trackers().collect();
    assert_eq!(
        trackers,
        [
            &Tracked::Interface("eth1".into()),
            &Tracked::Script("chk".into()),
            &Tracked::File(PathBuf::from(FILE)),
        ]
    );
    assert_eq!(state.describe(CHK), "track_script chk failed");
    assert_eq!(state.describe(FaultCause::LinkDown), "interface eth0 down");
}

#[test]
fn reconfigure_keeps_observations_and_moves_the_priority() {
    let mut s = TrackState::new(config(100, -10, -20, 1));
    let _ = s.script_result("chk", false);
    assert_eq!(s.priority(), Priority(80));
    // A reload raises the base and drops the eth1 tracker: chk is still failing.
    let mut next = config(150, -10, -20, 1);
    next.trackers.remove(0);
    assert_eq!(
        s.reconfigure(next.clone()),
        [Command::SetPriority(Priority(130))]
    );
    assert_eq!(s.script_result("chk", false), []);
    assert_eq!(s.reconfigure(next), []);
}

#[test]
fn reconfigure_renumbers_a_failing_tracker_without_clearing_the_fault_first() {
    let mut s = TrackState::new(config(100, -10, 0, 1));
    assert_eq!(s.script_result("chk", false), [Command::Fault(CHK)]);
    // Without the eth1 tracker, chk is number 0 now.
    let mut next = config(100, -10, 0, 1);
    next.trackers.remove(0);
    assert_eq!(
        s.reconfigure(next),
        [
            Command::Fault(FaultCause::Tracked(0)),
            Command::Unfault(CHK)
        ]
    );
    assert_eq!(
        s.faults().into_iter().collect::<Vec<_>>(),
        [FaultCause::Tracked(0)]
    );
}

#[test]
fn report_shows_each_tracker_s_observation_and_effect() {
    let mut s = TrackState::new(config(100, -10, 0, 2));
    let _ = s.interface_up("eth1", false);
    let _ = s.script_result("chk", false);
    let report: Vec<(Tracked, Option<i64>, Option<super::Effect>)> = s
        .report()
        .into_iter()
        .map(|t| (t.what, t.seen, t.effect))
        .collect();
    assert_eq!(
        report,
        [
            (
                Tracked::Interface("eth1".into()),
                Some(0),
                Some(super::Effect::Add(-10))
            ),
            (
                Tracked::Script("chk".into()),
                Some(0),
                Some(super::Effect::Fault)
            ),
            (Tracked::File(PathBuf::from(FILE)), None, None),
        ]
    );
    assert_eq!(super::Effect::Add(-10).to_string(), "-10");
    assert_eq!(super::Effect::Add(4).to_string(), "+4");
}

#[test]
fn nothing_observed_means_base_priority_and_no_fault() {
    let state = TrackState::new(config(100, 0, 0, 0));
    assert_eq!(state.priority(), Priority(100));
    assert!(state.faults().is_empty());
    assert!(state.awaiting_scripts());
}

#[test]
fn negative_weights_subtract_while_failing() {
    let mut s = TrackState::new(config(100, -10, -20, 1));
    assert_eq!(s.interface_up("eth1", true), []);
    assert_eq!(s.script_result("chk", true), []);
    assert_eq!(
        s.interface_up("eth1", false),
        [Command::SetPriority(Priority(90))]
    );
    assert_eq!(
        s.script_result("chk", false),
        [Command::SetPriority(Priority(70))]
    );
    assert_eq!(
        s.interface_up("eth1", true),
        [Command::SetPriority(Priority(80))]
    );
    assert_eq!(
        s.script_result("chk", true),
        [Command::SetPriority(Priority(100))]
    );
    assert!(s.faults().is_empty());
}

#[test]
fn positive_weights_add_while_ok() {
    let mut s = TrackState::new(config(100, 5, 30, 1));
    assert_eq!(
        s.interface_up("eth1", true),
        [Command::SetPriority(Priority(105))]
    );
    assert_eq!(
        s.script_result("chk", true),
        [Command::SetPriority(Priority(135))]
    );
    // A failing script with a positive weight only stops adding.
    assert_eq!(
        s.script_result("chk", false),
        [Command::SetPriority(Priority(105))]
    );
    assert_eq!(
        s.interface_up("eth1", false),
        [Command::SetPriority(Priority(100))]
    );
}

#[test]
fn a_failing_positive_weight_script_at_start_changes_nothing() {
    let mut s = TrackState::new(config(100, 5, 30, 1));
    assert_eq!(s.script_result("chk", false), []);
    assert_eq!(s.priority(), Priority(100));
}

#[test]
fn weight_zero_faults_while_failing() {
    let mut s = TrackState::new(config(100, 0, 0, 1));
    assert_eq!(s.interface_up("eth1", false), [Command::Fault(ETH1)]);
    assert_eq!(s.script_result("chk", false), [Command::Fault(CHK)]);
    assert_eq!(
        s.faults().into_iter().collect::<Vec<_>>(),
        [ETH1, CHK],
        "several causes at once"
    );
    assert_eq!(s.interface_up("eth1", true), [Command::Unfault(ETH1)]);
    assert_eq!(s.script_result("chk", true), [Command::Unfault(CHK)]);
    assert_eq!(s.script_result("chk", true), []);
    assert!(!s.awaiting_scripts());
}

#[test]
fn effective_priority_is_clamped_to_1_and_254() {
    let mut s = TrackState::new(config(200, 50, 40, 1));
    s.interface_up("eth1", true);
    assert_eq!(s.priority(), Priority(250));
    assert_eq!(
        s.script_result("chk", true),
        [Command::SetPriority(Priority(254))],
        "200 + 50 + 40 = 290, clamped"
    );
    let mut s = TrackState::new(config(20, -15, -10, 1));
    s.interface_up("eth1", false);
    assert_eq!(s.priority(), Priority(5));
    assert_eq!(
        s.script_result("chk", false),
        [Command::SetPriority(Priority(1))],
        "20 - 15 - 10 = -5, clamped"
    );
    // Clamping uses the unclamped total: recovering one tracker gives 20 - 15 = 5.
    assert_eq!(
        s.script_result("chk", true),
        [Command::SetPriority(Priority(5))]
    );
}

#[test]
fn track_file_multiplies_value_by_weight() {
    let mut s = TrackState::new(config(100, -10, -10, 3));
    assert_eq!(file(&mut s, 7), [Command::SetPriority(Priority(121))]);
    assert_eq!(file(&mut s, -30), [Command::SetPriority(Priority(10))]);
    assert_eq!(file(&mut s, 0), [Command::SetPriority(Priority(100))]);
    let mut s = TrackState::new(config(100, -10, -10, -2));
    assert_eq!(file(&mut s, 15), [Command::SetPriority(Priority(70))]);
}

#[test]
fn track_file_product_is_clamped_and_minus_254_is_fault() {
    let mut s = TrackState::new(config(100, -10, -10, 1));
    // 1000 × 1 is clamped to +253: 100 + 253 → 254.
    assert_eq!(file(&mut s, 1000), [Command::SetPriority(Priority(254))]);
    // -253 is still a priority change: 100 - 253 → 1.
    assert_eq!(file(&mut s, -253), [Command::SetPriority(Priority(1))]);
    // -254 and below: fault, and the file no longer counts towards the priority.
    assert_eq!(
        file(&mut s, -254),
        [
            Command::Fault(FILE_CAUSE),
            Command::SetPriority(Priority(100))
        ]
    );
    assert_eq!(file(&mut s, i64::MIN), []);
    assert_eq!(
        file(&mut s, 4),
        [
            Command::SetPriority(Priority(104)),
            Command::Unfault(FILE_CAUSE)
        ]
    );
    // weight 2: 127 × 2 = 254 → +253; -127 × 2 = -254 → fault.
    let mut s = TrackState::new(config(100, -10, -10, 2));
    assert_eq!(file(&mut s, 127), [Command::SetPriority(Priority(254))]);
    assert_eq!(
        file(&mut s, -127),
        [
            Command::Fault(FILE_CAUSE),
            Command::SetPriority(Priority(100))
        ]
    );
}

#[test]
fn track_file_weight_zero_faults_on_non_zero() {
    let mut s = TrackState::new(config(100, -10, -10, 0));
    assert_eq!(file(&mut s, 0), []);
    assert_eq!(file(&mut s, 1), [Command::Fault(FILE_CAUSE)]);
    assert_eq!(file(&mut s, -5), []);
    assert_eq!(file(&mut s, 0), [Command::Unfault(FILE_CAUSE)]);
    assert_eq!(s.priority(), Priority(100));
}

#[test]
fn own_interface_down_is_link_down() {
    let mut s = TrackState::new(config(100, -10, -10, 1));
    assert_eq!(
        s.interface_up("eth0", false),
        [Command::Fault(FaultCause::LinkDown)]
    );
    assert_eq!(
        s.interface_up("eth0", true),
        [Command::Unfault(FaultCause::LinkDown)]
    );
    assert_eq!(s.interface_up("eth0", true), []);
}

#[test]
fn first_own_link_up_clears_a_link_down_the_daemon_raised() {
    let mut s = TrackState::new(config(100, -10, -10, 1));
    assert_eq!(
        s.interface_up("eth0", true),
        [Command::Unfault(FaultCause::LinkDown)]
    );
    assert_eq!(s.interface_up("eth0", true), []);
}

#[test]
fn faults_come_first_and_unfaults_last() {
    // The own interface, also tracked with a weight: one observation, two effects.
    let mut config = config(100, -30, -10, 1);
    config.trackers[0].what = Tracked::Interface("eth0".into());
    let mut s = TrackState::new(config);
    assert_eq!(
        s.interface_up("eth0", false),
        [
            Command::Fault(FaultCause::LinkDown),
            Command::SetPriority(Priority(70))
        ],
        "a master resigns before it would advertise the lower priority"
    );
    assert_eq!(
        s.interface_up("eth0", true),
        [
            Command::SetPriority(Priority(100)),
            Command::Unfault(FaultCause::LinkDown)
        ],
        "the instance restarts with its new priority"
    );
}

#[test]
fn own_interface_also_tracked_raises_both_causes() {
    let mut config = config(100, 0, -10, 1);
    config.trackers[0].what = Tracked::Interface("eth0".into());
    let mut s = TrackState::new(config);
    assert_eq!(
        s.interface_up("eth0", false),
        [Command::Fault(FaultCause::LinkDown), Command::Fault(ETH1)]
    );
    assert_eq!(
        s.interface_up("eth0", true),
        [
            Command::Unfault(FaultCause::LinkDown),
            Command::Unfault(ETH1)
        ]
    );
}

#[test]
fn owner_priority_never_moves_but_weight_zero_still_faults() {
    let mut s = TrackState::new(config(255, -50, 0, 10));
    assert_eq!(
        s.ignored().collect::<Vec<_>>(),
        [
            &Tracked::Interface("eth1".into()),
            &Tracked::File(PathBuf::from(FILE))
        ]
    );
    assert_eq!(s.interface_up("eth1", false), []);
    assert_eq!(file(&mut s, -100), []);
    assert_eq!(s.priority(), Priority(255));
    assert_eq!(s.script_result("chk", false), [Command::Fault(CHK)]);
    let s = TrackState::new(config(254, -50, 0, 10));
    assert_eq!(s.ignored().count(), 0);
}

#[test]
fn observations_of_untracked_objects_are_ignored() {
    let mut s = TrackState::new(config(100, -10, -10, 1));
    assert_eq!(s.interface_up("eth9", false), []);
    assert_eq!(s.script_result("other", false), []);
    assert_eq!(s.file_value(Path::new("/elsewhere"), -300), []);
    assert_eq!(s.priority(), Priority(100));
}

#[test]
fn observe_dispatches_each_kind() {
    let mut s = TrackState::new(config(100, -10, -20, 2));
    let commands: Vec<Command> = [
        Observation::Link {
            name: "eth1".into(),
            up: false,
        },
        Observation::Script {
            name: "chk".into(),
            ok: false,
        },
        Observation::File {
            path: FILE.into(),
            value: 5,
        },
    ]
    .iter()
    .flat_map(|o| s.observe(o))
    .collect();
    assert_eq!(
        commands,
        [
            Command::SetPriority(Priority(90)),
            Command::SetPriority(Priority(70)),
            Command::SetPriority(Priority(80)),
        ]
    );
}

#[test]
fn a_disabled_script_counts_neither_way_until_its_driver_reports_again() {
    // keepalived removes a track_script that script_security refuses from its instances.
    let mut weighted = TrackState::new(config(100, -10, -20, 1));
    assert_eq!(
        weighted.script_result("chk", false),
        vec![Command::SetPriority(Priority(80))]
    );
    assert_eq!(
        weighted.observe(&Observation::ScriptDisabled { name: "chk".into() }),
        vec![Command::SetPriority(Priority(100))]
    );
    let chk = &weighted.report()[1];
    assert_eq!((chk.seen, chk.effect, chk.disabled), (None, None, true));
    // A driver started again by a reload reports a result: it counts once more.
    assert_eq!(
        weighted.script_result("chk", false),
        vec![Command::SetPriority(Priority(80))]
    );
    assert!(!weighted.report()[1].disabled);

    let mut fault = TrackState::new(config(100, -10, 0, 1));
    assert!(fault.awaiting_scripts());
    assert_eq!(fault.script_disabled("chk"), vec![]);
    // A weight-0 script that was disabled before its first result holds nothing back.
    assert!(!fault.awaiting_scripts());
    assert_eq!(fault.script_result("chk", false), vec![Command::Fault(CHK)]);
    assert_eq!(fault.script_disabled("chk"), vec![Command::Unfault(CHK)]);
    assert_eq!(fault.faults(), [].into());
}
