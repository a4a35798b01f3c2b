//! Every listening address is bound here, before the server starts, so a
//! port in use (or below 1024 without the capability, or an address this
//! machine does not have) stops the start with one line naming it, before
//! anything is reported listening or ready. Left to Pingora, a bind fails
//! inside a service thread after 30 s of retries, as a panic the process
//! survives, with `/health` and `/ready` answering 200 meanwhile.
//!
//! The bound sockets are handed to Pingora through its table of listening
//! sockets (the one a binary upgrade fills from the old process), so it
//! serves on them instead of binding again.

use async_trait::async_trait;
use pingora::server::{ListenFds, RuntimeOpts, ShutdownWatch};
use pingora::services::{ServiceReadyNotifier, ServiceWithDependents};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{IntoRawFd, OwnedFd};
use std::time::Duration;

/// One address to bind and the key it came from, for the message.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub addr: SocketAddr,
    pub key: &'static str,
}

/// Sockets bound and listening, keyed by the address text the Pingora
/// service was given (`addr.to_string()`).
#[derive(Debug, Default)]
pub struct Bound(Vec<(String, OwnedFd)>);

/// Binds every address, or says which one cannot be bound and why.
pub fn bind_all(wanted: &[Wanted]) -> Result<Bound, String> {
    let mut bound = Vec::new();
    for w in wanted {
        let listener = TcpListener::bind(w.addr).map_err(|e| {
            format!(
                "cannot listen on {} ({}): {}",
                w.addr,
                w.key,
                why_not(e.kind(), w.addr)
            )
        })?;
        // Pingora's listener runs on tokio, which needs a non-blocking socket.
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot listen on {} ({}): {e}", w.addr, w.key))?;
        bound.push((w.addr.to_string(), OwnedFd::from(listener)));
    }
    Ok(Bound(bound))
}

/// The reason in words an operator acts on.
fn why_not(kind: ErrorKind, addr: SocketAddr) -> String {
    match kind {
        ErrorKind::AddrInUse => {
            "the address is already in use (another gatehouse, or another program, listens there)"
                .into()
        }
        ErrorKind::PermissionDenied if addr.port() < 1024 => format!(
            "permission denied (port {} needs root or CAP_NET_BIND_SERVICE)",
            addr.port()
        ),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::AddrNotAvailable => format!("{} is not an address of this machine", addr.ip()),
        other => format!("{other}"),
    }
}

/// A Pingora service that serves on sockets bound beforehand. In a binary
/// upgrade the sockets inherited from the old process take precedence.
pub struct OnBound<S> {
    inner: S,
    sockets: Bound,
}

impl<S> OnBound<S> {
    pub fn new(inner: S, sockets: Bound) -> Self {
        OnBound { inner, sockets }
    }
}

#[async_trait]
impl<S: ServiceWithDependents> ServiceWithDependents for OnBound<S> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
        ready_notifier: ServiceReadyNotifier,
    ) {
        if let Some(table) = &fds {
            let mut table = table.lock();
            for (addr, fd) in self.sockets.0.drain(..) {
                if table.get(&addr).is_none() {
                    table.add(addr, fd.into_raw_fd());
                }
            }
        }
        self.inner
            .start_service(fds, shutdown, listeners_per_fd, ready_notifier)
            .await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }

    fn runtime_opts_override(&self, global: &RuntimeOpts) -> Option<RuntimeOpts> {
        self.inner.runtime_opts_override(global)
    }

    fn on_startup_delay(&self, time_waited: Duration) {
        self.inner.on_startup_delay(time_waited)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        self.inner.listen_addresses()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_is_named_with_its_key() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind_all(&[Wanted {
            addr,
            key: "server.listen",
        }])
        .unwrap_err();
        assert_eq!(
            err,
            format!("cannot listen on {addr} (server.listen): the address is already in use (another gatehouse, or another program, listens there)")
        );
    }

    #[test]
    fn an_address_this_machine_lacks_is_named() {
        // TEST-NET-1: never assigned to a local interface.
        let addr: SocketAddr = "192.0.2.1:8080".parse().unwrap();
        let err = bind_all(&[Wanted {
            addr,
            key: "server.admin_listen",
        }])
        .unwrap_err();
        assert!(
            err.starts_with("cannot listen on 192.0.2.1:8080 (server.admin_listen): 192.0.2.1 is not an address of this machine"),
            "{err}"
        );
    }

    #[test]
    fn free_addresses_are_bound_and_listening() {
        let bound = bind_all(&[Wanted {
            addr: "127.0.0.1:0".parse().unwrap(),
            key: "server.listen",
        }])
        .unwrap();
        assert_eq!(bound.0.len(), 1);
        let listener = TcpListener::from(bound.0.into_iter().next().unwrap().1);
        let addr = listener.local_addr().unwrap();
        assert!(std::net::TcpStream::connect(addr).is_ok());
    }
}
