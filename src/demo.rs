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

use crate::auth::file::edit;
use crate::auth::{password, UserDb};
use crate::config::*;
use crate::gateway::state::Snapshot;
use crate::listeners::{bind_all, OnBound, Wanted};
use crate::server::{serve, ProcessFlags};
use crate::ui;

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
    // A public route reaches the app without a login: say so, rather than
    // tell a signed-out visitor the gateway signed them in.
    let greeting = match &user {
        Some(u) => format!(
            "<p>Hello, {}.</p><p>This app has no login code. The gateway signed you in and tells it who you are in these headers:</p>",
            ui::escape(u)
        ),
        None => "<p>Nobody is signed in on this request.</p><p>This page is on a public route: the gateway lets everyone through, and adds identity headers only for a signed-in visitor. <a href=\"/\">Sign in</a> to see them. The headers this app received:</p>".to_string(),
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
        "<h1>Demo app</h1>{greeting}\
         <table>{rows}</table>\
         <p class=\"aside\"><a href=\"/.gatehouse/logout\">Sign out</a> · <a href=\"/public/\">a public page</a></p>"
    );
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Demo app</title>\n<link rel=\"stylesheet\" href=\"/.gatehouse/assets/gatehouse.css\">\n\
         </head>\n<body>\n<main class=\"card\">\n{content}\n</main>\n</body>\n</html>\n"
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
        upstream_options: Default::default(),
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
            // Per port, so two demos on one machine never share them.
            upgrade_sock: std::env::temp_dir()
                .join(format!("gatehouse-demo-{}.upgrade.sock", listen.port())),
            pid_file: std::env::temp_dir().join(format!("gatehouse-demo-{}.pid", listen.port())),
            tls: None,
        },
        routes: vec![route("/public/", Access::Public), route("/", Access::Login)],
        users_file: Some(PathBuf::from("(demo)")),
        users_sql: None,
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
            password_url: None,
            // The built-in pages are proven by the ui tests; empty ones
            // only if that proof is broken.
            pages: ui::Ui::builtin().unwrap_or_else(|_| ui::Ui::empty()),
            idle_warning: Duration::from_secs(120),
            // The demo shows the idle warning without any change to its app.
            inject_session_script: true,
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

/// Where the demo keeps its users file (the password page rewrites it) and
/// its admin token: one directory per gateway port, owner-only.
fn demo_dir(listen: SocketAddr) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("gatehouse-demo-{}", listen.port()));
    let shown = dir.display();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {shown}: {e}"))?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| format!("cannot restrict {shown}: {e}"))?;
    Ok(dir)
}

/// A fresh users file holding the demo user with a new password.
fn write_demo_users(file: &std::path::Path, password: &str) -> Result<UserDb, String> {
    std::fs::write(
        file,
        "# gatehouse demo: the password page rewrites this file\n",
    )
    .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    edit::add_user(
        file,
        DEMO_USER,
        &edit::NewUser {
            password_hash: password::hash_password(password)?,
            name: Some("Demo User".into()),
            email: Some("demo@example.com".into()),
            groups: vec!["staff".into()],
        },
    )
}

pub fn run_demo(listen: SocketAddr, app: SocketAddr, admin: SocketAddr) -> Result<(), String> {
    let secret = random_password()?;
    let dir = demo_dir(listen)?;
    let users_path = dir.join("users.toml");
    let users = write_demo_users(&users_path, &secret)?;
    let token = random_password()? + &random_password()?;
    let token_path = dir.join("admin.token");
    crate::atomic_file::replace(&token_path, token.as_bytes())?;

    let mut settings = demo_settings(listen, app);
    settings.users_file = Some(users_path);
    settings.server.admin_listen = Some(admin);
    settings.server.admin_token = Some(token);
    let snapshot = Snapshot::new(settings, users);
    let banner = format!(
        "gatehouse demo\n  open      http://{listen}/\n  user      {DEMO_USER}\n  password  {secret}\n  \
         sessions  gatehouse sessions list --admin http://{admin} --token-file {}\n  \
         (the demo app itself listens on {app}; stop with Ctrl-C)",
        token_path.display()
    );
    // A closed stdout (the reader went away) must not stop the demo.
    let mut out = std::io::stdout().lock();
    let _ = std::io::Write::write_all(&mut out, format!("{banner}\n").as_bytes());
    let _ = std::io::Write::flush(&mut out);
    drop(out);
    serve(snapshot, ProcessFlags::default(), |server, _shared| {
        let sockets = bind_all(&[Wanted {
            addr: app,
            key: "demo --app-listen",
        }])?;
        let mut service = Service::new("demo app".to_string(), DemoApp);
        service.add_tcp(&app.to_string());
        Ok(vec![server.add_service(OnBound::new(service, sockets))])
    })
}
