//! The `[[route]]` keys about reaching the upstream: TLS to it
//! (`upstream_tls`, `upstream_ca`, `upstream_sni`), how long to wait
//! (`connect_timeout`, `read_timeout`) and the health checks of a list of
//! upstreams (`health_path`, `health_interval`). Validated here, once; the
//! CA file is read here and never again (a reload reads it anew).
//!
//! Never turns a TLS mistake into plain HTTP: `upstream_ca` or
//! `upstream_sni` without `upstream_tls = true` is an error, not ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::error::{ErrorSink, KeyPath};
use super::file::RouteSection;
use super::validate::{duration_or, relative_to};

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// A route lists at most this many upstreams (a request remembers which it
/// tried in one 64-bit word).
pub const MAX_UPSTREAMS: usize = 64;

/// How a route reaches its upstreams.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamOptions {
    /// Each upstream as written in the file (`"app.internal:8443"`), in the
    /// order of `Route::upstreams`: its host is the name its certificate
    /// must carry.
    pub written: Vec<String>,
    /// `None`: plain HTTP.
    pub tls: Option<UpstreamTls>,
    /// Connecting (TCP, and the TLS handshake) may take this long; then 502.
    pub connect_timeout: Duration,
    /// The upstream may stay silent this long while the gateway waits for
    /// its answer (or the next piece of it); then 504.
    pub read_timeout: Duration,
    /// Used when the route lists several upstreams.
    pub health: HealthCheck,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            written: vec![],
            tls: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            health: HealthCheck::default(),
        }
    }
}

impl UpstreamOptions {
    /// The name upstream `index` is reached by: its host as written, or the
    /// address when the route was built without names (the demo).
    pub fn host_name(&self, index: usize, addr: std::net::SocketAddr) -> String {
        match self.written.get(index) {
            Some(w) => host_part(w).to_string(),
            None => addr.ip().to_string(),
        }
    }
}

/// `upstream_tls = true`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamTls {
    /// `upstream_sni`: the name sent and verified instead of each
    /// upstream's host.
    pub sni: Option<String>,
    /// `upstream_ca`: trust only these; `None` trusts the system's roots.
    pub ca: Option<UpstreamCa>,
}

/// The certificates of `upstream_ca`, read and checked at load.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamCa {
    pub file: PathBuf,
    /// DER, in file order.
    pub certs: Arc<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for UpstreamCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCa")
            .field("file", &self.file)
            .field("certs", &self.certs.len())
            .finish()
    }
}

/// How a list of upstreams is checked: a TCP connection (and the TLS
/// handshake with `upstream_tls`), or with `path` a `GET` answered 2xx/3xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub path: Option<String>,
    pub interval: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: None,
            interval: DEFAULT_HEALTH_INTERVAL,
        }
    }
}

/// `"app.internal:8443"` → `"app.internal"`, `"[::1]:8443"` → `"::1"`.
pub fn host_part(written: &str) -> &str {
    let w = written.trim();
    if let Some(rest) = w.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    w.rsplit_once(':').map_or(w, |(host, _)| host)
}

/// A name a certificate can be issued for: an IP address or DNS labels.
fn certificate_name(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || (!name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }))
}

/// Validates the route's upstream keys; `written` are its upstreams as
/// written (empty for a forward-auth-only route).
pub(super) fn validate(
    config: &Path,
    r: &RouteSection,
    written: &[String],
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> UpstreamOptions {
    if written.is_empty() {
        // Forward auth only: nothing is ever sent upstream.
        for (name, set) in [
            ("upstream_tls", r.upstream_tls.is_some()),
            ("upstream_ca", r.upstream_ca.is_some()),
            ("upstream_sni", r.upstream_sni.is_some()),
            ("connect_timeout", r.connect_timeout.is_some()),
            ("read_timeout", r.read_timeout.is_some()),
            ("health_path", r.health_path.is_some()),
            ("health_interval", r.health_interval.is_some()),
        ] {
            if set {
                sink.push(
                    &key.key(name),
                    "only used with `upstream`: this route has none",
                );
            }
        }
    }
    if written.len() > MAX_UPSTREAMS {
        sink.push(
            &key.key("upstream"),
            format!("expected at most {MAX_UPSTREAMS} upstreams"),
        );
    }
    let connect_timeout = duration_or(
        sink,
        &key.key("connect_timeout"),
        r.connect_timeout.clone(),
        DEFAULT_CONNECT_TIMEOUT.as_secs(),
    );
    let read_timeout = duration_or(
        sink,
        &key.key("read_timeout"),
        r.read_timeout.clone(),
        DEFAULT_READ_TIMEOUT.as_secs(),
    );
    let tls = validate_tls(config, r, written, key, sink);
    let health = validate_health(r, written, key, sink);
    UpstreamOptions {
        written: written.to_vec(),
        tls,
        connect_timeout,
        read_timeout,
        health,
    }
}

fn validate_tls(
    config: &Path,
    r: &RouteSection,
    written: &[String],
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> Option<UpstreamTls> {
    if r.upstream_tls != Some(true) {
        for (name, set) in [
            ("upstream_ca", r.upstream_ca.is_some()),
            ("upstream_sni", r.upstream_sni.is_some()),
        ] {
            if set {
                sink.push(
                    &key.key(name),
                    "only used with upstream_tls = true (the upstream is reached over plain HTTP otherwise)",
                );
            }
        }
        return None;
    }
    let sni = r
        .upstream_sni
        .as_ref()
        .map(|s| s.trim().to_ascii_lowercase());
    match &sni {
        Some(name) if !certificate_name(name) => sink.push(
            &key.key("upstream_sni"),
            format!("expected a host name like \"app.internal\", found {name:?}"),
        ),
        Some(_) => {}
        None => {
            for (i, w) in written.iter().enumerate() {
                if !certificate_name(host_part(w)) {
                    let k = if written.len() == 1 {
                        key.key("upstream")
                    } else {
                        key.key("upstream").index(i)
                    };
                    sink.push(
                        &k,
                        format!("{:?} cannot be checked against a certificate: set upstream_sni to the name the upstream's certificate carries", host_part(w)),
                    );
                }
            }
        }
    }
    let ca = r.upstream_ca.as_deref().and_then(|f| {
        let file = relative_to(config, f);
        match read_ca(&file) {
            Ok(certs) => Some(UpstreamCa {
                file,
                certs: Arc::new(certs),
            }),
            Err(msg) => {
                sink.push(
                    &key.key("upstream_ca"),
                    format!("{}: {msg}", file.display()),
                );
                None
            }
        }
    });
    Some(UpstreamTls { sni, ca })
}

fn validate_health(
    r: &RouteSection,
    written: &[String],
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> HealthCheck {
    if written.len() == 1 {
        for (name, set) in [
            ("health_path", r.health_path.is_some()),
            ("health_interval", r.health_interval.is_some()),
        ] {
            if set {
                sink.push(
                    &key.key(name),
                    "health checks choose among several upstreams and this route has one: list more in `upstream`, or remove this key",
                );
            }
        }
    }
    let path = r.health_path.clone();
    if let Some(p) = &path {
        let ok = p.starts_with('/')
            && p.parse::<http::uri::PathAndQuery>().is_ok()
            && !p.bytes().any(|b| b.is_ascii_control() || b == b' ');
        if !ok {
            sink.push(
                &key.key("health_path"),
                format!("expected a path like \"/healthz\", found {p:?}"),
            );
        }
    }
    let interval_key = key.key("health_interval");
    let interval = match &r.health_interval {
        None => DEFAULT_HEALTH_INTERVAL,
        Some(text) => match super::parse_duration(text) {
            Ok(d) if (Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&d) => d,
            Ok(_) => {
                sink.push(
                    &interval_key,
                    "expected a duration from \"100ms\" to \"1h\"",
                );
                DEFAULT_HEALTH_INTERVAL
            }
            Err(msg) => {
                sink.push(&interval_key, msg);
                DEFAULT_HEALTH_INTERVAL
            }
        },
    };
    HealthCheck { path, interval }
}

/// The certificates of a PEM file, each checked as a trust anchor.
fn read_ca(file: &Path) -> Result<Vec<Vec<u8>>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read it: {e}"))?;
    let certs = pem_certificates(&text)?;
    if certs.is_empty() {
        return Err("expected PEM certificates (-----BEGIN CERTIFICATE-----), found none".into());
    }
    crate::gateway::upstream_peer::check_ca(&certs)?;
    Ok(certs)
}

/// The DER of every `CERTIFICATE` block of a PEM text (other blocks, such
/// as a key left in the file by mistake, are refused: a CA file holds
/// certificates only).
fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let mut certs = Vec::new();
    let mut open: Option<(String, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if label != "CERTIFICATE" {
                return Err(format!(
                    "line {}: expected only certificates, found a {label} block",
                    n + 1
                ));
            }
            open = Some((label.to_string(), String::new()));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            match open.take() {
                Some((begun, body)) if begun == label => {
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(body.as_bytes())
                        .map_err(|_| {
                            format!("line {}: the certificate is not valid base64", n + 1)
                        })?;
                    certs.push(der);
                }
                _ => return Err(format!("line {}: an END without its BEGIN", n + 1)),
            }
        } else if let Some((_, body)) = open.as_mut() {
            body.push_str(line);
        }
    }
    if open.is_some() {
        return Err("a certificate is not closed (-----END CERTIFICATE----- missing)".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_what_precedes_the_port() {
        assert_eq!(host_part("app.internal:8443"), "app.internal");
        assert_eq!(host_part("10.0.0.1:443"), "10.0.0.1");
        assert_eq!(host_part("[::1]:8443"), "::1");
        assert_eq!(host_part("localhost"), "localhost");
    }

    #[test]
    fn certificate_names_are_ip_addresses_or_dns_labels() {
        assert!(certificate_name("app.internal"));
        assert!(certificate_name("127.0.0.1"));
        assert!(certificate_name("::1"));
        assert!(!certificate_name("app..internal"));
        assert!(!certificate_name("app internal"));
        assert!(!certificate_name(""));
    }

    #[test]
    fn pem_blocks_are_decoded_in_order_and_keys_refused() {
        let text =
            "junk before\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_certificates(text).unwrap(),
            vec![vec![0, 1, 2, 3], vec![4, 5]]
        );
        assert!(
            pem_certificates("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n")
                .unwrap_err()
                .contains("PRIVATE KEY")
        );
        assert!(
            pem_certificates("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n")
                .unwrap_err()
                .contains("base64")
        );
        assert!(pem_certificates("-----BEGIN CERTIFICATE-----\nAA==\n")
            .unwrap_err()
            .contains("not closed"));
        assert!(pem_certificates("nothing here").unwrap().is_empty());
    }
}
