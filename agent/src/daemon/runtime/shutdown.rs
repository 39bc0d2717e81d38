//! Stopping: SIGTERM / SIGINT hand every master off and withdraw every announced route, wait
//! out the forward windows and the routers' rerouting (no VIP packet for `drain_quiet`), then
//! remove the instances' and the static routes, rules and addresses, and detach (or leave the
//! program pinned with `--keep-dataplane`).

use std::time::{Duration, Instant};

use crate::{
    announce::Leaving,
    daemon::RunOptions,
    dataplane::Dataplane,
    vrrp::{Command, StateKind},
};

use super::Daemon;

/// How long an exiting daemon waits for notify scripts still running (STOP scripts).
const NOTIFY_AT_EXIT_LIMIT: Duration = Duration::from_secs(5);

impl Daemon {
    /// SIGTERM / SIGINT: every master hands off (priority 0, still serving until the new
    /// master is heard); the loop ends once no instance is handing off, or after a bound.
    pub(super) async fn begin_stop(&mut self) {
        if self.stopping.is_some() {
            log::warn!("second signal: leaving at once");
            self.force_exit = true;
            return;
        }
        log::info!("stopping: handing off every master instance, withdrawing every route");
        self.stopping = Some(Instant::now());
        self.withdraw_all(Leaving::Stopping);
        for id in self.instances.ids() {
            let running = &mut self.instances[id];
            if running.vrrp.state() == StateKind::Master
                && let Err(err) = running
                    .vrrp
                    .handle_command(Instant::now(), Command::GracefulHandoff)
            {
                log::info!("instance {}: {err}; resigning instead", running.spec.name);
            }
            self.dispatch(id).await;
        }
    }

    /// Whether no ex-master still forwards on-wire. Detaching the data plane ends that
    /// forwarding, so without `--keep-dataplane` a stopping daemon waits for the forward
    /// window (hosts whose ARP caches still point here need it); with it, the pinned program
    /// goes on forwarding after the daemon has gone.
    pub(super) fn forwarding_done(&self, options: &RunOptions) -> bool {
        options.keep_dataplane || self.instances.iter().all(|r| r.forwarding_until.is_none())
    }

    pub(super) fn handoffs_done(&self) -> bool {
        self.instances.iter().all(|r| !r.vrrp.is_handing_off())
    }

    /// Resigns what is left (priority 0 from any remaining master), withdraws the addresses,
    /// and detaches the data plane unless asked to keep it.
    pub(super) async fn stop(&mut self, options: &RunOptions) {
        // The loop may have ended without SIGTERM (an error): the routes go all the same.
        if self.stopping.is_none() {
            self.withdraw_all(Leaving::Stopping);
        }
        let now = Instant::now();
        for id in self.instances.ids() {
            let _ = self.instances[id]
                .vrrp
                .handle_command(now, Command::Shutdown);
            self.dispatch(id).await;
        }
        // Let the address removals and route withdrawals queued above take effect.
        for running in &self.instances {
            running.effects.flush().await;
        }
        // The statics last: an instance's routes may go through them (a static address as
        // a gateway's way out).
        self.statics.release();
        self.statics.flush().await;
        self.announcements.flush().await;
        // STOP (and last BACKUP) scripts: the runtime ends with this function.
        self.notifier.wait_for_scripts(NOTIFY_AT_EXIT_LIMIT).await;
        self.control_task.abort();
        if let Some(task) = &self.metrics_task {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.control_path);
        let ifaces: Vec<String> = self.planes.keys().cloned().collect();
        self.planes.clear();
        if options.keep_dataplane {
            log::info!(
                "leaving the XDP data plane pinned under {}",
                self.pin_dir.display()
            );
            return;
        }
        self.release_interface_vips().await;
        for iface in ifaces {
            match Dataplane::detach(&iface, &self.pin_dir) {
                Ok(()) => log::info!("{iface}: XDP detached, pins removed"),
                Err(err) => log::warn!("{err}"),
            }
        }
    }
}
