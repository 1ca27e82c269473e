//! Waking devices. A push carries nothing: no content, no sender, no
//! conversation, no count — the same bytes every time — because whatever
//! is in it is visible to the push provider. Bursts are coalesced: at most
//! one wake per device per window, plus one trailing wake so mail that
//! lands just after a wake is not stranded.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::storage::{PushTarget, Storage};

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
    #[error("push failed: {0}")]
    Failed(String),
    #[error("no sender configured for this push kind")]
    Unsupported,
}

/// Sends one wake-up to one device's push target.
pub trait PushSender: Send + Sync + 'static {
    fn wake<'a>(&'a self, target: &'a PushTarget) -> BoxFuture<'a, Result<(), PushError>>;
}

/// UnifiedPush: an HTTP POST of a fixed body to the device's endpoint.
pub struct UnifiedPushSender {
    http: reqwest::Client,
}

impl UnifiedPushSender {
    pub fn new() -> Result<Self, crate::RelayError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| crate::RelayError::Internal(e.to_string()))?;
        Ok(Self { http })
    }
}

impl PushSender for UnifiedPushSender {
    fn wake<'a>(&'a self, target: &'a PushTarget) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            if target.kind != alcove_proto::relay::push_registration::Kind::UnifiedPush as i32 {
                return Err(PushError::Unsupported);
            }
            let resp = self
                .http
                .post(&target.endpoint)
                .header("TTL", "86400")
                .header("Urgency", "high")
                .header("Content-Type", "application/octet-stream")
                .body(WAKE_BODY)
                .send()
                .await
                .map_err(|e| {
                    PushError::Failed(if e.is_timeout() {
                        "timeout".into()
                    } else {
                        "connect".into()
                    })
                })?;
            match resp.status().as_u16() {
                200..=299 => Ok(()),
                404 | 410 => Err(PushError::Gone),
                429 => Err(PushError::RateLimited),
                s => Err(PushError::Failed(format!("HTTP {s}"))),
            }
        })
    }
}

/// The relay's default push sender: UnifiedPush (APNs and FCM clients are
/// configured separately).
pub fn default_push_sender() -> Result<Arc<dyn PushSender>, crate::RelayError> {
    Ok(Arc::new(UnifiedPushSender::new()?))
}

#[derive(Default)]
struct DeviceState {
    last: Option<Instant>,
    trailing_scheduled: bool,
}

pub(crate) struct Dispatcher {
    sender: Arc<dyn PushSender>,
    storage: Arc<dyn Storage>,
    window: Duration,
    clock: crate::config::Clock,
    state: Mutex<HashMap<(String, u32), DeviceState>>,
}

impl Dispatcher {
    pub(crate) fn new(
        sender: Arc<dyn PushSender>,
        storage: Arc<dyn Storage>,
        window: Duration,
        clock: crate::config::Clock,
    ) -> Arc<Self> {
        Arc::new(Self {
            sender,
            storage,
            window,
            clock,
            state: Mutex::new(HashMap::new()),
        })
    }

    /// Mail landed for a device: wake it now, or once at the end of the
    /// current coalescing window.
    pub(crate) fn request(self: &Arc<Self>, account_id: &str, device_id: u32) {
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
        let this = Arc::clone(self);
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

    async fn send(&self, account_id: &str, device_id: u32) {
        let storage = Arc::clone(&self.storage);
        let (a, now) = (account_id.to_owned(), (self.clock)());
        let looked_up = tokio::task::spawn_blocking(move || {
            let target = storage.push_target(&a, device_id)?;
            let busy = storage.reader_active(&a, device_id, now)?;
            Ok::<_, crate::storage::StorageError>((target, busy))
        })
        .await;
        let (target, busy) = match looked_up {
            Ok(Ok(v)) => v,
            _ => return,
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
        match self.sender.wake(&target).await {
            Ok(()) => tracing::debug!(device = device_id, "wake-up sent"),
            Err(PushError::Gone) => {
                tracing::info!(device = device_id, "push target gone; dropped");
                let storage = Arc::clone(&self.storage);
                let a = account_id.to_owned();
                let _ = tokio::task::spawn_blocking(move || {
                    storage.drop_push(&a, device_id, &target.endpoint)
                })
                .await;
            }
            Err(e) => tracing::warn!(device = device_id, error = %e, "wake-up failed"),
        }
    }
}
