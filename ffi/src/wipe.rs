//! Remote wipe for the shells: whether the relay revoked this device, and
//! the event of a call that learnt it, delivered before its error returns.
//! The wipe itself is decided and done in the core (`alcove_core::wipe`).

use crate::client::AlcoveClient;
use crate::errors::{AlcoveError, Result};

#[uniffi::export]
impl AlcoveClient {
    /// Whether the relay revoked this device: its account files are gone
    /// and every call fails `DeviceRevoked`. The shell deletes its key from
    /// the Keystore / Keychain (`AlcoveEvent.DeviceRevoked` says when).
    pub fn is_revoked(&self) -> bool {
        self.inner.is_revoked()
    }
}

impl AlcoveClient {
    /// Passes `result` on; on `DeviceRevoked` the listeners first hear the
    /// event the core kept (calls that report no events of their own).
    pub(crate) fn telling_revocation<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(AlcoveError::DeviceRevoked) = &result {
            self.deliver_kept();
        }
        result
    }
}
