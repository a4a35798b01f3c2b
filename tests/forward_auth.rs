//! Forward auth end to end: a real nginx (`auth_request`) and a real Caddy
//! (`forward_auth`), configured as the README says, in front of the
//! recording upstream, asking the gateway's `GET /.gatehouse/auth`; and the
//! endpoint asked directly by trusted and untrusted peers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::front::{Front, Kind};
use common::{Browser, Gateway, Upstream, ALICE_PASSWORD, BOB_PASSWORD};
use std::net::IpAddr;
use std::time::Duration;

const TOKEN: &str = "admin-token-0123456789";

/// Routes without `upstream`: in forward-auth mode the proxy in front
/// reaches the app, the gateway only answers for the policy.
fn config(trusted: &str, session_extra: &str) -> String {
    format!(
        "[server]\nlisten = [\"@LISTEN@\"]\nadmin_listen = \"@ADMIN@\"\nadmin_token_file = \"admin.token\"\n\
         grace_period = \"0s\"\nupgrade_sock = \"upgrade.sock\"\nthreads = 1\ntrusted_proxies = [\"{trusted}\"]\n\n\
         [[route]]\npath_prefix = \"/static/\"\naccess = \"public\"\n\n\
         [[route]]\npath_prefix = \"/admin/\"\naccess = \"login\"\ngroups = [\"admins\"]\n\n\
         [[route]]\npath_prefix = \"/\"\naccess = \"login\"\n\n\
         [users]\nfile = \"users.toml\"\n\n\
         [session]\ncookie_secure = false\n{session_extra}\n"
    )
}

fn gateway(trusted: &str, session_extra: &str) -> Gateway {
    Gateway::start_with_files(
        &config(trusted, session_extra),
        &[
            ("admin.token", TOKEN),
            ("assertion.key", "k".repeat(40).as_str()),
        ],
    )
}

/// The gateway, the app and the proxy in front; `None` when the proxy is
/// not installed (outside CI).
fn stack(kind: Kind, session_extra: &str) -> Option<(Upstream, Gateway, Front)> {
    let upstream = Upstream::start();
    let gw = gateway("127.0.0.1/32", session_extra);
    let front = Front::start(kind, gw.addr, upstream.addr)?;
    Some((upstream, gw, front))
}

/// The login page a signed-out browser is sent to, relative to the origin
/// (nginx's `error_page` makes it absolute on the same origin).
fn login_path<'a>(front: &Front, r: &'a common::browser::Response) -> &'a str {
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.location();
    location
        .strip_prefix(&format!("http://{}", front.addr))
        .unwrap_or(location)
}

/// The `rd` of a login URL, decoded.
fn rd_of(login: &str) -> String {
    let query = login.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "rd")
        .unwrap()
        .1
        .into_owned()
}

/// Signs in through the proxy, starting from a signed-out page load.
async fn sign_in_through(front: &Front, user: &str, password: &str, page: &str) -> Browser {
    let mut b = Browser::new(&front.url("/"));
    let r = b.page(page).await;
    let login = login_path(front, &r).to_string();
    assert!(login.starts_with("/.gatehouse/login?"), "{login}");
    let rd = rd_of(&login);
    assert_eq!(rd, page, "back to the page asked for");
    let r = b.login(user, password, &rd).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), page);
    b
}

/// Identity headers a client makes up, in the spellings PHP and CGI read
/// as `HTTP_X_REMOTE_USER` too.
const SPOOFED: [(&str, &str); 5] = [
    ("X-Remote-User", "mallory"),
    ("X_Remote_User", "mallory"),
    ("X.Remote.User", "mallory"),
    ("x_remote_groups", "evil-admins"),
    ("X-Remote-Groups", "evil-admins"),
];

/// No made-up value reached the app, under any header name.
fn assert_no_spoof(upstream: &Upstream) {
    let seen = upstream.last();
    let spoofed: Vec<_> = seen
        .headers
        .iter()
        .filter(|(_, v)| v.contains("mallory") || v.contains("evil-admins"))
        .collect();
    assert!(
        spoofed.is_empty(),
        "spoofed headers reached the app: {spoofed:?}"
    );
}

/// Every identity header value the app received, whatever its spelling.
fn identity_seen(upstream: &Upstream) -> Vec<(String, String)> {
    upstream.last().headers_like("x-remote")
}

async fn signs_users_in_and_hands_the_app_their_identity(kind: Kind) {
    let Some((upstream, gw, front)) = stack(kind, "") else {
        return;
    };
    let mut anon = Browser::new(&front.url("/"));

    // Signed out: a page load is sent to the login page with the way back.
    let r = anon.page("/app/page?x=1&y=%2F").await;
    let login = login_path(&front, &r);
    assert!(
        login.starts_with("/.gatehouse/login?rd=%2Fapp%2Fpage%3Fx%3D1%26y%3D%252F"),
        "{login}"
    );
    if kind == Kind::Caddy {
        // Caddy hands the answer to the browser: a script gets 401 JSON.
        let r = anon.api("/app/data").await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.json()["error"], "login_required");
        assert_eq!(r.json()["login_url"], "/.gatehouse/login?rd=%2Fapp%2Fdata");
    }
    assert_eq!(upstream.count(), 0, "nothing reached the app signed out");

    // A public route reaches the app with nobody as the user: no
    // placeholder text, and no spoofed name either.
    let r = anon.get_with("/static/site.css", &SPOOFED).await;
    assert_eq!(r.status, 200, "{}\n{}", r.body, front.log());
    for (name, value) in identity_seen(&upstream) {
        assert!(value.is_empty(), "{name}: {value:?} reached the app");
    }
    assert_no_spoof(&upstream);

    // Signed in through the proxy: the app gets the identity the proxy
    // copied from the answer, and never what the client sent.
    let mut alice = sign_in_through(&front, "alice", ALICE_PASSWORD, "/app/page?x=1").await;
    let r = alice.get_with("/app/page?x=1", &SPOOFED).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = upstream.last();
    assert_eq!(seen.target, "/app/page?x=1");
    assert_eq!(seen.header_all("x-remote-user"), ["alice"]);
    assert_eq!(seen.header_all("x-remote-email"), ["alice@example.com"]);
    assert_eq!(seen.header_all("x-remote-name"), ["Alice Example"]);
    assert_eq!(seen.header_all("x-remote-groups"), ["staff,admins"]);
    assert_no_spoof(&upstream);

    // A route for admins only refuses bob, and lets alice through.
    let mut bob = sign_in_through(&front, "bob", BOB_PASSWORD, "/somewhere").await;
    let before = upstream.count();
    assert_eq!(bob.page("/admin/users").await.status, 403);
    assert_eq!(
        upstream.count(),
        before,
        "bob's request never reached the app"
    );
    assert_eq!(alice.page("/admin/users").await.status, 200);

    // Logging out through the proxy ends access, server-side: the old
    // cookie, replayed, is worth nothing.
    let old_cookies = alice.cookies.clone();
    let confirm = alice.page("/.gatehouse/logout").await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let token = confirm.field("csrf_token");
    let r = alice
        .post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(r.status, 303);
    let r = alice.page("/app/page").await;
    assert!(login_path(&front, &r).starts_with("/.gatehouse/login?"));
    alice.cookies = old_cookies;
    let r = alice.page("/app/page").await;
    let login = login_path(&front, &r);
    assert!(login.contains("reason=logout"), "{login}");

    // The access log names the original request's path and the user.
    let log = gw.log();
    assert!(
        log.lines().any(|l| l.contains("gatehouse::access")
            && l.contains("/app/page")
            && l.contains("alice")),
        "{log}"
    );

    let metrics = gw.admin("GET", "/metrics", Some(TOKEN)).await.1;
    for outcome in ["forward_auth_allowed", "forward_auth_forbidden"] {
        assert!(
            !metrics.contains(&format!("outcome=\"{outcome}\"}} 0")),
            "{outcome} not counted:\n{metrics}"
        );
    }
}

async fn applies_the_session_policy(kind: Kind) {
    // The device limit and a revoke-all, as in proxy mode.
    let Some((upstream, gw, front)) = stack(
        kind,
        "max_devices = 1\non_device_limit = \"evict_oldest\"\n",
    ) else {
        return;
    };
    let mut first = sign_in_through(&front, "alice", ALICE_PASSWORD, "/a").await;
    assert_eq!(first.page("/a").await.status, 200);
    let mut second = sign_in_through(&front, "alice", ALICE_PASSWORD, "/b").await;
    assert_eq!(second.page("/b").await.status, 200);
    let r = first.page("/a").await;
    assert!(
        login_path(&front, &r).contains("reason=evicted"),
        "{:?}",
        r.location()
    );
    assert_eq!(second.page("/b").await.status, 200);

    let (status, body) = gw.admin("POST", "/api/revoke-all", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let r = second.page("/b").await;
    assert!(
        login_path(&front, &r).contains("reason=revoked"),
        "{:?}",
        r.location()
    );
    let served = upstream.count();
    assert_ne!(second.api("/b").await.status, 200);
    assert_eq!(upstream.count(), served, "nothing more reached the app");
    drop((gw, front));

    // The idle timeout, second-scale.
    let Some((_upstream, _gw, front)) = stack(kind, "idle_timeout = \"2s\"\n") else {
        return;
    };
    let mut b = sign_in_through(&front, "alice", ALICE_PASSWORD, "/a").await;
    // Each check through the proxy counts as activity, as a proxied
    // request does: a busy user outlives the idle timeout...
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let r = b.page("/a").await;
        assert_eq!(r.status, 200, "after {:?}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // ...and a quiet one is signed out.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let r = b.page("/a").await;
    assert!(
        login_path(&front, &r).contains("reason=idle"),
        "{:?}",
        r.location()
    );
}

#[tokio::test]
async fn nginx_signs_users_in_and_hands_the_app_their_identity() {
    signs_users_in_and_hands_the_app_their_identity(Kind::Nginx).await;
}

#[tokio::test]
async fn caddy_signs_users_in_and_hands_the_app_their_identity() {
    signs_users_in_and_hands_the_app_their_identity(Kind::Caddy).await;
}

#[tokio::test]
async fn nginx_applies_device_limit_revoke_all_and_idle_timeout() {
    applies_the_session_policy(Kind::Nginx).await;
}

#[tokio::test]
async fn caddy_applies_device_limit_revoke_all_and_idle_timeout() {
    applies_the_session_policy(Kind::Caddy).await;
}

/// A client whose connections come from `ip` (any 127/8 address is local).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn ask(
    client: &reqwest::Client,
    gw: &Gateway,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = client.get(gw.url("/.gatehouse/auth"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let (status, h) = (r.status().as_u16(), r.headers().clone());
    (status, h, r.text().await.unwrap())
}

#[tokio::test]
async fn only_a_trusted_proxy_is_answered_and_the_route_table_decides() {
    let gw = Gateway::start_with_files(
        &config("127.0.0.2/32", "")
            .replace("[users]", "[identity]\nassertion_header = \"X-Gatehouse-Assertion\"\nassertion_key_file = \"assertion.key\"\n\n[users]"),
        &[("admin.token", TOKEN), ("assertion.key", "k".repeat(40).as_str())],
    );
    let alice = gw.signed_in("alice", ALICE_PASSWORD).await.cookie_header();
    let bob = gw.signed_in("bob", BOB_PASSWORD).await.cookie_header();
    let (outsider, proxy) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));

    // Anyone else claiming an original request is refused, even with a session.
    let forged = [("X-Forwarded-Uri", "/static/x"), ("Cookie", alice.as_str())];
    let (status, _, body) = ask(&outsider, &gw, &forged).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("untrusted_peer"), "{body}");

    // From the proxy: a public route needs no session, and names nobody,
    // with every identity header present.
    let (status, h, body) = ask(&proxy, &gw, &[("X-Forwarded-Uri", "/static/x")]).await;
    assert_eq!(status, 200, "{body}");
    for name in [
        "x-remote-user",
        "x-remote-email",
        "x-remote-name",
        "x-remote-groups",
        "x-gatehouse-assertion",
    ] {
        assert_eq!(h.get(name).map(|v| v.as_bytes()), Some(&b""[..]), "{name}");
    }

    // A groups route: bob is signed in but not an admin; alice is.
    let admin_page = [
        ("X-Forwarded-Uri", "/admin/x"),
        ("X-Forwarded-Method", "GET"),
    ];
    let (status, _, body) = ask(
        &proxy,
        &gw,
        &[admin_page[0], admin_page[1], ("Cookie", &bob)],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("only for members of: admins"), "{body}");
    let (status, h, body) = ask(
        &proxy,
        &gw,
        &[admin_page[0], admin_page[1], ("Cookie", &alice)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h["x-remote-user"], "alice");
    assert_eq!(h["x-remote-groups"], "staff,admins");
    assert!(h["x-gatehouse-assertion"].to_str().unwrap().contains('.'));

    // The original URI is normalised as a proxied one is: a dot segment
    // does not climb out of the groups route into the open one.
    let (status, _, _) = ask(&proxy, &gw, &[("X-Forwarded-Uri", "/static/../admin/x")]).await;
    assert_eq!(status, 401);

    // No session: 401 JSON for a script; a page load (Caddy, Traefik) is
    // redirected; nginx's style is always 401.
    let (status, h, body) = ask(&proxy, &gw, &[("X-Forwarded-Uri", "/app?q=1")]).await;
    assert_eq!(status, 401, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["login_url"], "/.gatehouse/login?rd=%2Fapp%3Fq%3D1");
    assert_eq!(h["location"], "/.gatehouse/login?rd=%2Fapp%3Fq%3D1");
    let page = [("X-Forwarded-Uri", "/app"), ("Accept", "text/html")];
    let (status, h, _) = ask(&proxy, &gw, &page).await;
    assert_eq!(status, 302);
    assert_eq!(h["location"], "/.gatehouse/login?rd=%2Fapp");
    let (status, _, _) = ask(
        &proxy,
        &gw,
        &[("X-Original-URI", "/app"), ("Accept", "text/html")],
    )
    .await;
    assert_eq!(status, 401);
    // A form post is no page load, whatever it accepts.
    let post = [page[0], page[1], ("X-Forwarded-Method", "POST")];
    assert_eq!(ask(&proxy, &gw, &post).await.0, 401);

    // What cannot be read exactly is refused, never guessed.
    assert_eq!(ask(&proxy, &gw, &[]).await.0, 400);
    let two_hosts = [
        ("X-Forwarded-Uri", "/app"),
        ("X-Forwarded-Host", "a.example, b.example"),
    ];
    assert_eq!(ask(&proxy, &gw, &two_hosts).await.0, 400);

    let metrics = gw.admin("GET", "/metrics", Some(TOKEN)).await.1;
    for (outcome, n) in [
        ("forward_auth_untrusted", 1),
        ("forward_auth_allowed", 2),
        ("forward_auth_forbidden", 1),
        ("forward_auth_login_redirect", 1),
        ("forward_auth_unauthorized", 4),
        ("forward_auth_bad_request", 2),
    ] {
        let line = format!("gatehouse_requests_total{{outcome=\"{outcome}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line}{metrics}");
    }
}

/// A route without `upstream` describes policy for the proxy in front
/// only: the gateway itself answers a proxied request to it with 404.
#[tokio::test]
async fn a_route_without_upstream_is_not_proxied() {
    let gw = gateway("127.0.0.1/32", "");
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let r = b.api("/app").await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("proxy in front"), "{}", r.body);
}

#[test]
fn an_empty_upstream_list_is_a_config_error() {
    let text = config("127.0.0.1/32", "")
        .replace("@LISTEN@", "127.0.0.1:8080")
        .replace("@ADMIN@", "127.0.0.1:9091")
        .replace("admin_token_file = \"admin.token\"\n", "")
        .replace(
            "path_prefix = \"/\"\naccess",
            "path_prefix = \"/\"\nupstream = []\naccess",
        );
    let line = text.lines().position(|l| l == "upstream = []").unwrap() + 1;
    let (code, _, err) = common::check_config(&text);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "gatehouse.toml:{line}: route[2].upstream: expected at least one address"
        )),
        "{err}"
    );
    let (code, out, err) = common::check_config(&text.replace("upstream = []\n", ""));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(forward auth only)"), "{out}");
}
