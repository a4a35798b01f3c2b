//! The "ask" device-limit flow: after the password is verified, the login is
//! parked in a short-lived, single-use, signed token carried by the page
//! that lists the other devices, so nothing is typed twice. Pure apart from
//! the nonce, which the caller consumes in the store.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::time::Duration;

use super::signing::Signer;
use crate::clock::Timestamp;
use crate::hex;

pub const LIFETIME: Duration = Duration::from_secs(120);
const PURPOSE: &str = "pending-login";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub user: String,
    /// Fingerprint of the password hash that was verified.
    pub password_fingerprint: [u8; 8],
    pub expires: Timestamp,
    /// Makes the token single-use once consumed in the store.
    pub nonce: String,
    /// Binds the token to the browser that verified the password: a hash
    /// of its login-form nonce cookie.
    pub browser: [u8; 8],
    pub rd: String,
}

/// The `browser` value for a login-form nonce.
pub fn browser_of(login_nonce: &str) -> [u8; 8] {
    let d = ring::digest::digest(&ring::digest::SHA256, login_nonce.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&d.as_ref()[..8]);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Malformed,
    BadSignature,
    Expired,
}

impl PendingLogin {
    pub fn seal(&self, signer: &Signer) -> String {
        // Fields are joined with a byte that cannot appear in any of them.
        let payload = [
            "v1",
            &self.user,
            &hex::encode(&self.password_fingerprint),
            &self.expires.as_millis().to_string(),
            &self.nonce,
            &hex::encode(&self.browser),
            &self.rd,
        ]
        .join("\n");
        let body = URL_SAFE_NO_PAD.encode(payload.as_bytes());
        let tag = signer.token(PURPOSE, body.as_bytes());
        format!("{body}.{tag}")
    }

    pub fn open(token: &str, signer: &Signer, now: Timestamp) -> Result<PendingLogin, Rejected> {
        let (body, tag) = token.split_once('.').ok_or(Rejected::Malformed)?;
        if !signer.verify(PURPOSE, body.as_bytes(), tag) {
            return Err(Rejected::BadSignature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| Rejected::Malformed)?;
        let payload = String::from_utf8(payload).map_err(|_| Rejected::Malformed)?;
        let fields: Vec<&str> = payload.split('\n').collect();
        let [version, user, fingerprint, expires, nonce, browser, rd] = fields.as_slice() else {
            return Err(Rejected::Malformed);
        };
        if *version != "v1" {
            return Err(Rejected::Malformed);
        }
        let expires = Timestamp::from_millis(expires.parse().map_err(|_| Rejected::Malformed)?);
        if now >= expires {
            return Err(Rejected::Expired);
        }
        Ok(PendingLogin {
            user: user.to_string(),
            password_fingerprint: hex::decode(fingerprint).ok_or(Rejected::Malformed)?,
            expires,
            nonce: nonce.to_string(),
            browser: hex::decode(browser).ok_or(Rejected::Malformed)?,
            rd: rd.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PendingLogin {
        PendingLogin {
            user: "alice".into(),
            password_fingerprint: [0xab; 8],
            expires: Timestamp::from_millis(120_000),
            nonce: "n0nce".into(),
            browser: browser_of("login-nonce"),
            rd: "/reports?x=1".into(),
        }
    }

    #[test]
    fn round_trips_until_it_expires() {
        let signer = Signer::new(&[3; 32]);
        let token = sample().seal(&signer);
        assert_eq!(
            PendingLogin::open(&token, &signer, Timestamp::from_millis(119_999)),
            Ok(sample())
        );
        assert_eq!(
            PendingLogin::open(&token, &signer, Timestamp::from_millis(120_000)),
            Err(Rejected::Expired)
        );
    }

    #[test]
    fn tampering_is_detected() {
        let signer = Signer::new(&[3; 32]);
        let token = sample().seal(&signer);
        let mut other = sample();
        other.user = "mallory".into();
        let forged_body = other.seal(&signer);
        let (body, _) = forged_body.split_once('.').unwrap();
        let (_, tag) = token.split_once('.').unwrap();
        let now = Timestamp::from_millis(1);
        assert_eq!(
            PendingLogin::open(&format!("{body}.{tag}"), &signer, now),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            PendingLogin::open(&token, &Signer::new(&[4; 32]), now),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            PendingLogin::open("garbage", &signer, now),
            Err(Rejected::Malformed)
        );
        assert_eq!(
            PendingLogin::open("", &signer, now),
            Err(Rejected::Malformed)
        );
    }
}
