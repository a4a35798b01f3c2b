//! Which `Host` the admin listener answers. A web page can make a browser
//! talk to 127.0.0.1 under the page's own name (DNS rebinding: the name
//! resolves to the attacker's server, then to 127.0.0.1), and the browser
//! then treats the admin listener as that page's own origin. The browser
//! still sends the page's name as `Host`, so answering only loopback names,
//! the listener's own address and names the operator listed closes that
//! door. Pure: plain values in, a decision out.

use std::net::{IpAddr, SocketAddr};

use crate::gateway::normalize::normalize_host;

/// Whether a request with this `Host` (or absolute-form authority) may be
/// answered. `configured` holds `server.admin_hosts` as `normalize_host`
/// writes them. No host at all is accepted only from HTTP/1.0 clients
/// (old health checkers); browsers always send one.
pub fn allowed(
    host: Option<&str>,
    http10: bool,
    listen: Option<SocketAddr>,
    configured: &[String],
) -> bool {
    let Some(raw) = host else {
        return http10;
    };
    let Ok(host) = normalize_host(raw) else {
        return false;
    };
    if host == "localhost" || configured.contains(&host) {
        return true;
    }
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<IpAddr>() {
        Ok(ip) => {
            ip.is_loopback() || listen.is_some_and(|l| !l.ip().is_unspecified() && l.ip() == ip)
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTEN: &str = "127.0.0.1:9091";

    fn ok(host: &str) -> bool {
        allowed(
            Some(host),
            false,
            LISTEN.parse().ok(),
            &["admin.internal".to_string()],
        )
    }

    #[test]
    fn loopback_names_with_or_without_port() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:9091",
            "127.0.0.1:80",
            "127.1.2.3:9091",
            "[::1]",
            "[::1]:9091",
            "localhost",
            "LOCALHOST:9091",
            "localhost.:9091",
            "admin.internal",
            "Admin.Internal:9091",
        ] {
            assert!(ok(host), "{host}");
        }
    }

    #[test]
    fn every_other_name_is_refused() {
        for host in [
            "evil.example",
            "evil.example:9091",
            "localhost.evil.example",
            "127.0.0.1.nip.io:9091",
            "localtest.me",
            "admin.internal.evil.example",
            "10.0.0.5:9091",
            "[::ffff:127.0.0.1]:9091",
            "0.0.0.0:9091",
            "",
            "127.0.0.1:",
            "127.0.0.1:port",
            "[::1",
            "user@127.0.0.1",
            "127.0.0.1 evil.example",
        ] {
            assert!(!ok(host), "{host:?}");
        }
    }

    #[test]
    fn the_listeners_own_address_is_accepted_unless_unspecified() {
        let own = "10.0.0.5:9091".parse().ok();
        assert!(allowed(Some("10.0.0.5:9091"), false, own, &[]));
        assert!(!allowed(Some("10.0.0.6:9091"), false, own, &[]));
        let any = "0.0.0.0:9091".parse().ok();
        assert!(!allowed(Some("0.0.0.0:9091"), false, any, &[]));
        assert!(!allowed(Some("10.0.0.5:9091"), false, any, &[]));
    }

    #[test]
    fn no_host_only_from_http_1_0() {
        assert!(allowed(None, true, None, &[]));
        assert!(!allowed(None, false, None, &[]));
    }
}
