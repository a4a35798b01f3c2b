//! `/devices` (the user's own sessions, "this device" marked, sign out one
//! or all others) and `/session` (status JSON that never extends the
//! session). Also renders device lists for the "ask" page.

use minijinja::{context, Value};
use pingora::proxy::Session;

use super::form::read_form;
use super::{forged, require_session, store_refused, Reply, View};
use crate::clock::Timestamp;
use crate::gateway::authenticate::{end_counted, end_session, Authed};
use crate::gateway::device_label;
use crate::gateway::request::Request;
use crate::gateway::state::{Shared, Snapshot};
use crate::metrics::StoreOp;
use crate::session::store::UserSessions;
use crate::session::{EndReason, SessionKey};

const CSRF_PURPOSE: &str = "devices";

/// "Firefox 130 on Linux", in the page's language.
fn device_name(view: &View, user_agent: &str) -> String {
    if user_agent.trim().is_empty() {
        return view.t("device.unknown");
    }
    let d = device_label::parse(user_agent);
    let browser = match (d.browser, d.version) {
        (Some(b), Some(v)) => format!("{b} {v}"),
        (Some(b), None) => b.to_string(),
        (None, _) => view.t("device.unknown_browser"),
    };
    let system = d
        .system
        .map_or_else(|| view.t("device.unknown_system"), str::to_string);
    view.ta("device.on", &[("browser", &browser), ("system", &system)])
}

/// The sessions as template values, most recently used first: `id`,
/// `name`, `address`, `signed_in`, `last_active`, `this` (the session
/// of this browser), `last_used` (the most recently used one) and
/// `suggested` (the least recently used: the one to sign out by default).
pub fn device_list(
    view: &View,
    now: Timestamp,
    sessions: &UserSessions,
    current: Option<SessionKey>,
) -> Vec<Value> {
    let count = sessions.len();
    sessions
        .iter()
        .rev()
        .enumerate()
        .map(|(n, (key, rec))| {
            let address = rec
                .client_ip
                .map_or_else(|| view.t("common.unknown_address"), |ip| ip.to_string());
            context! {
                id => key.to_hex(),
                name => device_name(view, &rec.user_agent),
                address => address,
                signed_in => view.ago(now.since(rec.created_at)),
                last_active => view.ago(now.since(rec.last_seen)),
                this => current == Some(*key),
                last_used => n == 0,
                suggested => n + 1 == count,
            }
        })
        .collect()
}

pub async fn show(shared: &Shared, snap: &Snapshot, session: &Session, req: &Request) -> Reply {
    let view = View::new(snap, session.req_header());
    let authed = match require_session(shared, snap, session, req, "/devices").await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    let sessions = match shared.store.list_user(&authed.user.username).await {
        Ok(s) => s,
        Err(e) => return store_refused(shared, &view, StoreOp::OwnPage, &e),
    };
    let token = shared.signer.token(CSRF_PURPOSE, &authed.key.0);
    let devices = device_list(&view, shared.clock.now(), &sessions, Some(authed.key));
    let others = sessions.iter().filter(|(k, _)| *k != authed.key).count();
    let password_url = match (&shared.sql_users, &snap.settings.ui.password_url) {
        (None, _) => Some(format!("{}/password", view.prefix())),
        (Some(_), url) => url.clone(),
    };
    let html = view.render(
        "devices.html",
        &view.t("devices.title"),
        context! {
            user => authed.user.username,
            devices => devices,
            others => others,
            csrf_token => token,
            password_url => password_url,
        },
    );
    Reply::html(200, html)
}

/// POST `/devices/revoke` (one device) and `/devices/revoke-others`.
pub async fn revoke(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    req: &Request,
    others: bool,
) -> pingora::Result<Reply> {
    let view = View::new(snap, session.req_header());
    let form = match read_form(&view, session).await? {
        Ok(form) => form,
        Err(reply) => return Ok(reply),
    };
    let authed = match require_session(shared, snap, session, req, "/devices").await {
        Ok(a) => a,
        Err(reply) => return Ok(reply),
    };
    let token = form.get("csrf_token");
    if !shared.signer.verify(CSRF_PURPOSE, &authed.key.0, token) {
        let back = vec![(
            format!("{}/devices", view.prefix()),
            view.t("common.your_devices"),
        )];
        return Ok(forged(&view, &view.t("error.not_done"), &back));
    }
    let sessions = match shared.store.list_user(&authed.user.username).await {
        Ok(s) => s,
        Err(e) => return Ok(store_refused(shared, &view, StoreOp::OwnPage, &e)),
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
            return Ok(store_refused(shared, &view, StoreOp::OwnPage, &e));
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
pub async fn status(shared: &Shared, snap: &Snapshot, session: &Session, req: &Request) -> Reply {
    match require_session(shared, snap, session, req, "/session").await {
        Ok(authed) => super::session_status::reply(shared, snap, &authed, authed.record.last_seen),
        Err(reply) => reply,
    }
}
