//! Runs libsignal's `?Send` futures to completion on the calling thread.
//!
//! Our stores never suspend, so every libsignal future is ready on first
//! poll. A future that is not ready would mean a store awaited something
//! real, which must never happen; it is reported, not blocked on.
//! Panics inside libsignal (e.g. on crafted input reaching the SPQR decoder)
//! are caught here and become typed errors, so none crosses our API.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use futures_util::FutureExt;

use crate::error::{Error, Result};

pub(crate) fn drive<T, E>(fut: impl Future<Output = std::result::Result<T, E>>) -> Result<T>
where
    Error: From<E>,
{
    match catch_unwind(AssertUnwindSafe(|| fut.now_or_never())) {
        Ok(Some(r)) => r.map_err(Error::from),
        Ok(None) => Err(Error::Internal("a store call suspended".into())),
        Err(_) => Err(Error::Internal("panic inside the protocol library".into())),
    }
}

/// Runs `f`, turning a panic into `Error::Internal`.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Error::Internal("panic while processing input".into())))
}
