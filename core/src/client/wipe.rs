//! Remote wipe: a relay call answered "this device was revoked" (403
//! `device_revoked`, the relay's authenticated answer to this device's own
//! secret) makes the client tell its listeners, close the database and
//! delete the account's files (`crate::wipe`, crash-safe). A plain 401
//! (bad or forged credentials answer) never wipes.

use std::sync::atomic::Ordering;

use super::{lock_ignoring_poison, Client};
use crate::error::{Error, Result};
use crate::events::SyncEvent;

impl Client {
    /// Whether the relay revoked this device (the account's files are then
    /// gone and every call fails `DeviceRevoked`).
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::SeqCst)
    }

    /// What a call on a client without an open database fails with.
    pub(super) fn closed_error(&self) -> Error {
        if self.is_revoked() {
            Error::DeviceRevoked
        } else {
            Error::ClientLocked
        }
    }

    /// Passes `result` on; a `DeviceRevoked` one first wipes the account.
    pub(super) fn wiping_if_revoked<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(Error::DeviceRevoked) = &result {
            self.wipe_revoked();
        }
        result
    }

    /// The event first (kept for `take_events`, delivered before the error
    /// is returned), then the database closed, then its files deleted.
    fn wipe_revoked(&self) {
        if self.revoked.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::warn!("device revoked by the relay; wiping the account");
        self.tell(SyncEvent::DeviceRevoked);
        // Dropping the account closes the connection (and the key with it).
        drop(lock_ignoring_poison(&self.state).take());
        lock_ignoring_poison(&self.pending_push).take();
        if let Err(e) = crate::wipe::wipe(&self.db_path) {
            // The marker is durable (or nothing was touched): the next
            // open finishes the wipe.
            tracing::warn!(error = %e, "wipe unfinished; the next open finishes it");
        }
    }
}
