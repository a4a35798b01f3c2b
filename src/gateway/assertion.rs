//! The signed identity assertion (`identity.assertion_header`): for apps
//! that would rather verify who the user is than trust a plain header. The
//! value is `BODY.SIG`, both base64url without padding: BODY is JSON
//! `{"v":1,"user":…,"groups":[…],"iat":…,"exp":…}` (seconds since the
//! epoch), SIG is HMAC-SHA256 of BODY (the base64url text) under the key in
//! `identity.assertion_key_file`. An assertion lives `LIFETIME`: each
//! request gets a fresh one. Pure.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

use crate::clock::Timestamp;
use crate::wire::identity_headers::Identity;

pub const LIFETIME_SECS: u64 = 60;

pub fn assertion(identity: &Identity, key: &hmac::Key, now: Timestamp) -> String {
    let iat = now.as_secs();
    let body = serde_json::json!({
        "v": 1,
        "user": identity.user,
        "groups": &identity.groups[..],
        "iat": iat,
        "exp": iat + LIFETIME_SECS,
    });
    let body = URL_SAFE_NO_PAD.encode(body.to_string());
    let tag = hmac::sign(key, body.as_bytes());
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an app does (the README shows it in Python and PHP).
    fn verify(value: &str, key: &[u8], now_secs: u64) -> Option<serde_json::Value> {
        let (body, sig) = value.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(sig).ok()?;
        hmac::verify(
            &hmac::Key::new(hmac::HMAC_SHA256, key),
            body.as_bytes(),
            &tag,
        )
        .ok()?;
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (claims["exp"].as_u64()? > now_secs).then_some(claims)
    }

    fn alice() -> Identity {
        Identity {
            user: "alice".into(),
            email: None,
            name: None,
            groups: vec!["staff".to_string(), "admins".to_string()].into(),
        }
    }

    #[test]
    fn apps_can_verify_it_until_it_expires() {
        let key = [7u8; 32];
        let now = Timestamp::from_millis(1_700_000_000_000);
        let value = assertion(&alice(), &hmac::Key::new(hmac::HMAC_SHA256, &key), now);
        let claims = verify(&value, &key, 1_700_000_001).unwrap();
        assert_eq!(claims["user"], "alice");
        assert_eq!(claims["groups"], serde_json::json!(["staff", "admins"]));
        assert_eq!(claims["exp"], 1_700_000_060);
        assert!(verify(&value, &key, 1_700_000_060).is_none(), "expired");
        assert!(
            verify(&value, &[8u8; 32], 1_700_000_001).is_none(),
            "other key"
        );
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let key = [7u8; 32];
        let value = assertion(
            &alice(),
            &hmac::Key::new(hmac::HMAC_SHA256, &key),
            Timestamp::from_millis(1_000),
        );
        let (_, sig) = value.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD
            .encode(r#"{"v":1,"user":"mallory","groups":["admins"],"iat":1,"exp":99999999999}"#);
        assert!(verify(&format!("{forged}.{sig}"), &key, 2).is_none());
    }
}
