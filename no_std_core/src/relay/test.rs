//! Unit tests of the relay: one per relay checklist item of teredo-spec
//! §8.3 (item 1, advertising the prefix, is the glue's routing; item 13 is
//! `sim_test.rs`), plus forged traffic, the symmetric-NAT tag path and a
//! flood of new peers.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::boxed::Box;
use std::vec::Vec;

use smoltcp::wire::{IpProtocol, Ipv6Packet, Ipv6Repr};

use super::{Config, Destination, Drop, Output, Relay, RelayKind, MIN_OUTPUT_BUFFER};
use crate::addr::{TeredoAddr, DEFAULT_PREFIX, FLAG_CONE, TEREDO_PORT};
use crate::nonce::SplitMix64;
use crate::time::{Duration, Instant};
use crate::wire::bubble;
use crate::wire::icmp_error::DstUnreachable;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const SERVER_EP: SocketAddrV4 = SocketAddrV4::new(SERVER, TEREDO_PORT);
const MAPPING: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 45), 40000);
const NATIVE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const T0: Instant = Instant::from_secs(100);

/// A small table: 64 peers, 16 queue slots.
type TestRelay = Relay<SplitMix64, 64, 128, 16, 1280>;

fn at(ms: u64) -> Instant {
    T0 + Duration::from_millis(ms)
}

fn client_addr(flags: u16, mapping: SocketAddrV4) -> Ipv6Addr {
    TeredoAddr::new(DEFAULT_PREFIX, SERVER, flags, mapping).to_ipv6()
}

fn client() -> Ipv6Addr {
    client_addr(0, MAPPING)
}

fn relay(config: Config) -> Box<TestRelay> {
    Box::new(Relay::with_table(config, SplitMix64::new(7), T0))
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
    let mut buf = std::vec![0u8; 40 + payload.len()];
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: payload.len(),
        hop_limit: 64,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
    buf[40..].copy_from_slice(payload);
    buf
}

fn bubble_from(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut b = std::vec![0u8; 40];
    bubble::emit(src, dst, 0, &mut b).unwrap();
    b
}

fn header(packet: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8) {
    let p = Ipv6Packet::new_checked(packet).unwrap();
    (p.src_addr(), p.dst_addr(), p.hop_limit())
}

fn own(output: Output<'_>) -> Option<(Option<SocketAddrV4>, Vec<u8>)> {
    match output {
        Output::None => None,
        Output::Udp { to, data } => Some((Some(to), data.to_vec())),
        Output::Tunnel(data) => Some((None, data.to_vec())),
    }
}

fn native_in(
    r: &mut TestRelay,
    now: Instant,
    packet: &[u8],
) -> Option<(Option<SocketAddrV4>, Vec<u8>)> {
    let mut out = [0u8; MIN_OUTPUT_BUFFER];
    own(r.handle_ipv6(now, packet, &mut out))
}

fn udp_in(
    r: &mut TestRelay,
    now: Instant,
    from: SocketAddrV4,
    data: &[u8],
) -> Option<(Option<SocketAddrV4>, Vec<u8>)> {
    let mut out = [0u8; MIN_OUTPUT_BUFFER];
    own(r.handle_udp(now, from, data, &mut out))
}

fn drain(r: &mut TestRelay, now: Instant) -> Vec<(Destination, Vec<u8>)> {
    let mut out = [0u8; MIN_OUTPUT_BUFFER];
    let mut sent = Vec::new();
    while let Some(tx) = r.poll_transmit(now, &mut out) {
        sent.push((tx.dest, out[..tx.len].to_vec()));
    }
    sent
}

/// Run the relay's timers from `from` to `to` in 100 ms steps, collecting
/// what it sends with the instant.
fn run(r: &mut TestRelay, from: u64, to: u64) -> Vec<(Instant, Destination, Vec<u8>)> {
    let mut sent = Vec::new();
    for ms in (from..=to).step_by(100) {
        let now = at(ms);
        if r.poll_timeout().is_some_and(|t| t <= now) {
            r.handle_timeout(now);
        }
        sent.extend(drain(r, now).into_iter().map(|(d, p)| (now, d, p)));
    }
    sent
}

/// The relay's tag (bubble source) for `mapping`, learnt from its bubble.
fn tag_of(r: &mut TestRelay, client: Ipv6Addr) -> Ipv6Addr {
    let _ = native_in(r, at(0), &ipv6(NATIVE, client, b"probe"));
    let sent = drain(r, at(0));
    header(&sent[0].1).0
}

/// A client trusted at `MAPPING` at instant 0 (through a bubble exchange).
fn trusted() -> (Box<TestRelay>, Vec<u8>) {
    let mut r = relay(Config::new());
    let first = ipv6(NATIVE, client(), b"first");
    assert_eq!(native_in(&mut r, at(0), &first), None);
    let sent = drain(&mut r, at(0));
    let tag = header(&sent[0].1).0;
    assert_eq!(
        udp_in(&mut r, at(50), MAPPING, &bubble_from(client(), tag)),
        None
    );
    assert_eq!(
        drain(&mut r, at(50)),
        [(Destination::Udp(MAPPING), first.clone())]
    );
    (r, first)
}

#[test]
fn item2_non_global_embedded_ipv4_is_dropped_silently() {
    // teredo-spec §8.3 item 2 (RFC 4380 §5.4.1 MUST).
    let mut r = relay(Config::new());
    let private = SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 40000);
    let bad_server = TeredoAddr::new(DEFAULT_PREFIX, Ipv4Addr::new(127, 0, 0, 1), 0, MAPPING);
    for dst in [client_addr(0, private), bad_server.to_ipv6()] {
        assert_eq!(native_in(&mut r, at(0), &ipv6(NATIVE, dst, b"x")), None);
    }
    assert!(drain(&mut r, at(0)).is_empty());
    assert_eq!(r.stats().drops(Drop::NonGlobalDestination), 2);
    assert!(r.peers().is_empty());
}

#[test]
fn item3_trusted_peer_gets_packets_directly_zero_copy() {
    // teredo-spec §8.3 item 3 (RFC 4380 §5.4.1 case 1).
    let (mut r, _) = trusted();
    let packet = ipv6(NATIVE, client(), b"hot path");
    let mut out = [0u8; MIN_OUTPUT_BUFFER];
    match r.handle_ipv6(at(1000), &packet, &mut out) {
        Output::Udp { to, data } => {
            assert_eq!(to, MAPPING);
            assert!(core::ptr::eq(data, &packet[..]), "borrows the input");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.peers().get(&client()).unwrap().last_tx(), at(1000));
    assert_eq!(r.stats().sent_direct, 1);
    assert_eq!(r.stats().to_clients.packets, 2);
}

#[test]
fn item4_cone_bit_is_ignored() {
    // teredo-spec §8.3 item 4: treated as C=0 (RFC 5991 §3.2).
    let mut r = relay(Config::new());
    let cone = client_addr(FLAG_CONE, MAPPING);
    assert_eq!(native_in(&mut r, at(0), &ipv6(NATIVE, cone, b"x")), None);
    let sent = drain(&mut r, at(0));
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].0,
        Destination::Udp(SERVER_EP),
        "a bubble, not the packet"
    );
    assert!(!r.peers().get(&cone).unwrap().is_trusted());
}

#[test]
fn item5_unknown_peer_gets_tagged_bubbles() {
    // teredo-spec §8.3 item 5 (RFC 4380 §5.4.1 case 3).
    let mut r = relay(Config::new());
    assert_eq!(
        native_in(&mut r, at(0), &ipv6(NATIVE, client(), b"x")),
        None
    );
    let sent = drain(&mut r, at(0));
    // Cone relay: the indirect bubble only.
    let [(Destination::Udp(to), b)] = &sent[..] else {
        panic!("{sent:?}");
    };
    assert_eq!(*to, SERVER_EP);
    assert!(bubble::is_bubble(b));
    let (src, dst, hop) = header(b);
    assert_eq!((dst, hop), (client(), 0));
    assert_eq!(src.segments()[..4], [0xfe80, 0, 0, 0], "link-local tag");
    assert_eq!(src.octets()[8] & 3, 0, "U/G bits clear");
    let entry = r.peers().get(&client()).unwrap();
    assert!(!entry.is_trusted());
    assert_eq!(entry.mapping(), MAPPING);
    // Restricted relay: direct bubble to the mapping, then the indirect one,
    // both from the same tag.
    let mut config = Config::new();
    config.kind = RelayKind::Restricted;
    let mut r = relay(config);
    let _ = native_in(&mut r, at(0), &ipv6(NATIVE, client(), b"x"));
    let sent = drain(&mut r, at(0));
    let dests: Vec<Destination> = sent.iter().map(|s| s.0).collect();
    assert_eq!(
        dests,
        [Destination::Udp(MAPPING), Destination::Udp(SERVER_EP)]
    );
    assert_eq!(sent[0].1, sent[1].1);
    // Another mapping, another tag.
    let other = client_addr(0, SocketAddrV4::new(*MAPPING.ip(), 40001));
    assert_ne!(tag_of(&mut r, other), header(&sent[0].1).0);
}

#[test]
fn item6_bubbles_retry_every_2s_then_unreachable_and_entry_deleted() {
    // teredo-spec §8.3 item 6 (RFC 4380 §5.4.1: 2 s, up to 3 retries).
    let mut r = relay(Config::new());
    let packet = ipv6(NATIVE, client(), b"never answered");
    assert_eq!(native_in(&mut r, at(0), &packet), None);
    let sent = run(&mut r, 0, 9000);
    let bubbles: Vec<Instant> = sent
        .iter()
        .filter(|s| s.1 == Destination::Udp(SERVER_EP))
        .map(|s| s.0)
        .collect();
    assert_eq!(bubbles, [at(0), at(2000), at(4000), at(6000)]);
    let errors: Vec<&(Instant, Destination, Vec<u8>)> =
        sent.iter().filter(|s| s.1 == Destination::Tunnel).collect();
    let [(t, _, err)] = &errors[..] else {
        panic!("{errors:?}");
    };
    assert_eq!(*t, at(8000));
    let err = DstUnreachable::parse(err).unwrap();
    assert_eq!(u8::from(err.reason), 3);
    assert_eq!(
        (err.src, err.dst, err.quoted),
        (Config::new().icmp_source, NATIVE, &packet[..])
    );
    assert!(r.peers().is_empty(), "entry deleted with its queue");
    assert_eq!(r.stats().drops(Drop::GaveUp), 1);
    assert_eq!(r.stats().bubbles_sent, 4);
}

#[test]
fn item7_queue_is_bounded_and_flushed_in_order() {
    // teredo-spec §8.3 item 7 (RFC 4380 §5.4.1 SHOULD bound, SHOULD flush).
    let mut r = relay(Config::new());
    let packets: Vec<Vec<u8>> = (0..3u8)
        .map(|n| ipv6(NATIVE, client(), &[n; 560]))
        .collect();
    for p in &packets {
        assert_eq!(native_in(&mut r, at(0), p), None);
    }
    // 2 × 600 bytes fit the 1280-byte bound; the third does not.
    assert_eq!(r.stats().queued, 2);
    assert_eq!(r.stats().drops(Drop::QueueFull), 1);
    let tag = header(&drain(&mut r, at(0))[0].1).0;
    assert_eq!(
        udp_in(&mut r, at(30), MAPPING, &bubble_from(client(), tag)),
        None
    );
    let sent = drain(&mut r, at(30));
    let expected: Vec<(Destination, Vec<u8>)> = packets[..2]
        .iter()
        .map(|p| (Destination::Udp(MAPPING), p.clone()))
        .collect();
    assert_eq!(sent, expected);
    assert_eq!(r.stats().flushed, 2);
    assert_eq!(r.stats().bubbles_received, 1);
}

#[test]
fn item8_invalid_payloads_are_dropped() {
    // teredo-spec §8.3 item 8 (RFC 4380 §5.4.2).
    let (mut r, _) = trusted();
    let mut truncated = ipv6(client(), NATIVE, b"data");
    truncated.truncate(42);
    for junk in [&b"hello"[..], &[0x45; 60], &truncated] {
        assert_eq!(udp_in(&mut r, at(100), MAPPING, junk), None);
    }
    assert_eq!(r.stats().drops(Drop::Malformed), 3);
    assert_eq!(r.stats().to_tunnel.packets, 0);
}

#[test]
fn item9_forged_sources_are_dropped() {
    // teredo-spec §8.3 item 9 (RFC 4380 §5.4.2), against a trusted entry.
    let (mut r, _) = trusted();
    let elsewhere = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 66), 40000);
    // A native source over UDP.
    assert_eq!(
        udp_in(&mut r, at(100), MAPPING, &ipv6(NATIVE, NATIVE, b"x")),
        None
    );
    assert_eq!(r.stats().drops(Drop::NonTeredoSource), 1);
    // The trusted client's address from another endpoint.
    assert_eq!(
        udp_in(&mut r, at(100), elsewhere, &ipv6(client(), NATIVE, b"x")),
        None
    );
    // A bubble from another endpoint addressed to a wrong tag.
    let fake_tag = Ipv6Addr::new(0xfe80, 0, 0, 0, 1, 2, 3, 4);
    assert_eq!(
        udp_in(&mut r, at(100), elsewhere, &bubble_from(client(), fake_tag)),
        None
    );
    assert_eq!(r.stats().drops(Drop::SpoofedSource), 2);
    assert_eq!(
        r.peers().get(&client()).unwrap().mapping(),
        MAPPING,
        "not moved"
    );
    assert_eq!(r.stats().to_tunnel.packets, 0);
}

#[test]
fn item10_unknown_clients_follow_the_configured_policy() {
    // teredo-spec §8.3 item 10: both policies (RFC 4380 §5.4.2 "may drop").
    let data = ipv6(client(), NATIVE, b"first contact");
    let mut strict = relay(Config::new());
    assert_eq!(udp_in(&mut strict, at(0), MAPPING, &data), None);
    assert_eq!(strict.stats().drops(Drop::UnknownPeer), 1);
    assert!(strict.peers().is_empty());
    let mut config = Config::new();
    config.accept_first_contact = true;
    let mut open = relay(config);
    assert_eq!(
        udp_in(&mut open, at(0), MAPPING, &data),
        Some((None, data.clone()))
    );
    let entry = open.peers().get(&client()).unwrap();
    assert!(entry.is_trusted() && entry.mapping() == MAPPING);
    // Replies go straight back.
    let reply = ipv6(NATIVE, client(), b"reply");
    assert_eq!(
        native_in(&mut open, at(10), &reply),
        Some((Some(MAPPING), reply.clone()))
    );
    // Even the open policy wants the mapping proven.
    let elsewhere = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 66), 1);
    let other = client_addr(0, SocketAddrV4::new(*MAPPING.ip(), 2));
    assert_eq!(
        udp_in(&mut open, at(20), elsewhere, &ipv6(other, NATIVE, b"x")),
        None
    );
    assert_eq!(open.stats().drops(Drop::SpoofedSource), 1);
}

#[test]
fn item11_known_peer_becomes_trusted_and_fresh() {
    // teredo-spec §8.3 item 11 (RFC 4380 §5.4.2).
    let (mut r, _) = trusted();
    assert_eq!(r.peers().get(&client()).unwrap().last_rx(), at(50));
    let data = ipv6(client(), NATIVE, b"up");
    assert_eq!(
        udp_in(&mut r, at(20_000), MAPPING, &data),
        Some((None, data.clone()))
    );
    let entry = r.peers().get(&client()).unwrap();
    assert_eq!(entry.last_rx(), at(20_000));
    assert!(
        entry.may_send_direct(at(45_000)),
        "valid 30 s from the last packet"
    );
    assert_eq!(r.stats().peers_trusted, 1, "already trusted there");
    assert_eq!(
        r.stats().to_tunnel,
        super::Traffic {
            packets: 1,
            bytes: 42
        }
    );
}

#[test]
fn item12_destinations_outside_native_ipv6_are_dropped() {
    // teredo-spec §8.3 item 12 (RFC 4380 §5.4.2 SHOULD drop); no hairpin.
    let (mut r, _) = trusted();
    let other_client = client_addr(0, SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 99), 1));
    assert_eq!(
        udp_in(
            &mut r,
            at(100),
            MAPPING,
            &ipv6(client(), other_client, b"x")
        ),
        None
    );
    assert_eq!(r.stats().drops(Drop::TeredoDestination), 1);
    for dst in [
        Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 1),
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
    ] {
        assert_eq!(
            udp_in(&mut r, at(100), MAPPING, &ipv6(client(), dst, b"x")),
            None
        );
    }
    assert_eq!(r.stats().drops(Drop::InvalidDestination), 4);
}

#[test]
fn item14_flood_of_new_peers_does_not_disturb_an_established_flow() {
    // teredo-spec §8.3 item 14 (RFC 4380 §7.3.5; S8, S9).
    let (mut r, _) = trusted();
    let mut out = [0u8; MIN_OUTPUT_BUFFER];
    let mut delivered = 0;
    for i in 0..5000u32 {
        let now = at(100 + u64::from(i));
        // Random-looking Teredo destinations behind many servers.
        let server = Ipv4Addr::new(198, 51, 100, (i % 200) as u8 + 2);
        let mapped = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), i as u16);
        let victim = TeredoAddr::new(DEFAULT_PREFIX, server, 0, mapped).to_ipv6();
        let _ = r.handle_ipv6(now, &ipv6(NATIVE, victim, b"flood"), &mut out);
        while r.poll_transmit(now, &mut out).is_some() {}
        if i % 100 == 0 {
            // The established client keeps talking both ways.
            let up = ipv6(client(), NATIVE, b"up");
            assert_eq!(udp_in(&mut r, now, MAPPING, &up), Some((None, up.clone())));
            let down = ipv6(NATIVE, client(), b"down");
            if native_in(&mut r, now, &down) == Some((Some(MAPPING), down.clone())) {
                delivered += 1;
            }
        }
    }
    assert_eq!(
        delivered, 50,
        "every packet of the flow went straight through"
    );
    assert!(r.peers().get(&client()).unwrap().is_trusted());
    assert!(
        r.stats().drops(Drop::NewPeerLimited) > 0,
        "the flood was limited"
    );
    assert!(r.peers().len() <= 64);
}

#[test]
fn new_peers_behind_one_server_are_limited() {
    // Flood control: a bubble cannon against one IPv4 address is capped by
    // that server's bucket, other servers are unaffected.
    let mut config = Config::new();
    config.server_burst = 3;
    config.server_rate = 0;
    let mut r = relay(config);
    for port in 0..5u16 {
        let dst = client_addr(0, SocketAddrV4::new(*MAPPING.ip(), 1000 + port));
        let _ = native_in(&mut r, at(0), &ipv6(NATIVE, dst, b"x"));
    }
    assert_eq!(r.peers().len(), 3);
    assert_eq!(r.stats().drops(Drop::NewPeerLimited), 2);
    // An existing entry still queues.
    let first = client_addr(0, SocketAddrV4::new(*MAPPING.ip(), 1000));
    let _ = native_in(&mut r, at(0), &ipv6(NATIVE, first, b"y"));
    assert_eq!(r.stats().queued, 4);
}

#[test]
fn symmetric_nat_client_is_accepted_through_the_tag() {
    // miredo.md §3.9: the client's NAT gives its answer another source.
    let mut r = relay(Config::new());
    let first = ipv6(NATIVE, client(), b"first");
    let _ = native_in(&mut r, at(0), &first);
    let tag = header(&drain(&mut r, at(0))[0].1).0;
    let actual = SocketAddrV4::new(*MAPPING.ip(), 51234);
    assert_eq!(
        udp_in(&mut r, at(40), actual, &bubble_from(client(), tag)),
        None
    );
    assert_eq!(drain(&mut r, at(40)), [(Destination::Udp(actual), first)]);
    let entry = r.peers().get(&client()).unwrap();
    assert!(entry.is_trusted() && entry.mapping() == actual);
    // Its data now comes from `actual`, which its address does not embed.
    let up = ipv6(client(), NATIVE, b"up");
    assert_eq!(
        udp_in(&mut r, at(60), actual, &up),
        Some((None, up.clone()))
    );
    let down = ipv6(NATIVE, client(), b"down");
    assert_eq!(
        native_in(&mut r, at(70), &down),
        Some((Some(actual), down.clone()))
    );
}

#[test]
fn tunnel_side_checks() {
    let mut r = relay(Config::new());
    // Not Teredo: ICMPv6 code 3, as Miredo's relay.
    let native = ipv6(NATIVE, Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2), b"x");
    let Some((None, err)) = native_in(&mut r, at(0), &native) else {
        panic!("no error");
    };
    let err = DstUnreachable::parse(&err).unwrap();
    assert_eq!((u8::from(err.reason), err.quoted), (3, &native[..]));
    assert_eq!(r.stats().drops(Drop::NotTeredoDestination), 1);
    // Multicast: silent.
    let mcast = ipv6(NATIVE, Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 1), b"x");
    assert_eq!(native_in(&mut r, at(0), &mcast), None);
    assert_eq!(native_in(&mut r, at(0), b"garbage"), None);
    assert_eq!(r.stats().drops(Drop::Multicast), 1);
    assert_eq!(r.stats().drops(Drop::InvalidIpv6), 1);
    assert_eq!(r.stats().from_tunnel.packets, 3);
    // Errors are rate-limited: 10 at once, then none.
    let mut sent = 0;
    for _ in 0..20 {
        sent += usize::from(native_in(&mut r, at(0), &native).is_some());
    }
    assert_eq!(sent, 9);
    assert!(r.stats().icmp_errors_limited > 0);
}

#[test]
fn silent_trusted_peer_is_bubbled_again() {
    let (mut r, _) = trusted();
    // 30 s after the last packet from it, the entry is no longer valid.
    let late = ipv6(NATIVE, client(), b"late");
    assert_eq!(native_in(&mut r, at(40_000), &late), None);
    let sent = drain(&mut r, at(40_000));
    assert_eq!(sent.len(), 1);
    assert!(bubble::is_bubble(&sent[0].1));
    let data = ipv6(client(), NATIVE, b"back");
    assert_eq!(
        udp_in(&mut r, at(40_100), MAPPING, &data),
        Some((None, data.clone()))
    );
    assert_eq!(
        drain(&mut r, at(40_100)),
        [(Destination::Udp(MAPPING), late)]
    );
}

#[test]
fn stats_display_names_drops() {
    let mut r = relay(Config::new());
    let _ = udp_in(&mut r, at(0), MAPPING, b"junk");
    let line = std::format!("{}", r.stats());
    assert!(line.starts_with("from_tunnel 0 pkts/0 B, "), "{line}");
    assert!(line.ends_with(", drop malformed=1"), "{line}");
}

#[test]
fn drop_names_are_unique() {
    let names: std::collections::BTreeSet<&str> = Drop::ALL.iter().map(|d| d.name()).collect();
    assert_eq!(names.len(), Drop::ALL.len());
    assert!(Drop::ALL.iter().enumerate().all(|(i, d)| d.index() == i));
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_input_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            ip in any::<u32>(),
            port in any::<u16>(),
        ) {
            let mut r = relay(Config::new());
            let from = SocketAddrV4::new(Ipv4Addr::from(ip), port);
            let _ = udp_in(&mut r, at(0), from, &data);
            let _ = native_in(&mut r, at(0), &data);
            let _ = drain(&mut r, at(0));
        }
    }
}
