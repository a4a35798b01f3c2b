//! The one place that knows identity header names. Inbound copies are
//! dropped whatever their case and whatever non-alphanumeric characters
//! separate their words (CGI, PHP and WSGI turn `-`, `_`, `.`, space and
//! the rest into the same `_`, so `X.Remote.User` reaches a PHP app as
//! `HTTP_X_REMOTE_USER`), then the gateway's own values are added. Pure.

use crate::config::IdentitySettings;

/// A byte as CGI-style apps see it in a header name: letters lower-case,
/// digits kept, every other byte the same separator.
fn fold(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() {
        b.to_ascii_lowercase()
    } else {
        b'-'
    }
}

/// Whether `name` starts with `prefix`, ignoring case and reading every
/// non-alphanumeric byte as the same separator.
pub fn starts_with_folded(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name
            .bytes()
            .zip(prefix.bytes())
            .all(|(a, b)| fold(a) == fold(b))
}

/// Whether two header names are the same variable to a CGI-style app.
pub fn eq_folded(a: &str, b: &str) -> bool {
    a.len() == b.len() && starts_with_folded(a, b)
}

/// Headers that tell the app where the request came from, which URL or
/// method it is "really" for, or who the user is, in the spellings other
/// stacks trust. The gateway sets the forwarding ones itself (a trusted
/// proxy's values are merged before stripping); the URL and method
/// overrides would let a request checked as one thing be served as
/// another; the identity ones are what Grafana, oauth2-proxy and
/// friends read. The relay ticket is the gateway's own
/// (`gateway::websocket::handshake::TICKET_HEADER`). None of them ever
/// passes.
const GATEWAY_OWNED: [&str; 18] = [
    "x-forwarded",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "x-original-url",
    "x-original-uri",
    "x-original-host",
    "x-original-method",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-auth-user",
    "x-user",
    "x-gatehouse-relay",
];

/// Every `X-Forwarded-*` header (`-For`, `-Proto`, `-Host`, `-Uri`,
/// `-Ssl`, `-Groups`, `-Access-Token`, ...) and Grafana's `X-WEBAUTH-*`
/// family, whatever the configured prefixes say.
const GATEWAY_OWNED_PREFIXES: [&str; 2] = ["x-forwarded-", "x-webauth-"];

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
        || GATEWAY_OWNED_PREFIXES
            .iter()
            .any(|p| starts_with_folded(name, p))
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

/// A user's identity header values as they go on the wire, made once per
/// user (see `Prepared`), never per request. A value holding a control
/// character is `None`: left out rather than forwarded, as
/// `identity_headers` does.
#[derive(Debug, Clone, Default)]
pub struct IdentityValues {
    pub user: Option<http::HeaderValue>,
    pub email: Option<http::HeaderValue>,
    pub name: Option<http::HeaderValue>,
    /// The groups, comma-separated; `None` for a user in no group.
    pub groups: Option<http::HeaderValue>,
}

impl IdentityValues {
    pub fn of(user: &str, email: Option<&str>, name: Option<&str>, groups: &[String]) -> Self {
        let value = |v: &str| {
            if v.chars().any(char::is_control) {
                return None;
            }
            http::HeaderValue::from_str(v).ok()
        };
        IdentityValues {
            user: value(user),
            email: email.and_then(value),
            name: name.and_then(value),
            groups: (!groups.is_empty())
                .then(|| groups.join(","))
                .and_then(|g| value(&g)),
        }
    }

    /// The values beside the configured header names, in the order
    /// `identity_headers` gives them, the absent ones left out.
    pub fn with_names<'a, N>(
        &'a self,
        names: &'a [N; 4],
    ) -> impl Iterator<Item = (&'a N, &'a http::HeaderValue)> {
        [&self.user, &self.email, &self.name, &self.groups]
            .into_iter()
            .zip(names)
            .filter_map(|(value, name)| value.as_ref().map(|v| (name, v)))
    }
}

/// A user's `IdentityValues`, made the first time a request of theirs is
/// forwarded and then kept as long as the `User` is (a users file reload
/// or a refresh from the app's database makes new `User`s, so new values).
/// It says nothing of its own: two users are equal whatever it holds.
#[derive(Clone, Default)]
pub struct Prepared(std::sync::OnceLock<IdentityValues>);

impl Prepared {
    pub fn get_or_init(&self, make: impl FnOnce() -> IdentityValues) -> &IdentityValues {
        self.0.get_or_init(make)
    }
}

impl PartialEq for Prepared {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Prepared {}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prepared")
    }
}

/// The identity headers of a forward-auth answer: every configured name,
/// always, empty when nobody is signed in (or a value cannot be sent). A
/// proxy copying a header the answer lacks may send the app a placeholder
/// instead (Caddy 2.6's `copy_headers` sends `{http.reverse_proxy.header.
/// X-Remote-User}`), which an app would take for a user name.
pub fn every_identity_header<'a>(
    identity: Option<&'a Identity>,
    settings: &'a IdentitySettings,
) -> [(&'a str, String); 4] {
    let known = identity
        .map(|i| identity_headers(i, settings))
        .unwrap_or_default();
    let value = |name: &str| {
        known
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    [
        &settings.user_header,
        &settings.email_header,
        &settings.name_header,
        &settings.groups_header,
    ]
    .map(|name| (name.as_str(), value(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header names with every separator a client can put in a token.
    const SEPARATORS: [char; 15] = [
        '-', '_', '.', '~', '!', '#', '$', '%', '&', '\'', '*', '+', '^', '`', '|',
    ];

    #[test]
    fn the_relay_ticket_never_passes_in_any_spelling() {
        let s = IdentitySettings::defaults();
        for sep in SEPARATORS {
            let name = format!("X{sep}Gatehouse{sep}Relay");
            assert!(must_strip(&name, &s), "{name}");
            assert!(must_strip(&name.to_lowercase(), &s), "{name}");
        }
        assert!(!must_strip("X-Gatehouse-Relayed", &s));
    }

    #[test]
    fn every_spelling_of_an_identity_header_is_stripped() {
        let s = IdentitySettings::defaults();
        for name in [
            "X-Remote-User",
            "x-remote-user",
            "X_Remote_User",
            "x_remote_user",
            "X.Remote.Groups",
            "X Remote User",
            "x~remote~email",
            "X-REMOTE-GROUPS",
            "Remote-User",
            "remote.user",
            "X-Remote-Anything",
            "X-Auth-Request-User",
            "X.Auth.Request.Email",
            "X-Forwarded-User",
            "X_Forwarded_Email",
            "X-Forwarded-For",
            "X_Forwarded_For",
            "x-forwarded-host",
            "Forwarded",
            "X-Forwarded",
            "X-Original-URL",
            "x_rewrite_url",
            "X-Real-IP",
            "X-Forwarded-Prefix",
            "True-Client-IP",
            "X-Auth-User",
            "x.user",
            "X-WEBAUTH-USER",
            "x_webauth_groups",
            "X-Forwarded-Preferred-Username",
            "X-Forwarded-Groups",
            "X-Forwarded-Access-Token",
            "X-Forwarded-Uri",
            "X-Forwarded-Path",
            "X-Forwarded-Ssl",
            "X-Forwarded-Scheme",
            "X-HTTP-Method-Override",
            "x.http.method",
            "X-Method-Override",
        ] {
            assert!(must_strip(name, &s), "{name} must be stripped");
        }
        for name in [
            "Accept",
            "Cookie",
            "X-Request-Id",
            "User-Agent",
            "Authorization",
            "X-Users",
            "X-Remote",
            "XRemote-User",
            "X-Auth-Token",
        ] {
            assert!(!must_strip(name, &s), "{name} must pass");
        }
    }

    #[test]
    fn any_separator_in_a_configured_prefix_matches_any_other() {
        let mut s = IdentitySettings::defaults();
        s.strip_prefixes = vec!["App.Auth_".into()];
        for sep in SEPARATORS {
            let name = format!("app{sep}AUTH{sep}role");
            assert!(must_strip(&name, &s), "{name} must be stripped");
        }
        assert!(!must_strip("appauth-role", &s));
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

    #[test]
    fn a_forward_auth_answer_names_every_header_even_when_empty() {
        let s = IdentitySettings::defaults();
        let names = [
            "X-Remote-User",
            "X-Remote-Email",
            "X-Remote-Name",
            "X-Remote-Groups",
        ];
        let anonymous = every_identity_header(None, &s);
        assert_eq!(anonymous.clone().map(|(n, _)| n), names);
        assert!(anonymous.iter().all(|(_, v)| v.is_empty()));
        let bob = Identity {
            user: "bob".into(),
            email: None,
            name: Some("Bob\nEvil".into()),
            groups: vec!["a".to_string(), "b".to_string()].into(),
        };
        let answer = every_identity_header(Some(&bob), &s);
        assert_eq!(
            answer.map(|(_, v)| v),
            [
                "bob".to_string(),
                String::new(),
                String::new(),
                "a,b".into()
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn case_and_separators_never_matter(
            words in proptest::collection::vec("[A-Za-z0-9]{1,8}", 1..5),
            seps in proptest::collection::vec(0..SEPARATORS.len(), 4),
            flips in proptest::collection::vec(proptest::bool::ANY, 40),
        ) {
            let s = IdentitySettings::defaults();
            let dashed = words.join("-");
            let mut odd = String::new();
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    odd.push(SEPARATORS[seps[(i - 1) % seps.len()]]);
                }
                odd.push_str(w);
            }
            let odd: String = odd
                .chars()
                .zip(flips.iter().cycle())
                .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect();
            proptest::prop_assert_eq!(must_strip(&dashed, &s), must_strip(&odd, &s));
            for prefix in ["X-Remote", "X-Forwarded", "X-WEBAUTH", "Remote"] {
                let spoof = format!("{prefix}-{dashed}");
                let odd_spoof = format!("{}{}{odd}", prefix.replace('-', "."), SEPARATORS[seps[0]]);
                proptest::prop_assert!(must_strip(&spoof, &s));
                proptest::prop_assert!(must_strip(&odd_spoof, &s), "{}", odd_spoof);
            }
        }
    }
}
