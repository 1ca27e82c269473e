//! PUT /v1/push: the caller's push target (UnifiedPush endpoint, APNs or
//! FCM token), or none.

use alcove_proto::relay::{push_registration, PushRegistration};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::caller::{authenticate, Peer};
use super::error::err;
use super::{decode, ApiResult, AppState};
use crate::storage::PushTarget;

pub(super) async fn set_push(
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
    state
        .storage
        .set_push(&caller.account, caller.device, target.as_ref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
