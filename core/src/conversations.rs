//! Conversations and their messages, as stored in the encrypted database.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::account::{validate_account_id, Account};
use crate::error::{Error, Result};

/// Where a message stands. Outgoing: Sending → Sent → Delivered → Read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MessageStatus {
    /// Stored locally; not yet accepted by the relay.
    Sending = 0,
    /// Accepted by the relay.
    Sent = 1,
    Delivered = 2,
    Read = 3,
    /// Could not be sent (recipient gone); shown as failed.
    Failed = 4,
    /// An incoming message.
    Received = 10,
}

impl MessageStatus {
    fn from_i64(v: i64) -> Self {
        match v {
            1 => Self::Sent,
            2 => Self::Delivered,
            3 => Self::Read,
            4 => Self::Failed,
            10 => Self::Received,
            _ => Self::Sending,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Local row id (orders messages within a conversation).
    pub id: i64,
    pub remote_account: String,
    /// 16 bytes, chosen by the sender.
    pub message_id: Vec<u8>,
    pub outgoing: bool,
    pub sender_device: u32,
    pub body: String,
    pub sent_at: u64,
    pub received_at: u64,
    pub status: MessageStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub remote_account: String,
    pub display_name: Option<String>,
    pub last_message_id: Option<i64>,
}

pub(crate) fn get_or_create(conn: &Connection, remote: &str, now: u64) -> Result<i64> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM conversations WHERE remote_account = ?1")?
        .query_row([remote], |r| r.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO conversations (remote_account, created_at) VALUES (?1, ?2)")?
        .execute(params![remote, now as i64])?;
    Ok(conn.last_insert_rowid())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_message(
    conn: &Connection,
    conversation: i64,
    message_id: &[u8],
    outgoing: bool,
    sender_device: u32,
    body: &str,
    sent_at: u64,
    received_at: u64,
    status: MessageStatus,
) -> Result<i64> {
    let n = conn
        .prepare_cached(
            "INSERT INTO messages (conversation_id, message_id, outgoing, sender_device, body, sent_at, received_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            conversation,
            message_id,
            outgoing,
            sender_device,
            body,
            sent_at as i64,
            received_at as i64,
            status as i64
        ])?;
    if n == 0 {
        // The same content under a different envelope (a resend): keep one.
        return Err(Error::DuplicateMessage);
    }
    Ok(conn.last_insert_rowid())
}

const MESSAGE_COLUMNS: &str = "m.id, c.remote_account, m.message_id, m.outgoing, m.sender_device, m.body, m.sent_at, m.received_at, m.status";

fn message_from_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        remote_account: r.get(1)?,
        message_id: r.get(2)?,
        outgoing: r.get(3)?,
        sender_device: r.get(4)?,
        body: r.get(5)?,
        sent_at: r.get::<_, i64>(6)? as u64,
        received_at: r.get::<_, i64>(7)? as u64,
        status: MessageStatus::from_i64(r.get(8)?),
    })
}

/// Moves outgoing messages of `remote` forward to `status` (never back).
pub(crate) fn apply_receipt(
    conn: &Connection,
    remote: &str,
    message_ids: &[Vec<u8>],
    status: MessageStatus,
) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "UPDATE messages SET status = ?3
         WHERE outgoing = 1 AND message_id = ?2 AND status < ?3
           AND conversation_id = (SELECT id FROM conversations WHERE remote_account = ?1)",
    )?;
    let mut n = 0;
    for id in message_ids.iter().take(1000) {
        n += stmt.execute(params![remote, id, status as i64])?;
    }
    Ok(n)
}

impl Account {
    /// Sets the name the user sees for a conversation (stored encrypted).
    pub fn set_display_name(&mut self, remote_account: &str, name: &str) -> Result<()> {
        validate_account_id(remote_account)?;
        let id = get_or_create(&self.conn, remote_account, self.now())?;
        self.conn.execute(
            "UPDATE conversations SET display_name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        Ok(())
    }

    /// All conversations, most recently active first.
    pub fn conversations(&self) -> Result<Vec<Conversation>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.remote_account, c.display_name, (SELECT max(id) FROM messages WHERE conversation_id = c.id) AS last
             FROM conversations c ORDER BY last DESC NULLS LAST, c.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Conversation {
                remote_account: r.get(0)?,
                display_name: r.get(1)?,
                last_message_id: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A page of a conversation's messages, newest first, older than
    /// `before` (a message id) when given.
    pub fn messages(
        &self,
        remote_account: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE c.remote_account = ?1 AND m.id < ?2 ORDER BY m.id DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![remote_account, before.unwrap_or(i64::MAX), limit.min(1000)],
            message_from_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks an outgoing message as accepted by the relay.
    pub fn mark_sent(&mut self, local_id: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE messages SET status = ?2 WHERE id = ?1 AND outgoing = 1 AND status < ?2",
            params![local_id, MessageStatus::Sent as i64],
        )?;
        Ok(())
    }

    /// Looks up one message by local id.
    pub fn message(&self, local_id: i64) -> Result<Option<Message>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?1"
            ))?
            .query_row([local_id], message_from_row)
            .optional()?)
    }
}
