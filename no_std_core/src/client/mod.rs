//! The Teredo client role (RFC 4380 §5.2, updated by RFC 5991 §3.2 and
//! RFC 6081 §5.1.1): qualification and maintenance (`qualify.rs`), and the
//! data path (`datapath.rs`, `send.rs`, `receive.rs`, `echo_test.rs`): the
//! peer table, bubbles, the direct IPv6 connectivity test, forwarding.
//!
//! # Sans-IO API
//!
//! [`Client`] follows quinn-proto's shape. The glue owns the UDP socket (the
//! client's *service port*) and a clock, and loops:
//!
//! 1. feed every datagram received on the service port to
//!    [`Client::handle_udp`], and every IPv6 packet read from the tunnel to
//!    [`Client::handle_ipv6`]; act on the [`Output`] at once (it may borrow
//!    the input: the hot path copies nothing);
//! 2. when [`Client::poll_timeout`]'s instant has come, call
//!    [`Client::handle_timeout`];
//! 3. after any of these, and after [`Client::new`] / [`Client::requalify`],
//!    drain [`Client::poll_transmit`] (send each datagram from the service
//!    port, or write each packet to the tunnel) and [`Client::poll_event`]
//!    (reconfigure the tunnel interface, run hooks) until both return
//!    `None`; then sleep until the next [`Client::poll_timeout`], datagram
//!    or tunnel packet.
//!
//! # Randomness
//!
//! The client *stores* its [`Rng`] as a type parameter instead of taking
//! `&mut impl Rng` on each call. Randomness is needed in several entry points
//! (a fresh nonce for every Router Solicitation in `poll_transmit`, random
//! RFC 5991 flag bits and the randomized refresh interval when an RA is
//! accepted in `handle_udp`, and the secret keys of the data path), so a
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

mod datapath;
#[cfg(test)]
mod datapath_sim_test;
#[cfg(test)]
mod datapath_test;
mod echo_test;
mod hold;
mod qualify;
mod receive;
mod send;
#[cfg(test)]
mod sim_test;

use core::net::{Ipv4Addr, SocketAddrV4};

use heapless::Deque;

use crate::addr::{TeredoAddr, DEFAULT_PREFIX};
use crate::counter::bump;
use crate::nonce::Rng;
use crate::peers::PeerTable;
use crate::time::{earliest, Duration, Instant};
use crate::wire::encap;

pub use crate::tunnel::{Destination, Output, Transmit, EXPIRY_SWEEP};
pub use datapath::DataDrop;
use datapath::DataPath;
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

/// Smallest `out` buffer [`Client::handle_udp`], [`Client::handle_ipv6`] and
/// [`Client::poll_transmit`] need: a queued packet (at most 1280 bytes, the
/// queue slot size of the default table) or an ICMPv6 error (at most 1280
/// bytes, RFC 4443 §2.4(c)), plus room for Teredo headers. With a shorter
/// buffer, what does not fit is lost (counted in
/// [`Stats::transmit_buffer_too_small`]).
pub const MIN_OUTPUT_BUFFER: usize = 1280 + 64;

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
    /// Datagrams or packets lost because `out` was shorter than
    /// [`MIN_OUTPUT_BUFFER`].
    pub transmit_buffer_too_small: u64,
    /// Packets received from peers and written to the tunnel.
    pub delivered: u64,
    /// Tunnel packets sent at once to a trusted peer (RFC 4380 §5.2.4 case 1).
    pub sent_direct: u64,
    /// Tunnel packets queued while their peer was being reached.
    pub queued: u64,
    /// Queued packets released to a peer that became trusted.
    pub flushed: u64,
    /// Bubbles sent: direct, indirect, and answers to bubbles from the server.
    pub bubbles_sent: u64,
    /// Bubbles received (consumed, never delivered).
    pub bubbles_received: u64,
    /// Echo requests of direct IPv6 connectivity tests sent.
    pub echo_requests_sent: u64,
    /// Times a peer became trusted at a new mapping (rules 2 and 3 of
    /// RFC 4380 §5.2.3).
    pub peers_trusted: u64,
    /// ICMPv6 errors written to the tunnel.
    pub icmp_errors_sent: u64,
    /// ICMPv6 errors suppressed by the rate limit (RFC 4443 §2.4(f)).
    pub icmp_errors_limited: u64,
    ra_drops: [u64; RaDrop::ALL.len()],
    data_drops: [u64; DataDrop::ALL.len()],
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
            bump(n);
        }
    }

    /// How many packets the data path dropped for `reason`.
    pub fn data_drops(&self, reason: DataDrop) -> u64 {
        self.data_drops.get(reason.index()).copied().unwrap_or(0)
    }

    /// All packets the data path dropped, whatever the reason.
    pub fn total_data_drops(&self) -> u64 {
        self.data_drops.iter().fold(0, |a, &b| a.saturating_add(b))
    }

    /// Out of line, as [`bump`]: it is called at two dozen sites.
    #[inline(never)]
    fn count_data_drop(&mut self, reason: DataDrop) {
        if let Some(n) = self.data_drops.get_mut(reason.index()) {
            bump(n);
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
///
/// Data path (RFC 4380 §5.2.3–§5.2.6, §5.2.9; RFC 5991 §3.2): see
/// [`Client::handle_ipv6`] and [`Client::handle_udp`]. Peers live in a
/// fixed [`PeerTable`] of `N` entries, `B` buckets and `SLOTS` queue slots
/// of `SLOT_SIZE` bytes; the defaults are the router-sized
/// [`crate::peers::ClientPeerTable`] (about 102 KiB, so keep the client in
/// a `Box` or a long-lived frame). The peer table is emptied whenever the
/// address changes or is lost ([`Event::MappingChanged`], [`Event::Lost`]).
pub struct Client<
    R: Rng,
    const N: usize = 256,
    const B: usize = 512,
    const SLOTS: usize = 64,
    const SLOT_SIZE: usize = 1280,
> {
    qualifier: Qualifier,
    data: DataPath<N, B, SLOTS, SLOT_SIZE>,
    rng: R,
    events: Deque<Event, EVENT_CAPACITY>,
    stats: Stats,
}

impl<R: Rng> Client<R> {
    /// A client with the router-sized peer table that starts qualifying at
    /// `now`: the first Router Solicitations are ready for
    /// [`Client::poll_transmit`] at once.
    pub fn new(config: Config, rng: R, now: Instant) -> Self {
        Client::with_table(config, rng, now)
    }
}

impl<R: Rng, const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>
    Client<R, N, B, SLOTS, SLOT_SIZE>
{
    /// As [`Client::new`], with a peer table of the type's own capacities
    /// (see [`PeerTable`] for their constraints). The table's hash key and
    /// the echo-test key are drawn from `rng`.
    pub fn with_table(config: Config, mut rng: R, now: Instant) -> Self {
        let mut table_key = [0u8; 16];
        let mut echo_key = [0u8; 16];
        rng.fill_bytes(&mut table_key);
        rng.fill_bytes(&mut echo_key);
        Client {
            qualifier: Qualifier::new(config, now),
            data: DataPath::new(table_key, echo_key, now),
            rng,
            events: Deque::new(),
            stats: Stats::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        self.qualifier.config()
    }

    /// Hand the data path the current address (emptying the peer table if
    /// it changed).
    fn sync_address(&mut self) {
        let address = self.qualifier.qualification().map(|q| q.address);
        self.data.set_address(address, &mut self.stats);
    }

    /// Handles one datagram received on the service port from `remote`.
    /// Call it for **every** datagram (RAs, bubbles, data from peers and
    /// relays); `out` needs [`MIN_OUTPUT_BUFFER`] bytes.
    ///
    /// Any datagram from the current server's primary address and port 3544
    /// counts as interaction with the server and postpones the next refresh
    /// (RFC 4380 §5.2.3, §5.2.5). Router Advertisements go to qualification
    /// (accepted, or dropped and counted in [`Stats::ra_drops`]). Everything
    /// else follows RFC 4380 §5.2.3: a bubble relayed by our server with an
    /// origin indication is answered with a direct bubble to the origin
    /// (returned as [`Output::Udp`]); packets from trusted peers, from peers
    /// whose Teredo address embeds the UDP source, and nothing else, are
    /// delivered ([`Output::Tunnel`] borrowing `datagram`); an echo reply
    /// with our nonce makes its relay trusted; a packet from an unverified
    /// native source is held and starts a connectivity test (the echo
    /// request is returned as [`Output::Udp`]), and [`Client::poll_transmit`]
    /// delivers it once the test verifies the relay it came through
    /// (RFC 4380 §5.2.3 rule 6). Drops are counted in [`Stats::data_drops`].
    pub fn handle_udp<'a>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        datagram: &'a [u8],
        out: &'a mut [u8],
    ) -> Output<'a> {
        let mut ctx = Ctx {
            rng: &mut self.rng,
            events: &mut self.events,
            stats: &mut self.stats,
        };
        // Parsed once, for qualification and the data path alike.
        let repr = encap::Repr::parse(datagram).ok();
        let consumed = self
            .qualifier
            .handle_udp(now, remote, repr.as_ref(), &mut ctx);
        self.sync_address();
        if consumed {
            return Output::None;
        }
        self.data
            .handle_udp(now, remote, repr, out, &mut self.stats)
    }

    /// Handles one IPv6 packet read from the tunnel (RFC 4380 §5.2.4);
    /// `out` needs [`MIN_OUTPUT_BUFFER`] bytes.
    ///
    /// To a trusted peer heard from within 30 s, the packet goes at once
    /// ([`Output::Udp`] borrowing `packet`). To another Teredo peer, it is
    /// queued while bubbles go directly and through the peer's server; to a
    /// native host, while an echo test through our server finds its relay
    /// (both from [`Client::poll_transmit`]). Not qualified, a source other
    /// than our address, or a peer that never answered: an ICMPv6
    /// Destination Unreachable for the tunnel ([`Output::Tunnel`] in `out`,
    /// rate-limited). Multicast, and Teredo destinations embedding a
    /// non-global IPv4, are dropped silently.
    pub fn handle_ipv6<'a>(
        &mut self,
        now: Instant,
        packet: &'a [u8],
        out: &'a mut [u8],
    ) -> Output<'a> {
        self.data.handle_ipv6(now, packet, out, &mut self.stats)
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
        self.sync_address();
        self.data.handle_timeout(now, &mut self.stats);
    }

    /// Writes the next datagram or tunnel packet due into `out` and says
    /// where it goes: queued packets released to peers that became trusted,
    /// held inbound packets released to the tunnel once their relay is
    /// verified, bubbles and echo requests due, ICMPv6 errors for queued
    /// packets that will never go, Router Solicitations. Call it after [`Client::new`] and
    /// after every `handle_*` or [`Client::requalify`] call, repeatedly until
    /// it returns `None`; send each at once, since retry timers start at
    /// `now`. `out` needs [`MIN_OUTPUT_BUFFER`] bytes; what does not fit is
    /// lost (counted).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<Transmit> {
        let mut ctx = Ctx {
            rng: &mut self.rng,
            events: &mut self.events,
            stats: &mut self.stats,
        };
        if let Some(tx) = self.qualifier.poll_transmit(now, out, &mut ctx) {
            return Some(tx);
        }
        let (to, len) = self.data.poll_transmit(now, out, &mut self.stats)?;
        let dest = to.map_or(Destination::Tunnel, Destination::Udp);
        Some(Transmit { dest, len })
    }

    /// When [`Client::handle_timeout`] must be called next. Ask again after
    /// every call into the client; the instant may already be past (work is
    /// waiting in [`Client::poll_transmit`]).
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(self.qualifier.poll_timeout(), self.data.poll_timeout())
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
        self.sync_address();
    }

    /// The current qualification, if the client has an address.
    pub fn qualification(&self) -> Option<Qualification> {
        self.qualifier.qualification()
    }

    /// Where the client stands.
    pub fn state(&self) -> State {
        self.qualifier.state()
    }

    /// The peer table, for status output.
    pub fn peers(&self) -> &PeerTable<N, B, SLOTS, SLOT_SIZE> {
        &self.data.peering.peers
    }

    /// Counters since the client was created.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
