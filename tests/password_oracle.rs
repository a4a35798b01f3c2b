//! The password page is no password oracle: a wrong `current` password
//! counts with the login failures of that user (same ban, same audit line,
//! same failure delay), and while the user is banned even the right one is
//! refused without being checked, on the password page and the login form.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, raw_request, Browser, Gateway, Upstream, ALICE_PASSWORD, BOB_PASSWORD};
use std::time::{Duration, Instant};

const NEW_PASSWORD: &str = "a-brand-new-password";

fn throttled(upstream: std::net::SocketAddr, login: &str) -> String {
    format!("{}\n[login]\n{login}", config(upstream, ""))
}

/// Posts the password form of this browser's session.
async fn change_password(b: &mut Browser, current: &str) -> common::browser::Response {
    let token = b.page("/.gatehouse/password").await.field("csrf_token");
    b.post_form(
        "/.gatehouse/password",
        &[
            ("current", current),
            ("new", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
            ("csrf_token", &token),
        ],
    )
    .await
}

fn logins_metric(gw: &Gateway, result: &str) -> u32 {
    let metrics = raw_request(
        gw.admin,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let prefix = format!("gatehouse_logins_total{{result=\"{result}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn wrong_current_passwords_ban_the_user_everywhere_until_the_ban_ends() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&throttled(
        upstream.addr,
        "max_failures = 3\nfailure_window = \"1m\"\nban_time = \"2s\"\nfailure_delay = \"0s\"\n",
    ));
    let users_file = gw.dir().join("users.toml");
    let before = std::fs::read_to_string(&users_file).unwrap();
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;

    // near misses of the right password, as a guesser would try them
    let guesses = ["ALICE-PASSWORD-1", "alice-password-1 ", "alice-password-2"];
    for guess in guesses {
        let r = change_password(&mut alice, guess).await;
        assert_eq!(r.status, 400, "{guess}: {}", r.body);
        assert!(r.body.contains("not right"), "{}", r.body);
    }
    assert_eq!(logins_metric(&gw, "failed"), 3);

    // banned: even the right password is refused, with nothing verified
    // and nothing changed, however often it is tried
    for _ in 0..5 {
        let r = change_password(&mut alice, ALICE_PASSWORD).await;
        assert_eq!(r.status, 429, "{}", r.body);
        assert!(r.body.contains("Too many failed sign-ins"), "{}", r.body);
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&wait), "Retry-After {wait}");
    }
    // a wrong guess while banned is refused the same way: no answer tells
    // right from wrong
    let r = change_password(&mut alice, "another-guess-9").await;
    assert_eq!(r.status, 429);
    assert_eq!(logins_metric(&gw, "failed"), 3, "nothing was verified");
    assert_eq!(logins_metric(&gw, "throttled"), 6);
    assert_eq!(std::fs::read_to_string(&users_file).unwrap(), before);

    // the ban holds at the login form too, for every spelling of the name
    for name in ["alice", "Alice", " ALICE "] {
        let r = Browser::new(&gw.url("/"))
            .login(name, ALICE_PASSWORD, "/")
            .await;
        assert_eq!(r.status, 429, "{name}: {}", r.body);
        assert!(r.header("retry-after").is_some());
    }
    // the session itself is not ended, and other users are not touched
    assert_eq!(alice.page("/app/").await.status, 200);
    assert_eq!(gw.login_status("bob", BOB_PASSWORD).await, 303);

    // audit: one failed-login line per wrong guess, marked as from the
    // password page, and the ban; never a typed password
    let log = gw.log();
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("login_failed")).collect();
    assert_eq!(failed.len(), 3, "{log}");
    assert!(
        failed
            .iter()
            .all(|l| l.contains("\"alice\"") && l.contains("form=\"password\"")),
        "{failed:?}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("login_throttled") && l.contains("user:alice")),
        "{log}"
    );
    for guess in guesses.iter().chain([&"another-guess-9", &ALICE_PASSWORD]) {
        assert!(!log.contains(guess.trim()), "{guess} in the log");
    }

    // second-scale ban: it ends by itself, and the change goes through
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = change_password(&mut alice, ALICE_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(std::fs::read_to_string(&users_file).unwrap(), before);
}

#[tokio::test]
async fn password_page_and_login_form_failures_add_up() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&throttled(
        upstream.addr,
        "max_failures = 3\nfailure_window = \"1m\"\nban_time = \"1m\"\nfailure_delay = \"0s\"\n",
    ));
    // one wrong current password and two wrong logins for the same user,
    // by name spelled differently, from different browsers
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    assert_eq!(
        change_password(&mut alice, "guess-0000-1").await.status,
        400
    );
    for name in ["ALICE", "alice "] {
        let r = Browser::new(&gw.url("/"))
            .login(name, "guess-0000-2", "/")
            .await;
        assert_eq!(r.status, 401, "{name}");
    }
    // the third failure banned the name on both forms
    assert_eq!(gw.login_status("alice", ALICE_PASSWORD).await, 429);
    assert_eq!(
        change_password(&mut alice, ALICE_PASSWORD).await.status,
        429
    );
    let log = gw.log();
    let failed = |form: &str| {
        log.lines()
            .filter(|l| l.contains("login_failed") && l.contains(&format!("form=\"{form}\"")))
            .count()
    };
    assert_eq!((failed("password"), failed("login")), (1, 2), "{log}");

    // the other way round: wrong logins first, then the password page
    // refuses the right current password
    let mut bob = gw.signed_in("bob", BOB_PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(gw.login_status("bob", "guess-0000-3").await, 401);
    }
    let r = change_password(&mut bob, BOB_PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
}

#[tokio::test]
async fn password_page_refusals_wait_out_the_failure_delay() {
    let upstream = Upstream::start();
    let delay = Duration::from_secs(1);
    let gw = Gateway::start(&throttled(
        upstream.addr,
        "max_failures = 2\nfailure_window = \"1m\"\nban_time = \"1m\"\nfailure_delay = \"1s\"\n",
    ));
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    // wrong, wrong (now banned), then right but banned: each one answered
    // no sooner than the delay after it arrived
    for (current, status) in [
        ("guess-0000-1", 400),
        ("guess-0000-2", 400),
        (ALICE_PASSWORD, 429),
    ] {
        let token = alice.page("/.gatehouse/password").await.field("csrf_token");
        let sent = Instant::now();
        let r = alice
            .post_form(
                "/.gatehouse/password",
                &[
                    ("current", current),
                    ("new", NEW_PASSWORD),
                    ("confirm", NEW_PASSWORD),
                    ("csrf_token", &token),
                ],
            )
            .await;
        let waited = sent.elapsed();
        assert_eq!(r.status, status, "{current}");
        assert!(waited >= delay, "{current}: answered after {waited:?}");
    }
}
