//! Brute force at the login form: after `max_failures` wrong passwords the
//! name is banned, even the right password is refused without being
//! checked, other users are unaffected, and the ban ends by itself. Every
//! refusal is answered only after `login.failure_delay`, and waiting it out
//! holds up nobody else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, Browser, Gateway, Upstream, ALICE_PASSWORD, BOB_PASSWORD};
use std::time::{Duration, Instant};

/// Without the failure delay: these tests make two dozen refused attempts in a row.
fn throttled_config(upstream: std::net::SocketAddr, ban: &str) -> String {
    format!(
        "{}\n[login]\nmax_failures = 3\nfailure_window = \"1m\"\nban_time = \"{ban}\"\nfailure_delay = \"0s\"\n",
        config(upstream, "")
    )
}

#[tokio::test]
async fn a_banned_name_is_refused_even_with_the_right_password() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&throttled_config(upstream.addr, "2s"));
    let mut attacker = Browser::new(&gw.url("/"));
    for _ in 0..3 {
        assert_eq!(
            attacker.login("alice", "guess-1234567", "/").await.status,
            401
        );
    }
    // the ban covers every spelling of the name
    for name in ["alice", " ALICE "] {
        let r = Browser::new(&gw.url("/"))
            .login(name, ALICE_PASSWORD, "/")
            .await;
        assert_eq!(r.status, 429, "{name}: {}", r.body);
        assert!(r.body.contains("Too many failed sign-ins"), "{}", r.body);
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&wait), "Retry-After {wait}");
    }
    // someone else signs in as usual
    assert_eq!(gw.login_status("bob", BOB_PASSWORD).await, 303);
    // second-scale ban: it ends by itself
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(gw.login_status("alice", ALICE_PASSWORD).await, 303);
    let log = gw.log();
    assert!(log.contains("login_throttled"), "{log}");
    assert!(!log.contains("guess-1234567"));
}

#[tokio::test]
async fn throttled_attempts_are_refused_before_any_verification() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&throttled_config(upstream.addr, "1m"));
    let mut b = Browser::new(&gw.url("/"));
    for _ in 0..3 {
        assert_eq!(
            b.login("nobody-at-all", "x-wrong-password", "/")
                .await
                .status,
            401
        );
    }
    for _ in 0..20 {
        assert_eq!(
            b.login("nobody-at-all", "x-wrong-password", "/")
                .await
                .status,
            429
        );
    }
    // three verifications failed; the twenty throttled ones never reached one
    let metrics = common::raw_request(
        gw.admin,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        metrics.contains("gatehouse_logins_total{result=\"failed\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatehouse_logins_total{result=\"throttled\"} 20\n"),
        "{metrics}"
    );
}

fn failed_logins(gw: &Gateway) -> u32 {
    let metrics = common::raw_request(
        gw.admin,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("gatehouse_logins_total{result=\"failed\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn refusals_wait_out_the_failure_delay_without_holding_up_anyone() {
    let upstream = Upstream::start();
    // the longest delay allowed, and four hashes at once whatever the
    // machine, so a loaded CI machine has time for everything below
    let delay = Duration::from_secs(10);
    let gw = Gateway::start(&format!(
        "{}\n[login]\nmax_failures = 0\nfailure_delay = \"10s\"\nmax_concurrent_hashes = 4\n",
        config(upstream.addr, "")
    ));
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;

    // four wrong passwords (one for an unknown user) and a form that fails
    // its check; each task returns its status, how long it waited, and when
    // it was answered
    let mut refused = Vec::new();
    for (user, password, token) in [
        ("bob", "wrong-1", None),
        ("bob", "wrong-2", None),
        ("alice", "wrong-3", None),
        ("nobody-at-all", "wrong-4", None),
        ("bob", BOB_PASSWORD, Some("forged")),
    ] {
        let mut b = Browser::new(&gw.url("/"));
        refused.push(tokio::spawn(async move {
            let sent = Instant::now();
            let status = match token {
                None => b.login(user, password, "/").await.status,
                Some(token) => {
                    let fields = [
                        ("username", user),
                        ("password", password),
                        ("csrf_token", token),
                    ];
                    b.post_form("/.gatehouse/login", &fields).await.status
                }
            };
            (status, sent.elapsed(), Instant::now())
        }));
    }
    // the four are verified and now wait out the delay
    let deadline = Instant::now() + delay;
    while failed_logins(&gw) < 4 {
        assert!(Instant::now() < deadline, "the attempts were not verified");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Meanwhile the one worker thread proxies, and a right password signs in
    // without waiting: the waits are timers, not a blocked thread.
    assert_eq!(alice.page("/app/").await.status, 200);
    assert_eq!(gw.login_status("bob", BOB_PASSWORD).await, 303);
    let served = Instant::now();
    let mut statuses = Vec::new();
    for t in refused {
        let (status, waited, answered) = t.await.unwrap();
        assert!(waited >= delay, "{status} answered after {waited:?}");
        assert!(
            answered > served,
            "{status} answered before the others were served"
        );
        statuses.push(status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 403]);
}
