//! Teredo UDP payloads (`wire::encap`): `Repr::parse` and `Packet::new_checked`
//! agree, and re-emitting a parsed payload reproduces the input byte for byte
//! (the layout covers every byte: headers, IPv6 packet, trailers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipworm_core::wire::encap::{Packet, Repr, Trailers};

fuzz_target!(|data: &[u8]| {
    let repr = Repr::parse(data);
    let packet = Packet::new_checked(data);
    assert_eq!(
        repr.is_ok(),
        packet.is_ok(),
        "Repr::parse and Packet::new_checked disagree"
    );
    let (Ok(repr), Ok(packet)) = (repr, packet) else {
        return;
    };
    assert_eq!(packet.auth(), repr.auth);
    assert_eq!(packet.origin(), repr.origin);
    assert_eq!(packet.ipv6_packet(), repr.ipv6);
    assert_eq!(packet.trailers(), repr.trailers);
    assert_eq!(packet.ipv6_offset(), repr.header_len());
    assert_eq!(repr.buffer_len(), data.len());

    let mut buf = [0xa5u8; 2048 + 64];
    let len = repr.emit(&mut buf).expect("a parsed payload re-emits");
    assert_eq!(&buf[..len], data, "emit(parse(x)) != x");
    assert_eq!(Repr::parse(&buf[..len]), Ok(repr));

    // Walking the trailers terminates and never panics.
    let walked = Trailers::new(repr.trailers).count();
    assert!(walked <= repr.trailers.len() / 2);
    let _ = Trailers::new(repr.trailers).is_malformed();
});
