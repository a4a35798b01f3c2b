//! `gatehouse demo`: the gateway in front of a built-in app that shows the
//! identity headers it receives, with a demo user whose password is printed.
//! It is the shortest way to see what an app behind gatehouse gets.

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use ring::rand::{SecureRandom, SystemRandom};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::{password, User, UserDb};
use crate::config::*;
use crate::gateway::state::Snapshot;
use crate::server::{serve, ProcessFlags};
use crate::ui::{self, Slot};

pub const DEMO_USER: &str = "demo";

/// The demo app: echoes the request it got, as a page or as JSON.
pub struct DemoApp;

fn echo(http: &ServerSession) -> serde_json::Value {
    let req = http.req_header();
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into(),
            )
        })
        .collect();
    serde_json::json!({
        "method": req.method.as_str(),
        "path": req.uri.path_and_query().map_or("/", |p| p.as_str()),
        "headers": headers,
    })
}

fn page(http: &ServerSession) -> String {
    let req = http.req_header();
    let get = |name: &str| {
        req.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let user = get("x-remote-user");
    let greeting = match &user {
        Some(u) => format!("Hello, {}.", ui::escape(u)),
        None => "Nobody is signed in on this request.".to_string(),
    };
    let rows: String = req
        .headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-"))
        .map(|(k, v)| {
            format!(
                "<tr><th>{}</th><td>{}</td></tr>",
                ui::escape(k.as_str()),
                ui::escape(&String::from_utf8_lossy(v.as_bytes()))
            )
        })
        .collect();
    let content = format!(
        "<h1>Demo app</h1><p>{greeting}</p>\
         <p>This app has no login code. The gateway signed you in and tells it who you are in these headers:</p>\
         <table>{rows}</table>\
         <p class=\"aside\"><a href=\"/.gatehouse/logout\">Sign out</a> · <a href=\"/public/\">a public page</a></p>"
    );
    ui::render(
        ui::LAYOUT,
        &[
            ("title", Slot::Text("Demo app")),
            ("prefix", Slot::Text("/.gatehouse")),
            ("content", Slot::Html(&content)),
        ],
    )
}

#[async_trait]
impl ServeHttp for DemoApp {
    async fn response(&self, http: &mut ServerSession) -> http::Response<Vec<u8>> {
        // Drain any body so the connection can be reused.
        while let Ok(Some(_)) = http.read_request_body().await {}
        let wants_json = http
            .req_header()
            .headers
            .get("accept")
            .is_some_and(|v| v.as_bytes().windows(16).any(|w| w == b"application/json"));
        let (content_type, body) = if wants_json {
            ("application/json", echo(http).to_string())
        } else {
            ("text/html; charset=utf-8", page(http))
        };
        http::Response::builder()
            .status(200)
            .header("Content-Type", content_type)
            .header("Content-Length", body.len())
            .body(body.into_bytes())
            .unwrap_or_default()
    }
}

/// The settings of the demo: one login route and one public route to the app.
pub fn demo_settings(listen: SocketAddr, app: SocketAddr) -> Settings {
    let route = |prefix: &str, access| Route {
        host: None,
        path_prefix: prefix.into(),
        upstreams: vec![app],
        access,
        groups: vec![],
    };
    Settings {
        source: PathBuf::from("(demo)"),
        server: ServerSettings {
            listen: vec![listen],
            prefix: "/.gatehouse".into(),
            threads: 1,
            secret_file: None,
            trusted_proxies: vec![],
            logout_paths: vec![],
            admin_listen: None,
            admin_token: None,
            admin_hosts: vec![],
            admin_allow_unauthenticated: false,
            client_limits: ClientLimits::default(),
            state_dir: None,
            grace_period: Duration::from_secs(1),
            upgrade_sock: PathBuf::from("/tmp/gatehouse_demo_upgrade.sock"),
            pid_file: PathBuf::from("/tmp/gatehouse_demo.pid"),
        },
        routes: vec![route("/public/", Access::Public), route("/", Access::Login)],
        users_file: PathBuf::from("(demo)"),
        session: SessionSettings {
            store: StoreKind::Memory,
            cookie_secure: false,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(24 * 3600),
            max_devices: 2,
            on_device_limit: OnDeviceLimit::Ask,
            groups: Default::default(),
            invalidate_on_restart: true,
        },
        schedules: vec![],
        identity: IdentitySettings::defaults(),
        login: LoginSettings {
            max_failures: 5,
            failure_window: Duration::from_secs(300),
            ban_time: Duration::from_secs(900),
            max_concurrent_hashes: 2,
            min_password_length: 10,
            failure_delay: Duration::from_secs(1),
        },
        ui: UiSettings {
            title: "Sign in to the demo".into(),
        },
    }
}

fn random_password() -> Result<String, String> {
    let mut bytes = [0u8; 9];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "no randomness available".to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn run_demo(listen: SocketAddr, app: SocketAddr) -> Result<(), String> {
    let secret = random_password()?;
    let hash = password::hash_password(&secret)?;
    let user = User {
        username: DEMO_USER.into(),
        password_fingerprint: password::fingerprint(&hash),
        password_hash: hash,
        name: Some("Demo User".into()),
        email: Some("demo@example.com".into()),
        groups: vec!["staff".to_string()].into(),
        max_devices: None,
        disabled: false,
    };
    let snapshot = Snapshot::new(demo_settings(listen, app), UserDb::from_users([user]));
    let banner = format!("gatehouse demo\n  open      http://{listen}/\n  user      {DEMO_USER}\n  password  {secret}\n  (the demo app itself listens on {app}; stop with Ctrl-C)");
    // A closed stdout (the reader went away) must not stop the demo.
    let mut out = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut out, format!("{banner}\n").as_bytes());
    let _ = std::io::Write::flush(&mut out);
    drop(out);
    serve(snapshot, ProcessFlags::default(), |server, _shared| {
        let mut service = Service::new("demo app".to_string(), DemoApp);
        service.add_tcp(&app.to_string());
        server.add_service(service);
        Ok(())
    })
}
