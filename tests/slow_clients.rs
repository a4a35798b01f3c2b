//! Slow and oversized request heads: a head must arrive whole within
//! `server.request_header_timeout` and `server.max_request_header_bytes`,
//! on the gateway's listener and the admin listener alike, else `408` /
//! `431` and the connection is closed; idle keep-alive time is not head
//! time. Raw sockets trickle bytes against one-second deadlines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::trickle::*;
use common::{config, Gateway, Upstream};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

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
