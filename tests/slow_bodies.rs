//! Slow form bodies: a form posted to the gateway's own pages must arrive
//! whole within `server.form_body_timeout` after its head, else `408`;
//! bodies proxied to the app are the app's business and pass however slow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::trickle::*;
use common::{Gateway, Upstream, ALICE_PASSWORD};
use std::time::Duration;

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
