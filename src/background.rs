//! Background services: reload on SIGHUP (Pingora has no handler of its
//! own), and the sweep of dead sessions.

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::reload::{describe_changes, needs_restart};
use crate::gateway::state::Shared;

/// Re-reads the config and users file on SIGHUP; swaps them in if valid,
/// keeps serving the old ones (and says why) if not.
pub struct Reloader {
    pub shared: Arc<Shared>,
    pub config_path: PathBuf,
}

impl Reloader {
    pub async fn reload(&self) -> Result<Vec<String>, String> {
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
        self.shared.snapshot.store(Arc::new(new));
        Ok(changes)
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
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
                        Ok(changes) if changes.is_empty() => {
                            tracing::info!(target: "gatehouse::audit", event = "config_reload", ok = true, "config reloaded: no changes");
                        }
                        Ok(changes) => {
                            tracing::info!(target: "gatehouse::audit", event = "config_reload", ok = true, "config reloaded: {}", changes.join(", "));
                        }
                        Err(e) => {
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
/// so memory is bounded by live sessions.
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
                    match self.shared.store.sweep(now, policy.idle_timeout, policy.absolute_timeout).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!("swept {n} dead sessions"),
                        Err(e) => tracing::warn!("session sweep failed: {e}"),
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
