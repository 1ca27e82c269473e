//! What a reminder, reply or status must look like before anything is
//! stored: a peer that breaks these rules gets its content refused
//! (`Malformed`, acked, nothing kept).

use alcove_proto::content::{AppointmentStatus, Reminder};

use super::ReminderChoice;
use crate::error::{Error, Result};

/// Longest appointment reference, in bytes (`[A-Za-z0-9_-]`).
pub const MAX_REF_LEN: usize = 64;
/// Longest reminder or status text, in bytes.
pub const MAX_REMINDER_TEXT: usize = 1024;

pub(crate) fn appointment_ref(r: &str) -> Result<()> {
    let ok = !r.is_empty()
        && r.len() <= MAX_REF_LEN
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(())
        .ok_or(Error::Malformed("appointment reference"))
}

fn text(t: &str) -> Result<()> {
    let ok = !t.trim().is_empty()
        && t.len() <= MAX_REMINDER_TEXT
        && !t.chars().any(|c| c.is_control() && c != '\n');
    ok.then_some(()).ok_or(Error::Malformed("reminder text"))
}

fn time_zone(tz: &str) -> Result<()> {
    tz.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| Error::Malformed("reminder time zone"))
}

pub(crate) fn reminder(r: &Reminder) -> Result<Vec<ReminderChoice>> {
    appointment_ref(&r.appointment_ref)?;
    text(&r.text)?;
    time_zone(&r.time_zone)?;
    if r.starts_at_ms == 0 || r.starts_at_ms > i64::MAX as u64 {
        return Err(Error::Malformed("reminder time"));
    }
    if alcove_proto::content::reminder::State::try_from(r.state).is_err() {
        return Err(Error::Malformed("reminder state"));
    }
    if r.choices.len() > ReminderChoice::ALL.len() {
        return Err(Error::Malformed("reminder choices"));
    }
    r.choices
        .iter()
        .map(|c| ReminderChoice::from_i32(*c).ok_or(Error::Malformed("reminder choice")))
        .collect()
}

pub(crate) fn status(s: &AppointmentStatus) -> Result<ReminderChoice> {
    appointment_ref(&s.appointment_ref)?;
    text(&s.text)?;
    time_zone(&s.time_zone)?;
    ReminderChoice::from_i32(s.choice).ok_or(Error::Malformed("appointment status choice"))
}
