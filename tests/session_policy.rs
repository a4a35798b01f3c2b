//! End to end, with second-scale settings: timeouts, the status endpoint,
//! device limits in each mode (and under a race), the devices page,
//! password changes, and users changed by hand then reloaded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, parallel_logins, Browser, Gateway, Upstream, ALICE_PASSWORD, BOB_PASSWORD};
use gatehouse::session::SessionId;
use std::time::{Duration, Instant};
use tokio::time::sleep;

fn gateway(session_extra: &str) -> (Upstream, Gateway) {
    let upstream = Upstream::start();
    let gw = Gateway::start(&config(upstream.addr, session_extra));
    (upstream, gw)
}

/// Requests `/` every `step` for `total`, asserting each gets through.
async fn keep_busy(b: &mut Browser, step: Duration, total: Duration) {
    let start = Instant::now();
    while start.elapsed() < total {
        let r = b.page("/busy").await;
        assert_eq!(
            r.status,
            200,
            "after {:?}: {:?}",
            start.elapsed(),
            r.header("location")
        );
        sleep(step).await;
    }
}

#[tokio::test]
async fn activity_keeps_a_short_idle_session_alive_and_quiet_ends_it() {
    let (_u, gw) = gateway("idle_timeout = \"2s\"\n");
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    keep_busy(&mut b, Duration::from_millis(400), Duration::from_secs(4)).await;
    sleep(Duration::from_millis(2500)).await;
    let r = b.page("/quiet").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/.gatehouse/login?rd=%2Fquiet&reason=idle");
}

#[tokio::test]
async fn a_busy_session_still_ends_at_its_absolute_timeout() {
    let (_u, gw) = gateway("idle_timeout = \"10s\"\nabsolute_timeout = \"2s\"\n");
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let start = Instant::now();
    loop {
        let r = b.page("/busy").await;
        if r.status == 303 {
            assert_eq!(r.location(), "/.gatehouse/login?rd=%2Fbusy&reason=expired");
            break;
        }
        assert_eq!(r.status, 200);
        assert!(start.elapsed() < Duration::from_secs(5), "never expired");
        sleep(Duration::from_millis(200)).await;
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1800),
        "expired early: {elapsed:?}"
    );
}

#[tokio::test]
async fn polling_the_status_endpoint_does_not_keep_a_session_alive() {
    let (_u, gw) = gateway("idle_timeout = \"2s\"\n");
    let mut b = gw.signed_in("alice", ALICE_PASSWORD).await;
    let first = b.api("/.gatehouse/session").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let j = first.json();
    assert_eq!(j["user"], "alice");
    assert_eq!(j["groups"], serde_json::json!(["staff", "admins"]));
    assert!(j["idle_expires_in"].as_u64().unwrap() <= 2);
    assert!(j["absolute_expires_in"].as_u64().unwrap() > 80_000);

    let start = Instant::now();
    let mut ended = None;
    while start.elapsed() < Duration::from_millis(3000) {
        let r = b.api("/.gatehouse/session").await;
        if r.status != 200 {
            ended = Some(r);
            break;
        }
        sleep(Duration::from_millis(300)).await;
    }
    let ended = ended.expect("polling kept the session alive");
    assert_eq!(ended.status, 401);
    assert_eq!(ended.json()["reason"], "idle");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "ended too early"
    );
    // the dead cookie was cleared with that answer
    assert!(b.session_cookie().is_none());
    assert_eq!(b.page("/").await.status, 303);
}

#[tokio::test]
async fn reject_refuses_the_third_device_until_one_signs_out() {
    let (_u, gw) = gateway("max_devices = 2\non_device_limit = \"reject\"\n");
    let mut first = gw.signed_in("alice", ALICE_PASSWORD).await;
    let _second = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut third = Browser::new(&gw.url("/"));
    let r = third.login("alice", ALICE_PASSWORD, "/").await;
    assert_eq!(r.status, 409);
    assert!(
        r.body.contains("already signed in on 2 other devices"),
        "{}",
        r.body
    );
    assert!(third.session_cookie().is_none());
    // another user is not affected
    gw.signed_in("bob", BOB_PASSWORD).await;

    let token = first.page("/.gatehouse/logout").await.field("csrf_token");
    first
        .post_form("/.gatehouse/logout", &[("csrf_token", &token)])
        .await;
    let r = third.login("alice", ALICE_PASSWORD, "/").await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[tokio::test]
async fn evict_oldest_signs_out_the_least_recently_used_device() {
    let (_u, gw) = gateway("max_devices = 2\non_device_limit = \"evict_oldest\"\n");
    let mut oldest = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut middle = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut newest = gw.signed_in("alice", ALICE_PASSWORD).await;
    assert_eq!(newest.page("/").await.status, 200);
    assert_eq!(middle.page("/").await.status, 200, "the other device stays");
    let r = oldest.page("/reports").await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location(),
        "/.gatehouse/login?rd=%2Freports&reason=evicted"
    );
    let login = oldest.page(r.location()).await;
    assert!(
        login.body.contains("signed in on another device"),
        "{}",
        login.body
    );
}

#[tokio::test]
async fn ask_lets_the_user_pick_which_device_to_sign_out() {
    let (_u, gw) = gateway("max_devices = 2\non_device_limit = \"ask\"\n");
    let mut a = gw.signed_in("alice", ALICE_PASSWORD).await;
    a.user_agent = "Mozilla/5.0 (Windows NT 10.0) Chrome/129.0 Safari/537.36".into();
    a.page("/").await;
    let mut b = Browser::new(&gw.url("/"));
    b.user_agent =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) Version/17.6 Mobile Safari/604.1"
            .into();
    assert_eq!(b.login("alice", ALICE_PASSWORD, "/").await.status, 303);
    let b_key = session_key_of(&mut b).await;

    let mut c = Browser::new(&gw.url("/"));
    let ask = c.login("alice", ALICE_PASSWORD, "/reports").await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(
        ask.body.contains("already signed in on 2 other devices"),
        "{}",
        ask.body
    );
    assert!(ask.body.contains("Safari 17 on iOS"), "{}", ask.body);
    assert!(ask.body.contains("127.0.0.1"));
    assert!(
        c.session_cookie().is_none(),
        "not signed in before choosing"
    );
    let pending = ask.field("pending");
    let csrf = ask.field("csrf_token");

    let r = c
        .post_form(
            "/.gatehouse/login/choose",
            &[
                ("pending", &pending),
                ("device", &b_key),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/reports");
    assert_eq!(c.page("/").await.status, 200);
    let r = b.page("/").await;
    assert!(r.location().ends_with("reason=evicted"), "{}", r.location());
    assert_eq!(a.page("/").await.status, 200, "the device not picked stays");

    // the pending token is single-use
    let mut d = Browser::new(&gw.url("/"));
    d.cookies = c.cookies.clone();
    d.cookies.remove("gatehouse");
    let r = d
        .post_form(
            "/.gatehouse/login/choose",
            &[
                ("pending", &pending),
                ("device", &b_key),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "replayed pending token: {}", r.body);
    assert!(d.session_cookie().is_none());
}

#[tokio::test]
async fn an_expired_or_forged_pending_login_is_refused() {
    use gatehouse::clock::{Clock, SystemClock};
    use gatehouse::gateway::pending_login::PendingLogin;
    use gatehouse::gateway::signing::Signer;

    let upstream = Upstream::start();
    let text = config(
        upstream.addr,
        "max_devices = 1\non_device_limit = \"ask\"\n",
    )
    .replace(
        "threads = 1\n",
        "threads = 1\nsecret_file = \"secret.key\"\n",
    );
    let gw = Gateway::start(&text);
    let mut a = gw.signed_in("alice", ALICE_PASSWORD).await;
    let a_key = session_key_of(&mut a).await;
    let mut c = Browser::new(&gw.url("/"));
    let ask = c.login("alice", ALICE_PASSWORD, "/").await;
    let csrf = ask.field("csrf_token");
    let genuine = PendingLogin::open(
        &ask.field("pending"),
        &Signer::new(common::TEST_SECRET),
        SystemClock.now(),
    )
    .unwrap();

    // sealed with the real key, but 2 minutes and 1 second old
    let mut stale = genuine.clone();
    stale.expires = gatehouse::clock::Timestamp::from_millis(SystemClock.now().as_millis() - 1_000);
    stale.nonce = "fresh-nonce-1".into();
    let forged = PendingLogin {
        nonce: "fresh-nonce-2".into(),
        ..genuine.clone()
    }
    .seal(&Signer::new(&[9; 32]));
    for token in [stale.seal(&Signer::new(common::TEST_SECRET)), forged] {
        let r = c
            .post_form(
                "/.gatehouse/login/choose",
                &[
                    ("pending", &token),
                    ("device", &a_key),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(c.session_cookie().is_none());
    }
    assert_eq!(a.page("/").await.status, 200, "nothing was evicted");
}

/// The session key (hex) of a browser's current session, from its devices page.
async fn session_key_of(b: &mut Browser) -> String {
    let page = b.page("/.gatehouse/devices").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cookie = b.session_cookie().unwrap();
    let (id, _) = SessionId::parse_cookie(cookie).unwrap();
    id.key().to_hex()
}

async fn live_sessions(browsers: &mut [(u16, Browser)]) -> usize {
    let mut live = 0;
    for (_, b) in browsers.iter_mut() {
        if b.session_cookie().is_some() && b.api("/.gatehouse/session").await.status == 200 {
            live += 1;
        }
    }
    live
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_logins_never_exceed_the_limit_in_any_mode() {
    for mode in ["reject", "evict_oldest", "ask"] {
        let (_u, gw) = gateway(&format!("max_devices = 2\non_device_limit = \"{mode}\"\n"));
        let mut results = parallel_logins(&[gw.url("/")], 50, "alice", ALICE_PASSWORD).await;
        let signed_in = results.iter().filter(|(s, _)| *s == 303).count();
        match mode {
            "evict_oldest" => assert_eq!(signed_in, 50, "every login succeeds, evicting"),
            _ => assert_eq!(signed_in, 2, "{mode}: only two logins get in"),
        }
        assert_eq!(
            live_sessions(&mut results).await,
            2,
            "{mode}: exactly two live sessions"
        );
    }
}

#[tokio::test]
async fn group_and_user_overrides_tighten_the_limit() {
    let (_u, gw) = gateway("max_devices = 3\n[session.groups.kiosk]\nmax_devices = 1\n");
    gw.signed_in("dave", BOB_PASSWORD).await;
    assert_eq!(
        gw.login_status("dave", BOB_PASSWORD).await,
        409,
        "kiosk members get one device"
    );
    for _ in 0..3 {
        gw.signed_in("bob", BOB_PASSWORD).await;
    }
    assert_eq!(gw.login_status("bob", BOB_PASSWORD).await, 409);
}

#[tokio::test]
async fn the_devices_page_signs_out_one_or_all_others() {
    let (_u, gw) = gateway("");
    let mut me = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut other = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut third = gw.signed_in("alice", ALICE_PASSWORD).await;
    let other_key = session_key_of(&mut other).await;

    let page = me.page("/.gatehouse/devices").await;
    assert_eq!(page.body.matches("<li>").count(), 3, "{}", page.body);
    assert_eq!(page.body.matches("(this device)").count(), 1);
    let token = page.field("csrf_token");

    // a forged request does nothing
    let r = me
        .post_form("/.gatehouse/devices/revoke", &[("device", &other_key)])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(other.page("/").await.status, 200);

    let r = me
        .post_form(
            "/.gatehouse/devices/revoke",
            &[("device", &other_key), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(other.page("/").await.location().ends_with("reason=logout"));
    assert_eq!(third.page("/").await.status, 200);

    let r = me
        .post_form(
            "/.gatehouse/devices/revoke-others",
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(third.page("/").await.status, 303);
    assert_eq!(me.page("/").await.status, 200, "this device stays");
    assert_eq!(
        me.page("/.gatehouse/devices")
            .await
            .body
            .matches("<li>")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_and_keeps_this_one() {
    let (_u, gw) = gateway("");
    let users_path = gw.dir().join("users.toml");
    let before = std::fs::read_to_string(&users_path).unwrap();
    let mut here = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut elsewhere = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut bob = gw.signed_in("bob", BOB_PASSWORD).await;
    let old_cookie = here.session_cookie().unwrap().clone();

    let form = here.page("/.gatehouse/password").await;
    let token = form.field("csrf_token");
    let new_password = "a-brand-new-password";
    for (current, new, confirm, why) in [
        ("wrong-password", new_password, new_password, "not right"),
        (ALICE_PASSWORD, "short", "short", "at least 10"),
        (
            ALICE_PASSWORD,
            new_password,
            "something-else-entirely",
            "differ",
        ),
        (
            ALICE_PASSWORD,
            ALICE_PASSWORD,
            ALICE_PASSWORD,
            "must differ from the current",
        ),
    ] {
        let r = here
            .post_form(
                "/.gatehouse/password",
                &[
                    ("current", current),
                    ("new", new),
                    ("confirm", confirm),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(r.status, 400, "{why}");
        assert!(r.body.contains(why), "{why}: {}", r.body);
    }
    assert_eq!(
        std::fs::read_to_string(&users_path).unwrap(),
        before,
        "refusals change nothing"
    );

    let r = here
        .post_form(
            "/.gatehouse/password",
            &[
                ("current", ALICE_PASSWORD),
                ("new", new_password),
                ("confirm", new_password),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(here.session_cookie().unwrap(), &old_cookie, "a new ID");
    assert_eq!(here.page("/").await.status, 200, "this device continues");
    let r = elsewhere.page("/").await;
    assert!(
        r.location().ends_with("reason=password"),
        "{}",
        r.location()
    );
    assert_eq!(bob.page("/").await.status, 200, "other users are untouched");

    // the file differs only in alice's hash
    let after = std::fs::read_to_string(&users_path).unwrap();
    let old_hash = gatehouse::auth::UserDb::parse(&users_path, &before)
        .unwrap()
        .get("alice")
        .unwrap()
        .password_hash
        .clone();
    let new_hash = gatehouse::auth::UserDb::parse(&users_path, &after)
        .unwrap()
        .get("alice")
        .unwrap()
        .password_hash
        .clone();
    assert_eq!(after, before.replace(&old_hash, &new_hash));
    assert!(gatehouse::auth::password::verify_password(
        &new_hash,
        new_password
    ));

    assert_eq!(gw.login_status("alice", ALICE_PASSWORD).await, 401);
    assert_eq!(gw.login_status("alice", new_password).await, 303);
}

#[tokio::test]
async fn users_changed_by_hand_end_their_sessions_on_reload() {
    let (_u, gw) = gateway("");
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let mut bob = gw.signed_in("bob", BOB_PASSWORD).await;
    let mut dave = gw.signed_in("dave", BOB_PASSWORD).await;
    let path = gw.dir().join("users.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let db = gatehouse::auth::UserDb::parse(&path, &text).unwrap();

    // alice's hash edited by hand, bob disabled, dave removed
    let new_alice = gatehouse::auth::password::hash_password("edited-by-hand-1").unwrap();
    let alice_hash = db.get("alice").unwrap().password_hash.clone();
    let edited = text
        .replacen(&alice_hash, &new_alice, 1)
        .replace("name = \"Bob\"", "name = \"Bob\"\ndisabled = true");
    let edited = edited[..edited.find("[dave]").unwrap()].to_string();
    std::fs::write(&path, edited).unwrap();
    let log = gw.reload();
    assert!(log.contains("config reloaded"), "{log}");

    assert!(alice
        .page("/")
        .await
        .location()
        .ends_with("reason=password"));
    assert!(bob.page("/").await.location().ends_with("reason=revoked"));
    assert!(dave.page("/").await.location().ends_with("reason=revoked"));
}

#[tokio::test]
async fn a_broken_reload_keeps_the_old_config() {
    let (_u, gw) = gateway("");
    let mut alice = gw.signed_in("alice", ALICE_PASSWORD).await;
    let path = gw.dir().join("gatehouse.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replace(
            "cookie_secure = false",
            "cookie_secure = false\nidle_timeout = \"soonish\"",
        ),
    )
    .unwrap();
    let log = gw.reload();
    assert!(log.contains("config reload failed"), "{log}");
    assert!(log.contains("session.idle_timeout"), "{log}");
    assert_eq!(alice.page("/").await.status, 200, "still serving");
}
