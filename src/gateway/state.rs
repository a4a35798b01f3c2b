//! What every request shares: the current settings and users (swapped whole
//! on reload; a request keeps the snapshot it started with), the store, the
//! clock, the password verifier and the secret keys.

use arc_swap::ArcSwap;
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::csrf::CsrfKey;
use crate::auth::{PasswordVerifier, UserDb};
use crate::clock::Clock;
use crate::config::Settings;
use crate::session::store::SessionStore;
use crate::session::SessionPolicy;

/// Settings and users that belong together.
pub struct Snapshot {
    pub settings: Settings,
    pub users: UserDb,
}

impl Snapshot {
    pub fn policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle_timeout: self.settings.session.idle_timeout,
            absolute_timeout: self.settings.session.absolute_timeout,
        }
    }
}

pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    pub store: Arc<dyn SessionStore>,
    pub clock: Arc<dyn Clock>,
    pub verifier: PasswordVerifier,
    pub csrf: CsrfKey,
    pub rng: SystemRandom,
    next_upstream: AtomicUsize,
}

impl Shared {
    /// `secret` keys the HMACs; `None` draws a random one (forms rendered
    /// before a restart then ask the user to try again).
    pub fn new(
        snapshot: Snapshot,
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        secret: Option<Vec<u8>>,
    ) -> Result<Self, String> {
        let rng = SystemRandom::new();
        let secret = match secret {
            Some(s) => s,
            None => {
                let mut s = vec![0u8; 32];
                rng.fill(&mut s)
                    .map_err(|_| "no randomness available for the secret".to_string())?;
                s
            }
        };
        Ok(Shared {
            verifier: PasswordVerifier::new(snapshot.settings.login.max_concurrent_hashes),
            snapshot: ArcSwap::from_pointee(snapshot),
            store,
            clock,
            csrf: CsrfKey::new(&secret),
            rng,
            next_upstream: AtomicUsize::new(0),
        })
    }

    /// Round-robin position for routes with several upstreams.
    pub fn next_upstream(&self) -> usize {
        self.next_upstream.fetch_add(1, Ordering::Relaxed)
    }
}
