//! Slow and oversized clients: a request head must arrive whole within
//! `server.request_header_timeout` and `server.max_request_header_bytes`,
//! a form posted to the gateway's own pages within
//! `server.form_body_timeout`; proxied bodies are not held to either. Raw
//! sockets trickle bytes; deadlines are a second, so every test is over in
//! a few seconds. Two hundred half-sent heads are cut off and the memory
//! they took is given back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, Gateway, Upstream, ALICE_PASSWORD};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(1);

fn limits_config(upstream: SocketAddr, server_keys: &str) -> String {
    let text = config(upstream, "").replace(
        "threads = 1\n",
        &format!("threads = 1\nrequest_header_timeout = \"1s\"\nform_body_timeout = \"1s\"\n{server_keys}"),
    );
    format!("{text}\n[login]\nfailure_delay = \"0s\"\n")
}

/// `gatehouse_clients_cut_off_total{limit}` from the admin listener.
fn cut_off(gw: &Gateway, limit: &str) -> u32 {
    let metrics = common::raw_request(
        gw.admin,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let prefix = format!("gatehouse_clients_cut_off_total{{limit=\"{limit}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or_else(
            || panic!("no {prefix}in {metrics}"),
            |n| n.trim().parse().unwrap(),
        )
}

/// What the gateway did with a connection: everything it sent, and when it
/// closed the connection (from the first piece sent).
struct Outcome {
    answer: String,
    closed_after: Duration,
}

/// Sends `pieces` one every `gap` on a new connection, and reads until the
/// gateway closes it (at most `give_up`). Sending stops when the gateway
/// has answered or closed.
fn trickle(addr: SocketAddr, pieces: &[Vec<u8>], gap: Duration, give_up: Duration) -> Outcome {
    let mut s = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut pieces = pieces.iter();
    loop {
        if answer.is_empty() {
            if let Some(p) = pieces.next() {
                if s.write_all(p).is_err() {
                    // the gateway hung up; what it said is still to be read
                }
            }
        }
        s.set_read_timeout(Some(gap.max(Duration::from_millis(10))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break, // reset: closed
        }
        assert!(
            start.elapsed() < give_up,
            "still open after {give_up:?}; got {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    Outcome {
        answer: String::from_utf8_lossy(&answer).into_owned(),
        closed_after: start.elapsed(),
    }
}

fn lines(text: &str) -> Vec<Vec<u8>> {
    text.split_inclusive('\n')
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

fn bytes(text: &str) -> Vec<Vec<u8>> {
    text.bytes().map(|b| vec![b]).collect()
}

/// A head that never ends: the request line and then `n` header lines.
fn endless_head(path: &str, n: usize) -> String {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: app\r\n");
    for i in 0..n {
        head.push_str(&format!("X-Slow-{i}: {}\r\n", "v".repeat(20)));
    }
    head
}

/// Cut off no sooner than the deadline, and well before Pingora's 60 s.
fn assert_cut_at_deadline(what: &str, o: &Outcome, deadline: Duration) {
    assert!(
        o.closed_after >= deadline - Duration::from_millis(50)
            && o.closed_after < deadline + Duration::from_secs(2),
        "{what}: closed after {:?}",
        o.closed_after
    );
}

#[tokio::test]
async fn slow_heads_are_cut_off_at_the_deadline() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&limits_config(upstream.addr, ""));
    let (addr, admin) = (gw.addr, gw.admin);
    let ms = Duration::from_millis;
    // (what, where, pieces, gap): each would hold its connection for a
    // minute or more against a per-read timeout alone
    let cases: Vec<(&str, SocketAddr, Vec<Vec<u8>>, Duration)> = vec![
        (
            "a header line every 300 ms",
            addr,
            lines(&endless_head("/", 40)),
            ms(300),
        ),
        (
            "a byte every 100 ms",
            addr,
            bytes(&endless_head("/static/x", 5)),
            ms(100),
        ),
        (
            "a login form's head, line by line",
            addr,
            lines(&endless_head("/.gatehouse/login", 40)),
            ms(300),
        ),
        (
            "the request line, then silence",
            addr,
            vec![b"GET / HTTP/1.1\r\n".to_vec()],
            ms(300),
        ),
        (
            "half a request line",
            addr,
            vec![b"GET /sta".to_vec()],
            ms(300),
        ),
        (
            "the admin listener, line by line",
            admin,
            lines(&endless_head("/metrics", 40)),
            ms(300),
        ),
        (
            "the admin listener, a byte every 100 ms",
            admin,
            bytes(&endless_head("/health", 5)),
            ms(100),
        ),
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(what, to, pieces, gap)| {
            std::thread::spawn(move || (what, trickle(to, &pieces, gap, Duration::from_secs(10))))
        })
        .collect();
    // meanwhile the gateway serves everyone else
    let quick = common::raw_request(
        addr,
        "GET /static/quick HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(common::raw_status(&quick), 200, "{quick}");
    for run in runs {
        let (what, o) = run.join().unwrap();
        assert_cut_at_deadline(what, &o, DEADLINE);
        assert!(
            o.answer.starts_with("HTTP/1.1 408 "),
            "{what}: {:?}",
            o.answer
        );
    }
    // a connection that never sends a byte is closed without a word
    let silent = trickle(
        addr,
        &[],
        Duration::from_millis(100),
        Duration::from_secs(10),
    );
    assert_cut_at_deadline("silence", &silent, DEADLINE);
    assert_eq!(silent.answer, "");
    // each one counted once, for the operator's dashboard
    assert_eq!(cut_off(&gw, "head_timeout"), 8);
    assert_eq!(cut_off(&gw, "head_too_large"), 0);
    // none of them reached the app
    assert!(upstream
        .requests()
        .iter()
        .all(|r| r.target == "/static/quick"));
}

#[tokio::test]
async fn heads_within_the_deadline_are_served_and_idle_keep_alive_is_not_head_time() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&limits_config(upstream.addr, ""));
    // a head in five pieces over half a second
    let head =
        "GET /static/pieces HTTP/1.1\r\nHost: app\r\nX-A: 1\r\nX-B: 2\r\nConnection: close\r\n\r\n";
    let pieces: Vec<Vec<u8>> = head
        .as_bytes()
        .chunks(head.len() / 5 + 1)
        .map(<[u8]>::to_vec)
        .collect();
    let o = trickle(
        gw.addr,
        &pieces,
        Duration::from_millis(100),
        Duration::from_secs(10),
    );
    assert!(o.answer.starts_with("HTTP/1.1 200"), "{}", o.answer);

    // kept alive: idle longer than the deadline, then a prompt second
    // request is served; a trickled third one is cut off a deadline after
    // its first byte, not after the idle time
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = "GET /static/again HTTP/1.1\r\nHost: app\r\n\r\n";
    let mut buf = [0u8; 4096];
    for _ in 0..2 {
        s.write_all(request.as_bytes()).unwrap();
        let n = s.read(&mut buf).unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        std::thread::sleep(DEADLINE + Duration::from_millis(500));
    }
    let started = Instant::now();
    let mut cut = false;
    for line in lines(&endless_head("/static/third", 40)) {
        if s.write_all(&line).is_err() {
            cut = true;
            break;
        }
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        match s.read(&mut buf) {
            Ok(n) => {
                let answer = String::from_utf8_lossy(&buf[..n]);
                assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
                cut = true;
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    let t = started.elapsed();
    assert!(cut, "the third head was never cut off");
    assert!(
        t >= DEADLINE - Duration::from_millis(50) && t < DEADLINE + Duration::from_secs(2),
        "cut after {t:?}"
    );
}

#[tokio::test]
async fn oversized_heads_get_431_at_once() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&limits_config(
        upstream.addr,
        "max_request_header_bytes = 16384\n",
    ));
    let big = |n: usize| "a".repeat(n);
    let over = [
        (
            "one long header",
            format!(
                "GET /static/x HTTP/1.1\r\nHost: app\r\nX-Big: {}\r\n\r\n",
                big(20_000)
            ),
        ),
        (
            "a long cookie",
            format!(
                "GET / HTTP/1.1\r\nHost: app\r\nCookie: gatehouse={}\r\n\r\n",
                big(20_000)
            ),
        ),
        (
            "a long path",
            format!("GET /static/{} HTTP/1.1\r\nHost: app\r\n\r\n", big(20_000)),
        ),
        (
            "many short headers",
            format!(
                "GET /static/x HTTP/1.1\r\nHost: app\r\n{}\r\n",
                (0..200)
                    .map(|i| format!("X-H{i}: {}\r\n", big(100)))
                    .collect::<String>()
            ),
        ),
        (
            "an unfinished head",
            format!(
                "GET /static/x HTTP/1.1\r\nHost: app\r\nX-Big: {}",
                big(20_000)
            ),
        ),
        (
            "to the admin listener",
            format!(
                "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
                big(20_000)
            ),
        ),
    ];
    for (what, request) in over {
        let to = if what.contains("admin") {
            gw.admin
        } else {
            gw.addr
        };
        let o = trickle(
            to,
            &[request.into_bytes()],
            Duration::from_millis(50),
            Duration::from_secs(5),
        );
        assert!(
            o.answer.starts_with("HTTP/1.1 431 "),
            "{what}: {:?}",
            o.answer
        );
        assert!(
            o.closed_after < DEADLINE,
            "{what}: took {:?}",
            o.closed_after
        );
    }
    assert_eq!(cut_off(&gw, "head_too_large"), 6);
    // just under the cap is an ordinary request
    let under = format!(
        "GET /static/x HTTP/1.1\r\nHost: app\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        big(15_000)
    );
    let answer = common::raw_request(gw.addr, &under);
    assert_eq!(common::raw_status(&answer), 200, "{answer}");
    assert_eq!(upstream.last().header("x-big").map(str::len), Some(15_000));
}

#[tokio::test]
async fn slow_form_bodies_are_cut_off_and_proxied_bodies_are_not() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&limits_config(upstream.addr, ""));
    let alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let cookie = format!("gatehouse={}", alice.session_cookie().unwrap());
    let ms = Duration::from_millis;
    let form = "username=alice&password=x&csrf_token=y&rd=%2F&padding=zzzzzzzzzz";
    let head = |path: &str, framing: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: app\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n{framing}\r\n")
            .into_bytes()
    };
    let length = format!("Content-Length: {}\r\n", form.len());
    let chunked = "Transfer-Encoding: chunked\r\n";
    let dribble = |head: Vec<u8>, body: Vec<Vec<u8>>| [vec![head], body].concat();
    let one_chunk_per_byte: Vec<Vec<u8>> = form
        .bytes()
        .map(|b| format!("1\r\n{}\r\n", b as char).into_bytes())
        .collect();
    let cases: Vec<(&str, Vec<Vec<u8>>, Duration)> = vec![
        (
            "login, a byte every 150 ms",
            dribble(head("/.gatehouse/login", &length), bytes(form)),
            ms(150),
        ),
        (
            "login, chunked, a chunk every 150 ms",
            dribble(head("/.gatehouse/login", chunked), one_chunk_per_byte),
            ms(150),
        ),
        (
            "login, ten bytes then silence",
            dribble(
                head("/.gatehouse/login", &length),
                vec![form.as_bytes()[..10].to_vec()],
            ),
            ms(150),
        ),
        (
            "password page",
            dribble(head("/.gatehouse/password", &length), bytes(form)),
            ms(150),
        ),
        (
            "logout",
            dribble(head("/.gatehouse/logout", &length), bytes(form)),
            ms(150),
        ),
        (
            "device revoke",
            dribble(
                head("/.gatehouse/devices/revoke-others", &length),
                bytes(form),
            ),
            ms(150),
        ),
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(what, pieces, gap)| {
            let addr = gw.addr;
            std::thread::spawn(move || {
                let o = trickle(addr, &pieces, gap, Duration::from_secs(10));
                (what, o)
            })
        })
        .collect();
    // a proxied upload as slow as the slowest form is the app's business:
    // it arrives whole (a body every 300 ms for 1.5 s)
    let upload = "x".repeat(5);
    let pieces = dribble(
        format!("POST /static/upload HTTP/1.1\r\nHost: app\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", upload.len()).into_bytes(),
        bytes(&upload),
    );
    let slow_upload =
        std::thread::spawn(move || trickle(gw.addr, &pieces, ms(300), Duration::from_secs(10)));
    for run in runs {
        let (what, o) = run.join().unwrap();
        assert!(
            o.answer.starts_with("HTTP/1.1 408 "),
            "{what}: {:?}",
            o.answer
        );
        // the head went at once: the deadline counts from the body's start
        assert_cut_at_deadline(what, &o, DEADLINE);
    }
    assert_eq!(cut_off(&gw, "form_timeout"), 6);
    assert_eq!(cut_off(&gw, "head_timeout"), 0);
    let o = slow_upload.join().unwrap();
    assert!(o.answer.starts_with("HTTP/1.1 200"), "{}", o.answer);
    assert!(
        o.closed_after > Duration::from_millis(1400),
        "{:?}",
        o.closed_after
    );
    assert_eq!(upstream.last().target, "/static/upload");
    assert_eq!(upstream.last().body, upload.as_bytes());
    // nothing posted slowly did anything: alice is still signed in
    let mut alice = alice;
    assert_eq!(alice.page("/app/").await.status, 200);
}

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

#[test]
fn limit_keys_are_checked_with_file_line_and_key() {
    for (key, value, says) in [
        ("request_header_timeout", "\"0s\"", "greater than zero"),
        ("request_header_timeout", "\"soon\"", "expected a duration"),
        ("request_header_timeout", "\"10m\"", "at most \"5m\""),
        ("form_body_timeout", "\"0\"", "expected a duration"),
        ("form_body_timeout", "\"1h\"", "at most \"5m\""),
        ("max_request_header_bytes", "100", "from 1024 to 1048575"),
        (
            "max_request_header_bytes",
            "2000000",
            "from 1024 to 1048575",
        ),
        ("max_request_header_bytes", "\"64KiB\"", "expected"),
    ] {
        let text = config("127.0.0.1:9".parse().unwrap(), "")
            .replace("@LISTEN@", "127.0.0.1:8080")
            .replace("@ADMIN@", "127.0.0.1:9091")
            .replace("threads = 1\n", &format!("threads = 1\n{key} = {value}\n"));
        let line = text.lines().position(|l| l.starts_with(key)).unwrap() + 1;
        let (code, _, err) = common::check_config(&text);
        assert_eq!(code, 1, "{key} = {value}");
        assert!(
            err.contains(&format!("gatehouse.toml:{line}: server.{key}")) && err.contains(says),
            "{key} = {value}: {err}"
        );
    }
}
