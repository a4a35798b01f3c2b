//! GET and POST `/login`: the form (CSRF-protected by a nonce cookie of its
//! own), password verification, and a fresh session on success. One generic
//! failure message whether the user exists or not. Never logs a password or
//! a session ID.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pingora::proxy::Session;
use ring::rand::SecureRandom;

use super::form::{read_form, FormBody};
use super::{message_page, Reply};
use crate::gateway::authenticate::{cookie_header, session_key};
use crate::gateway::redirect::safe_redirect;
use crate::gateway::state::{Shared, Snapshot};
use crate::gateway::{client_ip, cookie};
use crate::session::{EndReason, SessionId, SessionRecord};
use crate::ui::{self, Slot};

const CSRF_PURPOSE: &str = "login";
const FAILED: &str = "Incorrect username or password.";
const FORM_EXPIRED: &str =
    "This sign-in form expired or did not come from this site. Please try again.";

/// The login form's nonce: from its cookie, or a new one to set.
struct Nonce {
    value: String,
    set_cookie: Option<String>,
}

fn existing_nonce(snap: &Snapshot, session: &Session) -> Option<String> {
    let cookies = cookie_header(session.req_header())?;
    let value = cookie::find(&cookies, snap.settings.session.csrf_cookie_name())?;
    let ok = value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| value.to_string())
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

fn nonce(shared: &Shared, snap: &Snapshot, session: &Session) -> Option<Nonce> {
    match existing_nonce(snap, session) {
        Some(value) => Some(Nonce {
            value,
            set_cookie: None,
        }),
        None => fresh_nonce(shared, snap),
    }
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
    let token = shared.csrf.token(CSRF_PURPOSE, nonce.value.as_bytes());
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
    let mut reply = Reply::html(status, ui::page(title, prefix, &content));
    if let Some(c) = &nonce.set_cookie {
        reply = reply.header("Set-Cookie", c.clone());
    }
    reply
}

pub fn show(shared: &Shared, snap: &Snapshot, session: &Session) -> Reply {
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
    let Some(nonce) = nonce(shared, snap, session) else {
        return unavailable(snap);
    };
    let notice = reason.map(|r| ("info", r.message()));
    login_page(shared, snap, &nonce, &rd, notice, 200)
}

pub async fn submit(
    shared: &Shared,
    snap: &Snapshot,
    session: &mut Session,
) -> pingora::Result<Reply> {
    let fields = match read_form(session).await? {
        FormBody::TooLarge => {
            return Ok(Reply::html(
                413,
                message_page(snap, "Too large", "The sign-in form was too large.", ""),
            ))
        }
        FormBody::Fields(f) => f,
    };
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    let rd = safe_redirect(field("rd")).unwrap_or("/").to_string();

    let csrf_ok = existing_nonce(snap, session).is_some_and(|n| {
        shared
            .csrf
            .verify(CSRF_PURPOSE, n.as_bytes(), field("csrf_token"))
    });
    if !csrf_ok {
        tracing::info!(target: "gatehouse::audit", event = "login_refused", cause = "csrf", "login refused: bad CSRF token");
        let Some(nonce) = fresh_nonce(shared, snap) else {
            return Ok(unavailable(snap));
        };
        return Ok(login_page(
            shared,
            snap,
            &nonce,
            &rd,
            Some(("error", FORM_EXPIRED)),
            403,
        ));
    }
    let Some(nonce) = nonce(shared, snap, session) else {
        return Ok(unavailable(snap));
    };

    let username = field("username");
    let user = snap.users.get(username).filter(|u| !u.disabled);
    let stored = user.map(|u| u.password_hash.clone());
    let ok = shared
        .verifier
        .verify(stored, field("password").to_string())
        .await;
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!(target: "gatehouse::audit", event = "login_failed", user = ?username, "login failed");
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
    let cookies = cookie_header(session.req_header());
    if let Some(Some(old)) = session_key(snap, cookies.as_deref()) {
        if let Err(e) = shared.store.remove(&old).await {
            tracing::warn!("could not end the previous session {old}: {e}");
        }
    }
    let Ok(id) = SessionId::generate(&shared.rng) else {
        return Ok(unavailable(snap));
    };
    let key = id.key();
    let now = shared.clock.now();
    let user_agent = session
        .req_header()
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(512)
        .collect();
    let record = SessionRecord {
        user: user.username.clone(),
        created_at: now,
        last_seen: now,
        client_ip: client_ip(snap, session),
        user_agent,
        password_fingerprint: user.password_fingerprint,
        groups: user.groups.clone(),
    };
    if let Err(e) = shared.store.insert(key, record).await {
        tracing::error!("login of {:?} failed: {e}", user.username);
        return Ok(unavailable(snap));
    }
    tracing::info!(target: "gatehouse::audit", event = "login_ok", user = ?user.username, session = %key, "login ok");

    let s = &snap.settings.session;
    let set = cookie::set(
        s.cookie_name(),
        id.as_cookie_value(),
        s.cookie_secure,
        Some(s.absolute_timeout),
    );
    Ok(Reply::see_other(rd).header("Set-Cookie", set))
}
