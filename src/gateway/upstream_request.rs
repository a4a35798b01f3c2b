//! The upstream_request_filter phase: what the app receives. Inbound
//! identity and forwarding headers are dropped in every spelling, the
//! gateway's cookies are removed, the normalised path is sent, and the
//! gateway's own identity and forwarding headers are added. What it needs
//! from the request was read once (`request.rs`); header names are
//! pre-built and the identity values prepared per user, so a forwarded
//! request formats only its addresses.

use http::header::{HeaderValue, COOKIE, HOST};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use std::net::IpAddr;

use super::request::{X_FORWARDED_HOST, X_FORWARDED_PROTO};
use super::RequestCtx;
use crate::wire::cookie;
use crate::wire::forwarded::{chain_text, is_trusted, told};
use crate::wire::identity_headers::must_strip;

pub fn rewrite(
    session: &Session,
    req: &mut RequestHeader,
    ctx: &RequestCtx,
    now: crate::clock::Timestamp,
) -> pingora::Result<()> {
    let snap = &ctx.snapshot;
    let settings = &snap.settings;
    let request = &ctx.request;

    if let Some(target) = &ctx.target {
        // Sent as it came when normalising changed nothing (the usual
        // case): no new URI to build and parse.
        let same = req.uri.scheme().is_none()
            && req.uri.authority().is_none()
            && req.uri.path() == target.path
            && req.uri.query() == target.query.as_deref();
        if !same {
            let uri = http::Uri::try_from(target.path_and_query()).map_err(|e| {
                pingora::Error::explain(
                    pingora::ErrorType::InternalError,
                    format!("normalised path: {e}"),
                )
            })?;
            req.set_uri(uri);
        }
    }

    // Read what a trusted proxy may have told us before stripping it; a
    // header sent on several lines counts as one comma-separated list.
    let scheme = if super::https::over_tls(session) {
        "https"
    } else {
        "http"
    };
    // Only a trusted proxy's values are read: anyone else's are replaced.
    let trusted = is_trusted(request.peer_ip, &settings.server.trusted_proxies);
    let inbound = |name| trusted.then(|| joined(&req.headers, name)).flatten();
    let (proto, fwd_host) = told(
        trusted,
        inbound(&X_FORWARDED_PROTO),
        inbound(&X_FORWARDED_HOST),
        HeaderValue::from_static(scheme),
        joined(&req.headers, &HOST),
    );

    let doomed: Vec<http::HeaderName> = req
        .headers
        .keys()
        .filter(|name| must_strip(name.as_str(), &settings.identity))
        .cloned()
        .collect();
    for name in doomed {
        req.remove_header(&name);
    }

    // Every `Cookie` line goes; what is left of them comes back as one,
    // without any cookie the gateway may have set. A value that cannot be
    // rebuilt is dropped rather than forwarded as it came.
    if let Some(all) = request.cookies() {
        req.remove_header(&COOKIE);
        let rest = cookie::without(all, &cookie::GATEWAY_COOKIES)
            .and_then(|rest| HeaderValue::from_bytes(&rest).ok());
        if let Some(rest) = rest {
            req.insert_header(COOKIE, rest)?;
        }
    }

    if let Some(user) = &ctx.identity {
        for (name, value) in user.identity_values().with_names(&snap.identity_names) {
            req.insert_header(name.clone(), value.clone())?;
        }
        if let (Some(a), Some(name)) = (&settings.identity.assertion, &snap.assertion_name) {
            let identity = super::authenticate::identity_of(user);
            let value = super::assertion::assertion(&identity, &a.key, now);
            req.insert_header(name.clone(), value)?;
        }
    }
    let forwarded_for = match request.chain.as_slice() {
        [client] => address_value(*client)?,
        chain => chain_value(chain)?,
    };
    req.insert_header("X-Forwarded-For", forwarded_for)?;
    req.insert_header("X-Forwarded-Proto", proto)?;
    if let Some(h) = fwd_host {
        req.insert_header("X-Forwarded-Host", h)?;
    }
    if let Some(ip) = request.client_ip() {
        req.insert_header("X-Real-IP", address_value(ip)?)?;
    }
    Ok(())
}

/// All values of a header that are text, joined with ", "; `None` if
/// there are none. One line is passed on as it came, not copied.
pub fn joined(headers: &http::HeaderMap, name: &http::HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter().filter(|v| v.to_str().is_ok());
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(first.clone());
    };
    let mut all = first.as_bytes().to_vec();
    for v in std::iter::once(second).chain(values) {
        all.extend_from_slice(b", ");
        all.extend_from_slice(v.as_bytes());
    }
    HeaderValue::from_bytes(&all).ok()
}

/// A short text formatted on the stack, then copied once into a value.
struct Stack {
    buf: [u8; 256],
    len: usize,
}

impl std::fmt::Write for Stack {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let room = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn value_of(
    write: impl Fn(&mut dyn std::fmt::Write) -> std::fmt::Result,
) -> pingora::Result<HeaderValue> {
    let mut stack = Stack {
        buf: [0; 256],
        len: 0,
    };
    let bytes = if write(&mut stack).is_ok() {
        stack.buf.get(..stack.len).map(<[u8]>::to_vec)
    } else {
        None
    };
    // A chain longer than the stack buffer: formatted on the heap.
    let bytes = match bytes {
        Some(b) => b,
        None => {
            let mut s = String::new();
            let _ = write(&mut s);
            s.into_bytes()
        }
    };
    HeaderValue::from_maybe_shared(bytes::Bytes::from(bytes)).map_err(|e| {
        pingora::Error::explain(
            pingora::ErrorType::InternalError,
            format!("forwarding header: {e}"),
        )
    })
}

/// `X-Forwarded-For`: the believed hops, client first.
fn chain_value(chain: &[IpAddr]) -> pingora::Result<HeaderValue> {
    value_of(|out| chain_text(chain, &mut FmtRef(out)))
}

/// An address as a header value (`X-Real-IP`, and `X-Forwarded-For` of a
/// single hop). Each thread keeps the last one it formatted: the requests
/// of a kept-alive connection, and most of a thread's in a row, come from
/// one address, and then the value is shared rather than formatted again.
fn address_value(ip: IpAddr) -> pingora::Result<HeaderValue> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        if let Some((seen, value)) = last.as_ref() {
            if *seen == ip {
                return Ok(value.clone());
            }
        }
        let value = value_of(|out| write!(out, "{ip}"))?;
        *last = Some((ip, value.clone()));
        Ok(value)
    })
}

/// `chain_text` takes a sized writer.
struct FmtRef<'a>(&'a mut dyn std::fmt::Write);

impl std::fmt::Write for FmtRef<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write_str(s)
    }
}
