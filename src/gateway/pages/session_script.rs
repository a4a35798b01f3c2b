//! GET `{prefix}/session.js`: the browser session script (idle warning,
//! tabs in step, every tab to the login page when the session ends), with
//! its settings and the dialog's words in the visitor's language.
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

/// The languages the dialog speaks; the first is the default.
pub const LANGUAGES: [&str; 2] = ["en", "es"];

/// Every user-facing string of the dialog, by language (`{time}` and `{n}`
/// are filled in by the script). One table, so a message catalog can take
/// them over whole.
pub const STRINGS: [(&str, [(&str, &str); 8]); 2] = [
    (
        "en",
        [
            ("title", "Are you still there?"),
            (
                "message",
                "For your security, you will be signed out in {time} because of inactivity.",
            ),
            ("stay", "Stay signed in"),
            ("sign_out", "Sign out"),
            ("minute", "1 minute"),
            ("minutes", "{n} minutes"),
            ("second", "1 second"),
            ("seconds", "{n} seconds"),
        ],
    ),
    (
        "es",
        [
            ("title", "¿Sigue ahí?"),
            (
                "message",
                "Por su seguridad, su sesión se cerrará en {time} por inactividad.",
            ),
            ("stay", "Mantener la sesión"),
            ("sign_out", "Cerrar sesión"),
            ("minute", "1 minuto"),
            ("minutes", "{n} minutos"),
            ("second", "1 segundo"),
            ("seconds", "{n} segundos"),
        ],
    ),
];

/// The best of `LANGUAGES` for an `Accept-Language` header: the highest
/// `q` wins, ties go to the earlier entry; none acceptable → the default.
pub fn language(accept_language: Option<&str>, default: &'static str) -> &'static str {
    let mut best: Option<(&'static str, f32)> = None;
    for item in accept_language.unwrap_or("").split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let Some(lang) = LANGUAGES.iter().find(|l| **l == primary) else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((lang, q));
        }
    }
    best.map_or(default, |(l, _)| l)
}

fn strings(lang: &str) -> serde_json::Value {
    let table = STRINGS
        .iter()
        .find(|(l, _)| *l == lang)
        .unwrap_or(&STRINGS[0]);
    table
        .1
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The script for `lang` under the current settings.
pub fn body(snap: &Snapshot, lang: &str) -> String {
    let config = serde_json::json!({
        "prefix": snap.settings.server.prefix,
        "warning": u64::try_from(snap.settings.ui.idle_warning.as_millis()).unwrap_or(u64::MAX),
        "poll": POLL_MS,
        "lang": lang,
        "strings": strings(lang),
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
    let lang = language(header(http::header::ACCEPT_LANGUAGE), LANGUAGES[0]);
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
    fn picks_the_language_the_visitor_prefers() {
        assert_eq!(language(None, "en"), "en");
        assert_eq!(language(Some("es-ES,es;q=0.9,en;q=0.8"), "en"), "es");
        assert_eq!(language(Some("en-GB,es;q=0.9"), "es"), "en");
        assert_eq!(language(Some("fr, es;q=0.5"), "en"), "es");
        assert_eq!(language(Some("fr, de"), "es"), "es");
        assert_eq!(language(Some("es;q=0, en;q=0.1"), "es"), "en");
        assert_eq!(language(Some("ES"), "en"), "es");
        assert_eq!(language(Some(";;,q=,"), "en"), "en");
    }

    #[test]
    fn every_language_has_every_string() {
        let keys: Vec<_> = STRINGS[0].1.iter().map(|(k, _)| *k).collect();
        for (lang, table) in &STRINGS {
            assert!(LANGUAGES.contains(lang));
            let these: Vec<_> = table.iter().map(|(k, _)| *k).collect();
            assert_eq!(these, keys, "{lang}");
            let message = table.iter().find(|(k, _)| *k == "message").unwrap().1;
            assert!(message.contains("{time}"), "{lang}");
        }
    }

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
