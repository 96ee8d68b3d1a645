//! Bubbles (`wire::bubble`): `is_bubble` never panics, agrees with the header
//! fields, and anything `emit` writes is a bubble.
#![no_main]

use core::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use shipworm_core::wire::bubble;

fuzz_target!(|data: &[u8]| {
    let is = bubble::is_bubble(data);
    if is {
        // Version 6, Next Header 59 (no next header), Payload Length 0.
        assert_eq!(data[0] >> 4, 6);
        assert_eq!(data[6], 59);
        assert_eq!(&data[4..6], &[0, 0]);
    }
    // Addresses and hop limit from the input, if long enough.
    if let (Some(src), Some(dst), Some(&hop)) = (
        data.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()),
        data.get(16..32).and_then(|b| <[u8; 16]>::try_from(b).ok()),
        data.get(32),
    ) {
        let mut buf = [0xa5u8; bubble::BUBBLE_LEN];
        let len = bubble::emit(Ipv6Addr::from(src), Ipv6Addr::from(dst), hop, &mut buf)
            .expect("40 bytes hold a bubble");
        assert_eq!(len, bubble::BUBBLE_LEN);
        assert!(bubble::is_bubble(&buf));
        assert_eq!(&buf[8..24], &src);
        assert_eq!(&buf[24..40], &dst);
        assert_eq!(buf[7], hop);
        assert_eq!(
            bubble::emit(
                Ipv6Addr::from(src),
                Ipv6Addr::from(dst),
                hop,
                &mut buf[..39]
            ),
            Err(shipworm_core::wire::Error::BufferTooSmall)
        );
    }
});
