//! Outages as events, not per-request lines. One `Outage` watches one
//! backend ("redis store redis://…", "users database postgres://…",
//! "upstream 127.0.0.1:8000"): the first failure writes one ERROR naming the
//! backend and the cause; later failures are counted, and mentioned again
//! at most once every `REMIND_EVERY`; the first success after them writes
//! one WARN with the outage's length and what was refused meanwhile.
//!
//! Never logs what a request carried: only the backend's name, the
//! backend's own error, counts and durations.

use parking_lot::Mutex;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a continuing outage is mentioned again.
pub const REMIND_EVERY: Duration = Duration::from_secs(30);

/// What a refusal cost a user, for the outage's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A page, an API call, an own page or an admin call.
    Request,
    Login,
}

/// The log line a change of state calls for; decided apart from writing
/// it, so the decisions are tested without a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Started {
        cause: String,
    },
    Continuing {
        after: Duration,
        tally: Tally,
        cause: String,
    },
    Ended {
        after: Duration,
        tally: Tally,
    },
}

/// What failed during one outage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Operations on the backend that failed (several per request, or in
    /// the background).
    pub failures: u64,
    pub requests: u64,
    pub logins: u64,
}

impl fmt::Display for Tally {
    /// "41 requests and 3 logins refused, 57 operations failed", leaving
    /// out what did not happen.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        let refused: Vec<String> = [(self.requests, "request"), (self.logins, "login")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| plural(n, what))
            .collect();
        let refused = match refused.as_slice() {
            [] => "nothing refused".to_string(),
            parts => format!("{} refused", parts.join(" and ")),
        };
        match self.failures {
            0 => f.write_str(&refused),
            n => write!(f, "{refused}, {} failed", plural(n, "operation")),
        }
    }
}

struct Down {
    since: Instant,
    last_line: Instant,
    cause: String,
    tally: Tally,
}

#[derive(Default)]
struct State {
    current: Option<Down>,
    /// When the last outage was seen to end.
    ended_at: Option<Instant>,
}

pub struct Outage {
    backend: String,
    /// Read without the lock on every success: the steady state costs one
    /// atomic load.
    down: AtomicBool,
    state: Mutex<State>,
    remind_every: Duration,
    /// Failures this soon after the end were begun during the outage
    /// (an operation gives up only after its timeout): they neither open a
    /// new outage nor make a line.
    settle: Duration,
}

impl Outage {
    /// `settle`: the longest an operation on the backend may take, so its
    /// failure reported after the end still belongs to the outage.
    pub fn new(backend: impl Into<String>, settle: Duration) -> Self {
        Outage {
            backend: backend.into(),
            down: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            remind_every: REMIND_EVERY,
            settle,
        }
    }

    /// Whether the backend is failing now (for callers that would log a
    /// failure of their own: the outage's lines already cover it).
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// An operation on the backend failed.
    pub fn failed(&self, cause: &dyn fmt::Display) {
        let line = self.note(Instant::now(), None, cause);
        self.write(line);
    }

    /// A request or login was refused because the backend failed.
    pub fn refused(&self, what: Refused, cause: &dyn fmt::Display) {
        let line = self.note(Instant::now(), Some(what), cause);
        self.write(line);
    }

    /// An operation on the backend succeeded.
    pub fn succeeded(&self) {
        if !self.is_down() {
            return;
        }
        let line = self.end(Instant::now());
        self.write(line);
    }

    fn note(&self, now: Instant, what: Option<Refused>, cause: &dyn fmt::Display) -> Option<Line> {
        let mut state = self.state.lock();
        let settling = state
            .ended_at
            .is_some_and(|end| now.saturating_duration_since(end) < self.settle);
        let started = state.current.is_none();
        if started && settling {
            return None;
        }
        let down = state.current.get_or_insert_with(|| Down {
            since: now,
            last_line: now,
            cause: String::new(),
            tally: Tally::default(),
        });
        match what {
            Some(Refused::Request) => down.tally.requests += 1,
            Some(Refused::Login) => down.tally.logins += 1,
            // A refusal follows the failure that caused it: count that once.
            None => down.tally.failures += 1,
        }
        down.cause = cause.to_string();
        if started {
            self.down.store(true, Ordering::Release);
            return Some(Line::Started {
                cause: down.cause.clone(),
            });
        }
        if now.saturating_duration_since(down.last_line) >= self.remind_every {
            down.last_line = now;
            return Some(Line::Continuing {
                after: now.saturating_duration_since(down.since),
                tally: down.tally,
                cause: down.cause.clone(),
            });
        }
        None
    }

    fn end(&self, now: Instant) -> Option<Line> {
        let mut state = self.state.lock();
        let down = state.current.take()?;
        state.ended_at = Some(now);
        self.down.store(false, Ordering::Release);
        Some(Line::Ended {
            after: now.saturating_duration_since(down.since),
            tally: down.tally,
        })
    }

    fn write(&self, line: Option<Line>) {
        let backend = self.backend.as_str();
        match line {
            None => {}
            Some(Line::Started { cause }) => tracing::error!(
                target: "gatehouse::outage",
                event = "outage_started",
                backend,
                "{backend} is unreachable: {cause}; what needs it is refused until it is back"
            ),
            Some(Line::Continuing {
                after,
                tally,
                cause,
            }) => tracing::warn!(
                target: "gatehouse::outage",
                event = "outage_continues",
                backend,
                outage_ms = millis(after),
                requests = tally.requests,
                logins = tally.logins,
                failures = tally.failures,
                "{backend} still unreachable after {}: {tally} so far; last error: {cause}",
                seconds(after)
            ),
            Some(Line::Ended { after, tally }) => tracing::warn!(
                target: "gatehouse::outage",
                event = "outage_ended",
                backend,
                outage_ms = millis(after),
                requests = tally.requests,
                logins = tally.logins,
                failures = tally.failures,
                "{backend} is back after {}: {tally} during the outage",
                seconds(after)
            ),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(500);

    fn outage() -> Outage {
        Outage::new("redis store redis://127.0.0.1:1/0", SETTLE)
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn an_outage_is_one_line_when_it_starts_and_one_when_it_ends() {
        let o = outage();
        let t0 = Instant::now();
        assert_eq!(
            o.note(t0, None, &"Connection refused"),
            Some(Line::Started {
                cause: "Connection refused".into()
            })
        );
        assert!(o.is_down());
        for ms in 1..200 {
            assert_eq!(o.note(at(t0, ms), None, &"Connection refused"), None);
            assert_eq!(o.note(at(t0, ms), Some(Refused::Request), &"x"), None);
        }
        assert_eq!(o.note(at(t0, 250), Some(Refused::Login), &"x"), None);
        assert_eq!(
            o.end(at(t0, 3_000)),
            Some(Line::Ended {
                after: Duration::from_secs(3),
                tally: Tally {
                    failures: 200,
                    requests: 199,
                    logins: 1
                }
            })
        );
        assert!(!o.is_down());
        assert_eq!(o.end(at(t0, 3_001)), None, "a second success says nothing");
    }

    #[test]
    fn a_long_outage_is_mentioned_again_at_most_every_thirty_seconds() {
        let o = outage();
        let t0 = Instant::now();
        assert!(o.note(t0, None, &"timeout").is_some());
        let mut reminders = Vec::new();
        // a failure every 100 ms for 95 s
        for ms in (100..95_000).step_by(100) {
            if let Some(line) = o.note(at(t0, ms), Some(Refused::Request), &"timeout") {
                reminders.push((ms, line));
            }
        }
        let times: Vec<u64> = reminders.iter().map(|(ms, _)| *ms).collect();
        assert_eq!(times, vec![30_000, 60_000, 90_000]);
        assert!(matches!(
            &reminders[0].1,
            Line::Continuing { after, tally, .. }
                if *after == Duration::from_secs(30) && tally.requests == 300 && tally.failures == 1
        ));
    }

    #[test]
    fn failures_reported_just_after_the_end_belong_to_the_outage_that_ended() {
        let o = outage();
        let t0 = Instant::now();
        assert!(o.note(t0, None, &"timeout").is_some());
        assert!(o.end(at(t0, 2_000)).is_some());
        // operations begun while it was down give up after their timeout
        assert_eq!(o.note(at(t0, 2_100), None, &"timeout"), None);
        assert_eq!(
            o.note(at(t0, 2_400), Some(Refused::Login), &"timeout"),
            None
        );
        assert!(!o.is_down());
        // later failures are a new outage
        assert!(matches!(
            o.note(at(t0, 2_600), None, &"refused"),
            Some(Line::Started { .. })
        ));
    }

    #[test]
    fn a_refusal_alone_opens_an_outage_for_backends_that_report_nothing_else() {
        let o = outage();
        let t0 = Instant::now();
        assert!(matches!(
            o.note(t0, Some(Refused::Login), &"no answer"),
            Some(Line::Started { .. })
        ));
        assert!(matches!(
            o.end(at(t0, 10)),
            Some(Line::Ended { tally, .. }) if tally.logins == 1 && tally.failures == 0
        ));
    }

    #[test]
    fn the_summary_reads_as_a_sentence() {
        let t = Tally {
            failures: 1,
            requests: 41,
            logins: 1,
        };
        assert_eq!(
            t.to_string(),
            "41 requests and 1 login refused, 1 operation failed"
        );
        let upstream = Tally {
            requests: 26,
            ..Tally::default()
        };
        assert_eq!(upstream.to_string(), "26 requests refused");
        let quiet = Tally {
            failures: 3,
            ..Tally::default()
        };
        assert_eq!(quiet.to_string(), "nothing refused, 3 operations failed");
        assert_eq!(seconds(Duration::from_millis(3_140)), "3.1 s");
    }
}
