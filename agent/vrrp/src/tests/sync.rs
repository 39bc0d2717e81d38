//! Sync groups: members fault together and become master together.

use super::sim::Sim;
use super::{at, config, ms, ns, secs};
use crate::{Action, Cause, Command, FaultCause, Instance, StateKind, SyncGroup};

fn pair(priority: u8) -> Vec<Instance> {
    [1, 2]
        .into_iter()
        .map(|vrid| {
            let mut instance = Instance::new(config(vrid, 2, priority)).expect("valid");
            instance
                .handle_command(at(secs(0)), Command::Startup)
                .expect("startup");
            instance
        })
        .collect()
}

#[test]
fn fault_of_one_member_faults_all_and_clears_together() {
    let mut members = pair(100);
    let mut group = SyncGroup::new();
    group.pump(at(secs(0)), &mut members);
    members[0]
        .handle_command(at(secs(1)), Command::Fault(FaultCause::LinkDown))
        .expect("fault");
    let actions = group.pump(at(secs(1)), &mut members);
    assert!(actions.contains(&(
        1,
        Action::EnterFault {
            cause: Cause::Fault(FaultCause::SyncGroup)
        }
    )));
    assert_eq!(members[1].state(), StateKind::Fault);
    members[0]
        .handle_command(at(secs(2)), Command::Unfault(FaultCause::LinkDown))
        .expect("unfault");
    group.pump(at(secs(2)), &mut members);
    assert_eq!(members[0].state(), StateKind::Backup);
    assert_eq!(members[1].state(), StateKind::Backup);
}

#[test]
fn a_member_with_its_own_fault_stays_in_fault() {
    let mut members = pair(100);
    let mut group = SyncGroup::new();
    members[0]
        .handle_command(at(secs(1)), Command::Fault(FaultCause::LinkDown))
        .expect("fault");
    members[1]
        .handle_command(at(secs(1)), Command::Fault(FaultCause::Tracked(3)))
        .expect("fault");
    group.pump(at(secs(1)), &mut members);
    members[0]
        .handle_command(at(secs(2)), Command::Unfault(FaultCause::LinkDown))
        .expect("unfault");
    group.pump(at(secs(2)), &mut members);
    assert_eq!(
        members[0].state(),
        StateKind::Fault,
        "member 1 is still faulty"
    );
    assert_eq!(members[1].state(), StateKind::Fault);
    members[1]
        .handle_command(at(secs(3)), Command::Unfault(FaultCause::Tracked(3)))
        .expect("unfault");
    group.pump(at(secs(3)), &mut members);
    assert_eq!(members[0].state(), StateKind::Backup);
    assert_eq!(members[1].state(), StateKind::Backup);
}

#[test]
fn one_member_master_makes_all_master() {
    let mut members = pair(100);
    let mut group = SyncGroup::new();
    group.pump(at(secs(0)), &mut members);
    // Only member 0 hears nothing for long enough (member 1 keeps hearing its master).
    members[1]
        .handle_advert(at(secs(3)), super::rx(3), &super::advert(2, 200, secs(1)))
        .expect("accepted");
    members[0].handle_timeout(at(ns(3_609_375_000)));
    members[1].handle_timeout(at(ns(3_609_375_000)));
    let actions = group.pump(at(ns(3_609_375_000)), &mut members);
    assert!(actions.contains(&(
        1,
        Action::BecomeMaster {
            cause: Cause::SyncGroup,
            accept: false
        }
    )));
    assert_eq!(members[1].state(), StateKind::Master);
}

#[test]
fn a_member_starting_after_another_became_master_follows_it() {
    let mut members = pair(100);
    let mut late = Instance::new(config(3, 2, 100)).expect("valid");
    let mut group = SyncGroup::new();
    group.pump(at(secs(0)), &mut members);
    members[0].handle_timeout(at(ns(3_609_375_000)));
    group.pump(at(ns(3_609_375_000)), &mut members);
    assert_eq!(members[1].state(), StateKind::Master);

    late.handle_command(at(secs(5)), Command::Startup)
        .expect("startup");
    let mut all: Vec<&mut Instance> = members.iter_mut().chain([&mut late]).collect();
    let actions = group.pump(at(secs(5)), &mut all);
    assert!(actions.contains(&(
        2,
        Action::BecomeMaster {
            cause: Cause::SyncGroup,
            accept: false
        }
    )));
    assert_eq!(late.state(), StateKind::Master);
}

#[test]
fn a_member_starting_while_no_member_is_master_stays_backup() {
    let mut members = pair(100);
    let mut group = SyncGroup::new();
    group.pump(at(secs(0)), &mut members);
    assert_eq!(members[0].state(), StateKind::Backup);
    assert_eq!(members[1].state(), StateKind::Backup);
}

#[test]
fn sync_groups_move_together_on_the_lan() {
    let mut sim = Sim::new();
    let r1 = sim.add_node(1, vec![config(1, 1, 200), config(2, 1, 200)], true);
    let r2 = sim.add_node(2, vec![config(1, 2, 100), config(2, 2, 100)], true);
    sim.start_all();
    sim.drive(ms(10_500));
    assert_eq!((sim.masters(1), sim.masters(2)), (vec![r1], vec![r1]));

    // One of r1's links fails: both its instances fault and resign at once, and r2's pair
    // takes over together Skew_Time(100) = 0.609 375 s later.
    sim.command(r1, 0, Command::Fault(FaultCause::LinkDown));
    assert_eq!(sim.instance(r1, 2).state(), StateKind::Fault);
    assert_eq!(sim.adverts_sent(r1, 0), vec![ms(10_500), ms(10_500)]);
    sim.drive(secs(20));
    assert_eq!(sim.last_became_master(r2, 1), Some(ns(11_109_375_000)));
    assert_eq!(sim.last_became_master(r2, 2), Some(ns(11_109_375_000)));
    assert_eq!((sim.masters(1), sim.masters(2)), (vec![r2], vec![r2]));

    // It recovers: both rejoin as backups, preempt together MDI(200) later.
    sim.drive(ms(20_500));
    sim.command(r1, 0, Command::Unfault(FaultCause::LinkDown));
    sim.drive(secs(40));
    assert_eq!(sim.last_became_master(r1, 1), Some(ns(23_718_750_000)));
    assert_eq!(sim.last_became_master(r1, 2), Some(ns(23_718_750_000)));
    assert_eq!((sim.masters(1), sim.masters(2)), (vec![r1], vec![r1]));
}

#[test]
fn partial_loss_does_not_flap_the_other_member() {
    // r1 stops VRID 1 only. r2 takes VRID 1 and, as a sync group, is pushed to master on
    // VRID 2 too; r1 (still master there, and better) answers at once and r2 yields VRID 2
    // again. The end state is stable: nobody flaps.
    let mut sim = Sim::new();
    let r1 = sim.add_node(1, vec![config(1, 1, 200), config(2, 1, 200)], false);
    let r2 = sim.add_node(2, vec![config(1, 2, 100), config(2, 2, 100)], true);
    sim.start_all();
    sim.drive(ms(10_500));
    sim.command(r1, 0, Command::Shutdown);
    sim.drive(secs(60));
    assert_eq!((sim.masters(1), sim.masters(2)), (vec![r2], vec![r1]));
    let r2_vrid2_masterships = sim
        .transitions(r2)
        .iter()
        .filter(|(_, a)| {
            matches!(
                a,
                Action::BecomeMaster {
                    cause: Cause::SyncGroup,
                    ..
                }
            )
        })
        .count();
    assert_eq!(r2_vrid2_masterships, 1, "forced once, then stable");
}
