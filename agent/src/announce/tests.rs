//! The announcer's gates, one rule per test, and the routing daemons' configuration text.

use std::net::IpAddr;

use super::{AnnounceGate, Announcer, Leaving, Reason, RouteChange, routing_config};
use crate::config::Config;

const VIP1: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 10));
const VIP2: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 11));
const VIP3: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 12));

fn master(instance: &str) -> AnnounceGate {
    AnnounceGate::Master {
        instance: instance.into(),
    }
}

fn quorum(vs: &str) -> AnnounceGate {
    AnnounceGate::Quorum {
        virtual_server: vs.into(),
    }
}

fn add(vip: IpAddr, reason: Reason) -> RouteChange {
    RouteChange {
        vip,
        announce: true,
        reason,
    }
}

fn withdraw(vip: IpAddr, reason: Reason) -> RouteChange {
    RouteChange {
        vip,
        announce: false,
        reason,
    }
}

#[test]
fn always_is_announced_at_start_and_the_others_wait_for_a_verdict() {
    let (announcer, changes) = Announcer::new(
        &[
            (VIP1, AnnounceGate::Always),
            (VIP2, master("VI_1")),
            (VIP3, quorum("web")),
        ],
        &[],
    );
    assert_eq!(changes, [add(VIP1, Reason::Running)]);
    let waiting: Vec<_> = announcer.routes()[1..]
        .iter()
        .map(|r| (r.announced, r.reason.clone()))
        .collect();
    assert_eq!(
        waiting,
        [(false, Reason::Unknown), (false, Reason::Unknown)]
    );
}

#[test]
fn a_route_found_in_the_table_stays_until_its_gate_says_otherwise() {
    // A restart after SIGKILL: the previous run's route is still announced.
    let (mut announcer, changes) = Announcer::new(&[(VIP2, master("VI_1"))], &[VIP2]);
    assert_eq!(changes, []);
    assert!(announcer.routes()[0].announced);
    // The instance resumes as master: nothing to write, no flap.
    assert_eq!(announcer.instance("VI_1", true), []);
    assert_eq!(
        announcer.instance("VI_1", false),
        [withdraw(VIP2, Reason::Master("VI_1".into(), false))]
    );
}

#[test]
fn a_route_found_for_no_gate_is_withdrawn_at_start() {
    let (_, changes) = Announcer::new(&[(VIP1, AnnounceGate::Always)], &[VIP1, VIP3]);
    assert_eq!(changes, [withdraw(VIP3, Reason::Removed)]);
}

#[test]
fn a_master_gate_follows_its_instance_only() {
    let (mut announcer, _) = Announcer::new(&[(VIP1, master("VI_1")), (VIP2, master("VI_2"))], &[]);
    assert_eq!(
        announcer.instance("VI_1", true),
        [add(VIP1, Reason::Master("VI_1".into(), true))]
    );
    // Another instance's state leaves it alone; a repeated state writes nothing.
    assert_eq!(announcer.instance("VI_2", false), []);
    assert_eq!(announcer.instance("VI_1", true), []);
    assert_eq!(
        announcer.instance("VI_1", false),
        [withdraw(VIP1, Reason::Master("VI_1".into(), false))]
    );
}

#[test]
fn a_quorum_gate_withdraws_on_loss_and_returns_when_met() {
    let (mut announcer, _) = Announcer::new(&[(VIP3, quorum("web"))], &[]);
    assert_eq!(
        announcer.quorum("web", true),
        [add(VIP3, Reason::Quorum("web".into(), true))]
    );
    assert_eq!(
        announcer.quorum("web", false),
        [withdraw(VIP3, Reason::Quorum("web".into(), false))]
    );
    assert_eq!(
        announcer.quorum("web", true),
        [add(VIP3, Reason::Quorum("web".into(), true))]
    );
}

#[test]
fn leaving_withdraws_everything_and_nothing_comes_back() {
    let (mut announcer, _) =
        Announcer::new(&[(VIP1, AnnounceGate::Always), (VIP2, master("VI_1"))], &[]);
    announcer.instance("VI_1", true);
    assert_eq!(
        announcer.leave(Leaving::Draining),
        [
            withdraw(VIP1, Reason::Draining),
            withdraw(VIP2, Reason::Draining)
        ]
    );
    assert_eq!(announcer.instance("VI_1", true), []);
    assert_eq!(announcer.leave(Leaving::Stopping), []);
    assert_eq!(announcer.routes()[0].reason, Reason::Stopping);
}

#[test]
fn a_reload_keeps_what_is_known_and_withdraws_what_is_gone() {
    let (mut announcer, _) =
        Announcer::new(&[(VIP1, AnnounceGate::Always), (VIP2, master("VI_1"))], &[]);
    announcer.instance("VI_1", true);
    let changes = announcer.reconfigure(&[(VIP2, master("VI_1")), (VIP3, master("VI_1"))]);
    assert_eq!(
        changes,
        [
            withdraw(VIP1, Reason::Removed),
            add(VIP3, Reason::Master("VI_1".into(), true))
        ]
    );
    assert!(announcer.routes().iter().all(|r| r.announced));
}

#[test]
fn reasons_read_as_status_shows_them() {
    assert_eq!(
        Reason::Master("VI_1".into(), false).to_string(),
        "instance VI_1 is not master"
    );
    assert_eq!(
        Reason::Quorum("web".into(), false).to_string(),
        "virtual server web is not live or lacks its quorum"
    );
}

fn config(text: &str) -> Config {
    Config::parse(text, "t.toml").unwrap().0
}

const DIRECTOR: &str = r#"
[global]
router_id = "dir-1"
[routing]
table = 200
bgp = { asn = 65001, router_id = "192.0.2.11", neighbors = [{ address = "192.0.2.1", asn = 65000 }], bfd = { interval = "50ms", multiplier = 3 } }
[[instance]]
name = "VI_1"
interface = "lo"
vrid = 51
priority = 255
virtual_ips = ["198.51.100.10/32"]
[[announce]]
vip = "198.51.100.10"
when = "master"
"#;

#[test]
fn frr_gets_the_import_table_the_redistribution_and_bfd() {
    let text = routing_config::render(&config(DIRECTOR), routing_config::Daemon::Frr).unwrap();
    assert_eq!(
        text,
        "! Generated by `vipflip routing-config` for router dir-1.
! vipflip writes the announced VIPs into kernel table 200 (proto 250):
!   198.51.100.10/32 when master
frr defaults traditional
ip import-table 200
!
bfd
 profile vipflip
  detect-multiplier 3
  receive-interval 50
  transmit-interval 50
 exit
exit
!
router bgp 65001
 bgp router-id 192.0.2.11
 no bgp ebgp-requires-policy
 neighbor 192.0.2.1 remote-as 65000
 neighbor 192.0.2.1 timers connect 5
 neighbor 192.0.2.1 bfd profile vipflip
 !
 address-family ipv4 unicast
  redistribute table 200
  neighbor 192.0.2.1 activate
 exit-address-family
exit
"
    );
}

#[test]
fn bird_learns_the_table_and_exports_it_as_incomplete() {
    let text = routing_config::render(&config(DIRECTOR), routing_config::Daemon::Bird).unwrap();
    assert_eq!(
        text,
        "# Generated by `vipflip routing-config` for router dir-1.
# vipflip writes the announced VIPs into kernel table 200 (proto 250):
#   198.51.100.10/32 when master
router id 192.0.2.11;
protocol device {}
protocol kernel vipflip_ipv4 {
    kernel table 200;
    learn;  # vipflip's routes, which BIRD did not write
    ipv4 { import all; export none; };
}
protocol bfd {
    interface \"*\" {
        interval 50 ms;
        multiplier 3;
    };
}
protocol bgp upstream1 {
    local as 65001;
    neighbor 192.0.2.1 as 65000;
    # BIRD waits 120 s before retrying a failed connect, and 60 s after a session
    # error, by default.
    connect retry time 5;
    error wait time 2, 30;
    bfd on;
    ipv4 {
        import none;
        export filter {
            if source != RTS_INHERIT then reject;
            bgp_origin = ORIGIN_INCOMPLETE;
            accept;
        };
    };
}
"
    );
}

#[test]
fn without_bgp_or_announcements_there_is_nothing_to_print() {
    let no_bgp = DIRECTOR.replace("bgp = {", "# bgp = {");
    assert_eq!(
        routing_config::render(&config(&no_bgp), routing_config::Daemon::Frr),
        Err(routing_config::RoutingConfigError::NoBgp)
    );
    let no_announce = DIRECTOR.replace(
        "[[announce]]\nvip = \"198.51.100.10\"\nwhen = \"master\"\n",
        "",
    );
    assert_eq!(
        routing_config::render(&config(&no_announce), routing_config::Daemon::Bird),
        Err(routing_config::RoutingConfigError::NoAnnouncement)
    );
}
