//! GET `/logout` asks; POST `/logout` (with the CSRF token bound to the
//! session) ends the session server-side and clears the browser's cookies.

use minijinja::context;
use pingora::proxy::Session;

use super::form::read_form;
use super::remembered_user;
use super::{forged, store_refused, Reply, View};
use crate::gateway::authenticate::{authenticate, end_session, Auth};
use crate::gateway::redirect::login_url;
use crate::gateway::request::Request;
use crate::gateway::state::{Shared, Snapshot};
use crate::metrics::StoreOp;
use crate::session::EndReason;

pub(super) const CSRF_PURPOSE: &str = "logout";

/// To the login page with `reason=logout`, the session cookie cleared.
/// Only a POST (which carried a CSRF token or had nothing to end) may also
/// clear the site's other cookies, and the remembered user name: a
/// cross-site GET link must not.
fn signed_out(snap: &Snapshot, clear_site_data: bool) -> Reply {
    let prefix = &snap.settings.server.prefix;
    let to = login_url(prefix, None, Some(EndReason::Logout.as_str()));
    let reply = Reply::see_other(to).header("Set-Cookie", snap.settings.session.clear_cookie());
    if clear_site_data {
        reply
            .header(
                "Set-Cookie",
                remembered_user::forget(&snap.settings.session),
            )
            .header("Clear-Site-Data", "\"cookies\"")
    } else {
        reply
    }
}

pub async fn show(shared: &Shared, snap: &Snapshot, session: &Session, req: &Request) -> Reply {
    let view = View::new(snap, session.req_header());
    let authed = match authenticate(shared, snap, req.cookies(), false).await {
        Ok(Auth::Valid(a)) => a,
        Ok(_) => return signed_out(snap, false),
        Err(e) => return store_refused(shared, &view, StoreOp::Logout, &e),
    };
    let token = shared.signer.token(CSRF_PURPOSE, &authed.key.0);
    let html = view.render(
        "logout.html",
        &view.t("logout.title"),
        context! { user => authed.user.username, csrf_token => token },
    );
    Reply::html(200, html)
}

pub async fn submit(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    req: &Request,
) -> pingora::Result<Reply> {
    let view = View::new(snap, session.req_header());
    let form = match read_form(&view, session).await? {
        Ok(form) => form,
        Err(reply) => return Ok(reply),
    };
    let authed = match authenticate(shared, snap, req.cookies(), false).await {
        Ok(Auth::Valid(a)) => a,
        // Nothing to end: just make sure the browser forgets the cookie.
        Ok(_) => return Ok(signed_out(snap, true)),
        Err(e) => return Ok(store_refused(shared, &view, StoreOp::Logout, &e)),
    };
    let token = form.get("csrf_token");
    if !shared.signer.verify(CSRF_PURPOSE, &authed.key.0, token) {
        tracing::info!(target: "gatehouse::audit", event = "logout_refused", user = ?authed.user.username, cause = "csrf", "logout refused: bad CSRF token");
        let again = vec![(
            format!("{}/logout", view.prefix()),
            view.t("common.sign_out"),
        )];
        return Ok(forged(&view, &view.t("logout.not_done"), &again));
    }
    if let Err(e) = end_session(
        shared,
        &authed.key,
        &authed.user.username,
        EndReason::Logout,
    )
    .await
    {
        return Ok(store_refused(shared, &view, StoreOp::Logout, &e));
    }
    Ok(signed_out(snap, true))
}
