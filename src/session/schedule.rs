//! Scheduled invalidation: "every session created before the most recent
//! fire time is invalid". Evaluated, not executed: a gateway that was down at
//! 02:00 still enforces the 02:00 logout when it comes back, and instances
//! agree without talking to each other.
//!
//! Daylight saving time follows croner's rules: a fire time that falls in a
//! spring-forward gap (01:30 on the day clocks jump from 01:00 to 02:00)
//! fires at the first instant after the gap; a fire time that happens twice
//! when clocks fall back fires once, at its first occurrence.

use arc_swap::ArcSwapOption;
use croner::Cron;
use std::fmt;
use std::str::FromStr;

use crate::clock::Timestamp;

/// One `[[invalidation.schedule]]` entry, parsed, with a cached
/// (last fire, next fire) pair so a request costs two atomic loads.
pub struct Schedule {
    pub cron_text: String,
    pub timezone_name: String,
    pub exempt_groups: Vec<String>,
    cron: Cron,
    tz: jiff::tz::TimeZone,
    /// Swapped whole, so a reader never mixes two computations.
    cache: ArcSwapOption<FirePair>,
}

/// `last` is the latest fire for any time in [`from`, `next`).
struct FirePair {
    from: Timestamp,
    last: Option<Timestamp>,
    next: Option<Timestamp>,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Schedule({:?} in {})",
            self.cron_text, self.timezone_name
        )
    }
}

impl Schedule {
    pub fn parse(cron: &str, timezone: &str, exempt_groups: Vec<String>) -> Result<Self, String> {
        let parsed = Cron::from_str(cron.trim()).map_err(|e| {
            format!("expected a cron expression like \"0 2 * * *\" (minute hour day month weekday), found {cron:?}: {e}")
        })?;
        let tz = jiff::tz::TimeZone::get(timezone).map_err(|_| {
            format!(
                "expected an IANA time zone like \"Europe/Dublin\" or \"UTC\", found {timezone:?}"
            )
        })?;
        // "0 0 30 2 *" (30 February) parses but never fires: refuse it.
        let probe = jiff::Timestamp::now().to_zoned(tz.clone());
        if parsed.find_next_occurrence(&probe, false).is_err() {
            return Err(format!("the cron expression {cron:?} never fires"));
        }
        Ok(Schedule {
            cron_text: cron.trim().to_string(),
            timezone_name: timezone.to_string(),
            exempt_groups,
            cron: parsed,
            tz,
            cache: ArcSwapOption::empty(),
        })
    }

    fn zoned(&self, t: Timestamp) -> Option<jiff::Zoned> {
        let ms = i64::try_from(t.as_millis()).ok()?;
        Some(
            jiff::Timestamp::from_millisecond(ms)
                .ok()?
                .to_zoned(self.tz.clone()),
        )
    }

    fn to_timestamp(z: &jiff::Zoned) -> Option<Timestamp> {
        u64::try_from(z.timestamp().as_millisecond())
            .ok()
            .map(Timestamp::from_millis)
    }

    /// The most recent fire time at or before `now`, computed afresh.
    pub fn previous_fire(&self, now: Timestamp) -> Option<Timestamp> {
        let z = self.zoned(now)?;
        let prev = self.cron.find_previous_occurrence(&z, true).ok()?;
        Self::to_timestamp(&prev)
    }

    /// The first fire time after `now`, computed afresh.
    pub fn next_fire(&self, now: Timestamp) -> Option<Timestamp> {
        let z = self.zoned(now)?;
        let next = self.cron.find_next_occurrence(&z, false).ok()?;
        Self::to_timestamp(&next)
    }

    /// `previous_fire` through the cache: recomputed only when `now` leaves
    /// the interval it was computed for (either way: clocks in tests move
    /// back too). Racing requests each store a correct pair.
    pub fn last_fire(&self, now: Timestamp) -> Option<Timestamp> {
        if let Some(pair) = self.cache.load().as_ref() {
            if pair.from <= now && pair.next.is_none_or(|n| now < n) {
                return pair.last;
            }
        }
        let pair = FirePair {
            from: now,
            last: self.previous_fire(now),
            next: self.next_fire(now),
        };
        let last = pair.last;
        self.cache.store(Some(std::sync::Arc::new(pair)));
        last
    }

    pub fn exempts(&self, groups: &[String]) -> bool {
        groups.iter().any(|g| self.exempt_groups.contains(g))
    }
}

/// The latest fire time, over all schedules that apply to a user with
/// these groups: sessions created before it are invalid.
pub fn scheduled_watermark(
    schedules: &[std::sync::Arc<Schedule>],
    groups: &[String],
    now: Timestamp,
) -> Option<Timestamp> {
    schedules
        .iter()
        .filter(|s| !s.exempts(groups))
        .filter_map(|s| s.last_fire(now))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds of a wall-clock time in a zone (the earlier one if it
    /// happens twice).
    fn local(tz: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8, s: i8) -> Timestamp {
        let zone = jiff::tz::TimeZone::get(tz).unwrap();
        let z = zone
            .to_ambiguous_zoned(jiff::civil::date(y, mo, d).at(h, mi, s, 0))
            .earlier()
            .unwrap();
        Timestamp::from_millis(u64::try_from(z.timestamp().as_millisecond()).unwrap())
    }

    fn utc(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
        local("UTC", y, mo, d, h, mi, 0)
    }

    fn dublin(cron: &str) -> Schedule {
        Schedule::parse(cron, "Europe/Dublin", vec!["oncall".into()]).unwrap()
    }

    #[test]
    fn nightly_logout_at_two_in_dublin() {
        let s = dublin("0 2 * * *");
        let fire = local("Europe/Dublin", 2026, 1, 15, 2, 0, 0);
        // just before 02:00 the last fire was the night before
        let before = s
            .last_fire(local("Europe/Dublin", 2026, 1, 15, 1, 59, 59))
            .unwrap();
        assert_eq!(before, local("Europe/Dublin", 2026, 1, 14, 2, 0, 0));
        assert_eq!(
            s.last_fire(fire),
            Some(fire),
            "a fire time counts at that instant"
        );
        assert_eq!(
            s.last_fire(local("Europe/Dublin", 2026, 1, 15, 2, 0, 1)),
            Some(fire)
        );
        assert_eq!(
            s.last_fire(local("Europe/Dublin", 2026, 1, 15, 23, 0, 0)),
            Some(fire)
        );
        // summer: 02:00 IST is 01:00 UTC
        assert_eq!(
            s.previous_fire(utc(2026, 7, 1, 1, 30)),
            Some(utc(2026, 7, 1, 1, 0))
        );
    }

    #[test]
    fn a_gateway_down_across_the_fire_time_still_enforces_it() {
        let s = dublin("0 2 * * *");
        // "down" from 01:00 to 09:00: the first evaluation after start
        let first_look = local("Europe/Dublin", 2026, 3, 3, 9, 0, 0);
        assert_eq!(
            s.last_fire(first_look),
            Some(local("Europe/Dublin", 2026, 3, 3, 2, 0, 0))
        );
    }

    #[test]
    fn the_cache_follows_the_clock_both_ways() {
        let s = dublin("0 2 * * *");
        let day1 = local("Europe/Dublin", 2026, 2, 1, 12, 0, 0);
        let day3 = local("Europe/Dublin", 2026, 2, 3, 12, 0, 0);
        assert_eq!(
            s.last_fire(day1),
            Some(local("Europe/Dublin", 2026, 2, 1, 2, 0, 0))
        );
        assert_eq!(
            s.last_fire(day3),
            Some(local("Europe/Dublin", 2026, 2, 3, 2, 0, 0))
        );
        assert_eq!(
            s.last_fire(day1),
            Some(local("Europe/Dublin", 2026, 2, 1, 2, 0, 0))
        );
    }

    // 2026 in Europe/Dublin: clocks go forward on 29 March at 01:00 GMT
    // (to 02:00 IST) and back on 25 October at 02:00 IST (to 01:00 GMT).

    #[test]
    fn spring_forward_gap() {
        // 01:30 does not exist on 29 March: it fires at the end of the gap, 02:00 IST (01:00 UTC)
        let s = dublin("30 1 * * *");
        assert_eq!(
            s.previous_fire(utc(2026, 3, 29, 1, 30)),
            Some(utc(2026, 3, 29, 1, 0))
        );
        assert_eq!(
            s.previous_fire(utc(2026, 3, 29, 0, 59)),
            Some(utc(2026, 3, 28, 1, 30))
        );
        assert_eq!(
            s.previous_fire(utc(2026, 3, 30, 1, 0)),
            Some(utc(2026, 3, 30, 0, 30))
        );
        // 02:00 exists (it is the first instant after the gap): 01:00 UTC
        let s = dublin("0 2 * * *");
        assert_eq!(
            s.previous_fire(utc(2026, 3, 29, 1, 0)),
            Some(utc(2026, 3, 29, 1, 0))
        );
        assert_eq!(
            s.previous_fire(utc(2026, 3, 29, 0, 59)),
            Some(utc(2026, 3, 28, 2, 0))
        );
    }

    #[test]
    fn fall_back_overlap_fires_once() {
        // 01:30 happens twice on 25 October (00:30 UTC in IST, 01:30 UTC in GMT): it fires at the first
        let s = dublin("30 1 * * *");
        assert_eq!(
            s.previous_fire(utc(2026, 10, 25, 0, 45)),
            Some(utc(2026, 10, 25, 0, 30))
        );
        assert_eq!(
            s.previous_fire(utc(2026, 10, 25, 1, 45)),
            Some(utc(2026, 10, 25, 0, 30))
        );
        assert_eq!(
            s.next_fire(utc(2026, 10, 25, 0, 31)),
            Some(utc(2026, 10, 26, 1, 30))
        );
        // 02:00 happens once (01:00 IST → back to 01:00 GMT at 02:00 IST): 02:00 GMT
        let s = dublin("0 2 * * *");
        assert_eq!(
            s.previous_fire(utc(2026, 10, 25, 2, 30)),
            Some(utc(2026, 10, 25, 2, 0))
        );
        assert_eq!(
            s.previous_fire(utc(2026, 10, 25, 1, 59)),
            Some(utc(2026, 10, 24, 1, 0))
        );
    }

    #[test]
    fn exempt_groups_are_skipped() {
        let s = std::sync::Arc::new(dublin("0 2 * * *"));
        let now = local("Europe/Dublin", 2026, 1, 15, 12, 0, 0);
        assert!(scheduled_watermark(std::slice::from_ref(&s), &["staff".into()], now).is_some());
        assert_eq!(
            scheduled_watermark(&[s], &["staff".into(), "oncall".into()], now),
            None
        );
    }

    #[test]
    fn bad_entries_say_what_was_expected() {
        assert!(Schedule::parse("every night", "UTC", vec![])
            .unwrap_err()
            .contains("cron expression"));
        assert!(Schedule::parse("0 2 * * *", "Mars/Olympus", vec![])
            .unwrap_err()
            .contains("IANA"));
        assert!(Schedule::parse("0 0 30 2 *", "UTC", vec![])
            .unwrap_err()
            .contains("never fires"));
    }
}
