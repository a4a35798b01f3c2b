//! Where to send the user after login: `rd` must be a path on this origin.
//! Anything that a browser could read as another origin (`//host`, `/\host`,
//! a scheme, a control character, raw or percent-encoded) is refused. Pure.

use percent_encoding::percent_decode_str;

const MAX_RD_LEN: usize = 2048;

/// The path part decides the origin: one leading `/`, no `//` or `\`,
/// raw or percent-encoded. The whole value (query too) must be printable
/// ASCII with no control character, raw or percent-encoded.
pub fn safe_redirect(rd: &str) -> Option<&str> {
    if rd.len() > MAX_RD_LEN || !rd.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return None;
    }
    let decoded_all: Vec<u8> = percent_decode_str(rd).collect();
    if decoded_all.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return None;
    }
    let path = rd.split_once('?').map_or(rd, |(p, _)| p);
    let decoded: Vec<u8> = percent_decode_str(path).collect();
    let origin_safe = |p: &[u8]| {
        p.first() == Some(&b'/') && !p.windows(2).any(|w| w == b"//") && !p.contains(&b'\\')
    };
    (origin_safe(path.as_bytes()) && origin_safe(&decoded)).then_some(rd)
}

/// The gateway's login page with `rd` and `reason`, e.g.
/// `/.gatehouse/login?rd=%2Fdocs%3Fp%3D2&reason=idle`.
pub fn login_url(prefix: &str, rd: Option<&str>, reason: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(rd) = rd.and_then(safe_redirect) {
        query.append_pair("rd", rd);
    }
    if let Some(reason) = reason {
        query.append_pair("reason", reason);
    }
    let query = query.finish();
    if query.is_empty() {
        format!("{prefix}/login")
    } else {
        format!("{prefix}/login?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass() {
        for ok in [
            "/",
            "/docs",
            // found by the fuzzer: a backslash in the query is harmless
            "/j?=/j7^\\^?=/j8^",
            "/a/b?x=1&y=%20",
            "/search?q=a%2Fb",
            "/~u/",
            "/search?u=https://x.org/a//b",
        ] {
            assert_eq!(safe_redirect(ok), Some(ok), "{ok}");
        }
    }

    #[test]
    fn other_origins_are_refused() {
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "https://evil.com/",
            "/%09/evil.com",
            "javascript:alert(1)",
            "http:evil.com",
            "/%2F%2Fevil.com",
            "/%5Cevil.com",
            "/%0d%0aSet-Cookie:x",
            "/ok/../\t/evil",
            "",
            "evil.com",
            "/a b",
            "/caf\u{e9}",
            "\\\\evil.com",
            "/ok?x=%0d%0aSet-Cookie:x",
            "/ok?x=\u{1}",
        ] {
            assert_eq!(safe_redirect(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn login_url_encodes_and_drops_unsafe_rd() {
        assert_eq!(
            login_url("/.gatehouse", Some("/docs?p=2"), Some("idle")),
            "/.gatehouse/login?rd=%2Fdocs%3Fp%3D2&reason=idle"
        );
        assert_eq!(
            login_url("/.gatehouse", Some("//evil.com"), None),
            "/.gatehouse/login"
        );
    }

    proptest::proptest! {
        #[test]
        fn accepted_redirects_never_leave_the_origin(rd in "\\PC{0,30}") {
            if let Some(ok) = safe_redirect(&rd) {
                // the origin is decided by the path; a query may hold `\` or `//`
                let path = ok.split_once('?').map_or(ok, |(p, _)| p);
                proptest::prop_assert!(path.starts_with('/'));
                proptest::prop_assert!(!path.contains("//"));
                proptest::prop_assert!(!path.contains('\\'));
                proptest::prop_assert!(ok.bytes().all(|b| (0x21..0x7f).contains(&b)));
            }
        }
    }
}
