//! The request a proxy in front asks `GET {prefix}/auth` about, read from
//! the headers it sends: nginx examples send `X-Original-URI` (and
//! `X-Original-Method`); Traefik and Caddy send `X-Forwarded-Method`,
//! `-Proto`, `-Host` and `-Uri`. Whether the sender may be believed at all
//! is decided by the caller (`server.trusted_proxies`); this only reads.
//! A header given twice, or a host list, is refused rather than guessed
//! at: the check must be about exactly one request. Pure.

/// How the proxy uses the answer, which decides what a missing session gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// nginx `auth_request`: only 2xx, 401 and 403 mean anything to it (a
    /// redirect becomes a 500), and its `error_page 401` sends the browser
    /// to the login page.
    Nginx,
    /// Caddy `forward_auth`, Traefik `forwardAuth`: any answer but a 2xx is
    /// passed to the browser as it is, so a page load may get a redirect.
    PassThrough,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    pub style: Style,
    /// Upper-case, as sent; `None` when the proxy did not say.
    pub method: Option<String>,
    /// The request target as the client sent it (path and query), not yet
    /// normalised.
    pub uri: String,
    /// The host the client asked for, if the proxy said.
    pub host: Option<String>,
}

/// Why the original request cannot be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub &'static str);

/// Reads the original request. Its host is `X-Forwarded-Host`; an
/// nginx-style request without one is read at its own `Host` (nginx
/// recipes pass the original host as `Host`).
pub fn read(headers: &http::HeaderMap) -> Result<OriginalRequest, Unreadable> {
    let nginx_uri = single(headers, "x-original-uri")?;
    let (style, uri, method) = match nginx_uri {
        Some(uri) => (Style::Nginx, uri, single(headers, "x-original-method")?),
        None => match single(headers, "x-forwarded-uri")? {
            Some(uri) => (
                Style::PassThrough,
                uri,
                single(headers, "x-forwarded-method")?,
            ),
            None => {
                return Err(Unreadable(
                    "the original request is missing: send X-Original-URI (nginx) or X-Forwarded-Uri (Caddy, Traefik)",
                ))
            }
        },
    };
    let host = match single(headers, "x-forwarded-host")? {
        Some(h) => Some(h),
        None if style == Style::Nginx => single(headers, "host")?,
        None => None,
    };
    if host.as_deref().is_some_and(|h| h.contains(',')) {
        return Err(Unreadable("X-Forwarded-Host names more than one host"));
    }
    if !uri.starts_with('/') {
        return Err(Unreadable("the original URI must start with `/`"));
    }
    let method = method.map(|m| m.to_ascii_uppercase());
    if method
        .as_deref()
        .is_some_and(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return Err(Unreadable("the original method is not a method"));
    }
    Ok(OriginalRequest {
        style,
        method,
        uri,
        host,
    })
}

/// The one value of a header, trimmed; an empty one counts as absent (nginx
/// sends `X-Original-Method: ""` when a variable is unset). Two lines, or
/// a value that is not visible ASCII, are refused.
fn single(headers: &http::HeaderMap, name: &str) -> Result<Option<String>, Unreadable> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Unreadable("a header of the original request came twice"));
    }
    let text = first
        .to_str()
        .map_err(|_| Unreadable("a header of the original request is not ASCII"))?
        .trim();
    if text.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return Err(Unreadable(
            "a header of the original request holds spaces or control characters",
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn nginx_style_reads_the_original_uri_and_the_host() {
        let r = read(&headers(&[
            ("X-Original-URI", "/app/x?y=1"),
            ("X-Original-Method", "post"),
            ("Host", "app.example.com"),
        ]))
        .unwrap();
        assert_eq!(r.style, Style::Nginx);
        assert_eq!(r.uri, "/app/x?y=1");
        assert_eq!(r.method.as_deref(), Some("POST"));
        assert_eq!(r.host.as_deref(), Some("app.example.com"));
    }

    #[test]
    fn nginx_style_wins_when_both_are_sent() {
        let r = read(&headers(&[
            ("X-Original-URI", "/a"),
            ("X-Forwarded-Uri", "/b"),
        ]))
        .unwrap();
        assert_eq!((r.style, r.uri.as_str()), (Style::Nginx, "/a"));
    }

    #[test]
    fn caddy_and_traefik_style_reads_the_forwarded_headers() {
        let r = read(&headers(&[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "app.example.com"),
            ("X-Forwarded-Uri", "/static/a.css"),
            ("Host", "gatehouse:9000"),
        ]))
        .unwrap();
        assert_eq!(r.style, Style::PassThrough);
        assert_eq!(r.host.as_deref(), Some("app.example.com"));
        assert_eq!(r.uri, "/static/a.css");
        // Without X-Forwarded-Host the auth request's own Host is not the app's.
        let r = read(&headers(&[("X-Forwarded-Uri", "/"), ("Host", "gatehouse")])).unwrap();
        assert_eq!(r.host, None);
        assert_eq!(r.method, None);
    }

    #[test]
    fn nothing_is_guessed() {
        for bad in [
            headers(&[]),
            headers(&[("X-Forwarded-Method", "GET")]),
            headers(&[("X-Original-URI", "/a"), ("X-Original-URI", "/b")]),
            headers(&[("X-Forwarded-Uri", "/a"), ("X-Forwarded-Uri", "/b")]),
            headers(&[("X-Forwarded-Uri", "/a"), ("X-Forwarded-Host", "a, b")]),
            headers(&[
                ("X-Forwarded-Uri", "/a"),
                ("X-Forwarded-Host", "a"),
                ("X-Forwarded-Host", "b"),
            ]),
            headers(&[("X-Forwarded-Uri", "http://evil/")]),
            headers(&[("X-Forwarded-Uri", "/a b")]),
            headers(&[("X-Original-URI", "/"), ("X-Original-Method", "G T")]),
            headers(&[("X-Original-URI", "/"), ("X-Original-Method", "G1")]),
        ] {
            assert!(read(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_empty_value_counts_as_absent() {
        let r = read(&headers(&[
            ("X-Original-URI", "/"),
            ("X-Original-Method", ""),
        ]))
        .unwrap();
        assert_eq!(r.method, None);
    }

    proptest::proptest! {
        /// Whatever the proxy (or someone pretending) sends, the reader
        /// answers without panicking, and an accepted URI is a path.
        #[test]
        fn any_headers_are_read_or_refused(
            uri in "[ -~]{0,30}",
            method in "[ -~]{0,8}",
            host in "[ -~]{0,20}",
            nginx in proptest::bool::ANY,
        ) {
            let (u, m) = if nginx {
                ("x-original-uri", "x-original-method")
            } else {
                ("x-forwarded-uri", "x-forwarded-method")
            };
            let mut h = http::HeaderMap::new();
            for (k, v) in [(u, &uri), (m, &method), ("x-forwarded-host", &host)] {
                if let Ok(v) = http::HeaderValue::from_str(v) {
                    h.insert(k, v);
                }
            }
            if let Ok(r) = read(&h) {
                proptest::prop_assert!(r.uri.starts_with('/'));
                proptest::prop_assert!(!r.host.unwrap_or_default().contains(','));
            }
        }
    }
}
