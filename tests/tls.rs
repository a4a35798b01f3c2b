//! TLS on the gateway's own listeners, end to end: HTTP/2 by ALPN with
//! HTTP/1.1 fallback, login and identity headers over both, spoofed
//! identity headers stripped on h2, the chain `openssl s_client` sees, SNI,
//! plain listeners sending clients to https, HSTS on TLS answers only,
//! certificates swapped by SIGHUP without dropping a request, and
//! `check-config` on a key that belongs to another certificate.
//! Certificates come from a CA made with rcgen in each test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{free_port, Browser, Gateway, Upstream, ALICE_PASSWORD};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A test certificate authority.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, as PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "gatehouse test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn issue(&self, names: &[&str]) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// Leaf then CA: what a real `fullchain.pem` holds.
    fn full_chain(&self, leaf: &Leaf) -> String {
        format!("{}{}", leaf.cert_pem, self.pem())
    }
}

/// The test config with `cookie_secure` left at its default (true) and a
/// `[server.tls]` on `tls_port` using `cert.pem` / `key.pem` beside it.
fn tls_config(upstream: SocketAddr, tls_port: u16, tls_extra: &str) -> String {
    common::config(upstream, "")
        .replace("cookie_secure = false\n", "")
        + &format!(
            "\n[server.tls]\nlisten = [\"127.0.0.1:{tls_port}\"]\ncert = \"cert.pem\"\nkey = \"key.pem\"\nhsts = \"365d\"\n{tls_extra}\n"
        )
}

struct TlsGateway {
    gw: Gateway,
    tls: SocketAddr,
    ca: Ca,
    leaf: Leaf,
}

impl TlsGateway {
    fn start(upstream: SocketAddr) -> TlsGateway {
        let ca = Ca::new();
        let leaf = ca.issue(&["app.test"]);
        let port = free_port();
        let chain = ca.full_chain(&leaf);
        let gw = Gateway::start_with_files(
            &tls_config(upstream, port, ""),
            &[("cert.pem", &chain), ("key.pem", &leaf.key_pem)],
        );
        TlsGateway {
            gw,
            tls: SocketAddr::from(([127, 0, 0, 1], port)),
            ca,
            leaf,
        }
    }

    fn base(&self) -> String {
        format!("https://app.test:{}", self.tls.port())
    }

    /// A client that trusts the test CA and finds `app.test` and
    /// `other.test` on the TLS listener; `h1_only` offers only http/1.1.
    fn client(&self, h1_only: bool) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca.pem().as_bytes()).unwrap())
            .resolve("app.test", self.tls)
            .resolve("other.test", self.tls)
            .tls_info(true)
            .redirect(reqwest::redirect::Policy::none());
        if h1_only {
            b = b.http1_only();
        }
        b.build().unwrap()
    }

    fn browser(&self, h1_only: bool) -> Browser {
        Browser::with_client(&self.base(), self.client(h1_only))
    }

    /// The leaf certificate a fresh connection for `host` is shown.
    async fn presented(&self, host: &str) -> Vec<u8> {
        let url = format!("https://{host}:{}/.gatehouse/login", self.tls.port());
        let resp = self.client(false).get(url).send().await.unwrap();
        resp.extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate())
            .expect("no peer certificate")
            .to_vec()
    }
}

/// The spellings an attacker would try for identity headers.
const SPOOFED: [(&str, &str); 6] = [
    ("x-remote-user", "mallory"),
    ("X-REMOTE-EMAIL", "mallory@evil.test"),
    ("x_remote_user", "mallory"),
    ("remote-user", "mallory"),
    ("x-forwarded-user", "mallory"),
    ("x-auth-request-user", "mallory"),
];

async fn login_and_proxy(t: &TlsGateway, upstream: &Upstream, h1_only: bool) {
    let expected = if h1_only {
        reqwest::Version::HTTP_11
    } else {
        reqwest::Version::HTTP_2
    };
    let mut b = t.browser(h1_only);

    // No session: a page load goes to the login page, a script gets 401.
    let r = b.page("/reports").await;
    assert_eq!(r.version, expected);
    assert_eq!(r.status, 303);
    assert!(
        r.location().contains("/.gatehouse/login?rd="),
        "{}",
        r.location()
    );
    let r = b.api("/reports").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "login_required");

    // Login over TLS sets the Secure `__Host-` cookie (cookie_secure's default).
    let r = b.login("alice", ALICE_PASSWORD, "/reports").await;
    assert_eq!(r.version, expected);
    assert_eq!(r.status, 303, "{}", r.body);
    let set = r.set_cookies().join("\n");
    assert!(set.contains("__Host-gatehouse="), "{set}");
    assert!(set.contains("Secure"), "{set}");
    assert!(b.cookies.contains_key("__Host-gatehouse"));

    let before = upstream.count();
    let mut req = vec![("Accept", "text/html")];
    req.extend(SPOOFED);
    let r = b.get_with("/reports?q=1", &req).await;
    assert_eq!(r.version, expected);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(upstream.count(), before + 1);
    let seen = upstream.last();
    assert_eq!(seen.target, "/reports?q=1");
    assert_eq!(seen.header_all("x-remote-user"), vec!["alice"]);
    assert_eq!(seen.header_all("x-remote-email"), vec!["alice@example.com"]);
    for (name, value) in &seen.headers {
        assert!(
            !value.contains("mallory"),
            "spoofed {name}: {value} reached the app"
        );
    }
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(
        seen.header("host"),
        Some(format!("app.test:{}", t.tls.port()).as_str())
    );
    assert!(
        seen.header("cookie")
            .is_none_or(|c| !c.contains("gatehouse")),
        "{:?}",
        seen.header("cookie")
    );
    // HSTS on the app's answer and on the gateway's own pages.
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    let own = b.page("/.gatehouse/login").await;
    assert_eq!(
        own.header("strict-transport-security"),
        Some("max-age=31536000")
    );
}

#[tokio::test]
async fn h2_login_identity_headers_and_spoofed_headers() {
    let upstream = Upstream::start();
    let t = TlsGateway::start(upstream.addr);
    login_and_proxy(&t, &upstream, false).await;
}

#[tokio::test]
async fn a_client_offering_only_http_1_1_gets_it() {
    let upstream = Upstream::start();
    let t = TlsGateway::start(upstream.addr);
    login_and_proxy(&t, &upstream, true).await;
}

#[tokio::test]
async fn plain_listeners_send_clients_to_https_without_hsts() {
    let upstream = Upstream::start();
    let t = TlsGateway::start(upstream.addr);
    let port = t.tls.port();
    for method in ["GET", "HEAD", "POST"] {
        let raw = t.gw.raw(&format!(
            "{method} /reports/a%20b?x=1&y=2 HTTP/1.1\r\nHost: App.Test:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            t.gw.addr.port()
        ));
        assert_eq!(common::raw_status(&raw), 308, "{method}: {raw}");
        let expected = format!("\r\nlocation: https://app.test:{port}/reports/a%20b?x=1&y=2\r\n");
        assert!(
            raw.to_ascii_lowercase().contains(&expected),
            "{method}: {raw}"
        );
        assert!(
            !raw.to_ascii_lowercase()
                .contains("strict-transport-security"),
            "HSTS over plain HTTP: {raw}"
        );
    }
    // The gateway's own pages too: nothing is served over plain HTTP.
    let raw =
        t.gw.raw("GET /.gatehouse/login HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
    assert_eq!(common::raw_status(&raw), 308, "{raw}");
    assert!(
        raw.to_ascii_lowercase().contains(&format!(
            "location: https://app.test:{port}/.gatehouse/login\r\n"
        )),
        "{raw}"
    );
    assert_eq!(upstream.count(), 0, "a plain request reached the app");

    // Forward auth is for a proxy in front, not a browser: answered here
    // (this peer is not a trusted proxy, so: 403).
    let raw = t.gw.raw("GET /.gatehouse/auth HTTP/1.1\r\nHost: app.test\r\nX-Original-URI: /reports\r\nConnection: close\r\n\r\n");
    assert_eq!(common::raw_status(&raw), 403, "{raw}");

    // Followed, the redirect lands on the TLS listener.
    let follows = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(t.ca.pem().as_bytes()).unwrap())
        .resolve("app.test", t.tls)
        .build()
        .unwrap();
    let r = follows
        .get(format!(
            "http://app.test:{}/.gatehouse/login",
            t.gw.addr.port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.url().as_str(),
        format!("https://app.test:{port}/.gatehouse/login")
    );
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
}

/// `openssl`, or `None` (with the reason printed) outside CI.
fn openssl() -> Option<&'static str> {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("openssl");
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "openssl is not on PATH, and CI=true makes that a failure (.ci/run installs it)"
    );
    eprintln!("skipped: openssl is not on PATH");
    None
}

/// `openssl s_client -showcerts` against `addr` for `servername`, with
/// extra arguments: everything it printed.
fn s_client(addr: SocketAddr, servername: &str, extra: &[&str]) -> Option<String> {
    let bin = openssl()?;
    let out = Command::new(bin)
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            servername,
            "-showcerts",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The PEM certificates in `text`, whitespace-normalised.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let end_marker = "-----END CERTIFICATE-----";
        let end = rest[start..].find(end_marker).unwrap() + start + end_marker.len();
        out.push(rest[start..end].split_whitespace().collect::<String>());
        rest = &rest[end..];
    }
    out
}

#[test]
fn openssl_s_client_shows_the_configured_chain() {
    let upstream = Upstream::start();
    let t = TlsGateway::start(upstream.addr);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, t.ca.pem()).unwrap();
    let ca_arg = ca_file.display().to_string();
    let Some(out) = s_client(
        t.tls,
        "app.test",
        &["-CAfile", &ca_arg, "-verify_return_error"],
    ) else {
        return;
    };
    assert_eq!(
        pem_blocks(&out),
        pem_blocks(&t.ca.full_chain(&t.leaf)),
        "the chain sent is not fullchain.pem:\n{out}"
    );
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    // TLS 1.2 clients are served too, with a forward-secret AEAD suite.
    let out = s_client(t.tls, "app.test", &["-tls1_2"]).unwrap();
    assert!(out.contains("TLSv1.2"), "{out}");
    assert!(
        out.contains("ECDHE") && (out.contains("GCM") || out.contains("CHACHA20")),
        "{out}"
    );
    // ALPN: h2 first, http/1.1 for those that ask only for it.
    let out = s_client(t.tls, "app.test", &["-alpn", "h2,http/1.1"]).unwrap();
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    let out = s_client(t.tls, "app.test", &["-alpn", "http/1.1"]).unwrap();
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
}

#[tokio::test]
async fn sni_picks_the_certificate_of_the_name_asked_for() {
    let upstream = Upstream::start();
    let ca = Ca::new();
    let app = ca.issue(&["app.test"]);
    let other = ca.issue(&["other.test", "*.other.test"]);
    let port = free_port();
    let extra = "[[server.tls.certificate]]\ncert = \"other.pem\"\nkey = \"other.key\"\n";
    let gw = Gateway::start_with_files(
        &tls_config(upstream.addr, port, extra),
        &[
            ("cert.pem", &ca.full_chain(&app)),
            ("key.pem", &app.key_pem),
            ("other.pem", &ca.full_chain(&other)),
            ("other.key", &other.key_pem),
        ],
    );
    let t = TlsGateway {
        gw,
        tls: SocketAddr::from(([127, 0, 0, 1], port)),
        ca,
        leaf: app,
    };
    assert_eq!(t.presented("app.test").await, t.leaf.der);
    assert_eq!(t.presented("other.test").await, other.der);
    // A name nobody covers, and no name at all, get the first certificate.
    if let Some(out) = s_client(t.tls, "unknown.test", &[]) {
        assert_eq!(
            pem_blocks(&out).first(),
            pem_blocks(&t.leaf.cert_pem).first(),
            "{out}"
        );
        let out = s_client(t.tls, "www.other.test", &[]).unwrap();
        assert_eq!(
            pem_blocks(&out).first(),
            pem_blocks(&other.cert_pem).first(),
            "{out}"
        );
    }
}

/// An HTTP/1.1 app that answers every request after `delay`.
fn slow_upstream(delay: Duration) -> (SocketAddr, std::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let arrived = arrived.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut writer = conn;
                loop {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let _ = arrived.send(());
                    std::thread::sleep(delay);
                    let body = "slow answer";
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if writer.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn wait_for_log(gw: &Gateway, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = gw.log();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "never logged {needle:?}:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_pair(dir: &Path, ca: &Ca, leaf: &Leaf) {
    // As certbot does: the new files appear whole.
    for (name, text) in [
        ("cert.pem", ca.full_chain(leaf)),
        ("key.pem", leaf.key_pem.clone()),
    ] {
        let tmp = dir.join(format!("{name}.new"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

#[tokio::test]
async fn sighup_swaps_the_certificate_without_dropping_a_request() {
    let (slow, arrived) = slow_upstream(Duration::from_secs(3));
    let upstream_public = slow;
    let t = TlsGateway::start(upstream_public);
    assert_eq!(t.presented("app.test").await, t.leaf.der);

    // A long request (public route: no login needed) on its own connection.
    let client = t.client(false);
    let url = format!("{}/static/slow", t.base());
    let long = tokio::spawn(async move {
        let r = client.get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    tokio::task::spawn_blocking(move || arrived.recv_timeout(Duration::from_secs(10)).unwrap())
        .await
        .unwrap();

    let renewed = t.ca.issue(&["app.test"]);
    write_pair(t.gw.dir(), &t.ca, &renewed);
    let log = t.gw.reload();
    assert!(log.contains("server.tls certificates"), "{log}");
    assert!(
        !long.is_finished(),
        "the long request ended before the reload was done"
    );
    assert_eq!(t.presented("app.test").await, renewed.der);
    assert_eq!(long.await.unwrap(), (200, "slow answer".to_string()));

    // A corrupt replacement: the gateway keeps the certificate it has,
    // says which file is wrong, and serves on.
    std::fs::write(
        t.gw.dir().join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n",
    )
    .unwrap();
    let log = t.gw.reload();
    let cert_file = t.gw.dir().join("cert.pem").display().to_string();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("config reload failed"))
        .unwrap_or_else(|| panic!("no failed reload logged:\n{log}"))
        .to_string();
    assert!(line.contains(&format!("{cert_file}: ")), "{line}");
    assert_eq!(t.presented("app.test").await, renewed.der);
    let mut b = t.browser(false);
    assert_eq!(b.page("/.gatehouse/login").await.status, 200);

    // A key that belongs to another certificate is refused the same way.
    let stranger = t.ca.issue(&["app.test"]);
    std::fs::write(t.gw.dir().join("cert.pem"), t.ca.full_chain(&renewed)).unwrap();
    std::fs::write(t.gw.dir().join("key.pem"), &stranger.key_pem).unwrap();
    t.gw.reload();
    let log = wait_for_log(&t.gw, "does not belong to the certificate");
    assert!(
        log.contains(&t.gw.dir().join("key.pem").display().to_string()),
        "{log}"
    );
    assert_eq!(t.presented("app.test").await, renewed.der);
}

#[test]
fn check_config_names_a_key_that_belongs_to_another_certificate() {
    let ca = Ca::new();
    let leaf = ca.issue(&["app.test"]);
    let stranger = ca.issue(&["app.test"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("fullchain.pem");
    let key = dir.path().join("privkey.pem");
    std::fs::write(&cert, ca.full_chain(&leaf)).unwrap();
    std::fs::write(&key, &stranger.key_pem).unwrap();
    let text = |key_path: &Path| {
        common::config("127.0.0.1:9".parse().unwrap(), "")
            .replace("@LISTEN@", "127.0.0.1:8080")
            .replace("@ADMIN@", "127.0.0.1:9091")
            + &format!(
                "\n[server.tls]\nlisten = [\"127.0.0.1:8443\"]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.display(),
                key_path.display()
            )
    };
    let (code, _out, err) = common::check_config(&text(&key));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "server.tls.key: {}: this key does not belong to the certificate in {}",
            key.display(),
            cert.display()
        )),
        "{err}"
    );
    assert!(err.contains("gatehouse.toml:"), "{err}");

    let missing = dir.path().join("nowhere.pem");
    let (code, _out, err) = common::check_config(&text(&missing));
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "server.tls.key: {}: cannot read the file",
            missing.display()
        )),
        "{err}"
    );

    let right = dir.path().join("right.pem");
    std::fs::write(&right, &leaf.key_pem).unwrap();
    let (code, out, err) = common::check_config(&text(&right));
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_cut_off_and_h2_outlives_the_head_deadline() {
    let (slow, _arrived) = slow_upstream(Duration::from_millis(1500));
    let ca = Ca::new();
    let leaf = ca.issue(&["app.test"]);
    let port = free_port();
    let text = tls_config(slow, port, "")
        .replace("[server]\n", "[server]\nrequest_header_timeout = \"1s\"\n");
    let gw = Gateway::start_with_files(
        &text,
        &[
            ("cert.pem", &ca.full_chain(&leaf)),
            ("key.pem", &leaf.key_pem),
        ],
    );
    let t = TlsGateway {
        gw,
        tls: SocketAddr::from(([127, 0, 0, 1], port)),
        ca,
        leaf,
    };

    // Connected, then silent (or a ClientHello's first bytes only): closed
    // once request_header_timeout has passed, not after Pingora's 60 s.
    for opening in [&b""[..], &[0x16, 0x03, 0x01, 0x02][..]] {
        let tls = t.tls;
        let opening = opening.to_vec();
        let (closed_after, read) = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut s = std::net::TcpStream::connect(tls).unwrap();
            s.write_all(&opening).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let start = Instant::now();
            let mut buf = [0u8; 64];
            let read = s.read(&mut buf);
            (start.elapsed(), read.map_err(|e| e.kind()))
        })
        .await
        .unwrap();
        assert!(
            matches!(read, Ok(0) | Err(std::io::ErrorKind::ConnectionReset)),
            "{read:?}"
        );
        assert!(closed_after < Duration::from_secs(5), "{closed_after:?}");
    }

    // HTTP/2: the deadline covers the handshake and preface only; one
    // connection carries requests that outlast it.
    let client = t.client(false);
    for _ in 0..2 {
        let r = client
            .get(format!("{}/static/slow", t.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "slow answer");
    }
}

#[test]
fn a_tls_port_in_use_ends_the_start_naming_the_key() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let ca = Ca::new();
    let leaf = ca.issue(&["app.test"]);
    let dir = tempfile::tempdir().unwrap();
    let text = tls_config("127.0.0.1:9".parse().unwrap(), port, "")
        .replace("@LISTEN@", &format!("127.0.0.1:{}", free_port()))
        .replace("@ADMIN@", &format!("127.0.0.1:{}", free_port()));
    std::fs::write(dir.path().join("gatehouse.toml"), text).unwrap();
    std::fs::write(dir.path().join("users.toml"), common::users_toml()).unwrap();
    std::fs::write(dir.path().join("cert.pem"), ca.full_chain(&leaf)).unwrap();
    std::fs::write(dir.path().join("key.pem"), &leaf.key_pem).unwrap();
    let mut child = Command::new(common::binary())
        .arg("run")
        .arg("-c")
        .arg(dir.path().join("gatehouse.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway kept running with its TLS port taken");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot listen on 127.0.0.1:{port} (server.tls.listen): the address is already in use"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn an_h2_host_header_that_contradicts_the_authority_is_refused() {
    let upstream = Upstream::start();
    let t = TlsGateway::start(upstream.addr);
    let r = t
        .client(false)
        .get(format!("{}/static/x", t.base()))
        .header("Host", "other.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 400);
    assert_eq!(upstream.count(), 0);
    // Agreeing is fine, and the app hears the authority.
    let r = t
        .client(false)
        .get(format!("{}/static/x", t.base()))
        .header("Host", format!("app.test:{}", t.tls.port()))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 200, "{}", r.text().await.unwrap());
    assert_eq!(
        upstream.last().header_all("host"),
        vec![format!("app.test:{}", t.tls.port())]
    );
}

#[tokio::test]
async fn a_binary_upgrade_hands_the_tls_listener_over() {
    let upstream = Upstream::start();
    let mut t = TlsGateway::start(upstream.addr);
    let old_pid = t.gw.pid();
    t.gw.upgrade();
    assert_ne!(t.gw.pid(), old_pid);
    assert_eq!(t.presented("app.test").await, t.leaf.der);
    let mut b = t.browser(false);
    let r = b.login("alice", ALICE_PASSWORD, "/").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.version, reqwest::Version::HTTP_2);
}
