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
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("demo.log");
    let mut child = Command::new(common::binary())
        .args(["demo", "--listen", &listen, "--app-listen", &app])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = Kill(child);

    let mut url = None;
    let mut password = None;
    for line in BufReader::new(stdout).lines().take(10) {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["open", u] => url = Some(u.to_string()),
            ["password", p] => password = Some(p.to_string()),
            _ => {}
        }
        if url.is_some() && password.is_some() {
            break;
        }
    }
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
}
