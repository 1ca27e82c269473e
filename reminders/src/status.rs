//! The practice's machine-readable outcome: every appointment with its
//! time, state, the client's answer and each reminder's fate, as JSON
//! (written atomically to `status_file`, and printed by `alcove bot
//! list --json`). It holds the practice's calendar UIDs, never names or
//! accounts: the practice joins it to its own records by UID.

use alcove_core::reminders::ReminderChoice;
use alcove_core::Account;
use serde::Serialize;

use crate::error::BotError;
use crate::store;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppointmentStatus {
    pub uid: String,
    /// The occurrence's original start (ms) for a recurring series; 0
    /// for a single appointment.
    pub occurrence: i64,
    pub starts_at: String,
    pub time_zone: String,
    pub state: &'static str,
    /// "confirm", "cancel", "reschedule", or null.
    pub reply: Option<&'static str>,
    pub replied_at: Option<String>,
    pub reminders: Vec<ReminderStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReminderStatus {
    pub offset: String,
    pub due_at: String,
    pub state: &'static str,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn reply_name(v: i32) -> Option<&'static str> {
    ReminderChoice::ALL
        .into_iter()
        .find(|c| c.to_wire() as i32 == v)
        .map(|c| match c {
            ReminderChoice::Confirm => "confirm",
            ReminderChoice::Cancel => "cancel",
            ReminderChoice::Reschedule => "reschedule",
        })
}

/// Every appointment, soonest first.
pub fn statuses(account: &Account) -> Result<Vec<AppointmentStatus>, BotError> {
    let conn = account.connection();
    store::all(conn)?
        .into_iter()
        .map(|a| {
            let reminders = store::reminders_of(conn, a.id)?
                .into_iter()
                .map(|r| ReminderStatus {
                    offset: r.offset,
                    due_at: rfc3339(r.due_at),
                    state: r.state.as_str(),
                })
                .collect();
            Ok(AppointmentStatus {
                uid: a.uid,
                occurrence: a.occurrence,
                starts_at: rfc3339(a.starts_at),
                time_zone: a.time_zone,
                state: if a.cancelled {
                    "cancelled"
                } else {
                    "scheduled"
                },
                reply: a.reply.and_then(reply_name),
                replied_at: a.replied_at.map(rfc3339),
                reminders,
            })
        })
        .collect()
}

/// Writes the statuses to `path` atomically (a temporary file renamed
/// over it), readable by the owner only.
pub fn write_status_file(account: &Account, path: &std::path::Path) -> Result<(), BotError> {
    let json = serde_json::to_vec_pretty(&statuses(account)?)
        .map_err(|e| BotError::Invalid(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
