//! Login throttling. Failed logins are counted per canonical user name
//! (trimmed, case-folded) and per client address, in a sliding window kept
//! in the session store (so a fleet shares them). Past the limit, logins for
//! that name or address are refused without verifying a password until the
//! ban ends.
//!
//! Every typed password goes through `check_password`: the login form's
//! and the password page's `current` alike, so a session cannot turn the
//! password page into an unthrottled oracle.
//!
//! The trade-off: anyone can lock a user out for `ban_time` by failing
//! `max_failures` times with their name. Bans are short, refused attempts
//! cost nothing (no hashing), and the address limit (ten times the name
//! limit) stops one source from cycling through names.

use std::net::IpAddr;
use std::time::Duration;

use super::signing::Signer;
use super::state::{Shared, Snapshot};
use crate::auth::verifier::Busy;
use crate::auth::User;
use crate::config::LoginSettings;
use crate::metrics::{Login, METRICS};
use crate::session::store::StoreError;

/// An address may fail this many times more than a single name.
const ADDRESS_FACTOR: u32 = 10;

fn subjects(username: &str, ip: Option<IpAddr>) -> Vec<(String, u32)> {
    let mut out = vec![(format!("user:{}", username.trim().to_lowercase()), 1)];
    if let Some(ip) = ip {
        out.push((format!("ip:{ip}"), ADDRESS_FACTOR));
    }
    out
}

/// `Some(wait)` when logins for this name or address are banned now.
pub async fn banned(
    shared: &Shared,
    settings: &LoginSettings,
    username: &str,
    ip: Option<IpAddr>,
) -> Result<Option<Duration>, StoreError> {
    if settings.max_failures == 0 {
        return Ok(None);
    }
    let now = shared.clock.now();
    let mut longest = None;
    for (subject, _) in subjects(username, ip) {
        if let Some(until) = shared.store.banned_until(&subject, now).await? {
            longest = longest.max(Some(until.since(now)));
        }
    }
    Ok(longest)
}

/// Counts a failed login; bans the name or address that reached its limit.
pub async fn failed(
    shared: &Shared,
    settings: &LoginSettings,
    username: &str,
    known: Option<&User>,
    ip: Option<IpAddr>,
) -> Result<(), StoreError> {
    if settings.max_failures == 0 {
        return Ok(());
    }
    let now = shared.clock.now();
    for (subject, factor) in subjects(username, ip) {
        let count = shared
            .store
            .record_failure(&subject, now, settings.failure_window)
            .await?;
        if count >= settings.max_failures.saturating_mul(factor) {
            shared
                .store
                .ban(&subject, now.plus(settings.ban_time))
                .await?;
            tracing::warn!(
                target: "gatehouse::audit",
                event = "login_throttled",
                subject = %logged_subject(shared, known.is_some(), &subject),
                failures = count,
                ban_seconds = settings.ban_time.as_secs(),
                "login throttled: {count} failures"
            );
        }
    }
    Ok(())
}

/// How a password check under the throttle ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    Right,
    Wrong,
    /// The name or address is banned for this long; nothing was verified.
    Banned(Duration),
    /// The hashing queue is full.
    Busy,
    /// The store holding the failure counts did not answer.
    Unavailable(StoreError),
}

/// Checks a typed `password` for the name `username` against `user`'s hash
/// (`None` for no such user: a dummy of the users source's format is
/// verified). While the name or the client address is banned the attempt
/// ends here, unverified. A wrong password counts toward a ban and writes
/// the `login_failed` audit line; `form` says which form it came from.
pub async fn check_password(
    shared: &Shared,
    snap: &Snapshot,
    username: &str,
    user: Option<&User>,
    password: &str,
    ip: Option<IpAddr>,
    form: &'static str,
) -> Checked {
    if let Some(refused) = refuse_if_banned(shared, snap, username, ip, form).await {
        return refused;
    }
    verify_unbanned(shared, snap, username, user, password, ip, form).await
}

/// The first half of `check_password`, for a form that must look its user
/// up in between (the sign-in form: a banned name or address costs the
/// app's database no query). `None` when the attempt may go on.
pub async fn refuse_if_banned(
    shared: &Shared,
    snap: &Snapshot,
    username: &str,
    ip: Option<IpAddr>,
    form: &'static str,
) -> Option<Checked> {
    match banned(shared, &snap.settings.login, username, ip).await {
        Ok(None) => None,
        Ok(Some(wait)) => {
            METRICS.login(Login::Throttled);
            tracing::info!(target: "gatehouse::audit", event = "login_throttled", form, "login refused: throttled");
            Some(Checked::Banned(wait))
        }
        Err(e) => Some(Checked::Unavailable(e)),
    }
}

/// The second half of `check_password`: only after `refuse_if_banned`.
pub async fn verify_unbanned(
    shared: &Shared,
    snap: &Snapshot,
    username: &str,
    user: Option<&User>,
    password: &str,
    ip: Option<IpAddr>,
    form: &'static str,
) -> Checked {
    match shared.verify_password(snap, user, password).await {
        Ok(true) => return Checked::Right,
        Ok(false) => {}
        Err(Busy) => return Checked::Busy,
    }
    METRICS.login(Login::Failed);
    // Only names of real users are logged: a password typed into the
    // username box must not end up in the log.
    let known = user.map(|u| u.username.as_str());
    tracing::info!(target: "gatehouse::audit", event = "login_failed", user = ?known.unwrap_or("(unknown user)"), form, "login failed");
    match failed(shared, &snap.settings.login, username, user, ip).await {
        Ok(()) => Checked::Wrong,
        Err(e) => Checked::Unavailable(e),
    }
}

/// The whole minutes a ban has left, at least one: what the page says
/// (`login.banned` in the catalog).
pub fn ban_minutes(wait: Duration) -> usize {
    usize::try_from(wait.as_secs().div_ceil(60).max(1)).unwrap_or(usize::MAX)
}

/// `Retry-After` for a ban: whole seconds, at least one.
pub fn retry_after(wait: Duration) -> String {
    wait.as_secs().max(1).to_string()
}

/// How a subject appears in the log: addresses, and names of users that
/// exist, as they are; any other name (often a password typed into the
/// name box) as a short keyed hash, so attempts on it still group together
/// in the log without the text being readable or guessable from it.
fn logged_subject(shared: &Shared, known: bool, subject: &str) -> String {
    match subject.strip_prefix("user:") {
        Some(name) if !known => format!("user:#{}", pseudonym(&shared.signer, name)),
        _ => subject.to_string(),
    }
}

fn pseudonym(signer: &Signer, name: &str) -> String {
    signer
        .token("log pseudonym", name.as_bytes())
        .chars()
        .take(8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_short_stable_and_keyed() {
        let a = Signer::new(&[1; 32]);
        let p = pseudonym(&a, "hunter2-secret-pass");
        assert_eq!(p.len(), 8);
        assert!(!"hunter2-secret-pass".contains(&p));
        assert_eq!(p, pseudonym(&a, "hunter2-secret-pass"));
        assert_ne!(p, pseudonym(&a, "hunter3-secret-pass"));
        assert_ne!(p, pseudonym(&Signer::new(&[2; 32]), "hunter2-secret-pass"));
    }

    #[test]
    fn names_are_canonical_and_addresses_get_more_room() {
        let s = subjects("  Alice ", Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            s,
            vec![
                ("user:alice".to_string(), 1),
                ("ip:10.0.0.1".to_string(), ADDRESS_FACTOR)
            ]
        );
        assert_eq!(subjects("BOB", None), vec![("user:bob".to_string(), 1)]);
    }
}
