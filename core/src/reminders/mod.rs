//! Appointment reminders, end to end. A practice's bot is an ordinary
//! Alcove account; what makes its reminders trusted is the therapist's
//! introduction (`trust`): a client's core accepts a `Reminder` only from
//! a bot its therapist introduced, under the identity key it was
//! introduced with; anything else is kept as an ordinary text from an
//! unknown sender. `received` is the client's and therapist's side
//! (reminders with quick-reply buttons, replies, acknowledgements and
//! forwarded outcomes); `bot` is what the bot's engine (the
//! `alcove-reminders` crate) builds on: an inbox of replies and a
//! transaction that queues reminders with the engine's own bookkeeping.

mod bot;
mod received;
mod trust;
mod validate;

pub use crate::store::reminders::{InboxItem, TrustedBot};
pub use alcove_proto::content::{reminder::State as ReminderState, AppointmentStatus, Reminder};
pub use bot::BotTx;
pub use received::ReminderView;

pub(crate) use bot::{bot_mode, on_reply, on_text as on_bot_text};
pub(crate) use received::{on_reminder, on_status, Origin};
pub(crate) use trust::{on_bot_introduction, send_to_new_member};
pub use validate::{MAX_REF_LEN, MAX_REMINDER_TEXT};

use alcove_proto::content::ReminderChoice as WireChoice;

/// A quick reply to a reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReminderChoice {
    Confirm,
    Cancel,
    /// Ask the practice for another time.
    Reschedule,
}

impl ReminderChoice {
    pub const ALL: [ReminderChoice; 3] = [Self::Confirm, Self::Cancel, Self::Reschedule];

    pub(crate) fn from_i32(v: i32) -> Option<Self> {
        match WireChoice::try_from(v).ok()? {
            WireChoice::Confirm => Some(Self::Confirm),
            WireChoice::Cancel => Some(Self::Cancel),
            WireChoice::Reschedule => Some(Self::Reschedule),
            WireChoice::Unspecified => None,
        }
    }

    pub fn to_wire(self) -> WireChoice {
        match self {
            Self::Confirm => WireChoice::Confirm,
            Self::Cancel => WireChoice::Cancel,
            Self::Reschedule => WireChoice::Reschedule,
        }
    }

    pub(crate) fn as_i32(self) -> i32 {
        self.to_wire() as i32
    }

    /// What the button and the client's own copy of the reply say.
    pub fn label(self) -> &'static str {
        match self {
            Self::Confirm => "Confirm",
            Self::Cancel => "Cancel",
            Self::Reschedule => "Ask to reschedule",
        }
    }

    fn bit(self) -> u32 {
        1 << (self.as_i32() as u32)
    }

    pub(crate) fn mask(choices: &[ReminderChoice]) -> u32 {
        choices.iter().fold(0, |m, c| m | c.bit())
    }

    pub(crate) fn from_mask(mask: u32) -> Vec<ReminderChoice> {
        Self::ALL
            .into_iter()
            .filter(|c| mask & c.bit() != 0)
            .collect()
    }
}
