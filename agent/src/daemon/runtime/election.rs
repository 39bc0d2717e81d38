//! The election path: adverts and deadlines into the state machines, trackers' observations
//! into their priorities and faults, and the actions that come out dispatched in order
//! (sync groups pumped as one).

use std::net::IpAddr;
use std::time::Instant;

use crate::{
    dataplane::Ownership,
    io::vrrp_socket::ReceivedAdvert,
    notify::{NotifyKind, NotifyState},
    track::Observation,
    vrrp::{Action, BackupTraffic, Cause, Command, FaultCause, Instance, RxMeta, StateKind},
    wire::{MacAddr, Priority},
};

use super::{Daemon, InstanceId, reload::remember, report::cause_label};

impl Daemon {
    pub(super) async fn advert(
        &mut self,
        socket: usize,
        result: Result<ReceivedAdvert, crate::io::vrrp_socket::RecvError>,
    ) {
        let rx = match result {
            Ok(rx) => rx,
            Err(err) => {
                log::warn!("{err}");
                return;
            }
        };
        let now = Instant::now();
        let Some(id) = self
            .instances
            .find(|r| r.socket == Some(socket) && r.spec.vrid == rx.advert.vrid)
        else {
            log::debug!(
                "advert for VRID {} from {}: no instance here",
                rx.advert.vrid,
                rx.src
            );
            return;
        };
        let meta = rx.rx_meta().unwrap_or(RxMeta {
            src: rx.src,
            src_mac: MacAddr([0; 6]),
        });
        let running = &mut self.instances[id];
        running.adverts_received += 1;
        match running.vrrp.handle_advert(now, meta, &rx.advert) {
            Ok(()) => {
                if rx.advert.priority.0 > 0 && running.vrrp.state() != StateKind::Master {
                    running.master = Some((rx.src, rx.advert.priority.0));
                }
                if running.resumed
                    && running.vrrp.state() == StateKind::Backup
                    && rx.advert.priority.0 > 0
                {
                    // Another router is master: what the previous run left in the map is stale.
                    running.resumed = false;
                    let traffic = if meta.src_mac.0 == [0; 6] {
                        BackupTraffic::Drop
                    } else {
                        BackupTraffic::Forward { mac: meta.src_mac }
                    };
                    self.step_down(id, traffic);
                }
            }
            Err(discard) => log::debug!(
                "instance {}: advert from {} discarded: {discard}",
                running.spec.name,
                rx.src
            ),
        }
        self.dispatch(id).await;
    }

    pub(super) async fn deadlines(&mut self) {
        let now = Instant::now();
        for id in self.instances.ids() {
            let running = &mut self.instances[id];
            if let Some((until, _)) = running.forwarding_until
                && until <= now
            {
                running.forwarding_until = None;
                let vrid = running.spec.vrid.0;
                self.set_vips(id, Ownership::Drop { vrid });
                log::info!(
                    "instance {}: forward window over; VIP traffic now dropped here",
                    self.instances[id].spec.name
                );
            }
            let running = &mut self.instances[id];
            if running.vrrp.poll_timeout().is_some_and(|at| at <= now) {
                running.vrrp.handle_timeout(now);
                self.dispatch(id).await;
            }
        }
    }

    /// Carries out every action the instance has queued, in order; for a sync-group member,
    /// every action of every member once the group has reacted ([`SyncGroup::pump`]).
    pub(super) async fn dispatch(&mut self, id: InstanceId) {
        let Some(group) = self.instances[id].group else {
            while let Some(action) = self.instances[id].vrrp.poll_action() {
                self.act(id, action).await;
            }
            return;
        };
        let members = self.instances.ids_where(|r| r.group == Some(group));
        let mut vrrps: Vec<&mut Instance> = self
            .instances
            .iter_mut()
            .filter(|r| r.group == Some(group))
            .map(|r| &mut r.vrrp)
            .collect();
        let actions = self.groups[group].sync.pump(Instant::now(), &mut vrrps);
        for (member, action) in actions {
            self.act(members[member], action).await;
        }
        self.notify_group(group);
    }

    /// keepalived's group states: fault when any member is, master when all are, backup
    /// otherwise; notified on change.
    pub(super) fn notify_group(&mut self, group: usize) {
        // Called after every dispatch of a member's actions (every advert it hears): one
        // pass, no allocation.
        let (mut any, mut initializing, mut fault, mut all_master) = (false, false, false, true);
        for r in self.instances.iter().filter(|r| r.group == Some(group)) {
            let s = r.vrrp.state();
            any = true;
            initializing |= s == StateKind::Initialize;
            fault |= s == StateKind::Fault;
            all_master &= s == StateKind::Master;
        }
        if !any || initializing {
            return;
        }
        let state = if fault {
            NotifyState::Fault
        } else if all_master {
            NotifyState::Master
        } else {
            NotifyState::Backup
        };
        let g = &mut self.groups[group];
        if g.notified != Some(state) {
            g.notified = Some(state);
            log::info!("sync group {}: {state}", g.name);
            self.notifier.state_changed(
                NotifyKind::Group,
                &g.name,
                state,
                crate::wire::Priority(0),
            );
        }
    }

    /// A tracker reported: every instance tracking it gets the commands that bring it up to
    /// date; one waiting for its first script results may start.
    pub(super) async fn observe(&mut self, observation: &Observation) {
        remember(&mut self.observed, observation);
        for id in self.instances.ids() {
            let commands = self.instances[id].track.observe(observation);
            let starting =
                self.instances[id].startup_pending && !self.instances[id].track.awaiting_scripts();
            if commands.is_empty() && !starting {
                continue;
            }
            self.apply_track_commands(id, commands);
            if starting {
                let command = if self.instances[id].resumed && self.was_master(id) {
                    Command::Resume
                } else {
                    Command::Startup
                };
                let running = &mut self.instances[id];
                running.startup_pending = false;
                log::info!(
                    "instance {}: first script results in; starting",
                    running.spec.name
                );
                let _ = running.vrrp.handle_command(Instant::now(), command);
            }
            self.dispatch(id).await;
        }
    }

    pub(super) fn apply_track_commands(&mut self, id: InstanceId, commands: Vec<Command>) {
        let now = Instant::now();
        let running = &mut self.instances[id];
        for command in commands {
            if command == Command::Unfault(FaultCause::LinkDown) && running.socket.is_none() {
                // No VRRP socket could be opened at start (interface or address missing):
                // the instance cannot run until a reload or restart opens one.
                log::warn!(
                    "instance {}: {} is up, but the instance has no VRRP socket; \
                     reload (once it has its address) or restart to start it",
                    running.spec.name,
                    running.spec.interface
                );
                continue;
            }
            if let Err(err) = running.vrrp.handle_command(now, command) {
                log::debug!("instance {}: {command:?}: {err}", running.spec.name);
            }
        }
    }

    /// keepalived's `MASTER_RX_LOWER_PRI`: the script and the FIFO line carry our own
    /// (effective) priority, as keepalived's do.
    fn lower_priority_heard(&mut self, id: InstanceId, name: &str, src: IpAddr, from: Priority) {
        let own = self.instances[id].vrrp.priority();
        log::info!(
            "instance {name}: advert from {src} with lower priority {}, ours {}",
            from.0,
            own.0
        );
        self.notifier.state_changed(
            NotifyKind::Instance,
            name,
            NotifyState::MasterRxLowerPri,
            own,
        );
    }

    pub(super) async fn act(&mut self, id: InstanceId, action: Action) {
        let name = self.instances[id].spec.name.clone();
        let transition = match &action {
            Action::BecomeMaster { cause, .. } => Some((StateKind::Master, *cause)),
            Action::BecomeBackup { cause, .. } => Some((StateKind::Backup, *cause)),
            Action::EnterFault { cause } => Some((StateKind::Fault, *cause)),
            Action::EnterInitialize { cause } => Some((StateKind::Initialize, *cause)),
            _ => None,
        };
        if let Some((to, cause)) = transition {
            // The state gauge is refreshed at each scrape; the transition is an event.
            self.metrics.transition(&name, to, &cause_label(cause));
            self.announce_instance(&name, to);
        }
        match action {
            Action::SendAdvert(advert) => {
                let running = &mut self.instances[id];
                let Some(socket) = running.socket.map(|i| &self.sockets[i]) else {
                    return;
                };
                for dst in &running.destinations {
                    match socket.send(&advert, *dst, running.spec.checksum).await {
                        Ok(_) => running.adverts_sent += 1,
                        Err(err) => log::warn!("instance {name}: {err}"),
                    }
                }
            }
            Action::BecomeMaster { cause, accept } => {
                self.become_master(id, cause, accept).await;
            }
            Action::SendGratuitous { .. } => self.send_gratuitous(id),
            Action::BecomeBackup { cause, traffic } => {
                let priority = self.instances[id].vrrp.priority();
                self.notifier.state_changed(
                    NotifyKind::Instance,
                    &name,
                    NotifyState::Backup,
                    priority,
                );
                let running = &mut self.instances[id];
                running.entered_state = Instant::now();
                if running.resumed && cause == Cause::Startup {
                    // Hitless restart: whatever the previous run left in VIPS (and on the
                    // interface) keeps serving until an advert or the timer decides.
                    log::info!(
                        "instance {name}: -> BACKUP ({cause}); VIPs left as the previous run left them"
                    );
                    return;
                }
                running.resumed = false;
                log::info!("instance {name}: -> BACKUP ({cause})");
                self.step_down(id, traffic);
            }
            Action::ForwardTo { mac } => {
                let (ifindex, our_mac, vrid) = {
                    let r = &self.instances[id];
                    (r.iface_index, r.iface_mac, r.spec.vrid.0)
                };
                self.set_vips(
                    id,
                    Ownership::Forward {
                        vrid,
                        ifindex,
                        dst_mac: mac.0,
                        src_mac: our_mac.0,
                    },
                );
                log::info!("instance {name}: forwarding VIP traffic on-wire to {mac}");
            }
            Action::LowerPriorityHeard { src, priority } => {
                self.lower_priority_heard(id, &name, src, priority);
            }
            Action::EnterFault { cause } | Action::EnterInitialize { cause } => {
                let running = &mut self.instances[id];
                running.entered_state = Instant::now();
                running.resumed = false;
                running.forwarding_until = None;
                running.effects.silence();
                let vrid = running.spec.vrid.0;
                let state = running.vrrp.state();
                let priority = running.vrrp.priority();
                log::info!("instance {name}: -> {state:?} ({cause})");
                self.set_vips(id, Ownership::Drop { vrid });
                self.queue_remove_routes(id);
                self.queue_remove_addresses(id);
                let notified = if state == StateKind::Fault {
                    NotifyState::Fault
                } else {
                    NotifyState::Stop
                };
                self.notifier
                    .state_changed(NotifyKind::Instance, &name, notified, priority);
            }
        }
    }
}
