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

use crate::role::Error;
use crate::sys::poll::PollFd;
use crate::sys::user::Account;

/// Connections served per wake of the loop.
pub const ACCEPTS_PER_WAKE: usize = 4;

/// Bytes reserved once for the document; it grows only if a role ever
/// writes more (it does not: the largest is about 2 KB).
const DOCUMENT_CAPACITY: usize = 4096;

/// The largest document `shipworm status` accepts.
const MAX_DOCUMENT: u64 = 1 << 16;

/// The status socket of `role` when `--status-socket` is not given.
pub fn default_path(role: &str) -> PathBuf {
    PathBuf::from(["/var/run/shipworm-", role, ".sock"].concat())
}

/// The roles in the order `shipworm status` looks for their default
/// sockets.
pub const ROLES: [&str; 3] = ["client", "relay", "server"];

/// A JSON object being written into a `String`.
#[derive(Debug)]
pub struct Json<'a> {
    out: &'a mut String,
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

    /// A string member from a `Display` value (addresses). Not generic:
    /// one copy serves every address type.
    pub fn display(&mut self, key: &str, value: &dyn fmt::Display) -> &mut Self {
        self.str(key, &value.to_string())
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

    /// An array of strings from `Display` values.
    pub fn strings(&mut self, key: &str, values: &[&dyn fmt::Display]) -> &mut Self {
        self.key(key);
        self.out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            string(self.out, &v.to_string());
        }
        self.out.push(']');
        self
    }

    /// A nested object, filled by `f`.
    pub fn obj(&mut self, key: &str, f: impl FnOnce(&mut Json<'_>)) -> &mut Self {
        self.key(key);
        let mut inner = Json::object(self.out);
        f(&mut inner);
        inner.end();
        self
    }

    /// `{"packets": n, "bytes": n}`.
    pub fn traffic(&mut self, key: &str, packets: u64, bytes: u64) -> &mut Self {
        self.obj(key, |j| {
            j.num("packets", packets).num("bytes", bytes);
        })
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

/// The `server` fields: its addresses and the core's and the sockets'
/// counters (`sockets`: name and value pairs, as documented above).
pub fn server(j: &mut Json<'_>, config: &ServerConfig, s: &ServerStats, sockets: &[(&str, u64)]) {
    let port = shipworm_core::addr::TEREDO_PORT;
    j.strings(
        "addresses",
        &[
            &SocketAddrV4::new(config.primary, port),
            &SocketAddrV4::new(config.secondary, port),
        ],
    )
    .display(
        "prefix",
        &format_args!("{}/32", prefix_address(config.prefix)),
    )
    .num("mtu", config.mtu.into())
    .obj("stats", |j| {
        j.num("received", s.received)
            .num("advertisements", s.advertisements)
            .num("forwarded_teredo", s.forwarded_teredo)
            .num("forwarded_native", s.forwarded_native)
            .num("icmp_errors", s.icmp_errors)
            .num("icmp_errors_limited", s.icmp_errors_limited)
            .num("dropped", s.total_drops());
    })
    .obj("drops", |j| {
        for r in ServerDrop::ALL {
            j.num(r.name(), s.drops(r));
        }
    });
    counters(j, "sockets", sockets);
}

/// The Teredo /32 prefix, from its first four bytes, as an address.
fn prefix_address([a, b, c, d]: [u8; 4]) -> Ipv6Addr {
    Ipv6Addr::from([a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
}

/// The `relay` fields.
pub fn relay<const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>(
    j: &mut Json<'_>,
    config: &RelayConfig,
    interface: &str,
    local: SocketAddrV4,
    peers: &PeerTable<N, B, SLOTS, SLOT_SIZE>,
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
    .str("interface", interface)
    .display(
        "prefix",
        &format_args!("{}/32", prefix_address(config.prefix)),
    )
    .num("mtu", config.mtu.into())
    .display("address", &local)
    .obj("peers", |j| {
        j.num("count", peers.len() as u64)
            .num("capacity", peers.capacity() as u64);
    })
    .obj("traffic", |j| {
        for (name, t) in [
            ("from_tunnel", s.from_tunnel),
            ("to_clients", s.to_clients),
            ("from_clients", s.from_clients),
            ("to_tunnel", s.to_tunnel),
        ] {
            j.traffic(name, t.packets, t.bytes);
        }
    })
    .obj("stats", |j| {
        j.num("sent_direct", s.sent_direct)
            .num("queued", s.queued)
            .num("flushed", s.flushed)
            .num("bubbles_sent", s.bubbles_sent)
            .num("bubbles_received", s.bubbles_received)
            .num("peers_trusted", s.peers_trusted)
            .num("icmp_errors_sent", s.icmp_errors_sent)
            .num("icmp_errors_limited", s.icmp_errors_limited)
            .num("transmit_buffer_too_small", s.transmit_buffer_too_small)
            .num("dropped", s.total_drops());
    })
    .obj("drops", |j| {
        for r in RelayDrop::ALL {
            j.num(r.name(), s.drops(r));
        }
    });
    counters(j, "sockets", sockets);
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
pub fn client<const N: usize, const B: usize, const SLOTS: usize, const SLOT_SIZE: usize>(
    j: &mut Json<'_>,
    view: ClientView<'_>,
    state: ClientState,
    q: Option<Qualification>,
    peers: &PeerTable<N, B, SLOTS, SLOT_SIZE>,
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
                .obj("mapped", |j| {
                    j.display("address", mapped.ip())
                        .num("port", mapped.port().into());
                })
                .display("server", &q.server)
                .num("mtu", q.mtu.into())
                .obj("nat", |j| {
                    j.str(
                        "mapping",
                        match q.nat.mapping {
                            NatMapping::ConeOrRestricted => "cone_or_restricted",
                            NatMapping::NotTested => "not_tested",
                            NatMapping::SecondaryNoReply => "secondary_no_reply",
                        },
                    )
                    .opt_bool("port_preserving", q.nat.port_preserving);
                });
        }
        None => {
            j.null("address")
                .null("mapped")
                .null("server")
                .null("mtu")
                .null("nat");
        }
    }
    match view.qualified_for {
        Some(d) => j.num("qualified_s", d.as_secs()),
        None => j.null("qualified_s"),
    };
    j.obj("peers", |j| {
        j.num("count", peers.len() as u64)
            .num("capacity", peers.capacity() as u64);
    })
    .obj("stats", |j| {
        j.num("rs_sent", s.rs_sent)
            .num("ra_accepted", s.ra_accepted)
            .num("delivered", s.delivered)
            .num("sent_direct", s.sent_direct)
            .num("queued", s.queued)
            .num("flushed", s.flushed)
            .num("bubbles_sent", s.bubbles_sent)
            .num("bubbles_received", s.bubbles_received)
            .num("echo_requests_sent", s.echo_requests_sent)
            .num("peers_trusted", s.peers_trusted)
            .num("icmp_errors_sent", s.icmp_errors_sent)
            .num("icmp_errors_limited", s.icmp_errors_limited)
            .num("ra_dropped", s.total_ra_drops())
            .num("data_dropped", s.total_data_drops());
    })
    .obj("ra_drops", |j| {
        for r in RaDrop::ALL {
            j.num(r.name(), s.ra_drops(r));
        }
    })
    .obj("data_drops", |j| {
        for r in DataDrop::ALL {
            j.num(r.name(), s.data_drops(r));
        }
    });
    counters(j, "sockets", sockets);
}

fn counters(j: &mut Json<'_>, key: &str, pairs: &[(&str, u64)]) {
    j.obj(key, |j| {
        for &(name, n) in pairs {
            j.num(name, n);
        }
    });
}

/// The listening status socket of a role.
#[derive(Debug)]
pub struct StatusSocket {
    /// `None`: the default path was unavailable; the role runs without.
    listener: Option<UnixListener>,
    path: PathBuf,
    role: &'static str,
    started: std::time::Instant,
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
            started: std::time::Instant::now(),
            document: String::with_capacity(DOCUMENT_CAPACITY),
        })
    }

    /// The listener for the role's `poll`; an ignored entry without one.
    pub fn poll_fd(&self) -> PollFd<'_> {
        PollFd::readable_opt(self.listener.as_ref().map(|l| l.as_fd()))
    }

    /// Accept waiting connections and answer each with the document that
    /// `render` fills in (after the common fields), rendered once.
    pub fn serve(&mut self, render: impl FnOnce(&mut Json<'_>)) {
        // A thin generic shell: the body below exists once, not once per
        // role.
        let mut render = Some(render);
        self.serve_with(&mut |j| {
            if let Some(render) = render.take() {
                render(j);
            }
        });
    }

    /// [`serve`](StatusSocket::serve); `render` is called at most once.
    fn serve_with(&mut self, render: &mut dyn FnMut(&mut Json<'_>)) {
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
                    .num("uptime_s", self.started.elapsed().as_secs());
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

/// Read the document a daemon serves on `path`.
pub fn query(path: &Path) -> io::Result<String> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut doc = String::new();
    stream.take(MAX_DOCUMENT).read_to_string(&mut doc)?;
    Ok(doc)
}

/// `shipworm status`: query `socket`, or the first default socket that
/// exists, and print the document as JSON or as indented text. Returns the
/// exit status: 0, or 1 when no daemon answered.
pub fn command(json: bool, socket: Option<&Path>) -> u8 {
    let found = match socket {
        Some(p) => Some(p.to_path_buf()),
        None => ROLES.iter().map(|r| default_path(r)).find(|p| p.exists()),
    };
    let Some(path) = found else {
        eprintln!("shipworm: no status socket at {DEFAULT_PATHS}; is a role running? (or give '--socket')");
        return 1;
    };
    let output = match query(&path) {
        Ok(doc) if json => Ok(doc),
        Ok(doc) => to_text(&doc)
            .ok_or_else(|| format!("{} sent a malformed status document", path.display())),
        Err(e) => Err(format!("cannot query {}: {e}", path.display())),
    };
    match output {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(message) => {
            eprintln!("shipworm: {message}");
            1
        }
    }
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
        j.str("a\"b", "q\"\\\n\t\r\u{1}é")
            .num("n", u64::MAX)
            .null("x")
            .opt_bool("t", Some(true))
            .opt_bool("f", Some(false))
            .opt_bool("u", None)
            .strings("l", &[&"1.2.3.4:5", &"x\"y"])
            .strings("e", &[])
            .obj("o", |j| {
                j.traffic("t", 1, 2);
            })
            .obj("empty", |_| {});
        j.end();
        assert_eq!(
            out,
            r#"{"a\"b":"q\"\\\n\t\r\u0001é","n":18446744073709551615,"x":null,"t":true,"f":false,"u":null,"l":["1.2.3.4:5","x\"y"],"e":[],"o":{"t":{"packets":1,"bytes":2}},"empty":{}}"#
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

    #[test]
    fn socket_serves_one_document_per_connection() {
        let dir = std::env::temp_dir().join(format!("shipworm-status-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        let path = dir.join("s.sock");
        let mut sock = StatusSocket::open("server", Some(&path), None).unwrap();
        // No client yet: nothing to do, no blocking.
        sock.serve(|_| panic!("rendered without a connection"));
        let c1 = UnixStream::connect(&path).unwrap();
        let c2 = UnixStream::connect(&path).unwrap();
        sock.serve(|j| {
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
