//! `shipworm relay`: the event loop around [`shipworm_core::relay::Relay`].
//!
//! # Set-up
//!
//! Start-up refuses, with one line and exit status 2, what cannot work: IPv6
//! forwarding switched off (the relay is a router between native IPv6 and its
//! tunnel; without forwarding the kernel drops every packet in both
//! directions, so the message gives the sysctl to run), a UDP port already
//! taken, no right to create the tunnel. It then creates the tunnel with a
//! long transmit queue ([`TXQUEUELEN`]: Miredo's 500 overflowed in the lab),
//! no automatic link-local address, the configured MTU, brings it up and
//! routes the Teredo prefix (`2001::/32`) to it with metric
//! [`ROUTE_METRIC`], as Miredo does. The tunnel gets no address: the kernel
//! forwards through an interface without one, kernel-made ICMPv6 errors
//! take the host's native address as source, and the relay's own link-local
//! address (the source of its bubbles) is the core's business, never seen
//! by the kernel. The process then gives up root ([`crate::privileges`]):
//! nothing it does later needs privileges. SIGINT and SIGTERM stop it; the
//! kernel removes the tunnel when its descriptor closes, and the route with
//! it (a route through a vanished interface vanishes too), which is why the
//! relay keeps no `CAP_NET_ADMIN` for its teardown.
//!
//! # Fast path
//!
//! One `poll(2)` waits on the signal descriptor, the UDP socket, the tunnel
//! and the core's next timer. Each ready descriptor is drained up to a
//! budget ([`BATCH`] × [`BATCHES_PER_WAKE`]) so that a flood in one
//! direction cannot starve the other or the signals:
//!
//! - tunnel → UDP: up to [`BATCH`] packets are read into their own slots,
//!   each goes to [`Relay::handle_ipv6`] with its own output slot, and every
//!   [`Output::Udp`] (which borrows the packet itself: simple encapsulation
//!   adds no header) waits in one `sendmmsg(2)` batch;
//! - UDP → tunnel: `recvmmsg(2)` fills up to [`BATCH`] slots, each datagram
//!   goes to [`Relay::handle_udp`], and every [`Output::Tunnel`] (the
//!   decapsulated packet, borrowing the datagram) is written to the tunnel at
//!   once: a tun device has no batched write.
//!
//! Copies: one per packet and direction, each forced by the kernel interface
//! (`read(2)` from the tun into user memory, `sendmmsg(2)` into socket
//! buffers; `recvmmsg(2)` out of them, `write(2)` into the tun). The core
//! works in place on those buffers; nothing is allocated after start-up.
//! [`Relay::poll_transmit`] (bubbles, packets released from a peer's queue,
//! ICMPv6 errors) is drained after every input into one more buffer and sent
//! at once: that is the slow path, rare next to the traffic it sets up.
//!
//! # One thread
//!
//! The relay runs on one thread. Its targets are two-core routers where the
//! kernel's own forwarding, the NAT and often a Teredo client share the
//! cores, so a second relay thread would mostly compete with the kernel
//! work the relay itself generates; the per-packet work here is a table
//! look-up and two system calls amortised over a batch. A multi-queue tun
//! (`IFF_MULTI_QUEUE`) with one worker per core, each with its own
//! `SO_REUSEPORT` socket and a share of the peer table, is the way to scale
//! on bigger hosts; it is left for the benchmark issue, to be done only if
//! measurements show the single thread is the bottleneck.
//!
//! # Code size
//!
//! Routers (issue #2): start-up, the loop, a batch from the tunnel and a
//! reload are `#[inline(never)]`. Left alone, LTO folds them all into
//! `main` together with the other roles: one function of 40 KB, measured
//! about 12 KB bigger on mipsel than the same code kept apart.

use core::net::{Ipv6Addr, SocketAddrV4};
use std::io;
use std::os::fd::AsFd;

use log::{error, info, warn};
use shipworm_core::relay::{Config, Relay, RelayKind};
use shipworm_core::time::Instant;
use shipworm_core::tunnel::Output;

use crate::cli::ProcessArgs;
use crate::cli::{RelayArgs, Reload, Role};
use crate::config;
use crate::privileges::{Keep, Target};
use crate::role::{self, prefix_addr, Error, Sends, SignalHandler, BATCH, BATCHES_PER_WAKE};
use crate::status::{self, StatusSocket};
use crate::sys::clock;
use crate::sys::netlink::{Netlink, Op};
use crate::sys::poll::PollFd;
use crate::sys::random::OsRng;
use crate::sys::signal::Signals;
use crate::sys::stack;
use crate::sys::tun::Tun;
use crate::sys::udp::{RecvBatch, SendBatch, UdpSocket};

/// Transmit queue length of the tunnel: packets the kernel holds for us
/// while the loop is busy with the other direction. Miredo leaves the tun
/// default (500), which overflowed in the lab's TCP downloads (lab-notes).
pub const TXQUEUELEN: u32 = 2048;

/// Metric of the route to the Teredo prefix: the kernel's default, as
/// Miredo's relay uses.
pub const ROUTE_METRIC: u32 = 1024;

/// Length of the Teredo prefix route (RFC 4380 §2.6: a /32).
const PREFIX_LEN: u8 = 32;

/// Where the kernel says whether it forwards IPv6.
pub const FORWARDING_SYSCTL: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// Receive slot size: the largest UDP payload over IPv4 (65,507 bytes) and
/// the largest packet a tun with the largest MTU hands out (65,535) fit, so
/// nothing is ever cut. Untouched pages of the slots cost no memory.
const SLOT: usize = 1 << 16;

/// Stack for building the relay: its 1.4 MiB value, once more for the copy
/// into the heap, and room to spare.
const RELAY_BUILD_STACK: usize = 8 << 20;

/// Kernel socket buffer requested each way: about 30 ms at 1 Gbit/s, so a
/// burst that arrives while the loop writes to the tunnel is queued, not
/// dropped (Miredo's default-sized buffer overflowed in the lab).
const SOCKET_BUFFER: usize = 1 << 22;

/// What is wrong with IPv6 forwarding, from the sysctl's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarding {
    /// On.
    On,
    /// Off: the relay cannot work.
    Off,
    /// Unreadable or unexpected (e.g. no IPv6 in this kernel).
    Unknown(String),
}

impl Forwarding {
    /// Interpret the contents of [`FORWARDING_SYSCTL`].
    pub fn parse(contents: &str) -> Forwarding {
        match contents.trim() {
            "0" => Forwarding::Off,
            s if s.parse::<u32>().is_ok() => Forwarding::On,
            s => Forwarding::Unknown(format!("unexpected contents {s:?}")),
        }
    }

    /// Read the running kernel's setting.
    pub fn read() -> Forwarding {
        match std::fs::read_to_string(FORWARDING_SYSCTL) {
            Ok(s) => Forwarding::parse(&s),
            Err(e) => Forwarding::Unknown(e.to_string()),
        }
    }

    /// A start-up error for any state but [`Forwarding::On`].
    pub fn check(self) -> Result<(), Error> {
        match self {
            Forwarding::On => Ok(()),
            Forwarding::Off => Err(Error::Startup(
                "IPv6 forwarding is off, so the kernel would drop everything the relay \
                 routes between native IPv6 and its tunnel; turn it on with \
                 'sysctl -w net.ipv6.conf.all.forwarding=1' (and set it in \
                 /etc/sysctl.conf to keep it; note that interfaces that take their \
                 address from router advertisements then need accept_ra=2)"
                    .to_owned(),
            )),
            Forwarding::Unknown(why) => Err(Error::Startup(format!(
                "cannot tell whether IPv6 forwarding is on ({FORWARDING_SYSCTL}: {why}); \
                 the relay needs IPv6 and forwarding"
            ))),
        }
    }
}

/// The core's configuration from the command line; `host` is the host's
/// own candidate for the ICMPv6 source ([`host_icmp_source`]), used when
/// none is configured. Without either the core's default stays.
fn config(args: &RelayArgs, host: Option<Ipv6Addr>) -> Config {
    let defaults = Config::with_prefix(args.prefix);
    Config {
        kind: args.kind,
        mtu: args.mtu,
        icmp_source: args.icmp_source.or(host).unwrap_or(defaults.icmp_source),
        ..defaults
    }
}

/// The kernel's list of the host's IPv6 addresses.
const IF_INET6: &str = "/proc/net/if_inet6";

/// A source for the relay's ICMPv6 errors when none is configured: a
/// global address of this host outside the Teredo prefix (the core's
/// default lies inside it, so a native host would route its answer back
/// into the tunnel). Read once at start-up: a chroot hides `/proc` later.
fn host_icmp_source(prefix: [u8; 4]) -> Option<Ipv6Addr> {
    let text = std::fs::read_to_string(IF_INET6).ok()?;
    first_global(&text, prefix)
}

/// The first usable global address in `/proc/net/if_inet6` contents
/// (lines of: address in hex, interface index, prefix length, scope,
/// flags, name), unique local addresses (`fc00::/7`) only if there is
/// nothing else: they do not reach the Internet.
// A plain loop over the fields, no `Vec` per line and no 128-bit number
// parsing: this runs once, and small code matters more on routers.
fn first_global(text: &str, prefix: [u8; 4]) -> Option<Ipv6Addr> {
    /// The kernel's `IFA_F_DADFAILED | IFA_F_DEPRECATED | IFA_F_TENTATIVE`:
    /// addresses not to send from.
    const UNUSABLE: u32 = 0x08 | 0x20 | 0x40;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let mut ula = None;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let mut next = || fields.next();
        let (Some(addr), Some(_index), Some(_len), Some(scope), Some(flags)) =
            (next(), next(), next(), next(), next())
        else {
            continue;
        };
        let Some(addr) = hex_addr(addr) else {
            continue;
        };
        // Scope 0: global (link-local is 0x20, loopback 0x10).
        let global = hex(scope) == Some(0);
        let usable = hex(flags).is_some_and(|f| f & UNUSABLE == 0);
        let in_prefix = addr.octets().get(..4) == Some(&prefix[..]);
        if !global || !usable || in_prefix || addr.is_multicast() {
            continue;
        }
        if addr.octets()[0] & 0xfe != 0xfc {
            return Some(addr);
        }
        ula = ula.or(Some(addr));
    }
    ula
}

/// An address written as 32 hexadecimal digits, as the kernel lists them.
fn hex_addr(hex: &str) -> Option<Ipv6Addr> {
    let digits = hex.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let mut octets = [0u8; 16];
    for (octet, pair) in octets.iter_mut().zip(digits.chunks_exact(2)) {
        let digit = |i: usize| pair.get(i).and_then(|&d| char::from(d).to_digit(16));
        *octet = u8::try_from((digit(0)? << 4) | digit(1)?).ok()?;
    }
    Some(Ipv6Addr::from(octets))
}

fn kind_name(kind: RelayKind) -> &'static str {
    match kind {
        RelayKind::Cone => "cone",
        RelayKind::Restricted => "restricted",
    }
}

/// Check forwarding, bind the port, set up the tunnel and relay until
/// SIGINT or SIGTERM. SIGHUP reads the configuration again through
/// `reload` (see [`EventLoop::apply`] for what changes at once).
#[inline(never)] // see "Code size" in the module documentation
pub fn run(args: RelayArgs, reload: Reload, process: &ProcessArgs) -> Result<(), Error> {
    let signals = role::install_signals()?;
    let target = Target::for_role(process.user.as_deref(), process.chroot.as_deref(), false)?;
    Forwarding::read().check()?;
    // Before the tunnel: a port in use must not leave a route behind.
    let local = SocketAddrV4::new(args.bind, args.port);
    let udp = role::bind(local, SOCKET_BUFFER)?;
    let (tun, mut nl) = role::open_tunnel(&args.interface, TXQUEUELEN)?;
    let prefix = prefix_addr(args.prefix);
    set_up_tunnel(&mut nl, &tun, args.mtu, prefix).map_err(|e| {
        Error::Startup(format!(
            "cannot bring up {} and route {prefix}/{PREFIX_LEN} to it: {e}",
            tun.name()
        ))
    })?;
    // Only set-up needed the netlink socket (see the module documentation).
    drop(nl);
    // Before the chroot hides /proc.
    let host_icmp = host_icmp_source(args.prefix);
    let status = StatusSocket::open("relay", process.status_socket.as_deref(), target.account())?;
    target.apply(Keep::Nothing)?;
    let config = config(&args, host_icmp);
    if args.icmp_source.is_none() && host_icmp.is_none() {
        warn!(
            "no global IPv6 address outside the Teredo prefix on this host: ICMPv6 errors \
             come from {}; set --icmp-source (RelayIcmpSource)",
            config.icmp_source
        );
    }
    info!(
        "Teredo relay ({}) on UDP {}, prefix {prefix}/{PREFIX_LEN} routed to {} (MTU {}), \
         ICMPv6 errors from {}",
        kind_name(config.kind),
        udp.local_addr().unwrap_or(local),
        tun.name(),
        args.mtu,
        config.icmp_source
    );
    let out_slot = usize::from(args.mtu).max(1280) + 64;
    let relay = build(config)?;
    // Socket and tunnel set up, privileges dropped: a `--daemon` start
    // succeeded.
    crate::sys::daemon::ready();
    let mut event_loop = EventLoop {
        relay,
        signals,
        udp,
        tun,
        udp_rx: RecvBatch::new(SLOT),
        tun_rx: role::zeroed(BATCH * SLOT),
        out: role::zeroed(BATCH * out_slot),
        out_slot,
        transmit: role::zeroed(SLOT),
        counters: Counters::default(),
        status,
        args,
        host_icmp,
        reload,
    };
    event_loop.run()
}

/// MTU, link up, and the Teredo prefix routed to the tunnel.
fn set_up_tunnel(nl: &mut Netlink, tun: &Tun, mtu: u16, prefix: Ipv6Addr) -> io::Result<()> {
    nl.set_link(tun.index(), true, Some(mtu.into()))?;
    nl.route(Op::Add, tun.index(), prefix, PREFIX_LEN, ROUTE_METRIC)
}

/// What the glue itself counts (the core keeps its own, finer counters).
#[derive(Debug, Default)]
struct Counters {
    udp_received: u64,
    udp_truncated: u64,
    tun_read: u64,
    /// Datagrams sent and packets written.
    sent: Sends,
}

struct EventLoop {
    /// Large (its peer table): kept on the heap.
    relay: Box<Relay<OsRng>>,
    signals: Signals,
    udp: UdpSocket,
    tun: Tun,
    udp_rx: RecvBatch<BATCH>,
    /// [`BATCH`] slots of [`SLOT`] bytes for packets read from the tunnel.
    tun_rx: Box<[u8]>,
    /// [`BATCH`] output slots of `out_slot` bytes, one per input of a batch,
    /// so every output of a batch can wait for one `sendmmsg`.
    out: Box<[u8]>,
    out_slot: usize,
    /// For [`Relay::poll_transmit`].
    transmit: Box<[u8]>,
    counters: Counters,
    status: StatusSocket,
    /// The settings in force, to tell a reload what changed.
    args: RelayArgs,
    /// The host's ICMPv6 source found at start-up ([`host_icmp_source`]).
    host_icmp: Option<Ipv6Addr>,
    reload: Reload,
}

impl EventLoop {
    #[inline(never)] // see "Code size" in the module documentation
    fn run(&mut self) -> Result<(), Error> {
        loop {
            let now = clock::now();
            let timeout = self
                .relay
                .poll_timeout()
                .map(|t| t.saturating_duration_since(now));
            let (signalled, udp, tun, status) = {
                let mut fds = [
                    PollFd::readable(self.signals.as_fd()),
                    PollFd::readable(self.udp.as_fd()),
                    PollFd::readable(self.tun.as_fd()),
                    self.status.poll_fd(),
                ];
                role::poll(&mut fds, timeout)?;
                let [s, u, t, st] = &fds;
                (s.is_ready(), u.is_ready(), t.is_ready(), st.is_ready())
            };
            if status {
                self.serve_status();
            }
            if signalled && role::handle_signals(self)? {
                return Ok(());
            }
            let now = clock::now();
            if udp {
                self.on_udp(now);
            }
            if tun {
                self.on_tunnel(now);
            }
            if self.relay.poll_timeout().is_some_and(|t| t <= now) {
                self.relay.handle_timeout(now);
                // Bubbles due, queues given up.
                let EventLoop {
                    relay,
                    udp,
                    tun,
                    transmit,
                    counters,
                    ..
                } = self;
                drain_transmits(relay, udp, tun, transmit, counters, now);
            }
        }
    }

    /// Answer status socket clients (see [`crate::status`]).
    fn serve_status(&mut self) {
        let EventLoop {
            relay,
            udp,
            tun,
            counters: c,
            status,
            ..
        } = self;
        let s = &c.sent;
        let local = udp
            .local_addr()
            .unwrap_or(SocketAddrV4::new(core::net::Ipv4Addr::UNSPECIFIED, 0));
        // A trait object: one instance of `serve` for every role.
        let render: &mut dyn FnMut(&mut status::Json<'_>) = &mut |j| {
            status::relay(
                j,
                relay.config(),
                tun.name(),
                local,
                relay.peers(),
                relay.stats(),
                &[
                    ("udp_received", c.udp_received),
                    ("udp_truncated", c.udp_truncated),
                    ("udp_sent", s.udp_sent),
                    ("udp_send_failed", s.udp_send_failed),
                    ("tun_read", c.tun_read),
                    ("tun_written", s.tun_written),
                    ("tun_write_failed", s.tun_write_failed),
                ],
            )
        };
        status.serve(render);
    }

    /// The core's counters, then the glue's own.
    fn log_stats(&self) {
        info!(
            "stats: {} peers; {}",
            self.relay.peers().len(),
            self.relay.stats()
        );
        let c = &self.counters;
        let s = &c.sent;
        info!(
            "UDP: {} datagrams received ({} too long, dropped), {} sent, {} sends failed; \
             tunnel: {} packets read, {} written, {} writes failed",
            c.udp_received,
            c.udp_truncated,
            s.udp_sent,
            s.udp_send_failed,
            c.tun_read,
            s.tun_written,
            s.tun_write_failed
        );
    }

    /// Receive what the UDP socket has queued, feed it to the core and carry
    /// out its answers, a few batches at most.
    fn on_udp(&mut self, now: Instant) {
        let EventLoop {
            relay,
            udp,
            tun,
            udp_rx,
            out,
            out_slot,
            transmit,
            counters,
            ..
        } = self;
        role::receive(udp_rx, udp, &mut |rx| {
            let mut tx = SendBatch::<BATCH>::new(udp);
            for (dgram, out) in rx.iter().zip(out.chunks_exact_mut(*out_slot)) {
                counters.udp_received += 1;
                if dgram.truncated {
                    counters.udp_truncated += 1;
                    continue;
                }
                let output = relay.handle_udp(now, dgram.from, dgram.data, out);
                carry_out(output, &mut tx, udp, tun, counters);
                drain_transmits(relay, udp, tun, transmit, counters, now);
            }
            finish(tx, udp, counters);
        });
    }

    /// Read and relay what the tunnel has queued, a few batches at most.
    #[inline(never)] // see "Code size" in the module documentation
    fn on_tunnel(&mut self, now: Instant) {
        for _ in 0..BATCHES_PER_WAKE {
            let mut lens = [0usize; BATCH];
            let mut n = 0;
            for (slot, len) in self.tun_rx.chunks_exact_mut(SLOT).zip(lens.iter_mut()) {
                let Some(got) = role::read_tunnel(&self.tun, slot) else {
                    break;
                };
                *len = got;
                n += 1;
            }
            if n == 0 {
                return;
            }
            self.relay_packets(now, &lens[..n]);
            if n < BATCH {
                return;
            }
        }
    }

    /// Feed the packets just read (their lengths in `lens`) to the core and
    /// carry out its answers.
    #[inline(never)] // see "Code size" in the module documentation
    fn relay_packets(&mut self, now: Instant, lens: &[usize]) {
        let EventLoop {
            relay,
            udp,
            tun,
            tun_rx,
            out,
            out_slot,
            transmit,
            counters,
            ..
        } = self;
        let mut tx = SendBatch::<BATCH>::new(udp);
        let slots = tun_rx.chunks_exact(SLOT).zip(lens);
        for ((slot, &len), out) in slots.zip(out.chunks_exact_mut(*out_slot)) {
            counters.tun_read += 1;
            let packet = slot.get(..len).unwrap_or_default();
            let output = relay.handle_ipv6(now, packet, out);
            carry_out(output, &mut tx, udp, tun, counters);
            drain_transmits(relay, udp, tun, transmit, counters, now);
        }
        finish(tx, udp, counters);
    }
}

/// Queue a datagram for the batch or write a packet to the tunnel.
fn carry_out<'a>(
    output: Output<'a>,
    tx: &mut SendBatch<'_, 'a, BATCH>,
    udp: &UdpSocket,
    tun: &Tun,
    counters: &mut Counters,
) {
    match output {
        Output::Udp { to, data } => tx.push(to, data),
        // A tunnel packet, or nothing.
        other => role::deliver(udp, tun, &mut counters.sent, other),
    }
}

/// Send the batch and count the outcome.
fn finish(tx: SendBatch<'_, '_, BATCH>, udp: &UdpSocket, counters: &mut Counters) {
    let sent = &mut counters.sent;
    role::count_sent(
        tx.finish(),
        udp,
        &mut sent.udp_sent,
        &mut sent.udp_send_failed,
    );
}

/// Everything [`Relay::poll_transmit`] has, sent one by one (the slow path).
fn drain_transmits(
    relay: &mut Relay<OsRng>,
    udp: &UdpSocket,
    tun: &Tun,
    buf: &mut [u8],
    counters: &mut Counters,
    now: Instant,
) {
    while let Some(t) = relay.poll_transmit(now, buf) {
        let data = buf.get(..t.len).unwrap_or_default();
        role::transmit(udp, tun, &mut counters.sent, t.dest, data);
    }
}

/// The core's relay, 1.4 MiB with its peer table, with fresh keys from the
/// kernel, built on a stack of its own ([`stack::run_on_own_stack`]).
/// `Box::new(Relay::new(..))` builds the value on the stack first and
/// copies it, so the main thread's stack would keep ~2 MiB of pages
/// resident for the process's life; that stack is unmapped once the relay
/// is built.
fn build(config: Config) -> Result<Box<Relay<OsRng>>, Error> {
    let mut rng = Some(OsRng::new().map_err(|e| Error::startup("getrandom(2) failed", &e))?);
    let now = clock::now();
    let mut relay = None;
    stack::run_on_own_stack(RELAY_BUILD_STACK, &mut || {
        relay = rng.take().map(|rng| Box::new(Relay::new(config, rng, now)));
    })
    .map_err(|e| Error::startup("cannot build the relay's tables", &e))?;
    relay.ok_or_else(|| Error::Startup("cannot build the relay's tables".to_owned()))
}

impl SignalHandler for EventLoop {
    fn signals(&self) -> &Signals {
        &self.signals
    }

    fn on_status(&mut self) {
        self.log_stats();
    }

    fn on_reload(&mut self) {
        if let Some(Role::Relay(new)) = self.reload.reload(config::Role::Relay) {
            self.apply(new);
        }
    }
}

impl EventLoop {
    /// Apply reloaded settings as far as an unprivileged process can,
    /// keeping the peer table unless the core must be built anew.
    #[inline(never)] // see "Code size" in the module documentation
    fn apply(&mut self, new: RelayArgs) {
        let args = &mut self.args;
        args.log_level = new.log_level;
        // The tunnel's name and MTU and the prefix route need CAP_NET_ADMIN,
        // which the relay gave up after set-up (see the module docs).
        let mut later = String::new();
        for (name, changed) in [
            ("InterfaceName", new.interface != args.interface),
            ("Prefix", new.prefix != args.prefix),
            ("InterfaceMTU", new.mtu != args.mtu),
        ] {
            if changed {
                if !later.is_empty() {
                    later.push_str(", ");
                }
                later.push_str(name);
            }
        }
        if !later.is_empty() {
            warn!(
                "reload: {later} changed; it needs a restart (the relay keeps no privilege \
                 to change its tunnel or route)"
            );
        }
        let mut changed = false;
        if (new.bind, new.port) != (args.bind, args.port) {
            let local = SocketAddrV4::new(new.bind, new.port);
            if role::rebind(&mut self.udp, local, SOCKET_BUFFER, "; peers kept") {
                (args.bind, args.port) = (new.bind, new.port);
                changed = true;
            }
        }
        if (new.kind, new.icmp_source) != (args.kind, args.icmp_source) {
            // The core fixes both at creation: a new one, with an empty
            // peer table.
            let old = (args.kind, args.icmp_source);
            (args.kind, args.icmp_source) = (new.kind, new.icmp_source);
            let config = config(args, self.host_icmp);
            match build(config) {
                Ok(relay) => {
                    info!(
                        "reload: relay type now {}, ICMPv6 errors from {}; peers reset",
                        kind_name(config.kind),
                        config.icmp_source
                    );
                    self.relay = relay;
                    changed = true;
                }
                Err(e) => {
                    error!("reload: {e}; keeping the running relay");
                    (args.kind, args.icmp_source) = old;
                }
            }
        }
        if !changed && later.is_empty() {
            info!("reload: relay settings unchanged");
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn forwarding_sysctl() {
        assert_eq!(Forwarding::parse("1\n"), Forwarding::On);
        assert_eq!(Forwarding::parse("2"), Forwarding::On);
        assert_eq!(Forwarding::parse("0\n"), Forwarding::Off);
        assert!(matches!(Forwarding::parse(""), Forwarding::Unknown(_)));
        assert!(Forwarding::On.check().is_ok());
        let off = Forwarding::Off.check().unwrap_err();
        assert_eq!(off.exit_code(), 2);
        assert!(off
            .to_string()
            .contains("'sysctl -w net.ipv6.conf.all.forwarding=1'"));
        let unknown = Forwarding::Unknown("No such file or directory".to_owned())
            .check()
            .unwrap_err();
        assert!(unknown.to_string().contains(FORWARDING_SYSCTL));
        // The running kernel's answer is one of the three, never a panic.
        let _ = Forwarding::read();
    }

    #[test]
    fn prefix_and_config() {
        assert_eq!(
            prefix_addr([0x20, 0x01, 0, 0]),
            "2001::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            prefix_addr([0x3f, 0xfe, 0x83, 0x1f]),
            "3ffe:831f::".parse::<Ipv6Addr>().unwrap()
        );
        let args = RelayArgs {
            bind: Ipv4Addr::UNSPECIFIED,
            port: 3544,
            interface: "teredo".to_owned(),
            prefix: [0x3f, 0xfe, 0x83, 0x1f],
            mtu: 1400,
            kind: RelayKind::Restricted,
            icmp_source: None,
            log_level: log::LevelFilter::Info,
        };
        let c = config(&args, None);
        assert_eq!(
            (c.prefix, c.kind, c.mtu),
            ([0x3f, 0xfe, 0x83, 0x1f], RelayKind::Restricted, 1400)
        );
        // No address anywhere: the core's default.
        assert_eq!(c.icmp_source, Config::with_prefix(args.prefix).icmp_source);
        let host: Ipv6Addr = "2001:db8::7".parse().unwrap();
        assert_eq!(config(&args, Some(host)).icmp_source, host);
        let given: Ipv6Addr = "2001:db8::9".parse().unwrap();
        let args = RelayArgs {
            icmp_source: Some(given),
            ..args
        };
        assert_eq!(config(&args, Some(host)).icmp_source, given);
    }

    #[test]
    fn icmp_source_from_if_inet6() {
        let teredo = [0x20, 0x01, 0, 0];
        // Loopback, link-local, a Teredo address, a tentative one, a ULA,
        // then the global address wanted.
        let text = "\
00000000000000000000000000000001 01 80 10 80       lo
fe800000000000000000000000000001 02 40 20 80     eth0
20010000000000000000000000000001 03 40 00 80   teredo
20010db8000000000000000000000002 02 40 00 c0     eth0
fd000000000000000000000000000003 02 40 00 80     eth0
20010db8000000000000000000000004 02 40 00 80     eth0
20010db8000000000000000000000005 02 40 00 80     eth0
";
        assert_eq!(
            first_global(text, teredo),
            Some("2001:db8::4".parse().unwrap())
        );
        // Only a ULA: better than nothing.
        let ula = "fd000000000000000000000000000003 02 40 00 80     eth0\n";
        assert_eq!(first_global(ula, teredo), Some("fd00::3".parse().unwrap()));
        // Garbage and nothing usable: none, never a panic.
        assert_eq!(first_global("zz 1 2\n\n0123 02 40 00 80 x\n", teredo), None);
        assert_eq!(first_global("", teredo), None);
        let not_hex = "2001000000000000000000000000000g 02 40 00 80     eth0\n";
        assert_eq!(first_global(not_hex, teredo), None);
        assert_eq!(
            hex_addr("20010DB8000000000000000000000004"),
            "2001:db8::4".parse().ok()
        );
        assert_eq!(hex_addr("20010db800000000000000000000000"), None);
        // The running host's answer is some address or none.
        let _ = host_icmp_source(teredo);
    }
}
