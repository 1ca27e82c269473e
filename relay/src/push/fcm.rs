//! FCM HTTP v1: an OAuth2 access token from a service account (RS256 JWT
//! assertion, cached until shortly before it expires), then a high-priority
//! DATA message with one fixed key. No notification block, no collapse key:
//! the app's messaging service wakes, syncs and renders on the device.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::backoff::{retry_after, RetryPolicy};
use super::{give_up, http_client, BoxFuture, PushError, PushSender};
use crate::clock::Clock;
use crate::config_error::ConfigError;
use crate::storage::PushTarget;

/// The FCM send API.
pub const FCM_PRODUCTION: &str = "https://fcm.googleapis.com";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// Refresh the access token this long before the provider says it expires.
const EXPIRY_MARGIN_MS: u64 = 5 * 60 * 1000;

/// The fields of a Google service-account JSON file that FCM needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    pub token_uri: String,
    pub project_id: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

/// Everything an [`FcmSender`] needs.
#[derive(Clone)]
pub struct FcmOptions {
    pub account: ServiceAccount,
    /// Base URL of the send API ([`FCM_PRODUCTION`] or a test server).
    pub endpoint: String,
    /// Overrides the service account's `token_uri` (test servers).
    pub token_uri: Option<String>,
    /// Extra trusted root certificate (PEM), for test servers only.
    pub ca_pem: Option<Vec<u8>>,
    /// How long FCM keeps the message for an offline device.
    pub ttl: Duration,
    pub retry: RetryPolicy,
    pub clock: Clock,
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Serialize)]
struct SendBody<'a> {
    message: Message<'a>,
}

#[derive(Serialize)]
struct Message<'a> {
    token: &'a str,
    data: Data,
    android: Android<'a>,
}

#[derive(Serialize)]
struct Data {
    alcove: &'static str,
}

#[derive(Serialize)]
struct Android<'a> {
    priority: &'static str,
    ttl: &'a str,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorInfo,
}

#[derive(Deserialize, Default)]
struct ErrorInfo {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default, rename = "errorCode")]
    error_code: Option<String>,
    #[serde(default, rename = "fieldViolations")]
    field_violations: Vec<FieldViolation>,
}

#[derive(Deserialize, Default)]
struct FieldViolation {
    #[serde(default)]
    field: String,
}

impl ErrorInfo {
    fn code(&self, name: &str) -> bool {
        self.details
            .iter()
            .any(|d| d.error_code.as_deref() == Some(name))
    }

    /// INVALID_ARGUMENT about the registration token (our own payload is
    /// fixed, so a bad token is the only thing that varies).
    fn bad_token(&self) -> bool {
        self.status == "INVALID_ARGUMENT"
            && (self
                .details
                .iter()
                .flat_map(|d| &d.field_violations)
                .any(|v| v.field == "message.token")
                || self.message.contains("registration token"))
    }
}

/// Why no access token could be had: worth a retry, or not.
enum TokenError {
    Transient(u16, Option<Duration>),
    Fatal(PushError),
}

struct AccessToken {
    token: String,
    expires_ms: u64,
}

pub struct FcmSender {
    http: reqwest::Client,
    key: EncodingKey,
    opts: FcmOptions,
    send_url: String,
    ttl: String,
    // An async lock: concurrent wakes wait for one token request.
    access: tokio::sync::Mutex<Option<AccessToken>>,
}

impl FcmSender {
    pub fn new(opts: FcmOptions) -> Result<Self, ConfigError> {
        let key = EncodingKey::from_rsa_pem(opts.account.private_key.as_bytes()).map_err(|e| {
            ConfigError::Invalid(format!("FCM service account private_key is not RSA: {e}"))
        })?;
        let pid = &opts.account.project_id;
        if pid.is_empty()
            || !pid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':')
        {
            return Err(ConfigError::Invalid("FCM project_id is invalid".into()));
        }
        if opts.account.client_email.is_empty() {
            return Err(ConfigError::Invalid("FCM client_email is required".into()));
        }
        let http = http_client(opts.ca_pem.as_deref(), false)?;
        let send_url = format!(
            "{}/v1/projects/{}/messages:send",
            opts.endpoint.trim_end_matches('/'),
            pid
        );
        let ttl = format!("{}s", opts.ttl.as_secs());
        Ok(Self {
            http,
            key,
            opts,
            send_url,
            ttl,
            access: tokio::sync::Mutex::new(None),
        })
    }

    fn token_uri(&self) -> &str {
        self.opts
            .token_uri
            .as_deref()
            .unwrap_or(&self.opts.account.token_uri)
    }

    /// A cached access token, or a new one when it is about to expire or
    /// FCM refused it (`force`).
    async fn access_token(&self, force: bool) -> Result<String, TokenError> {
        let mut slot = self.access.lock().await;
        let now = (self.opts.clock)();
        if let Some(t) = slot.as_ref() {
            if !force && now + EXPIRY_MARGIN_MS < t.expires_ms {
                return Ok(t.token.clone());
            }
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.opts.account.private_key_id.clone();
        let iat = now / 1000;
        let claims = Assertion {
            iss: &self.opts.account.client_email,
            scope: SCOPE,
            aud: self.token_uri(),
            iat,
            exp: iat + 3600,
        };
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|_| PushError::Failed("FCM assertion signing failed".into()))
            .map_err(TokenError::Fatal)?;
        // The assertion is base64url and dots: nothing to percent-encode.
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        let resp = self
            .http
            .post(self.token_uri())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|_| TokenError::Transient(0, None))?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => {}
            429 | 500..=599 => {
                return Err(TokenError::Transient(status, retry_after(resp.headers())))
            }
            _ => {
                return Err(TokenError::Fatal(PushError::Failed(format!(
                    "FCM token endpoint HTTP {status}"
                ))))
            }
        }
        let t: TokenResponse = resp
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                TokenError::Fatal(PushError::Failed("FCM token response malformed".into()))
            })?;
        *slot = Some(AccessToken {
            token: t.access_token.clone(),
            expires_ms: now + t.expires_in * 1000,
        });
        Ok(t.access_token)
    }

    /// The exact bytes sent for `token`: the same for every wake.
    pub fn body(&self, token: &str) -> Result<Vec<u8>, PushError> {
        serde_json::to_vec(&SendBody {
            message: Message {
                token,
                data: Data { alcove: "wake" },
                android: Android {
                    priority: "HIGH",
                    ttl: &self.ttl,
                },
            },
        })
        .map_err(|_| PushError::Failed("FCM body".into()))
    }

    async fn send(&self, token: &str) -> Result<(), PushError> {
        let body = self.body(token)?;
        let mut attempt = 0u32;
        let mut reauthed = false;
        let mut force = false;
        loop {
            attempt += 1;
            let access = match self.access_token(std::mem::take(&mut force)).await {
                Ok(a) => Ok(a),
                Err(TokenError::Fatal(e)) => return Err(e),
                Err(TokenError::Transient(status, wait)) => Err((status, wait)),
            };
            let resp = match access {
                Ok(access) => Ok(self
                    .http
                    .post(&self.send_url)
                    .bearer_auth(access)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await),
                Err(busy) => Err(busy),
            };
            let (status, wait) = match resp {
                // The token endpoint was busy or unreachable: back off too.
                Err(busy) => busy,
                Ok(resp) => match resp {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        if (200..300).contains(&status) {
                            return Ok(());
                        }
                        let wait = retry_after(r.headers());
                        let err = r
                            .bytes()
                            .await
                            .ok()
                            .and_then(|b| serde_json::from_slice::<ErrorBody>(&b).ok())
                            .map(|b| b.error)
                            .unwrap_or_default();
                        if status == 404 || err.code("UNREGISTERED") || err.bad_token() {
                            return Err(PushError::Gone);
                        }
                        match status {
                            401 if !reauthed => {
                                reauthed = true;
                                force = true;
                                attempt -= 1; // re-authentication is not a delivery attempt
                                continue;
                            }
                            429 | 500..=599 => (status, wait),
                            _ => return Err(PushError::Failed(format!("FCM HTTP {status}"))),
                        }
                    }
                    Err(_) => (0, None),
                },
            };
            match self.opts.retry.next_delay(attempt, wait) {
                Some(d) => {
                    tracing::debug!(status, attempt, "FCM busy; retrying");
                    tokio::time::sleep(d).await;
                }
                None => return Err(give_up("FCM", status)),
            }
        }
    }
}

/// An FCM registration token: ~160 characters of base64url and `:`.
pub fn valid_fcm_token(token: &str) -> bool {
    (32..=1024).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
}

impl PushSender for FcmSender {
    fn wake<'a>(&'a self, target: &'a PushTarget) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            if !valid_fcm_token(&target.endpoint) {
                return Err(PushError::Gone);
            }
            self.send(&target.endpoint).await
        })
    }
}
