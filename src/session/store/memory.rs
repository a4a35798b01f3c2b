//! The in-process store: sharded maps so concurrent requests rarely meet on
//! one lock. Records are shared as `Arc`s: a lookup copies a pointer.
//!
//! Lock order: a user's index shard, then session shards, never the
//! reverse; operations that start from a session release its shard before
//! they touch the user index.

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use super::{Admission, DeviceLimit, OnFull, SessionStore, StoreError, UserSessions};
use crate::clock::Timestamp;
use crate::session::{EndReason, SessionKey, SessionRecord};

const SHARDS: usize = 64;

type Shard = RwLock<HashMap<SessionKey, Arc<SessionRecord>>>;
type UserShard = Mutex<HashMap<String, Vec<SessionKey>>>;

pub struct MemoryStore {
    sessions: Box<[Shard]>,
    users: Box<[UserShard]>,
    user_hasher: std::collections::hash_map::RandomState,
    nonces: Mutex<HashMap<String, Timestamp>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            sessions: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            users: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            user_hasher: Default::default(),
            nonces: Mutex::new(HashMap::new()),
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
        let mut evicted = Vec::new();

        if let Some(victim) = limit.end_first.filter(|v| keys.contains(v)) {
            if self.tombstone(&victim, EndReason::Evicted).is_some() {
                evicted.push(victim);
            }
            keys.retain(|k| *k != victim);
        }

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
        live.sort_by_key(|(_, r)| r.last_seen);

        if limit.max > 0 {
            let max = usize::try_from(limit.max).unwrap_or(usize::MAX);
            if live.len() >= max {
                match limit.on_full {
                    OnFull::Refuse => return Ok(Admission::Full { live }),
                    OnFull::EvictLeastRecent => {
                        let excess = live.len() + 1 - max;
                        for (victim, _) in live.iter().take(excess) {
                            self.tombstone(victim, EndReason::Evicted);
                            keys.retain(|k| k != victim);
                            evicted.push(*victim);
                        }
                    }
                }
            }
        }
        keys.push(key);
        self.shard(&key).write().insert(key, Arc::new(record));
        Ok(Admission::Inserted { evicted })
    }

    async fn get(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        Ok(self.shard(key).read().get(key).cloned())
    }

    async fn touch(&self, key: &SessionKey, at: Timestamp) -> Result<(), StoreError> {
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
        }
        Ok(ended)
    }

    async fn remove(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let removed = self.shard(key).write().remove(key);
        if let Some(rec) = &removed {
            self.unindex(&rec.user, key);
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
        out.sort_by_key(|(_, r)| r.last_seen);
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

    async fn sweep(
        &self,
        now: Timestamp,
        max_idle: Duration,
        max_age: Duration,
    ) -> Result<usize, StoreError> {
        let dead = |r: &SessionRecord| {
            now.since(r.last_seen) >= max_idle || now.since(r.created_at) >= max_age
        };
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
        Ok(gone.len())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.sessions.iter().map(|s| s.read().len()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_conformance_suite() {
        crate::session::store::conformance::run(|| Arc::new(MemoryStore::new())).await;
    }
}
