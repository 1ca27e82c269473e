//! The one place that decides what each kind of decrypted content does.
//! It runs inside the page's transaction (in the envelope's savepoint)
//! and returns everything the caller needs — what was stored, the events
//! for listeners, what a notification may show — so nothing reads the
//! database again after commit. A new content kind is one arm here and
//! one `on_…` function.

use alcove_proto::content::{content::Body, receipt, Content, Introduction, Receipt, Text};
use rusqlite::Connection;

use crate::conversations::{ConversationId, MessageKind, MessageStatus};
use crate::error::{Error, Result};
use crate::events::SyncEvent;
use crate::store::{self, messages::NewMessage};

use super::open::Sender;
use super::page::PageMemo;
use super::Received;

/// What a notification for a stored text may draw on; rendered at the
/// account's privacy level by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    pub(crate) message_row: i64,
    pub(crate) display_name: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) body: String,
}

/// The dispatcher's answer for one envelope.
pub(crate) struct Dispatched {
    pub(crate) received: Received,
    pub(crate) events: Vec<SyncEvent>,
    pub(crate) notice: Option<Notice>,
}

pub(crate) fn dispatch(
    tx: &Connection,
    memo: &mut PageMemo,
    own_account: &str,
    from: Sender,
    content: Content,
    received_at: u64,
) -> Result<Dispatched> {
    if !content.delivery_key.is_empty() {
        // It decrypted under their session (or their verified
        // certificate): the key is theirs.
        memo.save_delivery_key(tx, &from.account, &content.delivery_key, received_at)?;
    }
    let origin = crate::reminders::Origin {
        account: &from.account,
        device: from.device,
        message_id: &content.message_id,
        sent_at: content.sent_at,
        received_at,
    };
    match content.body {
        Some(Body::Text(text)) => on_text(
            tx,
            memo,
            from,
            &content.message_id,
            content.sent_at,
            text,
            received_at,
        ),
        Some(Body::Receipt(r)) => on_receipt(tx, from, r),
        Some(Body::Introduction(i)) => on_introduction(tx, own_account, from, i, received_at),
        Some(Body::PracticeProfile(p)) => Ok(Dispatched {
            events: crate::practice::on_profile(tx, &from.account, p, received_at)?,
            notice: None,
            received: Received::Control,
        }),
        Some(Body::Consent(c)) => Ok(Dispatched {
            events: crate::practice::on_consent(tx, own_account, &from.account, from.device, c)?,
            notice: None,
            received: Received::Control,
        }),
        Some(Body::BotIntroduction(i)) => {
            crate::reminders::on_bot_introduction(tx, own_account, &from.account, i, received_at)?;
            Ok(Dispatched {
                events: Vec::new(),
                notice: None,
                received: Received::Control,
            })
        }
        Some(Body::Reminder(r)) => {
            let text = Text {
                body: r.text.clone(),
            };
            match crate::reminders::on_reminder(tx, &origin, r)? {
                Some(d) => Ok(d),
                // No bot our therapist introduced: an ordinary text from
                // whoever sent it.
                None => on_text(
                    tx,
                    memo,
                    from,
                    &content.message_id,
                    content.sent_at,
                    text,
                    received_at,
                ),
            }
        }
        Some(Body::ReminderReply(r)) => {
            crate::reminders::on_reply(tx, &from.account, r, received_at)
        }
        Some(Body::RetentionTimer(t)) => Ok(Dispatched {
            events: crate::retention::on_timer(tx, &from.account, t, received_at)?,
            notice: None,
            received: Received::Control,
        }),
        Some(Body::AppointmentStatus(s)) => {
            crate::reminders::on_status(tx, own_account, &origin, s)
        }
        None => Err(Error::UnknownContent),
    }
}

fn on_text(
    tx: &Connection,
    memo: &mut PageMemo,
    from: Sender,
    message_id: &[u8],
    sent_at: u64,
    text: Text,
    received_at: u64,
) -> Result<Dispatched> {
    let conversation = store::conversations::direct(tx, &from.account, received_at)?;
    let message = store::messages::insert(
        tx,
        &NewMessage {
            conversation: conversation.id,
            sender: Some(&from.account),
            message_id,
            sender_device: from.device,
            body: &text.body,
            sent_at,
            received_at,
            status: MessageStatus::Received,
            kind: MessageKind::Text,
        },
    )?;
    // After the insert: a duplicate (refused above) never reaches a bot's
    // inbox twice.
    if memo.bot_mode(tx)? {
        crate::reminders::on_bot_text(tx, &from.account, &text.body, received_at)?;
    }
    Ok(Dispatched {
        events: vec![SyncEvent::MessageReceived {
            conversation: conversation.id,
            message_row: message.id,
        }],
        notice: Some(Notice {
            message_row: message.id,
            display_name: conversation.display_name,
            label: conversation.notification_label,
            body: text.body,
        }),
        received: Received::Text(message),
    })
}

fn on_receipt(tx: &Connection, from: Sender, r: Receipt) -> Result<Dispatched> {
    let kind = match receipt::Kind::try_from(r.kind) {
        Ok(receipt::Kind::Read) => MessageStatus::Read,
        _ => MessageStatus::Delivered,
    };
    // Only our messages in a conversation the sender is in can move: a
    // receipt from a stranger changes nothing.
    let conversation: Option<ConversationId> =
        store::conversations::with_member(tx, &from.account)?;
    let updated = match conversation {
        Some(c) => store::messages::apply_receipt(tx, c, &r.message_ids, kind)?,
        None => 0,
    };
    Ok(Dispatched {
        events: vec![SyncEvent::ReceiptUpdated {
            conversation,
            read: kind == MessageStatus::Read,
            updated: u32::try_from(updated).unwrap_or(u32::MAX),
        }],
        notice: None,
        received: Received::Receipt {
            kind,
            updated,
            conversation,
            sender: from.account,
        },
    })
}

fn on_introduction(
    tx: &Connection,
    own_account: &str,
    from: Sender,
    intro: Introduction,
    received_at: u64,
) -> Result<Dispatched> {
    let name = crate::conversations::types::display_name(&intro.display_name)
        .ok_or(Error::Malformed("introduction display name"))?;
    let conversation = store::conversations::direct(tx, &from.account, received_at)?;
    // A name the therapist already gave this conversation stays theirs.
    if conversation.display_name.is_none() {
        store::conversations::set_display_name(tx, conversation.id, name)?;
    }
    // The new client gets our practice profile (and with it the policy to
    // accept) in the same transaction.
    crate::practice::profile::send_to_new_member(
        tx,
        own_account,
        conversation.id,
        &from.account,
        received_at,
    )?;
    // And the practice's reminder bot, so its reminders are trusted.
    crate::reminders::send_to_new_member(
        tx,
        own_account,
        conversation.id,
        &from.account,
        received_at,
    )?;
    Ok(Dispatched {
        events: vec![SyncEvent::ClientJoined {
            conversation: conversation.id,
        }],
        notice: None,
        received: Received::Introduction {
            conversation: conversation.id,
        },
    })
}
