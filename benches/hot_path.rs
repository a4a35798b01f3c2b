//! Micro-benchmarks of what every request pays (normalisation, header
//! stripping, cookie lookup, session check against a populated memory
//! store) and of what a login pays (argon2id). Run: `cargo bench --bench hot_path`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::Arc;

use gatehouse::auth::{password, User, UserDb};
use gatehouse::clock::SystemClock;
use gatehouse::config::IdentitySettings;
use gatehouse::gateway::authenticate::authenticate;
use gatehouse::gateway::state::{Shared, Snapshot};
use gatehouse::gateway::{normalize, redirect};
use gatehouse::session::store::{DeviceLimit, MemoryStore, SessionStore};
use gatehouse::session::{SessionId, SessionRecord};
use gatehouse::wire::{cookie, identity_headers};

const HEADERS: [&str; 12] = [
    "host",
    "user-agent",
    "accept",
    "accept-language",
    "accept-encoding",
    "cookie",
    "referer",
    "connection",
    "sec-fetch-mode",
    "sec-fetch-site",
    "x-requested-with",
    "x-remote-user",
];

fn pure(c: &mut Criterion) {
    c.bench_function("normalize_target", |b| {
        b.iter(|| {
            normalize::normalize_target(black_box(
                "/app/reports/2024/../q/%7Euser?page=2&sort=desc",
            ))
        })
    });
    c.bench_function("safe_redirect", |b| {
        b.iter(|| redirect::safe_redirect(black_box("/app/reports?page=2&sort=desc")))
    });
    let identity = IdentitySettings::defaults();
    c.bench_function("strip_12_headers", |b| {
        b.iter(|| {
            HEADERS
                .iter()
                .filter(|h| identity_headers::must_strip(black_box(h), &identity))
                .count()
        })
    });
    let header = "csrftoken=abcdefabcdefabcdef; sessionid=0123456789abcdef; gatehouse=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; _ga=GA1.1.1";
    c.bench_function("cookie_find", |b| {
        b.iter(|| cookie::find(black_box(header.as_bytes()), "gatehouse"))
    });
}

fn unlimited(clock: &SystemClock) -> DeviceLimit {
    use gatehouse::clock::Clock;
    DeviceLimit::none(gatehouse::session::Liveness {
        now: clock.now(),
        policy: gatehouse::session::SessionPolicy {
            idle_timeout: std::time::Duration::from_secs(60),
            absolute_timeout: std::time::Duration::from_secs(60),
        },
        marks: gatehouse::session::Watermarks::default(),
        password_fingerprint: [0; 8],
    })
}

fn session_check(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hash = password::hash_password("bench-password").unwrap();
    let user = User {
        username: "alice".into(),
        password_fingerprint: password::fingerprint(&hash),
        password_hash: hash,
        name: None,
        email: None,
        groups: vec!["staff".to_string()].into(),
        max_devices: None,
        disabled: false,
        identity_values: Default::default(),
    };
    let settings = gatehouse::demo::demo_settings(
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.1:2".parse().unwrap(),
    );
    let store = Arc::new(MemoryStore::new());
    let clock = SystemClock;
    let rng = ring::rand::SystemRandom::new();
    let mut cookie_value = String::new();
    rt.block_on(async {
        use gatehouse::clock::Clock;
        for _ in 0..10_000 {
            let id = SessionId::generate(&rng).unwrap();
            let record = SessionRecord {
                user: "alice".into(),
                created_at: clock.now(),
                last_seen: clock.now(),
                client_ip: None,
                user_agent: "bench".into(),
                password_fingerprint: user.password_fingerprint,
                groups: Vec::new().into(),
                ended: None,
            };
            store
                .insert(id.key(), record, unlimited(&clock))
                .await
                .unwrap();
            cookie_value = id.as_cookie_value().to_string();
        }
    });
    let snapshot = Snapshot::new(settings, UserDb::from_users([user]));
    let shared = Shared::new(snapshot, store, Arc::new(SystemClock), Some(vec![1; 32])).unwrap();
    let snap = shared.snapshot.load_full();
    let header = format!("sessionid=abc; gatehouse={cookie_value}");
    c.bench_function("authenticate_10k_sessions", |b| {
        b.to_async(&rt).iter(|| async {
            let auth = authenticate(&shared, &snap, Some(black_box(header.as_bytes())), true).await;
            assert!(matches!(
                auth,
                Ok(gatehouse::gateway::authenticate::Auth::Valid(_))
            ));
        })
    });
}

fn login(c: &mut Criterion) {
    let hash = password::hash_password("bench-password").unwrap();
    let mut group = c.benchmark_group("login");
    group.sample_size(20);
    group.bench_function("argon2id_verify", |b| {
        b.iter(|| password::verify_password(&hash, black_box("bench-password")))
    });
    group.finish();
}

criterion_group!(benches, pure, session_check, login);
criterion_main!(benches);
