//! The stateless nonce of the direct IPv6 connectivity test
//! (RFC 4380 §5.2.9, §5.2.3 rule 2).
//!
//! The test is an ICMPv6 Echo Request from our Teredo address to a native
//! peer, sent through our own server; the relay nearest the peer brings the
//! Echo Reply back, and the reply's UDP source becomes the peer's mapping.
//! RFC 4380 stores a random nonce in the peer entry; like Miredo we store
//! nothing: the echo data is a time stamp and a keyed hash of (our address,
//! the peer, the time stamp), so a reply is checked by recomputing the hash.
//! That keeps the peer entry small and lets a reply verify even after its
//! entry was evicted. Only someone who sees the request (on-path) can forge
//! the reply, which RFC 4380 §7.2.2 accepts.
//!
//! Data = 8-byte time stamp (milliseconds of the caller's clock, big endian)
//! ‖ 8-byte SipHash tag: 16 bytes, so the whole ICMPv6 message is 24 bytes,
//! well under the 88 bytes a Miredo server forwards (miredo.md §3.13).

use core::net::Ipv6Addr;

use crate::nonce::KeyedHash;
use crate::time::{Duration, Instant};
use crate::wire::echo::{EchoKind, EchoRepr};
use crate::wire::Result;

/// ICMPv6 identifier of our echo requests ("SW"), so that a reply to a test
/// whose tag fails can be told from an application's echo reply.
pub(super) const ECHO_IDENT: u16 = 0x5357;

/// Hop limit of our echo requests (the usual unicast default).
const ECHO_HOP_LIMIT: u8 = 64;

/// Length of the echo data: time stamp and tag.
const ECHO_DATA_LEN: usize = 16;

/// How long a reply is accepted after its request: the four tries of a test
/// span 6 s; 30 s tolerates slow relays, as Miredo's token lifetime does.
pub(super) const ECHO_LIFETIME: Duration = Duration::from_secs(30);

/// Makes and checks the echo data under a secret key.
pub(super) struct EchoNonce {
    key: KeyedHash,
}

impl EchoNonce {
    /// A nonce maker keyed with `key` (random, from the client's Rng).
    pub(super) fn new(key: [u8; 16]) -> Self {
        EchoNonce {
            key: KeyedHash::new(key),
        }
    }

    fn tag(&self, ours: Ipv6Addr, peer: Ipv6Addr, stamp: u64) -> u64 {
        self.key.hash(&[
            b"echo",
            &ours.octets(),
            &peer.octets(),
            &stamp.to_be_bytes(),
        ])
    }

    /// Writes the IPv6 Echo Request of a connectivity test from `ours` to
    /// `peer` at `now` (try number `seq`) into `out`; returns its length (64).
    pub(super) fn emit_request(
        &self,
        ours: Ipv6Addr,
        peer: Ipv6Addr,
        seq: u16,
        now: Instant,
        out: &mut [u8],
    ) -> Result<usize> {
        let stamp = now.total_millis();
        let mut data = [0u8; ECHO_DATA_LEN];
        data[..8].copy_from_slice(&stamp.to_be_bytes());
        data[8..].copy_from_slice(&self.tag(ours, peer, stamp).to_be_bytes());
        EchoRepr {
            src: ours,
            dst: peer,
            hop_limit: ECHO_HOP_LIMIT,
            kind: EchoKind::Request,
            ident: ECHO_IDENT,
            seq,
            data: &data,
        }
        .emit(out)
    }

    /// Whether `reply` answers one of our requests from `ours` to its source,
    /// sent less than [`ECHO_LIFETIME`] before `now` (RFC 4380 §5.2.3 rule 2:
    /// "the data equals the nonce").
    pub(super) fn verify(&self, ours: Ipv6Addr, reply: &EchoRepr<'_>, now: Instant) -> bool {
        let Some((stamp, tag)) = reply.data.split_first_chunk::<8>() else {
            return false;
        };
        let stamp = u64::from_be_bytes(*stamp);
        let fresh = stamp <= now.total_millis()
            && now.total_millis() - stamp < ECHO_LIFETIME.total_millis();
        reply.kind == EchoKind::Reply
            && reply.ident == ECHO_IDENT
            && reply.dst == ours
            && reply.data.len() == ECHO_DATA_LEN
            && fresh
            && tag == self.tag(ours, reply.src, stamp).to_be_bytes()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const OURS: Ipv6Addr = Ipv6Addr::new(0x2001, 0, 0x4136, 0xe378, 0x8000, 0x63bf, 0x3fff, 0xfdd2);
    const PEER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    fn request(nonce: &EchoNonce, at: Instant) -> [u8; 64] {
        let mut buf = [0xa5u8; 64];
        assert_eq!(nonce.emit_request(OURS, PEER, 3, at, &mut buf), Ok(64));
        buf
    }

    #[test]
    fn request_deconstruct() {
        let nonce = EchoNonce::new([7; 16]);
        let buf = request(&nonce, Instant::from_millis(0x0102_0304));
        let echo = EchoRepr::parse(&buf).unwrap();
        assert_eq!((echo.src, echo.dst, echo.hop_limit), (OURS, PEER, 64));
        assert_eq!(
            (echo.kind, echo.ident, echo.seq),
            (EchoKind::Request, ECHO_IDENT, 3)
        );
        assert_eq!(echo.data[..8], [0, 0, 0, 0, 1, 2, 3, 4]);
        // Small enough for a Miredo server (≤ 88 bytes of IPv6 payload).
        assert_eq!(buf[4..6], [0, 24]);
    }

    #[test]
    fn reply_verifies_within_lifetime_only() {
        let nonce = EchoNonce::new([7; 16]);
        let sent = Instant::from_secs(100);
        let buf = request(&nonce, sent);
        let reply = EchoRepr::parse(&buf).unwrap().reply_to(64).unwrap();
        assert!(nonce.verify(OURS, &reply, sent));
        assert!(nonce.verify(OURS, &reply, sent + Duration::from_millis(29_999)));
        assert!(!nonce.verify(OURS, &reply, sent + ECHO_LIFETIME));
        assert!(
            !nonce.verify(OURS, &reply, Instant::from_secs(99)),
            "from the future"
        );
        // Another key, another peer, another destination, a request, a
        // flipped bit: all refused.
        assert!(!EchoNonce::new([8; 16]).verify(OURS, &reply, sent));
        let mut other = reply;
        other.src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        assert!(!nonce.verify(OURS, &other, sent));
        assert!(!nonce.verify(PEER, &reply, sent));
        let request = EchoRepr::parse(&buf).unwrap();
        assert!(!nonce.verify(OURS, &request, sent));
        let mut data = [0u8; 16];
        data.copy_from_slice(reply.data);
        data[15] ^= 1;
        let mut forged = reply;
        forged.data = &data;
        assert!(!nonce.verify(OURS, &forged, sent));
        forged.data = &data[..8];
        assert!(!nonce.verify(OURS, &forged, sent));
    }
}
