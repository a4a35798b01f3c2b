//! `gatehouse demo` starts a gateway and a demo app, prints the URL and a
//! password, and the printed password signs in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_demo_prints_a_password_that_signs_in() {
    let listen = format!("127.0.0.1:{}", common::free_port());
    let app = format!("127.0.0.1:{}", common::free_port());
    let admin = format!("127.0.0.1:{}", common::free_port());
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("demo.log");
    let mut child = Command::new(common::binary())
        .args([
            "demo",
            "--listen",
            &listen,
            "--app-listen",
            &app,
            "--admin-listen",
            &admin,
        ])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = Kill(child);

    let mut url = None;
    let mut password = None;
    let mut sessions = None;
    for line in BufReader::new(stdout).lines().take(10) {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["open", u] => url = Some(u.to_string()),
            ["password", p] => password = Some(p.to_string()),
            ["sessions", command @ ..] => sessions = Some(command.join(" ")),
            _ => {}
        }
        if url.is_some() && password.is_some() && sessions.is_some() {
            break;
        }
    }
    let sessions = sessions.expect("the demo prints how to list sessions");
    let url = url.expect("the demo prints its URL");
    let password = password.expect("the demo prints the password");
    assert_eq!(url, format!("http://{listen}/"));

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(&listen).is_err()
        || std::net::TcpStream::connect(&app).is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the demo did not start:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let mut b = common::Browser::new(&url);
    assert_eq!(b.page("/").await.status, 303, "the demo app needs a login");
    let r = b.login("demo", &password, "/").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.page("/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Hello, demo."), "{}", page.body);
    assert!(page.body.contains("x-remote-email"), "{}", page.body);
    let echo = b.api("/anything").await.json();
    assert_eq!(echo["headers"]["x-remote-user"], "demo");
    assert_eq!(echo["path"], "/anything");

    let public = common::Browser::new(&url).page("/public/").await;
    assert_eq!(public.status, 200);
    assert!(
        public.body.contains("Nobody is signed in"),
        "{}",
        public.body
    );
    assert!(
        !public.body.contains("signed you in"),
        "a signed-out visitor is not told they are signed in: {}",
        public.body
    );

    // The admin API is on: the printed command lists the demo's session.
    let words: Vec<&str> = sessions.split_whitespace().collect();
    assert_eq!(words[..3], ["gatehouse", "sessions", "list"], "{sessions}");
    let out = Command::new(common::binary())
        .args(&words[1..])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{sessions}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(listed.contains("demo"), "{listed}");

    // The password page works: the demo's users file is writable.
    let form = b.page("/.gatehouse/password").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let token = form.field("csrf_token");
    let new_password = "a-new-demo-password";
    let r = b
        .post_form(
            "/.gatehouse/password",
            &[
                ("current", password.as_str()),
                ("new", new_password),
                ("confirm", new_password),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut again = common::Browser::new(&url);
    assert_eq!(again.login("demo", new_password, "/").await.status, 303);
    assert_eq!(again.login("demo", &password, "/").await.status, 401);
}
