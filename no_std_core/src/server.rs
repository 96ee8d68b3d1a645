//! The Teredo server role (RFC 4380 §5.3, updated by RFC 5991 §3.2).
//!
//! A Teredo server is stateless. It answers clients' Router Solicitations with
//! Router Advertisements that tell each client its NAT mapping (the origin
//! indication), and it forwards bubbles and small ICMPv6 packets so that
//! clients can punch holes towards each other (indirect bubbles) and find the
//! relay serving a native IPv6 host (the echo test of RFC 4380 §5.2.9).
//!
//! [`Server::handle_udp`] is the only input. It keeps no per-client state and
//! never allocates: the reply is written into the caller's buffer, or the
//! forwarded IPv6 packet is handed back as a borrow of the received datagram.
//! Every datagram that is not answered or forwarded is counted under a
//! [`Drop`] reason in [`Stats`].

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

use smoltcp::wire::{Icmpv6DstUnreachable, IpProtocol, Ipv6Packet};

use crate::addr::{self, TeredoAddr, ALL_ROUTERS, DEFAULT_PREFIX, TEREDO_PORT};
use crate::limits::TokenBucket;
use crate::time::Instant;
use crate::wire::encap::{self, AuthHeader};
use crate::wire::ndisc::{RouterAdvertisement, RouterSolicitation};
use crate::wire::{bubble, icmp_error, Error};

/// Which of the server's two IPv4 addresses a datagram arrived on or leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Local {
    /// The primary address (the one embedded in clients' Teredo addresses).
    Primary,
    /// The secondary address (primary + 1 by default).
    Secondary,
}

impl Local {
    /// The other address of the pair.
    pub fn other(self) -> Local {
        match self {
            Local::Primary => Local::Secondary,
            Local::Secondary => Local::Primary,
        }
    }
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

/// MTU advertised by default: the IPv6 minimum (RFC 4380 §5.1.2 SHOULD).
pub const DEFAULT_MTU: u32 = 1280;

/// Largest IPv6 payload of a non-bubble packet the server forwards by default.
///
/// RFC 4380 §5.3 says a server relays only bubbles and ICMPv6 echoes, never
/// data. Capping what it forwards keeps it from being used as an open relay;
/// 88 bytes is Miredo's limit (miredo.md §3.13), which the Microsoft servers
/// are said to share, so clients already keep their echo tests below it.
pub const DEFAULT_MAX_FORWARD_PAYLOAD: u16 = 88;

impl Config {
    /// The defaults around a primary address: secondary = primary + 1 (as
    /// Miredo's `ServerBindAddress2` defaults), prefix 2001:0::/32, MTU 1280,
    /// forwarding cap 88 bytes.
    pub fn new(primary: Ipv4Addr) -> Self {
        Config {
            primary,
            secondary: Ipv4Addr::from(u32::from(primary).wrapping_add(1)),
            prefix: DEFAULT_PREFIX,
            mtu: DEFAULT_MTU,
            max_forward_payload: DEFAULT_MAX_FORWARD_PAYLOAD,
        }
    }

    fn address(&self, local: Local) -> Ipv4Addr {
        match local {
            Local::Primary => self.primary,
            Local::Secondary => self.secondary,
        }
    }
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

/// Why the server dropped a datagram. Each reason is counted in [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Drop {
    /// Not a Teredo UDP payload: bad headers or a bad IPv6 packet
    /// (RFC 4380 §5.3.1 check 1).
    Malformed,
    /// Neither a bubble nor ICMPv6 (RFC 4380 §5.3.1 check 2).
    NotBubbleOrIcmpv6,
    /// The IPv4 source is not global unicast (RFC 4380 §5.3.1 check 3).
    NonGlobalSource,
    /// A Teredo IPv6 source that does not embed the UDP source
    /// (RFC 4380 §5.3.1 check 5).
    SpoofedSource,
    /// A non-Teredo source writing to someone who is not this server's
    /// client (RFC 4380 §5.3.1 checks 6 and 7).
    NotForOurClient,
    /// Sent from, or to be sent to, one of the server's own addresses on port
    /// 3544: a forwarding loop (Miredo's MTFL-SA-0603).
    Loop,
    /// Addressed to the server itself but not a valid Router Solicitation
    /// (RFC 4861 §6.1.1, RFC 4380 §5.3.1).
    InvalidRs,
    /// A Router Solicitation whose ICMPv6 checksum does not verify.
    RsChecksum,
    /// The IPv6 destination is not global (RFC 4380 §5.3.1: MUST NOT forward).
    NonGlobalDestination,
    /// A Teredo destination whose mapped IPv4 is not global unicast
    /// (RFC 4380 §5.3.1).
    NonGlobalMapping,
    /// A non-bubble larger than [`Config::max_forward_payload`]: the server
    /// carries no data traffic (RFC 4380 §5.3).
    TooBig,
    /// The caller's output buffer could not hold the reply.
    BufferTooSmall,
}

impl Drop {
    /// Every reason, in the order of [`Stats::drops`].
    pub const ALL: [Drop; 12] = [
        Drop::Malformed,
        Drop::NotBubbleOrIcmpv6,
        Drop::NonGlobalSource,
        Drop::SpoofedSource,
        Drop::NotForOurClient,
        Drop::Loop,
        Drop::InvalidRs,
        Drop::RsChecksum,
        Drop::NonGlobalDestination,
        Drop::NonGlobalMapping,
        Drop::TooBig,
        Drop::BufferTooSmall,
    ];

    /// A stable snake_case name, for logs and status output.
    pub fn name(self) -> &'static str {
        match self {
            Drop::Malformed => "malformed",
            Drop::NotBubbleOrIcmpv6 => "not_bubble_or_icmpv6",
            Drop::NonGlobalSource => "non_global_source",
            Drop::SpoofedSource => "spoofed_source",
            Drop::NotForOurClient => "not_for_our_client",
            Drop::Loop => "loop",
            Drop::InvalidRs => "invalid_rs",
            Drop::RsChecksum => "rs_checksum",
            Drop::NonGlobalDestination => "non_global_destination",
            Drop::NonGlobalMapping => "non_global_mapping",
            Drop::TooBig => "too_big",
            Drop::BufferTooSmall => "buffer_too_small",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of everything the server did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to [`Server::handle_udp`].
    pub received: u64,
    /// Router Advertisements sent.
    pub advertisements: u64,
    /// Packets forwarded over UDP to a Teredo destination.
    pub forwarded_teredo: u64,
    /// Packets forwarded out of the native IPv6 side.
    pub forwarded_native: u64,
    /// ICMPv6 errors sent.
    pub icmp_errors: u64,
    /// ICMPv6 errors suppressed by the rate limit.
    pub icmp_errors_limited: u64,
    drops: [u64; Drop::ALL.len()],
}

impl Stats {
    /// How many datagrams were dropped for `reason`.
    pub fn drops(&self, reason: Drop) -> u64 {
        self.drops[reason.index()]
    }

    /// All drops, whatever the reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    fn count(&mut self, reason: Drop) {
        self.drops[reason.index()] += 1;
    }
}

/// The stateless Teredo server.
#[derive(Debug)]
pub struct Server {
    config: Config,
    link_local: Ipv6Addr,
    icmp_limit: TokenBucket,
    stats: Stats,
}

impl Server {
    /// A server with the given configuration. `now` starts the ICMPv6 error
    /// rate limiter's clock.
    pub fn new(config: Config, now: Instant) -> Self {
        Server {
            config,
            link_local: addr::server_link_local(config.primary),
            icmp_limit: TokenBucket::icmp_default(now),
            stats: Stats::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters since the server was created.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Handles one UDP datagram that arrived on `local`:3544 from `remote`.
    ///
    /// Returns what to send: an answer or forwarded packet written into `out`
    /// (1280 bytes always suffice for what a server sends), or a native IPv6
    /// packet borrowed from `datagram`. Call it for every datagram; there is
    /// nothing to poll and no timer.
    pub fn handle_udp<'a>(
        &mut self,
        now: Instant,
        local: Local,
        remote: SocketAddrV4,
        datagram: &'a [u8],
        out: &'a mut [u8],
    ) -> Action<'a> {
        self.stats.received += 1;
        match self.process(now, local, remote, datagram, out) {
            Ok(action) => action,
            Err(reason) => {
                self.stats.count(reason);
                Action::None
            }
        }
    }

    fn process<'a>(
        &mut self,
        now: Instant,
        local: Local,
        remote: SocketAddrV4,
        datagram: &'a [u8],
        out: &'a mut [u8],
    ) -> Result<Action<'a>, Drop> {
        let packet = self.accept(remote, datagram)?;
        if self.is_own_endpoint(remote) {
            return Err(Drop::Loop);
        }
        if packet.dst == ALL_ROUTERS || packet.dst == self.link_local {
            return self.answer_rs(local, remote, packet, out);
        }
        if !is_global_ipv6(packet.dst) {
            return Err(Drop::NonGlobalDestination);
        }
        if !packet.is_bubble && packet.payload_len > usize::from(self.config.max_forward_payload) {
            return self.refuse(now, remote, packet.ipv6, out);
        }
        match TeredoAddr::from_ipv6(packet.dst, self.config.prefix) {
            Some(dst) => self.forward_teredo(remote, dst, packet, out),
            None => {
                self.stats.forwarded_native += 1;
                Ok(Action::SendIpv6(packet.ipv6))
            }
        }
    }

    /// The acceptance checks of RFC 4380 §5.3.1, in the RFC's order.
    fn accept<'a>(&self, remote: SocketAddrV4, datagram: &'a [u8]) -> Result<Accepted<'a>, Drop> {
        // 1. Not a well-formed Teredo payload: MUST silently drop.
        let repr = encap::Repr::parse(datagram).map_err(|_| Drop::Malformed)?;
        let header = Ipv6Packet::new_checked(repr.ipv6).map_err(|_| Drop::Malformed)?;
        let packet = Accepted {
            src: header.src_addr(),
            dst: header.dst_addr(),
            auth: repr.auth,
            is_bubble: bubble::is_bubble(repr.ipv6),
            is_icmpv6: header.next_header() == IpProtocol::Icmpv6,
            payload_len: usize::from(header.payload_len()),
            ipv6: repr.ipv6,
            trailers: repr.trailers,
        };
        // 2. Neither a bubble nor ICMPv6: SHOULD drop (we are not a relay).
        if !packet.is_bubble && !packet.is_icmpv6 {
            return Err(Drop::NotBubbleOrIcmpv6);
        }
        // 3. IPv4 source not global unicast: MUST drop.
        if !addr::is_global_unicast(*remote.ip()) {
            return Err(Drop::NonGlobalSource);
        }
        // 4. A Router Solicitation from a link-local source to ff02::2: MUST
        //    accept. (The RS itself is validated when it is answered.)
        if packet.is_icmpv6 && addr::is_link_local(packet.src) && packet.dst == ALL_ROUTERS {
            return Ok(packet);
        }
        match TeredoAddr::from_ipv6(packet.src, self.config.prefix) {
            // 5. A Teredo source is accepted only if it embeds exactly the
            //    IPv4 address and UDP port it came from (RFC 4380 §7.4.2).
            Some(src) if src.mapped() == remote => Ok(packet),
            Some(_) => Err(Drop::SpoofedSource),
            // 6. A non-Teredo source only towards one of our own clients;
            // 7. everything else MUST be dropped.
            None if self.is_our_client(packet.dst) => Ok(packet),
            None => Err(Drop::NotForOurClient),
        }
    }

    /// Answers a Router Solicitation (RFC 4380 §5.3.2).
    fn answer_rs<'a>(
        &mut self,
        local: Local,
        remote: SocketAddrV4,
        packet: Accepted<'a>,
        out: &'a mut [u8],
    ) -> Result<Action<'a>, Drop> {
        let rs = RouterSolicitation::parse(packet.ipv6).map_err(|e| match e {
            Error::Checksum => Drop::RsChecksum,
            _ => Drop::InvalidRs,
        })?;
        let mut prefix64 = [0u8; 8];
        prefix64[..4].copy_from_slice(&self.config.prefix);
        prefix64[4..].copy_from_slice(&self.config.primary.octets());
        // Source: our link-local address; destination: the RS's source
        // (RFC 4380 §5.3.2). The MTU SHOULD be 1280 (RFC 4380 §5.1.2).
        let ra =
            RouterAdvertisement::teredo_default(self.link_local, rs.src, prefix64, self.config.mtu);
        // The nonce is echoed whenever the RS carried one (RFC 4380 §5.2.2:
        // clients MUST check it), as Miredo does. Secure qualification
        // (client identifiers, HMAC values) is not offered, so the echoed
        // header has empty ID and value and confirmation 0 ("key valid").
        // Authentication precedes the origin indication (RFC 4380 §5.1.1),
        // which carries the mapping the RS came from.
        let header = encap::Repr {
            auth: packet.auth.map(|rs_auth| AuthHeader {
                client_id: &[],
                auth_value: &[],
                nonce: rs_auth.nonce,
                confirmation: 0,
            }),
            origin: Some(remote),
            ipv6: &[],
            trailers: &[],
        };
        let header_len = header.emit_header(out).map_err(|_| Drop::BufferTooSmall)?;
        let ra_len = out
            .get_mut(header_len..)
            .ok_or(Drop::BufferTooSmall)
            .and_then(|rest| ra.emit(rest).map_err(|_| Drop::BufferTooSmall))?;
        // A cone-flagged source asks for the answer from the other address:
        // only a cone NAT lets it in (RFC 4380 §5.3.2). RFC 5991 §3.2: the
        // server MUST NOT ignore the cone bit, even though new clients no
        // longer set it.
        let from = if is_cone_link_local(rs.src) {
            local.other()
        } else {
            local
        };
        self.stats.advertisements += 1;
        Ok(Action::SendUdp {
            from,
            to: remote,
            data: out.get(..header_len + ra_len).ok_or(Drop::BufferTooSmall)?,
        })
    }

    /// Refuses to forward an oversized non-bubble: the server carries no data
    /// (RFC 4380 §5.3). The sender learns why through an ICMPv6 Destination
    /// Unreachable, "administratively prohibited", from the server's
    /// link-local address, rate-limited (RFC 4443 §2.4(f)).
    fn refuse<'a>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        offending: &[u8],
        out: &'a mut [u8],
    ) -> Result<Action<'a>, Drop> {
        if !icmp_error::may_answer(offending) {
            return Err(Drop::TooBig);
        }
        if !self.icmp_limit.try_take(now) {
            self.stats.icmp_errors_limited += 1;
            return Err(Drop::TooBig);
        }
        let len = icmp_error::emit_unreachable(
            self.link_local,
            Icmpv6DstUnreachable::AdminProhibit,
            offending,
            out,
        )
        .map_err(|_| Drop::TooBig)?;
        self.stats.count(Drop::TooBig);
        self.stats.icmp_errors += 1;
        Ok(Action::SendUdp {
            from: Local::Primary,
            to: remote,
            data: out.get(..len).ok_or(Drop::BufferTooSmall)?,
        })
    }

    /// Forwards a packet to a Teredo destination over UDP, from the primary
    /// address to the mapping embedded in the destination (RFC 4380 §5.3.1).
    /// RFC 6081 trailers travel with it: they carry the nonces of indirect
    /// bubbles.
    fn forward_teredo<'a>(
        &mut self,
        remote: SocketAddrV4,
        dst: TeredoAddr,
        packet: Accepted<'a>,
        out: &'a mut [u8],
    ) -> Result<Action<'a>, Drop> {
        let to = dst.mapped();
        if !addr::is_global_unicast(*to.ip()) {
            return Err(Drop::NonGlobalMapping);
        }
        if self.is_own_endpoint(to) {
            return Err(Drop::Loop);
        }
        // Our own clients learn where the packet came from (RFC 4380 §5.3.1):
        // that is how an indirect bubble tells them whom to answer directly.
        let origin = (dst.server() == self.config.primary).then_some(remote);
        let len = encap::Repr {
            auth: None,
            origin,
            ipv6: packet.ipv6,
            trailers: packet.trailers,
        }
        .emit(out)
        .map_err(|_| Drop::BufferTooSmall)?;
        self.stats.forwarded_teredo += 1;
        Ok(Action::SendUdp {
            from: Local::Primary,
            to,
            data: out.get(..len).ok_or(Drop::BufferTooSmall)?,
        })
    }

    /// Whether `dst` is a Teredo address qualified by this server: its server
    /// field is our primary address (RFC 4380 §5.3.1 check 6).
    fn is_our_client(&self, dst: Ipv6Addr) -> bool {
        TeredoAddr::from_ipv6(dst, self.config.prefix)
            .is_some_and(|t| t.server() == self.config.primary)
    }

    /// Whether `endpoint` is one of the server's own sockets. Anything from
    /// there, or to be sent there, would bounce between them forever.
    fn is_own_endpoint(&self, endpoint: SocketAddrV4) -> bool {
        endpoint.port() == TEREDO_PORT
            && (*endpoint.ip() == self.config.address(Local::Primary)
                || *endpoint.ip() == self.config.address(Local::Secondary))
    }
}

/// The parts of an accepted datagram the server acts on.
#[derive(Debug, Clone, Copy)]
struct Accepted<'a> {
    auth: Option<AuthHeader<'a>>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    is_bubble: bool,
    is_icmpv6: bool,
    payload_len: usize,
    /// The IPv6 packet, exactly as long as its header says.
    ipv6: &'a [u8],
    /// RFC 6081 trailers after it; forwarded with the packet.
    trailers: &'a [u8],
}

/// Whether a client's link-local RS source carries the cone flag: its
/// interface identifier is a Teredo node identifier (RFC 4380 §5.2.1) whose
/// flags word is bits 64–79.
fn is_cone_link_local(src: Ipv6Addr) -> bool {
    src.segments()[4] & addr::FLAG_CONE != 0
}

/// Whether `addr` has global scope: not unspecified, loopback, link-local,
/// site-local or multicast (RFC 4380 §5.3.1: a server MUST NOT forward to a
/// non-global destination).
fn is_global_ipv6(addr: Ipv6Addr) -> bool {
    let first = addr.segments()[0];
    !(addr.is_unspecified()
        || addr.is_loopback()
        || addr.is_multicast()
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::addr::{CLIENT_LL_CONE, CLIENT_LL_RESTRICTED};
    use crate::wire::echo::{EchoKind, EchoRepr};
    use crate::wire::icmp_error::DstUnreachable;
    use proptest::prelude::*;
    use std::vec::Vec;

    const PRIMARY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const SECONDARY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    /// Client 1's NAT mapping and Teredo address as qualified by us.
    const NAT1: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 21), 40000);
    const NAT2: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 22), 50000);
    const NONCE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
    const NATIVE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);
    const NOW: Instant = Instant::from_secs(100);

    fn server() -> Server {
        Server::new(Config::new(PRIMARY), NOW)
    }

    fn teredo(server: Ipv4Addr, mapped: SocketAddrV4) -> Ipv6Addr {
        TeredoAddr::new(DEFAULT_PREFIX, server, 0x0123, mapped).to_ipv6()
    }

    /// A Teredo UDP payload around `ipv6`, with optional headers and trailers.
    fn datagram(nonce: Option<[u8; 8]>, ipv6: &[u8], trailers: &[u8]) -> Vec<u8> {
        let repr = encap::Repr {
            auth: nonce.map(|nonce| AuthHeader {
                client_id: &[],
                auth_value: &[],
                nonce,
                confirmation: 0,
            }),
            origin: None,
            ipv6,
            trailers,
        };
        let mut buf = std::vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        buf
    }

    fn rs(src: Ipv6Addr) -> Vec<u8> {
        let mut buf = std::vec![0u8; RouterSolicitation::BUFFER_LEN];
        RouterSolicitation {
            src,
            dst: ALL_ROUTERS,
        }
        .emit(&mut buf)
        .unwrap();
        buf
    }

    fn bubble(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut buf = std::vec![0u8; bubble::BUBBLE_LEN];
        bubble::emit(src, dst, 0, &mut buf).unwrap();
        buf
    }

    fn echo(src: Ipv6Addr, dst: Ipv6Addr, data: &[u8]) -> Vec<u8> {
        let repr = EchoRepr {
            src,
            dst,
            hop_limit: 128,
            kind: EchoKind::Request,
            ident: 7,
            seq: 9,
            data,
        };
        let mut buf = std::vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        buf
    }

    /// Runs one datagram through a server; returns the action as owned bytes.
    fn run(server: &mut Server, local: Local, remote: SocketAddrV4, dgram: &[u8]) -> Outcome {
        let mut out = [0xa5u8; 1500];
        match server.handle_udp(NOW, local, remote, dgram, &mut out) {
            Action::None => Outcome::None,
            Action::SendUdp { from, to, data } => Outcome::Udp(from, to, data.to_vec()),
            Action::SendIpv6(p) => Outcome::Ipv6(p.to_vec()),
        }
    }

    #[derive(Debug, PartialEq)]
    enum Outcome {
        None,
        Udp(Local, SocketAddrV4, Vec<u8>),
        Ipv6(Vec<u8>),
    }

    fn assert_dropped(server: &mut Server, remote: SocketAddrV4, dgram: &[u8], reason: Drop) {
        let before = server.stats().drops(reason);
        assert_eq!(run(server, Local::Primary, remote, dgram), Outcome::None);
        assert_eq!(
            server.stats().drops(reason),
            before + 1,
            "expected drop {reason:?}"
        );
    }

    /// RFC 4380 §5.3.1 check 1: not a Teredo payload → MUST drop.
    #[test]
    fn check1_malformed_is_dropped() {
        let mut s = server();
        assert_dropped(&mut s, NAT1, &[], Drop::Malformed);
        assert_dropped(&mut s, NAT1, &[0x00, 0x02, 0, 0], Drop::Malformed);
        let mut truncated = datagram(None, &rs(CLIENT_LL_RESTRICTED), &[]);
        truncated.pop();
        assert_dropped(&mut s, NAT1, &truncated, Drop::Malformed);
    }

    /// RFC 4380 §5.3.1 check 2: neither a bubble nor ICMPv6 → SHOULD drop.
    #[test]
    fn check2_non_icmp_non_bubble_is_dropped() {
        let mut s = server();
        let mut udp = bubble(teredo(PRIMARY, NAT1), NATIVE);
        udp[4..6].copy_from_slice(&8u16.to_be_bytes());
        udp[6] = 17;
        udp.extend_from_slice(&[0; 8]);
        assert_dropped(
            &mut s,
            NAT1,
            &datagram(None, &udp, &[]),
            Drop::NotBubbleOrIcmpv6,
        );
    }

    /// RFC 4380 §5.3.1 check 3: IPv4 source not global unicast → MUST drop.
    #[test]
    fn check3_non_global_ipv4_source_is_dropped() {
        let mut s = server();
        let rs = datagram(Some(NONCE), &rs(CLIENT_LL_RESTRICTED), &[]);
        for ip in [
            [10, 0, 0, 1],
            [192, 168, 1, 1],
            [127, 0, 0, 1],
            [224, 0, 0, 253],
            [0, 0, 0, 0],
        ] {
            let remote = SocketAddrV4::new(Ipv4Addr::from(ip), 3545);
            assert_dropped(&mut s, remote, &rs, Drop::NonGlobalSource);
        }
    }

    /// RFC 4380 §5.3.1 check 4 and §5.3.2: an RS from a link-local source to
    /// ff02::2 is accepted and answered with an RA carrying the echoed nonce,
    /// the origin indication, our prefix, the MTU, from our link-local
    /// address to the RS source.
    #[test]
    fn check4_rs_gets_a_full_ra() {
        let mut s = server();
        let out = run(
            &mut s,
            Local::Primary,
            NAT1,
            &datagram(Some(NONCE), &rs(CLIENT_LL_RESTRICTED), &[]),
        );
        let Outcome::Udp(from, to, bytes) = out else {
            panic!("no RA: {out:?}")
        };
        assert_eq!((from, to), (Local::Primary, NAT1));
        let reply = encap::Repr::parse(&bytes).unwrap();
        let auth = reply.auth.unwrap();
        assert_eq!(
            (
                auth.nonce,
                auth.confirmation,
                auth.client_id,
                auth.auth_value
            ),
            (NONCE, 0, &[][..], &[][..])
        );
        assert_eq!(reply.origin, Some(NAT1));
        let ra = RouterAdvertisement::parse(reply.ipv6).unwrap();
        assert_eq!(
            ra.src,
            "fe80::8000:f227:39cc:9bfe".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(ra.dst, CLIENT_LL_RESTRICTED);
        assert_eq!(ra.prefix64(), Some([0x20, 0x01, 0, 0, 198, 51, 100, 1]));
        assert_eq!(ra.mtu, Some(1280));
        assert_eq!(s.stats().advertisements, 1);
    }

    /// The RA's on-wire bytes, as Miredo's server sends them (miredo.md §3.3):
    /// 13-byte auth header, 8-byte origin indication, 96-byte RA = 117 bytes.
    #[test]
    fn ra_matches_miredo_layout() {
        let mut s = server();
        let Outcome::Udp(_, _, bytes) = run(
            &mut s,
            Local::Primary,
            NAT1,
            &datagram(Some(NONCE), &rs(CLIENT_LL_RESTRICTED), &[]),
        ) else {
            panic!("no RA")
        };
        assert_eq!(bytes.len(), 117);
        assert_eq!(&bytes[..13], &[0, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
        assert_eq!(&bytes[13..21], &[0, 0, 0x63, 0xbf, 0x39, 0xcc, 0x9b, 0xea]);
    }

    /// An RS without an authentication header gets an RA without one.
    #[test]
    fn rs_without_nonce_gets_ra_without_auth() {
        let mut s = server();
        let Outcome::Udp(_, _, bytes) = run(
            &mut s,
            Local::Primary,
            NAT1,
            &datagram(None, &rs(CLIENT_LL_RESTRICTED), &[]),
        ) else {
            panic!("no RA")
        };
        let reply = encap::Repr::parse(&bytes).unwrap();
        assert!(reply.auth.is_none());
        assert_eq!(reply.origin, Some(NAT1));
    }

    /// RFC 4380 §5.3.2, RFC 5991 §3.2: a cone-flagged RS is answered from the
    /// other address; a non-cone RS from the address it reached.
    #[test]
    fn cone_bit_selects_the_answering_address() {
        let mut s = server();
        let cone = datagram(Some(NONCE), &rs(CLIENT_LL_CONE), &[]);
        let restricted = datagram(Some(NONCE), &rs(CLIENT_LL_RESTRICTED), &[]);
        for (local, dgram, expected) in [
            (Local::Primary, &cone, Local::Secondary),
            (Local::Secondary, &cone, Local::Primary),
            (Local::Primary, &restricted, Local::Primary),
            (Local::Secondary, &restricted, Local::Secondary),
        ] {
            let Outcome::Udp(from, _, _) = run(&mut s, local, NAT1, dgram) else {
                panic!("no RA")
            };
            assert_eq!(from, expected, "RS on {local:?}");
        }
    }

    /// RFC 4861 §6.1.1: an RS with a bad checksum or hop limit is not answered.
    #[test]
    fn invalid_rs_is_dropped() {
        let mut s = server();
        let mut bad_sum = rs(CLIENT_LL_RESTRICTED);
        bad_sum[42] ^= 0xff;
        assert_dropped(
            &mut s,
            NAT1,
            &datagram(Some(NONCE), &bad_sum, &[]),
            Drop::RsChecksum,
        );
        let mut bad_hops = rs(CLIENT_LL_RESTRICTED);
        bad_hops[7] = 254;
        assert_dropped(
            &mut s,
            NAT1,
            &datagram(Some(NONCE), &bad_hops, &[]),
            Drop::InvalidRs,
        );
        // An echo request to ff02::2 is not something a server answers.
        let ping = echo(CLIENT_LL_RESTRICTED, ALL_ROUTERS, b"hi");
        assert_dropped(&mut s, NAT1, &datagram(None, &ping, &[]), Drop::InvalidRs);
    }

    /// RFC 4380 §5.3.1 check 5: a Teredo source must embed exactly the UDP
    /// source; otherwise MUST drop.
    #[test]
    fn check5_teredo_source_must_match_udp_source() {
        let mut s = server();
        let b = datagram(
            None,
            &bubble(teredo(PRIMARY, NAT1), teredo(PRIMARY, NAT2)),
            &[],
        );
        let wrong_port = SocketAddrV4::new(*NAT1.ip(), NAT1.port() + 1);
        assert_dropped(&mut s, wrong_port, &b, Drop::SpoofedSource);
        assert_dropped(&mut s, NAT2, &b, Drop::SpoofedSource);
        assert!(matches!(
            run(&mut s, Local::Primary, NAT1, &b),
            Outcome::Udp(..)
        ));
    }

    /// RFC 4380 §5.3.1 checks 6 and 7: a non-Teredo source is accepted only
    /// towards one of our clients, and forwarded with an origin indication.
    #[test]
    fn check6_non_teredo_source_only_to_our_clients() {
        let mut s = server();
        // A Miredo relay's indirect bubble: link-local source.
        let relay = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 10), 3544);
        let relay_ll: Ipv6Addr = "fe80::b819:2b8:2720:b69".parse().unwrap();
        let ours = datagram(None, &bubble(relay_ll, teredo(PRIMARY, NAT1)), &[]);
        let Outcome::Udp(from, to, bytes) = run(&mut s, Local::Primary, relay, &ours) else {
            panic!("not forwarded")
        };
        assert_eq!((from, to), (Local::Primary, NAT1));
        let fwd = encap::Repr::parse(&bytes).unwrap();
        assert_eq!(fwd.origin, Some(relay));
        assert!(fwd.auth.is_none());
        assert!(bubble::is_bubble(fwd.ipv6));
        let other_server = Ipv4Addr::new(203, 0, 113, 7);
        let theirs = datagram(None, &bubble(relay_ll, teredo(other_server, NAT1)), &[]);
        assert_dropped(&mut s, relay, &theirs, Drop::NotForOurClient);
        let native = datagram(None, &bubble(NATIVE, NATIVE), &[]);
        assert_dropped(&mut s, relay, &native, Drop::NotForOurClient);
    }

    /// Packets to another server's client are forwarded without an origin
    /// indication (RFC 4380 §5.3.1 adds it only for our own clients), and
    /// RFC 6081 trailers travel along.
    #[test]
    fn forward_to_other_servers_client_keeps_trailers() {
        let mut s = server();
        let other = teredo(Ipv4Addr::new(203, 0, 113, 7), NAT2);
        let nonce_trailer = [0x01, 0x04, 0xde, 0xad, 0xbe, 0xef];
        let b = datagram(None, &bubble(teredo(PRIMARY, NAT1), other), &nonce_trailer);
        let Outcome::Udp(from, to, bytes) = run(&mut s, Local::Secondary, NAT1, &b) else {
            panic!("not forwarded")
        };
        assert_eq!((from, to), (Local::Primary, NAT2));
        let fwd = encap::Repr::parse(&bytes).unwrap();
        assert_eq!(fwd.origin, None);
        assert_eq!(fwd.trailers, &nonce_trailer);
        assert_eq!(s.stats().forwarded_teredo, 1);
    }

    /// The loop guard (Miredo's MTFL-SA-0603): nothing from our own
    /// addresses:3544, nothing to them.
    #[test]
    fn loop_guard() {
        let mut s = server();
        for own in [PRIMARY, SECONDARY] {
            let me = SocketAddrV4::new(own, TEREDO_PORT);
            let b = datagram(
                None,
                &bubble(teredo(PRIMARY, me), teredo(PRIMARY, NAT1)),
                &[],
            );
            assert_dropped(&mut s, me, &b, Drop::Loop);
            let to_me = datagram(
                None,
                &bubble(teredo(PRIMARY, NAT1), teredo(PRIMARY, me)),
                &[],
            );
            assert_dropped(&mut s, NAT1, &to_me, Drop::Loop);
        }
    }

    /// RFC 4380 §5.3.1: never forward to a non-global destination, nor to a
    /// Teredo address whose mapped IPv4 is not global.
    #[test]
    fn non_global_destinations_are_dropped() {
        let mut s = server();
        let src = teredo(PRIMARY, NAT1);
        for dst in ["fe80::1", "ff02::1", "::1", "::", "fec0::1"] {
            let b = datagram(None, &bubble(src, dst.parse().unwrap()), &[]);
            assert_dropped(&mut s, NAT1, &b, Drop::NonGlobalDestination);
        }
        let private = teredo(
            PRIMARY,
            SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 2), 1000),
        );
        assert_dropped(
            &mut s,
            NAT1,
            &datagram(None, &bubble(src, private), &[]),
            Drop::NonGlobalMapping,
        );
    }

    /// A client's echo test to a native host goes out natively, borrowed from
    /// the datagram without a copy and without the Teredo headers.
    #[test]
    fn echo_to_native_is_forwarded_natively() {
        let mut s = server();
        let ping = echo(teredo(PRIMARY, NAT1), NATIVE, &[0x42; 26]);
        let dgram = datagram(Some(NONCE), &ping, &[0x01, 0x04, 1, 2, 3, 4]);
        let mut out = [0u8; 1500];
        let Action::SendIpv6(pkt) = s.handle_udp(NOW, Local::Primary, NAT1, &dgram, &mut out)
        else {
            panic!("not forwarded natively")
        };
        assert_eq!(pkt, &ping[..]);
        assert!(
            core::ptr::eq(pkt.as_ptr(), dgram[13..].as_ptr()),
            "copied instead of borrowed"
        );
        assert_eq!(s.stats().forwarded_native, 1);
    }

    /// RFC 4380 §5.3: no data traffic. A non-bubble over the cap is refused
    /// with a rate-limited "administratively prohibited" (RFC 4443 §2.4(f)).
    #[test]
    fn oversized_packets_are_refused_with_rate_limited_errors() {
        let mut s = server();
        let src = teredo(PRIMARY, NAT1);
        let at_cap = echo(src, NATIVE, &[0; 80]);
        assert!(matches!(
            run(&mut s, Local::Primary, NAT1, &datagram(None, &at_cap, &[])),
            Outcome::Ipv6(_)
        ));
        let big = datagram(None, &echo(src, NATIVE, &[0; 81]), &[]);
        let Outcome::Udp(from, to, bytes) = run(&mut s, Local::Secondary, NAT1, &big) else {
            panic!("no error")
        };
        assert_eq!((from, to), (Local::Primary, NAT1));
        let err = DstUnreachable::parse(encap::Repr::parse(&bytes).unwrap().ipv6).unwrap();
        assert_eq!(err.reason, Icmpv6DstUnreachable::AdminProhibit);
        assert_eq!((err.src, err.dst), (addr::server_link_local(PRIMARY), src));
        for _ in 0..20 {
            run(&mut s, Local::Primary, NAT1, &big);
        }
        assert_eq!(s.stats().drops(Drop::TooBig), 21);
        assert_eq!(s.stats().icmp_errors, 10);
        assert_eq!(s.stats().icmp_errors_limited, 11);
        // Oversized bubbles do not exist (payload 0); trailers don't count.
        let b = datagram(None, &bubble(src, teredo(PRIMARY, NAT2)), &[0x00, 200]);
        assert!(matches!(
            run(&mut s, Local::Primary, NAT1, &b),
            Outcome::Udp(..)
        ));
    }

    /// A whole qualification exchange, as a Miredo client does it: our own
    /// RS codec → server → the client-side RA checks of RFC 4380 §5.2.1.
    #[test]
    fn qualification_exchange() {
        let mut s = server();
        let Outcome::Udp(_, to, bytes) = run(
            &mut s,
            Local::Primary,
            NAT1,
            &datagram(Some(NONCE), &rs(CLIENT_LL_RESTRICTED), &[]),
        ) else {
            panic!("no RA")
        };
        assert_eq!(to, NAT1);
        let reply = encap::Repr::parse(&bytes).unwrap();
        let ra = RouterAdvertisement::parse(reply.ipv6).unwrap();
        let mapped = reply.origin.unwrap();
        let prefix = ra.prefix64().unwrap();
        let server = Ipv4Addr::new(prefix[4], prefix[5], prefix[6], prefix[7]);
        let address = TeredoAddr::new(DEFAULT_PREFIX, server, 0, mapped);
        assert_eq!(
            address.to_ipv6(),
            "2001:0:c633:6401:0:63bf:39cc:9bea"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
    }

    fn any_remote() -> impl Strategy<Value = SocketAddrV4> {
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from(ip), port))
    }

    proptest! {
        /// Arbitrary datagrams never panic, and every one is either answered,
        /// forwarded or counted as a drop.
        #[test]
        fn arbitrary_datagrams_are_accounted_for(
            dgrams in proptest::collection::vec((any_remote(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)), 1..20)
        ) {
            let mut s = server();
            for (remote, secondary, bytes) in &dgrams {
                let local = if *secondary { Local::Secondary } else { Local::Primary };
                let mut out = [0u8; 1280];
                let _ = s.handle_udp(NOW, local, *remote, bytes, &mut out);
            }
            let st = s.stats();
            prop_assert_eq!(st.received, dgrams.len() as u64);
            prop_assert_eq!(st.received, st.advertisements + st.forwarded_teredo + st.forwarded_native + st.total_drops());
        }

        /// Structured inputs reach deep paths: valid headers around an
        /// arbitrary IPv6 body, from arbitrary endpoints, with tiny output
        /// buffers too.
        #[test]
        fn structured_datagrams_never_panic(
            remote in any_remote(),
            nonce in proptest::option::of(any::<[u8; 8]>()),
            header in any::<[u8; 40]>(),
            body in proptest::collection::vec(any::<u8>(), 0..120),
            out_len in 0usize..1400,
        ) {
            let mut ipv6 = header.to_vec();
            ipv6[0] = 0x60 | (ipv6[0] & 0x0f);
            let plen = (body.len() as u16).to_be_bytes();
            ipv6[4..6].copy_from_slice(&plen);
            ipv6.extend_from_slice(&body);
            let dgram = datagram(nonce, &ipv6, &[]);
            let mut s = server();
            let mut out = std::vec![0u8; out_len];
            let _ = s.handle_udp(NOW, Local::Primary, remote, &dgram, &mut out);
            let st = s.stats();
            prop_assert_eq!(1, st.advertisements + st.forwarded_teredo + st.forwarded_native + st.total_drops());
        }
    }
}
