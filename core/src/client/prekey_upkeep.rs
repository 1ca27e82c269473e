//! Prekey upkeep against the relay: refill one-time prekeys when it runs
//! low, rotate the signed and last-resort keys on schedule (the policy is
//! in `crate::prekeys`).

use super::Client;
use crate::deadline::Deadline;
use crate::error::Result;

impl Client {
    /// Refills one-time prekeys when the relay runs low and rotates the
    /// signed and last-resort keys on schedule. True when keys went up.
    pub async fn upkeep_prekeys(&self) -> Result<bool> {
        self.wiping_if_revoked(self.upkeep_prekeys_unguarded().await)
    }

    async fn upkeep_prekeys_unguarded(&self) -> Result<bool> {
        self.upkeep_prekeys_within(Deadline::unbounded()).await
    }

    pub(super) async fn upkeep_prekeys_within(&self, deadline: Deadline) -> Result<bool> {
        let creds = self.creds()?;
        let count = self.relay_within(deadline)?.prekey_count(&creds).await?;
        let upload = self.account(|a| a.prekey_upkeep(&count))?;
        match upload {
            Some(up) => {
                self.relay_within(deadline)?
                    .upload_prekeys(&creds, &up)
                    .await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
