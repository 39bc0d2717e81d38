//! `vipflip real-server`: what a Linux real server needs to answer for a VIP that a director
//! forwards to it by Direct Routing, IPIP or GUE, as a list of [`Step`]s that is printed as
//! shell commands, applied (`--apply`) or undone (`--remove`). Printing and applying share
//! the one list from [`Plan::new`], so what an operator reads is what `--apply` does.
//!
//! The plan is pure; [`system`] checks, applies and undoes each step on this host.
//!
//! What arrives where (the kernel's fallback tunnel devices take every tunnelled packet that
//! no configured tunnel claims, once they are up):
//!
//! | VIP (inner) | real server's address (outer) | module | arrives on |
//! |---|---|---|---|
//! | IPv4 | IPv4 | `ipip` | `tunl0` |
//! | IPv6 | IPv6 | `ip6_tunnel` | `ip6tnl0` |
//! | IPv4 | IPv6 | `ip6_tunnel` | `ip6tnl0`, once in mode `any` (it is created `ip6ip6`) |
//! | IPv6 | IPv4 | `sit` | `sit0` |
//!
//! GUE variant 1 (no GUE header, the inner IP packet right after UDP) is decapsulated by
//! `fou` (`fou6` for an IPv6 outer header) on its port and handed to the same receive path,
//! so GUE needs everything IPIP needs, plus the port.

use std::{
    fmt::{self, Write as _},
    net::IpAddr,
};

pub mod system;
#[cfg(test)]
mod tests;

pub use system::{Outcome, RealServerError, apply, remove};

/// How the director forwards to this real server (`forward` in its `[[virtual_server]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Direct Routing: the frame arrives unchanged but for its MAC.
    Dr,
    /// IP-in-IP (IPv4 or IPv6 inside IPv4 or IPv6).
    Ipip,
    /// GUE variant 1 over UDP to `port` (the director's `gue_port`).
    Gue { port: u16 },
}

/// An IP version: of a VIP (the inner header) or of the real server's own address (the
/// outer header of a tunnelled packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }
}

/// Why a request makes no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no VIP given (--vip ADDRESS, once per VIP)")]
    NoVip,
    #[error(
        "--outer is the family of the real server's own address, which only tunnels use; \
         with --forward dr the packet is not wrapped"
    )]
    OuterWithoutTunnel,
    #[error("--gue-port 0 is not a port")]
    ZeroPort,
    #[error("--xdp-decap unwraps tunnels; Direct Routing has nothing to unwrap")]
    DecapWithoutTunnel,
}

/// One thing the host needs, which can be checked, applied and (for some) undone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The kernel module is loaded (creating its fallback device in every namespace).
    Module(&'static str),
    /// `ip6tnl0` takes IPv4 as well as IPv6 inside IPv6 (mode `any`).
    Ip6tnlAnyMode,
    /// A fallback tunnel device is up: only then does it take packets.
    LinkUp(&'static str),
    /// A `fou` receive port that decapsulates GUE, for outer headers of `family`.
    FouPort { port: u16, family: Family },
    /// `/proc/sys/<key with dots as slashes>` holds `value`.
    Sysctl { key: String, value: u8 },
    /// The VIP on `lo` as a host address, so the real server accepts packets to it and
    /// answers from it, but (with `arp_ignore`) never claims it on the link.
    VipOnLoopback(IpAddr),
    /// vipflip's `decap` XDP program on `iface`, unwrapping IPIP and GUE on `gue_ports`
    /// before the stack (pinned under `pin_dir`): for kernels without `ipip` or `fou`.
    XdpDecap {
        iface: String,
        gue_ports: Vec<u16>,
        pin_dir: std::path::PathBuf,
    },
}

/// What `--remove` does with a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// Undone: the VIPs and the fou ports exist only for the director's traffic.
    Reverse,
    /// Left as it is: host-wide settings (modules, fallback devices, sysctls) that other
    /// VIPs or services may rely on, and whose previous value this host did not record.
    Leave,
}

impl Step {
    /// The shell command an operator would type to apply it.
    pub fn command(&self) -> String {
        match self {
            Self::Module(module) => format!("modprobe {module}"),
            Self::Ip6tnlAnyMode => "ip -6 tunnel change ip6tnl0 mode any".to_owned(),
            Self::LinkUp(device) => format!("ip link set {device} up"),
            Self::FouPort { port, family } => {
                format!("ip{} fou add port {port} gue", dash6(*family))
            }
            Self::Sysctl { key, value } => format!("sysctl -w {key}={value}"),
            Self::VipOnLoopback(vip @ IpAddr::V4(_)) => format!("ip addr add {vip}/32 dev lo"),
            // As `Netlink::add_address` adds it: no DAD, and deprecated, so the real server
            // never picks the VIP as the source of its own connections.
            Self::VipOnLoopback(vip @ IpAddr::V6(_)) => {
                format!("ip -6 addr add {vip}/128 dev lo nodad preferred_lft 0")
            }
            Self::XdpDecap {
                iface,
                gue_ports,
                pin_dir,
            } => {
                let ports = gue_ports.iter().fold(String::new(), |mut out, port| {
                    let _ = write!(out, " --gue-port {port}");
                    out
                });
                format!(
                    "vipflip load-decap --iface {iface}{ports} --pin-dir {}",
                    pin_dir.display()
                )
            }
        }
    }

    /// What `--remove` does with it.
    pub const fn undo(&self) -> Undo {
        match self {
            Self::FouPort { .. } | Self::VipOnLoopback(_) | Self::XdpDecap { .. } => Undo::Reverse,
            Self::Module(_) | Self::Ip6tnlAnyMode | Self::LinkUp(_) | Self::Sysctl { .. } => {
                Undo::Leave
            }
        }
    }

    /// The shell command that undoes it, for the steps `--remove` undoes.
    pub fn undo_command(&self) -> Option<String> {
        match self {
            Self::FouPort { port, family } => {
                Some(format!("ip{} fou del port {port}", dash6(*family)))
            }
            Self::VipOnLoopback(vip @ IpAddr::V4(_)) => {
                Some(format!("ip addr del {vip}/32 dev lo"))
            }
            Self::VipOnLoopback(vip @ IpAddr::V6(_)) => {
                Some(format!("ip -6 addr del {vip}/128 dev lo"))
            }
            Self::XdpDecap { iface, pin_dir, .. } => Some(format!(
                "vipflip unload --iface {iface} --pin-dir {}",
                pin_dir.display()
            )),
            Self::Module(_) | Self::Ip6tnlAnyMode | Self::LinkUp(_) | Self::Sysctl { .. } => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.command())
    }
}

fn dash6(family: Family) -> &'static str {
    match family {
        Family::V4 => "",
        Family::V6 => " -6",
    }
}

/// The steps for a mode and its VIPs, in the order they are applied: modules before the
/// devices and sysctls they create, and the VIPs last, so a real server takes the VIP's
/// traffic only once it decapsulates it and (with `arp_ignore`) no longer answers ARP for
/// it. `--remove` goes through them backwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub mode: Mode,
    pub vips: Vec<IpAddr>,
    pub steps: Vec<Step>,
}

impl Plan {
    /// The plan for `vips` forwarded by `mode`. `outer` is the family (or families) of the
    /// real server's own address, which tunnels put in the outer header; empty means each
    /// VIP's own family (IPv4 in IPv4, IPv6 in IPv6).
    pub fn new(mode: Mode, vips: &[IpAddr], outer: &[Family]) -> Result<Self, PlanError> {
        Self::build(mode, vips, outer, None)
    }

    /// The plan for a tunnel unwrapped by vipflip's `decap` XDP program on `iface` (pinned
    /// under `pin_dir`) instead of the kernel's `ipip` and `fou`, which some kernels lack:
    /// the unwrapped packet then arrives on `iface` itself, from the client, so no tunnel
    /// device and no reverse-path setting is needed.
    pub fn with_xdp_decap(
        mode: Mode,
        vips: &[IpAddr],
        iface: &str,
        pin_dir: &std::path::Path,
    ) -> Result<Self, PlanError> {
        Self::build(mode, vips, &[], Some((iface, pin_dir)))
    }

    fn build(
        mode: Mode,
        vips: &[IpAddr],
        outer: &[Family],
        decap: Option<(&str, &std::path::Path)>,
    ) -> Result<Self, PlanError> {
        if vips.is_empty() {
            return Err(PlanError::NoVip);
        }
        if mode == Mode::Dr && decap.is_some() {
            return Err(PlanError::DecapWithoutTunnel);
        }
        if mode == Mode::Dr && !outer.is_empty() {
            return Err(PlanError::OuterWithoutTunnel);
        }
        if mode == (Mode::Gue { port: 0 }) {
            return Err(PlanError::ZeroPort);
        }
        let vips = sorted(vips.iter().copied());
        let inners: Vec<Family> = sorted(vips.iter().map(|vip| Family::of(*vip)));
        let outers: Vec<Family> = if outer.is_empty() {
            inners.clone()
        } else {
            sorted(outer.iter().copied())
        };
        // Each group is sorted, and the groups are in application order.
        let mut modules = Vec::new();
        let mut tunnel_mode = Vec::new();
        let mut links = Vec::new();
        let mut fou = Vec::new();
        let mut sysctls = Vec::new();
        if let Mode::Gue { port } = mode {
            for &family in &outers {
                modules.push(Step::Module(match family {
                    Family::V4 => "fou",
                    Family::V6 => "fou6",
                }));
                fou.push(Step::FouPort { port, family });
            }
        }
        if let Some((iface, pin_dir)) = decap {
            links.push(Step::XdpDecap {
                iface: iface.to_owned(),
                gue_ports: match mode {
                    Mode::Gue { port } => vec![port],
                    Mode::Dr | Mode::Ipip => Vec::new(),
                },
                pin_dir: pin_dir.to_owned(),
            });
            modules.clear();
            fou.clear();
        } else if mode != Mode::Dr {
            for &inner in &inners {
                for &outer in &outers {
                    let (module, device) = match (inner, outer) {
                        (Family::V4, Family::V4) => ("ipip", "tunl0"),
                        (Family::V6, Family::V6) => ("ip6_tunnel", "ip6tnl0"),
                        (Family::V4, Family::V6) => {
                            tunnel_mode.push(Step::Ip6tnlAnyMode);
                            ("ip6_tunnel", "ip6tnl0")
                        }
                        (Family::V6, Family::V4) => ("sit", "sit0"),
                    };
                    modules.push(Step::Module(module));
                    links.push(Step::LinkUp(device));
                    // The decapsulated IPv4 packet arrives on the tunnel device from the
                    // client, whose route leads elsewhere: strict reverse-path filtering
                    // (the kernel takes the larger of `all` and the device's value) would
                    // drop it. IPv6 has no rp_filter sysctl.
                    if inner == Family::V4 {
                        sysctls.push(rp_filter("all"));
                        sysctls.push(rp_filter(device));
                    }
                }
            }
        }
        if inners.contains(&Family::V4) {
            // LVS-DR's settings: answer ARP only for addresses on the asking interface (the
            // VIP is on lo), and announce only addresses of the outgoing interface, so the
            // real server never claims the VIP on the link the director shares with it.
            // IPv6 needs nothing: Linux answers neighbour solicitations only for addresses on
            // the interface they arrive on.
            sysctls.push(sysctl("net.ipv4.conf.all.arp_ignore", 1));
            sysctls.push(sysctl("net.ipv4.conf.all.arp_announce", 2));
        }
        let mut steps = Vec::new();
        for group in [modules, tunnel_mode, links, fou, sysctls] {
            steps.extend(sorted(group));
        }
        steps.extend(vips.iter().map(|vip| Step::VipOnLoopback(*vip)));
        Ok(Self { mode, vips, steps })
    }

    /// The plan as a shell script an operator can read and run, with what `--remove` would
    /// undo and the MSS advice.
    pub fn render(&self) -> String {
        let vips: Vec<String> = self.vips.iter().map(IpAddr::to_string).collect();
        let mut lines = vec![
            format!(
                "# What a Linux real server needs to answer for {} forwarded by {}.",
                vips.join(", "),
                self.mode_name()
            ),
            "# Run as root on each real server, or use `vipflip real-server … --apply`.".to_owned(),
        ];
        lines.extend(self.steps.iter().map(Step::command));
        lines.push(String::new());
        lines.push("# --remove runs:".to_owned());
        lines.extend(
            self.steps
                .iter()
                .rev()
                .filter_map(Step::undo_command)
                .map(|undo| format!("#   {undo}")),
        );
        lines.push(
            "# and leaves modules, tunnel devices and sysctls as they are (other VIPs and \
             services may rely on them)."
                .to_owned(),
        );
        if let Some(advice) = self.mss_advice() {
            lines.push(String::new());
            lines.extend(advice.lines().map(|line| format!("# {line}")));
        }
        lines.push(String::new());
        lines.join("\n")
    }

    /// How much the tunnel adds to each packet, and what to do about it; `None` for Direct
    /// Routing, which adds nothing.
    pub fn mss_advice(&self) -> Option<String> {
        let udp = match self.mode {
            Mode::Dr => return None,
            Mode::Ipip => 0,
            Mode::Gue { .. } => 8,
        };
        Some(format!(
            "MTU: the tunnel adds {ipv4} bytes to each packet with an IPv4 outer header, {ipv6} \
             with IPv6.\n\
             The director answers a packet that no longer fits with ICMP \"fragmentation \
             needed\" /\n\
             \"packet too big\", so clients whose path MTU discovery works adapt. To spare \
             them the round trip,\n\
             lower the MSS this real server advertises to underlay MTU - {ipv4} - 40 (IPv4) \
             or - {ipv6} - 60 (IPv6),\n\
             e.g. `ip route change <each route> advmss {example}` for IPv4 over a 1500-byte \
             underlay,\n\
             or clamp the MSS on the way in, or raise the underlay MTU by {ipv6}.",
            ipv4 = 20 + udp,
            ipv6 = 40 + udp,
            example = 1500 - 20 - udp - 40,
        ))
    }

    fn mode_name(&self) -> String {
        match self.mode {
            Mode::Dr => "Direct Routing".to_owned(),
            Mode::Ipip => "IPIP".to_owned(),
            Mode::Gue { port } => format!("GUE on UDP port {port}"),
        }
    }
}

fn rp_filter(device: &str) -> Step {
    sysctl(&format!("net.ipv4.conf.{device}.rp_filter"), 0)
}

fn sysctl(key: &str, value: u8) -> Step {
    Step::Sysctl {
        key: key.to_owned(),
        value,
    }
}

/// Sorted, without repeats.
fn sorted<T: Ord>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.into_iter().collect();
    items.sort();
    items.dedup();
    items
}
