//! Timelines on the simulated LAN, asserting exact virtual times.
//!
//! Reference values (1 s interval; `Skew_Time = (256 − p)/256 s`):
//! priority 200 → MDI 3.218 75 s, 150 → 3.414 062 5 s, 100 → 3.609 375 s.

use core::time::Duration;

use super::sim::Sim;
use super::{config, mac, ms, ns, secs};
use crate::{Action, BackupTraffic, Cause, Command, DiscardKind, StateKind};
use vipflip_wire::VrrpVersion;

/// Three routers on VRID 1: 192.0.2.1 at 200, 192.0.2.2 at 150, 192.0.2.3 at 100.
fn three_routers() -> Sim {
    let mut sim = Sim::new();
    sim.add(1, config(1, 1, 200));
    sim.add(2, config(1, 2, 150));
    sim.add(3, config(1, 3, 100));
    sim
}

/// Every `BecomeMaster` of `node`, with its time and cause.
fn masterships(sim: &Sim, node: usize) -> Vec<(Duration, Cause)> {
    sim.transitions(node)
        .into_iter()
        .filter_map(|(at, action)| match action {
            Action::BecomeMaster { cause, .. } => Some((at, cause)),
            _ => None,
        })
        .collect()
}

#[test]
fn startup_election_among_three() {
    let mut sim = three_routers();
    sim.start_all();
    sim.drive(ns(3_218_749_999));
    assert_eq!(
        sim.masters(1),
        Vec::<usize>::new(),
        "nobody before MDI(200)"
    );
    sim.drive(ns(3_218_750_000));
    assert_eq!(sim.masters(1), vec![0]);
    sim.drive(secs(60));
    assert_eq!(sim.masters(1), vec![0]);
    assert_eq!(
        masterships(&sim, 0),
        vec![(ns(3_218_750_000), Cause::MasterDownTimerExpired)]
    );
    assert!(masterships(&sim, 1).is_empty());
    assert!(masterships(&sim, 2).is_empty());
    // Adverts exactly every second from the takeover.
    let sent = sim.adverts_sent(0, 200);
    assert_eq!(sent[0], ns(3_218_750_000));
    assert_eq!(sent[1], ns(4_218_750_000));
    assert_eq!(sent.len(), 57);
}

#[test]
fn master_death_best_backup_takes_over_after_its_master_down_interval() {
    let mut sim = three_routers();
    sim.start_all();
    sim.drive(ms(10_500));
    sim.kill(0);
    // Last advert from 192.0.2.1: 10.218 75 s. MDI(150) = 3.414 062 5 s → 13.632 812 5 s.
    sim.drive(ns(13_632_812_499));
    assert!(sim.masters(1).is_empty());
    sim.drive(secs(60));
    assert_eq!(
        masterships(&sim, 1),
        vec![(ns(13_632_812_500), Cause::MasterDownTimerExpired)]
    );
    assert!(masterships(&sim, 2).is_empty(), "the 100 never fires");
    assert_eq!(sim.masters(1), vec![1]);
}

#[test]
fn priority_zero_resignation_takeover_after_skew_time() {
    let mut sim = three_routers();
    sim.start_all();
    sim.drive(ms(10_500));
    sim.command(0, 0, Command::Shutdown);
    assert_eq!(sim.adverts_sent(0, 0), vec![ms(10_500)]);
    // Skew_Time(150) = 0.414 062 5 s; Skew_Time(100) = 0.609 375 s loses the race.
    sim.drive(secs(30));
    assert_eq!(
        masterships(&sim, 1),
        vec![(ns(10_914_062_500), Cause::PriorityZeroReceived)]
    );
    assert!(masterships(&sim, 2).is_empty());
}

#[test]
fn preemption_by_a_returning_higher_priority() {
    let mut sim = Sim::new();
    let high = sim.add(1, config(1, 1, 200));
    let low = sim.add(2, config(1, 2, 100));
    sim.start(low);
    sim.drive(secs(10));
    assert_eq!(sim.masters(1), vec![low]);
    sim.start(high);
    // It discards the 100's adverts (10.609 375, 11.609 375, 12.609 375) and its own
    // Master_Down_Timer runs out at 10 + 3.218 75 s.
    sim.drive(secs(30));
    assert_eq!(
        masterships(&sim, high),
        vec![(ns(13_218_750_000), Cause::Preempted)]
    );
    assert_eq!(
        sim.transitions(low).last(),
        Some(&(
            ns(13_218_750_000),
            Action::BecomeBackup {
                cause: Cause::HigherPriorityAdvert,
                // The ex-master forwards to the new master's MAC, learned from its advert.
                traffic: BackupTraffic::Forward { mac: mac(1) }
            }
        ))
    );
    assert_eq!(sim.instance(high, 1).stats().lower_priority_ignored, 3);
}

#[test]
fn nopreempt_leaves_the_lower_master_in_place() {
    let mut sim = Sim::new();
    let mut polite = config(1, 1, 200);
    polite.preempt = false;
    let high = sim.add(1, polite);
    let low = sim.add(2, config(1, 2, 100));
    sim.start(low);
    sim.drive(secs(10));
    sim.start(high);
    sim.drive(secs(120));
    assert_eq!(sim.masters(1), vec![low]);
    assert!(masterships(&sim, high).is_empty());
    // ...until the lower master dies: then the timer works as usual.
    sim.kill(low);
    sim.drive(secs(200));
    assert_eq!(sim.masters(1), vec![high]);
}

#[test]
fn preempt_delay_holds_preemption_after_startup() {
    let mut sim = Sim::new();
    let mut patient = config(1, 1, 200);
    patient.preempt_delay = secs(5);
    let high = sim.add(1, patient);
    let low = sim.add(2, config(1, 2, 100));
    sim.start(low);
    sim.drive(secs(10));
    sim.start(high);
    // Adverts of the 100 at k + 0.609 375 s. Until 15 s they reset the timer; the last one
    // obeyed is 14.609 375 s, so the timer runs out at 14.609 375 + 3.218 75 = 17.828 125 s.
    sim.drive(secs(40));
    assert_eq!(
        masterships(&sim, high),
        vec![(ns(17_828_125_000), Cause::Preempted)]
    );
    assert_eq!(sim.masters(1), vec![high]);
}

#[test]
fn equal_priorities_are_decided_by_address() {
    let mut sim = Sim::new();
    sim.add(1, config(1, 1, 100));
    sim.add(2, config(1, 2, 100));
    sim.start_all();
    sim.drive(secs(10));
    // Both timers run out together; the lower address yields on hearing the higher one.
    assert_eq!(
        sim.transitions(0),
        vec![
            (
                Duration::ZERO,
                Action::BecomeBackup {
                    cause: Cause::Startup,
                    traffic: BackupTraffic::Drop
                }
            ),
            (
                ns(3_609_375_000),
                Action::BecomeMaster {
                    cause: Cause::MasterDownTimerExpired,
                    accept: false
                }
            ),
            (
                ns(3_609_375_000),
                Action::BecomeBackup {
                    cause: Cause::TieBreakLost,
                    traffic: BackupTraffic::Forward { mac: mac(2) }
                }
            ),
        ]
    );
    assert_eq!(sim.masters(1), vec![1]);
}

#[test]
fn equal_priorities_with_propagation_delay_overlap_exactly_that_long() {
    let mut sim = Sim::new();
    sim.delay = ms(1);
    sim.add(1, config(1, 1, 100));
    sim.add(2, config(1, 2, 100));
    sim.start_all();
    sim.drive(secs(10));
    let stepped_down = sim
        .transitions(0)
        .into_iter()
        .find(|(_, a)| {
            matches!(
                a,
                Action::BecomeBackup {
                    cause: Cause::TieBreakLost,
                    ..
                }
            )
        })
        .map(|(at, _)| at);
    assert_eq!(stepped_down, Some(ns(3_610_375_000)));
    assert_eq!(sim.masters(1), vec![1]);
}

#[test]
fn partition_then_heal_one_master_within_one_interval() {
    for (quiet, healed_at) in [(false, ns(20_828_125_000)), (true, ns(21_218_750_000))] {
        let mut sim = Sim::new();
        let mut high = config(1, 1, 200);
        high.lower_prio_no_advert = quiet;
        sim.add(1, high);
        sim.add(2, config(1, 2, 100));
        sim.start_all();
        sim.drive(ms(10_500));
        sim.set_link(0, false);
        // The 100 stops hearing 10.218 75 s adverts: master at 10.218 75 + 3.609 375.
        sim.drive(secs(20));
        assert_eq!(
            masterships(&sim, 1),
            vec![(ns(13_828_125_000), Cause::MasterDownTimerExpired)]
        );
        assert_eq!(sim.masters(1), vec![0, 1], "split brain while partitioned");
        sim.drive(ms(20_300));
        sim.set_link(0, true);
        // RFC 9568: the 200 answers the 100's 20.828 125 s advert at once; with
        // lower_prio_no_advert the 100 yields only at the 200's own 21.218 75 s advert.
        sim.drive(healed_at.saturating_sub(ns(1)));
        assert_eq!(sim.masters(1), vec![0, 1]);
        sim.drive(healed_at);
        assert_eq!(sim.masters(1), vec![0], "quiet = {quiet}");
        assert!(healed_at.saturating_sub(ms(20_300)) <= secs(1));
    }
}

#[test]
fn owner_returning_preempts_at_once() {
    let mut sim = Sim::new();
    let owner = sim.add(1, config(1, 1, 255));
    let other = sim.add(2, config(1, 2, 100));
    sim.start(other);
    sim.drive(ms(10_250));
    assert_eq!(sim.masters(1), vec![other]);
    sim.start(owner);
    assert_eq!(
        masterships(&sim, owner),
        vec![(ms(10_250), Cause::OwnerStartup)]
    );
    sim.drive(ms(10_250));
    assert_eq!(sim.masters(1), vec![owner]);
    assert_eq!(
        sim.instance(other, 1).last_cause(),
        Some(Cause::HigherPriorityAdvert)
    );
    sim.drive(secs(20));
    assert_eq!(sim.masters(1), vec![owner]);
}

#[test]
fn v2_and_v3_groups_share_the_lan_with_their_own_timing() {
    let mut sim = Sim::new();
    let v3 = |n, priority| {
        let mut config = config(1, n, priority);
        config.advert_interval = ms(100);
        config
    };
    let v2 = |n, priority| {
        let mut config = config(2, n, priority);
        config.version = VrrpVersion::V2;
        config
    };
    let r1 = sim.add_node(1, vec![v3(1, 200), v2(1, 200)], false);
    let r2 = sim.add_node(2, vec![v3(2, 100), v2(2, 100)], false);
    sim.start_all();
    sim.drive(ms(10_050));
    // v3 at 100 ms: master at 0.321 875 s, last advert before the kill 10.021 875 s.
    // v2 at 1 s: master at 3.218 75 s, last advert 9.218 75 s.
    assert_eq!(sim.last_became_master(r1, 1), Some(ns(321_875_000)));
    assert_eq!(sim.last_became_master(r1, 2), Some(ns(3_218_750_000)));
    sim.kill(r1);
    sim.drive(secs(30));
    // v3: + 300 ms + 156/256 × 100 ms. v2: + 3 s + 156/256 s.
    assert_eq!(sim.last_became_master(r2, 1), Some(ns(10_382_812_500)));
    assert_eq!(sim.last_became_master(r2, 2), Some(ns(12_828_125_000)));
    // Each instance discarded the other version's adverts.
    let wrong = |vrid| {
        sim.instance(r2, vrid)
            .stats()
            .discarded(DiscardKind::WrongVersion)
    };
    assert!(wrong(1) > 0 && wrong(2) > 0);
}

#[test]
fn v2_skew_is_whole_seconds_based_whatever_the_interval() {
    let mut sim = Sim::new();
    let v2 = |n, priority| {
        let mut config = config(1, n, priority);
        config.version = VrrpVersion::V2;
        config.advert_interval = secs(2);
        config
    };
    sim.add(1, v2(1, 200));
    sim.add(2, v2(2, 100));
    sim.start_all();
    // 3 × 2 s + 56/256 s (a v3 group would add 56/256 × 2 s).
    sim.drive(secs(7));
    assert_eq!(sim.last_became_master(0, 1), Some(ns(6_218_750_000)));
    sim.drive(ms(11_000));
    sim.kill(0);
    // Last advert 10.218 75 s; + 6 s + 156/256 s.
    sim.drive(secs(30));
    assert_eq!(sim.last_became_master(1, 1), Some(ns(16_828_125_000)));
}

#[test]
fn master_death_at_10ms_1s_and_40_95s() {
    // (interval, takeover by the 100). The 200 becomes master at MDI(200), is killed half
    // way after its 6th advert, and the 100 takes over MDI(100) after that advert.
    let cases = [
        (ms(10), ns(118_281_250)),
        (secs(1), ns(11_828_125_000)),
        (ms(40_950), ns(484_361_718_750)),
    ];
    for (interval, takeover) in cases {
        let mut sim = Sim::new();
        for (n, priority) in [(1, 200), (2, 100)] {
            let mut config = config(1, n, priority);
            config.advert_interval = interval;
            sim.add(n, config);
        }
        sim.start_all();
        let elected = sim.instance(0, 1).master_down_interval();
        sim.drive(elected + interval * 11 / 2);
        assert_eq!(sim.masters(1), vec![0], "interval {interval:?}");
        sim.kill(0);
        sim.drive(takeover.saturating_sub(ns(1)));
        assert!(sim.masters(1).is_empty(), "interval {interval:?}");
        sim.drive(takeover);
        assert_eq!(sim.masters(1), vec![1], "interval {interval:?}");
    }
}

#[test]
fn flapping_link_never_leaves_two_masters_once_it_is_up() {
    let mut sim = Sim::new();
    let interval = ms(100);
    for (n, priority) in [(1, 200), (2, 100)] {
        let mut config = config(1, n, priority);
        config.advert_interval = interval;
        sim.add(n, config);
    }
    sim.start_all();
    sim.drive(secs(1));
    let mut rng = super::random::Rng::new(7);
    let mut longest = Duration::ZERO;
    let mut splits = 0;
    let mut up = true;
    while sim.elapsed() < secs(120) {
        up = !up;
        sim.set_link(0, up);
        let until = sim.elapsed() + ms(rng.below(1_000) + 5);
        let mut since = (up && sim.masters(1).len() > 1).then(|| sim.elapsed());
        sim.drive_checking(until, |s| {
            let dual = up && s.masters(1).len() > 1;
            match (dual, since) {
                (true, None) => since = Some(s.elapsed()),
                (false, Some(start)) => {
                    longest = longest.max(s.elapsed().saturating_sub(start));
                    splits += 1;
                    since = None;
                }
                _ => {}
            }
        });
        if let Some(start) = since {
            longest = longest.max(sim.elapsed().saturating_sub(start));
        }
    }
    assert!(
        splits > 10,
        "the flaps must actually cause split brains ({splits})"
    );
    let mdi = sim.instance(1, 1).master_down_interval();
    assert!(
        longest <= mdi,
        "two masters for {longest:?} with the link up"
    );
    assert!(
        longest <= interval,
        "RFC 9568 answers bound it by one interval: {longest:?}"
    );
}

#[test]
fn graceful_handoff_never_leaves_the_vip_unserved() {
    let mut sim = three_routers();
    sim.start_all();
    sim.drive(ms(10_500));
    sim.command(0, 0, Command::GracefulHandoff);
    let mut unserved = 0;
    sim.drive_checking(secs(60), |s| {
        if s.masters(1).is_empty() {
            unserved += 1;
        }
    });
    assert_eq!(unserved, 0);
    // The 150 takes over Skew_Time(150) after the priority-0 advert; the old master hands
    // over at that very instant, forwarding to the new master's MAC.
    let handover = ns(10_914_062_500);
    assert_eq!(
        masterships(&sim, 1),
        vec![(handover, Cause::PriorityZeroReceived)]
    );
    let old: Vec<_> = sim
        .transitions(0)
        .into_iter()
        .filter(|(at, _)| *at >= ms(10_500))
        .collect();
    assert_eq!(
        old,
        vec![
            (handover, Action::ForwardTo { mac: mac(2) }),
            (
                handover,
                Action::BecomeBackup {
                    cause: Cause::HandoffComplete,
                    traffic: BackupTraffic::Forward { mac: mac(2) }
                }
            ),
        ]
    );
    // And it does not preempt back: the operator chose the other router.
    assert_eq!(sim.masters(1), vec![1]);
    assert_eq!(sim.instance(0, 1).state(), StateKind::Backup);
}

#[test]
fn graceful_handoff_with_delay_overlaps_rather_than_gaps() {
    let mut sim = three_routers();
    sim.delay = ms(2);
    sim.start_all();
    sim.drive(ms(10_500));
    sim.command(0, 0, Command::GracefulHandoff);
    let mut unserved = 0;
    sim.drive_checking(secs(60), |s| {
        if s.masters(1).is_empty() {
            unserved += 1;
        }
    });
    assert_eq!(unserved, 0);
    // Priority 0 lands at 10.502 s; the 150 is master 0.414 062 5 s later, and its advert
    // reaches the old master 2 ms after that.
    assert_eq!(sim.last_became_master(1, 1), Some(ns(10_916_062_500)));
    let done = sim.transitions(0).into_iter().find(|(_, a)| {
        matches!(
            a,
            Action::BecomeBackup {
                cause: Cause::HandoffComplete,
                ..
            }
        )
    });
    assert_eq!(done.map(|(at, _)| at), Some(ns(10_918_062_500)));
}

#[test]
fn shutdown_by_contrast_leaves_a_gap_of_skew_time() {
    let mut sim = three_routers();
    sim.start_all();
    sim.drive(ms(10_500));
    sim.command(0, 0, Command::Shutdown);
    let mut gap_start = None;
    let mut gap = Duration::ZERO;
    if sim.masters(1).is_empty() {
        gap_start = Some(sim.elapsed());
    }
    sim.drive_checking(secs(20), |s| {
        if let Some(start) = gap_start
            && !s.masters(1).is_empty()
        {
            gap = s.elapsed().saturating_sub(start);
            gap_start = None;
        }
    });
    assert_eq!(gap, ns(414_062_500), "Skew_Time(150)");
}
