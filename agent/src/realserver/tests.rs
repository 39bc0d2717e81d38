//! The exact plan per mode and family, and the parsers of what `ip` prints.

use std::net::IpAddr;

use super::{
    Family, Mode, Plan, PlanError, Step, Undo,
    system::{builtin_list_names, fou_listing_has, ip6tnl_mode_is_any, sysctl_path},
};

const VIP4: &str = "192.0.2.100";
const VIP6: &str = "2001:db8::100";

fn commands(mode: Mode, vips: &[&str], outer: &[Family]) -> Vec<String> {
    let vips: Vec<IpAddr> = vips.iter().map(|v| v.parse().unwrap()).collect();
    Plan::new(mode, &vips, outer)
        .unwrap()
        .steps
        .iter()
        .map(Step::command)
        .collect()
}

#[test]
fn dr_ipv4_is_the_vip_on_lo_after_the_arp_settings() {
    assert_eq!(
        commands(Mode::Dr, &[VIP4], &[]),
        [
            "sysctl -w net.ipv4.conf.all.arp_announce=2",
            "sysctl -w net.ipv4.conf.all.arp_ignore=1",
            "ip addr add 192.0.2.100/32 dev lo",
        ]
    );
}

#[test]
fn dr_ipv6_needs_only_the_vip_on_lo() {
    assert_eq!(
        commands(Mode::Dr, &[VIP6], &[]),
        ["ip -6 addr add 2001:db8::100/128 dev lo nodad preferred_lft 0"]
    );
}

#[test]
fn ipip_ipv4_in_ipv4_arrives_on_tunl0() {
    assert_eq!(
        commands(Mode::Ipip, &[VIP4], &[]),
        [
            "modprobe ipip",
            "ip link set tunl0 up",
            "sysctl -w net.ipv4.conf.all.arp_announce=2",
            "sysctl -w net.ipv4.conf.all.arp_ignore=1",
            "sysctl -w net.ipv4.conf.all.rp_filter=0",
            "sysctl -w net.ipv4.conf.tunl0.rp_filter=0",
            "ip addr add 192.0.2.100/32 dev lo",
        ]
    );
}

#[test]
fn ipip_ipv6_in_ipv6_arrives_on_ip6tnl0_without_rp_filter() {
    assert_eq!(
        commands(Mode::Ipip, &[VIP6], &[]),
        [
            "modprobe ip6_tunnel",
            "ip link set ip6tnl0 up",
            "ip -6 addr add 2001:db8::100/128 dev lo nodad preferred_lft 0",
        ]
    );
}

#[test]
fn ipip_ipv4_in_ipv6_puts_ip6tnl0_in_mode_any() {
    assert_eq!(
        commands(Mode::Ipip, &[VIP4], &[Family::V6]),
        [
            "modprobe ip6_tunnel",
            "ip -6 tunnel change ip6tnl0 mode any",
            "ip link set ip6tnl0 up",
            "sysctl -w net.ipv4.conf.all.arp_announce=2",
            "sysctl -w net.ipv4.conf.all.arp_ignore=1",
            "sysctl -w net.ipv4.conf.all.rp_filter=0",
            "sysctl -w net.ipv4.conf.ip6tnl0.rp_filter=0",
            "ip addr add 192.0.2.100/32 dev lo",
        ]
    );
}

#[test]
fn ipip_ipv6_in_ipv4_arrives_on_sit0() {
    assert_eq!(
        commands(Mode::Ipip, &[VIP6], &[Family::V4]),
        [
            "modprobe sit",
            "ip link set sit0 up",
            "ip -6 addr add 2001:db8::100/128 dev lo nodad preferred_lft 0",
        ]
    );
}

#[test]
fn ipip_both_families_over_both_needs_every_device_once() {
    assert_eq!(
        commands(Mode::Ipip, &[VIP6, VIP4], &[Family::V6, Family::V4]),
        [
            "modprobe ip6_tunnel",
            "modprobe ipip",
            "modprobe sit",
            "ip -6 tunnel change ip6tnl0 mode any",
            "ip link set ip6tnl0 up",
            "ip link set sit0 up",
            "ip link set tunl0 up",
            "sysctl -w net.ipv4.conf.all.arp_announce=2",
            "sysctl -w net.ipv4.conf.all.arp_ignore=1",
            "sysctl -w net.ipv4.conf.all.rp_filter=0",
            "sysctl -w net.ipv4.conf.ip6tnl0.rp_filter=0",
            "sysctl -w net.ipv4.conf.tunl0.rp_filter=0",
            "ip addr add 192.0.2.100/32 dev lo",
            "ip -6 addr add 2001:db8::100/128 dev lo nodad preferred_lft 0",
        ]
    );
}

#[test]
fn gue_adds_fou_and_its_port_to_what_ipip_needs() {
    assert_eq!(
        commands(Mode::Gue { port: 6080 }, &[VIP4], &[]),
        [
            "modprobe fou",
            "modprobe ipip",
            "ip link set tunl0 up",
            "ip fou add port 6080 gue",
            "sysctl -w net.ipv4.conf.all.arp_announce=2",
            "sysctl -w net.ipv4.conf.all.arp_ignore=1",
            "sysctl -w net.ipv4.conf.all.rp_filter=0",
            "sysctl -w net.ipv4.conf.tunl0.rp_filter=0",
            "ip addr add 192.0.2.100/32 dev lo",
        ]
    );
    assert_eq!(
        commands(Mode::Gue { port: 6080 }, &[VIP6], &[]),
        [
            "modprobe fou6",
            "modprobe ip6_tunnel",
            "ip link set ip6tnl0 up",
            "ip -6 fou add port 6080 gue",
            "ip -6 addr add 2001:db8::100/128 dev lo nodad preferred_lft 0",
        ]
    );
}

#[test]
fn remove_undoes_the_vips_and_fou_ports_only_in_reverse_order() {
    let plan = Plan::new(
        Mode::Gue { port: 6080 },
        &[VIP4.parse().unwrap(), VIP6.parse().unwrap()],
        &[],
    )
    .unwrap();
    let undone: Vec<String> = plan
        .steps
        .iter()
        .rev()
        .filter(|step| step.undo() == Undo::Reverse)
        .filter_map(Step::undo_command)
        .collect();
    assert_eq!(
        undone,
        [
            "ip -6 addr del 2001:db8::100/128 dev lo",
            "ip addr del 192.0.2.100/32 dev lo",
            "ip -6 fou del port 6080",
            "ip fou del port 6080",
        ]
    );
    for step in &plan.steps {
        assert_eq!(
            step.undo_command().is_some(),
            step.undo() == Undo::Reverse,
            "{step}"
        );
    }
}

#[test]
fn a_plan_needs_a_vip_a_port_and_no_outer_family_for_dr() {
    let vip: IpAddr = VIP4.parse().unwrap();
    assert_eq!(Plan::new(Mode::Dr, &[], &[]), Err(PlanError::NoVip));
    assert_eq!(
        Plan::new(Mode::Dr, &[vip], &[Family::V4]),
        Err(PlanError::OuterWithoutTunnel)
    );
    assert_eq!(
        Plan::new(Mode::Gue { port: 0 }, &[vip], &[]),
        Err(PlanError::ZeroPort)
    );
}

#[test]
fn repeated_vips_make_one_step() {
    assert_eq!(
        commands(Mode::Dr, &[VIP6, VIP6], &[]),
        ["ip -6 addr add 2001:db8::100/128 dev lo nodad preferred_lft 0"]
    );
}

#[test]
fn the_printed_script_has_the_steps_the_undo_and_the_mss_advice() {
    let plan = Plan::new(Mode::Gue { port: 6080 }, &[VIP4.parse().unwrap()], &[]).unwrap();
    let script = plan.render();
    assert!(script.starts_with(
        "# What a Linux real server needs to answer for 192.0.2.100 forwarded by GUE on UDP \
         port 6080.\n"
    ));
    assert!(script.contains("\nmodprobe fou\nmodprobe ipip\nip link set tunl0 up\n"));
    assert!(script.contains("#   ip addr del 192.0.2.100/32 dev lo\n#   ip fou del port 6080\n"));
    // GUE adds 28 bytes over IPv4: 1500 - 28 - 40.
    assert!(script.contains("advmss 1432"), "{script}");
    for line in script.lines() {
        assert!(
            line.is_empty()
                || line.starts_with('#')
                || plan.steps.iter().any(|s| s.command() == line),
            "a line that is neither a comment nor a step: {line:?}"
        );
    }
    let dr = Plan::new(Mode::Dr, &[VIP4.parse().unwrap()], &[]).unwrap();
    assert_eq!(dr.mss_advice(), None);
    assert!(
        Plan::new(Mode::Ipip, &[VIP4.parse().unwrap()], &[])
            .unwrap()
            .render()
            .contains("advmss 1440")
    );
}

#[test]
fn ip_output_is_read_as_iproute2_prints_it() {
    assert!(ip6tnl_mode_is_any(
        "ip6tnl0: any/ipv6 remote :: local :: encaplimit 0 hoplimit 0 tclass 0x00 flowlabel \
         0x00000 (flowinfo 0x00000000)\n"
    ));
    assert!(!ip6tnl_mode_is_any(
        "ip6tnl0: ipv6/ipv6 remote :: local :: encaplimit 0 hoplimit 0\n"
    ));
    let listing = "port 5555 gue\nport 6080 gue -6\nport 7000 ipproto 4\n";
    assert!(fou_listing_has(listing, 6080, Family::V6));
    assert!(!fou_listing_has(listing, 6080, Family::V4));
    assert!(fou_listing_has(listing, 5555, Family::V4));
    assert!(!fou_listing_has(listing, 7000, Family::V4), "not GUE");
    let builtin =
        "kernel/net/ipv4/ip_tunnel.ko\nkernel/net/ipv4/fou.ko\nkernel/net/ipv6/ip6_tunnel.ko\n";
    assert!(builtin_list_names(builtin, "fou"));
    assert!(builtin_list_names(builtin, "ip6_tunnel"));
    assert!(!builtin_list_names(builtin, "fou6"));
    assert!(
        !builtin_list_names(builtin, "ipip"),
        "ip_tunnel is not ipip"
    );
    assert_eq!(
        sysctl_path("net.ipv4.conf.tunl0.rp_filter"),
        std::path::Path::new("/proc/sys/net/ipv4/conf/tunl0/rp_filter")
    );
}

#[test]
fn xdp_decap_replaces_the_kernels_tunnel_modules() {
    let vips: Vec<IpAddr> = [VIP4, VIP6].iter().map(|v| v.parse().unwrap()).collect();
    let plan = Plan::with_xdp_decap(
        Mode::Gue { port: 6080 },
        &vips,
        "eth0",
        std::path::Path::new("/sys/fs/bpf/vipflip"),
    )
    .unwrap();
    let commands: Vec<String> = plan.steps.iter().map(Step::command).collect();
    assert_eq!(
        commands,
        [
            "vipflip load-decap --iface eth0 --gue-port 6080 --pin-dir /sys/fs/bpf/vipflip",
            "sysctl -w net.ipv4.conf.all.arp_announce=2",
            "sysctl -w net.ipv4.conf.all.arp_ignore=1",
            "ip addr add 192.0.2.100/32 dev lo",
            "ip -6 addr add 2001:db8::100/128 dev lo nodad preferred_lft 0",
        ],
        "no module, tunnel device, fou port or rp_filter: the unwrapped packet arrives on eth0"
    );
    assert_eq!(plan.steps[0].undo(), Undo::Reverse);
    assert_eq!(
        plan.steps[0].undo_command().as_deref(),
        Some("vipflip unload --iface eth0 --pin-dir /sys/fs/bpf/vipflip")
    );
    let ipip =
        Plan::with_xdp_decap(Mode::Ipip, &vips[..1], "eth0", std::path::Path::new("/p")).unwrap();
    assert_eq!(
        ipip.steps[0].command(),
        "vipflip load-decap --iface eth0 --pin-dir /p",
        "IPIP needs no port"
    );
    assert!(matches!(
        Plan::with_xdp_decap(Mode::Dr, &vips, "eth0", std::path::Path::new("/p")),
        Err(PlanError::DecapWithoutTunnel)
    ));
}
