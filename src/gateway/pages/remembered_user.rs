//! The name last signed in with on this browser, kept in a cookie of its
//! own so the login form is filled in again when a session ends (idle,
//! restart, ...): the user types only the password. Signing out forgets it
//! (the user chose to leave). Holds a name only, never anything secret;
//! never sent to the app (it is one of `GATEWAY_COOKIES`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::time::Duration;

use crate::config::SessionSettings;
use crate::wire::cookie;

/// Long enough to outlast a holiday; the name is no secret.
const KEEP: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longer than any user name the pages would show.
const MAX_NAME: usize = 256;

fn name(s: &SessionSettings) -> &'static str {
    if s.cookie_secure {
        cookie::USER_SECURE
    } else {
        cookie::USER
    }
}

/// `Set-Cookie` remembering `user`.
pub fn remember(s: &SessionSettings, user: &str) -> String {
    cookie::set(
        name(s),
        &URL_SAFE_NO_PAD.encode(user),
        s.cookie_secure,
        Some(KEEP),
    )
}

/// `Set-Cookie` forgetting it.
pub fn forget(s: &SessionSettings) -> String {
    cookie::clear(name(s), s.cookie_secure)
}

/// The remembered name, if the browser sent a well-formed one (`cookies`:
/// the request's Cookie lines as one value, as `gateway/request.rs` read
/// them).
pub fn recall(s: &SessionSettings, cookies: Option<&[u8]>) -> Option<String> {
    let value = cookie::find(cookies?, name(s))?;
    if value.len() > MAX_NAME * 4 / 3 + 4 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
    let user = String::from_utf8(bytes).ok()?;
    (!user.is_empty() && user.len() <= MAX_NAME && !user.chars().any(char::is_control))
        .then_some(user)
}
