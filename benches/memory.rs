//! Memory per live session and the cost of revoke-all as the store grows
//! (1k → 1M sessions). Run: `cargo bench --bench memory`.
//! Memory is the growth of the process's resident set while the store is
//! filled: records, index entries and allocator overhead, all counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use gatehouse::clock::Timestamp;
use gatehouse::session::store::{DeviceLimit, MemoryStore, OnFull, SessionStore};
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

async fn fill(store: &MemoryStore, n: u64) {
    let limit = DeviceLimit {
        max: 0,
        on_full: OnFull::Refuse,
        liveness: Liveness {
            now: Timestamp::from_millis(1),
            policy: SessionPolicy {
                idle_timeout: Duration::from_secs(1800),
                absolute_timeout: Duration::from_secs(86_400),
            },
            marks: Watermarks::default(),
            password_fingerprint: [1; 8],
        },
        end_first: None,
    };
    let staff: gatehouse::auth::Groups = vec!["staff".to_string()].into();
    for i in 0..n {
        let record = SessionRecord {
            // 100k users with 10 sessions each at 1M: realistic index sizes
            user: format!("user{:06}", i / 10),
            created_at: Timestamp::from_millis(1_700_000_000_000 + i),
            last_seen: Timestamp::from_millis(1_700_000_000_000 + i),
            client_ip: Some(std::net::IpAddr::from([10, 0, (i >> 8) as u8, i as u8])),
            user_agent: UA.to_string(),
            password_fingerprint: [1; 8],
            // shared from the user's record, as at login
            groups: staff.clone(),
            ended: None,
        };
        store.insert(key(i), record, limit).await.unwrap();
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
    println!(
        "| {n} | {:.1} MiB | {} | {:?} |",
        grown as f64 / 1_048_576.0,
        grown / n,
        median(times)
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
    println!("| live sessions | resident growth | bytes per session | revoke-all (median of 101) |\n|---|---|---|---|");
    let me = std::env::current_exe().unwrap();
    for n in [1_000u64, 10_000, 100_000, 1_000_000] {
        let out = std::process::Command::new(&me)
            .args(["--one", &n.to_string()])
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
