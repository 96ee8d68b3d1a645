//! Reception: datagrams on the service port that are not Router
//! Advertisements (RFC 4380 §5.2.3, RFC 6081 §4; Miredo's order and its
//! interop rules, miredo.md §3.7 and §9).

use core::net::{Ipv6Addr, SocketAddrV4};

use smoltcp::wire::Ipv6Packet;

use super::datapath::{DataDrop, DataPath, Link};
use super::{bump, Output, Stats};
use crate::addr;
use crate::peers::{Peer, PeerId};
use crate::time::Instant;
use crate::tunnel::{emit_bubble, PendingBubble};
use crate::wire::bubble;
use crate::wire::echo::{EchoKind, EchoRepr};
use crate::wire::encap::{self, Trailers};

use super::echo_test::ECHO_IDENT;

impl<const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>
    DataPath<N, B, SLOTS, SLOT_SIZE>
{
    /// One datagram from `remote` (`None` if it is not a Teredo payload):
    /// delivered to the tunnel (borrowing the datagram), answered (a bubble
    /// or an echo request in `out`), or consumed.
    pub(super) fn handle_udp<'a>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        repr: Option<encap::Repr<'a>>,
        out: &'a mut [u8],
        stats: &mut Stats,
    ) -> Output<'a> {
        // Every drop is counted here, once.
        self.receive(now, remote, repr, out, stats)
            .unwrap_or_else(|reason| {
                stats.count_data_drop(reason);
                Output::None
            })
    }

    /// [`Self::handle_udp`], with the reason of a drop as the error.
    fn receive<'a>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        repr: Option<encap::Repr<'a>>,
        out: &'a mut [u8],
        stats: &mut Stats,
    ) -> Result<Output<'a>, DataDrop> {
        let link = self.link.ok_or(DataDrop::NotQualified)?;
        // Not a Teredo payload, or an IPv6 packet longer than the datagram:
        // drop silently (RFC 4380 §5.2.3; trailing bytes are RFC 6081
        // trailers, §4).
        let repr = repr.ok_or(DataDrop::Malformed)?;
        let header = Ipv6Packet::new_checked(repr.ipv6).map_err(|_| DataDrop::Malformed)?;
        if Trailers::new(repr.trailers).any(|t| t.must_drop()) {
            return Err(DataDrop::Trailer);
        }
        let (src, dst) = (header.src_addr(), header.dst_addr());
        let is_bubble = bubble::is_bubble(repr.ipv6);
        let ours = link.ours();
        if remote == link.server {
            if let Some(reply) = self.server_answer(&link, src, dst, is_bubble, repr.origin) {
                if is_bubble {
                    bump(&mut stats.bubbles_received);
                    return Ok(match emit_bubble(ours, reply.dst, out, stats) {
                        Some(len) => {
                            bump(&mut stats.bubbles_sent);
                            Output::Udp {
                                to: reply.to,
                                data: out.get(..len).unwrap_or(&[]),
                            }
                        }
                        None => Output::None,
                    });
                }
                self.peering.sched.pending = Some(reply);
            }
            if is_bubble {
                // Bubbles only open NAT state; never delivered.
                bump(&mut stats.bubbles_received);
                return Ok(Output::None);
            }
            // Other packets go on: the server may be a relay too.
        }
        if addr::is_link_local(src) {
            return Err(DataDrop::LinkLocalSource);
        }
        // Link-local destinations only for bubbles (answers to a peer's
        // tagged bubble source); multicast never.
        if dst != ours && !(is_bubble && addr::is_link_local(dst)) {
            return Err(DataDrop::WrongDestination);
        }
        let id = self.peering.peers.lookup(&src);
        // Rule 2, checked before rule 1: an echo reply carrying our nonce,
        // from any IPv4/port (the relay closest to the peer), even if the
        // entry was evicted since. It answers our connectivity test, so it
        // is ours and never the host's, even when it comes through a relay
        // already trusted (rule 1 would deliver it); and it settles the
        // packets held for its source.
        if is_our_echo_reply(repr.ipv6) {
            let verified = EchoRepr::parse(repr.ipv6).is_ok_and(|echo| {
                echo.kind == EchoKind::Reply && self.echo.verify(ours, &echo, now)
            });
            if verified {
                let new = Peer::new_for_echo_test(src, now);
                self.peering.trust(now, id, new, remote, stats);
                // Rule 6's held packets: those through this relay go to the
                // tunnel (from `poll_transmit`), the rest never.
                for _ in 0..self.held.verified(now, src, remote) {
                    stats.count_data_drop(DataDrop::WrongRelay);
                }
                return Ok(Output::None);
            }
        }
        // Rule 1: trusted entry, packet from its mapping.
        if let Some(id) = id {
            if let Some(peer) = self.peering.peers.peer_mut(id) {
                if peer.is_trusted() && peer.mapping() == remote {
                    peer.record_direct_response(now);
                    self.peering.wake_if_queued(now, id);
                    return Ok(deliver(repr.ipv6, is_bubble, stats));
                }
            }
        }
        // An echo reply in our test's format that did not verify, from
        // anyone but a trusted peer: a forgery or a stale answer.
        if is_our_echo_reply(repr.ipv6) {
            return Err(DataDrop::BadEchoNonce);
        }
        // Rule 3: a Teredo source whose embedded mapping is the UDP source.
        if let Some(teredo) = link.teredo(src) {
            if teredo.mapped() != remote {
                return Err(DataDrop::SpoofedTeredoSource);
            }
            let new = Peer::new_from_teredo_source(src, remote, now);
            // No room for an entry: delivering the packet is still right.
            self.peering.trust(now, id, new, remote, stats);
            return Ok(deliver(repr.ipv6, is_bubble, stats));
        }
        // Rule 6: a native source through a relay we have not verified.
        let id = self
            .test_entry(now, id, src, stats)
            .ok_or(DataDrop::Unverified)?;
        if is_bubble {
            // Nothing to deliver later: a bubble is consumed anyway.
            stats.count_data_drop(DataDrop::Unverified);
        } else {
            self.hold_inbound(now, id, src, remote, repr.ipv6, stats);
        }
        Ok(self.test_source(now, &link, id, src, out, stats))
    }

    /// RFC 4380 §5.2.3, a packet from our server: the bubble that answers
    /// it, if it carries an origin indication (the hole punch for an
    /// indirect bubble, miredo.md §3.7 and §9). Without one, a bubble's
    /// origin is taken from its Teredo source, as Miredo does. The answer
    /// goes from our address to the packet's source (which may be a relay's
    /// tagged link-local address), and only to a global IPv4.
    fn server_answer(
        &self,
        link: &Link,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        is_bubble: bool,
        origin: Option<SocketAddrV4>,
    ) -> Option<PendingBubble> {
        if dst != link.ours() || src.is_multicast() || src.is_unspecified() {
            return None;
        }
        let origin = origin.or_else(|| {
            is_bubble
                .then(|| link.teredo(src).map(|t| t.mapped()))
                .flatten()
        })?;
        addr::is_global_unicast(*origin.ip()).then_some(PendingBubble {
            to: origin,
            src: link.ours(),
            dst: src,
        })
    }

    /// Rule 6: the entry of an unverified native source, made if there is
    /// none and the limiter of new tests allows it (CVE-2006-6266: each
    /// entry costs up to four echo requests).
    fn test_entry(
        &mut self,
        now: Instant,
        id: Option<PeerId>,
        src: Ipv6Addr,
        stats: &mut Stats,
    ) -> Option<PeerId> {
        match id {
            Some(id) => Some(id),
            None if self.test_limit.try_take(now) => {
                self.peering
                    .insert(Peer::new_for_echo_test(src, now), now, stats)
            }
            None => None,
        }
    }

    /// Rule 6: hold `packet` from `src`, received from `mapping`, until the
    /// echo test of peer `id` tells whether that relay is the right one
    /// (RFC 4380 §5.2.3: "run the direct IPv6 connectivity test before
    /// processing"). Dropped (counted, no ICMPv6 error) if the test is
    /// already over or there is no room.
    fn hold_inbound(
        &mut self,
        now: Instant,
        id: PeerId,
        src: Ipv6Addr,
        mapping: SocketAddrV4,
        packet: &[u8],
        stats: &mut Stats,
    ) {
        let testing = self
            .peering
            .peers
            .peer(id)
            .is_some_and(|p| p.echo_allowed_at().is_some());
        // Packets whose test ended free their slots first.
        self.expire_held(now, stats);
        let max = self.peering.peers.max_queue_bytes();
        if !testing || self.held.hold(now, src, mapping, packet, max).is_err() {
            stats.count_data_drop(DataDrop::Unverified);
        }
    }

    /// Rule 6: start (or continue) the direct connectivity test towards the
    /// unverified native source `src` of entry `id` (RFC 4380 §5.2.3,
    /// §5.2.9). Each peer gets at most four tries, 2 s apart.
    fn test_source<'a>(
        &mut self,
        now: Instant,
        link: &Link,
        id: PeerId,
        src: Ipv6Addr,
        out: &'a mut [u8],
        stats: &mut Stats,
    ) -> Output<'a> {
        let Some(peer) = self.peering.peers.peer_mut(id) else {
            return Output::None;
        };
        if !peer.may_send_echo(now) {
            return Output::None;
        }
        let seq = u16::from(peer.echoes_sent());
        peer.record_echo(now);
        // Later tries follow the retry timer.
        self.peering.wake(now);
        match self.echo.emit_request(link.ours(), src, seq, now, out) {
            Ok(len) => {
                bump(&mut stats.echo_requests_sent);
                Output::Udp {
                    to: link.server,
                    data: out.get(..len).unwrap_or(&[]),
                }
            }
            Err(_) => {
                bump(&mut stats.transmit_buffer_too_small);
                Output::None
            }
        }
    }
}

/// Whether `ipv6` looks like an ICMPv6 Echo Reply to one of our
/// connectivity tests (our identifier), judged from fixed offsets without
/// parsing or checksumming: it runs before rule 1, on every packet.
fn is_our_echo_reply(ipv6: &[u8]) -> bool {
    const NEXT_HEADER: usize = 6;
    const ICMP_TYPE: usize = 40;
    const ECHO_IDENT_AT: usize = 44;
    const ICMPV6: u8 = 58;
    const ECHO_REPLY: u8 = 129;
    ipv6.get(NEXT_HEADER) == Some(&ICMPV6)
        && ipv6.get(ICMP_TYPE) == Some(&ECHO_REPLY)
        && ipv6.get(ECHO_IDENT_AT..ECHO_IDENT_AT + 2) == Some(&ECHO_IDENT.to_be_bytes()[..])
}

/// Accepted: bubbles are consumed (RFC 4380 §5.2.3), the rest goes to the
/// tunnel as it arrived, without Teredo headers or trailers.
fn deliver<'a>(ipv6: &'a [u8], is_bubble: bool, stats: &mut Stats) -> Output<'a> {
    if is_bubble {
        bump(&mut stats.bubbles_received);
        Output::None
    } else {
        bump(&mut stats.delivered);
        Output::Tunnel(ipv6)
    }
}
