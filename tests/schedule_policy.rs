//! Scheduled invalidation on an injected clock (README: Invalidation), through the
//! same authenticate() the gateway runs per request; and once end to end
//! with a schedule that fires every second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use gatehouse::auth::{password, User, UserDb};
use gatehouse::clock::{ManualClock, Timestamp};
use gatehouse::gateway::authenticate::{authenticate, Auth};
use gatehouse::gateway::state::{Shared, Snapshot};
use gatehouse::session::schedule::Schedule;
use gatehouse::session::store::{DeviceLimit, MemoryStore, SessionStore};
use gatehouse::session::{
    EndReason, Liveness, SessionId, SessionPolicy, SessionRecord, Watermarks,
};

fn user(name: &str, groups: &[&str], hash: &str) -> User {
    User {
        username: name.into(),
        password_fingerprint: password::fingerprint(hash),
        password_hash: hash.into(),
        name: None,
        email: None,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        max_devices: None,
        disabled: false,
        identity_values: Default::default(),
    }
}

/// Milliseconds of a wall-clock time in Dublin.
fn dublin(d: i8, h: i8, m: i8, s: i8) -> Timestamp {
    let tz = jiff::tz::TimeZone::get("Europe/Dublin").unwrap();
    let z = tz
        .to_ambiguous_zoned(jiff::civil::date(2026, 1, d).at(h, m, s, 0))
        .earlier()
        .unwrap();
    Timestamp::from_millis(u64::try_from(z.timestamp().as_millisecond()).unwrap())
}

struct World {
    shared: Shared,
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
}

impl World {
    fn new() -> World {
        let hash = password::hash_password("schedule-test-pw").unwrap();
        let mut settings = gatehouse::demo::demo_settings(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        settings.session.absolute_timeout = Duration::from_secs(7 * 86_400);
        settings.session.idle_timeout = Duration::from_secs(7 * 86_400);
        settings.schedules = vec![Arc::new(
            Schedule::parse("0 2 * * *", "Europe/Dublin", vec!["oncall".into()]).unwrap(),
        )];
        let users = UserDb::from_users([
            user("alice", &["staff"], &hash),
            user("olga", &["oncall"], &hash),
        ]);
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::at(dublin(14, 12, 0, 0)));
        let shared = Shared::new(
            Snapshot::new(settings, users),
            store.clone(),
            clock.clone(),
            Some(vec![1; 32]),
        )
        .unwrap();
        World {
            shared,
            clock,
            store,
        }
    }

    /// A session for `user` created at `at`; returns its cookie header.
    async fn session_at(&self, user: &str, at: Timestamp) -> String {
        self.clock.set(at);
        let snap = self.shared.snapshot.load_full();
        let u = snap.users.get(user).unwrap();
        let id = SessionId::generate(&ring::rand::SystemRandom::new()).unwrap();
        let record = SessionRecord {
            user: user.into(),
            created_at: at,
            last_seen: at,
            client_ip: None,
            user_agent: String::new(),
            password_fingerprint: u.password_fingerprint,
            groups: u.groups.clone(),
            ended: None,
        };
        let limit = DeviceLimit::none(Liveness {
            now: at,
            policy: SessionPolicy {
                idle_timeout: Duration::from_secs(60),
                absolute_timeout: Duration::from_secs(60),
            },
            marks: Watermarks::default(),
            password_fingerprint: u.password_fingerprint,
        });
        self.store.insert(id.key(), record, limit).await.unwrap();
        format!("gatehouse={}", id.cookie_value(at))
    }

    async fn check(&self, cookie: &str, now: Timestamp) -> Option<EndReason> {
        self.clock.set(now);
        let snap = self.shared.snapshot.load_full();
        match authenticate(&self.shared, &snap, Some(cookie.as_bytes()), true)
            .await
            .unwrap()
        {
            Auth::Valid(_) => None,
            Auth::Ended(r) => Some(r),
            Auth::Anonymous | Auth::Unknown => panic!("the session vanished"),
        }
    }
}

#[tokio::test]
async fn the_nightly_logout_ends_older_sessions_only() {
    let w = World::new();
    let before = w.session_at("alice", dublin(15, 1, 59, 0)).await;
    let after = w.session_at("alice", dublin(15, 2, 0, 30)).await;
    let oncall = w.session_at("olga", dublin(15, 1, 59, 0)).await;
    // at 01:59:30 everything is still fine
    assert_eq!(w.check(&before, dublin(15, 1, 59, 30)).await, None);
    // 02:00:01: created before the fire → ended, reason scheduled
    assert_eq!(
        w.check(&before, dublin(15, 2, 0, 1)).await,
        Some(EndReason::Scheduled)
    );
    assert_eq!(w.check(&after, dublin(15, 2, 0, 31)).await, None);
    assert_eq!(
        w.check(&oncall, dublin(15, 2, 0, 31)).await,
        None,
        "exempt group"
    );
    // the next night catches the 02:00:30 session too
    assert_eq!(
        w.check(&after, dublin(16, 2, 0, 1)).await,
        Some(EndReason::Scheduled)
    );
    assert_eq!(w.check(&oncall, dublin(16, 9, 0, 0)).await, None);
}

#[tokio::test]
async fn a_gateway_down_at_two_still_enforces_it_when_it_comes_back() {
    let w = World::new();
    let cookie = w.session_at("alice", dublin(20, 23, 0, 0)).await;
    // nothing is evaluated between 23:00 and 09:00 (the gateway was down);
    // the first request after start sees the 02:00 logout
    assert_eq!(
        w.check(&cookie, dublin(21, 9, 0, 0)).await,
        Some(EndReason::Scheduled)
    );
}

#[tokio::test]
async fn a_schedule_firing_every_second_signs_people_out_end_to_end() {
    let upstream = common::Upstream::start();
    let extra = "[[invalidation.schedule]]\ncron = \"* * * * * *\"\ntimezone = \"UTC\"\nexempt_groups = [\"admins\"]\n";
    let gw = common::Gateway::start(&common::config(upstream.addr, extra));
    let mut bob = common::Browser::new(&gw.url("/"));
    let mut alice = common::Browser::new(&gw.url("/"));
    assert_eq!(
        bob.login("bob", common::BOB_PASSWORD, "/").await.status,
        303
    );
    assert_eq!(
        alice
            .login("alice", common::ALICE_PASSWORD, "/")
            .await
            .status,
        303
    );
    // a second-scale schedule: the next fire is at most a second away
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = bob.page("/").await;
    assert!(
        r.location().ends_with("reason=scheduled"),
        "{}",
        r.location()
    );
    assert_eq!(alice.page("/").await.status, 200, "admins are exempt");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gw.log().contains("security: scheduled invalidation") {
        assert!(
            std::time::Instant::now() < deadline,
            "no fire logged:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
