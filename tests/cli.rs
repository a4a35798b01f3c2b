//! The command line: check-config names the file, line and key of each
//! mistake; hash-password makes hashes the gateway accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::check_config as check;
use std::io::Write;
use std::process::{Command, Stdio};

fn base() -> String {
    common::config("127.0.0.1:9".parse().unwrap(), "idle_timeout = \"30m\"\n")
        .replace("@LISTEN@", "127.0.0.1:8080")
        .replace("@ADMIN@", "127.0.0.1:9091")
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_valid_config_passes() {
    let (code, out, err) = check(&base());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("OK (3 routes, 4 users, "), "{out}");
}

/// The table an operator reads to see what is public, in the order a
/// request tries the routes (the most specific first, not the file order).
#[test]
fn check_config_prints_the_resolved_route_table() {
    let text = base().replace(
        "[[route]]\npath_prefix = \"/static/\"",
        "[[route]]\nhost = \"Intranet.Example.com\"\npath_prefix = \"/\"\nupstream = \"127.0.0.1:9\"\naccess = \"public\"\n\n[[route]]\npath_prefix = \"/static/\"",
    );
    let (code, out, err) = check(&text);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip_while(|l| !l.starts_with("HOST"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["intranet.example.com", "/", "public", "-", "127.0.0.1:9"],
            vec!["*", "/static/", "public", "-", "127.0.0.1:9"],
            vec!["*", "/admin/", "login", "admins", "127.0.0.1:9"],
            vec!["*", "/", "login", "-", "127.0.0.1:9"],
        ],
        "{out}"
    );
}

#[test]
fn two_routes_for_the_same_host_and_prefix_are_refused_with_both_lines() {
    let text = format!(
        "{}\n[[route]]\npath_prefix = \"/static/\"\nupstream = \"127.0.0.1:9\"\naccess = \"login\"\n",
        base()
    );
    let (code, out, err) = check(&text);
    assert_eq!(code, 1, "{out}");
    let first = line_of(&text, "[[route]]");
    let lines: Vec<&str> = text.lines().collect();
    let second = lines.iter().rposition(|l| l.contains("[[route]]")).unwrap() + 1;
    assert!(
        err.contains(&format!("gatehouse.toml:{second}: route[3]: a second route for host (any) and path_prefix \"/static/\"")),
        "{err}"
    );
    assert!(
        err.contains("route[0] at ") && err.contains(&format!("gatehouse.toml:{first})")),
        "{err}"
    );
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
fn a_failure_delay_over_ten_seconds_is_refused() {
    let text = format!("{}\n[login]\nfailure_delay = \"30s\"\n", base());
    let (code, _, err) = check(&text);
    assert_eq!(code, 1);
    let line = line_of(&text, "failure_delay");
    assert!(
        err.contains(&format!(
            "gatehouse.toml:{line}: login.failure_delay: expected at most \"10s\""
        )),
        "{err}"
    );
}

#[test]
fn a_zero_failure_delay_in_any_unit_turns_it_off() {
    for zero in ["0", "0s", "0m", "0ms"] {
        let text = format!("{}\n[login]\nfailure_delay = \"{zero}\"\n", base());
        let (code, _, err) = check(&text);
        assert_eq!(code, 0, "{zero}: {err}");
    }
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
    let out = with_stdin(&["hash-password"], "tr0ub4dor&3\n");
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

fn users_cmd(args: &[&str], stdin: &str) -> (i32, String) {
    let args: Vec<&str> = std::iter::once("users")
        .chain(args.iter().copied())
        .collect();
    let out = with_stdin(&args, stdin);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn users_commands_edit_the_file_in_place() {
    use gatehouse::auth::password::verify_password;
    use gatehouse::auth::UserDb;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    let original = format!("# our users\n{}", common::users_toml());
    std::fs::write(&path, &original).unwrap();
    let file = path.to_str().unwrap();

    let (code, out) = users_cmd(
        &[
            "add", "erin", "-f", file, "--name", "Erin E", "--group", "staff",
        ],
        "erin-password-1\n",
    );
    assert_eq!(code, 0, "{out}");
    let db = UserDb::load(&path).unwrap();
    let erin = db.get("erin").unwrap();
    assert!(verify_password(&erin.password_hash, "erin-password-1"));
    assert_eq!(&erin.groups[..], ["staff"]);
    assert_eq!(erin.name.as_deref(), Some("Erin E"));

    let before = std::fs::read_to_string(&path).unwrap();
    let (code, out) = users_cmd(&["passwd", "bob", "-f", file], "new-bob-password\n");
    assert_eq!(code, 0, "{out}");
    let after = std::fs::read_to_string(&path).unwrap();
    let old_hash = UserDb::parse(&path, &before)
        .unwrap()
        .get("bob")
        .unwrap()
        .password_hash
        .clone();
    let new_hash = UserDb::load(&path)
        .unwrap()
        .get("bob")
        .unwrap()
        .password_hash
        .clone();
    assert!(verify_password(&new_hash, "new-bob-password"));
    // carol shares bob's old hash in the fixture: only bob's line changes
    assert_eq!(after, before.replacen(&old_hash, &new_hash, 1));

    let (code, out) = users_cmd(&["disable", "erin", "-f", file], "");
    assert_eq!(code, 0, "{out}");
    assert!(UserDb::load(&path).unwrap().get("erin").unwrap().disabled);
    let (code, out) = users_cmd(&["enable", "erin", "-f", file], "");
    assert_eq!(code, 0, "{out}");
    assert!(!UserDb::load(&path).unwrap().get("erin").unwrap().disabled);

    let (code, out) = users_cmd(&["disable", "nobody", "-f", file], "");
    assert_eq!(code, 1);
    assert!(out.contains("no user \"nobody\""), "{out}");
    let (code, out) = users_cmd(&["add", "erin", "-f", file], "whatever-password\n");
    assert_eq!(code, 1);
    assert!(out.contains("already exists"), "{out}");
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("# our users\n"));
}

/// `gatehouse check-config` on a config and a users file of its own.
fn check_with_users(config_text: &str, users: Option<&str>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    if let Some(u) = users {
        std::fs::write(dir.path().join("users.toml"), u).unwrap();
    }
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, config_text).unwrap();
    let out = Command::new(common::binary())
        .args(["check-config", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_plain_password_in_the_users_file_says_to_run_hash_password() {
    let (code, err) = check_with_users(&base(), Some("[alice]\npassword = \"hunter2-secret\"\n"));
    assert_eq!(code, 1);
    assert!(
        err.contains("users.toml:2: alice.password: expected a password hash, found what looks like a plain password: run `gatehouse hash-password`"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2-secret"),
        "the password is never echoed: {err}"
    );
}

#[test]
fn a_missing_users_file_is_named_at_users_file() {
    let text = base();
    let (code, err) = check_with_users(&text, None);
    assert_eq!(code, 1);
    let line = line_of(&text, "file = \"users.toml\"");
    assert!(
        err.contains(&format!(
            "gatehouse.toml:{line}: users.file: cannot read the users file "
        )),
        "{err}"
    );
    assert!(
        err.contains("users.toml: No such file or directory"),
        "{err}"
    );
}

/// Runs `gatehouse ARGS` with `stdin` written to it, and waits.
fn with_stdin(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(common::binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn hash_password(password: &str, args: &[&str]) -> (bool, String, String) {
    let args: Vec<&str> = std::iter::once("hash-password")
        .chain(args.iter().copied())
        .collect();
    let out = with_stdin(&args, &format!("{password}\n"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hash_password_warns_under_the_minimum_length() {
    let (ok, hash, err) = hash_password("short-pw", &[]);
    assert!(ok, "{err}");
    assert!(hash.starts_with("$argon2id$"), "still hashed: {hash}");
    assert!(
        err.contains("this password has 8 characters, fewer than login.min_password_length (10)"),
        "{err}"
    );
    let (_, _, err) = hash_password("long-enough-pw", &[]);
    assert!(err.is_empty(), "{err}");

    // With a config, its own minimum.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.toml"), common::users_toml()).unwrap();
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(
        &path,
        format!("{}\n[login]\nmin_password_length = 20\n", base()),
    )
    .unwrap();
    let (ok, _, err) = hash_password("long-enough-pw", &["-c", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        err.contains("fewer than login.min_password_length (20)"),
        "{err}"
    );
}
