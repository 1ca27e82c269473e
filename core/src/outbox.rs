//! The outbox: messages composed (offline or not) wait here, in order,
//! until the relay has accepted them. The content is kept, not the
//! ciphertext, so a changed device list can be re-encrypted; the envelope
//! GUID is fixed at compose time so the relay stores a retried send once.

use alcove_proto::content::{content::Body, Text};
use alcove_proto::relay::OutgoingMessage;
use rand::RngCore;
use rusqlite::{params, OptionalExtension};

use crate::account::{validate_account_id, Account};
use crate::conversations::MessageStatus;
use crate::error::{Error, Result};

/// One queued message.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub recipient: String,
    /// 16 bytes; the relay deduplicates on it.
    pub guid: Vec<u8>,
    /// Local row of the stored message, if it is a text.
    pub message_row: Option<i64>,
    content: Vec<u8>,
}

impl Account {
    /// Stores a text as `Sending` and queues it, in one transaction.
    pub fn compose_text(&mut self, remote_account: &str, text: &str) -> Result<i64> {
        validate_account_id(remote_account)?;
        if text.is_empty() || text.len() > crate::content::MAX_CONTENT_LEN - 256 {
            return Err(Error::InvalidArgument("text length".into()));
        }
        let (message_id, sent_at, plaintext) =
            self.new_content(Body::Text(Text { body: text.into() }))?;
        let tx = self.conn.unchecked_transaction()?;
        let row = self.store_outgoing(&tx, remote_account, &message_id, text, sent_at)?;
        enqueue(&tx, remote_account, &plaintext, Some(row), sent_at)?;
        tx.commit()?;
        Ok(row)
    }

    /// Queues a delivery/read receipt.
    pub fn compose_receipt(
        &mut self,
        remote_account: &str,
        read: bool,
        ids: Vec<Vec<u8>>,
    ) -> Result<()> {
        validate_account_id(remote_account)?;
        let kind = if read {
            alcove_proto::content::receipt::Kind::Read
        } else {
            alcove_proto::content::receipt::Kind::Delivery
        };
        let (_, sent_at, plaintext) =
            self.new_content(Body::Receipt(alcove_proto::content::Receipt {
                kind: kind as i32,
                message_ids: ids,
            }))?;
        enqueue(&self.conn, remote_account, &plaintext, None, sent_at)
    }

    /// The oldest queued item.
    pub fn outbox_next(&self) -> Result<Option<OutboxItem>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, recipient, guid, message_row, content FROM outbox ORDER BY id LIMIT 1",
                [],
                |r| {
                    Ok(OutboxItem {
                        id: r.get(0)?,
                        recipient: r.get(1)?,
                        guid: r.get(2)?,
                        message_row: r.get(3)?,
                        content: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// The first `limit` queued items, oldest first.
    pub fn outbox_items(&self, limit: u32) -> Result<Vec<OutboxItem>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, recipient, guid, message_row, content FROM outbox ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(OutboxItem {
                id: r.get(0)?,
                recipient: r.get(1)?,
                guid: r.get(2)?,
                message_row: r.get(3)?,
                content: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn outbox_len(&self) -> Result<u32> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?)
    }

    /// Encrypts a queued item for every device we hold a session with; the
    /// ratchet advance is committed before the ciphertext leaves.
    pub fn seal_outbox_item(&mut self, item: &OutboxItem) -> Result<Vec<OutgoingMessage>> {
        self.seal_outbox_item_as(item, None)
    }

    /// `seal_outbox_item`, sealed under `cert` when given.
    pub(crate) fn seal_outbox_item_as(
        &mut self,
        item: &OutboxItem,
        cert: Option<&libsignal_protocol::SenderCertificate>,
    ) -> Result<Vec<OutgoingMessage>> {
        let tx = self.ratchet_tx()?;
        let messages = self.encrypt_for_devices(
            &tx,
            &item.recipient,
            &item.content,
            crate::messaging::Sealing::from(cert),
        )?;
        tx.commit()?;
        Ok(messages)
    }

    /// The relay accepted the item: dequeue it and mark its message sent.
    pub fn outbox_done(&mut self, item: &OutboxItem) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM outbox WHERE id = ?1", [item.id])?;
        if let Some(row) = item.message_row {
            tx.execute(
                "UPDATE messages SET status = ?2 WHERE id = ?1 AND status < ?2",
                params![row, MessageStatus::Sent as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Gives up on an item that can never be sent (e.g. the recipient does
    /// not exist); its message stays `Sending` → shown as failed by the UI.
    pub fn outbox_abandon(&mut self, item: &OutboxItem) -> Result<()> {
        self.conn
            .execute("DELETE FROM outbox WHERE id = ?1", [item.id])?;
        if let Some(row) = item.message_row {
            self.conn.execute(
                "UPDATE messages SET status = ?2 WHERE id = ?1",
                params![row, MessageStatus::Failed as i64],
            )?;
        }
        Ok(())
    }
}

fn enqueue(
    conn: &rusqlite::Connection,
    recipient: &str,
    content: &[u8],
    message_row: Option<i64>,
    now: u64,
) -> Result<()> {
    let mut guid = vec![0u8; 16];
    rand::rng().fill_bytes(&mut guid);
    conn.execute(
        "INSERT INTO outbox (recipient, guid, content, message_row, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![recipient, guid, content, message_row, now as i64],
    )?;
    Ok(())
}
