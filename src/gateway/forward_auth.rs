//! `GET {prefix}/auth`: forward auth for an nginx, Caddy or Traefik that is
//! already in front. The proxy asks about a request it holds; the answer is
//! the one a proxied request would get, from the same route table, session
//! store and policy: 200 with every identity header, 401 JSON, a redirect
//! to the login page (page loads, for proxies that pass the answer through
//! to the browser), or 403. Only peers in `server.trusted_proxies` are
//! asked about anything: anyone else could claim any original request.
//! Never answers with a redirect in nginx's style (nginx makes it a 500).

use pingora::proxy::Session;

use super::authenticate::{Auth, Authed};
use super::normalize::{normalize_host, normalize_target};
use super::pages::{login_required, not_in_group, problem};
use super::redirect::login_url;
use super::respond::Reply;
use super::route_access::{judge, Verdict, STORE_DOWN};
use super::routing::{find_route, under_prefix};
use super::state::{Shared, Snapshot};
use super::RequestCtx;
use crate::metrics::Outcome;
use crate::session::EndReason;
use crate::wire::forwarded::is_trusted;
use crate::wire::identity_headers::every_identity_header;
use crate::wire::original_request::{self, Style};

/// The answer to the proxy; the outcome, route, target and user are left
/// in `ctx` for the metrics and the access log.
pub async fn check(
    shared: &Shared,
    snap: &Snapshot,
    session: &Session,
    ctx: &mut RequestCtx,
) -> Reply {
    let (outcome, reply) = decide(shared, snap, session, ctx).await;
    ctx.outcome = Some(outcome);
    reply
}

async fn decide(
    shared: &Shared,
    snap: &Snapshot,
    session: &Session,
    ctx: &mut RequestCtx,
) -> (Outcome, Reply) {
    let req = session.req_header();
    let refuse = |status, code, message: &str| problem(snap, false, status, code, "", message);
    if !is_trusted(ctx.request.peer_ip, &snap.settings.server.trusted_proxies) {
        return (
            Outcome::ForwardAuthUntrusted,
            refuse(
                403,
                "untrusted_peer",
                "Only a proxy listed in server.trusted_proxies may ask about a request.",
            ),
        );
    }
    let bad = |why: &str| {
        (
            Outcome::ForwardAuthBadRequest,
            refuse(400, "bad_request", why),
        )
    };
    let original = match original_request::read(&req.headers) {
        Ok(o) => o,
        Err(e) => return bad(e.0),
    };
    let host = match original.host.as_deref().map(normalize_host) {
        Some(Ok(h)) => h,
        Some(Err(e)) => return bad(e.0),
        None => String::new(),
    };
    let target = match normalize_target(&original.uri) {
        Ok(t) => t,
        Err(e) => return bad(e.0),
    };
    // Only a proxy that passes the answer to the browser can use a
    // redirect; whether the browser is loading a page is read from the
    // headers the proxy copied, under the original method.
    let method_is_safe = original
        .method
        .as_deref()
        .is_none_or(|m| m == "GET" || m == "HEAD");
    ctx.page_load = original.style == Style::PassThrough && method_is_safe && ctx.request.page_load;
    let rd = target.path_and_query();

    // The gateway's own pages check for themselves.
    let prefix = snap.settings.server.prefix.as_str();
    if under_prefix(prefix, &target.path) {
        ctx.target = Some(target);
        return (Outcome::ForwardAuthAllowed, allowed(shared, snap, None));
    }
    let Some((index, route)) = find_route(&snap.settings.routes, &host, &target.path) else {
        ctx.target = Some(target);
        return (
            Outcome::ForwardAuthForbidden,
            refuse(
                403,
                "no_route",
                "No [[route]] covers this address, so nobody may see it.",
            ),
        );
    };
    ctx.route = Some(index);
    ctx.target = Some(target);

    match judge(shared, snap, route, ctx.request.cookies()).await {
        Verdict::Allowed(authed)
        | Verdict::Public {
            authed: Some(authed),
            ..
        } => {
            ctx.user = Some(authed.user.username.clone());
            (
                Outcome::ForwardAuthAllowed,
                allowed(shared, snap, Some(&authed)),
            )
        }
        Verdict::Public { authed: None, .. } => {
            (Outcome::ForwardAuthAllowed, allowed(shared, snap, None))
        }
        Verdict::LoginRequired(auth) if ctx.page_load => (
            Outcome::ForwardAuthLoginRedirect,
            to_login_page(snap, &rd, &auth),
        ),
        Verdict::LoginRequired(auth) => {
            // `Location` too, though the status is 401: nginx reads it with
            // `auth_request_set` for its `error_page 401` redirect, already
            // encoded (nginx has no way to encode `rd` itself).
            let url = login_url(prefix, Some(&rd), auth.reason().map(EndReason::as_str));
            (
                Outcome::ForwardAuthUnauthorized,
                login_required(snap, false, &rd, &auth).header("Location", url),
            )
        }
        Verdict::WrongGroup(authed, message) => {
            ctx.user = Some(authed.user.username.clone());
            let reply = not_in_group(snap, ctx.page_load, &message);
            (Outcome::ForwardAuthForbidden, reply)
        }
        Verdict::StoreDown => (
            Outcome::ForwardAuthStoreUnavailable,
            refuse(503, "store_unavailable", STORE_DOWN),
        ),
    }
}

/// 200 with every identity header, empty for nobody, and the signed
/// assertion when configured (empty for nobody too), and no body.
fn allowed(shared: &Shared, snap: &Snapshot, authed: Option<&Authed>) -> Reply {
    let settings = &snap.settings.identity;
    let identity = authed.map(Authed::identity);
    // No body: nginx keeps its connection to the gateway only then.
    let mut reply = Reply::empty(200);
    for (name, value) in every_identity_header(identity.as_ref(), settings) {
        reply = reply.header(name.to_string(), value);
    }
    if let Some(a) = &settings.assertion {
        let value = identity
            .as_ref()
            .map(|i| super::assertion::assertion(i, &a.key, shared.clock.now()))
            .unwrap_or_default();
        reply = reply.header(a.header.clone(), value);
    }
    reply
}

/// A page load without a session, for a proxy that hands the answer to
/// the browser: 302 (what Caddy and Traefik users expect) to the login
/// page, which sends the user back to `rd` on the same origin.
fn to_login_page(snap: &Snapshot, rd: &str, auth: &Auth) -> Reply {
    let url = login_url(
        &snap.settings.server.prefix,
        Some(rd),
        auth.reason().map(EndReason::as_str),
    );
    let reply = Reply::json(
        302,
        &serde_json::json!({ "error": "login_required", "login_url": url }),
    )
    .header("Location", url);
    if auth.had_cookie() {
        reply.header("Set-Cookie", snap.settings.session.clear_cookie())
    } else {
        reply
    }
}
