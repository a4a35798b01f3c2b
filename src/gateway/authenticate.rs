//! Cookie → session → policy verdict. Ends sessions the policy rejects and
//! touches live ones when due. Never logs a session ID, only its key prefix.

use std::sync::Arc;

use super::state::{Shared, Snapshot};
use super::store_refusal::Unanswered;
use crate::auth::{User, UserSource};
use crate::clock::Timestamp;
use crate::metrics::METRICS;
use crate::session::policy::{evaluate, touch_interval, UserState};
use crate::session::store::{Lookup, StoreError, TouchIfDue};
use crate::session::{EndReason, SessionId, SessionKey, SessionRecord, Verdict, Watermarks};
use crate::wire::cookie;
use crate::wire::identity_headers::Identity;

pub enum Auth {
    /// No session cookie.
    Anonymous,
    /// A cookie the store does not know: ignored, and cleared in the browser.
    Unknown,
    /// The session ended on this request, for this reason.
    Ended(EndReason),
    Valid(Authed),
}

pub struct Authed {
    pub key: SessionKey,
    pub record: Arc<SessionRecord>,
    pub user: Arc<User>,
}

impl Authed {
    pub fn identity(&self) -> Identity {
        identity_of(&self.user)
    }
}

/// Who the upstream is told `user` is (for the signed assertion and
/// forward auth; a forwarded request's headers use the values prepared
/// on the `User`).
pub fn identity_of(user: &User) -> Identity {
    Identity {
        user: user.username.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        groups: user.groups.clone(),
    }
}

impl Auth {
    pub fn had_cookie(&self) -> bool {
        !matches!(self, Auth::Anonymous)
    }

    pub fn reason(&self) -> Option<EndReason> {
        match self {
            Auth::Ended(r) => Some(*r),
            _ => None,
        }
    }
}

/// What the session cookie names: a key (if the value has the shape of
/// an ID) and when it was issued (if it says).
pub struct CookieSession {
    pub key: Option<SessionKey>,
    pub issued: Option<Timestamp>,
}

/// `None` when the request carries no session cookie at all. Of several
/// (a stale copy beside the live one), the first with the shape of an ID.
pub fn read_cookie(snap: &Snapshot, cookies: Option<&[u8]>) -> Option<CookieSession> {
    let cookies = cookies?;
    let name = snap.settings.session.cookie_name();
    let mut values = cookie::values(cookies, name).peekable();
    values.peek()?;
    let parsed = values.find_map(SessionId::cookie_key);
    Some(match parsed {
        Some((key, issued)) => CookieSession {
            key: Some(key),
            issued,
        },
        None => CookieSession {
            key: None,
            issued: None,
        },
    })
}

/// `touch` controls whether `last_seen` may be written (status polls and
/// own pages must not keep a session alive).
pub async fn authenticate(
    shared: &Shared,
    snap: &Snapshot,
    cookies: Option<&[u8]>,
    touch: bool,
) -> Result<Auth, Unanswered> {
    let Some(cookie) = read_cookie(snap, cookies) else {
        return Ok(Auth::Anonymous);
    };
    let Some(key) = cookie.key else {
        return Ok(Auth::Unknown);
    };
    check(shared, snap, key, cookie.issued, touch).await
}

/// The policy's verdict on the session `key` names, as for a request
/// carrying its cookie (`issued`: when the cookie says it was issued):
/// ends it if the policy says so, touches it when due and `touch`. Also
/// asked again and again for a session an open WebSocket depends on.
pub async fn check(
    shared: &Shared,
    snap: &Snapshot,
    key: SessionKey,
    issued: Option<Timestamp>,
    touch: bool,
) -> Result<Auth, Unanswered> {
    let now = shared.clock.now();
    // One read (one round trip to a remote store on a cache miss), which
    // may touch the record too when a touch is due by the shortest
    // interval any user has: never later than the user's own policy asks.
    let ahead = touch.then(|| TouchIfDue {
        at: now,
        after: touch_interval(snap.shortest.idle_timeout),
        within: snap.shortest,
    });
    let Lookup {
        marks: global,
        record,
        touched,
    } = shared.store.lookup(&key, ahead).await?;
    let Some(mut record) = record else {
        return Ok(unknown(shared, snap, global, issued, now));
    };
    let user = shared
        .users(snap)
        .session_lookup(&record.user)
        .await
        .map_err(Unanswered::Users)?;
    let mut verdict = judge(snap, &record, user.as_ref(), global, now);
    // A cached copy may be a little behind (another instance's touch):
    // before ending a session on its word, read the record itself.
    if verdict.is_err() && record.ended.is_none() {
        let Some(fresh) = shared.store.get_fresh(&key).await? else {
            return Ok(unknown(shared, snap, global, issued, now));
        };
        record = fresh;
        verdict = judge(snap, &record, user.as_ref(), global, now);
    }
    match verdict {
        Ok((user, due)) => {
            if due && touch && !touched {
                shared.store.touch(&key, &record.user, now).await?;
            }
            Ok(Auth::Valid(Authed {
                key,
                record,
                user: Arc::clone(user),
            }))
        }
        Err(reason) => {
            if record.ended.is_none() {
                end_session(shared, &key, &record.user, reason).await?;
            }
            Ok(Auth::Ended(reason))
        }
    }
}

/// The policy's verdict on a record, under the user's current state: the
/// session's user and whether a touch is due, or why the session is over.
fn judge<'a>(
    snap: &Snapshot,
    record: &SessionRecord,
    user: Option<&'a Arc<User>>,
    global: Watermarks,
    now: Timestamp,
) -> Result<(&'a Arc<User>, bool), EndReason> {
    let Some(user) = user else {
        return Err(record.ended.unwrap_or(EndReason::Revoked));
    };
    let state = if user.disabled {
        UserState::Disabled
    } else {
        UserState::Active {
            password_fingerprint: user.password_fingerprint,
        }
    };
    let marks = snap.marks_for(global, &user.groups, now);
    let policy = snap.limits(user).policy;
    match evaluate(record, state, &policy, &marks, now) {
        Verdict::Valid { touch } => Ok((user, touch)),
        Verdict::Ended(reason) => Err(reason),
    }
}

/// A cookie whose session the store does not hold: if it was issued
/// before something that signed everyone out, say so.
fn unknown(
    shared: &Shared,
    snap: &Snapshot,
    global: Watermarks,
    issued: Option<Timestamp>,
    now: Timestamp,
) -> Auth {
    // The store drops a record only when it is dead (the sweep), ended by a
    // watermark, or lost with the process: say which is most likely.
    let Some(t) = issued else {
        return Auth::Unknown;
    };
    let reason = if let Some(r) = snap.marks_for(global, &[], now).reason(t) {
        r
    } else if t < shared.started_at && !shared.sessions_restored {
        EndReason::Restart
    } else if now.since(t) >= snap.settings.session.absolute_timeout {
        EndReason::Expired
    } else {
        EndReason::Idle
    };
    Auth::Ended(reason)
}

/// Ends a session on someone's behalf, keeping a tombstone; counts it, and
/// says so, only if it was still live (a parallel request may have ended
/// it first). The caller writes the audit line that fits.
pub async fn end_counted(
    shared: &Shared,
    key: &SessionKey,
    reason: EndReason,
) -> Result<bool, StoreError> {
    let ended = shared.store.end(key, reason).await?.is_some();
    if ended {
        METRICS.session_ended(reason);
    }
    Ok(ended)
}

fn audit_ended(key: &SessionKey, user: &str, reason: EndReason) {
    tracing::info!(
        target: "gatehouse::audit",
        event = "session_ended",
        user,
        session = %key,
        reason = reason.as_str(),
        "session ended"
    );
}

/// Ends a session (the policy's verdict, a logout, a password change) and
/// writes the audit line if it was still live. A tombstone is kept, so
/// every request still carrying the cookie, parallel ones and a copy
/// replayed after a logout included, learns why.
pub async fn end_session(
    shared: &Shared,
    key: &SessionKey,
    user: &str,
    reason: EndReason,
) -> Result<(), StoreError> {
    if end_counted(shared, key, reason).await? {
        audit_ended(key, user, reason);
    }
    Ok(())
}
