//! Header-name matching: never panics, and a name is stripped exactly
//! when its CGI spelling (lower case, every non-alphanumeric byte one
//! separator) is; a configured prefix matches in any spelling too.
#![no_main]

use gatehouse::config::IdentitySettings;
use gatehouse::wire::identity_headers::{eq_folded, must_strip, starts_with_folded};
use libfuzzer_sys::fuzz_target;

fn cgi(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b.to_ascii_lowercase())
            } else {
                '_'
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (prefix, name) = text.split_once('\n').unwrap_or(("", text));
    let mut settings = IdentitySettings::defaults();
    assert_eq!(must_strip(name, &settings), must_strip(&cgi(name), &settings));
    assert!(eq_folded(name, &cgi(name)));
    if !prefix.is_empty() {
        settings.strip_prefixes.push(prefix.to_string());
        let spoof = format!("{}{name}", cgi(prefix));
        assert!(starts_with_folded(&spoof, prefix));
        assert!(must_strip(&spoof, &settings));
    }
});
