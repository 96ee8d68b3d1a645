//! Per-packet cost of the relay's hot path in `shipworm-core`:
//! [`Relay::handle_ipv6`] to a trusted peer (native → client) and
//! [`Relay::handle_udp`] from a trusted peer (client → native), in
//! nanoseconds per packet, with plain `std::time::Instant` timing.
//!
//! `cargo bench -p relay_hot_path` (the `bench` profile inherits the
//! workspace `release` profile). Environment: `ITERS` [2,000,000] packets per
//! measurement, `REPEATS` [5] measurements per case (the median is printed
//! with the min and max), `PEERS` [8192] trusted peers in the "many" cases.
//!
//! Cases, each with 1280-byte packets (a full Teredo MTU) and 80-byte ones
//! (a TCP ACK with timestamps):
//! - `one peer`: every packet to or from the same trusted peer (hot caches);
//! - `many peers`: round-robin over `PEERS` trusted peers in a relay-sized
//!   table, so the peer look-up misses the caches the way a busy relay's does.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::hint::black_box;
use std::time::Instant as StdInstant;

use shipworm_core::addr::{TeredoAddr, DEFAULT_PREFIX};
use shipworm_core::nonce::SplitMix64;
use shipworm_core::relay::{Config, Output, Relay, MIN_OUTPUT_BUFFER};
use shipworm_core::time::Instant;

const NATIVE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
const NOW: Instant = Instant::from_secs(1_000);

/// The relay the glue runs: the default, relay-sized peer table.
type BenchRelay = Relay<SplitMix64>;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Trusted peer `i`: server 203.0.113.x, mapping 198.51.100.60 and a port
/// of its own.
fn peer(i: usize) -> (Ipv6Addr, SocketAddrV4) {
    let server = Ipv4Addr::new(203, 0, 113, 1 + (i % 250) as u8);
    let mapping = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 60), 10_000 + i as u16);
    let addr = TeredoAddr::new(DEFAULT_PREFIX, server, 0, mapping).to_ipv6();
    (addr, mapping)
}

/// An IPv6 packet of `len` bytes (at least 40): UDP next header, payload
/// of a repeating byte. The relay reads only the IPv6 header.
fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, len: usize, next_header: u8) -> Vec<u8> {
    let mut p = vec![0x5a; len];
    p[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p[6] = next_header;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p
}

/// A relay in which peers `0..peers` are trusted: a packet from the native
/// side creates each entry, the peer's bubble from its mapping proves it,
/// and the queued packet is released.
fn relay_with(peers: usize) -> Box<BenchRelay> {
    let config = Config {
        // Fill the table at once: the flood limits are not what is measured.
        new_peer_burst: u32::MAX,
        server_burst: u32::MAX,
        ..Config::new()
    };
    let mut relay = Box::new(BenchRelay::new(config, SplitMix64::new(7), NOW));
    let mut out = vec![0u8; MIN_OUTPUT_BUFFER];
    for i in 0..peers {
        let (addr, mapping) = peer(i);
        let packet = ipv6(NATIVE, addr, 80, 17);
        let _ = relay.handle_ipv6(NOW, &packet, &mut out);
        while relay.poll_transmit(NOW, &mut out).is_some() {}
        // A bubble: no payload, next header 59.
        let bubble = ipv6(addr, NATIVE, 40, 59);
        let _ = relay.handle_udp(NOW, mapping, &bubble, &mut out);
        while relay.poll_transmit(NOW, &mut out).is_some() {}
    }
    let trusted = relay.stats().peers_trusted;
    assert_eq!(trusted, peers as u64, "every bench peer must be trusted");
    relay
}

/// Median, min and max of `REPEATS` timings of `iters` calls of `f(i)`,
/// in ns per call.
fn measure(iters: usize, repeats: usize, mut f: impl FnMut(usize)) -> (f64, f64, f64) {
    // Warm-up: caches, branch predictors, CPU frequency.
    for i in 0..iters / 10 {
        f(i);
    }
    let mut ns: Vec<f64> = (0..repeats)
        .map(|_| {
            let t0 = StdInstant::now();
            for i in 0..iters {
                f(i);
            }
            t0.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    (ns[ns.len() / 2], ns[0], ns[ns.len() - 1])
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let iters = env("ITERS", 2_000_000).max(1);
    let repeats = env("REPEATS", 5).max(1);
    let many = env("PEERS", 8192).clamp(1, 10_000);
    println!(
        "relay hot path: ns per packet, median (min-max) of {repeats} x {iters} packets; goal < 100 ns"
    );
    println!(
        "{:<12} {:>6} {:>6} {:>26} {:>26}",
        "case", "peers", "bytes", "handle_ipv6 (to client)", "handle_udp (from client)"
    );
    for (label, peers) in [("one peer", 1), ("many peers", many)] {
        let mut relay = relay_with(peers);
        let mut out = vec![0u8; MIN_OUTPUT_BUFFER];
        for len in [1280, 80] {
            let to_client: Vec<Vec<u8>> = (0..peers)
                .map(|i| ipv6(NATIVE, peer(i).0, len, 17))
                .collect();
            let from_client: Vec<(SocketAddrV4, Vec<u8>)> = (0..peers)
                .map(|i| (peer(i).1, ipv6(peer(i).0, NATIVE, len, 17)))
                .collect();
            let down = measure(iters, repeats, |i| {
                let packet = &to_client[i % peers];
                let sent = matches!(
                    relay.handle_ipv6(black_box(NOW), black_box(packet), &mut out),
                    Output::Udp { .. }
                );
                black_box(sent);
            });
            let up = measure(iters, repeats, |i| {
                let (from, datagram) = &from_client[i % peers];
                let sent = matches!(
                    relay.handle_udp(black_box(NOW), *from, black_box(datagram), &mut out),
                    Output::Tunnel(_)
                );
                black_box(sent);
            });
            let stats = relay.stats();
            // Every timed packet must have taken the hot path, not a drop.
            assert_eq!(stats.total_drops(), 0, "drops: {stats}");
            println!(
                "{label:<12} {peers:>6} {len:>6} {:>10.1} ({:.1}-{:.1}) ns {:>10.1} ({:.1}-{:.1}) ns",
                down.0, down.1, down.2, up.0, up.1, up.2
            );
        }
    }
}
