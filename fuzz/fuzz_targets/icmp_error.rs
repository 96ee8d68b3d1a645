//! ICMPv6 Destination Unreachable (`wire::icmp_error`): parse and `may_answer`
//! never panic; a parsed error re-emits (quote capped at `MAX_QUOTE_LEN`) to
//! bytes that parse back; `emit_unreachable` about the input honours
//! `may_answer` and yields a parseable error.
#![no_main]

use core::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use shipworm_core::wire::icmp_error::{self, DstUnreachable, MAX_QUOTE_LEN};
use shipworm_core::wire::Error;
use smoltcp::wire::Icmpv6DstUnreachable;

const REPORTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

fuzz_target!(|data: &[u8]| {
    let mut buf = [0xa5u8; 1280];
    if let Ok(err) = DstUnreachable::parse(data) {
        let len = err.emit(&mut buf).expect("1280 bytes hold any error");
        assert!(len <= 1280);
        let back = DstUnreachable::parse(&buf[..len]).expect("an emitted error parses");
        let quote = &err.quoted[..err.quoted.len().min(MAX_QUOTE_LEN)];
        assert_eq!(
            back,
            DstUnreachable {
                quoted: quote,
                ..err
            }
        );
    }

    let may = icmp_error::may_answer(data);
    // Code 0..=6, chosen by the input's last byte.
    let code = Icmpv6DstUnreachable::from(data.last().map_or(0, |b| b % 7));
    match icmp_error::emit_unreachable(REPORTER, code, data, &mut buf) {
        Ok(len) => {
            assert!(may, "emitted an error that may_answer forbids");
            let err = DstUnreachable::parse(&buf[..len]).expect("an emitted error parses");
            assert_eq!(err.src, REPORTER);
            assert_eq!(err.hop_limit, icmp_error::ERROR_HOP_LIMIT);
        }
        Err(Error::Unrecognized) => assert!(!may),
        Err(e) => panic!("emit_unreachable into 1280 bytes failed: {e:?}"),
    }
});
