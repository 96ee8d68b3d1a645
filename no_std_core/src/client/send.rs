//! Transmission: IPv6 packets read from the tunnel (RFC 4380 §5.2.4, with
//! RFC 5991 §3.2; checks in Miredo's order, miredo.md §3.6).

use core::net::Ipv6Addr;

use smoltcp::wire::{Icmpv6DstUnreachable, Ipv6Packet};

use super::datapath::{DataDrop, DataPath, Link};
use super::{bump, Output, Stats};
use crate::addr::{self, TeredoAddr, CLIENT_LL_RESTRICTED};
use crate::peers::{InsertError, Peer, PeerId};
use crate::time::Instant;

impl<const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>
    DataPath<N, B, SLOTS, SLOT_SIZE>
{
    /// One IPv6 packet from the tunnel: sent at once to a trusted peer
    /// (zero-copy), queued while the peer is being reached, or refused.
    pub(super) fn handle_ipv6<'a>(
        &mut self,
        now: Instant,
        packet: &'a [u8],
        out: &'a mut [u8],
        stats: &mut Stats,
    ) -> Output<'a> {
        let Ok(header) = Ipv6Packet::new_checked(packet) else {
            stats.count_data_drop(DataDrop::InvalidIpv6);
            return Output::None;
        };
        // Bytes after the Payload Length are not part of the packet.
        let packet = packet.get(..header.total_len()).unwrap_or(packet);
        let (src, dst) = (header.src_addr(), header.dst_addr());
        if dst.is_multicast() {
            stats.count_data_drop(DataDrop::Multicast);
            return Output::None;
        }
        let Some(link) = self.link else {
            stats.count_data_drop(DataDrop::NotQualified);
            let reason = Icmpv6DstUnreachable::AddrUnreachable;
            return self.refuse(now, CLIENT_LL_RESTRICTED, reason, packet, out, stats);
        };
        let ours = link.ours();
        if src != ours {
            stats.count_data_drop(DataDrop::WrongSource);
            let reason = Icmpv6DstUnreachable::AdminProhibit;
            return self.refuse(now, ours, reason, packet, out, stats);
        }
        // Case 1: trusted and valid peer, even at a private mapping (a local
        // peer, RFC 4380 §5.2.4).
        if let Some(peer) = self.peers.get_mut(&dst) {
            if peer.may_send_direct(now) {
                peer.record_tx(now);
                bump(&mut stats.sent_direct);
                return Output::Udp {
                    to: peer.mapping(),
                    data: packet,
                };
            }
        }
        let id = match link.teredo(dst) {
            Some(teredo) => self.teredo_peer(now, dst, teredo, stats),
            None => self.native_peer(now, dst, stats),
        };
        let Some(id) = id else {
            return Output::None;
        };
        self.queue(now, &link, id, packet, out, stats)
    }

    /// Case 5 (for every cone bit, RFC 5991 §3.2): the entry of a Teredo
    /// destination, made if needed; `None` if it must be dropped.
    fn teredo_peer(
        &mut self,
        now: Instant,
        dst: Ipv6Addr,
        teredo: TeredoAddr,
        stats: &mut Stats,
    ) -> Option<PeerId> {
        if let Some(id) = self.peers.lookup(&dst) {
            return Some(id);
        }
        // RFC 4380 §5.2.4: never bubble towards a non-global IPv4 (mapping,
        // or server for the indirect bubble); MUST drop silently.
        if !addr::is_global_unicast(*teredo.mapped().ip())
            || !addr::is_global_unicast(teredo.server())
        {
            stats.count_data_drop(DataDrop::NonGlobalDestination);
            return None;
        }
        self.insert(
            Peer::new_for_direct_bubble(dst, teredo.mapped(), now),
            now,
            stats,
        )
    }

    /// Case 2: the entry of a native destination, made if needed.
    fn native_peer(&mut self, now: Instant, dst: Ipv6Addr, stats: &mut Stats) -> Option<PeerId> {
        if let Some(id) = self.peers.lookup(&dst) {
            return Some(id);
        }
        self.insert(Peer::new_for_echo_test(dst, now), now, stats)
    }

    pub(super) fn insert(&mut self, peer: Peer, now: Instant, stats: &mut Stats) -> Option<PeerId> {
        match self.peers.insert(peer, now) {
            Ok(inserted) => {
                if inserted.evicted.is_some() {
                    // Its queued packets wait for ICMPv6 errors.
                    self.wake(now);
                }
                Some(inserted.id)
            }
            Err(InsertError::Exists(id)) => Some(id),
            Err(InsertError::Full) => {
                stats.count_data_drop(DataDrop::PeerTableFull);
                None
            }
        }
    }

    /// Queue `packet` for peer `id` while its bubbles or echo test run, or
    /// refuse it if that budget is spent.
    fn queue<'a>(
        &mut self,
        now: Instant,
        link: &Link,
        id: PeerId,
        packet: &'a [u8],
        out: &'a mut [u8],
        stats: &mut Stats,
    ) -> Output<'a> {
        let Some(peer) = self.peers.peer(id) else {
            return Output::None;
        };
        let exhausted = if link.teredo(peer.addr()).is_some() {
            !peer.may_send_bubble(now) && peer.bubbles_exhausted(now)
        } else {
            peer.echo_test_failed(now)
        };
        if exhausted {
            stats.count_data_drop(DataDrop::Unreachable);
            let reason = Icmpv6DstUnreachable::AddrUnreachable;
            return self.refuse(now, link.ours(), reason, packet, out, stats);
        }
        if self.peers.enqueue(id, packet).is_err() {
            stats.count_data_drop(DataDrop::QueueFull);
            return Output::None;
        }
        bump(&mut stats.queued);
        self.wake(now);
        Output::None
    }

    /// Answer `packet` with an ICMPv6 Destination Unreachable from `src` to
    /// the tunnel (rate-limited; nothing if that is not allowed).
    fn refuse<'a>(
        &mut self,
        now: Instant,
        src: Ipv6Addr,
        reason: Icmpv6DstUnreachable,
        packet: &[u8],
        out: &'a mut [u8],
        stats: &mut Stats,
    ) -> Output<'a> {
        match self.icmp_error(now, src, reason, packet, out, stats) {
            Some(len) => Output::Tunnel(out.get(..len).unwrap_or(&[])),
            None => Output::None,
        }
    }
}
