//! Who is asking: the peer address, the authenticated device, the reader
//! id of a mailbox session, and the account id a path names.

use axum::http::{HeaderMap, StatusCode};

use super::error::{err, ApiError};
use super::AppState;
use crate::auth;

const READER_HEADER: &str = "x-alcove-reader";

/// The address a request came from (the TCP peer; behind a reverse proxy,
/// the proxy's). Unspecified when the server did not record one.
pub(crate) struct Peer(pub std::net::IpAddr);

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

/// The authenticated caller.
pub(super) struct Caller {
    pub account: String,
    pub device: u32,
}

pub(super) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: &Peer,
) -> Result<Caller, ApiError> {
    state.rate.auth_allowed(peer.0).await?;
    let failed = || async {
        state.rate.failed_auth(peer.0).await;
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
    let Some((account, device, secret)) = auth::parse_basic(header) else {
        return Err(failed().await);
    };
    match state.storage.device_secret(&account, device).await? {
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
        _ => Err(failed().await),
    }
}

/// 400 unless `id` is an opaque account id (1..64 of `[A-Za-z0-9-]`).
pub(super) fn check_account_id(id: &str) -> Result<(), ApiError> {
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

/// The `X-Alcove-Reader` id of a mailbox session (1..64 printable ASCII).
pub(super) fn reader_id(headers: &HeaderMap) -> Result<String, ApiError> {
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
