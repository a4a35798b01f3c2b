//! The gateway's own pages under `server.prefix`: dispatch, and the page
//! every problem is shown on.

mod form;
mod login;
mod logout;

use pingora::proxy::Session;

use super::respond::Reply;
use super::state::{Shared, Snapshot};
use crate::ui::{self, Slot};

/// Answers a request under the prefix; `sub` is the path after it.
pub async fn serve(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    sub: &str,
) -> pingora::Result<Reply> {
    let method = session.req_header().method.clone();
    let reply = match (method.as_str(), sub) {
        ("GET" | "HEAD", "/login") => login::show(shared, snap, session),
        ("POST", "/login") => login::submit(shared, snap, session).await?,
        ("GET" | "HEAD", "/logout") => logout::show(shared, snap, session).await,
        ("POST", "/logout") => logout::submit(shared, snap, session).await?,
        ("GET" | "HEAD", "/assets/gatehouse.css") => {
            Reply::asset("text/css; charset=utf-8", ui::STYLESHEET)
        }
        (_, "/login" | "/logout") => Reply::html(
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
