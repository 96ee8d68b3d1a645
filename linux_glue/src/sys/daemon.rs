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

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::cvt;

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
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
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
        self.file
            .write_all(format!("{}\n", std::process::id()).as_bytes())
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
/// descriptors at `/dev/null`. Only the grandchild returns; the parents
/// exit at once with status 0 without running destructors, so a
/// [`PidFile`] is not removed by them.
///
/// Call it before any thread starts: `fork` copies the calling thread only.
pub fn detach() -> io::Result<()> {
    let null = CString::new(Path::new("/dev/null").as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // Open before forking so a failure still reaches the terminal.
    // SAFETY: `null` is a NUL-terminated path that lives across the call.
    let fd = cvt(unsafe { libc::open(null.as_ptr(), libc::O_RDWR) })?;
    fork_and_exit_parent()?;
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
    Ok(())
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
    fn unwritable_place_is_an_io_error() {
        match PidFile::lock(Path::new("/nonexistent/dir/x.pid")) {
            Err(LockError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
    }
}
