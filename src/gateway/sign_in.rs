//! Starting a session for a verified user: a fresh ID, the device limit
//! applied atomically by the store, the cookie. Shared by the login form,
//! the "ask" page and the password change.

use pingora::proxy::Session;
use std::sync::Arc;

use super::request::Request;
use super::respond::Reply;
use super::state::{Shared, Snapshot};
use crate::auth::User;
use crate::config::OnDeviceLimit;
use crate::metrics::{Login, METRICS};
use crate::session::store::{Admission, DeviceLimit, OnFull, StoreError, UserSessions};
use crate::session::{Liveness, SessionId, SessionKey, SessionRecord};
use crate::wire::cookie;

pub enum SignIn {
    /// Signed in: the `Set-Cookie` value for the new session.
    Done { set_cookie: String, key: SessionKey },
    /// At the device limit; these are the user's live sessions.
    Full { live: UserSessions },
}

pub fn user_agent(session: &Session) -> String {
    session
        .req_header()
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(512)
        .collect()
}

/// `end_first` is the device picked on the "ask" page, ended in the same
/// atomic step as the insertion.
pub async fn sign_in(
    shared: &Shared,
    snap: &Snapshot,
    session: &Session,
    req: &Request,
    user: &Arc<User>,
    end_first: Option<SessionKey>,
) -> Result<SignIn, StoreError> {
    let id = SessionId::generate(&shared.rng)
        .map_err(|_| StoreError("no randomness available for a session ID".into()))?;
    let key = id.key();
    let now = shared.clock.now();
    let limits = snap.limits(user);
    let record = SessionRecord {
        user: user.username.clone(),
        created_at: now,
        last_seen: now,
        client_ip: req.client_ip(),
        user_agent: user_agent(session),
        password_fingerprint: user.password_fingerprint,
        groups: user.groups.clone(),
        ended: None,
    };
    let global = shared.store.watermarks().await?;
    let on_full = match snap.settings.session.on_device_limit {
        OnDeviceLimit::EvictOldest => OnFull::EvictLeastRecent,
        OnDeviceLimit::Reject | OnDeviceLimit::Ask => OnFull::Refuse,
    };
    let limit = DeviceLimit {
        max: limits.max_devices,
        on_full,
        liveness: Liveness {
            now,
            policy: limits.policy,
            marks: snap.marks_for(global, &user.groups, now),
            password_fingerprint: user.password_fingerprint,
        },
        end_first,
    };
    match shared.store.insert(key, record, limit).await? {
        Admission::Full { live } => Ok(SignIn::Full { live }),
        Admission::Inserted { evicted } => {
            for victim in evicted {
                METRICS.session_ended(crate::session::EndReason::Evicted);
                tracing::info!(
                    target: "gatehouse::audit",
                    event = "session_evicted",
                    user = ?user.username,
                    session = %victim,
                    by = %key,
                    "session evicted by a new login"
                );
            }
            METRICS.login(Login::Ok);
            tracing::info!(target: "gatehouse::audit", event = "login_ok", user = ?user.username, session = %key, "login ok");
            let s = &snap.settings.session;
            let set_cookie = cookie::set(
                s.cookie_name(),
                &id.cookie_value(now),
                s.cookie_secure,
                Some(limits.policy.absolute_timeout),
            );
            Ok(SignIn::Done { set_cookie, key })
        }
    }
}

/// 303 to `rd` with the new session's cookie.
pub fn signed_in(rd: &str, set_cookie: String) -> Reply {
    Reply::see_other(rd.to_string()).header("Set-Cookie", set_cookie)
}
