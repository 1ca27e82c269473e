//! Office hours and away periods: whether the therapist is available at
//! a given instant, answered offline, DST-correct (chrono-tz).
//!
//! Office hours are wall-clock ranges in the profile's IANA zone: "open
//! 9:00–17:00 on Monday" means 9 to 17 local time whatever the UTC offset
//! that day. The next opening is found by checking a small set of
//! candidate instants (every local range start, every UTC-offset change
//! and every away-period end in the search window) against the same
//! "open now?" rule that answers the present, so the two can never
//! disagree.

use std::str::FromStr;

use alcove_proto::content::PracticeProfile;
use chrono::{DateTime, Datelike, LocalResult, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::error::{Error, Result};

/// At most four ranges per weekday.
pub const MAX_HOUR_RANGES: usize = 7 * 4;
/// Away periods kept in one profile.
pub const MAX_AWAY_PERIODS: usize = 50;
/// Display name, practice name, notification label (bytes).
pub const MAX_SHORT_NAME_LEN: usize = 64;
/// Crisis resources and an away period's covering contact (bytes).
pub const MAX_CONTACT_TEXT_LEN: usize = 512;
/// The texting policy text (bytes).
pub const MAX_POLICY_LEN: usize = 8 * 1024;
/// How far ahead the next opening is searched for.
pub const NEXT_OPEN_HORIZON_MS: u64 = 14 * 24 * 60 * 60 * 1000;

const MINUTES_PER_DAY: u32 = 24 * 60;
const MS_PER_HOUR: i64 = 60 * 60 * 1000;
/// 9999-12-31T23:59:59.999Z: beyond it an instant is a broken clock, and
/// staying far inside chrono's range keeps the arithmetic below in range.
const MAX_INSTANT_MS: u64 = 253_402_300_799_999;

/// Whether the therapist is available at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Inside office hours.
    Open,
    /// Outside office hours. `next_open_ms` is the next instant office
    /// hours begin (not inside an away period) within
    /// [`NEXT_OPEN_HORIZON_MS`], or `None` when there is none.
    Closed { next_open_ms: Option<u64> },
    /// Inside an away period. `until_ms` is the end of the latest away
    /// period chained to the current one (overlapping or touching).
    Away {
        until_ms: u64,
        covering_contact: Option<String>,
    },
}

/// Checks a profile received from the network before it is stored or
/// used. Each broken rule has its own fixed reason.
pub fn validate(profile: &PracticeProfile) -> Result<()> {
    parse_zone(&profile.time_zone)?;

    if profile.hours.len() > MAX_HOUR_RANGES {
        return Err(Error::Malformed(
            "practice profile: too many office-hour ranges",
        ));
    }
    for range in &profile.hours {
        if !(1..=7).contains(&range.weekday) {
            return Err(Error::Malformed(
                "practice profile: office-hours weekday not in 1..=7",
            ));
        }
        if range.end_minute > MINUTES_PER_DAY {
            return Err(Error::Malformed(
                "practice profile: office hours end after midnight",
            ));
        }
        if range.start_minute >= range.end_minute {
            return Err(Error::Malformed(
                "practice profile: office hours start at or after their end",
            ));
        }
    }

    if profile.away.len() > MAX_AWAY_PERIODS {
        return Err(Error::Malformed("practice profile: too many away periods"));
    }
    for away in &profile.away {
        if away.start_ms >= away.end_ms {
            return Err(Error::Malformed(
                "practice profile: away period starts at or after its end",
            ));
        }
        if away.covering_contact.len() > MAX_CONTACT_TEXT_LEN {
            return Err(Error::Malformed(
                "practice profile: covering contact too long",
            ));
        }
    }

    check_short_name(
        &profile.display_name,
        "practice profile: display name too long",
        "practice profile: display name has control characters",
    )?;
    check_short_name(
        &profile.practice_name,
        "practice profile: practice name too long",
        "practice profile: practice name has control characters",
    )?;
    check_short_name(
        &profile.notification_label,
        "practice profile: notification label too long",
        "practice profile: notification label has control characters",
    )?;

    if profile.crisis_resources.len() > MAX_CONTACT_TEXT_LEN {
        return Err(Error::Malformed(
            "practice profile: crisis resources too long",
        ));
    }
    if let Some(policy) = &profile.policy {
        if policy.text.len() > MAX_POLICY_LEN {
            return Err(Error::Malformed("practice profile: policy text too long"));
        }
    }
    Ok(())
}

/// Availability at `now_ms` (ms since the Unix epoch). The profile is
/// validated first; an instant after the year 9999 is refused.
pub fn availability(profile: &PracticeProfile, now_ms: u64) -> Result<Availability> {
    validate(profile)?;
    let tz = parse_zone(&profile.time_zone)?;
    if now_ms > MAX_INSTANT_MS {
        return Err(Error::InvalidArgument("instant is out of range".to_owned()));
    }

    if let Some(away) = away_at(profile, now_ms) {
        return Ok(away);
    }
    let now = utc_from_ms(now_ms)?;
    if in_office_hours(profile, tz, now) {
        return Ok(Availability::Open);
    }
    Ok(Availability::Closed {
        next_open_ms: next_open(profile, tz, now_ms)?,
    })
}

fn parse_zone(name: &str) -> Result<Tz> {
    Tz::from_str(name).map_err(|_| Error::Malformed("practice profile: unknown time zone"))
}

fn check_short_name(value: &str, too_long: &'static str, control: &'static str) -> Result<()> {
    if value.len() > MAX_SHORT_NAME_LEN {
        return Err(Error::Malformed(too_long));
    }
    if value.chars().any(is_forbidden_in_name) {
        return Err(Error::Malformed(control));
    }
    Ok(())
}

/// C0/C1 controls, and the bidi embedding/override/isolate controls that
/// let a name display as something else (a one-line name needs none).
fn is_forbidden_in_name(c: char) -> bool {
    c.is_control()
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn utc_from_ms(ms: u64) -> Result<DateTime<Utc>> {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| Error::InvalidArgument("instant is out of range".to_owned()))
}

fn in_away(profile: &PracticeProfile, t_ms: u64) -> bool {
    profile
        .away
        .iter()
        .any(|a| a.start_ms <= t_ms && t_ms < a.end_ms)
}

/// `Away` when `now_ms` is inside an away period: until the end of the
/// chain of periods that overlap or touch it, with the covering contact
/// of the most recently started period in effect now that names one.
fn away_at(profile: &PracticeProfile, now_ms: u64) -> Option<Availability> {
    let mut current: Vec<_> = profile
        .away
        .iter()
        .filter(|a| a.start_ms <= now_ms && now_ms < a.end_ms)
        .collect();
    let mut until = current.iter().map(|a| a.end_ms).max()?;
    // At most MAX_AWAY_PERIODS extensions, each strictly later.
    loop {
        let extended = profile
            .away
            .iter()
            .filter(|a| a.start_ms <= until && a.end_ms > until)
            .map(|a| a.end_ms)
            .max();
        match extended {
            Some(end) => until = end,
            None => break,
        }
    }
    current.sort_by_key(|a| std::cmp::Reverse(a.start_ms));
    let covering_contact = current
        .iter()
        .find(|a| !a.covering_contact.is_empty())
        .map(|a| a.covering_contact.clone());
    Some(Availability::Away {
        until_ms: until,
        covering_contact,
    })
}

/// Whether the local wall-clock time of `t` falls in a range for its
/// local weekday (start inclusive, end exclusive).
fn in_office_hours(profile: &PracticeProfile, tz: Tz, t: DateTime<Utc>) -> bool {
    let local = t.with_timezone(&tz);
    let weekday = local.weekday().number_from_monday();
    let minute = local.hour() * 60 + local.minute();
    profile
        .hours
        .iter()
        .any(|r| r.weekday == weekday && r.start_minute <= minute && minute < r.end_minute)
}

fn is_available(profile: &PracticeProfile, tz: Tz, t_ms: u64) -> Result<bool> {
    Ok(!in_away(profile, t_ms) && in_office_hours(profile, tz, utc_from_ms(t_ms)?))
}

/// The first instant in (now, now + horizon] at which the office is open
/// and no away period runs. Availability only turns on where the wall
/// clock reaches a range start, where the UTC offset changes (the wall
/// clock jumps, e.g. into a range whose start fell in a spring-forward
/// gap) or where an away period ends, so those instants are the only
/// candidates. An ambiguous (fall-back) start contributes both instants;
/// the earlier one comes first.
fn next_open(profile: &PracticeProfile, tz: Tz, now_ms: u64) -> Result<Option<u64>> {
    if profile.hours.is_empty() {
        return Ok(None);
    }
    // Never past the last instant `availability` accepts, so a reported
    // opening can always be asked about.
    let end_ms = now_ms
        .saturating_add(NEXT_OPEN_HORIZON_MS)
        .min(MAX_INSTANT_MS);
    let in_window = |t: u64| now_ms < t && t <= end_ms;
    let mut candidates: Vec<u64> = Vec::new();

    // Range starts on every local date touching the window.
    let first_day = utc_from_ms(now_ms)?.with_timezone(&tz).date_naive();
    let last_day = utc_from_ms(end_ms)?.with_timezone(&tz).date_naive();
    let mut day = first_day.pred_opt().unwrap_or(first_day);
    while day <= last_day.succ_opt().unwrap_or(last_day) {
        let weekday = day.weekday().number_from_monday();
        for range in profile.hours.iter().filter(|r| r.weekday == weekday) {
            let Some(naive) = day.and_hms_opt(range.start_minute / 60, range.start_minute % 60, 0)
            else {
                continue;
            };
            // A start in a gap (LocalResult::None) is covered by the
            // offset-change candidate: the first valid instant after it.
            let instants = match tz.from_local_datetime(&naive) {
                LocalResult::Single(t) => [Some(t), None],
                LocalResult::Ambiguous(early, late) => [Some(early), Some(late)],
                LocalResult::None => [None, None],
            };
            candidates.extend(
                instants
                    .into_iter()
                    .flatten()
                    .filter_map(|t| u64::try_from(t.timestamp_millis()).ok())
                    .filter(|&t| in_window(t)),
            );
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }

    candidates.extend(offset_changes(tz, now_ms, end_ms)?);
    candidates.extend(
        profile
            .away
            .iter()
            .map(|a| a.end_ms)
            .filter(|&t| in_window(t)),
    );

    candidates.sort_unstable();
    candidates.dedup();
    for t in candidates {
        if is_available(profile, tz, t)? {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// The instants in (from, to] at which the zone's UTC offset changes,
/// found hour by hour (no zone changes offset twice within an hour) and
/// pinned to the millisecond by bisection.
fn offset_changes(tz: Tz, from_ms: u64, to_ms: u64) -> Result<Vec<u64>> {
    let offset_at = |ms: i64| -> Result<i32> {
        let t = DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| Error::InvalidArgument("instant is out of range".to_owned()))?;
        Ok(tz
            .offset_from_utc_datetime(&t.naive_utc())
            .fix()
            .local_minus_utc())
    };
    // Both fit in i64: callers bound them by MAX_INSTANT_MS + horizon.
    let from = i64::try_from(from_ms)
        .map_err(|_| Error::InvalidArgument("instant is out of range".to_owned()))?;
    let to = i64::try_from(to_ms)
        .map_err(|_| Error::InvalidArgument("instant is out of range".to_owned()))?;
    let mut changes = Vec::new();
    let mut lo = from;
    let mut lo_offset = offset_at(lo)?;
    while lo < to {
        let hi = (lo + MS_PER_HOUR).min(to);
        let hi_offset = offset_at(hi)?;
        if hi_offset != lo_offset {
            // Invariant: offset(a) == lo_offset, offset(b) != lo_offset.
            let (mut a, mut b) = (lo, hi);
            while b - a > 1 {
                let mid = a + (b - a) / 2;
                if offset_at(mid)? == lo_offset {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            if let Ok(t) = u64::try_from(b) {
                changes.push(t);
            }
        }
        lo = hi;
        lo_offset = hi_offset;
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alcove_proto::content::{AwayPeriod, OfficeHours, TextingPolicy};
    use proptest::prelude::*;

    /// ms since the epoch of a UTC wall-clock time (expected values are
    /// written in UTC, worked out independently of chrono-tz).
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> u64 {
        let t = Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap();
        u64::try_from(t.timestamp_millis()).unwrap()
    }

    fn hours(ranges: &[(u32, u32, u32)]) -> Vec<OfficeHours> {
        ranges
            .iter()
            .map(|&(weekday, start_minute, end_minute)| OfficeHours {
                weekday,
                start_minute,
                end_minute,
            })
            .collect()
    }

    fn profile(zone: &str, ranges: &[(u32, u32, u32)]) -> PracticeProfile {
        PracticeProfile {
            revision: 1,
            display_name: "Dr. Example".into(),
            practice_name: "Example Counselling".into(),
            time_zone: zone.into(),
            hours: hours(ranges),
            response_time_hours: 24,
            crisis_resources: "Call or text 988".into(),
            policy: Some(TextingPolicy {
                version: 1,
                text: "Not for emergencies.".into(),
            }),
            notification_label: "Appointments".into(),
            ..Default::default()
        }
    }

    /// Monday to Friday, 9:00–17:00 local.
    fn weekdays_9_to_5(zone: &str) -> PracticeProfile {
        let ranges: Vec<_> = (1..=5).map(|d| (d, 9 * 60, 17 * 60)).collect();
        profile(zone, &ranges)
    }

    fn away(start_ms: u64, end_ms: u64, contact: &str) -> AwayPeriod {
        AwayPeriod {
            start_ms,
            end_ms,
            covering_contact: contact.into(),
        }
    }

    fn at(p: &PracticeProfile, now_ms: u64) -> Availability {
        availability(p, now_ms).unwrap()
    }

    fn closed(next: u64) -> Availability {
        Availability::Closed {
            next_open_ms: Some(next),
        }
    }

    #[test]
    fn start_is_inclusive_and_end_exclusive() {
        // Wednesday 2026-01-14, EST (UTC-5): 9:00 = 14:00 UTC, 17:00 = 22:00 UTC.
        let p = weekdays_9_to_5("America/New_York");
        assert_eq!(at(&p, utc(2026, 1, 14, 14, 0)), Availability::Open);
        assert_eq!(
            at(&p, utc(2026, 1, 14, 14, 0) - 1),
            closed(utc(2026, 1, 14, 14, 0))
        );
        assert_eq!(at(&p, utc(2026, 1, 14, 22, 0) - 1), Availability::Open);
        assert_eq!(
            at(&p, utc(2026, 1, 14, 22, 0)),
            closed(utc(2026, 1, 15, 14, 0))
        );
    }

    #[test]
    fn next_open_skips_the_weekend() {
        let p = weekdays_9_to_5("America/New_York");
        let monday = utc(2026, 1, 19, 14, 0);
        // Friday 17:00, Saturday noon, Sunday 23:59 local.
        assert_eq!(at(&p, utc(2026, 1, 16, 22, 0)), closed(monday));
        assert_eq!(at(&p, utc(2026, 1, 17, 17, 0)), closed(monday));
        assert_eq!(at(&p, utc(2026, 1, 19, 4, 59)), closed(monday));
    }

    #[test]
    fn several_ranges_in_one_day_and_a_range_to_midnight() {
        // Tuesday 8–12 and 13–24, Wednesday from midnight, in UTC.
        let p = profile("UTC", &[(2, 480, 720), (2, 780, 1440), (3, 0, 60)]);
        assert_eq!(
            at(&p, utc(2026, 1, 13, 12, 0)),
            closed(utc(2026, 1, 13, 13, 0))
        );
        assert_eq!(at(&p, utc(2026, 1, 13, 23, 59)), Availability::Open);
        assert_eq!(at(&p, utc(2026, 1, 14, 0, 30)), Availability::Open);
        assert_eq!(
            at(&p, utc(2026, 1, 14, 1, 0)),
            closed(utc(2026, 1, 20, 8, 0))
        );
    }

    #[test]
    fn new_york_spring_forward_monday_opens_at_13_utc() {
        let p = weekdays_9_to_5("America/New_York");
        // Friday 2026-03-06 is EST: open 14:00–22:00 UTC.
        assert_eq!(at(&p, utc(2026, 3, 6, 14, 0)), Availability::Open);
        assert_eq!(
            at(&p, utc(2026, 3, 6, 22, 0)),
            closed(utc(2026, 3, 9, 13, 0))
        );
        // Monday 2026-03-09 is EDT (UTC-4): 13:00–21:00 UTC.
        assert_eq!(at(&p, utc(2026, 3, 9, 13, 0)), Availability::Open);
        assert_eq!(at(&p, utc(2026, 3, 9, 21, 0) - 1), Availability::Open);
        assert_eq!(
            at(&p, utc(2026, 3, 9, 21, 0)),
            closed(utc(2026, 3, 10, 13, 0))
        );
    }

    #[test]
    fn new_york_fall_back_monday_opens_at_14_utc() {
        let p = weekdays_9_to_5("America/New_York");
        // Friday 2026-10-30 17:00 EDT = 21:00 UTC.
        assert_eq!(at(&p, utc(2026, 10, 30, 21, 0) - 1), Availability::Open);
        assert_eq!(
            at(&p, utc(2026, 10, 30, 21, 0)),
            closed(utc(2026, 11, 2, 14, 0))
        );
        assert_eq!(at(&p, utc(2026, 11, 2, 14, 0)), Availability::Open);
        assert_eq!(at(&p, utc(2026, 11, 2, 22, 0) - 1), Availability::Open);
    }

    #[test]
    fn london_spring_forward_and_fall_back() {
        let p = weekdays_9_to_5("Europe/London");
        // Friday 2026-03-27 17:00 GMT; Monday 2026-03-30 9:00 BST = 08:00 UTC.
        assert_eq!(
            at(&p, utc(2026, 3, 27, 17, 0)),
            closed(utc(2026, 3, 30, 8, 0))
        );
        assert_eq!(at(&p, utc(2026, 3, 30, 8, 0)), Availability::Open);
        // Friday 2026-10-23 17:00 BST = 16:00 UTC; Monday 2026-10-26 9:00 GMT.
        assert_eq!(
            at(&p, utc(2026, 10, 23, 16, 0)),
            closed(utc(2026, 10, 26, 9, 0))
        );
        assert_eq!(
            at(&p, utc(2026, 10, 26, 9, 0) - 1),
            closed(utc(2026, 10, 26, 9, 0))
        );
    }

    #[test]
    fn wall_clock_range_across_the_change_day() {
        // Open Sunday 00:00–05:00 New York on 2026-03-08: only 4 real hours,
        // 05:00 UTC (00:00 EST) to 09:00 UTC (05:00 EDT).
        let p = profile("America/New_York", &[(7, 0, 300)]);
        assert_eq!(at(&p, utc(2026, 3, 8, 5, 0)), Availability::Open);
        assert_eq!(at(&p, utc(2026, 3, 8, 7, 0)), Availability::Open);
        assert_eq!(at(&p, utc(2026, 3, 8, 9, 0) - 1), Availability::Open);
        assert_eq!(
            at(&p, utc(2026, 3, 8, 9, 0)),
            closed(utc(2026, 3, 15, 4, 0))
        );
    }

    #[test]
    fn range_starting_in_the_spring_forward_gap_opens_when_the_gap_ends() {
        // 02:30 on 2026-03-08 does not exist in New York: clocks go from
        // 02:00 EST (07:00 UTC) straight to 03:00 EDT.
        let p = profile("America/New_York", &[(7, 150, 300)]);
        let gap_end = utc(2026, 3, 8, 7, 0);
        assert_eq!(at(&p, utc(2026, 3, 7, 12, 0)), closed(gap_end));
        assert_eq!(at(&p, gap_end - 1), closed(gap_end));
        assert_eq!(at(&p, gap_end), Availability::Open);
        // 05:00 EDT = 09:00 UTC; the next Sunday 02:30 EDT = 06:30 UTC.
        assert_eq!(
            at(&p, utc(2026, 3, 8, 9, 0)),
            closed(utc(2026, 3, 15, 6, 30))
        );
    }

    #[test]
    fn range_wholly_inside_the_gap_never_opens_that_day() {
        let p = profile("America/New_York", &[(7, 120, 165)]);
        // Next opening is Sunday 2026-03-15 02:00 EDT = 06:00 UTC.
        assert_eq!(
            at(&p, utc(2026, 3, 7, 12, 0)),
            closed(utc(2026, 3, 15, 6, 0))
        );
    }

    #[test]
    fn ambiguous_fall_back_start_resolves_to_the_earliest_instant() {
        // 01:15 on 2026-11-01 New York happens twice: 05:15 UTC (EDT) and
        // 06:15 UTC (EST). The range opens at the first.
        let p = profile("America/New_York", &[(7, 75, 180)]);
        assert_eq!(
            at(&p, utc(2026, 10, 31, 12, 0)),
            closed(utc(2026, 11, 1, 5, 15))
        );
        assert_eq!(at(&p, utc(2026, 11, 1, 5, 15)), Availability::Open);
        assert_eq!(at(&p, utc(2026, 11, 1, 6, 15)), Availability::Open);
        // 03:00 EST = 08:00 UTC.
        assert_eq!(at(&p, utc(2026, 11, 1, 8, 0) - 1), Availability::Open);
    }

    #[test]
    fn wall_clock_repeats_after_fall_back() {
        // 00:00–01:30 Sunday: the wall clock passes 01:00–01:30 twice on
        // 2026-11-01, so the range is open again from 06:00 UTC (01:00 EST).
        let p = profile("America/New_York", &[(7, 0, 90)]);
        assert_eq!(
            at(&p, utc(2026, 11, 1, 5, 45)),
            closed(utc(2026, 11, 1, 6, 0))
        );
        assert_eq!(at(&p, utc(2026, 11, 1, 6, 0)), Availability::Open);
        // 01:30 EST; next Sunday 00:00 EST = 05:00 UTC.
        assert_eq!(
            at(&p, utc(2026, 11, 1, 6, 30)),
            closed(utc(2026, 11, 8, 5, 0))
        );
    }

    #[test]
    fn pacific_auckland_southern_hemisphere_changes() {
        let p = weekdays_9_to_5("Pacific/Auckland");
        // NZDT (UTC+13) ends Sunday 2026-04-05. Friday 17:00 NZDT = 04:00
        // UTC; Monday 2026-04-06 09:00 NZST (UTC+12) = Sunday 21:00 UTC.
        assert_eq!(
            at(&p, utc(2026, 4, 3, 4, 0)),
            closed(utc(2026, 4, 5, 21, 0))
        );
        assert_eq!(at(&p, utc(2026, 4, 5, 21, 0)), Availability::Open);
        // NZDT starts Sunday 2026-09-27. Friday 17:00 NZST = 05:00 UTC;
        // Monday 2026-09-28 09:00 NZDT = Sunday 20:00 UTC.
        assert_eq!(
            at(&p, utc(2026, 9, 25, 5, 0)),
            closed(utc(2026, 9, 27, 20, 0))
        );
        assert_eq!(at(&p, utc(2026, 9, 27, 20, 0)), Availability::Open);
        // The local weekday counts, not UTC's: Tuesday 2026-01-13 20:00 UTC
        // is Wednesday 09:00 NZDT; Friday 2026-01-16 04:00 UTC is 17:00.
        assert_eq!(at(&p, utc(2026, 1, 13, 20, 0)), Availability::Open);
        assert_eq!(
            at(&p, utc(2026, 1, 16, 4, 0)),
            closed(utc(2026, 1, 18, 20, 0))
        );
    }

    #[test]
    fn inside_an_away_period() {
        let mut p = weekdays_9_to_5("America/New_York");
        let (start, end) = (utc(2026, 1, 14, 15, 0), utc(2026, 1, 14, 17, 0));
        p.away = vec![away(start, end, "Dr. Cover, 555 0100")];
        let covered = Availability::Away {
            until_ms: end,
            covering_contact: Some("Dr. Cover, 555 0100".into()),
        };
        assert_eq!(at(&p, start), covered);
        assert_eq!(at(&p, end - 1), covered);
        assert_eq!(at(&p, start - 1), Availability::Open);
        assert_eq!(at(&p, end), Availability::Open);

        p.away[0].covering_contact.clear();
        assert_eq!(
            at(&p, start),
            Availability::Away {
                until_ms: end,
                covering_contact: None
            }
        );
    }

    #[test]
    fn chained_away_periods_report_the_end_of_the_chain() {
        let mut p = weekdays_9_to_5("America/New_York");
        let t = |h: u32| utc(2026, 2, 2, h, 0);
        p.away = vec![
            away(t(20), t(23), ""),        // not chained: after a gap
            away(t(10), t(12), "first"),   // now is inside this one
            away(t(12), t(15), ""),        // touches the first
            away(t(14), t(18), "overlap"), // overlaps the second
        ];
        assert_eq!(
            at(&p, t(11)),
            Availability::Away {
                until_ms: t(18),
                covering_contact: Some("first".into())
            }
        );
        // Inside two at once: the most recently started one's contact.
        assert_eq!(
            at(&p, t(14)),
            Availability::Away {
                until_ms: t(18),
                covering_contact: Some("overlap".into())
            }
        );
        // 18:00–20:00 UTC is 13:00–15:00 EST, inside office hours.
        assert_eq!(at(&p, t(18)), Availability::Open);
    }

    #[test]
    fn away_ending_in_closed_hours_is_then_closed_until_the_next_opening() {
        let mut p = weekdays_9_to_5("America/New_York");
        // Friday 2026-01-16 15:00–20:00 EST.
        let (start, end) = (utc(2026, 1, 16, 20, 0), utc(2026, 1, 17, 1, 0));
        p.away = vec![away(start, end, "")];
        assert_eq!(
            at(&p, start + 1),
            Availability::Away {
                until_ms: end,
                covering_contact: None
            }
        );
        assert_eq!(at(&p, end), closed(utc(2026, 1, 19, 14, 0)));
    }

    #[test]
    fn next_open_skips_away_periods() {
        let mut p = weekdays_9_to_5("America/New_York");
        let saturday = utc(2026, 1, 17, 12, 0);
        // Away Sunday noon to Monday 11:00 EST: opens when the away ends.
        p.away = vec![away(utc(2026, 1, 18, 17, 0), utc(2026, 1, 19, 16, 0), "")];
        assert_eq!(at(&p, saturday), closed(utc(2026, 1, 19, 16, 0)));
        // Away all Monday (ending in closed hours): opens Tuesday 9:00.
        p.away = vec![away(utc(2026, 1, 19, 5, 0), utc(2026, 1, 20, 5, 0), "")];
        assert_eq!(at(&p, saturday), closed(utc(2026, 1, 20, 14, 0)));
    }

    #[test]
    fn no_opening_within_the_horizon_is_none() {
        let closed_none = Availability::Closed { next_open_ms: None };
        let now = utc(2026, 1, 17, 12, 0);
        let no_hours = profile("America/New_York", &[]);
        assert_eq!(at(&no_hours, now), closed_none);

        let mut p = weekdays_9_to_5("America/New_York");
        p.away = vec![away(now + 1, now + NEXT_OPEN_HORIZON_MS + 1, "")];
        assert_eq!(at(&p, now), closed_none);
        // Saturday 12:00–13:00 UTC only. From one millisecond before
        // Saturday 2026-01-17 12:00, the third opening is 14 days and 1 ms
        // away: past the horizon.
        const WEEK: u64 = 7 * 24 * 3_600_000;
        let saturday_noon = utc(2026, 1, 17, 12, 0);
        let now = saturday_noon - 1;
        let mut p = profile("UTC", &[(6, 12 * 60, 13 * 60)]);
        p.away = vec![away(saturday_noon, saturday_noon + 3_600_000, "")];
        assert_eq!(at(&p, now), closed(saturday_noon + WEEK));
        p.away = vec![away(saturday_noon, saturday_noon + WEEK + 3_600_000, "")];
        assert_eq!(at(&p, now), closed_none);
        // A 12:30 return from an away period that began before now.
        p.away = vec![away(now - 1, saturday_noon + 1_800_000, "")];
        assert!(matches!(at(&p, now), Availability::Away { .. }));
        assert_eq!(at(&p, saturday_noon + 1_800_000), Availability::Open);
    }

    #[test]
    fn out_of_range_instants_are_refused() {
        let p = weekdays_9_to_5("America/New_York");
        assert!(matches!(
            availability(&p, u64::MAX),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            availability(&p, MAX_INSTANT_MS + 1),
            Err(Error::InvalidArgument(_))
        ));
        // Friday 9999-12-31 18:59 in New York: the next Monday would be in
        // the year 10000, past the last instant accepted, so none is given.
        assert_eq!(
            at(&p, MAX_INSTANT_MS),
            Availability::Closed { next_open_ms: None }
        );
        assert!(availability(&p, 0).is_ok());
    }

    fn malformed(p: &PracticeProfile) -> &'static str {
        match validate(p) {
            Err(Error::Malformed(reason)) => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn a_full_valid_profile_passes() {
        let mut p = weekdays_9_to_5("Pacific/Auckland");
        p.hours = hours(&[(7, 0, 1440); MAX_HOUR_RANGES]);
        p.away = vec![away(1, 2, &"c".repeat(MAX_CONTACT_TEXT_LEN)); MAX_AWAY_PERIODS];
        p.display_name = "é".repeat(MAX_SHORT_NAME_LEN / 2);
        p.practice_name = "p".repeat(MAX_SHORT_NAME_LEN);
        p.notification_label = "\u{200F}label".into(); // RLM is allowed
        p.crisis_resources = "r".repeat(MAX_CONTACT_TEXT_LEN);
        p.policy = Some(TextingPolicy {
            version: 2,
            text: "line\n".repeat(MAX_POLICY_LEN / 5),
        });
        assert_eq!(validate(&p), Ok(()));
        assert_eq!(validate(&profile("UTC", &[])), Ok(()));
    }

    #[test]
    fn each_broken_rule_has_its_own_reason() {
        let base = weekdays_9_to_5("America/New_York");
        let mut seen = std::collections::HashSet::new();
        let mut check = |edit: &dyn Fn(&mut PracticeProfile), want: &'static str| {
            let mut p = base.clone();
            edit(&mut p);
            assert_eq!(malformed(&p), want);
            // The same refusal comes out of availability.
            assert_eq!(availability(&p, 0), Err(Error::Malformed(want)));
            assert!(seen.insert(want), "reason reused: {want}");
        };
        for zone in ["", "Mars/Olympus_Mons", "america/new york", "+05:00"] {
            let zone = zone.to_owned();
            let mut p = base.clone();
            p.time_zone = zone;
            assert_eq!(malformed(&p), "practice profile: unknown time zone");
        }
        check(
            &|p| p.time_zone = "Nowhere/City".into(),
            "practice profile: unknown time zone",
        );
        check(
            &|p| p.hours = hours(&[(1, 0, 60); MAX_HOUR_RANGES + 1]),
            "practice profile: too many office-hour ranges",
        );
        check(
            &|p| p.hours = hours(&[(0, 540, 600)]),
            "practice profile: office-hours weekday not in 1..=7",
        );
        for weekday in [8, u32::MAX] {
            let mut p = base.clone();
            p.hours = hours(&[(weekday, 540, 600)]);
            assert_eq!(
                malformed(&p),
                "practice profile: office-hours weekday not in 1..=7"
            );
        }
        check(
            &|p| p.hours = hours(&[(1, 540, 1441)]),
            "practice profile: office hours end after midnight",
        );
        check(
            &|p| p.hours = hours(&[(1, 600, 600)]),
            "practice profile: office hours start at or after their end",
        );
        let mut reversed = base.clone();
        reversed.hours = hours(&[(1, 601, 600)]);
        assert_eq!(
            malformed(&reversed),
            "practice profile: office hours start at or after their end"
        );
        check(
            &|p| p.away = vec![away(1, 2, ""); MAX_AWAY_PERIODS + 1],
            "practice profile: too many away periods",
        );
        check(
            &|p| p.away = vec![away(5, 5, "")],
            "practice profile: away period starts at or after its end",
        );
        check(
            &|p| p.away = vec![away(1, 2, &"c".repeat(MAX_CONTACT_TEXT_LEN + 1))],
            "practice profile: covering contact too long",
        );
        check(
            &|p| p.display_name = "d".repeat(MAX_SHORT_NAME_LEN + 1),
            "practice profile: display name too long",
        );
        check(
            &|p| p.display_name = "Dr.\nEvil".into(),
            "practice profile: display name has control characters",
        );
        check(
            &|p| p.practice_name = "é".repeat(MAX_SHORT_NAME_LEN / 2 + 1),
            "practice profile: practice name too long",
        );
        check(
            &|p| p.practice_name = "Care\u{202E}cod".into(),
            "practice profile: practice name has control characters",
        );
        check(
            &|p| p.notification_label = "l".repeat(MAX_SHORT_NAME_LEN + 1),
            "practice profile: notification label too long",
        );
        check(
            &|p| p.notification_label = "a\u{0}b".into(),
            "practice profile: notification label has control characters",
        );
        check(
            &|p| p.crisis_resources = "r".repeat(MAX_CONTACT_TEXT_LEN + 1),
            "practice profile: crisis resources too long",
        );
        check(
            &|p| {
                p.policy = Some(TextingPolicy {
                    version: 1,
                    text: "t".repeat(MAX_POLICY_LEN + 1),
                })
            },
            "practice profile: policy text too long",
        );
        for c in [
            '\u{7}', '\u{7F}', '\u{85}', '\u{2066}', '\u{2069}', '\u{202A}',
        ] {
            let mut p = base.clone();
            p.display_name = format!("a{c}b");
            assert_eq!(
                malformed(&p),
                "practice profile: display name has control characters"
            );
        }
    }

    /// Zones with unusual rules: 30-minute DST (Lord Howe), negative DST
    /// (Dublin), midnight changes (Havana, Santiago), Ramadan suspensions
    /// (Casablanca), 2-hour DST (Troll), a 45-minute offset (Chatham).
    const ZONES: &[&str] = &[
        "America/New_York",
        "Europe/London",
        "Pacific/Auckland",
        "Australia/Lord_Howe",
        "Europe/Dublin",
        "America/Havana",
        "America/Santiago",
        "Africa/Casablanca",
        "Antarctica/Troll",
        "Pacific/Chatham",
        "Asia/Kolkata",
        "UTC",
    ];

    /// A validated profile with away periods placed around `now`.
    fn arb_case() -> impl Strategy<Value = (PracticeProfile, u64)> {
        let range = (1u32..=7, 0u32..1440, 1u32..=1440)
            .prop_map(|(d, start, len)| (d, start, (start + len).min(1440)));
        let now = prop_oneof![
            4 => 0u64..4_100_000_000_000,
            1 => MAX_INSTANT_MS - 3_000_000_000..=MAX_INSTANT_MS,
            1 => any::<u64>(),
        ];
        let away_around_now = (-3_000_000_000i64..3_000_000_000, 1u64..1_500_000_000);
        (
            prop::sample::select(ZONES),
            prop::collection::vec(range, 0..=MAX_HOUR_RANGES),
            now,
            prop::collection::vec(away_around_now, 0..=6),
        )
            .prop_map(|(zone, ranges, now, aways)| {
                let mut p = profile(zone, &ranges);
                p.away = aways
                    .into_iter()
                    .filter_map(|(offset, len)| {
                        let start = now.saturating_add_signed(offset);
                        Some(away(start, start.checked_add(len)?, "cover"))
                    })
                    .collect();
                (p, now)
            })
    }

    /// Few ranges, in zones with DST, shortly before one of 2026's
    /// changes: where a missed gap or fold would show.
    fn arb_dst_case() -> impl Strategy<Value = (PracticeProfile, u64)> {
        // All these changes happen early on a local Sunday.
        let weekday = prop_oneof![3 => Just(7u32), 1 => 1u32..=7];
        let start = prop_oneof![3 => 0u32..240, 1 => 0u32..1440];
        let range = (weekday, start, 1u32..=300)
            .prop_map(|(d, start, len)| (d, start, (start + len).min(1440)));
        // (zone, an instant within a day of one of its 2026 changes)
        let changes = prop::sample::select(vec![
            ("America/New_York", utc(2026, 3, 8, 7, 0)),
            ("America/New_York", utc(2026, 11, 1, 6, 0)),
            ("Europe/London", utc(2026, 3, 29, 1, 0)),
            ("Europe/London", utc(2026, 10, 25, 1, 0)),
            ("Pacific/Auckland", utc(2026, 4, 4, 14, 0)),
            ("Pacific/Auckland", utc(2026, 9, 26, 14, 0)),
            ("Australia/Lord_Howe", utc(2026, 4, 4, 15, 0)),
            ("Australia/Lord_Howe", utc(2026, 10, 3, 16, 0)),
        ]);
        (
            changes,
            prop::collection::vec(range, 1..=3),
            0u64..36 * 3_600_000,
        )
            .prop_map(|((zone, change), ranges, before)| (profile(zone, &ranges), change - before))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Never panics. A reported opening lies in the horizon and is open
        /// by the same rule that answers the present; no 7-minute grid
        /// point before it (or in the whole horizon, when there is none)
        /// is open; an away period is reported with its chain's end.
        #[test]
        fn availability_is_consistent((p, now) in arb_case()) {
            check_consistent(&p, now)?;
        }

        #[test]
        fn availability_is_consistent_around_dst_changes((p, now) in arb_dst_case()) {
            check_consistent(&p, now)?;
        }
    }

    fn check_consistent(p: &PracticeProfile, now: u64) -> std::result::Result<(), TestCaseError> {
        prop_assert_eq!(validate(p), Ok(()));
        let got = availability(p, now);
        if now > MAX_INSTANT_MS {
            prop_assert!(matches!(got, Err(Error::InvalidArgument(_))));
            return Ok(());
        }
        let tz = parse_zone(&p.time_zone).unwrap();
        let open_at = |t: u64| is_available(p, tz, t).unwrap();
        let no_grid_point_open = |from: u64, to: u64| {
            (1..)
                .map(|k| from + k * 7 * 60_000)
                .take_while(|&t| t < to)
                .all(|t| !open_at(t))
        };
        let horizon_end = (now + NEXT_OPEN_HORIZON_MS).min(MAX_INSTANT_MS);
        match got {
            Ok(Availability::Open) => prop_assert!(open_at(now)),
            Ok(Availability::Closed {
                next_open_ms: Some(next),
            }) => {
                prop_assert!(now < next && next <= horizon_end);
                prop_assert_eq!(availability(p, next), Ok(Availability::Open));
                prop_assert!(no_grid_point_open(now, next));
            }
            Ok(Availability::Closed { next_open_ms: None }) => {
                prop_assert!(no_grid_point_open(now, horizon_end + 1));
            }
            Ok(Availability::Away { until_ms, .. }) => {
                prop_assert!(until_ms > now);
                prop_assert!(!in_away(p, until_ms));
                prop_assert!(in_away(p, until_ms - 1));
            }
            Err(e) => prop_assert!(false, "unexpected error {:?}", e),
        }
        Ok(())
    }
}
