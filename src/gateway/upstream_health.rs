//! Upstreams that cannot be reached, as outages: one ERROR when an upstream
//! stops taking connections, one WARN with the outage's length and the
//! requests answered 502 when it answers again, instead of Pingora's error
//! line for every request (suppressed for these errors only; every other
//! proxy error is still logged by Pingora).
//!
//! The same outages are the health state routing reads (`is_up`): an
//! upstream is down from a failed connection or health check until a
//! request or a health check gets an answer from it. Never holds its lock
//! across an await, and costs one atomic load per request while every
//! upstream is up.

use parking_lot::Mutex;
use pingora::{Error, ErrorSource, ErrorType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::outage::{Outage, Refused};

/// A connection attempt that failed before the outage ended ends soon
/// after it: within this, it belongs to the outage that ended.
const SETTLE: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct UpstreamHealth {
    outages: Mutex<HashMap<SocketAddr, Arc<Outage>>>,
    /// Whether any upstream is down: while none is, an answer costs one
    /// atomic load. Changed only under the lock, with the outages.
    any_down: AtomicBool,
}

impl UpstreamHealth {
    /// A request to `addr` failed with `e`; true when `e` says the upstream
    /// could not be reached (then the outage's lines cover it).
    pub fn failed(&self, addr: SocketAddr, e: &Error) -> bool {
        if !unreachable(e) {
            return false;
        }
        self.down(addr, Some(Refused::Request), &cause_of(e));
        true
    }

    /// A connection to `addr` failed and the request went on to another
    /// upstream: not a refused request, but the upstream is down.
    pub fn connect_failed(&self, addr: SocketAddr, e: &Error) {
        self.down(addr, None, &cause_of(e));
    }

    /// A health check of `addr` failed.
    pub fn check_failed(&self, addr: SocketAddr, cause: &str) {
        self.down(addr, None, &cause);
    }

    fn down(&self, addr: SocketAddr, refused: Option<Refused>, cause: &dyn std::fmt::Display) {
        let mut outages = self.outages.lock();
        let outage = outages
            .entry(addr)
            .or_insert_with(|| Arc::new(Outage::new(format!("upstream {addr}"), SETTLE)));
        match refused {
            Some(what) => outage.refused(what, cause),
            None => outage.failed(cause),
        }
        self.any_down.store(true, Ordering::Release);
    }

    /// Whether `addr` should be given requests: not known to be down.
    pub fn is_up(&self, addr: SocketAddr) -> bool {
        if !self.any_down.load(Ordering::Acquire) {
            return true;
        }
        self.outages
            .lock()
            .get(&addr)
            .is_none_or(|outage| !outage.is_down())
    }

    /// `gatehouse_upstream_up` for every upstream of `routes`.
    pub fn render_metrics(&self, out: &mut String, routes: &[crate::config::Route]) {
        use std::fmt::Write as _;
        let mut addrs: Vec<SocketAddr> = routes
            .iter()
            .flat_map(|r| r.upstreams.iter().copied())
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        let _ = writeln!(
            out,
            "# HELP gatehouse_upstream_up Whether the gateway sends requests to an upstream (0 after a failed connection or health check, until it answers again).\n\
             # TYPE gatehouse_upstream_up gauge"
        );
        for addr in addrs {
            let _ = writeln!(
                out,
                "gatehouse_upstream_up{{upstream=\"{addr}\"}} {}",
                u8::from(self.is_up(addr))
            );
        }
    }

    /// `addr` answered a request or a health check.
    pub fn answered(&self, addr: SocketAddr) {
        if !self.any_down.load(Ordering::Acquire) {
            return;
        }
        let outages = self.outages.lock();
        if let Some(outage) = outages.get(&addr) {
            outage.succeeded();
        }
        let still = outages.values().any(|o| o.is_down());
        self.any_down.store(still, Ordering::Release);
    }
}

/// "ConnectRefused: Connection refused (os error 111)", without Pingora's
/// chain of contexts.
pub fn cause_of(e: &Error) -> String {
    format!("{}: {}", e.etype().as_str(), e.root_cause())
}

/// Whether `e` means no connection to the upstream could be made (as
/// opposed to a request that failed on a working connection).
pub fn unreachable(e: &Error) -> bool {
    *e.esource() == ErrorSource::Upstream
        && matches!(
            e.etype(),
            ErrorType::ConnectTimedout
                | ErrorType::ConnectRefused
                | ErrorType::ConnectNoRoute
                | ErrorType::ConnectError
                | ErrorType::SocketError
                | ErrorType::TLSHandshakeFailure
                | ErrorType::TLSHandshakeTimedout
                | ErrorType::HandshakeError
                | ErrorType::InvalidCert
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream_error(etype: ErrorType) -> Box<Error> {
        Error::new_up(etype)
    }

    #[test]
    fn only_failures_to_connect_make_an_outage() {
        let h = UpstreamHealth::default();
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(!h.failed(addr, &upstream_error(ErrorType::ReadTimedout)));
        assert!(!h.any_down.load(Ordering::Acquire));
        assert!(!h.failed(addr, &Error::new_down(ErrorType::ConnectRefused)));
        assert!(h.failed(addr, &upstream_error(ErrorType::ConnectRefused)));
        assert!(h.any_down.load(Ordering::Acquire));
    }

    #[test]
    fn an_answer_ends_only_its_own_upstreams_outage() {
        let h = UpstreamHealth::default();
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        h.failed(a, &upstream_error(ErrorType::ConnectRefused));
        h.failed(b, &upstream_error(ErrorType::ConnectTimedout));
        h.answered(a);
        assert!(h.any_down.load(Ordering::Acquire), "b is still down");
        h.answered(b);
        assert!(!h.any_down.load(Ordering::Acquire));
    }
}
