//! The `trusted_bots`, `appointments`, `reminder_messages` and `bot_inbox`
//! tables: who may send us reminders, what they told us, and (on a bot)
//! what clients answered.

use rusqlite::{params, Connection, OptionalExtension};

use crate::conversations::types::ConversationId;
use crate::error::Result;

/// A bot a therapist introduced, under the identity key it was introduced
/// with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedBot {
    pub account: String,
    pub identity_key: Vec<u8>,
    /// The therapist who introduced it (our own account on a therapist).
    pub introduced_by: String,
    pub introduced_at: u64,
}

/// Records an introduction; a later one for the same bot replaces it (a
/// practice that re-enrolled its bot introduces the new key).
pub(crate) fn trust_bot(conn: &Connection, bot: &TrustedBot) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO trusted_bots (account_id, identity_key, introduced_by, introduced_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account_id) DO UPDATE SET identity_key = excluded.identity_key,
           introduced_by = excluded.introduced_by, introduced_at = excluded.introduced_at",
    )?
    .execute(params![
        bot.account,
        bot.identity_key,
        bot.introduced_by,
        bot.introduced_at as i64
    ])?;
    Ok(())
}

pub(crate) fn trusted_bot(conn: &Connection, account: &str) -> Result<Option<TrustedBot>> {
    Ok(conn
        .prepare_cached(
            "SELECT account_id, identity_key, introduced_by, introduced_at
             FROM trusted_bots WHERE account_id = ?1",
        )?
        .query_row([account], |r| {
            Ok(TrustedBot {
                account: r.get(0)?,
                identity_key: r.get(1)?,
                introduced_by: r.get(2)?,
                introduced_at: r.get::<_, i64>(3)? as u64,
            })
        })
        .optional()?)
}

/// Bots introduced by `by`.
pub(crate) fn bots_introduced_by(conn: &Connection, by: &str) -> Result<Vec<TrustedBot>> {
    let mut stmt = conn.prepare_cached(
        "SELECT account_id, identity_key, introduced_by, introduced_at
         FROM trusted_bots WHERE introduced_by = ?1 ORDER BY account_id",
    )?;
    let rows = stmt.query_map([by], |r| {
        Ok(TrustedBot {
            account: r.get(0)?,
            identity_key: r.get(1)?,
            introduced_by: r.get(2)?,
            introduced_at: r.get::<_, i64>(3)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One appointment as a client knows it from a bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppointmentRow {
    pub(crate) conversation: ConversationId,
    pub(crate) starts_at: u64,
    pub(crate) time_zone: String,
    pub(crate) state: i32,
    pub(crate) reply: Option<i32>,
    pub(crate) acknowledged: Option<i32>,
    pub(crate) accepted: Option<bool>,
}

/// Stores what the bot said about an appointment (time, zone, state);
/// replies and acknowledgements already recorded are kept.
pub(crate) fn upsert_appointment(
    conn: &Connection,
    bot: &str,
    appointment_ref: &str,
    row: &AppointmentRow,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO appointments (bot_account, appointment_ref, conversation_id, starts_at, time_zone, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (bot_account, appointment_ref) DO UPDATE SET
           starts_at = excluded.starts_at, time_zone = excluded.time_zone, state = excluded.state",
    )?
    .execute(params![
        bot,
        appointment_ref,
        row.conversation.get(),
        row.starts_at as i64,
        row.time_zone,
        row.state
    ])?;
    Ok(())
}

pub(crate) fn appointment(
    conn: &Connection,
    bot: &str,
    appointment_ref: &str,
) -> Result<Option<AppointmentRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT conversation_id, starts_at, time_zone, state, reply, acknowledged, accepted
             FROM appointments WHERE bot_account = ?1 AND appointment_ref = ?2",
        )?
        .query_row([bot, appointment_ref], |r| {
            Ok(AppointmentRow {
                conversation: ConversationId::new(r.get(0)?),
                starts_at: r.get::<_, i64>(1)? as u64,
                time_zone: r.get(2)?,
                state: r.get(3)?,
                reply: r.get(4)?,
                acknowledged: r.get(5)?,
                accepted: r.get(6)?,
            })
        })
        .optional()?)
}

pub(crate) fn set_reply(
    conn: &Connection,
    bot: &str,
    appointment_ref: &str,
    choice: i32,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE appointments SET reply = ?3 WHERE bot_account = ?1 AND appointment_ref = ?2",
    )?
    .execute(params![bot, appointment_ref, choice])?;
    Ok(())
}

/// Records the bot's acknowledgement of a reply; an accepted one is the
/// appointment's answer from now on (whatever this phone sent before),
/// and an accepted cancellation cancels it. False for an appointment we
/// were never told of.
pub(crate) fn set_acknowledged(
    conn: &Connection,
    bot: &str,
    appointment_ref: &str,
    choice: i32,
    accepted: bool,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE appointments SET acknowledged = ?3, accepted = ?4,
               reply = CASE WHEN ?4 THEN ?3 ELSE reply END,
               state = CASE WHEN ?4 AND ?3 = ?5 THEN ?6 ELSE state END
             WHERE bot_account = ?1 AND appointment_ref = ?2",
        )?
        .execute(params![
            bot,
            appointment_ref,
            choice,
            accepted,
            crate::reminders::ReminderChoice::Cancel.as_i32(),
            alcove_proto::content::reminder::State::Cancelled as i32
        ])?;
    Ok(n == 1)
}

/// The reminder carried by message `row`: its bot, appointment and the
/// quick replies offered (a bit per choice).
pub(crate) fn link_message(
    conn: &Connection,
    row: i64,
    bot: &str,
    appointment_ref: &str,
    choices: u32,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO reminder_messages (message_row, bot_account, appointment_ref, choices)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![row, bot, appointment_ref, choices])?;
    Ok(())
}

pub(crate) fn message_link(conn: &Connection, row: i64) -> Result<Option<(String, String, u32)>> {
    Ok(conn
        .prepare_cached(
            "SELECT bot_account, appointment_ref, choices FROM reminder_messages WHERE message_row = ?1",
        )?
        .query_row([row], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// What a client sent a bot, waiting for the bot's engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxItem {
    /// A quick reply to the reminder of `appointment_ref`.
    Reply {
        id: i64,
        from: String,
        appointment_ref: String,
        choice: crate::reminders::ReminderChoice,
        received_at: u64,
    },
    /// A typed message ("C", "yes", "cancel"): the engine decides what it
    /// answers.
    Text {
        id: i64,
        from: String,
        body: String,
        received_at: u64,
    },
}

impl InboxItem {
    pub fn id(&self) -> i64 {
        match self {
            InboxItem::Reply { id, .. } | InboxItem::Text { id, .. } => *id,
        }
    }
}

pub(crate) fn inbox_push(
    conn: &Connection,
    from: &str,
    reply: Option<(&str, i32)>,
    body: Option<&str>,
    now: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO bot_inbox (from_account, appointment_ref, choice, body, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        from,
        reply.map(|r| r.0),
        reply.map(|r| r.1),
        body,
        now as i64
    ])?;
    Ok(())
}

/// The oldest `limit` items, oldest first.
pub(crate) fn inbox(conn: &Connection, limit: u32) -> Result<Vec<InboxItem>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, from_account, appointment_ref, choice, body, received_at
         FROM bot_inbox ORDER BY id LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        let id: i64 = r.get(0)?;
        let from: String = r.get(1)?;
        let appointment_ref: Option<String> = r.get(2)?;
        let choice: Option<i32> = r.get(3)?;
        let body: Option<String> = r.get(4)?;
        let received_at = r.get::<_, i64>(5)? as u64;
        let choice = choice.and_then(crate::reminders::ReminderChoice::from_i32);
        Ok(match (appointment_ref, choice) {
            (Some(appointment_ref), Some(choice)) => InboxItem::Reply {
                id,
                from,
                appointment_ref,
                choice,
                received_at,
            },
            _ => InboxItem::Text {
                id,
                from,
                body: body.unwrap_or_default(),
                received_at,
            },
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn inbox_done(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM bot_inbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
