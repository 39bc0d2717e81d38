//! `[global]`: the daemon-wide settings (router id, pin directory, control socket, metrics
//! listener, XDP mode, notify FIFO, who scripts run as and whether insecure ones are
//! refused, the new flows each CPU remembers per second) and their defaults.

use std::path::PathBuf;

use super::super::reader::{Alias, Ctx, Table};
use super::super::{Global, Host, XdpMode};
use super::script_user;

const GLOBAL_KEYS: &[&str] = &[
    "router_id",
    "pin_dir",
    "control_socket",
    "metrics_listen",
    "xdp_mode",
    "notify_fifo",
    "script_user",
    "script_group",
    "script_security",
    "flow_insert_rate",
];
const GLOBAL_ALIASES: &[Alias] = &[(
    "enable_script_security",
    "did you mean `script_security = true`?",
)];
pub(super) fn global(ctx: &mut Ctx<'_>, root: &Table<'_, '_>, host: &impl Host) -> Global {
    let mut g = Global {
        router_id: host.hostname().unwrap_or_else(|| "vipflip".to_owned()),
        pin_dir: PathBuf::from("/sys/fs/bpf/vipflip"),
        control_socket: PathBuf::from("/run/vipflip.sock"),
        metrics_listen: None,
        xdp_mode: XdpMode::Auto,
        notify_fifo: None,
        script_user: None,
        script_security: false,
        flow_insert_rate: DEFAULT_FLOW_INSERT_RATE,
    };
    let Some(t) = root.table(ctx, "global", "`[global]`") else {
        return g;
    };
    t.check_keys(ctx, GLOBAL_KEYS, GLOBAL_ALIASES);
    if let Some((id, span)) = t.str(ctx, "router_id", "a name for this router") {
        if id.trim().is_empty() {
            t.invalid_at(ctx, &t.label("router_id"), &span, "must not be empty");
        } else {
            id.clone_into(&mut g.router_id);
        }
    }
    if let Some(p) = t.abs_path(ctx, "pin_dir") {
        g.pin_dir = p;
    }
    if let Some(p) = t.abs_path(ctx, "control_socket") {
        g.control_socket = p;
    }
    if let Some((s, span)) = t.str(
        ctx,
        "metrics_listen",
        "an address:port like \"127.0.0.1:9477\"",
    ) {
        match s.parse() {
            Ok(addr) => g.metrics_listen = Some(addr),
            Err(_) => t.invalid_at(
                ctx,
                &t.label("metrics_listen"),
                &span,
                "expected an address:port like \"127.0.0.1:9477\" or \"[::1]:9477\"",
            ),
        }
    }
    if let Some((s, span)) = t.str(ctx, "xdp_mode", "\"auto\", \"driver\" or \"skb\"") {
        match s {
            "auto" => g.xdp_mode = XdpMode::Auto,
            "driver" => g.xdp_mode = XdpMode::Driver,
            "skb" => g.xdp_mode = XdpMode::Skb,
            _ => t.invalid_at(
                ctx,
                &t.label("xdp_mode"),
                &span,
                "expected \"auto\", \"driver\" or \"skb\"",
            ),
        }
    }
    g.notify_fifo = t.abs_path(ctx, "notify_fifo");
    g.script_user = script_user(ctx, &t, "script_user", "script_group", host);
    g.script_security = t.bool(ctx, "script_security").unwrap_or(false);
    if let Some((rate, _)) = t.int(
        ctx,
        "flow_insert_rate",
        0..=i64::from(u32::MAX),
        "must be in 0..=4294967295 (new flows each CPU remembers per second; 0 = no limit)",
    ) {
        g.flow_insert_rate = u32::try_from(rate).unwrap_or(u32::MAX);
    }
    g
}

/// katran's default LRU insert limit per CPU and second: far above what a CPU takes in
/// genuine new connections, far below what a SYN flood sends.
pub(crate) const DEFAULT_FLOW_INSERT_RATE: u32 = 125_000;
