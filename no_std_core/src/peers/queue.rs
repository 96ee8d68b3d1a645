//! The shared packet pool behind every peer's queue.
//!
//! Packets wait here while their peer is being reached (bubbles or echo
//! test, RFC 4380 §5.2.4 cases 2, 3 and 5; relays SHOULD bound this queue,
//! §5.4.1). One pool of `SLOTS` fixed-size slots serves all peers; each peer
//! owns a singly linked FIFO of slot indices (head, tail and byte count live
//! in its [`QueueHead`]), so enqueue, dequeue, clearing and handing a whole
//! queue over are all O(1) and nothing is allocated. The pool's size is the
//! global bound; a per-peer byte limit keeps one peer from taking it all.
//!
//! Packets of peers that were removed, evicted or expired are not freed at
//! once but moved, still in order, to a "dropped" queue: the caller may drain
//! it to answer each packet with ICMPv6 Destination Unreachable, or ignore
//! it; slots in it are reclaimed (oldest first) whenever the free list runs
//! dry, so unread drops never cost capacity.

/// Index value meaning "no slot" (end of a list).
const NIL: u16 = u16::MAX;

/// Why a packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QueueFull {
    /// The packet is longer than a pool slot; the caller decides (e.g.
    /// ICMPv6 Packet Too Big or a plain drop).
    TooLong,
    /// The peer's queue already holds its byte limit.
    PeerLimit,
    /// Every slot of the shared pool holds a queued packet.
    PoolExhausted,
    /// No peer has this id (removed or evicted since it was looked up).
    NoSuchPeer,
}

/// A FIFO of pool slots: first and last slot and the bytes queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueHead {
    head: u16,
    tail: u16,
    bytes: u16,
}

impl QueueHead {
    /// A queue holding nothing.
    pub(crate) const EMPTY: QueueHead = QueueHead {
        head: NIL,
        tail: NIL,
        bytes: 0,
    };

    /// Bytes of packet data queued.
    pub(crate) fn bytes(&self) -> usize {
        usize::from(self.bytes)
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// One packet buffer of `SIZE` bytes with its length and list link.
pub(crate) struct Slot<const SIZE: usize> {
    data: [u8; SIZE],
    /// Length of the packet held.
    len: u16,
    /// Next slot in the list this slot belongs to, or [`NIL`].
    next: u16,
}

/// A pool of packet slots with its free and dropped lists:
/// `PacketPool<[Slot<SIZE>; SLOTS]>` owns `SLOTS` of them; the operations
/// are written once for `PacketPool<[Slot<SIZE>]>`, so pools of every slot
/// count share their code.
pub(crate) struct PacketPool<S: ?Sized> {
    /// Free slots, singly linked through `next`.
    free: u16,
    /// Packets of removed peers, oldest first.
    dropped: QueueHead,
    slots: S,
}

impl<const SLOTS: usize, const SIZE: usize> PacketPool<[Slot<SIZE>; SLOTS]> {
    /// Slot indices and lengths are `u16`, with `u16::MAX` as the end mark.
    const FITS_U16: () = assert!(
        SLOTS < NIL as usize && SIZE <= u16::MAX as usize,
        "at most 65534 slots of at most 65535 bytes"
    );

    /// An empty pool: every slot on the free list.
    pub(crate) fn new() -> Self {
        let () = Self::FITS_U16;
        PacketPool {
            free: if SLOTS > 0 { 0 } else { NIL },
            dropped: QueueHead::EMPTY,
            // Slot i links to i + 1; the last one ends the list. The cast is
            // exact because FITS_U16 bounds SLOTS.
            slots: core::array::from_fn(|i| Slot {
                data: [0; SIZE],
                len: 0,
                next: if i + 1 < SLOTS { (i + 1) as u16 } else { NIL },
            }),
        }
    }
}

impl<const SIZE: usize> PacketPool<[Slot<SIZE>]> {
    /// Number of slots.
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    fn next_of(&self, slot: u16) -> u16 {
        self.slots.get(usize::from(slot)).map_or(NIL, |s| s.next)
    }

    fn set_next(&mut self, slot: u16, to: u16) {
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            s.next = to;
        }
    }

    fn len_of(&self, slot: u16) -> u16 {
        self.slots.get(usize::from(slot)).map_or(0, |s| s.len)
    }

    /// Unlink the first slot of `q`, or `None` if it is empty.
    fn pop_slot(&mut self, q: &mut QueueHead) -> Option<u16> {
        if q.head == NIL {
            return None;
        }
        let slot = q.head;
        q.head = self.next_of(slot);
        if q.head == NIL {
            q.tail = NIL;
        }
        q.bytes = q.bytes.saturating_sub(self.len_of(slot));
        self.set_next(slot, NIL);
        Some(slot)
    }

    /// Append the whole list `from` to `to`, preserving order. O(1).
    fn splice(&mut self, to: &mut QueueHead, from: &mut QueueHead) {
        if from.head == NIL {
            return;
        }
        if to.head == NIL {
            to.head = from.head;
        } else {
            self.set_next(to.tail, from.head);
        }
        to.tail = from.tail;
        to.bytes = to.bytes.saturating_add(from.bytes);
        *from = QueueHead::EMPTY;
    }

    /// Take a slot: a free one, else the oldest dropped packet's.
    fn alloc(&mut self) -> Option<u16> {
        if self.free != NIL {
            let slot = self.free;
            self.free = self.next_of(slot);
            self.set_next(slot, NIL);
            return Some(slot);
        }
        let mut dropped = self.dropped;
        let slot = self.pop_slot(&mut dropped);
        self.dropped = dropped;
        slot
    }

    /// Return `slot` to the free list.
    fn release(&mut self, slot: u16) {
        self.set_next(slot, self.free);
        self.free = slot;
    }

    /// Append a copy of `packet` to `q`, keeping `q` within `max_bytes`.
    pub(crate) fn push(
        &mut self,
        q: &mut QueueHead,
        packet: &[u8],
        max_bytes: u16,
    ) -> Result<(), QueueFull> {
        let len = match u16::try_from(packet.len()) {
            Ok(len) if packet.len() <= SIZE => len,
            _ => return Err(QueueFull::TooLong),
        };
        match q.bytes.checked_add(len) {
            Some(total) if total <= max_bytes => {}
            _ => return Err(QueueFull::PeerLimit),
        }
        let slot = self.alloc().ok_or(QueueFull::PoolExhausted)?;
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            if let Some(dst) = s.data.get_mut(..packet.len()) {
                dst.copy_from_slice(packet);
            }
            s.len = len;
        }
        let mut one = QueueHead {
            head: slot,
            tail: slot,
            bytes: len,
        };
        self.splice(q, &mut one);
        Ok(())
    }

    /// Remove the oldest packet of `q` into `out` and return its length.
    /// A packet longer than `out` is dropped (and the next one tried): pass a
    /// buffer of at least the slot size and that never happens.
    pub(crate) fn pop_into(&mut self, q: &mut QueueHead, out: &mut [u8]) -> Option<usize> {
        while let Some(slot) = self.pop_slot(q) {
            let len = usize::from(self.len_of(slot));
            let copied = match (
                self.slots
                    .get(usize::from(slot))
                    .and_then(|s| s.data.get(..len)),
                out.get_mut(..len),
            ) {
                (Some(src), Some(dst)) => {
                    dst.copy_from_slice(src);
                    true
                }
                _ => false,
            };
            self.release(slot);
            if copied {
                return Some(len);
            }
        }
        None
    }

    /// Free every packet of `q`. O(1): the list joins the free list whole.
    pub(crate) fn clear(&mut self, q: &mut QueueHead) {
        if q.head == NIL {
            return;
        }
        self.set_next(q.tail, self.free);
        self.free = q.head;
        *q = QueueHead::EMPTY;
    }

    /// Move every packet of `q` to the end of the dropped queue. O(1).
    pub(crate) fn drop_queue(&mut self, q: &mut QueueHead) {
        let mut dropped = self.dropped;
        self.splice(&mut dropped, q);
        self.dropped = dropped;
    }

    /// Remove the oldest dropped packet into `out` (see [`Self::pop_into`]).
    pub(crate) fn pop_dropped_into(&mut self, out: &mut [u8]) -> Option<usize> {
        let mut dropped = self.dropped;
        let n = self.pop_into(&mut dropped, out);
        self.dropped = dropped;
        n
    }

    /// Free every dropped packet.
    pub(crate) fn clear_dropped(&mut self) {
        let mut dropped = self.dropped;
        self.clear(&mut dropped);
        self.dropped = dropped;
    }

    /// Test helper: every slot is on exactly one list (free, dropped or one
    /// of `queues`), and each queue's tail and byte count are right.
    #[cfg(test)]
    pub(crate) fn check<'a>(&self, queues: impl Iterator<Item = &'a QueueHead>) {
        let mut owner = std::vec![false; self.slots.len()];
        let mut walk = |head: u16, tail: Option<u16>, bytes: Option<u16>| {
            let (mut slot, mut last, mut total) = (head, NIL, 0usize);
            while slot != NIL {
                let i = usize::from(slot);
                assert!(!owner[i], "slot {i} on two lists (or a cycle)");
                owner[i] = true;
                total += usize::from(self.slots[i].len);
                last = slot;
                slot = self.slots[i].next;
            }
            if let Some(tail) = tail {
                assert_eq!(last, tail, "stale tail");
            }
            if let Some(bytes) = bytes {
                assert_eq!(total, usize::from(bytes), "stale byte count");
            }
        };
        walk(self.free, None, None);
        walk(self.dropped.head, Some(self.dropped.tail), None);
        for q in queues {
            walk(q.head, Some(q.tail), Some(q.bytes));
        }
        assert!(owner.iter().all(|&o| o), "a slot leaked");
    }

    /// Test helper: number of slots on the free list.
    #[cfg(test)]
    pub(crate) fn free_slots(&self) -> usize {
        let mut n = 0;
        let mut slot = self.free;
        while slot != NIL {
            n += 1;
            slot = self.slots[usize::from(slot)].next;
        }
        n
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    type Pool = PacketPool<[Slot<8>]>;

    /// Four slots of 8 bytes.
    fn new_pool() -> PacketPool<[Slot<8>; 4]> {
        PacketPool::new()
    }

    fn drain(pool: &mut Pool, q: &mut QueueHead) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8];
        while let Some(n) = pool.pop_into(q, &mut buf) {
            out.push(buf[..n].to_vec());
        }
        out
    }

    #[test]
    fn fifo_order_and_byte_count() {
        let mut pool = new_pool();
        let pool: &mut Pool = &mut pool;
        let mut q = QueueHead::EMPTY;
        pool.push(&mut q, b"one", 100).unwrap();
        pool.push(&mut q, b"two!", 100).unwrap();
        pool.push(&mut q, b"", 100).unwrap();
        assert_eq!(q.bytes(), 7);
        assert_eq!(pool.free_slots(), 1);
        assert_eq!(drain(pool, &mut q), [&b"one"[..], b"two!", b""]);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
        assert_eq!(pool.free_slots(), 4);
    }

    #[test]
    fn refusals() {
        let mut pool = new_pool();
        let pool: &mut Pool = &mut pool;
        let mut a = QueueHead::EMPTY;
        let mut b = QueueHead::EMPTY;
        assert_eq!(pool.push(&mut a, &[0; 9], 100), Err(QueueFull::TooLong));
        pool.push(&mut a, &[1; 8], 12).unwrap();
        assert_eq!(pool.push(&mut a, &[2; 5], 12), Err(QueueFull::PeerLimit));
        pool.push(&mut a, &[2; 4], 12).unwrap();
        pool.push(&mut b, &[3; 8], 100).unwrap();
        pool.push(&mut b, &[4; 8], 100).unwrap();
        assert_eq!(
            pool.push(&mut b, &[5; 1], 100),
            Err(QueueFull::PoolExhausted)
        );
        pool.clear(&mut a);
        assert!(a.is_empty());
        pool.push(&mut b, &[5; 1], 100).unwrap();
        assert_eq!(drain(pool, &mut b), [vec![3; 8], vec![4; 8], vec![5; 1]]);
    }

    #[test]
    fn dropped_packets_drain_in_order_and_are_reclaimed() {
        let mut pool = new_pool();
        let pool: &mut Pool = &mut pool;
        let mut a = QueueHead::EMPTY;
        let mut b = QueueHead::EMPTY;
        pool.push(&mut a, b"a1", 100).unwrap();
        pool.push(&mut a, b"a2", 100).unwrap();
        pool.push(&mut b, b"b1", 100).unwrap();
        pool.drop_queue(&mut a);
        pool.drop_queue(&mut b);
        assert!(a.is_empty() && b.is_empty());
        let mut buf = [0u8; 8];
        assert_eq!(pool.pop_dropped_into(&mut buf), Some(2));
        assert_eq!(&buf[..2], b"a1");
        // Pool: 2 free slots + 2 dropped. Four pushes reclaim the dropped ones.
        let mut c = QueueHead::EMPTY;
        for p in [b"c1", b"c2", b"c3", b"c4"] {
            pool.push(&mut c, p, 100).unwrap();
        }
        assert_eq!(pool.pop_dropped_into(&mut buf), None);
        assert_eq!(pool.push(&mut c, b"c5", 100), Err(QueueFull::PoolExhausted));
        pool.drop_queue(&mut c);
        pool.clear_dropped();
        assert_eq!(pool.free_slots(), 4);
    }

    #[test]
    fn short_output_buffer_drops_that_packet_only() {
        let mut pool = new_pool();
        let pool: &mut Pool = &mut pool;
        let mut q = QueueHead::EMPTY;
        pool.push(&mut q, b"longpkt", 100).unwrap();
        pool.push(&mut q, b"ok", 100).unwrap();
        let mut small = [0u8; 3];
        assert_eq!(pool.pop_into(&mut q, &mut small), Some(2));
        assert_eq!(&small[..2], b"ok");
        assert_eq!(pool.free_slots(), 4);
    }

    #[test]
    fn zero_slot_pool_refuses() {
        let mut pool = PacketPool::<[Slot<8>; 0]>::new();
        let pool: &mut Pool = &mut pool;
        let mut q = QueueHead::EMPTY;
        assert_eq!(pool.push(&mut q, b"x", 100), Err(QueueFull::PoolExhausted));
        assert_eq!(pool.pop_into(&mut q, &mut [0; 8]), None);
    }
}
