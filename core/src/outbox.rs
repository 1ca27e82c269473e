//! The outbox: messages composed (offline or not) wait here, in order,
//! until the relay has accepted them. The content is kept, not the
//! ciphertext, so a changed device list can be re-encrypted; the envelope
//! GUID is fixed at compose time so the relay stores a retried send once.
//! A conversation's message becomes one item per member.

use alcove_proto::content::{content::Body, receipt, Introduction, Receipt, Text};
use alcove_proto::relay::OutgoingMessage;

use crate::account::Account;
use crate::conversations::{ConversationId, MessageKind, MessageStatus};
use crate::error::Result;
use crate::outgoing::Sealing;
use crate::store::{self, messages::NewMessage};

pub use crate::store::outbox::OutboxItem;

impl Account {
    /// Stores a text as `Sending` and queues it for every member of the
    /// conversation, in one transaction. Returns the message's row.
    pub fn compose_text(&mut self, conversation: ConversationId, text: &str) -> Result<i64> {
        crate::outgoing::check_text(text)?;
        let (message_id, sent_at, plaintext) =
            self.new_content(Body::Text(Text { body: text.into() }))?;
        let tx = self.conn.unchecked_transaction()?;
        let members = store::conversations::members(&tx, conversation)?;
        let row = store::messages::insert(
            &tx,
            &NewMessage {
                conversation,
                sender: None,
                message_id: &message_id,
                sender_device: self.device_id,
                body: text,
                sent_at,
                received_at: sent_at,
                status: MessageStatus::Sending,
                kind: MessageKind::Text,
            },
        )?
        .id;
        for member in &members {
            store::outbox::push(&tx, conversation, member, &plaintext, Some(row), sent_at)?;
        }
        // Outside the therapist's hours: the notice with the crisis
        // resources, written here, in the same transaction.
        if let [peer] = members.as_slice() {
            if let Some(profile) = store::practice::profile(&tx, peer)? {
                crate::practice::after_send(&tx, conversation, &profile, self.device_id, sent_at)?;
            }
        }
        tx.commit()?;
        Ok(row)
    }

    /// Queues a delivery/read receipt for messages of a conversation's
    /// members.
    pub fn compose_receipt(
        &mut self,
        conversation: ConversationId,
        read: bool,
        ids: Vec<Vec<u8>>,
    ) -> Result<()> {
        let kind = if read {
            receipt::Kind::Read
        } else {
            receipt::Kind::Delivery
        };
        let (_, sent_at, plaintext) = self.new_content(Body::Receipt(Receipt {
            kind: kind as i32,
            message_ids: ids,
        }))?;
        let tx = self.conn.unchecked_transaction()?;
        for member in store::conversations::members(&tx, conversation)? {
            store::outbox::push(&tx, conversation, &member, &plaintext, None, sent_at)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The oldest queued item.
    pub fn outbox_next(&self) -> Result<Option<OutboxItem>> {
        store::outbox::first(&self.conn)
    }

    /// The first `limit` queued items, oldest first.
    pub fn outbox_items(&self, limit: u32) -> Result<Vec<OutboxItem>> {
        store::outbox::oldest(&self.conn, limit)
    }

    pub fn outbox_len(&self) -> Result<u32> {
        store::outbox::len(&self.conn)
    }

    /// Encrypts a queued item for every device we hold a session with; the
    /// ratchet advance is committed before the ciphertext leaves.
    pub fn encrypt_outbox_item(&mut self, item: &OutboxItem) -> Result<Vec<OutgoingMessage>> {
        self.encrypt_outbox_item_as(item, Sealing::Unsealed)
    }

    /// `encrypt_outbox_item`, sealed or not.
    pub(crate) fn encrypt_outbox_item_as(
        &mut self,
        item: &OutboxItem,
        sealing: Sealing<'_>,
    ) -> Result<Vec<OutgoingMessage>> {
        let tx = self.ratchet_tx()?;
        let messages = self.encrypt_for_devices(&tx, &item.recipient, &item.content, sealing)?;
        tx.commit()?;
        Ok(messages)
    }

    /// Encrypts a burst of outbox items in one transaction (one durable
    /// commit for all their ratchet advances, made before any of them
    /// leaves). Each item comes with how it goes (sealed or not).
    pub(crate) fn encrypt_outbox_batch(
        &mut self,
        items: &[(&OutboxItem, Sealing<'_>)],
    ) -> Result<Vec<Vec<OutgoingMessage>>> {
        let tx = self.ratchet_tx()?;
        let mut out = Vec::with_capacity(items.len());
        for (item, sealing) in items {
            out.push(self.encrypt_for_devices(&tx, &item.recipient, &item.content, *sealing)?);
        }
        tx.commit()?;
        Ok(out)
    }

    /// The relay accepted the item: dequeue it and mark its message sent.
    pub fn outbox_done(&mut self, item: &OutboxItem) -> Result<()> {
        self.outbox_done_all(std::slice::from_ref(item))
    }

    /// As [`Account::outbox_done`], for a burst, in one commit. (Between
    /// the relay's acceptance and this commit a crash re-sends the items
    /// under their GUIDs: the relay keeps one copy per GUID and the
    /// receiver drops repeats.)
    pub fn outbox_done_all(&mut self, items: &[OutboxItem]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let tx = self.conn.unchecked_transaction()?;
        for item in items {
            mark_done(&tx, item)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Gives up on an item that can never be sent (e.g. the recipient does
    /// not exist); its message is marked failed.
    pub fn outbox_abandon(&mut self, item: &OutboxItem) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        store::outbox::remove(&tx, item.id)?;
        if let Some(row) = item.message_row {
            store::messages::fail(&tx, row)?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl Account {
    /// Queues our introduction (the name we chose to be shown as) for the
    /// members of a conversation: what a client enrolled by card sends its
    /// therapist first.
    pub fn compose_introduction(
        &mut self,
        conversation: ConversationId,
        display_name: &str,
    ) -> Result<()> {
        let name = crate::conversations::types::display_name(display_name)
            .ok_or_else(|| crate::error::Error::InvalidArgument("display name".into()))?;
        let (_, sent_at, plaintext) = self.new_content(Body::Introduction(Introduction {
            display_name: name.to_owned(),
        }))?;
        let tx = self.conn.unchecked_transaction()?;
        for member in store::conversations::members(&tx, conversation)? {
            store::outbox::push(&tx, conversation, &member, &plaintext, None, sent_at)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn mark_done(tx: &rusqlite::Connection, item: &OutboxItem) -> Result<()> {
    store::outbox::remove(tx, item.id)?;
    if let Some(row) = item.message_row {
        store::messages::advance(tx, row, MessageStatus::Sent)?;
    }
    Ok(())
}
