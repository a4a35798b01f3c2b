//! The Redis (or Valkey) store, for a fleet of gateways sharing sessions.
//!
//! Keys, under a configurable prefix `P`:
//! - `P:{USER}:s:KEYHEX` — a session record (hash), with a TTL that follows
//!   its idle and absolute timeouts;
//! - `P:{USER}:u` — the user's session index (set of KEYHEX);
//! - `P:k:KEYHEX` — which user a session key belongs to (the cookie names
//!   the key, not the user);
//! - `P:live` — every session key, scored by when its record expires at
//!   the latest: counts in O(log n) for audit lines and metrics;
//! - `P:marks` — the global watermarks; `P:n:HASH` — used nonces (hashed);
//!   `P:f:SUBJECT`, `P:b:SUBJECT` — login failures and bans;
//! - `P:events` — the channel announcing changes to every instance's cache.
//!
//! Everything about one user shares the `{USER}` hash tag, so the
//! device-limit script runs on one cluster slot. No key or value holds a
//! session ID: records are named by SHA-256 of it.

mod cache;
pub mod conn;
mod scripts;

use async_trait::async_trait;
use redis::{AsyncCommands, RedisError, Script, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{
    least_recent_first, Admission, DeviceLimit, Lookup, OnFull, SessionStore, StoreError,
    TouchIfDue, UserSessions,
};
use crate::clock::Timestamp;
use crate::outage::Outage;
use crate::session::{EndReason, SessionKey, SessionPolicy, SessionRecord, Watermarks};
use cache::Cache;
use conn::{Conn, Connector, IoRuntime, Limits, Target};

/// How long an ended record (or one past its timeouts) stays readable, so
/// its next request still learns why it ended.
const TOMBSTONE_GRACE: Duration = Duration::from_secs(600);
const MAX_FAILURES_KEPT: u32 = 1024;
const SCAN_BATCH: usize = 500;

#[derive(Debug, Clone)]
pub struct RedisOptions {
    pub target: Target,
    pub prefix: String,
    /// Every command gives up after this long.
    pub timeout: Duration,
    /// How long a record may be served from this instance's cache; zero
    /// turns the cache off.
    pub cache_ttl: Duration,
    /// The most generous idle and absolute timeouts: how long records are
    /// kept (kept current by the background sweep).
    pub max_idle: Duration,
    pub max_age: Duration,
}

struct Scripts {
    insert: Script,
    touch: Script,
    finish: Script,
    raise_mark: Script,
    failure: Script,
    ban: Script,
    lookup: Script,
}

struct Inner {
    connector: Arc<Connector>,
    prefix: String,
    timeout: Duration,
    cache: Arc<Cache>,
    scripts: Scripts,
    max_idle_ms: AtomicU64,
    max_age_ms: AtomicU64,
    /// Makes failure-window members unique.
    seq: AtomicU64,
}

pub struct RedisStore {
    inner: Arc<Inner>,
    /// Every command's result feeds it: the log says when Redis went away
    /// and when it came back, not once per refused request.
    outage: Arc<Outage>,
    // Last: the runtime stops after everything that runs on it is gone.
    rt: IoRuntime,
}

impl RedisStore {
    /// Sets the store up without waiting for Redis: commands fail (with
    /// `StoreError`) until it answers, and succeed again once it does.
    pub fn new(opts: RedisOptions) -> Result<Self, String> {
        let rt = IoRuntime::start()?;
        let connector = Arc::new(Connector::new(
            opts.target,
            Limits {
                timeout: opts.timeout,
            },
        ));
        let cache = Arc::new(Cache::new(opts.cache_ttl));
        let inner = Arc::new(Inner {
            connector: Arc::clone(&connector),
            prefix: opts.prefix.clone(),
            timeout: opts.timeout,
            cache: Arc::clone(&cache),
            scripts: Scripts {
                insert: Script::new(scripts::INSERT),
                touch: Script::new(scripts::TOUCH),
                finish: Script::new(scripts::FINISH),
                raise_mark: Script::new(scripts::RAISE_MARK),
                failure: Script::new(scripts::FAILURE),
                ban: Script::new(scripts::BAN),
                lookup: Script::new(scripts::LOOKUP),
            },
            max_idle_ms: AtomicU64::new(millis(opts.max_idle)),
            max_age_ms: AtomicU64::new(millis(opts.max_age)),
            seq: AtomicU64::new(0),
        });
        // A command gives up after the timeout, plus the caller's margin.
        let outage = Arc::new(Outage::new(
            format!("redis store {}", connector.target().describe()),
            opts.timeout + Duration::from_millis(100),
        ));
        if !opts.cache_ttl.is_zero() {
            rt.handle().spawn(cache::follow(
                Arc::downgrade(&cache),
                connector,
                format!("{}:events", opts.prefix),
                Arc::clone(&outage),
            ));
        }
        Ok(RedisStore { inner, outage, rt })
    }

    /// Where the store points, without credentials.
    pub fn describe(&self) -> String {
        self.inner.connector.target().describe()
    }

    /// Whether this instance currently receives other instances'
    /// announcements (and so may use its cache).
    pub fn following(&self) -> bool {
        self.inner.cache.is_live()
    }

    /// Runs `f` on the store's runtime, within the timeout; the outage
    /// hears how it went.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>, Conn) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, RedisError>> + Send + 'static,
    {
        self.watched(self.attempt(f).await)
    }

    /// Passes a result on, telling the outage about it.
    fn watched<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match &result {
            Ok(_) => self.outage.succeeded(),
            Err(e) => self.outage.failed(e),
        }
        result
    }

    async fn attempt<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>, Conn) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, RedisError>> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let timeout = self.inner.timeout;
        let task = self.rt.handle().spawn(async move {
            let connector = Arc::clone(&inner.connector);
            let work = async {
                let conn = connector.get().await?;
                f(inner, conn).await
            };
            match tokio::time::timeout(timeout, work).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => {
                    connector.failed(&e);
                    Err(StoreError(format!("Redis: {e}")))
                }
                Err(_) => {
                    connector.timed_out();
                    Err(no_answer(timeout))
                }
            }
        });
        // The caller's own deadline: time queued on the store's runtime
        // counts too.
        match tokio::time::timeout(timeout + Duration::from_millis(50), task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(StoreError(format!("Redis task failed: {e}"))),
            Err(_) => Err(no_answer(timeout)),
        }
    }

    /// Reads a record from Redis, bypassing (and then filling) the cache.
    async fn fetch(&self, key: SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let generation = self.inner.cache.generation();
        let rec = self
            .run(move |inner, mut c| async move {
                let user: Option<String> = c.get(inner.pointer_key(&key)).await?;
                let Some(user) = user else { return Ok(None) };
                let fields: HashMap<String, String> =
                    c.hgetall(inner.record_key(&user, &key)).await?;
                Ok(decode(&fields).map(Arc::new))
            })
            .await?;
        if let Some(r) = &rec {
            self.inner.cache.put(key, Arc::clone(r), generation);
        }
        Ok(rec)
    }

    /// The user a key belongs to: from the cache, else from Redis.
    async fn owner(&self, key: &SessionKey) -> Result<Option<String>, StoreError> {
        Ok(self.get(key).await?.map(|r| r.user.clone()))
    }

    /// Every record, read node by node (admin listings only: O(n)).
    async fn scan_records(&self) -> Result<Vec<(SessionKey, Arc<SessionRecord>)>, StoreError> {
        let scanned = self.scan().await;
        self.watched(scanned)
    }

    async fn scan(&self) -> Result<Vec<(SessionKey, Arc<SessionRecord>)>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let connector = Arc::clone(&inner.connector);
        let pattern = format!("{}:{{*}}:s:*", inner.prefix);
        let timeout = inner.timeout;
        let task = self.rt.handle().spawn(async move {
            let nodes = tokio::time::timeout(timeout, connector.data_nodes())
                .await
                .map_err(|_| no_answer(timeout))?
                .map_err(|e| StoreError(format!("Redis: {e}")))?;
            let mut out = Vec::new();
            for mut node in nodes {
                let mut cursor: u64 = 0;
                loop {
                    let step = async {
                        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&pattern)
                            .arg("COUNT")
                            .arg(SCAN_BATCH)
                            .query_async(&mut node)
                            .await?;
                        let mut pipe = redis::pipe();
                        for k in &keys {
                            pipe.hgetall(k);
                        }
                        let recs: Vec<HashMap<String, String>> = if keys.is_empty() {
                            Vec::new()
                        } else {
                            pipe.query_async(&mut node).await?
                        };
                        Ok::<_, RedisError>((next, keys, recs))
                    };
                    let (next, keys, recs) = tokio::time::timeout(timeout, step)
                        .await
                        .map_err(|_| no_answer(timeout))?
                        .map_err(|e| StoreError(format!("Redis: {e}")))?;
                    for (k, fields) in keys.iter().zip(recs) {
                        let hex = k.rsplit(':').next().unwrap_or_default();
                        if let (Some(key), Some(rec)) = (SessionKey::from_hex(hex), decode(&fields))
                        {
                            out.push((key, Arc::new(rec)));
                        }
                    }
                    cursor = next;
                    if cursor == 0 {
                        break;
                    }
                }
            }
            Ok::<_, StoreError>(out)
        });
        task.await
            .map_err(|e| StoreError(format!("Redis task failed: {e}")))?
    }

    /// Ends a session with `reason` (keeping a tombstone), or forgets it
    /// (`None`); every instance hears of it before this returns.
    async fn finish(
        &self,
        key: SessionKey,
        reason: Option<EndReason>,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let Some(user) = self.owner(&key).await? else {
            return Ok(None);
        };
        let before: Value = self
            .run(move |inner, mut c| async move {
                let v: Value = inner
                    .scripts
                    .finish
                    .key(inner.record_key(&user, &key))
                    .key(inner.index_key(&user))
                    .arg(reason.map_or("", EndReason::as_str))
                    .arg(inner.channel())
                    .arg(key.to_hex())
                    .invoke_async(&mut c)
                    .await?;
                // Other slots in a cluster: commands of their own.
                if reason.is_none() {
                    let _: () = c.del(inner.pointer_key(&key)).await?;
                }
                let _: () = c.zrem(inner.live_key(), key.to_hex()).await?;
                Ok(v)
            })
            .await?;
        self.inner.cache.forget(&key);
        let finished = decode_pairs(before).map(Arc::new);
        if finished.is_some() {
            self.inner.cache.echo(|c| c.heard_session(&key)).await;
        }
        Ok(finished)
    }

    /// How long records may be kept (idle, absolute, in ms): the most
    /// generous of the configuration and the given policy.
    fn retention(&self, policy_idle: Duration, policy_age: Duration) -> (u64, u64) {
        let idle = self
            .inner
            .max_idle_ms
            .load(Ordering::Relaxed)
            .max(millis(policy_idle));
        let age = self
            .inner
            .max_age_ms
            .load(Ordering::Relaxed)
            .max(millis(policy_age));
        (idle, age)
    }
}

impl Inner {
    fn tag(user: &str) -> String {
        // Braces would end the hash tag early; '%' keeps the escape
        // unambiguous.
        user.replace('%', "%25")
            .replace('{', "%7B")
            .replace('}', "%7D")
    }

    fn record_prefix(&self, user: &str) -> String {
        format!("{}:{{{}}}:s:", self.prefix, Self::tag(user))
    }

    fn record_key(&self, user: &str, key: &SessionKey) -> String {
        format!("{}{}", self.record_prefix(user), key.to_hex())
    }

    fn index_key(&self, user: &str) -> String {
        format!("{}:{{{}}}:u", self.prefix, Self::tag(user))
    }

    fn pointer_key(&self, key: &SessionKey) -> String {
        format!("{}:k:{}", self.prefix, key.to_hex())
    }

    fn live_key(&self) -> String {
        format!("{}:live", self.prefix)
    }

    fn marks_key(&self) -> String {
        format!("{}:marks", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    fn nonce_key(&self, nonce: &str) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, nonce.as_bytes());
        format!("{}:n:{}", self.prefix, crate::hex::encode(digest.as_ref()))
    }

    fn failure_key(&self, subject: &str) -> String {
        format!("{}:f:{subject}", self.prefix)
    }

    fn ban_key(&self, subject: &str) -> String {
        format!("{}:b:{subject}", self.prefix)
    }
}

/// Redis expires keys by its own clock: TTL-like scores use the wall
/// clock, not the gateway's (possibly injected) one.
fn wall_millis() -> u64 {
    crate::clock::Clock::now(&crate::clock::SystemClock).as_millis()
}

fn no_answer(timeout: Duration) -> StoreError {
    StoreError(format!(
        "Redis did not answer within {} ms",
        timeout.as_millis()
    ))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn encode(rec: &SessionRecord) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("u", rec.user.clone()),
        ("c", rec.created_at.as_millis().to_string()),
        ("l", rec.last_seen.as_millis().to_string()),
        ("ua", rec.user_agent.clone()),
        ("fp", crate::hex::encode(&rec.password_fingerprint)),
        (
            "g",
            serde_json::to_string(&*rec.groups).unwrap_or_else(|_| "[]".into()),
        ),
    ];
    if let Some(ip) = rec.client_ip {
        f.push(("ip", ip.to_string()));
    }
    if let Some(e) = rec.ended {
        f.push(("e", e.as_str().to_string()));
    }
    f
}

fn decode(f: &HashMap<String, String>) -> Option<SessionRecord> {
    let num = |k: &str| f.get(k)?.parse::<u64>().ok().map(Timestamp::from_millis);
    let groups: Vec<String> = serde_json::from_str(f.get("g")?).ok()?;
    Some(SessionRecord {
        user: f.get("u")?.clone(),
        created_at: num("c")?,
        last_seen: num("l")?,
        client_ip: f.get("ip").and_then(|ip| ip.parse().ok()),
        user_agent: f.get("ua").cloned().unwrap_or_default(),
        password_fingerprint: crate::hex::decode::<8>(f.get("fp")?)?,
        groups: groups.into(),
        ended: match f.get("e") {
            Some(e) => Some(EndReason::parse(e)?),
            None => None,
        },
    })
}

/// A script's reply of field/value pairs (HGETALL as a Lua table).
fn decode_pairs(v: Value) -> Option<SessionRecord> {
    let Value::Array(items) = v else { return None };
    let mut map = HashMap::new();
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let k: String = redis::from_redis_value(k).ok()?;
        let v: String = redis::from_redis_value(v).ok()?;
        map.insert(k, v);
    }
    decode(&map)
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn insert(
        &self,
        key: SessionKey,
        record: SessionRecord,
        limit: DeviceLimit,
    ) -> Result<Admission, StoreError> {
        let l = limit.liveness;
        let (idle, age) = self.retention(l.policy.idle_timeout, l.policy.absolute_timeout);
        let ttl = idle.min(age) + millis(TOMBSTONE_GRACE);
        // The pointer, the index and the live-set entry last as long as the
        // session can.
        let keep = age + millis(TOMBSTONE_GRACE);
        let mark = l.marks.latest();
        let user = record.user.clone();
        let fields = encode(&record);
        let reply: Vec<String> = self
            .run(move |inner, mut c| async move {
                // The pointer first: a record is never without one.
                let _: () = c.pset_ex(inner.pointer_key(&key), &user, keep).await?;
                let mut inv = inner.scripts.insert.prepare_invoke();
                inv.key(inner.index_key(&user))
                    .key(inner.record_key(&user, &key))
                    .arg(l.now.as_millis())
                    .arg(millis(l.policy.idle_timeout))
                    .arg(millis(l.policy.absolute_timeout))
                    .arg(mark.as_millis())
                    .arg(crate::hex::encode(&l.password_fingerprint))
                    .arg(limit.max)
                    .arg(match limit.on_full {
                        OnFull::Refuse => "refuse",
                        OnFull::EvictLeastRecent => "evict",
                    })
                    .arg(limit.end_first.map(|k| k.to_hex()).unwrap_or_default())
                    .arg(inner.record_prefix(&user))
                    .arg(key.to_hex())
                    .arg(ttl)
                    .arg(keep)
                    .arg(inner.channel());
                for (k, v) in &fields {
                    inv.arg(*k).arg(v);
                }
                let reply: Vec<String> = inv.invoke_async(&mut c).await?;
                if reply.first().map(String::as_str) != Some("ok") {
                    let _: () = c.del(inner.pointer_key(&key)).await?;
                    return Ok(reply);
                }
                let mut pipe = redis::pipe();
                pipe.zadd(inner.live_key(), key.to_hex(), wall_millis() + keep)
                    .ignore()
                    .pexpire(inner.live_key(), i64::try_from(keep).unwrap_or(i64::MAX))
                    .ignore();
                for gone in reply.iter().skip(1) {
                    pipe.zrem(inner.live_key(), gone).ignore();
                }
                // Bookkeeping for counts only: the session is stored either
                // way, so a failure here must not turn the login into an error.
                if let Err(e) = pipe.query_async::<()>(&mut c).await {
                    tracing::warn!("session count may be off: {e}");
                }
                Ok(reply)
            })
            .await?;
        let keys = || {
            reply
                .iter()
                .skip(1)
                .filter_map(|h| SessionKey::from_hex(h))
                .collect::<Vec<_>>()
        };
        match reply.first().map(String::as_str) {
            Some("ok") => {
                let evicted = keys();
                for k in &evicted {
                    self.inner.cache.forget(k);
                }
                self.inner
                    .cache
                    .echo(|c| evicted.iter().all(|k| c.heard_session(k)))
                    .await;
                Ok(Admission::Inserted { evicted })
            }
            Some("full") => {
                // The script's order (least recently used first), with the
                // records read in one round trip.
                let mut held: HashMap<SessionKey, Arc<SessionRecord>> =
                    self.list_user(&record.user).await?.into_iter().collect();
                let live = keys()
                    .into_iter()
                    .filter_map(|k| held.remove(&k).map(|r| (k, r)))
                    .collect();
                Ok(Admission::Full { live })
            }
            _ => Err(StoreError(format!(
                "unexpected reply from Redis: {:?}",
                reply.first()
            ))),
        }
    }

    async fn get(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        if let Some(r) = self.inner.cache.get(key) {
            return Ok(Some(r));
        }
        self.fetch(*key).await
    }

    async fn get_fresh(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.inner.cache.forget(key);
        self.fetch(*key).await
    }

    async fn touch(&self, key: &SessionKey, user: &str, at: Timestamp) -> Result<(), StoreError> {
        let user = user.to_string();
        let (idle, age) = self.retention(Duration::ZERO, Duration::ZERO);
        let key = *key;
        let touched: i64 = self
            .run(move |inner, mut c| async move {
                let touched: i64 = inner
                    .scripts
                    .touch
                    .key(inner.record_key(&user, &key))
                    .arg(at.as_millis())
                    .arg(idle)
                    .arg(age)
                    .arg(millis(TOMBSTONE_GRACE))
                    .invoke_async(&mut c)
                    .await?;
                if touched == 1 {
                    // The pointer follows the longest a session may now
                    // live (a reload may have raised the timeouts).
                    let keep = i64::try_from(age + millis(TOMBSTONE_GRACE)).unwrap_or(i64::MAX);
                    let _: () = c.pexpire(inner.pointer_key(&key), keep).await?;
                }
                Ok(touched)
            })
            .await?;
        if touched == 1 {
            self.inner.cache.update(&key, |r| SessionRecord {
                last_seen: r.last_seen.max(at),
                ..r.clone()
            });
        }
        Ok(())
    }

    async fn end(
        &self,
        key: &SessionKey,
        reason: EndReason,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.finish(*key, Some(reason)).await
    }

    async fn remove(&self, key: &SessionKey) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.finish(*key, None).await
    }

    async fn list_user(&self, user: &str) -> Result<UserSessions, StoreError> {
        let user = user.to_string();
        let mut out: UserSessions = self
            .run(move |inner, mut c| async move {
                let hexes: Vec<String> = c.smembers(inner.index_key(&user)).await?;
                if hexes.is_empty() {
                    return Ok(Vec::new());
                }
                let keys: Vec<SessionKey> = hexes
                    .iter()
                    .filter_map(|h| SessionKey::from_hex(h))
                    .collect();
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.hgetall(inner.record_key(&user, k));
                }
                let recs: Vec<HashMap<String, String>> = pipe.query_async(&mut c).await?;
                Ok(keys
                    .into_iter()
                    .zip(recs)
                    .filter_map(|(k, f)| {
                        let r = decode(&f)?;
                        r.ended.is_none().then(|| (k, Arc::new(r)))
                    })
                    .collect())
            })
            .await?;
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
        let key = self.inner.nonce_key(nonce);
        let ttl = millis(expires.since(now)).max(1);
        self.run(move |_, mut c| async move {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(ttl)
                .query_async(&mut c)
                .await?;
            Ok(set.is_some())
        })
        .await
    }

    async fn sweep(&self, _now: Timestamp, policy: &SessionPolicy) -> Result<usize, StoreError> {
        // Redis drops records by their TTLs; this only keeps the TTLs given
        // to new records in line with the current configuration.
        let (idle, age) = (policy.idle_timeout, policy.absolute_timeout);
        self.inner
            .max_idle_ms
            .store(millis(idle), Ordering::Relaxed);
        self.inner.max_age_ms.store(millis(age), Ordering::Relaxed);
        Ok(0)
    }

    async fn count(&self) -> Result<usize, StoreError> {
        self.run(|inner, mut c| async move {
            let (_, n): (i64, usize) = redis::pipe()
                .zrembyscore(inner.live_key(), "-inf", wall_millis())
                .zcard(inner.live_key())
                .query_async(&mut c)
                .await?;
            Ok(n)
        })
        .await
    }

    /// From the cache when it holds both; otherwise one round trip (the
    /// `LOOKUP` script), except on a cluster, where the record's slot is
    /// not the pointer's: there the reads go one by one, and a due touch
    /// is left to the caller.
    async fn lookup(
        &self,
        key: &SessionKey,
        touch: Option<TouchIfDue>,
    ) -> Result<Lookup, StoreError> {
        let cache = &self.inner.cache;
        if let (Some(marks), Some(record)) = (cache.marks(), cache.get(key)) {
            return Ok(Lookup {
                marks,
                record: Some(record),
                touched: false,
            });
        }
        if matches!(self.inner.connector.target(), Target::Cluster(_)) {
            let marks = self.watermarks().await?;
            let record = self.get(key).await?;
            return Ok(Lookup {
                marks,
                record,
                touched: false,
            });
        }
        let generation = cache.generation();
        let (idle, age) = self.retention(Duration::ZERO, Duration::ZERO);
        let key = *key;
        let (at, after, short_idle, short_age) = match touch {
            Some(t) => (
                t.at.as_millis(),
                i64::try_from(millis(t.after)).unwrap_or(i64::MAX),
                millis(t.within.idle_timeout),
                millis(t.within.absolute_timeout),
            ),
            None => (0, -1, 0, 0),
        };
        let reply: Value = self
            .run(move |inner, mut c| async move {
                let head = format!("{}:{{", inner.prefix);
                let tail = format!("}}:s:{}", key.to_hex());
                inner
                    .scripts
                    .lookup
                    .key(inner.pointer_key(&key))
                    .key(inner.marks_key())
                    .arg(head)
                    .arg(tail)
                    .arg(at)
                    .arg(after)
                    .arg(idle)
                    .arg(age)
                    .arg(millis(TOMBSTONE_GRACE))
                    .arg(short_idle)
                    .arg(short_age)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let Value::Array(mut items) = reply else {
            return Err(StoreError(format!(
                "unexpected reply from Redis: {reply:?}"
            )));
        };
        let fields = items.split_off(items.len().min(3));
        let mark = |i: usize| {
            items
                .get(i)
                .cloned()
                .and_then(|v| redis::from_redis_value::<Option<u64>>(v).ok().flatten())
                .unwrap_or(0)
        };
        let marks = Watermarks {
            restart: Timestamp::from_millis(mark(0)),
            revoked: Timestamp::from_millis(mark(1)),
            scheduled: None,
        };
        let touched = mark(2) == 1;
        cache.put_marks(marks, generation);
        let record = if fields.is_empty() {
            None
        } else {
            decode_pairs(Value::Array(fields)).map(Arc::new)
        };
        if let Some(r) = &record {
            let cached = if touched {
                Arc::new(SessionRecord {
                    last_seen: r.last_seen.max(Timestamp::from_millis(at)),
                    ..SessionRecord::clone(r)
                })
            } else {
                Arc::clone(r)
            };
            cache.put(key, cached, generation);
        }
        Ok(Lookup {
            marks,
            record,
            touched,
        })
    }

    async fn watermarks(&self) -> Result<Watermarks, StoreError> {
        if let Some(w) = self.inner.cache.marks() {
            return Ok(w);
        }
        let generation = self.inner.cache.generation();
        let w = self
            .run(move |inner, mut c| async move {
                let (restart, revoked): (Option<u64>, Option<u64>) = redis::cmd("HMGET")
                    .arg(inner.marks_key())
                    .arg("restart")
                    .arg("revoked")
                    .query_async(&mut c)
                    .await?;
                Ok(Watermarks {
                    restart: Timestamp::from_millis(restart.unwrap_or(0)),
                    revoked: Timestamp::from_millis(revoked.unwrap_or(0)),
                    scheduled: None,
                })
            })
            .await?;
        self.inner.cache.put_marks(w, generation);
        Ok(w)
    }

    async fn revoke_all(&self, reason: EndReason, before: Timestamp) -> Result<usize, StoreError> {
        let field = match reason {
            EndReason::Restart => "restart",
            _ => "revoked",
        };
        let held = self.count().await?;
        let heard = self.inner.cache.marks_heard();
        self.run(move |inner, mut c| async move {
            let _: i64 = inner
                .scripts
                .raise_mark
                .key(inner.marks_key())
                .arg(field)
                .arg(before.as_millis())
                .arg(inner.channel())
                .invoke_async(&mut c)
                .await?;
            Ok(())
        })
        .await?;
        self.inner.cache.forget_marks();
        self.inner.cache.echo(|c| c.marks_heard() > heard).await;
        Ok(held)
    }

    async fn list_all(&self, limit: usize) -> Result<UserSessions, StoreError> {
        let mut all = self.scan_records().await?;
        least_recent_first(&mut all);
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }

    async fn record_failure(
        &self,
        subject: &str,
        now: Timestamp,
        window: Duration,
    ) -> Result<u32, StoreError> {
        let key = self.inner.failure_key(subject);
        let member = format!(
            "{}.{}",
            now.as_millis(),
            self.inner.seq.fetch_add(1, Ordering::Relaxed)
        );
        let window = millis(window).max(1);
        self.run(move |inner, mut c| async move {
            inner
                .scripts
                .failure
                .key(key)
                .arg(now.as_millis())
                .arg(window)
                .arg(format!("{member}.{}", std::process::id()))
                .arg(MAX_FAILURES_KEPT)
                .invoke_async(&mut c)
                .await
        })
        .await
    }

    async fn ban(&self, subject: &str, until: Timestamp) -> Result<(), StoreError> {
        let key = self.inner.ban_key(subject);
        self.run(move |inner, mut c| async move {
            // `until` is on the gateway's clock, the TTL on Redis's: keep
            // the key a minute longer than needed; `banned_until` compares.
            let ttl = until.as_millis().saturating_sub(wall_millis()) + 60_000;
            let _: i64 = inner
                .scripts
                .ban
                .key(key)
                .arg(until.as_millis())
                .arg(ttl)
                .invoke_async(&mut c)
                .await?;
            Ok(())
        })
        .await
    }

    async fn banned_until(
        &self,
        subject: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let key = self.inner.ban_key(subject);
        let until: Option<u64> = self
            .run(move |_, mut c| async move { c.get(key).await })
            .await?;
        Ok(until.map(Timestamp::from_millis).filter(|t| *t > now))
    }

    fn cache_following(&self) -> Option<bool> {
        Some(self.following())
    }

    /// Announcements heard on the events channel (this instance's own
    /// included); none while the subscription is down or the cache off.
    fn changes(&self) -> Option<&tokio::sync::Notify> {
        Some(self.inner.cache.changes())
    }

    fn outage(&self) -> Option<&Outage> {
        Some(&self.outage)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|_, mut c| async move {
            let _: String = redis::cmd("PING").query_async(&mut c).await?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
#[path = "../../../../tests/common/redis.rs"]
mod redis_server;

#[cfg(test)]
mod tests {
    use super::redis_server::{RedisCluster, RedisServer, Sentinel};
    use super::*;
    use crate::session::store::conformance::{self, Cleanup};
    use crate::session::{Liveness, SessionPolicy};

    fn options(target: Target, prefix: &str) -> RedisOptions {
        RedisOptions {
            target,
            prefix: prefix.to_string(),
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(1),
            max_idle: Duration::from_secs(100),
            max_age: Duration::from_secs(1000),
        }
    }

    /// A new store on `url` with a prefix of its own: stores made this way
    /// share the server but not one key.
    fn maker(url: String) -> impl Fn() -> Arc<dyn SessionStore> {
        let n = AtomicU64::new(0);
        move || {
            let prefix = format!("t{}", n.fetch_add(1, Ordering::Relaxed));
            let target = Target::parse(&url).unwrap();
            Arc::new(RedisStore::new(options(target, &prefix)).unwrap())
        }
    }

    fn record(user: &str, at: u64) -> SessionRecord {
        SessionRecord {
            user: user.into(),
            created_at: Timestamp::from_millis(at),
            last_seen: Timestamp::from_millis(at),
            client_ip: Some("10.1.2.3".parse().unwrap()),
            user_agent: "Firefox".into(),
            password_fingerprint: [7; 8],
            groups: vec!["staff".to_string(), "a{b}".to_string()].into(),
            ended: None,
        }
    }

    fn unlimited(now: u64) -> DeviceLimit {
        DeviceLimit::none(Liveness {
            now: Timestamp::from_millis(now),
            policy: SessionPolicy {
                idle_timeout: Duration::from_secs(100),
                absolute_timeout: Duration::from_secs(1000),
            },
            marks: Watermarks::default(),
            password_fingerprint: [7; 8],
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn standalone_passes_the_conformance_suite() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        conformance::run(maker(server.url()), Cleanup::Expiry).await;
    }

    /// The one-round-trip read of a cache miss: the watermarks and the
    /// record as `get` gives it, a touch only when due, and never one that
    /// would make a session past its timeouts look alive (the caller
    /// re-reads a record before ending it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lookup_reads_everything_and_touches_only_what_is_due_and_alive() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let mut opts = options(Target::parse(&server.url()).unwrap(), "look");
        opts.cache_ttl = Duration::ZERO;
        let store = RedisStore::new(opts).unwrap();
        let now = wall_millis();
        // braces and '%' in the name: the script builds the hash tag itself
        let user = "odd{user}%7B";
        let key = SessionKey([3; 32]);
        store
            .insert(key, record(user, now), unlimited(now))
            .await
            .unwrap();
        let mark = Timestamp::from_millis(now - 5);
        store.revoke_all(EndReason::Revoked, mark).await.unwrap();
        let touch = |at: u64| {
            Some(TouchIfDue {
                at: Timestamp::from_millis(at),
                after: Duration::from_secs(10),
                within: SessionPolicy {
                    idle_timeout: Duration::from_secs(100),
                    absolute_timeout: Duration::from_secs(1000),
                },
            })
        };
        async fn last_seen(store: &RedisStore, key: &SessionKey) -> u64 {
            store.get(key).await.unwrap().unwrap().last_seen.as_millis()
        }

        let l = store.lookup(&key, touch(now + 1_000)).await.unwrap();
        assert_eq!(l.record.as_deref(), Some(&record(user, now)));
        assert_eq!(l.marks.revoked, mark);
        assert!(!l.touched, "not due yet");
        assert_eq!(last_seen(&store, &key).await, now);

        let l = store.lookup(&key, touch(now + 20_000)).await.unwrap();
        assert!(l.touched, "due");
        assert_eq!(l.record.unwrap().last_seen.as_millis(), now, "as it was");
        assert_eq!(last_seen(&store, &key).await, now + 20_000);

        let l = store.lookup(&key, None).await.unwrap();
        assert!(!l.touched, "no touch asked for");

        // idle past the shortest idle timeout (and later past the absolute)
        for at in [now + 20_000 + 100_000, now + 1_000_000] {
            let l = store.lookup(&key, touch(at)).await.unwrap();
            assert!(!l.touched, "a timed-out session was touched at {at}");
            assert_eq!(last_seen(&store, &key).await, now + 20_000);
        }

        let l = store
            .lookup(&SessionKey([4; 32]), touch(now))
            .await
            .unwrap();
        assert!(l.record.is_none() && !l.touched);
        assert_eq!(l.marks.revoked, mark);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_passes_the_conformance_suite() {
        let Some(cluster) = RedisCluster::start() else {
            return;
        };
        conformance::run(maker(cluster.url()), Cleanup::Expiry).await;
        // The users' keys really are spread over the nodes.
        let per_node: Vec<usize> = cluster.nodes.iter().map(|n| n.scan_keys().len()).collect();
        assert!(
            per_node.iter().filter(|n| **n > 0).count() >= 2,
            "keys on one node only: {per_node:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_round_trip_and_expire_by_their_timeouts() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let store = RedisStore::new(options(Target::parse(&server.url()).unwrap(), "gh")).unwrap();
        let key = SessionKey([5; 32]);
        // a name that would break a hash tag
        let user = "we{ir}d%user";
        store
            .insert(key, record(user, 1_000), unlimited(1_000))
            .await
            .unwrap();
        assert_eq!(
            *store.get_fresh(&key).await.unwrap().unwrap(),
            record(user, 1_000)
        );
        assert_eq!(store.list_user(user).await.unwrap().len(), 1);

        let rec_key = store.inner.record_key(user, &key);
        assert!(
            rec_key.starts_with("gh:{we%7Bir%7Dd%25user}:s:"),
            "{rec_key}"
        );
        let ttl = |k: &str| server.cli(&["PTTL", k]).parse::<i64>().unwrap();
        let grace = millis(TOMBSTONE_GRACE) as i64;
        // kept for the idle timeout (100 s) plus the grace period
        let t = ttl(&rec_key);
        assert!(t > 90_000 + grace && t <= 100_000 + grace, "{t}");
        // the pointer lives as long as a session can (1000 s) plus grace
        let t = ttl(&store.inner.pointer_key(&key));
        assert!(t > 990_000 + grace && t <= 1_000_000 + grace, "{t}");
        // near its absolute end, a touch keeps it only until then
        store
            .touch(&key, user, Timestamp::from_millis(960_000))
            .await
            .unwrap();
        let t = ttl(&rec_key);
        assert!(t > 30_000 + grace && t <= 41_000 + grace, "{t}");
        for k in server.scan_keys() {
            assert!(
                server.cli(&["PTTL", &k]).parse::<i64>().unwrap() > 0,
                "{k} never expires"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_change_on_one_instance_reaches_the_others_cache() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let target = Target::parse(&server.url()).unwrap();
        let a = RedisStore::new(options(target.clone(), "gh")).unwrap();
        let mut slow = options(target, "gh");
        slow.cache_ttl = Duration::from_secs(3600);
        let b = RedisStore::new(slow).unwrap();
        wait(|| a.following() && b.following()).await;

        let key = SessionKey([6; 32]);
        a.insert(key, record("alice", 10), unlimited(10))
            .await
            .unwrap();
        assert!(b.get(&key).await.unwrap().is_some());
        // b now serves it from its cache; a ends it
        a.end(&key, EndReason::Revoked).await.unwrap();
        wait_async(|| async { b.get(&key).await.unwrap().unwrap().ended.is_some() }).await;
        assert_eq!(
            b.get(&key).await.unwrap().unwrap().ended,
            Some(EndReason::Revoked)
        );

        let before = b.watermarks().await.unwrap();
        assert_eq!(before, Watermarks::default());
        a.revoke_all(EndReason::Revoked, Timestamp::from_millis(77))
            .await
            .unwrap();
        wait_async(|| async { b.watermarks().await.unwrap().revoked.as_millis() == 77 }).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_outage_is_an_error_within_the_timeout_and_heals_by_itself() {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let mut o = options(Target::parse(&server.url()).unwrap(), "gh");
        o.timeout = Duration::from_millis(300);
        let store = RedisStore::new(o).unwrap();
        let key = SessionKey([8; 32]);
        store
            .insert(key, record("alice", 10), unlimited(10))
            .await
            .unwrap();
        wait(|| store.following()).await;

        server.stop();
        let started = std::time::Instant::now();
        assert!(store.get_fresh(&key).await.is_err());
        assert!(store.ping().await.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        wait(|| !store.following()).await;
        assert!(
            store.get(&key).await.is_err(),
            "no stale answer from the cache while down"
        );

        server.restart();
        wait_async(|| async { store.ping().await.is_ok() }).await;
        // an empty server now: the session is gone, nothing crashed
        assert_eq!(store.get(&key).await.unwrap(), None);
        store
            .insert(key, record("alice", 20), unlimited(20))
            .await
            .unwrap();
        assert!(store.get(&key).await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sentinel_finds_the_master_and_follows_a_failover() {
        let Some(mut master) = RedisServer::start() else {
            return;
        };
        let replica_of = master.port.to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &replica_of]).unwrap();
        let sentinel = Sentinel::start(master.port, "gh-master").unwrap();
        let url = format!("redis+sentinel://127.0.0.1:{}/gh-master", sentinel.port);
        let mut o = options(Target::parse(&url).unwrap(), "gh");
        o.timeout = Duration::from_millis(500);
        let store = RedisStore::new(o).unwrap();
        let key = SessionKey([9; 32]);
        store
            .insert(key, record("alice", 10), unlimited(10))
            .await
            .unwrap();
        assert!(store.get_fresh(&key).await.unwrap().is_some());
        // wait until the replica has the record, then lose the master
        let rec_key = store.inner.record_key("alice", &key);
        wait(|| replica.cli(&["EXISTS", &rec_key]) == "1").await;
        master.stop();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while sentinel.master_port("gh-master") != Some(replica.port) {
            assert!(std::time::Instant::now() < deadline, "no failover");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // the store finds the new master by itself
        wait_async(|| async { store.get_fresh(&key).await.is_ok_and(|r| r.is_some()) }).await;
        store
            .touch(&key, "alice", Timestamp::from_millis(20))
            .await
            .unwrap();
        assert_eq!(
            store.get_fresh(&key).await.unwrap().unwrap().last_seen,
            Timestamp::from_millis(20)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sentinel_that_hangs_does_not_hold_every_lookup_up() {
        let Some(master) = RedisServer::start() else {
            return;
        };
        let sentinel = Sentinel::start(master.port, "gh-master").unwrap();
        // accepts connections (the kernel does) and never answers
        let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "redis+sentinel://{},127.0.0.1:{}/gh-master",
            hung.local_addr().unwrap(),
            sentinel.port
        );
        let mut o = options(Target::parse(&url).unwrap(), "gh");
        o.timeout = Duration::from_millis(300);
        let store = RedisStore::new(o).unwrap();
        let mut failures = 0;
        while store.ping().await.is_err() {
            failures += 1;
            assert!(failures < 3, "still asking the hung sentinel first");
        }
        assert_eq!(failures, 1, "the first look-up asks the hung sentinel");
    }

    async fn wait(ok: impl Fn() -> bool) {
        wait_async(|| std::future::ready(ok())).await;
    }

    async fn wait_async<F: Future<Output = bool>>(ok: impl Fn() -> F) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ok().await {
            assert!(
                std::time::Instant::now() < deadline,
                "condition not reached in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
