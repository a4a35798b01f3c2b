//! session.js and what it talks to, over plain HTTP: the script (cached by
//! ETag, in the visitor's language), `/session` saying why a session ended,
//! `/session/extend` refusing anything cross-site, and
//! `ui.inject_session_script` rewriting only what it safely can, with the
//! framing right (Content-Length, chunked, `</body>` split across chunks,
//! HTTP/1.0, compressed, non-HTML, public routes, HEAD).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::html_app::{HtmlApp, CHUNKS, FAKE_GZIP};
use common::{config, raw_status, Gateway, ALICE_PASSWORD};

const TAG: &str = "<script src=\"/.gatehouse/session.js\" defer></script>";

fn inject_config(app: &HtmlApp, extra: &str) -> String {
    config(
        app.addr,
        &format!("{extra}\n[ui]\nidle_warning = \"45s\"\ninject_session_script = true\n"),
    )
}

/// The head and the body (de-chunked when chunked) of a raw response.
fn split(raw: &str) -> (String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    if !chunked {
        return (head.to_string(), body.to_string());
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size line");
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    (head.to_string(), out)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn signed_in_cookie(gw: &Gateway) -> String {
    gw.signed_in("alice", ALICE_PASSWORD).await.cookie_header()
}

fn get(gw: &Gateway, path: &str, cookie: &str, version: &str) -> (String, String) {
    let raw = gw.raw(&format!(
        "GET {path} HTTP/{version}\r\nHost: app.test\r\nAccept: text/html\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(raw_status(&raw), 200, "{path}: {raw}");
    split(&raw)
}

#[tokio::test]
async fn the_script_is_cacheable_and_speaks_the_visitors_language() {
    let app = HtmlApp::start();
    let gw = Gateway::start(&inject_config(&app, ""));
    let raw = gw
        .raw("GET /.gatehouse/session.js HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(&raw), 200, "{raw}");
    let (head, body) = split(&raw);
    assert!(header(&head, "content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
    assert_eq!(header(&head, "vary"), Some("Accept-Language"));
    let etag = header(&head, "etag").unwrap().to_string();
    assert!(body.contains("\"warning\":45000"), "{body}");
    assert!(body.contains("\"prefix\":\"/.gatehouse\""));
    assert!(body.contains("Stay signed in"));
    assert!(!body.contains("eval("), "no eval in the script");

    let again = gw.raw(&format!(
        "GET /.gatehouse/session.js HTTP/1.1\r\nHost: app.test\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(raw_status(&again), 304, "{again}");
    assert_eq!(header(&split(&again).0, "etag"), Some(etag.as_str()));

    let spanish = gw.raw(
        "GET /.gatehouse/session.js HTTP/1.1\r\nHost: app.test\r\nAccept-Language: es-MX,es;q=0.9,en;q=0.5\r\nIf-None-Match: ETAG\r\nConnection: close\r\n\r\n"
            .replace("ETAG", &etag)
            .as_str(),
    );
    assert_eq!(
        raw_status(&spanish),
        200,
        "a different language is a different body"
    );
    let (head, body) = split(&spanish);
    assert!(body.contains("Mantener la sesión"), "{body}");
    assert!(body.contains("\"lang\":\"es\""));
    assert_ne!(header(&head, "etag"), Some(etag.as_str()));
}

#[tokio::test]
async fn status_says_why_the_session_ended_and_extend_keeps_it() {
    let app = HtmlApp::start();
    let gw = Gateway::start(&inject_config(&app, "idle_timeout = \"3s\""));
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let status = b.api("/.gatehouse/session").await;
    assert_eq!(status.status, 200);
    let body = status.json();
    assert_eq!(body["user"], "alice");
    assert_eq!(body["idle_timeout"], 3);
    assert!(body["idle_expires_in"].as_u64().unwrap() <= 3);
    assert!(body["logout_token"].as_str().is_some_and(|t| !t.is_empty()));

    // Extending keeps the session alive past its first deadline: extend
    // every half-second and watch /session (which never extends) stay 200.
    let cookie = b.cookie_header();
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        let raw = gw.raw(&format!(
            "POST /.gatehouse/session/extend HTTP/1.1\r\nHost: app.test\r\nOrigin: http://app.test\r\nSec-Fetch-Site: same-origin\r\nX-Gatehouse-Extend: 1\r\nAccept: application/json\r\nCookie: {cookie}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ));
        assert_eq!(raw_status(&raw), 200, "{raw}");
        let json: serde_json::Value = serde_json::from_str(&split(&raw).1).unwrap();
        assert!(json["idle_expires_in"].as_u64().unwrap() >= 2, "{json}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(b.api("/.gatehouse/session").await.status, 200);

    // Left alone, it ends; the status says so and why.
    let deadline = Instant::now() + Duration::from_secs(15);
    let ended = loop {
        let r = b.api("/.gatehouse/session").await;
        if r.status != 200 {
            break r;
        }
        assert!(Instant::now() < deadline, "the session never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ended.status, 401);
    assert_eq!(ended.json()["reason"], "idle");
    assert_eq!(ended.json()["error"], "login_required");
}

#[tokio::test]
async fn extend_refuses_anything_cross_site() {
    let app = HtmlApp::start();
    let gw = Gateway::start(&inject_config(&app, ""));
    let cookie = signed_in_cookie(&gw).await;
    let extend = |extra: &str| {
        gw.raw(&format!(
            "POST /.gatehouse/session/extend HTTP/1.1\r\nHost: app.test\r\n{extra}Cookie: {cookie}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
    };
    for (why, extra) in [
        (
            "a plain form post",
            "Content-Type: application/x-www-form-urlencoded\r\n",
        ),
        (
            "another site",
            "X-Gatehouse-Extend: 1\r\nOrigin: https://evil.test\r\n",
        ),
        (
            "a look-alike host",
            "X-Gatehouse-Extend: 1\r\nOrigin: http://app.test.evil.test\r\n",
        ),
        (
            "a sandboxed frame",
            "X-Gatehouse-Extend: 1\r\nOrigin: null\r\n",
        ),
        (
            "a sibling site",
            "X-Gatehouse-Extend: 1\r\nSec-Fetch-Site: same-site\r\n",
        ),
        (
            "a cross-site fetch",
            "X-Gatehouse-Extend: 1\r\nSec-Fetch-Site: cross-site\r\n",
        ),
    ] {
        let raw = extend(extra);
        assert_eq!(raw_status(&raw), 403, "{why}: {raw}");
        assert!(raw.contains("\"error\":\"forbidden\""), "{why}: {raw}");
    }
    assert_eq!(raw_status(&extend("X-Gatehouse-Extend: 1\r\n")), 200);
    assert_eq!(
        raw_status(&gw.raw("GET /.gatehouse/session/extend HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")),
        405
    );
    let anonymous = gw.raw(
        "POST /.gatehouse/session/extend HTTP/1.1\r\nHost: app.test\r\nX-Gatehouse-Extend: 1\r\nAccept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&anonymous), 401, "{anonymous}");
    let audit = gw.log();
    assert!(audit.contains("extend_refused"), "{audit}");
}

#[tokio::test]
async fn injection_rewrites_html_of_login_routes_with_the_framing_right() {
    let app = HtmlApp::start();
    let gw = Gateway::start(&inject_config(&app, ""));
    let cookie = signed_in_cookie(&gw).await;

    // Content-Length from the app: kept, grown by the tag's length (a
    // sized answer is written in one go; a chunked one is flushed chunk by
    // chunk), tag in.
    let (head, body) = get(&gw, "/notes", &cookie, "1.1");
    let page = common::html_app::page("/notes");
    let expected_length = (page.len() + TAG.len()).to_string();
    assert_eq!(
        header(&head, "content-length"),
        Some(expected_length.as_str()),
        "{head}"
    );
    assert_eq!(header(&head, "transfer-encoding"), None, "{head}");
    assert_eq!(header(&head, "accept-ranges"), Some("none"));
    assert_eq!(body, page.replace("</body>", &format!("{TAG}</body>")));
    assert_eq!(body.matches(TAG).count(), 1);

    // Digests of the body as the app sent it would no longer match: gone,
    // as is its offer of byte ranges; the app's other headers stay.
    let (head, body) = get(&gw, "/digested", &cookie, "1.1");
    assert_eq!(body.matches(TAG).count(), 1, "{head}");
    for name in ["content-md5", "digest", "repr-digest", "content-digest"] {
        assert_eq!(header(&head, name), None, "{name} in {head}");
    }
    assert_eq!(header(&head, "accept-ranges"), Some("none"), "{head}");
    assert_eq!(header(&head, "x-app-header"), Some("kept"), "{head}");

    // Chunked from the app, `</body>` split across its chunks: begun in
    // bytes already sent, so the tag follows it (browsers run it in the
    // body all the same: browser_session.rs).
    let (head, body) = get(&gw, "/chunked", &cookie, "1.1");
    assert_eq!(header(&head, "transfer-encoding"), Some("chunked"));
    assert_eq!(
        body,
        CHUNKS.concat().replace("</body>", &format!("</body>{TAG}"))
    );

    // Close-delimited (an HTTP/1.0 app) to an HTTP/1.1 client.
    let (_, body) = get(&gw, "/close-delimited", &cookie, "1.1");
    assert!(body.contains(&format!("{TAG}</body>")), "{body}");

    // An HTTP/1.0 client gets the sized answer too.
    let (head, body) = get(&gw, "/notes", &cookie, "1.0");
    assert_eq!(
        header(&head, "content-length"),
        Some(expected_length.as_str()),
        "{head}"
    );
    assert!(body.contains(&format!("{TAG}</body>")), "{body}");

    // HEAD: no body to rewrite, nothing changed.
    let raw = gw.raw(&format!(
        "HEAD /notes HTTP/1.1\r\nHost: app.test\r\nAccept: text/html\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(raw_status(&raw), 200);
    assert_eq!(
        header(&split(&raw).0, "content-length"),
        Some(common::html_app::page("/notes").len().to_string().as_str())
    );
}

#[tokio::test]
async fn injection_leaves_alone_what_it_cannot_safely_rewrite() {
    let app = HtmlApp::start();
    let gw = Gateway::start(&inject_config(&app, ""));
    let cookie = signed_in_cookie(&gw).await;

    // Compressed: skipped, byte for byte, length kept.
    let (head, body) = get(&gw, "/gzip", &cookie, "1.1");
    assert_eq!(header(&head, "content-encoding"), Some("gzip"));
    assert_eq!(
        header(&head, "content-length"),
        Some(FAKE_GZIP.len().to_string().as_str())
    );
    assert_eq!(body, FAKE_GZIP);

    // Not HTML.
    let (head, body) = get(&gw, "/json", &cookie, "1.1");
    assert_eq!(body, "{\"html\":\"<body></body>\"}");
    assert!(header(&head, "content-length").is_some());

    // A fragment with no `</body>` (an htmx-style swap): no tag; its
    // length was raised before its end was seen, so it ends in spaces.
    let (head, body) = get(&gw, "/fragment", &cookie, "1.1");
    assert_eq!(
        body,
        format!("<div id=\"swap\">partial</div>{}", " ".repeat(TAG.len()))
    );
    assert_eq!(
        header(&head, "content-length"),
        Some(body.len().to_string().as_str())
    );

    // A public route, signed in or not.
    for cookie in [cookie.as_str(), ""] {
        let (head, body) = get(&gw, "/static/page.html", cookie, "1.1");
        assert!(!body.contains(TAG), "{body}");
        assert!(header(&head, "content-length").is_some());
    }

    // Switched off (the default): nothing changes anywhere.
    let off = Gateway::start(&config(app.addr, ""));
    let cookie = signed_in_cookie(&off).await;
    let (head, body) = get(&off, "/notes", &cookie, "1.1");
    assert_eq!(body, common::html_app::page("/notes"));
    assert!(header(&head, "content-length").is_some());
    // ... not even the digests of a page.
    let (head, _) = get(&off, "/digested", &cookie, "1.1");
    for name in ["content-md5", "digest", "repr-digest", "content-digest"] {
        assert!(header(&head, name).is_some(), "{name} in {head}");
    }
    assert_eq!(header(&head, "accept-ranges"), Some("bytes"), "{head}");
}
