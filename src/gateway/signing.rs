//! HMAC-SHA256 tokens over a purpose and a binding value, keyed from the
//! gateway's secret. CSRF tokens: the login form is bound to a random nonce
//! in a cookie of its own (so an attacker cannot log a victim into the
//! attacker's account); forms of a signed-in user are bound to their session
//! key. Pending-login tokens sign their own payload.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

pub struct Signer(hmac::Key);

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        // Derive a key of its own so the shared secret can serve other uses.
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&root, b"gatehouse signing v1");
        Signer(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    fn message(purpose: &str, binding: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(purpose.len() + 1 + binding.len());
        m.extend_from_slice(purpose.as_bytes());
        m.push(0);
        m.extend_from_slice(binding);
        m
    }

    pub fn token(&self, purpose: &str, binding: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, &Self::message(purpose, binding)))
    }

    /// Constant-time check of a submitted token.
    pub fn verify(&self, purpose: &str, binding: &[u8], token: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(token) {
            Ok(tag) => hmac::verify(&self.0, &Self::message(purpose, binding), &tag).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_purpose_binding_and_key() {
        let key = Signer::new(&[1; 32]);
        let t = key.token("login", b"nonce");
        assert!(key.verify("login", b"nonce", &t));
        assert!(!key.verify("login", b"other", &t));
        assert!(!key.verify("logout", b"nonce", &t));
        assert!(!Signer::new(&[2; 32]).verify("login", b"nonce", &t));
        assert!(!key.verify("login", b"nonce", ""));
        assert!(!key.verify("login", b"nonce", "not base64 !"));
        assert_eq!(
            t,
            key.token("login", b"nonce"),
            "deterministic for one binding"
        );
    }
}
