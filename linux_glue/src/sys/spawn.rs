//! Running a program: `posix_spawn(3)` with an explicit argument list and
//! environment, and a child handle that is reaped without blocking.
//!
//! Why not `std::process::Command`: for the one program the client runs (its
//! hook) it links an environment map, pipes, and fork/exec paths it never
//! uses here, some 20 KB on MIPS. `posix_spawn` in musl and glibc is a
//! `vfork`-like clone that execs straight away and returns a failed exec as
//! its error, so a missing program is reported to the caller, not just
//! logged by a child. The child execs like any other: capabilities in the
//! ambient set (see [`super::caps`]) carry over to it.
//!
//! The child gets what `Command` gave it: standard input from /dev/null, this
//! process's standard output and error, its environment with the given
//! variables replacing any of the same name, an empty signal mask (the
//! daemon blocks the signals its signal descriptor reads, see
//! [`super::signal`]) and the default action for SIGPIPE (Rust's runtime
//! ignores it). No other descriptor leaks: std and [`super`] open every
//! descriptor close-on-exec.
//!
//! On glibc (not musl, the router build) a child of a multi-threaded process
//! starts with every signal blocked despite `POSIX_SPAWN_SETSIGMASK`; the
//! same happens through `Command`, and the client is single-threaded.

use core::fmt;
use core::ptr;
use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use super::cvt;

/// The search list `execvp(3)` uses without `PATH` (musl's).
const DEFAULT_PATH: &[u8] = b"/usr/local/bin:/bin:/usr/bin";

/// How a child ended, as `waitpid(2)` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus(libc::c_int);

impl ExitStatus {
    /// It exited with status 0.
    pub fn success(self) -> bool {
        // A wait status is 0 exactly for a normal exit with code 0.
        self.0 == 0
    }

    /// The exit code, if it exited rather than being killed by a signal.
    pub fn code(self) -> Option<i32> {
        libc::WIFEXITED(self.0).then(|| libc::WEXITSTATUS(self.0))
    }
}

/// `exit status: N` or `signal: N`, the words std's `ExitStatus` uses.
impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without WUNTRACED a reaped child either exited or was killed.
        let (how, n) = match self.code() {
            Some(code) => ("exit status", code),
            None => ("signal", libc::WTERMSIG(self.0)),
        };
        write!(f, "{how}: {n}")
    }
}

/// A started program. Not reaped on drop (nor killed): call
/// [`Child::try_wait`] until it reports the end, or [`Child::kill`].
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    /// Set once reaped: after that the process ID may belong to another
    /// process, so it is neither waited for nor signalled again.
    status: Option<ExitStatus>,
}

impl Child {
    /// Reap the child if it has ended; `None` while it runs. Never blocks.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.reap(libc::WNOHANG)
    }

    /// Kill the child (SIGKILL) unless it was reaped already, and reap it:
    /// this waits, but a killed process ends at once.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if self.status.is_none() {
            // SAFETY: plain system call; `pid` is our own child that has not
            // been reaped, so the ID still names it (at worst as a zombie).
            cvt(unsafe { libc::kill(self.pid, libc::SIGKILL) })?;
        }
        loop {
            // Without WNOHANG this returns only with a status (or an error).
            if let Some(status) = self.reap(0)? {
                return Ok(status);
            }
        }
    }

    /// `waitpid(2)` for this child with `flags`, retried on EINTR.
    fn reap(&mut self, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
        while self.status.is_none() {
            let mut raw = 0;
            // SAFETY: waitpid writes the status into a local integer; `pid`
            // is our own unreaped child.
            match cvt(unsafe { libc::waitpid(self.pid, &mut raw, flags) }) {
                Ok(0) => break, // WNOHANG: still running
                Ok(_) => self.status = Some(ExitStatus(raw)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.status)
    }
}

/// Start `program` with arguments `args` and this process's environment
/// with `vars` (each `NAME=value`) added, replacing inherited variables of
/// the same names. A `program` without `/` is looked up in `PATH` as
/// `execvp(3)` does (and `Command` did); otherwise it is run as given.
pub fn spawn(program: &Path, args: &[&str], vars: &[String]) -> io::Result<Child> {
    let name = program.as_os_str().as_bytes();
    let mut search = None;
    let mut env = Vec::new();
    for (key, value) in std::env::vars_os() {
        if key == "PATH" {
            search = Some(value.clone());
        }
        let key = key.into_vec();
        let replaced = vars.iter().any(|v| {
            v.as_bytes()
                .strip_prefix(key.as_slice())
                .is_some_and(|rest| rest.first() == Some(&b'='))
        });
        if !replaced {
            let mut entry = key;
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            env.push(c_string(entry)?);
        }
    }
    for v in vars {
        env.push(c_string(v.as_bytes().to_vec())?);
    }
    let mut argv = vec![c_string(name.to_vec())?];
    for a in args {
        argv.push(c_string(a.as_bytes().to_vec())?);
    }
    let (argv_p, env_p) = (pointers(&argv), pointers(&env));
    if name.contains(&b'/') {
        return start(&argv[0], &argv_p, &env_p);
    }
    // As execvp(3): try each directory in turn; one where the program is
    // missing (or the directory is) is skipped, one where it may not be run
    // is remembered in case no later one has it, any other error is final.
    // An empty entry means the current directory.
    let search = search.map_or_else(|| DEFAULT_PATH.to_vec(), OsString::into_vec);
    let mut failure = io::Error::from_raw_os_error(libc::ENOENT);
    for dir in search.split(|&b| b == b':') {
        let mut path = dir.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        match start(&c_string(path)?, &argv_p, &env_p) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {}
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => failure = e,
            started => return started,
        }
    }
    Err(failure)
}

/// `bytes` as a C string; an interior NUL (only possible in a path or a
/// value given to us) is an error, not a truncation.
fn c_string(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// The NULL-terminated pointer array `posix_spawn` takes for `argv`/`envp`;
/// it borrows `strings`, which must outlive its use.
fn pointers(strings: &[CString]) -> Vec<*mut libc::c_char> {
    let mut p: Vec<_> = strings.iter().map(|s| s.as_ptr().cast_mut()).collect();
    p.push(ptr::null_mut());
    p
}

/// An error number returned (not set in errno) by the `posix_spawn` family.
fn check(ret: libc::c_int) -> io::Result<()> {
    match ret {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// One `posix_spawn` of `path`, with the settings the module doc lists.
fn start(path: &CStr, argv: &[*mut libc::c_char], envp: &[*mut libc::c_char]) -> io::Result<Child> {
    // SAFETY: both are plain C structs for which all-zero bytes are valid;
    // the init calls below set them up in place (they are never moved), and
    // each one initialised is destroyed before returning.
    let mut actions: libc::posix_spawn_file_actions_t = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let mut attr: libc::posix_spawnattr_t = unsafe { core::mem::zeroed() };
    // SAFETY: initialises the zeroed struct in place.
    check(unsafe { libc::posix_spawn_file_actions_init(&mut actions) })?;
    // SAFETY: as above.
    let mut ret = check(unsafe { libc::posix_spawnattr_init(&mut attr) }).map(|()| 0);
    if ret.is_ok() {
        ret = configure_and_spawn(&mut actions, &mut attr, path, argv, envp);
        // SAFETY: `attr` was initialised above and is not used after this.
        unsafe { libc::posix_spawnattr_destroy(&mut attr) };
    }
    // SAFETY: `actions` was initialised above and is not used after this.
    unsafe { libc::posix_spawn_file_actions_destroy(&mut actions) };
    ret.map(|pid| Child { pid, status: None })
}

/// The part of [`start`] between initialising and destroying the settings.
fn configure_and_spawn(
    actions: &mut libc::posix_spawn_file_actions_t,
    attr: &mut libc::posix_spawnattr_t,
    path: &CStr,
    argv: &[*mut libc::c_char],
    envp: &[*mut libc::c_char],
) -> io::Result<libc::pid_t> {
    // SAFETY: sigset_t is plain data that sigemptyset initialises next;
    // sigaddset only writes into the local set.
    let (empty, sigpipe) = unsafe {
        let mut empty: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut empty);
        let mut sigpipe = empty;
        libc::sigaddset(&mut sigpipe, libc::SIGPIPE);
        (empty, sigpipe)
    };
    let flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
    // SAFETY: `actions` and `attr` are initialised (see `start`); the path
    // is a NUL-terminated literal that the call copies; the sets are
    // initialised locals the calls copy.
    unsafe {
        check(libc::posix_spawn_file_actions_addopen(
            actions,
            0,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY,
            0,
        ))?;
        check(libc::posix_spawnattr_setflags(attr, flags as _))?;
        check(libc::posix_spawnattr_setsigmask(attr, &empty))?;
        check(libc::posix_spawnattr_setsigdefault(attr, &sigpipe))?;
    }
    let mut pid = 0;
    // SAFETY: `path` is a C string; `argv` and `envp` are NULL-terminated
    // arrays of pointers to C strings that the caller keeps alive across the
    // call (the child has exec'd, or failed to, when it returns); `actions`
    // and `attr` are initialised.
    check(unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            actions,
            attr,
            argv.as_ptr(),
            envp.as_ptr(),
        )
    })?;
    Ok(pid)
}

#[cfg(test)]
mod test {
    use super::*;

    fn sh(script: &str, vars: &[&str]) -> Child {
        let vars: Vec<String> = vars.iter().map(|v| v.to_string()).collect();
        spawn(Path::new("/bin/sh"), &["-c", script], &vars).unwrap()
    }

    /// Waits (polling, as the hook runner does) for the child's end.
    fn wait(child: &mut Child) -> ExitStatus {
        for _ in 0..1000 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("child still running after 10 s");
    }

    #[test]
    fn exit_codes_and_their_text() {
        let ok = wait(&mut sh("exit 0", &[]));
        assert!(ok.success());
        assert_eq!(ok.code(), Some(0));
        assert_eq!(ok.to_string(), "exit status: 0");
        let failed = wait(&mut sh("exit 3", &[]));
        assert!(!failed.success());
        assert_eq!(failed.code(), Some(3));
        assert_eq!(failed.to_string(), "exit status: 3");
    }

    #[test]
    fn variables_are_added_and_replace_inherited_ones() {
        // HOME and PATH are in the test's environment: HOME replaced once
        // (no second HOME entry), PATH inherited unchanged.
        let path = std::env::var("PATH").unwrap_or_default();
        let script = format!(
            "[ \"$IFACE\" = teredo ] && [ \"$STATE\" = 'up down' ] && [ \"$HOME\" = /x ] \
             && [ \"$(env | grep -c '^HOME=')\" = 1 ] && [ \"$PATH\" = '{path}' ]"
        );
        let mut child = sh(&script, &["IFACE=teredo", "STATE=up down", "HOME=/x"]);
        assert!(wait(&mut child).success());
    }

    #[test]
    fn stdin_is_dev_null_and_sigpipe_is_default() {
        // `read` fails at once at end of file; SIGPIPE, which the test
        // binary ignores (Rust's runtime), is not ignored in the child:
        // its bit (1 << (13 - 1)) is clear in /proc's SigIgn mask.
        // (The mask is not checked here: glibc leaves every signal blocked
        // in a child of a multi-threaded process such as this test binary,
        // whatever POSIX_SPAWN_SETSIGMASK asks, as it does for `Command`.)
        let script = "! read x && ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status) \
                      && [ $((0x$ign & 0x1000)) = 0 ]";
        assert!(wait(&mut sh(script, &[])).success());
    }

    #[test]
    fn kill_ends_and_reaps_a_running_child() {
        let mut child = sh("exec sleep 10", &[]);
        assert_eq!(child.try_wait().unwrap(), None);
        let status = child.kill().unwrap();
        assert_eq!(status.code(), None);
        assert_eq!(status.to_string(), format!("signal: {}", libc::SIGKILL));
        // Reaped: the status stays, nothing is signalled or waited again.
        assert_eq!(child.try_wait().unwrap(), Some(status));
        assert_eq!(child.kill().unwrap(), status);
    }

    #[test]
    fn a_bare_name_is_looked_up_in_path() {
        let mut child = spawn(Path::new("true"), &[], &[]).unwrap();
        assert!(wait(&mut child).success());
        let mut child = spawn(Path::new("false"), &[], &[]).unwrap();
        assert_eq!(wait(&mut child).code(), Some(1));
    }

    #[test]
    fn failures_are_errors() {
        let missing = spawn(Path::new("/nonexistent/shipworm-hook"), &[], &[]).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let missing = spawn(Path::new("shipworm-no-such-program"), &[], &[]).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        // A directory cannot be executed.
        let denied = spawn(Path::new("/"), &[], &[]).unwrap_err();
        assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied);
        let nul = spawn(Path::new("/bin/sh"), &[], &["A=b\0c".to_string()]).unwrap_err();
        assert_eq!(nul.kind(), io::ErrorKind::InvalidInput);
    }
}
