//! Heap allocations per proxied request (issue 19). The gateway runs in
//! this process (`gatehouse::server::run`, one worker thread) under a
//! global allocator that counts every `alloc`, `alloc_zeroed` and
//! `realloc`; the client is `curl`, a process of its own, so only the
//! server side is counted. Each setup gets 1,000 and then 5,000 requests on
//! one keep-alive connection; the difference over 4,000 is the cost of one
//! request without the connection's. Deterministic up to the odd timer of
//! a background task (well under 0.01 per request).
//!
//! Rows: a bare Pingora pass-through (the same process, its own port) as
//! the floor, the gateway's public route, and the gateway signed in with
//! the memory store and (with `redis-server` on PATH) the Redis store and
//! its cache. Needs nginx (the upstream) and curl.
//!
//!   cargo bench --bench allocations
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

const STARTUP: Duration = Duration::from_secs(60);

use std::alloc::{GlobalAlloc, Layout};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::redis::RedisServer;
use common::{free_port, ALICE_PASSWORD};
use support::*;

/// The gateway binary's allocator, counted.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to mimalloc unchanged; the counter is the
// only addition.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations while curl sends `n` requests for `url` on one connection.
fn allocations(url: &str, cookie: Option<&str>, n: u32) -> u64 {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-o", "/dev/null", "--fail"]);
    if let Some(c) = cookie {
        curl.args(["-H", &format!("Cookie: {c}")]);
    }
    curl.arg(format!("{url}?[1-{n}]"));
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let status = curl.status().expect("curl runs");
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(status.success(), "{url}: curl failed ({status})");
    after - before
}

/// Allocations of one request, connection set-up and start-up excluded.
fn per_request(url: &str, cookie: Option<&str>) -> f64 {
    allocations(url, cookie, 200); // warm-up: pools, caches, lazy values
    let few = allocations(url, cookie, 1000);
    let many = allocations(url, cookie, 5000);
    (many as f64 - few as f64) / 4000.0
}

fn bare_pingora(listen: SocketAddr, upstream: SocketAddr) {
    std::thread::spawn(move || serve_pass_through(&listen.to_string(), upstream));
    wait_for(listen, STARTUP);
}

/// Starts a gateway in this process on `config` (`[session]` extra
/// lines); returns its address.
fn gateway(dir: &std::path::Path, name: &str, upstream: SocketAddr, session: &str) -> SocketAddr {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let text = common::config(upstream, session)
        .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
        .replace("admin_listen = \"@ADMIN@\"", "admin_listen = \"\"")
        .replace(
            "[server]\n",
            &format!(
                "[server]\nsecret_file = \"secret.key\"\npid_file = \"{}\"\n",
                dir.join("gatehouse.pid").display()
            ),
        );
    std::fs::write(dir.join("gatehouse.toml"), text).unwrap();
    std::fs::write(dir.join("users.toml"), common::users_toml()).unwrap();
    std::fs::write(dir.join("secret.key"), common::TEST_SECRET).unwrap();
    let path = dir.join("gatehouse.toml");
    std::thread::spawn(move || {
        if let Err(e) = gatehouse::server::run(&path, gatehouse::server::ProcessFlags::default()) {
            eprintln!("gateway {}: {e}", path.display());
        }
    });
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for(addr, STARTUP);
    addr
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    if !have("nginx") || !have("curl") {
        eprintln!("SKIPPED: allocations needs nginx and curl on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let upstream: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let conf = dir.path().join("upstream.conf");
    let d = dir.path().display();
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\npid {d}/upstream.pid;\nerror_log {d}/upstream.err warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             server {{ listen {upstream}; location / {{ return 200 \"ok\"; }} }} }}\n"
        ),
    )
    .unwrap();
    let mut nginx = Command::new("nginx")
        .args([
            "-c",
            conf.to_str().unwrap(),
            "-p",
            dir.path().to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    wait_for(upstream, STARTUP);

    let mut rows: Vec<(String, f64)> = Vec::new();
    let bare: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    bare_pingora(bare, upstream);
    rows.push((
        "bare Pingora pass-through".into(),
        per_request(&format!("http://{bare}/x"), None),
    ));

    let memory = gateway(dir.path(), "memory", upstream, "");
    rows.push((
        "gateway, public route".into(),
        per_request(&format!("http://{memory}/static/x"), None),
    ));
    let cookie = login_cookie(memory, "alice", ALICE_PASSWORD);
    rows.push((
        "gateway, authenticated (memory store)".into(),
        per_request(&format!("http://{memory}/x"), Some(&cookie)),
    ));

    let redis = RedisServer::start();
    if let Some(redis) = &redis {
        let store = format!("store = \"redis\"\nredis_url = \"{}\"\n", redis.url());
        let cached = gateway(dir.path(), "redis", upstream, &store);
        let cookie = login_cookie(cached, "alice", ALICE_PASSWORD);
        rows.push((
            "gateway, authenticated (Redis store, 1 s cache)".into(),
            per_request(&format!("http://{cached}/x"), Some(&cookie)),
        ));
        let uncached = gateway(
            dir.path(),
            "redis-uncached",
            upstream,
            &format!("{store}redis_cache_ttl = \"0s\"\nredis_key_prefix = \"nocache\"\n"),
        );
        let cookie = login_cookie(uncached, "alice", ALICE_PASSWORD);
        rows.push((
            "gateway, authenticated (Redis store, no cache: every request a miss)".into(),
            per_request(&format!("http://{uncached}/x"), Some(&cookie)),
        ));
    }

    println!("\n| setup | heap allocations per request |\n|---|---|");
    for (name, n) in &rows {
        println!("| {name} | {n:.2} |");
    }
    let _ = nginx.kill();
    let _ = nginx.wait();
    drop(redis);
    // The gateways' threads never return; nothing of theirs needs a
    // graceful stop.
    std::process::exit(0);
}
