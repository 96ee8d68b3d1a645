//! The resolver's configuration files, read the way musl reads them:
//! `/etc/resolv.conf` (resolv.conf(5)) and `/etc/hosts` (hosts(5)).

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use shipworm_core::time::Duration;

/// The DNS port (RFC 1035 §4.2).
const DNS_PORT: u16 = 53;
/// Name servers used at most, like musl and glibc (`MAXNS`).
pub const MAX_SERVERS: usize = 3;
/// Search domains used at most (glibc's `MAXDNSRCH`): each costs up to a
/// whole timeout, so a long list must not hold the caller for minutes.
const MAX_SEARCH: usize = 6;

/// What `/etc/resolv.conf` (the text it borrows) asks of the resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf<'a> {
    /// The name servers (at most [`MAX_SERVERS`]), queried in parallel.
    pub servers: Vec<SocketAddr>,
    /// The last `search` (or `domain`) line, whose words after the first
    /// are the domains [`ResolvConf::search`] gives; empty if none.
    pub search: &'a [u8],
    /// `options ndots:N` (default 1, at most 15).
    pub ndots: usize,
    /// `options timeout:N` in seconds: how long one query waits in all
    /// (default 5, 1 to 60).
    pub timeout: Duration,
    /// `options attempts:N`: how many times the query is sent to each
    /// server within the timeout (default 2, 1 to 10).
    pub attempts: u64,
}

impl<'a> ResolvConf<'a> {
    /// Parse the text of a resolv.conf (empty for a missing file: all
    /// defaults, with the name server on 127.0.0.1, as musl does). Unknown
    /// lines and options, and server addresses that do not parse (e.g. IPv6
    /// with a `%scope`), are skipped.
    pub fn parse(text: &'a [u8]) -> ResolvConf<'a> {
        let mut conf = ResolvConf {
            servers: Vec::new(),
            search: &[],
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        };
        for line in text.split(|&b| b == b'\n') {
            let mut words = words(line);
            match words.next() {
                Some(b"nameserver") => {
                    let addr = words.next().and_then(ip);
                    if let Some(ip) = addr.filter(|_| conf.servers.len() < MAX_SERVERS) {
                        conf.servers.push(SocketAddr::new(ip, DNS_PORT));
                    }
                }
                // The last `search` or `domain` line wins.
                Some(b"search" | b"domain") => conf.search = line,
                Some(b"options") => {
                    for option in words {
                        if let Some(n) = option.strip_prefix(b"ndots:").and_then(number) {
                            conf.ndots = n.min(15) as usize;
                        } else if let Some(n) = option.strip_prefix(b"timeout:").and_then(number) {
                            conf.timeout = Duration::from_secs(n.clamp(1, 60));
                        } else if let Some(n) = option.strip_prefix(b"attempts:").and_then(number) {
                            conf.attempts = n.clamp(1, 10);
                        }
                    }
                }
                _ => {}
            }
        }
        if conf.servers.is_empty() {
            conf.servers
                .push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DNS_PORT));
        }
        conf
    }

    /// The search domains, tried first for names with fewer than `ndots`
    /// dots (at most [`MAX_SEARCH`]).
    pub fn search(&self) -> impl Iterator<Item = &'a [u8]> {
        words(self.search).skip(1).take(MAX_SEARCH)
    }
}

/// The IPv4 addresses `/etc/hosts` (the text `hosts`) gives `name`, in
/// file order; `None` when no line names it.
///
/// A name listed with IPv6 addresses only gives `Some` of nothing: like
/// musl, the hosts file then has the final word and DNS is not asked.
/// Names match without regard to ASCII case, as in DNS.
pub fn hosts_ipv4(hosts: &[u8], name: &[u8]) -> Option<Vec<Ipv4Addr>> {
    let mut found = None;
    for line in hosts.split(|&b| b == b'\n') {
        let line = line.split(|&b| b == b'#').next().unwrap_or_default();
        let mut words = words(line);
        let Some(addr) = words.next() else { continue };
        if words.any(|w| w.eq_ignore_ascii_case(name)) {
            let addrs: &mut Vec<_> = found.get_or_insert_with(Vec::new);
            if let Some(IpAddr::V4(addr)) = ip(addr) {
                addrs.push(addr);
            }
        }
    }
    found
}

/// The whitespace-separated words of `line`.
fn words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
}

/// `word` as an IP address, if it is UTF-8 and parses (one parser for both
/// files).
fn ip(word: &[u8]) -> Option<IpAddr> {
    core::str::from_utf8(word).ok()?.parse().ok()
}

/// The decimal number `digits`, saturating (musl's `strtoul` then caps it
/// like the callers here do); `None` if it is not one.
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.saturating_mul(10).saturating_add(u64::from(d - b'0')))
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn defaults() {
        let conf = ResolvConf::parse(b"");
        assert_eq!(
            conf,
            ResolvConf {
                servers: vec!["127.0.0.1:53".parse().unwrap()],
                search: b"",
                ndots: 1,
                timeout: Duration::from_secs(5),
                attempts: 2,
            }
        );
        assert_eq!(conf.search().count(), 0);
    }

    #[test]
    fn deconstruct_resolv_conf() {
        let text = b"# comment\n\
            nameserver 192.0.2.53\n\
            nameserver\t2001:db8::53  \n\
            nameserver fe80::1%eth0\n\
            nameserver bogus\n\
            domain example.net\n\
            search lan  example.org\n\
            options rotate ndots:2 timeout:3 attempts:4\n\
            nameserver 198.51.100.53\n\
            nameserver 203.0.113.53\n";
        let conf = ResolvConf::parse(text);
        assert_eq!(
            conf,
            ResolvConf {
                servers: vec![
                    "192.0.2.53:53".parse().unwrap(),
                    "[2001:db8::53]:53".parse().unwrap(),
                    "198.51.100.53:53".parse().unwrap(),
                ],
                search: b"search lan  example.org",
                ndots: 2,
                timeout: Duration::from_secs(3),
                attempts: 4,
            }
        );
        let search: Vec<&[u8]> = conf.search().collect();
        assert_eq!(search, [&b"lan"[..], b"example.org"]);
    }

    #[test]
    fn options_capped() {
        let conf =
            ResolvConf::parse(b"options ndots:99 timeout:0 attempts:99999999999999999999999\n");
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts),
            (15, Duration::from_secs(1), 10)
        );
        let conf = ResolvConf::parse(b"options timeout:600 attempts:0 ndots:x ndots:\n");
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts),
            (1, Duration::from_secs(60), 1)
        );
        let conf = ResolvConf::parse(b"search a b c d e f g h\n");
        assert_eq!(conf.search().count(), MAX_SEARCH);
    }

    #[test]
    fn hosts_lookup() {
        let hosts = b"127.0.0.1 localhost\n\
            ::1 localhost ip6-localhost\n\
            # 192.0.2.9 teredo\n\
            192.0.2.1\tTeredo teredo.example  # the server\n\
            192.0.2.2 other teredo\n\
            not-an-address teredo\n\
            2001:db8::1 six\n";
        let v4 = |a, b, c, d| Ipv4Addr::new(a, b, c, d);
        assert_eq!(
            hosts_ipv4(hosts, b"localhost"),
            Some(vec![v4(127, 0, 0, 1)])
        );
        assert_eq!(
            hosts_ipv4(hosts, b"teredo"),
            Some(vec![v4(192, 0, 2, 1), v4(192, 0, 2, 2)])
        );
        assert_eq!(
            hosts_ipv4(hosts, b"TEREDO.example"),
            Some(vec![v4(192, 0, 2, 1)])
        );
        assert_eq!(hosts_ipv4(hosts, b"six"), Some(vec![]));
        assert_eq!(hosts_ipv4(hosts, b"ip6"), None);
        assert_eq!(hosts_ipv4(hosts, b"the"), None);
        assert_eq!(hosts_ipv4(b"", b"localhost"), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"0"), Some(0));
        assert_eq!(number(b"42"), Some(42));
        assert_eq!(number(b"99999999999999999999999"), Some(u64::MAX));
        assert_eq!(number(b""), None);
        assert_eq!(number(b"4x"), None);
        assert_eq!(number(b"-1"), None);
    }
}
