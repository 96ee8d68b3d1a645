//! The native IPv6 side of a Teredo server: a raw socket that sends whole
//! IPv6 packets.
//!
//! RFC 4380 §5.3.1 has the server forward a client's packet for a non-Teredo
//! destination (in practice the ICMPv6 echo of the direct connectivity test,
//! §5.2.9) "natively" over IPv6. The core hands the glue the complete packet,
//! header included, with the client's Teredo address as its source.
//!
//! `socket(AF_INET6, SOCK_RAW, IPPROTO_RAW)` sends exactly that: for
//! `IPPROTO_RAW` Linux implies header inclusion, routes by the packet's
//! destination, and does not check that the source address is local. The
//! packet is *originated* by this host as far as the kernel is concerned, so
//! no `net.ipv6.conf.*.forwarding` sysctl is needed. The socket is send-only:
//! the kernel never delivers received packets to `IPPROTO_RAW`.
//!
//! The alternative, a tun device, would need `/dev/net/tun`, an interface to
//! configure and bring up, and forwarding enabled so packets written to it get
//! routed onwards; it pays off only for a node that must also *receive* IPv6
//! for Teredo clients, which is the relay's job, not the server's. (A server
//! that doubles as a relay will have that tun, and can send through it.)
//!
//! Opening the socket needs `CAP_NET_RAW`.

use core::net::Ipv6Addr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{cvt, cvt_size, socklen};

/// A send-only raw IPv6 socket for complete packets.
#[derive(Debug)]
pub struct RawIpv6Socket {
    fd: OwnedFd,
}

impl RawIpv6Socket {
    /// Open the socket, non-blocking (a full send buffer drops the packet
    /// rather than stalling the event loop).
    pub fn open() -> io::Result<RawIpv6Socket> {
        let kind = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket(2) takes no pointers; the result is checked by cvt.
        let fd = cvt(unsafe { libc::socket(libc::AF_INET6, kind, libc::IPPROTO_RAW) })?;
        // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RawIpv6Socket { fd })
    }

    /// Send `packet`, a complete IPv6 packet, to its destination address.
    /// `InvalidInput` if it is too short to hold an IPv6 header.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let dst = destination(packet).ok_or(io::ErrorKind::InvalidInput)?;
        let sa = libc::sockaddr_in6 {
            sin6_family: libc::AF_INET6 as libc::sa_family_t,
            // Must be 0 (or IPPROTO_RAW) on a raw socket: it names a protocol.
            sin6_port: 0,
            sin6_flowinfo: 0,
            sin6_addr: libc::in6_addr {
                s6_addr: dst.octets(),
            },
            sin6_scope_id: 0,
        };
        loop {
            // SAFETY: `packet` is readable for its length; `sa` is a valid
            // sockaddr_in6 and the length passed is its size.
            let ret = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    packet.as_ptr().cast(),
                    packet.len(),
                    libc::MSG_DONTWAIT,
                    (&raw const sa).cast(),
                    socklen::<libc::sockaddr_in6>(),
                )
            };
            match cvt_size(ret) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The destination address of a complete IPv6 packet: bytes 24..40 of its
/// fixed header (RFC 8200 §3). `None` if the packet is shorter than that.
pub fn destination(packet: &[u8]) -> Option<Ipv6Addr> {
    let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
    Some(Ipv6Addr::from(dst))
}
