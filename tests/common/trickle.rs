//! Clients that send slowly, on raw sockets: trickle pieces of a request
//! and see what the gateway answers and when it hangs up. Deadlines in
//! these tests are a second or two, so no test waits long.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{config, Gateway};

/// `request_header_timeout` and `form_body_timeout` of `limits_config`.
pub const DEADLINE: Duration = Duration::from_secs(1);

/// The test config with one-second head and form deadlines, no failure
/// delay, and `server_keys` added to `[server]`.
pub fn limits_config(upstream: SocketAddr, server_keys: &str) -> String {
    let text = config(upstream, "").replace(
        "threads = 1\n",
        &format!("threads = 1\nrequest_header_timeout = \"1s\"\nform_body_timeout = \"1s\"\n{server_keys}"),
    );
    format!("{text}\n[login]\nfailure_delay = \"0s\"\n")
}

/// `gatehouse_clients_cut_off_total{limit}` from the admin listener.
pub fn cut_off(gw: &Gateway, limit: &str) -> u32 {
    let metrics = super::raw_request(
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
pub struct Outcome {
    pub answer: String,
    pub closed_after: Duration,
}

/// Sends `pieces` one every `gap` on a new connection, and reads until the
/// gateway closes it (at most `give_up`). Sending stops when the gateway
/// has answered or closed.
pub fn trickle(addr: SocketAddr, pieces: &[Vec<u8>], gap: Duration, give_up: Duration) -> Outcome {
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

pub fn lines(text: &str) -> Vec<Vec<u8>> {
    text.split_inclusive('\n')
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

pub fn bytes(text: &str) -> Vec<Vec<u8>> {
    text.bytes().map(|b| vec![b]).collect()
}

/// A head that never ends: the request line and then `n` header lines.
pub fn endless_head(path: &str, n: usize) -> String {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: app\r\n");
    for i in 0..n {
        head.push_str(&format!("X-Slow-{i}: {}\r\n", "v".repeat(20)));
    }
    head
}

/// Cut off no sooner than the deadline, and well before Pingora's 60 s.
pub fn assert_cut_at_deadline(what: &str, o: &Outcome, deadline: Duration) {
    assert!(
        o.closed_after >= deadline - Duration::from_millis(50)
            && o.closed_after < deadline + Duration::from_secs(2),
        "{what}: closed after {:?}",
        o.closed_after
    );
}
