//! Teredo addresses (RFC 4380 §4 as updated by RFC 5991 §3.1), their
//! link-local forms, and the global-unicast IPv4 test of RFC 4380 §5.2.4.
//!
//! A Teredo address packs, in 128 bits:
//!
//! ```text
//! | prefix (32) | server IPv4 (32) | flags (16) | ~port (16) | ~client IPv4 (32) |
//! ```
//!
//! The last 64 bits (flags, obfuscated mapped port and address) are the
//! "Teredo node identifier" (RFC 4380 §2.13); the same identifier after
//! `fe80::/64` gives the link-local Teredo address. The mapping is stored
//! obfuscated (every bit inverted) so that NATs which rewrite any 32-bit
//! payload value equal to a local address leave it alone (RFC 4380 §3.1, §4).

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

/// UDP port of Teredo servers and relays, and destination of indirect
/// bubbles (RFC 4380 §2.7).
pub const TEREDO_PORT: u16 = 3544;

/// The global Teredo service prefix `2001:0000::/32` (RFC 4380 §2.6), as its
/// first four bytes.
pub const DEFAULT_PREFIX: [u8; 4] = [0x20, 0x01, 0x00, 0x00];

/// All-routers link-local multicast `ff02::2`, destination of the Router
/// Solicitations a client sends to its server (RFC 4380 §5.2.1).
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// All-nodes link-local multicast `ff02::1`, destination of local discovery
/// bubbles (RFC 4380 §5.2.8).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Cone flag `C`: the client believes it is behind a cone NAT (RFC 4380 §4).
pub const FLAG_CONE: u16 = 0x8000;

/// The 12 flag bits RFC 5991 §3.1 makes random (Random1 = bits 2–5,
/// Random2 = bits 8–15).
pub const FLAG_RANDOM_MASK: u16 = 0x3CFF;

/// Flag bits that must be zero: bit 1 (still reserved, RFC 5991 §3.1) and the
/// `U`/`G` bits, kept at 0 so the identifier reads as a non-global Modified
/// EUI-64 one (RFC 4380 §4).
pub const FLAG_RESERVED_MASK: u16 = 0x4300;

/// Source address of the non-cone Router Solicitations Miredo and Windows
/// clients send: `fe80::ffff:ffff:ffff` (the "Vista" form, i.e. flags 0 and
/// an all-zero obfuscated mapping). RFC 4380 §5.2.1 only asks for "a
/// link-local address" with the chosen cone bit; servers echo it as the RA
/// destination, and clients match on it.
pub const CLIENT_LL_RESTRICTED: Ipv6Addr =
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xffff, 0xffff, 0xffff);

/// Source address of cone Router Solicitations in Miredo and Windows:
/// `fe80::8000:5445:5245:444f` (cone flag, then "TEREDO" in ASCII).
pub const CLIENT_LL_CONE: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x8000, 0x5445, 0x5245, 0x444f);

/// Obfuscate (or, equally, de-obfuscate) a mapped UDP port: RFC 4380 §4 and
/// §5.1.1 store ports inverted, in Teredo addresses and origin indications.
#[inline]
pub const fn obfuscate_port(port: u16) -> u16 {
    !port
}

/// Obfuscate (or, equally, de-obfuscate) a mapped IPv4 address: inverted,
/// like the port (RFC 4380 §4, §5.1.1).
#[inline]
pub const fn obfuscate_ipv4(addr: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from_bits(!addr.to_bits())
}

/// Build RFC 5991 §3.1 flags: the cone bit as given, the 12 random bits from
/// `random` (16 bits from the caller's RNG; the others are discarded), and
/// the reserved bits zero.
#[inline]
pub const fn random_flags(cone: bool, random: u16) -> u16 {
    let c = if cone { FLAG_CONE } else { 0 };
    c | (random & FLAG_RANDOM_MASK)
}

/// Whether `flags` could come from a conforming peer: the reserved bits
/// ([`FLAG_RESERVED_MASK`]) are zero (RFC 4380 §4, RFC 5991 §3.1). Receivers
/// otherwise ignore the flags beyond the cone bit.
#[inline]
pub const fn flags_are_valid(flags: u16) -> bool {
    flags & FLAG_RESERVED_MASK == 0
}

/// The 64-bit Teredo node identifier (RFC 4380 §2.13): flags, obfuscated
/// port, obfuscated IPv4.
const fn node_id(flags: u16, mapped: SocketAddrV4) -> u64 {
    ((flags as u64) << 48)
        | ((obfuscate_port(mapped.port()) as u64) << 32)
        | (obfuscate_ipv4(*mapped.ip()).to_bits() as u64)
}

/// The link-local Teredo address for a node identifier: `fe80::/64` followed
/// by the same 64 bits as the global address (RFC 4380 §4). Such addresses
/// may embed a private IPv4.
pub const fn link_local(flags: u16, mapped: SocketAddrV4) -> Ipv6Addr {
    Ipv6Addr::from_bits((0xfe80u128 << 112) | node_id(flags, mapped) as u128)
}

/// The server's link-local address, source of its Router Advertisements:
/// the identifier for the server's IPv4 and port 3544 with the cone flag set
/// (RFC 4380 §5.3.2), i.e. `fe80::8000:f227:<~server IPv4>`.
pub const fn server_link_local(server: Ipv4Addr) -> Ipv6Addr {
    link_local(FLAG_CONE, SocketAddrV4::new(server, TEREDO_PORT))
}

/// Whether `addr` is an IPv6 link-local unicast address (`fe80::/10`,
/// RFC 4291 §2.5.6), as RFC 4861 §6.1.2 requires of RA sources.
#[inline]
pub const fn is_link_local(addr: Ipv6Addr) -> bool {
    addr.is_unicast_link_local()
}

/// The "global unicast IPv4" test of RFC 4380 §5.2.4: `false` for the ranges
/// a Teredo address must never embed, nor a peer be reached at.
///
/// Refused, per RFC 4380 §5.2.4: `0.0.0.0/8`, `10.0.0.0/8`, `127.0.0.0/8`,
/// `169.254.0.0/16`, `172.16.0.0/12`, `192.168.0.0/16`, `192.88.99.0/24`
/// (6to4 anycast), `224.0.0.0/4` (multicast) and `255.255.255.255`.
///
/// Also refused: `240.0.0.0/4`, which RFC 4380 does not list. It is reserved
/// "for future use" (RFC 1112 §4, RFC 6890), no host can hold such an address
/// and common IPv4 stacks will not send to it, so no real mapping can lie
/// there; `255.255.255.255` is inside it anyway.
///
/// Deliberately accepted: `100.64.0.0/10` (shared CGN space, RFC 6598, which
/// a server behind the same carrier NAT legitimately sees) and the
/// documentation ranges (used by our tests and the namespace lab). Miredo
/// accepts both too.
///
/// NOT checked here: RFC 4380 §5.2.4 also refuses "the directed broadcast
/// address of a subnet to which the host is attached". That depends on the
/// host's interfaces, which the sans-IO core does not know: the Linux glue
/// must make that check itself before handing such an address to the core.
pub const fn is_global_unicast(addr: Ipv4Addr) -> bool {
    let [a, b, c, _] = addr.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && b & 0xf0 == 16)
        || (a == 192 && b == 168)
        || (a == 192 && b == 88 && c == 99)
        || a >= 224)
}

/// A Teredo address, with its mapping stored de-obfuscated.
///
/// Any field values can be held; whether they make a *valid* address for a
/// given use (global mapped IPv4, reserved flag bits zero) is checked where
/// the use is, with [`is_global_unicast`] and [`flags_are_valid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TeredoAddr {
    prefix: [u8; 4],
    server: Ipv4Addr,
    flags: u16,
    mapped: SocketAddrV4,
}

impl TeredoAddr {
    /// An address under `prefix`, qualified by `server`, with `flags` and the
    /// client's public (mapped) IPv4 address and UDP port.
    pub const fn new(prefix: [u8; 4], server: Ipv4Addr, flags: u16, mapped: SocketAddrV4) -> Self {
        TeredoAddr {
            prefix,
            server,
            flags,
            mapped,
        }
    }

    /// Decode `addr` if its first 32 bits equal `prefix`; `None` otherwise
    /// (it is then not a Teredo address of this service, RFC 4380 §4).
    pub const fn from_ipv6(addr: Ipv6Addr, prefix: [u8; 4]) -> Option<TeredoAddr> {
        let bits = addr.to_bits();
        if (bits >> 96) as u32 != u32::from_be_bytes(prefix) {
            return None;
        }
        let server = Ipv4Addr::from_bits((bits >> 64) as u32);
        let flags = (bits >> 48) as u16;
        let port = obfuscate_port((bits >> 32) as u16);
        let ip = obfuscate_ipv4(Ipv4Addr::from_bits(bits as u32));
        Some(TeredoAddr::new(
            prefix,
            server,
            flags,
            SocketAddrV4::new(ip, port),
        ))
    }

    /// Encode as an IPv6 address (RFC 4380 §4).
    pub const fn to_ipv6(&self) -> Ipv6Addr {
        let head = ((u32::from_be_bytes(self.prefix) as u128) << 96)
            | ((self.server.to_bits() as u128) << 64);
        Ipv6Addr::from_bits(head | node_id(self.flags, self.mapped) as u128)
    }

    /// The Teredo service prefix (first 32 bits).
    pub const fn prefix(&self) -> [u8; 4] {
        self.prefix
    }

    /// IPv4 address of the Teredo server that qualified the client.
    pub const fn server(&self) -> Ipv4Addr {
        self.server
    }

    /// The 16-bit flags field (RFC 4380 §4, RFC 5991 §3.1).
    pub const fn flags(&self) -> u16 {
        self.flags
    }

    /// The client's mapped (public, NAT-side) IPv4 address and UDP port.
    pub const fn mapped(&self) -> SocketAddrV4 {
        self.mapped
    }

    /// Whether the cone flag is set (RFC 4380 §4).
    pub const fn is_cone(&self) -> bool {
        self.flags & FLAG_CONE != 0
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    const MS: Ipv4Addr = Ipv4Addr::new(65, 54, 227, 120);

    /// teredo-spec.md §1.4: (server, mapped, flags, address).
    const VECTORS: [(Ipv4Addr, SocketAddrV4, u16, &str); 7] = [
        (
            MS,
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 45), 40000),
            0x8000,
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ),
        (
            MS,
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 45), 40000),
            0x0000,
            "2001:0:4136:e378:0:63bf:3fff:fdd2",
        ),
        (
            MS,
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 45), 40000),
            0x285a,
            "2001:0:4136:e378:285a:63bf:3fff:fdd2",
        ),
        (
            Ipv4Addr::new(203, 0, 113, 120),
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4096),
            0,
            "2001:0:cb00:7178:0:efff:3fff:fdfe",
        ),
        (
            Ipv4Addr::new(198, 51, 100, 118),
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 8192),
            0,
            "2001:0:c633:6476:0:dfff:3fff:fdf5",
        ),
        (
            Ipv4Addr::new(203, 0, 113, 120),
            SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 118), 4095),
            0,
            "2001:0:cb00:7178:0:f000:39cc:9b89",
        ),
        (
            Ipv4Addr::new(203, 0, 113, 120),
            SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 118), 4096),
            0,
            "2001:0:cb00:7178:0:efff:39cc:9b89",
        ),
    ];

    #[test]
    fn vectors_construct() {
        for (i, &(server, mapped, flags, text)) in VECTORS.iter().enumerate() {
            let a = TeredoAddr::new(DEFAULT_PREFIX, server, flags, mapped);
            assert_eq!(a.to_ipv6(), text.parse::<Ipv6Addr>().unwrap(), "V{}", i + 1);
        }
    }

    #[test]
    fn vectors_deconstruct() {
        for (i, &(server, mapped, flags, text)) in VECTORS.iter().enumerate() {
            let a = TeredoAddr::from_ipv6(text.parse().unwrap(), DEFAULT_PREFIX).unwrap();
            assert_eq!(a.prefix(), DEFAULT_PREFIX, "V{}", i + 1);
            assert_eq!(a.server(), server, "V{}", i + 1);
            assert_eq!(a.flags(), flags, "V{}", i + 1);
            assert_eq!(a.mapped(), mapped, "V{}", i + 1);
            assert_eq!(a.is_cone(), flags == FLAG_CONE, "V{}", i + 1);
            assert!(flags_are_valid(a.flags()), "V{}", i + 1);
        }
    }

    #[test]
    fn other_prefix_is_not_teredo() {
        let v1: Ipv6Addr = VECTORS[0].3.parse().unwrap();
        assert_eq!(TeredoAddr::from_ipv6(v1, [0x3f, 0xfe, 0x83, 0x1f]), None);
        let db8: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(TeredoAddr::from_ipv6(db8, DEFAULT_PREFIX), None);
        // A non-default prefix round-trips as well.
        let a = TeredoAddr::new([0x3f, 0xfe, 0x83, 0x1f], MS, 0, VECTORS[0].1);
        assert_eq!(
            a.to_ipv6(),
            "3ffe:831f:4136:e378:0:63bf:3fff:fdd2"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert_eq!(
            TeredoAddr::from_ipv6(a.to_ipv6(), [0x3f, 0xfe, 0x83, 0x1f]),
            Some(a)
        );
    }

    #[test]
    fn obfuscation() {
        assert_eq!(obfuscate_port(337), 0xFEAE);
        assert_eq!(
            obfuscate_ipv4(Ipv4Addr::new(1, 2, 3, 4)),
            Ipv4Addr::new(0xFE, 0xFD, 0xFC, 0xFB)
        );
        assert_eq!(obfuscate_port(obfuscate_port(40000)), 40000);
    }

    #[test]
    fn flags() {
        assert_eq!(random_flags(false, 0xffff), 0x3cff);
        assert_eq!(random_flags(true, 0xffff), 0xbcff);
        assert_eq!(random_flags(true, 0), FLAG_CONE);
        // V3's flags: Random1 = 1010b, Random2 = 0x5a.
        assert_eq!(random_flags(false, 0x285a), 0x285a);
        assert!(flags_are_valid(0xbcff));
        assert!(!flags_are_valid(0x4000));
        assert!(!flags_are_valid(0x0200));
        assert!(!flags_are_valid(0x0100));
    }

    #[test]
    fn link_local_forms() {
        // teredo-spec.md §1.4: server link-local for 65.54.227.120.
        assert_eq!(
            server_link_local(MS),
            "fe80::8000:f227:bec9:1c87".parse::<Ipv6Addr>().unwrap()
        );
        let v1 = VECTORS[0];
        assert_eq!(
            link_local(v1.2, v1.1),
            "fe80::8000:63bf:3fff:fdd2".parse::<Ipv6Addr>().unwrap()
        );
        // The RS source constants, and the restricted one as an identifier.
        assert_eq!(
            CLIENT_LL_RESTRICTED,
            "fe80::ffff:ffff:ffff".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            CLIENT_LL_CONE,
            "fe80::8000:5445:5245:444f".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            link_local(0, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            CLIENT_LL_RESTRICTED
        );
        assert_eq!(&CLIENT_LL_CONE.octets()[10..], b"TEREDO");
        assert!(is_link_local(CLIENT_LL_CONE));
        assert!(is_link_local(server_link_local(MS)));
        assert!(is_link_local("febf::1".parse().unwrap()));
        assert!(!is_link_local("fec0::1".parse().unwrap()));
        assert!(!is_link_local(ALL_ROUTERS));
        assert_eq!(ALL_ROUTERS, "ff02::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ALL_NODES, "ff02::1".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn global_unicast_table() {
        let refused = [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "127.0.0.1",
            "169.254.0.0",
            "169.254.255.255",
            "172.16.0.0",
            "172.31.255.255",
            "192.168.0.0",
            "192.168.255.255",
            "192.88.99.0",
            "192.88.99.255",
            "224.0.0.0",
            "224.0.0.253",
            "239.255.255.255",
            "240.0.0.0",
            "255.255.255.254",
            "255.255.255.255",
        ];
        let accepted = [
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "192.88.98.255",
            "192.88.100.0",
            "223.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "192.0.2.45",
            "198.51.100.118",
            "203.0.113.120",
            "65.54.227.120",
        ];
        for a in refused {
            assert!(
                !is_global_unicast(a.parse().unwrap()),
                "{a} must be refused"
            );
        }
        for a in accepted {
            assert!(
                is_global_unicast(a.parse().unwrap()),
                "{a} must be accepted"
            );
        }
    }

    proptest! {
        #[test]
        fn ipv6_round_trip(prefix in any::<[u8; 4]>(), server in any::<u32>(), flags in any::<u16>(),
                           ip in any::<u32>(), port in any::<u16>()) {
            let a = TeredoAddr::new(prefix, Ipv4Addr::from_bits(server), flags,
                                    SocketAddrV4::new(Ipv4Addr::from_bits(ip), port));
            let v6 = a.to_ipv6();
            prop_assert_eq!(TeredoAddr::from_ipv6(v6, prefix), Some(a));
            // The link-local form shares the node identifier.
            prop_assert_eq!(&link_local(flags, a.mapped()).octets()[8..], &v6.octets()[8..]);
        }

        #[test]
        fn any_ipv6_decodes_under_its_own_prefix(bits in any::<u128>()) {
            let v6 = Ipv6Addr::from_bits(bits);
            let prefix = ((bits >> 96) as u32).to_be_bytes();
            let a = TeredoAddr::from_ipv6(v6, prefix).unwrap();
            prop_assert_eq!(a.to_ipv6(), v6);
        }
    }
}
