//! A fleet: two real gateway processes sharing one real Redis (each test
//! starts its own on a free port).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::redis::{RedisCluster, RedisServer};
use common::*;
use std::time::{Duration, Instant};

fn fleet_config(upstream: std::net::SocketAddr, redis_url: &str, extra: &str) -> String {
    config(
        upstream,
        &format!("store = \"redis\"\nredis_url = \"{redis_url}\"\n{extra}"),
    )
    .replace(
        "[server]\n",
        "[server]\nsecret_file = \"secret.key\"\nadmin_token_file = \"admin.token\"\n",
    )
}

/// Waits until the gateway hears the fleet's changes (its cache is on).
async fn following(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = gw.admin("GET", "/metrics", None).await;
        if metrics.contains("gatehouse_session_cache_following 1") {
            return;
        }
        assert!(Instant::now() < deadline, "not following:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn live_sessions(gw: &Gateway, user: &str) -> usize {
    let (status, body) = gw
        .admin(
            "GET",
            &format!("/api/sessions?user={user}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["sessions"].as_array().unwrap().len()
}

/// Logs in on A, uses the cookie on B, logs out on B, and A refuses it;
/// then a revoke-all on A reaches B.
async fn one_login_for_the_whole_fleet(redis_url: &str) {
    let upstream = Upstream::start();
    let cfg = fleet_config(upstream.addr, redis_url, "");
    let a = Gateway::start(&cfg);
    let b = Gateway::start(&cfg);
    // Both caches in use: the case where a stale copy could be served.
    following(&a).await;
    following(&b).await;

    let mut on_a = a.signed_in("alice", ALICE_PASSWORD).await;
    let mut on_b = on_a.at(&b.url("/"));
    let r = on_b.page("/app/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(upstream.last().header("x-remote-user"), Some("alice"));
    assert_eq!(on_a.page("/app/").await.status, 200);

    let confirm = on_b.page("/.gatehouse/logout").await;
    let token = confirm.field("csrf_token");
    let r = on_b
        .post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(r.status, 303);
    // A learns of it at once (its cache was told over pub/sub), not after
    // the cache's 1 s TTL: its copy was read moments ago, so a refusal
    // within 300 ms is the announcement's doing. The announcement travels
    // on its own connection, so A may answer one request first under load.
    let told = Instant::now();
    let r = loop {
        let r = on_a.page("/app/").await;
        if r.status != 200 || told.elapsed() > Duration::from_millis(300) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(r.status, 303, "A still serves a session B logged out");
    assert!(
        r.location().contains("/.gatehouse/login"),
        "{}",
        r.location()
    );

    let x = a.signed_in("alice", ALICE_PASSWORD).await;
    let y = b.signed_in("bob", BOB_PASSWORD).await;
    assert_eq!(x.at(&b.url("/")).page("/app/").await.status, 200);
    assert_eq!(y.at(&a.url("/")).page("/app/").await.status, 200);
    let (status, body) = a.admin("POST", "/api/revoke-all", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    for (browser, gw) in [(&x, &b), (&y, &a), (&x, &a), (&y, &b)] {
        let r = browser.at(&gw.url("/")).page("/app/").await;
        assert!(r.location().ends_with("reason=revoked"), "{}", r.location());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_for_the_whole_fleet_on_standalone_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    one_login_for_the_whole_fleet(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_for_the_whole_fleet_on_a_redis_cluster() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    one_login_for_the_whole_fleet(&cluster.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_logins_over_two_instances_keep_the_device_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    for mode in ["reject", "evict_oldest"] {
        let upstream = Upstream::start();
        let cfg = fleet_config(
            upstream.addr,
            &redis.url(),
            &format!(
                "max_devices = 2\non_device_limit = \"{mode}\"\nredis_key_prefix = \"{}\"\n",
                mode.replace('_', "-")
            ),
        );
        let a = Gateway::start(&cfg);
        let b = Gateway::start(&cfg);
        let statuses: Vec<u16> =
            parallel_logins(&[a.url("/"), b.url("/")], 50, "alice", ALICE_PASSWORD)
                .await
                .into_iter()
                .map(|(status, _)| status)
                .collect();
        let signed_in = statuses.iter().filter(|s| **s == 303).count();
        assert_eq!(live_sessions(&a, "alice").await, 2, "{mode}: {statuses:?}");
        assert_eq!(live_sessions(&b, "alice").await, 2, "{mode}");
        match mode {
            "reject" => assert_eq!(signed_in, 2, "{statuses:?}"),
            _ => assert_eq!(signed_in, 50, "{statuses:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_a_clear_503_and_heals_without_a_restart() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let upstream = Upstream::start();
    let cfg = fleet_config(
        upstream.addr,
        &redis.url(),
        "redis_timeout = \"300ms\"\nredis_cache_ttl = \"0s\"\n",
    );
    let gw = Gateway::start(&cfg);
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let cookie = b.session_cookie().cloned().unwrap();
    assert_eq!(gw.admin("GET", "/ready", None).await.0, 200);

    // Frozen: Redis accepts nothing and answers nothing.
    let pid = redis.pid();
    signal(pid, "STOP");
    let started = Instant::now();
    let r = b.page("/app/").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("still signed in"), "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        r.set_cookies().is_empty(),
        "the cookie is kept: {:?}",
        r.set_cookies()
    );
    let r = b.api("/app/data").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "store_unavailable");
    assert_eq!(gw.admin("GET", "/ready", None).await.0, 503);
    // public pages need no session
    assert_eq!(b.page("/static/app.css").await.status, 200);
    // a login says the service is unavailable
    assert_eq!(gw.login_status("bob", BOB_PASSWORD).await, 503);

    signal(pid, "CONT");
    let r = b.page("/app/").await;
    assert_eq!(r.status, 200, "serves again, same session: {}", r.body);
    assert_eq!(b.session_cookie(), Some(&cookie));

    // Gone: connections refused, then a new (empty) Redis on the same port.
    redis.stop();
    assert_eq!(b.page("/app/").await.status, 503);
    assert_eq!(gw.admin("GET", "/ready", None).await.0, 503);
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.admin("GET", "/ready", None).await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the new Redis does not know the session: sign in again, no restart
    assert_eq!(b.page("/app/").await.status, 303);
    gw.signed_in("alice", ALICE_PASSWORD).await;
    assert!(gw.log().contains("Redis"), "the outage is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_never_holds_a_cookie_value() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = Upstream::start();
    let cfg = fleet_config(
        upstream.addr,
        &redis.url(),
        "max_devices = 1\non_device_limit = \"ask\"\n",
    );
    let gw = Gateway::start(&cfg);
    // Every cookie but the remembered user name, which is no secret (it
    // is the name itself, for the next login form).
    let secrets = |b: &Browser| -> Vec<String> {
        b.cookies
            .iter()
            .filter(|(name, _)| !name.ends_with("gatehouse-user"))
            .map(|(_, value)| value.clone())
            .collect()
    };
    let mut cookies = Vec::new();
    let mut first = gw.signed_in("alice", ALICE_PASSWORD).await;
    cookies.extend(secrets(&first));
    // the "ask" flow stores a pending-login nonce
    let mut second = Browser::new(&gw.url("/"));
    let r = second.login("alice", ALICE_PASSWORD, "/").await;
    cookies.extend(secrets(&second));
    assert_eq!(r.status, 200, "the device picker: {}", r.body);
    let r = first.page("/app/").await;
    assert_eq!(r.status, 200);
    gw.signed_in("bob", BOB_PASSWORD).await;
    let _ = gw.login_status("bob", "wrong password").await;

    let mut everything = String::new();
    for key in redis.scan_keys() {
        everything.push_str(&key);
        everything.push('\n');
        let kind = redis.cli(&["TYPE", &key]);
        let dump = match kind.as_str() {
            "hash" => redis.cli(&["HGETALL", &key]),
            "set" => redis.cli(&["SMEMBERS", &key]),
            "zset" => redis.cli(&["ZRANGE", &key, "0", "-1"]),
            _ => redis.cli(&["GET", &key]),
        };
        everything.push_str(&dump);
        everything.push('\n');
    }
    assert!(
        everything.contains("alice"),
        "the scan saw the data:\n{everything}"
    );
    for c in cookies.iter().filter(|c| !c.is_empty()) {
        // the ID part of a session cookie, or a whole nonce
        let secret = c.split('.').next().unwrap();
        assert!(secret.len() >= 16, "{c}");
        assert!(
            !everything.contains(secret),
            "{secret} is in Redis:\n{everything}"
        );
    }
}

/// Redis's `MONITOR` stream: every command the server runs, those a
/// client sent marked with its address, those a script ran with `lua`.
struct Monitor {
    lines: std::io::BufReader<std::net::TcpStream>,
    port: u16,
}

impl Monitor {
    fn start(port: u16) -> Monitor {
        use std::io::{BufRead, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // a bound on a hang, not a wait: every read below expects a line
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"MONITOR\r\n").unwrap();
        let mut lines = std::io::BufReader::new(s);
        let mut ok = String::new();
        lines.read_line(&mut ok).unwrap();
        assert_eq!(ok.trim(), "+OK");
        Monitor { lines, port }
    }

    /// The commands run since the last call, as (from a client?, line);
    /// ends with a marker of its own, which is not returned.
    fn since(&mut self) -> Vec<(bool, String)> {
        use std::io::BufRead;
        let marker = format!("marker-{}", std::process::id());
        common::redis::command(self.port, &["ECHO", &marker]).unwrap();
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            self.lines.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "MONITOR ended");
            if line.contains(&marker) {
                return out;
            }
            out.push((!line.contains(" lua] "), line.trim().to_string()));
        }
    }
}

/// With the cache off every request is a cache miss, and each costs one
/// round trip: the watermarks, the record and (when due) the touch are one
/// script. `MONITOR` shows what the gateway sent and what ran inside it;
/// `INFO commandstats` agrees on the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_miss_costs_one_round_trip_to_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = Upstream::start();
    let cfg = fleet_config(
        upstream.addr,
        &redis.url(),
        "redis_cache_ttl = \"0s\"\nidle_timeout = \"2s\"\n",
    );
    let gw = Gateway::start(&cfg);
    let mut browser = gw.signed_in("alice", ALICE_PASSWORD).await;
    // the first request loads the script into Redis
    assert_eq!(browser.page("/app/").await.status, 200);

    let mut monitor = Monitor::start(redis.port);
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let _ = monitor.since();
    const REQUESTS: usize = 10;
    for _ in 0..REQUESTS {
        assert_eq!(browser.page("/app/").await.status, 200);
    }
    let seen = monitor.since();
    let sent: Vec<&String> = seen.iter().filter(|(c, _)| *c).map(|(_, l)| l).collect();
    assert_eq!(sent.len(), REQUESTS, "one command per request:\n{seen:#?}");
    assert!(
        sent.iter().all(|l| l.contains("\"EVALSHA\"")),
        "each one the lookup script:\n{seen:#?}"
    );
    let stats = redis.cli(&["INFO", "commandstats"]);
    let calls = |cmd: &str| {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
            .and_then(|l| l.split("calls=").nth(1))
            .and_then(|v| v.split(',').next())
            .map_or(0, |n| n.parse::<usize>().unwrap())
    };
    assert_eq!(calls("evalsha"), REQUESTS, "{stats}");
    // CONFIG RESETSTAT and the markers' ECHO are the test's own
    assert_eq!(
        calls("get"),
        REQUESTS,
        "the pointer, inside the script: {stats}"
    );

    let _ = monitor.since(); // INFO, the test's own

    // A touch falls due every 200 ms (a tenth of the 2 s idle timeout):
    // when it does, it runs inside the same one command.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(browser.page("/app/").await.status, 200);
        let seen = monitor.since();
        let sent = seen.iter().filter(|(c, _)| *c).count();
        assert_eq!(sent, 1, "one command for this request:\n{seen:#?}");
        let touched = seen
            .iter()
            .any(|(c, l)| !c && l.contains("\"HSET\"") && l.contains("\"l\""));
        if touched {
            break;
        }
        assert!(Instant::now() < deadline, "no touch within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn check_config_wants_a_url_and_a_shared_secret_with_redis() {
    let text = "[server]\nlisten = [\"127.0.0.1:1\"]\n\n[[route]]\npath_prefix = \"/\"\nupstream = \"127.0.0.1:2\"\naccess = \"login\"\n\n[users]\nfile = \"users.toml\"\n\n[session]\nstore = \"redis\"\nredis_url = \"redis+cluster://a\"\n";
    let (code, _, err) = check_config(text);
    assert_ne!(code, 0);
    assert!(
        err.contains("gatehouse.toml:14: session.redis_url"),
        "{err}"
    );
    assert!(err.contains("server.secret_file"), "{err}");
}
