//! Open-addressing hash index from a 32-bit hash tag to an entry position.
//!
//! Robin Hood linear probing over `B` buckets (a power of two): on insert an
//! entry takes the bucket of any entry that sits closer to its own home
//! bucket, which keeps probe sequences short and even, and lets a lookup
//! stop as soon as it meets an entry closer to home than the key would be.
//! Deletion shifts the following run back by one bucket instead of leaving
//! a tombstone, so lookups never slow down as peers come and go.
//!
//! Buckets hold only the tag and the entry's position (8 bytes), never the
//! entry itself: probing and shifting touch this compact array only, and
//! entry positions stay stable while buckets move. The tag's low bits pick
//! the home bucket; the caller confirms a tag match against the entry's key.

/// Position value marking an empty bucket.
const EMPTY: u32 = u32::MAX;

/// One bucket: hash tag and position of the entry in the table's storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    tag: u32,
    pos: u32,
}

impl Bucket {
    const VACANT: Bucket = Bucket { tag: 0, pos: EMPTY };
}

/// How far bucket `at` is from the home bucket of `tag` in an index of
/// `mask + 1` buckets (wrapping).
fn distance(mask: usize, at: usize, tag: u32) -> usize {
    // The home is `tag & mask`; masking the difference makes that implicit.
    at.wrapping_sub(tag as usize) & mask
}

/// A Robin Hood index over its buckets: `Index<[Bucket; B]>` owns `B` of
/// them; the operations are written once for `Index` (a slice of any
/// length, a power of two), so tables of every size share their code.
pub(crate) struct Index<S: ?Sized = [Bucket]> {
    buckets: S,
}

impl<const B: usize> Index<[Bucket; B]> {
    /// All buckets empty. `B` must be a power of two (checked by the table).
    pub(crate) fn new() -> Self {
        Index {
            buckets: [Bucket::VACANT; B],
        }
    }
}

impl Index {
    /// Bucket count minus one: the length is a power of two.
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// The bucket an entry with this tag would ideally sit in.
    fn home(&self, tag: u32) -> usize {
        // u32 -> usize never truncates on the 32- and 64-bit targets we build.
        tag as usize & self.mask()
    }

    /// How far bucket `at` is from the home of `tag` (wrapping).
    fn distance(&self, at: usize, tag: u32) -> usize {
        distance(self.mask(), at, tag)
    }

    fn bucket(&self, at: usize) -> Bucket {
        self.buckets
            .get(at & self.mask())
            .copied()
            .unwrap_or(Bucket::VACANT)
    }

    /// The bucket holding an entry with `tag` for which `is_it(pos)` is
    /// true, and that entry's position.
    pub(crate) fn find(
        &self,
        tag: u32,
        mut is_it: impl FnMut(u32) -> bool,
    ) -> Option<(usize, u32)> {
        let mut at = self.home(tag);
        for dist in 0..self.buckets.len() {
            let b = self.bucket(at);
            // Robin Hood invariant: had the key been inserted, it would sit
            // before any entry closer to its home than `dist`.
            if b.pos == EMPTY || self.distance(at, b.tag) < dist {
                return None;
            }
            if b.tag == tag && is_it(b.pos) {
                return Some((at, b.pos));
            }
            at = (at + 1) & self.mask();
        }
        None
    }

    /// Add `(tag, pos)`; `false` only if every bucket is taken, which the
    /// table prevents by keeping `B` above its entry capacity.
    pub(crate) fn insert(&mut self, tag: u32, pos: u32) -> bool {
        let mask = self.mask();
        let mut carry = Bucket { tag, pos };
        let mut at = self.home(tag);
        let mut dist = 0;
        for _ in 0..self.buckets.len() {
            let Some(slot) = self.buckets.get_mut(at) else {
                return false;
            };
            if slot.pos == EMPTY {
                *slot = carry;
                return true;
            }
            let theirs = distance(mask, at, slot.tag);
            if theirs < dist {
                // Take from the richer entry and carry it on.
                core::mem::swap(slot, &mut carry);
                dist = theirs;
            }
            at = (at + 1) & mask;
            dist += 1;
        }
        false
    }

    /// Empty bucket `at` and shift the run after it back by one.
    pub(crate) fn remove_at(&mut self, mut at: usize) {
        for _ in 0..self.buckets.len() {
            let next = (at + 1) & self.mask();
            let b = self.bucket(next);
            let stays = b.pos == EMPTY || self.distance(next, b.tag) == 0;
            if let Some(slot) = self.buckets.get_mut(at) {
                *slot = if stays { Bucket::VACANT } else { b };
            }
            if stays {
                return;
            }
            at = next;
        }
    }

    /// Point bucket `at` at a new entry position (after the entry moved).
    pub(crate) fn set_pos(&mut self, at: usize, pos: u32) {
        if let Some(slot) = self.buckets.get_mut(at) {
            slot.pos = pos;
        }
    }

    /// Test helper: every structural invariant, checked from scratch.
    #[cfg(test)]
    pub(crate) fn check(&self, entries: usize, mut tag_of: impl FnMut(u32) -> Option<u32>) {
        let mut seen = std::vec![false; entries];
        for (at, b) in self.buckets.iter().enumerate() {
            if b.pos == EMPTY {
                continue;
            }
            let pos = b.pos as usize;
            assert!(pos < entries, "bucket {at} points past the entries");
            assert!(!seen[pos], "entry {pos} indexed twice");
            seen[pos] = true;
            assert_eq!(tag_of(b.pos), Some(b.tag), "stale tag in bucket {at}");
            // No empty bucket and no poorer entry between home and here.
            let d = self.distance(at, b.tag);
            if d > 0 {
                let prev = self.bucket(at.wrapping_sub(1));
                assert!(prev.pos != EMPTY, "gap before bucket {at}");
                assert!(
                    self.distance(at.wrapping_sub(1) & self.mask(), prev.tag) + 1 >= d,
                    "Robin Hood order broken at {at}"
                );
            }
        }
        assert!(seen.iter().all(|&s| s), "an entry is not indexed");
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn colliding_tags_insert_find_remove() {
        let mut ix = Index::<[Bucket; 8]>::new();
        let ix: &mut Index = &mut ix;
        // Tags 1, 9, 17 share home bucket 1; tag 2 wants bucket 2.
        let tags = [1u32, 9, 2, 17, 7, 15];
        for (pos, &tag) in tags.iter().enumerate() {
            assert!(ix.insert(tag, pos as u32));
            ix.check(pos + 1, |p| tags.get(p as usize).copied());
        }
        for (pos, &tag) in tags.iter().enumerate() {
            let (at, found) = ix.find(tag, |p| p == pos as u32).expect("present");
            assert_eq!(ix.bucket(at).pos, pos as u32);
            assert_eq!(found, pos as u32);
        }
        assert_eq!(ix.find(25, |_| true), None);
        // Remove the head of the collision run; the rest shift back.
        let (at, _) = ix.find(1, |p| p == 0).unwrap();
        ix.remove_at(at);
        assert_eq!(ix.find(1, |p| p == 0), None);
        for (pos, &tag) in tags.iter().enumerate().skip(1) {
            assert!(ix.find(tag, |p| p == pos as u32).is_some(), "tag {tag}");
        }
    }

    #[test]
    fn full_index_refuses_and_wraps() {
        let mut ix = Index::<[Bucket; 4]>::new();
        let ix: &mut Index = &mut ix;
        for pos in 0..4 {
            // All home at bucket 3: the run wraps to 0, 1, 2.
            assert!(ix.insert(3, pos));
        }
        assert!(!ix.insert(3, 9));
        for pos in 0..4 {
            assert!(ix.find(3, |p| p == pos).is_some());
        }
        assert_eq!(ix.find(2, |_| true), None);
    }
}
