//! The client's tunnel interface: a Linux tun device carrying bare IPv6
//! packets.
//!
//! `IFF_TUN | IFF_NO_PI`: layer-3 packets without the 4-byte packet-info
//! header, so what is read is exactly the IPv6 packet the core takes, and
//! what the core hands back is written as is. The device exists while the
//! descriptor is open (it is not made persistent): when the process exits,
//! however it exits, the kernel deletes the interface and with it every
//! address and route on it.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

/// The clone device every tun interface is created through.
const CLONE_DEVICE: &str = "/dev/net/tun";

/// Longest interface name the kernel takes (`IFNAMSIZ` less the NUL).
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// An open tun interface, deleted when dropped.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
    index: u32,
}

impl Tun {
    /// Create (or attach to an existing, unused) tun interface called
    /// `name`, non-blocking. The interface starts down, without addresses.
    ///
    /// Fails with `InvalidInput` for a name the kernel would refuse (empty,
    /// longer than [`MAX_NAME_LEN`], or containing a NUL byte), with
    /// `PermissionDenied` without CAP_NET_ADMIN, and with `Busy`-like errors
    /// (`EBUSY`) when another process holds an interface of that name.
    pub fn open(name: &str) -> io::Result<Tun> {
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains('\0') {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // std opens with O_CLOEXEC already, so a hook never inherits the
        // tunnel (it would keep the interface alive after we exit).
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(CLONE_DEVICE)?;
        // SAFETY: ifreq is plain C data (a name array and a union of plain
        // fields); all-zero bytes are a valid value and give the NUL
        // terminator the name needs.
        let mut ifr: libc::ifreq = unsafe { core::mem::zeroed() };
        for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `ifr` is a
        // full-size, writable ifreq that outlives the call. libc defines the
        // request number per architecture (MIPS encodes _IOW differently).
        super::cvt(unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifr) })?;
        // The kernel writes back the name it used (the same unless the
        // request had a `%d` pattern), NUL-terminated.
        let bytes = ifr.ifr_name.map(|c| c as u8);
        let name = CStr::from_bytes_until_nul(&bytes).map_err(|_| io::ErrorKind::InvalidData)?;
        let index = index_of(name)?;
        let name = name.to_str().map_err(|_| io::ErrorKind::InvalidData)?;
        Ok(Tun {
            file,
            name: name.to_owned(),
            index,
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index, for netlink requests.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Read one packet into `buf`; `None` when none is waiting. A packet
    /// longer than `buf` is cut (the kernel drops the rest).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match (&self.file).read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Write one packet. A tun write is all or nothing; `WouldBlock` cannot
    /// happen (the kernel queues or drops), but other errors (e.g. `EIO`
    /// while the link is down) are reported.
    pub fn write(&self, packet: &[u8]) -> io::Result<()> {
        loop {
            match (&self.file).write(packet) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// The index of the interface called `name`.
fn index_of(name: &CStr) -> io::Result<u32> {
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        n => Ok(n),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_the_kernel() {
        for name in ["", "0123456789abcdef", "a\0b"] {
            let err = Tun::open(name).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }

    /// Needs CAP_NET_ADMIN; skipped (passes) without it. Creates a uniquely
    /// named interface, which the kernel deletes when the test drops it.
    #[test]
    fn create_read_and_delete() {
        let name = format!("swtest{}", std::process::id() % 100_000);
        let tun = match Tun::open(&name) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(tun.name(), name);
        let c_name = std::ffi::CString::new(name).unwrap();
        assert_eq!(index_of(&c_name).unwrap(), tun.index());
        let mut buf = [0u8; 64];
        // Down, no addresses: nothing to read, and no blocking.
        assert_eq!(tun.read(&mut buf).unwrap(), None);
        drop(tun);
        assert!(index_of(&c_name).is_err());
    }
}
