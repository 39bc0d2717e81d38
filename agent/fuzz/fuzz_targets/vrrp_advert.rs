//! Fuzzes the advert parser with the invariant of rustls' `fuzz_message`: whatever parses must
//! emit canonically, and the canonical bytes must parse back to the same advert, checksum form
//! included, and emit to the same bytes again.
//!
//! Input: a raw IP packet, as a raw socket hands it over (the seeds are keepalived captures).
//! The IP layer is parsed for real; the VRRP payload is also parsed on its own, with the
//! addresses read from where the IP header keeps them, so a bad TTL or IPv4 header checksum
//! does not hide the VRRP parser from the fuzzer.

#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vipflip::wire::ip::{self, AdvertIpRepr};
use vipflip::wire::vrrp::Packet;
use vipflip::wire::{AdvertRepr, ChecksumContext, ChecksumForm, Family, V3Ipv4Checksum};

fuzz_target!(|data: &[u8]| {
    let Some(&first) = data.first() else { return };
    let preferred = if first & 1 == 0 {
        V3Ipv4Checksum::Rfc5798
    } else {
        V3Ipv4Checksum::Rfc9568
    };

    // The real receive path.
    let received = match first >> 4 {
        4 => ip::parse_ipv4(data),
        _ => ip::parse_ipv6(data),
    };
    if let Ok(rx) = received {
        if let Ok((repr, form)) = rx.advert(preferred) {
            round_trip(&repr, form, &rx.checksum_context(preferred));
            whole_packet_round_trip(&repr, form, &rx.checksum_context(preferred));
        }
    }

    // The VRRP parser alone, whatever the IP header says.
    let raw = match first >> 4 {
        4 if data.len() >= 20 => {
            let addr =
                |at: usize| Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3]);
            Some((ChecksumContext::ipv4(addr(12), addr(16)), &data[20..]))
        }
        _ if data.len() >= 40 => {
            let addr = |at: usize| {
                let mut octets = [0; 16];
                octets.copy_from_slice(&data[at..at + 16]);
                Ipv6Addr::from(octets)
            };
            Some((ChecksumContext::ipv6(addr(8), addr(24)), &data[40..]))
        }
        _ => None,
    };
    if let Some((ctx, payload)) = raw {
        let ctx = ctx.with_v3_ipv4_form(preferred);
        let packet = Packet::new_unchecked(payload, ctx.family());
        if let Ok((repr, form)) = AdvertRepr::parse_with_form(&packet, &ctx) {
            round_trip(&repr, form, &ctx);
        }
    }
});

/// The context that sends `form`.
fn sending(ctx: &ChecksumContext, form: ChecksumForm) -> ChecksumContext {
    match form {
        ChecksumForm::V3Ipv4(f) => ctx.with_v3_ipv4_form(f),
        ChecksumForm::V2 | ChecksumForm::V3Ipv6 => *ctx,
    }
}

fn emit(repr: &AdvertRepr, ctx: &ChecksumContext) -> Vec<u8> {
    let mut bytes = vec![0xa5; repr.buffer_len()];
    let mut packet = Packet::new_unchecked(&mut bytes[..], repr.family());
    repr.emit(&mut packet, ctx)
        .expect("a parsed advert must be emittable");
    bytes
}

fn round_trip(repr: &AdvertRepr, form: ChecksumForm, ctx: &ChecksumContext) {
    let ctx = sending(ctx, form);
    let canonical = emit(repr, &ctx);
    let packet = Packet::new_checked(&canonical[..], repr.family()).expect("canonical length");
    let (again, again_form) =
        AdvertRepr::parse_with_form(&packet, &ctx).expect("canonical bytes must parse");
    assert_eq!(&again, repr, "parse(emit(repr)) != repr");
    assert_eq!(again_form, form, "checksum form changed on the round trip");
    assert_eq!(emit(&again, &ctx), canonical, "emit is not deterministic");
}

fn whole_packet_round_trip(repr: &AdvertRepr, form: ChecksumForm, ctx: &ChecksumContext) {
    let ip = AdvertIpRepr {
        ctx: sending(ctx, form),
        ident: 0x1234,
        flow_label: 0x5_6789,
    };
    let mut bytes = vec![0xa5; ip::advert_packet_len(repr)];
    let len = ip::emit_advert(repr, &ip, &mut bytes).expect("a parsed advert must be emittable");
    let rx = match repr.family() {
        Family::Ipv4 => ip::parse_ipv4(&bytes[..len]),
        Family::Ipv6 => ip::parse_ipv6(&bytes[..len]),
    }
    .expect("an emitted IP packet must parse");
    let preferred = match form {
        ChecksumForm::V3Ipv4(f) => f,
        ChecksumForm::V2 | ChecksumForm::V3Ipv6 => V3Ipv4Checksum::default(),
    };
    let (again, again_form) = rx.advert(preferred).expect("an emitted advert must parse");
    assert_eq!(&again, repr);
    assert_eq!(again_form, form);
}
