//! Upstreams that misbehave, end to end: the real gateway in front of real
//! sockets that never answer, hang up, cannot be reached, die and come
//! back, or speak TLS with the right or the wrong certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{check_config, Browser, Gateway};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What a test upstream does with a request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Answers 200 with its name as the body.
    Answer,
    /// Reads the request and never answers (the connection stays open).
    Silent,
    /// Reads the request head and closes the connection.
    HangUp,
}

/// A real upstream on loopback: plain or TLS, killed by `kill` (its
/// listener and every connection closed at once).
struct App {
    addr: SocketAddr,
    /// Requests other than health checks.
    requests: Arc<AtomicUsize>,
    /// `GET /healthz` requests, and the `Host` of the last one.
    checks: Arc<AtomicUsize>,
    check_host: Arc<Mutex<String>>,
    /// What `/healthz` answers: 200 while true, 503 otherwise.
    healthy: Arc<AtomicBool>,
    /// TLS: the server names clients asked for, and failed handshakes.
    sni: Arc<Mutex<Vec<String>>>,
    bad_handshakes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl App {
    async fn start(name: &'static str, behaviour: Behaviour) -> App {
        Self::start_on("127.0.0.1:0".parse().unwrap(), name, behaviour, None).await
    }

    async fn start_on(
        addr: SocketAddr,
        name: &'static str,
        behaviour: Behaviour,
        tls: Option<Arc<pingora::tls::ServerConfig>>,
    ) -> App {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Shared {
            name,
            behaviour,
            requests: Arc::default(),
            checks: Arc::default(),
            check_host: Arc::default(),
            healthy: Arc::new(AtomicBool::new(true)),
        };
        let sni: Arc<Mutex<Vec<String>>> = Arc::default();
        let bad_handshakes: Arc<AtomicUsize> = Arc::default();
        let (s, bad) = (Arc::clone(&sni), Arc::clone(&bad_handshakes));
        let served = app.clone();
        let task = tokio::spawn(async move {
            // Dropped with the task: every connection ends with it.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                while conns.try_join_next().is_some() {}
                let app = served.clone();
                match tls.clone() {
                    None => {
                        conns.spawn(async move { app.serve(tcp).await });
                    }
                    Some(config) => {
                        let (s, bad) = (Arc::clone(&s), Arc::clone(&bad));
                        conns.spawn(async move {
                            let acceptor = pingora::tls::TlsAcceptor::from(config);
                            match acceptor.accept(tcp).await {
                                Ok(stream) => {
                                    let name = stream.get_ref().1.server_name().map(String::from);
                                    s.lock().unwrap().push(name.unwrap_or_default());
                                    app.serve(stream).await;
                                }
                                Err(_) => {
                                    bad.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        });
                    }
                }
            }
        });
        App {
            addr,
            requests: app.requests,
            checks: app.checks,
            check_host: app.check_host,
            healthy: app.healthy,
            sni,
            bad_handshakes,
            task,
        }
    }

    /// Kills it and waits until its port refuses connections.
    async fn kill(&self) {
        self.task.abort();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(self.addr).await.is_ok() {
            assert!(Instant::now() < deadline, "{} still accepts", self.addr);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Shared {
    name: &'static str,
    behaviour: Behaviour,
    requests: Arc<AtomicUsize>,
    checks: Arc<AtomicUsize>,
    check_host: Arc<Mutex<String>>,
    healthy: Arc<AtomicBool>,
}

impl Shared {
    /// HTTP/1.1 with keep-alive; requests carry no body in these tests.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S) {
        let mut stream = BufReader::new(stream);
        loop {
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                match stream.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == "\r\n" || line == "\n" {
                    break;
                }
                head.push(line.trim_end().to_string());
            }
            let target = head
                .first()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string();
            let (status, body) = if target == "/healthz" {
                self.checks.fetch_add(1, Ordering::SeqCst);
                let host = head
                    .iter()
                    .find_map(|h| {
                        let (k, v) = h.split_once(':')?;
                        k.eq_ignore_ascii_case("host").then(|| v.trim().to_string())
                    })
                    .unwrap_or_default();
                *self.check_host.lock().unwrap() = host;
                if self.healthy.load(Ordering::SeqCst) {
                    ("200 OK", "ok")
                } else {
                    ("503 Service Unavailable", "not yet")
                }
            } else {
                self.requests.fetch_add(1, Ordering::SeqCst);
                match self.behaviour {
                    Behaviour::Answer => ("200 OK", self.name),
                    Behaviour::HangUp => return,
                    Behaviour::Silent => {
                        // Hold the connection open, answering nothing.
                        std::future::pending::<()>().await;
                        return;
                    }
                }
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if stream.get_mut().write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// A gateway config with one public route to `/` carrying `route_keys`
/// (`upstream` included), and `extra_routes` after it.
fn config(route_keys: &str, extra_routes: &str) -> String {
    format!(
        "[server]\nlisten = [\"@LISTEN@\"]\nadmin_listen = \"@ADMIN@\"\ngrace_period = \"0s\"\nupgrade_sock = \"upgrade.sock\"\nthreads = 1\n\n\
         [[route]]\npath_prefix = \"/\"\naccess = \"public\"\n{route_keys}\n\n{extra_routes}\n\
         [users]\nfile = \"users.toml\"\n\n[session]\ncookie_secure = false\n"
    )
}

/// `n` requests one after the other, as a browser would send them: each
/// one's status and body.
async fn requests(gw: &Gateway, n: usize) -> Vec<(u16, String)> {
    let mut b = Browser::new(&gw.url("/"));
    let mut out = Vec::new();
    for i in 0..n {
        let r = b.page(&format!("/page/{i}")).await;
        out.push((r.status, r.body));
    }
    out
}

/// Polls `/metrics` until it holds `line`; how long that took.
async fn until_metrics_show(gw: &Gateway, line: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (_, metrics) = gw.admin("GET", "/metrics", None).await;
        if metrics.lines().any(|l| l == line) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "no {line:?} within {within:?}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn up_line(addr: SocketAddr, up: bool) -> String {
    format!(
        "gatehouse_upstream_up{{upstream=\"{addr}\"}} {}",
        u8::from(up)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_never_answers_gets_the_504_page_after_read_timeout() {
    let app = App::start("silent", Behaviour::Silent).await;
    let gw = Gateway::start(&config(
        &format!("upstream = \"{}\"\nread_timeout = \"1s\"", app.addr),
        "",
    ));
    let mut b = Browser::new(&gw.url("/"));

    let started = Instant::now();
    let r = b.page("/report").await;
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(
        r.body.contains("did not answer in time") && r.body.contains("<html"),
        "the gateway's page: {}",
        r.body
    );
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "answered after {took:?}, read_timeout is 1 s"
    );
    println!("504 after {took:?} (read_timeout = 1s)");

    let started = Instant::now();
    let r = b.api("/api/report").await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"], "upstream_timeout", "{}", r.body);
    assert!(started.elapsed() >= Duration::from_millis(950));
    // Each request went upstream once: a timed-out request is not retried.
    assert_eq!(app.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_hangs_up_gets_the_502_page() {
    let app = App::start("rude", Behaviour::HangUp).await;
    let gw = Gateway::start(&config(&format!("upstream = \"{}\"", app.addr), ""));
    let mut b = Browser::new(&gw.url("/"));
    let r = b.page("/report").await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("did not answer"), "{}", r.body);
    let r = b.api("/api/report").await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "upstream_unavailable", "{}", r.body);
}

/// A listener whose accept queue is full: the kernel drops further SYNs,
/// so a connection attempt hangs until the caller's timeout, on any
/// machine, without relying on an unroutable address.
async fn blackhole() -> (SocketAddr, TcpListener, Vec<TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("connecting to the backlog listener: {e}"),
            Err(_) => return (addr, listener, held),
        }
        assert!(held.len() < 16, "the accept queue never filled up");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_cannot_be_reached_gets_the_502_page_after_connect_timeout() {
    let (addr, _listener, _held) = blackhole().await;
    let gw = Gateway::start(&config(
        &format!("upstream = \"{addr}\"\nconnect_timeout = \"1s\""),
        "",
    ));
    let mut b = Browser::new(&gw.url("/"));
    let started = Instant::now();
    let r = b.page("/report").await;
    let took = started.elapsed();
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("did not answer"), "{}", r.body);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "answered after {took:?}, connect_timeout is 1 s"
    );
    println!("502 after {took:?} (connect_timeout = 1s)");
    let log = gw.log();
    assert!(
        log.contains(&format!("upstream {addr} is unreachable: ConnectTimedout")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_is_skipped_once_the_health_check_notices_and_used_again_when_back() {
    let a = App::start("a", Behaviour::Answer).await;
    let b = App::start("b", Behaviour::Answer).await;
    let gw = Gateway::start(&config(
        &format!(
            "upstream = [\"{}\", \"{}\"]\nhealth_interval = \"500ms\"",
            a.addr, b.addr
        ),
        "",
    ));
    let both = requests(&gw, 10).await;
    assert!(both.iter().all(|(s, _)| *s == 200), "{both:?}");
    assert!(a.requests() > 0 && b.requests() > 0, "both take turns");

    // No traffic while b dies: only the health check can notice.
    b.kill().await;
    let detected = until_metrics_show(&gw, &up_line(b.addr, false), Duration::from_secs(3)).await;
    println!("a dead upstream is noticed after {detected:?} (health_interval = 500ms)");
    assert!(detected < Duration::from_millis(1500), "{detected:?}");
    let log = gw.log();
    assert!(
        log.contains(&format!(
            "upstream {} is unreachable: ConnectRefused",
            b.addr
        )),
        "{log}"
    );

    let a_before = a.requests();
    let steady = requests(&gw, 40).await;
    assert!(
        steady.iter().all(|(s, body)| *s == 200 && body == "a"),
        "{steady:?}"
    );
    assert_eq!(a.requests() - a_before, 40);

    let b = App::start_on(b.addr, "b", Behaviour::Answer, None).await;
    let back = until_metrics_show(&gw, &up_line(b.addr, true), Duration::from_secs(3)).await;
    println!("it is used again {back:?} after it came back");
    assert!(back < Duration::from_millis(1500), "{back:?}");
    let again = requests(&gw, 10).await;
    assert!(again.iter().all(|(s, _)| *s == 200), "{again:?}");
    assert!(b.requests() > 0, "b is given requests again: {again:?}");
    let log = gw.log();
    assert!(
        log.contains(&format!("upstream {} is back after", b.addr)),
        "{log}"
    );
    // The outage is two lines, whatever the requests and checks met.
    let loud = loud_lines(&log);
    assert_eq!(loud.len(), 2, "{loud:#?}");
    assert!(loud[0].contains(" ERROR ") && loud[0].contains("is unreachable"));
    assert!(loud[1].contains(" WARN ") && loud[1].contains("is back after"));
}

/// Lines at WARN or above, after the start-up ones.
fn loud_lines(log: &str) -> Vec<&str> {
    log.lines()
        .skip_while(|l| !l.contains("gatehouse listening on"))
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_upstream_refuses_the_connection_goes_to_the_other_one() {
    let a = App::start("a", Behaviour::Answer).await;
    let b = App::start("b", Behaviour::Answer).await;
    // Checks too rare to notice anything during the test.
    let gw = Gateway::start(&config(
        &format!(
            "upstream = [\"{}\", \"{}\"]\nhealth_interval = \"1h\"",
            a.addr, b.addr
        ),
        "",
    ));
    let both = requests(&gw, 6).await;
    assert!(both.iter().all(|(s, _)| *s == 200), "{both:?}");
    b.kill().await;
    // Before any health check: every request still succeeds, on a.
    let after = requests(&gw, 20).await;
    assert!(
        after.iter().all(|(s, body)| *s == 200 && body == "a"),
        "{after:?}"
    );
    // The failed connection marked b down (it is skipped from then on).
    until_metrics_show(&gw, &up_line(b.addr, false), Duration::from_secs(1)).await;
    until_metrics_show(&gw, &up_line(a.addr, true), Duration::from_secs(1)).await;
    let log = gw.log();
    let loud = loud_lines(&log);
    assert_eq!(loud.len(), 1, "{loud:#?}");
    assert!(
        loud[0].contains(&format!(
            "upstream {} is unreachable: ConnectRefused",
            b.addr
        )),
        "{}",
        loud[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_health_path_an_upstream_is_up_only_while_it_answers_2xx() {
    let a = App::start("a", Behaviour::Answer).await;
    let b = App::start("b", Behaviour::Answer).await;
    b.healthy.store(false, Ordering::SeqCst);
    let gw = Gateway::start(&config(
        &format!(
            "upstream = [\"{}\", \"{}\"]\nhealth_path = \"/healthz\"\nhealth_interval = \"300ms\"",
            a.addr, b.addr
        ),
        "",
    ));
    // b takes connections, but its health page says 503.
    until_metrics_show(&gw, &up_line(b.addr, false), Duration::from_secs(3)).await;
    let steady = requests(&gw, 20).await;
    assert!(
        steady.iter().all(|(s, body)| *s == 200 && body == "a"),
        "{steady:?}"
    );
    assert_eq!(b.requests(), 0);
    assert_eq!(*b.check_host.lock().unwrap(), b.addr.to_string());

    b.healthy.store(true, Ordering::SeqCst);
    until_metrics_show(&gw, &up_line(b.addr, true), Duration::from_secs(3)).await;
    let again = requests(&gw, 10).await;
    assert!(again.iter().all(|(s, _)| *s == 200), "{again:?}");
    assert!(b.requests() > 0, "{again:?}");
    assert!(a.checks.load(Ordering::SeqCst) > 0);
}

/// A certificate for `names` that signs itself (no CA), as PEM, plus the
/// server's rustls configuration.
fn self_signed_server(names: &[&str]) -> (String, Arc<pingora::tls::ServerConfig>) {
    pingora::tls::install_default_crypto_provider();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let private = pingora::tls::PrivateKeyDer::try_from(signing_key.serialize_der()).unwrap();
    let config = pingora::tls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], private)
        .unwrap();
    (cert.pem(), Arc::new(config))
}

/// A CA and a server certificate it signed for `names`, as PEM, plus the
/// server's rustls configuration.
fn tls_server(names: &[&str]) -> (String, Arc<pingora::tls::ServerConfig>) {
    pingora::tls::install_default_crypto_provider();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gatehouse test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
    let chain = vec![leaf.der().clone(), ca.der().clone()];
    let private = pingora::tls::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = pingora::tls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .unwrap();
    (ca.pem(), Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tls_verifies_the_certificate_and_never_falls_back_to_plain_http() {
    let (ca, by_ip) = tls_server(&["127.0.0.1"]);
    let (other_ca, _) = tls_server(&["127.0.0.1"]);
    let (named_ca, by_name) = tls_server(&["app.internal"]);
    let ip_app = App::start_on(
        "127.0.0.1:0".parse().unwrap(),
        "tls",
        Behaviour::Answer,
        Some(by_ip),
    )
    .await;
    let named_app = App::start_on(
        "127.0.0.1:0".parse().unwrap(),
        "named",
        Behaviour::Answer,
        Some(by_name),
    )
    .await;
    let (own_cert, self_signed) = self_signed_server(&["127.0.0.1"]);
    let self_signed_app = App::start_on(
        "127.0.0.1:0".parse().unwrap(),
        "self-signed",
        Behaviour::Answer,
        Some(self_signed),
    )
    .await;
    let route = |prefix: &str, addr: SocketAddr, keys: &str| {
        format!("[[route]]\npath_prefix = \"{prefix}\"\naccess = \"public\"\nupstream = \"{addr}\"\n{keys}\n\n")
    };
    let extra = [
        route(
            "/self-signed/",
            self_signed_app.addr,
            "upstream_tls = true\nupstream_ca = \"own.pem\"",
        ),
        route("/system/", ip_app.addr, "upstream_tls = true"),
        route(
            "/right/",
            ip_app.addr,
            "upstream_tls = true\nupstream_ca = \"ca.pem\"",
        ),
        route(
            "/wrong/",
            ip_app.addr,
            "upstream_tls = true\nupstream_ca = \"other-ca.pem\"",
        ),
        route(
            "/sni/",
            named_app.addr,
            "upstream_tls = true\nupstream_ca = \"named-ca.pem\"\nupstream_sni = \"app.internal\"",
        ),
        route(
            "/no-sni/",
            named_app.addr,
            "upstream_tls = true\nupstream_ca = \"named-ca.pem\"",
        ),
        route("/plain/", ip_app.addr, ""),
    ]
    .concat();
    let gw = Gateway::start_with_files(
        &config(&format!("upstream = \"{}\"", ip_app.addr), &extra),
        &[
            ("ca.pem", &ca),
            ("other-ca.pem", &other_ca),
            ("named-ca.pem", &named_ca),
            ("own.pem", &own_cert),
        ],
    );
    let mut b = Browser::new(&gw.url("/"));

    let r = b.page("/right/x").await;
    assert_eq!((r.status, r.body.as_str()), (200, "tls"));
    let served = ip_app.requests();
    // The same upstream through routes that trust something else: their
    // own handshakes fail (a connection verified for /right/ is not
    // reused for them), and nothing is sent in the clear.
    for path in ["/wrong/x", "/system/x"] {
        let r = b.page(path).await;
        assert_eq!(r.status, 502, "{path}: {}", r.body);
    }
    assert_eq!(ip_app.requests(), served, "no request reached the app");
    assert!(ip_app.bad_handshakes.load(Ordering::SeqCst) >= 2);
    // Plain HTTP to a TLS port is what the config says, and fails too.
    assert_eq!(b.page("/plain/x").await.status, 502);

    let r = b.page("/sni/x").await;
    assert_eq!((r.status, r.body.as_str()), (200, "named"));
    assert!(
        named_app
            .sni
            .lock()
            .unwrap()
            .iter()
            .any(|n| n == "app.internal"),
        "{:?}",
        named_app.sni.lock().unwrap()
    );
    // Without upstream_sni the certificate is checked against 127.0.0.1.
    assert_eq!(b.page("/no-sni/x").await.status, 502);
    assert_eq!(named_app.requests(), 1);

    // A self-signed upstream: its own certificate is the CA to trust.
    let r = b.page("/self-signed/x").await;
    assert_eq!((r.status, r.body.as_str()), (200, "self-signed"));
}

/// `config` with real addresses, as `check-config` reads it.
fn checkable(route_keys: &str, extra_routes: &str) -> String {
    config(route_keys, extra_routes)
        .replace("@LISTEN@", "127.0.0.1:8080")
        .replace("@ADMIN@", "127.0.0.1:9091")
}

#[test]
fn check_config_names_every_bad_upstream_key() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let key_file = dir.path().join("key.pem");
    std::fs::write(
        &key_file,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "read_timeout = \"soon\"".into(),
            "route[1].read_timeout",
            "expected a duration",
        ),
        (
            "connect_timeout = \"0s\"".into(),
            "route[1].connect_timeout",
            "greater than zero",
        ),
        (
            "upstream_ca = \"ca.pem\"".into(),
            "route[1].upstream_ca",
            "only used with upstream_tls = true",
        ),
        (
            "upstream_sni = \"app.internal\"".into(),
            "route[1].upstream_sni",
            "only used with upstream_tls = true",
        ),
        (
            "upstream_tls = true\nupstream_ca = \"missing.pem\"".into(),
            "route[1].upstream_ca",
            "missing.pem: cannot read it",
        ),
        (
            format!("upstream_tls = true\nupstream_ca = {junk:?}"),
            "route[1].upstream_ca",
            "certificate 1 cannot be a trust anchor",
        ),
        (
            format!("upstream_tls = true\nupstream_ca = {key_file:?}"),
            "route[1].upstream_ca",
            "found a PRIVATE KEY block",
        ),
        (
            "upstream_tls = true\nupstream_sni = \"not a name\"".into(),
            "route[1].upstream_sni",
            "expected a host name",
        ),
        (
            "upstream_tls = \"yes\"".into(),
            "route[1].upstream_tls",
            "boolean",
        ),
        (
            "health_path = \"/healthz\"".into(),
            "route[1].health_path",
            "this route has one",
        ),
    ];
    for (keys, key, message) in &cases {
        let text = checkable(
            "upstream = \"127.0.0.1:8000\"",
            &format!("[[route]]\npath_prefix = \"/x/\"\naccess = \"public\"\nupstream = \"127.0.0.1:8001\"\n{keys}\n\n"),
        );
        let bad_line = keys.lines().last().unwrap();
        let line = text.lines().position(|l| l == bad_line).unwrap() + 1;
        let (code, _, err) = check_config(&text);
        assert_eq!(code, 1, "{keys}: {err}");
        assert!(
            err.contains(&format!("gatehouse.toml:{line}: {key}: ")) && err.contains(message),
            "{keys}: expected line {line}, {key}, {message:?}:\n{err}"
        );
        assert_eq!(err.lines().count(), 1, "only that mistake: {err}");
    }
    // On a list, the health keys are checked for what they hold.
    let list = "upstream = [\"127.0.0.1:8000\", \"127.0.0.1:8001\"]";
    for (keys, key, message) in [
        (
            "health_path = \"healthz\"",
            "route[0].health_path",
            "expected a path like \"/healthz\"",
        ),
        (
            "health_interval = \"10ms\"",
            "route[0].health_interval",
            "expected a duration from \"100ms\" to \"1h\"",
        ),
    ] {
        let text = checkable(&format!("{list}\n{keys}"), "");
        let line = text.lines().position(|l| l == keys).unwrap() + 1;
        let (code, _, err) = check_config(&text);
        assert_eq!(code, 1, "{keys}: {err}");
        assert!(
            err.contains(&format!("gatehouse.toml:{line}: {key}: {message}")),
            "{keys}:\n{err}"
        );
    }
    let good = checkable(
        &format!("{list}\nhealth_path = \"/healthz\"\nhealth_interval = \"5s\"\nconnect_timeout = \"2s\"\nread_timeout = \"30s\""),
        "",
    );
    let (code, out, err) = check_config(&good);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reads_the_upstream_ca_again() {
    let (ca, by_ip) = tls_server(&["127.0.0.1"]);
    let (other_ca, _) = tls_server(&["127.0.0.1"]);
    let app = App::start_on(
        "127.0.0.1:0".parse().unwrap(),
        "tls",
        Behaviour::Answer,
        Some(by_ip),
    )
    .await;
    let gw = Gateway::start_with_files(
        &config(
            &format!(
                "upstream = \"{}\"\nupstream_tls = true\nupstream_ca = \"ca.pem\"",
                app.addr
            ),
            "",
        ),
        &[("ca.pem", &other_ca)],
    );
    let mut b = Browser::new(&gw.url("/"));
    assert_eq!(b.page("/x").await.status, 502);

    // The operator fixes the CA file: a reload is enough.
    std::fs::write(gw.dir().join("ca.pem"), &ca).unwrap();
    let log = gw.reload();
    assert!(log.contains("config reloaded: routes"), "{log}");
    let r = b.page("/x").await;
    assert_eq!((r.status, r.body.as_str()), (200, "tls"));

    // A CA file that no longer reads keeps the previous config.
    std::fs::write(gw.dir().join("ca.pem"), "not a certificate").unwrap();
    let log = gw.reload();
    assert!(
        log.contains("config reload failed") && log.contains("upstream_ca"),
        "{log}"
    );
    let r = b.page("/y").await;
    assert_eq!((r.status, r.body.as_str()), (200, "tls"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_upstream_whose_certificate_does_not_verify_fails_its_health_check() {
    let (ca, good_config) = tls_server(&["127.0.0.1"]);
    let (_, impostor_config) = tls_server(&["127.0.0.1"]);
    let good = App::start_on(
        "127.0.0.1:0".parse().unwrap(),
        "good",
        Behaviour::Answer,
        Some(good_config),
    )
    .await;
    let impostor = App::start_on(
        "127.0.0.1:0".parse().unwrap(),
        "impostor",
        Behaviour::Answer,
        Some(impostor_config),
    )
    .await;
    let gw = Gateway::start_with_files(
        &config(
            &format!(
                "upstream = [\"{}\", \"{}\"]\nupstream_tls = true\nupstream_ca = \"ca.pem\"\nhealth_interval = \"300ms\"",
                good.addr, impostor.addr
            ),
            "",
        ),
        &[("ca.pem", &ca)],
    );
    // It takes TCP connections: only the verified handshake tells.
    until_metrics_show(&gw, &up_line(impostor.addr, false), Duration::from_secs(3)).await;
    let steady = requests(&gw, 20).await;
    assert!(
        steady.iter().all(|(s, body)| *s == 200 && body == "good"),
        "{steady:?}"
    );
    assert_eq!(impostor.requests(), 0);
    let log = gw.log();
    assert!(
        log.contains(&format!(
            "upstream {} is unreachable: TLSHandshakeFailure",
            impostor.addr
        )),
        "{log}"
    );
}
