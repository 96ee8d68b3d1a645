//! The command line: `shipworm <role> [options]`.
//!
//! Hand-written rather than clap: three roles with two dozen options do not
//! justify the ~300 KB clap adds to a router binary.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use std::ffi::OsString;
use std::path::PathBuf;

use log::LevelFilter;
use shipworm_core::addr::{DEFAULT_PREFIX, TEREDO_PORT};
use shipworm_core::relay::{RelayKind, DEFAULT_MTU as RELAY_DEFAULT_MTU};
use shipworm_core::server::{Config, DEFAULT_MAX_FORWARD_PAYLOAD, DEFAULT_MTU};

use crate::sys::tun::MAX_NAME_LEN;

/// The tunnel interface name of the client and the relay unless
/// `--interface` says otherwise
/// (Miredo's too, so scripts written for it keep working).
pub const DEFAULT_INTERFACE: &str = "teredo";

/// `shipworm <version>`, for `--version`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"));

/// The text of `--help`, with the core's defaults filled in.
pub fn help() -> String {
    let [a, b, c, d] = DEFAULT_PREFIX;
    let prefix = Ipv6Addr::from([a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    format!(
        "{VERSION}: Teredo (RFC 4380) for Linux and OpenWrt

Usage: shipworm <role> [options]
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
                             be zero (default: {prefix})
  --mtu <N>                  MTU advertised to clients, 1280 to 65535
                             (default: {DEFAULT_MTU})
  --max-forward-payload <N>  largest IPv6 payload in bytes forwarded for
                             packets other than bubbles (default: {DEFAULT_MAX_FORWARD_PAYLOAD})
  --log-level <level>        error, warn, info, debug or trace (default: info)

Client options:
  --server <host|IPv4>       Teredo server (required); a name is resolved at
                             start and again whenever the server is lost
  --server2 <IPv4>           the server's secondary address, for the
                             symmetric NAT test (default: primary + 1)
  --fallback <host|IPv4>     a second Teredo server, used when the first is
                             silent (its secondary address: its primary + 1)
  --interface <name>         tunnel interface (default: {DEFAULT_INTERFACE})
  --bind <IPv4>              local address of the UDP socket (default: any)
  --port <N>                 local UDP port, 0 = random (default: 0)
  --hook <path>              run this program on every state change with
                             Miredo's client-hook environment (IFACE, STATE,
                             ADDRESS, LLADDRESS, MTU, OLD_*) instead of
                             configuring the interface itself
  --log-level <level>        as for the server

Relay options:
  --bind <IPv4>              local address of the UDP socket (default: any)
  --port <N>                 local UDP port (default: {TEREDO_PORT})
  --interface <name>         tunnel interface (default: {DEFAULT_INTERFACE})
  --prefix <IPv6>            Teredo prefix routed to the tunnel, as for the
                             server (default: {prefix})
  --mtu <N>                  tunnel MTU, 1280 to 65535 (default: {RELAY_DEFAULT_MTU})
  --type <cone|restricted>   cone: indirect bubbles only (as Miredo's cone);
                             restricted: direct bubbles too (default: cone)
  --log-level <level>        as for the server
  The relay needs IPv6 forwarding (sysctl net.ipv6.conf.all.forwarding=1).

Runs in the foreground and logs to standard error. SIGINT and SIGTERM stop it
(the client removes its address and routes, the relay its route, and the
tunnel disappears);
SIGUSR1 logs its state and counters. Exit status: 0 after a signal, 2 on bad usage or a
failed start-up check, 1 on a later system error.
"
    )
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print [`help`].
    Help,
    /// Print [`VERSION`].
    Version,
    /// Run the Teredo server.
    Server(ServerArgs),
    /// Run the Teredo client.
    Client(ClientArgs),
    /// Run the Teredo relay.
    Relay(RelayArgs),
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
    /// Lowest level logged.
    pub log_level: LevelFilter,
}

/// A command line that makes no sense, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Parse the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut args = args.into_iter().map(|a| {
        a.into()
            .into_string()
            .map_err(|a| usage(format!("argument {a:?} is not valid UTF-8")))
    });
    let Some(first) = args.next().transpose()? else {
        return Err(usage("no role given"));
    };
    match first.as_str() {
        "-h" | "--help" => Ok(Command::Help),
        "-V" | "--version" => Ok(Command::Version),
        "server" => parse_server(args),
        "client" => parse_client(args),
        "relay" => parse_relay(args),
        other if other.starts_with('-') => Err(usage(format!("unknown option '{other}'"))),
        other => Err(usage(format!("unknown role '{other}'"))),
    }
}

fn parse_server(
    mut args: impl Iterator<Item = Result<String, UsageError>>,
) -> Result<Command, UsageError> {
    let mut primary = None;
    let mut secondary = None;
    let mut prefix = None;
    let mut mtu = None;
    let mut max_forward_payload = None;
    let mut log_level = None;
    while let Some(arg) = args.next().transpose()? {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if !arg.starts_with('-') {
            if primary.is_some() {
                return Err(usage(format!("unexpected argument '{arg}'")));
            }
            primary = Some(ipv4("server address", &arg)?);
            continue;
        }
        // `--name value` or `--name=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let slot = match name {
            "--secondary" => Opt::Secondary,
            "--prefix" => Opt::Prefix,
            "--mtu" => Opt::Mtu,
            "--max-forward-payload" => Opt::MaxForwardPayload,
            "--log-level" => Opt::LogLevel,
            _ => return Err(usage(format!("unknown option '{name}'"))),
        };
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .transpose()?
                .ok_or_else(|| usage(format!("option '{name}' needs a value")))?,
        };
        let twice = || usage(format!("option '{name}' given twice"));
        match slot {
            Opt::Secondary => set_once(&mut secondary, ipv4(name, &value)?).ok_or_else(twice)?,
            Opt::Prefix => set_once(&mut prefix, teredo_prefix(&value)?).ok_or_else(twice)?,
            Opt::Mtu => set_once(&mut mtu, parse_mtu(&value)?).ok_or_else(twice)?,
            Opt::MaxForwardPayload => {
                let n = value.parse().map_err(|_| {
                    usage(format!(
                        "'{value}' for '{name}' is not a number from 0 to 65535"
                    ))
                })?;
                set_once(&mut max_forward_payload, n).ok_or_else(twice)?
            }
            Opt::LogLevel => set_once(&mut log_level, level(&value)?).ok_or_else(twice)?,
        }
    }
    let primary = primary.ok_or_else(|| usage("'server' needs the primary IPv4 address"))?;
    let defaults = Config::new(primary);
    let secondary = match secondary {
        Some(s) => s,
        // The core's default (primary + 1) wraps around; say so instead.
        None if primary == Ipv4Addr::BROADCAST => {
            return Err(usage(format!(
                "{primary} has no next address; give '--secondary'"
            )))
        }
        None => defaults.secondary,
    };
    if secondary == primary {
        return Err(usage("primary and secondary addresses must differ"));
    }
    Ok(Command::Server(ServerArgs {
        config: Config {
            secondary,
            prefix: prefix.unwrap_or(defaults.prefix),
            mtu: mtu.unwrap_or(defaults.mtu),
            max_forward_payload: max_forward_payload.unwrap_or(defaults.max_forward_payload),
            ..defaults
        },
        log_level: log_level.unwrap_or(LevelFilter::Info),
    }))
}

/// `--name value` or `--name=value`: the name and its value.
fn option_value(
    arg: &str,
    args: &mut impl Iterator<Item = Result<String, UsageError>>,
) -> Result<(String, String), UsageError> {
    let (name, inline) = match arg.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (arg, None),
    };
    let value = match inline {
        Some(v) => v,
        None => args
            .next()
            .transpose()?
            .ok_or_else(|| usage(format!("option '{name}' needs a value")))?,
    };
    Ok((name.to_owned(), value))
}

fn parse_client(
    mut args: impl Iterator<Item = Result<String, UsageError>>,
) -> Result<Command, UsageError> {
    let mut server = None;
    let mut server2 = None;
    let mut fallback = None;
    let mut interface = None;
    let mut bind = None;
    let mut port = None;
    let mut hook = None;
    let mut log_level = None;
    while let Some(arg) = args.next().transpose()? {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if !arg.starts_with('-') {
            return Err(usage(format!("unexpected argument '{arg}'")));
        }
        let (name, value) = option_value(&arg, &mut args)?;
        let twice = || usage(format!("option '{name}' given twice"));
        let name = name.as_str();
        match name {
            "--server" => set_once(&mut server, host(name, &value)?).ok_or_else(twice)?,
            "--server2" => set_once(&mut server2, ipv4(name, &value)?).ok_or_else(twice)?,
            "--fallback" => set_once(&mut fallback, host(name, &value)?).ok_or_else(twice)?,
            "--interface" => set_once(&mut interface, interface_name(&value)?).ok_or_else(twice)?,
            "--bind" => set_once(&mut bind, ipv4(name, &value)?).ok_or_else(twice)?,
            "--port" => {
                let n = value.parse().map_err(|_| {
                    usage(format!(
                        "'{value}' for '--port' is not a number from 0 to 65535"
                    ))
                })?;
                set_once(&mut port, n).ok_or_else(twice)?
            }
            "--hook" => {
                if value.is_empty() {
                    return Err(usage("'--hook' needs a program path"));
                }
                set_once(&mut hook, PathBuf::from(value)).ok_or_else(twice)?
            }
            "--log-level" => set_once(&mut log_level, level(&value)?).ok_or_else(twice)?,
            _ => return Err(usage(format!("unknown option '{name}'"))),
        }
    }
    let server: String = server.ok_or_else(|| {
        usage("'client' needs '--server <host|IPv4>' (there is no default server)")
    })?;
    if let (Ok(primary), Some(secondary)) = (server.parse::<Ipv4Addr>(), server2) {
        if primary == secondary {
            return Err(usage("'--server' and '--server2' must differ"));
        }
    }
    Ok(Command::Client(ClientArgs {
        server,
        server2,
        fallback,
        interface: interface.unwrap_or_else(|| DEFAULT_INTERFACE.to_owned()),
        bind: bind.unwrap_or(Ipv4Addr::UNSPECIFIED),
        port: port.unwrap_or(0),
        hook,
        log_level: log_level.unwrap_or(LevelFilter::Info),
    }))
}

fn parse_relay(
    mut args: impl Iterator<Item = Result<String, UsageError>>,
) -> Result<Command, UsageError> {
    let mut bind = None;
    let mut port = None;
    let mut interface = None;
    let mut prefix = None;
    let mut mtu = None;
    let mut kind = None;
    let mut log_level = None;
    while let Some(arg) = args.next().transpose()? {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if !arg.starts_with('-') {
            return Err(usage(format!("unexpected argument '{arg}'")));
        }
        let (name, value) = option_value(&arg, &mut args)?;
        let twice = || usage(format!("option '{name}' given twice"));
        let name = name.as_str();
        match name {
            "--bind" => set_once(&mut bind, ipv4(name, &value)?).ok_or_else(twice)?,
            "--port" => {
                let n = match value.parse() {
                    Ok(n) if n != 0 => n,
                    _ => {
                        return Err(usage(format!(
                            "'{value}' for '--port' is not a number from 1 to 65535"
                        )))
                    }
                };
                set_once(&mut port, n).ok_or_else(twice)?
            }
            "--interface" => set_once(&mut interface, interface_name(&value)?).ok_or_else(twice)?,
            "--prefix" => set_once(&mut prefix, teredo_prefix(&value)?).ok_or_else(twice)?,
            // parse_mtu caps at 65535, so the narrowing cannot fail.
            "--mtu" => {
                set_once(&mut mtu, parse_mtu(&value)?.min(65535) as u16).ok_or_else(twice)?
            }
            "--type" => {
                let k = match value.as_str() {
                    "cone" => RelayKind::Cone,
                    "restricted" => RelayKind::Restricted,
                    _ => {
                        return Err(usage(format!(
                            "relay type '{value}' is not one of cone, restricted"
                        )))
                    }
                };
                set_once(&mut kind, k).ok_or_else(twice)?
            }
            "--log-level" => set_once(&mut log_level, level(&value)?).ok_or_else(twice)?,
            _ => return Err(usage(format!("unknown option '{name}'"))),
        }
    }
    Ok(Command::Relay(RelayArgs {
        bind: bind.unwrap_or(Ipv4Addr::UNSPECIFIED),
        port: port.unwrap_or(TEREDO_PORT),
        interface: interface.unwrap_or_else(|| DEFAULT_INTERFACE.to_owned()),
        prefix: prefix.unwrap_or(DEFAULT_PREFIX),
        mtu: mtu.unwrap_or(RELAY_DEFAULT_MTU),
        kind: kind.unwrap_or(RelayKind::Cone),
        log_level: log_level.unwrap_or(LevelFilter::Info),
    }))
}

/// A server given as a host name or an IPv4 address (resolved later).
fn host(what: &str, s: &str) -> Result<String, UsageError> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(usage(format!(
            "'{s}' for '{what}' is neither a host name nor an IPv4 address"
        )))
    }
}

/// An interface name the kernel accepts.
fn interface_name(s: &str) -> Result<String, UsageError> {
    let bad = s.is_empty()
        || s.len() > MAX_NAME_LEN
        || s == "."
        || s == ".."
        || s.bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if bad {
        return Err(usage(format!(
            "'{s}' is not a valid interface name (1 to {MAX_NAME_LEN} bytes, no '/', ':' or spaces)"
        )));
    }
    Ok(s.to_owned())
}

/// The server options that take a value.
enum Opt {
    Secondary,
    Prefix,
    Mtu,
    MaxForwardPayload,
    LogLevel,
}

/// Store `value` unless the option was already set (`None` then).
fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

fn ipv4(what: &str, s: &str) -> Result<Ipv4Addr, UsageError> {
    s.parse()
        .map_err(|_| usage(format!("'{s}' for {what} is not an IPv4 address")))
}

/// A Teredo /32 prefix written as an IPv6 address, e.g. `2001::`.
fn teredo_prefix(s: &str) -> Result<[u8; 4], UsageError> {
    let addr: Ipv6Addr = s
        .parse()
        .map_err(|_| usage(format!("'{s}' for '--prefix' is not an IPv6 address")))?;
    let bits = u128::from(addr);
    if bits & (u128::MAX >> 32) != 0 {
        return Err(usage(format!(
            "prefix {addr} has bits set beyond the first 32"
        )));
    }
    if addr.is_multicast() {
        return Err(usage(format!("prefix {addr} is multicast (ff00::/8)")));
    }
    // The top 32 bits, as the four bytes the core takes.
    Ok(((bits >> 96) as u32).to_be_bytes())
}

fn parse_mtu(s: &str) -> Result<u32, UsageError> {
    match s.parse() {
        Ok(n) if (1280..=65535).contains(&n) => Ok(n),
        _ => Err(usage(format!(
            "MTU '{s}' is not a number from 1280 to 65535"
        ))),
    }
}

fn level(s: &str) -> Result<LevelFilter, UsageError> {
    Ok(match s {
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => {
            return Err(usage(format!(
                "log level '{s}' is not one of error, warn, info, debug, trace"
            )))
        }
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().copied())
    }

    fn server(args: &[&str]) -> ServerArgs {
        match p(args) {
            Ok(Command::Server(s)) => s,
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
        let help = help();
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
            Ok(Command::Client(c)) => c,
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
            Ok(Command::Relay(r)) => r,
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
    fn non_utf8_argument_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b's', 0xff]);
        let got = parse([OsString::from("server"), bad]).unwrap_err();
        assert!(got.to_string().contains("not valid UTF-8"));
    }
}
