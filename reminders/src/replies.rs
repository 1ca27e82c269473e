//! Replies in. The core keeps every quick reply and typed message from a
//! client in the bot's durable inbox; here each is applied to its
//! appointment and marked done in one transaction with the
//! acknowledgement to the client and the outcome forwarded to the
//! therapist. The same answer again changes nothing; an answer to an
//! appointment already cancelled is refused (and the client told so);
//! anything from an account with no appointment here is dropped unanswered.

use alcove_core::proto::content::AppointmentStatus;
use alcove_core::reminders::{BotTx, InboxItem, ReminderChoice};
use alcove_core::Account;

use crate::appointments::zone;
use crate::error::BotError;
use crate::schedule::when_text;
use crate::store::{self, Appointment, ReminderState};

/// Inbox items handled per transaction.
const BATCH: u32 = 200;

/// What the inbox held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RepliesReport {
    pub applied: u32,
    /// The same answer as before: nothing changed.
    pub repeated: u32,
    /// Refused: the appointment was cancelled or has started.
    pub refused: u32,
    /// From an account with no such appointment: dropped.
    pub unknown: u32,
    /// Typed messages the bot could not read (answered with how to reply).
    pub not_understood: u32,
}

/// A typed answer: "C", "yes", "cancel", "R" ... (case and a trailing
/// full stop or exclamation mark ignored).
pub fn typed_choice(body: &str) -> Option<ReminderChoice> {
    let w = body
        .trim()
        .trim_end_matches(['.', '!'])
        .trim()
        .to_lowercase();
    match w.as_str() {
        "c" | "confirm" | "confirmed" | "yes" | "y" | "ok" | "okay" => {
            Some(ReminderChoice::Confirm)
        }
        "x" | "cancel" | "no" | "n" => Some(ReminderChoice::Cancel),
        "r" | "reschedule" => Some(ReminderChoice::Reschedule),
        _ => None,
    }
}

const HOW_TO_REPLY: &str = "Sorry, I only read answers to a reminder: C to confirm, X to cancel, R to ask to reschedule. For anything else, please write to your therapist.";

/// Handles everything in the inbox.
pub fn handle_inbox(account: &mut Account, now: i64) -> Result<RepliesReport, BotError> {
    let mut report = RepliesReport::default();
    loop {
        let items = account.bot_inbox(BATCH)?;
        if items.is_empty() {
            break;
        }
        account.bot_transaction(|tx| {
            for item in &items {
                handle(tx, item, now, &mut report)?;
                tx.inbox_done(item.id())?;
            }
            Ok::<_, BotError>(())
        })?;
    }
    if report != RepliesReport::default() {
        tracing::info!(
            applied = report.applied,
            repeated = report.repeated,
            refused = report.refused,
            unknown = report.unknown,
            not_understood = report.not_understood,
            "replies handled"
        );
    }
    Ok(report)
}

fn handle(
    tx: &BotTx<'_>,
    item: &InboxItem,
    now: i64,
    report: &mut RepliesReport,
) -> Result<(), BotError> {
    match item {
        InboxItem::Reply {
            from,
            appointment_ref,
            choice,
            ..
        } => match store::by_ref(tx.conn(), appointment_ref)?.filter(|a| &a.client == from) {
            Some(a) => answer(tx, &a, *choice, now, report),
            None => {
                report.unknown += 1;
                Ok(())
            }
        },
        InboxItem::Text { from, body, .. } => {
            let known = tx
                .conn()
                .query_row(
                    "SELECT 1 FROM bot_appointments WHERE client = ?1 LIMIT 1",
                    [from],
                    |_| Ok(()),
                )
                .is_ok();
            if !known {
                report.unknown += 1;
                return Ok(());
            }
            let next = store::next_for_client(tx.conn(), from, now)?;
            match (typed_choice(body), next) {
                (Some(choice), Some(a)) => answer(tx, &a, choice, now, report),
                _ => {
                    report.not_understood += 1;
                    tx.queue_text(from, HOW_TO_REPLY)?;
                    Ok(())
                }
            }
        }
    }
}

fn answer(
    tx: &BotTx<'_>,
    a: &Appointment,
    choice: ReminderChoice,
    now: i64,
    report: &mut RepliesReport,
) -> Result<(), BotError> {
    let wire = choice.to_wire() as i32;
    if a.reply == Some(wire) {
        report.repeated += 1;
        return Ok(());
    }
    let tz = zone(a);
    let when = when_text(a.starts_at, tz);
    let status = |accepted: bool, client_account: &str, text: String| AppointmentStatus {
        appointment_ref: a.appointment_ref.clone(),
        starts_at_ms: a.starts_at.max(1) as u64,
        time_zone: a.time_zone.clone(),
        choice: wire,
        accepted,
        client_account: client_account.to_owned(),
        text,
    };
    if a.cancelled || a.starts_at <= now {
        report.refused += 1;
        let why = if a.cancelled {
            format!("Your appointment on {when} was already cancelled. Please contact the practice to book another.")
        } else {
            format!("Your appointment on {when} has already started.")
        };
        tx.queue_status(&a.client, status(false, "", why))?;
        return Ok(());
    }
    store::set_reply(tx.conn(), a.id, wire, now)?;
    if choice == ReminderChoice::Cancel {
        store::set_cancelled(tx.conn(), a.id, now)?;
        store::close_pending(tx.conn(), a.id, ReminderState::Cancelled, now)?;
    }
    let (to_client, to_therapist) = match choice {
        ReminderChoice::Confirm => (
            format!("Thank you. Your appointment on {when} is confirmed."),
            format!("Reminder reply: confirmed, appointment on {when}."),
        ),
        ReminderChoice::Cancel => (
            format!("Your appointment on {when} is cancelled. The practice has been told."),
            format!("Reminder reply: cancelled, appointment on {when}."),
        ),
        ReminderChoice::Reschedule => (
            format!("Your request for another time for your appointment on {when} was passed to the practice."),
            format!("Reminder reply: asks to reschedule the appointment on {when}."),
        ),
    };
    tx.queue_status(&a.client, status(true, "", to_client))?;
    if let Some(t) = &a.therapist {
        tx.queue_status(t, status(true, &a.client, to_therapist))?;
    }
    report.applied += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_answers_are_read() {
        for (t, c) in [
            ("C", Some(ReminderChoice::Confirm)),
            (" yes! ", Some(ReminderChoice::Confirm)),
            ("Confirm.", Some(ReminderChoice::Confirm)),
            ("x", Some(ReminderChoice::Cancel)),
            ("CANCEL", Some(ReminderChoice::Cancel)),
            ("r", Some(ReminderChoice::Reschedule)),
            ("Reschedule", Some(ReminderChoice::Reschedule)),
            ("can we talk", None),
            ("", None),
            ("cc", None),
        ] {
            assert_eq!(typed_choice(t), c, "{t:?}");
        }
    }
}
