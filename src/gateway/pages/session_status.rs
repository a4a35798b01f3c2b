//! The session status JSON (`GET /session`, shared with "Stay signed in")
//! and POST `/session/extend`, the one request a script may send to keep a
//! session alive.
//!
//! `/session/extend` must never be reachable cross-site: it needs a custom
//! header (which a cross-origin page cannot send without a CORS preflight
//! the gateway never grants), and refuses a foreign `Origin` or
//! `Sec-Fetch-Site` outright.

use pingora::proxy::Session;

use super::logout::CSRF_PURPOSE as LOGOUT_CSRF_PURPOSE;
use super::{problem, require_session, store_refused, Reply, View};
use crate::clock::Timestamp;
use crate::gateway::authenticate::Authed;
use crate::gateway::request::Request;
use crate::gateway::state::{Shared, Snapshot};
use crate::metrics::StoreOp;

/// The header a same-origin script sends with "Stay signed in".
pub const EXTEND_HEADER: &str = "x-gatehouse-extend";

/// 200 with who is signed in and for how long, taking `last_seen` as the
/// session's last activity. `logout_token` lets the page's own script post
/// the logout form; only same-origin code can read this answer.
pub fn reply(shared: &Shared, snap: &Snapshot, authed: &Authed, last_seen: Timestamp) -> Reply {
    let now = shared.clock.now();
    let policy = snap.limits(&authed.user).policy;
    let rec = &authed.record;
    let left = |limit: std::time::Duration, since: Timestamp| {
        limit.saturating_sub(now.since(since)).as_secs()
    };
    Reply::json(
        200,
        &serde_json::json!({
            "user": authed.user.username,
            "groups": authed.user.groups,
            "created_at": rec.created_at.as_secs(),
            "last_seen": last_seen.as_secs(),
            "idle_expires_in": left(policy.idle_timeout, last_seen),
            "absolute_expires_in": left(policy.absolute_timeout, rec.created_at),
            "idle_timeout": policy.idle_timeout.as_secs(),
            "logout_token": shared.signer.token(LOGOUT_CSRF_PURPOSE, &authed.key.0),
        }),
    )
}

/// Why a request to `/session/extend` is refused as cross-site, if it is.
pub fn cross_site(req: &http::request::Parts) -> Option<&'static str> {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    if header(EXTEND_HEADER) != Some("1") {
        return Some("missing X-Gatehouse-Extend header");
    }
    if let Some(site) = header("sec-fetch-site") {
        if !site.eq_ignore_ascii_case("same-origin") {
            return Some("Sec-Fetch-Site is not same-origin");
        }
    }
    if let Some(origin) = header("origin") {
        // The scheme is the listener's business; the custom header already
        // rules out other origins, this catches a foreign host early.
        let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
        let host = header("host").unwrap_or("");
        if origin == "null" || !authority.eq_ignore_ascii_case(host) {
            return Some("Origin is not this site");
        }
    }
    None
}

/// POST `/session/extend`: touch the session now (not only when due), and
/// answer its new status; 401 with the reason if it is over.
pub async fn extend(shared: &Shared, snap: &Snapshot, session: &Session, req: &Request) -> Reply {
    if let Some(why) = cross_site(session.req_header()) {
        tracing::info!(target: "gatehouse::audit", event = "extend_refused", cause = why, "session extend refused: cross-site");
        return problem(
            snap,
            false,
            403,
            "forbidden",
            "Not allowed",
            "That request did not come from this site.",
        );
    }
    let authed = match require_session(shared, snap, session, req, "/session").await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    let now = shared.clock.now();
    if let Err(e) = shared
        .store
        .touch(&authed.key, &authed.user.username, now)
        .await
    {
        let view = View::new(snap, session.req_header());
        return store_refused(shared, &view, StoreOp::OwnPage, &e);
    }
    tracing::debug!(user = ?authed.user.username, session = %authed.key, "session extended");
    reply(shared, snap, &authed, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder()
            .method("POST")
            .uri("/.gatehouse/session/extend");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn only_same_origin_scripts_may_extend() {
        let ok = [("host", "app.example:8080"), (EXTEND_HEADER, "1")];
        assert_eq!(cross_site(&req(&ok)), None);
        let mut same = ok.to_vec();
        same.push(("origin", "https://app.example:8080"));
        same.push(("sec-fetch-site", "same-origin"));
        assert_eq!(cross_site(&req(&same)), None);

        assert!(cross_site(&req(&[("host", "app.example:8080")])).is_some());
        assert!(cross_site(&req(&[("host", "a"), (EXTEND_HEADER, "yes")])).is_some());
        for (name, value) in [
            ("origin", "https://evil.example"),
            ("origin", "https://app.example:8080.evil.example"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            let mut h = ok.to_vec();
            h.push((name, value));
            assert!(cross_site(&req(&h)).is_some(), "{name}: {value}");
        }
    }
}
