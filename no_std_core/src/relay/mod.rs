//! The Teredo relay role (RFC 4380 §5.4, updated by RFC 5991 §3.2): the
//! router between native IPv6 and Teredo clients.
//!
//! # Sans-IO API
//!
//! The glue owns the relay's UDP socket (port 3544 by convention), a tunnel
//! interface routed for the Teredo prefix, and a clock, and loops:
//!
//! 1. every IPv6 packet read from the tunnel goes to [`Relay::handle_ipv6`],
//!    every datagram received on the socket to [`Relay::handle_udp`]; act on
//!    the [`Output`] at once (on the hot path it borrows the input);
//! 2. when [`Relay::poll_timeout`]'s instant has come, call
//!    [`Relay::handle_timeout`];
//! 3. after any of these, drain [`Relay::poll_transmit`] until `None`.
//!
//! # Behaviour
//!
//! From native IPv6 (`from_ipv6.rs`, RFC 4380 §5.4.1): only Teredo
//! destinations are served; others get ICMPv6 Destination Unreachable code 3
//! (as Miredo: a relay routes only Teredo). Embedded IPv4 addresses must be
//! global unicast. A trusted, valid peer gets the packet at once; any other
//! gets an untrusted entry, a bounded FIFO queue and bubbles, retried every
//! 2 s, four at most (the shared `Peering` rules); after the last one the
//! queue is answered with ICMPv6 code 3 and the entry deleted.
//!
//! Bubbles: RFC 5991 §3.2 says to treat every peer's cone bit as 0, so no
//! peer is trusted before it answered. A relay with a public address (or
//! behind a cone NAT), [`RelayKind::Cone`], sends only the indirect bubble
//! through the client's server; [`RelayKind::Restricted`] also sends a
//! direct one to the client's mapping (RFC 4380 §5.4.1). The bubble's source
//! is a link-local address whose interface identifier is a keyed hash of the
//! client's mapping (Miredo's scheme, miredo.md §3.9): a client answers an
//! indirect bubble with a direct bubble *to that address*, which proves the
//! answer is for us even when the client sits behind a symmetric NAT and its
//! UDP source differs from the mapping its address embeds.
//!
//! From clients (`from_udp.rs`, RFC 4380 §5.4.2): a datagram must hold a
//! Teredo payload whose IPv6 source is a Teredo address of our prefix, and
//! the source is proven by one of: its embedded mapping is the UDP source;
//! it is addressed to our tag for that embedded mapping; its entry is
//! trusted at this UDP source. Without an entry the packet is dropped
//! (Miredo's policy: a relay serves only clients it tried to reach), unless
//! [`Config::accept_first_contact`] is set. An accepted packet makes the
//! entry trusted at its UDP source and releases the queue; bubbles are
//! consumed; packets to native IPv6 go to the tunnel. Packets to Teredo
//! destinations are dropped: the relay does not hairpin between clients
//! (clients reach each other directly, RFC 4380 §5.2.4), and forwarding
//! would let a client launder its source through us.
//!
//! A client-initiated flow works under the strict policy: the client's echo
//! test (RFC 4380 §5.2.9) goes to the native host through the client's
//! server; the host's reply is routed to this relay and enters through
//! [`Relay::handle_ipv6`], which creates the entry and bubbles the client;
//! the client answers directly, the reply is released to it, and the client
//! trusts this relay for that host from then on.
//!
//! # Flood resistance (RFC 4380 §7.3.5)
//!
//! - The peer table never evicts a trusted peer active within 30 s, so a
//!   flood of new peers cannot push out established flows; per-peer queues
//!   are bounded (1280 bytes) and share a fixed pool.
//! - New entries from the IPv6 side (created by native senders, each costing
//!   up to four bubbles) draw from two token buckets: one for the whole
//!   relay, and one of [`SERVER_BUCKETS`] buckets picked by a keyed hash of
//!   the destination's Teredo server IPv4 (where the indirect bubbles go).
//!   The second keeps the relay from being turned into a bubble cannon
//!   against one IPv4 address (the attacker picks the embedded server
//!   address), without per-source state: native sources are free to vary
//!   and would make per-source buckets useless. Hashing into a fixed array
//!   needs no eviction an attacker could exploit; a collision only makes
//!   two servers share a budget. New entries from first contact on the UDP
//!   side draw from the relay-wide bucket only.
//! - Nothing allocates; ICMPv6 errors are rate-limited (RFC 4443 §2.4(f)).

mod from_ipv6;
mod from_udp;
mod limit;
#[cfg(test)]
mod sim_test;
#[cfg(test)]
mod test;

use core::fmt;
use core::marker::PhantomData;
use core::net::{Ipv6Addr, SocketAddrV4};

use crate::addr::{self, TeredoAddr, DEFAULT_PREFIX, TEREDO_PORT};
use crate::counter::bump;
use crate::nonce::{KeyedHash, Rng};
use crate::peers::{Peer, PeerTable};
use crate::time::Instant;
use crate::tunnel::{BubblePlan, Count, Counters, Peering, Procedure, Role};
pub use crate::tunnel::{Destination, Output, Transmit};

use limit::NewPeerLimit;
pub use limit::SERVER_BUCKETS;

/// Default tunnel MTU: the Teredo link MTU (RFC 4380 §5.1.2), Miredo's
/// `InterfaceMTU` default.
pub const DEFAULT_MTU: u16 = 1280;

/// Smallest `out` buffer the relay's calls need: a queued packet or an
/// ICMPv6 error (at most 1280 bytes each) plus headroom, as the client's.
pub const MIN_OUTPUT_BUFFER: usize = 1280 + 64;

/// Default burst of new peer entries for the whole relay.
pub const DEFAULT_NEW_PEER_BURST: u32 = 512;
/// Default refill of the relay-wide new-peer bucket, per second.
pub const DEFAULT_NEW_PEER_RATE: u32 = 256;
/// Default burst of new peer entries behind one Teredo server address.
pub const DEFAULT_SERVER_BURST: u32 = 128;
/// Default refill of one per-server bucket, per second.
pub const DEFAULT_SERVER_RATE: u32 = 64;

/// Whether the relay needs direct bubbles to reach clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RelayKind {
    /// Public address or cone NAT: indirect bubbles only (Miredo's "relay"
    /// / "cone" mode). The client's direct answer reaches us unsolicited.
    #[default]
    Cone,
    /// Behind a restricted NAT (Miredo's deprecated "restricted" mode): a
    /// direct bubble to the client's mapping opens our NAT for its answer
    /// (RFC 4380 §5.4.1 "if the relay is behind a non-cone NAT").
    Restricted,
}

/// Relay configuration. [`Config::new`] gives the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The Teredo /32 prefix served (default 2001:0000).
    pub prefix: [u8; 4],
    /// Bubble mode.
    pub kind: RelayKind,
    /// MTU the glue gives the tunnel interface (default 1280, RFC 4380
    /// §5.1.2). The core does not use it: the interface enforces it.
    pub mtu: u16,
    /// Source of the ICMPv6 errors the relay writes to the tunnel: a native
    /// address of the relay host (the kernel chooses it in Miredo). The
    /// default, the prefix followed by `::1`, lies inside the served prefix
    /// and only says "the Teredo relay".
    pub icmp_source: Ipv6Addr,
    /// Accept packets from clients the relay never tried to reach, when
    /// their Teredo address embeds their UDP source (RFC 4380 §5.4.2 "may"
    /// drop them). Default `false`, Miredo's stricter policy.
    pub accept_first_contact: bool,
    /// Burst of new peer entries for the whole relay.
    pub new_peer_burst: u32,
    /// Refill of the relay-wide new-peer bucket, per second.
    pub new_peer_rate: u32,
    /// Burst of new entries for clients of one Teredo server address.
    pub server_burst: u32,
    /// Refill of a per-server bucket, per second.
    pub server_rate: u32,
}

impl Config {
    /// The defaults: prefix 2001:0::/32, [`RelayKind::Cone`], MTU 1280,
    /// ICMPv6 errors from `2001::1`, strict first-contact policy, new-peer
    /// limits of the `DEFAULT_*` constants.
    pub fn new() -> Self {
        Config::with_prefix(DEFAULT_PREFIX)
    }

    /// The defaults around another Teredo prefix.
    pub fn with_prefix(prefix: [u8; 4]) -> Self {
        let [a, b, c, d] = prefix;
        Config {
            prefix,
            kind: RelayKind::Cone,
            mtu: DEFAULT_MTU,
            icmp_source: Ipv6Addr::new(
                u16::from_be_bytes([a, b]),
                u16::from_be_bytes([c, d]),
                0,
                0,
                0,
                0,
                0,
                1,
            ),
            accept_first_contact: false,
            new_peer_burst: DEFAULT_NEW_PEER_BURST,
            new_peer_rate: DEFAULT_NEW_PEER_RATE,
            server_burst: DEFAULT_SERVER_BURST,
            server_rate: DEFAULT_SERVER_RATE,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// Why the relay dropped a packet. Each reason is counted in [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Drop {
    /// A tunnel packet that is not a valid IPv6 packet.
    InvalidIpv6,
    /// A tunnel packet to a multicast destination (Teredo has no multicast).
    Multicast,
    /// A tunnel packet to a destination outside the Teredo prefix: answered
    /// with ICMPv6 unreachable code 3 (relays route only Teredo, as Miredo).
    NotTeredoDestination,
    /// A Teredo destination embedding a non-global IPv4 (mapping or
    /// server): MUST be dropped silently (RFC 4380 §5.4.1).
    NonGlobalDestination,
    /// A new peer refused by the new-peer token buckets (flood control).
    NewPeerLimited,
    /// No peer entry could be made: the table is full of active trusted peers.
    PeerTableFull,
    /// The peer's queue (or the shared pool) had no room.
    QueueFull,
    /// The peer's bubble budget is spent; answered with ICMPv6 code 3.
    Unreachable,
    /// A queued packet dropped because its peer never answered the bubbles;
    /// answered with ICMPv6 code 3 (RFC 4380 §5.4.1).
    GaveUp,
    /// A queued packet of a peer evicted from or expired out of the table;
    /// answered with ICMPv6 code 3.
    PeerRemoved,
    /// A datagram that is not a Teredo payload (RFC 4380 §5.4.2).
    Malformed,
    /// An RFC 6081 trailer whose type says "drop the packet if unknown".
    Trailer,
    /// A datagram whose IPv6 source is not a Teredo address of our prefix
    /// (RFC 4380 §5.4.2).
    NonTeredoSource,
    /// A Teredo source not proven by the datagram: its embedded mapping is
    /// not the UDP source, it is not addressed to our tag, and no trusted
    /// entry has this UDP source (RFC 4380 §5.4.2).
    SpoofedSource,
    /// A proven source the relay never tried to reach, under the strict
    /// first-contact policy (RFC 4380 §5.4.2 "may silently drop").
    UnknownPeer,
    /// A client's packet to another Teredo address: no hairpinning.
    TeredoDestination,
    /// A client's packet to a destination that is not global unicast
    /// IPv6 (multicast, link-local other than our tag, loopback, ...).
    InvalidDestination,
}

impl Drop {
    /// Every reason, in the order of the counters.
    pub const ALL: [Drop; 17] = [
        Drop::InvalidIpv6,
        Drop::Multicast,
        Drop::NotTeredoDestination,
        Drop::NonGlobalDestination,
        Drop::NewPeerLimited,
        Drop::PeerTableFull,
        Drop::QueueFull,
        Drop::Unreachable,
        Drop::GaveUp,
        Drop::PeerRemoved,
        Drop::Malformed,
        Drop::Trailer,
        Drop::NonTeredoSource,
        Drop::SpoofedSource,
        Drop::UnknownPeer,
        Drop::TeredoDestination,
        Drop::InvalidDestination,
    ];

    /// A stable snake_case name, for logs and status output.
    pub fn name(self) -> &'static str {
        match self {
            Drop::InvalidIpv6 => "invalid_ipv6",
            Drop::Multicast => "multicast",
            Drop::NotTeredoDestination => "not_teredo_destination",
            Drop::NonGlobalDestination => "non_global_destination",
            Drop::NewPeerLimited => "new_peer_limited",
            Drop::PeerTableFull => "peer_table_full",
            Drop::QueueFull => "queue_full",
            Drop::Unreachable => "unreachable",
            Drop::GaveUp => "gave_up",
            Drop::PeerRemoved => "peer_removed",
            Drop::Malformed => "malformed",
            Drop::Trailer => "trailer",
            Drop::NonTeredoSource => "non_teredo_source",
            Drop::SpoofedSource => "spoofed_source",
            Drop::UnknownPeer => "unknown_peer",
            Drop::TeredoDestination => "teredo_destination",
            Drop::InvalidDestination => "invalid_destination",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Packets and bytes through one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Traffic {
    /// Packets.
    pub packets: u64,
    /// Bytes (IPv6 packets, or UDP payloads for datagrams received).
    pub bytes: u64,
}

impl Traffic {
    fn add(&mut self, len: usize) {
        self.packets = self.packets.saturating_add(1);
        self.bytes = self.bytes.saturating_add(len as u64);
    }
}

/// Counters of everything the relay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets read from the tunnel (native IPv6 side), all of them.
    pub from_tunnel: Traffic,
    /// IPv6 packets sent over UDP to clients: at once or released from a
    /// queue (bubbles not included).
    pub to_clients: Traffic,
    /// Datagrams received from clients, all of them.
    pub from_clients: Traffic,
    /// Packets from clients written to the tunnel.
    pub to_tunnel: Traffic,
    /// Packets sent at once to a trusted peer (RFC 4380 §5.4.1 case 1).
    pub sent_direct: u64,
    /// Packets queued while their peer was being reached.
    pub queued: u64,
    /// Queued packets released to a peer that became trusted.
    pub flushed: u64,
    /// Bubbles sent (each of a direct + indirect pair counts).
    pub bubbles_sent: u64,
    /// Bubbles (and answers to our tag) received; consumed.
    pub bubbles_received: u64,
    /// Times a peer became trusted at a new mapping.
    pub peers_trusted: u64,
    /// ICMPv6 errors written to the tunnel.
    pub icmp_errors_sent: u64,
    /// ICMPv6 errors suppressed by the rate limit (RFC 4443 §2.4(f)).
    pub icmp_errors_limited: u64,
    /// Datagrams or packets lost because `out` was shorter than
    /// [`MIN_OUTPUT_BUFFER`].
    pub transmit_buffer_too_small: u64,
    drops: [u64; Drop::ALL.len()],
}

impl Stats {
    /// How many packets were dropped for `reason`.
    pub fn drops(&self, reason: Drop) -> u64 {
        self.drops.get(reason.index()).copied().unwrap_or(0)
    }

    /// All dropped packets, whatever the reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().fold(0, |a, &b| a.saturating_add(b))
    }

    /// Out of line, as [`bump`]: it is called at a dozen sites.
    #[inline(never)]
    fn drop(&mut self, reason: Drop) {
        if let Some(n) = self.drops.get_mut(reason.index()) {
            bump(n);
        }
    }
}

impl fmt::Display for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pkts/{} B", self.packets, self.bytes)
    }
}

impl fmt::Display for Stats {
    /// One log line: traffic per direction, bubbles, queues, errors, and
    /// the non-zero drop counters by their stable names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "from_tunnel {}, to_clients {}, from_clients {}, to_tunnel {}, \
             sent_direct {}, queued {}, flushed {}, bubbles {} sent/{} received, \
             peers_trusted {}, icmp_errors {} sent/{} limited, short_buffer {}",
            self.from_tunnel,
            self.to_clients,
            self.from_clients,
            self.to_tunnel,
            self.sent_direct,
            self.queued,
            self.flushed,
            self.bubbles_sent,
            self.bubbles_received,
            self.peers_trusted,
            self.icmp_errors_sent,
            self.icmp_errors_limited,
            self.transmit_buffer_too_small,
        )?;
        for reason in Drop::ALL {
            let n = self.drops(reason);
            if n > 0 {
                write!(f, ", drop {}={}", reason.name(), n)?;
            }
        }
        Ok(())
    }
}

impl Counters for Stats {
    fn count(&mut self, what: Count) {
        // One counter per event, picked by a match that only computes an
        // address: a single increment serves every arm.
        let counter = match what {
            Count::Queued => &mut self.queued,
            Count::Flushed { bytes } => {
                self.to_clients.add(bytes);
                &mut self.flushed
            }
            Count::BubbleSent => &mut self.bubbles_sent,
            // The relay runs no echo tests (RFC 4380 §5.4 uses bubbles).
            Count::EchoSent => return,
            Count::PeerTrusted => &mut self.peers_trusted,
            Count::IcmpSent => &mut self.icmp_errors_sent,
            Count::IcmpLimited => &mut self.icmp_errors_limited,
            Count::BufferTooSmall => &mut self.transmit_buffer_too_small,
            Count::TableFull => return self.drop(Drop::PeerTableFull),
            Count::QueueFull => return self.drop(Drop::QueueFull),
            Count::Unreachable => return self.drop(Drop::Unreachable),
            Count::GaveUp => return self.drop(Drop::GaveUp),
            Count::PeerRemoved => return self.drop(Drop::PeerRemoved),
        };
        bump(counter);
    }
}

/// The link-local address a relay's bubbles to a client at `mapping` come
/// from: `fe80::` and 64 bits of a keyed hash of the mapping, with the
/// universal/local and group bits cleared (Miredo's tag, miredo.md §3.9).
/// Only someone who saw our bubble can address an answer to it.
fn bubble_tag(key: &KeyedHash, mapping: SocketAddrV4) -> Ipv6Addr {
    let mut iid = key
        .hash(&[
            b"relay bubble tag",
            &mapping.ip().octets(),
            &mapping.port().to_be_bytes(),
        ])
        .to_be_bytes();
    iid[0] &= 0xfc;
    let mut octets = [0u8; 16];
    octets[0] = 0xfe;
    octets[1] = 0x80;
    octets[8..].copy_from_slice(&iid);
    Ipv6Addr::from(octets)
}

/// The relay's side of `Peering`: bubbles only, from the tag of the
/// client's embedded mapping.
struct RelayRole<'a> {
    config: &'a Config,
    tag_key: &'a KeyedHash,
}

impl Role for RelayRole<'_> {
    fn procedure(&self, _peer: &Peer) -> Procedure {
        Procedure::Bubbles
    }

    /// RFC 4380 §5.4.1 case 3: the indirect bubble through the client's
    /// server; the direct one only for a [`RelayKind::Restricted`] relay.
    /// Never to a non-global IPv4.
    fn bubbles(&self, peer: &Peer) -> BubblePlan {
        let teredo = TeredoAddr::from_ipv6(peer.addr(), self.config.prefix);
        let embedded = teredo.map_or(peer.mapping(), |t| t.mapped());
        BubblePlan {
            src: bubble_tag(self.tag_key, embedded),
            direct: Some(peer.mapping()).filter(|m| {
                self.config.kind == RelayKind::Restricted && addr::is_global_unicast(*m.ip())
            }),
            indirect: teredo
                .map(|t| SocketAddrV4::new(t.server(), TEREDO_PORT))
                .filter(|s| addr::is_global_unicast(*s.ip())),
        }
    }

    fn icmp_source(&self) -> Ipv6Addr {
        self.config.icmp_source
    }

    /// RFC 4380 §5.4.1: after the retries, delete the entry with its queue.
    fn remove_after_give_up(&self) -> bool {
        true
    }
}

/// A Teredo relay (RFC 4380 §5.4): see the [module documentation](self).
///
/// Peers live in a fixed [`PeerTable`] of `N` entries, `B` buckets and
/// `SLOTS` queue slots of `SLOT_SIZE` bytes; the defaults are
/// [`crate::peers::RelayPeerTable`]'s (about 1.4 MiB: keep the relay in a
/// `Box`, built on a thread with a large enough stack, e.g. Linux's main
/// thread).
pub struct Relay<
    R: Rng,
    const N: usize = 10_240,
    const B: usize = 16_384,
    const SLOTS: usize = 512,
    const SLOT_SIZE: usize = 1280,
> {
    config: Config,
    peering: Peering<N, B, SLOTS, SLOT_SIZE>,
    /// Key of the bubble tags (stable for the relay's life, as Miredo's).
    tag_key: KeyedHash,
    new_peers: NewPeerLimit,
    stats: Stats,
    /// The relay draws its keys from an `R` once, in [`Relay::with_table`],
    /// and keeps no randomness afterwards (nothing in the relay needs fresh
    /// random values); the parameter gives the type the client's shape,
    /// `Relay<OsRng>`.
    rng: PhantomData<fn() -> R>,
}

impl<R: Rng> Relay<R> {
    /// A relay with the default (relay-sized) peer table. Its secret keys
    /// (peer table hash, bubble tags, flood buckets) are drawn from `rng`,
    /// which must be a CSPRNG; it is not kept.
    pub fn new(config: Config, rng: R, now: Instant) -> Self {
        Relay::with_table(config, rng, now)
    }
}

impl<R: Rng, const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>
    Relay<R, N, B, SLOTS, SLOT_SIZE>
{
    /// As [`Relay::new`], with a peer table of the type's own capacities
    /// (see [`PeerTable`] for their constraints).
    pub fn with_table(config: Config, mut rng: R, now: Instant) -> Self {
        let mut keys = [[0u8; 16]; 3];
        for key in &mut keys {
            rng.fill_bytes(key);
        }
        let [table_key, tag_key, limit_key] = keys;
        Relay {
            config,
            peering: Peering::new(table_key, now),
            tag_key: KeyedHash::new(tag_key),
            new_peers: NewPeerLimit::new(&config, limit_key, now),
            stats: Stats::default(),
            rng: PhantomData,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the timers (the expiry sweep of idle peers). Call it when the
    /// instant [`Relay::poll_timeout`] returned has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.peering.handle_timeout(now);
    }

    /// Writes the next datagram or tunnel packet due into `out` and says
    /// where it goes: queued packets released to clients that answered,
    /// bubbles due, ICMPv6 errors for queued packets that will never go.
    /// Call it after every `handle_*` call, repeatedly until `None`; send
    /// each at once. `out` needs [`MIN_OUTPUT_BUFFER`] bytes.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<Transmit> {
        let role = RelayRole {
            config: &self.config,
            tag_key: &self.tag_key,
        };
        let (to, len) = self
            .peering
            .poll_transmit(now, &role, out, &mut self.stats)?;
        let dest = to.map_or(Destination::Tunnel, Destination::Udp);
        Some(Transmit { dest, len })
    }

    /// When [`Relay::handle_timeout`] must be called next (may be past:
    /// work waits in [`Relay::poll_transmit`]).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peering.poll_timeout()
    }

    /// Counters since the relay was created.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The peer table, for status output.
    pub fn peers(&self) -> &PeerTable<N, B, SLOTS, SLOT_SIZE> {
        &self.peering.peers
    }

    /// The tag (bubble source) for a client at `mapping`.
    fn tag(&self, mapping: SocketAddrV4) -> Ipv6Addr {
        bubble_tag(&self.tag_key, mapping)
    }
}
