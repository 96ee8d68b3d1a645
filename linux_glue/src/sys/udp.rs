//! UDP/IPv4 sockets as Teredo uses them, with batched receive and send.
//!
//! [`UdpSocket::bind`] applies the socket options every role wants;
//! [`RecvBatch`] and [`SendBatch`] move up to `N` datagrams per system call
//! with `recvmmsg(2)` / `sendmmsg(2)`, through arrays set up once, so the hot
//! path allocates nothing.

use core::marker::PhantomData;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{cvt, cvt_size, socklen};

/// A non-blocking UDP socket bound to one IPv4 address and port.
///
/// Plain system calls on an [`OwnedFd`] rather than `std::net::UdpSocket`:
/// the socket only ever sees IPv4 peers, so std's conversions to and from
/// IPv6 socket addresses would be dead weight.
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
}

impl UdpSocket {
    /// Bind `addr`, non-blocking, with kernel buffers of about
    /// `buffer_bytes` each way.
    ///
    /// - `SO_REUSEADDR` stays off, so a port another process holds fails
    ///   with `AddrInUse` instead of silently sharing its traffic.
    /// - `IP_MTU_DISCOVER = IP_PMTUDISC_DONT`: datagrams leave without the
    ///   DF bit, as RFC 4380 §5.1.2 asks (Teredo SHOULD NOT set DF), and the
    ///   kernel fragments them rather than refusing sizes above a path MTU.
    /// - The buffer sizes are best effort: `SO_RCVBUFFORCE` when privileged
    ///   (above `net.core.rmem_max`), else `SO_RCVBUF`, capped by the kernel.
    ///   A burst that overflows the default ~200 KiB is simply lost.
    pub fn bind(addr: SocketAddrV4, buffer_bytes: usize) -> io::Result<UdpSocket> {
        let fd = socket(libc::AF_INET)?;
        set_int(
            &fd,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DONT,
        )?;
        let bytes = libc::c_int::try_from(buffer_bytes).unwrap_or(libc::c_int::MAX);
        for (forced, plain) in [
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            if set_int(&fd, libc::SOL_SOCKET, forced, bytes).is_err() {
                // Unprivileged: the kernel caps the plain option itself, and a
                // smaller buffer is no reason to refuse to run.
                let _ = set_int(&fd, libc::SOL_SOCKET, plain, bytes);
            }
        }
        let sa = sockaddr_from(addr);
        // SAFETY: `sa` is a valid sockaddr_in and the length passed is its size.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const sa).cast(),
                socklen::<libc::sockaddr_in>(),
            )
        })?;
        Ok(UdpSocket { fd })
    }

    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        let mut sa = EMPTY_SOCKADDR;
        let mut len = socklen::<libc::sockaddr_in>();
        // SAFETY: `sa` is a writable sockaddr_in and `len` holds its size;
        // the kernel writes at most that much.
        cvt(unsafe { libc::getsockname(self.fd.as_raw_fd(), (&raw mut sa).cast(), &mut len) })?;
        Ok(sockaddr_to(&sa))
    }

    /// Receive one datagram into `buf`; a longer one is cut to `buf.len()`.
    /// `WouldBlock` when nothing is queued.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        let mut sa = EMPTY_SOCKADDR;
        let mut len = socklen::<libc::sockaddr_in>();
        // SAFETY: `buf` is writable for its length; `sa` is a writable
        // sockaddr_in and `len` holds its size (an IPv4 socket's peers fit).
        let n = cvt_size(unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut sa).cast(),
                &mut len,
            )
        })?;
        Ok((n, sockaddr_to(&sa)))
    }

    /// Send one datagram to `to`. `WouldBlock` when the send buffer is full.
    pub fn send_to(&self, data: &[u8], to: SocketAddrV4) -> io::Result<usize> {
        let sa = sockaddr_from(to);
        // SAFETY: `data` is readable for its length; `sa` is a valid
        // sockaddr_in and the length passed is its size.
        cvt_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                0,
                (&raw const sa).cast(),
                socklen::<libc::sockaddr_in>(),
            )
        })
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A non-blocking UDP socket on a port the kernel picks at random,
/// connected to one peer (IPv4 or IPv6), as the DNS resolver uses it: the
/// kernel delivers only that peer's datagrams, and reports an ICMP error
/// from it (e.g. `ConnectionRefused`) on the next call.
#[derive(Debug)]
pub struct ConnectedUdp {
    fd: OwnedFd,
}

impl ConnectedUdp {
    /// Open the socket and connect it to `peer`.
    pub fn open(peer: SocketAddr) -> io::Result<ConnectedUdp> {
        let fd = match peer {
            SocketAddr::V4(v4) => {
                let fd = socket(libc::AF_INET)?;
                connect(&fd, &sockaddr_from(v4))?;
                fd
            }
            SocketAddr::V6(v6) => {
                let fd = socket(libc::AF_INET6)?;
                let sa = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo().to_be(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                connect(&fd, &sa)?;
                fd
            }
        };
        Ok(ConnectedUdp { fd })
    }

    /// Send one datagram to the peer.
    pub fn send(&self, data: &[u8]) -> io::Result<usize> {
        // SAFETY: `data` is readable for its length.
        cvt_size(unsafe { libc::send(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len(), 0) })
    }

    /// Receive one datagram from the peer into `buf` (a longer one is cut).
    /// `WouldBlock` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is writable for its length.
        cvt_size(unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
    }
}

impl AsFd for ConnectedUdp {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A new non-blocking, close-on-exec UDP socket of `family`.
fn socket(family: libc::c_int) -> io::Result<OwnedFd> {
    let kind = libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes no pointers; the result is checked by cvt.
    let fd = cvt(unsafe { libc::socket(family, kind, libc::IPPROTO_UDP) })?;
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `connect(2)` to `sa`, a C socket address struct (`sockaddr_in` or
/// `sockaddr_in6`) whose family field says which.
fn connect<T>(fd: &OwnedFd, sa: &T) -> io::Result<()> {
    // SAFETY: `sa` is readable for the length passed, its size; the kernel
    // checks the family and length before using it.
    cvt(unsafe { libc::connect(fd.as_raw_fd(), (sa as *const T).cast(), socklen::<T>()) }).map(drop)
}

/// Set an integer socket option.
pub(super) fn set_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length passed is its size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            socklen::<libc::c_int>(),
        )
    })
    .map(drop)
}

fn sockaddr_from(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn sockaddr_to(sa: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
        u16::from_be(sa.sin_port),
    )
}

/// The arrays of one `recvmmsg(2)` or `sendmmsg(2)` call, shared by both
/// kinds of batch: a message header, a buffer descriptor and an address per
/// datagram.
#[derive(Debug)]
struct Msgs<const N: usize> {
    hdrs: [libc::mmsghdr; N],
    iovs: [libc::iovec; N],
    addrs: [libc::sockaddr_in; N],
}

impl<const N: usize> Msgs<N> {
    /// Null pointers and zero lengths, filled in before each system call.
    fn new() -> Self {
        // SAFETY: the three arrays hold plain C data (integers and raw
        // pointers, plus padding fields on musl); all-zero bytes are a valid
        // value of each.
        unsafe { core::mem::zeroed() }
    }

    /// The first `count` headers, each pointing at its own address and
    /// buffer descriptor. Done just before every call, as the batch may
    /// have moved since the last one.
    fn link(&mut self, count: usize) -> &mut [libc::mmsghdr] {
        for ((hdr, iov), addr) in self
            .hdrs
            .iter_mut()
            .zip(self.iovs.iter_mut())
            .zip(self.addrs.iter_mut())
            .take(count)
        {
            hdr.msg_hdr.msg_name = (addr as *mut libc::sockaddr_in).cast();
            hdr.msg_hdr.msg_namelen = socklen::<libc::sockaddr_in>();
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_hdr.msg_flags = 0;
            hdr.msg_len = 0;
        }
        self.hdrs.get_mut(..count).unwrap_or_default()
    }
}

const EMPTY_SOCKADDR: libc::sockaddr_in = libc::sockaddr_in {
    sin_family: 0,
    sin_port: 0,
    sin_addr: libc::in_addr { s_addr: 0 },
    sin_zero: [0; 8],
};

/// Receive up to `N` datagrams per `recvmmsg(2)` call into buffers allocated
/// once.
#[derive(Debug)]
pub struct RecvBatch<const N: usize> {
    buf: Box<[u8]>,
    slot: usize,
    msgs: Msgs<N>,
    count: usize,
}

/// One datagram of a [`RecvBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// The sender.
    pub from: SocketAddrV4,
    /// The payload (at most the slot length).
    pub data: &'a [u8],
    /// The datagram was longer than the slot and `data` is cut short.
    pub truncated: bool,
}

impl<const N: usize> RecvBatch<N> {
    /// A batch of `N` slots of `slot_len` bytes each. The zeroed allocation
    /// costs address space only until datagrams land in it.
    pub fn new(slot_len: usize) -> Self {
        RecvBatch {
            buf: vec![0u8; N.saturating_mul(slot_len)].into_boxed_slice(),
            slot: slot_len,
            msgs: Msgs::new(),
            count: 0,
        }
    }

    /// Receive whatever is queued on `sock`, up to `N` datagrams, without
    /// blocking. Returns how many arrived (0 if none was waiting).
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        let slots = self.buf.chunks_exact_mut(self.slot.max(1));
        for (iov, slot) in self.msgs.iovs.iter_mut().zip(slots) {
            *iov = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot.len(),
            };
        }
        // A zero slot length leaves no buffers: nothing to receive into.
        let ready = if self.slot == 0 { 0 } else { N };
        let hdrs = self.msgs.link(ready);
        // SAFETY: the headers in `hdrs` point at their own iovec and
        // sockaddr_in and at a distinct slot of `self.buf`, all of which live
        // in `self` and stay put for the duration of the call (it holds
        // `&mut self`); no control buffer is given.
        let ret = unsafe {
            libc::recvmmsg(
                sock.as_fd().as_raw_fd(),
                hdrs.as_mut_ptr(),
                hdrs.len() as _,
                libc::MSG_DONTWAIT as _,
                core::ptr::null_mut(),
            )
        };
        match cvt(ret) {
            Ok(n) => {
                self.count = usize::try_from(n).unwrap_or(0).min(ready);
                Ok(self.count)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// The datagrams of the last [`RecvBatch::recv`].
    pub fn iter(&self) -> impl Iterator<Item = Received<'_>> {
        self.msgs
            .hdrs
            .iter()
            .zip(self.msgs.addrs.iter())
            .zip(self.buf.chunks_exact(self.slot.max(1)))
            .take(self.count)
            .map(|((hdr, addr), slot)| {
                let len = usize::try_from(hdr.msg_len).unwrap_or(usize::MAX);
                Received {
                    from: sockaddr_to(addr),
                    data: slot.get(..len).unwrap_or(slot),
                    truncated: hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
                }
            })
    }
}

/// Outcome of a [`SendBatch`].
#[derive(Debug, Default)]
pub struct Sent {
    /// Datagrams the kernel accepted.
    pub sent: usize,
    /// Datagrams dropped because the kernel refused them.
    pub failed: usize,
    /// The last refusal's reason.
    pub last_error: Option<io::Error>,
}

/// Up to `N` datagrams queued for one `sendmmsg(2)` call on one socket.
///
/// The batch borrows the payloads (`'a`) instead of copying them, so they can
/// stay in the buffers the core wrote them to.
#[derive(Debug)]
pub struct SendBatch<'s, 'a, const N: usize> {
    sock: &'s UdpSocket,
    msgs: Msgs<N>,
    len: usize,
    result: Sent,
    data: PhantomData<&'a [u8]>,
}

impl<'s, 'a, const N: usize> SendBatch<'s, 'a, N> {
    /// An empty batch for `sock`.
    pub fn new(sock: &'s UdpSocket) -> Self {
        SendBatch {
            sock,
            msgs: Msgs::new(),
            len: 0,
            result: Sent::default(),
            data: PhantomData,
        }
    }

    /// Queue `data` for `to`, first sending what is queued if the batch is
    /// full.
    pub fn push(&mut self, to: SocketAddrV4, data: &'a [u8]) {
        if self.len >= N {
            self.flush();
        }
        let msgs = &mut self.msgs;
        if let (Some(iov), Some(addr)) = (msgs.iovs.get_mut(self.len), msgs.addrs.get_mut(self.len))
        {
            // sendmmsg only reads through iov_base; the type is `*mut` because
            // the same struct serves receiving.
            *iov = libc::iovec {
                iov_base: data.as_ptr().cast_mut().cast(),
                iov_len: data.len(),
            };
            *addr = sockaddr_from(to);
            self.len += 1;
        }
    }

    /// Send everything queued and report the totals.
    pub fn finish(mut self) -> Sent {
        self.flush();
        core::mem::take(&mut self.result)
    }

    fn flush(&mut self) {
        let hdrs = self.msgs.link(self.len);
        let mut done = 0;
        while done < hdrs.len() {
            let rest = hdrs.get_mut(done..).unwrap_or_default();
            // SAFETY: each header in `rest` points at its own iovec and
            // sockaddr_in in `self` (linked above, not moved since: we hold
            // `&mut self`) and the iovec at a payload borrowed for `'a`, which
            // outlives the batch.
            let ret = unsafe {
                libc::sendmmsg(
                    self.sock.as_fd().as_raw_fd(),
                    rest.as_mut_ptr(),
                    rest.len() as _,
                    libc::MSG_DONTWAIT as _,
                )
            };
            match cvt(ret) {
                Ok(n) if n > 0 => {
                    let n = usize::try_from(n).unwrap_or(1);
                    self.result.sent += n;
                    done += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The first datagram of `rest` was refused (unreachable,
                // buffer full, …): drop it, like a lossy link, and go on.
                other => {
                    self.result.failed += 1;
                    self.result.last_error = other.err();
                    done += 1;
                }
            }
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const LOOPBACK: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);

    #[test]
    fn second_bind_is_in_use() {
        let a = UdpSocket::bind(LOOPBACK, 1 << 16).unwrap();
        let err = UdpSocket::bind(a.local_addr().unwrap(), 1 << 16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn single_round_trip() {
        let a = UdpSocket::bind(LOOPBACK, 1 << 16).unwrap();
        let b = UdpSocket::bind(LOOPBACK, 1 << 16).unwrap();
        let mut buf = [0u8; 16];
        let err = b.recv_from(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        a.send_to(b"hello", b.local_addr().unwrap()).unwrap();
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"hello"[..], a.local_addr().unwrap()));
    }

    #[test]
    fn batches_round_trip_and_flag_truncation() {
        let a = UdpSocket::bind(LOOPBACK, 1 << 16).unwrap();
        let b = UdpSocket::bind(LOOPBACK, 1 << 16).unwrap();
        let to = b.local_addr().unwrap();
        let payloads: [&[u8]; 5] = [b"one", b"two", b"three", b"", b"longer than eight"];
        let mut tx = SendBatch::<4>::new(&a);
        for p in payloads {
            tx.push(to, p);
        }
        let sent = tx.finish();
        assert_eq!((sent.sent, sent.failed), (5, 0));

        let mut rx = RecvBatch::<4>::new(8);
        assert_eq!(rx.recv(&b).unwrap(), 4);
        let from = a.local_addr().unwrap();
        let got: Vec<_> = rx.iter().collect();
        for (r, p) in got.iter().zip(payloads) {
            assert_eq!(
                *r,
                Received {
                    from,
                    data: p,
                    truncated: false
                }
            );
        }
        assert_eq!(rx.recv(&b).unwrap(), 1);
        let last = rx.iter().next().unwrap();
        assert_eq!((last.data, last.truncated), (&b"longer t"[..], true));
        assert_eq!(rx.recv(&b).unwrap(), 0);
        assert_eq!(rx.iter().count(), 0);
    }

    #[test]
    fn refused_datagram_is_counted_and_skipped() {
        let a = UdpSocket::bind(LOOPBACK, 1 << 16).unwrap();
        let b = UdpSocket::bind(LOOPBACK, 1 << 16).unwrap();
        let mut tx = SendBatch::<4>::new(&a);
        // Port 0 is not a valid destination: EINVAL for that one datagram.
        tx.push(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), b"x");
        tx.push(b.local_addr().unwrap(), b"y");
        let sent = tx.finish();
        assert_eq!((sent.sent, sent.failed), (1, 1));
        assert!(sent.last_error.is_some());
        let mut rx = RecvBatch::<4>::new(8);
        assert_eq!(rx.recv(&b).unwrap(), 1);
    }
}
