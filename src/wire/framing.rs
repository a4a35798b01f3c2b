//! What RFC 9112 asks of a request's head before anything else reads it:
//! an HTTP/1.1 request names exactly one `Host`, and a body is framed in a
//! way the gateway can pass on faithfully. An HTTP/2 request names its host
//! in `:authority` (the URI's authority); a `Host` beside it must agree
//! (RFC 9113 §8.3.1). Pure.

use http::{header, request::Parts, Version};

/// Why a request's head is refused, and the status that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: HTTP/1.1 without `Host`, more than one `Host` line, or an
    /// HTTP/2 `Host` that differs from `:authority`.
    Host(&'static str),
    /// 501: a transfer coding other than plain `chunked`. Pingora would
    /// forward `gzip, chunked` as just `chunked`, handing the app a
    /// compressed body it was not told about.
    TransferCoding,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::Host(_) => 400,
            Refusal::TransferCoding => 501,
        }
    }

    /// The `error` of the JSON answer.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Host(_) => "bad_request",
            Refusal::TransferCoding => "not_implemented",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::Host(why) => why,
            Refusal::TransferCoding => "Only the chunked transfer coding is supported.",
        }
    }
}

/// `Ok` when the head may go on to normalisation and routing.
pub fn check(req: &Parts) -> Result<(), Refusal> {
    let hosts = req.headers.get_all(header::HOST).iter().count();
    if hosts > 1 {
        return Err(Refusal::Host("More than one Host header."));
    }
    if hosts == 0 && req.version == Version::HTTP_11 {
        return Err(Refusal::Host("An HTTP/1.1 request needs a Host header."));
    }
    // Pingora's HTTP/2 server refuses these before any phase runs; the rule
    // is kept here so routing never rests on a parser's choice.
    if req.version == Version::HTTP_2 {
        let host = req.headers.get(header::HOST).map(|h| h.as_bytes());
        let authority = req.uri.authority().map(|a| a.as_str().as_bytes());
        if let (Some(h), Some(a)) = (host, authority) {
            if !h.eq_ignore_ascii_case(a) {
                return Err(Refusal::Host(
                    "The Host header and :authority name different hosts.",
                ));
            }
        }
    }
    let mut codings = req
        .headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|line| line.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty());
    let only_chunked = match (codings.next(), codings.next()) {
        (None, _) => true,
        (Some(c), None) => c.eq_ignore_ascii_case(b"chunked"),
        (Some(_), Some(_)) => false,
    };
    if only_chunked {
        Ok(())
    } else {
        Err(Refusal::TransferCoding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(version: Version, headers: &[(&str, &[u8])]) -> Parts {
        let mut b = http::Request::builder().uri("/").version(version);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn http_1_1_needs_exactly_one_host() {
        let h11 = |h: &[(&str, &[u8])]| check(&head(Version::HTTP_11, h));
        assert_eq!(h11(&[("host", b"a")]), Ok(()));
        assert_eq!(h11(&[]).map_err(Refusal::status), Err(400));
        assert_eq!(
            h11(&[("host", b"a"), ("host", b"b")]).map_err(Refusal::status),
            Err(400)
        );
        assert_eq!(check(&head(Version::HTTP_10, &[])), Ok(()));
    }

    #[test]
    fn http_2_names_its_host_in_the_authority() {
        let h2 = |uri: &str, hosts: &[&[u8]]| {
            let mut b = http::Request::builder().uri(uri).version(Version::HTTP_2);
            for h in hosts {
                b = b.header("host", *h);
            }
            check(&b.body(()).unwrap().into_parts().0)
        };
        assert_eq!(h2("https://app.example/x", &[]), Ok(()));
        assert_eq!(h2("https://app.example/x", &[b"App.Example"]), Ok(()));
        assert_eq!(h2("/x", &[b"app.example"]), Ok(()));
        assert_eq!(h2("/x", &[]), Ok(()));
        assert_eq!(
            h2("https://app.example/x", &[b"other.example"]).map_err(Refusal::status),
            Err(400)
        );
        assert_eq!(
            h2("https://app.example/x", &[b"app.example", b"app.example"]).map_err(Refusal::status),
            Err(400)
        );
    }

    #[test]
    fn only_plain_chunked_framing_passes() {
        let te = |lines: &[&[u8]]| {
            let mut h: Vec<(&str, &[u8])> = vec![("host", b"a")];
            h.extend(lines.iter().map(|l| ("transfer-encoding", *l)));
            check(&head(Version::HTTP_11, &h))
        };
        assert_eq!(te(&[]), Ok(()));
        assert_eq!(te(&[b"chunked"]), Ok(()));
        assert_eq!(te(&[b"Chunked "]), Ok(()));
        for bad in [
            &[&b"gzip, chunked"[..]][..],
            &[b"gzip", b"chunked"],
            &[b"chunked, chunked"],
            &[b"deflate"],
            &[b"identity"],
            &[b"compress,chunked"],
            &[b"x-gzip , chunked"],
        ] {
            assert_eq!(te(bad), Err(Refusal::TransferCoding), "{bad:?}");
        }
    }
}
