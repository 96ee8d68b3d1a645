//! The monotonic clock that feeds the core's [`Instant`].

use shipworm_core::time::Instant;

/// Where the core's clock starts, in boot-clock time: one hour before boot.
///
/// The core's epoch is arbitrary, and it back-dates new peer entries by
/// 30 s (RFC 4380 §5.2.3, §5.2.6: "now − 30 s"), a subtraction that stops at
/// its zero. A router that starts Teredo seconds after boot would otherwise
/// see those entries clamped and its first bubbles held back.
const EPOCH_OFFSET_MS: u64 = 3_600_000;

/// Now, in milliseconds since an hour before boot.
///
/// `CLOCK_BOOTTIME` rather than `CLOCK_MONOTONIC`: it keeps counting while the
/// system is suspended, so a router waking up sees its NAT-refresh timers as
/// overdue (they are: the NAT forgot the mapping) instead of frozen. Kernels
/// older than 2.6.39 lack it; there the monotonic clock is used.
pub fn now() -> Instant {
    let millis = read(libc::CLOCK_BOOTTIME)
        .or_else(|| read(libc::CLOCK_MONOTONIC))
        .unwrap_or(0);
    Instant::from_millis(millis.saturating_add(EPOCH_OFFSET_MS))
}

/// Milliseconds on `clock`, or `None` if the kernel does not know it.
fn read(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call.
    let ret = unsafe { libc::clock_gettime(clock, &mut ts) };
    if ret != 0 {
        return None;
    }
    // Both fields are non-negative for these clocks; `try_from` keeps that an
    // assumption checked rather than a sign-extending cast.
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs.saturating_mul(1000).saturating_add(nanos / 1_000_000))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn never_goes_backwards() {
        let a = now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = now();
        assert!(a >= Instant::from_millis(EPOCH_OFFSET_MS));
        assert!((b - a).total_millis() >= 20, "{a:?} -> {b:?}");
    }
}
