//! User accounts and process identity: the look-up of the user to run as
//! in `/etc/passwd`, `chroot(2)`, and the switch of user and group IDs.
//!
//! The password file is read directly rather than through `getpwnam_r(3)`:
//! musl's version brings its own passwd reader and an nscd client (about
//! 6 KB of a router binary), and neither musl nor OpenWrt has any other
//! source. Name-service switch sources (NIS, LDAP, systemd's dynamic
//! users) are therefore not consulted: the user to run as must be in
//! `/etc/passwd`, as `nobody` is on Debian and OpenWrt.

use std::ffi::{CStr, CString};
use std::io;
use std::path::Path;

use super::cvt;

/// The password file [`lookup`] reads.
const PASSWD: &str = "/etc/passwd";

/// A user account's IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
}

/// Look `name` up in `/etc/passwd` (see the module documentation).
/// `Ok(None)`: no such user.
pub fn lookup(name: &str) -> io::Result<Option<Account>> {
    lookup_in(Path::new(PASSWD), name)
}

/// Look `name` up in the password file at `path`: the first well-formed
/// entry with that name (see [`entry`]). A name no entry can hold (with
/// `:`, a newline or NUL) is `InvalidInput`.
pub fn lookup_in(path: &Path, name: &str) -> io::Result<Option<Account>> {
    // Bytes: a `char` pattern would decode UTF-8 for nothing.
    if name.bytes().any(|b| matches!(b, b':' | b'\n' | 0)) {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // Bytes, not a String: a comment field in another encoding must not
    // make the whole file unreadable.
    let file = std::fs::read(path)?;
    Ok(file
        .split(|&b| b == b'\n')
        .filter_map(entry)
        .find(|&(n, _)| n == name.as_bytes())
        .map(|(_, account)| account))
}

/// One `passwd(5)` line, `name:password:uid:gid:comment:home:shell`, as
/// its name and account. `None` for anything else: a wrong number of
/// fields, an empty name, IDs that are not plain decimal numbers or are
/// 4294967295 (the "no change" value of `setresuid(2)`), and NIS
/// inclusions (`+name`, `-name`), which nothing here could resolve.
fn entry(line: &[u8]) -> Option<(&[u8], Account)> {
    let mut fields = line.split(|&b| b == b':');
    let name = fields.next()?;
    let _password = fields.next()?;
    let uid = id(fields.next()?)?;
    let gid = id(fields.next()?)?;
    // Comment, home and shell, and nothing after them.
    if fields.by_ref().take(3).count() != 3 || fields.next().is_some() {
        return None;
    }
    match name.first() {
        None | Some(b'+' | b'-') => None,
        Some(_) => Some((name, Account { uid, gid })),
    }
}

/// A user or group ID field: 1 to 10 decimal digits, below `u32::MAX`.
fn id(field: &[u8]) -> Option<u32> {
    if field.is_empty() || field.len() > 10 || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = field
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    u32::try_from(n).ok().filter(|&n| n != u32::MAX)
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
        assert_eq!(lookup("").unwrap(), None);
        for bad in ["a\0b", "a:b", "a\nb"] {
            assert_eq!(lookup(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        let nobody = lookup("nobody").unwrap().unwrap();
        assert_ne!(nobody.uid, 0);
    }

    #[test]
    fn entries() {
        let debian = b"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin";
        assert_eq!(
            entry(debian),
            Some((
                &b"nobody"[..],
                Account {
                    uid: 65534,
                    gid: 65534
                }
            ))
        );
        let openwrt = b"nobody:*:65534:65534:nobody:/var:/bin/false";
        assert_eq!(entry(openwrt).map(|(_, a)| a.uid), Some(65534));
        // Empty fields other than the name are fine.
        assert_eq!(
            entry(b"a::1:2:::"),
            Some((&b"a"[..], Account { uid: 1, gid: 2 }))
        );
        assert_eq!(
            entry(b"big:x:4294967294:0:::"),
            Some((
                &b"big"[..],
                Account {
                    uid: 4_294_967_294,
                    gid: 0
                }
            ))
        );
        for bad in [
            &b""[..],
            b"# comment",
            b"nobody:x:65534:65534:nobody:/var",
            b"nobody:x:65534:65534:nobody:/var:/bin/false:extra",
            b":x:1:1:::",
            b"+nobody:x:1:1:::",
            b"-nobody:x:1:1:::",
            b"+::::::",
            b"a:x::1:::",
            b"a:x:1::::",
            b"a:x:+1:1:::",
            b"a:x:-1:1:::",
            b"a:x: 1:1:::",
            b"a:x:1x:1:::",
            b"a:x:4294967295:1:::",
            b"a:x:4294967296:1:::",
            b"a:x:99999999999:1:::",
            b"a:x:1:18446744073709551617:::",
        ] {
            assert_eq!(entry(bad).map(|(_, a)| a), None, "{bad:?}");
        }
    }

    #[test]
    fn arbitrary_lines_never_panic() {
        // No proptest in this crate: every cut of a valid line, and lines
        // of pseudo-random bytes biased towards ':' and digits.
        let line = b"nobody:x:65534:65534:nobody:/var:/bin/false";
        for end in 0..=line.len() {
            let _ = entry(&line[..end]);
        }
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            for _ in 0..(state % 40) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(match state % 4 {
                    0 => b':',
                    1 => b'0' + (state >> 8) as u8 % 10,
                    _ => (state >> 16) as u8,
                });
            }
            if let Some((_, a)) = entry(&bytes) {
                assert_ne!(a.uid, u32::MAX);
            }
        }
    }

    #[test]
    fn file_lookup() {
        let dir = std::env::temp_dir().join(format!("shipworm-passwd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("passwd");
        std::fs::write(
            &path,
            b"root:x:0:0:root:/root:/bin/ash\n\
              +shipworm::::::\n\
              broken line\n\
              shipworm:x:notanumber:1:::\n\
              caf\xe9:x:5:5:Caf\xe9 (Latin-1):/:/bin/false\n\
              shipworm:x:1000:100::/home/shipworm:/bin/sh\n\
              shipworm:x:2000:200::/:/bin/sh",
        )
        .unwrap();
        // The first well-formed entry wins; malformed and NIS lines and
        // non-UTF-8 bytes elsewhere do not get in the way.
        assert_eq!(
            lookup_in(&path, "shipworm").unwrap(),
            Some(Account {
                uid: 1000,
                gid: 100
            })
        );
        assert_eq!(
            lookup_in(&path, "root").unwrap(),
            Some(Account { uid: 0, gid: 0 })
        );
        assert_eq!(lookup_in(&path, "nobody").unwrap(), None);
        assert_eq!(lookup_in(&path, "broken line").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            lookup_in(&path, "root").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
