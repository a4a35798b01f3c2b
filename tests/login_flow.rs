//! End to end: a browser signs in through the gateway's page and reaches an
//! app that learns who it is from headers; signs out; scripts get JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, Browser, Gateway, Upstream, ALICE_PASSWORD, BOB_PASSWORD};

fn setup() -> (Upstream, Gateway, Browser) {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let browser = Browser::new(&gw.url("/"));
    (upstream, gw, browser)
}

#[tokio::test]
async fn page_load_without_session_is_sent_to_login_with_rd() {
    let (upstream, _gw, mut b) = setup();
    let r = b.page("/reports/2024?page=2").await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location(),
        "/.gatehouse/login?rd=%2Freports%2F2024%3Fpage%3D2"
    );
    assert_eq!(
        upstream.count(),
        0,
        "nothing reaches the app without a session"
    );
}

#[tokio::test]
async fn scripts_without_session_get_401_json() {
    let (upstream, _gw, mut b) = setup();
    for r in [
        b.api("/api/items").await,
        b.get_with(
            "/api/items",
            &[
                ("Accept", "text/html"),
                ("X-Requested-With", "XMLHttpRequest"),
            ],
        )
        .await,
        b.post_form("/api/items", &[("a", "1")]).await,
    ] {
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let j = r.json();
        assert_eq!(j["error"], "login_required");
        assert!(j["login_url"]
            .as_str()
            .unwrap()
            .starts_with("/.gatehouse/login?rd=%2Fapi%2Fitems"));
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn right_password_signs_in_and_the_app_learns_who() {
    let (upstream, _gw, mut b) = setup();
    let r = b.login("alice", ALICE_PASSWORD, "/reports?x=1").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/reports?x=1");

    let set = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("gatehouse="))
        .expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    let id = b.session_cookie().unwrap().clone();
    let (secret, issued) = id.split_once('.').expect("ID.issued");
    assert_eq!(secret.len(), 43, "256-bit ID in base64url");
    assert!(issued.parse::<u64>().is_ok(), "{id}");

    // the app's own cookie rides along; the gateway's never does
    b.cookies.insert("sessionid".into(), "app-cookie".into());
    let r = b.page("/reports?x=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = upstream.last();
    assert_eq!(seen.target, "/reports?x=1");
    assert_eq!(seen.header("x-remote-user"), Some("alice"));
    assert_eq!(seen.header("x-remote-groups"), Some("staff,admins"));
    assert_eq!(seen.header("x-remote-email"), Some("alice@example.com"));
    assert_eq!(seen.header("x-remote-name"), Some("Alice Example"));
    let cookie = seen.header("cookie").unwrap_or("");
    assert!(cookie.contains("sessionid=app-cookie"), "{cookie}");
    assert!(
        !cookie.contains("gatehouse"),
        "gateway cookie leaked upstream: {cookie}"
    );
    assert!(!cookie.contains(&id));
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let (upstream, _gw, mut b) = setup();
    let page = b.page("/.gatehouse/login?rd=%2Fhome").await;
    let token = page.field("csrf_token");
    let attempt = |user: &'static str, pw: &'static str| {
        let token = token.clone();
        (user, pw, token)
    };
    let mut bodies = Vec::new();
    for (user, pw, token) in [
        attempt("alice", "wrong-password"),
        attempt("nobody-here", "wrong-password"),
        attempt("carol", BOB_PASSWORD),
    ] {
        let r = b
            .post_form(
                "/.gatehouse/login",
                &[
                    ("username", user),
                    ("password", pw),
                    ("rd", "/home"),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(r.status, 401, "{user}: {}", r.body);
        assert!(r.body.contains("Incorrect username or password."));
        assert!(b.session_cookie().is_none());
        // The form gives back the name as typed; nothing else may differ.
        let typed = format!("name=\"username\" value=\"{user}\"");
        assert!(r.body.contains(&typed), "{}", r.body);
        bodies.push(r.body.replace(&typed, "name=\"username\" value=\"…\""));
    }
    assert_eq!(
        bodies[0], bodies[1],
        "unknown user must be indistinguishable from a wrong password"
    );
    assert_eq!(
        bodies[0], bodies[2],
        "a disabled user must be indistinguishable too"
    );
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn login_without_the_forms_csrf_token_is_refused() {
    let (_upstream, _gw, mut b) = setup();
    let _ = b.page("/.gatehouse/login").await;
    let r = b
        .post_form(
            "/.gatehouse/login",
            &[
                ("username", "alice"),
                ("password", ALICE_PASSWORD),
                ("rd", "/"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(b.session_cookie().is_none());

    // a token from another browser (another nonce cookie) does not work either
    let mut other = Browser::new(&_gw.url("/"));
    let foreign = other.page("/.gatehouse/login").await.field("csrf_token");
    let r = b
        .post_form(
            "/.gatehouse/login",
            &[
                ("username", "alice"),
                ("password", ALICE_PASSWORD),
                ("rd", "/"),
                ("csrf_token", &foreign),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(b.session_cookie().is_none());
}

#[tokio::test]
async fn logout_ends_the_session_server_side() {
    let (upstream, gw, mut b) = setup();
    assert_eq!(b.login("alice", ALICE_PASSWORD, "/").await.status, 303);
    let old_cookies = b.cookies.clone();

    let confirm = b.page("/.gatehouse/logout").await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("alice"));
    let token = confirm.field("csrf_token");

    // a forged logout (no token) does nothing
    let r = b.post_form("/.gatehouse/logout", &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(b.page("/").await.status, 200);

    let r = b
        .post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/.gatehouse/login?reason=logout");
    assert_eq!(r.header("clear-site-data"), Some("\"cookies\""));
    assert!(r
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("gatehouse=;") && c.contains("Max-Age=0")));
    assert!(b.session_cookie().is_none());

    // the old cookie, replayed, is worth nothing: server-side logout
    let mut replay = Browser::new(&gw.url("/"));
    replay.cookies = old_cookies;
    let before = upstream.count();
    let r = replay.page("/").await;
    assert_eq!(r.status, 303);
    assert!(r.location().starts_with("/.gatehouse/login"));
    assert_eq!(upstream.count(), before);

    let login = b.page("/.gatehouse/login?reason=logout").await;
    assert!(login.body.contains("You have been signed out."));
}

#[tokio::test]
async fn the_apps_logout_link_ends_the_gateway_session_too() {
    let (upstream, _gw, mut b) = setup();
    b.login("alice", ALICE_PASSWORD, "/").await;
    let r = b.page("/accounts/logout/").await;
    assert_eq!(r.status, 200, "the app's logout view still runs");
    assert_eq!(upstream.last().header("x-remote-user"), Some("alice"));
    assert!(r.set_cookies().iter().any(|c| c.starts_with("gatehouse=;")));
    let r = b.page("/").await;
    assert_eq!(r.status, 303);
}

#[tokio::test]
async fn a_logout_the_app_refuses_does_not_end_the_gateway_session() {
    let (_upstream, _gw, mut b) = setup();
    b.login("alice", ALICE_PASSWORD, "/").await;
    // e.g. Django 5's LogoutView answers a cross-site GET with 405
    let r = b.page("/accounts/logout/?status=405").await;
    assert_eq!(r.status, 405);
    assert!(!r.set_cookies().iter().any(|c| c.starts_with("gatehouse=")));
    assert_eq!(b.page("/").await.status, 200, "still signed in");
}

#[tokio::test]
async fn a_logout_link_without_a_session_does_not_wipe_the_sites_cookies() {
    let (_upstream, _gw, mut b) = setup();
    let r = b.page("/.gatehouse/logout").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("clear-site-data"), None);
}

#[tokio::test]
async fn public_routes_need_no_login_but_dot_segments_cannot_reach_them() {
    let (upstream, gw, mut b) = setup();
    let r = b.page("/static/app.css").await;
    assert_eq!(r.status, 200);
    assert_eq!(upstream.last().target, "/static/app.css");
    assert!(upstream.last().header("x-remote-user").is_none());

    for encoded in [
        "/static/..%2Fprivate",
        "/static/..%2fprivate",
        "/static/..%5Cprivate",
    ] {
        let resp = gw.raw(&format!(
            "GET {encoded} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(
            common::raw_status(&resp),
            400,
            "{encoded} must be refused:\n{resp}"
        );
    }
    for sneaky in [
        "/static/../private",
        "/static/%2e%2e/private",
        "/static/./../private",
        "//static/../private",
    ] {
        let resp = gw.raw(&format!(
            "GET {sneaky} HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(
            common::raw_status(&resp),
            303,
            "{sneaky} must need a login:\n{resp}"
        );
        assert!(resp.contains("rd=%2Fprivate"), "{resp}");
    }

    // a signed-in user on a public route is still identified
    b.login("bob", BOB_PASSWORD, "/").await;
    b.page("/static/app.css").await;
    assert_eq!(upstream.last().header("x-remote-user"), Some("bob"));
}

#[tokio::test]
async fn group_restricted_routes_refuse_other_users() {
    let (upstream, _gw, mut b) = setup();
    b.login("bob", BOB_PASSWORD, "/").await;
    let before = upstream.count();
    let r = b.page("/admin/users").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("admins"));
    assert_eq!(upstream.count(), before);

    let mut alice = Browser::new(&_gw.url("/"));
    alice.login("alice", ALICE_PASSWORD, "/").await;
    assert_eq!(alice.page("/admin/users").await.status, 200);
}

#[tokio::test]
async fn unknown_cookies_are_ignored_and_cleared() {
    let (_upstream, _gw, mut b) = setup();
    b.cookies.insert("gatehouse".into(), "A".repeat(43));
    let r = b.page("/").await;
    assert_eq!(r.status, 303);
    assert!(r.set_cookies().iter().any(|c| c.starts_with("gatehouse=;")));
    assert!(b.session_cookie().is_none());
}

#[tokio::test]
async fn a_new_login_gets_a_new_id_and_ends_the_old_one() {
    let (_upstream, gw, mut b) = setup();
    b.login("alice", ALICE_PASSWORD, "/").await;
    let first = b.cookies.clone();
    b.login("alice", ALICE_PASSWORD, "/").await;
    assert_ne!(first.get("gatehouse"), b.session_cookie());
    let mut replay = Browser::new(&gw.url("/"));
    replay.cookies = first;
    assert_eq!(replay.page("/").await.status, 303);
    assert_eq!(b.page("/").await.status, 200);
}

#[tokio::test]
async fn oversized_login_body_gets_413() {
    let (_upstream, _gw, mut b) = setup();
    let page = b.page("/.gatehouse/login").await;
    let token = page.field("csrf_token");
    let big = "x".repeat(9 * 1024);
    let r = b
        .post_form(
            "/.gatehouse/login",
            &[
                ("username", "alice"),
                ("password", &big),
                ("rd", "/"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(r.status, 413);
    assert!(b.session_cookie().is_none());
}

#[tokio::test]
async fn idle_sessions_end_with_reason_idle() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, "idle_timeout = \"1s\"\n"));
    let mut b = Browser::new(&gw.url("/"));
    b.login("alice", ALICE_PASSWORD, "/").await;
    assert_eq!(b.page("/").await.status, 200);
    // second-scale settings end to end; the boundaries are unit-tested on a manual clock
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let r = b.page("/after").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/.gatehouse/login?rd=%2Fafter&reason=idle");
    let login = b.page(r.location()).await;
    assert!(login.body.contains("inactivity"), "{}", login.body);
}

#[tokio::test]
async fn neither_password_nor_session_id_reaches_the_log() {
    let (_upstream, gw, mut b) = setup();
    b.login("alice", ALICE_PASSWORD, "/").await;
    let cookie = b.session_cookie().unwrap().clone();
    let id = cookie.split('.').next().unwrap().to_string();
    assert_eq!(id.len(), 43);
    b.page("/somewhere").await;
    let token = b.page("/.gatehouse/logout").await.field("csrf_token");
    b.post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;
    b.login("alice", "a-wrong-password-xyz", "/").await;

    let log = gw.log();
    assert!(log.contains("login_ok"), "the run was logged:\n{log}");
    assert!(log.contains("session_ended"), "{log}");
    assert!(!log.contains(ALICE_PASSWORD), "password in the log");
    assert!(
        !log.contains("a-wrong-password-xyz"),
        "failed password in the log"
    );
    assert!(!log.contains(&id), "session ID in the log");
}

#[tokio::test]
async fn the_signed_assertion_verifies_and_cannot_be_spoofed() {
    use base64::Engine;
    let upstream = Upstream::start();
    let key = "an-assertion-key-of-at-least-32-bytes!!";
    let text = format!(
        "{}\n[identity]\nassertion_header = \"X-Gatehouse-Assertion\"\nassertion_key_file = \"assertion.key\"\n",
        config(upstream.addr, "")
    );
    let gw = Gateway::start_with_files(&text, &[("assertion.key", key)]);
    let mut b = Browser::new(&gw.url("/"));
    b.login("alice", ALICE_PASSWORD, "/").await;
    b.get_with(
        "/app",
        &[
            ("Accept", "text/html"),
            ("X-Gatehouse-Assertion", "forged.value"),
            ("x_gatehouse_assertion", "forged"),
        ],
    )
    .await;
    let seen = upstream.last();
    let values = seen.header_all("x-gatehouse-assertion");
    assert_eq!(values.len(), 1, "{:?}", seen.headers);
    assert!(
        seen.headers_like("x-gatehouse-assertion").len() == 1,
        "{:?}",
        seen.headers
    );
    // verify as an app would: HMAC-SHA256 over the body, base64url
    let (body, sig) = values[0].split_once('.').unwrap();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let tag = engine.decode(sig).unwrap();
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::verify(&k, body.as_bytes(), &tag).expect("signature verifies");
    let claims: serde_json::Value = serde_json::from_slice(&engine.decode(body).unwrap()).unwrap();
    assert_eq!(claims["user"], "alice");
    assert_eq!(claims["groups"], serde_json::json!(["staff", "admins"]));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        60
    );

    // not signed in, on a public route: any inbound assertion is dropped
    Browser::new(&gw.url("/"))
        .get_with("/static/x", &[("X-Gatehouse-Assertion", "forged.value")])
        .await;
    assert!(upstream
        .last()
        .headers_like("x-gatehouse-assertion")
        .is_empty());
}

/// The most specific route wins whatever the file order: a public `/`
/// listed first does not open `/app`, which needs a login.
#[tokio::test]
async fn a_public_root_listed_first_does_not_open_a_login_route() {
    let upstream = Upstream::start();
    let text = format!(
        "[server]\nlisten = [\"@LISTEN@\"]\nadmin_listen = \"@ADMIN@\"\ngrace_period = \"0s\"\nthreads = 1\n\n\
         [[route]]\npath_prefix = \"/\"\nupstream = \"{0}\"\naccess = \"public\"\n\n\
         [[route]]\npath_prefix = \"/app\"\nupstream = \"{0}\"\naccess = \"login\"\n\n\
         [users]\nfile = \"users.toml\"\n\n[session]\ncookie_secure = false\n",
        upstream.addr
    );
    let gw = Gateway::start(&text);
    let mut b = Browser::new(&gw.url("/"));
    assert_eq!(
        b.page("/about").await.status,
        200,
        "the public root is public"
    );
    let r = b.page("/app/settings").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r
        .location()
        .starts_with("/.gatehouse/login?rd=%2Fapp%2Fsettings"));
    assert_eq!(b.page("/app").await.status, 303);
    assert_eq!(upstream.count(), 1, "only /about reached the app");

    let r = b.login("alice", ALICE_PASSWORD, "/app/settings").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b.page("/app/settings").await.status, 200);
    assert_eq!(upstream.last().header("x-remote-user"), Some("alice"));
}
