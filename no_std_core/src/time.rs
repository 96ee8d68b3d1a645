//! The core's clock types.
//!
//! The core never reads a clock: every entry point takes `now: Instant`. The
//! Linux glue feeds it from `CLOCK_BOOTTIME` (so NAT-refresh timers keep
//! counting while a router is suspended); simulations feed it virtual time.
//! Millisecond resolution is ample for Teredo, whose timers are whole seconds,
//! and a `u64` of milliseconds does not wrap in any deployment's lifetime.

use core::ops::{Add, AddAssign, Sub};

/// A point in time, in milliseconds since an arbitrary epoch chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant {
    millis: u64,
}

/// A span of time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration {
    millis: u64,
}

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant { millis: 0 };

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant { millis }
    }

    /// An instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Instant {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Milliseconds since the epoch.
    pub const fn total_millis(self) -> u64 {
        self.millis
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration {
            millis: self.millis.saturating_sub(earlier.millis),
        }
    }

    /// `self - d`, clamped at the epoch. Used to back-date new peer entries
    /// (RFC 4380 §5.2.3, §5.2.6: "now − 30 s").
    pub const fn saturating_sub(self, d: Duration) -> Instant {
        Instant {
            millis: self.millis.saturating_sub(d.millis),
        }
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration { millis: 0 };

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Duration { millis }
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration {
            millis: secs.saturating_mul(1000),
        }
    }

    /// The duration in milliseconds.
    pub const fn total_millis(self) -> u64 {
        self.millis
    }

    /// The duration in whole seconds, rounded down.
    pub const fn as_secs(self) -> u64 {
        self.millis / 1000
    }
}

/// The earlier of two optional deadlines, `None` meaning "no deadline":
/// how every `poll_timeout` merges the timers of its parts.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant {
            millis: self.millis.saturating_add(d.millis),
        }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an `earlier` that is in fact later gives zero.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration {
            millis: self.millis.saturating_add(d.millis),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_secs(10);
        assert_eq!(
            t + Duration::from_millis(1500),
            Instant::from_millis(11_500)
        );
        assert_eq!(Instant::from_secs(1) - t, Duration::ZERO);
        assert_eq!(t - Instant::from_secs(4), Duration::from_secs(6));
        assert_eq!(
            Instant::from_secs(5).saturating_sub(Duration::from_secs(30)),
            Instant::ZERO
        );
        assert_eq!(
            Instant::from_millis(u64::MAX) + Duration::from_secs(1),
            Instant::from_millis(u64::MAX)
        );
        assert_eq!(Duration::from_millis(2999).as_secs(), 2);
    }
}
