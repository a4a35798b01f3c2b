//! Cookie → session → policy verdict. Ends sessions the policy rejects and
//! touches live ones when due. Never logs a session ID, only its key prefix.

use std::sync::Arc;

use super::cookie;
use super::identity_headers::Identity;
use super::state::{Shared, Snapshot};
use crate::auth::User;
use crate::session::policy::{evaluate, UserState};
use crate::session::store::StoreError;
use crate::session::{EndReason, SessionId, SessionKey, SessionRecord, Verdict};

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
        Identity {
            user: self.user.username.clone(),
            email: self.user.email.clone(),
            name: self.user.name.clone(),
            groups: self.user.groups.clone(),
        }
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

/// The request's `Cookie` headers as one value.
pub fn cookie_header(req: &http::request::Parts) -> Option<String> {
    let values: Vec<&str> = req
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join("; "))
}

/// The session key named by the request's cookie, if it has the right shape.
pub fn session_key(snap: &Snapshot, cookies: Option<&str>) -> Option<Option<SessionKey>> {
    let value = cookie::find(cookies?, snap.settings.session.cookie_name())?;
    Some(SessionId::parse(value).map(|id| id.key()))
}

/// `touch` controls whether `last_seen` may be written (status polls and
/// assets must not keep a session alive).
pub async fn authenticate(
    shared: &Shared,
    snap: &Snapshot,
    cookies: Option<&str>,
    touch: bool,
) -> Result<Auth, StoreError> {
    let key = match session_key(snap, cookies) {
        None => return Ok(Auth::Anonymous),
        Some(None) => return Ok(Auth::Unknown),
        Some(Some(key)) => key,
    };
    let Some(record) = shared.store.get(&key).await? else {
        return Ok(Auth::Unknown);
    };
    let user = snap.users.get(&record.user);
    let state = match user {
        None => UserState::Missing,
        Some(u) if u.disabled => UserState::Disabled,
        Some(u) => UserState::Active {
            password_fingerprint: u.password_fingerprint,
        },
    };
    let now = shared.clock.now();
    let policy = snap.limits(&record.user).policy;
    match (evaluate(&record, state, &policy, now), user) {
        (Verdict::Valid { touch: due }, Some(user)) => {
            if due && touch {
                shared.store.touch(&key, now).await?;
            }
            Ok(Auth::Valid(Authed {
                key,
                record,
                user: Arc::clone(user),
            }))
        }
        (Verdict::Ended(reason), _) => {
            if record.ended.is_none() {
                mark_ended(shared, &key, &record.user, reason).await?;
            }
            Ok(Auth::Ended(reason))
        }
        // evaluate() never passes a session whose user is missing
        (Verdict::Valid { .. }, None) => {
            mark_ended(shared, &key, &record.user, EndReason::Revoked).await?;
            Ok(Auth::Ended(EndReason::Revoked))
        }
    }
}

/// Ends a session the policy rejected, keeping a tombstone so that every
/// request still carrying the cookie (parallel ones too) learns why.
async fn mark_ended(
    shared: &Shared,
    key: &SessionKey,
    user: &str,
    reason: EndReason,
) -> Result<(), StoreError> {
    shared.store.end(key, reason).await?;
    audit_ended(key, user, reason);
    Ok(())
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

/// Removes a session and writes the audit line.
pub async fn end_session(
    shared: &Shared,
    key: &SessionKey,
    user: &str,
    reason: EndReason,
) -> Result<(), StoreError> {
    shared.store.remove(key).await?;
    audit_ended(key, user, reason);
    Ok(())
}
