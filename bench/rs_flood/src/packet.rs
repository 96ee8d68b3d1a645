//! The datagrams of the flood: Miredo-style Router Solicitations carrying a
//! tagged nonce, and the check that an answer is a real Router Advertisement
//! for one of them.
//!
//! The nonce of every RS is fresh, and its first half is a keyed tag of the
//! socket and sequence number it was sent with. So the receiver can tell,
//! without remembering what it sent, that an RA echoes a nonce of this run
//! and this socket (RFC 4380 §5.2.1: the server copies the client's nonce
//! into its RA) rather than counting any datagram from port 3544.

use core::net::{Ipv4Addr, SocketAddrV4};

use shipworm_core::addr::{ALL_ROUTERS, CLIENT_LL_RESTRICTED};
use shipworm_core::wire::encap::{AuthHeader, Repr, AUTH_MIN_LEN};
use shipworm_core::wire::ndisc::{RouterAdvertisement, RouterSolicitation};

/// Length of one flood datagram: a nonce-only authentication header (13
/// bytes) then the 48-byte RS, as Miredo clients send it (61 bytes).
pub const RS_LEN: usize = AUTH_MIN_LEN + RouterSolicitation::BUFFER_LEN;

/// The secret that tags nonces, so RAs can be matched to this run.
#[derive(Debug, Clone, Copy)]
pub struct NonceKey(u64);

impl NonceKey {
    /// A key from any seed (the start time is enough: this is not security,
    /// only "did this nonce come from us").
    pub fn new(seed: u64) -> Self {
        NonceKey(mix(seed))
    }

    /// The nonce of RS number `seq` from socket number `socket`: a 4-byte
    /// tag, then `seq` big-endian.
    pub fn nonce(&self, socket: u32, seq: u32) -> [u8; 8] {
        let mut n = [0u8; 8];
        let (tag, count) = n.split_at_mut(4);
        tag.copy_from_slice(&self.tag(socket, seq));
        count.copy_from_slice(&seq.to_be_bytes());
        n
    }

    /// Whether `nonce` is one [`NonceKey::nonce`] made for `socket`.
    pub fn is_ours(&self, socket: u32, nonce: [u8; 8]) -> bool {
        let [a, b, c, d, e, f, g, h] = nonce;
        [a, b, c, d] == self.tag(socket, u32::from_be_bytes([e, f, g, h]))
    }

    fn tag(&self, socket: u32, seq: u32) -> [u8; 4] {
        let h = mix(self.0 ^ (u64::from(socket) << 32 | u64::from(seq)));
        // The high half of the 64-bit mix.
        let [a, b, c, d, ..] = h.to_be_bytes();
        [a, b, c, d]
    }
}

/// SplitMix64's finaliser: a cheap, well-spread 64-bit permutation.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The RS every flood datagram carries, emitted once: it holds no nonce, so
/// its ICMPv6 checksum never changes.
#[derive(Debug, Clone)]
pub struct RsTemplate {
    ipv6: [u8; RouterSolicitation::BUFFER_LEN],
}

impl RsTemplate {
    /// A non-cone RS from `fe80::ffff:ffff:ffff` to all-routers, as Miredo
    /// clients send to qualify (RFC 4380 §5.2.1).
    pub fn new() -> Self {
        let mut ipv6 = [0u8; RouterSolicitation::BUFFER_LEN];
        let rs = RouterSolicitation {
            src: CLIENT_LL_RESTRICTED,
            dst: ALL_ROUTERS,
        };
        // The buffer is exactly BUFFER_LEN long, the one error emit reports.
        let _ = rs.emit(&mut ipv6);
        RsTemplate { ipv6 }
    }

    /// Write the whole UDP payload with `nonce` into `buf`.
    pub fn emit(&self, nonce: [u8; 8], buf: &mut [u8; RS_LEN]) {
        let repr = Repr {
            auth: Some(AuthHeader {
                client_id: &[],
                auth_value: &[],
                nonce,
                confirmation: 0,
            }),
            origin: None,
            ipv6: &self.ipv6,
            trailers: &[],
        };
        // `buf` is exactly the payload length: emit cannot fail.
        let _ = repr.emit(buf);
    }
}

impl Default for RsTemplate {
    fn default() -> Self {
        RsTemplate::new()
    }
}

/// Check that `payload`, received on socket number `socket` bound to
/// `local`, is the RA a Teredo server at `server` owes for one of our RSs:
/// our nonce echoed, our mapping in the origin indication (RFC 4380 §5.2.1),
/// a valid RA (RFC 4861 §6.1.2) to the RS's source advertising
/// `2001:0:<server>::/64`. The error says what is wrong.
pub fn check_ra(
    payload: &[u8],
    key: NonceKey,
    socket: u32,
    local: SocketAddrV4,
    server: Ipv4Addr,
) -> Result<(), &'static str> {
    let repr = Repr::parse(payload).map_err(|_| "not a Teredo packet")?;
    let auth = repr.auth.ok_or("no authentication header")?;
    if !key.is_ours(socket, auth.nonce) {
        return Err("nonce not echoed");
    }
    if repr.origin != Some(local) {
        return Err("origin indication is not our address");
    }
    let ra = RouterAdvertisement::parse(repr.ipv6).map_err(|_| "not a valid RA")?;
    if ra.dst != CLIENT_LL_RESTRICTED {
        return Err("RA not sent to the RS's source");
    }
    let [a, b, c, d] = server.octets();
    if ra.prefix64() != Some([0x20, 0x01, 0, 0, a, b, c, d]) {
        return Err("wrong Teredo prefix");
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;
    use shipworm_core::server::{Action, Config, Local, Server};
    use shipworm_core::time::Instant;

    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 50), 20007);

    fn rs(key: NonceKey, socket: u32, seq: u32) -> [u8; RS_LEN] {
        let mut buf = [0xa5; RS_LEN];
        RsTemplate::new().emit(key.nonce(socket, seq), &mut buf);
        buf
    }

    /// Feed `datagram` to the core's server and return its UDP reply.
    fn answer(datagram: &[u8], out: &mut [u8]) -> Vec<u8> {
        let mut server = Server::new(Config::new(SERVER), Instant::from_secs(1));
        match server.handle_udp(Instant::from_secs(1), Local::Primary, LOCAL, datagram, out) {
            Action::SendUdp { data, .. } => data.to_vec(),
            _ => panic!("the server did not answer the RS"),
        }
    }

    #[test]
    fn rs_is_miredo_shaped() {
        let key = NonceKey::new(7);
        let buf = rs(key, 3, 0x0102_0304);
        assert_eq!(buf.len(), 61);
        // Auth marker, empty id and value, the nonce, confirmation 0.
        assert_eq!(buf[..4], [0x00, 0x01, 0x00, 0x00]);
        assert_eq!(buf[4..12], key.nonce(3, 0x0102_0304));
        assert_eq!(buf[8..12], [1, 2, 3, 4]);
        assert_eq!(buf[12], 0);
        let repr = Repr::parse(&buf).unwrap();
        assert_eq!(repr.origin, None);
        let parsed = RouterSolicitation::parse(repr.ipv6).unwrap();
        assert_eq!(parsed.src, CLIENT_LL_RESTRICTED);
        assert_eq!(parsed.dst, ALL_ROUTERS);
    }

    #[test]
    fn nonces_are_fresh_and_bound_to_their_socket() {
        let key = NonceKey::new(42);
        assert_ne!(key.nonce(1, 1), key.nonce(1, 2));
        assert_ne!(key.nonce(1, 1), key.nonce(2, 1));
        assert!(key.is_ours(1, key.nonce(1, 99)));
        assert!(!key.is_ours(2, key.nonce(1, 99)));
        assert!(!NonceKey::new(43).is_ours(1, key.nonce(1, 99)));
    }

    #[test]
    fn core_server_answer_passes() {
        let key = NonceKey::new(1);
        let mut out = [0u8; 1500];
        let ra = answer(&rs(key, 7, 5), &mut out);
        assert_eq!(check_ra(&ra, key, 7, LOCAL, SERVER), Ok(()));
    }

    #[test]
    fn wrong_answers_fail() {
        let key = NonceKey::new(1);
        let mut out = [0u8; 1500];
        let ra = answer(&rs(key, 7, 5), &mut out);
        assert_eq!(
            check_ra(&ra, key, 8, LOCAL, SERVER),
            Err("nonce not echoed")
        );
        let elsewhere = SocketAddrV4::new(*LOCAL.ip(), 20008);
        assert_eq!(
            check_ra(&ra, key, 7, elsewhere, SERVER),
            Err("origin indication is not our address")
        );
        assert_eq!(
            check_ra(&ra, key, 7, LOCAL, Ipv4Addr::new(198, 51, 100, 2)),
            Err("wrong Teredo prefix")
        );
        let mut bad = ra.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(check_ra(&bad, key, 7, LOCAL, SERVER), Err("not a valid RA"));
        // A bare IPv6 packet is a valid Teredo payload, but no answer.
        assert_eq!(
            check_ra(&RsTemplate::new().ipv6, key, 7, LOCAL, SERVER),
            Err("no authentication header")
        );
        assert_eq!(
            check_ra(&[0x00, 0x01], key, 7, LOCAL, SERVER),
            Err("not a Teredo packet")
        );
    }
}
