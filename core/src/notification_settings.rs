//! What notifications may show: the account's notification privacy and
//! per-conversation labels, kept in the encrypted database.

use crate::account::Account;
use crate::conversations::ConversationId;
use crate::error::Result;
use crate::store;

/// What a notification may show on the lock screen (the practice decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotificationPrivacy {
    /// "New secure message", nothing else. The default.
    #[default]
    Hidden,
    /// The conversation's label (a pseudonym or initials chosen by the
    /// therapist), no text.
    Pseudonym,
    /// Name and message text (opt-in).
    FullPreview,
}

impl Account {
    pub fn notification_privacy(&self) -> Result<NotificationPrivacy> {
        Ok(match self.setting("notification_privacy")?.as_deref() {
            Some([1]) => NotificationPrivacy::Pseudonym,
            Some([2]) => NotificationPrivacy::FullPreview,
            _ => NotificationPrivacy::Hidden,
        })
    }

    pub fn set_notification_privacy(&mut self, p: NotificationPrivacy) -> Result<()> {
        let v = match p {
            NotificationPrivacy::Hidden => 0u8,
            NotificationPrivacy::Pseudonym => 1,
            NotificationPrivacy::FullPreview => 2,
        };
        self.set_setting("notification_privacy", &[v])
    }

    /// The pseudonym shown for a conversation at `Pseudonym` privacy.
    pub fn set_notification_label(
        &mut self,
        conversation: ConversationId,
        label: &str,
    ) -> Result<()> {
        store::conversations::set_notification_label(&self.conn, conversation, label)
    }
}
