//! Password verification off the async workers: argon2id runs in the
//! blocking pool behind a semaphore, at the lowest CPU priority, so a login
//! flood cannot starve proxied traffic: the proxy threads win every
//! contended core, and hashing uses what is left.

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
        let ok = tokio::task::spawn_blocking(move || {
            yield_cpu_to_proxying();
            verify_password(&hash, &password)
        })
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
        tokio::task::spawn_blocking(move || {
            yield_cpu_to_proxying();
            hash_password(&password)
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// Moves the calling thread to the idle scheduling class, once per thread:
/// it runs only when no proxy thread wants the core. (On Linux a thread has
/// its own policy; elsewhere this does nothing.) If the idle class is
/// refused, the lowest nice value is the fallback.
fn yield_cpu_to_proxying() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if LOWERED.with(|l| l.replace(true)) {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: both calls take plain integers or a pointer to a local that
    // outlives the call; pid/who = 0 means the calling thread on Linux.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        }
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
