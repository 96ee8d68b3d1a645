//! One peer entry and the RFC 4380 timing rules that apply to it.
//!
//! Every rule the client and the relay apply per peer (validity, bubble
//! spacing and budget, echo-test retries, back-dating of new entries) is one
//! method here, so the two role state machines cannot disagree about them.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

use super::queue::QueueHead;
use crate::time::{Duration, Instant};

/// A peer entry stays usable for sending while its last reception is younger
/// than this (RFC 4380 §5.2.4, same value for local and non-local peers).
pub const VALIDITY: Duration = Duration::from_secs(30);

/// How far back new entries date the times they have not seen yet, so the
/// first bubble may go at once and the entry is not yet valid
/// (RFC 4380 §5.2.3 rule 3, §5.2.6: "now − 30 seconds").
pub const BACKDATE: Duration = Duration::from_secs(30);

/// Smallest gap between the last transmission to a peer and a bubble
/// (RFC 4380 §5.2.6 MUST NOT send sooner); also the bubble retry delay of
/// §5.2.4 case 5 and §5.4.1.
pub const BUBBLE_SPACING: Duration = Duration::from_secs(2);

/// Bubbles allowed per peer without a direct response, within
/// [`BUBBLE_WINDOW`] (RFC 4380 §5.2.6). Equals the first bubble plus the three
/// retries of §5.2.4 case 5 and §5.4.1.
pub const MAX_BUBBLES: u8 = 4;

/// The window of the bubble budget (RFC 4380 §5.2.6: 300 seconds).
pub const BUBBLE_WINDOW: Duration = Duration::from_secs(300);

/// Delay before an unanswered direct IPv6 connectivity test (echo) is retried
/// (RFC 4380 §5.2.4 case 2).
pub const ECHO_RETRY: Duration = Duration::from_secs(2);

/// Echo requests per test: the first one plus three retries
/// (RFC 4380 §5.2.4 case 2: "up to 3 times").
pub const MAX_ECHOES: u8 = 4;

/// The state kept for one peer (RFC 4380 §5.2 "list of recent peers").
///
/// Fields are private so that every change goes through a method that
/// implements one RFC rule, and so the address, which the table indexes by,
/// cannot change under it. Times are the caller's [`Instant`]s; they should
/// come from a clock whose epoch is at least [`BACKDATE`] in the past, since
/// back-dating saturates at the epoch.
///
/// Equality compares the protocol state only, not where the entry's queue
/// sits in the table's pool.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The peer's IPv6 address: the table key.
    addr: Ipv6Addr,
    /// Where to send UDP for this peer: its mapped IPv4 address and port
    /// (from its Teredo address, or learnt from a reply), or the relay found
    /// by the echo test for a native peer. `0.0.0.0:0` when not known yet.
    mapping: SocketAddrV4,
    /// Trusted = the mapping has been confirmed by a packet from it
    /// (RFC 4380 §5.2.3 rules 1–3, 5).
    trusted: bool,
    /// Bubbles sent since the last direct response (RFC 4380 §5.2.6).
    bubbles: u8,
    /// Echo requests sent in the current connectivity test (RFC 4380 §5.2.4).
    echoes: u8,
    /// Last packet received directly from the peer.
    last_rx: Instant,
    /// Last packet (data or bubble) sent to the peer's mapping.
    last_tx: Instant,
    /// Last bubble sent: the 300 s budget window is anchored here.
    last_bubble: Instant,
    /// Last echo request sent for this peer (via our server).
    last_echo: Instant,
    /// The peer's packet queue in the table's shared pool.
    pub(super) queue: QueueHead,
}

impl PartialEq for Peer {
    fn eq(&self, other: &Peer) -> bool {
        let Peer {
            addr,
            mapping,
            trusted,
            bubbles,
            echoes,
            last_rx,
            last_tx,
            last_bubble,
            last_echo,
            queue: _,
        } = self;
        (addr, mapping, trusted, bubbles, echoes)
            == (
                &other.addr,
                &other.mapping,
                &other.trusted,
                &other.bubbles,
                &other.echoes,
            )
            && (last_rx, last_tx, last_bubble, last_echo)
                == (
                    &other.last_rx,
                    &other.last_tx,
                    &other.last_bubble,
                    &other.last_echo,
                )
    }
}

impl Eq for Peer {}

/// The "not known yet" mapping of a native peer before its echo test.
const NO_MAPPING: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);

impl Peer {
    /// A back-dated untrusted entry: last reception = last transmission =
    /// `now − 30 s`, no bubble and no echo sent.
    fn backdated(addr: Ipv6Addr, mapping: SocketAddrV4, now: Instant) -> Peer {
        let then = now.saturating_sub(BACKDATE);
        Peer {
            addr,
            mapping,
            trusted: false,
            bubbles: 0,
            echoes: 0,
            last_rx: then,
            last_tx: then,
            last_bubble: then,
            last_echo: then,
            queue: QueueHead::EMPTY,
        }
    }

    /// An untrusted entry for a Teredo peer about to be sent a bubble, with
    /// `mapping` taken from its address: last reception = last transmission =
    /// `now − 30 s`, bubble count 0 (RFC 4380 §5.2.6 MUST). The back-dating
    /// lets the first bubble go at once and keeps the entry invalid until the
    /// peer answers. The relay uses it for unknown non-cone peers too
    /// (RFC 4380 §5.4.1).
    pub fn new_for_direct_bubble(addr: Ipv6Addr, mapping: SocketAddrV4, now: Instant) -> Peer {
        Peer::backdated(addr, mapping, now)
    }

    /// A trusted entry for a peer whose packet arrived from the mapping its
    /// Teredo address embeds: last reception = `now`, last transmission =
    /// `now − 30 s`, bubble count 0 (RFC 4380 §5.2.3 rule 3).
    pub fn new_from_teredo_source(addr: Ipv6Addr, mapping: SocketAddrV4, now: Instant) -> Peer {
        let mut peer = Peer::backdated(addr, mapping, now);
        peer.trusted = true;
        peer.last_rx = now;
        peer
    }

    /// A provisional, untrusted entry for a native (non-Teredo) peer whose
    /// relay is still unknown, about to get a direct IPv6 connectivity test
    /// (RFC 4380 §5.2.4 case 2, §5.2.9). The mapping is `0.0.0.0:0` until
    /// [`Peer::mark_trusted`] stores the relay that answered.
    pub fn new_for_echo_test(addr: Ipv6Addr, now: Instant) -> Peer {
        Peer::backdated(addr, NO_MAPPING, now)
    }

    /// The peer's IPv6 address.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// Where UDP for this peer goes (`0.0.0.0:0` if not known yet).
    pub fn mapping(&self) -> SocketAddrV4 {
        self.mapping
    }

    /// Whether the mapping has been confirmed by the peer (RFC 4380 §5.2).
    pub fn is_trusted(&self) -> bool {
        self.trusted
    }

    /// Time of the last packet received directly from the peer.
    pub fn last_rx(&self) -> Instant {
        self.last_rx
    }

    /// Time of the last packet sent to the peer's mapping.
    pub fn last_tx(&self) -> Instant {
        self.last_tx
    }

    /// Time of the last bubble sent (back-dated on a new entry): the client
    /// gives up on the peer 2 s after the last allowed one.
    pub fn last_bubble(&self) -> Instant {
        self.last_bubble
    }

    /// Time of the last echo request sent for the peer (back-dated on a new
    /// entry): the connectivity test fails 2 s after the last allowed one.
    pub fn last_echo(&self) -> Instant {
        self.last_echo
    }

    /// Bubbles sent since the last direct response, within the current
    /// 300 s window (RFC 4380 §5.2.6).
    pub fn bubbles_sent(&self) -> u8 {
        self.bubbles
    }

    /// Echo requests sent in the current connectivity test.
    pub fn echoes_sent(&self) -> u8 {
        self.echoes
    }

    /// The latest of the last reception, transmission, bubble and echo: what
    /// the table's eviction and expiry call "in use".
    pub fn last_activity(&self) -> Instant {
        self.last_rx
            .max(self.last_tx)
            .max(self.last_bubble)
            .max(self.last_echo)
    }

    /// The entry is valid: something was received from the peer less than
    /// 30 s ago (RFC 4380 §5.2.4).
    pub fn is_valid(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_rx) < VALIDITY
    }

    /// Packets may go straight to the stored mapping: the entry is trusted
    /// and valid (RFC 4380 §5.2.4 case 1, §5.4.1). Otherwise the caller
    /// queues and bubbles (or echo-tests) again.
    pub fn may_send_direct(&self, now: Instant) -> bool {
        self.trusted && self.is_valid(now)
    }

    /// Note a packet sent to the peer's mapping (RFC 4380 §5.2.4 case 1:
    /// "update the last transmission time").
    pub fn record_tx(&mut self, now: Instant) {
        self.last_tx = now;
    }

    /// Note a packet received directly from the peer (from its trusted
    /// mapping, or any packet the caller accepted as coming from it): last
    /// reception := `now` (RFC 4380 §5.2.3 rule 1), and the bubble budget is
    /// reset, since the 4-per-300 s limit of §5.2.6 only counts bubbles
    /// "without a direct response".
    pub fn record_direct_response(&mut self, now: Instant) {
        self.last_rx = now;
        self.bubbles = 0;
    }

    /// The peer proved its mapping (matching Teredo source, RFC 4380 §5.2.3
    /// rule 3; echo reply with our nonce, rule 2; local peer, rule 5): store
    /// `mapping`, mark the entry trusted, record a direct response and end any
    /// echo test. The caller then flushes the queue towards `mapping`.
    pub fn mark_trusted(&mut self, mapping: SocketAddrV4, now: Instant) {
        self.mapping = mapping;
        self.trusted = true;
        self.echoes = 0;
        self.record_direct_response(now);
    }

    /// Earliest time the next bubble may be sent (RFC 4380 §5.2.6): at least
    /// 2 s after the last transmission to the peer and, once
    /// [`MAX_BUBBLES`] went unanswered, 300 s after the last of them.
    ///
    /// The window is anchored at the *last* bubble, not the first: a burst of
    /// four late in one window followed by four early in the next would put
    /// up to eight bubbles in one 300 s span, which the MUST NOT of §5.2.6
    /// forbids. Anchored at the last one, two bursts are always 300 s apart.
    pub fn bubble_allowed_at(&self) -> Instant {
        let spaced = self.last_tx + BUBBLE_SPACING;
        if self.bubbles >= MAX_BUBBLES {
            spaced.max(self.last_bubble + BUBBLE_WINDOW)
        } else {
            spaced
        }
    }

    /// A bubble may be sent now (see [`Peer::bubble_allowed_at`]).
    pub fn may_send_bubble(&self, now: Instant) -> bool {
        now >= self.bubble_allowed_at()
    }

    /// Note a bubble sent (RFC 4380 §5.2.6 MUST: update the last transmission
    /// time and increment the bubble count). A count older than the 300 s
    /// window restarts at zero first.
    pub fn record_bubble(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_bubble) >= BUBBLE_WINDOW {
            self.bubbles = 0;
        }
        self.bubbles = self.bubbles.saturating_add(1);
        self.last_bubble = now;
        self.last_tx = now;
    }

    /// The peer did not answer the first bubble and its three retries, the
    /// last one 2 s ago: the relay deletes the entry with its queue
    /// (RFC 4380 §5.4.1), the client gives up and drops the queued packets
    /// (§5.2.4 case 5).
    pub fn bubbles_exhausted(&self, now: Instant) -> bool {
        self.bubbles >= MAX_BUBBLES && now >= self.last_bubble + BUBBLE_SPACING
    }

    /// Earliest time the next echo request of the connectivity test may be
    /// sent, or `None` once the first try and its three retries are spent
    /// (RFC 4380 §5.2.4 case 2: retry after 2 s, up to 3 times).
    pub fn echo_allowed_at(&self) -> Option<Instant> {
        match self.echoes {
            0 => Some(Instant::ZERO),
            n if n < MAX_ECHOES => Some(self.last_echo + ECHO_RETRY),
            _ => None,
        }
    }

    /// An echo request may be sent now (see [`Peer::echo_allowed_at`]).
    pub fn may_send_echo(&self, now: Instant) -> bool {
        self.echo_allowed_at().is_some_and(|at| now >= at)
    }

    /// Note an echo request sent for this peer.
    pub fn record_echo(&mut self, now: Instant) {
        self.echoes = self.echoes.saturating_add(1);
        self.last_echo = now;
    }

    /// The connectivity test failed: every try went out and the last one has
    /// had its 2 s without a reply (RFC 4380 §5.2.4 case 2). The caller drops
    /// the queued packets (Miredo answers them with ICMPv6 unreachable).
    pub fn echo_test_failed(&self, now: Instant) -> bool {
        self.echoes >= MAX_ECHOES && now >= self.last_echo + ECHO_RETRY
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0, 0x4136, 0xe378, 0x8000, 0x63bf, 0x3fff, 0xfdd2);
    const MAP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 45), 40000);
    const RELAY: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 3544);

    fn t(secs: u64) -> Instant {
        Instant::from_secs(1000 + secs)
    }

    #[test]
    fn direct_bubble_entry_is_backdated() {
        let p = Peer::new_for_direct_bubble(ADDR, MAP, t(0));
        assert_eq!(p.addr(), ADDR);
        assert_eq!(p.mapping(), MAP);
        assert!(!p.is_trusted());
        assert_eq!(p.last_rx(), t(0).saturating_sub(Duration::from_secs(30)));
        assert_eq!(p.last_tx(), p.last_rx());
        assert_eq!(p.bubbles_sent(), 0);
        assert!(!p.is_valid(t(0)));
        assert!(p.may_send_bubble(t(0)), "first bubble goes at once");
        assert!(!p.may_send_direct(t(0)));
    }

    #[test]
    fn teredo_source_entry_is_trusted_and_valid() {
        let p = Peer::new_from_teredo_source(ADDR, MAP, t(0));
        assert!(p.is_trusted());
        assert_eq!(p.last_rx(), t(0));
        assert_eq!(p.last_tx(), t(0).saturating_sub(Duration::from_secs(30)));
        assert!(p.may_send_direct(t(0)));
        assert!(p.may_send_direct(Instant::from_millis(t(30).total_millis() - 1)));
        assert!(!p.may_send_direct(t(30)), "valid means < 30 s");
    }

    #[test]
    fn validity_follows_last_reception() {
        let mut p = Peer::new_for_direct_bubble(ADDR, MAP, t(0));
        p.record_direct_response(t(10));
        assert!(p.is_valid(t(39)));
        assert!(!p.is_valid(t(40)));
        // Transmissions do not make an entry valid.
        p.record_tx(t(45));
        assert!(!p.is_valid(t(45)));
    }

    #[test]
    fn bubbles_spaced_two_seconds_and_capped_at_four_per_300s() {
        let mut p = Peer::new_for_direct_bubble(ADDR, MAP, t(0));
        let mut sent = std::vec::Vec::new();
        // Try every 500 ms for 10 minutes.
        for ms in (0..600_000u64).step_by(500) {
            let now = t(0) + Duration::from_millis(ms);
            if p.may_send_bubble(now) {
                p.record_bubble(now);
                sent.push(now);
            }
        }
        assert_eq!(&sent[..4], &[t(0), t(2), t(4), t(6)]);
        assert_eq!(
            sent[4],
            t(306),
            "budget returns 300 s after the last bubble"
        );
        for w in sent.windows(2) {
            assert!(w[1] - w[0] >= BUBBLE_SPACING);
        }
        for (i, &start) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .filter(|&&s| s - start < BUBBLE_WINDOW)
                .count();
            assert!(
                in_window <= 4,
                "more than 4 bubbles in 300 s from {start:?}"
            );
        }
    }

    #[test]
    fn data_transmission_delays_bubbles() {
        let mut p = Peer::new_from_teredo_source(ADDR, MAP, t(0));
        p.record_tx(t(10));
        assert!(!p.may_send_bubble(Instant::from_millis(t(12).total_millis() - 1)));
        assert!(p.may_send_bubble(t(12)));
    }

    #[test]
    fn direct_response_restores_bubble_budget() {
        let mut p = Peer::new_for_direct_bubble(ADDR, MAP, t(0));
        for s in [0, 2, 4, 6] {
            p.record_bubble(t(s));
        }
        assert!(!p.may_send_bubble(t(8)));
        assert!(!p.bubbles_exhausted(Instant::from_millis(t(8).total_millis() - 1)));
        assert!(p.bubbles_exhausted(t(8)));
        p.record_direct_response(t(9));
        assert_eq!(p.bubbles_sent(), 0);
        assert!(!p.bubbles_exhausted(t(9)));
        assert!(p.may_send_bubble(t(9)));
    }

    #[test]
    fn stale_bubble_count_restarts() {
        let mut p = Peer::new_for_direct_bubble(ADDR, MAP, t(0));
        p.record_bubble(t(0));
        p.record_bubble(t(2));
        p.record_bubble(t(400));
        assert_eq!(p.bubbles_sent(), 1);
    }

    #[test]
    fn echo_test_first_try_and_three_retries() {
        let mut p = Peer::new_for_echo_test(ADDR, t(0));
        assert_eq!(p.mapping(), SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        let mut sent = std::vec::Vec::new();
        for ms in (0..20_000u64).step_by(250) {
            let now = t(0) + Duration::from_millis(ms);
            if p.may_send_echo(now) {
                p.record_echo(now);
                sent.push(now);
            }
            if p.echo_test_failed(now) {
                break;
            }
        }
        assert_eq!(sent, [t(0), t(2), t(4), t(6)]);
        assert_eq!(p.echo_allowed_at(), None);
        assert!(!p.echo_test_failed(Instant::from_millis(t(8).total_millis() - 1)));
        assert!(p.echo_test_failed(t(8)));
    }

    #[test]
    fn echo_reply_makes_trusted_at_relay() {
        let mut p = Peer::new_for_echo_test(ADDR, t(0));
        p.record_echo(t(0));
        p.mark_trusted(RELAY, t(1));
        assert!(p.is_trusted());
        assert_eq!(p.mapping(), RELAY);
        assert_eq!(p.echoes_sent(), 0);
        assert!(p.may_send_direct(t(1)));
        assert_eq!(p.last_activity(), t(1));
    }

    #[test]
    fn backdating_saturates_at_epoch() {
        let p = Peer::new_for_direct_bubble(ADDR, MAP, Instant::from_secs(5));
        assert_eq!(p.last_rx(), Instant::ZERO);
        assert!(p.may_send_bubble(Instant::from_secs(5)));
    }
}
