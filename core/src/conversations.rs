//! Conversations and their messages: the types the app sees and the
//! account's queries over them (the SQL is in `store::conversations` and
//! `store::messages`).

use crate::account::{validate_account_id, Account};
use crate::error::Result;
use crate::store;

/// A conversation's id on this device. Everything in a conversation
/// (messages, outbox items, labels, events) is addressed by it; a
/// conversation has members (one peer for a direct conversation, more for
/// a group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(i64);

impl ConversationId {
    /// Wraps an id the app got from the core earlier (from a
    /// `Conversation`, a `Message` or an event).
    pub const fn new(raw: i64) -> Self {
        Self(raw)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

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
    pub(crate) fn from_i64(v: i64) -> Self {
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

/// What a message row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A text, sent or received.
    Text = 0,
    /// Written by this device into the conversation, never sent (the
    /// out-of-hours notice with the practice's crisis resources).
    Notice = 1,
}

impl MessageKind {
    pub(crate) fn from_i64(v: i64) -> Self {
        if v == 1 {
            Self::Notice
        } else {
            Self::Text
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Local row id (orders messages within a conversation).
    pub id: i64,
    pub conversation: ConversationId,
    /// The author's account; `None` for our own messages.
    pub sender: Option<String>,
    /// 16 bytes, chosen by the sender.
    pub message_id: Vec<u8>,
    pub outgoing: bool,
    pub sender_device: u32,
    pub body: String,
    pub sent_at: u64,
    pub received_at: u64,
    pub status: MessageStatus,
    pub kind: MessageKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    /// The other members' account ids (one for a direct conversation).
    pub members: Vec<String>,
    pub display_name: Option<String>,
    pub last_message_id: Option<i64>,
}

impl Account {
    /// The direct conversation with `remote_account`, started (empty) when
    /// there is none yet.
    pub fn conversation_with(&mut self, remote_account: &str) -> Result<ConversationId> {
        validate_account_id(remote_account)?;
        Ok(store::conversations::direct(&self.conn, remote_account, self.now())?.id)
    }

    /// The direct conversation with `remote_account`, if one exists.
    pub fn find_conversation_with(&self, remote_account: &str) -> Result<Option<ConversationId>> {
        store::conversations::with_member(&self.conn, remote_account)
    }

    /// The other members of a conversation.
    pub fn members(&self, conversation: ConversationId) -> Result<Vec<String>> {
        store::conversations::members(&self.conn, conversation)
    }

    /// Sets the name the user sees for a conversation (stored encrypted).
    pub fn set_display_name(&mut self, conversation: ConversationId, name: &str) -> Result<()> {
        store::conversations::set_display_name(&self.conn, conversation, name)
    }

    /// All conversations, most recently active first.
    pub fn conversations(&self) -> Result<Vec<Conversation>> {
        store::conversations::list(&self.conn)
    }

    /// A page of a conversation's messages, newest first, older than
    /// `before` (a message id) when given.
    pub fn messages(
        &self,
        conversation: ConversationId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        store::messages::page(&self.conn, conversation, before, limit)
    }

    /// Marks an outgoing message as accepted by the relay.
    pub fn mark_sent(&mut self, local_id: i64) -> Result<()> {
        store::messages::advance(&self.conn, local_id, MessageStatus::Sent)
    }

    /// Looks up one message by local id.
    pub fn message(&self, local_id: i64) -> Result<Option<Message>> {
        store::messages::get(&self.conn, local_id)
    }
}
