//! VRRP advert sockets: one raw IP socket for protocol 112 per interface and family.
//!
//! # Socket set-up (what keepalived and FRR do, RFC 9568 §5.1)
//! `socket(AF_INET{,6}, SOCK_RAW, 112)`, `SO_BINDTODEVICE` to the interface, membership of
//! `224.0.0.18` / `ff02::12` on it (multicast mode only), TTL / hop limit 255 for multicast and
//! unicast, multicast loop off, and `IP_PKTINFO` + `IP_RECVTTL` / `IPV6_RECVPKTINFO` +
//! `IPV6_RECVHOPLIMIT` so every datagram comes with its ingress interface, destination and
//! TTL. IPv4 adverts leave with DSCP CS6 like keepalived's ([`crate::wire::ip::TOS_NETWORK_CONTROL`]).
//!
//! # Header building: the kernel's
//! The kernel builds the IP header (no `IP_HDRINCL`), as keepalived does: TTL and TOS are
//! socket options, identification and the header checksum are the kernel's, and routing picks
//! nothing because the interface is bound. The source is set per packet with `IP_PKTINFO`
//! (`ipi_spec_dst` = the primary address) or `IPV6_PKTINFO` (the link-local address): binding
//! the socket to that address instead would make Linux drop every advert not sent *to* it,
//! multicast included. The advert checksum is computed here over that same source and the
//! destination, in the instance's v3/IPv4 form.
//!
//! # The sender's MAC: a filtered `AF_PACKET` socket, not the neighbour table
//! The state machine needs the MAC of the router an advert came from (`RxMeta::src_mac`), and
//! raw IP sockets do not give it. The neighbour table cannot be relied on: Linux learns no
//! neighbour from a multicast packet, so a backup that has only heard a master's adverts has
//! no entry for it, and resolving one would add an ARP/ND exchange to a failover. So each
//! socket has a companion `AF_PACKET`/`SOCK_DGRAM` socket on the same interface whose
//! classic-BPF filter keeps only incoming IPv4 (or IPv6) packets of protocol 112, cut to their
//! first 40 bytes; `recvfrom` reports the Ethernet source in `sll_addr`. It is bound to
//! `ETH_P_ALL` on purpose: such taps run before the IP stack sees the frame (in
//! `__netif_receive_skb_core`), so when the raw socket returns an advert, the frame it came in
//! is already queued on the companion, which [`VrrpSocket::recv`] drains into a small
//! source-IP → MAC table before answering. `src_mac` is `None` only if that queue overflowed.
//!
//! # Receiving
//! IPv4 raw sockets deliver the IP header ([`ip::parse_ipv4`]); IPv6 raw sockets only the
//! payload, with the source in `msg_name` and the rest in control messages
//! ([`ip::from_ipv6_socket`]). The checksum is verified here (the XDP program does not), both
//! v3/IPv4 forms accepted. Every failure is a [`RecvError`] value: the daemon counts it and
//! keeps reading.

use std::{
    collections::HashMap,
    io::IoSlice,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    os::fd::AsRawFd,
};

use socket2::{
    Domain, MaybeUninitSlice, MsgHdr, MsgHdrMut, Protocol, SockAddr, SockFilter, Socket, Type,
};
use tokio::io::{Interest, unix::AsyncFd};

use super::{Context, IoError, cmsg, packet};
use crate::{
    vrrp::RxMeta,
    wire::{
        self, AdvertError, AdvertRepr, ChecksumContext, ChecksumForm, Family, MacAddr, ReprError,
        V3Ipv4Checksum,
        ip::{self, IpError},
        vrrp::Packet,
    },
};

/// Whether adverts go to the VRRP group or to configured peers (keepalived `unicast_peer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Join `224.0.0.18` / `ff02::12` on the interface.
    #[default]
    Multicast,
    /// Join nothing: adverts are sent to and received from unicast peers only.
    Unicast,
}

/// What a [`VrrpSocket`] is opened for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConfig {
    /// Interface name (`SO_BINDTODEVICE`, error messages).
    pub iface: String,
    /// Its index (group membership, `IP_PKTINFO` on send).
    pub ifindex: u32,
    /// Source of every advert: the interface's primary IPv4 address or its IPv6 link-local
    /// address (RFC 9568 §5.1.1.1, §5.1.2.1). Its family is the socket's.
    pub src: IpAddr,
    pub delivery: Delivery,
}

impl SocketConfig {
    /// The configuration for `link` in `family`, from what netlink reported; `None` when the
    /// link has no usable source address in that family yet.
    pub fn for_link(
        link: &super::netlink::LinkInfo,
        family: Family,
        delivery: Delivery,
    ) -> Option<Self> {
        let src = match family {
            Family::Ipv4 => IpAddr::V4(link.ipv4_primary?),
            Family::Ipv6 => IpAddr::V6(link.ipv6_link_local?),
        };
        Some(Self {
            iface: link.name.clone(),
            ifindex: link.index,
            src,
            delivery,
        })
    }

    /// The socket's address family.
    pub fn family(&self) -> Family {
        match self.src {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

/// A well-formed advert as received, checksum verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedAdvert {
    pub advert: AdvertRepr,
    /// The checksum form the sender used (both v3/IPv4 forms are accepted).
    pub checksum: ChecksumForm,
    /// IP source: the sender's primary or link-local address.
    pub src: IpAddr,
    /// IP destination: the VRRP group or this host (unicast).
    pub dst: IpAddr,
    /// Ingress interface (`IP_PKTINFO` / `IPV6_PKTINFO`).
    pub ifindex: u32,
    /// TTL / hop limit (always 255: anything else is a [`RecvError::Ip`]).
    pub ttl: u8,
    /// Ethernet source of the frame, from the companion packet socket.
    pub src_mac: Option<MacAddr>,
}

impl ReceivedAdvert {
    /// What the state machine takes with the advert; `None` without the sender's MAC.
    pub fn rx_meta(&self) -> Option<RxMeta> {
        Some(RxMeta {
            src: self.src,
            src_mac: self.src_mac?,
        })
    }
}

/// Why a received datagram is not a usable advert, or why receiving failed.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{iface}: recvmsg: malformed control data: {source}")]
    Control {
        iface: String,
        #[source]
        source: cmsg::CmsgError,
    },
    #[error("{iface}: recvmsg: no {what} control message")]
    MissingControl { iface: String, what: &'static str },
    #[error("{iface}: packet from {src:?} (TTL {ttl:?}) dropped: {source}")]
    Ip {
        iface: String,
        /// Source, when the packet got far enough to say.
        src: Option<IpAddr>,
        /// TTL / hop limit from the control message.
        ttl: Option<u8>,
        #[source]
        source: IpError,
    },
    #[error("{iface}: advert from {src} dropped: {source}")]
    Advert {
        iface: String,
        src: IpAddr,
        #[source]
        source: AdvertError,
    },
}

/// Why an advert could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{iface}: advert to {dst} not built: {source}")]
    Repr {
        iface: String,
        dst: IpAddr,
        #[source]
        source: ReprError,
    },
}

/// Largest IP datagram: nothing received is ever truncated.
const RECV_BUF: usize = 65_535;
/// Bytes the companion filter keeps of each packet: the IPv6 header's source address ends at
/// 24, the IPv4 one at 16.
const SNAP: u32 = 40;
/// Source-IP → MAC entries kept before the table is cleared (a LAN has a handful of routers;
/// this only bounds memory against spoofed sources).
const MAC_TABLE_MAX: usize = 256;

/// One interface's advert socket for one family. Needs a tokio runtime with I/O enabled.
#[derive(Debug)]
pub struct VrrpSocket {
    config: SocketConfig,
    socket: AsyncFd<Socket>,
    /// Never awaited: drained without blocking after each advert (see the module docs).
    learner: Socket,
    macs: HashMap<IpAddr, MacAddr>,
    buf: Box<[u8]>,
}

impl VrrpSocket {
    /// Opens and configures the socket and its MAC learner (see the module docs).
    pub fn open(config: SocketConfig) -> Result<Self, IoError> {
        let iface = config.iface.as_str();
        let family = config.family();
        let domain = match family {
            Family::Ipv4 => Domain::IPV4,
            Family::Ipv6 => Domain::IPV6,
        };
        let proto = Protocol::from(i32::from(wire::vrrp::PROTOCOL));
        let socket =
            Socket::new(domain, Type::RAW, Some(proto)).on(iface, "socket(SOCK_RAW, 112)")?;
        socket
            .bind_device(Some(iface.as_bytes()))
            .on(iface, "setsockopt(SO_BINDTODEVICE)")?;
        let ttl = u32::from(ip::VRRP_TTL);
        match family {
            Family::Ipv4 => {
                socket.set_ttl_v4(ttl).on(iface, "setsockopt(IP_TTL)")?;
                socket
                    .set_multicast_ttl_v4(ttl)
                    .on(iface, "setsockopt(IP_MULTICAST_TTL)")?;
                socket
                    .set_multicast_loop_v4(false)
                    .on(iface, "setsockopt(IP_MULTICAST_LOOP)")?;
                socket
                    .set_tos_v4(u32::from(ip::TOS_NETWORK_CONTROL))
                    .on(iface, "setsockopt(IP_TOS)")?;
                set_flag(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO)
                    .on(iface, "setsockopt(IP_PKTINFO)")?;
                set_flag(&socket, libc::IPPROTO_IP, libc::IP_RECVTTL)
                    .on(iface, "setsockopt(IP_RECVTTL)")?;
                if config.delivery == Delivery::Multicast {
                    socket
                        .join_multicast_v4_n(
                            &ip::VRRP_GROUP_V4,
                            &socket2::InterfaceIndexOrAddress::Index(config.ifindex),
                        )
                        .on(iface, "setsockopt(IP_ADD_MEMBERSHIP)")?;
                }
            }
            Family::Ipv6 => {
                socket
                    .set_unicast_hops_v6(ttl)
                    .on(iface, "setsockopt(IPV6_UNICAST_HOPS)")?;
                socket
                    .set_multicast_hops_v6(ttl)
                    .on(iface, "setsockopt(IPV6_MULTICAST_HOPS)")?;
                socket
                    .set_multicast_loop_v6(false)
                    .on(iface, "setsockopt(IPV6_MULTICAST_LOOP)")?;
                set_flag(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
                    .on(iface, "setsockopt(IPV6_RECVPKTINFO)")?;
                socket
                    .set_recv_hoplimit_v6(true)
                    .on(iface, "setsockopt(IPV6_RECVHOPLIMIT)")?;
                if config.delivery == Delivery::Multicast {
                    socket
                        .join_multicast_v6(&ip::VRRP_GROUP_V6, config.ifindex)
                        .on(iface, "setsockopt(IPV6_ADD_MEMBERSHIP)")?;
                }
            }
        }
        socket.set_nonblocking(true).on(iface, "set O_NONBLOCK")?;

        let learner = packet::open(Type::DGRAM, config.ifindex).on(iface, "socket(AF_PACKET)")?;
        let filter = mac_filter(family).map(|(code, jt, jf, k)| SockFilter::new(code, jt, jf, k));
        packet::listen(&learner, config.ifindex, &filter)
            .on(iface, "attach filter and bind AF_PACKET")?;
        learner.set_nonblocking(true).on(iface, "set O_NONBLOCK")?;

        // SAFETY: `socket` owns its descriptor and moves into the `AsyncFd`, which keeps it
        // open and unchanged until the `AsyncFd` is dropped.
        let socket = unsafe {
            AsyncFd::register_with_interest(socket, Interest::READABLE | Interest::WRITABLE)
        }
        .map_err(std::io::Error::from)
        .on(iface, "register with tokio")?;
        Ok(Self {
            socket,
            learner,
            config,
            macs: HashMap::new(),
            buf: vec![0; RECV_BUF].into_boxed_slice(),
        })
    }

    /// The configuration the socket was opened with.
    pub fn config(&self) -> &SocketConfig {
        &self.config
    }

    /// Waits for the next datagram and returns it as a checked advert, or why it is not one.
    /// `form` is the v3/IPv4 checksum form tried first (both are accepted).
    pub async fn recv(&mut self, form: V3Ipv4Checksum) -> Result<ReceivedAdvert, RecvError> {
        let iface = self.config.iface.clone();
        let family = self.config.family();
        let mut control = [0u8; cmsg::RECV_SPACE];
        let (len, control_len, from) = loop {
            let mut guard = self.socket.readable().await.on(&iface, "poll")?;
            let result = guard.try_io(|s| {
                let mut from = SockAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
                let mut bufs = [MaybeUninitSlice::new(packet::as_uninit(&mut self.buf))];
                let mut msg = MsgHdrMut::new()
                    .with_addr(&mut from)
                    .with_buffers(&mut bufs)
                    .with_control(packet::as_uninit(&mut control));
                let len = s.get_ref().recvmsg(&mut msg, 0)?;
                Ok((len, msg.control_len(), from))
            });
            match result {
                Ok(r) => break r.on(&iface, "recvmsg")?,
                Err(_would_block) => {}
            }
        };
        self.learn_macs();
        let meta = cmsg::parse(&control[..control_len.min(control.len())]).map_err(|source| {
            RecvError::Control {
                iface: iface.clone(),
                source,
            }
        })?;
        let ifindex = meta.ifindex.ok_or_else(|| RecvError::MissingControl {
            iface: iface.clone(),
            what: "PKTINFO",
        })?;
        let ttl = meta.ttl.ok_or_else(|| RecvError::MissingControl {
            iface: iface.clone(),
            what: "TTL / HOPLIMIT",
        })?;
        let data = &self.buf[..len];
        let received = match family {
            Family::Ipv4 => ip::parse_ipv4(data).map_err(|source| RecvError::Ip {
                iface: iface.clone(),
                src: ipv4_src(data),
                ttl: Some(ttl),
                source,
            })?,
            Family::Ipv6 => {
                let src = match from.as_socket() {
                    Some(SocketAddr::V6(a)) => *a.ip(),
                    _ => {
                        return Err(RecvError::MissingControl {
                            iface,
                            what: "IPv6 source (msg_name)",
                        });
                    }
                };
                let Some(IpAddr::V6(dst)) = meta.dst else {
                    return Err(RecvError::MissingControl {
                        iface,
                        what: "IPV6_PKTINFO",
                    });
                };
                ip::from_ipv6_socket(src, dst, ttl, data).map_err(|source| RecvError::Ip {
                    iface: iface.clone(),
                    src: Some(src.into()),
                    ttl: Some(ttl),
                    source,
                })?
            }
        };
        let src = received.src();
        let (advert, checksum) =
            received
                .advert(form)
                .map_err(|source| RecvError::Advert { iface, src, source })?;
        Ok(ReceivedAdvert {
            advert,
            checksum,
            src,
            dst: received.dst(),
            ifindex,
            ttl,
            src_mac: self.macs.get(&src).copied(),
        })
    }

    /// Sends `advert` to `dst` (the VRRP group, or a unicast peer) from the configured source,
    /// with the checksum in `form` (v3/IPv4 only). Returns the bytes sent.
    pub async fn send(
        &self,
        advert: &AdvertRepr,
        dst: IpAddr,
        form: V3Ipv4Checksum,
    ) -> Result<usize, SendError> {
        let iface = self.config.iface.as_str();
        let repr_err = |source| SendError::Repr {
            iface: iface.to_owned(),
            dst,
            source,
        };
        let ctx = ChecksumContext::new(self.config.src, dst)
            .ok_or(ReprError::FamilyMismatch {
                repr: self.config.family(),
                context: if dst.is_ipv4() {
                    Family::Ipv4
                } else {
                    Family::Ipv6
                },
            })
            .map_err(repr_err)?
            .with_v3_ipv4_form(form);
        let mut buf = vec![0; advert.buffer_len()];
        advert
            .emit(
                &mut Packet::new_unchecked(&mut buf[..], advert.family()),
                &ctx,
            )
            .map_err(repr_err)?;
        let to = match dst {
            IpAddr::V4(a) => SockAddr::from(SocketAddrV4::new(a, 0)),
            IpAddr::V6(a) => SockAddr::from(SocketAddrV6::new(a, 0, 0, self.config.ifindex)),
        };
        let control = cmsg::pktinfo(self.config.src, self.config.ifindex);
        let bufs = [IoSlice::new(&buf)];
        let msg = MsgHdr::new()
            .with_addr(&to)
            .with_buffers(&bufs)
            .with_control(&control);
        // Raw sockets are writable unless the send buffer is full; wait for that, then send.
        loop {
            let mut guard = self
                .socket
                .ready(Interest::WRITABLE)
                .await
                .on(iface, "poll")?;
            match guard.try_io(|s| s.get_ref().sendmsg(&msg, 0)) {
                Ok(r) => return Ok(r.on(iface, "sendmsg")?),
                Err(_would_block) => {}
            }
        }
    }

    /// Drains the companion packet socket into the source → MAC table.
    fn learn_macs(&mut self) {
        let mut head = [0u8; SNAP as usize];
        // Non-blocking: stops at the first `EWOULDBLOCK`, when the queue is empty.
        while let Ok((len, link)) = packet::recv(&self.learner, &mut head) {
            let (Some(src), Some(mac)) = (packet_src(&head[..len]), link.src_mac) else {
                continue;
            };
            if link.pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            if self.macs.len() >= MAC_TABLE_MAX && !self.macs.contains_key(&src) {
                self.macs.clear();
            }
            self.macs.insert(src, mac);
        }
    }
}

/// The IP source of a packet starting at its IP header, if long enough.
fn packet_src(head: &[u8]) -> Option<IpAddr> {
    match head.first()? >> 4 {
        4 => ipv4_src(head),
        6 => {
            let octets: [u8; 16] = head.get(8..24)?.try_into().ok()?;
            Some(Ipv6Addr::from(octets).into())
        }
        _ => None,
    }
}

fn ipv4_src(packet: &[u8]) -> Option<IpAddr> {
    let octets: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    Some(Ipv4Addr::from(octets).into())
}

/// One classic BPF instruction: `(code, jt, jf, k)`.
type Insn = (u16, u8, u8, u32);

/// Classic BPF for the MAC learner: incoming (not `PACKET_OUTGOING`) packets of `family`
/// with protocol / next header 112, truncated to [`SNAP`] bytes. On a `SOCK_DGRAM` packet
/// socket offset 0 is the network header.
#[expect(
    clippy::cast_possible_truncation,
    reason = "classic BPF opcodes are 16-bit; libc declares them as u32"
)]
fn mac_filter(family: Family) -> [Insn; 8] {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const LDB_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    // SKF_AD_OFF (-0x1000) + SKF_AD_PROTOCOL (0) / SKF_AD_PKTTYPE (4), as u32.
    const AD_PROTOCOL: u32 = 0xffff_f000;
    const AD_PKTTYPE: u32 = 0xffff_f004;
    let (ethertype, proto_at) = match family {
        Family::Ipv4 => (ETH_P_IP, 9),
        Family::Ipv6 => (ETH_P_IPV6, 6),
    };
    [
        /* 0 */ (LD_W_ABS, 0, 0, AD_PKTTYPE),
        /* 1 */ (JEQ_K, 5, 0, u32::from(libc::PACKET_OUTGOING)),
        /* 2 */ (LD_W_ABS, 0, 0, AD_PROTOCOL),
        /* 3 */ (JEQ_K, 0, 3, ethertype),
        /* 4 */ (LDB_ABS, 0, 0, proto_at),
        /* 5 */ (JEQ_K, 0, 1, u32::from(wire::vrrp::PROTOCOL)),
        /* 6 */ (RET_K, 0, 0, SNAP),
        /* 7 */ (RET_K, 0, 0, 0),
    ]
}

const ETH_P_IP: u32 = 0x0800;
const ETH_P_IPV6: u32 = 0x86dd;

/// `sizeof(int)`, as `setsockopt` takes it.
const INT_LEN: libc::socklen_t = 4;

/// Sets an `int` socket option to 1.
fn set_flag(socket: &Socket, level: i32, name: i32) -> std::io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: the pointer and length describe `one`, an `int`, which these options take; the
    // kernel only reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const one).cast(),
            INT_LEN,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_src_reads_both_families_and_refuses_short_heads() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[12..16].copy_from_slice(&[192, 0, 2, 7]);
        assert_eq!(packet_src(&v4), Some(Ipv4Addr::new(192, 0, 2, 7).into()));
        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[8] = 0xfe;
        v6[9] = 0x80;
        v6[23] = 1;
        assert_eq!(
            packet_src(&v6),
            Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).into())
        );
        assert_eq!(packet_src(&v6[..23]), None);
        assert_eq!(packet_src(&v4[..15]), None);
        assert_eq!(packet_src(&[]), None);
        assert_eq!(packet_src(&[0x50; 40]), None);
    }

    #[test]
    fn mac_filter_tests_jump_to_the_drop_and_accepts_a_snap() {
        let ret = u16::try_from(libc::BPF_RET | libc::BPF_K).unwrap();
        let jeq = u16::try_from(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K).unwrap();
        for (family, ethertype, proto_at) in [(Family::Ipv4, 0x0800, 9), (Family::Ipv6, 0x86dd, 6)]
        {
            let prog = mac_filter(family);
            assert_eq!(prog[6], (ret, 0, 0, SNAP));
            assert_eq!(prog[7], (ret, 0, 0, 0));
            assert_eq!(prog[3].3, ethertype);
            assert_eq!(prog[4].3, proto_at);
            assert_eq!(prog[5].3, 112);
            // Outgoing: taken branch to the drop; wrong ethertype or protocol: fall-through
            // branch to the drop; protocol 112: on to the accept.
            let target = |i: usize, off: u8| i + 1 + usize::from(off);
            assert_eq!((prog[1].0, target(1, prog[1].1)), (jeq, 7));
            assert_eq!((prog[3].0, target(3, prog[3].2)), (jeq, 7));
            assert_eq!((prog[5].0, target(5, prog[5].2)), (jeq, 7));
            assert_eq!(target(5, prog[5].1), 6);
        }
    }
}
