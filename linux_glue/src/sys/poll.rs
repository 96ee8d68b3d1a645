//! `poll(2)` over a handful of descriptors.
//!
//! `poll` rather than `epoll`: the loops watch two to four descriptors that
//! never change, where `poll` is one system call with no kernel object to set
//! up, and is just as fast.

use core::marker::PhantomData;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use shipworm_core::time::Duration;

/// One descriptor to wait on for input, borrowed for as long as it is polled.
#[derive(Debug)]
#[repr(transparent)]
pub struct PollFd<'fd> {
    pfd: libc::pollfd,
    fd: PhantomData<BorrowedFd<'fd>>,
}

impl<'fd> PollFd<'fd> {
    /// Wait until `fd` is readable.
    pub fn readable(fd: BorrowedFd<'fd>) -> Self {
        PollFd {
            pfd: libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            fd: PhantomData,
        }
    }

    /// Like [`PollFd::readable`], or an entry `poll` ignores (a negative
    /// descriptor) for `None`: the loops keep fixed-size arrays when an
    /// optional descriptor is absent.
    pub fn readable_opt(fd: Option<BorrowedFd<'fd>>) -> Self {
        PollFd {
            pfd: libc::pollfd {
                fd: fd.map_or(-1, |fd| fd.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
            fd: PhantomData,
        }
    }

    /// The last [`poll`] found input waiting, or an error or hang-up that a
    /// read will report.
    pub fn is_ready(&self) -> bool {
        self.pfd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0
    }
}

/// Wait until one of `fds` is ready or `timeout` passes (`None`: no limit).
/// Returns how many are ready; 0 on timeout or when a signal interrupted the
/// wait.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    let millis = match timeout {
        // A negative timeout means "forever" to poll(2).
        None => -1,
        Some(d) => libc::c_int::try_from(d.total_millis()).unwrap_or(libc::c_int::MAX),
    };
    // SAFETY: PollFd is a transparent wrapper of pollfd, so `fds` is a valid,
    // writable array of `fds.len()` pollfd structs for the whole call.
    let ret = unsafe { libc::poll(fds.as_mut_ptr().cast(), fds.len() as _, millis) };
    match super::cvt(ret) {
        Ok(n) => Ok(usize::try_from(n).unwrap_or(0)),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sys::udp::UdpSocket;
    use core::net::{Ipv4Addr, SocketAddrV4};
    use std::os::fd::AsFd;

    #[test]
    fn reports_readable_socket_and_times_out() {
        let any = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let a = UdpSocket::bind(any, 1 << 16).unwrap();
        let b = UdpSocket::bind(any, 1 << 16).unwrap();
        let mut fds = [PollFd::readable(a.as_fd()), PollFd::readable(b.as_fd())];
        assert_eq!(poll(&mut fds, Some(Duration::from_millis(10))).unwrap(), 0);
        a.send_to(b"x", b.local_addr().unwrap()).unwrap();
        assert_eq!(poll(&mut fds, Some(Duration::from_secs(5))).unwrap(), 1);
        assert!(!fds[0].is_ready());
        assert!(fds[1].is_ready());
    }
}
