//! Active health checks of the routes that list several upstreams. Every
//! `health_interval` each upstream gets a TCP connection (with the TLS
//! handshake, verified, for `upstream_tls`) or, with `health_path`, a
//! `GET` that must be answered 2xx or 3xx; either must succeed within the
//! interval. One failure marks the upstream down, one success up again
//! (`UpstreamHealth`, which also writes the outage lines). The routes are
//! read from the current snapshot at every round, so a reload's upstreams
//! are checked from the next one.
//!
//! Written here rather than with `pingora-load-balancing`: its balancers
//! and their background services are fixed when the server starts, while
//! our upstream lists change on SIGHUP. The checks connect with Pingora's
//! own connectors and the route's peers, so TLS, CA and timeouts are those
//! of the proxied requests.
//!
//! Never sends anything of a client's: a check is the gateway's own bare
//! request, with no cookie and no identity header.

use async_trait::async_trait;
use pingora::connectors::http::Connector as HttpConnector;
use pingora::connectors::TransportConnector;
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::upstreams::peer::HttpPeer;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::state::{Shared, Snapshot};
use super::upstream_health::cause_of;

/// How often the routes are looked at again when nothing is due (a
/// reload may have added upstreams to check).
const IDLE: Duration = Duration::from_secs(1);

pub struct HealthChecker {
    shared: Arc<Shared>,
}

impl HealthChecker {
    pub fn new(shared: Arc<Shared>) -> Self {
        HealthChecker { shared }
    }
}

/// One upstream to check, with the settings of the first (most specific)
/// route that lists it.
struct Target {
    addr: SocketAddr,
    peer: HttpPeer,
    path: Option<String>,
    /// The `Host` of an HTTP check: the route's host (an app may refuse
    /// other names), else the upstream as written.
    host: String,
    interval: Duration,
}

fn targets(snap: &Snapshot) -> Vec<Target> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (r, route) in snap.settings.routes.iter().enumerate() {
        if route.upstreams.len() < 2 {
            continue;
        }
        let o = &route.upstream_options;
        for (i, &addr) in route.upstreams.iter().enumerate() {
            let Some(peer) = snap.peers.get(r, i) else {
                continue;
            };
            if !seen.insert(addr) {
                continue;
            }
            let host = route
                .host
                .clone()
                .or_else(|| o.written.get(i).cloned())
                .unwrap_or_else(|| addr.to_string());
            out.push(Target {
                addr,
                peer: peer.clone(),
                path: o.health.path.clone(),
                host,
                interval: o.health.interval,
            });
        }
    }
    out
}

/// The connectors the checks use, apart from the proxy's so that a check
/// never gets a pooled connection: it must open one to prove anything.
struct Probes {
    tcp: TransportConnector,
    http: HttpConnector,
}

impl Probes {
    async fn run(&self, t: &Target) -> Result<(), String> {
        match &t.path {
            None => self
                .tcp
                .new_stream(&t.peer)
                .await
                .map(drop)
                .map_err(|e| cause_of(&e)),
            Some(path) => self.get(t, path).await,
        }
    }

    async fn get(&self, t: &Target, path: &str) -> Result<(), String> {
        let (mut session, _) = self
            .http
            .get_http_session(&t.peer)
            .await
            .map_err(|e| cause_of(&e))?;
        let mut req =
            RequestHeader::build("GET", path.as_bytes(), None).map_err(|e| cause_of(&e))?;
        for (name, value) in [
            ("Host", t.host.as_str()),
            ("User-Agent", "gatehouse-health-check"),
            ("Connection", "close"),
        ] {
            req.insert_header(name, value).map_err(|e| cause_of(&e))?;
        }
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(|e| cause_of(&e))?;
        session
            .finish_request_body()
            .await
            .map_err(|e| cause_of(&e))?;
        session
            .read_response_header()
            .await
            .map_err(|e| cause_of(&e))?;
        let status = session.response_header().map_or(0, |h| h.status.as_u16());
        session.shutdown().await;
        if (200..400).contains(&status) {
            Ok(())
        } else {
            Err(format!("health check GET {path} answered {status}"))
        }
    }
}

async fn check(shared: Arc<Shared>, probes: Arc<Probes>, t: Target) {
    let result = match tokio::time::timeout(t.interval, probes.run(&t)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer to the health check within {}",
            humantime::format_duration(t.interval)
        )),
    };
    match result {
        Ok(()) => shared.upstream_health.answered(t.addr),
        Err(cause) => shared.upstream_health.check_failed(t.addr, &cause),
    }
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let probes = Arc::new(Probes {
            tcp: TransportConnector::new(None),
            http: HttpConnector::new(None),
        });
        let mut due: HashMap<SocketAddr, Instant> = HashMap::new();
        loop {
            let targets = targets(&self.shared.snapshot.load());
            let now = Instant::now();
            due.retain(|addr, _| targets.iter().any(|t| t.addr == *addr));
            let mut wake = now + IDLE;
            for t in targets {
                let next = due.entry(t.addr).or_insert(now);
                if *next <= now {
                    *next = now + t.interval;
                    // A check ends within its interval, so two checks of
                    // one upstream never overlap.
                    tokio::spawn(check(Arc::clone(&self.shared), Arc::clone(&probes), t));
                }
                wake = wake.min(*next);
            }
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
