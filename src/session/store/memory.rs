//! The in-process store: sharded maps so concurrent requests rarely meet on
//! one lock. Records are shared as `Arc`s: a lookup copies a pointer.
//!
//! Lock order: a user's index shard, then session shards, never the
//! reverse; operations that start from a session release its shard before
//! they touch the user index.

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{
    least_recent_first, Admission, DeviceLimit, OnFull, SessionStore, StoreError, UserSessions,
};
use crate::clock::Timestamp;
use crate::session::{EndReason, SessionKey, SessionPolicy, SessionRecord, Watermarks};

const SHARDS: usize = 64;

type Shard = RwLock<HashMap<SessionKey, Arc<SessionRecord>>>;
type UserShard = Mutex<HashMap<String, Vec<SessionKey>>>;

pub struct MemoryStore {
    sessions: Box<[Shard]>,
    users: Box<[UserShard]>,
    user_hasher: std::collections::hash_map::RandomState,
    nonces: Mutex<HashMap<String, Timestamp>>,
    restart_mark: AtomicU64,
    revoked_mark: AtomicU64,
    /// Recent failed logins per subject, and bans in force.
    failures: Mutex<HashMap<String, VecDeque<Timestamp>>>,
    bans: Mutex<HashMap<String, Timestamp>>,
    /// Woken when a session ends or a watermark moves (`changes`).
    changed: tokio::sync::Notify,
}

/// Failures older than this are forgotten by the sweep (the longest
/// `failure_window` allowed).
const FAILURE_MEMORY: Duration = Duration::from_secs(3600);
/// A subject's failures kept at most: enough for any sensible limit.
const MAX_FAILURES_KEPT: usize = 1024;

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            sessions: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            users: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            user_hasher: Default::default(),
            nonces: Mutex::new(HashMap::new()),
            restart_mark: AtomicU64::new(0),
            revoked_mark: AtomicU64::new(0),
            failures: Mutex::new(HashMap::new()),
            bans: Mutex::new(HashMap::new()),
            changed: tokio::sync::Notify::new(),
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, key: &SessionKey) -> &Shard {
        // Keys are SHA-256 output: any byte is uniformly spread.
        &self.sessions[usize::from(key.0[0]) % SHARDS]
    }

    fn user_shard(&self, user: &str) -> &UserShard {
        let h = self.user_hasher.hash_one(user);
        &self.users[usize::try_from(h % SHARDS as u64).unwrap_or(0)]
    }

    fn unindex(&self, user: &str, key: &SessionKey) {
        let mut index = self.user_shard(user).lock();
        if let Some(keys) = index.get_mut(user) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                index.remove(user);
            }
        }
    }

    /// Marks a session ended; `None` if absent or already ended.
    fn tombstone(&self, key: &SessionKey, reason: EndReason) -> Option<Arc<SessionRecord>> {
        let mut shard = self.shard(key).write();
        let rec = shard.get_mut(key)?;
        if rec.ended.is_some() {
            return None;
        }
        let before = Arc::clone(rec);
        Arc::make_mut(rec).ended = Some(reason);
        Some(before)
    }
}

/// The file a planned restart keeps sessions in.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    version: u32,
    restart_mark: u64,
    revoked_mark: u64,
    sessions: Vec<(String, SessionRecord)>,
}

impl MemoryStore {
    /// Writes every record to `path` (mode 0600, atomically); returns how many.
    pub fn save_snapshot(&self, path: &Path) -> Result<usize, String> {
        let mut sessions = Vec::new();
        for shard in self.sessions.iter() {
            sessions.extend(
                shard
                    .read()
                    .iter()
                    .map(|(k, r)| (k.to_hex(), (**r).clone())),
            );
        }
        let n = sessions.len();
        let file = SnapshotFile {
            version: 1,
            restart_mark: self.restart_mark.load(Ordering::Acquire),
            revoked_mark: self.revoked_mark.load(Ordering::Acquire),
            sessions,
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        crate::atomic_file::replace(path, &bytes)?;
        Ok(n)
    }

    /// Loads a snapshot written by `save_snapshot`; returns how many
    /// sessions it held. The caller decides what a bad file means.
    pub fn load_snapshot(&self, path: &Path) -> Result<usize, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: SnapshotFile = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a session snapshot: {e}", path.display()))?;
        if file.version != 1 {
            return Err(format!(
                "{}: unknown snapshot version {}",
                path.display(),
                file.version
            ));
        }
        self.restart_mark
            .fetch_max(file.restart_mark, Ordering::AcqRel);
        self.revoked_mark
            .fetch_max(file.revoked_mark, Ordering::AcqRel);
        let n = file.sessions.len();
        for (hex, record) in file.sessions {
            let Some(key) = SessionKey::from_hex(&hex) else {
                continue;
            };
            if record.ended.is_none() {
                let mut index = self.user_shard(&record.user).lock();
                index.entry(record.user.clone()).or_default().push(key);
            }
            self.shard(&key).write().insert(key, Arc::new(record));
        }
        Ok(n)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert(
        &self,
        key: SessionKey,
        record: SessionRecord,
        limit: DeviceLimit,
    ) -> Result<Admission, StoreError> {
        let user = record.user.clone();
        let mut index = self.user_shard(&user).lock();
        let keys = index.entry(user.clone()).or_default();

        // The user's sessions, dropping index entries of dead or gone ones.
        let mut live: UserSessions = Vec::with_capacity(keys.len());
        keys.retain(|k| match self.shard(k).read().get(k) {
            Some(rec) if limit.liveness.is_live(rec) => {
                live.push((*k, Arc::clone(rec)));
                true
            }
            Some(rec) => rec.ended.is_none(),
            None => false,
        });
        least_recent_first(&mut live);

        // The device picked on the "ask" page leaves only if this login
        // then goes ahead; a refused login ends nothing.
        let chosen = limit.end_first.filter(|v| keys.contains(v));
        let mut doomed: Vec<SessionKey> = chosen.into_iter().collect();
        let counted = live.iter().filter(|(k, _)| Some(*k) != chosen).count();
        let max = usize::try_from(limit.max).unwrap_or(usize::MAX);
        if limit.max > 0 && counted >= max {
            match limit.on_full {
                OnFull::Refuse => return Ok(Admission::Full { live }),
                OnFull::EvictLeastRecent => {
                    let excess = counted + 1 - max;
                    let oldest = live.iter().map(|(k, _)| *k).filter(|k| Some(*k) != chosen);
                    doomed.extend(oldest.take(excess));
                }
            }
        }
        let mut evicted = Vec::with_capacity(doomed.len());
        for victim in doomed {
            keys.retain(|k| *k != victim);
            if self.tombstone(&victim, EndReason::Evicted).is_some() {
                evicted.push(victim);
            }
        }
        keys.push(key);
        self.shard(&key).write().insert(key, Arc::new(record));
        if !evicted.is_empty() {
            self.changed.notify_waiters();
        }
        Ok(Admission::Inserted { evicted })
    }

    async fn get(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        Ok(self.shard(key).read().get(key).cloned())
    }

    async fn touch(&self, key: &SessionKey, _user: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut shard = self.shard(key).write();
        if let Some(rec) = shard.get_mut(key) {
            if rec.last_seen < at && rec.ended.is_none() {
                Arc::make_mut(rec).last_seen = at;
            }
        }
        Ok(())
    }

    async fn end(
        &self,
        key: &SessionKey,
        reason: EndReason,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let ended = self.tombstone(key, reason);
        if let Some(rec) = &ended {
            self.unindex(&rec.user, key);
            self.changed.notify_waiters();
        }
        Ok(ended)
    }

    async fn remove(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let removed = self.shard(key).write().remove(key);
        if let Some(rec) = &removed {
            self.unindex(&rec.user, key);
            self.changed.notify_waiters();
        }
        Ok(removed)
    }

    async fn list_user(&self, user: &str) -> Result<UserSessions, StoreError> {
        let keys = self
            .user_shard(user)
            .lock()
            .get(user)
            .cloned()
            .unwrap_or_default();
        let mut out: UserSessions = keys
            .iter()
            .filter_map(|k| {
                let rec = self.shard(k).read().get(k).cloned()?;
                rec.ended.is_none().then_some((*k, rec))
            })
            .collect();
        least_recent_first(&mut out);
        Ok(out)
    }

    async fn consume_nonce(
        &self,
        nonce: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if now >= expires {
            return Ok(false);
        }
        let mut nonces = self.nonces.lock();
        nonces.retain(|_, exp| *exp > now);
        Ok(nonces.insert(nonce.to_string(), expires).is_none())
    }

    async fn sweep(&self, now: Timestamp, policy: &SessionPolicy) -> Result<usize, StoreError> {
        let dead = |r: &SessionRecord| policy.timed_out(r, now).is_some();
        let mut gone = Vec::new();
        for shard in self.sessions.iter() {
            let mut shard = shard.write();
            shard.retain(|k, r| {
                let keep = !dead(r);
                if !keep {
                    gone.push((*k, r.user.clone()));
                }
                keep
            });
        }
        for (key, user) in &gone {
            self.unindex(user, key);
        }
        self.nonces.lock().retain(|_, exp| *exp > now);
        self.failures
            .lock()
            .retain(|_, times| times.back().is_some_and(|t| now.since(*t) < FAILURE_MEMORY));
        self.bans.lock().retain(|_, until| *until > now);
        Ok(gone.len())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.sessions.iter().map(|s| s.read().len()).sum())
    }

    async fn watermarks(&self) -> Result<Watermarks, StoreError> {
        Ok(Watermarks {
            restart: Timestamp::from_millis(self.restart_mark.load(Ordering::Acquire)),
            revoked: Timestamp::from_millis(self.revoked_mark.load(Ordering::Acquire)),
            scheduled: None,
        })
    }

    async fn revoke_all(&self, reason: EndReason, before: Timestamp) -> Result<usize, StoreError> {
        let mark = match reason {
            EndReason::Restart => &self.restart_mark,
            _ => &self.revoked_mark,
        };
        mark.fetch_max(before.as_millis(), Ordering::AcqRel);
        self.changed.notify_waiters();
        self.count().await
    }

    fn changes(&self) -> Option<&tokio::sync::Notify> {
        Some(&self.changed)
    }

    async fn record_failure(
        &self,
        subject: &str,
        now: Timestamp,
        window: Duration,
    ) -> Result<u32, StoreError> {
        let mut failures = self.failures.lock();
        let times = failures.entry(subject.to_string()).or_default();
        while times.front().is_some_and(|t| now.since(*t) >= window) {
            times.pop_front();
        }
        if times.len() >= MAX_FAILURES_KEPT {
            times.pop_front();
        }
        times.push_back(now);
        Ok(u32::try_from(times.len()).unwrap_or(u32::MAX))
    }

    async fn ban(&self, subject: &str, until: Timestamp) -> Result<(), StoreError> {
        let mut bans = self.bans.lock();
        let entry = bans.entry(subject.to_string()).or_insert(until);
        *entry = (*entry).max(until);
        Ok(())
    }

    async fn banned_until(
        &self,
        subject: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .bans
            .lock()
            .get(subject)
            .copied()
            .filter(|until| *until > now))
    }

    async fn list_all(&self, limit: usize) -> Result<UserSessions, StoreError> {
        let mut all: UserSessions = Vec::new();
        for shard in self.sessions.iter() {
            all.extend(shard.read().iter().map(|(k, r)| (*k, Arc::clone(r))));
        }
        // the most recently used first, so a cut-off drops the stalest
        least_recent_first(&mut all);
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn snapshots_round_trip_and_refuse_garbage() {
        use crate::session::store::DeviceLimit;
        use crate::session::{Liveness, SessionPolicy};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("sessions.json");
        let store = MemoryStore::new();
        let record = SessionRecord {
            user: "alice".into(),
            created_at: Timestamp::from_millis(10),
            last_seen: Timestamp::from_millis(20),
            client_ip: Some("10.1.2.3".parse().unwrap()),
            user_agent: "ua".into(),
            password_fingerprint: [1; 8],
            groups: vec!["staff".to_string()].into(),
            ended: None,
        };
        let limit = DeviceLimit::none(Liveness {
            now: Timestamp::from_millis(20),
            policy: SessionPolicy {
                idle_timeout: Duration::from_secs(60),
                absolute_timeout: Duration::from_secs(60),
            },
            marks: Watermarks::default(),
            password_fingerprint: [1; 8],
        });
        store
            .insert(SessionKey([5; 32]), record.clone(), limit)
            .await
            .unwrap();
        store
            .revoke_all(EndReason::Revoked, Timestamp::from_millis(5))
            .await
            .unwrap();
        assert_eq!(store.save_snapshot(&path).unwrap(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let back = MemoryStore::new();
        assert_eq!(back.load_snapshot(&path).unwrap(), 1);
        assert_eq!(
            *back.get(&SessionKey([5; 32])).await.unwrap().unwrap(),
            record
        );
        assert_eq!(back.list_user("alice").await.unwrap().len(), 1);
        assert_eq!(
            back.watermarks().await.unwrap().revoked,
            Timestamp::from_millis(5)
        );

        std::fs::write(&path, b"{ not json").unwrap();
        assert!(MemoryStore::new()
            .load_snapshot(&path)
            .unwrap_err()
            .contains("not a session snapshot"));
        assert!(MemoryStore::new()
            .load_snapshot(&dir.path().join("missing"))
            .is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_conformance_suite() {
        crate::session::store::conformance::run(
            || Arc::new(MemoryStore::new()),
            crate::session::store::conformance::Cleanup::Sweep,
        )
        .await;
    }
}
