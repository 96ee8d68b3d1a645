//! Running one piece of work on a stack of its own that is unmapped when the
//! work is done.
//!
//! The relay's core is 1.4 MiB and Rust builds such a value on the stack
//! before moving it into its `Box`. Built on the main thread, those pages
//! would stay resident for the process's life; a thread's stack is unmapped
//! when it is joined. `std::thread` would do, but brings its whole machinery
//! (thread names, handles, spawn hooks, the stack-overflow thread table:
//! ~18 KB on MIPS) for one call at start-up, so this is a bare
//! `pthread_create(3)` / `pthread_join(3)`.

use core::ffi::c_void;
use core::mem::MaybeUninit;
use std::io;

/// The work, behind one thin pointer the C start routine can carry.
type Work<'a> = &'a mut (dyn FnMut() + Send);

/// Run `work` on a new thread with a `stack_bytes` stack and wait for it.
pub fn run_on_own_stack(stack_bytes: usize, mut work: Work<'_>) -> io::Result<()> {
    extern "C" fn start(arg: *mut c_void) -> *mut c_void {
        // SAFETY: `arg` is the `&mut Work` that `run_on_own_stack` passed to
        // pthread_create; it outlives this thread, which is joined before
        // `run_on_own_stack` returns, and nothing else uses it meanwhile.
        let work = unsafe { &mut *arg.cast::<Work<'_>>() };
        work();
        core::ptr::null_mut()
    }
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_attr_init initializes the attribute object it is
    // given; it is only used after a success, and destroyed once below.
    let ret = unsafe { libc::pthread_attr_init(attr.as_mut_ptr()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    let mut thread = MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: `attr` was initialized above. `start` only dereferences its
    // argument as the `Work` it is, which lives on this frame until the
    // thread has been joined (or was never created).
    let ret = unsafe {
        match libc::pthread_attr_setstacksize(attr.as_mut_ptr(), stack_bytes) {
            0 => libc::pthread_create(
                thread.as_mut_ptr(),
                attr.as_ptr(),
                start,
                (&raw mut work).cast(),
            ),
            e => e,
        }
    };
    // SAFETY: `attr` was initialized and is not used after this.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    // SAFETY: pthread_create succeeded, so `thread` names a joinable thread
    // that has not been joined or detached.
    let ret = unsafe { libc::pthread_join(thread.assume_init(), core::ptr::null_mut()) };
    match ret {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn runs_on_a_big_stack() {
        let mut sum = 0u64;
        run_on_own_stack(8 << 20, &mut || {
            // 3 MiB on the stack (twice, unoptimized): more than a default
            // thread's 2 MiB.
            let big = std::hint::black_box([1u8; 3 << 20]);
            sum = big.iter().map(|&b| u64::from(b)).sum();
        })
        .unwrap();
        assert_eq!(sum, 3 << 20);
        // A stack the C library refuses is an error, not a crash.
        assert!(run_on_own_stack(1, &mut || {}).is_err());
    }
}
