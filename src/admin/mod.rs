//! The admin listener: `/health`, `/ready`, `/metrics`, and the session API
//! (`/api/...`, bearer token when configured). Also the small HTTP client
//! the `gatehouse sessions` commands use to reach it.

pub mod api;
pub mod client;
pub mod table;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

use crate::gateway::state::Shared;

pub struct AdminApp {
    pub shared: Arc<Shared>,
    /// The token from the config the listener was opened with. Fixed for
    /// the life of the listener: a reload cannot drop it while the listener
    /// stays where it was bound.
    pub token: Option<String>,
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, http: &mut ServerSession) -> http::Response<Vec<u8>> {
        while let Ok(Some(_)) = http.read_request_body().await {}
        let req = http.req_header();
        let authorization = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // A browser page on this machine could POST here (no preflight for
        // a simple request); the CLI and scrapers send no Origin.
        let from_browser = req.headers.contains_key(http::header::ORIGIN);
        let answer = if from_browser {
            api::refuse_browser()
        } else {
            api::handle(
                &self.shared,
                self.token.as_deref(),
                req.method.as_str(),
                req.uri.path(),
                req.uri.query().unwrap_or(""),
                authorization.as_deref(),
            )
            .await
        };
        http::Response::builder()
            .status(answer.status)
            .header("Content-Type", answer.content_type)
            .header("Content-Length", answer.body.len())
            .header("Cache-Control", "no-store")
            .body(answer.body.into_bytes())
            .unwrap_or_default()
    }
}
