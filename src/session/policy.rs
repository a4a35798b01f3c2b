//! Whether a session is still valid, and why not. Pure: a record, what is
//! known about its user, the policy and the current time go in; a verdict
//! comes out.

use std::time::Duration;

use crate::clock::Timestamp;

use super::SessionRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
}

/// Why a session ended; shown to the user on the login page as `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Idle,
    Expired,
    Restart,
    Scheduled,
    Password,
    Evicted,
    Revoked,
    Logout,
}

impl EndReason {
    pub const ALL: [EndReason; 8] = [
        EndReason::Idle,
        EndReason::Expired,
        EndReason::Restart,
        EndReason::Scheduled,
        EndReason::Password,
        EndReason::Evicted,
        EndReason::Revoked,
        EndReason::Logout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Expired => "expired",
            EndReason::Restart => "restart",
            EndReason::Scheduled => "scheduled",
            EndReason::Password => "password",
            EndReason::Evicted => "evicted",
            EndReason::Revoked => "revoked",
            EndReason::Logout => "logout",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The sentence the login page shows.
    pub fn message(self) -> &'static str {
        match self {
            EndReason::Idle => "You were signed out after a period of inactivity.",
            EndReason::Expired => "Your session reached its maximum length. Please sign in again.",
            EndReason::Restart => "The sign-in service restarted, so everyone was signed out.",
            EndReason::Scheduled => "Everyone was signed out at a scheduled time.",
            EndReason::Password => "Your password was changed, so this session ended.",
            EndReason::Evicted => {
                "You were signed out because your account signed in on another device."
            }
            EndReason::Revoked => "Your session was ended by an administrator.",
            EndReason::Logout => "You have been signed out.",
        }
    }
}

/// What the gateway knows about the session's user right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Missing,
    Disabled,
    Active { password_fingerprint: [u8; 8] },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid; `touch` says whether `last_seen` is due a write.
    Valid {
        touch: bool,
    },
    Ended(EndReason),
}

/// `last_seen` is written at most this often, so a busy user costs no store
/// write per request.
pub fn touch_interval(idle_timeout: Duration) -> Duration {
    (idle_timeout / 10).min(Duration::from_secs(60))
}

pub fn evaluate(
    record: &SessionRecord,
    user: UserState,
    policy: &SessionPolicy,
    now: Timestamp,
) -> Verdict {
    match user {
        UserState::Missing | UserState::Disabled => return Verdict::Ended(EndReason::Revoked),
        UserState::Active {
            password_fingerprint,
        } if password_fingerprint != record.password_fingerprint => {
            return Verdict::Ended(EndReason::Password)
        }
        UserState::Active { .. } => {}
    }
    if now.since(record.created_at) >= policy.absolute_timeout {
        return Verdict::Ended(EndReason::Expired);
    }
    let quiet = now.since(record.last_seen);
    if quiet >= policy.idle_timeout {
        return Verdict::Ended(EndReason::Idle);
    }
    Verdict::Valid {
        touch: quiet >= touch_interval(policy.idle_timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: [u8; 8] = [1; 8];
    const ACTIVE: UserState = UserState::Active {
        password_fingerprint: FP,
    };

    fn policy() -> SessionPolicy {
        SessionPolicy {
            idle_timeout: Duration::from_secs(100),
            absolute_timeout: Duration::from_secs(1000),
        }
    }

    fn record(created: u64, last_seen: u64) -> SessionRecord {
        SessionRecord {
            user: "alice".into(),
            created_at: Timestamp::from_millis(created),
            last_seen: Timestamp::from_millis(last_seen),
            client_ip: None,
            user_agent: String::new(),
            password_fingerprint: FP,
            groups: vec![],
        }
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn idle_timeout_boundary() {
        let r = record(0, 50_000);
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), at(149_999)),
            Verdict::Valid { touch: true }
        );
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), at(150_000)),
            Verdict::Ended(EndReason::Idle)
        );
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), at(150_001)),
            Verdict::Ended(EndReason::Idle)
        );
    }

    #[test]
    fn absolute_timeout_boundary_wins_over_activity() {
        let r = record(0, 999_000);
        assert!(matches!(
            evaluate(&r, ACTIVE, &policy(), at(999_999)),
            Verdict::Valid { .. }
        ));
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), at(1_000_000)),
            Verdict::Ended(EndReason::Expired)
        );
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), at(1_000_001)),
            Verdict::Ended(EndReason::Expired)
        );
    }

    #[test]
    fn touch_is_throttled() {
        // idle 100 s → touch at most every 10 s
        let r = record(0, 10_000);
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), at(19_999)),
            Verdict::Valid { touch: false }
        );
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), at(20_000)),
            Verdict::Valid { touch: true }
        );
        assert_eq!(
            touch_interval(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            touch_interval(Duration::from_secs(2)),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn user_changes_end_the_session() {
        let r = record(0, 0);
        assert_eq!(
            evaluate(&r, UserState::Missing, &policy(), at(1)),
            Verdict::Ended(EndReason::Revoked)
        );
        assert_eq!(
            evaluate(&r, UserState::Disabled, &policy(), at(1)),
            Verdict::Ended(EndReason::Revoked)
        );
        let changed = UserState::Active {
            password_fingerprint: [2; 8],
        };
        assert_eq!(
            evaluate(&r, changed, &policy(), at(1)),
            Verdict::Ended(EndReason::Password)
        );
    }

    #[test]
    fn reasons_round_trip() {
        for r in EndReason::ALL {
            assert_eq!(EndReason::parse(r.as_str()), Some(r));
            assert!(!r.message().is_empty());
        }
        assert_eq!(EndReason::parse("nope"), None);
    }
}
