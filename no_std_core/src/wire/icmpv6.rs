//! The IPv6 envelope around every ICMPv6 message the core reads or writes.
//!
//! Router Solicitations and Advertisements, echoes and Destination Unreachable
//! errors all travel as a bare IPv6 packet whose Next Header is ICMPv6 (58).
//! The steps they share live here once: locating the ICMPv6 message inside the
//! packet, verifying its checksum (RFC 4443 §2.3), and on the way out writing
//! the IPv6 header and filling the checksum.
//!
//! Extension headers are not walked: Teredo's ND and echo messages never carry
//! them, so a packet whose first Next Header is not ICMPv6 is `Unrecognized`.

use core::net::Ipv6Addr;

use smoltcp::wire::{Icmpv6Packet, IpProtocol, Ipv6Packet, Ipv6Repr, IPV6_HEADER_LEN};

use super::{Error, Result};

/// Length of the ICMPv6 type, code and checksum fields shared by every message.
const ICMP_COMMON_LEN: usize = 4;

/// An ICMPv6 message located inside an IPv6 packet; checksum not yet verified.
///
/// Parsers look at `msg_type` first, so a packet of another kind is reported
/// `Unrecognized` without paying for a checksum.
pub(crate) struct Received<'a> {
    /// IPv6 source address.
    pub src: Ipv6Addr,
    /// IPv6 destination address.
    pub dst: Ipv6Addr,
    /// IPv6 hop limit as received.
    pub hop_limit: u8,
    /// ICMPv6 type.
    pub msg_type: u8,
    /// ICMPv6 code.
    pub code: u8,
    /// The whole ICMPv6 message, type byte first, exactly as long as the IPv6
    /// Payload Length says (bytes after it are RFC 6081 trailers or padding and
    /// belong to the caller).
    pub message: &'a [u8],
}

impl<'a> Received<'a> {
    /// Locates the ICMPv6 message in `ipv6`.
    ///
    /// `Truncated` if the buffer is shorter than the IPv6 header plus its
    /// Payload Length or the message lacks type, code and checksum;
    /// `Malformed` if the version is not 6; `Unrecognized` if the Next Header
    /// is not ICMPv6.
    pub fn parse(ipv6: &'a [u8]) -> Result<Self> {
        let packet = Ipv6Packet::new_checked(ipv6).map_err(|_| Error::Truncated)?;
        if packet.version() != 6 {
            return Err(Error::Malformed);
        }
        if packet.next_header() != IpProtocol::Icmpv6 {
            return Err(Error::Unrecognized);
        }
        let message = packet.payload();
        let &[msg_type, code, _, _] = message
            .first_chunk::<ICMP_COMMON_LEN>()
            .ok_or(Error::Truncated)?;
        Ok(Received {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            hop_limit: packet.hop_limit(),
            msg_type,
            code,
            message,
        })
    }

    /// Verifies the ICMPv6 checksum over the pseudo-header and the message
    /// (RFC 4443 §2.3). Fuzz builds (`cfg(fuzzing)`) skip the check inside
    /// smoltcp, so fuzzers reach the code behind it.
    pub fn verify_checksum(&self) -> Result<()> {
        if Icmpv6Packet::new_unchecked(self.message).verify_checksum(&self.src, &self.dst) {
            Ok(())
        } else {
            Err(Error::Checksum)
        }
    }
}

/// Writes an IPv6 packet carrying a `message_len`-byte ICMPv6 message into
/// `buf` and returns its total length.
///
/// `fill` writes the message (type first) into the slice it is given, which is
/// exactly `message_len` bytes; the checksum field is then computed over
/// whatever `fill` left (RFC 4443 §2.3), so `fill` need not touch it. Only
/// `buf[..40 + message_len]` is written.
pub(crate) fn emit(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    message_len: usize,
    buf: &mut [u8],
    fill: impl FnOnce(&mut [u8]),
) -> Result<usize> {
    // A thin generic shell: the header and the checksum are written by two
    // non-generic functions, so each caller's `fill` does not bring its own
    // copy of them.
    let message = emit_header(src, dst, hop_limit, message_len, buf)?;
    fill(message);
    fill_checksum(src, dst, message);
    Ok(IPV6_HEADER_LEN + message_len)
}

/// The checks and the IPv6 header of [`emit`]; returns the message's bytes.
#[inline(never)]
fn emit_header(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    message_len: usize,
    buf: &mut [u8],
) -> Result<&mut [u8]> {
    // The Payload Length field is 16 bits, and every ICMPv6 message has at
    // least type, code and checksum.
    if message_len < ICMP_COMMON_LEN || message_len > usize::from(u16::MAX) {
        return Err(Error::Malformed);
    }
    let total = IPV6_HEADER_LEN + message_len;
    let packet = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
    let (header, message) = packet.split_at_mut(IPV6_HEADER_LEN);
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: message_len,
        hop_limit,
    }
    .emit(&mut Ipv6Packet::new_unchecked(header));
    Ok(message)
}

/// The checksum of [`emit`], over whatever `fill` left (RFC 4443 §2.3).
#[inline(never)]
fn fill_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &mut [u8]) {
    Icmpv6Packet::new_unchecked(message).fill_checksum(&src, &dst);
}

#[cfg(test)]
mod test {
    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xffff, 0xffff, 0xffff);
    const DST: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

    #[test]
    fn emit_then_parse() {
        let mut buf = [0xa5u8; 64];
        let n = emit(SRC, DST, 255, 8, &mut buf, |m| {
            m.copy_from_slice(&[133, 0, 0xa5, 0xa5, 0, 0, 0, 0])
        })
        .unwrap();
        assert_eq!(n, 48);
        assert!(buf[48..].iter().all(|&b| b == 0xa5));
        // RS checksum from teredo-spec §1.4.
        assert_eq!(buf[42..44], [0x7d, 0x37]);
        let r = Received::parse(&buf[..n]).unwrap();
        assert_eq!(
            (r.src, r.dst, r.hop_limit, r.msg_type, r.code),
            (SRC, DST, 255, 133, 0)
        );
        assert_eq!(r.message.len(), 8);
        r.verify_checksum().unwrap();
    }

    #[test]
    fn emit_refuses_bad_lengths() {
        let mut buf = [0u8; 64];
        assert_eq!(
            emit(SRC, DST, 255, 3, &mut buf, |_| {}),
            Err(Error::Malformed)
        );
        assert_eq!(
            emit(SRC, DST, 255, 25, &mut buf, |_| {}),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(
            emit(SRC, DST, 255, 70_000, &mut buf, |_| {}),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn parse_rejects() {
        let mut buf = [0u8; 48];
        emit(SRC, DST, 255, 8, &mut buf, |m| m[0] = 133).unwrap();
        assert_eq!(Received::parse(&buf[..47]).err(), Some(Error::Truncated));
        let mut v = buf;
        v[0] = 0x40;
        assert_eq!(Received::parse(&v).err(), Some(Error::Malformed));
        let mut v = buf;
        v[6] = 59;
        assert_eq!(Received::parse(&v).err(), Some(Error::Unrecognized));
        let mut v = buf;
        v[5] = 3; // Payload Length 3: no room for the checksum field.
        assert_eq!(Received::parse(&v).err(), Some(Error::Truncated));
        let mut v = buf;
        v[47] ^= 1;
        assert_eq!(
            Received::parse(&v).unwrap().verify_checksum(),
            Err(Error::Checksum)
        );
    }
}
