//! Acknowledged mail, deleted off the request path.
//!
//! A device acks the envelopes it has durably stored; the relay answers
//! at once and deletes them later, many mailboxes' acks in one storage
//! transaction ([`Storage::delete_acked`]), so the drain's last call (an
//! ack and a release) does not wait for the delete and its scrub.
//!
//! Why nobody can see an acked envelope again: every mailbox step
//! ([`crate::mailbox::Mailboxes`]) passes its mailbox's pending GUIDs to
//! storage as `hidden`, which the step treats as deleted (never returned,
//! not counted as mail waiting), and a GUID leaves [`PendingAcks`] only
//! after the transaction that deleted it committed. An ack is recorded
//! here before its answer is sent, so any read that starts after the
//! answer sees it either pending or deleted. A mailbox belongs to one
//! device and is read only through this process (an SQLite relay; a
//! PostgreSQL relay, whose mailboxes other processes read too, deletes
//! in the request's transaction instead).
//!
//! A relay killed before the delete loses the pending set: those
//! envelopes are delivered again, which the device drops by GUID (it
//! records processed envelope ids with the messages). A relay stopped
//! gracefully deletes what is pending before it exits.
//!
//! How long acknowledged ciphertext stays in the database: at most
//! `ack_delete_interval` after the ack (plus one delete transaction);
//! on SQLite its bytes then leave the WAL within `wal_scrub_interval`
//! (plus one checkpoint).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::storage::{AckedMail, Storage, StorageError};

/// Most GUIDs pending in memory, all mailboxes together (about 64 bytes
/// each): past it, acks are deleted in the request's transaction.
pub(crate) const MAX_PENDING: usize = 100_000;
/// Most GUIDs pending for one mailbox (every step of that mailbox passes
/// them to storage): past it, that mailbox's acks are deleted at once.
pub(crate) const MAX_PENDING_PER_MAILBOX: usize = 5_000;
/// Most GUIDs one delete transaction takes, so a backlog never holds the
/// database for long.
const BATCH_GUIDS: usize = 10_000;
/// Only an envelope's GUID can name it: 16 bytes.
const GUID_LEN: usize = 16;

type Mailbox = (String, u32);

/// The acked, not yet deleted GUIDs of every mailbox, and the deleter's
/// wake-up (a permit is kept when it is not waiting, so none is lost).
#[derive(Default)]
pub(crate) struct PendingAcks {
    inner: Mutex<Inner>,
    added: Notify,
}

#[derive(Default)]
struct Inner {
    by_mailbox: HashMap<Mailbox, HashSet<Vec<u8>>>,
    total: usize,
}

impl PendingAcks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map is consistent after every statement: a panic elsewhere
        // while it was held leaves nothing half done.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The mailbox's pending GUIDs, for a step to pass over.
    pub(crate) fn hidden(&self, account: &str, device: u32) -> Vec<Vec<u8>> {
        self.lock()
            .by_mailbox
            .get(&(account.to_owned(), device))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether `n` more GUIDs of the mailbox may wait here. Two requests
    /// may both pass before either adds: the caps are exceeded by at most
    /// one request's acks per concurrent request.
    pub(crate) fn room(&self, account: &str, device: u32, n: usize) -> bool {
        let inner = self.lock();
        let mine = inner
            .by_mailbox
            .get(&(account.to_owned(), device))
            .map_or(0, HashSet::len);
        inner.total + n <= MAX_PENDING && mine + n <= MAX_PENDING_PER_MAILBOX
    }

    /// Records acks of the mailbox (after the step that accepted them
    /// committed, before it is answered) and wakes the deleter. A GUID
    /// that is not 16 bytes names no envelope and is dropped.
    pub(crate) fn add(&self, account: &str, device: u32, guids: Vec<Vec<u8>>) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let set = inner
            .by_mailbox
            .entry((account.to_owned(), device))
            .or_default();
        let before = set.len();
        set.extend(guids.into_iter().filter(|g| g.len() == GUID_LEN));
        let added = set.len() - before;
        if set.is_empty() {
            inner.by_mailbox.remove(&(account.to_owned(), device));
        }
        inner.total += added;
        if added > 0 {
            self.added.notify_one();
        }
    }

    /// How many GUIDs wait.
    pub(crate) fn len(&self) -> usize {
        self.lock().total
    }

    /// A copy of up to `max` pending GUIDs, by mailbox; they stay pending
    /// (hidden) until [`PendingAcks::forget`] after their delete commits.
    fn batch(&self, max: usize) -> Vec<AckedMail> {
        let inner = self.lock();
        let mut out = Vec::new();
        let mut n = 0;
        for ((account, device), guids) in &inner.by_mailbox {
            if n >= max {
                break;
            }
            let take: Vec<Vec<u8>> = guids.iter().take(max - n).cloned().collect();
            n += take.len();
            out.push(AckedMail {
                account_id: account.clone(),
                device_id: *device,
                guids: take,
            });
        }
        out
    }

    /// Drops GUIDs whose delete committed.
    fn forget(&self, batch: &[AckedMail]) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        for acked in batch {
            let key = (acked.account_id.clone(), acked.device_id);
            if let Some(set) = inner.by_mailbox.get_mut(&key) {
                for g in &acked.guids {
                    if set.remove(g) {
                        inner.total -= 1;
                    }
                }
                if set.is_empty() {
                    inner.by_mailbox.remove(&key);
                }
            }
        }
    }

    /// Deletes everything pending now, batch by batch; returns how many
    /// envelopes were deleted. On failure what was not deleted stays
    /// pending (and hidden) for the next try.
    pub(crate) async fn flush(&self, storage: &dyn Storage) -> Result<usize, StorageError> {
        let mut deleted = 0;
        // Bounded: each round forgets at least one GUID or fails, and
        // acks that arrive meanwhile wait for the next flush.
        let rounds = self.len().div_ceil(BATCH_GUIDS).max(1);
        for _ in 0..rounds {
            let batch = self.batch(BATCH_GUIDS);
            if batch.is_empty() {
                break;
            }
            deleted += storage.delete_acked(&batch).await?;
            self.forget(&batch);
        }
        Ok(deleted)
    }
}

/// The deleter: once acks wait, rests `interval` (so the acks of many
/// requests and mailboxes share one transaction), then deletes them all.
/// A failed delete is retried after the next interval. The last flush,
/// after the final requests, is [`crate::RelayHandle::shutdown`]'s.
pub(crate) async fn delete_acked_mail(
    storage: Arc<dyn Storage>,
    pending: Arc<PendingAcks>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = pending.added.notified() => {}
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(interval) => {}
        }
        match pending.flush(storage.as_ref()).await {
            Ok(n) => tracing::debug!(deleted = n, "acknowledged mail deleted"),
            Err(e) => {
                tracing::warn!(error = %e, "deleting acknowledged mail failed; retrying");
                pending.added.notify_one();
            }
        }
        if pending.len() > 0 {
            // Acks that came during the delete: another round.
            pending.added.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn pending_acks_are_kept_per_mailbox_and_forgotten_once_deleted() {
        let p = PendingAcks::default();
        p.add(
            "a",
            1,
            vec![vec![1; 16], vec![2; 16], vec![1; 16], vec![3; 15]],
        );
        p.add("a", 2, vec![vec![1; 16]]);
        assert_eq!(p.len(), 3, "replays and malformed GUIDs are not kept");
        let mut mine = p.hidden("a", 1);
        mine.sort();
        assert_eq!(mine, vec![vec![1; 16], vec![2; 16]]);
        assert!(p.hidden("b", 1).is_empty());
        let batch = p.batch(2);
        assert_eq!(batch.iter().map(|b| b.guids.len()).sum::<usize>(), 2);
        p.forget(&batch);
        assert_eq!(p.len(), 1);
        p.forget(&p.batch(100));
        assert_eq!(p.len(), 0);
        assert!(p.lock().by_mailbox.is_empty());
    }

    #[test]
    fn room_is_capped_per_mailbox_and_overall() {
        let p = PendingAcks::default();
        assert!(p.room("a", 1, MAX_PENDING_PER_MAILBOX));
        assert!(!p.room("a", 1, MAX_PENDING_PER_MAILBOX + 1));
        let guids: Vec<Vec<u8>> = (0..MAX_PENDING_PER_MAILBOX as u32)
            .map(|i| {
                let mut g = vec![0; 16];
                g[..4].copy_from_slice(&i.to_be_bytes());
                g
            })
            .collect();
        p.add("a", 1, guids);
        assert!(!p.room("a", 1, 1));
        assert!(p.room("a", 2, 1), "another mailbox still has room");
        assert!(!p.room("a", 2, MAX_PENDING));
    }
}
