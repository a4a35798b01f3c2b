//! What an attacker sends: spoofed identity headers in every spelling,
//! open-redirect `rd` values, malformed targets, and a dead upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, raw_status, Browser, Gateway, Upstream, ALICE_PASSWORD};
use std::io::{Read, Write};

const SPOOFS: [(&str, &str); 12] = [
    ("X-Original-URL", "/admin/mallory"),
    ("X_Rewrite_URL", "/admin/mallory"),
    ("X-Real-IP", "6.6.6.6"),
    ("X-Remote-User", "mallory"),
    ("x-remote-user", "mallory"),
    ("X_Remote_User", "mallory"),
    ("Remote-User", "mallory"),
    ("X-Remote-Groups", "admins"),
    ("X-Forwarded-User", "mallory"),
    ("X-Auth-Request-Email", "mallory@evil"),
    ("X-REMOTE-EMAIL", "mallory@evil"),
    ("x_forwarded_for", "6.6.6.6"),
];

fn spoofed_request(path: &str, cookie: Option<&str>) -> String {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: app.local\r\nAccept: text/html\r\nConnection: close\r\n"
    );
    for (k, v) in SPOOFS {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    req.push_str("\r\n");
    req
}

fn assert_no_spoof(seen: &common::upstream::Recorded) {
    for prefix in [
        "x-remote-",
        "remote-",
        "x-auth-request-",
        "x-forwarded-user",
        "x-forwarded-email",
    ] {
        for (k, v) in seen.headers_like(prefix) {
            assert!(
                !v.contains("mallory") && !v.contains("admins"),
                "spoofed {k}: {v} reached the upstream: {:?}",
                seen.headers
            );
        }
    }
    assert_eq!(
        seen.headers_like("x-forwarded-for").len(),
        1,
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert!(
        seen.headers_like("x-original-url").is_empty(),
        "{:?}",
        seen.headers
    );
    assert!(
        seen.headers_like("x-rewrite-url").is_empty(),
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header_all("x-real-ip"), vec!["127.0.0.1"]);
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_app() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));

    // not signed in, public route: forwarded, but stripped
    let resp = gw.raw(&spoofed_request("/static/x.js", None));
    assert_eq!(raw_status(&resp), 200, "{resp}");
    let seen = upstream.last();
    assert_no_spoof(&seen);
    assert!(seen.header("x-remote-user").is_none());

    // not signed in, login route: never forwarded at all
    let before = upstream.count();
    let resp = gw.raw(&spoofed_request("/private", None));
    assert_eq!(raw_status(&resp), 303, "{resp}");
    assert_eq!(upstream.count(), before);

    // signed in as bob: the gateway's values replace the spoofed ones
    let mut b = Browser::new(&gw.url("/"));
    b.login("bob", common::BOB_PASSWORD, "/").await;
    for path in ["/private", "/static/x.js"] {
        let resp = gw.raw(&spoofed_request(path, Some(&b.cookie_header())));
        assert_eq!(raw_status(&resp), 200, "{resp}");
        let seen = upstream.last();
        assert_no_spoof(&seen);
        assert_eq!(
            seen.header_all("x-remote-user"),
            vec!["bob"],
            "{:?}",
            seen.headers
        );
        assert!(
            seen.header("x-remote-groups").is_none(),
            "bob has no groups"
        );
    }
}

#[tokio::test]
async fn login_redirects_stay_on_the_gateways_origin() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    for evil in [
        "//evil.com",
        "/\\evil.com",
        "https://evil.com/",
        "/%09/evil.com",
        "javascript:alert(1)",
        "http:evil.com",
        "/%2F%2Fevil.com",
        "\\\\evil.com",
    ] {
        let mut b = Browser::new(&gw.url("/"));
        let page = b
            .page(&format!(
                "/.gatehouse/login?rd={}",
                common::browser::urlencode(evil)
            ))
            .await;
        assert_eq!(page.field("rd"), "/", "the form must not carry {evil:?}");
        let token = page.field("csrf_token");
        // even posting the evil value directly does not leave the origin
        let r = b
            .post_form(
                "/.gatehouse/login",
                &[
                    ("username", "alice"),
                    ("password", ALICE_PASSWORD),
                    ("rd", evil),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{evil}: {}", r.body);
        assert_eq!(r.location(), "/", "{evil:?} escaped");
    }
}

#[test]
fn malformed_requests_get_400_never_a_crash() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    for target in ["/a%zz", "/a%00b", "/a%0d%0aX:1", "/%", "*"] {
        let resp = gw.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(raw_status(&resp), 400, "{target}: {resp}");
    }
    let resp = gw.raw("GET / HTTP/1.1\r\nHost: bad host name\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(&resp), 400, "{resp}");
    assert_eq!(upstream.count(), 0);
    // still alive and well
    let resp = gw.raw("GET /static/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(&resp), 200, "{resp}");
}

#[tokio::test]
async fn upstream_down_gets_a_clear_502() {
    let dead: std::net::SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let gw = Gateway::start(&config(dead, ""));
    let mut b = Browser::new(&gw.url("/"));

    let r = b.page("/static/app.css").await;
    assert_eq!(r.status, 502);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(
        r.body.contains("The application is not responding"),
        "{}",
        r.body
    );

    let r = b.api("/static/app.json").await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "upstream_unavailable");

    // signing in still works: the gateway is fine, only the app is down
    let r = b.login("alice", ALICE_PASSWORD, "/").await;
    assert_eq!(r.status, 303);
    assert_eq!(b.page("/").await.status, 502);
}

#[tokio::test]
async fn a_trusted_proxys_forwarding_lines_are_all_read() {
    let upstream = Upstream::start();
    let text = config(upstream.addr, "").replace(
        "threads = 1\n",
        "threads = 1\ntrusted_proxies = [\"127.0.0.0/8\"]\n",
    );
    let gw = Gateway::start(&text);
    // the client's own line first, then the proxy's: every line counts,
    // and the app is told only the part of the chain the gateway believes
    let resp = gw.raw(
        "GET /static/x HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 203.0.113.66\r\nX-Forwarded-For: 198.51.100.7\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&resp), 200, "{resp}");
    let seen = upstream.last();
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("198.51.100.7, 127.0.0.1")
    );
    assert_eq!(
        seen.header("x-real-ip"),
        Some("198.51.100.7"),
        "the nearest untrusted hop"
    );
}

#[tokio::test]
async fn a_query_may_hold_a_url_after_login() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let mut b = Browser::new(&gw.url("/"));
    let r = b
        .login("alice", ALICE_PASSWORD, "/search?u=https://example.org/a")
        .await;
    assert_eq!(r.location(), "/search?u=https://example.org/a");
}

/// The status of each response in a raw exchange, in order.
fn statuses(resp: &str) -> Vec<u16> {
    resp.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| resp.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// Reads one whole response (head and `Content-Length` body) off `stream`,
/// leaving the connection open.
fn read_response(stream: &mut std::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "closed mid-head: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

/// Every request the upstream saw, as "METHOD target".
fn seen_targets(upstream: &Upstream) -> Vec<String> {
    upstream
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect()
}

#[tokio::test]
async fn connection_header_cannot_remove_the_gateways_identity_header() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let mut b = Browser::new(&gw.url("/"));
    b.login("alice", ALICE_PASSWORD, "/").await;
    let resp = gw.raw(&format!(
        "GET /private HTTP/1.1\r\nHost: app\r\nConnection: close, X-Remote-User, X-Remote-Groups\r\nCookie: {}\r\n\r\n",
        b.cookie_header()
    ));
    assert_eq!(raw_status(&resp), 200, "{resp}");
    let seen = upstream.last();
    assert_eq!(
        seen.header("x-remote-user"),
        Some("alice"),
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.header("x-remote-groups"), Some("staff,admins"));
}

#[test]
fn smuggling_attempts_never_reach_a_login_route_unauthenticated() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let smuggled = "GET /private HTTP/1.1\r\nHost: app\r\n\r\n";
    let attempts = [
        // CL.TE: the front reads Content-Length, the back chunked (or the reverse)
        format!(
            "POST /static/x HTTP/1.1\r\nHost: app\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
            5 + smuggled.len()
        ),
        // TE.CL
        format!(
            "POST /static/x HTTP/1.1\r\nHost: app\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n",
            smuggled.len()
        ),
        // two different Content-Lengths
        format!("POST /static/x HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{smuggled}", smuggled.len()),
        // an obfuscated Transfer-Encoding
        format!("POST /static/x HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\nTransfer-Encoding: xchunked\r\n\r\n{smuggled}"),
    ];
    for (n, attack) in attempts.iter().enumerate() {
        let resp = gw.raw(attack);
        let statuses = statuses(&resp);
        let private_served = seen_targets(&upstream)
            .iter()
            .any(|t| t.ends_with(" /private"));
        assert!(
            !private_served,
            "attempt {n}: /private reached the app without a session: {:?}",
            seen_targets(&upstream)
        );
        // at most one answer: the smuggled request was never answered on its own
        assert!(statuses.len() <= 1, "attempt {n}: {statuses:?}\n{resp}");
    }
}

#[test]
fn an_http_1_0_body_is_forwarded_whole() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let resp =
        gw.raw("POST /static/form HTTP/1.0\r\nHost: app\r\nContent-Length: 11\r\n\r\nhello=world");
    assert_eq!(raw_status(&resp), 200, "{resp}");
    assert_eq!(upstream.last().body, b"hello=world");
}

#[tokio::test]
async fn an_upgrade_the_app_refuses_does_not_become_a_tunnel() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    // the app answers 200, not 101: the next request on the connection is
    // still HTTP, and still needs a session
    let upgrade =
        "GET /static/ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let private =
        "GET /private HTTP/1.1\r\nHost: app\r\nAccept: text/html\r\nConnection: close\r\n\r\n";
    let resp = gw.raw(&format!("{upgrade}{private}"));
    assert!(
        !seen_targets(&upstream)
            .iter()
            .any(|t| t.ends_with(" /private")),
        "{resp}"
    );
    // the legitimate request went through and was answered by the app
    assert_eq!(seen_targets(&upstream), ["GET /static/ws"], "{resp}");
    let answered = statuses(&resp);
    assert_eq!(answered.first(), Some(&200), "{resp}");
    // After a refused upgrade Pingora may close the connection instead of
    // serving the pipelined request (the assertion above is the one that
    // matters: it never reached the app); if it is served, it is the
    // login page
    assert!(answered[1..].iter().all(|s| *s == 303), "{resp}");

    // the same request written after the app's answer, on the same
    // connection: answered as plain HTTP, with the redirect to sign in
    let mut conn = std::net::TcpStream::connect(gw.addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    conn.write_all(upgrade.as_bytes()).unwrap();
    let first = read_response(&mut conn);
    assert_eq!(raw_status(&first), 200, "{first}");
    assert!(first.contains("\"target\":\"/static/ws\""), "{first}");
    conn.write_all(private.as_bytes()).unwrap();
    let mut second = String::new();
    conn.read_to_string(&mut second).unwrap();
    assert_eq!(raw_status(&second), 303, "{second}");
    assert!(
        second
            .lines()
            .any(|l| l.eq_ignore_ascii_case("location: /.gatehouse/login?rd=%2Fprivate")),
        "{second}"
    );
    assert_eq!(
        seen_targets(&upstream),
        ["GET /static/ws", "GET /static/ws"],
        "only the public request reached the app"
    );
}

#[tokio::test]
async fn host_case_and_absolute_form_cannot_confuse_routing() {
    let upstream = Upstream::start();
    let other = Upstream::start();
    let extra_route = format!("[[route]]\nhost = \"app.example.com\"\npath_prefix = \"/\"\nupstream = \"{}\"\naccess = \"public\"\n\n", other.addr);
    // the host route goes first: it must match whatever the case and port
    let text =
        config(upstream.addr, "").replacen("[[route]]", &format!("{extra_route}[[route]]"), 1);
    let gw = Gateway::start(&text);
    let resp = gw.raw("GET /x HTTP/1.1\r\nHost: APP.Example.COM:8080\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(&resp), 200, "{resp}");
    assert_eq!(other.count(), 1);
    // absolute-form naming the public host while Host names another: refused
    let before = (upstream.count(), other.count());
    let resp = gw.raw("GET http://app.example.com/private HTTP/1.1\r\nHost: intranet\r\nAccept: text/html\r\nConnection: close\r\n\r\n");
    assert!(matches!(raw_status(&resp), 400 | 303), "{resp}");
    assert_eq!(
        (upstream.count(), other.count()),
        before,
        "nothing forwarded"
    );
    // absolute-form that agrees with Host routes by that host
    let resp = gw.raw("GET http://intranet/private HTTP/1.1\r\nHost: intranet\r\nAccept: text/html\r\nConnection: close\r\n\r\n");
    assert_eq!(
        raw_status(&resp),
        303,
        "login route needs a session: {resp}"
    );
}

#[test]
fn a_servlet_style_dot_segment_is_refused() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    for target in [
        "/static/..;/private",
        "/static/..;jsessionid=x/private",
        "/static/.;/x",
    ] {
        let resp = gw.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(raw_status(&resp), 400, "{target}: {resp}");
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn every_state_changing_own_endpoint_wants_its_csrf_token() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let mut b = Browser::new(&gw.url("/"));
    b.login("alice", ALICE_PASSWORD, "/").await;
    let forged = [
        ("/.gatehouse/logout", vec![]),
        ("/.gatehouse/devices/revoke-others", vec![]),
        (
            "/.gatehouse/password",
            vec![
                ("current", ALICE_PASSWORD),
                ("new", "new-password-123"),
                ("confirm", "new-password-123"),
            ],
        ),
    ];
    for (path, fields) in forged {
        let r = b.post_form(path, &fields).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    assert_eq!(b.page("/").await.status, 200, "still signed in");
    assert_eq!(
        gw.login_status("alice", ALICE_PASSWORD).await,
        303,
        "the password did not change"
    );
}

#[tokio::test]
async fn own_pages_carry_the_security_headers() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let mut b = Browser::new(&gw.url("/"));
    for path in ["/.gatehouse/login", "/.gatehouse/nope", "/private"] {
        let r = b.page(path).await;
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
}
