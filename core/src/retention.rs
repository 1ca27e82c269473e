//! Retention: how long messages stay on this device. A conversation's
//! disappearing-messages timer is set by either side and applied by both
//! (as Signal's); the practice's policy (`retention_days` in the
//! therapist's profile) applies to every conversation with that practice.
//! The shorter of the two wins. `apply_retention` deletes what is older
//! (with SQLCipher's `secure_delete` on, then the WAL truncated, so nothing
//! deleted stays readable in the files); a therapist's device told to keep
//! until exported deletes only what an export covered. Ending a therapy
//! relationship, a client archives and purges a conversation in one step.
//! Every change and every deletion is in the audit log.

use alcove_proto::content::{content::Body, RetentionTimer};
use rusqlite::Connection;

use crate::account::Account;
use crate::audit::{self, AuditEvent};
use crate::conversations::ConversationId;
use crate::error::{Error, Result};
use crate::events::SyncEvent;
use crate::store;

const KEEP_UNTIL_EXPORTED: &str = "keep_until_exported";
/// Longest timer: ten years.
pub const MAX_TIMER_SECONDS: u64 = 10 * 366 * 86_400;

/// A conversation's retention, as the app shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The conversation's timer (0: off).
    pub timer_seconds: u64,
    /// The practice's policy in days (0: none).
    pub policy_days: u32,
    /// What applies: the shorter of the two that are set (0: kept).
    pub effective_seconds: u64,
}

/// The practice policy of a direct conversation's peer, if the peer
/// published a profile.
fn peer_policy_days(conn: &Connection, conversation: ConversationId) -> Result<Option<u32>> {
    let members = store::conversations::members(conn, conversation)?;
    Ok(match members.as_slice() {
        [peer] => store::practice::profile(conn, peer)?.map(|p| p.retention_days),
        _ => None,
    })
}

/// Our own practice policy (a therapist's), 0 without one.
fn own_policy_days(conn: &Connection, own: &str) -> Result<u32> {
    Ok(store::practice::profile(conn, own)?.map_or(0, |p| p.retention_days))
}

fn policy_days(conn: &Connection, own: &str, conversation: ConversationId) -> Result<u32> {
    match peer_policy_days(conn, conversation)? {
        Some(days) => Ok(days),
        None => own_policy_days(conn, own),
    }
}

fn effective(timer: u64, days: u32) -> u64 {
    let policy = u64::from(days) * 86_400;
    match (timer, policy) {
        (0, p) => p,
        (t, 0) => t,
        (t, p) => t.min(p),
    }
}

impl Account {
    /// Sets the conversation's disappearing-messages timer (0: off) here
    /// and, end to end, on the other members' devices.
    pub fn set_retention(&mut self, conversation: ConversationId, seconds: u64) -> Result<()> {
        if seconds > MAX_TIMER_SECONDS {
            return Err(Error::InvalidArgument("retention timer too long".into()));
        }
        let now = self.now();
        let tx = self.write_tx()?;
        let members = store::conversations::members(&tx, conversation)?;
        if members.is_empty() {
            return Err(Error::InvalidArgument("no such conversation".into()));
        }
        store::retention::set_timer(&tx, conversation, seconds)?;
        audit::append(
            &tx,
            Some(&self.identity),
            AuditEvent::RetentionChanged {
                conversation,
                seconds,
            },
            now,
        )?;
        let (_, sent_at, plaintext) = crate::outgoing::new_content_in(
            &tx,
            Body::RetentionTimer(RetentionTimer { seconds }),
            now,
        )?;
        for m in &members {
            store::outbox::push(&tx, conversation, m, &plaintext, None, sent_at)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn retention(&self, conversation: ConversationId) -> Result<Retention> {
        let timer_seconds = store::retention::timer(&self.conn, conversation)?;
        let policy_days = policy_days(&self.conn, &self.account_id, conversation)?;
        Ok(Retention {
            timer_seconds,
            policy_days,
            effective_seconds: effective(timer_seconds, policy_days),
        })
    }

    /// On a therapist's device: keep every message until an export has
    /// covered it (`mark_exported`), whatever the timers say.
    pub fn set_keep_until_exported(&mut self, on: bool) -> Result<()> {
        store::settings::set(&self.conn, KEEP_UNTIL_EXPORTED, &[u8::from(on)])
    }

    /// An export covered the conversation up to message row `through_row`.
    pub fn mark_exported(&mut self, conversation: ConversationId, through_row: i64) -> Result<()> {
        let now = self.now();
        let tx = self.write_tx()?;
        store::retention::mark_exported(&tx, conversation, through_row)?;
        audit::append(
            &tx,
            Some(&self.identity),
            AuditEvent::Exported { conversation },
            now,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes every message older than its conversation's retention, in
    /// one transaction with the audit entries, then truncates the WAL.
    /// Returns how many messages went.
    pub fn apply_retention(&mut self) -> Result<u64> {
        let now = self.now();
        let keep = store::settings::get(&self.conn, KEEP_UNTIL_EXPORTED)?.is_some_and(|v| v == [1]);
        // Runs with every sync: read first, without the write lock, and
        // take it only when something is due (most syncs find nothing).
        let own_days = own_policy_days(&self.conn, &self.account_id)?;
        let mut due = Vec::new();
        for c in store::retention::all(&self.conn)? {
            let days = peer_policy_days(&self.conn, c.id)?.unwrap_or(own_days);
            let limit = effective(c.timer_seconds, days);
            if limit == 0 {
                continue;
            }
            let cutoff = now.saturating_sub(limit.saturating_mul(1000));
            let up_to = keep.then_some(c.exported_through);
            if store::retention::any_before(&self.conn, c.id, cutoff, up_to)? {
                due.push((c.id, cutoff, up_to));
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        let tx = self.write_tx()?;
        let mut total = 0;
        for (id, cutoff, up_to) in due {
            let n = store::retention::delete_before(&tx, id, cutoff, up_to)?;
            if n > 0 {
                audit::append(
                    &tx,
                    Some(&self.identity),
                    AuditEvent::RetentionDeleted {
                        conversation: id,
                        count: n,
                    },
                    now,
                )?;
                total += n;
            }
        }
        tx.commit()?;
        if total > 0 {
            // secure_delete zeroed the pages; the WAL may still hold the
            // old ones until it is checkpointed and truncated.
            self.checkpoint()?;
            tracing::info!(count = total, "retention deleted messages");
        }
        Ok(total)
    }

    /// Ending a therapy relationship: archives the conversation and
    /// deletes its messages, queued items and reminders in one step (the
    /// record of consents and the audit log stay). Returns how many
    /// messages went.
    pub fn purge_conversation(&mut self, conversation: ConversationId) -> Result<u64> {
        let now = self.now();
        let tx = self.write_tx()?;
        if store::conversations::members(&tx, conversation)?.is_empty() {
            return Err(Error::InvalidArgument("no such conversation".into()));
        }
        let n = store::retention::purge(&tx, conversation)?;
        audit::append(
            &tx,
            Some(&self.identity),
            AuditEvent::ConversationPurged { conversation },
            now,
        )?;
        tx.commit()?;
        self.checkpoint()?;
        Ok(n)
    }
}

/// A member set the conversation's timer: applied here too.
pub(crate) fn on_timer(
    tx: &Connection,
    from: &str,
    timer: RetentionTimer,
    now: u64,
) -> Result<Vec<SyncEvent>> {
    if timer.seconds > MAX_TIMER_SECONDS {
        return Err(Error::Malformed("retention timer"));
    }
    let conversation = store::conversations::with_member(tx, from)?
        .ok_or(Error::Malformed("retention timer from a stranger"))?;
    store::retention::set_timer(tx, conversation, timer.seconds)?;
    audit::append(
        tx,
        None,
        AuditEvent::RetentionChanged {
            conversation,
            seconds: timer.seconds,
        },
        now,
    )?;
    Ok(vec![SyncEvent::RetentionChanged {
        conversation,
        seconds: timer.seconds,
    }])
}
