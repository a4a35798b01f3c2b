//! The browser session script (`session.js`) in a real headless Chromium:
//! the idle warning with its countdown, "Stay signed in", tabs kept in
//! step, every tab sent to the login page when the session ends, and a
//! strict CSP. Timeouts are second-scale (idle 10 s, warning 5 s); every
//! wait polls for what a user would see, with a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::html_app::HtmlApp;
use common::webdriver::{Profile, WebDriver, DEFAULT_WAIT};
use common::{config, Gateway, Upstream, ALICE_PASSWORD};
use serde_json::Value;

const DIALOG: &str = "#gatehouse-session-dialog";
const STAY: &str = "#gatehouse-session-stay";
const COUNTDOWN: &str = "#gatehouse-session-countdown";
/// Idle 10 s, warned 5 s before: long enough to see the warning come and
/// go on a busy machine, short enough for a test.
const SESSION: &str =
    "idle_timeout = \"10s\"\n\n[ui]\nidle_warning = \"5s\"\ninject_session_script = true\n";
/// Waits that span a warning or an idle timeout.
const SESSION_WAIT: Duration = Duration::from_secs(30);

/// Signs in through the login page the app's `path` sends the browser to,
/// and waits to be back on `path`.
async fn sign_in(b: &Profile, gw: &Gateway, path: &str) {
    b.goto(&gw.url(path)).await;
    b.wait_for_visible("input[name=username]", DEFAULT_WAIT)
        .await;
    b.fill("input[name=username]", "alice").await;
    b.fill("input[name=password]", ALICE_PASSWORD).await;
    b.click("button[type=submit]").await;
    let want = gw.url(path);
    b.wait_for_url(&format!("back on {path}"), DEFAULT_WAIT, |u| u == want)
        .await;
}

/// The countdown's "m:ss" in seconds.
async fn countdown(b: &Profile) -> Option<u64> {
    let text = b.text(COUNTDOWN).await?;
    let (m, s) = text.split_once(':')?;
    Some(m.parse::<u64>().ok()? * 60 + s.parse::<u64>().ok()?)
}

/// The id of the focused element.
async fn focused(b: &Profile) -> String {
    b.eval(
        "return document.activeElement && document.activeElement.id;",
        vec![],
    )
    .await
    .as_str()
    .unwrap_or("")
    .to_string()
}

/// `GET /session` with the browser's cookie, from outside the browser
/// (it never extends the session): the status and the JSON.
async fn status_of(b: &Profile, gw: &Gateway) -> (u16, Value) {
    let cookie = b.client.get_named_cookie("gatehouse").await.unwrap();
    let resp = reqwest::Client::new()
        .get(gw.url("/.gatehouse/session"))
        .header("Accept", "application/json")
        .header("Cookie", format!("gatehouse={}", cookie.value()))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Where screenshots go when `GATEHOUSE_SCREENSHOTS` names a directory.
fn screenshot_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("GATEHOUSE_SCREENSHOTS").map(|d| std::path::PathBuf::from(d).join(name))
}

/// The harness itself: a page loads, tabs open and switch, console errors
/// are read back, a screenshot is a PNG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webdriver_harness_drives_a_real_browser() {
    let Some(wd) = WebDriver::start() else { return };
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, ""));
    let browser = wd.profile().await;
    browser.goto(&gw.url("/.gatehouse/login")).await;
    browser
        .wait_for_visible("input[name=username]", DEFAULT_WAIT)
        .await;
    let first = browser.tab().await;

    let second = browser.new_tab().await;
    assert_ne!(first, second);
    browser.goto(&gw.url("/.gatehouse/login?reason=idle")).await;
    browser
        .wait_for_url("the second tab's page", DEFAULT_WAIT, |u| {
            u.contains("reason=idle")
        })
        .await;
    browser.switch_to(&first).await;
    assert!(!browser.current_url().await.contains("reason=idle"));

    browser
        .eval(
            "setTimeout(function () { throw new Error('harness-probe'); }, 0);",
            vec![],
        )
        .await;
    let errors = browser
        .wait_until(
            "the probe error in the console",
            Duration::from_secs(5),
            || async {
                let errors = browser.console_errors().await;
                errors
                    .iter()
                    .any(|e| e.message.contains("harness-probe"))
                    .then_some(errors)
            },
        )
        .await;
    assert!(errors.iter().all(|e| e.level == "SEVERE"));

    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("shots/login.png");
    browser.screenshot(&png).await;
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

    let other_device = wd.profile().await;
    other_device.goto(&gw.url("/.gatehouse/login")).await;
    let errors = other_device.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");
    other_device.close().await;
    browser.close().await;
}

/// The warning appears before the idle deadline, counts down, is announced
/// and takes the focus; "Stay signed in" dismisses it, gives the focus
/// back and keeps the session alive past its first deadline. All of it on a
/// page whose CSP allows only the site's own scripts, without one console
/// error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_warning_counts_down_and_stay_signed_in_keeps_the_session() {
    let Some(wd) = WebDriver::start() else { return };
    let app = HtmlApp::start();
    let gw = Gateway::start(&config(app.addr, SESSION));
    let b = wd.profile().await;
    sign_in(&b, &gw, "/notes?csp").await;
    b.click("#notes").await;
    assert_eq!(focused(&b).await, "notes");

    b.wait_for_visible(DIALOG, SESSION_WAIT).await;
    let dialog = b
        .client
        .find(fantoccini::Locator::Css(DIALOG))
        .await
        .unwrap();
    assert_eq!(
        dialog.attr("role").await.unwrap().as_deref(),
        Some("alertdialog")
    );
    assert_eq!(
        dialog.attr("aria-modal").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        focused(&b).await,
        "gatehouse-session-stay",
        "the focus moves to the dialog"
    );
    let live = b.text("#gatehouse-session-live").await.unwrap_or_default();
    assert!(
        live.contains("signed out in") && live.contains("second"),
        "announced: {live:?}"
    );
    let (status, json) = status_of(&b, &gw).await;
    assert_eq!(status, 200, "{json}");
    // The whole seconds left, rounded up (the gateway floors them).
    let first_deadline =
        Instant::now() + Duration::from_secs(json["idle_expires_in"].as_u64().unwrap() + 1);

    let first = countdown(&b).await.expect("a countdown");
    assert!(
        (1..=5).contains(&first),
        "counting down from the warning: {first}"
    );
    b.wait_until("the countdown to tick", Duration::from_secs(5), || async {
        countdown(&b).await.filter(|&n| n < first)
    })
    .await;
    if let Some(path) = screenshot_path("idle-warning.png") {
        b.screenshot(&path).await;
    }

    b.click(STAY).await;
    b.wait_for_hidden(DIALOG, DEFAULT_WAIT).await;
    assert_eq!(
        focused(&b).await,
        "notes",
        "the focus goes back where it was"
    );

    // Past the deadline the warning was counting down to, the session is
    // still there (/session never extends it, so only "Stay" can have).
    let deadline = Instant::now() + SESSION_WAIT;
    while Instant::now() < first_deadline {
        let (status, json) = status_of(&b, &gw).await;
        assert_eq!(status, 200, "ended before its extended deadline: {json}");
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status_of(&b, &gw).await.0, 200);
    b.goto(&gw.url("/notes?csp&later")).await;
    assert_eq!(
        b.current_url().await,
        gw.url("/notes?csp&later"),
        "a later page load works"
    );

    let errors = b.console_errors().await;
    assert!(
        errors.is_empty(),
        "console errors under a strict CSP: {errors:?}"
    );

    // The control: the same policy does report what it blocks.
    b.goto(&gw.url("/inline?csp")).await;
    let blocked = b
        .wait_until(
            "the CSP to report the inline script",
            DEFAULT_WAIT,
            || async {
                let errors = b.console_errors().await;
                errors
                    .iter()
                    .any(|e| e.message.contains("Content Security Policy"))
                    .then_some(errors)
            },
        )
        .await;
    assert!(
        !blocked.iter().any(|e| e.message.contains("session.js")),
        "{blocked:?}"
    );
    b.close().await;
}

/// A page whose `</body>` the app split between two chunks gets the tag
/// right after it (the start of `</body>` was already sent): the browser
/// puts the script in the body all the same, and it runs, warning and all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_after_a_split_close_body_runs_in_the_body() {
    let Some(wd) = WebDriver::start() else { return };
    let app = HtmlApp::start();
    let gw = Gateway::start(&config(app.addr, SESSION));
    let b = wd.profile().await;
    sign_in(&b, &gw, "/chunked").await;
    let parent = b
        .eval(
            "var s = document.querySelector('script[src$=\"/session.js\"]'); return s && s.parentNode.nodeName;",
            vec![],
        )
        .await;
    assert_eq!(parent.as_str(), Some("BODY"), "where the script landed");
    b.wait_for_visible(DIALOG, SESSION_WAIT).await;
    let ran = b
        .eval("return window.gatehouseSession.version;", vec![])
        .await;
    assert_eq!(ran.as_u64(), Some(1));
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    b.close().await;
}

/// Two tabs: the warning shows in both, "Stay signed in" in one dismisses
/// it in the other; ignored, both land on the login page saying why, each
/// with its own way back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_stay_in_step_and_all_go_to_the_login_page_when_ignored() {
    let Some(wd) = WebDriver::start() else { return };
    let app = HtmlApp::start();
    let gw = Gateway::start(&config(app.addr, SESSION));
    let b = wd.profile().await;
    sign_in(&b, &gw, "/first?x=1").await;
    let first = b.tab().await;
    let second = b.new_tab().await;
    b.goto(&gw.url("/second")).await;

    for tab in [&first, &second] {
        b.switch_to(tab).await;
        b.wait_for_visible(DIALOG, SESSION_WAIT).await;
    }
    b.click(STAY).await;
    b.switch_to(&first).await;
    b.wait_for_hidden(DIALOG, DEFAULT_WAIT).await;

    // Now nobody answers: both tabs warn again, then go to the login page.
    b.wait_for_visible(DIALOG, SESSION_WAIT).await;
    let login = |rd: &'static str| {
        let prefix = gw.url("/.gatehouse/login?");
        move |u: &str| u.starts_with(&prefix) && u.contains("reason=idle") && u.contains(rd)
    };
    b.wait_for_url(
        "tab 1 on the login page",
        SESSION_WAIT,
        login("rd=%2Ffirst%3Fx%3D1"),
    )
    .await;
    b.switch_to(&second).await;
    let url = b
        .wait_for_url(
            "tab 2 on the login page",
            SESSION_WAIT,
            login("rd=%2Fsecond"),
        )
        .await;
    assert!(!url.contains("first"), "{url}");
    assert!(
        b.client.get_named_cookie("gatehouse").await.is_err(),
        "the ended session's cookie is cleared"
    );

    // Signing in again from there brings the tab back to its page.
    b.wait_for_visible("input[name=username]", DEFAULT_WAIT)
        .await;
    b.fill("input[name=username]", "alice").await;
    b.fill("input[name=password]", ALICE_PASSWORD).await;
    b.click("button[type=submit]").await;
    let back = gw.url("/second");
    b.wait_for_url("back on /second", DEFAULT_WAIT, |u| u == back)
        .await;
    b.close().await;
}

/// "Sign out" in the dialog of one tab ends the session and takes every
/// tab to the login page, saying they were signed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_in_the_dialog_signs_every_tab_out() {
    let Some(wd) = WebDriver::start() else { return };
    let app = HtmlApp::start();
    let gw = Gateway::start(&config(app.addr, SESSION));
    let b = wd.profile().await;
    sign_in(&b, &gw, "/one").await;
    let one = b.tab().await;
    b.new_tab().await;
    b.goto(&gw.url("/two")).await;
    b.wait_for_visible(DIALOG, SESSION_WAIT).await;
    let (status, _) = status_of(&b, &gw).await;
    assert_eq!(status, 200);
    let cookie = b.client.get_named_cookie("gatehouse").await.unwrap();
    let cookie = cookie.value().to_string();
    b.click("#gatehouse-session-signout").await;
    let logout = |rd: &'static str| {
        let prefix = gw.url("/.gatehouse/login?");
        move |u: &str| u.starts_with(&prefix) && u.contains("reason=logout") && u.contains(rd)
    };
    b.wait_for_url("tab 2 signed out", DEFAULT_WAIT, logout("rd=%2Ftwo"))
        .await;
    b.switch_to(&one).await;
    b.wait_for_url("tab 1 signed out", DEFAULT_WAIT, logout("rd=%2Fone"))
        .await;
    // The session is over at the gateway, not only in this browser.
    let ended = reqwest::Client::new()
        .get(gw.url("/.gatehouse/session"))
        .header("Accept", "application/json")
        .header("Cookie", format!("gatehouse={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 401);
    let body: Value = ended.json().await.unwrap();
    assert_eq!(body["reason"], "logout", "{body}");
    b.goto(&gw.url("/one")).await;
    b.wait_for_url("a signed-out page load", DEFAULT_WAIT, |u| {
        u.contains("/.gatehouse/login?")
    })
    .await;
    b.close().await;
}

/// A tab coming back to the foreground, or the network coming back, checks
/// at once: a session revoked meanwhile sends it to the login page long
/// before the once-a-minute poll would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_coming_back_checks_at_once() {
    let Some(wd) = WebDriver::start() else { return };
    let app = HtmlApp::start();
    let gw = Gateway::start(
        &config(
            app.addr,
            "idle_timeout = \"30m\"\n\n[ui]\ninject_session_script = true\n",
        )
        .replace(
            "[server]\n",
            "[server]\nadmin_token_file = \"admin.token\"\n",
        ),
    );
    let b = wd.profile().await;
    sign_in(&b, &gw, "/back").await;
    // The status the page has is more than a few seconds old (events
    // within 5 s of a check are answered from it).
    b.wait_until("the shared status to age", DEFAULT_WAIT, || async {
        let age = b
            .eval(
                "var s = JSON.parse(localStorage.getItem('gatehouse.session') || 'null'); return s ? Date.now() - s.at : -1;",
                vec![],
            )
            .await;
        (age.as_f64().unwrap_or(-1.0) > 5500.0).then_some(())
    })
    .await;
    let (status, body) = gw
        .admin("POST", "/api/users/alice/revoke", Some(common::ADMIN_TOKEN))
        .await;
    assert_eq!(status, 200, "{body}");
    let asked = Instant::now();
    b.eval(
        "document.dispatchEvent(new Event('visibilitychange'));",
        vec![],
    )
    .await;
    b.wait_for_url("the login page", Duration::from_secs(10), |u| {
        u.contains("/.gatehouse/login?") && u.contains("reason=revoked") && u.contains("rd=%2Fback")
    })
    .await;
    assert!(asked.elapsed() < Duration::from_secs(10));

    // The same for the network coming back.
    sign_in(&b, &gw, "/online").await;
    b.wait_until("the shared status to age", DEFAULT_WAIT, || async {
        let age = b
            .eval(
                "var s = JSON.parse(localStorage.getItem('gatehouse.session') || 'null'); return s && !s.ended ? Date.now() - s.at : -1;",
                vec![],
            )
            .await;
        (age.as_f64().unwrap_or(-1.0) > 5500.0).then_some(())
    })
    .await;
    let (status, _) = gw
        .admin("POST", "/api/users/alice/revoke", Some(common::ADMIN_TOKEN))
        .await;
    assert_eq!(status, 200);
    b.eval("window.dispatchEvent(new Event('online'));", vec![])
        .await;
    b.wait_for_url("the login page", Duration::from_secs(10), |u| {
        u.contains("reason=revoked") && u.contains("rd=%2Fonline")
    })
    .await;
    b.close().await;
}

/// The polling budget, measured: ten idle tabs of one browser for
/// `GATEHOUSE_IDLE_TABS_SECS` seconds (default 120; the figure in
/// BENCHMARKS.md is from 600), counting the status requests the gateway
/// answers. Run with `--ignored --nocapture`; it prints the count and the
/// rate per 10 minutes, and fails if the tabs polled more than once a
/// minute between them (plus one for the minute already begun).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of minutes; run by hand for BENCHMARKS.md"]
async fn status_traffic_of_ten_idle_tabs() {
    let Some(wd) = WebDriver::start() else { return };
    let secs: u64 = std::env::var("GATEHOUSE_IDLE_TABS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let app = HtmlApp::start();
    let gw = Gateway::start(&config(
        app.addr,
        "idle_timeout = \"30m\"\n\n[ui]\ninject_session_script = true\n",
    ));
    let b = wd.profile().await;
    sign_in(&b, &gw, "/tab/0").await;
    for i in 1..10 {
        b.new_tab().await;
        b.goto(&gw.url(&format!("/tab/{i}"))).await;
    }
    let status_requests = || {
        gw.log()
            .lines()
            .filter(|l| {
                l.contains("gatehouse::access") && l.contains("path=\"/.gatehouse/session\" ")
            })
            .count()
    };
    // Every tab has run its script once it has the shared status.
    for tab in b.client.windows().await.unwrap() {
        b.switch_to(&tab).await;
        b.wait_until("the script to have a status", DEFAULT_WAIT, || async {
            let s = b
                .eval(
                    "return window.localStorage.getItem('gatehouse.session');",
                    vec![],
                )
                .await;
            s.as_str().map(|_| ())
        })
        .await;
    }
    let loads = status_requests();
    assert!(
        loads >= 1,
        "the status requests are counted from the access log"
    );
    let started = Instant::now();
    // The measurement itself: real tabs, real timers, nothing touched.
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let idle = status_requests() - loads;
    let elapsed = started.elapsed().as_secs_f64();
    let per_10_min = idle as f64 * 600.0 / elapsed;
    println!(
        "10 tabs: {loads} status requests while loading; {idle} in {elapsed:.0} s idle = {per_10_min:.1} per 10 minutes (idle count x 600 / seconds)"
    );
    assert!(
        idle as f64 <= (elapsed / 60.0).ceil() + 1.0,
        "{idle} status requests in {elapsed:.0} s from 10 tabs"
    );
    b.close().await;
}
