//! The TLS handshake of a connection the gateway accepted on a TLS
//! listener. It runs inside the connection's guard (`head_guard`), not in
//! Pingora's listener, so the handshake counts against
//! `server.request_header_timeout` like the request head after it: a
//! client that opens a connection and then dawdles over the handshake is
//! cut off as one that dawdles over its head (Pingora alone would wait
//! 60 s). TLS 1.2 and 1.3 with rustls' default cipher suites; ALPN offers
//! HTTP/2 and HTTP/1.1. Never logs key material.

use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::Stream;
use std::sync::Arc;
use tokio::time::Instant;

use super::resolver::CertResolver;
use crate::metrics::{CutOff, METRICS};

pub struct TlsHandshake {
    acceptor: Acceptor,
}

impl TlsHandshake {
    pub fn new(resolver: Arc<CertResolver>) -> Result<Self, String> {
        pingora::tls::install_default_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .ok_or("no TLS crypto provider is available in this build")?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS settings: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        // Browsers get HTTP/2; clients that offer only http/1.1 (or no ALPN
        // at all) get HTTP/1.1.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsHandshake {
            acceptor: Acceptor::from_server_config(Arc::new(config)),
        })
    }

    /// The connection over TLS, or `None` (closed) when the handshake
    /// fails or is not done by `deadline`.
    pub async fn accept(&self, stream: Stream, deadline: Instant) -> Option<Stream> {
        // The gateway's listeners are plain TCP; TLS is layered here.
        let tcp = match stream.into_any().downcast::<L4Stream>() {
            Ok(tcp) => tcp,
            Err(_) => {
                tracing::error!("a TLS listener accepted something other than a TCP connection");
                return None;
            }
        };
        match tokio::time::timeout_at(deadline, self.acceptor.tls_handshake(*tcp)).await {
            Ok(Ok(tls)) => Some(Box::new(tls)),
            // Scanners, clients that refuse the certificate, plain HTTP sent
            // to the TLS port: the client's business, said at debug.
            Ok(Err(e)) => {
                tracing::debug!("TLS handshake failed: {e}");
                None
            }
            Err(_) => {
                METRICS.cut_off(CutOff::HeadTimeout);
                tracing::debug!("TLS handshake not complete within server.request_header_timeout");
                None
            }
        }
    }
}
