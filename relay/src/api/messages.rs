//! Mail: PUT /v1/messages/{account_id} (signed), PUT
//! /v1/messages/{account_id}/sealed (no sender), POST /v1/messages/sync
//! (ack, lease and the next page in one round trip), and the older GET
//! /v1/messages (a page), POST /v1/messages/ack and DELETE
//! /v1/messages/reader. The rules live in [`crate::mailbox`]; this maps
//! them to HTTP.

use alcove_proto::relay::{AckRequest, EnvelopePage, SendRequest, SyncRequest};
use alcove_proto::wire::envelope;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::caller::{authenticate, check_account_id, reader_id, Peer};
use super::certificates::sealed_off;
use super::error::err;
use super::{decode, encoded, page, proto, ApiResult, AppState, DELIVERY_KEY_HEADER};
use crate::auth;
use crate::mailbox::{MailboxError, Sender};
use crate::sealed_sender;

pub(super) async fn send(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    check_account_id(&account)?;
    state.rate.send(&caller.account).await?;
    // Signed mail is what a stranger can send (sealed mail needs the
    // recipient's delivery key): capped per sender and recipient.
    state.rate.signed_send(&caller.account, &account).await?;
    let req: SendRequest = decode(&body)?;
    let sender = Sender {
        account: caller.account,
        device: caller.device,
    };
    deliver(&state, &account, req, Some(&sender)).await
}

/// PUT /v1/messages/{account_id}/sealed: mail that names no sender. No
/// credentials; the recipient's delivery key proves the sender is someone
/// the recipient gave it to. A wrong or missing key and an unknown account
/// get the same 401, so this says no more about which accounts exist than
/// the authenticated API does.
pub(super) async fn send_sealed(
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
    let stored = state.storage.delivery_key_hash(&account).await?;
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
    deliver(&state, &account, req, None).await
}

/// A device list that does not match answers with `MismatchedDevices`
/// (409 missing or extra devices, 410 stale ones), so the sender can fix
/// its sessions and retry.
async fn deliver(
    state: &AppState,
    account: &str,
    req: SendRequest,
    source: Option<&Sender>,
) -> ApiResult {
    match state.mailboxes.deliver(account, req, source).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(MailboxError::Mismatched(body)) => Ok(proto(StatusCode::CONFLICT, &body)),
        Err(MailboxError::Stale(body)) => Ok(proto(StatusCode::GONE, &body)),
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize)]
pub(super) struct PageQuery {
    limit: Option<u32>,
}

pub(super) async fn fetch(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let reader = reader_id(&headers)?;
    let (envelopes, more) = state
        .mailboxes
        .fetch(&caller.account, caller.device, &reader, q.limit)
        .await?;
    tracing::debug!(envelopes = envelopes.len(), more, "page fetched");
    Ok(proto(
        StatusCode::OK,
        &EnvelopePage {
            envelopes,
            more,
            ..Default::default()
        },
    ))
}

/// Largest `SyncRequest` body: 1,000 GUIDs of 16 bytes take 18,000
/// bytes encoded; anything much larger is not a sync.
pub(super) const SYNC_MAX_BODY: usize = 32 * 1024;

pub(super) async fn sync(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let started = std::time::Instant::now();
    let caller = authenticate(&state, &headers, &peer).await?;
    let reader = reader_id(&headers)?;
    let req: SyncRequest = decode(&body)?;
    let acked = req.ack.len();
    let page = state
        .mailboxes
        .sync(&caller.account, caller.device, &reader, req)
        .await?;
    tracing::debug!(
        acked,
        envelopes = page.envelopes.len(),
        more = page.more,
        "sync step"
    );
    let mut resp = encoded(StatusCode::OK, page::encode(&page));
    // The relay's own share of the round trip (W3C Server-Timing), for the
    // device's stage table. Only to the authenticated device itself.
    let timing = format!("relay;dur={:.3}", started.elapsed().as_secs_f64() * 1e3);
    if let Ok(v) = axum::http::HeaderValue::from_str(&timing) {
        resp.headers_mut().insert("server-timing", v);
    }
    Ok(resp)
}

pub(super) async fn ack(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let reader = reader_id(&headers)?;
    let req: AckRequest = decode(&body)?;
    state
        .mailboxes
        .ack(&caller.account, caller.device, &reader, &req.guids)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn release_reader(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let reader = reader_id(&headers)?;
    state
        .mailboxes
        .release(&caller.account, caller.device, &reader)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
