//! Mailboxes as a service, free of HTTP: a send is checked against the
//! recipient's current device list (missing, extra and stale devices are
//! reported back, as Signal's server does), queued as one envelope per
//! device and the devices woken; a device reads its mailbox in pages under
//! a single-reader lease, acks what it stored, and releases the lease —
//! one storage transaction per round trip ([`Mailboxes::sync`]; the older
//! fetch and ack calls are special cases of it). Acks are answered at
//! once and deleted later off the request path when the relay keeps
//! [`PendingAcks`] (see `acks.rs` for why no read sees them again). The
//! API layer maps the outcomes to HTTP; any backend and any wake
//! implementation plug in underneath.

use std::collections::BTreeSet;
use std::sync::Arc;

use alcove_proto::relay::{
    MismatchedDevices, SendRequest, SyncRequest, MAX_ACK_GUIDS, SYNC_PAGE_MAX,
};
use alcove_proto::wire::{envelope, Envelope};

use crate::acks::PendingAcks;
use crate::config::RelayConfig;
use crate::storage::{
    MailboxQuota, Storage, StorageError, StoredEnvelope, SyncPage, SyncStep, Synced,
};
use crate::wake::Wake;

/// Device ids run 1..=127 (libsignal's device id is a byte; Signal's
/// server caps devices likewise): no send needs more messages.
pub(crate) const MAX_MESSAGES_PER_SEND: usize = 127;
pub(crate) const PAGE_DEFAULT: u32 = 50;
/// Largest page of `GET /v1/messages`.
pub(crate) const PAGE_MAX: u32 = 100;

/// Most envelope bytes on one page (at least one envelope whatever its
/// size): 500 sealed envelopes of 6 KB would be 3 MB in the relay's and
/// the device's memory at once.
pub(crate) const PAGE_MAX_BYTES: u64 = 2 * 1024 * 1024;
const GUID_LEN: usize = 16;

/// Why a send, fetch or ack was not done.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MailboxError {
    #[error("guid must be 16 bytes")]
    InvalidGuid,
    #[error("one message per device required")]
    NoMessages,
    #[error("{0} messages: one per recipient device, at most {MAX_MESSAGES_PER_SEND}")]
    TooManyMessages(usize),
    #[error("two messages for device {0}: one per recipient device")]
    DuplicateDevice(u32),
    #[error("message type or ciphertext missing")]
    InvalidMessage,
    #[error("no such account")]
    NoSuchAccount,
    /// The send does not cover exactly the account's devices.
    #[error("device list mismatch")]
    Mismatched(MismatchedDevices),
    /// A device was re-registered since the sender fetched its keys.
    #[error("stale devices")]
    Stale(MismatchedDevices),
    #[error("another reader holds this mailbox")]
    Busy,
    #[error("at most {MAX_ACK_GUIDS} per ack")]
    TooManyGuids,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Who sent a message: the authenticated device, or nobody (sealed
/// sender: the envelope names no one).
pub(crate) struct Sender {
    pub account: String,
    pub device: u32,
}

pub(crate) struct Mailboxes {
    storage: Arc<dyn Storage>,
    wake: Arc<dyn Wake>,
    cfg: Arc<RelayConfig>,
    /// Acks answered but not yet deleted; `None`: acks are deleted in
    /// the request's own transaction.
    pending: Option<Arc<PendingAcks>>,
}

impl Mailboxes {
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        wake: Arc<dyn Wake>,
        cfg: Arc<RelayConfig>,
        pending: Option<Arc<PendingAcks>>,
    ) -> Self {
        Self {
            storage,
            wake,
            cfg,
            pending,
        }
    }

    /// Checks the device list and enqueues one envelope per device, waking
    /// each device that got new mail. `source` is `None` for sealed sender.
    pub(crate) async fn deliver(
        &self,
        account: &str,
        req: SendRequest,
        source: Option<&Sender>,
    ) -> Result<(), MailboxError> {
        check_send(&req)?;
        let devices = self.storage.devices(account).await?;
        if devices.is_empty() {
            return Err(MailboxError::NoSuchAccount);
        }
        reconcile(&devices, &req)?;
        let now = (self.cfg.clock)();
        let envelopes: Vec<Envelope> = req
            .messages
            .into_iter()
            .map(|m| Envelope {
                guid: req.guid.clone(),
                r#type: m.r#type,
                source_account: source.map(|s| s.account.clone()).unwrap_or_default(),
                source_device: source.map(|s| s.device).unwrap_or_default(),
                destination_device: m.destination_device,
                ciphertext: m.ciphertext,
                server_timestamp: now,
            })
            .collect();
        let quota = MailboxQuota {
            max_envelopes: self.cfg.max_queue,
            max_bytes: self.cfg.max_queue_bytes,
        };
        let enqueued = self.storage.enqueue(account, &envelopes, &quota).await?;
        // Counts only: never the recipient's or the sender's account id.
        tracing::debug!(
            devices = enqueued.fresh.len(),
            sealed = source.is_none(),
            "mail queued"
        );
        for device in enqueued.fresh {
            self.wake.wake(account, device);
        }
        Ok(())
    }

    /// Takes or renews `reader`'s lease and returns the oldest page
    /// (`limit` clamped to 1..=100, 50 when absent, within the page's
    /// byte budget) and whether more wait: one transaction.
    pub(crate) async fn fetch(
        &self,
        account: &str,
        device: u32,
        reader: &str,
        limit: Option<u32>,
    ) -> Result<(Vec<Envelope>, bool), MailboxError> {
        let mut step = self.step(reader);
        step.limit = limit.unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX);
        let page = self.run(account, device, step).await?;
        let envelopes = page
            .envelopes
            .iter()
            .map(StoredEnvelope::decode)
            .collect::<Result<_, _>>()?;
        Ok((envelopes, page.more))
    }

    /// Deletes acknowledged envelopes (now or soon: [`Mailboxes::run`]),
    /// under `reader`'s lease. A GUID of another mailbox, or of none,
    /// deletes nothing.
    pub(crate) async fn ack(
        &self,
        account: &str,
        device: u32,
        reader: &str,
        guids: &[Vec<u8>],
    ) -> Result<(), MailboxError> {
        if guids.len() > MAX_ACK_GUIDS {
            return Err(MailboxError::TooManyGuids);
        }
        let mut step = self.step(reader);
        step.ack = guids.to_vec();
        self.run(account, device, step).await?;
        Ok(())
    }

    /// One round trip of a drain, in one transaction: acks, the lease,
    /// the page after `req.after` (`limit` and `skip` clamped to 0..=1000, within the
    /// page's byte budget; the device's prekey count on the last page),
    /// and the release when asked for. Every acked GUID must be 16 bytes,
    /// at most 1,000 of them.
    pub(crate) async fn sync(
        &self,
        account: &str,
        device: u32,
        reader: &str,
        req: SyncRequest,
    ) -> Result<SyncPage, MailboxError> {
        if req.ack.len() > MAX_ACK_GUIDS {
            return Err(MailboxError::TooManyGuids);
        }
        if req.ack.iter().any(|g| g.len() != GUID_LEN) {
            return Err(MailboxError::InvalidGuid);
        }
        let mut step = self.step(reader);
        step.ack = req.ack;
        step.after = req.after;
        step.limit = req.limit.min(SYNC_PAGE_MAX);
        step.skip = req.skip.min(SYNC_PAGE_MAX);
        step.release = req.release;
        step.prekeys = true;
        self.run(account, device, step).await
    }

    /// Ends `reader`'s lease; mail that arrived meanwhile (no wake was
    /// sent while the device was syncing) wakes the device now.
    pub(crate) async fn release(
        &self,
        account: &str,
        device: u32,
        reader: &str,
    ) -> Result<(), MailboxError> {
        self.storage.release_reader(account, device, reader).await?;
        // Acked mail waiting for its delete is not mail left.
        let hidden = self.hidden(account, device);
        let (queued, _) = self
            .storage
            .fetch(account, device, hidden.len() as u32 + 1, 0)
            .await?;
        if queued.iter().any(|e| !hidden.contains(&e.guid)) {
            self.wake.wake(account, device);
        }
        Ok(())
    }

    /// The mailbox's acked GUIDs whose delete is still to come.
    fn hidden(&self, account: &str, device: u32) -> Vec<Vec<u8>> {
        self.pending
            .as_ref()
            .map(|p| p.hidden(account, device))
            .unwrap_or_default()
    }

    /// A step under `reader`'s lease at the relay's clock, reading and
    /// acking nothing until the caller says what.
    fn step(&self, reader: &str) -> SyncStep {
        let now = (self.cfg.clock)();
        SyncStep {
            reader: reader.to_owned(),
            now,
            lease_until: now.saturating_add(self.cfg.reader_lease.as_millis() as u64),
            not_before: now.saturating_sub(self.cfg.message_ttl.as_millis() as u64),
            max_bytes: PAGE_MAX_BYTES,
            ..SyncStep::default()
        }
    }

    /// Runs `step`; a released mailbox that still holds mail wakes its
    /// device (no wake-up was sent while the lease was held).
    ///
    /// With [`PendingAcks`], the step's acks are not deleted by it: the
    /// step passes over them and over the mailbox's earlier pending acks
    /// (`hidden`), and once it succeeded (a refused step acks nothing)
    /// they join the pending set, before the caller answers. A mailbox
    /// whose pending set is full has its acks deleted by the step itself.
    async fn run(
        &self,
        account: &str,
        device: u32,
        mut step: SyncStep,
    ) -> Result<SyncPage, MailboxError> {
        let deferred = match &self.pending {
            Some(p) if !step.ack.is_empty() && p.room(account, device, step.ack.len()) => {
                let acks = std::mem::take(&mut step.ack);
                step.hidden = p.hidden(account, device);
                step.hidden.extend(acks.iter().cloned());
                Some((p, acks))
            }
            Some(p) => {
                step.hidden = p.hidden(account, device);
                None
            }
            None => None,
        };
        match self.storage.sync(account, device, &step).await? {
            Synced::Busy => Err(MailboxError::Busy),
            Synced::Page(page) => {
                if let Some((p, acks)) = deferred {
                    p.add(account, device, acks);
                }
                if page.left {
                    self.wake.wake(account, device);
                }
                Ok(page)
            }
        }
    }
}

/// The shape of a send, before any storage is asked.
fn check_send(req: &SendRequest) -> Result<(), MailboxError> {
    if req.guid.len() != GUID_LEN {
        return Err(MailboxError::InvalidGuid);
    }
    if req.messages.is_empty() {
        return Err(MailboxError::NoMessages);
    }
    if req.messages.len() > MAX_MESSAGES_PER_SEND {
        return Err(MailboxError::TooManyMessages(req.messages.len()));
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = req
        .messages
        .iter()
        .find(|m| !seen.insert(m.destination_device))
    {
        return Err(MailboxError::DuplicateDevice(dup.destination_device));
    }
    for m in &req.messages {
        let kind = envelope::Type::try_from(m.r#type).unwrap_or(envelope::Type::Unknown);
        if kind == envelope::Type::Unknown || m.ciphertext.is_empty() {
            return Err(MailboxError::InvalidMessage);
        }
    }
    Ok(())
}

/// The send must name exactly the account's devices (else `Mismatched`
/// with the missing and extra ones), each at its current registration id
/// (else `Stale`).
fn reconcile(devices: &[(u32, u32)], req: &SendRequest) -> Result<(), MailboxError> {
    let current: BTreeSet<u32> = devices.iter().map(|(d, _)| *d).collect();
    let given: BTreeSet<u32> = req.messages.iter().map(|m| m.destination_device).collect();
    let missing: Vec<u32> = current.difference(&given).copied().collect();
    let extra: Vec<u32> = given.difference(&current).copied().collect();
    if !missing.is_empty() || !extra.is_empty() || given.len() != req.messages.len() {
        return Err(MailboxError::Mismatched(MismatchedDevices {
            missing_devices: missing,
            extra_devices: extra,
            stale_devices: vec![],
        }));
    }
    let stale: Vec<u32> = req
        .messages
        .iter()
        .filter(|m| {
            devices
                .iter()
                .any(|(d, reg)| *d == m.destination_device && *reg != m.destination_registration_id)
        })
        .map(|m| m.destination_device)
        .collect();
    if !stale.is_empty() {
        return Err(MailboxError::Stale(MismatchedDevices {
            missing_devices: vec![],
            extra_devices: vec![],
            stale_devices: stale,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use alcove_proto::relay::OutgoingMessage;
    use std::sync::Mutex;

    use crate::storage::{NewDevice, SqliteStorage};

    /// A wake that records which devices it was asked to wake.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, u32)>>);

    impl Wake for Recorded {
        fn wake(&self, account_id: &str, device_id: u32) {
            self.0
                .lock()
                .unwrap()
                .push((account_id.to_owned(), device_id));
        }
    }

    struct Setup {
        _dir: tempfile::TempDir,
        storage: Arc<dyn Storage>,
        woken: Arc<Recorded>,
        mailboxes: Mailboxes,
        pending: Arc<PendingAcks>,
    }

    async fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("relay.db");
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&db).unwrap());
        let woken = Arc::new(Recorded::default());
        let mut cfg = RelayConfig::new("127.0.0.1:0".parse().unwrap(), db);
        cfg.clock = Arc::new(|| 1_000_000);
        let pending = Arc::new(PendingAcks::default());
        let mailboxes = Mailboxes::new(
            Arc::clone(&storage),
            Arc::clone(&woken) as Arc<dyn Wake>,
            Arc::new(cfg),
            Some(Arc::clone(&pending)),
        );
        storage
            .create_invite(b"invite", crate::storage::Role::Client, 0, None)
            .await
            .unwrap();
        let device = |reg| NewDevice {
            registration_id: reg,
            identity_key: vec![5; 33],
            salt: vec![1; 16],
            secret_hash: vec![2; 32],
        };
        let keys = Default::default();
        storage
            .register(b"invite", "bob", &device(11), &keys, None, 0)
            .await
            .unwrap();
        storage
            .add_device("bob", &device(12), &keys, 0, 5)
            .await
            .unwrap();
        Setup {
            _dir: dir,
            storage,
            woken,
            mailboxes,
            pending,
        }
    }

    fn send(guid: u8, to: &[(u32, u32)]) -> SendRequest {
        SendRequest {
            guid: vec![guid; 16],
            messages: to
                .iter()
                .map(|&(device, reg)| OutgoingMessage {
                    r#type: envelope::Type::SignalMessage as i32,
                    destination_device: device,
                    destination_registration_id: reg,
                    ciphertext: vec![9; 40],
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn a_send_must_cover_exactly_the_current_devices() {
        let s = setup().await;
        let alice = Sender {
            account: "alice".into(),
            device: 1,
        };
        match s
            .mailboxes
            .deliver("bob", send(1, &[(1, 11), (3, 13)]), Some(&alice))
            .await
        {
            Err(MailboxError::Mismatched(m)) => {
                assert_eq!(m.missing_devices, vec![2]);
                assert_eq!(m.extra_devices, vec![3]);
            }
            other => panic!("{other:?}"),
        }
        match s
            .mailboxes
            .deliver("bob", send(1, &[(1, 11), (2, 99)]), Some(&alice))
            .await
        {
            Err(MailboxError::Stale(m)) => assert_eq!(m.stale_devices, vec![2]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.mailboxes
                .deliver("nobody", send(1, &[(1, 1)]), None)
                .await,
            Err(MailboxError::NoSuchAccount)
        ));
        // Nothing was queued, nobody woken.
        assert!(s.storage.fetch("bob", 1, 10, 0).await.unwrap().0.is_empty());
        assert!(s.woken.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_send_queues_once_per_device_and_wakes_only_for_new_mail() {
        let s = setup().await;
        let alice = Sender {
            account: "alice".into(),
            device: 2,
        };
        let req = send(7, &[(1, 11), (2, 12)]);
        s.mailboxes
            .deliver("bob", req.clone(), Some(&alice))
            .await
            .unwrap();
        // The same GUID again (a client retrying): queued once, no wake.
        s.mailboxes.deliver("bob", req, Some(&alice)).await.unwrap();
        assert_eq!(
            *s.woken.0.lock().unwrap(),
            vec![("bob".to_owned(), 1), ("bob".to_owned(), 2)]
        );
        let (page, more) = s.mailboxes.fetch("bob", 1, "r1", None).await.unwrap();
        assert!(!more);
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].source_account, "alice");
        assert_eq!(page[0].source_device, 2);
        assert_eq!(page[0].server_timestamp, 1_000_000);
        // Sealed: the envelope names nobody.
        s.mailboxes
            .deliver("bob", send(8, &[(1, 11), (2, 12)]), None)
            .await
            .unwrap();
        let (page, _) = s.mailboxes.fetch("bob", 2, "r2", None).await.unwrap();
        assert_eq!(page.len(), 2);
        assert!(page[1].source_account.is_empty() && page[1].source_device == 0);
    }

    #[tokio::test]
    async fn a_second_reader_is_refused_and_release_wakes_for_mail_left() {
        let s = setup().await;
        s.mailboxes
            .deliver("bob", send(1, &[(1, 11), (2, 12)]), None)
            .await
            .unwrap();
        s.woken.0.lock().unwrap().clear();
        let (page, _) = s.mailboxes.fetch("bob", 1, "app", Some(500)).await.unwrap();
        assert_eq!(page.len(), 1);
        assert!(matches!(
            s.mailboxes.fetch("bob", 1, "extension", None).await,
            Err(MailboxError::Busy)
        ));
        assert!(matches!(
            s.mailboxes.ack("bob", 1, "extension", &[vec![1; 16]]).await,
            Err(MailboxError::Busy)
        ));
        assert!(matches!(
            s.mailboxes
                .ack("bob", 1, "app", &vec![vec![1; 16]; 1001])
                .await,
            Err(MailboxError::TooManyGuids)
        ));
        // Released with mail unacked: the device is woken again.
        s.mailboxes.release("bob", 1, "app").await.unwrap();
        assert_eq!(*s.woken.0.lock().unwrap(), vec![("bob".to_owned(), 1)]);
        // Acked and released: nothing left, no wake.
        s.mailboxes
            .ack("bob", 1, "extension", &[vec![1; 16]])
            .await
            .unwrap();
        s.mailboxes.release("bob", 1, "extension").await.unwrap();
        assert_eq!(s.woken.0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_sync_release_wakes_only_for_mail_left_and_checks_its_acks() {
        let s = setup().await;
        for g in 1..=3 {
            s.mailboxes
                .deliver("bob", send(g, &[(1, 11), (2, 12)]), None)
                .await
                .unwrap();
        }
        s.woken.0.lock().unwrap().clear();
        let req = |ack: Vec<Vec<u8>>, limit, after, release| SyncRequest {
            ack,
            limit,
            after,
            release,
            skip: 0,
        };
        let page = s
            .mailboxes
            .sync("bob", 1, "app", req(vec![], 2, 0, false))
            .await
            .unwrap();
        assert_eq!((page.envelopes.len(), page.more), (2, true));
        assert!(page.prekeys.is_none());
        // Acks page 1, releases with mail left: woken.
        let acked: Vec<Vec<u8>> = page.envelopes.iter().map(|e| e.guid.clone()).collect();
        let last = s
            .mailboxes
            .sync("bob", 1, "app", req(acked, 0, page.cursor, true))
            .await
            .unwrap();
        assert!(last.envelopes.is_empty() && last.more);
        assert_eq!(*s.woken.0.lock().unwrap(), vec![("bob".to_owned(), 1)]);
        // Everything acked and released: no wake. The limit is clamped.
        let page = s
            .mailboxes
            .sync("bob", 1, "ext", req(vec![], 10_000, 0, false))
            .await
            .unwrap();
        assert_eq!(page.envelopes.len(), 1);
        assert!(page.prekeys.is_some());
        let acked = vec![page.envelopes[0].guid.clone()];
        s.mailboxes
            .sync("bob", 1, "ext", req(acked, 0, page.cursor, true))
            .await
            .unwrap();
        assert_eq!(s.woken.0.lock().unwrap().len(), 1);
        // Malformed acks are refused before storage.
        assert!(matches!(
            s.mailboxes
                .sync("bob", 2, "app", req(vec![vec![1; 16]; 1001], 1, 0, false))
                .await,
            Err(MailboxError::TooManyGuids)
        ));
        assert!(matches!(
            s.mailboxes
                .sync("bob", 2, "app", req(vec![vec![1; 17]], 1, 0, false))
                .await,
            Err(MailboxError::InvalidGuid)
        ));
        assert_eq!(s.storage.fetch("bob", 2, 10, 0).await.unwrap().0.len(), 3);
    }

    #[tokio::test]
    async fn a_sync_page_holds_up_to_a_thousand_envelopes() {
        let s = setup().await;
        for n in 0..1001u16 {
            let mut req = send(0, &[(1, 11), (2, 12)]);
            req.guid[..2].copy_from_slice(&n.to_be_bytes());
            s.mailboxes.deliver("bob", req, None).await.unwrap();
        }
        let req = |limit, after| SyncRequest {
            limit,
            after,
            ..Default::default()
        };
        let page = s
            .mailboxes
            .sync("bob", 1, "app", req(u32::MAX, 0))
            .await
            .unwrap();
        assert_eq!((page.envelopes.len(), page.more), (1000, true));
        let rest = s
            .mailboxes
            .sync("bob", 1, "app", req(750, page.cursor))
            .await
            .unwrap();
        assert_eq!((rest.envelopes.len(), rest.more), (1, false));
        assert_eq!(rest.envelopes[0].guid[..2], 1000u16.to_be_bytes());
        // A skip past the cap passes over 1,000, no more.
        let mut far = req(10, 0);
        far.skip = u32::MAX;
        let far = s.mailboxes.sync("bob", 1, "app", far).await.unwrap();
        assert_eq!((far.envelopes.len(), far.follows), (1, page.cursor));
        assert_eq!(far.envelopes[0].guid, rest.envelopes[0].guid);
    }

    #[tokio::test]
    async fn acked_mail_is_hidden_at_once_and_deleted_by_the_flush() {
        let s = setup().await;
        for g in 1..=4 {
            s.mailboxes
                .deliver("bob", send(g, &[(1, 11), (2, 12)]), None)
                .await
                .unwrap();
        }
        let req = |ack: Vec<Vec<u8>>, limit, release| SyncRequest {
            ack,
            limit,
            after: 0,
            release,
            skip: 0,
        };
        let page = s
            .mailboxes
            .sync("bob", 1, "app", req(vec![], 2, false))
            .await
            .unwrap();
        let acked: Vec<Vec<u8>> = page.envelopes.iter().map(|e| e.guid.clone()).collect();
        s.woken.0.lock().unwrap().clear();
        // Acked and released with mail left: answered, still stored, but
        // no view of this mailbox shows it; the wake is for 3 and 4.
        s.mailboxes
            .sync("bob", 1, "app", req(acked.clone(), 0, true))
            .await
            .unwrap();
        assert_eq!(s.pending.len(), 2);
        assert_eq!(s.storage.fetch("bob", 1, 10, 0).await.unwrap().0.len(), 4);
        assert_eq!(*s.woken.0.lock().unwrap(), vec![("bob".to_owned(), 1)]);
        let again = s
            .mailboxes
            .sync("bob", 1, "ext", req(vec![], 10, false))
            .await
            .unwrap();
        assert_eq!(
            again
                .envelopes
                .iter()
                .map(|e| e.guid[0])
                .collect::<Vec<_>>(),
            vec![3, 4]
        );
        let (old_api, more) = s.mailboxes.fetch("bob", 1, "ext", Some(1)).await.unwrap();
        assert_eq!((old_api[0].guid[0], more), (3, true));
        // Device 2 holds the same GUIDs: its view is untouched.
        let other = s.mailboxes.fetch("bob", 2, "app", None).await.unwrap().0;
        assert_eq!(other.len(), 4);
        // The rest acked by the old API and released: nothing left, no wake.
        s.mailboxes
            .ack("bob", 1, "ext", &[vec![3; 16], vec![4; 16]])
            .await
            .unwrap();
        s.woken.0.lock().unwrap().clear();
        s.mailboxes.release("bob", 1, "ext").await.unwrap();
        assert!(s.woken.0.lock().unwrap().is_empty());
        assert_eq!(s.pending.flush(s.storage.as_ref()).await.unwrap(), 4);
        assert_eq!(s.pending.len(), 0);
        assert!(s.storage.fetch("bob", 1, 10, 0).await.unwrap().0.is_empty());
        assert_eq!(s.storage.fetch("bob", 2, 10, 0).await.unwrap().0.len(), 4);
    }

    #[tokio::test]
    async fn a_refused_step_defers_no_acks_and_a_full_pending_set_deletes_inline() {
        let s = setup().await;
        s.mailboxes
            .deliver("bob", send(1, &[(1, 11), (2, 12)]), None)
            .await
            .unwrap();
        s.mailboxes.fetch("bob", 1, "app", None).await.unwrap();
        assert!(matches!(
            s.mailboxes.ack("bob", 1, "ext", &[vec![1; 16]]).await,
            Err(MailboxError::Busy)
        ));
        assert_eq!(s.pending.len(), 0, "a refused ack is not kept");
        // A mailbox whose pending set is full: its acks are deleted at once.
        let junk: Vec<Vec<u8>> = (0..crate::acks::MAX_PENDING_PER_MAILBOX as u32)
            .map(|i| {
                let mut g = vec![0xee; 16];
                g[..4].copy_from_slice(&i.to_be_bytes());
                g
            })
            .collect();
        s.pending.add("bob", 1, junk);
        s.mailboxes
            .ack("bob", 1, "app", &[vec![1; 16]])
            .await
            .unwrap();
        assert!(s.storage.fetch("bob", 1, 10, 0).await.unwrap().0.is_empty());
        assert_eq!(
            s.pending.len(),
            crate::acks::MAX_PENDING_PER_MAILBOX,
            "the inline ack was not added"
        );
    }

    #[test]
    fn malformed_sends_are_refused_before_storage() {
        let mut r = send(1, &[(1, 11)]);
        r.guid = vec![1; 15];
        assert!(matches!(check_send(&r), Err(MailboxError::InvalidGuid)));
        assert!(matches!(
            check_send(&send(1, &[])),
            Err(MailboxError::NoMessages)
        ));
        let many: Vec<(u32, u32)> = (1..=128).map(|d| (d, d)).collect();
        assert!(matches!(
            check_send(&send(1, &many)),
            Err(MailboxError::TooManyMessages(128))
        ));
        assert!(matches!(
            check_send(&send(1, &[(4, 1), (4, 1)])),
            Err(MailboxError::DuplicateDevice(4))
        ));
        let mut r = send(1, &[(1, 11)]);
        r.messages[0].ciphertext.clear();
        assert!(matches!(check_send(&r), Err(MailboxError::InvalidMessage)));
        let mut r = send(1, &[(1, 11)]);
        r.messages[0].r#type = 999;
        assert!(matches!(check_send(&r), Err(MailboxError::InvalidMessage)));
    }
}
