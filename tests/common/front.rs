//! A real nginx or Caddy in front of the gateway and the recording
//! upstream, configured as README's "Behind nginx / Caddy / Traefik" says
//! (the recipes below are the README's, with the addresses filled in),
//! started on a free port in its own temp dir.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Caddy,
}

impl Kind {
    fn program(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Caddy => "caddy",
        }
    }
}

pub struct Front {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

/// The program's path, or `None` with the reason printed (a skip), or a
/// panic under `CI=true`, where a missing proxy is a failure.
pub fn find(kind: Kind) -> Option<std::path::PathBuf> {
    let name = kind.program();
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/usr/bin".into()])
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: {name} is not installed");
    }
    found
}

/// The nginx `server` block of README's recipe.
pub fn nginx_server(listen: SocketAddr, gateway: SocketAddr, app: SocketAddr) -> String {
    format!(
        r#"
    server {{
        listen {listen};

        # The gateway's own pages (login, logout, devices) on the same origin.
        location /.gatehouse/ {{
            proxy_pass http://{gateway};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}

        location = /.gatehouse/auth {{
            internal;
            proxy_pass http://{gateway};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}

        location / {{
            auth_request /.gatehouse/auth;
            auth_request_set $gatehouse_user   $upstream_http_x_remote_user;
            auth_request_set $gatehouse_email  $upstream_http_x_remote_email;
            auth_request_set $gatehouse_name   $upstream_http_x_remote_name;
            auth_request_set $gatehouse_groups $upstream_http_x_remote_groups;
            auth_request_set $gatehouse_login  $upstream_http_location;
            error_page 401 =302 $scheme://$http_host$gatehouse_login;

            # proxy_set_header replaces whatever the client sent.
            proxy_set_header X-Remote-User   $gatehouse_user;
            proxy_set_header X-Remote-Email  $gatehouse_email;
            proxy_set_header X-Remote-Name   $gatehouse_name;
            proxy_set_header X-Remote-Groups $gatehouse_groups;
            proxy_pass http://{app};
        }}
    }}
"#
    )
}

/// README's Caddyfile site block.
pub fn caddy_site(listen: SocketAddr, gateway: SocketAddr, app: SocketAddr) -> String {
    format!(
        r#"
http://{listen} {{
    handle /.gatehouse/* {{
        reverse_proxy {gateway}
    }}
    handle {{
        # Spellings of the identity headers that PHP or CGI read as
        # HTTP_X_REMOTE_USER too: copy_headers only replaces X-Remote-*.
        request_header -X_Remote_*
        request_header -X.Remote.*
        forward_auth {gateway} {{
            uri /.gatehouse/auth
            copy_headers X-Remote-User X-Remote-Email X-Remote-Name X-Remote-Groups
        }}
        reverse_proxy {app}
    }}
}}
"#
    )
}

impl Front {
    /// nginx or Caddy on a free port, in front of `gateway` and `app`; `None`
    /// (skip) when the program is missing outside CI.
    pub fn start(kind: Kind, gateway: SocketAddr, app: SocketAddr) -> Option<Front> {
        let program = find(kind)?;
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let d = dir.path().display().to_string();
        let mut cmd = match kind {
            Kind::Nginx => {
                let conf = format!(
                    "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                     events {{ worker_connections 256; }}\n\
                     http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
                     fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n{}\n}}\n",
                    nginx_server(addr, gateway, app)
                );
                let conf = if is_root() {
                    conf
                } else {
                    conf.replacen("user root;\n", "", 1)
                };
                std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
                let mut c = Command::new(program);
                c.arg("-p")
                    .arg(dir.path())
                    .arg("-c")
                    .arg(dir.path().join("nginx.conf"))
                    .args(["-g", "daemon off;"]);
                c
            }
            Kind::Caddy => {
                let conf = format!(
                    "{{\n    admin off\n    auto_https off\n}}\n{}",
                    caddy_site(addr, gateway, app)
                );
                std::fs::write(dir.path().join("Caddyfile"), conf).unwrap();
                let mut c = Command::new(program);
                c.args(["run", "--config"])
                    .arg(dir.path().join("Caddyfile"))
                    .args(["--adapter", "caddyfile"])
                    .env("HOME", dir.path())
                    .env("XDG_DATA_HOME", dir.path().join("data"))
                    .env("XDG_CONFIG_HOME", dir.path().join("config"));
                c
            }
        };
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut front = Front { addr, child, dir };
        front.wait_ready();
        Some(front)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(self.addr).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the proxy exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// What the proxy wrote (stderr, nginx's error log).
    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

impl Drop for Front {
    fn drop(&mut self) {
        // TERM, so that an nginx master takes its worker with it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
