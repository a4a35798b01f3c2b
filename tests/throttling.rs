//! Brute force at the login form: after `max_failures` wrong passwords the
//! name is banned, even the right password is refused without being
//! checked, other users are unaffected, and the ban ends by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, Browser, Gateway, Upstream, ALICE_PASSWORD, BOB_PASSWORD};
use std::time::Duration;

fn throttled_config(upstream: std::net::SocketAddr, ban: &str) -> String {
    format!(
        "{}\n[login]\nmax_failures = 3\nfailure_window = \"1m\"\nban_time = \"{ban}\"\n",
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
        "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
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
