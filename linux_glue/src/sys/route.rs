//! Whether IPv6 packets have anywhere to go, from `/proc/net/ipv6_route`.
//!
//! A server forwards clients' packets for native destinations (RFC 4380
//! §5.3.1); without a route beyond the host those sends fail. That is worth a
//! warning at start-up, not a refusal: routes may come up later, and
//! qualification works without them.

use core::net::Ipv6Addr;
use std::io;

/// The kernel's IPv6 routing table (main and local tables), one route a line.
const IPV6_ROUTE: &str = "/proc/net/ipv6_route";

/// Does the host have a default route, or any route to global IPv6 space,
/// through a real interface? Fails when IPv6 is disabled (no table file).
pub fn has_global_ipv6_route() -> io::Result<bool> {
    // Bytes then UTF-8 (the kernel writes ASCII): `fs::read` is linked for
    // other files already, `read_to_string` would be one more copy of it.
    let table = std::fs::read(IPV6_ROUTE)?;
    let table = core::str::from_utf8(&table).map_err(|_| io::ErrorKind::InvalidData)?;
    Ok(table_has_global_route(table))
}

/// The parsing behind [`has_global_ipv6_route`]. Each line is: destination
/// (32 hex digits), prefix length, source, source prefix length, next hop,
/// metric, reference count, use count, flags (hex), interface name.
fn table_has_global_route(table: &str) -> bool {
    let ignored = u32::from(libc::RTF_REJECT) | libc::RTF_LOCAL;
    table.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (Some(dst), Some(flags), Some(dev)) = (fields.next(), fields.nth(7), fields.next())
        else {
            return false;
        };
        let (Ok(dst), Ok(flags)) = (
            u128::from_str_radix(dst, 16),
            u32::from_str_radix(flags, 16),
        ) else {
            return false;
        };
        let dst = Ipv6Addr::from(dst);
        // Unreachable/prohibit entries and routes to the host's own addresses
        // lead nowhere; link-local and multicast prefixes exist on every
        // IPv6-enabled interface and reach no further than the link.
        dev != "lo"
            && flags & ignored == 0
            && !dst.is_loopback()
            && !dst.is_multicast()
            && !dst.is_unicast_link_local()
    })
}

#[cfg(test)]
mod test {
    use super::*;

    // As printed by Linux 6.x for a host whose only IPv6 is link-local, plus
    // the loopback and unreachable-default entries of the local table.
    const LINK_LOCAL_ONLY: &str = "\
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001   eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
fe80000000000000b0d4fffffe5a1c2d 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    #[test]
    fn link_local_only_is_no_route() {
        assert!(!table_has_global_route(LINK_LOCAL_ONLY));
        assert!(!table_has_global_route(""));
        assert!(!table_has_global_route("garbage\nzz 00 zz\n"));
    }

    #[test]
    fn default_or_global_prefix_is_a_route() {
        let default = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n";
        let prefix = "20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n";
        let own = "20010db8000100000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001 eth0\n";
        assert!(table_has_global_route(&[LINK_LOCAL_ONLY, default].concat()));
        assert!(table_has_global_route(&[LINK_LOCAL_ONLY, prefix].concat()));
        assert!(!table_has_global_route(&[LINK_LOCAL_ONLY, own].concat()));
    }
}
