//! Router Solicitation and Router Advertisement as Teredo uses them
//! (RFC 4861 §4.1, §4.2, §4.6; RFC 4380 §5.2.1, §5.3.2).
//!
//! Qualification is an RS from the client's Teredo link-local address to
//! `ff02::2`, answered by an RA from the server's link-local address carrying
//! the client's /64 prefix (2001:0 + server IPv4) and the link MTU.
//!
//! Written by hand rather than with smoltcp's `NdiscRepr`: that type only
//! exists with the `medium-ethernet` or `medium-ieee802154` features (pulling in
//! link-layer code the core does not need), and its RA holds at most one
//! Prefix Information option, so it cannot tell "one PIO" from "two PIOs" —
//! the difference RFC 4380 §5.2.1 makes a client check. The IPv6 envelope and
//! checksum still come from smoltcp (see `wire::icmpv6`).
//!
//! Both parsers take a whole IPv6 packet; bytes after its Payload Length are
//! ignored (RFC 6081 trailers belong to the caller).

use core::net::Ipv6Addr;

use smoltcp::wire::IPV6_HEADER_LEN;

use super::icmpv6::{self, Received};
use super::{Error, Result};

/// The hop limit every ND message is sent with and must arrive with, proving it
/// was not forwarded by a router (RFC 4861 §6.1.1, §6.1.2).
const ND_HOP_LIMIT: u8 = 255;
/// ICMPv6 type of a Router Solicitation (RFC 4861 §4.1).
const TYPE_RS: u8 = 133;
/// ICMPv6 type of a Router Advertisement (RFC 4861 §4.2).
const TYPE_RA: u8 = 134;
/// Fixed part of an RS: type, code, checksum, reserved (RFC 4861 §4.1).
const RS_FIXED_LEN: usize = 8;
/// Fixed part of an RA, up to the Retrans Timer (RFC 4861 §4.2).
const RA_FIXED_LEN: usize = 16;
/// Option type: Source Link-Layer Address (RFC 4861 §4.6.1).
const OPT_SOURCE_LLADDR: u8 = 1;
/// Option type: Prefix Information (RFC 4861 §4.6.2).
const OPT_PREFIX_INFO: u8 = 3;
/// Option type: MTU (RFC 4861 §4.6.4).
const OPT_MTU: u8 = 5;
/// Length of a Prefix Information option: 4 units of 8 octets.
const PREFIX_INFO_LEN: usize = 32;
/// Length of an MTU option: 1 unit of 8 octets.
const MTU_OPT_LEN: usize = 8;
/// Prefix Information flag: on-link (RFC 4861 §4.6.2).
const PREFIX_FLAG_L: u8 = 0x80;
/// Prefix Information flag: autonomous address configuration (RFC 4861 §4.6.2).
const PREFIX_FLAG_A: u8 = 0x40;
/// Retrans Timer in Miredo's server RA, in milliseconds (miredo.md §3.3).
const TEREDO_RETRANS_TIMER_MS: u32 = 2000;
/// "Infinity" lifetime of a Prefix Information option (RFC 4861 §4.6.2).
const INFINITE_LIFETIME: u32 = 0xffff_ffff;

/// Calls `visit(type, option)` for each option in `options`, where `option` is
/// the whole option including its type and length bytes.
///
/// `Malformed` on a zero-length option (RFC 4861 §4.6: such a packet MUST be
/// dropped), on an option running past the end of the message, or on a stray
/// byte too short to hold an option header.
fn walk_options<'a>(
    mut options: &'a [u8],
    mut visit: impl FnMut(u8, &'a [u8]) -> Result<()>,
) -> Result<()> {
    while !options.is_empty() {
        let &[kind, units] = options.first_chunk::<2>().ok_or(Error::Malformed)?;
        if units == 0 {
            return Err(Error::Malformed);
        }
        let (option, rest) = options
            .split_at_checked(usize::from(units) * 8)
            .ok_or(Error::Malformed)?;
        visit(kind, option)?;
        options = rest;
    }
    Ok(())
}

/// Reads the big-endian `u32` at `at`, or `Malformed` if it is out of bounds.
fn be_u32(bytes: &[u8], at: usize) -> Result<u32> {
    let field = bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<4>)
        .ok_or(Error::Malformed)?;
    Ok(u32::from_be_bytes(*field))
}

/// A Router Solicitation (RFC 4861 §4.1) inside its IPv6 packet.
///
/// Teredo's RS carries no options (there is no link-layer address to
/// advertise); options in a received RS are checked for validity and skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterSolicitation {
    /// IPv6 source: the client's Teredo link-local address, whose cone bit the
    /// server answers (RFC 4380 §5.2.1, §5.3.2).
    pub src: Ipv6Addr,
    /// IPv6 destination, normally all-routers `ff02::2` (RFC 4861 §4.1).
    pub dst: Ipv6Addr,
}

impl RouterSolicitation {
    /// Length of an emitted RS: IPv6 header + 8-byte RS.
    pub const BUFFER_LEN: usize = IPV6_HEADER_LEN + RS_FIXED_LEN;

    /// Parses an RS from a whole IPv6 packet, applying the router-side
    /// validity checks of RFC 4861 §6.1.1: hop limit 255, valid checksum,
    /// code 0, ICMP length ≥ 8, no zero-length option, and no Source
    /// Link-Layer Address option when the source is unspecified.
    ///
    /// `Unrecognized` if the packet is not ICMPv6 type 133; `Checksum` on a bad
    /// checksum; `Truncated` if the bytes are shorter than the IPv6 header says
    /// or the RS is shorter than 8 bytes; `Malformed` for the other rules.
    pub fn parse(ipv6: &[u8]) -> Result<Self> {
        let rx = Received::parse(ipv6)?;
        if rx.msg_type != TYPE_RS {
            return Err(Error::Unrecognized);
        }
        if rx.hop_limit != ND_HOP_LIMIT {
            return Err(Error::Malformed);
        }
        rx.verify_checksum()?;
        if rx.code != 0 {
            return Err(Error::Malformed);
        }
        let options = rx.message.get(RS_FIXED_LEN..).ok_or(Error::Truncated)?;
        let unspecified_src = rx.src.is_unspecified();
        walk_options(options, |kind, _| {
            if unspecified_src && kind == OPT_SOURCE_LLADDR {
                Err(Error::Malformed)
            } else {
                Ok(())
            }
        })?;
        Ok(RouterSolicitation {
            src: rx.src,
            dst: rx.dst,
        })
    }

    /// Writes the RS as a 48-byte IPv6 packet (hop limit 255, reserved field
    /// zero, no options, checksum computed) into `buf` and returns 48.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        icmpv6::emit(
            self.src,
            self.dst,
            ND_HOP_LIMIT,
            RS_FIXED_LEN,
            buf,
            |message| {
                message.fill(0);
                message[0] = TYPE_RS;
            },
        )
    }
}

/// The Prefix Information option of a Teredo RA (RFC 4861 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInformation {
    /// The prefix. Bits after `prefix_len` are zeroed on parse (the receiver
    /// ignores them) and on emit (the sender MUST zero them).
    pub prefix: Ipv6Addr,
    /// Prefix length in bits, 0..=128; Teredo uses 64 (RFC 4380 §2.12).
    pub prefix_len: u8,
    /// L flag: the prefix is on-link.
    pub on_link: bool,
    /// A flag: the prefix may be used for stateless address configuration.
    pub autonomous: bool,
    /// Valid lifetime in seconds; `0xffffffff` means infinity.
    pub valid_lifetime: u32,
    /// Preferred lifetime in seconds; `0xffffffff` means infinity.
    pub preferred_lifetime: u32,
}

impl PrefixInformation {
    /// Parses the 32-byte option (type and length bytes included).
    fn parse(option: &[u8]) -> Result<Self> {
        if option.len() != PREFIX_INFO_LEN {
            return Err(Error::Malformed);
        }
        let prefix_len = *option.get(2).ok_or(Error::Malformed)?;
        let flags = *option.get(3).ok_or(Error::Malformed)?;
        let prefix = option
            .get(16..)
            .and_then(<[u8]>::first_chunk::<16>)
            .ok_or(Error::Malformed)?;
        Ok(PrefixInformation {
            prefix: masked(*prefix, prefix_len)?,
            prefix_len,
            on_link: flags & PREFIX_FLAG_L != 0,
            autonomous: flags & PREFIX_FLAG_A != 0,
            valid_lifetime: be_u32(option, 4)?,
            preferred_lifetime: be_u32(option, 8)?,
        })
    }

    /// Writes the option into exactly 32 bytes, reserved fields zero.
    fn emit(&self, option: &mut [u8; PREFIX_INFO_LEN]) -> Result<()> {
        let prefix = masked(self.prefix.octets(), self.prefix_len)?;
        let mut flags = 0;
        if self.on_link {
            flags |= PREFIX_FLAG_L;
        }
        if self.autonomous {
            flags |= PREFIX_FLAG_A;
        }
        option.fill(0);
        option[0] = OPT_PREFIX_INFO;
        option[1] = (PREFIX_INFO_LEN / 8) as u8;
        option[2] = self.prefix_len;
        option[3] = flags;
        option[4..8].copy_from_slice(&self.valid_lifetime.to_be_bytes());
        option[8..12].copy_from_slice(&self.preferred_lifetime.to_be_bytes());
        option[16..32].copy_from_slice(&prefix.octets());
        Ok(())
    }
}

/// `prefix` with the bits after `len` cleared; `Malformed` if `len` > 128.
fn masked(prefix: [u8; 16], len: u8) -> Result<Ipv6Addr> {
    let mask = match len {
        0 => 0,
        1..=128 => u128::MAX << (128 - u32::from(len)),
        _ => return Err(Error::Malformed),
    };
    Ok(Ipv6Addr::from(u128::from_be_bytes(prefix) & mask))
}

/// A Router Advertisement (RFC 4861 §4.2) as a Teredo server sends it and a
/// Teredo client accepts it: exactly one Prefix Information option and an
/// optional MTU option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterAdvertisement {
    /// IPv6 source: the server's link-local address (RFC 4380 §5.3.2).
    pub src: Ipv6Addr,
    /// IPv6 destination: the source of the RS being answered (RFC 4380 §5.3.2).
    pub dst: Ipv6Addr,
    /// Cur Hop Limit advertised (0 = unspecified).
    pub cur_hop_limit: u8,
    /// The whole flags byte (M = 0x80, O = 0x40, other bits reserved).
    pub flags: u8,
    /// Router Lifetime in seconds; 0 = not a default router.
    pub router_lifetime: u16,
    /// Reachable Time in milliseconds (0 = unspecified).
    pub reachable_time: u32,
    /// Retrans Timer in milliseconds (0 = unspecified).
    pub retrans_timer: u32,
    /// The one Prefix Information option (RFC 4380 §5.2.1).
    pub prefix: PrefixInformation,
    /// The MTU option's value, if the RA carries one (RFC 4861 §4.6.4).
    pub mtu: Option<u32>,
}

impl RouterAdvertisement {
    /// The RA a Teredo server sends, shaped like Miredo's (miredo.md §3.3):
    /// hop limit, flags, router lifetime and reachable time 0, Retrans Timer
    /// 2000 ms, a /64 Prefix Information option for `prefix64` (the Teredo
    /// prefix followed by the server's IPv4, RFC 4380 §5.3.2) with only the A
    /// flag and infinite lifetimes, and an MTU option (1280 by default,
    /// RFC 4380 §5.1.2).
    ///
    /// Router lifetime 0 keeps the client's host from making the server its
    /// default router; it routes through the Teredo interface instead.
    pub fn teredo_default(src: Ipv6Addr, dst: Ipv6Addr, prefix64: [u8; 8], mtu: u32) -> Self {
        let mut prefix = [0u8; 16];
        prefix[..8].copy_from_slice(&prefix64);
        RouterAdvertisement {
            src,
            dst,
            cur_hop_limit: 0,
            flags: 0,
            router_lifetime: 0,
            reachable_time: 0,
            retrans_timer: TEREDO_RETRANS_TIMER_MS,
            prefix: PrefixInformation {
                prefix: Ipv6Addr::from(prefix),
                prefix_len: 64,
                on_link: false,
                autonomous: true,
                valid_lifetime: INFINITE_LIFETIME,
                preferred_lifetime: INFINITE_LIFETIME,
            },
            mtu: Some(mtu),
        }
    }

    /// The first 64 bits of the advertised prefix, if it is a /64 — the Teredo
    /// client prefix (RFC 4380 §2.12). `None` for any other prefix length,
    /// which a Teredo client cannot use.
    pub fn prefix64(&self) -> Option<[u8; 8]> {
        if self.prefix.prefix_len != 64 {
            return None;
        }
        self.prefix.prefix.octets().first_chunk::<8>().copied()
    }

    /// Parses an RA from a whole IPv6 packet.
    ///
    /// Applies the host-side validity checks of RFC 4861 §6.1.2 (link-local
    /// source, hop limit 255, valid checksum, code 0, ICMP length ≥ 16, no
    /// zero-length option) and the Teredo rule of RFC 4380 §5.2.1: exactly one
    /// Prefix Information option — none, or two or more, is `Malformed`.
    /// A Prefix Information option must be 32 bytes and an MTU option 8 bytes
    /// (RFC 4861 §4.6.2, §4.6.4). The first MTU option is kept; unknown options
    /// are skipped.
    ///
    /// Checks that depend on the exchange (destination = the RS source, prefix
    /// = 2001:0 + server IPv4, origin indication present) are the client's.
    ///
    /// `Unrecognized` if the packet is not ICMPv6 type 134; `Checksum` on a bad
    /// checksum; `Truncated` if the bytes are shorter than the IPv6 header says
    /// or the RA is shorter than 16 bytes; `Malformed` otherwise.
    pub fn parse(ipv6: &[u8]) -> Result<Self> {
        let rx = Received::parse(ipv6)?;
        if rx.msg_type != TYPE_RA {
            return Err(Error::Unrecognized);
        }
        if !rx.src.is_unicast_link_local() || rx.hop_limit != ND_HOP_LIMIT {
            return Err(Error::Malformed);
        }
        rx.verify_checksum()?;
        if rx.code != 0 {
            return Err(Error::Malformed);
        }
        let (fixed, options) = rx
            .message
            .split_at_checked(RA_FIXED_LEN)
            .ok_or(Error::Truncated)?;

        let mut prefix = None;
        let mut prefix_count = 0usize;
        let mut mtu = None;
        walk_options(options, |kind, option| {
            match kind {
                OPT_PREFIX_INFO => {
                    prefix_count = prefix_count.saturating_add(1);
                    prefix = Some(PrefixInformation::parse(option)?);
                }
                OPT_MTU => {
                    if option.len() != MTU_OPT_LEN {
                        return Err(Error::Malformed);
                    }
                    if mtu.is_none() {
                        mtu = Some(be_u32(option, 4)?);
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        let prefix = match (prefix, prefix_count) {
            (Some(prefix), 1) => prefix,
            _ => return Err(Error::Malformed),
        };

        let (&[_, _, _, _, cur_hop_limit, flags, lt_hi, lt_lo], _) =
            fixed.split_first_chunk::<8>().ok_or(Error::Truncated)?;
        Ok(RouterAdvertisement {
            src: rx.src,
            dst: rx.dst,
            cur_hop_limit,
            flags,
            router_lifetime: u16::from_be_bytes([lt_hi, lt_lo]),
            reachable_time: be_u32(fixed, 8)?,
            retrans_timer: be_u32(fixed, 12)?,
            prefix,
            mtu,
        })
    }

    /// Length of the emitted IPv6 packet: 96 bytes with an MTU option, 88
    /// without.
    pub fn buffer_len(&self) -> usize {
        IPV6_HEADER_LEN + self.message_len()
    }

    fn message_len(&self) -> usize {
        RA_FIXED_LEN + PREFIX_INFO_LEN + if self.mtu.is_some() { MTU_OPT_LEN } else { 0 }
    }

    /// Writes the RA (hop limit 255, Prefix Information then MTU option,
    /// checksum computed) into `buf` and returns [`Self::buffer_len`].
    ///
    /// `Malformed` if the prefix length exceeds 128; `BufferTooSmall` if `buf`
    /// is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        // Build the options first so that a bad prefix length fails before any
        // byte of `buf` is touched.
        let mut pio = [0u8; PREFIX_INFO_LEN];
        self.prefix.emit(&mut pio)?;
        icmpv6::emit(
            self.src,
            self.dst,
            ND_HOP_LIMIT,
            self.message_len(),
            buf,
            |message| {
                message.fill(0);
                message[0] = TYPE_RA;
                message[4] = self.cur_hop_limit;
                message[5] = self.flags;
                message[6..8].copy_from_slice(&self.router_lifetime.to_be_bytes());
                message[8..12].copy_from_slice(&self.reachable_time.to_be_bytes());
                message[12..16].copy_from_slice(&self.retrans_timer.to_be_bytes());
                message[RA_FIXED_LEN..RA_FIXED_LEN + PREFIX_INFO_LEN].copy_from_slice(&pio);
                if let Some(mtu) = self.mtu {
                    let at = RA_FIXED_LEN + PREFIX_INFO_LEN;
                    message[at] = OPT_MTU;
                    message[at + 1] = (MTU_OPT_LEN / 8) as u8;
                    message[at + 4..at + 8].copy_from_slice(&mtu.to_be_bytes());
                }
            },
        )
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
    /// Miredo's client link-local source, "Vista variant" (miredo.md §3.3).
    const CLIENT_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xffff, 0xffff, 0xffff);
    /// Miredo's cone-bit client link-local source (teredo-spec §1.3).
    const CLIENT_LL_CONE: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x8000, 0x5445, 0x5245, 0x444f);
    /// Link-local address of the server 198.51.100.1 (`8000:f227:~IPv4`).
    const SERVER_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x8000, 0xf227, 0x39cc, 0x9bfe);
    /// 2001:0 + 198.51.100.1.
    const PREFIX64: [u8; 8] = [0x20, 0x01, 0x00, 0x00, 0xc6, 0x33, 0x64, 0x01];

    /// RS from fe80::ffff:ffff:ffff to ff02::2; checksum 0x7d37 (teredo-spec §1.4).
    static RS: [u8; 48] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x3a, 0xff, //
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, //
        0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, //
        0x85, 0x00, 0x7d, 0x37, 0x00, 0x00, 0x00, 0x00, //
    ];

    /// RA from server 198.51.100.1 to fe80::ffff:ffff:ffff: prefix
    /// 2001:0:c633:6401::/64 (A flag, infinite lifetimes), MTU 1280, Retrans
    /// Timer 2000 ms. Checksum 0x954c, computed independently with a script.
    static RA: [u8; 96] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x38, 0x3a, 0xff, //
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x80, 0x00, 0xf2, 0x27, 0x39, 0xcc, 0x9b, 0xfe, //
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, //
        0x86, 0x00, 0x95, 0x4c, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0xd0, //
        0x03, 0x04, 0x40, 0x40, 0xff, 0xff, 0xff, 0xff, //
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, //
        0x20, 0x01, 0x00, 0x00, 0xc6, 0x33, 0x64, 0x01, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, //
    ];

    /// Offset of the ICMPv6 message in the vectors.
    const ICMP: usize = 40;

    /// Recomputes the ICMPv6 checksum and Payload Length of `packet` after a
    /// test edited it, so that only the rule under test is violated.
    fn refresh(packet: &mut [u8]) {
        let len = packet.len() - 40;
        packet[4..6].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&packet[8..24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&packet[24..40]).unwrap());
        smoltcp::wire::Icmpv6Packet::new_unchecked(&mut packet[40..]).fill_checksum(&src, &dst);
    }

    #[test]
    fn rs_deconstruct() {
        let rs = RouterSolicitation::parse(&RS).unwrap();
        assert_eq!(
            rs,
            RouterSolicitation {
                src: CLIENT_LL,
                dst: ALL_ROUTERS
            }
        );
    }

    #[test]
    fn rs_construct() {
        let mut buf = [0xa5u8; 56];
        let rs = RouterSolicitation {
            src: CLIENT_LL,
            dst: ALL_ROUTERS,
        };
        assert_eq!(rs.emit(&mut buf), Ok(RouterSolicitation::BUFFER_LEN));
        assert_eq!(buf[..48], RS);
        assert!(buf[48..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn rs_cone_checksum() {
        let mut buf = [0u8; 48];
        RouterSolicitation {
            src: CLIENT_LL_CONE,
            dst: ALL_ROUTERS,
        }
        .emit(&mut buf)
        .unwrap();
        assert_eq!(buf[ICMP + 2..ICMP + 4], [0x12, 0x5d]);
    }

    #[test]
    fn rs_buffer_too_small() {
        let mut buf = [0u8; 47];
        let rs = RouterSolicitation {
            src: CLIENT_LL,
            dst: ALL_ROUTERS,
        };
        assert_eq!(rs.emit(&mut buf), Err(Error::BufferTooSmall));
    }

    #[test]
    fn rs_validity_rules() {
        let mut v = RS;
        v[7] = 254;
        assert_eq!(
            RouterSolicitation::parse(&v),
            Err(Error::Malformed),
            "hop limit"
        );
        let mut v = RS;
        v[ICMP + 3] ^= 1;
        assert_eq!(RouterSolicitation::parse(&v), Err(Error::Checksum));
        let mut v = RS;
        v[ICMP + 1] = 1;
        refresh(&mut v);
        assert_eq!(RouterSolicitation::parse(&v), Err(Error::Malformed), "code");
        let mut v = RS[..46].to_vec();
        refresh(&mut v);
        assert_eq!(
            RouterSolicitation::parse(&v),
            Err(Error::Truncated),
            "ICMP length 6"
        );
        let mut v = RS;
        v[ICMP] = 134;
        refresh(&mut v);
        assert_eq!(RouterSolicitation::parse(&v), Err(Error::Unrecognized));
        assert_eq!(RouterSolicitation::parse(&RS[..47]), Err(Error::Truncated));
    }

    #[test]
    fn rs_options() {
        // A Source Link-Layer Address option: fine from a real source...
        let mut v = RS.to_vec();
        v.extend_from_slice(&[OPT_SOURCE_LLADDR, 1, 2, 0, 0, 0, 0, 1]);
        refresh(&mut v);
        assert!(RouterSolicitation::parse(&v).is_ok());
        // ...not from the unspecified address (RFC 4861 §6.1.1).
        v[8..24].fill(0);
        refresh(&mut v);
        assert_eq!(RouterSolicitation::parse(&v), Err(Error::Malformed));
        // An unspecified source without SLLA is acceptable.
        let mut v = RS;
        v[8..24].fill(0);
        refresh(&mut v);
        assert!(RouterSolicitation::parse(&v).is_ok());
        // A zero-length option.
        let mut v = RS.to_vec();
        v.extend_from_slice(&[200, 0, 0, 0, 0, 0, 0, 0]);
        refresh(&mut v);
        assert_eq!(RouterSolicitation::parse(&v), Err(Error::Malformed));
    }

    #[test]
    fn rs_trailing_bytes_ignored() {
        let mut v = RS.to_vec();
        v.extend_from_slice(&[1, 4, 0, 0, 0, 0]);
        assert!(RouterSolicitation::parse(&v).is_ok());
    }

    fn expected_ra() -> RouterAdvertisement {
        RouterAdvertisement {
            src: SERVER_LL,
            dst: CLIENT_LL,
            cur_hop_limit: 0,
            flags: 0,
            router_lifetime: 0,
            reachable_time: 0,
            retrans_timer: 2000,
            prefix: PrefixInformation {
                prefix: Ipv6Addr::new(0x2001, 0, 0xc633, 0x6401, 0, 0, 0, 0),
                prefix_len: 64,
                on_link: false,
                autonomous: true,
                valid_lifetime: 0xffff_ffff,
                preferred_lifetime: 0xffff_ffff,
            },
            mtu: Some(1280),
        }
    }

    #[test]
    fn ra_deconstruct() {
        let ra = RouterAdvertisement::parse(&RA).unwrap();
        assert_eq!(ra.src, SERVER_LL);
        assert_eq!(ra.dst, CLIENT_LL);
        assert_eq!(ra.cur_hop_limit, 0);
        assert_eq!(ra.flags, 0);
        assert_eq!(ra.router_lifetime, 0);
        assert_eq!(ra.reachable_time, 0);
        assert_eq!(ra.retrans_timer, 2000);
        assert_eq!(
            ra.prefix.prefix,
            Ipv6Addr::new(0x2001, 0, 0xc633, 0x6401, 0, 0, 0, 0)
        );
        assert_eq!(ra.prefix.prefix_len, 64);
        assert!(!ra.prefix.on_link);
        assert!(ra.prefix.autonomous);
        assert_eq!(ra.prefix.valid_lifetime, 0xffff_ffff);
        assert_eq!(ra.prefix.preferred_lifetime, 0xffff_ffff);
        assert_eq!(ra.mtu, Some(1280));
        assert_eq!(ra.prefix64(), Some(PREFIX64));
        assert_eq!(ra, expected_ra());
    }

    #[test]
    fn ra_construct() {
        let ra = RouterAdvertisement::teredo_default(SERVER_LL, CLIENT_LL, PREFIX64, 1280);
        assert_eq!(ra, expected_ra());
        assert_eq!(ra.buffer_len(), 96);
        let mut buf = [0xa5u8; 104];
        assert_eq!(ra.emit(&mut buf), Ok(96));
        assert_eq!(buf[..96], RA);
        assert!(buf[96..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn ra_without_mtu() {
        let ra = RouterAdvertisement {
            mtu: None,
            ..expected_ra()
        };
        assert_eq!(ra.buffer_len(), 88);
        let mut buf = [0u8; 88];
        assert_eq!(ra.emit(&mut buf), Ok(88));
        assert_eq!(buf[ICMP + 16..], RA[ICMP + 16..88]);
        assert_eq!(RouterAdvertisement::parse(&buf), Ok(ra));
    }

    #[test]
    fn ra_emit_errors() {
        let mut buf = [0u8; 96];
        assert_eq!(
            expected_ra().emit(&mut buf[..95]),
            Err(Error::BufferTooSmall)
        );
        let mut ra = expected_ra();
        ra.prefix.prefix_len = 129;
        assert_eq!(ra.emit(&mut buf), Err(Error::Malformed));
    }

    #[test]
    fn ra_prefix_bits_beyond_length_cleared() {
        let mut v = RA;
        v[ICMP + 16 + 16 + 8] = 0x77; // first byte of the interface-ID half
        refresh(&mut v);
        assert_eq!(
            RouterAdvertisement::parse(&v).unwrap().prefix,
            expected_ra().prefix
        );
        let mut ra = expected_ra();
        ra.prefix.prefix = Ipv6Addr::new(0x2001, 0, 0xc633, 0x6401, 0x7700, 0, 0, 1);
        let mut buf = [0u8; 96];
        ra.emit(&mut buf).unwrap();
        assert_eq!(buf, RA);
    }

    #[test]
    fn ra_prefix64_needs_slash_64() {
        let mut ra = expected_ra();
        ra.prefix.prefix_len = 48;
        assert_eq!(ra.prefix64(), None);
    }

    #[test]
    fn ra_validity_rules() {
        let mut v = RA;
        v[8] = 0x20; // source 2000:: is global, not link-local
        v[9] = 0x00;
        refresh(&mut v);
        assert_eq!(
            RouterAdvertisement::parse(&v),
            Err(Error::Malformed),
            "source"
        );
        let mut v = RA;
        v[7] = 64;
        assert_eq!(
            RouterAdvertisement::parse(&v),
            Err(Error::Malformed),
            "hop limit"
        );
        let mut v = RA;
        v[ICMP + 20] ^= 0x80;
        assert_eq!(RouterAdvertisement::parse(&v), Err(Error::Checksum));
        let mut v = RA;
        v[ICMP + 1] = 1;
        refresh(&mut v);
        assert_eq!(
            RouterAdvertisement::parse(&v),
            Err(Error::Malformed),
            "code"
        );
        let mut v = RA[..ICMP + 12].to_vec();
        refresh(&mut v);
        assert_eq!(
            RouterAdvertisement::parse(&v),
            Err(Error::Truncated),
            "12-byte RA"
        );
        let mut v = RA;
        v[ICMP] = 133;
        refresh(&mut v);
        assert_eq!(RouterAdvertisement::parse(&v), Err(Error::Unrecognized));
        assert_eq!(RouterAdvertisement::parse(&RA[..95]), Err(Error::Truncated));
    }

    /// The RA's fixed part followed by `options`, checksummed.
    fn ra_with_options(options: &[&[u8]]) -> Vec<u8> {
        let mut v = RA[..ICMP + RA_FIXED_LEN].to_vec();
        for option in options {
            v.extend_from_slice(option);
        }
        refresh(&mut v);
        v
    }

    #[test]
    fn ra_prefix_option_count() {
        let pio = &RA[ICMP + 16..ICMP + 48];
        let mtu = &RA[ICMP + 48..ICMP + 56];
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[pio, mtu])),
            Ok(expected_ra())
        );
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[mtu])),
            Err(Error::Malformed),
            "no PIO"
        );
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[])),
            Err(Error::Malformed),
            "no options"
        );
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[pio, mtu, pio])),
            Err(Error::Malformed),
            "two PIOs"
        );
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[pio, pio, pio])),
            Err(Error::Malformed),
            "three PIOs"
        );
    }

    #[test]
    fn ra_options() {
        let pio = &RA[ICMP + 16..ICMP + 48];
        let mtu = &RA[ICMP + 48..ICMP + 56];
        let unknown: &[u8] = &[24, 1, 0, 0, 0, 0, 0, 0]; // Route Information, skipped
        let second_mtu: &[u8] = &[5, 1, 0, 0, 0, 0, 0x05, 0xdc];
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[unknown, pio, mtu, second_mtu])),
            Ok(expected_ra())
        );
        let zero_len: &[u8] = &[24, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[pio, zero_len])),
            Err(Error::Malformed),
            "zero-length option"
        );
        let truncated = &pio[..24];
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[mtu, truncated])),
            Err(Error::Malformed),
            "truncated PIO"
        );
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[pio, &[5]])),
            Err(Error::Malformed),
            "stray byte"
        );
        let short_pio: &[u8] = &[3, 1, 64, 0x40, 0, 0, 0, 0];
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[short_pio])),
            Err(Error::Malformed),
            "PIO of length 1"
        );
        let long_mtu: &[u8] = &[5, 2, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[pio, long_mtu])),
            Err(Error::Malformed),
            "MTU of length 2"
        );
        let mut bad_len = pio.to_vec();
        bad_len[2] = 129;
        assert_eq!(
            RouterAdvertisement::parse(&ra_with_options(&[&bad_len])),
            Err(Error::Malformed),
            "prefix length 129"
        );
    }

    fn any_addr() -> impl Strategy<Value = Ipv6Addr> {
        any::<[u8; 16]>().prop_map(Ipv6Addr::from)
    }

    fn link_local() -> impl Strategy<Value = Ipv6Addr> {
        any::<u64>().prop_map(|iid| Ipv6Addr::from((0xfe80u128 << 112) | u128::from(iid)))
    }

    prop_compose! {
        fn any_ra()(
            src in link_local(), dst in any_addr(),
            cur_hop_limit: u8, flags: u8, router_lifetime: u16, reachable_time: u32, retrans_timer: u32,
            prefix in any_addr(), prefix_len in 0u8..=128, on_link: bool, autonomous: bool,
            valid_lifetime: u32, preferred_lifetime: u32, mtu: Option<u32>,
        ) -> RouterAdvertisement {
            RouterAdvertisement {
                src, dst, cur_hop_limit, flags, router_lifetime, reachable_time, retrans_timer,
                prefix: PrefixInformation {
                    prefix: masked(prefix.octets(), prefix_len).unwrap(),
                    prefix_len, on_link, autonomous, valid_lifetime, preferred_lifetime,
                },
                mtu,
            }
        }
    }

    proptest! {
        #[test]
        fn rs_round_trip(src in any_addr(), dst in any_addr()) {
            let rs = RouterSolicitation { src, dst };
            let mut buf = [0u8; 48];
            prop_assert_eq!(rs.emit(&mut buf), Ok(48));
            prop_assert_eq!(RouterSolicitation::parse(&buf), Ok(rs));
        }

        #[test]
        fn ra_round_trip(ra in any_ra()) {
            let mut buf = [0u8; 96];
            let n = ra.emit(&mut buf).unwrap();
            prop_assert_eq!(n, ra.buffer_len());
            prop_assert_eq!(RouterAdvertisement::parse(&buf[..n]), Ok(ra));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            let _ = RouterSolicitation::parse(&bytes);
            let _ = RouterAdvertisement::parse(&bytes);
        }

        #[test]
        fn arbitrary_options_never_panic(options in proptest::collection::vec(any::<u8>(), 0..120)) {
            // Valid envelope and fixed parts, so the option walker sees the bytes.
            let mut ra = RA[..ICMP + RA_FIXED_LEN].to_vec();
            ra.extend_from_slice(&options);
            refresh(&mut ra);
            let _ = RouterAdvertisement::parse(&ra);
            let mut rs = RS.to_vec();
            rs.extend_from_slice(&options);
            refresh(&mut rs);
            let _ = RouterSolicitation::parse(&rs);
        }
    }
}
