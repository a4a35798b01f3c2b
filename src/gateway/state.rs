//! What every request shares: the current settings and users (swapped whole
//! on reload; a request keeps the snapshot it started with), the store, the
//! clock, the password verifier and the secret keys.

use arc_swap::ArcSwap;
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::signing::Signer;
use crate::auth::sql::SqlUsers;
use crate::auth::{PasswordVerifier, User, UserDb, UserSource, Users};
use crate::clock::{Clock, Timestamp};
use crate::config::Settings;
use crate::session::policy::limits_for;
use crate::session::schedule::scheduled_watermark;
use crate::session::store::SessionStore;
use crate::session::Watermarks;
use crate::session::{SessionPolicy, UserLimits};
use std::collections::HashMap;

/// Settings and users that belong together, with each user's limits
/// worked out once rather than on every request.
pub struct Snapshot {
    pub settings: Settings,
    pub users: UserDb,
    limits: HashMap<String, UserLimits>,
    /// Those of a user in no group and without overrides.
    general: UserLimits,
    /// The `[identity]` header names (user, email, name, groups) and the
    /// assertion's, as Pingora takes them: made once per snapshot, not
    /// copied per request.
    pub identity_names: [bytes::Bytes; 4],
    pub assertion_name: Option<bytes::Bytes>,
    /// The shortest idle and absolute timeouts any user has: a store may
    /// touch a record while reading it if a touch is due by these
    /// (`SessionStore::lookup`), never later than the user's own.
    pub shortest: crate::session::SessionPolicy,
    /// How to connect to each route's upstreams.
    pub peers: super::upstream_peer::RoutePeers,
    /// The `<script>` tag `ui.inject_session_script` puts into pages.
    pub session_script_tag: bytes::Bytes,
}

impl Snapshot {
    pub fn new(settings: Settings, users: UserDb) -> Self {
        let limits = users
            .iter()
            .map(|u| {
                let l = limits_for(&settings.session, &u.groups, u.max_devices);
                (u.username.clone(), l)
            })
            .collect();
        let general = limits_for(&settings.session, &[], None);
        let id = &settings.identity;
        let identity_names = [
            &id.user_header,
            &id.email_header,
            &id.name_header,
            &id.groups_header,
        ]
        .map(|name| bytes::Bytes::from(name.clone()));
        let assertion_name = id
            .assertion
            .as_ref()
            .map(|a| bytes::Bytes::from(a.header.clone()));
        // Group settings only ever shorten the timeouts.
        let s = &settings.session;
        let shortest = crate::session::SessionPolicy {
            idle_timeout: s
                .groups
                .values()
                .filter_map(|g| g.idle_timeout)
                .fold(s.idle_timeout, Ord::min),
            absolute_timeout: s
                .groups
                .values()
                .filter_map(|g| g.absolute_timeout)
                .fold(s.absolute_timeout, Ord::min),
        };
        let session_script_tag = super::script_injection::tag(&settings.server.prefix);
        Snapshot {
            peers: super::upstream_peer::RoutePeers::new(&settings.routes),
            session_script_tag,
            settings,
            users,
            limits,
            general,
            shortest,
            identity_names,
            assertion_name,
        }
    }

    /// The limits of a user: worked out at load for the file's users, on
    /// the spot for the app database's.
    pub fn limits(&self, user: &User) -> UserLimits {
        match self.limits.get(&user.username) {
            Some(l) => *l,
            None if user.groups.is_empty() && user.max_devices.is_none() => self.general,
            None => limits_for(&self.settings.session, &user.groups, user.max_devices),
        }
    }

    /// The global watermarks plus the schedules that apply to `groups`.
    pub fn marks_for(&self, global: Watermarks, groups: &[String], now: Timestamp) -> Watermarks {
        Watermarks {
            scheduled: scheduled_watermark(&self.settings.schedules, groups, now),
            ..global
        }
    }

    /// The most generous policy any user has: what is dead under it is dead
    /// for everyone (used by the background sweep).
    pub fn most_generous(&self) -> SessionPolicy {
        self.general.policy
    }
}

pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    pub store: Arc<dyn SessionStore>,
    pub clock: Arc<dyn Clock>,
    pub verifier: PasswordVerifier,
    /// `[users.sql]`: users from the app's database, after the file's.
    pub sql_users: Option<Arc<SqlUsers>>,
    pub signer: Signer,
    pub rng: SystemRandom,
    /// When this process started: cookies issued before it whose session is
    /// gone were lost to a restart.
    pub started_at: Timestamp,
    /// Sessions from before this start were restored from a snapshot: a
    /// cookie the store does not know was not lost to the restart.
    pub sessions_restored: bool,
    /// Serialises changes to the users file made through the gateway.
    pub users_file_lock: tokio::sync::Mutex<()>,
    /// Refused logins waiting out `login.failure_delay`.
    pub refusal_delay: super::refusal_delay::RefusalDelay,
    /// Upstreams that cannot be reached now, each logged as one outage.
    pub upstream_health: super::upstream_health::UpstreamHealth,
    /// The TLS listeners, when `[server.tls]` started some.
    pub tls: Option<Arc<crate::tls::Edge>>,
    /// The relay behind login routes' WebSockets, and its tickets.
    pub websockets: super::websocket::Relay,
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
        let sql_users = match &snapshot.settings.users_sql {
            Some(s) => Some(SqlUsers::new(s, Arc::clone(&clock))?),
            None => None,
        };
        Ok(Shared {
            sql_users,
            verifier: PasswordVerifier::new(snapshot.settings.login.max_concurrent_hashes),
            started_at: clock.now(),
            sessions_restored: false,
            snapshot: ArcSwap::from_pointee(snapshot),
            store,
            clock,
            signer: Signer::new(&secret),
            rng,
            users_file_lock: tokio::sync::Mutex::new(()),
            refusal_delay: Default::default(),
            upstream_health: Default::default(),
            tls: None,
            websockets: Default::default(),
            next_upstream: AtomicUsize::new(0),
        })
    }

    /// Swaps in `users` (as just written to the users file) with the
    /// current settings.
    pub fn swap_users(&self, users: UserDb) {
        let current = self.snapshot.load_full();
        self.snapshot
            .store(Arc::new(Snapshot::new(current.settings.clone(), users)));
    }

    /// The users a request holding `snap` sees: that snapshot's users
    /// file, then the app's database.
    pub fn users<'a>(&'a self, snap: &'a Snapshot) -> Users<'a> {
        Users::new(&snap.users, self.sql_users.as_ref())
    }

    /// Verifies a sign-in: against the user's hash, or for an unknown user
    /// against a dummy of the users' typical format and cost.
    pub async fn verify_password(
        &self,
        snap: &Snapshot,
        user: Option<&User>,
        password: &str,
    ) -> Result<bool, crate::auth::verifier::Busy> {
        let dummy = self.users(snap).dummy_hash();
        let stored = user.map(|u| (u.username.clone(), u.password_hash.clone()));
        self.verifier
            .verify_user(stored, dummy, password.to_string())
            .await
    }

    /// Round-robin position for routes with several upstreams.
    pub fn next_upstream(&self) -> usize {
        self.next_upstream.fetch_add(1, Ordering::Relaxed)
    }
}
