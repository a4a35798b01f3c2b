//! Background services: reload on SIGHUP (Pingora has no handler of its
//! own), and the sweep of dead sessions.

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::services::ServiceReadyNotifier;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::reload::{describe_changes, needs_restart};
use crate::gateway::state::Shared;
use crate::metrics::{Invalidation, METRICS};

/// Re-reads the config and users file on SIGHUP; swaps them in if valid,
/// keeps serving the old ones (and says why) if not.
pub struct Reloader {
    pub shared: Arc<Shared>,
    pub config_path: PathBuf,
}

impl Reloader {
    pub async fn reload(&self) -> Result<Vec<String>, String> {
        // A password change writes the users file and swaps it in under
        // this lock; a reload must not interleave and bring back the old hash.
        let _users_file = self.shared.users_file_lock.lock().await;
        let path = self.config_path.clone();
        let loaded = tokio::task::spawn_blocking(move || crate::server::load_snapshot(&path))
            .await
            .map_err(|e| e.to_string())?;
        let new = loaded.map_err(|e| e.to_string())?;
        let old = self.shared.snapshot.load_full();
        let fixed = needs_restart(&old, &new);
        if !fixed.is_empty() {
            tracing::warn!(
                target: "gatehouse::audit",
                "config reload: {} changed but only take effect after a restart",
                fixed.join(", ")
            );
        }
        let changes = describe_changes(&old, &new);
        let tls = new.settings.server.tls.clone();
        self.shared.snapshot.store(Arc::new(new));
        if let Some(edge) = &self.shared.tls {
            edge.reloaded(tls.as_ref());
        }
        Ok(changes)
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    /// Ready once SIGHUP is handled: the gateway says it is listening only
    /// then, because until this handler is in place a SIGHUP ends the process.
    async fn start_with_ready_notifier(
        &self,
        mut shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        ready.notify_ready();
        let mut hup = match hup {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGHUP, reload is disabled: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    match self.reload().await {
                        Ok(changes) => {
                            METRICS.reload(true);
                            let what = if changes.is_empty() { "no changes".to_string() } else { changes.join(", ") };
                            tracing::info!(target: "gatehouse::audit", event = "config_reload", ok = true, "config reloaded: {what}");
                        }
                        Err(e) => {
                            METRICS.reload(false);
                            tracing::error!(target: "gatehouse::audit", event = "config_reload", ok = false, "config reload failed, still serving the previous config: {e}");
                        }
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Drops sessions that are dead under every user's policy, once a minute,
/// and the app database's records of users left without one, so memory is
/// bounded by live sessions.
pub struct Sweeper {
    pub shared: Arc<Shared>,
    pub every: Duration,
}

#[async_trait]
impl BackgroundService for Sweeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(self.every);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let policy = self.shared.snapshot.load().most_generous();
                    let now = self.shared.clock.now();
                    match self.shared.store.sweep(now, &policy).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!("swept {n} dead sessions"),
                        Err(e) => tracing::warn!("session sweep failed: {e}"),
                    }
                    if let Some(sql) = &self.shared.sql_users {
                        let n = sql.prune(now, policy.idle_timeout);
                        if n > 0 {
                            tracing::debug!("forgot the database records of {n} users without a live session");
                        }
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Logs each scheduled invalidation when it fires, with the sessions it
/// ended. Enforcement does not depend on this task: requests evaluate the
/// schedule themselves.
pub struct ScheduleWatch {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl BackgroundService for ScheduleWatch {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let snap = self.shared.snapshot.load_full();
            let now = self.shared.clock.now();
            let next = snap
                .settings
                .schedules
                .iter()
                .filter_map(|s| s.next_fire(now).map(|t| (t, Arc::clone(s))))
                .min_by_key(|(t, _)| *t);
            // Re-read the schedules at least hourly, so a reload takes effect.
            let wait = next.as_ref().map_or(Duration::from_secs(3600), |(t, _)| {
                t.since(now).min(Duration::from_secs(3600))
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            let Some((at, schedule)) = next else { continue };
            if self.shared.clock.now() < at {
                continue;
            }
            let ended = match self.shared.store.list_all(usize::MAX).await {
                Ok(all) => all
                    .iter()
                    .filter(|(_, r)| {
                        r.ended.is_none() && r.created_at < at && !schedule.exempts(&r.groups)
                    })
                    .count(),
                Err(e) => {
                    tracing::warn!("scheduled invalidation: cannot count sessions: {e}");
                    0
                }
            };
            METRICS.invalidation(Invalidation::Scheduled);
            tracing::warn!(
                target: "gatehouse::audit",
                event = "scheduled_invalidation",
                cron = %schedule.cron_text,
                timezone = %schedule.timezone_name,
                count = ended,
                "security: scheduled invalidation: {ended} sessions ended"
            );
        }
    }
}

/// Hands memory freed after a burst (a flood of connections that went away)
/// back to the OS. mimalloc returns freed pages only after a delay (1 s),
/// and only when some thread later calls into it; the worker threads of a
/// gateway that has gone quiet never do, so the pages stayed resident. This
/// tick is that call. It is cheap when nothing is due.
pub struct MemoryRelease {
    pub every: Duration,
}

#[async_trait]
impl BackgroundService for MemoryRelease {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(self.every);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // SAFETY: no arguments beyond a flag and no state of
                    // ours; mimalloc may be called from any thread. When
                    // mimalloc is not the allocator (library tests) it has
                    // nothing to release.
                    unsafe { libmimalloc_sys::mi_collect(false) };
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
