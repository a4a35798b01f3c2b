//! The in-process store: a sharded map so concurrent requests rarely meet on
//! one lock. Records are shared as `Arc`s: a lookup copies a pointer.

use async_trait::async_trait;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

use super::{SessionStore, StoreError};
use crate::clock::Timestamp;
use crate::session::{SessionKey, SessionRecord};

const SHARDS: usize = 64;

type Shard = RwLock<HashMap<SessionKey, Arc<SessionRecord>>>;

pub struct MemoryStore {
    shards: Box<[Shard]>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, key: &SessionKey) -> &Shard {
        // Keys are SHA-256 output: any byte is uniformly spread.
        &self.shards[usize::from(key.0[0]) % SHARDS]
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert(&self, key: SessionKey, record: SessionRecord) -> Result<(), StoreError> {
        self.shard(&key).write().insert(key, Arc::new(record));
        Ok(())
    }

    async fn get(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        Ok(self.shard(key).read().get(key).cloned())
    }

    async fn touch(&self, key: &SessionKey, at: Timestamp) -> Result<(), StoreError> {
        let mut shard = self.shard(key).write();
        if let Some(rec) = shard.get_mut(key) {
            if rec.last_seen < at {
                Arc::make_mut(rec).last_seen = at;
            }
        }
        Ok(())
    }

    async fn remove(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        Ok(self.shard(key).write().remove(key))
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.shards.iter().map(|s| s.read().len()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        crate::session::store::conformance::run(&MemoryStore::new()).await;
    }
}
