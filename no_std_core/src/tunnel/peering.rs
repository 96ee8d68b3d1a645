//! [`Peering`]: the peer table and everything that is sent later than the
//! input that caused it — queued packets released to peers that became
//! trusted, bubbles (and the client's echo tests) on their retry timers,
//! ICMPv6 errors for queued packets that will never go (RFC 4380 §5.2.4,
//! §5.2.6, §5.4.1; RFC 4443 §2.4(f)).
//!
//! The roles' input handlers only change peer state and call
//! [`Peering::wake`]; [`Peering::poll_transmit`] then finds the work. It
//! scans the table only when something is due, so the hot path (a packet to
//! a trusted peer) costs no scan at all.
//!
//! # Choices shared by the client and the relay
//!
//! - The cone bit of peers is ignored (RFC 5991 §3.2): every untrusted
//!   Teredo peer gets the bubble path (RFC 4380 §5.2.4 case 5, §5.4.1
//!   case 3). One direct + indirect pair counts as one bubble for the
//!   §5.2.6 budget, as in Miredo.
//! - When the bubble or echo budget is spent, the peer's queued packets are
//!   answered with ICMPv6 Destination Unreachable code 3 (Miredo's answer).
//!   The client then keeps the entry, so new packets are refused at once
//!   until the budget allows a new round; the relay deletes it with its
//!   queue (RFC 4380 §5.4.1), see [`Role::remove_after_give_up`].

use core::net::{Ipv6Addr, SocketAddrV4};

use smoltcp::wire::Icmpv6DstUnreachable;

use super::Output;
use crate::limits::TokenBucket;
use crate::peers::peer::{BUBBLE_SPACING, ECHO_RETRY, MAX_BUBBLES, MAX_ECHOES};
use crate::peers::{InsertError, Peer, PeerId, PeerTable, Table};
use crate::time::{earliest, Duration, Instant};
use crate::wire::{bubble, icmp_error, Error};

/// Hop limit of our bubbles: 0, as Miredo sends them. A bubble is never
/// forwarded by an IPv6 router, only carried over UDP and consumed.
pub const BUBBLE_HOP_LIMIT: u8 = 0;

/// How often idle peers are swept out of the table (the idle timeout itself
/// is the table's, 60 s by default).
pub const EXPIRY_SWEEP: Duration = Duration::from_secs(10);

/// Something [`Peering`] did that the role counts in its own statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    /// A packet was queued for a peer being reached.
    Queued,
    /// A queued packet of `bytes` bytes was released to a trusted peer.
    Flushed { bytes: usize },
    /// A bubble was written (each half of a direct + indirect pair counts).
    BubbleSent,
    /// An echo request of a connectivity test was written.
    EchoSent,
    /// A peer became trusted at a new mapping.
    PeerTrusted,
    /// An ICMPv6 error was written.
    IcmpSent,
    /// An ICMPv6 error was suppressed by the rate limit.
    IcmpLimited,
    /// Something did not fit in the caller's `out` buffer.
    BufferTooSmall,
    /// Drop: no entry could be made, the table is full of active peers.
    TableFull,
    /// Drop: the peer's queue, or the shared pool, had no room.
    QueueFull,
    /// Drop: the peer's budget is spent; the packet is refused.
    Unreachable,
    /// Drop: a queued packet whose peer never answered.
    GaveUp,
    /// Drop: a queued packet of a peer evicted or expired from the table.
    PeerRemoved,
}

/// A role's statistics, as [`Peering`] updates them.
pub(crate) trait Counters {
    /// Count one `what`.
    fn count(&mut self, what: Count);
}

/// How an untrusted peer is being reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Procedure {
    /// Bubbles, direct and/or indirect (RFC 4380 §5.2.4 case 5, §5.4.1).
    Bubbles,
    /// The direct IPv6 connectivity test of a client towards a native host
    /// (RFC 4380 §5.2.4 case 2, §5.2.9).
    EchoTest,
}

/// Where one round of bubbles for a peer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BubblePlan {
    /// IPv6 source of the bubbles.
    pub(crate) src: Ipv6Addr,
    /// Direct bubble to the peer's mapping, if one is to be sent.
    pub(crate) direct: Option<SocketAddrV4>,
    /// Indirect bubble to the peer's server, port 3544, if one is to be sent.
    pub(crate) indirect: Option<SocketAddrV4>,
}

/// What differs between the client and the relay when reaching a peer.
pub(crate) trait Role {
    /// How `peer`, untrusted or no longer valid, is reached.
    fn procedure(&self, peer: &Peer) -> Procedure;
    /// Where `peer`'s bubbles go and where they come from. Only global
    /// unicast IPv4 destinations may be named (RFC 4380 §5.2.4, §5.4.1).
    fn bubbles(&self, peer: &Peer) -> BubblePlan;
    /// Writes the next echo request of `peer`'s connectivity test into `out`
    /// and says where it goes. Only called for [`Procedure::EchoTest`] peers,
    /// so a role that never names that procedure keeps this default.
    fn emit_echo(
        &self,
        _peer: &Peer,
        _now: Instant,
        _out: &mut [u8],
    ) -> Result<(SocketAddrV4, usize), Error> {
        Err(Error::Unrecognized)
    }
    /// Source address of the ICMPv6 errors written to the tunnel.
    fn icmp_source(&self) -> Ipv6Addr;
    /// Whether a peer that never answered is deleted once its queue is
    /// drained (the relay, RFC 4380 §5.4.1) or kept so that new packets are
    /// refused until the budget allows a new round (the client).
    fn remove_after_give_up(&self) -> bool;
}

/// A bubble to send at the next [`Peering::poll_transmit`]: the indirect
/// half of a pair, or the client's answer to an origin-indicated packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingBubble {
    pub(crate) to: SocketAddrV4,
    pub(crate) src: Ipv6Addr,
    pub(crate) dst: Ipv6Addr,
}

/// What a peer needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Trusted and valid with packets queued: release them, oldest first.
    Flush,
    /// Send a bubble round (RFC 4380 §5.2.4 case 5, §5.2.6, §5.4.1).
    Bubble,
    /// Send an echo request of the connectivity test (RFC 4380 §5.2.9).
    Echo,
    /// Budget spent without an answer: drop the queue with ICMPv6 errors.
    GiveUp,
}

/// When `peer` (with packets queued if `queued`) needs what, if anything.
fn work_for(
    peer: &Peer,
    queued: bool,
    procedure: Procedure,
    now: Instant,
) -> Option<(Instant, Work)> {
    if peer.may_send_direct(now) {
        return queued.then_some((now, Work::Flush));
    }
    if procedure == Procedure::Bubbles {
        // Bubbles only serve a queue (RFC 4380 §5.2.4 case 5, §5.4.1).
        if !queued {
            return None;
        }
        if peer.bubbles_sent() >= MAX_BUBBLES && !peer.may_send_bubble(now) {
            return Some((peer.last_bubble() + BUBBLE_SPACING, Work::GiveUp));
        }
        return Some((peer.bubble_allowed_at(), Work::Bubble));
    }
    // A test runs for queued packets, or for an unverified inbound source
    // (RFC 4380 §5.2.3 rule 6) whose first try went out.
    let testing = queued || (1..MAX_ECHOES).contains(&peer.echoes_sent());
    if !testing {
        return None;
    }
    match peer.echo_allowed_at() {
        Some(at) => Some((at, Work::Echo)),
        None => queued.then_some((peer.last_echo() + ECHO_RETRY, Work::GiveUp)),
    }
}

/// The peer table with its queues, timers and ICMPv6 error limiter.
///
/// A thin shell: each operation hands the table with its capacities erased
/// ([`Table`]) and the rest of the state to [`Reach`], where the logic is
/// written once for the client's and the relay's table sizes (the role and
/// its counters come in as trait objects for the same reason).
pub(crate) struct Peering<
    const N: usize,
    const B: usize,
    const SLOTS: usize,
    const SLOT_SIZE: usize,
> {
    pub(crate) peers: PeerTable<N, B, SLOTS, SLOT_SIZE>,
    pub(crate) sched: Schedule,
}

/// Everything [`Peering`] keeps besides the table.
pub(crate) struct Schedule {
    /// ICMPv6 errors to the tunnel (RFC 4443 §2.4(f)).
    icmp_limit: TokenBucket,
    /// Earliest instant some peer needs work; `None` when none does. May be
    /// early (a scan then finds nothing and recomputes it), never late.
    next_due: Option<Instant>,
    next_sweep: Instant,
    pub(crate) pending: Option<PendingBubble>,
}

impl Schedule {
    /// Some peer may need work from `at` on.
    pub(crate) fn wake(&mut self, at: Instant) {
        self.next_due = earliest(self.next_due, Some(at));
    }
}

impl<const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>
    Peering<N, B, SLOTS, SLOT_SIZE>
{
    /// An empty table hashing under `table_key` (random and secret).
    pub(crate) fn new(table_key: [u8; 16], now: Instant) -> Self {
        Peering {
            peers: PeerTable::new(table_key),
            sched: Schedule {
                icmp_limit: TokenBucket::icmp_default(now),
                next_due: None,
                next_sweep: now + EXPIRY_SWEEP,
                pending: None,
            },
        }
    }

    /// The table with its capacities erased, and the schedule. Out of line:
    /// building the view takes a dozen instructions, and every operation of
    /// the shell starts with it.
    #[inline(never)]
    fn reach(&mut self) -> Reach<'_, SLOT_SIZE> {
        Reach {
            peers: self.peers.table(),
            sched: &mut self.sched,
        }
    }

    /// Forget every peer and every queued packet.
    pub(crate) fn clear(&mut self) {
        self.reach().clear();
    }

    /// Some peer may need work from `at` on.
    pub(crate) fn wake(&mut self, at: Instant) {
        self.sched.wake(at);
    }

    /// Wake at `now` if peer `id` has packets queued (it may have become
    /// trusted: flush them).
    pub(crate) fn wake_if_queued(&mut self, now: Instant, id: PeerId) {
        self.reach().wake_if_queued(now, id);
    }

    /// Earliest instant the owner wants `handle_timeout` (or
    /// `poll_transmit`) called.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let sweep = (!self.peers.is_empty()).then_some(self.sched.next_sweep);
        earliest(self.sched.next_due, sweep)
    }

    /// Periodic work: sweep idle peers out (their queued packets then get
    /// ICMPv6 errors from [`Self::poll_transmit`]).
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.reach().handle_timeout(now);
    }

    /// Add `peer`; `None` (counted) if the table is full of active trusted
    /// peers. An existing entry for the address is returned unchanged.
    pub(crate) fn insert(
        &mut self,
        peer: Peer,
        now: Instant,
        stats: &mut dyn Counters,
    ) -> Option<PeerId> {
        self.reach().insert(peer, now, stats)
    }

    /// The peer proved `mapping` (RFC 4380 §5.2.3 rules 2 and 3, §5.4.2):
    /// mark `id` (or `new`, if there is no entry) trusted there; its queue
    /// will be flushed. `None` if there was no entry and no room for one.
    pub(crate) fn trust(
        &mut self,
        now: Instant,
        id: Option<PeerId>,
        new: Peer,
        mapping: SocketAddrV4,
        stats: &mut dyn Counters,
    ) -> Option<PeerId> {
        self.reach().trust(now, id, new, mapping, stats)
    }

    /// Queue `packet` for peer `id` while it is being reached, or refuse it
    /// (ICMPv6 code 3 in `out`) if its budget is spent.
    pub(crate) fn queue<'a>(
        &mut self,
        now: Instant,
        role: &dyn Role,
        id: PeerId,
        packet: &[u8],
        out: &'a mut [u8],
        stats: &mut dyn Counters,
    ) -> Output<'a> {
        self.reach().queue(now, role, id, packet, out, stats)
    }

    /// Answer `packet` with an ICMPv6 Destination Unreachable from `src` to
    /// the tunnel (rate-limited; nothing if that is not allowed).
    pub(crate) fn refuse<'a>(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        reason: Icmpv6DstUnreachable,
        packet: &[u8],
        out: &'a mut [u8],
        stats: &mut dyn Counters,
    ) -> Output<'a> {
        self.sched.refuse(now, src, reason, packet, out, stats)
    }

    /// The next datagram or tunnel packet due, written into `out`:
    /// `(Some(to), len)` for UDP, `(None, len)` for the tunnel.
    pub(crate) fn poll_transmit(
        &mut self,
        now: Instant,
        role: &dyn Role,
        out: &mut [u8],
        stats: &mut dyn Counters,
    ) -> Option<(Option<SocketAddrV4>, usize)> {
        self.reach().poll_transmit(now, role, out, stats)
    }
}

impl Schedule {
    /// Write an ICMPv6 Destination Unreachable from `src` about `offending`
    /// into `out`, if RFC 4443 §2.4(e) allows one and the rate limit has a
    /// token (RFC 4443 §2.4(f)).
    fn icmp_error(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        reason: Icmpv6DstUnreachable,
        offending: &[u8],
        out: &mut [u8],
        stats: &mut dyn Counters,
    ) -> Option<usize> {
        if !icmp_error::may_answer(offending) {
            return None;
        }
        if !self.icmp_limit.try_take(now) {
            stats.count(Count::IcmpLimited);
            return None;
        }
        match icmp_error::emit_unreachable(src, reason, offending, out) {
            Ok(len) => {
                stats.count(Count::IcmpSent);
                Some(len)
            }
            Err(_) => {
                stats.count(Count::BufferTooSmall);
                None
            }
        }
    }

    /// See [`Peering::refuse`].
    fn refuse<'a>(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        reason: Icmpv6DstUnreachable,
        packet: &[u8],
        out: &'a mut [u8],
        stats: &mut dyn Counters,
    ) -> Output<'a> {
        match self.icmp_error(now, src, reason, packet, out, stats) {
            Some(len) => Output::Tunnel(out.get(..len).unwrap_or(&[])),
            None => Output::None,
        }
    }
}

/// [`Peering`] with its table's capacities erased: the body of each of its
/// operations (documented on the shell).
struct Reach<'a, const SLOT_SIZE: usize> {
    peers: Table<'a, SLOT_SIZE>,
    sched: &'a mut Schedule,
}

impl<const SLOT_SIZE: usize> Reach<'_, SLOT_SIZE> {
    fn clear(&mut self) {
        self.peers.clear_all();
        self.sched.pending = None;
        self.sched.next_due = None;
    }

    fn wake_if_queued(&mut self, now: Instant, id: PeerId) {
        if self.peers.has_queued(id) {
            self.sched.wake(now);
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.sched.next_sweep {
            self.sched.next_sweep = now + EXPIRY_SWEEP;
            let whole_table = self.peers.capacity();
            self.peers.expire(now, whole_table);
        }
    }

    fn insert(&mut self, peer: Peer, now: Instant, stats: &mut dyn Counters) -> Option<PeerId> {
        match self.peers.insert(peer, now) {
            Ok(inserted) => {
                if inserted.evicted.is_some() {
                    // Its queued packets wait for ICMPv6 errors.
                    self.sched.wake(now);
                }
                Some(inserted.id)
            }
            Err(InsertError::Exists(id)) => Some(id),
            Err(InsertError::Full) => {
                stats.count(Count::TableFull);
                None
            }
        }
    }

    fn trust(
        &mut self,
        now: Instant,
        id: Option<PeerId>,
        new: Peer,
        mapping: SocketAddrV4,
        stats: &mut dyn Counters,
    ) -> Option<PeerId> {
        let (id, known) = match id {
            Some(id) => (id, true),
            None => (self.insert(new, now, stats)?, false),
        };
        if let Some(peer) = self.peers.peer_mut(id) {
            if !(known && peer.is_trusted() && peer.mapping() == mapping) {
                stats.count(Count::PeerTrusted);
            }
            peer.mark_trusted(mapping, now);
        }
        self.wake_if_queued(now, id);
        Some(id)
    }

    fn queue<'a>(
        &mut self,
        now: Instant,
        role: &dyn Role,
        id: PeerId,
        packet: &[u8],
        out: &'a mut [u8],
        stats: &mut dyn Counters,
    ) -> Output<'a> {
        let Some(peer) = self.peers.peer(id) else {
            return Output::None;
        };
        let exhausted = match role.procedure(peer) {
            Procedure::Bubbles => !peer.may_send_bubble(now) && peer.bubbles_exhausted(now),
            Procedure::EchoTest => peer.echo_test_failed(now),
        };
        if exhausted {
            stats.count(Count::Unreachable);
            let reason = Icmpv6DstUnreachable::AddrUnreachable;
            let src = role.icmp_source();
            return self.sched.refuse(now, src, reason, packet, out, stats);
        }
        if self.peers.enqueue(id, packet).is_err() {
            stats.count(Count::QueueFull);
            return Output::None;
        }
        stats.count(Count::Queued);
        self.sched.wake(now);
        Output::None
    }

    fn poll_transmit(
        &mut self,
        now: Instant,
        role: &dyn Role,
        out: &mut [u8],
        stats: &mut dyn Counters,
    ) -> Option<(Option<SocketAddrV4>, usize)> {
        if let Some(p) = self.sched.pending.take() {
            if let Some(len) = emit_bubble(p.src, p.dst, out, stats) {
                stats.count(Count::BubbleSent);
                return Some((Some(p.to), len));
            }
        }
        // Packets of evicted or expired peers: tell the host (the pool
        // reclaims them anyway if we cannot).
        while let Some(len) = self.peers.pop_dropped_into(out) {
            stats.count(Count::PeerRemoved);
            if let Some(len) = self.unreachable_in_place(now, role, len, out, stats) {
                return Some((None, len));
            }
        }
        // Each pass either returns, or consumes one queued packet or peer,
        // or finds nothing due; the bound only guards against a logic error.
        let bound = self.peers.slots().saturating_add(self.peers.capacity());
        for _ in 0..=bound {
            let (id, work) = self.next_work(now, role)?;
            if let Some(sent) = self.do_work(now, role, id, work, out, stats) {
                return Some(sent);
            }
        }
        None
    }

    /// The first peer with work due at `now`; recomputes `next_due` when
    /// there is none.
    fn next_work(&mut self, now: Instant, role: &dyn Role) -> Option<(PeerId, Work)> {
        if self.sched.next_due.is_none_or(|t| now < t) {
            return None;
        }
        let mut due: Option<Instant> = None;
        for (id, peer) in self.peers.iter() {
            let queued = self.peers.has_queued(id);
            if let Some((at, work)) = work_for(peer, queued, role.procedure(peer), now) {
                if at <= now {
                    return Some((id, work));
                }
                due = earliest(due, Some(at));
            }
        }
        self.sched.next_due = due;
        None
    }

    /// Do `work` for peer `id`; `None` if nothing was written (the caller
    /// looks for more work).
    fn do_work(
        &mut self,
        now: Instant,
        role: &dyn Role,
        id: PeerId,
        work: Work,
        out: &mut [u8],
        stats: &mut dyn Counters,
    ) -> Option<(Option<SocketAddrV4>, usize)> {
        let peer = self.peers.peer(id)?.clone();
        match work {
            Work::Flush => {
                let Some(len) = self.peers.dequeue_into(id, out) else {
                    // Longer than `out`: the queue discarded it.
                    stats.count(Count::BufferTooSmall);
                    return None;
                };
                if let Some(p) = self.peers.peer_mut(id) {
                    p.record_tx(now);
                }
                stats.count(Count::Flushed { bytes: len });
                Some((Some(peer.mapping()), len))
            }
            Work::Bubble => {
                // Counted even if it cannot be written, so nothing spins.
                if let Some(p) = self.peers.peer_mut(id) {
                    p.record_bubble(now);
                }
                let plan = role.bubbles(&peer);
                let len = emit_bubble(plan.src, peer.addr(), out, stats)?;
                let (first, second) = match (plan.direct, plan.indirect) {
                    (Some(direct), indirect) => (direct, indirect),
                    (None, Some(indirect)) => (indirect, None),
                    (None, None) => return None,
                };
                self.sched.pending = second.map(|to| PendingBubble {
                    to,
                    src: plan.src,
                    dst: peer.addr(),
                });
                stats.count(Count::BubbleSent);
                Some((Some(first), len))
            }
            Work::Echo => {
                // Counted even if it cannot be written, so nothing spins.
                let sent = role.emit_echo(&peer, now, out);
                if let Some(p) = self.peers.peer_mut(id) {
                    p.record_echo(now);
                }
                match sent {
                    Ok((to, len)) => {
                        stats.count(Count::EchoSent);
                        Some((Some(to), len))
                    }
                    Err(_) => {
                        stats.count(Count::BufferTooSmall);
                        None
                    }
                }
            }
            Work::GiveUp => {
                let len = self.peers.dequeue_into(id, out);
                if role.remove_after_give_up() && !self.peers.has_queued(id) {
                    self.peers.remove_id(id);
                }
                let len = len?;
                stats.count(Count::GaveUp);
                self.unreachable_in_place(now, role, len, out, stats)
                    .map(|len| (None, len))
            }
        }
    }

    /// Replace the IPv6 packet in `out[..len]` by the ICMPv6 Destination
    /// Unreachable (code 3, address unreachable) that answers it.
    fn unreachable_in_place(
        &mut self,
        now: Instant,
        role: &dyn Role,
        len: usize,
        out: &mut [u8],
        stats: &mut dyn Counters,
    ) -> Option<usize> {
        // The error quotes the packet, so it is built from a copy.
        let mut packet = [0u8; SLOT_SIZE];
        let offending = packet.get_mut(..len)?;
        offending.copy_from_slice(out.get(..len)?);
        let reason = Icmpv6DstUnreachable::AddrUnreachable;
        self.sched
            .icmp_error(now, role.icmp_source(), reason, offending, out, stats)
    }
}

/// A bubble from `src` to `dst` in `out`; `None` (counted) if it does not fit.
pub(crate) fn emit_bubble(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    out: &mut [u8],
    stats: &mut dyn Counters,
) -> Option<usize> {
    match bubble::emit(src, dst, BUBBLE_HOP_LIMIT, out) {
        Ok(len) => Some(len),
        Err(_) => {
            stats.count(Count::BufferTooSmall);
            None
        }
    }
}
