//! GET `{prefix}/session.js`: the browser session script (idle warning,
//! tabs in step, every tab to the login page when the session ends), with
//! its settings and the dialog's words in the visitor's language (from the
//! message catalog, picked like the pages' language).
//!
//! The script is static code wrapped around one JSON literal: no inline
//! code for the page, nothing evaluated, so it runs under
//! `script-src 'self'`. It must never carry anything about the visitor's
//! session (it is cacheable and public).

use std::fmt::Write as _;

use crate::gateway::respond::Reply;
use crate::gateway::state::Snapshot;

const SCRIPT: &str = include_str!("../../ui/assets/session.js");

/// The status check interval when nothing is about to happen: one request
/// per minute per browser, shared by all its tabs.
const POLL_MS: u64 = 60_000;

/// The dialog's words in `lang`, from the message catalog (section
/// `idle_warning`), as the script wants them: `{time}` and `{n}` left for
/// it to fill in, singular and plural apart.
fn strings(snap: &Snapshot, lang: &str) -> serde_json::Value {
    let ui = &snap.settings.ui.pages;
    let t = |key: &str, n: Option<u64>| ui.text(lang, &format!("idle_warning.{key}"), n, &[]);
    serde_json::json!({
        "title": t("title", None),
        "message": t("message", None),
        "stay": t("stay", None),
        "sign_out": t("sign_out", None),
        "minute": t("minutes", Some(1)),
        "minutes": t("minutes", None),
        "second": t("seconds", Some(1)),
        "seconds": t("seconds", None),
    })
}

/// The script for `lang` under the current settings.
pub fn body(snap: &Snapshot, lang: &str) -> String {
    let config = serde_json::json!({
        "prefix": snap.settings.server.prefix,
        "warning": u64::try_from(snap.settings.ui.idle_warning.as_millis()).unwrap_or(u64::MAX),
        "poll": POLL_MS,
        "lang": lang,
        "strings": strings(snap, lang),
    });
    format!("(function (C) {{\n{SCRIPT}\n}})({config});\n")
}

/// A strong validator for `body`.
fn etag(body: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    let mut tag = String::from("\"");
    for b in digest.as_ref().iter().take(12) {
        let _ = write!(tag, "{b:02x}");
    }
    tag.push('"');
    tag
}

/// Whether `If-None-Match` names `tag` (or `*`).
fn not_modified(if_none_match: Option<&str>, tag: &str) -> bool {
    if_none_match.is_some_and(|v| {
        v.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag
        })
    })
}

pub fn serve(snap: &Snapshot, req: &http::request::Parts) -> Reply {
    let header = |name| req.headers.get(name).and_then(|v| v.to_str().ok());
    let lang = snap
        .settings
        .ui
        .pages
        .language_for(header(http::header::ACCEPT_LANGUAGE));
    let body = body(snap, lang);
    let tag = etag(&body);
    let reply = if not_modified(header(http::header::IF_NONE_MATCH), &tag) {
        Reply::empty(304)
    } else {
        Reply::script(body)
    };
    // Revalidated on every use (a 304 when nothing changed), so a reload
    // that changes `ui.idle_warning` reaches every page at once.
    reply
        .header("ETag", tag)
        .header("Cache-Control", "no-cache")
        .header("Vary", "Accept-Language")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_requests_match_the_tag() {
        let tag = etag("x");
        assert!(not_modified(Some(&tag), &tag));
        assert!(not_modified(Some(&format!("\"a\", W/{tag}")), &tag));
        assert!(not_modified(Some("*"), &tag));
        assert!(!not_modified(Some("\"other\""), &tag));
        assert!(!not_modified(None, &tag));
    }
}
