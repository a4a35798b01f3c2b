//! `/devices` (the user's own sessions, "this device" marked, sign out one
//! or all others) and `/session` (status JSON that never extends the
//! session). Also renders device lists for the "ask" page.

use pingora::proxy::Session;

use super::form::read_form;
use super::{forged, require_session, store_refused, Reply};
use crate::clock::Timestamp;
use crate::gateway::authenticate::{end_counted, end_session, Authed};
use crate::gateway::device_label::describe;
use crate::gateway::request::Request;
use crate::gateway::state::{Shared, Snapshot};
use crate::metrics::StoreOp;
use crate::session::store::UserSessions;
use crate::session::{EndReason, SessionKey};
use crate::ui::{self, escape, Slot};

const CSRF_PURPOSE: &str = "devices";

pub enum ItemControl<'a> {
    /// A radio button (the "ask" page).
    Choose,
    /// A "Sign out" button posting to `/devices/revoke` with this token.
    Revoke {
        csrf_token: &'a str,
        prefix: &'a str,
    },
}

/// `<li>` items describing sessions, most recently used first.
pub fn device_items(
    now: Timestamp,
    sessions: &UserSessions,
    current: Option<SessionKey>,
    control: ItemControl,
) -> String {
    let mut out = String::new();
    for (n, (key, rec)) in sessions.iter().rev().enumerate() {
        let this = current == Some(*key);
        let ip = rec
            .client_ip
            .map_or_else(|| "unknown address".to_string(), |ip| ip.to_string());
        let label = format!(
            "{}{}<span class=\"meta\">{} · last active {} · signed in {}</span>",
            escape(&describe(&rec.user_agent)),
            if this {
                " <span class=\"this-device\">(this device)</span>"
            } else {
                ""
            },
            escape(&ip),
            ui::ago(now.since(rec.last_seen)),
            ui::ago(now.since(rec.created_at)),
        );
        let hex = key.to_hex();
        let item = match &control {
            ItemControl::Choose => format!(
                "<li><input type=\"radio\" name=\"device\" id=\"d{n}\" value=\"{hex}\"{}><label for=\"d{n}\">{label}</label></li>\n",
                if n == sessions.len() - 1 { " checked" } else { "" }
            ),
            ItemControl::Revoke { .. } if this => format!("<li><label>{label}</label></li>\n"),
            ItemControl::Revoke { csrf_token, prefix } => format!(
                "<li><label>{label}</label><form method=\"post\" action=\"{}/devices/revoke\">\
                 <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
                 <input type=\"hidden\" name=\"device\" value=\"{hex}\">\
                 <button type=\"submit\">Sign out</button></form></li>\n",
                escape(prefix),
                escape(csrf_token)
            ),
        };
        out.push_str(&item);
    }
    out
}

pub async fn show(shared: &Shared, snap: &Snapshot, req: &Request) -> Reply {
    let authed = match require_session(shared, snap, req, "/devices").await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    let sessions = match shared.store.list_user(&authed.user.username).await {
        Ok(s) => s,
        Err(e) => return store_refused(shared, snap, StoreOp::OwnPage, &e),
    };
    let token = shared.signer.token(CSRF_PURPOSE, &authed.key.0);
    let prefix = &snap.settings.server.prefix;
    let items = device_items(
        shared.clock.now(),
        &sessions,
        Some(authed.key),
        ItemControl::Revoke {
            csrf_token: &token,
            prefix,
        },
    );
    let content = ui::render(
        ui::DEVICES,
        &[
            ("user", Slot::Text(&authed.user.username)),
            ("devices", Slot::Html(&items)),
            ("prefix", Slot::Text(prefix)),
            ("csrf_token", Slot::Text(&token)),
        ],
    );
    Reply::html(200, ui::page("Your devices", prefix, &content))
}

/// POST `/devices/revoke` (one device) and `/devices/revoke-others`.
pub async fn revoke(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    req: &Request,
    others: bool,
) -> pingora::Result<Reply> {
    let form = match read_form(snap, session).await? {
        Ok(form) => form,
        Err(reply) => return Ok(reply),
    };
    let authed = match require_session(shared, snap, req, "/devices").await {
        Ok(a) => a,
        Err(reply) => return Ok(reply),
    };
    let token = form.get("csrf_token");
    if !shared.signer.verify(CSRF_PURPOSE, &authed.key.0, token) {
        return Ok(forged(snap, "Not done", ""));
    }
    let sessions = match shared.store.list_user(&authed.user.username).await {
        Ok(s) => s,
        Err(e) => return Ok(store_refused(shared, snap, StoreOp::OwnPage, &e)),
    };
    let wanted = SessionKey::from_hex(form.get("device"));
    let victims = sessions.iter().map(|(k, _)| *k).filter(|k| {
        if others {
            *k != authed.key
        } else {
            Some(*k) == wanted
        }
    });
    for victim in victims.collect::<Vec<_>>() {
        if let Err(e) = end_other(shared, &authed, victim).await {
            return Ok(store_refused(shared, snap, StoreOp::OwnPage, &e));
        }
    }
    let to = if !others && wanted == Some(authed.key) {
        crate::gateway::redirect::login_url(
            &snap.settings.server.prefix,
            None,
            Some(EndReason::Logout.as_str()),
        )
    } else {
        format!("{}/devices", snap.settings.server.prefix)
    };
    Ok(Reply::see_other(to))
}

/// Ends one of the user's sessions; its next request is told it was signed out.
async fn end_other(
    shared: &Shared,
    authed: &Authed,
    victim: SessionKey,
) -> Result<(), crate::session::store::StoreError> {
    if victim == authed.key {
        return end_session(shared, &victim, &authed.user.username, EndReason::Logout).await;
    }
    if end_counted(shared, &victim, EndReason::Logout).await? {
        tracing::info!(
            target: "gatehouse::audit",
            event = "session_revoked",
            user = ?authed.user.username,
            session = %victim,
            by = %authed.key,
            "session signed out from the devices page"
        );
    }
    Ok(())
}

/// GET `/session`: who is signed in and for how long; never a touch.
pub async fn status(shared: &Shared, snap: &Snapshot, req: &Request) -> Reply {
    let authed = match require_session(shared, snap, req, "/session").await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    let now = shared.clock.now();
    let policy = snap.limits(&authed.user).policy;
    let rec = &authed.record;
    let left = |limit: std::time::Duration, since: Timestamp| {
        limit.saturating_sub(now.since(since)).as_secs()
    };
    Reply::json(
        200,
        &serde_json::json!({
            "user": authed.user.username,
            "groups": authed.user.groups,
            "created_at": rec.created_at.as_secs(),
            "last_seen": rec.last_seen.as_secs(),
            "idle_expires_in": left(policy.idle_timeout, rec.last_seen),
            "absolute_expires_in": left(policy.absolute_timeout, rec.created_at),
        }),
    )
}
