//! The status socket of a running role, and `shipworm status`.
//!
//! Each role listens on a Unix stream socket (`--status-socket`, default
//! [`default_path`]: one per role, so a client and a relay on one router do
//! not collide). The protocol is one-shot and has no request: a client
//! connects, the daemon writes one JSON document and closes. The listener
//! is one more descriptor in the role's `poll(2)`; connections are accepted
//! without blocking, at most [`ACCEPTS_PER_WAKE`] per wake, and the document
//! (a few hundred bytes, rendered into a buffer allocated once) is written
//! with one non-blocking `write`: a reader that does not read cannot stall
//! the loop, it just gets a cut document.
//!
//! The socket is created while the process is still root, then given to the
//! user the role switches to (mode 0600): root and that user can query it.
//! A socket file left by a dead instance is replaced at start; one that a
//! live instance still answers on is an error for an explicit
//! `--status-socket`, and only a warning for the default path (the role
//! runs on without a status socket). The file is removed at exit when the
//! directory still allows it (after the switch to an unprivileged user, a
//! root-owned `/run` does not: the next start replaces it).
//!
//! # JSON document (version 1)
//!
//! One object; every field is always present (`null` when unknown), new
//! fields may be added, existing ones keep their name, type and meaning.
//! Counters are unsigned 64-bit integers counted since start.
//!
//! Common fields:
//! - `"version"`: 1; `"role"`: `"server"`, `"client"` or `"relay"`;
//!   `"pid"`: process ID; `"uptime_s"`: seconds since the role started.
//!
//! `server`:
//! - `"addresses"`: `["<primary>:3544", "<secondary>:3544"]`;
//!   `"prefix"`: `"2001::/32"`; `"mtu"`: advertised MTU;
//! - `"stats"`: `received`, `advertisements`, `forwarded_teredo`,
//!   `forwarded_native`, `icmp_errors`, `icmp_errors_limited`, `dropped`;
//! - `"drops"`: one counter per drop reason of the core (its stable
//!   snake_case names), zeros included;
//! - `"sockets"`: `received`, `truncated`, `sent_udp`, `sent_ipv6`,
//!   `send_failed`.
//!
//! `relay`:
//! - `"kind"`: `"cone"` or `"restricted"`; `"interface"`; `"prefix"`;
//!   `"mtu"`; `"address"`: the UDP socket's `"ip:port"`;
//! - `"peers"`: `{"count": n, "capacity": n}`;
//! - `"traffic"`: `from_tunnel`, `to_clients`, `from_clients`,
//!   `to_tunnel`, each `{"packets": n, "bytes": n}`;
//! - `"stats"`: `sent_direct`, `queued`, `flushed`, `bubbles_sent`,
//!   `bubbles_received`, `peers_trusted`, `icmp_errors_sent`,
//!   `icmp_errors_limited`, `transmit_buffer_too_small`, `dropped`;
//! - `"drops"`: per reason, as for the server;
//! - `"sockets"`: `udp_received`, `udp_truncated`, `udp_sent`,
//!   `udp_send_failed`, `tun_read`, `tun_written`, `tun_write_failed`.
//!
//! `client`:
//! - `"state"`: `"qualifying"`, `"qualified"` or `"offline"`;
//!   `"interface"`; `"local"`: the service port's `"ip:port"`;
//!   `"servers"`: `["<primary>"]` or `["<primary>", "<fallback>"]`;
//! - `"address"`: Teredo address or `null`; `"mapped"`:
//!   `{"address": "<IPv4>", "port": n}` or `null`; `"server"`: the
//!   server that qualified it or `null`; `"mtu"`: from its RA or `null`;
//!   `"nat"`: `{"mapping": "cone_or_restricted" | "not_tested" |
//!   "secondary_no_reply", "port_preserving": true | false | null}` or
//!   `null`; `"qualified_s"`: seconds since qualification or `null`;
//! - `"peers"`: `{"count": n, "capacity": n}`;
//! - `"stats"`: `rs_sent`, `ra_accepted`, `delivered`, `sent_direct`,
//!   `queued`, `flushed`, `bubbles_sent`, `bubbles_received`,
//!   `echo_requests_sent`, `peers_trusted`, `icmp_errors_sent`,
//!   `icmp_errors_limited`, `ra_dropped`, `data_dropped`;
//! - `"ra_drops"`, `"data_drops"`: per reason;
//! - `"sockets"`: `received`, `sent`, `send_failed`, `tunnel_read`,
//!   `tunnel_written`, `tunnel_write_failed`, `ipv4_changes`.
//!
//! JSON is written by hand ([`Json`]): a serializer would cost more binary
//! than the whole module.
//!
//! # Code size
//!
//! Routers have little flash, so the module is written for a small binary.
//! The renderers ([`server`], [`relay`], [`client`]) are never inlined into
//! the roles' loops: there the statistics sit deep inside the role's state
//! (behind the peer table), each field at an offset that takes three
//! instructions to form, where a renderer given `&Stats` reaches it in one.
//! Counters go through [`Json::counters`] (two arrays) rather than a call
//! per member, and [`StatusSocket::serve`] takes a trait object, so one
//! copy serves all three roles.

use core::fmt::{self, Write as _};
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};

use log::{debug, warn};
use shipworm_core::client::{
    DataDrop, NatMapping, Qualification, RaDrop, State as ClientState, Stats as ClientStats,
};
use shipworm_core::peers::PeerTable;
use shipworm_core::relay::{
    Config as RelayConfig, Drop as RelayDrop, RelayKind, Stats as RelayStats,
};
use shipworm_core::server::{Config as ServerConfig, Drop as ServerDrop, Stats as ServerStats};

use shipworm_core::time::Instant;

use crate::role::Error;
use crate::sys::clock;
use crate::sys::poll::PollFd;
use crate::sys::user::Account;

/// Connections served per wake of the loop.
pub const ACCEPTS_PER_WAKE: usize = 4;

/// Bytes reserved once for the document; it grows only if a role ever
/// writes more (it does not: the largest is about 2 KB).
const DOCUMENT_CAPACITY: usize = 4096;

/// The largest document `shipworm status` accepts.
const MAX_DOCUMENT: usize = 1 << 16;

/// The status socket of `role` when `--status-socket` is not given.
pub fn default_path(role: &str) -> PathBuf {
    PathBuf::from(["/var/run/shipworm-", role, ".sock"].concat())
}

/// The roles in the order `shipworm status` looks for their default
/// sockets.
pub const ROLES: [&str; 3] = ["client", "relay", "server"];

/// A JSON object being written into a `String`.
///
/// Nested objects are written by the same writer between [`Json::begin`]
/// and [`Json::close`] rather than by closures: a closure per nested
/// object would be one more copy of the calls in the binary.
#[derive(Debug)]
pub struct Json<'a> {
    out: &'a mut String,
    /// No member yet in the innermost open object: no comma before the
    /// next one.
    first: bool,
}

impl<'a> Json<'a> {
    /// Start an object in `out`.
    pub fn object(out: &'a mut String) -> Self {
        out.push('{');
        Json { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(self.out, key);
        self.out.push(':');
    }

    /// A string member.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        string(self.out, value);
        self
    }

    /// A string member from a `Display` value whose text needs no escaping
    /// (addresses, prefixes). Not generic: one copy serves every address
    /// type.
    pub fn display(&mut self, key: &str, value: &dyn fmt::Display) -> &mut Self {
        self.key(key);
        let _ = write!(self.out, "\"{value}\"");
        self
    }

    /// A number member.
    pub fn num(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// A `true` / `false` / `null` member.
    pub fn opt_bool(&mut self, key: &str, value: Option<bool>) -> &mut Self {
        self.key(key);
        self.out.push_str(match value {
            Some(true) => "true",
            Some(false) => "false",
            None => "null",
        });
        self
    }

    /// A `null` member.
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.push_str("null");
        self
    }

    /// An array of strings from `Display` values that need no escaping,
    /// as for [`Json::display`].
    pub fn strings(&mut self, key: &str, values: &[&dyn fmt::Display]) -> &mut Self {
        self.key(key);
        self.out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "\"{v}\"");
        }
        self.out.push(']');
        self
    }

    /// Open the nested object `key`: the next members go into it, up to
    /// the matching [`Json::close`].
    pub fn begin(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.push('{');
        self.first = true;
        self
    }

    /// Close the innermost object opened by [`Json::begin`].
    pub fn close(&mut self) -> &mut Self {
        self.out.push('}');
        self.first = false;
        self
    }

    /// The nested object `key` of counters: `names[i]` is `values[i]`.
    /// Two arrays of one length (checked by the compiler) instead of a
    /// call per member: the names stay in read-only data and each value
    /// costs one copy into the array.
    pub fn counters<const N: usize>(
        &mut self,
        key: &str,
        names: &[&str; N],
        values: &[u64; N],
    ) -> &mut Self {
        self.counter_slices(key, names, values)
    }

    /// [`counters`](Json::counters) once for every length.
    fn counter_slices(&mut self, key: &str, names: &[&str], values: &[u64]) -> &mut Self {
        self.begin(key);
        for (name, &value) in names.iter().zip(values) {
            self.num(name, value);
        }
        self.close()
    }

    /// The nested object `key` of `(name, value)` counters (the glue's
    /// socket counters).
    pub fn pairs(&mut self, key: &str, pairs: &[(&str, u64)]) -> &mut Self {
        self.begin(key);
        for &(name, value) in pairs {
            self.num(name, value);
        }
        self.close()
    }

    /// Close the object.
    pub fn end(self) {
        self.out.push('}');
    }
}

/// `s` as a JSON string (RFC 8259 §7): quote, backslash and control
/// characters escaped.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `"prefix"` and `"mtu"`, common to the server and the relay.
fn prefix_and_mtu(j: &mut Json<'_>, [a, b, c, d]: [u8; 4], mtu: u64) {
    let prefix = Ipv6Addr::from([a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    j.display("prefix", &format_args!("{prefix}/32"))
        .num("mtu", mtu);
}

/// The `server` fields: its addresses and the core's and the sockets'
/// counters (`sockets`: name and value pairs, as documented above).
#[inline(never)] // see "Code size" in the module documentation
pub fn server(j: &mut Json<'_>, config: &ServerConfig, s: &ServerStats, sockets: &[(&str, u64)]) {
    let port = shipworm_core::addr::TEREDO_PORT;
    j.strings(
        "addresses",
        &[
            &SocketAddrV4::new(config.primary, port),
            &SocketAddrV4::new(config.secondary, port),
        ],
    );
    prefix_and_mtu(j, config.prefix, config.mtu.into());
    j.counters(
        "stats",
        &[
            "received",
            "advertisements",
            "forwarded_teredo",
            "forwarded_native",
            "icmp_errors",
            "icmp_errors_limited",
            "dropped",
        ],
        &[
            s.received,
            s.advertisements,
            s.forwarded_teredo,
            s.forwarded_native,
            s.icmp_errors,
            s.icmp_errors_limited,
            s.total_drops(),
        ],
    )
    .begin("drops");
    for r in ServerDrop::ALL {
        j.num(r.name(), s.drops(r));
    }
    j.close().pairs("sockets", sockets);
}

/// `"peers"`: how many the table holds, of how many.
fn peers(j: &mut Json<'_>, len: usize, capacity: usize) {
    j.counters(
        "peers",
        &["count", "capacity"],
        &[len as u64, capacity as u64],
    );
}

/// The `relay` fields.
#[inline(never)] // see "Code size" in the module documentation
pub fn relay<const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>(
    j: &mut Json<'_>,
    config: &RelayConfig,
    interface: &str,
    local: SocketAddrV4,
    peer_table: &PeerTable<N, B, SLOTS, SLOT_SIZE>,
    s: &RelayStats,
    sockets: &[(&str, u64)],
) {
    j.str(
        "kind",
        match config.kind {
            RelayKind::Cone => "cone",
            RelayKind::Restricted => "restricted",
        },
    )
    .str("interface", interface);
    prefix_and_mtu(j, config.prefix, config.mtu.into());
    j.display("address", &local);
    peers(j, peer_table.len(), peer_table.capacity());
    j.begin("traffic");
    for (name, t) in [
        ("from_tunnel", s.from_tunnel),
        ("to_clients", s.to_clients),
        ("from_clients", s.from_clients),
        ("to_tunnel", s.to_tunnel),
    ] {
        j.counters(name, &["packets", "bytes"], &[t.packets, t.bytes]);
    }
    j.close()
        .counters(
            "stats",
            &[
                "sent_direct",
                "queued",
                "flushed",
                "bubbles_sent",
                "bubbles_received",
                "peers_trusted",
                "icmp_errors_sent",
                "icmp_errors_limited",
                "transmit_buffer_too_small",
                "dropped",
            ],
            &[
                s.sent_direct,
                s.queued,
                s.flushed,
                s.bubbles_sent,
                s.bubbles_received,
                s.peers_trusted,
                s.icmp_errors_sent,
                s.icmp_errors_limited,
                s.transmit_buffer_too_small,
                s.total_drops(),
            ],
        )
        .begin("drops");
    for r in RelayDrop::ALL {
        j.num(r.name(), s.drops(r));
    }
    j.close().pairs("sockets", sockets);
}

/// What the client glue knows besides the core: for [`client`].
#[derive(Debug, Clone, Copy)]
pub struct ClientView<'a> {
    /// Tunnel interface name.
    pub interface: &'a str,
    /// The service port's address.
    pub local: SocketAddrV4,
    /// Primary and optional fallback server.
    pub servers: (Ipv4Addr, Option<Ipv4Addr>),
    /// How long the client has been qualified, if it is.
    pub qualified_for: Option<core::time::Duration>,
}

/// The `client` fields.
#[inline(never)] // see "Code size" in the module documentation
pub fn client<const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>(
    j: &mut Json<'_>,
    view: ClientView<'_>,
    state: ClientState,
    q: Option<Qualification>,
    peer_table: &PeerTable<N, B, SLOTS, SLOT_SIZE>,
    s: &ClientStats,
    sockets: &[(&str, u64)],
) {
    let (primary, fallback) = view.servers;
    // The primary server, then the fallback if there is one.
    let servers: [&dyn fmt::Display; 2] = [&primary, fallback.as_ref().map_or(&primary, |f| f)];
    let count = 1 + usize::from(fallback.is_some());
    j.str(
        "state",
        match state {
            ClientState::Qualifying => "qualifying",
            ClientState::Qualified => "qualified",
            ClientState::Offline { .. } => "offline",
        },
    )
    .str("interface", view.interface)
    .display("local", &view.local)
    .strings("servers", servers.get(..count).unwrap_or_default());
    match q {
        Some(q) => {
            let mapped = q.address.mapped();
            j.display("address", &q.address.to_ipv6())
                .begin("mapped")
                .display("address", mapped.ip())
                .num("port", mapped.port().into())
                .close()
                .display("server", &q.server)
                .num("mtu", q.mtu.into())
                .begin("nat")
                .str(
                    "mapping",
                    match q.nat.mapping {
                        NatMapping::ConeOrRestricted => "cone_or_restricted",
                        NatMapping::NotTested => "not_tested",
                        NatMapping::SecondaryNoReply => "secondary_no_reply",
                    },
                )
                .opt_bool("port_preserving", q.nat.port_preserving)
                .close();
        }
        None => {
            for key in ["address", "mapped", "server", "mtu", "nat"] {
                j.null(key);
            }
        }
    }
    match view.qualified_for {
        Some(d) => j.num("qualified_s", d.as_secs()),
        None => j.null("qualified_s"),
    };
    peers(j, peer_table.len(), peer_table.capacity());
    j.counters(
        "stats",
        &[
            "rs_sent",
            "ra_accepted",
            "delivered",
            "sent_direct",
            "queued",
            "flushed",
            "bubbles_sent",
            "bubbles_received",
            "echo_requests_sent",
            "peers_trusted",
            "icmp_errors_sent",
            "icmp_errors_limited",
            "ra_dropped",
            "data_dropped",
        ],
        &[
            s.rs_sent,
            s.ra_accepted,
            s.delivered,
            s.sent_direct,
            s.queued,
            s.flushed,
            s.bubbles_sent,
            s.bubbles_received,
            s.echo_requests_sent,
            s.peers_trusted,
            s.icmp_errors_sent,
            s.icmp_errors_limited,
            s.total_ra_drops(),
            s.total_data_drops(),
        ],
    )
    .begin("ra_drops");
    for r in RaDrop::ALL {
        j.num(r.name(), s.ra_drops(r));
    }
    j.close().begin("data_drops");
    for r in DataDrop::ALL {
        j.num(r.name(), s.data_drops(r));
    }
    j.close().pairs("sockets", sockets);
}

/// The listening status socket of a role.
#[derive(Debug)]
pub struct StatusSocket {
    /// `None`: the default path was unavailable; the role runs without.
    listener: Option<UnixListener>,
    path: PathBuf,
    role: &'static str,
    /// On the roles' clock ([`clock::now`]), which needs no more code.
    started: Instant,
    document: String,
}

impl StatusSocket {
    /// Listen on `path` (`None`: [`default_path`]), owned by `owner` when
    /// the role will switch to that user.
    pub fn open(
        role: &'static str,
        path: Option<&Path>,
        owner: Option<Account>,
    ) -> Result<StatusSocket, Error> {
        let explicit = path.is_some();
        let path = path.map_or_else(|| default_path(role), Path::to_path_buf);
        let listener = match listen(&path, owner) {
            Ok(l) => Some(l),
            Err(e) => {
                // "PATH: error", shared by both messages.
                let why = format!("{}: {e}", path.display());
                if explicit {
                    return Err(Error::Startup(
                        ["cannot create the status socket ", &why].concat(),
                    ));
                }
                warn!(
                    "no status socket: cannot create {why} (choose another with '--status-socket')"
                );
                None
            }
        };
        Ok(StatusSocket {
            listener,
            path,
            role,
            started: clock::now(),
            document: String::with_capacity(DOCUMENT_CAPACITY),
        })
    }

    /// The listener for the role's `poll`; an ignored entry without one.
    pub fn poll_fd(&self) -> PollFd<'_> {
        PollFd::readable_opt(self.listener.as_ref().map(|l| l.as_fd()))
    }

    /// Accept waiting connections and answer each with the document that
    /// `render` fills in (after the common fields), rendered once. A trait
    /// object: one copy of this for every role.
    pub fn serve(&mut self, render: &mut dyn FnMut(&mut Json<'_>)) {
        let Some(listener) = &self.listener else {
            return;
        };
        let mut rendered = false;
        for _ in 0..ACCEPTS_PER_WAKE {
            let mut stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    debug!("status socket: accept: {e}");
                    return;
                }
            };
            if !rendered {
                rendered = true;
                self.document.clear();
                let mut j = Json::object(&mut self.document);
                j.num("version", 1)
                    .str("role", self.role)
                    .num("pid", std::process::id().into())
                    .num(
                        "uptime_s",
                        clock::now()
                            .saturating_duration_since(self.started)
                            .total_millis()
                            / 1000,
                    );
                render(&mut j);
                j.end();
                self.document.push('\n');
            }
            let sent = stream
                .set_nonblocking(true)
                .and_then(|()| stream.write(self.document.as_bytes()));
            match sent {
                Ok(n) if n == self.document.len() => {}
                Ok(n) => debug!(
                    "status socket: reader took {n} of {} bytes",
                    self.document.len()
                ),
                Err(e) => debug!("status socket: write: {e}"),
            }
        }
    }
}

impl Drop for StatusSocket {
    fn drop(&mut self) {
        if self.listener.is_some() {
            if let Err(e) = fs::remove_file(&self.path) {
                debug!("cannot remove {}: {e}", self.path.display());
            }
        }
    }
}

/// Bind `path`, replacing a stale socket file (but never a live one or
/// another kind of file).
fn listen(path: &Path, owner: Option<Account>) -> io::Result<UnixListener> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            ));
        }
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another running instance answers on it",
                ))
            }
            Err(_) => fs::remove_file(path)?,
        }
    }
    let listener = UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    if let Some(a) = owner {
        std::os::unix::fs::chown(path, Some(a.uid), Some(a.gid))?;
    }
    Ok(listener)
}

/// Read the document a daemon serves on `path`; at most [`MAX_DOCUMENT`]
/// bytes are kept.
pub fn query(path: &Path) -> io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    // A plain loop rather than `Read::take` and `read_to_string`, whose
    // generic machinery would be about a kilobyte for this one use.
    let mut doc = Vec::new();
    let mut buf = [0; 1024];
    while doc.len() < MAX_DOCUMENT {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => doc.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    doc.truncate(MAX_DOCUMENT);
    String::from_utf8(doc)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the document is not UTF-8"))
}

/// `shipworm status`: query `socket`, or the first default socket that
/// answers, and print the document as JSON or as indented text. Returns
/// the exit status: 0, or 1 when no daemon answered.
pub fn command(json: bool, socket: Option<&Path>) -> u8 {
    let given = socket.map(Path::to_path_buf);
    let defaults = ROLES.map(default_path);
    let paths = match &given {
        Some(p) => core::slice::from_ref(p),
        None => &defaults[..],
    };
    let mut failure = None;
    for path in paths {
        // Every default socket file that exists is tried: one left by a role
        // that had dropped root (and so could not remove it from `/run`)
        // no longer answers, and must not hide the socket of a role that
        // runs.
        if given.is_none() && !path.exists() {
            continue;
        }
        match query(path) {
            Ok(doc) => {
                let text = if json { Some(doc) } else { to_text(&doc) };
                let Some(text) = text else {
                    eprintln!(
                        "shipworm: {} sent a malformed status document",
                        path.display()
                    );
                    return 1;
                };
                print!("{text}");
                return 0;
            }
            // The first socket's failure is the one reported.
            Err(e) => {
                failure.get_or_insert((path, e));
            }
        }
    }
    match failure {
        Some((path, e)) => eprintln!("shipworm: cannot query {}: {e}", path.display()),
        None => eprintln!(
            "shipworm: no status socket at {DEFAULT_PATHS}; is a role running? (or give '--socket')"
        ),
    }
    1
}

/// Every [`default_path`] in [`ROLES`] order, for the message of
/// [`command`] (a literal: no formatting at run time; a test keeps it in
/// step).
const DEFAULT_PATHS: &str =
    "/var/run/shipworm-client.sock, /var/run/shipworm-relay.sock, /var/run/shipworm-server.sock";

/// The document as `key: value` lines, nested objects indented, strings
/// unquoted, `null` as `-`. `None` if it is not the JSON this module writes.
pub fn to_text(json: &str) -> Option<String> {
    let mut r = Reader { s: json, i: 0 };
    let mut out = String::new();
    r.expect(b'{')?;
    r.members(&mut out, 0)?;
    r.ws();
    (r.i == r.s.len()).then_some(out)
}

/// A cursor over the document for [`to_text`].
struct Reader<'a> {
    s: &'a str,
    i: usize,
}

impl Reader<'_> {
    /// Deepest nesting accepted: the documents use two levels.
    const MAX_DEPTH: usize = 8;

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    /// Skip white space, then `b` if it comes next.
    fn expect(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.peek() == Some(b)).then(|| self.i += 1)
    }

    /// Members of an object whose `{` was read, through its `}`.
    fn members(&mut self, out: &mut String, depth: usize) -> Option<()> {
        if depth > Self::MAX_DEPTH {
            return None;
        }
        if self.expect(b'}').is_some() {
            return Some(());
        }
        loop {
            for _ in 0..depth {
                out.push_str("  ");
            }
            self.ws();
            self.string(out)?;
            self.expect(b':')?;
            out.push(':');
            if self.expect(b'{').is_some() {
                out.push('\n');
                self.members(out, depth + 1)?;
            } else {
                out.push(' ');
                self.value(out)?;
                out.push('\n');
            }
            if self.expect(b'}').is_some() {
                return Some(());
            }
            self.expect(b',')?;
        }
    }

    /// A scalar or an array of scalars, on one line.
    fn value(&mut self, out: &mut String) -> Option<()> {
        if self.expect(b'[').is_none() {
            return self.scalar(out);
        }
        if self.expect(b']').is_some() {
            return Some(());
        }
        loop {
            self.ws();
            self.scalar(out)?;
            if self.expect(b']').is_some() {
                return Some(());
            }
            self.expect(b',')?;
            out.push_str(", ");
        }
    }

    fn scalar(&mut self, out: &mut String) -> Option<()> {
        if self.peek()? == b'"' {
            return self.string(out);
        }
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'+')
        {
            self.i += 1;
        }
        match self.s.get(start..self.i)? {
            "" => return None,
            "null" => out.push('-'),
            w => out.push_str(w),
        }
        Some(())
    }

    /// A string, unescaped into `out` (RFC 8259 §7 escapes only).
    fn string(&mut self, out: &mut String) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        loop {
            // Copy up to the next quote or backslash. Both are ASCII, so
            // the run ends on a character boundary of the `str`.
            let rest = self.s.as_bytes().get(self.i..)?;
            let end = self.i + rest.iter().position(|&b| b == b'"' || b == b'\\')?;
            out.push_str(self.s.get(self.i..end)?);
            self.i = end + 1;
            if self.s.as_bytes().get(end) == Some(&b'"') {
                return Some(());
            }
            let escape = self.peek()?;
            self.i += 1;
            out.push(match escape {
                b'"' | b'\\' | b'/' => char::from(escape),
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'u' => {
                    let hex = self.s.get(self.i..self.i + 4)?;
                    self.i += 4;
                    // `from_str_radix` alone would take a sign too.
                    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return None;
                    }
                    // Surrogates (never written by this module) become
                    // U+FFFD.
                    char::from_u32(u32::from_str_radix(hex, 16).ok()?)
                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                }
                _ => return None,
            });
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn json_escaping() {
        let mut out = String::new();
        let mut j = Json::object(&mut out);
        j.str("a\"b", "q\"\\\n\t\r\u{1}é\u{1f}z")
            .num("n", u64::MAX)
            .null("x")
            .opt_bool("t", Some(true))
            .opt_bool("f", Some(false))
            .opt_bool("u", None)
            .strings("l", &[&"1.2.3.4:5", &"2001:db8::1"])
            .strings("e", &[])
            .begin("o")
            .counters("t", &["packets", "bytes"], &[1, 2])
            .close()
            .begin("empty")
            .close();
        j.end();
        assert_eq!(
            out,
            r#"{"a\"b":"q\"\\\n\t\r\u0001é\u001fz","n":18446744073709551615,"x":null,"t":true,"f":false,"u":null,"l":["1.2.3.4:5","2001:db8::1"],"e":[],"o":{"t":{"packets":1,"bytes":2}},"empty":{}}"#
        );
    }

    #[test]
    fn text_rendering() {
        let doc = r#"{"role":"server","n":3,"x":null,"l":["a","b\"c"],"e":[],"o":{"t":{"packets":1,"bytes":2},"u":"\u0041\n"},"empty":{}}"#;
        assert_eq!(
            to_text(doc).unwrap(),
            "role: server\nn: 3\nx: -\nl: a, b\"c\ne: \no:\n  t:\n    packets: 1\n    bytes: 2\n  u: A\n\nempty:\n"
        );
        for bad in [
            "",
            "[]",
            "{",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":"x}"#,
            r#"{"a":[1,}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":1} x"#,
            r#"{"a":"\q"}"#,
            r#"{"a":"\u+123"}"#,
            r#"{"a" "b"}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":[1 2]}"#,
            r#"{,}"#,
            &format!("{}1{}", r#"{"a":"#.repeat(20), "}".repeat(20)),
        ] {
            assert_eq!(to_text(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn default_paths() {
        let all: Vec<String> = ROLES
            .iter()
            .map(|r| default_path(r).display().to_string())
            .collect();
        assert_eq!(DEFAULT_PATHS, all.join(", "));
    }

    #[test]
    fn server_document() {
        let config = ServerConfig::new(Ipv4Addr::new(198, 51, 100, 1));
        let mut stats = ServerStats::default();
        stats.received = 7;
        stats.advertisements = 3;
        stats.forwarded_teredo = 2;
        stats.forwarded_native = 1;
        let mut out = String::new();
        let mut j = Json::object(&mut out);
        server(
            &mut j,
            &config,
            &stats,
            &[("received", 9), ("send_failed", 0)],
        );
        j.end();
        let want_head = concat!(
            r#"{"addresses":["198.51.100.1:3544","198.51.100.2:3544"],"prefix":"2001::/32","#,
            r#""mtu":1280,"stats":{"received":7,"advertisements":3,"forwarded_teredo":2,"#,
            r#""forwarded_native":1,"icmp_errors":0,"icmp_errors_limited":0,"dropped":0},"drops":{"#
        );
        assert!(out.starts_with(want_head), "{out}");
        assert!(
            out.ends_with(r#"},"sockets":{"received":9,"send_failed":0}}"#),
            "{out}"
        );
        for r in ServerDrop::ALL {
            assert!(out.contains(&format!("\"{}\":0", r.name())), "{out}");
        }
        assert!(to_text(&out)
            .unwrap()
            .starts_with("addresses: 198.51.100.1:3544, 198.51.100.2:3544\n"));
    }

    #[test]
    fn client_document_before_qualification() {
        let peers: PeerTable<4, 8, 2, 1280> = PeerTable::new([7; 16]);
        let view = ClientView {
            interface: "teredo",
            local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 40000),
            servers: (
                Ipv4Addr::new(198, 51, 100, 1),
                Some(Ipv4Addr::new(203, 0, 113, 1)),
            ),
            qualified_for: None,
        };
        let mut out = String::new();
        let mut j = Json::object(&mut out);
        client(
            &mut j,
            view,
            ClientState::Qualifying,
            None,
            &peers,
            &ClientStats::default(),
            &[("received", 1)],
        );
        j.end();
        let want_head = concat!(
            r#"{"state":"qualifying","interface":"teredo","local":"192.0.2.2:40000","#,
            r#""servers":["198.51.100.1","203.0.113.1"],"address":null,"mapped":null,"#,
            r#""server":null,"mtu":null,"nat":null,"qualified_s":null,"#,
            r#""peers":{"count":0,"capacity":4},"stats":{"rs_sent":0,"#
        );
        assert!(out.starts_with(want_head), "{out}");
        assert!(out.ends_with(r#""sockets":{"received":1}}"#), "{out}");
        assert!(to_text(&out).is_some());
    }

    /// The document `fill` writes, as `serve` frames it (without the
    /// common fields).
    fn document(fill: impl FnOnce(&mut Json<'_>)) -> String {
        let mut out = String::new();
        let mut j = Json::object(&mut out);
        fill(&mut j);
        j.end();
        out
    }

    /// Distinct counter values, so that a swapped pair shows.
    fn server_stats() -> ServerStats {
        let mut s = ServerStats::default();
        s.received = 11;
        s.advertisements = 12;
        s.forwarded_teredo = 13;
        s.forwarded_native = 14;
        s.icmp_errors = 15;
        s.icmp_errors_limited = 16;
        s
    }

    #[test]
    fn server_golden() {
        let mut config = ServerConfig::new(Ipv4Addr::new(198, 51, 100, 1));
        config.prefix = [0x20, 0x01, 0x0d, 0xb8];
        config.mtu = 1400;
        let doc = document(|j| {
            server(
                j,
                &config,
                &server_stats(),
                &[("received", 1), ("truncated", 2), ("sent_udp", 3)],
            )
        });
        let want = concat!(
            r#"{"addresses":["198.51.100.1:3544","198.51.100.2:3544"],"#,
            r#""prefix":"2001:db8::/32","mtu":1400,"stats":{"received":11,"#,
            r#""advertisements":12,"forwarded_teredo":13,"forwarded_native":14,"#,
            r#""icmp_errors":15,"icmp_errors_limited":16,"dropped":0},"drops":{"malformed":0,"#,
            r#""not_bubble_or_icmpv6":0,"non_global_source":0,"spoofed_source":0,"#,
            r#""not_for_our_client":0,"loop":0,"invalid_rs":0,"rs_checksum":0,"#,
            r#""non_global_destination":0,"non_global_mapping":0,"too_big":0,"#,
            r#""buffer_too_small":0},"sockets":{"received":1,"truncated":2,"sent_udp":3}}"#,
        );
        assert_eq!(doc, want);
    }

    #[test]
    fn relay_golden() {
        let mut config = RelayConfig::new();
        config.kind = RelayKind::Restricted;
        config.mtu = 1300;
        let peers: PeerTable<4, 8, 2, 1280> = PeerTable::new([7; 16]);
        let mut s = RelayStats::default();
        let mut n = 0;
        for t in [
            &mut s.from_tunnel,
            &mut s.to_clients,
            &mut s.from_clients,
            &mut s.to_tunnel,
        ] {
            n += 2;
            t.packets = n;
            t.bytes = 1000 + n;
        }
        for (i, c) in [
            &mut s.sent_direct,
            &mut s.queued,
            &mut s.flushed,
            &mut s.bubbles_sent,
            &mut s.bubbles_received,
            &mut s.peers_trusted,
            &mut s.icmp_errors_sent,
            &mut s.icmp_errors_limited,
            &mut s.transmit_buffer_too_small,
        ]
        .into_iter()
        .enumerate()
        {
            *c = 20 + i as u64;
        }
        let local = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 3544);
        let doc = document(|j| {
            relay(
                j,
                &config,
                "teredo\"x",
                local,
                &peers,
                &s,
                &[("udp_received", 5), ("tun_write_failed", 6)],
            )
        });
        let want = concat!(
            r#"{"kind":"restricted","interface":"teredo\"x","prefix":"2001::/32","mtu":1300,"#,
            r#""address":"192.0.2.1:3544","peers":{"count":0,"capacity":4},"#,
            r#""traffic":{"from_tunnel":{"packets":2,"bytes":1002},"to_clients":{"packets":4,"#,
            r#""bytes":1004},"from_clients":{"packets":6,"bytes":1006},"#,
            r#""to_tunnel":{"packets":8,"bytes":1008}},"stats":{"sent_direct":20,"queued":21,"#,
            r#""flushed":22,"bubbles_sent":23,"bubbles_received":24,"peers_trusted":25,"#,
            r#""icmp_errors_sent":26,"icmp_errors_limited":27,"transmit_buffer_too_small":28,"#,
            r#""dropped":0},"drops":{"invalid_ipv6":0,"multicast":0,"#,
            r#""not_teredo_destination":0,"non_global_destination":0,"new_peer_limited":0,"#,
            r#""peer_table_full":0,"queue_full":0,"unreachable":0,"gave_up":0,"#,
            r#""peer_removed":0,"malformed":0,"trailer":0,"non_teredo_source":0,"#,
            r#""spoofed_source":0,"unknown_peer":0,"teredo_destination":0,"#,
            r#""invalid_destination":0},"sockets":{"udp_received":5,"tun_write_failed":6}}"#,
        );
        assert_eq!(doc, want);
        // `shipworm status` without `--json`: the same members as text.
        let text = to_text(&doc).unwrap();
        let want_head = concat!(
            "kind: restricted\n",
            "interface: teredo\"x\n",
            "prefix: 2001::/32\n",
            "mtu: 1300\n",
            "address: 192.0.2.1:3544\n",
            "peers:\n",
            "  count: 0\n",
            "  capacity: 4\n",
            "traffic:\n",
            "  from_tunnel:\n",
            "    packets: 2\n",
            "    bytes: 1002\n",
            "  to_clients:\n",
            "    packets: 4\n",
            "    bytes: 1004\n",
            "  from_clients:\n",
            "    packets: 6\n",
            "    bytes: 1006\n",
            "  to_tunnel:\n",
            "    packets: 8\n",
            "    bytes: 1008\n",
            "stats:\n",
            "  sent_direct: 20\n",
            "  queued: 21\n",
            "  flushed: 22\n",
            "  bubbles_sent: 23\n",
            "  bubbles_received: 24\n",
            "  peers_trusted: 25\n",
            "  icmp_errors_sent: 26\n",
            "  icmp_errors_limited: 27\n",
            "  transmit_buffer_too_small: 28\n",
            "  dropped: 0\n",
        );
        assert!(text.starts_with(want_head), "{text}");
        assert!(
            text.ends_with("sockets:\n  udp_received: 5\n  tun_write_failed: 6\n"),
            "{text}"
        );
    }

    fn client_stats() -> ClientStats {
        let mut s = ClientStats::default();
        for (i, c) in [
            &mut s.rs_sent,
            &mut s.ra_accepted,
            &mut s.delivered,
            &mut s.sent_direct,
            &mut s.queued,
            &mut s.flushed,
            &mut s.bubbles_sent,
            &mut s.bubbles_received,
            &mut s.echo_requests_sent,
            &mut s.peers_trusted,
            &mut s.icmp_errors_sent,
            &mut s.icmp_errors_limited,
        ]
        .into_iter()
        .enumerate()
        {
            *c = 30 + i as u64;
        }
        s
    }

    #[test]
    fn client_golden() {
        let peers: PeerTable<4, 8, 2, 1280> = PeerTable::new([7; 16]);
        let mut view = ClientView {
            interface: "teredo",
            local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 40000),
            servers: (Ipv4Addr::new(198, 51, 100, 1), None),
            qualified_for: None,
        };
        let offline = document(|j| {
            client(
                j,
                view,
                ClientState::Offline {
                    retry_at: shipworm_core::time::Instant::from_millis(5),
                },
                None,
                &peers,
                &client_stats(),
                &[("received", 1), ("ipv4_changes", 2)],
            )
        });
        assert_eq!(
            offline,
            concat!(
                r#"{"state":"offline","interface":"teredo","local":"192.0.2.2:40000","#,
                r#""servers":["198.51.100.1"],"address":null,"mapped":null,"server":null,"#,
                r#""mtu":null,"nat":null,"qualified_s":null,"peers":{"count":0,"capacity":4},"#,
                r#""stats":{"rs_sent":30,"ra_accepted":31,"delivered":32,"sent_direct":33,"#,
                r#""queued":34,"flushed":35,"bubbles_sent":36,"bubbles_received":37,"#,
                r#""echo_requests_sent":38,"peers_trusted":39,"icmp_errors_sent":40,"#,
                r#""icmp_errors_limited":41,"ra_dropped":0,"data_dropped":0},"#,
                r#""ra_drops":{"unsolicited":0,"wrong_source_port":0,"wrong_source_address":0,"#,
                r#""no_auth":0,"wrong_nonce":0,"auth_rejected":0,"no_origin":0,"invalid_ra":0,"#,
                r#""wrong_destination":0,"wrong_prefix":0,"bad_mtu":0,"non_global_mapping":0},"#,
                r#""data_drops":{"not_qualified":0,"invalid_ipv6":0,"multicast":0,"#,
                r#""wrong_source":0,"non_global_destination":0,"peer_table_full":0,"#,
                r#""queue_full":0,"unreachable":0,"gave_up":0,"peer_removed":0,"malformed":0,"#,
                r#""trailer":0,"link_local_source":0,"wrong_destination":0,"#,
                r#""spoofed_teredo_source":0,"unverified":0,"bad_echo_nonce":0,"wrong_relay":0},"#,
                r#""sockets":{"received":1,"ipv4_changes":2}}"#,
            )
        );
        view.servers.1 = Some(Ipv4Addr::new(203, 0, 113, 1));
        view.qualified_for = Some(core::time::Duration::from_millis(61_999));
        let server = Ipv4Addr::new(203, 0, 113, 1);
        let mapped = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 200), 4096);
        let qualified = concat!(
            r#"{"state":"qualified","interface":"teredo","local":"192.0.2.2:40000","#,
            r#""servers":["198.51.100.1","203.0.113.1"],"#,
            r#""address":"2001:0:cb00:7101:8000:efff:3fff:fd37","#,
            r#""mapped":{"address":"192.0.2.200","port":4096},"server":"203.0.113.1","#,
            r#""mtu":1400,"nat":{"mapping":"cone_or_restricted","port_preserving":true},"#,
            r#""qualified_s":61,"peers":{"count":0,"capacity":4},"stats":{"rs_sent":30,"#,
            r#""ra_accepted":31,"delivered":32,"sent_direct":33,"queued":34,"flushed":35,"#,
            r#""bubbles_sent":36,"bubbles_received":37,"echo_requests_sent":38,"#,
            r#""peers_trusted":39,"icmp_errors_sent":40,"icmp_errors_limited":41,"#,
            r#""ra_dropped":0,"data_dropped":0},"ra_drops":{"unsolicited":0,"#,
            r#""wrong_source_port":0,"wrong_source_address":0,"no_auth":0,"wrong_nonce":0,"#,
            r#""auth_rejected":0,"no_origin":0,"invalid_ra":0,"wrong_destination":0,"#,
            r#""wrong_prefix":0,"bad_mtu":0,"non_global_mapping":0},"#,
            r#""data_drops":{"not_qualified":0,"invalid_ipv6":0,"multicast":0,"#,
            r#""wrong_source":0,"non_global_destination":0,"peer_table_full":0,"#,
            r#""queue_full":0,"unreachable":0,"gave_up":0,"peer_removed":0,"malformed":0,"#,
            r#""trailer":0,"link_local_source":0,"wrong_destination":0,"#,
            r#""spoofed_teredo_source":0,"unverified":0,"bad_echo_nonce":0,"wrong_relay":0},"#,
            r#""sockets":{"received":1}}"#,
        );
        const QUALIFIED_NAT: &str =
            r#""nat":{"mapping":"cone_or_restricted","port_preserving":true}"#;
        for (i, (nat, port_preserving)) in [
            (NatMapping::ConeOrRestricted, Some(true)),
            (NatMapping::NotTested, Some(false)),
            (NatMapping::SecondaryNoReply, None),
        ]
        .into_iter()
        .enumerate()
        {
            let q = Qualification {
                address: shipworm_core::addr::TeredoAddr::new(
                    [0x20, 0x01, 0, 0],
                    server,
                    0x8000,
                    mapped,
                ),
                mtu: 1400,
                nat: shipworm_core::client::NatType {
                    mapping: nat,
                    port_preserving,
                },
                server,
            };
            let doc = document(|j| {
                client(
                    j,
                    view,
                    ClientState::Qualified,
                    Some(q),
                    &peers,
                    &client_stats(),
                    &[("received", 1)],
                )
            });
            let nat = format!(
                r#""nat":{{"mapping":"{}","port_preserving":{}}}"#,
                ["cone_or_restricted", "not_tested", "secondary_no_reply"][i],
                ["true", "false", "null"][i]
            );
            assert_eq!(doc, qualified.replace(QUALIFIED_NAT, &nat));
        }
    }

    #[test]
    fn socket_serves_one_document_per_connection() {
        let dir = std::env::temp_dir().join(format!("shipworm-status-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        let path = dir.join("s.sock");
        let mut sock = StatusSocket::open("server", Some(&path), None).unwrap();
        // No client yet: nothing to do, no blocking.
        sock.serve(&mut |_| panic!("rendered without a connection"));
        let c1 = UnixStream::connect(&path).unwrap();
        let c2 = UnixStream::connect(&path).unwrap();
        sock.serve(&mut |j| {
            j.num("answer", 42);
        });
        for c in [c1, c2] {
            let mut doc = String::new();
            { c }.read_to_string(&mut doc).unwrap();
            assert!(
                doc.starts_with(r#"{"version":1,"role":"server","pid":"#),
                "{doc}"
            );
            assert!(doc.ends_with(",\"answer\":42}\n"), "{doc}");
            assert!(to_text(&doc).unwrap().contains("answer: 42\n"));
        }
        // A second instance on the same path is refused; a stale file is
        // replaced.
        let e = StatusSocket::open("server", Some(&path), None).unwrap_err();
        assert!(e.to_string().contains("another running instance"), "{e}");
        drop(sock);
        assert!(!path.exists());
        let stale = UnixListener::bind(&path).unwrap();
        drop(stale);
        assert!(path.exists());
        let again = StatusSocket::open("relay", Some(&path), None).unwrap();
        drop(again);
        fs::write(&path, b"not a socket").unwrap();
        let e = StatusSocket::open("relay", Some(&path), None).unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
