//! Cookie headers: lookup, removal of the gateway's cookies, and session
//! cookie values never panic; a stripped header never holds the cookie.
#![no_main]

use gatehouse::gateway::cookie::{find, without};
use gatehouse::session::SessionId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    if let Some(value) = find(header, "gatehouse") {
        let _ = SessionId::parse_cookie(value);
    }
    if let Some(rest) = without(header, &["gatehouse", "gatehouse-csrf"]) {
        assert_eq!(find(&rest, "gatehouse"), None);
        assert_eq!(find(&rest, "gatehouse-csrf"), None);
    }
});
