//! Locking: the database closes and its key leaves memory (auto-lock, app
//! backgrounded); unlocking reopens it. A push that arrives while locked
//! unlocks for the length of its sync only. The shells and the reminder
//! bot all lock the same way, here.

use std::time::Instant;

use std::sync::Mutex;

use super::{lock_ignoring_poison, Client, SyncReport, Unlocked};
use crate::account::Account;
use crate::db::DbKey;
use crate::error::{Error, Result};

impl Client {
    /// Checkpoints and closes the database and drops the key and the
    /// relay secret. Calls that need the account fail with `ClientLocked`
    /// until `unlock`. Locking a locked client does nothing.
    pub fn lock(&self) -> Result<()> {
        self.lock_recording(Some(false))
    }

    /// Locks; `record`: the audit log's `Locked { automatic }` (none for
    /// the relock after a push, which the app never unlocked).
    pub(super) fn lock_recording(&self, record: Option<bool>) -> Result<()> {
        lock_state(&self.state, record)
    }

    pub fn is_locked(&self) -> bool {
        lock_ignoring_poison(&self.state).is_none()
    }

    /// Reopens the database with its key. `WrongKey` leaves it locked.
    /// Unlocking an unlocked client only checks the key.
    pub fn unlock(&self, key: &DbKey) -> Result<()> {
        let was_locked = self.is_locked();
        self.open_with(key)?;
        self.touch();
        if was_locked {
            self.account(|a| a.audit(crate::audit::AuditEvent::Unlocked))?;
        }
        // The app's own unlock outlasts any push handled meanwhile.
        lock_ignoring_poison(&self.temporary).app_unlocked();
        Ok(())
    }

    /// Checks `key` against the database again, whatever the client's
    /// state: the fresh unlock an export asks for. `WrongKey` otherwise.
    pub(crate) fn check_key(&self, key: &DbKey) -> Result<()> {
        let account = Account::open(&self.db_path, key)?;
        if account.account_id() != self.account_id {
            return Err(Error::InvalidArgument(
                "the database at this path holds another account".into(),
            ));
        }
        Ok(())
    }

    fn open_with(&self, key: &DbKey) -> Result<()> {
        let account = Account::open(&self.db_path, key)?;
        if account.account_id() != self.account_id {
            return Err(Error::InvalidArgument(
                "the database at this path holds another account".into(),
            ));
        }
        if !self.is_locked() {
            return Ok(());
        }
        let creds = account.credentials()?;
        self.install(account, creds);
        tracing::info!("client unlocked");
        Ok(())
    }

    /// The push-wake entry point for a client that may be locked: a
    /// locked client is unlocked with `key` for this sync and locked again
    /// after it, whatever the outcome; an unlocked one just syncs.
    /// Overlapping pushes share the unlock; the last one out locks.
    pub async fn sync_unlocking(&self, key: &DbKey, deadline: Instant) -> Result<SyncReport> {
        self.begin_temporary(key)?;
        let result = self.sync(deadline).await;
        let locked = self.end_temporary();
        let report = result?;
        locked?;
        Ok(report)
    }

    /// `register_push` for a client that may be locked (a new token
    /// arriving while the app is auto-locked), unlocked the same way.
    pub async fn register_push_unlocking(
        &self,
        key: &DbKey,
        reg: alcove_proto::relay::PushRegistration,
    ) -> Result<()> {
        self.begin_temporary(key)?;
        let result = self.register_push(reg).await;
        let locked = self.end_temporary();
        result?;
        locked
    }

    fn begin_temporary(&self, key: &DbKey) -> Result<()> {
        let mut t = lock_ignoring_poison(&self.temporary);
        if self.is_locked() {
            self.open_with(key)?;
            t.relock = true;
        }
        t.holders += 1;
        Ok(())
    }

    fn end_temporary(&self) -> Result<()> {
        let mut t = lock_ignoring_poison(&self.temporary);
        t.holders = t.holders.saturating_sub(1);
        if t.holders == 0 && t.relock {
            t.relock = false;
            return self.lock_recording(None);
        }
        Ok(())
    }
}

/// Takes the open account out of `state` and closes it: the audit log
/// records the lock (`record`: `Some(automatic)`; `None` for the relock
/// after a push, which the app never unlocked) and its head is signed
/// first. Locking a locked client does nothing.
pub(super) fn lock_state(state: &Mutex<Option<Unlocked>>, record: Option<bool>) -> Result<()> {
    let taken = lock_ignoring_poison(state).take();
    if let Some(unlocked) = taken {
        if let Some(automatic) = record {
            unlocked
                .account
                .audit(crate::audit::AuditEvent::Locked { automatic })?;
        }
        // Every lock signs the log's head: entries cut after it would show.
        unlocked.account.sign_audit_head()?;
        // Closing checkpoints the WAL; the handle (and with it SQLCipher's
        // copy of the key) is gone either way.
        unlocked.account.close()?;
        tracing::info!("client locked");
    }
    Ok(())
}

/// Pushes handled while the app had the client locked: the last one to
/// finish locks it again, unless the app unlocked it meanwhile.
#[derive(Debug, Default)]
pub(super) struct Temporary {
    holders: u32,
    relock: bool,
}

impl Temporary {
    pub(super) fn app_unlocked(&mut self) {
        self.relock = false;
    }

    /// Pushes being handled now.
    pub(super) fn holders(&self) -> u32 {
        self.holders
    }
}
