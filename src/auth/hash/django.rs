//! Django's hasher formats, `algorithm$…` as `make_password` writes them:
//! `pbkdf2_sha256`, `pbkdf2_sha1`, `argon2`, `bcrypt_sha256`, `bcrypt`,
//! `scrypt`. PBKDF2 comes from `ring` (already the gateway's crypto, and
//! constant-time in its own `verify`), scrypt from RustCrypto.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::num::NonZeroU32;
use subtle::ConstantTimeEq;

use super::{format_name, Checked};

/// Ten times Django 5.2's 1,000,000: enough for years of raised defaults,
/// not enough for a stored hash to hold a hashing slot for minutes.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// scrypt's memory is 128·n·r bytes: Django's default is 16 MiB.
const MAX_SCRYPT_MEMORY: u64 = 256 * 1024 * 1024;
const MAX_SCRYPT_PARALLELISM: u32 = 64;

pub fn verify(stored: &str, password: &str) -> Checked {
    let Some((algorithm, rest)) = stored.split_once('$') else {
        return Checked::Unsupported(format_name(stored));
    };
    match algorithm {
        "pbkdf2_sha256" => pbkdf2(
            (ring::pbkdf2::PBKDF2_HMAC_SHA256, 32),
            algorithm,
            rest,
            password,
        ),
        "pbkdf2_sha1" => pbkdf2(
            (ring::pbkdf2::PBKDF2_HMAC_SHA1, 20),
            algorithm,
            rest,
            password,
        ),
        // `argon2$argon2id$v=19$…`: the PHC string without its leading `$`.
        "argon2" if rest.starts_with("argon2") => {
            super::argon2::verify(&format!("${rest}"), password)
        }
        // `bcrypt$$2b$12$…`: the bcrypt string after the algorithm's `$`.
        "bcrypt" => super::bcrypt::verify(rest, password.as_bytes()),
        // Django hashes first so that bytes past bcrypt's 72 count: bcrypt
        // of the hex SHA-256 of the password.
        "bcrypt_sha256" => {
            let digest = ring::digest::digest(&ring::digest::SHA256, password.as_bytes());
            super::bcrypt::verify(rest, crate::hex::encode(digest.as_ref()).as_bytes())
        }
        "scrypt" => scrypt(rest, password),
        _ => Checked::Unsupported(format_name(stored)),
    }
}

/// `iterations$salt$base64(hash)`; the salt is used as its UTF-8 text.
fn pbkdf2(
    (algorithm, length): (ring::pbkdf2::Algorithm, usize),
    name: &str,
    rest: &str,
    password: &str,
) -> Checked {
    let mut parts = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(hash)) = (parts.next(), parts.next(), parts.next())
    else {
        return Checked::Mismatch;
    };
    let (Ok(iterations), Ok(expected)) = (iterations.parse::<u32>(), STANDARD.decode(hash)) else {
        return Checked::Mismatch;
    };
    if iterations > MAX_PBKDF2_ITERATIONS {
        return Checked::Unsupported(format!(
            "{name} with {iterations} iterations (beyond {MAX_PBKDF2_ITERATIONS})"
        ));
    }
    let Some(iterations) = NonZeroU32::new(iterations) else {
        return Checked::Mismatch;
    };
    // Django stores the digest's full length; a shorter one would let a
    // damaged hash match on a prefix.
    if expected.len() != length {
        return Checked::Mismatch;
    }
    Checked::from_bool(
        ring::pbkdf2::verify(
            algorithm,
            iterations,
            salt.as_bytes(),
            password.as_bytes(),
            &expected,
        )
        .is_ok(),
    )
}

/// `n$salt$r$p$base64(hash)`, a 64-byte output (Django's `dklen`).
fn scrypt(rest: &str, password: &str) -> Checked {
    let parts: Vec<&str> = rest.splitn(5, '$').collect();
    let [n, salt, r, p, hash] = parts[..] else {
        return Checked::Mismatch;
    };
    let (Ok(n), Ok(r), Ok(p), Ok(expected)) = (
        n.parse::<u64>(),
        r.parse::<u32>(),
        p.parse::<u32>(),
        STANDARD.decode(hash),
    ) else {
        return Checked::Mismatch;
    };
    let memory = 128u64.saturating_mul(n).saturating_mul(u64::from(r));
    if !n.is_power_of_two() || n < 2 {
        return Checked::Unsupported(format!("scrypt with n={n} (not a power of two)"));
    }
    if memory > MAX_SCRYPT_MEMORY || p > MAX_SCRYPT_PARALLELISM {
        return Checked::Unsupported(format!(
            "scrypt with n={n},r={r},p={p} (beyond {MAX_SCRYPT_MEMORY} bytes or p={MAX_SCRYPT_PARALLELISM})"
        ));
    }
    if expected.len() != 64 {
        return Checked::Mismatch;
    }
    let Ok(log_n) = u8::try_from(n.trailing_zeros()) else {
        return Checked::Mismatch;
    };
    let Ok(params) = ::scrypt::Params::new(log_n, r, p) else {
        return Checked::Mismatch;
    };
    let mut out = vec![0u8; expected.len()];
    if ::scrypt::scrypt(password.as_bytes(), salt.as_bytes(), &params, &mut out).is_err() {
        return Checked::Mismatch;
    }
    Checked::from_bool(out.ct_eq(&expected).into())
}
