//! The HTTP API (protobuf bodies), one module per resource. See API.md.
//! Handlers authenticate, decode and map outcomes to statuses; what
//! happens to mail lives in [`crate::mailbox`], what is stored behind
//! [`crate::storage::Storage`].

mod accounts;
mod caller;
mod certificates;
mod devices;
mod error;
mod invites;
mod keys;
mod messages;
mod page;
mod push;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use prost::Message;

use crate::config::RelayConfig;
pub use crate::key_checks::MAX_KEYS_PER_UPLOAD;
use crate::mailbox::Mailboxes;
use crate::rate_limits::RateCheck;
use crate::sealed_sender::SealedSender;
use crate::storage::Storage;
use error::{err, ApiError};

/// Sealed sends carry the recipient's delivery key (base64) here instead
/// of credentials.
pub const DELIVERY_KEY_HEADER: &str = "x-alcove-delivery-key";

#[derive(Clone)]
pub(crate) struct AppState {
    pub storage: Arc<dyn Storage>,
    /// Sends, pages, acks and wakes.
    pub mailboxes: Arc<Mailboxes>,
    pub cfg: Arc<RelayConfig>,
    /// Sealed-sender keys; `None` when sealed sender is off.
    pub sealed: Option<Arc<SealedSender>>,
    /// Per-account and per-address rate limits (`[rate_limits]`).
    pub rate: Arc<RateCheck>,
}

type ApiResult = Result<Response, ApiError>;

fn proto(status: StatusCode, m: &impl Message) -> Response {
    encoded(status, m.encode_to_vec())
}

/// A protobuf body already encoded.
fn encoded(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [("content-type", "application/x-protobuf")], body).into_response()
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
        .route("/v1/register", post(accounts::register))
        .route("/v1/invites", post(invites::mint))
        .route("/v1/devices", post(devices::add_device))
        .route("/v1/devices/{device_id}", delete(devices::revoke_device))
        .route("/v1/keys", put(keys::upload_keys))
        .route("/v1/keys/count", get(keys::key_count))
        .route("/v1/keys/{account_id}", get(keys::bundles))
        .route("/v1/messages/{account_id}", put(messages::send))
        .route(
            "/v1/messages/{account_id}/sealed",
            put(messages::send_sealed),
        )
        .route("/v1/certificate", get(certificates::certificate))
        .route("/v1/delivery-key", put(certificates::set_delivery_key))
        .route("/v1/messages", get(messages::fetch))
        .route(
            "/v1/messages/sync",
            post(messages::sync).layer(axum::extract::DefaultBodyLimit::max(
                messages::SYNC_MAX_BODY.min(max_body),
            )),
        )
        .route("/v1/messages/ack", post(messages::ack))
        .route("/v1/messages/reader", delete(messages::release_reader))
        .route("/v1/push", put(push::set_push))
        .fallback(|| async { err(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::map_response(typed_errors))
        .with_state(state)
}
