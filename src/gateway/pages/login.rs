//! GET and POST `/login`: the form (CSRF-protected by a nonce cookie of its
//! own), password verification, and a fresh session on success. One generic
//! failure message whether the user exists or not. Never logs a password or
//! a session ID.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pingora::proxy::Session;
use ring::rand::SecureRandom;

use std::sync::Arc;

use super::form::read_form;
use super::{busy, device_items, message_page, ItemControl, Reply};
use crate::auth::{User, UserSource};
use crate::config::OnDeviceLimit;
use crate::gateway::authenticate::read_cookie;
use crate::gateway::pending_login::{self, PendingLogin};
use crate::gateway::redirect::safe_redirect;
use crate::gateway::request::Request;
use crate::gateway::sign_in::{sign_in, signed_in, SignIn};
use crate::gateway::state::{Shared, Snapshot};
use crate::gateway::store_refusal;
use crate::gateway::throttle::{
    ban_message, refuse_if_banned, retry_after, verify_unbanned, Checked,
};
use crate::metrics::{Login, StoreOp, METRICS};
use crate::outage::Refused;
use crate::session::store::{StoreError, UserSessions};
use crate::session::{EndReason, SessionKey};
use crate::ui::{self, Slot};
use crate::wire::cookie;

const CSRF_PURPOSE: &str = "login";
const FAILED: &str = "Incorrect username or password.";
const CHOICE_EXPIRED: &str = "That choice expired or was already used. Please sign in again.";
const FORM_EXPIRED: &str =
    "This sign-in form expired or did not come from this site. Please try again.";

/// The login form's nonce: from its cookie, or a new one to set.
struct Nonce {
    value: String,
    set_cookie: Option<String>,
}

impl Nonce {
    /// The reply, with the nonce's cookie when it is a new one.
    fn attach(&self, reply: Reply) -> Reply {
        match &self.set_cookie {
            Some(c) => reply.header("Set-Cookie", c.clone()),
            None => reply,
        }
    }
}

fn existing_nonce(snap: &Snapshot, req: &Request) -> Option<Nonce> {
    let value = cookie::find(req.cookies()?, snap.settings.session.csrf_cookie_name())?;
    let ok = value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| Nonce {
        value: value.to_string(),
        set_cookie: None,
    })
}

fn fresh_nonce(shared: &Shared, snap: &Snapshot) -> Option<Nonce> {
    let mut bytes = [0u8; 32];
    shared.rng.fill(&mut bytes).ok()?;
    let value = URL_SAFE_NO_PAD.encode(bytes);
    let s = &snap.settings.session;
    let set_cookie = cookie::set(s.csrf_cookie_name(), &value, s.cookie_secure, None);
    Some(Nonce {
        value,
        set_cookie: Some(set_cookie),
    })
}

fn nonce(shared: &Shared, snap: &Snapshot, req: &Request) -> Option<Nonce> {
    existing_nonce(snap, req).or_else(|| fresh_nonce(shared, snap))
}

fn unavailable(snap: &Snapshot) -> Reply {
    Reply::html(
        503,
        message_page(
            snap,
            "Try again",
            "Signing in is unavailable right now.",
            "",
        ),
    )
}

/// The store failed: counted, covered by its outage lines, and answered
/// with the "unavailable" page.
fn store_unavailable(shared: &Shared, snap: &Snapshot, e: &StoreError) -> Reply {
    store_refusal::count(shared, StoreOp::Login, e);
    unavailable(snap)
}

/// The login page; `notice` is (css class, sentence).
fn login_page(
    shared: &Shared,
    snap: &Snapshot,
    nonce: &Nonce,
    rd: &str,
    notice: Option<(&str, &str)>,
    status: u16,
) -> Reply {
    let notice_html = notice.map_or_else(String::new, |(class, text)| {
        format!(
            "<p class=\"notice {}\" role=\"status\">{}</p>",
            ui::escape(class),
            ui::escape(text)
        )
    });
    let token = shared.signer.token(CSRF_PURPOSE, nonce.value.as_bytes());
    let prefix = &snap.settings.server.prefix;
    let title = &snap.settings.ui.title;
    let content = ui::render(
        ui::LOGIN,
        &[
            ("title", Slot::Text(title)),
            ("notice", Slot::Html(&notice_html)),
            ("prefix", Slot::Text(prefix)),
            ("csrf_token", Slot::Text(&token)),
            ("rd", Slot::Text(rd)),
        ],
    );
    nonce.attach(Reply::html(status, ui::page(title, prefix, &content)))
}

pub fn show(shared: &Shared, snap: &Snapshot, session: &Session, req: &Request) -> Reply {
    let query = session.req_header().uri.query().unwrap_or("");
    let mut rd = "/".to_string();
    let mut reason = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "rd" => rd = safe_redirect(&v).unwrap_or("/").to_string(),
            "reason" => reason = EndReason::parse(&v),
            _ => {}
        }
    }
    let Some(nonce) = nonce(shared, snap, req) else {
        return unavailable(snap);
    };
    let notice = reason.map(|r| ("info", r.message()));
    login_page(shared, snap, &nonce, &rd, notice, 200)
}

/// A posted login form. Refusals are held for `login.failure_delay` by
/// the dispatcher (see `refusal_delay`).
pub async fn submit(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    req: &Request,
) -> pingora::Result<Reply> {
    let form = match read_form(snap, session).await? {
        Ok(form) => form,
        Err(reply) => return Ok(reply),
    };
    let field = |name: &str| form.get(name);
    let rd = safe_redirect(field("rd")).unwrap_or("/").to_string();
    let nonce = match checked_nonce(shared, snap, req, field("csrf_token"), &rd) {
        Ok(n) => n,
        Err(reply) => return Ok(reply),
    };

    let username = field("username");
    let ip = req.client_ip();
    // A ban is checked before the user is looked up, so a banned name or
    // address costs the app's database nothing.
    let (found, checked) = match refuse_if_banned(shared, snap, username, ip, "login").await {
        Some(refused) => (None, refused),
        None => {
            let found = match shared.users(snap).sign_in_lookup(username).await {
                Ok(found) => found,
                Err(e) => {
                    // Covered by the database's outage lines, not a line
                    // per sign-in.
                    METRICS.login(Login::StoreUnavailable);
                    if let Some(sql) = &shared.sql_users {
                        sql.outage().refused(Refused::Login, &e.0);
                    }
                    return Ok(unavailable(snap));
                }
            };
            let user = found.as_deref().filter(|u| !u.disabled);
            let password = field("password");
            let checked =
                verify_unbanned(shared, snap, username, user, password, ip, "login").await;
            (found, checked)
        }
    };
    let user = found.as_ref().filter(|u| !u.disabled);
    let right = match checked {
        Checked::Right => true,
        Checked::Wrong => false,
        Checked::Banned(wait) => {
            let message = ban_message(wait);
            return Ok(
                login_page(shared, snap, &nonce, &rd, Some(("error", &message)), 429)
                    .header("Retry-After", retry_after(wait)),
            );
        }
        Checked::Busy => return Ok(busy(snap)),
        Checked::Unavailable(e) => return Ok(store_unavailable(shared, snap, &e)),
    };
    let Some(user) = user.filter(|_| right) else {
        return Ok(login_page(
            shared,
            snap,
            &nonce,
            &rd,
            Some(("error", FAILED)),
            401,
        ));
    };

    // A new ID on every login; the session this browser had is ended.
    if let Some(old) = read_cookie(snap, req.cookies()).and_then(|c| c.key) {
        // The store's outage lines cover a failure here; the login goes on.
        if let Err(e) = shared.store.remove(&old).await {
            tracing::debug!("could not end the previous session {old}: {e}");
        }
    }
    finish(shared, snap, session, req, &nonce, user, &rd, None).await
}

/// Starts the session, or explains the device limit.
async fn finish(
    shared: &Shared,
    snap: &Snapshot,
    session: &Session,
    req: &Request,
    nonce: &Nonce,
    user: &Arc<User>,
    rd: &str,
    end_first: Option<SessionKey>,
) -> pingora::Result<Reply> {
    let live = match sign_in(shared, snap, session, req, user, end_first).await {
        Err(e) => return Ok(store_unavailable(shared, snap, &e)),
        Ok(SignIn::Done { set_cookie, .. }) => return Ok(signed_in(rd, set_cookie)),
        Ok(SignIn::Full { live }) => live,
    };
    METRICS.login(Login::RefusedDeviceLimit);
    tracing::info!(
        target: "gatehouse::audit",
        event = "login_refused",
        user = ?user.username,
        cause = "device_limit",
        devices = live.len(),
        "login stopped at the device limit"
    );
    if snap.settings.session.on_device_limit != OnDeviceLimit::Ask {
        let n = live.len();
        let message = format!(
            "Your account is already signed in on {n} other device{}. Sign out on one of them first.",
            if n == 1 { "" } else { "s" }
        );
        return Ok(login_page(
            shared,
            snap,
            nonce,
            rd,
            Some(("error", &message)),
            409,
        ));
    }
    Ok(ask_page(shared, snap, nonce, user, rd, &live))
}

/// The "ask" page: the user's other devices and a signed pending login.
fn ask_page(
    shared: &Shared,
    snap: &Snapshot,
    nonce: &Nonce,
    user: &User,
    rd: &str,
    live: &UserSessions,
) -> Reply {
    let now = shared.clock.now();
    let mut pending_nonce = [0u8; 16];
    if shared.rng.fill(&mut pending_nonce).is_err() {
        return unavailable(snap);
    }
    let pending = PendingLogin {
        user: user.username.clone(),
        password_fingerprint: user.password_fingerprint,
        expires: now.plus(pending_login::LIFETIME),
        nonce: URL_SAFE_NO_PAD.encode(pending_nonce),
        browser: pending_login::browser_of(&nonce.value),
        rd: rd.to_string(),
    }
    .seal(&shared.signer);
    let prefix = &snap.settings.server.prefix;
    let token = shared.signer.token(CSRF_PURPOSE, nonce.value.as_bytes());
    let items = device_items(now, live, None, ItemControl::Choose);
    let count = live.len().to_string();
    let content = ui::render(
        ui::CHOOSE_DEVICE,
        &[
            ("count", Slot::Text(&count)),
            ("prefix", Slot::Text(prefix)),
            ("csrf_token", Slot::Text(&token)),
            ("pending", Slot::Text(&pending)),
            ("devices", Slot::Html(&items)),
        ],
    );
    nonce.attach(Reply::html(
        200,
        ui::page("Sign out another device?", prefix, &content),
    ))
}

/// POST `/login/choose`: the device picked on the "ask" page is signed out
/// and this browser signed in, in one step. The pending token is single-use.
pub async fn choose(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
    req: &Request,
) -> pingora::Result<Reply> {
    let form = match read_form(snap, session).await? {
        Ok(form) => form,
        Err(reply) => return Ok(reply),
    };
    let field = |name: &str| form.get(name);
    let nonce = match checked_nonce(shared, snap, req, field("csrf_token"), "/") {
        Ok(n) => n,
        Err(reply) => return Ok(reply),
    };
    let now = shared.clock.now();
    let refused = |why: &str| {
        tracing::info!(target: "gatehouse::audit", event = "login_refused", cause = why, "device choice refused");
        login_page(
            shared,
            snap,
            &nonce,
            "/",
            Some(("error", CHOICE_EXPIRED)),
            403,
        )
    };
    let Ok(pending) = PendingLogin::open(field("pending"), &shared.signer, now) else {
        return Ok(refused("pending_token"));
    };
    if pending.browser != pending_login::browser_of(&nonce.value) {
        return Ok(refused("pending_token_other_browser"));
    }
    match shared
        .store
        .consume_nonce(&pending.nonce, pending.expires, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Ok(refused("pending_token_replayed")),
        Err(e) => return Ok(store_unavailable(shared, snap, &e)),
    }
    let found = match shared.users(snap).sign_in_lookup(&pending.user).await {
        Ok(found) => found,
        Err(_) => return Ok(unavailable(snap)),
    };
    let user = found
        .as_ref()
        .filter(|u| !u.disabled && u.password_fingerprint == pending.password_fingerprint);
    let Some(user) = user else {
        return Ok(refused("user_changed"));
    };
    let victim = SessionKey::from_hex(field("device"));
    finish(
        shared,
        snap,
        session,
        req,
        &nonce,
        user,
        &pending.rd,
        victim,
    )
    .await
}

/// The login nonce, if the submitted CSRF token matches it; otherwise the
/// answer to give (a fresh form).
fn checked_nonce(
    shared: &Shared,
    snap: &Snapshot,
    req: &Request,
    token: &str,
    rd: &str,
) -> Result<Nonce, Reply> {
    let existing = existing_nonce(snap, req);
    let ok = existing.as_ref().is_some_and(|n| {
        shared
            .signer
            .verify(CSRF_PURPOSE, n.value.as_bytes(), token)
    });
    match existing {
        Some(nonce) if ok => Ok(nonce),
        _ => {
            METRICS.login(Login::RefusedCsrf);
            tracing::info!(target: "gatehouse::audit", event = "login_refused", cause = "csrf", "login refused: bad CSRF token");
            Err(match fresh_nonce(shared, snap) {
                Some(nonce) => {
                    login_page(shared, snap, &nonce, rd, Some(("error", FORM_EXPIRED)), 403)
                }
                None => unavailable(snap),
            })
        }
    }
}
