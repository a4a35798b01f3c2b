//! Reaching Redis: the URL forms we accept, one connection type over
//! standalone, Cluster and Sentinel deployments, and the runtime the
//! connections live on.
//!
//! Pingora runs each service on its own runtimes and the start-up code on a
//! throwaway one, so a connection's driver task must not belong to any of
//! them: the store owns a small runtime of its own, and every command runs
//! there.

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use std::sync::Arc;
use std::time::Duration;

/// Where the sessions live, parsed from `session.redis_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `redis://[user:pass@]host:port[/db]`
    Standalone(String),
    /// `redis+cluster://[user:pass@]host:port,host:port,...`: seed nodes.
    Cluster(Vec<String>),
    /// `redis+sentinel://[user:pass@]host:port,host:port/master[/db]`.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        db: i64,
        /// Credentials for the data nodes (sentinels are asked without).
        user: Option<String>,
        password: Option<String>,
    },
}

impl Target {
    /// Reads a URL; the error says what was expected.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("expected a URL such as \"redis://127.0.0.1:6379/0\"")?;
        match scheme {
            "redis" => {
                redis::Client::open(url).map_err(|e| format!("not a usable Redis URL: {e}"))?;
                Ok(Target::Standalone(url.to_string()))
            }
            "redis+cluster" => {
                let (auth, hosts) = split_auth(rest);
                let hosts = hosts.trim_end_matches('/');
                let nodes = split_hosts(hosts)?
                    .into_iter()
                    .map(|h| format!("redis://{auth}{h}"))
                    .collect::<Vec<_>>();
                for n in &nodes {
                    redis::Client::open(n.as_str())
                        .map_err(|e| format!("not a usable cluster node: {e}"))?;
                }
                Ok(Target::Cluster(nodes))
            }
            "redis+sentinel" => {
                let (auth, tail) = split_auth(rest);
                let (hosts, path) = tail
                    .split_once('/')
                    .ok_or("expected redis+sentinel://host:port,.../MASTER_NAME[/DB]")?;
                let (master, db) = match path.split_once('/') {
                    Some((m, db)) => (
                        m,
                        db.parse::<i64>()
                            .map_err(|_| format!("expected a database number, found {db:?}"))?,
                    ),
                    None => (path, 0),
                };
                if master.is_empty() {
                    return Err("expected the master's name after the sentinels".into());
                }
                let sentinels = split_hosts(hosts)?
                    .into_iter()
                    .map(|h| format!("redis://{h}"))
                    .collect::<Vec<_>>();
                let (user, password) = match auth.trim_end_matches('@').split_once(':') {
                    _ if auth.is_empty() => (None, None),
                    Some((u, p)) => (
                        (!u.is_empty()).then(|| u.to_string()),
                        Some(p.to_string()),
                    ),
                    None => (Some(auth.trim_end_matches('@').to_string()), None),
                };
                Ok(Target::Sentinel {
                    sentinels,
                    master: master.to_string(),
                    db,
                    user,
                    password,
                })
            }
            other => Err(format!(
                "expected the scheme redis://, redis+cluster:// or redis+sentinel://, found {other}://"
            )),
        }
    }

    /// The URL without credentials, for logs and errors.
    pub fn describe(&self) -> String {
        match self {
            Target::Standalone(url) => crate::logging::url_for_log(url),
            Target::Cluster(nodes) => format!(
                "cluster {}",
                nodes
                    .iter()
                    .map(|n| crate::logging::url_for_log(n))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Target::Sentinel {
                sentinels, master, ..
            } => format!("sentinel master {master:?} via {}", sentinels.join(",")),
        }
    }
}

/// `user:pass@hosts` → ("user:pass@", "hosts").
fn split_auth(rest: &str) -> (&str, &str) {
    match rest.rfind('@') {
        Some(at) => rest.split_at(at + 1),
        None => ("", rest),
    }
}

fn split_hosts(hosts: &str) -> Result<Vec<&str>, String> {
    let list: Vec<&str> = hosts.split(',').map(str::trim).collect();
    if list.iter().any(|h| h.is_empty() || !h.contains(':')) {
        return Err(format!("expected host:port,host:port,..., found {hosts:?}"));
    }
    Ok(list)
}

/// Timeouts shared by every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
}

/// A connection of any deployment, cheap to clone (all are multiplexed).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Hands out connections, making (or, after a Sentinel failover, remaking)
/// them when needed. Must be used on the store's runtime.
pub struct Connector {
    target: Target,
    limits: Limits,
    current: ArcSwapOption<Conn>,
    /// One connection attempt at a time.
    connecting: tokio::sync::Mutex<()>,
    /// Which sentinel is asked first: moves on after every failure, so a
    /// sentinel that hangs cannot hold every look-up up.
    first_sentinel: std::sync::atomic::AtomicUsize,
}

impl Connector {
    pub fn new(target: Target, limits: Limits) -> Self {
        Connector {
            target,
            limits,
            current: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            first_sentinel: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub async fn get(&self) -> Result<Conn, RedisError> {
        if let Some(c) = self.current.load_full() {
            return Ok((*c).clone());
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.current.load_full() {
            return Ok((*c).clone());
        }
        let conn = self.connect().await?;
        self.current.store(Some(Arc::new(conn.clone())));
        Ok(conn)
    }

    /// After an error that may mean the master moved: a Sentinel
    /// deployment asks the sentinels again on the next command. The other
    /// kinds reconnect by themselves.
    pub fn failed(&self, err: &RedisError) {
        let moved = err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_timeout()
            || err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly);
        if moved {
            self.forget_master();
        }
    }

    /// A command got no answer in time: for Sentinel, the master may have
    /// moved without a word (or the sentinel asked may hang).
    pub fn timed_out(&self) {
        self.forget_master();
    }

    fn forget_master(&self) {
        if matches!(self.target, Target::Sentinel { .. }) {
            self.current.store(None);
            self.first_sentinel
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    async fn connect(&self) -> Result<Conn, RedisError> {
        let t = self.limits.timeout;
        match &self.target {
            Target::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(t)
                    .response_timeout(t)
                    .retries(2)
                    .build()?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            }
            _ => Ok(Conn::Single(manager(self.single_node().await?, t)?)),
        }
    }

    /// The one node that holds the data: the standalone server, or the
    /// master the sentinels name now.
    async fn single_node(&self) -> Result<redis::Client, RedisError> {
        match &self.target {
            Target::Standalone(url) => redis::Client::open(url.as_str()),
            Target::Sentinel {
                sentinels,
                master,
                db,
                user,
                password,
            } => {
                let start = self
                    .first_sentinel
                    .load(std::sync::atomic::Ordering::Relaxed)
                    % sentinels.len().max(1);
                let mut order = sentinels[start..].to_vec();
                order.extend_from_slice(&sentinels[..start]);
                sentinel_client(&order, master, *db, user, password)?
                    .async_get_client()
                    .await
            }
            Target::Cluster(_) => Err(RedisError::from((
                redis::ErrorKind::Client,
                "a cluster has no single node",
            ))),
        }
    }

    /// A plain connection to each node that holds data (each master of a
    /// cluster), for commands that must visit every node (SCAN).
    pub async fn data_nodes(&self) -> Result<Vec<Conn>, RedisError> {
        let conn = self.get().await?;
        let Conn::Cluster(mut cluster) = conn else {
            return Ok(vec![conn]);
        };
        let Target::Cluster(seeds) = &self.target else {
            return Ok(vec![]);
        };
        let slots: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut cluster)
            .await?;
        let mut addrs: Vec<(String, u16)> = Vec::new();
        if let Value::Array(ranges) = slots {
            for range in ranges {
                let Value::Array(parts) = range else { continue };
                let Some(Value::Array(master)) = parts.get(2) else {
                    continue;
                };
                let host: Option<String> = master
                    .first()
                    .and_then(|v| redis::from_redis_value_ref(v).ok());
                let port: Option<u16> = master
                    .get(1)
                    .and_then(|v| redis::from_redis_value_ref(v).ok());
                if let (Some(h), Some(p)) = (host, port) {
                    if !addrs.contains(&(h.clone(), p)) {
                        addrs.push((h, p));
                    }
                }
            }
        }
        // Credentials as given for the seeds.
        let auth = seeds
            .first()
            .and_then(|s| s.strip_prefix("redis://"))
            .map(|r| split_auth(r).0)
            .unwrap_or("");
        let mut out = Vec::with_capacity(addrs.len());
        for (h, p) in addrs {
            let client = redis::Client::open(format!("redis://{auth}{h}:{p}"))?;
            out.push(Conn::Single(manager(client, self.limits.timeout)?));
        }
        Ok(out)
    }

    /// A client for the node that carries pub/sub (any node of a cluster:
    /// messages are broadcast to all).
    pub async fn pubsub_client(&self) -> Result<redis::Client, RedisError> {
        let Target::Cluster(nodes) = &self.target else {
            return self.single_node().await;
        };
        // The first seed that answers.
        let mut last = None;
        for n in nodes {
            let client = redis::Client::open(n.as_str())?;
            let probe = tokio::time::timeout(
                self.limits.timeout,
                client.get_multiplexed_async_connection(),
            )
            .await;
            match probe {
                Ok(Ok(_)) => return Ok(client),
                Ok(Err(e)) => last = Some(e),
                Err(_) => {}
            }
        }
        Err(last.unwrap_or_else(|| {
            RedisError::from((redis::ErrorKind::Io, "no cluster node answered"))
        }))
    }
}

fn sentinel_client(
    sentinels: &[String],
    master: &str,
    db: i64,
    user: &Option<String>,
    password: &Option<String>,
) -> Result<SentinelClient, RedisError> {
    let mut info = redis::RedisConnectionInfo::default().set_db(db);
    if let Some(u) = user {
        info = info.set_username(u);
    }
    if let Some(p) = password {
        info = info.set_password(p);
    }
    let node =
        redis::sentinel::SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
    SentinelClient::build(
        sentinels.to_vec(),
        master.to_string(),
        Some(node),
        SentinelServerType::Master,
    )
}

fn manager(client: redis::Client, t: Duration) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(t))
        .set_response_timeout(Some(t))
        .set_number_of_retries(1)
        .set_max_delay(t);
    ConnectionManager::new_lazy_with_config(client, config)
}

/// The store's own runtime: one worker thread, stopped when dropped.
pub struct IoRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl IoRuntime {
    pub fn start() -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gatehouse-redis")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Redis runtime: {e}"))?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("gatehouse-redis-rt".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
                rt.shutdown_background();
            })
            .map_err(|e| format!("cannot start the Redis runtime: {e}"))?;
        Ok(IoRuntime {
            handle,
            stop: Some(stop),
        })
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Target::parse("redis://127.0.0.1:6379/0"),
            Ok(Target::Standalone("redis://127.0.0.1:6379/0".into()))
        );
        assert_eq!(
            Target::parse("redis+cluster://:pw@a:7000,b:7001"),
            Ok(Target::Cluster(vec![
                "redis://:pw@a:7000".into(),
                "redis://:pw@b:7001".into()
            ]))
        );
        assert_eq!(
            Target::parse("redis+sentinel://s1:26379,s2:26379/mymaster/2"),
            Ok(Target::Sentinel {
                sentinels: vec!["redis://s1:26379".into(), "redis://s2:26379".into()],
                master: "mymaster".into(),
                db: 2,
                user: None,
                password: None,
            })
        );
        for bad in [
            "127.0.0.1:6379",
            "http://x:1",
            "redis+cluster://a:1,,b:2",
            "redis+cluster://a",
            "redis+sentinel://s1:26379",
            "redis+sentinel://s1:26379/",
            "redis+sentinel://s1:26379/m/x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn descriptions_hide_passwords() {
        let t = Target::parse("redis://:hunter2@h:1/0").unwrap();
        assert!(!t.describe().contains("hunter2"));
        let t = Target::parse("redis+cluster://u:hunter2@a:1,b:2").unwrap();
        assert!(!t.describe().contains("hunter2"));
    }
}
