//! Randomness and a keyed hash, as inputs to the core.
//!
//! The core never reaches for an entropy source of its own: the caller hands
//! in an [`Rng`] where one is needed (nonces for Router Solicitations,
//! RFC 5991 random flag bits). Where the core needs to *recognise* a value it
//! made earlier without storing it (stateless echo nonces, bubble tags), it
//! derives the value with a [`KeyedHash`] under a secret key chosen once at
//! start-up, so a reply can be checked by recomputing the hash.

/// A source of random bytes, implemented by the caller.
///
/// RFC 5991 §3.1 requires the random flag bits to come from a proper random
/// number generator (RFC 4086 guidance), and RFC 4380 §5.2.2 / §5.2.9 nonces
/// must be unpredictable to off-path attackers: production callers must back
/// this with the operating system's CSPRNG (e.g. `getrandom(2)`).
pub trait Rng {
    /// Fill `buf` entirely with random bytes.
    fn fill_bytes(&mut self, buf: &mut [u8]);

    /// A random `u32`, from four bytes of [`Rng::fill_bytes`].
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    /// A random `u64`, from eight bytes of [`Rng::fill_bytes`].
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
}

/// SipHash-2-4 with a 128-bit key: a fast keyed pseudo-random function.
///
/// Chosen over an HMAC because the core only needs values an off-path
/// attacker cannot predict or forge without the key (echo nonces, bubble
/// tags), SipHash is designed for exactly that on short inputs, and its ~40
/// lines cost far less code on a router than a SHA or MD5 implementation.
///
/// [`KeyedHash::hash`] hashes its `parts` as ONE concatenated message, so
/// `["ab", "c"]` and `["a", "bc"]` collide. Callers hashing variable-length
/// fields must length-delimit them (fixed-size fields, or a length prefix).
#[derive(Clone)]
pub struct KeyedHash {
    k0: u64,
    k1: u64,
}

impl core::fmt::Debug for KeyedHash {
    /// Never prints the key, so it cannot leak into logs.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyedHash { .. }")
    }
}

/// The four words of SipHash state.
struct SipState([u64; 4]);

impl SipState {
    /// The initialisation constants of the SipHash paper, xored with the key.
    fn new(k0: u64, k1: u64) -> Self {
        SipState([
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f6d,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ])
    }

    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.0;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    /// Absorb one 64-bit message word with two compression rounds ("2" of 2-4).
    fn absorb(&mut self, m: u64) {
        self.0[3] ^= m;
        self.round();
        self.round();
        self.0[0] ^= m;
    }

    /// Four finalisation rounds ("4" of 2-4).
    fn finish(mut self) -> u64 {
        self.0[2] ^= 0xff;
        for _ in 0..4 {
            self.round();
        }
        self.0[0] ^ self.0[1] ^ self.0[2] ^ self.0[3]
    }
}

impl KeyedHash {
    /// A hash keyed with `key` (read as two little-endian words, as in the
    /// SipHash reference).
    pub fn new(key: [u8; 16]) -> Self {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&key[..8]);
        k1.copy_from_slice(&key[8..]);
        KeyedHash {
            k0: u64::from_le_bytes(k0),
            k1: u64::from_le_bytes(k1),
        }
    }

    /// SipHash-2-4 of the concatenation of `parts` (see the type's doc about
    /// delimiting variable-length fields).
    pub fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut state = SipState::new(self.k0, self.k1);
        // Bytes are gathered into little-endian words across part boundaries,
        // so the split into parts never changes the result.
        let mut word = 0u64;
        let mut filled = 0u32;
        let mut total_len = 0u8;
        for &byte in parts.iter().flat_map(|p| p.iter()) {
            word |= u64::from(byte) << (8 * filled);
            filled += 1;
            // Only the length modulo 256 enters the final word.
            total_len = total_len.wrapping_add(1);
            if filled == 8 {
                state.absorb(word);
                word = 0;
                filled = 0;
            }
        }
        state.absorb(word | (u64::from(total_len) << 56));
        state.finish()
    }
}

/// SplitMix64: a tiny, fast, seeded PRNG for simulations and tests.
///
/// NOT cryptographic: its output is predictable from a few samples. Never use
/// it for nonces, RFC 5991 flag bits or keys on a real network.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output is determined by `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Rng for SplitMix64 {
    fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.next()
    }
}

#[cfg(test)]
mod test {
    use super::{KeyedHash, Rng, SplitMix64};
    use proptest::prelude::{any, prop, prop_assert_eq, proptest};

    /// SipHash-2-4 reference outputs (`vectors_sip64` of the SipHash reference
    /// code; the 15-byte one is also in the paper's appendix): key 00..0f,
    /// message 00..n-1 for n = 0..63, as little-endian u64.
    #[rustfmt::skip]
    const SIP64: [u64; 64] = [
        0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a, 0x85676696d7fb7e2d,
        0xcf2794e0277187b7, 0x18765564cd99a68d, 0xcbc9466e58fee3ce, 0xab0200f58b01d137,
        0x93f5f5799a932462, 0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
        0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee, 0xa129ca6149be45e5,
        0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794, 0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd,
        0xbed65cf21aa2ee98, 0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
        0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3, 0x2f2e6163076bcfad,
        0xde4daaaca71dc9a5, 0xa6a2506687956571, 0xad87a3535c49ef28, 0x32d892fad841c342,
        0x7127512f72f27cce, 0xa7f32346f95978e3, 0x12e0b01abb051238, 0x15e034d40fa197ae,
        0x314dffbe0815a3b4, 0x027990f029623981, 0xcadcd4e59ef40c4d, 0x9abfd8766a33735c,
        0x0e3ea96b5304a7d0, 0xad0c42d6fc585992, 0x187306c89bc215a9, 0xd4a60abcf3792b95,
        0xf935451de4f21df2, 0xa9538f0419755787, 0xdb9acddff56ca510, 0xd06c98cd5c0975eb,
        0xe612a3cb9ecba951, 0xc766e62cfcadaf96, 0xee64435a9752fe72, 0xa192d576b245165a,
        0x0a8787bf8ecb74b2, 0x81b3e73d20b49b6f, 0x7fa8220ba3b2ecea, 0x245731c13ca42499,
        0xb78dbfaf3a8d83bd, 0xea1ad565322a1a0b, 0x60e61c23a3795013, 0x6606d7e446282b93,
        0x6ca4ecb15c5f91e1, 0x9f626da15c9625f3, 0xe51b38608ef25f57, 0x958a324ceb064572,
    ];

    fn reference_key() -> [u8; 16] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn siphash_reference_vectors() {
        let h = KeyedHash::new(reference_key());
        let msg: [u8; 64] = core::array::from_fn(|i| i as u8);
        for (n, &expected) in SIP64.iter().enumerate() {
            assert_eq!(h.hash(&[&msg[..n]]), expected, "length {n}");
        }
    }

    #[test]
    fn siphash_split_into_parts_is_concatenation() {
        let h = KeyedHash::new(reference_key());
        let msg: [u8; 63] = core::array::from_fn(|i| i as u8);
        assert_eq!(
            h.hash(&[&msg[..5], &[], &msg[5..13], &msg[13..]]),
            SIP64[63]
        );
        assert_eq!(h.hash(&[]), SIP64[0]);
    }

    #[test]
    fn keyed_hash_debug_hides_key() {
        let s = std::format!("{:?}", KeyedHash::new([0x42; 16]));
        assert_eq!(s, "KeyedHash { .. }");
    }

    #[test]
    fn splitmix64_reference_outputs() {
        // First outputs for seed 0 of the public-domain splitmix64.c.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220a8397b1dcdaf);
        assert_eq!(r.next_u64(), 0x6e789e6aa1b965f4);
        assert_eq!(r.next_u64(), 0x06c45d188009454f);
    }

    #[test]
    fn splitmix64_fill_bytes_is_little_endian_stream() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let mut buf = [0u8; 11];
        a.fill_bytes(&mut buf);
        let w0 = b.next_u64().to_le_bytes();
        let w1 = b.next_u64().to_le_bytes();
        assert_eq!(&buf[..8], &w0);
        assert_eq!(&buf[8..], &w1[..3]);
        // next_u32 takes a fresh word through fill_bytes.
        let mut c = SplitMix64::new(7);
        assert_eq!(
            c.next_u32(),
            u32::from_le_bytes([w0[0], w0[1], w0[2], w0[3]])
        );
    }

    proptest! {
        /// Cross-check against the standard library's SipHash-2-4 (deprecated
        /// there as a public hasher, but still the reference algorithm).
        #[test]
        #[allow(deprecated)]
        fn siphash_matches_std(key in any::<[u8; 16]>(),
                               msg in proptest::collection::vec(any::<u8>(), 0..200),
                               cut in any::<prop::sample::Index>()) {
            use core::hash::Hasher;
            let k0 = u64::from_le_bytes(key[..8].try_into().unwrap());
            let k1 = u64::from_le_bytes(key[8..].try_into().unwrap());
            let mut std_hasher = std::hash::SipHasher::new_with_keys(k0, k1);
            std_hasher.write(&msg);
            let at = cut.index(msg.len() + 1);
            let ours = KeyedHash::new(key).hash(&[&msg[..at], &msg[at..]]);
            prop_assert_eq!(ours, std_hasher.finish());
        }
    }
}
