//! `io::garp` on a veth pair: the announcer's gratuitous ARPs and unsolicited NAs are
//! captured by a packet socket in the peer namespace, counted per the schedule, and parsed
//! with `wire`. Needs root.

use std::{
    io::ErrorKind,
    mem::MaybeUninit,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};
use vipflip::{
    io::garp::{GarpSchedule, GarpSocket, announcement_frames, spawn_announcer},
    wire::{
        MacAddr,
        arp::{ArpRepr, GarpForm, Operation, Packet as ArpPacket},
        ethernet::{EtherType, Frame},
        ip::IPV6_HEADER_LEN,
        ndisc::{self, NeighborAdvertRepr},
    },
};
use vipflip_integration_tests::{Netns, unique, veth};

const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);

#[test]
#[ignore = "needs root"]
fn announcements_are_captured_on_the_peer_and_parse() {
    let a = Netns::new("vfga-a");
    let b = Netns::new("vfga-b");
    let (a_if, b_if) = (unique("vfa"), unique("vfb"));
    veth(&a, &a_if, &b, &b_if);
    let a_mac = MacAddr(a.mac(&a_if));
    let a_index = a.ifindex(&a_if);

    // Capture everything arriving in B, opened before anything is sent.
    let capture = b
        .spawn(|| {
            // ETH_P_ALL (3), in network byte order as packet(7) wants it.
            let proto = i32::from(3u16.to_be());
            let s = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(proto))).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            s
        })
        .join()
        .expect("capture thread");

    // Two bursts of two rounds, 20 ms apart, the second 100 ms after the start.
    let schedule = GarpSchedule {
        repeat: 2,
        interval: Duration::from_millis(20),
        delay: Some(Duration::from_millis(100)),
        refresh: None,
        refresh_repeat: 1,
    };
    let iface = a_if.clone();
    a.spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let socket = GarpSocket::open(&iface, a_index).expect("open GARP socket");
                let frames = announcement_frames(
                    a_mac,
                    &[IpAddr::V4(VIP4), IpAddr::V6(VIP6)],
                    GarpForm::Request,
                    true,
                )
                .expect("frames");
                spawn_announcer(socket, frames, schedule)
                    .await
                    .expect("announcer task")
                    .expect("announcer sends");
            });
    })
    .join()
    .expect("announcer thread");

    let (arps, nas) = count_announcements(&capture, a_mac);
    assert_eq!(
        (arps, nas),
        (4, 4),
        "two bursts of two rounds, one frame per VIP"
    );
}

/// The gratuitous ARPs and unsolicited NAs from `a_mac` that `capture` receives until 500 ms
/// pass without a frame, each checked as it is parsed.
fn count_announcements(capture: &Socket, a_mac: MacAddr) -> (usize, usize) {
    let (mut arps, mut nas) = (0, 0);
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    loop {
        let len = match capture.recv(&mut buf) {
            Ok(len) => len,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("capture: {e}"),
        };
        // SAFETY: `recv` initialised the first `len` bytes.
        let bytes: Vec<u8> = buf[..len]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        let Ok(frame) = Frame::new_checked(&bytes[..]) else {
            continue;
        };
        if frame.src_addr() != a_mac {
            continue;
        }
        match frame.ethertype() {
            EtherType::Arp => {
                let arp = ArpRepr::parse(&ArpPacket::new_checked(frame.payload()).unwrap())
                    .expect("a well-formed ARP");
                assert_eq!(frame.dst_addr(), MacAddr::BROADCAST);
                assert_eq!(arp.operation, Operation::Request);
                assert_eq!((arp.source_ip, arp.target_ip), (VIP4, VIP4));
                assert_eq!(arp.source_mac, a_mac);
                arps += 1;
            }
            EtherType::Ipv6 => {
                let ip = frame.payload();
                // Next header ICMPv6, type 136: the kernel's own MLD reports are skipped.
                if ip.get(6) != Some(&58) || ip.get(IPV6_HEADER_LEN) != Some(&136) {
                    continue;
                }
                let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
                let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
                assert_eq!(ip[7], 255, "NA hop limit");
                assert_eq!((src, dst), (VIP6, ndisc::ALL_NODES));
                let na = NeighborAdvertRepr::parse(
                    &ndisc::Packet::new_checked(&ip[IPV6_HEADER_LEN..]).unwrap(),
                    &src,
                    &dst,
                )
                .expect("a well-formed NA");
                assert_eq!(na, NeighborAdvertRepr::unsolicited(VIP6, a_mac, true));
                nas += 1;
            }
            _ => {}
        }
    }
    (arps, nas)
}

/// keepalived's `garp_master_refresh` with `garp_master_refresh_repeat 3`: after the first
/// burst (one round), three rounds every 200 ms while master. Stopped at 500 ms (the instance
/// left master), between the second refresh and the third.
#[test]
#[ignore = "needs root"]
fn each_refresh_sends_refresh_repeat_rounds() {
    let a = Netns::new("vfgr-a");
    let b = Netns::new("vfgr-b");
    let (a_if, b_if) = (unique("vfa"), unique("vfb"));
    veth(&a, &a_if, &b, &b_if);
    let a_mac = MacAddr(a.mac(&a_if));
    let a_index = a.ifindex(&a_if);
    let capture = b
        .spawn(|| {
            let proto = i32::from(3u16.to_be());
            let s = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(proto))).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            s
        })
        .join()
        .expect("capture thread");
    let schedule = GarpSchedule {
        repeat: 1,
        interval: Duration::ZERO,
        delay: None,
        refresh: Some(Duration::from_millis(200)),
        refresh_repeat: 3,
    };
    let iface = a_if.clone();
    a.spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let socket = GarpSocket::open(&iface, a_index).expect("open GARP socket");
                let frames = announcement_frames(
                    a_mac,
                    &[IpAddr::V4(VIP4), IpAddr::V6(VIP6)],
                    GarpForm::Request,
                    true,
                )
                .expect("frames");
                let announcer = spawn_announcer(socket, frames, schedule);
                tokio::time::sleep(Duration::from_millis(500)).await;
                announcer.abort();
            });
    })
    .join()
    .expect("announcer thread");
    assert_eq!(
        count_announcements(&capture, a_mac),
        (7, 7),
        "one round at once, then two refreshes of three rounds"
    );
}
