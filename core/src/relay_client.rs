//! The HTTP client for the relay (protobuf bodies, rustls). Refuses plain
//! HTTP except to a loopback address. Knows nothing of crypto: it moves
//! prekeys, ciphertext envelopes and acks.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alcove_proto::relay::{
    AckRequest, DeliveryKey, EnvelopePage, ErrorBody, MintInviteRequest, MintInviteResponse,
    MismatchedDevices, PreKeyBundles, PreKeyCount, PreKeyUpload, PushRegistration, RegisterRequest,
    RegisterResponse, SendRequest, SenderCertificate, SyncRequest,
};
use base64::Engine;
use prost::Message;
use reqwest::{Method, StatusCode, Url};

use crate::error::{Error, Result};

const PROTOBUF: &str = "application/x-protobuf";
const READER_HEADER: &str = "x-alcove-reader";
const DELIVERY_KEY_HEADER: &str = "x-alcove-delivery-key";

/// Device credentials: sent as HTTP Basic auth on every call. The relay
/// keeps only a salted hash of the secret.
#[derive(Clone)]
pub struct Credentials {
    pub account_id: String,
    pub device_id: u32,
    pub secret: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

/// The outcome of a send that the relay refused because our device list for
/// the recipient is out of date.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    Sent,
    /// 409: add sessions for `missing_devices`, drop `extra_devices`.
    /// 410: `stale_devices` re-registered; new sessions needed.
    Mismatch(MismatchedDevices),
}

#[derive(Clone, Debug)]
pub struct RelayClient {
    http: reqwest::Client,
    base: Url,
    /// Caps every call (on top of the client's 30 s): see [`RelayClient::within`].
    call_timeout: Option<Duration>,
    /// Calls made through this client and its copies (each a round trip).
    calls: Arc<AtomicU32>,
}

/// True for http://127.0.0.0/8, [::1] and localhost.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl RelayClient {
    /// `base` is the relay's URL. `https://` always; `http://` only to a
    /// loopback address (tests and the demo).
    /// The relay's base URL, as configured.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    pub fn new(base: &str) -> Result<Self> {
        Self::with_pin(base, None)
    }

    /// A client for a relay whose TLS certificate (or its private CA's) is
    /// pinned by its SHA-256 from the invite card: see [`crate::tls_pin`].
    /// `None`: the platform's trust store decides (see [`crate::tls`]).
    pub fn with_pin(base: &str, pin: Option<[u8; 32]>) -> Result<Self> {
        let base = Url::parse(base).map_err(|_| Error::InvalidArgument("relay url".into()))?;
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {
                tracing::warn!("relay over plain HTTP on loopback: for tests and the demo only");
            }
            _ => {
                return Err(Error::InvalidArgument(
                    "relay url must be https (plain http only on loopback)".into(),
                ))
            }
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(crate::tls::client_config(pin)?)
            .https_only(base.scheme() == "https")
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Network(e.to_string()))?;
        Ok(Self {
            http,
            base,
            call_timeout: None,
            calls: Arc::new(AtomicU32::new(0)),
        })
    }

    /// This client with every call bounded by `timeout` (the time a sync
    /// has left). Cheap: the connection pool is shared.
    pub fn within(&self, timeout: Option<Duration>) -> RelayClient {
        RelayClient {
            http: self.http.clone(),
            base: self.base.clone(),
            call_timeout: timeout,
            calls: self.calls.clone(),
        }
    }

    /// Calls made so far through this client and its copies.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path)
            .map_err(|_| Error::InvalidArgument("relay path".into()))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        creds: Option<&Credentials>,
        reader: Option<&str>,
        body: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<(StatusCode, bytes::Bytes)> {
        let req = self.http.request(method, self.url(path)?);
        self.call_with(req, creds, reader, body, timeout).await
    }

    async fn call_with(
        &self,
        req: reqwest::RequestBuilder,
        creds: Option<&Credentials>,
        reader: Option<&str>,
        body: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<(StatusCode, bytes::Bytes)> {
        let (status, bytes, _) = self.call_timed(req, creds, reader, body, timeout).await?;
        Ok((status, bytes))
    }

    /// As `call_with`, with the relay's own time for the call when it says
    /// (`Server-Timing: relay;dur=…`).
    async fn call_timed(
        &self,
        mut req: reqwest::RequestBuilder,
        creds: Option<&Credentials>,
        reader: Option<&str>,
        body: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<(StatusCode, bytes::Bytes, Option<Duration>)> {
        if let Some(c) = creds {
            let user = format!("{}.{}", c.account_id, c.device_id);
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", hex::encode(&c.secret[..])));
            req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {token}"));
        }
        if let Some(r) = reader {
            req = req.header(READER_HEADER, r);
        }
        if let Some(b) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, PROTOBUF).body(b);
        }
        let timeout = match (timeout, self.call_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let resp = req.send().await.map_err(|e| request_error(&e))?;
        let status = resp.status();
        let relay_time = server_timing(resp.headers());
        let bytes = resp.bytes().await.map_err(|e| request_error(&e))?;
        Ok((status, bytes, relay_time))
    }

    fn error(status: StatusCode, body: &[u8]) -> Error {
        let code = ErrorBody::decode(body).map(|b| b.code).unwrap_or_default();
        match (status, code.as_str()) {
            (StatusCode::UNAUTHORIZED, _) => Error::Unauthorized,
            // Only the relay's authenticated answer to this device's own
            // secret (over TLS) says "revoked"; a bare 401 never wipes.
            (StatusCode::FORBIDDEN, "device_revoked") => Error::DeviceRevoked,
            (_, "invalid_invite") => Error::InvalidInvite,
            (_, "mailbox_busy") => Error::MailboxBusy,
            _ => Error::Relay {
                status: status.as_u16(),
                code,
            },
        }
    }

    async fn expect_ok<T: Message + Default>(
        &self,
        method: Method,
        path: &str,
        creds: Option<&Credentials>,
        reader: Option<&str>,
        body: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<T> {
        let (status, bytes) = self
            .call(method, path, creds, reader, body, timeout)
            .await?;
        if !status.is_success() {
            return Err(Self::error(status, &bytes));
        }
        T::decode(bytes).map_err(|_| Error::Malformed("relay response"))
    }

    /// A call whose success has no body.
    async fn expect_empty(
        &self,
        method: Method,
        path: &str,
        creds: Option<&Credentials>,
        reader: Option<&str>,
        body: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<()> {
        let (status, bytes) = self
            .call(method, path, creds, reader, body, timeout)
            .await?;
        if !status.is_success() {
            return Err(Self::error(status, &bytes));
        }
        Ok(())
    }

    pub async fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse> {
        self.expect_ok(
            Method::POST,
            "v1/register",
            None,
            None,
            Some(req.encode_to_vec()),
            None,
        )
        .await
    }

    pub async fn upload_prekeys(&self, creds: &Credentials, up: &PreKeyUpload) -> Result<()> {
        self.expect_empty(
            Method::PUT,
            "v1/keys",
            Some(creds),
            None,
            Some(up.encode_to_vec()),
            None,
        )
        .await
    }

    /// Mints a one-time client invite (therapist accounts only: 403
    /// `not_permitted` otherwise). `expires_in_hours`: 0 for the relay's
    /// default.
    pub async fn mint_invite(
        &self,
        creds: &Credentials,
        expires_in_hours: u32,
    ) -> Result<MintInviteResponse> {
        let body = MintInviteRequest { expires_in_hours }.encode_to_vec();
        self.expect_ok(
            Method::POST,
            "v1/invites",
            Some(creds),
            None,
            Some(body),
            None,
        )
        .await
    }

    pub async fn prekey_count(&self, creds: &Credentials) -> Result<PreKeyCount> {
        self.expect_ok(Method::GET, "v1/keys/count", Some(creds), None, None, None)
            .await
    }

    pub async fn bundles(&self, creds: &Credentials, account_id: &str) -> Result<PreKeyBundles> {
        crate::account::validate_account_id(account_id)?;
        self.expect_ok(
            Method::GET,
            &format!("v1/keys/{account_id}"),
            Some(creds),
            None,
            None,
            None,
        )
        .await
    }

    pub async fn send(
        &self,
        creds: &Credentials,
        account_id: &str,
        req: &SendRequest,
    ) -> Result<SendOutcome> {
        crate::account::validate_account_id(account_id)?;
        let (status, bytes) = self
            .call(
                Method::PUT,
                &format!("v1/messages/{account_id}"),
                Some(creds),
                None,
                Some(req.encode_to_vec()),
                None,
            )
            .await?;
        Self::send_outcome(status, &bytes)
    }

    /// A sealed send: no credentials, the recipient's delivery key instead.
    /// A refused key is `Unauthorized`.
    pub async fn send_sealed(
        &self,
        account_id: &str,
        delivery_key: &[u8],
        req: &SendRequest,
    ) -> Result<SendOutcome> {
        crate::account::validate_account_id(account_id)?;
        let key = base64::engine::general_purpose::STANDARD.encode(delivery_key);
        let builder = self
            .http
            .request(
                Method::PUT,
                self.url(&format!("v1/messages/{account_id}/sealed"))?,
            )
            .header(DELIVERY_KEY_HEADER, key);
        let (status, bytes) = self
            .call_with(builder, None, None, Some(req.encode_to_vec()), None)
            .await?;
        Self::send_outcome(status, &bytes)
    }

    /// This device's sender certificate (libsignal `SenderCertificate`,
    /// serialized), as the relay issues it.
    pub async fn sender_certificate(&self, creds: &Credentials) -> Result<Vec<u8>> {
        let c: SenderCertificate = self
            .expect_ok(Method::GET, "v1/certificate", Some(creds), None, None, None)
            .await?;
        Ok(c.certificate)
    }

    /// Replaces the account's delivery key at the relay.
    pub async fn set_delivery_key(&self, creds: &Credentials, key: &[u8]) -> Result<()> {
        let body = DeliveryKey { key: key.to_vec() }.encode_to_vec();
        self.expect_empty(
            Method::PUT,
            "v1/delivery-key",
            Some(creds),
            None,
            Some(body),
            None,
        )
        .await
    }

    fn send_outcome(status: StatusCode, bytes: &[u8]) -> Result<SendOutcome> {
        match status {
            s if s.is_success() => Ok(SendOutcome::Sent),
            StatusCode::CONFLICT | StatusCode::GONE => Ok(SendOutcome::Mismatch(
                MismatchedDevices::decode(bytes).map_err(|_| Error::Malformed("relay response"))?,
            )),
            s => Err(Self::error(s, bytes)),
        }
    }

    pub async fn fetch(
        &self,
        creds: &Credentials,
        reader: &str,
        limit: u32,
        timeout: Duration,
    ) -> Result<EnvelopePage> {
        self.expect_ok(
            Method::GET,
            &format!("v1/messages?limit={limit}"),
            Some(creds),
            Some(reader),
            None,
            Some(timeout),
        )
        .await
    }

    pub async fn ack(&self, creds: &Credentials, reader: &str, guids: Vec<Vec<u8>>) -> Result<()> {
        let body = AckRequest { guids }.encode_to_vec();
        self.expect_empty(
            Method::POST,
            "v1/messages/ack",
            Some(creds),
            Some(reader),
            Some(body),
            None,
        )
        .await
    }

    /// One round trip of the mailbox drain (`POST /v1/messages/sync`):
    /// acknowledges `req.ack`, renews (or with `release`, ends) the reader
    /// lease, and returns the page after `req.after`.
    pub async fn sync_page(
        &self,
        creds: &Credentials,
        reader: &str,
        req: &SyncRequest,
        timeout: Duration,
    ) -> Result<EnvelopePage> {
        Ok(self.sync_page_timed(creds, reader, req, timeout).await?.0)
    }

    /// As [`RelayClient::sync_page`], with the relay's own share of the
    /// round trip when it reports it.
    pub async fn sync_page_timed(
        &self,
        creds: &Credentials,
        reader: &str,
        req: &SyncRequest,
        timeout: Duration,
    ) -> Result<(EnvelopePage, Option<Duration>)> {
        let http = self
            .http
            .request(Method::POST, self.url("v1/messages/sync")?);
        let (status, bytes, relay_time) = self
            .call_timed(
                http,
                Some(creds),
                Some(reader),
                Some(req.encode_to_vec()),
                Some(timeout),
            )
            .await?;
        if !status.is_success() {
            return Err(Self::error(status, &bytes));
        }
        let page = EnvelopePage::decode(bytes).map_err(|_| Error::Malformed("relay response"))?;
        Ok((page, relay_time))
    }

    pub async fn release_reader(&self, creds: &Credentials, reader: &str) -> Result<()> {
        self.expect_empty(
            Method::DELETE,
            "v1/messages/reader",
            Some(creds),
            Some(reader),
            None,
            None,
        )
        .await
    }

    pub async fn set_push(&self, creds: &Credentials, reg: &PushRegistration) -> Result<()> {
        self.expect_empty(
            Method::PUT,
            "v1/push",
            Some(creds),
            None,
            Some(reg.encode_to_vec()),
            None,
        )
        .await
    }
}

/// A relay certificate refused (by the platform or the pin) is its own
/// error; any other failure is `Network`.
fn request_error(e: &reqwest::Error) -> Error {
    match crate::tls::refusal(e) {
        Some(reason) => Error::UntrustedCertificate { reason },
        None => Error::Network(classify(e)),
    }
}

/// Network errors without URLs (they could carry account ids).
/// `relay;dur=<ms>` from a `Server-Timing` header; anything else is
/// ignored (the figure is for the stage table only).
fn server_timing(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get("server-timing")?.to_str().ok()?;
    let ms: f64 = value
        .split(',')
        .find_map(|m| m.trim().strip_prefix("relay;dur="))?
        .parse()
        .ok()?;
    (ms.is_finite() && (0.0..3.6e6).contains(&ms)).then(|| Duration::from_secs_f64(ms / 1e3))
}

fn classify(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect to relay".into()
    } else if e.is_body() || e.is_decode() {
        "connection broke mid-response".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_is_read_only_when_well_formed() {
        let timing = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(
                "server-timing",
                reqwest::header::HeaderValue::from_str(v).unwrap(),
            );
            server_timing(&h)
        };
        assert_eq!(timing("relay;dur=1.5"), Some(Duration::from_micros(1500)));
        assert_eq!(
            timing("db;dur=9, relay;dur=2"),
            Some(Duration::from_millis(2))
        );
        for hostile in [
            "relay;dur=-1",
            "relay;dur=NaN",
            "relay;dur=inf",
            "relay;dur=1e300",
            "relay;dur=",
            "relay",
            "other;dur=3",
        ] {
            assert_eq!(timing(hostile), None, "{hostile}");
        }
        assert_eq!(server_timing(&reqwest::header::HeaderMap::new()), None);
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(RelayClient::new("https://relay.example.org").is_ok());
        assert!(RelayClient::new("http://127.0.0.1:8787").is_ok());
        assert!(RelayClient::new("http://[::1]:8787").is_ok());
        assert!(RelayClient::new("http://localhost:8787").is_ok());
        for bad in [
            "http://relay.example.org",
            "http://10.0.0.5",
            "ftp://127.0.0.1",
            "not a url",
        ] {
            assert!(
                matches!(RelayClient::new(bad), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }
}
