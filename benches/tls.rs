//! The TLS benchmark: `cargo bench --bench tls` starts two gateways in
//! release mode, one worker thread each, in front of a minimal upstream:
//! one plain (the `cookie_secure = false` setup of the load benchmark) and
//! one with `[server.tls]` (an ECDSA P-256 certificate from a test CA, the
//! `__Host-` cookie). It measures, in one run, side by side:
//!
//! - full TLS handshakes per second (TLS 1.3 and TLS 1.2, no session
//!   resumption), each on a new connection, closed once the handshake is
//!   done;
//! - authenticated requests per second (a signed-in session on a `login`
//!   route) over plain HTTP/1.1, HTTP/1.1 over TLS (kept-alive connections)
//!   and HTTP/2 over TLS (one connection, requests multiplexed).
//!
//! Every row is driven by the same Rust client in this process (reqwest and
//! rustls; `wrk` speaks neither TLS-with-our-CA nor HTTP/2 as the others
//! do), so rows compare like with like; absolute numbers are lower than the
//! load benchmark's `wrk` rows because this client costs more CPU on the
//! same two cores. Beside the rate, the gateway's own CPU time per request
//! (or per handshake), read from /proc, shows what each costs whatever the
//! scheduler did. Every setup runs once per round in a rotating order; the
//! report takes the median over rounds.
//!
//! Environment: LOAD_SECONDS (default 5), LOAD_ROUNDS (default 3),
//! LOAD_CONNECTIONS (default 32: concurrent requests, or handshaking
//! threads / 8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use common::{free_port, Browser};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The smallest upstream that keeps connections alive: `200 ok` to every
/// request head.
async fn upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut have = 0;
                loop {
                    let Ok(n) = conn.read(&mut buf[have..]).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    have += n;
                    while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        if conn
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .await
                            .is_err()
                        {
                            return;
                        }
                        buf.copy_within(end + 4..have, 0);
                        have -= end + 4;
                    }
                    if have == buf.len() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

struct Pki {
    ca_pem: String,
    ca_der: Vec<u8>,
    chain: String,
    key: String,
}

fn pki() -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "gatehouse bench CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let leaf_params = CertificateParams::new(vec!["app.test".to_string()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &*ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().to_vec(),
        chain: format!("{}{}", leaf.pem(), ca.pem()),
        key: leaf_key.serialize_pem(),
    }
}

struct Gateway {
    process: Kill,
    plain: SocketAddr,
    tls: Option<SocketAddr>,
}

fn start_gateway(dir: &std::path::Path, name: &str, upstream: SocketAddr, tls: bool) -> Gateway {
    let plain: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let tls_addr: Option<SocketAddr> =
        tls.then(|| format!("127.0.0.1:{}", free_port()).parse().unwrap());
    let tls_section = match tls_addr {
        Some(a) => format!("\n[server.tls]\nlisten = [\"{a}\"]\ncert = \"cert.pem\"\nkey = \"key.pem\"\nhsts = \"365d\"\n"),
        None => String::new(),
    };
    let cookie_secure = if tls { "true" } else { "false" };
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"{plain}\"]\nadmin_listen = \"\"\nthreads = 1\nsecret_file = \"secret.key\"\nupgrade_sock = \"{name}.sock\"\npid_file = \"{name}.pid\"\n\
             [[route]]\npath_prefix = \"/\"\nupstream = \"{upstream}\"\naccess = \"login\"\n\n\
             [users]\nfile = \"users.toml\"\n\n[session]\ncookie_secure = {cookie_secure}\n\n\
             [login]\nmax_failures = 0\n{tls_section}"
        ),
    )
    .unwrap();
    let process = gateway_process(&config);
    wait_for(plain, Duration::from_secs(30));
    if let Some(a) = tls_addr {
        wait_for(a, Duration::from_secs(30));
    }
    Gateway {
        process,
        plain,
        tls: tls_addr,
    }
}

fn client(pki: &Pki, tls: Option<SocketAddr>, h1_only: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1024);
    if let Some(addr) = tls {
        b = b
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
            .resolve("app.test", addr);
    }
    if h1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

/// One run of one setup.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: f64,
}

impl Sample {
    /// The rate, latency percentiles and CPU per operation of a run that
    /// timed each operation (`times`) over `elapsed` seconds using `cpu`
    /// seconds of the gateway's CPU.
    fn of(mut times: Vec<Duration>, elapsed: f64, cpu: f64) -> Sample {
        times.sort();
        let pct = |p: f64| {
            times
                .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
        };
        let n = times.len() as f64;
        Sample {
            rate: n / elapsed,
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            cpu_us: cpu / n * 1e6,
        }
    }
}

/// `concurrency` tasks sending signed-in GETs on `client` for `seconds`.
async fn requests(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    concurrency: usize,
    seconds: u64,
    pid: u32,
    expect: reqwest::Version,
) -> Sample {
    // Warm-up: connections opened, session cached.
    let warm = Instant::now() + Duration::from_secs(1);
    let run = |until: Instant| {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (client, url, cookie) = (client.clone(), url.to_string(), cookie.to_string());
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    while Instant::now() < until {
                        let t = Instant::now();
                        let r = client
                            .get(&url)
                            .header("Cookie", &cookie)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 200, "not signed in?");
                        assert_eq!(r.version(), expect);
                        let _ = r.bytes().await.unwrap();
                        times.push(t.elapsed());
                    }
                    times
                })
            })
            .collect();
        async move {
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        }
    };
    run(warm).await;
    let cpu0 = cpu_seconds(pid, clock_ticks());
    let start = Instant::now();
    let times = run(start + Duration::from_secs(seconds)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid, clock_ticks()) - cpu0;
    Sample::of(times, elapsed, cpu)
}

/// One full handshake on a new connection, then close_notify.
fn handshake_once(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = rustls::pki_types::ServerName::try_from("app.test").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::clone(config), name).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    // Flush the client's Finished, then say goodbye.
    conn.send_close_notify();
    let _ = conn.complete_io(&mut tcp);
}

/// `threads` threads doing full handshakes (no resumption) for `seconds`.
fn handshakes(
    pki: &Pki,
    addr: SocketAddr,
    version: &'static rustls::SupportedProtocolVersion,
    threads: usize,
    seconds: u64,
    pid: u32,
) -> Sample {
    pingora::tls::install_default_crypto_provider();
    let provider = rustls::crypto::CryptoProvider::get_default()
        .unwrap()
        .clone();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(pki.ca_der.clone()))
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    let config = Arc::new(config);
    let run = |seconds: f64| {
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let config = Arc::clone(&config);
                std::thread::spawn(move || {
                    let mut times = Vec::new();
                    while Instant::now() < until {
                        let t = Instant::now();
                        handshake_once(addr, &config);
                        times.push(t.elapsed());
                    }
                    times
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    };
    run(1.0);
    let cpu0 = cpu_seconds(pid, clock_ticks());
    let start = Instant::now();
    let times = run(seconds as f64);
    let elapsed = start.elapsed().as_secs_f64();
    // The last handshakes' Finished may still be in the gateway's queue.
    std::thread::sleep(Duration::from_millis(200));
    let cpu = cpu_seconds(pid, clock_ticks()) - cpu0;
    Sample::of(times, elapsed, cpu)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter of another benchmark skips us.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"tls".contains(&a))
    {
        return;
    }
    let seconds = env_or("LOAD_SECONDS", 5u64);
    let rounds = env_or("LOAD_ROUNDS", 3usize);
    let connections = env_or("LOAD_CONNECTIONS", 32usize);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    std::fs::write(dir.path().join("cert.pem"), &pki.chain).unwrap();
    std::fs::write(dir.path().join("key.pem"), &pki.key).unwrap();
    std::fs::write(dir.path().join("secret.key"), [7u8; 32]).unwrap();
    let hash = gatehouse::auth::password::hash_password("bench-password-1").unwrap();
    std::fs::write(
        dir.path().join("users.toml"),
        format!("[bench]\npassword = \"{hash}\"\n"),
    )
    .unwrap();

    let up = rt.block_on(upstream());
    let plain = start_gateway(dir.path(), "plain", up, false);
    let tls = start_gateway(dir.path(), "tls", up, true);
    let tls_addr = tls.tls.unwrap();

    let (plain_cookie, tls_cookie) = rt.block_on(async {
        let mut b = Browser::new(&format!("http://{}/", plain.plain));
        assert_eq!(b.login("bench", "bench-password-1", "/").await.status, 303);
        let mut t = Browser::with_client(
            &format!("https://app.test:{}/", tls_addr.port()),
            client(&pki, Some(tls_addr), false),
        );
        assert_eq!(t.login("bench", "bench-password-1", "/").await.status, 303);
        assert!(t.cookies.contains_key("__Host-gatehouse"));
        (b.cookie_header(), t.cookie_header())
    });

    let setups = [
        "authenticated requests, plain HTTP/1.1",
        "authenticated requests, HTTP/1.1 over TLS",
        "authenticated requests, HTTP/2 over TLS (1 connection)",
        "TLS 1.3 full handshakes (new connection each)",
        "TLS 1.2 full handshakes (new connection each)",
    ];
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); setups.len()];
    let plain_url = format!("http://{}/app", plain.plain);
    let tls_url = format!("https://app.test:{}/app", tls_addr.port());
    let (plain_pid, tls_pid) = (plain.process.0.id(), tls.process.0.id());
    let hs_threads = (connections / 8).max(2);
    for round in 0..rounds {
        for k in 0..setups.len() {
            let i = (k + round) % setups.len();
            let s = match i {
                0 => rt.block_on(requests(
                    &client(&pki, None, true),
                    &plain_url,
                    &plain_cookie,
                    connections,
                    seconds,
                    plain_pid,
                    reqwest::Version::HTTP_11,
                )),
                1 => rt.block_on(requests(
                    &client(&pki, Some(tls_addr), true),
                    &tls_url,
                    &tls_cookie,
                    connections,
                    seconds,
                    tls_pid,
                    reqwest::Version::HTTP_11,
                )),
                2 => rt.block_on(requests(
                    &client(&pki, Some(tls_addr), false),
                    &tls_url,
                    &tls_cookie,
                    connections,
                    seconds,
                    tls_pid,
                    reqwest::Version::HTTP_2,
                )),
                3 => handshakes(
                    &pki,
                    tls_addr,
                    &rustls::version::TLS13,
                    hs_threads,
                    seconds,
                    tls_pid,
                ),
                _ => handshakes(
                    &pki,
                    tls_addr,
                    &rustls::version::TLS12,
                    hs_threads,
                    seconds,
                    tls_pid,
                ),
            };
            eprintln!(
                "round {}: {}: {:.0}/s, {:.1} µs CPU each",
                round + 1,
                setups[i],
                s.rate,
                s.cpu_us
            );
            samples[i].push(s);
        }
    }

    println!(
        "\n## TLS (`cargo bench --bench tls`, {rounds} rounds of {seconds} s, {connections} concurrent requests, {hs_threads} handshaking threads)\n"
    );
    println!("| setup | per second | range | p50 ms | p99 ms | gateway CPU µs each |");
    println!("|---|---|---|---|---|---|");
    for (name, s) in setups.iter().zip(&samples) {
        let rates: Vec<f64> = s.iter().map(|x| x.rate).collect();
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        println!(
            "| {name} | {:.0} | {lo:.0}–{hi:.0} | {:.2} | {:.2} | {:.1} |",
            median(rates.clone()),
            median(s.iter().map(|x| x.p50_ms).collect()),
            median(s.iter().map(|x| x.p99_ms).collect()),
            median(s.iter().map(|x| x.cpu_us).collect()),
        );
    }
}
