//! POST /v1/register: an account and its first device, by invite.

use alcove_proto::relay::{PreKeyUpload, RegisterRequest, RegisterResponse};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use rand::RngCore;

use super::caller::{check_account_id, Peer};
use super::error::{err, ApiError};
use super::{decode, proto, ApiResult, AppState};
use crate::auth;
use crate::key_checks;
use crate::sealed_sender::{self, DELIVERY_KEY_LEN};
use crate::storage::NewDevice;

pub(super) async fn register(State(state): State<AppState>, peer: Peer, body: Bytes) -> ApiResult {
    state.rate.registration(peer.0).await?;
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
    let device_id = state
        .storage
        .register(
            &invite,
            &req.account_id,
            &device,
            &keys,
            delivery.as_deref(),
            now,
        )
        .await?;
    tracing::info!(device = device_id, "account registered by invite");
    // The role the invite carried (the request cannot name one).
    let role = state.storage.account_role(&req.account_id).await?;
    Ok(proto(
        StatusCode::OK,
        &RegisterResponse {
            account_id: req.account_id,
            device_id,
            trust_root: trust_root(&state),
            role: role_of(role),
        },
    ))
}

/// The device a registration describes, its secret salted and hashed.
pub(super) fn new_device(req: &RegisterRequest) -> Result<NewDevice, ApiError> {
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

/// The registration's prekeys, checked as keys under its identity key.
pub(super) fn keys_of(req: &RegisterRequest) -> Result<PreKeyUpload, ApiError> {
    let keys = req.prekeys.clone().unwrap_or_default();
    key_checks::check_upload(&req.identity_key, &keys, true)?;
    Ok(keys)
}

/// `RegisterResponse.role` for an account's stored role.
pub(super) fn role_of(role: Option<crate::storage::Role>) -> i32 {
    role.map_or(alcove_proto::relay::Role::Unspecified, |r| r.to_proto()) as i32
}

pub(super) fn trust_root(state: &AppState) -> Vec<u8> {
    state
        .sealed
        .as_ref()
        .map(|s| s.trust_root())
        .unwrap_or_default()
}

pub(super) fn bad_delivery_key() -> ApiError {
    err(
        StatusCode::BAD_REQUEST,
        "invalid_delivery_key",
        "delivery key must be 32 bytes",
    )
}
