//! The request_filter phase: normalise, answer own pages, match a route,
//! and decide whether the request may go upstream (ARCHITECTURE.md,
//! "Request flow").

use pingora::proxy::Session;
use std::sync::Arc;

use super::pages::{self, login_required, not_in_group, problem};
use super::request::Request;
use super::respond::Reply;
use super::route_access::{judge, Verdict, STORE_DOWN};
use super::routing::{find_route, under_prefix};
use super::state::{Shared, Snapshot};
use super::RequestCtx;
use crate::wire::framing;

/// `Ok(true)` when the gateway answered the request itself.
pub async fn admit(
    shared: &Shared,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> pingora::Result<bool> {
    let snap = Arc::clone(&ctx.snapshot);
    let reply = decide(shared, &snap, session, ctx).await?;
    match reply {
        Some(reply) => {
            ctx.status = reply.status;
            reply.send(session).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// `None` forwards the request; `Some` is the gateway's own answer.
async fn decide(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> pingora::Result<Option<Reply>> {
    ctx.request = Request::read(session, &snap.settings.server.trusted_proxies);
    ctx.page_load = ctx.request.page_load;
    let bad_request = |ctx: &RequestCtx, why: &str| {
        problem(snap, ctx.page_load, 400, "bad_request", "Bad request", why)
    };

    // 1. parse & normalise
    if let Err(refusal) = framing::check(session.req_header()) {
        // The body, if any, is framed in a way that cannot be trusted to
        // end where the next request begins: finish with this connection.
        session.set_keepalive(None);
        return Ok(Some(problem(
            snap,
            ctx.page_load,
            refusal.status(),
            refusal.code(),
            "Bad request",
            refusal.message(),
        )));
    }
    if let Err(e) = &ctx.request.host {
        return Ok(Some(bad_request(ctx, e.0)));
    }
    let target = match ctx.request.take_target() {
        Ok(t) => t,
        Err(e) => return Ok(Some(bad_request(ctx, e.0))),
    };
    if let Some(reply) = super::https::plain_to_https(shared, snap, session, &target.path, ctx) {
        ctx.target = Some(target);
        return Ok(Some(reply));
    }

    // 2. the gateway's own pages
    let prefix = snap.settings.server.prefix.as_str();
    if under_prefix(prefix, &target.path) {
        if target.path.get(prefix.len()..) == Some("/auth") {
            return Ok(Some(
                super::forward_auth::check(shared, snap, session, ctx).await,
            ));
        }
        let sub = target.path[prefix.len()..].to_string();
        ctx.target = Some(target);
        ctx.own_page = true;
        return pages::serve(shared, snap, session, &ctx.request, &sub)
            .await
            .map(Some);
    }

    // 3. route
    let host = ctx.request.host.as_deref().unwrap_or("");
    let Some((index, route)) = find_route(&snap.settings.routes, host, &target.path) else {
        return Ok(Some(problem(
            snap,
            ctx.page_load,
            404,
            "not_found",
            "Not found",
            "No application is configured for this address.",
        )));
    };
    ctx.route = Some(index);
    if route.upstreams.is_empty() {
        // A route without `upstream` only describes policy for a proxy in
        // front (forward auth); the gateway has nowhere to send it.
        return Ok(Some(problem(
            snap,
            ctx.page_load,
            404,
            "not_found",
            "Not found",
            "This address is served by the proxy in front, not by the gateway.",
        )));
    }
    let is_logout_path = snap.settings.server.logout_paths.contains(&target.path);
    ctx.target = Some(target);

    let authed = match judge(shared, snap, route, ctx.request.cookies()).await {
        Verdict::Allowed(authed) => authed,
        // 4. public: forward, identity only if a session happens to be valid
        Verdict::Public {
            authed: Some(authed),
            ..
        } => authed,
        Verdict::Public {
            authed: None,
            stale_cookie,
        } => {
            ctx.clear_session_cookie = stale_cookie;
            return Ok(None);
        }
        // 5. login required
        Verdict::LoginRequired(auth) => {
            let rd = ctx.target.as_ref().map(|t| t.path_and_query());
            let rd = rd.as_deref().unwrap_or("/");
            return Ok(Some(login_required(snap, ctx.page_load, rd, &auth)));
        }
        Verdict::WrongGroup(authed, message) => {
            ctx.user = Some(authed.user.username.clone());
            return Ok(Some(not_in_group(snap, ctx.page_load, &message)));
        }
        Verdict::StoreDown => {
            return Ok(Some(problem(
                snap,
                ctx.page_load,
                503,
                "store_unavailable",
                "Temporarily unavailable",
                STORE_DOWN,
            )))
        }
    };

    if is_logout_path {
        // The app's own logout URL ends the gateway session too, once the
        // app has accepted the logout (a 2xx/3xx answer): a cross-site link
        // to a logout view that wants a POST signs nobody out.
        ctx.logout_on_success = Some(authed.key);
    }
    ctx.websocket = super::websocket::watched(route, session.req_header(), &authed).map(Box::new);
    ctx.identity = Some(authed.user);
    Ok(None)
}
