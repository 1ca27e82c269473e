//! alcove-relay: the server that knows devices, prekeys and mailboxes of
//! ciphertext — never content — and wakes devices with content-free pushes.
//! See API.md for the HTTP API.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod acks;
mod api;
mod auth;
mod clock;
mod config;
mod config_error;
mod config_file;
mod connections;
mod error;
pub mod key_checks;
mod limits;
mod mailbox;
mod push;
pub mod rate_limits;
mod sealed_sender;
mod server;
pub mod storage;
mod wake;

use rand::RngCore;

pub use api::{DELIVERY_KEY_HEADER, MAX_KEYS_PER_UPLOAD};
pub use config::{
    system_clock, Clock, InviteConfig, Limits, RelayConfig, SealedSenderConfig, TlsConfig,
};
pub use config_file::{
    load_config, parse_config, push_gateway_from_config, push_sender_from_config, ApnsSettings,
    ConfigError, FcmSettings, FileConfig, InvitesSection, LimitsSection, PushConfig, RelaySection,
    SealedSenderSection, StorageSection, UnifiedPushSettings, POSTGRES_URL_ENV,
};
pub use error::RelayError;
pub use push::{
    check_endpoint, default_push_sender, is_public_unicast, valid_apns_token, valid_fcm_token,
    ApnsOptions, ApnsSender, BoxFuture, BudgetPolicy, EndpointRefused, FcmOptions, FcmSender,
    PushError, PushGateway, PushSender, RetryPolicy, ServiceAccount, UnifiedPushOptions,
    UnifiedPushSender, APNS_BODY, APNS_PRODUCTION, APNS_SANDBOX, FCM_PRODUCTION,
    UNIFIED_PUSH_MAX_MESSAGE, WAKE_BODY,
};
pub use sealed_sender::{
    key_dir as sealed_sender_key_dir, trust_root_public_key, DELIVERY_KEY_LEN,
};
pub use server::{start, start_on_postgres, start_with_storage, RelayHandle};
pub use storage::{
    PostgresStorage, PostgresUrl, PushTarget, Role, SqliteStorage, Storage, StorageConfig,
    StorageError,
};
pub use wake::Wake;

/// How long an invite stays valid unless told otherwise: 14 days.
pub const DEFAULT_INVITE_TTL_MS: u64 = 14 * 24 * 3600 * 1000;

/// Issues a one-time invite token (base64url, 32 random bytes) for an
/// account of `role` through any [`Storage`]; only its hash is stored. It
/// expires after `ttl_ms` ([`DEFAULT_INVITE_TTL_MS`] when `None`): a token
/// that leaks from an old e-mail or a lost printout opens nothing.
pub async fn issue_invite(
    storage: &dyn Storage,
    role: Role,
    now: u64,
    ttl_ms: Option<u64>,
) -> Result<String, StorageError> {
    let token = new_invite_token();
    let expires = now.saturating_add(ttl_ms.unwrap_or(DEFAULT_INVITE_TTL_MS));
    storage
        .create_invite(&auth::hash_invite(&token), role, now, Some(expires))
        .await?;
    Ok(token)
}

/// 32 random bytes, base64url: what a device presents at registration.
pub(crate) fn new_invite_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A client invite: [`create_role_invite`] with [`Role::Client`].
pub fn create_invite(
    storage: impl Into<StorageConfig>,
    ttl_ms: Option<u64>,
) -> Result<String, RelayError> {
    create_role_invite(storage, Role::Client, ttl_ms)
}

/// [`issue_invite`] for the admin command and tests: opens the relay's
/// storage (a path means its SQLite file) and waits for the token. It
/// works from synchronous code and from inside an async runtime alike,
/// running on a thread of its own.
/// Changes an existing account's role on the relay's own database (the
/// practice admin: `alcove relay set-role`). `NotFound` for an unknown
/// account.
pub fn set_account_role(
    storage: impl Into<StorageConfig>,
    account_id: &str,
    role: Role,
) -> Result<(), RelayError> {
    let storage = storage.into();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let opened = storage.open().await?;
                    Ok(opened.set_account_role(account_id, role).await?)
                })
            })
            .join()
            .map_err(|_| RelayError::Internal("set-role thread panicked".into()))?
    })
}

/// Revokes one device of an account on the relay's own database (the
/// practice admin: `alcove relay revoke ACCOUNT --device N`, for a lost
/// phone). Any device may go, the primary and the last one included: its
/// keys and queued mail are deleted at once, and on its next contact the
/// device is told (403 `device_revoked`) and wipes itself. `NotFound` for
/// an unknown account or device (a revoked one included).
pub fn revoke_device(
    storage: impl Into<StorageConfig>,
    account_id: &str,
    device_id: u32,
) -> Result<(), RelayError> {
    let storage = storage.into();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let opened = storage.open().await?;
                    let devices = opened.devices(account_id).await?;
                    if !devices.iter().any(|(d, _)| *d == device_id) {
                        return Err(StorageError::NotFound.into());
                    }
                    let now = (system_clock())();
                    Ok(opened.revoke_device(account_id, device_id, now).await?)
                })
            })
            .join()
            .map_err(|_| RelayError::Internal("revoke thread panicked".into()))?
    })
}

pub fn create_role_invite(
    storage: impl Into<StorageConfig>,
    role: Role,
    ttl_ms: Option<u64>,
) -> Result<String, RelayError> {
    let storage = storage.into();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let opened = storage.open().await?;
                    let now = (system_clock())();
                    Ok(issue_invite(opened.as_ref(), role, now, ttl_ms).await?)
                })
            })
            .join()
            .map_err(|_| RelayError::Internal("invite thread panicked".into()))?
    })
}
