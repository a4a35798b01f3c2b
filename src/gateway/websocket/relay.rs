//! The relay: a loopback listener that Pingora reaches as the upstream of
//! a login route's upgrade. Each connection carries one handshake with a
//! ticket; the relay redeems it, opens the real upstream, forwards the
//! handshake without the ticket and, once the app has switched protocols,
//! keeps the connection only as long as the session lives.
//!
//! Never answers a request without a valid ticket (it closes instead, and
//! the proxy shows its 502 page), never forwards the ticket, and never
//! serves a second request on a connection.

use pingora::connectors::TransportConnector;
use pingora::protocols::Stream;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::handshake::{self, MAX_HEAD};
use super::pump::{pump, Toward};
use super::watch::until_ended;
use super::Ticket;
use crate::gateway::state::Shared;
use crate::wire::websocket::POLICY_VIOLATION;
use ring::rand::SecureRandom;

/// How long Pingora has to send the handshake it connected for.
const REQUEST_WAIT: Duration = Duration::from_secs(10);
/// The upstream's answer wait when its peer names none (DESIGN.md's
/// default `read_timeout`; the route's own is on every peer).
const ANSWER_WAIT: Duration = Duration::from_secs(60);
/// After the session ends, or one side closes: how long the pumps get to
/// finish closing.
const CLOSING_WAIT: Duration = Duration::from_secs(3);

/// Binds the relay on loopback and starts accepting; returns its address.
pub(super) async fn start(shared: Weak<Shared>) -> std::io::Result<SocketAddr> {
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await {
        Ok(l) => l,
        Err(_) => TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).await?,
    };
    let addr = listener.local_addr()?;
    tracing::debug!("websocket relay listening on {addr}");
    // The relay's own connector (no pool: each socket is one connection),
    // which connects as the proxy does: TLS verified against the system
    // roots or the route's `upstream_ca`, the route's connect timeout.
    let connector = Arc::new(TransportConnector::new(None));
    tokio::spawn(accept(listener, shared, connector));
    Ok(addr)
}

async fn accept(listener: TcpListener, shared: Weak<Shared>, connector: Arc<TransportConnector>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                tracing::warn!("websocket relay: cannot accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        tokio::spawn(connection(shared, Arc::clone(&connector), stream));
    }
}

/// Reads a head (through its blank line) and whatever followed it.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(chunk.get(..n)?);
        if let Some(end) = handshake::head_end(&buf) {
            let rest = buf.split_off(end);
            return Some((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

async fn connection(shared: Arc<Shared>, connector: Arc<TransportConnector>, mut front: TcpStream) {
    let _ = front.set_nodelay(true);
    let Ok(Some((head, body))) = tokio::time::timeout(REQUEST_WAIT, read_head(&mut front)).await
    else {
        return;
    };
    let Some((head, token)) = handshake::take_ticket(&head) else {
        tracing::warn!("websocket relay: a connection without a valid ticket, closed");
        return;
    };
    let Some(ticket) = shared.websockets.redeem(&token) else {
        tracing::warn!("websocket relay: an unknown or used ticket, closed");
        return;
    };
    // Bounded by the route's connect_timeout (TCP and TLS handshake).
    let mut back = match connector.new_stream(&ticket.peer).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("websocket relay: cannot reach {}: {e}", ticket.peer);
            return;
        }
    };
    if back.write_all(&head).await.is_err()
        || back.write_all(&body).await.is_err()
        || back.flush().await.is_err()
    {
        return;
    }
    let wait = ticket.peer.options.read_timeout.unwrap_or(ANSWER_WAIT);
    let Ok(Some((answer, early))) = tokio::time::timeout(wait, read_head(&mut back)).await else {
        tracing::warn!(
            "websocket relay: {} did not answer the handshake",
            ticket.peer
        );
        return;
    };
    if handshake::status(&answer) != Some(101) {
        // The app refused the upgrade: its answer goes back as it is, as
        // the last on this connection.
        let answer = handshake::last_on_connection(&answer);
        if front.write_all(&answer).await.is_ok() && front.write_all(&early).await.is_ok() {
            refused(front, back).await;
        }
        return;
    }
    if front.write_all(&answer).await.is_err() {
        return;
    }
    tracing::debug!(
        session = %ticket.key,
        user = ticket.user,
        "websocket opened"
    );
    upgraded(&shared, ticket, front, back, early).await;
}

/// Passes the rest of a refused upgrade's answer on. Once the proxy has
/// read it and let go (the answer says `Connection: close`), the app gets
/// a moment to close its end, however long it would keep a connection.
async fn refused(mut front: TcpStream, back: Stream) {
    let (mut front_r, mut front_w) = front.split();
    let (mut back_r, mut back_w) = tokio::io::split(back);
    let up = async {
        let _ = tokio::io::copy(&mut front_r, &mut back_w).await;
        let _ = back_w.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut back_r, &mut front_w).await;
        let _ = front_w.shutdown().await;
    };
    tokio::pin!(up, down);
    tokio::select! {
        () = &mut up => finish(down).await,
        () = &mut down => finish(up).await,
    }
}

/// Pumps both ways until either side closes, or until the session ends:
/// then both sides get a close frame (code 1008) at a frame boundary and
/// the connections are closed.
async fn upgraded(shared: &Shared, ticket: Ticket, front: TcpStream, back: Stream, early: Vec<u8>) {
    let mut mask = [0u8; 4];
    let _ = shared.rng.fill(&mut mask);
    let activity = AtomicBool::new(false);
    let (end_tx, end_rx) = tokio::sync::watch::channel(false);
    let (front_r, front_w) = front.into_split();
    let (back_r, back_w) = tokio::io::split(back);
    let to_server = pump(
        front_r,
        back_w,
        Vec::new(),
        Toward::Server { mask },
        end_rx.clone(),
        Some(&activity),
    );
    let to_client = pump(back_r, front_w, early, Toward::Client, end_rx, None);
    let watcher = until_ended(shared, ticket.key, &activity);
    tokio::pin!(to_server, to_client, watcher);
    let reason = tokio::select! {
        // One side is done: the other gets a moment to finish too, so a
        // connection left half open (a client gone, an app keeping its
        // end) does not keep a task checking a session for nobody.
        () = &mut to_server => return finish(to_client).await,
        () = &mut to_client => return finish(to_server).await,
        reason = &mut watcher => reason,
    };
    tracing::info!(
        target: "gatehouse::audit",
        event = "websocket_closed",
        user = ticket.user,
        session = %ticket.key,
        reason = reason.as_str(),
        code = POLICY_VIOLATION,
        "websocket closed: its session ended"
    );
    let _ = end_tx.send(true);
    finish(async { tokio::join!(to_server, to_client) }).await;
}

/// Waits for what is left of the pumps, at most `CLOSING_WAIT`; dropping
/// them closes whatever is still open.
async fn finish<F: std::future::Future>(rest: F) {
    let _ = tokio::time::timeout(CLOSING_WAIT, rest).await;
}
