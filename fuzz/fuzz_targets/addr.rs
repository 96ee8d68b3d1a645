//! Teredo addresses (`addr`): decoding any address under its own prefix
//! succeeds and round-trips; under another prefix it is refused.
#![no_main]

use core::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use shipworm_core::addr::{self, TeredoAddr};

fuzz_target!(|data: &[u8]| {
    let Some(bytes) = data.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()) else {
        return;
    };
    let ip = Ipv6Addr::from(bytes);
    let own: [u8; 4] = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let t = TeredoAddr::from_ipv6(ip, own).expect("an address is under its own prefix");
    assert_eq!(t.to_ipv6(), ip);
    assert_eq!(t.prefix(), own);
    assert_eq!(
        TeredoAddr::new(t.prefix(), t.server(), t.flags(), t.mapped()),
        t
    );
    let _ = (
        addr::flags_are_valid(t.flags()),
        addr::is_global_unicast(*t.mapped().ip()),
    );

    // A different prefix (from the input, or the default) must not match.
    let other: [u8; 4] = data
        .get(16..20)
        .and_then(|b| b.try_into().ok())
        .unwrap_or(addr::DEFAULT_PREFIX);
    assert_eq!(TeredoAddr::from_ipv6(ip, other).is_some(), other == own);
});
