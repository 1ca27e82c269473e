//! The HTTP API (protobuf bodies). See API.md.

use std::collections::BTreeSet;
use std::sync::Arc;

use alcove_proto::relay::{
    push_registration, AckRequest, DeliveryKey, EnvelopePage, ErrorBody, MismatchedDevices,
    PreKeyUpload, PushRegistration, RegisterRequest, RegisterResponse, SendRequest,
    SenderCertificate,
};
use alcove_proto::wire::{envelope, Envelope};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use prost::Message;
use rand::RngCore;

use crate::auth;
use crate::config::RelayConfig;
pub use crate::key_checks::MAX_KEYS_PER_UPLOAD;
use crate::key_checks::{self, KeyError};
use crate::push::Dispatcher;
use crate::rate_limits::{RateLimits, Refused};
use crate::sealed_sender::{self, SealedSender, DELIVERY_KEY_LEN};
use crate::storage::{NewDevice, PushTarget, Storage, StorageError};

/// Device ids run 1..=127 (libsignal's device id is a byte; Signal's
/// server caps devices likewise).
const MAX_DEVICES_PER_ACCOUNT: usize = 127;
/// The device enrolled by invite; it acts for the account.
const PRIMARY_DEVICE: u32 = 1;
const PAGE_DEFAULT: u32 = 50;
const PAGE_MAX: u32 = 100;
const READER_HEADER: &str = "x-alcove-reader";
/// Sealed sends carry the recipient's delivery key (base64) here instead
/// of credentials.
pub const DELIVERY_KEY_HEADER: &str = "x-alcove-delivery-key";

#[derive(Clone)]
pub(crate) struct AppState {
    pub storage: Arc<dyn Storage>,
    pub push: Arc<Dispatcher>,
    pub cfg: Arc<RelayConfig>,
    /// Sealed-sender keys; `None` when sealed sender is off.
    pub sealed: Option<Arc<SealedSender>>,
    /// Per-account and per-address rate limits (`[rate_limits]`).
    pub rate: Arc<RateLimits>,
}

pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<std::time::Duration>,
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
        retry_after: None,
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: r.limit,
            message: "rate limit reached; retry later".into(),
            retry_after: Some(r.retry_after),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        err(StatusCode::BAD_REQUEST, e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.into(),
            message: self.message,
            retry_after_ms: self
                .retry_after
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        let mut response = (
            self.status,
            [("content-type", "application/x-protobuf")],
            body.encode_to_vec(),
        )
            .into_response();
        if let Some(d) = self.retry_after {
            // Whole seconds, rounded up (RFC 9110 delay-seconds).
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.max(1).to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// The address a request came from (the TCP peer; behind a reverse proxy,
/// the proxy's). Unspecified when the server did not record one.
pub(crate) struct Peer(std::net::IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(std::net::IpAddr::from([0u8, 0, 0, 0]), |c| c.0.ip()),
        ))
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::InvalidInvite => err(
                StatusCode::FORBIDDEN,
                "invalid_invite",
                "invite unknown, used or expired",
            ),
            StorageError::AccountExists => {
                err(StatusCode::CONFLICT, "account_exists", "account id taken")
            }
            StorageError::NotFound => err(StatusCode::NOT_FOUND, "not_found", "no such account"),
            StorageError::TooManyDevices => err(
                StatusCode::CONFLICT,
                "too_many_devices",
                "device limit reached",
            ),
            StorageError::MailboxFull => err(
                StatusCode::INSUFFICIENT_STORAGE,
                "mailbox_full",
                "recipient mailbox is full",
            ),
            other => {
                tracing::error!(error = %other, "storage failure");
                err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "storage failure",
                )
            }
        }
    }
}

type ApiResult = Result<Response, ApiError>;

fn proto(status: StatusCode, m: &impl Message) -> Response {
    (
        status,
        [("content-type", "application/x-protobuf")],
        m.encode_to_vec(),
    )
        .into_response()
}

fn decode<T: Message + Default>(body: &[u8]) -> Result<T, ApiError> {
    T::decode(body).map_err(|_| {
        err(
            StatusCode::BAD_REQUEST,
            "malformed",
            "body is not valid protobuf",
        )
    })
}

async fn db<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, ApiError> {
    let storage = Arc::clone(&state.storage);
    tokio::task::spawn_blocking(move || f(storage.as_ref()))
        .await
        .map_err(|_| err(StatusCode::INTERNAL_SERVER_ERROR, "internal", "task failed"))?
        .map_err(ApiError::from)
}

/// The authenticated caller.
struct Caller {
    account: String,
    device: u32,
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: &Peer,
) -> Result<Caller, ApiError> {
    state.rate.auth_allowed(peer.0)?;
    let failed = || {
        state.rate.failed_auth(peer.0);
        err(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "bad or missing credentials",
        )
    };
    let unauthorized = || {
        err(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "bad or missing credentials",
        )
    };
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(unauthorized)?;
    let (account, device, secret) = auth::parse_basic(header).ok_or_else(failed)?;
    let (a, d) = (account.clone(), device);
    let stored = db(state, move |s| s.device_secret(&a, d)).await?;
    match stored {
        Some(s) if auth::verify(&s.salt, &s.hash, &secret) => {
            if s.revoked {
                // A revoked device that proves it is that device (its old
                // secret) learns so, distinctly: the app wipes itself on it.
                Err(err(
                    StatusCode::FORBIDDEN,
                    "device_revoked",
                    "this device was revoked",
                ))
            } else {
                Ok(Caller { account, device })
            }
        }
        _ => Err(failed()),
    }
}

/// 400 unless `id` is an opaque account id (1..64 of `[A-Za-z0-9-]`).
fn check_account_id(id: &str) -> Result<(), ApiError> {
    if auth::valid_account_id(id) {
        Ok(())
    } else {
        Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_account_id",
            "account id must be 1..64 of [A-Za-z0-9-]",
        ))
    }
}

fn reader_id(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(READER_HEADER)
        .and_then(|h| h.to_str().ok())
        .filter(|r| !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                "reader_required",
                "X-Alcove-Reader header required",
            )
        })
}

fn new_device(req: &RegisterRequest) -> Result<NewDevice, ApiError> {
    if req.auth_secret.len() != 32 {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_secret",
            "auth secret must be 32 bytes",
        ));
    }
    if req.registration_id == 0 {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_device",
            "registration id required",
        ));
    }
    key_checks::identity_key(&req.identity_key)?;
    let mut salt = vec![0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let secret_hash = auth::hash_secret(&salt, &req.auth_secret);
    Ok(NewDevice {
        registration_id: req.registration_id,
        identity_key: req.identity_key.clone(),
        salt,
        secret_hash,
    })
}

fn keys_of(req: &RegisterRequest) -> Result<PreKeyUpload, ApiError> {
    let keys = req.prekeys.clone().unwrap_or_default();
    key_checks::check_upload(&req.identity_key, &keys, true)?;
    Ok(keys)
}

async fn register(State(state): State<AppState>, peer: Peer, body: Bytes) -> ApiResult {
    state.rate.registration(peer.0)?;
    let req: RegisterRequest = decode(&body)?;
    check_account_id(&req.account_id)?;
    let device = new_device(&req)?;
    let keys = keys_of(&req)?;
    let delivery = match req.delivery_key.len() {
        0 => None,
        DELIVERY_KEY_LEN => Some(sealed_sender::hash_delivery_key(&req.delivery_key)),
        _ => return Err(bad_delivery_key()),
    };
    let invite = auth::hash_invite(&req.invite_token);
    let now = (state.cfg.clock)();
    let account = req.account_id.clone();
    let device_id = db(&state, move |s| {
        s.register(&invite, &account, &device, &keys, delivery.as_deref(), now)
    })
    .await?;
    tracing::info!(device = device_id, "account registered by invite");
    Ok(proto(
        StatusCode::OK,
        &RegisterResponse {
            account_id: req.account_id,
            device_id,
            trust_root: trust_root(&state),
        },
    ))
}

fn trust_root(state: &AppState) -> Vec<u8> {
    state
        .sealed
        .as_ref()
        .map(|s| s.trust_root())
        .unwrap_or_default()
}

fn bad_delivery_key() -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        "invalid_delivery_key",
        "delivery key must be 32 bytes",
    )
}

fn sealed_off() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "sealed_sender_off",
        "this relay does not offer sealed sender",
    )
}

/// GET /v1/certificate: a sender certificate for the caller, binding its
/// account id, device id and the account's registered identity key.
async fn certificate(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let sealed = state.sealed.clone().ok_or_else(sealed_off)?;
    let account = caller.account.clone();
    let identity = db(&state, move |s| s.identity_key(&account))
        .await?
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "not_found", "no such account"))?;
    let now = (state.cfg.clock)();
    let certificate = sealed
        .issue(&caller.account, caller.device, &identity, now)
        .map_err(|e| {
            tracing::error!(error = %e, "could not issue a sender certificate");
            err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "certificate failure",
            )
        })?;
    Ok(proto(StatusCode::OK, &SenderCertificate { certificate }))
}

/// PUT /v1/delivery-key: replaces the caller's account delivery key.
async fn set_delivery_key(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let req: DeliveryKey = decode(&body)?;
    if req.key.len() != DELIVERY_KEY_LEN {
        return Err(bad_delivery_key());
    }
    let hash = sealed_sender::hash_delivery_key(&req.key);
    db(&state, move |s| s.set_delivery_key(&caller.account, &hash)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn add_device(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let req: RegisterRequest = decode(&body)?;
    if req.account_id != caller.account {
        return Err(err(
            StatusCode::FORBIDDEN,
            "wrong_account",
            "devices are added to the caller's account",
        ));
    }
    let device = new_device(&req)?;
    let keys = keys_of(&req)?;
    let now = (state.cfg.clock)();
    let account = caller.account.clone();
    let max = state.cfg.max_devices;
    let device_id = db(&state, move |s| {
        s.add_device(&account, &device, &keys, now, max)
    })
    .await?;
    Ok(proto(
        StatusCode::OK,
        &RegisterResponse {
            account_id: caller.account,
            device_id,
            trust_root: trust_root(&state),
        },
    ))
}

/// DELETE /v1/devices/{id}. Who may revoke whom: the primary device
/// (device 1, the one enrolled by invite) may revoke any other device of
/// its account, and any device may revoke itself; nobody revokes the
/// primary through the API (the practice admin does, on the relay), so an
/// account always keeps a device that can act for it, and the last device
/// is never revoked.
async fn revoke_device(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(device_id): Path<u32>,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let account = caller.account.clone();
    let devices = db(&state, move |s| s.devices(&account)).await?;
    if !devices.iter().any(|(d, _)| *d == device_id) {
        return Err(err(StatusCode::NOT_FOUND, "not_found", "no such device"));
    }
    if devices.len() <= 1 {
        return Err(err(
            StatusCode::CONFLICT,
            "last_device",
            "the account's last device cannot be revoked",
        ));
    }
    if device_id == PRIMARY_DEVICE {
        return Err(err(
            StatusCode::CONFLICT,
            "primary_device",
            "the primary device is revoked by the practice admin",
        ));
    }
    if caller.device != PRIMARY_DEVICE && caller.device != device_id {
        return Err(err(
            StatusCode::FORBIDDEN,
            "not_primary",
            "only the primary device revokes other devices",
        ));
    }
    let account = caller.account.clone();
    let now = (state.cfg.clock)();
    db(&state, move |s| s.revoke_device(&account, device_id, now)).await?;
    tracing::info!(device = device_id, "device revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn upload_keys(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let keys: PreKeyUpload = decode(&body)?;
    let account = caller.account.clone();
    let identity = db(&state, move |s| s.identity_key(&account))
        .await?
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "not_found", "no such account"))?;
    key_checks::check_upload(&identity, &keys, false)?;
    db(&state, move |s| {
        s.upload_prekeys(&caller.account, caller.device, &keys)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn key_count(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let count = db(&state, move |s| {
        s.prekey_count(&caller.account, caller.device)
    })
    .await?;
    Ok(proto(StatusCode::OK, &count))
}

async fn bundles(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(account): Path<String>,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    check_account_id(&account)?;
    state.rate.bundle_fetch(&caller.account, &account)?;
    let b = db(&state, move |s| s.take_bundles(&account)).await?;
    if b.devices.is_empty() {
        return Err(err(StatusCode::NOT_FOUND, "not_found", "no such account"));
    }
    Ok(proto(StatusCode::OK, &b))
}

async fn send(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    check_account_id(&account)?;
    state.rate.send(&caller.account)?;
    // Signed mail is what a stranger can send (sealed mail needs the
    // recipient's delivery key): capped per sender and recipient.
    state.rate.signed_send(&caller.account, &account)?;
    let req: SendRequest = decode(&body)?;
    deliver(state, account, req, Some(caller)).await
}

/// PUT /v1/messages/{account_id}/sealed: mail that names no sender. No
/// credentials; the recipient's delivery key proves the sender is someone
/// the recipient gave it to. A wrong or missing key and an unknown account
/// get the same 401, so this says no more about which accounts exist than
/// the authenticated API does.
async fn send_sealed(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> ApiResult {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        // A client bug that would tie the sender to the envelope.
        return Err(err(
            StatusCode::BAD_REQUEST,
            "credentials_on_sealed",
            "sealed sends carry no credentials",
        ));
    }
    if state.sealed.is_none() {
        return Err(sealed_off());
    }
    let unauthorized = || {
        err(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "bad or missing delivery key",
        )
    };
    use base64::Engine;
    let presented = headers
        .get(DELIVERY_KEY_HEADER)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            base64::engine::general_purpose::STANDARD
                .decode(h.trim())
                .ok()
        })
        .ok_or_else(unauthorized)?;
    if !auth::valid_account_id(&account) {
        return Err(unauthorized());
    }
    let a = account.clone();
    let stored = db(&state, move |s| s.delivery_key_hash(&a)).await?;
    if !sealed_sender::delivery_key_matches(stored.as_deref(), &presented) {
        return Err(unauthorized());
    }
    let req: SendRequest = decode(&body)?;
    if req
        .messages
        .iter()
        .any(|m| m.r#type != envelope::Type::SealedSender as i32)
    {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_message",
            "sealed sends carry SEALED_SENDER messages only",
        ));
    }
    deliver(state, account, req, None).await
}

/// Checks the device list and enqueues one envelope per device. `source`
/// is the authenticated sender, `None` for sealed sender: the envelope then
/// names nobody.
async fn deliver(
    state: AppState,
    account: String,
    req: SendRequest,
    source: Option<Caller>,
) -> ApiResult {
    if req.guid.len() != 16 {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_guid",
            "guid must be 16 bytes",
        ));
    }
    if req.messages.is_empty() {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "no_messages",
            "one message per device required",
        ));
    }
    if req.messages.len() > MAX_DEVICES_PER_ACCOUNT {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "too_many_messages",
            format!(
                "{} messages: one per recipient device, at most {MAX_DEVICES_PER_ACCOUNT}",
                req.messages.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = req
        .messages
        .iter()
        .find(|m| !seen.insert(m.destination_device))
    {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "duplicate_device",
            format!(
                "two messages for device {}: one per recipient device",
                dup.destination_device
            ),
        ));
    }
    for m in &req.messages {
        let kind = envelope::Type::try_from(m.r#type).unwrap_or(envelope::Type::Unknown);
        if kind == envelope::Type::Unknown || m.ciphertext.is_empty() {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "invalid_message",
                "message type or ciphertext missing",
            ));
        }
    }
    let a = account.clone();
    let devices = db(&state, move |s| s.devices(&a)).await?;
    if devices.is_empty() {
        return Err(err(StatusCode::NOT_FOUND, "not_found", "no such account"));
    }
    let current: BTreeSet<u32> = devices.iter().map(|(d, _)| *d).collect();
    let given: BTreeSet<u32> = req.messages.iter().map(|m| m.destination_device).collect();
    let missing: Vec<u32> = current.difference(&given).copied().collect();
    let extra: Vec<u32> = given.difference(&current).copied().collect();
    if !missing.is_empty() || !extra.is_empty() || given.len() != req.messages.len() {
        let body = MismatchedDevices {
            missing_devices: missing,
            extra_devices: extra,
            stale_devices: vec![],
        };
        return Ok(proto(StatusCode::CONFLICT, &body));
    }
    let stale: Vec<u32> = req
        .messages
        .iter()
        .filter(|m| {
            devices
                .iter()
                .any(|(d, reg)| *d == m.destination_device && *reg != m.destination_registration_id)
        })
        .map(|m| m.destination_device)
        .collect();
    if !stale.is_empty() {
        let body = MismatchedDevices {
            missing_devices: vec![],
            extra_devices: vec![],
            stale_devices: stale,
        };
        return Ok(proto(StatusCode::GONE, &body));
    }
    let now = (state.cfg.clock)();
    let envelopes: Vec<Envelope> = req
        .messages
        .into_iter()
        .map(|m| Envelope {
            guid: req.guid.clone(),
            r#type: m.r#type,
            source_account: source
                .as_ref()
                .map(|c| c.account.clone())
                .unwrap_or_default(),
            source_device: source.as_ref().map(|c| c.device).unwrap_or_default(),
            destination_device: m.destination_device,
            ciphertext: m.ciphertext,
            server_timestamp: now,
        })
        .collect();
    let quota = crate::storage::MailboxQuota {
        max_envelopes: state.cfg.max_queue,
        max_bytes: state.cfg.max_queue_bytes,
    };
    let a = account.clone();
    let enqueued = db(&state, move |s| s.enqueue(&a, &envelopes, &quota)).await?;
    // Counts only: never the recipient's or the sender's account id.
    tracing::debug!(
        devices = enqueued.fresh.len(),
        sealed = source.is_none(),
        "mail queued"
    );
    for device in enqueued.fresh {
        state.push.request(&account, device);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(serde::Deserialize)]
struct PageQuery {
    limit: Option<u32>,
}

async fn fetch(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let reader = reader_id(&headers)?;
    let now = (state.cfg.clock)();
    let until = now + state.cfg.reader_lease.as_millis() as u64;
    let not_before = now.saturating_sub(state.cfg.message_ttl.as_millis() as u64);
    let limit = q.limit.unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX);
    let page = db(&state, move |s| {
        if !s.acquire_reader(&caller.account, caller.device, &reader, now, until)? {
            return Ok(None);
        }
        s.fetch(&caller.account, caller.device, limit, not_before)
            .map(Some)
    })
    .await?;
    match page {
        None => Err(err(
            StatusCode::CONFLICT,
            "mailbox_busy",
            "another reader holds this mailbox",
        )),
        Some((envelopes, more)) => {
            tracing::debug!(envelopes = envelopes.len(), more, "page fetched");
            Ok(proto(StatusCode::OK, &EnvelopePage { envelopes, more }))
        }
    }
}

async fn ack(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let reader = reader_id(&headers)?;
    let req: AckRequest = decode(&body)?;
    if req.guids.len() > 1000 {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "too_many_guids",
            "at most 1000 per ack",
        ));
    }
    let now = (state.cfg.clock)();
    let until = now + state.cfg.reader_lease.as_millis() as u64;
    let ok = db(&state, move |s| {
        if !s.acquire_reader(&caller.account, caller.device, &reader, now, until)? {
            return Ok(false);
        }
        s.ack(&caller.account, caller.device, &req.guids)?;
        Ok(true)
    })
    .await?;
    if !ok {
        return Err(err(
            StatusCode::CONFLICT,
            "mailbox_busy",
            "another reader holds this mailbox",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn release_reader(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let reader = reader_id(&headers)?;
    let (a, d) = (caller.account.clone(), caller.device);
    let left = db(&state, move |s| {
        s.release_reader(&a, d, &reader)?;
        Ok(!s.fetch(&a, d, 1, 0)?.0.is_empty())
    })
    .await?;
    if left {
        // Mail arrived while the device was syncing (no wake was sent then).
        state.push.request(&caller.account, caller.device);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_push(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let reg: PushRegistration = decode(&body)?;
    let kind = push_registration::Kind::try_from(reg.kind)
        .map_err(|_| err(StatusCode::BAD_REQUEST, "invalid_push", "unknown push kind"))?;
    let target = match kind {
        push_registration::Kind::None => None,
        push_registration::Kind::UnifiedPush => {
            // https on 443 to a public host; http to loopback only for a
            // relay that itself serves plain HTTP on loopback (tests, demo).
            crate::push::check_endpoint(&reg.endpoint, state.cfg.loopback_test_mode())
                .map_err(|e| err(StatusCode::BAD_REQUEST, "invalid_push", e.to_string()))?;
            Some(PushTarget {
                kind: reg.kind,
                endpoint: reg.endpoint,
            })
        }
        push_registration::Kind::Apns | push_registration::Kind::Fcm => {
            let ok = if kind == push_registration::Kind::Apns {
                crate::push::valid_apns_token(&reg.endpoint)
            } else {
                crate::push::valid_fcm_token(&reg.endpoint)
            };
            if !ok {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "invalid_push",
                    "malformed device token",
                ));
            }
            Some(PushTarget {
                kind: reg.kind,
                endpoint: reg.endpoint,
            })
        }
    };
    db(&state, move |s| {
        s.set_push(&caller.account, caller.device, target.as_ref())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn healthz() -> StatusCode {
    StatusCode::OK
}

/// Every error answer carries the documented `ErrorBody`, also the ones
/// axum writes itself in plain text (unknown path 404, wrong method 405,
/// body over the limit 413, a path or query that does not parse 400).
async fn typed_errors(response: Response) -> Response {
    let status = response.status();
    let is_proto = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
    if !(status.is_client_error() || status.is_server_error()) || is_proto {
        return response;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    let mut typed = err(status, code, message).into_response();
    if let Some(allow) = response.headers().get(axum::http::header::ALLOW) {
        typed
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    typed
}

pub(crate) fn router(state: AppState) -> Router {
    let max_body = state.cfg.max_body;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/register", post(register))
        .route("/v1/devices", post(add_device))
        .route("/v1/devices/{device_id}", delete(revoke_device))
        .route("/v1/keys", put(upload_keys))
        .route("/v1/keys/count", get(key_count))
        .route("/v1/keys/{account_id}", get(bundles))
        .route("/v1/messages/{account_id}", put(send))
        .route("/v1/messages/{account_id}/sealed", put(send_sealed))
        .route("/v1/certificate", get(certificate))
        .route("/v1/delivery-key", put(set_delivery_key))
        .route("/v1/messages", get(fetch))
        .route("/v1/messages/ack", post(ack))
        .route("/v1/messages/reader", delete(release_reader))
        .route("/v1/push", put(set_push))
        .fallback(|| async { err(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::map_response(typed_errors))
        .with_state(state)
}
