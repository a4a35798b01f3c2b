//! Throwaway Redis servers for tests: each test starts its own on a free
//! port (standalone, or a 3-node cluster made with `redis-cli --cluster
//! create`), so tests never share state and run in parallel. Uses only std:
//! the library's unit tests include this file too.
//!
//! Without `redis-server` on PATH a test skips with a printed reason,
//! except under `CI=true`, where that is a failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `Some(())` when `program` is on PATH; otherwise prints why the test is
/// skipped, or panics under `CI=true`.
pub fn require(program: &str) -> Option<()> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if found {
        return Some(());
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{program} is not on PATH, and CI=true makes that a failure (.ci/run installs it)");
    }
    eprintln!(
        "SKIPPED: {program} is not on PATH (install redis-server and redis-tools to run this test)"
    );
    None
}

/// A port free now, whose cluster bus port (+10000) is free too.
fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

/// Sends one command in RESP and returns the raw reply text.
pub fn command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    // Good enough for the short replies tests read.
    std::thread::sleep(Duration::from_millis(5));
    let mut buf = vec![0u8; 1 << 20];
    let n = s.read(&mut buf)?;
    let mut out = String::from_utf8_lossy(&buf[..n]).into_owned();
    // Read on while more arrives quickly (long bulk replies).
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    Ok(out)
}

fn wait_for(port: u16, what: &str, ok: impl Fn(&str) -> bool, args: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(reply) = command(port, args) {
            if ok(&reply) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis on {port}: {what} not reached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    extra: Vec<String>,
}

impl RedisServer {
    /// A standalone server, or `None` (skipped) without redis-server.
    pub fn start() -> Option<RedisServer> {
        require("redis-server")?;
        Some(Self::spawn(free_port(), Vec::new()))
    }

    /// A standalone server with extra arguments (`--replicaof`, ...).
    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        require("redis-server")?;
        Some(Self::spawn(
            free_port(),
            extra.iter().map(|s| s.to_string()).collect(),
        ))
    }

    fn spawn(port: u16, extra: Vec<String>) -> RedisServer {
        let dir =
            std::env::temp_dir().join(format!("gatehouse-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = RedisServer {
            port,
            child: None,
            dir,
            extra,
        };
        s.run();
        s
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        wait_for(self.port, "PONG", |r| r.starts_with("+PONG"), &["PING"]);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's process id; it must be running (a pid of 0 would
    /// signal the whole process group).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    /// Stops the server (as an outage would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// Every key, as `redis-cli --scan` lists them.
    pub fn scan_keys(&self) -> Vec<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--scan"])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three masters, no replicas, slots spread by `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> Option<RedisCluster> {
        require("redis-server")?;
        require("redis-cli")?;
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let port = free_port();
                RedisServer::spawn(
                    port,
                    vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        format!("nodes-{port}.conf"),
                        "--cluster-node-timeout".into(),
                        "5000".into(),
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create runs");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for n in &nodes {
            wait_for(
                n.port,
                "cluster_state:ok",
                |r| r.contains("cluster_state:ok"),
                &["CLUSTER", "INFO"],
            );
        }
        Some(RedisCluster { nodes })
    }

    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Every key on every node.
    pub fn scan_keys(&self) -> Vec<String> {
        self.nodes.iter().flat_map(RedisServer::scan_keys).collect()
    }
}

/// A Redis Sentinel watching `master` (quorum 1, 1 s to call it down).
pub struct Sentinel {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Sentinel {
    pub fn start(master_port: u16, name: &str) -> Option<Sentinel> {
        require("redis-server")?;
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("gatehouse-sentinel-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {name} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {name} 1000\n\
                 sentinel failover-timeout {name} 3000\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel starts");
        wait_for(port, "PONG", |r| r.starts_with("+PONG"), &["PING"]);
        Some(Sentinel { port, child, dir })
    }

    /// The port of the master the sentinel names now.
    pub fn master_port(&self, name: &str) -> Option<u16> {
        let reply = command(self.port, &["SENTINEL", "get-master-addr-by-name", name]).ok()?;
        reply
            .lines()
            .filter(|l| !l.starts_with(['*', '$']))
            .nth(1)?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
