//! alcove-ffi: the UniFFI surface over alcove-core. A thin, typed facade:
//! it converts types and catches panics; all logic lives in the core.
//! Kotlin and Swift bindings are generated from this library (library mode).
#![forbid(unsafe_code)]

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use alcove_core as core;
use futures_util::FutureExt;

mod events;

use events::Listeners;
pub use events::{AlcoveEvent, AlcoveListener, ListenerHandle};

uniffi::setup_scaffolding!();

/// Every error the shells can see; a sealed exception hierarchy in Kotlin,
/// an `Error` enum in Swift. Carries opaque ids only.
#[derive(Debug, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum AlcoveError {
    #[error("wrong database key")]
    WrongKey,
    #[error("database is corrupt or was tampered with")]
    Corrupt,
    #[error("storage is full")]
    StorageFull,
    #[error("no account in this database")]
    NoAccount,
    #[error("the client is locked; unlock with the key first")]
    ClientLocked,
    #[error("network: {reason}")]
    Network { reason: String },
    #[error("the relay refused this device's credentials")]
    Unauthorized,
    #[error("invite is invalid or already used")]
    InvalidInvite,
    #[error("identity of {account_id} changed; verify and accept before sending")]
    IdentityChanged { account_id: String },
    #[error("no session with {account_id}")]
    NoSession { account_id: String },
    #[error("another process is syncing this account")]
    Busy,
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    #[error("relay refused: HTTP {status}")]
    Relay { status: u16, code: String },
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

/// A fixed reason for each core error that keeps a free-text payload. The
/// payloads of `Storage`, `Network`, `Decrypt`, ... are a dependency's
/// `to_string()` (SQL values, URLs with account ids, addresses), so they
/// never cross the FFI; this match has no wildcard, so a new core variant
/// must be given its `&'static str` here before the crate builds.
fn reason(e: &core::Error) -> &'static str {
    use core::Error as E;
    match e {
        E::WrongKey => "wrong_key",
        E::Corrupt => "corrupt",
        E::StorageFull => "storage_full",
        E::SchemaTooNew { .. } => "schema_too_new",
        E::Storage(_) => "storage",
        E::NoAccount => "no_account",
        E::AccountExists => "account_exists",
        E::Malformed(m) => m,
        E::UnsupportedContentVersion { .. } => "unsupported_content_version",
        E::UnknownContent => "unknown_content",
        E::DuplicateEnvelope => "duplicate_envelope",
        E::DuplicateMessage => "duplicate_message",
        E::IdentityChanged { .. } => "identity_changed",
        E::NoSession { .. } => "no_session",
        E::Decrypt(_) => "decrypt",
        E::InvalidBundle(_) => "invalid_bundle",
        E::PrekeyRotationOverdue => "prekey_rotation_overdue",
        E::InvalidSenderCertificate => "invalid_sender_certificate",
        E::SenderCertificateExpired => "sender_certificate_expired",
        E::SealedSenderSelfSend => "sealed_sender_self_send",
        E::SafetyNumberMismatch => "safety_number_mismatch",
        E::Network(_) => "network",
        E::Unauthorized => "unauthorized",
        E::InvalidInvite => "invalid_invite",
        E::MailboxBusy => "mailbox_busy",
        E::Locked => "locked",
        E::Relay { .. } => "relay",
        E::InvalidArgument(_) => "invalid_argument",
        E::Internal(_) => "internal",
    }
}

impl From<core::Error> for AlcoveError {
    fn from(e: core::Error) -> Self {
        use core::Error as E;
        let reason = reason(&e).to_owned();
        match e {
            E::WrongKey => Self::WrongKey,
            E::Corrupt => Self::Corrupt,
            E::StorageFull => Self::StorageFull,
            E::NoAccount => Self::NoAccount,
            E::Network(_) => Self::Network { reason },
            E::Unauthorized => Self::Unauthorized,
            E::InvalidInvite => Self::InvalidInvite,
            E::IdentityChanged { account_id } => Self::IdentityChanged { account_id },
            E::NoSession { account_id, .. } => Self::NoSession { account_id },
            E::Locked | E::MailboxBusy => Self::Busy,
            E::Relay { status, code } => Self::Relay { status, code },
            // Per-envelope sealed-sender refusals are counted as failed by
            // sync, never returned by a call; mapped for completeness.
            E::Malformed(_)
            | E::InvalidArgument(_)
            | E::InvalidSenderCertificate
            | E::SenderCertificateExpired
            | E::SealedSenderSelfSend => Self::InvalidInput { reason },
            _ => Self::Internal { reason },
        }
    }
}

type Result<T> = std::result::Result<T, AlcoveError>;

fn panic_error() -> AlcoveError {
    AlcoveError::Internal {
        reason: "panic inside alcove".into(),
    }
}

/// Runs `f`; a panic becomes `AlcoveError::Internal`, never an abort or a
/// foreign exception.
fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panic_error()))
}

async fn guard_async<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    AssertUnwindSafe(f)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(panic_error()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum NotificationPrivacy {
    Hidden,
    Pseudonym,
    FullPreview,
}

/// Where a message stands, as the core records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageStatus {
    /// Stored locally; not yet accepted by the relay.
    Sending,
    /// Accepted by the relay.
    Sent,
    Delivered,
    Read,
    /// Could not be sent (recipient gone); shown as failed.
    Failed,
    /// An incoming message.
    Received,
}

impl From<core::MessageStatus> for MessageStatus {
    fn from(s: core::MessageStatus) -> Self {
        match s {
            core::MessageStatus::Sending => Self::Sending,
            core::MessageStatus::Sent => Self::Sent,
            core::MessageStatus::Delivered => Self::Delivered,
            core::MessageStatus::Read => Self::Read,
            core::MessageStatus::Failed => Self::Failed,
            core::MessageStatus::Received => Self::Received,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Notification {
    pub title: String,
    pub body: String,
    pub message_row: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    pub received: u32,
    pub failed: u32,
    pub more: bool,
    pub sent: u32,
    pub notifications: Vec<Notification>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Message {
    pub row: i64,
    pub remote_account: String,
    pub outgoing: bool,
    pub body: String,
    pub sent_at: u64,
    pub status: MessageStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Conversation {
    pub remote_account: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SafetyNumber {
    pub display: String,
    pub scannable: Vec<u8>,
}

/// Where the relay sends this device's content-free wake-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PushKind {
    /// `token` is the distributor's endpoint URL.
    UnifiedPush,
    /// `token` is the APNs device token (hex).
    Apns,
    /// `token` is the FCM registration token.
    Fcm,
}

/// Takes a key the shell passed in: the FFI's copy is zeroized when this
/// returns, whatever the outcome.
fn key(bytes: Vec<u8>) -> Result<core::DbKey> {
    let bytes = zeroize::Zeroizing::new(bytes);
    Ok(core::DbKey::from_slice(&bytes)?)
}

/// One account on this device. `lock()` closes the database and drops the
/// key from memory; `unlock(key)` reopens it.
#[derive(uniffi::Object)]
pub struct AlcoveClient {
    db_path: PathBuf,
    relay_url: String,
    inner: RwLock<Option<Arc<core::Client>>>,
    /// Outlives lock/unlock: listeners stay registered while locked.
    listeners: Arc<Listeners>,
}

impl AlcoveClient {
    fn client(&self) -> Result<Arc<core::Client>> {
        self.inner
            .read()
            .map_err(|_| panic_error())?
            .clone()
            .ok_or(AlcoveError::ClientLocked)
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
            let client = core::Client::open(db_path.as_ref(), &k, &relay_url)?;
            Ok(Arc::new(Self {
                db_path: db_path.into(),
                relay_url,
                inner: RwLock::new(Some(Arc::new(client))),
                listeners: Arc::default(),
            }))
        })
    }

    /// Creates an account and registers it with a one-time invite.
    /// `shared_container` (iOS: a file in the app group shared with the
    /// NSE) keeps SQLite's 32-byte header in plain text so iOS does not
    /// kill a suspended process holding its lock; later opens need no flag.
    #[uniffi::constructor(default(shared_container = false))]
    pub async fn enroll(
        db_path: String,
        key: Vec<u8>,
        relay_url: String,
        invite: String,
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
                core::Client::enroll_with(db_path.as_ref(), &k, &relay_url, &invite, layout)
                    .await?;
            Ok(Arc::new(Self {
                db_path: db_path.into(),
                relay_url,
                inner: RwLock::new(Some(Arc::new(client))),
                listeners: Arc::default(),
            }))
        })
        .await
    }

    pub fn account_id(&self) -> Result<String> {
        guard(|| Ok(self.client()?.account_id().to_owned()))
    }

    /// Our identity key (for the invite card the other side pins).
    pub fn identity_key(&self) -> Result<Vec<u8>> {
        guard(|| Ok(self.client()?.account()?.identity_key()))
    }

    /// Trusts `identity_key` for `remote_account` as verified (from an invite card).
    pub fn pin_identity(&self, remote_account: String, identity_key: Vec<u8>) -> Result<()> {
        guard(|| {
            Ok(self
                .client()?
                .account()?
                .pin_identity(&remote_account, &identity_key)?)
        })
    }

    /// Stores and sends a text; returns its local row. A relay that cannot
    /// be reached leaves it queued (sent later by `sync`).
    /// `IdentityChanged`: the text is kept and goes once the change is
    /// accepted; listeners get the same news as an event.
    pub async fn send_text(&self, remote_account: String, text: String) -> Result<i64> {
        let result = guard_async(async {
            let client = self.client()?;
            Ok(client.send_text(&remote_account, &text).await?.message_row)
        })
        .await;
        if let Err(AlcoveError::IdentityChanged { account_id }) = &result {
            self.listeners
                .deliver(vec![core::SyncEvent::IdentityChanged {
                    remote_account: account_id.clone(),
                }]);
        }
        result
    }

    /// Registers a listener for events of later `sync`/`send_text` calls.
    /// It stays registered until the returned handle is cancelled or
    /// dropped.
    pub fn set_listener(&self, listener: Arc<dyn AlcoveListener>) -> Arc<ListenerHandle> {
        self.listeners.add(listener)
    }

    /// Tells the relay where to send wake-ups (call from the platform's
    /// new-token callback, and after enrolment).
    pub async fn register_push(&self, kind: PushKind, token: String) -> Result<()> {
        use core::proto::relay::{push_registration::Kind, PushRegistration};
        guard_async(async {
            let kind = match kind {
                PushKind::UnifiedPush => Kind::UnifiedPush,
                PushKind::Apns => Kind::Apns,
                PushKind::Fcm => Kind::Fcm,
            };
            let reg = PushRegistration {
                kind: kind as i32,
                endpoint: token,
            };
            Ok(self.client()?.register_push(reg).await?)
        })
        .await
    }

    /// The push entry point: sync until `deadline_ms` from now.
    /// Listeners get the sync's events after it returns.
    pub async fn sync(&self, deadline_ms: u64) -> Result<SyncReport> {
        let (report, events) = guard_async(async {
            let client = self.client()?;
            let mut r = client
                .sync(Instant::now() + Duration::from_millis(deadline_ms))
                .await?;
            let events = std::mem::take(&mut r.events);
            let report = SyncReport {
                received: r.received,
                failed: r.failed,
                more: r.more,
                sent: r.sent,
                notifications: r
                    .notifications
                    .into_iter()
                    .map(|n| Notification {
                        title: n.title,
                        body: n.body,
                        message_row: n.message_row,
                    })
                    .collect(),
            };
            Ok((report, events))
        })
        .await?;
        self.listeners.deliver(events);
        Ok(report)
    }

    pub fn conversations(&self) -> Result<Vec<Conversation>> {
        guard(|| {
            Ok(self
                .client()?
                .account()?
                .conversations()?
                .into_iter()
                .map(|c| Conversation {
                    remote_account: c.remote_account,
                    display_name: c.display_name,
                })
                .collect())
        })
    }

    /// A page of messages, newest first, older than `before` (a row).
    pub fn messages(
        &self,
        remote_account: String,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        guard(|| {
            Ok(self
                .client()?
                .account()?
                .messages(&remote_account, before, limit)?
                .into_iter()
                .map(|m| Message {
                    row: m.id,
                    remote_account: m.remote_account,
                    outgoing: m.outgoing,
                    body: m.body,
                    sent_at: m.sent_at,
                    status: m.status.into(),
                })
                .collect())
        })
    }

    pub fn set_notification_privacy(&self, privacy: NotificationPrivacy) -> Result<()> {
        guard(|| {
            let p = match privacy {
                NotificationPrivacy::Hidden => core::NotificationPrivacy::Hidden,
                NotificationPrivacy::Pseudonym => core::NotificationPrivacy::Pseudonym,
                NotificationPrivacy::FullPreview => core::NotificationPrivacy::FullPreview,
            };
            Ok(self.client()?.account()?.set_notification_privacy(p)?)
        })
    }

    pub fn safety_number(&self, remote_account: String) -> Result<SafetyNumber> {
        guard(|| {
            let s = self.client()?.account()?.safety_number(&remote_account)?;
            Ok(SafetyNumber {
                display: s.display,
                scannable: s.scannable,
            })
        })
    }

    pub fn accept_identity_change(&self, remote_account: String) -> Result<()> {
        guard(|| {
            Ok(self
                .client()?
                .account()?
                .accept_identity_change(&remote_account)?)
        })
    }

    /// Closes the database and drops the key (auto-lock, app backgrounded).
    pub fn lock(&self) -> Result<()> {
        guard(|| {
            let taken = self.inner.write().map_err(|_| panic_error())?.take();
            if let Some(client) = taken {
                let _ = client.account().map(|a| a.checkpoint());
            }
            Ok(())
        })
    }

    pub fn is_locked(&self) -> bool {
        self.inner.read().map(|g| g.is_none()).unwrap_or(true)
    }

    /// Reopens the database with its key.
    pub fn unlock(&self, key: Vec<u8>) -> Result<()> {
        guard(|| {
            let k = self::key(key)?;
            let client = core::Client::open(&self.db_path, &k, &self.relay_url)?;
            *self.inner.write().map_err(|_| panic_error())? = Some(Arc::new(client));
            Ok(())
        })
    }
}

/// A fresh random 32-byte database key, for shells that have none yet
/// (store it in the Keystore / Keychain at once).
#[uniffi::export]
pub fn generate_database_key() -> Vec<u8> {
    core::random_bytes(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every core variant that carries a dependency's text, built with
    /// payloads that look like personal data: none of it may reach the
    /// FFI error's Display or fields.
    #[test]
    fn core_error_payloads_never_cross_the_ffi() {
        let secret = "https://relay.example/v1/acct-7f3a9c/devices?phone=+15551234567";
        let errors = [
            alcove_core::Error::Storage(format!("UNIQUE failed: contacts.name = '{secret}'")),
            alcove_core::Error::Network(format!("error sending request for url ({secret})")),
            alcove_core::Error::Decrypt(format!("invalid message from {secret}.1")),
            alcove_core::Error::InvalidBundle(format!("bad key for {secret}")),
            alcove_core::Error::InvalidArgument(format!("not an account: {secret}")),
            alcove_core::Error::Internal(format!("panic at {secret}")),
            alcove_core::Error::SchemaTooNew {
                found: 9,
                supported: 1,
            },
            alcove_core::Error::InvalidSenderCertificate,
        ];
        for e in errors {
            let ffi = AlcoveError::from(e.clone());
            let shown = format!("{ffi} {ffi:?}");
            for needle in [
                "acct-7f3a9c",
                "5551234567",
                "relay.example",
                "contacts.name",
            ] {
                assert!(!shown.contains(needle), "{e:?} leaked {needle}: {shown}");
            }
            assert!(!shown.is_empty());
        }
    }

    #[test]
    fn message_status_maps_each_core_state() {
        use alcove_core::MessageStatus as S;
        let all = [
            S::Sending,
            S::Sent,
            S::Delivered,
            S::Read,
            S::Failed,
            S::Received,
        ];
        let mapped: Vec<MessageStatus> = all.into_iter().map(Into::into).collect();
        assert_eq!(
            mapped,
            [
                MessageStatus::Sending,
                MessageStatus::Sent,
                MessageStatus::Delivered,
                MessageStatus::Read,
                MessageStatus::Failed,
                MessageStatus::Received,
            ]
        );
    }

    #[test]
    fn short_key_is_a_typed_error() {
        assert!(matches!(
            key(vec![1; 7]),
            Err(AlcoveError::InvalidInput { .. })
        ));
    }
}
