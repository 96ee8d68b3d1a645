//! The fixed-capacity peer table shared by the Teredo client and relay
//! (RFC 4380 §5.2 "list of recent peers", §5.4.1).
//!
//! [`PeerTable`] maps a peer's IPv6 address to its [`Peer`] entry (mapping,
//! trust, timers, bubble and echo counters: the rules live in [`peer`]) and
//! to a FIFO of packets waiting while the peer is being reached. Everything
//! is in fixed arrays sized by const generics; nothing allocates.
//!
//! # Lookup: keyed Robin Hood hashing
//!
//! Addresses are hashed with the crate's SipHash-2-4 ([`KeyedHash`]) under a
//! random key the caller passes in at construction, into an open-addressing
//! index (Robin Hood probing, backward-shift deletion, no tombstones).
//! Lookup, insert and remove are O(1) expected at any size; the relay's
//! target is 10,000+ peers.
//!
//! The key matters because peer addresses are chosen by whoever sends us
//! packets: the 64-bit Teredo node identifier, and every bit of a native
//! source, are attacker-controlled. With an unkeyed hash (FNV, as in
//! heapless' `FnvIndexMap`) an attacker can precompute thousands of
//! addresses sharing one bucket and turn every lookup into a scan of the
//! whole table. Under a secret SipHash key the attacker cannot predict
//! buckets, so collisions stay as rare as for random addresses.
//!
//! # Eviction: sampled, class-aware, never of active trusted peers
//!
//! When the table is full, [`PeerTable::insert`] evicts one entry. A table
//! of at most [`EVICTION_MAX_SCAN`] entries (a client's) is scanned whole;
//! a larger one (a relay's) is sampled at random positions: at least
//! [`EVICTION_SAMPLE`] entries, and more, up to [`EVICTION_MAX_SCAN`], while
//! none of them may be evicted. Candidates are ranked, best victim first:
//!
//! 0. idle (no activity for the [protection](PeerTable::set_protection)
//!    window, default 30 s), untrusted, not valid, nothing queued;
//! 1. idle and untrusted (being reached, or valid);
//! 2. idle and trusted;
//! 3. recently active but untrusted;
//!
//! and, within a rank, the longest idle goes first. A trusted entry active
//! within the protection window is never evicted: if the sample holds
//! nothing else, the insert fails with [`InsertError::Full`] instead.
//!
//! Why a sample rather than an exact LRU list: the work per insert is
//! bounded (at most 128 entries read) whatever the table size, no per-entry
//! list links are needed (8 bytes saved per entry), and nothing has to be
//! kept in order when the caller updates an entry's times through
//! `&mut Peer`. Exactness is not what protects the table: the rule that
//! recently active trusted peers are never victims does, and it holds for
//! every sample. A flood of new or spoofed peers can only create untrusted
//! entries (trust needs a reply from the mapping, RFC 4380 §5.2.3), so it
//! pushes out idle entries and other flood entries, never a trusted peer in
//! use; a legitimate newcomer still finds room as soon as the sample holds
//! any idle or untrusted entry. Redis approximates LRU by sampling for the
//! same reasons. Positions are drawn at random (from a generator seeded by
//! the secret key) rather than in consecutive runs because storage order
//! follows insertion order: peers that arrived together (e.g. the trusted
//! ones, before a flood) sit together, and a run of 128 of them would make
//! an insert fail although victims exist elsewhere.
//!
//! # Queues
//!
//! Packets wait in one shared pool of `SLOTS` slots of `SLOT_SIZE` bytes,
//! in FIFO order (Miredo's queue is LIFO, emitting packets in reverse), at
//! most [`DEFAULT_MAX_QUEUE_BYTES`] per peer by default
//! (Miredo's 1280, configurable with [`PeerTable::set_max_queue_bytes`]).
//! Removing, evicting or expiring a peer moves its packets to a "dropped"
//! queue that the caller may drain with [`PeerTable::pop_dropped_into`] to
//! send ICMPv6 Destination Unreachable for each, or ignore: those slots are
//! reused first when the pool runs out.
//!
//! # Identifiers
//!
//! A [`PeerId`] is the entry's position in the table's storage: it is valid
//! until the next call that inserts or removes an entry (`insert`, `remove`,
//! `remove_id`, `expire`), which may move entries. Look the address up again
//! after those. A stale id is never unsafe: it names another entry or none.
//!
//! # Memory
//!
//! An entry ([`Peer`]) is 64 bytes on 32- and 64-bit targets, plus 8 bytes
//! per index bucket (`B / N` buckets per entry, 1.6 with the relay's
//! defaults), plus `SLOTS × (SLOT_SIZE + 4)` bytes of pool. See
//! [`RelayPeerTable`] and [`ClientPeerTable`] for the totals.

mod index;
pub mod peer;
mod queue;
#[cfg(test)]
mod test;

use core::net::Ipv6Addr;

use heapless::{Vec, VecView};

use crate::nonce::{KeyedHash, Rng, SplitMix64};
use crate::time::{Duration, Instant};

pub use peer::Peer;
pub use queue::QueueFull;

use index::{Bucket, Index};
use queue::{PacketPool, Slot};

/// Default per-peer queue bound in bytes: Miredo's 1280 (miredo.md §3.10),
/// one minimum-MTU IPv6 packet.
pub const DEFAULT_MAX_QUEUE_BYTES: u16 = 1280;

/// Default idle time after which [`PeerTable::expire`] removes an entry:
/// 60 s without reception or transmission, the upper end of Miredo's
/// 30–60 s garbage collection. Twice the 30 s validity of RFC 4380 §5.2.4,
/// after which a new exchange would be needed anyway.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Default protection window: an entry with any activity this recent counts
/// as in use, and a trusted one is never evicted. Equal to the RFC 4380
/// §5.2.4 validity, the time a trusted peer stays usable without new traffic.
pub const DEFAULT_PROTECTION: Duration = Duration::from_secs(30);

/// Entries an eviction compares at least (when one of them is evictable).
pub const EVICTION_SAMPLE: usize = 16;

/// Entries an eviction reads at most while looking for an evictable one.
pub const EVICTION_MAX_SCAN: usize = 128;

/// A client's table: 256 peers, 512 buckets, 64 packet slots of 1280 bytes.
/// About 102 KiB: 16 KiB of entries, 4 KiB of index, 82 KiB of pool.
pub type ClientPeerTable = PeerTable<256, 512, 64, 1280>;

/// A relay's table: 10,240 peers, 16,384 buckets (load ≤ 0.63), 512 packet
/// slots of 1280 bytes. About 1.4 MiB: 640 KiB of entries, 128 KiB of index,
/// 642 KiB of pool.
pub type RelayPeerTable = PeerTable<10_240, 16_384, 512, 1280>;

/// Names an entry: its position in the table's storage (see the
/// [module documentation](self#identifiers) for how long it stays valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerId(u32);

/// What [`PeerTable::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted {
    /// The new entry.
    pub id: PeerId,
    /// The entry evicted to make room, if the table was full. Its queued
    /// packets went to the dropped queue ([`PeerTable::pop_dropped_into`]).
    pub evicted: Option<Peer>,
}

/// Why [`PeerTable::insert`] did not insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InsertError {
    /// An entry for this address exists already; here it is, unchanged.
    Exists(PeerId),
    /// The table is full and every sampled entry is a trusted peer in
    /// active use: the newcomer is refused rather than one of them evicted.
    Full,
}

/// Fixed-capacity peer table: up to `N` peers indexed by `B` hash buckets
/// (a power of two, at least `N + N/4`; 1.5–2 × N keeps probes short),
/// and a shared pool of `SLOTS` packet slots of `SLOT_SIZE` bytes.
///
/// Construct it once and keep it in place (a `Box` in the glue, or a
/// long-lived stack frame): a relay-sized table is about 1.4 MiB, and
/// `Box::new(PeerTable::new(key))` may build it on the stack first, which
/// fits a Linux main thread (8 MiB) but not a small thread stack.
pub struct PeerTable<
    const N: usize = 256,
    const B: usize = 512,
    const SLOTS: usize = 64,
    const SLOT_SIZE: usize = 1280,
> {
    state: State,
    index: Index<[Bucket; B]>,
    entries: Vec<Peer, N>,
    pool: PacketPool<[Slot<SLOT_SIZE>; SLOTS]>,
}

/// The part of a table that does not depend on its capacities.
struct State {
    hasher: KeyedHash,
    /// Picks eviction samples. Not cryptographic, but seeded from the
    /// secret hash key, so which entries get sampled is not predictable.
    sampler: SplitMix64,
    /// Where the next expiry sweep continues.
    sweep: usize,
    max_queue_bytes: u16,
    idle_timeout: Duration,
    protection: Duration,
}

impl State {
    fn tag(&self, addr: &Ipv6Addr) -> u32 {
        // The low 32 bits of SipHash: they pick the bucket and filter
        // mismatches before the address is compared.
        self.hasher.hash(&[&addr.octets()]) as u32
    }

    /// The id of `addr`'s entry in `entries`, found through `index`.
    fn lookup(&self, index: &Index, entries: &[Peer], addr: &Ipv6Addr) -> Option<PeerId> {
        self.find(index, entries, addr).1
    }

    /// `addr`'s hash tag, and the id of its entry if it has one.
    fn find(&self, index: &Index, entries: &[Peer], addr: &Ipv6Addr) -> (u32, Option<PeerId>) {
        let tag = self.tag(addr);
        let found = index.find(tag, |pos| {
            entries.get(pos as usize).is_some_and(|p| p.addr() == *addr)
        });
        (tag, found.map(|(_, pos)| PeerId(pos)))
    }
}

impl<const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>
    PeerTable<N, B, SLOTS, SLOT_SIZE>
{
    /// Compile-time check of the capacities (a monomorphisation error, never
    /// a run-time panic).
    const SHAPE: () = assert!(
        B.is_power_of_two() && B >= N + N / 4 && N < u32::MAX as usize && B <= u32::MAX as usize,
        "PeerTable: B must be a power of two, at least N + N/4, and fit in u32"
    );

    /// An empty table hashing addresses under `hash_key`, which must be
    /// random and secret (from the OS CSPRNG): see the module documentation.
    pub fn new(hash_key: [u8; 16]) -> Self {
        let () = Self::SHAPE;
        let hasher = KeyedHash::new(hash_key);
        PeerTable {
            state: State {
                sampler: SplitMix64::new(hasher.hash(&[b"peers: eviction sampler"])),
                hasher,
                sweep: 0,
                max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
                idle_timeout: DEFAULT_IDLE_TIMEOUT,
                protection: DEFAULT_PROTECTION,
            },
            index: Index::new(),
            entries: Vec::new(),
            pool: PacketPool::new(),
        }
    }

    /// The table with its capacities erased: every operation that is more
    /// than a field access lives in [`Table`], compiled once for the
    /// client's and the relay's table sizes.
    pub(crate) fn table(&mut self) -> Table<'_, SLOT_SIZE> {
        Table {
            state: &mut self.state,
            index: &mut self.index,
            entries: self.entries.as_mut_view(),
            pool: &mut self.pool,
        }
    }

    /// Bound each peer's queue to `bytes` (default 1280).
    pub fn set_max_queue_bytes(&mut self, bytes: u16) {
        self.state.max_queue_bytes = bytes;
    }

    /// The per-peer queue bound in bytes (see [`Self::set_max_queue_bytes`]).
    pub fn max_queue_bytes(&self) -> u16 {
        self.state.max_queue_bytes
    }

    /// Idle time after which [`Self::expire`] removes an entry (default
    /// 60 s; a client doing local discovery wants 600 s, RFC 4380 §5.2.4).
    pub fn set_idle_timeout(&mut self, idle: Duration) {
        self.state.idle_timeout = idle;
    }

    /// Activity this recent protects an entry from eviction (default 30 s).
    pub fn set_protection(&mut self, window: Duration) {
        self.state.protection = window;
    }

    /// Number of peers held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no peer is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Most peers the table holds (`N`).
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Largest packet a queue slot holds (`SLOT_SIZE`).
    pub const fn slot_size(&self) -> usize {
        SLOT_SIZE
    }

    /// The id of `addr`'s entry.
    pub fn lookup(&self, addr: &Ipv6Addr) -> Option<PeerId> {
        self.state.lookup(&self.index, &self.entries, addr)
    }

    /// `addr`'s entry.
    pub fn get(&self, addr: &Ipv6Addr) -> Option<&Peer> {
        self.lookup(addr).and_then(|id| self.peer(id))
    }

    /// `addr`'s entry, to apply the [`Peer`] rules to.
    pub fn get_mut(&mut self, addr: &Ipv6Addr) -> Option<&mut Peer> {
        self.lookup(addr).and_then(|id| self.peer_mut(id))
    }

    /// The entry `id` names, if any.
    pub fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.entries.get(id.0 as usize)
    }

    /// The entry `id` names, if any, to apply the [`Peer`] rules to.
    pub fn peer_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.entries.get_mut(id.0 as usize)
    }

    /// Every entry, in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, &Peer)> {
        iter(&self.entries)
    }

    /// Add `peer` (built with one of the [`Peer`] constructors, which apply
    /// the RFC 4380 back-dating rules). If the table is full, one entry is
    /// evicted by the policy of the [module documentation](self) and
    /// returned; its queued packets join the dropped queue.
    pub fn insert(&mut self, peer: Peer, now: Instant) -> Result<Inserted, InsertError> {
        self.table().insert(peer, now)
    }

    /// Remove `addr`'s entry; its queued packets join the dropped queue.
    pub fn remove(&mut self, addr: &Ipv6Addr) -> Option<Peer> {
        let id = self.lookup(addr)?;
        self.remove_id(id)
    }

    /// Remove the entry `id` names; its queued packets join the dropped queue.
    pub fn remove_id(&mut self, id: PeerId) -> Option<Peer> {
        self.table().remove_id(id)
    }

    /// Remove entries idle for the idle timeout (default 60 s without
    /// reception, transmission, bubble or echo), reading at most `budget`
    /// entries from where the previous call stopped, so a periodic call
    /// (e.g. `budget = 1024` every second) sweeps the whole table in bounded
    /// steps. Queued packets of removed entries join the dropped queue.
    /// Returns how many entries were removed.
    pub fn expire(&mut self, now: Instant, budget: usize) -> usize {
        self.table().expire(now, budget)
    }

    /// Queue a copy of `packet` for `peer` (at the back: queues are FIFO).
    /// Refused if it is longer than a slot, if the peer's queue would exceed
    /// its byte bound, or if the pool has no slot left once dropped packets
    /// are reclaimed.
    pub fn enqueue(&mut self, peer: PeerId, packet: &[u8]) -> Result<(), QueueFull> {
        self.table().enqueue(peer, packet)
    }

    /// Take `peer`'s oldest queued packet into `out` and return its length;
    /// `None` when its queue is empty (or `peer` names no entry). Used both
    /// to flush a queue to a newly trusted peer and to drain it for ICMPv6
    /// errors. `out` should hold [`Self::slot_size`] bytes: a packet longer
    /// than `out` is discarded.
    pub fn dequeue_into(&mut self, peer: PeerId, out: &mut [u8]) -> Option<usize> {
        self.table().dequeue_into(peer, out)
    }

    /// Free every packet queued for `peer` at once.
    pub fn clear(&mut self, peer: PeerId) {
        self.table().clear(peer);
    }

    /// Bytes queued for `peer` (0 if it names no entry).
    pub fn queued_bytes(&self, peer: PeerId) -> usize {
        self.entries
            .get(peer.0 as usize)
            .map_or(0, |e| e.queue.bytes())
    }

    /// Whether `peer` has packets queued.
    pub fn has_queued(&self, peer: PeerId) -> bool {
        has_queued(&self.entries, peer)
    }

    /// Take the oldest packet left behind by a removed, evicted or expired
    /// peer into `out` (e.g. to answer it with ICMPv6 Destination
    /// Unreachable, rate-limited), as [`Self::dequeue_into`] does.
    pub fn pop_dropped_into(&mut self, out: &mut [u8]) -> Option<usize> {
        self.table().pop_dropped_into(out)
    }

    /// Free every packet left behind by removed peers.
    pub fn clear_dropped(&mut self) {
        self.table().clear_dropped();
    }

    /// Test helper: index, storage and pool are consistent.
    #[cfg(test)]
    fn check_invariants(&self) {
        let index: &Index = &self.index;
        index.check(self.entries.len(), |pos| {
            self.entries
                .get(pos as usize)
                .map(|p| self.state.tag(&p.addr()))
        });
        let pool: &PacketPool<[Slot<SLOT_SIZE>]> = &self.pool;
        pool.check(self.entries.iter().map(|p| &p.queue));
    }
}

/// Every entry of `entries`, with its id, in storage order.
fn iter(entries: &[Peer]) -> impl Iterator<Item = (PeerId, &Peer)> {
    // Positions fit u32: SHAPE bounds N.
    entries
        .iter()
        .enumerate()
        .map(|(i, p)| (PeerId(i as u32), p))
}

/// Whether the entry `peer` names has packets queued.
fn has_queued(entries: &[Peer], peer: PeerId) -> bool {
    entries
        .get(peer.0 as usize)
        .is_some_and(|e| !e.queue.is_empty())
}

/// A [`PeerTable`] with its capacities erased (only the slot size, the
/// same for every table the crate builds, stays a parameter): the table's
/// operations are written here once instead of once per table size.
pub(crate) struct Table<'a, const SLOT_SIZE: usize> {
    state: &'a mut State,
    index: &'a mut Index,
    entries: &'a mut VecView<Peer>,
    pool: &'a mut PacketPool<[Slot<SLOT_SIZE>]>,
}

impl<const SLOT_SIZE: usize> Table<'_, SLOT_SIZE> {
    /// Most peers the table holds.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Number of packet slots in the pool.
    pub(crate) fn slots(&self) -> usize {
        self.pool.slot_count()
    }

    /// See [`PeerTable::peer`].
    pub(crate) fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.entries.get(id.0 as usize)
    }

    /// See [`PeerTable::peer_mut`].
    pub(crate) fn peer_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.entries.get_mut(id.0 as usize)
    }

    /// See [`PeerTable::iter`].
    pub(crate) fn iter(&self) -> impl Iterator<Item = (PeerId, &Peer)> {
        iter(self.entries)
    }

    /// See [`PeerTable::has_queued`].
    pub(crate) fn has_queued(&self, peer: PeerId) -> bool {
        has_queued(self.entries, peer)
    }

    /// See [`PeerTable::insert`].
    pub(crate) fn insert(&mut self, peer: Peer, now: Instant) -> Result<Inserted, InsertError> {
        let (tag, existing) = self.state.find(self.index, self.entries, &peer.addr());
        if let Some(id) = existing {
            return Err(InsertError::Exists(id));
        }
        let evicted = if self.entries.is_full() {
            let victim = self.choose_victim(now).ok_or(InsertError::Full)?;
            Some(self.remove_pos(victim).ok_or(InsertError::Full)?)
        } else {
            None
        };
        let pos = self.entries.len();
        // Positions fit u32: SHAPE bounds N.
        let id = PeerId(pos as u32);
        let mut peer = peer;
        peer.queue = queue::QueueHead::EMPTY;
        if self.entries.push(peer).is_err() {
            return Err(InsertError::Full);
        }
        if !self.index.insert(tag, id.0) {
            // Unreachable while B > N (SHAPE); undo rather than leave an
            // unindexed entry behind.
            self.entries.pop();
            return Err(InsertError::Full);
        }
        Ok(Inserted { id, evicted })
    }

    /// See [`PeerTable::remove_id`].
    pub(crate) fn remove_id(&mut self, id: PeerId) -> Option<Peer> {
        self.remove_pos(id.0 as usize)
    }

    /// Remove the entry at `pos`: unindex it, move the last entry into its
    /// place (re-pointing that entry's bucket), hand its queue to the
    /// dropped queue.
    fn remove_pos(&mut self, pos: usize) -> Option<Peer> {
        let at = self.bucket_of(pos)?;
        self.index.remove_at(at);
        let last = self.entries.len().checked_sub(1)?;
        if pos != last {
            if let Some(at) = self.bucket_of(last) {
                // Positions fit u32: SHAPE bounds N.
                self.index.set_pos(at, pos as u32);
            }
        }
        // `pos < len` was checked by the first `get`, so this cannot panic.
        let mut peer = self.entries.swap_remove(pos);
        self.pool.drop_queue(&mut peer.queue);
        Some(peer)
    }

    /// The index bucket that points at the entry at `pos`.
    fn bucket_of(&self, pos: usize) -> Option<usize> {
        let tag = self.state.tag(&self.entries.get(pos)?.addr());
        let (at, _) = self.index.find(tag, |p| p as usize == pos)?;
        Some(at)
    }

    /// Eviction rank of `peer` at `now` (lower goes first), or `None` for a
    /// trusted peer in active use, which is never evicted.
    fn rank(&self, peer: &Peer, now: Instant) -> Option<u8> {
        let active = now.saturating_duration_since(peer.last_activity()) < self.state.protection;
        match (active, peer.is_trusted()) {
            (true, true) => None,
            (true, false) => Some(3),
            (false, true) => Some(2),
            (false, false) if peer.is_valid(now) || !peer.queue.is_empty() => Some(1),
            (false, false) => Some(0),
        }
    }

    /// The position of the entry to evict (see the module documentation):
    /// the best of the whole table when it holds at most
    /// [`EVICTION_MAX_SCAN`] entries, else of a random sample.
    fn choose_victim(&mut self, now: Instant) -> Option<usize> {
        let len = self.entries.len();
        let exhaustive = len <= EVICTION_MAX_SCAN;
        let mut best: Option<(u8, Instant, usize)> = None;
        for scanned in 0..len.min(EVICTION_MAX_SCAN) {
            if !exhaustive && scanned >= EVICTION_SAMPLE && best.is_some() {
                break;
            }
            let pos = if exhaustive {
                scanned
            } else {
                // 32 random bits scaled to `0..len` by a multiply and a
                // shift (one 32×32 multiply, no 64-bit division on 32-bit
                // CPUs): `len` fits u32 (SHAPE), so the result is below it
                // and the bias is below len / 2^32 (2^-18 at 10,240 peers).
                let r = self.state.sampler.next_u64() >> 32;
                ((r * len as u64) >> 32) as usize
            };
            if let Some(peer) = self.entries.get(pos) {
                if let Some(rank) = self.rank(peer, now) {
                    let key = (rank, peer.last_activity(), pos);
                    if best.is_none_or(|b| (key.0, key.1) < (b.0, b.1)) {
                        best = Some(key);
                    }
                }
            }
        }
        best.map(|(_, _, pos)| pos)
    }

    /// See [`PeerTable::expire`].
    pub(crate) fn expire(&mut self, now: Instant, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..budget {
            let len = self.entries.len();
            if len == 0 {
                break;
            }
            if self.state.sweep >= len {
                self.state.sweep = 0;
            }
            let sweep = self.state.sweep;
            let idle = self.entries.get(sweep).is_some_and(|p| {
                now.saturating_duration_since(p.last_activity()) >= self.state.idle_timeout
            });
            if idle && self.remove_pos(sweep).is_some() {
                // The last entry moved into this position: look at it next.
                removed += 1;
            } else {
                self.state.sweep += 1;
            }
        }
        removed
    }

    /// See [`PeerTable::enqueue`].
    pub(crate) fn enqueue(&mut self, peer: PeerId, packet: &[u8]) -> Result<(), QueueFull> {
        let max = self.state.max_queue_bytes;
        let entry = self
            .entries
            .get_mut(peer.0 as usize)
            .ok_or(QueueFull::NoSuchPeer)?;
        self.pool.push(&mut entry.queue, packet, max)
    }

    /// See [`PeerTable::dequeue_into`].
    pub(crate) fn dequeue_into(&mut self, peer: PeerId, out: &mut [u8]) -> Option<usize> {
        let entry = self.entries.get_mut(peer.0 as usize)?;
        self.pool.pop_into(&mut entry.queue, out)
    }

    /// See [`PeerTable::pop_dropped_into`].
    pub(crate) fn pop_dropped_into(&mut self, out: &mut [u8]) -> Option<usize> {
        self.pool.pop_dropped_into(out)
    }

    /// See [`PeerTable::clear`].
    fn clear(&mut self, peer: PeerId) {
        if let Some(entry) = self.entries.get_mut(peer.0 as usize) {
            self.pool.clear(&mut entry.queue);
        }
    }

    /// See [`PeerTable::clear_dropped`].
    fn clear_dropped(&mut self) {
        self.pool.clear_dropped();
    }

    /// Forget every peer and every queued packet.
    pub(crate) fn clear_all(&mut self) {
        while self.remove_pos(0).is_some() {}
        self.clear_dropped();
    }
}
