//! ICMPv6 Echo Request and Echo Reply (RFC 4443 §4.1, §4.2) inside their IPv6
//! packet.
//!
//! Teredo uses echo for the direct IPv6 connectivity test (RFC 4380 §5.2.9): a
//! client sends an Echo Request with a random nonce in its data, through its
//! own server, to a native IPv6 peer, and trusts the relay that brings back an
//! Echo Reply carrying the same nonce. Keep these requests small: Miredo's
//! server forwards non-bubble packets only when their IPv6 payload is at most
//! 88 bytes (miredo.md §3.13), i.e. at most 80 bytes of echo data; Miredo's
//! own test uses 18.
//!
//! The eight bytes in front of the data (type, code, checksum, identifier,
//! sequence number) are read and written here directly rather than through
//! smoltcp's `Icmpv6Repr`, whose parser for every ICMPv6 message type would
//! be linked in for these two; the IPv6 envelope and the checksum are
//! `icmpv6.rs`'s. One value describes the whole packet.

use core::net::Ipv6Addr;

use smoltcp::wire::IPV6_HEADER_LEN;

use super::icmpv6::{self, Received};
use super::{Error, Result};

/// Identifier, sequence number and the fixed ICMPv6 fields before the data.
const ECHO_HEADER_LEN: usize = 8;

/// ICMPv6 type of an Echo Request (RFC 4443 §4.1).
const TYPE_REQUEST: u8 = 128;
/// ICMPv6 type of an Echo Reply (RFC 4443 §4.2).
const TYPE_REPLY: u8 = 129;

/// Which of the two echo messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EchoKind {
    /// Echo Request, ICMPv6 type 128 (RFC 4443 §4.1).
    Request,
    /// Echo Reply, ICMPv6 type 129 (RFC 4443 §4.2).
    Reply,
}

/// An ICMPv6 echo message and the IPv6 header around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRepr<'a> {
    /// IPv6 source address.
    pub src: Ipv6Addr,
    /// IPv6 destination address.
    pub dst: Ipv6Addr,
    /// IPv6 hop limit.
    pub hop_limit: u8,
    /// Request or reply.
    pub kind: EchoKind,
    /// Identifier, echoed unchanged by the reply.
    pub ident: u16,
    /// Sequence number, echoed unchanged by the reply.
    pub seq: u16,
    /// Data, echoed unchanged by the reply (the nonce of RFC 4380 §5.2.9).
    pub data: &'a [u8],
}

impl<'a> EchoRepr<'a> {
    /// Parses an echo message from a whole IPv6 packet, verifying the ICMPv6
    /// checksum (RFC 4443 §2.3). Bytes after the IPv6 Payload Length are
    /// ignored.
    ///
    /// `Unrecognized` if the packet is not ICMPv6 type 128 or 129; `Checksum`
    /// on a bad checksum; `Malformed` for a code other than 0 (RFC 4443 §4.1);
    /// `Truncated` if the message is shorter than 8 bytes or the bytes are
    /// shorter than the IPv6 header says.
    pub fn parse(ipv6: &'a [u8]) -> Result<Self> {
        let rx = Received::parse(ipv6)?;
        let kind = match rx.msg_type {
            TYPE_REQUEST => EchoKind::Request,
            TYPE_REPLY => EchoKind::Reply,
            _ => return Err(Error::Unrecognized),
        };
        rx.verify_checksum()?;
        if rx.code != 0 {
            return Err(Error::Malformed);
        }
        // Type, code, checksum, identifier, sequence number, then the data.
        let (&[_, _, _, _, i0, i1, s0, s1], data) = rx
            .message
            .split_first_chunk::<ECHO_HEADER_LEN>()
            .ok_or(Error::Truncated)?;
        Ok(EchoRepr {
            src: rx.src,
            dst: rx.dst,
            hop_limit: rx.hop_limit,
            kind,
            ident: u16::from_be_bytes([i0, i1]),
            seq: u16::from_be_bytes([s0, s1]),
            data,
        })
    }

    /// Length of the emitted IPv6 packet: 48 bytes plus the data.
    pub fn buffer_len(&self) -> usize {
        IPV6_HEADER_LEN + ECHO_HEADER_LEN + self.data.len()
    }

    /// Writes the packet (checksum computed) into `buf` and returns
    /// [`Self::buffer_len`].
    ///
    /// `BufferTooSmall` if `buf` is shorter; `Malformed` if the data does not
    /// fit the 16-bit IPv6 Payload Length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let msg_type = match self.kind {
            EchoKind::Request => TYPE_REQUEST,
            EchoKind::Reply => TYPE_REPLY,
        };
        let [i0, i1] = self.ident.to_be_bytes();
        let [s0, s1] = self.seq.to_be_bytes();
        let message_len = ECHO_HEADER_LEN.saturating_add(self.data.len());
        icmpv6::emit(
            self.src,
            self.dst,
            self.hop_limit,
            message_len,
            buf,
            |message| {
                // `message` is exactly `message_len` = 8 + data bytes, so the
                // split and the copy are in range. The envelope fills the
                // checksum (left zero here) afterwards.
                let (header, data) = message.split_at_mut(ECHO_HEADER_LEN);
                header.copy_from_slice(&[msg_type, 0, 0, 0, i0, i1, s0, s1]);
                data.copy_from_slice(self.data);
            },
        )
    }

    /// The Echo Reply answering this request (RFC 4443 §4.2): same
    /// identifier, sequence number and data, source = the request's
    /// destination, destination = the request's source, sent with `hop_limit`.
    ///
    /// `None` if `self` is a reply, or if the request went to a multicast
    /// address: the reply's source must then be a unicast address of the
    /// answering interface, which only the caller knows (RFC 4443 §4.2).
    pub fn reply_to(&self, hop_limit: u8) -> Option<EchoRepr<'a>> {
        if self.kind != EchoKind::Request || self.dst.is_multicast() {
            return None;
        }
        Some(EchoRepr {
            src: self.dst,
            dst: self.src,
            hop_limit,
            kind: EchoKind::Reply,
            ident: self.ident,
            seq: self.seq,
            data: self.data,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use smoltcp::wire::Icmpv6Packet;
    use std::vec;

    /// Teredo address V1 of teredo-spec §1.4.
    const CLIENT: Ipv6Addr =
        Ipv6Addr::new(0x2001, 0, 0x4136, 0xe378, 0x8000, 0x63bf, 0x3fff, 0xfdd2);
    const PEER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const NONCE: [u8; 8] = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04];

    /// A connectivity-test request from CLIENT to PEER, hop limit 128, ident
    /// 0x1234, seq 1, an 8-byte nonce. Checksum 0x37e0 computed with a script.
    static REQUEST: [u8; 56] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x10, 0x3a, 0x80, //
        0x20, 0x01, 0x00, 0x00, 0x41, 0x36, 0xe3, 0x78, //
        0x80, 0x00, 0x63, 0xbf, 0x3f, 0xff, 0xfd, 0xd2, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x80, 0x00, 0x37, 0xe0, 0x12, 0x34, 0x00, 0x01, //
        0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, //
    ];

    /// PEER's reply, hop limit 64. Checksum 0x36e0.
    static REPLY: [u8; 56] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x10, 0x3a, 0x40, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x20, 0x01, 0x00, 0x00, 0x41, 0x36, 0xe3, 0x78, //
        0x80, 0x00, 0x63, 0xbf, 0x3f, 0xff, 0xfd, 0xd2, //
        0x81, 0x00, 0x36, 0xe0, 0x12, 0x34, 0x00, 0x01, //
        0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, //
    ];

    fn request() -> EchoRepr<'static> {
        EchoRepr {
            src: CLIENT,
            dst: PEER,
            hop_limit: 128,
            kind: EchoKind::Request,
            ident: 0x1234,
            seq: 1,
            data: &NONCE,
        }
    }

    #[test]
    fn deconstruct() {
        let req = EchoRepr::parse(&REQUEST).unwrap();
        assert_eq!(req.src, CLIENT);
        assert_eq!(req.dst, PEER);
        assert_eq!(req.hop_limit, 128);
        assert_eq!(req.kind, EchoKind::Request);
        assert_eq!(req.ident, 0x1234);
        assert_eq!(req.seq, 1);
        assert_eq!(req.data, &NONCE);
        let rep = EchoRepr::parse(&REPLY).unwrap();
        assert_eq!(rep.kind, EchoKind::Reply);
        assert_eq!((rep.src, rep.dst, rep.hop_limit), (PEER, CLIENT, 64));
        assert_eq!((rep.ident, rep.seq, rep.data), (0x1234, 1, &NONCE[..]));
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 64];
        assert_eq!(request().buffer_len(), 56);
        assert_eq!(request().emit(&mut buf), Ok(56));
        assert_eq!(buf[..56], REQUEST);
        assert!(buf[56..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn reply_follows_rfc4443() {
        let reply = request().reply_to(64).unwrap();
        let mut buf = [0xa5u8; 56];
        assert_eq!(reply.emit(&mut buf), Ok(56));
        assert_eq!(buf, REPLY);
        assert_eq!(reply.reply_to(64), None, "a reply is not answered");
        let to_multicast = EchoRepr {
            dst: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            ..request()
        };
        assert_eq!(to_multicast.reply_to(64), None);
    }

    #[test]
    fn connectivity_test_request_fits_miredo_server() {
        // Miredo's server forwards ICMPv6 only with an IPv6 payload ≤ 88 bytes.
        let data = [0u8; 80];
        let req = EchoRepr {
            data: &data,
            ..request()
        };
        assert_eq!(req.buffer_len() - IPV6_HEADER_LEN, 88);
    }

    #[test]
    fn rejects() {
        let mut v = REQUEST;
        v[50] ^= 1;
        assert_eq!(EchoRepr::parse(&v), Err(Error::Checksum));
        let mut v = REQUEST;
        v[41] = 1; // code 1, with a checksum that covers it
        Icmpv6Packet::new_unchecked(&mut v[40..]).fill_checksum(&CLIENT, &PEER);
        assert_eq!(EchoRepr::parse(&v), Err(Error::Malformed));
        let mut v = REQUEST;
        v[40] = 1; // Destination Unreachable
        assert_eq!(EchoRepr::parse(&v), Err(Error::Unrecognized));
        assert_eq!(EchoRepr::parse(&REQUEST[..55]), Err(Error::Truncated));
        // A 6-byte echo message with a valid checksum: no room for the sequence number.
        let mut v = [0u8; 46];
        icmpv6::emit(CLIENT, PEER, 64, 6, &mut v, |m| m[0] = 128).unwrap();
        assert_eq!(EchoRepr::parse(&v), Err(Error::Truncated));
    }

    #[test]
    fn emit_errors() {
        let mut buf = [0u8; 55];
        assert_eq!(request().emit(&mut buf), Err(Error::BufferTooSmall));
        let huge = vec![0u8; 65_535];
        let mut buf = vec![0u8; 70_000];
        assert_eq!(
            EchoRepr {
                data: &huge,
                ..request()
            }
            .emit(&mut buf),
            Err(Error::Malformed)
        );
    }

    proptest! {
        #[test]
        fn round_trip(
            src: [u8; 16], dst: [u8; 16], hop_limit: u8, reply: bool, ident: u16, seq: u16,
            data in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let repr = EchoRepr {
                src: src.into(), dst: dst.into(), hop_limit,
                kind: if reply { EchoKind::Reply } else { EchoKind::Request },
                ident, seq, data: &data,
            };
            let mut buf = vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit(&mut buf), Ok(repr.buffer_len()));
            prop_assert_eq!(EchoRepr::parse(&buf), Ok(repr));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            let _ = EchoRepr::parse(&bytes);
        }

        #[test]
        fn arbitrary_icmp_never_panics(icmp in proptest::collection::vec(any::<u8>(), 0..64)) {
            // A valid IPv6 envelope with a correct checksum around arbitrary ICMPv6 bytes.
            let mut buf = vec![0u8; 40 + icmp.len().max(4)];
            let len = icmp.len().max(4);
            if icmpv6::emit(CLIENT, PEER, 64, len, &mut buf, |m| m[..icmp.len()].copy_from_slice(&icmp)).is_ok() {
                let _ = EchoRepr::parse(&buf);
            }
        }
    }
}
