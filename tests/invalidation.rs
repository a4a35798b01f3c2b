//! End to end: restarts sign everyone out (or not, by choice), the admin API
//! and the `gatehouse sessions` commands revoke, and metrics parse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, Gateway, Upstream, ALICE_PASSWORD, BOB_PASSWORD};
use std::process::Command;

#[tokio::test]
async fn a_restart_signs_everyone_out_with_reason_restart() {
    for signal in ["KILL", "TERM"] {
        let upstream = Upstream::start();
        let mut gw = Gateway::start(&config(upstream.addr, ""));
        let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
        assert_eq!(b.page("/").await.status, 200);
        gw.stop(signal);
        gw.start_again();
        b.reconnect();
        let r = b.page("/reports").await;
        assert_eq!(r.status, 303, "SIG{signal}");
        assert_eq!(
            r.location(),
            "/.gatehouse/login?rd=%2Freports&reason=restart",
            "SIG{signal}"
        );
        let page = b.page(r.location()).await;
        assert!(page.body.contains("restarted"), "{}", page.body);
        assert!(
            gw.log().contains("security: restart invalidation"),
            "{}",
            gw.log()
        );
    }
}

#[tokio::test]
async fn a_planned_restart_can_keep_sessions() {
    let upstream = Upstream::start();
    let text = config(upstream.addr, "invalidate_on_restart = false\n")
        .replace("threads = 1\n", "threads = 1\nstate_dir = \"state\"\n");
    let mut gw = Gateway::start(&text);
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    gw.stop("TERM");
    let snapshot = gw.dir().join("state").join("sessions.json");
    assert!(snapshot.exists(), "{}", gw.log());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&snapshot).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    gw.start_again();
    b.reconnect();
    assert_eq!(
        b.page("/").await.status,
        200,
        "kept across a graceful restart"
    );
    assert!(gw.log().contains("restored 1 sessions"), "{}", gw.log());

    // SIGKILL saves nothing: that session is lost, and its holder told why
    gw.stop("KILL");
    gw.start_again();
    b.reconnect();
    let r = b.page("/").await;
    assert!(r.location().ends_with("reason=restart"), "{}", r.location());
}

#[tokio::test]
async fn a_corrupt_snapshot_is_a_warning_not_a_crash() {
    let upstream = Upstream::start();
    let text = config(upstream.addr, "invalidate_on_restart = false\n")
        .replace("threads = 1\n", "threads = 1\nstate_dir = \"state\"\n");
    let mut gw = Gateway::start(&text);
    gw.stop("TERM");
    std::fs::write(
        gw.dir().join("state").join("sessions.json"),
        b"\x00garbage{",
    )
    .unwrap();
    gw.start_again();
    assert!(
        gw.log().contains("starting with no sessions"),
        "{}",
        gw.log()
    );
    gw.signed_in("alice", ALICE_PASSWORD).await;
}

fn admin_config(upstream: std::net::SocketAddr) -> String {
    config(upstream, "").replace(
        "threads = 1\n",
        "threads = 1\nadmin_token_file = \"admin.token\"\n",
    )
}

const TOKEN: &str = "admin-token-0123456789";

fn admin_gateway() -> (Upstream, Gateway) {
    let upstream = Upstream::start();
    // the token file must exist before the config is validated
    let gw = Gateway::start_with_files(&admin_config(upstream.addr), &[("admin.token", TOKEN)]);
    (upstream, gw)
}

#[tokio::test]
async fn the_admin_api_wants_its_token() {
    let (_u, gw) = admin_gateway();
    assert_eq!(gw.admin("GET", "/health", None).await.0, 200);
    assert_eq!(gw.admin("GET", "/ready", None).await.0, 200);
    assert_eq!(gw.admin("GET", "/api/sessions", None).await.0, 401);
    assert_eq!(
        gw.admin("GET", "/api/sessions", Some("wrong-token-0123456789"))
            .await
            .0,
        401
    );
    assert_eq!(gw.admin("POST", "/api/revoke-all", None).await.0, 401);
    let (status, body) = gw.admin("GET", "/api/sessions", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["sessions"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn revoke_all_dry_run_counts_and_the_real_one_ends_everything() {
    let (_u, gw) = admin_gateway();
    let mut a = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut b = gw.signed_in("bob", BOB_PASSWORD).await;

    let (status, body) = gw
        .admin("POST", "/api/revoke-all?dry_run=true", Some(TOKEN))
        .await;
    assert_eq!(status, 200);
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["ended"], 2);
    assert_eq!(j["dry_run"], true);
    assert_eq!(a.page("/").await.status, 200, "a dry run ends nothing");

    let (status, body) = gw.admin("POST", "/api/revoke-all", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    for br in [&mut a, &mut b] {
        let r = br.page("/").await;
        assert!(r.location().ends_with("reason=revoked"), "{}", r.location());
    }
    assert!(
        gw.log().contains("security: revoke-all: 2 sessions ended"),
        "{}",
        gw.log()
    );
    // signing in again works
    gw.signed_in("alice", ALICE_PASSWORD).await;
}

#[tokio::test]
async fn revoke_user_ends_only_that_users_sessions() {
    let (_u, gw) = admin_gateway();
    let mut a1 = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut a2 = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut b = gw.signed_in("bob", BOB_PASSWORD).await;
    let (_, body) = gw
        .admin("POST", "/api/users/alice/revoke?dry_run=true", Some(TOKEN))
        .await;
    assert!(body.contains("\"ended\":2"), "{body}");
    assert_eq!(a1.page("/").await.status, 200);
    let (status, _) = gw
        .admin("POST", "/api/users/alice/revoke", Some(TOKEN))
        .await;
    assert_eq!(status, 200);
    assert!(a1.page("/").await.location().ends_with("reason=revoked"));
    assert!(a2.page("/").await.location().ends_with("reason=revoked"));
    assert_eq!(b.page("/").await.status, 200);

    // one session by its id
    let (_, body) = gw.admin("GET", "/api/sessions?user=bob", Some(TOKEN)).await;
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = j["sessions"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(j["sessions"][0]["device"], "Firefox on Linux");
    let (status, _) = gw
        .admin("DELETE", &format!("/api/sessions/{id}"), Some(TOKEN))
        .await;
    assert_eq!(status, 200);
    assert!(b.page("/").await.location().ends_with("reason=revoked"));
    assert_eq!(
        gw.admin("DELETE", &format!("/api/sessions/{id}"), Some(TOKEN))
            .await
            .0,
        404
    );
    assert_eq!(
        gw.admin("DELETE", "/api/sessions/nothex", Some(TOKEN))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text() {
    let (_u, gw) = admin_gateway();
    let mut a = gw.signed_in("alice", ALICE_PASSWORD).await;
    a.page("/").await;
    gw.login_status("alice", "wrong-password").await;
    let (status, text) = gw.admin("GET", "/metrics", None).await;
    assert_eq!(status, 200);
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let metric = name.split('{').next().unwrap();
        assert!(
            metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        assert!(
            text.contains(&format!("# TYPE {metric} ")),
            "{metric} has no TYPE"
        );
        samples.insert(name.to_string(), value);
    }
    assert_eq!(samples["gatehouse_logins_total{result=\"ok\"}"], 1.0);
    assert_eq!(samples["gatehouse_logins_total{result=\"failed\"}"], 1.0);
    assert!(samples["gatehouse_requests_total{outcome=\"forwarded\"}"] >= 1.0);
    assert_eq!(samples["gatehouse_sessions"], 1.0);
    assert_eq!(
        samples["gatehouse_invalidations_total{kind=\"restart\"}"],
        1.0
    );
}

#[tokio::test]
async fn the_sessions_command_lists_and_revokes() {
    let (_u, gw) = admin_gateway();
    let mut a = gw.signed_in("alice", ALICE_PASSWORD).await;
    let token_file = gw.dir().join("admin.token");
    let run = |args: &[&str]| {
        let out = Command::new(common::binary())
            .arg("sessions")
            .args(args)
            .args(["--admin", &format!("http://{}", gw.admin)])
            .arg("--token-file")
            .arg(&token_file)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = run(&["list"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("alice") && out.contains("Firefox on Linux") && out.contains("1 session"),
        "{out}"
    );
    let (code, out) = run(&["revoke-all", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would end 1 session"), "{out}");
    assert_eq!(a.page("/").await.status, 200);
    let (code, out) = run(&["revoke-user", "alice"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ended 1 session"), "{out}");
    assert_eq!(a.page("/").await.status, 303);

    // a wrong token is an error with a message, exit 1
    let out = Command::new(common::binary())
        .args([
            "sessions",
            "list",
            "--admin",
            &format!("http://{}", gw.admin),
        ])
        .env("GATEHOUSE_ADMIN_TOKEN", "not-the-token-at-all")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

#[test]
fn a_public_admin_listener_needs_a_token() {
    let text = config("127.0.0.1:9".parse().unwrap(), "")
        .replace("@LISTEN@", "127.0.0.1:8080")
        .replace("@ADMIN@", "0.0.0.0:9091");
    let (code, _, err) = common::check_config(&text);
    assert_eq!(code, 1);
    assert!(err.contains("server.admin_listen: the admin API listens beyond this machine"));
}
