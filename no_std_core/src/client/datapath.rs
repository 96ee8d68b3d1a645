//! The client's data path (RFC 4380 §5.2.3, §5.2.4, §5.2.6, §5.2.9, with
//! RFC 5991 §3.2): the peer table, and everything that is sent later than
//! the input that caused it — queued packets released to peers that became
//! trusted, bubbles and echo tests on their retry timers, ICMPv6 errors for
//! queued packets that will never go.
//!
//! Transmission lives in `send.rs`, reception in `receive.rs`; both only
//! change peer state and set [`DataPath::next_due`]. [`DataPath::poll_transmit`]
//! then finds the work: it scans the table only when something is due, so
//! the hot path (a packet to a trusted peer) costs no scan at all.
//!
//! # Choices
//!
//! - The cone bit of peers is ignored and every untrusted Teredo peer gets
//!   the bubble path: a direct bubble to the mapping its address embeds and
//!   an indirect bubble through its server (RFC 4380 §5.2.4 case 5; RFC 5991
//!   §3.2 says to skip case 4). One direct + indirect pair counts as one
//!   bubble for the §5.2.6 budget, as in Miredo.
//! - Local client discovery (RFC 4380 §5.2.8, reception rules 4 and 5) is
//!   not implemented.
//! - When the bubble or echo budget is spent, the peer's queued packets are
//!   answered with ICMPv6 Destination Unreachable code 3, and so are new
//!   packets for it until the budget allows a new round (bubbles: 300 s after
//!   the last one; echo tests: until the idle entry expires, 60 s after the
//!   last try).

use core::net::{Ipv6Addr, SocketAddrV4};

use smoltcp::wire::Icmpv6DstUnreachable;

use super::echo_test::EchoNonce;
use super::{bump, Stats};
use crate::addr::{self, TeredoAddr, TEREDO_PORT};
use crate::limits::TokenBucket;
use crate::peers::peer::{BUBBLE_SPACING, ECHO_RETRY, MAX_BUBBLES, MAX_ECHOES};
use crate::peers::{Peer, PeerId, PeerTable};
use crate::time::{Duration, Instant};
use crate::wire::{bubble, icmp_error};

/// Hop limit of our bubbles: 0, as Miredo sends them. A bubble is never
/// forwarded by an IPv6 router, only carried over UDP and consumed.
pub(super) const BUBBLE_HOP_LIMIT: u8 = 0;

/// How often idle peers are swept out of the table (the idle timeout itself
/// is the table's, 60 s by default).
pub const EXPIRY_SWEEP: Duration = Duration::from_secs(10);

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
    /// test (RFC 4380 §5.2.3 rule 6). It is dropped, not held; a test starts
    /// and later packets through that relay are accepted if it succeeds.
    Unverified,
    /// An Echo Reply to our identifier whose nonce does not verify
    /// (RFC 4380 §5.2.3 rule 2): no trust.
    BadEchoNonce,
}

impl DataDrop {
    /// Every reason, in the order of the counters.
    pub const ALL: [DataDrop; 17] = [
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

/// A bubble to send at the next [`DataPath::poll_transmit`]: the indirect
/// half of a pair, or the answer to an origin-indicated non-bubble.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingBubble {
    pub(super) to: SocketAddrV4,
    pub(super) src: Ipv6Addr,
    pub(super) dst: Ipv6Addr,
}

/// What a peer needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Trusted and valid with packets queued: release them, oldest first.
    Flush,
    /// Send a bubble pair (RFC 4380 §5.2.4 case 5, §5.2.6).
    Bubble,
    /// Send an echo request of the connectivity test (RFC 4380 §5.2.9).
    Echo,
    /// Budget spent without an answer: drop the queue with ICMPv6 errors.
    GiveUp,
}

/// When `peer` (a Teredo peer if `teredo`, with packets queued if `queued`)
/// needs what, if anything.
fn work_for(peer: &Peer, queued: bool, teredo: bool, now: Instant) -> Option<(Instant, Work)> {
    if peer.may_send_direct(now) {
        return queued.then_some((now, Work::Flush));
    }
    if teredo {
        // Bubbles only serve a queue (RFC 4380 §5.2.4 case 5).
        if !queued {
            return None;
        }
        if peer.bubbles_sent() >= MAX_BUBBLES && !peer.may_send_bubble(now) {
            return Some((peer.last_bubble() + BUBBLE_SPACING, Work::GiveUp));
        }
        return Some((peer.bubble_allowed_at(), Work::Bubble));
    }
    // A test runs for queued packets, or for an unverified inbound source
    // (rule 6) whose first try went out.
    let testing = queued || (1..MAX_ECHOES).contains(&peer.echoes_sent());
    if !testing {
        return None;
    }
    match peer.echo_allowed_at() {
        Some(at) => Some((at, Work::Echo)),
        None => queued.then_some((peer.last_echo() + ECHO_RETRY, Work::GiveUp)),
    }
}

/// The data path state behind [`super::Client`].
pub(super) struct DataPath<
    const N: usize,
    const B: usize,
    const SLOTS: usize,
    const SLOT_SIZE: usize,
> {
    pub(super) peers: PeerTable<N, B, SLOTS, SLOT_SIZE>,
    pub(super) echo: EchoNonce,
    /// ICMPv6 errors to the tunnel (RFC 4443 §2.4(f)).
    icmp_limit: TokenBucket,
    /// New entries for unverified inbound sources (see [`INBOUND_TEST_BURST`]).
    pub(super) test_limit: TokenBucket,
    pub(super) link: Option<Link>,
    /// Earliest instant some peer needs work; `None` when none does. May be
    /// early (a scan then finds nothing and recomputes it), never late.
    next_due: Option<Instant>,
    next_sweep: Instant,
    pub(super) pending: Option<PendingBubble>,
}

impl<const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>
    DataPath<N, B, SLOTS, SLOT_SIZE>
{
    /// An empty data path; `table_key` and `echo_key` must be random secrets.
    pub(super) fn new(table_key: [u8; 16], echo_key: [u8; 16], now: Instant) -> Self {
        DataPath {
            peers: PeerTable::new(table_key),
            echo: EchoNonce::new(echo_key),
            icmp_limit: TokenBucket::icmp_default(now),
            test_limit: TokenBucket::new(INBOUND_TEST_BURST, INBOUND_TEST_RATE, now),
            link: None,
            next_due: None,
            next_sweep: now + EXPIRY_SWEEP,
            pending: None,
        }
    }

    /// Follow the qualification: a new address (or none) voids every peer,
    /// whose mappings were learnt for the old one, and their queues, whose
    /// packets carry the old source address.
    pub(super) fn set_address(&mut self, address: Option<TeredoAddr>) {
        let link = address.map(|address| Link {
            address,
            server: SocketAddrV4::new(address.server(), TEREDO_PORT),
        });
        if link == self.link {
            return;
        }
        self.link = link;
        loop {
            let Some(id) = self.peers.iter().map(|(id, _)| id).next() else {
                break;
            };
            self.peers.remove_id(id);
        }
        self.peers.clear_dropped();
        self.pending = None;
        self.next_due = None;
    }

    /// Some peer may need work from `at` on.
    pub(super) fn wake(&mut self, at: Instant) {
        self.next_due = Some(self.next_due.map_or(at, |t| t.min(at)));
    }

    /// Earliest instant the data path wants [`super::Client::handle_timeout`]
    /// (or [`super::Client::poll_transmit`]) called.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let sweep = (!self.peers.is_empty()).then_some(self.next_sweep);
        match (self.next_due, sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Periodic work: sweep idle peers out (their queued packets then get
    /// ICMPv6 errors from [`Self::poll_transmit`]).
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_sweep {
            self.next_sweep = now + EXPIRY_SWEEP;
            self.peers.expire(now, N);
        }
    }

    /// Write an ICMPv6 Destination Unreachable from `src` about `offending`
    /// into `out`, if RFC 4443 §2.4(e) allows one and the rate limit has a
    /// token (RFC 4443 §2.4(f)).
    pub(super) fn icmp_error(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        reason: Icmpv6DstUnreachable,
        offending: &[u8],
        out: &mut [u8],
        stats: &mut Stats,
    ) -> Option<usize> {
        if !icmp_error::may_answer(offending) {
            return None;
        }
        if !self.icmp_limit.try_take(now) {
            bump(&mut stats.icmp_errors_limited);
            return None;
        }
        match icmp_error::emit_unreachable(src, reason, offending, out) {
            Ok(len) => {
                bump(&mut stats.icmp_errors_sent);
                Some(len)
            }
            Err(_) => {
                bump(&mut stats.transmit_buffer_too_small);
                None
            }
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
        if let Some(p) = self.pending.take() {
            match bubble::emit(p.src, p.dst, BUBBLE_HOP_LIMIT, out) {
                Ok(len) => {
                    bump(&mut stats.bubbles_sent);
                    return Some((Some(p.to), len));
                }
                Err(_) => bump(&mut stats.transmit_buffer_too_small),
            }
        }
        // Packets of evicted or expired peers: tell the host (the pool
        // reclaims them anyway if we cannot).
        while let Some(len) = self.peers.pop_dropped_into(out) {
            stats.count_data_drop(DataDrop::PeerRemoved);
            if let Some(len) = self.unreachable_in_place(now, &link, len, out, stats) {
                return Some((None, len));
            }
        }
        // Each pass either returns, or consumes one queued packet, or finds
        // nothing due; the bound only guards against a logic error.
        for _ in 0..SLOTS.saturating_add(N).saturating_add(1) {
            let (id, work) = self.next_work(now, &link)?;
            if let Some(sent) = self.do_work(now, &link, id, work, out, stats) {
                return Some(sent);
            }
        }
        None
    }

    /// The first peer with work due at `now`; recomputes `next_due` when
    /// there is none.
    fn next_work(&mut self, now: Instant, link: &Link) -> Option<(PeerId, Work)> {
        if self.next_due.is_none_or(|t| now < t) {
            return None;
        }
        let mut earliest: Option<Instant> = None;
        for (id, peer) in self.peers.iter() {
            let teredo = link.teredo(peer.addr()).is_some();
            if let Some((at, work)) = work_for(peer, self.peers.has_queued(id), teredo, now) {
                if at <= now {
                    return Some((id, work));
                }
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        self.next_due = earliest;
        None
    }

    /// Do `work` for peer `id`; `None` if nothing was written (the caller
    /// looks for more work).
    fn do_work(
        &mut self,
        now: Instant,
        link: &Link,
        id: PeerId,
        work: Work,
        out: &mut [u8],
        stats: &mut Stats,
    ) -> Option<(Option<SocketAddrV4>, usize)> {
        let peer = self.peers.peer(id)?.clone();
        match work {
            Work::Flush => {
                let Some(len) = self.peers.dequeue_into(id, out) else {
                    // Longer than `out`: the queue discarded it.
                    bump(&mut stats.transmit_buffer_too_small);
                    return None;
                };
                if let Some(p) = self.peers.peer_mut(id) {
                    p.record_tx(now);
                }
                bump(&mut stats.flushed);
                Some((Some(peer.mapping()), len))
            }
            Work::Bubble => {
                // Counted even if it cannot be written, so nothing spins.
                if let Some(p) = self.peers.peer_mut(id) {
                    p.record_bubble(now);
                }
                let len = self.emit_bubble(link, peer.addr(), out, stats)?;
                let indirect = link
                    .teredo(peer.addr())
                    .map(|t| SocketAddrV4::new(t.server(), TEREDO_PORT))
                    .filter(|s| addr::is_global_unicast(*s.ip()));
                let direct = Some(peer.mapping()).filter(|m| addr::is_global_unicast(*m.ip()));
                match (direct, indirect) {
                    (Some(direct), indirect) => {
                        self.pending = indirect.map(|to| PendingBubble {
                            to,
                            src: link.ours(),
                            dst: peer.addr(),
                        });
                        bump(&mut stats.bubbles_sent);
                        Some((Some(direct), len))
                    }
                    (None, Some(indirect)) => {
                        bump(&mut stats.bubbles_sent);
                        Some((Some(indirect), len))
                    }
                    (None, None) => None,
                }
            }
            Work::Echo => {
                let seq = u16::from(peer.echoes_sent());
                match self
                    .echo
                    .emit_request(link.ours(), peer.addr(), seq, now, out)
                {
                    Ok(len) => {
                        if let Some(p) = self.peers.peer_mut(id) {
                            p.record_echo(now);
                        }
                        bump(&mut stats.echo_requests_sent);
                        Some((Some(link.server), len))
                    }
                    Err(_) => {
                        bump(&mut stats.transmit_buffer_too_small);
                        // Count the try so a too-small buffer cannot spin.
                        if let Some(p) = self.peers.peer_mut(id) {
                            p.record_echo(now);
                        }
                        None
                    }
                }
            }
            Work::GiveUp => {
                let len = self.peers.dequeue_into(id, out)?;
                stats.count_data_drop(DataDrop::GaveUp);
                self.unreachable_in_place(now, link, len, out, stats)
                    .map(|len| (None, len))
            }
        }
    }

    /// Replace the IPv6 packet in `out[..len]` by the ICMPv6 Destination
    /// Unreachable (code 3, address unreachable) that answers it.
    fn unreachable_in_place(
        &mut self,
        now: Instant,
        link: &Link,
        len: usize,
        out: &mut [u8],
        stats: &mut Stats,
    ) -> Option<usize> {
        // The error quotes the packet, so it is built from a copy.
        let mut packet = [0u8; SLOT_SIZE];
        let offending = packet.get_mut(..len)?;
        offending.copy_from_slice(out.get(..len)?);
        let reason = Icmpv6DstUnreachable::AddrUnreachable;
        self.icmp_error(now, link.ours(), reason, offending, out, stats)
    }

    /// A bubble from our address to `dst` in `out`.
    pub(super) fn emit_bubble(
        &self,
        link: &Link,
        dst: Ipv6Addr,
        out: &mut [u8],
        stats: &mut Stats,
    ) -> Option<usize> {
        match bubble::emit(link.ours(), dst, BUBBLE_HOP_LIMIT, out) {
            Ok(len) => Some(len),
            Err(_) => {
                bump(&mut stats.transmit_buffer_too_small);
                None
            }
        }
    }
}
