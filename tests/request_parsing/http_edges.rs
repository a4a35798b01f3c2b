//! HTTP/1.1 edge cases: transfer codings the gateway cannot pass on
//! faithfully, pipelined requests, requests without `Host`, and a copied
//! cookie replayed after its session was ended on purpose.

use crate::common::redis::RedisServer;
use crate::common::{config, Browser, Gateway, Upstream, ALICE_PASSWORD};
use crate::{send, statuses};
use std::io::{Read, Write};
use std::time::Duration;

#[tokio::test]
async fn a_transfer_coding_other_than_chunked_is_refused_everywhere() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let body = "5\r\nhello\r\n0\r\n\r\n";
    for path in ["/static/x", "/app", "/.gatehouse/login"] {
        for te in [
            &["gzip, chunked"][..],
            &["gzip", "chunked"],
            &["deflate,chunked"],
            &["identity, chunked"],
            &["x-custom, chunked"],
            &["chunked, chunked"],
        ] {
            let before = upstream.count();
            let mut req = format!("POST {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n");
            for line in te {
                req.push_str(&format!("Transfer-Encoding: {line}\r\n"));
            }
            req.push_str("\r\n");
            req.push_str(body);
            let resp = send(gw.addr, req.as_bytes());
            assert!(
                [400, 501].contains(&resp.status),
                "{path} {te:?}: {}",
                resp.head
            );
            assert_eq!(upstream.count(), before, "{path} {te:?} reached the app");
        }
    }
    // plain chunked passes, body and all
    let resp = send(
        gw.addr,
        format!("POST /static/x HTTP/1.1\r\nHost: app\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{body}").as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(upstream.last().body, b"hello");
    // the refusal says why
    let resp = send(
        gw.addr,
        format!("POST /static/x HTTP/1.1\r\nHost: app\r\nConnection: close\r\nTransfer-Encoding: gzip, chunked\r\n\r\n{body}").as_bytes(),
    );
    assert_eq!(resp.status, 501, "{}", resp.head);
    assert_eq!(resp.json()["error"], "not_implemented");
}

/// Writes every request in one write and reads until the server closes
/// (the last request asks it to).
fn pipelined(addr: std::net::SocketAddr, requests: &[&str]) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(requests.concat().as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

const OWN: &str = "GET /.gatehouse/login HTTP/1.1\r\nHost: app\r\nAccept: text/html\r\n\r\n";
const PUBLIC: &str = "GET /static/a HTTP/1.1\r\nHost: app\r\n\r\n";
const PAGE_LOAD: &str = "GET /app HTTP/1.1\r\nHost: app\r\nAccept: text/html\r\n\r\n";
const API: &str = "GET /app HTTP/1.1\r\nHost: app\r\n\r\n";
const POST_PUBLIC: &str = "POST /static/p HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhello";
const POST_LOGIN: &str = "POST /app HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhello";
const LAST: &str = "GET /static/last HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    for (requests, want) in [
        (&[OWN, LAST][..], &[200, 200][..]),
        (&[PUBLIC, LAST], &[200, 200]),
        (&[PAGE_LOAD, LAST], &[303, 200]),
        (&[API, LAST], &[401, 200]),
        (&[POST_PUBLIC, LAST], &[200, 200]),
        (
            &[PAGE_LOAD, PUBLIC, OWN, API, POST_PUBLIC, LAST],
            &[303, 200, 200, 401, 200, 200],
        ),
    ] {
        let before = upstream.count();
        let resp = pipelined(gw.addr, requests);
        assert_eq!(statuses(&resp), want, "{requests:?}:\n{resp}");
        let forwarded = requests.iter().filter(|r| r.contains("/static/")).count();
        assert_eq!(upstream.count() - before, forwarded, "{requests:?}");
        assert_eq!(upstream.last().target, "/static/last");
    }
    assert!(upstream
        .requests()
        .iter()
        .any(|r| r.target == "/static/p" && r.body == b"hello"));

    // Answered before its body was read (a refused upload may be large),
    // a request ends the connection, and says so: the client sends the
    // rest again on a new one (RFC 9112 §9.3.2).
    let resp = pipelined(gw.addr, &[POST_LOGIN, LAST]);
    assert_eq!(statuses(&resp), [401], "{resp}");
    assert!(resp.contains("Connection: close"), "{resp}");
}

#[tokio::test]
async fn http_1_1_needs_exactly_one_host() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    for (req, want) in [
        ("GET /static/x HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
        (
            "GET /app HTTP/1.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
            400,
        ),
        (
            "GET http://app/static/x HTTP/1.1\r\nConnection: close\r\n\r\n",
            400,
        ),
        (
            "GET /static/x HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            400,
        ),
        ("GET /static/x HTTP/1.0\r\n\r\n", 200),
        (
            "GET /static/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            200,
        ),
    ] {
        let before = upstream.count();
        let resp = send(gw.addr, req.as_bytes());
        assert_eq!(resp.status, want, "{req:?}: {}", resp.head);
        assert_eq!(
            upstream.count() - before,
            usize::from(want == 200),
            "{req:?}"
        );
    }
}

/// A copy of the cookie, replayed after its session ended: the page load
/// is sent to the login page, and the script told, with `reason`.
async fn assert_replay_told(gw: &Gateway, cookie: &str, reason: &str) {
    let mut thief = Browser::new(&gw.url("/"));
    thief.cookies.insert("gatehouse".into(), cookie.into());
    let r = thief.page("/app").await;
    assert_eq!(r.status, 303);
    assert!(
        r.location().ends_with(&format!("reason={reason}")),
        "{}",
        r.location()
    );
    let mut thief = Browser::new(&gw.url("/"));
    thief.cookies.insert("gatehouse".into(), cookie.into());
    let r = thief.api("/app").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["reason"], reason, "{}", r.body);
}

async fn replayed_cookies_are_told_why(extra: &str, redis: Option<&RedisServer>) {
    let upstream = Upstream::start();
    let mut text = config(upstream.addr, extra);
    if let Some(r) = redis {
        text = text
            .replace(
                "[session]\n",
                &format!(
                    "[session]\nstore = \"redis\"\nredis_url = \"{}\"\n",
                    r.url()
                ),
            )
            .replace("[server]\n", "[server]\nsecret_file = \"secret.key\"\n");
    }
    let gw = Gateway::start(&text);

    // logout
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let copy = b.session_cookie().unwrap().clone();
    let form = b.page("/.gatehouse/logout").await;
    let token = form.field("csrf_token");
    let r = b
        .post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(r.status, 303);
    assert_replay_told(&gw, &copy, "logout").await;

    // the app's own logout path
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let copy = b.session_cookie().unwrap().clone();
    assert_eq!(b.page("/accounts/logout/").await.status, 200);
    assert_replay_told(&gw, &copy, "logout").await;

    // password change: this device continues under a new ID, a copy of
    // the old one is told why it no longer works
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let copy = b.session_cookie().unwrap().clone();
    let form = b.page("/.gatehouse/password").await;
    let token = form.field("csrf_token");
    let new_password = "a-brand-new-password";
    let r = b
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
    assert_eq!(b.page("/app").await.status, 200);
    assert_replay_told(&gw, &copy, "password").await;
}

#[tokio::test]
async fn a_replayed_cookie_is_told_logout_or_password_with_the_memory_store() {
    replayed_cookies_are_told_why("", None).await;
}

#[tokio::test]
async fn a_replayed_cookie_is_told_logout_or_password_with_the_redis_store() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    replayed_cookies_are_told_why("", Some(&redis)).await;
}
