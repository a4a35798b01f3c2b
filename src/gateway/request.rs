//! Reads each request once. At the start of `request_filter` the facts
//! every phase needs are taken from the request line and headers into
//! `RequestCtx::request`: the normalised target and host, whether a
//! browser is loading a page, the `Cookie` lines as one value, the TCP
//! peer and the believed chain of client addresses. Admission, the own
//! pages, forward auth, the upstream filter and the access log all read
//! them from there; no other module joins `Cookie` or walks
//! `X-Forwarded-For`.
//!
//! It never answers and never fails: a malformed host or target is kept
//! as the error that admission turns into its 400, in the order it always
//! checked them. It must never allocate for what a proxied request of a
//! signed-in user does not need (the cookie and host values are shared
//! with Pingora's read buffer, not copied).

use http::header::{HeaderName, HeaderValue, COOKIE, HOST};
use pingora::proxy::Session;
use std::net::IpAddr;

use super::normalize::{normalize_host, normalize_target, Malformed, Target};
use super::page_load::is_page_load;
use super::RequestCtx;
use crate::wire::forwarded;

/// Pre-built names of the non-standard headers the gateway reads or
/// writes on every request: never parsed per request.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What the phases need from a request, read once.
#[derive(Debug)]
pub struct Request {
    /// A browser loading a page (answers are HTML and redirects) rather
    /// than a script (answers are JSON and a status).
    pub page_load: bool,
    /// The `Host` (or the request line's authority), normalised; empty
    /// when the request names none.
    pub host: Result<String, Malformed>,
    /// The request target, normalised.
    pub target: Result<Target, Malformed>,
    /// Every `Cookie` line as one value (`; ` between lines), bytes as
    /// sent; one line is shared with Pingora's buffer, not copied.
    pub cookies: Option<HeaderValue>,
    /// The TCP peer.
    pub peer_ip: Option<IpAddr>,
    /// The hops the gateway believes, client first, the peer last
    /// (`wire::forwarded::believed_chain`); empty without a peer address.
    pub chain: Vec<IpAddr>,
}

impl Default for Request {
    /// Before `read`: nothing known (a request that never reached
    /// `request_filter`, such as one Pingora refused to parse).
    fn default() -> Self {
        Request {
            page_load: false,
            host: Ok(String::new()),
            target: Err(Malformed("not read")),
            cookies: None,
            peer_ip: None,
            chain: Vec::new(),
        }
    }
}

impl Request {
    /// Reads `session`'s request; `trusted` is `server.trusted_proxies`.
    pub fn read(session: &Session, trusted: &[ipnet::IpNet]) -> Request {
        let req = session.req_header();
        let raw_host = req
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| req.headers.get(HOST).and_then(|h| h.to_str().ok()));
        let host = raw_host.map_or_else(|| Ok(String::new()), normalize_host);
        let raw_target = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let peer_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let chain = forwarded::believed_chain(peer_ip, &forwarded_for(&req.headers), trusted);
        Request {
            page_load: is_page_load(req),
            host,
            target: normalize_target(raw_target),
            cookies: joined_cookies(&req.headers),
            peer_ip,
            chain,
        }
    }

    /// The normalised target, moved out (into `RequestCtx::target`, where
    /// the later phases and the log find it).
    pub fn take_target(&mut self) -> Result<Target, Malformed> {
        std::mem::replace(&mut self.target, Err(Malformed("already taken")))
    }

    /// The `Cookie` header's bytes, if the request had one.
    pub fn cookies(&self) -> Option<&[u8]> {
        self.cookies.as_ref().map(HeaderValue::as_bytes)
    }

    /// The client address the gateway believes (trusted proxies
    /// considered).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.chain.first().copied()
    }
}

impl RequestCtx {
    /// The signed-in user of this request, for the log and the app's
    /// logout path.
    pub fn username(&self) -> Option<&str> {
        self.identity
            .as_deref()
            .map(|u| u.username.as_str())
            .or(self.user.as_deref())
    }
}

/// The request's `Cookie` lines as one value, bytes as sent: a line that
/// is not ASCII is read like any other (`wire::cookie` reads it pair by
/// pair). One line, the usual case, is shared rather than copied.
pub fn joined_cookies(headers: &http::HeaderMap) -> Option<HeaderValue> {
    let mut lines = headers.get_all(COOKIE).iter();
    let first = lines.next()?;
    let Some(second) = lines.next() else {
        return Some(first.clone());
    };
    let mut all = first.as_bytes().to_vec();
    for line in std::iter::once(second).chain(lines) {
        all.extend_from_slice(b"; ");
        all.extend_from_slice(line.as_bytes());
    }
    // Joined valid values with "; " are a valid value.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(all)).ok()
}

/// Every `X-Forwarded-For` line, joined with `,`, as the bytes arrived: a
/// line that is not UTF-8 stays in the chain (as a hop nobody can read)
/// rather than vanishing and letting the walk skip past it. One line is
/// borrowed, not copied.
pub fn forwarded_for(headers: &http::HeaderMap) -> std::borrow::Cow<'_, [u8]> {
    let mut lines = headers.get_all(&X_FORWARDED_FOR).iter();
    let Some(first) = lines.next() else {
        return std::borrow::Cow::Borrowed(&[]);
    };
    let Some(second) = lines.next() else {
        return std::borrow::Cow::Borrowed(first.as_bytes());
    };
    let mut all = first.as_bytes().to_vec();
    for line in std::iter::once(second).chain(lines) {
        all.push(b',');
        all.extend_from_slice(line.as_bytes());
    }
    std::borrow::Cow::Owned(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cookie_lines_are_joined_as_one_value() {
        assert_eq!(joined_cookies(&headers(&[])), None);
        let one = joined_cookies(&headers(&[("cookie", "a=1; b=2")])).unwrap();
        assert_eq!(one.as_bytes(), b"a=1; b=2");
        let two = joined_cookies(&headers(&[("cookie", "a=1"), ("cookie", "b=2")])).unwrap();
        assert_eq!(two.as_bytes(), b"a=1; b=2");
    }

    #[test]
    fn forwarded_for_lines_are_joined_with_commas() {
        assert!(forwarded_for(&headers(&[])).is_empty());
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(&*forwarded_for(&h), b"1.2.3.4");
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
        ]);
        assert_eq!(&*forwarded_for(&h), b"1.2.3.4,5.6.7.8");
    }
}
