//! Test harness: the real gateway binary on a loopback port, in front of a
//! real upstream that records every request it receives, and a small
//! browser-like client that keeps cookies.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub mod app_db;
pub mod browser;
pub mod front;
pub mod html_app;
pub mod load;
pub mod php;
pub mod redis;
pub mod trickle;
pub mod upstream;
pub mod webdriver;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use browser::Browser;
pub use upstream::Upstream;

pub const ALICE_PASSWORD: &str = "alice-password-1";
/// Written as `secret.key` beside every test config (use it with
/// `server.secret_file = "secret.key"`).
pub const TEST_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";
pub const BOB_PASSWORD: &str = "bob-password-22";
/// Written as `admin.token` beside every test config (use it with
/// `server.admin_token_file = "admin.token"`); a file of the same name
/// given to `start_with_files` replaces it.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A port nobody listens on right now, and never handed out before in this
/// test process (the kernel may offer the same port to two binds in a row).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut seen = HANDED_OUT.lock().unwrap();
        if !seen.contains(&port) {
            seen.push(port);
            return port;
        }
    }
}

fn hashes() -> &'static (String, String) {
    static H: OnceLock<(String, String)> = OnceLock::new();
    H.get_or_init(|| {
        (
            gatehouse::auth::password::hash_password(ALICE_PASSWORD).unwrap(),
            gatehouse::auth::password::hash_password(BOB_PASSWORD).unwrap(),
        )
    })
}

pub fn users_toml() -> String {
    let (a, b) = hashes();
    format!(
        "[alice]\npassword = \"{a}\"\nname = \"Alice Example\"\nemail = \"alice@example.com\"\ngroups = [\"staff\", \"admins\"]\n\n\
         [bob]\npassword = \"{b}\"\nname = \"Bob\"\ngroups = []\n\n\
         [carol]\npassword = \"{b}\"\ndisabled = true\n\n\
         [dave]\npassword = \"{b}\"\ngroups = [\"kiosk\"]\n"
    )
}

/// A config with a public `/static/` route and a login route for the rest.
/// `@UPSTREAM@` in `extra` is replaced too.
pub fn config(upstream: SocketAddr, extra: &str) -> String {
    format!(
        "[server]\nlisten = [\"@LISTEN@\"]\nadmin_listen = \"@ADMIN@\"\ngrace_period = \"0s\"\nupgrade_sock = \"upgrade.sock\"\nthreads = 1\nlogout_paths = [\"/accounts/logout/\"]\n\n\
         [[route]]\npath_prefix = \"/static/\"\nupstream = \"{upstream}\"\naccess = \"public\"\n\n\
         [[route]]\npath_prefix = \"/admin/\"\nupstream = \"{upstream}\"\naccess = \"login\"\ngroups = [\"admins\"]\n\n\
         [[route]]\npath_prefix = \"/\"\nupstream = \"{upstream}\"\naccess = \"login\"\n\n\
         [users]\nfile = \"users.toml\"\n\n\
         [session]\ncookie_secure = false\n{extra}\n"
    )
    .replace("@UPSTREAM@", &upstream.to_string())
}

pub struct Gateway {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
    /// The extra flags it was started with, kept for `start_again`.
    flags: Vec<String>,
    /// Environment variables set on top of `RUST_LOG=debug`.
    env: Vec<(String, String)>,
    /// How many runs have logged "listening" in `gatehouse.log` so far.
    starts_logged: usize,
}

impl Gateway {
    /// Starts `gatehouse run` on `config_text` (with `@LISTEN@` filled in)
    /// and waits until it accepts connections.
    pub fn start(config_text: &str) -> Gateway {
        Self::start_with_users(config_text, &users_toml())
    }

    /// Starts with extra files (name, contents) beside the config.
    pub fn start_with_files(config_text: &str, files: &[(&str, &str)]) -> Gateway {
        Self::start_in(config_text, &users_toml(), files, &[])
    }

    pub fn start_with_users(config_text: &str, users: &str) -> Gateway {
        Self::start_in(config_text, users, &[], &[])
    }

    /// Starts with extra command-line flags after `run -c CONFIG` (global
    /// flags such as `--log-format json` are accepted there too).
    pub fn start_with_flags(config_text: &str, flags: &[&str]) -> Gateway {
        Self::start_in(config_text, &users_toml(), &[], flags)
    }

    /// Starts with environment variables set (`RUST_LOG`, ...).
    pub fn start_with_env(
        config_text: &str,
        files: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Gateway {
        Self::start_full(config_text, &users_toml(), files, &[], env)
    }

    fn start_in(config_text: &str, users: &str, files: &[(&str, &str)], flags: &[&str]) -> Gateway {
        Self::start_full(config_text, users, files, flags, &[])
    }

    fn start_full(
        config_text: &str,
        users: &str,
        files: &[(&str, &str)],
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin.token"), ADMIN_TOKEN).unwrap();
        for (name, contents) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config_path = dir.path().join("gatehouse.toml");
        let text = config_text
            .replace("@LISTEN@", &addr.to_string())
            .replace("@ADMIN@", &admin.to_string());
        std::fs::write(&config_path, text).unwrap();
        std::fs::write(dir.path().join("users.toml"), users).unwrap();
        std::fs::write(dir.path().join("secret.key"), TEST_SECRET).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = spawn_with(dir.path(), flags, &env);
        let mut gw = Gateway {
            addr,
            admin,
            child,
            dir,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            env,
            starts_logged: 0,
        };
        gw.wait_ready();
        gw
    }

    /// Waits for one more "listening" line than the runs before logged.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // The sockets are bound early; "listening" is logged once every
            // service (the SIGHUP handler included) has started.
            if self.log().matches("gatehouse listening on").count() > self.starts_logged
                && TcpStream::connect(self.addr).is_ok()
                && TcpStream::connect(self.admin).is_ok()
            {
                self.starts_logged += 1;
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("gateway exited with {status}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gateway did not start:\n{}", self.log());
    }

    /// A new browser, signed in as `user` (asserting that it worked).
    pub async fn signed_in(&self, user: &str, password: &str) -> Browser {
        let mut b = Browser::new(&self.url("/"));
        let r = b.login(user, password, "/").await;
        assert_eq!(r.status, 303, "{user}: {}", r.body);
        b
    }

    /// The status a fresh browser gets for a login attempt.
    pub async fn login_status(&self, user: &str, password: &str) -> u16 {
        Browser::new(&self.url("/"))
            .login(user, password, "/")
            .await
            .status
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends a signal (`KILL`, `TERM`, ...) and waits for the process to end.
    pub fn stop(&mut self, sig: &str) {
        signal(self.pid(), sig);
        let _ = self.child.wait();
    }

    /// Starts the gateway again on the same config, ports, flags and state.
    pub fn start_again(&mut self) {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        self.child = spawn_with(self.dir.path(), &flags, &self.env);
        self.wait_ready();
    }

    /// Pingora's binary upgrade: a new process started with `-u` takes the
    /// listening sockets over from this one, which then drains and exits.
    pub fn upgrade(&mut self) {
        let sock = self.dir.path().join("upgrade.sock");
        let _ = std::fs::remove_file(&sock);
        let mut flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        flags.push("-u");
        let new = spawn_with(self.dir.path(), &flags, &self.env);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(
                Instant::now() < deadline,
                "the new process never waited for the sockets:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        signal(self.pid(), "QUIT");
        let _ = self.child.wait();
        self.child = new;
        self.wait_ready();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGHUP and waits until the gateway logs the outcome.
    pub fn reload(&self) -> String {
        let before = self.log().matches("config_reload").count();
        signal(self.pid(), "HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.matches("config_reload").count() > before {
                return log;
            }
            assert!(Instant::now() < deadline, "no reload logged:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the gateway has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gatehouse.log")).unwrap_or_default()
    }

    /// Sends raw bytes and returns the whole raw response (the connection
    /// is closed by the request's `Connection: close`).
    pub fn raw(&self, request: &str) -> String {
        raw_request(self.addr, request)
    }

    /// One call to the admin API (`/ready`, `/metrics`, `/api/...`), with
    /// the bearer token when given: the status and the body.
    pub async fn admin(&self, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
        let url = format!("http://{}{}", self.admin, path);
        let mut req = reqwest::Client::new().request(method.parse().unwrap(), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gatehouse run` on the config in `dir` with extra `flags` and `env`,
/// logging to `dir/gatehouse.log`.
fn spawn_with(dir: &Path, flags: &[&str], env: &[(String, String)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("gatehouse.log"))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("run")
        .arg("-c")
        .arg(dir.join("gatehouse.toml"))
        .args(flags)
        .env("RUST_LOG", "debug")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub fn raw_request(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw response.
pub fn raw_status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gatehouse"))
}

/// Sends `kill -SIG pid` (`sig` without the `SIG`: `HUP`, `STOP`, ...) and
/// asserts that it was delivered.
pub fn signal(pid: impl std::fmt::Display, sig: &str) {
    let status = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

/// `gatehouse check-config` on `config_text`, written as `gatehouse.toml`
/// in a fresh directory beside the test `users.toml`: the exit code (-1
/// for none), stdout and stderr.
pub fn check_config(config_text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.toml"), users_toml()).unwrap();
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, config_text).unwrap();
    let out = Command::new(binary())
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

/// `n` fresh browsers signing in as `user` at the same time, the i-th at
/// `urls[i % urls.len()]`: each one's login status, and the browser.
pub async fn parallel_logins(
    urls: &[String],
    n: usize,
    user: &str,
    password: &str,
) -> Vec<(u16, Browser)> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (url, user, password) = (
                urls[i % urls.len()].clone(),
                user.to_string(),
                password.to_string(),
            );
            tokio::spawn(async move {
                let mut b = Browser::new(&url);
                let status = b.login(&user, &password, "/").await.status;
                (status, b)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
