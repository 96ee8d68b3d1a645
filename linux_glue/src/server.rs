//! `shipworm server`: the event loop around [`shipworm_core::server::Server`].
//!
//! Start-up refuses, with one line and exit status 2, what cannot work: a
//! server address that is not global unicast (RFC 4380 §5.2.4) or not on this
//! host, a UDP port 3544 already taken, no right to open the sockets. A host
//! without a global IPv6 route only gets a warning (RFC 4380 §5.3.1
//! forwarding will fail until one appears).
//!
//! The loop then polls the two UDP sockets and the signal descriptor,
//! drains each ready socket with `recvmmsg(2)`, hands every datagram to the
//! core and carries out its [`Action`]: UDP replies go out batched with
//! `sendmmsg(2)` from the socket the core names, native IPv6 packets through
//! the raw socket. The server is stateless, so there are no timers: `poll`
//! waits without a timeout. All buffers are allocated here, once.
//!
//! Code size (routers, issue #2): start-up, the loop and a reload are
//! `#[inline(never)]`, as in [`crate::relay`]: LTO would otherwise fold them
//! into `main`, which comes out several KB bigger on mipsel.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::io;
use std::os::fd::AsFd;

use log::{debug, info, warn};
use shipworm_core::addr::{is_global_unicast, TEREDO_PORT};
use shipworm_core::server::{Action, Config, Drop as DropReason, Local, Server};

use crate::cli::ProcessArgs;
use crate::cli::{Reload, Role};
use crate::config;
use crate::privileges::{Keep, Target};
use crate::role::{self, prefix_addr, Error, SignalHandler, BATCH};
use crate::status::{self, StatusSocket};
use crate::sys::ifaddr::{self, Ipv4Assigned};
use crate::sys::poll::PollFd;
use crate::sys::raw6::{self, RawIpv6Socket};
use crate::sys::signal::Signals;
use crate::sys::udp::{RecvBatch, SendBatch, UdpSocket};
use crate::sys::{clock, route};

/// Receive slot and output buffer size: the largest UDP payload over IPv4
/// (65,507 bytes) fits, so no datagram is ever cut, and so does any reply the
/// core builds from one (the core checks `out`'s length before writing).
/// Untouched pages of these buffers cost no memory.
const SLOT: usize = 1 << 16;

/// Kernel socket buffer requested each way per UDP socket.
const SOCKET_BUFFER: usize = 1 << 20;

/// Check the host, open the sockets and serve until SIGINT or SIGTERM;
/// SIGHUP reads the configuration again through `reload`.
#[inline(never)] // see "Code size" in the module documentation
pub fn run(config: Config, reload: Reload, process: &ProcessArgs) -> Result<(), Error> {
    let signals = role::install_signals()?;
    let target = Target::for_role(process.user.as_deref(), process.chroot.as_deref(), false)?;
    let local = ifaddr::ipv4_addresses()
        .map_err(|e| Error::startup("cannot list local IPv4 addresses", &e))?;
    for addr in [config.primary, config.secondary] {
        check_address(addr, &local)?;
    }
    let udp = [
        role::bind(
            SocketAddrV4::new(config.primary, TEREDO_PORT),
            SOCKET_BUFFER,
        )?,
        role::bind(
            SocketAddrV4::new(config.secondary, TEREDO_PORT),
            SOCKET_BUFFER,
        )?,
    ];
    let raw = RawIpv6Socket::open().map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => {
            Error::Startup("opening a raw IPv6 socket needs root or CAP_NET_RAW".to_owned())
        }
        _ => Error::startup("cannot open a raw IPv6 socket", &e),
    })?;
    match route::has_global_ipv6_route() {
        Ok(true) => {}
        Ok(false) => warn!(
            "no global IPv6 route: packets for native IPv6 hosts (the clients' \
             connectivity tests) will be dropped until one exists"
        ),
        Err(e) => warn!("cannot read the IPv6 routing table ({e}); forwarding may fail"),
    }
    let status = StatusSocket::open("server", process.status_socket.as_deref(), target.account())?;
    // Sockets open: nothing the server does from here on needs privileges.
    target.apply(Keep::Nothing)?;
    info!(
        "Teredo server on {}:{TEREDO_PORT} and {}:{TEREDO_PORT}, prefix {}/32, MTU {}",
        config.primary,
        config.secondary,
        prefix_addr(config.prefix),
        config.mtu
    );
    // Sockets bound, privileges dropped: a `--daemon` start succeeded.
    crate::sys::daemon::ready();
    EventLoop {
        server: Server::new(config, clock::now()),
        signals,
        udp,
        raw,
        rx: RecvBatch::new(SLOT),
        out: role::zeroed(BATCH * SLOT),
        counters: Counters::default(),
        status,
        reload,
    }
    .run()
}

/// The RFC 4380 §5.2.4 global-unicast test, including its host-dependent
/// part (directed broadcasts of attached subnets), and presence on this host.
fn check_address(addr: Ipv4Addr, local: &[Ipv4Assigned]) -> Result<(), Error> {
    let broadcast = local.iter().any(|a| a.directed_broadcast() == Some(addr));
    if !is_global_unicast(addr) || broadcast {
        return Err(Error::Startup(format!(
            "{addr} is not a global unicast IPv4 address (RFC 4380 §5.2.4); \
             a Teredo server needs two public addresses"
        )));
    }
    if !local.iter().any(|a| a.addr == addr) {
        return Err(Error::Startup(format!(
            "address {addr} is not assigned to this host"
        )));
    }
    Ok(())
}

/// What the glue itself counts (the core keeps its own, finer counters).
#[derive(Debug, Default)]
struct Counters {
    received: u64,
    truncated: u64,
    sent_udp: u64,
    sent_ipv6: u64,
    send_failed: u64,
}

struct EventLoop {
    server: Server,
    signals: Signals,
    /// Primary, then secondary.
    udp: [UdpSocket; 2],
    raw: RawIpv6Socket,
    rx: RecvBatch<BATCH>,
    /// One `SLOT`-sized output buffer per datagram of a batch, so every
    /// reply of a batch can wait for one `sendmmsg`.
    out: Box<[u8]>,
    counters: Counters,
    status: StatusSocket,
    reload: Reload,
}

impl EventLoop {
    #[inline(never)] // see "Code size" in the module documentation
    fn run(mut self) -> Result<(), Error> {
        loop {
            let (signalled, ready, status) = {
                let mut fds = [
                    PollFd::readable(self.signals.as_fd()),
                    PollFd::readable(self.udp[0].as_fd()),
                    PollFd::readable(self.udp[1].as_fd()),
                    self.status.poll_fd(),
                ];
                role::poll(&mut fds, None)?;
                let [s, p, q, st] = &fds;
                (s.is_ready(), [p.is_ready(), q.is_ready()], st.is_ready())
            };
            if signalled && role::handle_signals(&mut self)? {
                return Ok(());
            }
            for (local, ready) in [Local::Primary, Local::Secondary].into_iter().zip(ready) {
                if ready {
                    self.drain(local);
                }
            }
            if status {
                self.serve_status();
            }
        }
    }

    /// Answer status socket clients (see [`crate::status`]).
    fn serve_status(&mut self) {
        let EventLoop {
            server,
            counters: c,
            status,
            ..
        } = self;
        // A trait object: one instance of `serve` for every role.
        let render: &mut dyn FnMut(&mut status::Json<'_>) = &mut |j| {
            status::server(
                j,
                server.config(),
                server.stats(),
                &[
                    ("received", c.received),
                    ("truncated", c.truncated),
                    ("sent_udp", c.sent_udp),
                    ("sent_ipv6", c.sent_ipv6),
                    ("send_failed", c.send_failed),
                ],
            )
        };
        status.serve(render);
    }

    /// Apply a reloaded configuration. The server keeps no per-client
    /// state, so a new prefix, MTU or forwarding limit takes a new core
    /// server at once (only its counters restart); new addresses need new
    /// sockets on port 3544, which a process that may have dropped root can
    /// no longer bind: those wait for a restart.
    #[inline(never)] // see "Code size" in the module documentation
    fn reconfigure(&mut self, new: Config) {
        let old = *self.server.config();
        if (new.primary, new.secondary) != (old.primary, old.secondary) {
            warn!(
                "reload: server addresses {} and {} take effect at the next restart \
                 (still serving on {} and {})",
                new.primary, new.secondary, old.primary, old.secondary
            );
        }
        let new = Config {
            primary: old.primary,
            secondary: old.secondary,
            ..new
        };
        if new == old {
            info!("reload: server settings unchanged");
            return;
        }
        self.log_stats();
        self.server = Server::new(new, clock::now());
        info!(
            "reload: now prefix {}/32, MTU {}, forwarding payloads up to {} bytes \
             (counters restarted)",
            prefix_addr(new.prefix),
            new.mtu,
            new.max_forward_payload
        );
    }

    /// The core's counters, then the glue's own.
    fn log_stats(&self) {
        let s = self.server.stats();
        info!(
            "stats: {} datagrams received, {} router advertisements, {} packets \
             forwarded to Teredo and {} to native IPv6, {} ICMPv6 errors sent \
             ({} rate-limited), {} dropped",
            s.received,
            s.advertisements,
            s.forwarded_teredo,
            s.forwarded_native,
            s.icmp_errors,
            s.icmp_errors_limited,
            s.total_drops()
        );
        if s.total_drops() > 0 {
            let mut reasons = String::new();
            for reason in DropReason::ALL {
                role::push_drops(&mut reasons, reason.name(), s.drops(reason));
            }
            info!("drops{reasons}");
        }
        let c = &self.counters;
        info!(
            "sockets: {} datagrams received ({} too long, dropped), {} UDP and \
             {} IPv6 packets sent, {} sends failed",
            c.received, c.truncated, c.sent_udp, c.sent_ipv6, c.send_failed
        );
    }

    /// Receive what `local`'s socket has queued, feed it to the core and
    /// carry out its answers, a few batches at most.
    fn drain(&mut self, local: Local) {
        let EventLoop {
            server,
            udp,
            raw,
            rx,
            out,
            counters,
            ..
        } = self;
        let [primary, secondary] = &*udp;
        role::receive(rx, &udp[index(local)], &mut |rx| {
            let now = clock::now();
            let mut tx: [SendBatch<'_, '_, BATCH>; 2] =
                [SendBatch::new(primary), SendBatch::new(secondary)];
            for (dgram, out) in rx.iter().zip(out.chunks_exact_mut(SLOT)) {
                counters.received += 1;
                if dgram.truncated {
                    counters.truncated += 1;
                    continue;
                }
                match server.handle_udp(now, local, dgram.from, dgram.data, out) {
                    Action::None => {}
                    Action::SendUdp { from, to, data } => tx[index(from)].push(to, data),
                    Action::SendIpv6(packet) => match raw.send(packet) {
                        Ok(()) => counters.sent_ipv6 += 1,
                        Err(e) => {
                            counters.send_failed += 1;
                            // The core only forwards whole IPv6 headers.
                            let to = raw6::destination(packet).unwrap_or(Ipv6Addr::UNSPECIFIED);
                            debug!("cannot forward to {to}: {e}");
                        }
                    },
                }
            }
            for (batch, sock) in tx.into_iter().zip(udp.iter()) {
                role::count_sent(
                    batch.finish(),
                    sock,
                    &mut counters.sent_udp,
                    &mut counters.send_failed,
                );
            }
        });
    }
}

fn index(local: Local) -> usize {
    match local {
        Local::Primary => 0,
        Local::Secondary => 1,
    }
}

impl SignalHandler for EventLoop {
    fn signals(&self) -> &Signals {
        &self.signals
    }

    fn on_status(&mut self) {
        self.log_stats();
    }

    fn on_reload(&mut self) {
        if let Some(Role::Server(new)) = self.reload.reload(config::Role::Server) {
            self.reconfigure(new.config);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn assigned(addr: [u8; 4], mask: [u8; 4]) -> Ipv4Assigned {
        Ipv4Assigned {
            addr: addr.into(),
            netmask: mask.into(),
        }
    }

    #[test]
    fn address_checks() {
        let local = [
            assigned([198, 51, 100, 1], [255, 255, 255, 0]),
            assigned([10, 0, 0, 1], [255, 0, 0, 0]),
            assigned([203, 0, 113, 1], [255, 255, 255, 128]),
        ];
        assert!(check_address(Ipv4Addr::new(198, 51, 100, 1), &local).is_ok());
        let msg = |a: [u8; 4]| check_address(a.into(), &local).unwrap_err().to_string();
        assert!(msg([10, 0, 0, 1]).contains("10.0.0.1 is not a global unicast"));
        assert!(msg([198, 51, 100, 255]).contains("not a global unicast"));
        assert!(msg([203, 0, 113, 127]).contains("not a global unicast"));
        assert!(msg([203, 0, 113, 9]).contains("address 203.0.113.9 is not assigned"));
    }
}
