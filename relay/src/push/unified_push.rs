//! UnifiedPush (RFC 8030 Web Push without encryption): an HTTP POST of a
//! fixed body to the device's endpoint. Redirects are never followed (the
//! endpoint is the device's choice, not the server it points to).

use std::time::Duration;

use super::backoff::{retry_after, RetryPolicy};
use super::{give_up, http_client_with, BoxFuture, PushError, PushSender, WAKE_BODY};
use crate::config_file::ConfigError;
use crate::storage::PushTarget;

/// The UnifiedPush specification's largest message.
pub const UNIFIED_PUSH_MAX_MESSAGE: usize = 4096;

#[derive(Clone, Debug)]
pub struct UnifiedPushOptions {
    /// `TTL` header: how long the push server keeps the wake for an
    /// offline device.
    pub ttl: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for UnifiedPushOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(86_400),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

pub struct UnifiedPushSender {
    http: reqwest::Client,
    body: &'static [u8],
    ttl: String,
    retry: RetryPolicy,
}

impl UnifiedPushSender {
    /// The default sender: [`WAKE_BODY`], a day's TTL, default retries.
    pub fn new() -> Result<Self, crate::RelayError> {
        Self::with_options(UnifiedPushOptions::default())
            .map_err(|e| crate::RelayError::Internal(e.to_string()))
    }

    pub fn with_options(opts: UnifiedPushOptions) -> Result<Self, ConfigError> {
        Self::with_body(WAKE_BODY, opts)
    }

    /// A sender posting `body` (the same bytes every time). A body over the
    /// specification's 4096 bytes is refused here, before anything is sent.
    pub fn with_body(body: &'static [u8], opts: UnifiedPushOptions) -> Result<Self, ConfigError> {
        if body.len() > UNIFIED_PUSH_MAX_MESSAGE {
            return Err(ConfigError::Invalid(format!(
                "UnifiedPush message of {} bytes exceeds {UNIFIED_PUSH_MAX_MESSAGE}",
                body.len()
            )));
        }
        let http = http_client_with(None, false, opts.timeout)?;
        Ok(Self {
            http,
            body,
            ttl: opts.ttl.as_secs().to_string(),
            retry: opts.retry,
        })
    }

    async fn send(&self, endpoint: &str) -> Result<(), PushError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let resp = self
                .http
                .post(endpoint)
                .header("TTL", &self.ttl)
                .header("Urgency", "high")
                .header("Content-Type", "application/octet-stream")
                .body(self.body)
                .send()
                .await;
            let (status, wait) = match resp {
                Ok(r) => {
                    let status = r.status().as_u16();
                    match status {
                        200..=299 => return Ok(()),
                        404 | 410 => return Err(PushError::Gone),
                        413 => return Err(PushError::TooLarge),
                        429 | 500..=599 => (status, retry_after(r.headers())),
                        // Includes 3xx: redirects are not followed.
                        _ => return Err(PushError::Failed(format!("UnifiedPush HTTP {status}"))),
                    }
                }
                Err(_) => (0, None),
            };
            match self.retry.next_delay(attempt, wait) {
                Some(d) => {
                    tracing::debug!(status, attempt, "UnifiedPush busy; retrying");
                    tokio::time::sleep(d).await;
                }
                None => return Err(give_up("UnifiedPush", status)),
            }
        }
    }
}

impl PushSender for UnifiedPushSender {
    fn wake<'a>(&'a self, target: &'a PushTarget) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            if target.kind != alcove_proto::relay::push_registration::Kind::UnifiedPush as i32 {
                return Err(PushError::Unsupported);
            }
            self.send(&target.endpoint).await
        })
    }
}
