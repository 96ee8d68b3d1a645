//! Tests of the whole table: index, eviction, expiry, queues, and a model
//! check against `std::collections::HashMap`.

use super::*;
use core::net::{Ipv4Addr, SocketAddrV4};
use proptest::prelude::*;
use std::boxed::Box;
use std::collections::{HashMap, VecDeque};
use std::vec;
use std::vec::Vec;

const KEY: [u8; 16] = *b"shipworm-peers!!";

fn addr(i: u32) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, (i >> 16) as u16, i as u16)
}

fn map(i: u32) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(192, 0, 2, (i % 250) as u8 + 1),
        1024 + i as u16,
    )
}

fn t(ms: u64) -> Instant {
    Instant::from_secs(10_000) + Duration::from_millis(ms)
}

fn secs(s: u64) -> Instant {
    t(s * 1000)
}

type Small = PeerTable<8, 16, 6, 16>;

#[test]
fn entry_is_64_bytes() {
    assert_eq!(core::mem::size_of::<Peer>(), 64);
    std::println!(
        "Peer: {} B; ClientPeerTable: {} B; RelayPeerTable: {} B",
        core::mem::size_of::<Peer>(),
        core::mem::size_of::<ClientPeerTable>(),
        core::mem::size_of::<RelayPeerTable>()
    );
}

#[test]
fn insert_lookup_remove_at_capacity() {
    let mut tab = PeerTable::<64, 128, 4, 64>::new(KEY);
    for i in 0..64 {
        let ins = tab
            .insert(
                Peer::new_for_direct_bubble(addr(i), map(i), secs(0)),
                secs(0),
            )
            .unwrap();
        assert_eq!(ins.evicted, None);
        assert_eq!(tab.peer(ins.id).unwrap().addr(), addr(i));
    }
    tab.check_invariants();
    assert_eq!(tab.len(), 64);
    for i in 0..64 {
        let id = tab.lookup(&addr(i)).expect("present");
        assert_eq!(tab.peer(id).unwrap().mapping(), map(i));
    }
    assert_eq!(tab.lookup(&addr(64)), None);
    assert_eq!(
        tab.insert(
            Peer::new_for_direct_bubble(addr(5), map(5), secs(0)),
            secs(0)
        ),
        Err(InsertError::Exists(tab.lookup(&addr(5)).unwrap()))
    );
    // Full: the 65th evicts one of the others.
    let ins = tab
        .insert(
            Peer::new_for_direct_bubble(addr(64), map(64), secs(1)),
            secs(1),
        )
        .unwrap();
    let gone = ins.evicted.expect("evicted").addr();
    assert_eq!(tab.lookup(&gone), None);
    assert_eq!(tab.len(), 64);
    tab.check_invariants();
    // Remove everything, checking the others stay reachable each time.
    let mut left: Vec<u32> = (0..=64).filter(|&i| addr(i) != gone).collect();
    while let Some(i) = left.pop() {
        assert_eq!(tab.remove(&addr(i)).map(|p| p.addr()), Some(addr(i)));
        assert_eq!(tab.remove(&addr(i)), None);
        for &j in &left {
            assert!(tab.lookup(&addr(j)).is_some());
        }
        tab.check_invariants();
    }
    assert!(tab.is_empty());
}

#[test]
fn relay_sized_table() {
    // A 10,240-entry table is about 1.4 MiB: build it on a big-stack thread.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut tab = Box::new(PeerTable::<10_240, 16_384, 8, 1280>::new(KEY));
            for i in 0..10_240 {
                let p = Peer::new_from_teredo_source(addr(i), map(i), secs(0));
                assert!(tab.insert(p, secs(0)).unwrap().evicted.is_none());
            }
            for i in (0..10_240).step_by(2) {
                assert!(tab.remove(&addr(i)).is_some());
            }
            for i in 0..10_240 {
                assert_eq!(tab.lookup(&addr(i)).is_some(), i % 2 == 1, "peer {i}");
            }
            tab.check_invariants();
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn queue_is_fifo_bounded_and_moves_to_dropped_on_removal() {
    let mut tab = PeerTable::<4, 8, 4, 8>::new(KEY);
    tab.set_max_queue_bytes(20);
    let a = tab
        .insert(
            Peer::new_for_direct_bubble(addr(1), map(1), secs(0)),
            secs(0),
        )
        .unwrap()
        .id;
    for pkt in [&b"first"[..], b"second", b"third"] {
        tab.enqueue(a, pkt).unwrap();
    }
    assert_eq!(tab.queued_bytes(a), 16);
    assert_eq!(tab.enqueue(a, b"fourth"), Err(QueueFull::PeerLimit));
    assert_eq!(tab.enqueue(a, b"123456789"), Err(QueueFull::TooLong));
    let mut buf = [0u8; 8];
    assert_eq!(tab.dequeue_into(a, &mut buf), Some(5));
    assert_eq!(&buf[..5], b"first");
    tab.enqueue(a, b"fourth").unwrap();
    let removed = tab.remove(&addr(1)).unwrap();
    assert_eq!(removed.addr(), addr(1));
    assert_eq!(tab.enqueue(a, b"x"), Err(QueueFull::NoSuchPeer));
    let mut dropped = Vec::new();
    while let Some(n) = tab.pop_dropped_into(&mut buf) {
        dropped.push(buf[..n].to_vec());
    }
    assert_eq!(dropped, [&b"second"[..], b"third", b"fourth"]);
    tab.check_invariants();
}

#[test]
fn pool_exhaustion_is_global_and_clear_frees() {
    let mut tab = PeerTable::<4, 8, 3, 8>::new(KEY);
    let a = tab
        .insert(
            Peer::new_for_direct_bubble(addr(1), map(1), secs(0)),
            secs(0),
        )
        .unwrap()
        .id;
    let b = tab
        .insert(
            Peer::new_for_direct_bubble(addr(2), map(2), secs(0)),
            secs(0),
        )
        .unwrap()
        .id;
    tab.enqueue(a, b"a1").unwrap();
    tab.enqueue(a, b"a2").unwrap();
    tab.enqueue(b, b"b1").unwrap();
    assert_eq!(tab.enqueue(b, b"b2"), Err(QueueFull::PoolExhausted));
    tab.clear(a);
    assert!(!tab.has_queued(a));
    tab.enqueue(b, b"b2").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(tab.dequeue_into(b, &mut buf), Some(2));
    assert_eq!(&buf[..2], b"b1");
    tab.check_invariants();
}

/// Build a full 8-entry table with two entries of each eviction rank and
/// check they go in rank order, oldest first within a rank, then `Full`.
#[test]
fn eviction_order() {
    let mut tab = Small::new(KEY);
    let now = secs(1000);
    let idle = |s: u64| secs(1000 - 40 - s); // beyond the 30 s protection
    let recent = |s: u64| secs(1000 - s); // within it
                                          // Rank 0: untrusted, invalid, nothing queued.
    tab.insert(Peer::new_for_direct_bubble(addr(0), map(0), idle(5)), now)
        .unwrap();
    tab.insert(Peer::new_for_direct_bubble(addr(1), map(1), idle(9)), now)
        .unwrap();
    // Rank 1: untrusted with a queue.
    for i in [2, 3] {
        let id = tab
            .insert(
                Peer::new_for_direct_bubble(addr(i), map(i), idle(i as u64)),
                now,
            )
            .unwrap()
            .id;
        tab.enqueue(id, b"q").unwrap();
    }
    // Rank 2: trusted but idle.
    tab.insert(Peer::new_from_teredo_source(addr(4), map(4), idle(20)), now)
        .unwrap();
    tab.insert(Peer::new_from_teredo_source(addr(5), map(5), idle(1)), now)
        .unwrap();
    // Rank 3: untrusted, a bubble sent recently.
    let id = tab
        .insert(Peer::new_for_direct_bubble(addr(6), map(6), now), now)
        .unwrap()
        .id;
    tab.peer_mut(id).unwrap().record_bubble(recent(3));
    // Never evicted: trusted and active.
    tab.insert(
        Peer::new_from_teredo_source(addr(7), map(7), recent(1)),
        now,
    )
    .unwrap();
    // New arrivals are trusted and active too, so only the old ones go.
    let mut order = Vec::new();
    for i in 100..108 {
        match tab.insert(Peer::new_from_teredo_source(addr(i), map(i), now), now) {
            Ok(ins) => order.push(ins.evicted.unwrap().addr()),
            Err(e) => {
                assert_eq!(e, InsertError::Full);
                break;
            }
        }
        tab.check_invariants();
    }
    let expect: Vec<Ipv6Addr> = [1, 0, 3, 2, 4, 5, 6].into_iter().map(addr).collect();
    assert_eq!(order, expect);
    assert!(tab.lookup(&addr(7)).is_some());
    // The queued packets of the evicted rank-1 entries were kept for ICMPv6.
    let mut buf = [0u8; 16];
    assert_eq!(tab.pop_dropped_into(&mut buf), Some(1));
    assert_eq!(tab.pop_dropped_into(&mut buf), Some(1));
    assert_eq!(tab.pop_dropped_into(&mut buf), None);
}

/// RFC 4380 §7.3 / relay checklist 14: a flood of 10 × N new (spoofed)
/// peers, each bubbled as a relay would, while a set of trusted peers keeps
/// exchanging traffic, evicts none of the trusted peers.
#[test]
fn flood_keeps_active_trusted_peers() {
    const N: usize = 1024;
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| {
            let mut tab = Box::new(PeerTable::<N, 2048, 8, 128>::new(KEY));
            let trusted: Vec<u32> = (0..300).map(|i| 1_000_000 + i).collect();
            for &i in &trusted {
                tab.insert(Peer::new_from_teredo_source(addr(i), map(i), t(0)), t(0))
                    .unwrap();
            }
            // Some idle trusted peers that may legitimately go.
            for i in 0..100 {
                let old = Peer::new_from_teredo_source(addr(2_000_000 + i), map(i), t(0));
                tab.insert(old, t(0)).unwrap();
            }
            let flood = 10 * N as u32;
            let mut full = 0;
            for k in 0..flood {
                // 10 × N arrivals over 100 s of virtual time.
                let now = t(u64::from(k) * 100_000 / u64::from(flood));
                // Active trusted peers send and receive every 5 s.
                if k % 512 == 0 {
                    for &i in &trusted {
                        let p = tab.get_mut(&addr(i)).expect("trusted peer evicted");
                        p.record_direct_response(now);
                        p.record_tx(now);
                    }
                }
                let mut p = Peer::new_for_direct_bubble(addr(k), map(k), now);
                p.record_bubble(now);
                match tab.insert(p, now) {
                    Ok(ins) => {
                        if let Some(ev) = ins.evicted {
                            assert!(!trusted.contains(
                                &(ev.addr().segments()[7] as u32
                                    | (u32::from(ev.addr().segments()[6]) << 16))
                            ));
                        }
                        let _ = tab.enqueue(ins.id, &[0x60; 100]);
                    }
                    Err(InsertError::Full) => full += 1,
                    Err(InsertError::Exists(_)) => unreachable!(),
                }
            }
            for &i in &trusted {
                assert!(tab.lookup(&addr(i)).is_some(), "trusted peer {i} evicted");
            }
            assert_eq!(full, 0, "flood entries always find an untrusted victim");
            assert_eq!(tab.len(), N);
            tab.check_invariants();
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn expire_removes_idle_entries_in_bounded_steps() {
    let mut tab = PeerTable::<64, 128, 8, 16>::new(KEY);
    for i in 0..64 {
        let id = tab
            .insert(
                Peer::new_from_teredo_source(addr(i), map(i), secs(0)),
                secs(0),
            )
            .unwrap()
            .id;
        if i % 8 == 0 {
            tab.enqueue(id, &[i as u8; 4]).unwrap();
        }
    }
    // Half stay active.
    for i in (0..64).step_by(2) {
        tab.get_mut(&addr(i)).unwrap().record_tx(secs(50));
    }
    let now = secs(60);
    let mut removed = 0;
    for _ in 0..100 {
        removed += tab.expire(now, 5);
        tab.check_invariants();
    }
    assert_eq!(removed, 32);
    for i in 0..64 {
        assert_eq!(tab.lookup(&addr(i)).is_some(), i % 2 == 0, "peer {i}");
    }
    // Expired peers with queues: none (all queued ones were even = active).
    assert_eq!(tab.pop_dropped_into(&mut [0; 16]), None);
    assert_eq!(tab.expire(secs(200), 1000), 32);
    assert!(tab.is_empty());
    let mut n = 0;
    while tab.pop_dropped_into(&mut [0; 16]).is_some() {
        n += 1;
    }
    assert_eq!(n, 8);
    assert_eq!(tab.expire(secs(200), 10), 0);
}

/// Operations of the model check. Keys index a small address space so that
/// the 8-entry table fills, evicts and collides in its 16 buckets.
#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u8),
    Remove(u8),
    Advance(u32),
    Rx(u8),
    Trust(u8),
    Bubble(u8),
    Enqueue(u8, u8),
    Dequeue(u8),
    Clear(u8),
    PopDropped,
    Expire(u8),
    Stale(u32, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..20;
    prop_oneof![
        4 => (k.clone(), 0u8..3).prop_map(|(k, kind)| Op::Insert(k, kind)),
        2 => k.clone().prop_map(Op::Remove),
        2 => (0u32..40_000).prop_map(Op::Advance),
        1 => k.clone().prop_map(Op::Rx),
        1 => k.clone().prop_map(Op::Trust),
        1 => k.clone().prop_map(Op::Bubble),
        4 => (k.clone(), 0u8..20).prop_map(|(k, n)| Op::Enqueue(k, n)),
        2 => k.clone().prop_map(Op::Dequeue),
        1 => k.clone().prop_map(Op::Clear),
        1 => Just(Op::PopDropped),
        1 => (0u8..20).prop_map(Op::Expire),
        1 => (any::<u32>(), 0u8..4).prop_map(|(i, what)| Op::Stale(i, what)),
    ]
}

/// The model: peers by address, each peer's queue, the dropped queue.
#[derive(Default)]
struct Model {
    peers: HashMap<Ipv6Addr, Peer>,
    queues: HashMap<Ipv6Addr, VecDeque<Vec<u8>>>,
    dropped: VecDeque<Vec<u8>>,
}

impl Model {
    fn live_packets(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    fn drop_queue_of(&mut self, a: &Ipv6Addr) {
        if let Some(q) = self.queues.remove(a) {
            self.dropped.extend(q);
        }
    }

    /// Eviction key as the table ranks it (None = never evicted).
    fn rank(p: &Peer, queued: bool, now: Instant) -> Option<(u8, Instant)> {
        let active = now - p.last_activity() < DEFAULT_PROTECTION;
        let r = match (active, p.is_trusted()) {
            (true, true) => return None,
            (true, false) => 3,
            (false, true) => 2,
            (false, false) if p.is_valid(now) || queued => 1,
            (false, false) => 0,
        };
        Some((r, p.last_activity()))
    }
}

fn run(ops: Vec<Op>) {
    let mut tab = Small::new(KEY);
    tab.set_max_queue_bytes(40);
    let mut m = Model::default();
    let mut now = secs(0);
    let mut serial = 0u8;
    let mut buf = [0u8; 16];
    for op in ops {
        match op {
            Op::Insert(k, kind) => {
                let a = addr(k.into());
                let p = match kind {
                    0 => Peer::new_for_direct_bubble(a, map(k.into()), now),
                    1 => Peer::new_from_teredo_source(a, map(k.into()), now),
                    _ => Peer::new_for_echo_test(a, now),
                };
                let min_rank = m
                    .peers
                    .values()
                    .filter_map(|q| {
                        let queued = m.queues.get(&q.addr()).is_some_and(|x| !x.is_empty());
                        Model::rank(q, queued, now)
                    })
                    .min();
                match tab.insert(p.clone(), now) {
                    Ok(ins) => {
                        assert!(!m.peers.contains_key(&a));
                        if let Some(ev) = ins.evicted {
                            assert_eq!(m.peers.len(), 8);
                            let mp = m.peers.remove(&ev.addr()).expect("victim was held");
                            assert_eq!(mp, ev);
                            let queued = m.queues.get(&ev.addr()).is_some_and(|x| !x.is_empty());
                            // The table scans all 8 entries: the victim is a best one.
                            assert_eq!(Model::rank(&ev, queued, now), min_rank);
                            m.drop_queue_of(&ev.addr());
                        }
                        assert_eq!(tab.peer(ins.id), Some(&p));
                        m.peers.insert(a, p);
                    }
                    Err(InsertError::Exists(id)) => {
                        assert_eq!(tab.peer(id).map(Peer::addr), Some(a));
                        assert!(m.peers.contains_key(&a));
                    }
                    Err(InsertError::Full) => {
                        assert_eq!(min_rank, None, "refused although a victim existed");
                        assert_eq!(m.peers.len(), 8);
                    }
                }
            }
            Op::Remove(k) => {
                let a = addr(k.into());
                assert_eq!(tab.remove(&a), m.peers.remove(&a));
                m.drop_queue_of(&a);
            }
            Op::Advance(ms) => now += Duration::from_millis(ms.into()),
            Op::Rx(k) | Op::Trust(k) | Op::Bubble(k) => {
                let a = addr(k.into());
                let f = |p: &mut Peer| match op {
                    Op::Rx(_) => p.record_direct_response(now),
                    Op::Trust(_) => p.mark_trusted(map(99), now),
                    _ => {
                        if p.may_send_bubble(now) {
                            p.record_bubble(now)
                        }
                    }
                };
                tab.get_mut(&a).map(f);
                m.peers.get_mut(&a).map(f);
            }
            Op::Enqueue(k, n) => {
                let a = addr(k.into());
                serial = serial.wrapping_add(1);
                let pkt = std::vec![serial; n.into()];
                let Some(id) = tab.lookup(&a) else {
                    assert!(!m.peers.contains_key(&a));
                    continue;
                };
                let q = m.queues.entry(a).or_default();
                let bytes: usize = q.iter().map(Vec::len).sum();
                let expect = if pkt.len() > 16 {
                    Err(QueueFull::TooLong)
                } else if bytes + pkt.len() > 40 {
                    Err(QueueFull::PeerLimit)
                } else if m.live_packets() == 6 {
                    Err(QueueFull::PoolExhausted)
                } else {
                    Ok(())
                };
                assert_eq!(tab.enqueue(id, &pkt), expect);
                if expect.is_ok() {
                    if m.live_packets() + m.dropped.len() == 6 {
                        m.dropped.pop_front(); // reclaimed
                    }
                    m.queues.entry(a).or_default().push_back(pkt);
                }
            }
            Op::Dequeue(k) => {
                let a = addr(k.into());
                let got = tab
                    .lookup(&a)
                    .and_then(|id| tab.dequeue_into(id, &mut buf))
                    .map(|n| buf[..n].to_vec());
                let want = m.queues.get_mut(&a).and_then(VecDeque::pop_front);
                assert_eq!(got, want);
            }
            Op::Clear(k) => {
                let a = addr(k.into());
                if let Some(id) = tab.lookup(&a) {
                    tab.clear(id);
                }
                m.queues.remove(&a);
            }
            Op::PopDropped => {
                let got = tab.pop_dropped_into(&mut buf).map(|n| buf[..n].to_vec());
                assert_eq!(got, m.dropped.pop_front());
            }
            Op::Expire(budget) => {
                let before = tab.len();
                let removed = tab.expire(now, budget.into());
                assert_eq!(tab.len(), before - removed);
                let idle: Vec<Ipv6Addr> = m
                    .peers
                    .values()
                    .filter(|p| now - p.last_activity() >= DEFAULT_IDLE_TIMEOUT)
                    .map(Peer::addr)
                    .collect();
                // Removal order follows storage positions, which the model
                // does not know: drain the dropped queue and compare it as
                // "old drops in order, then the expired peers' packets".
                let mut expired_packets = Vec::new();
                for a in &idle {
                    if tab.lookup(a).is_none() {
                        m.peers.remove(a);
                        if let Some(q) = m.queues.remove(a) {
                            expired_packets.extend(q);
                        }
                    }
                }
                if usize::from(budget) >= 2 * before {
                    assert_eq!(removed, idle.len(), "a full sweep removes all idle");
                }
                assert_eq!(m.peers.len(), tab.len());
                let mut drained = Vec::new();
                while let Some(n) = tab.pop_dropped_into(&mut buf) {
                    drained.push(buf[..n].to_vec());
                }
                let old: Vec<Vec<u8>> = m.dropped.drain(..).collect();
                assert_eq!(&drained[..old.len()], &old[..]);
                let mut rest = drained[old.len()..].to_vec();
                rest.sort();
                expired_packets.sort();
                assert_eq!(rest, expired_packets);
            }
            Op::Stale(i, what) => {
                let id = PeerId(i % 12);
                let valid = (id.0 as usize) < tab.len();
                match what {
                    0 => assert_eq!(tab.peer(id).is_some(), valid),
                    1 => assert!(tab.queued_bytes(id) == 0 || valid),
                    2 if !valid => {
                        assert_eq!(tab.enqueue(id, b"x"), Err(QueueFull::NoSuchPeer));
                        assert_eq!(tab.dequeue_into(id, &mut buf), None);
                        tab.clear(id);
                        assert_eq!(tab.remove_id(id), None);
                    }
                    _ => {}
                }
            }
        }
        tab.check_invariants();
        assert_eq!(tab.len(), m.peers.len());
        for k in 0..20u32 {
            let a = addr(k);
            assert_eq!(tab.get(&a), m.peers.get(&a), "peer {k}");
            let want: usize = m.queues.get(&a).map_or(0, |q| q.iter().map(Vec::len).sum());
            assert_eq!(tab.lookup(&a).map_or(0, |id| tab.queued_bytes(id)), want);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random operation sequences agree with a HashMap model and never
    /// break an invariant or panic (tombstone-free deletion included).
    #[test]
    fn matches_model(ops in prop::collection::vec(op(), 1..200)) {
        run(ops);
    }
}
