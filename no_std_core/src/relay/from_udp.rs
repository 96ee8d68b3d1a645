//! Teredo clients → native IPv6 (RFC 4380 §5.4.2; Miredo's anti-spoofing
//! rules and its bubble-tag tolerance of symmetric NATs, miredo.md §3.7,
//! §3.9).

use core::net::{Ipv6Addr, SocketAddrV4};

use smoltcp::wire::Ipv6Packet;

use super::{bump, Drop, Output, Relay};
use crate::addr::{self, TeredoAddr};
use crate::nonce::Rng;
use crate::peers::Peer;
use crate::time::Instant;
use crate::wire::bubble;
use crate::wire::encap::{self, Trailers};

impl<R: Rng, const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>
    Relay<R, N, B, SLOTS, SLOT_SIZE>
{
    /// Handles one datagram received on the relay's socket from `remote`.
    /// Call it for every datagram. `out` is not written today (no answer is
    /// ever made at once); it keeps the client's signature.
    ///
    /// The IPv6 source must be a Teredo address of our prefix, proven by the
    /// datagram: its embedded mapping is `remote`, or it is addressed to our
    /// bubble tag for that mapping (a client behind a symmetric NAT
    /// answering our bubble), or its entry is trusted at `remote`. Without
    /// an entry, the packet is dropped unless
    /// [`super::Config::accept_first_contact`]. An accepted packet makes the
    /// entry trusted at `remote` and releases its queue (from
    /// [`Relay::poll_transmit`]); a bubble is consumed; a packet to a global
    /// native IPv6 destination is returned as [`Output::Tunnel`], borrowing
    /// `datagram`. Everything else is dropped and counted.
    pub fn handle_udp<'a>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        datagram: &'a [u8],
        out: &'a mut [u8],
    ) -> Output<'a> {
        let _ = out;
        self.stats.from_clients.add(datagram.len());
        // Not a Teredo payload: silently drop (RFC 4380 §5.4.2; trailing
        // bytes are RFC 6081 trailers, §4).
        let Ok(repr) = encap::Repr::parse(datagram) else {
            self.stats.drop(Drop::Malformed);
            return Output::None;
        };
        let Ok(header) = Ipv6Packet::new_checked(repr.ipv6) else {
            self.stats.drop(Drop::Malformed);
            return Output::None;
        };
        if Trailers::new(repr.trailers).any(|t| t.must_drop()) {
            self.stats.drop(Drop::Trailer);
            return Output::None;
        }
        let (src, dst) = (header.src_addr(), header.dst_addr());
        let Some(teredo) = TeredoAddr::from_ipv6(src, self.config.prefix) else {
            self.stats.drop(Drop::NonTeredoSource);
            return Output::None;
        };
        // An answer to our bubble: addressed to the tag of the mapping the
        // source embeds, whatever UDP source the client's NAT gave it.
        let to_tag = addr::is_link_local(dst) && dst == self.tag(teredo.mapped());
        let id = self.peering.peers.lookup(&src);
        let trusted_here = id
            .and_then(|id| self.peering.peers.peer(id))
            .is_some_and(|p| p.is_trusted() && p.mapping() == remote);
        if !(trusted_here || teredo.mapped() == remote || to_tag) {
            self.stats.drop(Drop::SpoofedSource);
            return Output::None;
        }
        if id.is_none() && !(self.config.accept_first_contact && self.new_peers.any(now)) {
            self.stats.drop(Drop::UnknownPeer);
            return Output::None;
        }
        let new = Peer::new_from_teredo_source(src, remote, now);
        // With no room for a new entry the packet still goes on: it is
        // proven, only its trust cannot be remembered.
        self.peering.trust(now, id, new, remote, &mut self.stats);
        if to_tag || bubble::is_bubble(repr.ipv6) {
            bump(&mut self.stats.bubbles_received);
            return Output::None;
        }
        if let Some(reason) = self.refused_destination(dst) {
            self.stats.drop(reason);
            return Output::None;
        }
        self.stats.to_tunnel.add(repr.ipv6.len());
        Output::Tunnel(repr.ipv6)
    }

    /// Why a client's packet to `dst` is not forwarded, if it is not: only
    /// global unicast native IPv6 is served (RFC 4380 §5.4.2 "SHOULD
    /// silently drop" outside the served range); Teredo destinations are not
    /// hairpinned.
    fn refused_destination(&self, dst: Ipv6Addr) -> Option<Drop> {
        if TeredoAddr::from_ipv6(dst, self.config.prefix).is_some() {
            return Some(Drop::TeredoDestination);
        }
        let global = !(dst.is_multicast()
            || dst.is_unspecified()
            || dst.is_loopback()
            || addr::is_link_local(dst)
            || dst.is_unique_local());
        (!global).then_some(Drop::InvalidDestination)
    }
}
