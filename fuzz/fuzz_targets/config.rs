//! Config and users files: parsing never panics, and every error names the
//! file it came from.
#![no_main]

use gatehouse::auth::UserDb;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(errors) = gatehouse::config::parse(Path::new("fuzz.toml"), text) {
        assert!(errors.0.iter().all(|e| e.file == Path::new("fuzz.toml")));
    }
    if let Err(errors) = UserDb::parse(Path::new("users.toml"), text) {
        assert!(errors.0.iter().all(|e| e.file == Path::new("users.toml")));
    }
});
