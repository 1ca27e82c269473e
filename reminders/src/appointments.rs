//! Appointments in: from the practice's feed or the command line, each
//! reconciled with what the bot already holds. New ones get a reminder per
//! configured offset; a moved one moves its reminders (and, if a reminder
//! already went for the old time, the client hears of the move at once);
//! a cancelled or vanished one cancels them (and tells the client if a
//! reminder already went). The same input twice changes nothing.

use std::collections::HashSet;

use alcove_core::proto::content::{reminder::State, Reminder};
use alcove_core::reminders::{BotTx, ReminderChoice};
use alcove_core::Account;
use chrono_tz::Tz;
use rand::RngCore;

use crate::error::BotError;
use crate::store::{self, Appointment, NewRow, ReminderState};
use crate::{schedule, BotConfig, Mapping};

/// What a source says about one appointment now.
#[derive(Clone)]
pub struct Incoming {
    pub uid: String,
    pub occurrence: i64,
    pub client: String,
    pub therapist: Option<String>,
    pub starts_at: i64,
    pub time_zone: Tz,
    pub cancelled: bool,
    /// "feed" or "cli": only feed appointments are cancelled by vanishing
    /// from the feed.
    pub source: &'static str,
}

/// What reconciling one appointment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Moved,
    Cancelled,
    Unchanged,
}

/// Counts of one feed import.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub added: u32,
    pub moved: u32,
    pub cancelled: u32,
    pub unchanged: u32,
    /// Events the feed parser skipped (bad zone, bad recurrence, ...).
    pub skipped: u32,
    /// Events with no attendee the mapping knows.
    pub unmapped: u32,
}

impl ImportReport {
    fn count(&mut self, c: Change) {
        match c {
            Change::Added => self.added += 1,
            Change::Moved => self.moved += 1,
            Change::Cancelled => self.cancelled += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

fn new_ref() -> String {
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The content a client gets for `a` in `state`.
pub(crate) fn reminder_for(a: &Appointment, state: State, text: String) -> Reminder {
    Reminder {
        appointment_ref: a.appointment_ref.clone(),
        starts_at_ms: a.starts_at.max(1) as u64,
        time_zone: a.time_zone.clone(),
        state: state as i32,
        text,
        choices: if state == State::Cancelled {
            Vec::new()
        } else {
            ReminderChoice::ALL
                .iter()
                .map(|c| c.to_wire() as i32)
                .collect()
        },
    }
}

pub(crate) fn zone(a: &Appointment) -> Tz {
    a.time_zone.parse().unwrap_or(Tz::UTC)
}

/// A reminder row per offset, due by the schedule's rules; those already
/// due when scheduled are `superseded` if `superseded_by_notice` (the
/// client just got a moved notice with the same buttons), else left for
/// `tick` (the latest of them goes, late, once).
fn schedule_reminders(
    tx: &BotTx<'_>,
    cfg: &BotConfig,
    id: i64,
    starts_at: i64,
    tz: Tz,
    now: i64,
    superseded_by_notice: bool,
) -> Result<(), BotError> {
    for offset in &cfg.offsets {
        let due = schedule::due_at(starts_at, tz, offset, cfg.quiet_hours.as_ref());
        let state = if superseded_by_notice && due <= now {
            ReminderState::Superseded
        } else {
            ReminderState::Pending
        };
        store::set_reminder(tx.conn(), id, &offset.to_string(), due, state, now)?;
    }
    Ok(())
}

/// Cancels `a`: its pending reminders go, and the client is told if a
/// reminder already reached them.
pub(crate) fn cancel(
    tx: &BotTx<'_>,
    cfg: &BotConfig,
    a: &Appointment,
    now: i64,
) -> Result<(), BotError> {
    let told = store::notified(tx.conn(), a.id)?;
    store::set_cancelled(tx.conn(), a.id, now)?;
    store::close_pending(tx.conn(), a.id, ReminderState::Cancelled, now)?;
    if told && a.starts_at > now {
        let text = schedule::cancelled_text(a.starts_at, zone(a), cfg.practice_name.as_deref());
        tx.queue_reminder(&a.client, reminder_for(a, State::Cancelled, text))?;
    }
    Ok(())
}

/// Brings the bot's copy of one appointment in line with `inc`.
pub fn apply(
    tx: &BotTx<'_>,
    cfg: &BotConfig,
    inc: &Incoming,
    now: i64,
) -> Result<Change, BotError> {
    alcove_core::validate_account_id(&inc.client)
        .map_err(|_| BotError::Invalid("client account".into()))?;
    let tz_name = inc.time_zone.name();
    let Some(old) = store::by_key(tx.conn(), &inc.uid, inc.occurrence)? else {
        let id = store::insert(
            tx.conn(),
            &NewRow {
                uid: &inc.uid,
                occurrence: inc.occurrence,
                appointment_ref: &new_ref(),
                client: &inc.client,
                therapist: inc.therapist.as_deref(),
                starts_at: inc.starts_at,
                time_zone: tz_name,
                cancelled: inc.cancelled,
                source: inc.source,
            },
            now,
        )?;
        if inc.cancelled {
            return Ok(Change::Unchanged);
        }
        schedule_reminders(tx, cfg, id, inc.starts_at, inc.time_zone, now, false)?;
        return Ok(Change::Added);
    };
    let same = old.starts_at == inc.starts_at
        && old.cancelled == inc.cancelled
        && old.time_zone == tz_name
        && old.client == inc.client
        && old.therapist == inc.therapist;
    if same {
        return Ok(Change::Unchanged);
    }
    if inc.cancelled {
        if old.cancelled {
            return Ok(Change::Unchanged);
        }
        cancel(tx, cfg, &old, now)?;
        return Ok(Change::Cancelled);
    }
    // Moved (or back from cancelled, or for someone else): reminders are
    // scheduled afresh for the new time; a client who already heard of
    // the old time hears of the move now, with the buttons.
    let told = !old.cancelled && old.client == inc.client && store::notified(tx.conn(), old.id)?;
    store::update(
        tx.conn(),
        old.id,
        &NewRow {
            uid: &old.uid,
            occurrence: old.occurrence,
            appointment_ref: &old.appointment_ref,
            client: &inc.client,
            therapist: inc.therapist.as_deref(),
            starts_at: inc.starts_at,
            time_zone: tz_name,
            cancelled: false,
            source: inc.source,
        },
        now,
    )?;
    if old.starts_at != inc.starts_at {
        // An answer was about the old time.
        tx.conn().execute(
            "UPDATE bot_appointments SET reply = NULL, replied_at = NULL WHERE id = ?1",
            [old.id],
        )?;
    }
    let moved = told && old.starts_at != inc.starts_at;
    if moved {
        let updated = store::by_id(tx.conn(), old.id)?.ok_or(BotError::Invalid("gone".into()))?;
        let text = schedule::moved_text(
            old.starts_at,
            inc.starts_at,
            inc.time_zone,
            cfg.practice_name.as_deref(),
        );
        tx.queue_reminder(&inc.client, reminder_for(&updated, State::Moved, text))?;
        store::set_notified(tx.conn(), old.id)?;
    }
    schedule_reminders(tx, cfg, old.id, inc.starts_at, inc.time_zone, now, moved)?;
    Ok(if old.starts_at != inc.starts_at || old.cancelled {
        Change::Moved
    } else {
        Change::Unchanged
    })
}

/// Imports the practice's feed (`text`, iCalendar): appointments from now
/// to the horizon are reconciled; feed appointments in that window the
/// feed no longer lists are cancelled. One transaction: an import that
/// fails halfway changes nothing.
pub fn import_feed(
    account: &mut Account,
    cfg: &BotConfig,
    mapping: &Mapping,
    text: &str,
    now: i64,
) -> Result<ImportReport, BotError> {
    let to = now + i64::from(cfg.horizon_days) * 86_400_000;
    let parsed = crate::parse_feed(text, now, to)?;
    let mut report = ImportReport {
        skipped: parsed.skipped.len() as u32,
        ..Default::default()
    };
    account.bot_transaction(|tx| {
        let mut seen: HashSet<(String, i64)> = HashSet::new();
        for f in &parsed.appointments {
            let Some(who) = f.attendees.iter().find_map(|uri| mapping.resolve(uri)) else {
                report.unmapped += 1;
                continue;
            };
            let therapist = f
                .organizer
                .as_deref()
                .and_then(|o| mapping.resolve(o))
                .map(|r| r.account);
            let time_zone = who
                .time_zone
                .or_else(|| f.time_zone.as_deref().and_then(|z| z.parse().ok()))
                .unwrap_or(cfg.default_time_zone);
            seen.insert((f.uid.clone(), f.occurrence));
            let change = apply(
                tx,
                cfg,
                &Incoming {
                    uid: f.uid.clone(),
                    occurrence: f.occurrence,
                    client: who.account,
                    therapist,
                    starts_at: f.starts_at_ms,
                    time_zone,
                    cancelled: f.cancelled,
                    source: "feed",
                },
                now,
            )?;
            report.count(change);
        }
        for gone in store::upcoming_from_feed(tx.conn(), now, to)? {
            if !seen.contains(&(gone.uid.clone(), gone.occurrence)) {
                cancel(tx, cfg, &gone, now)?;
                report.cancelled += 1;
            }
        }
        Ok::<_, BotError>(())
    })?;
    tracing::info!(
        added = report.added,
        moved = report.moved,
        cancelled = report.cancelled,
        unchanged = report.unchanged,
        skipped = report.skipped,
        unmapped = report.unmapped,
        "feed imported"
    );
    Ok(report)
}

/// Adds (or moves) an appointment from the command line under `id`.
pub fn add(
    account: &mut Account,
    cfg: &BotConfig,
    inc: Incoming,
    now: i64,
) -> Result<Change, BotError> {
    account.bot_transaction(|tx| apply(tx, cfg, &inc, now))
}

/// Cancels the appointment `uid` (a CLI id, or a feed UID with its
/// occurrence). `Invalid` when there is none.
pub fn cancel_by_id(
    account: &mut Account,
    cfg: &BotConfig,
    uid: &str,
    occurrence: i64,
    now: i64,
) -> Result<Change, BotError> {
    account.bot_transaction(|tx| {
        let a = store::by_key(tx.conn(), uid, occurrence)?
            .ok_or_else(|| BotError::Invalid("no such appointment".into()))?;
        if a.cancelled {
            return Ok(Change::Unchanged);
        }
        cancel(tx, cfg, &a, now)?;
        Ok(Change::Cancelled)
    })
}
