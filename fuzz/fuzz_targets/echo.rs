//! ICMPv6 echo (`wire::echo`): parse never panics, a parsed echo re-emits to
//! bytes that parse to the same echo, and so does the reply to a request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shipworm_core::wire::echo::{EchoKind, EchoRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(echo) = EchoRepr::parse(data) else {
        return;
    };
    // The input is at most 2048 bytes, so the data fits.
    let mut buf = [0xa5u8; 2048 + 64];
    let len = echo.emit(&mut buf).expect("a parsed echo re-emits");
    assert_eq!(len, echo.buffer_len());
    assert_eq!(EchoRepr::parse(&buf[..len]), Ok(echo));

    if let Some(reply) = echo.reply_to(64) {
        assert_eq!(echo.kind, EchoKind::Request);
        assert_eq!(reply.kind, EchoKind::Reply);
        assert_eq!((reply.src, reply.dst), (echo.dst, echo.src));
        assert_eq!(
            (reply.ident, reply.seq, reply.data),
            (echo.ident, echo.seq, echo.data)
        );
        let len = reply.emit(&mut buf).expect("a reply re-emits");
        assert_eq!(EchoRepr::parse(&buf[..len]), Ok(reply));
    }
});
