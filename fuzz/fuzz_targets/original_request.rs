//! The headers a proxy sends to `/.gatehouse/auth`, as raw bytes: never
//! panics; an original request that is read has a path for its URI and
//! at most one host.
#![no_main]

use gatehouse::wire::original_request::read;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let names = [
        "x-original-uri",
        "x-original-method",
        "x-forwarded-uri",
        "x-forwarded-method",
        "x-forwarded-host",
        "host",
    ];
    let mut headers = http::HeaderMap::new();
    for (i, value) in data.split(|b| *b == b'\n').enumerate() {
        let Some(name) = names.get(i % names.len()) else {
            continue;
        };
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            headers.append(*name, v);
        }
    }
    if let Ok(r) = read(&headers) {
        assert!(r.uri.starts_with('/'));
        assert!(!r.host.unwrap_or_default().contains(','));
    }
});
