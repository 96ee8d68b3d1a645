//! Deterministic simulations: a [`Client`] behind a NAT model, talking to
//! real [`Server`]s across an in-memory network with a fixed one-way latency,
//! seeded packet loss and virtual time. Timings are asserted to the
//! millisecond.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::vec::Vec;

use super::{Client, Config, Destination, Event, NatMapping, NatType, State, EVENT_CAPACITY};
use crate::addr::{TeredoAddr, DEFAULT_PREFIX, FLAG_RANDOM_MASK, TEREDO_PORT};
use crate::nonce::{Rng, SplitMix64};
use crate::server::{self, Action, Local, Server};
use crate::time::{Duration, Instant};

/// One-way latency of every hop pair (client ↔ server): RTT 20 ms.
const LATENCY: Duration = Duration::from_millis(10);
const RTT: Duration = Duration::from_millis(20);
/// The server and mapping of teredo-spec §1.4 vector V1.
const SERVER: Ipv4Addr = Ipv4Addr::new(65, 54, 227, 120);
const SERVER_2: Ipv4Addr = Ipv4Addr::new(65, 54, 227, 121);
const PUBLIC_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 45);
const FIRST_PORT: u16 = 40000;
const FALLBACK: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 120);
const FALLBACK_2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 121);

fn ms(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

fn ep(ip: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(ip, TEREDO_PORT)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Filtering {
    /// Endpoint-independent mapping, port-restricted filtering.
    PortRestricted,
    /// A new mapping per destination (address and port).
    Symmetric,
}

/// A NAT with one public address; mappings never expire (the client's
/// refreshes are checked by timing instead).
struct Nat {
    kind: Filtering,
    next_port: u16,
    /// (destination key for symmetric NATs, public port, endpoints sent to).
    mappings: Vec<(Option<SocketAddrV4>, u16, Vec<SocketAddrV4>)>,
}

impl Nat {
    fn new(kind: Filtering) -> Self {
        Nat {
            kind,
            next_port: FIRST_PORT,
            mappings: Vec::new(),
        }
    }

    /// The public source of a datagram the client sends to `dst`.
    fn outbound(&mut self, dst: SocketAddrV4) -> SocketAddrV4 {
        let key = match self.kind {
            Filtering::PortRestricted => None,
            Filtering::Symmetric => Some(dst),
        };
        let i = match self.mappings.iter().position(|m| m.0 == key) {
            Some(i) => i,
            None => {
                self.mappings.push((key, self.next_port, Vec::new()));
                self.next_port += 1;
                self.mappings.len() - 1
            }
        };
        let mapping = &mut self.mappings[i];
        if !mapping.2.contains(&dst) {
            mapping.2.push(dst);
        }
        SocketAddrV4::new(PUBLIC_IP, mapping.1)
    }

    /// Whether a datagram from `src` to public port `port` gets in.
    fn inbound(&self, src: SocketAddrV4, port: u16) -> bool {
        self.mappings
            .iter()
            .any(|m| m.1 == port && m.2.contains(&src))
    }

    /// Forget every mapping (a NAT reboot or rebinding): the next one gets
    /// `port`.
    fn rebind(&mut self, port: u16) {
        self.mappings.clear();
        self.next_port = port;
    }
}

struct Packet {
    at: Instant,
    from: SocketAddrV4,
    to: SocketAddrV4,
    data: Vec<u8>,
}

struct ServerNode {
    server: Server,
    up: bool,
}

struct Sim {
    now: Instant,
    client: Client<SplitMix64>,
    nat: Nat,
    servers: Vec<ServerNode>,
    in_flight: Vec<Packet>,
    /// Percentage of datagrams lost, in both directions.
    loss_percent: u64,
    loss_rng: SplitMix64,
    /// Drop the next `n` datagrams the client sends to this address.
    drop_next: Vec<(Ipv4Addr, usize)>,
    /// Addresses that never receive anything.
    blackhole: Vec<Ipv4Addr>,
    drain_events: bool,
    events: Vec<(Instant, Event)>,
    /// Every datagram the client sent, before loss.
    sent: Vec<(Instant, SocketAddrV4)>,
}

impl Sim {
    fn new(config: Config, kind: Filtering) -> Self {
        let servers = [SERVER, FALLBACK]
            .into_iter()
            .map(|primary| ServerNode {
                server: Server::new(server::Config::new(primary), Instant::ZERO),
                up: true,
            })
            .collect();
        Sim {
            now: Instant::ZERO,
            client: Client::new(config, SplitMix64::new(0x5eed), Instant::ZERO),
            nat: Nat::new(kind),
            servers,
            in_flight: Vec::new(),
            loss_percent: 0,
            loss_rng: SplitMix64::new(99),
            drop_next: Vec::new(),
            blackhole: Vec::new(),
            drain_events: true,
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn standard() -> Self {
        Sim::new(Config::new(SERVER), Filtering::PortRestricted)
    }

    fn set_up(&mut self, server: Ipv4Addr, up: bool) {
        for node in &mut self.servers {
            if node.server.config().primary == server {
                node.up = up;
            }
        }
    }

    fn lost(&mut self, to: Ipv4Addr) -> bool {
        if self.blackhole.contains(&to) {
            return true;
        }
        if let Some(entry) = self.drop_next.iter_mut().find(|e| e.0 == to && e.1 > 0) {
            entry.1 -= 1;
            return true;
        }
        self.loss_rng.next_u64() % 100 < self.loss_percent
    }

    fn send(&mut self, from: SocketAddrV4, to: SocketAddrV4, data: &[u8]) {
        if !self.lost(*to.ip()) {
            self.in_flight.push(Packet {
                at: self.now + LATENCY,
                from,
                to,
                data: data.to_vec(),
            });
        }
    }

    /// Drain the client's transmissions (through the NAT) and events.
    fn flush_client(&mut self) {
        let mut buf = [0u8; 1500];
        while let Some(tx) = self.client.poll_transmit(self.now, &mut buf) {
            let Destination::Udp(to) = tx.dest else {
                panic!("nothing goes to the tunnel here");
            };
            self.sent.push((self.now, to));
            let src = self.nat.outbound(to);
            self.send(src, to, &buf[..tx.len]);
        }
        while self.drain_events {
            let Some(event) = self.client.poll_event() else {
                break;
            };
            self.events.push((self.now, event));
        }
    }

    fn deliver(&mut self, packet: Packet) {
        if *packet.to.ip() == PUBLIC_IP {
            if self.nat.inbound(packet.from, packet.to.port()) {
                let mut out = [0u8; 1500];
                self.client
                    .handle_udp(self.now, packet.from, &packet.data, &mut out);
            }
            return;
        }
        let mut out = [0u8; 1500];
        let mut reply = None;
        for node in self.servers.iter_mut().filter(|n| n.up) {
            let config = *node.server.config();
            let local = if *packet.to.ip() == config.primary {
                Local::Primary
            } else if *packet.to.ip() == config.secondary {
                Local::Secondary
            } else {
                continue;
            };
            if let Action::SendUdp { from, to, data } =
                node.server
                    .handle_udp(self.now, local, packet.from, &packet.data, &mut out)
            {
                let from_ip = match from {
                    Local::Primary => config.primary,
                    Local::Secondary => config.secondary,
                };
                reply = Some((ep(from_ip), to, data.to_vec()));
            }
        }
        if let Some((from, to, data)) = reply {
            self.send(from, to, &data);
        }
    }

    /// Run the world until `end`, then set the clock to `end`.
    fn run_until(&mut self, end: Instant) {
        for _ in 0..1_000_000 {
            self.flush_client();
            let next_packet = self.in_flight.iter().map(|p| p.at).min();
            let next_timer = self.client.poll_timeout();
            let next = match (next_packet, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).expect("the client always has a timer"),
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            while let Some(i) = self.in_flight.iter().position(|p| p.at <= self.now) {
                let packet = self.in_flight.remove(i);
                self.deliver(packet);
            }
            if next_timer.is_some_and(|t| t <= self.now) {
                self.client.handle_timeout(self.now);
            }
        }
        panic!("simulation does not advance");
    }

    /// Call `requalify` at the current time, as the glue does on a netlink
    /// event.
    fn requalify(&mut self) {
        self.client.requalify(self.now);
        self.flush_client();
    }

    fn sent_between(&self, from: Instant, to: Instant) -> Vec<(Instant, SocketAddrV4)> {
        self.sent
            .iter()
            .copied()
            .filter(|&(t, _)| t >= from && t <= to)
            .collect()
    }

    fn address(&self) -> TeredoAddr {
        self.client.qualification().expect("qualified").address
    }
}

fn rtt_after(t: Instant) -> Instant {
    t + RTT
}

/// RSs to both addresses of the primary server at each of `times`.
fn both_at(times: &[Instant]) -> Vec<(Instant, SocketAddrV4)> {
    times
        .iter()
        .flat_map(|&t| [(t, ep(SERVER)), (t, ep(SERVER_2))])
        .collect()
}

#[test]
fn qualifies_in_one_rtt() {
    let mut sim = Sim::standard();
    sim.run_until(secs(1));
    assert_eq!(sim.sent, both_at(&[secs(0)]));
    let [(
        at,
        Event::Qualified {
            address,
            mtu,
            nat,
            server,
        },
    )] = sim.events[..]
    else {
        panic!("{:?}", sim.events);
    };
    assert_eq!(at, rtt_after(secs(0)));
    assert_eq!((mtu, server), (1280, SERVER));
    assert_eq!(
        nat,
        NatType {
            mapping: NatMapping::ConeOrRestricted,
            port_preserving: None,
        }
    );
    // The address decodes to the server and the NAT mapping, like V1
    // (2001:0:4136:e378:8000:63bf:3fff:fdd2) but with RFC 5991 flags.
    let v1: core::net::Ipv6Addr = "2001:0:4136:e378:8000:63bf:3fff:fdd2".parse().unwrap();
    let ipv6 = address.to_ipv6();
    assert_eq!(ipv6.segments()[..4], v1.segments()[..4]);
    assert_eq!(ipv6.segments()[5..], v1.segments()[5..]);
    let decoded = TeredoAddr::from_ipv6(ipv6, DEFAULT_PREFIX).unwrap();
    assert_eq!(decoded, address);
    assert_eq!(decoded.server(), SERVER);
    assert_eq!(decoded.mapped(), SocketAddrV4::new(PUBLIC_IP, FIRST_PORT));
    assert_eq!(
        decoded.flags() & !FLAG_RANDOM_MASK,
        0,
        "cone and reserved bits 0"
    );
    assert_ne!(decoded.flags(), 0, "random bits drawn");
    assert_eq!(sim.client.state(), State::Qualified);
    assert_eq!(sim.client.stats().rs_sent, 2);
    assert_eq!(sim.client.stats().ra_accepted, 2);
}

#[test]
fn port_preservation_is_reported() {
    for (local_port, preserving) in [(FIRST_PORT, true), (50000, false)] {
        let mut config = Config::new(SERVER);
        config.local_port = Some(local_port);
        let mut sim = Sim::new(config, Filtering::PortRestricted);
        sim.run_until(secs(1));
        let nat = sim.client.qualification().unwrap().nat;
        assert_eq!(nat.port_preserving, Some(preserving));
    }
}

#[test]
fn lost_rss_are_retried_every_4s() {
    for lost in 1..=2u64 {
        let mut sim = Sim::standard();
        sim.drop_next.push((SERVER, lost as usize));
        sim.run_until(secs(20));
        let mut expected = both_at(&[secs(0)]);
        for round in 1..=lost {
            expected.push((secs(4 * round), ep(SERVER)));
        }
        assert_eq!(sim.sent, expected, "{lost} lost");
        assert_eq!(sim.events.len(), 1);
        assert_eq!(sim.events[0].0, rtt_after(secs(4 * lost)), "{lost} lost");
        assert!(matches!(sim.events[0].1, Event::Qualified { .. }));
    }
}

#[test]
fn silent_server_goes_offline_after_3_times_4s_then_retries() {
    let mut sim = Sim::standard();
    sim.set_up(SERVER, false);
    sim.run_until(secs(41));
    assert_eq!(sim.sent, both_at(&[secs(0), secs(4), secs(8)]));
    assert_eq!(
        sim.events,
        [(
            secs(12),
            Event::Offline {
                server: SERVER,
                retry_at: secs(42),
            }
        )]
    );
    assert_eq!(sim.client.state(), State::Offline { retry_at: secs(42) });
    sim.run_until(secs(45));
    assert_eq!(sim.sent_between(secs(12), secs(45)), both_at(&[secs(42)]));
    // The server comes back: the next round (at 46 s) qualifies.
    sim.set_up(SERVER, true);
    sim.run_until(secs(60));
    assert_eq!(sim.events.len(), 2);
    assert_eq!(sim.events[1].0, rtt_after(secs(46)));
    assert!(matches!(sim.events[1].1, Event::Qualified { .. }));
}

#[test]
fn refreshes_follow_the_randomized_interval() {
    let mut sim = Sim::standard();
    sim.run_until(secs(3600));
    // Qualification, then refresh RSs to the primary address only.
    let refreshes = sim.sent_between(ms(1), secs(3600));
    assert!(refreshes.len() >= 120, "{}", refreshes.len());
    assert!(refreshes.iter().all(|&(_, to)| to == ep(SERVER)));
    let mut last_ra = rtt_after(secs(0));
    let mut gaps = Vec::new();
    for &(t, _) in &refreshes {
        let gap = t - last_ra;
        // RFC 4380 §5.2: 75–100 % of 30 s since the last server datagram.
        assert!(gap >= Duration::from_millis(22_500), "{gap:?}");
        assert!(gap <= Duration::from_secs(30), "{gap:?}");
        gaps.push(gap.total_millis());
        last_ra = rtt_after(t);
    }
    // The draws spread over the range rather than sitting at one end.
    assert!(gaps.iter().any(|&g| g < 24_000) && gaps.iter().any(|&g| g > 28_500));
    // Same mapping throughout: the address and its random bits never change.
    assert_eq!(sim.events.len(), 1);
}

#[test]
fn nat_rebinding_changes_the_address() {
    let mut sim = Sim::standard();
    sim.run_until(secs(100));
    let old = sim.address();
    sim.nat.rebind(50000);
    sim.run_until(secs(200));
    let refresh = sim.sent_between(secs(100), secs(200))[0].0;
    let [_, (at, Event::MappingChanged { old: was, new })] = sim.events[..] else {
        panic!("{:?}", sim.events);
    };
    assert_eq!(at, rtt_after(refresh));
    assert_eq!(was, old);
    assert_eq!(new.mapped(), SocketAddrV4::new(PUBLIC_IP, 50000));
    assert_eq!(new.server(), SERVER);
    assert_ne!(
        new.flags(),
        old.flags(),
        "new random bits with the new address"
    );
    assert_eq!(new.flags() & !FLAG_RANDOM_MASK, 0);
    assert_eq!(sim.address(), new);
}

#[test]
fn lost_server_is_reported_and_requalified_when_back() {
    let mut sim = Sim::standard();
    sim.run_until(secs(40));
    let address = sim.address();
    sim.set_up(SERVER, false);
    sim.run_until(secs(75));
    // First refresh after the server died (refreshes are ≤ 30 s apart).
    let t = sim.sent_between(secs(40), secs(75))[0].0;
    sim.run_until(t + Duration::from_secs(25));
    let after = |s: u64| t + Duration::from_secs(s);
    let mut expected = std::vec![
        (t, ep(SERVER)),
        (after(4), ep(SERVER)),
        (after(8), ep(SERVER))
    ];
    expected.extend(both_at(&[after(12), after(16), after(20)]));
    assert_eq!(sim.sent_between(t, after(25)), expected);
    assert_eq!(
        sim.events[1..],
        [
            (after(12), Event::Lost { address }),
            (
                after(24),
                Event::Offline {
                    server: SERVER,
                    retry_at: after(54),
                }
            ),
        ]
    );
    sim.set_up(SERVER, true);
    sim.run_until(after(60));
    assert_eq!(sim.events.len(), 4);
    assert_eq!(sim.events[3].0, rtt_after(after(54)));
    // Same mapping, so the same address, random bits included.
    assert!(matches!(sim.events[3].1, Event::Qualified { address: a, .. } if a == address));
}

#[test]
fn symmetric_nat_is_reported() {
    let mut sim = Sim::new(Config::new(SERVER), Filtering::Symmetric);
    sim.run_until(secs(30));
    assert_eq!(
        sim.events,
        [(
            rtt_after(secs(0)),
            Event::SymmetricNat {
                server: SERVER,
                primary: SocketAddrV4::new(PUBLIC_IP, FIRST_PORT),
                secondary: SocketAddrV4::new(PUBLIC_IP, FIRST_PORT + 1),
                retry_at: rtt_after(secs(30)),
            }
        )]
    );
    assert_eq!(sim.client.qualification(), None);
    assert_eq!(
        sim.client.state(),
        State::Offline {
            retry_at: rtt_after(secs(30))
        }
    );
    // Tested again after the restart delay, with the same result.
    sim.run_until(secs(31));
    assert_eq!(
        sim.sent_between(ms(1), secs(31)),
        both_at(&[rtt_after(secs(30))])
    );
    assert_eq!(sim.events.len(), 2);
    assert_eq!(sim.events[1].0, rtt_after(rtt_after(secs(30))));
    assert!(matches!(sim.events[1].1, Event::SymmetricNat { .. }));
}

#[test]
fn silent_secondary_still_qualifies() {
    let mut sim = Sim::standard();
    sim.blackhole.push(SERVER_2);
    sim.run_until(secs(13));
    let mut expected = both_at(&[secs(0)]);
    expected.extend([(secs(4), ep(SERVER_2)), (secs(8), ep(SERVER_2))]);
    assert_eq!(sim.sent, expected);
    let [(at, Event::Qualified { nat, .. })] = sim.events[..] else {
        panic!("{:?}", sim.events);
    };
    assert_eq!(at, secs(12));
    assert_eq!(nat.mapping, NatMapping::SecondaryNoReply);
}

#[test]
fn no_secondary_configured_skips_the_test() {
    let mut config = Config::new(SERVER);
    config.server_secondary = None;
    let mut sim = Sim::new(config, Filtering::Symmetric);
    sim.run_until(secs(1));
    assert_eq!(sim.sent, [(secs(0), ep(SERVER))]);
    let [(_, Event::Qualified { nat, .. })] = sim.events[..] else {
        panic!("{:?}", sim.events);
    };
    assert_eq!(nat.mapping, NatMapping::NotTested);
}

#[test]
fn requalify_keeps_an_unchanged_address_and_reports_a_new_one() {
    let mut sim = Sim::standard();
    sim.run_until(secs(10));
    let old = sim.address();
    sim.requalify();
    sim.run_until(secs(20));
    assert_eq!(sim.sent_between(secs(10), secs(20)), both_at(&[secs(10)]));
    assert_eq!(sim.events.len(), 1, "nothing changed, nothing to report");
    assert_eq!(sim.address(), old);
    // The host moved: new public mapping.
    sim.nat.rebind(50000);
    sim.requalify();
    sim.run_until(secs(21));
    assert_eq!(sim.sent_between(secs(20), secs(21)), both_at(&[secs(20)]));
    let [_, (at, Event::MappingChanged { old: was, new })] = sim.events[..] else {
        panic!("{:?}", sim.events);
    };
    assert_eq!((at, was), (rtt_after(secs(20)), old));
    assert_eq!(new.mapped().port(), 50000);
    assert_eq!(sim.client.state(), State::Qualified);
}

#[test]
fn fallback_server_is_used_when_the_primary_is_dead() {
    let mut sim = Sim::new(
        Config::new(SERVER).with_fallback(FALLBACK),
        Filtering::PortRestricted,
    );
    sim.set_up(SERVER, false);
    sim.run_until(secs(20));
    let mut expected = both_at(&[secs(0), secs(4), secs(8)]);
    expected.extend([(secs(12), ep(FALLBACK)), (secs(12), ep(FALLBACK_2))]);
    assert_eq!(sim.sent, expected);
    assert_eq!(
        sim.events[0],
        (
            secs(12),
            Event::ServerSwitch {
                from: SERVER,
                to: FALLBACK,
            }
        )
    );
    let (
        at,
        Event::Qualified {
            address, server, ..
        },
    ) = sim.events[1]
    else {
        panic!("{:?}", sim.events);
    };
    assert_eq!(
        (at, server, address.server()),
        (rtt_after(secs(12)), FALLBACK, FALLBACK)
    );
    // Refreshes go to the fallback. When it dies (and the primary is back),
    // the loss sends the client back to the primary at once.
    sim.set_up(FALLBACK, false);
    sim.set_up(SERVER, true);
    sim.run_until(secs(100));
    let t = sim.sent_between(secs(13), secs(100))[0];
    assert_eq!(t.1, ep(FALLBACK));
    let lost_at = t.0 + Duration::from_secs(12);
    assert_eq!(sim.events[2], (lost_at, Event::Lost { address }));
    let (at, Event::Qualified { server, .. }) = sim.events[3] else {
        panic!("{:?}", sim.events);
    };
    assert_eq!((at, server), (rtt_after(lost_at), SERVER));
}

#[test]
fn all_servers_dead_pauses_after_trying_each() {
    let mut sim = Sim::new(
        Config::new(SERVER).with_fallback(FALLBACK),
        Filtering::PortRestricted,
    );
    sim.set_up(SERVER, false);
    sim.set_up(FALLBACK, false);
    sim.run_until(secs(60));
    assert_eq!(
        sim.events,
        [
            (
                secs(12),
                Event::ServerSwitch {
                    from: SERVER,
                    to: FALLBACK
                }
            ),
            (
                secs(24),
                Event::Offline {
                    server: FALLBACK,
                    retry_at: secs(54),
                }
            ),
        ]
    );
    // A new cycle starts with the primary server.
    assert_eq!(sim.sent_between(secs(25), secs(57)), both_at(&[secs(54)]));
}

#[test]
fn event_queue_keeps_the_newest() {
    let mut sim = Sim::standard();
    sim.set_up(SERVER, false);
    sim.drain_events = false;
    // An Offline event every 42 s; 10 of them overflow the queue by 2.
    sim.run_until(secs(42 * 10 - 1));
    assert_eq!(
        sim.client.stats().events_dropped,
        10 - EVENT_CAPACITY as u64
    );
    let mut left = Vec::new();
    while let Some(event) = sim.client.poll_event() {
        left.push(event);
    }
    assert_eq!(left.len(), EVENT_CAPACITY);
    assert_eq!(
        left.last(),
        Some(&Event::Offline {
            server: SERVER,
            retry_at: secs(42 * 10),
        })
    );
}

#[test]
fn lossy_network_soak() {
    let mut sim = Sim::standard();
    sim.loss_percent = 30;
    sim.run_until(secs(4 * 3600));
    // Events tell a consistent story: an address appears, changes or goes.
    let mut qualified = false;
    let mut ups = 0;
    for &(_, event) in &sim.events {
        match event {
            Event::Qualified { .. } => {
                assert!(!qualified);
                qualified = true;
                ups += 1;
            }
            Event::Lost { .. } => {
                assert!(qualified);
                qualified = false;
            }
            Event::Offline { .. } | Event::SymmetricNat { .. } => assert!(!qualified),
            Event::MappingChanged { .. } | Event::MtuChanged { .. } => assert!(qualified),
            Event::ServerSwitch { .. } => {}
        }
    }
    assert!(ups >= 1);
    assert_eq!(qualified, sim.client.qualification().is_some());
    // With 30 % loss each way an exchange fails (three RSs or RAs lost)
    // rarely; the client is qualified most of the time.
    assert!(sim.client.stats().ra_accepted > 400);
}
