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
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
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
/// the same names. A `program` without `/` is looked up in the inherited
/// `PATH` as `execvp(3)` does (and `Command` did); otherwise it is run as
/// given.
pub fn spawn(program: &Path, args: &[&str], vars: &[String]) -> io::Result<Child> {
    let name = program.as_os_str().as_bytes();
    // The program's name, its arguments, then the variables: one loop.
    let mut strings = vec![c_string(name)?];
    for s in args
        .iter()
        .map(|a| a.as_bytes())
        .chain(vars.iter().map(|v| v.as_bytes()))
    {
        strings.push(c_string(s)?);
    }
    let (argv, vars) = strings.split_at(1 + args.len());
    let (mut envp, search) = inherited_except(vars);
    envp.extend(pointers(vars));
    let argv_p: Vec<_> = pointers(argv).collect();
    if name.contains(&b'/') {
        return start(&strings[0], &argv_p, &envp);
    }
    // As execvp(3): try each directory in turn; one where the program is
    // missing (or the directory is) is skipped, one where it may not be run
    // is remembered in case no later one has it, any other error is final.
    // An empty entry means the current directory.
    let mut failure = io::Error::from_raw_os_error(libc::ENOENT);
    for dir in search
        .as_deref()
        .unwrap_or(DEFAULT_PATH)
        .split(|&b| b == b':')
    {
        let mut path = dir.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        match start(&c_string(&path)?, &argv_p, &envp) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {}
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => failure = e,
            started => return started,
        }
    }
    Err(failure)
}

extern "C" {
    /// The process environment (environ(7)): a NULL-terminated array of
    /// `NAME=value` C strings, owned by the C library. Declared here because
    /// the `libc` crate declares it for glibc only.
    static environ: *const *const libc::c_char;
}

/// The entries of the inherited environment whose names no entry of `vars`
/// has, as pointers into the C library's environment; and the inherited
/// `PATH`, if any.
///
/// Read in place rather than through `std::env::vars_os`, which copies every
/// entry into a pair of new strings only for them to be joined again.
fn inherited_except(vars: &[CString]) -> (Vec<*const libc::c_char>, Option<Vec<u8>>) {
    let mut kept = Vec::new();
    let mut search = None;
    // SAFETY: `environ` is NULL or a NULL-terminated array of pointers to C
    // strings, and only `setenv`/`putenv`/`unsetenv` (which
    // `std::env::set_var` and `remove_var` call) change it or free what it
    // points to. This program calls none of them; and std documents those
    // calls as sound only in a single-threaded process, so no other thread
    // can change the environment while this loop reads it or while
    // `posix_spawn` reads the kept pointers: the caller passes them on at
    // once, in this same thread.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let bytes = CStr::from_ptr(*entry).to_bytes();
            if let Some(path) = bytes.strip_prefix(b"PATH=") {
                search = Some(path.to_vec());
            }
            if !vars.iter().any(|v| name(v.as_bytes()) == name(bytes)) {
                kept.push(*entry);
            }
            entry = entry.add(1);
        }
    }
    (kept, search)
}

/// Pointers to `strings` and a final NULL: the arrays `posix_spawn` takes
/// for `argv` and `envp` (they borrow `strings`).
fn pointers(strings: &[CString]) -> impl Iterator<Item = *const libc::c_char> + '_ {
    strings.iter().map(|s| s.as_ptr()).chain([ptr::null()])
}

/// The variable name of the environment entry `NAME=value`.
fn name(entry: &[u8]) -> &[u8] {
    entry.split(|&b| b == b'=').next().unwrap_or_default()
}

/// `bytes` as a C string; an interior NUL (only possible in a path or a
/// value given to us) is an error, not a truncation.
fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// An error number returned (not set in errno) by the `posix_spawn` family.
fn check(ret: libc::c_int) -> io::Result<()> {
    match ret {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// One `posix_spawn` of `path`, with the settings the module doc lists.
fn start(
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> io::Result<Child> {
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
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
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
    // call (ours, or the unchanging environment's: see `inherited_except`;
    // the child has exec'd, or failed to, when it returns); `actions` and
    // `attr` are initialised.
    check(unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            actions,
            attr,
            argv.as_ptr().cast(),
            envp.as_ptr().cast(),
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
