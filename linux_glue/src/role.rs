//! What every role's event loop shares: how it fails, and what it does with
//! signals.
//!
//! Each role (`server`, `client`, `relay`) blocks SIGINT, SIGTERM, SIGUSR1 and
//! SIGHUP and reads them from a signalfd in its poll loop; the dispatch is the
//! same everywhere and lives here once: stop on SIGINT/SIGTERM, report status
//! on SIGUSR1 (never die of it, as Miredo does), reload on SIGHUP.

use core::fmt;

use log::info;

use crate::sys::signal::{Signal, Signals};

/// Why a role stopped other than by a signal.
#[derive(Debug)]
pub enum Error {
    /// A start-up check failed or a socket could not be set up: bad
    /// configuration for this host (exit status 2).
    Startup(String),
    /// The event loop could not go on (exit status 1).
    Runtime(String),
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Startup(_) => 2,
            Error::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Startup(m) | Error::Runtime(m) => f.write_str(m),
        }
    }
}

/// A role's answers to the signals it handles.
pub trait SignalHandler {
    /// The role's signal descriptor.
    fn signals(&self) -> &Signals;
    /// SIGUSR1: log the role's state and counters.
    fn on_status(&mut self);
    /// SIGHUP: read the configuration again and apply what changed.
    fn on_reload(&mut self);
}

/// Handles every pending signal; `Ok(true)` means SIGINT or SIGTERM arrived
/// and the loop must stop.
pub fn handle_signals(role: &mut impl SignalHandler) -> Result<bool, Error> {
    loop {
        let signal = role
            .signals()
            .read()
            .map_err(|e| Error::Runtime(format!("cannot read signals: {e}")))?;
        match signal {
            None => return Ok(false),
            Some(s @ (Signal::Interrupt | Signal::Terminate)) => {
                info!("{s} received, stopping");
                return Ok(true);
            }
            Some(Signal::User1) => role.on_status(),
            Some(Signal::Hangup) => role.on_reload(),
        }
    }
}
