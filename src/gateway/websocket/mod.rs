//! WebSockets on `login` routes, tied to the session that opened them
//! (DESIGN.md §6). The upgrade request is
//! admitted like any request; the open connection is then closed with
//! code 1008 within about a second of its session ending, whatever ended
//! it and on whichever instance of a fleet, and the client's data frames
//! count as activity (the same throttled touch as a request).
//!
//! Pingora proxies an upgraded connection itself but calls the gateway
//! only when bytes flow, never on a timer, so it cannot close a silent
//! socket. A login route's upgrade therefore goes to the relay instead of
//! the app: an in-process loopback listener (bound on the first upgrade)
//! that Pingora reaches like any upstream. The request carries a
//! single-use, unguessable ticket in `handshake::TICKET_HEADER` naming the
//! session and the real upstream; the relay takes it out, forwards the
//! handshake, then pumps bytes both ways (`pump`) while `watch` re-checks
//! the session. Public routes never come here: Pingora passes their
//! upgrades through unchanged.
//!
//! Must never: forward a ticket, honour a ticket twice or one a client
//! sent, keep a socket open once its session is known to be over, or log
//! a session ID (only the key prefix).

pub mod handshake;
mod pump;
mod relay;
mod watch;

use parking_lot::Mutex;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use ring::rand::SecureRandom;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::authenticate::Authed;
use super::state::Shared;
use super::RequestCtx;
use crate::config::{Access, Route};
use crate::session::SessionKey;

/// A ticket not redeemed by then is forgotten: the relay is asked for it
/// within moments of its issue.
const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// A login route's upgrade request, to be relayed (set by admission).
pub struct Watched {
    key: SessionKey,
    user: String,
    /// The ticket handed to the relay for this request.
    ticket: Option<String>,
}

/// What the relay needs to serve one upgrade.
struct Ticket {
    key: SessionKey,
    user: String,
    /// The upstream the rotation chose, as the proxy would connect to it:
    /// address, `upstream_tls` with its CA and name, the timeouts.
    peer: HttpPeer,
    issued: Instant,
}

/// The relay's address and the tickets issued and not yet redeemed.
#[derive(Default)]
pub struct Relay {
    addr: tokio::sync::OnceCell<SocketAddr>,
    tickets: Mutex<HashMap<String, Ticket>>,
}

impl Relay {
    fn issue(&self, token: String, ticket: Ticket) {
        let mut tickets = self.tickets.lock();
        tickets.retain(|_, t| t.issued.elapsed() < TICKET_LIFETIME);
        tickets.insert(token, ticket);
    }

    /// The ticket, once: a second use of the same token finds nothing.
    fn redeem(&self, token: &str) -> Option<Ticket> {
        self.tickets
            .lock()
            .remove(token)
            .filter(|t| t.issued.elapsed() < TICKET_LIFETIME)
    }

    /// The relay's address, binding it and starting its accept loop on the
    /// first call.
    async fn address(&self, shared: &Arc<Shared>) -> std::io::Result<SocketAddr> {
        self.addr
            .get_or_try_init(|| relay::start(Arc::downgrade(shared)))
            .await
            .copied()
    }
}

/// Whether a request asks for a WebSocket, as Pingora decides which
/// upgrades to pass on (its default policy forwards only these; any other
/// `Upgrade` is dropped and the request proxied as a plain one).
fn is_websocket(req: &http::request::Parts) -> bool {
    req.version == http::Version::HTTP_11
        && req
            .headers
            .get(http::header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// An admitted request that must go through the relay: a WebSocket on a
/// login route.
pub fn watched(route: &Route, req: &http::request::Parts, authed: &Authed) -> Option<Watched> {
    (route.access == Access::Login && is_websocket(req)).then(|| Watched {
        key: authed.key,
        user: authed.user.username.clone(),
        ticket: None,
    })
}

/// For a watched request: a ticket for `upstream` (the peer the proxy
/// would have connected to), and the relay as the peer Pingora connects
/// to instead.
pub async fn divert(
    shared: &Arc<Shared>,
    ctx: &mut RequestCtx,
    upstream: &HttpPeer,
) -> pingora::Result<Option<Box<HttpPeer>>> {
    let Some(watched) = ctx.websocket.as_mut() else {
        return Ok(None);
    };
    let relay = shared.websockets.address(shared).await.map_err(|e| {
        pingora::Error::explain(
            pingora::ErrorType::InternalError,
            format!("websocket relay: {e}"),
        )
    })?;
    let mut bytes = [0u8; 32];
    shared.rng.fill(&mut bytes).map_err(|_| {
        pingora::Error::explain(
            pingora::ErrorType::InternalError,
            "no randomness for a websocket ticket",
        )
    })?;
    let token = crate::hex::encode(&bytes);
    shared.websockets.issue(
        token.clone(),
        Ticket {
            key: watched.key,
            user: watched.user.clone(),
            peer: upstream.clone(),
            issued: Instant::now(),
        },
    );
    watched.ticket = Some(token);
    Ok(Some(Box::new(HttpPeer::new(relay, false, String::new()))))
}

/// Puts the ticket on a request bound for the relay (after the strip rules
/// have dropped any a client sent).
pub fn label(req: &mut RequestHeader, ctx: &RequestCtx) -> pingora::Result<()> {
    if let Some(token) = ctx.websocket.as_ref().and_then(|w| w.ticket.as_ref()) {
        req.insert_header(handshake::TICKET_HEADER, token.as_str())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: http::Version, upgrade: &[&str]) -> http::request::Parts {
        let mut b = http::Request::builder().uri("/ws").version(version);
        for u in upgrade {
            b = b.header("Upgrade", *u);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn websockets_are_recognised_as_pingora_forwards_them() {
        use http::Version;
        assert!(is_websocket(&req(Version::HTTP_11, &["websocket"])));
        assert!(is_websocket(&req(Version::HTTP_11, &["WebSocket"])));
        // Pingora reads the first value only, and passes on nothing else.
        assert!(!is_websocket(&req(Version::HTTP_11, &["h2c", "websocket"])));
        assert!(!is_websocket(&req(Version::HTTP_11, &["websocket, h2c"])));
        assert!(!is_websocket(&req(Version::HTTP_11, &[])));
        assert!(!is_websocket(&req(Version::HTTP_10, &["websocket"])));
    }

    #[test]
    fn a_ticket_is_good_once() {
        let relay = Relay::default();
        let ticket = || Ticket {
            key: SessionKey([1; 32]),
            user: "alice".into(),
            peer: HttpPeer::new("127.0.0.1:1", false, String::new()),
            issued: Instant::now(),
        };
        relay.issue("t".into(), ticket());
        assert!(relay.redeem("u").is_none());
        assert!(relay.redeem("t").is_some());
        assert!(relay.redeem("t").is_none());
        let mut old = ticket();
        old.issued = Instant::now() - TICKET_LIFETIME;
        relay.issue("old".into(), old);
        assert!(relay.redeem("old").is_none());
    }
}
