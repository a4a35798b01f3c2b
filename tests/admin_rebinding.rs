//! The admin listener against DNS rebinding: a page whose name resolves to
//! 127.0.0.1 makes the browser send that name as `Host`; every endpoint
//! refuses it, token or not. Loopback names (and configured ones) are
//! answered. `/api/*` needs a token unless the operator opted in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    check_config, config, raw_request, raw_status, Gateway, Upstream, ADMIN_TOKEN, ALICE_PASSWORD,
};
use std::process::Command;

const SESSION_ID: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn with_server_keys(upstream: std::net::SocketAddr, keys: &str) -> String {
    config(upstream, "").replace("threads = 1\n", &format!("threads = 1\n{keys}"))
}

/// Every admin endpoint, as (method, path).
fn endpoints() -> Vec<(&'static str, String)> {
    vec![
        ("GET", "/health".into()),
        ("GET", "/ready".into()),
        ("GET", "/metrics".into()),
        ("GET", "/api/sessions".into()),
        ("GET", "/api/sessions?user=alice".into()),
        ("DELETE", format!("/api/sessions/{SESSION_ID}")),
        ("POST", "/api/users/alice/revoke".into()),
        ("POST", "/api/revoke-all".into()),
        ("POST", "/api/revoke-all?dry_run=true".into()),
    ]
}

/// One raw admin request with this `Host` line (or none) and the token.
fn call(gw: &Gateway, method: &str, path: &str, host: Option<&str>, token: Option<&str>) -> String {
    let host = host.map_or_else(String::new, |h| format!("Host: {h}\r\n"));
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    raw_request(
        gw.admin,
        &format!(
            "{method} {path} HTTP/1.1\r\n{host}{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    )
}

#[tokio::test]
async fn a_rebinding_host_is_refused_on_every_admin_endpoint() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&with_server_keys(
        upstream.addr,
        "admin_token_file = \"admin.token\"\n",
    ));
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let port = gw.admin.port();
    let hosts = [
        "evil.example:9091".to_string(),
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("EVIL.EXAMPLE:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("admin.internal:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("0.0.0.0:{port}"),
        format!("10.0.0.1:{port}"),
        format!("127.0.0.1:{port}, evil.example"),
        String::new(),
    ];
    for (method, path) in endpoints() {
        for host in &hosts {
            // the token does not help: the name is what is refused
            let r = call(&gw, method, &path, Some(host), Some(ADMIN_TOKEN));
            assert!(
                [400, 421].contains(&raw_status(&r)),
                "{method} {path} Host: {host:?} answered:\n{r}"
            );
            assert!(!r.contains("gatehouse_requests_total"), "{r}");
            assert!(!r.contains("\"sessions\""), "{r}");
        }
        let r = call(&gw, method, &path, Some("evil.example:9091"), None);
        assert_eq!(raw_status(&r), 421, "{method} {path}: {r}");
        assert!(r.contains("misdirected_request"), "{r}");
        // HTTP/1.1 without any Host
        let r = call(&gw, method, &path, None, Some(ADMIN_TOKEN));
        assert_eq!(raw_status(&r), 421, "{method} {path} without Host: {r}");
        // two Host headers, one of them loopback
        let r = raw_request(
            gw.admin,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
            ),
        );
        // (Pingora itself closes such a connection unanswered)
        assert!(
            [0, 400].contains(&raw_status(&r)),
            "{method} {path} two Hosts: {r}"
        );
        // absolute form: the name in it is the one checked; one that
        // disagrees with a loopback Host is refused too (Pingora closes)
        for host in [format!("evil.example:{port}"), format!("127.0.0.1:{port}")] {
            let r = raw_request(
                gw.admin,
                &format!(
                    "{method} http://evil.example:{port}{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
                ),
            );
            let refused = if host.starts_with("evil") {
                raw_status(&r) == 421
            } else {
                [0, 421].contains(&raw_status(&r))
            };
            assert!(refused, "{method} absolute {path} Host {host}: {r}");
        }
    }
    // none of the revokes above did anything
    assert_eq!(alice.page("/app/").await.status, 200);
}

#[tokio::test]
async fn loopback_and_configured_names_are_answered() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&with_server_keys(
        upstream.addr,
        "admin_token_file = \"admin.token\"\nadmin_hosts = [\"admin.internal\", \"Metrics.Example\", \"[::1]\"]\n",
    ));
    let port = gw.admin.port();
    let hosts = [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        format!("127.0.0.2:{port}"),
        format!("localhost:{port}"),
        "LocalHost".to_string(),
        format!("localhost.:{port}"),
        format!("[::1]:{port}"),
        "[::1]".to_string(),
        format!("admin.internal:{port}"),
        "ADMIN.internal".to_string(),
        format!("metrics.example:{port}"),
    ];
    for host in &hosts {
        for (method, path) in endpoints() {
            let r = call(&gw, method, &path, Some(host), Some(ADMIN_TOKEN));
            let status = raw_status(&r);
            // the DELETE names a session that does not exist
            let expected = if method == "DELETE" { 404 } else { 200 };
            assert_eq!(status, expected, "{method} {path} Host: {host}: {r}");
        }
    }
    // an HTTP/1.0 health checker that sends no Host
    let r = raw_request(gw.admin, "GET /health HTTP/1.0\r\n\r\n");
    assert_eq!(raw_status(&r), 200, "{r}");
    // what a browser sends is still refused (the Origin check stays)
    let r = raw_request(
        gw.admin,
        &format!("POST /api/revoke-all HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(raw_status(&r), 403, "{r}");
}

fn sessions_command(gw: &Gateway, token_file: Option<&std::path::Path>) -> (i32, String) {
    let mut cmd = Command::new(common::binary());
    cmd.args([
        "sessions",
        "list",
        "--admin",
        &format!("http://{}", gw.admin),
    ])
    .env_remove("GATEHOUSE_ADMIN_TOKEN");
    if let Some(f) = token_file {
        cmd.arg("--token-file").arg(f);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn without_a_token_the_api_is_refused_by_default() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    for (method, path) in endpoints() {
        let (status, body) = gw.admin(method, &path, None).await;
        if path.starts_with("/api/") {
            assert_eq!(status, 403, "{method} {path}: {body}");
            assert!(body.contains("server.admin_token_file"), "{body}");
            // a token nobody configured opens nothing
            let (status, _) = gw.admin(method, &path, Some(ADMIN_TOKEN)).await;
            assert_eq!(status, 403, "{method} {path}");
        } else {
            assert_eq!(status, 200, "{method} {path}: {body}");
        }
    }
    assert_eq!(alice.page("/app/").await.status, 200, "nothing was revoked");
    let (code, out) = sessions_command(&gw, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("403") && out.contains("admin_token_file"),
        "{out}"
    );
}

#[tokio::test]
async fn the_opt_in_opens_the_api_to_loopback_names_only() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&with_server_keys(
        upstream.addr,
        "admin_allow_unauthenticated = true\n",
    ));
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let (status, body) = gw.admin("GET", "/api/sessions?user=alice", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"user\":\"alice\""), "{body}");
    let (code, out) = sessions_command(&gw, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("alice"), "{out}");
    // the opt-in is no way around the Host check
    for (method, path) in endpoints() {
        let r = call(&gw, method, &path, Some("evil.example:9091"), None);
        assert_eq!(raw_status(&r), 421, "{method} {path}: {r}");
    }
    assert_eq!(alice.page("/app/").await.status, 200);
    let (status, body) = gw.admin("POST", "/api/revoke-all", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(alice.page("/app/").await.status, 303);
}

#[tokio::test]
async fn with_a_token_the_api_wants_exactly_that_token() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&with_server_keys(
        upstream.addr,
        "admin_token_file = \"admin.token\"\n",
    ));
    gw.signed_in("alice", ALICE_PASSWORD).await;
    for (method, path) in endpoints()
        .into_iter()
        .filter(|(_, p)| p.starts_with("/api/"))
    {
        for wrong in [None, Some("wrong-token-0123456789"), Some("")] {
            let (status, _) = gw.admin(method, &path, wrong).await;
            assert_eq!(status, 401, "{method} {path} {wrong:?}");
        }
    }
    let (status, body) = gw
        .admin("GET", "/api/sessions?user=alice", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, 200, "{body}");
    let (code, out) = sessions_command(&gw, Some(&gw.dir().join("admin.token")));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("alice"), "{out}");
    // or the gateway's config tells the command where to go and what token
    let out = Command::new(common::binary())
        .args(["sessions", "list", "-c"])
        .arg(gw.dir().join("gatehouse.toml"))
        .env_remove("GATEHOUSE_ADMIN_TOKEN")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("alice"), "{text}");
}

#[test]
fn admin_keys_are_checked_with_file_line_and_key() {
    let base = |keys: &str| {
        with_server_keys("127.0.0.1:9".parse().unwrap(), keys)
            .replace("@LISTEN@", "127.0.0.1:8080")
            .replace("@ADMIN@", "127.0.0.1:9091")
    };
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), ADMIN_TOKEN).unwrap();
    let text = base(&format!(
        "admin_token_file = {:?}\nadmin_allow_unauthenticated = true\n",
        token.path()
    ));
    let line = text
        .lines()
        .position(|l| l.starts_with("admin_allow_unauthenticated"))
        .unwrap()
        + 1;
    let (code, _, err) = check_config(&text);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "gatehouse.toml:{line}: server.admin_allow_unauthenticated: a token is set"
        )),
        "{err}"
    );
    for (bad, index) in [
        ("[\"http://admin.internal\"]", 0),
        ("[\"ok.internal\", \"admin.internal:9091\"]", 1),
        ("[\"\"]", 0),
        ("[\"a b\"]", 0),
    ] {
        let text = base(&format!("admin_hosts = {bad}\n"));
        let line = text
            .lines()
            .position(|l| l.starts_with("admin_hosts"))
            .unwrap()
            + 1;
        let (code, _, err) = check_config(&text);
        assert_eq!(code, 1, "{bad}");
        assert!(
            err.contains(&format!(
                "gatehouse.toml:{line}: server.admin_hosts[{index}]"
            )),
            "{bad}: {err}"
        );
    }
    // opting in does not open a listener beyond loopback
    let text = base("admin_allow_unauthenticated = true\n").replace(
        "admin_listen = \"127.0.0.1:9091\"",
        "admin_listen = \"0.0.0.0:9091\"",
    );
    let (code, _, err) = check_config(&text);
    assert_eq!(code, 1);
    assert!(err.contains("server.admin_listen"), "{err}");
}
