//! Inbound packets held while the direct IPv6 connectivity test verifies
//! the relay they came through (RFC 4380 §5.2.3 rule 6: "run the direct
//! IPv6 connectivity test before processing"; miredo.md §3.7 item 8).
//!
//! A packet from a native source arriving through a relay we have not
//! verified waits here with the UDP source (mapping) it came from. When the
//! echo test's reply proves a relay (rule 2), the packets of that source
//! held from that mapping are released to the tunnel in arrival order; the
//! others came through a relay nobody vouched for and are dropped.
//!
//! # Choices
//!
//! - A small area of its own, not the peers' shared pool: packets from
//!   unverified sources (anyone can send them) then never take slots from
//!   the outgoing queues, and never reach the pool's dropped queue, whose
//!   packets are answered with ICMPv6 errors to the tunnel (RFC 4380 §5.2.3
//!   sends no error towards an unverified source).
//! - Bounded three ways: [`HOLD_SLOTS`] packets in all, the peer table's
//!   per-peer byte bound per source, and new sources only through the
//!   client's limiter of new echo tests. When full, newcomers are refused
//!   rather than older packets pushed out, so a flood cannot flush a
//!   legitimate packet already waiting.
//! - A held packet lives at most [`HOLD_LIFETIME`]: a reply later than that
//!   cannot verify anyway.

use core::net::{Ipv6Addr, SocketAddrV4};

use heapless::Vec;

use super::echo_test::ECHO_LIFETIME;
use crate::time::{earliest, Duration, Instant};

/// Most packets held at once, all sources together.
pub(super) const HOLD_SLOTS: usize = 4;

/// Largest packet held: the IPv6 minimum MTU, as the peers' queue slots.
pub(super) const HOLD_SLOT_SIZE: usize = 1280;

/// Longest a packet waits for its test: the echo reply's own lifetime.
pub(super) const HOLD_LIFETIME: Duration = ECHO_LIFETIME;

/// One held packet.
struct Held {
    /// IPv6 source: the native peer under test.
    src: Ipv6Addr,
    /// UDP source it came from: the relay to be verified.
    mapping: SocketAddrV4,
    /// Arrival time.
    since: Instant,
    /// When its relay was verified; it then only waits for the tunnel.
    ready: Option<Instant>,
    len: u16,
    data: [u8; HOLD_SLOT_SIZE],
}

impl Held {
    fn packet(&self) -> &[u8] {
        self.data.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// Why [`HeldPackets::hold`] refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HoldRefused {
    /// Longer than a slot.
    TooLong,
    /// The source's byte bound or the area's slots are used up.
    Full,
}

/// The holding area, in arrival order.
pub(super) struct HeldPackets {
    held: Vec<Held, HOLD_SLOTS>,
}

impl HeldPackets {
    /// An empty area.
    pub(super) const fn new() -> Self {
        HeldPackets { held: Vec::new() }
    }

    /// Hold `packet` from `src`, received at `now` from `mapping`, unless
    /// that would put more than `max_bytes` bytes of `src` here.
    pub(super) fn hold(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        mapping: SocketAddrV4,
        packet: &[u8],
        max_bytes: u16,
    ) -> Result<(), HoldRefused> {
        let len = u16::try_from(packet.len()).map_err(|_| HoldRefused::TooLong)?;
        if packet.len() > HOLD_SLOT_SIZE {
            return Err(HoldRefused::TooLong);
        }
        let bytes = self
            .held
            .iter()
            .filter(|h| h.src == src)
            .fold(u32::from(len), |a, h| a.saturating_add(u32::from(h.len)));
        if bytes > u32::from(max_bytes) || self.held.is_full() {
            return Err(HoldRefused::Full);
        }
        let mut data = [0u8; HOLD_SLOT_SIZE];
        if let Some(dst) = data.get_mut(..packet.len()) {
            dst.copy_from_slice(packet);
        }
        let held = Held {
            src,
            mapping,
            since: now,
            ready: None,
            len,
            data,
        };
        self.held.push(held).map_err(|_| HoldRefused::Full)
    }

    /// The echo test verified `src` through `mapping` at `now` (RFC 4380
    /// §5.2.3 rule 2): its packets held from `mapping` become ready for the
    /// tunnel; those from any other mapping are dropped. Returns how many
    /// were dropped.
    pub(super) fn verified(&mut self, now: Instant, src: Ipv6Addr, mapping: SocketAddrV4) -> usize {
        let before = self.held.len();
        self.held
            .retain(|h| h.src != src || h.mapping == mapping || h.ready.is_some());
        for h in self.held.iter_mut().filter(|h| h.src == src) {
            h.ready.get_or_insert(now);
        }
        before - self.held.len()
    }

    /// Take the oldest ready packet into `out`; its length. A packet longer
    /// than `out` is dropped (pass [`HOLD_SLOT_SIZE`] bytes and it never is).
    pub(super) fn pop_ready_into(&mut self, out: &mut [u8]) -> Option<usize> {
        let i = self.held.iter().position(|h| h.ready.is_some())?;
        let copied = self.held.get(i).and_then(|h| {
            let dst = out.get_mut(..h.packet().len())?;
            dst.copy_from_slice(h.packet());
            Some(dst.len())
        });
        if i < self.held.len() {
            self.held.remove(i);
        }
        copied
    }

    /// Drop every unready packet for which `expired(src, since)` is true;
    /// returns how many.
    pub(super) fn drop_unready(
        &mut self,
        mut expired: impl FnMut(Ipv6Addr, Instant) -> bool,
    ) -> usize {
        let before = self.held.len();
        self.held
            .retain(|h| h.ready.is_some() || !expired(h.src, h.since));
        before - self.held.len()
    }

    /// Source and arrival time of every packet still waiting for its test.
    pub(super) fn unready(&self) -> impl Iterator<Item = (Ipv6Addr, Instant)> + '_ {
        self.held
            .iter()
            .filter(|h| h.ready.is_none())
            .map(|h| (h.src, h.since))
    }

    /// Drop everything; returns how many.
    pub(super) fn clear(&mut self) -> usize {
        let n = self.held.len();
        self.held.clear();
        n
    }

    /// Earliest instant something is due: a ready packet's delivery, or an
    /// unready one's end of life.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.held.iter().fold(None, |due, h| {
            earliest(due, Some(h.ready.unwrap_or(h.since + HOLD_LIFETIME)))
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::Ipv4Addr;

    const A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const R1: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 3544);
    const R2: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 2), 3544);

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn drain(h: &mut HeldPackets) -> std::vec::Vec<std::vec::Vec<u8>> {
        let mut out = [0u8; HOLD_SLOT_SIZE];
        let mut all = std::vec::Vec::new();
        while let Some(n) = h.pop_ready_into(&mut out) {
            all.push(out[..n].to_vec());
        }
        all
    }

    #[test]
    fn verified_mapping_released_in_order_others_dropped() {
        let mut h = HeldPackets::new();
        h.hold(t(0), A, R1, b"a1", 1280).unwrap();
        h.hold(t(1), B, R1, b"b1", 1280).unwrap();
        h.hold(t(2), A, R2, b"a2", 1280).unwrap();
        h.hold(t(3), A, R1, b"a3", 1280).unwrap();
        assert_eq!(drain(&mut h), std::vec::Vec::<std::vec::Vec<u8>>::new());
        assert_eq!(h.poll_timeout(), Some(t(0) + HOLD_LIFETIME));
        assert_eq!(h.verified(t(10), A, R1), 1);
        assert_eq!(h.poll_timeout(), Some(t(10)));
        assert_eq!(drain(&mut h), [b"a1".to_vec(), b"a3".to_vec()]);
        assert_eq!(h.poll_timeout(), Some(t(1) + HOLD_LIFETIME));
    }

    #[test]
    fn bounds_and_expiry() {
        let mut h = HeldPackets::new();
        assert_eq!(
            h.hold(t(0), A, R1, &[0; HOLD_SLOT_SIZE + 1], 5000),
            Err(HoldRefused::TooLong)
        );
        h.hold(t(0), A, R1, &[1; 1000], 1280).unwrap();
        assert_eq!(
            h.hold(t(0), A, R1, &[2; 281], 1280),
            Err(HoldRefused::Full),
            "per-source bound"
        );
        h.hold(t(0), A, R1, &[2; 280], 1280).unwrap();
        h.hold(t(5), B, R1, b"b1", 1280).unwrap();
        h.hold(t(5), B, R1, b"b2", 1280).unwrap();
        assert_eq!(h.hold(t(5), B, R1, b"b3", 1280), Err(HoldRefused::Full));
        assert_eq!(h.drop_unready(|src, _| src == A), 2);
        assert_eq!(h.verified(t(6), B, R1), 0);
        assert_eq!(h.drop_unready(|_, _| true), 0, "ready ones stay");
        assert_eq!(h.clear(), 2);
        assert_eq!(h.poll_timeout(), None);
    }
}
