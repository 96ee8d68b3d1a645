//! The Teredo client role (RFC 4380 §5.2, updated by RFC 5991 §3.2 and
//! RFC 6081 §5.1.1): today its qualification and maintenance; the data path
//! (peers, bubbles, echo tests, forwarding) will join this façade later.
//!
//! # Sans-IO API
//!
//! [`Client`] follows quinn-proto's shape. The glue owns the UDP socket (the
//! client's *service port*) and a clock, and loops:
//!
//! 1. feed every datagram received on the service port to
//!    [`Client::handle_udp`];
//! 2. when [`Client::poll_timeout`]'s instant has come, call
//!    [`Client::handle_timeout`];
//! 3. after either, and after [`Client::new`] / [`Client::requalify`], drain
//!    [`Client::poll_transmit`] (send each datagram from the service port)
//!    and [`Client::poll_event`] (reconfigure the tunnel interface, run
//!    hooks) until both return `None`; then sleep until the next
//!    [`Client::poll_timeout`] or datagram.
//!
//! # Randomness
//!
//! The client *stores* its [`Rng`] as a type parameter instead of taking
//! `&mut impl Rng` on each call. Randomness is needed in several entry points
//! (a fresh nonce for every Router Solicitation in `poll_transmit`, random
//! RFC 5991 flag bits and the randomized refresh interval when an RA is
//! accepted in `handle_udp`, and, later, echo nonces on the data path), so a
//! parameter would have to be threaded through every call; quinn-proto keeps
//! its RNG inside the connection for the same reason. The glue's RNG is a
//! zero-sized `getrandom(2)` adapter, so storing it costs nothing; tests store
//! a seeded [`crate::nonce::SplitMix64`] and become deterministic.
//!
//! # Events
//!
//! Events wait in a fixed queue of [`EVENT_CAPACITY`]. One input produces at
//! most two events, so a glue that drains the queue after every call never
//! loses one. If the queue is full anyway, the **oldest** event is dropped
//! (counted in [`Stats::events_dropped`]): the newest events describe the
//! current state, and [`Client::qualification`] / [`Client::state`] let a
//! glue that fell behind resynchronise.

mod qualify;
#[cfg(test)]
mod sim_test;

use core::net::{Ipv4Addr, SocketAddrV4};

use heapless::Deque;

use crate::addr::{TeredoAddr, DEFAULT_PREFIX};
use crate::nonce::Rng;
use crate::time::{Duration, Instant};

use qualify::Qualifier;
pub use qualify::RaDrop;

/// Qualification timeout `T`: how long each Router Solicitation waits for
/// its Router Advertisement (RFC 4380 §5.2.1).
pub const DEFAULT_QUALIFICATION_TIMEOUT: Duration = Duration::from_secs(4);

/// Router Solicitations sent per exchange before giving up, `N`
/// (RFC 4380 §5.2.1, read as "N attempts", teredo-spec §10 item 2).
pub const DEFAULT_QUALIFICATION_ATTEMPTS: u8 = 3;

/// Refresh interval: RFC 4380 §2.15 starts it at 30 s and RFC 6081 §5.1.1
/// makes 30 s the mandatory default.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Lower bound of the randomized refresh interval, in percent of the refresh
/// interval. 75–100 % is RFC 4380 §5.2's range and lies inside the 50–150 %
/// RFC 6081 §5.1.1 allows. Never exceeding 100 % matters: NATs that drop idle
/// UDP mappings after 30 s (common in home routers) would otherwise lose the
/// mapping between refreshes; the 25 % spread keeps clients that started
/// together (after a power cut) from refreshing in lockstep.
pub const DEFAULT_REFRESH_MIN_PERCENT: u8 = 75;

/// Upper bound of the randomized refresh interval, in percent (see
/// [`DEFAULT_REFRESH_MIN_PERCENT`]).
pub const DEFAULT_REFRESH_MAX_PERCENT: u8 = 100;

/// Pause after every configured server failed to answer, before the next
/// qualification attempt.
///
/// Miredo waits 100 s, a delay it also uses for DNS retries. We wait 30 s
/// (one refresh interval): network changes are signalled by the glue through
/// [`Client::requalify`], so this delay only matters when the servers are
/// unreachable or UDP is filtered; then a cycle costs 3 Router Solicitations
/// of 61 bytes per 42 s per client (about 4 bytes/s), negligible for a
/// server, and a client recovers from a server restart within 42 s instead
/// of 112 s.
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(30);

/// Link MTU used when the RA carries no MTU option (RFC 4380 §5.1.2).
pub const DEFAULT_MTU: u16 = 1280;

/// Capacity of the event queue (see the module docs for the overflow policy).
pub const EVENT_CAPACITY: usize = 8;

/// Smallest `out` buffer [`Client::poll_transmit`] needs: a Router
/// Solicitation is 61 bytes (13-byte authentication header, 48-byte IPv6 RS).
pub const MIN_TRANSMIT_BUFFER: usize = 61;

/// Client configuration. [`Config::new`] gives the RFC defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The Teredo server's primary IPv4 address (RFC 4380 §5.2): the one
    /// Router Solicitations go to and the address embeds.
    pub server: Ipv4Addr,
    /// The server's secondary IPv4 address, used for the symmetric NAT test
    /// of RFC 4380 §5.2.1 step 7. `None` skips the test, as Miredo does (the
    /// client then qualifies behind any NAT, even a symmetric one, and
    /// reports [`NatMapping::NotTested`]).
    pub server_secondary: Option<Ipv4Addr>,
    /// Another Teredo server to qualify with when `server` stays silent (see
    /// [`Client`] for the switching policy).
    pub fallback_server: Option<Ipv4Addr>,
    /// The fallback server's secondary address, as `server_secondary`.
    pub fallback_secondary: Option<Ipv4Addr>,
    /// The Teredo /32 prefix RAs must carry (default 2001:0000).
    pub prefix: [u8; 4],
    /// The service port the glue bound, if known: the NAT is reported
    /// port-preserving when it maps that port to itself (RFC 6081 §5.4.3).
    pub local_port: Option<u16>,
    /// `T`: how long a Router Solicitation waits for its answer.
    pub qualification_timeout: Duration,
    /// `N`: Router Solicitations per exchange before giving up (0 acts as 1).
    pub qualification_attempts: u8,
    /// Refresh interval (RFC 4380 §5.2.5, RFC 6081 §5.1.1).
    pub refresh_interval: Duration,
    /// Lower bound of the randomized refresh interval, percent; clamped to
    /// RFC 6081 §5.1.1's 50–150 %.
    pub refresh_min_percent: u8,
    /// Upper bound of the randomized refresh interval, percent; clamped to
    /// 50–150 % and raised to `refresh_min_percent` if below it.
    pub refresh_max_percent: u8,
    /// Pause after every server failed before trying again.
    pub restart_delay: Duration,
}

impl Config {
    /// The defaults around a server's primary address: secondary address =
    /// primary + 1 (Miredo's and Microsoft's servers use consecutive
    /// addresses), no fallback, prefix 2001:0::/32, T = 4 s, N = 3, refresh
    /// 30 s randomized to 75–100 %, restart delay 30 s.
    pub fn new(server: Ipv4Addr) -> Self {
        Config {
            server,
            server_secondary: Some(next_address(server)),
            fallback_server: None,
            fallback_secondary: None,
            prefix: DEFAULT_PREFIX,
            local_port: None,
            qualification_timeout: DEFAULT_QUALIFICATION_TIMEOUT,
            qualification_attempts: DEFAULT_QUALIFICATION_ATTEMPTS,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            refresh_min_percent: DEFAULT_REFRESH_MIN_PERCENT,
            refresh_max_percent: DEFAULT_REFRESH_MAX_PERCENT,
            restart_delay: DEFAULT_RESTART_DELAY,
        }
    }

    /// This configuration with `fallback` as fallback server and
    /// `fallback + 1` as its secondary address.
    pub fn with_fallback(self, fallback: Ipv4Addr) -> Self {
        Config {
            fallback_server: Some(fallback),
            fallback_secondary: Some(next_address(fallback)),
            ..self
        }
    }
}

/// The address after `addr`, the conventional secondary server address.
fn next_address(addr: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from_bits(addr.to_bits().wrapping_add(1))
}

/// A datagram [`Client::poll_transmit`] wrote: send `out[..len]` from the
/// service port to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Transmit {
    /// Destination endpoint.
    pub to: SocketAddrV4,
    /// Length of the UDP payload at the start of `out`.
    pub len: usize,
}

/// What the symmetric NAT test (RFC 4380 §5.2.1 step 7) found about the
/// NAT's mapping behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NatMapping {
    /// The server's two addresses saw the same mapping: no NAT, or a cone,
    /// restricted or port-restricted cone NAT. Without cone probing these
    /// cannot be told apart, deliberately (RFC 5991 §3.2).
    ConeOrRestricted,
    /// The test was not run: no secondary server address is configured.
    NotTested,
    /// The secondary address never answered; the client qualified anyway
    /// (as Miredo, which never runs the test, would) but cannot rule out a
    /// symmetric NAT. Usually a server or firewall problem worth logging.
    SecondaryNoReply,
}

/// What the client knows about its NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NatType {
    /// Mapping behaviour, from the symmetric NAT test.
    pub mapping: NatMapping,
    /// Whether the NAT kept the service port (mapped port = local port,
    /// RFC 6081 §5.4.3); `None` when [`Config::local_port`] is unknown.
    pub port_preserving: Option<bool>,
}

/// The result of a successful qualification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Qualification {
    /// The client's Teredo address (RFC 4380 §4, RFC 5991 §3.1).
    pub address: TeredoAddr,
    /// Link MTU for the tunnel interface (RA MTU option, else 1280).
    pub mtu: u16,
    /// NAT type found while qualifying.
    pub nat: NatType,
    /// Primary IPv4 of the server that qualified the client (primary or
    /// fallback server).
    pub server: Ipv4Addr,
}

/// Something the glue must act on, from [`Client::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// The client qualified while it had no address: configure `address`
    /// with `mtu` on the tunnel interface and bring it up.
    Qualified {
        /// The new Teredo address.
        address: TeredoAddr,
        /// Link MTU.
        mtu: u16,
        /// NAT type found.
        nat: NatType,
        /// Primary IPv4 of the server used.
        server: Ipv4Addr,
    },
    /// The address changed while qualified: a refresh RA showed a new NAT
    /// mapping (RFC 4380 §5.2.5), or a re-qualification reached another
    /// server. Remove `old` (peers of the old address are void), add `new`.
    MappingChanged {
        /// The address to remove.
        old: TeredoAddr,
        /// The address to use from now on.
        new: TeredoAddr,
    },
    /// The server advertised a different link MTU; the address is unchanged.
    MtuChanged {
        /// The new link MTU.
        mtu: u16,
    },
    /// The address is gone: remove it, Teredo is down. Either the server
    /// stopped answering refreshes (re-qualification is already under way),
    /// or a re-qualification failed ([`Event::Offline`] or
    /// [`Event::SymmetricNat`] follows).
    Lost {
        /// The address to remove.
        address: TeredoAddr,
    },
    /// `from` did not answer; qualification moves on to `to` at once.
    ServerSwitch {
        /// The silent server.
        from: Ipv4Addr,
        /// The server tried next.
        to: Ipv4Addr,
    },
    /// No server answered `N` Router Solicitations: off-line (RFC 4380
    /// §5.2.1). The next attempt is at `retry_at`.
    Offline {
        /// The last server tried.
        server: Ipv4Addr,
        /// When qualification starts again.
        retry_at: Instant,
    },
    /// The NAT is symmetric: the server's two addresses saw different
    /// mappings (RFC 4380 §5.2.1 step 7). This client cannot work behind
    /// such a NAT yet (RFC 6081 Symmetric NAT Support comes later), so it
    /// stays off-line and tests again at `retry_at` (the host may move).
    SymmetricNat {
        /// Primary IPv4 of the server that ran the test.
        server: Ipv4Addr,
        /// Mapping seen by the server's primary address.
        primary: SocketAddrV4,
        /// Mapping seen by its secondary address.
        secondary: SocketAddrV4,
        /// When qualification starts again.
        retry_at: Instant,
    },
}

/// Where the client stands, for status output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Soliciting a server, with no address yet.
    Qualifying,
    /// An address is configured (refreshes or a re-qualification may be
    /// running).
    Qualified,
    /// Every server failed, or the NAT is symmetric; waiting until `retry_at`.
    Offline {
        /// When qualification starts again.
        retry_at: Instant,
    },
}

/// Counters of everything the client did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Router Solicitations written by [`Client::poll_transmit`].
    pub rs_sent: u64,
    /// Router Advertisements accepted.
    pub ra_accepted: u64,
    /// Events dropped because the queue was full (oldest first).
    pub events_dropped: u64,
    /// Router Solicitations lost because `out` was shorter than
    /// [`MIN_TRANSMIT_BUFFER`].
    pub transmit_buffer_too_small: u64,
    ra_drops: [u64; RaDrop::ALL.len()],
}

impl Stats {
    /// How many Router Advertisements were dropped for `reason`.
    pub fn ra_drops(&self, reason: RaDrop) -> u64 {
        self.ra_drops.get(reason.index()).copied().unwrap_or(0)
    }

    /// All dropped Router Advertisements, whatever the reason.
    pub fn total_ra_drops(&self) -> u64 {
        self.ra_drops.iter().fold(0, |a, &b| a.saturating_add(b))
    }

    fn count_ra_drop(&mut self, reason: RaDrop) {
        if let Some(n) = self.ra_drops.get_mut(reason.index()) {
            *n = n.saturating_add(1);
        }
    }
}

/// The client's side effects during one call: randomness in, events and
/// counters out.
struct Ctx<'a, R> {
    rng: &'a mut R,
    events: &'a mut Deque<Event, EVENT_CAPACITY>,
    stats: &'a mut Stats,
}

impl<R> Ctx<'_, R> {
    /// Queue `event`, dropping the oldest one if the queue is full.
    fn emit(&mut self, event: Event) {
        if self.events.is_full() {
            self.events.pop_front();
            self.stats.events_dropped = self.stats.events_dropped.saturating_add(1);
        }
        // Cannot fail: a slot was just freed if needed.
        let _ = self.events.push_back(event);
    }
}

/// A Teredo client.
///
/// Qualification (RFC 4380 §5.2.1 as updated by RFC 5991 §3.2): Router
/// Solicitations with cone bit 0 go to the server's primary *and* secondary
/// addresses in the same round, so qualification and the symmetric NAT test
/// finish in one round trip (the RFC sends the second RS after the first RA;
/// both leave the same socket, so the NAT sees the same thing either way).
/// Each round waits `T`; unanswered RSs are resent, up to `N` rounds.
///
/// Server switching: a qualification *cycle* tries each configured server
/// once, `N` rounds each, starting with the primary server; a silent server
/// is followed at once by the other one ([`Event::ServerSwitch`]). When all
/// were silent the client is off-line ([`Event::Offline`]) for
/// [`Config::restart_delay`], then starts a new cycle at the primary server.
/// A lost server (`N` unanswered refreshes, [`Event::Lost`]) starts a cycle
/// at the *other* server if there is one. So the client moves to the
/// fallback when the primary stays silent and stays there while it works,
/// and it returns to the primary at the next re-qualification: after an
/// outage, on [`Client::requalify`], or when the fallback is lost.
///
/// Maintenance (RFC 4380 §5.2.5): when nothing came from the server for a
/// randomized refresh interval, an RS goes to its primary address, with the
/// same `T`/`N` rules; a different mapping in the RA changes the address.
pub struct Client<R: Rng> {
    qualifier: Qualifier,
    rng: R,
    events: Deque<Event, EVENT_CAPACITY>,
    stats: Stats,
}

impl<R: Rng> Client<R> {
    /// A client that starts qualifying at `now`: the first Router
    /// Solicitations are ready for [`Client::poll_transmit`] at once.
    pub fn new(config: Config, rng: R, now: Instant) -> Self {
        Client {
            qualifier: Qualifier::new(config, now),
            rng,
            events: Deque::new(),
            stats: Stats::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        self.qualifier.config()
    }

    /// Handles one datagram received on the service port from `remote`.
    /// Call it for **every** datagram, before the data path sees it.
    ///
    /// Any datagram from the current server's primary address and port 3544
    /// counts as interaction with the server and postpones the next refresh
    /// (RFC 4380 §5.2.3, §5.2.5). Returns `true` if the datagram was a
    /// Router Advertisement and has been consumed (accepted, or dropped and
    /// counted in [`Stats::ra_drops`]); `false` if it is for the data path.
    pub fn handle_udp(&mut self, now: Instant, remote: SocketAddrV4, datagram: &[u8]) -> bool {
        let mut ctx = Ctx {
            rng: &mut self.rng,
            events: &mut self.events,
            stats: &mut self.stats,
        };
        self.qualifier.handle_udp(now, remote, datagram, &mut ctx)
    }

    /// Runs the timers. Call it when the instant [`Client::poll_timeout`]
    /// returned has come (calling it earlier or more often is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut ctx = Ctx {
            rng: &mut self.rng,
            events: &mut self.events,
            stats: &mut self.stats,
        };
        self.qualifier.handle_timeout(now, &mut ctx);
    }

    /// Writes the next datagram due (today: a Router Solicitation) into
    /// `out` and says where to send it. Call it after [`Client::new`] and
    /// after every `handle_*` or [`Client::requalify`] call, repeatedly until
    /// it returns `None`; send each datagram at once, since the answer's
    /// timeout starts at `now`. `out` needs [`MIN_TRANSMIT_BUFFER`] bytes; a
    /// shorter one loses the datagram (counted).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<Transmit> {
        let mut ctx = Ctx {
            rng: &mut self.rng,
            events: &mut self.events,
            stats: &mut self.stats,
        };
        self.qualifier.poll_transmit(now, out, &mut ctx)
    }

    /// When [`Client::handle_timeout`] must be called next. Ask again after
    /// every call into the client; the instant may already be past (a
    /// datagram is waiting in [`Client::poll_transmit`]).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.qualifier.poll_timeout()
    }

    /// The next event for the glue. Call it after every call into the client
    /// until it returns `None`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Qualify again, starting now with the primary server. Call it when the
    /// host's IPv4 address or default route changes. The current address
    /// stays in use until the result is known: unchanged, it produces no
    /// event; changed, [`Event::MappingChanged`]; failed, [`Event::Lost`].
    pub fn requalify(&mut self, now: Instant) {
        self.qualifier.requalify(now);
    }

    /// The current qualification, if the client has an address.
    pub fn qualification(&self) -> Option<Qualification> {
        self.qualifier.qualification()
    }

    /// Where the client stands.
    pub fn state(&self) -> State {
        self.qualifier.state()
    }

    /// Counters since the client was created.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
