//! Unit tests of the data path: one per RFC checklist item of
//! teredo-spec §8.1 (items 22–37), plus forged packets.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::boxed::Box;
use std::vec::Vec;

use smoltcp::wire::{IpProtocol, Ipv6Packet, Ipv6Repr};

use super::{Client, Config, DataDrop, Destination, Output, MIN_OUTPUT_BUFFER};
use crate::addr::{TeredoAddr, DEFAULT_PREFIX, FLAG_CONE, TEREDO_PORT};
use crate::nonce::SplitMix64;
use crate::server::{self, Action, Local, Server};
use crate::time::{Duration, Instant};
use crate::wire::bubble;
use crate::wire::echo::{EchoKind, EchoRepr};
use crate::wire::encap;
use crate::wire::icmp_error::DstUnreachable;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const SERVER_EP: SocketAddrV4 = SocketAddrV4::new(SERVER, TEREDO_PORT);
const MAPPING: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 7), 40000);
const PEER_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);
const PEER_MAPPING: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 45), 50000);
const NATIVE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const RELAY: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 99), TEREDO_PORT);
/// Qualification completes at this instant.
const T0: Instant = Instant::from_secs(100);

type TestClient = Box<Client<SplitMix64>>;

fn at(ms: u64) -> Instant {
    T0 + Duration::from_millis(ms)
}

fn peer_addr(flags: u16, mapping: SocketAddrV4) -> Ipv6Addr {
    TeredoAddr::new(DEFAULT_PREFIX, PEER_SERVER, flags, mapping).to_ipv6()
}

fn peer() -> Ipv6Addr {
    peer_addr(0, PEER_MAPPING)
}

/// A client qualified at [`T0`] by a real server, with our address.
fn qualified() -> (TestClient, Ipv6Addr) {
    let mut config = Config::new(SERVER);
    config.server_secondary = None;
    let mut client = Box::new(Client::new(config, SplitMix64::new(11), T0));
    let mut srv = Server::new(server::Config::new(SERVER), T0);
    let mut out = std::vec![0u8; MIN_OUTPUT_BUFFER];
    let tx = client.poll_transmit(T0, &mut out).unwrap();
    let mut reply = std::vec![0u8; 1500];
    let Action::SendUdp { data, .. } =
        srv.handle_udp(T0, Local::Primary, MAPPING, &out[..tx.len], &mut reply)
    else {
        panic!("no RA");
    };
    let ra = data.to_vec();
    assert_eq!(
        client.handle_udp(T0, SERVER_EP, &ra, &mut out),
        Output::None
    );
    let ours = client.qualification().unwrap().address.to_ipv6();
    while client.poll_event().is_some() {}
    (client, ours)
}

/// An IPv6 packet (UDP next header, payload bytes not checked).
fn packet(src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut buf = std::vec![0u8; 40 + payload.len()];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
    buf[40..].copy_from_slice(payload);
    buf
}

fn bubble_from(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut buf = std::vec![0u8; 40];
    bubble::emit(src, dst, 0, &mut buf).unwrap();
    buf
}

/// Everything `poll_transmit` has at `now`.
fn drain(client: &mut TestClient, now: Instant) -> Vec<(Destination, Vec<u8>)> {
    let mut out = std::vec![0u8; MIN_OUTPUT_BUFFER];
    let mut all = Vec::new();
    while let Some(tx) = client.poll_transmit(now, &mut out) {
        all.push((tx.dest, out[..tx.len].to_vec()));
        assert!(all.len() < 100);
    }
    all
}

/// Whether anything `poll_transmit` has at `now` goes to the tunnel.
fn to_tunnel(client: &mut TestClient, now: Instant) -> bool {
    drain(client, now)
        .iter()
        .any(|(dest, _)| *dest == Destination::Tunnel)
}

fn send(
    client: &mut TestClient,
    now: Instant,
    packet: &[u8],
) -> Option<(Option<SocketAddrV4>, Vec<u8>)> {
    let mut out = std::vec![0u8; MIN_OUTPUT_BUFFER];
    match client.handle_ipv6(now, packet, &mut out) {
        Output::None => None,
        Output::Udp { to, data } => Some((Some(to), data.to_vec())),
        Output::Tunnel(data) => Some((None, data.to_vec())),
    }
}

fn receive(
    client: &mut TestClient,
    now: Instant,
    from: SocketAddrV4,
    datagram: &[u8],
) -> Option<(Option<SocketAddrV4>, Vec<u8>)> {
    let mut out = std::vec![0u8; MIN_OUTPUT_BUFFER];
    match client.handle_udp(now, from, datagram, &mut out) {
        Output::None => None,
        Output::Udp { to, data } => Some((Some(to), data.to_vec())),
        Output::Tunnel(data) => Some((None, data.to_vec())),
    }
}

/// The client trusts the Teredo peer at its own mapping (rule 3).
fn trust_peer(client: &mut TestClient, ours: Ipv6Addr, now: Instant) {
    let hello = packet(peer(), ours, b"hello");
    assert_eq!(
        receive(client, now, PEER_MAPPING, &hello),
        Some((None, hello.clone()))
    );
}

/// The reply a native host (through `RELAY`) sends to an echo request.
fn echo_reply(request: &[u8]) -> Vec<u8> {
    let req = EchoRepr::parse(request).unwrap();
    assert_eq!(req.kind, EchoKind::Request);
    let reply = req.reply_to(64).unwrap();
    let mut buf = std::vec![0u8; reply.buffer_len()];
    reply.emit(&mut buf).unwrap();
    buf
}

fn assert_unreachable(ipv6: &[u8], code: u8, quoted: &[u8]) {
    let err = DstUnreachable::parse(ipv6).unwrap();
    assert_eq!(u8::from(err.reason), code);
    assert_eq!(err.quoted, quoted);
}

/// teredo-spec §8.1 item 22: a trusted, valid peer gets the packet at its
/// stored mapping, zero-copy, and last-tx is updated.
#[test]
fn item22_trusted_peer_direct() {
    let (mut client, ours) = qualified();
    trust_peer(&mut client, ours, at(0));
    let data = packet(ours, peer(), b"data");
    let mut out = std::vec![0u8; MIN_OUTPUT_BUFFER];
    let Output::Udp { to, data: sent } = client.handle_ipv6(at(500), &data, &mut out) else {
        panic!("not sent");
    };
    assert_eq!(to, PEER_MAPPING);
    assert!(core::ptr::eq(sent, &data[..]), "borrows the input");
    assert_eq!(client.peers().get(&peer()).unwrap().last_tx(), at(500));
    assert_eq!(client.stats().sent_direct, 1);
}

/// Item 23: a native destination is queued and tested with an echo request
/// (≥ 64-bit nonce) via our own server, retried every 2 s, 4 tries; then the
/// queue is answered with ICMPv6 unreachable code 3.
#[test]
fn item23_native_destination_echo_test() {
    let (mut client, ours) = qualified();
    let data = packet(ours, NATIVE, b"to native");
    assert_eq!(send(&mut client, at(0), &data), None);
    for (n, t) in [0u64, 2000, 4000, 6000].into_iter().enumerate() {
        assert_eq!(
            drain(&mut client, at(t).saturating_sub(Duration::from_millis(1))),
            []
        );
        let sent = drain(&mut client, at(t));
        assert_eq!(sent.len(), 1, "try {n}");
        assert_eq!(sent[0].0, Destination::Udp(SERVER_EP));
        let echo = EchoRepr::parse(&sent[0].1).unwrap();
        assert_eq!(
            (echo.src, echo.dst, echo.kind),
            (ours, NATIVE, EchoKind::Request)
        );
        assert!(echo.data.len() >= 8);
        assert!(sent[0].1.len() - 40 <= 88, "a Miredo server forwards it");
    }
    assert_eq!(drain(&mut client, at(7999)), []);
    let gave_up = drain(&mut client, at(8000));
    assert_eq!(gave_up.len(), 1);
    assert_eq!(gave_up[0].0, Destination::Tunnel);
    assert_unreachable(&gave_up[0].1, 3, &data);
    assert_eq!(client.stats().data_drops(DataDrop::GaveUp), 1);
    // Budget spent: new packets are refused at once.
    let (to, err) = send(&mut client, at(9000), &data).unwrap();
    assert_eq!(to, None);
    assert_unreachable(&err, 3, &data);
}

/// Item 24: an echo reply carrying our nonce, from any IPv4/port, makes the
/// peer trusted there and flushes the queue in order.
#[test]
fn item24_echo_reply_trusts_relay_and_flushes() {
    let (mut client, ours) = qualified();
    let first = packet(ours, NATIVE, b"first");
    let second = packet(ours, NATIVE, b"second");
    send(&mut client, at(0), &first);
    send(&mut client, at(1), &second);
    let request = drain(&mut client, at(1)).remove(0).1;
    assert_eq!(
        receive(&mut client, at(50), RELAY, &echo_reply(&request)),
        None
    );
    let flushed = drain(&mut client, at(50));
    assert_eq!(
        flushed,
        [
            (Destination::Udp(RELAY), first),
            (Destination::Udp(RELAY), second)
        ]
    );
    let entry = client.peers().get(&NATIVE).unwrap();
    assert!(entry.is_trusted());
    assert_eq!(entry.mapping(), RELAY);
    // From now on, packets from the native host through that relay arrive.
    let back = packet(NATIVE, ours, b"back");
    assert_eq!(
        receive(&mut client, at(60), RELAY, &back),
        Some((None, back))
    );
}

/// Item 25 (and a forged packet): an echo reply with a wrong nonce creates
/// no trust and releases nothing.
#[test]
fn item25_wrong_nonce_not_trusted() {
    let (mut client, ours) = qualified();
    send(&mut client, at(0), &packet(ours, NATIVE, b"x"));
    let request = drain(&mut client, at(0)).remove(0).1;
    let mut reply = echo_reply(&request);
    let n = reply.len();
    reply[n - 1] ^= 1;
    // Keep the checksum valid so only the nonce is wrong.
    reply[42..44].fill(0);
    smoltcp::wire::Icmpv6Packet::new_unchecked(&mut reply[40..]).fill_checksum(&NATIVE, &ours);
    assert_eq!(receive(&mut client, at(50), RELAY, &reply), None);
    assert_eq!(client.stats().data_drops(DataDrop::BadEchoNonce), 1);
    assert!(!client.peers().get(&NATIVE).unwrap().is_trusted());
    assert_eq!(drain(&mut client, at(50)), []);
}

/// Items 26 and 31: a Teredo destination (cone bit 0) is queued; a direct
/// bubble goes to its mapping and an indirect one to its server:3544; the
/// new entry was back-dated 30 s with no bubble.
#[test]
fn item26_item31_teredo_destination_bubbles() {
    let (mut client, ours) = qualified();
    send(&mut client, at(0), &packet(ours, peer(), b"x"));
    let entry = client.peers().get(&peer()).unwrap();
    let back = at(0).saturating_sub(Duration::from_secs(30));
    assert_eq!(
        (entry.last_rx(), entry.last_tx(), entry.bubbles_sent()),
        (back, back, 0)
    );
    assert!(!entry.is_trusted());
    let bubble = bubble_from(ours, peer());
    assert_eq!(
        drain(&mut client, at(0)),
        [
            (Destination::Udp(PEER_MAPPING), bubble.clone()),
            (
                Destination::Udp(SocketAddrV4::new(PEER_SERVER, TEREDO_PORT)),
                bubble
            ),
        ]
    );
    assert_eq!(client.peers().get(&peer()).unwrap().bubbles_sent(), 1);
}

/// Item 27: a cone-flagged destination still gets the bubble path
/// (RFC 5991 §3.2: ignore the cone bit).
#[test]
fn item27_cone_bit_ignored() {
    let (mut client, ours) = qualified();
    let cone = peer_addr(FLAG_CONE, PEER_MAPPING);
    assert_eq!(send(&mut client, at(0), &packet(ours, cone, b"x")), None);
    let sent = drain(&mut client, at(0));
    assert_eq!(sent.len(), 2);
    assert!(bubble::is_bubble(&sent[0].1));
}

/// Item 28: a Teredo destination embedding a non-global IPv4 (mapping or
/// server) is dropped silently, for every range of teredo-spec §1.5.
#[test]
fn item28_non_global_dropped_silently() {
    let (mut client, ours) = qualified();
    let bad = [
        "0.1.2.3",
        "10.1.2.3",
        "127.0.0.1",
        "169.254.1.1",
        "172.16.0.1",
        "192.168.1.1",
        "192.88.99.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
    ];
    for (i, ip) in bad.iter().enumerate() {
        let ip: Ipv4Addr = ip.parse().unwrap();
        let dst = peer_addr(0, SocketAddrV4::new(ip, 1000));
        assert_eq!(
            send(&mut client, at(0), &packet(ours, dst, b"x")),
            None,
            "{ip}"
        );
        let via_bad_server = TeredoAddr::new(DEFAULT_PREFIX, ip, 0, PEER_MAPPING).to_ipv6();
        assert_eq!(
            send(&mut client, at(0), &packet(ours, via_bad_server, b"x")),
            None
        );
        assert_eq!(
            client.stats().data_drops(DataDrop::NonGlobalDestination),
            2 * (i as u64 + 1)
        );
    }
    assert_eq!(drain(&mut client, at(0)), []);
    assert!(client.peers().is_empty());
}

/// Items 29 and 30: bubbles at least 2 s apart, at most 4 per 300 s without
/// a reply; then the queue gets ICMPv6 errors, and so do new packets until
/// the window allows a new round.
#[test]
fn item29_item30_bubble_spacing_and_budget() {
    let (mut client, ours) = qualified();
    let data = packet(ours, peer(), b"x");
    send(&mut client, at(0), &data);
    for t in [0u64, 2000, 4000, 6000] {
        assert_eq!(
            drain(&mut client, at(t).saturating_sub(Duration::from_millis(1))),
            []
        );
        // A new packet does not hurry the next bubble.
        send(
            &mut client,
            at(t).saturating_sub(Duration::from_millis(1)),
            &data,
        );
        assert_eq!(drain(&mut client, at(t)).len(), 2, "pair at {t}");
    }
    let errors = drain(&mut client, at(8000));
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|(d, _)| *d == Destination::Tunnel));
    assert_eq!(client.peers().get(&peer()).unwrap().bubbles_sent(), 4);
    let (to, err) = send(&mut client, at(100_000), &data).unwrap();
    assert_eq!(to, None);
    assert_unreachable(&err, 3, &data);
    assert_eq!(drain(&mut client, at(100_000)), []);
    // 300 s after the last bubble, a new round may start (the idle entry is
    // long gone from the table anyway, which also allows it).
    assert_eq!(send(&mut client, at(306_000), &data), None);
    assert_eq!(drain(&mut client, at(306_000)).len(), 2);
}

/// Item 32: a packet from a Teredo source whose embedded mapping equals the
/// UDP source creates a trusted entry and flushes what was queued for it.
#[test]
fn item32_matching_teredo_source_trusted_and_flushed() {
    let (mut client, ours) = qualified();
    let queued = packet(ours, peer(), b"queued");
    send(&mut client, at(0), &queued);
    drain(&mut client, at(0));
    trust_peer(&mut client, ours, at(30));
    assert!(client.peers().get(&peer()).unwrap().is_trusted());
    assert_eq!(
        drain(&mut client, at(30)),
        [(Destination::Udp(PEER_MAPPING), queued)]
    );
    // A brand-new entry made by rule 3 is back-dated for transmission.
    let other_map = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 46), 1);
    let other = peer_addr(0, other_map);
    receive(&mut client, at(40), other_map, &packet(other, ours, b"hi"));
    let entry = client.peers().get(&other).unwrap();
    assert!(entry.is_trusted());
    assert_eq!(
        (entry.last_rx(), entry.last_tx()),
        (at(40), at(40).saturating_sub(Duration::from_secs(30)))
    );
    assert_eq!(client.stats().peers_trusted, 2);
}

/// Item 33: a bubble is consumed, never delivered; it still trusts its
/// sender (rule 3).
#[test]
fn item33_bubble_consumed() {
    let (mut client, ours) = qualified();
    assert_eq!(
        receive(&mut client, at(0), PEER_MAPPING, &bubble_from(peer(), ours)),
        None
    );
    assert_eq!(client.stats().bubbles_received, 1);
    assert_eq!(client.stats().delivered, 0);
    assert!(client.peers().get(&peer()).unwrap().is_trusted());
}

/// Item 34: UDP payloads that are not (origin/auth-prefixed) IPv6 are
/// dropped.
#[test]
fn item34_non_teredo_payloads_dropped() {
    let (mut client, ours) = qualified();
    let mut v4 = packet(peer(), ours, b"x");
    v4[0] = 0x45;
    for bad in [
        &[][..],
        &[0x00, 0x02, 0, 0][..],
        &[0x00, 0x00, 1, 2][..],
        &v4[..],
    ] {
        assert_eq!(receive(&mut client, at(0), PEER_MAPPING, bad), None);
    }
    assert_eq!(client.stats().data_drops(DataDrop::Malformed), 4);
}

/// Item 35: an IPv6 packet longer than the datagram is dropped; extra bytes
/// after it (RFC 6081 trailers) are accepted and not delivered.
#[test]
fn item35_length_consistency() {
    let (mut client, ours) = qualified();
    let full = packet(peer(), ours, b"payload");
    assert_eq!(
        receive(&mut client, at(0), PEER_MAPPING, &full[..full.len() - 1]),
        None
    );
    assert_eq!(client.stats().data_drops(DataDrop::Malformed), 1);
    let mut trailed = full.clone();
    trailed.extend_from_slice(&[0x01, 0x04, 1, 2, 3, 4]);
    assert_eq!(
        receive(&mut client, at(0), PEER_MAPPING, &trailed),
        Some((None, full))
    );
}

/// Item 36: an origin-indicated bubble from our server draws a direct
/// bubble to the origin, from our address to the bubble's source (a relay's
/// link-local tag here), and is not delivered.
#[test]
fn item36_origin_bubble_answered() {
    let (mut client, ours) = qualified();
    let tag: Ipv6Addr = "fe80::8000:1234:5678:9abc".parse().unwrap();
    let inner = bubble_from(tag, ours);
    let repr = encap::Repr {
        auth: None,
        origin: Some(RELAY),
        ipv6: &inner,
        trailers: &[],
    };
    let mut datagram = std::vec![0u8; repr.buffer_len()];
    repr.emit(&mut datagram).unwrap();
    assert_eq!(
        receive(&mut client, at(0), SERVER_EP, &datagram),
        Some((Some(RELAY), bubble_from(ours, tag)))
    );
    // The same from anyone else is a link-local source: dropped.
    assert_eq!(receive(&mut client, at(0), RELAY, &datagram), None);
    assert_eq!(client.stats().data_drops(DataDrop::LinkLocalSource), 1);
}

/// Item 37: a trusted peer is used for sending only until 30 s after its
/// last reception; then the bubble path runs again.
#[test]
fn item37_validity_30s() {
    let (mut client, ours) = qualified();
    trust_peer(&mut client, ours, at(0));
    let data = packet(ours, peer(), b"x");
    assert!(matches!(
        send(&mut client, at(29_999), &data),
        Some((Some(PEER_MAPPING), _))
    ));
    assert_eq!(send(&mut client, at(30_000), &data), None);
    assert_eq!(drain(&mut client, at(32_000)).len(), 2, "bubbles again");
    // Any packet from the peer revalidates it and releases the queue.
    trust_peer(&mut client, ours, at(32_010));
    assert_eq!(
        drain(&mut client, at(32_010)),
        [(Destination::Udp(PEER_MAPPING), data)]
    );
}

/// Forged: a Teredo source arriving from another UDP source is not
/// delivered and creates no trust.
#[test]
fn forged_teredo_source_from_wrong_endpoint() {
    let (mut client, ours) = qualified();
    let forged = packet(peer(), ours, b"evil");
    assert_eq!(receive(&mut client, at(0), RELAY, &forged), None);
    assert_eq!(client.stats().data_drops(DataDrop::SpoofedTeredoSource), 1);
    assert!(client.peers().get(&peer()).is_none());
    // Nor does it hijack a trusted peer.
    trust_peer(&mut client, ours, at(1));
    assert_eq!(receive(&mut client, at(2), RELAY, &forged), None);
    assert_eq!(client.peers().get(&peer()).unwrap().mapping(), PEER_MAPPING);
}

/// Forged: an unsolicited packet from a native source is not delivered at
/// once; it is held and starts an echo test through our server (rule 6),
/// bounded per peer. Unanswered, the held packet is dropped silently.
#[test]
fn unsolicited_native_source_not_delivered() {
    let (mut client, ours) = qualified();
    let unsolicited = packet(NATIVE, ours, b"hi");
    let (to, request) = receive(&mut client, at(0), RELAY, &unsolicited).unwrap();
    assert_eq!(to, Some(SERVER_EP));
    let echo = EchoRepr::parse(&request).unwrap();
    assert_eq!((echo.src, echo.dst), (ours, NATIVE));
    assert_eq!(client.stats().data_drops(DataDrop::Unverified), 0, "held");
    // Retries on the timer, 4 tries in all, whatever arrives meanwhile.
    assert_eq!(receive(&mut client, at(10), RELAY, &unsolicited), None);
    for t in [2000u64, 4000, 6000] {
        assert_eq!(drain(&mut client, at(t)).len(), 1);
    }
    // The test failed: both held packets go, without any ICMPv6 error.
    client.handle_timeout(at(20_000));
    assert_eq!(drain(&mut client, at(20_000)), []);
    assert_eq!(client.stats().data_drops(DataDrop::Unverified), 2);
    assert_eq!(client.stats().icmp_errors_sent, 0);
    // Once the test failed, new packets are not held.
    assert_eq!(receive(&mut client, at(20_010), RELAY, &unsolicited), None);
    assert_eq!(client.stats().data_drops(DataDrop::Unverified), 3);
    // A later verified relay lets packets in.
    let (mut client, ours) = qualified();
    let (_, request) = receive(&mut client, at(0), RELAY, &unsolicited).unwrap();
    receive(&mut client, at(30), RELAY, &echo_reply(&request));
    let unsolicited = packet(NATIVE, ours, b"hi");
    drain(&mut client, at(30));
    assert_eq!(
        receive(&mut client, at(40), RELAY, &unsolicited),
        Some((None, unsolicited))
    );
}

/// Rule 6: packets held during the echo test go to the tunnel, in arrival
/// order, once the reply verifies the relay they came through; a packet
/// held from another relay is dropped (miredo.md §3.7 item 8).
#[test]
fn rule6_held_packets_delivered_after_echo_reply() {
    let (mut client, ours) = qualified();
    let other_relay = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 98), TEREDO_PORT);
    let first = packet(NATIVE, ours, b"first");
    let (_, request) = receive(&mut client, at(0), RELAY, &first).unwrap();
    let spoofed = packet(NATIVE, ours, b"spoofed");
    assert_eq!(receive(&mut client, at(5), other_relay, &spoofed), None);
    let second = packet(NATIVE, ours, b"second");
    assert_eq!(receive(&mut client, at(10), RELAY, &second), None);
    assert!(!to_tunnel(&mut client, at(20)), "held, not delivered");
    // Our own outgoing packet for the peer waits in its queue meanwhile.
    let out = packet(ours, NATIVE, b"out");
    assert_eq!(send(&mut client, at(25), &out), None);
    assert_eq!(client.stats().queued, 1);
    // The reply verifies RELAY: held packets to the tunnel, the outgoing
    // one to the relay.
    assert_eq!(
        receive(&mut client, at(50), RELAY, &echo_reply(&request)),
        None
    );
    assert!(client.poll_timeout().is_some_and(|t| t <= at(50)));
    let got = drain(&mut client, at(50));
    assert_eq!(
        got,
        [
            (Destination::Tunnel, first),
            (Destination::Tunnel, second),
            (Destination::Udp(RELAY), out),
        ]
    );
    assert_eq!(client.stats().data_drops(DataDrop::WrongRelay), 1);
    assert_eq!(client.stats().data_drops(DataDrop::Unverified), 0);
    assert_eq!(client.stats().icmp_errors_sent, 0);
    // Nothing left over later.
    client.handle_timeout(at(60_000));
    assert!(!to_tunnel(&mut client, at(60_000)));
}

/// Rule 2 before rule 1: when the native peer is already trusted through
/// its relay and a packet from it arrives by another path (here spoofed
/// through our server's hole), the echo reply that settles the test comes
/// through the trusted relay. It is ours, not the host's, and it discards
/// the held packet of the wrong path (RFC 4380 §5.2.3 rules 1, 2, 6).
#[test]
fn rule2_echo_reply_through_a_trusted_relay_is_consumed() {
    let (mut client, ours) = qualified();
    let first = packet(NATIVE, ours, b"first");
    let (_, request) = receive(&mut client, at(0), RELAY, &first).unwrap();
    receive(&mut client, at(10), RELAY, &echo_reply(&request));
    assert_eq!(drain(&mut client, at(10)), [(Destination::Tunnel, first)]);
    // Trusted at RELAY now. The same source through our server's hole:
    // held, and a new test starts.
    let other_path = SERVER_EP;
    let forged = packet(NATIVE, ours, b"other path");
    let (_, request) = receive(&mut client, at(100), other_path, &forged).unwrap();
    // The reply comes through the trusted relay: consumed (not delivered by
    // rule 1), and the held packet is discarded as from the wrong relay.
    assert_eq!(
        receive(&mut client, at(110), RELAY, &echo_reply(&request)),
        None
    );
    assert!(!to_tunnel(&mut client, at(110)));
    assert_eq!(client.stats().data_drops(DataDrop::WrongRelay), 1);
    // Ordinary traffic from the trusted relay is still delivered.
    let data = packet(NATIVE, ours, b"data");
    assert_eq!(
        receive(&mut client, at(120), RELAY, &data),
        Some((None, data.clone()))
    );
}

/// Rule 6: held packets are bounded per source (1280 bytes) and in all
/// (4 packets); they are dropped silently after 30 s or when their test
/// fails.
#[test]
fn rule6_hold_bounds_and_expiry() {
    let (mut client, ours) = qualified();
    let big = packet(NATIVE, ours, &[7; 1000]);
    let (_, request) = receive(&mut client, at(0), RELAY, &big).unwrap();
    let too_much = packet(NATIVE, ours, &[8; 300]);
    assert_eq!(receive(&mut client, at(1), RELAY, &too_much), None);
    assert_eq!(client.stats().data_drops(DataDrop::Unverified), 1);
    // Other sources fill the area (3 more slots), then are refused.
    for n in 2..=5u16 {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n);
        receive(&mut client, at(2), RELAY, &packet(src, ours, b"x"));
    }
    assert_eq!(client.stats().data_drops(DataDrop::Unverified), 2);
    // The 30 s end of life drops them (the reply came too late anyway).
    assert!(client.poll_timeout().is_some_and(|t| t <= at(30_000)));
    client.handle_timeout(at(30_002));
    assert_eq!(client.stats().data_drops(DataDrop::Unverified), 6);
    receive(&mut client, at(30_010), RELAY, &echo_reply(&request));
    assert!(!to_tunnel(&mut client, at(30_010)));
    // A held packet goes as soon as its test failed (4 tries, the last
    // one 2 s ago), and for good when its peer entry expires.
    let (mut client, ours) = qualified();
    receive(&mut client, at(0), RELAY, &packet(NATIVE, ours, b"a"));
    for t in [2000u64, 4000, 6000] {
        drain(&mut client, at(t));
    }
    assert!(client.poll_timeout().is_some_and(|t| t <= at(8_000)));
    client.handle_timeout(at(7_999));
    assert_eq!(client.stats().data_drops(DataDrop::Unverified), 0);
    client.handle_timeout(at(8_000));
    assert_eq!(client.stats().data_drops(DataDrop::Unverified), 1);
    client.handle_timeout(at(71_000));
    assert!(client.peers().get(&NATIVE).is_none());
    assert!(!to_tunnel(&mut client, at(71_000)));
    assert_eq!(client.stats().data_drops(DataDrop::Unverified), 1);
    assert_eq!(client.stats().icmp_errors_sent, 0);
}

/// Tunnel-side refusals: not qualified (code 3), foreign source (code 1),
/// multicast (silent).
#[test]
fn tunnel_refusals() {
    let mut config = Config::new(SERVER);
    config.server_secondary = None;
    let mut client: TestClient = Box::new(Client::new(config, SplitMix64::new(1), T0));
    let early = packet("2001:db8::5".parse().unwrap(), NATIVE, b"x");
    let (to, err) = send(&mut client, T0, &early).unwrap();
    assert_eq!(to, None);
    assert_unreachable(&err, 3, &early);
    let (mut client, ours) = qualified();
    let foreign = packet("2001:db8::5".parse().unwrap(), NATIVE, b"x");
    let (_, err) = send(&mut client, at(0), &foreign).unwrap();
    assert_unreachable(&err, 1, &foreign);
    let multicast = packet(ours, "ff02::1".parse().unwrap(), b"x");
    assert_eq!(send(&mut client, at(0), &multicast), None);
    assert_eq!(client.stats().data_drops(DataDrop::Multicast), 1);
    // ICMPv6 errors are rate-limited (10 burst).
    for _ in 0..20 {
        send(&mut client, at(0), &foreign);
    }
    assert_eq!(client.stats().icmp_errors_sent, 10);
    assert_eq!(client.stats().icmp_errors_limited, 11);
}

proptest::proptest! {
    /// Arbitrary datagrams and tunnel packets never panic, from any source,
    /// and everything written fits the output buffer.
    #[test]
    fn arbitrary_input_never_panics(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        from_server in proptest::prelude::any::<bool>(),
        step in 0u64..5000,
    ) {
        let (mut client, ours) = qualified();
        let from = if from_server { SERVER_EP } else { PEER_MAPPING };
        receive(&mut client, at(0), from, &bytes);
        send(&mut client, at(0), &bytes);
        // The same bytes behind our address as source.
        let mut own = bytes.clone();
        if own.len() >= 40 {
            own[0] = 0x60;
            own[8..24].copy_from_slice(&ours.octets());
        }
        send(&mut client, at(step), &own);
        drain(&mut client, at(step));
        client.handle_timeout(at(step + 60_000));
        drain(&mut client, at(step + 60_000));
    }
}
