//! Logging to the system log through the C library's `openlog(3)` and
//! `syslog(3)`.
//!
//! The C library's client rather than our own `/dev/log` datagram writer:
//! it is already linked (glibc and musl both have it, so it costs no
//! binary size), it formats the RFC 3164 header the local daemon expects
//! (OpenWrt's `logd` and busybox `syslogd` parse nothing else), and it
//! reconnects by itself when the daemon restarts and its socket is
//! replaced, which a hand-written writer would have to redo.

use std::ffi::CString;

/// A syslog facility, as `SyslogFacility` and `--syslog=` name them
/// (Miredo's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(libc::c_int);

impl Facility {
    /// `daemon`: Miredo's default and ours.
    pub const DAEMON: Facility = Facility(libc::LOG_DAEMON);

    /// Every accepted name, for messages.
    pub const NAMES: [&'static str; 19] = [
        "auth", "authpriv", "cron", "daemon", "ftp", "kern", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7", "lpr", "mail", "news", "syslog", "user",
    ];

    const CODES: [libc::c_int; 19] = [
        libc::LOG_AUTH,
        libc::LOG_AUTHPRIV,
        libc::LOG_CRON,
        libc::LOG_DAEMON,
        libc::LOG_FTP,
        libc::LOG_KERN,
        libc::LOG_LOCAL0,
        libc::LOG_LOCAL1,
        libc::LOG_LOCAL2,
        libc::LOG_LOCAL3,
        libc::LOG_LOCAL4,
        libc::LOG_LOCAL5,
        libc::LOG_LOCAL6,
        libc::LOG_LOCAL7,
        libc::LOG_LPR,
        libc::LOG_MAIL,
        libc::LOG_NEWS,
        libc::LOG_SYSLOG,
        libc::LOG_USER,
    ];

    /// The facility called `name` (case-insensitive; `uucp` too).
    pub fn from_name(name: &str) -> Option<Facility> {
        let name = name.to_ascii_lowercase();
        if name == "uucp" {
            return Some(Facility(libc::LOG_UUCP));
        }
        Self::NAMES
            .iter()
            .zip(Self::CODES)
            .find(|(n, _)| **n == name)
            .map(|(_, code)| Facility(code))
    }
}

/// Severity of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `LOG_ERR`.
    Error,
    /// `LOG_WARNING`.
    Warning,
    /// `LOG_INFO`.
    Info,
    /// `LOG_DEBUG` (debug and trace).
    Debug,
}

/// Identify as `shipworm` with the process id and send everything to
/// `facility` from now on. The connection is opened at once (`LOG_NDELAY`)
/// so it exists before a `chroot` hides `/dev/log`.
pub fn open(facility: Facility) {
    // SAFETY: the identity is a 'static NUL-terminated string, as openlog
    // keeps the pointer; the flags and facility are libc constants.
    unsafe {
        libc::openlog(
            c"shipworm".as_ptr(),
            libc::LOG_PID | libc::LOG_NDELAY,
            facility.0,
        )
    }
}

/// Log `message` with `severity` (to the facility given to [`open`]).
pub fn send(severity: Severity, message: &str) {
    let priority = match severity {
        Severity::Error => libc::LOG_ERR,
        Severity::Warning => libc::LOG_WARNING,
        Severity::Info => libc::LOG_INFO,
        Severity::Debug => libc::LOG_DEBUG,
    };
    // An interior NUL would end the C string early: replace it.
    let text = CString::new(message.replace('\0', "\u{fffd}")).unwrap_or_default();
    // SAFETY: "%s" consumes exactly the one C-string argument given, which
    // is NUL-terminated and lives across the call; the message is never
    // used as the format, so `%` in it is harmless.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), text.as_ptr()) }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn facility_names() {
        assert_eq!(Facility::from_name("daemon"), Some(Facility::DAEMON));
        assert_eq!(
            Facility::from_name("LOCAL7"),
            Some(Facility(libc::LOG_LOCAL7))
        );
        assert_eq!(Facility::from_name("uucp"), Some(Facility(libc::LOG_UUCP)));
        assert_eq!(Facility::from_name("console"), None);
        for name in Facility::NAMES {
            assert!(Facility::from_name(name).is_some(), "{name}");
        }
    }
}
