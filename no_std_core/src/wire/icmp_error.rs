//! ICMPv6 Destination Unreachable (RFC 4443 §3.1) and the rules on when an
//! error may be sent at all (RFC 4443 §2.4).
//!
//! Teredo nodes send Destination Unreachable when they cannot deliver a packet
//! read from the tunnel: not qualified, bubble or echo budget exhausted, a
//! destination the role does not serve (miredo.md §3.11). A client also reads
//! incoming ones: a peer that never answers pings may still send back an error
//! quoting the client's echo request, which proves reachability
//! (miredo.md §3.8).
//!
//! Callers MUST rate-limit the errors they originate (RFC 4443 §2.4(f)); the
//! core's token bucket is `limits::TokenBucket`. This module only builds them.
//!
//! Written by hand rather than with smoltcp's `Icmpv6Repr::DstUnreachable`:
//! that type re-emits the quoted packet's header from an `Ipv6Repr`, which
//! zeroes its traffic class and flow label, whereas RFC 4443 §3.1 quotes the
//! invoking packet as it was; and its parser requires a full quoted IPv6
//! header, while a receiver here should see whatever was quoted.

use core::net::Ipv6Addr;

use smoltcp::wire::{Icmpv6DstUnreachable, IpProtocol, Ipv6Packet, IPV6_HEADER_LEN, IPV6_MIN_MTU};

use super::icmpv6::{self, Received};
use super::{Error, Result};

/// Type, code, checksum and the 4 unused bytes before the quoted packet.
const UNREACH_HEADER_LEN: usize = 8;
/// The most of the invoking packet an error can quote while the whole error
/// stays within the IPv6 minimum MTU (RFC 4443 §2.4(c)): 1280 − 40 − 8.
pub const MAX_QUOTE_LEN: usize = IPV6_MIN_MTU - IPV6_HEADER_LEN - UNREACH_HEADER_LEN;
/// Hop limit of the errors this crate originates: the usual default for
/// unicast packets (IANA "Default Hop Limit"), as a kernel would use.
pub const ERROR_HOP_LIMIT: u8 = 64;
/// ICMPv6 type of a Destination Unreachable (RFC 4443 §3.1).
const TYPE_DST_UNREACHABLE: u8 = 1;
/// ICMPv6 type of a Redirect, which RFC 4443 §2.4(e.2) treats like an error.
const TYPE_REDIRECT: u8 = 137;
/// ICMPv6 types below this are error messages (RFC 4443 §2.1).
const FIRST_INFORMATIONAL_TYPE: u8 = 128;

/// An ICMPv6 Destination Unreachable message (RFC 4443 §3.1) and the IPv6
/// header around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DstUnreachable<'a> {
    /// IPv6 source: the node reporting the error.
    pub src: Ipv6Addr,
    /// IPv6 destination: the source of the invoking packet.
    pub dst: Ipv6Addr,
    /// IPv6 hop limit.
    pub hop_limit: u8,
    /// The code: 0 no route, 1 administratively prohibited, 3 address
    /// unreachable, 4 port unreachable, others as registered.
    pub reason: Icmpv6DstUnreachable,
    /// The quoted invoking packet, starting with its IPv6 header. Possibly
    /// truncated by the sender; never verified here.
    pub quoted: &'a [u8],
}

impl<'a> DstUnreachable<'a> {
    /// Parses a Destination Unreachable from a whole IPv6 packet, verifying
    /// the ICMPv6 checksum (RFC 4443 §2.3). Every code is accepted; the unused
    /// field is ignored (RFC 4443 §3.1).
    ///
    /// `Unrecognized` if the packet is not ICMPv6 type 1; `Checksum` on a bad
    /// checksum; `Truncated` if the message is shorter than 8 bytes or the
    /// bytes are shorter than the IPv6 header says.
    pub fn parse(ipv6: &'a [u8]) -> Result<Self> {
        let rx = Received::parse(ipv6)?;
        if rx.msg_type != TYPE_DST_UNREACHABLE {
            return Err(Error::Unrecognized);
        }
        rx.verify_checksum()?;
        let quoted = rx
            .message
            .get(UNREACH_HEADER_LEN..)
            .ok_or(Error::Truncated)?;
        Ok(DstUnreachable {
            src: rx.src,
            dst: rx.dst,
            hop_limit: rx.hop_limit,
            reason: Icmpv6DstUnreachable::from(rx.code),
            quoted,
        })
    }

    /// The part of `quoted` that will be emitted: at most [`MAX_QUOTE_LEN`]
    /// bytes, so the error fits the IPv6 minimum MTU (RFC 4443 §2.4(c)).
    fn quote(&self) -> &'a [u8] {
        self.quoted.get(..MAX_QUOTE_LEN).unwrap_or(self.quoted)
    }

    /// Length of the emitted IPv6 packet: 48 bytes plus the quote, at most
    /// 1280.
    pub fn buffer_len(&self) -> usize {
        IPV6_HEADER_LEN + UNREACH_HEADER_LEN + self.quote().len()
    }

    /// Writes the error (unused field zero, quote truncated to
    /// [`MAX_QUOTE_LEN`], checksum computed) into `buf` and returns
    /// [`Self::buffer_len`]. `BufferTooSmall` if `buf` is shorter.
    ///
    /// This does not apply [`may_answer`]; [`emit_unreachable`] does.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let quote = self.quote();
        let code = u8::from(self.reason);
        icmpv6::emit(
            self.src,
            self.dst,
            self.hop_limit,
            UNREACH_HEADER_LEN + quote.len(),
            buf,
            |message| {
                let (header, body) = message.split_at_mut(UNREACH_HEADER_LEN);
                // The unused field is zero (RFC 4443 §3.1).
                header.fill(0);
                header[0] = TYPE_DST_UNREACHABLE;
                header[1] = code;
                body.copy_from_slice(quote);
            },
        )
    }
}

/// Builds the Destination Unreachable that `src` sends about `offending`, an
/// IPv6 packet it could not deliver, into `buf`; returns its length.
///
/// The error goes to the offending packet's source (RFC 4443 §2.2) with hop
/// limit [`ERROR_HOP_LIMIT`], and quotes the offending IPv6 packet (up to its
/// Payload Length; trailing bytes are not part of it) truncated so the whole
/// error is at most 1280 bytes (RFC 4443 §2.4(c)). The caller is responsible
/// for rate limiting (RFC 4443 §2.4(f)).
///
/// `Unrecognized` if [`may_answer`] forbids an error about `offending`;
/// `BufferTooSmall` if `buf` cannot hold it (1280 bytes always suffice).
pub fn emit_unreachable(
    src: Ipv6Addr,
    reason: Icmpv6DstUnreachable,
    offending: &[u8],
    buf: &mut [u8],
) -> Result<usize> {
    let header = ipv6_header(offending).ok_or(Error::Unrecognized)?;
    if !may_answer(offending) {
        return Err(Error::Unrecognized);
    }
    DstUnreachable {
        src,
        dst: header.src_addr(),
        hop_limit: ERROR_HOP_LIMIT,
        reason,
        quoted: offending.get(..header.total_len()).unwrap_or(offending),
    }
    .emit(buf)
}

/// A view of the fixed IPv6 header at the start of `packet`, or `None` if
/// fewer than 40 bytes. Only fixed-header accessors may be used on it (the
/// view is 40 bytes long whatever the Payload Length says).
fn ipv6_header(packet: &[u8]) -> Option<Ipv6Packet<&[u8]>> {
    let header: &[u8] = packet.first_chunk::<IPV6_HEADER_LEN>()?;
    Some(Ipv6Packet::new_unchecked(header))
}

/// Whether an ICMPv6 error may be sent about `offending`, an IPv6 packet
/// (RFC 4443 §2.4(e)). False when:
/// - it is not an IPv6 packet (shorter than 40 bytes, or version ≠ 6);
/// - its source is unspecified or multicast, so it names no single node
///   (§2.4(e.6); anycast sources cannot be recognised from the bytes);
/// - its destination is multicast (§2.4(e.3); the exceptions, Packet Too Big
///   and Parameter Problem code 2, are errors this crate never sends);
/// - it is an ICMPv6 error or a Redirect (§2.4(e.1), (e.2)), found after any
///   Hop-by-Hop, Routing, Destination Options and Fragment headers;
/// - that cannot be decided because the headers are cut short or it is a
///   non-first fragment: staying silent is the safe side.
///
/// The link-layer conditions (e.4, e.5) do not exist on a Teredo tunnel.
pub fn may_answer(offending: &[u8]) -> bool {
    let Some(header) = ipv6_header(offending) else {
        return false;
    };
    if header.version() != 6
        || header.src_addr().is_unspecified()
        || header.src_addr().is_multicast()
        || header.dst_addr().is_multicast()
    {
        return false;
    }
    let payload = offending
        .get(IPV6_HEADER_LEN..header.total_len().min(offending.len()))
        .unwrap_or(&[]);
    upper_layer_may_be_answered(header.next_header(), payload)
}

/// Walks the extension headers from `next_header` over `rest` and says whether
/// the upper layer is something other than an ICMPv6 error or Redirect.
fn upper_layer_may_be_answered(mut next_header: IpProtocol, mut rest: &[u8]) -> bool {
    // Each step consumes at least 8 bytes, so the loop ends.
    loop {
        match next_header {
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                // Generic extension header: Next Header, Hdr Ext Len in
                // 8-octet units not counting the first 8 (RFC 8200 §4.3).
                let Some(&[next, units]) = rest.first_chunk::<2>() else {
                    return false;
                };
                let Some((_, after)) = rest.split_at_checked((usize::from(units) + 1) * 8) else {
                    return false;
                };
                next_header = IpProtocol::from(next);
                rest = after;
            }
            IpProtocol::Ipv6Frag => {
                let Some((fragment, after)) = rest.split_first_chunk::<8>() else {
                    return false;
                };
                // A non-first fragment hides the upper-layer header.
                if u16::from_be_bytes([fragment[2], fragment[3]]) & 0xfff8 != 0 {
                    return false;
                }
                next_header = IpProtocol::from(fragment[0]);
                rest = after;
            }
            IpProtocol::Icmpv6 => {
                return match rest.first() {
                    Some(&msg_type) => {
                        msg_type >= FIRST_INFORMATIONAL_TYPE && msg_type != TYPE_REDIRECT
                    }
                    None => false,
                };
            }
            _ => return true,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    const CLIENT: Ipv6Addr =
        Ipv6Addr::new(0x2001, 0, 0x4136, 0xe378, 0x8000, 0x63bf, 0x3fff, 0xfdd2);
    const PEER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const RELAY: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xffff);

    /// The echo request of `wire::echo`'s vectors (CLIENT → PEER).
    static ECHO_REQUEST: [u8; 56] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x10, 0x3a, 0x80, //
        0x20, 0x01, 0x00, 0x00, 0x41, 0x36, 0xe3, 0x78, //
        0x80, 0x00, 0x63, 0xbf, 0x3f, 0xff, 0xfd, 0xd2, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x80, 0x00, 0x37, 0xe0, 0x12, 0x34, 0x00, 0x01, //
        0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, //
    ];

    /// RELAY tells CLIENT that PEER is unreachable (code 3), quoting the echo
    /// request. Checksum 0xd040 computed with a script.
    static UNREACH: [u8; 104] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x40, 0x3a, 0x40, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, //
        0x20, 0x01, 0x00, 0x00, 0x41, 0x36, 0xe3, 0x78, //
        0x80, 0x00, 0x63, 0xbf, 0x3f, 0xff, 0xfd, 0xd2, //
        0x01, 0x03, 0xd0, 0x40, 0x00, 0x00, 0x00, 0x00, //
        0x60, 0x00, 0x00, 0x00, 0x00, 0x10, 0x3a, 0x80, //
        0x20, 0x01, 0x00, 0x00, 0x41, 0x36, 0xe3, 0x78, //
        0x80, 0x00, 0x63, 0xbf, 0x3f, 0xff, 0xfd, 0xd2, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x80, 0x00, 0x37, 0xe0, 0x12, 0x34, 0x00, 0x01, //
        0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, //
    ];

    /// A 1400-byte UDP packet from PEER to CLIENT with a non-zero traffic
    /// class and flow label, which the quote must keep.
    fn big_udp() -> Vec<u8> {
        let mut v = vec![0x6a, 0xbc, 0xde, 0xf0, 0x05, 0x50, 17, 60];
        v.extend_from_slice(&PEER.octets());
        v.extend_from_slice(&CLIENT.octets());
        v.extend((0..1360u32).map(|i| (i * 7) as u8));
        v
    }

    /// An IPv6 packet from `src` to `dst` with next header `nh` and `payload`.
    fn packet(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        v.extend_from_slice(&[nh, 64]);
        v.extend_from_slice(&src.octets());
        v.extend_from_slice(&dst.octets());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn deconstruct() {
        let e = DstUnreachable::parse(&UNREACH).unwrap();
        assert_eq!((e.src, e.dst, e.hop_limit), (RELAY, CLIENT, 64));
        assert_eq!(e.reason, Icmpv6DstUnreachable::AddrUnreachable);
        assert_eq!(e.quoted, &ECHO_REQUEST[..]);
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 112];
        let n = emit_unreachable(
            RELAY,
            Icmpv6DstUnreachable::AddrUnreachable,
            &ECHO_REQUEST,
            &mut buf,
        );
        // emit_unreachable answers the offending packet's source: CLIENT.
        assert_eq!(n, Ok(104));
        assert_eq!(buf[..104], UNREACH);
        assert!(buf[104..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn codes() {
        let mut buf = [0u8; 1280];
        for (reason, code) in [
            (Icmpv6DstUnreachable::NoRoute, 0),
            (Icmpv6DstUnreachable::AdminProhibit, 1),
            (Icmpv6DstUnreachable::AddrUnreachable, 3),
            (Icmpv6DstUnreachable::PortUnreachable, 4),
        ] {
            let n = emit_unreachable(RELAY, reason, &ECHO_REQUEST, &mut buf).unwrap();
            assert_eq!(buf[41], code);
            assert_eq!(DstUnreachable::parse(&buf[..n]).unwrap().reason, reason);
        }
    }

    #[test]
    fn quote_truncated_to_minimum_mtu() {
        let offending = big_udp();
        assert_eq!(offending.len(), 1400);
        let mut buf = [0xa5u8; 1400];
        let n =
            emit_unreachable(RELAY, Icmpv6DstUnreachable::NoRoute, &offending, &mut buf).unwrap();
        assert_eq!(n, 1280);
        assert_eq!(buf[4..6], [0x04, 0xd8], "Payload Length 1240");
        assert_eq!(buf[24..40], PEER.octets());
        assert_eq!(buf[42..44], [0xdd, 0x2d], "checksum computed with a script");
        assert_eq!(buf[48..1280], offending[..1232]);
        assert!(buf[1280..].iter().all(|&b| b == 0xa5));
        let e = DstUnreachable::parse(&buf[..n]).unwrap();
        assert_eq!(e.quoted.len(), MAX_QUOTE_LEN);
        assert_eq!(MAX_QUOTE_LEN, 1232);
    }

    #[test]
    fn quote_stops_at_payload_length() {
        // RFC 6081 trailers after the offending packet are not quoted.
        let mut offending = ECHO_REQUEST.to_vec();
        offending.extend_from_slice(&[0x01, 0x04, 9, 9, 9, 9]);
        let mut buf = [0u8; 120];
        assert_eq!(
            emit_unreachable(
                RELAY,
                Icmpv6DstUnreachable::AddrUnreachable,
                &offending,
                &mut buf
            ),
            Ok(104)
        );
        assert_eq!(buf[..104], UNREACH);
    }

    #[test]
    fn emit_errors() {
        let mut buf = [0u8; 103];
        assert_eq!(
            emit_unreachable(
                RELAY,
                Icmpv6DstUnreachable::AddrUnreachable,
                &ECHO_REQUEST,
                &mut buf
            ),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(
            emit_unreachable(
                RELAY,
                Icmpv6DstUnreachable::AddrUnreachable,
                &UNREACH,
                &mut [0u8; 1280]
            ),
            Err(Error::Unrecognized),
            "never about an ICMPv6 error"
        );
    }

    #[test]
    fn parse_rejects() {
        let mut v = UNREACH;
        v[60] ^= 1;
        assert_eq!(DstUnreachable::parse(&v), Err(Error::Checksum));
        assert_eq!(
            DstUnreachable::parse(&ECHO_REQUEST),
            Err(Error::Unrecognized)
        );
        assert_eq!(
            DstUnreachable::parse(&UNREACH[..103]),
            Err(Error::Truncated)
        );
        let mut v = [0u8; 46];
        icmpv6::emit(RELAY, CLIENT, 64, 6, &mut v, |m| m[0] = 1).unwrap();
        assert_eq!(DstUnreachable::parse(&v), Err(Error::Truncated));
        // An empty quote is accepted: the receiver decides what it needs.
        let e = DstUnreachable {
            src: RELAY,
            dst: CLIENT,
            hop_limit: 1,
            reason: 7.into(),
            quoted: &[],
        };
        let mut buf = [0u8; 48];
        assert_eq!(e.emit(&mut buf), Ok(48));
        assert_eq!(DstUnreachable::parse(&buf), Ok(e));
    }

    #[test]
    fn may_answer_rules() {
        let udp = [0u8; 8];
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        assert!(may_answer(&packet(CLIENT, PEER, 17, &udp)));
        assert!(
            may_answer(&ECHO_REQUEST),
            "informational ICMPv6 may be answered"
        );
        assert!(!may_answer(&UNREACH), "ICMPv6 error (e.1)");
        assert!(
            !may_answer(&packet(CLIENT, PEER, 58, &[2, 0, 0, 0])),
            "Packet Too Big (e.1)"
        );
        assert!(
            !may_answer(&packet(CLIENT, PEER, 58, &[127])),
            "type 127 is an error"
        );
        assert!(may_answer(&packet(CLIENT, PEER, 58, &[128])));
        assert!(
            !may_answer(&packet(CLIENT, PEER, 58, &[137, 0, 0, 0])),
            "Redirect (e.2)"
        );
        assert!(
            !may_answer(&packet(CLIENT, PEER, 58, &[])),
            "ICMPv6 without a type"
        );
        assert!(
            !may_answer(&packet(CLIENT, all_nodes, 17, &udp)),
            "multicast destination (e.3)"
        );
        assert!(
            !may_answer(&packet(Ipv6Addr::UNSPECIFIED, PEER, 17, &udp)),
            "unspecified source (e.6)"
        );
        assert!(
            !may_answer(&packet(all_nodes, PEER, 17, &udp)),
            "multicast source (e.6)"
        );
        assert!(!may_answer(&ECHO_REQUEST[..39]), "not an IPv6 header");
        let mut v4 = packet(CLIENT, PEER, 17, &udp);
        v4[0] = 0x40;
        assert!(!may_answer(&v4), "version 4");
    }

    #[test]
    fn may_answer_walks_extension_headers() {
        let hbh_then = |nh: u8, tail: &[u8]| {
            let mut p = vec![nh, 0, 1, 4, 0, 0, 0, 0];
            p.extend_from_slice(tail);
            p
        };
        // Hop-by-Hop, then an ICMPv6 error / an echo request.
        assert!(!may_answer(&packet(
            CLIENT,
            PEER,
            0,
            &hbh_then(58, &[1, 0, 0, 0])
        )));
        assert!(may_answer(&packet(
            CLIENT,
            PEER,
            0,
            &hbh_then(58, &[128, 0, 0, 0])
        )));
        // Destination Options of 16 bytes (Hdr Ext Len 1), then an error.
        let mut dst_opts = vec![58, 1];
        dst_opts.extend_from_slice(&[0; 14]);
        dst_opts.extend_from_slice(&[3, 0, 0, 0]);
        assert!(!may_answer(&packet(CLIENT, PEER, 60, &dst_opts)));
        // Routing header cut short.
        assert!(!may_answer(&packet(CLIENT, PEER, 43, &[58, 1, 0, 0])));
        // First fragment, then an error; non-first fragment: undecidable.
        assert!(!may_answer(&packet(
            CLIENT,
            PEER,
            44,
            &[58, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0]
        )));
        assert!(may_answer(&packet(
            CLIENT,
            PEER,
            44,
            &[17, 0, 0, 1, 0, 0, 0, 1, 0, 0]
        )));
        assert!(!may_answer(&packet(
            CLIENT,
            PEER,
            44,
            &[17, 0, 0, 8, 0, 0, 0, 1, 0, 0]
        )));
        assert!(
            !may_answer(&packet(CLIENT, PEER, 44, &[17, 0, 0])),
            "fragment header cut short"
        );
        // An ICMPv6 type beyond the Payload Length does not count.
        let mut cut = packet(CLIENT, PEER, 58, &[128]);
        cut[5] = 0;
        assert!(!may_answer(&cut));
    }

    proptest! {
        #[test]
        fn round_trip(
            src: [u8; 16], dst: [u8; 16], hop_limit: u8, code: u8,
            quoted in proptest::collection::vec(any::<u8>(), 0..1300),
        ) {
            let e = DstUnreachable {
                src: src.into(), dst: dst.into(), hop_limit, reason: code.into(), quoted: &quoted,
            };
            let mut buf = [0u8; 1280];
            let n = e.emit(&mut buf).unwrap();
            prop_assert_eq!(n, e.buffer_len());
            prop_assert!(n <= 1280);
            let parsed = DstUnreachable::parse(&buf[..n]).unwrap();
            prop_assert_eq!(parsed.quoted, &quoted[..quoted.len().min(MAX_QUOTE_LEN)]);
            prop_assert_eq!((parsed.src, parsed.dst, parsed.hop_limit, parsed.reason), (e.src, e.dst, hop_limit, e.reason));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = DstUnreachable::parse(&bytes);
            let _ = may_answer(&bytes);
            let mut buf = [0u8; 1280];
            if let Ok(n) = emit_unreachable(RELAY, Icmpv6DstUnreachable::NoRoute, &bytes, &mut buf) {
                prop_assert!(may_answer(&bytes));
                prop_assert!(DstUnreachable::parse(&buf[..n]).is_ok());
            }
        }

        #[test]
        fn arbitrary_payload_after_valid_header(
            nh: u8, payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = may_answer(&packet(CLIENT, PEER, nh, &payload));
        }
    }
}
