//! What changes when `[server.tls]` is on: plain listeners send every
//! request to the same URL on https (308, which keeps the method and body,
//! as Caddy and Traefik do), answers over TLS carry
//! `Strict-Transport-Security` when `hsts` is set, and the app hears
//! `X-Forwarded-Proto: https`. Forward auth (`{prefix}/auth`) is answered
//! on plain listeners as before: a proxy in front asks it, never a browser.
//! Never redirects to a host the request did not name.

use async_trait::async_trait;
use pingora::modules::http::{HttpModule, HttpModuleBuilder, Module};
use pingora::proxy::Session;
use std::sync::Arc;

use super::pages::problem;
use super::respond::Reply;
use super::routing::under_prefix;
use super::state::{Shared, Snapshot};
use crate::metrics::Outcome;

/// Whether this request arrived over TLS.
pub fn over_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

/// `https://host[:port]target`; the port is left out when it is 443.
/// `host` is normalised (lower-case, no port, IPv6 in brackets) and
/// `target` an origin-form path and query.
pub fn https_location(host: &str, port: u16, target: &str) -> String {
    if port == 443 {
        format!("https://{host}{target}")
    } else {
        format!("https://{host}:{port}{target}")
    }
}

/// On a plain listener while TLS listeners run: the answer that sends the
/// client to https. `None` lets the request through (over TLS, no TLS
/// configured, or forward auth).
pub fn plain_to_https(
    shared: &Shared,
    snap: &Snapshot,
    session: &Session,
    path: &str,
    ctx: &mut super::RequestCtx,
) -> Option<Reply> {
    let edge = shared.tls.as_ref()?;
    if over_tls(session) {
        return None;
    }
    let prefix = snap.settings.server.prefix.as_str();
    if under_prefix(prefix, path) && path.get(prefix.len()..) == Some("/auth") {
        return None;
    }
    ctx.outcome = Some(Outcome::OwnPage);
    let host = ctx.request.host.as_deref().unwrap_or("");
    if host.is_empty() {
        return Some(problem(
            snap,
            ctx.page_load,
            400,
            "https_required",
            "Use https",
            "This site is served over https; the request named no host to send it to.",
        ));
    }
    let target = session
        .req_header()
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str());
    let location = https_location(host, edge.https_port, target);
    Some(Reply::empty(308).header("Location", location))
}

/// Adds `Strict-Transport-Security` to every answer of a TLS listener:
/// the gateway's own pages, its error pages and the app's answers alike
/// (the app's own value, if any, is replaced). Registered only on the TLS
/// listeners' proxy, so plain answers never carry it.
pub struct HstsOnTls {
    pub shared: Arc<Shared>,
}

impl HttpModuleBuilder for HstsOnTls {
    fn init(&self) -> Module {
        // The value in force when the request began: a reload applies to
        // the next request.
        let value = self
            .shared
            .snapshot
            .load()
            .settings
            .server
            .tls
            .as_ref()
            .and_then(|t| t.hsts)
            .map(crate::config::hsts_header);
        Box::new(Hsts(value))
    }
}

struct Hsts(Option<String>);

#[async_trait]
impl HttpModule for Hsts {
    async fn response_header_filter(
        &mut self,
        resp: &mut pingora::http::ResponseHeader,
        _end_of_stream: bool,
    ) -> pingora::Result<()> {
        if let Some(value) = &self.0 {
            resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, value.as_str())?;
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_named_unless_it_is_443() {
        assert_eq!(
            https_location("app.example.com", 443, "/a?b=c"),
            "https://app.example.com/a?b=c"
        );
        assert_eq!(
            https_location("app.example.com", 8443, "/"),
            "https://app.example.com:8443/"
        );
        assert_eq!(https_location("[::1]", 8443, "/x"), "https://[::1]:8443/x");
    }
}
