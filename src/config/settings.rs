//! The validated settings the gateway runs on. Everything here has been
//! checked by `validate`; the running code never re-checks it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use super::file::Access;
pub use super::upstream::{HealthCheck, UpstreamCa, UpstreamOptions, UpstreamTls};

#[derive(Debug, Clone)]
pub struct Settings {
    /// The file these settings came from (for messages and reloads).
    pub source: PathBuf,
    pub server: ServerSettings,
    pub routes: Vec<Route>,
    /// `users.file`; consulted before `users_sql`.
    pub users_file: Option<PathBuf>,
    pub users_sql: Option<SqlSettings>,
    pub session: SessionSettings,
    /// `[[invalidation.schedule]]` entries.
    pub schedules: Vec<std::sync::Arc<crate::session::schedule::Schedule>>,
    pub identity: IdentitySettings,
    pub login: LoginSettings,
    pub ui: UiSettings,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: Vec<SocketAddr>,
    /// Where the gateway's own pages live, e.g. `/.gatehouse`; no trailing `/`.
    pub prefix: String,
    pub threads: usize,
    pub secret_file: Option<PathBuf>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Normalised paths of the app's own logout URLs.
    pub logout_paths: Vec<String>,
    /// Health, readiness, metrics and the admin API; `None` when disabled.
    pub admin_listen: Option<SocketAddr>,
    /// Bearer token for the admin API, read from `admin_token_file`.
    pub admin_token: Option<String>,
    /// Host names (lower-case, no port) the admin listener answers besides
    /// loopback ones; any other `Host` is refused (DNS rebinding).
    pub admin_hosts: Vec<String>,
    /// `/api/*` without a token: refused unless the operator opted in.
    pub admin_allow_unauthenticated: bool,
    /// Deadlines and caps on what a client may take its time sending.
    pub client_limits: ClientLimits,
    /// Where the memory store keeps its snapshot across planned restarts.
    pub state_dir: Option<PathBuf>,
    /// How long a graceful stop lets in-flight requests finish.
    pub grace_period: Duration,
    /// Where a new binary (`run -u`) takes over the listeners of this one.
    pub upgrade_sock: PathBuf,
    /// Written when running as a daemon (`run -d`).
    pub pid_file: PathBuf,
    /// `[server.tls]`: TLS listeners; with them, plain listeners send
    /// browsers to https.
    pub tls: Option<TlsSettings>,
}

/// `[server.tls]`, certificates loaded and checked.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub listen: Vec<SocketAddr>,
    /// Offered by SNI; the first is the default.
    pub certs: std::sync::Arc<crate::tls::certs::CertSet>,
    /// `Strict-Transport-Security: max-age` on answers over TLS.
    pub hsts: Option<Duration>,
}

/// What a slow or oversized client may hold: a request head must arrive
/// whole within `request_header_timeout` and within
/// `max_request_header_bytes`; a form posted to the gateway's own pages
/// within `form_body_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    pub request_header_timeout: Duration,
    pub max_request_header_bytes: usize,
    pub form_body_timeout: Duration,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            request_header_timeout: Duration::from_secs(10),
            max_request_header_bytes: 64 * 1024,
            form_body_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Lower-case host without port; `None` matches any host.
    pub host: Option<String>,
    /// Normalised path prefix, always starting with `/`.
    pub path_prefix: String,
    pub upstreams: Vec<SocketAddr>,
    pub access: Access,
    /// Any of these groups may pass; empty means any signed-in user.
    pub groups: Vec<String>,
    /// How `upstreams` are reached and checked.
    pub upstream_options: UpstreamOptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Redis(RedisSettings),
}

/// `session.store = "redis"` and its `redis_*` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub target: crate::session::store::redis::conn::Target,
    /// Every key starts with this (gateways of different apps can share
    /// one Redis).
    pub key_prefix: String,
    /// Every Redis command gives up after this long.
    pub timeout: Duration,
    /// How long an instance may serve a session from its own cache.
    pub cache_ttl: Duration,
}

/// What happens when a user at their device limit signs in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDeviceLimit {
    /// Refuse the new login.
    Reject,
    /// Sign out the least recently used session.
    EvictOldest,
    /// Show the other devices and let the user pick one to sign out.
    Ask,
}

impl OnDeviceLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            OnDeviceLimit::Reject => "reject",
            OnDeviceLimit::EvictOldest => "evict_oldest",
            OnDeviceLimit::Ask => "ask",
        }
    }
}

/// `[session.groups.NAME]`; `None` keeps the general value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupOverride {
    pub max_devices: Option<u32>,
    pub idle_timeout: Option<Duration>,
    pub absolute_timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub store: StoreKind,
    pub cookie_secure: bool,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// 0 = unlimited.
    pub max_devices: u32,
    pub on_device_limit: OnDeviceLimit,
    pub groups: std::collections::BTreeMap<String, GroupOverride>,
    /// Sessions created before the gateway started are invalid.
    pub invalidate_on_restart: bool,
}

/// Header names as configured (their case is kept for the upstream).
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub user_header: String,
    pub email_header: String,
    pub name_header: String,
    pub groups_header: String,
    pub strip_prefixes: Vec<String>,
    /// The signed identity assertion, for apps that verify.
    pub assertion: Option<AssertionSettings>,
}

/// `identity.assertion_header` with the key from `assertion_key_file`,
/// made ready to sign once (its `Debug` hides the secret).
#[derive(Debug, Clone)]
pub struct AssertionSettings {
    pub header: String,
    pub key: ring::hmac::Key,
}

#[derive(Debug, Clone)]
pub struct LoginSettings {
    /// Failed logins for one user name within `failure_window` that start a
    /// ban (an IP address gets ten times as many); 0 turns throttling off.
    pub max_failures: u32,
    pub failure_window: Duration,
    pub ban_time: Duration,
    pub max_concurrent_hashes: usize,
    pub min_password_length: usize,
    /// A login form that is refused (wrong password, unknown user,
    /// throttled, busy, bad form) is answered no sooner than this after it
    /// arrived, so a client that loops on refusals loops slowly.
    pub failure_delay: Duration,
}

#[derive(Debug, Clone)]
pub struct UiSettings {
    pub title: String,
    /// The app's own password page, linked instead of the gateway's when
    /// the app owns the passwords (`[users.sql]`).
    pub password_url: Option<String>,
    /// The pages: templates (built-in or from `ui.templates_dir`), the
    /// message catalog, stylesheet and logo, checked at load.
    pub pages: crate::ui::Ui,
    /// session.js warns this long before the idle timeout (zero: never).
    pub idle_warning: Duration,
    /// Insert the session.js tag into the HTML answers of login routes.
    pub inject_session_script: bool,
}

impl SessionSettings {
    /// `__Host-` cookies must be Secure, so the name follows `cookie_secure`.
    pub fn cookie_name(&self) -> &'static str {
        if self.cookie_secure {
            crate::wire::cookie::SESSION_SECURE
        } else {
            crate::wire::cookie::SESSION
        }
    }

    /// `Set-Cookie` that makes the browser forget its session cookie.
    pub fn clear_cookie(&self) -> String {
        crate::wire::cookie::clear(self.cookie_name(), self.cookie_secure)
    }

    pub fn csrf_cookie_name(&self) -> &'static str {
        if self.cookie_secure {
            crate::wire::cookie::CSRF_SECURE
        } else {
            crate::wire::cookie::CSRF
        }
    }
}

impl IdentitySettings {
    pub fn defaults() -> Self {
        IdentitySettings {
            user_header: "X-Remote-User".into(),
            email_header: "X-Remote-Email".into(),
            name_header: "X-Remote-Name".into(),
            groups_header: "X-Remote-Groups".into(),
            strip_prefixes: [
                "X-Remote-",
                "Remote-",
                "X-Auth-Request-",
                "X-Forwarded-User",
                "X-Forwarded-Email",
            ]
            .map(String::from)
            .to_vec(),
            assertion: None,
        }
    }
}

/// `[users.sql]`, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct SqlSettings {
    /// May hold a database password: never printed (see `Debug`).
    pub url: String,
    pub dialect: crate::auth::sql::Dialect,
    pub source: crate::auth::sql::Source,
    /// A signed-in user's record is re-read at most this often.
    pub refresh: Duration,
    /// Every query (and waiting for a connection) gives up after this long.
    pub timeout: Duration,
}

impl std::fmt::Debug for SqlSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSettings")
            .field("dialect", &self.dialect)
            .field("source", &self.source)
            .field("refresh", &self.refresh)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
