//! One test per rule of RFC 5798 §6 / RFC 9568 (and RFC 3768 for v2), and one negative test
//! per acceptance rule. Each drives a single instance with hand-made adverts.

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{addr, advert, at, config, drain, mac, ms, ns, rx, secs, sent_priorities, vips};
use crate::{
    Action, BackupTraffic, Cause, Command, CommandError, ConfigError, Discard, DiscardKind,
    FaultCause, Instance, InstanceConfig, RxMeta, StateKind, Timer, master_down_interval,
    skew_time,
};
use vipflip_wire::{Auth, Priority, VirtualAddrs, VrId, VrrpVersion};

fn started(config: InstanceConfig) -> Instance {
    let mut instance = Instance::new(config).expect("valid config");
    instance
        .handle_command(at(Duration::ZERO), Command::Startup)
        .expect("startup");
    drain(&mut instance);
    instance
}

/// Router 2 at priority 100, started as backup at t = 0.
fn backup() -> Instance {
    started(config(1, 2, 100))
}

/// Router 2 at priority 100, made master by its `Master_Down_Timer` at 3.609375 s.
fn master() -> Instance {
    let mut instance = backup();
    instance.handle_timeout(at(ns(3_609_375_000)));
    drain(&mut instance);
    assert_eq!(instance.state(), StateKind::Master);
    instance
}

fn v2_config(n: u8, priority: u8) -> InstanceConfig {
    let mut config = config(1, n, priority);
    config.version = VrrpVersion::V2;
    config
}

fn v2_advert(priority: u8, interval: Duration) -> vipflip_wire::AdvertRepr {
    let mut advert = advert(1, priority, interval);
    advert.version = VrrpVersion::V2;
    advert
}

// --- formulas (RFC 9568 §6.1, RFC 3768 §6.1) --------------------------------------------

#[test]
fn skew_and_master_down_interval_v3_are_exact() {
    let v3 = VrrpVersion::V3;
    // (256 − 100) × 1 s / 256 = 0.609375 s; 3 × 1 s + that.
    assert_eq!(skew_time(v3, Priority(100), secs(1)), ns(609_375_000));
    assert_eq!(
        master_down_interval(v3, Priority(100), secs(1)),
        ns(3_609_375_000)
    );
    // 10 ms: skew 6.09375 ms, so priorities still order the race (integer centiseconds
    // would give 0 here).
    assert_eq!(skew_time(v3, Priority(100), ms(10)), ns(6_093_750));
    assert_eq!(
        master_down_interval(v3, Priority(100), ms(10)),
        ns(36_093_750)
    );
    // 40.95 s: skew 24.95390625 s, MDI 147.80390625 s.
    assert_eq!(skew_time(v3, Priority(100), ms(40_950)), ns(24_953_906_250));
    assert_eq!(
        master_down_interval(v3, Priority(100), ms(40_950)),
        ns(147_803_906_250)
    );
    // 254 is the best a backup can be: 2/256 of the interval.
    assert_eq!(skew_time(v3, Priority(254), secs(1)), ns(7_812_500));
}

#[test]
fn skew_rounds_down_at_the_nanosecond() {
    // 10 ms × 1 / 256 = 39 062.5 ns: the only rounding, downwards.
    assert_eq!(
        skew_time(VrrpVersion::V3, Priority(255), ms(10)),
        ns(39_062)
    );
}

#[test]
fn skew_v2_ignores_the_interval() {
    // RFC 3768: (256 − Priority) / 256 seconds.
    let v2 = VrrpVersion::V2;
    assert_eq!(skew_time(v2, Priority(100), secs(1)), ns(609_375_000));
    assert_eq!(skew_time(v2, Priority(100), secs(10)), ns(609_375_000));
    assert_eq!(
        master_down_interval(v2, Priority(100), secs(10)),
        ns(30_609_375_000)
    );
}

// --- configuration ------------------------------------------------------------------------

#[test]
fn default_config_is_valid_and_rfc_default() {
    let config = config(1, 2, 100);
    assert_eq!(config.validate(), Ok(()));
    assert!(config.preempt);
    assert!(!config.accept);
    assert_eq!(config.advert_interval, secs(1));
    assert_eq!(config.effective_handoff_bound(), ns(3_609_375_000));
}

#[test]
fn config_errors() {
    let check = |edit: fn(&mut InstanceConfig), want: ConfigError| {
        let mut config = config(1, 2, 100);
        edit(&mut config);
        assert_eq!(Instance::new(config).map(|_| ()), Err(want));
    };
    check(|c| c.vrid = VrId(0), ConfigError::ZeroVrid);
    check(|c| c.priority = Priority(0), ConfigError::ZeroPriority);
    check(
        |c| c.advert_interval = ms(5),
        ConfigError::IntervalOutOfRange {
            got: ms(5),
            min: ms(10),
            max: ms(40_950),
        },
    );
    check(
        |c| c.advert_interval = ms(40_960),
        ConfigError::IntervalOutOfRange {
            got: ms(40_960),
            min: ms(10),
            max: ms(40_950),
        },
    );
    check(
        |c| c.advert_interval = ms(15),
        ConfigError::IntervalNotMultiple {
            got: ms(15),
            unit: ms(10),
        },
    );
    check(
        |c| {
            c.version = VrrpVersion::V2;
            c.advert_interval = ms(1500);
        },
        ConfigError::IntervalNotMultiple {
            got: ms(1500),
            unit: secs(1),
        },
    );
    check(
        |c| {
            c.version = VrrpVersion::V2;
            c.advert_interval = ms(500);
        },
        ConfigError::IntervalOutOfRange {
            got: ms(500),
            min: secs(1),
            max: secs(255),
        },
    );
    check(
        |c| c.virtual_addrs = VirtualAddrs::V4(vec![]),
        ConfigError::NoVirtualAddrs,
    );
    check(
        |c| c.primary_addr = IpAddr::V6(Ipv6Addr::LOCALHOST),
        ConfigError::PrimaryFamilyMismatch {
            primary: IpAddr::V6(Ipv6Addr::LOCALHOST),
        },
    );
    check(
        |c| c.auth = Auth::SimpleText(*b"secret!!"),
        ConfigError::AuthOnV3,
    );
    check(
        |c| c.handoff_bound = Some(Duration::ZERO),
        ConfigError::ZeroHandoffBound,
    );
    check(
        |c| {
            c.version = VrrpVersion::V2;
            c.virtual_addrs = VirtualAddrs::V6(vec!["fe80::1".parse().expect("literal")]);
            c.primary_addr = "fe80::2".parse().expect("literal");
        },
        ConfigError::V2NeedsIpv4,
    );
}

// --- §6.4.1 Initialize --------------------------------------------------------------------

#[test]
fn new_instance_waits_for_startup() {
    let mut instance = Instance::new(config(1, 2, 100)).expect("valid");
    assert_eq!(instance.state(), StateKind::Initialize);
    assert_eq!(instance.poll_timeout(), None);
    instance.handle_timeout(at(secs(100)));
    assert_eq!(instance.poll_action(), None);
    assert_eq!(
        instance.handle_advert(at(secs(1)), rx(3), &advert(1, 200, secs(1))),
        Err(Discard::NotRunning)
    );
    assert_eq!(instance.stats().discarded(DiscardKind::NotRunning), 1);
}

#[test]
fn startup_non_owner_goes_backup_with_master_down_interval() {
    let mut instance = Instance::new(config(1, 2, 100)).expect("valid");
    instance
        .handle_command(at(secs(5)), Command::Startup)
        .expect("startup");
    assert_eq!(instance.state(), StateKind::Backup);
    assert_eq!(
        drain(&mut instance),
        vec![Action::BecomeBackup {
            cause: Cause::Startup,
            traffic: BackupTraffic::Drop
        }]
    );
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(5) + ns(3_609_375_000)))
    );
    assert_eq!(instance.timer(Timer::Adver), None);
    // A second Startup is a no-op.
    instance
        .handle_command(at(secs(6)), Command::Startup)
        .expect("startup");
    assert_eq!(instance.poll_action(), None);
}

#[test]
fn startup_owner_goes_master_at_once() {
    let mut instance = Instance::new(config(1, 2, 255)).expect("valid");
    instance
        .handle_command(at(secs(5)), Command::Startup)
        .expect("startup");
    let actions = drain(&mut instance);
    assert_eq!(
        actions[0],
        Action::BecomeMaster {
            cause: Cause::OwnerStartup,
            accept: true
        }
    );
    assert_eq!(sent_priorities(&actions), vec![255]);
    assert_eq!(actions[2], Action::SendGratuitous { addrs: vips(1) });
    assert_eq!(instance.timer(Timer::Adver), Some(at(secs(6))));
    assert_eq!(instance.timer(Timer::MasterDown), None);
}

#[test]
fn resume_goes_master_at_once_and_announces() {
    let mut instance = Instance::new(config(1, 2, 100)).expect("valid");
    instance
        .handle_command(at(secs(5)), Command::Resume)
        .expect("resume");
    assert_eq!(instance.state(), StateKind::Master);
    let actions = drain(&mut instance);
    assert_eq!(
        actions[0],
        Action::BecomeMaster {
            cause: Cause::Resumed,
            accept: false
        }
    );
    // The advert goes out now, not after Master_Down_Interval.
    assert_eq!(sent_priorities(&actions), vec![100]);
    assert_eq!(actions[2], Action::SendGratuitous { addrs: vips(1) });
    assert_eq!(instance.timer(Timer::Adver), Some(at(secs(6))));
    assert_eq!(instance.timer(Timer::MasterDown), None);
    // A second Resume (or Startup) is a no-op.
    instance
        .handle_command(at(secs(5)), Command::Resume)
        .expect("resume");
    instance
        .handle_command(at(secs(5)), Command::Startup)
        .expect("startup");
    assert_eq!(instance.poll_action(), None);
}

#[test]
fn a_resumed_master_yields_to_a_better_master_as_any_master() {
    let mut instance = Instance::new(config(1, 2, 100)).expect("valid");
    instance
        .handle_command(at(secs(5)), Command::Resume)
        .expect("resume");
    drain(&mut instance);
    instance
        .handle_advert(at(ms(5_010)), rx(3), &advert(1, 200, secs(1)))
        .expect("accepted");
    assert_eq!(instance.state(), StateKind::Backup);
    assert!(matches!(
        drain(&mut instance).last(),
        Some(Action::BecomeBackup {
            cause: Cause::HigherPriorityAdvert,
            ..
        })
    ));
}

#[test]
fn resume_with_a_fault_enters_fault() {
    let mut instance = Instance::new(config(1, 2, 100)).expect("valid");
    instance
        .handle_command(at(secs(0)), Command::Fault(FaultCause::LinkDown))
        .expect("fault");
    instance
        .handle_command(at(secs(1)), Command::Resume)
        .expect("resume");
    assert_eq!(instance.state(), StateKind::Fault);
    assert_eq!(
        drain(&mut instance),
        vec![Action::EnterFault {
            cause: Cause::Fault(FaultCause::LinkDown)
        }]
    );
}

// --- §6.4.2 Backup ------------------------------------------------------------------------

#[test]
fn early_timeout_is_a_no_op() {
    let mut instance = backup();
    let deadline = instance.poll_timeout();
    instance.handle_timeout(at(ms(3_609)));
    assert_eq!(instance.poll_action(), None);
    assert_eq!(instance.poll_timeout(), deadline);
    assert_eq!(instance.state(), StateKind::Backup);
}

#[test]
fn master_down_timer_makes_master_advert_then_gratuitous() {
    let mut instance = backup();
    instance.handle_timeout(at(ns(3_609_375_000)));
    let actions = drain(&mut instance);
    assert_eq!(
        actions,
        vec![
            Action::BecomeMaster {
                cause: Cause::MasterDownTimerExpired,
                accept: false
            },
            Action::SendAdvert(advert(1, 100, secs(1))),
            Action::SendGratuitous { addrs: vips(1) },
        ]
    );
    assert_eq!(instance.timer(Timer::Adver), Some(at(ns(4_609_375_000))));
}

#[test]
fn accept_mode_is_reported_to_the_data_plane() {
    let mut config = config(1, 2, 100);
    config.accept = true;
    let mut instance = started(config);
    instance.handle_timeout(at(secs(10)));
    assert!(matches!(
        drain(&mut instance)[0],
        Action::BecomeMaster { accept: true, .. }
    ));
}

#[test]
fn backup_priority_zero_sets_timer_to_skew_time() {
    let mut instance = backup();
    instance
        .handle_advert(at(secs(1)), rx(3), &advert(1, 0, secs(1)))
        .expect("accepted");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(1) + ns(609_375_000)))
    );
    instance.handle_timeout(at(secs(1) + ns(609_375_000)));
    assert_eq!(instance.last_cause(), Some(Cause::PriorityZeroReceived));
}

#[test]
fn backup_higher_priority_resets_timer_and_learns_interval() {
    let mut instance = backup();
    instance
        .handle_advert(at(secs(2)), rx(3), &advert(1, 200, ms(100)))
        .expect("accepted");
    // v3 learns 100 ms: MDI = 300 ms + 156/256 × 100 ms = 360.9375 ms.
    assert_eq!(instance.master_adver_interval(), ms(100));
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(2) + ns(360_937_500)))
    );
    assert_eq!(instance.poll_action(), None, "a backup never answers");
}

#[test]
fn backup_equal_priority_resets_timer_whatever_the_address() {
    // RFC 5798 §6.4.2: ">= local Priority"; the address tie-break is the master's alone.
    let mut instance = backup();
    instance
        .handle_advert(at(secs(2)), rx(1), &advert(1, 100, secs(1)))
        .expect("accepted");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(2) + ns(3_609_375_000)))
    );
}

#[test]
fn preempting_backup_discards_lower_priority() {
    let mut instance = backup();
    instance
        .handle_advert(at(secs(2)), rx(3), &advert(1, 50, secs(1)))
        .expect("well-formed");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(ns(3_609_375_000)))
    );
    assert_eq!(instance.stats().lower_priority_ignored, 1);
    instance.handle_timeout(at(ns(3_609_375_000)));
    assert_eq!(instance.last_cause(), Some(Cause::Preempted));
}

#[test]
fn non_preempting_backup_obeys_lower_priority() {
    let mut config = config(1, 2, 100);
    config.preempt = false;
    let mut instance = started(config);
    instance
        .handle_advert(at(secs(2)), rx(3), &advert(1, 50, secs(1)))
        .expect("accepted");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(2) + ns(3_609_375_000)))
    );
    assert_eq!(instance.stats().lower_priority_ignored, 0);
}

#[test]
fn preempt_delay_obeys_lower_priority_until_it_ends() {
    let mut config = config(1, 2, 100);
    config.preempt_delay = secs(5);
    let mut instance = started(config);
    assert_eq!(instance.timer(Timer::PreemptDelay), Some(at(secs(5))));
    instance
        .handle_advert(at(secs(4)), rx(3), &advert(1, 50, secs(1)))
        .expect("accepted");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(4) + ns(3_609_375_000)))
    );
    instance.handle_timeout(at(secs(5)));
    assert_eq!(instance.timer(Timer::PreemptDelay), None);
    assert_eq!(instance.state(), StateKind::Backup);
    instance
        .handle_advert(at(secs(6)), rx(3), &advert(1, 50, secs(1)))
        .expect("well-formed");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(4) + ns(3_609_375_000))),
        "after the delay, a lower priority no longer resets the timer"
    );
}

// --- §6.4.3 Master ------------------------------------------------------------------------

#[test]
fn master_adver_timer_sends_periodically() {
    let mut instance = master();
    let next = ns(4_609_375_000);
    assert_eq!(instance.timer(Timer::Adver), Some(at(next)));
    instance.handle_timeout(at(next));
    assert_eq!(sent_priorities(&drain(&mut instance)), vec![100]);
    assert_eq!(instance.timer(Timer::Adver), Some(at(next + secs(1))));
}

#[test]
fn master_steps_down_on_higher_priority() {
    let mut instance = master();
    instance
        .handle_advert(at(secs(5)), rx(3), &advert(1, 101, ms(500)))
        .expect("accepted");
    assert_eq!(
        drain(&mut instance),
        vec![Action::BecomeBackup {
            cause: Cause::HigherPriorityAdvert,
            traffic: BackupTraffic::Forward { mac: mac(3) }
        }]
    );
    // Learned 500 ms: MDI = 1.5 s + 156/256 × 0.5 s = 1.8046875 s.
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(5) + ns(1_804_687_500)))
    );
    assert_eq!(instance.timer(Timer::Adver), None);
}

#[test]
fn master_tie_break_by_address() {
    // Equal priority from 192.0.2.3 > 192.0.2.2: step down.
    let mut instance = master();
    instance
        .handle_advert(at(secs(5)), rx(3), &advert(1, 100, secs(1)))
        .expect("accepted");
    assert_eq!(instance.last_cause(), Some(Cause::TieBreakLost));
    assert_eq!(instance.state(), StateKind::Backup);
    // Equal priority from 192.0.2.1 < 192.0.2.2: stay, and assert with an advert.
    let mut instance = master();
    instance
        .handle_advert(at(secs(5)), rx(1), &advert(1, 100, secs(1)))
        .expect("accepted");
    assert_eq!(instance.state(), StateKind::Master);
    assert_eq!(sent_priorities(&drain(&mut instance)), vec![100]);
}

#[test]
fn tie_break_compares_addresses_as_unsigned_big_endian() {
    // 192.0.2.200 vs 198.51.100.1: the first differing octet decides, not the last.
    let mut config = config(1, 200, 100);
    config.primary_addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));
    let mut instance = started(config);
    instance.handle_timeout(at(secs(10)));
    let peer = RxMeta {
        src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        src_mac: mac(9),
    };
    instance
        .handle_advert(at(secs(11)), peer, &advert(1, 100, secs(1)))
        .expect("accepted");
    assert_eq!(instance.last_cause(), Some(Cause::TieBreakLost));
}

#[test]
fn master_answers_lower_priority_at_once_without_resetting_timer() {
    let mut instance = master();
    let adver_at = instance.timer(Timer::Adver);
    instance
        .handle_advert(at(secs(4)), rx(3), &advert(1, 50, secs(1)))
        .expect("accepted");
    assert_eq!(sent_priorities(&drain(&mut instance)), vec![100]);
    assert_eq!(instance.timer(Timer::Adver), adver_at);
    assert_eq!(instance.state(), StateKind::Master);
}

#[test]
fn lower_prio_no_advert_keeps_the_master_silent() {
    let mut config = config(1, 2, 100);
    config.lower_prio_no_advert = true;
    let mut instance = started(config);
    instance.handle_timeout(at(secs(10)));
    drain(&mut instance);
    instance
        .handle_advert(at(secs(11)), rx(3), &advert(1, 50, secs(1)))
        .expect("accepted");
    // Silent, but the event is still reported (keepalived sends MASTER_RX_LOWER_PRI either way).
    assert_eq!(
        drain(&mut instance),
        vec![Action::LowerPriorityHeard {
            src: addr(3),
            priority: Priority(50)
        }]
    );
}

#[test]
fn a_master_reports_a_lower_priority_advert_after_answering_it() {
    // keepalived `notify_master_rx_lower_pri`: the answer first, then the event.
    let mut instance = master();
    instance
        .handle_advert(at(secs(4)), rx(3), &advert(1, 50, secs(1)))
        .expect("accepted");
    assert_eq!(
        drain(&mut instance),
        vec![
            Action::SendAdvert(advert(1, 100, secs(1))),
            Action::LowerPriorityHeard {
                src: addr(3),
                priority: Priority(50)
            },
        ]
    );
    assert_eq!(instance.state(), StateKind::Master);
    // Equal priority from a lower address (192.0.2.1 < 192.0.2.2) counts as lower.
    instance
        .handle_advert(at(secs(5)), rx(1), &advert(1, 100, secs(1)))
        .expect("accepted");
    assert_eq!(
        drain(&mut instance)[1],
        Action::LowerPriorityHeard {
            src: addr(1),
            priority: Priority(100)
        }
    );
    // Our own advert looped back is nobody else's claim.
    assert_eq!(
        instance.handle_advert(at(secs(6)), rx(2), &advert(1, 100, secs(1))),
        Err(Discard::FromSelf)
    );
    assert_eq!(drain(&mut instance), vec![]);
}

#[test]
fn only_a_master_reports_lower_priority_adverts() {
    let mut instance = backup();
    instance
        .handle_advert(at(secs(1)), rx(3), &advert(1, 50, secs(1)))
        .expect("accepted");
    assert_eq!(drain(&mut instance), vec![]);
    // A resignation is no claim either.
    let mut instance = master();
    instance
        .handle_advert(at(secs(4)), rx(3), &advert(1, 0, secs(1)))
        .expect("accepted");
    assert_eq!(
        drain(&mut instance),
        vec![Action::SendAdvert(advert(1, 100, secs(1)))]
    );
}

#[test]
fn higher_prio_send_advert_sends_one_advert_before_stepping_down() {
    let mut config = config(1, 2, 100);
    config.higher_prio_send_advert = true;
    let mut instance = started(config);
    instance.handle_timeout(at(ns(3_609_375_000)));
    drain(&mut instance);
    instance
        .handle_advert(at(secs(5)), rx(3), &advert(1, 200, secs(1)))
        .expect("accepted");
    assert_eq!(
        drain(&mut instance),
        vec![
            Action::SendAdvert(advert(1, 100, secs(1))),
            Action::BecomeBackup {
                cause: Cause::HigherPriorityAdvert,
                traffic: BackupTraffic::Forward { mac: mac(3) }
            },
        ]
    );
    // Without it (the default) the master steps down silently, as RFC 5798 §6.4.3 says.
    let mut instance = master();
    instance
        .handle_advert(at(secs(5)), rx(3), &advert(1, 200, secs(1)))
        .expect("accepted");
    assert_eq!(
        drain(&mut instance),
        vec![Action::BecomeBackup {
            cause: Cause::HigherPriorityAdvert,
            traffic: BackupTraffic::Forward { mac: mac(3) }
        }]
    );
}

#[test]
fn higher_prio_send_advert_covers_a_lost_tie_break() {
    let mut config = config(1, 2, 100);
    config.higher_prio_send_advert = true;
    let mut instance = started(config);
    instance.handle_timeout(at(ns(3_609_375_000)));
    drain(&mut instance);
    instance
        .handle_advert(at(secs(5)), rx(3), &advert(1, 100, secs(1)))
        .expect("accepted");
    assert_eq!(
        drain(&mut instance),
        vec![
            Action::SendAdvert(advert(1, 100, secs(1))),
            Action::BecomeBackup {
                cause: Cause::TieBreakLost,
                traffic: BackupTraffic::Forward { mac: mac(3) }
            },
        ]
    );
}

#[test]
fn master_answers_priority_zero_and_resets_timer() {
    let mut instance = master();
    instance
        .handle_advert(at(secs(4)), rx(3), &advert(1, 0, secs(1)))
        .expect("accepted");
    assert_eq!(sent_priorities(&drain(&mut instance)), vec![100]);
    assert_eq!(instance.timer(Timer::Adver), Some(at(secs(5))));
}

#[test]
fn shutdown_from_master_resigns_with_priority_zero() {
    let mut instance = master();
    instance
        .handle_command(at(secs(5)), Command::Shutdown)
        .expect("shutdown");
    let actions = drain(&mut instance);
    assert_eq!(sent_priorities(&actions), vec![0]);
    assert_eq!(
        actions[1],
        Action::EnterInitialize {
            cause: Cause::Shutdown
        }
    );
    assert_eq!(instance.state(), StateKind::Initialize);
    assert_eq!(instance.poll_timeout(), None);
    // Shutdown again: nothing.
    instance
        .handle_command(at(secs(6)), Command::Shutdown)
        .expect("shutdown");
    assert_eq!(instance.poll_action(), None);
}

#[test]
fn shutdown_from_backup_sends_nothing() {
    let mut instance = backup();
    instance
        .handle_command(at(secs(1)), Command::Shutdown)
        .expect("shutdown");
    assert_eq!(
        drain(&mut instance),
        vec![Action::EnterInitialize {
            cause: Cause::Shutdown
        }]
    );
}

// --- the address owner (RFC 5798 §7.1) -----------------------------------------------------

#[test]
fn owner_discards_adverts_but_asserts_itself() {
    let mut instance = started(config(1, 2, 255));
    let result = instance.handle_advert(at(secs(1)), rx(3), &advert(1, 200, secs(1)));
    assert_eq!(
        result,
        Err(Discard::WeAreOwner {
            from_priority: Priority(200)
        })
    );
    assert_eq!(instance.state(), StateKind::Master);
    let actions = drain(&mut instance);
    assert_eq!(sent_priorities(&actions), vec![255]);
    assert_eq!(
        actions[1],
        Action::LowerPriorityHeard {
            src: addr(3),
            priority: Priority(200)
        }
    );
    assert_eq!(instance.stats().discarded(DiscardKind::WeAreOwner), 1);
    // A second owner is only logged: answering would loop between the two.
    let result = instance.handle_advert(at(secs(1)), rx(3), &advert(1, 255, secs(1)));
    assert!(result.is_err());
    assert_eq!(instance.poll_action(), None);
}

#[test]
fn owner_priority_and_handoff_are_fixed() {
    let mut instance = started(config(1, 2, 255));
    assert_eq!(
        instance.handle_command(at(secs(1)), Command::SetPriority(Priority(10))),
        Err(CommandError::OwnerPriorityFixed)
    );
    assert_eq!(
        instance.handle_command(at(secs(1)), Command::GracefulHandoff),
        Err(CommandError::OwnerCannotHandOff)
    );
    assert!(instance.would_preempt());
}

// --- acceptance: one negative test each ------------------------------------------------------

fn rejected(advert: &vipflip_wire::AdvertRepr, from: RxMeta) -> Discard {
    let mut instance = backup();
    let before = instance.timer(Timer::MasterDown);
    let discard = instance
        .handle_advert(at(secs(1)), from, advert)
        .expect_err("must be discarded");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        before,
        "{discard} moved the timer"
    );
    assert_eq!(instance.stats().discarded(discard.kind()), 1);
    assert_eq!(instance.stats().adverts_accepted, 0);
    discard
}

#[test]
fn discard_wrong_vrid() {
    assert_eq!(
        rejected(&advert(2, 200, secs(1)), rx(3)),
        Discard::WrongVrid {
            got: VrId(2),
            want: VrId(1)
        }
    );
}

#[test]
fn discard_wrong_version() {
    let mut v2 = advert(1, 200, secs(1));
    v2.version = VrrpVersion::V2;
    assert_eq!(
        rejected(&v2, rx(3)),
        Discard::WrongVersion {
            got: VrrpVersion::V2,
            want: VrrpVersion::V3
        }
    );
}

#[test]
fn discard_wrong_family_of_addresses() {
    let mut v6 = advert(1, 200, secs(1));
    v6.addrs = VirtualAddrs::V6(vec!["fe80::1".parse().expect("literal")]);
    assert_eq!(rejected(&v6, rx(3)), Discard::WrongFamily);
}

#[test]
fn discard_wrong_family_of_source() {
    let from = RxMeta {
        src: "fe80::3".parse().expect("literal"),
        src_mac: mac(3),
    };
    assert_eq!(
        rejected(&advert(1, 200, secs(1)), from),
        Discard::WrongFamily
    );
}

#[test]
fn discard_own_advert() {
    assert_eq!(rejected(&advert(1, 200, secs(1)), rx(2)), Discard::FromSelf);
}

#[test]
fn v2_discards_interval_mismatch_and_accepts_a_match() {
    let mut instance = started(v2_config(2, 100));
    let result = instance.handle_advert(at(secs(1)), rx(3), &v2_advert(200, secs(2)));
    assert_eq!(
        result,
        Err(Discard::IntervalMismatch {
            got: secs(2),
            want: secs(1)
        })
    );
    assert_eq!(instance.stats().discarded(DiscardKind::IntervalMismatch), 1);
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(ns(3_609_375_000)))
    );
    instance
        .handle_advert(at(secs(1)), rx(3), &v2_advert(200, secs(1)))
        .expect("matching interval");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(1) + ns(3_609_375_000)))
    );
}

#[test]
fn v2_discards_auth_mismatch_and_accepts_a_match() {
    let mut config = v2_config(2, 100);
    config.auth = Auth::SimpleText(*b"secret!!");
    let mut instance = started(config);
    let mut wrong = v2_advert(200, secs(1));
    wrong.auth = Auth::SimpleText(*b"secret??");
    assert_eq!(
        instance.handle_advert(at(secs(1)), rx(3), &wrong),
        Err(Discard::AuthMismatch)
    );
    let mut none = v2_advert(200, secs(1));
    none.auth = Auth::None;
    assert_eq!(
        instance.handle_advert(at(secs(1)), rx(3), &none),
        Err(Discard::AuthMismatch)
    );
    let mut right = v2_advert(200, secs(1));
    right.auth = Auth::SimpleText(*b"secret!!");
    assert_eq!(instance.handle_advert(at(secs(1)), rx(3), &right), Ok(()));
    assert_eq!(instance.stats().discarded(DiscardKind::AuthMismatch), 2);
}

#[test]
fn v2_discards_address_mismatch_unless_from_owner() {
    let mut instance = started(v2_config(2, 100));
    let mut other = v2_advert(200, secs(1));
    other.addrs = vips(9);
    assert_eq!(
        instance.handle_advert(at(secs(1)), rx(3), &other),
        Err(Discard::AddressMismatch)
    );
    other.priority = Priority(255);
    assert_eq!(instance.handle_advert(at(secs(1)), rx(3), &other), Ok(()));
    assert_eq!(instance.stats().address_mismatch, 1);
}

#[test]
fn v3_address_mismatch_is_counted_and_processed() {
    let mut instance = backup();
    let mut other = advert(1, 200, secs(1));
    other.addrs = VirtualAddrs::V4(vec![Ipv4Addr::new(198, 51, 100, 1)]);
    assert_eq!(instance.handle_advert(at(secs(1)), rx(3), &other), Ok(()));
    assert_eq!(instance.stats().address_mismatch, 1);
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(1) + ns(3_609_375_000)))
    );
}

#[test]
fn address_order_does_not_matter() {
    let two = VirtualAddrs::V4(vec![
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(192, 0, 2, 2),
    ]);
    let swapped = VirtualAddrs::V4(vec![
        Ipv4Addr::new(192, 0, 2, 2),
        Ipv4Addr::new(192, 0, 2, 1),
    ]);
    let mut config = config(1, 2, 100);
    config.virtual_addrs = two;
    let mut instance = started(config);
    let mut advert = advert(1, 200, secs(1));
    advert.addrs = swapped;
    assert_eq!(instance.handle_advert(at(secs(1)), rx(3), &advert), Ok(()));
    assert_eq!(instance.stats().address_mismatch, 0);
}

// --- IPv6 ----------------------------------------------------------------------------------

#[test]
fn ipv6_instance_elects_by_link_local_address() {
    let ll = |s: &str| -> IpAddr { s.parse().expect("literal") };
    let mut config = InstanceConfig::new(
        VrId(7),
        ll("fe80::2"),
        VirtualAddrs::V6(vec![
            "fe80::7".parse().expect("literal"),
            "2001:db8::7".parse().expect("literal"),
        ]),
    );
    config.advert_interval = ms(100);
    let mut instance = started(config.clone());
    instance.handle_timeout(at(secs(1)));
    assert_eq!(instance.state(), StateKind::Master);
    let actions = drain(&mut instance);
    assert_eq!(
        actions[2],
        Action::SendGratuitous {
            addrs: config.virtual_addrs.clone()
        }
    );
    let mut peer_advert = advert(7, 100, ms(100));
    peer_advert.addrs = config.virtual_addrs.clone();
    let lower = RxMeta {
        src: ll("fe80::1"),
        src_mac: mac(1),
    };
    instance
        .handle_advert(at(secs(2)), lower, &peer_advert)
        .expect("accepted");
    assert_eq!(instance.state(), StateKind::Master);
    let higher = RxMeta {
        src: ll("fe80::1:0"),
        src_mac: mac(3),
    };
    instance
        .handle_advert(at(secs(2)), higher, &peer_advert)
        .expect("accepted");
    assert_eq!(instance.last_cause(), Some(Cause::TieBreakLost));
}

// --- tracking: priority and faults -----------------------------------------------------------

#[test]
fn set_priority_validates_and_master_announces_it() {
    let mut instance = master();
    assert_eq!(
        instance.handle_command(at(secs(4)), Command::SetPriority(Priority(0))),
        Err(CommandError::InvalidPriority { got: 0 })
    );
    assert_eq!(
        instance.handle_command(at(secs(4)), Command::SetPriority(Priority(255))),
        Err(CommandError::InvalidPriority { got: 255 })
    );
    instance
        .handle_command(at(secs(4)), Command::SetPriority(Priority(90)))
        .expect("valid");
    assert_eq!(instance.priority(), Priority(90));
    assert_eq!(sent_priorities(&drain(&mut instance)), vec![90]);
    instance
        .handle_command(at(secs(4)), Command::SetPriority(Priority(90)))
        .expect("valid");
    assert_eq!(instance.poll_action(), None, "no change, no advert");
}

#[test]
fn backup_priority_change_moves_skew_on_next_reset() {
    let mut instance = backup();
    instance
        .handle_command(at(secs(1)), Command::SetPriority(Priority(200)))
        .expect("valid");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(ns(3_609_375_000)))
    );
    assert_eq!(instance.skew_time(), ns(218_750_000));
    instance
        .handle_advert(at(secs(2)), rx(3), &advert(1, 250, secs(1)))
        .expect("accepted");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(2) + ns(3_218_750_000)))
    );
}

#[test]
fn fault_from_master_resigns_and_waits_for_every_cause() {
    let mut instance = master();
    instance
        .handle_command(at(secs(4)), Command::Fault(FaultCause::LinkDown))
        .expect("fault");
    let actions = drain(&mut instance);
    assert_eq!(sent_priorities(&actions), vec![0]);
    assert_eq!(
        actions[1],
        Action::EnterFault {
            cause: Cause::Fault(FaultCause::LinkDown)
        }
    );
    assert_eq!(instance.poll_timeout(), None);
    instance
        .handle_command(at(secs(4)), Command::Fault(FaultCause::Tracked(7)))
        .expect("fault");
    assert_eq!(instance.poll_action(), None, "already in fault");
    assert_eq!(
        instance.handle_advert(at(secs(5)), rx(3), &advert(1, 200, secs(1))),
        Err(Discard::NotRunning)
    );
    instance
        .handle_command(at(secs(6)), Command::Unfault(FaultCause::LinkDown))
        .expect("unfault");
    assert_eq!(instance.state(), StateKind::Fault);
    instance
        .handle_command(at(secs(7)), Command::Unfault(FaultCause::Tracked(7)))
        .expect("unfault");
    assert_eq!(
        drain(&mut instance),
        vec![Action::BecomeBackup {
            cause: Cause::FaultCleared,
            traffic: BackupTraffic::Drop
        }]
    );
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(7) + ns(3_609_375_000)))
    );
}

#[test]
fn fault_before_startup_starts_in_fault() {
    let mut instance = Instance::new(config(1, 2, 255)).expect("valid");
    instance
        .handle_command(at(secs(0)), Command::Fault(FaultCause::LinkDown))
        .expect("fault");
    assert_eq!(instance.poll_action(), None);
    instance
        .handle_command(at(secs(1)), Command::Startup)
        .expect("startup");
    assert_eq!(instance.state(), StateKind::Fault);
    assert_eq!(
        drain(&mut instance),
        vec![Action::EnterFault {
            cause: Cause::Fault(FaultCause::LinkDown)
        }]
    );
    instance
        .handle_command(at(secs(2)), Command::Unfault(FaultCause::LinkDown))
        .expect("unfault");
    assert!(matches!(
        drain(&mut instance)[0],
        Action::BecomeMaster {
            cause: Cause::FaultCleared,
            accept: true
        }
    ));
}

// --- graceful handoff --------------------------------------------------------------------------

#[test]
fn handoff_requires_master() {
    let mut instance = backup();
    assert_eq!(
        instance.handle_command(at(secs(1)), Command::GracefulHandoff),
        Err(CommandError::NotMaster)
    );
}

#[test]
fn handoff_keeps_serving_and_resigns_each_interval() {
    let mut instance = master();
    instance
        .handle_command(at(secs(5)), Command::GracefulHandoff)
        .expect("master");
    assert!(instance.is_serving());
    assert!(instance.is_handing_off());
    assert_eq!(sent_priorities(&drain(&mut instance)), vec![0]);
    assert_eq!(
        instance.timer(Timer::HandoffBound),
        Some(at(secs(5) + ns(3_609_375_000)))
    );
    instance.handle_timeout(at(secs(6)));
    assert_eq!(sent_priorities(&drain(&mut instance)), vec![0]);
    // Does not fight: a lower priority or a resignation gets no answer.
    instance
        .handle_advert(at(secs(6)), rx(3), &advert(1, 0, secs(1)))
        .expect("accepted");
    assert_eq!(instance.poll_action(), None);
    assert!(instance.is_serving());
}

#[test]
fn handoff_completes_on_new_master_advert() {
    let mut instance = master();
    instance
        .handle_command(at(secs(5)), Command::GracefulHandoff)
        .expect("master");
    drain(&mut instance);
    instance
        .handle_advert(at(secs(5) + ms(400)), rx(3), &advert(1, 50, secs(1)))
        .expect("accepted");
    assert_eq!(
        drain(&mut instance),
        vec![
            Action::ForwardTo { mac: mac(3) },
            Action::BecomeBackup {
                cause: Cause::HandoffComplete,
                traffic: BackupTraffic::Forward { mac: mac(3) }
            },
        ]
    );
    // Rejoined as a backup that does not preempt the router the operator chose.
    assert!(!instance.would_preempt());
    instance
        .handle_advert(at(secs(6)), rx(3), &advert(1, 50, secs(1)))
        .expect("accepted");
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(secs(6) + ns(3_609_375_000)))
    );
    // Another router becoming master moves the forwarding.
    instance
        .handle_advert(at(secs(7)), rx(4), &advert(1, 60, secs(1)))
        .expect("accepted");
    assert_eq!(
        drain(&mut instance),
        vec![Action::ForwardTo { mac: mac(4) }]
    );
}

#[test]
fn handoff_steps_down_at_the_bound() {
    let mut config = config(1, 2, 100);
    config.handoff_bound = Some(ms(2500));
    let mut instance = started(config);
    instance.handle_timeout(at(secs(10)));
    instance
        .handle_command(at(secs(20)), Command::GracefulHandoff)
        .expect("master");
    drain(&mut instance);
    instance.handle_timeout(at(secs(21)));
    instance.handle_timeout(at(secs(22)));
    assert_eq!(sent_priorities(&drain(&mut instance)), vec![0, 0]);
    assert!(instance.is_serving());
    instance.handle_timeout(at(secs(22) + ms(500)));
    assert_eq!(
        drain(&mut instance),
        vec![Action::BecomeBackup {
            cause: Cause::HandoffBoundExpired,
            traffic: BackupTraffic::Drop
        }]
    );
    // With nobody there, it comes back as master after Master_Down_Interval.
    instance.handle_timeout(at(secs(22) + ms(500) + ns(3_609_375_000)));
    assert_eq!(instance.last_cause(), Some(Cause::MasterDownTimerExpired));
}

// --- bookkeeping ---------------------------------------------------------------------------

#[test]
fn transitions_and_discards_are_counted() {
    let mut instance = master();
    assert_eq!(instance.stats().transitions, 2);
    assert_eq!(instance.last_cause(), Some(Cause::MasterDownTimerExpired));
    let _ = instance.handle_advert(at(secs(4)), rx(3), &advert(9, 200, secs(1)));
    let _ = instance.handle_advert(at(secs(4)), rx(2), &advert(1, 200, secs(1)));
    assert_eq!(instance.stats().discarded(DiscardKind::WrongVrid), 1);
    assert_eq!(instance.stats().discarded(DiscardKind::FromSelf), 1);
    assert_eq!(instance.stats().discarded_total(), 2);
    assert_eq!(instance.stats().adverts_sent, 1);
}

#[test]
fn poll_timeout_is_the_earliest_timer() {
    let mut config = config(1, 2, 100);
    config.preempt_delay = secs(1);
    let instance = started(config);
    assert_eq!(instance.poll_timeout(), Some(at(secs(1))));
    assert_eq!(
        instance.timer(Timer::MasterDown),
        Some(at(ns(3_609_375_000)))
    );
    assert_eq!(addr(2), instance.config().primary_addr);
}
