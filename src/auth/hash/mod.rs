//! Verifying stored password hashes in every format an app's database may
//! hold: argon2 PHC strings, bcrypt (`$2a$`, `$2b$`, `$2y$`, as PHP's
//! `password_hash` writes them) and Django's hashers. Pure functions, run
//! on the hashing threads (`verifier.rs`). Never logs, and never returns,
//! a hash or a password: what callers may log is the format's name.

mod argon2;
mod bcrypt;
mod django;

/// What a stored hash says about a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Match,
    Mismatch,
    /// A password that can never be used, such as Django's `!…`
    /// (`set_unusable_password`).
    Unusable,
    /// A format this gateway cannot verify (or parameters beyond its
    /// limits): never a match. The text names the format, never the hash.
    Unsupported(String),
}

impl Checked {
    pub fn is_match(&self) -> bool {
        *self == Checked::Match
    }

    fn from_bool(ok: bool) -> Self {
        if ok {
            Checked::Match
        } else {
            Checked::Mismatch
        }
    }
}

/// Verifies `password` against `stored` in whatever format it is, with the
/// parameters the hash carries; every comparison is constant-time.
pub fn verify(stored: &str, password: &str) -> Checked {
    if stored.is_empty() || stored.starts_with('!') {
        return Checked::Unusable;
    }
    if let Some(rest) = stored.strip_prefix('$') {
        return match rest.split('$').next() {
            Some("argon2id" | "argon2i" | "argon2d") => argon2::verify(stored, password),
            Some("2a" | "2b" | "2y") => bcrypt::verify(stored, password.as_bytes()),
            _ => Checked::Unsupported(format_name(stored)),
        };
    }
    django::verify(stored, password)
}

/// True when `stored` names a format that costs a real computation to
/// verify: only such a hash may stand in as the dummy for unknown users,
/// or they would be answered faster than real ones. Cheap: reads the
/// format's name only.
pub fn costs_a_verification(stored: &str) -> bool {
    const COMPUTED: [&str; 10] = [
        "argon2id",
        "argon2i",
        "argon2d",
        "2a",
        "2b",
        "2y",
        "pbkdf2_sha256",
        "pbkdf2_sha1",
        "bcrypt_sha256",
        "scrypt",
    ];
    if stored.is_empty() || stored.starts_with('!') {
        return false;
    }
    let name = format_name(stored);
    COMPUTED.contains(&name.as_str()) || name == "bcrypt" || name == "argon2"
}

/// The name of a hash's format, safe to log: the PHC or modular-crypt
/// identifier, or Django's algorithm name; never any part of the hash.
pub fn format_name(stored: &str) -> String {
    let id = match stored.strip_prefix('$') {
        Some(rest) => rest.split('$').next().unwrap_or(""),
        None => stored.split('$').next().unwrap_or(""),
    };
    let plausible = !id.is_empty()
        && id.len() <= 32
        && id != stored
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plausible {
        id.to_string()
    } else {
        "unrecognised".to_string()
    }
}

#[cfg(test)]
mod vectors;

#[cfg(test)]
mod tests {
    use super::vectors::*;
    use super::*;

    #[test]
    fn only_hashes_that_are_computed_may_be_the_dummy() {
        for computed in [
            DJANGO_PBKDF2_SHA256,
            DJANGO_PBKDF2_SHA1,
            DJANGO_ARGON2,
            DJANGO_BCRYPT_SHA256,
            DJANGO_BCRYPT,
            DJANGO_SCRYPT,
            PHP_BCRYPT_2Y,
            PHP_ARGON2ID,
            PHP_ARGON2I,
        ] {
            assert!(costs_a_verification(computed), "{computed}");
        }
        assert!(!costs_a_verification("!unusable"));
        assert!(!costs_a_verification(""));
        assert!(!costs_a_verification("md5$salt$hash"));
        assert!(!costs_a_verification("plaintext"));
    }

    #[test]
    fn every_format_from_the_real_tools_verifies() {
        for (name, hash) in ALL {
            assert_eq!(verify(hash, PASSWORD), Checked::Match, "{name}");
            assert_eq!(
                verify(hash, "correct horse battery stapl"),
                Checked::Mismatch,
                "{name}"
            );
            assert_eq!(verify(hash, ""), Checked::Mismatch, "{name}");
        }
    }

    #[test]
    fn non_ascii_passwords_and_long_ones() {
        assert!(verify(DJANGO_PBKDF2_UNICODE, "pässwörd €").is_match());
        assert!(!verify(DJANGO_PBKDF2_UNICODE, "passwort €").is_match());
        // bcrypt_sha256 exists so that bytes past bcrypt's 72 count.
        let long = "x".repeat(100);
        assert!(verify(DJANGO_BCRYPT_SHA256_LONG, &long).is_match());
        assert!(!verify(DJANGO_BCRYPT_SHA256_LONG, &"x".repeat(99)).is_match());
    }

    #[test]
    fn unusable_and_unknown_never_match() {
        assert_eq!(verify(DJANGO_UNUSABLE, PASSWORD), Checked::Unusable);
        assert_eq!(verify("!", ""), Checked::Unusable);
        assert_eq!(verify("", ""), Checked::Unusable);
        for stored in [
            "md5$abc$0123",
            "sha1$salt$deadbeef",
            "$1$saltsalt$hash",
            "$6$rounds=5000$salt$hash",
            "plaintext",
            "correct horse battery staple",
            "pbkdf2_sha512$1000$salt$aGFzaA==",
        ] {
            assert!(
                matches!(verify(stored, stored), Checked::Unsupported(_)),
                "{stored}"
            );
        }
        // A plaintext "hash" is never compared with the password.
        assert!(!verify(PASSWORD, PASSWORD).is_match());
    }

    #[test]
    fn format_names_never_carry_the_hash() {
        assert_eq!(format_name(DJANGO_PBKDF2_SHA256), "pbkdf2_sha256");
        assert_eq!(format_name(PHP_ARGON2ID), "argon2id");
        assert_eq!(format_name(PHP_BCRYPT_2Y), "2y");
        assert_eq!(format_name("md5$abc$0123"), "md5");
        assert_eq!(format_name("hunter2-plaintext"), "unrecognised");
        assert_eq!(format_name("a b$c"), "unrecognised");
        assert_eq!(format_name(&"x".repeat(40)), "unrecognised");
    }

    #[test]
    fn damaged_hashes_are_mismatches_or_unsupported_never_panics() {
        for (name, hash) in ALL {
            // An argon2 output cut to 16 bytes or more is still a hash of
            // the password (PHC outputs have any length): skip those cuts.
            let keep = if name.contains("argon2") { 22 } else { 0 };
            for cut in (0..hash.len() - keep).step_by(9) {
                if let Some(prefix) = hash.get(..cut) {
                    assert!(!verify(prefix, PASSWORD).is_match(), "{name} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn parameters_beyond_the_limits_are_refused_unverified() {
        for stored in [
            "pbkdf2_sha256$2000000000$salt$aGFzaA==",
            "scrypt$1048576$salt$64$64$aGFzaA==",
            "scrypt$1000$salt$8$1$aGFzaA==",
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$2y$31$9kD3v6aFypBONfIvVSiJOeNISRyuQstsPkdm4AjAIkCjM6OMgqpCy",
        ] {
            assert!(
                matches!(verify(stored, PASSWORD), Checked::Unsupported(_)),
                "{stored}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn arbitrary_stored_text_never_panics(stored in "[$a-z0-9_=,!]{0,80}", pw in "\\PC{0,20}") {
            let _ = verify(&stored, &pw);
            let _ = format_name(&stored);
        }
    }
}
