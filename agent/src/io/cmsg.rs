//! Ancillary data of `recvmsg` / `sendmsg`, read and written as bytes, without `unsafe`.
//!
//! Linux lays a control buffer out as a sequence of `struct cmsghdr { size_t cmsg_len; int
//! cmsg_level; int cmsg_type; }` each followed by its data, every header aligned to
//! `size_of::<usize>()` (`CMSG_ALIGN`). [`parse`] walks that layout with bounds checks, so
//! the receive path needs no `CMSG_*` pointer macros; the unit tests compare it with them.
//!
//! Control messages read (RFC 3542 §6 for IPv6; `ip(7)` for IPv4):
//! - `IP_PKTINFO` (`struct in_pktinfo`): ingress ifindex and the header's destination;
//! - `IP_TTL` (an `int`, enabled by `IP_RECVTTL`): the TTL;
//! - `IPV6_PKTINFO` (`struct in6_pktinfo`): destination and ingress ifindex;
//! - `IPV6_HOPLIMIT` (an `int`, enabled by `IPV6_RECVHOPLIMIT`): the hop limit.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const WORD: usize = size_of::<usize>();
/// `sizeof(struct cmsghdr)`: `cmsg_len` (a `size_t`) and two `int`s.
const HEADER_LEN: usize = WORD + 8;
/// `sizeof(struct in_pktinfo)`: ifindex, `ipi_spec_dst`, `ipi_addr`.
const IN_PKTINFO_LEN: usize = 12;
/// `sizeof(struct in6_pktinfo)`: address, ifindex.
const IN6_PKTINFO_LEN: usize = 20;

/// Bytes one control message with `data_len` bytes of data takes (`CMSG_SPACE`).
pub(crate) const fn space(data_len: usize) -> usize {
    align(HEADER_LEN) + align(data_len)
}

/// A control buffer large enough for everything [`parse`] reads, with room to spare for
/// messages it skips.
pub(crate) const RECV_SPACE: usize = 2 * space(IN6_PKTINFO_LEN) + 2 * space(4);

const fn align(len: usize) -> usize {
    (len + WORD - 1) & !(WORD - 1)
}

/// What the control messages of one received datagram said. Fields are `None` when the
/// message was absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxControl {
    /// Ingress interface index (`ipi_ifindex` / `ipi6_ifindex`).
    pub ifindex: Option<u32>,
    /// The IP header's destination (`ipi_addr` / `ipi6_addr`).
    pub dst: Option<IpAddr>,
    /// TTL (`IP_TTL`) or hop limit (`IPV6_HOPLIMIT`).
    pub ttl: Option<u8>,
}

/// Why a control buffer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmsgError {
    #[error("control message at offset {offset} claims {len} bytes; {left} are left")]
    BadLength {
        offset: usize,
        len: usize,
        left: usize,
    },
    #[error("control message level {level} type {kind} has {got} data bytes, need {need}")]
    ShortData {
        level: i32,
        kind: i32,
        need: usize,
        got: usize,
    },
    #[error("TTL / hop limit control message carries {0}, outside 0-255")]
    BadTtl(i32),
}

/// Reads the control messages in `buf` (the first `msg_controllen` bytes). Unknown messages
/// are skipped; a header whose length runs past the buffer is an error. Never panics.
pub fn parse(buf: &[u8]) -> Result<RxControl, CmsgError> {
    let mut out = RxControl::default();
    let mut offset = 0;
    // A trailing fragment shorter than a header is padding, as `CMSG_NXTHDR` treats it.
    while buf.len() - offset >= HEADER_LEN {
        let rest = &buf[offset..];
        let len = usize::from_ne_bytes(word(rest, 0));
        let level = i32::from_ne_bytes(int(rest, WORD));
        let kind = i32::from_ne_bytes(int(rest, WORD + 4));
        if len < HEADER_LEN || len > rest.len() {
            return Err(CmsgError::BadLength {
                offset,
                len,
                left: rest.len(),
            });
        }
        let data = &rest[align(HEADER_LEN).min(len)..len];
        let need = |need: usize| {
            if data.len() < need {
                Err(CmsgError::ShortData {
                    level,
                    kind,
                    need,
                    got: data.len(),
                })
            } else {
                Ok(())
            }
        };
        match (level, kind) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                need(IN_PKTINFO_LEN)?;
                out.ifindex = Some(u32::from_ne_bytes(int(data, 0)));
                out.dst = Some(Ipv4Addr::from(int(data, 8)).into());
            }
            (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                need(4)?;
                let value = i32::from_ne_bytes(int(data, 0));
                out.ttl = Some(u8::try_from(value).map_err(|_| CmsgError::BadTtl(value))?);
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                need(IN6_PKTINFO_LEN)?;
                let mut addr = [0; 16];
                addr.copy_from_slice(&data[..16]);
                out.dst = Some(Ipv6Addr::from(addr).into());
                out.ifindex = Some(u32::from_ne_bytes(int(data, 16)));
            }
            _ => {}
        }
        offset += align(len).min(rest.len());
    }
    Ok(out)
}

/// The control message that picks the source address and interface of one sent packet:
/// `IP_PKTINFO` with `ipi_spec_dst = src` or `IPV6_PKTINFO` with `ipi6_addr = src`.
pub(crate) fn pktinfo(src: IpAddr, ifindex: u32) -> Vec<u8> {
    match src {
        IpAddr::V4(src) => {
            let mut data = [0; IN_PKTINFO_LEN];
            data[..4].copy_from_slice(&ifindex.to_ne_bytes());
            data[4..8].copy_from_slice(&src.octets());
            encode(libc::IPPROTO_IP, libc::IP_PKTINFO, &data)
        }
        IpAddr::V6(src) => {
            let mut data = [0; IN6_PKTINFO_LEN];
            data[..16].copy_from_slice(&src.octets());
            data[16..].copy_from_slice(&ifindex.to_ne_bytes());
            encode(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &data)
        }
    }
}

/// One control message: header, data, padding to `CMSG_SPACE`.
fn encode(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0; space(data.len())];
    let len = align(HEADER_LEN) + data.len();
    buf[..WORD].copy_from_slice(&len.to_ne_bytes());
    buf[WORD..WORD + 4].copy_from_slice(&level.to_ne_bytes());
    buf[WORD + 4..WORD + 8].copy_from_slice(&kind.to_ne_bytes());
    buf[align(HEADER_LEN)..len].copy_from_slice(data);
    buf
}

/// Four bytes at `at`; callers have checked the length.
fn int(buf: &[u8], at: usize) -> [u8; 4] {
    let mut out = [0; 4];
    out.copy_from_slice(&buf[at..at + 4]);
    out
}

fn word(buf: &[u8], at: usize) -> [u8; WORD] {
    let mut out = [0; WORD];
    out.copy_from_slice(&buf[at..at + WORD]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a control buffer with libc's own `CMSG_*` macros, so the byte layout the parser
    /// assumes is checked against the C definitions rather than against itself.
    fn with_libc(messages: &[(i32, i32, &[u8])]) -> Vec<u8> {
        let total: usize = messages
            .iter()
            // SAFETY: CMSG_SPACE is pure arithmetic.
            .map(|(_, _, d)| unsafe { libc::CMSG_SPACE(u32::try_from(d.len()).unwrap()) } as usize)
            .sum();
        let mut buf = vec![0u8; total];
        // SAFETY: msghdr is plain data; all-zero is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_control = buf.as_mut_ptr().cast();
        msg.msg_controllen = total;
        // SAFETY: `msg` describes `buf`, which holds CMSG_SPACE bytes for every message, so
        // each header and data pointer the macros return lies inside `buf`.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            for (level, kind, data) in messages {
                assert!(!cmsg.is_null());
                (*cmsg).cmsg_level = *level;
                (*cmsg).cmsg_type = *kind;
                (*cmsg).cmsg_len = libc::CMSG_LEN(u32::try_from(data.len()).unwrap()) as usize;
                std::ptr::copy_nonoverlapping(data.as_ptr(), libc::CMSG_DATA(cmsg), data.len());
                cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
            }
        }
        buf
    }

    fn in_pktinfo(ifindex: i32, spec_dst: [u8; 4], addr: [u8; 4]) -> Vec<u8> {
        let mut v = ifindex.to_ne_bytes().to_vec();
        v.extend_from_slice(&spec_dst);
        v.extend_from_slice(&addr);
        v
    }

    #[test]
    fn ipv4_pktinfo_and_ttl() {
        let pkt = in_pktinfo(7, [192, 0, 2, 1], [224, 0, 0, 18]);
        let buf = with_libc(&[
            (libc::IPPROTO_IP, libc::IP_PKTINFO, &pkt),
            (libc::IPPROTO_IP, libc::IP_TTL, &255i32.to_ne_bytes()),
        ]);
        let got = parse(&buf).unwrap();
        assert_eq!(
            got,
            RxControl {
                ifindex: Some(7),
                dst: Some(Ipv4Addr::new(224, 0, 0, 18).into()),
                ttl: Some(255),
            }
        );
    }

    #[test]
    fn ipv6_pktinfo_and_hoplimit_in_either_order() {
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
        let mut pkt = dst.octets().to_vec();
        pkt.extend_from_slice(&3u32.to_ne_bytes());
        let hops = 64i32.to_ne_bytes();
        let want = RxControl {
            ifindex: Some(3),
            dst: Some(dst.into()),
            ttl: Some(64),
        };
        let a = with_libc(&[
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &pkt),
            (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT, &hops),
        ]);
        let b = with_libc(&[
            (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT, &hops),
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &pkt),
        ]);
        assert_eq!(parse(&a).unwrap(), want);
        assert_eq!(parse(&b).unwrap(), want);
    }

    #[test]
    fn unknown_messages_are_skipped_and_empty_is_empty() {
        let buf = with_libc(&[
            (libc::SOL_SOCKET, libc::SO_TIMESTAMP, &[1; 16]),
            (libc::IPPROTO_IP, libc::IP_TTL, &1i32.to_ne_bytes()),
        ]);
        assert_eq!(parse(&buf).unwrap().ttl, Some(1));
        assert_eq!(parse(&[]).unwrap(), RxControl::default());
    }

    #[test]
    fn encode_matches_libc_layout() {
        let ours = pktinfo(Ipv4Addr::new(192, 0, 2, 1).into(), 9);
        let theirs = with_libc(&[(
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            &in_pktinfo(9, [192, 0, 2, 1], [0; 4]),
        )]);
        assert_eq!(ours, theirs);
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        let mut data = src.octets().to_vec();
        data.extend_from_slice(&4u32.to_ne_bytes());
        let theirs = with_libc(&[(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &data)]);
        assert_eq!(pktinfo(src.into(), 4), theirs);
    }

    #[test]
    fn length_past_the_buffer_is_an_error() {
        let mut buf = with_libc(&[(libc::IPPROTO_IP, libc::IP_TTL, &255i32.to_ne_bytes())]);
        buf[..WORD].copy_from_slice(&64usize.to_ne_bytes());
        assert_eq!(
            parse(&buf),
            Err(CmsgError::BadLength {
                offset: 0,
                len: 64,
                left: buf.len()
            })
        );
        buf[..WORD].copy_from_slice(&3usize.to_ne_bytes());
        assert!(matches!(
            parse(&buf),
            Err(CmsgError::BadLength { len: 3, .. })
        ));
    }

    #[test]
    fn short_pktinfo_is_an_error() {
        let buf = with_libc(&[(libc::IPPROTO_IP, libc::IP_PKTINFO, &[0; 8])]);
        assert_eq!(
            parse(&buf),
            Err(CmsgError::ShortData {
                level: libc::IPPROTO_IP,
                kind: libc::IP_PKTINFO,
                need: 12,
                got: 8
            })
        );
    }

    #[test]
    fn ttl_out_of_range_is_an_error() {
        let buf = with_libc(&[(libc::IPPROTO_IP, libc::IP_TTL, &256i32.to_ne_bytes())]);
        assert_eq!(parse(&buf), Err(CmsgError::BadTtl(256)));
    }
}
