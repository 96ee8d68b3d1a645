//! The Teredo UDP payload (RFC 4380 §5.1.1, RFC 6081 §4).
//!
//! ```text
//! [ authentication header ]   00 01 id-len au-len id.. au.. nonce(8) confirmation(1)
//! [ origin indication     ]   00 00 ~port(2) ~ipv4(4)
//!   IPv6 packet               40 + payload length bytes, version 6
//! [ trailers              ]   RFC 6081 type-length-value, up to the end
//! ```
//!
//! The first two bytes tell the parts apart: an IPv6 header starts with the
//! nibble 6, an origin indication with `00 00`, an authentication header with
//! `00 01`. When both headers are present the authentication header comes
//! first (RFC 4380 §5.1.1), so a parser takes at most one of each, in that
//! order, and anything else in front of the IPv6 packet is malformed.
//!
//! Bytes after the IPv6 packet (as delimited by its payload length) are
//! RFC 6081 §4 trailers, not junk: [`Trailers`] walks them.

use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::wire::Ipv6Packet;

use super::{Error, Result};
use crate::addr::{obfuscate_ipv4, obfuscate_port};

/// Length of an origin indication (RFC 4380 §5.1.1).
pub const ORIGIN_LEN: usize = 8;

/// Length of an authentication header with empty client identifier and
/// authentication value, the nonce-only form every Router Solicitation of
/// Miredo and Windows carries (RFC 4380 §5.1.1, §5.2.2).
pub const AUTH_MIN_LEN: usize = 13;

/// Byte offsets, relative to the start of each header.
mod field {
    use core::ops::Range;

    /// The two-byte marker in front of either header.
    pub const MARKER: Range<usize> = 0..2;
    pub const AUTH_MARKER: [u8; 2] = [0x00, 0x01];
    pub const ORIGIN_MARKER: [u8; 2] = [0x00, 0x00];

    pub const AUTH_ID_LEN: usize = 2;
    pub const AUTH_AU_LEN: usize = 3;
    /// Client identifier starts here; then the authentication value.
    pub const AUTH_VARIABLE: usize = 4;
    pub const NONCE_LEN: usize = 8;

    pub const ORIGIN_PORT: Range<usize> = 2..4;
    pub const ORIGIN_ADDR: Range<usize> = 4..8;
}

/// An authentication header (RFC 4380 §5.1.1, §5.2.2), borrowed from a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AuthHeader<'a> {
    /// Client identifier (empty in nonce-only mode); at most 255 bytes.
    pub client_id: &'a [u8],
    /// Authentication value (empty in nonce-only mode); at most 255 bytes.
    pub auth_value: &'a [u8],
    /// Nonce chosen by the client and echoed by the server.
    pub nonce: [u8; 8],
    /// Confirmation byte: 0 from clients; from servers, non-zero tells the
    /// client its key must be renewed (RFC 4380 §5.2.2).
    pub confirmation: u8,
}

impl<'a> AuthHeader<'a> {
    /// Parse an authentication header at the start of `bytes` (marker
    /// included, not checked here).
    fn parse(bytes: &'a [u8]) -> Result<Self> {
        let id_len = usize::from(*bytes.get(field::AUTH_ID_LEN).ok_or(Error::Truncated)?);
        let au_len = usize::from(*bytes.get(field::AUTH_AU_LEN).ok_or(Error::Truncated)?);
        // At most 4 + 255 + 255 + 8: no overflow.
        let id_end = field::AUTH_VARIABLE + id_len;
        let au_end = id_end + au_len;
        let nonce_end = au_end + field::NONCE_LEN;
        let client_id = bytes
            .get(field::AUTH_VARIABLE..id_end)
            .ok_or(Error::Truncated)?;
        let auth_value = bytes.get(id_end..au_end).ok_or(Error::Truncated)?;
        let nonce = bytes
            .get(au_end..nonce_end)
            .and_then(|n| n.try_into().ok())
            .ok_or(Error::Truncated)?;
        let confirmation = *bytes.get(nonce_end).ok_or(Error::Truncated)?;
        Ok(AuthHeader {
            client_id,
            auth_value,
            nonce,
            confirmation,
        })
    }

    /// Bytes the header takes on the wire: 4 + ID-len + AU-len + 8 + 1
    /// (RFC 4380 §5.1.1).
    pub fn buffer_len(&self) -> usize {
        AUTH_MIN_LEN + self.client_id.len() + self.auth_value.len()
    }

    /// Write the header at the start of `buf`; returns its length.
    fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        // The lengths travel in one byte each.
        let id_len = u8::try_from(self.client_id.len()).map_err(|_| Error::Malformed)?;
        let au_len = u8::try_from(self.auth_value.len()).map_err(|_| Error::Malformed)?;
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        // `out` is exactly 4 + id + au + 8 + 1 bytes, so each split below is
        // in range and the last piece is the single confirmation byte.
        let (head, rest) = out.split_at_mut(field::AUTH_VARIABLE);
        head.copy_from_slice(&[field::AUTH_MARKER[0], field::AUTH_MARKER[1], id_len, au_len]);
        let (id, rest) = rest.split_at_mut(self.client_id.len());
        id.copy_from_slice(self.client_id);
        let (au, rest) = rest.split_at_mut(self.auth_value.len());
        au.copy_from_slice(self.auth_value);
        let (nonce, conf) = rest.split_at_mut(field::NONCE_LEN);
        nonce.copy_from_slice(&self.nonce);
        conf.copy_from_slice(&[self.confirmation]);
        Ok(len)
    }
}

/// Read the (de-obfuscated) mapping of an origin indication at the start of
/// `bytes`, marker included.
fn parse_origin(bytes: &[u8]) -> Result<SocketAddrV4> {
    let port = bytes.get(field::ORIGIN_PORT).ok_or(Error::Truncated)?;
    let addr = bytes.get(field::ORIGIN_ADDR).ok_or(Error::Truncated)?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    let addr = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
    Ok(SocketAddrV4::new(
        obfuscate_ipv4(addr),
        obfuscate_port(port),
    ))
}

/// Write an origin indication for `origin` into the first 8 bytes of `buf`.
fn emit_origin(origin: SocketAddrV4, buf: &mut [u8]) -> Result<usize> {
    let out = buf.get_mut(..ORIGIN_LEN).ok_or(Error::BufferTooSmall)?;
    let port = obfuscate_port(origin.port()).to_be_bytes();
    let addr = obfuscate_ipv4(*origin.ip()).octets();
    out.copy_from_slice(&[
        field::ORIGIN_MARKER[0],
        field::ORIGIN_MARKER[1],
        port[0],
        port[1],
        addr[0],
        addr[1],
        addr[2],
        addr[3],
    ]);
    Ok(ORIGIN_LEN)
}

/// Where the parts of a payload lie.
struct Layout<'a> {
    auth: Option<AuthHeader<'a>>,
    origin: Option<SocketAddrV4>,
    /// Offset of the IPv6 header.
    ipv6_start: usize,
    /// Offset just past the IPv6 packet (40 + payload length after the start).
    ipv6_end: usize,
}

impl<'a> Layout<'a> {
    /// The single place that decides whether a UDP payload is a valid Teredo
    /// packet (RFC 4380 §5.1.1).
    fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut at = 0;
        let mut auth = None;
        let mut origin = None;
        if bytes.get(field::MARKER) == Some(&field::AUTH_MARKER[..]) {
            let a = AuthHeader::parse(bytes)?;
            at = a.buffer_len();
            auth = Some(a);
        }
        let rest = bytes.get(at..).ok_or(Error::Truncated)?;
        if rest.get(field::MARKER) == Some(&field::ORIGIN_MARKER[..]) {
            origin = Some(parse_origin(rest)?);
            at += ORIGIN_LEN;
        }
        let rest = bytes.get(at..).ok_or(Error::Truncated)?;
        // Whatever sits here must be IPv6: a second header of either kind, or
        // headers in the wrong order, fail this version check.
        let first = *rest.first().ok_or(Error::Truncated)?;
        if first >> 4 != 6 {
            return Err(Error::Malformed);
        }
        let ipv6 = Ipv6Packet::new_checked(rest).map_err(|_| Error::Truncated)?;
        Ok(Layout {
            auth,
            origin,
            ipv6_start: at,
            ipv6_end: at + ipv6.total_len(),
        })
    }
}

/// A checked view of a Teredo UDP payload.
///
/// [`Packet::new_checked`] validates the whole layout once; afterwards every
/// accessor returns the parts. Accessors re-locate the parts on each call (a
/// few byte comparisons), which keeps the view a plain wrapper; on a buffer
/// that would fail the check (only reachable through
/// [`Packet::new_unchecked`]) they return `None` or empty slices, never panic.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap `buffer` after checking it is a well-formed Teredo payload:
    /// optional authentication header, optional origin indication, an IPv6
    /// packet (version 6, 40 + payload length bytes present), then anything
    /// (trailers).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check the layout, as [`Packet::new_checked`] does.
    pub fn check_len(&self) -> Result<()> {
        Layout::parse(self.buffer.as_ref()).map(|_| ())
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn layout(&self) -> Option<Layout<'_>> {
        Layout::parse(self.buffer.as_ref()).ok()
    }

    /// The authentication header, if present.
    pub fn auth(&self) -> Option<AuthHeader<'_>> {
        self.layout().and_then(|l| l.auth)
    }

    /// The origin indication's mapping, de-obfuscated, if present.
    pub fn origin(&self) -> Option<SocketAddrV4> {
        self.layout().and_then(|l| l.origin)
    }

    /// Offset of the IPv6 packet, i.e. the length of the Teredo headers in
    /// front of it (the buffer length on a malformed buffer).
    pub fn ipv6_offset(&self) -> usize {
        self.layout()
            .map_or(self.buffer.as_ref().len(), |l| l.ipv6_start)
    }

    /// The IPv6 packet: exactly 40 + payload length bytes.
    pub fn ipv6_packet(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        self.layout()
            .and_then(|l| bytes.get(l.ipv6_start..l.ipv6_end))
            .unwrap_or(&[])
    }

    /// The bytes after the IPv6 packet: RFC 6081 trailers (see [`Trailers`]).
    pub fn trailers(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        self.layout()
            .and_then(|l| bytes.get(l.ipv6_end..))
            .unwrap_or(&[])
    }
}

/// A Teredo UDP payload, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Repr<'a> {
    /// Authentication header, first if present.
    pub auth: Option<AuthHeader<'a>>,
    /// Origin indication's mapping (de-obfuscated), after the authentication
    /// header if present.
    pub origin: Option<SocketAddrV4>,
    /// The IPv6 packet, header included. Emitted verbatim: the emitter trusts
    /// it to be a complete IPv6 packet.
    pub ipv6: &'a [u8],
    /// RFC 6081 trailers following the IPv6 packet (usually empty).
    pub trailers: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parse a UDP payload (same checks as [`Packet::new_checked`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Repr<'a>> {
        let layout = Layout::parse(bytes)?;
        Ok(Repr {
            auth: layout.auth,
            origin: layout.origin,
            ipv6: bytes
                .get(layout.ipv6_start..layout.ipv6_end)
                .ok_or(Error::Truncated)?,
            trailers: bytes.get(layout.ipv6_end..).ok_or(Error::Truncated)?,
        })
    }

    /// Length of the Teredo headers (authentication + origin indication).
    pub fn header_len(&self) -> usize {
        self.auth.map_or(0, |a| a.buffer_len()) + if self.origin.is_some() { ORIGIN_LEN } else { 0 }
    }

    /// Length of the whole payload: headers, IPv6 packet and trailers.
    pub fn buffer_len(&self) -> usize {
        // Slices in memory are each < isize::MAX bytes: the sum cannot wrap.
        self.header_len() + self.ipv6.len() + self.trailers.len()
    }

    /// Write only the Teredo headers at the start of `buf`, returning their
    /// length, so a role can build the IPv6 packet in place right after them.
    /// `BufferTooSmall` if `buf` cannot hold them; `Malformed` if the client
    /// identifier or authentication value exceed 255 bytes.
    pub fn emit_header(&self, buf: &mut [u8]) -> Result<usize> {
        let mut at = 0;
        if let Some(auth) = &self.auth {
            at = auth.emit(buf)?;
        }
        if let Some(origin) = self.origin {
            at += emit_origin(origin, buf.get_mut(at..).ok_or(Error::BufferTooSmall)?)?;
        }
        Ok(at)
    }

    /// Write the whole payload at the start of `buf`, returning its length
    /// ([`Repr::buffer_len`]). Errors as [`Repr::emit_header`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let total = self.buffer_len();
        let out = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        let at = self.emit_header(out)?;
        let (ipv6, trailers) = out
            .get_mut(at..)
            .and_then(|rest| rest.split_at_mut_checked(self.ipv6.len()))
            .ok_or(Error::BufferTooSmall)?;
        ipv6.copy_from_slice(self.ipv6);
        trailers.copy_from_slice(self.trailers);
        Ok(total)
    }
}

/// RFC 6081 §4.2: Nonce trailer (4-byte value).
pub const TRAILER_NONCE: u8 = 0x01;
/// RFC 6081 §9 (IANA table): Random Port trailer. §4.5 says 0x05 instead;
/// the conflict is unresolved, so receivers accept both.
pub const TRAILER_RANDOM_PORT_IANA: u8 = 0x02;
/// RFC 6081 §4.3: Alternate Address trailer.
pub const TRAILER_ALTERNATE_ADDRESS: u8 = 0x03;
/// RFC 6081 §4.4: Neighbor Discovery Option trailer.
pub const TRAILER_ND_OPTION: u8 = 0x04;
/// RFC 6081 §4.5: Random Port trailer (see [`TRAILER_RANDOM_PORT_IANA`]).
pub const TRAILER_RANDOM_PORT: u8 = 0x05;

/// One RFC 6081 §4.1 trailer: type, then a value of "length" bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Trailer<'a> {
    /// The trailer type (see the `TRAILER_*` constants).
    pub kind: u8,
    /// The value, without type and length bytes.
    pub value: &'a [u8],
}

impl Trailer<'_> {
    /// Whether the packet carrying this trailer must be discarded: an
    /// unrecognised type whose two top bits are `01` (RFC 6081 §4.1). Every
    /// type RFC 6081 defines has top bits `00`, so the test needs no table of
    /// known types; other unrecognised types are skipped.
    pub fn must_drop(&self) -> bool {
        self.kind & 0xc0 == 0x40
    }
}

/// Iterator over the trailers after an IPv6 packet, in order (a MUST of
/// RFC 6081 §5.1.2). It stops at the first malformed trailer (fewer than 2
/// bytes left, or fewer than 2 + length), as RFC 6081 §5.1.2 requires;
/// [`Trailers::is_malformed`] then tells the caller.
#[derive(Debug, Clone)]
pub struct Trailers<'a> {
    rest: &'a [u8],
}

impl<'a> Trailers<'a> {
    /// Walk the trailer bytes, e.g. [`Repr::trailers`] or
    /// [`Packet::trailers`].
    pub const fn new(bytes: &'a [u8]) -> Self {
        Trailers { rest: bytes }
    }

    /// Whether iteration stopped (or will stop) on a malformed trailer rather
    /// than at the end of the bytes.
    pub fn is_malformed(&self) -> bool {
        self.clone().last_rest_len() != 0
    }

    /// Bytes left after iterating as far as possible.
    fn last_rest_len(mut self) -> usize {
        while self.next().is_some() {}
        self.rest.len()
    }
}

impl<'a> Iterator for Trailers<'a> {
    type Item = Trailer<'a>;

    fn next(&mut self) -> Option<Trailer<'a>> {
        let (&kind, after_kind) = self.rest.split_first()?;
        let (&len, after_len) = after_kind.split_first()?;
        let value = after_len.get(..usize::from(len))?;
        self.rest = after_len.get(usize::from(len)..)?;
        Some(Trailer { kind, value })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::addr::{ALL_ROUTERS, CLIENT_LL_RESTRICTED};
    use proptest::prelude::*;
    use smoltcp::wire::{Icmpv6Packet, Ipv6Address};
    use std::vec::Vec;

    const NONCE: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

    /// A Miredo-style Router Solicitation payload (miredo.md §3.3): 13-byte
    /// nonce-only authentication header, then a 48-byte IPv6 RS from
    /// fe80::ffff:ffff:ffff to ff02::2, hop limit 255, checksum 0x7d37.
    #[rustfmt::skip]
    const RS_PAYLOAD: [u8; 61] = [
        // authentication header
        0x00, 0x01, 0x00, 0x00,
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
        0x00,
        // IPv6 header: version 6, payload 8, next header 58, hop limit 255
        0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x3a, 0xff,
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        // ICMPv6 Router Solicitation
        0x85, 0x00, 0x7d, 0x37, 0x00, 0x00, 0x00, 0x00,
    ];

    /// A bubble (next header 59, payload 0) from a relay-style link-local to
    /// V1's address.
    #[rustfmt::skip]
    const BUBBLE: [u8; 40] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3b, 0x00,
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x20, 0x01, 0x00, 0x00, 0x41, 0x36, 0xe3, 0x78,
        0x80, 0x00, 0x63, 0xbf, 0x3f, 0xff, 0xfd, 0xd2,
    ];

    fn v1_mapping() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 45), 40000)
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn origin_indication_vectors() {
        let mut buf = [0xa5u8; 10];
        let r = emit_origin(SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 337), &mut buf).unwrap();
        assert_eq!(r, ORIGIN_LEN);
        assert_eq!(
            buf,
            [0x00, 0x00, 0xFE, 0xAE, 0xFE, 0xFD, 0xFC, 0xFB, 0xa5, 0xa5]
        );
        emit_origin(v1_mapping(), &mut buf).unwrap();
        assert_eq!(&buf[..8], &[0x00, 0x00, 0x63, 0xBF, 0x3F, 0xFF, 0xFD, 0xD2]);
        assert_eq!(parse_origin(&buf).unwrap(), v1_mapping());
    }

    #[test]
    fn deconstruct_miredo_rs() {
        let p = Packet::new_checked(&RS_PAYLOAD[..]).unwrap();
        let auth = p.auth().unwrap();
        assert_eq!(auth.client_id, b"");
        assert_eq!(auth.auth_value, b"");
        assert_eq!(auth.nonce, NONCE);
        assert_eq!(auth.confirmation, 0);
        assert_eq!(auth.buffer_len(), AUTH_MIN_LEN);
        assert_eq!(p.origin(), None);
        assert_eq!(p.ipv6_offset(), 13);
        assert_eq!(p.ipv6_packet(), &RS_PAYLOAD[13..]);
        assert_eq!(p.trailers(), b"");

        let ip = Ipv6Packet::new_checked(p.ipv6_packet()).unwrap();
        assert_eq!(ip.version(), 6);
        assert_eq!(ip.payload_len(), 8);
        assert_eq!(ip.hop_limit(), 255);
        assert_eq!(ip.src_addr(), CLIENT_LL_RESTRICTED);
        assert_eq!(ip.dst_addr(), ALL_ROUTERS);
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(icmp.msg_type(), smoltcp::wire::Icmpv6Message::RouterSolicit);
        assert_eq!(icmp.checksum(), 0x7d37);
        let (src, dst): (Ipv6Address, Ipv6Address) = (ip.src_addr(), ip.dst_addr());
        assert!(icmp.verify_checksum(&src, &dst));

        let r = Repr::parse(&RS_PAYLOAD).unwrap();
        assert_eq!(r.auth, Some(auth));
        assert_eq!(r.origin, None);
        assert_eq!(r.ipv6, &RS_PAYLOAD[13..]);
        assert_eq!(r.trailers, b"");
        assert_eq!(r.header_len(), 13);
        assert_eq!(r.buffer_len(), 61);
    }

    #[test]
    fn construct_miredo_rs() {
        let r = Repr {
            auth: Some(AuthHeader {
                client_id: &[],
                auth_value: &[],
                nonce: NONCE,
                confirmation: 0,
            }),
            origin: None,
            ipv6: &RS_PAYLOAD[13..],
            trailers: &[],
        };
        let mut buf = [0xa5u8; 64];
        assert_eq!(r.emit(&mut buf), Ok(61));
        assert_eq!(&buf[..61], &RS_PAYLOAD[..]);
        assert_eq!(&buf[61..], &[0xa5; 3]);
    }

    /// All four parts, with non-empty identifier and value (secure
    /// qualification form), an origin and two trailers.
    #[test]
    fn full_payload_both_ways() {
        let auth = [0x00, 0x01, 0x02, 0x03, 0xc1, 0xc2, 0xa1, 0xa2, 0xa3];
        let trailers = [0x01, 0x04, 0xde, 0xad, 0xbe, 0xef, 0x40, 0x00];
        let bytes = cat(&[
            &auth,
            &NONCE,
            &[0x07],
            &[0x00, 0x00, 0x63, 0xBF, 0x3F, 0xFF, 0xFD, 0xD2],
            &BUBBLE,
            &trailers,
        ]);
        let r = Repr::parse(&bytes).unwrap();
        let a = r.auth.unwrap();
        assert_eq!(a.client_id, &[0xc1, 0xc2]);
        assert_eq!(a.auth_value, &[0xa1, 0xa2, 0xa3]);
        assert_eq!(a.nonce, NONCE);
        assert_eq!(a.confirmation, 7);
        assert_eq!(a.buffer_len(), 18);
        assert_eq!(r.origin, Some(v1_mapping()));
        assert_eq!(r.ipv6, &BUBBLE[..]);
        assert_eq!(r.trailers, &trailers[..]);
        assert_eq!(r.header_len(), 26);
        assert_eq!(r.buffer_len(), bytes.len());

        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.auth(), Some(a));
        assert_eq!(p.origin(), Some(v1_mapping()));
        assert_eq!(p.ipv6_offset(), 26);
        assert_eq!(p.ipv6_packet(), &BUBBLE[..]);
        assert_eq!(p.trailers(), &trailers[..]);

        let mut t = Trailers::new(p.trailers());
        assert_eq!(
            t.next(),
            Some(Trailer {
                kind: TRAILER_NONCE,
                value: &[0xde, 0xad, 0xbe, 0xef]
            })
        );
        let unknown = t.next().unwrap();
        assert_eq!(
            unknown,
            Trailer {
                kind: 0x40,
                value: &[]
            }
        );
        assert!(unknown.must_drop());
        assert_eq!(t.next(), None);
        assert!(!Trailers::new(p.trailers()).is_malformed());

        let mut buf = [0xa5u8; 80];
        assert_eq!(r.emit(&mut buf), Ok(bytes.len()));
        assert_eq!(&buf[..bytes.len()], &bytes[..]);
        assert!(buf[bytes.len()..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn construct_origin_only_and_header_only() {
        let r = Repr {
            auth: None,
            origin: Some(v1_mapping()),
            ipv6: &BUBBLE,
            trailers: &[],
        };
        let mut buf = [0xa5u8; 50];
        assert_eq!(r.emit_header(&mut buf), Ok(8));
        assert_eq!(&buf[..8], &[0x00, 0x00, 0x63, 0xBF, 0x3F, 0xFF, 0xFD, 0xD2]);
        assert!(
            buf[8..].iter().all(|&b| b == 0xa5),
            "emit_header wrote past the headers"
        );
        assert_eq!(r.emit(&mut buf), Ok(48));
        assert_eq!(&buf[8..48], &BUBBLE[..]);
        assert_eq!(&buf[48..], &[0xa5, 0xa5]);
        // Simple encapsulation: no header at all.
        let plain = Repr { origin: None, ..r };
        assert_eq!(plain.emit_header(&mut buf), Ok(0));
        assert_eq!(Repr::parse(&BUBBLE), Ok(plain));
    }

    #[test]
    fn emit_errors() {
        let r = Repr::parse(&RS_PAYLOAD).unwrap();
        let mut small = [0xa5u8; 60];
        assert_eq!(r.emit(&mut small), Err(Error::BufferTooSmall));
        assert_eq!(r.emit_header(&mut small[..12]), Err(Error::BufferTooSmall));
        let with_origin = Repr {
            origin: Some(v1_mapping()),
            ..r
        };
        assert_eq!(
            with_origin.emit_header(&mut small[..20]),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(with_origin.emit_header(&mut small[..21]), Ok(21));
        let long = [0u8; 256];
        let too_long = Repr {
            auth: Some(AuthHeader {
                client_id: &long,
                ..r.auth.unwrap()
            }),
            ..r
        };
        let mut big = [0u8; 400];
        assert_eq!(too_long.emit(&mut big), Err(Error::Malformed));
    }

    #[test]
    fn parse_errors() {
        let origin = [0x00, 0x00, 0x63, 0xBF, 0x3F, 0xFF, 0xFD, 0xD2];
        let auth = cat(&[&[0x00, 0x01, 0x00, 0x00], &NONCE, &[0x00]]);
        let cases: [(&str, Vec<u8>, Error); 14] = [
            ("empty", Vec::new(), Error::Truncated),
            ("one IPv6 byte", std::vec![0x60], Error::Truncated),
            ("IPv6 header cut", BUBBLE[..39].to_vec(), Error::Truncated),
            (
                "bad IPv6 version",
                cat(&[&[0x40], &BUBBLE[1..]]),
                Error::Malformed,
            ),
            (
                "unknown marker",
                cat(&[&[0x00, 0x02], &BUBBLE]),
                Error::Malformed,
            ),
            (
                "plen overrun",
                cat(&[&BUBBLE[..5], &[0x01], &BUBBLE[6..]]),
                Error::Truncated,
            ),
            (
                "origin before auth",
                cat(&[&origin, &auth, &BUBBLE]),
                Error::Malformed,
            ),
            (
                "two origins",
                cat(&[&origin, &origin, &BUBBLE]),
                Error::Malformed,
            ),
            ("two auths", cat(&[&auth, &auth, &BUBBLE]), Error::Malformed),
            ("origin only", origin.to_vec(), Error::Truncated),
            ("origin cut", origin[..7].to_vec(), Error::Truncated),
            (
                "auth without lengths",
                std::vec![0x00, 0x01, 0x00],
                Error::Truncated,
            ),
            ("auth cut in nonce", auth[..10].to_vec(), Error::Truncated),
            (
                "idlen overruns",
                cat(&[&[0x00, 0x01, 0xff, 0x00], &NONCE, &[0x00], &BUBBLE]),
                Error::Truncated,
            ),
        ];
        for (name, bytes, err) in cases {
            assert_eq!(Repr::parse(&bytes), Err(err), "{name}");
            let p = Packet::new_unchecked(&bytes[..]);
            assert_eq!(p.check_len(), Err(err), "{name}");
            // Unchecked accessors on bad input stay harmless.
            assert_eq!(p.ipv6_packet(), b"", "{name}");
            assert_eq!(p.trailers(), b"", "{name}");
            assert_eq!(p.ipv6_offset(), bytes.len(), "{name}");
            assert_eq!(p.auth(), None, "{name}");
        }
        // The plen overrun succeeds once the missing byte is there.
        let fixed = cat(&[&BUBBLE[..5], &[0x01], &BUBBLE[6..], &[0x99]]);
        assert_eq!(Repr::parse(&fixed).unwrap().trailers, b"");
    }

    #[test]
    fn trailer_walk_stops_at_malformed() {
        let bytes = [
            0x04, 0x04, 0, 0, 0, 0, 0x02, 0x02, 0x12, 0x34, 0x03, 0x08, 0x00,
        ];
        let mut t = Trailers::new(&bytes);
        assert_eq!(
            t.next(),
            Some(Trailer {
                kind: TRAILER_ND_OPTION,
                value: &[0; 4]
            })
        );
        let rp = t.next().unwrap();
        assert_eq!(
            rp,
            Trailer {
                kind: TRAILER_RANDOM_PORT_IANA,
                value: &[0x12, 0x34]
            }
        );
        assert!(!rp.must_drop());
        assert!(Trailers::new(&bytes).is_malformed());
        assert_eq!(t.next(), None);
        assert_eq!(t.next(), None);
        // A lone type byte is malformed too.
        assert!(Trailers::new(&[0x05]).is_malformed());
        assert_eq!(Trailers::new(&[0x05]).next(), None);
        assert!(!Trailers::new(&[]).is_malformed());
        // Top bits: 00, 10, 11 are skipped; only 01 drops.
        for (kind, drop) in [
            (0x3f, false),
            (0x40, true),
            (0x7f, true),
            (0x80, false),
            (0xc0, false),
        ] {
            assert_eq!(Trailer { kind, value: &[] }.must_drop(), drop, "{kind:#x}");
        }
    }

    fn ipv6_packet() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<[u8; 40]>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(mut h, payload)| {
                h[0] = 0x60 | (h[0] & 0x0f);
                h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
                cat(&[&h, &payload])
            })
    }

    proptest! {
        #[test]
        fn emit_parse_round_trip(
            id in proptest::collection::vec(any::<u8>(), 0..=255),
            au in proptest::collection::vec(any::<u8>(), 0..=255),
            nonce in any::<[u8; 8]>(),
            confirmation in any::<u8>(),
            with_auth in any::<bool>(),
            origin in proptest::option::of((any::<u32>(), any::<u16>())),
            ipv6 in ipv6_packet(),
            trailers in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let r = Repr {
                auth: with_auth.then_some(AuthHeader { client_id: &id, auth_value: &au, nonce, confirmation }),
                origin: origin.map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from_bits(ip), port)),
                ipv6: &ipv6,
                trailers: &trailers,
            };
            let mut buf = std::vec![0xa5u8; r.buffer_len() + 3];
            prop_assert_eq!(r.emit(&mut buf), Ok(r.buffer_len()));
            prop_assert!(buf[r.buffer_len()..].iter().all(|&b| b == 0xa5));
            prop_assert_eq!(Repr::parse(&buf[..r.buffer_len()]), Ok(r));
            let p = Packet::new_checked(&buf[..r.buffer_len()]).unwrap();
            prop_assert_eq!(p.ipv6_offset(), r.header_len());
            prop_assert_eq!(p.ipv6_packet(), &ipv6[..]);
            prop_assert_eq!(p.trailers(), &trailers[..]);
            prop_assert_eq!(p.origin(), r.origin);
            prop_assert_eq!(p.auth(), r.auth);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Repr::parse(&bytes);
            let p = Packet::new_unchecked(&bytes[..]);
            let _ = (p.check_len(), p.auth(), p.origin(), p.ipv6_offset(), p.ipv6_packet(), p.trailers());
            let t = Trailers::new(&bytes);
            let _ = t.is_malformed();
            for tr in t { let _ = tr.must_drop(); }
        }

        /// Payloads starting with the header markers exercise the header
        /// parsers far more often than uniform bytes would.
        #[test]
        fn marker_prefixed_bytes_never_panic(
            first in prop::sample::select(std::vec![[0u8, 1], [0, 0], [0x60, 0]]),
            second in prop::sample::select(std::vec![[0u8, 1], [0, 0], [0x60, 0]]),
            rest in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let bytes = cat(&[&first, &rest[..rest.len().min(12)], &second, &rest]);
            if let Ok(r) = Repr::parse(&bytes) {
                prop_assert_eq!(r.buffer_len(), bytes.len());
                let mut out = std::vec![0u8; bytes.len()];
                prop_assert_eq!(r.emit(&mut out), Ok(bytes.len()));
                prop_assert_eq!(out, bytes);
            }
        }
    }
}
