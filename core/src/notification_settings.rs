//! What notifications may show: the account's notification privacy and
//! per-conversation labels, kept in the encrypted database.

use rusqlite::{params, OptionalExtension};

use crate::account::{validate_account_id, Account};
use crate::error::Result;

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
    pub fn set_notification_label(&mut self, remote_account: &str, label: &str) -> Result<()> {
        validate_account_id(remote_account)?;
        let id = crate::conversations::get_or_create(&self.conn, remote_account, self.now())?;
        self.conn.execute(
            "UPDATE conversations SET notification_label = ?2 WHERE id = ?1",
            params![id, label],
        )?;
        Ok(())
    }

    pub(crate) fn conversation_labels(
        &self,
        remote_account: &str,
    ) -> Result<(Option<String>, Option<String>)> {
        Ok(self
            .conn
            .query_row(
                "SELECT display_name, notification_label FROM conversations WHERE remote_account = ?1",
                [remote_account],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((None, None)))
    }
}
