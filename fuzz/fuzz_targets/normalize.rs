//! Path and host normalisation: never panics; a normalised path is a fixed
//! point with no `//`, `.` or `..` segment.
#![no_main]

use gatehouse::gateway::normalize::{normalize_host, normalize_path, normalize_target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = normalize_host(text);
    if let Ok(t) = normalize_target(text) {
        assert!(t.path.starts_with('/'));
        assert!(!t.path.contains("//"));
        assert!(!t.path.split('/').any(|s| s == "." || s == ".."));
        assert_eq!(normalize_path(&t.path).as_deref(), Ok(t.path.as_str()));
    }
});
