//! The one place that knows identity header names. Inbound copies are
//! dropped whatever their case and whether they use `_` or `-` (a CGI/WSGI
//! app reads `X_Remote_User` and `X-Remote-User` as the same variable), then
//! the gateway's own values are added. Pure.

use crate::config::IdentitySettings;

/// A byte as CGI-style apps see it in a header name: lower-case, `_` as `-`.
fn fold(b: u8) -> u8 {
    match b {
        b'_' => b'-',
        other => other.to_ascii_lowercase(),
    }
}

/// Whether `name` starts with `prefix`, ignoring case and `_`/`-`.
fn starts_with_folded(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name
            .bytes()
            .zip(prefix.bytes())
            .all(|(a, b)| fold(a) == fold(b))
}

fn eq_folded(a: &str, b: &str) -> bool {
    a.len() == b.len() && starts_with_folded(a, b)
}

/// Headers that tell the app where the request came from or which URL it
/// is "really" for. The gateway sets the forwarding ones itself (a trusted
/// proxy's values are merged before stripping); the URL overrides (read by
/// some PHP frameworks) would let a request checked as one path be served
/// as another, so they never pass.
const GATEWAY_OWNED: [&str; 15] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
];

/// Whether an inbound header must be dropped before the request goes
/// upstream. Allocation-free: it runs for every header of every request.
pub fn must_strip(name: &str, settings: &IdentitySettings) -> bool {
    let own = [
        &settings.user_header,
        &settings.email_header,
        &settings.name_header,
        &settings.groups_header,
    ];
    own.iter().any(|h| eq_folded(name, h))
        || settings
            .assertion
            .as_ref()
            .is_some_and(|a| eq_folded(name, &a.header))
        || GATEWAY_OWNED.iter().any(|h| eq_folded(name, h))
        || settings
            .strip_prefixes
            .iter()
            .any(|p| starts_with_folded(name, p))
}

/// Who the upstream is told the user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: crate::auth::Groups,
}

/// The identity headers to add, with the configured names. Values holding
/// control characters are left out rather than forwarded.
pub fn identity_headers<'a>(
    identity: &'a Identity,
    settings: &'a IdentitySettings,
) -> Vec<(&'a str, String)> {
    let mut out = vec![(settings.user_header.as_str(), identity.user.clone())];
    if let Some(email) = &identity.email {
        out.push((settings.email_header.as_str(), email.clone()));
    }
    if let Some(name) = &identity.name {
        out.push((settings.name_header.as_str(), name.clone()));
    }
    if !identity.groups.is_empty() {
        out.push((settings.groups_header.as_str(), identity.groups.join(",")));
    }
    out.retain(|(_, v)| !v.chars().any(char::is_control));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_an_identity_header_is_stripped() {
        let s = IdentitySettings::defaults();
        for name in [
            "X-Remote-User",
            "x-remote-user",
            "X_Remote_User",
            "x_remote_user",
            "X-REMOTE-GROUPS",
            "Remote-User",
            "remote_user",
            "X-Remote-Anything",
            "X-Auth-Request-User",
            "X-Auth-Request-Email",
            "X-Forwarded-User",
            "X_Forwarded_Email",
            "X-Forwarded-For",
            "X_Forwarded_For",
            "x-forwarded-host",
            "Forwarded",
            "X-Original-URL",
            "x_rewrite_url",
            "X-Real-IP",
            "X-Forwarded-Prefix",
            "True-Client-IP",
        ] {
            assert!(must_strip(name, &s), "{name} must be stripped");
        }
        for name in [
            "Accept",
            "Cookie",
            "X-Request-Id",
            "User-Agent",
            "Authorization",
        ] {
            assert!(!must_strip(name, &s), "{name} must pass");
        }
    }

    #[test]
    fn custom_names_are_stripped_too() {
        let mut s = IdentitySettings::defaults();
        s.user_header = "Auth-User".into();
        s.strip_prefixes.clear();
        assert!(must_strip("auth_user", &s));
        assert!(!must_strip(
            "X-Remote-Name",
            &IdentitySettings {
                strip_prefixes: vec![],
                name_header: "N".into(),
                ..s
            }
        ));
    }

    #[test]
    fn identity_headers_use_configured_names() {
        let s = IdentitySettings::defaults();
        let id = Identity {
            user: "alice".into(),
            email: Some("alice@example.com".into()),
            name: Some("Alice\r\nX-Evil: 1".into()),
            groups: vec!["staff".to_string(), "admins".to_string()].into(),
        };
        let h = identity_headers(&id, &s);
        assert_eq!(
            h,
            vec![
                ("X-Remote-User", "alice".to_string()),
                ("X-Remote-Email", "alice@example.com".to_string()),
                ("X-Remote-Groups", "staff,admins".to_string()),
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn case_and_underscores_never_matter(name in "[A-Za-z_-]{1,20}") {
            let s = IdentitySettings::defaults();
            let flipped: String = name
                .chars()
                .map(|c| match c {
                    '-' => '_',
                    '_' => '-',
                    c if c.is_ascii_lowercase() => c.to_ascii_uppercase(),
                    c => c.to_ascii_lowercase(),
                })
                .collect();
            proptest::prop_assert_eq!(must_strip(&name, &s), must_strip(&flipped, &s));
        }
    }
}
