//! `[ui] inject_session_script`: the session.js tag inserted before
//! `</body>` of the HTML answers of `login` routes, as they stream through
//! (a `</body>` split across chunks is found; nothing is buffered beyond the
//! few bytes that might start one).
//!
//! It must never touch an answer it cannot rewrite safely: compressed
//! bodies (any `Content-Encoding` but `identity`), partial content, HEAD,
//! 204/304, public routes, anything not `text/html`, a body without a
//! `</body>` (a fragment for an htmx-style swap). The framing is kept:
//! an answer with a `Content-Length` keeps one, larger by the tag's length
//! (a body without `</body>` ends with as many spaces instead, so the
//! length holds without buffering anything); one without stays chunked or
//! close-delimited. Keeping the length matters: Pingora flushes every
//! chunk of a chunked answer to the socket, a sized one once at its end.

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;

use super::RequestCtx;
use crate::config::Access;

/// Inserts `tag` once, before the first `</body>` of a streamed body.
pub struct TagInserter {
    tag: Bytes,
    /// The end of the last chunk, held back because it may begin `</body`.
    carry: Vec<u8>,
    done: bool,
    /// The answer's length was raised by the tag's: pad a body that has
    /// no `</body>` so that it still comes out that long.
    pad: bool,
}

/// `</body` followed by one of these ends the body element.
fn ends_tag_name(b: u8) -> bool {
    matches!(b, b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

const CLOSE_BODY: &[u8] = b"</body";

/// The spellings of `body` looked for: lower case, upper case and
/// capitalised, as HTML is written. Each is a vectorised search for a rare
/// pair of its bytes; only a match is checked for the `</` before it and
/// the end of the tag name after it. Checking every `<` of a page cost
/// about 150k instructions per 16 KB page, more than the rest of the
/// request; this costs about 22k. A mixed spelling such as `</bOdY>` is
/// not found (no tag).
static BODY_SPELLINGS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 3]> =
    std::sync::LazyLock::new(|| {
        [b"body", b"BODY", b"Body"].map(|s| memchr::memmem::Finder::new(s).into_owned())
    });

/// Where `</body>` starts in `hay`, if it does.
fn find_close_body(hay: &[u8]) -> Option<usize> {
    BODY_SPELLINGS
        .iter()
        .filter_map(|finder| {
            finder
                .find_iter(hay)
                .filter_map(|name| name.checked_sub(2))
                .find(|&at| {
                    hay.get(at..at + 2) == Some(b"</")
                        && hay
                            .get(at + CLOSE_BODY.len())
                            .is_some_and(|&b| ends_tag_name(b))
                })
        })
        .min()
}

/// How many bytes at the end of `hay` could be the start of `</body>`.
fn partial_tail(hay: &[u8]) -> usize {
    let longest = CLOSE_BODY.len().min(hay.len());
    (1..=longest)
        .rev()
        .find(|&n| {
            hay.get(hay.len() - n..)
                .zip(CLOSE_BODY.get(..n))
                .is_some_and(|(tail, start)| tail.eq_ignore_ascii_case(start))
        })
        .unwrap_or(0)
}

impl TagInserter {
    pub fn new(tag: impl Into<Bytes>) -> Self {
        TagInserter {
            tag: tag.into(),
            carry: Vec::new(),
            done: false,
            pad: false,
        }
    }

    /// For an answer whose `Content-Length` was raised by the tag's
    /// length: a body without `</body>` ends with that many spaces.
    pub fn padded(mut self) -> Self {
        self.pad = true;
        self
    }

    /// Rewrites one chunk of the body in place (`end`: it is the last).
    pub fn filter(&mut self, body: &mut Option<Bytes>, end: bool) {
        if self.done {
            return;
        }
        let chunk = body.take().unwrap_or_default();
        // Almost always the carry is empty and the chunk is searched as is.
        let hay = if self.carry.is_empty() {
            chunk
        } else {
            let mut joined = BytesMut::with_capacity(self.carry.len() + chunk.len());
            joined.extend_from_slice(&self.carry);
            joined.extend_from_slice(&chunk);
            self.carry.clear();
            joined.freeze()
        };
        if let Some(at) = find_close_body(&hay) {
            let mut out = BytesMut::with_capacity(hay.len() + self.tag.len());
            out.extend_from_slice(&hay[..at]);
            out.extend_from_slice(&self.tag);
            out.extend_from_slice(&hay[at..]);
            self.done = true;
            *body = Some(out.freeze());
            return;
        }
        if end && self.pad {
            let mut out = BytesMut::with_capacity(hay.len() + self.tag.len());
            out.extend_from_slice(&hay);
            out.resize(hay.len() + self.tag.len(), b' ');
            self.done = true;
            *body = Some(out.freeze());
            return;
        }
        let keep = if end { 0 } else { partial_tail(&hay) };
        let send = hay.len() - keep;
        self.carry.extend_from_slice(&hay[send..]);
        *body = (send > 0).then(|| hay.slice(..send));
    }
}

/// The inserter for this answer, if it gets the tag; the framing headers
/// are adjusted when it does.
pub fn begin(
    req: &pingora::http::RequestHeader,
    resp: &mut ResponseHeader,
    ctx: &RequestCtx,
) -> pingora::Result<Option<TagInserter>> {
    let settings = &ctx.snapshot.settings;
    if !settings.ui.inject_session_script || ctx.identity.is_none() {
        return Ok(None);
    }
    let login_route = ctx
        .route
        .and_then(|i| settings.routes.get(i))
        .is_some_and(|r| matches!(r.access, Access::Login));
    let header = |name| resp.headers.get(name).and_then(|v| v.to_str().ok());
    let html = header(http::header::CONTENT_TYPE).is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
    });
    let identity = header(http::header::CONTENT_ENCODING)
        .is_none_or(|e| e.trim().is_empty() || e.trim().eq_ignore_ascii_case("identity"))
        && resp
            .headers
            .get(http::header::CONTENT_ENCODING)
            .is_none_or(|v| v.to_str().is_ok());
    let status = resp.status.as_u16();
    let has_body =
        req.method != http::Method::HEAD && !matches!(status, 100..=199 | 204 | 206 | 304);
    if !(login_route && html && identity && has_body) {
        return Ok(None);
    }
    let chunked = resp.headers.get(http::header::TRANSFER_ENCODING).is_some();
    let length = header(http::header::CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
    let prefix = crate::ui::escape(&settings.server.prefix);
    let inserter = TagInserter::new(format!(
        "<script src=\"{prefix}/session.js\" defer></script>"
    ));
    // Digests and byte ranges describe the body before the tag went in.
    for name in ["content-md5", "digest", "repr-digest", "content-digest"] {
        resp.remove_header(name);
    }
    resp.insert_header(http::header::ACCEPT_RANGES, "none")?;
    if let (Some(length), false) = (length, chunked) {
        let grown = length.saturating_add(inserter.tag.len() as u64);
        resp.insert_header(http::header::CONTENT_LENGTH, grown.to_string())?;
        return Ok(Some(inserter.padded()));
    }
    resp.remove_header(&http::header::CONTENT_LENGTH);
    if req.version != http::Version::HTTP_10 && !chunked {
        resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    }
    Ok(Some(inserter))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "<script src=\"/s.js\" defer></script>";

    /// Streams `chunks` through an inserter; the bytes that come out.
    fn run(chunks: &[&str]) -> String {
        let mut ins = TagInserter::new(TAG);
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let mut body = Some(Bytes::copy_from_slice(c.as_bytes()));
            ins.filter(&mut body, i + 1 == chunks.len());
            out.extend_from_slice(&body.unwrap_or_default());
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_sized_body_without_the_closing_tag_keeps_its_new_length() {
        let mut ins = TagInserter::new(TAG).padded();
        let mut out = Vec::new();
        for (i, c) in ["<div>part", "ial</div>"].iter().enumerate() {
            let mut body = Some(Bytes::copy_from_slice(c.as_bytes()));
            ins.filter(&mut body, i == 1);
            out.extend_from_slice(&body.unwrap_or_default());
        }
        let expected = format!("<div>partial</div>{}", " ".repeat(TAG.len()));
        assert_eq!(String::from_utf8(out).unwrap(), expected);

        // The end of the stream may come without a chunk of its own.
        let mut ins = TagInserter::new(TAG).padded();
        let mut first = Some(Bytes::from_static(b"<p>no body tag</p>"));
        ins.filter(&mut first, false);
        let mut last = None;
        ins.filter(&mut last, true);
        let total = first.map_or(0, |b| b.len()) + last.map_or(0, |b| b.len());
        assert_eq!(total, "<p>no body tag</p>".len() + TAG.len());

        // With the tag found, nothing is added.
        let mut ins = TagInserter::new(TAG).padded();
        let mut body = Some(Bytes::from_static(b"<body>x</body>"));
        ins.filter(&mut body, true);
        assert_eq!(body.unwrap().len(), "<body>x</body>".len() + TAG.len());
    }

    #[test]
    fn inserts_before_the_closing_body_tag() {
        assert_eq!(
            run(&["<html><body><p>hi</p></body></html>"]),
            format!("<html><body><p>hi</p>{TAG}</body></html>")
        );
        assert_eq!(
            run(&["<p>x</p></BODY\n></html>"]),
            format!("<p>x</p>{TAG}</BODY\n></html>")
        );
        assert_eq!(
            run(&["<p>x</p></Body></html>"]),
            format!("<p>x</p>{TAG}</Body></html>")
        );
        // Not `</bodyx`, and the first real one wins over a later one.
        assert_eq!(
            run(&["<bodyx></bodyx><p></p></body></BODY>"]),
            format!("<bodyx></bodyx><p></p>{TAG}</body></BODY>")
        );
    }

    #[test]
    fn finds_a_tag_split_across_chunks_at_every_point() {
        let page = "<html><body><p>a < b</p><bod></body></html>";
        let want = format!("<html><body><p>a < b</p><bod>{TAG}</body></html>");
        for i in 0..=page.len() {
            for j in i..=page.len() {
                assert_eq!(run(&[&page[..i], &page[i..j], &page[j..]]), want, "{i} {j}");
            }
        }
        let bytes: Vec<String> = page.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(run(&refs), want);
    }

    #[test]
    fn leaves_fragments_and_lookalikes_alone() {
        for page in ["<div>partial</div>", "<p></bodyguard></p>", "</bod", "<"] {
            assert_eq!(run(&[page]), page);
            assert_eq!(run(&[page, ""]), page);
        }
    }

    #[test]
    fn inserts_once_and_passes_the_rest_untouched() {
        assert_eq!(
            run(&["<body></body>", "<!-- </body> -->"]),
            format!("<body>{TAG}</body><!-- </body> -->")
        );
    }

    #[test]
    fn an_empty_end_of_stream_releases_the_held_bytes() {
        let mut ins = TagInserter::new(TAG);
        let mut body = Some(Bytes::from_static(b"text </bo"));
        ins.filter(&mut body, false);
        assert_eq!(body.unwrap(), "text ");
        let mut end = None;
        ins.filter(&mut end, true);
        assert_eq!(end.unwrap(), "</bo");
    }
}
