//! The command line: check-config names the file, line and key of each
//! mistake; hash-password makes hashes the gateway accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

fn check(config_text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.toml"), common::users_toml()).unwrap();
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, config_text).unwrap();
    let out = Command::new(common::binary())
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn base() -> String {
    common::config("127.0.0.1:9".parse().unwrap(), "idle_timeout = \"30m\"\n")
        .replace("@LISTEN@", "127.0.0.1:8080")
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_valid_config_passes() {
    let (code, out, err) = check(&base());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("OK (3 routes, 3 users)"), "{out}");
}

#[test]
fn the_shipped_example_config_passes() {
    let out = Command::new(common::binary())
        .args([
            "check-config",
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/gatehouse.toml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_misspelt_key_is_named_with_its_line() {
    let text = base().replace("idle_timeout = \"30m\"", "idle_timout = \"30m\"");
    let (code, _, err) = check(&text);
    assert_eq!(code, 1);
    let line = line_of(&text, "idle_timout");
    assert!(
        err.contains(&format!(
            "gatehouse.toml:{line}: session.idle_timout: unknown field `idle_timout`"
        )),
        "{err}"
    );
    assert!(err.contains("expected one of"), "{err}");
}

#[test]
fn a_bad_duration_is_named_with_its_line() {
    let text = base().replace("idle_timeout = \"30m\"", "idle_timeout = \"half an hour\"");
    let (code, _, err) = check(&text);
    assert_eq!(code, 1);
    let line = line_of(&text, "half an hour");
    assert!(
        err.contains(&format!(
            "gatehouse.toml:{line}: session.idle_timeout: expected a duration like \"30m\""
        )),
        "{err}"
    );
}

#[test]
fn several_mistakes_are_reported_together() {
    let text = base()
        .replace(
            "access = \"public\"",
            "access = \"public\"\ngroups = [\"x\"]",
        )
        .replace(
            "cookie_secure = false",
            "cookie_secure = false\nabsolute_timeout = \"forever\"",
        );
    let (code, _, err) = check(&text);
    assert_eq!(code, 1);
    assert!(err.contains("route[0].groups"), "{err}");
    assert!(err.contains("session.absolute_timeout"), "{err}");
}

#[test]
fn a_missing_users_file_is_named() {
    let text = base().replace("file = \"users.toml\"", "file = \"nope.toml\"");
    let (code, _, err) = check(&text);
    assert_eq!(code, 1);
    assert!(
        err.contains("nope.toml") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn hash_password_reads_stdin_and_makes_a_verifiable_argon2id_hash() {
    let mut child = Command::new(common::binary())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"tr0ub4dor&3\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = hash.trim();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(gatehouse::auth::password::verify_password(
        hash,
        "tr0ub4dor&3"
    ));
    assert!(!gatehouse::auth::password::verify_password(
        hash,
        "tr0ub4dor&3\n"
    ));
}
