//! Appointment reminders for the shells: the buttons of a reminder
//! message, answering them, and (on a therapist's phone) introducing the
//! practice's bot. The rules live in `alcove_core::reminders`.

use alcove_core as core;
use core::reminders::ReminderState as CoreState;

use crate::client::{guard, guard_async, AlcoveClient};
use crate::errors::Result;
use crate::types::ConversationId;

/// A quick reply: what a reminder's buttons say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ReminderChoice {
    Confirm,
    Cancel,
    Reschedule,
}

impl From<core::reminders::ReminderChoice> for ReminderChoice {
    fn from(c: core::reminders::ReminderChoice) -> Self {
        use core::reminders::ReminderChoice as C;
        match c {
            C::Confirm => Self::Confirm,
            C::Cancel => Self::Cancel,
            C::Reschedule => Self::Reschedule,
        }
    }
}

impl From<ReminderChoice> for core::reminders::ReminderChoice {
    fn from(c: ReminderChoice) -> Self {
        match c {
            ReminderChoice::Confirm => Self::Confirm,
            ReminderChoice::Cancel => Self::Cancel,
            ReminderChoice::Reschedule => Self::Reschedule,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AppointmentState {
    Upcoming,
    Moved,
    Cancelled,
}

/// A reminder message's appointment and buttons.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Reminder {
    pub message_row: i64,
    pub conversation_id: ConversationId,
    pub starts_at_ms: u64,
    /// IANA zone the time is shown in.
    pub time_zone: String,
    pub state: AppointmentState,
    /// The buttons to show (none once cancelled or started).
    pub choices: Vec<ReminderChoice>,
    /// Our last answer.
    pub reply: Option<ReminderChoice>,
    /// The bot's acknowledgement of our last answer.
    pub acknowledged: Option<ReminderChoice>,
    /// Whether the acknowledged answer was accepted.
    pub accepted: bool,
}

/// A bot whose reminders are trusted.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TrustedBot {
    pub account: String,
    pub introduced_by: String,
}

#[uniffi::export(async_runtime = "tokio")]
impl AlcoveClient {
    /// The reminder in message `message_row`, or `None` if it is none.
    pub fn reminder(&self, message_row: i64) -> Result<Option<Reminder>> {
        guard(|| {
            let view = self.inner.with_account(|a| a.reminder(message_row))?;
            Ok(view.map(|v| Reminder {
                message_row: v.message_row,
                conversation_id: v.conversation.get(),
                starts_at_ms: v.starts_at_ms,
                time_zone: v.time_zone,
                state: match v.state {
                    CoreState::Upcoming => AppointmentState::Upcoming,
                    CoreState::Moved => AppointmentState::Moved,
                    CoreState::Cancelled => AppointmentState::Cancelled,
                },
                choices: v.choices.into_iter().map(Into::into).collect(),
                reply: v.reply.map(Into::into),
                acknowledged: v.acknowledged.map(|(c, _)| c.into()),
                accepted: v.acknowledged.is_some_and(|(_, ok)| ok),
            }))
        })
    }

    /// Answers a reminder (a button tap). Returns the row of our stored
    /// reply, or `None` when that was already our answer (nothing is sent
    /// again). Not offered, cancelled or started: `InvalidArgument`.
    pub async fn reply_to_reminder(
        &self,
        message_row: i64,
        choice: ReminderChoice,
    ) -> Result<Option<i64>> {
        guard_async(async {
            Ok(self
                .inner
                .reply_to_reminder(message_row, choice.into())
                .await?
                .map(|r| r.message_row))
        })
        .await
    }

    /// For a therapist: introduces the practice's reminder bot (account id
    /// and identity key as `alcove bot identity` prints them) to every
    /// client, now and as they join.
    pub fn introduce_bot(&self, bot_account: String, identity_key: Vec<u8>) -> Result<()> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.introduce_bot(&bot_account, &identity_key))?)
        })
    }

    /// The bots whose reminders this account takes.
    pub fn trusted_bots(&self) -> Result<Vec<TrustedBot>> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.trusted_bots())?
                .into_iter()
                .map(|b| TrustedBot {
                    account: b.account,
                    introduced_by: b.introduced_by,
                })
                .collect())
        })
    }
}
