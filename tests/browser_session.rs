//! The browser session script (`session.js`) in a real headless Chromium:
//! the idle warning with its countdown, "Stay signed in", tabs kept in
//! step, every tab sent to the login page when the session ends, and a
//! strict CSP. Timeouts are second-scale (idle 10 s, warning 5 s); every
//! wait polls for what a user would see, with a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::webdriver::{WebDriver, DEFAULT_WAIT};
use common::{config, Gateway, Upstream};

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
