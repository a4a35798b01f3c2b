//! A trusted proxy's `X-Forwarded-For` in the forms proxies write, and in
//! forms nobody can read: the believed client is found walking from the
//! right, and the walk never steps past an entry it cannot read.

use crate::common::{config, Browser, Gateway, Upstream};
use crate::send;

fn trusting(upstream: std::net::SocketAddr, extra: &str) -> String {
    config(upstream, extra).replace(
        "threads = 1\n",
        "threads = 1\ntrusted_proxies = [\"127.0.0.0/8\", \"::1/128\", \"10.0.0.0/8\"]\n",
    )
}

/// (X-Forwarded-For lines as sent, believed client, chain the app gets).
/// The test client's address, 127.0.0.1, is a trusted proxy.
const CHAINS: [(&[&[u8]], &str, &str); 14] = [
    (&[b"203.0.113.7"], "203.0.113.7", "203.0.113.7, 127.0.0.1"),
    (
        &[b"6.6.6.6, 203.0.113.7:5555"],
        "203.0.113.7",
        "203.0.113.7, 127.0.0.1",
    ),
    (
        &[b"6.6.6.6, [2001:db8::1]"],
        "2001:db8::1",
        "2001:db8::1, 127.0.0.1",
    ),
    (
        &[b"6.6.6.6, [2001:db8::1]:443"],
        "2001:db8::1",
        "2001:db8::1, 127.0.0.1",
    ),
    (
        &[b"6.6.6.6, 2001:db8::1"],
        "2001:db8::1",
        "2001:db8::1, 127.0.0.1",
    ),
    (
        &[b"6.6.6.6, [::1]:443"],
        "6.6.6.6",
        "6.6.6.6, ::1, 127.0.0.1",
    ),
    (
        &[b"6.6.6.6, 10.0.0.9:8080"],
        "6.6.6.6",
        "6.6.6.6, 10.0.0.9, 127.0.0.1",
    ),
    (&[b"6.6.6.6, unknown"], "127.0.0.1", "127.0.0.1"),
    (
        &[b"6.6.6.6, _hidden, 10.0.0.9"],
        "10.0.0.9",
        "10.0.0.9, 127.0.0.1",
    ),
    (&[b"6.6.6.6, not-an-address"], "127.0.0.1", "127.0.0.1"),
    (&[b"6.6.6.6,, 10.0.0.9"], "10.0.0.9", "10.0.0.9, 127.0.0.1"),
    (&[b"6.6.6.6", b"unknown"], "127.0.0.1", "127.0.0.1"),
    (&[b"6.6.6.6, \xff\xfe"], "127.0.0.1", "127.0.0.1"),
    (
        &[b"::ffff:203.0.113.7"],
        "203.0.113.7",
        "203.0.113.7, 127.0.0.1",
    ),
];

fn with_xff(lines: &[&[u8]]) -> Vec<u8> {
    let mut req = b"GET /static/x HTTP/1.1\r\nHost: app\r\nConnection: close\r\n".to_vec();
    for line in lines {
        req.extend_from_slice(b"X-Forwarded-For: ");
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req
}

#[tokio::test]
async fn the_believed_client_is_the_first_hop_that_is_not_a_trusted_proxy() {
    let upstream = Upstream::start();
    let gw = Gateway::start(&trusting(upstream.addr, ""));
    for (lines, client, chain) in CHAINS {
        let what = String::from_utf8_lossy(&lines.concat()).into_owned();
        let resp = send(gw.addr, &with_xff(lines));
        assert_eq!(resp.status, 200, "{what}: {}", resp.head);
        let seen = upstream.last();
        assert_eq!(seen.header_all("x-real-ip"), vec![client], "{what}");
        assert_eq!(seen.header_all("x-forwarded-for"), vec![chain], "{what}");
    }
}

/// A failed login through a trusted proxy that says `X-Forwarded-For: xff`.
async fn failed_login(gw: &Gateway, user: &str, xff: &str) -> u16 {
    let mut b = Browser::new(&gw.url("/"));
    let page = b
        .get_with("/.gatehouse/login?rd=%2F", &[("X-Forwarded-For", xff)])
        .await;
    let token = page.field("csrf_token");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let req = client
        .post(gw.url("/.gatehouse/login"))
        .header("X-Forwarded-For", xff)
        .form(&[
            ("username", user),
            ("password", "wrong-password-123"),
            ("rd", "/"),
            ("csrf_token", &token),
        ]);
    b.send(req).await.status
}

#[tokio::test]
async fn rotating_the_entry_left_of_an_unreadable_hop_does_not_escape_the_address_ban() {
    let upstream = Upstream::start();
    // An address gets ten times `max_failures` before its ban.
    let text = format!(
        "{}\n[login]\nmax_failures = 1\nfailure_window = \"1m\"\nban_time = \"1m\"\nfailure_delay = \"0s\"\n",
        trusting(upstream.addr, "")
    );
    let gw = Gateway::start(&text);
    // Well-formed chains name a new client each time: nobody is banned.
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(failed_login(&gw, &format!("x{i}"), &format!("198.51.100.{i}")).await);
    }
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    // Behind an unreadable hop the client is the proxy that wrote it, so
    // rotating the entries to its left changes nothing.
    let mut statuses = Vec::new();
    for i in 0..12 {
        let xff = format!(
            "203.0.113.{i}, {}",
            ["unknown", "_hidden", "1.2.3.4:x"][i % 3]
        );
        statuses.push(failed_login(&gw, &format!("y{i}"), &xff).await);
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429; 2], "{statuses:?}");
}
