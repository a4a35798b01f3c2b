//! What the gateway's log holds: no secret at any level, and outages as a
//! few lines each rather than one per request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, raw_request, raw_status, signal, Browser, Gateway, Upstream, ALICE_PASSWORD};

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

/// Lines at WARN or above in a human-format log, after the start-up ones.
fn loud_lines(log: &str) -> Vec<&str> {
    log.lines()
        .skip_while(|l| !l.contains("gatehouse listening on"))
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect()
}

#[tokio::test]
async fn an_unreachable_upstream_is_one_line_down_and_one_line_back() {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    let gw = Gateway::start(&config(addr, ""));
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    for i in 0..25 {
        let r = b.page(&format!("/app/{i}")).await;
        assert_eq!(r.status, 502, "{}", r.body);
    }
    assert_eq!(b.page("/static/x.css").await.status, 502);
    let _upstream = Upstream::start_on(addr);
    assert_eq!(b.page("/app/back").await.status, 200);
    assert_eq!(b.page("/app/again").await.status, 200);

    let log = gw.log();
    let loud = loud_lines(&log);
    assert_eq!(loud.len(), 2, "{loud:#?}");
    assert!(
        loud[0].contains("ERROR") && loud[0].contains(&format!("upstream {addr} is unreachable")),
        "{}",
        loud[0]
    );
    assert!(
        loud[1].contains(&format!("upstream {addr} is back after"))
            && loud[1].contains("26 requests refused during the outage"),
        "{}",
        loud[1]
    );
    assert!(!log.contains("Fail to proxy"), "{log}");
}

/// Waits until `/metrics` reads `needle`.
async fn metrics_show(gw: &Gateway, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, metrics) = gw.admin("GET", "/metrics", None).await;
        if metrics.contains(needle) {
            return metrics;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {needle}:\n{metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The loud lines of each outage: up to and including each "is back" line.
fn per_outage(loud: &[&str]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for line in loud {
        out.last_mut().unwrap().push(line.to_string());
        if line.contains("event=\"outage_ended\"") {
            out.push(Vec::new());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_under_load_is_a_few_lines_and_every_refusal_is_counted() {
    use common::load::{metric_sum, Load, Role};
    use common::redis::RedisServer;
    use std::time::Duration;
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let upstream = Upstream::start();
    let text = config(
        upstream.addr,
        &format!(
            "store = \"redis\"\nredis_url = \"{}\"\nredis_timeout = \"300ms\"\ninvalidate_on_restart = false\n\
             max_devices = 10\non_device_limit = \"evict_oldest\"\n\n[session.groups.admins]\nmax_devices = 2\n\n\
             [login]\nfailure_delay = \"0s\"\n",
            redis.url()
        ),
    )
    .replace("[server]\n", "[server]\nsecret_file = \"secret.key\"\n");
    let gw = Gateway::start(&text);
    metrics_show(&gw, "gatehouse_session_cache_following 1").await;
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
    let load = Load::start(
        &gw.url("/"),
        &[
            Role::signed_in("bob", common::BOB_PASSWORD),
            Role::signed_in("bob", common::BOB_PASSWORD),
            Role::signed_in("dave", common::BOB_PASSWORD),
            Role::login_churn("alice", ALICE_PASSWORD),
        ],
    );
    pause(1500).await;

    // Frozen: every command times out.
    signal(redis.pid(), "STOP");
    pause(800).await;
    let frozen_login = gw.login_status("bob", common::BOB_PASSWORD).await;
    pause(1500).await;
    signal(redis.pid(), "CONT");
    pause(2000).await;

    // Gone, then back empty on the same port.
    redis.stop();
    pause(800).await;
    let gone_login = gw.login_status("bob", common::BOB_PASSWORD).await;
    pause(1500).await;
    redis.restart();
    metrics_show(&gw, "gatehouse_session_cache_following 1").await;
    pause(2000).await;
    let seen = load.finish().await;

    assert_eq!(frozen_login, 503, "a login while Redis is frozen");
    assert_eq!(gone_login, 503, "a login while Redis is gone");
    assert!(seen.unexpected.is_empty(), "{:?}", seen.unexpected);
    assert_eq!(seen.busy, 0, "{seen:?}");
    assert!(seen.ok > 100, "the load ran: {seen:?}");
    assert!(seen.store_refused > 10, "both outages refused: {seen:?}");

    // every refused answer counted, the two lone logins included
    let (_, metrics) = gw.admin("GET", "/metrics", None).await;
    assert_eq!(
        metric_sum(&metrics, "gatehouse_store_errors_total"),
        seen.store_refused + 2,
        "{seen:?}\n{metrics}"
    );
    let refused_logins = seen.store_refused_logins + 2;
    assert!(
        metrics.contains(&format!(
            "gatehouse_store_errors_total{{op=\"login\"}} {refused_logins}\n"
        )),
        "{seen:?}\n{metrics}"
    );

    let log = gw.log();
    let loud = loud_lines(&log);
    eprintln!(
        "clients saw {seen:?}\nlines at WARN and above:\n{}",
        loud.join("\n")
    );
    let outages = per_outage(&loud);
    assert_eq!(outages.len(), 3, "two outages, then quiet:\n{loud:#?}");
    assert!(outages[2].is_empty(), "{:#?}", outages[2]);
    for lines in &outages[..2] {
        assert!(lines.len() <= 3, "{lines:#?}");
        assert_eq!(
            lines.iter().filter(|l| l.contains("ERROR")).count(),
            1,
            "{lines:#?}"
        );
        let back = lines.last().unwrap();
        assert!(back.contains(" WARN "), "{back}");
        let after = back
            .split("is back after ")
            .nth(1)
            .and_then(|rest| rest.split(" s:").next())
            .and_then(|secs| secs.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no outage length: {back}"));
        assert!((1.0..10.0).contains(&after), "{back}");
        assert!(back.contains("login"), "the lone login is covered: {back}");
    }
    // the subscription: lost once (Redis killed), and back, said at info
    assert_eq!(
        log.matches("lost the Redis subscription").count(),
        1,
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(" INFO ") && l.contains("the Redis subscription is back")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_on_every_path_is_counted_under_its_operation() {
    use common::redis::RedisServer;
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let upstream = Upstream::start();
    let text = config(
        upstream.addr,
        &format!(
            "store = \"redis\"\nredis_url = \"{}\"\nredis_timeout = \"300ms\"\nredis_cache_ttl = \"0s\"\ninvalidate_on_restart = false\n\n\
             [login]\nfailure_delay = \"0s\"\n",
            redis.url()
        ),
    )
    .replace("[server]\n", "[server]\nsecret_file = \"secret.key\"\nadmin_token_file = \"admin.token\"\n");
    let gw = Gateway::start(&text);
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let logout_token = b.page("/.gatehouse/logout").await.field("csrf_token");

    redis.stop();
    let answers = [
        ("request", b.page("/app/").await.status),
        ("request", b.api("/app/data").await.status),
        ("login", gw.login_status("bob", common::BOB_PASSWORD).await),
        ("own_page", b.page("/.gatehouse/devices").await.status),
        ("own_page", b.api("/.gatehouse/session").await.status),
        (
            "logout",
            b.post_form("/.gatehouse/logout", &[("csrf_token", &logout_token)])
                .await
                .status,
        ),
        (
            "admin",
            gw.admin("GET", "/api/sessions", Some(common::ADMIN_TOKEN))
                .await
                .0,
        ),
    ];
    for (op, status) in answers {
        assert_eq!(status, 503, "{op}");
    }
    // probes and public pages refuse nobody
    assert_eq!(gw.admin("GET", "/ready", None).await.0, 503);
    assert_eq!(b.page("/static/x.css").await.status, 200);

    let (_, metrics) = gw.admin("GET", "/metrics", None).await;
    for (op, n) in [
        ("request", 2),
        ("login", 1),
        ("own_page", 2),
        ("logout", 1),
        ("admin", 1),
    ] {
        let series = format!("gatehouse_store_errors_total{{op=\"{op}\"}} {n}\n");
        assert!(metrics.contains(&series), "{series}{metrics}");
    }
    assert!(
        metrics.contains("gatehouse_logins_total{result=\"store_unavailable\"} 1\n"),
        "{metrics}"
    );

    redis.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gw.admin("GET", "/ready", None).await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = gw.log();
    let outage: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("gatehouse::outage"))
        .collect();
    assert_eq!(outage.len(), 2, "{outage:#?}");
    assert!(
        outage[1].contains("6 requests and 1 login refused"),
        "{}",
        outage[1]
    );
}

/// Closes with a reset (SO_LINGER 0), as a client that gives up may.
fn reset(stream: std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(stream);
}

/// Clients that reset their connection half-way through a request, and
/// right after sending one: what the gateway logs about them.
async fn log_of_clients_giving_up(env: &[(&str, &str)]) -> String {
    use std::io::Write;
    let upstream = Upstream::start();
    let gw = Gateway::start_with_env(&config(upstream.addr, ""), &[], env);
    for i in 0..10 {
        let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
        s.write_all(format!("GET /static/{i} HTTP/1.1\r\nHost: a\r\nX-Half: ").as_bytes())
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        reset(s);
        let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
        s.write_all(format!("GET /static/{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
            .unwrap();
        reset(s);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ok = raw_request(
        gw.addr,
        "GET /static/after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&ok), 200);
    gw.log()
}

#[tokio::test]
async fn clients_that_give_up_leave_no_error_line() {
    let log = log_of_clients_giving_up(&[]).await;
    let loud = loud_lines(&log);
    assert!(loud.is_empty(), "{loud:#?}");
    // the control: Pingora does call them errors
    let log = log_of_clients_giving_up(&[("GATEHOUSE_LOG_UNSAFE", "1")]).await;
    assert!(
        log.lines()
            .any(|l| l.contains(" ERROR ") && l.contains("Fail to proxy: Downstream")),
        "{log}"
    );
}
