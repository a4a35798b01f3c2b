//! The configuration file as written: serde structs that mirror the TOML,
//! unknown keys refused. Nothing here is trusted yet; `settings.rs` turns it
//! into the validated `Settings` the gateway runs on.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteSection>,
    pub users: UsersSection,
    #[serde(default)]
    pub session: SessionSection,
    #[serde(default)]
    pub invalidation: InvalidationSection,
    #[serde(default)]
    pub identity: IdentitySection,
    #[serde(default)]
    pub login: LoginSection,
    #[serde(default)]
    pub ui: UiSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: Option<Vec<String>>,
    pub prefix: Option<String>,
    pub threads: Option<usize>,
    pub secret_file: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub logout_paths: Option<Vec<String>>,
    pub admin_listen: Option<String>,
    pub admin_token_file: Option<String>,
    pub admin_hosts: Option<Vec<String>>,
    pub admin_allow_unauthenticated: Option<bool>,
    pub request_header_timeout: Option<String>,
    pub max_request_header_bytes: Option<usize>,
    pub form_body_timeout: Option<String>,
    pub state_dir: Option<String>,
    pub grace_period: Option<String>,
    pub upgrade_sock: Option<String>,
    pub pid_file: Option<String>,
    pub tls: Option<super::tls::TlsSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidationSection {
    #[serde(default)]
    pub schedule: Vec<ScheduleSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    pub cron: String,
    pub timezone: Option<String>,
    pub exempt_groups: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    /// Absent: the route only describes policy for a proxy in front
    /// (`GET {prefix}/auth`); the gateway itself answers it with 404.
    pub upstream: Option<Upstreams>,
    pub access: Access,
    pub groups: Option<Vec<String>>,
    // How the gateway reaches the upstream (validated in `upstream.rs`).
    pub upstream_tls: Option<bool>,
    pub upstream_ca: Option<String>,
    pub upstream_sni: Option<String>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub health_path: Option<String>,
    pub health_interval: Option<String>,
}

/// `upstream = "127.0.0.1:8000"` or `upstream = ["10.0.0.1:80", "10.0.0.2:80"]`.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected an address like \"127.0.0.1:8000\" or a list of them"
)]
pub enum Upstreams {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Public,
    Login,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersSection {
    pub file: Option<String>,
    pub sql: Option<SqlSection>,
}

/// `[users.sql]`: users from the app's own database.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSection {
    pub url: String,
    pub preset: Option<String>,
    pub table: Option<String>,
    pub query: Option<String>,
    pub refresh: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSection {
    pub store: Option<String>,
    pub redis_url: Option<String>,
    pub redis_key_prefix: Option<String>,
    pub redis_timeout: Option<String>,
    pub redis_cache_ttl: Option<String>,
    pub cookie_secure: Option<bool>,
    pub idle_timeout: Option<String>,
    pub absolute_timeout: Option<String>,
    pub max_devices: Option<u32>,
    pub on_device_limit: Option<String>,
    pub invalidate_on_restart: Option<bool>,
    #[serde(default)]
    pub groups: std::collections::BTreeMap<String, GroupSection>,
}

/// `[session.groups.NAME]`: stricter limits for members of a group.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSection {
    pub max_devices: Option<u32>,
    pub idle_timeout: Option<String>,
    pub absolute_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    pub user_header: Option<String>,
    pub email_header: Option<String>,
    pub name_header: Option<String>,
    pub groups_header: Option<String>,
    pub strip_prefixes: Option<Vec<String>>,
    pub assertion_header: Option<String>,
    pub assertion_key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSection {
    pub max_failures: Option<u32>,
    pub failure_window: Option<String>,
    pub ban_time: Option<String>,
    pub max_concurrent_hashes: Option<usize>,
    pub min_password_length: Option<usize>,
    pub failure_delay: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiSection {
    pub title: Option<String>,
    pub password_url: Option<String>,
    pub templates_dir: Option<String>,
    pub language: Option<String>,
    pub logo: Option<String>,
    pub logo_url: Option<String>,
    pub accent_color: Option<String>,
    pub focus_color_dark: Option<String>,
    pub idle_warning: Option<String>,
    pub inject_session_script: Option<bool>,
}
