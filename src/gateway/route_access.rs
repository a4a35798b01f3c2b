//! What a route's `access` and `groups` say about a request's session:
//! one decision for a proxied request (`admission`) and a forward-auth
//! check (`forward_auth`), so the two modes can never judge the same
//! request differently. Each caller turns the verdict into its own answer.

use super::authenticate::{authenticate, Auth, Authed};
use super::state::{Shared, Snapshot};
use super::store_refusal;
use crate::config::{Access, Route};
use crate::metrics::StoreOp;

/// What a user whose session could not be checked is told.
pub const STORE_DOWN: &str =
    "Your session could not be checked right now. You are still signed in; please try again shortly.";

pub enum Verdict {
    /// A public route: pass, with the identity of a session that happens
    /// to be valid. `stale_cookie` when the browser sent a dead one.
    Public {
        authed: Option<Authed>,
        stale_cookie: bool,
    },
    /// A login route and a live session of a user the route admits.
    Allowed(Authed),
    /// A login route and no live session (why is in the `Auth`).
    LoginRequired(Auth),
    /// Signed in, but in none of the route's `groups`; the message says so.
    WrongGroup(Authed, String),
    /// A login route whose session could not be checked (already counted
    /// and covered by the store's outage lines).
    StoreDown,
}

pub async fn judge(
    shared: &Shared,
    snap: &Snapshot,
    route: &Route,
    cookies: Option<&[u8]>,
) -> Verdict {
    let login = route.access == Access::Login;
    let auth = match authenticate(shared, snap, cookies, login).await {
        Ok(auth) => auth,
        // A public page needs no session: nothing was refused, so nothing
        // is counted, and the cookie is left alone.
        Err(_) if !login => {
            return Verdict::Public {
                authed: None,
                stale_cookie: false,
            }
        }
        Err(e) => {
            store_refusal::count_unanswered(shared, StoreOp::Request, &e);
            return Verdict::StoreDown;
        }
    };
    match auth {
        Auth::Valid(authed) if !login => Verdict::Public {
            authed: Some(authed),
            stale_cookie: false,
        },
        other if !login => Verdict::Public {
            authed: None,
            stale_cookie: other.had_cookie(),
        },
        Auth::Valid(authed) => {
            let admitted = route.groups.is_empty()
                || authed.user.groups.iter().any(|g| route.groups.contains(g));
            if admitted {
                Verdict::Allowed(authed)
            } else {
                let message = format!(
                    "You are signed in as {}, but this page is only for members of: {}.",
                    authed.user.username,
                    route.groups.join(", ")
                );
                Verdict::WrongGroup(authed, message)
            }
        }
        other => Verdict::LoginRequired(other),
    }
}
