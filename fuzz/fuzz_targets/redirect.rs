//! `rd` validation: an accepted value is a path on this origin (a query may
//! hold anything printable: it cannot change the origin).
#![no_main]

use gatehouse::gateway::redirect::{login_url, safe_redirect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rd) = std::str::from_utf8(data) else { return };
    if let Some(ok) = safe_redirect(rd) {
        let path = ok.split_once('?').map_or(ok, |(p, _)| p);
        assert!(path.starts_with('/') && !path.contains("//"));
        assert!(!path.contains('\\'));
        assert!(ok.bytes().all(|b| (0x21..0x7f).contains(&b)));
    }
    assert!(login_url("/.gatehouse", Some(rd), None).starts_with("/.gatehouse/login"));
});
