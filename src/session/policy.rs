//! Whether a session is still valid, and why not. Pure: a record, what is
//! known about its user, the policy and the current time go in; a verdict
//! comes out.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::config::SessionSettings;

use super::SessionRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
}

impl SessionPolicy {
    /// Whether the record is past one of its timeouts at `now`, and which.
    pub fn timed_out(&self, record: &SessionRecord, now: Timestamp) -> Option<EndReason> {
        if now.since(record.created_at) >= self.absolute_timeout {
            Some(EndReason::Expired)
        } else if now.since(record.last_seen) >= self.idle_timeout {
            Some(EndReason::Idle)
        } else {
            None
        }
    }
}

/// The limits that apply to one user: the general ones, tightened by each
/// of their groups' overrides and by their own `max_devices`. The smallest
/// applicable value wins; a device limit of 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserLimits {
    pub policy: SessionPolicy,
    pub max_devices: u32,
}

fn tighter_limit(a: u32, b: u32) -> u32 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (x, y) => x.min(y),
    }
}

pub fn limits_for(
    general: &SessionSettings,
    groups: &[String],
    own_max: Option<u32>,
) -> UserLimits {
    let mut limits = UserLimits {
        policy: SessionPolicy {
            idle_timeout: general.idle_timeout,
            absolute_timeout: general.absolute_timeout,
        },
        max_devices: general.max_devices,
    };
    for over in groups.iter().filter_map(|g| general.groups.get(g)) {
        if let Some(d) = over.idle_timeout {
            limits.policy.idle_timeout = limits.policy.idle_timeout.min(d);
        }
        if let Some(d) = over.absolute_timeout {
            limits.policy.absolute_timeout = limits.policy.absolute_timeout.min(d);
        }
        if let Some(n) = over.max_devices {
            limits.max_devices = tighter_limit(limits.max_devices, n);
        }
    }
    if let Some(n) = own_max {
        limits.max_devices = tighter_limit(limits.max_devices, n);
    }
    limits
}

/// Sessions created before these instants are invalid. Moving a
/// watermark is how everyone is signed out at once: O(1), no row deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Watermarks {
    /// Start of the gateway, with `invalidate_on_restart`.
    pub restart: Timestamp,
    /// An administrator's revoke-all.
    pub revoked: Timestamp,
    /// The latest scheduled fire that applies to the user.
    pub scheduled: Option<Timestamp>,
}

impl Watermarks {
    /// The latest of the marks: sessions created before it are over.
    pub fn latest(&self) -> Timestamp {
        self.restart
            .max(self.revoked)
            .max(self.scheduled.unwrap_or(self.restart))
    }

    /// Why a session created at `created` is invalid under these marks.
    pub fn reason(&self, created: Timestamp) -> Option<EndReason> {
        if created < self.restart {
            Some(EndReason::Restart)
        } else if created < self.revoked {
            Some(EndReason::Revoked)
        } else if self.scheduled.is_some_and(|s| created < s) {
            Some(EndReason::Scheduled)
        } else {
            None
        }
    }
}

/// Whether a stored session still counts against its user's device limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub now: Timestamp,
    pub policy: SessionPolicy,
    pub marks: Watermarks,
    pub password_fingerprint: [u8; 8],
}

impl Liveness {
    pub fn is_live(&self, record: &SessionRecord) -> bool {
        let user = UserState::Active {
            password_fingerprint: self.password_fingerprint,
        };
        let verdict = evaluate(record, user, &self.policy, &self.marks, self.now);
        matches!(verdict, Verdict::Valid { .. })
    }
}

/// Why a session ended; shown to the user on the login page as `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
    marks: &Watermarks,
    now: Timestamp,
) -> Verdict {
    if let Some(reason) = record.ended {
        return Verdict::Ended(reason);
    }
    match user {
        UserState::Missing | UserState::Disabled => return Verdict::Ended(EndReason::Revoked),
        UserState::Active {
            password_fingerprint,
        } if password_fingerprint != record.password_fingerprint => {
            return Verdict::Ended(EndReason::Password)
        }
        UserState::Active { .. } => {}
    }
    if let Some(reason) = marks.reason(record.created_at) {
        return Verdict::Ended(reason);
    }
    if let Some(reason) = policy.timed_out(record, now) {
        return Verdict::Ended(reason);
    }
    Verdict::Valid {
        touch: now.since(record.last_seen) >= touch_interval(policy.idle_timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: [u8; 8] = [1; 8];
    const ACTIVE: UserState = UserState::Active {
        password_fingerprint: FP,
    };
    const NO_MARKS: Watermarks = Watermarks {
        restart: Timestamp::from_millis(0),
        revoked: Timestamp::from_millis(0),
        scheduled: None,
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
            groups: Vec::new().into(),
            ended: None,
        }
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn idle_timeout_boundary() {
        let r = record(0, 50_000);
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), &NO_MARKS, at(149_999)),
            Verdict::Valid { touch: true }
        );
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), &NO_MARKS, at(150_000)),
            Verdict::Ended(EndReason::Idle)
        );
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), &NO_MARKS, at(150_001)),
            Verdict::Ended(EndReason::Idle)
        );
    }

    #[test]
    fn absolute_timeout_boundary_wins_over_activity() {
        let r = record(0, 999_000);
        assert!(matches!(
            evaluate(&r, ACTIVE, &policy(), &NO_MARKS, at(999_999)),
            Verdict::Valid { .. }
        ));
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), &NO_MARKS, at(1_000_000)),
            Verdict::Ended(EndReason::Expired)
        );
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), &NO_MARKS, at(1_000_001)),
            Verdict::Ended(EndReason::Expired)
        );
    }

    #[test]
    fn touch_is_throttled() {
        // idle 100 s → touch at most every 10 s
        let r = record(0, 10_000);
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), &NO_MARKS, at(19_999)),
            Verdict::Valid { touch: false }
        );
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), &NO_MARKS, at(20_000)),
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
            evaluate(&r, UserState::Missing, &policy(), &NO_MARKS, at(1)),
            Verdict::Ended(EndReason::Revoked)
        );
        assert_eq!(
            evaluate(&r, UserState::Disabled, &policy(), &NO_MARKS, at(1)),
            Verdict::Ended(EndReason::Revoked)
        );
        let changed = UserState::Active {
            password_fingerprint: [2; 8],
        };
        assert_eq!(
            evaluate(&r, changed, &policy(), &NO_MARKS, at(1)),
            Verdict::Ended(EndReason::Password)
        );
    }

    #[test]
    fn watermark_boundaries() {
        let r = record(5_000, 5_000);
        let marks = |restart, revoked, scheduled: Option<u64>| Watermarks {
            restart: at(restart),
            revoked: at(revoked),
            scheduled: scheduled.map(at),
        };
        let check = |m: Watermarks| evaluate(&r, ACTIVE, &policy(), &m, at(6_000));
        // created at 5_000: a watermark at 5_000 keeps it, 5_001 ends it
        assert!(matches!(
            check(marks(5_000, 0, None)),
            Verdict::Valid { .. }
        ));
        assert_eq!(
            check(marks(5_001, 0, None)),
            Verdict::Ended(EndReason::Restart)
        );
        assert!(matches!(
            check(marks(0, 5_000, None)),
            Verdict::Valid { .. }
        ));
        assert_eq!(
            check(marks(0, 5_001, None)),
            Verdict::Ended(EndReason::Revoked)
        );
        assert!(matches!(
            check(marks(0, 0, Some(4_999))),
            Verdict::Valid { .. }
        ));
        assert!(matches!(
            check(marks(0, 0, Some(5_000))),
            Verdict::Valid { .. }
        ));
        assert_eq!(
            check(marks(0, 0, Some(5_001))),
            Verdict::Ended(EndReason::Scheduled)
        );
        // the first cause in time order is the one reported
        assert_eq!(
            check(marks(9_000, 9_000, Some(9_000))),
            Verdict::Ended(EndReason::Restart)
        );
    }

    #[test]
    fn tombstones_tell_why_they_ended() {
        let mut r = record(0, 0);
        r.ended = Some(EndReason::Evicted);
        assert_eq!(
            evaluate(&r, ACTIVE, &policy(), &NO_MARKS, at(1)),
            Verdict::Ended(EndReason::Evicted)
        );
        let live = Liveness {
            now: at(1),
            policy: policy(),
            marks: NO_MARKS,
            password_fingerprint: FP,
        };
        assert!(!live.is_live(&r));
        assert!(live.is_live(&record(0, 0)));
        let other_password = Liveness {
            password_fingerprint: [9; 8],
            ..live
        };
        assert!(!other_password.is_live(&record(0, 0)));
    }

    fn general() -> SessionSettings {
        use crate::config::{GroupOverride, OnDeviceLimit, StoreKind};
        let mut groups = std::collections::BTreeMap::new();
        groups.insert(
            "kiosk".to_string(),
            GroupOverride {
                max_devices: Some(1),
                idle_timeout: Some(Duration::from_secs(300)),
                absolute_timeout: None,
            },
        );
        groups.insert(
            "lax".to_string(),
            GroupOverride {
                max_devices: Some(10),
                idle_timeout: Some(Duration::from_secs(7200)),
                absolute_timeout: Some(Duration::from_secs(60)),
            },
        );
        SessionSettings {
            store: StoreKind::Memory,
            cookie_secure: true,
            idle_timeout: Duration::from_secs(1800),
            absolute_timeout: Duration::from_secs(86_400),
            max_devices: 3,
            on_device_limit: OnDeviceLimit::Reject,
            groups,
            invalidate_on_restart: true,
        }
    }

    #[test]
    fn the_smallest_applicable_limit_wins() {
        let g = general();
        let plain = limits_for(&g, &[], None);
        assert_eq!(plain.max_devices, 3);
        assert_eq!(plain.policy.idle_timeout, Duration::from_secs(1800));

        let kiosk = limits_for(&g, &["kiosk".into()], None);
        assert_eq!(kiosk.max_devices, 1);
        assert_eq!(kiosk.policy.idle_timeout, Duration::from_secs(300));
        assert_eq!(kiosk.policy.absolute_timeout, Duration::from_secs(86_400));

        // a larger override never loosens; a smaller one in any field applies
        let lax = limits_for(&g, &["lax".into()], None);
        assert_eq!(lax.max_devices, 3);
        assert_eq!(lax.policy.idle_timeout, Duration::from_secs(1800));
        assert_eq!(lax.policy.absolute_timeout, Duration::from_secs(60));

        assert_eq!(limits_for(&g, &["lax".into()], Some(2)).max_devices, 2);
        assert_eq!(
            limits_for(&g, &[], Some(0)).max_devices,
            3,
            "0 means no own limit"
        );
        let mut unlimited = g.clone();
        unlimited.max_devices = 0;
        assert_eq!(limits_for(&unlimited, &[], None).max_devices, 0);
        assert_eq!(
            limits_for(&unlimited, &["lax".into()], None).max_devices,
            10
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
