//! `[users.sql]`: users read, read-only, from the app's own database
//! (PostgreSQL, MySQL/MariaDB, SQLite) through sqlx. Sign-ins read the
//! user's row; a signed-in user's row is re-read at most every `refresh`,
//! in the background, so proxied requests never wait on the database
//! (only the first request of a session this process has never seen
//! does). Every query has a deadline and the user name is always a bound
//! parameter. Never writes to the app's database; never logs a hash.

pub mod query;
mod row;

use parking_lot::Mutex;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::hash;
use super::source::{Lookup, Unavailable, UserSource};
use super::User;
use crate::clock::{Clock, Timestamp};
use crate::config::SqlSettings;
use crate::outage::Outage;
use crate::session::store::redis::conn::IoRuntime;
pub use query::{Dialect, Source};

/// Connections to the app's database; sign-ins beyond them wait for one
/// (hashing, not the query, is what limits sign-ins).
const MAX_CONNECTIONS: u32 = 8;

/// Verified against for unknown users until a real hash has been read:
/// the typical format and cost of each source, so an unknown user costs
/// what a real one does. Hashes of random passwords, made by the real tools:
/// Django 5.2 `make_password(secrets.token_hex(16))` and PHP 8.2
/// `password_hash(bin2hex(random_bytes(16)), PASSWORD_DEFAULT)`.
const DJANGO_DUMMY: &str =
    "pbkdf2_sha256$1000000$3JTabEqTpKK3LsZ9kKOjL8$x1WZYyCZyFLM8UCilij7aXEd2chBftGLo6SYpyEeYck=";
const QUERY_DUMMY: &str = "$2y$10$MUOjwToONkN/5CR60UvDa.x117VI28CA30e58CPk4SPxsRcwuCa/u";

/// The last record read for a user (`None`: no such user, or no longer).
struct Entry {
    user: Option<Arc<User>>,
    read_at: Timestamp,
    /// The last sign-in or request that asked for it: how `prune` knows the
    /// user has no live session here.
    used_at: Timestamp,
    refreshing: bool,
}

pub struct SqlUsers {
    rt: IoRuntime,
    pool: AnyPool,
    statement: Arc<str>,
    django: bool,
    timeout: Duration,
    refresh: Duration,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<String, Entry>>,
    /// Hears every query: one line when the database goes away, one (with
    /// what was refused) when it is back.
    outage: Outage,
    queries_ok: AtomicU64,
    queries_failed: AtomicU64,
    /// A real hash last read: unknown users are verified against it.
    seen_hash: Mutex<Option<String>>,
}

impl SqlUsers {
    /// Prepares the pool; connects on first use, so a database that is
    /// down at start-up delays nothing but sign-ins.
    pub fn new(settings: &SqlSettings, clock: Arc<dyn Clock>) -> Result<Arc<Self>, String> {
        sqlx::any::install_default_drivers();
        let rt = IoRuntime::start()?;
        let pool = {
            let _inside = rt.handle().enter();
            AnyPoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .min_connections(0)
                .acquire_timeout(settings.timeout)
                .idle_timeout(Duration::from_secs(300))
                .connect_lazy(&driver_url(settings))
                .map_err(|e| format!("users.sql.url: {e}"))?
        };
        Ok(Arc::new(SqlUsers {
            rt,
            pool,
            statement: query::statement(settings.dialect, &settings.source).into(),
            django: matches!(settings.source, Source::Django { .. }),
            timeout: settings.timeout,
            refresh: settings.refresh,
            clock,
            cache: Mutex::new(HashMap::new()),
            outage: Outage::new(
                format!(
                    "users database {}",
                    crate::logging::url_for_log(&settings.url)
                ),
                settings.timeout + Duration::from_millis(100),
            ),
            queries_ok: AtomicU64::new(0),
            queries_failed: AtomicU64::new(0),
            seen_hash: Mutex::new(None),
        }))
    }

    /// At sign-in: the user's row, read now.
    async fn sign_in_lookup(&self, username: &str) -> Lookup {
        let found = self.read(username).await?.map(Arc::new);
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        match &found {
            Some(u) => {
                // An unusable or unsupported hash is answered at once: as
                // the dummy it would make unknown names the fast ones.
                if !u.disabled && hash::costs_a_verification(&u.password_hash) {
                    *self.seen_hash.lock() = Some(u.password_hash.clone());
                }
                cache.insert(u.username.clone(), Entry::fresh(Some(Arc::clone(u)), now));
            }
            None => {
                if let Some(e) = cache.get_mut(username) {
                    *e = Entry::fresh(None, now);
                }
            }
        }
        Ok(found)
    }

    /// For a signed-in user's request: the record last read, re-read in
    /// the background once it is `refresh` old. Waits on the database only
    /// for a user this process has not read yet.
    async fn session_lookup(self: &Arc<Self>, username: &str) -> Lookup {
        let now = self.clock.now();
        if let Some(known) = self.cached(username, now) {
            return Ok(known);
        }
        let found = self.read(username).await?.map(Arc::new);
        self.cache
            .lock()
            .insert(username.to_string(), Entry::fresh(found.clone(), now));
        Ok(found)
    }

    /// The cached record, starting its refresh when due.
    fn cached(self: &Arc<Self>, username: &str, now: Timestamp) -> Option<Option<Arc<User>>> {
        let mut cache = self.cache.lock();
        let entry = cache.get_mut(username)?;
        entry.used_at = now;
        if !entry.refreshing && now.since(entry.read_at) >= self.refresh {
            entry.refreshing = true;
            let this = Arc::clone(self);
            let name = username.to_string();
            self.rt
                .handle()
                .spawn(async move { this.refresh(name).await });
        }
        Some(entry.user.clone())
    }

    async fn refresh(&self, username: String) {
        let read = self.read(&username).await;
        let now = self.clock.now();
        let mut cache = self.cache.lock();
        let Some(entry) = cache.get_mut(&username) else {
            return;
        };
        match read {
            Ok(found) => {
                entry.user = found.map(Arc::new);
                entry.read_at = now;
                entry.refreshing = false;
            }
            // Sessions go on with the record last read; the next try is
            // `refresh` later, not on every request.
            Err(_) => {
                entry.read_at = now;
                entry.refreshing = false;
            }
        }
    }

    /// Forgets the records of users no sign-in or request has asked for in
    /// `idle` (the longest idle timeout): every request of a session asks,
    /// so such a user has no live session on this gateway, and the cache
    /// stays as small as the users signed in. Were one still served by
    /// another gateway of a fleet, its next request here reads the row
    /// again. Returns how many were dropped.
    pub fn prune(&self, now: Timestamp, idle: Duration) -> usize {
        let mut cache = self.cache.lock();
        let before = cache.len();
        cache.retain(|_, e| now.since(e.used_at) < idle);
        before - cache.len()
    }

    /// The hash unknown users are verified against: a real one of this
    /// database if one has been read, else the source's typical one.
    fn dummy_hash(&self) -> String {
        self.seen_hash.lock().clone().unwrap_or_else(|| {
            if self.django {
                DJANGO_DUMMY
            } else {
                QUERY_DUMMY
            }
            .to_string()
        })
    }

    /// One query for one user, on the backend's own runtime, within the
    /// deadline.
    async fn read(&self, username: &str) -> Result<Option<User>, Unavailable> {
        let (pool, statement, name) = (
            self.pool.clone(),
            Arc::clone(&self.statement),
            username.to_string(),
        );
        let django = self.django;
        let task = self.rt.handle().spawn(async move {
            let row = sqlx::query(&statement)
                .bind(name)
                .fetch_optional(&pool)
                .await?;
            Ok::<_, sqlx::Error>(row.and_then(|r| {
                if django {
                    row::django(&r)
                } else {
                    row::custom(&r)
                }
            }))
        });
        let abort = task.abort_handle();
        let outcome = match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(Ok(user))) => Ok(user),
            Ok(Ok(Err(e))) => Err(Unavailable(e.to_string())),
            Ok(Err(e)) => Err(Unavailable(e.to_string())),
            Err(_) => {
                abort.abort();
                Err(Unavailable(format!("no answer within {:?}", self.timeout)))
            }
        };
        self.note(&outcome);
        outcome
    }

    /// For `/ready` and `check-config --connect`: the database answers.
    pub async fn ping(&self) -> Result<(), Unavailable> {
        let pool = self.pool.clone();
        let task = self
            .rt
            .handle()
            .spawn(async move { sqlx::query("SELECT 1").fetch_one(&pool).await.map(|_| ()) });
        let abort = task.abort_handle();
        let outcome = match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(Unavailable(e.to_string())),
            Ok(Err(e)) => Err(Unavailable(e.to_string())),
            Err(_) => {
                abort.abort();
                Err(Unavailable(format!("no answer within {:?}", self.timeout)))
            }
        };
        self.health(outcome.as_ref().err());
        outcome
    }

    fn note<T>(&self, outcome: &Result<T, Unavailable>) {
        let counter = if outcome.is_ok() {
            &self.queries_ok
        } else {
            &self.queries_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.health(outcome.as_ref().err());
    }

    /// Tells the outage how a query went; while it lasts, sign-ins answer
    /// "unavailable" and signed-in users go on with the records last read.
    fn health(&self, failure: Option<&Unavailable>) {
        match failure {
            Some(e) => self.outage.failed(&e.0),
            None => self.outage.succeeded(),
        }
    }

    /// The database's outage, if any: refused sign-ins are counted in it.
    pub fn outage(&self) -> &Outage {
        &self.outage
    }

    /// The Prometheus lines of this backend.
    pub fn render_metrics(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP gatehouse_users_sql_queries_total User look-ups sent to the app's database, by result.\n\
             # TYPE gatehouse_users_sql_queries_total counter\n\
             gatehouse_users_sql_queries_total{{result=\"ok\"}} {}\n\
             gatehouse_users_sql_queries_total{{result=\"failed\"}} {}\n\
             # HELP gatehouse_users_sql_up Whether the last query to the app's database succeeded.\n\
             # TYPE gatehouse_users_sql_up gauge\n\
             gatehouse_users_sql_up {}",
            self.queries_ok.load(Ordering::Relaxed),
            self.queries_failed.load(Ordering::Relaxed),
            u8::from(!self.outage.is_down()),
        );
    }
}

impl UserSource for Arc<SqlUsers> {
    fn sign_in_lookup(&self, name: &str) -> impl std::future::Future<Output = Lookup> + Send {
        SqlUsers::sign_in_lookup(self, name)
    }

    fn session_lookup(&self, name: &str) -> impl std::future::Future<Output = Lookup> + Send {
        SqlUsers::session_lookup(self, name)
    }

    fn dummy_hash(&self) -> String {
        SqlUsers::dummy_hash(self)
    }
}

impl Entry {
    fn fresh(user: Option<Arc<User>>, now: Timestamp) -> Self {
        Entry {
            user,
            read_at: now,
            used_at: now,
            refreshing: false,
        }
    }
}

/// The URL as given, with SQLite opened read-only: the gateway never
/// writes to the app's database, and SQLite can enforce it.
fn driver_url(settings: &SqlSettings) -> String {
    let url = settings.url.clone();
    if settings.dialect != Dialect::Sqlite || url.contains("mode=") {
        return url;
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=ro")
}

/// `check-config --connect`: connects and runs the query once, with a
/// user name nobody has; a failure is reported at `users.sql.url`.
pub fn check_connection(
    config: &std::path::Path,
    settings: &crate::config::Settings,
) -> Result<(), crate::config::ConfigErrors> {
    use crate::config::{ConfigErrors, ErrorSink, KeyPath};
    let Some(sql) = &settings.users_sql else {
        return Ok(());
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            let users = SqlUsers::new(sql, Arc::new(crate::clock::SystemClock))?;
            rt.block_on(users.read("gatehouse-check-config\u{1}"))
                .map(|_| ())
                .map_err(|e| e.0)
        });
    outcome.map_err(|message| {
        let source = std::fs::read_to_string(config).unwrap_or_default();
        let mut sink = ErrorSink::new(config, &source);
        sink.push(
            &KeyPath::root().key("users").key("sql").key("url"),
            format!("the database did not answer the query: {message}"),
        );
        ConfigErrors(sink.errors)
    })
}

#[cfg(test)]
mod tests;
