//! Router Advertisements (`wire::ndisc`): parse never panics, and a parsed RA
//! re-emits to bytes that parse to the same RA.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipworm_core::wire::ndisc::RouterAdvertisement;

fuzz_target!(|data: &[u8]| {
    let Ok(ra) = RouterAdvertisement::parse(data) else {
        return;
    };
    let _ = ra.prefix64();
    let mut buf = [0xa5u8; 256];
    let len = ra.emit(&mut buf).expect("a parsed RA re-emits");
    assert_eq!(len, ra.buffer_len());
    assert_eq!(RouterAdvertisement::parse(&buf[..len]), Ok(ra));
});
