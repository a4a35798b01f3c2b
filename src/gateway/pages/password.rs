//! `/password`: change your own password. The current password is checked
//! under the login throttle (a session is no free guessing oracle). The
//! users file is rewritten atomically with everything else in it kept;
//! every other session of the user ends (reason `password`); this browser
//! continues under a new ID.

use minijinja::context;
use pingora::proxy::Session;

use super::form::read_form;
use super::{busy, forged, require_session, store_down, store_refused, Reply, View};
use crate::auth::file::edit;
use crate::gateway::authenticate::{end_counted, end_session, Authed};
use crate::gateway::request::Request;
use crate::gateway::sign_in::{sign_in, SignIn};
use crate::gateway::state::{Shared, Snapshot};
use crate::gateway::throttle::{ban_minutes, check_password, retry_after, Checked};
use crate::metrics::StoreOp;
use crate::session::EndReason;

const CSRF_PURPOSE: &str = "password";

fn form(shared: &Shared, view: &View, authed: &Authed, error: Option<&str>, status: u16) -> Reply {
    let token = shared.signer.token(CSRF_PURPOSE, &authed.key.0);
    let html = view.render(
        "password.html",
        &view.t("password.title"),
        context! {
            notice => error,
            csrf_token => token,
            min_length => view.snap.settings.login.min_password_length,
        },
    );
    Reply::html(status, html)
}

/// With `[users.sql]` the app owns passwords: its own page, if
/// `ui.password_url` names it, else a page saying so.
fn owned_by_the_app(shared: &Shared, view: &View) -> Option<Reply> {
    shared.sql_users.as_ref()?;
    Some(match &view.snap.settings.ui.password_url {
        Some(url) => Reply::see_other(url.clone()),
        None => Reply::html(
            404,
            view.message_page(
                &view.t("password.in_app_title"),
                &view.t("password.in_app"),
                &[],
            ),
        ),
    })
}

pub async fn show(shared: &Shared, snap: &Snapshot, session: &Session, req: &Request) -> Reply {
    let view = View::new(snap, session.req_header());
    if let Some(reply) = owned_by_the_app(shared, &view) {
        return reply;
    }
    match require_session(shared, snap, session, req, "/password").await {
        Ok(authed) => form(shared, &view, &authed, None, 200),
        Err(reply) => reply,
    }
}

pub async fn submit(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    req: &Request,
) -> pingora::Result<Reply> {
    let view = View::new(snap, session.req_header());
    if let Some(reply) = owned_by_the_app(shared, &view) {
        return Ok(reply);
    }
    let posted = match read_form(&view, session).await? {
        Ok(posted) => posted,
        Err(reply) => return Ok(reply),
    };
    let field = |name: &str| posted.get(name);
    let authed = match require_session(shared, snap, session, req, "/password").await {
        Ok(a) => a,
        Err(reply) => return Ok(reply),
    };
    if !shared
        .signer
        .verify(CSRF_PURPOSE, &authed.key.0, field("csrf_token"))
    {
        let again = vec![(
            format!("{}/password", view.prefix()),
            view.t("common.change_password"),
        )];
        return Ok(forged(&view, &view.t("password.not_changed"), &again));
    }
    let (current, new) = (field("current"), field("new"));
    let min = snap.settings.login.min_password_length;
    let refusal = if new != field("confirm") {
        Some(view.t("password.differ"))
    } else if new.chars().count() < min {
        Some(view.tn("password.too_short", min))
    } else if new == current {
        Some(view.t("password.same"))
    } else {
        None
    };
    if let Some(why) = refusal {
        return Ok(form(shared, &view, &authed, Some(&why), 400));
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
            let wrong = view.t("password.wrong");
            return Ok(form(shared, &view, &authed, Some(&wrong), 400));
        }
        Checked::Banned(wait) => {
            let message = view.tn("login.banned", ban_minutes(wait));
            return Ok(form(shared, &view, &authed, Some(&message), 429)
                .header("Retry-After", retry_after(wait)));
        }
        Checked::Busy => return Ok(busy(&view)),
        Checked::Unavailable(e) => return Ok(store_refused(shared, &view, StoreOp::OwnPage, &e)),
    }
    let hash = match shared.verifier.hash(new.to_string()).await {
        Ok(h) => h,
        Err(e) => return Ok(not_saved(&view, &e)),
    };

    let username = authed.user.username.clone();
    {
        let _writing = shared.users_file_lock.lock().await;
        let Some(path) = snap.settings.users_file.clone() else {
            return Ok(not_saved(&view, "there is no users file"));
        };
        let (user, h) = (username.clone(), hash.clone());
        let written = tokio::task::spawn_blocking(move || edit::set_password(&path, &user, &h))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match written {
            Ok(users) => shared.swap_users(users),
            Err(e) => return Ok(not_saved(&view, &e)),
        }
    }
    tracing::info!(target: "gatehouse::audit", event = "password_changed", user = ?username, session = %authed.key, "password changed");

    // Every other session ends now; this one continues under a new ID.
    let fresh = shared.snapshot.load_full();
    let others = match shared.store.list_user(&username).await {
        Ok(list) => list,
        Err(e) => return Ok(store_refused(shared, &view, StoreOp::OwnPage, &e)),
    };
    for (key, _) in others.iter().filter(|(k, _)| *k != authed.key) {
        if let Err(e) = end_counted(shared, key, EndReason::Password).await {
            return Ok(store_refused(shared, &view, StoreOp::OwnPage, &e));
        }
    }
    if let Err(e) = end_session(shared, &authed.key, &username, EndReason::Password).await {
        return Ok(store_refused(shared, &view, StoreOp::OwnPage, &e));
    }
    let Some(user) = fresh.users.get(&username) else {
        return Ok(not_saved(&view, "the user vanished from the users file"));
    };
    let set_cookie = match sign_in(shared, &fresh, session, req, user, None).await {
        Ok(SignIn::Done { set_cookie, .. }) => set_cookie,
        Ok(SignIn::Full { .. }) => return Ok(store_down(&view)),
        Err(e) => return Ok(store_refused(shared, &view, StoreOp::OwnPage, &e)),
    };
    let links = vec![(
        format!("{}/devices", view.prefix()),
        view.t("common.your_devices"),
    )];
    Ok(Reply::html(
        200,
        view.message_page(
            &view.t("password.changed_title"),
            &view.t("password.changed"),
            &links,
        ),
    )
    .header("Set-Cookie", set_cookie))
}

fn not_saved(view: &View, why: &str) -> Reply {
    tracing::error!("password change not saved: {why}");
    Reply::html(
        500,
        view.message_page(
            &view.t("password.not_changed"),
            &view.t("password.not_saved"),
            &[],
        ),
    )
}
