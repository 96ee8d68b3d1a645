//! The host's IPv4 addresses, from `getifaddrs(3)`.

use core::net::Ipv4Addr;
use std::io;

/// An IPv4 address assigned to a local interface, with its subnet mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Assigned {
    /// The address.
    pub addr: Ipv4Addr,
    /// The subnet mask (`255.255.255.255` for a host route or when the
    /// interface reports none).
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
pub fn ipv4_addresses() -> io::Result<Vec<Ipv4Assigned>> {
    let mut list: *mut libc::ifaddrs = core::ptr::null_mut();
    // SAFETY: `list` is a valid place for getifaddrs to store its result.
    super::cvt(unsafe { libc::getifaddrs(&mut list) })?;
    let mut found = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned,
        // which stays valid until freeifaddrs below.
        let ifa = unsafe { &*cur };
        if let Some(addr) = ipv4_of(ifa.ifa_addr) {
            found.push(Ipv4Assigned {
                addr,
                netmask: ipv4_of(ifa.ifa_netmask).unwrap_or(Ipv4Addr::BROADCAST),
            });
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once; no reference
    // into it survives this point (addresses were copied out).
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

/// The IPv4 address in `sa`, if it points to an `AF_INET` socket address.
fn ipv4_of(sa: *const libc::sockaddr) -> Option<Ipv4Addr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: non-null socket addresses in an ifaddrs list point to a valid
    // sockaddr, whose family field says which full struct it is.
    let family = unsafe { (*sa).sa_family };
    if libc::c_int::from(family) != libc::AF_INET {
        return None;
    }
    // SAFETY: the family is AF_INET, so the struct is a sockaddr_in; the C
    // library allocates it suitably aligned.
    let sin = unsafe { &*sa.cast::<libc::sockaddr_in>() };
    Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
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
    fn lists_loopback() {
        let all = ipv4_addresses().unwrap();
        // Any network namespace where `lo` carries its usual address.
        if let Some(lo) = all.iter().find(|a| a.addr == Ipv4Addr::LOCALHOST) {
            assert_eq!(lo.netmask, Ipv4Addr::new(255, 0, 0, 0));
        }
    }
}
