//! UnifiedPush (RFC 8030 Web Push without encryption): an HTTP POST of a
//! fixed body to the device's endpoint. Redirects are never followed (the
//! endpoint is the device's choice, not the server it points to), only
//! public addresses are dialled (target_guard.rs) and every attempt is
//! paid for from a budget (budget.rs).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::backoff::{retry_after, RetryPolicy};
use super::budget::{Budget, BudgetPolicy};
use super::target_guard::{literal_allowed, refused_by_guard, GuardedResolver};
use super::{give_up, BoxFuture, PushError, PushSender, WAKE_BODY};
use crate::config_error::ConfigError;
use crate::storage::PushTarget;

/// The UnifiedPush specification's largest message.
pub const UNIFIED_PUSH_MAX_MESSAGE: usize = 4096;

#[derive(Clone)]
pub struct UnifiedPushOptions {
    /// `TTL` header: how long the push server keeps the wake for an
    /// offline device.
    pub ttl: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Bounds on attempts per endpoint and retries per account and in all.
    pub budget: BudgetPolicy,
    /// Whether `localhost` and loopback addresses may be dialled: for a
    /// relay on loopback (tests, the demo). Every other non-public address
    /// is refused regardless, and any name other than `localhost` that
    /// resolves to loopback too.
    pub loopback: bool,
    /// Answers DNS questions instead of the system resolver (tests); its
    /// answers are filtered like the system's.
    pub resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
}

impl Default for UnifiedPushOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(86_400),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            budget: BudgetPolicy::default(),
            loopback: false,
            resolver: None,
        }
    }
}

impl std::fmt::Debug for UnifiedPushOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnifiedPushOptions")
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("budget", &self.budget)
            .field("loopback", &self.loopback)
            .field("resolver", &self.resolver.as_ref().map(|_| "custom"))
            .finish()
    }
}

pub struct UnifiedPushSender {
    http: reqwest::Client,
    body: &'static [u8],
    ttl: String,
    retry: RetryPolicy,
    budget: Budget,
    loopback: bool,
}

impl UnifiedPushSender {
    /// The default sender: [`WAKE_BODY`], a day's TTL, default retries,
    /// public addresses only.
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
        let resolver = GuardedResolver::new(opts.resolver.clone(), opts.loopback);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the host itself, past the guard.
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .connect_timeout(Duration::from_secs(5))
            .timeout(opts.timeout)
            .pool_idle_timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| ConfigError::Invalid(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            body,
            ttl: opts.ttl.as_secs().to_string(),
            retry: opts.retry,
            budget: Budget::new(&opts.budget),
            loopback: opts.loopback,
        })
    }

    /// The endpoint as a URL the relay may dial, or why not. Registration
    /// checked it too; this catches rows stored before that check and
    /// URLs naming an address (which never reach the resolver).
    fn dialable(&self, endpoint: &str) -> Result<reqwest::Url, PushError> {
        let url = reqwest::Url::parse(endpoint).map_err(|_| PushError::Refused)?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(PushError::Refused);
        }
        let literal: Option<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(ip.into()),
            Some(url::Host::Ipv6(ip)) => Some(ip.into()),
            Some(url::Host::Domain(_)) => None,
            None => return Err(PushError::Refused),
        };
        match literal {
            Some(ip) if !literal_allowed(ip, self.loopback) => Err(PushError::Refused),
            _ => Ok(url),
        }
    }

    async fn send(&self, endpoint: &str) -> Result<(), PushError> {
        let url = self.dialable(endpoint)?;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if !self.budget.allow(endpoint, attempt) {
                tracing::debug!(attempt, "UnifiedPush budget spent; giving up");
                return Err(PushError::RateLimited);
            }
            let resp = self
                .http
                .post(url.clone())
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
                Err(e) if refused_by_guard(&e) => return Err(PushError::Refused),
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
