//! The records and enums the shells see, converted from the core's.

use alcove_core as core;

/// A conversation's id on this device (a `Long` in Kotlin, an `Int64` in
/// Swift): what messages, sends and events are addressed by.
pub type ConversationId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum NotificationPrivacy {
    Hidden,
    Pseudonym,
    FullPreview,
}

impl From<NotificationPrivacy> for core::NotificationPrivacy {
    fn from(p: NotificationPrivacy) -> Self {
        match p {
            NotificationPrivacy::Hidden => Self::Hidden,
            NotificationPrivacy::Pseudonym => Self::Pseudonym,
            NotificationPrivacy::FullPreview => Self::FullPreview,
        }
    }
}

/// Where a message stands, as the core records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageStatus {
    /// Stored locally; not yet accepted by the relay.
    Sending,
    /// Accepted by the relay.
    Sent,
    Delivered,
    Read,
    /// Could not be sent (recipient gone); shown as failed.
    Failed,
    /// An incoming message.
    Received,
}

impl From<core::MessageStatus> for MessageStatus {
    fn from(s: core::MessageStatus) -> Self {
        match s {
            core::MessageStatus::Sending => Self::Sending,
            core::MessageStatus::Sent => Self::Sent,
            core::MessageStatus::Delivered => Self::Delivered,
            core::MessageStatus::Read => Self::Read,
            core::MessageStatus::Failed => Self::Failed,
            core::MessageStatus::Received => Self::Received,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Notification {
    pub title: String,
    pub body: String,
    pub message_row: i64,
}

impl From<core::Notification> for Notification {
    fn from(n: core::Notification) -> Self {
        Self {
            title: n.title,
            body: n.body,
            message_row: n.message_row,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    pub received: u32,
    pub failed: u32,
    pub more: bool,
    pub sent: u32,
    pub notifications: Vec<Notification>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Message {
    pub row: i64,
    pub conversation_id: ConversationId,
    /// The author's account id; `None` for our own messages.
    pub sender: Option<String>,
    pub outgoing: bool,
    pub body: String,
    pub sent_at: u64,
    pub status: MessageStatus,
}

impl From<core::Message> for Message {
    fn from(m: core::Message) -> Self {
        Self {
            row: m.id,
            conversation_id: m.conversation.get(),
            sender: m.sender,
            outgoing: m.outgoing,
            body: m.body,
            sent_at: m.sent_at,
            status: m.status.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Conversation {
    pub id: ConversationId,
    /// The other members' account ids (one for a direct conversation).
    pub members: Vec<String>,
    pub display_name: Option<String>,
}

impl From<core::Conversation> for Conversation {
    fn from(c: core::Conversation) -> Self {
        Self {
            id: c.id.get(),
            members: c.members,
            display_name: c.display_name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SafetyNumber {
    pub display: String,
    pub scannable: Vec<u8>,
}

/// Where the relay sends this device's content-free wake-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PushKind {
    /// `token` is the distributor's endpoint URL.
    UnifiedPush,
    /// `token` is the APNs device token (hex).
    Apns,
    /// `token` is the FCM registration token.
    Fcm,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_status_maps_each_core_state() {
        use alcove_core::MessageStatus as S;
        let all = [
            S::Sending,
            S::Sent,
            S::Delivered,
            S::Read,
            S::Failed,
            S::Received,
        ];
        let mapped: Vec<MessageStatus> = all.into_iter().map(Into::into).collect();
        assert_eq!(
            mapped,
            [
                MessageStatus::Sending,
                MessageStatus::Sent,
                MessageStatus::Delivered,
                MessageStatus::Read,
                MessageStatus::Failed,
                MessageStatus::Received,
            ]
        );
    }
}
