//! Prekey upkeep against the relay: refill one-time prekeys when it runs
//! low, rotate the signed and last-resort keys on schedule (the policy is
//! in `crate::prekeys`).

use alcove_proto::relay::PreKeyCount;

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
        self.upkeep_prekeys_known(Deadline::unbounded(), None).await
    }

    /// Upkeep within `deadline`, with the relay's count when the sync
    /// already has it (sent with the mailbox's last page): then no round
    /// trip is spent asking.
    pub(super) async fn upkeep_prekeys_known(
        &self,
        deadline: Deadline,
        known: Option<PreKeyCount>,
    ) -> Result<bool> {
        let creds = self.creds()?;
        let count = match known {
            Some(count) => count,
            None => self.relay_within(deadline)?.prekey_count(&creds).await?,
        };
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
