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
    /// One datagram from `remote`: delivered to the tunnel (borrowing the
    /// datagram), answered (a bubble or an echo request in `out`), or
    /// consumed.
    pub(super) fn handle_udp<'a>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        datagram: &'a [u8],
        out: &'a mut [u8],
        stats: &mut Stats,
    ) -> Output<'a> {
        let Some(link) = self.link else {
            stats.count_data_drop(DataDrop::NotQualified);
            return Output::None;
        };
        // Not a Teredo payload, or an IPv6 packet longer than the datagram:
        // drop silently (RFC 4380 §5.2.3; trailing bytes are RFC 6081
        // trailers, §4).
        let Ok(repr) = encap::Repr::parse(datagram) else {
            stats.count_data_drop(DataDrop::Malformed);
            return Output::None;
        };
        let Ok(header) = Ipv6Packet::new_checked(repr.ipv6) else {
            stats.count_data_drop(DataDrop::Malformed);
            return Output::None;
        };
        if Trailers::new(repr.trailers).any(|t| t.must_drop()) {
            stats.count_data_drop(DataDrop::Trailer);
            return Output::None;
        }
        let (src, dst) = (header.src_addr(), header.dst_addr());
        let is_bubble = bubble::is_bubble(repr.ipv6);
        let ours = link.ours();
        if remote == link.server {
            if let Some(reply) = self.server_answer(&link, src, dst, is_bubble, repr.origin) {
                if is_bubble {
                    bump(&mut stats.bubbles_received);
                    return match emit_bubble(ours, reply.dst, out, stats) {
                        Some(len) => {
                            bump(&mut stats.bubbles_sent);
                            Output::Udp {
                                to: reply.to,
                                data: out.get(..len).unwrap_or(&[]),
                            }
                        }
                        None => Output::None,
                    };
                }
                self.peering.pending = Some(reply);
            }
            if is_bubble {
                // Bubbles only open NAT state; never delivered.
                bump(&mut stats.bubbles_received);
                return Output::None;
            }
            // Other packets go on: the server may be a relay too.
        }
        if addr::is_link_local(src) {
            stats.count_data_drop(DataDrop::LinkLocalSource);
            return Output::None;
        }
        // Link-local destinations only for bubbles (answers to a peer's
        // tagged bubble source); multicast never.
        if dst != ours && !(is_bubble && addr::is_link_local(dst)) {
            stats.count_data_drop(DataDrop::WrongDestination);
            return Output::None;
        }
        let id = self.peering.peers.lookup(&src);
        // Rule 1: trusted entry, packet from its mapping.
        if let Some(id) = id {
            if let Some(peer) = self.peering.peers.peer_mut(id) {
                if peer.is_trusted() && peer.mapping() == remote {
                    peer.record_direct_response(now);
                    self.peering.wake_if_queued(now, id);
                    return deliver(repr.ipv6, is_bubble, stats);
                }
            }
        }
        // Rule 2: an echo reply carrying our nonce, from any IPv4/port (the
        // relay closest to the peer), even if the entry was evicted since.
        if let Ok(echo) = EchoRepr::parse(repr.ipv6) {
            if echo.kind == EchoKind::Reply && echo.ident == ECHO_IDENT {
                if self.echo.verify(ours, &echo, now) {
                    let new = Peer::new_for_echo_test(src, now);
                    self.peering.trust(now, id, new, remote, stats);
                } else {
                    stats.count_data_drop(DataDrop::BadEchoNonce);
                }
                return Output::None;
            }
        }
        // Rule 3: a Teredo source whose embedded mapping is the UDP source.
        if let Some(teredo) = link.teredo(src) {
            if teredo.mapped() != remote {
                stats.count_data_drop(DataDrop::SpoofedTeredoSource);
                return Output::None;
            }
            let new = Peer::new_from_teredo_source(src, remote, now);
            // No room for an entry: delivering the packet is still right.
            self.peering.trust(now, id, new, remote, stats);
            return deliver(repr.ipv6, is_bubble, stats);
        }
        // Rule 6: a native source through a relay we have not verified.
        stats.count_data_drop(DataDrop::Unverified);
        self.test_source(now, &link, id, src, out, stats)
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

    /// Rule 6: start (or continue) the direct connectivity test towards an
    /// unverified native source (RFC 4380 §5.2.3, §5.2.9). New entries are
    /// rate-limited; each peer gets at most four tries, 2 s apart.
    fn test_source<'a>(
        &mut self,
        now: Instant,
        link: &Link,
        id: Option<PeerId>,
        src: Ipv6Addr,
        out: &'a mut [u8],
        stats: &mut Stats,
    ) -> Output<'a> {
        let id = match id {
            Some(id) => id,
            None if self.test_limit.try_take(now) => {
                match self
                    .peering
                    .insert(Peer::new_for_echo_test(src, now), now, stats)
                {
                    Some(id) => id,
                    None => return Output::None,
                }
            }
            None => return Output::None,
        };
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
