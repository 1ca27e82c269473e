//! POST /v1/devices (another device of the caller's account) and
//! DELETE /v1/devices/{id} (revocation).

use alcove_proto::relay::{RegisterRequest, RegisterResponse};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::accounts::{keys_of, new_device, role_of, trust_root};
use super::caller::{authenticate, Peer};
use super::error::err;
use super::{decode, proto, ApiResult, AppState};

/// The device enrolled by invite; it acts for the account.
const PRIMARY_DEVICE: u32 = 1;

pub(super) async fn add_device(
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
    let device_id = state
        .storage
        .add_device(&caller.account, &device, &keys, now, state.cfg.max_devices)
        .await?;
    let role = state.storage.account_role(&caller.account).await?;
    Ok(proto(
        StatusCode::OK,
        &RegisterResponse {
            account_id: caller.account,
            device_id,
            trust_root: trust_root(&state),
            role: role_of(role),
        },
    ))
}

/// DELETE /v1/devices/{id}. Who may revoke whom: the primary device
/// (device 1, the one enrolled by invite) may revoke any other device of
/// its account, and any device may revoke itself; nobody revokes the
/// primary through the API (the practice admin does, on the relay), so an
/// account always keeps a device that can act for it, and the last device
/// is never revoked.
pub(super) async fn revoke_device(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(device_id): Path<u32>,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    let devices = state.storage.devices(&caller.account).await?;
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
    let now = (state.cfg.clock)();
    state
        .storage
        .revoke_device(&caller.account, device_id, now)
        .await?;
    tracing::info!(device = device_id, "device revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
