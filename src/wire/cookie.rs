//! Reading the gateway's cookies from `Cookie`, removing them before the
//! request goes upstream, and writing `Set-Cookie`. Never logs a value.
//!
//! A `Cookie` header is read as bytes, pair by pair: one pair that is not
//! ASCII (`lang=français`) or not well formed spoils only itself, never the
//! gateway's own pair beside it, and never keeps it from being removed.

use cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use std::time::Duration;

/// The session cookie's name over plain HTTP, and with `cookie_secure`
/// (`__Host-` cookies must be Secure).
pub const SESSION: &str = "gatehouse";
pub const SESSION_SECURE: &str = "__Host-gatehouse";
/// The login form's nonce cookie, likewise.
pub const CSRF: &str = "gatehouse-csrf";
pub const CSRF_SECURE: &str = "__Host-gatehouse-csrf";
/// The name last signed in with on this browser, to fill in the login form
/// after a session ends; likewise.
pub const USER: &str = "gatehouse-user";
pub const USER_SECURE: &str = "__Host-gatehouse-user";

/// Every name the gateway's cookies can have, whatever `cookie_secure`
/// says now: a browser may still hold one set before the setting changed,
/// and none of them may ever reach the app.
pub const GATEWAY_COOKIES: [&str; 6] = [
    SESSION,
    CSRF,
    USER,
    SESSION_SECURE,
    CSRF_SECURE,
    USER_SECURE,
];

/// One `name=value` pair of a `Cookie` header: the whole pair as sent
/// (trimmed), its name and its value (trimmed, one pair of quotes
/// removed). A pair without `=` is a cookie with no name (RFC 6265bis).
struct Pair<'a> {
    raw: &'a [u8],
    name: &'a [u8],
    value: &'a [u8],
}

/// The pairs of a `Cookie` header value (or of several lines joined with
/// `;`); empty pairs are skipped.
///
/// Every request of a signed-in user reads its header this way (twice:
/// for the session and to remove the gateway's cookies before the app),
/// so the separators are found with memchr rather than byte by byte.
fn pairs(header: &[u8]) -> impl Iterator<Item = Pair<'_>> {
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        let all = rest?;
        Some(match memchr::memchr(b';', all) {
            Some(at) => {
                rest = all.get(at + 1..);
                all.get(..at).unwrap_or_default()
            }
            None => {
                rest = None;
                all
            }
        })
    })
    .map(<[u8]>::trim_ascii)
    .filter(|raw| !raw.is_empty())
    .map(|raw| {
        let (name, value) = match memchr::memchr(b'=', raw) {
            Some(at) => (
                raw.get(..at).unwrap_or_default(),
                raw.get(at + 1..).unwrap_or_default(),
            ),
            None => (&b""[..], raw),
        };
        let value = value.trim_ascii();
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            other => other,
        };
        Pair {
            raw,
            name: name.trim_ascii(),
            value,
        }
    })
}

/// Every non-empty text value of cookie `name`, in the order sent.
pub fn values<'a>(header: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a str> {
    pairs(header)
        .filter(move |p| p.name == name.as_bytes())
        .filter_map(|p| std::str::from_utf8(p.value).ok())
        .filter(|v| !v.is_empty())
}

/// The first non-empty text value of cookie `name`.
pub fn find<'a>(header: &'a [u8], name: &'a str) -> Option<&'a str> {
    values(header, name).next()
}

/// The `Cookie` header without the named cookies, every other pair byte
/// for byte as sent; `None` when nothing is left.
/// Allocates only when something is kept (one buffer, written once).
pub fn without(header: &[u8], names: &[&str]) -> Option<Vec<u8>> {
    let mut kept: Option<Vec<u8>> = None;
    for p in pairs(header).filter(|p| !names.iter().any(|n| p.name == n.as_bytes())) {
        match &mut kept {
            None => {
                let mut out = Vec::with_capacity(header.len());
                out.extend_from_slice(p.raw);
                kept = Some(out);
            }
            Some(out) => {
                out.extend_from_slice(b"; ");
                out.extend_from_slice(p.raw);
            }
        }
    }
    kept
}

/// `Set-Cookie` for one of the gateway's cookies: HttpOnly, SameSite=Lax,
/// Path=/, no Domain; Secure when asked (and `__Host-` names demand it).
pub fn set(name: &str, value: &str, secure: bool, max_age: Option<Duration>) -> String {
    let mut c = Cookie::build((name.to_string(), value.to_string()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure);
    if let Some(age) = max_age {
        let secs = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        c = c.max_age(CookieDuration::seconds(secs));
    }
    c.build().to_string()
}

/// `Set-Cookie` that deletes the cookie in the browser.
pub fn clear(name: &str, secure: bool) -> String {
    set(name, "", secure, Some(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_named_cookie_only() {
        let h = b"csrftoken=abc; gatehouse=SESSION; gatehouse-csrf=N";
        assert_eq!(find(h, "gatehouse"), Some("SESSION"));
        assert_eq!(find(h, "gatehouse-csrf"), Some("N"));
        assert_eq!(find(h, "sessionid"), None);
        assert_eq!(find(b"gatehouse", "gatehouse"), None);
        assert_eq!(find(b"", "gatehouse"), None);
    }

    #[test]
    fn one_odd_pair_never_hides_the_gateways_cookie() {
        for h in [
            "lang=fran\u{e7}ais; gatehouse=S; a=1".as_bytes(),
            b"lang=fran\xe7ais; gatehouse=S",
            b"gatehouse=S; lang=\xff\xfe",
            b"a=1;gatehouse=S;;b=2;",
            b";  gatehouse = S ;\tb=2",
            b"gatehouse=\"S\"; q=\"x y\"",
            b"gatehouse=; gatehouse=S",
            b"nameless; =v; gatehouse=S",
            b"gatehouse=\xff; gatehouse=S",
            b"a=1; b=2=3; gatehouse=S",
        ] {
            assert_eq!(
                find(h, "gatehouse"),
                Some("S"),
                "{}",
                String::from_utf8_lossy(h)
            );
            let rest = without(h, &GATEWAY_COOKIES).unwrap_or_default();
            assert_eq!(find(&rest, "gatehouse"), None);
            assert!(
                !rest.windows(11).any(|w| w == b"gatehouse=S"),
                "{}",
                String::from_utf8_lossy(&rest)
            );
        }
    }

    #[test]
    fn removes_only_the_gateways_cookies() {
        let h = b"csrftoken=abc; gatehouse=S;sessionid=xyz; gatehouse-csrf=N";
        assert_eq!(
            without(h, &GATEWAY_COOKIES).as_deref(),
            Some(&b"csrftoken=abc; sessionid=xyz"[..])
        );
        assert_eq!(without(b"gatehouse=S", &["gatehouse"]), None);
        assert_eq!(
            without(b"a=1", &["gatehouse"]).as_deref(),
            Some(&b"a=1"[..])
        );
        assert_eq!(
            without(
                b"lang=fran\xe7ais;__Host-gatehouse=S; q=\"x y\"",
                &GATEWAY_COOKIES
            )
            .as_deref(),
            Some(&b"lang=fran\xe7ais; q=\"x y\""[..])
        );
    }

    #[test]
    fn set_cookie_has_the_safe_attributes() {
        let c = set("__Host-gatehouse", "v", true, Some(Duration::from_secs(60)));
        for part in [
            "__Host-gatehouse=v",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=60",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(!c.to_ascii_lowercase().contains("domain"));
        let plain = set("gatehouse", "v", false, None);
        assert!(!plain.contains("Secure"));
        assert!(clear("gatehouse", false).contains("Max-Age=0"));
    }

    proptest::proptest! {
        #[test]
        fn stripped_headers_never_hold_the_cookie(
            h in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            words in proptest::collection::vec("[a-z =;\"_-]{0,12}", 0..6),
        ) {
            let mut text = words.join("gatehouse").into_bytes();
            text.extend_from_slice(&h);
            for header in [h.as_slice(), text.as_slice()] {
                if let Some(rest) = without(header, &GATEWAY_COOKIES) {
                    for name in GATEWAY_COOKIES {
                        proptest::prop_assert_eq!(find(&rest, name), None);
                        proptest::prop_assert_eq!(values(&rest, name).count(), 0);
                    }
                }
            }
        }
    }
}
