//! What the benchmarks share: child processes that are always stopped, the
//! bare Pingora reference, waiting for a port, CPU time from /proc, and
//! the statistics. Each benchmark includes it with `#[path]`; not every
//! benchmark uses every piece.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, stopped when dropped.
pub struct Kill(pub Child);

impl Kill {
    /// SIGKILL now, and no SIGTERM later to a pid that may have been reused.
    pub fn kill_now(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        std::mem::forget(self);
    }
}

impl Drop for Kill {
    fn drop(&mut self) {
        // SIGTERM first: an nginx master killed outright leaves its workers behind
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Bare Pingora: a pass-through proxy with no filters.
pub struct PassThrough(pub SocketAddr);

#[async_trait::async_trait]
impl pingora::proxy::ProxyHttp for PassThrough {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(
        &self,
        _session: &mut pingora::proxy::Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<pingora::upstreams::peer::HttpPeer>> {
        Ok(Box::new(pingora::upstreams::peer::HttpPeer::new(
            self.0,
            false,
            String::new(),
        )))
    }
}

/// Runs bare Pingora (one worker thread) on `listen` in front of
/// `upstream`, in the calling thread; never returns.
pub fn serve_pass_through(listen: &str, upstream: SocketAddr) {
    let conf = pingora::server::configuration::ServerConf {
        threads: 1,
        ..Default::default()
    };
    let mut server = pingora::server::Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy =
        pingora::proxy::http_proxy_service(&server.configuration, PassThrough(upstream));
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.run(pingora::server::RunArgs::default());
}

/// Waits until `addr` accepts connections, at most `within`.
pub fn wait_for(addr: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `program` is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Clock ticks per second of the times in /proc/PID/stat.
pub fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The fields of /proc/PID/stat after the command name (which is in
/// parentheses and may hold spaces): index 0 is the state, 1 the parent.
pub fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    rest.split_whitespace().map(str::to_string).collect()
}

/// Seconds of CPU (user + system, all threads) that `pid` has used so far.
pub fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let f = stat_fields(pid);
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) / ticks
}

/// The median of the finite values (NaN when there are none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// `name` from the environment, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The release gateway on `config`, quiet (`RUST_LOG=warn`, no stderr).
pub fn gateway_process(config: &Path) -> Kill {
    Kill(
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["run", "-c"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The `Cookie` header of a browser signed in through the login form.
pub fn login_cookie(gateway: SocketAddr, user: &str, password: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut b = crate::common::Browser::new(&format!("http://{gateway}/"));
        let r = b.login(user, password, "/").await;
        assert_eq!(r.status, 303, "{user}: login failed");
        b.cookie_header()
    })
}
