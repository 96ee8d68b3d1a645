//! Transmission: IPv6 packets read from the tunnel (RFC 4380 §5.2.4, with
//! RFC 5991 §3.2; checks in Miredo's order, miredo.md §3.6).

use core::net::Ipv6Addr;

use smoltcp::wire::{Icmpv6DstUnreachable, Ipv6Packet};

use super::datapath::{DataDrop, DataPath};
use super::{bump, Output, Stats};
use crate::addr::{self, TeredoAddr, CLIENT_LL_RESTRICTED};
use crate::peers::{Peer, PeerId};
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
            return self
                .peering
                .refuse(now, CLIENT_LL_RESTRICTED, reason, packet, out, stats);
        };
        let ours = link.ours();
        if src != ours {
            stats.count_data_drop(DataDrop::WrongSource);
            let reason = Icmpv6DstUnreachable::AdminProhibit;
            return self.peering.refuse(now, ours, reason, packet, out, stats);
        }
        // Case 1: trusted and valid peer, even at a private mapping (a local
        // peer, RFC 4380 §5.2.4).
        let id = self.peering.peers.lookup(&dst);
        if let Some(peer) = id.and_then(|id| self.peering.peers.peer_mut(id)) {
            if peer.may_send_direct(now) {
                peer.record_tx(now);
                bump(&mut stats.sent_direct);
                return Output::Udp {
                    to: peer.mapping(),
                    data: packet,
                };
            }
        }
        let id = match (id, link.teredo(dst)) {
            (Some(id), _) => Some(id),
            (None, Some(teredo)) => self.new_teredo_peer(now, dst, teredo, stats),
            // Case 2: a native destination, reached by an echo test.
            (None, None) => {
                let peer = Peer::new_for_echo_test(dst, now);
                self.peering.insert(peer, now, stats)
            }
        };
        let Some(id) = id else {
            return Output::None;
        };
        self.queue(now, &link, id, packet, out, stats)
    }

    /// Case 5 (for every cone bit, RFC 5991 §3.2): a new entry for a Teredo
    /// destination; `None` if it must be dropped.
    fn new_teredo_peer(
        &mut self,
        now: Instant,
        dst: Ipv6Addr,
        teredo: TeredoAddr,
        stats: &mut Stats,
    ) -> Option<PeerId> {
        // RFC 4380 §5.2.4: never bubble towards a non-global IPv4 (mapping,
        // or server for the indirect bubble); MUST drop silently.
        if !addr::is_global_unicast(*teredo.mapped().ip())
            || !addr::is_global_unicast(teredo.server())
        {
            stats.count_data_drop(DataDrop::NonGlobalDestination);
            return None;
        }
        let peer = Peer::new_for_direct_bubble(dst, teredo.mapped(), now);
        self.peering.insert(peer, now, stats)
    }
}
