//! A user as every backend hands one over: the users file's and the app
//! database's look the same to the gateway.

use std::sync::Arc;

use crate::wire::identity_headers::{IdentityValues, Prepared};

/// A user's groups, shared by every session of theirs (one allocation per
/// user, not per session).
pub type Groups = Arc<[String]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub password_hash: String,
    pub password_fingerprint: [u8; 8],
    pub name: Option<String>,
    pub email: Option<String>,
    pub groups: Groups,
    pub max_devices: Option<u32>,
    pub disabled: bool,
    /// The identity header values, made on the first forwarded request
    /// and kept with this `User`: never formatted per request.
    pub identity_values: Prepared,
}

impl User {
    /// What the app is told about this user (`[identity]` headers).
    pub fn identity_values(&self) -> &IdentityValues {
        self.identity_values.get_or_init(|| {
            IdentityValues::of(
                &self.username,
                self.email.as_deref(),
                self.name.as_deref(),
                &self.groups,
            )
        })
    }
}
