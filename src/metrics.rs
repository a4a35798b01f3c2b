//! Prometheus metrics: process-wide counters, rendered as text by the admin
//! listener. One place knows every metric name (documented in the README).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::session::EndReason;

/// How a request ended, for `gatehouse_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Forwarded,
    OwnPage,
    LoginRedirect,
    Unauthorized,
    Forbidden,
    BadRequest,
    NotFound,
    StoreUnavailable,
    UpstreamError,
}

impl Outcome {
    const ALL: [Outcome; 9] = [
        Outcome::Forwarded,
        Outcome::OwnPage,
        Outcome::LoginRedirect,
        Outcome::Unauthorized,
        Outcome::Forbidden,
        Outcome::BadRequest,
        Outcome::NotFound,
        Outcome::StoreUnavailable,
        Outcome::UpstreamError,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::OwnPage => "own_page",
            Outcome::LoginRedirect => "login_redirect",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::BadRequest => "bad_request",
            Outcome::NotFound => "not_found",
            Outcome::StoreUnavailable => "store_unavailable",
            Outcome::UpstreamError => "upstream_error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Ok,
    Failed,
    RefusedCsrf,
    RefusedDeviceLimit,
}

impl Login {
    const ALL: [Login; 4] = [
        Login::Ok,
        Login::Failed,
        Login::RefusedCsrf,
        Login::RefusedDeviceLimit,
    ];

    fn label(self) -> &'static str {
        match self {
            Login::Ok => "ok",
            Login::Failed => "failed",
            Login::RefusedCsrf => "refused_csrf",
            Login::RefusedDeviceLimit => "refused_device_limit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    Restart,
    RevokeAll,
    Scheduled,
    User,
}

impl Invalidation {
    const ALL: [Invalidation; 4] = [
        Invalidation::Restart,
        Invalidation::RevokeAll,
        Invalidation::Scheduled,
        Invalidation::User,
    ];

    fn label(self) -> &'static str {
        match self {
            Invalidation::Restart => "restart",
            Invalidation::RevokeAll => "revoke_all",
            Invalidation::Scheduled => "scheduled",
            Invalidation::User => "user",
        }
    }
}

pub struct Metrics {
    requests: [AtomicU64; 9],
    logins: [AtomicU64; 4],
    ended: [AtomicU64; 8],
    invalidations: [AtomicU64; 4],
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    store_errors: AtomicU64,
}

pub static METRICS: Metrics = Metrics::new();

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn index_of<T: PartialEq + Copy>(all: &[T], v: T) -> usize {
    all.iter().position(|x| *x == v).unwrap_or(0)
}

impl Metrics {
    pub const fn new() -> Self {
        Metrics {
            requests: [const { AtomicU64::new(0) }; 9],
            logins: [const { AtomicU64::new(0) }; 4],
            ended: [const { AtomicU64::new(0) }; 8],
            invalidations: [const { AtomicU64::new(0) }; 4],
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
        }
    }

    pub fn request(&self, o: Outcome) {
        self.requests[index_of(&Outcome::ALL, o)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn login(&self, l: Login) {
        self.logins[index_of(&Login::ALL, l)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_ended(&self, r: EndReason) {
        self.ended[index_of(&EndReason::ALL, r)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn invalidation(&self, i: Invalidation) {
        self.invalidations[index_of(&Invalidation::ALL, i)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn reload(&self, ok: bool) {
        let c = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the gauges the caller read.
    pub fn render(&self, sessions: Option<usize>) -> String {
        let mut out = String::with_capacity(4096);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        family(
            &mut out,
            "gatehouse_requests_total",
            "Requests by how they ended.",
            "counter",
        );
        for o in Outcome::ALL {
            let _ = writeln!(
                out,
                "gatehouse_requests_total{{outcome=\"{}\"}} {}",
                o.label(),
                get(&self.requests[index_of(&Outcome::ALL, o)])
            );
        }
        family(
            &mut out,
            "gatehouse_logins_total",
            "Login attempts by result.",
            "counter",
        );
        for l in Login::ALL {
            let _ = writeln!(
                out,
                "gatehouse_logins_total{{result=\"{}\"}} {}",
                l.label(),
                get(&self.logins[index_of(&Login::ALL, l)])
            );
        }
        family(
            &mut out,
            "gatehouse_sessions_ended_total",
            "Sessions ended, by reason.",
            "counter",
        );
        for r in EndReason::ALL {
            let _ = writeln!(
                out,
                "gatehouse_sessions_ended_total{{reason=\"{}\"}} {}",
                r.as_str(),
                get(&self.ended[index_of(&EndReason::ALL, r)])
            );
        }
        family(
            &mut out,
            "gatehouse_invalidations_total",
            "Mass invalidations, by kind.",
            "counter",
        );
        for i in Invalidation::ALL {
            let _ = writeln!(
                out,
                "gatehouse_invalidations_total{{kind=\"{}\"}} {}",
                i.label(),
                get(&self.invalidations[index_of(&Invalidation::ALL, i)])
            );
        }
        family(
            &mut out,
            "gatehouse_reloads_total",
            "Configuration reloads, by result.",
            "counter",
        );
        let _ = writeln!(
            out,
            "gatehouse_reloads_total{{result=\"ok\"}} {}",
            get(&self.reloads_ok)
        );
        let _ = writeln!(
            out,
            "gatehouse_reloads_total{{result=\"failed\"}} {}",
            get(&self.reloads_failed)
        );
        family(
            &mut out,
            "gatehouse_store_errors_total",
            "Session store operations that failed.",
            "counter",
        );
        let _ = writeln!(
            out,
            "gatehouse_store_errors_total {}",
            get(&self.store_errors)
        );
        if let Some(n) = sessions {
            family(
                &mut out,
                "gatehouse_sessions",
                "Session records held by the store.",
                "gauge",
            );
            let _ = writeln!(out, "gatehouse_sessions {n}");
        }
        out
    }
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_help_and_type() {
        let m = Metrics::new();
        m.request(Outcome::Forwarded);
        m.request(Outcome::Forwarded);
        m.login(Login::Failed);
        m.session_ended(EndReason::Idle);
        m.invalidation(Invalidation::RevokeAll);
        m.reload(false);
        let text = m.render(Some(7));
        assert!(text.contains("gatehouse_requests_total{outcome=\"forwarded\"} 2\n"));
        assert!(text.contains("gatehouse_logins_total{result=\"failed\"} 1\n"));
        assert!(text.contains("gatehouse_sessions_ended_total{reason=\"idle\"} 1\n"));
        assert!(text.contains("gatehouse_invalidations_total{kind=\"revoke_all\"} 1\n"));
        assert!(text.contains("gatehouse_reloads_total{result=\"failed\"} 1\n"));
        assert!(text.contains("gatehouse_sessions 7\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("gatehouse_"), "{line}");
            value.parse::<f64>().unwrap();
        }
        assert_eq!(text.matches("# TYPE").count(), 7);
    }
}
