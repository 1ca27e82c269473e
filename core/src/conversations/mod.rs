//! Conversations and their messages: the types the app sees and the
//! account's queries over them (the SQL is in `store::conversations` and
//! `store::messages`).

use crate::account::{validate_account_id, Account};

pub(crate) mod types;
use crate::error::Result;
use crate::store;
pub use types::{Conversation, ConversationId, Message, MessageKind, MessageStatus};

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
