//! Reload (SIGHUP, `vipflip reload`): read the new file, diff it against the running one,
//! then apply the difference: instances removed, updated in place, restarted or added.
//!
//! A reload runs in two steps so that nothing slow happens on the loop that sends adverts:
//! [`Daemon::request_reload`] reads the file and, when it brings interfaces the daemon has no
//! data plane on yet, attaches them in a blocking task (loading and verifying the XDP program
//! takes tens of milliseconds or more); [`Daemon::apply_reload`] takes the result on the loop
//! and applies the difference, which is quick. Reloads asked for meanwhile are merged into one
//! more once this one is applied.

use std::{net::IpAddr, time::Instant};

use tokio::sync::oneshot;

use crate::{
    config::{Config, InstanceSpec},
    control::Response,
    dataplane::{AttachOutcome, Dataplane, DataplaneError, XdpModeChoice},
    track::{self, Observation},
    vrrp::{Command, FaultCause, StateKind},
    wire::Family,
};

use super::{Daemon, InstanceId, routes};
use crate::daemon::InstanceError;

/// Why a reload was not applied, or applied only in part.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReloadError {
    #[error("reload refused: the daemon is stopping")]
    Stopping,
    #[error("reload refused: this daemon was not started from a configuration file")]
    NoFile,
    #[error("reload refused, the running configuration is kept:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("reloaded with errors: {0}")]
    Failed(Box<Reloaded>),
}

/// A reload under way: its configuration read, its new interfaces being attached.
#[derive(Default)]
pub(super) struct PendingReload {
    /// `vipflip reload` callers waiting for the outcome.
    replies: Vec<oneshot::Sender<Response>>,
    /// Another reload was asked for meanwhile: read the file again once this one is applied.
    again: bool,
}

/// One interface's data plane, attached (or re-opened) off the loop, or why not.
type Attached = (String, Result<(Dataplane, AttachOutcome), DataplaneError>);

/// What the blocking task hands back: the configuration to apply and the data planes it
/// attached (or re-opened from their pins) for the interfaces the daemon did not have.
pub(super) struct PreparedReload {
    /// Boxed: the loop's events stay small.
    config: Box<Config>,
    planes: Vec<Attached>,
}

impl Daemon {
    /// SIGHUP / `vipflip reload` (`reply` waits for the outcome): reads the configuration
    /// file. An invalid file changes nothing (every error is reported). Otherwise the
    /// interfaces it adds are attached off the loop, then [`Self::apply_reload`] applies the
    /// difference.
    pub(super) async fn request_reload(&mut self, reply: Option<oneshot::Sender<Response>>) {
        if let Some(pending) = &mut self.reloading {
            pending.again = true;
            pending.replies.extend(reply);
            return;
        }
        self.reloading = Some(PendingReload {
            replies: reply.into_iter().collect(),
            again: false,
        });
        let new = match self.read_config() {
            Ok(new) => new,
            Err(err) => {
                self.finish_reload(Err(err)).await;
                return;
            }
        };
        let mut missing: Vec<String> = new
            .instances
            .iter()
            .map(|spec| spec.interface.as_str())
            .chain(new.service_interfaces())
            .filter(|iface| !self.planes.contains_key(*iface))
            .map(str::to_owned)
            .collect();
        missing.sort();
        missing.dedup();
        let prepared = self.prepared_tx.clone();
        if missing.is_empty() {
            let _ = prepared.try_send(PreparedReload {
                config: Box::new(new),
                planes: Vec::new(),
            });
            return;
        }
        let (pin_dir, mode) = (self.pin_dir.clone(), self.xdp_mode);
        tokio::task::spawn_blocking(move || {
            let planes = attach_all(&missing, &pin_dir, mode);
            let _ = prepared.blocking_send(PreparedReload {
                config: Box::new(new),
                planes,
            });
        });
    }

    /// Applies a reload whose interfaces are attached (see [`Self::request_reload`]), answers
    /// its callers, and starts the next one if more were asked for.
    pub(super) async fn apply_reload(&mut self, prepared: PreparedReload) {
        for (iface, attached) in prepared.planes {
            match attached {
                Ok((plane, outcome)) => {
                    let mut reopened = std::mem::take(&mut self.reopened_by_reload);
                    self.adopt_plane(iface, plane, outcome, &mut reopened);
                    self.reopened_by_reload = reopened;
                }
                // Its instances report the failure when they start (`plane_for`).
                Err(err) => log::error!("{iface}: attaching XDP: {err}"),
            }
        }
        // A stop that began meanwhile wins: the planes just attached are detached with the rest.
        let outcome = if self.stopping.is_some() {
            Err(ReloadError::Stopping)
        } else {
            self.reload_with(*prepared.config).await
        };
        self.finish_reload(outcome).await;
    }

    /// Answers the callers of the reload under way with `outcome`, then starts the next one if
    /// another was asked for meanwhile.
    async fn finish_reload(&mut self, outcome: Result<Reloaded, ReloadError>) {
        let pending = self.reloading.take().unwrap_or_default();
        let response = match outcome {
            Ok(report) => {
                let message = report.to_string();
                log::info!("reloaded: {message}");
                Response::Ok { message }
            }
            Err(err) => {
                log::error!("{err}");
                Response::Error {
                    message: err.to_string(),
                }
            }
        };
        for reply in pending.replies {
            let _ = reply.send(response.clone());
        }
        if pending.again {
            Box::pin(self.request_reload(None)).await;
        }
    }

    /// The configuration file, read and validated; its warnings logged.
    fn read_config(&self) -> Result<Config, ReloadError> {
        if self.stopping.is_some() {
            return Err(ReloadError::Stopping);
        }
        let Some(path) = self.config_path.clone() else {
            return Err(ReloadError::NoFile);
        };
        let (new, warnings) = Config::load(&path).map_err(|diagnostics| {
            ReloadError::Invalid(diagnostics.iter().map(ToString::to_string).collect())
        })?;
        for warning in warnings {
            log::warn!("{warning}");
        }
        log::info!("reloading {}", path.display());
        Ok(new)
    }

    /// Applies `new`: only the difference. Unchanged instances are not touched; removed ones
    /// resign (a master hands off first, without a lost packet); changed ones are updated in
    /// place when only priority, tracking, notify, GARP, the forward window or the virtual
    /// routes and rules changed, and restarted otherwise; new ones start. The statics are
    /// brought in line with the new file.
    async fn reload_with(&mut self, new: Config) -> Result<Reloaded, ReloadError> {
        let changed_globals = changed_globals(&self.config.global, &new.global);
        if !changed_globals.is_empty() {
            log::warn!(
                "reload: [global] {} changed; that takes effect at the next restart",
                changed_globals.join(", ")
            );
        }
        if (self.config.routing.table, self.config.routing.protocol)
            != (new.routing.table, new.routing.protocol)
        {
            log::warn!(
                "reload: [routing] table and protocol take effect at the next restart; routes stay in table {}",
                self.config.routing.table
            );
        }
        let mut report = Reloaded::default();
        // Removed, or changed beyond what can be updated in place: out first, so a restarted
        // instance's VIPs and VRID filter are free for its new self.
        for id in self.instances.ids() {
            let running = &self.instances[id];
            if running.retiring {
                continue;
            }
            let name = running.spec.name.clone();
            match new.instances.iter().find(|s| s.name == name) {
                None => {
                    report.removed.push(name);
                    self.retire(id).await;
                }
                // Unchanged, unless it could not open its VRRP socket (interface or address
                // missing at its start): a reload is the way to start it once they exist.
                Some(spec) if *spec == running.spec && running.socket.is_some() => {
                    report.unchanged += 1;
                }
                Some(spec) if updatable_in_place(&running.spec, spec) => {
                    self.update_in_place(id, spec.clone()).await;
                    report.updated.push(name);
                }
                Some(_) => {
                    report.restarted.push(name);
                    self.remove_instance(id).await;
                }
            }
        }
        let retiring: Vec<String> = self
            .instances
            .iter()
            .filter(|r| r.retiring)
            .map(|r| r.spec.name.clone())
            .collect();
        self.notifier.set_scripts(&new, &retiring);
        // Compared as sets of watched objects: adding an instance on an interface already
        // watched, or moving a weight, restarts nothing (a restarted script driver starts its
        // rise/fall count afresh).
        // A script that script_security disabled at run time has no driver any more; this
        // file passed the same check, so it runs again (keepalived re-checks its scripts
        // at every reload).
        let disabled_scripts = self
            .observed
            .iter()
            .any(|o| matches!(o, Observation::ScriptDisabled { .. }));
        let respawn =
            disabled_scripts || track::Watched::of(&self.config) != track::Watched::of(&new);
        if self.config.statics != new.statics {
            self.statics.hold(&new.statics);
        }
        let old = std::mem::replace(&mut self.config, new);
        if respawn {
            match track::spawn_trackers(&self.config) {
                Ok((observations, trackers)) => {
                    self.observations = observations;
                    self.trackers = trackers;
                }
                Err(err) => log::error!("reload: restarting the trackers: {err}"),
            }
        }
        self.start_new_instances(&mut report).await;
        // The gates first: configuring the balancer hands its verdicts to them.
        self.reconfigure_announcements();
        self.configure_lb().await;
        drop(old);
        if report.failed.is_empty() {
            Ok(report)
        } else {
            Err(ReloadError::Failed(Box::new(report)))
        }
    }

    /// A reload changed only what can change under a running instance: the new priority and
    /// trackers go through [`TrackState::reconfigure`], the rest is read at its next use.
    pub(super) async fn update_in_place(&mut self, id: InstanceId, spec: InstanceSpec) {
        let running = &mut self.instances[id];
        let before: Vec<track::Tracked> = running.track.trackers().cloned().collect();
        let commands = running.track.reconfigure(spec.track_config());
        for gone in before
            .iter()
            .filter(|t| !running.track.trackers().any(|n| n == *t))
        {
            self.metrics
                .forget_tracker(&running.spec.name, &gone.to_string());
        }
        let old_routes = routes::instance_entries(&running.spec);
        let new_routes = routes::instance_entries(&spec);
        running.spec = spec;
        if old_routes != new_routes {
            // Those the new file drops go; a master (re)writes the new set, which replaces
            // in place the routes whose gateway or device changed.
            let gone = old_routes
                .into_iter()
                .filter(|e| !new_routes.contains(e))
                .collect();
            running.effects.remove_routes(gone);
            if running.vrrp.state() == StateKind::Master {
                self.queue_add_routes(id);
            }
        }
        self.apply_track_commands(id, commands);
        self.dispatch(id).await;
    }

    /// After a reload: starts every instance of the new file that is not running (new, or
    /// restarted because it changed), and points every instance at its sync group.
    pub(super) async fn start_new_instances(&mut self, report: &mut Reloaded) {
        // An instance still handing off after an earlier reload removed it, which this file
        // brings back or whose VRID or VIPs a new instance takes: it goes now (two instances
        // sharing a VRID share its adverts; sharing a VIP, the retiring one's end would
        // withdraw it from under the new one).
        while let Some(id) = self
            .instances
            .find(|r| r.retiring && self.config.instances.iter().any(|s| overlaps(&r.spec, s)))
        {
            self.remove_instance(id).await;
        }
        // Interfaces this reload re-opened from their pins: their instances resume.
        let mut reopened = std::mem::take(&mut self.reopened_by_reload);
        let mut started = Vec::new();
        for spec in self.config.instances.clone() {
            if self
                .instances
                .iter()
                .any(|r| r.spec.name == spec.name && !r.retiring)
            {
                continue;
            }
            if !report.restarted.contains(&spec.name) {
                report.added.push(spec.name.clone());
            }
            match self.add_instance(spec.clone(), &mut reopened).await {
                Ok(id) => started.push(id),
                Err(err) => {
                    log::error!("reload: {err}");
                    report.failed.push(err);
                }
            }
        }
        self.regroup();
        for id in started {
            if let Err(err) = self.start_instance(id).await {
                log::error!("reload: {err}");
                report.failed.push(err);
            }
        }
        self.settle_groups().await;
    }

    /// After group membership changed (a reload): an instance no longer in a group drops a
    /// fault it held only for its old group, and every group reconciles its members' faults
    /// (a member holding its own fault may have gone).
    pub(super) async fn settle_groups(&mut self) {
        for id in self.instances.ids() {
            let running = &mut self.instances[id];
            if running.group.is_none() && running.vrrp.has_fault(FaultCause::SyncGroup) {
                let _ = running
                    .vrrp
                    .handle_command(Instant::now(), Command::Unfault(FaultCause::SyncGroup));
                self.dispatch(id).await;
            }
        }
        for group in 0..self.groups.len() {
            if let Some(id) = self.instances.find(|r| r.group == Some(group)) {
                self.dispatch(id).await;
            }
        }
    }

    /// A reload removed the instance: a master hands off and stays (retiring) until the new
    /// master is heard and the forward window is over; anything else goes now.
    pub(super) async fn retire(&mut self, id: InstanceId) {
        let running = &mut self.instances[id];
        if running.vrrp.state() == StateKind::Master
            && running
                .vrrp
                .handle_command(Instant::now(), Command::GracefulHandoff)
                .is_ok()
        {
            log::info!(
                "instance {}: removed from the configuration; handing off first",
                running.spec.name
            );
            running.retiring = true;
            self.dispatch(id).await;
            return;
        }
        self.remove_instance(id).await;
    }

    /// Removes retiring instances whose handoff and forward window are over.
    pub(super) async fn reap_retired(&mut self) {
        while let Some(id) = self
            .instances
            .find(|r| r.retiring && !r.vrrp.is_handing_off() && r.forwarding_until.is_none())
        {
            self.remove_instance(id).await;
        }
    }

    /// Stops the instance (a master resigns with priority 0, RFC 5798 §6.4.3), takes its
    /// VIPs out of the data plane and off the interface, and forgets it.
    pub(super) async fn remove_instance(&mut self, id: InstanceId) {
        let _ = self.instances[id]
            .vrrp
            .handle_command(Instant::now(), Command::Shutdown);
        // Out of its group first: the group must not react to this member's shutdown.
        self.instances[id].group = None;
        self.dispatch(id).await;
        // Its effects queue finishes what it holds (the removal of its addresses), then
        // stops its announcements, once `running` is dropped at the end.
        let Some(running) = self.instances.remove(id) else {
            return;
        };
        let still_used = |vip: IpAddr| {
            self.instances.iter().any(|r| {
                r.spec.interface == running.spec.interface
                    && r.spec.virtual_ips.iter().any(|n| n.addr() == vip)
            })
        };
        let vrid_used = self.instances.iter().any(|r| {
            r.spec.interface == running.spec.interface
                && r.spec.vrid == running.spec.vrid
                && r.spec.family() == running.spec.family()
        });
        if let Some(plane) = self.planes.get_mut(&running.spec.interface) {
            for vip in running.spec.virtual_ips.iter().map(ipnet::IpNet::addr) {
                if !still_used(vip)
                    && let Err(err) = plane.remove_vip(vip)
                {
                    log::warn!("instance {}: {err}", running.spec.name);
                }
            }
            if !vrid_used
                && let Err(err) = plane.remove_vrid(family_tag(&running.spec), running.spec.vrid.0)
            {
                log::warn!("instance {}: {err}", running.spec.name);
            }
        }
        self.metrics.forget_instance(&running.spec.name);
        log::info!("instance {}: removed", running.spec.name);
    }
}

/// Attaches (or re-opens from their pins) the data planes of `ifaces`: the blocking part of a
/// reload, run off the loop. An interface that does not exist is left out quietly: its
/// instances say so when they start.
fn attach_all(ifaces: &[String], pin_dir: &std::path::Path, mode: XdpModeChoice) -> Vec<Attached> {
    ifaces
        .iter()
        .map(|iface| (iface.clone(), Dataplane::attach(iface, pin_dir, mode)))
        .filter(|(_, attached)| !matches!(attached, Err(DataplaneError::NoSuchInterface { .. })))
        .collect()
}

/// Whether two instances would claim the same adverts or the same VIP: one name, one VRID
/// of one family on one interface, or a shared virtual IP.
pub(super) fn overlaps(a: &InstanceSpec, b: &InstanceSpec) -> bool {
    a.name == b.name
        || (a.interface == b.interface && a.vrid == b.vrid && a.family() == b.family())
        || a.virtual_ips
            .iter()
            .any(|v| b.virtual_ips.iter().any(|w| v.addr() == w.addr()))
}

/// Keeps the latest observation of each tracked object in `observed`.
pub(super) fn remember(observed: &mut Vec<Observation>, observation: &Observation) {
    let same_object = |o: &Observation| match (o, observation) {
        (Observation::Link { name: a, .. }, Observation::Link { name: b, .. })
        | (
            Observation::Script { name: a, .. } | Observation::ScriptDisabled { name: a },
            Observation::Script { name: b, .. } | Observation::ScriptDisabled { name: b },
        )
        | (Observation::Quorum { service: a, .. }, Observation::Quorum { service: b, .. }) => {
            a == b
        }
        (Observation::File { path: a, .. }, Observation::File { path: b, .. }) => a == b,
        _ => false,
    };
    match observed.iter_mut().find(|o| same_object(o)) {
        Some(slot) => slot.clone_from(observation),
        None => observed.push(observation.clone()),
    }
}

/// The data plane's family tag of an instance's adverts.
pub(super) fn family_tag(spec: &InstanceSpec) -> u8 {
    if spec.family() == Family::Ipv4 {
        vipflip_common::FAMILY_IPV4
    } else {
        vipflip_common::FAMILY_IPV6
    }
}

/// Whether a reload can move `old` to `new` without restarting it: they differ only in
/// what tracking, notify and the I/O shell read at each use (routes and rules included:
/// `update_in_place` rewrites them). The state machine's own
/// configuration (VRID, interval, VIPs, peers, preempt…) needs a new instance, as does
/// becoming or ceasing to be the address owner.
pub(super) fn updatable_in_place(old: &InstanceSpec, new: &InstanceSpec) -> bool {
    const OWNER: u8 = 255;
    if (old.priority.0 == OWNER) != (new.priority.0 == OWNER) {
        return false;
    }
    let mut rest = new.clone();
    rest.priority = old.priority;
    rest.track_interfaces.clone_from(&old.track_interfaces);
    rest.track_scripts.clone_from(&old.track_scripts);
    rest.track_files.clone_from(&old.track_files);
    rest.track_quorums.clone_from(&old.track_quorums);
    rest.notify = old.notify.clone();
    rest.garp = old.garp;
    rest.forward_window = old.forward_window;
    rest.virtual_routes.clone_from(&old.virtual_routes);
    rest.virtual_rules.clone_from(&old.virtual_rules);
    rest == *old
}

/// The `[global]` keys that differ: a reload does not apply them.
pub(super) fn changed_globals(
    old: &crate::config::Global,
    new: &crate::config::Global,
) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |key: &'static str, same: bool| {
        if !same {
            changed.push(key);
        }
    };
    check("router_id", old.router_id == new.router_id);
    check("pin_dir", old.pin_dir == new.pin_dir);
    check("control_socket", old.control_socket == new.control_socket);
    check("xdp_mode", old.xdp_mode == new.xdp_mode);
    check("metrics_listen", old.metrics_listen == new.metrics_listen);
    check("notify_fifo", old.notify_fifo == new.notify_fifo);
    if changed.is_empty() && old != new {
        changed.push("other settings");
    }
    changed
}

/// What a reload did, for its log line and the `vipflip reload` answer.
#[derive(Debug, Default)]
pub(super) struct Reloaded {
    unchanged: usize,
    added: Vec<String>,
    removed: Vec<String>,
    updated: Vec<String>,
    restarted: Vec<String>,
    /// Instances of the new file that could not be started, with why.
    failed: Vec<InstanceError>,
}

impl std::fmt::Display for Reloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} unchanged", self.unchanged)?;
        for (what, names) in [
            ("added", &self.added),
            ("removed", &self.removed),
            ("updated in place", &self.updated),
            ("restarted", &self.restarted),
        ] {
            if !names.is_empty() {
                write!(f, "; {what}: {}", names.join(", "))?;
            }
        }
        for (n, failed) in self.failed.iter().enumerate() {
            let what = if n == 0 { "; failed to start: " } else { ", " };
            write!(f, "{what}{failed}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::cause_label;
    use super::{changed_globals, overlaps, remember, updatable_in_place};
    use crate::config::Config;
    use crate::track::Observation;
    use crate::vrrp::{Cause, FaultCause};

    fn config(extra_instance: &str, extra_global: &str) -> Config {
        let text = format!(
            r#"
            [global]
            router_id = "r1"
            {extra_global}
            [[instance]]
            name = "VI_1"
            interface = "lo"
            vrid = 51
            priority = 100
            virtual_ips = ["192.0.2.100/24"]
            {extra_instance}
            "#
        );
        Config::parse(&text, "test.toml").expect("config").0
    }

    #[test]
    fn cause_labels_are_snake_case() {
        assert_eq!(
            cause_label(Cause::HigherPriorityAdvert),
            "higher_priority_advert"
        );
        assert_eq!(
            cause_label(Cause::Fault(FaultCause::LinkDown)),
            "fault_link_down"
        );
        assert_eq!(
            cause_label(Cause::Fault(FaultCause::Tracked(3))),
            "fault_tracked_3"
        );
    }

    #[test]
    fn priority_tracking_notify_and_routes_update_in_place_the_rest_restarts() {
        let old = &config("", "").instances[0];
        let mut raised = old.clone();
        raised.priority = crate::wire::Priority(150);
        assert!(updatable_in_place(old, &raised));
        let tracked = &config(
            r#"track_interfaces = [{ name = "lo", weight = -10 }]
            notify = { master = "/bin/true" }
            forward_window = "1s""#,
            "",
        )
        .instances[0];
        assert!(updatable_in_place(old, tracked));
        let routed = &config(
            r#"virtual_routes = [{ to = "198.51.100.0/24", via = "192.0.2.1" }]
            virtual_rules = [{ from = "192.0.2.100", table = 100 }]"#,
            "",
        )
        .instances[0];
        assert!(
            updatable_in_place(old, routed),
            "routes are rewritten under a running instance"
        );
        let interval = &config(r#"advert_interval = "200ms""#, "").instances[0];
        assert!(!updatable_in_place(old, interval));
        let mut owner = old.clone();
        owner.priority = crate::wire::Priority(255);
        assert!(
            !updatable_in_place(old, &owner),
            "becoming the owner restarts"
        );
    }

    #[test]
    fn remember_keeps_the_last_observation_of_each_object() {
        let mut observed = Vec::new();
        let link = |name: &str, up| Observation::Link {
            name: name.into(),
            up,
        };
        remember(&mut observed, &link("eth0", true));
        remember(&mut observed, &link("eth1", true));
        remember(&mut observed, &link("eth0", false));
        remember(
            &mut observed,
            &Observation::Script {
                name: "eth0".into(),
                ok: true,
            },
        );
        assert_eq!(
            observed,
            [
                link("eth0", false),
                link("eth1", true),
                Observation::Script {
                    name: "eth0".into(),
                    ok: true
                }
            ]
        );
    }

    #[test]
    fn overlapping_instances_share_a_name_a_vrid_or_a_vip() {
        let a = config("", "").instances[0].clone();
        let mut b = a.clone();
        b.name = "VI_2".into();
        assert!(overlaps(&a, &b), "same VRID and VIP");
        b.vrid = crate::wire::VrId(52);
        assert!(overlaps(&a, &b), "same VIP");
        b.virtual_ips = vec!["192.0.2.101/24".parse().unwrap()];
        assert!(!overlaps(&a, &b));
        b.name = "VI_1".into();
        assert!(overlaps(&a, &b), "same name");
    }

    #[test]
    fn changed_globals_are_named() {
        let old = config("", "");
        let new = config("", r#"metrics_listen = "127.0.0.1:9100""#);
        assert_eq!(
            changed_globals(&old.global, &new.global),
            ["metrics_listen"]
        );
        assert!(changed_globals(&old.global, &old.global).is_empty());
    }

    #[test]
    fn a_partial_reload_says_what_it_did_and_why_each_instance_failed() {
        use crate::daemon::InstanceErrorCause;
        use crate::dataplane::DataplaneError;
        let missing = |iface: &str| InstanceErrorCause::Attach {
            iface: iface.into(),
            source: DataplaneError::NoSuchInterface {
                iface: iface.into(),
            },
        };
        let report = super::Reloaded {
            unchanged: 2,
            added: vec!["VI_3".into()],
            failed: vec![missing("eth8").of("VI_4"), missing("eth9").of("VI_5")],
            ..super::Reloaded::default()
        };
        assert_eq!(
            super::ReloadError::Failed(Box::new(report)).to_string(),
            "reloaded with errors: 2 unchanged; added: VI_3; failed to start: instance VI_4: \
             attaching XDP to eth8: interface \"eth8\" does not exist, instance VI_5: attaching \
             XDP to eth9: interface \"eth9\" does not exist"
        );
    }
}
