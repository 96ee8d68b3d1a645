//! A small IPv4 name resolver for the server names, instead of
//! `getaddrinfo`.
//!
//! `ToSocketAddrs` would link the C library's whole resolver (about 25 KB on
//! MIPS) for what the client needs: the IPv4 addresses of one host name.
//! [`lookup_ipv4`] does what musl does for A records:
//! 1. a dotted-quad literal is its own address;
//! 2. `/etc/hosts`, which has the final word on a name it lists;
//! 3. DNS over UDP to the `nameserver`s of `/etc/resolv.conf` (at most 3,
//!    127.0.0.1 if none), all queried at once and the first real answer
//!    taken; the query goes out again every `timeout / attempts` until
//!    `timeout` has passed. A name with fewer than `ndots` dots is tried
//!    with each `search` domain first; only NXDOMAIN moves on to the next.
//!
//! Differences from musl, all on paths a Teredo server name does not take:
//! no TCP retry for a truncated (TC) answer (the A records that came whole
//! are used); a server that answers SERVFAIL or REFUSED is not asked again
//! within the query, and one that is unreachable (ICMP port unreachable on
//! its connected socket) is dropped at once, so a missing local resolver
//! fails in milliseconds instead of after the timeout; scoped IPv6 server
//! addresses (`fe80::1%eth0`) are skipped; hosts names match without regard
//! to case.
//!
//! One connected UDP socket per server, so only that server's address and
//! port can reach it, and its source port is a fresh random one from the
//! kernel. Query IDs are random
//! too (`getrandom(2)`), which with the port makes a forged answer a guess
//! of about 32 bits.

mod conf;
mod message;

use core::net::Ipv4Addr;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use shipworm_core::time::Duration;

use self::conf::{hosts_ipv4, ResolvConf, MAX_SERVERS};
use self::message::{parse_reply, query, Name, Reply, RCODE_SERVFAIL, UDP_MAX};
use crate::sys::clock;
use crate::sys::poll::{poll, PollFd};
use crate::sys::random;
use crate::sys::udp::ConnectedUdp;

/// The hosts file (hosts(5)).
const HOSTS: &str = "/etc/hosts";
/// The resolver configuration (resolv.conf(5)).
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The IPv4 addresses of `host`, in the order the source gave them; never
/// empty on success.
///
/// Blocks for at most the configured timeout (5 s by default) per name
/// tried. Errors: `NotFound` when the name does not exist or has no IPv4
/// address, `TimedOut` when no server answered, `InvalidInput` for a name
/// DNS cannot carry, other kinds when every server failed.
pub fn lookup_ipv4(host: &str) -> io::Result<Vec<Ipv4Addr>> {
    // A missing or unreadable file means all defaults (as musl does).
    let conf = fs::read(RESOLV_CONF).unwrap_or_default();
    lookup(host, Path::new(HOSTS), &ResolvConf::parse(&conf))
}

/// [`lookup_ipv4`] with the hosts file and resolver configuration given.
fn lookup(host: &str, hosts: &Path, conf: &ResolvConf) -> io::Result<Vec<Ipv4Addr>> {
    if let Ok(addr) = host.parse() {
        return Ok(vec![addr]);
    }
    // A final dot marks the name as complete: no search domains.
    let (name, absolute) = match host.as_bytes().split_last() {
        Some((b'.', name)) => (name, true),
        _ => (host.as_bytes(), false),
    };
    // A hosts file that cannot be read lists nothing; DNS may still answer.
    // One that lists the name is as final as a DNS answer.
    if let Some(addrs) = hosts_ipv4(&fs::read(hosts).unwrap_or_default(), name) {
        return answer(Reply::Addresses(addrs));
    }
    if !absolute && name.iter().filter(|&&b| b == b'.').count() < conf.ndots {
        for domain in conf.search() {
            // A name too long with this domain simply skips it (musl).
            let Ok(full) = Name::qualified(name, domain) else {
                continue;
            };
            match resolve(&full, conf)? {
                Reply::NoSuchName => continue,
                reply => return answer(reply),
            }
        }
    }
    let name =
        Name::new(name).map_err(|_| err(io::ErrorKind::InvalidInput, "invalid host name"))?;
    answer(resolve(&name, conf)?)
}

/// The addresses of a definitive reply (never none), or why there are none.
fn answer(reply: Reply) -> io::Result<Vec<Ipv4Addr>> {
    match reply {
        Reply::Addresses(addrs) if addrs.is_empty() => {
            Err(err(io::ErrorKind::NotFound, "no IPv4 address"))
        }
        Reply::Addresses(addrs) => Ok(addrs),
        Reply::NoSuchName => Err(err(io::ErrorKind::NotFound, "no such host name")),
        Reply::Failed(rcode) => Err(failed(rcode)),
    }
}

/// Ask every server of `conf` for the A records of `name` and return the
/// first definitive reply: addresses (maybe none) or NXDOMAIN.
///
/// The error, when no server gave one, is the last server's failure, or
/// `TimedOut` if some server never answered.
fn resolve(name: &Name, conf: &ResolvConf) -> io::Result<Reply> {
    let mut id = [0u8; 2];
    random::fill(&mut id)?;
    let id = u16::from_be_bytes(id);
    let msg = query(id, name);
    let mut last_error = err(io::ErrorKind::TimedOut, "no answer from DNS server");
    // One socket per server while it may still answer. resolv.conf names
    // at most MAX_SERVERS, so the sockets and the poll set are fixed arrays.
    let mut socks: [Option<ConnectedUdp>; MAX_SERVERS] = Default::default();
    for (sock, &addr) in socks.iter_mut().zip(&conf.servers) {
        *sock = ConnectedUdp::open(addr).map_err(|e| last_error = e).ok();
    }
    let start = clock::now();
    let deadline = start + conf.timeout;
    let interval = Duration::from_millis(conf.timeout.total_millis() / conf.attempts.max(1));
    let mut resend = start;
    let mut buf = [0u8; UDP_MAX];
    loop {
        let now = clock::now();
        if now >= deadline {
            return Err(last_error);
        }
        if now >= resend {
            for slot in &mut socks {
                if let Some(Err(e)) = slot.as_ref().map(|sock| sock.send(&msg)) {
                    *slot = None;
                    last_error = e;
                }
            }
            resend = now + interval;
        }
        if socks.iter().all(Option::is_none) {
            return Err(last_error);
        }
        let mut fds = socks
            .each_ref()
            .map(|s| PollFd::readable_opt(s.as_ref().map(AsFd::as_fd)));
        poll(&mut fds, Some(resend.min(deadline) - now))?;
        let ready = fds.map(|fd| fd.is_ready());
        for (slot, _) in socks.iter_mut().zip(ready).filter(|&(_, r)| r) {
            let Some(sock) = slot else { continue };
            // The connected socket lets only the server's datagrams through.
            let failure = match sock.recv(&mut buf) {
                Ok(len) => match parse_reply(buf.get(..len).unwrap_or_default(), id, name) {
                    Ok(Reply::Failed(rcode)) => failed(rcode),
                    Ok(reply) => return Ok(reply),
                    // Not our answer, or broken: maybe forged, keep waiting
                    // for the real one.
                    Err(_) => continue,
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                // Unreachable (ICMP) or worse.
                Err(e) => e,
            };
            // This server is out.
            *slot = None;
            last_error = failure;
        }
    }
}

/// The error for a server that gave up with `rcode`.
fn failed(rcode: u16) -> io::Error {
    if rcode == RCODE_SERVFAIL {
        err(io::ErrorKind::Other, "DNS server failure")
    } else {
        err(io::ErrorKind::Other, "DNS server refused the query")
    }
}

/// An error of `kind` with a fixed message.
fn err(kind: io::ErrorKind, msg: &'static str) -> io::Error {
    io::Error::new(kind, msg)
}

#[cfg(test)]
mod test {
    use super::*;
    use core::net::SocketAddr;
    use std::net::UdpSocket;
    use std::thread;
    use std::time::Instant;

    /// The dotted name asked by `query` (uncompressed, as ours are).
    fn qname(query: &[u8]) -> String {
        let mut labels = Vec::new();
        let mut pos = 12;
        while let Some(&len) = query.get(pos).filter(|&&l| l != 0) {
            let label = &query[pos + 1..pos + 1 + usize::from(len)];
            labels.push(String::from_utf8(label.to_vec()).unwrap());
            pos += 1 + usize::from(len);
        }
        labels.join(".")
    }

    /// The reply to `query` with `rcode` and an A record per address.
    fn reply(query: &[u8], rcode: u8, addrs: &[[u8; 4]]) -> Vec<u8> {
        let mut msg = query.to_vec();
        msg[2] = 0x81;
        msg[3] = 0x80 | rcode;
        msg[7] = addrs.len() as u8;
        for addr in addrs {
            msg.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            msg.extend(addr);
        }
        msg
    }

    /// A socket on a free port of 127.0.0.1.
    fn local() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").unwrap()
    }

    /// A fake DNS server: for each of the next `count` queries, sends the
    /// datagrams `answer` makes of it from the server's socket. Returns the
    /// queries seen (it gives up after 5 s of silence).
    fn serve(
        count: usize,
        answer: impl Fn(&[u8], &UdpSocket, SocketAddr) -> Vec<Vec<u8>> + Send + 'static,
    ) -> (SocketAddr, thread::JoinHandle<Vec<Vec<u8>>>) {
        serve_on(local(), count, answer)
    }

    /// [`serve`] on `sock`.
    fn serve_on(
        sock: UdpSocket,
        count: usize,
        answer: impl Fn(&[u8], &UdpSocket, SocketAddr) -> Vec<Vec<u8>> + Send + 'static,
    ) -> (SocketAddr, thread::JoinHandle<Vec<Vec<u8>>>) {
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 512];
            while seen.len() < count {
                let Ok((len, from)) = sock.recv_from(&mut buf) else {
                    break;
                };
                let query = buf[..len].to_vec();
                for msg in answer(&query, &sock, from) {
                    sock.send_to(&msg, from).unwrap();
                }
                seen.push(query);
            }
            seen
        });
        (addr, handle)
    }

    fn conf(servers: &[SocketAddr]) -> ResolvConf<'static> {
        let mut conf = ResolvConf::parse(b"options timeout:1");
        conf.servers = servers.to_vec();
        conf
    }

    const NO_HOSTS: &str = "/nonexistent/hosts";

    fn lookup_in(host: &str, conf: &ResolvConf) -> io::Result<Vec<Ipv4Addr>> {
        lookup(host, Path::new(NO_HOSTS), conf)
    }

    /// An address on 127.0.0.1 where nothing listens.
    fn closed_port() -> SocketAddr {
        local().local_addr().unwrap()
    }

    #[test]
    fn literal_needs_no_lookup() {
        let conf = conf(&[closed_port()]);
        assert_eq!(
            lookup_in("192.0.2.7", &conf).unwrap(),
            [Ipv4Addr::new(192, 0, 2, 7)]
        );
    }

    #[test]
    fn answers_from_server() {
        let (addr, server) = serve(1, |q, _, _| {
            // Sent as given; the server answers with the same case.
            assert_eq!(qname(q), "Teredo.Example");
            vec![reply(q, 0, &[[192, 0, 2, 1], [192, 0, 2, 2]])]
        });
        let addrs = lookup_in("Teredo.Example.", &conf(&[addr])).unwrap();
        assert_eq!(
            addrs,
            [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)]
        );
        server.join().unwrap();
    }

    #[test]
    fn definitive_negative_answers() {
        let (addr, server) = serve(2, |q, _, _| {
            let rcode = if qname(q) == "gone.example" { 3 } else { 0 };
            vec![reply(q, rcode, &[])]
        });
        let conf = conf(&[addr]);
        let e = lookup_in("gone.example", &conf).unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (io::ErrorKind::NotFound, "no such host name")
        );
        let e = lookup_in("v6only.example", &conf).unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (io::ErrorKind::NotFound, "no IPv4 address")
        );
        server.join().unwrap();
    }

    #[test]
    fn forged_and_stray_replies_ignored() {
        let (addr, server) = serve(1, |q, _, client| {
            // From another port: the connected socket never sees it.
            local()
                .send_to(&reply(q, 0, &[[203, 0, 113, 66]]), client)
                .unwrap();
            let mut wrong_id = reply(q, 0, &[[203, 0, 113, 67]]);
            wrong_id[0] ^= 1;
            let mut wrong_name = reply(q, 0, &[[203, 0, 113, 68]]);
            wrong_name[13] ^= 0x40;
            wrong_name[14] = b'x';
            let mut broken = reply(q, 0, &[[203, 0, 113, 69]]);
            broken.pop();
            vec![wrong_id, wrong_name, broken, reply(q, 0, &[[192, 0, 2, 9]])]
        });
        let addrs = lookup_in("teredo.example", &conf(&[addr])).unwrap();
        assert_eq!(addrs, [Ipv4Addr::new(192, 0, 2, 9)]);
        server.join().unwrap();
    }

    #[test]
    fn silent_server_times_out_after_retries() {
        // The silent server's socket stays open for the whole lookup, so no
        // ICMP port unreachable can end it early.
        let silent = local();
        let mut conf = conf(&[silent.local_addr().unwrap()]);
        conf.timeout = Duration::from_millis(600);
        conf.attempts = 3;
        let start = Instant::now();
        let e = lookup_in("teredo.example", &conf).unwrap_err();
        let took = start.elapsed();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        // The resolver's clock counts whole milliseconds; the upper bound
        // only shows the wait is bounded (a loaded machine wakes late).
        assert!(took >= std::time::Duration::from_millis(590), "{took:?}");
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
        // Sent every 200 ms, with one ID: three times, fewer only when the
        // machine was too busy to wake on time.
        silent.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        let mut queries = Vec::new();
        while let Ok(len) = silent.recv(&mut buf) {
            queries.push(buf[..len].to_vec());
        }
        assert!((1..=3).contains(&queries.len()), "{}", queries.len());
        assert!(queries.iter().all(|q| q == &queries[0]));
    }

    #[test]
    fn ids_are_random() {
        let (addr, server) = serve(4, |q, _, _| vec![reply(q, 0, &[[192, 0, 2, 1]])]);
        let conf = conf(&[addr]);
        for _ in 0..4 {
            lookup_in("teredo.example", &conf).unwrap();
        }
        let ids: Vec<_> = server
            .join()
            .unwrap()
            .iter()
            .map(|q| [q[0], q[1]])
            .collect();
        // Four equal IDs by chance: 2^-48.
        assert!(ids.iter().any(|id| id != &ids[0]), "{ids:?}");
    }

    #[test]
    fn unreachable_or_failing_servers_fail_fast() {
        let start = Instant::now();
        let e = lookup_in("teredo.example", &conf(&[closed_port()])).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let (addr, server) = serve(2, |q, _, _| {
            let rcode = if qname(q) == "fail.example" { 2 } else { 5 };
            vec![reply(q, rcode, &[])]
        });
        let e = lookup_in("fail.example", &conf(&[addr])).unwrap_err();
        assert_eq!(e.to_string(), "DNS server failure");
        let e = lookup_in("refused.example", &conf(&[addr])).unwrap_err();
        assert_eq!(e.to_string(), "DNS server refused the query");
        assert!(start.elapsed() < std::time::Duration::from_millis(900));
        server.join().unwrap();
    }

    #[test]
    fn any_server_may_answer() {
        let silent = local();
        let (addr, server) = serve(1, |q, _, _| vec![reply(q, 0, &[[192, 0, 2, 3]])]);
        let conf = conf(&[silent.local_addr().unwrap(), closed_port(), addr]);
        let addrs = lookup_in("teredo.example", &conf).unwrap();
        assert_eq!(addrs, [Ipv4Addr::new(192, 0, 2, 3)]);
        server.join().unwrap();
    }

    /// Skipped where the host has no IPv6 loopback.
    #[test]
    fn ipv6_server() {
        let Ok(sock) = UdpSocket::bind("[::1]:0") else {
            return;
        };
        let (addr, server) = serve_on(sock, 1, |q, _, _| vec![reply(q, 0, &[[192, 0, 2, 6]])]);
        let addrs = lookup_in("teredo.example", &conf(&[addr])).unwrap();
        assert_eq!(addrs, [Ipv4Addr::new(192, 0, 2, 6)]);
        server.join().unwrap();
    }

    #[test]
    fn search_domains_below_ndots() {
        let (addr, server) = serve(4, |q, _, _| match qname(q).as_str() {
            "box.example" => vec![reply(q, 0, &[[192, 0, 2, 4]])],
            _ => vec![reply(q, 3, &[])],
        });
        let mut conf = conf(&[addr]);
        conf.search = b"search lan example never";
        let addrs = lookup_in("box", &conf).unwrap();
        assert_eq!(addrs, [Ipv4Addr::new(192, 0, 2, 4)]);
        // A final dot, or as many dots as ndots: the name alone.
        assert!(lookup_in("box.", &conf).is_err());
        assert!(lookup_in("a.b", &conf).is_err());
        let asked: Vec<_> = server.join().unwrap().iter().map(|q| qname(q)).collect();
        assert_eq!(asked, ["box.lan", "box.example", "box", "a.b"]);
    }

    #[test]
    fn hosts_file_first() {
        let path = std::env::temp_dir().join(format!("shipworm-dns-hosts-{}", std::process::id()));
        fs::write(&path, "192.0.2.1 teredo\n2001:db8::1 six\n").unwrap();
        // No server listens: only the hosts file can answer.
        let conf = conf(&[closed_port()]);
        let found = lookup("teredo.", &path, &conf);
        let six = lookup("six", &path, &conf);
        fs::remove_file(&path).unwrap();
        assert_eq!(found.unwrap(), [Ipv4Addr::new(192, 0, 2, 1)]);
        assert_eq!(six.unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn bad_names_refused() {
        let conf = conf(&[closed_port()]);
        for name in ["", ".", "a..b", &"x".repeat(64)] {
            let e = lookup_in(name, &conf).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }

    #[test]
    fn system_localhost() {
        assert!(lookup_ipv4("localhost")
            .unwrap()
            .contains(&Ipv4Addr::LOCALHOST));
    }
}
