//! What one page of envelopes shares: the sender certificates already
//! checked, where the time went, and a memo of reads and writes its
//! envelopes would otherwise repeat (500 texts from one sender read the
//! bot setting once and write their delivery key once, not 500 times).

use std::collections::HashMap;

use rusqlite::Connection;

use super::certificates::CertificateCache;
use crate::error::Result;
use crate::stages::SyncStages;

#[derive(Default)]
pub(crate) struct PageState {
    pub(crate) certificates: CertificateCache,
    pub(crate) stages: SyncStages,
    pub(crate) memo: PageMemo,
}

/// Reads and writes already done in this page's transaction. It remembers
/// only what is in the database now: forget it whenever writes are rolled
/// back (an envelope's savepoint, or the page).
#[derive(Default)]
pub(crate) struct PageMemo {
    bot_mode: Option<bool>,
    /// The delivery key each sender's content carried, already stored.
    delivery_keys: HashMap<String, Vec<u8>>,
}

impl PageMemo {
    /// Whether this account is a practice's reminder bot. Only the local
    /// user changes it, never inbound content, so one read per page.
    pub(crate) fn bot_mode(&mut self, conn: &Connection) -> Result<bool> {
        if let Some(on) = self.bot_mode {
            return Ok(on);
        }
        let on = crate::reminders::bot_mode(conn)?;
        self.bot_mode = Some(on);
        Ok(on)
    }

    /// Keeps the delivery key `account`'s content carried; the same key
    /// again in this page writes (and reads) nothing.
    pub(crate) fn save_delivery_key(
        &mut self,
        conn: &Connection,
        account: &str,
        key: &[u8],
        now: u64,
    ) -> Result<()> {
        if self
            .delivery_keys
            .get(account)
            .is_some_and(|k| k[..] == *key)
        {
            return Ok(());
        }
        crate::sealed::save_remote_delivery_key(conn, account, key, now)?;
        self.delivery_keys.insert(account.to_owned(), key.to_vec());
        Ok(())
    }

    pub(crate) fn forget(&mut self) {
        *self = Self::default();
    }
}
