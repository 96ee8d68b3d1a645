//! Native IPv6 → Teredo clients (RFC 4380 §5.4.1, RFC 5991 §3.2; checks in
//! Miredo's order, miredo.md §3.6).

use smoltcp::wire::{Icmpv6DstUnreachable, Ipv6Packet};

use super::{bump, Drop, Output, Relay, RelayRole};
use crate::addr::{self, TeredoAddr};
use crate::nonce::Rng;
use crate::peers::Peer;
use crate::time::Instant;

impl<R: Rng, const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>
    Relay<R, N, B, SLOTS, SLOT_SIZE>
{
    /// Handles one IPv6 packet read from the tunnel; `out` needs
    /// [`super::MIN_OUTPUT_BUFFER`] bytes.
    ///
    /// To a trusted client heard from within 30 s: [`Output::Udp`] to its
    /// mapping, borrowing `packet` (simple encapsulation, no copy). To
    /// another Teredo client: queued while bubbles reach it (from
    /// [`Relay::poll_transmit`]). Outside the Teredo prefix: ICMPv6
    /// Destination Unreachable code 3 ([`Output::Tunnel`] in `out`,
    /// rate-limited). Multicast, and Teredo destinations embedding a
    /// non-global IPv4, are dropped silently. Every drop is counted.
    pub fn handle_ipv6<'a>(
        &mut self,
        now: Instant,
        packet: &'a [u8],
        out: &'a mut [u8],
    ) -> Output<'a> {
        self.stats.from_tunnel.add(packet.len());
        let Ok(header) = Ipv6Packet::new_checked(packet) else {
            self.stats.drop(Drop::InvalidIpv6);
            return Output::None;
        };
        // Bytes after the Payload Length are not part of the packet.
        let packet = packet.get(..header.total_len()).unwrap_or(packet);
        let dst = header.dst_addr();
        if dst.is_multicast() {
            self.stats.drop(Drop::Multicast);
            return Output::None;
        }
        let Some(teredo) = TeredoAddr::from_ipv6(dst, self.config.prefix) else {
            // Relays route only Teredo destinations (Miredo: code 3).
            self.stats.drop(Drop::NotTeredoDestination);
            let reason = Icmpv6DstUnreachable::AddrUnreachable;
            let src = self.config.icmp_source;
            return self
                .peering
                .refuse(now, src, reason, packet, out, &mut self.stats);
        };
        // RFC 4380 §5.4.1: the embedded IPv4 MUST be global unicast, else
        // MUST silently drop. The server's too: indirect bubbles go there.
        if !addr::is_global_unicast(*teredo.mapped().ip())
            || !addr::is_global_unicast(teredo.server())
        {
            self.stats.drop(Drop::NonGlobalDestination);
            return Output::None;
        }
        // Case 1: trusted and valid peer.
        let id = self.peering.peers.lookup(&dst);
        if let Some(peer) = id.and_then(|id| self.peering.peers.peer_mut(id)) {
            if peer.may_send_direct(now) {
                peer.record_tx(now);
                bump(&mut self.stats.sent_direct);
                self.stats.to_clients.add(packet.len());
                return Output::Udp {
                    to: peer.mapping(),
                    data: packet,
                };
            }
        }
        // Case 3 for every cone bit (RFC 5991 §3.2): an untrusted entry,
        // made if needed (within the flood limits), a queue and bubbles.
        let id = match id {
            Some(id) => id,
            None => {
                if !self.new_peers.for_server(teredo.server(), now) {
                    self.stats.drop(Drop::NewPeerLimited);
                    return Output::None;
                }
                let peer = Peer::new_for_direct_bubble(dst, teredo.mapped(), now);
                match self.peering.insert(peer, now, &mut self.stats) {
                    Some(id) => id,
                    None => return Output::None,
                }
            }
        };
        let role = RelayRole {
            config: &self.config,
            tag_key: &self.tag_key,
        };
        self.peering
            .queue(now, &role, id, packet, out, &mut self.stats)
    }
}
