//! The Pingora side: `Gateway` implements `ProxyHttp` as a short
//! dispatcher; each phase calls one function in its own module.

pub mod admission;
pub mod app_response;
pub mod assertion;
pub mod authenticate;
pub mod device_label;
pub mod forward_auth;
pub mod head_guard;
pub mod health_check;
pub mod https;
pub mod normalize;
pub mod page_load;
pub mod pages;
pub mod pending_login;
pub mod redirect;
pub mod refusal_delay;
pub mod reload;
pub mod request;
pub mod respond;
pub mod route_access;
pub mod routing;
pub mod script_injection;
pub mod sign_in;
pub mod signing;
pub mod state;
pub mod store_refusal;
pub mod throttle;
pub mod upstream_error;
pub mod upstream_health;
pub mod upstream_peer;
pub mod upstream_request;
pub mod websocket;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, ProxyWarnLogContext, Session};
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::User;
use crate::metrics::{Outcome, METRICS};
use crate::session;
use normalize::Target;
use state::{Shared, Snapshot};

/// Per-request state carried between phases.
pub struct RequestCtx {
    /// The settings this request started on; a reload does not change them.
    pub snapshot: Arc<Snapshot>,
    pub target: Option<Target>,
    pub route: Option<usize>,
    /// Who the app is told the user is: the session's user, whose
    /// identity header values are prepared once per users snapshot.
    pub identity: Option<Arc<User>>,
    /// The user of a request that is not forwarded with an identity (a
    /// refusal, forward auth), for the log; see `username()`.
    pub user: Option<String>,
    /// Tell the browser to drop the session cookie with the app's response.
    pub clear_session_cookie: bool,
    /// An app logout path: end this session if the app's answer succeeds.
    pub logout_on_success: Option<session::SessionKey>,
    pub page_load: bool,
    /// The request was for one of the gateway's own pages.
    pub own_page: bool,
    /// Status of the gateway's own answer, if it gave one.
    pub status: u16,
    /// How the request ended, when the code that answered it said so
    /// (forward auth); otherwise worked out from `status`.
    pub outcome: Option<Outcome>,
    pub started: Instant,
    /// When the request left for the app, and how long its answer took.
    pub upstream_sent: Option<Instant>,
    pub upstream_ms: Option<u64>,
    /// The upstream chosen for this request.
    pub upstream: Option<SocketAddr>,
    /// What the phases need from the request, read once at the start of
    /// `request_filter` (`request.rs`).
    pub request: request::Request,
    /// The route's upstreams this request has tried (bit i = upstream i).
    pub upstreams_tried: u64,
    /// A login route's upgrade: relayed, and closed when its session ends.
    /// Boxed, like `inject`: rare, and every request's context is moved
    /// with Pingora's per-request future, so it stays small.
    pub websocket: Option<Box<websocket::Watched>>,
    /// Puts the session.js tag into this HTML answer (`ui.inject_session_script`).
    pub inject: Option<Box<script_injection::TagInserter>>,
}

/// How a request ended, for the requests metric.
fn outcome(ctx: &RequestCtx) -> Outcome {
    if let Some(o) = ctx.outcome {
        return o;
    }
    if ctx.own_page {
        return Outcome::OwnPage;
    }
    match ctx.status {
        303 => Outcome::LoginRedirect,
        401 => Outcome::Unauthorized,
        403 => Outcome::Forbidden,
        400 | 413 | 501 => Outcome::BadRequest,
        404 => Outcome::NotFound,
        503 => Outcome::StoreUnavailable,
        502 | 504 => Outcome::UpstreamError,
        _ => Outcome::Forwarded,
    }
}

pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    pub fn new(shared: Arc<Shared>) -> Self {
        Gateway { shared }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            snapshot: self.shared.snapshot.load_full(),
            target: None,
            route: None,
            identity: None,
            user: None,
            clear_session_cookie: false,
            logout_on_success: None,
            page_load: false,
            own_page: false,
            status: 0,
            outcome: None,
            started: Instant::now(),
            upstream_sent: None,
            upstream_ms: None,
            upstream: None,
            request: request::Request::default(),
            upstreams_tried: 0,
            websocket: None,
            inject: None,
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        // Pingora closes a connection whose read buffer already holds the
        // next request unless told to serve it; RFC 9112 §9.3.2 says a
        // server answers pipelined requests in order.
        session.downstream_session.set_pipelining_enabled(true);
        head_guard::head_received(session);
        Ok(())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        admission::admit(&self.shared, session, ctx).await
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let peer = upstream_peer::select(&self.shared, ctx)?;
        // A login route's upgrade goes to the relay, which connects to the
        // chosen upstream as the proxy would (TLS, CA, timeouts) and closes
        // the socket when the session ends.
        if let Some(relay) = websocket::divert(&self.shared, ctx, &peer).await? {
            return Ok(relay);
        }
        Ok(peer)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        e: Box<pingora::Error>,
    ) -> Box<pingora::Error> {
        upstream_peer::connect_failed(&self.shared, ctx, e)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        ctx.upstream_sent = Some(Instant::now());
        upstream_request::rewrite(session, upstream_request, ctx, self.shared.clock.now())?;
        websocket::label(upstream_request, ctx)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        ctx.upstream_ms = ctx
            .upstream_sent
            .map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX));
        if let Some(addr) = ctx.upstream {
            self.shared.upstream_health.answered(addr);
        }
        app_response::finish(&self.shared, response, ctx).await?;
        ctx.inject = script_injection::begin(session.req_header(), response, ctx)?.map(Box::new);
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<std::time::Duration>> {
        if let Some(inserter) = ctx.inject.as_mut() {
            inserter.filter(body, end_of_stream);
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &pingora::Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if let Some(addr) = ctx.upstream {
            self.shared.upstream_health.failed(addr, e);
        }
        upstream_error::answer(session, e, ctx).await
    }

    /// An unreachable upstream is one outage, logged by `upstream_health`,
    /// not one Pingora error line per request; a client that went away
    /// mid-request is said at debug (its access line shows status 0).
    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, e: &pingora::Error) -> bool {
        if ctx.upstream.is_some() && upstream_health::unreachable(e) {
            return true;
        }
        let client_gone = upstream_error::status_for(e) == 0;
        if client_gone {
            tracing::debug!("the client went away: {e}");
        }
        client_gone
    }

    /// A failure on a pooled connection that Pingora retries on a fresh
    /// one is harmless: the retry's outcome is what matters (logged if it
    /// fails too). Said at debug instead of Pingora's warning.
    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        _ctx: &RequestCtx,
        e: &pingora::Error,
        context: ProxyWarnLogContext,
    ) -> bool {
        let retry = matches!(context, ProxyWarnLogContext::UpstreamRetry);
        if retry {
            tracing::debug!("upstream connection failed, retrying on a fresh one: {e}");
        }
        retry
    }

    /// What Pingora's own error lines say about a request: no query
    /// string (it may carry an app's tokens), as in the access log.
    fn request_summary(&self, session: &Session, ctx: &RequestCtx) -> String {
        let path = ctx.target.as_ref().map_or("-", |t| t.path.as_str());
        format!("{} {path}", session.req_header().method)
    }

    async fn logging(
        &self,
        session: &mut Session,
        _e: Option<&pingora::Error>,
        ctx: &mut RequestCtx,
    ) {
        let status = session
            .response_written()
            .map_or(ctx.status, |r| r.status.as_u16());
        let path = ctx.target.as_ref().map_or("-", |t| t.path.as_str());
        METRICS.request(outcome(ctx));
        tracing::info!(
            target: "gatehouse::access",
            method = %session.req_header().method,
            path,
            status,
            user = ctx.username().unwrap_or("-"),
            route = ctx.route.map_or(-1, |r| i64::try_from(r).unwrap_or(-1)),
            ms = ctx.started.elapsed().as_millis() as u64,
            upstream_ms = ctx.upstream_ms.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX)),
            "request"
        );
    }
}
