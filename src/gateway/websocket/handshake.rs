//! The relay's view of an HTTP/1.1 upgrade handshake, as raw heads: where a
//! head ends, the ticket header taken out of the request, the status of the
//! answer, and an answer that is not an upgrade turned into the last on its
//! connection. Pure: bytes in, bytes out; no Pingora types. Never forwards
//! the ticket header.

/// The internal header that carries a relay ticket from the gateway's
/// proxy to its relay. The identity strip rules drop it from every inbound
/// request (`wire::identity_headers`), so only the gateway can set it.
pub const TICKET_HEADER: &str = "x-gatehouse-relay";

/// A request or response head larger than this is refused: above the
/// largest head the gateway admits (`server.max_request_header_bytes` is
/// at most 1 MiB) with the headers it adds.
pub const MAX_HEAD: usize = 2 * 1024 * 1024;

/// The length of the head at the start of `buf` (through the blank line),
/// once it has all arrived.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn is_named(line: &[u8], name: &str) -> bool {
    line.iter()
        .position(|&b| b == b':')
        .and_then(|colon| line.get(..colon))
        .is_some_and(|n| n.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
}

fn value(line: &[u8]) -> &[u8] {
    match line.iter().position(|&b| b == b':') {
        Some(colon) => line.get(colon + 1..).unwrap_or_default().trim_ascii(),
        None => b"",
    }
}

/// Rebuilds a head from its first line and the header lines kept.
fn rebuild<'a>(first: &[u8], headers: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = first.to_vec();
    out.extend_from_slice(b"\r\n");
    for h in headers {
        out.extend_from_slice(h);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The request head without the ticket header, and the ticket. `None`
/// unless there is exactly one ticket: the gateway adds one to every
/// request it sends the relay, and strips any a client sent.
pub fn take_ticket(head: &[u8]) -> Option<(Vec<u8>, String)> {
    let mut all = lines(head).filter(|l| !l.is_empty());
    let first = all.next()?;
    let headers: Vec<&[u8]> = all.collect();
    let mut tickets = headers.iter().filter(|l| is_named(l, TICKET_HEADER));
    let ticket = std::str::from_utf8(value(tickets.next()?))
        .ok()?
        .to_string();
    if tickets.next().is_some() || ticket.is_empty() {
        return None;
    }
    let kept = headers
        .iter()
        .copied()
        .filter(|l| !is_named(l, TICKET_HEADER));
    Some((rebuild(first, kept), ticket))
}

/// The status code of a response head.
pub fn status(head: &[u8]) -> Option<u16> {
    let first = lines(head).next()?;
    let code = first.split(|&b| b == b' ').nth(1)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// A response that is not the upgrade, made the last on its connection:
/// the relay serves one exchange per connection, so the proxy must not
/// keep it for another request.
pub fn last_on_connection(head: &[u8]) -> Vec<u8> {
    let mut all = lines(head).filter(|l| !l.is_empty());
    let Some(first) = all.next() else {
        return head.to_vec();
    };
    let kept = all.filter(|l| !is_named(l, "connection") && !is_named(l, "keep-alive"));
    rebuild(
        first,
        kept.chain(std::iter::once(&b"Connection: close"[..])),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nX-Gatehouse-Relay: t0k3n\r\nConnection: Upgrade\r\n\r\n";

    #[test]
    fn the_ticket_is_taken_out_and_the_rest_kept_in_order() {
        let (head, ticket) = take_ticket(REQ).unwrap();
        assert_eq!(ticket, "t0k3n");
        assert_eq!(
            head,
            b"GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        );
        assert_eq!(head_end(&head), Some(head.len()));
    }

    #[test]
    fn no_ticket_or_two_tickets_is_refused() {
        assert!(take_ticket(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").is_none());
        assert!(take_ticket(
            b"GET / HTTP/1.1\r\nx-gatehouse-relay: a\r\nX-GATEHOUSE-RELAY: b\r\n\r\n"
        )
        .is_none());
        assert!(take_ticket(b"GET / HTTP/1.1\r\nX-Gatehouse-Relay:\r\n\r\n").is_none());
        assert!(take_ticket(b"").is_none());
    }

    #[test]
    fn a_head_ends_at_the_blank_line() {
        assert_eq!(head_end(b"HTTP/1.1 101 X\r\n\r\nframes"), Some(18));
        assert_eq!(head_end(b"HTTP/1.1 101 X\r\n"), None);
    }

    #[test]
    fn status_and_closing_answers() {
        assert_eq!(
            status(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            Some(101)
        );
        assert_eq!(status(b"HTTP/1.1 abc\r\n\r\n"), None);
        assert_eq!(status(b""), None);
        let closed = last_on_connection(
            b"HTTP/1.1 404 Not Found\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(
            closed,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
}
