//! `AlcoveClient`: one account on this device, as the shells see it. Each
//! method converts types, calls the core once and catches panics; events
//! the core decided on are handed to the listeners after the call.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alcove_core as core;
use futures_util::FutureExt;

use crate::errors::{panic_error, AlcoveError, Result};
use crate::events::{AlcoveListener, ListenerHandle, Listeners};
use crate::types::{
    Availability, Consent, Conversation, ConversationId, Message, NotificationPrivacy,
    PracticeProfile, PushKind, SafetyNumber, SyncReport, TextingPolicy,
};

/// Runs `f`; a panic becomes `AlcoveError::Internal`, never an abort or a
/// foreign exception.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panic_error()))
}

pub(crate) async fn guard_async<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    AssertUnwindSafe(f)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(panic_error()))
}

/// Takes a key the shell passed in: the FFI's copy is zeroized when this
/// returns, whatever the outcome.
pub(crate) fn key(bytes: Vec<u8>) -> Result<core::DbKey> {
    let bytes = zeroize::Zeroizing::new(bytes);
    Ok(core::DbKey::from_slice(&bytes)?)
}

fn deadline(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

fn registration(kind: PushKind, token: String) -> core::proto::relay::PushRegistration {
    use core::proto::relay::{push_registration::Kind, PushRegistration};
    let kind = match kind {
        PushKind::UnifiedPush => Kind::UnifiedPush,
        PushKind::Apns => Kind::Apns,
        PushKind::Fcm => Kind::Fcm,
    };
    PushRegistration {
        kind: kind as i32,
        endpoint: token,
    }
}

fn conversation(id: ConversationId) -> core::ConversationId {
    core::ConversationId::new(id)
}

/// One account on this device. `lock()` closes the database and drops the
/// key from memory; `unlock(key)` reopens it (both decided in the core).
#[derive(uniffi::Object)]
pub struct AlcoveClient {
    pub(crate) inner: core::Client,
    /// Listeners stay registered while locked.
    listeners: Arc<Listeners>,
}

impl AlcoveClient {
    pub(crate) fn wrap(inner: core::Client) -> Arc<Self> {
        Arc::new(Self {
            inner,
            listeners: Arc::default(),
        })
    }

    /// Hands the listeners whatever the core kept for them.
    pub(crate) fn deliver_kept(&self) {
        self.listeners.deliver(self.inner.take_events());
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl AlcoveClient {
    /// Opens an enrolled account. `key` is the 32-byte database key the
    /// shell keeps in the Android Keystore / iOS Keychain.
    #[uniffi::constructor]
    pub fn open(db_path: String, key: Vec<u8>, relay_url: String) -> Result<Arc<Self>> {
        guard(|| {
            let k = self::key(key)?;
            Ok(Self::wrap(core::Client::open(
                db_path.as_ref(),
                &k,
                &relay_url,
            )?))
        })
    }

    /// Creates an account and registers it with a one-time invite.
    /// `shared_container` (iOS: a file in the app group shared with the
    /// NSE) keeps SQLite's 32-byte header in plain text so iOS does not
    /// kill a suspended process holding its lock; later opens need no flag.
    /// `tls_certificate_sha256`: for a relay under a private CA, the
    /// SHA-256 of its certificate, pinned for every later connection.
    #[uniffi::constructor(default(shared_container = false, tls_certificate_sha256 = None))]
    pub async fn enroll(
        db_path: String,
        key: Vec<u8>,
        relay_url: String,
        invite: String,
        shared_container: bool,
        tls_certificate_sha256: Option<Vec<u8>>,
    ) -> Result<Arc<Self>> {
        guard_async(async {
            let k = self::key(key)?;
            let layout = if shared_container {
                core::StorageLayout::SharedContainer
            } else {
                core::StorageLayout::Standard
            };
            let pin = tls_certificate_sha256
                .map(|p| {
                    <[u8; 32]>::try_from(p.as_slice()).map_err(|_| AlcoveError::InvalidInput {
                        reason: "tls_certificate_sha256".into(),
                    })
                })
                .transpose()?;
            let client =
                core::Client::enroll_pinned(db_path.as_ref(), &k, &relay_url, &invite, layout, pin)
                    .await?;
            Ok(Self::wrap(client))
        })
        .await
    }

    /// Enrols a client from a therapist's invite card (scanned or pasted
    /// text) under the name the client chose (a pseudonym is fine). The
    /// therapist's identity comes from the card, never from first use:
    /// `CardMismatch` when the relay disagrees with the card,
    /// `InvalidCard` for a mistyped, truncated or expired card; nothing is
    /// left on disk on failure.
    #[uniffi::constructor(default(shared_container = false))]
    pub async fn enroll_by_card(
        db_path: String,
        key: Vec<u8>,
        card: String,
        display_name: String,
        shared_container: bool,
    ) -> Result<Arc<Self>> {
        guard_async(async {
            let k = self::key(key)?;
            let layout = if shared_container {
                core::StorageLayout::SharedContainer
            } else {
                core::StorageLayout::Standard
            };
            let client =
                core::Client::enroll_by_card(db_path.as_ref(), &k, &card, &display_name, layout)
                    .await?;
            Ok(Self::wrap(client))
        })
        .await
    }

    /// For a therapist: the invite card (text for a link or QR code) for a
    /// one-time invite `token`, naming this account, its identity key, the
    /// relay and its trust root. `expires_at`: ms since the epoch, if known.
    pub fn invite_card(&self, token: String, expires_at: Option<u64>) -> Result<String> {
        guard(|| Ok(self.inner.invite_card(&token, expires_at)?.encode()))
    }

    /// For a therapist: mints a one-time client invite at the relay and
    /// returns its card (text for a link or QR code). `expires_in_hours`:
    /// 0 for the relay's default (7 days).
    pub async fn mint_invite_card(&self, expires_in_hours: u32) -> Result<String> {
        let result = guard_async(async {
            Ok(self
                .inner
                .mint_invite_card(expires_in_hours)
                .await?
                .encode())
        })
        .await;
        self.telling_revocation(result)
    }

    pub fn account_id(&self) -> String {
        self.inner.account_id().to_owned()
    }

    /// Our identity key (for the invite card the other side pins).
    pub fn identity_key(&self) -> Result<Vec<u8>> {
        guard(|| Ok(self.inner.with_account(|a| Ok(a.identity_key()))?))
    }

    /// Trusts `identity_key` for `remote_account` as verified (from an invite card).
    pub fn pin_identity(&self, remote_account: String, identity_key: Vec<u8>) -> Result<()> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.pin_identity(&remote_account, &identity_key))?)
        })
    }

    /// The direct conversation with `remote_account`, started when new.
    pub fn conversation_with(&self, remote_account: String) -> Result<ConversationId> {
        guard(|| Ok(self.inner.conversation_with(&remote_account)?.get()))
    }

    /// Stores and sends a text; returns its local row. A relay that cannot
    /// be reached leaves it queued (sent later by `sync`).
    /// `IdentityChanged`: the text is kept and goes once the change is
    /// accepted; listeners hear of it too.
    pub async fn send_text(&self, conversation_id: ConversationId, text: String) -> Result<i64> {
        let result = guard_async(async {
            Ok(self
                .inner
                .send_text(conversation(conversation_id), &text)
                .await?
                .message_row)
        })
        .await;
        self.deliver_kept();
        result
    }

    /// Registers a listener for events of later calls. It stays registered
    /// until the returned handle is cancelled or dropped.
    pub fn set_listener(&self, listener: Arc<dyn AlcoveListener>) -> Arc<ListenerHandle> {
        self.listeners.add(listener)
    }

    /// Tells the relay where to send wake-ups (call from the platform's
    /// new-token callback, and after enrolment). A registration that fails
    /// is kept and retried by every `sync` until it lands.
    pub async fn register_push(&self, kind: PushKind, token: String) -> Result<()> {
        let result =
            guard_async(async { Ok(self.inner.register_push(registration(kind, token)).await?) })
                .await;
        self.telling_revocation(result)
    }

    /// `register_push` for a client that may be auto-locked: unlocked with
    /// `key` for the call only.
    pub async fn register_push_unlocking(
        &self,
        key: Vec<u8>,
        kind: PushKind,
        token: String,
    ) -> Result<()> {
        let result = guard_async(async {
            let k = self::key(key)?;
            Ok(self
                .inner
                .register_push_unlocking(&k, registration(kind, token))
                .await?)
        })
        .await;
        self.telling_revocation(result)
    }

    /// Whether a push registration still waits to reach the relay.
    pub fn push_registration_pending(&self) -> bool {
        self.inner.push_registration_pending()
    }

    /// The push entry point: sync until `deadline_ms` from now.
    /// Listeners get the sync's events after it returns.
    pub async fn sync(&self, deadline_ms: u64) -> Result<SyncReport> {
        let result = guard_async(async { Ok(self.inner.sync(deadline(deadline_ms)).await?) }).await;
        self.report(result)
    }

    /// The push entry point for a client that may be auto-locked: unlocks
    /// with `key` for this sync only and locks again after (an unlocked
    /// client just syncs).
    pub async fn sync_unlocking(&self, key: Vec<u8>, deadline_ms: u64) -> Result<SyncReport> {
        let result = guard_async(async {
            let k = self::key(key)?;
            Ok(self.inner.sync_unlocking(&k, deadline(deadline_ms)).await?)
        })
        .await;
        self.report(result)
    }

    pub fn conversations(&self) -> Result<Vec<Conversation>> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.conversations())?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// A page of a conversation's messages, newest first, older than
    /// `before` (a row).
    pub fn messages(
        &self,
        conversation_id: ConversationId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.messages(conversation(conversation_id), before, limit))?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    pub fn set_display_name(&self, conversation_id: ConversationId, name: String) -> Result<()> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.set_display_name(conversation(conversation_id), &name))?)
        })
    }

    /// The pseudonym shown at `Pseudonym` notification privacy.
    pub fn set_notification_label(
        &self,
        conversation_id: ConversationId,
        label: String,
    ) -> Result<()> {
        guard(|| {
            Ok(self.inner.with_account(|a| {
                a.set_notification_label(conversation(conversation_id), &label)
            })?)
        })
    }

    pub fn set_notification_privacy(&self, privacy: NotificationPrivacy) -> Result<()> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.set_notification_privacy(privacy.into()))?)
        })
    }

    pub fn safety_number(&self, remote_account: String) -> Result<SafetyNumber> {
        guard(|| {
            let s = self
                .inner
                .with_account(|a| a.safety_number(&remote_account))?;
            Ok(SafetyNumber {
                display: s.display,
                scannable: s.scannable,
            })
        })
    }

    pub fn accept_identity_change(&self, remote_account: String) -> Result<()> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.accept_identity_change(&remote_account))?)
        })
    }

    /// For a therapist: publishes the practice profile to every client
    /// (and to each new one when they join). Returns its revision.
    pub fn publish_practice_profile(&self, profile: PracticeProfile) -> Result<u64> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.publish_practice_profile(profile.into()))?)
        })
    }

    /// The profile the therapist of `conversation_id` published, if any.
    pub fn practice_profile(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Option<PracticeProfile>> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.practice_profile(conversation(conversation_id)))?
                .map(Into::into))
        })
    }

    /// Whether the therapist of `conversation_id` is available now
    /// (offline, from the profile); `None` without a profile.
    pub fn availability(&self, conversation_id: ConversationId) -> Result<Option<Availability>> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.availability(conversation(conversation_id)))?
                .map(Into::into))
        })
    }

    /// The texting policy to accept before texting in `conversation_id`;
    /// `None` when there is nothing to accept.
    pub fn consent_required(
        &self,
        conversation_id: ConversationId,
    ) -> Result<Option<TextingPolicy>> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.consent_required(conversation(conversation_id)))?
                .map(|p| TextingPolicy {
                    version: p.version,
                    text: p.text,
                }))
        })
    }

    /// Accepts the policy the user read (`policy_version`); kept texts go
    /// after the consent on the next sync.
    pub fn accept_policy(
        &self,
        conversation_id: ConversationId,
        policy_version: u32,
    ) -> Result<()> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.accept_policy(conversation(conversation_id), policy_version))?)
        })
    }

    /// Who accepted which policy version in `conversation_id`, and when.
    pub fn consents(&self, conversation_id: ConversationId) -> Result<Vec<Consent>> {
        guard(|| {
            Ok(self
                .inner
                .with_account(|a| a.consents(conversation(conversation_id)))?
                .into_iter()
                .map(|c| Consent {
                    account: c.account,
                    policy_version: c.policy_version,
                    accepted_at: c.accepted_at,
                })
                .collect())
        })
    }

    /// Closes the database and drops the key (auto-lock, app backgrounded).
    pub fn lock(&self) -> Result<()> {
        guard(|| Ok(self.inner.lock()?))
    }

    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// Reopens the database with its key; a wrong key leaves it locked.
    pub fn unlock(&self, key: Vec<u8>) -> Result<()> {
        guard(|| {
            let k = self::key(key)?;
            Ok(self.inner.unlock(&k)?)
        })
    }
}

impl AlcoveClient {
    /// Converts a sync's report and hands its events, and any the core
    /// kept, to the listeners.
    fn report(&self, result: Result<core::SyncReport>) -> Result<SyncReport> {
        let mut r = match result {
            Ok(r) => r,
            Err(e) => {
                self.deliver_kept();
                return Err(e);
            }
        };
        self.listeners.deliver(std::mem::take(&mut r.events));
        self.deliver_kept();
        Ok(SyncReport {
            received: r.received,
            failed: r.failed,
            more: r.more,
            sent: r.sent,
            notifications: r.notifications.into_iter().map(Into::into).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_key_is_a_typed_error() {
        assert!(matches!(
            key(vec![1; 7]),
            Err(AlcoveError::InvalidInput { .. })
        ));
    }
}
