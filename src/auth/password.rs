//! Argon2id at OWASP parameters (m=19456 KiB, t=2, p=1), PHC strings, and
//! the password fingerprint sessions carry. Never logs a password.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::OnceLock;

const M_COST_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn hasher() -> Result<Argon2<'static>, String> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A fresh argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "no randomness available for a salt".to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// What `hash-password` says about a password the password page would
/// refuse (it still prints the hash: an operator may mean it).
pub fn length_warning(password: &str, min_length: usize) -> Option<String> {
    let n = password.chars().count();
    (n < min_length).then(|| {
        format!("warning: this password has {n} characters, fewer than login.min_password_length ({min_length}); the password page would refuse it")
    })
}

/// Checks that a stored hash is an argon2id PHC string we can verify.
pub fn check_hash(phc: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(phc).map_err(|e| {
        if phc.starts_with('$') {
            format!("not a PHC string ({e})")
        } else {
            // Never echo it: it is probably somebody's password.
            "expected a password hash, found what looks like a plain password: run `gatehouse hash-password` and put the hash it prints here".to_string()
        }
    })?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "expected an argon2id hash from `gatehouse hash-password`, found {}",
            parsed.algorithm
        ));
    }
    // Unknown users are verified against a dummy hash at these parameters:
    // a user hashed with others would fail in a different time, and so be
    // told apart from an unknown one.
    let params =
        Params::try_from(&parsed).map_err(|e| format!("unreadable argon2 parameters ({e})"))?;
    if (params.m_cost(), params.t_cost(), params.p_cost()) != (M_COST_KIB, T_COST, P_COST) {
        return Err(format!(
            "expected argon2id parameters m={M_COST_KIB},t={T_COST},p={P_COST} (run `gatehouse hash-password`), found m={},t={},p={}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        ));
    }
    Ok(())
}

/// Constant-time verification with the parameters stored in the hash, in
/// any format `hash` knows.
pub fn verify_password(stored: &str, password: &str) -> bool {
    super::hash::verify(stored, password).is_match()
}

/// First 8 bytes of SHA-256 of the stored hash.
pub fn fingerprint(phc: &str) -> [u8; 8] {
    let digest = ring::digest::digest(&ring::digest::SHA256, phc.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest.as_ref()[..8]);
    out
}

/// A hash of a random password, verified against for unknown users so
/// that they cost the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut noise = [0u8; 16];
        // If randomness fails the fixed bytes still cost a full hash.
        let _ = SystemRandom::new().fill(&mut noise);
        let text: String = noise.iter().map(|b| format!("{b:02x}")).collect();
        hash_password(&text).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_use_owasp_parameters() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horse "));
        assert!(check_hash(&h).is_ok());
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn bad_hashes_never_verify() {
        assert!(!verify_password("", "x"));
        assert!(!verify_password("plaintext", "plaintext"));
        assert!(check_hash("plaintext").is_err());
        assert!(
            check_hash("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA").is_err()
        );
        let other_params = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(check_hash(other_params)
            .unwrap_err()
            .contains("m=19456,t=2,p=1"));
    }

    #[test]
    fn dummy_hash_is_a_real_hash() {
        assert!(check_hash(dummy_hash()).is_ok());
        assert!(!verify_password(dummy_hash(), ""));
    }

    #[test]
    fn fingerprints_follow_the_hash() {
        assert_eq!(fingerprint("a"), fingerprint("a"));
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }
}
