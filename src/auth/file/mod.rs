//! The users file: one TOML table per user. Loaded whole into an immutable
//! `UserDb`; a reload builds a new one. `edit` changes the file itself.

pub mod edit;

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use crate::auth::password::{check_hash, fingerprint};
use crate::auth::User;
use crate::config::{ConfigError, ConfigErrors, ErrorSink, KeyPath};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    password: String,
    name: Option<String>,
    email: Option<String>,
    groups: Option<Vec<String>>,
    max_devices: Option<u32>,
    disabled: Option<bool>,
}

#[derive(Debug, Default, Clone)]
pub struct UserDb {
    users: HashMap<String, Arc<User>>,
}

impl UserDb {
    pub fn from_users(users: impl IntoIterator<Item = User>) -> Self {
        UserDb {
            users: users
                .into_iter()
                .map(|u| (u.username.clone(), Arc::new(u)))
                .collect(),
        }
    }

    pub fn get(&self, username: &str) -> Option<&Arc<User>> {
        self.users.get(username)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<User>> {
        self.users.values()
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                key: String::new(),
                message: format!("cannot read the users file: {e}"),
            }])
        })?;
        Self::parse(path, &source)
    }

    pub fn parse(path: &Path, source: &str) -> Result<Self, ConfigErrors> {
        let entries: BTreeMap<String, UserEntry> =
            crate::config::validate_deserialize(path, source)?;
        let mut sink = ErrorSink::new(path, source);
        let mut users = Vec::with_capacity(entries.len());
        for (username, e) in entries {
            let key = KeyPath::root().key(&username);
            if username.is_empty()
                || username
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                sink.push(
                    &key,
                    "expected a user name without spaces or control characters",
                );
            }
            if let Err(msg) = check_hash(&e.password) {
                sink.push(&key.key("password"), msg);
            }
            for (field, value) in [("name", &e.name), ("email", &e.email)] {
                if value
                    .as_deref()
                    .is_some_and(|v| v.chars().any(char::is_control))
                {
                    sink.push(&key.key(field), "expected text without control characters");
                }
            }
            let groups = e.groups.unwrap_or_default();
            for (i, g) in groups.iter().enumerate() {
                if g.is_empty()
                    || g.contains(',')
                    || g.chars().any(|c| c.is_control() || c.is_whitespace())
                {
                    sink.push(
                        &key.key("groups").index(i),
                        "expected a group name without commas, spaces or control characters",
                    );
                }
            }
            users.push(User {
                password_fingerprint: fingerprint(&e.password),
                username,
                password_hash: e.password,
                name: e.name,
                email: e.email,
                groups: groups.into(),
                max_devices: e.max_devices,
                disabled: e.disabled.unwrap_or(false),
                identity_values: Default::default(),
            });
        }
        if sink.is_empty() {
            Ok(Self::from_users(users))
        } else {
            Err(ConfigErrors(sink.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::password::hash_password;

    #[test]
    fn loads_users_with_their_details() {
        let h = hash_password("s3cret-pass").unwrap();
        let src = format!(
            "# people\n[alice]\npassword = \"{h}\"\nname = \"Alice Example\"\nemail = \"alice@example.com\"\ngroups = [\"staff\"]\nmax_devices = 1\n\n[bob]\npassword = \"{h}\"\ndisabled = true\n"
        );
        let db = UserDb::parse(Path::new("users.toml"), &src).unwrap();
        assert_eq!(db.len(), 2);
        let alice = db.get("alice").unwrap();
        assert_eq!(&alice.groups[..], ["staff"]);
        assert_eq!(alice.max_devices, Some(1));
        assert_eq!(alice.password_fingerprint, fingerprint(&h));
        assert!(db.get("bob").unwrap().disabled);
        assert!(db.get("carol").is_none());
    }

    proptest::proptest! {
        #[test]
        fn users_text_never_panics(text in "\\PC{0,300}") {
            if let Err(errors) = UserDb::parse(Path::new("u.toml"), &text) {
                proptest::prop_assert!(errors.0.iter().all(|e| e.file == Path::new("u.toml")));
            }
        }
    }

    #[test]
    fn mistakes_name_the_user_key_and_line() {
        let src = "[alice]\npassword = \"plaintext\"\n\n[bob]\npasword = \"x\"\n";
        let err = UserDb::parse(Path::new("users.toml"), src).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("users.toml:"), "{text}");
        assert!(text.contains("pasword"), "{text}");

        let src = "[alice]\nname = \"A\"\npassword = \"plaintext\"\n";
        let err = UserDb::parse(Path::new("users.toml"), src).unwrap_err();
        assert_eq!(err.0[0].line, Some(3), "{err}");
        assert_eq!(err.0[0].key, "alice.password");
    }
}
