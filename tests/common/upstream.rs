//! A real HTTP/1.1 upstream on loopback that records each request (method,
//! target, headers exactly as received) and answers with them as JSON.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    /// Header names as they arrived (case kept), in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// Values of a header, compared ignoring case.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).first().copied()
    }

    /// Headers whose name, lower-cased with `_` read as `-`, starts with `prefix`.
    pub fn headers_like(&self, prefix: &str) -> Vec<(String, String)> {
        let canon = |s: &str| s.to_ascii_lowercase().replace('_', "-");
        self.headers
            .iter()
            .filter(|(k, _)| canon(k).starts_with(&canon(prefix)))
            .cloned()
            .collect()
    }
}

#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

impl Upstream {
    pub fn start() -> Upstream {
        Self::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// An upstream on `addr` (one that was down, coming back).
    pub fn start_on(addr: SocketAddr) -> Upstream {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(conn, &log));
            }
        });
        Upstream { addr, seen }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Recorded {
        self.requests()
            .pop()
            .expect("the upstream received no request")
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<Recorded>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    // Heads are read as bytes (a header may hold Latin-1) and kept lossily.
    let read_line = |reader: &mut BufReader<TcpStream>, line: &mut String| {
        let mut bytes = Vec::new();
        let n = reader.read_until(b'\n', &mut bytes).unwrap_or(0);
        line.push_str(&String::from_utf8_lossy(&bytes));
        n
    };
    loop {
        let mut line = String::new();
        if read_line(&mut reader, &mut line) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if read_line(&mut reader, &mut h) == 0 {
                return;
            }
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.to_string(), v.trim().to_string()));
            }
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body = vec![0; n];
            reader.read_exact(&mut body).unwrap();
        }
        let json = serde_json::json!({
            "method": method,
            "target": target,
            "headers": headers.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect::<Vec<_>>(),
        })
        .to_string();
        log.lock().unwrap().push(Recorded {
            method,
            target: target.clone(),
            headers,
            body,
        });
        // `?status=405` makes the app answer with that status.
        let status = target
            .split_once("status=")
            .and_then(|(_, rest)| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
            .unwrap_or(200);
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nSet-Cookie: sessionid=app-cookie; Path=/\r\nContent-Length: {}\r\n\r\n{}",
            json.len(),
            json
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
