//! The `messages` table: texts in and out, and their status.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::conversations::types::{ConversationId, Message, MessageKind, MessageStatus};
use crate::error::{Error, Result};

/// A message about to be stored.
pub(crate) struct NewMessage<'a> {
    pub(crate) conversation: ConversationId,
    /// The author; `None` for our own messages.
    pub(crate) sender: Option<&'a str>,
    pub(crate) message_id: &'a [u8],
    pub(crate) sender_device: u32,
    pub(crate) body: &'a str,
    pub(crate) sent_at: u64,
    pub(crate) received_at: u64,
    pub(crate) status: MessageStatus,
    pub(crate) kind: MessageKind,
}

/// Stores a message; `DuplicateMessage` when the conversation already
/// holds its message id (the same content under another envelope).
pub(crate) fn insert(conn: &Connection, m: &NewMessage<'_>) -> Result<Message> {
    let n = conn
        .prepare_cached(
            "INSERT INTO messages (conversation_id, sender_account, message_id, outgoing, sender_device, body, sent_at, received_at, status, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            m.conversation.get(),
            m.sender,
            m.message_id,
            m.sender.is_none(),
            m.sender_device,
            m.body,
            m.sent_at as i64,
            m.received_at as i64,
            m.status as i64,
            m.kind as i64
        ])?;
    if n == 0 {
        return Err(Error::DuplicateMessage);
    }
    Ok(Message {
        id: conn.last_insert_rowid(),
        conversation: m.conversation,
        sender: m.sender.map(str::to_owned),
        message_id: m.message_id.to_vec(),
        outgoing: m.sender.is_none(),
        sender_device: m.sender_device,
        body: m.body.to_owned(),
        sent_at: m.sent_at,
        received_at: m.received_at,
        status: m.status,
        kind: m.kind,
    })
}

const COLUMNS: &str = "id, conversation_id, sender_account, message_id, outgoing, sender_device, body, sent_at, received_at, status, kind";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        conversation: ConversationId::new(r.get(1)?),
        sender: r.get(2)?,
        message_id: r.get(3)?,
        outgoing: r.get(4)?,
        sender_device: r.get(5)?,
        body: r.get(6)?,
        sent_at: r.get::<_, i64>(7)? as u64,
        received_at: r.get::<_, i64>(8)? as u64,
        status: MessageStatus::from_i64(r.get(9)?),
        kind: MessageKind::from_i64(r.get(10)?),
    })
}

/// Newest first, older than `before` when given, at most 1000.
pub(crate) fn page(
    conn: &Connection,
    conversation: ConversationId,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE conversation_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(
        params![
            conversation.get(),
            before.unwrap_or(i64::MAX),
            limit.min(1000)
        ],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn get(conn: &Connection, row: i64) -> Result<Option<Message>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"))?
        .query_row([row], from_row)
        .optional()?)
}

/// Moves an outgoing message forward to `status` (never back).
pub(crate) fn advance(conn: &Connection, row: i64, status: MessageStatus) -> Result<()> {
    conn.prepare_cached(
        "UPDATE messages SET status = ?2 WHERE id = ?1 AND outgoing = 1 AND status < ?2",
    )?
    .execute(params![row, status as i64])?;
    Ok(())
}

/// Marks an outgoing message failed, whatever it was.
pub(crate) fn fail(conn: &Connection, row: i64) -> Result<()> {
    conn.prepare_cached("UPDATE messages SET status = ?2 WHERE id = ?1 AND outgoing = 1")?
        .execute(params![row, MessageStatus::Failed as i64])?;
    Ok(())
}

/// Moves our messages in `conversation` named by a receipt forward to
/// `status` (at most 1000 ids per receipt). Returns how many changed.
pub(crate) fn apply_receipt(
    conn: &Connection,
    conversation: ConversationId,
    message_ids: &[Vec<u8>],
    status: MessageStatus,
) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "UPDATE messages SET status = ?3
         WHERE conversation_id = ?1 AND message_id = ?2 AND outgoing = 1 AND status < ?3",
    )?;
    let mut n = 0;
    for id in message_ids.iter().take(1000) {
        n += stmt.execute(params![conversation.get(), id, status as i64])?;
    }
    Ok(n)
}
