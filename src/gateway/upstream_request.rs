//! The upstream_request_filter phase: what the app receives. Inbound
//! identity and forwarding headers are dropped in every spelling, the
//! gateway's cookies are removed, the normalised path is sent, and the
//! gateway's own identity and forwarding headers are added.

use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::{peer_ip, RequestCtx};
use crate::wire::cookie;
use crate::wire::forwarded::{forwarded, Inbound};
use crate::wire::identity_headers::{identity_headers, must_strip};

pub fn rewrite(
    session: &Session,
    req: &mut RequestHeader,
    ctx: &RequestCtx,
    now: crate::clock::Timestamp,
) -> pingora::Result<()> {
    let settings = &ctx.snapshot.settings;

    if let Some(target) = &ctx.target {
        let uri = http::Uri::try_from(target.path_and_query()).map_err(|e| {
            pingora::Error::explain(
                pingora::ErrorType::InternalError,
                format!("normalised path: {e}"),
            )
        })?;
        req.set_uri(uri);
    }

    // Read what a trusted proxy may have told us before stripping it; a
    // header sent on several lines counts as one comma-separated list.
    let header = |name: &str| joined(&req.headers, name);
    let (xff, proto, fwd_host) = (
        forwarded_for(&req.headers),
        header("x-forwarded-proto"),
        header("x-forwarded-host"),
    );
    let host = header("host");
    let fwd = forwarded(
        peer_ip(session),
        &settings.server.trusted_proxies,
        &Inbound {
            xff: &xff,
            proto: proto.as_deref(),
            host: fwd_host.as_deref(),
        },
        if super::https::over_tls(session) {
            "https"
        } else {
            "http"
        },
        host.as_deref(),
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
    if let Some(all) = super::authenticate::cookie_header(req) {
        req.remove_header(&http::header::COOKIE);
        let rest = cookie::without(&all, &cookie::GATEWAY_COOKIES)
            .and_then(|rest| http::HeaderValue::from_bytes(&rest).ok());
        if let Some(rest) = rest {
            req.insert_header(http::header::COOKIE, rest)?;
        }
    }

    if let Some(identity) = &ctx.identity {
        for (name, value) in identity_headers(identity, &settings.identity) {
            let value = http::HeaderValue::from_bytes(value.as_bytes()).map_err(|e| {
                pingora::Error::explain(
                    pingora::ErrorType::InternalError,
                    format!("identity header: {e}"),
                )
            })?;
            req.insert_header(name.to_string(), value)?;
        }
        if let Some(a) = &settings.identity.assertion {
            let value = super::assertion::assertion(identity, &a.key, now);
            req.insert_header(a.header.clone(), value)?;
        }
    }
    req.insert_header("X-Forwarded-For", fwd.for_)?;
    req.insert_header("X-Forwarded-Proto", fwd.proto)?;
    if let Some(h) = fwd.host {
        req.insert_header("X-Forwarded-Host", h)?;
    }
    if let Some(ip) = fwd.client {
        req.insert_header("X-Real-IP", ip.to_string())?;
    }
    Ok(())
}

/// All values of a header, joined with ", "; `None` if absent.
pub fn joined(headers: &http::HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Every `X-Forwarded-For` line, joined with `,`, as the bytes arrived: a
/// line that is not UTF-8 stays in the chain (as a hop nobody can read)
/// rather than vanishing and letting the walk skip past it.
pub fn forwarded_for(headers: &http::HeaderMap) -> Vec<u8> {
    let lines: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(http::HeaderValue::as_bytes)
        .collect();
    lines.join(&b","[..])
}
