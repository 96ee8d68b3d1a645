//! Router Solicitations (`wire::ndisc`): parse never panics, and a parsed RS
//! re-emits to bytes that parse to the same RS.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipworm_core::wire::ndisc::RouterSolicitation;

fuzz_target!(|data: &[u8]| {
    let Ok(rs) = RouterSolicitation::parse(data) else {
        return;
    };
    let mut buf = [0xa5u8; RouterSolicitation::BUFFER_LEN];
    let len = rs.emit(&mut buf).expect("a parsed RS re-emits");
    assert_eq!(len, RouterSolicitation::BUFFER_LEN);
    assert_eq!(RouterSolicitation::parse(&buf[..len]), Ok(rs));
});
