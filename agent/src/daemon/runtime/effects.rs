//! The side effects of a transition: the `VIPS` flip, the VIP addresses, the instance's
//! `virtual_routes` and `virtual_rules`, gratuitous ARP / unsolicited NA.
//!
//! The flip is one map update, done on the loop. Everything that leaves the process through
//! the kernel's other doors (netlink for the addresses, a packet socket for the
//! announcements) goes through the instance's [`Effects`]: a queue drained by a task of the
//! instance's own, so the effects take place in the order they were decided, whatever each
//! one costs. A removal decided before a re-add lands before it; an announcement decided
//! after an add goes out once the address is there; and nothing on that queue delays the
//! loop, which keeps sending adverts and handling timers, save the one bounded wait below.

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

use crate::{
    config::InstanceSpec,
    dataplane::Ownership,
    io::{
        garp::{self, GarpSchedule, GarpSocket},
        netlink::{IfAddr, Netlink},
    },
    notify::{NotifyKind, NotifyState},
    vrrp::{BackupTraffic, Cause},
    wire::arp::GarpForm,
};

use super::{
    Daemon, InstanceId,
    routes::{self, Entry, RouteBook},
};

impl Daemon {
    /// The flip: `VIPS` first (traffic is accepted from that instant), then the addresses,
    /// then (as the next action) the announcements.
    pub(super) async fn become_master(&mut self, id: InstanceId, cause: Cause, accept: bool) {
        let name = self.instances[id].spec.name.clone();
        let started = Instant::now();
        let running = &mut self.instances[id];
        running.entered_state = started;
        running.resumed = false;
        running.forwarding_until = None;
        running.master = Some((
            running.vrrp.config().primary_addr,
            running.vrrp.priority().0,
        ));
        let vrid = running.spec.vrid.0;
        // RFC 5798 §6.4.3: a non-owner master in non-accept mode must not accept
        // packets addressed to the VIPs; the owner always does.
        let ownership = if accept || running.spec.priority.0 == 255 {
            Ownership::Local { vrid }
        } else {
            Ownership::Drop { vrid }
        };
        self.set_vips(id, ownership);
        let flip = started.elapsed();
        self.metrics.observe_flip(flip);
        log::info!(
            "instance {name}: -> MASTER ({cause}); VIPS flipped in {} µs",
            flip.as_micros()
        );
        // Awaited, not spawned: the first advert (next action) makes the old master
        // step down and forward to us, so the addresses must be in place by then.
        self.add_addresses(id).await;
        // Queued, not awaited: they follow the addresses (a route's `src` may be a VIP),
        // and nothing about the election waits for them.
        self.queue_add_routes(id);
        // After the addresses, as keepalived: a notify script may rely on them. Starting it
        // never waits for it.
        let priority = self.instances[id].vrrp.priority();
        self.notifier
            .state_changed(NotifyKind::Instance, &name, NotifyState::Master, priority);
    }

    /// Leaves master (or a stale resumed state) for backup: forward to the new master for the
    /// forward window when its MAC is known, drop otherwise; withdraw the addresses.
    pub(super) fn step_down(&mut self, id: InstanceId, traffic: BackupTraffic) {
        let running = &mut self.instances[id];
        running.effects.silence();
        let vrid = running.spec.vrid.0;
        let window = running.spec.forward_window;
        let ownership = match traffic {
            BackupTraffic::Forward { mac } if mac.0 != [0; 6] && !window.is_zero() => {
                running.forwarding_until = Some((Instant::now() + window, mac));
                Ownership::Forward {
                    vrid,
                    ifindex: running.iface_index,
                    dst_mac: mac.0,
                    src_mac: running.iface_mac.0,
                }
            }
            _ => {
                running.forwarding_until = None;
                Ownership::Drop { vrid }
            }
        };
        self.set_vips(id, ownership);
        self.queue_remove_routes(id);
        self.queue_remove_addresses(id);
    }

    /// One `VIPS` update per VIP of the instance.
    pub(super) fn set_vips(&mut self, id: InstanceId, ownership: Ownership) {
        let running = &self.instances[id];
        let Some(plane) = self.planes.get_mut(&running.spec.interface) else {
            return;
        };
        for vip in &running.spec.virtual_ips {
            if let Err(err) = plane.set_vip(vip.addr(), ownership) {
                log::error!("instance {}: {err}", running.spec.name);
            }
        }
    }

    /// Adds the instance's VIPs to its interface, after whatever its queue still holds (a
    /// removal decided earlier lands first), and waits until they are in place, at most
    /// [`ADD_WAIT_LIMIT`]: the first advert, sent next, makes the old master forward here.
    pub(super) async fn add_addresses(&self, id: InstanceId) {
        let running = &self.instances[id];
        let (done, added) = oneshot::channel();
        running.effects.push(Effect::AddAddresses {
            addrs: if_addrs(&running.spec),
            done,
        });
        match tokio::time::timeout(ADD_WAIT_LIMIT, added).await {
            Ok(Ok(took)) => log::info!(
                "instance {}: addresses added in {} µs",
                running.spec.name,
                took.as_micros()
            ),
            Ok(Err(_)) => {}
            Err(_) => log::warn!(
                "instance {}: the addresses are not in place after {ADD_WAIT_LIMIT:?}; \
                 advertising anyway (they follow in order)",
                running.spec.name
            ),
        }
    }

    /// Adds the instance's `virtual_routes` and `virtual_rules`, in order with its other
    /// effects.
    pub(super) fn queue_add_routes(&self, id: InstanceId) {
        let running = &self.instances[id];
        let entries = routes::instance_entries(&running.spec);
        if !entries.is_empty() {
            running.effects.push(Effect::AddRoutes { entries });
        }
    }

    /// Removes the instance's `virtual_routes` and `virtual_rules` (before its addresses:
    /// the reverse of adding).
    pub(super) fn queue_remove_routes(&self, id: InstanceId) {
        let running = &self.instances[id];
        let entries = routes::instance_entries(&running.spec);
        if !entries.is_empty() {
            running.effects.push(Effect::RemoveRoutes { entries });
        }
    }

    /// Removes the instance's VIPs from its interface, in order with its other effects.
    pub(super) fn queue_remove_addresses(&self, id: InstanceId) {
        let running = &self.instances[id];
        running.effects.push(Effect::RemoveAddresses {
            addrs: if_addrs(&running.spec),
        });
    }

    /// Gratuitous ARP / unsolicited NA for the VIPs, on the instance's `garp` schedule,
    /// replacing any schedule still running.
    pub(super) fn send_gratuitous(&mut self, id: InstanceId) {
        let running = &self.instances[id];
        let addrs: Vec<IpAddr> = running
            .spec
            .virtual_ips
            .iter()
            .map(ipnet::IpNet::addr)
            .collect();
        // RFC 9568 §6.4.2: a virtual router's NA sets the Router flag.
        let frames =
            match garp::announcement_frames(running.iface_mac, &addrs, GarpForm::Request, true) {
                Ok(frames) => frames,
                Err(err) => {
                    log::error!("instance {}: {err}", running.spec.name);
                    return;
                }
            };
        let g = running.spec.garp;
        let schedule = GarpSchedule {
            repeat: u32::from(g.repeat),
            interval: g.interval,
            delay: (!g.delay.is_zero()).then_some(g.delay),
            refresh: (!g.refresh.is_zero()).then_some(g.refresh),
            refresh_repeat: u32::from(g.refresh_repeat),
        };
        running.effects.push(Effect::Announce {
            ifindex: running.iface_index,
            frames,
            schedule,
        });
    }
}

/// How long becoming master waits for its addresses before the first advert. Adding an
/// address is a netlink round trip (tens of µs); the bound only keeps a wedged netlink from
/// holding up the election.
const ADD_WAIT_LIMIT: Duration = Duration::from_millis(100);

/// The VIPs of `spec` as interface addresses.
fn if_addrs(spec: &InstanceSpec) -> Vec<IfAddr> {
    spec.virtual_ips
        .iter()
        .map(|net| IfAddr {
            addr: net.addr(),
            prefix_len: net.prefix_len(),
        })
        .collect()
}

/// One side effect, as the loop decided it.
enum Effect {
    /// Add these addresses; say how long it took once they are in place.
    AddAddresses {
        addrs: Vec<IfAddr>,
        done: oneshot::Sender<Duration>,
    },
    RemoveAddresses {
        addrs: Vec<IfAddr>,
    },
    /// Add (or replace) these routes and rules.
    AddRoutes {
        entries: Vec<Entry>,
    },
    RemoveRoutes {
        entries: Vec<Entry>,
    },
    /// Start announcing (the previous schedule, if any, stops).
    Announce {
        ifindex: u32,
        frames: Vec<Vec<u8>>,
        schedule: GarpSchedule,
    },
    /// Stop announcing.
    Silence,
    /// Answer once everything queued before has taken effect.
    Flush {
        done: oneshot::Sender<()>,
    },
}

/// An instance's side-effect queue and the task that drains it. Dropping it lets the task
/// finish what is queued (removals included), then stop its announcements and end.
pub(super) struct Effects {
    queue: mpsc::UnboundedSender<Effect>,
    /// How the instance's routes and rules were last written.
    routes: RouteBook,
}

impl Effects {
    /// The queue of instance `name` on `iface`, with its task. The routes it holds are
    /// written again whenever `link_ups` moves.
    pub(super) fn spawn(
        name: String,
        iface: String,
        netlink: Arc<Netlink>,
        link_ups: watch::Receiver<u64>,
    ) -> Self {
        let (queue, effects) = mpsc::unbounded_channel();
        let routes = RouteBook::default();
        tokio::spawn(
            Worker {
                name,
                iface,
                netlink,
                announcer: None,
                routes: routes.clone(),
                held: Vec::new(),
            }
            .run(effects, link_ups),
        );
        Self { queue, routes }
    }

    /// How the instance's routes and rules were last written.
    pub(super) fn routes(&self) -> &RouteBook {
        &self.routes
    }

    /// Queues `entries`' removal (a reload dropped them from a running instance).
    pub(super) fn remove_routes(&self, entries: Vec<Entry>) {
        if !entries.is_empty() {
            self.push(Effect::RemoveRoutes { entries });
        }
    }

    fn push(&self, effect: Effect) {
        // The task ends only once this sender is gone.
        let _ = self.queue.send(effect);
    }

    /// Stops the announcements, in order with the other effects.
    pub(super) fn silence(&self) {
        self.push(Effect::Silence);
    }

    /// Waits until everything queued so far has taken effect.
    pub(super) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        self.push(Effect::Flush { done });
        let _ = flushed.await;
    }
}

/// The task behind an [`Effects`]: one effect at a time, in queue order.
struct Worker {
    name: String,
    iface: String,
    netlink: Arc<Netlink>,
    announcer: Option<JoinHandle<()>>,
    routes: RouteBook,
    /// The routes and rules added last and not removed since: what a link coming up
    /// makes it write again.
    held: Vec<Entry>,
}

impl Worker {
    async fn run(
        mut self,
        mut effects: mpsc::UnboundedReceiver<Effect>,
        mut link_ups: watch::Receiver<u64>,
    ) {
        loop {
            let effect = tokio::select! {
                // Effects first: a link coming up never reorders what was decided.
                biased;
                effect = effects.recv() => match effect {
                    Some(effect) => effect,
                    None => break,
                },
                Ok(()) = link_ups.changed() => {
                    if !self.held.is_empty() {
                        let owner = format!("instance {}", self.name);
                        routes::add_all(&self.netlink, &self.held, &self.routes, &owner).await;
                    }
                    continue;
                }
            };
            match effect {
                Effect::AddAddresses { addrs, done } => {
                    let started = Instant::now();
                    for addr in addrs {
                        if let Err(err) = self.netlink.add_address(&self.iface, addr).await {
                            log::error!("instance {}: {err}", self.name);
                        }
                    }
                    let _ = done.send(started.elapsed());
                }
                Effect::RemoveAddresses { addrs } => {
                    let started = Instant::now();
                    for addr in addrs {
                        if let Err(err) = self.netlink.remove_address(&self.iface, addr).await {
                            log::error!("instance {}: {err}", self.name);
                        }
                    }
                    log::info!(
                        "instance {}: addresses removed in {} µs",
                        self.name,
                        started.elapsed().as_micros()
                    );
                }
                Effect::AddRoutes { entries } => {
                    let owner = format!("instance {}", self.name);
                    routes::add_all(&self.netlink, &entries, &self.routes, &owner).await;
                    self.held = entries;
                }
                Effect::RemoveRoutes { entries } => {
                    let owner = format!("instance {}", self.name);
                    routes::remove_all(&self.netlink, &entries, &self.routes, &owner).await;
                    self.held.retain(|e| !entries.contains(e));
                }
                Effect::Announce {
                    ifindex,
                    frames,
                    schedule,
                } => {
                    self.silence();
                    self.announce(ifindex, frames, schedule);
                }
                Effect::Silence => self.silence(),
                Effect::Flush { done } => {
                    let _ = done.send(());
                }
            }
        }
        self.silence();
    }

    fn silence(&mut self) {
        if let Some(task) = self.announcer.take() {
            task.abort();
        }
    }

    fn announce(&mut self, ifindex: u32, frames: Vec<Vec<u8>>, schedule: GarpSchedule) {
        let socket = match GarpSocket::open(&self.iface, ifindex) {
            Ok(socket) => socket,
            Err(err) => {
                log::error!("instance {}: {err}", self.name);
                return;
            }
        };
        let name = self.name.clone();
        let task = garp::spawn_announcer(socket, frames, schedule);
        self.announcer = Some(tokio::spawn(async move {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => log::warn!("instance {name}: announcements stopped: {err}"),
                Err(err) if err.is_cancelled() => {}
                Err(err) => log::warn!("instance {name}: announcer failed: {err}"),
            }
        }));
    }
}
