//! The bot's own tables, in its SQLCipher account database beside the
//! core's (so one transaction covers both: a reminder is marked sent in
//! the same commit that queues it in the core's outbox). Versioned by
//! `bot_schema`, apart from the core's `user_version`.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::BotError;

const MIGRATIONS: &[&str] = &[
    // v1: appointments (a calendar UID and occurrence, or a CLI id; the
    // random `ref` is all a client ever sees of it) and one reminder row
    // per configured offset.
    "CREATE TABLE bot_appointments (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL,
        occurrence INTEGER NOT NULL,
        ref TEXT NOT NULL UNIQUE,
        client TEXT NOT NULL,
        therapist TEXT,
        starts_at INTEGER NOT NULL,
        time_zone TEXT NOT NULL,
        cancelled INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL,
        reply INTEGER,
        replied_at INTEGER,
        notified INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL,
        UNIQUE (uid, occurrence)
     );
     CREATE INDEX bot_appointments_by_client ON bot_appointments (client, starts_at);
     CREATE TABLE bot_reminders (
        appointment_id INTEGER NOT NULL REFERENCES bot_appointments(id),
        offset TEXT NOT NULL,
        due_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        done_at INTEGER,
        PRIMARY KEY (appointment_id, offset)
     ) WITHOUT ROWID;
     CREATE INDEX bot_reminders_due ON bot_reminders (state, due_at);",
];

pub(crate) fn migrate(conn: &Connection) -> Result<(), BotError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS bot_schema (version INTEGER NOT NULL)")?;
    let found: u32 = conn
        .query_row("SELECT max(version) FROM bot_schema", [], |r| {
            r.get::<_, Option<u32>>(0)
        })?
        .unwrap_or(0);
    let current = MIGRATIONS.len() as u32;
    if found > current {
        return Err(BotError::SchemaTooNew(found));
    }
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO bot_schema (version) VALUES (?1)",
            [v as u32 + 1],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// Where a reminder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderState {
    /// Waits for its due time.
    Pending,
    /// Queued for the client (the outbox delivers it exactly once).
    Sent,
    /// Its time came after the appointment started, or in quiet hours
    /// that last past the start: never sent.
    Skipped,
    /// A later reminder for the same appointment was due as well (the bot
    /// was down): only the latest goes.
    Superseded,
    /// The appointment was cancelled first.
    Cancelled,
}

impl ReminderState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Skipped => "skipped",
            Self::Superseded => "superseded",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "sent" => Self::Sent,
            "skipped" => Self::Skipped,
            "superseded" => Self::Superseded,
            "cancelled" => Self::Cancelled,
            _ => Self::Pending,
        }
    }
}

/// One appointment as the bot keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct Appointment {
    pub id: i64,
    pub uid: String,
    pub occurrence: i64,
    pub appointment_ref: String,
    pub client: String,
    pub therapist: Option<String>,
    pub starts_at: i64,
    pub time_zone: String,
    pub cancelled: bool,
    pub source: String,
    /// The client's answer (the core's `ReminderChoice` as an integer).
    pub reply: Option<i32>,
    pub replied_at: Option<i64>,
}

// Debug never shows the accounts.
impl std::fmt::Debug for Appointment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appointment")
            .field("id", &self.id)
            .field("starts_at", &self.starts_at)
            .field("cancelled", &self.cancelled)
            .field("reply", &self.reply)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, uid, occurrence, ref, client, therapist, starts_at, time_zone, cancelled, source, reply, replied_at";

fn appointment(r: &Row<'_>) -> rusqlite::Result<Appointment> {
    Ok(Appointment {
        id: r.get(0)?,
        uid: r.get(1)?,
        occurrence: r.get(2)?,
        appointment_ref: r.get(3)?,
        client: r.get(4)?,
        therapist: r.get(5)?,
        starts_at: r.get(6)?,
        time_zone: r.get(7)?,
        cancelled: r.get(8)?,
        source: r.get(9)?,
        reply: r.get(10)?,
        replied_at: r.get(11)?,
    })
}

pub(crate) fn by_key(
    conn: &Connection,
    uid: &str,
    occurrence: i64,
) -> Result<Option<Appointment>, BotError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM bot_appointments WHERE uid = ?1 AND occurrence = ?2"
        ))?
        .query_row(params![uid, occurrence], appointment)
        .optional()?)
}

pub(crate) fn by_ref(conn: &Connection, r: &str) -> Result<Option<Appointment>, BotError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM bot_appointments WHERE ref = ?1"
        ))?
        .query_row([r], appointment)
        .optional()?)
}

pub(crate) fn by_id(conn: &Connection, id: i64) -> Result<Option<Appointment>, BotError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM bot_appointments WHERE id = ?1"
        ))?
        .query_row([id], appointment)
        .optional()?)
}

/// Every appointment, soonest first.
pub fn all(conn: &Connection) -> Result<Vec<Appointment>, BotError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM bot_appointments ORDER BY starts_at, id"
    ))?;
    let rows = stmt.query_map([], appointment)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The client's next appointment not yet started nor cancelled.
pub(crate) fn next_for_client(
    conn: &Connection,
    client: &str,
    now: i64,
) -> Result<Option<Appointment>, BotError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM bot_appointments
             WHERE client = ?1 AND starts_at > ?2 AND cancelled = 0
             ORDER BY starts_at LIMIT 1"
        ))?
        .query_row(params![client, now], appointment)
        .optional()?)
}

/// Feed appointments still to come, for finding the ones a re-import no
/// longer lists.
pub(crate) fn upcoming_from_feed(
    conn: &Connection,
    from: i64,
    to: i64,
) -> Result<Vec<Appointment>, BotError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM bot_appointments
         WHERE source = 'feed' AND cancelled = 0 AND starts_at > ?1 AND starts_at <= ?2"
    ))?;
    let rows = stmt.query_map(params![from, to], appointment)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) struct NewRow<'a> {
    pub(crate) uid: &'a str,
    pub(crate) occurrence: i64,
    pub(crate) appointment_ref: &'a str,
    pub(crate) client: &'a str,
    pub(crate) therapist: Option<&'a str>,
    pub(crate) starts_at: i64,
    pub(crate) time_zone: &'a str,
    pub(crate) cancelled: bool,
    pub(crate) source: &'a str,
}

pub(crate) fn insert(conn: &Connection, a: &NewRow<'_>, now: i64) -> Result<i64, BotError> {
    conn.prepare_cached(
        "INSERT INTO bot_appointments (uid, occurrence, ref, client, therapist, starts_at, time_zone, cancelled, source, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        a.uid,
        a.occurrence,
        a.appointment_ref,
        a.client,
        a.therapist,
        a.starts_at,
        a.time_zone,
        a.cancelled,
        a.source,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Takes `a`'s client, therapist, time, zone and cancellation for row `id`
/// (its key, ref and source stay).
pub(crate) fn update(conn: &Connection, id: i64, a: &NewRow<'_>, now: i64) -> Result<(), BotError> {
    conn.prepare_cached(
        "UPDATE bot_appointments SET client = ?2, therapist = ?3, starts_at = ?4, time_zone = ?5,
           cancelled = ?6, updated_at = ?7 WHERE id = ?1",
    )?
    .execute(params![
        id,
        a.client,
        a.therapist,
        a.starts_at,
        a.time_zone,
        a.cancelled,
        now
    ])?;
    Ok(())
}

pub(crate) fn set_cancelled(conn: &Connection, id: i64, now: i64) -> Result<(), BotError> {
    conn.prepare_cached(
        "UPDATE bot_appointments SET cancelled = 1, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// The client has heard of this appointment (a reminder or a moved
/// notice was queued): a later cancellation or move is told to them.
pub(crate) fn set_notified(conn: &Connection, id: i64) -> Result<(), BotError> {
    conn.prepare_cached("UPDATE bot_appointments SET notified = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

pub(crate) fn notified(conn: &Connection, id: i64) -> Result<bool, BotError> {
    Ok(conn
        .prepare_cached("SELECT notified FROM bot_appointments WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?)
}

pub(crate) fn set_reply(conn: &Connection, id: i64, choice: i32, now: i64) -> Result<(), BotError> {
    conn.prepare_cached(
        "UPDATE bot_appointments SET reply = ?2, replied_at = ?3, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![id, choice, now])?;
    Ok(())
}

/// One reminder of an appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderRow {
    pub appointment_id: i64,
    pub offset: String,
    pub due_at: i64,
    pub state: ReminderState,
}

pub(crate) fn reminders_of(conn: &Connection, id: i64) -> Result<Vec<ReminderRow>, BotError> {
    let mut stmt = conn.prepare_cached(
        "SELECT appointment_id, offset, due_at, state FROM bot_reminders
         WHERE appointment_id = ?1 ORDER BY due_at",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(ReminderRow {
            appointment_id: r.get(0)?,
            offset: r.get(1)?,
            due_at: r.get(2)?,
            state: ReminderState::parse(&r.get::<_, String>(3)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Pending reminders due by `now`, soonest first, at most `limit`.
pub(crate) fn due(conn: &Connection, now: i64, limit: u32) -> Result<Vec<ReminderRow>, BotError> {
    let mut stmt = conn.prepare_cached(
        "SELECT appointment_id, offset, due_at, state FROM bot_reminders
         WHERE state = 'pending' AND due_at <= ?1 ORDER BY due_at LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit], |r| {
        Ok(ReminderRow {
            appointment_id: r.get(0)?,
            offset: r.get(1)?,
            due_at: r.get(2)?,
            state: ReminderState::parse(&r.get::<_, String>(3)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The earliest pending due time, if any: when the bot next has work.
pub(crate) fn next_due(conn: &Connection) -> Result<Option<i64>, BotError> {
    Ok(conn.query_row(
        "SELECT min(due_at) FROM bot_reminders WHERE state = 'pending'",
        [],
        |r| r.get(0),
    )?)
}

pub(crate) fn set_reminder(
    conn: &Connection,
    id: i64,
    offset: &str,
    due_at: i64,
    state: ReminderState,
    now: i64,
) -> Result<(), BotError> {
    conn.prepare_cached(
        "INSERT INTO bot_reminders (appointment_id, offset, due_at, state, done_at)
         VALUES (?1, ?2, ?3, ?4, CASE WHEN ?4 = 'pending' THEN NULL ELSE ?5 END)
         ON CONFLICT (appointment_id, offset) DO UPDATE SET due_at = excluded.due_at,
           state = excluded.state, done_at = excluded.done_at",
    )?
    .execute(params![id, offset, due_at, state.as_str(), now])?;
    Ok(())
}

/// Every pending reminder of an appointment becomes `state`.
pub(crate) fn close_pending(
    conn: &Connection,
    id: i64,
    state: ReminderState,
    now: i64,
) -> Result<(), BotError> {
    conn.prepare_cached(
        "UPDATE bot_reminders SET state = ?2, done_at = ?3 WHERE appointment_id = ?1 AND state = 'pending'",
    )?
    .execute(params![id, state.as_str(), now])?;
    Ok(())
}
