//! WebSockets through the real gateway binary to a real WebSocket echo
//! app (tokio-tungstenite on both ends): a login route's socket needs a
//! live session to open and is closed with 1008 within 2 s of that
//! session ending (logout in another tab, revoke-all, a logout on another
//! instance of a Redis fleet, the idle timeout); the client's data frames
//! keep the session alive; public routes pass sockets through unchanged.
// The handshake callback's error type is tungstenite's, large or not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod common;

use common::redis::RedisServer;
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// DESIGN.md §6: a socket is closed within this long of its session ending.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// Each handshake the app accepted: its headers, in order.
type Handshakes = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A WebSocket echo app that records the handshake headers it accepted;
/// it refuses upgrades to `/refuse` with `403`, and a plain request gets
/// `200 ok`.
struct EchoApp {
    addr: SocketAddr,
    handshakes: Handshakes,
}

impl EchoApp {
    async fn start() -> EchoApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&handshakes);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    if !asks_for_upgrade(&stream).await {
                        return plain_ok(stream).await;
                    }
                    let record =
                        |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                            if req.uri().path() == "/refuse" {
                                let mut no = ErrorResponse::new(Some("not here".into()));
                                *no.status_mut() = http::StatusCode::FORBIDDEN;
                                return Err(no);
                            }
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (
                                        k.as_str().to_string(),
                                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                    )
                                })
                                .collect();
                            seen.lock().unwrap().push(headers);
                            Ok(resp)
                        };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await
                    else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        EchoApp { addr, handshakes }
    }

    fn handshakes(&self) -> Vec<Vec<(String, String)>> {
        self.handshakes.lock().unwrap().clone()
    }

    /// The values of `name` in the last handshake the app accepted.
    fn last_header(&self, name: &str) -> Vec<String> {
        let all = self.handshakes();
        let last = all.last().expect("the app accepted no handshake");
        last.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Whether the request head waiting on `stream` asks for an upgrade
/// (looked at without reading it).
async fn asks_for_upgrade(stream: &TcpStream) -> bool {
    let mut buf = vec![0u8; 8192];
    loop {
        let Ok(n) = stream.peek(&mut buf).await else {
            return false;
        };
        let head = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
        if head.contains("\r\n\r\n") || n == 0 || n == buf.len() {
            return head.contains("\r\nupgrade:");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn plain_ok(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 8192];
    let _ = stream.read(&mut buf).await;
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .await;
}

/// Opens `ws://{gw}{path}` with the browser's cookies (if any) and extra
/// headers; the socket, or the HTTP status the gateway refused it with.
async fn open(
    gw: &Gateway,
    path: &str,
    browser: Option<&Browser>,
    headers: &[(&str, &str)],
) -> Result<Socket, u16> {
    let mut req = format!("ws://{}{path}", gw.addr)
        .into_client_request()
        .unwrap();
    if let Some(b) = browser {
        req.headers_mut()
            .insert("Cookie", b.cookie_header().parse().unwrap());
    }
    for (k, v) in headers {
        req.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse::<http::HeaderValue>().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            assert_eq!(resp.status(), 101);
            Ok(ws)
        }
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("websocket handshake failed: {e}"),
    }
}

/// Sends `text` and waits for the echo.
async fn echoes(ws: &mut Socket, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("no echo within 5 s")
        .expect("the socket ended")
        .expect("socket error");
    assert_eq!(reply, Message::text(text));
}

/// Waits (up to `limit`) for the close frame, and how long it took.
async fn close_frame(ws: &mut Socket, limit: Duration) -> (CloseFrame, Duration) {
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => return (frame, start.elapsed()),
            Ok(Some(Ok(Message::Close(None)))) => panic!("closed without a code"),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("socket error instead of a close frame: {e}"),
            Ok(None) => panic!("the connection ended without a close frame"),
            Err(_) => panic!("still open after {limit:?}"),
        }
    }
}

/// Asserts the socket is closed for policy within 2 s of `since`, and
/// returns the latency.
async fn closed_for_policy(ws: &mut Socket, since: Instant) -> Duration {
    let (frame, _) = close_frame(ws, CLOSE_WITHIN + Duration::from_secs(1)).await;
    let latency = since.elapsed();
    assert_eq!(frame.code, CloseCode::Policy, "{frame:?}");
    assert_eq!(frame.reason.as_str(), "session ended");
    assert!(
        latency < CLOSE_WITHIN,
        "closed {latency:?} after the session ended"
    );
    latency
}

/// Logs out through the logout page, as another tab of the same browser.
async fn logout(tab: &mut Browser) {
    let confirm = tab.page("/.gatehouse/logout").await;
    let token = confirm.field("csrf_token");
    let r = tab
        .post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_socket_works_and_the_app_learns_who_it_is() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(app.addr, ""));
    let alice = gw.signed_in("alice", ALICE_PASSWORD).await;

    // A spoofed identity and a forged relay ticket ride along: neither
    // reaches the app, and the socket opens all the same.
    let mut ws = open(
        &gw,
        "/ws",
        Some(&alice),
        &[
            ("X-Remote-User", "mallory"),
            ("x_remote_groups", "admins"),
            ("X-Gatehouse-Relay", "forged"),
        ],
    )
    .await
    .expect("refused");
    echoes(&mut ws, "hello").await;
    // A message far larger than one read, in one frame, comes back intact.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    let back = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(back.into_data().as_ref(), big.as_slice());
    echoes(&mut ws, "after").await;

    assert_eq!(app.last_header("x-remote-user"), ["alice"]);
    assert!(app.last_header("x-remote-groups") != ["admins"]);
    assert!(app.last_header("x-gatehouse-relay").is_empty());
    assert!(
        app.last_header("cookie")
            .iter()
            .all(|c| !c.contains("gatehouse=")),
        "the session cookie reached the app"
    );
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_there_is_no_upgrade() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(app.addr, ""));

    assert_eq!(open(&gw, "/ws", None, &[]).await.err(), Some(401));
    // A spoofed identity header is no session.
    for (name, value) in [
        ("X-Remote-User", "alice"),
        ("x-remote_user", "alice"),
        ("X-Forwarded-User", "alice"),
    ] {
        assert_eq!(
            open(&gw, "/ws", None, &[(name, value)]).await.err(),
            Some(401),
            "{name}"
        );
    }
    // Nor is a cookie the store does not know.
    let mut stranger = Browser::new(&gw.url("/"));
    stranger.cookies.insert("gatehouse".into(), "A".repeat(43));
    assert_eq!(
        open(&gw, "/ws", Some(&stranger), &[]).await.err(),
        Some(401)
    );
    assert!(
        app.handshakes().is_empty(),
        "a refused upgrade reached the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_in_another_tab_closes_the_socket_with_1008() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(app.addr, ""));
    let alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut ws = open(&gw, "/ws", Some(&alice), &[]).await.expect("refused");
    echoes(&mut ws, "before").await;

    let mut other_tab = alice.at(&gw.url("/"));
    let ended = Instant::now();
    logout(&mut other_tab).await;
    let latency = closed_for_policy(&mut ws, ended).await;
    eprintln!("close after logout: {} ms", latency.as_millis());
    assert!(gw.log().contains("websocket_closed"), "{}", gw.log());
    // And the same cookie cannot open a new one.
    assert_eq!(open(&gw, "/ws", Some(&alice), &[]).await.err(), Some(401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_all_closes_every_socket_with_1008() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(app.addr, "").replace(
        "[server]\n",
        "[server]\nadmin_token_file = \"admin.token\"\n",
    ));
    let alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let bob = gw.signed_in("bob", BOB_PASSWORD).await;
    let mut a = open(&gw, "/ws", Some(&alice), &[]).await.expect("refused");
    let mut b = open(&gw, "/ws", Some(&bob), &[]).await.expect("refused");
    echoes(&mut a, "a").await;
    echoes(&mut b, "b").await;

    let ended = Instant::now();
    let (status, body) = gw.admin("POST", "/api/revoke-all", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let (la, lb) = tokio::join!(
        closed_for_policy(&mut a, ended),
        closed_for_policy(&mut b, ended)
    );
    eprintln!(
        "close after revoke-all: {} ms, {} ms",
        la.as_millis(),
        lb.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_another_instance_of_the_fleet_closes_the_socket() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let app = EchoApp::start().await;
    let cfg = config(
        app.addr,
        &format!("store = \"redis\"\nredis_url = \"{}\"\n", redis.url()),
    )
    .replace("[server]\n", "[server]\nsecret_file = \"secret.key\"\n");
    let a = Gateway::start(&cfg);
    let b = Gateway::start(&cfg);
    for gw in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gw
            .admin("GET", "/metrics", None)
            .await
            .1
            .contains("gatehouse_session_cache_following 1")
        {
            assert!(Instant::now() < deadline, "the cache never followed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let on_a = a.signed_in("alice", ALICE_PASSWORD).await;
    let mut on_b = on_a.at(&b.url("/"));
    let mut ws_a = open(&a, "/ws", Some(&on_a), &[]).await.expect("refused");
    let mut ws_b = open(&b, "/ws", Some(&on_b), &[]).await.expect("refused");
    echoes(&mut ws_a, "a").await;
    echoes(&mut ws_b, "b").await;

    let ended = Instant::now();
    logout(&mut on_b).await;
    let (la, lb) = tokio::join!(
        closed_for_policy(&mut ws_a, ended),
        closed_for_policy(&mut ws_b, ended)
    );
    eprintln!(
        "close after a logout on the other instance: {} ms (this one: {} ms)",
        la.as_millis(),
        lb.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_traffic_keeps_an_idle_session_alive_and_silence_closes_it() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(app.addr, "idle_timeout = \"3s\"\n"));
    let mut busy_user = gw.signed_in("alice", ALICE_PASSWORD).await;
    let silent_user = gw.signed_in("bob", BOB_PASSWORD).await;
    let mut busy = open(&gw, "/ws", Some(&busy_user), &[])
        .await
        .expect("refused");
    let mut silent = open(&gw, "/ws", Some(&silent_user), &[])
        .await
        .expect("refused");
    let opened = Instant::now();

    let chatter = async {
        // One message a second for twice the idle timeout.
        for i in 0..6 {
            echoes(&mut busy, &format!("tick {i}")).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let silence = async {
        let (frame, _) = close_frame(&mut silent, Duration::from_secs(3) + CLOSE_WITHIN).await;
        (frame, opened.elapsed())
    };
    let ((), (frame, after)) = tokio::join!(chatter, silence);
    assert_eq!(frame.code, CloseCode::Policy, "{frame:?}");
    assert!(
        after >= Duration::from_millis(2500),
        "closed after only {after:?} of silence"
    );
    eprintln!(
        "silent socket closed {} ms after it opened",
        after.as_millis()
    );

    // Past twice the idle timeout, the busy socket and its session live on.
    assert!(opened.elapsed() > Duration::from_secs(6));
    echoes(&mut busy, "still here").await;
    let r = busy_user.page("/app/").await;
    assert_eq!(
        r.status,
        200,
        "the busy session timed out: {:?}",
        r.header("location")
    );
    assert_eq!(r.body, "ok");
    let r = silent_user.at(&gw.url("/")).page("/app/").await;
    assert_eq!(r.status, 303);
    assert!(r.location().ends_with("reason=idle"), "{}", r.location());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_route_passes_sockets_through_unchanged() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(app.addr, ""));
    let mut ws = open(&gw, "/static/ws", None, &[]).await.expect("refused");
    echoes(&mut ws, "anyone").await;
    assert!(app.last_header("x-remote-user").is_empty());
    assert!(app.last_header("x-gatehouse-relay").is_empty());
    assert_eq!(app.last_header("upgrade"), ["websocket"]);

    // Not tied to a session either: signing out does not touch it.
    let alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut with_session = open(&gw, "/static/ws", Some(&alice), &[])
        .await
        .expect("refused");
    echoes(&mut with_session, "public").await;
    assert_eq!(app.last_header("x-remote-user"), ["alice"]);
    // The same session's socket on a login route is the yardstick: once it
    // has been closed, the public one would have been too.
    let mut login_socket = open(&gw, "/ws", Some(&alice), &[]).await.expect("refused");
    let ended = Instant::now();
    logout(&mut alice.at(&gw.url("/"))).await;
    closed_for_policy(&mut login_socket, ended).await;
    echoes(&mut with_session, "still open").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_the_app_refuses_comes_back_as_the_app_said() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(app.addr, ""));
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    assert_eq!(
        open(&gw, "/refuse", Some(&alice), &[]).await.err(),
        Some(403)
    );
    // Requests after it are served as usual, and sockets still open.
    assert_eq!(alice.page("/app/").await.body, "ok");
    let mut ws = open(&gw, "/ws", Some(&alice), &[]).await.expect("refused");
    echoes(&mut ws, "fine").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_closes_the_evicted_device_socket() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(
        app.addr,
        "max_devices = 1\non_device_limit = \"evict_oldest\"\n",
    ));
    let first = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut ws = open(&gw, "/ws", Some(&first), &[]).await.expect("refused");
    echoes(&mut ws, "first device").await;
    let ended = Instant::now();
    let _second = gw.signed_in("alice", ALICE_PASSWORD).await;
    let latency = closed_for_policy(&mut ws, ended).await;
    eprintln!("close after an eviction: {} ms", latency.as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_on_another_device_closes_the_socket() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(app.addr, ""));
    let phone = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut laptop = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut ws = open(&gw, "/ws", Some(&phone), &[]).await.expect("refused");
    echoes(&mut ws, "phone").await;

    let token = laptop
        .page("/.gatehouse/password")
        .await
        .field("csrf_token");
    let new_password = "a-brand-new-alice-password";
    let ended = Instant::now();
    let r = laptop
        .post_form(
            "/.gatehouse/password",
            &[
                ("current", ALICE_PASSWORD),
                ("new", new_password),
                ("confirm", new_password),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let latency = closed_for_policy(&mut ws, ended).await;
    eprintln!("close after a password change: {} ms", latency.as_millis());
    // The device that changed it keeps its session and may open sockets.
    let mut own = open(&gw, "/ws", Some(&laptop), &[]).await.expect("refused");
    echoes(&mut own, "laptop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_absolute_timeout_closes_even_a_busy_socket() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(
        app.addr,
        "idle_timeout = \"3s\"\nabsolute_timeout = \"4s\"\n",
    ));
    let signed_in = Instant::now();
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut ws = open(&gw, "/ws", Some(&alice), &[]).await.expect("refused");
    // Traffic keeps the idle timeout away, not the absolute one.
    let closed = loop {
        ws.send(Message::text("busy")).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.expect("no close code"),
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(other) => panic!("socket ended without a close frame: {other:?}"),
        }
        assert!(
            signed_in.elapsed() < Duration::from_secs(4) + CLOSE_WITHIN,
            "still open past the absolute timeout"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let after = signed_in.elapsed();
    assert_eq!(closed.code, CloseCode::Policy);
    assert!(
        after >= Duration::from_millis(3500),
        "closed after only {after:?}"
    );
    eprintln!(
        "busy socket closed {} ms after sign-in (absolute timeout 4 s)",
        after.as_millis()
    );
    let r = alice.page("/app/").await;
    assert!(r.location().ends_with("reason=expired"), "{}", r.location());
}

/// The `websocket_closed` audit lines the gateway has logged.
fn closed_lines(gw: &Gateway) -> Vec<String> {
    gw.log()
        .lines()
        .filter(|l| l.contains("websocket_closed"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_invalidation_closes_the_socket_and_spares_exempt_groups() {
    let app = EchoApp::start().await;
    // Fires every second; admins (alice) are exempt.
    let extra = "[[invalidation.schedule]]\ncron = \"* * * * * *\"\ntimezone = \"UTC\"\nexempt_groups = [\"admins\"]\n";
    let gw = Gateway::start(&config(app.addr, extra));
    let alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut exempt = open(&gw, "/ws", Some(&alice), &[]).await.expect("refused");
    // Bob's session lives until the next fire, at most a second: sign in
    // again until the upgrade lands before it.
    let (mut ws, opened) = loop {
        let bob = gw.signed_in("bob", BOB_PASSWORD).await;
        if let Ok(ws) = open(&gw, "/ws", Some(&bob), &[]).await {
            break (ws, Instant::now());
        }
    };
    let (frame, _) = close_frame(&mut ws, Duration::from_secs(1) + CLOSE_WITHIN).await;
    assert_eq!(frame.code, CloseCode::Policy);
    eprintln!(
        "socket closed {} ms after it opened (a schedule firing every second)",
        opened.elapsed().as_millis()
    );
    let lines = closed_lines(&gw);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("bob") && l.contains("scheduled")),
        "{lines:?}"
    );
    echoes(&mut exempt, "exempt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_disabled_by_a_reload_loses_the_socket() {
    let app = EchoApp::start().await;
    let gw = Gateway::start(&config(app.addr, ""));
    let alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let bob = gw.signed_in("bob", BOB_PASSWORD).await;
    let mut ws = open(&gw, "/ws", Some(&alice), &[]).await.expect("refused");
    let mut other = open(&gw, "/ws", Some(&bob), &[]).await.expect("refused");
    echoes(&mut ws, "before").await;

    // Nothing in the session store changes: only the periodic check sees it.
    let users = users_toml().replacen(
        "groups = [\"staff\", \"admins\"]\n",
        "groups = [\"staff\", \"admins\"]\ndisabled = true\n",
        1,
    );
    std::fs::write(gw.dir().join("users.toml"), users).unwrap();
    let log = gw.reload();
    let reloaded = Instant::now();
    assert!(!log.contains("config reload failed"), "{log}");
    let latency = closed_for_policy(&mut ws, reloaded).await;
    eprintln!(
        "close after a reload disabled the user: {} ms",
        latency.as_millis()
    );
    echoes(&mut other, "bob is still here").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_is_down_gets_the_502_answer() {
    // Nobody listens there.
    let down: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let gw = Gateway::start(&config(down, ""));
    let alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    assert_eq!(open(&gw, "/ws", Some(&alice), &[]).await.err(), Some(502));
    assert_eq!(open(&gw, "/static/ws", None, &[]).await.err(), Some(502));
}

/// A WebSocket echo app behind TLS, its certificate signed by itself for
/// 127.0.0.1: its address and the certificate (PEM) to trust.
async fn tls_echo_app() -> (SocketAddr, String) {
    pingora::tls::install_default_crypto_provider();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let private = pingora::tls::PrivateKeyDer::try_from(signing_key.serialize_der()).unwrap();
    let config = pingora::tls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], private)
        .unwrap();
    let acceptor = pingora::tls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, cert.pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_to_an_upstream_tls_app_is_verified_and_closed_on_logout() {
    let (tls_app, own_cert) = tls_echo_app().await;
    let plain = EchoApp::start().await;
    let routes = format!(
        "\n[[route]]\npath_prefix = \"/secure/\"\nupstream = \"{tls_app}\"\naccess = \"login\"\nupstream_tls = true\nupstream_ca = \"app.pem\"\n\n\
         [[route]]\npath_prefix = \"/untrusted/\"\nupstream = \"{tls_app}\"\naccess = \"login\"\nupstream_tls = true\n"
    );
    let gw = Gateway::start_with_files(&config(plain.addr, &routes), &[("app.pem", &own_cert)]);
    let alice = gw.signed_in("alice", ALICE_PASSWORD).await;

    // Relayed over TLS, verified against the route's upstream_ca.
    let mut ws = open(&gw, "/secure/ws", Some(&alice), &[])
        .await
        .expect("refused");
    echoes(&mut ws, "over tls").await;
    // A certificate the system roots do not vouch for: no socket, never
    // a fallback to an unverified or a plain connection.
    assert_eq!(
        open(&gw, "/untrusted/ws", Some(&alice), &[]).await.err(),
        Some(502)
    );

    let mut other_tab = alice.at(&gw.url("/"));
    let ended = Instant::now();
    logout(&mut other_tab).await;
    let latency = closed_for_policy(&mut ws, ended).await;
    eprintln!(
        "close after logout (upstream_tls): {} ms",
        latency.as_millis()
    );
}
