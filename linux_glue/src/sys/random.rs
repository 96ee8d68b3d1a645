//! Randomness from the kernel's CSPRNG, `getrandom(2)`.

use std::io;

use shipworm_core::nonce::Rng;

/// Fill `buf` with random bytes from `getrandom(2)`.
///
/// Blocks only in early boot, until the kernel's pool is first seeded; that
/// is the point of using it rather than `/dev/urandom`, which would hand out
/// guessable bytes then (RFC 5991 §3.1 and RFC 4380 §5.2.2 want nonces and
/// flag bits an attacker cannot predict). Fails with `ENOSYS` on kernels
/// older than 3.17.
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..) {
        if rest.is_empty() {
            break;
        }
        // SAFETY: `rest` is a valid, writable region of `rest.len()` bytes.
        let ret = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match super::cvt_size(ret) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The core's [`Rng`], backed by [`fill`].
#[derive(Debug)]
pub struct OsRng(());

impl OsRng {
    /// Check once that `getrandom(2)` works, so the infallible
    /// [`Rng::fill_bytes`] cannot meet a missing system call later.
    pub fn new() -> io::Result<OsRng> {
        fill(&mut [0u8; 1])?;
        Ok(OsRng(()))
    }
}

impl Rng for OsRng {
    /// # Panics
    ///
    /// If `getrandom(2)` fails although [`OsRng::new`] saw it work. With flags
    /// 0 and a valid buffer the kernel has no such error, and carrying on
    /// with predictable nonces would be worse than stopping.
    fn fill_bytes(&mut self, buf: &mut [u8]) {
        if let Err(e) = fill(buf) {
            panic!("getrandom(2) failed: {e}");
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn fills_whole_buffer_with_fresh_bytes() {
        let mut rng = OsRng::new().unwrap();
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        rng.fill_bytes(&mut a);
        rng.fill_bytes(&mut b);
        assert_ne!(a, b);
        // 64 zero bytes at the end would mean a short fill (2^-64 by chance).
        assert_ne!(a[32..], [0u8; 32]);
        fill(&mut []).unwrap();
    }
}
