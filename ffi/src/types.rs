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
    pub kind: MessageKind,
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
            kind: match m.kind {
                core::MessageKind::Text => MessageKind::Text,
                core::MessageKind::Notice => MessageKind::Notice,
                core::MessageKind::Reminder => MessageKind::Reminder,
                core::MessageKind::AppointmentUpdate => MessageKind::AppointmentUpdate,
                core::MessageKind::ReminderReply => MessageKind::ReminderReply,
            },
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

/// Open on `weekday` (1 = Monday .. 7 = Sunday) from `start_minute` to
/// `end_minute` after local midnight, in the profile's time zone.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OfficeHours {
    pub weekday: u32,
    pub start_minute: u32,
    pub end_minute: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AwayPeriod {
    pub start_ms: u64,
    pub end_ms: u64,
    pub covering_contact: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TextingPolicy {
    pub version: u32,
    pub text: String,
}

/// What a therapist publishes, end to end, to their clients.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PracticeProfile {
    pub display_name: String,
    pub practice_name: String,
    /// IANA time zone of the office hours ("America/New_York").
    pub time_zone: String,
    pub hours: Vec<OfficeHours>,
    pub away: Vec<AwayPeriod>,
    pub response_time_hours: u32,
    pub crisis_resources: String,
    pub policy: Option<TextingPolicy>,
    /// What a client's phone shows at the Pseudonym notification level.
    pub notification_label: String,
    /// Messages older than this many days are deleted on clients' phones
    /// (0: no policy).
    #[uniffi(default = 0)]
    pub retention_days: u32,
}

impl From<PracticeProfile> for core::practice::PracticeProfile {
    fn from(p: PracticeProfile) -> Self {
        Self {
            revision: 0,
            display_name: p.display_name,
            practice_name: p.practice_name,
            time_zone: p.time_zone,
            hours: p
                .hours
                .into_iter()
                .map(|h| core::practice::OfficeHours {
                    weekday: h.weekday,
                    start_minute: h.start_minute,
                    end_minute: h.end_minute,
                })
                .collect(),
            away: p
                .away
                .into_iter()
                .map(|a| core::practice::AwayPeriod {
                    start_ms: a.start_ms,
                    end_ms: a.end_ms,
                    covering_contact: a.covering_contact.unwrap_or_default(),
                })
                .collect(),
            response_time_hours: p.response_time_hours,
            crisis_resources: p.crisis_resources,
            policy: p.policy.map(|x| core::practice::TextingPolicy {
                version: x.version,
                text: x.text,
            }),
            notification_label: p.notification_label,
            retention_days: p.retention_days,
        }
    }
}

impl From<core::practice::PracticeProfile> for PracticeProfile {
    fn from(p: core::practice::PracticeProfile) -> Self {
        Self {
            display_name: p.display_name,
            practice_name: p.practice_name,
            time_zone: p.time_zone,
            hours: p
                .hours
                .into_iter()
                .map(|h| OfficeHours {
                    weekday: h.weekday,
                    start_minute: h.start_minute,
                    end_minute: h.end_minute,
                })
                .collect(),
            away: p
                .away
                .into_iter()
                .map(|a| AwayPeriod {
                    start_ms: a.start_ms,
                    end_ms: a.end_ms,
                    covering_contact: (!a.covering_contact.is_empty())
                        .then_some(a.covering_contact),
                })
                .collect(),
            response_time_hours: p.response_time_hours,
            crisis_resources: p.crisis_resources,
            policy: p.policy.map(|x| TextingPolicy {
                version: x.version,
                text: x.text,
            }),
            notification_label: p.notification_label,
            retention_days: p.retention_days,
        }
    }
}

/// Whether the therapist is available now, decided offline from the
/// published profile.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Availability {
    Open,
    Closed {
        next_open_ms: Option<u64>,
    },
    Away {
        until_ms: u64,
        covering_contact: Option<String>,
    },
}

impl From<core::practice::hours::Availability> for Availability {
    fn from(a: core::practice::hours::Availability) -> Self {
        use core::practice::hours::Availability as A;
        match a {
            A::Open => Self::Open,
            A::Closed { next_open_ms } => Self::Closed { next_open_ms },
            A::Away {
                until_ms,
                covering_contact,
            } => Self::Away {
                until_ms,
                covering_contact,
            },
        }
    }
}

/// One recorded acceptance of a texting policy.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Consent {
    pub account: String,
    pub policy_version: u32,
    pub accepted_at: u64,
}

/// What a message row is: a text, a notice this device wrote into the
/// conversation (the out-of-hours notice), an appointment reminder (show
/// `reminder(row)`'s buttons), the outcome of a reminder reply, or our own
/// reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageKind {
    Text,
    Notice,
    Reminder,
    AppointmentUpdate,
    ReminderReply,
}
