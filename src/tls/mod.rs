//! TLS on the gateway's own listeners (`[server.tls]`): certificates read
//! from PEM files, chosen by SNI and swapped on SIGHUP without a new
//! listener; the handshake done under the slow-client guard; HTTP/2 offered
//! by ALPN. The backend is rustls through Pingora: pure Rust (no C
//! toolchain to build), and a certificate resolver gives both SNI and
//! reload. Never logs key material.

pub mod certs;
pub mod handshake;
pub mod resolver;

use std::sync::Arc;

use crate::config::TlsSettings;
use handshake::TlsHandshake;
use resolver::CertResolver;

/// The TLS listeners' state shared with every request: the certificates
/// in force, the handshake, and where plain listeners send browsers.
pub struct Edge {
    pub resolver: Arc<CertResolver>,
    pub handshake: Arc<TlsHandshake>,
    /// The port of the first TLS listener (the `https://` URL leaves it
    /// out when it is 443).
    pub https_port: u16,
}

impl Edge {
    pub fn new(tls: &TlsSettings) -> Result<Edge, String> {
        let resolver = Arc::new(CertResolver::new(Arc::clone(&tls.certs)));
        let handshake = Arc::new(TlsHandshake::new(Arc::clone(&resolver))?);
        let https_port = tls.listen.first().map_or(443, |a| a.port());
        Ok(Edge {
            resolver,
            handshake,
            https_port,
        })
    }

    /// A reload was accepted: its certificates (already read and checked
    /// by validation) serve new handshakes. A config that dropped
    /// `[server.tls]` keeps the running listeners on the old ones until a
    /// restart.
    pub fn reloaded(&self, new: Option<&TlsSettings>) {
        if let Some(tls) = new {
            self.resolver.swap(Arc::clone(&tls.certs));
        }
    }
}

/// What a reload changed in `[server.tls]`, for the reload line.
pub fn describe_changes(
    old: Option<&TlsSettings>,
    new: Option<&TlsSettings>,
    out: &mut Vec<String>,
) {
    if let (Some(a), Some(b)) = (old, new) {
        if a.certs.leaves() != b.certs.leaves() {
            out.push(format!(
                "server.tls certificates ({} → {})",
                a.certs.len(),
                b.certs.len()
            ));
        }
        if a.hsts != b.hsts {
            out.push("server.tls.hsts".into());
        }
    }
}

/// `[server.tls]` keys only a restart changes.
pub fn needs_restart(old: Option<&TlsSettings>, new: Option<&TlsSettings>) -> Option<&'static str> {
    match (old, new) {
        (None, None) => None,
        (Some(a), Some(b)) if a.listen == b.listen => None,
        _ => Some("server.tls.listen"),
    }
}
