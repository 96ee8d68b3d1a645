//! The relay's limit on new peer entries from the IPv6 side (RFC 4380
//! §7.3.5; see the module documentation of [`super`] for the reasoning).

use core::net::Ipv4Addr;

use super::Config;
use crate::limits::TokenBucket;
use crate::nonce::KeyedHash;
use crate::time::Instant;

/// Number of per-server buckets. 64 buckets of 32 bytes: a few clients'
/// worth of servers fit without collisions, and the whole array stays in a
/// couple of cache lines' reach.
pub const SERVER_BUCKETS: usize = 64;

/// A relay-wide bucket, and [`SERVER_BUCKETS`] buckets picked by a keyed
/// hash of the Teredo server IPv4 the indirect bubbles would go to.
pub(super) struct NewPeerLimit {
    global: TokenBucket,
    servers: [TokenBucket; SERVER_BUCKETS],
    key: KeyedHash,
}

impl NewPeerLimit {
    /// Full buckets with `config`'s sizes and rates; `key` must be secret
    /// so that nobody can aim two servers at one bucket.
    pub(super) fn new(config: &Config, key: [u8; 16], now: Instant) -> Self {
        NewPeerLimit {
            global: TokenBucket::new(config.new_peer_burst, config.new_peer_rate, now),
            servers: core::array::from_fn(|_| {
                TokenBucket::new(config.server_burst, config.server_rate, now)
            }),
            key: KeyedHash::new(key),
        }
    }

    /// Whether a new entry for a client of `server` may be made now. The
    /// server's bucket is asked first, so a flood aimed at one server is
    /// stopped there without spending the relay-wide budget.
    pub(super) fn for_server(&mut self, server: Ipv4Addr, now: Instant) -> bool {
        // The modulo of a 64-bit hash by a small power of two is unbiased.
        let i = (self.key.hash(&[&server.octets()]) % SERVER_BUCKETS as u64) as usize;
        self.servers.get_mut(i).is_some_and(|b| b.try_take(now)) && self.global.try_take(now)
    }

    /// Whether a new entry may be made now without a server in view (first
    /// contact from a client).
    pub(super) fn any(&mut self, now: Instant) -> bool {
        self.global.try_take(now)
    }
}
