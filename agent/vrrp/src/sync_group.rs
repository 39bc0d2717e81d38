//! keepalived's `vrrp_sync_group`: instances that must change state together (say, the
//! outside and inside gateways of one firewall), still sans I/O.

use std::borrow::BorrowMut;
use std::time::Instant;

use super::event::{Action, Cause, Command, FaultCause};
use super::instance::Instance;

/// Moves a set of instances together:
///
/// - one member in fault (for a cause of its own) puts every other member in fault
///   ([`FaultCause::SyncGroup`]); they leave it when no member has a fault of its own;
/// - one member becoming master (other than because of the group) makes every backup member
///   master ([`Command::SyncMaster`]); a member that starts while another is master follows
///   it the same way.
///
/// Losing an election is deliberately *not* propagated: when the peer router lost only some
/// of its members (one VRID's master died), forcing our other members back to backup would
/// make the members that took over flap between the two routers. A member forced to master
/// against a better peer simply loses that election again on the peer's answer (RFC 9568
/// §6.4.3) and stays backup; members moving together on a router-wide failure is what the
/// fault propagation is for.
///
/// Reactions to actions that the group itself caused ([`Cause::SyncGroup`] and faults with
/// [`FaultCause::SyncGroup`]) are not propagated again, so [`SyncGroup::pump`] terminates.
///
/// A graceful handoff of a group is the daemon's: it sends [`Command::GracefulHandoff`] to
/// every member.
#[derive(Debug, Default, Clone)]
pub struct SyncGroup {
    _private: (),
}

impl SyncGroup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drains every member's actions, applies the group's reactions to the members, and
    /// repeats until nothing changes. Returns every action, tagged with its member's index in
    /// `members`, in the order the caller must carry them out.
    ///
    /// Call it where a lone instance's actions would be drained: after any `handle_*` on any
    /// member. `members` may own the instances or borrow them (`&mut [&mut Instance]`, as
    /// the daemon does, whose group members are scattered among all its instances).
    pub fn pump<M: BorrowMut<Instance>>(
        &mut self,
        now: Instant,
        members: &mut [M],
    ) -> Vec<(usize, Action)> {
        let mut out = Vec::new();
        loop {
            let mut commands = Vec::new();
            let mut started = Vec::new();
            for (index, member) in members.iter_mut().enumerate() {
                while let Some(action) = member.borrow_mut().poll_action() {
                    if let Some(command) = Self::react(&action) {
                        commands.push((index, command));
                    }
                    if matches!(
                        action,
                        Action::BecomeBackup {
                            cause: Cause::Startup,
                            ..
                        }
                    ) {
                        started.push(index);
                    }
                    out.push((index, action));
                }
            }
            // A member's move is followed by every *other* member.
            let mut expanded: Vec<(usize, Command)> = Vec::new();
            for (from, command) in commands {
                expanded.extend(
                    (0..members.len())
                        .filter(|&to| to != from)
                        .map(|to| (to, command)),
                );
            }
            // A member that starts (a reload added it, or it was held for its scripts) after
            // another became master follows it, as it would have had it been running then.
            for joined in started {
                let group_master = members
                    .iter()
                    .enumerate()
                    .any(|(j, m)| j != joined && m.borrow().state() == super::StateKind::Master);
                if group_master {
                    expanded.push((joined, Command::SyncMaster));
                }
            }
            expanded.extend(Self::reconcile_faults(members));
            if expanded.is_empty() {
                return out;
            }
            for (to, command) in expanded {
                // Sync commands cannot fail; the error variants concern other commands.
                let _ = members[to].borrow_mut().handle_command(now, command);
            }
        }
    }

    /// The command one member's action asks of every other member, if any.
    fn react(action: &Action) -> Option<Command> {
        match action {
            Action::BecomeMaster { cause, .. } if *cause != Cause::SyncGroup => {
                Some(Command::SyncMaster)
            }
            _ => None,
        }
    }

    /// Level-triggered: member `j` should carry [`FaultCause::SyncGroup`] exactly when some
    /// other member has a fault of its own.
    fn reconcile_faults<M: BorrowMut<Instance>>(members: &[M]) -> Vec<(usize, Command)> {
        let own: Vec<bool> = members
            .iter()
            .map(|m| {
                m.borrow()
                    .faults()
                    .any(|cause| cause != FaultCause::SyncGroup)
            })
            .collect();
        let mut commands = Vec::new();
        for (j, member) in members.iter().enumerate() {
            let want = own.iter().enumerate().any(|(i, &faulty)| i != j && faulty);
            let have = member.borrow().has_fault(FaultCause::SyncGroup);
            if want && !have {
                commands.push((j, Command::Fault(FaultCause::SyncGroup)));
            } else if have && !want {
                commands.push((j, Command::Unfault(FaultCause::SyncGroup)));
            }
        }
        commands
    }
}
