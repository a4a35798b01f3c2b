//! Memory after a flood of half-sent heads: 200 connections each holding
//! a 60 KB head are cut off at the deadline, and the gateway's resident
//! memory (from /proc) comes back down after they go.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::trickle::limits_config;
use common::{Gateway, Upstream};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn memory_comes_back_after_200_half_sent_heads() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&limits_config(upstream.addr, "").replace(
        "request_header_timeout = \"1s\"",
        "request_header_timeout = \"2s\"",
    ));
    let pid = gw.pid();
    // warm up: the first requests allocate what every later one reuses
    for _ in 0..20 {
        common::raw_request(
            gw.addr,
            "GET /static/warm HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    let before = rss_kib(pid);

    // 200 connections, each with 60 KB of head (under the 64 KiB cap, so
    // each is held until the deadline) that never ends
    let line = format!("X-Pad: {}\r\n", "a".repeat(990));
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(gw.addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: app\r\n").unwrap();
        held.push(s);
    }
    let sent_at = Instant::now();
    for _ in 0..60 {
        for s in &mut held {
            s.write_all(line.as_bytes()).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let peak = rss_kib(pid);

    // the gateway closes every one of them at the deadline
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
        let answer = String::from_utf8_lossy(&sink);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    let all_closed = sent_at.elapsed();
    assert!(
        all_closed < Duration::from_secs(5),
        "closed after {all_closed:?}"
    );
    drop(held);

    // and the memory goes back to the OS within a few seconds
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut after = rss_kib(pid);
    while after > before + 8 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = rss_kib(pid);
    }
    eprintln!(
        "RSS before {} KiB, with 200 half-sent 60 KB heads {} KiB (+{} KiB), after {} KiB; all closed {:?} after the heads were sent",
        before,
        peak,
        peak.saturating_sub(before),
        after,
        all_closed
    );
    assert!(
        peak < before + 64 * 1024,
        "holding 200 capped heads took {} KiB",
        peak - before
    );
    assert!(
        after <= before + 8 * 1024,
        "RSS before {before} KiB, after {after} KiB: not given back"
    );
    // still serving
    let r = common::raw_request(
        gw.addr,
        "GET /static/after HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(common::raw_status(&r), 200, "{r}");
}
