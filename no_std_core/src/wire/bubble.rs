//! Teredo bubbles (RFC 4380 §2.8, §5.2.6): bare IPv6 headers that carry
//! nothing and exist only to open NAT state.
//!
//! A bubble is an IPv6 packet with Next Header 59 ("No Next Header") and a
//! Payload Length of 0. Since RFC 6081 §4 the UDP payload may continue after
//! the 40-byte header with trailers; they are not part of the IPv6 packet and
//! are left to the caller (`wire::encap`).
//!
//! The hop limit is the sender's choice: Miredo sends 0 on direct and indirect
//! bubbles, while local discovery bubbles use 1 (RFC 4380 §5.2.8).

use core::net::Ipv6Addr;

use smoltcp::wire::{IpProtocol, Ipv6Packet, Ipv6Repr, IPV6_HEADER_LEN};

use super::{Error, Result};

/// Length of a bubble: the IPv6 header alone.
pub const BUBBLE_LEN: usize = IPV6_HEADER_LEN;

/// Whether `ipv6` starts with a bubble (RFC 4380 §2.8): version 6, Next Header
/// 59, Payload Length 0.
///
/// Bytes after the 40-byte header are ignored: they are RFC 6081 trailers,
/// which the caller handles (RFC 6081 §4).
pub fn is_bubble(ipv6: &[u8]) -> bool {
    match Ipv6Packet::new_checked(ipv6) {
        Ok(packet) => {
            packet.version() == 6
                && packet.next_header() == IpProtocol::Ipv6NoNxt
                && packet.payload_len() == 0
        }
        Err(_) => false,
    }
}

/// Writes a bubble from `src` to `dst` into `buf[..40]` and returns 40.
///
/// Traffic class and flow label are zero. `BufferTooSmall` if `buf` is shorter
/// than [`BUBBLE_LEN`].
pub fn emit(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, buf: &mut [u8]) -> Result<usize> {
    let header = buf.get_mut(..BUBBLE_LEN).ok_or(Error::BufferTooSmall)?;
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Ipv6NoNxt,
        payload_len: 0,
        hop_limit,
    }
    .emit(&mut Ipv6Packet::new_unchecked(header));
    Ok(BUBBLE_LEN)
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// A relay's bubble (Miredo style: hop limit 0, link-local source) to the
    /// Teredo address of teredo-spec §1.4 V1.
    static BUBBLE: [u8; 40] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3b, 0x00, //
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, //
        0x20, 0x01, 0x00, 0x00, 0x41, 0x36, 0xe3, 0x78, //
        0x80, 0x00, 0x63, 0xbf, 0x3f, 0xff, 0xfd, 0xd2, //
    ];
    const SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x1234, 0x5678, 0x9abc, 0xdef0);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0, 0x4136, 0xe378, 0x8000, 0x63bf, 0x3fff, 0xfdd2);

    #[test]
    fn deconstruct() {
        assert!(is_bubble(&BUBBLE));
        let packet = Ipv6Packet::new_checked(&BUBBLE[..]).unwrap();
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.dst_addr(), DST);
        assert_eq!(packet.hop_limit(), 0);
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 48];
        assert_eq!(emit(SRC, DST, 0, &mut buf), Ok(40));
        assert_eq!(buf[..40], BUBBLE);
        assert!(
            buf[40..].iter().all(|&b| b == 0xa5),
            "wrote past the bubble"
        );
    }

    #[test]
    fn construct_buffer_too_small() {
        let mut buf = [0u8; 39];
        assert_eq!(emit(SRC, DST, 0, &mut buf), Err(Error::BufferTooSmall));
    }

    #[test]
    fn trailers_after_header_still_bubble() {
        // RFC 6081 §4: a Nonce trailer (type 1, length 4) after the header.
        let mut with_trailer = BUBBLE.to_vec();
        with_trailer.extend_from_slice(&[0x01, 0x04, 1, 2, 3, 4]);
        assert!(is_bubble(&with_trailer));
    }

    #[test]
    fn not_bubbles() {
        assert!(!is_bubble(&BUBBLE[..39]));
        assert!(!is_bubble(&[]));
        let mut v = BUBBLE;
        v[0] = 0x40; // version 4
        assert!(!is_bubble(&v));
        let mut v = BUBBLE;
        v[6] = 58; // ICMPv6
        assert!(!is_bubble(&v));
        let mut v = BUBBLE.to_vec();
        v[5] = 1; // Payload Length 1, with the byte present
        v.push(0);
        assert!(!is_bubble(&v));
    }

    proptest! {
        #[test]
        fn round_trip(src: [u8; 16], dst: [u8; 16], hop_limit: u8) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let mut buf = [0u8; 40];
            prop_assert_eq!(emit(src, dst, hop_limit, &mut buf), Ok(40));
            prop_assert!(is_bubble(&buf));
            let packet = Ipv6Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!((packet.src_addr(), packet.dst_addr(), packet.hop_limit()), (src, dst, hop_limit));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = is_bubble(&bytes);
            let mut out: Vec<u8> = bytes.clone();
            let _ = emit(Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED, 0, &mut out);
        }
    }
}
