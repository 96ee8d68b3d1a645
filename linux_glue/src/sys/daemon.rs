//! Running in the background: detaching from the terminal and the pid
//! file that keeps a second instance from starting.
//!
//! The pid file is locked with `flock(2)`, not `lockf(3)` as Miredo does: a
//! `flock` lock belongs to the open file description, which `fork(2)`
//! shares, so the lock taken before detaching (while errors still reach the
//! terminal) passes to the daemon when the parents exit. A `lockf` lock
//! belongs to the process and would be lost across the fork. Either kind
//! goes away with the process, so a stale file left by a crash never
//! blocks a restart.
//!
//! The process that ran `shipworm --daemon` does not exit before the daemon
//! is up: [`detach`] keeps a pipe from it to the daemon, the role calls
//! [`ready`] once its sockets and tunnel exist and privileges are dropped
//! (or `main` calls [`failed`] with the start-up error), and only then does
//! the original process exit, with status 0 or the daemon's status and its
//! message on the terminal. A service manager or script that starts the
//! daemon thus sees a bound port, not a race, and a start-up error as a
//! failed start.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use shipworm_core::time::Duration;

use super::cvt;
use super::poll::{poll, PollFd};

/// How long the original process waits for the daemon's word.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the original process says when [`READY_TIMEOUT`] passes.
const TIMED_OUT: &str = "the daemon did not report start-up within 30 s; it may still be starting";
// A literal rather than formatted at run time: keep the two in step.
const _: () = assert!(READY_TIMEOUT.as_secs() == 30);

/// What the daemon writes when it is up.
const READY: &str = "ready";

/// The daemon's end of the readiness pipe until [`ready`] or [`failed`]
/// consumes it; `None` in a process that did not detach.
static READINESS: Mutex<Option<File>> = Mutex::new(None);

/// A locked pid file, removed (or, if that is not allowed, emptied) when
/// dropped.
#[derive(Debug)]
pub struct PidFile {
    file: File,
    path: PathBuf,
}

/// Why [`PidFile::lock`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock; its pid if the file names one.
    Held(Option<u32>),
    /// The file could not be opened or locked.
    Io(io::Error),
}

impl PidFile {
    /// Open (creating it if needed) and lock `path` without waiting.
    pub fn lock(path: &Path) -> Result<PidFile, LockError> {
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(LockError::Io)?;
        // SAFETY: flock on a descriptor we own; no memory is passed.
        let locked = cvt(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) });
        match locked {
            Ok(_) => Ok(PidFile {
                file,
                path: path.to_owned(),
            }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // A pid and a newline: one read of a regular file gets it.
                let mut buf = [0u8; 24];
                let pid = file
                    .read(&mut buf)
                    .ok()
                    .and_then(|n| core::str::from_utf8(buf.get(..n)?).ok())
                    .and_then(|text| text.trim().parse().ok());
                Err(LockError::Held(pid))
            }
            Err(e) => Err(LockError::Io(e)),
        }
    }

    /// Write the calling process's id into the file (after detaching: the
    /// daemon's own id).
    pub fn write_pid(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        let mut line = std::process::id().to_string();
        line.push('\n');
        self.file.write_all(line.as_bytes())
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Still locked while removed: a new instance that opened the old
        // file just before cannot have locked it. A process that dropped
        // root may no longer write the directory: it empties the file
        // instead, through the descriptor it still holds, so no stale pid
        // is left for scripts to signal.
        if std::fs::remove_file(&self.path).is_err() {
            let _ = self.file.set_len(0);
        }
    }
}

/// Detach from the terminal: fork, start a new session, fork again (so the
/// daemon is no session leader and can never get a controlling terminal
/// back), change to `/` (no mount kept busy) and point the standard
/// descriptors at `/dev/null`. Only the grandchild returns. The middle
/// process exits at once with status 0 and the original one when the
/// daemon calls [`ready`] or [`failed`] (see the module documentation),
/// both without running destructors, so a [`PidFile`] is not removed by
/// them.
///
/// Call it before any thread starts: `fork` copies the calling thread only.
pub fn detach() -> io::Result<()> {
    // Open before forking so a failure still reaches the terminal.
    // SAFETY: a static NUL-terminated path.
    let fd = cvt(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) })?;
    let mut ends = [-1; 2];
    // SAFETY: `ends` is a writable array of two descriptors. Close-on-exec:
    // a hook the client runs must not hold the daemon's end open.
    cvt(unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) })?;
    let [read_end, write_end] = ends;
    // SAFETY: pipe2 just opened both descriptors and nothing else owns them.
    let (read_end, write_end) = unsafe {
        (
            File::from(OwnedFd::from_raw_fd(read_end)),
            File::from(OwnedFd::from_raw_fd(write_end)),
        )
    };
    // SAFETY: the process is single-threaded here (see above), so the
    // child's copy of memory is consistent.
    if cvt(unsafe { libc::fork() })? != 0 {
        drop(write_end);
        let code = wait_for_daemon(read_end);
        // SAFETY: _exit ends the original process without running
        // destructors that belong to the daemon now (the pid file).
        unsafe { libc::_exit(code) };
    }
    drop(read_end);
    // SAFETY: plain system call; fails only if already a group leader,
    // which a freshly forked child is not.
    cvt(unsafe { libc::setsid() })?;
    fork_and_exit_parent()?;
    // SAFETY: a static NUL-terminated path.
    cvt(unsafe { libc::chdir(c"/".as_ptr()) })?;
    for target in [libc::STDIN_FILENO, libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: both descriptors are open; dup2 replaces `target`
        // atomically.
        cvt(unsafe { libc::dup2(fd, target) })?;
    }
    if fd > libc::STDERR_FILENO {
        // SAFETY: `fd` is ours and no longer used.
        unsafe { libc::close(fd) };
    }
    *READINESS.lock().unwrap_or_else(|p| p.into_inner()) = Some(write_end);
    Ok(())
}

/// The daemon is up: let the original process exit with status 0. Does
/// nothing in a process that did not detach, or the second time.
pub fn ready() {
    report(&[READY]);
}

/// Start-up failed: the original process prints `message` (one line) and
/// exits with `code`. Does nothing in a process that did not detach or
/// after [`ready`].
pub fn failed(code: u8, message: &str) {
    report(&[&code.to_string(), " ", message]);
}

/// Write `parts` as one line to the original process, if there is one.
fn report(parts: &[&str]) {
    let end = READINESS.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(mut end) = end {
        let mut line = parts.concat().replace('\n', " ");
        line.push('\n');
        // The reader may be gone (killed): nothing to tell then.
        let _ = end.write_all(line.as_bytes());
    }
}

/// In the original process: the daemon's word, or the pipe closed without
/// one (the daemon died), or [`READY_TIMEOUT`]; prints the message if any
/// and returns the exit status.
fn wait_for_daemon(pipe: File) -> i32 {
    let report = read_report(pipe);
    let (code, message) = match &report {
        Ok(got) => parse_report(got),
        Err(message) => (1, Some(message.as_bytes())),
    };
    if let Some(m) = message {
        // Bytes as the daemon wrote them: no UTF-8 check or formatting.
        let mut line = b"shipworm: ".to_vec();
        line.extend_from_slice(m);
        line.push(b'\n');
        let _ = io::stderr().write_all(&line);
    }
    code
}

/// What the daemon wrote up to its first newline or until it closed the
/// pipe; the message to print if waiting failed or timed out.
fn read_report(mut pipe: File) -> Result<Vec<u8>, String> {
    let deadline = super::clock::now() + READY_TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.contains(&b'\n') {
        let now = super::clock::now();
        if now >= deadline {
            return Err(TIMED_OUT.to_owned());
        }
        let mut fds = [PollFd::readable(pipe.as_fd())];
        poll(&mut fds, Some(deadline - now))
            .map_err(|e| context("cannot wait for the daemon", &e))?;
        if !fds[0].is_ready() {
            continue;
        }
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(context("cannot read from the daemon", &e)),
        }
    }
    Ok(got)
}

/// "`what`: `e`".
#[inline(never)]
fn context(what: &str, e: &io::Error) -> String {
    let mut message = what.to_owned();
    message.push_str(": ");
    message.push_str(&e.to_string());
    message
}

/// The exit status and the message to print for what the daemon wrote
/// (its first line counts).
fn parse_report(text: &[u8]) -> (i32, Option<&[u8]>) {
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    if line == READY.as_bytes() {
        return (0, None);
    }
    let status = |code: &[u8]| core::str::from_utf8(code).ok()?.parse::<u8>().ok();
    match line
        .iter()
        .position(|&b| b == b' ')
        .and_then(|at| Some((status(line.get(..at)?)?, line.get(at + 1..)?)))
    {
        Some((code, msg)) => (code.into(), Some(msg)),
        None => (1, Some(b"the daemon exited during start-up")),
    }
}

fn fork_and_exit_parent() -> io::Result<()> {
    // SAFETY: the process is single-threaded here (see `detach`), so the
    // child's copy of memory is consistent.
    match cvt(unsafe { libc::fork() })? {
        0 => Ok(()),
        // SAFETY: _exit ends the parent without running atexit handlers or
        // destructors that belong to the child now.
        _ => unsafe { libc::_exit(0) },
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_names_the_holder() {
        let dir = std::env::temp_dir().join(format!("shipworm-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("test.pid");
        let mut first = PidFile::lock(&path).unwrap();
        first.write_pid().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        // A second open file description conflicts even in one process.
        match PidFile::lock(&path) {
            Err(LockError::Held(pid)) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(!path.exists(), "removed on drop");
        let again = PidFile::lock(&path).unwrap();
        drop(again);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn readiness_reports() {
        assert_eq!(parse_report(b"ready\n"), (0, None));
        assert_eq!(parse_report(b"ready"), (0, None));
        assert_eq!(
            parse_report(b"2 address 0.0.0.0:3544 is in use\n"),
            (2, Some(&b"address 0.0.0.0:3544 is in use"[..]))
        );
        let died = (1, Some(&b"the daemon exited during start-up"[..]));
        assert_eq!(parse_report(b""), died);
        assert_eq!(parse_report(b"garbage"), died);
        assert_eq!(parse_report(b"readyx\n"), died);
        assert_eq!(parse_report(b" x"), died);
        assert_eq!(parse_report(b"\xff x"), died);
        // Not detached: nothing to report to, and no panic.
        ready();
        failed(2, "x");
    }

    #[test]
    fn reads_the_report_up_to_the_newline_or_the_close() {
        use std::os::unix::net::UnixStream;
        let (mut daemon, original) = UnixStream::pair().unwrap();
        daemon.write_all(b"2 address in use\nmore").unwrap();
        let got = read_report(File::from(OwnedFd::from(original))).unwrap();
        assert!(got.starts_with(b"2 address in use\n"), "{got:?}");
        assert_eq!(parse_report(&got), (2, Some(&b"address in use"[..])));
        // The daemon died before a full line.
        let (mut daemon, original) = UnixStream::pair().unwrap();
        daemon.write_all(b"rea").unwrap();
        drop(daemon);
        let got = read_report(File::from(OwnedFd::from(original))).unwrap();
        assert_eq!(got, b"rea");
        assert_eq!(parse_report(b"rea").0, 1);
        assert_eq!(parse_report(b"300 x").0, 1, "not a u8");
        assert_eq!(
            context("cannot read", &io::Error::from_raw_os_error(libc::EIO)),
            "cannot read: Input/output error (os error 5)"
        );
    }

    #[test]
    fn unwritable_place_is_an_io_error() {
        match PidFile::lock(Path::new("/nonexistent/dir/x.pid")) {
            Err(LockError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
    }
}
