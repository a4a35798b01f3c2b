//! Where to send the user after login: `rd` must be a path on this origin.
//! Anything that a browser could read as another origin (`//host`, `/\host`,
//! a scheme, a control character, raw or percent-encoded) is refused. Pure.

use percent_encoding::percent_decode_str;

const MAX_RD_LEN: usize = 2048;

fn path_is_safe(p: &str) -> bool {
    p.starts_with('/')
        && !p.contains("//")
        && !p.contains('\\')
        && p.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// `Some(rd)` when it is a safe same-origin path, `None` otherwise.
pub fn safe_redirect(rd: &str) -> Option<&str> {
    if rd.len() > MAX_RD_LEN || !path_is_safe(rd) {
        return None;
    }
    // Check the decoded form too: `%2F%2F`, `%5C` and `%09` are tricks.
    let decoded = percent_decode_str(rd).collect::<Vec<u8>>();
    let decoded_ok = decoded.first() == Some(&b'/')
        && !decoded.windows(2).any(|w| w == b"//")
        && !decoded.iter().any(|&b| b == b'\\' || b < 0x20 || b == 0x7f);
    decoded_ok.then_some(rd)
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
        for ok in ["/", "/docs", "/a/b?x=1&y=%20", "/search?q=a%2Fb", "/~u/"] {
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
                proptest::prop_assert!(ok.starts_with('/'));
                proptest::prop_assert!(!ok.starts_with("//"));
                proptest::prop_assert!(!ok.contains('\\'));
                proptest::prop_assert!(ok.bytes().all(|b| (0x21..0x7f).contains(&b)));
            }
        }
    }
}
