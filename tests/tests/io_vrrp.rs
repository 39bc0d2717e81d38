//! `io::vrrp_socket` on a veth pair between two namespaces: adverts sent by one side arrive at
//! the other with TTL 255, the right ifindex, a verified checksum and the sender's MAC, over
//! IPv4 and IPv6, multicast and unicast; a TTL-64 advert from a plain socket is reported with
//! its TTL, and a bad checksum is reported as such. Needs root.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddrV4},
    sync::mpsc,
    thread::JoinHandle,
    time::Duration,
};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vipflip::{
    io::{
        netlink::Netlink,
        vrrp_socket::{Delivery, ReceivedAdvert, RecvError, SocketConfig, VrrpSocket},
    },
    wire::{
        AdvertError, AdvertRepr, Auth, ChecksumContext, ChecksumForm, Family, MacAddr, Priority,
        V3Ipv4Checksum, VirtualAddrs, VrId, VrrpVersion,
        ip::{IpError, VRRP_GROUP_V4, VRRP_GROUP_V6},
        vrrp::Packet,
    },
};
use vipflip_integration_tests::{Netns, unique, veth};

const A_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// Two namespaces joined by a veth pair, addressed on `192.0.2.0/24` and `2001:db8::/64`, with
/// DAD off so link-local addresses are usable at once.
struct Pair {
    a: Netns,
    b: Netns,
    a_if: String,
    b_if: String,
}

impl Pair {
    fn new() -> Self {
        let a = Netns::new("vfio-a");
        let b = Netns::new("vfio-b");
        for ns in [&a, &b] {
            ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
            ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        }
        let (a_if, b_if) = (unique("vfa"), unique("vfb"));
        veth(&a, &a_if, &b, &b_if);
        a.ip(&["addr", "add", "192.0.2.1/24", "dev", &a_if]);
        b.ip(&["addr", "add", "192.0.2.2/24", "dev", &b_if]);
        a.ip(&["addr", "add", "2001:db8::1/64", "dev", &a_if, "nodad"]);
        b.ip(&["addr", "add", "2001:db8::2/64", "dev", &b_if, "nodad"]);
        Self { a, b, a_if, b_if }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn advert(family: Family) -> AdvertRepr {
    let addrs = match family {
        Family::Ipv4 => VirtualAddrs::V4(vec![Ipv4Addr::new(192, 0, 2, 100)]),
        Family::Ipv6 => VirtualAddrs::V6(vec![
            "fe80::100".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
        ]),
    };
    AdvertRepr {
        version: VrrpVersion::V3,
        vrid: VrId(51),
        priority: Priority(100),
        max_adver_int: Duration::from_millis(100),
        addrs,
        auth: Auth::None,
    }
}

/// Opens a `VrrpSocket` on `iface` inside `ns`, signals `ready`, and returns the first thing
/// it receives (within 5 s).
fn receive_one(
    ns: &Netns,
    iface: &str,
    family: Family,
    delivery: Delivery,
) -> (
    JoinHandle<Result<ReceivedAdvert, RecvError>>,
    mpsc::Receiver<()>,
) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let iface = iface.to_owned();
    let handle = ns.spawn(move || {
        runtime().block_on(async move {
            let netlink = Netlink::new().expect("netlink");
            let link = netlink.link(&iface).await.expect("link lookup");
            let config = SocketConfig::for_link(&link, family, delivery).expect("source address");
            let mut socket = VrrpSocket::open(config).expect("open receiver");
            ready_tx.send(()).expect("signal ready");
            tokio::time::timeout(Duration::from_secs(5), socket.recv(V3Ipv4Checksum::Rfc5798))
                .await
                .expect("nothing received within 5 s")
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver never became ready");
    (handle, ready_rx)
}

/// Sends `advert(family)` from a `VrrpSocket` on `iface` inside `ns` to `dst`; returns the
/// source address it used.
fn send_one(
    ns: &Netns,
    iface: &str,
    family: Family,
    delivery: Delivery,
    dst: IpAddr,
    form: V3Ipv4Checksum,
) -> IpAddr {
    let iface = iface.to_owned();
    ns.spawn(move || {
        runtime().block_on(async move {
            let netlink = Netlink::new().expect("netlink");
            let link = netlink.link(&iface).await.expect("link lookup");
            let config = SocketConfig::for_link(&link, family, delivery).expect("source address");
            let src = config.src;
            let socket = VrrpSocket::open(config).expect("open sender");
            let sent = socket
                .send(&advert(family), dst, form)
                .await
                .expect("send advert");
            assert_eq!(sent, advert(family).buffer_len());
            src
        })
    })
    .join()
    .expect("sender thread")
}

fn check_received(
    pair: &Pair,
    got: &ReceivedAdvert,
    family: Family,
    src: IpAddr,
    dst: IpAddr,
    checksum: ChecksumForm,
) {
    assert_eq!(got.advert, advert(family));
    assert_eq!(got.checksum, checksum);
    assert_eq!(got.src, src);
    assert_eq!(got.dst, dst);
    assert_eq!(got.ttl, 255);
    assert_eq!(got.ifindex, pair.b.ifindex(&pair.b_if));
    assert_eq!(got.src_mac, Some(MacAddr(pair.a.mac(&pair.a_if))));
    let meta = got.rx_meta().expect("rx meta");
    assert_eq!(meta.src, src);
}

fn round_trip(
    family: Family,
    delivery: Delivery,
    dst: IpAddr,
    form: V3Ipv4Checksum,
    checksum: ChecksumForm,
) {
    let pair = Pair::new();
    let (rx, _ready) = receive_one(&pair.b, &pair.b_if, family, delivery);
    let src = send_one(&pair.a, &pair.a_if, family, delivery, dst, form);
    let got = rx
        .join()
        .expect("receiver thread")
        .expect("a well-formed advert");
    check_received(&pair, &got, family, src, dst, checksum);
    match family {
        Family::Ipv4 => assert_eq!(src, IpAddr::V4(A_V4)),
        Family::Ipv6 => assert!(
            matches!(src, IpAddr::V6(a) if a.is_unicast_link_local()),
            "IPv6 adverts come from the link-local address, not {src}"
        ),
    }
}

#[test]
#[ignore = "needs root"]
fn ipv4_multicast_advert_arrives_with_ttl_ifindex_checksum_and_mac() {
    round_trip(
        Family::Ipv4,
        Delivery::Multicast,
        VRRP_GROUP_V4.into(),
        V3Ipv4Checksum::Rfc5798,
        ChecksumForm::V3Ipv4(V3Ipv4Checksum::Rfc5798),
    );
}

#[test]
#[ignore = "needs root"]
fn ipv4_unicast_advert_in_the_rfc9568_form() {
    round_trip(
        Family::Ipv4,
        Delivery::Unicast,
        B_V4.into(),
        V3Ipv4Checksum::Rfc9568,
        ChecksumForm::V3Ipv4(V3Ipv4Checksum::Rfc9568),
    );
}

#[test]
#[ignore = "needs root"]
fn ipv6_multicast_advert_arrives_from_the_link_local_address() {
    round_trip(
        Family::Ipv6,
        Delivery::Multicast,
        VRRP_GROUP_V6.into(),
        V3Ipv4Checksum::Rfc5798,
        ChecksumForm::V3Ipv6,
    );
}

#[test]
#[ignore = "needs root"]
fn ipv6_unicast_advert_arrives() {
    round_trip(
        Family::Ipv6,
        Delivery::Unicast,
        "2001:db8::2".parse().unwrap(),
        V3Ipv4Checksum::Rfc5798,
        ChecksumForm::V3Ipv6,
    );
}

/// Sends a v3 advert to B from a plain raw socket in A (default TTL 64 unless `ttl`), with
/// its checksum spoiled when `corrupt`.
fn send_plain(pair: &Pair, ttl: Option<u32>, corrupt: bool) {
    let a_if = pair.a_if.clone();
    pair.a
        .spawn(move || {
            let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
            socket.bind_device(Some(a_if.as_bytes())).unwrap();
            if let Some(ttl) = ttl {
                socket.set_ttl_v4(ttl).unwrap();
            }
            let repr = advert(Family::Ipv4);
            let mut buf = vec![0; repr.buffer_len()];
            repr.emit(
                &mut Packet::new_unchecked(&mut buf[..], Family::Ipv4),
                &ChecksumContext::ipv4(A_V4, B_V4),
            )
            .unwrap();
            if corrupt {
                buf[7] ^= 0xff;
            }
            socket
                .send_to(&buf, &SockAddr::from(SocketAddrV4::new(B_V4, 0)))
                .unwrap();
        })
        .join()
        .expect("plain sender thread");
}

#[test]
#[ignore = "needs root"]
fn ttl_64_advert_is_reported_with_its_ttl() {
    let pair = Pair::new();
    let (rx, _ready) = receive_one(&pair.b, &pair.b_if, Family::Ipv4, Delivery::Multicast);
    send_plain(&pair, None, false);
    match rx.join().expect("receiver thread") {
        Err(RecvError::Ip {
            src,
            ttl,
            source: IpError::BadTtl { got },
            ..
        }) => {
            assert_eq!(got, 64);
            assert_eq!(ttl, Some(64));
            assert_eq!(src, Some(IpAddr::V4(A_V4)));
        }
        other => panic!("expected a TTL 64 rejection, got {other:?}"),
    }
}

#[test]
#[ignore = "needs root"]
fn bad_checksum_is_reported() {
    let pair = Pair::new();
    let (rx, _ready) = receive_one(&pair.b, &pair.b_if, Family::Ipv4, Delivery::Multicast);
    send_plain(&pair, Some(255), true);
    match rx.join().expect("receiver thread") {
        Err(RecvError::Advert {
            src,
            source: AdvertError::BadChecksum { .. },
            ..
        }) => assert_eq!(src, IpAddr::V4(A_V4)),
        other => panic!("expected a checksum rejection, got {other:?}"),
    }
}
