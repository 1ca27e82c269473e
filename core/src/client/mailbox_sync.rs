//! The push-wake entry point: `sync(deadline)` drains the mailbox page by
//! page (each page decrypted, dispatched and stored in one transaction,
//! acked only after commit), then sends the outbox and keeps prekeys
//! topped up, every relay call bounded by what the deadline leaves.
//!
//! The drain costs one round trip per page plus one: each call to the
//! relay's `/v1/messages/sync` acknowledges the pages committed so far and
//! asks for the page after the last one received, and is sent *before*
//! the current page is decrypted, so the network wait overlaps the work
//! (prefetch). The last call acknowledges the last page and lets the
//! reader lease go.
//!
//! The first page is the smaller: nothing overlaps the wait for it, while
//! each later page's wait hides behind the work on the one before. With
//! pages of 500, 1,000 queued messages come as 250 then 750: three calls,
//! as with two pages of 500, but the first page, whose wait nothing
//! hides, is half the size. On a slow link (the first page not back
//! within `SECOND_PAGE_AFTER`) the second page is asked for beside the
//! first, passing over it (`skip`), so both come in one round trip; the
//! page says which cursor it `follows`, and one that does not follow the
//! first is dropped and asked for again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use alcove_proto::relay::{EnvelopePage, PreKeyCount, SyncRequest, MAX_ACK_GUIDS};

use super::notifications::{push_notification, render};
use super::{Client, Notification};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::events::{push_event, SyncEvent};
use crate::inbound::Received;
use crate::relay_client::{Credentials, RelayClient};
use crate::stages::{Lap, SyncStages};

/// Envelopes per page: a page of sealed mail is about 300 KB (the relay
/// also caps a page's bytes), and fewer, larger pages mean fewer round
/// trips and commits. The first page asks for half of it and later pages
/// for half again as much ([`first_limit`], [`next_limit`]), so the
/// round trips for a mailbox of `2 × PAGE_SIZE` stay two pages plus one.
pub const PAGE_SIZE: u32 = 500;

/// How long the first page may take before the second is asked for
/// without its cursor (`skip`). Longer than the relay takes to read a
/// first page (about a millisecond), so on a fast link the second request
/// follows the first page's cursor and never competes with it; on a slow
/// one both pages travel together, one round trip saved.
const SECOND_PAGE_AFTER: Duration = Duration::from_millis(4);

/// The first page's size: the only page whose wait nothing overlaps.
fn first_limit(page_size: u32) -> u32 {
    page_size.div_ceil(2)
}

/// Every later page's size. Two of them may be in hand at once (the one
/// being stored and the one prefetched), each within the relay's byte cap
/// (2 MiB), which bounds the memory whatever the envelopes' sizes.
fn next_limit(page_size: u32) -> u32 {
    page_size.saturating_add(page_size / 2)
}

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
    /// Where the time went, stage by stage, and the relay calls made.
    pub stages: SyncStages,
}

/// What the drain learned beyond the report.
#[derive(Default)]
struct Drained {
    /// The last call let the reader lease go.
    released: bool,
    /// The relay's count of our prekeys, sent with the last page.
    prekeys: Option<PreKeyCount>,
}

/// A page request running on the runtime while the caller works; aborted
/// if the sync ends early (an error, the deadline).
struct Prefetch(tokio::task::JoinHandle<Result<(EnvelopePage, Option<Duration>)>>);

impl Prefetch {
    fn start(
        relay: RelayClient,
        creds: Credentials,
        reader: String,
        req: SyncRequest,
        timeout: Duration,
    ) -> Prefetch {
        Prefetch(tokio::spawn(async move {
            relay.sync_page_timed(&creds, &reader, &req, timeout).await
        }))
    }

    async fn page(mut self) -> Result<(EnvelopePage, Option<Duration>)> {
        match (&mut self.0).await {
            Ok(r) => r,
            Err(_) => Err(Error::Internal("page request task ended".into())),
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        let calls = self.relay.calls();
        self.retry_pending_push(deadline).await;
        let mut drained = Drained::default();
        let mut result = self.sync_locked(deadline, &mut drained).await;
        let _ = self.account(|a| a.release_lease());
        // Retention runs with every sync: what is past its time goes.
        if let Err(e) = self.account(|a| a.apply_retention()) {
            tracing::debug!(error = %e, "retention could not run");
        }
        // Only in the time left: an unreleased reader is this database's
        // own, and the next sync from it takes the mailbox straight back.
        if !drained.released {
            let released = match (self.creds(), self.relay_within(deadline)) {
                (Ok(creds), Ok(relay)) => relay.release_reader(&creds, &self.reader).await,
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            if let Err(e) = released {
                tracing::debug!(error = %e, "could not release mailbox reader");
            }
        }
        if let Ok(report) = &mut result {
            report.stages.relay_calls = self.relay.calls().wrapping_sub(calls);
        }
        result
    }

    /// Every relay call gets the time `deadline` leaves. A call cut short
    /// by it ends the sync with what was done: stored pages stay stored,
    /// an ack that did not go out makes the relay deliver those envelopes
    /// again (dropped as duplicates), unsent mail stays in the outbox.
    async fn sync_locked(&self, deadline: Deadline, drained: &mut Drained) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let outcome = match self.drain_mailbox(deadline, &mut report, drained).await {
            // A relay from before /v1/messages/sync: page by page.
            Err(Error::Relay {
                status: 404 | 405, ..
            }) => self.drain_mailbox_legacy(deadline, &mut report).await,
            other => other,
        };
        match outcome {
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
            if let Err(e) = self
                .upkeep_prekeys_known(deadline, drained.prekeys.take())
                .await
            {
                tracing::warn!(error = %e, "prekey upkeep failed; will retry next sync");
            }
        }
        Ok(report)
    }

    /// Fetches, stores and acks pages until the mailbox is empty or the
    /// deadline comes (`report.more`), one `/v1/messages/sync` round trip
    /// per page plus one, each sent before the previous page's work so
    /// that the wait overlaps it (the first two pages asked for at once).
    /// Acks go only for committed pages.
    async fn drain_mailbox(
        &self,
        deadline: Deadline,
        report: &mut SyncReport,
        drained: &mut Drained,
    ) -> Result<()> {
        let privacy = self.account(|a| a.notification_privacy())?;
        let creds = self.creds()?;
        let timeout = || deadline.remaining().unwrap_or(Duration::from_secs(30));
        let request = |ack: Vec<Vec<u8>>, after: u64, limit: u32, skip: u32, release: bool| {
            Ok::<_, Error>(Prefetch::start(
                self.relay_within(deadline)?,
                creds.clone(),
                self.reader.clone(),
                SyncRequest {
                    ack,
                    limit,
                    after,
                    release,
                    skip,
                },
                timeout(),
            ))
        };
        let (first, next) = (first_limit(self.page_size), next_limit(self.page_size));
        // Pages asked for, oldest first, each with whether it passes over
        // the page before it (`skip`) rather than following its cursor.
        let mut asked = VecDeque::from([(request(Vec::new(), 0, first, 0, false)?, false)]);
        // The cursor the next page must follow (the last page's).
        let mut cursor = 0;
        // Committed, not yet acknowledged.
        let mut acks: Vec<Vec<u8>> = Vec::new();
        let mut early_acks = None;
        while let Some((pending, skipped)) = asked.pop_front() {
            let mut lap = Lap::start();
            let (page, relay_time) = if report.pages == 0 {
                // The first page not back within SECOND_PAGE_AFTER (a
                // slow network, not the relay): the second is asked for
                // now, passing over the first, so both waits overlap.
                let first_page = pending.page();
                tokio::pin!(first_page);
                tokio::select! {
                    got = &mut first_page => got?,
                    () = tokio::time::sleep(SECOND_PAGE_AFTER) => {
                        asked.push_back((request(Vec::new(), 0, next, first, false)?, true));
                        report.stages.early_pages += 1;
                        first_page.await?
                    }
                }
            } else {
                pending.page().await?
            };
            report.stages.fetch += lap.lap();
            report.stages.relay += relay_time.unwrap_or_default();
            report.pages += 1;
            if skipped && page.follows != cursor {
                // Not the page after the last one (a relay from before
                // `skip`, or mail expired in between): dropped unread,
                // and the page after the last one asked for instead.
                report.stages.dropped_pages += 1;
                let again = request(std::mem::take(&mut acks), cursor, next, 0, false)?;
                asked.push_front((again, false));
                continue;
            }
            if page.envelopes.is_empty() {
                drained.prekeys = page.prekeys;
                break;
            }
            cursor = page.cursor;
            if !page.more {
                drained.prekeys = page.prekeys;
                // Nothing after this page: a page asked for behind it is
                // let go (dropping it aborts the request).
                asked.clear();
                if acks.len() + page.envelopes.len() > MAX_ACK_GUIDS {
                    // More than the last call may carry: the committed
                    // ones go now, behind this page's work.
                    early_acks = Some(request(std::mem::take(&mut acks), cursor, 0, 0, false)?);
                }
            } else if deadline.expired() {
                report.more = true;
                asked.clear();
            } else if asked.is_empty() {
                let after = request(std::mem::take(&mut acks), cursor, next, 0, false)?;
                asked.push_back((after, false));
            }
            let (outcomes, stages) = self.account(|a| a.receive_timed(&page.envelopes))?;
            report.stages.add(&stages);
            self.tally(outcomes, privacy, report, &mut acks);
        }
        if !deadline.expired() {
            // The last call: the last pages' acks, and the lease let go.
            // (Past the deadline the acks stay unsent: the relay delivers
            // those envelopes again and they are dropped as duplicates.)
            let mut lap = Lap::start();
            if let Some(early) = early_acks.take() {
                // Before the release: an ack arriving after it would take
                // the lease again.
                let (_, relay_time) = early.page().await?;
                report.stages.relay += relay_time.unwrap_or_default();
            }
            let (_, relay_time) = request(acks, 0, 0, 0, true)?.page().await?;
            report.stages.ack += lap.lap();
            report.stages.relay += relay_time.unwrap_or_default();
            drained.released = true;
        }
        Ok(())
    }

    /// Counts a stored page's outcomes into the report and collects the
    /// GUIDs the relay may drop.
    fn tally(
        &self,
        outcomes: Vec<crate::inbound::EnvelopeOutcome>,
        privacy: crate::NotificationPrivacy,
        report: &mut SyncReport,
        acks: &mut Vec<Vec<u8>>,
    ) {
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
                    Received::Receipt { .. } | Received::Introduction { .. } | Received::Control,
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
    }

    /// The drain against a relay without `/v1/messages/sync`: fetch, store,
    /// ack, a round trip each.
    async fn drain_mailbox_legacy(
        &self,
        deadline: Deadline,
        report: &mut SyncReport,
    ) -> Result<()> {
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
            self.tally(outcomes, privacy, report, &mut acks);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_page_is_the_smaller_and_two_make_two_pages_worth() {
        assert_eq!((first_limit(PAGE_SIZE), next_limit(PAGE_SIZE)), (250, 750));
        assert!(next_limit(PAGE_SIZE) <= alcove_proto::relay::SYNC_PAGE_MAX);
        assert_eq!((first_limit(1), next_limit(1)), (1, 1));
        assert_eq!((first_limit(7), next_limit(7)), (4, 10));
        for size in 1..=PAGE_SIZE {
            let (first, next) = (first_limit(size), next_limit(size));
            assert!(first >= 1 && first <= size && next >= size);
            assert!(first + next <= 2 * size + 1);
        }
    }
}
