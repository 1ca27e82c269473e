//! The `outbox` table: what waits for the relay, in order.

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::conversations::types::ConversationId;
use crate::error::Result;

/// One queued message for one recipient.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub conversation: ConversationId,
    pub recipient: String,
    /// 16 bytes; the relay deduplicates on it.
    pub guid: Vec<u8>,
    /// Local row of the stored message, if it is a text.
    pub message_row: Option<i64>,
    pub(crate) content: Vec<u8>,
}

const COLUMNS: &str = "id, conversation_id, recipient, guid, message_row, content";

fn from_row(r: &Row<'_>) -> rusqlite::Result<OutboxItem> {
    Ok(OutboxItem {
        id: r.get(0)?,
        conversation: ConversationId::new(r.get(1)?),
        recipient: r.get(2)?,
        guid: r.get(3)?,
        message_row: r.get(4)?,
        content: r.get(5)?,
    })
}

/// Queues `content` for `recipient` under a fresh envelope GUID (fixed
/// now, so the relay stores a retried send once).
pub(crate) fn push(
    conn: &Connection,
    conversation: ConversationId,
    recipient: &str,
    content: &[u8],
    message_row: Option<i64>,
    now: u64,
) -> Result<()> {
    let mut guid = vec![0u8; 16];
    rand::rng().fill_bytes(&mut guid);
    conn.prepare_cached(
        "INSERT INTO outbox (conversation_id, recipient, guid, content, message_row, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        conversation.get(),
        recipient,
        guid,
        content,
        message_row,
        now as i64
    ])?;
    Ok(())
}

pub(crate) fn first(conn: &Connection) -> Result<Option<OutboxItem>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM outbox ORDER BY id LIMIT 1"))?
        .query_row([], from_row)
        .optional()?)
}

pub(crate) fn oldest(conn: &Connection, limit: u32) -> Result<Vec<OutboxItem>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outbox ORDER BY id LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn len(conn: &Connection) -> Result<u32> {
    Ok(conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?)
}

pub(crate) fn remove(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The id the next queued item will get (ids only grow).
pub(crate) fn next_id(conn: &Connection) -> Result<i64> {
    Ok(
        conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM outbox", [], |r| {
            r.get(0)
        })?,
    )
}

/// Moves a conversation's items queued before `id` behind everything
/// queued since, keeping their order and GUIDs.
pub(crate) fn move_behind(conn: &Connection, conversation: ConversationId, id: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO outbox (conversation_id, recipient, guid, content, message_row, created_at)
         SELECT conversation_id, recipient, guid, content, message_row, created_at
         FROM outbox WHERE conversation_id = ?1 AND id < ?2 ORDER BY id",
        params![conversation.get(), id],
    )?;
    conn.execute(
        "DELETE FROM outbox WHERE conversation_id = ?1 AND id < ?2",
        params![conversation.get(), id],
    )?;
    Ok(())
}
