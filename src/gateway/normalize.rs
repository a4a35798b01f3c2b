//! Request target and host normalisation, before any rule is matched.
//! Rules match the normalised path and the normalised path is what goes
//! upstream, so the gateway and the app can never disagree about which path
//! a request is for. Pure: strings in, strings out.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A normalised request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: String,
    pub query: Option<String>,
}

impl Target {
    /// `path?query`, the form sent upstream and carried in `rd`.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }
}

/// Splits an origin-form target (`/a/b?x=1`) and normalises its path.
pub fn normalize_target(target: &str) -> Result<Target, Malformed> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    if let Some(q) = query {
        if q.bytes().any(|b| !is_visible_ascii(b) || b == b'#') {
            return Err(Malformed("invalid character in query"));
        }
    }
    Ok(Target {
        path: normalize_path(path)?,
        query: query.map(str::to_string),
    })
}

fn is_visible_ascii(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes percent-escapes of unreserved characters, upper-cases the rest,
/// folds `//`, and resolves `.` and `..` (never above the root).
pub fn normalize_path(path: &str) -> Result<String, Malformed> {
    if already_normal(path.as_bytes()) {
        return Ok(path.to_owned());
    }
    rewrite_path(path)
}

/// Whether `normalize_path` would hand `path` back unchanged, decided in
/// one pass: it starts with `/`; it holds only visible ASCII, and none of
/// `%` (an escape may need decoding or upper-casing), a backslash, `#` or
/// `;` (path parameters, checked on the slow path); no segment is empty
/// but a trailing one, and none is `.` or `..`. Most requests are like
/// this; they skip the decoding and the segment walk.
fn already_normal(path: &[u8]) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    // the bytes of the current segment so far, and whether all were dots
    let mut len = 0usize;
    let mut dots = true;
    for &b in path.iter().skip(1) {
        if b == b'/' {
            if len == 0 || (dots && len <= 2) {
                return false;
            }
            len = 0;
            dots = true;
            continue;
        }
        if !is_visible_ascii(b) || matches!(b, b'%' | b'\\' | b'#' | b';') {
            return false;
        }
        len += 1;
        dots &= b == b'.';
    }
    // the last segment: empty (a trailing slash, or the root) is kept
    len == 0 || !(dots && len <= 2)
}

/// `normalize_path` for a path that may need it.
fn rewrite_path(path: &str) -> Result<String, Malformed> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(Malformed("path must start with '/'"));
    }
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if !is_visible_ascii(b) || b == b'\\' || b == b'#' {
            return Err(Malformed("invalid character in path"));
        }
        if b != b'%' {
            decoded.push(char::from(b));
            i += 1;
            continue;
        }
        let hi = bytes.get(i + 1).copied().and_then(hex_value);
        let lo = bytes.get(i + 2).copied().and_then(hex_value);
        let (Some(hi), Some(lo)) = (hi, lo) else {
            return Err(Malformed("invalid percent-encoding in path"));
        };
        let value = hi * 16 + lo;
        if value < 0x20 || value == 0x7f {
            return Err(Malformed("encoded control character in path"));
        }
        // An app (or a server in front of it) that decodes before
        // resolving `..` would read `..%2F` as a step up: refuse both.
        if value == b'/' || value == b'\\' {
            return Err(Malformed("encoded slash or backslash in path"));
        }
        if is_unreserved(value) {
            decoded.push(char::from(value));
        } else {
            decoded.push('%');
            decoded.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
            decoded.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
        }
        i += 3;
    }
    // `/static/..;/admin`: a servlet container strips `;params` and then
    // reads `..`, which the gateway would not. Refuse the ambiguity.
    let dot_with_params =
        |seg: &str| seg.contains(';') && matches!(seg.split(';').next(), Some("." | ".."));
    if decoded.split('/').any(dot_with_params) {
        return Err(Malformed("path parameters on a dot segment"));
    }
    Ok(remove_dot_segments(&decoded))
}

fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    let segments: Vec<&str> = path.get(1..).unwrap_or("").split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (n, seg) in segments.iter().enumerate() {
        let is_last = n == last;
        match *seg {
            "" | "." => trailing_slash = is_last,
            ".." => {
                kept.pop();
                trailing_slash = is_last;
            }
            other => {
                kept.push(other);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &kept {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

/// Lower-case host without port or trailing dot; IPv6 literals keep brackets.
pub fn normalize_host(raw: &str) -> Result<String, Malformed> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(Malformed("unterminated IPv6 literal in host"));
        };
        if !after.is_empty() && !is_port(after.strip_prefix(':').unwrap_or("x")) {
            return Err(Malformed("invalid port in host"));
        }
        if inside.is_empty()
            || !inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(Malformed("invalid IPv6 literal in host"));
        }
        return Ok(format!("[{}]", inside.to_ascii_lowercase()));
    } else {
        match raw.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return Err(Malformed("invalid port in host")),
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(Malformed("invalid host"));
    }
    Ok(host.to_ascii_lowercase())
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> String {
        normalize_path(p).unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn resolves_dot_segments_and_folds_slashes() {
        assert_eq!(norm("/"), "/");
        assert_eq!(norm("/a/b/c"), "/a/b/c");
        assert_eq!(norm("/static/../private"), "/private");
        assert_eq!(norm("/a/./b/"), "/a/b/");
        assert_eq!(norm("/a//b///c"), "/a/b/c");
        assert_eq!(norm("//etc"), "/etc");
        assert_eq!(norm("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(norm("/a/b/.."), "/a/");
        assert_eq!(norm("/a/b/."), "/a/b/");
        assert_eq!(norm("/a/.."), "/");
        assert_eq!(norm("/..."), "/...");
        assert_eq!(norm("/a;v=1/b"), "/a;v=1/b");
        assert_eq!(norm("/..x;y"), "/..x;y");
    }

    #[test]
    fn decodes_only_unreserved_escapes() {
        assert_eq!(norm("/%7Euser/%41b"), "/~user/Ab");
        assert_eq!(norm("/static/%2e%2e/private"), "/private");
        assert_eq!(norm("/a/%3f"), "/a/%3F");
        assert_eq!(norm("/caf%c3%a9"), "/caf%C3%A9");
    }

    #[test]
    fn refuses_malformed_paths() {
        for bad in [
            "",
            "a/b",
            "/a%",
            "/a%2",
            "/a%zz",
            "/a%00",
            "/a%0a",
            "/a%7F",
            "/a b",
            "/a\\b",
            "/a\u{e9}",
            "/a#b",
            "/static/..%2Fadmin",
            "/a%2fb",
            "/a%5Cb",
            "/a%5c..%5cb",
        ] {
            assert!(normalize_path(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn splits_query_and_keeps_it() {
        let t = normalize_target("/a/../b?x=1&y=%2F").unwrap();
        assert_eq!(t.path, "/b");
        assert_eq!(t.query.as_deref(), Some("x=1&y=%2F"));
        assert_eq!(t.path_and_query(), "/b?x=1&y=%2F");
        assert_eq!(normalize_target("/p").unwrap().path_and_query(), "/p");
        assert!(normalize_target("/p?a b").is_err());
    }

    #[test]
    fn hosts_lose_case_port_and_trailing_dot() {
        assert_eq!(
            normalize_host("App.Example.COM:8080").unwrap(),
            "app.example.com"
        );
        assert_eq!(normalize_host("example.com.").unwrap(), "example.com");
        assert_eq!(normalize_host("[::1]:8080").unwrap(), "[::1]");
        assert_eq!(normalize_host("127.0.0.1").unwrap(), "127.0.0.1");
        for bad in [
            "",
            "a b",
            "ex:ample:x",
            "[::1",
            "a/b",
            "[zz]",
            "host:99999999",
        ] {
            assert!(normalize_host(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn the_fast_path_takes_only_paths_that_need_nothing() {
        for normal in [
            "/",
            "/a",
            "/a/",
            "/a/b.c",
            "/.well-known/x",
            "/...",
            "/a..",
            "/.a/b",
        ] {
            assert!(already_normal(normal.as_bytes()), "{normal:?}");
            assert_eq!(rewrite_path(normal).as_deref(), Ok(normal));
        }
        for needs_work in [
            "", "a", "//", "/a//b", "/.", "/..", "/./a", "/a/../b", "/a/.", "/a/..", "/%41",
            "/a;b", "/a\\b", "/a#b", "/a b", "/a\u{e9}",
        ] {
            assert!(!already_normal(needs_work.as_bytes()), "{needs_work:?}");
        }
    }

    proptest::proptest! {
        /// The fast path never answers differently from the full rewrite.
        #[test]
        fn the_fast_path_agrees_with_the_rewrite(p in "/[/a.%;#~\\\\ 4A1é]{0,12}") {
            proptest::prop_assert_eq!(normalize_path(&p), rewrite_path(&p));
        }

        #[test]
        fn normalised_paths_are_fixed_points(p in "/[a-zA-Z0-9./%_~-]{0,40}") {
            if let Ok(n) = normalize_path(&p) {
                proptest::prop_assert_eq!(normalize_path(&n), Ok(n.clone()));
                proptest::prop_assert!(n.starts_with('/'));
                proptest::prop_assert!(!n.contains("//"));
                proptest::prop_assert!(!n.split('/').any(|s| s == ".." || s == "."));
            }
        }
    }
}
