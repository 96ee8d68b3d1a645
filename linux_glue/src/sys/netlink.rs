//! A small rtnetlink client: configure the tunnel interface and watch the
//! host's IPv4 addresses and default route.
//!
//! # Why not the `rtnetlink` or `neli` crates
//!
//! The client needs eight messages: link up/down with MTU and queue length,
//! IPv6 address add/delete, IPv6 default route add/delete, and the parsing of
//! IPv4 address and route notifications (the relay adds one: a prefix
//! route to its tunnel; the server one more: the dump of the host's IPv4
//! addresses). Here that is about 300 lines and
//! costs a few KB of code. `rtnetlink` is built on tokio and `futures` (an
//! async runtime the sync, single-threaded event loops do not have and
//! routers cannot afford: several hundred KB), and its `netlink-packet-*`
//! crates model every attribute of every family. `neli` is sync but also
//! generic over the whole netlink protocol space (its derive macros and
//! typed attribute trees add ~200 KB of code for our eight messages).
//! Neither removes the `unsafe` socket calls from this module's
//! responsibility in any case: the kernel ABI is just a byte layout.
//!
//! # Layout
//!
//! Messages are built and parsed as bytes (`nlmsghdr`, then the family
//! header, then 4-byte-aligned attributes) in the host's byte order, as
//! netlink wants. Building and parsing are plain safe functions with byte
//! vector tests; only [`Netlink`] and [`Monitor`] touch sockets.
//!
//! Every request asks for an acknowledgement (`NLM_F_ACK`) and waits for it,
//! so a refused request is reported with the kernel's reason instead of
//! being silently lost.

use core::net::{Ipv4Addr, Ipv6Addr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{cvt, cvt_size, socklen};

/// `sizeof(struct nlmsghdr)`.
const HEADER_LEN: usize = 16;
/// `sizeof(struct ifinfomsg)`.
const IFINFOMSG_LEN: usize = 16;
/// `sizeof(struct ifaddrmsg)`.
const IFADDRMSG_LEN: usize = 8;
/// `sizeof(struct rtmsg)`.
const RTMSG_LEN: usize = 12;
/// `RTA_TABLE`: the full 32-bit table id of a route.
const RTA_TABLE: u16 = 15;
/// `IFLA_INET6_ADDR_GEN_MODE` (uapi/linux/if_link.h), inside
/// `IFLA_AF_SPEC` / `AF_INET6`; libc does not define it.
const IFLA_INET6_ADDR_GEN_MODE: u16 = 8;
/// `IN6_ADDR_GEN_MODE_NONE`: no automatic link-local address.
const IN6_ADDR_GEN_MODE_NONE: u8 = 1;

/// How long a request waits for the kernel's acknowledgement. The kernel
/// answers at once; this only bounds a lost answer.
const ACK_TIMEOUT_SECS: u8 = 2;

/// Add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create, or replace an existing identical entry (idempotent).
    Add,
    /// Delete.
    Delete,
}

/// Round up to netlink's 4-byte alignment.
const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Longest message built here: a route with a destination (64 bytes).
const MAX_MESSAGE: usize = 64;

/// One netlink request, built on the stack: these messages have a fixed
/// shape each, so no allocation is needed.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    buf: [u8; MAX_MESSAGE],
    len: usize,
}

impl core::ops::Deref for Message {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// One netlink message under construction.
struct Builder {
    msg: Message,
}

impl Builder {
    fn new(kind: u16, flags: libc::c_int, seq: u32) -> Self {
        let mut b = Builder {
            msg: Message {
                buf: [0; MAX_MESSAGE],
                len: 0,
            },
        };
        // Length (set by finish), type, flags, sequence number, and port
        // id 0: the kernel.
        let mut header = [0u8; HEADER_LEN];
        header[4..6].copy_from_slice(&kind.to_ne_bytes());
        header[6..8].copy_from_slice(&(flags as u16).to_ne_bytes());
        header[8..12].copy_from_slice(&seq.to_ne_bytes());
        b.put(&header);
        b
    }

    /// Append `bytes`, then zero padding to the next 4-byte boundary. The
    /// shapes built here fit [`MAX_MESSAGE`] (the tests build each one); a
    /// part that did not would be left out, never written out of bounds.
    fn put(&mut self, bytes: &[u8]) -> &mut Self {
        let m = &mut self.msg;
        let end = m.len + bytes.len();
        if let Some(dst) = m.buf.get_mut(m.len..end) {
            dst.copy_from_slice(bytes);
            // The buffer is zeroed: padding needs no writing.
            m.len = align(end).min(MAX_MESSAGE);
        }
        self
    }

    /// An attribute's header, for `payload_len` bytes of payload that the
    /// next calls append (nested attributes included).
    fn attr_header(&mut self, kind: u16, payload_len: usize) -> &mut Self {
        // Attributes here are 4 to 20 bytes: no truncation.
        let [l0, l1] = ((4 + payload_len) as u16).to_ne_bytes();
        let [k0, k1] = kind.to_ne_bytes();
        self.put(&[l0, l1, k0, k1])
    }

    /// One attribute: header, payload, padding.
    fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        self.attr_header(kind, payload.len()).put(payload)
    }

    fn finish(&mut self) -> Message {
        let len = self.msg.len as u32;
        self.msg.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.msg
    }
}

fn request_flags(op: Op) -> libc::c_int {
    let base = libc::NLM_F_REQUEST | libc::NLM_F_ACK;
    match op {
        // REPLACE makes a repeated add (after a restart) succeed instead of
        // failing with EEXIST.
        Op::Add => base | libc::NLM_F_CREATE | libc::NLM_F_REPLACE,
        Op::Delete => base,
    }
}

/// An `ifinfomsg` for interface `index` changing only `IFF_UP`, if
/// `up` is given.
fn ifinfo(index: u32, up: Option<bool>) -> [u8; IFINFOMSG_LEN] {
    let iff_up = libc::IFF_UP as u32;
    let mut ifinfo = [0u8; IFINFOMSG_LEN];
    // family AF_UNSPEC, pad, device type 0: all zero.
    ifinfo[4..8].copy_from_slice(&index.to_ne_bytes());
    if let Some(up) = up {
        ifinfo[8..12].copy_from_slice(&(if up { iff_up } else { 0 }).to_ne_bytes());
        ifinfo[12..16].copy_from_slice(&iff_up.to_ne_bytes()); // change mask
    }
    ifinfo
}

/// `RTM_NEWLINK`: set interface `index` up or down, and optionally its MTU.
pub fn link_message(seq: u32, index: u32, up: bool, mtu: Option<u32>) -> Message {
    let mut b = Builder::new(libc::RTM_NEWLINK, request_flags(Op::Delete), seq);
    b.put(&ifinfo(index, Some(up)));
    if let Some(mtu) = mtu {
        b.attr(libc::IFLA_MTU, &mtu.to_ne_bytes());
    }
    b.finish()
}

/// `RTM_NEWLINK` for a new tunnel: its transmit queue length, and no
/// automatic IPv6 link-local address (`addrgenmode none`). The kernel would
/// otherwise give the tun a random fe80:: address next to the Teredo one,
/// which RFC 4380 §5.2.1 does not foresee (Miredo's hook flushes it).
pub fn setup_message(seq: u32, index: u32, txqueuelen: u32) -> Message {
    // IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE: one byte, padded
    // to 4 } }: payloads of 4 + 4 + 4 and 4 + 4 bytes.
    Builder::new(libc::RTM_NEWLINK, request_flags(Op::Delete), seq)
        .put(&ifinfo(index, None))
        .attr(libc::IFLA_TXQLEN, &txqueuelen.to_ne_bytes())
        .attr_header(libc::IFLA_AF_SPEC, 12)
        .attr_header(libc::AF_INET6 as u16, 8)
        .attr(IFLA_INET6_ADDR_GEN_MODE, &[IN6_ADDR_GEN_MODE_NONE])
        .finish()
}

/// `RTM_NEWADDR` / `RTM_DELADDR`: IPv6 `addr/prefix_len` on interface
/// `index`, without duplicate address detection (a Teredo address is unique
/// by construction, RFC 4380 §5.2.1, and the link-local one is fixed).
///
/// A /32 Teredo address makes the kernel add the on-link route to the whole
/// Teredo prefix (2001::/32), as Miredo's hook does: peers are reached
/// directly through the tunnel.
pub fn address_message(seq: u32, op: Op, index: u32, addr: Ipv6Addr, prefix_len: u8) -> Message {
    let kind = match op {
        Op::Add => libc::RTM_NEWADDR,
        Op::Delete => libc::RTM_DELADDR,
    };
    let mut ifaddr = [0u8; IFADDRMSG_LEN];
    ifaddr[0] = libc::AF_INET6 as u8;
    ifaddr[1] = prefix_len;
    ifaddr[2] = libc::IFA_F_NODAD as u8;
    // scope 0: the kernel derives it from the address.
    ifaddr[4..8].copy_from_slice(&index.to_ne_bytes());
    Builder::new(kind, request_flags(op), seq)
        .put(&ifaddr)
        .attr(libc::IFA_LOCAL, &addr.octets())
        .attr(libc::IFA_ADDRESS, &addr.octets())
        .finish()
}

/// `RTM_NEWROUTE` / `RTM_DELROUTE`: the IPv6 default route `::/0 dev
/// <index> metric <metric>` in the main table.
pub fn default_route_message(seq: u32, op: Op, index: u32, metric: u32) -> Message {
    route_message(seq, op, index, Ipv6Addr::UNSPECIFIED, 0, metric)
}

/// `RTM_NEWROUTE` / `RTM_DELROUTE`: the IPv6 route `dst/prefix_len dev
/// <index> metric <metric>` in the main table, e.g. the relay's Teredo
/// prefix (2001::/32) through its tunnel. A /0 route carries no
/// destination attribute (the default route).
pub fn route_message(
    seq: u32,
    op: Op,
    index: u32,
    dst: Ipv6Addr,
    prefix_len: u8,
    metric: u32,
) -> Message {
    let kind = match op {
        Op::Add => libc::RTM_NEWROUTE,
        Op::Delete => libc::RTM_DELROUTE,
    };
    let rtmsg = [
        libc::AF_INET6 as u8,
        prefix_len, // dst_len
        0,          // src_len
        0,          // tos
        libc::RT_TABLE_MAIN,
        libc::RTPROT_STATIC,
        libc::RT_SCOPE_UNIVERSE,
        libc::RTN_UNICAST,
        0,
        0,
        0,
        0, // flags
    ];
    let mut b = Builder::new(kind, request_flags(op), seq);
    b.put(&rtmsg);
    if prefix_len > 0 {
        b.attr(libc::RTA_DST, &dst.octets());
    }
    b.attr(libc::RTA_OIF, &index.to_ne_bytes())
        .attr(libc::RTA_PRIORITY, &metric.to_ne_bytes())
        .finish()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The messages of one netlink datagram: `(type, sequence, body)`. Stops at
/// the first malformed header.
fn messages(mut buf: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    core::iter::from_fn(move || {
        let len = usize::try_from(u32_at(buf, 0)?).ok()?;
        let kind = u16_at(buf, 4)?;
        let seq = u32_at(buf, 8)?;
        if len < HEADER_LEN {
            return None;
        }
        let body = buf.get(HEADER_LEN..len)?;
        buf = buf.get(align(len)..).unwrap_or_default();
        Some((kind, seq, body))
    })
}

/// The attributes after a family header: `(type, payload)`.
fn attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    core::iter::from_fn(move || {
        let len = usize::from(u16_at(buf, 0)?);
        // The top two bits are the nested / byte-order flags.
        let kind = u16_at(buf, 2)? & 0x3fff;
        if len < 4 {
            return None;
        }
        let payload = buf.get(4..len)?;
        buf = buf.get(align(len)..).unwrap_or_default();
        Some((kind, payload))
    })
}

/// The kernel's answer to request `seq` in `buf`: `Some(Ok)` for an
/// acknowledgement, `Some(Err(errno))` for a refusal, `None` if `buf` holds
/// no answer to it.
fn find_ack(buf: &[u8], seq: u32) -> Option<Result<(), i32>> {
    messages(buf)
        .filter(|&(kind, s, _)| libc::c_int::from(kind) == libc::NLMSG_ERROR && s == seq)
        .find_map(|(_, _, body)| {
            let code = i32::from_ne_bytes(body.get(..4)?.try_into().ok()?);
            Some(if code == 0 {
                Ok(())
            } else {
                Err(code.saturating_neg())
            })
        })
}

/// `RTM_GETADDR` with `NLM_F_DUMP`: every IPv4 address of every interface.
/// A dump needs no privileges.
pub fn ipv4_address_dump_message(seq: u32) -> Message {
    let mut ifaddr = [0u8; IFADDRMSG_LEN];
    ifaddr[0] = libc::AF_INET as u8;
    Builder::new(
        libc::RTM_GETADDR,
        libc::NLM_F_REQUEST | libc::NLM_F_DUMP,
        seq,
    )
    .put(&ifaddr)
    .finish()
}

/// One datagram of the answer to dump request `seq`: each IPv4 address in
/// it is added to `found` as `(address, prefix length)`. `Some(Ok)` once
/// the dump is complete (`NLMSG_DONE`), `Some(Err(errno))` if the kernel
/// refused it, `None` if more datagrams follow.
///
/// The address is `IFA_LOCAL`, or `IFA_ADDRESS` without it: on a
/// point-to-point link `IFA_ADDRESS` is the peer's (as `getifaddrs(3)`
/// reads them).
fn ipv4_address_dump_part(
    buf: &[u8],
    seq: u32,
    found: &mut Vec<(Ipv4Addr, u8)>,
) -> Option<Result<(), i32>> {
    for (kind, _, body) in messages(buf).filter(|&(_, s, _)| s == seq) {
        match libc::c_int::from(kind) {
            libc::NLMSG_DONE => return Some(Ok(())),
            libc::NLMSG_ERROR => {
                let code = i32::from_ne_bytes(body.get(..4)?.try_into().ok()?);
                return Some(Err(code.saturating_neg()));
            }
            _ if kind == libc::RTM_NEWADDR && body.first() == Some(&(libc::AF_INET as u8)) => {
                let Some(&prefix_len) = body.get(1) else {
                    continue;
                };
                let (mut local, mut address) = (None, None);
                for (t, v) in attributes(body.get(IFADDRMSG_LEN..).unwrap_or_default()) {
                    let Ok(octets) = <[u8; 4]>::try_from(v) else {
                        continue;
                    };
                    match t {
                        libc::IFA_LOCAL => local = Some(Ipv4Addr::from(octets)),
                        libc::IFA_ADDRESS => address = Some(Ipv4Addr::from(octets)),
                        _ => {}
                    }
                }
                if let Some(addr) = local.or(address) {
                    found.push((addr, prefix_len));
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether a failed deletion failed because the entry was already gone
/// (no such route, address or interface): success for a caller tearing
/// down. The kernel removes routes with their address, so this is normal.
pub fn is_already_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ESRCH | libc::EADDRNOTAVAIL | libc::ENODEV | libc::ENOENT)
    )
}

/// A change to the host's IPv4 configuration that can change its NAT
/// mapping, from an rtnetlink notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Change {
    /// An address was added (`true`) or removed on interface `index`.
    Address {
        /// Added rather than removed.
        added: bool,
        /// Interface index.
        index: u32,
        /// The address (`IFA_LOCAL`), if the message carried it.
        addr: Option<Ipv4Addr>,
    },
    /// A default route of the main table was added (`true`) or removed.
    DefaultRoute {
        /// Added rather than removed.
        added: bool,
        /// Outgoing interface (`RTA_OIF`), 0 if absent.
        index: u32,
    },
}

/// The changes in one datagram from a [`Monitor`] that matter to a Teredo
/// client: IPv4 addresses other than host-scope (loopback) ones, and
/// default routes of the main table. Other routes (the local and broadcast
/// entries that come with every address, subnet routes) are skipped: an
/// address change already reports them.
pub fn ipv4_changes(buf: &[u8]) -> impl Iterator<Item = Ipv4Change> + '_ {
    messages(buf).filter_map(|(kind, _, body)| match kind {
        libc::RTM_NEWADDR | libc::RTM_DELADDR => {
            let family = *body.first()?;
            let scope = *body.get(3)?;
            let index = u32_at(body, 4)?;
            if i32::from(family) != libc::AF_INET || scope == libc::RT_SCOPE_HOST {
                return None;
            }
            let addr = attributes(body.get(IFADDRMSG_LEN..)?)
                .find(|&(t, _)| t == libc::IFA_LOCAL)
                .and_then(|(_, v)| <[u8; 4]>::try_from(v).ok())
                .map(Ipv4Addr::from);
            Some(Ipv4Change::Address {
                added: kind == libc::RTM_NEWADDR,
                index,
                addr,
            })
        }
        libc::RTM_NEWROUTE | libc::RTM_DELROUTE => {
            let hdr = body.get(..RTMSG_LEN)?;
            let (family, dst_len, mut table, kind_) = (hdr[0], hdr[1], u32::from(hdr[4]), hdr[7]);
            let mut index = 0;
            for (t, v) in attributes(body.get(RTMSG_LEN..)?) {
                match t {
                    RTA_TABLE => table = u32_at(v, 0).unwrap_or(table),
                    libc::RTA_OIF => index = u32_at(v, 0).unwrap_or(0),
                    _ => {}
                }
            }
            let main = u32::from(libc::RT_TABLE_MAIN);
            if i32::from(family) != libc::AF_INET
                || dst_len != 0
                || table != main
                || kind_ != libc::RTN_UNICAST
            {
                return None;
            }
            Some(Ipv4Change::DefaultRoute {
                added: kind == libc::RTM_NEWROUTE,
                index,
            })
        }
        _ => None,
    })
}

/// A `NETLINK_ROUTE` socket bound to `groups` (0: requests only).
fn open_socket(groups: u32, nonblocking: bool) -> io::Result<OwnedFd> {
    let mut kind = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
    if nonblocking {
        kind |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: socket(2) takes no pointers; the result is checked by cvt.
    let fd = cvt(unsafe { libc::socket(libc::AF_NETLINK, kind, libc::NETLINK_ROUTE) })?;
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain integers (and private padding); all-zero
    // is valid and means "kernel picks the port id".
    let mut sa: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa.nl_groups = groups;
    // SAFETY: `sa` is a valid sockaddr_nl and the length passed is its size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sa).cast(),
            socklen::<libc::sockaddr_nl>(),
        )
    })?;
    Ok(fd)
}

/// Receive one datagram; `None` when none is waiting (non-blocking socket).
/// With `MSG_TRUNC` in `flags` the result is the datagram's full length,
/// which exceeds `buf.len()` when it was cut.
fn recv(fd: &OwnedFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<Option<usize>> {
    loop {
        // SAFETY: `buf` is a valid, writable region of `buf.len()` bytes.
        let ret = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) };
        match cvt_size(ret) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// The request socket: each call sends one message and waits for its
/// acknowledgement.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// Open a request socket (no multicast groups, so no notification can
    /// crowd out an acknowledgement).
    pub fn open() -> io::Result<Netlink> {
        let fd = open_socket(0, false)?;
        let tv = libc::timeval {
            tv_sec: ACK_TIMEOUT_SECS.into(),
            tv_usec: 0,
        };
        // SAFETY: `tv` is a live timeval and the length passed is its size.
        cvt(unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                socklen::<libc::timeval>(),
            )
        })?;
        Ok(Netlink { fd, seq: 0 })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Set interface `index` up or down, with an optional MTU.
    pub fn set_link(&mut self, index: u32, up: bool, mtu: Option<u32>) -> io::Result<()> {
        let seq = self.next_seq();
        self.request(seq, &link_message(seq, index, up, mtu))
    }

    /// Prepare a new tunnel (see [`setup_message`]).
    pub fn setup_link(&mut self, index: u32, txqueuelen: u32) -> io::Result<()> {
        let seq = self.next_seq();
        self.request(seq, &setup_message(seq, index, txqueuelen))
    }

    /// Add or delete an IPv6 address (see [`address_message`]).
    pub fn address(
        &mut self,
        op: Op,
        index: u32,
        addr: Ipv6Addr,
        prefix_len: u8,
    ) -> io::Result<()> {
        let seq = self.next_seq();
        self.request(seq, &address_message(seq, op, index, addr, prefix_len))
    }

    /// Add or delete the IPv6 default route through `index`.
    pub fn default_route(&mut self, op: Op, index: u32, metric: u32) -> io::Result<()> {
        let seq = self.next_seq();
        self.request(seq, &default_route_message(seq, op, index, metric))
    }

    /// Add or delete the IPv6 route `dst/prefix_len` through `index` (see
    /// [`route_message`]).
    pub fn route(
        &mut self,
        op: Op,
        index: u32,
        dst: Ipv6Addr,
        prefix_len: u8,
        metric: u32,
    ) -> io::Result<()> {
        let seq = self.next_seq();
        self.request(seq, &route_message(seq, op, index, dst, prefix_len, metric))
    }

    /// Every IPv4 address of every interface (up or down), as `(address,
    /// prefix length)`, from an `RTM_GETADDR` dump.
    pub fn ipv4_addresses(&mut self) -> io::Result<Vec<(Ipv4Addr, u8)>> {
        let seq = self.next_seq();
        self.send(&ipv4_address_dump_message(seq))?;
        let mut found = Vec::new();
        // The kernel sizes dump datagrams by the reader's buffer, and by
        // at most 8 KiB when it is smaller (`NLMSG_GOODSIZE`).
        let mut buf = [0u8; 8192];
        loop {
            let n = self.receive(&mut buf)?;
            match ipv4_address_dump_part(buf.get(..n).unwrap_or_default(), seq, &mut found) {
                Some(Ok(())) => return Ok(found),
                Some(Err(errno)) => return Err(io::Error::from_raw_os_error(errno)),
                None => {}
            }
        }
    }

    /// Send `msg` to the kernel.
    fn send(&self, msg: &[u8]) -> io::Result<()> {
        let mut sa: libc::sockaddr_nl =
            // SAFETY: as in open_socket: all-zero is a valid sockaddr_nl and
            // addresses the kernel (port id 0).
            unsafe { core::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `msg` is a readable buffer of `msg.len()` bytes and `sa` a
        // valid sockaddr_nl of the length passed.
        let sent = cvt_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&raw const sa).cast(),
                socklen::<libc::sockaddr_nl>(),
            )
        })?;
        if sent != msg.len() {
            return Err(io::ErrorKind::WriteZero.into());
        }
        Ok(())
    }

    /// Receive one datagram of the kernel's answer into `buf`; one cut
    /// short is an error (`InvalidData`), not a silently shorter answer.
    fn receive(&self, buf: &mut [u8]) -> io::Result<usize> {
        match recv(&self.fd, buf, libc::MSG_TRUNC) {
            Ok(Some(n)) if n > buf.len() => Err(io::ErrorKind::InvalidData.into()),
            Ok(Some(n)) => Ok(n),
            // SO_RCVTIMEO expiry shows as EAGAIN.
            Ok(None) => Err(io::ErrorKind::TimedOut.into()),
            Err(e) => Err(e),
        }
    }

    fn request(&mut self, seq: u32, msg: &[u8]) -> io::Result<()> {
        self.send(msg)?;
        // An error answer echoes the request: a few hundred bytes at most.
        let mut buf = [0u8; 4096];
        loop {
            let n = self.receive(&mut buf)?;
            match find_ack(buf.get(..n).unwrap_or_default(), seq) {
                Some(Ok(())) => return Ok(()),
                Some(Err(errno)) => return Err(io::Error::from_raw_os_error(errno)),
                // An answer to an earlier, timed-out request: skip it.
                None => {}
            }
        }
    }
}

/// A non-blocking socket subscribed to IPv4 address and route changes.
#[derive(Debug)]
pub struct Monitor {
    fd: OwnedFd,
}

impl Monitor {
    /// Subscribe to `RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE`.
    pub fn open() -> io::Result<Monitor> {
        let groups = (libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV4_ROUTE) as u32;
        Ok(Monitor {
            fd: open_socket(groups, true)?,
        })
    }

    /// Receive one datagram of notifications (parse it with
    /// [`ipv4_changes`]); `None` when none is waiting. `ENOBUFS` means
    /// notifications were lost: treat it as "something changed".
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        recv(&self.fd, buf, 0)
    }
}

impl AsFd for Monitor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// Netlink is host-endian: build expected vectors from native-order
    /// pieces so the tests hold on big-endian MIPS too.
    fn ne16(v: u16) -> [u8; 2] {
        v.to_ne_bytes()
    }
    fn ne32(v: u32) -> [u8; 4] {
        v.to_ne_bytes()
    }

    const TEREDO: Ipv6Addr = Ipv6Addr::new(0x2001, 0, 0xc633, 0x6401, 0, 0xf227, 0x39cc, 0x9bea);

    #[test]
    fn newaddr_construct() {
        let got = address_message(7, Op::Add, 5, TEREDO, 32);
        let mut want = Vec::new();
        want.extend(ne32(64)); // 16 header + 8 ifaddrmsg + 2 × 20 attributes
        want.extend(ne16(20)); // RTM_NEWADDR
        want.extend(ne16(0x505)); // REQUEST | ACK | REPLACE | CREATE
        want.extend(ne32(7));
        want.extend(ne32(0));
        want.extend([10, 32, 0x02, 0]); // AF_INET6, /32, IFA_F_NODAD, scope
        want.extend(ne32(5));
        for attr in [2u16, 1] {
            // IFA_LOCAL, IFA_ADDRESS
            want.extend(ne16(20));
            want.extend(ne16(attr));
            want.extend([
                0x20, 0x01, 0, 0, 0xc6, 0x33, 0x64, 0x01, 0, 0, 0xf2, 0x27, 0x39, 0xcc, 0x9b, 0xea,
            ]);
        }
        assert_eq!(*got, want[..]);
        // Delete: RTM_DELADDR, REQUEST | ACK only.
        let del = address_message(8, Op::Delete, 5, TEREDO, 32);
        assert_eq!(del[4..6], ne16(21));
        assert_eq!(del[6..8], ne16(0x005));
        assert_eq!(del[16..], got[16..]);
    }

    #[test]
    fn default_route_construct() {
        let got = default_route_message(3, Op::Add, 9, 1029);
        let mut want = Vec::new();
        want.extend(ne32(44)); // 16 + 12 + 8 + 8
        want.extend(ne16(24)); // RTM_NEWROUTE
        want.extend(ne16(0x505));
        want.extend(ne32(3));
        want.extend(ne32(0));
        // AF_INET6 /0, main table, static, universe, unicast, no flags
        want.extend([10, 0, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0]);
        want.extend(ne16(8));
        want.extend(ne16(4)); // RTA_OIF
        want.extend(ne32(9));
        want.extend(ne16(8));
        want.extend(ne16(6)); // RTA_PRIORITY
        want.extend(ne32(1029));
        assert_eq!(*got, want[..]);
        let del = default_route_message(4, Op::Delete, 9, 1029);
        assert_eq!(del[4..6], ne16(25));
        assert_eq!(del[16..], got[16..]);
    }

    #[test]
    fn prefix_route_construct() {
        let prefix = Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0);
        let got = route_message(5, Op::Add, 9, prefix, 32, 1024);
        let mut want = Vec::new();
        want.extend(ne32(64)); // 16 + 12 + 20 + 8 + 8
        want.extend(ne16(24)); // RTM_NEWROUTE
        want.extend(ne16(0x505));
        want.extend(ne32(5));
        want.extend(ne32(0));
        // AF_INET6 /32, main table, static, universe, unicast, no flags
        want.extend([10, 32, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0]);
        want.extend(ne16(20));
        want.extend(ne16(1)); // RTA_DST
        want.extend([0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend(ne16(8));
        want.extend(ne16(4)); // RTA_OIF
        want.extend(ne32(9));
        want.extend(ne16(8));
        want.extend(ne16(6)); // RTA_PRIORITY
        want.extend(ne32(1024));
        assert_eq!(*got, want[..]);
        let del = route_message(6, Op::Delete, 9, prefix, 32, 1024);
        assert_eq!(del[4..6], ne16(25));
        assert_eq!(del[6..8], ne16(0x005));
        assert_eq!(del[16..], got[16..]);
    }

    #[test]
    fn link_construct() {
        let got = link_message(1, 9, true, Some(1280));
        let mut want = Vec::new();
        want.extend(ne32(40)); // 16 + 16 + 8
        want.extend(ne16(16)); // RTM_NEWLINK
        want.extend(ne16(0x005));
        want.extend(ne32(1));
        want.extend(ne32(0));
        want.extend([0, 0, 0, 0]); // AF_UNSPEC, pad, type
        want.extend(ne32(9));
        want.extend(ne32(1)); // IFF_UP
        want.extend(ne32(1)); // change mask IFF_UP
        want.extend(ne16(8));
        want.extend(ne16(4)); // IFLA_MTU
        want.extend(ne32(1280));
        assert_eq!(*got, want[..]);
        let down = link_message(2, 9, false, None);
        assert_eq!(down.len(), 32);
        assert_eq!(down[24..28], ne32(0));
        assert_eq!(down[28..32], ne32(1));
    }

    #[test]
    fn setup_construct() {
        let got = setup_message(5, 9, 1000);
        let mut want = Vec::new();
        want.extend(ne32(56)); // 16 + 16 + 8 + 16
        want.extend(ne16(16)); // RTM_NEWLINK
        want.extend(ne16(0x005));
        want.extend(ne32(5));
        want.extend(ne32(0));
        want.extend([0; 16]); // index below; flags and change mask 0
        want[20..24].copy_from_slice(&ne32(9));
        want.extend(ne16(8));
        want.extend(ne16(13)); // IFLA_TXQLEN
        want.extend(ne32(1000));
        want.extend(ne16(16));
        want.extend(ne16(26)); // IFLA_AF_SPEC
        want.extend(ne16(12));
        want.extend(ne16(10)); // AF_INET6
        want.extend(ne16(5));
        want.extend(ne16(8)); // IFLA_INET6_ADDR_GEN_MODE
        want.extend([1, 0, 0, 0]); // NONE, padding
        assert_eq!(*got, want[..]);
    }

    fn ack(seq: u32, errno: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(ne32(36));
        m.extend(ne16(2)); // NLMSG_ERROR
        m.extend(ne16(0x100)); // NLM_F_CAPPED
        m.extend(ne32(seq));
        m.extend(ne32(4242));
        m.extend((-errno).to_ne_bytes());
        m.extend([0u8; 16]); // the request's header
        m
    }

    #[test]
    fn acknowledgements() {
        assert_eq!(find_ack(&ack(7, 0), 7), Some(Ok(())));
        assert_eq!(find_ack(&ack(7, libc::EEXIST), 7), Some(Err(libc::EEXIST)));
        assert_eq!(find_ack(&ack(6, 0), 7), None);
        let both = [ack(6, libc::EPERM), ack(7, 0)].concat();
        assert_eq!(find_ack(&both, 7), Some(Ok(())));
        assert_eq!(find_ack(&both[..40], 7), None);
        assert_eq!(find_ack(&[], 7), None);
    }

    /// An `RTM_NEWADDR` notification captured (Linux 6.18, x86_64) on an
    /// `RTMGRP_IPV4_IFADDR` socket when `ip addr add 192.0.2.3/26 dev lan0`
    /// ran in a scratch namespace (lan0 = index 3): ifaddrmsg, then
    /// IFA_ADDRESS, IFA_LOCAL, IFA_LABEL "lan0", IFA_FLAGS, IFA_CACHEINFO.
    const CAPTURED_NEWADDR: &str = "\
        50000000140000000308086b294a0000021a80000300000008000100c0000203\
        08000200c0000203090003006c616e3000000000080008008000000014000600\
        ffffffffffffffff79f1060079f10600";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn newaddr_notification_deconstruct() {
        let bytes = unhex(CAPTURED_NEWADDR);
        let got: Vec<_> = ipv4_changes(&bytes).collect();
        assert_eq!(
            got,
            [Ipv4Change::Address {
                added: true,
                index: 3,
                addr: Some(Ipv4Addr::new(192, 0, 2, 3)),
            }]
        );
    }

    #[test]
    fn address_dump_construct() {
        let got = ipv4_address_dump_message(9);
        let mut want = Vec::new();
        want.extend(ne32(24)); // 16 header + 8 ifaddrmsg
        want.extend(ne16(22)); // RTM_GETADDR
        want.extend(ne16(0x301)); // REQUEST | DUMP (ROOT | MATCH)
        want.extend(ne32(9));
        want.extend(ne32(0));
        want.extend([2, 0, 0, 0]); // AF_INET, rest of ifaddrmsg 0
        want.extend(ne32(0));
        assert_eq!(*got, want[..]);
    }

    /// A dump answer's `RTM_NEWADDR`: `family`/`prefix_len` on index 2
    /// with the attributes given.
    fn dump_addr(seq: u32, family: u8, prefix_len: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![family, prefix_len, 0, 0];
        body.extend(ne32(2));
        for (kind, payload) in attrs {
            body.extend(ne16(4 + payload.len() as u16));
            body.extend(ne16(*kind));
            body.extend(*payload);
            body.resize(align(body.len()), 0);
        }
        let mut m = Vec::new();
        m.extend(ne32(16 + body.len() as u32));
        m.extend(ne16(20)); // RTM_NEWADDR
        m.extend(ne16(2)); // NLM_F_MULTI
        m.extend(ne32(seq));
        m.extend(ne32(0));
        m.extend(body);
        m
    }

    fn dump_done(seq: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(ne32(20));
        m.extend(ne16(3)); // NLMSG_DONE
        m.extend(ne16(2)); // NLM_F_MULTI
        m.extend(ne32(seq));
        m.extend(ne32(0));
        m.extend(ne32(0));
        m
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn address_dump_deconstruct() {
        // The captured notification has the layout of a dump answer.
        let mut captured = unhex(CAPTURED_NEWADDR);
        captured[8..12].copy_from_slice(&ne32(9));
        let p2p = dump_addr(9, 2, 32, &[(1, &[192, 0, 2, 66]), (2, &[192, 0, 2, 65])]);
        let peer_only = dump_addr(9, 2, 24, &[(1, &[198, 51, 100, 7])]);
        let six = dump_addr(9, 10, 64, &[(1, &[0x20, 1, 0xd, 0xb8])]);
        let none = dump_addr(9, 2, 8, &[(3, b"lo\0\0")]);
        let first = [captured, p2p, six].concat();
        let mut found = Vec::new();
        assert_eq!(ipv4_address_dump_part(&first, 9, &mut found), None);
        let last = [peer_only, none, dump_done(9)].concat();
        assert_eq!(ipv4_address_dump_part(&last, 9, &mut found), Some(Ok(())));
        assert_eq!(
            found,
            [
                (Ipv4Addr::new(192, 0, 2, 3), 26),
                (Ipv4Addr::new(192, 0, 2, 65), 32),
                (Ipv4Addr::new(198, 51, 100, 7), 24),
            ]
        );
        // Another request's answer is not this one's.
        let mut other = Vec::new();
        assert_eq!(ipv4_address_dump_part(&last, 8, &mut other), None);
        assert!(other.is_empty());
        // A refusal.
        let mut err = Vec::new();
        assert_eq!(
            ipv4_address_dump_part(&ack(9, libc::EPERM), 9, &mut err),
            Some(Err(libc::EPERM))
        );
    }

    fn route_notification(kind: u16, family: u8, dst_len: u8, table: u8, rtype: u8) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(ne32(36));
        m.extend(ne16(kind));
        m.extend(ne16(0));
        m.extend(ne32(0));
        m.extend(ne32(0));
        m.extend([family, dst_len, 0, 0, table, 3, 0, rtype, 0, 0, 0, 0]);
        m.extend(ne16(8));
        m.extend(ne16(4)); // RTA_OIF
        m.extend(ne32(4));
        m
    }

    #[test]
    fn route_notifications_filtered() {
        let default = route_notification(24, 2, 0, 254, 1);
        assert_eq!(
            ipv4_changes(&default).collect::<Vec<_>>(),
            [Ipv4Change::DefaultRoute {
                added: true,
                index: 4
            }]
        );
        let gone = route_notification(25, 2, 0, 254, 1);
        assert_eq!(
            ipv4_changes(&gone).collect::<Vec<_>>(),
            [Ipv4Change::DefaultRoute {
                added: false,
                index: 4
            }]
        );
        // Subnet route, local table broadcast entry, IPv6: not interesting.
        for other in [
            route_notification(24, 2, 26, 254, 1),
            route_notification(24, 2, 32, 255, 2),
            route_notification(24, 10, 0, 254, 1),
        ] {
            assert_eq!(ipv4_changes(&other).count(), 0);
        }
        // Several in one datagram.
        let two = [default, gone].concat();
        assert_eq!(ipv4_changes(&two).count(), 2);
    }

    #[test]
    fn loopback_address_is_ignored() {
        let mut bytes = unhex(CAPTURED_NEWADDR);
        bytes[16 + 3] = libc::RT_SCOPE_HOST;
        assert_eq!(ipv4_changes(&bytes).count(), 0);
    }

    #[test]
    fn garbage_never_panics() {
        let base = unhex(CAPTURED_NEWADDR);
        let mut found = Vec::new();
        for cut in 0..base.len() {
            let _ = ipv4_changes(&base[..cut]).count();
            let _ = find_ack(&base[..cut], 0);
            let _ = ipv4_address_dump_part(&base[..cut], 0x6b08_0803, &mut found);
        }
        for i in 0..base.len() {
            for v in [0u8, 1, 3, 0x7f, 0xff] {
                let mut b = base.clone();
                b[i] = v;
                let _ = ipv4_changes(&b).count();
                let _ = ipv4_address_dump_part(&b, 0x6b08_0803, &mut found);
            }
        }
    }

    /// Needs CAP_NET_ADMIN (the lab and CI run as root); skipped without.
    #[test]
    fn kernel_refusal_is_reported() {
        let Ok(mut nl) = Netlink::open() else { return };
        // No interface has index 0x7fff_fff0.
        let err = nl
            .address(Op::Add, 0x7fff_fff0, TEREDO, 32)
            .expect_err("no such interface");
        assert!(
            matches!(err.raw_os_error(), Some(libc::ENODEV) | Some(libc::EPERM)),
            "{err}"
        );
        assert!(Monitor::open().is_ok());
    }

    /// The dump needs no privileges: every namespace has `lo`.
    #[test]
    fn kernel_lists_addresses() {
        let found = Netlink::open().unwrap().ipv4_addresses().unwrap();
        if let Some(lo) = found.iter().find(|(a, _)| a.is_loopback()) {
            assert_eq!(lo.1, 8);
        }
    }
}
