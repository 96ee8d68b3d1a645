//! Logging to the local system log: RFC 3164 messages written to the
//! `/dev/log` datagram socket ourselves.
//!
//! Not through the C library's `syslog(3)`: musl's pulls in `printf`,
//! `strftime` and the whole time-zone reader, about 20 KB of a router
//! binary for one `send(2)`. What it does that matters is small and lives
//! here: an `AF_UNIX` datagram socket connected once, at [`Syslog::open`]
//! (before a `chroot` hides `/dev/log`), reconnected and the message sent
//! again when the daemon has restarted (`ECONNREFUSED`, `ENOTCONN`,
//! `ECONNRESET`, `EPIPE`, as musl does), and a message dropped silently
//! when no daemon listens (no console fallback, as before).
//!
//! # Message format
//!
//! `<PRI>Mmm dd hh:mm:ss shipworm[PID]: text` ([`frame`]): PRI is
//! facility × 8 + severity (RFC 3164 §4.1.1), then the TIMESTAMP (§4.1.2)
//! and the tag with the process id, as the C libraries write it.
//!
//! The timestamp is in UTC: local time would need the C library's
//! time-zone code again. RFC 3164 §4.3.2 lets the receiver add its own,
//! and the local daemons do not use ours by default (rsyslog's `imuxsock`
//! ignores it, journald takes the arrival time, OpenWrt's `logd` strips
//! it and stamps the message itself); busybox `syslogd` is the exception
//! that keeps a well-formed one. The field is still sent, because OpenWrt's
//! `logd` removes the first 16 bytes of every local message whose 16th byte
//! is a space, without checking they are a timestamp: a message starting
//! `shipworm[1234]: ` (any 4-digit process id) would lose its tag there.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The local syslog socket.
pub const DEV_LOG: &str = "/dev/log";

/// The tag in front of every message (`openlog`'s identity).
const IDENT: &str = "shipworm";

/// A syslog facility, as `SyslogFacility` and `--syslog=` name them
/// (Miredo's list). Holds the C library's `LOG_*` value: the facility
/// number already multiplied by 8.
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
        if name.eq_ignore_ascii_case("uucp") {
            return Some(Facility(libc::LOG_UUCP));
        }
        Self::NAMES
            .iter()
            .zip(Self::CODES)
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, code)| Facility(code))
    }
}

/// Severity of one message (RFC 3164 §4.1.1 numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `LOG_ERR` (3).
    Error = 3,
    /// `LOG_WARNING` (4).
    Warning = 4,
    /// `LOG_INFO` (6).
    Info = 6,
    /// `LOG_DEBUG` (7; debug and trace).
    Debug = 7,
}

/// A connection to the syslog daemon.
#[derive(Debug)]
pub struct Syslog {
    socket: UnixDatagram,
    path: PathBuf,
    facility: Facility,
}

impl Syslog {
    /// A socket connected to `path` ([`DEV_LOG`] outside tests) at once, so
    /// it exists before a `chroot`. No daemon listening is not an error:
    /// [`send`](Syslog::send) tries to connect again each time. Fails only
    /// if no socket can be created.
    pub fn open(path: &Path, facility: Facility) -> io::Result<Syslog> {
        let socket = UnixDatagram::unbound()?;
        let _ = socket.connect(path);
        Ok(Syslog {
            socket,
            path: path.to_owned(),
            facility,
        })
    }

    /// Send `message` from process `pid` with `severity`, at `unix_time`
    /// (seconds since 1970). Dropped if the daemon cannot be reached.
    pub fn send(&self, severity: Severity, pid: u32, unix_time: u64, message: &str) {
        let mut datagram = Vec::with_capacity(message.len() + 48);
        frame(
            &mut datagram,
            self.facility,
            severity,
            pid,
            unix_time,
            message,
        );
        if let Err(e) = self.socket.send(&datagram) {
            // The daemon restarted (its old socket is gone) or was not
            // there at `open`: connect again and retry once.
            let lost = matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::NotConnected
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            );
            if lost && self.socket.connect(&self.path).is_ok() {
                let _ = self.socket.send(&datagram);
            }
        }
    }
}

/// Append the datagram for `message` to `out`:
/// `<PRI>Mmm dd hh:mm:ss shipworm[PID]: message` (see the module
/// documentation). A NUL in `message`, which daemons would take as its
/// end, becomes U+FFFD.
pub fn frame(
    out: &mut Vec<u8>,
    facility: Facility,
    severity: Severity,
    pid: u32,
    unix_time: u64,
    message: &str,
) {
    out.push(b'<');
    // Facility codes are at most 23 × 8; severities at most 7.
    decimal(out, facility.0 as u32 + severity as u32, 1, b'0');
    out.push(b'>');
    timestamp(out, unix_time);
    out.push(b' ');
    out.extend_from_slice(IDENT.as_bytes());
    out.push(b'[');
    decimal(out, pid, 1, b'0');
    out.extend_from_slice(b"]: ");
    for (i, part) in message.split('\0').enumerate() {
        if i > 0 {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
        out.extend_from_slice(part.as_bytes());
    }
}

/// RFC 3164 §4.1.2 TIMESTAMP of `unix_time` in UTC: `Mmm dd hh:mm:ss`,
/// the day padded with a space.
fn timestamp(out: &mut Vec<u8>, unix_time: u64) {
    const MONTHS: &[u8; 36] = b"JanFebMarAprMayJunJulAugSepOctNovDec";
    // 32-bit arithmetic from here (MIPS32 has no 64-bit division): days
    // past year 11 million are clamped.
    let days = u32::try_from(unix_time / 86_400).unwrap_or(u32::MAX);
    let (month, day) = month_day(days);
    let start = usize::from(month.saturating_sub(1)) * 3;
    out.extend_from_slice(MONTHS.get(start..start + 3).unwrap_or(b"Jan"));
    out.push(b' ');
    decimal(out, day.into(), 2, b' ');
    let seconds = (unix_time % 86_400) as u32;
    for (i, part) in [seconds / 3600, seconds / 60 % 60, seconds % 60]
        .into_iter()
        .enumerate()
    {
        out.push(if i == 0 { b' ' } else { b':' });
        decimal(out, part, 2, b'0');
    }
}

/// Month (1–12) and day (1–31) of the proleptic Gregorian calendar for a
/// count of days since 1970-01-01: the usual era arithmetic (400-year
/// cycles of 146,097 days, years counted from March so the leap day ends
/// the year).
fn month_day(days: u32) -> (u8, u8) {
    // Shift the epoch to 0000-03-01: 719,468 days before 1970-01-01.
    let z = days.saturating_add(719_468);
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 0..=11, with the 153-day five-month pattern.
    let m = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * m + 2) / 5 + 1;
    let month = if m < 10 { m + 3 } else { m - 9 };
    (month as u8, day as u8)
}

/// `n` in decimal, padded on the left with `pad` to `width` digits.
fn decimal(out: &mut Vec<u8>, n: u32, width: usize, pad: u8) {
    let mut digits = [pad; 10];
    let mut rest = n;
    let mut len = 0;
    while len == 0 || rest > 0 {
        len += 1;
        if let Some(d) = digits.get_mut(10 - len) {
            *d = b'0' + (rest % 10) as u8;
        }
        rest /= 10;
    }
    let len = len.max(width).min(10);
    out.extend_from_slice(digits.get(10 - len..).unwrap_or_default());
}

#[cfg(test)]
mod test {
    use super::*;

    fn framed(f: Facility, s: Severity, pid: u32, t: u64, msg: &str) -> Vec<u8> {
        let mut out = Vec::new();
        frame(&mut out, f, s, pid, t, msg);
        out
    }

    #[test]
    fn facility_names() {
        assert_eq!(Facility::from_name("daemon"), Some(Facility::DAEMON));
        assert_eq!(
            Facility::from_name("LOCAL7"),
            Some(Facility(libc::LOG_LOCAL7))
        );
        assert_eq!(Facility::from_name("uucp"), Some(Facility(libc::LOG_UUCP)));
        assert_eq!(Facility::from_name("UuCp"), Some(Facility(libc::LOG_UUCP)));
        assert_eq!(Facility::from_name("console"), None);
        assert_eq!(Facility::from_name(""), None);
        for name in Facility::NAMES {
            assert!(Facility::from_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn frames() {
        // daemon (3) × 8 + info (6) = 30; 1970-01-01 00:00:00.
        assert_eq!(
            framed(Facility::DAEMON, Severity::Info, 1234, 0, "up"),
            b"<30>Jan  1 00:00:00 shipworm[1234]: up"
        );
        // kern (0) + err (3) = 3; 2000-02-29 23:59:59 (a 400-year leap day).
        assert_eq!(
            framed(
                Facility::from_name("kern").unwrap(),
                Severity::Error,
                7,
                951_868_799,
                "a"
            ),
            b"<3>Feb 29 23:59:59 shipworm[7]: a"
        );
        // local7 (23) × 8 + debug (7) = 191; 2024-12-31 12:34:56.
        assert_eq!(
            framed(
                Facility::from_name("local7").unwrap(),
                Severity::Debug,
                u32::MAX,
                1_735_648_496,
                "x % y"
            ),
            b"<191>Dec 31 12:34:56 shipworm[4294967295]: x % y"
        );
        // user (1) × 8 + warning (4) = 12; 2038-01-19 03:14:08, past i32.
        assert_eq!(
            framed(
                Facility::from_name("user").unwrap(),
                Severity::Warning,
                42,
                2_147_483_648,
                ""
            ),
            b"<12>Jan 19 03:14:08 shipworm[42]: "
        );
    }

    #[test]
    fn nul_is_replaced() {
        assert_eq!(
            framed(Facility::DAEMON, Severity::Info, 1, 0, "a\0b\0"),
            "<30>Jan  1 00:00:00 shipworm[1]: a\u{fffd}b\u{fffd}".as_bytes()
        );
        assert_eq!(
            framed(Facility::DAEMON, Severity::Info, 1, 0, "\0"),
            "<30>Jan  1 00:00:00 shipworm[1]: \u{fffd}".as_bytes()
        );
    }

    #[test]
    fn calendar_matches_day_counting() {
        // Walk 1970..2200 a day at a time with the month lengths.
        let mut days = 0u32;
        for year in 1970..2200u64 {
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            for (m, len) in [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ]
            .into_iter()
            .enumerate()
            {
                for d in 1..=len {
                    assert_eq!(month_day(days), (m as u8 + 1, d), "day {days}");
                    days += 1;
                }
            }
        }
        // Far dates do not panic.
        let _ = framed(Facility::DAEMON, Severity::Info, 1, u64::MAX, "");
    }

    /// A temporary directory for a socket standing in for `/dev/log`.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("shipworm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    fn receive(daemon: &UnixDatagram) -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let n = daemon.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn sends_and_reconnects_to_a_restarted_daemon() {
        let dir = temp_dir("syslog");
        let path = dir.join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        daemon
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let log = Syslog::open(&path, Facility::DAEMON).unwrap();
        log.send(Severity::Warning, 99, 60, "first");
        assert_eq!(receive(&daemon), b"<28>Jan  1 00:01:00 shipworm[99]: first");
        // The daemon restarts: a new socket file at the same path.
        drop(daemon);
        std::fs::remove_file(&path).unwrap();
        let daemon = UnixDatagram::bind(&path).unwrap();
        daemon
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        log.send(Severity::Error, 99, 61, "second");
        assert_eq!(
            receive(&daemon),
            b"<27>Jan  1 00:01:01 shipworm[99]: second"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_daemon_drops_then_connects_when_one_appears() {
        let dir = temp_dir("nosyslog");
        let path = dir.join("log");
        let log = Syslog::open(&path, Facility::DAEMON).unwrap();
        // Nobody listening: dropped, no error, no panic.
        log.send(Severity::Info, 5, 0, "lost");
        let daemon = UnixDatagram::bind(&path).unwrap();
        daemon
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        log.send(Severity::Info, 5, 0, "found");
        assert_eq!(receive(&daemon), b"<30>Jan  1 00:00:00 shipworm[5]: found");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
