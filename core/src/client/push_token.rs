//! Where the relay sends this device's wakes. A registration the relay
//! did not confirm (offline, locked, relay down) is kept and retried by
//! every sync until it lands; a newer token replaces an older one.

use alcove_proto::relay::PushRegistration;

use super::{lock_ignoring_poison, Client};
use crate::deadline::Deadline;
use crate::error::Result;

impl Client {
    /// Registers where the relay should send wake-ups (call from the
    /// platform's new-token callback, and after enrolment). On failure the
    /// registration stays pending and the next `sync` tries it again.
    pub async fn register_push(&self, reg: PushRegistration) -> Result<()> {
        self.wiping_if_revoked(self.register_push_unguarded(reg).await)
    }

    async fn register_push_unguarded(&self, reg: PushRegistration) -> Result<()> {
        *lock_ignoring_poison(&self.pending_push) = Some(reg.clone());
        let creds = self.creds()?;
        self.relay.set_push(&creds, &reg).await?;
        self.settle_push(&reg);
        Ok(())
    }

    /// Whether a registration still waits for the relay.
    pub fn push_registration_pending(&self) -> bool {
        lock_ignoring_poison(&self.pending_push).is_some()
    }

    /// Sends a pending registration within `deadline`; a failure keeps it
    /// pending and does not fail the sync.
    pub(super) async fn retry_pending_push(&self, deadline: Deadline) {
        let pending = lock_ignoring_poison(&self.pending_push).clone();
        let Some(reg) = pending else { return };
        let sent = match (self.creds(), self.relay_within(deadline)) {
            (Ok(creds), Ok(relay)) => relay.set_push(&creds, &reg).await,
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        match sent {
            Ok(()) => self.settle_push(&reg),
            Err(e) => tracing::debug!(error = %e, "push registration still pending"),
        }
    }

    /// Clears the pending registration if it is still `reg` (a newer token
    /// that arrived meanwhile stays pending).
    fn settle_push(&self, reg: &PushRegistration) {
        let mut pending = lock_ignoring_poison(&self.pending_push);
        if pending.as_ref() == Some(reg) {
            *pending = None;
        }
    }
}
