//! Sealed sender: GET /v1/certificate (a sender certificate for the
//! caller) and PUT /v1/delivery-key (the key that admits sealed mail).

use alcove_proto::relay::{DeliveryKey, SenderCertificate};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::accounts::bad_delivery_key;
use super::caller::{authenticate, Peer};
use super::error::{err, ApiError};
use super::{decode, proto, ApiResult, AppState};
use crate::sealed_sender::{self, DELIVERY_KEY_LEN};

pub(super) fn sealed_off() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "sealed_sender_off",
        "this relay does not offer sealed sender",
    )
}

/// GET /v1/certificate: a sender certificate for the caller, binding its
/// account id, device id and the account's registered identity key.
pub(super) async fn certificate(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let sealed = state.sealed.clone().ok_or_else(sealed_off)?;
    let identity = state
        .storage
        .identity_key(&caller.account)
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
pub(super) async fn set_delivery_key(
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
    state
        .storage
        .set_delivery_key(&caller.account, &hash)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
