//! Argon2 PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), at whatever
//! parameters the app chose, within limits that keep one verification from
//! taking the machine's memory.

use ::argon2::password_hash::{PasswordHash, PasswordVerifier};
use ::argon2::{Argon2, Params};

use super::Checked;

/// 256 MiB per verification (PHP's default is 64 MiB, Django's 100 MiB);
/// `login.max_concurrent_hashes` of them may run at once.
const MAX_MEMORY_KIB: u32 = 256 * 1024;
const MAX_PASSES: u32 = 64;
const MAX_LANES: u32 = 64;
const MIN_OUTPUT: usize = 16;

pub fn verify(phc: &str, password: &str) -> Checked {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Checked::Mismatch;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return Checked::Mismatch;
    };
    // PHC lets the output be as short as 4 bytes; every writer we know
    // stores 16 or more, and fewer would make a guess cheap.
    if parsed.hash.is_none_or(|h| h.len() < MIN_OUTPUT) {
        return Checked::Mismatch;
    }
    if params.m_cost() > MAX_MEMORY_KIB
        || params.t_cost() > MAX_PASSES
        || params.p_cost() > MAX_LANES
    {
        return Checked::Unsupported(format!(
            "{} with m={},t={},p={} (beyond m={MAX_MEMORY_KIB},t={MAX_PASSES},p={MAX_LANES})",
            parsed.algorithm,
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        ));
    }
    // The algorithm, version and parameters come from the hash itself; the
    // output comparison inside is constant-time.
    Checked::from_bool(
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
    )
}
