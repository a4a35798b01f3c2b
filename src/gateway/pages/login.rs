//! GET and POST `/login`: the form (CSRF-protected by a nonce cookie of its
//! own), password verification, and a fresh session on success. One generic
//! failure message whether the user exists or not. Never logs a password or
//! a session ID.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use minijinja::context;
use pingora::proxy::Session;
use ring::rand::SecureRandom;

use std::sync::Arc;

use super::form::read_form;
use super::remembered_user;
use super::{busy, device_list, Reply, View};
use crate::auth::{User, UserSource};
use crate::config::OnDeviceLimit;
use crate::gateway::authenticate::read_cookie;
use crate::gateway::pending_login::{self, PendingLogin};
use crate::gateway::redirect::{login_url, safe_redirect};
use crate::gateway::request::Request;
use crate::gateway::sign_in::{sign_in, signed_in, SignIn};
use crate::gateway::state::{Shared, Snapshot};
use crate::gateway::store_refusal;
use crate::gateway::throttle::{
    ban_minutes, refuse_if_banned, retry_after, verify_unbanned, Checked,
};
use crate::metrics::{Login, StoreOp, METRICS};
use crate::outage::Refused;
use crate::session::store::{StoreError, UserSessions};
use crate::session::{EndReason, SessionKey};
use crate::wire::cookie;

const CSRF_PURPOSE: &str = "login";

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

fn unavailable(view: &View) -> Reply {
    Reply::html(
        503,
        view.message_page(
            &view.t("common.try_again"),
            &view.t("login.unavailable"),
            &[],
        ),
    )
}

/// The store failed: counted, covered by its outage lines, and answered
/// with the "unavailable" page.
fn store_unavailable(shared: &Shared, view: &View, e: &StoreError) -> Reply {
    store_refusal::count(shared, StoreOp::Login, e);
    unavailable(view)
}

/// What the login form shows besides its fields: where to go after, the
/// name to fill in, and a notice (css class `info` or `error`, sentence).
struct Form<'a> {
    rd: &'a str,
    username: &'a str,
    notice: Option<(&'a str, String)>,
}

/// The login page.
fn login_page(shared: &Shared, view: &View, nonce: &Nonce, form: Form, status: u16) -> Reply {
    let token = shared.signer.token(CSRF_PURPOSE, nonce.value.as_bytes());
    let notice = form
        .notice
        .map(|(kind, text)| context! { kind => kind, text => text });
    let title = &view.snap.settings.ui.title;
    let html = view.render(
        "login.html",
        title,
        context! {
            notice => notice,
            csrf_token => token,
            rd => form.rd,
            username => form.username,
        },
    );
    nonce.attach(Reply::html(status, html))
}

pub fn show(shared: &Shared, snap: &Snapshot, session: &Session, req: &Request) -> Reply {
    let view = View::new(snap, session.req_header());
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
        return unavailable(&view);
    };
    // After a session ended the user only retypes the password.
    let username = remembered_user::recall(&snap.settings.session, req.cookies());
    let form = Form {
        rd: &rd,
        username: username.as_deref().unwrap_or(""),
        notice: reason.map(|r| ("info", view.t(&format!("reason.{}", r.as_str())))),
    };
    login_page(shared, &view, &nonce, form, 200)
}

/// A posted login form. Refusals are held for `login.failure_delay` by
/// the dispatcher (see `refusal_delay`).
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
    let field = |name: &str| form.get(name);
    let rd = safe_redirect(field("rd")).unwrap_or("/").to_string();
    let nonce = match checked_nonce(shared, &view, req, field("csrf_token"), &rd) {
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
                    return Ok(unavailable(&view));
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
            let form = Form {
                rd: &rd,
                username,
                notice: Some(("error", view.tn("login.banned", ban_minutes(wait)))),
            };
            return Ok(login_page(shared, &view, &nonce, form, 429)
                .header("Retry-After", retry_after(wait)));
        }
        Checked::Busy => return Ok(busy(&view)),
        Checked::Unavailable(e) => return Ok(store_unavailable(shared, &view, &e)),
    };
    let Some(user) = user.filter(|_| right) else {
        // The name stays in the box: only the password is typed again.
        let form = Form {
            rd: &rd,
            username,
            notice: Some(("error", view.t("login.failed"))),
        };
        return Ok(login_page(shared, &view, &nonce, form, 401));
    };

    // A new ID on every login; the session this browser had is ended.
    if let Some(old) = read_cookie(snap, req.cookies()).and_then(|c| c.key) {
        // The store's outage lines cover a failure here; the login goes on.
        if let Err(e) = shared.store.remove(&old).await {
            tracing::debug!("could not end the previous session {old}: {e}");
        }
    }
    finish(shared, &view, session, req, &nonce, user, &rd, None).await
}

/// Starts the session (and remembers the name for the next login form),
/// or explains the device limit.
// The session (its user agent) and the request read once (its client
// address) both feed the new record; the rest is the login's own state.
#[allow(clippy::too_many_arguments)]
async fn finish(
    shared: &Shared,
    view: &View<'_>,
    session: &Session,
    req: &Request,
    nonce: &Nonce,
    user: &Arc<User>,
    rd: &str,
    end_first: Option<SessionKey>,
) -> pingora::Result<Reply> {
    let snap = view.snap;
    let live = match sign_in(shared, snap, session, req, user, end_first).await {
        Err(e) => return Ok(store_unavailable(shared, view, &e)),
        Ok(SignIn::Done { set_cookie, .. }) => {
            let remember = remembered_user::remember(&snap.settings.session, &user.username);
            return Ok(signed_in(rd, set_cookie).header("Set-Cookie", remember));
        }
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
        let form = Form {
            rd,
            username: &user.username,
            notice: Some(("error", view.tn("login.device_limit", live.len()))),
        };
        return Ok(login_page(shared, view, nonce, form, 409));
    }
    Ok(ask_page(shared, view, nonce, user, rd, &live))
}

/// The "ask" page: the user's other devices, told apart (browser and
/// version, system, address, when signed in and last active, the one used
/// last marked), and a signed pending login. Cancel keeps `rd`.
fn ask_page(
    shared: &Shared,
    view: &View,
    nonce: &Nonce,
    user: &User,
    rd: &str,
    live: &UserSessions,
) -> Reply {
    let now = shared.clock.now();
    let mut pending_nonce = [0u8; 16];
    if shared.rng.fill(&mut pending_nonce).is_err() {
        return unavailable(view);
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
    let token = shared.signer.token(CSRF_PURPOSE, nonce.value.as_bytes());
    let html = view.render(
        "choose_device.html",
        &view.t("ask.title"),
        context! {
            csrf_token => token,
            pending => pending,
            devices => device_list(view, now, live, None),
            cancel_url => login_url(view.prefix(), Some(rd), None),
        },
    );
    nonce.attach(Reply::html(200, html))
}

/// POST `/login/choose`: the device picked on the "ask" page is signed out
/// and this browser signed in, in one step. The pending token is single-use.
pub async fn choose(
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
    let field = |name: &str| form.get(name);
    let nonce = match checked_nonce(shared, &view, req, field("csrf_token"), "/") {
        Ok(n) => n,
        Err(reply) => return Ok(reply),
    };
    let now = shared.clock.now();
    let remembered = remembered_user::recall(&snap.settings.session, req.cookies());
    let refused = |why: &str| {
        tracing::info!(target: "gatehouse::audit", event = "login_refused", cause = why, "device choice refused");
        let form = Form {
            rd: "/",
            username: remembered.as_deref().unwrap_or(""),
            notice: Some(("error", view.t("login.choice_expired"))),
        };
        login_page(shared, &view, &nonce, form, 403)
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
        Err(e) => return Ok(store_unavailable(shared, &view, &e)),
    }
    let found = match shared.users(snap).sign_in_lookup(&pending.user).await {
        Ok(found) => found,
        Err(_) => return Ok(unavailable(&view)),
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
        &view,
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
    view: &View,
    req: &Request,
    token: &str,
    rd: &str,
) -> Result<Nonce, Reply> {
    let snap = view.snap;
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
                    let form = Form {
                        rd,
                        username: "",
                        notice: Some(("error", view.t("login.form_expired"))),
                    };
                    login_page(shared, view, &nonce, form, 403)
                }
                None => unavailable(view),
            })
        }
    }
}
