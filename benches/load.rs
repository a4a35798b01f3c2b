//! The load benchmark: one command (`cargo bench --bench load`) starts a fast
//! upstream and measures, side by side, the upstream direct, a bare Pingora
//! pass-through, the gateway on a public route, the gateway authenticated
//! (memory and Redis stores, and with its users in a Django-shaped SQLite
//! database through `[users.sql]` instead of the users file), and, when
//! nginx is installed, nginx `proxy_pass` and nginx `auth_request` to an
//! auth endpoint that costs nothing. Then the authenticated path during a
//! flood of wrong-password logins. Needs `wrk` (Debian: `apt-get install wrk nginx-light`).
//!
//! Every setup runs once per round, in a rotating order, and the report takes
//! the median over rounds: on a two-core machine shared by client, proxy and
//! upstream, one run of one setup varies by ±20%. Ratios are taken within a
//! round, then their median. Beside requests/s, each setup's CPU time per
//! request (of the proxy's own processes, read from /proc) shows what it costs
//! whatever the scheduler did.
//!
//! Last, how the authenticated path grows with concurrent clients (8 to 512)
//! and with live sessions (1k, 100k, 1M restored from a snapshot).
//!
//! Environment: LOAD_SECONDS (default 5), LOAD_ROUNDS (default 3),
//! LOAD_CONNECTIONS (default 32), LOAD_SCALING (default 1; 0 skips the last
//! part), LOAD_ONLY=forward_auth (only nginx `auth_request` to the gateway's
//! `/.gatehouse/auth`, signed in, against nginx `auth_request` to a
//! zero-cost endpoint and the gateway in proxy mode).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::{free_port, Browser};
use support::*;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The gateway binary's allocator, so the bare Pingora reference differs from
// the gateway only by the gateway's own code.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// When set ("LISTEN UPSTREAM"), this binary is the bare Pingora reference:
/// a process of its own, so its CPU time can be read like the others'.
/// A gateway restoring a million sessions takes a while to listen.
const STARTUP: Duration = Duration::from_secs(180);

const BARE_ROLE: &str = "GATEHOUSE_BENCH_BARE_PINGORA";

/// Runs the bare Pingora reference in this process; never returns.
fn serve_bare_pingora(role: &str) {
    let (listen, upstream) = role.split_once(' ').expect("LISTEN UPSTREAM");
    serve_pass_through(listen, upstream.parse().unwrap());
}

fn bare_pingora(listen: SocketAddr, upstream: SocketAddr) -> Kill {
    Kill(
        Command::new(std::env::current_exe().unwrap())
            .env(BARE_ROLE, format!("{listen} {upstream}"))
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Resident memory of `pid` in MiB.
fn resident_mib(pid: u32) -> f64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(f64::NAN);
    pages * 4096.0 / 1_048_576.0
}

/// The processes whose parent is `pid` (an nginx master's workers).
fn children(pid: u32) -> Vec<u32> {
    let parent = pid.to_string();
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&p| stat_fields(p).get(1) == Some(&parent))
                .collect()
        })
        .unwrap_or_default()
}

/// One wrk run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time of the setup's own processes per request, in µs.
    cpu_us: Option<f64>,
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

/// Runs wrk against `url` with extra arguments (a header, a script);
/// returns the sample and the number of requests.
fn wrk(url: &str, args: &[String], seconds: u64, connections: u32) -> (Sample, f64) {
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut s = Sample {
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        cpu_us: None,
    };
    let mut requests = f64::NAN;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => s.rps = v.parse().unwrap_or(f64::NAN),
            ["50%", v] => s.p50_ms = latency_ms(v),
            ["99%", v] => s.p99_ms = latency_ms(v),
            [n, "requests", "in", ..] => requests = n.parse().unwrap_or(f64::NAN),
            _ => {}
        }
        if line.contains("Non-2xx or 3xx responses") {
            panic!("{url}: errors during the run:\n{text}");
        }
    }
    (s, requests)
}

/// One thing to measure: a URL, wrk's extra arguments, and the processes
/// whose CPU time is the setup's cost.
struct Setup {
    name: &'static str,
    url: String,
    args: Vec<String>,
    pids: Vec<u32>,
}

/// wrk's arguments to send one header.
fn header(h: &str) -> Vec<String> {
    vec!["-H".into(), h.into()]
}

impl Setup {
    /// A 1 s warm-up, then the measured run.
    fn measure(&self, seconds: u64, connections: u32, ticks: f64) -> Sample {
        wrk(&self.url, &self.args, 1, connections);
        let cpu = |pids: &[u32]| pids.iter().map(|&p| cpu_seconds(p, ticks)).sum::<f64>();
        let before = cpu(&self.pids);
        let (mut sample, requests) = wrk(&self.url, &self.args, seconds, connections);
        let used = cpu(&self.pids) - before;
        if !self.pids.is_empty() && requests > 0.0 {
            sample.cpu_us = Some(used * 1e6 / requests);
        }
        sample
    }
}

/// nginx with one worker; `servers` is the body of its `http` block.
/// Returns the master and the pid of its worker.
fn nginx(dir: &Path, name: &str, servers: &str, listens: &[SocketAddr]) -> (Kill, u32) {
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
    let master = Kill(
        Command::new("nginx")
            .args(["-c", conf.to_str().unwrap(), "-p", dir.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts"),
    );
    for &addr in listens {
        wait_for(addr, STARTUP);
    }
    // the master listens before it forks its worker
    let deadline = Instant::now() + Duration::from_secs(20);
    let worker = loop {
        if let Some(&worker) = children(master.0.id()).first() {
            break worker;
        }
        assert!(Instant::now() < deadline, "nginx started no worker");
        std::thread::sleep(Duration::from_millis(20));
    };
    (master, worker)
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

/// `concurrency` clients posting wrong passwords until `stop`, each with a
/// valid login form (nonce cookie and token), so every attempt the gateway
/// accepts costs it a real argon2id verification. Returns how often each
/// status came back (0 for a failed connection).
fn login_flood(
    gateway: SocketAddr,
    concurrency: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<BTreeMap<u16, usize>> {
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
                    let mut form = Browser::new(&format!("http://{gateway}/"));
                    let token = form.page("/.gatehouse/login").await.field("csrf_token");
                    let cookie = form.cookie_header();
                    let body =
                        format!("username=bench&password=wrong-password&rd=%2F&csrf_token={token}");
                    let mut statuses = BTreeMap::new();
                    // bounded: at most 10,000 attempts per client
                    for _ in 0..10_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let resp = client
                            .post(format!("http://{gateway}/.gatehouse/login"))
                            .header("Cookie", &cookie)
                            .header("Content-Type", "application/x-www-form-urlencoded")
                            .body(body.clone())
                            .send()
                            .await;
                        let status = resp.map_or(0, |r| r.status().as_u16());
                        *statuses.entry(status).or_insert(0) += 1;
                    }
                    statuses
                }));
            }
            let mut total = BTreeMap::new();
            for t in tasks {
                for (status, n) in t.await.unwrap_or_default() {
                    *total.entry(status).or_insert(0) += n;
                }
            }
            total
        })
    })
}

/// A session ID the benchmark can hand to wrk: 43 URL-safe characters, as
/// the gateway issues them, derived from `i`.
fn known_id(i: u64) -> gatehouse::session::SessionId {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, &i.to_le_bytes());
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    gatehouse::session::SessionId::parse(&text).expect("an ID's shape")
}

/// Writes a session snapshot holding `n` live sessions of `users` users
/// (names `user0`…), all signed in with `hash`, into `state_dir`, where a
/// gateway with `invalidate_on_restart = false` restores it at start.
fn write_snapshot(state_dir: &Path, n: u64, users: u64, hash: &str) {
    use gatehouse::clock::{Clock, SystemClock};
    use gatehouse::session::store::{DeviceLimit, MemoryStore, SessionStore};
    use gatehouse::session::{Liveness, SessionPolicy, SessionRecord, Watermarks};
    let now = SystemClock.now();
    let fingerprint = gatehouse::auth::password::fingerprint(hash);
    let limit = DeviceLimit::none(Liveness {
        now,
        policy: SessionPolicy {
            idle_timeout: Duration::from_secs(1800),
            absolute_timeout: Duration::from_secs(86_400),
        },
        marks: Watermarks::default(),
        password_fingerprint: fingerprint,
    });
    let groups: gatehouse::auth::Groups = vec!["staff".to_string()].into();
    let store = MemoryStore::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..n {
            let record = SessionRecord {
                user: format!("user{}", i % users),
                created_at: now,
                last_seen: now,
                client_ip: Some(std::net::IpAddr::from([10, 0, (i >> 8) as u8, i as u8])),
                user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36".into(),
                password_fingerprint: fingerprint,
                groups: groups.clone(),
                ended: None,
            };
            store.insert(known_id(i).key(), record, limit).await.unwrap();
        }
    });
    std::fs::create_dir_all(state_dir).unwrap();
    store
        .save_snapshot(&state_dir.join("sessions.json"))
        .unwrap();
}

/// A wrk script sending, in turn, the session cookies of `ids` (one per line
/// in `cookies`), so requests spread over many sessions instead of one.
fn rotating_cookies_script(dir: &Path, ids: impl Iterator<Item = u64>) -> std::path::PathBuf {
    let cookies = dir.join("cookies.txt");
    let lines: Vec<String> = ids
        .map(|i| format!("gatehouse={}", known_id(i).as_cookie_value()))
        .collect();
    std::fs::write(&cookies, lines.join("\n") + "\n").unwrap();
    let script = dir.join("cookies.lua");
    std::fs::write(
        &script,
        format!(
            "local cookies = {{}}\n\
             for line in io.lines(\"{}\") do cookies[#cookies + 1] = line end\n\
             local i = 0\n\
             request = function()\n\
             \x20 i = i % #cookies + 1\n\
             \x20 return wrk.format(nil, nil, {{ Cookie = cookies[i] }})\n\
             end\n",
            cookies.display()
        ),
    )
    .unwrap();
    script
}

/// A SQLite database shaped like a Django project's (`auth_user`,
/// `auth_group`, `auth_user_groups`, as `migrate` makes them) holding the
/// staff user `bench` with `hash`, for the `[users.sql]` gateway.
fn django_users_db(path: &Path, hash: &str) {
    use sqlx::ConnectOptions;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut db = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        for statement in [
            "CREATE TABLE auth_user (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, password varchar(128) NOT NULL, \
             last_login datetime NULL, is_superuser bool NOT NULL, username varchar(150) NOT NULL UNIQUE, \
             last_name varchar(150) NOT NULL, email varchar(254) NOT NULL, is_staff bool NOT NULL, \
             is_active bool NOT NULL, date_joined datetime NOT NULL, first_name varchar(150) NOT NULL)",
            "CREATE TABLE auth_group (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, name varchar(150) NOT NULL UNIQUE)",
            "CREATE TABLE auth_user_groups (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, \
             user_id integer NOT NULL REFERENCES auth_user (id), group_id integer NOT NULL REFERENCES auth_group (id))",
        ] {
            sqlx::query(statement).execute(&mut db).await.unwrap();
        }
        sqlx::query(
            "INSERT INTO auth_user (password, is_superuser, username, last_name, email, is_staff, is_active, date_joined, first_name) \
             VALUES (?, 0, 'bench', '', '', 1, 1, '2026-01-01 00:00:00', '')",
        )
        .bind(hash)
        .execute(&mut db)
        .await
        .unwrap();
    });
}

fn range(values: &[f64]) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() && hi.is_finite() {
        format!("{lo:.2}–{hi:.2}")
    } else {
        "n/a".into()
    }
}

/// Samples of every setup (by name), one per round.
#[derive(Default)]
struct Results(BTreeMap<&'static str, Vec<Sample>>);

impl Results {
    fn of(&self, name: &str) -> Option<&[Sample]> {
        self.0.get(name).map(Vec::as_slice)
    }

    fn row(&self, name: &'static str) -> String {
        let Some(samples) = self.of(name) else {
            return format!("| {name} | n/a | | | | |");
        };
        let rps: Vec<f64> = samples.iter().map(|s| s.rps).collect();
        let cpu: Vec<f64> = samples.iter().filter_map(|s| s.cpu_us).collect();
        format!(
            "| {name} | {:.0} | {:.0}–{:.0} | {:.2} | {:.2} | {} |",
            median(rps.clone()),
            rps.iter().copied().fold(f64::INFINITY, f64::min),
            rps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            median(samples.iter().map(|s| s.p50_ms).collect()),
            median(samples.iter().map(|s| s.p99_ms).collect()),
            if cpu.is_empty() {
                "".to_string()
            } else {
                format!("{:.1}", median(cpu))
            }
        )
    }

    /// `a / b` of `pick` within each round.
    fn per_round(&self, a: &str, b: &str, pick: impl Fn(&Sample) -> Option<f64>) -> Vec<f64> {
        match (self.of(a), self.of(b)) {
            (Some(a), Some(b)) => a
                .iter()
                .zip(b)
                .filter_map(|(a, b)| Some(pick(a)? / pick(b)?))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A target row, met by the median of the rounds: `at_most` flips the
    /// comparison (for latency), and then every round must meet it.
    fn target(&self, label: &str, ratios: Vec<f64>, target: f64, at_most: bool) -> String {
        if ratios.is_empty() {
            return format!("| {label} | n/a | | {target:.2}x | not measured |");
        }
        let m = median(ratios.clone());
        let met = if at_most {
            ratios.iter().all(|r| *r <= target)
        } else {
            m >= target
        };
        format!(
            "| {label} | {m:.2}x | {} | {} {target:.2}x | {} |",
            range(&ratios),
            if at_most { "≤" } else { "≥" },
            if met { "met" } else { "missed" }
        )
    }
}

const DIRECT: &str = "upstream direct";
const BARE: &str = "bare Pingora pass-through (1 thread)";
const PUBLIC: &str = "gateway, public route";
const AUTHED: &str = "gateway, authenticated (memory store)";
/// The users section of every gateway but the `[users.sql]` one.
const FILE_USERS: &str = "[users]\nfile = \"users.toml\"\n";
const AUTHED_SQL: &str = "gateway, authenticated (memory store, sql users)";
const AUTHED_REDIS: &str = "gateway, authenticated (Redis store, 1 s cache)";
const NGINX_PROXY: &str = "nginx proxy_pass (1 worker)";
const NGINX_AUTH: &str = "nginx auth_request, zero-cost auth (1 worker + auth server)";
const NGINX_FORWARD_AUTH: &str =
    "nginx auth_request to gatehouse /.gatehouse/auth, signed in (1 worker + gateway)";
/// Users the loaded sessions belong to: 1, 100 and 1,000 sessions each at
/// 1k, 100k and 1M sessions.
const SNAPSHOT_USERS: u64 = 1000;

const FLOODED: &str = "gateway, authenticated, during a 200-client login flood";

fn main() {
    if let Ok(role) = std::env::var(BARE_ROLE) {
        serve_bare_pingora(&role);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        println!("load: benchmark");
        return;
    }
    if !have("wrk") {
        eprintln!("load benchmark skipped: wrk is not installed (apt-get install wrk)");
        return;
    }
    let seconds: u64 = env_or("LOAD_SECONDS", 5);
    let rounds: usize = env_or("LOAD_ROUNDS", 3);
    let connections: u32 = env_or("LOAD_CONNECTIONS", 32);
    let ticks = clock_ticks();
    let dir = tempfile::tempdir().unwrap();
    let with_nginx = have("nginx");
    let forward_auth_only = std::env::var("LOAD_ONLY").as_deref() == Ok("forward_auth");

    let upstream: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let auth_endpoint: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _upstream_nginx = if with_nginx {
        Some(nginx(
            dir.path(),
            "upstream",
            &format!(" server {{ listen {upstream}; location / {{ return 200 \"ok\"; }} }}"),
            &[upstream],
        ))
    } else {
        builtin_upstream(upstream);
        wait_for(upstream, STARTUP);
        None
    };

    // the gateway, one worker thread, logging warnings only (nginx logs nothing either)
    // `bench`, and the users of the sessions the scaling runs load
    let hash = gatehouse::auth::password::hash_password("bench-password-1").unwrap();
    let users: String = std::iter::once("bench".to_string())
        .chain((0..SNAPSHOT_USERS).map(|i| format!("user{i}")))
        .map(|name| format!("[{name}]\npassword = \"{hash}\"\ngroups = [\"staff\"]\n"))
        .collect();
    std::fs::write(dir.path().join("users.toml"), users).unwrap();
    std::fs::write(dir.path().join("secret.key"), [7u8; 32]).unwrap();
    let start_gateway = |name: &str, server: &str, session: &str, users: &str| {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = [\"{addr}\"]\nadmin_listen = \"\"\nthreads = 1\nsecret_file = \"secret.key\"\nupgrade_sock = \"{name}.sock\"\npid_file = \"{name}.pid\"\n{server}\n\
                 [[route]]\npath_prefix = \"/public/\"\nupstream = \"{upstream}\"\naccess = \"public\"\n\n\
                 [[route]]\npath_prefix = \"/\"\nupstream = \"{upstream}\"\naccess = \"login\"\n\n\
                 {users}\n[session]\ncookie_secure = false\n{session}\n\
                 [login]\nmax_failures = 0\n"
            ),
        )
        .unwrap();
        let process = gateway_process(&config);
        wait_for(addr, STARTUP);
        (process, addr)
    };
    // nginx in front asks this gateway's /.gatehouse/auth too
    let (gateway_process, gateway) = start_gateway(
        "memory",
        "trusted_proxies = [\"127.0.0.1/32\"]",
        "",
        FILE_USERS,
    );
    let gateway_pid = gateway_process.0.id();
    let cookie = format!(
        "Cookie: {}",
        login_cookie(gateway, "bench", "bench-password-1")
    );
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
            "",
            &format!("store = \"redis\"\nredis_url = \"{}\"\n", r.url()),
            FILE_USERS,
        );
        let cookie = format!(
            "Cookie: {}",
            login_cookie(addr, "bench", "bench-password-1")
        );
        (process, addr, cookie)
    });

    // the same gateway with `bench` in a Django-shaped SQLite database
    // instead of the users file: after sign-in, its record is re-read in
    // the background every `refresh`, never on a proxied request
    let app_db = dir.path().join("app.sqlite3");
    django_users_db(&app_db, &hash);
    let (sql_process, sql_gateway) = start_gateway(
        "sql",
        "",
        "",
        &format!(
            "[users.sql]\nurl = \"sqlite://{}\"\npreset = \"django\"\n",
            app_db.display()
        ),
    );
    let sql_cookie = format!(
        "Cookie: {}",
        login_cookie(sql_gateway, "bench", "bench-password-1")
    );

    let bare: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let bare_process = bare_pingora(bare, upstream);
    wait_for(bare, STARTUP);

    // the memory gateway's authenticated path, measured under several names
    let authed = |name| Setup {
        name,
        url: format!("http://{gateway}/x"),
        args: header(&cookie),
        pids: vec![gateway_pid],
    };
    let mut setups = vec![
        Setup {
            name: DIRECT,
            url: format!("http://{upstream}/x"),
            args: Vec::new(),
            pids: Vec::new(),
        },
        Setup {
            name: BARE,
            url: format!("http://{bare}/x"),
            args: Vec::new(),
            pids: vec![bare_process.0.id()],
        },
        Setup {
            name: PUBLIC,
            url: format!("http://{gateway}/public/x"),
            args: Vec::new(),
            pids: vec![gateway_pid],
        },
        authed(AUTHED),
        Setup {
            name: AUTHED_SQL,
            url: format!("http://{sql_gateway}/x"),
            args: header(&sql_cookie),
            pids: vec![sql_process.0.id()],
        },
    ];
    if let (Some((process, addr, cookie)), Some(redis)) = (&redis_gateway, &redis) {
        // the Redis server is part of this setup's cost
        setups.push(Setup {
            name: AUTHED_REDIS,
            url: format!("http://{addr}/x"),
            args: header(cookie),
            pids: vec![process.0.id(), redis.pid()],
        });
    }

    let (proxy, auth_front, forward_front) = (free_port(), free_port(), free_port());
    let auth_server = with_nginx.then(|| {
        nginx(
            dir.path(),
            "auth",
            &format!(" server {{ listen {auth_endpoint}; location / {{ return 204; }} }}"),
            &[auth_endpoint],
        )
    });
    let front = with_nginx.then(|| {
        nginx(
            dir.path(),
            "front",
            &format!(
                " upstream app {{ server {upstream}; keepalive 64; }}\n\
                 upstream auth {{ server {auth_endpoint}; keepalive 64; }}\n\
                 upstream gatehouse {{ server {gateway}; keepalive 64; }}\n\
                 server {{ listen 127.0.0.1:{proxy}; location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}\n\
                 server {{ listen 127.0.0.1:{auth_front};\n\
                   location / {{ auth_request /_auth; proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n\
                   location = /_auth {{ internal; proxy_pass http://auth; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass_request_body off; proxy_set_header Content-Length \"\"; }} }}\n\
                 server {{ listen 127.0.0.1:{forward_front};\n\
                   location / {{ auth_request /.gatehouse/auth;\n\
                     auth_request_set $u $upstream_http_x_remote_user; auth_request_set $e $upstream_http_x_remote_email;\n\
                     auth_request_set $n $upstream_http_x_remote_name; auth_request_set $g $upstream_http_x_remote_groups;\n\
                     proxy_set_header X-Remote-User $u; proxy_set_header X-Remote-Email $e; proxy_set_header X-Remote-Name $n; proxy_set_header X-Remote-Groups $g;\n\
                     proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n\
                   location = /.gatehouse/auth {{ internal; proxy_pass http://gatehouse; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass_request_body off; proxy_set_header Content-Length \"\";\n\
                     proxy_set_header Host $http_host; proxy_set_header X-Original-URI $request_uri; proxy_set_header X-Original-Method $request_method; }} }}"
            ),
            &[
                format!("127.0.0.1:{proxy}").parse().unwrap(),
                format!("127.0.0.1:{auth_front}").parse().unwrap(),
                format!("127.0.0.1:{forward_front}").parse().unwrap(),
            ],
        )
    });
    if let (Some((_, front_worker)), Some((_, auth_worker))) = (&front, &auth_server) {
        setups.push(Setup {
            name: NGINX_PROXY,
            url: format!("http://127.0.0.1:{proxy}/x"),
            args: Vec::new(),
            pids: vec![*front_worker],
        });
        // the auth server is part of this design's cost, as the gateway's
        // own session check is part of the gateway's
        setups.push(Setup {
            name: NGINX_AUTH,
            url: format!("http://127.0.0.1:{auth_front}/x"),
            args: Vec::new(),
            pids: vec![*front_worker, *auth_worker],
        });
        setups.push(Setup {
            name: NGINX_FORWARD_AUTH,
            url: format!("http://127.0.0.1:{forward_front}/x"),
            args: header(&cookie),
            pids: vec![*front_worker, gateway_pid],
        });
    }
    if forward_auth_only {
        setups.retain(|s| [NGINX_AUTH, NGINX_FORWARD_AUTH, AUTHED].contains(&s.name));
    }

    let mut results = Results::default();
    let mut flood_statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        // a rotating order, so no setup always runs first or last
        for i in 0..setups.len() {
            let setup = &setups[(i + round) % setups.len()];
            let sample = setup.measure(seconds, connections, ticks);
            results.0.entry(setup.name).or_default().push(sample);
        }
        if forward_auth_only {
            continue;
        }
        // the authenticated path during 200 concurrent wrong-password logins
        let stop = Arc::new(AtomicBool::new(false));
        let flood = login_flood(gateway, 200, stop.clone());
        std::thread::sleep(Duration::from_secs(1));
        let flooded = authed(FLOODED).measure(seconds, connections, ticks);
        results.0.entry(FLOODED).or_default().push(flooded);
        stop.store(true, Ordering::Relaxed);
        for (status, n) in flood.join().unwrap_or_default() {
            *flood_statuses.entry(status).or_insert(0) += n;
        }
    }

    println!(
        "\nwrk -t1 -c{connections} -d{seconds}s, {rounds} rounds, medians; gateway with one worker thread; upstream {}\n",
        if with_nginx {
            "nginx `return 200` (1 worker)"
        } else {
            "built-in (nginx not installed)"
        }
    );
    println!("| setup | requests/s | range | p50 ms | p99 ms | CPU µs per request |\n|---|---|---|---|---|---|");
    let rps = |s: &Sample| Some(s.rps);
    if forward_auth_only {
        for name in [NGINX_AUTH, NGINX_FORWARD_AUTH, AUTHED] {
            println!("{}", results.row(name));
        }
        println!("\n| ratio (within a round) | median | range | target | |\n|---|---|---|---|---|");
        let r = &results;
        let ratio = r.per_round(NGINX_FORWARD_AUTH, NGINX_AUTH, rps);
        let label = "nginx auth_request: gatehouse /auth / zero-cost endpoint";
        println!("{}", r.target(label, ratio, 0.80, false));
        let ratio = r.per_round(NGINX_FORWARD_AUTH, AUTHED, rps);
        let label = "nginx auth_request to gatehouse / gatehouse proxy mode (no target)";
        println!(
            "| {label} | {:.2}x | {} | | |",
            median(ratio.clone()),
            range(&ratio)
        );
        return;
    }
    for name in [
        DIRECT,
        BARE,
        PUBLIC,
        AUTHED,
        AUTHED_SQL,
        AUTHED_REDIS,
        NGINX_PROXY,
        NGINX_AUTH,
        NGINX_FORWARD_AUTH,
        FLOODED,
    ] {
        println!("{}", results.row(name));
    }
    let p99 = |s: &Sample| Some(s.p99_ms);
    println!("\n| ratio (within a round) | median | range | target | |\n|---|---|---|---|---|");
    let r = &results;
    // Issue 19's targets: the gateway's own cost against bare Pingora's,
    // and against nginx's forward-auth ceiling.
    for (label, a, b, target) in [
        ("authenticated (memory) / bare Pingora", AUTHED, BARE, 0.90),
        ("public route / bare Pingora", PUBLIC, BARE, 0.95),
        (
            "authenticated (memory) / nginx auth_request",
            AUTHED,
            NGINX_AUTH,
            1.05,
        ),
        (
            "authenticated (Redis) / authenticated (memory)",
            AUTHED_REDIS,
            AUTHED,
            0.95,
        ),
        (
            "authenticated (sql users) / authenticated (memory)",
            AUTHED_SQL,
            AUTHED,
            0.97,
        ),
        (
            "nginx auth_request: gatehouse /auth / zero-cost endpoint",
            NGINX_FORWARD_AUTH,
            NGINX_AUTH,
            0.80,
        ),
    ] {
        println!("{}", r.target(label, r.per_round(a, b, rps), target, false));
    }
    println!(
        "{}",
        r.target(
            "p99 during a 200-client login flood / quiet p99 (every round)",
            r.per_round(FLOODED, AUTHED, p99),
            2.0,
            true
        )
    );
    // requests per CPU-second: the inverse ratio of CPU per request
    let cpu = |s: &Sample| s.cpu_us;
    println!("\n| requests per CPU-second (no target) | median | range |\n|---|---|---|");
    for (label, a, b) in [
        ("public route / bare Pingora", BARE, PUBLIC),
        ("authenticated (memory) / bare Pingora", BARE, AUTHED),
        ("public route / nginx proxy_pass", NGINX_PROXY, PUBLIC),
        (
            "authenticated (memory) / nginx auth_request",
            NGINX_AUTH,
            AUTHED,
        ),
        ("bare Pingora / nginx proxy_pass", NGINX_PROXY, BARE),
    ] {
        let ratios = r.per_round(a, b, cpu);
        println!(
            "| {label} | {:.2}x | {} |",
            median(ratios.clone()),
            range(&ratios)
        );
    }
    let mix: Vec<String> = flood_statuses
        .iter()
        .map(|(status, n)| match status {
            0 => format!("{n} failed connections"),
            s => format!("{n} × {s}"),
        })
        .collect();
    println!(
        "\nThe flood's answers over all rounds (401: verified wrong password): {}",
        mix.join(", ")
    );

    if env_or("LOAD_SCALING", 1) == 0 {
        return;
    }
    // How the authenticated path grows with concurrent clients: the memory
    // gateway, one session, one run per count.
    println!("\n| connections | requests/s | p50 ms | p99 ms |\n|---|---|---|---|");
    for clients in [8, 32, 128, 512] {
        let s = authed(AUTHED).measure(seconds, clients, ticks);
        println!(
            "| {clients} | {:.0} | {:.2} | {:.2} |",
            s.rps, s.p50_ms, s.p99_ms
        );
    }
    // How it grows with live sessions: a gateway restored from a snapshot of
    // N sessions; wrk's requests go round up to 10,000 of them, so lookups
    // are spread over the store rather than one hot record.
    println!(
        "\n| live sessions | requests/s | p50 ms | p99 ms | p99 ms, first run after start-up | gateway resident MiB |\n|---|---|---|---|---|---|"
    );
    drop(gateway_process);
    for n in [1_000u64, 100_000, 1_000_000] {
        let state = dir.path().join(format!("state-{n}"));
        write_snapshot(&state, n, SNAPSHOT_USERS, &hash);
        let (process, addr) = start_gateway(
            &format!("live-{n}"),
            &format!("state_dir = \"{}\"", state.display()),
            "invalidate_on_restart = false\n",
            FILE_USERS,
        );
        let spread = n.min(10_000);
        let script = rotating_cookies_script(dir.path(), (0..spread).map(|j| j * (n / spread)));
        let setup = Setup {
            name: AUTHED,
            url: format!("http://{addr}/x"),
            args: vec!["-s".into(), script.display().to_string()],
            pids: vec![process.0.id()],
        };
        // the first run right after start-up (after its 1 s warm-up), then the
        // steady state
        let first = setup.measure(seconds, connections, ticks);
        let s = setup.measure(seconds, connections, ticks);
        println!(
            "| {n} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} |",
            s.rps,
            s.p50_ms,
            s.p99_ms,
            first.p99_ms,
            resident_mib(process.0.id())
        );
        // killed outright: no snapshot of a million sessions on the way out
        process.kill_now();
    }
}
