//! SIGINT, SIGTERM, SIGHUP and SIGUSR1 as a descriptor the event loop polls.
//!
//! The signals are blocked and read from a `signalfd(2)` instead of being
//! caught by a handler. The loop then learns of a signal at its next `poll`
//! like any other input: no handler runs in the middle of packet processing,
//! nothing needs to be async-signal-safe, and no signal can slip in between a
//! flag check and `poll` (the race a flag set by a handler has). A blocked
//! SIGUSR1 also cannot kill the process, as its default action would.
//!
//! A signal the parent process left *ignored* stays ignored (the kernel
//! discards it before it could be queued): a shell without job control does
//! that to SIGINT for background commands, so Ctrl-C meant for the shell
//! does not stop them, and this keeps that convention.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{cvt, cvt_size};

/// A signal the loops act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: stop (Ctrl-C in a terminal).
    Interrupt,
    /// SIGTERM: stop (service managers).
    Terminate,
    /// SIGUSR1: log counters.
    User1,
    /// SIGHUP: reload the configuration (a blocked SIGHUP also cannot kill
    /// the process when its terminal goes away).
    Hangup,
}

impl Signal {
    const ALL: [(Signal, libc::c_int); 4] = [
        (Signal::Interrupt, libc::SIGINT),
        (Signal::Terminate, libc::SIGTERM),
        (Signal::User1, libc::SIGUSR1),
        (Signal::Hangup, libc::SIGHUP),
    ];
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::User1 => "SIGUSR1",
            Signal::Hangup => "SIGHUP",
        })
    }
}

/// The blocked signals, readable as a descriptor.
#[derive(Debug)]
pub struct Signals {
    fd: OwnedFd,
}

impl Signals {
    /// Block SIGINT, SIGTERM, SIGHUP and SIGUSR1 in the calling thread and open a
    /// non-blocking signalfd for them. Call it before starting any thread, so
    /// that threads inherit the mask and no thread takes the default action.
    pub fn install() -> io::Result<Signals> {
        // SAFETY: sigset_t is plain data that sigemptyset initialises next;
        // zero bytes are a valid starting value.
        let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
        // SAFETY: `set` is a valid, writable sigset_t; the signal numbers are
        // valid, so these cannot fail.
        unsafe {
            libc::sigemptyset(&mut set);
            for (_, signo) in Signal::ALL {
                libc::sigaddset(&mut set, signo);
            }
        }
        // SAFETY: `set` is initialised; a null old-set pointer is allowed.
        let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut()) };
        if ret != 0 {
            // pthread_sigmask returns the error instead of setting errno.
            return Err(io::Error::from_raw_os_error(ret));
        }
        let flags = libc::SFD_NONBLOCK | libc::SFD_CLOEXEC;
        // SAFETY: `set` is initialised; -1 asks for a new descriptor.
        let fd = cvt(unsafe { libc::signalfd(-1, &set, flags) })?;
        // SAFETY: `fd` was just returned by signalfd(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Signals { fd })
    }

    /// The next pending signal, or `None` when none is waiting.
    pub fn read(&self) -> io::Result<Option<Signal>> {
        // SAFETY: signalfd_siginfo is plain integers; all-zero is valid.
        let mut info: libc::signalfd_siginfo = unsafe { core::mem::zeroed() };
        let size = core::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: `info` is a writable buffer of exactly `size` bytes.
            let ret = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut info).cast(), size) };
            match cvt_size(ret) {
                // The kernel hands out whole records only.
                Ok(n) if n == size => break,
                Ok(_) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let signal = Signal::ALL
            .into_iter()
            .find(|&(_, signo)| u32::try_from(signo) == Ok(info.ssi_signo))
            .map(|(signal, _)| signal);
        // Only the blocked signals reach this descriptor.
        signal
            .ok_or_else(|| io::ErrorKind::InvalidData.into())
            .map(Some)
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
