//! `[server.tls]`: the TLS listeners, their certificates and HSTS. The
//! certificates are read and checked here, so `check-config` and a reload
//! both refuse a chain that does not load or a key that does not belong to
//! it, naming the file.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::error::{ErrorSink, KeyPath};
use super::settings::TlsSettings;
use super::validate::relative_to;
use crate::tls::certs::{CertFiles, CertSet};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub listen: Option<Vec<String>>,
    /// The default certificate: the full chain, leaf first.
    pub cert: String,
    pub key: String,
    pub hsts: Option<String>,
    /// More certificates, chosen by SNI.
    #[serde(default, rename = "certificate")]
    pub certificates: Vec<CertSection>,
}

/// `[[server.tls.certificate]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertSection {
    pub cert: String,
    pub key: String,
}

/// `None` when something is wrong (said in `sink`).
pub(super) fn validate_tls(
    config: &Path,
    t: TlsSection,
    taken: &[(SocketAddr, &str)],
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> Option<TlsSettings> {
    let errors_before = sink.errors.len();
    let mut listen = Vec::new();
    let raw = t.listen.unwrap_or_default();
    if raw.is_empty() {
        sink.push(
            &key.key("listen"),
            "expected at least one address, like [\"0.0.0.0:443\"]",
        );
    }
    for (i, a) in raw.iter().enumerate() {
        match a.parse::<SocketAddr>() {
            Ok(addr) => match taken.iter().find(|(t, _)| *t == addr) {
                Some((_, other)) => sink.push(
                    &key.key("listen").index(i),
                    format!("{addr} is also in {other}: a port serves plain HTTP or TLS, not both"),
                ),
                None => listen.push(addr),
            },
            Err(_) => sink.push(
                &key.key("listen").index(i),
                format!("expected an IP address and port like \"0.0.0.0:443\", found {a:?}"),
            ),
        }
    }

    let hsts = match t
        .hsts
        .as_deref()
        .map(|h| humantime::parse_duration(h.trim()))
    {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            sink.push(
                &key.key("hsts"),
                "expected a duration like \"365d\" (\"0s\" tells browsers to forget an earlier one)",
            );
            None
        }
    };

    // Each pair is loaded on its own so every broken file is reported.
    let mut pairs = vec![(key.clone(), t.cert, t.key)];
    for (i, c) in t.certificates.into_iter().enumerate() {
        pairs.push((key.key("certificate").index(i), c.cert, c.key));
    }
    let mut loaded = Vec::new();
    for (at, cert, k) in pairs {
        let pair = CertFiles {
            cert: relative_to(config, &cert),
            key: relative_to(config, &k),
        };
        match crate::tls::certs::load_pair(&pair) {
            Ok(c) => loaded.push(c),
            Err(e) => {
                let field = if e.in_key { "key" } else { "cert" };
                sink.push(&at.key(field), e.to_string());
            }
        }
    }
    if sink.errors.len() > errors_before {
        return None;
    }
    CertSet::new(loaded).map(|certs| TlsSettings {
        listen,
        certs: Arc::new(certs),
        hsts,
    })
}

/// The `Strict-Transport-Security` value for `hsts`.
pub fn hsts_header(hsts: Duration) -> String {
    format!("max-age={}", hsts.as_secs())
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn config_with(dir: &std::path::Path, tls: &str) -> Result<crate::config::Settings, String> {
        let c = rcgen::generate_simple_self_signed(vec!["app.example".to_string()]).unwrap();
        std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("users.toml"), "").unwrap();
        let text = format!(
            "[server]\nlisten = [\"127.0.0.1:8080\"]\n\n[server.tls]\n{tls}\n\n[[route]]\npath_prefix = \"/\"\nupstream = \"127.0.0.1:9000\"\naccess = \"login\"\n\n[users]\nfile = \"users.toml\"\n"
        );
        let path = dir.join("gatehouse.toml");
        parse(&path, &text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_tls_section_is_read_with_its_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let s = config_with(
            dir.path(),
            "listen = [\"127.0.0.1:8443\"]\ncert = \"cert.pem\"\nkey = \"key.pem\"\nhsts = \"365d\"",
        )
        .unwrap();
        let tls = s.server.tls.unwrap();
        assert_eq!(tls.listen, vec!["127.0.0.1:8443".parse().unwrap()]);
        assert_eq!(tls.certs.len(), 1);
        assert_eq!(tls.hsts, Some(std::time::Duration::from_secs(365 * 86_400)));
        assert_eq!(super::hsts_header(tls.hsts.unwrap()), "max-age=31536000");
    }

    #[test]
    fn mistakes_name_the_key_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = config_with(
            dir.path(),
            "listen = [\"127.0.0.1:8080\", \"nowhere\"]\ncert = \"cert.pem\"\nkey = \"missing.pem\"\nhsts = \"a year\"",
        )
        .unwrap_err();
        let file = dir.path().join("gatehouse.toml").display().to_string();
        assert!(
            err.contains(&format!(
                "{file}:5: server.tls.listen[0]: 127.0.0.1:8080 is also in server.listen"
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "{file}:5: server.tls.listen[1]: expected an IP address and port"
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "{file}:8: server.tls.hsts: expected a duration like \"365d\""
            )),
            "{err}"
        );
        let key = dir.path().join("missing.pem").display().to_string();
        assert!(
            err.contains(&format!(
                "{file}:7: server.tls.key: {key}: cannot read the file"
            )),
            "{err}"
        );

        let err = config_with(dir.path(), "cert = \"cert.pem\"\nkey = \"key.pem\"").unwrap_err();
        assert!(
            err.contains("server.tls.listen: expected at least one address"),
            "{err}"
        );
        let err = config_with(dir.path(), "listen = [\"127.0.0.1:8443\"]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n[[server.tls.certificate]]\ncert = \"key.pem\"\nkey = \"key.pem\"").unwrap_err();
        assert!(err.contains("server.tls.certificate[0].cert: "), "{err}");
        assert!(err.contains("no certificate in the file"), "{err}");
    }
}
