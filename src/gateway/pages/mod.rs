//! The gateway's own pages under `server.prefix`: dispatch, and the page
//! every problem is shown on.

mod devices;
mod form;
mod login;
mod logout;
mod password;

pub use devices::{device_items, ItemControl};

use pingora::proxy::Session;

use super::authenticate::{authenticate, Auth, Authed};
use super::redirect::login_url;
use super::request::Request;
use super::respond::Reply;
use super::state::{Shared, Snapshot};
use super::store_refusal::{self, Unanswered};
use crate::metrics::StoreOp;
use crate::session::EndReason;
use crate::ui::{self, Slot};

/// Answers a request under the prefix; `sub` is the path after it.
pub async fn serve(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    req: &Request,
    sub: &str,
) -> pingora::Result<Reply> {
    let method = session.req_header().method.clone();
    // Forms that check a password answer refusals after the failure delay.
    let delay = snap.settings.login.failure_delay;
    let held = &shared.refusal_delay;
    let reply = match (method.as_str(), sub) {
        ("GET" | "HEAD", "/login") => login::show(shared, snap, session, req),
        ("POST", "/login") => {
            held.hold_refusals(delay, login::submit(shared, snap, session, req))
                .await?
        }
        ("POST", "/login/choose") => login::choose(shared, snap, session, req).await?,
        ("GET" | "HEAD", "/logout") => logout::show(shared, snap, req).await,
        ("POST", "/logout") => logout::submit(shared, snap, session, req).await?,
        ("GET" | "HEAD", "/session") => devices::status(shared, snap, req).await,
        ("GET" | "HEAD", "/devices") => devices::show(shared, snap, req).await,
        ("POST", "/devices/revoke") => devices::revoke(shared, snap, session, req, false).await?,
        ("POST", "/devices/revoke-others") => {
            devices::revoke(shared, snap, session, req, true).await?
        }
        ("GET" | "HEAD", "/password") => password::show(shared, snap, req).await,
        ("POST", "/password") => {
            held.hold_refusals(delay, password::submit(shared, snap, session, req))
                .await?
        }
        ("GET" | "HEAD", "/assets/gatehouse.css") => {
            Reply::asset("text/css; charset=utf-8", ui::STYLESHEET)
        }
        (
            _,
            "/login"
            | "/logout"
            | "/password"
            | "/login/choose"
            | "/devices/revoke"
            | "/devices/revoke-others",
        ) => Reply::html(
            405,
            message_page(snap, "Method not allowed", "Use the form on this page.", ""),
        )
        .header("Allow", "GET, HEAD, POST"),
        _ => Reply::html(
            404,
            message_page(snap, "Not found", "There is no such page.", ""),
        ),
    };
    Ok(reply)
}

/// The signed-in user of an own page, without extending the session; or
/// the answer for someone who is not signed in (back here after login).
pub async fn require_session(
    shared: &Shared,
    snap: &Snapshot,
    req: &Request,
    back_to: &str,
) -> Result<Authed, Reply> {
    let auth = authenticate(shared, snap, req.cookies(), false)
        .await
        .map_err(|e| store_refused(shared, snap, StoreOp::OwnPage, &e))?;
    match auth {
        Auth::Valid(a) => Ok(a),
        other => {
            let prefix = &snap.settings.server.prefix;
            let rd = format!("{prefix}{back_to}");
            Err(login_required(snap, req.page_load, &rd, &other))
        }
    }
}

/// 403: signed in, but in none of the route's groups (`message` says so).
pub fn not_in_group(snap: &Snapshot, page_load: bool, message: &str) -> Reply {
    problem(snap, page_load, 403, "forbidden", "Not allowed", message)
}

/// The answer to a request that needs a session it does not have: a page
/// load goes to the login page, anything else gets 401 JSON; either way the
/// user learns why the last session ended, and a dead cookie is cleared.
pub fn login_required(snap: &Snapshot, page_load: bool, rd: &str, auth: &Auth) -> Reply {
    let reason = auth.reason();
    let url = login_url(
        &snap.settings.server.prefix,
        Some(rd),
        reason.map(EndReason::as_str),
    );
    let reply = if page_load {
        Reply::see_other(url)
    } else {
        let mut body = serde_json::json!({
            "error": "login_required",
            "message": "Sign in first.",
            "login_url": url,
        });
        if let Some(r) = reason {
            body["reason"] = r.as_str().into();
        }
        Reply::json(401, &body)
    };
    if auth.had_cookie() {
        reply.header("Set-Cookie", snap.settings.session.clear_cookie())
    } else {
        reply
    }
}

/// A plain page with a heading, a sentence and an optional action.
pub fn message_page(snap: &Snapshot, heading: &str, message: &str, action_html: &str) -> String {
    let content = ui::render(
        ui::MESSAGE,
        &[
            ("heading", Slot::Text(heading)),
            ("message", Slot::Text(message)),
            ("action", Slot::Html(action_html)),
        ],
    );
    ui::page(heading, &snap.settings.server.prefix, &content)
}

/// The session store failed for `op`: counted, and the page saying so.
pub fn store_refused(
    shared: &Shared,
    snap: &Snapshot,
    op: StoreOp,
    e: impl Into<Unanswered>,
) -> Reply {
    store_refusal::count_unanswered(shared, op, &e.into());
    store_down(snap)
}

/// The session store did not answer: nobody is signed out for it.
pub fn store_down(snap: &Snapshot) -> Reply {
    Reply::html(
        503,
        message_page(
            snap,
            "Try again",
            "Your session could not be checked right now. You are still signed in; please try again shortly.",
            "",
        ),
    )
}

/// A state-changing request without a valid CSRF token: nothing was done.
pub fn forged(snap: &Snapshot, heading: &str, action_html: &str) -> Reply {
    Reply::html(
        403,
        message_page(
            snap,
            heading,
            "That request did not come from this site.",
            action_html,
        ),
    )
}

/// The hashing queue is full: try again in a moment.
pub fn busy(snap: &Snapshot) -> Reply {
    Reply::html(
        503,
        message_page(
            snap,
            "Try again",
            "Too many people are signing in right now. Please try again in a moment.",
            "",
        ),
    )
    .header("Retry-After", "1")
}

/// A form that did not arrive whole within `server.form_body_timeout`.
pub fn too_slow(snap: &Snapshot) -> Reply {
    Reply::html(
        408,
        message_page(
            snap,
            "Too slow",
            "The form did not arrive in time. Please try again.",
            "",
        ),
    )
}

pub fn too_large(snap: &Snapshot) -> Reply {
    Reply::html(
        413,
        message_page(snap, "Too large", "The form was too large.", ""),
    )
}

/// A problem, as a page for browsers or as JSON `{"error": code, ...}`.
pub fn problem(
    snap: &Snapshot,
    page_load: bool,
    status: u16,
    code: &str,
    heading: &str,
    message: &str,
) -> Reply {
    if page_load {
        Reply::html(status, message_page(snap, heading, message, ""))
    } else {
        Reply::json(
            status,
            &serde_json::json!({ "error": code, "message": message }),
        )
    }
}
