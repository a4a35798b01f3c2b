//! Hashes made by the real tools, all of the password
//! "correct horse battery staple" unless said otherwise.
//!
//! Django 5.2.19 (with argon2-cffi and bcrypt installed):
//!   python3 -c 'import django; from django.conf import settings;
//!     settings.configure(PASSWORD_HASHERS=[...every hasher...]); django.setup();
//!     from django.contrib.auth.hashers import make_password;
//!     print(make_password("correct horse battery staple", hasher="pbkdf2_sha256"))'
//!   (and hasher= each of the others; `make_password(None)` for the unusable one)
//! PHP 8.2.36:
//!   php -r 'echo password_hash("correct horse battery staple", PASSWORD_DEFAULT);'
//!   (and PASSWORD_ARGON2ID, PASSWORD_ARGON2I)

pub const PASSWORD: &str = "correct horse battery staple";

pub const DJANGO_PBKDF2_SHA256: &str =
    "pbkdf2_sha256$1000000$EPh1K52oGV6DHbW6Qh9EpR$M46ddOohvZSxKT4bq20GaFmoCEElIxo8Y9Fay6Nv2/0=";
pub const DJANGO_PBKDF2_SHA1: &str =
    "pbkdf2_sha1$1000000$24Rddp31JpBx23G4WMguKH$zpe4TXVLC5jkmQjAUCk8XF0n6uM=";
pub const DJANGO_ARGON2: &str = "argon2$argon2id$v=19$m=102400,t=2,p=8$NkE2OVBpTkREOHVxUmJDUndCbG9zUg$Xbn1Lv+MvB/JN0LNz1l2Vhg9Y2bHHcWgzg/LaPXKnIs";
pub const DJANGO_BCRYPT_SHA256: &str =
    "bcrypt_sha256$$2b$12$HKDPlN2YT6QnU8sH4RPmbeDayAq3fvUnCFLOCmnY0QRX8ot4dQKDK";
pub const DJANGO_BCRYPT: &str =
    "bcrypt$$2b$12$.AiE3JJGIWXUSUNgx43DRuY7AXLjvQ4k.sIOA2Bgb/kk67NAyc5Bm";
pub const DJANGO_SCRYPT: &str = "scrypt$16384$xDVfLmpHNi8arqssJkhmGg$8$5$l6TSuwhie6mnEnSrojBj2PInvmbSa8LZ0seEqSgz3HN4hg0vKVjmYxCuRCih+tQJbXywg4FeoAe46H17aiBmkw==";
pub const PHP_BCRYPT_2Y: &str = "$2y$10$9kD3v6aFypBONfIvVSiJOeNISRyuQstsPkdm4AjAIkCjM6OMgqpCy";
pub const PHP_ARGON2ID: &str = "$argon2id$v=19$m=65536,t=4,p=1$Mzl4Vk5xSWY4dVJqMmgyZw$4BHR7tiHpgaA554UAR0B1rShleL/XJsSxTfEOY5FDTs";
pub const PHP_ARGON2I: &str = "$argon2i$v=19$m=65536,t=4,p=1$dUVGU0d3ajJueGhseUpxcA$mWdjvWWxd4PNICIz7B5ix+dJQE+bdYNVsO97P1sZmgw";

/// `make_password(None)`: an unusable password.
pub const DJANGO_UNUSABLE: &str = "!4CiVwwors9uFWYwxZ5UoouFXvGScNJDI6Ks8n4O4";
/// `make_password("x" * 100, hasher="bcrypt_sha256")`.
pub const DJANGO_BCRYPT_SHA256_LONG: &str =
    "bcrypt_sha256$$2b$12$EmZrlTXFpecut5GrrXs.N.xFPgG8M1lRFp/Xx1xESLjHZX/3mAW6W";
/// `make_password("pässwörd €", hasher="pbkdf2_sha256")`.
pub const DJANGO_PBKDF2_UNICODE: &str =
    "pbkdf2_sha256$1000000$LHTAjhq4xAUkcMV34ANDRD$HrikPBMdr/UpQzzXTCXjgYWFJ3ghs/RXCSjfhqf4EyY=";

pub const ALL: [(&str, &str); 9] = [
    ("django pbkdf2_sha256", DJANGO_PBKDF2_SHA256),
    ("django pbkdf2_sha1", DJANGO_PBKDF2_SHA1),
    ("django argon2", DJANGO_ARGON2),
    ("django bcrypt_sha256", DJANGO_BCRYPT_SHA256),
    ("django bcrypt", DJANGO_BCRYPT),
    ("django scrypt", DJANGO_SCRYPT),
    ("php bcrypt $2y$", PHP_BCRYPT_2Y),
    ("php argon2id", PHP_ARGON2ID),
    ("php argon2i", PHP_ARGON2I),
];
