//! The soak: six signed-in clients, login churn with eviction, a SIGHUP
//! every 10 s and a revocation every 5 s, for `GATEHOUSE_SOAK_SECS`
//! (default 240) on each store. Nothing may fail, nobody signed in may be
//! signed out, and the log may hold no ERROR line. Prints its figures.
//!
//! `cargo test --release --test soak -- --ignored --nocapture --test-threads 1`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::load::{footprint, metric_sum, Load, Role};
use common::redis::RedisServer;
use common::{config, Gateway, Upstream, ALICE_PASSWORD, BOB_PASSWORD};
use std::time::{Duration, Instant};

fn soak_length() -> Duration {
    let secs = std::env::var("GATEHOUSE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);
    Duration::from_secs(secs)
}

/// Alice (an admin) may have two devices: her churn evicts her oldest.
const LIMITS: &str = "max_devices = 10\non_device_limit = \"evict_oldest\"\n\n[session.groups.admins]\nmax_devices = 2\n";

async fn soak(store: &str, store_config: &str) {
    let upstream = Upstream::start();
    let text = config(upstream.addr, &format!("{store_config}{LIMITS}")).replace(
        "[server]\n",
        "[server]\nsecret_file = \"secret.key\"\nadmin_token_file = \"admin.token\"\n",
    );
    let gw = Gateway::start(&text);
    let mut roles = Vec::new();
    for user in ["bob", "dave"] {
        for _ in 0..3 {
            roles.push(Role::signed_in(user, BOB_PASSWORD));
        }
    }
    roles.push(Role::login_churn("alice", ALICE_PASSWORD));
    let started = Instant::now();
    let load = Load::start(&gw.url("/"), &roles);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = footprint(gw.pid());

    let (mut reloads, mut revocations) = (0, 0);
    let mut next_reload = Instant::now() + Duration::from_secs(10);
    while started.elapsed() < soak_length() {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (status, body) = gw
            .admin("POST", "/api/users/alice/revoke", Some(common::ADMIN_TOKEN))
            .await;
        assert_eq!(status, 200, "{body}");
        revocations += 1;
        if Instant::now() >= next_reload {
            let log = tokio::task::block_in_place(|| gw.reload());
            assert!(!log.contains("config reload failed"), "{log}");
            reloads += 1;
            next_reload += Duration::from_secs(10);
        }
    }
    let after = footprint(gw.pid());
    let seen = load.finish().await;
    let took = started.elapsed();
    let (_, metrics) = gw.admin("GET", "/metrics", None).await;
    let log = gw.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    let warnings = log.lines().filter(|l| l.contains(" WARN ")).count();
    let failures = seen.unexpected.len() as u64 + seen.store_refused + seen.busy;
    eprintln!(
        "soak on the {store} store: {:.0} s, {} requests ({} ok, {} logins), {failures} failed, \
         {} signed-in clients signed out, {reloads} reloads, {revocations} revocations, \
         {} ERROR lines, {warnings} WARN lines (audit included), \
         RSS {} → {} KiB, descriptors {} → {}",
        took.as_secs_f64(),
        seen.requests,
        seen.ok,
        seen.logins,
        seen.signed_out,
        errors.len(),
        before.0,
        after.0,
        before.1,
        after.1,
    );
    assert!(seen.unexpected.is_empty(), "{:?}", seen.unexpected);
    assert_eq!(failures, 0, "{seen:?}");
    assert_eq!(seen.signed_out, 0, "nobody signed in is signed out");
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(metric_sum(&metrics, "gatehouse_store_errors_total"), 0);
    assert!(seen.ok > 1000, "the load ran: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: cargo test --test soak -- --ignored"]
async fn soak_on_the_memory_store() {
    soak("memory", "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: cargo test --test soak -- --ignored"]
async fn soak_on_the_redis_store() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    soak(
        "redis",
        &format!(
            "store = \"redis\"\nredis_url = \"{}\"\ninvalidate_on_restart = false\n",
            redis.url()
        ),
    )
    .await;
}
