//! POST /v1/invites: a therapist's device mints a one-time client invite,
//! within a quota of open invites per account and an expiry.

use std::time::Duration;

use alcove_proto::relay::{MintInviteRequest, MintInviteResponse};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::caller::{authenticate, Peer};
use super::error::{err, ApiError};
use super::{decode, proto, ApiResult, AppState};
use crate::auth;
use crate::storage::Role;

/// Longest body a mint request has any use for (one varint field): the
/// rest would be unknown fields, which protobuf would silently skip.
const MAX_MINT_BODY: usize = 32;

pub(super) async fn mint(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authenticate(&state, &headers, &peer).await?;
    // Before the role check: a client account's flood is bounded too.
    state.rate.invite_mint(&caller.account).await?;
    if state.storage.account_role(&caller.account).await? != Some(Role::Therapist) {
        return Err(err(
            StatusCode::FORBIDDEN,
            "not_permitted",
            "only a therapist's account mints invites",
        ));
    }
    if body.len() > MAX_MINT_BODY {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "malformed",
            "mint request too long",
        ));
    }
    let req: MintInviteRequest = decode(&body)?;
    let ttl = lifetime(&state, req.expires_in_hours)?;
    let now = (state.cfg.clock)();
    let expires_at = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    let token = crate::new_invite_token();
    state
        .storage
        .mint_invite(
            &auth::hash_invite(&token),
            &caller.account,
            now,
            expires_at,
            state.cfg.invites.max_open_per_account,
        )
        .await?;
    // No account id: the line must not tie a therapist to an enrolment.
    tracing::info!("client invite minted");
    Ok(proto(
        StatusCode::OK,
        &MintInviteResponse {
            token,
            expires_at_ms: expires_at,
            role: Role::Client.to_proto() as i32,
        },
    ))
}

/// The invite's lifetime: the configured default for 0 hours, else the
/// hours asked for, up to the configured maximum.
fn lifetime(state: &AppState, hours: u32) -> Result<Duration, ApiError> {
    let invites = &state.cfg.invites;
    if hours == 0 {
        return Ok(invites.default_ttl);
    }
    let asked = Duration::from_secs(u64::from(hours) * 3600);
    if asked > invites.max_ttl {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
            format!(
                "expires_in_hours must be 1..={}",
                invites.max_ttl.as_secs() / 3600
            ),
        ));
    }
    Ok(asked)
}
