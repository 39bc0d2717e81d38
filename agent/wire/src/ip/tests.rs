//! The IP envelope of keepalived 2.2.7's adverts: parsed, and rebuilt byte for byte.

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::vrrp::{Auth, Priority, VirtualAddrs, VrId, VrrpVersion};

static V2: &[u8] = include_bytes!("../fixtures/keepalived-v2-ipv4.bin");
static V3_V4: &[u8] = include_bytes!("../fixtures/keepalived-v3-ipv4-rfc5798.bin");
static V3_V4_9568: &[u8] = include_bytes!("../fixtures/derived-v3-ipv4-rfc9568.bin");
static UNICAST: &[u8] = include_bytes!("../fixtures/keepalived-v3-ipv4-unicast.bin");
static V3_V6: &[u8] = include_bytes!("../fixtures/keepalived-v3-ipv6.bin");
static V3_V6_PRIO0: &[u8] = include_bytes!("../fixtures/keepalived-v3-ipv6-prio0.bin");
static V2_PASS_PRIO0: &[u8] = include_bytes!("../fixtures/keepalived-v2-ipv4-pass-prio0.bin");

const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SRC6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a01);
/// keepalived's IPv6 adverts carry this flow label (fixtures/README.md).
const FLOW: u32 = 0x3a9b1;

fn parsed(bytes: &[u8]) -> AdvertRepr {
    let rx = if bytes[0] >> 4 == 4 {
        parse_ipv4(bytes)
    } else {
        parse_ipv6(bytes)
    };
    rx.unwrap().advert(V3Ipv4Checksum::Rfc5798).unwrap().0
}

/// Rebuilds an IPv4 header checksum after a test edits the header.
fn refill_ipv4_checksum(bytes: &mut [u8]) {
    let header = usize::from(bytes[0] & 0x0f) * 4;
    bytes[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum::finish(checksum::sum(&bytes[..header]));
    bytes[10..12].copy_from_slice(&sum.to_be_bytes());
}

fn edited_v4(edit: impl FnOnce(&mut Vec<u8>)) -> Result<(), IpError> {
    let mut bytes = V3_V4.to_vec();
    edit(&mut bytes);
    refill_ipv4_checksum(&mut bytes);
    parse_ipv4(&bytes).map(|_| ())
}

#[test]
fn parses_ipv4_multicast() {
    let rx = parse_ipv4(V3_V4).unwrap();
    assert_eq!(rx.src(), IpAddr::V4(SRC4));
    assert_eq!(rx.dst(), IpAddr::V4(VRRP_GROUP_V4));
    assert_eq!(rx.hop_limit(), 255);
    assert_eq!(rx.family(), Family::Ipv4);
    assert_eq!(rx.payload(), &V3_V4[20..]);
    let (repr, form) = rx.advert(V3Ipv4Checksum::Rfc9568).unwrap();
    assert_eq!(form, ChecksumForm::V3Ipv4(V3Ipv4Checksum::Rfc5798));
    assert_eq!(repr.vrid, VrId(3));
}

#[test]
fn parses_both_v3_ipv4_forms() {
    let rx = parse_ipv4(V3_V4_9568).unwrap();
    let (_, form) = rx.advert(V3Ipv4Checksum::Rfc5798).unwrap();
    assert_eq!(form, ChecksumForm::V3Ipv4(V3Ipv4Checksum::Rfc9568));
}

#[test]
fn parses_ipv4_unicast() {
    let rx = parse_ipv4(UNICAST).unwrap();
    assert_eq!(rx.dst(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    assert_eq!(rx.advert(V3Ipv4Checksum::Rfc5798).unwrap().0.vrid, VrId(5));
}

#[test]
fn parses_ipv6() {
    let rx = parse_ipv6(V3_V6).unwrap();
    assert_eq!(rx.src(), IpAddr::V6(SRC6));
    assert_eq!(rx.dst(), IpAddr::V6(VRRP_GROUP_V6));
    assert_eq!(rx.payload(), &V3_V6[40..]);
    assert_eq!(
        rx.advert(V3Ipv4Checksum::Rfc5798).unwrap().1,
        ChecksumForm::V3Ipv6
    );
}

#[test]
fn ipv6_socket_payload() {
    let rx = from_ipv6_socket(SRC6, VRRP_GROUP_V6, 255, &V3_V6[40..]).unwrap();
    assert_eq!(rx, parse_ipv6(V3_V6).unwrap());
}

#[test]
fn ignores_link_padding() {
    let mut bytes = V3_V4.to_vec();
    bytes.extend_from_slice(&[0; 6]);
    assert_eq!(parse_ipv4(&bytes).unwrap().payload(), &V3_V4[20..]);
    let mut bytes = V3_V6.to_vec();
    bytes.extend_from_slice(&[0; 6]);
    assert_eq!(parse_ipv6(&bytes).unwrap().payload(), &V3_V6[40..]);
}

#[test]
fn skips_ipv4_options() {
    // A header with one 4-byte option (a router-alert-like no-op: four NOPs).
    let mut bytes = V3_V4[..20].to_vec();
    bytes[0] = 0x46;
    bytes.extend_from_slice(&[1, 1, 1, 1]);
    bytes.extend_from_slice(&V3_V4[20..]);
    bytes[2..4].copy_from_slice(&44_u16.to_be_bytes());
    refill_ipv4_checksum(&mut bytes);
    assert_eq!(parse_ipv4(&bytes).unwrap().payload(), &V3_V4[20..]);
}

// ---- one negative test per rule ----

#[test]
fn ipv4_too_short() {
    assert_eq!(
        parse_ipv4(&V3_V4[..19]),
        Err(IpError::TooShort { need: 20, got: 19 })
    );
}

#[test]
fn ipv4_bad_version() {
    assert_eq!(
        edited_v4(|b| b[0] = 0x65),
        Err(IpError::BadVersion { want: 4, got: 6 })
    );
}

#[test]
fn ipv4_bad_header_len() {
    assert_eq!(edited_v4(|b| b[0] = 0x44), Err(IpError::BadHeaderLen(4)));
}

#[test]
fn ipv4_header_longer_than_buffer() {
    // IHL 15 = 60 bytes, the buffer has 40 (header checksum not reached).
    let mut bytes = V3_V4.to_vec();
    bytes[0] = 0x4f;
    assert_eq!(
        parse_ipv4(&bytes),
        Err(IpError::TooShort { need: 60, got: 40 })
    );
}

#[test]
fn ipv4_bad_header_checksum() {
    let mut bytes = V3_V4.to_vec();
    bytes[8] = 254; // TTL
    assert_eq!(
        parse_ipv4(&bytes),
        Err(IpError::BadHeaderChecksum {
            expected: 0x1991,
            got: 0x1891
        })
    );
}

#[test]
fn ipv4_total_len_below_header() {
    let err = edited_v4(|b| b[2..4].copy_from_slice(&19_u16.to_be_bytes()));
    assert_eq!(
        err,
        Err(IpError::BadTotalLen {
            total: 19,
            header: 20
        })
    );
}

#[test]
fn ipv4_truncated_payload() {
    let err = edited_v4(|b| b.truncate(39));
    assert_eq!(err, Err(IpError::TooShort { need: 40, got: 39 }));
}

#[test]
fn ipv4_fragment() {
    let err = edited_v4(|b| b[6] = 0x20); // more fragments
    assert_eq!(
        err,
        Err(IpError::Fragment {
            offset: 0,
            more: true
        })
    );
    let err = edited_v4(|b| b[7] = 0x03);
    assert_eq!(
        err,
        Err(IpError::Fragment {
            offset: 3,
            more: false
        })
    );
}

#[test]
fn ipv4_dont_fragment_is_fine() {
    assert_eq!(edited_v4(|b| b[6] = 0x40), Ok(()));
}

#[test]
fn ipv4_bad_protocol() {
    // 51 is AH: what an RFC 2338 AH-authenticated advert arrives as.
    assert_eq!(edited_v4(|b| b[9] = 51), Err(IpError::BadProtocol(51)));
}

#[test]
fn ipv4_bad_ttl() {
    assert_eq!(edited_v4(|b| b[8] = 64), Err(IpError::BadTtl { got: 64 }));
}

#[test]
fn ipv6_too_short() {
    assert_eq!(
        parse_ipv6(&V3_V6[..39]),
        Err(IpError::TooShort { need: 40, got: 39 })
    );
    assert_eq!(
        parse_ipv6(&V3_V6[..79]),
        Err(IpError::TooShort { need: 80, got: 79 })
    );
}

#[test]
fn ipv6_bad_version() {
    let mut bytes = V3_V6.to_vec();
    bytes[0] = 0x4c;
    assert_eq!(
        parse_ipv6(&bytes),
        Err(IpError::BadVersion { want: 6, got: 4 })
    );
}

#[test]
fn ipv6_bad_next_header() {
    let mut bytes = V3_V6.to_vec();
    bytes[6] = 0; // hop-by-hop options: not followed
    assert_eq!(parse_ipv6(&bytes), Err(IpError::BadProtocol(0)));
}

#[test]
fn ipv6_bad_hop_limit() {
    let mut bytes = V3_V6.to_vec();
    bytes[7] = 1;
    assert_eq!(parse_ipv6(&bytes), Err(IpError::BadTtl { got: 1 }));
    assert_eq!(
        from_ipv6_socket(SRC6, VRRP_GROUP_V6, 254, &V3_V6[40..]),
        Err(IpError::BadTtl { got: 254 })
    );
}

// ---- whole-packet emit against keepalived ----

fn emit_whole(repr: &AdvertRepr, ip: &AdvertIpRepr) -> Vec<u8> {
    let mut bytes = vec![0xa5; advert_packet_len(repr) + 3];
    let len = emit_advert(repr, ip, &mut bytes).unwrap();
    assert_eq!(len, advert_packet_len(repr));
    assert_eq!(&bytes[len..], [0xa5; 3], "wrote past the packet");
    bytes.truncate(len);
    bytes
}

#[test]
fn emits_keepalived_ipv4_multicast() {
    for (golden, ident) in [(V2, 1), (V3_V4, 1), (V2_PASS_PRIO0, 5)] {
        let ip = AdvertIpRepr {
            ident,
            ..AdvertIpRepr::multicast(SRC4.into())
        };
        assert_eq!(emit_whole(&parsed(golden), &ip), golden);
    }
}

#[test]
fn emits_rfc9568_form_on_request() {
    let ctx = ChecksumContext::ipv4(SRC4, VRRP_GROUP_V4).with_v3_ipv4_form(V3Ipv4Checksum::Rfc9568);
    let ip = AdvertIpRepr {
        ctx,
        ident: 1,
        flow_label: 0,
    };
    assert_eq!(emit_whole(&parsed(V3_V4), &ip), V3_V4_9568);
}

#[test]
fn emits_keepalived_ipv4_unicast() {
    let ctx = ChecksumContext::ipv4(SRC4, Ipv4Addr::new(192, 0, 2, 2));
    let ip = AdvertIpRepr {
        ctx,
        ident: 1,
        flow_label: 0,
    };
    assert_eq!(emit_whole(&parsed(UNICAST), &ip), UNICAST);
}

#[test]
fn emits_keepalived_ipv6() {
    for golden in [V3_V6, V3_V6_PRIO0] {
        let ip = AdvertIpRepr {
            flow_label: FLOW,
            ..AdvertIpRepr::multicast(SRC6.into())
        };
        assert_eq!(emit_whole(&parsed(golden), &ip), golden);
    }
}

#[test]
fn emit_refuses_small_buffer_and_family_mismatch() {
    let repr = parsed(V3_V4);
    let mut small = [0; 39];
    let ip = AdvertIpRepr::multicast(SRC4.into());
    assert_eq!(
        emit_advert(&repr, &ip, &mut small),
        Err(ReprError::BufferTooSmall { need: 40, got: 39 })
    );
    let mut big = [0; 100];
    let ip6 = AdvertIpRepr::multicast(SRC6.into());
    assert_eq!(
        emit_advert(&repr, &ip6, &mut big),
        Err(ReprError::FamilyMismatch {
            repr: Family::Ipv4,
            context: Family::Ipv6
        })
    );
}

#[test]
fn largest_ipv6_advert_fits_the_length_field() {
    let repr = AdvertRepr {
        version: VrrpVersion::V3,
        vrid: VrId(1),
        priority: Priority(100),
        max_adver_int: Duration::from_secs(1),
        addrs: VirtualAddrs::V6(vec![SRC6; 255]),
        auth: Auth::None,
    };
    let bytes = emit_whole(&repr, &AdvertIpRepr::multicast(SRC6.into()));
    assert_eq!(
        parse_ipv6(&bytes)
            .unwrap()
            .advert(V3Ipv4Checksum::Rfc5798)
            .unwrap()
            .0,
        repr
    );
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        let _ = parse_ipv4(&bytes).map(|rx| rx.advert(V3Ipv4Checksum::Rfc5798));
        let _ = parse_ipv6(&bytes).map(|rx| rx.advert(V3Ipv4Checksum::Rfc9568));
    }
}
