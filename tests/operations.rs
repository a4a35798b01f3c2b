//! Operations end to end: reloads under load, a broken reload, a binary
//! upgrade under load, and logs that never hold a secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, raw_request, raw_status, Browser, Gateway, Upstream, ALICE_PASSWORD};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Clients hammering the gateway from threads, each request on a fresh
/// connection, counting answers that are not 200.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: std::net::SocketAddr, path: &str, cookie: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: app\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        );
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, failed, request) =
                    (stop.clone(), ok.clone(), failed.clone(), request.clone());
                std::thread::spawn(move || {
                    // bounded: a few thousand requests at most per client
                    for _ in 0..20_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let resp = std::panic::catch_unwind(|| raw_request(addr, &request))
                            .unwrap_or_default();
                        if raw_status(&resp) == 200 {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("failed: {:?}", resp.lines().next());
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            threads,
        }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_fail_no_request_and_take_effect() {
    let (a, b) = (Upstream::start(), Upstream::start());
    let mut gw = Gateway::start(&config(a.addr, "idle_timeout = \"30m\"\n"));
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let cookie = alice.cookie_header();
    let config_path = gw.dir().join("gatehouse.toml");
    let template = std::fs::read_to_string(&config_path).unwrap();

    let load = Load::start(gw.addr, "/busy", &cookie, 3);
    for round in 0..20u64 {
        let (target, idle, minutes) = if round % 2 == 0 {
            (&b, "20m", 20)
        } else {
            (&a, "30m", 30)
        };
        // keep the ports the harness filled in; swap upstream and timeout
        let next = template
            .replace(&a.addr.to_string(), &target.addr.to_string())
            .replace(
                "idle_timeout = \"30m\"",
                &format!("idle_timeout = \"{idle}\""),
            );
        std::fs::write(&config_path, next).unwrap();
        let log = gw.reload();
        assert!(!log.contains("config reload failed"), "{log}");
        let probe = format!("/probe-{round}");
        assert_eq!(alice.page(&probe).await.status, 200);
        assert!(
            target.requests().iter().any(|r| r.target == probe),
            "round {round}: not routed to the new upstream"
        );
        let status = alice.api("/.gatehouse/session").await.json();
        let left = status["idle_expires_in"].as_u64().unwrap();
        assert!(
            left <= minutes * 60 && left > (minutes - 1) * 60,
            "round {round}: {status}"
        );
    }
    let (ok, failed) = load.finish();
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during reloads",
        ok + failed
    );
    assert!(ok > 100, "the load ran ({ok} requests)");
    let log = gw.log();
    assert!(
        log.contains("routes (3 → 3)") && log.contains("session.idle_timeout"),
        "changes are summarised"
    );
    gw.stop("TERM");
}

#[tokio::test]
async fn a_broken_reload_keeps_serving_and_stays_ready() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let path = gw.dir().join("gatehouse.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    let broken = good.replace(
        "cookie_secure = false",
        "cookie_secure = false\nmax_devices = \"two\"",
    );
    let line = broken.lines().position(|l| l.contains("\"two\"")).unwrap() + 1;
    std::fs::write(&path, &broken).unwrap();
    let log = gw.reload();
    assert!(
        log.contains(&format!("gatehouse.toml:{line}: session.max_devices")),
        "{log}"
    );
    let ready = raw_request(
        gw.admin,
        "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&ready), 200);
    let metrics = raw_request(
        gw.admin,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        metrics.contains("gatehouse_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
    gw.signed_in("alice", ALICE_PASSWORD).await;
}

#[test]
fn a_binary_upgrade_under_load_drops_no_request() {
    let upstream = Upstream::start();
    let mut gw = Gateway::start(
        &config(upstream.addr, "").replace("grace_period = \"0s\"", "grace_period = \"1s\""),
    );
    let old_pid = gw.pid();
    let load = Load::start(gw.addr, "/static/app.css", "a=b", 3);
    std::thread::sleep(Duration::from_millis(300));
    gw.upgrade();
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed) = load.finish();
    assert_ne!(gw.pid(), old_pid);
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during the upgrade",
        ok + failed
    );
    assert!(ok > 50, "the load ran ({ok} requests)");
    // the new process serves on the same address
    let resp = raw_request(
        gw.addr,
        "GET /static/after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&resp), 200);
}

#[tokio::test]
async fn json_logs_hold_neither_password_nor_cookie() {
    let upstream = Upstream::start();
    let gw = Gateway::start_with_flags(&config(upstream.addr, ""), &["--log-format", "json"]);
    let mut b = Browser::new(&gw.url("/"));
    b.login("alice", ALICE_PASSWORD, "/").await;
    let cookie = b.session_cookie().unwrap().clone();
    b.page("/x").await;
    let token = b.page("/.gatehouse/logout").await.field("csrf_token");
    b.post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;
    b.login("alice", ALICE_PASSWORD, "/").await;
    let second = b.session_cookie().unwrap().clone();
    let log = gw.log();
    for secret in [
        ALICE_PASSWORD,
        cookie.as_str(),
        cookie.split('.').next().unwrap(),
        second.split('.').next().unwrap(),
    ] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    assert!(
        log.contains("login_ok") && log.contains("session_ended"),
        "{log}"
    );
    assert_json_lines(&log);
}

/// Every non-empty line of `text` is a JSON object with a level and a
/// timestamp.
fn assert_json_lines(text: &str) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let upstream = Upstream::start();
    let mut gw = Gateway::start_with_flags(&config(upstream.addr, ""), &["--log-format", "json"]);
    gw.raw("GET /static/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    gw.stop("INT");
    let text = gw.log();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.iter().any(|l| l.contains("gatehouse::access")),
        "{text}"
    );
    assert_json_lines(&text);
}

/// Operator messages at start and on reload: an uneventful restart
/// invalidation is an info line, and a changed failure delay is named.
#[tokio::test]
async fn start_and_reload_say_what_happened_at_the_right_level() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(
        upstream.addr,
        "\n[login]\nfailure_delay = \"1s\"\n",
    ));
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| l.contains("security: restart invalidation: 0 sessions ended"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("INFO") && !line.contains("WARN"), "{line}");

    let path = gw.dir().join("gatehouse.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("failure_delay = \"1s\"", "failure_delay = \"3s\""),
    )
    .unwrap();
    let log = gw.reload();
    assert!(
        log.contains("config reloaded: login.failure_delay (1s → 3s)"),
        "{log}"
    );
}
