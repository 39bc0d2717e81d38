//! Routes, rules and addresses written from the configuration: an instance's
//! `virtual_routes` and `virtual_rules` (through its `Effects` queue, so they follow its
//! addresses in the order decided) and the `static_*` tables, written by a task of their own
//! at start, brought in line on reload and removed at a clean stop.
//!
//! Adding goes addresses, routes, rules (a route may use an address as its `src`; a rule
//! sends packets to a table, which should hold its routes first); removing goes the other
//! way. Each entry's last outcome is kept in a [`RouteBook`] for `vipflip status`.
//!
//! The kernel flushes the routes through an interface that goes down (and a static address's
//! interface may appear late), so whoever holds entries writes them again each time an
//! interface comes up: [`watch_link_ups`] counts those moments for every holder.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::{mpsc, oneshot, watch};

use crate::{
    config::{InstanceSpec, RouteSpec, RuleSpec, StaticAddressSpec, Statics},
    control::RouteStatus,
    io::netlink::{LinkUp, Netlink, NetlinkError},
};

/// A counter that moves each time an interface comes up (or the kernel dropped link events),
/// for the holders of routes to write theirs again. If the subscription fails, it never
/// moves (and the failure is logged): routes are then written on transitions only.
async fn watch_link_ups() -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0_u64);
    match Netlink::subscribe_link_ups().await {
        Ok(mut ups) => {
            tokio::spawn(async move {
                while let Some(up) = ups.next().await {
                    if let LinkUp::Named(name) = &up {
                        log::debug!("{name} came up: rewriting the routes that go through it");
                    }
                    if tx.is_closed() {
                        break;
                    }
                    tx.send_modify(|n: &mut u64| *n = n.wrapping_add(1));
                }
            });
        }
        Err(err) => log::error!(
            "watching links for the configured routes: {err}; a route the kernel flushes with its interface is written again only at the next transition or reload"
        ),
    }
    rx
}

/// One thing the configuration asks the kernel to hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Entry {
    Address(StaticAddressSpec),
    Route(RouteSpec),
    Rule(RuleSpec),
}

impl Entry {
    /// `route 198.51.100.0/24 via 192.0.2.1`, `rule from all lookup 100`, `address …`.
    fn describe(&self) -> String {
        match self {
            Self::Address(a) => format!("address {a}"),
            Self::Route(r) => format!("route {r}"),
            Self::Rule(r) => format!("rule {r}"),
        }
    }

    /// Adding order: addresses, routes, rules.
    fn rank(&self) -> u8 {
        match self {
            Self::Address(_) => 0,
            Self::Route(_) => 1,
            Self::Rule(_) => 2,
        }
    }

    async fn add(&self, netlink: &Netlink) -> Result<(), NetlinkError> {
        match self {
            Self::Address(a) => netlink.add_static_address(a).await,
            Self::Route(r) => netlink.add_configured_route(r).await,
            Self::Rule(r) => netlink.add_rule(r).await,
        }
    }

    async fn remove(&self, netlink: &Netlink) -> Result<(), NetlinkError> {
        match self {
            Self::Address(a) => netlink.remove_static_address(a).await,
            Self::Route(r) => netlink.remove_configured_route(r).await,
            Self::Rule(r) => netlink.remove_rule(r).await,
        }
    }
}

/// An instance's `virtual_routes` and `virtual_rules`, in adding order.
pub(super) fn instance_entries(spec: &InstanceSpec) -> Vec<Entry> {
    spec.virtual_routes
        .iter()
        .cloned()
        .map(Entry::Route)
        .chain(spec.virtual_rules.iter().cloned().map(Entry::Rule))
        .collect()
}

/// The statics, in adding order.
pub(super) fn static_entries(statics: &Statics) -> Vec<Entry> {
    statics
        .addresses
        .iter()
        .cloned()
        .map(Entry::Address)
        .chain(statics.routes.iter().cloned().map(Entry::Route))
        .chain(statics.rules.iter().cloned().map(Entry::Rule))
        .collect()
}

/// What the kernel was last told about each entry, and how that went.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Written {
    Present,
    Absent,
    Failed(String),
}

/// Each entry's last outcome, shared by the task that writes and the loop that reports.
#[derive(Debug, Clone, Default)]
pub(super) struct RouteBook(Arc<Mutex<HashMap<Entry, Written>>>);

impl RouteBook {
    fn record(&self, entry: &Entry, written: Written) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(entry.clone(), written);
    }

    /// The status lines of `entries` (an entry never written is `absent`).
    pub(super) fn status(&self, entries: &[Entry]) -> Vec<RouteStatus> {
        let book = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .map(|entry| {
                let (state, error) = match book.get(entry) {
                    Some(Written::Present) => ("installed", None),
                    Some(Written::Failed(why)) => ("failed", Some(why.clone())),
                    Some(Written::Absent) | None => ("absent", None),
                };
                RouteStatus {
                    entry: entry.describe(),
                    state: state.to_owned(),
                    error,
                }
            })
            .collect()
    }
}

/// Writes `entries` in adding order; a failure is logged, recorded, and does not stop the
/// others.
pub(super) async fn add_all(netlink: &Netlink, entries: &[Entry], book: &RouteBook, owner: &str) {
    let mut ordered: Vec<&Entry> = entries.iter().collect();
    ordered.sort_by_key(|e| e.rank());
    for entry in ordered {
        match entry.add(netlink).await {
            Ok(()) => book.record(entry, Written::Present),
            Err(err) => {
                log::error!("{owner}: adding {}: {err}", entry.describe());
                book.record(entry, Written::Failed(err.to_string()));
            }
        }
    }
}

/// Removes `entries` in the reverse of adding order.
pub(super) async fn remove_all(
    netlink: &Netlink,
    entries: &[Entry],
    book: &RouteBook,
    owner: &str,
) {
    let mut ordered: Vec<&Entry> = entries.iter().collect();
    ordered.sort_by_key(|e| core::cmp::Reverse(e.rank()));
    for entry in ordered {
        match entry.remove(netlink).await {
            Ok(()) => book.record(entry, Written::Absent),
            Err(err) => {
                log::error!("{owner}: removing {}: {err}", entry.describe());
                book.record(entry, Written::Failed(err.to_string()));
            }
        }
    }
}

/// What the statics' task is asked to do.
enum StaticsRequest {
    /// Hold exactly these: remove what the previous set had and this one has not, then add
    /// (again) every one of these.
    Hold(Vec<Entry>),
    /// Remove everything held (a clean stop).
    Release,
    /// Answer once everything asked before is done.
    Flush(oneshot::Sender<()>),
}

/// The statics' queue and the task that drains it, off the loop.
pub(super) struct StaticRoutes {
    queue: mpsc::UnboundedSender<StaticsRequest>,
    book: RouteBook,
    /// The entries asked for last, for status.
    entries: Vec<Entry>,
}

impl StaticRoutes {
    /// Starts watching links (see [`watch_link_ups`]) and the statics' task, and asks it to
    /// hold `statics`; it writes them again whenever a link comes up. Also returns the
    /// link-up counter, for the instances' queues.
    pub(super) async fn start(
        statics: &Statics,
        netlink: Arc<Netlink>,
    ) -> (Self, watch::Receiver<u64>) {
        let link_ups = watch_link_ups().await;
        let (queue, requests) = mpsc::unbounded_channel();
        let book = RouteBook::default();
        tokio::spawn(run_statics(
            requests,
            netlink,
            book.clone(),
            link_ups.clone(),
        ));
        let mut this = Self {
            queue,
            book,
            entries: Vec::new(),
        };
        this.hold(statics);
        (this, link_ups)
    }

    /// A reload: hold `statics` from now on.
    pub(super) fn hold(&mut self, statics: &Statics) {
        let entries = static_entries(statics);
        if entries.is_empty() && self.entries.is_empty() {
            return;
        }
        self.entries.clone_from(&entries);
        let _ = self.queue.send(StaticsRequest::Hold(entries));
    }

    /// A clean stop: remove them all.
    pub(super) fn release(&mut self) {
        self.entries.clear();
        let _ = self.queue.send(StaticsRequest::Release);
    }

    pub(super) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(StaticsRequest::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }

    pub(super) fn status(&self) -> Vec<RouteStatus> {
        self.book.status(&self.entries)
    }
}

async fn run_statics(
    mut requests: mpsc::UnboundedReceiver<StaticsRequest>,
    netlink: Arc<Netlink>,
    book: RouteBook,
    mut link_ups: watch::Receiver<u64>,
) {
    let mut held: Vec<Entry> = Vec::new();
    loop {
        let request = tokio::select! {
            // Requests first: a link coming up never reorders what was asked.
            biased;
            request = requests.recv() => match request {
                Some(request) => request,
                None => break,
            },
            Ok(()) = link_ups.changed() => {
                if !held.is_empty() {
                    add_all(&netlink, &held, &book, "static").await;
                }
                continue;
            }
        };
        match request {
            StaticsRequest::Hold(wanted) => {
                let gone: Vec<Entry> = held
                    .iter()
                    .filter(|e| !wanted.contains(e))
                    .cloned()
                    .collect();
                remove_all(&netlink, &gone, &book, "static").await;
                add_all(&netlink, &wanted, &book, "static").await;
                if !wanted.is_empty() {
                    log::info!(
                        "static: {} address(es), route(s) and rule(s) held",
                        wanted.len()
                    );
                }
                held = wanted;
            }
            StaticsRequest::Release => {
                remove_all(&netlink, &held, &book, "static").await;
                held.clear();
            }
            StaticsRequest::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
