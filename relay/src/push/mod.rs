//! Waking devices. A push carries nothing: no content, no sender, no
//! conversation, no count — the same bytes every time, per provider —
//! because whatever is in it is visible to the push provider. Bursts are
//! coalesced: at most one wake per device per window, plus one trailing
//! wake so mail that lands just after a wake is not stranded.
//!
//! [`PushGateway`] routes each target to its provider: UnifiedPush always,
//! APNs and FCM when configured.

mod apns;
mod backoff;
mod budget;
mod fcm;
pub(crate) mod target_guard;
mod unified_push;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use alcove_proto::relay::push_registration::Kind;

pub use apns::{
    valid_apns_token, ApnsOptions, ApnsSender, APNS_BODY, APNS_PRODUCTION, APNS_SANDBOX,
};
pub use backoff::RetryPolicy;
pub use budget::BudgetPolicy;
pub use fcm::{valid_fcm_token, FcmOptions, FcmSender, ServiceAccount, FCM_PRODUCTION};
pub use target_guard::{check_endpoint, is_public_unicast, EndpointRefused};
pub use unified_push::{UnifiedPushOptions, UnifiedPushSender, UNIFIED_PUSH_MAX_MESSAGE};

use crate::config_error::ConfigError;
use crate::storage::{PushTarget, Storage};
use crate::wake::Wake;

/// The body of every UnifiedPush wake-up.
pub const WAKE_BODY: &[u8] = b"wake";

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The provider says the token/endpoint no longer exists: drop it.
    #[error("push target is gone")]
    Gone,
    #[error("push provider rate-limited us")]
    RateLimited,
    #[error("push message too large for the provider")]
    TooLarge,
    #[error("push failed: {0}")]
    Failed(String),
    #[error("no sender configured for this push kind")]
    Unsupported,
    /// The endpoint is not a public address (or resolves to none): never
    /// dialled.
    #[error("push target refused: not a public address")]
    Refused,
}

/// Sends one wake-up to one device's push target.
pub trait PushSender: Send + Sync + 'static {
    fn wake<'a>(&'a self, target: &'a PushTarget) -> BoxFuture<'a, Result<(), PushError>>;
}

/// The error after the last attempt.
pub(crate) fn give_up(provider: &str, status: u16) -> PushError {
    match status {
        429 => PushError::RateLimited,
        0 => PushError::Failed(format!("{provider} unreachable")),
        s => PushError::Failed(format!("{provider} HTTP {s}")),
    }
}

pub(crate) fn http_client(
    ca_pem: Option<&[u8]>,
    h2_only: bool,
) -> Result<reqwest::Client, ConfigError> {
    http_client_with(ca_pem, h2_only, Duration::from_secs(10))
}

/// A client that never follows redirects, optionally trusting one extra
/// root (test servers) and speaking only HTTP/2 (APNs).
pub(crate) fn http_client_with(
    ca_pem: Option<&[u8]>,
    h2_only: bool,
    timeout: Duration,
) -> Result<reqwest::Client, ConfigError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(600));
    if h2_only {
        b = b.http2_prior_knowledge();
    }
    if let Some(pem) = ca_pem {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| ConfigError::Invalid(format!("ca_file: {e}")))?;
        b = b.add_root_certificate(cert);
    }
    b.build()
        .map_err(|e| ConfigError::Invalid(format!("HTTP client: {e}")))
}

/// Routes each wake to the provider of its target's kind.
pub struct PushGateway {
    unified_push: UnifiedPushSender,
    apns: Option<ApnsSender>,
    fcm: Option<FcmSender>,
}

impl PushGateway {
    pub fn new(
        unified_push: UnifiedPushSender,
        apns: Option<ApnsSender>,
        fcm: Option<FcmSender>,
    ) -> Self {
        Self {
            unified_push,
            apns,
            fcm,
        }
    }
}

impl PushSender for PushGateway {
    fn wake<'a>(&'a self, target: &'a PushTarget) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            let sender: Option<&dyn PushSender> = match Kind::try_from(target.kind) {
                Ok(Kind::UnifiedPush) => Some(&self.unified_push),
                Ok(Kind::Apns) => self.apns.as_ref().map(|s| s as &dyn PushSender),
                Ok(Kind::Fcm) => self.fcm.as_ref().map(|s| s as &dyn PushSender),
                _ => None,
            };
            match sender {
                Some(s) => s.wake(target).await,
                None => {
                    // The kind only: never the account, device token or endpoint.
                    tracing::warn!(
                        kind = target.kind,
                        "no push provider configured for this kind"
                    );
                    Err(PushError::Unsupported)
                }
            }
        })
    }
}

/// The default push sender of a relay on loopback (tests, the demo):
/// UnifiedPush only (APNs and FCM need credentials, see
/// [`push_sender_from_config`]), which may dial `localhost`. A relay off
/// loopback refuses loopback endpoints before they reach the sender.
pub fn default_push_sender() -> Result<Arc<dyn PushSender>, crate::RelayError> {
    let sender = UnifiedPushSender::with_options(UnifiedPushOptions {
        loopback: true,
        ..UnifiedPushOptions::default()
    })
    .map_err(|e| crate::RelayError::Internal(e.to_string()))?;
    Ok(Arc::new(sender))
}

#[derive(Default)]
struct DeviceState {
    last: Option<Instant>,
    trailing_scheduled: bool,
}

/// The in-process [`Wake`]: looks up the device's push target and sends
/// one content-free push, at most one per device per coalescing window
/// plus one trailing wake so mail that lands just after a wake is not
/// stranded.
pub(crate) struct Dispatcher {
    /// Itself, for the tasks a wake spawns.
    this: Weak<Dispatcher>,
    sender: Arc<dyn PushSender>,
    storage: Arc<dyn Storage>,
    window: Duration,
    clock: crate::clock::Clock,
    /// The relay serves plain HTTP on loopback: loopback endpoints allowed.
    loopback: bool,
    state: Mutex<HashMap<(String, u32), DeviceState>>,
}

impl Dispatcher {
    pub(crate) fn new(
        sender: Arc<dyn PushSender>,
        storage: Arc<dyn Storage>,
        window: Duration,
        clock: crate::clock::Clock,
        loopback: bool,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            this: this.clone(),
            sender,
            storage,
            window,
            clock,
            loopback,
            state: Mutex::new(HashMap::new()),
        })
    }
}

impl Wake for Dispatcher {
    /// Mail landed for a device: wake it now, or once at the end of the
    /// current coalescing window.
    fn wake(&self, account_id: &str, device_id: u32) {
        let Some(this) = self.this.upgrade() else {
            return;
        };
        let key = (account_id.to_owned(), device_id);
        let delay = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            let s = state.entry(key.clone()).or_default();
            let now = Instant::now();
            match s.last {
                Some(last) if now.duration_since(last) < self.window => {
                    if s.trailing_scheduled {
                        return;
                    }
                    s.trailing_scheduled = true;
                    Some(self.window - now.duration_since(last))
                }
                _ => {
                    s.last = Some(now);
                    None
                }
            }
        };
        tokio::spawn(async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
                if let Ok(mut state) = this.state.lock() {
                    let s = state.entry(key.clone()).or_default();
                    s.trailing_scheduled = false;
                    s.last = Some(Instant::now());
                }
            }
            this.send(&key.0, key.1).await;
        });
    }
}

impl Dispatcher {
    pub(crate) async fn send(&self, account_id: &str, device_id: u32) {
        let now = (self.clock)();
        let looked_up = async {
            let target = self.storage.push_target(account_id, device_id).await?;
            let busy = self
                .storage
                .reader_active(account_id, device_id, now)
                .await?;
            Ok::<_, crate::storage::StorageError>((target, busy))
        }
        .await;
        let (target, busy) = match looked_up {
            Ok(v) => v,
            Err(_) => return,
        };
        let Some(target) = target.filter(|_| !busy) else {
            // Nothing was sent (no target, or the device is syncing and will
            // be woken when it releases its reader if mail is left): do not
            // let this count against the coalescing window.
            if let Ok(mut state) = self.state.lock() {
                if let Some(s) = state.get_mut(&(account_id.to_owned(), device_id)) {
                    s.last = None;
                }
            }
            return;
        };
        // The registration rules again, for rows stored before them or
        // while the relay ran in loopback mode.
        let unified = target.kind == Kind::UnifiedPush as i32;
        let result = if unified && check_endpoint(&target.endpoint, self.loopback).is_err() {
            Err(PushError::Refused)
        } else {
            // Retries count against the account's budget (budget.rs).
            budget::for_account(account_id, self.sender.wake(&target)).await
        };
        match result {
            Ok(()) => tracing::debug!(device = device_id, "wake-up sent"),
            Err(e @ (PushError::Gone | PushError::Refused)) => {
                tracing::info!(device = device_id, reason = %e, "push target dropped");
                let _ = self
                    .storage
                    .drop_push(account_id, device_id, &target.endpoint)
                    .await;
            }
            Err(e) => tracing::warn!(device = device_id, error = %e, "wake-up failed"),
        }
    }
}
