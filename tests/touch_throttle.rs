//! The touch throttle, proven with a store that counts its writes and a
//! clock the test moves: a busy session costs a handful of writes, not one
//! per request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gatehouse::auth::{password, User, UserDb};
use gatehouse::clock::{Clock, ManualClock, Timestamp};
use gatehouse::gateway::authenticate::{authenticate, Auth};
use gatehouse::gateway::state::{Shared, Snapshot};
use gatehouse::session::store::{
    Admission, DeviceLimit, MemoryStore, SessionStore, StoreError, UserSessions,
};
use gatehouse::session::{
    EndReason, Liveness, SessionId, SessionKey, SessionPolicy, SessionRecord, Watermarks,
};

#[derive(Default)]
struct CountingStore {
    inner: MemoryStore,
    touches: AtomicUsize,
}

#[async_trait]
impl SessionStore for CountingStore {
    async fn insert(
        &self,
        key: SessionKey,
        record: SessionRecord,
        limit: DeviceLimit,
    ) -> Result<Admission, StoreError> {
        self.inner.insert(key, record, limit).await
    }
    async fn get(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.inner.get(key).await
    }
    async fn touch(&self, key: &SessionKey, user: &str, at: Timestamp) -> Result<(), StoreError> {
        self.touches.fetch_add(1, Ordering::SeqCst);
        self.inner.touch(key, user, at).await
    }
    async fn end(
        &self,
        key: &SessionKey,
        reason: EndReason,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.inner.end(key, reason).await
    }
    async fn remove(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.inner.remove(key).await
    }
    async fn list_user(&self, user: &str) -> Result<UserSessions, StoreError> {
        self.inner.list_user(user).await
    }
    async fn consume_nonce(
        &self,
        nonce: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner.consume_nonce(nonce, expires, now).await
    }
    async fn sweep(&self, now: Timestamp, policy: &SessionPolicy) -> Result<usize, StoreError> {
        self.inner.sweep(now, policy).await
    }
    async fn count(&self) -> Result<usize, StoreError> {
        self.inner.count().await
    }
    async fn watermarks(&self) -> Result<Watermarks, StoreError> {
        self.inner.watermarks().await
    }
    async fn revoke_all(&self, reason: EndReason, before: Timestamp) -> Result<usize, StoreError> {
        self.inner.revoke_all(reason, before).await
    }
    async fn list_all(&self, limit: usize) -> Result<UserSessions, StoreError> {
        self.inner.list_all(limit).await
    }
    async fn record_failure(
        &self,
        subject: &str,
        now: Timestamp,
        window: Duration,
    ) -> Result<u32, StoreError> {
        self.inner.record_failure(subject, now, window).await
    }
    async fn ban(&self, subject: &str, until: Timestamp) -> Result<(), StoreError> {
        self.inner.ban(subject, until).await
    }
    async fn banned_until(
        &self,
        subject: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.inner.banned_until(subject, now).await
    }
}

/// 1,000 authenticated requests, `step` apart; returns the store writes.
async fn writes_for_1000_requests(idle: Duration, step: Duration) -> usize {
    let hash = password::hash_password("throttle-test-pw").unwrap();
    let user = User {
        username: "alice".into(),
        password_fingerprint: password::fingerprint(&hash),
        password_hash: hash,
        name: None,
        email: None,
        groups: Vec::new().into(),
        max_devices: None,
        disabled: false,
        identity_values: Default::default(),
    };
    let mut settings = gatehouse::demo::demo_settings(
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.1:2".parse().unwrap(),
    );
    settings.session.idle_timeout = idle;
    let fingerprint = user.password_fingerprint;
    let snapshot = Snapshot::new(settings, UserDb::from_users([user]));
    let store = Arc::new(CountingStore::default());
    let clock = Arc::new(ManualClock::at(Timestamp::from_millis(1_000_000)));
    let shared = Shared::new(snapshot, store.clone(), clock.clone(), Some(vec![1; 32])).unwrap();
    let snap = shared.snapshot.load_full();

    let id = SessionId::generate(&ring::rand::SystemRandom::new()).unwrap();
    let now = clock.now();
    let record = SessionRecord {
        user: "alice".into(),
        created_at: now,
        last_seen: now,
        client_ip: None,
        user_agent: String::new(),
        password_fingerprint: fingerprint,
        groups: Vec::new().into(),
        ended: None,
    };
    let limit = DeviceLimit::none(Liveness {
        now,
        policy: SessionPolicy {
            idle_timeout: idle,
            absolute_timeout: Duration::from_secs(86_400),
        },
        marks: Watermarks::default(),
        password_fingerprint: fingerprint,
    });
    store.insert(id.key(), record, limit).await.unwrap();
    let cookie = format!("gatehouse={}", id.as_cookie_value());
    for n in 0..1000 {
        clock.advance(step);
        let auth = authenticate(&shared, &snap, Some(cookie.as_bytes()), true)
            .await
            .unwrap();
        assert!(matches!(auth, Auth::Valid(_)), "request {n} was refused");
    }
    store.touches.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_thousand_requests_cost_a_few_writes() {
    // 30 min idle: last_seen is written at most once a minute; 1,000
    // requests over 100 s cost one write.
    let writes =
        writes_for_1000_requests(Duration::from_secs(1800), Duration::from_millis(100)).await;
    assert_eq!(writes, 1);
}

#[tokio::test]
async fn short_idle_timeouts_touch_every_tenth_of_the_timeout() {
    // 2 s idle: a write at most every 200 ms; 1,000 requests 10 ms apart
    // (10 s) cost 50 writes, and the session stays alive throughout.
    let writes = writes_for_1000_requests(Duration::from_secs(2), Duration::from_millis(10)).await;
    assert_eq!(writes, 50);
}
