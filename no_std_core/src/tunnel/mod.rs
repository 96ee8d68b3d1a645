//! What the Teredo client and relay share: the sans-IO output types, and
//! `Peering`, the machinery that reaches a peer (RFC 4380 §5.2.4, §5.2.6,
//! §5.4.1).
//!
//! Both roles keep a [`PeerTable`](crate::peers::PeerTable) of peers, queue
//! packets for a peer that is not trusted yet, bubble it (2 s apart, at most
//! four per 300 s: the rules of [`Peer`](crate::peers::Peer)), release the
//! queue in order once it answers, answer packets that will never go with a
//! rate-limited ICMPv6 Destination Unreachable, and sweep idle peers out.
//! That is `Peering`; what differs between the roles (where bubbles come
//! from and go to, the client's echo test, what happens after the last
//! bubble) is a `Role` the caller passes in.

mod peering;

use core::net::SocketAddrV4;

pub(crate) use peering::{
    emit_bubble, BubblePlan, Count, Counters, Peering, PendingBubble, Procedure, Role,
};
pub use peering::{BUBBLE_HOP_LIMIT, EXPIRY_SWEEP};

/// What `poll_transmit` wrote: send `out[..len]` to `dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Transmit {
    /// Where it goes.
    pub dest: Destination,
    /// Length of the UDP payload or IPv6 packet at the start of `out`.
    pub len: usize,
}

/// Where a [`Transmit`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Destination {
    /// One UDP datagram from the service port to this endpoint.
    Udp(SocketAddrV4),
    /// One IPv6 packet to write to the tunnel interface (an ICMPv6 error).
    Tunnel,
}

/// What to do right now with the result of one input (`handle_udp`,
/// `handle_ipv6` of a client or relay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output<'a> {
    /// Nothing now: consumed, queued or dropped (see the role's stats); more
    /// may come from `poll_transmit`.
    None,
    /// Send `data` as one UDP datagram from the service port to `to`. On the
    /// hot path `data` borrows the input packet itself (simple encapsulation
    /// has no header).
    Udp {
        /// Destination endpoint.
        to: SocketAddrV4,
        /// The UDP payload.
        data: &'a [u8],
    },
    /// Write this IPv6 packet to the tunnel. For a received datagram it
    /// borrows the datagram (the decapsulated packet, no copy).
    Tunnel(&'a [u8]),
}
