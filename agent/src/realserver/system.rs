//! A [`Plan`]'s steps checked, applied and undone on this host, in the namespace of the
//! calling thread.
//!
//! Addresses and links go through rtnetlink ([`Netlink`]); sysctls are files under
//! `/proc/sys`. Three steps run the binaries an operator would, because our crates have no
//! API for them, and they run exactly the command [`Step::command`] prints: loading a module
//! (`modprobe`, which knows the module's dependencies and the built-in ones), `fou` ports
//! (generic netlink, which the `rtnetlink` crate does not speak: `ip fou`), and `ip6tnl0`'s
//! mode (until 2025 the kernel changed the fallback device's protocol only through the
//! `SIOCCHGTUNNEL` ioctl, `ip6_tnl0_update`, which `ip -6 tunnel change` makes and every
//! kernel accepts; `RTM_NEWLINK` for it came later).
//!
//! Each step is checked first and applied only when missing, so `--apply` run twice changes
//! nothing the second time; `--remove` undoes only the steps [`Step::undo`] says it owns.

use std::{
    io,
    path::{Path, PathBuf},
    process::Command,
};

use super::{Family, Plan, Step, Undo};
use crate::io::netlink::{IfAddr, Netlink, NetlinkError};

/// What happened to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (or, removing, undone) now.
    Changed,
    /// Already as wanted (or, removing, already gone): nothing done.
    Unchanged,
    /// Removing: a host-wide step left as it is.
    Left,
}

/// Why `--apply` or `--remove` stopped: the step (as its shell command) and the cause.
#[derive(Debug, thiserror::Error)]
pub enum RealServerError {
    #[error("starting the tokio runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("`{step}`: {source}")]
    Step {
        step: String,
        #[source]
        source: Box<StepError>,
    },
}

/// Why one step could not be checked, applied or undone.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Netlink(#[from] NetlinkError),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("running {program}{hint}: {source}")]
    Spawn {
        program: String,
        hint: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Dataplane(Box<crate::dataplane::DataplaneError>),
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// Applies every missing step in order, calling `report` after each; stops at the first
/// failure, so what was done before it stays done (and a second run carries on).
pub fn apply(plan: &Plan, report: impl FnMut(&Step, Outcome)) -> Result<(), RealServerError> {
    run(plan, Direction::Apply, report)
}

/// Undoes, in reverse order, the steps `--remove` owns (the VIPs, the fou ports) and
/// reports the host-wide ones it leaves.
pub fn remove(plan: &Plan, report: impl FnMut(&Step, Outcome)) -> Result<(), RealServerError> {
    run(plan, Direction::Remove, report)
}

#[derive(Clone, Copy)]
enum Direction {
    Apply,
    Remove,
}

fn run(
    plan: &Plan,
    direction: Direction,
    mut report: impl FnMut(&Step, Outcome),
) -> Result<(), RealServerError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RealServerError::Runtime)?;
    runtime.block_on(async {
        let netlink = Netlink::new().map_err(|e| RealServerError::Step {
            step: "opening rtnetlink".to_owned(),
            source: Box::new(e.into()),
        })?;
        let steps: Vec<&Step> = match direction {
            Direction::Apply => plan.steps.iter().collect(),
            Direction::Remove => plan.steps.iter().rev().collect(),
        };
        for step in steps {
            let outcome = match direction {
                Direction::Apply => apply_step(&netlink, step).await,
                Direction::Remove => remove_step(&netlink, step).await,
            }
            .map_err(|source| RealServerError::Step {
                step: match direction {
                    Direction::Apply => step.command(),
                    Direction::Remove => step.undo_command().unwrap_or_else(|| step.command()),
                },
                source: Box::new(source),
            })?;
            report(step, outcome);
        }
        Ok(())
    })
}

async fn apply_step(netlink: &Netlink, step: &Step) -> Result<Outcome, StepError> {
    if is_applied(netlink, step).await? {
        return Ok(Outcome::Unchanged);
    }
    match step {
        Step::Module(_) | Step::Ip6tnlAnyMode | Step::FouPort { .. } => {
            run_command(&step.command())?;
        }
        Step::LinkUp(device) => netlink.set_link_up(device).await?,
        Step::Sysctl { key, value } => {
            let path = sysctl_path(key);
            std::fs::write(&path, format!("{value}\n"))
                .map_err(|source| StepError::File { path, source })?;
        }
        Step::VipOnLoopback(vip) => netlink.add_address("lo", host_address(*vip)).await?,
        Step::XdpDecap {
            iface,
            gue_ports,
            pin_dir,
        } => crate::dataplane::attach_decap(iface, pin_dir, gue_ports)
            .map_err(|e| StepError::Dataplane(Box::new(e)))?,
    }
    Ok(Outcome::Changed)
}

async fn remove_step(netlink: &Netlink, step: &Step) -> Result<Outcome, StepError> {
    if step.undo() == Undo::Leave {
        return Ok(Outcome::Left);
    }
    if !is_applied(netlink, step).await? {
        return Ok(Outcome::Unchanged);
    }
    match step {
        Step::FouPort { .. } => {
            if let Some(command) = step.undo_command() {
                run_command(&command)?;
            }
        }
        Step::VipOnLoopback(vip) => netlink.remove_address("lo", host_address(*vip)).await?,
        Step::XdpDecap { iface, pin_dir, .. } => {
            crate::dataplane::Dataplane::detach(iface, pin_dir)
                .map_err(|e| StepError::Dataplane(Box::new(e)))?;
        }
        Step::Module(_) | Step::Ip6tnlAnyMode | Step::LinkUp(_) | Step::Sysctl { .. } => {}
    }
    Ok(Outcome::Changed)
}

/// Whether the host already is as `step` wants it.
async fn is_applied(netlink: &Netlink, step: &Step) -> Result<bool, StepError> {
    Ok(match step {
        // Loaded modules, and built-in ones with parameters, have a directory under
        // /sys/module; built-in ones without parameters (fou) are only in modules.builtin.
        Step::Module(module) => {
            Path::new("/sys/module").join(module).exists() || is_builtin(module)
        }
        Step::Ip6tnlAnyMode => {
            let shown = run_command("ip -6 tunnel show ip6tnl0")?;
            ip6tnl_mode_is_any(&shown)
        }
        Step::LinkUp(device) => netlink.link(device).await?.admin_up,
        Step::FouPort { port, family } => {
            let listing = run_command(match family {
                Family::V4 => "ip fou show",
                Family::V6 => "ip -6 fou show",
            })?;
            fou_listing_has(&listing, *port, *family)
        }
        Step::Sysctl { key, value } => {
            let path = sysctl_path(key);
            let text = std::fs::read_to_string(&path)
                .map_err(|source| StepError::File { path, source })?;
            text.trim() == value.to_string()
        }
        Step::VipOnLoopback(vip) => netlink.has_address("lo", host_address(*vip)).await?,
        Step::XdpDecap {
            iface,
            gue_ports,
            pin_dir,
        } => crate::dataplane::decap_ports(iface, pin_dir)
            .map_err(|e| StepError::Dataplane(Box::new(e)))?
            .is_some_and(|ports| {
                let mut wanted = gue_ports.clone();
                wanted.sort_unstable();
                ports == wanted
            }),
    })
}

/// Whether `modules.builtin` of the running kernel names `module`; `false` when the kernel
/// has no such list (then `modprobe` decides).
fn is_builtin(module: &str) -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let path = Path::new("/lib/modules")
        .join(release.trim())
        .join("modules.builtin");
    std::fs::read_to_string(path).is_ok_and(|list| builtin_list_names(&list, module))
}

/// Whether a `modules.builtin` text (one `kernel/net/ipv4/fou.ko` a line) names `module`,
/// whose `-` and `_` are the same to modprobe.
pub(super) fn builtin_list_names(list: &str, module: &str) -> bool {
    let wanted = module.replace('-', "_");
    list.lines().any(|line| {
        Path::new(line.trim())
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".ko"))
            .is_some_and(|name| name.replace('-', "_") == wanted)
    })
}

/// `ip -6 tunnel show ip6tnl0` prints `ip6tnl0: any/ipv6 remote :: …` in mode `any`
/// (`ipv6/ipv6` in the mode it is created with).
pub(super) fn ip6tnl_mode_is_any(shown: &str) -> bool {
    shown
        .split_whitespace()
        .nth(1)
        .is_some_and(|mode| mode.starts_with("any/"))
}

/// Whether `ip fou show` lists a GUE port `port` of `family`: its lines read
/// `port 6080 gue` (IPv4) and `port 6080 gue -6` (IPv6).
pub(super) fn fou_listing_has(listing: &str, port: u16, family: Family) -> bool {
    listing.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let port_matches = words
            .windows(2)
            .any(|pair| pair[0] == "port" && pair[1] == port.to_string());
        let is_v6 = words.contains(&"-6");
        port_matches && words.contains(&"gue") && is_v6 == (family == Family::V6)
    })
}

fn host_address(vip: std::net::IpAddr) -> IfAddr {
    IfAddr {
        addr: vip,
        prefix_len: if vip.is_ipv4() { 32 } else { 128 },
    }
}

/// `net.ipv4.conf.all.rp_filter` → `/proc/sys/net/ipv4/conf/all/rp_filter`.
pub(super) fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

/// Runs a command line of plain words (as [`Step::command`] prints it) and returns its
/// stdout; a non-zero exit is an error carrying its stderr.
fn run_command(command: &str) -> Result<String, StepError> {
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or_default();
    let output = Command::new(program)
        .args(words)
        .output()
        .map_err(|source| StepError::Spawn {
            program: program.to_owned(),
            hint: match program {
                "modprobe" => " (install kmod)",
                _ => " (install iproute2)",
            },
            source,
        })?;
    if !output.status.success() {
        return Err(StepError::Failed {
            command: command.to_owned(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
