//! Honest start-up: a listener that cannot bind ends the process at once
//! with exit code 1 and one line naming the address, before anything is
//! reported listening or ready; `run -t` checks the addresses too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Started {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Started {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gatehouse.log")).unwrap_or_default()
    }
}

fn start(listen: SocketAddr, admin: SocketAddr, flags: &[&str]) -> Started {
    let dir = tempfile::tempdir().unwrap();
    let text = common::config("127.0.0.1:9".parse().unwrap(), "")
        .replace("@LISTEN@", &listen.to_string())
        .replace("@ADMIN@", &admin.to_string());
    std::fs::write(dir.path().join("gatehouse.toml"), text).unwrap();
    std::fs::write(dir.path().join("users.toml"), common::users_toml()).unwrap();
    let log = std::fs::File::create(dir.path().join("gatehouse.log")).unwrap();
    let child = Command::new(common::binary())
        .arg("run")
        .arg("-c")
        .arg(dir.path().join("gatehouse.toml"))
        .args(flags)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Started { child, dir }
}

fn loopback() -> SocketAddr {
    format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap()
}

/// Waits up to `limit` for the process to exit, asking the admin
/// listener for `/ready` all the while: the exit status, its time, and
/// whether `/ready` ever answered 200.
fn watch_exit(
    s: &mut Started,
    admin: SocketAddr,
    limit: Duration,
) -> (Option<i32>, Duration, bool) {
    let started = Instant::now();
    let mut ever_ready = false;
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            return (status.code(), started.elapsed(), ever_ready);
        }
        if started.elapsed() > limit {
            return (None, started.elapsed(), ever_ready);
        }
        if let Ok(mut c) = TcpStream::connect(admin) {
            use std::io::{Read, Write};
            let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = c.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            ever_ready |= common::raw_status(&out) == 200;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_listen_port_in_use_ends_the_start_with_exit_1_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap();
    let admin = loopback();
    let mut s = start(listen, admin, &[]);
    let (code, took, ever_ready) = watch_exit(&mut s, admin, Duration::from_secs(5));
    let log = s.log();
    assert_eq!(code, Some(1), "took {took:?}:\n{log}");
    assert!(!ever_ready, "/ready answered 200:\n{log}");
    assert!(
        log.contains(&format!(
            "cannot listen on {listen} (server.listen): the address is already in use"
        )),
        "{log}"
    );
    assert!(!log.contains("listening"), "{log}");
    assert!(
        TcpStream::connect(admin).is_err(),
        "the admin listener must not outlive a failed start"
    );
}

#[test]
fn an_admin_port_in_use_ends_the_start_too() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = taken.local_addr().unwrap();
    let listen = loopback();
    let mut s = start(listen, admin, &[]);
    let (code, took, _) = watch_exit(&mut s, admin, Duration::from_secs(5));
    let log = s.log();
    assert_eq!(code, Some(1), "took {took:?}:\n{log}");
    assert!(
        log.contains(&format!(
            "cannot listen on {admin} (server.admin_listen): the address is already in use"
        )),
        "{log}"
    );
    assert!(!log.contains("listening"), "{log}");
    assert!(
        TcpStream::connect(listen).is_err(),
        "nothing serves on {listen}"
    );
}

#[test]
fn a_second_gateway_on_the_same_ports_exits_and_the_first_keeps_serving() {
    let upstream = common::Upstream::start();
    let first = common::Gateway::start(&common::config(upstream.addr, ""));
    let mut second = start(first.addr, first.admin, &[]);
    let (code, took, _) = watch_exit(&mut second, first.admin, Duration::from_secs(5));
    assert_eq!(code, Some(1), "took {took:?}:\n{}", second.log());
    assert!(second
        .log()
        .contains(&format!("cannot listen on {}", first.addr)));
    let r = common::raw_request(
        first.addr,
        "GET /static/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(common::raw_status(&r), 200, "{r}");
}

#[test]
fn run_t_checks_that_the_addresses_can_be_bound() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let admin = loopback();
    let mut s = start(busy, admin, &["-t"]);
    let (code, _, _) = watch_exit(&mut s, admin, Duration::from_secs(5));
    assert_eq!(code, Some(1), "{}", s.log());
    assert!(
        s.log()
            .contains(&format!("cannot listen on {busy} (server.listen)")),
        "{}",
        s.log()
    );

    let (listen, admin) = (loopback(), loopback());
    let mut s = start(listen, admin, &["-t"]);
    let (code, _, _) = watch_exit(&mut s, admin, Duration::from_secs(5));
    assert_eq!(code, Some(0), "{}", s.log());
    assert!(
        s.log()
            .contains("the listen and admin addresses can be bound"),
        "{}",
        s.log()
    );
    // The check leaves nothing bound behind.
    assert!(TcpListener::bind(listen).is_ok());
    assert!(TcpListener::bind(admin).is_ok());
}
