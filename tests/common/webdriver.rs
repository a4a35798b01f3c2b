//! A real browser for tests: `chromedriver` on a free loopback port,
//! driving headless Chromium over WebDriver (fantoccini).
//!
//! Each `Profile` is a fresh browser with its own `--user-data-dir` in a
//! temporary directory, so two profiles are two devices (no shared cookies,
//! storage or BroadcastChannel). Helpers open tabs, switch between them,
//! wait for a condition with a deadline (polling, never a blind sleep),
//! read the console log and save PNG screenshots.
//!
//! Without `chromedriver` (on PATH or /usr/bin) or a Chromium binary a test
//! skips with a printed reason, except under `CI=true`, where that is a
//! failure. Dropping the `WebDriver` kills chromedriver and every browser
//! it started (they share its process group); nothing else is touched.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::wd::WindowHandle;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long the helpers wait when the caller gives no deadline of its own.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(15);

/// The first of `names` found as a file on PATH, then in /usr/bin.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(PathBuf::from("/usr/bin"));
    for name in names {
        for dir in &dirs {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A skip (locally) or a failure (under `CI=true`) for a missing program.
fn missing(what: &str) -> Option<WebDriver> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} not found, and CI=true makes that a failure (.ci/run installs chromium and chromium-driver)");
    }
    eprintln!("SKIPPED: {what} not found (install chromium and chromium-driver to run this test)");
    None
}

/// One running chromedriver. Start it with `WebDriver::start()`, open
/// browsers with `profile()`.
pub struct WebDriver {
    child: Child,
    pub port: u16,
    browser: PathBuf,
    /// Parent of every profile's user-data-dir; removed on drop.
    profiles: tempfile::TempDir,
    log_path: PathBuf,
}

impl WebDriver {
    /// Starts chromedriver and waits until it answers `/status`; `None`
    /// (with a printed reason) when chromedriver or Chromium is missing and
    /// `CI` is not `true`.
    pub fn start() -> Option<WebDriver> {
        let Some(driver) = find_program(&["chromedriver", "chromium-driver"]) else {
            return missing("chromedriver");
        };
        let Some(browser) = find_program(&["chromium", "chromium-browser", "google-chrome"]) else {
            return missing("chromium");
        };
        let profiles = tempfile::tempdir().unwrap();
        let log_path = profiles.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let port = super::free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group, so drop can end chromedriver and the
            // browsers it started with one signal, by id.
            .process_group(0)
            .spawn()
            .unwrap();
        let mut wd = WebDriver {
            child,
            port,
            browser,
            profiles,
            log_path,
        };
        wd.wait_ready();
        Some(wd)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let status = super::raw_request(
                    format!("127.0.0.1:{}", self.port).parse().unwrap(),
                    "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                );
                if status.contains("\"ready\":true") {
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("chromedriver exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What chromedriver has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new headless browser with a fresh profile (a device of its own).
    pub async fn profile(&self) -> Profile {
        let dir = tempfile::tempdir_in(self.profiles.path()).unwrap();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.browser.to_string_lossy(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--window-size=1024,768",
                    format!("--user-data-dir={}", dir.path().display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        // The connector is built with rustls (never used: chromedriver is
        // plain HTTP), which needs a process-wide crypto provider.
        pingora::tls::install_default_crypto_provider();
        let client = ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps)
            .connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("new WebDriver session: {e}\n{}", self.log()));
        let session = client.session_id().await.unwrap().unwrap_or_default();
        Profile {
            client,
            driver: self.url(),
            session,
            log: Mutex::new(Vec::new()),
            _dir: dir,
        }
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browsers it launched.
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on a process group this harness created.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One console message (`level` is `SEVERE`, `WARNING`, `INFO`, ...).
#[derive(Clone, Debug)]
pub struct ConsoleEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

/// One browser (a profile, a device) driven over WebDriver.
pub struct Profile {
    pub client: Client,
    driver: String,
    session: String,
    /// Console entries read so far (the driver hands each out only once).
    log: Mutex<Vec<ConsoleEntry>>,
    _dir: tempfile::TempDir,
}

impl Profile {
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    pub async fn current_url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Opens a new tab, switches to it and returns its handle.
    pub async fn new_tab(&self) -> WindowHandle {
        let tab = self.client.new_window(true).await.unwrap();
        self.client
            .switch_to_window(tab.handle.clone())
            .await
            .unwrap();
        tab.handle
    }

    /// The handle of the tab commands go to now.
    pub async fn tab(&self) -> WindowHandle {
        self.client.window().await.unwrap()
    }

    pub async fn switch_to(&self, tab: &WindowHandle) {
        self.client.switch_to_window(tab.clone()).await.unwrap();
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// current tab and returns its value.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("execute {script}: {e}"))
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        let el = self.client.find(Locator::Css(css)).await.ok()?;
        el.text().await.ok()
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Replaces the content of the first element matching `css` with
    /// `text`, typed (a form may come filled in: the login page keeps the
    /// last user name).
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"));
        el.clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        el.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Polls `probe` until it answers `Some` (every 50 ms), failing the
    /// test with `what` and the last console messages after `timeout`.
    pub async fn wait_until<T, F, Fut>(&self, what: &str, timeout: Duration, probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        match poll_until(timeout, probe).await {
            Some(v) => v,
            None => panic!(
                "timed out after {timeout:?} waiting for {what}; url {}; console: {:?}",
                self.current_url().await,
                self.console().await
            ),
        }
    }

    /// Waits until the current tab's URL satisfies `ok` and returns it.
    pub async fn wait_for_url(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_until(what, timeout, || async {
            let url = self.current_url().await;
            ok(&url).then_some(url)
        })
        .await
    }

    /// Waits until an element matching `css` is displayed.
    pub async fn wait_for_visible(&self, css: &str, timeout: Duration) {
        self.wait_until(&format!("{css} to be displayed"), timeout, || async {
            let el = self.client.find(Locator::Css(css)).await.ok()?;
            el.is_displayed().await.ok()?.then_some(())
        })
        .await
    }

    /// Waits until no element matching `css` is displayed.
    pub async fn wait_for_hidden(&self, css: &str, timeout: Duration) {
        self.wait_until(&format!("{css} to be hidden"), timeout, || async {
            match self.client.find(Locator::Css(css)).await {
                Err(_) => Some(()),
                Ok(el) => (!el.is_displayed().await.unwrap_or(false)).then_some(()),
            }
        })
        .await
    }

    /// Every console message of this browser so far (all tabs; the
    /// driver's buffer is drained into ours on each call).
    pub async fn console(&self) -> Vec<ConsoleEntry> {
        let fresh = self.read_driver_log().await;
        let mut log = self.log.lock().unwrap();
        log.extend(fresh);
        log.clone()
    }

    /// The console messages at level `SEVERE`: uncaught errors, CSP
    /// violations, failed loads. The browser's own `/favicon.ico` fetch is
    /// left out: no page asked for it (see `console` for everything).
    pub async fn console_errors(&self) -> Vec<ConsoleEntry> {
        self.console()
            .await
            .into_iter()
            .filter(|e| e.level == "SEVERE")
            .filter(|e| !(e.source == "network" && e.message.contains("/favicon.ico ")))
            .collect()
    }

    /// chromedriver's log endpoint (`goog:loggingPrefs` browser ALL).
    async fn read_driver_log(&self) -> Vec<ConsoleEntry> {
        let url = format!("{}/session/{}/se/log", self.driver, self.session);
        let resp = reqwest::Client::new()
            .post(url)
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(
            status.is_success(),
            "reading the browser log: {status} {body}"
        );
        body["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| ConsoleEntry {
                        level: e["level"].as_str().unwrap_or("").to_string(),
                        source: e["source"].as_str().unwrap_or("").to_string(),
                        message: e["message"].as_str().unwrap_or("").to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Saves a PNG of the current tab at `path` (directories created).
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Ends the WebDriver session (the browser exits).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// Polls `probe` every 50 ms until it answers `Some` or `timeout` passes.
pub async fn poll_until<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
