//! Answering a reminder from the app's buttons: the reply is stored and
//! queued like a text, then the outbox is tried.

use super::{Client, SendReport};
use crate::error::{Error, Result};
use crate::reminders::ReminderChoice;

impl Client {
    /// Answers the reminder in message `message_row`. `None`: that was
    /// already our answer, and nothing was sent again. A relay that cannot
    /// be reached is not an error: the reply waits in the outbox.
    pub async fn reply_to_reminder(
        &self,
        message_row: i64,
        choice: ReminderChoice,
    ) -> Result<Option<SendReport>> {
        self.wiping_if_revoked(self.reply_to_reminder_unguarded(message_row, choice).await)
    }

    async fn reply_to_reminder_unguarded(
        &self,
        message_row: i64,
        choice: ReminderChoice,
    ) -> Result<Option<SendReport>> {
        let Some(row) = self.with_account(|a| a.compose_reminder_reply(message_row, choice))?
        else {
            return Ok(None);
        };
        let flushed = self.flush_outbox(None).await;
        let _ = self.account(|a| a.release_lease());
        let sent = match flushed {
            Ok(_) => self.is_sent(row)?,
            Err(Error::Network(_)) => false,
            Err(e) => return Err(e),
        };
        Ok(Some(SendReport {
            message_row: row,
            sent,
        }))
    }
}
