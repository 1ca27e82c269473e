//! Retention columns of `conversations`, and deleting old messages.

use rusqlite::{params, Connection};

use crate::conversations::types::ConversationId;
use crate::error::Result;

/// A conversation's retention state.
pub(crate) struct RetentionRow {
    pub(crate) id: ConversationId,
    pub(crate) timer_seconds: u64,
    pub(crate) exported_through: i64,
}

pub(crate) fn all(conn: &Connection) -> Result<Vec<RetentionRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, retention_seconds, exported_through FROM conversations WHERE archived = 0",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(RetentionRow {
            id: ConversationId::new(r.get(0)?),
            timer_seconds: r.get::<_, i64>(1)?.max(0) as u64,
            exported_through: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn timer(conn: &Connection, id: ConversationId) -> Result<u64> {
    Ok(conn
        .prepare_cached("SELECT retention_seconds FROM conversations WHERE id = ?1")?
        .query_row([id.get()], |r| r.get::<_, i64>(0))?
        .max(0) as u64)
}

pub(crate) fn set_timer(conn: &Connection, id: ConversationId, seconds: u64) -> Result<()> {
    conn.prepare_cached("UPDATE conversations SET retention_seconds = ?2 WHERE id = ?1")?
        .execute(params![id.get(), seconds as i64])?;
    Ok(())
}

pub(crate) fn mark_exported(conn: &Connection, id: ConversationId, through_row: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE conversations SET exported_through = max(exported_through, ?2) WHERE id = ?1",
    )?
    .execute(params![id.get(), through_row])?;
    Ok(())
}

/// Whether `delete_before` with the same arguments would delete anything.
pub(crate) fn any_before(
    conn: &Connection,
    id: ConversationId,
    cutoff: u64,
    up_to_row: Option<i64>,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id = ?1
               AND received_at < ?2 AND id <= ?3 AND status != 0)",
        )?
        .query_row(
            params![id.get(), cutoff as i64, up_to_row.unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?)
}

/// Deletes the conversation's messages received before `cutoff` (ms),
/// except texts still waiting to be sent, and (when `up_to_row` is set)
/// only rows at or below it. Returns how many went.
pub(crate) fn delete_before(
    conn: &Connection,
    id: ConversationId,
    cutoff: u64,
    up_to_row: Option<i64>,
) -> Result<u64> {
    let max_row = up_to_row.unwrap_or(i64::MAX);
    conn.prepare_cached(
        "DELETE FROM reminder_messages WHERE message_row IN
           (SELECT id FROM messages WHERE conversation_id = ?1 AND received_at < ?2
              AND id <= ?3 AND status != 0)",
    )?
    .execute(params![id.get(), cutoff as i64, max_row])?;
    let n = conn
        .prepare_cached(
            "DELETE FROM messages WHERE conversation_id = ?1 AND received_at < ?2
               AND id <= ?3 AND status != 0",
        )?
        .execute(params![id.get(), cutoff as i64, max_row])?;
    Ok(n as u64)
}

/// Archives a conversation and deletes everything in it but the record of
/// consents: messages, their reminder links, queued items.
pub(crate) fn purge(conn: &Connection, id: ConversationId) -> Result<u64> {
    conn.prepare_cached(
        "DELETE FROM reminder_messages WHERE message_row IN
           (SELECT id FROM messages WHERE conversation_id = ?1)",
    )?
    .execute([id.get()])?;
    conn.prepare_cached("DELETE FROM appointments WHERE conversation_id = ?1")?
        .execute([id.get()])?;
    conn.prepare_cached("DELETE FROM outbox WHERE conversation_id = ?1")?
        .execute([id.get()])?;
    let n = conn
        .prepare_cached("DELETE FROM messages WHERE conversation_id = ?1")?
        .execute([id.get()])?;
    conn.prepare_cached(
        "UPDATE conversations SET archived = 1, display_name = NULL, notification_label = NULL
         WHERE id = ?1",
    )?
    .execute([id.get()])?;
    Ok(n as u64)
}
