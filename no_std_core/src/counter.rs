//! The statistics counters' one operation, shared by the client and relay.

/// Add one to a counter (saturating: counters never wrap or panic).
///
/// Out of line on purpose: the roles bump counters at dozens of sites, and
/// a call is smaller than an inlined 64-bit saturating add on the 32-bit
/// routers the crate targets; a counter is never on a path where the call
/// matters.
#[inline(never)]
pub(crate) fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}
