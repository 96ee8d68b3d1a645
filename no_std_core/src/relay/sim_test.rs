//! Simulation of teredo-spec §8.3 item 13: the real [`Client`] behind a
//! port-restricted NAT, the real [`Server`] and the real [`Relay`], with a
//! native IPv6 host, on an in-memory network with a 10 ms hop latency and
//! virtual time (the shape of `client/datapath_sim_test.rs`).

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::boxed::Box;
use std::vec::Vec;

use smoltcp::wire::Ipv6Packet;

use super::{Config, Relay};
use crate::addr::{TeredoAddr, DEFAULT_PREFIX, TEREDO_PORT};
use crate::client::{self, Client, Destination, Output};
use crate::nonce::SplitMix64;
use crate::server::{self, Action, Local, Server};
use crate::time::{Duration, Instant};
use crate::wire::echo::{EchoKind, EchoRepr};
use crate::wire::icmp_error::DstUnreachable;

const HOP: Duration = Duration::from_millis(10);
const SERVER: Ipv4Addr = Ipv4Addr::new(65, 54, 227, 120);
const SERVER_2: Ipv4Addr = Ipv4Addr::new(65, 54, 227, 121);
const RELAY: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 99), TEREDO_PORT);
const PUBLIC: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 45), 40000);
const NATIVE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const BUF: usize = client::MIN_OUTPUT_BUFFER;

type TestRelay = Relay<SplitMix64, 64, 128, 16, 1280>;

fn ms(millis: u64) -> Instant {
    Instant::from_millis(100_000 + millis)
}

enum Hop {
    Udp {
        from: SocketAddrV4,
        to: SocketAddrV4,
        data: Vec<u8>,
    },
    Native(Vec<u8>),
}

struct World {
    now: Instant,
    client: Box<Client<SplitMix64>>,
    /// Endpoints the client's NAT lets in (it sent to them).
    contacted: Vec<SocketAddrV4>,
    /// The client's NAT drops everything (the client is gone).
    client_gone: bool,
    /// Packets the client wrote to its tunnel.
    tunnel: Vec<Vec<u8>>,
    server: Server,
    relay: Box<TestRelay>,
    /// Packets that reached the native host.
    native_rx: Vec<(Instant, Vec<u8>)>,
    in_flight: Vec<(Instant, Hop)>,
}

fn header(packet: &[u8]) -> (Ipv6Addr, Ipv6Addr) {
    let p = Ipv6Packet::new_checked(packet).unwrap();
    (p.src_addr(), p.dst_addr())
}

fn echo(src: Ipv6Addr, dst: Ipv6Addr, kind: EchoKind, data: &[u8]) -> Vec<u8> {
    let repr = EchoRepr {
        src,
        dst,
        hop_limit: 64,
        kind,
        ident: 7,
        seq: 1,
        data,
    };
    let mut buf = std::vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf).unwrap();
    buf
}

impl World {
    fn new() -> Self {
        let mut config = client::Config::new(SERVER);
        config.server_secondary = Some(SERVER_2);
        World {
            now: ms(0),
            client: Box::new(Client::new(config, SplitMix64::new(3), ms(0))),
            contacted: Vec::new(),
            client_gone: false,
            tunnel: Vec::new(),
            server: Server::new(server::Config::new(SERVER), ms(0)),
            relay: Box::new(Relay::with_table(Config::new(), SplitMix64::new(4), ms(0))),
            native_rx: Vec::new(),
            in_flight: Vec::new(),
        }
    }

    fn address(&self) -> Ipv6Addr {
        self.client.qualification().unwrap().address.to_ipv6()
    }

    fn send(&mut self, hop: Hop) {
        self.in_flight.push((self.now + HOP, hop));
    }

    fn client_udp(&mut self, to: SocketAddrV4, data: &[u8]) {
        if !self.contacted.contains(&to) {
            self.contacted.push(to);
        }
        let data = data.to_vec();
        self.send(Hop::Udp {
            from: PUBLIC,
            to,
            data,
        });
    }

    fn client_output(&mut self, output: Output<'_>) {
        match output {
            Output::None => {}
            Output::Udp { to, data } => {
                let data = data.to_vec();
                self.client_udp(to, &data);
            }
            Output::Tunnel(p) => self.tunnel.push(p.to_vec()),
        }
    }

    fn relay_output(&mut self, output: Output<'_>) {
        match output {
            Output::None => {}
            Output::Udp { to, data } => {
                let data = data.to_vec();
                self.send(Hop::Udp {
                    from: RELAY,
                    to,
                    data,
                });
            }
            Output::Tunnel(p) => {
                let p = p.to_vec();
                self.send(Hop::Native(p));
            }
        }
    }

    fn flush(&mut self) {
        let mut out = [0u8; BUF];
        while let Some(tx) = self.client.poll_transmit(self.now, &mut out) {
            let data = out[..tx.len].to_vec();
            match tx.dest {
                Destination::Udp(to) => self.client_udp(to, &data),
                Destination::Tunnel => self.tunnel.push(data),
            }
        }
        while self.client.poll_event().is_some() {}
        while let Some(tx) = self.relay.poll_transmit(self.now, &mut out) {
            let data = out[..tx.len].to_vec();
            match tx.dest {
                Destination::Udp(to) => self.send(Hop::Udp {
                    from: RELAY,
                    to,
                    data,
                }),
                Destination::Tunnel => self.send(Hop::Native(data)),
            }
        }
    }

    /// The native host answers echo requests (the client's connectivity
    /// tests and application pings alike).
    fn native_host(&mut self, packet: Vec<u8>) {
        self.native_rx.push((self.now, packet.clone()));
        let Ok(request) = EchoRepr::parse(&packet) else {
            return;
        };
        if request.kind != EchoKind::Request {
            return;
        }
        let reply = request.reply_to(64).unwrap();
        let mut buf = std::vec![0u8; reply.buffer_len()];
        reply.emit(&mut buf).unwrap();
        self.send(Hop::Native(buf));
    }

    fn deliver(&mut self, hop: Hop) {
        let mut out = [0u8; BUF];
        match hop {
            Hop::Native(packet) => {
                let (_, dst) = header(&packet);
                if TeredoAddr::from_ipv6(dst, DEFAULT_PREFIX).is_some() {
                    // The Teredo prefix is routed to the relay.
                    let output = self.relay.handle_ipv6(self.now, &packet, &mut out);
                    let owned = own(output);
                    self.relay_output(owned.as_output());
                } else {
                    self.native_host(packet);
                }
            }
            Hop::Udp { from, to, data } => {
                if to == PUBLIC {
                    if self.client_gone || !self.contacted.contains(&from) {
                        return;
                    }
                    let output = self.client.handle_udp(self.now, from, &data, &mut out);
                    let owned = own(output);
                    self.client_output(owned.as_output());
                } else if to == RELAY {
                    let output = self.relay.handle_udp(self.now, from, &data, &mut out);
                    let owned = own(output);
                    self.relay_output(owned.as_output());
                } else {
                    let local = match *to.ip() {
                        SERVER => Local::Primary,
                        SERVER_2 => Local::Secondary,
                        _ => return,
                    };
                    match self
                        .server
                        .handle_udp(self.now, local, from, &data, &mut out)
                    {
                        Action::SendUdp { from: l, to, data } => {
                            let ip = if l == Local::Primary {
                                SERVER
                            } else {
                                SERVER_2
                            };
                            let data = data.to_vec();
                            self.send(Hop::Udp {
                                from: SocketAddrV4::new(ip, TEREDO_PORT),
                                to,
                                data,
                            });
                        }
                        Action::SendIpv6(p) => {
                            let p = p.to_vec();
                            self.send(Hop::Native(p));
                        }
                        Action::None => {}
                    }
                }
            }
        }
    }

    fn run_until(&mut self, end: Instant) {
        for _ in 0..100_000 {
            self.flush();
            let next = [
                self.in_flight.iter().map(|p| p.0).min(),
                self.client.poll_timeout(),
                self.relay.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            while let Some(i) = self.in_flight.iter().position(|p| p.0 <= self.now) {
                let (_, hop) = self.in_flight.remove(i);
                self.deliver(hop);
            }
            if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
                self.client.handle_timeout(self.now);
            }
            if self.relay.poll_timeout().is_some_and(|t| t <= self.now) {
                self.relay.handle_timeout(self.now);
            }
        }
        panic!("simulation does not advance");
    }
}

/// An [`Output`] copied out of the buffers it borrows.
enum Owned {
    None,
    Udp(SocketAddrV4, Vec<u8>),
    Tunnel(Vec<u8>),
}

impl Owned {
    fn as_output(&self) -> Output<'_> {
        match self {
            Owned::None => Output::None,
            Owned::Udp(to, data) => Output::Udp { to: *to, data },
            Owned::Tunnel(p) => Output::Tunnel(p),
        }
    }
}

fn own(output: Output<'_>) -> Owned {
    match output {
        Output::None => Owned::None,
        Output::Udp { to, data } => Owned::Udp(to, data.to_vec()),
        Output::Tunnel(p) => Owned::Tunnel(p.to_vec()),
    }
}

#[test]
fn item13_client_and_native_host_exchange_pings_through_the_relay() {
    // teredo-spec §8.3 item 13: echo test via the server, the native reply
    // entering the relay, bubbles, queue flush, then data both ways.
    let mut w = World::new();
    w.run_until(ms(1000));
    let a = w.address();
    let ping = echo(a, NATIVE, EchoKind::Request, b"app ping");
    let mut out = [0u8; BUF];
    let output = w.client.handle_ipv6(w.now, &ping, &mut out);
    let owned = own(output);
    w.client_output(owned.as_output());
    w.run_until(ms(2000));
    // The relay learnt the client from the echo test's reply, bubbled it
    // through its server once, got the direct answer, released the reply.
    let rs = w.relay.stats().clone();
    assert_eq!(
        (rs.bubbles_sent, rs.bubbles_received, rs.flushed),
        (1, 1, 1)
    );
    assert_eq!(w.relay.stats().total_drops(), 0);
    let entry = w.relay.peers().get(&a).unwrap();
    assert!(entry.is_trusted());
    assert_eq!(entry.mapping(), PUBLIC);
    // The client trusts the relay for the native host ...
    let native = w.client.peers().get(&NATIVE).unwrap();
    assert!(native.is_trusted());
    assert_eq!(native.mapping(), RELAY);
    // ... sent its application ping through it, and got the answer.
    assert!(w.native_rx.iter().any(|(_, p)| *p == ping));
    let replies: Vec<&Vec<u8>> = w
        .tunnel
        .iter()
        .filter(|p| EchoRepr::parse(p).is_ok_and(|e| e.data == b"app ping"))
        .collect();
    assert_eq!(replies.len(), 1);
    // Both ways directly from now on: the native host pings the client.
    let before = w.relay.stats().to_clients.packets;
    let down = echo(NATIVE, a, EchoKind::Request, b"from native");
    w.send(Hop::Native(down.clone()));
    w.run_until(ms(2500));
    assert!(w.tunnel.contains(&down));
    assert_eq!(w.relay.stats().to_clients.packets, before + 1);
    assert_eq!(w.relay.stats().bubbles_sent, 1, "no more bubbles");
    // The client host's IPv6 stack answers; the reply goes through the
    // relay, trusted both ways.
    let answer = echo(a, NATIVE, EchoKind::Reply, b"from native");
    let output = w.client.handle_ipv6(w.now, &answer, &mut out);
    assert!(matches!(output, Output::Udp { to: RELAY, .. }));
    let owned = own(output);
    w.client_output(owned.as_output());
    w.run_until(ms(2600));
    assert!(
        w.native_rx.iter().any(|(_, p)| *p == answer),
        "the client's reply came back"
    );
}

#[test]
fn native_host_pings_the_client_first() {
    // The relay reaches the client with bubbles; the client holds the ping
    // (RFC 4380 §5.2.3 rule 6) while its echo test verifies the relay, then
    // delivers it: the first ping is not lost.
    let mut w = World::new();
    w.run_until(ms(1000));
    let a = w.address();
    let first = echo(NATIVE, a, EchoKind::Request, b"first ping");
    w.send(Hop::Native(first.clone()));
    w.run_until(ms(2000));
    assert_eq!(w.tunnel, [first], "delivered once, after the test");
    let cs = w.client.stats().clone();
    assert_eq!((cs.echo_requests_sent, cs.delivered), (1, 1));
    assert_eq!(cs.total_data_drops(), 0);
    let native = w.client.peers().get(&NATIVE).unwrap();
    assert!(native.is_trusted());
    assert_eq!(native.mapping(), RELAY);
    // The second ping goes straight through.
    let second = echo(NATIVE, a, EchoKind::Request, b"second ping");
    w.send(Hop::Native(second.clone()));
    w.run_until(ms(2100));
    assert_eq!(w.tunnel.last(), Some(&second));
    assert_eq!(w.client.stats().delivered, 2);
}

#[test]
fn gone_client_exhausts_bubbles_then_the_native_host_gets_unreachable() {
    let mut w = World::new();
    w.run_until(ms(1000));
    let a = w.address();
    w.client_gone = true;
    let t = w.now;
    let down = echo(NATIVE, a, EchoKind::Request, b"anyone?");
    w.send(Hop::Native(down.clone()));
    w.run_until(ms(12_000));
    assert_eq!(w.relay.stats().bubbles_sent, 4);
    let errors: Vec<&(Instant, Vec<u8>)> = w
        .native_rx
        .iter()
        .filter(|(_, p)| DstUnreachable::parse(p).is_ok())
        .collect();
    let [(when, err)] = &errors[..] else {
        panic!("{errors:?}");
    };
    // Reached the relay at +10 ms; bubbles at +0, 2, 4, 6 s; given up 2 s
    // after the last; the error travels one hop.
    assert_eq!(*when, t + Duration::from_millis(10 + 8000 + 10));
    let err = DstUnreachable::parse(err).unwrap();
    assert_eq!(
        (u8::from(err.reason), err.dst, err.quoted),
        (3, NATIVE, &down[..])
    );
    assert!(w.relay.peers().is_empty());
}
