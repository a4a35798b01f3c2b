//! Assembling and running the Pingora server: the store prepared before any
//! listener opens (restart invalidation or a snapshot restored), the proxy
//! service, the admin listener, background services, and the snapshot saved
//! after a graceful stop.

use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{ExecutionPhase, RunArgs, Server};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use pingora::services::ServiceHandle;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::admin::api::ApiAccess;
use crate::admin::AdminApp;
use crate::auth::{password, UserDb};
use crate::background::{MemoryRelease, Reloader, ScheduleWatch, Sweeper};
use crate::clock::{Clock, SystemClock};
use crate::config::StoreKind;
use crate::config::{self, ConfigErrors};
use crate::gateway::head_guard::Guarded;
use crate::gateway::health_check::HealthChecker;
use crate::gateway::state::{Shared, Snapshot};
use crate::gateway::Gateway;
use crate::listeners::{bind_all, Bound, OnBound, Wanted};
use crate::metrics::{Invalidation, METRICS};
use crate::session::store::{MemoryStore, RedisOptions, RedisStore, SessionStore};
use crate::session::EndReason;

/// Pingora's own process flags, kept on `gatehouse run`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessFlags {
    pub daemon: bool,
    pub upgrade: bool,
    pub test: bool,
}

/// Reads and validates the config and the users file it names.
pub fn load_snapshot(config_path: &Path) -> Result<Snapshot, ConfigErrors> {
    let settings = config::load(config_path)?;
    let users = match &settings.users_file {
        Some(file) => UserDb::load(file)?,
        None => UserDb::default(),
    };
    Ok(Snapshot::new(settings, users))
}

/// Runs the gateway for a config file until it is stopped.
pub fn run(config_path: &Path, flags: ProcessFlags) -> Result<(), String> {
    let snapshot = load_snapshot(config_path).map_err(|e| e.to_string())?;
    let config_path = config_path.to_path_buf();
    serve(snapshot, flags, move |server, shared| {
        let reloader = Reloader {
            shared,
            config_path,
        };
        Ok(vec![server.add_service(background_service(
            "reload on SIGHUP",
            reloader,
        ))])
    })
}

fn snapshot_path(state_dir: &Path) -> PathBuf {
    state_dir.join("sessions.json")
}

/// Before any listener opens: with `invalidate_on_restart`, every earlier
/// session is invalid from this instant; otherwise the snapshot of a
/// planned restart is restored (a bad one is a warning, never a crash).
fn prepare_store(
    rt: &tokio::runtime::Runtime,
    store: &MemoryStore,
    snap: &Snapshot,
    now: crate::clock::Timestamp,
) -> Result<bool, String> {
    let state_file = snap.settings.server.state_dir.as_deref().map(snapshot_path);
    if snap.settings.session.invalidate_on_restart {
        // Sessions a previous run saved are the ones this restart ends (the
        // count in the audit line).
        if let Some(f) = state_file.as_deref() {
            let _ = store.load_snapshot(f);
            let _ = std::fs::remove_file(f);
        }
        restart_invalidation(rt, store, now).map_err(|e| e.to_string())?;
    } else if let Some(file) = state_file.filter(|f| f.exists()) {
        let restored = match store.load_snapshot(&file) {
            Ok(n) => {
                tracing::info!("restored {n} sessions from {}", file.display());
                true
            }
            Err(e) => {
                tracing::warn!("starting with no sessions: {e}");
                false
            }
        };
        let _ = std::fs::remove_file(&file);
        return Ok(restored);
    }
    Ok(false)
}

/// The Redis store before any listener opens: with
/// `invalidate_on_restart`, this start signs out every earlier session of
/// the fleet. That must reach Redis, so an unreachable Redis stops the start
/// (the service manager retries); without it, the gateway starts and
/// answers 503 until Redis is back.
fn prepare_shared_store(
    rt: &tokio::runtime::Runtime,
    store: &RedisStore,
    snap: &Snapshot,
    now: crate::clock::Timestamp,
) -> Result<(), String> {
    if !snap.settings.session.invalidate_on_restart {
        if let Err(e) = rt.block_on(store.ping()) {
            tracing::warn!(
                "{} is not answering yet ({e}); serving 503 until it does",
                store.describe()
            );
        }
        return Ok(());
    }
    restart_invalidation(rt, store, now).map_err(|e| {
        format!(
            "cannot sign out earlier sessions (session.invalidate_on_restart) because {} is unreachable: {e}",
            store.describe()
        )
    })
}

/// Signs out every session created before this start, with its audit line.
fn restart_invalidation(
    rt: &tokio::runtime::Runtime,
    store: &dyn SessionStore,
    now: crate::clock::Timestamp,
) -> Result<(), crate::session::store::StoreError> {
    let ended = rt.block_on(store.revoke_all(EndReason::Restart, now))?;
    METRICS.invalidation(Invalidation::Restart);
    // Nothing to end (the usual start of the memory store) is no warning.
    if ended == 0 {
        tracing::info!(target: "gatehouse::audit", event = "restart_invalidation", count = ended, "security: restart invalidation: {ended} sessions ended");
    } else {
        tracing::warn!(target: "gatehouse::audit", event = "restart_invalidation", count = ended, "security: restart invalidation: {ended} sessions ended");
    }
    Ok(())
}

/// Logs that the gateway is listening, once every service it depends on
/// has started: the listeners serve and SIGHUP reloads (until the reloader
/// has its handler, a SIGHUP would end the process).
struct Announce(String);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Announce {
    async fn start(&self, _shutdown: pingora::server::ShutdownWatch) {
        tracing::info!("{}", self.0);
    }
}

/// The proxy on the TLS listeners: the same gateway, behind the handshake
/// (inside the slow-client guard), with HTTP/2 by ALPN bounded by the same
/// client limits, and HSTS on every answer.
fn tls_service(
    server: &Server,
    shared: &Arc<Shared>,
    edge: &crate::tls::Edge,
    addrs: &[std::net::SocketAddr],
) -> Service<Guarded<pingora::proxy::HttpProxy<Gateway>>> {
    let limits = shared.snapshot.load().settings.server.client_limits;
    let mut proxy =
        pingora::proxy::http_proxy(&server.configuration, Gateway::new(Arc::clone(shared)));
    let mut options = pingora::apps::HttpServerOptions::default();
    // As long as an HTTP/1.1 connection may wait for its next request.
    options.h2_idle_timeout = Some(Duration::from_secs(60));
    proxy.server_options = Some(options);
    let mut h2 = pingora::protocols::http::v2::server::default_h2_options();
    h2.max_header_list_size(u32::try_from(limits.max_request_header_bytes).unwrap_or(u32::MAX));
    proxy.h2_options = Some(h2);
    proxy
        .downstream_modules
        .add_module(Box::new(crate::gateway::https::HstsOnTls {
            shared: Arc::clone(shared),
        }));
    let mut service = Service::new(
        "gatehouse tls".to_string(),
        Guarded::new(proxy, Arc::clone(shared)).with_tls(Arc::clone(&edge.handshake)),
    );
    for addr in addrs {
        service.add_tcp(&addr.to_string());
    }
    service
}

/// Runs the gateway on `snapshot`; `extra` may add services (the demo app,
/// the reloader) and returns those that must have started before the
/// gateway says it is listening. Returns after a graceful stop.
pub fn serve(
    snapshot: Snapshot,
    flags: ProcessFlags,
    extra: impl FnOnce(&mut Server, Arc<Shared>) -> Result<Vec<ServiceHandle>, String>,
) -> Result<(), String> {
    let secret = match &snapshot.settings.server.secret_file {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?)
        }
        None => None,
    };
    let listen = snapshot.settings.server.listen.clone();
    let admin_listen = snapshot.settings.server.admin_listen;
    let tls_listen = snapshot
        .settings
        .server
        .tls
        .as_ref()
        .map(|t| t.listen.clone())
        .unwrap_or_default();
    // Before anything else (a Redis store's restart invalidation signs the
    // whole fleet out): a second gateway on a port in use must stop here.
    // A binary upgrade receives the old process's sockets instead.
    let (proxy_sockets, admin_sockets, tls_sockets) = if flags.upgrade {
        (Bound::default(), Bound::default(), Bound::default())
    } else {
        let wanted = |key| move |addr| Wanted { addr, key };
        (
            bind_all(
                &listen
                    .iter()
                    .copied()
                    .map(wanted("server.listen"))
                    .collect::<Vec<_>>(),
            )?,
            bind_all(
                &admin_listen
                    .map(wanted("server.admin_listen"))
                    .into_iter()
                    .collect::<Vec<_>>(),
            )?,
            bind_all(
                &tls_listen
                    .iter()
                    .copied()
                    .map(wanted("server.tls.listen"))
                    .collect::<Vec<_>>(),
            )?,
        )
    };
    if flags.test {
        tracing::info!("the listen and admin addresses can be bound");
    }
    let admin_token = snapshot.settings.server.admin_token.clone();
    let admin_open = snapshot.settings.server.admin_allow_unauthenticated;
    let threads = snapshot.settings.server.threads;
    let grace = snapshot.settings.server.grace_period.as_secs();
    let upgrade_sock = snapshot.settings.server.upgrade_sock.display().to_string();
    let pid_file = snapshot.settings.server.pid_file.display().to_string();
    let keep_sessions = (!snapshot.settings.session.invalidate_on_restart)
        .then(|| snapshot.settings.server.state_dir.clone())
        .flatten();
    // Pay for the dummy hash now, not on the first unknown-user login.
    let _ = password::dummy_hash();

    let clock = Arc::new(SystemClock);
    // For the store's start-up steps, before Pingora's runtimes exist.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // `-t` only checks that the server can start: it must not consume the
    // saved sessions or sign anyone out.
    let (store, memory, restored): (Arc<dyn SessionStore>, _, _) =
        match &snapshot.settings.session.store {
            StoreKind::Memory => {
                let m = Arc::new(MemoryStore::new());
                let restored = !flags.test && prepare_store(&rt, &m, &snapshot, clock.now())?;
                (m.clone(), Some(m), restored)
            }
            StoreKind::Redis(r) => {
                let general = snapshot.most_generous();
                let store = RedisStore::new(RedisOptions {
                    target: r.target.clone(),
                    prefix: r.key_prefix.clone(),
                    timeout: r.timeout,
                    cache_ttl: r.cache_ttl,
                    max_idle: general.idle_timeout,
                    max_age: general.absolute_timeout,
                })?;
                if !flags.test {
                    prepare_shared_store(&rt, &store, &snapshot, clock.now())?;
                }
                // Sessions live in Redis across restarts: a cookie the
                // store does not know was not lost to this one.
                (Arc::new(store), None, true)
            }
        };
    let edge = match &snapshot.settings.server.tls {
        Some(tls) => Some(Arc::new(crate::tls::Edge::new(tls)?)),
        None => None,
    };
    let mut shared = Shared::new(snapshot, Arc::clone(&store), clock, secret)?;
    shared.sessions_restored = restored;
    shared.tls = edge.clone();
    let shared = Arc::new(shared);

    let conf = ServerConf {
        threads,
        pid_file,
        upgrade_sock,
        grace_period_seconds: Some(grace),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    };
    let opt = Opt {
        daemon: flags.daemon,
        upgrade: flags.upgrade,
        test: flags.test,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    // Both listeners guard request heads (see `head_guard`).
    let mut proxy = Service::new(
        "gatehouse".to_string(),
        Guarded::new(
            pingora::proxy::http_proxy(&server.configuration, Gateway::new(Arc::clone(&shared))),
            Arc::clone(&shared),
        ),
    );
    for addr in &listen {
        proxy.add_tcp(&addr.to_string());
    }
    let mut started = vec![server.add_service(OnBound::new(proxy, proxy_sockets))];
    if let Some(edge) = &edge {
        let tls = tls_service(&server, &shared, edge, &tls_listen);
        started.push(server.add_service(OnBound::new(tls, tls_sockets)));
    }
    if let Some(addr) = admin_listen {
        let mut admin = Service::new(
            "admin".to_string(),
            Guarded::new(
                AdminApp {
                    shared: Arc::clone(&shared),
                    access: ApiAccess::new(admin_token, admin_open),
                    listen: addr,
                },
                Arc::clone(&shared),
            ),
        );
        admin.add_tcp(&addr.to_string());
        started.push(server.add_service(OnBound::new(admin, admin_sockets)));
    }
    server.add_service(background_service(
        "session sweep",
        Sweeper {
            shared: Arc::clone(&shared),
            every: Duration::from_secs(60),
        },
    ));
    server.add_service(background_service(
        "memory release",
        MemoryRelease {
            every: Duration::from_secs(1),
        },
    ));
    server.add_service(background_service(
        "upstream health checks",
        HealthChecker::new(Arc::clone(&shared)),
    ));
    server.add_service(background_service(
        "scheduled invalidation",
        ScheduleWatch {
            shared: Arc::clone(&shared),
        },
    ));
    started.extend(extra(&mut server, shared)?);
    let listening = format!(
        "gatehouse listening on {}{}{}",
        listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        if tls_listen.is_empty() {
            String::new()
        } else {
            format!(
                "; TLS on {}",
                tls_listen
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        admin_listen.map_or_else(String::new, |a| format!("; admin on {a}"))
    );
    server
        .add_service(background_service("announce", Announce(listening)))
        .add_dependencies(&started);
    let mut phases = server.watch_execution_phase();
    server.run(RunArgs::default());

    // After a binary upgrade the new process is already serving: sessions
    // saved now would come back on its next restart, stale. Save only when
    // this process is really the last one.
    let upgraded = std::iter::from_fn(|| phases.try_recv().ok())
        .any(|p| matches!(p, ExecutionPhase::GracefulUpgradeTransferringFds));
    if let (Some(dir), Some(store)) = (keep_sessions.filter(|_| !upgraded), memory) {
        match store.save_snapshot(&snapshot_path(&dir)) {
            Ok(n) => tracing::info!("saved {n} sessions for the next start"),
            Err(e) => tracing::error!("sessions not saved, the next start signs everyone out: {e}"),
        }
    }
    Ok(())
}
