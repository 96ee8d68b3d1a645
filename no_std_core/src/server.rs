//! The Teredo server role (RFC 4380 §5.3): stateless.
//!
//! NOT YET IMPLEMENTED — the API below is fixed so the Linux glue can be built
//! against it; the logic lands with issue 3.

use core::net::{Ipv4Addr, SocketAddrV4};

use crate::time::Instant;

/// Which of the server's two IPv4 addresses a datagram arrived on or leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Local {
    /// The primary address (the one embedded in clients' Teredo addresses).
    Primary,
    /// The secondary address (primary + 1 by default).
    Secondary,
}

/// Server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Primary IPv4 address, embedded in the prefix it advertises.
    pub primary: Ipv4Addr,
    /// Secondary IPv4 address.
    pub secondary: Ipv4Addr,
    /// The Teredo /32 prefix, as its first four bytes (default 2001:0000).
    pub prefix: [u8; 4],
    /// MTU advertised in Router Advertisements (default 1280).
    pub mtu: u32,
    /// Largest IPv6 payload (bytes) forwarded for non-bubble packets (default 88).
    pub max_forward_payload: u16,
}

/// What the caller must do with a datagram after [`Server::handle_udp`].
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Nothing to send (the datagram was consumed or dropped; see the stats).
    None,
    /// Send `data` as a UDP datagram from `from`:3544 to `to`.
    SendUdp {
        /// Local address to send from.
        from: Local,
        /// Destination endpoint.
        to: SocketAddrV4,
        /// The UDP payload.
        data: &'a [u8],
    },
    /// Send `packet`, a complete IPv6 packet, out of the native IPv6 side.
    SendIpv6(&'a [u8]),
}

/// The stateless server.
#[derive(Debug)]
pub struct Server {
    config: Config,
}

impl Server {
    /// A server with the given configuration.
    pub fn new(config: Config) -> Self {
        Server { config }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Handle one UDP datagram that arrived on `local`:3544 from `remote`.
    pub fn handle_udp<'a>(
        &mut self,
        _now: Instant,
        _local: Local,
        _remote: SocketAddrV4,
        _datagram: &'a [u8],
        _out: &'a mut [u8],
    ) -> Action<'a> {
        Action::None
    }
}
