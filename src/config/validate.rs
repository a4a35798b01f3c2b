//! Turns the file model into `Settings`, reporting every mistake with the
//! key, the line and what was expected.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use super::error::{line_at, ConfigError, ConfigErrors, ErrorSink, KeyPath};
use super::file::{FileConfig, RouteSection, Upstreams};
use super::parse_duration;
use super::settings::*;
use crate::gateway::normalize::{normalize_host, normalize_path};
use crate::session::schedule::Schedule;
use crate::session::store::redis::conn::Target;

const DEFAULT_PREFIX: &str = "/.gatehouse";
/// `login.min_password_length` when the config does not say.
pub const DEFAULT_MIN_PASSWORD_LENGTH: usize = 10;

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
        }])
    })?;
    parse(path, &source)
}

/// Validates config text that came from `path` (used for messages and to
/// resolve relative paths).
pub fn parse(path: &Path, source: &str) -> Result<Settings, ConfigErrors> {
    let model: FileConfig = deserialize(path, source)?;
    let mut sink = ErrorSink::new(path, source);
    let settings = validate(path, model, &mut sink);
    if sink.is_empty() {
        Ok(settings)
    } else {
        Err(ConfigErrors(sink.errors))
    }
}

/// serde with the key path kept, so even type errors name their key.
pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(
    path: &Path,
    source: &str,
) -> Result<T, ConfigErrors> {
    let syntax = |e: toml::de::Error| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: e.span().map(|s| line_at(source, s.start)),
            key: String::new(),
            message: e.message().trim().to_string(),
        }])
    };
    let de = toml::Deserializer::parse(source).map_err(syntax)?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut key = KeyPath::root();
        for seg in e.path().iter() {
            key = match seg {
                serde_path_to_error::Segment::Seq { index } => key.index(*index),
                serde_path_to_error::Segment::Map { key: k } => key.key(k),
                serde_path_to_error::Segment::Enum { variant } => key.key(variant),
                serde_path_to_error::Segment::Unknown => key,
            };
        }
        let inner = e.inner();
        let mut sink = ErrorSink::new(path, source);
        sink.push(&key, inner.message().trim());
        if let (Some(span), Some(first)) = (inner.span(), sink.errors.first_mut()) {
            first.line = Some(line_at(source, span.start));
        }
        ConfigErrors(sink.errors)
    })
}

/// Resolves a path from the config against the config file's directory.
pub(crate) fn relative_to(config: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match config.parent() {
        Some(dir) => dir.join(p),
        None => p.to_path_buf(),
    }
}

fn validate(path: &Path, model: FileConfig, sink: &mut ErrorSink) -> Settings {
    let root = KeyPath::root();
    let server = validate_server(path, model.server, &root.key("server"), sink);
    let routes = validate_routes(path, model.routes, sink);
    let redis = model.session.store.as_deref() == Some("redis");
    let session = validate_session(model.session, &root.key("session"), sink);
    if redis && server.secret_file.is_none() {
        sink.push(
            &root.key("server").key("secret_file"),
            "store = \"redis\" needs a secret shared by every gateway of the fleet: set server.secret_file",
        );
    }
    if !session.invalidate_on_restart && !redis && server.state_dir.is_none() {
        sink.push(
            &root.key("session").key("invalidate_on_restart"),
            "keeping sessions across restarts needs somewhere to keep them: set server.state_dir",
        );
    }
    let mut schedules = Vec::new();
    for (i, entry) in model.invalidation.schedule.into_iter().enumerate() {
        let key = root.key("invalidation").key("schedule").index(i);
        let tz = entry.timezone.unwrap_or_else(|| "UTC".into());
        match Schedule::parse(&entry.cron, &tz, entry.exempt_groups.unwrap_or_default()) {
            Ok(s) => schedules.push(std::sync::Arc::new(s)),
            Err(msg) => {
                let field = if msg.contains("time zone") {
                    "timezone"
                } else {
                    "cron"
                };
                sink.push(&key.key(field), msg);
            }
        }
    }
    let identity = validate_identity(path, model.identity, &root.key("identity"), sink);

    let key = root.key("login").key("max_concurrent_hashes");
    let max_concurrent_hashes = model
        .login
        .max_concurrent_hashes
        .unwrap_or_else(default_hash_slots);
    if max_concurrent_hashes == 0 {
        sink.push(&key, "expected a number of at least 1");
    }
    let login_key = root.key("login");
    let failure_window = duration_or(
        sink,
        &login_key.key("failure_window"),
        model.login.failure_window,
        300,
    );
    let ban_time = duration_or(sink, &login_key.key("ban_time"), model.login.ban_time, 900);
    if failure_window > std::time::Duration::from_secs(3600) {
        sink.push(&login_key.key("failure_window"), "expected at most \"1h\"");
    }
    // "0s" answers refusals at once.
    let failure_delay = duration_or_off(
        sink,
        &login_key.key("failure_delay"),
        model.login.failure_delay,
        1,
    );
    if failure_delay > std::time::Duration::from_secs(10) {
        sink.push(&login_key.key("failure_delay"), "expected at most \"10s\"");
    }
    let max_failures = model.login.max_failures.unwrap_or(5);
    let min_password_length = model
        .login
        .min_password_length
        .unwrap_or(DEFAULT_MIN_PASSWORD_LENGTH);
    if !(1..=1024).contains(&min_password_length) {
        sink.push(
            &root.key("login").key("min_password_length"),
            "expected a number from 1 to 1024",
        );
    }

    let (users_file, users_sql) =
        super::users::validate_users(path, model.users, &root.key("users"), sink);
    let pages = super::ui::validate_pages(path, &model.ui, &root.key("ui"), sink);
    let password_url = model.ui.password_url;
    if password_url.as_deref().is_some_and(|u| {
        !(u.starts_with("https://")
            || u.starts_with("http://")
            || (u.starts_with('/') && !u.starts_with("//")))
            || u.chars().any(|c| c.is_control() || c.is_whitespace())
    }) {
        sink.push(
            &root.key("ui").key("password_url"),
            "expected an http(s) URL or a path starting with `/`",
        );
    }

    Settings {
        source: path.to_path_buf(),
        server,
        routes,
        users_file,
        users_sql,
        session,
        schedules,
        identity,
        login: LoginSettings {
            max_failures,
            failure_window,
            ban_time,
            max_concurrent_hashes,
            min_password_length,
            failure_delay,
        },
        ui: UiSettings {
            pages,
            title: model.ui.title.unwrap_or_else(|| "Sign in".into()),
            password_url,
            idle_warning: duration_or_off(
                sink,
                &root.key("ui").key("idle_warning"),
                model.ui.idle_warning,
                120,
            ),
            inject_session_script: model.ui.inject_session_script.unwrap_or(false),
        },
    }
}

fn validate_server(
    path: &Path,
    s: super::file::ServerSection,
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> ServerSettings {
    let listen_raw = s.listen.unwrap_or_else(|| vec!["127.0.0.1:8080".into()]);
    if listen_raw.is_empty() {
        sink.push(&key.key("listen"), "expected at least one address");
    }
    let mut listen = Vec::new();
    for (i, a) in listen_raw.iter().enumerate() {
        match a.parse::<SocketAddr>() {
            Ok(addr) => listen.push(addr),
            Err(_) => sink.push(
                &key.key("listen").index(i),
                format!("expected an IP address and port like \"127.0.0.1:8080\", found {a:?}"),
            ),
        }
    }

    let prefix = s.prefix.unwrap_or_else(|| DEFAULT_PREFIX.into());
    let prefix_ok = prefix.len() > 1
        && prefix.starts_with('/')
        && !prefix.ends_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-~".contains(&b))
        && normalize_path(&prefix).as_deref() == Ok(prefix.as_str());
    if !prefix_ok {
        sink.push(
            &key.key("prefix"),
            format!("expected a path like \"/.gatehouse\" (leading `/`, no trailing `/`), found {prefix:?}"),
        );
    }

    let threads = s
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !(1..=1024).contains(&threads) {
        sink.push(&key.key("threads"), "expected a number from 1 to 1024");
    }

    let secret_file = s.secret_file.map(|f| {
        let resolved = relative_to(path, &f);
        read_key_file(&resolved, &key.key("secret_file"), "secret", sink);
        resolved
    });

    let mut trusted_proxies = Vec::new();
    for (i, cidr) in s.trusted_proxies.unwrap_or_default().iter().enumerate() {
        let parsed = cidr
            .parse::<ipnet::IpNet>()
            .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => sink.push(
                &key.key("trusted_proxies").index(i),
                format!("expected an IP address or CIDR like \"10.0.0.0/8\", found {cidr:?}"),
            ),
        }
    }

    let mut logout_paths = Vec::new();
    for (i, p) in s.logout_paths.unwrap_or_default().iter().enumerate() {
        match normalize_path(p) {
            Ok(norm) if p.starts_with('/') => logout_paths.push(norm),
            _ => sink.push(
                &key.key("logout_paths").index(i),
                format!("expected a path starting with `/`, found {p:?}"),
            ),
        }
    }

    let admin_listen = match s.admin_listen.as_deref() {
        None => Some(SocketAddr::from(([127, 0, 0, 1], 9091))),
        Some("") => None,
        Some(a) => match a.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                sink.push(
                    &key.key("admin_listen"),
                    format!("expected an IP address and port like \"127.0.0.1:9091\" (or \"\" to disable), found {a:?}"),
                );
                None
            }
        },
    };
    let admin_token = s.admin_token_file.and_then(|f| {
        let resolved = relative_to(path, &f);
        match std::fs::read_to_string(&resolved) {
            Ok(t) if t.trim().len() >= 16 => Some(t.trim().to_string()),
            Ok(_) => {
                sink.push(
                    &key.key("admin_token_file"),
                    "expected a token of at least 16 characters in the file",
                );
                None
            }
            Err(e) => {
                sink.push(
                    &key.key("admin_token_file"),
                    format!("cannot read {}: {e}", resolved.display()),
                );
                None
            }
        }
    });
    if admin_listen.is_some_and(|a| !a.ip().is_loopback()) && admin_token.is_none() {
        sink.push(
            &key.key("admin_listen"),
            "the admin API listens beyond this machine: set server.admin_token_file",
        );
    }
    let admin_hosts = validate_admin_hosts(s.admin_hosts, &key.key("admin_hosts"), sink);
    let admin_allow_unauthenticated = s.admin_allow_unauthenticated.unwrap_or(false);
    if admin_allow_unauthenticated && admin_token.is_some() {
        sink.push(
            &key.key("admin_allow_unauthenticated"),
            "a token is set (server.admin_token_file), so the admin API is not open: remove one of the two",
        );
    }
    let client_limits = validate_client_limits(
        [s.request_header_timeout, s.form_body_timeout],
        s.max_request_header_bytes,
        key,
        sink,
    );
    let state_dir = s.state_dir.map(|d| relative_to(path, &d));
    let grace_period = match s
        .grace_period
        .as_deref()
        .map(|t| humantime::parse_duration(t.trim()))
    {
        None => std::time::Duration::from_secs(5),
        Some(Ok(d)) => d,
        Some(Err(_)) => {
            sink.push(
                &key.key("grace_period"),
                "expected a duration like \"5s\" (\"0s\" stops at once)",
            );
            std::time::Duration::from_secs(5)
        }
    };

    let upgrade_sock = match s.upgrade_sock.as_deref() {
        Some(p) => relative_to(path, p),
        None => per_config_path(path, "upgrade.sock"),
    };
    let pid_file = match s.pid_file.as_deref() {
        Some(p) => relative_to(path, p),
        None => per_config_path(path, "pid"),
    };
    let taken: Vec<_> = (listen.iter().map(|a| (*a, "server.listen")))
        .chain(admin_listen.map(|a| (a, "server.admin_listen")))
        .collect();
    let tls = s
        .tls
        .and_then(|t| super::tls::validate_tls(path, t, &taken, &key.key("tls"), sink));

    ServerSettings {
        listen,
        prefix,
        threads,
        secret_file,
        trusted_proxies,
        logout_paths,
        admin_listen,
        admin_token,
        admin_hosts,
        admin_allow_unauthenticated,
        client_limits,
        state_dir,
        grace_period,
        upgrade_sock,
        pid_file,
        tls,
    }
}

/// `$TMPDIR/gatehouse-HASH.EXT`, HASH from the config file's absolute path:
/// two gateways with different configs on one machine never share the file,
/// and a binary upgrade (the same config, `run -u`) finds the old process's.
fn per_config_path(config: &Path, ext: &str) -> PathBuf {
    let absolute = std::fs::canonicalize(config).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(config))
            .unwrap_or_else(|_| config.to_path_buf())
    });
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        absolute.as_os_str().as_encoded_bytes(),
    );
    let short = crate::hex::encode(digest.as_ref().get(..6).unwrap_or_default());
    std::env::temp_dir().join(format!("gatehouse-{short}.{ext}"))
}

/// `server.admin_hosts`: names the admin listener answers besides loopback
/// ones, kept in the form `normalize_host` gives a `Host` header.
fn validate_admin_hosts(
    raw: Option<Vec<String>>,
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> Vec<String> {
    let mut hosts = Vec::new();
    for (i, h) in raw.unwrap_or_default().iter().enumerate() {
        match normalize_host(h) {
            Ok(norm) if norm == h.trim().to_ascii_lowercase() => hosts.push(norm),
            _ => sink.push(
                &key.index(i),
                format!("expected a host name or IP address without scheme or port, like \"admin.internal\" or \"[::1]\", found {h:?}"),
            ),
        }
    }
    hosts
}

/// `server.request_header_timeout`, `server.max_request_header_bytes` and
/// `server.form_body_timeout`.
fn validate_client_limits(
    [header_timeout, body_timeout]: [Option<String>; 2],
    max_header_bytes: Option<usize>,
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> ClientLimits {
    let d = ClientLimits::default();
    let mut deadline = |name: &str, value: Option<String>, default: std::time::Duration| {
        let k = key.key(name);
        let t = duration_or(sink, &k, value, default.as_secs());
        if t > std::time::Duration::from_secs(300) {
            sink.push(&k, "expected at most \"5m\"");
        }
        t
    };
    let request_header_timeout = deadline(
        "request_header_timeout",
        header_timeout,
        d.request_header_timeout,
    );
    let form_body_timeout = deadline("form_body_timeout", body_timeout, d.form_body_timeout);
    let max_request_header_bytes = max_header_bytes.unwrap_or(d.max_request_header_bytes);
    // Below 1 KiB ordinary browsers fail; above Pingora's own cap the key
    // would promise what Pingora refuses anyway.
    if !(1024..=1_048_575).contains(&max_request_header_bytes) {
        sink.push(
            &key.key("max_request_header_bytes"),
            "expected a number of bytes from 1024 to 1048575",
        );
    }
    ClientLimits {
        request_header_timeout,
        max_request_header_bytes,
        form_body_timeout,
    }
}

fn validate_routes(path: &Path, raw: Vec<RouteSection>, sink: &mut ErrorSink) -> Vec<Route> {
    let key = KeyPath::root().key("route");
    if raw.is_empty() {
        sink.push(&key, "expected at least one [[route]]");
    }
    let mut routes: Vec<Route> = raw
        .into_iter()
        .enumerate()
        .map(|(i, r)| validate_route(path, r, &key.index(i), sink))
        .collect();
    // Two routes for the same host and prefix: which one wins would depend
    // on their order in the file, which no longer decides anything.
    for (j, later) in routes.iter().enumerate() {
        let earlier = routes
            .iter()
            .take(j)
            .position(|r| r.host == later.host && r.path_prefix == later.path_prefix);
        if let Some(i) = earlier {
            let first = sink.locate(&key.index(i));
            sink.push(
                &key.index(j),
                format!(
                    "a second route for host {} and path_prefix {:?} (the first is route[{i}] at {first}): remove one, or give them different prefixes",
                    later.host.as_deref().unwrap_or("(any)"),
                    later.path_prefix,
                ),
            );
        }
    }
    crate::gateway::routing::sort_by_specificity(&mut routes);
    routes
}

fn validate_route(path: &Path, r: RouteSection, key: &KeyPath, sink: &mut ErrorSink) -> Route {
    let host = r.host.as_ref().map(|h| {
        let lower = h.to_ascii_lowercase();
        let ok = !lower.is_empty()
            && lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            sink.push(
                &key.key("host"),
                format!("expected a host name without scheme or port, like \"app.example.com\", found {h:?}"),
            );
        }
        lower
    });

    let raw_prefix = r.path_prefix.clone().unwrap_or_else(|| "/".into());
    let path_prefix = match normalize_path(&raw_prefix) {
        Ok(p) if raw_prefix.starts_with('/') => p,
        _ => {
            sink.push(
                &key.key("path_prefix"),
                format!("expected a path starting with `/`, found {raw_prefix:?}"),
            );
            "/".into()
        }
    };

    let addresses = match &r.upstream {
        None => vec![],
        Some(Upstreams::One(a)) => vec![a.clone()],
        Some(Upstreams::Many(list)) => {
            if list.is_empty() {
                sink.push(
                    &key.key("upstream"),
                    "expected at least one address (leave `upstream` out for a route that only a proxy in front checks with forward auth)",
                );
            }
            list.clone()
        }
    };
    let upstream_options = super::upstream::validate(path, &r, &addresses, key, sink);
    let mut upstreams = Vec::new();
    for (i, a) in addresses.iter().enumerate() {
        let resolved = a.to_socket_addrs().ok().and_then(|mut it| it.next());
        match resolved {
            Some(addr) => upstreams.push(addr),
            None => {
                let k = if addresses.len() == 1 {
                    key.key("upstream")
                } else {
                    key.key("upstream").index(i)
                };
                sink.push(
                    &k,
                    format!("expected a reachable host:port like \"127.0.0.1:8000\", found {a:?}"),
                );
            }
        }
    }

    let groups = r.groups.unwrap_or_default();
    if r.access == Access::Public && !groups.is_empty() {
        sink.push(
            &key.key("groups"),
            "groups only apply to access = \"login\"; a public route lets everyone through",
        );
    }
    for (i, g) in groups.iter().enumerate() {
        if g.trim().is_empty() {
            sink.push(&key.key("groups").index(i), "expected a group name");
        }
    }

    Route {
        host,
        path_prefix,
        upstreams,
        access: r.access,
        groups,
        upstream_options,
    }
}

/// A duration key, or `default_secs` when absent (or, with an error,
/// unreadable).
pub(super) fn duration_or(
    sink: &mut ErrorSink,
    key: &KeyPath,
    value: Option<String>,
    default_secs: u64,
) -> std::time::Duration {
    let default = std::time::Duration::from_secs(default_secs);
    match value {
        None => default,
        Some(text) => parse_duration(&text).unwrap_or_else(|msg| {
            sink.push(key, msg);
            default
        }),
    }
}

/// Half the CPUs, from 1 to 4: during a login flood the proxy threads keep
/// at least half the machine (measured on two cores: four hashes at once
/// took the flooded p99 to 3.7 × quiet, one hash to 1.5 ×).
fn default_hash_slots() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    (cpus / 2).clamp(1, 4)
}

/// Like `duration_or`, for a key whose feature zero ("0", "0s", "0m"...)
/// turns off.
fn duration_or_off(
    sink: &mut ErrorSink,
    key: &KeyPath,
    value: Option<String>,
    default_secs: u64,
) -> std::time::Duration {
    let zero = |text: &str| {
        text.trim() == "0" || humantime::parse_duration(text.trim()).is_ok_and(|d| d.is_zero())
    };
    match value {
        Some(text) if zero(&text) => std::time::Duration::ZERO,
        value => duration_or(sink, key, value, default_secs),
    }
}

/// A file holding at least 32 bytes of `what` (a secret, a key).
fn read_key_file(file: &Path, key: &KeyPath, what: &str, sink: &mut ErrorSink) -> Option<Vec<u8>> {
    match std::fs::read(file) {
        Ok(bytes) if bytes.len() >= 32 => Some(bytes),
        Ok(_) => {
            sink.push(
                key,
                format!("expected a file holding at least 32 bytes of {what}"),
            );
            None
        }
        Err(e) => {
            sink.push(key, format!("cannot read {}: {e}", file.display()));
            None
        }
    }
}

fn validate_session(
    s: super::file::SessionSection,
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> SessionSettings {
    let mut duration = |name: &str, value: Option<String>, default| {
        duration_or(sink, &key.key(name), value, default)
    };
    let idle_timeout = duration("idle_timeout", s.idle_timeout, 30 * 60);
    let absolute_timeout = duration("absolute_timeout", s.absolute_timeout, 24 * 3600);
    let redis_keys_set = [
        ("redis_url", s.redis_url.is_some()),
        ("redis_key_prefix", s.redis_key_prefix.is_some()),
        ("redis_timeout", s.redis_timeout.is_some()),
        ("redis_cache_ttl", s.redis_cache_ttl.is_some()),
    ];
    let redis_timeout = duration("redis_timeout", s.redis_timeout, 1);
    // "0s" turns the cache off (every request asks Redis).
    let redis_cache_ttl = duration_or_off(sink, &key.key("redis_cache_ttl"), s.redis_cache_ttl, 1);
    let store = match s.store.as_deref() {
        None | Some("memory") => {
            for (name, set) in redis_keys_set {
                if set {
                    sink.push(&key.key(name), "only used with store = \"redis\"");
                }
            }
            StoreKind::Memory
        }
        Some("redis") => {
            let target = match s.redis_url.as_deref() {
                None => {
                    sink.push(
                        &key.key("store"),
                        "store = \"redis\" needs session.redis_url (e.g. \"redis://127.0.0.1:6379/0\")",
                    );
                    None
                }
                Some(url) => Target::parse(url)
                    .map_err(|msg| sink.push(&key.key("redis_url"), msg))
                    .ok(),
            };
            let key_prefix = s.redis_key_prefix.unwrap_or_else(|| "gatehouse".into());
            if key_prefix.is_empty()
                || !key_prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                sink.push(
                    &key.key("redis_key_prefix"),
                    "expected letters, digits, '-', '_' or '.'",
                );
            }
            if redis_timeout.is_zero() {
                sink.push(&key.key("redis_timeout"), "expected more than 0s");
            }
            match target {
                Some(target) => StoreKind::Redis(RedisSettings {
                    target,
                    key_prefix,
                    timeout: redis_timeout,
                    cache_ttl: redis_cache_ttl,
                }),
                None => StoreKind::Memory,
            }
        }
        Some(other) => {
            sink.push(
                &key.key("store"),
                format!("expected \"memory\" or \"redis\", found {other:?}"),
            );
            StoreKind::Memory
        }
    };
    let on_device_limit = match s.on_device_limit.as_deref() {
        None | Some("reject") => OnDeviceLimit::Reject,
        Some("evict_oldest") => OnDeviceLimit::EvictOldest,
        Some("ask") => OnDeviceLimit::Ask,
        Some(other) => {
            sink.push(
                &key.key("on_device_limit"),
                format!("expected \"reject\", \"evict_oldest\" or \"ask\", found {other:?}"),
            );
            OnDeviceLimit::Reject
        }
    };
    let mut groups = std::collections::BTreeMap::new();
    for (name, g) in s.groups {
        let gkey = key.key("groups").key(&name);
        let mut optional = |field: &str, value: Option<String>| {
            value.and_then(|text| match parse_duration(&text) {
                Ok(d) => Some(d),
                Err(msg) => {
                    sink.push(&gkey.key(field), msg);
                    None
                }
            })
        };
        let over = GroupOverride {
            max_devices: g.max_devices,
            idle_timeout: optional("idle_timeout", g.idle_timeout),
            absolute_timeout: optional("absolute_timeout", g.absolute_timeout),
        };
        groups.insert(name, over);
    }
    SessionSettings {
        store,
        cookie_secure: s.cookie_secure.unwrap_or(true),
        idle_timeout,
        absolute_timeout,
        max_devices: s.max_devices.unwrap_or(0),
        on_device_limit,
        groups,
        invalidate_on_restart: s.invalidate_on_restart.unwrap_or(true),
    }
}

fn validate_identity(
    path: &Path,
    s: super::file::IdentitySection,
    key: &KeyPath,
    sink: &mut ErrorSink,
) -> IdentitySettings {
    let d = IdentitySettings::defaults();
    let mut header = |name: &str, value: Option<String>, default: String| {
        let v = value.unwrap_or(default);
        if http::HeaderName::from_bytes(v.as_bytes()).is_err() {
            sink.push(
                &key.key(name),
                format!("expected an HTTP header name like \"X-Remote-User\", found {v:?}"),
            );
        }
        v
    };
    let user_header = header("user_header", s.user_header, d.user_header);
    let email_header = header("email_header", s.email_header, d.email_header);
    let name_header = header("name_header", s.name_header, d.name_header);
    let groups_header = header("groups_header", s.groups_header, d.groups_header);
    let strip_prefixes = s.strip_prefixes.unwrap_or(d.strip_prefixes);
    for (i, p) in strip_prefixes.iter().enumerate() {
        if p.is_empty() || http::HeaderName::from_bytes(p.as_bytes()).is_err() {
            sink.push(
                &key.key("strip_prefixes").index(i),
                format!("expected the start of a header name like \"X-Remote-\", found {p:?}"),
            );
        }
    }
    let assertion = match (s.assertion_header, s.assertion_key_file) {
        (None, None) => None,
        (Some(_), None) => {
            sink.push(
                &key.key("assertion_key_file"),
                "an assertion header needs a key: expected a file with at least 32 bytes",
            );
            None
        }
        (None, Some(_)) => {
            sink.push(
                &key.key("assertion_header"),
                "expected a header name for the assertion, like \"X-Gatehouse-Assertion\"",
            );
            None
        }
        (Some(h), Some(file)) => {
            let resolved = relative_to(path, &file);
            let key_bytes = read_key_file(&resolved, &key.key("assertion_key_file"), "key", sink);
            let header_ok = http::HeaderName::from_bytes(h.as_bytes()).is_ok();
            if !header_ok {
                sink.push(
                    &key.key("assertion_header"),
                    format!("expected an HTTP header name, found {h:?}"),
                );
            }
            key_bytes.filter(|_| header_ok).map(|k| AssertionSettings {
                header: h,
                key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k),
            })
        }
    };
    IdentitySettings {
        user_header,
        email_header,
        name_header,
        groups_header,
        strip_prefixes,
        assertion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_configs_never_share_the_default_pid_file_or_upgrade_socket() {
        let a = per_config_path(Path::new("/etc/gatehouse/a.toml"), "pid");
        let b = per_config_path(Path::new("/etc/gatehouse/b.toml"), "pid");
        assert_ne!(a, b);
        assert_eq!(
            a,
            per_config_path(Path::new("/etc/gatehouse/a.toml"), "pid")
        );
        let sock = per_config_path(Path::new("/etc/gatehouse/a.toml"), "upgrade.sock");
        assert_eq!(sock.with_extension("").with_extension("pid"), a);
    }

    proptest::proptest! {
        /// Whatever the text, parsing answers Ok or errors that name the file.
        #[test]
        fn config_text_never_panics(text in "\\PC{0,300}") {
            if let Err(errors) = parse(Path::new("fuzz.toml"), &text) {
                proptest::prop_assert!(!errors.0.is_empty());
                proptest::prop_assert!(errors.0.iter().all(|e| e.file == Path::new("fuzz.toml")));
            }
        }

        /// TOML-shaped input reaches validation, not just the TOML parser.
        #[test]
        fn config_shaped_text_never_panics(
            section in proptest::sample::select(vec!["server", "session", "login", "identity", "[route]", "users", "[invalidation.schedule]"]),
            key in "[a-z_]{1,16}",
            value in proptest::sample::select(vec!["\"30m\"", "\"\"", "0", "-1", "[]", "[\"x\"]", "true", "\"0 2 * * *\"", "{ a = 1 }"]),
        ) {
            // one section can never be a whole config: always a located error
            let text = format!("[{section}]\n{key} = {value}\n");
            let errors = parse(Path::new("fuzz.toml"), &text).err();
            proptest::prop_assert!(errors.is_some_and(|e| !e.0.is_empty() && e.0.iter().all(|x| x.file == Path::new("fuzz.toml"))));
        }
    }
}
