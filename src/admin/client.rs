//! A minimal HTTP/1.1 client for the admin API on loopback, for the
//! `gatehouse sessions` commands (the binary carries no general HTTP client).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// The admin API's URL and token as a config file names them
/// (`gatehouse sessions -c FILE`): `server.admin_listen` (an unspecified
/// address is reached on loopback) and `server.admin_token_file`.
pub fn from_config(path: &Path) -> Result<(String, Option<String>), String> {
    let settings = crate::config::load(path).map_err(|e| e.to_string())?;
    let Some(addr) = settings.server.admin_listen else {
        return Err(format!(
            "{}: server.admin_listen is \"\", the admin API is off",
            path.display()
        ));
    };
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let base = format!("http://{}", SocketAddr::new(ip, addr.port()));
    Ok((base, settings.server.admin_token))
}

/// `base` is like `http://127.0.0.1:9091`.
pub fn call(base: &str, method: &str, path: &str, token: Option<&str>) -> Result<Reply, String> {
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("expected an admin URL like http://127.0.0.1:9091, found {base:?}"))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)
        .map_err(|e| format!("cannot reach the admin API at {base}: {e}"))?;
    let timeout = Some(Duration::from_secs(30));
    stream
        .set_read_timeout(timeout)
        .map_err(|e| e.to_string())?;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "the admin API sent an incomplete answer".to_string())?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "the admin API sent no status".to_string())?;
    Ok(Reply {
        status,
        body: body.to_string(),
    })
}
