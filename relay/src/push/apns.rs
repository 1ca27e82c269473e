//! APNs: Apple's HTTP/2 provider API with token (JWT) authentication.
//!
//! One ES256 JWT (header `kid`, claims `iss` = team id and `iat`) is reused
//! for every push and re-minted after `jwt_refresh` (Apple accepts a token
//! for 20–60 minutes and refuses one minted more often than every 20).

use std::sync::Mutex;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::backoff::{retry_after, RetryPolicy};
use super::{give_up, http_client, BoxFuture, PushError, PushSender};
use crate::clock::Clock;
use crate::config_error::ConfigError;
use crate::storage::PushTarget;

/// Production gateway.
pub const APNS_PRODUCTION: &str = "https://api.push.apple.com";
/// Development (sandbox) gateway.
pub const APNS_SANDBOX: &str = "https://api.sandbox.push.apple.com";

/// The one body every APNs wake carries: a generic alert that the app's
/// Notification Service Extension replaces after syncing (`mutable-content`).
/// No badge, no thread id, no sound, nothing about the message.
pub const APNS_BODY: &[u8] =
    br#"{"aps":{"alert":{"loc-key":"ALCOVE_NEW_MESSAGE"},"mutable-content":1}}"#;

/// Everything an [`ApnsSender`] needs.
#[derive(Clone)]
pub struct ApnsOptions {
    /// The `.p8` signing key (PKCS#8 PEM, EC P-256).
    pub key_pem: Vec<u8>,
    /// The key's 10-character id (JWT header `kid`).
    pub key_id: String,
    /// The developer team id (JWT claim `iss`).
    pub team_id: String,
    /// The app's bundle id (`apns-topic`).
    pub topic: String,
    /// Base URL: [`APNS_PRODUCTION`], [`APNS_SANDBOX`] or a test server.
    pub endpoint: String,
    /// Extra trusted root certificate (PEM), for test servers only.
    pub ca_pem: Option<Vec<u8>>,
    /// How long APNs keeps trying to deliver (`apns-expiration`).
    pub ttl: Duration,
    /// Re-mint the JWT once it is this old (inside Apple's 20–60 min window).
    pub jwt_refresh: Duration,
    pub retry: RetryPolicy,
    pub clock: Clock,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: u64,
}

#[derive(Deserialize)]
struct Reason {
    reason: String,
}

struct Jwt {
    token: String,
    minted_ms: u64,
}

pub struct ApnsSender {
    http: reqwest::Client,
    key: EncodingKey,
    opts: ApnsOptions,
    jwt: Mutex<Option<Jwt>>,
}

impl ApnsSender {
    pub fn new(opts: ApnsOptions) -> Result<Self, ConfigError> {
        let key = EncodingKey::from_ec_pem(&opts.key_pem)
            .map_err(|e| ConfigError::Invalid(format!("APNs key is not a PKCS#8 EC key: {e}")))?;
        if opts.key_id.is_empty() || opts.team_id.is_empty() || opts.topic.is_empty() {
            return Err(ConfigError::Invalid(
                "APNs key_id, team_id and topic are required".into(),
            ));
        }
        if opts.topic.ends_with(".voip") {
            return Err(ConfigError::Invalid(
                "APNs topic must be the app's bundle id, not a VoIP topic".into(),
            ));
        }
        // APNs speaks HTTP/2 only.
        let http = http_client(opts.ca_pem.as_deref(), true)?;
        let sender = Self {
            http,
            key,
            opts,
            jwt: Mutex::new(None),
        };
        // Fail at start-up, not at the first wake, if the key cannot sign.
        sender
            .mint()
            .map_err(|_| ConfigError::Invalid("APNs key cannot sign an ES256 token".into()))?;
        Ok(sender)
    }

    fn mint(&self) -> Result<Jwt, PushError> {
        let now = (self.opts.clock)();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.opts.key_id.clone());
        let claims = Claims {
            iss: &self.opts.team_id,
            iat: now / 1000,
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|_| PushError::Failed("APNs token signing failed".into()))?;
        Ok(Jwt {
            token,
            minted_ms: now,
        })
    }

    /// The current provider token, minted anew when it is too old or when
    /// APNs refused the one we had (`force`).
    fn token(&self, force: bool) -> Result<String, PushError> {
        let mut slot = self
            .jwt
            .lock()
            .map_err(|_| PushError::Failed("APNs token lock poisoned".into()))?;
        let now = (self.opts.clock)();
        let fresh = slot.as_ref().is_some_and(|j| {
            now.saturating_sub(j.minted_ms) < self.opts.jwt_refresh.as_millis() as u64
        });
        if force || !fresh {
            *slot = Some(self.mint()?);
        }
        slot.as_ref()
            .map(|j| j.token.clone())
            .ok_or_else(|| PushError::Failed("no APNs token".into()))
    }

    async fn send(&self, token: &str) -> Result<(), PushError> {
        let url = format!(
            "{}/3/device/{}",
            self.opts.endpoint.trim_end_matches('/'),
            token
        );
        let mut attempt = 0u32;
        let mut reauthed = false;
        let mut force = false;
        loop {
            attempt += 1;
            let jwt = self.token(std::mem::take(&mut force))?;
            let expiration = (self.opts.clock)() / 1000 + self.opts.ttl.as_secs();
            let resp = self
                .http
                .post(&url)
                .header("authorization", format!("bearer {jwt}"))
                .header("apns-topic", &self.opts.topic)
                .header("apns-push-type", "alert")
                .header("apns-priority", "10")
                .header("apns-expiration", expiration.to_string())
                .header("content-type", "application/json")
                .body(APNS_BODY)
                .send()
                .await;
            let (status, wait) = match resp {
                Ok(r) => {
                    let status = r.status().as_u16();
                    if (200..300).contains(&status) {
                        return Ok(());
                    }
                    let wait = retry_after(r.headers());
                    let reason = r
                        .bytes()
                        .await
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Reason>(&b).ok())
                        .map(|r| r.reason)
                        .unwrap_or_default();
                    match (status, reason.as_str()) {
                        (410, _) | (400, "BadDeviceToken") | (400, "DeviceTokenNotForTopic") => {
                            return Err(PushError::Gone)
                        }
                        (403, "ExpiredProviderToken") | (403, "InvalidProviderToken")
                            if !reauthed =>
                        {
                            reauthed = true;
                            force = true;
                            attempt -= 1; // a re-authentication is not a delivery attempt
                            continue;
                        }
                        (413, _) => return Err(PushError::TooLarge),
                        (429, _) | (500..=599, _) => (status, wait),
                        _ => {
                            return Err(PushError::Failed(format!(
                                "APNs HTTP {status} {}",
                                reason_code(&reason)
                            )))
                        }
                    }
                }
                // Transport failures are retried like a 5xx.
                Err(_) => (0, None),
            };
            match self.opts.retry.next_delay(attempt, wait) {
                Some(d) => {
                    tracing::debug!(status, attempt, "APNs busy; retrying");
                    tokio::time::sleep(d).await;
                }
                None => return Err(give_up("APNs", status)),
            }
        }
    }
}

/// Apple's reason codes are short CamelCase words; anything else is not
/// echoed into logs.
fn reason_code(reason: &str) -> &str {
    if reason.len() <= 40 && reason.chars().all(|c| c.is_ascii_alphanumeric()) {
        reason
    } else {
        ""
    }
}

/// An APNs device token: hex, 32 bytes today, up to 100 bytes allowed.
pub fn valid_apns_token(token: &str) -> bool {
    (64..=200).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_hexdigit())
}

impl PushSender for ApnsSender {
    fn wake<'a>(&'a self, target: &'a PushTarget) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            if !valid_apns_token(&target.endpoint) {
                // Cannot be a real token: drop it rather than send it.
                return Err(PushError::Gone);
            }
            self.send(&target.endpoint).await
        })
    }
}
