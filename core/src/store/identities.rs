//! The `identities` table: each remote account's trusted identity key,
//! a changed key waiting for the user's acceptance, and whether the
//! safety number was verified.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// The trusted key and, when it changed, the new one awaiting acceptance.
#[derive(Clone)]
pub(crate) struct Keys {
    pub(crate) trusted: Vec<u8>,
    pub(crate) pending: Option<Vec<u8>>,
}

pub(crate) fn keys(conn: &Connection, account: &str) -> Result<Option<Keys>> {
    Ok(conn
        .prepare_cached("SELECT identity_key, pending_key FROM identities WHERE account_id = ?1")?
        .query_row([account], |r| {
            Ok(Keys {
                trusted: r.get(0)?,
                pending: r.get(1)?,
            })
        })
        .optional()?)
}

/// `(change pending, verified)`, or `None` for an account never seen.
pub(crate) fn status(conn: &Connection, account: &str) -> Result<Option<(bool, bool)>> {
    Ok(conn
        .prepare_cached(
            "SELECT pending_key IS NOT NULL, verified FROM identities WHERE account_id = ?1",
        )?
        .query_row([account], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// First sight of an account's key: trusted, unverified.
pub(crate) fn insert(conn: &Connection, account: &str, key: &[u8], now: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO identities (account_id, identity_key, updated_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![account, key, now as i64])?;
    Ok(())
}

/// A new key for a known account waits for acceptance.
pub(crate) fn set_pending(conn: &Connection, account: &str, key: &[u8], now: u64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE identities SET pending_key = ?2, updated_at = ?3 WHERE account_id = ?1",
    )?
    .execute(params![account, key, now as i64])?;
    Ok(())
}

/// The pending key becomes the trusted one (unverified). False when no
/// change was pending.
pub(crate) fn accept_pending(conn: &Connection, account: &str, now: u64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE identities SET identity_key = pending_key, pending_key = NULL, verified = 0, updated_at = ?2
         WHERE account_id = ?1 AND pending_key IS NOT NULL",
        params![account, now as i64],
    )?;
    Ok(n == 1)
}

/// Pins `key` as verified (from an invite card). A different key for an
/// account already known becomes a pending change instead.
pub(crate) fn pin(conn: &Connection, account: &str, key: &[u8], now: u64) -> Result<()> {
    conn.execute(
        "INSERT INTO identities (account_id, identity_key, verified, updated_at) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (account_id) DO UPDATE SET
           pending_key = CASE WHEN identity_key = excluded.identity_key THEN NULL ELSE excluded.identity_key END,
           verified = CASE WHEN identity_key = excluded.identity_key THEN 1 ELSE verified END",
        params![account, key, now as i64],
    )?;
    Ok(())
}

/// Marks the trusted key verified (a scanned safety number matched).
pub(crate) fn set_verified(conn: &Connection, account: &str) -> Result<()> {
    conn.execute(
        "UPDATE identities SET verified = 1 WHERE account_id = ?1 AND pending_key IS NULL",
        [account],
    )?;
    Ok(())
}
