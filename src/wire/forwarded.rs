//! X-Forwarded-For/Proto/Host. A peer inside `trusted_proxies` has its
//! values believed as far as they can be: the chain is walked from the
//! right through trusted proxies and stops at the first hop that is not
//! one, or that does not parse (`unknown`, `_hidden`, garbage) — never
//! past it, since everything to its left is whatever the client wrote.
//! Anyone else's values are replaced by what the gateway saw. Pure.
//!
//! `Forwarded:` (RFC 7239) is never read, only dropped before forwarding.

use std::net::IpAddr;

/// What the client sent, read before inbound forwarding headers are stripped.
#[derive(Debug, Default, Clone)]
pub struct Inbound<'a> {
    /// Every `X-Forwarded-For` line, joined with `,`, as raw bytes.
    pub xff: &'a [u8],
    pub proto: Option<&'a str>,
    pub host: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The believed client first, then each trusted proxy in order, the
    /// peer last: what the app gets as `X-Forwarded-For`.
    pub for_: String,
    /// The believed client, for `X-Real-IP`.
    pub client: Option<IpAddr>,
    pub proto: String,
    pub host: Option<String>,
}

pub fn is_trusted(peer: Option<IpAddr>, trusted: &[ipnet::IpNet]) -> bool {
    peer.is_some_and(|ip| trusted.iter().any(|net| net.contains(&ip)))
}

/// One `X-Forwarded-For` entry as proxies write it: `1.2.3.4`,
/// `1.2.3.4:5555`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`
/// (surrounding spaces ignored). IPv4-mapped IPv6 reads as IPv4, so one
/// client is one address. Anything else (`unknown`, `_hidden`, an empty
/// entry, garbage) is `None`.
pub fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop.trim_ascii()).ok()?;
    let ip = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || is_port(after.strip_prefix(':')?)) {
            return None;
        }
        match inside.parse::<IpAddr>().ok()? {
            IpAddr::V6(v6) => IpAddr::V6(v6),
            IpAddr::V4(_) => return None,
        }
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        ip
    } else {
        let (host, port) = text.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse().ok()?)
    };
    Some(ip.to_canonical())
}

fn is_port(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u16>().is_ok()
}

/// The hops the gateway believes, nearest last: the peer, then, while the
/// address in hand is a trusted proxy, the entry it reported. The first
/// element is the client. Stops at an entry that does not parse, leaving
/// the proxy that reported it as the client: behind it, nothing is known.
pub fn believed_chain(peer: Option<IpAddr>, xff: &[u8], trusted: &[ipnet::IpNet]) -> Vec<IpAddr> {
    let Some(peer) = peer.map(|ip| ip.to_canonical()) else {
        return Vec::new();
    };
    let mut chain = vec![peer];
    if xff.trim_ascii().is_empty() {
        return chain;
    }
    let mut hops = xff.rsplit(|b| *b == b',');
    while chain
        .last()
        .is_some_and(|ip| is_trusted(Some(*ip), trusted))
    {
        match hops.next().and_then(parse_hop) {
            Some(ip) => chain.push(ip),
            None => break,
        }
    }
    chain.reverse();
    chain
}

/// The client address the gateway believes: the peer, or for a trusted
/// proxy, the first hop back through its XFF that is not one.
pub fn client_ip(peer: Option<IpAddr>, xff: &[u8], trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    believed_chain(peer, xff, trusted).first().copied()
}

pub fn forwarded(
    peer: Option<IpAddr>,
    trusted: &[ipnet::IpNet],
    inbound: &Inbound,
    scheme: &str,
    host: Option<&str>,
) -> Forwarded {
    let chain = believed_chain(peer, inbound.xff, trusted);
    let mut for_ = String::new();
    // Writing to a String cannot fail.
    let _ = chain_text(&chain, &mut for_);
    let client = chain.first().copied();
    let (proto, host) = told(
        is_trusted(peer, trusted),
        inbound.proto,
        inbound.host,
        scheme,
        host,
    );
    Forwarded {
        for_,
        client,
        proto: proto.to_string(),
        host: host.map(str::to_string),
    }
}

/// The proto and host the app is told: a trusted peer's own values where
/// it sent them, otherwise what the gateway saw. Generic over how the
/// values are held, so the proxy path can pass header values through
/// without copying them.
pub fn told<T>(
    trusted_peer: bool,
    inbound_proto: Option<T>,
    inbound_host: Option<T>,
    scheme: T,
    host: Option<T>,
) -> (T, Option<T>) {
    if trusted_peer {
        (inbound_proto.unwrap_or(scheme), inbound_host.or(host))
    } else {
        (scheme, host)
    }
}

/// `X-Forwarded-For` for a believed chain (`believed_chain`): the hops,
/// client first, joined with `, ` (as `forwarded` writes it), or
/// `unknown` without a peer address.
pub fn chain_text(chain: &[IpAddr], out: &mut impl std::fmt::Write) -> std::fmt::Result {
    if chain.is_empty() {
        return out.write_str("unknown");
    }
    for (i, ip) in chain.iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        write!(out, "{ip}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_forge_forwarding() {
        let inbound = Inbound {
            xff: b"1.2.3.4",
            proto: Some("https"),
            host: Some("evil.com"),
        };
        let peer = Some(ip("203.0.113.9"));
        let f = forwarded(
            peer,
            &nets(&["10.0.0.0/8"]),
            &inbound,
            "http",
            Some("app.local"),
        );
        assert_eq!(f.for_, "203.0.113.9");
        assert_eq!(f.client, peer);
        assert_eq!(f.proto, "http");
        assert_eq!(f.host.as_deref(), Some("app.local"));
    }

    #[test]
    fn trusted_proxies_are_extended() {
        let inbound = Inbound {
            xff: b"198.51.100.7, 10.0.0.3",
            proto: Some("https"),
            host: Some("app.example.com"),
        };
        let peer = Some(ip("10.0.0.2"));
        let trusted = nets(&["10.0.0.0/8"]);
        let f = forwarded(peer, &trusted, &inbound, "http", Some("internal"));
        assert_eq!(f.for_, "198.51.100.7, 10.0.0.3, 10.0.0.2");
        assert_eq!(f.client, Some(ip("198.51.100.7")));
        assert_eq!(f.proto, "https");
        assert_eq!(f.host.as_deref(), Some("app.example.com"));
    }

    #[test]
    fn hops_parse_in_every_form_proxies_write() {
        for (hop, want) in [
            ("1.2.3.4", Some("1.2.3.4")),
            (" 1.2.3.4:5555 ", Some("1.2.3.4")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            ("[::1]:443", Some("::1")),
            ("::ffff:10.0.0.1", Some("10.0.0.1")),
            ("unknown", None),
            ("_hidden", None),
            ("", None),
            ("1.2.3.4:", None),
            ("1.2.3.4:99999", None),
            ("1.2.3.4:+80", None),
            ("[1.2.3.4]", None),
            ("[2001:db8::1]x", None),
            ("[2001:db8::1", None),
            ("2001:db8::1:443x", None),
            ("\"1.2.3.4\"", None),
            ("1.2.3.4 5.6.7.8", None),
        ] {
            assert_eq!(parse_hop(hop.as_bytes()), want.map(ip), "{hop:?}");
        }
        assert_eq!(parse_hop(b"1.2.3.4\xff"), None);
    }

    #[test]
    fn the_walk_stops_at_the_first_hop_it_cannot_read() {
        let trusted = nets(&["10.0.0.0/8", "::1/128"]);
        let peer = Some(ip("10.0.0.1"));
        for (xff, client) in [
            ("6.6.6.6, 203.0.113.7:5555", "203.0.113.7"),
            ("6.6.6.6, [2001:db8::1]:443", "2001:db8::1"),
            ("6.6.6.6, [::1]:443", "6.6.6.6"),
            ("6.6.6.6, 10.0.0.9:8080", "6.6.6.6"),
            ("6.6.6.6, unknown", "10.0.0.1"),
            ("6.6.6.6, _hidden, 10.0.0.9", "10.0.0.9"),
            ("6.6.6.6, garbage!!", "10.0.0.1"),
            ("6.6.6.6,, 10.0.0.9", "10.0.0.9"),
            ("6.6.6.6, 10.0.0.9,", "10.0.0.1"),
            ("", "10.0.0.1"),
            ("10.0.0.8, 10.0.0.9", "10.0.0.8"),
        ] {
            assert_eq!(
                client_ip(peer, xff.as_bytes(), &trusted),
                Some(ip(client)),
                "{xff:?}"
            );
        }
        assert_eq!(
            client_ip(peer, b"6.6.6.6, \xff\xfe", &trusted),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(client_ip(None, b"6.6.6.6", &trusted), None);
    }

    #[test]
    fn the_app_gets_only_the_believed_part_of_the_chain() {
        let trusted = nets(&["10.0.0.0/8"]);
        let inbound = Inbound {
            xff: b"6.6.6.6, unknown, 10.0.0.9:80",
            ..Inbound::default()
        };
        let f = forwarded(Some(ip("10.0.0.1")), &trusted, &inbound, "http", None);
        assert_eq!(f.for_, "10.0.0.9, 10.0.0.1");
        assert_eq!(f.client, Some(ip("10.0.0.9")));
        assert_eq!(
            forwarded(None, &trusted, &inbound, "http", None).for_,
            "unknown"
        );
    }

    fn hop_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
            any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
            (any::<std::net::Ipv4Addr>(), any::<u16>()).prop_map(|(a, p)| format!("{a}:{p}")),
            (any::<std::net::Ipv6Addr>(), any::<u16>()).prop_map(|(a, p)| format!("[{a}]:{p}")),
            any::<std::net::Ipv6Addr>().prop_map(|a| format!("[{a}]")),
            (0u8..4).prop_map(|n| format!("10.0.0.{n}")),
            (0u8..4).prop_map(|n| format!("10.0.0.{n}:8{n}")),
            "[ -~]{0,12}",
        ]
    }

    proptest::proptest! {
        /// Whatever the chain, the believed client is the peer or an
        /// entry that parses, and no entry left of an unreadable one is
        /// ever believed.
        #[test]
        fn nothing_left_of_an_unreadable_hop_is_believed(
            hops in proptest::collection::vec(hop_text(), 0..8),
        ) {
            let trusted = nets(&["10.0.0.0/8"]);
            let peer = Some(ip("10.0.0.1"));
            let xff = hops.join(",");
            let chain = believed_chain(peer, xff.as_bytes(), &trusted);
            proptest::prop_assert_eq!(chain.last().copied(), peer);
            let first_bad = hops.iter().rposition(|h| parse_hop(h.as_bytes()).is_none());
            // entries taken from the XFF, nearest first
            let taken = chain.len() - 1;
            if let Some(bad) = first_bad {
                proptest::prop_assert!(taken <= hops.len() - 1 - bad);
            }
            for (i, believed) in chain.iter().rev().skip(1).enumerate() {
                let hop = &hops[hops.len() - 1 - i];
                proptest::prop_assert_eq!(parse_hop(hop.as_bytes()), Some(*believed));
            }
            // every proxy the walk passed through is trusted
            for passed in chain.iter().skip(1) {
                proptest::prop_assert!(is_trusted(Some(*passed), &trusted));
            }
        }
    }
}
