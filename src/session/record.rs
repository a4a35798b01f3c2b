//! What the store keeps about a session.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: String,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
    pub client_ip: Option<std::net::IpAddr>,
    pub user_agent: String,
    /// First 8 bytes of SHA-256 of the user's password hash at login: a
    /// password changed anywhere no longer matches.
    pub password_fingerprint: [u8; 8],
    pub groups: crate::auth::Groups,
    /// Set when the session was ended by someone else (eviction, revocation):
    /// the record stays as a tombstone so its next request learns why.
    pub ended: Option<super::EndReason>,
}
