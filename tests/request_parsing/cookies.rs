//! Cookie headers in every shape a browser (or a script) can send: the
//! signed-in user stays signed in, the app never sees a gateway cookie,
//! and the app's own cookies pass byte for byte.

use crate::common::{config, Gateway, Upstream, ALICE_PASSWORD};
use crate::send;

/// `Cookie` lines, with `@S@` standing for the session cookie's value,
/// and the app cookies that must reach the app (as the recording upstream
/// shows them: lossy UTF-8).
const SHAPES: [(&[&[u8]], &[&str]); 10] = [
    (
        &["lang=français; gatehouse=@S@; csrftoken=abc".as_bytes()],
        &["lang=français", "csrftoken=abc"],
    ),
    (
        &[b"lang=fran\xe7ais; gatehouse=@S@"],
        &["lang=fran\u{FFFD}ais"],
    ),
    (&[b"a=1", b"gatehouse=@S@; b=2"], &["a=1", "b=2"]),
    (
        &[b"gatehouse=@S@", b"lang=fran\xc3\xa7ais"],
        &["lang=français"],
    ),
    (&[b"a=1;gatehouse=@S@;;b=2;"], &["a=1", "b=2"]),
    (&[b"gatehouse=\"@S@\"; q=\"x y\""], &["q=\"x y\""]),
    (&[b"gatehouse=junk; gatehouse=@S@; a=1"], &["a=1"]),
    (
        &[b"nameless; __Host-gatehouse=forged; gatehouse-csrf=N; gatehouse=@S@"],
        &["nameless"],
    ),
    (&[b";\tgatehouse = @S@ ;  a=1 "], &["a=1"]),
    (
        &[b"a=\"\xff\"; gatehouse=@S@", b"__Host-gatehouse-csrf=N"],
        &["a=\"\u{FFFD}\""],
    ),
];

fn fill(line: &[u8], session: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.windows(3).position(|w| w == b"@S@") {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(session.as_bytes());
        rest = &rest[at + 3..];
    }
    out.extend_from_slice(rest);
    out
}

#[tokio::test]
async fn every_cookie_header_shape_keeps_the_user_signed_in_and_the_cookie_private() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let session = b.session_cookie().unwrap().clone();
    for (lines, app_cookies) in SHAPES {
        let what = String::from_utf8_lossy(&lines.join(&b" | "[..])).into_owned();
        let mut req =
            b"GET /app HTTP/1.1\r\nHost: app\r\nAccept: text/html\r\nConnection: close\r\n"
                .to_vec();
        for line in lines {
            req.extend_from_slice(b"Cookie: ");
            req.extend_from_slice(&fill(line, &session));
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"\r\n");
        let resp = send(gw.addr, &req);
        assert_eq!(resp.status, 200, "{what}: signed out? {}", resp.head);
        assert!(
            !resp
                .head
                .to_ascii_lowercase()
                .contains("set-cookie: gatehouse=;"),
            "{what}: the session cookie was cleared: {}",
            resp.head
        );
        let seen = upstream.last();
        assert_eq!(seen.header_all("x-remote-user"), vec!["alice"], "{what}");
        let cookies = seen.header_all("cookie");
        assert!(cookies.len() <= 1, "{what}: {cookies:?}");
        let sent = cookies.first().copied().unwrap_or_default();
        assert!(!sent.contains(session.as_str()), "{what}: {sent}");
        assert!(!sent.contains("gatehouse"), "{what}: {sent}");
        for c in app_cookies {
            assert!(sent.contains(c), "{what}: {c} missing from {sent:?}");
        }
    }
}

#[tokio::test]
async fn a_gateway_cookie_never_reaches_the_app_on_public_routes_either() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    for line in [
        &b"gatehouse=anything; a=1"[..],
        b"lang=fran\xe7ais; gatehouse=x",
        b"__Host-gatehouse=x;a=1",
        b"gatehouse-csrf=n; __Host-gatehouse-csrf=m",
    ] {
        let mut req =
            b"GET /static/x HTTP/1.1\r\nHost: app\r\nConnection: close\r\nCookie: ".to_vec();
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\n\r\n");
        let resp = send(gw.addr, &req);
        assert_eq!(resp.status, 200, "{}", resp.head);
        for c in upstream.last().header_all("cookie") {
            assert!(!c.contains("gatehouse"), "{c}");
        }
    }
}
