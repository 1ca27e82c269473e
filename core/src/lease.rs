//! The cross-process lease that decides who may advance the ratchet.
//!
//! The app and the iOS Notification Service Extension may open the same
//! database at once. Every transaction that advances a ratchet is
//! `BEGIN IMMEDIATE` (one writer at a time, reading the latest committed
//! state — we keep no session cache across transactions, so nothing stale
//! can be written back), and, when a lease holder is set, first takes or
//! renews a short lease row in the database. The lease is never held
//! across suspension: it simply expires (a few seconds), and a process that
//! comes back after another took it gets `Error::Locked` on its next write.

use rusqlite::{Transaction, TransactionBehavior};

use crate::account::{Account, LeaseConfig};
use crate::error::{Error, Result};
use crate::store;

/// The lease covering sync and send.
pub const RATCHET_LEASE: &str = "ratchet";

impl Account {
    /// Makes every ratchet-advancing transaction of this handle take the
    /// cross-process lease as `holder` (unique per process/handle).
    pub fn use_lease(&mut self, holder: &str, ttl_ms: u64) {
        self.lease = Some(LeaseConfig {
            holder: holder.to_owned(),
            ttl_ms,
        });
    }

    /// Takes or renews the lease now; `Error::Locked` if another live
    /// holder has it.
    pub fn acquire_lease(&self) -> Result<()> {
        let tx = self.ratchet_tx()?;
        tx.commit()?;
        Ok(())
    }

    /// Gives the lease up (end of sync, before suspension).
    pub fn release_lease(&self) -> Result<()> {
        if let Some(l) = &self.lease {
            store::leases::release(&self.conn, RATCHET_LEASE, &l.holder)?;
        }
        Ok(())
    }

    /// Starts an immediate (write-locked) transaction and, if configured,
    /// takes the lease inside it.
    /// A write transaction that takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a transaction that reads before it writes would
    /// otherwise fail `database is locked` when another process wrote in
    /// between, instead of waiting its turn.
    pub(crate) fn write_tx(&self) -> Result<Transaction<'_>> {
        Ok(Transaction::new_unchecked(
            &self.conn,
            TransactionBehavior::Immediate,
        )?)
    }

    pub(crate) fn ratchet_tx(&self) -> Result<Transaction<'_>> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        if let Some(l) = &self.lease {
            if !store::leases::take(&tx, RATCHET_LEASE, &l.holder, self.now(), l.ttl_ms)? {
                return Err(Error::Locked);
            }
        }
        Ok(tx)
    }
}
