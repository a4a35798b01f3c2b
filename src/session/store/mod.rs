//! The session store: one trait, one conformance suite every
//! implementation must pass. Stores see only `SessionKey`s (hashes), never
//! session IDs.

pub mod memory;

use async_trait::async_trait;
use std::fmt;
use std::sync::Arc;

use super::{SessionKey, SessionRecord};
use crate::clock::Timestamp;

pub use memory::MemoryStore;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert(&self, key: SessionKey, record: SessionRecord) -> Result<(), StoreError>;
    async fn get(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError>;
    /// Records activity; a session that is gone stays gone.
    async fn touch(&self, key: &SessionKey, at: Timestamp) -> Result<(), StoreError>;
    async fn remove(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError>;
    /// Live records held, for metrics and audit lines.
    async fn count(&self) -> Result<usize, StoreError>;
}

/// The behaviour every store must show, run against each implementation.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    fn record(user: &str, at: u64) -> SessionRecord {
        SessionRecord {
            user: user.into(),
            created_at: Timestamp::from_millis(at),
            last_seen: Timestamp::from_millis(at),
            client_ip: Some("127.0.0.1".parse().unwrap()),
            user_agent: "test".into(),
            password_fingerprint: [7; 8],
            groups: vec!["staff".into()],
        }
    }

    pub async fn run(store: &dyn SessionStore) {
        let a = SessionKey([1; 32]);
        let b = SessionKey([2; 32]);
        assert_eq!(store.get(&a).await.unwrap(), None);
        assert_eq!(store.count().await.unwrap(), 0);

        store.insert(a, record("alice", 100)).await.unwrap();
        store.insert(b, record("bob", 200)).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 2);
        let got = store.get(&a).await.unwrap().unwrap();
        assert_eq!(*got, record("alice", 100));

        store.touch(&a, Timestamp::from_millis(500)).await.unwrap();
        let touched = store.get(&a).await.unwrap().unwrap();
        assert_eq!(touched.last_seen, Timestamp::from_millis(500));
        assert_eq!(touched.created_at, Timestamp::from_millis(100));

        let removed = store.remove(&a).await.unwrap().unwrap();
        assert_eq!(removed.user, "alice");
        assert_eq!(store.get(&a).await.unwrap(), None);
        assert_eq!(store.remove(&a).await.unwrap(), None);

        // touching a removed session must not bring it back
        store.touch(&a, Timestamp::from_millis(900)).await.unwrap();
        assert_eq!(store.get(&a).await.unwrap(), None);
        assert_eq!(store.count().await.unwrap(), 1);
        assert_eq!(store.get(&b).await.unwrap().unwrap().user, "bob");
    }
}
