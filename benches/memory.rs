//! Memory per live session and the cost of revoke-all as the store grows
//! (1k → 1M sessions). Run: `cargo bench --bench memory`.
//! Memory is the growth of the process's resident set while the store is
//! filled: records, index entries and allocator overhead, all counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/redis.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use gatehouse::clock::Timestamp;
use gatehouse::session::store::redis::conn::Target;
use gatehouse::session::store::{DeviceLimit, MemoryStore, RedisOptions, RedisStore, SessionStore};
use gatehouse::session::{
    EndReason, Liveness, SessionKey, SessionPolicy, SessionRecord, Watermarks,
};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36";

fn key(n: u64) -> SessionKey {
    // keys are SHA-256 output in production: spread them the same way
    let d = ring::digest::digest(&ring::digest::SHA256, &n.to_le_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(d.as_ref());
    SessionKey(k)
}

async fn fill(store: &dyn SessionStore, n: u64) {
    fill_range(store, 0, n).await;
}

/// 30 minutes idle, 24 hours absolute: the defaults.
fn policy() -> SessionPolicy {
    SessionPolicy {
        idle_timeout: Duration::from_secs(1800),
        absolute_timeout: Duration::from_secs(86_400),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One size, measured in a fresh process so memory freed by a smaller run
/// cannot hide part of a larger one.
fn measure(n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let before = resident_bytes();
    let store = MemoryStore::new();
    rt.block_on(fill(&store, n));
    let grown = resident_bytes().saturating_sub(before);
    let times: Vec<Duration> = (0..101u64)
        .map(|i| {
            let t = Instant::now();
            rt.block_on(store.revoke_all(EndReason::Revoked, Timestamp::from_millis(i)))
                .unwrap();
            t.elapsed()
        })
        .collect();
    // The minute's sweep when every session is live: it walks the whole
    // store, one shard (of 64) under its write lock at a time.
    let policy = policy();
    let now = Timestamp::from_millis(1_700_000_000_000 + n + 1000);
    let sweeps: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let dropped = rt.block_on(store.sweep(now, &policy)).unwrap();
            assert_eq!(dropped, 0, "every session is live");
            t.elapsed()
        })
        .collect();
    println!(
        "| {n} | {:.1} MiB | {} | {:?} | {:?} |",
        grown as f64 / 1_048_576.0,
        grown / n,
        median(times),
        median(sweeps)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("memory: benchmark");
        return;
    }
    if let Some(n) = args
        .iter()
        .position(|a| a == "--one")
        .and_then(|i| args.get(i + 1))
    {
        measure(n.parse().unwrap());
        return;
    }
    if args.iter().any(|a| a == "--redis") {
        measure_redis();
        return;
    }
    println!("| live sessions | resident growth | bytes per session | revoke-all (median of 101) | sweep, nothing to drop (median of 5) |\n|---|---|---|---|---|");
    let me = std::env::current_exe().unwrap();
    for n in [1_000u64, 10_000, 100_000, 1_000_000] {
        let out = std::process::Command::new(&me)
            .args(["--one", &n.to_string()])
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    let out = std::process::Command::new(&me)
        .arg("--redis")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

fn used_memory(server: &redis_server::RedisServer) -> u64 {
    server
        .cli(&["INFO", "memory"])
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes per session in Redis (record, index entry, pointer, live-set
/// entry), and revoke-all at 10k and 100k sessions.
fn measure_redis() {
    if redis_server::require("redis-server").is_none() {
        return;
    }
    let server = redis_server::RedisServer::start().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("\n| Redis: sessions | used_memory growth | bytes per session | revoke-all |\n|---|---|---|---|");
    for n in [10_000u64, 100_000] {
        let store: std::sync::Arc<dyn SessionStore> = std::sync::Arc::new(
            RedisStore::new(RedisOptions {
                target: Target::parse(&server.url()).unwrap(),
                prefix: format!("m{n}"),
                timeout: Duration::from_secs(5),
                cache_ttl: Duration::from_secs(1),
                max_idle: Duration::from_secs(1800),
                max_age: Duration::from_secs(86_400),
            })
            .unwrap(),
        );
        let before = used_memory(&server);
        rt.block_on(async {
            // 32 writers at once: one would wait on every round trip
            let tasks: Vec<_> = (0..32u64)
                .map(|w| {
                    let store = std::sync::Arc::clone(&store);
                    tokio::spawn(async move {
                        let part = n / 32;
                        fill_range(&*store, w * part, part).await;
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let held = (n / 32) * 32;
        let grown = used_memory(&server).saturating_sub(before);
        let t = Instant::now();
        rt.block_on(store.revoke_all(EndReason::Revoked, Timestamp::from_millis(5)))
            .unwrap();
        println!(
            "| {held} | {:.1} MiB | {} | {:?} |",
            grown as f64 / 1_048_576.0,
            grown / held,
            t.elapsed()
        );
    }
}

async fn fill_range(store: &dyn SessionStore, from: u64, n: u64) {
    let limit = DeviceLimit::none(Liveness {
        now: Timestamp::from_millis(1),
        policy: policy(),
        marks: Watermarks::default(),
        password_fingerprint: [1; 8],
    });
    let staff: gatehouse::auth::Groups = vec!["staff".to_string()].into();
    for i in from..from + n {
        let record = SessionRecord {
            user: format!("user{:06}", i / 10),
            created_at: Timestamp::from_millis(1_700_000_000_000 + i),
            last_seen: Timestamp::from_millis(1_700_000_000_000 + i),
            client_ip: Some(std::net::IpAddr::from([10, 0, (i >> 8) as u8, i as u8])),
            user_agent: UA.to_string(),
            password_fingerprint: [1; 8],
            groups: staff.clone(),
            ended: None,
        };
        store.insert(key(i), record, limit).await.unwrap();
    }
}
