//! `X-Forwarded-For` chains, as raw bytes, from a trusted peer: never
//! panics; the believed chain ends at the peer, passes only through
//! trusted proxies, takes each hop as it parses, and never steps past a
//! hop that does not parse.
#![no_main]

use gatehouse::wire::forwarded::{believed_chain, is_trusted, parse_hop};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|xff: &[u8]| {
    let trusted: Vec<ipnet::IpNet> = ["10.0.0.0/8", "::1/128", "127.0.0.0/8"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    let peer: IpAddr = [10, 0, 0, 1].into();
    let chain = believed_chain(Some(peer), xff, &trusted);
    assert_eq!(chain.last(), Some(&peer));
    for passed in chain.iter().skip(1) {
        assert!(is_trusted(Some(*passed), &trusted));
    }
    let hops: Vec<&[u8]> = if xff.trim_ascii().is_empty() {
        Vec::new()
    } else {
        xff.split(|b| *b == b',').collect()
    };
    let taken = chain.len() - 1;
    assert!(taken <= hops.len());
    for (i, believed) in chain.iter().rev().skip(1).enumerate() {
        assert_eq!(parse_hop(hops[hops.len() - 1 - i]), Some(*believed));
    }
});
