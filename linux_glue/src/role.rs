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

use log::{debug, info, warn};
use shipworm_core::time::Duration;

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
    // One non-generic body for every such message of every role.
    #[inline(never)]
    pub fn startup(context: &str, cause: &dyn fmt::Display) -> Error {
        Error::Startup(format!("{context}: {cause}"))
    }

    /// A run-time error "`context`: `cause`".
    #[inline(never)]
    pub fn runtime(context: &str, cause: &dyn fmt::Display) -> Error {
        Error::Runtime(format!("{context}: {cause}"))
    }
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

/// `poll(2)` for an event loop: a failure ends the loop.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> Result<(), Error> {
    match poll::poll(fds, timeout) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::runtime("poll failed", &e)),
    }
}

/// A socket's address for logs.
pub fn sock_name(sock: &UdpSocket) -> String {
    sock.local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string())
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
                warn!("receive on {}: {e}", sock_name(sock));
                return;
            }
        }
    }
}

/// Add a finished send batch's outcome to the role's counters.
pub fn count_sent(sent: Sent, sock: &UdpSocket, ok: &mut u64, failed: &mut u64) {
    *ok += sent.sent as u64;
    *failed += sent.failed as u64;
    if let Some(e) = sent.last_error {
        debug!(
            "{} UDP sends from {} failed: {e}",
            sent.failed,
            sock_name(sock)
        );
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
    }
}
