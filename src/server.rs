//! Assembling and running the Pingora server: the proxy service on the
//! configured listeners, plus any extra services (the demo app).

use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use std::path::Path;
use std::sync::Arc;

use pingora::services::background::background_service;
use std::time::Duration;

use crate::auth::{password, UserDb};
use crate::background::{Reloader, Sweeper};
use crate::clock::SystemClock;
use crate::config::{self, ConfigErrors};
use crate::gateway::state::{Shared, Snapshot};
use crate::gateway::Gateway;
use crate::session::store::MemoryStore;

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
    let users = UserDb::load(&settings.users_file)?;
    Ok(Snapshot::new(settings, users))
}

/// Runs the gateway for a config file; returns only on a start-up error.
pub fn run(config_path: &Path, flags: ProcessFlags) -> Result<(), String> {
    let snapshot = load_snapshot(config_path).map_err(|e| e.to_string())?;
    let config_path = config_path.to_path_buf();
    serve(snapshot, flags, move |server, shared| {
        let reloader = Reloader {
            shared,
            config_path,
        };
        server.add_service(background_service("reload on SIGHUP", reloader));
        Ok(())
    })
}

/// Runs the gateway on `snapshot`; `extra` may add services (the demo app,
/// the reloader).
pub fn serve(
    snapshot: Snapshot,
    flags: ProcessFlags,
    extra: impl FnOnce(&mut Server, Arc<Shared>) -> Result<(), String>,
) -> Result<(), String> {
    let secret = match &snapshot.settings.server.secret_file {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?)
        }
        None => None,
    };
    let listen = snapshot.settings.server.listen.clone();
    let threads = snapshot.settings.server.threads;
    // Pay for the dummy hash now, not on the first unknown-user login.
    let _ = password::dummy_hash();

    let shared = Shared::new(
        snapshot,
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
        secret,
    )?;

    let conf = ServerConf {
        threads,
        pid_file: "/tmp/gatehouse.pid".into(),
        upgrade_sock: "/tmp/gatehouse_upgrade.sock".into(),
        grace_period_seconds: Some(5),
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

    let shared = Arc::new(shared);
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Gateway::new(Arc::clone(&shared)),
        "gatehouse",
    );
    for addr in &listen {
        proxy.add_tcp(&addr.to_string());
    }
    server.add_service(proxy);
    let sweeper = Sweeper {
        shared: Arc::clone(&shared),
        every: Duration::from_secs(60),
    };
    server.add_service(background_service("session sweep", sweeper));
    extra(&mut server, shared)?;

    tracing::info!(
        "gatehouse listening on {}",
        listen
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    server.run_forever()
}
