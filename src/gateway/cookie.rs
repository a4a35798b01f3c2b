//! Reading the gateway's cookies from `Cookie`, removing them before the
//! request goes upstream, and writing `Set-Cookie`. Never logs a value.

use cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use std::time::Duration;

/// The first value of cookie `name` in a `Cookie` header value.
pub fn find<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// The `Cookie` header without the named cookies; `None` when nothing is left.
pub fn without(header: &str, names: &[&str]) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(k, _)| k).trim();
            !pair.is_empty() && !names.contains(&name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
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
        let h = "csrftoken=abc; gatehouse=SESSION; gatehouse-csrf=N";
        assert_eq!(find(h, "gatehouse"), Some("SESSION"));
        assert_eq!(find(h, "gatehouse-csrf"), Some("N"));
        assert_eq!(find(h, "sessionid"), None);
        assert_eq!(find("gatehouse", "gatehouse"), None);
        assert_eq!(find("", "gatehouse"), None);
    }

    #[test]
    fn removes_only_the_gateways_cookies() {
        let h = "csrftoken=abc; gatehouse=S;sessionid=xyz; gatehouse-csrf=N";
        assert_eq!(
            without(h, &["gatehouse", "gatehouse-csrf"]).as_deref(),
            Some("csrftoken=abc; sessionid=xyz")
        );
        assert_eq!(without("gatehouse=S", &["gatehouse"]), None);
        assert_eq!(without("a=1", &["gatehouse"]).as_deref(), Some("a=1"));
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
        fn stripped_headers_never_hold_the_cookie(h in "[a-z =;-]{0,60}") {
            if let Some(rest) = without(&h, &["gatehouse"]) {
                proptest::prop_assert_eq!(find(&rest, "gatehouse"), None);
            }
        }
    }
}
