//! Golden adverts from keepalived 2.2.7 tested four ways (deconstruct, construct, parse, emit),
//! one negative test per acceptance rule, and property tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

/// One captured advert: the raw IP packet, what it should parse to, and its IP envelope.
struct Golden {
    name: &'static str,
    /// The whole IP packet as captured (fixtures/README.md).
    ip: &'static [u8],
    ctx: ChecksumContext,
    repr: AdvertRepr,
    form: ChecksumForm,
}

impl Golden {
    fn header_len(&self) -> usize {
        match self.ctx.family() {
            Family::Ipv4 => 20,
            Family::Ipv6 => 40,
        }
    }

    /// The VRRP message alone.
    fn vrrp(&self) -> &'static [u8] {
        &self.ip[self.header_len()..]
    }

    fn packet(&self) -> Packet<&'static [u8]> {
        Packet::new_unchecked(self.vrrp(), self.ctx.family())
    }

    /// The context that sends this golden's checksum form.
    fn send_ctx(&self) -> ChecksumContext {
        match self.form {
            ChecksumForm::V3Ipv4(form) => self.ctx.with_v3_ipv4_form(form),
            _ => self.ctx,
        }
    }
}

const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const SRC6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a01);
const GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

fn v4(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

fn v6(last: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, last)
}

#[expect(
    clippy::too_many_lines,
    reason = "one table of every fixture reads best in one place"
)]
fn goldens() -> Vec<Golden> {
    let multicast4 = ChecksumContext::ipv4(SRC4, GROUP4);
    let v2 = |vrid, prio, secs, addrs: Vec<u8>, auth| AdvertRepr {
        version: VrrpVersion::V2,
        vrid: VrId(vrid),
        priority: Priority(prio),
        max_adver_int: Duration::from_secs(secs),
        addrs: VirtualAddrs::V4(addrs.into_iter().map(v4).collect()),
        auth,
    };
    let v3_4 = |vrid, prio, cs: u64, addrs: Vec<u8>| AdvertRepr {
        version: VrrpVersion::V3,
        vrid: VrId(vrid),
        priority: Priority(prio),
        max_adver_int: Duration::from_millis(cs * 10),
        addrs: VirtualAddrs::V4(addrs.into_iter().map(v4).collect()),
        auth: Auth::None,
    };
    let v3_6 = |prio| AdvertRepr {
        version: VrrpVersion::V3,
        vrid: VrId(4),
        priority: Priority(prio),
        max_adver_int: Duration::from_millis(500),
        addrs: VirtualAddrs::V6(vec![v6(0x104), v6(0x105)]),
        auth: Auth::None,
    };
    let pass = Auth::SimpleText(*b"vfw-pw\0\0");
    let rfc5798 = ChecksumForm::V3Ipv4(V3Ipv4Checksum::Rfc5798);
    vec![
        Golden {
            name: "v2",
            ip: include_bytes!("../fixtures/keepalived-v2-ipv4.bin"),
            ctx: multicast4,
            repr: v2(1, 100, 1, vec![101, 102], Auth::None),
            form: ChecksumForm::V2,
        },
        Golden {
            name: "v2 priority 0",
            ip: include_bytes!("../fixtures/keepalived-v2-ipv4-prio0.bin"),
            ctx: multicast4,
            repr: v2(1, 0, 1, vec![101, 102], Auth::None),
            form: ChecksumForm::V2,
        },
        Golden {
            name: "v2 auth PASS",
            ip: include_bytes!("../fixtures/keepalived-v2-ipv4-pass.bin"),
            ctx: multicast4,
            repr: v2(2, 150, 3, vec![103], pass),
            form: ChecksumForm::V2,
        },
        Golden {
            name: "v2 auth PASS priority 0",
            ip: include_bytes!("../fixtures/keepalived-v2-ipv4-pass-prio0.bin"),
            ctx: multicast4,
            repr: v2(2, 0, 3, vec![103], pass),
            form: ChecksumForm::V2,
        },
        Golden {
            name: "v3/IPv4 RFC 5798",
            ip: include_bytes!("../fixtures/keepalived-v3-ipv4-rfc5798.bin"),
            ctx: multicast4,
            repr: v3_4(3, 200, 100, vec![104, 105, 106]),
            form: rfc5798,
        },
        Golden {
            name: "v3/IPv4 RFC 5798 priority 0",
            ip: include_bytes!("../fixtures/keepalived-v3-ipv4-rfc5798-prio0.bin"),
            ctx: multicast4,
            repr: v3_4(3, 0, 100, vec![104, 105, 106]),
            form: rfc5798,
        },
        Golden {
            name: "v3/IPv4 RFC 9568 (derived)",
            ip: include_bytes!("../fixtures/derived-v3-ipv4-rfc9568.bin"),
            ctx: multicast4,
            repr: v3_4(3, 200, 100, vec![104, 105, 106]),
            form: ChecksumForm::V3Ipv4(V3Ipv4Checksum::Rfc9568),
        },
        Golden {
            name: "v3/IPv4 unicast",
            ip: include_bytes!("../fixtures/keepalived-v3-ipv4-unicast.bin"),
            ctx: ChecksumContext::ipv4(SRC4, PEER4),
            repr: v3_4(5, 100, 200, vec![107]),
            form: rfc5798,
        },
        Golden {
            name: "v3/IPv4 unicast priority 0",
            ip: include_bytes!("../fixtures/keepalived-v3-ipv4-unicast-prio0.bin"),
            ctx: ChecksumContext::ipv4(SRC4, PEER4),
            repr: v3_4(5, 0, 200, vec![107]),
            form: rfc5798,
        },
        Golden {
            name: "v3/IPv6",
            ip: include_bytes!("../fixtures/keepalived-v3-ipv6.bin"),
            ctx: ChecksumContext::ipv6(SRC6, GROUP6),
            repr: v3_6(254),
            form: ChecksumForm::V3Ipv6,
        },
        Golden {
            name: "v3/IPv6 priority 0",
            ip: include_bytes!("../fixtures/keepalived-v3-ipv6-prio0.bin"),
            ctx: ChecksumContext::ipv6(SRC6, GROUP6),
            repr: v3_6(0),
            form: ChecksumForm::V3Ipv6,
        },
    ]
}

fn golden(name: &str) -> Golden {
    goldens()
        .into_iter()
        .find(|g| g.name == name)
        .expect("no such golden")
}

// ---- four ways ----

#[test]
fn deconstruct_v2() {
    let g = golden("v2 auth PASS");
    let p = Packet::new_checked(g.vrrp(), Family::Ipv4).unwrap();
    assert_eq!((p.version(), p.msg_type()), (2, 1));
    assert_eq!((p.vrid(), p.priority(), p.addr_count()), (2, 150, 1));
    assert_eq!((p.v2_auth_type(), p.v2_adver_int()), (1, 3));
    assert_eq!(p.checksum(), 0x2786);
    assert_eq!(p.ipv4_addr(0), v4(103));
    assert_eq!(p.v2_auth_data(), b"vfw-pw\0\0");
    assert_eq!(p.verify_checksum(&g.ctx), Ok(ChecksumForm::V2));
}

#[test]
fn deconstruct_v3_ipv4() {
    let g = golden("v3/IPv4 RFC 5798");
    let p = Packet::new_checked(g.vrrp(), Family::Ipv4).unwrap();
    assert_eq!((p.version(), p.msg_type()), (3, 1));
    assert_eq!((p.vrid(), p.priority(), p.addr_count()), (3, 200, 3));
    assert_eq!((p.v3_reserved(), p.v3_max_adver_int()), (0, 100));
    assert_eq!(p.checksum(), 0x1cbf);
    assert_eq!(
        [p.ipv4_addr(0), p.ipv4_addr(1), p.ipv4_addr(2)],
        [v4(104), v4(105), v4(106)]
    );
}

#[test]
fn deconstruct_v3_ipv6() {
    let g = golden("v3/IPv6");
    let p = Packet::new_checked(g.vrrp(), Family::Ipv6).unwrap();
    assert_eq!((p.version(), p.msg_type()), (3, 1));
    assert_eq!((p.vrid(), p.priority(), p.addr_count()), (4, 254, 2));
    assert_eq!(p.v3_max_adver_int(), 50);
    assert_eq!(p.checksum(), 0x6c1a);
    assert_eq!([p.ipv6_addr(0), p.ipv6_addr(1)], [v6(0x104), v6(0x105)]);
}

#[test]
fn construct_all_goldens() {
    for g in goldens() {
        let mut bytes = vec![0xa5; g.vrrp().len()];
        let mut p = Packet::new_unchecked(&mut bytes[..], g.ctx.family());
        p.set_version(g.repr.version.number());
        p.set_msg_type(1);
        p.set_vrid(g.repr.vrid.0);
        p.set_priority(g.repr.priority.0);
        p.set_addr_count(u8::try_from(g.repr.addrs.len()).unwrap());
        match &g.repr.addrs {
            VirtualAddrs::V4(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, a)| p.set_ipv4_addr(i, *a)),
            VirtualAddrs::V6(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, a)| p.set_ipv6_addr(i, a)),
        }
        match (g.repr.version, g.repr.auth) {
            (VrrpVersion::V3, _) => {
                let cs = u16::try_from(g.repr.max_adver_int.as_millis() / 10).unwrap();
                p.set_v3_max_adver_int(cs);
            }
            (VrrpVersion::V2, auth) => {
                p.set_v2_adver_int(u8::try_from(g.repr.max_adver_int.as_secs()).unwrap());
                let (kind, data) = match auth {
                    Auth::None => (0, [0; 8]),
                    Auth::SimpleText(t) => (1, t),
                };
                p.set_v2_auth_type(kind);
                p.v2_auth_data_mut().copy_from_slice(&data);
            }
        }
        p.fill_checksum(&g.send_ctx());
        assert_eq!(bytes, g.vrrp(), "{}", g.name);
    }
}

#[test]
fn parse_all_goldens() {
    for g in goldens() {
        // Whichever v3/IPv4 form the receiver prefers, both are accepted and named.
        for pref in [V3Ipv4Checksum::Rfc5798, V3Ipv4Checksum::Rfc9568] {
            let ctx = g.ctx.with_v3_ipv4_form(pref);
            let parsed = AdvertRepr::parse_with_form(&g.packet(), &ctx);
            assert_eq!(
                parsed,
                Ok((g.repr.clone(), g.form)),
                "{} (preferring {pref:?})",
                g.name
            );
        }
        assert_eq!(
            AdvertRepr::parse(&g.packet(), &g.ctx),
            Ok(g.repr.clone()),
            "{}",
            g.name
        );
    }
}

#[test]
fn emit_all_goldens() {
    for g in goldens() {
        assert_eq!(g.repr.buffer_len(), g.vrrp().len(), "{}", g.name);
        let mut bytes = vec![0xa5; g.vrrp().len() + 4];
        let mut p = Packet::new_unchecked(&mut bytes[..], g.ctx.family());
        g.repr.emit(&mut p, &g.send_ctx()).unwrap();
        assert_eq!(&bytes[..g.vrrp().len()], g.vrrp(), "{}", g.name);
        assert_eq!(
            &bytes[g.vrrp().len()..],
            [0xa5; 4],
            "{}: wrote past the advert",
            g.name
        );
    }
}

#[test]
fn default_send_form_is_keepalived_s() {
    // keepalived 2.2.7 sends the RFC 5798 form; a default context must reproduce it.
    let g = golden("v3/IPv4 RFC 5798");
    assert_eq!(V3Ipv4Checksum::default(), V3Ipv4Checksum::Rfc5798);
    let mut bytes = vec![0; g.repr.buffer_len()];
    g.repr
        .emit(
            &mut Packet::new_unchecked(&mut bytes[..], Family::Ipv4),
            &ChecksumContext::ipv4(SRC4, GROUP4),
        )
        .unwrap();
    assert_eq!(bytes, g.vrrp());
}

#[test]
fn unicast_pseudo_header_uses_the_unicast_destination() {
    // The same advert checked against the multicast group fails in the RFC 5798 form: the
    // pseudo-header must carry the real destination.
    let g = golden("v3/IPv4 unicast");
    let wrong = ChecksumContext::ipv4(SRC4, GROUP4);
    assert!(matches!(
        g.packet().verify_checksum(&wrong),
        Err(AdvertError::BadChecksum { .. })
    ));
    assert_eq!(g.packet().verify_checksum(&g.ctx), Ok(g.form));
}

// ---- one negative test per acceptance rule ----

/// The v3/IPv4 golden with `edit` applied and the checksum refilled, parsed.
fn parse_edited(
    name: &str,
    edit: impl FnOnce(&mut Packet<&mut [u8]>),
) -> Result<AdvertRepr, AdvertError> {
    let g = golden(name);
    let mut bytes = g.vrrp().to_vec();
    let mut p = Packet::new_unchecked(&mut bytes[..], g.ctx.family());
    edit(&mut p);
    p.fill_checksum(&g.send_ctx());
    AdvertRepr::parse(&Packet::new_unchecked(&bytes[..], g.ctx.family()), &g.ctx)
}

#[test]
fn rejects_short_header() {
    let g = golden("v3/IPv4 RFC 5798");
    let p = Packet::new_unchecked(&g.vrrp()[..7], Family::Ipv4);
    assert_eq!(
        AdvertRepr::parse(&p, &g.ctx),
        Err(AdvertError::TooShort { need: 8, got: 7 })
    );
    assert_eq!(
        p.check_len(),
        Err(AdvertError::TooShort { need: 8, got: 7 })
    );
    assert_eq!(
        p.verify_checksum(&g.ctx),
        Err(AdvertError::TooShort { need: 8, got: 7 })
    );
}

#[test]
fn rejects_missing_addresses() {
    let g = golden("v3/IPv4 RFC 5798");
    let p = Packet::new_unchecked(&g.vrrp()[..19], Family::Ipv4);
    assert_eq!(
        AdvertRepr::parse(&p, &g.ctx),
        Err(AdvertError::TooShort { need: 20, got: 19 })
    );
    // The same bytes read as IPv6 need 8 + 3 x 16.
    assert_eq!(
        Packet::new_checked(g.vrrp(), Family::Ipv6),
        Err(AdvertError::TooShort { need: 56, got: 20 })
    );
}

#[test]
fn rejects_missing_v2_auth_data() {
    let g = golden("v2");
    let p = Packet::new_unchecked(&g.vrrp()[..23], Family::Ipv4);
    assert_eq!(
        AdvertRepr::parse(&p, &g.ctx),
        Err(AdvertError::TooShort { need: 24, got: 23 })
    );
}

#[test]
fn rejects_bad_version() {
    for version in [0, 1, 4, 15] {
        let err = parse_edited("v3/IPv4 RFC 5798", |p| p.set_version(version));
        assert_eq!(err, Err(AdvertError::BadVersion(version)));
    }
}

#[test]
fn rejects_bad_type() {
    let err = parse_edited("v3/IPv4 RFC 5798", |p| p.set_msg_type(2));
    assert_eq!(err, Err(AdvertError::BadType(2)));
}

#[test]
fn rejects_v2_over_ipv6() {
    let err = parse_edited("v3/IPv6", |p| p.set_version(2));
    assert_eq!(err, Err(AdvertError::Ipv6InV2));
}

#[test]
fn rejects_longest_v2_over_ipv6() {
    // The largest input the length rules allow (count 255 of 16 bytes, auth data, trailing
    // bytes) is refused as v2-over-IPv6 before any address is read.
    let mut bytes = vec![0; 8 + 255 * 16 + 8 + 2];
    let mut p = Packet::new_unchecked(&mut bytes[..], Family::Ipv6);
    p.set_version(2);
    p.set_msg_type(1);
    p.set_addr_count(255);
    let p = Packet::new_checked(&bytes[..], Family::Ipv6).unwrap();
    let ctx = ChecksumContext::ipv6(SRC6, GROUP6);
    assert_eq!(AdvertRepr::parse(&p, &ctx), Err(AdvertError::Ipv6InV2));
}

#[test]
fn rejects_family_mismatch() {
    let g = golden("v3/IPv4 RFC 5798");
    let ctx6 = ChecksumContext::ipv6(SRC6, GROUP6);
    assert_eq!(
        AdvertRepr::parse(&g.packet(), &ctx6),
        Err(AdvertError::FamilyMismatch {
            packet: Family::Ipv4,
            context: Family::Ipv6
        })
    );
}

#[test]
fn rejects_bad_checksum() {
    for g in goldens() {
        let mut bytes = g.vrrp().to_vec();
        bytes[2] ^= 0x01; // priority: the checksum no longer matches in any form
        let p = Packet::new_unchecked(&bytes[..], g.ctx.family());
        assert!(
            matches!(AdvertRepr::parse(&p, &g.ctx), Err(AdvertError::BadChecksum { got, .. }) if got == g.packet().checksum()),
            "{}",
            g.name
        );
    }
    // The expected value is the preferred form's.
    let g = golden("v3/IPv4 RFC 5798");
    let mut bytes = g.vrrp().to_vec();
    bytes[6..8].copy_from_slice(&[0, 0]);
    let p = Packet::new_unchecked(&bytes[..], Family::Ipv4);
    assert_eq!(
        AdvertRepr::parse(&p, &g.ctx),
        Err(AdvertError::BadChecksum {
            expected: 0x1cbf,
            got: 0
        })
    );
}

#[test]
fn rejects_vrid_zero() {
    let err = parse_edited("v3/IPv4 RFC 5798", |p| p.set_vrid(0));
    assert_eq!(err, Err(AdvertError::ZeroVrId));
}

#[test]
fn rejects_count_zero() {
    // RFC 9568 erratum 8299.
    let err = parse_edited("v3/IPv4 RFC 5798", |p| p.set_addr_count(0));
    assert_eq!(err, Err(AdvertError::ZeroCount));
}

#[test]
fn rejects_interval_zero() {
    // RFC 9568 erratum 8301; a v2 interval of 0 s is rejected for the same reason.
    let err = parse_edited("v3/IPv4 RFC 5798", |p| p.set_v3_max_adver_int(0));
    assert_eq!(err, Err(AdvertError::ZeroInterval));
    let err = parse_edited("v2", |p| p.set_v2_adver_int(0));
    assert_eq!(err, Err(AdvertError::ZeroInterval));
}

#[test]
fn rejects_auth_ah() {
    let err = parse_edited("v2", |p| p.set_v2_auth_type(2));
    assert_eq!(err, Err(AdvertError::AuthAh));
    assert!(AdvertError::AuthAh.to_string().contains("RFC 3768"));
}

#[test]
fn rejects_unknown_auth() {
    for kind in [3, 254, 255] {
        let err = parse_edited("v2", |p| p.set_v2_auth_type(kind));
        assert_eq!(err, Err(AdvertError::UnknownAuth(kind)));
    }
}

// ---- lenient where the RFCs say so ----

#[test]
fn ignores_reserved_bits() {
    // RFC 9568 §5.2.6: reserved bits are ignored on receipt.
    let g = golden("v3/IPv4 RFC 5798");
    let mut bytes = g.vrrp().to_vec();
    bytes[4] |= 0xf0;
    Packet::new_unchecked(&mut bytes[..], Family::Ipv4).fill_checksum(&g.ctx);
    let p = Packet::new_unchecked(&bytes[..], Family::Ipv4);
    assert_eq!((p.v3_reserved(), p.v3_max_adver_int()), (0xf, 100));
    assert_eq!(AdvertRepr::parse(&p, &g.ctx), Ok(g.repr));
}

#[test]
fn accepts_trailing_bytes_covered_by_the_checksum() {
    let g = golden("v3/IPv6");
    let mut bytes = g.vrrp().to_vec();
    bytes.extend_from_slice(&[0, 0]);
    let mut p = Packet::new_unchecked(&mut bytes[..], Family::Ipv6);
    p.fill_checksum(&g.ctx);
    let p = Packet::new_unchecked(&bytes[..], Family::Ipv6);
    assert_eq!(AdvertRepr::parse(&p, &g.ctx), Ok(g.repr));
}

#[test]
fn v2_auth_none_ignores_auth_data() {
    // RFC 3768 §5.3.6.1: with no authentication the data is ignored on receipt.
    let g = golden("v2");
    let parsed = parse_edited("v2", |p| p.v2_auth_data_mut().copy_from_slice(b"ignored!"));
    assert_eq!(parsed, Ok(g.repr));
}

// ---- emit refusals ----

fn sample(version: VrrpVersion) -> AdvertRepr {
    AdvertRepr {
        version,
        vrid: VrId(7),
        priority: Priority(100),
        max_adver_int: Duration::from_secs(1),
        addrs: VirtualAddrs::V4(vec![v4(9)]),
        auth: Auth::None,
    }
}

fn emit_err(repr: &AdvertRepr) -> ReprError {
    let mut bytes = vec![0; 4096 + 16];
    let ctx = ChecksumContext::ipv4(SRC4, GROUP4);
    repr.emit(
        &mut Packet::new_unchecked(&mut bytes[..], Family::Ipv4),
        &ctx,
    )
    .unwrap_err()
}

#[test]
fn emit_refuses_vrid_zero() {
    let repr = AdvertRepr {
        vrid: VrId(0),
        ..sample(VrrpVersion::V3)
    };
    assert_eq!(emit_err(&repr), ReprError::ZeroVrId);
}

#[test]
fn emit_refuses_bad_counts() {
    let none = AdvertRepr {
        addrs: VirtualAddrs::V4(vec![]),
        ..sample(VrrpVersion::V3)
    };
    assert_eq!(emit_err(&none), ReprError::AddrCount { got: 0 });
    let many = AdvertRepr {
        addrs: VirtualAddrs::V4(vec![v4(1); 256]),
        ..sample(VrrpVersion::V3)
    };
    assert_eq!(emit_err(&many), ReprError::AddrCount { got: 256 });
}

#[test]
fn emit_refuses_unrepresentable_intervals() {
    for (version, ms) in [
        (VrrpVersion::V3, 0),
        (VrrpVersion::V3, 15),
        (VrrpVersion::V3, 40_960),
        (VrrpVersion::V2, 0),
        (VrrpVersion::V2, 1_500),
        (VrrpVersion::V2, 256_000),
    ] {
        let got = Duration::from_millis(ms);
        let repr = AdvertRepr {
            max_adver_int: got,
            ..sample(version)
        };
        assert_eq!(
            emit_err(&repr),
            ReprError::Interval { got },
            "{version:?} {ms} ms"
        );
    }
    // The extremes that fit.
    for (version, ms) in [
        (VrrpVersion::V3, 10),
        (VrrpVersion::V3, 40_950),
        (VrrpVersion::V2, 255_000),
    ] {
        let repr = AdvertRepr {
            max_adver_int: Duration::from_millis(ms),
            ..sample(version)
        };
        assert_eq!(repr.validate(), Ok(()), "{version:?} {ms} ms");
    }
}

#[test]
fn emit_refuses_v2_ipv6() {
    let repr = AdvertRepr {
        addrs: VirtualAddrs::V6(vec![v6(1)]),
        ..sample(VrrpVersion::V2)
    };
    assert_eq!(repr.validate(), Err(ReprError::Ipv6InV2));
}

#[test]
fn emit_refuses_auth_in_v3() {
    let repr = AdvertRepr {
        auth: Auth::SimpleText(*b"password"),
        ..sample(VrrpVersion::V3)
    };
    assert_eq!(emit_err(&repr), ReprError::AuthInV3);
}

#[test]
fn emit_refuses_family_mismatch() {
    let repr = sample(VrrpVersion::V3);
    let mut bytes = [0; 12];
    let ctx6 = ChecksumContext::ipv6(SRC6, GROUP6);
    let err = repr.emit(
        &mut Packet::new_unchecked(&mut bytes[..], Family::Ipv4),
        &ctx6,
    );
    assert_eq!(
        err,
        Err(ReprError::FamilyMismatch {
            repr: Family::Ipv4,
            context: Family::Ipv6
        })
    );
    let ctx4 = ChecksumContext::ipv4(SRC4, GROUP4);
    let err = repr.emit(
        &mut Packet::new_unchecked(&mut bytes[..], Family::Ipv6),
        &ctx4,
    );
    assert_eq!(
        err,
        Err(ReprError::FamilyMismatch {
            repr: Family::Ipv4,
            context: Family::Ipv6
        })
    );
}

#[test]
fn emit_refuses_small_buffer() {
    let repr = sample(VrrpVersion::V2);
    let mut bytes = [0xa5; 19];
    let ctx = ChecksumContext::ipv4(SRC4, GROUP4);
    let err = repr.emit(
        &mut Packet::new_unchecked(&mut bytes[..], Family::Ipv4),
        &ctx,
    );
    assert_eq!(err, Err(ReprError::BufferTooSmall { need: 20, got: 19 }));
    assert_eq!(bytes, [0xa5; 19], "nothing written on refusal");
}

#[test]
fn context_from_ip_addrs() {
    let ctx = ChecksumContext::new(IpAddr::V4(SRC4), IpAddr::V4(PEER4)).unwrap();
    assert_eq!(
        (ctx.src(), ctx.dst(), ctx.family()),
        (SRC4.into(), PEER4.into(), Family::Ipv4)
    );
    assert_eq!(
        ChecksumContext::new(IpAddr::V4(SRC4), IpAddr::V6(GROUP6)),
        None
    );
}

#[test]
fn vrid_new_rejects_zero() {
    assert_eq!(VrId::new(0), None);
    assert_eq!(VrId::new(255), Some(VrId(255)));
}

// ---- properties ----

fn ctx_strategy(family: Family) -> BoxedStrategy<ChecksumContext> {
    let form = prop_oneof![Just(V3Ipv4Checksum::Rfc5798), Just(V3Ipv4Checksum::Rfc9568)];
    match family {
        Family::Ipv4 => (any::<[u8; 4]>(), any::<[u8; 4]>(), form)
            .prop_map(|(s, d, f)| ChecksumContext::ipv4(s.into(), d.into()).with_v3_ipv4_form(f))
            .boxed(),
        Family::Ipv6 => (any::<[u8; 16]>(), any::<[u8; 16]>(), form)
            .prop_map(|(s, d, f)| ChecksumContext::ipv6(s.into(), d.into()).with_v3_ipv4_form(f))
            .boxed(),
    }
}

/// Every valid advert with a context of its family.
fn advert_strategy() -> impl Strategy<Value = (AdvertRepr, ChecksumContext)> {
    let kinds = prop_oneof![
        Just((VrrpVersion::V2, Family::Ipv4)),
        Just((VrrpVersion::V3, Family::Ipv4)),
        Just((VrrpVersion::V3, Family::Ipv6)),
    ];
    kinds.prop_flat_map(|(version, family)| {
        let addrs = match family {
            Family::Ipv4 => {
                prop::collection::vec(any::<[u8; 4]>().prop_map(Ipv4Addr::from), 1..=MAX_ADDRS)
                    .prop_map(VirtualAddrs::V4)
                    .boxed()
            }
            Family::Ipv6 => {
                prop::collection::vec(any::<[u8; 16]>().prop_map(Ipv6Addr::from), 1..=MAX_ADDRS)
                    .prop_map(VirtualAddrs::V6)
                    .boxed()
            }
        };
        let (interval, auth) = match version {
            VrrpVersion::V3 => (
                (1..=u64::from(V3_MAX_INTERVAL_CS))
                    .prop_map(|cs| Duration::from_millis(cs * 10))
                    .boxed(),
                Just(Auth::None).boxed(),
            ),
            VrrpVersion::V2 => (
                (1..=255_u64).prop_map(Duration::from_secs).boxed(),
                prop_oneof![
                    Just(Auth::None),
                    any::<[u8; 8]>().prop_map(Auth::SimpleText)
                ]
                .boxed(),
            ),
        };
        let repr = (1..=255_u8, any::<u8>(), interval, addrs, auth).prop_map(
            move |(vrid, priority, max_adver_int, addrs, auth)| AdvertRepr {
                version,
                vrid: VrId(vrid),
                priority: Priority(priority),
                max_adver_int,
                addrs,
                auth,
            },
        );
        (repr, ctx_strategy(family))
    })
}

proptest! {
    #[test]
    fn emit_then_parse_is_identity((repr, ctx) in advert_strategy()) {
        prop_assert_eq!(repr.validate(), Ok(()));
        let mut bytes = vec![0xa5; repr.buffer_len()];
        let mut packet = Packet::new_unchecked(&mut bytes[..], repr.family());
        repr.emit(&mut packet, &ctx).unwrap();
        let packet = Packet::new_checked(&bytes[..], repr.family()).unwrap();
        let sent = match (repr.version, repr.family()) {
            (VrrpVersion::V2, _) => ChecksumForm::V2,
            (VrrpVersion::V3, Family::Ipv6) => ChecksumForm::V3Ipv6,
            (VrrpVersion::V3, Family::Ipv4) => ChecksumForm::V3Ipv4(ctx.v3_ipv4_form()),
        };
        prop_assert_eq!(AdvertRepr::parse_with_form(&packet, &ctx), Ok((repr.clone(), sent)));

        // A receiver preferring the other v3/IPv4 form still accepts it and names the form
        // that matched (unless the pseudo-header happens to sum to zero and both match).
        let other = match ctx.v3_ipv4_form() {
            V3Ipv4Checksum::Rfc5798 => V3Ipv4Checksum::Rfc9568,
            V3Ipv4Checksum::Rfc9568 => V3Ipv4Checksum::Rfc5798,
        };
        let (parsed, form) = AdvertRepr::parse_with_form(&packet, &ctx.with_v3_ipv4_form(other)).unwrap();
        prop_assert_eq!(parsed, repr);
        let both_match = ctx.compute(&bytes, ChecksumForm::V3Ipv4(V3Ipv4Checksum::Rfc5798))
            == ctx.compute(&bytes, ChecksumForm::V3Ipv4(V3Ipv4Checksum::Rfc9568));
        if !both_match {
            prop_assert_eq!(form, sent);
        }
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600), v6 in any::<bool>()) {
        let family = if v6 { Family::Ipv6 } else { Family::Ipv4 };
        let ctx = if v6 { ChecksumContext::ipv6(SRC6, GROUP6) } else { ChecksumContext::ipv4(SRC4, GROUP4) };
        let _ = AdvertRepr::parse_with_form(&Packet::new_unchecked(&bytes[..], family), &ctx);
    }

    /// Bytes whose version, count and length agree and whose checksum is right, so parsing
    /// reaches every later rule (VRID, count, interval, auth) with arbitrary values.
    #[test]
    fn parse_never_panics_past_length_and_checksum(
        version in prop_oneof![Just(2_u8), Just(3_u8), 0..16_u8],
        count in any::<u8>(),
        fill in prop::collection::vec(any::<u8>(), 8 + 255 * 16 + 8 + 2),
        (v6, extra) in (any::<bool>(), 0..3_usize),
    ) {
        let family = if v6 { Family::Ipv6 } else { Family::Ipv4 };
        let ctx = if v6 { ChecksumContext::ipv6(SRC6, GROUP6) } else { ChecksumContext::ipv4(SRC4, GROUP4) };
        let trailer = if version == 2 { 8 } else { 0 };
        let len = 8 + usize::from(count) * family.addr_len() + trailer + extra;
        let mut bytes = fill[..len].to_vec();
        let mut p = Packet::new_unchecked(&mut bytes[..], family);
        p.set_version(version);
        p.set_addr_count(count);
        p.fill_checksum(&ctx);
        let p = Packet::new_checked(&bytes[..], family).unwrap();
        match AdvertRepr::parse_with_form(&p, &ctx) {
            Ok((repr, _)) => {
                // Whatever parsed must emit canonically and parse back the same.
                let mut out = vec![0; repr.buffer_len()];
                repr.emit(&mut Packet::new_unchecked(&mut out[..], family), &ctx).unwrap();
                let back = AdvertRepr::parse(&Packet::new_unchecked(&out[..], family), &ctx);
                prop_assert_eq!(back, Ok(repr));
            }
            Err(AdvertError::TooShort { .. } | AdvertError::BadChecksum { .. }) => {
                prop_assert!(false, "length and checksum were made valid");
            }
            Err(_) => {}
        }
    }
}
