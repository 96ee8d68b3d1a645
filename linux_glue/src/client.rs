//! `shipworm client`: the event loop around [`shipworm_core::client::Client`].
//!
//! Start-up creates the tunnel interface (down, no address), opens the
//! netlink sockets and binds the service port (`--bind`:`--port`), then
//! resolves the server names (retrying every [`RESOLVE_RETRY`] while DNS is
//! not up yet: routers start before their uplink). One `poll(2)` then waits
//! on the signal descriptor, the UDP socket, the tunnel, the netlink
//! notification socket and the earliest timer; after every input the loop
//! drains the core's transmissions and events.
//!
//! Events drive the interface:
//! - without `--hook`, through [`crate::sys::netlink`] as Miredo's Linux
//!   hook would: on qualification the link goes up with the RA's MTU and a
//!   longer transmit queue, gets fe80::ffff:ffff:ffff/64 and the Teredo
//!   address as a /32 (so 2001::/32 is on-link), and a default route
//!   `::/0 dev <tunnel> metric 1029` that loses to a native default route
//!   (metric 1024); a lost address takes all of it away again;
//! - with `--hook`, Shipworm only creates the tunnel (and sets its queue
//!   length) and leaves every other setting to the hook ([`crate::hook`]),
//!   which is what OpenWrt's netifd protocol handler needs.
//!
//! The host's IPv4 address and default route are watched through rtnetlink
//! notifications: a change re-qualifies within [`DEBOUNCE`] (bursts, such as
//! an address replaced together with its routes, count once), so a moved
//! host gets its new mapping in about one round trip instead of at the next
//! refresh, up to 30 s later.
//!
//! The data path is the core's: every datagram goes to
//! [`Client::handle_udp`] and every packet read from the tunnel to
//! [`Client::handle_ipv6`]; their output (a datagram to send or a packet to
//! write to the tunnel, borrowing the input) is carried out at once
//! ([`role::deliver`]), and [`Client::poll_transmit`] is drained after every
//! input.
//!
//! Code size (routers, issue #2): the loop's big steps (an input, a drain,
//! a reload, a status report, the loop itself) are `#[inline(never)]`.
//! Left alone, LTO folds them into their callers and copies shared parts,
//! such as the core's transmit path, into several of them: measured 5 to
//! 10 KB more on mipsel. Both inputs go through one [`EventLoop::input`]
//! for the same reason, and log lines format in place ([`Secs`], [`Nat`],
//! [`Maybe`]) instead of building a `String` per value. The core client is
//! built in [`new_client`] alone, so no other frame holds its 100 KiB
//! (see there), and [`run`] stays out of `main`. Start-up, signals, binding
//! and polling go through the helpers all roles share ([`crate::role`]).

use core::fmt::{self, Display};
use core::net::{Ipv4Addr, SocketAddrV4};
use std::io;
use std::os::fd::AsFd;

use log::{debug, error, info, warn};
use shipworm_core::addr::{is_global_unicast, TeredoAddr};
use shipworm_core::client::{Client, Config, DataDrop, Event, NatMapping, NatType, RaDrop, State};
use shipworm_core::time::{Duration, Instant};

use crate::cli::{ClientArgs, ProcessArgs, Reload, Role};
use crate::config as conf;
use crate::dns;
use crate::hook::{HookState, Hooks, Snapshot, HOOK_POLL};
use crate::privileges::{Keep, Target};

use crate::role::{self, Error, Sends, SignalHandler};
use crate::status::{self, ClientView, StatusSocket};
use crate::sys::clock;
use crate::sys::netlink::{self, Ipv4Change, Monitor, Netlink, Op};
use crate::sys::poll::PollFd;
use crate::sys::random::OsRng;
use crate::sys::signal::Signals;
use crate::sys::tun::Tun;
use crate::sys::udp::UdpSocket;

/// Transmit queue length of the tunnel. Miredo leaves the tun default
/// (500), which overflowed in the lab's throughput runs (lab-notes).
pub const TXQUEUELEN: u32 = 1000;

/// Metric of the default route through the tunnel: above the kernel's
/// default 1024, so a native IPv6 default route wins (as with Miredo).
pub const ROUTE_METRIC: u32 = 1029;

/// Wait after the first IPv4 change notification before re-qualifying.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Pause between attempts to resolve a server name that did not resolve.
pub const RESOLVE_RETRY: Duration = Duration::from_secs(10);

/// Receive and transmit buffer size: any UDP payload over IPv4 fits.
const SLOT: usize = 1 << 16;

/// Kernel socket buffer requested each way for the service port.
const SOCKET_BUFFER: usize = 1 << 18;

/// Datagrams or packets handled per descriptor before polling again.
const PER_WAKE: usize = 64;

/// How long shutdown waits for the last hook calls.
const HOOK_SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

/// Prefix length of the Teredo address: the whole Teredo prefix on-link.
const ADDRESS_PREFIX_LEN: u8 = 32;

/// Prefix length of the link-local address.
const LINK_LOCAL_PREFIX_LEN: u8 = 64;

/// The servers' primary addresses, as resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Servers {
    primary: Ipv4Addr,
    fallback: Option<Ipv4Addr>,
}

/// An IPv4 address literal, or the first IPv4 address `host` resolves to.
fn resolve(host: &str) -> io::Result<Ipv4Addr> {
    // The first address, as getaddrinfo's first result was: the resolver
    // keeps the order the hosts file or the DNS answer gave, and never
    // answers with an empty list (the error here is only a guard).
    let addrs = dns::lookup_ipv4(host)?;
    addrs
        .first()
        .copied()
        .ok_or_else(|| io::ErrorKind::NotFound.into())
}

fn resolve_servers(args: &ClientArgs) -> Result<Servers, String> {
    let primary =
        resolve(&args.server).map_err(|e| format!("cannot resolve server {}: {e}", args.server))?;
    let fallback = match &args.fallback {
        None => None,
        Some(name) => match resolve(name) {
            Ok(a) => Some(a),
            // The primary server alone still works.
            Err(e) => {
                warn!("cannot resolve fallback server {name}: {e}; going on without it");
                None
            }
        },
    };
    for addr in core::iter::once(primary).chain(fallback) {
        if !is_global_unicast(addr) {
            warn!("server {addr} is not a global unicast IPv4 address (RFC 4380 §5.2.4)");
        }
    }
    Ok(Servers { primary, fallback })
}

/// The core's configuration for these servers and this service port.
fn config(args: &ClientArgs, servers: Servers, local_port: u16) -> Config {
    let mut config = Config::new(servers.primary);
    if let Some(secondary) = args.server2 {
        config.server_secondary = Some(secondary);
    }
    if let Some(fallback) = servers.fallback {
        config = config.with_fallback(fallback);
    }
    config.local_port = Some(local_port);
    if let Some(interval) = args.refresh_interval {
        config.refresh_interval = interval;
    }
    config
}

/// A new core client, on the heap.
///
/// The value (about 100 KiB, its peer table) is built on the stack and
/// then moved: in a function of its own, so that its callers' frames stay
/// small. On MIPS every access to a stack frame over 32 KiB needs three
/// instructions instead of one, which cost 13 KB when this was built
/// inside `run` and LTO inlined that into `main`.
#[inline(never)]
fn new_client(config: Config, rng: OsRng, now: Instant) -> Box<Client<OsRng>> {
    Box::new(Client::new(config, rng, now))
}

/// A duration as `1.234` (seconds), written straight into the log line:
/// no `String` per message.
struct Secs(Duration);

impl Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.total_millis();
        write!(f, "{}.{:03}", ms / 1000, ms % 1000)
    }
}

/// What qualification found out about the NAT, in words.
struct Nat(NatType);

impl Display for Nat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0.mapping {
            NatMapping::ConeOrRestricted => "not symmetric (cone or restricted)",
            NatMapping::NotTested => "not tested (no secondary server address)",
            NatMapping::SecondaryNoReply => {
                "unknown: the server's secondary address did not answer, a symmetric NAT is possible"
            }
        })?;
        f.write_str(match self.0.port_preserving {
            Some(true) => ", port-preserving",
            Some(false) => ", port-changing",
            None => "",
        })
    }
}

/// An optional part of a log line: `prefix value suffix`, or nothing
/// without a value.
struct Maybe<'a>(&'static str, Option<&'a dyn Display>, &'static str);

impl Display for Maybe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(value) => write!(f, "{}{value}{}", self.0, self.2),
            None => Ok(()),
        }
    }
}

/// `, fallback <address>` when there is a fallback server.
fn and_fallback(fallback: &Option<Ipv4Addr>) -> Maybe<'_> {
    Maybe(
        ", fallback ",
        fallback.as_ref().map(|f| f as &dyn Display),
        "",
    )
}

/// An IPv4 change at debug level, in words rather than through `Debug`
/// (which the release build would otherwise have to carry).
fn log_ipv4_change(change: Ipv4Change) {
    let (what, addr, added, index) = match change {
        Ipv4Change::Address { added, index, addr } => ("address", addr, added, index),
        Ipv4Change::DefaultRoute { added, index } => ("default route", None, added, index),
    };
    debug!(
        "IPv4 change: {what}{} {} on interface {index}",
        Maybe(" ", addr.as_ref().map(|a| a as &dyn Display), ""),
        if added { "added" } else { "removed" }
    );
}

/// Settings applied to the tunnel directly, through netlink.
struct Direct {
    nl: Netlink,
    index: u32,
    name: String,
    current: Snapshot,
}

/// One netlink change to the tunnel, in the step tables of
/// [`Direct::apply`].
#[derive(Clone, Copy)]
enum Change {
    /// Bring the link up with the new MTU (also sets a changed MTU), or
    /// down.
    Link(bool),
    /// Add or remove one of the addresses.
    Address(Op, Which),
    /// Add or remove the default route ([`ROUTE_METRIC`]).
    DefaultRoute(Op),
}

/// An address of the old or the new state.
#[derive(Clone, Copy)]
enum Which {
    NewLinkLocal,
    OldLinkLocal,
    NewTeredo,
    OldTeredo,
}

/// A change and what to log if it fails.
type Step = (Change, &'static str);

/// Qualified: the link, its addresses and the default route.
const BRING_UP: &[Step] = &[
    (Change::Link(true), "cannot bring the link up"),
    (
        Change::Address(Op::Add, Which::NewLinkLocal),
        "cannot add the link-local address",
    ),
    (
        Change::Address(Op::Add, Which::NewTeredo),
        "cannot add the Teredo address",
    ),
    (
        Change::DefaultRoute(Op::Add),
        "cannot add the default route",
    ),
];

/// Still up, with a new MTU.
const NEW_MTU: &[Step] = &[(Change::Link(true), "cannot set the MTU")];

/// Still up, with the other link-local address (the cone flag changed).
const NEW_LINK_LOCAL: &[Step] = &[
    (
        Change::Address(Op::Delete, Which::OldLinkLocal),
        "cannot remove the old link-local address",
    ),
    (
        Change::Address(Op::Add, Which::NewLinkLocal),
        "cannot add the link-local address",
    ),
];

/// Still up, with a new Teredo address. Added first, so that the on-link
/// 2001::/32 route never disappears.
const NEW_ADDRESS: &[Step] = &[
    (
        Change::Address(Op::Add, Which::NewTeredo),
        "cannot add the new Teredo address",
    ),
    (
        Change::Address(Op::Delete, Which::OldTeredo),
        "cannot remove the old Teredo address",
    ),
];

/// The address is lost: everything [`BRING_UP`] did, undone.
const TAKE_DOWN: &[Step] = &[
    (
        Change::DefaultRoute(Op::Delete),
        "cannot remove the default route",
    ),
    (
        Change::Address(Op::Delete, Which::OldTeredo),
        "cannot remove the Teredo address",
    ),
    (
        Change::Address(Op::Delete, Which::OldLinkLocal),
        "cannot remove the link-local address",
    ),
    (Change::Link(false), "cannot bring the link down"),
];

/// The step tables that take the tunnel from `old` to `new`, in order.
/// Tables rather than a call per step: one call site per netlink request.
fn steps(old: &Snapshot, new: &Snapshot) -> [&'static [Step]; 3] {
    let changed = |differs: bool, steps| if differs { steps } else { &[][..] };
    match (old.state == HookState::Up, new.state == HookState::Up) {
        (false, true) => [BRING_UP, &[], &[]],
        (true, true) => [
            changed(new.mtu != old.mtu, NEW_MTU),
            changed(new.lladdress() != old.lladdress(), NEW_LINK_LOCAL),
            changed(new.address != old.address, NEW_ADDRESS),
        ],
        (true, false) => [TAKE_DOWN, &[], &[]],
        (false, false) => [&[]; 3],
    }
}

impl Direct {
    /// Configure the tunnel for `new` (see [`steps`]).
    fn apply(&mut self, new: Snapshot) {
        let old = self.current;
        for &(change, what) in steps(&old, &new).into_iter().flatten() {
            self.change(change, &old, &new, what);
        }
        self.current = new;
    }

    /// Make one change on the way from `old` to `new`; a failure is logged
    /// with `what` failed, and configuration goes on with the next change
    /// (a half-configured tunnel is still better than none). For a removal
    /// "already gone" is success: the kernel drops the routes of a
    /// vanished address itself.
    fn change(&mut self, change: Change, old: &Snapshot, new: &Snapshot, what: &str) {
        let index = self.index;
        let result = match change {
            Change::Link(up) => self.nl.set_link(index, up, up.then_some(new.mtu.into())),
            Change::Address(op, which) => {
                let (addr, len) = match which {
                    Which::NewLinkLocal => (new.lladdress(), LINK_LOCAL_PREFIX_LEN),
                    Which::OldLinkLocal => (old.lladdress(), LINK_LOCAL_PREFIX_LEN),
                    Which::NewTeredo => (new.address, ADDRESS_PREFIX_LEN),
                    Which::OldTeredo => (old.address, ADDRESS_PREFIX_LEN),
                };
                self.nl.address(op, index, addr, len)
            }
            Change::DefaultRoute(op) => self.nl.default_route(op, index, ROUTE_METRIC),
        };
        let removal = matches!(
            change,
            Change::Address(Op::Delete, _) | Change::DefaultRoute(Op::Delete)
        );
        match result {
            Err(e) if removal && netlink::is_already_gone(&e) => {}
            Err(e) => error!("{what} on {}: {e}", self.name),
            Ok(()) => {}
        }
    }
}

/// Who configures the tunnel.
enum Iface {
    Direct(Direct),
    Hook(Hooks),
}

impl Iface {
    fn apply(&mut self, new: Snapshot, now: Instant) {
        match self {
            Iface::Direct(d) => d.apply(new),
            Iface::Hook(h) => h.change(new, now),
        }
    }

    /// Remove everything; the tunnel itself goes when its descriptor
    /// closes. Hooks see `down` then `destroy`, as Miredo's do.
    fn shutdown(&mut self, last: Snapshot) {
        let now = clock::now();
        self.apply(last.down(), now);
        if let Iface::Hook(h) = self {
            h.change(
                Snapshot {
                    state: HookState::Destroy,
                    ..last.down()
                },
                now,
            );
            h.finish(HOOK_SHUTDOWN_LIMIT);
        }
    }

    fn busy(&self) -> bool {
        matches!(self, Iface::Hook(h) if h.busy())
    }

    fn poll(&mut self, now: Instant) {
        if let Iface::Hook(h) = self {
            h.poll(now);
        }
    }
}

/// Where [`EventLoop::input`]'s bytes came from.
#[derive(Clone, Copy)]
enum Input {
    /// A datagram to the service port from this address.
    Udp(SocketAddrV4),
    /// A packet the host sent into the tunnel.
    Tunnel,
}

/// What the glue itself counts.
#[derive(Debug, Default)]
struct Counters {
    received: u64,
    tunnel_read: u64,
    ipv4_changes: u64,
    /// Datagrams sent and packets written.
    sent: Sends,
}

/// Create the tunnel, open the sockets, resolve the servers and run the
/// client until SIGINT or SIGTERM. SIGHUP reads the configuration again
/// through `reload` (see [`EventLoop::on_reload`]).
#[inline(never)] // see "Code size" in the module documentation
pub fn run(mut args: ClientArgs, reload: Reload, process: &ProcessArgs) -> Result<(), Error> {
    let signals = role::install_signals()?;
    let rng = OsRng::new().map_err(|e| Error::startup("getrandom(2) failed", &e))?;
    let target = Target::for_role(
        process.user.as_deref(),
        process.chroot.as_deref(),
        args.hook.is_some(),
    )?;
    // Setting the queue length is part of creating the tunnel, so also done
    // when a hook configures it.
    let (tun, nl) = role::open_tunnel(&args.interface, TXQUEUELEN)?;
    let monitor = Monitor::open().map_err(|e| Error::startup("cannot watch IPv4 changes", &e))?;
    let mut udp = role::bind(SocketAddrV4::new(args.bind, args.port), SOCKET_BUFFER)?;
    let mut iface = match &args.hook {
        Some(path) => {
            info!("hook {} configures {}", path.display(), tun.name());
            Iface::Hook(Hooks::new(path.clone(), tun.name(), tun.index()))
        }
        None => Iface::Direct(Direct {
            nl,
            index: tun.index(),
            name: tun.name().to_owned(),
            current: Snapshot::INITIAL,
        }),
    };
    let status = StatusSocket::open("client", process.status_socket.as_deref(), target.account())?;
    // Set up: from here on only CAP_NET_ADMIN is needed, to configure the
    // tunnel on every new mapping (or for the hook to).
    target.apply(if args.hook.is_some() {
        Keep::NetAdminInherited
    } else {
        Keep::NetAdmin
    })?;
    // Set up, privileges dropped: a `--daemon` start succeeded. Before the
    // wait for DNS, which may last (a router booting off-line): that is
    // the running client's business, not a failed start.
    crate::sys::daemon::ready();
    let servers = loop {
        match resolve_servers(&args) {
            Ok(s) => break s,
            Err(e) => {
                warn!("{e}; retrying in {} s", Secs(RESOLVE_RETRY));
                match wait_for_signal(&signals, RESOLVE_RETRY)? {
                    Waited::Stop => {
                        iface.shutdown(Snapshot::INITIAL);
                        return Ok(());
                    }
                    // Resolve the (perhaps new) servers at once.
                    Waited::Reload => {
                        if let Some(Role::Client(new)) = reload.reload(conf::Role::Client) {
                            args = reload_before_loop(&args, new, &mut udp);
                        }
                    }
                    Waited::Elapsed => {}
                }
            }
        }
    };
    // The port the kernel chose for `--port 0`, after any rebinding by a
    // reload while waiting.
    let local = udp
        .local_addr()
        .map_err(|e| Error::runtime("cannot read the bound address", &e))?;
    let now = clock::now();
    info!(
        "Teredo client on {} from UDP {local}, server {}{}",
        tun.name(),
        servers.primary,
        and_fallback(&servers.fallback)
    );
    EventLoop {
        client: new_client(config(&args, servers, local.port()), rng, now),
        args,
        servers,
        udp,
        tun,
        monitor,
        signals,
        iface,
        state: Snapshot::INITIAL,
        qualifying_since: now,
        qualified_at: None,
        status,
        requalify_at: None,
        requalifying: None,
        resolve_again: false,
        buf: role::zeroed(SLOT),
        out: role::zeroed(SLOT),
        counters: Counters::default(),
        reload,
    }
    .run()
}

/// How [`wait_for_signal`] ended.
#[derive(Debug, PartialEq, Eq)]
enum Waited {
    /// SIGINT or SIGTERM.
    Stop,
    /// SIGHUP: read the configuration again.
    Reload,
    /// The time is up.
    Elapsed,
}

/// What the signals read by [`pending_signals`] ask for.
#[derive(Default)]
struct Pending {
    /// SIGINT or SIGTERM: stop (what arrived before it is in the rest).
    stop: bool,
    /// SIGUSR1: report the state.
    status: bool,
    /// SIGHUP: read the configuration again.
    reload: bool,
}

/// The client's [`SignalHandler`]: it only notes what arrived, and the
/// caller acts on it. The wait for DNS and the loop act differently but
/// share this one handler, so the shared dispatch is compiled once here.
struct Collect<'a> {
    signals: &'a Signals,
    pending: Pending,
}

impl SignalHandler for Collect<'_> {
    fn signals(&self) -> &Signals {
        self.signals
    }

    fn on_status(&mut self) {
        self.pending.status = true;
    }

    fn on_reload(&mut self) {
        self.pending.reload = true;
    }
}

/// Read every pending signal. The signal descriptor hands out SIGHUP
/// before SIGUSR1, so callers reload before they report, as the signals
/// would be handled one by one.
fn pending_signals(signals: &Signals) -> Result<Pending, Error> {
    let mut collect = Collect {
        signals,
        pending: Pending::default(),
    };
    let stop = role::handle_signals(&mut collect)?;
    Ok(Pending {
        stop,
        ..collect.pending
    })
}

/// Wait up to `limit` for a signal that stops or reloads; SIGUSR1 can
/// only report the wait (there is no loop yet).
fn wait_for_signal(signals: &Signals, limit: Duration) -> Result<Waited, Error> {
    let deadline = clock::now() + limit;
    loop {
        let now = clock::now();
        if now >= deadline {
            return Ok(Waited::Elapsed);
        }
        role::poll(
            &mut [PollFd::readable(signals.as_fd())],
            Some(deadline - now),
        )?;
        let pending = pending_signals(signals)?;
        if pending.stop {
            return Ok(Waited::Stop);
        }
        if pending.status {
            info!("status: waiting for the server name to resolve");
        }
        if pending.reload {
            return Ok(Waited::Reload);
        }
    }
}

/// Whether `a` and `b` name the same servers and refresh interval: the
/// settings the core fixes at creation.
fn same_servers(a: &ClientArgs, b: &ClientArgs) -> bool {
    a.server == b.server
        && a.server2 == b.server2
        && a.fallback == b.fallback
        && a.refresh_interval == b.refresh_interval
}

/// Reloaded settings with the tunnel's name and hook kept as they were: they
/// belong to the tunnel made at start, so a change waits for a restart.
fn keep_tunnel_settings(old: &ClientArgs, new: ClientArgs) -> ClientArgs {
    if new.interface != old.interface || new.hook != old.hook {
        warn!("reload: InterfaceName and Hook take effect at the next restart");
    }
    ClientArgs {
        interface: old.interface.clone(),
        hook: old.hook.clone(),
        ..new
    }
}

/// A SIGHUP while the server names do not resolve yet: the new servers
/// are tried at once, a new service address or port is bound (the old
/// socket stays if that fails); the tunnel name and hook wait for a
/// restart, as in the loop.
fn reload_before_loop(old: &ClientArgs, new: ClientArgs, udp: &mut UdpSocket) -> ClientArgs {
    let mut args = keep_tunnel_settings(old, new);
    if !rebind(old, &mut args, udp) {
        info!("reload: resolving server {} again", args.server);
    }
    args
}

/// Bind `args`'s service address and port if they differ from `old`'s,
/// replacing `udp`; `true` if it did. On failure the old socket stays and
/// `args` gets the old address and port back.
fn rebind(old: &ClientArgs, args: &mut ClientArgs, udp: &mut UdpSocket) -> bool {
    if (args.bind, args.port) == (old.bind, old.port) {
        return false;
    }
    let local = SocketAddrV4::new(args.bind, args.port);
    let rebound = role::rebind(udp, local, SOCKET_BUFFER, "");
    if !rebound {
        (args.bind, args.port) = (old.bind, old.port);
    }
    rebound
}

struct EventLoop {
    args: ClientArgs,
    servers: Servers,
    /// About 100 KiB (its peer table): kept on the heap.
    client: Box<Client<OsRng>>,
    udp: UdpSocket,
    tun: Tun,
    monitor: Monitor,
    signals: Signals,
    iface: Iface,
    /// What the interface was last told.
    state: Snapshot,
    /// Since when the client has had no address (for "qualified in").
    qualifying_since: Instant,
    /// Since when the client has had its current address.
    qualified_at: Option<Instant>,
    status: StatusSocket,
    /// A re-qualification is due then (debounced IPv4 change).
    requalify_at: Option<Instant>,
    /// A re-qualification of a qualified client started then, and is done
    /// when the accepted RA count reaches the second number.
    requalifying: Option<(Instant, u64)>,
    /// The server was lost: resolve its name again after the events.
    resolve_again: bool,
    buf: Box<[u8]>,
    out: Box<[u8]>,
    counters: Counters,
    reload: Reload,
}

impl EventLoop {
    /// Poll, handle what is ready, drain, until SIGINT or SIGTERM.
    #[inline(never)] // see "Code size" in the module documentation
    fn run(mut self) -> Result<(), Error> {
        self.drain(clock::now());
        loop {
            let now = clock::now();
            let timeout = self
                .next_deadline(now)
                .map(|d| d.saturating_duration_since(now));
            let (signalled, udp, tun, monitor, status) = {
                let mut fds = [
                    PollFd::readable(self.signals.as_fd()),
                    PollFd::readable(self.udp.as_fd()),
                    PollFd::readable(self.tun.as_fd()),
                    PollFd::readable(self.monitor.as_fd()),
                    self.status.poll_fd(),
                ];
                role::poll(&mut fds, timeout)?;
                let [s, u, t, m, st] = &fds;
                let ready = |f: &PollFd<'_>| f.is_ready();
                (ready(s), ready(u), ready(t), ready(m), ready(st))
            };
            if status {
                self.serve_status();
            }
            if signalled {
                let pending = pending_signals(&self.signals)?;
                if pending.stop {
                    self.iface.shutdown(self.state);
                    return Ok(());
                }
                if pending.reload {
                    self.on_reload();
                }
                if pending.status {
                    self.log_status();
                }
            }
            let now = clock::now();
            if udp {
                self.on_udp(now);
            }
            if tun {
                self.on_tunnel(now);
            }
            if monitor {
                self.on_ipv4_change(now);
            }
            if self.requalify_at.is_some_and(|t| t <= now) {
                self.requalify_at = None;
                self.requalify(now);
            }
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            self.drain(now);
            self.iface.poll(now);
        }
    }

    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let hook = self.iface.busy().then(|| now + HOOK_POLL);
        [self.client.poll_timeout(), self.requalify_at, hook]
            .into_iter()
            .flatten()
            .min()
    }

    /// SIGHUP: read the configuration again and apply the new settings,
    /// disturbing no more than they require: a new service address or port
    /// is bound (the old socket is kept if that fails), and only a new
    /// server, port or refresh interval starts a new qualification (the
    /// core fixes these at creation, so its peer table starts over then). Anything else keeps the address and the peers.
    /// The tunnel name and the hook belong to the tunnel set up at start.
    #[inline(never)] // see "Code size" in the module documentation
    fn on_reload(&mut self) {
        let Some(Role::Client(new)) = self.reload.reload(conf::Role::Client) else {
            return;
        };
        let now = clock::now();
        let old = &self.args;
        let mut args = keep_tunnel_settings(old, new);
        let rebound = rebind(old, &mut args, &mut self.udp);
        let mut servers = self.servers;
        let mut new_servers = !same_servers(&args, old);
        if new_servers {
            match resolve_servers(&args) {
                Ok(s) => servers = s,
                Err(e) => {
                    error!("reload: {e}; keeping server {}", self.servers.primary);
                    args.server.clone_from(&old.server);
                    args.server2 = old.server2;
                    args.fallback.clone_from(&old.fallback);
                    args.refresh_interval = old.refresh_interval;
                    new_servers = false;
                }
            }
        }
        self.args = args;
        if !(rebound || new_servers) {
            info!("reload: server and service port unchanged; address and peers kept");
            return;
        }
        let port = self.udp.local_addr().map_or(self.args.port, |a| a.port());
        info!(
            "reload: qualifying again with server {} from UDP port {port}",
            servers.primary
        );
        self.qualifying_since = now;
        self.restart(servers, port, now);
    }

    /// Start over with `servers` and the service port `port`: the core fixes
    /// both at creation, so a new one (with an empty peer table) qualifies.
    #[inline(never)] // see "Code size" in the module documentation
    fn restart(&mut self, servers: Servers, port: u16, now: Instant) {
        let rng = match OsRng::new() {
            Ok(r) => r,
            Err(e) => {
                error!("getrandom(2) failed: {e}");
                return;
            }
        };
        self.servers = servers;
        self.client = new_client(config(&self.args, servers, port), rng, now);
        self.requalifying = None;
        self.set_state(self.state.down(), now);
        self.drain(now);
    }

    /// Answer status socket clients (see [`crate::status`]).
    #[inline(never)] // see "Code size" in the module documentation
    fn serve_status(&mut self) {
        let now = clock::now();
        let view = ClientView {
            interface: self.tun.name(),
            local: self
                .udp
                .local_addr()
                .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            servers: (self.servers.primary, self.servers.fallback),
            qualified_for: self.qualified_at.map(|t| {
                core::time::Duration::from_millis(now.saturating_duration_since(t).total_millis())
            }),
        };
        let EventLoop {
            client,
            counters: c,
            status,
            ..
        } = self;
        let s = &c.sent;
        // A trait object: one instance of `serve` for every role.
        let render: &mut dyn FnMut(&mut status::Json<'_>) = &mut |j| {
            status::client(
                j,
                view,
                client.state(),
                client.qualification(),
                client.peers(),
                client.stats(),
                &[
                    ("received", c.received),
                    ("sent", s.udp_sent),
                    ("send_failed", s.udp_send_failed),
                    ("tunnel_read", c.tunnel_read),
                    ("tunnel_written", s.tun_written),
                    ("tunnel_write_failed", s.tun_write_failed),
                    ("ipv4_changes", c.ipv4_changes),
                ],
            )
        };
        status.serve(render);
    }

    /// SIGUSR1: state and counters, one log line each.
    #[inline(never)] // see "Code size" in the module documentation
    fn log_status(&self) {
        let (state, retry) = match self.client.state() {
            State::Qualifying => ("qualifying", None),
            State::Qualified => ("qualified", None),
            State::Offline { retry_at } => (
                "off-line",
                Some(Secs(retry_at.saturating_duration_since(clock::now()))),
            ),
        };
        let retry = Maybe(
            ", retrying in ",
            retry.as_ref().map(|r| r as &dyn Display),
            " s",
        );
        match self.client.qualification() {
            Some(q) => info!(
                "status: {state}{retry}, address {} (mapping {}), MTU {}, server {}, NAT {}",
                q.address.to_ipv6(),
                q.address.mapped(),
                q.mtu,
                q.server,
                Nat(q.nat)
            ),
            None => info!("status: {state}{retry}, no address"),
        }
        let s = self.client.stats();
        let mut drops = String::new();
        for r in RaDrop::ALL {
            role::push_drops(&mut drops, r.name(), s.ra_drops(r));
        }
        info!(
            "stats: {} router solicitations sent, {} advertisements accepted, {} dropped{drops}",
            s.rs_sent,
            s.ra_accepted,
            s.total_ra_drops(),
        );
        let mut drops = String::new();
        for r in DataDrop::ALL {
            role::push_drops(&mut drops, r.name(), s.data_drops(r));
        }
        info!(
            "data: {} peers, {} delivered, {} sent direct, {} queued ({} released), \
             {} bubbles sent, {} received, {} echo tests, {} ICMPv6 errors, {} dropped{drops}",
            self.client.peers().len(),
            s.delivered,
            s.sent_direct,
            s.queued,
            s.flushed,
            s.bubbles_sent,
            s.bubbles_received,
            s.echo_requests_sent,
            s.icmp_errors_sent,
            s.total_data_drops(),
        );
        let c = &self.counters;
        let sent = &c.sent;
        info!(
            "sockets: {} datagrams received, {} sent, {} sends failed; tunnel: {} packets \
             read, {} written, {} writes failed; {} IPv4 changes seen",
            c.received,
            sent.udp_sent,
            sent.udp_send_failed,
            c.tunnel_read,
            sent.tun_written,
            sent.tun_write_failed,
            c.ipv4_changes
        );
    }

    fn on_udp(&mut self, now: Instant) {
        for _ in 0..PER_WAKE {
            match self.udp.recv_from(&mut self.buf) {
                Ok((n, from)) => self.input(now, Input::Udp(from), n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    debug!("receive: {e}");
                    return;
                }
            }
        }
    }

    fn on_tunnel(&mut self, now: Instant) {
        for _ in 0..PER_WAKE {
            let Some(n) = role::read_tunnel(&self.tun, &mut self.buf) else {
                return;
            };
            self.input(now, Input::Tunnel, n);
        }
    }

    /// Hand the first `n` bytes of the receive buffer to the core, carry
    /// out its answer and drain it. One body for both inputs: the core's
    /// packet paths are inlined here once.
    #[inline(never)] // see "Code size" in the module documentation
    fn input(&mut self, now: Instant, from: Input, n: usize) {
        let EventLoop {
            client,
            udp,
            tun,
            buf,
            out,
            counters,
            ..
        } = self;
        let data = buf.get(..n).unwrap_or_default();
        let output = match from {
            Input::Udp(remote) => {
                counters.received += 1;
                client.handle_udp(now, remote, data, out)
            }
            Input::Tunnel => {
                counters.tunnel_read += 1;
                client.handle_ipv6(now, data, out)
            }
        };
        role::deliver(udp, tun, &mut counters.sent, output);
        self.drain(now);
    }

    /// Read the notifications; any relevant one (or lost ones) schedules a
    /// re-qualification [`DEBOUNCE`] after the first.
    fn on_ipv4_change(&mut self, now: Instant) {
        let mut changed = false;
        for _ in 0..PER_WAKE {
            match self.monitor.read(&mut self.buf) {
                Ok(Some(n)) => {
                    for change in netlink::ipv4_changes(self.buf.get(..n).unwrap_or_default()) {
                        log_ipv4_change(change);
                        self.counters.ipv4_changes += 1;
                        changed = true;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // ENOBUFS: notifications were lost; assume a change.
                    debug!("netlink notifications: {e}");
                    changed = true;
                    break;
                }
            }
        }
        if changed && self.requalify_at.is_none() {
            self.requalify_at = Some(now + DEBOUNCE);
        }
    }

    fn requalify(&mut self, now: Instant) {
        info!("host IPv4 address or default route changed: qualifying again");
        if self.client.state() == State::Qualified {
            // One RA per server address solicited.
            let legs = 1 + u64::from(self.client.config().server_secondary.is_some());
            self.requalifying = Some((now, self.client.stats().ra_accepted + legs));
        }
        self.client.requalify(now);
    }

    /// Send what the core has queued and act on its events.
    #[inline(never)] // see "Code size" in the module documentation
    fn drain(&mut self, now: Instant) {
        while let Some(t) = self.client.poll_transmit(now, &mut self.out) {
            let data = self.out.get(..t.len).unwrap_or_default();
            role::transmit(&self.udp, &self.tun, &mut self.counters.sent, t.dest, data);
        }
        while let Some(event) = self.client.poll_event() {
            self.on_event(now, event);
        }
        if let Some((t0, answers)) = self.requalifying {
            // No event reports an unchanged result: the exchange is over
            // when every solicited address has answered.
            if self.client.state() == State::Qualified && self.client.stats().ra_accepted >= answers
            {
                info!("re-qualified in {} s: address unchanged", Secs(now - t0));
                self.requalifying = None;
            }
        }
        if core::mem::take(&mut self.resolve_again) {
            self.resolve_again_now(now);
        }
    }

    fn up_state(address: TeredoAddr, mtu: u16) -> Snapshot {
        Snapshot {
            state: HookState::Up,
            address: address.to_ipv6(),
            cone: address.is_cone(),
            mtu,
        }
    }

    fn set_state(&mut self, new: Snapshot, now: Instant) {
        self.iface.apply(new, now);
        match (self.state.state, new.state) {
            (_, HookState::Up) if self.qualified_at.is_some() => {}
            (_, HookState::Up) => self.qualified_at = Some(now),
            _ => self.qualified_at = None,
        }
        self.state = new;
    }

    /// Log an event of the core and bring the interface to the state it
    /// implies.
    fn on_event(&mut self, now: Instant, event: Event) {
        let down = self.state.down();
        let new = match event {
            Event::Qualified {
                address,
                mtu,
                nat,
                server,
            } => {
                info!(
                    "qualified in {} s with server {server}: address {}, mapping {}, NAT {}, MTU {mtu}",
                    Secs(now - self.qualifying_since),
                    address.to_ipv6(),
                    address.mapped(),
                    Nat(nat)
                );
                self.requalifying = None;
                Self::up_state(address, mtu)
            }
            Event::MappingChanged { old, new } => {
                let took = self.requalifying.take().map(|(t0, _)| Secs(now - t0));
                info!(
                    "mapping changed from {} to {}: address {}{}",
                    old.mapped(),
                    new.mapped(),
                    new.to_ipv6(),
                    Maybe(
                        " (re-qualified in ",
                        took.as_ref().map(|t| t as &dyn Display),
                        " s)"
                    )
                );
                Self::up_state(new, self.state.mtu)
            }
            Event::MtuChanged { mtu } => {
                info!("server advertises MTU {mtu}");
                Snapshot { mtu, ..self.state }
            }
            Event::Lost { address } => {
                warn!(
                    "lost address {}: the server stopped answering or re-qualification failed",
                    address.to_ipv6()
                );
                self.requalifying = None;
                self.qualifying_since = now;
                self.resolve_again = true;
                down
            }
            Event::ServerSwitch { from, to } => {
                warn!("server {from} does not answer; trying {to}");
                return;
            }
            Event::Offline { server, retry_at } => {
                warn!(
                    "no answer from server {server}: off-line, trying again in {} s",
                    Secs(retry_at.saturating_duration_since(now))
                );
                self.resolve_again = true;
                down
            }
            Event::SymmetricNat {
                server,
                primary,
                secondary,
                retry_at,
            } => {
                error!(
                    "behind a symmetric NAT: server {server} saw mapping {primary} on its \
                     primary and {secondary} on its secondary address. This client cannot \
                     work behind a symmetric NAT yet; testing again in {} s",
                    Secs(retry_at.saturating_duration_since(now))
                );
                down
            }
        };
        self.set_state(new, now);
    }

    /// Server names may point elsewhere now; a changed result restarts the
    /// client with the new addresses.
    #[inline(never)] // see "Code size" in the module documentation
    fn resolve_again_now(&mut self, now: Instant) {
        let literal = |h: &str| h.parse::<Ipv4Addr>().is_ok();
        if literal(&self.args.server) && self.args.fallback.as_deref().is_none_or(literal) {
            return;
        }
        match resolve_servers(&self.args) {
            Ok(servers) if servers != self.servers => {
                info!(
                    "server now resolves to {}{}: qualifying with it",
                    servers.primary,
                    and_fallback(&servers.fallback)
                );
                let port = self.client.config().local_port.unwrap_or(0);
                self.restart(servers, port, now);
            }
            Ok(_) => {}
            Err(e) => warn!("{e}; keeping {}", self.servers.primary),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use log::LevelFilter;

    fn args(server: &str) -> ClientArgs {
        ClientArgs {
            server: server.to_owned(),
            server2: None,
            fallback: None,
            interface: "teredo".to_owned(),
            bind: Ipv4Addr::UNSPECIFIED,
            port: 0,
            hook: None,
            refresh_interval: None,
            log_level: LevelFilter::Info,
        }
    }

    #[test]
    fn config_from_arguments() {
        let servers = Servers {
            primary: Ipv4Addr::new(198, 51, 100, 1),
            fallback: None,
        };
        let c = config(&args("198.51.100.1"), servers, 4000);
        assert_eq!(c.server, Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(c.server_secondary, Some(Ipv4Addr::new(198, 51, 100, 2)));
        assert_eq!(c.fallback_server, None);
        assert_eq!(c.local_port, Some(4000));

        let mut a = args("198.51.100.1");
        a.server2 = Some(Ipv4Addr::new(198, 51, 100, 9));
        let servers = Servers {
            fallback: Some(Ipv4Addr::new(203, 0, 113, 1)),
            ..servers
        };
        let c = config(&a, servers, 1);
        assert_eq!(c.server_secondary, Some(Ipv4Addr::new(198, 51, 100, 9)));
        assert_eq!(c.fallback_server, Some(Ipv4Addr::new(203, 0, 113, 1)));
        assert_eq!(c.fallback_secondary, Some(Ipv4Addr::new(203, 0, 113, 2)));
    }

    #[test]
    fn resolution() {
        assert_eq!(resolve("192.0.2.7").unwrap(), Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(resolve("localhost").unwrap(), Ipv4Addr::LOCALHOST);
        assert!(resolve("no-such-host.invalid").is_err());
        let mut a = args("no-such-host.invalid");
        assert!(resolve_servers(&a)
            .unwrap_err()
            .contains("cannot resolve server no-such-host.invalid"));
        // A fallback that does not resolve is dropped, not fatal.
        a.server = "192.0.2.7".to_owned();
        a.fallback = Some("no-such-host.invalid".to_owned());
        assert_eq!(
            resolve_servers(&a).unwrap(),
            Servers {
                primary: Ipv4Addr::new(192, 0, 2, 7),
                fallback: None
            }
        );
    }

    #[test]
    fn descriptions() {
        assert_eq!(Secs(Duration::from_millis(1234)).to_string(), "1.234");
        assert_eq!(Secs(Duration::from_millis(5)).to_string(), "0.005");
        let nat = NatType {
            mapping: NatMapping::ConeOrRestricted,
            port_preserving: Some(true),
        };
        assert_eq!(
            Nat(nat).to_string(),
            "not symmetric (cone or restricted), port-preserving"
        );
        assert_eq!(shipworm_core::client::DEFAULT_MTU, Snapshot::INITIAL.mtu);
        let fallback = Some(Ipv4Addr::new(203, 0, 113, 1));
        assert_eq!(
            and_fallback(&fallback).to_string(),
            ", fallback 203.0.113.1"
        );
        assert_eq!(and_fallback(&None).to_string(), "");
        let took = Secs(Duration::from_millis(20));
        assert_eq!(
            Maybe(" (in ", Some(&took), " s)").to_string(),
            " (in 0.020 s)"
        );
    }

    #[test]
    fn interface_steps() {
        let messages = |old: &Snapshot, new: &Snapshot| -> Vec<&str> {
            steps(old, new)
                .into_iter()
                .flatten()
                .map(|&(_, what)| what)
                .collect()
        };
        let up = Snapshot {
            state: HookState::Up,
            address: "2001:0:c633:6401:8000:6804:39cc:9bea".parse().unwrap(),
            cone: true,
            mtu: 1280,
        };
        let init = Snapshot::INITIAL;
        assert_eq!(messages(&init, &up).len(), 4);
        assert_eq!(messages(&init, &up)[0], "cannot bring the link up");
        assert!(messages(&up, &up).is_empty());
        assert!(messages(&init, &init.down()).is_empty());
        assert_eq!(messages(&up, &up.down()).len(), 4);
        assert_eq!(
            messages(&up, &Snapshot { mtu: 1400, ..up }),
            ["cannot set the MTU"]
        );
        let moved = Snapshot {
            address: "2001:0:c633:6401::1".parse().unwrap(),
            cone: false,
            ..up
        };
        assert_eq!(
            messages(&up, &moved),
            [
                "cannot remove the old link-local address",
                "cannot add the link-local address",
                "cannot add the new Teredo address",
                "cannot remove the old Teredo address"
            ]
        );
    }

    #[test]
    fn server_settings() {
        let a = args("192.0.2.7");
        assert!(same_servers(&a, &a.clone()));
        let b = ClientArgs {
            port: 9,
            interface: "other".to_owned(),
            ..a.clone()
        };
        assert!(same_servers(&a, &b));
        let c = ClientArgs {
            refresh_interval: Some(Duration::from_secs(10)),
            ..a.clone()
        };
        assert!(!same_servers(&a, &c));
        let kept = keep_tunnel_settings(&a, b);
        assert_eq!((kept.interface.as_str(), kept.port), ("teredo", 9));
    }
}
