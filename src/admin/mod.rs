//! The admin listener: `/health`, `/ready`, `/metrics`, and the session API
//! (`/api/...`: a bearer token, or an explicit opt-in to none). Every
//! endpoint answers only requests addressed to a loopback name or a
//! configured one (DNS rebinding), and never a web page (`Origin`). Also
//! the small HTTP client the `gatehouse sessions` commands use to reach it.

pub mod api;
pub mod client;
pub mod host;
pub mod table;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::gateway::state::Shared;
use api::{Answer, ApiAccess};

pub struct AdminApp {
    pub shared: Arc<Shared>,
    /// Who may call `/api/*`, from the config the listener was opened
    /// with. Fixed for the life of the listener: a reload cannot drop the
    /// token or open the API while the listener stays where it was bound.
    pub access: ApiAccess,
    /// Where the listener is bound (its own address is an accepted `Host`).
    pub listen: SocketAddr,
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, http: &mut ServerSession) -> http::Response<Vec<u8>> {
        while let Ok(Some(_)) = http.read_request_body().await {}
        let answer = self.answer(http).await;
        http::Response::builder()
            .status(answer.status)
            .header("Content-Type", answer.content_type)
            .header("Content-Length", answer.body.len())
            .header("Cache-Control", "no-store")
            .body(answer.body.into_bytes())
            .unwrap_or_default()
    }
}

impl AdminApp {
    async fn answer(&self, http: &ServerSession) -> Answer {
        let req = http.req_header();
        let hosts = req.headers.get_all(http::header::HOST);
        if hosts.iter().count() > 1 {
            return api::error(400, "bad_request", "more than one Host header");
        }
        let host = req
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| hosts.iter().next().map(|h| h.to_str().unwrap_or("")));
        let http10 = req.version == http::Version::HTTP_10;
        let configured = &self.shared.snapshot.load().settings.server.admin_hosts;
        if !host::allowed(host, http10, Some(self.listen), configured) {
            return api::error(
                421,
                "misdirected_request",
                "this listener answers only loopback names and server.admin_hosts",
            );
        }
        // A browser page on this machine could POST here (no preflight for
        // a simple request); the CLI and scrapers send no Origin.
        if req.headers.contains_key(http::header::ORIGIN) {
            return api::refuse_browser();
        }
        let authorization = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        api::handle(
            &self.shared,
            &self.access,
            req.method.as_str(),
            req.uri.path(),
            req.uri.query().unwrap_or(""),
            authorization,
        )
        .await
    }
}
