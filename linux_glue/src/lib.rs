//! # shipworm
//!
//! The Linux side of Shipworm: command line, logging, the per-role event
//! loops, and [`sys`], the one module that talks to the kernel. The protocol
//! itself lives in the sans-IO crate `shipworm_core`; this crate only moves
//! bytes, time and signals between the two.
//!
//! It is a library as well as the `shipworm` binary: the `sys` API the later
//! roles need (e.g. `OsRng`, single-datagram receive) is then public API
//! rather than dead code, and tests and tools can use the same layer.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod config;
pub mod dns;
pub mod hook;
pub mod logger;
pub mod privileges;
pub mod relay;
pub mod role;
pub mod server;
pub mod status;
#[allow(unsafe_code)]
pub mod sys;
