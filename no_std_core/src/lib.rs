//! # shipworm-core
//!
//! The whole Teredo protocol (RFC 4380, updated by RFC 5991 and RFC 6081) as a
//! sans-IO library: `#![no_std]`, no `alloc`, no `unsafe`, no global state.
//!
//! The caller owns every side effect. It passes in the current time
//! ([`time::Instant`]), randomness ([`nonce::Rng`]), received bytes and output
//! buffers; the core answers with what to send where and when to be called
//! again. That keeps the protocol testable with virtual time and byte vectors,
//! and lets the same code run on OpenWrt, desktop Linux and a microcontroller.
//!
//! Layers, bottom up:
//! - [`time`]: the core's own `Instant` and `Duration`.
//! - [`addr`]: Teredo addresses (RFC 4380 §4, RFC 5991 §3.1) and the
//!   global-unicast IPv4 test (RFC 4380 §5.2.4).
//! - [`wire`]: byte layouts in smoltcp's Packet/Repr style: the Teredo UDP
//!   payload (authentication header, origin indication, IPv6 packet, RFC 6081
//!   trailers), bubbles, RS/RA, ICMPv6 echo and errors.
//! - [`nonce`]: randomness and a keyed hash behind small traits.
//! - [`limits`]: token buckets.
//! - [`peers`]: the fixed-capacity peer table (keyed hashing, FIFO queues,
//!   eviction that spares trusted peers in use).
//! - [`tunnel`]: what client and relay share on the data path: the
//!   [`tunnel::Output`] of every input, queues and bubble/echo schedules.
//! - The roles: [`server`] (stateless, RFC 4380 §5.3), [`client`]
//!   (qualification, maintenance and data path, §5.2) and [`relay`] (§5.4).
//!
//! Parsers never panic: every parser returns [`wire::Error`] on bad input, and
//! property tests plus fuzz targets hold them to it.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("features `defmt` and `log` are mutually exclusive: pick one logging backend");

#[cfg(test)]
extern crate std;

pub mod addr;
pub mod client;
mod counter;
pub mod limits;
pub mod nonce;
pub mod peers;
pub mod relay;
pub mod server;
pub mod time;
pub mod tunnel;
pub mod wire;
