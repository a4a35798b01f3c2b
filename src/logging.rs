//! The log subscriber. `RUST_LOG` sets levels as usual, but the framework's
//! own targets (Pingora, h2, hyper, the Redis client) are capped at `info`
//! whatever it says: at debug and trace they print raw request bytes and
//! the headers sent upstream, which carry the session cookie, the signed
//! identity assertion and, in a login form, the password. Framework lines
//! that report nothing wrong are dropped too.
//!
//! `--log-unsafe` (or `GATEHOUSE_LOG_UNSAFE=1`) lifts both, for debugging
//! the framework itself, and says so loudly at start. Never logs a secret
//! of its own.

use tracing::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// A database or store URL as it may be logged: scheme, host and path,
/// without credentials (`user:password@`) or a query (`?password=`).
pub fn url_for_log(url: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => url.to_string(),
    }
}

/// Crates (and their `_suffixed` siblings: `pingora_core`, `hyper_util`)
/// whose debug and trace lines print request or response bytes, and the
/// most verbose level they may log at by default.
const CAPPED: &[(&str, Level)] = &[
    ("pingora", Level::INFO),
    ("h2", Level::INFO),
    ("hyper", Level::INFO),
    ("redis", Level::INFO),
];

/// Framework lines that look alarming but report nothing wrong: (target,
/// start of the message).
const HARMLESS: &[(&str, &str)] = &[
    // The pooled connection was not usable; Pingora opens a fresh one and
    // the request succeeds.
    (
        "pingora_core::connectors",
        "failed to acquire reusable stream",
    ),
    // The client went away (closed or reset its connection) before its
    // request was read: nothing to answer and nothing wrong here.
    ("pingora_proxy", "Fail to proxy: Downstream ReadError"),
    ("pingora_proxy", "Fail to proxy: Downstream WriteError"),
    (
        "pingora_proxy",
        "Fail to proxy: Downstream ConnectionClosed",
    ),
];

/// The environment variable that lifts the cap (any value but "" or "0").
pub const UNSAFE_ENV: &str = "GATEHOUSE_LOG_UNSAFE";

#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    pub json: bool,
    /// Framework targets at the level `RUST_LOG` asks for, harmless lines
    /// kept: may print session cookies, assertions and passwords.
    pub unsafe_framework: bool,
}

impl LogOptions {
    /// Whether the environment asks for the cap to be lifted.
    pub fn unsafe_from_env() -> bool {
        std::env::var(UNSAFE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
    }
}

/// Installs the subscriber (and the bridge from the `log` crate, which
/// Pingora and the Redis client use) for the whole process; logs to
/// standard error. A second call does nothing.
pub fn init(options: LogOptions) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let gate = (!options.unsafe_framework).then_some(FrameworkGate);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(gate).with(filter);
    let installed = if options.json {
        registry.with(fmt.json()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
    if installed.is_err() {
        return;
    }
    if options.unsafe_framework {
        tracing::warn!(
            "{UNSAFE_ENV} / --log-unsafe: framework logs are not capped; at debug and trace they print session cookies, identity assertions and passwords. Turn it off after debugging."
        );
    } else {
        // Seen only by whoever asked for debug: why Pingora stays quiet.
        tracing::debug!(
            "framework targets (pingora, h2, hyper, redis) log at info at most; --log-unsafe or {UNSAFE_ENV}=1 lifts that"
        );
    }
}

/// Whether a line from `target` at `level` may be logged at all by default.
fn within_cap(target: &str, level: &Level) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    CAPPED
        .iter()
        .find(|(name, _)| {
            krate == *name
                || krate
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('_'))
        })
        .is_none_or(|(_, cap)| level <= cap)
}

/// Whether a line is one of the known harmless ones.
fn harmless(target: &str, message: &str) -> bool {
    HARMLESS
        .iter()
        .any(|(t, m)| target == *t && message.starts_with(m))
}

/// A layer that only filters: the cap by target and level, and the
/// harmless lines by message.
struct FrameworkGate;

impl<S: Subscriber> Layer<S> for FrameworkGate {
    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        within_cap(metadata.target(), metadata.level())
    }

    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        // Lines from the `log` crate carry their real target in fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if !within_cap(meta.target(), meta.level()) {
            return false;
        }
        if !HARMLESS.iter().any(|(t, _)| *t == meta.target()) {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        !harmless(meta.target(), &message.0)
    }
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framework_targets_stop_at_info_and_ours_do_not() {
        for target in [
            "pingora_core::protocols::http::v1::server",
            "pingora_proxy::proxy_h1",
            "pingora",
            "h2::codec::framed_read",
            "hyper_util::client",
            "redis::aio",
        ] {
            assert!(!within_cap(target, &Level::DEBUG), "{target}");
            assert!(!within_cap(target, &Level::TRACE), "{target}");
            assert!(within_cap(target, &Level::INFO), "{target}");
            assert!(within_cap(target, &Level::ERROR), "{target}");
        }
        for target in [
            "gatehouse::access",
            "gatehouse",
            "h2o",
            "pingoratest",
            "log",
        ] {
            assert!(within_cap(target, &Level::TRACE), "{target}");
        }
    }

    #[test]
    fn only_the_listed_lines_are_harmless() {
        assert!(harmless(
            "pingora_core::connectors",
            "failed to acquire reusable stream"
        ));
        assert!(!harmless(
            "pingora_core::connectors",
            "failed to connect: refused"
        ));
        assert!(!harmless(
            "pingora_proxy",
            "failed to acquire reusable stream"
        ));
    }
}
