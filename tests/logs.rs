//! What the gateway's log holds: no secret at any level, and outages as a
//! few lines each rather than one per request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, raw_request, raw_status, Browser, Gateway, Upstream, ALICE_PASSWORD};

const ASSERTION_KEY: &str = "an-assertion-key-of-at-least-32-bytes!!";
/// A password typed into the user-name box, three times.
const TYPED_PASSWORD: &str = "hunter2-secret-pass";

/// Everything a log must never hold, gathered from one session of use: a
/// login, a proxied request with the signed assertion, a malformed
/// request carrying the cookie, a logout, and a name box holding a
/// password until it is throttled. Returns the secrets and the log.
async fn secrets_and_log(env: &[(&str, &str)]) -> (Vec<String>, String) {
    let upstream = Upstream::start();
    let text = format!(
        "{}\n[identity]\nassertion_header = \"X-Gatehouse-Assertion\"\nassertion_key_file = \"assertion.key\"\n\n\
         [login]\nmax_failures = 3\nfailure_delay = \"0s\"\n",
        config(upstream.addr, "")
    );
    let gw = Gateway::start_with_env(&text, &[("assertion.key", ASSERTION_KEY)], env);

    let mut b = Browser::new(&gw.url("/"));
    assert_eq!(b.login("alice", ALICE_PASSWORD, "/").await.status, 303);
    let cookie = b.session_cookie().unwrap().clone();
    assert_eq!(b.page("/app/page").await.status, 200);
    let assertion = upstream
        .last()
        .header("x-gatehouse-assertion")
        .unwrap()
        .to_string();

    // a header line without a colon, after the cookie
    let malformed = raw_request(
        gw.addr,
        &format!(
            "GET /app/x HTTP/1.1\r\nHost: a\r\nCookie: gatehouse={cookie}\r\nno colon here\r\n\r\n"
        ),
    );
    assert_eq!(raw_status(&malformed), 400, "{malformed}");
    // a path the gateway refuses, with the cookie
    let refused = raw_request(
        gw.addr,
        &format!("GET /app/%2e%2e%2f%00 HTTP/1.1\r\nHost: a\r\nCookie: gatehouse={cookie}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(raw_status(&refused), 400, "{refused}");

    for _ in 0..3 {
        let r = Browser::new(&gw.url("/"))
            .login(TYPED_PASSWORD, "whatever-1", "/")
            .await;
        assert_eq!(r.status, 401);
    }
    let r = Browser::new(&gw.url("/"))
        .login(TYPED_PASSWORD, "whatever-1", "/")
        .await;
    assert_eq!(r.status, 429, "throttled");

    let token = b.page("/.gatehouse/logout").await.field("csrf_token");
    b.post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;

    let id = cookie.split('.').next().unwrap().to_string();
    let signature = assertion.split('.').nth(1).unwrap().to_string();
    let secrets = vec![
        ALICE_PASSWORD.to_string(),
        TYPED_PASSWORD.to_string(),
        id,
        assertion,
        signature,
    ];
    (secrets, gw.log())
}

#[tokio::test]
async fn no_log_level_prints_a_session_id_a_password_or_an_assertion() {
    for level in ["trace", "debug", "pingora=trace,h2=trace,trace"] {
        let (secrets, log) = secrets_and_log(&[("RUST_LOG", level)]).await;
        for secret in &secrets {
            if let Some(line) = log.lines().find(|l| l.contains(secret.as_str())) {
                panic!("RUST_LOG={level}: a secret reached the log:\n{line}");
            }
        }
        // the run logged at the level asked for, Pingora included (at info)
        assert!(
            log.contains("DEBUG gatehouse::logging: framework targets"),
            "RUST_LOG={level}:\n{log}"
        );
        assert!(log.contains("pingora"), "RUST_LOG={level}:\n{log}");
        assert!(log.contains("login_throttled"), "{log}");
        assert!(
            log.contains("subject=user:#"),
            "a non-user as a hash:\n{log}"
        );
    }
}

#[tokio::test]
async fn the_documented_setting_lifts_the_cap_and_says_so() {
    let (secrets, log) =
        secrets_and_log(&[("RUST_LOG", "trace"), ("GATEHOUSE_LOG_UNSAFE", "1")]).await;
    assert!(
        log.contains("framework logs are not capped"),
        "a loud line at start:\n{log}"
    );
    // the control: without the cap, Pingora's own lines print the cookie
    // and the assertion, which is what the cap is for
    let id = &secrets[2];
    let assertion = &secrets[3];
    assert!(log.contains(id.as_str()), "the session ID, uncapped");
    assert!(log.contains(assertion.as_str()), "the assertion, uncapped");
    // the gateway's own lines stay clean even then
    assert!(!log.contains(ALICE_PASSWORD));
    assert!(!log.contains(&format!("user:{TYPED_PASSWORD}")));
}
