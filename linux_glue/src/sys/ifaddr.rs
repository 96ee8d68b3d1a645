//! The host's IPv4 addresses, from rtnetlink.

use core::net::Ipv4Addr;
use std::io;

use super::netlink::Netlink;

/// An IPv4 address assigned to a local interface, with its subnet mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Assigned {
    /// The address.
    pub addr: Ipv4Addr,
    /// The subnet mask, from the address's prefix length
    /// (`255.255.255.255` for a /32).
    pub netmask: Ipv4Addr,
}

impl Ipv4Assigned {
    /// The subnet's directed-broadcast address (all host bits set), which
    /// RFC 4380 §5.2.4 counts as not global unicast. `None` for /31 and /32,
    /// which have no broadcast address (RFC 3021).
    pub fn directed_broadcast(&self) -> Option<Ipv4Addr> {
        let mask = u32::from(self.netmask);
        if mask.leading_ones() >= 31 {
            return None;
        }
        Some(Ipv4Addr::from(u32::from(self.addr) | !mask))
    }
}

/// Every IPv4 address assigned to any interface of this host (of this
/// network namespace), up or down.
///
/// Read with an rtnetlink dump (see [`Netlink::ipv4_addresses`]) rather
/// than `getifaddrs(3)`: the request socket is there anyway, and musl's
/// version adds its own netlink reader and per-entry allocations.
pub fn ipv4_addresses() -> io::Result<Vec<Ipv4Assigned>> {
    let found = Netlink::open()?.ipv4_addresses()?;
    Ok(found
        .into_iter()
        .map(|(addr, prefix_len)| Ipv4Assigned {
            addr,
            netmask: netmask(prefix_len),
        })
        .collect())
}

/// The subnet mask of a prefix length (`/0` to `/32`; longer counts as 32).
fn netmask(prefix_len: u8) -> Ipv4Addr {
    let host_bits = 32 - u32::from(prefix_len.min(32));
    Ipv4Addr::from(u32::MAX.checked_shl(host_bits).unwrap_or(0))
}

#[cfg(test)]
mod test {
    use super::*;

    fn net(addr: [u8; 4], mask: [u8; 4]) -> Ipv4Assigned {
        Ipv4Assigned {
            addr: addr.into(),
            netmask: mask.into(),
        }
    }

    #[test]
    fn directed_broadcast() {
        let b = |a, m| net(a, m).directed_broadcast();
        assert_eq!(
            b([198, 51, 100, 1], [255, 255, 255, 0]),
            Some([198, 51, 100, 255].into())
        );
        assert_eq!(
            b([10, 1, 2, 3], [255, 0, 0, 0]),
            Some([10, 255, 255, 255].into())
        );
        assert_eq!(
            b([192, 0, 2, 65], [255, 255, 255, 192]),
            Some([192, 0, 2, 127].into())
        );
        assert_eq!(
            b([192, 0, 2, 1], [255, 255, 255, 252]),
            Some([192, 0, 2, 3].into())
        );
        assert_eq!(b([192, 0, 2, 1], [255, 255, 255, 254]), None);
        assert_eq!(b([192, 0, 2, 1], [255, 255, 255, 255]), None);
    }

    #[test]
    fn netmasks() {
        assert_eq!(netmask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(netmask(1), Ipv4Addr::new(128, 0, 0, 0));
        assert_eq!(netmask(8), Ipv4Addr::new(255, 0, 0, 0));
        assert_eq!(netmask(26), Ipv4Addr::new(255, 255, 255, 192));
        assert_eq!(netmask(32), Ipv4Addr::BROADCAST);
        assert_eq!(netmask(33), Ipv4Addr::BROADCAST);
    }

    /// What the C library's `getifaddrs(3)` lists, for comparison.
    fn from_libc() -> Vec<Ipv4Assigned> {
        let mut list: *mut libc::ifaddrs = core::ptr::null_mut();
        // SAFETY: `list` is a valid place for getifaddrs to store its result.
        assert_eq!(unsafe { libc::getifaddrs(&mut list) }, 0);
        let mut found = Vec::new();
        let mut cur = list;
        while !cur.is_null() {
            // SAFETY: a non-null node of the list, valid until freeifaddrs.
            let ifa = unsafe { &*cur };
            if let Some(addr) = ipv4_of(ifa.ifa_addr) {
                let netmask = ipv4_of(ifa.ifa_netmask).unwrap_or(Ipv4Addr::BROADCAST);
                found.push(Ipv4Assigned { addr, netmask });
            }
            cur = ifa.ifa_next;
        }
        // SAFETY: `list` came from getifaddrs and is freed once.
        unsafe { libc::freeifaddrs(list) };
        found
    }

    /// The IPv4 address in `sa`, a socket address of a getifaddrs list.
    fn ipv4_of(sa: *const libc::sockaddr) -> Option<Ipv4Addr> {
        if sa.is_null() {
            return None;
        }
        // SAFETY: non-null addresses of the list point to a valid sockaddr.
        if i32::from(unsafe { (*sa).sa_family }) != libc::AF_INET {
            return None;
        }
        // SAFETY: the family says sockaddr_in; the C library aligns it.
        let sin = unsafe { &*sa.cast::<libc::sockaddr_in>() };
        Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    }

    #[test]
    fn same_as_the_c_library() {
        let mut ours = ipv4_addresses().unwrap();
        let mut theirs = from_libc();
        ours.sort_by_key(|a| (a.addr, a.netmask));
        theirs.sort_by_key(|a| (a.addr, a.netmask));
        assert_eq!(ours, theirs);
    }

    #[test]
    fn lists_loopback() {
        let all = ipv4_addresses().unwrap();
        // Any network namespace where `lo` carries its usual address.
        if let Some(lo) = all.iter().find(|a| a.addr == Ipv4Addr::LOCALHOST) {
            assert_eq!(lo.netmask, Ipv4Addr::new(255, 0, 0, 0));
        }
    }
}
