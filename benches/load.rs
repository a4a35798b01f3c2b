//! The load benchmark: one command (`cargo bench --bench load`) starts a fast
//! upstream and measures, side by side, the upstream direct, the gateway on a
//! public route, the gateway authenticated (memory store), and, when nginx is
//! installed, nginx `proxy_pass` and nginx `auth_request` to an auth endpoint
//! that costs nothing. Then the authenticated path during a flood of wrong-
//! password logins. Needs `wrk` (Debian: `apt-get install wrk nginx-light`).
//!
//! Environment: LOAD_SECONDS (default 10), LOAD_CONNECTIONS (default 32).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{free_port, Browser};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        // SIGTERM first: an nginx master killed outright leaves its workers behind
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
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

/// Bare Pingora: a pass-through proxy with no filters, one worker thread,
/// in this process, as the reference for what the gateway adds.
struct PassThrough(SocketAddr);

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

fn bare_pingora(listen: SocketAddr, upstream: SocketAddr) {
    std::thread::spawn(move || {
        let conf = pingora::server::configuration::ServerConf {
            threads: 1,
            ..Default::default()
        };
        let mut server = pingora::server::Server::new_with_opt_and_conf(None, conf);
        server.bootstrap();
        let mut proxy =
            pingora::proxy::http_proxy_service(&server.configuration, PassThrough(upstream));
        proxy.add_tcp(&listen.to_string());
        server.add_service(proxy);
        server.run(pingora::server::RunArgs::default());
    });
}

fn wait_for(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[derive(Debug, Clone, Copy)]
struct Result {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn latency_ms(text: &str) -> f64 {
    let (num, unit) = text.trim().split_at(
        text.trim()
            .find(|c: char| c.is_alphabetic())
            .unwrap_or(text.len()),
    );
    let v: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        _ => f64::NAN,
    }
}

fn wrk(url: &str, header: Option<&str>, seconds: u64, connections: u32) -> Result {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut r = Result {
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => r.rps = v.parse().unwrap_or(f64::NAN),
            ["50%", v] => r.p50_ms = latency_ms(v),
            ["99%", v] => r.p99_ms = latency_ms(v),
            _ => {}
        }
        if line.contains("Non-2xx or 3xx responses") {
            panic!("{url}: errors during the run:\n{text}");
        }
    }
    r
}

/// nginx with one worker; `servers` is the body of its `http` block.
fn nginx(dir: &Path, name: &str, servers: &str) -> Kill {
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\npid {d}/{name}.pid;\nerror_log {d}/{name}.err warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n access_log off;\n client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n{servers}\n}}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    Kill(
        Command::new("nginx")
            .args(["-c", conf.to_str().unwrap(), "-p", dir.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts"),
    )
}

/// A tiny keep-alive HTTP server answering 200 "ok", for machines without nginx.
fn builtin_upstream(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 8192];
                let mut pending = Vec::new();
                loop {
                    let n = match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        if conn
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
}

/// The `Cookie` header of a browser signed in as `bench`.
fn login_cookie(gateway: SocketAddr, password: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut b = Browser::new(&format!("http://{gateway}/"));
        let r = b.login("bench", password, "/").await;
        assert_eq!(r.status, 303, "bench login failed");
        b.cookie_header()
    })
}

/// `concurrency` clients posting wrong passwords until `stop`, each with a
/// valid login form (nonce cookie and token), so every attempt costs the
/// gateway a real argon2id verification.
fn login_flood(
    gateway: SocketAddr,
    concurrency: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (client, stop) = (client.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    // a valid form: its nonce cookie and token
                    let mut form = Browser::new(&format!("http://{gateway}/"));
                    let token = form.page("/.gatehouse/login").await.field("csrf_token");
                    let cookie = form.cookie_header();
                    let body =
                        format!("username=bench&password=wrong-password&rd=%2F&csrf_token={token}");
                    let mut n = 0usize;
                    // bounded: at most 10,000 attempts per client
                    for _ in 0..10_000 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let resp = client
                            .post(format!("http://{gateway}/.gatehouse/login"))
                            .header("Cookie", &cookie)
                            .header("Content-Type", "application/x-www-form-urlencoded")
                            .body(body.clone())
                            .send()
                            .await;
                        if resp.is_ok_and(|r| r.status().as_u16() == 401) {
                            n += 1;
                        }
                    }
                    n
                }));
            }
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap_or(0);
            }
            total
        })
    })
}

fn row(name: &str, r: Option<Result>) -> String {
    match r {
        Some(r) => format!(
            "| {name} | {:.0} | {:.2} | {:.2} |",
            r.rps, r.p50_ms, r.p99_ms
        ),
        None => format!("| {name} | n/a | n/a | n/a |"),
    }
}

fn ratio(name: &str, a: Option<Result>, b: Option<Result>, target: f64) -> String {
    match (a, b) {
        (Some(a), Some(b)) => {
            let r = a.rps / b.rps;
            format!(
                "| {name} | {r:.2}x | ≥ {target:.2}x | {} |",
                if r >= target { "met" } else { "missed" }
            )
        }
        _ => format!("| {name} | n/a | ≥ {target:.2}x | not measured |"),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("load: benchmark");
        return;
    }
    if !have("wrk") {
        eprintln!("load benchmark skipped: wrk is not installed (apt-get install wrk)");
        return;
    }
    let seconds: u64 = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let connections: u32 = std::env::var("LOAD_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let dir = tempfile::tempdir().unwrap();
    let with_nginx = have("nginx");

    let upstream: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let auth_endpoint: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _upstream_nginx = if with_nginx {
        Some(nginx(
            dir.path(),
            "upstream",
            &format!(
                " server {{ listen {upstream}; location / {{ return 200 \"ok\"; }} }}\n\
                 server {{ listen {auth_endpoint}; location / {{ return 204; }} }}"
            ),
        ))
    } else {
        builtin_upstream(upstream);
        None
    };
    wait_for(upstream);

    // the gateway, one worker thread, logging warnings only (nginx logs nothing either)
    let hash = gatehouse::auth::password::hash_password("bench-password-1").unwrap();
    std::fs::write(
        dir.path().join("users.toml"),
        format!("[bench]\npassword = \"{hash}\"\ngroups = [\"staff\"]\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("secret.key"), [7u8; 32]).unwrap();
    let start_gateway = |name: &str, session: &str| {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = [\"{addr}\"]\nadmin_listen = \"\"\nthreads = 1\nsecret_file = \"secret.key\"\nupgrade_sock = \"{name}.sock\"\npid_file = \"{name}.pid\"\n\n\
                 [[route]]\npath_prefix = \"/public/\"\nupstream = \"{upstream}\"\naccess = \"public\"\n\n\
                 [[route]]\npath_prefix = \"/\"\nupstream = \"{upstream}\"\naccess = \"login\"\n\n\
                 [users]\nfile = \"users.toml\"\n\n[session]\ncookie_secure = false\n{session}\n\
                 [login]\nmax_failures = 0\n"
            ),
        )
        .unwrap();
        let process = Kill(
            Command::new(env!("CARGO_BIN_EXE_gatehouse"))
                .args(["run", "-c"])
                .arg(&config)
                .env("RUST_LOG", "warn")
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for(addr);
        (process, addr)
    };
    let (_gateway, gateway) = start_gateway("memory", "");
    let cookie = login_cookie(gateway, "bench-password-1");
    let cookie_header = format!("Cookie: {cookie}");
    // the same gateway on the Redis store, when redis-server is installed
    let redis = if have("redis-server") {
        common::redis::RedisServer::start()
    } else {
        eprintln!("Redis row skipped: redis-server is not installed");
        None
    };
    let redis_gateway = redis.as_ref().map(|r| {
        let (process, addr) = start_gateway(
            "redis",
            &format!("store = \"redis\"\nredis_url = \"{}\"\n", r.url()),
        );
        let cookie = format!("Cookie: {}", login_cookie(addr, "bench-password-1"));
        (process, addr, cookie)
    });

    let (proxy, auth_front) = (free_port(), free_port());
    let _front = with_nginx.then(|| {
        nginx(
            dir.path(),
            "front",
            &format!(
                " upstream app {{ server {upstream}; keepalive 64; }}\n\
                 upstream auth {{ server {auth_endpoint}; keepalive 64; }}\n\
                 server {{ listen 127.0.0.1:{proxy}; location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}\n\
                 server {{ listen 127.0.0.1:{auth_front};\n\
                   location / {{ auth_request /_auth; proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n\
                   location = /_auth {{ internal; proxy_pass http://auth; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass_request_body off; proxy_set_header Content-Length \"\"; }} }}"
            ),
        )
    });
    if with_nginx {
        wait_for(format!("127.0.0.1:{proxy}").parse().unwrap());
        wait_for(format!("127.0.0.1:{auth_front}").parse().unwrap());
    }

    let run = |url: String, header: Option<&str>| {
        // a short warm-up, then the measured run
        wrk(&url, header, 1, connections);
        wrk(&url, header, seconds, connections)
    };
    let bare: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    bare_pingora(bare, upstream);
    wait_for(bare);

    let direct = run(format!("http://{upstream}/x"), None);
    let pingora = run(format!("http://{bare}/x"), None);
    let public = run(format!("http://{gateway}/public/x"), None);
    let authed = run(format!("http://{gateway}/x"), Some(&cookie_header));
    let authed_redis = redis_gateway
        .as_ref()
        .map(|(_, addr, cookie)| run(format!("http://{addr}/x"), Some(cookie)));
    let nginx_proxy = with_nginx.then(|| run(format!("http://127.0.0.1:{proxy}/x"), None));
    let nginx_auth = with_nginx.then(|| run(format!("http://127.0.0.1:{auth_front}/x"), None));

    // the authenticated path during 200 concurrent wrong-password logins
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = login_flood(gateway, 200, stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    let flooded = wrk(
        &format!("http://{gateway}/x"),
        Some(&cookie_header),
        seconds,
        connections,
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let attempts = flood.join().unwrap_or(0);

    println!(
        "\nwrk -t1 -c{connections} -d{seconds}s; gateway with one worker thread; upstream {}\n",
        if with_nginx {
            "nginx `return 200` (1 worker)"
        } else {
            "built-in (nginx not installed)"
        }
    );
    println!("| setup | requests/s | p50 ms | p99 ms |\n|---|---|---|---|");
    println!("{}", row("upstream direct", Some(direct)));
    println!(
        "{}",
        row("bare Pingora pass-through (1 thread)", Some(pingora))
    );
    println!("{}", row("gateway, public route", Some(public)));
    println!(
        "{}",
        row("gateway, authenticated (memory store)", Some(authed))
    );
    println!(
        "{}",
        row(
            "gateway, authenticated (Redis store, 1 s cache)",
            authed_redis
        )
    );
    println!("{}", row("nginx proxy_pass (1 worker)", nginx_proxy));
    println!(
        "{}",
        row("nginx auth_request, zero-cost auth (1 worker)", nginx_auth)
    );
    println!(
        "{}",
        row("gateway, authenticated, during login flood", Some(flooded))
    );
    println!("\n| ratio | measured | target | |\n|---|---|---|---|");
    println!(
        "{}",
        ratio(
            "authenticated (memory) / public route",
            Some(authed),
            Some(public),
            0.90
        )
    );
    println!(
        "{}",
        ratio(
            "authenticated (Redis) / public route",
            authed_redis,
            Some(public),
            0.80
        )
    );
    println!(
        "{}",
        ratio(
            "public route / nginx proxy_pass",
            Some(public),
            nginx_proxy,
            0.80
        )
    );
    println!(
        "{}",
        ratio(
            "authenticated (memory) / nginx auth_request",
            Some(authed),
            nginx_auth,
            1.30
        )
    );
    let p99_ratio = flooded.p99_ms / authed.p99_ms;
    println!(
        "| p99 during a 200-client login flood / quiet p99 | {p99_ratio:.2}x | ≤ 2.00x | {} |",
        if p99_ratio <= 2.0 { "met" } else { "missed" }
    );
    println!("\n({attempts} wrong-password logins were verified during the flood run)");
}
