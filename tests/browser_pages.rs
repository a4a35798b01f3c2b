//! The gateway's pages in a real browser (headless Chromium over
//! WebDriver): signing in, the app behind it, the `ask` page from a second
//! browser profile, the devices page, the password page, signing out, a
//! failed login keeping the name, and the pages in Spanish.
//!
//! With `GATEHOUSE_SCREENSHOTS=DIR` the tests also save the README's
//! screenshots there (`login.png`, `ask.png`, `devices.png`):
//! `GATEHOUSE_SCREENSHOTS=docs/screenshots cargo test --test browser_pages`.
//! Without chromedriver or Chromium a test skips with a reason, except
//! under `CI=true`, where that fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::webdriver::{Profile, WebDriver};
use common::{config, users_toml, Gateway, Upstream, ALICE_PASSWORD, BOB_PASSWORD};

const WAIT: Duration = Duration::from_secs(15);

/// alice may have 2 devices; dave (group `kiosk`) 1, and is asked which
/// to sign out at the limit.
fn gateway() -> (Upstream, Gateway) {
    let upstream = Upstream::start();
    let session =
        "max_devices = 2\non_device_limit = \"ask\"\n\n[session.groups.kiosk]\nmax_devices = 1\n";
    let gw = Gateway::start_with_users(&config(upstream.addr, session), &users_toml());
    (upstream, gw)
}

/// Saves a screenshot for the README when `GATEHOUSE_SCREENSHOTS` says where.
async fn screenshot(p: &Profile, name: &str) {
    if let Some(dir) = std::env::var_os("GATEHOUSE_SCREENSHOTS") {
        let path = PathBuf::from(dir).join(name);
        p.screenshot(&path).await;
        eprintln!("saved {}", path.display());
    }
}

/// The value of the input matching `css`.
async fn value_of(p: &Profile, css: &str) -> String {
    p.eval(
        "return document.querySelector(arguments[0]).value;",
        vec![css.into()],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Fills in the login form on the current page and submits it.
async fn sign_in(p: &Profile, user: &str, password: &str) {
    p.wait_for_visible("#password", WAIT).await;
    p.fill("#username", user).await;
    p.fill("#password", password).await;
    p.click("button[type=submit]").await;
}

async fn body_text(p: &Profile) -> String {
    p.text("body").await.unwrap_or_default()
}

/// Waits until the page's text contains `needle`.
async fn wait_for_text(p: &Profile, needle: &str) -> String {
    p.wait_until(&format!("the page to say {needle:?}"), WAIT, || async {
        let text = body_text(p).await;
        text.contains(needle).then_some(text)
    })
    .await
}

#[tokio::test]
async fn a_new_user_signs_in_manages_devices_changes_password_and_signs_out() {
    let Some(wd) = WebDriver::start() else { return };
    let (upstream, gw) = gateway();
    let laptop = wd.profile().await;

    // A page of the app sends an unknown visitor to the login page.
    laptop.goto(&gw.url("/reports?week=3")).await;
    laptop
        .wait_for_url("the login page", WAIT, |u| {
            u.contains("/.gatehouse/login?rd=")
        })
        .await;
    screenshot(&laptop, "login.png").await;

    // A wrong password: the name stays, only the password is retyped.
    sign_in(&laptop, "alice", "not-the-password").await;
    wait_for_text(&laptop, "Incorrect username or password.").await;
    assert_eq!(value_of(&laptop, "#username").await, "alice");
    assert_eq!(value_of(&laptop, "#password").await, "");
    let focused = laptop
        .eval("return document.activeElement.id;", vec![])
        .await;
    assert_eq!(focused, "password", "the password box has the focus");
    laptop.fill("#password", ALICE_PASSWORD).await;
    laptop.click("button[type=submit]").await;

    // The app, with the user's identity.
    let url = laptop
        .wait_for_url("the app", WAIT, |u| u.ends_with("/reports?week=3"))
        .await;
    assert!(url.starts_with(&gw.url("/")), "{url}");
    let app = wait_for_text(&laptop, "X-Remote-User").await;
    assert!(app.contains("\"X-Remote-User\",\"alice\""), "{app}");
    assert_eq!(upstream.last().header("x-remote-user"), Some("alice"));

    // Alone: no "sign out all other devices".
    laptop.goto(&gw.url("/.gatehouse/devices")).await;
    wait_for_text(&laptop, "No other device is signed in.").await;
    assert!(laptop.text("#revoke-others").await.is_none());

    // A second device appears, with the button.
    let phone = wd.profile().await;
    phone.goto(&gw.url("/")).await;
    sign_in(&phone, "alice", ALICE_PASSWORD).await;
    phone
        .wait_for_url("the app", WAIT, |u| !u.contains("/.gatehouse/"))
        .await;
    laptop.goto(&gw.url("/.gatehouse/devices")).await;
    let devices = wait_for_text(&laptop, "2 devices in all.").await;
    assert!(devices.contains("this device"), "{devices}");
    assert_eq!(
        laptop.text("#revoke-others").await.as_deref(),
        Some("Sign out the other device")
    );
    screenshot(&laptop, "devices.png").await;

    // Changing the password ends the other session.
    laptop.click("a[href$='/password']").await;
    laptop.wait_for_visible("#current", WAIT).await;
    laptop.fill("#current", ALICE_PASSWORD).await;
    laptop.fill("#new", "a-brand-new-password").await;
    laptop.fill("#confirm", "a-brand-new-password").await;
    laptop.click("button[type=submit]").await;
    wait_for_text(
        &laptop,
        "Your password was changed and every other device was signed out.",
    )
    .await;
    phone.goto(&gw.url("/somewhere")).await;
    phone
        .wait_for_url("the phone back at the login page", WAIT, |u| {
            u.contains("reason=password")
        })
        .await;
    wait_for_text(&phone, "Your password was changed, so this session ended.").await;
    assert_eq!(
        value_of(&phone, "#username").await,
        "alice",
        "the name is kept"
    );

    // "Back to the app", then sign out.
    laptop.click("a[href='/']").await;
    laptop
        .wait_for_url("the app", WAIT, |u| u == gw.url("/"))
        .await;
    laptop.goto(&gw.url("/.gatehouse/logout")).await;
    laptop.wait_for_visible("button[type=submit]", WAIT).await;
    laptop.click("button[type=submit]").await;
    laptop
        .wait_for_url("the login page", WAIT, |u| u.contains("reason=logout"))
        .await;
    wait_for_text(&laptop, "You have been signed out.").await;
    assert_eq!(
        value_of(&laptop, "#username").await,
        "",
        "signing out forgets the name"
    );
    laptop.goto(&gw.url("/reports")).await;
    laptop
        .wait_for_url("the login page again", WAIT, |u| {
            u.contains("/.gatehouse/login")
        })
        .await;
    // No script or policy error on any page; the one failed load is the
    // wrong password's 401, which Chromium reports as an error.
    let errors = laptop.console_errors().await;
    let unexpected: Vec<_> = errors
        .iter()
        .filter(|e| {
            !(e.source == "network"
                && e.message.contains("/.gatehouse/login - ")
                && e.message.contains("status of 401"))
        })
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    phone.close().await;
    laptop.close().await;
}

#[tokio::test]
async fn the_ask_page_from_a_second_profile_describes_the_first_device() {
    let Some(wd) = WebDriver::start() else { return };
    let (_upstream, gw) = gateway();
    let first = wd.profile().await;
    first.goto(&gw.url("/")).await;
    sign_in(&first, "dave", BOB_PASSWORD).await;
    first
        .wait_for_url("the app", WAIT, |u| !u.contains("/.gatehouse/"))
        .await;
    let version = first
        .eval(
            "return navigator.userAgent.match(/Chrome\\/(\\d+)/)[1];",
            vec![],
        )
        .await;
    let version = version.as_str().unwrap().to_string();

    let second = wd.profile().await;
    second.goto(&gw.url("/inbox?unread=1")).await;
    sign_in(&second, "dave", BOB_PASSWORD).await;
    let ask = wait_for_text(&second, "Sign out another device?").await;
    assert!(
        ask.contains(&format!("Chrome {version} on Linux")),
        "browser, version and system: {ask}"
    );
    assert!(ask.contains("this is the one you used last"), "{ask}");
    assert!(ask.contains("Address 127.0.0.1"), "{ask}");
    assert!(ask.contains("signed in just now"), "{ask}");
    assert!(
        ask.contains("signed in on 1 other device,"),
        "singular: {ask}"
    );
    screenshot(&second, "ask.png").await;

    // Cancel goes back to the form with `rd` kept.
    second.click("p.aside a").await;
    let url = second
        .wait_for_url("the login page", WAIT, |u| u.contains("/.gatehouse/login"))
        .await;
    assert!(url.contains("rd=%2Finbox%3Funread%3D1"), "{url}");

    // Again, and this time sign the first device out.
    sign_in(&second, "dave", BOB_PASSWORD).await;
    wait_for_text(&second, "Sign out another device?").await;
    second.click("button[type=submit]").await;
    second
        .wait_for_url("the app at rd", WAIT, |u| u.ends_with("/inbox?unread=1"))
        .await;
    first.goto(&gw.url("/")).await;
    first
        .wait_for_url("the first device signed out", WAIT, |u| {
            u.contains("reason=evicted")
        })
        .await;
    assert_eq!(value_of(&first, "#username").await, "dave");
    first.close().await;
    second.close().await;
}

/// chromedriver's `goog/cdp/execute`: one DevTools command in the
/// profile's current tab (here: the `Accept-Language` a Spanish browser
/// sends).
async fn cdp(wd: &WebDriver, p: &Profile, cmd: &str, params: serde_json::Value) {
    let session = p.client.session_id().await.unwrap().unwrap();
    let url = format!("{}/session/{session}/goog/cdp/execute", wd.url());
    let resp = reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({ "cmd": cmd, "params": params }))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "{cmd}: {}",
        resp.text().await.unwrap()
    );
}

/// A Spanish browser gets Spanish pages; in dark mode the focus ring is
/// the light blue that stands out 8.9:1 from the dark page, not the
/// accent (2.9:1).
#[tokio::test]
async fn spanish_pages_and_the_dark_mode_focus_ring() {
    let Some(wd) = WebDriver::start() else { return };
    let (_upstream, gw) = gateway();
    let p = wd.profile().await;
    cdp(&wd, &p, "Network.enable", serde_json::json!({})).await;
    let spanish = serde_json::json!({ "headers": { "Accept-Language": "es-ES,es;q=0.9" } });
    cdp(&wd, &p, "Network.setExtraHTTPHeaders", spanish).await;
    p.goto(&gw.url("/")).await;
    let login = wait_for_text(&p, "Contraseña").await;
    assert!(login.contains("Usuario"), "{login}");
    let lang = p
        .eval("return document.documentElement.lang;", vec![])
        .await;
    assert_eq!(lang, "es");
    sign_in(&p, "alice", "mal").await;
    wait_for_text(&p, "Usuario o contraseña incorrectos.").await;
    assert_eq!(value_of(&p, "#username").await, "alice");

    let ring = "document.querySelector('#password').focus(); \
                const s = getComputedStyle(document.activeElement); \
                return [s.outlineColor, s.outlineStyle, getComputedStyle(document.body).backgroundColor];";
    let light = p.eval(ring, vec![]).await;
    assert_eq!(light[0], "rgb(36, 88, 198)", "{light}");
    let dark =
        serde_json::json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] });
    cdp(&wd, &p, "Emulation.setEmulatedMedia", dark).await;
    let dark = p.eval(ring, vec![]).await;
    assert_eq!(dark[0], "rgb(138, 180, 248)", "{dark}");
    assert_eq!(dark[1], "solid");
    assert_ne!(
        dark[2], light[2],
        "the page itself went dark: {dark} {light}"
    );
    p.close().await;
}
