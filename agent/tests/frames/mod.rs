//! Hand-built test frames, independent of `vipflip::wire` on purpose: the kernel tests must not
//! share a bug with the code they check against.

pub const V4_VIP_LOCAL: [u8; 4] = [192, 0, 2, 100];
pub const V4_VIP_FORWARD_TX: [u8; 4] = [192, 0, 2, 101];
pub const V4_VIP_FORWARD_REDIRECT: [u8; 4] = [192, 0, 2, 102];
pub const V4_VIP_DROP: [u8; 4] = [192, 0, 2, 103];
pub const V4_PEER: [u8; 4] = [192, 0, 2, 1];
pub const V4_STRANGER: [u8; 4] = [192, 0, 2, 66];
pub const V4_CLIENT: [u8; 4] = [198, 51, 100, 7];
pub const V4_VRRP_GROUP: [u8; 4] = [224, 0, 0, 18];
pub const V6_VIP_LOCAL: [u8; 16] = v6(0x100);
pub const V6_VIP_FORWARD_TX: [u8; 16] = v6(0x101);
pub const V6_VIP_DROP: [u8; 16] = v6(0x103);
pub const V6_PEER: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const V6_STRANGER: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x66];
pub const V6_CLIENT: [u8; 16] = v6(0x7);
pub const V6_VRRP_GROUP: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12];
/// The VRID whose adverts are only accepted from `V4_PEER` / `V6_PEER`.
pub const ALLOW_LISTED_VRID: u8 = 52;

/// `2001:db8::<low>`.
const fn v6(low: u16) -> [u8; 16] {
    let [hi, lo] = low.to_be_bytes();
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, hi, lo]
}

/// An Ethernet frame, with one 802.1Q tag when `vlan` is set.
pub fn eth(vlan: Option<u16>, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0xbb, 0, 0, 0, 0x01, 0x02, 0xcc, 0, 0, 0, 0x02];
    if let Some(id) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap();
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, ttl, protocol, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// Inserts IPv4 options (a multiple of 4 bytes) and fixes IHL, length and checksum.
pub fn insert_ipv4_options(packet: &mut Vec<u8>, options: &[u8]) {
    assert_eq!(options.len() % 4, 0);
    packet.splice(20..20, options.iter().copied());
    packet[0] = 0x40 | u8::try_from((20 + options.len()) / 4).unwrap();
    let total = u16::try_from(packet.len()).unwrap();
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    packet[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum(&packet[..20 + options.len()]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
}

pub fn ipv6(
    src: [u8; 16],
    dst: [u8; 16],
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let len = u16::try_from(payload.len()).unwrap();
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&len.to_be_bytes());
    h.push(next_header);
    h.push(hop_limit);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// A VRRP version 3 advert (checksum left 0: XDP does not verify it).
pub fn vrrp_v3(vrid: u8, priority: u8, count: u8, interval_cs: u16, addrs: &[u8]) -> Vec<u8> {
    let mut a = vec![0x31, vrid, priority, count];
    a.extend_from_slice(&(interval_cs & 0x0fff).to_be_bytes());
    a.extend_from_slice(&[0, 0]);
    a.extend_from_slice(addrs);
    a
}

/// A VRRP version 2 advert with auth type 0 and 8 bytes of auth data.
pub fn vrrp_v2(vrid: u8, priority: u8, count: u8, interval_s: u8, addrs: &[u8]) -> Vec<u8> {
    let mut a = vec![0x21, vrid, priority, count, 0, interval_s, 0, 0];
    a.extend_from_slice(addrs);
    a.extend_from_slice(&[0; 8]);
    a
}

pub fn arp_request(sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0, 6, 4, 0, 1, 0x02, 0xcc, 0, 0, 0, 0x02];
    a.extend_from_slice(&sender);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target);
    a
}

/// An `ICMPv6` message of `icmp_type` with `body` after the 4-byte header + 4 reserved bytes.
pub fn icmpv6(icmp_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp_type, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(body);
    m
}

/// A TCP segment (20-byte header, ACK set; checksum left 0: XDP never reads it).
pub fn tcp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&src_port.to_be_bytes());
    t.extend_from_slice(&dst_port.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

/// A UDP datagram (checksum 0).
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap();
    let mut u = Vec::new();
    u.extend_from_slice(&src_port.to_be_bytes());
    u.extend_from_slice(&dst_port.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// Sets the flags/fragment offset word of an IPv4 packet (More Fragments, offset in 8-byte
/// units) and fixes its checksum.
pub fn set_ipv4_fragment(packet: &mut [u8], more_fragments: bool, offset: u16) {
    let word = (u16::from(more_fragments) << 13) | (offset & 0x1fff);
    packet[6..8].copy_from_slice(&word.to_be_bytes());
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    packet[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum(&packet[..header_len]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// ICMP destination unreachable / fragmentation needed (RFC 1191 §4) quoting `original`
/// (its IP header and at least 8 bytes after it).
pub fn icmp_frag_needed(next_hop_mtu: u16, original: &[u8]) -> Vec<u8> {
    let mut m = vec![3, 4, 0, 0, 0, 0];
    m.extend_from_slice(&next_hop_mtu.to_be_bytes());
    m.extend_from_slice(original);
    let sum = checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap()
}
