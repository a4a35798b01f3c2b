//! Which upstream a request goes to, and how the gateway connects to it.
//!
//! A route's upstreams take turns; one the health checks (or a failed
//! connection) found dead is skipped until it answers again; when every one
//! is dead they are all tried anyway (a check can be wrong, and the answer
//! would be a 502 either way). A request whose connection fails is tried on
//! the next upstream it has not tried yet: no byte of it was sent, so any
//! method may be retried. The connection settings of every upstream
//! (`upstream_tls`, its CA and name, the timeouts) are worked out once per
//! snapshot, in `RoutePeers`.
//!
//! Never connects to an `upstream_tls` route without verifying the
//! certificate, and never falls back to plain HTTP.

use pingora::protocols::tls::CaType;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{parse_x509, WrappedX509};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use super::state::Shared;
use super::upstream_health::unreachable;
use super::RequestCtx;
use crate::config::{Route, UpstreamCa};

/// The peers of every route of one snapshot: `[route][upstream]`.
#[derive(Default)]
pub struct RoutePeers(Vec<Vec<HttpPeer>>);

impl RoutePeers {
    pub fn new(routes: &[Route]) -> Self {
        RoutePeers(routes.iter().map(route_peers).collect())
    }

    pub fn get(&self, route: usize, upstream: usize) -> Option<&HttpPeer> {
        self.0.get(route)?.get(upstream)
    }
}

fn route_peers(route: &Route) -> Vec<HttpPeer> {
    let o = &route.upstream_options;
    let ca = o
        .tls
        .as_ref()
        .and_then(|t| t.ca.as_ref())
        .map(|ca| (trust_anchors(ca), fingerprint(ca)));
    route
        .upstreams
        .iter()
        .enumerate()
        .map(|(i, &addr)| {
            let (tls, sni) = match &o.tls {
                // Never empty: Pingora skips verification without a name.
                Some(t) => (true, t.sni.clone().unwrap_or_else(|| o.host_name(i, addr))),
                None => (false, String::new()),
            };
            let mut peer = HttpPeer::new(addr, tls, sni);
            // Both bound the TCP connect and the TLS handshake together.
            peer.options.connection_timeout = Some(o.connect_timeout);
            peer.options.total_connection_timeout = Some(o.connect_timeout);
            peer.options.read_timeout = Some(o.read_timeout);
            if let Some((anchors, key)) = &ca {
                peer.options.ca = Some(Arc::clone(anchors));
                // Pooled connections are shared by peers of equal hash, and
                // the CA is not part of it: a connection verified against
                // another route's CA must not be reused here.
                peer.group_key = *key;
            }
            peer
        })
        .collect()
}

fn fingerprint(ca: &UpstreamCa) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ca.certs.hash(&mut h);
    h.finish()
}

/// The CA certificates as Pingora wants them. Validation has checked them
/// (`check_ca`); should one fail anyway the list is short of it, and an
/// empty list fails every handshake: never a fallback to the system roots.
fn trust_anchors(ca: &UpstreamCa) -> Arc<CaType> {
    ca.certs
        .iter()
        .filter_map(|der| wrap(der).ok())
        .collect::<Vec<_>>()
        .into()
}

/// Pingora's certificate parser panics on what it cannot read; config
/// validation calls this first, so a bad CA file is an error, not a crash.
fn wrap(der: &[u8]) -> Result<WrappedX509, ()> {
    let raw = der.to_vec();
    std::panic::catch_unwind(move || WrappedX509::new(raw, parse_x509)).map_err(|_| ())
}

/// Whether every certificate of an `upstream_ca` file can be a trust
/// anchor (for config validation).
pub fn check_ca(certs: &[Vec<u8>]) -> Result<(), String> {
    let mut store = pingora::tls::RootCertStore::empty();
    for (n, der) in certs.iter().enumerate() {
        let which = n + 1;
        store
            .add(pingora::tls::CertificateDer::from(der.clone()))
            .map_err(|e| format!("certificate {which} cannot be a trust anchor: {e}"))?;
        wrap(der)
            .map_err(|_| format!("certificate {which} is not a readable X.509 certificate"))?;
    }
    Ok(())
}

/// Index of the upstream to try: among those `up` and not yet `tried`
/// (bit i = upstream i), the `turn`-th in rotation; when none is up, any
/// not tried; when all were tried (Pingora retrying a reused connection),
/// any. `None` only for an empty list.
pub fn choose(
    upstreams: &[SocketAddr],
    tried: u64,
    turn: usize,
    up: impl Fn(SocketAddr) -> bool,
) -> Option<usize> {
    let untried = |i: usize| i >= 64 || tried & (1u64 << i) == 0;
    let tiers: [&dyn Fn(usize, SocketAddr) -> bool; 3] =
        [&|i, a| untried(i) && up(a), &|i, _| untried(i), &|_, _| {
            true
        }];
    for tier in tiers {
        let count = upstreams
            .iter()
            .enumerate()
            .filter(|(i, a)| tier(*i, **a))
            .count();
        if count > 0 {
            return upstreams
                .iter()
                .enumerate()
                .filter(|(i, a)| tier(*i, **a))
                .nth(turn % count)
                .map(|(i, _)| i);
        }
    }
    None
}

/// `upstream_peer`: the peer for this request's route.
pub fn select(shared: &Shared, ctx: &mut RequestCtx) -> pingora::Result<Box<HttpPeer>> {
    let no_upstream =
        || pingora::Error::explain(pingora::ErrorType::InternalError, "no upstream for request");
    let route_index = ctx.route.ok_or_else(no_upstream)?;
    let route = ctx
        .snapshot
        .settings
        .routes
        .get(route_index)
        .ok_or_else(no_upstream)?;
    let health = &shared.upstream_health;
    let i = choose(
        &route.upstreams,
        ctx.upstreams_tried,
        shared.next_upstream(),
        |a| health.is_up(a),
    )
    .ok_or_else(no_upstream)?;
    let peer = ctx
        .snapshot
        .peers
        .get(route_index, i)
        .ok_or_else(no_upstream)?;
    if i < 64 {
        ctx.upstreams_tried |= 1 << i;
    }
    ctx.upstream = route.upstreams.get(i).copied();
    Ok(Box::new(peer.clone()))
}

/// `fail_to_connect`: the upstream is marked dead, and the request is
/// retried on another one when the route has one it has not tried.
pub fn connect_failed(
    shared: &Shared,
    ctx: &RequestCtx,
    mut e: Box<pingora::Error>,
) -> Box<pingora::Error> {
    let count = ctx
        .route
        .and_then(|r| ctx.snapshot.settings.routes.get(r))
        .map_or(0, |r| r.upstreams.len().min(64));
    let all = if count == 64 {
        u64::MAX
    } else {
        (1u64 << count) - 1
    };
    let another = ctx.upstreams_tried & all != all;
    if let (Some(addr), true) = (ctx.upstream, another && unreachable(&e)) {
        // Only when retried: a refused request is counted by fail_to_proxy.
        shared.upstream_health.connect_failed(addr, &e);
        e.set_retry(true);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (1..=n)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect()
    }

    #[test]
    fn live_upstreams_take_turns() {
        let a = addrs(3);
        let picks: Vec<_> = (0..6).map(|t| choose(&a, 0, t, |_| true)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2].map(Some));
    }

    #[test]
    fn a_dead_upstream_is_skipped() {
        let a = addrs(3);
        let dead = a[1];
        for t in 0..10 {
            assert_ne!(choose(&a, 0, t, |x| x != dead), Some(1));
        }
    }

    #[test]
    fn when_all_are_dead_all_are_tried() {
        let a = addrs(2);
        let picks: Vec<_> = (0..4).map(|t| choose(&a, 0, t, |_| false)).collect();
        assert_eq!(picks, [0, 1, 0, 1].map(Some));
    }

    #[test]
    fn a_retry_goes_to_an_upstream_not_yet_tried() {
        let a = addrs(3);
        for t in 0..10 {
            let pick = choose(&a, 0b001, t, |_| true);
            assert!(matches!(pick, Some(1 | 2)), "{pick:?}");
            // the untried one even though the health checks call it dead
            assert_eq!(choose(&a, 0b011, t, |x| x == a[0]), Some(2));
        }
        // all tried: Pingora retrying a reused connection still gets one
        assert!(choose(&a, 0b111, 0, |_| true).is_some());
        assert_eq!(choose(&addrs(1), 0b1, 5, |_| true), Some(0));
        assert_eq!(choose(&[], 0, 0, |_| true), None);
    }
}
