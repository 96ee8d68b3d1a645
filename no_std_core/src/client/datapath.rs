//! The client's data path (RFC 4380 §5.2.3, §5.2.4, §5.2.6, §5.2.9, with
//! RFC 5991 §3.2): the client's [`Role`] in the shared [`Peering`] (peer
//! table, queues, bubble and echo-test schedule, ICMPv6 errors), the echo
//! test's nonce, and the link the peers belong to.
//!
//! Transmission lives in `send.rs`, reception in `receive.rs`; both only
//! change peer state and wake the [`Peering`] scheduler.
//!
//! # Choices
//!
//! - Every untrusted Teredo peer gets a direct bubble to the mapping its
//!   address embeds and an indirect bubble through its server, whatever its
//!   cone bit (RFC 4380 §5.2.4 case 5; RFC 5991 §3.2 says to skip case 4).
//! - A packet from an unverified native source is held (see `hold.rs`)
//!   while the echo test runs, and released to the tunnel only if the test
//!   verifies the relay it came through (RFC 4380 §5.2.3 rule 6).
//! - Local client discovery (RFC 4380 §5.2.8, reception rules 4 and 5) is
//!   not implemented.
//! - When the bubble or echo budget is spent, the peer's queued packets are
//!   answered with ICMPv6 Destination Unreachable code 3, and so are new
//!   packets for it until the budget allows a new round (bubbles: 300 s after
//!   the last one; echo tests: until the idle entry expires, 60 s after the
//!   last try).

use core::net::{Ipv6Addr, SocketAddrV4};

use super::echo_test::EchoNonce;
use super::hold::{HeldPackets, HOLD_LIFETIME};
use super::{bump, Stats};
use crate::addr::{self, TeredoAddr, TEREDO_PORT};
use crate::limits::TokenBucket;
use crate::peers::peer::ECHO_RETRY;
use crate::peers::{Peer, PeerId};
use crate::time::{earliest, Instant};
use crate::tunnel::{BubblePlan, Count, Counters, Output, Peering, Procedure, Role};
use crate::wire::Error;

/// New peer entries that unsolicited packets from unverified native sources
/// may create, burst (RFC 4380 §5.2.3 rule 6). Each entry costs at most four
/// echo requests (CVE-2006-6266: unsolicited packets made Miredo send pings),
/// so this bucket bounds that amplification for the whole client.
const INBOUND_TEST_BURST: u32 = 8;
/// Refill rate of the bucket above, per second.
const INBOUND_TEST_RATE: u32 = 4;

/// Why the data path dropped a packet. Each reason is counted in
/// [`Stats::data_drops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DataDrop {
    /// Not qualified: no address to send from or to receive on. From the
    /// tunnel, answered with ICMPv6 unreachable code 3.
    NotQualified,
    /// A tunnel packet that is not a valid IPv6 packet.
    InvalidIpv6,
    /// A tunnel packet to a multicast destination (Teredo has no multicast).
    Multicast,
    /// A tunnel packet whose source is not our Teredo address; answered with
    /// ICMPv6 unreachable code 1 (administratively prohibited), as Miredo.
    WrongSource,
    /// A Teredo destination embedding a non-global IPv4 (mapping or server):
    /// MUST be dropped silently (RFC 4380 §5.2.4).
    NonGlobalDestination,
    /// No peer entry could be made: the table is full of active trusted peers.
    PeerTableFull,
    /// The peer's queue (or the shared pool) had no room.
    QueueFull,
    /// The peer's bubble or echo budget is spent; answered with ICMPv6
    /// unreachable code 3.
    Unreachable,
    /// A queued packet dropped because its peer never answered (bubbles or
    /// echo test exhausted); answered with ICMPv6 unreachable code 3.
    GaveUp,
    /// A queued packet of a peer evicted from or expired out of the table;
    /// answered with ICMPv6 unreachable code 3.
    PeerRemoved,
    /// A datagram that is not a Teredo payload: not IPv6, optionally preceded
    /// by authentication and origin indication, with a consistent length
    /// (RFC 4380 §5.2.3, RFC 6081 §4).
    Malformed,
    /// An RFC 6081 trailer whose type says "drop the packet if unknown"
    /// (RFC 6081 §4.1).
    Trailer,
    /// A link-local source outside qualification: Miredo drops these to stop
    /// forged Router Advertisements and redirects reaching the host.
    LinkLocalSource,
    /// The IPv6 destination is not our Teredo address (RFC 4380 §5.2.3).
    WrongDestination,
    /// A Teredo source whose embedded mapping is not the UDP source, from
    /// no trusted entry: spoofed, or a peer behind a symmetric NAT.
    SpoofedTeredoSource,
    /// A packet from a native source through a relay not verified by an echo
    /// test (RFC 4380 §5.2.3 rule 6) that could not be held (no peer entry
    /// or test allowed, no room), or was held and its test failed, its peer
    /// went, or its time ran out. Never answered with an ICMPv6 error.
    Unverified,
    /// An Echo Reply to our identifier whose nonce does not verify
    /// (RFC 4380 §5.2.3 rule 2): no trust.
    BadEchoNonce,
    /// A held packet (RFC 4380 §5.2.3 rule 6) that came through a relay
    /// other than the one the echo test verified for its source.
    WrongRelay,
}

impl DataDrop {
    /// Every reason, in the order of the counters.
    pub const ALL: [DataDrop; 18] = [
        DataDrop::NotQualified,
        DataDrop::InvalidIpv6,
        DataDrop::Multicast,
        DataDrop::WrongSource,
        DataDrop::NonGlobalDestination,
        DataDrop::PeerTableFull,
        DataDrop::QueueFull,
        DataDrop::Unreachable,
        DataDrop::GaveUp,
        DataDrop::PeerRemoved,
        DataDrop::Malformed,
        DataDrop::Trailer,
        DataDrop::LinkLocalSource,
        DataDrop::WrongDestination,
        DataDrop::SpoofedTeredoSource,
        DataDrop::Unverified,
        DataDrop::BadEchoNonce,
        DataDrop::WrongRelay,
    ];

    /// A stable snake_case name, for logs and status output.
    pub fn name(self) -> &'static str {
        match self {
            DataDrop::NotQualified => "not_qualified",
            DataDrop::InvalidIpv6 => "invalid_ipv6",
            DataDrop::Multicast => "multicast",
            DataDrop::WrongSource => "wrong_source",
            DataDrop::NonGlobalDestination => "non_global_destination",
            DataDrop::PeerTableFull => "peer_table_full",
            DataDrop::QueueFull => "queue_full",
            DataDrop::Unreachable => "unreachable",
            DataDrop::GaveUp => "gave_up",
            DataDrop::PeerRemoved => "peer_removed",
            DataDrop::Malformed => "malformed",
            DataDrop::Trailer => "trailer",
            DataDrop::LinkLocalSource => "link_local_source",
            DataDrop::WrongDestination => "wrong_destination",
            DataDrop::SpoofedTeredoSource => "spoofed_teredo_source",
            DataDrop::Unverified => "unverified",
            DataDrop::BadEchoNonce => "bad_echo_nonce",
            DataDrop::WrongRelay => "wrong_relay",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// The qualification the peers belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Link {
    /// Our Teredo address.
    pub(super) address: TeredoAddr,
    /// Our server's primary address and port 3544: where echo tests go and
    /// whose origin-indicated bubbles we answer.
    pub(super) server: SocketAddrV4,
}

impl Link {
    pub(super) fn ours(&self) -> Ipv6Addr {
        self.address.to_ipv6()
    }

    /// `addr` as a Teredo address of our prefix, if it is one.
    pub(super) fn teredo(&self, addr: Ipv6Addr) -> Option<TeredoAddr> {
        TeredoAddr::from_ipv6(addr, self.address.prefix())
    }
}

/// The client's side of [`Peering`]: bubbles from our Teredo address,
/// direct and through the peer's server; echo tests through our server.
struct ClientRole<'a> {
    link: &'a Link,
    echo: &'a EchoNonce,
}

impl Role for ClientRole<'_> {
    fn procedure(&self, peer: &Peer) -> Procedure {
        if self.link.teredo(peer.addr()).is_some() {
            Procedure::Bubbles
        } else {
            Procedure::EchoTest
        }
    }

    /// RFC 4380 §5.2.4 case 5, sending the direct bubble whatever our NAT
    /// (allowed by the same section); never to a non-global IPv4.
    fn bubbles(&self, peer: &Peer) -> BubblePlan {
        BubblePlan {
            src: self.link.ours(),
            direct: Some(peer.mapping()).filter(|m| addr::is_global_unicast(*m.ip())),
            indirect: self
                .link
                .teredo(peer.addr())
                .map(|t| SocketAddrV4::new(t.server(), TEREDO_PORT))
                .filter(|s| addr::is_global_unicast(*s.ip())),
        }
    }

    fn emit_echo(
        &self,
        peer: &Peer,
        now: Instant,
        out: &mut [u8],
    ) -> Result<(SocketAddrV4, usize), Error> {
        let seq = u16::from(peer.echoes_sent());
        let len = self
            .echo
            .emit_request(self.link.ours(), peer.addr(), seq, now, out)?;
        Ok((self.link.server, len))
    }

    fn icmp_source(&self) -> Ipv6Addr {
        self.link.ours()
    }

    fn remove_after_give_up(&self) -> bool {
        false
    }
}

impl Counters for Stats {
    fn count(&mut self, what: Count) {
        // One counter per event, picked by a match that only computes an
        // address: a single increment serves every arm.
        let counter = match what {
            Count::Queued => &mut self.queued,
            Count::Flushed { .. } => &mut self.flushed,
            Count::BubbleSent => &mut self.bubbles_sent,
            Count::EchoSent => &mut self.echo_requests_sent,
            Count::PeerTrusted => &mut self.peers_trusted,
            Count::IcmpSent => &mut self.icmp_errors_sent,
            Count::IcmpLimited => &mut self.icmp_errors_limited,
            Count::BufferTooSmall => &mut self.transmit_buffer_too_small,
            Count::TableFull => return self.count_data_drop(DataDrop::PeerTableFull),
            Count::QueueFull => return self.count_data_drop(DataDrop::QueueFull),
            Count::Unreachable => return self.count_data_drop(DataDrop::Unreachable),
            Count::GaveUp => return self.count_data_drop(DataDrop::GaveUp),
            Count::PeerRemoved => return self.count_data_drop(DataDrop::PeerRemoved),
        };
        bump(counter);
    }
}

/// The data path state behind [`super::Client`].
pub(super) struct DataPath<
    const N: usize,
    const B: usize,
    const SLOTS: usize,
    const SLOT_SIZE: usize,
> {
    pub(super) peering: Peering<N, B, SLOTS, SLOT_SIZE>,
    pub(super) echo: EchoNonce,
    /// New entries for unverified inbound sources (see [`INBOUND_TEST_BURST`]).
    pub(super) test_limit: TokenBucket,
    /// Inbound packets waiting for their echo test (rule 6).
    pub(super) held: HeldPackets,
    pub(super) link: Option<Link>,
}

impl<const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>
    DataPath<N, B, SLOTS, SLOT_SIZE>
{
    /// An empty data path; `table_key` and `echo_key` must be random secrets.
    pub(super) fn new(table_key: [u8; 16], echo_key: [u8; 16], now: Instant) -> Self {
        DataPath {
            peering: Peering::new(table_key, now),
            echo: EchoNonce::new(echo_key),
            test_limit: TokenBucket::new(INBOUND_TEST_BURST, INBOUND_TEST_RATE, now),
            held: HeldPackets::new(),
            link: None,
        }
    }

    /// Follow the qualification: a new address (or none) voids every peer,
    /// whose mappings were learnt for the old one, and their queues, whose
    /// packets carry the old source address.
    pub(super) fn set_address(&mut self, address: Option<TeredoAddr>, stats: &mut Stats) {
        let link = address.map(|address| Link {
            address,
            server: SocketAddrV4::new(address.server(), TEREDO_PORT),
        });
        if link == self.link {
            return;
        }
        self.link = link;
        self.peering.clear();
        for _ in 0..self.held.clear() {
            stats.count_data_drop(DataDrop::Unverified);
        }
    }

    /// Earliest instant the data path wants [`super::Client::handle_timeout`]
    /// (or [`super::Client::poll_transmit`]) called.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let mut due = earliest(self.peering.poll_timeout(), self.held.poll_timeout());
        // A held packet's test fails 2 s after its last try: drop it then.
        // (A plain loop: an iterator's `min` is compiled with its first
        // step unrolled, twice the code for at most four packets.)
        for (src, _) in self.held.unready() {
            if let Some(p) = self.peering.peers.get(&src) {
                if p.echo_allowed_at().is_none() {
                    due = earliest(due, Some(p.last_echo() + ECHO_RETRY));
                }
            }
        }
        due
    }

    /// Periodic work: sweep idle peers out (their queued packets then get
    /// ICMPv6 errors from [`Self::poll_transmit`]) and drop held packets
    /// whose test is over.
    pub(super) fn handle_timeout(&mut self, now: Instant, stats: &mut Stats) {
        self.peering.handle_timeout(now);
        self.expire_held(now, stats);
    }

    /// Drop (silently, counted) the held packets whose echo test can no
    /// longer verify them: their peer entry is gone, every try went
    /// unanswered, or [`HOLD_LIFETIME`] passed (RFC 4380 §5.2.3 rule 6: no
    /// ICMPv6 error towards a source never verified).
    pub(super) fn expire_held(&mut self, now: Instant, stats: &mut Stats) {
        let peers = &self.peering.peers;
        let dropped = self.held.drop_unready(|src, since| {
            now >= since + HOLD_LIFETIME || peers.get(&src).is_none_or(|p| p.echo_test_failed(now))
        });
        for _ in 0..dropped {
            stats.count_data_drop(DataDrop::Unverified);
        }
    }

    /// The next datagram or tunnel packet the data path has due, written
    /// into `out`: `(Some(to), len)` for UDP, `(None, len)` for the tunnel.
    pub(super) fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
        stats: &mut Stats,
    ) -> Option<(Option<SocketAddrV4>, usize)> {
        let link = self.link?;
        // Held packets whose relay was verified: to the tunnel, in order.
        if let Some(len) = self.held.pop_ready_into(out) {
            bump(&mut stats.delivered);
            return Some((None, len));
        }
        let role = ClientRole {
            link: &link,
            echo: &self.echo,
        };
        self.peering.poll_transmit(now, &role, out, stats)
    }

    /// Queue `packet` for peer `id` (see [`Peering::queue`]).
    pub(super) fn queue<'a>(
        &mut self,
        now: Instant,
        link: &Link,
        id: PeerId,
        packet: &[u8],
        out: &'a mut [u8],
        stats: &mut Stats,
    ) -> Output<'a> {
        let role = ClientRole {
            link,
            echo: &self.echo,
        };
        self.peering.queue(now, &role, id, packet, out, stats)
    }
}
