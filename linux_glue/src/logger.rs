//! Log lines on standard error (`shipworm[<pid>]: <level>: <message>`) or
//! to syslog ([`use_syslog`]: `--syslog`, `SyslogFacility`).
//!
//! The `log` facade's own level filter does the filtering, so the logger
//! itself only formats; [`set_level`] changes it at any time (SIGHUP).
//! Each line is assembled in a fixed buffer and written with one
//! `write(2)`, so lines from concurrent processes sharing a log file do not
//! interleave mid-line. Syslog gets the message alone: [`syslog::frame`]
//! adds the name, the process id and the time, and the level becomes the
//! severity (trace and debug both `LOG_DEBUG`). Without a syslog daemon
//! the messages are dropped; standard error is used only if no socket can
//! be created at all.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::sys::syslog::{self, Facility, Severity, Syslog};

/// Longest line written; longer messages are cut (and end in `…`).
const LINE_MAX: usize = 512;

struct StderrLogger {
    pid: AtomicU32,
    /// Set once by [`use_syslog`].
    syslog: OnceLock<Syslog>,
}

static LOGGER: StderrLogger = StderrLogger {
    pid: AtomicU32::new(0),
    syslog: OnceLock::new(),
};

/// Send the `log` macros to standard error, showing `level` and above.
/// Calling it again (e.g. after `fork`) takes the new process id and
/// changes the level.
pub fn init(level: LevelFilter) {
    LOGGER.pid.store(std::process::id(), Ordering::Relaxed);
    // Fails only if a logger is already installed: ours, from an earlier call.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Log to syslog with `facility` from now on instead of standard error
/// (only the first call counts). Standard error stays if no socket can be
/// created.
pub fn use_syslog(facility: Facility) {
    match Syslog::open(Path::new(syslog::DEV_LOG), facility) {
        Ok(s) => {
            let _ = LOGGER.syslog.set(s);
        }
        Err(e) => log::warn!("cannot log to syslog: {e}"),
    }
}

/// Show `level` and above from now on.
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    /// One `write_fmt` of the message for both destinations: standard
    /// error gets the name, process id and level in front, syslog the
    /// message alone (its framing adds the rest).
    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = Line::default();
        let pid = self.pid.load(Ordering::Relaxed);
        let syslog = self.syslog.get();
        if syslog.is_none() {
            let level = match record.level() {
                Level::Error => "error",
                Level::Warn => "warn",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            // Line::write_str never fails; it truncates instead.
            let _ = write!(line, "shipworm[{pid}]: {level}: ");
        }
        let _ = line.write_fmt(*record.args());
        let text = line.finish();
        let Some(syslog) = syslog else {
            let _ = std::io::stderr().write_all(text);
            return;
        };
        let severity = match record.level() {
            Level::Error => Severity::Error,
            Level::Warn => Severity::Warning,
            Level::Info => Severity::Info,
            Level::Debug | Level::Trace => Severity::Debug,
        };
        // Without the newline; the buffer holds valid UTF-8 (cut on a
        // character boundary).
        let text = text.get(..text.len().saturating_sub(1)).unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        syslog.send(
            severity,
            pid,
            now,
            core::str::from_utf8(text).unwrap_or_default(),
        );
    }

    fn flush(&self) {}
}

/// A line buffer that keeps what fits and marks the cut.
struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
    cut: bool,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            buf: [0; LINE_MAX],
            len: 0,
            cut: false,
        }
    }
}

impl Line {
    const ELLIPSIS: &'static str = "…";

    /// The line with its newline (and the cut mark if it was cut).
    fn finish(&mut self) -> &[u8] {
        let room = LINE_MAX - 1 - Self::ELLIPSIS.len();
        let mut end = self.len;
        if self.cut {
            end = end.min(room);
            // Cut on a character boundary so the line stays valid UTF-8.
            while end > 0 && self.buf.get(end).is_some_and(|b| b & 0xc0 == 0x80) {
                end -= 1;
            }
            for (dst, src) in self.buf.iter_mut().skip(end).zip(Self::ELLIPSIS.bytes()) {
                *dst = src;
            }
            end += Self::ELLIPSIS.len();
        }
        if let Some(nl) = self.buf.get_mut(end) {
            *nl = b'\n';
        }
        self.buf.get(..end + 1).unwrap_or(&self.buf)
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep one byte for the newline.
        let free = LINE_MAX - 1 - self.len;
        let take = s.len().min(free);
        if take < s.len() {
            self.cut = true;
        }
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + take),
            s.as_bytes().get(..take),
        ) {
            dst.copy_from_slice(src);
            self.len += take;
        }
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn short_line_gets_newline() {
        let mut l = Line::default();
        write!(l, "shipworm[7]: info: {}", 42).unwrap();
        assert_eq!(l.finish(), b"shipworm[7]: info: 42\n");
    }

    #[test]
    fn long_line_is_cut_on_char_boundary() {
        let mut l = Line::default();
        let long = "é".repeat(LINE_MAX);
        write!(l, "x{long}").unwrap();
        let out = l.finish();
        assert!(out.len() <= LINE_MAX);
        let text = std::str::from_utf8(out).unwrap();
        assert!(text.ends_with("é…\n"), "{text:?}");
    }
}
