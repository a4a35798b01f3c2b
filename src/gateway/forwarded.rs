//! X-Forwarded-For/Proto/Host. A peer inside `trusted_proxies` has its
//! values extended; anyone else's are replaced by what the gateway saw. Pure.

use std::net::IpAddr;

/// What the client sent, read before inbound forwarding headers are stripped.
#[derive(Debug, Default, Clone)]
pub struct Inbound<'a> {
    pub xff: Option<&'a str>,
    pub proto: Option<&'a str>,
    pub host: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub for_: String,
    pub proto: String,
    pub host: Option<String>,
}

pub fn is_trusted(peer: Option<IpAddr>, trusted: &[ipnet::IpNet]) -> bool {
    peer.is_some_and(|ip| trusted.iter().any(|net| net.contains(&ip)))
}

/// The client address the gateway believes: the peer, or for a trusted
/// proxy, the first untrusted address counting back through its XFF.
pub fn client_ip(
    peer: Option<IpAddr>,
    xff: Option<&str>,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let hops: Vec<IpAddr> = xff
        .unwrap_or("")
        .split(',')
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(Some(**ip), trusted))
        .copied()
        .or(peer)
}

pub fn forwarded(
    peer: Option<IpAddr>,
    trusted: &[ipnet::IpNet],
    inbound: &Inbound,
    scheme: &str,
    host: Option<&str>,
) -> Forwarded {
    let peer_text = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    if is_trusted(peer, trusted) {
        let for_ = match inbound.xff.map(str::trim).filter(|v| !v.is_empty()) {
            Some(prev) => format!("{prev}, {peer_text}"),
            None => peer_text,
        };
        Forwarded {
            for_,
            proto: inbound.proto.unwrap_or(scheme).to_string(),
            host: inbound.host.or(host).map(str::to_string),
        }
    } else {
        Forwarded {
            for_: peer_text,
            proto: scheme.to_string(),
            host: host.map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peers_cannot_forge_forwarding() {
        let inbound = Inbound {
            xff: Some("1.2.3.4"),
            proto: Some("https"),
            host: Some("evil.com"),
        };
        let peer = Some("203.0.113.9".parse().unwrap());
        let f = forwarded(
            peer,
            &nets(&["10.0.0.0/8"]),
            &inbound,
            "http",
            Some("app.local"),
        );
        assert_eq!(f.for_, "203.0.113.9");
        assert_eq!(f.proto, "http");
        assert_eq!(f.host.as_deref(), Some("app.local"));
        assert_eq!(client_ip(peer, inbound.xff, &nets(&["10.0.0.0/8"])), peer);
    }

    #[test]
    fn trusted_proxies_are_extended() {
        let inbound = Inbound {
            xff: Some("198.51.100.7, 10.0.0.3"),
            proto: Some("https"),
            host: Some("app.example.com"),
        };
        let peer = Some("10.0.0.2".parse().unwrap());
        let trusted = nets(&["10.0.0.0/8"]);
        let f = forwarded(peer, &trusted, &inbound, "http", Some("internal"));
        assert_eq!(f.for_, "198.51.100.7, 10.0.0.3, 10.0.0.2");
        assert_eq!(f.proto, "https");
        assert_eq!(f.host.as_deref(), Some("app.example.com"));
        assert_eq!(
            client_ip(peer, inbound.xff, &trusted),
            Some("198.51.100.7".parse().unwrap())
        );
    }
}
