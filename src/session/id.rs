//! Session identifiers. The ID is the cookie value and is never stored or
//! logged; the store keys records by SHA-256(ID) (`SessionKey`), and logs
//! name a session by the first 8 hex characters of that hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;

use crate::clock::Timestamp;

const ID_BYTES: usize = 32;
/// Length of 32 bytes in unpadded base64url.
const ID_CHARS: usize = 43;

/// The secret cookie value. Deliberately not `Debug`/`Display`.
pub struct SessionId(String);

impl SessionId {
    pub fn generate(rng: &SystemRandom) -> Result<Self, ring::error::Unspecified> {
        let mut bytes = [0u8; ID_BYTES];
        rng.fill(&mut bytes)?;
        Ok(SessionId(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts a cookie value only if it has the shape of an ID.
    pub fn parse(value: &str) -> Option<Self> {
        has_id_shape(value).then(|| SessionId(value.to_string()))
    }

    /// The bare ID (also accepted as a cookie value).
    pub fn as_cookie_value(&self) -> &str {
        &self.0
    }

    /// The cookie value: the ID and when it was issued. The time is not a
    /// secret and grants nothing; it lets the gateway tell the holder of a
    /// cookie it no longer knows why (for instance, a restart).
    pub fn cookie_value(&self, issued: Timestamp) -> String {
        format!("{}.{}", self.0, issued.as_millis())
    }

    /// Reads `ID` or `ID.issued`; `None` if the ID is malformed.
    pub fn parse_cookie(value: &str) -> Option<(SessionId, Option<Timestamp>)> {
        let (id, issued) = match value.split_once('.') {
            Some((id, t)) => (id, t.parse().ok().map(Timestamp::from_millis)),
            None => (value, None),
        };
        Some((SessionId::parse(id)?, issued))
    }

    /// Like `parse_cookie`, but only the key: what a request's session
    /// check needs, without a copy of the secret.
    pub fn cookie_key(value: &str) -> Option<(SessionKey, Option<Timestamp>)> {
        let (id, issued) = match value.split_once('.') {
            Some((id, t)) => (id, t.parse().ok().map(Timestamp::from_millis)),
            None => (value, None),
        };
        has_id_shape(id).then(|| (key_of(id), issued))
    }

    pub fn key(&self) -> SessionKey {
        key_of(&self.0)
    }
}

fn has_id_shape(value: &str) -> bool {
    value.len() == ID_CHARS
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn key_of(id: &str) -> SessionKey {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    SessionKey(out)
}

/// SHA-256 of a session ID: what stores and logs see.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(pub [u8; 32]);

impl SessionKey {
    /// All 64 hex characters: how pages and the admin API name a session.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        crate::hex::decode(s).map(SessionKey)
    }

    /// The first 8 hex characters, for logs.
    pub fn short(&self) -> String {
        crate::hex::encode(&self.0[..4])
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({})", self.short())
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_long_random_and_parse_back() {
        let rng = SystemRandom::new();
        let a = SessionId::generate(&rng).unwrap();
        let b = SessionId::generate(&rng).unwrap();
        assert_eq!(a.as_cookie_value().len(), 43);
        assert_ne!(a.as_cookie_value(), b.as_cookie_value());
        let again = SessionId::parse(a.as_cookie_value()).unwrap();
        assert_eq!(again.key(), a.key());
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn cookies_carry_the_issue_time() {
        let id = SessionId::generate(&SystemRandom::new()).unwrap();
        let value = id.cookie_value(Timestamp::from_millis(1234));
        let (back, issued) = SessionId::parse_cookie(&value).unwrap();
        assert_eq!(back.key(), id.key());
        assert_eq!(issued, Some(Timestamp::from_millis(1234)));
        let (bare, none) = SessionId::parse_cookie(id.as_cookie_value()).unwrap();
        assert_eq!(bare.key(), id.key());
        assert_eq!(none, None);
        assert!(SessionId::parse_cookie("short.123").is_none());
        assert_eq!(
            SessionId::parse_cookie(&format!("{}.x", id.as_cookie_value()))
                .unwrap()
                .1,
            None
        );
    }

    #[test]
    fn a_cookie_key_is_the_key_of_the_id_it_carries() {
        let id = SessionId::generate(&SystemRandom::new()).unwrap();
        let value = id.cookie_value(Timestamp::from_millis(1234));
        assert_eq!(
            SessionId::cookie_key(&value),
            Some((id.key(), Some(Timestamp::from_millis(1234))))
        );
        assert_eq!(
            SessionId::cookie_key(id.as_cookie_value()),
            Some((id.key(), None))
        );
        assert_eq!(SessionId::cookie_key("short.123"), None);
    }

    #[test]
    fn odd_cookie_values_are_not_ids() {
        assert!(SessionId::parse("").is_none());
        assert!(SessionId::parse("short").is_none());
        assert!(SessionId::parse(&"a".repeat(44)).is_none());
        assert!(SessionId::parse(&format!("{}=", "a".repeat(42))).is_none());
    }

    #[test]
    fn keys_are_named_by_eight_hex_chars() {
        let key = SessionKey([0xab; 32]);
        assert_eq!(key.short(), "abababab");
        assert_eq!(format!("{key:?}"), "SessionKey(abababab)");
        assert_eq!(SessionKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(SessionKey::from_hex("abab"), None);
        assert_eq!(SessionKey::from_hex(&"zz".repeat(32)), None);
    }
}
