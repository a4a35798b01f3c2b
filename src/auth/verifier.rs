//! Password verification off the async workers: argon2id runs in the
//! blocking pool behind a semaphore, so a login flood cannot starve proxied
//! traffic.

use std::sync::Arc;
use tokio::sync::Semaphore;

use super::password::{dummy_hash, hash_password, verify_password};

#[derive(Clone)]
pub struct PasswordVerifier {
    permits: Arc<Semaphore>,
}

impl PasswordVerifier {
    pub fn new(max_concurrent: usize) -> Self {
        PasswordVerifier {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// Verifies against `stored`, or against the dummy hash when there is
    /// no such user, so both cost the same.
    pub async fn verify(&self, stored: Option<String>, password: String) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| dummy_hash().to_string());
        let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
            .await
            .unwrap_or(false);
        ok && real
    }

    /// Hashes a new password, under the same concurrency cap.
    pub async fn hash(&self, password: String) -> Result<String, String> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| "the password hasher is shut down".to_string())?;
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| e.to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::hash_password;

    #[tokio::test]
    async fn verifies_in_the_blocking_pool() {
        let v = PasswordVerifier::new(2);
        let h = hash_password("pw-123456").unwrap();
        assert!(v.verify(Some(h.clone()), "pw-123456".into()).await);
        assert!(!v.verify(Some(h), "wrong".into()).await);
        assert!(!v.verify(None, "pw-123456".into()).await);
    }
}
