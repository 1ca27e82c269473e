//! The push-wake entry point: `sync(deadline)` drains the mailbox page by
//! page (each page decrypted, dispatched and stored in one transaction,
//! acked only after commit), then sends the outbox and keeps prekeys
//! topped up, every relay call bounded by what the deadline leaves.

use std::time::{Duration, Instant};

use super::notifications::{push_notification, render};
use super::{Client, Notification};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::events::{push_event, SyncEvent};
use crate::inbound::Received;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Messages (texts) newly stored by this sync.
    pub received: u32,
    /// Envelopes that could not be processed and were dropped (acked).
    pub failed: u32,
    /// At most `MAX_NOTIFICATIONS`, newest last.
    pub notifications: Vec<Notification>,
    /// The deadline stopped the sync with mail still at the relay.
    pub more: bool,
    /// Outbox items the relay accepted during this sync.
    pub sent: u32,
    /// Pages fetched.
    pub pages: u32,
    /// What happened, for listeners: at most `MAX_EVENTS`, in order.
    pub events: Vec<SyncEvent>,
}

impl Client {
    /// Takes the cross-process lease, drains the mailbox, sends the outbox
    /// and keeps prekeys topped up, stopping cleanly at `deadline`. The
    /// next call resumes where this one stopped.
    pub async fn sync(&self, deadline: Instant) -> Result<SyncReport> {
        self.wiping_if_revoked(self.sync_unguarded(deadline).await)
    }

    async fn sync_unguarded(&self, deadline: Instant) -> Result<SyncReport> {
        // Another process may hold the lease (or have died holding it): it
        // expires within LEASE_TTL_MS, so wait for it up to the deadline.
        loop {
            match self.account(|a| a.acquire_lease()) {
                Ok(()) => break,
                Err(Error::Locked) if Instant::now() + Duration::from_millis(100) < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let deadline = Deadline::at(deadline);
        self.retry_pending_push(deadline).await;
        let result = self.sync_locked(deadline).await;
        let _ = self.account(|a| a.release_lease());
        // Retention runs with every sync: what is past its time goes.
        if let Err(e) = self.account(|a| a.apply_retention()) {
            tracing::debug!(error = %e, "retention could not run");
        }
        // Only in the time left: an unreleased reader is this database's
        // own, and the next sync from it takes the mailbox straight back.
        let released = match (self.creds(), self.relay_within(deadline)) {
            (Ok(creds), Ok(relay)) => relay.release_reader(&creds, &self.reader).await,
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        if let Err(e) = released {
            tracing::debug!(error = %e, "could not release mailbox reader");
        }
        result
    }

    /// Every relay call gets the time `deadline` leaves. A call cut short
    /// by it ends the sync with what was done: stored pages stay stored,
    /// an ack that did not go out makes the relay deliver those envelopes
    /// again (dropped as duplicates), unsent mail stays in the outbox.
    async fn sync_locked(&self, deadline: Deadline) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        match self.drain_mailbox(deadline, &mut report).await {
            Ok(()) => {}
            Err(Error::Network(_)) if deadline.expired() => {
                report.more = true;
                return Ok(report);
            }
            Err(e) => return Err(e),
        }
        if !deadline.expired() {
            report.sent = match self
                .flush_outbox_reporting(deadline.instant(), &mut report.events)
                .await
            {
                Ok(n) => n,
                Err(Error::Network(_)) => 0,
                Err(e) => return Err(e),
            };
        }
        if !deadline.expired() {
            if let Err(e) = self.upkeep_prekeys_within(deadline).await {
                tracing::warn!(error = %e, "prekey upkeep failed; will retry next sync");
            }
        }
        Ok(report)
    }

    /// Fetches, stores and acks pages until the mailbox is empty or the
    /// deadline comes (`report.more`).
    async fn drain_mailbox(&self, deadline: Deadline, report: &mut SyncReport) -> Result<()> {
        let privacy = self.account(|a| a.notification_privacy())?;
        let creds = self.creds()?;
        loop {
            if deadline.expired() {
                report.more = true;
                break;
            }
            let page = self
                .relay_within(deadline)?
                .fetch(
                    &creds,
                    &self.reader,
                    self.page_size,
                    deadline.remaining().unwrap_or(Duration::from_secs(30)),
                )
                .await?;
            report.pages += 1;
            if page.envelopes.is_empty() {
                break;
            }
            let outcomes = self.account(|a| a.receive(&page.envelopes))?;
            let mut acks = Vec::with_capacity(outcomes.len());
            for o in outcomes {
                if o.ackable() {
                    acks.push(o.guid);
                }
                for event in o.events {
                    push_event(&mut report.events, event);
                }
                match o.result {
                    Ok(Received::Text(_)) => report.received += 1,
                    Ok(
                        Received::Receipt { .. }
                        | Received::Introduction { .. }
                        | Received::Control,
                    )
                    | Err(Error::DuplicateEnvelope) => {}
                    Err(e) => {
                        report.failed += 1;
                        tracing::warn!(error = %e, "envelope dropped");
                    }
                }
                if let Some(notice) = o.notice {
                    push_notification(&mut report.notifications, render(privacy, notice));
                }
            }
            self.relay_within(deadline)?
                .ack(&creds, &self.reader, acks)
                .await?;
            if !page.more {
                break;
            }
        }
        Ok(())
    }
}
