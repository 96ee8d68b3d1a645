//! Byte layouts of everything Teredo puts on the wire.
//!
//! Shaped like smoltcp's `wire` module (and reusing it underneath for IPv6 and
//! ICMPv6 headers and checksums):
//! - a **Packet** is a checked view over a caller's buffer: `new_checked`
//!   validates lengths once, after which no accessor panics. Untrusted input
//!   must go through `new_checked`; emission must not (a reused buffer's stale
//!   bytes could make the length check lie);
//! - a **Repr** is a plain struct that `parse`s from a Packet and `emit`s into
//!   a buffer of exactly `buffer_len()` bytes.
//!
//! Every parser returns [`Error`] instead of panicking, on any input.

pub mod bubble;
pub mod echo;
pub mod encap;
pub mod icmp_error;
mod icmpv6;
pub mod ndisc;

use core::fmt;

/// Why a byte string was refused, or why an emit could not happen.
///
/// Kept small and `Copy` so role state machines can count drops by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Fewer bytes than the layout needs.
    Truncated,
    /// The bytes are there but violate the layout or a protocol rule.
    Malformed,
    /// An upper-layer checksum does not verify.
    Checksum,
    /// A well-formed packet of a kind this parser does not handle.
    Unrecognized,
    /// The output buffer is too small for what was asked to be emitted.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated",
            Error::Malformed => "malformed",
            Error::Checksum => "bad checksum",
            Error::Unrecognized => "unrecognized",
            Error::BufferTooSmall => "buffer too small",
        })
    }
}

impl core::error::Error for Error {}

/// Result of parsing or emitting wire data.
pub type Result<T> = core::result::Result<T, Error>;
