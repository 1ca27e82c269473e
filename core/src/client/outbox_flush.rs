//! Sending: a text is stored and queued (`compose_text`), then the outbox
//! goes out in order. Items for a recipient whose identity changed stay
//! queued (and behind them that recipient's later items) while other
//! recipients' items go; a changed device list is re-encrypted.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use alcove_proto::relay::SendRequest;
use libsignal_protocol::SenderCertificate;

use super::Client;
use crate::conversations::{ConversationId, MessageStatus};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::events::{push_event, SyncEvent};
use crate::outbox::OutboxItem;
use crate::outgoing::Sealing;
use crate::relay_client::SendOutcome;

/// Outbox items sent together: one commit for their ratchet advances,
/// one for their dequeue.
const BURST: usize = 32;

/// Where a sent text stands after `send_text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    pub message_row: i64,
    /// False when the relay could not be reached: the text waits in the
    /// outbox and goes out on a later `flush_outbox`/`sync`.
    pub sent: bool,
}

impl Client {
    /// Stores and queues a text, then tries to send the outbox. A relay
    /// that cannot be reached is not an error: the text waits, in order.
    /// `IdentityChanged`: a member's identity key changed; the text stays
    /// queued and goes once the change is accepted (the change is also
    /// kept for `take_events`).
    pub async fn send_text(&self, conversation: ConversationId, text: &str) -> Result<SendReport> {
        self.wiping_if_revoked(self.send_text_unguarded(conversation, text).await)
    }

    async fn send_text_unguarded(
        &self,
        conversation: ConversationId,
        text: &str,
    ) -> Result<SendReport> {
        let row = self.with_account(|a| a.compose_text(conversation, text))?;
        // Kept, and held until the practice's texting policy is accepted.
        if let Some(policy) = self.account(|a| a.consent_required(conversation))? {
            return Err(Error::ConsentRequired {
                policy_version: policy.version,
            });
        }
        let mut events = Vec::new();
        let flushed = self.flush_outbox_reporting(None, &mut events).await;
        let _ = self.account(|a| a.release_lease());
        let sent = match flushed {
            Ok(_) => self.is_sent(row)?,
            Err(Error::Network(_)) => false,
            Err(e) => return Err(e),
        };
        let members = self.account(|a| a.members(conversation))?;
        let held = events.into_iter().find(|e| {
            matches!(e, SyncEvent::IdentityChanged { remote_account } if members.contains(remote_account))
        });
        if let (false, Some(SyncEvent::IdentityChanged { remote_account })) = (sent, held) {
            self.tell(SyncEvent::IdentityChanged {
                remote_account: remote_account.clone(),
            });
            return Err(Error::IdentityChanged {
                account_id: remote_account,
            });
        }
        Ok(SendReport {
            message_row: row,
            sent,
        })
    }

    pub(super) fn is_sent(&self, row: i64) -> Result<bool> {
        Ok(self
            .with_account(|a| a.message(row))?
            .is_some_and(|m| m.status >= MessageStatus::Sent && m.status != MessageStatus::Failed))
    }

    /// Sends queued items in order until the outbox is empty or
    /// `deadline` comes. Returns how many went.
    pub async fn flush_outbox(&self, deadline: Option<Instant>) -> Result<u32> {
        self.wiping_if_revoked(self.flush_outbox_unguarded(deadline).await)
    }

    async fn flush_outbox_unguarded(&self, deadline: Option<Instant>) -> Result<u32> {
        self.flush_outbox_reporting(deadline, &mut Vec::new()).await
    }

    /// `flush_outbox`, recording the identity changes it meets.
    pub(super) async fn flush_outbox_reporting(
        &self,
        deadline: Option<Instant>,
        events: &mut Vec<SyncEvent>,
    ) -> Result<u32> {
        let deadline = Deadline::from(deadline);
        let mut sent = 0;
        let mut blocked: HashSet<String> = HashSet::new();
        let mut skip_ids: HashSet<i64> = HashSet::new();
        let mut held: HashMap<ConversationId, bool> = HashMap::new();
        loop {
            if deadline.expired() {
                break;
            }
            let mut batch = self.next_unblocked(&blocked, &skip_ids, &mut held)?;
            let item = match batch.len() {
                0 => break,
                1 => batch.remove(0),
                // A burst: one commit for its ratchet advances, one for
                // its dequeue. What the burst cannot send goes alone below.
                _ => match self.send_burst(batch, deadline, &mut sent).await? {
                    Some(item) => item,
                    None => continue,
                },
            };
            match self.send_item(&item, deadline).await {
                Ok(()) => sent += 1,
                // Out of time: the item stays queued for the next wake (a
                // send the relay took but whose answer came too late goes
                // again under the same guid; the receiver drops the copy).
                Err(Error::Network(_)) if deadline.expired() => break,
                Err(Error::IdentityChanged { .. }) => {
                    push_event(
                        events,
                        SyncEvent::IdentityChanged {
                            remote_account: item.recipient.clone(),
                        },
                    );
                    blocked.insert(item.recipient.clone());
                    skip_ids.insert(item.id);
                }
                Err(Error::Relay { status: 404, .. }) => {
                    self.account(|a| a.outbox_abandon(&item))?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// The oldest items that may go now (up to `BURST`, in order): not
    /// for a recipient whose identity changed, not skipped, not in a
    /// conversation whose texting policy waits for consent (`held`, asked
    /// once per conversation per flush). A lone text reads one row.
    fn next_unblocked(
        &self,
        blocked: &HashSet<String>,
        skip: &HashSet<i64>,
        held: &mut HashMap<ConversationId, bool>,
    ) -> Result<Vec<OutboxItem>> {
        self.account(|account| {
            let account: &crate::Account = account;
            let mut sendable = |item: &OutboxItem| -> Result<bool> {
                if blocked.contains(&item.recipient) || skip.contains(&item.id) {
                    return Ok(false);
                }
                let waits = match held.get(&item.conversation) {
                    Some(w) => *w,
                    None => {
                        let w = account.consent_required(item.conversation)?.is_some();
                        held.insert(item.conversation, w);
                        w
                    }
                };
                Ok(!waits)
            };
            let first_sendable = match account.outbox_next()? {
                None => return Ok(Vec::new()),
                Some(first) => sendable(&first)?,
            };
            let mut out = Vec::new();
            // The first burst's worth when the head may go; further when
            // the head is held, to find what may go behind it.
            let scan = if first_sendable { BURST } else { 200 };
            for item in account.outbox_items(scan as u32)? {
                if sendable(&item)? {
                    out.push(item);
                    if out.len() == BURST || !first_sendable {
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    /// Sends a burst of items (two or more, in order): their sessions and
    /// sealed routes first, then every ratchet advance in one durable
    /// commit before anything leaves, then the sends, then one commit
    /// dequeuing what the relay took. Returns the first item it could not
    /// send the plain way (no session yet, a device-list change, a refused
    /// sealed route, an error): the caller sends that one alone, with all
    /// the handling. Items of the burst behind it were encrypted but never
    /// left: they are encrypted again when their turn comes (the receiver
    /// simply sees a skipped ratchet step).
    async fn send_burst(
        &self,
        mut batch: Vec<OutboxItem>,
        deadline: Deadline,
        sent: &mut u32,
    ) -> Result<Option<OutboxItem>> {
        let mut routes: HashMap<String, Option<(SenderCertificate, Vec<u8>)>> = HashMap::new();
        let mut ready = 0;
        for item in &batch {
            if !routes.contains_key(&item.recipient) {
                if self
                    .with_account(|a| a.session_devices(&item.recipient))?
                    .is_empty()
                {
                    break;
                }
                let route = self.sealed_route(&item.recipient, deadline).await?;
                routes.insert(item.recipient.clone(), route);
            }
            ready += 1;
        }
        if ready < 2 {
            return Ok(Some(batch.swap_remove(0)));
        }
        batch.truncate(ready);
        let encrypted = {
            let pairs: Vec<(&OutboxItem, Sealing<'_>)> = batch
                .iter()
                .map(|item| {
                    let sealing = routes
                        .get(&item.recipient)
                        .and_then(|r| r.as_ref())
                        .map_or(Sealing::Unsealed, |(cert, _)| Sealing::Sealed(cert));
                    (item, sealing)
                })
                .collect();
            match self.account(|a| a.encrypt_outbox_batch(&pairs)) {
                Ok(e) => e,
                // Say, one recipient's identity changed: item by item.
                Err(_) => return Ok(Some(batch.swap_remove(0))),
            }
        };
        let mut done = Vec::with_capacity(batch.len());
        let mut alone = None;
        for (item, messages) in batch.into_iter().zip(encrypted) {
            let req = SendRequest {
                guid: item.guid.clone(),
                messages,
            };
            let outcome = match routes.get(&item.recipient).and_then(|r| r.as_ref()) {
                None => {
                    let creds = self.creds()?;
                    match self.relay_within(deadline) {
                        Ok(relay) => relay.send(&creds, &item.recipient, &req).await.map(Some),
                        Err(e) => Err(e),
                    }
                }
                Some((_, key)) => self.send_sealed(&item.recipient, key, &req, deadline).await,
            };
            match outcome {
                Ok(Some(SendOutcome::Sent)) => done.push(item),
                _ => {
                    alone = Some(item);
                    break;
                }
            }
        }
        self.account(|a| a.outbox_done_all(&done))?;
        *sent += done.len() as u32;
        Ok(alone)
    }

    async fn send_item(&self, item: &OutboxItem, deadline: Deadline) -> Result<()> {
        for _attempt in 0..4 {
            if self
                .with_account(|a| a.session_devices(&item.recipient))?
                .is_empty()
            {
                self.fetch_sessions(&item.recipient, None, deadline).await?;
            }
            let Some(outcome) = self.send_encrypted(item, deadline).await? else {
                continue;
            };
            match outcome {
                SendOutcome::Sent => {
                    self.account(|a| a.outbox_done(item))?;
                    return Ok(());
                }
                SendOutcome::Mismatch(m) => {
                    tracing::debug!(
                        missing = m.missing_devices.len(),
                        extra = m.extra_devices.len(),
                        stale = m.stale_devices.len(),
                        "device list changed; re-encrypting"
                    );
                    let mut gone = m.extra_devices.clone();
                    gone.extend(&m.stale_devices);
                    self.account(|a| a.drop_sessions(&item.recipient, &gone))?;
                    let mut need = m.missing_devices.clone();
                    need.extend(&m.stale_devices);
                    if !need.is_empty() {
                        self.fetch_sessions(&item.recipient, Some(&need), deadline)
                            .await?;
                    }
                }
            }
        }
        Err(Error::Relay {
            status: 409,
            code: "device_list_unstable".into(),
        })
    }

    /// Encrypts an outbox item and hands it to the relay: sealed (no
    /// credentials, the recipient's delivery key) when `sealed_route`
    /// finds a way, else with our credentials. `None`: the relay refused
    /// the sealed route (forgotten; send again, signed).
    async fn send_encrypted(
        &self,
        item: &OutboxItem,
        deadline: Deadline,
    ) -> Result<Option<SendOutcome>> {
        let sealed = self.sealed_route(&item.recipient, deadline).await?;
        let sealing = sealed
            .as_ref()
            .map_or(Sealing::Unsealed, |(cert, _)| Sealing::Sealed(cert));
        let messages = self.account(|a| a.encrypt_outbox_item_as(item, sealing))?;
        let req = SendRequest {
            guid: item.guid.clone(),
            messages,
        };
        match sealed {
            None => {
                let creds = self.creds()?;
                self.relay_within(deadline)?
                    .send(&creds, &item.recipient, &req)
                    .await
                    .map(Some)
            }
            Some((_, key)) => {
                self.send_sealed(&item.recipient, &key, &req, deadline)
                    .await
            }
        }
    }

    /// Fetches prekey bundles and starts sessions (all devices, or `only`).
    pub(super) async fn fetch_sessions(
        &self,
        remote_account: &str,
        only: Option<&[u32]>,
        deadline: Deadline,
    ) -> Result<()> {
        let creds = self.creds()?;
        let bundles = self
            .relay_within(deadline)?
            .bundles(&creds, remote_account)
            .await?;
        self.account(|account| {
            for b in &bundles.devices {
                if only.is_none_or(|o| o.contains(&b.device_id)) {
                    account.process_bundle(remote_account, b)?;
                }
            }
            Ok(())
        })
    }
}
