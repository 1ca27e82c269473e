//! `ApiError`: every refusal as a status and a typed `ErrorBody`, and the
//! one place each layer's errors (storage, mailbox, rate limits, key
//! checks) become HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prost::Message;

use alcove_proto::relay::ErrorBody;

use crate::key_checks::KeyError;
use crate::mailbox::MailboxError;
use crate::rate_limits::Refused;
use crate::storage::StorageError;

pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<std::time::Duration>,
}

pub(super) fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
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
            // No retry-after: a place frees when one of the caller's
            // invites is used or expires, not at a time the relay knows.
            StorageError::InviteQuota => err(
                StatusCode::TOO_MANY_REQUESTS,
                "invite_quota",
                "too many unused invites; wait until one is used or expires",
            ),
            StorageError::MailboxFull => err(
                StatusCode::INSUFFICIENT_STORAGE,
                "mailbox_full",
                "recipient mailbox is full",
            ),
            StorageError::Busy => busy(),
            StorageError::Unavailable(why) => {
                // The reason names the host and the failure, never the
                // password; debug, as every request fails alike meanwhile.
                tracing::debug!(reason = %why, "storage unavailable");
                busy()
            }
            other @ (StorageError::SchemaTooNew(_) | StorageError::Backend(_)) => {
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

/// 503 `busy`: the storage cannot take the request now; retry.
fn busy() -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "busy",
        message: "storage busy; retry later".into(),
        retry_after: Some(std::time::Duration::from_secs(1)),
    }
}

impl From<MailboxError> for ApiError {
    fn from(e: MailboxError) -> Self {
        let message = e.to_string();
        let bad = |code| err(StatusCode::BAD_REQUEST, code, message.clone());
        match e {
            MailboxError::Storage(s) => s.into(),
            MailboxError::InvalidGuid => bad("invalid_guid"),
            MailboxError::NoMessages => bad("no_messages"),
            MailboxError::TooManyMessages(_) => bad("too_many_messages"),
            MailboxError::DuplicateDevice(_) => bad("duplicate_device"),
            MailboxError::InvalidMessage => bad("invalid_message"),
            MailboxError::TooManyGuids => bad("too_many_guids"),
            MailboxError::NoSuchAccount => {
                err(StatusCode::NOT_FOUND, "not_found", "no such account")
            }
            // Handlers answer these two with a `MismatchedDevices` body;
            // this is only the fallback shape.
            MailboxError::Mismatched(_) => err(StatusCode::CONFLICT, "mismatched_devices", message),
            MailboxError::Stale(_) => err(StatusCode::GONE, "stale_devices", message),
            MailboxError::Busy => err(StatusCode::CONFLICT, "mailbox_busy", message),
        }
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
