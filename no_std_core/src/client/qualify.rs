//! Qualification and maintenance (RFC 4380 §5.2.1, §5.2.2, §5.2.5, updated
//! by RFC 5991 §3.2 and RFC 6081 §5.1.1): the Router Solicitation /
//! Router Advertisement exchanges with the Teredo server that give the
//! client its address and keep its NAT mapping alive.
//!
//! The machine is in one of three phases:
//! - **Soliciting**: an exchange is running. To qualify, one "leg" per server
//!   address (primary, and secondary for the symmetric NAT test); to refresh,
//!   the primary leg only. Every round sends an RS on each unanswered leg and
//!   waits `T`; after `N` rounds the exchange has failed.
//! - **Idle**: qualified; the next refresh is due one randomized refresh
//!   interval after the last datagram from the server.
//! - **Paused**: off-line until the restart delay has passed.
//!
//! The address the glue has configured (`current`) is kept apart from the
//! phase, so a re-qualification or a refresh can run while it stays in use.

use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::wire::{IpProtocol, Ipv6Packet};

use super::{
    Config, Ctx, Destination, Event, NatMapping, NatType, Qualification, State, Transmit,
    DEFAULT_MTU,
};
use crate::addr::{self, TeredoAddr, ALL_ROUTERS, CLIENT_LL_RESTRICTED, TEREDO_PORT};
use crate::nonce::Rng;
use crate::time::{Duration, Instant};
use crate::wire::encap::{self, AuthHeader};
use crate::wire::ndisc::{RouterAdvertisement, RouterSolicitation};
use crate::wire::{self, Error};

/// ICMPv6 type of a Router Advertisement (RFC 4861 §4.2).
const TYPE_RA: u8 = 134;

/// Bounds RFC 6081 §5.1.1 puts on the randomized refresh interval, percent.
const REFRESH_PERCENT_MIN: u8 = 50;
/// See [`REFRESH_PERCENT_MIN`].
const REFRESH_PERCENT_MAX: u8 = 150;

/// Why a Router Advertisement was dropped. Each reason is counted in
/// [`super::Stats::ra_drops`]; RFC 4380 §5.2.1 and §5.2.5 say invalid RAs are
/// dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RaDrop {
    /// No Router Solicitation is waiting for an answer from this sender (no
    /// exchange running, or this leg was already answered).
    Unsolicited,
    /// The UDP source port is not 3544: not from a Teredo server.
    WrongSourcePort,
    /// The UDP source IPv4 is not the server address the RS went to (Miredo
    /// does not check it; we do, so off-path senders must guess it too).
    WrongSourceAddress,
    /// No authentication header: our nonce cannot be checked
    /// (RFC 4380 §5.2.2).
    NoAuth,
    /// The nonce is not the one of our latest RS to that address
    /// (RFC 4380 §5.2.2: MUST discard).
    WrongNonce,
    /// Confirmation byte not 0: the server refuses our credentials
    /// (RFC 4380 §5.2.2). We use none, so the server is misconfigured.
    AuthRejected,
    /// No origin indication, so no mapping to learn (RFC 4380 §5.2.1).
    NoOrigin,
    /// Not a valid RA: RFC 4861 §6.1.2 checks (link-local source, hop limit
    /// 255, checksum, code 0, option lengths) or not exactly one Prefix
    /// Information option (RFC 4380 §5.2.1).
    InvalidRa,
    /// The IPv6 destination is not our RS source (RFC 4380 §5.2.1).
    WrongDestination,
    /// The prefix is not a /64 made of the configured Teredo prefix and the
    /// server's primary IPv4 (RFC 4380 §5.2.1).
    WrongPrefix,
    /// An MTU option outside 1280..=65535 (RFC 4380 §5.1.2; Miredo's bounds).
    BadMtu,
    /// The mapped IPv4 is not global unicast: a global Teredo address must
    /// not embed it (RFC 4380 §4, §5.2.4).
    NonGlobalMapping,
}

impl RaDrop {
    /// Every reason, in the order of the counters.
    pub const ALL: [RaDrop; 12] = [
        RaDrop::Unsolicited,
        RaDrop::WrongSourcePort,
        RaDrop::WrongSourceAddress,
        RaDrop::NoAuth,
        RaDrop::WrongNonce,
        RaDrop::AuthRejected,
        RaDrop::NoOrigin,
        RaDrop::InvalidRa,
        RaDrop::WrongDestination,
        RaDrop::WrongPrefix,
        RaDrop::BadMtu,
        RaDrop::NonGlobalMapping,
    ];

    /// A stable snake_case name, for logs and status output.
    pub fn name(self) -> &'static str {
        match self {
            RaDrop::Unsolicited => "unsolicited",
            RaDrop::WrongSourcePort => "wrong_source_port",
            RaDrop::WrongSourceAddress => "wrong_source_address",
            RaDrop::NoAuth => "no_auth",
            RaDrop::WrongNonce => "wrong_nonce",
            RaDrop::AuthRejected => "auth_rejected",
            RaDrop::NoOrigin => "no_origin",
            RaDrop::InvalidRa => "invalid_ra",
            RaDrop::WrongDestination => "wrong_destination",
            RaDrop::WrongPrefix => "wrong_prefix",
            RaDrop::BadMtu => "bad_mtu",
            RaDrop::NonGlobalMapping => "non_global_mapping",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// Whether a well-formed Teredo payload carries a Router Advertisement (its
/// IPv6 packet is ICMPv6 type 134). Such datagrams belong to qualification
/// whatever their validity: the data path must never hand a server's (or an
/// attacker's) RA to the host's IPv6 stack.
fn is_router_advertisement(repr: &encap::Repr<'_>) -> bool {
    let Ok(ipv6) = Ipv6Packet::new_checked(repr.ipv6) else {
        return false;
    };
    ipv6.next_header() == IpProtocol::Icmpv6 && ipv6.payload().first() == Some(&TYPE_RA)
}

/// What a valid RA told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    /// The client's mapping, from the origin indication.
    mapping: SocketAddrV4,
    /// The advertised /64: Teredo prefix + server IPv4.
    prefix64: [u8; 8],
    /// Link MTU.
    mtu: u16,
    /// When it arrived.
    at: Instant,
}

/// The content checks on an RA answering the RS that carried `nonce` to a
/// server whose primary address is `server` (RFC 4380 §5.2.1, §5.2.2 and
/// §5.2.5, RFC 4861 §6.1.2). The sender checks (UDP source) depend on the
/// exchange and are the caller's.
fn validate_ra(
    repr: &encap::Repr<'_>,
    nonce: [u8; 8],
    server: Ipv4Addr,
    prefix: [u8; 4],
    now: Instant,
) -> Result<Answer, RaDrop> {
    let auth = repr.auth.ok_or(RaDrop::NoAuth)?;
    if auth.nonce != nonce {
        return Err(RaDrop::WrongNonce);
    }
    if auth.confirmation != 0 {
        return Err(RaDrop::AuthRejected);
    }
    let mapping = repr.origin.ok_or(RaDrop::NoOrigin)?;
    let ra = RouterAdvertisement::parse(repr.ipv6).map_err(|_| RaDrop::InvalidRa)?;
    if ra.dst != CLIENT_LL_RESTRICTED {
        return Err(RaDrop::WrongDestination);
    }
    let mut prefix64 = [0u8; 8];
    prefix64[..4].copy_from_slice(&prefix);
    prefix64[4..].copy_from_slice(&server.octets());
    if ra.prefix64() != Some(prefix64) {
        return Err(RaDrop::WrongPrefix);
    }
    let mtu = match ra.mtu {
        None => DEFAULT_MTU,
        // 65535 is u16::MAX, so the conversion is the upper bound check.
        Some(mtu) => u16::try_from(mtu)
            .ok()
            .filter(|&mtu| mtu >= DEFAULT_MTU)
            .ok_or(RaDrop::BadMtu)?,
    };
    if !addr::is_global_unicast(*mapping.ip()) {
        return Err(RaDrop::NonGlobalMapping);
    }
    Ok(Answer {
        mapping,
        prefix64,
        mtu,
        at: now,
    })
}

/// Writes a Router Solicitation as Miredo and Windows send it: a nonce-only
/// authentication header (ID-len = AU-len = 0, confirmation 0,
/// RFC 4380 §5.2.2), then an RS from `fe80::ffff:ffff:ffff` (cone bit 0,
/// RFC 5991 §3.2) to `ff02::2` with hop limit 255 (RFC 4380 §5.2.1). 61 bytes.
fn emit_rs(nonce: [u8; 8], out: &mut [u8]) -> wire::Result<usize> {
    let header = encap::Repr {
        auth: Some(AuthHeader {
            client_id: &[],
            auth_value: &[],
            nonce,
            confirmation: 0,
        }),
        origin: None,
        ipv6: &[],
        trailers: &[],
    };
    let at = header.emit_header(out)?;
    let rs = RouterSolicitation {
        src: CLIENT_LL_RESTRICTED,
        dst: ALL_ROUTERS,
    };
    let rs_len = rs.emit(out.get_mut(at..).ok_or(Error::BufferTooSmall)?)?;
    Ok(at + rs_len)
}

/// One server address being solicited.
#[derive(Debug, Clone, Copy)]
struct Leg {
    /// The server address (UDP port 3544).
    to: Ipv4Addr,
    /// An RS must go out at the next [`Qualifier::poll_transmit`].
    due: bool,
    /// Nonce of the latest RS sent and not yet answered.
    nonce: Option<[u8; 8]>,
    /// The accepted RA.
    answer: Option<Answer>,
}

impl Leg {
    fn new(to: Ipv4Addr) -> Self {
        Leg {
            to,
            due: false,
            nonce: None,
            answer: None,
        }
    }
}

/// Why an exchange runs.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    /// Qualification with server number `server` (0 = primary, 1 =
    /// fallback), the `tried`-th server of this cycle that failed before.
    Qualify { server: u8, tried: u8 },
    /// Maintenance of the current address (RFC 4380 §5.2.5).
    Refresh,
}

/// A running RS/RA exchange.
#[derive(Debug, Clone, Copy)]
struct Solicit {
    purpose: Purpose,
    /// Rounds started so far (1..=N).
    round: u8,
    /// End of the current round.
    deadline: Instant,
    /// The server's primary address.
    primary: Leg,
    /// The server's secondary address, for the symmetric NAT test.
    secondary: Option<Leg>,
}

impl Solicit {
    fn new(purpose: Purpose, primary: Ipv4Addr, secondary: Option<Ipv4Addr>, now: Instant) -> Self {
        Solicit {
            purpose,
            round: 0,
            deadline: now,
            primary: Leg::new(primary),
            secondary: secondary.map(Leg::new),
        }
    }

    fn legs_mut(&mut self) -> impl Iterator<Item = &mut Leg> {
        core::iter::once(&mut self.primary).chain(self.secondary.as_mut())
    }

    /// Start a round: an RS on every unanswered leg, answers due by
    /// `now + timeout`.
    fn begin_round(&mut self, now: Instant, timeout: Duration) {
        self.round = self.round.saturating_add(1);
        self.deadline = now + timeout;
        for leg in self.legs_mut().filter(|leg| leg.answer.is_none()) {
            leg.due = true;
        }
    }
}

/// The exchange state.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Soliciting(Solicit),
    Idle,
    Paused { until: Instant },
}

/// The address in use.
#[derive(Debug, Clone, Copy)]
struct Current {
    address: TeredoAddr,
    mtu: u16,
    nat: NatType,
    /// Number of the server that qualified us (0 = primary, 1 = fallback).
    server: u8,
    /// Last datagram from the server's primary address and port 3544.
    last_rx: Instant,
    /// This cycle's randomized refresh interval.
    refresh_after: Duration,
}

/// The qualification and maintenance state machine behind
/// [`super::Client`].
#[derive(Debug)]
pub(super) struct Qualifier {
    config: Config,
    phase: Phase,
    current: Option<Current>,
    /// The last address built, kept after it was lost: its random flag bits
    /// are reused as long as prefix, server and mapping stay the same.
    last_address: Option<TeredoAddr>,
}

impl Qualifier {
    pub(super) fn new(config: Config, now: Instant) -> Self {
        let mut q = Qualifier {
            config,
            phase: Phase::Idle,
            current: None,
            last_address: None,
        };
        q.start_qualify(now, 0, 0);
        q
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }

    /// Number of configured servers (1 or 2).
    fn server_count(&self) -> u8 {
        if self.config.fallback_server.is_some() {
            2
        } else {
            1
        }
    }

    /// Primary and secondary address of server number `server`.
    fn server_addrs(&self, server: u8) -> (Ipv4Addr, Option<Ipv4Addr>) {
        match (server, self.config.fallback_server) {
            (1, Some(fallback)) => (fallback, self.config.fallback_secondary),
            _ => (self.config.server, self.config.server_secondary),
        }
    }

    fn next_server(&self, server: u8) -> u8 {
        server.saturating_add(1) % self.server_count()
    }

    /// Solicit server number `server` for a qualification (RFC 4380 §5.2.1).
    fn start_qualify(&mut self, now: Instant, server: u8, tried: u8) {
        let (primary, secondary) = self.server_addrs(server);
        // A secondary equal to the primary would only make the test wait for
        // an answer that is matched to the primary leg.
        let secondary = secondary.filter(|&s| s != primary);
        let mut s = Solicit::new(Purpose::Qualify { server, tried }, primary, secondary, now);
        s.begin_round(now, self.config.qualification_timeout);
        self.phase = Phase::Soliciting(s);
    }

    /// Solicit the current server to refresh the mapping (RFC 4380 §5.2.5).
    fn start_refresh(&mut self, now: Instant, server: u8) {
        let (primary, _) = self.server_addrs(server);
        let mut s = Solicit::new(Purpose::Refresh, primary, None, now);
        s.begin_round(now, self.config.qualification_timeout);
        self.phase = Phase::Soliciting(s);
    }

    pub(super) fn requalify(&mut self, now: Instant) {
        self.start_qualify(now, 0, 0);
    }

    /// A datagram from `remote`, parsed if it is a Teredo payload: whether it
    /// was a Router Advertisement, which qualification consumes.
    pub(super) fn handle_udp<R: Rng>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        repr: Option<&encap::Repr<'_>>,
        ctx: &mut Ctx<'_, R>,
    ) -> bool {
        // RFC 4380 §5.2.3: any packet from the server refreshes "last
        // interaction"; §5.2.5 then needs no RS while such packets come.
        let server = self
            .current
            .map(|c| SocketAddrV4::new(self.server_addrs(c.server).0, TEREDO_PORT));
        if let Some(current) = self.current.as_mut() {
            if server == Some(remote) && now > current.last_rx {
                current.last_rx = now;
            }
        }
        let Some(repr) = repr.filter(|r| is_router_advertisement(r)) else {
            return false;
        };
        if let Err(reason) = self.handle_ra(now, remote, repr, ctx) {
            ctx.stats.count_ra_drop(reason);
        }
        true
    }

    /// Matches an RA to the leg it answers and validates it.
    fn handle_ra<R: Rng>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        repr: &encap::Repr<'_>,
        ctx: &mut Ctx<'_, R>,
    ) -> Result<(), RaDrop> {
        let Phase::Soliciting(s) = &mut self.phase else {
            return Err(RaDrop::Unsolicited);
        };
        if remote.port() != TEREDO_PORT {
            return Err(RaDrop::WrongSourcePort);
        }
        // The prefix embeds the primary address even in the secondary's RA.
        let server = s.primary.to;
        let leg = if *remote.ip() == s.primary.to {
            &mut s.primary
        } else {
            match s.secondary.as_mut() {
                Some(leg) if *remote.ip() == leg.to => leg,
                _ => return Err(RaDrop::WrongSourceAddress),
            }
        };
        let nonce = leg.nonce.ok_or(RaDrop::Unsolicited)?;
        let answer = validate_ra(repr, nonce, server, self.config.prefix, now)?;
        leg.nonce = None;
        // An answer to the previous RS cancels a resend not yet sent.
        leg.due = false;
        leg.answer = Some(answer);
        ctx.stats.ra_accepted = ctx.stats.ra_accepted.saturating_add(1);
        let s = *s;
        if s.secondary.is_none_or(|leg| leg.answer.is_some()) {
            self.exchange_done(now, s, ctx);
        }
        Ok(())
    }

    /// Every leg of `s` is answered.
    fn exchange_done<R: Rng>(&mut self, now: Instant, s: Solicit, ctx: &mut Ctx<'_, R>) {
        let Some(first) = s.primary.answer else {
            return;
        };
        match s.purpose {
            Purpose::Qualify { server, .. } => {
                let second = s.secondary.and_then(|leg| leg.answer);
                match second {
                    None => self.qualified(server, first, NatMapping::NotTested, ctx),
                    Some(second) if second.mapping == first.mapping => {
                        self.qualified(server, first, NatMapping::ConeOrRestricted, ctx)
                    }
                    Some(second) => self.symmetric(now, server, first, second, ctx),
                }
            }
            Purpose::Refresh => match self.current {
                Some(c) => self.install(c.server, first, c.nat, ctx),
                // Unreachable: refreshes run only with an address.
                None => self.start_qualify(now, 0, 0),
            },
        }
    }

    /// RFC 4380 §5.2.1 step 7: a different mapping through the secondary
    /// address means a symmetric NAT, where RFC 4380 clients go off-line.
    fn symmetric<R: Rng>(
        &mut self,
        now: Instant,
        server: u8,
        first: Answer,
        second: Answer,
        ctx: &mut Ctx<'_, R>,
    ) {
        self.lose_address(ctx);
        let retry_at = now + self.config.restart_delay;
        ctx.emit(Event::SymmetricNat {
            server: self.server_addrs(server).0,
            primary: first.mapping,
            secondary: second.mapping,
            retry_at,
        });
        self.phase = Phase::Paused { until: retry_at };
    }

    /// Qualification succeeded with server number `server`.
    fn qualified<R: Rng>(
        &mut self,
        server: u8,
        answer: Answer,
        mapping: NatMapping,
        ctx: &mut Ctx<'_, R>,
    ) {
        let nat = NatType {
            mapping,
            // RFC 6081 §5.4.3: the mapped port equals the local port.
            port_preserving: self
                .config
                .local_port
                .map(|port| port == answer.mapping.port()),
        };
        self.install(server, answer, nat, ctx);
    }

    /// Take `answer` into use and tell the glue what changed.
    fn install<R: Rng>(&mut self, server: u8, answer: Answer, nat: NatType, ctx: &mut Ctx<'_, R>) {
        let address = self.address_for(answer, ctx.rng);
        match self.current {
            None => ctx.emit(Event::Qualified {
                address,
                mtu: answer.mtu,
                nat,
                server: address.server(),
            }),
            Some(old) => {
                // RFC 4380 §5.2.5: a mapping that no longer matches the
                // address invalidates it.
                if old.address != address {
                    ctx.emit(Event::MappingChanged {
                        old: old.address,
                        new: address,
                    });
                }
                if old.mtu != answer.mtu {
                    ctx.emit(Event::MtuChanged { mtu: answer.mtu });
                }
            }
        }
        self.current = Some(Current {
            address,
            mtu: answer.mtu,
            nat,
            server,
            last_rx: answer.at,
            refresh_after: self.draw_refresh(ctx.rng),
        });
        self.phase = Phase::Idle;
    }

    /// The address for `answer` (RFC 4380 §5.2.1 step 8): the RA's /64, then
    /// RFC 5991 §3.1 flags (cone 0, 12 random bits, reserved bits 0), then
    /// the obfuscated mapping. The random bits are kept while the rest stays
    /// the same, as Miredo does, so refreshes and server outages that leave
    /// the mapping alone do not change the address.
    fn address_for<R: Rng>(&mut self, answer: Answer, rng: &mut R) -> TeredoAddr {
        let [p0, p1, p2, p3, s0, s1, s2, s3] = answer.prefix64;
        let prefix = [p0, p1, p2, p3];
        let server = Ipv4Addr::new(s0, s1, s2, s3);
        if let Some(last) = self.last_address {
            if last.prefix() == prefix && last.server() == server && last.mapped() == answer.mapping
            {
                return last;
            }
        }
        // The 16 low bits; `random_flags` keeps the 12 RFC 5991 ones.
        let random = rng.next_u32() as u16;
        let address = TeredoAddr::new(
            prefix,
            server,
            addr::random_flags(false, random),
            answer.mapping,
        );
        self.last_address = Some(address);
        address
    }

    /// A randomized refresh interval: uniform within the configured
    /// percentages of the refresh interval, clamped to RFC 6081 §5.1.1's
    /// 50–150 % (RFC 4380 §5.2 uses 75–100 %, the default).
    fn draw_refresh<R: Rng>(&self, rng: &mut R) -> Duration {
        let lo = self
            .config
            .refresh_min_percent
            .clamp(REFRESH_PERCENT_MIN, REFRESH_PERCENT_MAX);
        let hi = self
            .config
            .refresh_max_percent
            .clamp(REFRESH_PERCENT_MIN, REFRESH_PERCENT_MAX)
            .max(lo);
        let base = self.config.refresh_interval.total_millis();
        let lo_ms = base.saturating_mul(u64::from(lo)) / 100;
        let hi_ms = base.saturating_mul(u64::from(hi)) / 100;
        let span = hi_ms.saturating_sub(lo_ms).saturating_add(1);
        let jitter = rng.next_u64().checked_rem(span).unwrap_or(0);
        Duration::from_millis(lo_ms.saturating_add(jitter))
    }

    /// Forget the current address, telling the glue.
    fn lose_address<R>(&mut self, ctx: &mut Ctx<'_, R>) {
        if let Some(current) = self.current.take() {
            ctx.emit(Event::Lost {
                address: current.address,
            });
        }
    }

    pub(super) fn handle_timeout<R: Rng>(&mut self, now: Instant, ctx: &mut Ctx<'_, R>) {
        let attempts = self.config.qualification_attempts.max(1);
        let timeout = self.config.qualification_timeout;
        match &mut self.phase {
            Phase::Soliciting(s) => {
                if now < s.deadline {
                    return;
                }
                // RFC 4380 §5.2.1: resend after T, up to N times. A leg still
                // due (the glue skipped poll_transmit) counts as lost, so the
                // machine always moves on.
                if s.round < attempts {
                    s.begin_round(now, timeout);
                } else {
                    let s = *s;
                    self.exchange_failed(now, s, ctx);
                }
            }
            Phase::Idle => {
                if let Some(c) = self.current {
                    if now >= c.last_rx + c.refresh_after {
                        self.start_refresh(now, c.server);
                    }
                }
            }
            Phase::Paused { until } => {
                if now >= *until {
                    self.start_qualify(now, 0, 0);
                }
            }
        }
    }

    /// `N` rounds of `s` went unanswered (or half answered).
    fn exchange_failed<R: Rng>(&mut self, now: Instant, s: Solicit, ctx: &mut Ctx<'_, R>) {
        match s.purpose {
            Purpose::Qualify { server, tried } => match s.primary.answer {
                // Only the secondary address was silent: the symmetric test
                // is inconclusive, qualify anyway (see NatMapping).
                Some(first) => self.qualified(server, first, NatMapping::SecondaryNoReply, ctx),
                None => self.server_silent(now, server, tried, ctx),
            },
            Purpose::Refresh => {
                // Server lost (RFC 4380 §5.2.5): re-qualify at once, with the
                // other server first if there is one.
                let server = self.current.map_or(0, |c| c.server);
                self.lose_address(ctx);
                self.start_qualify(now, self.next_server(server), 0);
            }
        }
    }

    /// Server number `server` never answered: try the next one of the cycle,
    /// or go off-line (RFC 4380 §5.2.1).
    fn server_silent<R>(&mut self, now: Instant, server: u8, tried: u8, ctx: &mut Ctx<'_, R>) {
        let tried = tried.saturating_add(1);
        let from = self.server_addrs(server).0;
        if tried < self.server_count() {
            let next = self.next_server(server);
            ctx.emit(Event::ServerSwitch {
                from,
                to: self.server_addrs(next).0,
            });
            self.start_qualify(now, next, tried);
        } else {
            self.lose_address(ctx);
            let retry_at = now + self.config.restart_delay;
            ctx.emit(Event::Offline {
                server: from,
                retry_at,
            });
            self.phase = Phase::Paused { until: retry_at };
        }
    }

    pub(super) fn poll_transmit<R: Rng>(
        &mut self,
        now: Instant,
        out: &mut [u8],
        ctx: &mut Ctx<'_, R>,
    ) -> Option<Transmit> {
        let timeout = self.config.qualification_timeout;
        let Phase::Soliciting(s) = &mut self.phase else {
            return None;
        };
        let leg = s.legs_mut().find(|leg| leg.due)?;
        leg.due = false;
        // RFC 4380 §5.2.2: a fresh nonce for every RS.
        let mut nonce = [0u8; 8];
        ctx.rng.fill_bytes(&mut nonce);
        leg.nonce = Some(nonce);
        let to = SocketAddrV4::new(leg.to, TEREDO_PORT);
        // T counts from the moment the RS actually leaves.
        s.deadline = s.deadline.max(now + timeout);
        match emit_rs(nonce, out) {
            Ok(len) => {
                ctx.stats.rs_sent = ctx.stats.rs_sent.saturating_add(1);
                Some(Transmit {
                    dest: Destination::Udp(to),
                    len,
                })
            }
            Err(_) => {
                ctx.stats.transmit_buffer_too_small =
                    ctx.stats.transmit_buffer_too_small.saturating_add(1);
                None
            }
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Soliciting(s) => Some(s.deadline),
            Phase::Idle => self.current.map(|c| c.last_rx + c.refresh_after),
            Phase::Paused { until } => Some(until),
        }
    }

    pub(super) fn qualification(&self) -> Option<Qualification> {
        self.current.map(|c| Qualification {
            address: c.address,
            mtu: c.mtu,
            nat: c.nat,
            server: c.address.server(),
        })
    }

    pub(super) fn state(&self) -> State {
        match (self.current, self.phase) {
            (Some(_), _) => State::Qualified,
            (None, Phase::Paused { until }) => State::Offline { retry_at: until },
            (None, _) => State::Qualifying,
        }
    }
}

#[cfg(test)]
mod test {
    use super::super::{Client, Config, Event, NatMapping, NatType, State, MIN_OUTPUT_BUFFER};
    use super::*;
    use crate::addr::{CLIENT_LL_CONE, DEFAULT_PREFIX, FLAG_RANDOM_MASK};
    use crate::nonce::SplitMix64;
    use proptest::prelude::*;
    use std::vec::Vec;

    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const SERVER_EP: SocketAddrV4 = SocketAddrV4::new(SERVER, TEREDO_PORT);
    const MAPPING: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 7), 40000);
    /// 2001:0 + 198.51.100.1.
    const PREFIX64: [u8; 8] = [0x20, 0x01, 0x00, 0x00, 0xc6, 0x33, 0x64, 0x01];
    const NONCE: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
    /// Length of our Router Solicitation datagram.
    const RS_LEN: usize = 61;

    /// Feeds `datagram` to the client; `true` if qualification consumed it
    /// as a Router Advertisement (accepted or dropped and counted).
    fn feed(
        client: &mut Client<SplitMix64>,
        now: Instant,
        from: SocketAddrV4,
        datagram: &[u8],
    ) -> bool {
        let before = client.stats().ra_accepted + client.stats().total_ra_drops();
        let mut out = std::vec![0u8; MIN_OUTPUT_BUFFER];
        client.handle_udp(now, from, datagram, &mut out);
        client.stats().ra_accepted + client.stats().total_ra_drops() != before
    }

    /// Miredo's RS as captured (miredo.md §3.3, teredo-spec §1.4): nonce-only
    /// authentication header, RS from fe80::ffff:ffff:ffff to ff02::2, hop
    /// limit 255, checksum 0x7d37.
    #[rustfmt::skip]
    const RS_PAYLOAD: [u8; 61] = [
        0x00, 0x01, 0x00, 0x00,
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
        0x00,
        0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x3a, 0xff,
        0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        0x85, 0x00, 0x7d, 0x37, 0x00, 0x00, 0x00, 0x00,
    ];

    /// Knobs for a hand-built RA datagram; [`Ra::valid`] answers our RS.
    #[derive(Clone)]
    struct Ra {
        auth: Option<([u8; 8], u8)>,
        origin: Option<SocketAddrV4>,
        src: core::net::Ipv6Addr,
        dst: core::net::Ipv6Addr,
        prefix64: [u8; 8],
        prefix_len: u8,
        mtu: Option<u32>,
        pio_count: usize,
        hop_limit: u8,
        bad_checksum: bool,
    }

    impl Ra {
        fn valid(nonce: [u8; 8]) -> Self {
            Ra {
                auth: Some((nonce, 0)),
                origin: Some(MAPPING),
                src: addr::server_link_local(SERVER),
                dst: CLIENT_LL_RESTRICTED,
                prefix64: PREFIX64,
                prefix_len: 64,
                mtu: Some(1280),
                pio_count: 1,
                hop_limit: 255,
                bad_checksum: false,
            }
        }

        /// The UDP payload, built with the wire codecs; PIO count, hop
        /// limit and checksum are then edited by hand, so that only the
        /// rule under test is broken.
        fn build(&self) -> Vec<u8> {
            let mut ra = RouterAdvertisement::teredo_default(self.src, self.dst, self.prefix64, 0);
            ra.mtu = self.mtu;
            ra.prefix.prefix_len = self.prefix_len;
            let mut ipv6 = std::vec![0u8; ra.buffer_len()];
            ra.emit(&mut ipv6).unwrap();
            // The PIO follows the 40-byte IPv6 header and 16-byte RA header.
            let pio: Vec<u8> = ipv6[56..88].to_vec();
            match self.pio_count {
                0 => drop(ipv6.drain(56..88)),
                1 => {}
                n => {
                    for _ in 1..n {
                        ipv6.splice(88..88, pio.iter().copied());
                    }
                }
            }
            let plen = u16::try_from(ipv6.len() - 40).unwrap();
            ipv6[4..6].copy_from_slice(&plen.to_be_bytes());
            ipv6[42..44].fill(0);
            smoltcp::wire::Icmpv6Packet::new_unchecked(&mut ipv6[40..])
                .fill_checksum(&self.src, &self.dst);
            if self.bad_checksum {
                ipv6[42] ^= 0xff;
            }
            ipv6[7] = self.hop_limit;
            let repr = encap::Repr {
                auth: self.auth.map(|(nonce, confirmation)| AuthHeader {
                    client_id: &[],
                    auth_value: &[],
                    nonce,
                    confirmation,
                }),
                origin: self.origin,
                ipv6: &ipv6,
                trailers: &[],
            };
            let mut out = std::vec![0u8; repr.buffer_len()];
            repr.emit(&mut out).unwrap();
            out
        }
    }

    /// A client soliciting `SERVER` only (no symmetric test), and the nonce
    /// of its first RS.
    fn soliciting() -> (Client<SplitMix64>, [u8; 8]) {
        let mut config = Config::new(SERVER);
        config.server_secondary = None;
        let mut client = Client::new(config, SplitMix64::new(7), Instant::ZERO);
        let mut out = [0u8; 1500];
        let tx = client.poll_transmit(Instant::ZERO, &mut out).unwrap();
        assert_eq!(tx.dest, Destination::Udp(SERVER_EP));
        assert_eq!(tx.len, RS_LEN);
        assert!(client.poll_transmit(Instant::ZERO, &mut out).is_none());
        let nonce = encap::Repr::parse(&out[..tx.len])
            .unwrap()
            .auth
            .unwrap()
            .nonce;
        (client, nonce)
    }

    #[test]
    fn rs_construct() {
        let mut buf = [0xa5u8; 70];
        assert_eq!(emit_rs(NONCE, &mut buf), Ok(61));
        assert_eq!(buf[..61], RS_PAYLOAD);
        assert!(buf[61..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn rs_deconstruct() {
        let (_, nonce) = soliciting();
        let mut out = [0u8; 61];
        emit_rs(nonce, &mut out).unwrap();
        let repr = encap::Repr::parse(&out).unwrap();
        let auth = repr.auth.unwrap();
        assert_eq!((auth.client_id, auth.auth_value), (&[][..], &[][..]));
        assert_eq!((auth.nonce, auth.confirmation), (nonce, 0));
        assert_eq!(repr.origin, None);
        let rs = RouterSolicitation::parse(repr.ipv6).unwrap();
        assert_eq!((rs.src, rs.dst), (CLIENT_LL_RESTRICTED, ALL_ROUTERS));
        assert!(repr.trailers.is_empty());
    }

    #[test]
    fn rs_nonce_fresh_per_rs() {
        let (mut client, first) = soliciting();
        client.handle_timeout(Instant::from_secs(4));
        let mut out = [0u8; 100];
        let tx = client
            .poll_transmit(Instant::from_secs(4), &mut out)
            .unwrap();
        let second = encap::Repr::parse(&out[..tx.len])
            .unwrap()
            .auth
            .unwrap()
            .nonce;
        assert_ne!(first, second);
    }

    #[test]
    fn rs_buffer_too_small_is_counted() {
        let mut client = Client::new(Config::new(SERVER), SplitMix64::new(1), Instant::ZERO);
        let mut out = [0u8; RS_LEN - 1];
        assert_eq!(client.poll_transmit(Instant::ZERO, &mut out), None);
        assert_eq!(client.stats().transmit_buffer_too_small, 1);
        assert_eq!(client.stats().rs_sent, 0);
    }

    #[test]
    fn valid_ra_qualifies() {
        let (mut client, nonce) = soliciting();
        let now = Instant::from_millis(40);
        assert!(feed(&mut client, now, SERVER_EP, &Ra::valid(nonce).build()));
        let Some(Event::Qualified {
            address,
            mtu,
            nat,
            server,
        }) = client.poll_event()
        else {
            panic!("not qualified");
        };
        assert_eq!(client.poll_event(), None);
        assert_eq!((mtu, server), (1280, SERVER));
        assert_eq!(
            nat,
            NatType {
                mapping: NatMapping::NotTested,
                port_preserving: None
            }
        );
        assert_eq!(address.prefix(), DEFAULT_PREFIX);
        assert_eq!(address.server(), SERVER);
        assert_eq!(address.mapped(), MAPPING);
        // RFC 5991 §3.1: cone 0, reserved bits 0, the rest random.
        assert_eq!(address.flags() & !FLAG_RANDOM_MASK, 0);
        assert_eq!(client.state(), State::Qualified);
        assert_eq!(client.stats().ra_accepted, 1);
        assert_eq!(client.stats().total_ra_drops(), 0);
        // A refresh is due within 75–100 % of 30 s after the RA.
        let refresh = client.poll_timeout().unwrap();
        assert!(refresh >= now + Duration::from_millis(22_500));
        assert!(refresh <= now + Duration::from_secs(30));
    }

    /// Qualifies the client of [`soliciting`] with an RA arriving at `at`.
    fn qualify(client: &mut Client<SplitMix64>, nonce: [u8; 8], at: Instant) {
        assert!(feed(client, at, SERVER_EP, &Ra::valid(nonce).build()));
        assert!(matches!(client.poll_event(), Some(Event::Qualified { .. })));
    }

    #[test]
    fn any_datagram_from_the_server_postpones_the_refresh() {
        let (mut client, nonce) = soliciting();
        qualify(&mut client, nonce, Instant::from_millis(40));
        let due = client.poll_timeout().unwrap();
        let mut bubble = [0u8; 40];
        bubble[0] = 0x60;
        bubble[6] = 59;
        // From elsewhere, or from the server's other port: no effect.
        let other = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), TEREDO_PORT);
        for from in [other, SocketAddrV4::new(SERVER, 1234)] {
            assert!(!feed(&mut client, Instant::from_secs(20), from, &bubble));
            assert_eq!(client.poll_timeout(), Some(due));
        }
        // RFC 4380 §5.2.3: from the server, it counts as interaction.
        assert!(!feed(
            &mut client,
            Instant::from_secs(20),
            SERVER_EP,
            &bubble
        ));
        let moved = Duration::from_millis(20_000 - 40);
        assert_eq!(client.poll_timeout(), Some(due + moved));
        client.handle_timeout(due);
        let mut out = [0u8; 100];
        assert_eq!(client.poll_transmit(due, &mut out), None);
    }

    #[test]
    fn refresh_with_new_mtu_reports_it() {
        let (mut client, nonce) = soliciting();
        qualify(&mut client, nonce, Instant::ZERO);
        let address = client.qualification().unwrap().address;
        let due = client.poll_timeout().unwrap();
        client.handle_timeout(due);
        let mut out = [0u8; 100];
        let tx = client.poll_transmit(due, &mut out).unwrap();
        assert_eq!(tx.dest, Destination::Udp(SERVER_EP));
        let nonce = encap::Repr::parse(&out[..tx.len])
            .unwrap()
            .auth
            .unwrap()
            .nonce;
        let mut ra = Ra::valid(nonce);
        ra.mtu = Some(1400);
        assert!(feed(&mut client, due, SERVER_EP, &ra.build()));
        assert_eq!(client.poll_event(), Some(Event::MtuChanged { mtu: 1400 }));
        assert_eq!(client.poll_event(), None);
        let q = client.qualification().unwrap();
        assert_eq!((q.address, q.mtu), (address, 1400));
    }

    #[test]
    fn mtu_option_absent_or_large() {
        for (option, mtu) in [(None, 1280), (Some(1400), 1400), (Some(65535), 65535)] {
            let (mut client, nonce) = soliciting();
            let mut ra = Ra::valid(nonce);
            ra.mtu = option;
            assert!(feed(&mut client, Instant::ZERO, SERVER_EP, &ra.build()));
            assert_eq!(client.qualification().unwrap().mtu, mtu);
        }
    }

    /// teredo-spec §8.1 items 7–12 (and our extra source checks): each rule
    /// broken once → consumed, dropped, counted under its reason; the valid
    /// RA sent next is still accepted.
    #[test]
    fn invalid_ras_are_dropped_and_counted() {
        type Edit = fn(&mut Ra, &mut SocketAddrV4);
        let cases: &[(&str, Edit, RaDrop)] = &[
            (
                "wrong nonce",
                |ra, _| {
                    ra.auth = ra
                        .auth
                        .map(|(n, c)| ([n[0] ^ 1, n[1], n[2], n[3], n[4], n[5], n[6], n[7]], c))
                },
                RaDrop::WrongNonce,
            ),
            ("no auth", |ra, _| ra.auth = None, RaDrop::NoAuth),
            (
                "confirmation 1",
                |ra, _| ra.auth = ra.auth.map(|(n, _)| (n, 1)),
                RaDrop::AuthRejected,
            ),
            ("no origin", |ra, _| ra.origin = None, RaDrop::NoOrigin),
            ("two PIOs", |ra, _| ra.pio_count = 2, RaDrop::InvalidRa),
            ("no PIO", |ra, _| ra.pio_count = 0, RaDrop::InvalidRa),
            (
                "hop limit 254",
                |ra, _| ra.hop_limit = 254,
                RaDrop::InvalidRa,
            ),
            (
                "bad checksum",
                |ra, _| ra.bad_checksum = true,
                RaDrop::InvalidRa,
            ),
            (
                "global source",
                |ra, _| ra.src = "2001:db8::1".parse().unwrap(),
                RaDrop::InvalidRa,
            ),
            (
                "destination not RS source",
                |ra, _| ra.dst = CLIENT_LL_CONE,
                RaDrop::WrongDestination,
            ),
            (
                "other server's prefix",
                |ra, _| ra.prefix64[7] = 2,
                RaDrop::WrongPrefix,
            ),
            (
                "other /32",
                |ra, _| ra.prefix64[..4].copy_from_slice(&[0x3f, 0xfe, 0x83, 0x1f]),
                RaDrop::WrongPrefix,
            ),
            ("not a /64", |ra, _| ra.prefix_len = 48, RaDrop::WrongPrefix),
            ("MTU 1279", |ra, _| ra.mtu = Some(1279), RaDrop::BadMtu),
            ("MTU 65536", |ra, _| ra.mtu = Some(65536), RaDrop::BadMtu),
            (
                "private mapping",
                |ra, _| ra.origin = Some(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000)),
                RaDrop::NonGlobalMapping,
            ),
            (
                "wrong source IPv4",
                |_, from| *from = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 9), TEREDO_PORT),
                RaDrop::WrongSourceAddress,
            ),
            (
                "wrong source port",
                |_, from| *from = SocketAddrV4::new(SERVER, 3545),
                RaDrop::WrongSourcePort,
            ),
        ];
        for &(name, edit, reason) in cases {
            let (mut client, nonce) = soliciting();
            let mut ra = Ra::valid(nonce);
            let mut from = SERVER_EP;
            edit(&mut ra, &mut from);
            assert!(
                feed(&mut client, Instant::ZERO, from, &ra.build()),
                "{name}"
            );
            assert_eq!(client.stats().ra_drops(reason), 1, "{name}");
            assert_eq!(client.stats().total_ra_drops(), 1, "{name}");
            assert_eq!(client.poll_event(), None, "{name}");
            assert_eq!(client.state(), State::Qualifying, "{name}");
            assert!(feed(
                &mut client,
                Instant::ZERO,
                SERVER_EP,
                &Ra::valid(nonce).build()
            ));
            assert!(
                matches!(client.poll_event(), Some(Event::Qualified { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn unsolicited_and_stale_ras_are_dropped() {
        let (mut client, first) = soliciting();
        // An answer to an RS that was since resent carries a stale nonce.
        client.handle_timeout(Instant::from_secs(4));
        let mut out = [0u8; 100];
        client
            .poll_transmit(Instant::from_secs(4), &mut out)
            .unwrap();
        assert!(feed(
            &mut client,
            Instant::from_secs(4),
            SERVER_EP,
            &Ra::valid(first).build()
        ));
        assert_eq!(client.stats().ra_drops(RaDrop::WrongNonce), 1);
        // Once qualified, no RS is outstanding: anything is unsolicited.
        let second = encap::Repr::parse(&out[..61]).unwrap().auth.unwrap().nonce;
        let ra = Ra::valid(second).build();
        assert!(feed(&mut client, Instant::from_secs(5), SERVER_EP, &ra));
        assert_eq!(client.stats().ra_accepted, 1);
        assert!(feed(&mut client, Instant::from_secs(5), SERVER_EP, &ra));
        assert_eq!(client.stats().ra_drops(RaDrop::Unsolicited), 1);
    }

    #[test]
    fn other_datagrams_are_left_to_the_data_path() {
        let (mut client, _) = soliciting();
        let mut rs = [0u8; 61];
        emit_rs(NONCE, &mut rs).unwrap();
        let mut bubble = [0u8; 40];
        bubble[0] = 0x60;
        bubble[6] = 59;
        for datagram in [&rs[..], &bubble[..], &[][..], &[0x00, 0x01, 0x02][..]] {
            assert!(!feed(&mut client, Instant::ZERO, SERVER_EP, datagram));
        }
        assert_eq!(client.stats().total_ra_drops(), 0);
    }

    #[test]
    fn refresh_interval_is_clamped() {
        let mut config = Config::new(SERVER);
        let mut rng = SplitMix64::new(3);
        config.refresh_min_percent = 10;
        config.refresh_max_percent = 250;
        let q = Qualifier::new(config, Instant::ZERO);
        let draws: Vec<u64> = (0..2000)
            .map(|_| q.draw_refresh(&mut rng).total_millis())
            .collect();
        assert!(draws.iter().all(|&d| (15_000..=45_000).contains(&d)));
        assert!(draws.iter().any(|&d| d < 16_000) && draws.iter().any(|&d| d > 44_000));
        config.refresh_min_percent = 120;
        config.refresh_max_percent = 80;
        let q = Qualifier::new(config, Instant::ZERO);
        assert_eq!(q.draw_refresh(&mut rng), Duration::from_secs(36));
    }

    proptest! {
        #[test]
        fn arbitrary_datagrams_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            port in any::<u16>(),
        ) {
            let (mut client, _) = soliciting();
            feed(&mut client, Instant::ZERO, SocketAddrV4::new(SERVER, port), &bytes);
            feed(&mut client, Instant::ZERO, SERVER_EP, &bytes);
        }

        #[test]
        fn corrupted_ras_never_panic(at in 0usize..117, xor in 1u8..) {
            let (mut client, nonce) = soliciting();
            let mut ra = Ra::valid(nonce).build();
            if let Some(b) = ra.get_mut(at) {
                *b ^= xor;
            }
            if feed(&mut client, Instant::ZERO, SERVER_EP, &ra) {
                let s = client.stats();
                prop_assert_eq!(s.ra_accepted + s.total_ra_drops(), 1);
            }
        }
    }
}
