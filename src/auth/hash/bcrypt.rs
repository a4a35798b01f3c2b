//! bcrypt in its modular-crypt form: `$2a$`, `$2b$` and PHP's `$2y$` (the
//! same algorithm; the letter records which bug fixes the writer had).
//! Passwords past 72 bytes are cut there, as PHP's `password_verify` and
//! every other bcrypt do.

use super::Checked;

/// Cost 16 is already about 5 s a verification here; beyond it a login
/// would hold a hashing slot for minutes.
const MAX_COST: u32 = 16;

pub fn verify(stored: &str, password: &[u8]) -> Checked {
    let cost = stored
        .get(4..6)
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(0);
    if cost > MAX_COST {
        return Checked::Unsupported(format!("bcrypt with cost {cost} (beyond {MAX_COST})"));
    }
    // The crate compares the outputs with `subtle`, in constant time.
    Checked::from_bool(::bcrypt::verify(password, stored).unwrap_or(false))
}
