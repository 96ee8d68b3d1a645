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
//! One table (`SETTINGS`) names every setting as directive and as
//! command-line option, with the roles that take it; one function
//! (`Settings::set`) reads a value from either source into [`Settings`].
//! Parsing yields a [`File`] of such settings; `cli` merges it with the
//! command line's (the command line wins) and checks that every directive
//! applies to the role that runs ([`File::check_role`]).

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use log::LevelFilter;
use shipworm_core::relay::RelayKind;

use crate::cli::{self, UsageError};
use crate::sys::syslog::Facility;

/// Lines longer than this are refused (Miredo skips them at about 1055).
const LINE_MAX: usize = 1024;

/// Shortest and longest `RefreshInterval`, seconds: below a few seconds the
/// server sees a flood, above an hour no NAT keeps the mapping.
const REFRESH_RANGE: core::ops::RangeInclusive<u16> = 5..=3600;

/// A value and the line it came from, for later error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    /// The parsed value.
    pub value: T,
    /// 1-based line number in the file (0 on the command line).
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

/// `RelayType`'s values in a file: Miredo's spellings, case-insensitive.
const RELAY_TYPES: [(&str, RelayType); 5] = [
    ("client", RelayType::Client),
    ("autoclient", RelayType::Client),
    ("relay", RelayType::Relay(RelayKind::Cone)),
    ("cone", RelayType::Relay(RelayKind::Cone)),
    ("restricted", RelayType::Relay(RelayKind::Restricted)),
];

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

    /// The role's bit in [`Setting::roles`].
    fn bit(self) -> u8 {
        match self {
            Role::Server => SERVER,
            Role::Client => CLIENT,
            Role::Relay => RELAY,
        }
    }
}

/// Every setting a file or the command line can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `RelayType` (Miredo), `--type`: client or relay, cone or restricted.
    RelayType,
    /// `ServerAddress` (Miredo), `--server`: the client's server, host
    /// name or IPv4.
    ServerAddress,
    /// `ServerAddress2` (Miredo), `--server2`: the server's secondary
    /// address.
    ServerAddress2,
    /// `FallbackServer`, `--fallback`: a second Teredo server for the
    /// client.
    FallbackServer,
    /// `Hook`, `--hook`: the client's hook program.
    Hook,
    /// `RefreshInterval` (file only): the client's refresh interval, in
    /// seconds.
    RefreshInterval,
    /// `Prefix` (Miredo), `--prefix`: Teredo /32 prefix of the server and
    /// the relay.
    Prefix,
    /// `InterfaceMTU` (Miredo), `--mtu`: the relay's tunnel MTU or the
    /// server's advertised MTU.
    InterfaceMTU,
    /// `InterfaceName` (Miredo), `--interface`: tunnel name of the client
    /// and the relay.
    InterfaceName,
    /// `BindAddress` (Miredo), `--bind`: local IPv4 of the client's or
    /// relay's socket.
    BindAddress,
    /// `BindPort` (Miredo), `--port`: local UDP port of the client or
    /// relay.
    BindPort,
    /// `ServerBindAddress` (Miredo), the server's positional argument: its
    /// primary address.
    ServerBindAddress,
    /// `ServerBindAddress2` (Miredo), `--secondary`: the server's
    /// secondary address.
    ServerBindAddress2,
    /// `MaxForwardPayload`, `--max-forward-payload` (server).
    MaxForwardPayload,
    /// `RelayIcmpSource`, `--icmp-source`: source of the relay's ICMPv6
    /// errors.
    RelayIcmpSource,
    /// `SyslogFacility` (Miredo), `--syslog`: log to syslog with this
    /// facility.
    SyslogFacility,
    /// `LogLevel`, `--log-level`: lowest level logged.
    LogLevel,
    /// `PidFile`, `--pidfile`: where the process id is written.
    PidFile,
    /// `User`, `--user`: account to switch to after start-up.
    User,
    /// `Chroot`, `--chroot`: directory to confine the process to.
    Chroot,
    /// `StatusSocket`, `--status-socket`: path of the status socket.
    StatusSocket,
}

/// How many [`Key`]s there are.
const KEYS: usize = Key::StatusSocket as usize + 1;

/// The bits of [`Setting::roles`].
const SERVER: u8 = 1;
const CLIENT: u8 = 2;
const RELAY: u8 = 4;
const ALL: u8 = SERVER | CLIENT | RELAY;

/// How a setting's value is read. Most values read the same from both
/// sources; where they differ (numbers in C's notation in a file, paths
/// that must be absolute), [`Settings::set`] says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// [`RelayType`].
    Type,
    /// A host name or an IPv4 address, resolved later.
    Host,
    /// An IPv4 address literal.
    V4,
    /// A unicast IPv6 address.
    V6,
    /// A Teredo /32 prefix.
    Prefix,
    /// An MTU, 1280 to 65535.
    Mtu,
    /// A number from 0 to 65535 (a relay's port from 1).
    Number,
    /// Seconds, [`REFRESH_RANGE`].
    Secs,
    /// A tunnel interface name.
    Interface,
    /// A syslog facility.
    Facility,
    /// A log level.
    Level,
    /// A path: absolute (the daemon runs in `/`), but for `--hook`.
    Path,
    /// A user name.
    User,
}

/// One setting: its names and the roles that take it.
#[derive(Debug)]
pub(crate) struct Setting {
    key: Key,
    /// The option on the command line; empty: none (file only, or
    /// positional).
    option: &'static str,
    /// The directive in a file.
    directive: &'static str,
    /// The roles that take it ([`SERVER`], [`CLIENT`], [`RELAY`] bits).
    roles: u8,
    kind: Kind,
}

/// Every setting. The order is the one [`File::check_role`] reports
/// misplaced directives in: the role-specific ones first.
#[rustfmt::skip] // one line per setting reads as the table it is
const SETTINGS: [Setting; KEYS] = {
    use Kind::*;
    const fn s(key: Key, option: &'static str, directive: &'static str, roles: u8, kind: Kind) -> Setting {
        Setting { key, option, directive, roles, kind }
    }
    [
        // On the command line a relay option only; a file's RelayType is
        // checked by its own rule (see `check_role`).
        s(Key::RelayType, "--type", "RelayType", RELAY, Type),
        s(Key::ServerAddress, "--server", "ServerAddress", CLIENT, Host),
        s(Key::ServerAddress2, "--server2", "ServerAddress2", CLIENT, V4),
        s(Key::FallbackServer, "--fallback", "FallbackServer", CLIENT, Host),
        s(Key::Hook, "--hook", "Hook", CLIENT, Path),
        s(Key::RefreshInterval, "", "RefreshInterval", CLIENT, Secs),
        s(Key::Prefix, "--prefix", "Prefix", SERVER | RELAY, Prefix),
        s(Key::InterfaceMTU, "--mtu", "InterfaceMTU", SERVER | RELAY, Mtu),
        s(Key::InterfaceName, "--interface", "InterfaceName", CLIENT | RELAY, Interface),
        s(Key::BindAddress, "--bind", "BindAddress", CLIENT | RELAY, V4),
        s(Key::BindPort, "--port", "BindPort", CLIENT | RELAY, Number),
        // On the command line: the server's positional argument.
        s(Key::ServerBindAddress, "", "ServerBindAddress", SERVER, V4),
        s(Key::ServerBindAddress2, "--secondary", "ServerBindAddress2", SERVER, V4),
        s(Key::MaxForwardPayload, "--max-forward-payload", "MaxForwardPayload", SERVER, Number),
        s(Key::RelayIcmpSource, "--icmp-source", "RelayIcmpSource", RELAY, V6),
        s(Key::SyslogFacility, "--syslog", "SyslogFacility", ALL, Facility),
        s(Key::LogLevel, "--log-level", "LogLevel", ALL, Level),
        s(Key::PidFile, "--pidfile", "PidFile", ALL, Path),
        s(Key::User, "--user", "User", ALL, User),
        s(Key::Chroot, "--chroot", "Chroot", ALL, Path),
        s(Key::StatusSocket, "--status-socket", "StatusSocket", ALL, Path),
    ]
};

/// The command-line option `name` if `role` takes it.
pub(crate) fn option(name: &str, role: Role) -> Option<&'static Setting> {
    SETTINGS
        .iter()
        .find(|s| !s.option.is_empty() && s.option == name && s.roles & role.bit() != 0)
}

/// A setting's value, once read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A host name, an interface name, a path or a user name.
    Text(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address.
    V6(Ipv6Addr),
    /// A Teredo /32 prefix, as the four bytes the core takes.
    Prefix([u8; 4]),
    /// A port, an MTU, a payload size or seconds.
    Number(u16),
    /// A log level.
    Level(LevelFilter),
    /// A syslog facility; `None`: `--syslog` without one (the file's, or
    /// the daemon facility).
    Facility(Option<Facility>),
    /// What `RelayType` or `--type` asks for.
    Type(RelayType),
}

/// Where a value comes from: it decides how errors name it and, for a few
/// settings, how the value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The command line of this role.
    CommandLine(Role),
    /// This line of a file.
    File(usize),
}

/// The settings given by one source, each `None` when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings([Option<At<Value>>; KEYS]);

impl Default for Settings {
    fn default() -> Settings {
        Settings([const { None }; KEYS])
    }
}

impl Settings {
    /// The value of `key` and where it came from, if given.
    pub fn get(&self, key: Key) -> Option<&At<Value>> {
        // In bounds: `KEYS` counts every key.
        self.0[key as usize].as_ref()
    }

    /// The value of `key`, if given.
    pub fn value(&self, key: Key) -> Option<&Value> {
        self.get(key).map(|a| &a.value)
    }

    /// Read `v`, the value of `setting` (named `name` as written), and
    /// store it unless the setting was given before.
    pub(crate) fn set(
        &mut self,
        setting: &Setting,
        name: &str,
        v: &str,
        from: Source,
    ) -> Result<(), UsageError> {
        let (file, q) = match from {
            Source::File(_) => (true, "\""),
            Source::CommandLine(_) => (false, "'"),
        };
        let value = match setting.kind {
            // Miredo's spellings in a file; a relay's two kinds on the
            // command line.
            Kind::Type if file => match RELAY_TYPES.iter().find(|(n, _)| n.eq_ignore_ascii_case(v))
            {
                Some(&(_, t)) => Value::Type(t),
                None => {
                    let msg = "\" for \"RelayType\" is not one of client, autoclient, \
                               relay, cone, restricted";
                    return Err(cli::usage(&["\"", v, msg]));
                }
            },
            Kind::Type => Value::Type(RelayType::Relay(cli::relay_kind(v)?)),
            Kind::Host => Value::Text(cli::host(name, v)?),
            Kind::V4 => Value::V4(cli::ipv4(name, v)?),
            Kind::V6 => Value::V6(cli::unicast6(name, v)?),
            Kind::Prefix => Value::Prefix(cli::teredo_prefix(name, v)?),
            Kind::Mtu if !file => Value::Number(cli::mtu(v)?),
            Kind::Mtu => Value::Number(number(q, name, v, file, 1280, 65535)?),
            // A relay's clients must find it again: no random port.
            Kind::Number => {
                let relay_port =
                    setting.key == Key::BindPort && from == Source::CommandLine(Role::Relay);
                Value::Number(number(q, name, v, file, relay_port.into(), 65535)?)
            }
            Kind::Secs => {
                let (min, max) = (*REFRESH_RANGE.start(), *REFRESH_RANGE.end());
                Value::Number(number(q, name, v, file, min, max)?)
            }
            Kind::Interface => Value::Text(cli::interface_name(v)?),
            Kind::Facility => Value::Facility(Some(cli::facility(v)?)),
            Kind::Level => Value::Level(cli::level(v)?),
            // The hook runs from the command line's directory as given;
            // other paths must hold after the daemon changed to `/`.
            Kind::Path if !file && setting.key == Key::Hook => {
                Value::Text(cli::nonempty(name, v, "a program path")?)
            }
            Kind::Path => {
                if !v.starts_with('/') {
                    return Err(cli::quoted(q, v, name, "is not an absolute path"));
                }
                Value::Text(v.to_owned())
            }
            // The command line takes the name as given; a file's user is
            // checked for characters that belong in no account name.
            Kind::User if !file => Value::Text(cli::nonempty(name, v, "a user name")?),
            Kind::User => {
                let ok = v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
                if !ok {
                    return Err(cli::usage(&["\"", v, "\" for \"User\" is not a user name"]));
                }
                Value::Text(v.to_owned())
            }
        };
        self.put(setting.key, value, name, from)
    }

    /// Store `value` of `key` (named `name` as written) unless it was given before (by
    /// the same source: the command line and a file have one `Settings`
    /// each).
    pub(crate) fn put(
        &mut self,
        key: Key,
        value: Value,
        name: &str,
        from: Source,
    ) -> Result<(), UsageError> {
        let slot = &mut self.0[key as usize];
        let line = match (slot.as_ref(), from) {
            (None, Source::File(line)) => line,
            (None, Source::CommandLine(_)) => 0,
            (Some(first), Source::File(_)) => return Err(duplicate(name, first.line)),
            (Some(_), Source::CommandLine(_)) => return Err(cli::twice(name)),
        };
        *slot = Some(At { value, line });
        Ok(())
    }
}

#[inline(never)]
fn duplicate(name: &str, first: usize) -> UsageError {
    cli::usage(&[&format!(
        "duplicate directive \"{name}\" (first on line {first})"
    )])
}

/// `digits` in `radix`, at most 65535 (`u16::from_str_radix`): one copy of
/// the digit loop for every number read, from a file or the command line.
#[inline(never)]
pub(crate) fn u16_radix(digits: &str, radix: u32) -> Option<u16> {
    u16::from_str_radix(digits, radix).ok()
}

/// An integer as C's `strtoul` base 0 reads it (Miredo's rule): `0x` hex,
/// a leading `0` octal, decimal otherwise; `None` above 65535, the largest
/// any setting takes.
fn integer(s: &str) -> Option<u16> {
    let (digits, radix) = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (hex, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (s.get(1..)?, 8)
    } else {
        (s, 10)
    };
    u16_radix(digits, radix)
}

/// A number from `min` to `max`: decimal on the command line, in C's
/// notation ([`integer`]) in a file, as Miredo reads it.
fn number(q: &str, name: &str, s: &str, file: bool, min: u16, max: u16) -> Result<u16, UsageError> {
    let n = if file { integer(s) } else { u16_radix(s, 10) };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => {
            let problem = format!("is not a number from {min} to {max}");
            Err(cli::quoted(q, s, name, &problem))
        }
    }
}

/// A configuration file: where it was read from and its directives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct File {
    /// Where it was read from (absolute, so a reload after `chdir /` works).
    pub path: PathBuf,
    /// The directives, with their lines.
    pub settings: Settings,
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
    let mut settings = Settings::default();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        directive(&mut settings, line, n).map_err(|msg| at(path, n, &msg.into_message()))?;
    }
    Ok(File {
        path: path.to_owned(),
        settings,
    })
}

/// Read line `n` into `settings`: apart from [`parse`] so that every error
/// of a line reaches [`at`] through one path.
fn directive(settings: &mut Settings, line: &str, n: usize) -> Result<(), UsageError> {
    if line.len() > LINE_MAX {
        // LINE_MAX written out; a test keeps them equal.
        return Err(cli::usage(&["line longer than 1024 bytes"]));
    }
    let mut tokens = line.split_whitespace();
    let Some(name) = tokens.next() else {
        return Ok(());
    };
    if name.starts_with('#') {
        return Ok(());
    }
    let Some(value) = tokens.next().filter(|v| !v.starts_with('#')) else {
        return Err(cli::usage(&["directive \"", name, "\" has no value"]));
    };
    if let Some(extra) = tokens.next().filter(|t| !t.starts_with('#')) {
        let msg = [
            "unexpected \"",
            extra,
            "\" after the value of \"",
            name,
            "\"",
        ];
        return Err(cli::usage(&msg));
    }
    // Names are case-insensitive, as Miredo's.
    match SETTINGS
        .iter()
        .find(|s| s.directive.eq_ignore_ascii_case(name))
    {
        Some(setting) => settings.set(setting, name, value, Source::File(n)),
        None => Err(cli::usage(&["unknown directive \"", name, "\""])),
    }
}

impl File {
    /// The role the file asks for when the command line names none: the
    /// server's if it has `ServerBindAddress`, otherwise `RelayType`'s
    /// (client by default, as Miredo).
    pub fn role(&self) -> Role {
        if self.settings.get(Key::ServerBindAddress).is_some() {
            return Role::Server;
        }
        match self.settings.value(Key::RelayType) {
            Some(Value::Type(RelayType::Relay(_))) => Role::Relay,
            _ => Role::Client,
        }
    }

    /// Refuse directives that `role` would ignore (Miredo's "superfluous
    /// directive", which its checker also treats as fatal), a `RelayType`
    /// that contradicts the role, and a relay's random port.
    pub fn check_role(&self, role: Role) -> Result<(), Error> {
        if let Some(At {
            value: Value::Type(t),
            line,
        }) = self.settings.get(Key::RelayType)
        {
            let want = match t {
                RelayType::Client => Role::Client,
                RelayType::Relay(_) => Role::Relay,
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
        for setting in &SETTINGS {
            // RelayType passed its own, stricter rule above.
            if setting.key == Key::RelayType || setting.roles & role.bit() != 0 {
                continue;
            }
            if let Some(given) = self.settings.get(setting.key) {
                let msg = [
                    "\"",
                    setting.directive,
                    "\" does not apply to the ",
                    role.name(),
                    " role",
                ];
                return Err(at(&self.path, given.line, &msg.concat()));
            }
        }
        // A relay's clients must find it again.
        if let (
            Role::Relay,
            Some(At {
                value: Value::Number(0),
                line,
            }),
        ) = (role, self.settings.get(Key::BindPort))
        {
            let msg = "a relay needs a fixed \"BindPort\" (1 to 65535)";
            return Err(at(&self.path, *line, msg));
        }
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn ok(text: &str) -> File {
        parse(Path::new("/etc/t.conf"), text).unwrap()
    }

    fn val(f: &File, key: Key) -> Option<Value> {
        f.settings.value(key).cloned()
    }

    fn text(s: &str) -> Option<Value> {
        Some(Value::Text(s.to_owned()))
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
            f.settings.get(Key::InterfaceName),
            Some(&At {
                value: Value::Text("teredo".to_owned()),
                line: 2
            })
        );
        assert_eq!(
            val(&f, Key::ServerAddress),
            text("teredo-debian.remlab.net")
        );
        assert_eq!(val(&f, Key::BindPort), None);
        assert!(f.check_role(Role::Client).is_ok());
        let f = ok(DEBIAN_SERVER_CONF);
        assert_eq!(f.role(), Role::Server);
        assert_eq!(
            val(&f, Key::ServerBindAddress),
            Some(Value::V4(Ipv4Addr::new(192, 0, 2, 221)))
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
RelayIcmpSource 2001:db8::5
");
        assert_eq!(
            f.settings.get(Key::RelayType),
            Some(&At {
                value: Value::Type(RelayType::Relay(RelayKind::Restricted)),
                line: 1
            })
        );
        let v4 = |a, b, c, d| Some(Value::V4(Ipv4Addr::new(a, b, c, d)));
        let want = [
            (Key::ServerAddress, text("teredo.example.net")),
            (Key::ServerAddress2, v4(198, 51, 100, 2)),
            (Key::FallbackServer, text("203.0.113.1")),
            (Key::Prefix, Some(Value::Prefix([0x3f, 0xfe, 0x83, 0x1f]))),
            (Key::InterfaceMTU, Some(Value::Number(1400))),
            (Key::InterfaceName, text("tun-teredo")),
            (Key::BindAddress, v4(192, 0, 2, 2)),
            (Key::BindPort, Some(Value::Number(0o3545))),
            (
                Key::SyslogFacility,
                Some(Value::Facility(Facility::from_name("local3"))),
            ),
            (Key::ServerBindAddress, v4(198, 51, 100, 1)),
            (Key::ServerBindAddress2, v4(198, 51, 100, 9)),
            (Key::MaxForwardPayload, Some(Value::Number(1200))),
            (Key::Hook, text("/etc/shipworm/hook")),
            (Key::LogLevel, Some(Value::Level(LevelFilter::Debug))),
            (Key::RefreshInterval, Some(Value::Number(20))),
            (Key::PidFile, text("/run/sw.pid")),
            (Key::User, text("shipworm")),
            (Key::Chroot, text("/var/empty")),
            (Key::StatusSocket, text("/run/shipworm.sock")),
            (
                Key::RelayIcmpSource,
                Some(Value::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5))),
            ),
        ];
        for (key, want) in want {
            assert_eq!(val(&f, key), want, "{key:?}");
        }
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
            assert_eq!(val(&f, Key::RelayType), Some(Value::Type(want)));
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
        assert!(err(&long).contains(&format!("line longer than {LINE_MAX} bytes")));
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
    fn table_is_complete() {
        // One entry per key, each named in the file as the key is in Rust.
        for (i, setting) in SETTINGS.iter().enumerate() {
            assert_eq!(format!("{:?}", setting.key), setting.directive);
            assert!(SETTINGS[..i].iter().all(|s| s.key != setting.key));
            assert!(setting.option.is_empty() || setting.option.starts_with("--"));
        }
        assert_eq!(
            option("--port", Role::Relay).map(|s| s.key),
            Some(Key::BindPort)
        );
        assert!(option("--port", Role::Server).is_none());
        assert!(option("", Role::Server).is_none());
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
        assert_eq!(integer("0xffff"), Some(65535));
        assert_eq!(integer("0x10000"), None);
        assert_eq!(integer("0200000"), None);
        assert_eq!(integer("99999999999999999999999"), None);
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
