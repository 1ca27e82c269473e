//! The conversation types the app and the store share: ids, conversations,
//! messages and their status, and what a display name may be. They depend
//! on nothing else in the core, so the store and the account's queries
//! both build on them.

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
    /// An appointment reminder (or news that it moved or was cancelled)
    /// from a bot our therapist introduced: `Account::reminder` gives its
    /// appointment and the quick replies to show as buttons.
    Reminder = 2,
    /// The outcome of a reminder reply: the bot's acknowledgement on a
    /// client, the client's answer forwarded by the bot on a therapist.
    AppointmentUpdate = 3,
    /// Our own quick reply to a reminder (its label: "Confirm").
    ReminderReply = 4,
}

impl MessageKind {
    pub(crate) fn from_i64(v: i64) -> Self {
        match v {
            1 => Self::Notice,
            2 => Self::Reminder,
            3 => Self::AppointmentUpdate,
            4 => Self::ReminderReply,
            _ => Self::Text,
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

/// Longest display name a client may choose, in bytes.
pub(crate) const MAX_DISPLAY_NAME: usize = 64;

/// A display name as chosen: trimmed, 1..=64 bytes, no control characters.
pub(crate) fn display_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let ok =
        !name.is_empty() && name.len() <= MAX_DISPLAY_NAME && !name.chars().any(char::is_control);
    ok.then_some(name)
}
