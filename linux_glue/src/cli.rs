//! The command line: `shipworm <role> [options]`.
//!
//! Hand-written rather than clap: three roles with two dozen options do not
//! justify the ~300 KB clap adds to a router binary. For the same reason the
//! parser is one non-generic loop shared by the roles, options are looked
//! up in the table of `config` (which knows the roles that take each) and
//! read by the same code as a file's directives, and error messages are
//! glued from pieces by [`usage`] rather than one `format!` each.

use core::fmt::{self, Write as _};
use core::net::{Ipv4Addr, Ipv6Addr};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use log::{error, info, warn, LevelFilter};
use shipworm_core::addr::{DEFAULT_PREFIX, TEREDO_PORT};
use shipworm_core::relay::{RelayKind, DEFAULT_MTU as RELAY_DEFAULT_MTU};
use shipworm_core::server::Config;
use shipworm_core::time::Duration;

use crate::config::{self, File, Key, Settings, Source};
use crate::sys::syslog::Facility;
use crate::sys::tun::MAX_NAME_LEN;

/// The file `check-config` reads when given none.
pub const DEFAULT_CONFIG: &str = "/etc/shipworm/shipworm.conf";

/// The pid file of `--daemon` unless `--pidfile` or `PidFile` names one.
pub const DEFAULT_PID_FILE: &str = "/var/run/shipworm.pid";

/// The tunnel interface name of the client and the relay unless
/// `--interface` says otherwise
/// (Miredo's too, so scripts written for it keep working).
pub const DEFAULT_INTERFACE: &str = "teredo";

/// `shipworm <version>`, for `--version`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"));

/// The text of `--help`.
///
/// One constant rather than a `format!` of the defaults (a few KB less on
/// MIPS); the test `help_shows_the_real_defaults` keeps the defaults
/// written here equal to the constants of this module and of the core.
pub const HELP: &str = concat!(
    env!("CARGO_PKG_NAME"),
    " ",
    env!("CARGO_PKG_VERSION"),
    ": Teredo (RFC 4380) for Linux and OpenWrt

Usage: shipworm <role> [options]
       shipworm -c <file> [options]     role from the file (RelayType)
       shipworm check-config [<file>]   check a file (default /etc/shipworm/shipworm.conf)
       shipworm status [--json] [--socket <path>]
                                        query a running role
       shipworm --help | --version

Roles:
  server <primary-IPv4>   Teredo server on UDP port 3544 of two global IPv4
                          addresses assigned to this host
  client --server <host>  Teredo client behind a cone or restricted NAT:
                          qualification, the tunnel interface (address,
                          routes, MTU) and IPv6 through it, directly to
                          Teredo peers and via relays to native hosts
  relay                   Teredo relay: routes the Teredo prefix between
                          native IPv6 (this host forwarding) and Teredo
                          clients over UDP

Server options:
  --secondary <IPv4>         second address (default: primary + 1)
  --prefix <IPv6>            Teredo prefix: first 32 bits used, the rest must
                             be zero (default: 2001::)
  --mtu <N>                  MTU advertised to clients, 1280 to 65535
                             (default: 1280)
  --max-forward-payload <N>  largest IPv6 payload in bytes forwarded for
                             packets other than bubbles (default: 88)
  --log-level <level>        error, warn, info, debug or trace (default: info)

Client options:
  --server <host|IPv4>       Teredo server (required); a name is resolved at
                             start and again whenever the server is lost
  --server2 <IPv4>           the server's secondary address, for the
                             symmetric NAT test (default: primary + 1)
  --fallback <host|IPv4>     a second Teredo server, used when the first is
                             silent (its secondary address: its primary + 1)
  --interface <name>         tunnel interface (default: teredo)
  --bind <IPv4>              local address of the UDP socket (default: any)
  --port <N>                 local UDP port, 0 = random (default: 0)
  --hook <path>              run this program on every state change with
                             Miredo's client-hook environment (IFACE, STATE,
                             ADDRESS, LLADDRESS, MTU, OLD_*) instead of
                             configuring the interface itself
  --log-level <level>        as for the server

Relay options:
  --bind <IPv4>              local address of the UDP socket (default: any)
  --port <N>                 local UDP port (default: 3544)
  --interface <name>         tunnel interface (default: teredo)
  --prefix <IPv6>            Teredo prefix routed to the tunnel, as for the
                             server (default: 2001::)
  --mtu <N>                  tunnel MTU, 1280 to 65535 (default: 1280)
  --type <cone|restricted>   cone: indirect bubbles only (as Miredo's cone);
                             restricted: direct bubbles too (default: cone)
  --icmp-source <IPv6>       source of the ICMPv6 errors the relay sends to
                             native hosts (default: the host's first global
                             IPv6 address outside the Teredo prefix)
  --log-level <level>        as for the server
  The relay needs IPv6 forwarding (sysctl net.ipv6.conf.all.forwarding=1).

Options of every role:
  -c, --config <file>        read Miredo-style directives (miredo.conf,
                             miredo-server.conf, see shipworm.conf(5));
                             options given here override the file
  --daemon                   detach into the background (logs to syslog)
  --pidfile <path>           lock and write this pid file (default with
                             --daemon: /var/run/shipworm.pid)
  --syslog[=<facility>]      log to syslog (default facility: daemon)
  --user <name>, --chroot <dir>, --status-socket <path>
                             see shipworm(8)

Once set up, a role runs as --user (default: nobody; a client with --hook
and no --user stays root), keeping only CAP_NET_ADMIN (client), and serves
its status on --status-socket (default: /run/shipworm-<role>.sock).
'shipworm status' prints it (--json: the JSON document; without --socket:
the first of the default sockets found); exit status 1 if none answers.

Runs in the foreground and logs to standard error unless told otherwise.
SIGINT and SIGTERM stop it (the client removes its address and routes, the
relay its route, and the tunnel disappears); SIGHUP reads the configuration
again; SIGUSR1 logs its state and counters. Exit status: 0 after a signal,
2 on bad usage, a bad configuration or a failed start-up check, 1 on a
later system error.
"
);

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print [`HELP`].
    Help,
    /// Print [`VERSION`].
    Version,
    /// `check-config`: the configuration is valid; say what would run.
    CheckConfig(Run),
    /// Run a role.
    Run(Run),
    /// `status`: query a running role's status socket.
    Status(StatusArgs),
}

/// `shipworm status`'s settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusArgs {
    /// Print the JSON document rather than text.
    pub json: bool,
    /// The socket to query; `None`: the first default one found.
    pub socket: Option<PathBuf>,
}

/// `status [--json] [--socket <path>]`.
fn parse_status(mut args: Args) -> Result<Command, UsageError> {
    let mut json = false;
    let mut socket = None;
    while let Some(arg) = args.next() {
        if arg == "--json" {
            json = true;
        } else if arg == "--socket" || arg.starts_with("--socket=") {
            let (name, value) = option_value(arg, &mut args)?;
            once(
                &mut socket,
                PathBuf::from(nonempty(name, value, "a path")?),
                name,
            )?;
        } else {
            return Err(stray(arg));
        }
    }
    Ok(Command::Status(StatusArgs { json, socket }))
}

/// A role to run, with its process settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The role and its settings.
    pub role: Role,
    /// Process settings shared by the roles.
    pub process: ProcessArgs,
    /// How to read the settings again on SIGHUP.
    pub reload: Reload,
}

/// The role to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The Teredo server.
    Server(ServerArgs),
    /// The Teredo client.
    Client(ClientArgs),
    /// The Teredo relay.
    Relay(RelayArgs),
}

/// Settings of the process rather than of a role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessArgs {
    /// `--daemon`: detach from the terminal.
    pub daemon: bool,
    /// Pid file to lock and write: `--pidfile` or `PidFile`, or
    /// [`DEFAULT_PID_FILE`] with `--daemon`.
    pub pid_file: Option<PathBuf>,
    /// Log to syslog with this facility (`--syslog`, `SyslogFacility`;
    /// implied by `--daemon`).
    pub syslog: Option<Facility>,
    /// `--user` / `User`: account to run as after start-up.
    pub user: Option<String>,
    /// `--chroot` / `Chroot`: directory to confine the process to.
    pub chroot: Option<PathBuf>,
    /// `--status-socket` / `StatusSocket`: where to serve the status.
    pub status_socket: Option<PathBuf>,
}

/// The command line as given, to be parsed again (re-reading the
/// configuration file) on SIGHUP: the command line keeps overriding the
/// file after a reload too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    args: Vec<String>,
    /// The process settings in force (they change only with a restart).
    process: ProcessArgs,
}

impl Reload {
    /// Parse the command line again, reading the configuration file anew.
    pub fn load(&self) -> Result<Run, UsageError> {
        match parse_strings(self.args.clone())? {
            Command::Run(run) => Ok(run),
            _ => Err(usage(&["the command line no longer names a role"])),
        }
    }

    /// SIGHUP: read the configuration again and apply what every role
    /// applies the same way: the log level at once, and a log line for each
    /// process setting that only a restart changes. The new settings of
    /// `role` come back for the loop to apply; `None` (logged) when the
    /// file is bad now or asks for another role: the running settings stay.
    pub fn reload(&self, role: config::Role) -> Option<Role> {
        info!("SIGHUP received: reading the configuration again");
        let run = match self.load() {
            Ok(run) => run,
            Err(e) => {
                error!("reload failed, keeping the running configuration: {e}");
                return None;
            }
        };
        if run.role.kind() != role {
            error!(
                "reload: the configuration now asks for the {} role; restart to switch from {}",
                run.role.kind().name(),
                role.name()
            );
            return None;
        }
        let (old, new) = (&self.process, &run.process);
        let changed = [
            ("PidFile", old.pid_file != new.pid_file),
            ("SyslogFacility", old.syslog != new.syslog),
            ("User", old.user != new.user),
            ("Chroot", old.chroot != new.chroot),
            ("StatusSocket", old.status_socket != new.status_socket),
        ];
        for (what, _) in changed.iter().filter(|(_, changed)| *changed) {
            warn!("reload: {what} changed; it takes effect at the next restart");
        }
        let level = run.role.log_level();
        if level != log::max_level() {
            crate::logger::set_level(level);
            info!("reload: log level now {}", level_name(level));
        }
        Some(run.role)
    }
}

impl Role {
    /// Which role this is.
    pub fn kind(&self) -> config::Role {
        match self {
            Role::Server(_) => config::Role::Server,
            Role::Client(_) => config::Role::Client,
            Role::Relay(_) => config::Role::Relay,
        }
    }

    /// The role's lowest level logged.
    pub fn log_level(&self) -> LevelFilter {
        match self {
            Role::Server(a) => a.log_level,
            Role::Client(a) => a.log_level,
            Role::Relay(a) => a.log_level,
        }
    }

    /// One line saying what would run, for `check-config`.
    pub fn describe(&self) -> String {
        let prefix = |p: [u8; 4]| {
            let [a, b, c, d] = p;
            Ipv6Addr::from([a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        };
        match self {
            Role::Server(a) => format!(
                "server on {} and {}, prefix {}/32, MTU {}",
                a.config.primary,
                a.config.secondary,
                prefix(a.config.prefix),
                a.config.mtu
            ),
            Role::Client(a) => {
                let mut s = format!("client of server {}", a.server);
                if let Some(f) = &a.fallback {
                    s.push_str(" (fallback ");
                    s.push_str(f);
                    s.push(')');
                }
                s.push_str(&format!(
                    ", interface {}, UDP {}:{}",
                    a.interface, a.bind, a.port
                ));
                if let Some(h) = &a.hook {
                    s.push_str(", hook ");
                    s.push_str(&h.to_string_lossy());
                }
                s
            }
            Role::Relay(a) => format!(
                "{} relay on UDP {}:{}, interface {}, prefix {}/32, MTU {}",
                match a.kind {
                    RelayKind::Cone => "cone",
                    RelayKind::Restricted => "restricted",
                },
                a.bind,
                a.port,
                a.interface,
                prefix(a.prefix),
                a.mtu
            ),
        }
    }
}

/// The `server` role's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    /// The core's configuration.
    pub config: Config,
    /// Lowest level logged.
    pub log_level: LevelFilter,
}

/// The `client` role's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientArgs {
    /// Teredo server: a host name or an IPv4 address.
    pub server: String,
    /// The server's secondary address; `None`: primary + 1.
    pub server2: Option<Ipv4Addr>,
    /// Fallback Teredo server: a host name or an IPv4 address.
    pub fallback: Option<String>,
    /// Tunnel interface name.
    pub interface: String,
    /// Local IPv4 address of the service port (unspecified: any).
    pub bind: Ipv4Addr,
    /// Local UDP port of the service port (0: random).
    pub port: u16,
    /// Program run on every state change, instead of configuring the
    /// interface directly.
    pub hook: Option<PathBuf>,
    /// Refresh interval (`RefreshInterval`); `None`: the core's default.
    pub refresh_interval: Option<Duration>,
    /// Lowest level logged.
    pub log_level: LevelFilter,
}

/// The `relay` role's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayArgs {
    /// Local IPv4 address of the UDP socket (unspecified: any).
    pub bind: Ipv4Addr,
    /// Local UDP port.
    pub port: u16,
    /// Tunnel interface name.
    pub interface: String,
    /// The Teredo /32 prefix routed to the tunnel.
    pub prefix: [u8; 4],
    /// Tunnel MTU.
    pub mtu: u16,
    /// Cone or restricted relay.
    pub kind: RelayKind,
    /// Source of the relay's ICMPv6 errors (`--icmp-source`,
    /// `RelayIcmpSource`); `None`: picked from the host's addresses.
    pub icmp_source: Option<Ipv6Addr>,
    /// Lowest level logged.
    pub log_level: LevelFilter,
}

/// A command line or configuration file that makes no sense, with the
/// reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    msg: String,
    /// A command-line mistake, where `--help` helps (a file's mistake is
    /// named by file and line instead).
    command_line: bool,
}

impl UsageError {
    /// Whether pointing at `--help` helps.
    pub fn is_command_line(&self) -> bool {
        self.command_line
    }

    /// The message alone, for a file's error that wraps it.
    pub(crate) fn into_message(self) -> String {
        self.msg
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl From<config::Error> for UsageError {
    fn from(e: config::Error) -> UsageError {
        UsageError {
            msg: e.into_message(),
            command_line: false,
        }
    }
}

/// A command-line error whose message is `parts` joined: one shared
/// `concat` instead of a `format!` per message, which costs a few hundred
/// bytes each on MIPS.
#[inline(never)]
pub(crate) fn usage(parts: &[&str]) -> UsageError {
    UsageError {
        msg: parts.concat(),
        command_line: true,
    }
}

/// `'<value>' for '<name>' <problem>`, the shape of most value errors.
fn bad(value: &str, name: &str, problem: &str) -> UsageError {
    quoted("'", value, name, problem)
}

/// [`bad`] with the quotes `q`: a file's messages quote names as `"`.
#[inline(never)]
pub(crate) fn quoted(q: &str, value: &str, name: &str, problem: &str) -> UsageError {
    usage(&[q, value, q, " for ", q, name, q, " ", problem])
}

/// `value` of option `name` unless it is empty: `'<name>' needs <what>`.
pub(crate) fn nonempty(name: &str, value: &str, what: &str) -> Result<String, UsageError> {
    if value.is_empty() {
        return Err(usage(&["'", name, "' needs ", what]));
    }
    Ok(value.to_owned())
}

/// An argument no role or command takes here.
#[inline(never)]
fn stray(arg: &str) -> UsageError {
    if arg.starts_with('-') {
        usage(&["unknown option '", arg, "'"])
    } else {
        usage(&["unexpected argument '", arg, "'"])
    }
}

/// Parse the arguments after the program name.
///
/// Only this shell is generic: the arguments become `String`s here, and
/// one non-generic parser does the rest, for `main` and for reloads alike.
/// A plain loop rather than `collect` into a `Result`, whose adapter
/// machinery is several hundred bytes more on MIPS.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut strings = Vec::new();
    for arg in args {
        strings.push(arg.into().into_string().map_err(not_utf8)?);
    }
    parse_strings(strings)
}

/// The error for an argument that is not UTF-8, quoted as `{:?}` shows an
/// `OsStr` (the UTF-8 parts escaped as a `str`'s `{:?}` escapes them, other
/// bytes as `\xNN`). By hand: `OsStr`'s own `Debug` would bring about
/// 800 bytes of code for this one message; a `str`'s is in the binary
/// anyway.
#[inline(never)]
fn not_utf8(arg: OsString) -> UsageError {
    use std::os::unix::ffi::OsStrExt;
    let mut msg = String::from("argument \"");
    for chunk in arg.as_bytes().utf8_chunks() {
        // A `str` escapes the same, with its own quotes around.
        let quoted = format!("{:?}", chunk.valid());
        msg.push_str(
            quoted
                .get(1..quoted.len().saturating_sub(1))
                .unwrap_or_default(),
        );
        for byte in chunk.invalid() {
            let _ = write!(msg, "\\x{byte:02X}");
        }
    }
    msg.push_str("\" is not valid UTF-8");
    usage(&[&msg])
}

/// The arguments still to parse.
type Args<'a> = std::slice::Iter<'a, String>;

/// [`parse`], once the arguments are text.
#[inline(never)]
fn parse_strings(args: Vec<String>) -> Result<Command, UsageError> {
    let args = absolute_config_paths(args);
    let Some(first) = args.first() else {
        return Err(usage(&["no role given"]));
    };
    // `--help` anywhere after the role or file asks for the help.
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let rest = args.get(1..).unwrap_or_default();
    // `check-config` parses its file as `--config <file>` would.
    let file_args: [String; 2];
    let (named, role_args, check) = match first.as_str() {
        "-V" | "--version" => return Ok(Command::Version),
        "status" => return parse_status(rest.iter()),
        "check-config" => {
            let file = match rest {
                [] => DEFAULT_CONFIG,
                [file] if !file.starts_with('-') => file.as_str(),
                _ => return Err(usage(&["'check-config' takes one file name"])),
            };
            file_args = ["--config".to_owned(), file.to_owned()];
            (Named::File(file), &file_args[..], true)
        }
        "server" => (Named::Role(config::Role::Server), rest, false),
        "client" => (Named::Role(config::Role::Client), rest, false),
        "relay" => (Named::Role(config::Role::Relay), rest, false),
        "-c" | "--config" => {
            let file = rest
                .first()
                .ok_or_else(|| usage(&["option '", first, "' needs a value"]))?;
            (Named::File(file), &args[..], false)
        }
        other => match other.strip_prefix("--config=") {
            Some(file) => (Named::File(file), &args[..], false),
            None if other.starts_with('-') => return Err(stray(other)),
            None => return Err(usage(&["unknown role '", other, "'"])),
        },
    };
    // No role named, but a configuration file: its RelayType decides, as
    // for Miredo. One call for every way of naming the file.
    let role = match named {
        Named::Role(role) => role,
        Named::File(file) => config::load(Path::new(file))?.role(),
    };
    let run = parse_role(role, role_args.iter(), args.clone())?;
    Ok(if check {
        Command::CheckConfig(run)
    } else {
        Command::Run(run)
    })
}

/// How the command line names the role: by name, or by a file's
/// `RelayType` (see [`config::File::role`]).
enum Named<'a> {
    Role(config::Role),
    File(&'a str),
}

/// The arguments with configuration file paths made absolute, so that a
/// reload after `--daemon` changed to `/` reads the same file.
fn absolute_config_paths(mut args: Vec<String>) -> Vec<String> {
    let Ok(cwd) = std::env::current_dir() else {
        return args;
    };
    let absolute = |p: &str| cwd.join(p).to_string_lossy().into_owned();
    let mut file_next = args.first().is_some_and(|a| a == "check-config");
    for arg in args.iter_mut().skip(usize::from(file_next)) {
        if file_next && !arg.is_empty() && !arg.starts_with('/') && !arg.starts_with('-') {
            *arg = absolute(arg);
        } else if let Some(p) = arg.strip_prefix("--config=") {
            if !p.is_empty() && !p.starts_with('/') {
                *arg = ["--config=", &absolute(p)].concat();
            }
        }
        file_next = arg == "-c" || arg == "--config";
    }
    args
}

/// A role's command line as given, before the configuration file fills
/// the gaps. The settings a file can give too go into [`Settings`], read
/// by the same code as the file's ([`Settings::set`]).
#[derive(Default)]
struct Given {
    config: Option<PathBuf>,
    daemon: bool,
    settings: Settings,
}

impl Given {
    /// Read the file, check it fits `role`, and merge: the command line
    /// first, then the file, then the defaults.
    fn finish(self, role: config::Role) -> Result<(Role, ProcessArgs), UsageError> {
        let file = match &self.config {
            Some(path) => config::load(path)?,
            None => File::default(),
        };
        file.check_role(role)?;
        merge(&self.settings, self.daemon, role, &file.settings)
    }
}

/// [`Given::finish`] once the file is read and checked: the command line's
/// settings `cli` over the file's `file`, then the defaults.
#[inline(never)]
fn merge(
    cli: &Settings,
    daemon: bool,
    role: config::Role,
    file: &Settings,
) -> Result<(Role, ProcessArgs), UsageError> {
    use config::Value::{Facility as Fac, Level, Number, Prefix, Text, Type, V4, V6};
    use Key::*;
    let get = |key: Key| cli.value(key).or_else(|| file.value(key));
    let text = |key: Key| match get(key) {
        Some(Text(t)) => Some(t.clone()),
        _ => None,
    };
    let v4 = |key: Key| match get(key) {
        Some(V4(a)) => Some(*a),
        _ => None,
    };
    let number = |key: Key| match get(key) {
        Some(Number(n)) => Some(*n),
        _ => None,
    };
    let file_facility = match file.value(SyslogFacility) {
        Some(Fac(f)) => *f,
        _ => None,
    };
    let syslog = match cli.value(SyslogFacility) {
        Some(Fac(Some(f))) => Some(*f),
        // `--syslog`, or `--daemon`: standard error goes to /dev/null in
        // the background.
        Some(_) => Some(file_facility.unwrap_or(Facility::DAEMON)),
        None if daemon => Some(file_facility.unwrap_or(Facility::DAEMON)),
        None => file_facility,
    };
    let path = |key: Key| text(key).map(PathBuf::from);
    let process = ProcessArgs {
        daemon,
        pid_file: path(PidFile).or_else(|| daemon.then(|| PathBuf::from(DEFAULT_PID_FILE))),
        syslog,
        user: text(User),
        chroot: path(Chroot),
        status_socket: path(StatusSocket),
    };
    let log_level = match get(LogLevel) {
        Some(Level(l)) => *l,
        _ => LevelFilter::Info,
    };
    let prefix = match get(Key::Prefix) {
        Some(Prefix(p)) => Some(*p),
        _ => None,
    };
    let mtu = number(InterfaceMTU);
    let interface = text(InterfaceName).unwrap_or_else(|| DEFAULT_INTERFACE.to_owned());
    let bind = v4(BindAddress).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let port = number(BindPort);
    let role = match role {
        config::Role::Server => {
            let primary = v4(ServerBindAddress).ok_or_else(|| {
                usage(&["'server' needs the primary IPv4 address \
                         (or 'ServerBindAddress' in a file)"])
            })?;
            let defaults = Config::new(primary);
            let secondary = match v4(ServerBindAddress2) {
                Some(s) => s,
                // The core's default (primary + 1) wraps around; say so
                // instead.
                None if primary == Ipv4Addr::BROADCAST => {
                    return Err(usage(&[
                        "255.255.255.255 has no next address; give '--secondary'",
                    ]))
                }
                None => defaults.secondary,
            };
            if secondary == primary {
                return Err(usage(&["primary and secondary addresses must differ"]));
            }
            Role::Server(ServerArgs {
                config: Config {
                    secondary,
                    prefix: prefix.unwrap_or(defaults.prefix),
                    mtu: mtu.map_or(defaults.mtu, u32::from),
                    max_forward_payload: number(MaxForwardPayload)
                        .unwrap_or(defaults.max_forward_payload),
                    ..defaults
                },
                log_level,
            })
        }
        config::Role::Client => {
            let server = text(ServerAddress).ok_or_else(|| {
                usage(&[
                    "'client' needs '--server <host|IPv4>' or 'ServerAddress' in a \
                     file (there is no default server)",
                ])
            })?;
            let server2 = v4(ServerAddress2);
            if server2.is_some() && server.parse().ok() == server2 {
                return Err(usage(&["'--server' and '--server2' must differ"]));
            }
            Role::Client(ClientArgs {
                server,
                server2,
                fallback: text(FallbackServer),
                interface,
                bind,
                port: port.unwrap_or(0),
                hook: path(Hook),
                refresh_interval: number(RefreshInterval).map(|s| Duration::from_secs(s.into())),
                log_level,
            })
        }
        config::Role::Relay => {
            let relay = RelayArgs {
                bind,
                port: port.unwrap_or(TEREDO_PORT),
                interface,
                prefix: prefix.unwrap_or(DEFAULT_PREFIX),
                mtu: mtu.unwrap_or(RELAY_DEFAULT_MTU),
                kind: match get(RelayType) {
                    Some(Type(config::RelayType::Relay(k))) => *k,
                    _ => RelayKind::Cone,
                },
                icmp_source: match get(RelayIcmpSource) {
                    Some(V6(a)) => Some(*a),
                    _ => None,
                },
                log_level,
            };
            if let Some(src) = relay.icmp_source {
                if src.octets().get(..4) == Some(&relay.prefix[..]) {
                    return Err(usage(&[&format!(
                        "ICMPv6 source {src} is inside the Teredo prefix: errors from it \
                         would be routed back into the tunnel"
                    )]));
                }
            }
            Role::Relay(relay)
        }
    };
    Ok((role, process))
}

/// Parse the options of `role`; `reload_args` is the whole command line,
/// kept for SIGHUP.
#[inline(never)]
fn parse_role(
    role: config::Role,
    mut args: Args,
    reload_args: Vec<String>,
) -> Result<Run, UsageError> {
    let mut given = Given::default();
    let cli = Source::CommandLine(role);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // Flags: no value (`--syslog=F` names a facility, and shares
            // the slot of `--syslog`).
            "--daemon" => {
                if std::mem::replace(&mut given.daemon, true) {
                    return Err(twice(arg));
                }
            }
            "--syslog" => {
                let bare = config::Value::Facility(None);
                given.settings.put(Key::SyslogFacility, bare, arg, cli)?;
            }
            _ if !arg.starts_with('-') => {
                let key = Key::ServerBindAddress;
                if role != config::Role::Server || given.settings.get(key).is_some() {
                    return Err(stray(arg));
                }
                let primary = config::Value::V4(ipv4("server address", arg)?);
                given.settings.put(key, primary, arg, cli)?;
            }
            _ => {
                let (name, value) = option_value(arg, &mut args)?;
                if name == "-c" || name == "--config" {
                    let path = PathBuf::from(nonempty(name, value, "a file name")?);
                    once(&mut given.config, path, name)?;
                } else {
                    let setting = config::option(name, role).ok_or_else(|| stray(name))?;
                    given.settings.set(setting, name, value, cli)?;
                }
            }
        }
    }
    let (role, process) = given.finish(role)?;
    Ok(Run {
        role,
        reload: Reload {
            args: reload_args,
            process: process.clone(),
        },
        process,
    })
}

/// `--name value` or `--name=value`: the name and its value.
fn option_value<'a>(arg: &'a str, args: &mut Args<'a>) -> Result<(&'a str, &'a str), UsageError> {
    match arg.split_once('=') {
        Some(split) => Ok(split),
        None => match args.next() {
            Some(value) => Ok((arg, value)),
            None => Err(usage(&["option '", arg, "' needs a value"])),
        },
    }
}

/// Store `value` unless option `name` was already given.
fn once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), UsageError> {
    match slot {
        Some(_) => Err(twice(name)),
        None => {
            *slot = Some(value);
            Ok(())
        }
    }
}

#[inline(never)]
pub(crate) fn twice(name: &str) -> UsageError {
    usage(&["option '", name, "' given twice"])
}

/// An IPv6 address literal: one copy of the parser for [`unicast6`] and
/// [`teredo_prefix`].
#[inline(never)]
fn ipv6(what: &str, s: &str) -> Result<Ipv6Addr, UsageError> {
    s.parse()
        .map_err(|_| bad(s, what, "is not an IPv6 address"))
}

/// A unicast IPv6 address usable as a packet source.
pub(crate) fn unicast6(what: &str, s: &str) -> Result<Ipv6Addr, UsageError> {
    let addr = ipv6(what, s)?;
    if addr.is_multicast() || addr.is_unspecified() || addr.is_loopback() {
        return Err(usage(&[s, " for '", what, "' is not a unicast address"]));
    }
    Ok(addr)
}

/// A server given as a host name or an IPv4 address (resolved later).
pub(crate) fn host(what: &str, s: &str) -> Result<String, UsageError> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(bad(s, what, "is neither a host name nor an IPv4 address"))
    }
}

/// An interface name the kernel accepts.
///
/// The message spells [`MAX_NAME_LEN`] out (15, Linux's `IFNAMSIZ` less
/// its NUL) rather than formatting it; a test keeps the two equal.
pub(crate) fn interface_name(s: &str) -> Result<String, UsageError> {
    let bad = s.is_empty()
        || s.len() > MAX_NAME_LEN
        || s == "."
        || s == ".."
        || s.bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if bad {
        return Err(usage(&[
            "'",
            s,
            "' is not a valid interface name (1 to 15 bytes, no '/', ':' or spaces)",
        ]));
    }
    Ok(s.to_owned())
}

/// An IPv4 address literal; `what` is the option, the directive or the
/// argument's role, as written in the message (unquoted).
pub(crate) fn ipv4(what: &str, s: &str) -> Result<Ipv4Addr, UsageError> {
    s.parse()
        .map_err(|_| usage(&["'", s, "' for ", what, " is not an IPv4 address"]))
}

/// A Teredo /32 prefix written as an IPv6 address, e.g. `2001::`.
pub(crate) fn teredo_prefix(what: &str, s: &str) -> Result<[u8; 4], UsageError> {
    let addr = ipv6(what, s)?;
    let bits = u128::from(addr);
    if bits & (u128::MAX >> 32) != 0 {
        return Err(usage(&["prefix ", s, " has bits set beyond the first 32"]));
    }
    if addr.is_multicast() {
        return Err(usage(&["prefix ", s, " is multicast (ff00::/8)"]));
    }
    // The top 32 bits, as the four bytes the core takes.
    Ok(((bits >> 96) as u32).to_be_bytes())
}

/// An MTU: IPv6 needs at least 1280 (RFC 8200 §5).
pub(crate) fn mtu(s: &str) -> Result<u16, UsageError> {
    match config::u16_radix(s, 10) {
        Some(n) if n >= 1280 => Ok(n),
        _ => Err(usage(&["MTU '", s, "' is not a number from 1280 to 65535"])),
    }
}

/// A relay's kind on the command line (`--type`).
pub(crate) fn relay_kind(s: &str) -> Result<RelayKind, UsageError> {
    match s {
        "cone" => Ok(RelayKind::Cone),
        "restricted" => Ok(RelayKind::Restricted),
        _ => Err(usage(&[
            "relay type '",
            s,
            "' is not one of cone, restricted",
        ])),
    }
}

/// A syslog facility by name (`--syslog=`, `SyslogFacility`).
pub(crate) fn facility(s: &str) -> Result<Facility, UsageError> {
    Facility::from_name(s)
        .ok_or_else(|| usage(&["syslog facility '", s, "' is not one of ", FACILITIES]))
}

/// [`Facility::NAMES`] as the message of [`facility`] lists them: written
/// out rather than joined at run time; a test keeps the two equal.
const FACILITIES: &str = "auth, authpriv, cron, daemon, ftp, kern, local0, local1, local2, \
                          local3, local4, local5, local6, local7, lpr, mail, news, syslog, user";

/// The log levels by the names `--log-level` and `LogLevel` take.
const LEVELS: [(&str, LevelFilter); 5] = [
    ("error", LevelFilter::Error),
    ("warn", LevelFilter::Warn),
    ("info", LevelFilter::Info),
    ("debug", LevelFilter::Debug),
    ("trace", LevelFilter::Trace),
];

/// A log level by name (`--log-level`, `LogLevel`).
pub(crate) fn level(s: &str) -> Result<LevelFilter, UsageError> {
    match LEVELS.iter().find(|(name, _)| *name == s) {
        Some((_, level)) => Ok(*level),
        None => Err(usage(&[
            "log level '",
            s,
            "' is not one of error, warn, info, debug, trace",
        ])),
    }
}

/// The name [`level`] reads as `level`.
fn level_name(level: LevelFilter) -> &'static str {
    LEVELS
        .iter()
        .find(|(_, l)| *l == level)
        .map_or("off", |(name, _)| name)
}

#[cfg(test)]
mod test {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().copied())
    }

    fn server(args: &[&str]) -> ServerArgs {
        match p(args) {
            Ok(Command::Run(Run {
                role: Role::Server(s),
                ..
            })) => s,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match p(args) {
            Err(e) => e.to_string(),
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn top_level() {
        assert_eq!(p(&["--help"]), Ok(Command::Help));
        assert_eq!(p(&["-h"]), Ok(Command::Help));
        assert_eq!(p(&["--version"]), Ok(Command::Version));
        assert_eq!(p(&["-V", "junk"]), Ok(Command::Version));
        assert_eq!(p(&["client", "--help"]), Ok(Command::Help));
        assert_eq!(p(&["relay", "--help"]), Ok(Command::Help));
        assert_eq!(p(&["server", "--help"]), Ok(Command::Help));
        assert!(VERSION.starts_with("shipworm 0."));
        let help = HELP;
        assert!(help.contains("Teredo client behind a cone or restricted NAT"));
        assert!(help.contains("relay                   Teredo relay"));
        assert!(help.contains("local UDP port (default: 3544)"));
        assert!(help.contains("net.ipv6.conf.all.forwarding=1"));
        assert!(!help.contains("not yet implemented"));
        assert!(help.contains("(default: teredo)"));
        assert!(help.contains("(default: 2001::)"));
        assert!(help.contains("(default: 88)"));
    }

    #[test]
    fn help_shows_the_real_defaults() {
        use shipworm_core::server::{DEFAULT_MAX_FORWARD_PAYLOAD, DEFAULT_MTU};
        let [a, b, c, d] = DEFAULT_PREFIX;
        let prefix = Ipv6Addr::from([a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(HELP.starts_with(&format!("{VERSION}: Teredo")));
        for want in [
            format!("check a file (default {DEFAULT_CONFIG})"),
            format!("be zero (default: {prefix})"),
            format!("1280 to 65535\n                             (default: {DEFAULT_MTU})"),
            format!("bubbles (default: {DEFAULT_MAX_FORWARD_PAYLOAD})"),
            format!("tunnel interface (default: {DEFAULT_INTERFACE})"),
            format!("local UDP port (default: {TEREDO_PORT})"),
            format!("as for the\n                             server (default: {prefix})"),
            format!("tunnel MTU, 1280 to 65535 (default: {RELAY_DEFAULT_MTU})"),
            format!("--daemon: {DEFAULT_PID_FILE})"),
        ] {
            assert!(HELP.contains(&want), "--help lacks {want:?}");
        }
    }

    #[test]
    fn messages_spell_the_real_lists() {
        assert_eq!(FACILITIES, Facility::NAMES.join(", "));
        assert_eq!(MAX_NAME_LEN, 15);
        let long = "0123456789abcdef";
        let msg = interface_name(long).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("(1 to {MAX_NAME_LEN} bytes")),
            "{msg}"
        );
    }

    #[test]
    fn server_defaults() {
        let s = server(&["server", "198.51.100.1"]);
        assert_eq!(
            s,
            ServerArgs {
                config: Config {
                    primary: Ipv4Addr::new(198, 51, 100, 1),
                    secondary: Ipv4Addr::new(198, 51, 100, 2),
                    prefix: [0x20, 0x01, 0, 0],
                    mtu: 1280,
                    max_forward_payload: 88,
                },
                log_level: LevelFilter::Info,
            }
        );
        // Primary + 1 carries into the next octet.
        let s = server(&["server", "192.0.2.255"]);
        assert_eq!(s.config.secondary, Ipv4Addr::new(192, 0, 3, 0));
    }

    #[test]
    fn server_options_both_spellings_any_order() {
        let s = server(&[
            "server",
            "--secondary",
            "203.0.113.7",
            "--prefix=3ffe:831f::",
            "198.51.100.1",
            "--mtu",
            "1400",
            "--max-forward-payload=1200",
            "--log-level",
            "debug",
        ]);
        assert_eq!(s.config.primary, Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(s.config.secondary, Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(s.config.prefix, [0x3f, 0xfe, 0x83, 0x1f]);
        assert_eq!(s.config.mtu, 1400);
        assert_eq!(s.config.max_forward_payload, 1200);
        assert_eq!(s.log_level, LevelFilter::Debug);
        assert_eq!(
            server(&["server", "192.0.2.1", "--mtu=65535"]).config.mtu,
            65535
        );
        assert_eq!(
            server(&["server", "192.0.2.1", "--mtu=1280"]).config.mtu,
            1280
        );
    }

    #[test]
    fn bad_usage_names_the_problem() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "no role given"),
            (&["bogus"], "unknown role 'bogus'"),
            (&["--bogus"], "unknown option '--bogus'"),
            (&["server"], "needs the primary IPv4 address"),
            (
                &["server", "1.2.3"],
                "'1.2.3' for server address is not an IPv4 address",
            ),
            (&["server", "2001:db8::1"], "not an IPv4 address"),
            (
                &["server", "192.0.2.1", "192.0.2.5"],
                "unexpected argument '192.0.2.5'",
            ),
            (
                &["server", "192.0.2.1", "--mtu"],
                "option '--mtu' needs a value",
            ),
            (
                &["server", "192.0.2.1", "--mtu", "1279"],
                "MTU '1279' is not a number from 1280",
            ),
            (&["server", "192.0.2.1", "--mtu=65536"], "MTU '65536'"),
            (&["server", "192.0.2.1", "--mtu=-1"], "MTU '-1'"),
            (
                &["server", "192.0.2.1", "--mtu=1300", "--mtu=1400"],
                "option '--mtu' given twice",
            ),
            (
                &["server", "192.0.2.1", "--max-forward-payload=65536"],
                "not a number from 0 to 65535",
            ),
            (
                &["server", "192.0.2.1", "--prefix=2001::1"],
                "bits set beyond the first 32",
            ),
            (
                &["server", "192.0.2.1", "--prefix=2001:0:0:1::"],
                "bits set beyond",
            ),
            (&["server", "192.0.2.1", "--prefix=ff02::"], "multicast"),
            (
                &["server", "192.0.2.1", "--prefix=192.0.2.1"],
                "not an IPv6 address",
            ),
            (
                &["server", "192.0.2.1", "--log-level=loud"],
                "log level 'loud'",
            ),
            (&["server", "192.0.2.1", "--secondary"], "needs a value"),
            (
                &["server", "192.0.2.1", "--secondary=192.0.2.1"],
                "must differ",
            ),
            (
                &["server", "192.0.2.1", "--frobnicate=1"],
                "unknown option '--frobnicate'",
            ),
            (
                &["server", "255.255.255.255"],
                "has no next address; give '--secondary'",
            ),
        ];
        for (args, want) in cases {
            let got = err(args);
            assert!(got.contains(want), "{args:?}: {got:?} lacks {want:?}");
        }
    }

    fn client(args: &[&str]) -> ClientArgs {
        match p(args) {
            Ok(Command::Run(Run {
                role: Role::Client(c),
                ..
            })) => c,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn client_defaults() {
        assert_eq!(
            client(&["client", "--server", "teredo.example.net"]),
            ClientArgs {
                server: "teredo.example.net".to_owned(),
                server2: None,
                fallback: None,
                interface: "teredo".to_owned(),
                bind: Ipv4Addr::UNSPECIFIED,
                port: 0,
                hook: None,
                refresh_interval: None,
                log_level: LevelFilter::Info,
            }
        );
    }

    #[test]
    fn client_options_both_spellings() {
        let c = client(&[
            "client",
            "--server=198.51.100.1",
            "--server2",
            "198.51.100.9",
            "--fallback=teredo2.example.net",
            "--interface",
            "tun-teredo0",
            "--bind=192.0.2.2",
            "--port",
            "3545",
            "--hook=/etc/shipworm/hook",
            "--log-level=debug",
        ]);
        assert_eq!(c.server, "198.51.100.1");
        assert_eq!(c.server2, Some(Ipv4Addr::new(198, 51, 100, 9)));
        assert_eq!(c.fallback.as_deref(), Some("teredo2.example.net"));
        assert_eq!(c.interface, "tun-teredo0");
        assert_eq!(c.bind, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(c.port, 3545);
        assert_eq!(c.hook, Some(PathBuf::from("/etc/shipworm/hook")));
        assert_eq!(c.log_level, LevelFilter::Debug);
    }

    #[test]
    fn client_bad_usage_names_the_problem() {
        let cases: &[(&[&str], &str)] = &[
            (&["client"], "needs '--server <host|IPv4>'"),
            (
                &["client", "198.51.100.1"],
                "unexpected argument '198.51.100.1'",
            ),
            (&["client", "--server"], "option '--server' needs a value"),
            (&["client", "--server="], "neither a host name nor an IPv4"),
            (&["client", "--server=a b"], "neither a host name"),
            (
                &["client", "--server=x", "--server=y"],
                "'--server' given twice",
            ),
            (
                &["client", "--server=x", "--server2=x"],
                "'x' for --server2 is not an IPv4",
            ),
            (
                &["client", "--server=192.0.2.1", "--server2=192.0.2.1"],
                "must differ",
            ),
            (
                &["client", "--server=x", "--port=65536"],
                "not a number from 0 to 65535",
            ),
            (
                &["client", "--server=x", "--interface="],
                "not a valid interface name",
            ),
            (
                &["client", "--server=x", "--interface=0123456789abcdef"],
                "1 to 15 bytes",
            ),
            (
                &["client", "--server=x", "--interface=a/b"],
                "not a valid interface",
            ),
            (&["client", "--server=x", "--hook="], "needs a program path"),
            (
                &["client", "--server=x", "--mtu=1280"],
                "unknown option '--mtu'",
            ),
            (
                &["client", "--server=x", "--log-level=loud"],
                "log level 'loud'",
            ),
        ];
        for (args, want) in cases {
            let got = err(args);
            assert!(got.contains(want), "{args:?}: {got:?} lacks {want:?}");
        }
    }

    fn relay(args: &[&str]) -> RelayArgs {
        match p(args) {
            Ok(Command::Run(Run {
                role: Role::Relay(r),
                ..
            })) => r,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn relay_defaults() {
        assert_eq!(
            relay(&["relay"]),
            RelayArgs {
                bind: Ipv4Addr::UNSPECIFIED,
                port: 3544,
                interface: "teredo".to_owned(),
                prefix: [0x20, 0x01, 0, 0],
                mtu: 1280,
                kind: RelayKind::Cone,
                icmp_source: None,
                log_level: LevelFilter::Info,
            }
        );
    }

    #[test]
    fn relay_options_both_spellings() {
        let r = relay(&[
            "relay",
            "--bind=198.51.100.10",
            "--port",
            "3545",
            "--interface=teredo-relay",
            "--prefix",
            "3ffe:831f::",
            "--mtu=1400",
            "--type",
            "restricted",
            "--log-level=trace",
            "--icmp-source=2001:db8::1",
        ]);
        assert_eq!(
            r,
            RelayArgs {
                bind: Ipv4Addr::new(198, 51, 100, 10),
                port: 3545,
                interface: "teredo-relay".to_owned(),
                prefix: [0x3f, 0xfe, 0x83, 0x1f],
                mtu: 1400,
                kind: RelayKind::Restricted,
                icmp_source: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                log_level: LevelFilter::Trace,
            }
        );
        assert_eq!(relay(&["relay", "--type=cone"]).kind, RelayKind::Cone);
        assert_eq!(relay(&["relay", "--mtu=65535"]).mtu, 65535);
    }

    #[test]
    fn relay_bad_usage_names_the_problem() {
        let cases: &[(&[&str], &str)] = &[
            (&["relay", "192.0.2.1"], "unexpected argument '192.0.2.1'"),
            (&["relay", "--bind"], "option '--bind' needs a value"),
            (&["relay", "--bind=2001:db8::1"], "not an IPv4 address"),
            (&["relay", "--port=0"], "not a number from 1 to 65535"),
            (&["relay", "--port=65536"], "not a number from 1 to 65535"),
            (
                &["relay", "--port=3544", "--port=3545"],
                "'--port' given twice",
            ),
            (&["relay", "--interface=a:b"], "not a valid interface name"),
            (
                &["relay", "--prefix=2001::1"],
                "bits set beyond the first 32",
            ),
            (&["relay", "--prefix=ff0e::"], "multicast"),
            (
                &["relay", "--mtu=1279"],
                "MTU '1279' is not a number from 1280",
            ),
            (&["relay", "--mtu=70000"], "MTU '70000'"),
            (
                &["relay", "--type=symmetric"],
                "relay type 'symmetric' is not one",
            ),
            (
                &["relay", "--type=cone", "--type=cone"],
                "'--type' given twice",
            ),
            (&["relay", "--icmp-source=ff02::1"], "not a unicast address"),
            (&["relay", "--icmp-source=10.0.0.1"], "not an IPv6 address"),
            (
                &["relay", "--icmp-source=2001::1"],
                "ICMPv6 source 2001::1 is inside the Teredo prefix",
            ),
            (
                &["relay", "--server=192.0.2.1"],
                "unknown option '--server'",
            ),
            (&["relay", "--log-level=loud"], "log level 'loud'"),
        ];
        for (args, want) in cases {
            let got = err(args);
            assert!(got.contains(want), "{args:?}: {got:?} lacks {want:?}");
        }
    }

    #[test]
    fn status_command() {
        let status = |json, socket: Option<&str>| {
            Ok(Command::Status(StatusArgs {
                json,
                socket: socket.map(PathBuf::from),
            }))
        };
        assert_eq!(p(&["status"]), status(false, None));
        assert_eq!(
            p(&["status", "--socket", "/tmp/x.sock", "--json"]),
            status(true, Some("/tmp/x.sock"))
        );
        assert_eq!(p(&["status", "--socket=s"]), status(false, Some("s")));
        assert_eq!(p(&["status", "--help"]), Ok(Command::Help));
        assert!(err(&["status", "--socket="]).contains("'--socket' needs a path"));
        assert!(err(&["status", "--socket"]).contains("needs a value"));
        assert!(err(&["status", "--socket=a", "--socket=b"]).contains("given twice"));
        assert!(err(&["status", "--jsn"]).contains("unknown option '--jsn'"));
        assert!(err(&["status", "x"]).contains("unexpected argument 'x'"));
    }

    #[test]
    fn non_utf8_argument_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b's', 0xff]);
        let got = parse([OsString::from("server"), bad]).unwrap_err();
        assert_eq!(got.to_string(), r#"argument "s\xFF" is not valid UTF-8"#);
        // Quoted exactly as `{:?}` quotes an `OsStr`.
        for bytes in [
            &b"\xff"[..],
            b"a\"b\\c'd\te\n\x01\xc3\xa9\xe2\x80",
            b"\xcc\x81x\xf0\x9f\x98\x80\xed\xa0\x80\x7f\xfe",
        ] {
            let arg = OsString::from_vec(bytes.to_vec());
            let want = format!("argument {arg:?} is not valid UTF-8");
            assert_eq!(not_utf8(arg).to_string(), want);
        }
    }

    /// A configuration file in a fresh temporary directory.
    fn conf(name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("shipworm-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn run(args: &[&str]) -> Run {
        match p(args) {
            Ok(Command::Run(r)) => r,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn miredo_files_as_they_ship() {
        let client_conf = conf(
            "miredo.conf",
            "# Please refer to the miredo.conf(5) man page for details.\nInterfaceName\tteredo\n\n\
             # Pick a Teredo server:\n#ServerAddress\tteredo.ipv6.microsoft.com\n\
             ServerAddress\tteredo-debian.remlab.net\n\n\
             # Some firewall/NAT setups require a specific UDP port number:\n#BindPort\t3545\n",
        );
        // No role: RelayType's (client by default).
        let r = run(&["-c", &client_conf]);
        let Role::Client(c) = &r.role else {
            panic!("{r:?}")
        };
        assert_eq!(c.server, "teredo-debian.remlab.net");
        assert_eq!(c.interface, "teredo");
        assert_eq!(r.process, ProcessArgs::default());
        assert_eq!(run(&["client", "--config", &client_conf]).role, r.role);
        let server_conf = conf(
            "miredo-server.conf",
            "# Please refer to the miredo-server.conf(5) manpage for details.\n\n\
             # Server primary IPv4 address.\n\
             # Miredo will open UDP port 3544 on this IPv4 address and the next one.\n\
             ServerBindAddress 192.0.2.221\n",
        );
        let s = server(&["server", "-c", &server_conf]);
        assert_eq!(s.config.primary, Ipv4Addr::new(192, 0, 2, 221));
        assert_eq!(s.config.secondary, Ipv4Addr::new(192, 0, 2, 222));
        // The positional address overrides ServerBindAddress, as Miredo's.
        let s = server(&["server", "198.51.100.1", &format!("--config={server_conf}")]);
        assert_eq!(s.config.primary, Ipv4Addr::new(198, 51, 100, 1));
        assert!(matches!(
            p(&["--config", &server_conf]),
            Ok(Command::Run(Run {
                role: Role::Server(_),
                ..
            }))
        ));
    }

    #[test]
    fn command_line_overrides_the_file() {
        let f = conf(
            "override.conf",
            "ServerAddress 192.0.2.1\nBindPort 3545\nLogLevel warn\nRefreshInterval 20\n\
             FallbackServer 203.0.113.1\nPidFile /run/a.pid\nUser nobody\n",
        );
        let r = run(&[
            "client",
            "-c",
            &f,
            "--port",
            "4000",
            "--log-level=debug",
            "--pidfile=/run/b.pid",
        ]);
        let Role::Client(c) = &r.role else {
            panic!("{r:?}")
        };
        assert_eq!(c.server, "192.0.2.1");
        assert_eq!(c.port, 4000);
        assert_eq!(c.log_level, LevelFilter::Debug);
        assert_eq!(c.refresh_interval, Some(Duration::from_secs(20)));
        assert_eq!(c.fallback.as_deref(), Some("203.0.113.1"));
        assert_eq!(r.process.pid_file, Some(PathBuf::from("/run/b.pid")));
        assert_eq!(r.process.user.as_deref(), Some("nobody"));
        assert_eq!(r.process.syslog, None);
        // The reload source keeps the command line and the process settings.
        assert_eq!(r.reload.load().unwrap(), r);
        let relay = conf(
            "relay.conf",
            "RelayType restricted\nBindPort 3545\nPrefix 3ffe:831f::\nInterfaceMTU 1400\nSyslogFacility local2\n",
        );
        let r = run(&["-c", &relay, "--type=cone"]);
        let Role::Relay(a) = &r.role else {
            panic!("{r:?}")
        };
        assert_eq!((a.kind, a.port, a.mtu), (RelayKind::Cone, 3545, 1400));
        assert_eq!(a.prefix, [0x3f, 0xfe, 0x83, 0x1f]);
        assert_eq!(a.icmp_source, None);
        assert_eq!(r.process.syslog, Facility::from_name("local2"));
        let src = conf("src.conf", "RelayType relay\nRelayIcmpSource 2001:db8::5\n");
        let Role::Relay(a) = run(&["-c", &src]).role else {
            panic!("not a relay")
        };
        assert_eq!(a.icmp_source, Some("2001:db8::5".parse().unwrap()));
        assert_eq!(run(&["-c", &relay]).role.describe(), "restricted relay on UDP 0.0.0.0:3545, interface teredo, prefix 3ffe:831f::/32, MTU 1400");
    }

    #[test]
    fn process_options() {
        let r = run(&["server", "192.0.2.1", "--daemon"]);
        assert!(r.process.daemon);
        assert_eq!(r.process.pid_file, Some(PathBuf::from(DEFAULT_PID_FILE)));
        assert_eq!(r.process.syslog, Some(Facility::DAEMON));
        let r = run(&[
            "relay",
            "--syslog=local0",
            "--user",
            "shipworm",
            "--chroot=/var/empty",
            "--status-socket",
            "/run/shipworm.sock",
        ]);
        assert_eq!(
            r.process,
            ProcessArgs {
                daemon: false,
                pid_file: None,
                syslog: Facility::from_name("local0"),
                user: Some("shipworm".to_owned()),
                chroot: Some(PathBuf::from("/var/empty")),
                status_socket: Some(PathBuf::from("/run/shipworm.sock")),
            }
        );
        assert_eq!(
            run(&["relay", "--syslog"]).process.syslog,
            Some(Facility::DAEMON)
        );
        let cases: &[(&[&str], &str)] = &[
            (&["relay", "--daemon", "--daemon"], "'--daemon' given twice"),
            (&["relay", "--syslog=console"], "syslog facility 'console'"),
            (
                &["relay", "--pidfile=x.pid"],
                "'x.pid' for '--pidfile' is not an absolute path",
            ),
            (&["relay", "-c"], "option '-c' needs a value"),
            (&["-c"], "option '-c' needs a value"),
            (
                &["relay", "-c", "/nonexistent/x.conf"],
                "cannot read /nonexistent/x.conf: ",
            ),
            (&["check-config", "a", "b"], "takes one file name"),
        ];
        for (args, want) in cases {
            let got = err(args);
            assert!(got.contains(want), "{args:?}: {got:?} lacks {want:?}");
        }
    }

    #[test]
    fn file_errors_name_the_line() {
        let f = conf("bad.conf", "ServerAddress 192.0.2.1\n\nFoo 1\n");
        assert_eq!(
            err(&["client", "-c", &f]),
            format!("{f}:3: unknown directive \"Foo\"")
        );
        let f = conf("role.conf", "RelayType relay\nInterfaceMTU 1400\n");
        assert_eq!(
            err(&["client", "--server=192.0.2.1", "-c", &f]),
            format!("{f}:1: \"RelayType\" asks for the relay role, not client")
        );
        let f = conf("port0.conf", "RelayType relay\nBindPort 0\n");
        assert_eq!(
            err(&["-c", &f]),
            format!("{f}:2: a relay needs a fixed \"BindPort\" (1 to 65535)")
        );
        let f = conf("empty.conf", "# nothing\n");
        assert!(err(&["check-config", &f]).contains("'ServerAddress' in a file"));
    }

    #[test]
    fn config_paths_become_absolute() {
        let cwd = std::env::current_dir().unwrap();
        let abs = |p: &str| cwd.join(p).to_str().unwrap().to_owned();
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            absolute_config_paths(args(&["client", "-c", "a.conf", "--hook", "x"])),
            args(&["client", "-c", &abs("a.conf"), "--hook", "x"])
        );
        assert_eq!(
            absolute_config_paths(args(&["--config=b.conf", "--config", "/etc/c.conf"])),
            args(&[
                &format!("--config={}", abs("b.conf")),
                "--config",
                "/etc/c.conf"
            ])
        );
        assert_eq!(
            absolute_config_paths(args(&["check-config", "d.conf"])),
            args(&["check-config", &abs("d.conf")])
        );
    }

    #[test]
    fn check_config() {
        let f = conf(
            "check.conf",
            "ServerAddress teredo.example.net\nBindPort 3545\n",
        );
        match p(&["check-config", &f]) {
            Ok(Command::CheckConfig(r)) => assert_eq!(
                r.role.describe(),
                "client of server teredo.example.net, interface teredo, UDP 0.0.0.0:3545"
            ),
            other => panic!("{other:?}"),
        }
        assert!(err(&["check-config", "/nonexistent/x.conf"]).starts_with("cannot read"));
    }
}
