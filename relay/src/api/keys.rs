//! PUT /v1/keys (refill and rotate), GET /v1/keys/count and
//! GET /v1/keys/{account_id} (bundles, consuming one-time keys).

use alcove_proto::relay::PreKeyUpload;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::caller::{authenticate, check_account_id, Peer};
use super::error::err;
use super::{decode, proto, ApiResult, AppState};
use crate::key_checks;

pub(super) async fn upload_keys(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let keys: PreKeyUpload = decode(&body)?;
    let identity = state
        .storage
        .identity_key(&caller.account)
        .await?
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "not_found", "no such account"))?;
    key_checks::check_upload(&identity, &keys, false)?;
    state
        .storage
        .upload_prekeys(&caller.account, caller.device, &keys)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn key_count(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let count = state
        .storage
        .prekey_count(&caller.account, caller.device)
        .await?;
    Ok(proto(StatusCode::OK, &count))
}

pub(super) async fn bundles(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(account): Path<String>,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    check_account_id(&account)?;
    state.rate.bundle_fetch(&caller.account, &account).await?;
    let b = state.storage.take_bundles(&account).await?;
    if b.devices.is_empty() {
        return Err(err(StatusCode::NOT_FOUND, "not_found", "no such account"));
    }
    Ok(proto(StatusCode::OK, &b))
}
