//! A real PHP app (`php -S`, the built-in server) that answers every
//! request with what PHP made of it: `$_SERVER`'s `HTTP_*` variables, the
//! method and `$_COOKIE`, as JSON. PHP rewrites header names the CGI way
//! (`.`, space and `-` all become `_`), which is what the gateway's header
//! stripping must survive.
//!
//! Without `php` on PATH a test skips with a printed reason, except under
//! `CI=true`, where that is a failure (`.ci/run` installs php-cli).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const APP: &str = r#"<?php
$headers = [];
foreach ($_SERVER as $k => $v) {
    if (strncmp($k, 'HTTP_', 5) === 0) { $headers[$k] = $v; }
}
header('Content-Type: application/json');
echo json_encode([
    'method' => $_SERVER['REQUEST_METHOD'],
    'headers' => $headers,
    'cookies' => $_COOKIE,
], JSON_INVALID_UTF8_SUBSTITUTE);
"#;

pub struct Php {
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Php {
    /// `None` (with a printed reason) when php is missing, outside CI.
    pub fn start() -> Option<Php> {
        if Command::new("php").arg("-v").output().is_err() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("php is not on PATH, and CI=true makes that a failure (.ci/run installs php-cli)");
            }
            eprintln!("SKIPPED: php is not on PATH (install php-cli to run this test)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.php"), APP).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", super::free_port()).parse().unwrap();
        let child = Command::new("php")
            .arg("-S")
            .arg(addr.to_string())
            .arg("-t")
            .arg(dir.path())
            .arg(dir.path().join("index.php"))
            .env("PHP_CLI_SERVER_WORKERS", "4")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "php -S did not start on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Php {
            addr,
            child,
            _dir: dir,
        })
    }
}

impl Drop for Php {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
