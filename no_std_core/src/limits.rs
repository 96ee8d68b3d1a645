//! Token buckets: the rate limits every role applies to work an attacker can
//! trigger (ICMPv6 errors, new peer entries per source, ...).

use crate::time::Instant;

/// Millitokens per token. Keeping the bucket in thousandths of a token lets
/// a rate of `N` tokens per second refill exactly `N` millitokens per
/// millisecond (the core's clock resolution), so integer math loses nothing.
const MILLI: u64 = 1000;

/// A token bucket: up to `capacity` tokens, refilled at `refill_per_sec`
/// tokens per second, one token spent per allowed event.
///
/// Integer arithmetic only, saturating everywhere: a huge jump of `now` just
/// fills the bucket, and `now` going backwards refills nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TokenBucket {
    /// Largest burst, in tokens.
    capacity: u32,
    /// Refill rate, in tokens per second (= millitokens per millisecond).
    refill_per_sec: u32,
    /// Current content, in millitokens; never above `capacity * MILLI`.
    tokens: u64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl TokenBucket {
    /// A full bucket holding `capacity` tokens, refilled at `per_sec` tokens
    /// per second from `now` on. `capacity == 0` never allows anything;
    /// `per_sec == 0` allows one initial burst only.
    pub fn new(capacity: u32, per_sec: u32, now: Instant) -> Self {
        TokenBucket {
            capacity,
            refill_per_sec: per_sec,
            tokens: u64::from(capacity) * MILLI,
            last: now,
        }
    }

    /// The ICMPv6 error limiter: bucket size B = 10, rate N = 10 per second,
    /// the "small device" example of RFC 4443 §2.4(f), which makes rate
    /// limiting of ICMPv6 error messages a MUST.
    pub fn icmp_default(now: Instant) -> Self {
        TokenBucket::new(10, 10, now)
    }

    /// Spend one token if there is one: `true` means the event may happen.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= MILLI {
            self.tokens -= MILLI;
            true
        } else {
            false
        }
    }

    /// Add the tokens earned since `last`, capped at the capacity.
    fn refill(&mut self, now: Instant) {
        // `now` before `last` means the caller's clock stepped back. Refill
        // nothing but re-anchor at `now`: if we kept the old anchor the bucket
        // would stay frozen until the clock caught up (silencing a limiter
        // for possibly hours), while re-anchoring can at worst count the
        // stepped-back interval twice, which the capacity cap bounds to one
        // extra burst.
        let elapsed_ms = now.saturating_duration_since(self.last).total_millis();
        let earned = elapsed_ms.saturating_mul(u64::from(self.refill_per_sec));
        let cap = u64::from(self.capacity) * MILLI;
        self.tokens = self.tokens.saturating_add(earned).min(cap);
        self.last = now;
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::time::Duration;

    fn drain(b: &mut TokenBucket, now: Instant) -> u32 {
        let mut n = 0;
        while b.try_take(now) {
            n += 1;
            assert!(n <= 1_000_000, "bucket never empties");
        }
        n
    }

    #[test]
    fn starts_full_then_limits() {
        let t0 = Instant::from_secs(100);
        let mut b = TokenBucket::new(5, 2, t0);
        assert_eq!(drain(&mut b, t0), 5);
        assert!(!b.try_take(t0));
    }

    #[test]
    fn refills_at_rate_with_millisecond_precision() {
        let t0 = Instant::from_secs(1);
        let mut b = TokenBucket::new(3, 2, t0);
        drain(&mut b, t0);
        // 2 tokens/s = one token per 500 ms.
        assert!(!b.try_take(t0 + Duration::from_millis(499)));
        assert!(b.try_take(t0 + Duration::from_millis(500)));
        assert!(!b.try_take(t0 + Duration::from_millis(500)));
        // Partial progress is kept across calls: 250 + 250 ms make a token.
        assert!(!b.try_take(t0 + Duration::from_millis(750)));
        assert!(b.try_take(t0 + Duration::from_millis(1000)));
    }

    #[test]
    fn never_exceeds_capacity() {
        let t0 = Instant::ZERO;
        let mut b = TokenBucket::new(4, 100, t0);
        drain(&mut b, t0);
        assert_eq!(drain(&mut b, t0 + Duration::from_secs(3600)), 4);
    }

    #[test]
    fn huge_time_jump_saturates() {
        let mut b = TokenBucket::new(u32::MAX, u32::MAX, Instant::ZERO);
        b.tokens = 0;
        assert!(b.try_take(Instant::from_millis(u64::MAX)));
        assert_eq!(b.tokens, u64::from(u32::MAX) * MILLI - MILLI);
    }

    #[test]
    fn clock_going_backwards_refills_nothing() {
        let t = Instant::from_secs(50);
        let mut b = TokenBucket::new(2, 1, t);
        drain(&mut b, t);
        let earlier = Instant::from_secs(10);
        assert!(!b.try_take(earlier));
        // Re-anchored at the earlier time: one second later earns one token.
        assert!(b.try_take(earlier + Duration::from_secs(1)));
        assert!(!b.try_take(earlier + Duration::from_secs(1)));
    }

    #[test]
    fn zero_capacity_and_zero_rate() {
        let t0 = Instant::ZERO;
        let mut never = TokenBucket::new(0, 1000, t0);
        assert!(!never.try_take(t0 + Duration::from_secs(10)));
        let mut once = TokenBucket::new(2, 0, t0);
        assert_eq!(drain(&mut once, t0 + Duration::from_secs(1000)), 2);
        assert!(!once.try_take(t0 + Duration::from_secs(100_000)));
    }

    #[test]
    fn icmp_default_is_rfc4443_example() {
        let t0 = Instant::from_secs(7);
        let mut b = TokenBucket::icmp_default(t0);
        assert_eq!(drain(&mut b, t0), 10);
        // N = 10/s: 100 ms per token, and one second refills the whole burst.
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert_eq!(drain(&mut b, t0 + Duration::from_millis(1100)), 10);
        // Sustained: over 10 s of one attempt per ms, about 10/s get through.
        let mut allowed = 0;
        for ms in 1..=10_000u64 {
            if b.try_take(t0 + Duration::from_millis(1100 + ms)) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 100);
    }
}
