//! GET `/logout` asks; POST `/logout` (with the CSRF token bound to the
//! session) ends the session server-side and clears the browser's cookies.

use pingora::proxy::Session;

use super::form::{read_form, FormBody};
use super::{message_page, store_down, too_large, Reply};
use crate::gateway::authenticate::{authenticate, cookie_header, end_session, Auth};
use crate::gateway::cookie;
use crate::gateway::redirect::login_url;
use crate::gateway::state::{Shared, Snapshot};
use crate::session::EndReason;
use crate::ui::{self, Slot};

const CSRF_PURPOSE: &str = "logout";

fn signed_out(snap: &Snapshot) -> Reply {
    let s = &snap.settings.session;
    let to = login_url(
        &snap.settings.server.prefix,
        None,
        Some(EndReason::Logout.as_str()),
    );
    Reply::see_other(to)
        .header(
            "Set-Cookie",
            cookie::clear(s.cookie_name(), s.cookie_secure),
        )
        .header("Clear-Site-Data", "\"cookies\"")
}

pub async fn show(shared: &Shared, snap: &Snapshot, session: &Session) -> Reply {
    let cookies = cookie_header(session.req_header());
    let authed = match authenticate(shared, snap, cookies.as_deref(), false).await {
        Ok(Auth::Valid(a)) => a,
        Ok(_) => return signed_out(snap),
        Err(_) => return store_down(snap),
    };
    let token = shared.signer.token(CSRF_PURPOSE, &authed.key.0);
    let prefix = &snap.settings.server.prefix;
    let content = ui::render(
        ui::LOGOUT,
        &[
            ("user", Slot::Text(&authed.user.username)),
            ("prefix", Slot::Text(prefix)),
            ("csrf_token", Slot::Text(&token)),
        ],
    );
    Reply::html(200, ui::page("Sign out", prefix, &content))
}

pub async fn submit(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
) -> pingora::Result<Reply> {
    let fields = match read_form(session).await? {
        FormBody::TooLarge => return Ok(too_large(snap)),
        FormBody::Fields(f) => f,
    };
    let cookies = cookie_header(session.req_header());
    let authed = match authenticate(shared, snap, cookies.as_deref(), false).await {
        Ok(Auth::Valid(a)) => a,
        // Nothing to end: just make sure the browser forgets the cookie.
        Ok(_) => return Ok(signed_out(snap)),
        Err(_) => return Ok(store_down(snap)),
    };
    let token = fields.get("csrf_token").map(String::as_str).unwrap_or("");
    if !shared.signer.verify(CSRF_PURPOSE, &authed.key.0, token) {
        tracing::info!(target: "gatehouse::audit", event = "logout_refused", user = ?authed.user.username, cause = "csrf", "logout refused: bad CSRF token");
        let action = format!(
            "<p class=\"aside\"><a href=\"{}/logout\">Sign out</a></p>",
            ui::escape(&snap.settings.server.prefix)
        );
        return Ok(Reply::html(
            403,
            message_page(
                snap,
                "Not signed out",
                "That sign-out request did not come from this site.",
                &action,
            ),
        ));
    }
    if end_session(
        shared,
        &authed.key,
        &authed.user.username,
        EndReason::Logout,
    )
    .await
    .is_err()
    {
        return Ok(store_down(snap));
    }
    Ok(signed_out(snap))
}
