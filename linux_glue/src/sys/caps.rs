//! Linux capabilities and the `prctl(2)` switches that go with dropping
//! root: the bounding and ambient sets, `PR_SET_KEEPCAPS`,
//! `PR_SET_NO_NEW_PRIVS`, and the raw `capset(2)` system call.
//!
//! Raw system calls rather than libcap: the three sets of one process are two
//! 32-bit words each, which is less code than the binding, and no shared
//! library has to be on the router.

use std::io;

use super::cvt;

/// One capability, by its kernel number (`linux/capability.h`; part of the
/// kernel ABI, so fixed on every architecture; `libc` does not define them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap(u32);

impl Cap {
    /// `CAP_NET_ADMIN`: interface, address and route changes over rtnetlink.
    pub const NET_ADMIN: Cap = Cap(12);

    /// The kernel's number.
    pub fn number(self) -> u32 {
        self.0
    }
}

/// A set of capabilities as the kernel's two 32-bit words (capability `n`
/// is bit `n % 32` of word `n / 32`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSet([u32; 2]);

impl CapSet {
    /// No capability.
    pub const EMPTY: CapSet = CapSet([0, 0]);

    /// The set holding `caps`.
    pub fn of(caps: &[Cap]) -> CapSet {
        let mut set = CapSet::EMPTY;
        for cap in caps {
            let (word, bit) = ((cap.0 / 32) as usize, cap.0 % 32);
            if let Some(w) = set.0.get_mut(word) {
                *w |= 1 << bit;
            }
        }
        set
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Cap) -> bool {
        let (word, bit) = ((cap.0 / 32) as usize, cap.0 % 32);
        self.0.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    /// The set as the 64-bit mask `/proc/<pid>/status` prints in hex.
    pub fn mask(self) -> u64 {
        u64::from(self.0[1]) << 32 | u64::from(self.0[0])
    }
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two words.
const VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`, one per 32-bit word.
#[repr(C)]
#[derive(Clone, Copy)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Set the calling thread's effective, permitted and inheritable sets. The
/// kernel refuses to add to permitted, so after `setuid` this can only keep
/// or shrink what `PR_SET_KEEPCAPS` preserved.
pub fn set(effective: CapSet, permitted: CapSet, inheritable: CapSet) -> io::Result<()> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data: [Data; 2] = core::array::from_fn(|i| Data {
        effective: effective.0[i],
        permitted: permitted.0[i],
        inheritable: inheritable.0[i],
    });
    // SAFETY: `header` and `data` are the kernel's v3 structures (a header
    // and two data words), valid for the whole call; pid 0 is this thread.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    cvt(ret as libc::c_int).map(drop)
}

fn prctl(option: libc::c_int, arg: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: every option used here takes integer arguments only; the
    // unused ones must be zero.
    cvt(unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
}

/// Remove every capability but `keep` from the bounding set, so that no
/// later `execve` (of a file with capabilities, say) can regain them. Needs
/// `CAP_SETPCAP`, i.e. run it while still root.
pub fn limit_bounding_set(keep: CapSet) -> io::Result<()> {
    // Capabilities are numbered densely from 0; the kernel answers EINVAL
    // past its last one (newer kernels than this code know of included).
    for n in 0..64 {
        if keep.contains(Cap(n)) {
            continue;
        }
        match prctl(libc::PR_CAPBSET_DROP, n.into()) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Keep the permitted set across the coming `setuid` away from root
/// (`PR_SET_KEEPCAPS`); the effective set is still cleared by it.
pub fn keep_across_setuid(keep: bool) -> io::Result<()> {
    prctl(libc::PR_SET_KEEPCAPS, keep.into()).map(drop)
}

/// Empty the ambient set, then raise `caps` in it: programs this process
/// executes then start with them effective although they are not root. Each
/// must already be permitted and inheritable.
pub fn set_ambient(caps: &[Cap]) -> io::Result<()> {
    // SAFETY: as in `prctl`; PR_CAP_AMBIENT takes a sub-command and a number.
    cvt(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })?;
    for cap in caps {
        // SAFETY: as above.
        cvt(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                libc::c_ulong::from(cap.0),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        })?;
    }
    Ok(())
}

/// `PR_SET_NO_NEW_PRIVS`: no `execve` of this process or its children can
/// gain privileges (set-user-ID bits and file capabilities are ignored).
pub fn no_new_privs() -> io::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map(drop)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn sets_and_masks() {
        let s = CapSet::of(&[Cap::NET_ADMIN]);
        assert_eq!(s.mask(), 0x1000);
        assert!(s.contains(Cap::NET_ADMIN));
        assert!(!s.contains(Cap(13)));
        let high = CapSet::of(&[Cap(40), Cap(0)]);
        assert_eq!(high.mask(), 1 << 40 | 1);
        assert_eq!(CapSet::of(&[Cap(64)]), CapSet::EMPTY);
        assert!(!CapSet::EMPTY.contains(Cap(99)));
    }
}
