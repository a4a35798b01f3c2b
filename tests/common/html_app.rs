//! A small HTML app for browser and injection tests: real pages (with a
//! `</body>`, optionally a strict CSP), and answers framed every way a
//! gateway must handle (Content-Length, chunked with `</body>` split across
//! chunks, close-delimited, "compressed", JSON, fragments). Counts the
//! requests it serves by path.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A strict policy: no inline code or styles, nothing from elsewhere.
pub const STRICT_CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'";

/// The body `/chunked` sends, in the chunks it sends them.
pub const CHUNKS: [&str; 3] = [
    "<!doctype html><html><head><title>Chunked</title></head><body><p>streamed</p></bo",
    "dy",
    "></html>",
];

/// What `/gzip` sends as its "compressed" body: if a gateway ignored
/// `Content-Encoding`, it would find a `</body>` in it.
pub const FAKE_GZIP: &str = "<html><body>zipped</body></html>";

#[derive(Clone)]
pub struct HtmlApp {
    pub addr: SocketAddr,
    served: Arc<Mutex<HashMap<String, usize>>>,
}

impl HtmlApp {
    pub fn start() -> HtmlApp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(Mutex::new(HashMap::new()));
        let count = Arc::clone(&served);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let count = Arc::clone(&count);
                std::thread::spawn(move || serve(stream, &count));
            }
        });
        HtmlApp { addr, served }
    }

    /// How many requests for `path` (no query) were served.
    pub fn served(&self, path: &str) -> usize {
        self.served.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// The page every other path gets: it names its path, has a text field
/// (for focus checks) and a strict CSP when the query has `csp`. `/inline`
/// adds an inline script.
pub fn page(target: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>App {t}</title></head>\n\
         <body><h1>App page</h1><p id=\"where\">{t}</p><label>Notes <input id=\"notes\"></label>\n</body></html>\n",
        t = target.replace('&', "&amp;").replace('<', "&lt;")
    )
}

fn serve(mut stream: TcpStream, served: &Mutex<HashMap<String, usize>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    let path = target.split('?').next().unwrap_or("/").to_string();
    *served.lock().unwrap().entry(path.clone()).or_default() += 1;
    let head_only = method == "HEAD";
    let mut send = |head: String, body: &[u8]| {
        let _ = stream.write_all(head.as_bytes());
        if !head_only {
            let _ = stream.write_all(body);
        }
    };
    match path.as_str() {
        "/chunked" => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            );
            for chunk in CHUNKS {
                let _ = write!(stream, "{:x}\r\n{chunk}\r\n", chunk.len());
                let _ = stream.flush();
                // Separate reads at the gateway: each chunk its own body piece.
                std::thread::sleep(Duration::from_millis(30));
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        }
        "/close-delimited" => {
            let body = page(&target);
            let _ = stream.write_all(
                format!("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n{body}").as_bytes(),
            );
        }
        "/gzip" => send(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                FAKE_GZIP.len()
            ),
            FAKE_GZIP.as_bytes(),
        ),
        "/json" | "/static/data.json" => {
            let body = "{\"html\":\"<body></body>\"}";
            send(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                ),
                body.as_bytes(),
            )
        }
        "/fragment" => {
            let body = "<div id=\"swap\">partial</div>";
            send(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                ),
                body.as_bytes(),
            )
        }
        _ => {
            let mut body = page(&target);
            if path == "/inline" {
                // What a strict CSP must block (the control for CSP tests).
                body = body.replace(
                    "</body>",
                    "<script>document.title = 'inline ran';</script></body>",
                );
            }
            let mut csp = if target.contains("csp") {
                format!("Content-Security-Policy: {STRICT_CSP}\r\n")
            } else {
                String::new()
            };
            if path == "/digested" {
                // Digests of the page as the app sent it (values made up:
                // nothing checks them but the client).
                csp.push_str("Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\nDigest: sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\r\nRepr-Digest: sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\r\nContent-Digest: sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\r\nAccept-Ranges: bytes\r\nX-App-Header: kept\r\n");
            }
            send(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n{csp}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                ),
                body.as_bytes(),
            )
        }
    }
    let _ = stream.flush();
}
