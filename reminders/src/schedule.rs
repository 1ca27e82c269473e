//! When reminders go and what they say: pure functions over a client's zone.
//!
//! - An [`Offset`] of days (`"2d"`) is calendar days at the same local wall
//!   time, so "2 days before Monday 09:00" is Saturday 09:00 even across a
//!   DST change (47 or 49 hours). Hours and minutes (`"48h"`, `"90m"`) are
//!   exact elapsed time.
//! - A local time that does not exist (the spring-forward gap) becomes the
//!   first valid instant after it; an ambiguous one (fall-back) the earlier.
//! - Quiet hours are the open interval between two local times, possibly
//!   across midnight: a reminder may go at exactly the start or the end. A
//!   reminder due inside them goes earlier, at their start, so it still
//!   comes before the appointment.

use chrono::{
    DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// Longest offset accepted: a year.
pub const MAX_OFFSET_DAYS: u32 = 366;

/// How long before an appointment a reminder goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// Calendar days earlier at the same local wall-clock time.
    Days(u32),
    /// Exact elapsed time earlier.
    Duration(Duration),
}

/// Why an offset or a quiet-hours time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    #[error("offset must be a positive number followed by d, h or m (\"2d\", \"48h\", \"90m\")")]
    BadOffset,
    #[error("offset is longer than {MAX_OFFSET_DAYS} days")]
    OffsetTooLong,
    #[error("time must be HH:MM between 00:00 and 23:59")]
    BadTime,
    #[error("quiet hours must start and end at different times")]
    EmptyQuietHours,
}

impl std::str::FromStr for Offset {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let unit = s.chars().last().ok_or(ScheduleError::BadOffset)?;
        let digits = &s[..s.len() - unit.len_utf8()];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ScheduleError::BadOffset);
        }
        let n: u32 = digits.parse().map_err(|_| ScheduleError::OffsetTooLong)?;
        if n == 0 {
            return Err(ScheduleError::BadOffset);
        }
        let max_minutes = i64::from(MAX_OFFSET_DAYS) * 24 * 60;
        let minutes = match unit.to_ascii_lowercase() {
            'd' => {
                return if n > MAX_OFFSET_DAYS {
                    Err(ScheduleError::OffsetTooLong)
                } else {
                    Ok(Offset::Days(n))
                }
            }
            'h' => i64::from(n) * 60,
            'm' => i64::from(n),
            _ => return Err(ScheduleError::BadOffset),
        };
        if minutes > max_minutes {
            return Err(ScheduleError::OffsetTooLong);
        }
        Ok(Offset::Duration(Duration::minutes(minutes)))
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Offset::Days(d) => write!(f, "{d}d"),
            Offset::Duration(d) if d.num_minutes() % 60 == 0 => write!(f, "{}h", d.num_hours()),
            Offset::Duration(d) => write!(f, "{}m", d.num_minutes()),
        }
    }
}

/// Local times between which no reminder is sent, in minutes after
/// midnight; `start > end` wraps midnight (21:00–08:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start_minute: u16,
    pub end_minute: u16,
}

impl QuietHours {
    /// From `"HH:MM"` strings (`"21:00"`, `"08:00"`).
    pub fn parse(start: &str, end: &str) -> Result<Self, ScheduleError> {
        let q = Self {
            start_minute: parse_hhmm(start)?,
            end_minute: parse_hhmm(end)?,
        };
        if q.start_minute == q.end_minute {
            return Err(ScheduleError::EmptyQuietHours);
        }
        Ok(q)
    }

    fn start(&self) -> Option<NaiveTime> {
        minute_time(self.start_minute)
    }

    fn end(&self) -> Option<NaiveTime> {
        minute_time(self.end_minute)
    }

    fn wraps(&self) -> bool {
        self.start_minute > self.end_minute
    }

    /// Whether a local time of day is strictly inside quiet hours.
    fn contains(&self, t: NaiveTime) -> bool {
        let (Some(s), Some(e)) = (self.start(), self.end()) else {
            return false;
        };
        match s.cmp(&e) {
            std::cmp::Ordering::Less => s < t && t < e,
            std::cmp::Ordering::Greater => t > s || t < e,
            std::cmp::Ordering::Equal => false,
        }
    }
}

fn parse_hhmm(s: &str) -> Result<u16, ScheduleError> {
    let (h, m) = s.trim().split_once(':').ok_or(ScheduleError::BadTime)?;
    let ok = |x: &str| x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit());
    if !ok(h) || !ok(m) {
        return Err(ScheduleError::BadTime);
    }
    let (h, m): (u16, u16) = (
        h.parse().map_err(|_| ScheduleError::BadTime)?,
        m.parse().map_err(|_| ScheduleError::BadTime)?,
    );
    if h > 23 || m > 59 {
        return Err(ScheduleError::BadTime);
    }
    Ok(h * 60 + m)
}

fn minute_time(m: u16) -> Option<NaiveTime> {
    NaiveTime::from_hms_opt(u32::from(m / 60), u32::from(m % 60), 0)
}

fn local(t_ms: i64, tz: Tz) -> Option<DateTime<Tz>> {
    DateTime::<Utc>::from_timestamp_millis(t_ms).map(|d| d.with_timezone(&tz))
}

/// A local wall time as an instant: ambiguous → the earlier; nonexistent →
/// the first valid instant after the gap.
pub fn resolve_local(tz: Tz, naive: NaiveDateTime) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(d) => Some(d),
        LocalResult::Ambiguous(a, b) => Some(a.min(b)),
        LocalResult::None => {
            // Gaps start and end on whole minutes and last at most a day.
            let mut m = naive.with_second(0)?.with_nanosecond(0)?;
            for _ in 0..(24 * 60) {
                m = m.checked_add_signed(Duration::minutes(1))?;
                match tz.from_local_datetime(&m) {
                    LocalResult::Single(d) => return Some(d),
                    LocalResult::Ambiguous(a, b) => return Some(a.min(b)),
                    LocalResult::None => {}
                }
            }
            None
        }
    }
}

fn at_local(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<i64> {
    resolve_local(tz, date.and_time(time)).map(|d| d.timestamp_millis())
}

/// When the reminder `offset` before an appointment at `starts_at_ms` goes,
/// moved earlier to the start of quiet hours when it would fall inside them.
pub fn due_at(starts_at_ms: i64, tz: Tz, offset: &Offset, quiet: Option<&QuietHours>) -> i64 {
    let due = match offset {
        Offset::Duration(d) => starts_at_ms.saturating_sub(d.num_milliseconds()),
        Offset::Days(n) => local(starts_at_ms, tz)
            .and_then(|start| {
                let naive = start
                    .naive_local()
                    .checked_sub_signed(Duration::days(i64::from(*n)))?;
                resolve_local(tz, naive)
            })
            .map(|d| d.timestamp_millis())
            // Out of chrono's range: fall back to exact days.
            .unwrap_or_else(|| starts_at_ms.saturating_sub(i64::from(*n) * 86_400_000)),
    };
    match quiet {
        Some(q) if in_quiet(due, tz, q) => quiet_started_before(due, tz, q),
        _ => due,
    }
}

/// Whether `t_ms` falls strictly inside quiet hours in `tz`.
pub fn in_quiet(t_ms: i64, tz: Tz, quiet: &QuietHours) -> bool {
    local(t_ms, tz).is_some_and(|d| quiet.contains(d.time()))
}

/// The start of the quiet period containing `t_ms` (which is inside one):
/// the last instant at or before it that is not quiet.
fn quiet_started_before(t_ms: i64, tz: Tz, quiet: &QuietHours) -> i64 {
    let found = local(t_ms, tz).and_then(|d| {
        let date = if quiet.wraps() && quiet.end().is_some_and(|e| d.time() < e) {
            d.date_naive().pred_opt()?
        } else {
            d.date_naive()
        };
        at_local(tz, date, quiet.start()?)
    });
    match found {
        Some(s) if s <= t_ms && !in_quiet(s, tz, quiet) => s,
        // The quiet start fell in a DST gap: walk back to the last minute
        // that is not quiet (bounded: a gap is a few hours at most).
        Some(s) => {
            let mut m = s.min(t_ms);
            for _ in 0..(26 * 60) {
                if !in_quiet(m, tz, quiet) {
                    return m;
                }
                m -= 60_000;
            }
            m
        }
        None => t_ms,
    }
}

/// The first instant at or after `t_ms` outside quiet hours.
pub fn quiet_ends_after(t_ms: i64, tz: Tz, quiet: &QuietHours) -> i64 {
    if !in_quiet(t_ms, tz, quiet) {
        return t_ms;
    }
    let found = local(t_ms, tz).and_then(|d| {
        let date = if quiet.wraps() && quiet.start().is_some_and(|s| d.time() > s) {
            d.date_naive().succ_opt()?
        } else {
            d.date_naive()
        };
        at_local(tz, date, quiet.end()?)
    });
    match found {
        Some(e) if e >= t_ms && !in_quiet(e, tz, quiet) => e,
        Some(e) => {
            let mut m = e.max(t_ms);
            for _ in 0..(26 * 60) {
                if !in_quiet(m, tz, quiet) {
                    return m;
                }
                m += 60_000;
            }
            m
        }
        None => t_ms,
    }
}

/// What to do with a reminder whose due time has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateAction {
    SendNow,
    /// Inside quiet hours: send when they end (still before the appointment).
    WaitUntil(i64),
    Skip,
}

/// What to do with a reminder whose due time has come at `now`: skip it when
/// the appointment has started (a reminder after the fact helps no one and
/// can alarm); inside quiet hours wait for them to end if that is still
/// before the appointment, else skip; otherwise send now (a late one is sent
/// late, once).
pub fn late_action(
    now_ms: i64,
    starts_at_ms: i64,
    tz: Tz,
    quiet: Option<&QuietHours>,
) -> LateAction {
    if now_ms >= starts_at_ms {
        return LateAction::Skip;
    }
    match quiet {
        Some(q) if in_quiet(now_ms, tz, q) => {
            let end = quiet_ends_after(now_ms, tz, q);
            if end < starts_at_ms {
                LateAction::WaitUntil(end)
            } else {
                LateAction::Skip
            }
        }
        _ => LateAction::SendNow,
    }
}

/// How a client answers a reminder.
pub const REPLY_HINT: &str = "Reply C to confirm, X to cancel, R to ask to reschedule.";

/// The longest practice name put in a message.
pub const MAX_PRACTICE_NAME_CHARS: usize = 80;

/// "Monday, 9 March 2026 at 9:00 AM EDT".
pub fn when_text(starts_at_ms: i64, tz: Tz) -> String {
    match local(starts_at_ms, tz) {
        Some(d) => d.format("%A, %-d %B %Y at %-I:%M %p %Z").to_string(),
        None => "the scheduled time".to_owned(),
    }
}

fn from_practice(practice_name: Option<&str>) -> String {
    let name: String = practice_name
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_PRACTICE_NAME_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        String::new()
    } else {
        format!(" from {name}")
    }
}

/// The reminder: no clinical detail, only when, the practice at most, and
/// how to answer.
pub fn reminder_text(starts_at_ms: i64, tz: Tz, practice_name: Option<&str>) -> String {
    format!(
        "Reminder{}: your appointment is on {}. {REPLY_HINT}",
        from_practice(practice_name),
        when_text(starts_at_ms, tz)
    )
}

/// An appointment moved from `old_starts_at_ms` to `new_starts_at_ms`.
pub fn moved_text(
    old_starts_at_ms: i64,
    new_starts_at_ms: i64,
    tz: Tz,
    practice_name: Option<&str>,
) -> String {
    format!(
        "Update{}: your appointment on {} has moved to {}. {REPLY_HINT}",
        from_practice(practice_name),
        when_text(old_starts_at_ms, tz),
        when_text(new_starts_at_ms, tz)
    )
}

/// An appointment was cancelled.
pub fn cancelled_text(starts_at_ms: i64, tz: Tz, practice_name: Option<&str>) -> String {
    format!(
        "Update{}: your appointment on {} was cancelled.",
        from_practice(practice_name),
        when_text(starts_at_ms, tz)
    )
}
