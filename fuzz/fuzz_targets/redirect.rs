//! `rd` validation: an accepted value is a path on this origin.
#![no_main]

use gatehouse::gateway::redirect::{login_url, safe_redirect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rd) = std::str::from_utf8(data) else { return };
    if let Some(ok) = safe_redirect(rd) {
        assert!(ok.starts_with('/') && !ok.starts_with("//"));
        assert!(!ok.contains('\\'));
        assert!(ok.bytes().all(|b| (0x21..0x7f).contains(&b)));
    }
    assert!(login_url("/.gatehouse", Some(rd), None).starts_with("/.gatehouse/login"));
});
