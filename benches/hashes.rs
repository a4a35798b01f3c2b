//! Logins per second by hash format: one verification of the right
//! password through `auth::hash::verify` (what the hashing threads run for
//! every sign-in), for each format an app's database may hold, at the cost
//! the tool that wrote it uses by default. One verification is one sign-in
//! (or one refused guess) on one core; `max_concurrent_hashes` of them run
//! at once. Run: `cargo bench --bench hashes` (a few minutes on two cores).
//!
//! The hashes are the real tools' (Django 5.2, PHP 8.2), shared with the
//! unit tests, plus the gateway's own argon2id made by `hash-password`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::time::Duration;

use gatehouse::auth::hash::verify;
use gatehouse::auth::password::hash_password;

#[path = "../src/auth/hash/vectors.rs"]
#[allow(dead_code)]
mod vectors;
use vectors::*;

fn formats(c: &mut Criterion) {
    let own = hash_password(PASSWORD).unwrap();
    let cases: [(&str, &str); 10] = [
        ("argon2id m=19456,t=2,p=1 (users file, OWASP)", own.as_str()),
        ("php argon2id m=65536,t=4,p=1 (PHP default)", PHP_ARGON2ID),
        ("php bcrypt $2y$ cost 10 (PHP default)", PHP_BCRYPT_2Y),
        (
            "django pbkdf2_sha256 1,000,000 (Django 5.2 default)",
            DJANGO_PBKDF2_SHA256,
        ),
        (
            "django pbkdf2_sha1 1,000,000 (Django 5.2 default)",
            DJANGO_PBKDF2_SHA1,
        ),
        (
            "django argon2 m=102400,t=2,p=8 (Django default)",
            DJANGO_ARGON2,
        ),
        (
            "django bcrypt_sha256 cost 12 (Django default)",
            DJANGO_BCRYPT_SHA256,
        ),
        ("django bcrypt cost 12 (Django default)", DJANGO_BCRYPT),
        (
            "django scrypt N=16384,r=8,p=5 (Django default)",
            DJANGO_SCRYPT,
        ),
        (
            "unusable django password (!…): refused unverified",
            DJANGO_UNUSABLE,
        ),
    ];
    let mut group = c.benchmark_group("verify");
    // Each verification takes tens to hundreds of milliseconds: the fewest
    // samples criterion allows, each one verification.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    for (name, stored) in cases {
        let expected = !stored.starts_with('!');
        assert_eq!(verify(stored, PASSWORD).is_match(), expected, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| verify(black_box(stored), black_box(PASSWORD)))
        });
    }
    group.finish();
}

criterion_group!(benches, formats);
criterion_main!(benches);
