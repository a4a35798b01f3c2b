//! Admin API handlers: plain values in, status and body out, so they are
//! tested without a socket. Every revoke takes `?dry_run=true` and then
//! only reports the count it would end.

use serde_json::json;

use crate::clock::Timestamp;
use crate::gateway::authenticate::end_counted;
use crate::gateway::device_label::describe;
use crate::gateway::state::Shared;
use crate::gateway::store_refusal;
use crate::metrics::{Invalidation, StoreOp, METRICS};
use crate::session::store::UserSessions;
use crate::session::{EndReason, SessionKey};

pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

fn json_answer(status: u16, value: serde_json::Value) -> Answer {
    Answer {
        status,
        content_type: "application/json",
        body: value.to_string(),
    }
}

fn text(status: u16, body: &str) -> Answer {
    Answer {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.to_string(),
    }
}

pub fn error(status: u16, code: &str, message: &str) -> Answer {
    json_answer(status, json!({"error": code, "message": message}))
}

fn digest(s: &str) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
}

/// Who may call `/api/*`.
pub enum ApiAccess {
    /// Whoever presents this bearer token (`server.admin_token_file`).
    Token(String),
    /// Anyone who reaches the loopback listener: the operator opted in
    /// (`server.admin_allow_unauthenticated`).
    Open,
    /// Nobody: no token is configured and nobody opted in.
    Closed,
}

impl ApiAccess {
    pub fn new(token: Option<String>, allow_unauthenticated: bool) -> Self {
        match token {
            Some(t) => ApiAccess::Token(t),
            None if allow_unauthenticated => ApiAccess::Open,
            None => ApiAccess::Closed,
        }
    }

    /// `None` when the call may go ahead, else the refusal.
    fn refusal(&self, authorization: Option<&str>) -> Option<Answer> {
        match self {
            ApiAccess::Open => None,
            ApiAccess::Closed => Some(error(
                403,
                "forbidden",
                "the admin API needs a token: set server.admin_token_file (or server.admin_allow_unauthenticated = true)",
            )),
            ApiAccess::Token(expected) => (!token_ok(expected, authorization))
                .then(|| error(401, "unauthorized", "a valid bearer token is required")),
        }
    }
}

/// Compares digests, so the time taken says nothing about the token.
fn token_ok(expected: &str, authorization: Option<&str>) -> bool {
    let presented = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    digest(presented).as_ref() == digest(expected).as_ref()
}

fn query_flag(query: &str, name: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == name && (v == "true" || v == "1"))
}

fn query_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn session_json(list: &UserSessions) -> serde_json::Value {
    let items: Vec<_> = list
        .iter()
        .map(|(key, r)| {
            json!({
                "id": key.to_hex(),
                "user": r.user,
                "created_at": r.created_at.as_secs(),
                "last_seen": r.last_seen.as_secs(),
                "ip": r.client_ip.map(|ip| ip.to_string()),
                "device": describe(&r.user_agent),
                "ended": r.ended.map(EndReason::as_str),
            })
        })
        .collect();
    json!({ "sessions": items })
}

const LIST_LIMIT: usize = 10_000;

/// Requests from a web page (they carry `Origin`) are refused outright.
pub fn refuse_browser() -> Answer {
    error(403, "forbidden", "the admin API does not answer browsers")
}

pub async fn handle(
    shared: &Shared,
    access: &ApiAccess,
    method: &str,
    path: &str,
    query: &str,
    authorization: Option<&str>,
) -> Answer {
    match (method, path) {
        ("GET" | "HEAD", "/health") => return text(200, "ok\n"),
        ("GET" | "HEAD", "/ready") => {
            if let Some(sql) = &shared.sql_users {
                if let Err(e) = sql.ping().await {
                    return text(503, &format!("not ready: {e}\n"));
                }
            }
            return match shared.store.ping().await {
                Ok(()) => text(200, "ready\n"),
                Err(e) => text(503, &format!("not ready: {e}\n")),
            };
        }
        ("GET" | "HEAD", "/metrics") => {
            let sessions = shared.store.count().await.ok();
            let mut body = METRICS.render(sessions, shared.store.cache_following());
            if let Some(sql) = &shared.sql_users {
                sql.render_metrics(&mut body);
            }
            shared
                .upstream_health
                .render_metrics(&mut body, &shared.snapshot.load().settings.routes);
            let mut a = text(200, &body);
            a.content_type = "text/plain; version=0.0.4; charset=utf-8";
            return a;
        }
        _ => {}
    }
    if !path.starts_with("/api/") {
        return error(404, "not_found", "no such endpoint");
    }
    if let Some(refusal) = access.refusal(authorization) {
        return refusal;
    }
    let dry_run = query_flag(query, "dry_run");
    let now = shared.clock.now();
    let result = match (method, path.trim_end_matches('/')) {
        ("GET", "/api/sessions") => match query_value(query, "user") {
            // both most recently used first
            Some(user) => shared.store.list_user(&user).await.map(|mut l| {
                l.reverse();
                l
            }),
            None => shared.store.list_all(LIST_LIMIT).await,
        }
        .map(|list| json_answer(200, session_json(&list))),
        ("POST", "/api/revoke-all") => revoke_all(shared, dry_run, now).await,
        ("DELETE", p) => match p.strip_prefix("/api/sessions/") {
            Some(hex) => match SessionKey::from_hex(hex) {
                Some(key) => revoke_one(shared, key, dry_run).await,
                None => Ok(error(
                    400,
                    "bad_request",
                    "a session id is 64 hex characters",
                )),
            },
            None => Ok(error(404, "not_found", "no such endpoint")),
        },
        ("POST", p) => match p
            .strip_prefix("/api/users/")
            .and_then(|r| r.strip_suffix("/revoke"))
        {
            Some(encoded) if !encoded.is_empty() => {
                let user = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
                revoke_user(shared, &user, dry_run).await
            }
            _ => Ok(error(404, "not_found", "no such endpoint")),
        },
        _ => Ok(error(404, "not_found", "no such endpoint")),
    };
    result.unwrap_or_else(|e| {
        store_refusal::count(shared, StoreOp::Admin, &e);
        error(503, "store_unavailable", &e.to_string())
    })
}

type ApiResult = Result<Answer, crate::session::store::StoreError>;

async fn revoke_all(shared: &Shared, dry_run: bool, now: Timestamp) -> ApiResult {
    if dry_run {
        let n = shared.store.count().await?;
        return Ok(json_answer(200, json!({"ended": n, "dry_run": true})));
    }
    let n = shared.store.revoke_all(EndReason::Revoked, now).await?;
    METRICS.invalidation(Invalidation::RevokeAll);
    tracing::warn!(target: "gatehouse::audit", event = "revoke_all", count = n, "security: revoke-all: {n} sessions ended");
    Ok(json_answer(200, json!({"ended": n, "dry_run": false})))
}

async fn revoke_one(shared: &Shared, key: SessionKey, dry_run: bool) -> ApiResult {
    let live = shared.store.get(&key).await?.filter(|r| r.ended.is_none());
    let Some(record) = live else {
        return Ok(error(404, "not_found", "no such live session"));
    };
    if !dry_run {
        end_counted(shared, &key, EndReason::Revoked).await?;
        tracing::info!(target: "gatehouse::audit", event = "session_revoked", user = ?record.user, session = %key, "session revoked by an administrator");
    }
    Ok(json_answer(200, json!({"ended": 1, "dry_run": dry_run})))
}

async fn revoke_user(shared: &Shared, user: &str, dry_run: bool) -> ApiResult {
    let sessions = shared.store.list_user(user).await?;
    if !dry_run {
        for (key, _) in &sessions {
            end_counted(shared, key, EndReason::Revoked).await?;
        }
        METRICS.invalidation(Invalidation::User);
        tracing::warn!(target: "gatehouse::audit", event = "revoke_user", user = ?user, count = sessions.len(), "security: user revocation: {} sessions ended", sessions.len());
    }
    Ok(json_answer(
        200,
        json!({"ended": sessions.len(), "dry_run": dry_run}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_exactly() {
        let token = "s3cret-token-123456";
        assert!(token_ok(token, Some("Bearer s3cret-token-123456")));
        assert!(!token_ok(token, Some("Bearer s3cret-token-12345")));
        assert!(!token_ok(token, Some("s3cret-token-123456")));
        assert!(!token_ok(token, Some("bearer s3cret-token-123456")));
        assert!(!token_ok(token, None));
    }

    #[test]
    fn without_a_token_the_api_is_closed_unless_opted_in() {
        let status = |a: &ApiAccess, auth| a.refusal(auth).map(|r| r.status);
        let closed = ApiAccess::new(None, false);
        assert_eq!(status(&closed, None), Some(403));
        assert_eq!(status(&closed, Some("Bearer anything-at-all")), Some(403));
        assert_eq!(status(&ApiAccess::new(None, true), None), None);
        let token = ApiAccess::new(Some("s3cret-token-123456".into()), false);
        assert_eq!(status(&token, None), Some(401));
        assert_eq!(status(&token, Some("Bearer s3cret-token-123456")), None);
    }

    #[test]
    fn flags_read_from_the_query() {
        assert!(query_flag("dry_run=true", "dry_run"));
        assert!(query_flag("a=b&dry_run=1", "dry_run"));
        assert!(!query_flag("dry_run=false", "dry_run"));
        assert_eq!(
            query_value("user=al%20ice", "user").as_deref(),
            Some("al ice")
        );
    }
}
