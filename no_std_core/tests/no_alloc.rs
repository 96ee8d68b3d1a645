//! Proves that the core allocates nothing while parsing, emitting and running
//! the server role: every codec and `Server::handle_udp` run under a counting
//! global allocator, and the count must not move.
//!
//! The crate is `no_std` without `alloc`, so it *cannot* call the allocator
//! itself; this test guards the dependencies (smoltcp, heapless) and any
//! future feature flag against sneaking one in. The counter is per thread so
//! the test harness's own allocations (on other threads) do not count.
//!
//! Installing a global allocator needs `unsafe`; it lives here, in a test
//! binary, and only forwards to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

use shipworm_core::addr::{self, TeredoAddr, ALL_ROUTERS, CLIENT_LL_CONE, DEFAULT_PREFIX};
use shipworm_core::server::{Action, Config, Local, Server};
use shipworm_core::time::{Duration, Instant};
use shipworm_core::wire::echo::{EchoKind, EchoRepr};
use shipworm_core::wire::encap::{AuthHeader, Packet, Repr, Trailers};
use shipworm_core::wire::icmp_error::{self, DstUnreachable};
use shipworm_core::wire::ndisc::{RouterAdvertisement, RouterSolicitation};
use shipworm_core::wire::{bubble, Error};

thread_local! {
    // `const` initialisation: reading it never allocates nor registers a
    // destructor, so the allocator itself may touch it.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Forwards to the system allocator, counting allocations and reallocations
/// made by the current thread.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counter is a thread-local
// `Cell` with const initialisation, which does not allocate and cannot
// re-enter the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const SERVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const CLIENT_MAPPED: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 45), 40000);
const PEER_MAPPED: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 7), 4096);
const NATIVE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// One round of every codec: emit, parse, compare. Returns how many checks
/// ran so the optimiser cannot drop the work.
fn every_codec() -> usize {
    let mut checks = 0;
    let mut buf = [0u8; 1280];
    let mut buf2 = [0u8; 1280];

    // addr
    let client = TeredoAddr::new(DEFAULT_PREFIX, SERVER_V4, addr::FLAG_CONE, CLIENT_MAPPED);
    let peer = TeredoAddr::new(DEFAULT_PREFIX, SERVER_V4, 0, PEER_MAPPED);
    assert_eq!(
        TeredoAddr::from_ipv6(client.to_ipv6(), DEFAULT_PREFIX),
        Some(client)
    );
    assert!(addr::is_global_unicast(*CLIENT_MAPPED.ip()));
    assert!(addr::is_link_local(addr::server_link_local(SERVER_V4)));
    checks += 3;

    // bubble
    let n = bubble::emit(peer.to_ipv6(), client.to_ipv6(), 0, &mut buf).unwrap();
    assert!(bubble::is_bubble(&buf[..n]));
    checks += 1;

    // ndisc: RS
    let rs = RouterSolicitation {
        src: CLIENT_LL_CONE,
        dst: ALL_ROUTERS,
    };
    let n = rs.emit(&mut buf).unwrap();
    assert_eq!(RouterSolicitation::parse(&buf[..n]), Ok(rs));
    checks += 1;

    // ndisc: RA
    let prefix64 = [0x20, 0x01, 0, 0, 192, 0, 2, 1];
    let ra = RouterAdvertisement::teredo_default(
        addr::server_link_local(SERVER_V4),
        CLIENT_LL_CONE,
        prefix64,
        1280,
    );
    let n = ra.emit(&mut buf).unwrap();
    let parsed = RouterAdvertisement::parse(&buf[..n]).unwrap();
    assert_eq!(parsed, ra);
    assert_eq!(parsed.prefix64(), Some(prefix64));
    checks += 2;

    // echo
    let request = EchoRepr {
        src: client.to_ipv6(),
        dst: NATIVE,
        hop_limit: 64,
        kind: EchoKind::Request,
        ident: 0x1234,
        seq: 7,
        data: b"shipworm",
    };
    let n = request.emit(&mut buf).unwrap();
    assert_eq!(EchoRepr::parse(&buf[..n]), Ok(request));
    let reply = request.reply_to(64).unwrap();
    let m = reply.emit(&mut buf2).unwrap();
    assert_eq!(EchoRepr::parse(&buf2[..m]), Ok(reply));
    checks += 2;

    // icmp_error: about the echo request in `buf`
    assert!(icmp_error::may_answer(&buf[..n]));
    let reason = smoltcp::wire::Icmpv6DstUnreachable::AddrUnreachable;
    let e = icmp_error::emit_unreachable(NATIVE, reason, &buf[..n], &mut buf2).unwrap();
    let err = DstUnreachable::parse(&buf2[..e]).unwrap();
    assert_eq!(
        (err.dst, err.reason, err.quoted),
        (client.to_ipv6(), reason, &buf[..n])
    );
    let mut buf3 = [0u8; 1280];
    let e3 = err.emit(&mut buf3).unwrap();
    assert_eq!(&buf3[..e3], &buf2[..e]);
    checks += 3;

    // encap: authentication + origin indication + RS + a trailer
    let n = rs.emit(&mut buf).unwrap();
    let trailer = [0x01, 0x04, 0xde, 0xad, 0xbe, 0xef];
    let repr = Repr {
        auth: Some(AuthHeader {
            client_id: b"",
            auth_value: b"",
            nonce: [1, 2, 3, 4, 5, 6, 7, 8],
            confirmation: 0,
        }),
        origin: Some(CLIENT_MAPPED),
        ipv6: &buf[..n],
        trailers: &trailer,
    };
    let len = repr.emit(&mut buf2).unwrap();
    assert_eq!(Repr::parse(&buf2[..len]), Ok(repr));
    let packet = Packet::new_checked(&buf2[..len]).unwrap();
    assert_eq!(packet.origin(), Some(CLIENT_MAPPED));
    assert_eq!(packet.ipv6_packet(), &buf[..n]);
    assert_eq!(Trailers::new(packet.trailers()).count(), 1);
    assert_eq!(Repr::parse(&buf2[..3]), Err(Error::Truncated));
    checks += 5;

    checks
}

/// The server role on each kind of datagram it handles: an RS (answered
/// with an RA), a bubble to a Teredo peer (forwarded), an echo to a native
/// host (sent out natively), an oversized packet (ICMPv6 error) and junk.
fn server_round() -> usize {
    let mut checks = 0;
    let now = Instant::from_secs(1000);
    let mut server = Server::new(Config::new(SERVER_V4), now);
    let client = TeredoAddr::new(DEFAULT_PREFIX, SERVER_V4, addr::FLAG_CONE, CLIENT_MAPPED);
    let peer = TeredoAddr::new(DEFAULT_PREFIX, SERVER_V4, 0, PEER_MAPPED);
    let mut ipv6 = [0u8; 1280];
    let mut datagram = [0u8; 1280];
    let mut out = [0u8; 1280];

    // RS with a nonce-only authentication header.
    let n = RouterSolicitation {
        src: CLIENT_LL_CONE,
        dst: ALL_ROUTERS,
    }
    .emit(&mut ipv6)
    .unwrap();
    let auth = AuthHeader {
        client_id: b"",
        auth_value: b"",
        nonce: [8; 8],
        confirmation: 0,
    };
    let len = Repr {
        auth: Some(auth),
        origin: None,
        ipv6: &ipv6[..n],
        trailers: &[],
    }
    .emit(&mut datagram)
    .unwrap();
    match server.handle_udp(
        now,
        Local::Primary,
        CLIENT_MAPPED,
        &datagram[..len],
        &mut out,
    ) {
        Action::SendUdp { to, data, .. } => {
            assert_eq!(to, CLIENT_MAPPED);
            let ra = Repr::parse(data).unwrap();
            assert_eq!(ra.origin, Some(CLIENT_MAPPED));
            assert!(RouterAdvertisement::parse(ra.ipv6).is_ok());
        }
        other => panic!("RS not answered: {other:?}"),
    }
    checks += 1;

    // Bubble from the peer to the client: forwarded to the client's mapping.
    let n = bubble::emit(peer.to_ipv6(), client.to_ipv6(), 0, &mut datagram).unwrap();
    let now = now + Duration::from_millis(10);
    match server.handle_udp(now, Local::Primary, PEER_MAPPED, &datagram[..n], &mut out) {
        Action::SendUdp { to, data, .. } => {
            assert_eq!(to, CLIENT_MAPPED);
            assert!(bubble::is_bubble(Repr::parse(data).unwrap().ipv6));
        }
        other => panic!("bubble not forwarded: {other:?}"),
    }
    checks += 1;

    // Echo request from the client to a native host: out the IPv6 side.
    let n = EchoRepr {
        src: client.to_ipv6(),
        dst: NATIVE,
        hop_limit: 64,
        kind: EchoKind::Request,
        ident: 1,
        seq: 1,
        data: b"ping",
    }
    .emit(&mut datagram)
    .unwrap();
    match server.handle_udp(now, Local::Primary, CLIENT_MAPPED, &datagram[..n], &mut out) {
        Action::SendIpv6(p) => assert_eq!(p, &datagram[..n]),
        other => panic!("echo not forwarded: {other:?}"),
    }
    checks += 1;

    // Too big to forward: answered with an ICMPv6 error or dropped, but
    // handled without allocating either way.
    let n = EchoRepr {
        src: client.to_ipv6(),
        dst: NATIVE,
        hop_limit: 64,
        kind: EchoKind::Request,
        ident: 1,
        seq: 2,
        data: &[0x5a; 600],
    }
    .emit(&mut datagram)
    .unwrap();
    let _ = server.handle_udp(
        now,
        Local::Secondary,
        CLIENT_MAPPED,
        &datagram[..n],
        &mut out,
    );

    // Junk.
    let action = server.handle_udp(
        now,
        Local::Primary,
        CLIENT_MAPPED,
        &[0x00, 0x01, 0xff],
        &mut out,
    );
    assert_eq!(action, Action::None);
    checks += 1;

    assert_eq!(server.stats().received, 5);
    checks
}

#[test]
fn codecs_and_server_do_not_allocate() {
    // The counter works: a heap allocation on this thread is seen.
    let before = allocations();
    let boxed = std::hint::black_box(Box::new(1u64));
    assert!(
        allocations() > before,
        "the counting allocator is not in use"
    );
    drop(boxed);

    let before = allocations();
    let mut checks = 0;
    // Several rounds, so lazily-initialised state (if any) is past its first
    // use and steady-state code paths are covered too.
    for _ in 0..3 {
        checks += std::hint::black_box(every_codec());
        checks += std::hint::black_box(server_round());
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "the core allocated {} times",
        after - before
    );
    assert!(checks > 0);
}
