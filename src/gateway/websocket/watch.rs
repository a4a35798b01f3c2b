//! Watching the session behind an open socket: the same check a request
//! gets (`authenticate::check`), repeated at least every `RECHECK`, at the
//! moment the record says the idle or absolute timeout falls, and at once
//! when the store announces that a session ended or a watermark moved
//! (`SessionStore::changes`), with a touch when the client sent data
//! frames since the last look.
//!
//! Every way a session ends shows up in that check on every instance: a
//! logout, revoke, eviction or password change leaves a tombstone or moves
//! a watermark in the store (with Redis, each instance's cache drops the
//! record as soon as the change is announced, and is not used while the
//! announcements are not heard), a schedule is evaluated at the time of
//! the check, and the timeouts are worked out from the record.
//!
//! Never ends a socket because the store could not answer, unless the
//! last record read says a timeout has passed since.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

use crate::clock::Timestamp;
use crate::gateway::authenticate::{check, Auth, Authed};
use crate::gateway::state::{Shared, Snapshot};
use crate::session::{EndReason, SessionKey};

/// The longest a socket goes without its session being checked: with the
/// time the close takes, the 2 s DESIGN.md allows.
const RECHECK: Duration = Duration::from_secs(1);
/// The shortest wait between checks, should the clock and the timer
/// disagree about a deadline that has just passed, or changes come in a
/// burst.
const MIN_WAIT: Duration = Duration::from_millis(20);

/// Returns once the session `key` is over, and why.
pub async fn until_ended(shared: &Shared, key: SessionKey, activity: &AtomicBool) -> EndReason {
    // When and why the session ends by itself, as last read.
    let mut timeout: Option<(Timestamp, EndReason)> = None;
    let never = Notify::new();
    let changes = shared.store.changes().unwrap_or(&never);
    loop {
        // Listening before the check: a change announced while it runs
        // is not missed.
        let changed = changes.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let snap = shared.snapshot.load_full();
        let touch = activity.swap(false, Ordering::Relaxed);
        let now = shared.clock.now();
        let wait = match check(shared, &snap, key, None, touch).await {
            Ok(Auth::Valid(authed)) => {
                let (at, why) = times_out(&snap, &authed);
                timeout = Some((at, why));
                at.since(now)
            }
            Ok(Auth::Ended(reason)) => return reason,
            // The record is gone altogether (removed, or swept): nothing
            // says why, and nothing keeps the socket open.
            Ok(Auth::Anonymous | Auth::Unknown) => return EndReason::Revoked,
            Err(e) => {
                tracing::debug!(session = %key, "websocket: session not checked: {e}");
                if touch {
                    activity.store(true, Ordering::Relaxed);
                }
                match timeout {
                    Some((at, why)) if now >= at => return why,
                    Some((at, _)) => at.since(now),
                    None => RECHECK,
                }
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait.clamp(MIN_WAIT, RECHECK)) => {}
            () = &mut changed => {
                // A burst of changes (a mass logout) costs one check.
                tokio::time::sleep(MIN_WAIT).await;
            }
        }
    }
}

/// When the live session `authed` times out if nothing touches it, and
/// the reason it will be given.
fn times_out(snap: &Snapshot, authed: &Authed) -> (Timestamp, EndReason) {
    let policy = snap.limits(&authed.user).policy;
    let idle = authed.record.last_seen.plus(policy.idle_timeout);
    let expired = authed.record.created_at.plus(policy.absolute_timeout);
    if expired <= idle {
        (expired, EndReason::Expired)
    } else {
        (idle, EndReason::Idle)
    }
}
