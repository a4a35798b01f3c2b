//! `[ui] inject_session_script`: the session.js tag inserted before
//! `</body>` of the HTML answers of `login` routes, as they stream through.
//! Every chunk is passed on as it came, uncopied, except the one that gets
//! the tag, which grows in its own buffer; nothing is held back but the
//! page from its `</body>` on, until the next chunk or the end of the
//! stream.
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

/// The headers that describe the body as the app sent it.
static DIGESTS: [http::HeaderName; 4] = [
    http::HeaderName::from_static("content-md5"),
    http::HeaderName::from_static("digest"),
    http::HeaderName::from_static("repr-digest"),
    http::HeaderName::from_static("content-digest"),
];

/// Inserts `tag` once, before the last `</body>` of the first chunk of a
/// streamed body that has one (a page has one, near its end).
///
/// A `</body>` split between two chunks has begun in bytes already sent,
/// so the tag goes right after it instead: the HTML parser puts a script
/// that follows `</body>` into the body all the same (the "after body"
/// insertion mode reprocesses it "in body"). Holding back the end of every
/// chunk that might begin one, to put the tag before it, meant copying
/// the next chunk whole to send those bytes first: every chunk ending in
/// `<` (3% to 12% of the bytes of a page are `<`) paid a copy of the next,
/// up to 64 KB, for a split that comes once in thousands of pages.
pub struct TagInserter {
    tag: Bytes,
    /// The end of the chunks so far, when it may begin `</body` (sent
    /// already; kept to recognise a `</body>` split between chunks).
    tail: Vec<u8>,
    /// The page from its `</body>` on, held back by the chunk that found
    /// it: sent with the tag before it and the next chunk after it, so
    /// the page before it goes out as it came, without a copy.
    held: Option<Bytes>,
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

/// Where the last `</body>` of `hay` starts, in any mix of cases, if it
/// has one.
///
/// A vectorised search (memchr2) for each `b` and `B`, from the end; only
/// those are checked for the `</` before and `ody` and the end of the tag
/// name after. A page's `</body>` is near its end, so the chunk that has it
/// costs a few instructions, and one without costs one pass over its bytes
/// (about 0.25 instructions a byte). From the end also because the last
/// `</body>` is the real one: an earlier one is in a comment or a script's
/// string, where a tag must not go. Checking every `<` instead cost about
/// 150k instructions per 16 KB page; three searches for the three usual
/// spellings, or folding the case of a copy and searching that, 14k-22k.
fn find_close_body(hay: &[u8]) -> Option<usize> {
    memchr::memchr2_iter(b'b', b'B', hay)
        .rev()
        .filter_map(|b| b.checked_sub(2))
        .find(|&at| {
            hay.get(at..at + CLOSE_BODY.len())
                .is_some_and(|name| name.eq_ignore_ascii_case(CLOSE_BODY))
                && hay
                    .get(at + CLOSE_BODY.len())
                    .is_some_and(|&b| ends_tag_name(b))
        })
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
            tail: Vec::new(),
            held: None,
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
        if let Some(held) = self.held.take() {
            let chunk = body.take().unwrap_or_default();
            *body = joined(&[&self.tag, &held, &chunk]);
            return;
        }
        if self.done {
            return;
        }
        let Some(chunk) = body.take() else {
            if end && self.pad {
                self.done = true;
                *body = Some(Bytes::from(vec![b' '; self.tag.len()]));
            }
            return;
        };
        let at = find_close_body(&chunk).or_else(|| self.after_split_close(&chunk));
        match at {
            // The usual case: the last chunk of the page comes before the
            // end of the stream is known, which sends the rest.
            Some(at) if !end => {
                self.done = true;
                self.held = Some(chunk.slice(at..));
                *body = (at > 0).then(|| chunk.slice(..at));
            }
            Some(at) => {
                self.done = true;
                let tag = &self.tag;
                *body = Some(widened(chunk, at, tag.len(), |gap| {
                    gap.copy_from_slice(tag)
                }));
            }
            None if end && self.pad => {
                self.done = true;
                let len = chunk.len();
                *body = Some(widened(chunk, len, self.tag.len(), |gap| gap.fill(b' ')));
            }
            None => {
                // What may begin a `</body>` the next chunk ends: this
                // chunk's end, or, when it is shorter than that, the end
                // of the chunks before it too.
                if chunk.len() < CLOSE_BODY.len() {
                    self.tail.extend_from_slice(&chunk);
                } else {
                    self.tail.clear();
                    self.tail
                        .extend_from_slice(&chunk[chunk.len() - CLOSE_BODY.len()..]);
                }
                let keep = partial_tail(&self.tail);
                self.tail.drain(..self.tail.len() - keep);
                *body = Some(chunk);
            }
        }
    }

    /// Where the tag goes in `chunk` when a `</body>` begun by the chunks
    /// before it ends in it: after that tag's `>`.
    fn after_split_close(&self, chunk: &[u8]) -> Option<usize> {
        if self.tail.is_empty() {
            return None;
        }
        // At most six bytes remembered and seven more: on the stack.
        let mut probe = [0u8; 2 * CLOSE_BODY.len() + 1];
        let head = &chunk[..chunk.len().min(CLOSE_BODY.len() + 1)];
        let probe_len = self.tail.len() + head.len();
        probe[..self.tail.len()].copy_from_slice(&self.tail);
        probe[self.tail.len()..probe_len].copy_from_slice(head);
        if find_close_body(&probe[..probe_len]) != Some(0) {
            return None;
        }
        let rest = CLOSE_BODY.len() - self.tail.len();
        memchr::memchr(b'>', chunk.get(rest..)?).map(|gt| rest + gt + 1)
    }
}

/// `chunk` with `n` bytes made at `at` and filled by `fill`, in the
/// chunk's own buffer when nothing else holds it (Pingora reads each chunk
/// of an answer into a buffer of its own): the page stays where it is and
/// only the bytes after `at` move. The buffer grows by exactly `n`, which
/// the allocator mostly finds in the block it already gave (mimalloc
/// rounds a block up to one of four sizes per doubling, and grows it in
/// place while the new size fits). A chunk something else still holds is
/// copied.
fn widened(chunk: Bytes, at: usize, n: usize, fill: impl FnOnce(&mut [u8])) -> Bytes {
    let mut page = Vec::from(chunk);
    let len = page.len();
    page.reserve_exact(n);
    page.resize(len + n, 0);
    page.copy_within(at..len, at + n);
    fill(&mut page[at..at + n]);
    Bytes::from(page)
}

/// `pieces` one after another as one chunk (none when that is empty).
fn joined(pieces: &[&[u8]]) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(pieces.iter().map(|p| p.len()).sum());
    for piece in pieces {
        out.extend_from_slice(piece);
    }
    (!out.is_empty()).then(|| out.freeze())
}

/// The tag for a gateway under `prefix` (made once per config).
pub fn tag(prefix: &str) -> Bytes {
    let prefix = crate::ui::escape(prefix);
    Bytes::from(format!(
        "<script src=\"{prefix}/session.js\" defer></script>"
    ))
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
    let status = resp.status.as_u16();
    let has_body =
        req.method != http::Method::HEAD && !matches!(status, 100..=199 | 204 | 206 | 304);
    if !(login_route && has_body) {
        return Ok(None);
    }
    let header = |name| resp.headers.get(name).map(|v| v.to_str());
    let html = header(http::header::CONTENT_TYPE).is_some_and(|t| {
        t.is_ok_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
        })
    });
    // No encoding, or `identity`; one that is not text is not identity.
    let identity = header(http::header::CONTENT_ENCODING).is_none_or(|e| {
        e.is_ok_and(|e| e.trim().is_empty() || e.trim().eq_ignore_ascii_case("identity"))
    });
    if !(html && identity) {
        return Ok(None);
    }
    let chunked = resp.headers.contains_key(http::header::TRANSFER_ENCODING);
    let length = header(http::header::CONTENT_LENGTH)
        .and_then(|v| v.ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let inserter = TagInserter::new(ctx.snapshot.session_script_tag.clone());
    // Digests and byte ranges describe the body before the tag went in.
    // One look over the answer's few headers finds any digest; removing
    // names that are not there would cost a hash and a probe each.
    let digests = resp.headers.keys().any(|name| DIGESTS.contains(name));
    if digests {
        for name in &DIGESTS {
            resp.remove_header(name);
        }
    }
    resp.insert_header(
        http::header::ACCEPT_RANGES,
        http::HeaderValue::from_static("none"),
    )?;
    if let (Some(length), false) = (length, chunked) {
        let grown = length.saturating_add(inserter.tag.len() as u64);
        resp.insert_header(http::header::CONTENT_LENGTH, grown)?;
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

    /// Streams `chunks` through a plain inserter; the bytes that come out.
    fn run(chunks: &[&str]) -> String {
        streamed(TagInserter::new(TAG), chunks)
    }

    /// Streams `chunks` through `ins`; the bytes that come out.
    fn streamed(mut ins: TagInserter, chunks: &[&str]) -> String {
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
        let out = streamed(TagInserter::new(TAG).padded(), &["<div>part", "ial</div>"]);
        let expected = format!("<div>partial</div>{}", " ".repeat(TAG.len()));
        assert_eq!(out, expected);

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
        assert_eq!(
            run(&["<p>x</p></bOdY></html>"]),
            format!("<p>x</p>{TAG}</bOdY></html>")
        );
        // Not `</bodyx`; of two in one chunk, the last (an earlier one is
        // in a comment or a script's string, where a tag must not go).
        assert_eq!(
            run(&["<bodyx></bodyx><p></p></body></BODY>"]),
            format!("<bodyx></bodyx><p></p></body>{TAG}</BODY>")
        );
        assert_eq!(
            run(&["<script>s = '</body>';</script><p></p></body></html>"]),
            format!("<script>s = '</body>';</script><p></p>{TAG}</body></html>")
        );
    }

    #[test]
    fn finds_a_tag_split_across_chunks_at_every_point() {
        let page = "<html><body><p>a < b</p><bod></body></html>";
        let close = page.find("</body>").unwrap();
        let before = format!("<html><body><p>a < b</p><bod>{TAG}</body></html>");
        // A `</body>` split between chunks: the tag right after it.
        let after = format!("<html><body><p>a < b</p><bod></body>{TAG}</html>");
        let splits = |cut: usize| cut > close && cut < close + "</body>".len();
        for i in 0..=page.len() {
            for j in i..=page.len() {
                let want = if splits(i) || splits(j) {
                    &after
                } else {
                    &before
                };
                assert_eq!(
                    run(&[&page[..i], &page[i..j], &page[j..]]),
                    *want,
                    "{i} {j}"
                );
            }
        }
        let bytes: Vec<String> = page.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(run(&refs), after);
        // `</body` whole in one chunk, what ends the name in the next.
        assert_eq!(
            run(&["<p>x</p></BODY", " \n>", "</html>"]),
            format!("<p>x</p></BODY \n>{TAG}</html>")
        );
        // A later `</body>` in the chunk is the real one.
        assert_eq!(
            run(&["<p>x</p></bo", "dy> --></body></html>"]),
            format!("<p>x</p></body> -->{TAG}</body></html>")
        );
    }

    #[test]
    fn every_chunk_goes_out_whole_and_uncopied_but_the_one_with_the_tag() {
        let mut ins = TagInserter::new(TAG);
        for piece in ["<p>a ", "<", "/", "b> ", "</bo", "dyguard>"] {
            let chunk = Bytes::copy_from_slice(piece.as_bytes());
            let mut body = Some(chunk.clone());
            ins.filter(&mut body, false);
            let out = body.unwrap();
            assert_eq!(out, piece);
            assert_eq!(out.as_ptr(), chunk.as_ptr(), "{piece}: not a copy");
        }
        let mut end = None;
        ins.filter(&mut end, true);
        assert_eq!(end, None);
    }

    #[test]
    fn a_last_chunk_that_ends_the_stream_grows_in_its_own_buffer() {
        // A buffer of its own with room to spare: the tag goes in where the
        // page already is, and only the end of the page moves.
        let page = b"<body><p>long page</p></body></html>";
        let mut buffer = Vec::with_capacity(page.len() + TAG.len());
        buffer.extend_from_slice(page);
        let chunk = Bytes::from(buffer);
        let at = chunk.as_ptr();
        let mut ins = TagInserter::new(TAG).padded();
        let mut body = Some(chunk);
        ins.filter(&mut body, true);
        let out = body.unwrap();
        assert_eq!(out, format!("<body><p>long page</p>{TAG}</body></html>"));
        assert_eq!(out.as_ptr(), at, "the chunk's own buffer, not a copy");

        // A chunk something else still holds is copied, and left as it was.
        let shared = Bytes::from(page.to_vec());
        let mut body = Some(shared.clone());
        TagInserter::new(TAG).filter(&mut body, true);
        let want = format!("<body><p>long page</p>{TAG}</body></html>");
        assert_eq!(body.unwrap(), want);
        assert_eq!(shared, &page[..]);

        // A sized page without `</body>` grows by spaces the same way.
        let mut buffer = Vec::with_capacity(64);
        buffer.extend_from_slice(b"<p>fragment</p>");
        let chunk = Bytes::from(buffer);
        let at = chunk.as_ptr();
        let mut body = Some(chunk);
        TagInserter::new(TAG).padded().filter(&mut body, true);
        let out = body.unwrap();
        assert_eq!(out, format!("<p>fragment</p>{}", " ".repeat(TAG.len())));
        assert_eq!(out.as_ptr(), at, "the chunk's own buffer, not a copy");
    }

    #[test]
    fn leaves_fragments_and_lookalikes_alone() {
        // Control bytes in place of `<` or `/`: not a tag.
        for page in [
            "<div>partial</div>",
            "<p></bodyguard></p>",
            "</bod",
            "<",
            "\x1c/body>",
            "<\x0fbody>",
        ] {
            assert_eq!(run(&[page]), page);
            assert_eq!(run(&[page, ""]), page);
        }
    }

    #[test]
    fn finds_the_tag_anywhere_in_a_large_chunk() {
        // A tag at any offset of a large chunk, among lookalikes, is found
        // where it is.
        for at in (4080..4100).chain(8180..8200) {
            let page = format!("{}</body></html>", "x".repeat(at));
            let want = format!("{}{TAG}</body></html>", "x".repeat(at));
            assert_eq!(run(&[&page]), want, "{at}");
        }
        let big = format!("{}</bodyx>{}", "x".repeat(4093), "y".repeat(5000));
        assert_eq!(run(&[&big]), big);
    }

    #[test]
    fn the_page_before_the_tag_is_passed_on_without_a_copy() {
        let page = Bytes::from_static(b"<body><p>long page</p></body></html>");
        let mut ins = TagInserter::new(TAG).padded();
        let mut body = Some(page.clone());
        ins.filter(&mut body, false);
        let first = body.unwrap();
        assert_eq!(first, "<body><p>long page</p>");
        assert_eq!(first.as_ptr(), page.as_ptr(), "the same bytes, not a copy");
        // The end of the stream brings the tag and the held end of the page,
        // and so does a further chunk when the stream goes on.
        let mut end = None;
        ins.filter(&mut end, true);
        assert_eq!(end.unwrap(), format!("{TAG}</body></html>"));

        let mut ins = TagInserter::new(TAG);
        let mut body = Some(Bytes::from_static(b"<p>x</p></body>"));
        ins.filter(&mut body, false);
        let mut more = Some(Bytes::from_static(b"</html>"));
        ins.filter(&mut more, false);
        assert_eq!(more.unwrap(), format!("{TAG}</body></html>"));
        let mut last = Some(Bytes::from_static(b"\n"));
        ins.filter(&mut last, true);
        assert_eq!(last.unwrap(), "\n");
    }

    #[test]
    fn inserts_once_and_passes_the_rest_untouched() {
        assert_eq!(
            run(&["<body></body>", "<!-- </body> -->"]),
            format!("<body>{TAG}</body><!-- </body> -->")
        );
    }

    #[test]
    fn what_may_begin_the_tag_is_sent_at_once() {
        // Nothing of a page without `</body>` waits for the next chunk.
        let mut ins = TagInserter::new(TAG);
        let mut body = Some(Bytes::from_static(b"text </bo"));
        ins.filter(&mut body, false);
        assert_eq!(body.unwrap(), "text </bo");
        let mut end = None;
        ins.filter(&mut end, true);
        assert_eq!(end, None);
    }
}
