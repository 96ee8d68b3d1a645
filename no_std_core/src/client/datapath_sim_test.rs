//! Data path simulations: two [`Client`]s behind two port-restricted NATs,
//! the real [`Server`], a small relay model and a native IPv6 host, on an
//! in-memory network with a fixed 10 ms hop latency, optional seeded loss
//! and virtual time (no sleeping).

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::boxed::Box;
use std::vec::Vec;

use smoltcp::wire::{IpProtocol, Ipv6Packet, Ipv6Repr};

use super::{Client, Config, Destination, Output, MIN_OUTPUT_BUFFER};
use crate::addr::{TeredoAddr, DEFAULT_PREFIX, TEREDO_PORT};
use crate::nonce::{Rng, SplitMix64};
use crate::server::{self, Action, Local, Server};
use crate::time::{Duration, Instant};
use crate::wire::echo::{EchoKind, EchoRepr};
use crate::wire::icmp_error::DstUnreachable;
use crate::wire::{bubble, encap};

const HOP: Duration = Duration::from_millis(10);
const SERVER: Ipv4Addr = Ipv4Addr::new(65, 54, 227, 120);
const SERVER_2: Ipv4Addr = Ipv4Addr::new(65, 54, 227, 121);
const RELAY: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 99), TEREDO_PORT);
/// The relay's bubble source: a link-local tag, as Miredo's relays use.
const RELAY_TAG: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x8000, 0x1234, 0x5678, 0x9abc);
const NATIVE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const PUBLIC: [Ipv4Addr; 2] = [
    Ipv4Addr::new(192, 0, 2, 45),
    Ipv4Addr::new(198, 51, 100, 77),
];
const PORT: u16 = 40000;

/// The world starts at 100 s: peer entries back-date times by 30 s, which
/// saturates on a clock younger than that.
const BASE: u64 = 100_000;

/// `millis` after the start of the world.
fn ms(millis: u64) -> Instant {
    Instant::from_millis(BASE + millis)
}

/// The native IPv6 host: answers a packet at an instant, or not.
type NativeHost = Box<dyn FnMut(Instant, &[u8]) -> Option<Vec<u8>>>;

/// A client behind a NAT with one public endpoint (endpoint-independent
/// mapping) that lets in only endpoints the client has sent to.
struct Host {
    client: Box<Client<SplitMix64>>,
    public: SocketAddrV4,
    contacted: Vec<SocketAddrV4>,
    /// Packets the client wrote to its tunnel.
    tunnel: Vec<(Instant, Vec<u8>)>,
    /// Every UDP destination the client sent to.
    sent: Vec<(Instant, SocketAddrV4)>,
}

enum Hop {
    Udp {
        from: SocketAddrV4,
        to: SocketAddrV4,
        data: Vec<u8>,
    },
    /// On the native IPv6 Internet.
    Native(Vec<u8>),
}

/// A Teredo relay (RFC 4380 §5.4), reduced to what the test needs: native
/// packets for an unknown Teredo client are queued behind an indirect
/// bubble through the client's server; a packet from the mapping a Teredo
/// source embeds makes it trusted and releases the queue.
#[derive(Default)]
struct Relay {
    trusted: Vec<(Ipv6Addr, SocketAddrV4)>,
    queue: Vec<(Ipv6Addr, Vec<u8>)>,
}

struct World {
    now: Instant,
    hosts: Vec<Host>,
    server: Server,
    relay: Relay,
    /// The native host: answers an IPv6 packet, or not.
    native: NativeHost,
    /// Native packets that reached the native host.
    native_rx: Vec<(Instant, Vec<u8>)>,
    in_flight: Vec<(Instant, Hop)>,
    /// Public IPv4 addresses that receive nothing (a host gone).
    blackhole: Vec<Ipv4Addr>,
    loss_percent: u64,
    loss: SplitMix64,
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

fn header(packet: &[u8]) -> (Ipv6Addr, Ipv6Addr) {
    let p = Ipv6Packet::new_checked(packet).unwrap();
    (p.src_addr(), p.dst_addr())
}

/// A native host that answers every echo request, except the first `skip`
/// connectivity tests (our identifier), and swallows everything else.
fn echo_host(mut skip: usize) -> NativeHost {
    Box::new(move |_, packet| {
        let request = EchoRepr::parse(packet).ok()?;
        if request.kind != EchoKind::Request {
            return None;
        }
        if request.ident == super::echo_test::ECHO_IDENT && skip > 0 {
            skip -= 1;
            return None;
        }
        let reply = request.reply_to(64)?;
        let mut buf = std::vec![0u8; reply.buffer_len()];
        reply.emit(&mut buf).ok()?;
        Some(buf)
    })
}

impl World {
    fn new() -> Self {
        let hosts = PUBLIC
            .iter()
            .enumerate()
            .map(|(i, &ip)| Host {
                client: Box::new(Client::new(
                    Config::new(SERVER),
                    SplitMix64::new(100 + i as u64),
                    ms(0),
                )),
                public: SocketAddrV4::new(ip, PORT),
                contacted: Vec::new(),
                tunnel: Vec::new(),
                sent: Vec::new(),
            })
            .collect();
        World {
            now: ms(0),
            hosts,
            server: Server::new(server::Config::new(SERVER), ms(0)),
            relay: Relay::default(),
            native: echo_host(0),
            native_rx: Vec::new(),
            in_flight: Vec::new(),
            blackhole: Vec::new(),
            loss_percent: 0,
            loss: SplitMix64::new(5),
        }
    }

    fn address(&self, host: usize) -> Ipv6Addr {
        self.hosts[host]
            .client
            .qualification()
            .unwrap()
            .address
            .to_ipv6()
    }

    fn udp(&mut self, from: SocketAddrV4, to: SocketAddrV4, data: &[u8]) {
        if self.loss.next_u64() % 100 < self.loss_percent {
            return;
        }
        let hop = Hop::Udp {
            from,
            to,
            data: data.to_vec(),
        };
        self.in_flight.push((self.now + HOP, hop));
    }

    fn native_send(&mut self, packet: &[u8]) {
        self.in_flight
            .push((self.now + HOP, Hop::Native(packet.to_vec())));
    }

    /// Host `i` sends a UDP datagram (through its NAT).
    fn host_udp(&mut self, i: usize, to: SocketAddrV4, data: &[u8]) {
        let host = &mut self.hosts[i];
        host.sent.push((self.now, to));
        if !host.contacted.contains(&to) {
            host.contacted.push(to);
        }
        let from = host.public;
        self.udp(from, to, data);
    }

    fn act(&mut self, i: usize, output: Option<(Option<SocketAddrV4>, Vec<u8>)>) {
        match output {
            Some((Some(to), data)) => self.host_udp(i, to, &data),
            Some((None, data)) => self.hosts[i].tunnel.push((self.now, data)),
            None => {}
        }
    }

    /// The application on host `i` sends `packet` into its tunnel.
    fn app_send(&mut self, i: usize, packet: &[u8]) {
        let mut out = [0u8; MIN_OUTPUT_BUFFER];
        let output = own(self.hosts[i].client.handle_ipv6(self.now, packet, &mut out));
        self.act(i, output);
        self.flush();
    }

    fn flush(&mut self) {
        let mut out = [0u8; MIN_OUTPUT_BUFFER];
        for i in 0..self.hosts.len() {
            while let Some(tx) = self.hosts[i].client.poll_transmit(self.now, &mut out) {
                let data = out[..tx.len].to_vec();
                match tx.dest {
                    Destination::Udp(to) => self.host_udp(i, to, &data),
                    Destination::Tunnel => self.hosts[i].tunnel.push((self.now, data)),
                }
            }
            while self.hosts[i].client.poll_event().is_some() {}
        }
    }

    fn deliver(&mut self, hop: Hop) {
        match hop {
            Hop::Native(packet) => {
                let (_, dst) = header(&packet);
                if TeredoAddr::from_ipv6(dst, DEFAULT_PREFIX).is_some() {
                    self.relay_native_in(packet);
                } else {
                    self.native_rx.push((self.now, packet.clone()));
                    if let Some(reply) = (self.native)(self.now, &packet) {
                        self.native_send(&reply);
                    }
                }
            }
            Hop::Udp { from, to, data } => {
                if self.blackhole.contains(to.ip()) {
                    return;
                }
                if let Some(i) = self.hosts.iter().position(|h| h.public == to) {
                    if !self.hosts[i].contacted.contains(&from) {
                        return;
                    }
                    let mut out = [0u8; MIN_OUTPUT_BUFFER];
                    let output = own(self.hosts[i]
                        .client
                        .handle_udp(self.now, from, &data, &mut out));
                    self.act(i, output);
                } else if to == RELAY {
                    self.relay_udp_in(from, &data);
                } else {
                    self.server_in(from, to, &data);
                }
            }
        }
    }

    fn server_in(&mut self, from: SocketAddrV4, to: SocketAddrV4, data: &[u8]) {
        let local = match *to.ip() {
            SERVER => Local::Primary,
            SERVER_2 => Local::Secondary,
            _ => return,
        };
        let mut out = [0u8; 1500];
        match self
            .server
            .handle_udp(self.now, local, from, data, &mut out)
        {
            Action::SendUdp { from: l, to, data } => {
                let ip = if l == Local::Primary {
                    SERVER
                } else {
                    SERVER_2
                };
                let data = data.to_vec();
                self.udp(SocketAddrV4::new(ip, TEREDO_PORT), to, &data);
            }
            Action::SendIpv6(packet) => {
                let packet = packet.to_vec();
                self.native_send(&packet);
            }
            Action::None => {}
        }
    }

    fn relay_native_in(&mut self, packet: Vec<u8>) {
        let (_, dst) = header(&packet);
        if let Some(&(_, mapping)) = self.relay.trusted.iter().find(|t| t.0 == dst) {
            self.udp(RELAY, mapping, &packet);
            return;
        }
        self.relay.queue.push((dst, packet));
        let teredo = TeredoAddr::from_ipv6(dst, DEFAULT_PREFIX).unwrap();
        let mut b = [0u8; 40];
        bubble::emit(RELAY_TAG, dst, 0, &mut b).unwrap();
        self.udp(RELAY, SocketAddrV4::new(teredo.server(), TEREDO_PORT), &b);
    }

    fn relay_udp_in(&mut self, from: SocketAddrV4, data: &[u8]) {
        let Ok(repr) = encap::Repr::parse(data) else {
            return;
        };
        let (src, _) = header(repr.ipv6);
        let Some(teredo) = TeredoAddr::from_ipv6(src, DEFAULT_PREFIX) else {
            return;
        };
        if teredo.mapped() != from {
            return;
        }
        if !self.relay.trusted.iter().any(|t| t.0 == src) {
            self.relay.trusted.push((src, from));
        }
        let (release, keep) = core::mem::take(&mut self.relay.queue)
            .into_iter()
            .partition(|(dst, _)| *dst == src);
        self.relay.queue = keep;
        for (_, packet) in release {
            self.udp(RELAY, from, &packet);
        }
        if !bubble::is_bubble(repr.ipv6) {
            let packet = repr.ipv6.to_vec();
            self.native_send(&packet);
        }
    }

    fn run_until(&mut self, end: Instant) {
        for _ in 0..1_000_000 {
            self.flush();
            let next_packet = self.in_flight.iter().map(|p| p.0).min();
            let next_timer = self
                .hosts
                .iter()
                .filter_map(|h| h.client.poll_timeout())
                .min();
            let next = match (next_packet, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap(),
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            while let Some(i) = self.in_flight.iter().position(|p| p.0 <= self.now) {
                let (_, hop) = self.in_flight.remove(i);
                self.deliver(hop);
            }
            for host in &mut self.hosts {
                if host.client.poll_timeout().is_some_and(|t| t <= self.now) {
                    host.client.handle_timeout(self.now);
                }
            }
        }
        panic!("simulation does not advance");
    }

    fn qualified() -> Self {
        let mut w = World::new();
        w.run_until(ms(1000));
        assert!(w.hosts.iter().all(|h| h.client.qualification().is_some()));
        w
    }
}

fn own(output: Output<'_>) -> Option<(Option<SocketAddrV4>, Vec<u8>)> {
    match output {
        Output::None => None,
        Output::Udp { to, data } => Some((Some(to), data.to_vec())),
        Output::Tunnel(data) => Some((None, data.to_vec())),
    }
}

#[test]
fn two_clients_reach_each_other_through_bubbles() {
    let mut w = World::qualified();
    let (a, b) = (w.address(0), w.address(1));
    let packets: Vec<Vec<u8>> = (0..3u8).map(|n| ipv6(a, b, &[n; 20])).collect();
    for p in &packets {
        w.app_send(0, p);
    }
    // A's direct bubble dies at B's NAT; the indirect one reaches B through
    // the server (t+20), B answers directly (t+30), A trusts B and releases
    // the queue in order (arrives t+40).
    w.run_until(ms(1100));
    let got: Vec<(Instant, Vec<u8>)> = w.hosts[1].tunnel.clone();
    let expected: Vec<(Instant, Vec<u8>)> = packets.iter().map(|p| (ms(1040), p.clone())).collect();
    assert_eq!(got, expected, "bubbles never delivered, data in order");
    let sa = w.hosts[0].client.stats().clone();
    assert_eq!((sa.queued, sa.flushed, sa.bubbles_sent), (3, 3, 2));
    assert_eq!(w.hosts[1].client.stats().bubbles_sent, 1);
    // Direct both ways from now on.
    w.app_send(1, &ipv6(b, a, b"pong"));
    w.app_send(0, &ipv6(a, b, b"again"));
    w.run_until(ms(1200));
    assert_eq!(w.hosts[0].tunnel, [(ms(1110), ipv6(b, a, b"pong"))]);
    assert_eq!(w.hosts[1].tunnel.last().unwrap().1, ipv6(a, b, b"again"));
    assert_eq!(w.hosts[1].client.stats().sent_direct, 1);
    assert_eq!(w.hosts[0].client.stats().sent_direct, 1);
    // Idle peers expire: 60 s without traffic, swept within 10 s.
    w.run_until(ms(1200 + 55_000));
    assert_eq!(w.hosts[0].client.peers().len(), 1);
    w.run_until(ms(1200 + 71_000));
    assert!(w.hosts.iter().all(|h| h.client.peers().is_empty()));
}

#[test]
fn native_host_through_a_relay_after_echo_retries() {
    let mut w = World::qualified();
    // The first two connectivity tests are lost on the native side.
    w.native = echo_host(2);
    let a = w.address(0);
    let ping = {
        let req = EchoRepr {
            src: a,
            dst: NATIVE,
            hop_limit: 64,
            kind: EchoKind::Request,
            ident: 1,
            seq: 1,
            data: b"app ping",
        };
        let mut buf = std::vec![0u8; req.buffer_len()];
        req.emit(&mut buf).unwrap();
        buf
    };
    w.app_send(0, &ping);
    w.run_until(ms(6000));
    let tests: Vec<Instant> = w.hosts[0]
        .sent
        .iter()
        .filter(|s| s.0 >= ms(1000) && s.1 == SocketAddrV4::new(SERVER, TEREDO_PORT))
        .map(|s| s.0)
        .collect();
    // Tries at 1 s, 3 s, 5 s (the third is answered); then refreshes only.
    assert_eq!(tests[..3], [ms(1000), ms(3000), ms(5000)]);
    assert_eq!(w.hosts[0].client.stats().echo_requests_sent, 3);
    let entry = w.hosts[0].client.peers().get(&NATIVE).unwrap().clone();
    assert!(entry.is_trusted());
    assert_eq!(entry.mapping(), RELAY);
    // The test reply needed the relay's indirect bubble, answered directly.
    assert_eq!(w.hosts[0].client.stats().bubbles_sent, 1);
    // The queued application ping reached the host, and its reply came back.
    assert!(w.native_rx.iter().any(|(_, p)| *p == ping));
    let reply = &w.hosts[0].tunnel.last().unwrap().1;
    let reply = EchoRepr::parse(reply).unwrap();
    assert_eq!(
        (reply.kind, reply.src, reply.data),
        (EchoKind::Reply, NATIVE, &b"app ping"[..])
    );
}

#[test]
fn silent_peer_exhausts_bubbles_then_unreachable() {
    let mut w = World::qualified();
    let (a, b) = (w.address(0), w.address(1));
    w.blackhole.push(PUBLIC[1]);
    let data = ipv6(a, b, b"lost");
    w.app_send(0, &data);
    w.run_until(ms(9500));
    let bubbles: Vec<Instant> = w.hosts[0]
        .sent
        .iter()
        .filter(|s| s.0 >= ms(1000) && s.1.ip() != &SERVER)
        .map(|s| s.0)
        .collect();
    // Direct bubbles at 0, 2, 4, 6 s after the packet; indirect ones go to
    // the server (also B's server) at the same times.
    assert_eq!(bubbles, [ms(1000), ms(3000), ms(5000), ms(7000)]);
    let [(t, err)] = &w.hosts[0].tunnel[..] else {
        panic!("{:?}", w.hosts[0].tunnel.len());
    };
    assert_eq!(*t, ms(9000));
    let err = DstUnreachable::parse(err).unwrap();
    assert_eq!((u8::from(err.reason), err.quoted), (3, &data[..]));
}

#[test]
fn lossy_two_client_soak() {
    let mut w = World::qualified();
    w.loss_percent = 20;
    let (a, b) = (w.address(0), w.address(1));
    for n in 0..120u8 {
        w.app_send(0, &ipv6(a, b, &[n; 8]));
        w.run_until(ms(1000 + 1000 * (u64::from(n) + 1)));
    }
    let got: Vec<u8> = w.hosts[1].tunnel.iter().map(|(_, p)| p[40]).collect();
    // Delivered in order (FIFO flushes, trusted sends), most of them.
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert!(got.len() > 60, "{}", got.len());
}
