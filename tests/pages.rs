//! The gateway's own pages over HTTP, as a new user and an operator meet
//! them: the name kept in the form, numbers in the right form, the "ask"
//! page telling devices apart, ways back to the app, pages replaced from
//! `ui.templates_dir` (and a broken one refused by `check-config` and by a
//! reload, which keeps the old), and the pages in Spanish.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::HTML;
use common::{check_config, config, Browser, Gateway, Upstream, ALICE_PASSWORD, BOB_PASSWORD};

fn gateway(session_extra: &str) -> (Upstream, Gateway) {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, session_extra));
    (upstream, gw)
}

/// `extra` under `[session]`, then `ui` as the `[ui]` table, and files
/// beside the config.
fn gateway_with_ui(session_extra: &str, ui: &str, files: &[(&str, &str)]) -> (Upstream, Gateway) {
    let upstream = Upstream::start();
    let text = format!("{}\n[ui]\n{ui}\n", config(upstream.addr, session_extra));
    let gw = Gateway::start_with_files(&text, files);
    (upstream, gw)
}

/// The value attribute of the input named `name`, or "" without one.
fn input_value(body: &str, name: &str) -> String {
    let Some(at) = body.find(&format!("name=\"{name}\"")) else {
        panic!("no input {name} in {body}");
    };
    let tag_end = body[at..].find('>').unwrap() + at;
    let tag = &body[at..tag_end];
    match tag.find("value=\"") {
        Some(v) => {
            let rest = &tag[v + 7..];
            rest[..rest.find('"').unwrap()].to_string()
        }
        None => String::new(),
    }
}

async fn wrong_password(b: &mut Browser, user: &str) -> common::browser::Response {
    let page = b.page("/.gatehouse/login").await;
    let token = page.field("csrf_token");
    b.post_form(
        "/.gatehouse/login",
        &[
            ("username", user),
            ("password", "not-it"),
            ("rd", "/"),
            ("csrf_token", &token),
        ],
    )
    .await
}

#[tokio::test]
async fn the_user_name_stays_after_a_failed_login_and_on_reason_pages() {
    let (_u, gw) = gateway("max_devices = 1\non_device_limit = \"evict_oldest\"\n");
    let mut b = Browser::new(&gw.url("/"));
    let r = wrong_password(&mut b, "alice").await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Incorrect username or password."));
    assert_eq!(input_value(&r.body, "username"), "alice");
    // The password box gets the focus, the name is there already.
    assert!(
        r.body
            .contains("autocomplete=\"current-password\" required autofocus"),
        "{}",
        r.body
    );

    // A name with markup stays text.
    let r = wrong_password(&mut b, "<b>x\"").await;
    assert_eq!(input_value(&r.body, "username"), "&lt;b&gt;x&quot;");

    let mut first = gw.signed_in("alice", ALICE_PASSWORD).await;
    let _second = gw.signed_in("alice", ALICE_PASSWORD).await;
    let r = first.page("/reports").await;
    assert!(r.location().ends_with("reason=evicted"), "{}", r.location());
    let login = first.page(r.location()).await;
    assert!(
        login.body.contains("signed in on another device"),
        "{}",
        login.body
    );
    assert_eq!(input_value(&login.body, "username"), "alice");

    // Signing out on purpose forgets it.
    let mut c = gw.signed_in("bob", BOB_PASSWORD).await;
    let token = c.page("/.gatehouse/logout").await.field("csrf_token");
    let out = c
        .post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(out.status, 303);
    let login = c.page(out.location()).await;
    assert!(login.body.contains("You have been signed out."));
    assert_eq!(input_value(&login.body, "username"), "");
}

#[tokio::test]
async fn the_remembered_name_never_reaches_the_app() {
    let (u, gw) = gateway("");
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    assert!(b.cookies.contains_key("gatehouse-user"), "{:?}", b.cookies);
    assert_eq!(b.page("/x").await.status, 200);
    let seen = u.last();
    let cookie = seen.header("cookie").unwrap_or_default();
    assert!(!cookie.contains("gatehouse"), "{cookie}");
}

#[tokio::test]
async fn one_other_device_is_singular() {
    let (_u, gw) = gateway("max_devices = 1\non_device_limit = \"reject\"\n");
    let _a = gw.signed_in("alice", ALICE_PASSWORD).await;
    let r = Browser::new(&gw.url("/"))
        .login("alice", ALICE_PASSWORD, "/")
        .await;
    assert_eq!(r.status, 409);
    assert!(
        r.body.contains("signed in on 1 other device."),
        "{}",
        r.body
    );
    assert!(!r.body.contains("1 other devices"), "{}", r.body);
    assert_eq!(input_value(&r.body, "username"), "alice");

    let (_u, gw) = gateway("max_devices = 1\non_device_limit = \"ask\"\n");
    let _a = gw.signed_in("alice", ALICE_PASSWORD).await;
    let r = Browser::new(&gw.url("/"))
        .login("alice", ALICE_PASSWORD, "/")
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("signed in on 1 other device,"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("1 other devices"), "{}", r.body);
}

#[tokio::test]
async fn the_devices_page_offers_sign_out_all_others_only_when_there_are_others() {
    let (_u, gw) = gateway("max_devices = 0\n");
    let mut a = gw.signed_in("alice", ALICE_PASSWORD).await;
    let only = a.page("/.gatehouse/devices").await;
    assert_eq!(only.status, 200);
    assert!(!only.body.contains("revoke-others"), "{}", only.body);
    assert!(only.body.contains("No other device is signed in."));
    assert!(only.body.contains("1 device in all."), "{}", only.body);

    let _b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let two = a.page("/.gatehouse/devices").await;
    assert!(two.body.contains("/devices/revoke-others"));
    assert!(
        two.body.contains("Sign out the other device<"),
        "{}",
        two.body
    );
    assert!(two.body.contains("2 devices in all."));

    let _c = gw.signed_in("alice", ALICE_PASSWORD).await;
    let three = a.page("/.gatehouse/devices").await;
    assert!(
        three.body.contains("Sign out all 2 other devices"),
        "{}",
        three.body
    );
}

#[tokio::test]
async fn the_ask_page_tells_devices_apart_and_cancel_keeps_rd() {
    let (_u, gw) = gateway("max_devices = 2\non_device_limit = \"ask\"\n");
    let mut phone = Browser::new(&gw.url("/"));
    phone.user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1".into();
    assert_eq!(phone.login("alice", ALICE_PASSWORD, "/").await.status, 303);
    let mut laptop = Browser::new(&gw.url("/"));
    laptop.user_agent =
        "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0".into();
    assert_eq!(laptop.login("alice", ALICE_PASSWORD, "/").await.status, 303);

    let mut third = Browser::new(&gw.url("/"));
    let ask = third.login("alice", ALICE_PASSWORD, "/reports?q=1").await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    let body = &ask.body;
    let (firefox, safari) = (
        body.find("Firefox 130 on Linux").unwrap(),
        body.find("Safari 17 on iOS").unwrap(),
    );
    assert!(firefox < safari, "most recently used first: {body}");
    let marker = body.find("this is the one you used last").unwrap();
    assert!(
        firefox < marker && marker < safari,
        "the laptop was used last: {body}"
    );
    assert!(body.contains("Address 127.0.0.1"), "{body}");
    assert!(body.contains("signed in just now"), "{body}");
    assert!(
        body.contains("href=\"/.gatehouse/login?rd=%2Freports%3Fq%3D1\""),
        "Cancel keeps rd: {body}"
    );
    assert_eq!(body.matches("type=\"radio\"").count(), 2);
}

#[tokio::test]
async fn devices_password_and_error_pages_lead_back_to_the_app() {
    let (_u, gw) = gateway("");
    let mut a = gw.signed_in("alice", ALICE_PASSWORD).await;
    for path in [
        "/.gatehouse/devices",
        "/.gatehouse/password",
        "/.gatehouse/no-such-page",
    ] {
        let r = a.page(path).await;
        assert!(
            r.body.contains("<a href=\"/\">Back to the app</a>"),
            "{path}: {}",
            r.body
        );
    }
    let forged = a
        .post_form("/.gatehouse/devices/revoke-others", &[("csrf_token", "x")])
        .await;
    assert_eq!(forged.status, 403);
    assert!(
        forged.body.contains("<a href=\"/\">Back to the app</a>"),
        "{}",
        forged.body
    );
    assert!(
        forged.body.contains("href=\"/.gatehouse/devices\""),
        "{}",
        forged.body
    );
}

#[tokio::test]
async fn accept_language_picks_spanish_and_ui_language_is_the_fallback() {
    let (_u, gw) = gateway("");
    let mut b = Browser::new(&gw.url("/"));
    let es = b
        .get_with(
            "/.gatehouse/login?reason=idle",
            &[
                ("Accept", HTML),
                ("Accept-Language", "es-ES,es;q=0.9,en;q=0.5"),
            ],
        )
        .await;
    assert!(es.body.contains("<html lang=\"es\">"), "{}", es.body);
    assert!(es.body.contains(">Iniciar sesión</button>"), "{}", es.body);
    assert!(es
        .body
        .contains("Se cerró tu sesión tras un periodo de inactividad."));
    let en = b
        .get_with(
            "/.gatehouse/login",
            &[
                ("Accept", HTML),
                ("Accept-Language", "fr, en;q=0.8, es;q=0.5"),
            ],
        )
        .await;
    assert!(en.body.contains(">Sign in</button>"), "{}", en.body);

    let (_u, gw) = gateway_with_ui("", "language = \"es\"", &[]);
    let mut b = Browser::new(&gw.url("/"));
    let r = b
        .get_with(
            "/.gatehouse/login",
            &[("Accept", HTML), ("Accept-Language", "de")],
        )
        .await;
    assert!(r.body.contains(">Iniciar sesión</button>"), "{}", r.body);
    let r = b
        .get_with(
            "/.gatehouse/login",
            &[("Accept", HTML), ("Accept-Language", "en")],
        )
        .await;
    assert!(r.body.contains(">Sign in</button>"), "{}", r.body);
}

const CUSTOM_LOGIN: &str = "{% extends \"layout.html\" %}\n{% block content %}\n<h1>ACME {{ t(\"login.submit\") }}</h1>\n<form method=\"post\" action=\"{{ prefix }}/login\">\n<input type=\"hidden\" name=\"csrf_token\" value=\"{{ csrf_token }}\">\n<input type=\"hidden\" name=\"rd\" value=\"{{ rd }}\">\n<p class=\"who\">{{ username }}</p>\n<input name=\"username\" value=\"{{ username }}\"><input name=\"password\" type=\"password\">\n<button>Go</button>\n</form>\n{% endblock %}\n";

#[tokio::test]
async fn a_template_in_templates_dir_replaces_the_built_in_page_escaped() {
    let upstream = Upstream::start();
    let gw = start_with_dir(
        &upstream,
        "templates_dir = \"pages\"\naccent_color = \"#006633\"\nlogo = \"pages/logo.svg\"",
        &[
            ("login.html", CUSTOM_LOGIN),
            ("logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            ("messages.es.toml", "[login]\nsubmit = \"Entrar\"\n"),
        ],
    );
    let mut b = Browser::new(&gw.url("/"));
    let r = wrong_password(&mut b, "<script>alert(1)</script>").await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("<h1>ACME Sign in</h1>"), "{}", r.body);
    assert!(
        r.body
            .contains("<p class=\"who\">&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("<script>"));
    assert!(
        r.body
            .contains("<img class=\"logo\" src=\"/.gatehouse/assets/logo?v="),
        "{}",
        r.body
    );
    let es = b
        .get_with(
            "/.gatehouse/login",
            &[("Accept", HTML), ("Accept-Language", "es")],
        )
        .await;
    assert!(es.body.contains("<h1>ACME Entrar</h1>"), "{}", es.body);
    // The other pages are still the built-in ones.
    let mut a = gw.signed_in("alice", ALICE_PASSWORD).await;
    assert!(a
        .page("/.gatehouse/devices")
        .await
        .body
        .contains("Your devices"));
    let logo = b.page("/.gatehouse/assets/logo").await;
    assert_eq!(logo.status, 200);
    assert_eq!(logo.header("content-type"), Some("image/svg+xml"));
    let css_url = r
        .body
        .split("href=\"")
        .find_map(|s| s.strip_prefix("/.gatehouse/assets/gatehouse.css"))
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .unwrap();
    let css = b
        .page(&format!("/.gatehouse/assets/gatehouse.css{css_url}"))
        .await;
    assert!(css.body.contains("--accent: #006633"), "{}", css.body);
}

/// A gateway whose `[ui]` is `ui`, with `files` in its `pages/` directory.
fn start_with_dir(upstream: &Upstream, ui: &str, files: &[(&str, &str)]) -> Gateway {
    let text = format!("{}\n[ui]\n{ui}\n", config(upstream.addr, ""));
    let named: Vec<(String, &str)> = files
        .iter()
        .map(|(n, t)| (format!("pages/{n}"), *t))
        .collect();
    let refs: Vec<(&str, &str)> = named.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    Gateway::start_with_files(&text, &refs)
}

#[test]
fn check_config_names_the_broken_template_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pages")).unwrap();
    std::fs::write(
        dir.path().join("pages/devices.html"),
        "{% extends \"layout.html\" %}\n{% block content %}\n<p>{{ user }</p>\n{% endblock %}\n",
    )
    .unwrap();
    let text = format!(
        "[[route]]\npath_prefix = \"/\"\nupstream = \"127.0.0.1:9\"\naccess = \"login\"\n[users]\nfile = \"users.toml\"\n[ui]\ntemplates_dir = \"{}\"\n",
        dir.path().join("pages").display()
    );
    let (code, _out, err) = check_config(&text);
    assert_eq!(code, 1, "{err}");
    let want = format!(
        "{}:3: ui.templates_dir: ",
        dir.path().join("pages/devices.html").display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("syntax error"), "{err}");

    // A catalog key that does not exist is refused at its line.
    std::fs::remove_file(dir.path().join("pages/devices.html")).unwrap();
    std::fs::write(
        dir.path().join("pages/messages.es.toml"),
        "[login]\n\nsubmitt = \"Entrar\"\n",
    )
    .unwrap();
    let (code, _out, err) = check_config(&text);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("messages.es.toml:3: ui.templates_dir: login.submitt: no such message"),
        "{err}"
    );

    // Colours that cannot be read on a button are refused with the number.
    std::fs::remove_file(dir.path().join("pages/messages.es.toml")).unwrap();
    let (code, _out, err) = check_config(&format!("{text}accent_color = \"#ffcc00\"\n"));
    assert_eq!(code, 1);
    assert!(
        err.contains("ui.accent_color: white button text on #ffcc00 has a contrast of 1.5:1"),
        "{err}"
    );
}

#[test]
fn check_config_counts_in_the_right_number() {
    let text = "[[route]]\npath_prefix = \"/\"\nupstream = \"127.0.0.1:9\"\naccess = \"login\"\n[users]\nfile = \"users.toml\"\n[session]\nmax_devices = 1\non_device_limit = \"ask\"\n";
    let (code, out, err) = check_config(text);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("OK (1 route, 4 users, at most 1 device per user (ask))"),
        "{out}"
    );
}

#[tokio::test]
async fn a_reload_that_breaks_a_template_keeps_the_old_pages() {
    let upstream = Upstream::start();
    let gw = start_with_dir(
        &upstream,
        "templates_dir = \"pages\"",
        &[("message.html", "{% extends \"layout.html\" %}{% block content %}<h1>First {{ heading }}</h1>{% endblock %}")],
    );
    let mut b = Browser::new(&gw.url("/"));
    assert!(b
        .page("/.gatehouse/nowhere")
        .await
        .body
        .contains("<h1>First Not found</h1>"));

    let file = gw.dir().join("pages/message.html");
    std::fs::write(&file, "{% extends \"layout.html\" %}{% block content %}<h1>Second {{ heading }}</h1>{% endblock %}").unwrap();
    let log = gw.reload();
    assert!(log.contains("ui pages"), "{log}");
    assert!(b
        .page("/.gatehouse/nowhere")
        .await
        .body
        .contains("<h1>Second Not found</h1>"));

    std::fs::write(&file, "line one\n{% if %}\n").unwrap();
    let log = gw.reload();
    let failed = log
        .lines()
        .find(|l| l.contains("config reload failed"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        failed.contains(&format!("{}:2", file.display())),
        "{failed}"
    );
    let r = b.page("/.gatehouse/nowhere").await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("<h1>Second Not found</h1>"), "{}", r.body);
}
