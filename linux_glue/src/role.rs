//! What every role's event loop shares: how it fails, what it does with
//! signals, and the set-up steps and UDP batches that are the same in more
//! than one role.
//!
//! Each role (`server`, `client`, `relay`) blocks SIGINT, SIGTERM, SIGUSR1 and
//! SIGHUP and reads them from a signalfd in its poll loop; the dispatch is the
//! same everywhere and lives here once: stop on SIGINT/SIGTERM, report status
//! on SIGUSR1 (never die of it, as Miredo does), reload on SIGHUP.
//!
//! Sharing is also what keeps the binary small for routers: one body for
//! each message below, one instance of the batched socket code (every role
//! uses [`BATCH`]), instead of a near-copy per role.

use core::fmt;
use core::net::{Ipv6Addr, SocketAddrV4};
use std::io;

use log::{debug, error, info, warn};
use shipworm_core::time::Duration;
use shipworm_core::tunnel::{Destination, Output};

use crate::sys::netlink::Netlink;
use crate::sys::poll::{self, PollFd};
use crate::sys::signal::{Signal, Signals};
use crate::sys::tun::Tun;
use crate::sys::udp::{RecvBatch, Sent, UdpSocket};

/// Datagrams moved per `recvmmsg(2)` / `sendmmsg(2)` call, in every role:
/// one value, so the batch code is compiled once.
pub const BATCH: usize = 32;

/// Batches drained from one descriptor before polling again, so a flood on
/// one cannot starve the others or the signal descriptor.
pub const BATCHES_PER_WAKE: usize = 4;

/// Why a role stopped other than by a signal.
#[derive(Debug)]
pub enum Error {
    /// A start-up check failed or a socket could not be set up: bad
    /// configuration for this host (exit status 2).
    Startup(String),
    /// The event loop could not go on (exit status 1).
    Runtime(String),
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Startup(_) => 2,
            Error::Runtime(_) => 1,
        }
    }

    /// The message, without the exit status.
    pub fn message(&self) -> &str {
        match self {
            Error::Startup(m) | Error::Runtime(m) => m,
        }
    }
}

impl Error {
    /// A start-up error "`context`: `cause`".
    pub fn startup(context: &str, cause: &dyn fmt::Display) -> Error {
        Error::Startup(with_cause(context, cause))
    }

    /// A run-time error "`context`: `cause`".
    pub fn runtime(context: &str, cause: &dyn fmt::Display) -> Error {
        Error::Runtime(with_cause(context, cause))
    }
}

/// "`context`: `cause`".
// One non-generic body for every such message of every role.
#[inline(never)]
fn with_cause(context: &str, cause: &dyn fmt::Display) -> String {
    format!("{context}: {cause}")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A role's answers to the signals it handles.
pub trait SignalHandler {
    /// The role's signal descriptor.
    fn signals(&self) -> &Signals;
    /// SIGUSR1: log the role's state and counters.
    fn on_status(&mut self);
    /// SIGHUP: read the configuration again and apply what changed.
    fn on_reload(&mut self);
}

/// Handles every pending signal; `Ok(true)` means SIGINT or SIGTERM arrived
/// and the loop must stop.
// A trait object: one body for every role and waiting state, not one each.
pub fn handle_signals(role: &mut dyn SignalHandler) -> Result<bool, Error> {
    loop {
        let signal = role
            .signals()
            .read()
            .map_err(|e| Error::runtime("cannot read signals", &e))?;
        match signal {
            None => return Ok(false),
            Some(s @ (Signal::Interrupt | Signal::Terminate)) => {
                info!("{s} received, stopping");
                return Ok(true);
            }
            Some(Signal::User1) => role.on_status(),
            Some(Signal::Hangup) => role.on_reload(),
        }
    }
}

/// Block the signals every role handles and read them from a descriptor.
/// Done first, so that a signal during start-up is not lost to its default
/// action after the role has bound its ports.
pub fn install_signals() -> Result<Signals, Error> {
    Signals::install().map_err(|e| Error::startup("cannot set up signal handling", &e))
}

/// Create the tunnel interface `name` and a netlink socket to configure
/// it, then set its transmit queue length to `txqueuelen` and turn off the
/// kernel's automatic link-local address (a warning if that fails: the
/// tunnel works with the defaults). Every role with a tunnel starts so.
pub fn open_tunnel(name: &str, txqueuelen: u32) -> Result<(Tun, Netlink), Error> {
    let tun = Tun::open(name).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => {
            Error::Startup("creating the tunnel interface needs root or CAP_NET_ADMIN".to_owned())
        }
        _ => Error::Startup(format!("cannot create tunnel interface {name}: {e}")),
    })?;
    let mut nl = Netlink::open().map_err(|e| Error::startup("cannot open a netlink socket", &e))?;
    if let Err(e) = nl.setup_link(tun.index(), txqueuelen) {
        warn!(
            "cannot set the queue length and address generation of {}: {e}",
            tun.name()
        );
    }
    Ok((tun, nl))
}

/// Bind a UDP socket at start-up, naming the usual causes of failure.
#[inline(never)]
pub fn bind(sa: SocketAddrV4, buffer_bytes: usize) -> Result<UdpSocket, Error> {
    UdpSocket::bind(sa, buffer_bytes).map_err(|e| {
        Error::Startup(match e.kind() {
            io::ErrorKind::AddrInUse => format!("address {sa} is in use"),
            io::ErrorKind::AddrNotAvailable => {
                format!("address {} is not assigned to this host", sa.ip())
            }
            io::ErrorKind::PermissionDenied => {
                format!("binding {sa} needs root or CAP_NET_BIND_SERVICE")
            }
            _ => format!("cannot bind {sa}: {e}"),
        })
    })
}

/// SIGHUP with a new service address: bind `local` in place of `udp`;
/// `true` if that worked. A failure (a port in use, or below 1024 now that
/// privileges are gone) keeps the old socket. The log line names the new
/// address and ends with `outcome` (what else the change means to the role).
#[inline(never)]
pub fn rebind(
    udp: &mut UdpSocket,
    local: SocketAddrV4,
    buffer_bytes: usize,
    outcome: &str,
) -> bool {
    match bind(local, buffer_bytes) {
        Ok(new) => {
            *udp = new;
            info!("reload: now on UDP {local}{outcome}");
            true
        }
        Err(e) => {
            error!("reload: {e}; keeping UDP {}", SockName(udp));
            false
        }
    }
}

/// `poll(2)` for an event loop: a failure ends the loop.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> Result<(), Error> {
    match poll::poll(fds, timeout) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::runtime("poll failed", &e)),
    }
}

/// A socket's address for logs, written straight into the line (no
/// `String` per message); `?` if the kernel cannot say.
pub struct SockName<'a>(pub &'a UdpSocket);

impl fmt::Display for SockName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.local_addr() {
            Ok(a) => fmt::Display::fmt(&a, f),
            Err(_) => f.write_str("?"),
        }
    }
}

/// A zeroed buffer of `len` bytes for a role's packets, allocated once at
/// start-up (one body for every such buffer).
#[inline(never)]
pub fn zeroed(len: usize) -> Box<[u8]> {
    vec![0u8; len].into_boxed_slice()
}

/// The Teredo prefix (its first 32 bits) as an IPv6 network address.
pub fn prefix_addr([a, b, c, d]: [u8; 4]) -> Ipv6Addr {
    Ipv6Addr::from([a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
}

/// Receive what `sock` has queued into `rx` and hand each batch to
/// `process`, [`BATCHES_PER_WAKE`] batches at most.
pub fn receive(
    rx: &mut RecvBatch<BATCH>,
    sock: &UdpSocket,
    process: &mut dyn FnMut(&RecvBatch<BATCH>),
) {
    for _ in 0..BATCHES_PER_WAKE {
        match rx.recv(sock) {
            Ok(0) => return,
            Ok(n) => {
                process(rx);
                if n < BATCH {
                    return;
                }
            }
            // Transient (e.g. ENOMEM): the datagrams stay queued and poll
            // reports the socket again.
            Err(e) => {
                warn!("receive on {}: {e}", SockName(sock));
                return;
            }
        }
    }
}

/// Read one packet from `tun` into `buf`: its length, or `None` when none
/// is waiting or the read failed (a failure is only logged: the loop polls
/// again).
#[inline(never)]
pub fn read_tunnel(tun: &Tun, buf: &mut [u8]) -> Option<usize> {
    tun.read(buf).unwrap_or_else(|e| {
        debug!("read from {}: {e}", tun.name());
        None
    })
}

/// Add a finished send batch's outcome to the role's counters.
pub fn count_sent(sent: Sent, sock: &UdpSocket, ok: &mut u64, failed: &mut u64) {
    *ok += sent.sent as u64;
    *failed += sent.failed as u64;
    if let Some(e) = sent.last_error {
        debug!(
            "{} UDP sends from {} failed: {e}",
            sent.failed,
            SockName(sock)
        );
    }
}

/// What a role with a tunnel counts of its own sends: datagrams from its
/// UDP socket and packets into its tunnel.
#[derive(Debug, Default)]
pub struct Sends {
    /// Datagrams the kernel accepted.
    pub udp_sent: u64,
    /// Datagrams the kernel refused.
    pub udp_send_failed: u64,
    /// Packets written to the tunnel.
    pub tun_written: u64,
    /// Packets the tunnel refused.
    pub tun_write_failed: u64,
}

/// Send one datagram from `udp` or write one packet to `tun`, as the core's
/// `dest` says, and count the outcome. A failure loses that one packet,
/// like a lossy link: it is only logged at debug level.
// One body for every transmission of the client and the relay: their
// outputs, their queued transmits (bubbles, released packets, ICMPv6
// errors) and the relay's tunnel writes.
#[inline(never)]
pub fn transmit(udp: &UdpSocket, tun: &Tun, sends: &mut Sends, dest: Destination, data: &[u8]) {
    let (result, ok, failed, what, to): (_, _, _, _, &dyn fmt::Display) = match &dest {
        Destination::Udp(to) => (
            udp.send_to(data, *to).map(drop),
            &mut sends.udp_sent,
            &mut sends.udp_send_failed,
            "send to",
            to,
        ),
        Destination::Tunnel => (
            tun.write(data),
            &mut sends.tun_written,
            &mut sends.tun_write_failed,
            "write to",
            &tun.name(),
        ),
    };
    match result {
        Ok(()) => *ok += 1,
        Err(e) => {
            *failed += 1;
            debug!("{what} {to}: {e}");
        }
    }
}

/// Carry out one output of the core at once (see [`transmit`]).
pub fn deliver(udp: &UdpSocket, tun: &Tun, sends: &mut Sends, output: Output<'_>) {
    match output {
        Output::None => {}
        Output::Udp { to, data } => transmit(udp, tun, sends, Destination::Udp(to), data),
        Output::Tunnel(packet) => transmit(udp, tun, sends, Destination::Tunnel, packet),
    }
}

/// Add ` name=N` to a log line's list of drop reasons (a colon opens the
/// list) unless `n` is zero.
pub fn push_drops(list: &mut String, name: &str, n: u64) {
    if n > 0 {
        if list.is_empty() {
            list.push(':');
        }
        use fmt::Write as _;
        let _ = write!(list, " {name}={n}");
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn in_use_port_is_named() {
        // Any free loopback port stands in for 3544 (binding it needs root).
        let held = bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), 1 << 16).unwrap();
        let sa = held.local_addr().unwrap();
        let msg = bind(sa, 1 << 16).unwrap_err();
        assert_eq!(msg.to_string(), format!("address {sa} is in use"));
        assert_eq!(msg.exit_code(), 2);
        assert_eq!(SockName(&held).to_string(), sa.to_string());
    }

    #[test]
    fn rebind_keeps_the_old_socket_on_failure() {
        let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let mut udp = bind(any, 1 << 16).unwrap();
        let old = udp.local_addr().unwrap();
        let other = bind(any, 1 << 16).unwrap();
        assert!(!rebind(&mut udp, other.local_addr().unwrap(), 1 << 16, ""));
        assert_eq!(udp.local_addr().unwrap(), old);
        assert!(rebind(&mut udp, any, 1 << 16, ""));
        assert_ne!(udp.local_addr().unwrap(), old);
    }

    #[test]
    fn messages() {
        let e = Error::startup("cannot open a netlink socket", &"Permission denied");
        assert_eq!(
            (e.to_string(), e.exit_code()),
            (
                "cannot open a netlink socket: Permission denied".to_owned(),
                2
            )
        );
        let e = Error::runtime("poll failed", &"Bad file descriptor");
        assert_eq!(
            (e.to_string(), e.exit_code()),
            ("poll failed: Bad file descriptor".to_owned(), 1)
        );
        assert_eq!(
            prefix_addr([0x3f, 0xfe, 0x83, 0x1f]),
            "3ffe:831f::".parse::<Ipv6Addr>().unwrap()
        );
        let mut drops = String::new();
        push_drops(&mut drops, "a", 0);
        assert_eq!(drops, "");
        push_drops(&mut drops, "b", 2);
        push_drops(&mut drops, "c", 1);
        assert_eq!(drops, ": b=2 c=1");
    }
}
