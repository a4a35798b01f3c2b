//! The per-instance cache in front of Redis: session records and the
//! global watermarks, each kept for at most `ttl`, and dropped as soon as
//! any instance announces a change on the events channel.
//!
//! The cache is only trusted while the subscription is up: when it drops,
//! everything cached is forgotten and every read goes to Redis until the
//! subscription is back, so no announcement can be missed.

use futures_util::StreamExt;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::Connector;
use crate::outage::Outage;
use crate::session::{SessionKey, SessionRecord, Watermarks};

const SHARDS: usize = 16;
/// Past this many entries a shard drops its stale ones.
const SHARD_SOFT_CAP: usize = 4096;
/// Announcements remembered for `heard_session`.
const RECENT: usize = 1024;
/// How long a change waits for its announcement to come back.
const ECHO_WAIT: Duration = Duration::from_millis(200);

/// What an instance announces: a session changed, or the watermarks moved.
pub enum Event {
    Session(SessionKey),
    Marks,
}

impl Event {
    #[cfg(test)]
    pub fn encode(&self) -> String {
        match self {
            Event::Session(k) => format!("s:{}", k.to_hex()),
            Event::Marks => "m".to_string(),
        }
    }

    pub fn decode(s: &str) -> Option<Event> {
        match s {
            "m" => Some(Event::Marks),
            _ => SessionKey::from_hex(s.strip_prefix("s:")?).map(Event::Session),
        }
    }
}

/// Records by key, each with when it was read.
type Shard = Mutex<HashMap<SessionKey, (Instant, Arc<SessionRecord>)>>;

pub struct Cache {
    ttl: Duration,
    shards: Vec<Shard>,
    marks: Mutex<Option<(Instant, Watermarks)>>,
    /// Bumped by every announcement and every loss of the subscription: a
    /// read that started before a bump must not fill the cache.
    generation: AtomicU64,
    live: AtomicBool,
    /// Announcements received lately, so an instance can wait for its own
    /// to come back: once it has, every other instance following the same
    /// node has been sent it too.
    recent: Mutex<std::collections::VecDeque<SessionKey>>,
    marks_seen: AtomicU64,
    heard: tokio::sync::Notify,
}

impl Cache {
    pub fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            marks: Mutex::new(None),
            generation: AtomicU64::new(0),
            live: AtomicBool::new(false),
            recent: Mutex::new(std::collections::VecDeque::with_capacity(RECENT)),
            marks_seen: AtomicU64::new(0),
            heard: tokio::sync::Notify::new(),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.live.load(Ordering::Acquire)
    }

    fn shard(&self, key: &SessionKey) -> &Shard {
        &self.shards[usize::from(key.0[0]) % SHARDS]
    }

    /// Taken before a read from Redis; hand it back to `put`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, key: &SessionKey) -> Option<Arc<SessionRecord>> {
        if !self.enabled() {
            return None;
        }
        let shard = self.shard(key).lock();
        let (at, rec) = shard.get(key)?;
        (at.elapsed() < self.ttl).then(|| Arc::clone(rec))
    }

    pub fn put(&self, key: SessionKey, rec: Arc<SessionRecord>, generation: u64) {
        if !self.enabled() {
            return;
        }
        let mut shard = self.shard(&key).lock();
        // Checked under the lock `forget` also takes, so an announcement
        // cannot slip between the check and the insert.
        if self.generation() != generation {
            return;
        }
        if shard.len() >= SHARD_SOFT_CAP {
            let ttl = self.ttl;
            shard.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        shard.insert(key, (Instant::now(), rec));
    }

    /// This instance changed a record it knows the new state of (a touch).
    pub fn update(&self, key: &SessionKey, f: impl FnOnce(&SessionRecord) -> SessionRecord) {
        let mut shard = self.shard(key).lock();
        if let Some((_, rec)) = shard.get_mut(key) {
            *rec = Arc::new(f(rec));
        }
    }

    pub fn forget(&self, key: &SessionKey) {
        let mut shard = self.shard(key).lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        shard.remove(key);
    }

    pub fn marks(&self) -> Option<Watermarks> {
        if !self.enabled() {
            return None;
        }
        let m = self.marks.lock();
        m.filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, w)| w)
    }

    pub fn put_marks(&self, w: Watermarks, generation: u64) {
        if !self.enabled() {
            return;
        }
        let mut m = self.marks.lock();
        if self.generation() == generation {
            *m = Some((Instant::now(), w));
        }
    }

    pub fn forget_marks(&self) {
        let mut m = self.marks.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        *m = None;
    }

    fn forget_all(&self) {
        self.forget_marks();
        for s in &self.shards {
            let mut shard = s.lock();
            self.generation.fetch_add(1, Ordering::AcqRel);
            shard.clear();
        }
    }

    fn apply(&self, event: &Event) {
        match event {
            Event::Session(k) => {
                self.forget(k);
                let mut recent = self.recent.lock();
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back(*k);
            }
            Event::Marks => {
                self.forget_marks();
                self.marks_seen.fetch_add(1, Ordering::AcqRel);
            }
        }
        self.heard.notify_waiters();
    }

    /// How many watermark announcements have arrived so far.
    pub fn marks_heard(&self) -> u64 {
        self.marks_seen.load(Ordering::Acquire)
    }

    /// Waits (briefly) until this instance has heard the announcement of a
    /// change it made, so that the other instances have been sent it before
    /// the user sees the result. Returns at once when not following.
    pub async fn echo(&self, done: impl Fn(&Cache) -> bool) {
        let deadline = tokio::time::Instant::now() + ECHO_WAIT;
        loop {
            let heard = self.heard.notified();
            tokio::pin!(heard);
            heard.as_mut().enable();
            if !self.enabled() || done(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, heard).await.is_err() {
                tracing::debug!("session cache: an announcement did not come back in time");
                return;
            }
        }
    }

    /// Woken by every announcement, once the cache has dropped what it
    /// makes stale.
    pub fn changes(&self) -> &tokio::sync::Notify {
        &self.heard
    }

    pub fn heard_session(&self, key: &SessionKey) -> bool {
        self.recent.lock().contains(key)
    }

    fn set_live(&self, live: bool) {
        // Forget before trusting (or after distrusting): nothing cached while
        // the subscription was down survives.
        if live {
            self.forget_all();
            self.live.store(true, Ordering::Release);
        } else {
            self.live.store(false, Ordering::Release);
            self.forget_all();
        }
    }

    /// Whether announcements are being received.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}

/// Keeps a subscription to `channel` up for as long as `cache` is held
/// elsewhere, feeding announcements into it. Runs on the store's runtime.
/// Losing it and getting it back are one line each; a subscription made
/// also tells `outage` that Redis answers.
pub async fn follow(
    cache: std::sync::Weak<Cache>,
    connector: Arc<Connector>,
    channel: String,
    outage: Arc<Outage>,
) {
    let mut delay = Duration::from_millis(50);
    let mut lost = false;
    loop {
        let Some(c) = cache.upgrade() else { return };
        if c.ttl.is_zero() {
            return;
        }
        drop(c);
        match subscribe(&connector, &channel).await {
            Ok(mut pubsub) => {
                delay = Duration::from_millis(50);
                if let Some(c) = cache.upgrade() {
                    c.set_live(true);
                }
                outage.succeeded();
                if std::mem::take(&mut lost) {
                    tracing::info!(
                        "session cache: the Redis subscription is back; using the cache again"
                    );
                } else {
                    tracing::debug!("session cache: following {channel}");
                }
                let mut messages = pubsub.on_message();
                while let Some(msg) = messages.next().await {
                    let Some(c) = cache.upgrade() else { return };
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    match Event::decode(&payload) {
                        Some(e) => c.apply(&e),
                        // Unknown announcement (a newer version?): be safe.
                        None => c.forget_all(),
                    }
                }
                lost = true;
                tracing::warn!(
                    "session cache: lost the Redis subscription; reading through until it is back"
                );
            }
            Err(e) => {
                tracing::debug!("session cache: cannot subscribe: {e}");
            }
        }
        if let Some(c) = cache.upgrade() {
            c.set_live(false);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn subscribe(connector: &Connector, channel: &str) -> Result<redis::aio::PubSub, String> {
    let timeout = Duration::from_secs(2);
    let client = connector.pubsub_client().await.map_err(|e| e.to_string())?;
    let mut pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(timeout, pubsub.subscribe(channel))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(pubsub)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    fn rec() -> Arc<SessionRecord> {
        Arc::new(SessionRecord {
            user: "alice".into(),
            created_at: Timestamp::from_millis(1),
            last_seen: Timestamp::from_millis(1),
            client_ip: None,
            user_agent: String::new(),
            password_fingerprint: [0; 8],
            groups: Vec::<String>::new().into(),
            ended: None,
        })
    }

    #[test]
    fn nothing_is_cached_until_the_subscription_is_up() {
        let c = Cache::new(Duration::from_secs(60));
        let k = SessionKey([1; 32]);
        c.put(k, rec(), c.generation());
        assert!(c.get(&k).is_none());
        c.set_live(true);
        c.put(k, rec(), c.generation());
        assert!(c.get(&k).is_some());
        c.set_live(false);
        assert!(c.get(&k).is_none());
        c.set_live(true);
        assert!(c.get(&k).is_none(), "forgotten while down");
    }

    #[test]
    fn a_read_that_raced_an_announcement_is_not_kept() {
        let c = Cache::new(Duration::from_secs(60));
        c.set_live(true);
        let k = SessionKey([2; 32]);
        let before = c.generation();
        c.apply(&Event::Session(SessionKey([3; 32])));
        c.put(k, rec(), before);
        assert!(c.get(&k).is_none());
        c.put(k, rec(), c.generation());
        assert!(c.get(&k).is_some());
        c.apply(&Event::Session(k));
        assert!(c.get(&k).is_none());
    }

    #[test]
    fn events_round_trip() {
        let k = SessionKey([0xab; 32]);
        assert!(
            matches!(Event::decode(&Event::Session(k).encode()), Some(Event::Session(x)) if x == k)
        );
        assert!(matches!(Event::decode("m"), Some(Event::Marks)));
        assert!(Event::decode("s:zz").is_none());
    }
}
