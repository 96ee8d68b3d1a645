//! Everything that talks to the Linux kernel: the crate's only `unsafe` and
//! its only use of `libc`.
//!
//! Each submodule wraps one kernel facility behind a safe API sized for the
//! event loops: no allocation after start-up, plain `std::io::Error` on
//! failure, file descriptors owned by `std::os::fd::OwnedFd` so they close on
//! drop. Every `unsafe` block carries a `// SAFETY:` comment. Constants come
//! from `libc` (never literal numbers) and integer types that differ between
//! glibc and musl or between 32- and 64-bit targets are converted with
//! `as _`, so the module builds for x86_64, aarch64, armv7 and (big- and
//! little-endian) MIPS.
//!
//! - [`clock`]: `CLOCK_BOOTTIME` as the core's `Instant`.
//! - [`random`]: `getrandom(2)` behind the core's `Rng` trait.
//! - [`udp`]: UDP sockets with Teredo's socket options, and batched
//!   `recvmmsg(2)` / `sendmmsg(2)`.
//! - [`raw6`]: the raw IPv6 socket a server forwards native packets through.
//! - [`poll`]: `poll(2)` over a few descriptors.
//! - [`signal`]: SIGINT, SIGTERM, SIGHUP and SIGUSR1 as a readable descriptor.
//! - [`spawn`]: running the client's hook (`posix_spawn(3)`, reaped without
//!   blocking).
//! - [`syslog`]: the system log, as RFC 3164 datagrams to `/dev/log`.
//! - [`daemon`]: detaching from the terminal, the locked pid file.
//! - [`ifaddr`], [`route`]: start-up checks (local IPv4 addresses and their
//!   directed broadcasts; whether IPv6 has somewhere to go).
//! - [`tun`]: the tunnel interface of the client and the relay
//!   (`/dev/net/tun`).
//! - [`caps`], [`user`]: dropping root after set-up (capability sets,
//!   `prctl(2)` switches, user look-up, `chroot(2)`, user and group IDs).
//! - [`stack`]: a piece of work on a thread whose stack is unmapped after.
//! - [`netlink`]: rtnetlink requests (link, IPv6 addresses, IPv6 routes),
//!   the IPv4 address dump, and IPv4 address / route notifications.

use std::io;

pub mod caps;
pub mod clock;
pub mod daemon;
pub mod ifaddr;
pub mod netlink;
pub mod poll;
pub mod random;
pub mod raw6;
pub mod route;
pub mod signal;
pub mod spawn;
pub mod stack;
pub mod syslog;
pub mod tun;
pub mod udp;
pub mod user;

/// The C convention "-1 and errno" as an `io::Result`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// [`cvt`] for calls returning `ssize_t`; a success is never negative.
fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

/// The byte length of a C struct, as the `socklen_t` that socket calls take.
fn socklen<T>() -> libc::socklen_t {
    // Socket address and option structs are a few dozen bytes: no truncation.
    core::mem::size_of::<T>() as libc::socklen_t
}
