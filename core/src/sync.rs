//! The networked client: enrolment by invite, sending through the outbox,
//! and `sync(deadline)` — the push-wake entry point.
//!
//! Database work is short and synchronous; it runs under a mutex that is
//! never held across an `.await`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use alcove_proto::relay::{PushRegistration, RegisterRequest, SendRequest};
use rand::RngCore;

use crate::account::Account;
use crate::db::{DbKey, StorageLayout};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::events::{push_event, SyncEvent};
use crate::messaging::Received;
use crate::notification_settings::NotificationPrivacy;
use crate::outbox::OutboxItem;
use crate::relay_client::{Credentials, RelayClient, SendOutcome};

/// The text shown when content is hidden (the default).
pub const HIDDEN_TITLE: &str = "Alcove";
pub const HIDDEN_BODY: &str = "New secure message";

/// Most notifications returned by one sync: memory stays bounded by the
/// page size, never by how much mail was queued.
pub const MAX_NOTIFICATIONS: usize = 20;

/// Lease length: short, so a suspended process never blocks another for
/// long; renewed by every ratchet transaction.
pub const LEASE_TTL_MS: u64 = 5_000;

/// A notification, already rendered at the account's privacy level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub title: String,
    pub body: String,
    /// Local message row (opaque; lets the app open the conversation).
    pub message_row: i64,
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
}

/// Where a sent text stands after `send_text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    pub message_row: i64,
    /// False when the relay could not be reached: the text waits in the
    /// outbox and goes out on a later `flush_outbox`/`sync`.
    pub sent: bool,
}

pub struct Client {
    account: Mutex<Account>,
    relay: RelayClient,
    creds: Credentials,
    /// Identifies this process to the relay's one-reader rule and to the
    /// database lease.
    reader: String,
    page_size: u32,
    /// Sends that went sealed (no sender named to the relay).
    sealed_sends: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn remove_db_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal", ".keycheck"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
}

impl Client {
    /// Creates a new account in a new database at `path` and registers it
    /// with the relay using a one-time invite. On failure nothing is left
    /// behind.
    pub async fn enroll(path: &Path, key: &DbKey, relay_url: &str, invite: &str) -> Result<Client> {
        Self::enroll_with(path, key, relay_url, invite, StorageLayout::Standard).await
    }

    /// Like [`Client::enroll`], creating the database in `layout`
    /// (`SharedContainer` for an iOS app-group file shared with the NSE).
    pub async fn enroll_with(
        path: &Path,
        key: &DbKey,
        relay_url: &str,
        invite: &str,
        layout: StorageLayout,
    ) -> Result<Client> {
        let relay = RelayClient::new(relay_url)?;
        if path.exists() {
            return Err(Error::AccountExists);
        }
        let account_id = random_hex(16);
        let result = async {
            let mut account = Account::create_in(path, key, &account_id, 1, layout)?;
            let prekeys = account.initial_prekeys()?;
            let mut secret = vec![0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            let delivery_key = crate::random_bytes(crate::DELIVERY_KEY_LEN);
            let req = RegisterRequest {
                invite_token: invite.to_owned(),
                account_id: account_id.clone(),
                registration_id: account.registration_id(),
                identity_key: account.identity_key(),
                auth_secret: secret.clone(),
                prekeys: Some(prekeys),
                delivery_key: delivery_key.clone(),
            };
            let resp = relay.register(&req).await?;
            if resp.device_id != account.device_id() || resp.account_id != account_id {
                return Err(Error::Internal(
                    "relay assigned an unexpected device".into(),
                ));
            }
            // Sealed sender: pin the relay's trust root now, over the
            // channel that carried the one-time invite; it never changes
            // silently afterwards. A relay without one gets plain sends.
            if !resp.trust_root.is_empty() {
                account.pin_trust_root(&resp.trust_root)?;
                account.set_delivery_key(&delivery_key)?;
            }
            let creds = Credentials {
                account_id: account_id.clone(),
                device_id: resp.device_id,
                secret: zeroize::Zeroizing::new(secret),
            };
            account.save_credentials(&creds)?;
            tracing::info!(device = resp.device_id, "enrolled");
            Ok((account, creds))
        }
        .await;
        match result {
            Ok((account, creds)) => Self::from_parts(account, relay, creds),
            Err(e) => {
                remove_db_files(path);
                Err(e)
            }
        }
    }

    /// Opens an enrolled account.
    pub fn open(path: &Path, key: &DbKey, relay_url: &str) -> Result<Client> {
        let relay = RelayClient::new(relay_url)?;
        let account = Account::open(path, key)?;
        let creds = account.credentials()?;
        Self::from_parts(account, relay, creds)
    }

    fn from_parts(mut account: Account, relay: RelayClient, creds: Credentials) -> Result<Client> {
        // The database lease is per process; the relay's mailbox reader id is
        // per account database, so whichever process holds the lease (say,
        // after another was killed mid-sync) can take the mailbox over at
        // once, while a copy of the account elsewhere cannot.
        account.use_lease(&random_hex(12), LEASE_TTL_MS);
        let reader = match account.setting("relay_reader")? {
            Some(r) => String::from_utf8(r).map_err(|_| Error::Corrupt)?,
            None => {
                let r = random_hex(12);
                account.set_setting("relay_reader", r.as_bytes())?;
                r
            }
        };
        Ok(Client {
            account: Mutex::new(account),
            relay,
            creds,
            reader,
            page_size: 100,
            sealed_sends: Default::default(),
        })
    }

    /// Page size for sync (1..=100); smaller pages bound memory tighter.
    pub fn set_page_size(&mut self, n: u32) {
        self.page_size = n.clamp(1, 100);
    }

    /// The account, for local queries (conversations, messages, settings).
    /// Do not hold the guard across an `.await`.
    pub fn account(&self) -> Result<MutexGuard<'_, Account>> {
        self.account
            .lock()
            .map_err(|_| Error::Internal("account lock poisoned".into()))
    }

    /// The relay client with each call bounded by what `deadline` leaves;
    /// a timed-out `Network` error when nothing is left.
    fn relay_within(&self, deadline: Deadline) -> Result<RelayClient> {
        Ok(self.relay.within(deadline.call_timeout()?))
    }

    pub fn account_id(&self) -> &str {
        &self.creds.account_id
    }

    /// Registers where the relay should send wake-ups.
    pub async fn register_push(&self, reg: PushRegistration) -> Result<()> {
        self.relay.set_push(&self.creds, &reg).await
    }

    /// Stores and queues a text, then tries to send the outbox. A relay
    /// that cannot be reached is not an error: the text waits, in order.
    /// `IdentityChanged`: the recipient's identity key changed; the text
    /// stays queued and goes once the change is accepted.
    pub async fn send_text(&self, remote_account: &str, text: &str) -> Result<SendReport> {
        let row = self.account()?.compose_text(remote_account, text)?;
        let mut events = Vec::new();
        let flushed = self.flush_outbox_reporting(None, &mut events).await;
        let _ = self.account().and_then(|a| a.release_lease());
        let sent = match flushed {
            Ok(_) => self.account()?.outbox_len()? == 0 || self.is_sent(row)?,
            Err(Error::Network(_)) => false,
            Err(e) => return Err(e),
        };
        let held = events.iter().any(
            |e| matches!(e, SyncEvent::IdentityChanged { remote_account: r } if r == remote_account),
        );
        if !sent && held {
            return Err(Error::IdentityChanged {
                account_id: remote_account.to_owned(),
            });
        }
        Ok(SendReport {
            message_row: row,
            sent,
        })
    }

    fn is_sent(&self, row: i64) -> Result<bool> {
        Ok(self.account()?.message(row)?.is_some_and(|m| {
            m.status >= crate::MessageStatus::Sent && m.status != crate::MessageStatus::Failed
        }))
    }

    /// Sends queued items in order. Items for a recipient whose identity
    /// changed stay queued (behind them, that recipient's later items too)
    /// while other recipients' items go. Returns how many went.
    pub async fn flush_outbox(&self, deadline: Option<Instant>) -> Result<u32> {
        self.flush_outbox_reporting(deadline, &mut Vec::new()).await
    }

    /// `flush_outbox`, recording the identity changes it meets.
    async fn flush_outbox_reporting(
        &self,
        deadline: Option<Instant>,
        events: &mut Vec<SyncEvent>,
    ) -> Result<u32> {
        let deadline = Deadline::from(deadline);
        let mut sent = 0;
        let mut blocked: HashSet<String> = HashSet::new();
        let mut skip_ids: HashSet<i64> = HashSet::new();
        loop {
            if deadline.expired() {
                break;
            }
            let next = self.next_unblocked(&blocked, &skip_ids)?;
            let Some(item) = next else { break };
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
                    self.account()?.outbox_abandon(&item)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    fn next_unblocked(
        &self,
        blocked: &HashSet<String>,
        skip: &HashSet<i64>,
    ) -> Result<Option<OutboxItem>> {
        let account = self.account()?;
        if blocked.is_empty() {
            return account.outbox_next();
        }
        Ok(account
            .outbox_items(200)?
            .into_iter()
            .find(|i| !blocked.contains(&i.recipient) && !skip.contains(&i.id)))
    }

    async fn send_item(&self, item: &OutboxItem, deadline: Deadline) -> Result<()> {
        for _attempt in 0..4 {
            if self.account()?.session_devices(&item.recipient)?.is_empty() {
                self.fetch_sessions(&item.recipient, None, deadline).await?;
            }
            let Some(outcome) = self.send_encrypted(item, deadline).await? else {
                continue;
            };
            match outcome {
                SendOutcome::Sent => {
                    self.account()?.outbox_done(item)?;
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
                    self.account()?.drop_sessions(&item.recipient, &gone)?;
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
    /// credentials, the recipient's delivery key) when we hold their key
    /// and a valid sender certificate, else with our credentials. `None`:
    /// the relay refused the delivery key (forgotten; send again, signed).
    async fn send_encrypted(
        &self,
        item: &OutboxItem,
        deadline: Deadline,
    ) -> Result<Option<SendOutcome>> {
        let sealed = self.sealed_route(&item.recipient, deadline).await?;
        let messages = self
            .account()?
            .seal_outbox_item_as(item, sealed.as_ref().map(|(c, _)| c))?;
        let req = SendRequest {
            guid: item.guid.clone(),
            messages,
        };
        let Some((_, key)) = sealed else {
            return self
                .relay_within(deadline)?
                .send(&self.creds, &item.recipient, &req)
                .await
                .map(Some);
        };
        match self
            .relay_within(deadline)?
            .send_sealed(&item.recipient, &key, &req)
            .await
        {
            Ok(o) => {
                if o == SendOutcome::Sent {
                    self.sealed_sends
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Some(o))
            }
            Err(Error::Unauthorized) => {
                tracing::debug!("delivery key refused; sending with credentials");
                self.account()?
                    .forget_remote_delivery_key(&item.recipient)?;
                Ok(None)
            }
            Err(Error::Relay { status: 404, code }) if code == "sealed_sender_off" => {
                // The relay stopped offering sealed sender: drop the cached
                // certificate (a new one will not be issued) and send signed.
                self.account()?.forget_sender_certificate()?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The certificate and delivery key for a sealed send to
    /// `remote_account`, or `None` to send with credentials (no pinned
    /// trust root, no key from them yet, or no valid certificate).
    async fn sealed_route(
        &self,
        remote_account: &str,
        deadline: Deadline,
    ) -> Result<Option<(libsignal_protocol::SenderCertificate, Vec<u8>)>> {
        let (key, cached) = {
            let account = self.account()?;
            if account.trust_root()?.is_none() {
                return Ok(None);
            }
            let Some(key) = account.remote_delivery_key(remote_account)? else {
                return Ok(None);
            };
            (key, account.cached_sender_certificate()?)
        };
        if let Some(cert) = cached {
            return Ok(Some((cert, key)));
        }
        let fetched = match self
            .relay_within(deadline)?
            .sender_certificate(&self.creds)
            .await
        {
            Ok(bytes) => self.account()?.store_sender_certificate(&bytes),
            Err(e) => Err(e),
        };
        match fetched {
            Ok(cert) => Ok(Some((cert, key))),
            Err(e @ Error::Network(_)) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "no usable sender certificate; sending with credentials");
                Ok(None)
            }
        }
    }

    /// Replaces this account's delivery key (say, to shut out a contact
    /// it no longer wants sealed mail from): the relay learns the new
    /// key's hash first, then the account keeps it and shares it with
    /// whoever it writes to next. Holders of the old key get 401 and fall
    /// back to signed sends until they hear from us.
    pub async fn rotate_delivery_key(&self) -> Result<()> {
        if self.account()?.trust_root()?.is_none() {
            return Err(Error::InvalidArgument(
                "this relay offers no sealed sender".into(),
            ));
        }
        let key = crate::random_bytes(crate::DELIVERY_KEY_LEN);
        self.relay.set_delivery_key(&self.creds, &key).await?;
        self.account()?.set_delivery_key(&key)
    }

    /// How many sends went sealed since this client was opened.
    pub fn sealed_sends(&self) -> u64 {
        self.sealed_sends.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Fetches prekey bundles and starts sessions (all devices, or `only`).
    async fn fetch_sessions(
        &self,
        remote_account: &str,
        only: Option<&[u32]>,
        deadline: Deadline,
    ) -> Result<()> {
        let bundles = self
            .relay_within(deadline)?
            .bundles(&self.creds, remote_account)
            .await?;
        let mut account = self.account()?;
        for b in &bundles.devices {
            if only.is_none_or(|o| o.contains(&b.device_id)) {
                account.process_bundle(remote_account, b)?;
            }
        }
        Ok(())
    }

    /// The push-wake entry point: takes the cross-process lease, drains the
    /// mailbox page by page (each page decrypted and stored in one
    /// transaction, acked only after commit), sends the outbox and keeps
    /// prekeys topped up, stopping cleanly at `deadline`. The next call
    /// resumes where this one stopped.
    pub async fn sync(&self, deadline: Instant) -> Result<SyncReport> {
        // Another process may hold the lease (or have died holding it): it
        // expires within LEASE_TTL_MS, so wait for it up to the deadline.
        loop {
            let acquired = self.account()?.acquire_lease();
            match acquired {
                Ok(()) => break,
                Err(Error::Locked) if Instant::now() + Duration::from_millis(100) < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let result = self.sync_locked(Deadline::at(deadline)).await;
        let _ = self.account().and_then(|a| a.release_lease());
        // Only in the time left: an unreleased reader is this database's
        // own, and the next sync from it takes the mailbox straight back.
        let released = match self.relay_within(Deadline::at(deadline)) {
            Ok(relay) => relay.release_reader(&self.creds, &self.reader).await,
            Err(e) => Err(e),
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
        let privacy = self.account()?.notification_privacy()?;
        loop {
            if deadline.expired() {
                report.more = true;
                break;
            }
            let page = self
                .relay_within(deadline)?
                .fetch(
                    &self.creds,
                    &self.reader,
                    self.page_size,
                    deadline.remaining().unwrap_or(Duration::from_secs(30)),
                )
                .await?;
            report.pages += 1;
            if page.envelopes.is_empty() {
                break;
            }
            // A message from a new identity key is stored (as Signal) and
            // leaves the key pending: compare before and after the page.
            let pending_before = self.account()?.pending_identity_changes()?;
            let outcomes = self.account()?.receive(&page.envelopes)?;
            let mut acks = Vec::with_capacity(outcomes.len());
            {
                let account = self.account()?;
                for remote_account in account.pending_identity_changes()? {
                    if !pending_before.contains(&remote_account) {
                        push_event(
                            &mut report.events,
                            SyncEvent::IdentityChanged { remote_account },
                        );
                    }
                }
                for o in &outcomes {
                    if o.ackable() {
                        acks.push(o.guid.clone());
                    }
                    match &o.result {
                        Ok(Received::Text(m)) => {
                            push_event(
                                &mut report.events,
                                SyncEvent::MessageReceived {
                                    remote_account: m.remote_account.clone(),
                                    message_row: m.id,
                                },
                            );
                            report.received += 1;
                            if report.notifications.len() == MAX_NOTIFICATIONS {
                                report.notifications.remove(0);
                            }
                            report.notifications.push(render(&account, privacy, m)?);
                        }
                        Ok(Received::Receipt {
                            kind,
                            updated,
                            remote_account,
                        }) => {
                            // The sender, also for sealed-sender envelopes
                            // (from the verified certificate).
                            push_event(
                                &mut report.events,
                                SyncEvent::ReceiptUpdated {
                                    remote_account: Some(remote_account.clone()),
                                    read: *kind == crate::MessageStatus::Read,
                                    updated: u32::try_from(*updated).unwrap_or(u32::MAX),
                                },
                            );
                        }
                        Err(Error::DuplicateEnvelope) => {}
                        Err(e) => {
                            report.failed += 1;
                            tracing::warn!(error = %e, "envelope dropped");
                        }
                    }
                }
            }
            self.relay_within(deadline)?
                .ack(&self.creds, &self.reader, acks)
                .await?;
            if !page.more {
                break;
            }
        }
        Ok(())
    }

    /// Refills one-time prekeys when the relay runs low and rotates the
    /// signed and last-resort keys on schedule.
    pub async fn upkeep_prekeys(&self) -> Result<bool> {
        self.upkeep_prekeys_within(Deadline::unbounded()).await
    }

    async fn upkeep_prekeys_within(&self, deadline: Deadline) -> Result<bool> {
        let count = self
            .relay_within(deadline)?
            .prekey_count(&self.creds)
            .await?;
        let upload = self.account()?.prekey_upkeep(&count)?;
        match upload {
            Some(up) => {
                self.relay_within(deadline)?
                    .upload_prekeys(&self.creds, &up)
                    .await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

fn render(
    account: &Account,
    privacy: NotificationPrivacy,
    m: &crate::Message,
) -> Result<Notification> {
    let (title, body) = match privacy {
        NotificationPrivacy::Hidden => (HIDDEN_TITLE.to_owned(), HIDDEN_BODY.to_owned()),
        NotificationPrivacy::Pseudonym => {
            let (_, label) = account.conversation_labels(&m.remote_account)?;
            (
                label.unwrap_or_else(|| HIDDEN_TITLE.to_owned()),
                HIDDEN_BODY.to_owned(),
            )
        }
        NotificationPrivacy::FullPreview => {
            let (name, label) = account.conversation_labels(&m.remote_account)?;
            (
                name.or(label).unwrap_or_else(|| HIDDEN_TITLE.to_owned()),
                m.body.clone(),
            )
        }
    };
    Ok(Notification {
        title,
        body,
        message_row: m.id,
    })
}
