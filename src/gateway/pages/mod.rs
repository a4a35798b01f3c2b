//! The gateway's own pages under `server.prefix`: dispatch, and the page
//! every problem is shown on.

mod devices;
mod form;
mod login;
mod logout;
mod password;
mod remembered_user;
pub mod session_script;
mod session_status;
mod view;

pub use devices::device_list;
pub use view::View;

use pingora::proxy::Session;

use super::authenticate::{authenticate, Auth, Authed};
use super::redirect::login_url;
use super::request::Request;
use super::respond::Reply;
use super::state::{Shared, Snapshot};
use super::store_refusal::{self, Unanswered};
use crate::metrics::StoreOp;
use crate::session::EndReason;

/// Answers a request under the prefix; `sub` is the path after it.
pub async fn serve(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    req: &Request,
    sub: &str,
) -> pingora::Result<Reply> {
    let method = session.req_header().method.clone();
    let view = View::new(snap, session.req_header());
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
        ("GET" | "HEAD", "/logout") => logout::show(shared, snap, session, req).await,
        ("POST", "/logout") => logout::submit(shared, snap, session, req).await?,
        ("GET" | "HEAD", "/session") => devices::status(shared, snap, session, req).await,
        ("GET" | "HEAD", "/session.js") => session_script::serve(snap, session.req_header()),
        ("POST", "/session/extend") => session_status::extend(shared, snap, session, req).await,
        ("GET" | "HEAD", "/devices") => devices::show(shared, snap, session, req).await,
        ("POST", "/devices/revoke") => devices::revoke(shared, snap, session, req, false).await?,
        ("POST", "/devices/revoke-others") => {
            devices::revoke(shared, snap, session, req, true).await?
        }
        ("GET" | "HEAD", "/password") => password::show(shared, snap, session, req).await,
        ("POST", "/password") => {
            held.hold_refusals(delay, password::submit(shared, snap, session, req))
                .await?
        }
        ("GET" | "HEAD", "/assets/gatehouse.css") => Reply::asset(
            "text/css; charset=utf-8",
            snap.settings.ui.pages.stylesheet.clone(),
        ),
        ("GET" | "HEAD", "/assets/logo") if snap.settings.ui.pages.logo.is_some() => {
            match &snap.settings.ui.pages.logo {
                Some(logo) => Reply::asset(logo.content_type, logo.bytes.clone()),
                None => not_found(&view),
            }
        }
        (
            _,
            "/login"
            | "/logout"
            | "/password"
            | "/login/choose"
            | "/devices/revoke"
            | "/devices/revoke-others"
            | "/session/extend",
        ) => Reply::html(
            405,
            view.message_page(&view.t("error.method_title"), &view.t("error.method"), &[]),
        )
        .header("Allow", "GET, HEAD, POST"),
        _ => not_found(&view),
    };
    Ok(reply)
}

fn not_found(view: &View) -> Reply {
    Reply::html(
        404,
        view.message_page(
            &view.t("error.not_found_title"),
            &view.t("error.not_found"),
            &[],
        ),
    )
}

/// The signed-in user of an own page, without extending the session; or
/// the answer for someone who is not signed in (back here after login).
pub async fn require_session(
    shared: &Shared,
    snap: &Snapshot,
    session: &Session,
    req: &Request,
    back_to: &str,
) -> Result<Authed, Reply> {
    let auth = authenticate(shared, snap, req.cookies(), false)
        .await
        .map_err(|e| {
            let view = View::new(snap, session.req_header());
            store_refused(shared, &view, StoreOp::OwnPage, &e)
        })?;
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

/// The session store failed for `op`: counted, and the page saying so.
pub fn store_refused(shared: &Shared, view: &View, op: StoreOp, e: impl Into<Unanswered>) -> Reply {
    store_refusal::count_unanswered(shared, op, &e.into());
    store_down(view)
}

/// The session store did not answer: nobody is signed out for it.
pub fn store_down(view: &View) -> Reply {
    Reply::html(
        503,
        view.message_page(
            &view.t("common.try_again"),
            &view.t("error.store_down"),
            &[],
        ),
    )
}

/// A state-changing request without a valid CSRF token: nothing was done.
/// `links` (href, text) say where to go from here.
pub fn forged(view: &View, heading: &str, links: &[(String, String)]) -> Reply {
    Reply::html(
        403,
        view.message_page(heading, &view.t("error.forged"), links),
    )
}

/// The hashing queue is full: try again in a moment.
pub fn busy(view: &View) -> Reply {
    Reply::html(
        503,
        view.message_page(&view.t("common.try_again"), &view.t("error.busy"), &[]),
    )
    .header("Retry-After", "1")
}

/// A form that did not arrive whole within `server.form_body_timeout`.
pub fn too_slow(view: &View) -> Reply {
    Reply::html(
        408,
        view.message_page(
            &view.t("error.too_slow_title"),
            &view.t("error.too_slow"),
            &[],
        ),
    )
}

pub fn too_large(view: &View) -> Reply {
    Reply::html(
        413,
        view.message_page(
            &view.t("error.too_large_title"),
            &view.t("error.too_large"),
            &[],
        ),
    )
}

/// A problem, as a page for browsers or as JSON `{"error": code, ...}`.
/// Asked for outside the own pages (a proxied request), it speaks
/// `ui.language` with the heading and sentence it is given.
pub fn problem(
    snap: &Snapshot,
    page_load: bool,
    status: u16,
    code: &str,
    heading: &str,
    message: &str,
) -> Reply {
    if page_load {
        let view = View::configured(snap);
        Reply::html(status, view.message_page(heading, message, &[]))
    } else {
        Reply::json(
            status,
            &serde_json::json!({ "error": code, "message": message }),
        )
    }
}
