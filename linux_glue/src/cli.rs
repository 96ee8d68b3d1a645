//! The command line: `shipworm <role> [options]`.
//!
//! Hand-written rather than clap: one role with five options does not justify
//! the ~300 KB clap adds to a router binary.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use std::ffi::OsString;

use log::LevelFilter;
use shipworm_core::addr::DEFAULT_PREFIX;
use shipworm_core::server::{Config, DEFAULT_MAX_FORWARD_PAYLOAD, DEFAULT_MTU};

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
  client                  not yet implemented
  relay                   not yet implemented

Server options:
  --secondary <IPv4>         second address (default: primary + 1)
  --prefix <IPv6>            Teredo prefix: first 32 bits used, the rest must
                             be zero (default: {prefix})
  --mtu <N>                  MTU advertised to clients, 1280 to 65535
                             (default: {DEFAULT_MTU})
  --max-forward-payload <N>  largest IPv6 payload in bytes forwarded for
                             packets other than bubbles (default: {DEFAULT_MAX_FORWARD_PAYLOAD})
  --log-level <level>        error, warn, info, debug or trace (default: info)

Runs in the foreground and logs to standard error. SIGINT and SIGTERM stop it;
SIGUSR1 logs its counters. Exit status: 0 after a signal, 2 on bad usage or a
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
    /// A role that exists in the plan but not yet in the code.
    Unimplemented(&'static str),
}

/// The `server` role's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    /// The core's configuration.
    pub config: Config,
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
        "client" => Ok(Command::Unimplemented("client")),
        "relay" => Ok(Command::Unimplemented("relay")),
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

/// The options that take a value.
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
        assert_eq!(p(&["client"]), Ok(Command::Unimplemented("client")));
        assert_eq!(p(&["relay", "x"]), Ok(Command::Unimplemented("relay")));
        assert_eq!(p(&["server", "--help"]), Ok(Command::Help));
        assert!(VERSION.starts_with("shipworm 0."));
        let help = help();
        assert!(help.contains("client                  not yet implemented"));
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

    #[test]
    fn non_utf8_argument_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b's', 0xff]);
        let got = parse([OsString::from("server"), bad]).unwrap_err();
        assert!(got.to_string().contains("not valid UTF-8"));
    }
}
