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
    /// `GET {prefix}/auth` (forward auth): how the proxy in front was answered.
    ForwardAuthAllowed,
    ForwardAuthLoginRedirect,
    ForwardAuthUnauthorized,
    ForwardAuthForbidden,
    ForwardAuthUntrusted,
    ForwardAuthBadRequest,
    ForwardAuthStoreUnavailable,
}

impl Outcome {
    const ALL: [Outcome; 16] = [
        Outcome::Forwarded,
        Outcome::OwnPage,
        Outcome::LoginRedirect,
        Outcome::Unauthorized,
        Outcome::Forbidden,
        Outcome::BadRequest,
        Outcome::NotFound,
        Outcome::StoreUnavailable,
        Outcome::UpstreamError,
        Outcome::ForwardAuthAllowed,
        Outcome::ForwardAuthLoginRedirect,
        Outcome::ForwardAuthUnauthorized,
        Outcome::ForwardAuthForbidden,
        Outcome::ForwardAuthUntrusted,
        Outcome::ForwardAuthBadRequest,
        Outcome::ForwardAuthStoreUnavailable,
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
            Outcome::ForwardAuthAllowed => "forward_auth_allowed",
            Outcome::ForwardAuthLoginRedirect => "forward_auth_login_redirect",
            Outcome::ForwardAuthUnauthorized => "forward_auth_unauthorized",
            Outcome::ForwardAuthForbidden => "forward_auth_forbidden",
            Outcome::ForwardAuthUntrusted => "forward_auth_untrusted",
            Outcome::ForwardAuthBadRequest => "forward_auth_bad_request",
            Outcome::ForwardAuthStoreUnavailable => "forward_auth_store_unavailable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Ok,
    Failed,
    RefusedCsrf,
    RefusedDeviceLimit,
    Throttled,
    StoreUnavailable,
}

impl Login {
    const ALL: [Login; 6] = [
        Login::Ok,
        Login::Failed,
        Login::RefusedCsrf,
        Login::RefusedDeviceLimit,
        Login::Throttled,
        Login::StoreUnavailable,
    ];

    fn label(self) -> &'static str {
        match self {
            Login::Ok => "ok",
            Login::Failed => "failed",
            Login::RefusedCsrf => "refused_csrf",
            Login::RefusedDeviceLimit => "refused_device_limit",
            Login::Throttled => "throttled",
            Login::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Where a store failure refused an answer, for
/// `gatehouse_store_errors_total{op}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// A page or API call of an app (a login route).
    Request,
    Login,
    Logout,
    /// `/session`, `/devices`, `/password`.
    OwnPage,
    /// The admin API.
    Admin,
}

impl StoreOp {
    const ALL: [StoreOp; 5] = [
        StoreOp::Request,
        StoreOp::Login,
        StoreOp::Logout,
        StoreOp::OwnPage,
        StoreOp::Admin,
    ];

    fn label(self) -> &'static str {
        match self {
            StoreOp::Request => "request",
            StoreOp::Login => "login",
            StoreOp::Logout => "logout",
            StoreOp::OwnPage => "own_page",
            StoreOp::Admin => "admin",
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

/// A client cut off by a limit, for `gatehouse_clients_cut_off_total{limit}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutOff {
    /// `server.request_header_timeout`
    HeadTimeout,
    /// `server.max_request_header_bytes`
    HeadTooLarge,
    /// `server.form_body_timeout`
    FormTimeout,
}

impl CutOff {
    const ALL: [CutOff; 3] = [
        CutOff::HeadTimeout,
        CutOff::HeadTooLarge,
        CutOff::FormTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            CutOff::HeadTimeout => "head_timeout",
            CutOff::HeadTooLarge => "head_too_large",
            CutOff::FormTimeout => "form_timeout",
        }
    }
}

pub struct Metrics {
    requests: [AtomicU64; Outcome::ALL.len()],
    logins: [AtomicU64; Login::ALL.len()],
    ended: [AtomicU64; EndReason::ALL.len()],
    invalidations: [AtomicU64; Invalidation::ALL.len()],
    cut_off: [AtomicU64; CutOff::ALL.len()],
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    store_errors: [AtomicU64; StoreOp::ALL.len()],
}

pub static METRICS: Metrics = Metrics::new();

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub const fn new() -> Self {
        Metrics {
            requests: [const { AtomicU64::new(0) }; Outcome::ALL.len()],
            logins: [const { AtomicU64::new(0) }; Login::ALL.len()],
            ended: [const { AtomicU64::new(0) }; EndReason::ALL.len()],
            invalidations: [const { AtomicU64::new(0) }; Invalidation::ALL.len()],
            cut_off: [const { AtomicU64::new(0) }; CutOff::ALL.len()],
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            store_errors: [const { AtomicU64::new(0) }; StoreOp::ALL.len()],
        }
    }

    pub fn request(&self, o: Outcome) {
        self.requests[o as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn login(&self, l: Login) {
        self.logins[l as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_ended(&self, r: EndReason) {
        self.ended[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn invalidation(&self, i: Invalidation) {
        self.invalidations[i as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn cut_off(&self, c: CutOff) {
        self.cut_off[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn reload(&self, ok: bool) {
        let c = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// An answer refused because the store failed (not the failed
    /// operations: a request may try several).
    pub fn store_error(&self, op: StoreOp) {
        self.store_errors[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the gauges the caller read from
    /// the store (`None`: the store cannot tell).
    pub fn render(&self, sessions: Option<usize>, cache_following: Option<bool>) -> String {
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
                get(&self.requests[o as usize])
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
                get(&self.logins[l as usize])
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
                get(&self.ended[r as usize])
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
                get(&self.invalidations[i as usize])
            );
        }
        family(
            &mut out,
            "gatehouse_clients_cut_off_total",
            "Connections of clients too slow or too large, by the limit they hit.",
            "counter",
        );
        for c in CutOff::ALL {
            let _ = writeln!(
                out,
                "gatehouse_clients_cut_off_total{{limit=\"{}\"}} {}",
                c.label(),
                get(&self.cut_off[c as usize])
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
            "Answers refused (503) because the session store failed, by what was asked.",
            "counter",
        );
        for op in StoreOp::ALL {
            let _ = writeln!(
                out,
                "gatehouse_store_errors_total{{op=\"{}\"}} {}",
                op.label(),
                get(&self.store_errors[op as usize])
            );
        }
        if let Some(n) = sessions {
            family(
                &mut out,
                "gatehouse_sessions",
                "Session records held by the store.",
                "gauge",
            );
            let _ = writeln!(out, "gatehouse_sessions {n}");
        }
        if let Some(following) = cache_following {
            family(
                &mut out,
                "gatehouse_session_cache_following",
                "1 while this instance hears the fleet's session changes (its cache is in use).",
                "gauge",
            );
            let _ = writeln!(
                out,
                "gatehouse_session_cache_following {}",
                u8::from(following)
            );
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
    fn the_label_lists_follow_declaration_order() {
        // counters are indexed by discriminant: ALL must list every variant in order
        assert!(Outcome::ALL
            .iter()
            .enumerate()
            .all(|(i, o)| *o as usize == i));
        assert!(Login::ALL.iter().enumerate().all(|(i, l)| *l as usize == i));
        assert!(EndReason::ALL
            .iter()
            .enumerate()
            .all(|(i, r)| *r as usize == i));
        assert!(Invalidation::ALL
            .iter()
            .enumerate()
            .all(|(i, v)| *v as usize == i));
        assert!(StoreOp::ALL
            .iter()
            .enumerate()
            .all(|(i, v)| *v as usize == i));
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let m = Metrics::new();
        m.request(Outcome::Forwarded);
        m.request(Outcome::Forwarded);
        m.login(Login::Failed);
        m.session_ended(EndReason::Idle);
        m.invalidation(Invalidation::RevokeAll);
        m.reload(false);
        m.store_error(StoreOp::Login);
        m.cut_off(CutOff::HeadTimeout);
        let text = m.render(Some(7), None);
        assert!(text.contains("gatehouse_store_errors_total{op=\"login\"} 1\n"));
        assert!(text.contains("gatehouse_store_errors_total{op=\"request\"} 0\n"));
        assert!(text.contains("gatehouse_requests_total{outcome=\"forwarded\"} 2\n"));
        assert!(text.contains("gatehouse_logins_total{result=\"failed\"} 1\n"));
        assert!(text.contains("gatehouse_sessions_ended_total{reason=\"idle\"} 1\n"));
        assert!(text.contains("gatehouse_invalidations_total{kind=\"revoke_all\"} 1\n"));
        assert!(text.contains("gatehouse_reloads_total{result=\"failed\"} 1\n"));
        assert!(text.contains("gatehouse_clients_cut_off_total{limit=\"head_timeout\"} 1\n"));
        assert!(text.contains("gatehouse_clients_cut_off_total{limit=\"form_timeout\"} 0\n"));
        assert!(text.contains("gatehouse_sessions 7\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("gatehouse_"), "{line}");
            value.parse::<f64>().unwrap();
        }
        assert_eq!(text.matches("# TYPE").count(), 8);
    }
}
