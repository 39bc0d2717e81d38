//! `AF_PACKET` sockets on one interface: the sender-MAC learner of [`super::vrrp_socket`] and
//! the frame sender of [`super::garp`]. The only `unsafe` is converting `sockaddr_ll` to and
//! from socket2's address storage.

use std::{io, mem::MaybeUninit};

use socket2::{Domain, SockAddr, SockFilter, Socket, Type};

use crate::wire::MacAddr;

/// `ETH_P_ALL` in network byte order, as `sll_protocol` wants it.
const ETH_P_ALL_BE: u16 = 0x0003_u16.to_be();

/// A packet socket of `kind` (`SOCK_RAW`: whole frames; `SOCK_DGRAM`: from the network
/// header) bound to `ifindex`. It is opened with protocol 0, so it receives nothing until
/// `listen` binds it to `ETH_P_ALL`, after the filter is attached: no unfiltered frame can be
/// queued in between (the race `packet(7)` warns about).
pub(crate) fn open(kind: Type, ifindex: u32) -> io::Result<Socket> {
    let socket = Socket::new(Domain::PACKET, kind, None)?;
    socket.bind(&link_addr(ifindex, 0, None)?)?;
    Ok(socket)
}

/// Attaches `filter` and starts receiving every protocol on the bound interface.
pub(crate) fn listen(socket: &Socket, ifindex: u32, filter: &[SockFilter]) -> io::Result<()> {
    socket.attach_filter(filter)?;
    socket.bind(&link_addr(ifindex, ETH_P_ALL_BE, None)?)
}

/// A `sockaddr_ll` for `ifindex`, `protocol` (network order) and optionally a destination
/// MAC.
pub(crate) fn link_addr(ifindex: u32, protocol: u16, mac: Option<MacAddr>) -> io::Result<SockAddr> {
    let ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex above i32::MAX"))?;
    let family = libc::sa_family_t::try_from(libc::AF_PACKET).expect("AF_PACKET is 17");
    let ll_len = libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).expect("20 bytes");
    // SAFETY: `try_init` hands a zeroed `sockaddr_storage`, which is larger than and
    // suitably aligned for `sockaddr_ll`; we write one `sockaddr_ll` at its start and report
    // exactly its size.
    let ((), addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let mut sll_addr = [0; 8];
            let mut sll_halen = 0;
            if let Some(mac) = mac {
                sll_halen = 6;
                sll_addr[..6].copy_from_slice(&mac.0);
            }
            storage
                .cast::<libc::sockaddr_ll>()
                .write(libc::sockaddr_ll {
                    sll_family: family,
                    sll_protocol: protocol,
                    sll_ifindex: ifindex,
                    sll_hatype: 0,
                    sll_pkttype: 0,
                    sll_halen,
                    sll_addr,
                });
            *len = ll_len;
            Ok(())
        })?
    };
    Ok(addr)
}

/// What `recvfrom` on a packet socket said about a frame's link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkInfo {
    /// Link-layer source address (`sll_addr`), when it is 6 bytes long.
    pub src_mac: Option<MacAddr>,
    /// `sll_pkttype` (`PACKET_HOST`, `PACKET_MULTICAST`, `PACKET_OUTGOING`…).
    pub pkttype: u8,
    /// `sll_ifindex`.
    pub ifindex: i32,
}

/// Receives one frame into `buf`; returns its (possibly truncated) length and link info.
pub(crate) fn recv(socket: &Socket, buf: &mut [u8]) -> io::Result<(usize, LinkInfo)> {
    let (len, addr) = socket.recv_from(as_uninit(buf))?;
    if usize::try_from(addr.len()).unwrap_or(0) < size_of::<libc::sockaddr_ll>()
        || i32::from(addr.family()) != libc::AF_PACKET
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "recvfrom on a packet socket returned no sockaddr_ll",
        ));
    }
    // SAFETY: the kernel wrote a `sockaddr_ll` (family and length checked above) at the start
    // of the storage, which is aligned for it; `read_unaligned` does not even need that.
    let ll: libc::sockaddr_ll =
        unsafe { addr.as_ptr().cast::<libc::sockaddr_ll>().read_unaligned() };
    let src_mac = (ll.sll_halen == 6).then(|| {
        let mut mac = [0; 6];
        mac.copy_from_slice(&ll.sll_addr[..6]);
        MacAddr(mac)
    });
    Ok((
        len,
        LinkInfo {
            src_mac,
            pkttype: ll.sll_pkttype,
            ifindex: ll.sll_ifindex,
        },
    ))
}

/// `buf` as the `MaybeUninit` slice socket2's receive calls take.
pub(crate) fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and the socket only ever writes
    // initialised bytes into it, so `buf` stays fully initialised.
    unsafe { &mut *(std::ptr::from_mut::<[u8]>(buf) as *mut [MaybeUninit<u8>]) }
}
