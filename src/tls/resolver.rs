//! The certificate a handshake presents: chosen by SNI from the set in
//! force, which a reload swaps whole. A handshake under way keeps the set
//! it started with; nothing here blocks or reads a file.

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

use super::certs::CertSet;

#[derive(Debug)]
pub struct CertResolver {
    certs: ArcSwap<CertSet>,
}

impl CertResolver {
    pub fn new(certs: Arc<CertSet>) -> Self {
        CertResolver {
            certs: ArcSwap::new(certs),
        }
    }

    /// New handshakes present these from now on; open connections keep
    /// the certificate they were accepted with.
    pub fn swap(&self, certs: Arc<CertSet>) {
        self.certs.store(certs);
    }

    pub fn current(&self) -> Arc<CertSet> {
        self.certs.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certs.load().choose(hello.server_name()).cloned()
    }
}
