//! Reminders out. `tick(now)` sends what is due, by the schedule's rules:
//! a reminder is marked sent in the same transaction that queues it in
//! the core's outbox, so across a crash, a restart, a clock jump (either
//! way) or a relay outage none is sent twice and none is lost (the outbox
//! delivers it once the relay answers; the relay drops a retried GUID).
//! When several reminders of one appointment are due at once (the bot was
//! down, or the clock jumped forward), only the latest goes; one whose
//! appointment has started is skipped, since a reminder after the fact
//! helps no one and can alarm.

use std::collections::BTreeMap;

use alcove_core::proto::content::reminder::State;
use alcove_core::Account;

use crate::appointments::{reminder_for, zone};
use crate::error::BotError;
use crate::schedule::{self, LateAction};
use crate::store::{self, ReminderState};
use crate::BotConfig;

/// Reminders handled per transaction.
const BATCH: u32 = 500;

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub sent: u32,
    pub skipped: u32,
    pub superseded: u32,
    /// Due, but inside quiet hours: moved to when they end.
    pub deferred: u32,
}

/// Sends every reminder due at `now`.
pub fn tick(account: &mut Account, cfg: &BotConfig, now: i64) -> Result<TickReport, BotError> {
    let mut report = TickReport::default();
    loop {
        let progressed = account.bot_transaction(|tx| {
            let due = store::due(tx.conn(), now, BATCH)?;
            if due.is_empty() {
                return Ok::<_, BotError>(false);
            }
            // Latest due reminder per appointment; the rest are superseded.
            let mut latest: BTreeMap<i64, store::ReminderRow> = BTreeMap::new();
            for r in due {
                if let Some(prev) = latest.insert(r.appointment_id, r) {
                    store::set_reminder(
                        tx.conn(),
                        prev.appointment_id,
                        &prev.offset,
                        prev.due_at,
                        ReminderState::Superseded,
                        now,
                    )?;
                    report.superseded += 1;
                }
            }
            for (id, r) in latest {
                let a = store::by_id(tx.conn(), id)?
                    .ok_or_else(|| BotError::Database("reminder without appointment".into()))?;
                if a.cancelled {
                    store::close_pending(tx.conn(), id, ReminderState::Cancelled, now)?;
                    continue;
                }
                let tz = zone(&a);
                match schedule::late_action(now, a.starts_at, tz, cfg.quiet_hours.as_ref()) {
                    LateAction::SendNow => {
                        let text =
                            schedule::reminder_text(a.starts_at, tz, cfg.practice_name.as_deref());
                        tx.queue_reminder(&a.client, reminder_for(&a, State::Upcoming, text))?;
                        store::set_notified(tx.conn(), id)?;
                        store::set_reminder(
                            tx.conn(),
                            id,
                            &r.offset,
                            r.due_at,
                            ReminderState::Sent,
                            now,
                        )?;
                        report.sent += 1;
                    }
                    LateAction::WaitUntil(t) => {
                        store::set_reminder(
                            tx.conn(),
                            id,
                            &r.offset,
                            t.max(now + 1),
                            ReminderState::Pending,
                            now,
                        )?;
                        report.deferred += 1;
                    }
                    LateAction::Skip => {
                        store::set_reminder(
                            tx.conn(),
                            id,
                            &r.offset,
                            r.due_at,
                            ReminderState::Skipped,
                            now,
                        )?;
                        report.skipped += 1;
                    }
                }
            }
            Ok(true)
        })?;
        if !progressed {
            break;
        }
    }
    if report != TickReport::default() {
        tracing::info!(
            sent = report.sent,
            skipped = report.skipped,
            superseded = report.superseded,
            deferred = report.deferred,
            "reminders due"
        );
    }
    Ok(report)
}

/// When the next reminder is due, if any.
pub fn next_due(account: &Account) -> Result<Option<i64>, BotError> {
    store::next_due(account.connection())
}
