//! Reminders on the phones. A client stores a trusted bot's reminder as a
//! message with quick-reply buttons, answers it (once per choice: a second
//! tap changes nothing) and records the bot's acknowledgement; a therapist
//! stores the outcome the bot forwards in the conversation with that
//! client. A reminder from a bot nobody introduced is none of this: the
//! dispatcher keeps it as an ordinary text from an unknown sender.

use alcove_proto::content::{
    content::Body, reminder::State, AppointmentStatus, Reminder, ReminderReply,
};
use rusqlite::Connection;

use super::{trust::trusted_sender, validate, ReminderChoice};
use crate::account::Account;
use crate::conversations::{ConversationId, Message, MessageKind, MessageStatus};
use crate::error::{Error, Result};
use crate::events::SyncEvent;
use crate::inbound::{Dispatched, Notice, Received};
use crate::store::{self, messages::NewMessage, reminders::AppointmentRow};

/// A reminder message as the app shows it: the appointment, the buttons,
/// what we answered and what the practice's bot made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderView {
    pub message_row: i64,
    pub conversation: ConversationId,
    pub starts_at_ms: u64,
    /// IANA zone the time is shown in.
    pub time_zone: String,
    /// The appointment's state now (a later message may have moved or
    /// cancelled it).
    pub state: State,
    /// The buttons to show; none once the appointment is cancelled or has
    /// started.
    pub choices: Vec<ReminderChoice>,
    /// Our last answer, if any.
    pub reply: Option<ReminderChoice>,
    /// The bot's answer to our last reply: the choice and whether it was
    /// accepted.
    pub acknowledged: Option<(ReminderChoice, bool)>,
}

/// Who sent a content and when: what a stored message records of it.
pub(crate) struct Origin<'a> {
    pub(crate) account: &'a str,
    pub(crate) device: u32,
    pub(crate) message_id: &'a [u8],
    pub(crate) sent_at: u64,
    pub(crate) received_at: u64,
}

/// Stores a reminder from a trusted bot. `None`: the sender is no bot we
/// trust, and the dispatcher keeps it as an ordinary text instead.
pub(crate) fn on_reminder(
    tx: &Connection,
    origin: &Origin<'_>,
    r: Reminder,
) -> Result<Option<Dispatched>> {
    let choices = validate::reminder(&r)?;
    let from = origin.account;
    if trusted_sender(tx, from)?.is_none() {
        return Ok(None);
    }
    let conversation = store::conversations::direct(tx, from, origin.received_at)?;
    let message = insert(tx, conversation.id, origin, &r.text, MessageKind::Reminder)?;
    store::reminders::upsert_appointment(
        tx,
        from,
        &r.appointment_ref,
        &AppointmentRow {
            conversation: conversation.id,
            starts_at: r.starts_at_ms,
            time_zone: r.time_zone.clone(),
            state: r.state,
            reply: None,
            acknowledged: None,
            accepted: None,
        },
    )?;
    let offered = if r.state == State::Cancelled as i32 {
        0
    } else {
        ReminderChoice::mask(&choices)
    };
    store::reminders::link_message(tx, message.id, from, &r.appointment_ref, offered)?;
    Ok(Some(Dispatched {
        events: vec![SyncEvent::ReminderReceived {
            conversation: conversation.id,
            message_row: message.id,
        }],
        notice: Some(Notice {
            message_row: message.id,
            display_name: conversation.display_name,
            label: conversation.notification_label,
            body: r.text,
        }),
        received: Received::Text(message),
    }))
}

/// The bot's word on a reply: on a client, its acknowledgement; on the
/// therapist who introduced the bot, a client's answer (`client_account`
/// set), stored in the conversation with that client.
pub(crate) fn on_status(
    tx: &Connection,
    own_account: &str,
    origin: &Origin<'_>,
    s: AppointmentStatus,
) -> Result<Dispatched> {
    let choice = validate::status(&s)?;
    let (from, now) = (origin.account, origin.received_at);
    let bot = trusted_sender(tx, from)?.ok_or(Error::Malformed("status from an untrusted bot"))?;
    let conversation = if s.client_account.is_empty() {
        if !store::reminders::set_acknowledged(
            tx,
            from,
            &s.appointment_ref,
            choice.as_i32(),
            s.accepted,
        )? {
            return Err(Error::Malformed("status for an unknown appointment"));
        }
        store::conversations::direct(tx, from, now)?
    } else {
        if bot.introduced_by != own_account {
            return Err(Error::Malformed("status from another practice's bot"));
        }
        store::conversations::with_member(tx, &s.client_account)?
            .ok_or(Error::Malformed("status about a stranger"))?;
        store::conversations::direct(tx, &s.client_account, now)?
    };
    let message = insert(
        tx,
        conversation.id,
        origin,
        &s.text,
        MessageKind::AppointmentUpdate,
    )?;
    Ok(Dispatched {
        events: vec![SyncEvent::AppointmentUpdated {
            conversation: conversation.id,
            message_row: message.id,
        }],
        notice: Some(Notice {
            message_row: message.id,
            display_name: conversation.display_name,
            label: conversation.notification_label,
            body: s.text,
        }),
        received: Received::Text(message),
    })
}

fn insert(
    tx: &Connection,
    conversation: ConversationId,
    origin: &Origin<'_>,
    body: &str,
    kind: MessageKind,
) -> Result<Message> {
    store::messages::insert(
        tx,
        &NewMessage {
            conversation,
            sender: Some(origin.account),
            message_id: origin.message_id,
            sender_device: origin.device,
            body,
            sent_at: origin.sent_at,
            received_at: origin.received_at,
            status: MessageStatus::Received,
            kind,
        },
    )
}

impl Account {
    /// The reminder carried by message `message_row`, if it is one.
    pub fn reminder(&self, message_row: i64) -> Result<Option<ReminderView>> {
        let Some((bot, appointment_ref, offered)) =
            store::reminders::message_link(&self.conn, message_row)?
        else {
            return Ok(None);
        };
        let appt = store::reminders::appointment(&self.conn, &bot, &appointment_ref)?
            .ok_or(Error::Corrupt)?;
        let state = State::try_from(appt.state).unwrap_or(State::Upcoming);
        let open = state != State::Cancelled && appt.starts_at > self.now();
        Ok(Some(ReminderView {
            message_row,
            conversation: appt.conversation,
            starts_at_ms: appt.starts_at,
            time_zone: appt.time_zone,
            state,
            choices: if open {
                ReminderChoice::from_mask(offered)
            } else {
                Vec::new()
            },
            reply: appt.reply.and_then(ReminderChoice::from_i32),
            acknowledged: appt
                .acknowledged
                .and_then(ReminderChoice::from_i32)
                .map(|c| (c, appt.accepted.unwrap_or(false))),
        }))
    }

    /// Answers the reminder in message `message_row` with `choice`: kept
    /// as our own message and queued for the bot. `None` when that was
    /// already our answer (a second tap changes nothing). A choice the
    /// reminder does not offer, a cancelled or started appointment, or a
    /// message that is no reminder is an `InvalidArgument`.
    pub fn compose_reminder_reply(
        &mut self,
        message_row: i64,
        choice: ReminderChoice,
    ) -> Result<Option<i64>> {
        let view = self
            .reminder(message_row)?
            .ok_or_else(|| Error::InvalidArgument("not a reminder".into()))?;
        if view.reply == Some(choice) {
            return Ok(None);
        }
        if !view.choices.contains(&choice) {
            return Err(Error::InvalidArgument(
                "that answer is not open for this appointment".into(),
            ));
        }
        let (bot, appointment_ref, _) =
            store::reminders::message_link(&self.conn, message_row)?.ok_or(Error::Corrupt)?;
        let (message_id, sent_at, plaintext) =
            self.new_content(Body::ReminderReply(ReminderReply {
                appointment_ref: appointment_ref.clone(),
                choice: choice.as_i32(),
            }))?;
        let tx = self.write_tx()?;
        store::reminders::set_reply(&tx, &bot, &appointment_ref, choice.as_i32())?;
        let row = store::messages::insert(
            &tx,
            &NewMessage {
                conversation: view.conversation,
                sender: None,
                message_id: &message_id,
                sender_device: self.device_id,
                body: choice.label(),
                sent_at,
                received_at: sent_at,
                status: MessageStatus::Sending,
                kind: MessageKind::ReminderReply,
            },
        )?
        .id;
        store::outbox::push(&tx, view.conversation, &bot, &plaintext, Some(row), sent_at)?;
        tx.commit()?;
        Ok(Some(row))
    }
}
