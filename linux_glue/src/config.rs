//! Configuration files: Miredo's `miredo.conf` and `miredo-server.conf`
//! directives as they are, plus Shipworm's own.
//!
//! The syntax is Miredo's (`src/conf.c`): one `Name Value` per line,
//! separated by white space, names case-insensitive, `#` as the first token
//! starts a comment. Where Miredo is lax, this parser refuses with the file
//! and line, so a typo cannot go unnoticed on a router nobody watches:
//! - a name without a value, an unknown name or a name given twice is an
//!   error (Miredo warns, keeps the first, and logs leftovers as
//!   "superfluous");
//! - after the value only a `#` comment may follow (Miredo silently drops
//!   any further token);
//! - nothing is resolved: host names stay strings, to be resolved when the
//!   role starts (Miredo's checker resolves them, so it fails off-line);
//!   the other IPv4 directives take literals only.
//!
//! Parsing yields a [`File`] of optional [`At`] values; `cli` merges it
//! with the command line (the command line wins) and checks that every
//! directive applies to the role that runs ([`File::check_role`]).

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use log::LevelFilter;
use shipworm_core::relay::RelayKind;
use shipworm_core::time::Duration;

use crate::cli::{self, UsageError};
use crate::sys::syslog::Facility;

/// Lines longer than this are refused (Miredo skips them at about 1055).
const LINE_MAX: usize = 1024;

/// Shortest and longest `RefreshInterval`, seconds: below a few seconds the
/// server sees a flood, above an hour no NAT keeps the mapping.
const REFRESH_RANGE: core::ops::RangeInclusive<u64> = 5..=3600;

/// A value and the line it came from, for later error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    /// The parsed value.
    pub value: T,
    /// 1-based line number in the file.
    pub line: usize,
}

/// What `RelayType` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayType {
    /// `client` or `autoclient`.
    Client,
    /// `relay` or `cone` (cone), or `restricted`.
    Relay(RelayKind),
}

/// The role a file configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `shipworm server`.
    Server,
    /// `shipworm client`.
    Client,
    /// `shipworm relay`.
    Relay,
}

impl Role {
    /// The role's sub-command name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Relay => "relay",
        }
    }
}

/// Every directive of a configuration file; `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct File {
    /// Where it was read from (absolute, so a reload after `chdir /` works).
    pub path: PathBuf,
    /// `RelayType`: client or relay (Miredo).
    pub relay_type: Option<At<RelayType>>,
    /// `ServerAddress`: the client's server, host name or IPv4 (Miredo).
    pub server_address: Option<At<String>>,
    /// `ServerAddress2`: the server's secondary address (Miredo).
    pub server_address2: Option<At<Ipv4Addr>>,
    /// `FallbackServer`: a second Teredo server for the client.
    pub fallback_server: Option<At<String>>,
    /// `Prefix`: Teredo /32 prefix of the server and the relay (Miredo).
    pub prefix: Option<At<[u8; 4]>>,
    /// `InterfaceMTU`: the relay's tunnel MTU or the server's advertised
    /// MTU (Miredo).
    pub interface_mtu: Option<At<u16>>,
    /// `InterfaceName`: tunnel name of the client and the relay (Miredo).
    pub interface_name: Option<At<String>>,
    /// `BindAddress`: local IPv4 of the client's or relay's socket (Miredo).
    pub bind_address: Option<At<Ipv4Addr>>,
    /// `BindPort`: local UDP port of the client or relay (Miredo).
    pub bind_port: Option<At<u16>>,
    /// `SyslogFacility`: log to syslog with this facility (Miredo).
    pub syslog_facility: Option<At<Facility>>,
    /// `ServerBindAddress`: the server's primary address (Miredo).
    pub server_bind_address: Option<At<Ipv4Addr>>,
    /// `ServerBindAddress2`: the server's secondary address (Miredo).
    pub server_bind_address2: Option<At<Ipv4Addr>>,
    /// `MaxForwardPayload`: the server's `--max-forward-payload`.
    pub max_forward_payload: Option<At<u16>>,
    /// `Hook`: the client's `--hook` program.
    pub hook: Option<At<PathBuf>>,
    /// `LogLevel`: lowest level logged.
    pub log_level: Option<At<LevelFilter>>,
    /// `RefreshInterval`: the client's refresh interval, in seconds.
    pub refresh_interval: Option<At<Duration>>,
    /// `PidFile`: where `--daemon` writes its process id.
    pub pid_file: Option<At<PathBuf>>,
    /// `User`: account to switch to after start-up.
    pub user: Option<At<String>>,
    /// `Chroot`: directory to confine the process to after start-up.
    pub chroot: Option<At<PathBuf>>,
    /// `StatusSocket`: path of the status socket.
    pub status_socket: Option<At<PathBuf>>,
    /// `RelayIcmpSource`: the relay's `--icmp-source`.
    pub relay_icmp_source: Option<At<Ipv6Addr>>,
}

/// A configuration file that cannot be used: the message names the file and
/// (if the problem is on one line) the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// The message, for the command line's error type.
    pub(crate) fn into_message(self) -> String {
        self.0
    }
}

/// The error `msg` at `line` of `path`: `path:line: msg`, the one shape of
/// every error inside a file (one helper, not a `format!` per message).
#[inline(never)]
pub(crate) fn at(path: &Path, line: usize, msg: &str) -> Error {
    Error(format!("{}:{line}: {msg}", path.display()))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Read and parse `path`.
pub fn load(path: &Path) -> Result<File, Error> {
    let path = if path.is_relative() {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_owned())
    } else {
        path.to_owned()
    };
    let text =
        std::fs::read(&path).map_err(|e| Error(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8(text)
        .map_err(|_| Error(format!("{}: not valid UTF-8", path.display())))?;
    parse(&path, &text)
}

/// Parse the text of a file read from `path` (used in messages only).
pub fn parse(path: &Path, text: &str) -> Result<File, Error> {
    let mut file = File {
        path: path.to_owned(),
        ..File::default()
    };
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let fail = |msg: String| at(path, n, &msg);
        if line.len() > LINE_MAX {
            return Err(fail(format!("line longer than {LINE_MAX} bytes")));
        }
        let mut tokens = line.split_whitespace();
        let Some(name) = tokens.next() else { continue };
        if name.starts_with('#') {
            continue;
        }
        let Some(value) = tokens.next().filter(|v| !v.starts_with('#')) else {
            return Err(fail(["directive \"", name, "\" has no value"].concat()));
        };
        if let Some(extra) = tokens.next().filter(|t| !t.starts_with('#')) {
            let msg = [
                "unexpected \"",
                extra,
                "\" after the value of \"",
                name,
                "\"",
            ];
            return Err(fail(msg.concat()));
        }
        file.set(name, value, n).map_err(fail)?;
    }
    Ok(file)
}

/// Store `value` at `line` unless the slot is taken.
fn put<T>(slot: &mut Option<At<T>>, value: T, line: usize, name: &str) -> Result<(), String> {
    match slot {
        Some(first) => Err(duplicate(name, first.line)),
        None => {
            *slot = Some(At { value, line });
            Ok(())
        }
    }
}

#[inline(never)]
fn duplicate(name: &str, first: usize) -> String {
    format!("duplicate directive \"{name}\" (first on line {first})")
}

/// An integer as C's `strtoul` base 0 reads it (Miredo's rule): `0x` hex,
/// a leading `0` octal, decimal otherwise.
fn integer(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(s.get(1..)?, 8).ok()
    } else {
        s.parse().ok()
    }
}

fn number(name: &str, s: &str, range: core::ops::RangeInclusive<u64>) -> Result<u64, String> {
    integer(s).filter(|n| range.contains(n)).ok_or_else(|| {
        format!(
            "\"{s}\" for \"{name}\" is not a number from {} to {}",
            range.start(),
            range.end()
        )
    })
}

fn path(name: &str, s: &str) -> Result<PathBuf, String> {
    if s.starts_with('/') {
        Ok(PathBuf::from(s))
    } else {
        Err(["\"", s, "\" for \"", name, "\" is not an absolute path"].concat())
    }
}

impl File {
    fn set(&mut self, name: &str, v: &str, n: usize) -> Result<(), String> {
        let u = UsageError::into_message;
        match name.to_ascii_lowercase().as_str() {
            "relaytype" => {
                let t = match v.to_ascii_lowercase().as_str() {
                    "client" | "autoclient" => RelayType::Client,
                    "relay" | "cone" => RelayType::Relay(RelayKind::Cone),
                    "restricted" => RelayType::Relay(RelayKind::Restricted),
                    _ => {
                        let msg = "\" for \"RelayType\" is not one of client, autoclient, \
                                   relay, cone, restricted";
                        return Err(["\"", v, msg].concat());
                    }
                };
                put(&mut self.relay_type, t, n, name)
            }
            "serveraddress" => put(
                &mut self.server_address,
                cli::host(name, v).map_err(u)?,
                n,
                name,
            ),
            "serveraddress2" => put(
                &mut self.server_address2,
                cli::ipv4(name, v).map_err(u)?,
                n,
                name,
            ),
            "fallbackserver" => put(
                &mut self.fallback_server,
                cli::host(name, v).map_err(u)?,
                n,
                name,
            ),
            "prefix" => put(
                &mut self.prefix,
                cli::teredo_prefix(name, v).map_err(u)?,
                n,
                name,
            ),
            "interfacemtu" => {
                let mtu = number(name, v, 1280..=65535)?;
                put(&mut self.interface_mtu, mtu as u16, n, name)
            }
            "interfacename" => put(
                &mut self.interface_name,
                cli::interface_name(v).map_err(u)?,
                n,
                name,
            ),
            "bindaddress" => put(
                &mut self.bind_address,
                cli::ipv4(name, v).map_err(u)?,
                n,
                name,
            ),
            "bindport" => {
                let port = number(name, v, 0..=65535)?;
                put(&mut self.bind_port, port as u16, n, name)
            }
            "syslogfacility" => {
                let f = cli::facility(v).map_err(u)?;
                put(&mut self.syslog_facility, f, n, name)
            }
            "serverbindaddress" => put(
                &mut self.server_bind_address,
                cli::ipv4(name, v).map_err(u)?,
                n,
                name,
            ),
            "serverbindaddress2" => put(
                &mut self.server_bind_address2,
                cli::ipv4(name, v).map_err(u)?,
                n,
                name,
            ),
            "maxforwardpayload" => {
                let p = number(name, v, 0..=65535)?;
                put(&mut self.max_forward_payload, p as u16, n, name)
            }
            "hook" => put(&mut self.hook, path(name, v)?, n, name),
            "loglevel" => put(&mut self.log_level, cli::level(v).map_err(u)?, n, name),
            "refreshinterval" => {
                let s = number(name, v, REFRESH_RANGE)?;
                put(&mut self.refresh_interval, Duration::from_secs(s), n, name)
            }
            "pidfile" => put(&mut self.pid_file, path(name, v)?, n, name),
            "user" => {
                let ok = v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if !ok {
                    return Err(["\"", v, "\" for \"User\" is not a user name"].concat());
                }
                put(&mut self.user, v.to_owned(), n, name)
            }
            "chroot" => put(&mut self.chroot, path(name, v)?, n, name),
            "statussocket" => put(&mut self.status_socket, path(name, v)?, n, name),
            "relayicmpsource" => put(
                &mut self.relay_icmp_source,
                cli::unicast6(name, v).map_err(u)?,
                n,
                name,
            ),
            _ => Err(format!("unknown directive \"{name}\"")),
        }
    }

    /// The role the file asks for when the command line names none: the
    /// server's if it has `ServerBindAddress`, otherwise `RelayType`'s
    /// (client by default, as Miredo).
    pub fn role(&self) -> Role {
        if self.server_bind_address.is_some() {
            return Role::Server;
        }
        match self.relay_type.as_ref().map(|t| t.value) {
            Some(RelayType::Relay(_)) => Role::Relay,
            Some(RelayType::Client) | None => Role::Client,
        }
    }

    /// Refuse directives that `role` would ignore (Miredo's "superfluous
    /// directive", which its checker also treats as fatal), and a
    /// `RelayType` that contradicts the role.
    pub fn check_role(&self, role: Role) -> Result<(), Error> {
        use Role::*;
        if let Some(At { value, line }) = &self.relay_type {
            let want = match value {
                RelayType::Client => Client,
                RelayType::Relay(_) => Relay,
            };
            if want != role {
                let msg = [
                    "\"RelayType\" asks for the ",
                    want.name(),
                    " role, not ",
                    role.name(),
                ];
                return Err(at(&self.path, *line, &msg.concat()));
            }
        }
        // The directives of one or two roles; the others (logging and
        // process settings) apply to every role.
        let lines: [(&str, Option<usize>, &[Role]); 15] = [
            ("RelayType", line(&self.relay_type), &[Client, Relay]),
            ("ServerAddress", line(&self.server_address), &[Client]),
            ("ServerAddress2", line(&self.server_address2), &[Client]),
            ("FallbackServer", line(&self.fallback_server), &[Client]),
            ("Hook", line(&self.hook), &[Client]),
            ("RefreshInterval", line(&self.refresh_interval), &[Client]),
            ("Prefix", line(&self.prefix), &[Server, Relay]),
            ("InterfaceMTU", line(&self.interface_mtu), &[Server, Relay]),
            (
                "InterfaceName",
                line(&self.interface_name),
                &[Client, Relay],
            ),
            ("BindAddress", line(&self.bind_address), &[Client, Relay]),
            ("BindPort", line(&self.bind_port), &[Client, Relay]),
            (
                "ServerBindAddress",
                line(&self.server_bind_address),
                &[Server],
            ),
            (
                "ServerBindAddress2",
                line(&self.server_bind_address2),
                &[Server],
            ),
            (
                "MaxForwardPayload",
                line(&self.max_forward_payload),
                &[Server],
            ),
            ("RelayIcmpSource", line(&self.relay_icmp_source), &[Relay]),
        ];
        for (name, line, roles) in lines {
            if let Some(line) = line {
                if !roles.contains(&role) {
                    let msg = [
                        "\"",
                        name,
                        "\" does not apply to the ",
                        role.name(),
                        " role",
                    ];
                    return Err(at(&self.path, line, &msg.concat()));
                }
            }
        }
        Ok(())
    }
}

fn line<T>(slot: &Option<At<T>>) -> Option<usize> {
    slot.as_ref().map(|a| a.line)
}

/// The value of an optional directive.
pub fn value<T: Clone>(slot: &Option<At<T>>) -> Option<T> {
    slot.as_ref().map(|a| a.value.clone())
}

#[cfg(test)]
mod test {
    use super::*;

    fn ok(text: &str) -> File {
        parse(Path::new("/etc/t.conf"), text).unwrap()
    }

    fn err(text: &str) -> String {
        parse(Path::new("/etc/t.conf"), text)
            .unwrap_err()
            .to_string()
    }

    /// Debian's `/etc/miredo/miredo.conf` (miredo 1.2.6), as shipped.
    const DEBIAN_MIREDO_CONF: &str = "# Please refer to the miredo.conf(5) man page for details.
InterfaceName\tteredo

# Pick a Teredo server:
#ServerAddress\tteredo.ipv6.microsoft.com
ServerAddress\tteredo-debian.remlab.net

# Some firewall/NAT setups require a specific UDP port number:
#BindPort\t3545
";

    /// Debian's `/etc/miredo/miredo-server.conf`, as shipped.
    const DEBIAN_SERVER_CONF: &str =
        "# Please refer to the miredo-server.conf(5) manpage for details.

# Server primary IPv4 address.
# Miredo will open UDP port 3544 on this IPv4 address and the next one.
ServerBindAddress 192.0.2.221
";

    #[test]
    fn debian_samples() {
        let f = ok(DEBIAN_MIREDO_CONF);
        assert_eq!(f.role(), Role::Client);
        assert_eq!(
            f.interface_name,
            Some(At {
                value: "teredo".to_owned(),
                line: 2
            })
        );
        assert_eq!(
            value(&f.server_address).as_deref(),
            Some("teredo-debian.remlab.net")
        );
        assert_eq!(f.bind_port, None);
        assert!(f.check_role(Role::Client).is_ok());
        let f = ok(DEBIAN_SERVER_CONF);
        assert_eq!(f.role(), Role::Server);
        assert_eq!(
            value(&f.server_bind_address),
            Some(Ipv4Addr::new(192, 0, 2, 221))
        );
        assert!(f.check_role(Role::Server).is_ok());
        assert!(f.check_role(Role::Client).is_err());
    }

    #[test]
    fn every_directive() {
        let f = ok("RelayType restricted
serveraddress teredo.example.net
SERVERADDRESS2 198.51.100.2
FallbackServer 203.0.113.1
Prefix 3ffe:831f::
InterfaceMTU 0x578
InterfaceName tun-teredo
BindAddress 192.0.2.2
BindPort 03545
SyslogFacility local3
ServerBindAddress 198.51.100.1
ServerBindAddress2 198.51.100.9
MaxForwardPayload 1200
Hook /etc/shipworm/hook
LogLevel debug
RefreshInterval 20
PidFile /run/sw.pid
User shipworm
Chroot /var/empty
StatusSocket /run/shipworm.sock   # trailing comment
");
        assert_eq!(
            f.relay_type,
            Some(At {
                value: RelayType::Relay(RelayKind::Restricted),
                line: 1
            })
        );
        assert_eq!(
            value(&f.server_address).as_deref(),
            Some("teredo.example.net")
        );
        assert_eq!(
            value(&f.server_address2),
            Some(Ipv4Addr::new(198, 51, 100, 2))
        );
        assert_eq!(value(&f.fallback_server).as_deref(), Some("203.0.113.1"));
        assert_eq!(value(&f.prefix), Some([0x3f, 0xfe, 0x83, 0x1f]));
        assert_eq!(value(&f.interface_mtu), Some(1400));
        assert_eq!(value(&f.interface_name).as_deref(), Some("tun-teredo"));
        assert_eq!(value(&f.bind_address), Some(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(value(&f.bind_port), Some(0o3545));
        assert_eq!(value(&f.syslog_facility), Facility::from_name("local3"));
        assert_eq!(
            value(&f.server_bind_address),
            Some(Ipv4Addr::new(198, 51, 100, 1))
        );
        assert_eq!(
            value(&f.server_bind_address2),
            Some(Ipv4Addr::new(198, 51, 100, 9))
        );
        assert_eq!(value(&f.max_forward_payload), Some(1200));
        assert_eq!(value(&f.hook), Some(PathBuf::from("/etc/shipworm/hook")));
        assert_eq!(value(&f.log_level), Some(LevelFilter::Debug));
        assert_eq!(value(&f.refresh_interval), Some(Duration::from_secs(20)));
        assert_eq!(value(&f.pid_file), Some(PathBuf::from("/run/sw.pid")));
        assert_eq!(value(&f.user).as_deref(), Some("shipworm"));
        assert_eq!(value(&f.chroot), Some(PathBuf::from("/var/empty")));
        assert_eq!(
            value(&f.status_socket),
            Some(PathBuf::from("/run/shipworm.sock"))
        );
        // Server addresses decide the role over RelayType.
        assert_eq!(f.role(), Role::Server);
        for (t, kind) in [
            ("client", None),
            ("AutoClient", None),
            ("relay", Some(RelayKind::Cone)),
            ("cone", Some(RelayKind::Cone)),
            ("restricted", Some(RelayKind::Restricted)),
        ] {
            let f = ok(&format!("RelayType {t}"));
            let want = kind.map_or(RelayType::Client, RelayType::Relay);
            assert_eq!(value(&f.relay_type), Some(want));
            assert_eq!(
                f.role(),
                if kind.is_some() {
                    Role::Relay
                } else {
                    Role::Client
                }
            );
        }
        assert_eq!(ok("").role(), Role::Client);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "# x\n\nFoo bar\n",
                "/etc/t.conf:3: unknown directive \"Foo\"",
            ),
            (
                "BindPort 1\nbindport 2\n",
                "/etc/t.conf:2: duplicate directive \"bindport\" (first on line 1)",
            ),
            (
                "InterfaceName\n",
                "/etc/t.conf:1: directive \"InterfaceName\" has no value",
            ),
            ("InterfaceName # x\n", "has no value"),
            (
                "BindPort 1 2\n",
                "/etc/t.conf:1: unexpected \"2\" after the value of \"BindPort\"",
            ),
            (
                "BindPort 65536",
                "\"65536\" for \"BindPort\" is not a number from 0 to 65535",
            ),
            ("BindPort 09", "not a number"),
            ("InterfaceMTU 1279", "from 1280 to 65535"),
            (
                "RelayType symmetric",
                "\"symmetric\" for \"RelayType\" is not one of",
            ),
            ("ServerAddress a_b", "neither a host name nor an IPv4"),
            ("BindAddress teredo.example.net", "is not an IPv4 address"),
            ("Prefix 2001::1", "bits set beyond the first 32"),
            ("Prefix ff02::", "multicast"),
            ("InterfaceName a/b", "not a valid interface name"),
            ("SyslogFacility console", "is not one of auth, authpriv"),
            ("LogLevel loud", "log level 'loud'"),
            ("RefreshInterval 4", "from 5 to 3600"),
            (
                "Hook hook.sh",
                "\"hook.sh\" for \"Hook\" is not an absolute path",
            ),
            ("User a;b", "not a user name"),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(got.contains(want), "{text:?}: {got:?} lacks {want:?}");
            assert!(got.starts_with("/etc/t.conf:"), "{got}");
        }
        let long = format!("InterfaceName {}", "x".repeat(LINE_MAX));
        assert!(err(&long).contains("line longer than"));
    }

    #[test]
    fn directives_must_fit_the_role() {
        let f = ok("ServerAddress 192.0.2.1\nPrefix 2001::\n");
        assert_eq!(
            f.check_role(Role::Client).unwrap_err().to_string(),
            "/etc/t.conf:2: \"Prefix\" does not apply to the client role"
        );
        let f = ok("RelayType cone\n");
        assert_eq!(
            f.check_role(Role::Client).unwrap_err().to_string(),
            "/etc/t.conf:1: \"RelayType\" asks for the relay role, not client"
        );
        assert!(f.check_role(Role::Relay).is_ok());
        // Process directives apply everywhere.
        let f = ok("LogLevel warn\nPidFile /run/x.pid\nSyslogFacility daemon\nUser nobody\n");
        for role in [Role::Server, Role::Client, Role::Relay] {
            assert!(f.check_role(role).is_ok());
        }
    }

    #[test]
    fn strtoul_base_zero() {
        assert_eq!(integer("3545"), Some(3545));
        assert_eq!(integer("0xDD9"), Some(3545));
        assert_eq!(integer("06731"), Some(3545));
        assert_eq!(integer("0"), Some(0));
        assert_eq!(integer("08"), None);
        assert_eq!(integer("-1"), None);
        assert_eq!(integer("0x"), None);
    }

    #[test]
    fn missing_file() {
        let e = load(Path::new("/nonexistent/shipworm.conf")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/shipworm.conf: "),
            "{e}"
        );
    }
}
