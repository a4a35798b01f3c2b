//! Cookie headers, as raw bytes: lookup, removal of the gateway's cookies,
//! and session cookie values never panic; a stripped header never holds a
//! gateway cookie, and it keeps every other pair.
#![no_main]

use gatehouse::wire::cookie::{find, values, without, GATEWAY_COOKIES};
use gatehouse::session::SessionId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &[u8]| {
    for name in GATEWAY_COOKIES {
        for value in values(header, name) {
            let _ = SessionId::parse_cookie(value);
        }
    }
    let rest = without(header, &GATEWAY_COOKIES).unwrap_or_default();
    for name in GATEWAY_COOKIES {
        assert_eq!(find(&rest, name), None);
    }
    // removing again changes nothing: only gateway pairs were dropped
    assert_eq!(
        without(&rest, &GATEWAY_COOKIES).unwrap_or_default(),
        rest
    );
});
