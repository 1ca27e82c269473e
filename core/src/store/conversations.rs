//! The `conversations` and `conversation_members` tables.

use rusqlite::{params, Connection, OptionalExtension};

use crate::conversations::types::{Conversation, ConversationId};
use crate::error::{Error, Result};

/// A conversation as the inbound path needs it: its id and what a
/// notification may show, read in the one lookup that finds it.
#[derive(Debug, Clone)]
pub(crate) struct Labels {
    pub(crate) id: ConversationId,
    pub(crate) display_name: Option<String>,
    pub(crate) notification_label: Option<String>,
}

/// The two-member conversation with `peer`, created (with its members)
/// when there is none yet.
pub(crate) fn direct(conn: &Connection, peer: &str, now: u64) -> Result<Labels> {
    let found = conn
        .prepare_cached(
            "SELECT id, display_name, notification_label FROM conversations WHERE direct_peer = ?1",
        )?
        .query_row([peer], |r| {
            Ok(Labels {
                id: ConversationId::new(r.get(0)?),
                display_name: r.get(1)?,
                notification_label: r.get(2)?,
            })
        })
        .optional()?;
    if let Some(found) = found {
        return Ok(found);
    }
    conn.prepare_cached("INSERT INTO conversations (direct_peer, created_at) VALUES (?1, ?2)")?
        .execute(params![peer, now as i64])?;
    let id = ConversationId::new(conn.last_insert_rowid());
    conn.prepare_cached(
        "INSERT INTO conversation_members (conversation_id, account_id) VALUES (?1, ?2)",
    )?
    .execute(params![id.get(), peer])?;
    Ok(Labels {
        id,
        display_name: None,
        notification_label: None,
    })
}

/// The members of a conversation other than us (for a direct one, its
/// peer). `InvalidArgument` when there is no such conversation.
pub(crate) fn members(conn: &Connection, id: ConversationId) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT account_id FROM conversation_members WHERE conversation_id = ?1 ORDER BY account_id",
    )?;
    let members = stmt
        .query_map([id.get()], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if members.is_empty() {
        return Err(unknown());
    }
    Ok(members)
}

/// The conversations `account` is a member of (the one direct
/// conversation with it, later also groups).
pub(crate) fn with_member(conn: &Connection, account: &str) -> Result<Option<ConversationId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM conversations WHERE direct_peer = ?1")?
        .query_row([account], |r| r.get(0).map(ConversationId::new))
        .optional()?)
}

pub(crate) fn set_display_name(conn: &Connection, id: ConversationId, name: &str) -> Result<()> {
    let n = conn.execute(
        "UPDATE conversations SET display_name = ?2 WHERE id = ?1",
        params![id.get(), name],
    )?;
    if n == 0 {
        return Err(unknown());
    }
    Ok(())
}

pub(crate) fn set_notification_label(
    conn: &Connection,
    id: ConversationId,
    label: &str,
) -> Result<()> {
    let n = conn.execute(
        "UPDATE conversations SET notification_label = ?2 WHERE id = ?1",
        params![id.get(), label],
    )?;
    if n == 0 {
        return Err(unknown());
    }
    Ok(())
}

/// All conversations but archived (purged) ones, most recently active
/// first. Account ids are
/// `[A-Za-z0-9-]`, so a comma separates members safely.
pub(crate) fn list(conn: &Connection) -> Result<Vec<Conversation>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.display_name,
                (SELECT max(id) FROM messages WHERE conversation_id = c.id) AS last,
                (SELECT group_concat(account_id, ',') FROM
                    (SELECT account_id FROM conversation_members
                     WHERE conversation_id = c.id ORDER BY account_id))
         FROM conversations c WHERE c.archived = 0 ORDER BY last DESC NULLS LAST, c.id",
    )?;
    let rows = stmt.query_map([], |r| {
        let members: Option<String> = r.get(3)?;
        Ok(Conversation {
            id: ConversationId::new(r.get(0)?),
            display_name: r.get(1)?,
            last_message_id: r.get(2)?,
            members: members
                .map(|m| m.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn unknown() -> Error {
    Error::InvalidArgument("unknown conversation".into())
}
