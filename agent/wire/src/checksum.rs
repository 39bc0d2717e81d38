//! The Internet checksum (RFC 1071) and the pseudo-headers that VRRP and ICMP for IPv6 add to it.
//!
//! Sums are kept in a `u64` and folded once at the end, so no input length a `&[u8]` can have
//! overflows them in practice (2^48 bytes of `0xff` would be needed).

use std::net::{Ipv4Addr, Ipv6Addr};

/// The one's-complement sum of `data` as big-endian 16-bit words, unfolded. An odd final byte
/// is padded with a zero byte on the right (RFC 1071 §4.1).
pub(crate) fn sum(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    let mut acc: u64 = chunks
        .by_ref()
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// The sum of `data` with the 16-bit word at `skip` (the checksum field) read as zero, as the
/// checksum definitions ask for. `skip` must be even and `skip + 2 <= data.len()`.
pub(crate) fn sum_skipping(data: &[u8], skip: usize) -> u64 {
    sum(&data[..skip]) + sum(&data[skip + 2..])
}

/// Folds carries and takes the one's complement: the value to put in a checksum field.
pub(crate) fn finish(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves `acc <= 0xffff`, so the fallback is never taken.
    !u16::try_from(acc).unwrap_or(u16::MAX)
}

/// The IPv4 pseudo-header of RFC 768 / RFC 793 §3.1 (src, dst, zero, protocol, length), the
/// form RFC 5798 §5.2.8 borrows for VRRP version 3 over IPv4.
pub(crate) fn pseudo_ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u32) -> u64 {
    sum(&src.octets()) + sum(&dst.octets()) + u64::from(protocol) + sum(&len.to_be_bytes())
}

/// The IPv6 pseudo-header of RFC 8200 §8.1 (src, dst, 32-bit upper-layer length, three zero
/// bytes, next header).
pub(crate) fn pseudo_ipv6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: u32) -> u64 {
    sum(&src.octets()) + sum(&dst.octets()) + sum(&len.to_be_bytes()) + u64::from(next_header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 worked example: the words 0001 f203 f4f5 f6f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum(&data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn skipping_reads_field_as_zero() {
        let data = [0x11, 0x22, 0xff, 0xff, 0x33, 0x44];
        assert_eq!(sum_skipping(&data, 2), sum(&[0x11, 0x22, 0, 0, 0x33, 0x44]));
    }
}
