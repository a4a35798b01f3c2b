//! The session store: one trait, one conformance suite every
//! implementation must pass. Stores see only `SessionKey`s (hashes), never
//! session IDs.

pub mod memory;
pub mod redis;

use async_trait::async_trait;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{EndReason, Liveness, SessionKey, SessionPolicy, SessionRecord, Watermarks};
use crate::clock::Timestamp;

pub use memory::MemoryStore;
pub use redis::{RedisOptions, RedisStore};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// What to do when the user already has `max` live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    Refuse,
    EvictLeastRecent,
}

/// The device limit applied by `insert`, atomically with the insertion.
#[derive(Debug, Clone, Copy)]
pub struct DeviceLimit {
    /// 0 = unlimited.
    pub max: u32,
    pub on_full: OnFull,
    /// Decides which of the user's sessions still count.
    pub liveness: Liveness,
    /// A session of the same user to end (reason `evicted`) first, in the
    /// same step: the device the user picked on the "ask" page.
    pub end_first: Option<SessionKey>,
}

impl DeviceLimit {
    /// No limit: the login always goes in.
    pub fn none(liveness: Liveness) -> Self {
        DeviceLimit {
            max: 0,
            on_full: OnFull::Refuse,
            liveness,
            end_first: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Stored; these sessions were evicted to make room.
    Inserted { evicted: Vec<SessionKey> },
    /// Not stored: the user's live sessions, least recently used first.
    Full {
        live: Vec<(SessionKey, Arc<SessionRecord>)>,
    },
}

/// A user's sessions, least recently used first.
pub type UserSessions = Vec<(SessionKey, Arc<SessionRecord>)>;

/// The order every store lists sessions in: least recently used first,
/// ties by age, then by key (the Redis device-limit script agrees).
pub fn least_recent_first(list: &mut UserSessions) {
    list.sort_by_key(|(k, r)| (r.last_seen, r.created_at, *k));
}

/// A touch the store may make while it reads a record for a request
/// (`lookup`): write `last_seen = at` if the record is not ended, was last
/// seen `after` or longer before `at`, and is within `within`'s timeouts
/// (the shortest any user has), so that a session over its own timeouts
/// is never made to look alive.
#[derive(Debug, Clone, Copy)]
pub struct TouchIfDue {
    pub at: Timestamp,
    pub after: Duration,
    pub within: SessionPolicy,
}

/// What a request's session check reads, in one go.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub marks: Watermarks,
    /// The record as it was before any touch of this lookup.
    pub record: Option<Arc<SessionRecord>>,
    /// Whether the lookup also touched the record.
    pub touched: bool,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Counts the user's live sessions and inserts, as one atomic step:
    /// parallel logins never leave more than `limit.max`.
    async fn insert(
        &self,
        key: SessionKey,
        record: SessionRecord,
        limit: DeviceLimit,
    ) -> Result<Admission, StoreError>;
    async fn get(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError>;
    /// Like `get`, but never from a cache: asked before ending a session
    /// that a cached copy says is over.
    async fn get_fresh(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.get(key).await
    }
    /// Records activity; a session that is gone or ended stays so. `user`
    /// is the session's owner, as its record says.
    async fn touch(&self, key: &SessionKey, user: &str, at: Timestamp) -> Result<(), StoreError>;
    /// Ends a session on someone else's behalf, keeping a tombstone so its
    /// next request learns `reason`.
    async fn end(
        &self,
        key: &SessionKey,
        reason: EndReason,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError>;
    /// Forgets a session entirely.
    async fn remove(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError>;
    /// The user's sessions that have not been ended, least recently used first.
    async fn list_user(&self, user: &str) -> Result<UserSessions, StoreError>;
    /// True the first time a nonce is seen before `expires`; false after.
    async fn consume_nonce(
        &self,
        nonce: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Drops records dead under `policy`, the most generous one any user
    /// has; returns how many.
    async fn sweep(&self, now: Timestamp, policy: &SessionPolicy) -> Result<usize, StoreError>;
    /// Records held, for metrics and audit lines.
    async fn count(&self) -> Result<usize, StoreError>;
    /// The global watermarks (restart, revoke-all); `scheduled` is unset
    /// here: schedules are evaluated from configuration.
    async fn watermarks(&self) -> Result<Watermarks, StoreError>;
    /// The watermarks and a session's record, for a request; with
    /// `touch`, the record may be touched in the same step (a store whose
    /// every read is a round trip makes the three one). By default the
    /// two reads, and no touch: the caller touches when due.
    async fn lookup(
        &self,
        key: &SessionKey,
        _touch: Option<TouchIfDue>,
    ) -> Result<Lookup, StoreError> {
        let marks = self.watermarks().await?;
        let record = self.get(key).await?;
        Ok(Lookup {
            marks,
            record,
            touched: false,
        })
    }
    /// Signs out every session created before `before`, by moving a
    /// watermark (`Restart` or `Revoked`); never moves one back. Returns
    /// the sessions held at the time, for the audit line.
    async fn revoke_all(&self, reason: EndReason, before: Timestamp) -> Result<usize, StoreError>;
    /// Records held (for the admin API), most recently used first, at most
    /// `limit`.
    async fn list_all(&self, limit: usize) -> Result<UserSessions, StoreError>;
    /// Records a failed login against `subject` ("user:alice", "ip:…") and
    /// returns how many it has had within `window` up to `now`.
    async fn record_failure(
        &self,
        subject: &str,
        now: Timestamp,
        window: Duration,
    ) -> Result<u32, StoreError>;
    /// Woken (`notify_waiters`) when a session is ended, evicted or removed
    /// or the watermarks move: here, or for a shared store on another
    /// instance, as soon as this one hears of it. `None`: not announced.
    /// Lets an open WebSocket re-check its session at once instead of at
    /// its next periodic check.
    fn changes(&self) -> Option<&tokio::sync::Notify> {
        None
    }
    /// For a store with a per-instance cache: whether this instance hears
    /// the others' changes (and so may use it). `None`: no such cache.
    fn cache_following(&self) -> Option<bool> {
        None
    }
    /// For a store reached over the network: the outage it is in, if any,
    /// which logs its own start and end. `None`: an in-process store.
    fn outage(&self) -> Option<&crate::outage::Outage> {
        None
    }
    /// Whether the store answers (for `/ready`).
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Refuses logins for `subject` until `until`.
    async fn ban(&self, subject: &str, until: Timestamp) -> Result<(), StoreError>;
    /// The end of the ban on `subject`, if one is in force at `now`.
    async fn banned_until(
        &self,
        subject: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError>;
}

/// The behaviour every store must show, run against each implementation.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;
    use crate::session::SessionPolicy;

    const FP: [u8; 8] = [7; 8];
    const POLICY: SessionPolicy = SessionPolicy {
        idle_timeout: Duration::from_secs(100),
        absolute_timeout: Duration::from_secs(1000),
    };

    fn record(user: &str, at: u64) -> SessionRecord {
        SessionRecord {
            user: user.into(),
            created_at: Timestamp::from_millis(at),
            last_seen: Timestamp::from_millis(at),
            client_ip: Some("127.0.0.1".parse().unwrap()),
            user_agent: "test".into(),
            password_fingerprint: FP,
            groups: vec!["staff".to_string()].into(),
            ended: None,
        }
    }

    fn limit(max: u32, on_full: OnFull, now: u64) -> DeviceLimit {
        DeviceLimit {
            max,
            on_full,
            liveness: Liveness {
                now: Timestamp::from_millis(now),
                policy: POLICY,
                marks: Watermarks::default(),
                password_fingerprint: FP,
            },
            end_first: None,
        }
    }

    fn key(n: u8) -> SessionKey {
        SessionKey([n; 32])
    }

    fn unlimited() -> DeviceLimit {
        limit(0, OnFull::Refuse, 0)
    }

    /// How a store drops dead records.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub enum Cleanup {
        /// `sweep` drops them (and counts them).
        Sweep,
        /// The store expires them itself (Redis TTLs): `sweep` drops
        /// nothing; each store tests its expiry on its own.
        Expiry,
    }

    pub async fn run(make: impl Fn() -> Arc<dyn SessionStore>, cleanup: Cleanup) {
        basics(&*make()).await;
        tombstones_keep_every_reason(&*make()).await;
        refuse_at_the_limit(&*make()).await;
        evict_least_recent(&*make()).await;
        end_first_makes_room(&*make()).await;
        dead_sessions_do_not_count(&*make()).await;
        nonces_are_single_use(&*make()).await;
        if cleanup == Cleanup::Sweep {
            sweep_drops_only_dead_records(&*make()).await;
        }
        watermarks_only_move_forward(&*make()).await;
        listing_everything(&*make()).await;
        failures_and_bans(&*make()).await;
        endings_are_announced(&*make()).await;
        parallel_inserts_respect_the_limit(make()).await;
    }

    /// A store that announces changes does so for every way a session
    /// ends: an end, a removal, an eviction, a watermark moved.
    async fn endings_are_announced(store: &dyn SessionStore) {
        let Some(changes) = store.changes() else {
            return;
        };
        // A cached store hears announcements once it follows them.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.cache_following() == Some(false) {
            assert!(tokio::time::Instant::now() < deadline, "never followed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for (n, what) in (0u8..).zip(["end", "remove", "evict", "revoke_all"]) {
            store
                .insert(key(10 + n), record("alice", 100), unlimited())
                .await
                .unwrap();
            let notified = changes.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match what {
                "end" => {
                    store.end(&key(10), EndReason::Logout).await.unwrap();
                }
                "remove" => {
                    store.remove(&key(11)).await.unwrap();
                }
                "evict" => {
                    store
                        .insert(
                            key(20),
                            record("alice", 300),
                            limit(1, OnFull::EvictLeastRecent, 300),
                        )
                        .await
                        .unwrap();
                }
                _ => {
                    store
                        .revoke_all(EndReason::Revoked, Timestamp::from_millis(1000))
                        .await
                        .unwrap();
                }
            }
            tokio::time::timeout(Duration::from_secs(2), notified)
                .await
                .unwrap_or_else(|_| panic!("{what} was not announced"));
        }
    }

    async fn basics(store: &dyn SessionStore) {
        let (a, b) = (key(1), key(2));
        assert_eq!(store.get(&a).await.unwrap(), None);
        assert_eq!(store.count().await.unwrap(), 0);
        store
            .insert(a, record("alice", 100), unlimited())
            .await
            .unwrap();
        store
            .insert(b, record("bob", 200), unlimited())
            .await
            .unwrap();
        assert_eq!(store.count().await.unwrap(), 2);
        assert_eq!(*store.get(&a).await.unwrap().unwrap(), record("alice", 100));

        store
            .touch(&a, "alice", Timestamp::from_millis(500))
            .await
            .unwrap();
        let touched = store.get(&a).await.unwrap().unwrap();
        assert_eq!(touched.last_seen, Timestamp::from_millis(500));
        assert_eq!(touched.created_at, Timestamp::from_millis(100));

        assert_eq!(store.list_user("alice").await.unwrap().len(), 1);
        let removed = store.remove(&a).await.unwrap().unwrap();
        assert_eq!(removed.user, "alice");
        assert_eq!(store.get(&a).await.unwrap(), None);
        assert_eq!(store.remove(&a).await.unwrap(), None);
        assert!(store.list_user("alice").await.unwrap().is_empty());
        // touching a removed session must not bring it back
        store
            .touch(&a, "alice", Timestamp::from_millis(900))
            .await
            .unwrap();
        assert_eq!(store.get(&a).await.unwrap(), None);

        // ending keeps a tombstone that says why, and leaves the user's list
        let ended = store.end(&b, EndReason::Revoked).await.unwrap().unwrap();
        assert_eq!(ended.user, "bob");
        assert_eq!(
            store.get(&b).await.unwrap().unwrap().ended,
            Some(EndReason::Revoked)
        );
        assert!(store.list_user("bob").await.unwrap().is_empty());
        store
            .touch(&b, "bob", Timestamp::from_millis(999))
            .await
            .unwrap();
        assert_eq!(
            store.get(&b).await.unwrap().unwrap().last_seen,
            Timestamp::from_millis(200)
        );
    }

    /// Whatever ended a session (logout and password change included), a
    /// copy of its cookie replayed later is told that reason.
    async fn tombstones_keep_every_reason(store: &dyn SessionStore) {
        let keys: Vec<(SessionKey, EndReason)> = EndReason::ALL
            .iter()
            .zip(100u8..)
            .map(|(r, n)| (key(n), *r))
            .collect();
        for (k, reason) in &keys {
            store
                .insert(*k, record("alice", 10), unlimited())
                .await
                .unwrap();
            assert!(store.end(k, *reason).await.unwrap().is_some());
            // a parallel request ending it again neither counts nor
            // rewrites the reason
            assert_eq!(store.end(k, EndReason::Idle).await.unwrap(), None);
        }
        assert!(store.list_user("alice").await.unwrap().is_empty());
        // a sweep before the records would have idled out keeps them all
        store
            .sweep(Timestamp::from_millis(50), &POLICY)
            .await
            .unwrap();
        for (k, reason) in &keys {
            assert_eq!(store.get(k).await.unwrap().unwrap().ended, Some(*reason));
            assert_eq!(
                store.get_fresh(k).await.unwrap().unwrap().ended,
                Some(*reason)
            );
        }
    }

    async fn refuse_at_the_limit(store: &dyn SessionStore) {
        for (n, at) in [(1, 10), (2, 20)] {
            let got = store
                .insert(key(n), record("alice", at), limit(2, OnFull::Refuse, 30))
                .await
                .unwrap();
            assert_eq!(got, Admission::Inserted { evicted: vec![] });
        }
        match store
            .insert(key(3), record("alice", 30), limit(2, OnFull::Refuse, 30))
            .await
            .unwrap()
        {
            Admission::Full { live } => {
                let keys: Vec<_> = live.iter().map(|(k, _)| *k).collect();
                assert_eq!(keys, vec![key(1), key(2)], "least recently used first");
            }
            other => panic!("expected Full, got {other:?}"),
        }
        assert_eq!(store.get(&key(3)).await.unwrap(), None);
        // another user is not affected
        assert!(matches!(
            store
                .insert(key(4), record("bob", 30), limit(2, OnFull::Refuse, 30))
                .await
                .unwrap(),
            Admission::Inserted { .. }
        ));
        // after one logs out there is room again
        store.remove(&key(1)).await.unwrap();
        assert!(matches!(
            store
                .insert(key(3), record("alice", 40), limit(2, OnFull::Refuse, 40))
                .await
                .unwrap(),
            Admission::Inserted { .. }
        ));
    }

    async fn evict_least_recent(store: &dyn SessionStore) {
        store
            .insert(
                key(1),
                record("alice", 10),
                limit(2, OnFull::EvictLeastRecent, 10),
            )
            .await
            .unwrap();
        store
            .insert(
                key(2),
                record("alice", 20),
                limit(2, OnFull::EvictLeastRecent, 20),
            )
            .await
            .unwrap();
        // key 1 is used after key 2: key 2 becomes the least recently used
        store
            .touch(&key(1), "alice", Timestamp::from_millis(25))
            .await
            .unwrap();
        let got = store
            .insert(
                key(3),
                record("alice", 30),
                limit(2, OnFull::EvictLeastRecent, 30),
            )
            .await
            .unwrap();
        assert_eq!(
            got,
            Admission::Inserted {
                evicted: vec![key(2)]
            }
        );
        assert_eq!(
            store.get(&key(2)).await.unwrap().unwrap().ended,
            Some(EndReason::Evicted)
        );
        assert_eq!(store.get(&key(1)).await.unwrap().unwrap().ended, None);
        let live: Vec<_> = store
            .list_user("alice")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(live, vec![key(1), key(3)]);
    }

    async fn end_first_makes_room(store: &dyn SessionStore) {
        store
            .insert(key(1), record("alice", 10), limit(1, OnFull::Refuse, 10))
            .await
            .unwrap();
        store
            .insert(key(9), record("bob", 10), limit(1, OnFull::Refuse, 10))
            .await
            .unwrap();
        // naming another user's session frees nothing
        let mut l = limit(1, OnFull::Refuse, 20);
        store
            .insert(key(8), record("alice", 15), limit(2, OnFull::Refuse, 15))
            .await
            .unwrap();
        // with two others live, ending one is not enough: refused, nothing ended
        l.end_first = Some(key(1));
        assert!(matches!(
            store.insert(key(2), record("alice", 20), l).await.unwrap(),
            Admission::Full { .. }
        ));
        assert_eq!(
            store.get(&key(1)).await.unwrap().unwrap().ended,
            None,
            "a refused login ends nothing"
        );
        store.remove(&key(8)).await.unwrap();
        l.end_first = Some(key(9));
        assert!(matches!(
            store.insert(key(2), record("alice", 20), l).await.unwrap(),
            Admission::Full { .. }
        ));
        assert_eq!(store.get(&key(9)).await.unwrap().unwrap().ended, None);
        l.end_first = Some(key(1));
        let got = store.insert(key(2), record("alice", 20), l).await.unwrap();
        assert_eq!(
            got,
            Admission::Inserted {
                evicted: vec![key(1)]
            }
        );
        assert_eq!(
            store.get(&key(1)).await.unwrap().unwrap().ended,
            Some(EndReason::Evicted)
        );
    }

    async fn dead_sessions_do_not_count(store: &dyn SessionStore) {
        store
            .insert(key(1), record("alice", 0), limit(1, OnFull::Refuse, 0))
            .await
            .unwrap();
        // 150 s later the first session is idle (100 s): it does not count
        let got = store
            .insert(
                key(2),
                record("alice", 150_000),
                limit(1, OnFull::Refuse, 150_000),
            )
            .await
            .unwrap();
        assert_eq!(got, Admission::Inserted { evicted: vec![] });
        // a session from before a password change does not count either
        let mut l = limit(1, OnFull::Refuse, 150_001);
        l.liveness.password_fingerprint = [1; 8];
        assert!(matches!(
            store
                .insert(key(3), record("alice", 150_001), l)
                .await
                .unwrap(),
            Admission::Inserted { .. }
        ));
    }

    async fn nonces_are_single_use(store: &dyn SessionStore) {
        let (now, exp) = (Timestamp::from_millis(10), Timestamp::from_millis(100));
        assert!(store.consume_nonce("n1", exp, now).await.unwrap());
        assert!(!store.consume_nonce("n1", exp, now).await.unwrap());
        assert!(store.consume_nonce("n2", exp, now).await.unwrap());
        assert!(
            !store
                .consume_nonce("n3", exp, Timestamp::from_millis(100))
                .await
                .unwrap(),
            "expired"
        );
    }

    async fn sweep_drops_only_dead_records(store: &dyn SessionStore) {
        store
            .insert(key(1), record("alice", 0), unlimited())
            .await
            .unwrap();
        store
            .insert(key(2), record("alice", 60_000), unlimited())
            .await
            .unwrap();
        store.end(&key(2), EndReason::Evicted).await.unwrap();
        store
            .insert(key(3), record("bob", 140_000), unlimited())
            .await
            .unwrap();
        let n = store
            .sweep(Timestamp::from_millis(150_000), &POLICY)
            .await
            .unwrap();
        assert_eq!(n, 1, "only the session idle for 150 s is dead");
        assert_eq!(store.get(&key(1)).await.unwrap(), None);
        assert!(
            store.get(&key(2)).await.unwrap().is_some(),
            "tombstone kept while it can still be seen"
        );
        assert!(store.get(&key(3)).await.unwrap().is_some());
        let n = store
            .sweep(Timestamp::from_millis(2_000_000), &POLICY)
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(store.count().await.unwrap(), 0);
        assert!(store.list_user("bob").await.unwrap().is_empty());
    }

    async fn watermarks_only_move_forward(store: &dyn SessionStore) {
        assert_eq!(store.watermarks().await.unwrap(), Watermarks::default());
        store
            .insert(key(1), record("alice", 10), unlimited())
            .await
            .unwrap();
        store
            .insert(key(2), record("bob", 10), unlimited())
            .await
            .unwrap();
        assert_eq!(
            store
                .revoke_all(EndReason::Revoked, Timestamp::from_millis(50))
                .await
                .unwrap(),
            2
        );
        store
            .revoke_all(EndReason::Restart, Timestamp::from_millis(40))
            .await
            .unwrap();
        store
            .revoke_all(EndReason::Revoked, Timestamp::from_millis(30))
            .await
            .unwrap();
        let marks = store.watermarks().await.unwrap();
        assert_eq!(
            marks.revoked,
            Timestamp::from_millis(50),
            "never moves back"
        );
        assert_eq!(marks.restart, Timestamp::from_millis(40));
        assert_eq!(marks.scheduled, None);
        // revoked sessions no longer count against a device limit
        let mut l = limit(1, OnFull::Refuse, 60);
        l.liveness.marks = marks;
        assert!(matches!(
            store.insert(key(3), record("alice", 60), l).await.unwrap(),
            Admission::Inserted { .. }
        ));
    }

    async fn listing_everything(store: &dyn SessionStore) {
        store
            .insert(key(1), record("alice", 30), unlimited())
            .await
            .unwrap();
        store
            .insert(key(2), record("bob", 10), unlimited())
            .await
            .unwrap();
        store
            .insert(key(3), record("carol", 20), unlimited())
            .await
            .unwrap();
        let users: Vec<_> = store
            .list_all(10)
            .await
            .unwrap()
            .iter()
            .map(|(_, r)| r.user.clone())
            .collect();
        assert_eq!(users, vec!["alice", "carol", "bob"]);
        assert_eq!(store.list_all(2).await.unwrap().len(), 2);
    }

    async fn failures_and_bans(store: &dyn SessionStore) {
        let w = Duration::from_secs(10);
        let at = Timestamp::from_millis;
        let fail = |subject: &'static str, ms: u64| store.record_failure(subject, at(ms), w);
        assert_eq!(fail("user:alice", 1_000).await.unwrap(), 1);
        assert_eq!(fail("user:alice", 2_000).await.unwrap(), 2);
        assert_eq!(fail("user:bob", 2_000).await.unwrap(), 1);
        // the window slides: the failure at 1 s has left it at 11 s
        assert_eq!(fail("user:alice", 11_000).await.unwrap(), 2);
        assert_eq!(
            store.banned_until("user:alice", at(11_000)).await.unwrap(),
            None
        );
        store.ban("user:alice", at(20_000)).await.unwrap();
        assert_eq!(
            store.banned_until("user:alice", at(19_999)).await.unwrap(),
            Some(at(20_000))
        );
        assert_eq!(
            store.banned_until("user:alice", at(20_000)).await.unwrap(),
            None
        );
        assert_eq!(
            store.banned_until("user:bob", at(15_000)).await.unwrap(),
            None
        );
    }

    async fn parallel_inserts_respect_the_limit(store: Arc<dyn SessionStore>) {
        for on_full in [OnFull::Refuse, OnFull::EvictLeastRecent] {
            let user = format!("racer-{on_full:?}");
            let mut tasks = Vec::new();
            for n in 0..50u8 {
                let store = Arc::clone(&store);
                let user = user.clone();
                tasks.push(tokio::spawn(async move {
                    let mut k = [n; 32];
                    k[1] = on_full as u8 + 100;
                    store
                        .insert(SessionKey(k), record(&user, 10), limit(2, on_full, 10))
                        .await
                        .unwrap()
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(
                store.list_user(&user).await.unwrap().len(),
                2,
                "{on_full:?}"
            );
        }
    }
}
