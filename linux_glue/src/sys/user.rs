//! User accounts and process identity: the password-database look-up of
//! the user to run as, `chroot(2)`, and the switch of user and group IDs.

use std::ffi::{CStr, CString};
use std::io;
use std::path::Path;

use super::cvt;

/// A user account's IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
}

/// Look `name` up in the password database (`getpwnam_r(3)`: files, NIS,
/// whatever the C library is set up for). `Ok(None)`: no such user.
pub fn lookup(name: &str) -> io::Result<Option<Account>> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // Room for the strings of one entry; grown on ERANGE.
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: passwd is plain data (integers and pointers); all-zero is
        // a valid value for getpwnam_r to overwrite.
        let mut pwd: libc::passwd = unsafe { core::mem::zeroed() };
        let mut result: *mut libc::passwd = core::ptr::null_mut();
        // SAFETY: `cname` is NUL-terminated; `pwd`, `buf` (of `buf.len()`
        // bytes) and `result` are valid and writable for the call; the
        // entry's strings point into `buf`, which are not used afterwards.
        let ret = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        match ret {
            0 if result.is_null() => return Ok(None),
            0 => {
                return Ok(Some(Account {
                    uid: pwd.pw_uid,
                    gid: pwd.pw_gid,
                }))
            }
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            // Some C libraries report "not found" as an error number.
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// `chroot(2)` into `dir`, then make it the working directory so no
/// descriptor of the old tree is left as the current directory.
pub fn chroot(dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let cdir = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `cdir` is a NUL-terminated path valid for the call.
    cvt(unsafe { libc::chroot(cdir.as_ptr()) })?;
    let root: &CStr = c"/";
    // SAFETY: as above.
    cvt(unsafe { libc::chdir(root.as_ptr()) }).map(drop)
}

/// Become `account`: the supplementary groups become its primary group
/// alone, then the real, effective and saved group and user IDs are set
/// (group first: without root it could no longer be changed).
pub fn become_user(account: Account) -> io::Result<()> {
    let groups = [account.gid as libc::gid_t];
    // SAFETY: `groups` is an array of one gid_t, valid for the call.
    cvt(unsafe { libc::setgroups(1, groups.as_ptr()) })?;
    let (g, u) = (account.gid as libc::gid_t, account.uid as libc::uid_t);
    // SAFETY: plain integer arguments.
    cvt(unsafe { libc::setresgid(g, g, g) })?;
    // SAFETY: plain integer arguments.
    cvt(unsafe { libc::setresuid(u, u, u) }).map(drop)
}

/// The real user ID of the process.
pub fn real_uid() -> u32 {
    // SAFETY: getuid(2) takes no arguments and cannot fail.
    unsafe { libc::getuid() }
}

/// Whether the process could become root again: it could if setting the
/// effective user ID to 0 succeeds (which it then undoes).
pub fn can_regain_root() -> bool {
    // SAFETY: plain integer argument; reading IDs cannot fail.
    unsafe {
        let uid = libc::geteuid();
        if uid == 0 {
            return true;
        }
        if libc::seteuid(0) == 0 {
            libc::seteuid(uid);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn root_and_missing_users() {
        assert_eq!(lookup("root").unwrap(), Some(Account { uid: 0, gid: 0 }));
        assert_eq!(lookup("no-such-user-shipworm").unwrap(), None);
        assert!(lookup("a\0b").is_err());
    }
}
