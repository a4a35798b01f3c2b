//! `/password`: change your own password. The current password is checked
//! under the login throttle (a session is no free guessing oracle). The
//! users file is rewritten atomically with everything else in it kept;
//! every other session of the user ends (reason `password`); this browser
//! continues under a new ID.

use pingora::proxy::Session;

use super::form::read_form;
use super::{busy, forged, message_page, require_session, store_down, store_refused, Reply};
use crate::auth::file::edit;
use crate::gateway::authenticate::{end_counted, end_session, Authed};
use crate::gateway::request::Request;
use crate::gateway::sign_in::{sign_in, SignIn};
use crate::gateway::state::{Shared, Snapshot};
use crate::gateway::throttle::{ban_message, check_password, retry_after, Checked};
use crate::metrics::StoreOp;
use crate::session::EndReason;
use crate::ui::{self, escape, Slot};

const CSRF_PURPOSE: &str = "password";

fn form(
    shared: &Shared,
    snap: &Snapshot,
    authed: &Authed,
    error: Option<&str>,
    status: u16,
) -> Reply {
    let prefix = &snap.settings.server.prefix;
    let token = shared.signer.token(CSRF_PURPOSE, &authed.key.0);
    let notice = error.map_or_else(String::new, |e| {
        format!("<p class=\"notice error\" role=\"alert\">{}</p>", escape(e))
    });
    let min = snap.settings.login.min_password_length.to_string();
    let content = ui::render(
        ui::PASSWORD,
        &[
            ("notice", Slot::Html(&notice)),
            ("prefix", Slot::Text(prefix)),
            ("csrf_token", Slot::Text(&token)),
            ("min_length", Slot::Text(&min)),
        ],
    );
    Reply::html(status, ui::page("Change password", prefix, &content))
}

/// With `[users.sql]` the app owns passwords: its own page, if
/// `ui.password_url` names it, else a page saying so.
fn owned_by_the_app(shared: &Shared, snap: &Snapshot) -> Option<Reply> {
    shared.sql_users.as_ref()?;
    Some(match &snap.settings.ui.password_url {
        Some(url) => Reply::see_other(url.clone()),
        None => Reply::html(
            404,
            message_page(
                snap,
                "Change your password in the app",
                "Passwords are changed in the application itself, not here.",
                "",
            ),
        ),
    })
}

pub async fn show(shared: &Shared, snap: &Snapshot, req: &Request) -> Reply {
    if let Some(reply) = owned_by_the_app(shared, snap) {
        return reply;
    }
    match require_session(shared, snap, req, "/password").await {
        Ok(authed) => form(shared, snap, &authed, None, 200),
        Err(reply) => reply,
    }
}

pub async fn submit(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    req: &Request,
) -> pingora::Result<Reply> {
    if let Some(reply) = owned_by_the_app(shared, snap) {
        return Ok(reply);
    }
    let posted = match read_form(snap, session).await? {
        Ok(posted) => posted,
        Err(reply) => return Ok(reply),
    };
    let field = |name: &str| posted.get(name);
    let authed = match require_session(shared, snap, req, "/password").await {
        Ok(a) => a,
        Err(reply) => return Ok(reply),
    };
    if !shared
        .signer
        .verify(CSRF_PURPOSE, &authed.key.0, field("csrf_token"))
    {
        return Ok(forged(snap, "Not changed", ""));
    }
    let (current, new) = (field("current"), field("new"));
    let min = snap.settings.login.min_password_length;
    let refusal = if new != field("confirm") {
        Some("The two new passwords differ.".to_string())
    } else if new.chars().count() < min {
        Some(format!(
            "The new password must have at least {min} characters."
        ))
    } else if new == current {
        Some("The new password must differ from the current one.".to_string())
    } else {
        None
    };
    if let Some(why) = refusal {
        return Ok(form(shared, snap, &authed, Some(&why), 400));
    }
    // The current password is checked like a login: throttled, counted,
    // audited, and not checked at all while the user or address is banned.
    let ip = req.client_ip();
    let username = &authed.user.username;
    match check_password(
        shared,
        snap,
        username,
        Some(&authed.user),
        current,
        ip,
        "password",
    )
    .await
    {
        Checked::Right => {}
        Checked::Wrong => {
            let wrong = "The current password is not right.";
            return Ok(form(shared, snap, &authed, Some(wrong), 400));
        }
        Checked::Banned(wait) => {
            let message = ban_message(wait);
            return Ok(form(shared, snap, &authed, Some(&message), 429)
                .header("Retry-After", retry_after(wait)));
        }
        Checked::Busy => return Ok(busy(snap)),
        Checked::Unavailable(e) => return Ok(store_refused(shared, snap, StoreOp::OwnPage, &e)),
    }
    let hash = match shared.verifier.hash(new.to_string()).await {
        Ok(h) => h,
        Err(e) => return Ok(not_saved(snap, &e)),
    };

    let username = authed.user.username.clone();
    {
        let _writing = shared.users_file_lock.lock().await;
        let Some(path) = snap.settings.users_file.clone() else {
            return Ok(not_saved(snap, "there is no users file"));
        };
        let (user, h) = (username.clone(), hash.clone());
        let written = tokio::task::spawn_blocking(move || edit::set_password(&path, &user, &h))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match written {
            Ok(users) => shared.swap_users(users),
            Err(e) => return Ok(not_saved(snap, &e)),
        }
    }
    tracing::info!(target: "gatehouse::audit", event = "password_changed", user = ?username, session = %authed.key, "password changed");

    // Every other session ends now; this one continues under a new ID.
    let fresh = shared.snapshot.load_full();
    let others = match shared.store.list_user(&username).await {
        Ok(list) => list,
        Err(e) => return Ok(store_refused(shared, snap, StoreOp::OwnPage, &e)),
    };
    for (key, _) in others.iter().filter(|(k, _)| *k != authed.key) {
        if let Err(e) = end_counted(shared, key, EndReason::Password).await {
            return Ok(store_refused(shared, snap, StoreOp::OwnPage, &e));
        }
    }
    if let Err(e) = end_session(shared, &authed.key, &username, EndReason::Password).await {
        return Ok(store_refused(shared, snap, StoreOp::OwnPage, &e));
    }
    let Some(user) = fresh.users.get(&username) else {
        return Ok(not_saved(snap, "the user vanished from the users file"));
    };
    let set_cookie = match sign_in(shared, &fresh, session, req, user, None).await {
        Ok(SignIn::Done { set_cookie, .. }) => set_cookie,
        Ok(SignIn::Full { .. }) => return Ok(store_down(snap)),
        Err(e) => return Ok(store_refused(shared, snap, StoreOp::OwnPage, &e)),
    };
    let action = format!(
        "<p class=\"aside\"><a href=\"/\">Continue</a> · <a href=\"{}/devices\">Your devices</a></p>",
        escape(&snap.settings.server.prefix)
    );
    Ok(Reply::html(
        200,
        message_page(
            snap,
            "Password changed",
            "Your password was changed and every other device was signed out.",
            &action,
        ),
    )
    .header("Set-Cookie", set_cookie))
}

fn not_saved(snap: &Snapshot, why: &str) -> Reply {
    tracing::error!("password change not saved: {why}");
    Reply::html(
        500,
        message_page(
            snap,
            "Not changed",
            "The new password could not be saved. Your password is unchanged.",
            "",
        ),
    )
}
