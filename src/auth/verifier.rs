//! Password verification off the async workers: each argon2id computation
//! runs on a thread of its own at the lowest CPU priority, at most
//! `max_concurrent` at once, so a login flood cannot starve proxied traffic:
//! the proxy threads win every contended core, and hashing uses what is
//! left. (Its own threads, not tokio's blocking pool: a lowered priority
//! cannot be undone, and must not stick to threads doing other work.)

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use tokio::sync::Semaphore;

use super::hash::{verify as check, Checked};
use super::password::hash_password;
use crate::bounded::Place;

/// Attempts waiting for a hashing slot, per slot, before new ones are
/// turned away: a flood queues a bounded amount of work and memory.
const QUEUE_PER_SLOT: usize = 16;

/// The queue holds at least this many, so a burst of real sign-ins (say, 50
/// people at nine o'clock) waits its turn on a small machine with one slot.
const MIN_QUEUE: usize = 64;

/// Too many verifications are already waiting; try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Users whose hash format was reported as unsupported, so each is
/// logged once; bounded, as the names come from a database.
const MAX_REPORTED: usize = 10_000;

#[derive(Clone)]
pub struct PasswordVerifier {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    reported: Arc<parking_lot::Mutex<std::collections::HashSet<String>>>,
}

impl PasswordVerifier {
    pub fn new(max_concurrent: usize) -> Self {
        let slots = max_concurrent.max(1);
        PasswordVerifier {
            permits: Arc::new(Semaphore::new(slots)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: (slots * QUEUE_PER_SLOT).max(MIN_QUEUE),
            reported: Default::default(),
        }
    }

    /// Verifies `password` against a user's `(name, stored hash)` in any
    /// format `hash` knows, or against `dummy` (a hash of the same source's
    /// typical format and cost) when there is no such user. A format that
    /// cannot be verified is logged once per user, by its name only.
    pub async fn verify_user(
        &self,
        user: Option<(String, String)>,
        dummy: String,
        password: String,
    ) -> Result<bool, Busy> {
        let queued = Place::take(&self.waiting, self.max_waiting).ok_or(Busy)?;
        let Ok(_permit) = self.permits.acquire().await else {
            return Ok(false);
        };
        drop(queued);
        let (name, hash, real) = match user {
            Some((name, hash)) => (name, hash, true),
            None => (String::new(), dummy, false),
        };
        let checked = off_thread(move || check(&hash, &password))
            .await
            .unwrap_or(Checked::Mismatch);
        if let (Checked::Unsupported(format), true) = (&checked, real) {
            let mut reported = self.reported.lock();
            if reported.len() < MAX_REPORTED && reported.insert(name.clone()) {
                tracing::warn!(
                    user = ?name,
                    format = %format,
                    "cannot verify this user's password hash format; the sign-in is refused"
                );
            }
        }
        Ok(checked.is_match() && real)
    }

    /// Hashes a new password, under the same concurrency cap.
    pub async fn hash(&self, password: String) -> Result<String, String> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| "the password hasher is shut down".to_string())?;
        off_thread(move || hash_password(&password))
            .await
            .ok_or_else(|| "the password hasher stopped".to_string())?
    }
}

/// Runs `work` on a new thread at idle priority; `None` if it panicked.
/// A thread costs microseconds against argon2's milliseconds.
async fn off_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("gatehouse-hash".into())
        .spawn(move || {
            yield_cpu_to_proxying();
            let _ = tx.send(work());
        });
    spawned.ok()?;
    rx.await.ok()
}

/// Lowers the calling thread to the lowest nice value (19). The idle
/// scheduling class would yield even more, but could starve logins
/// entirely while proxying saturates every core; nice 19 still guarantees
/// them a sliver. (On Linux a thread has its own nice value; elsewhere this
/// does nothing.)
fn yield_cpu_to_proxying() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority takes plain integers and touches no memory of
    // ours; PRIO_PROCESS with who = 0 means the calling thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::{dummy_hash, hash_password};

    /// The users file's way in: `None` is verified against its dummy.
    async fn verify(
        v: &PasswordVerifier,
        stored: Option<String>,
        password: &str,
    ) -> Result<bool, Busy> {
        let user = stored.map(|h| ("alice".to_string(), h));
        v.verify_user(user, dummy_hash().to_string(), password.into())
            .await
    }

    #[tokio::test]
    async fn verifies_in_the_blocking_pool() {
        let v = PasswordVerifier::new(2);
        let h = hash_password("pw-123456").unwrap();
        assert_eq!(verify(&v, Some(h.clone()), "pw-123456").await, Ok(true));
        assert_eq!(verify(&v, Some(h), "wrong").await, Ok(false));
        assert_eq!(verify(&v, None, "pw-123456").await, Ok(false));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_turns_attempts_away_at_once() {
        let v = PasswordVerifier::new(1);
        let h = hash_password("pw-123456").unwrap();
        let mut attempts = Vec::new();
        for _ in 0..100 {
            let (v, h) = (v.clone(), h.clone());
            attempts.push(tokio::spawn(
                async move { verify(&v, Some(h), "wrong").await },
            ));
        }
        let mut busy = 0;
        for a in attempts {
            if a.await.unwrap() == Err(Busy) {
                busy += 1;
            }
        }
        // One slot and 64 waiting: of 100 at once, 35 are turned away. Fewer
        // if a verification ended while the attempts were still arriving,
        // never more: the queue really is 64 long.
        assert!(
            (20..=100 - 1 - MIN_QUEUE).contains(&busy),
            "{busy} turned away"
        );
        assert_eq!(
            verify(&v, None, "x").await,
            Ok(false),
            "usable again once drained"
        );
    }
}
