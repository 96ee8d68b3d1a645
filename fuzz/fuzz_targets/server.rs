//! The server role: `Server::handle_udp` on arbitrary datagrams from arbitrary
//! endpoints never panics, and whatever it sends is well formed.
//!
//! Input layout: byte 0 bit 0 = which local address; bytes 1..7 = remote
//! IPv4 address and port; bytes 7..9 = milliseconds since the previous
//! datagram; then a datagram length byte and the datagram, repeated, so one
//! input exercises the rate limiter across several datagrams.
#![no_main]

use core::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use shipworm_core::server::{Action, Config, Local, Server};
use shipworm_core::time::{Duration, Instant};
use shipworm_core::wire::encap::Repr;

fuzz_target!(|data: &[u8]| {
    let config = Config::new(Ipv4Addr::new(192, 0, 2, 1));
    let mut now = Instant::from_millis(1_000_000);
    let mut server = Server::new(config, now);
    let mut rest = data;
    let mut handled = 0u64;
    while let Some((head, tail)) = rest.split_first_chunk::<10>() {
        let local = if head[0] & 1 == 0 {
            Local::Primary
        } else {
            Local::Secondary
        };
        let remote = SocketAddrV4::new(
            Ipv4Addr::new(head[1], head[2], head[3], head[4]),
            u16::from_be_bytes([head[5], head[6]]),
        );
        now += Duration::from_millis(u64::from(u16::from_be_bytes([head[7], head[8]])));
        let len = usize::from(head[9]).min(tail.len());
        // The last datagram takes everything left, so long packets occur.
        let len = if tail.len() - len < 10 {
            tail.len()
        } else {
            len
        };
        let (datagram, next) = tail.split_at(len);
        rest = next;

        let mut out = [0xa5u8; 1280];
        match server.handle_udp(now, local, remote, datagram, &mut out) {
            Action::None => {}
            Action::SendUdp { to, data, .. } => {
                assert!(
                    Repr::parse(data).is_ok(),
                    "server sent a malformed Teredo payload to {to}"
                );
            }
            Action::SendIpv6(packet) => {
                assert!(
                    packet.len() >= 40 && packet[0] >> 4 == 6,
                    "server sent a non-IPv6 packet"
                );
                let payload_len = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
                assert_eq!(packet.len(), 40 + payload_len);
            }
        }
        handled += 1;
        assert_eq!(server.stats().received, handled);
    }
});
